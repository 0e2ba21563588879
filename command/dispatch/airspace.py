"""Airspace zones and the check of a flight path against them.

Zones come from the district folder (``airspace.geojson``). A path is a lon/lat polyline
flown in straight legs; heights are metres above ground (AGL, "true height").

Rules applied (most restrictive wins, every breach is reported):
- ``prohibited``: no flight at any height inside the polygon;
- ``height_limited``: no flight above the zone's ``ceiling_agl_m`` inside the polygon;
- ``controlled``: flight needs approval from air traffic management, so a plan is refused;
- everywhere: the 120 m true-height ceiling of the Interim Regulations on Unmanned
  Aircraft Flight Management (State Council / CMC, in force 1 Jan 2024, art. 19: airspace
  above 120 m true height is controlled airspace for drones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from command.dispatch.geometry import UTM_48N, densify

if TYPE_CHECKING:
    from command.district import Terrain

__all__ = ["NATIONAL_CEILING_AGL_M", "ZONE_KINDS", "Violation", "Zone", "check_path"]

# Interim Regulations on Unmanned Aircraft Flight Management (2024), art. 19.
NATIONAL_CEILING_AGL_M = 120.0
ZONE_KINDS = ("prohibited", "height_limited", "controlled")
_TOL_M = 0.5  # heights are planned in whole metres; do not report rounding noise


@dataclass(frozen=True, slots=True)
class Zone:
    """One airspace zone (polygon in WGS84 lon/lat)."""

    id: str
    name: str
    kind: Literal["prohibited", "height_limited", "controlled"]
    polygon: Polygon | MultiPolygon
    ceiling_agl_m: float | None = None
    name_zh: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ZONE_KINDS:
            raise ValueError(f"zone {self.id!r}: kind {self.kind!r} is not one of {', '.join(ZONE_KINDS)}")
        if self.kind == "height_limited" and (self.ceiling_agl_m is None or self.ceiling_agl_m < 0):
            raise ValueError(f"zone {self.id!r}: a height_limited zone needs ceiling_agl_m >= 0")
        if not isinstance(self.polygon, (Polygon, MultiPolygon)) or self.polygon.is_empty:
            raise ValueError(f"zone {self.id!r}: polygon must be a non-empty Polygon or MultiPolygon")
        shapely.prepare(self.polygon)  # speeds up contains_xy; does not change the geometry

    def contains(self, lon: float, lat: float) -> bool:
        return bool(shapely.contains_xy(self.polygon, lon, lat))


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of a zone or of the national ceiling, with a readable reason (en, zh)."""

    kind: Literal["prohibited", "height_limited", "controlled", "national_ceiling", "terrain"]
    reason: str
    reason_zh: str
    zone_id: str | None = None
    zone_name: str | None = None
    max_agl_m: float | None = None
    at_lonlat: tuple[float, float] | None = None  # first sample where it happens


def _name_zh(zone: Zone) -> str:
    return zone.name_zh or zone.name


