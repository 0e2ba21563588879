// Where the basemap's coordinates live. Yingji keeps every position in WGS-84 (GPS, MAVLink,
// sensors, GeoJSON per RFC 7946). Basemap tiles published for China (AutoNavi/Gaode, Tencent, and
// most tiles licensed in China) are drawn in GCJ-02, the obfuscated datum required by Chinese
// surveying rules: WGS-84 points drawn on them land some hundreds of metres off. With
// `tile_crs: "gcj02"` (YINGJI_TILE_CRS) every overlay goes through `toDisplay` before it is drawn, and
// a clicked map position through `fromDisplay` before it is sent back, so the stored data stay WGS-84.
// The conversion is gcoord's (npm, MIT), served locally from /vendor/gcoord. docs/basemap.md.

import gcoord from "/vendor/gcoord/gcoord.esm-browser.prod.js";

let displayCrs = "wgs84";

/** Set the basemap's coordinate system: "wgs84" (default, the scenario's own layers) or "gcj02". */
export function setDisplayCrs(crs) {
  displayCrs = crs === "gcj02" ? "gcj02" : "wgs84";
}

export function getDisplayCrs() {
  return displayCrs;
}

/** A GeoJSON object (a copy) or a [lon, lat] position in the basemap's coordinates. */
export function toDisplay(value) {
  if (displayCrs === "wgs84" || value == null) return value;
  const copy = JSON.parse(JSON.stringify(value));
  if (Array.isArray(copy)) return gcoord.transform(copy, gcoord.WGS84, gcoord.GCJ02);
  if (copy.type === "FeatureCollection" && (!copy.features || copy.features.length === 0)) return copy;
  return gcoord.transform(copy, gcoord.WGS84, gcoord.GCJ02);
}

/** A [lon, lat] clicked on the basemap, in WGS-84 (gcoord's iterative inverse of GCJ-02). */
export function fromDisplay(position) {
  if (displayCrs === "wgs84") return position;
  return gcoord.transform([Number(position[0]), Number(position[1])], gcoord.GCJ02, gcoord.WGS84);
}