def check_path(path_lonlat: Sequence[tuple[float, float]], alts_agl_m: Sequence[float] | float,
               zones: Sequence[Zone], *, terrain: Terrain | None = None,
               cap_agl_m: float = NATIONAL_CEILING_AGL_M, step_m: float = 25.0,
               epsg: int = UTM_48N) -> list[Violation]:
    """Every airspace breach of a path flown in straight legs; empty when the path is clear.

    ``alts_agl_m`` is the height above ground at each vertex (or one height for all).
    Without ``terrain`` the height is interpolated linearly along each leg. With
    ``terrain`` each leg is flown in a straight line between the vertices' heights above
    sea level, and the height above ground is measured against the terrain under every
    sample (every ``step_m`` metres), as a vehicle in the above-home frame flies it.

    >>> check_path([(106.6, 29.8), (106.61, 29.8)], 50.0, [])
    []
    """
    path = [(float(lon), float(lat)) for lon, lat in path_lonlat]
    if not path:
        raise ValueError("empty path")
    if np.ndim(alts_agl_m) == 0:
        vertex_agl = np.full(len(path), float(alts_agl_m))  # type: ignore[arg-type]
    else:
        vertex_agl = np.asarray(alts_agl_m, dtype=float)
        if vertex_agl.shape != (len(path),):
            raise ValueError(f"{len(path)} vertices but {vertex_agl.size} heights")

    lons, lats, along, seg = densify(path, step_m, epsg=epsg)
    # Distance along the path of each vertex, to interpolate heights between vertices.
    # (each segment's first sample is its start vertex; the last sample is the end).
    vertex_along = np.array([along[np.argmax(seg == i)] for i in range(len(path) - 1)] + [along[-1]])
    out: list[Violation] = []
    if terrain is None:
        agl = np.interp(along, vertex_along, vertex_agl)
    else:
        vertex_ground = terrain.elevation_along(np.array([p[0] for p in path]), np.array([p[1] for p in path]))
        amsl = np.interp(along, vertex_along, vertex_agl + vertex_ground)
        ground = terrain.elevation_along(lons, lats)
        agl = amsl - ground
        missing = ~np.isfinite(agl)
        if missing.any():
            i = int(np.argmax(missing))
            out.append(Violation(
                "terrain", "leaves the terrain model: height above ground unknown",
                "超出地形数据范围：无法确定离地高度", at_lonlat=(float(lons[i]), float(lats[i]))))
            agl = np.where(missing, np.inf, agl)

    line = Point(path[0]) if len(path) == 1 else LineString(path)
    for zone in zones:
        if zone.kind in ("prohibited", "controlled"):
            if not zone.polygon.intersects(line):
                continue
            inside = shapely.contains_xy(zone.polygon, lons, lats)
            i = int(np.argmax(inside)) if inside.any() else 0
            at = (float(lons[i]), float(lats[i]))
            if zone.kind == "prohibited":
                out.append(Violation(
                    "prohibited", f"crosses prohibited zone '{zone.name}'",
                    f"穿越禁飞区“{_name_zh(zone)}”", zone.id, zone.name, at_lonlat=at))
            else:
                out.append(Violation(
                    "controlled",
                    f"enters controlled airspace '{zone.name}': flight needs approval from air traffic management",
                    f"进入管制空域“{_name_zh(zone)}”，须经空中交通管理机构批准", zone.id, zone.name, at_lonlat=at))
            continue
        ceiling = float(zone.ceiling_agl_m or 0.0)
        inside = shapely.contains_xy(zone.polygon, lons, lats)
        over = inside & (agl > ceiling + _TOL_M)
        if over.any():
            worst = float(np.max(agl[over]))
            i = int(np.argmax(over))
            shown = "unknown" if not np.isfinite(worst) else f"{worst:.0f} m"
            shown_zh = "未知" if not np.isfinite(worst) else f"{worst:.0f} 米"
            out.append(Violation(
                "height_limited",
                f"flies {shown} above ground inside '{zone.name}' (ceiling {ceiling:.0f} m)",
                f"在限高区“{_name_zh(zone)}”内离地 {shown_zh}（限高 {ceiling:.0f} 米）",
                zone.id, zone.name, max_agl_m=worst if np.isfinite(worst) else None,
                at_lonlat=(float(lons[i]), float(lats[i]))))

    over_cap = np.isfinite(agl) & (agl > cap_agl_m + _TOL_M)
    if over_cap.any():
        worst = float(np.max(agl[over_cap]))
        i = int(np.argmax(over_cap))
        out.append(Violation(
            "national_ceiling",
            f"flies {worst:.0f} m above ground, above the {cap_agl_m:.0f} m true-height ceiling "
            "(Interim Regulations on Unmanned Aircraft Flight Management, 2024)",
            f"离地 {worst:.0f} 米，超过真高 {cap_agl_m:.0f} 米上限（《无人驾驶航空器飞行管理暂行条例》，2024）",
            max_agl_m=worst, at_lonlat=(float(lons[i]), float(lats[i]))))
    return out
