// Map layers of the dispatcher console, each switchable (a panel of checkboxes remembered in
// localStorage): the console's own layers (sensors, incidents, vehicles and trails, planned paths and
// search areas, mission paths, airspace), and the ones added here: the risk map as a heat layer with
// the hotspot outlines (GET /api/risk), flood extents (GET /api/flood), and the roads the traffic
// department closes (GET /api/tasks, task needs.roads, drawn from the district's roads layer).
// Sensors can be filtered by kind and by health (online, offline, stale, not heard yet).
// Crews and department units are drawn by console_crews.js; their switches live here too.
// Everything is drawn through ctx.setSource, which converts to the basemap's datum (crs.js).

const STORE_KEY = "yingji.layers"; // {groups: {key: bool}, hiddenKinds: [...], hiddenHealth: [...], open}
const REFRESH_MS = 500; // coalesce refetches after bursts of incident and task events
const HEAT_STEP_M = 400; // spacing of the heat points sampled inside a hotspot
const HEAT_MAX_POINTS = 600; // per hotspot: a huge one is sampled more coarsely
const M_PER_DEG_LAT = 111320;

// Layer ids per switch. Ids of other modules' layers are switched when they exist.
const GROUPS = [
  { key: "sensors", layers: ["sensors"] },
  { key: "incidents", layers: ["incidents-halo", "incidents"] },
  { key: "vehicles", layers: ["vehicle-trails"], markers: true },
  { key: "plans", layers: ["plan-areas-fill", "plan-areas", "plan-paths-proposed", "plan-paths-active"] },
  { key: "missions", layers: ["mission-paths"] },
  { key: "airspace", layers: ["airspace-fill", "airspace-line"] },
  { key: "risk", layers: ["layers-risk-heat"] },
  { key: "hotspots", layers: ["layers-hotspots-fill", "layers-hotspots-line"] },
  { key: "flood", layers: ["layers-flood-fill", "layers-flood-line"] },
  { key: "roadsClosed", layers: ["layers-roads-closed-casing", "layers-roads-closed"] },
  { key: "crews", layers: ["crews-crew", "crews-targets"] },
  { key: "units", layers: ["crews-unit"] },
];
const HEALTH = ["online", "offline", "stale", "unknown"];
// A traffic task acknowledged or under way is closing its roads; done: they are closed.
const ROAD_STATE = { acknowledged: "closing", in_progress: "closing", done: "closed" };
const ROAD_COLOUR = "#c62828";
const FLOOD_COLOUR = "#1565c0";
const LEVEL_SCORE = { blue: 0.25, yellow: 0.5, orange: 0.75, red: 1 };

const STRINGS = {
  zh: {
    layers: {
      title: "图层", sensors: "传感器", incidents: "事件", vehicles: "无人装备及轨迹", plans: "规划航线与搜索区",
      missions: "任务航线", airspace: "空域", risk: "风险热力图", hotspots: "风险热点", flood: "淹没范围",
      roadsClosed: "封闭道路", crews: "救援队伍", units: "部门单位", byKind: "按类型", byHealth: "按状态",
      health: { online: "在线", offline: "离线", stale: "数据超时", unknown: "未上报" },
      closing: "正在封闭", closed: "已封闭", road: "道路", task: "任务", hotspot: "风险热点",
      score: "风险值", people: "人口", floodExtent: "淹没范围", incident: "事件", depth: "水深",
      noRisk: "暂无风险热点", all: "全部",
      kind: { crack_meter: "裂缝计", fire_camera: "林火监控", flame_sensor: "火焰探测器", gas_detector: "气体探测器",
        gnss_displacement: "GNSS 位移", inclinometer: "倾斜仪", smoke_detector: "烟感", soil_moisture: "土壤含水率",
        weather_station: "气象站", temperature: "温度" },
    },
  },
  en: {
    layers: {
      title: "Layers", sensors: "Sensors", incidents: "Incidents", vehicles: "Vehicles and trails",
      plans: "Planned paths and areas", missions: "Mission paths", airspace: "Airspace", risk: "Risk heat map",
      hotspots: "Risk hotspots", flood: "Flood extent", roadsClosed: "Roads closed", crews: "Crews",
      units: "Department units", byKind: "By kind", byHealth: "By health",
      health: { online: "online", offline: "offline", stale: "stale", unknown: "not heard yet" },
      closing: "closing", closed: "closed", road: "Road", task: "Task", hotspot: "Risk hotspot",
      score: "Score", people: "People", floodExtent: "Flood extent", incident: "Incident", depth: "Depth",
      noRisk: "No risk hotspots", all: "all",
      kind: { crack_meter: "crack meter", fire_camera: "fire camera", flame_sensor: "flame sensor",
        gas_detector: "gas detector", gnss_displacement: "GNSS displacement", inclinometer: "tilt (inclinometer)",
        smoke_detector: "smoke", soil_moisture: "soil moisture", weather_station: "weather", temperature: "temperature" },
    },
  },
};

// ---------------------------------------------------------------- pure helpers (exported for tests)

/** Whether [lon, lat] lies inside a GeoJSON Polygon's coordinates (even-odd rule over every ring). */
export function insidePolygon(lon, lat, rings) {
  let inside = false;
  for (const ring of rings ?? []) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

function polygonsOf(geometry) {
  if (geometry?.type === "Polygon") return [geometry.coordinates];
  if (geometry?.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

/**
 * Points for the heat layer from risk hotspots (GET /api/risk): the peak of each, and points on a
 * ~400 m grid inside its outline, each weighted by the hotspot's peak score (0..1; by level when a
 * hotspot has no score). A heat layer needs points; the hotspots are polygons.
 */
export function hotspotHeatPoints(collection) {
  const features = [];
  for (const f of collection?.features ?? []) {
    const p = f?.properties ?? {};
    const score = Number.isFinite(p.peak_score) ? p.peak_score : LEVEL_SCORE[p.level] ?? 0;
    if (!(score > 0)) continue;
    const point = (lon, lat, weight) => features.push({
      type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] },
      properties: { hotspot: p.id ?? f.id ?? null, weight, level: p.level ?? null },
    });
    if (Array.isArray(p.peak) && p.peak.length >= 2 && Number.isFinite(p.peak[0]) && Number.isFinite(p.peak[1])) {
      point(p.peak[0], p.peak[1], score);
    }
    for (const rings of polygonsOf(f.geometry)) {
      const outer = rings?.[0];
      if (!Array.isArray(outer) || outer.length < 4) continue;
      let [west, south, east, north] = [Infinity, Infinity, -Infinity, -Infinity];
      for (const [x, y] of outer) {
        west = Math.min(west, x); east = Math.max(east, x); south = Math.min(south, y); north = Math.max(north, y);
      }
      if (![west, south, east, north].every(Number.isFinite)) continue;
      const mid = (south + north) / 2;
      let dLat = HEAT_STEP_M / M_PER_DEG_LAT;
      let dLon = dLat / Math.max(0.1, Math.cos((mid * Math.PI) / 180));
      const cells = ((east - west) / dLon) * ((north - south) / dLat);
      if (cells > HEAT_MAX_POINTS) {
        const grow = Math.sqrt(cells / HEAT_MAX_POINTS);
        dLat *= grow;
        dLon *= grow;
      }
      for (let lat = south + dLat / 2; lat < north; lat += dLat) {
        for (let lon = west + dLon / 2; lon < east; lon += dLon) {
          if (insidePolygon(lon, lat, rings)) point(lon, lat, score * 0.7);
        }
      }
    }
  }
  return { type: "FeatureCollection", features };
}

/**
 * The roads the traffic department is closing or has closed: for each traffic task acknowledged,
 * in progress (closing) or done (closed), the roads named in its needs (task.needs.roads:
 * {id, name, ...}, command/linkage/context.py), drawn with the geometry of the district's road of
 * that id (or name), else the stretch the task carries. A road closed by one task and closing by
 * another shows as closed. Tasks of other departments, or sent, declined or cancelled, add nothing.
 */
export function closedRoads(tasks, roads) {
  const byId = new Map();
  const byName = new Map();
  for (const f of roads?.features ?? []) {
    const p = f?.properties ?? {};
    if (p.id != null) byId.set(String(p.id), f);
    if (p.name) byName.set(p.name, f);
  }
  const out = new Map();
  for (const task of Array.isArray(tasks) ? tasks : []) {
    const roadState = ROAD_STATE[task?.status];
    if (task?.department !== "traffic" || !roadState) continue;
    const named = task.needs?.roads;
    for (const r of Array.isArray(named) ? named : []) {
      if (!r || (r.id == null && !r.name)) continue;
      const road = (r.id != null ? byId.get(String(r.id)) : null) ?? (r.name ? byName.get(r.name) : null);
      const geometry = road?.geometry ?? r.geometry;
      if (!geometry || !/LineString$/.test(geometry.type ?? "")) continue;
      const key = String(r.id ?? r.name);
      if (out.get(key)?.properties.state === "closed") continue;
      const props = road?.properties ?? {};
      out.set(key, {
        type: "Feature", geometry,
        properties: {
          id: key, name: r.name ?? props.name ?? key, name_zh: r.name_zh ?? props.name_zh ?? null,
          state: roadState, task_id: task.id ?? null, incident_id: task.incident_id ?? null,
        },
      });
    }
  }
  return { type: "FeatureCollection", features: [...out.values()] };
}

/** A sensor's health for the filter: offline, stale, online or unknown (not heard yet). */
export function sensorHealth(status, stale) {
  if (status === "offline") return "offline";
  if (stale) return "stale";
  return status === "online" ? "online" : "unknown";
}

/** The saved switches, with defaults for anything missing or malformed. */
export function parseSettings(text) {
  let raw = null;
  try { raw = text ? JSON.parse(text) : null; } catch { raw = null; }
  const groups = {};
  for (const g of GROUPS) groups[g.key] = typeof raw?.groups?.[g.key] === "boolean" ? raw.groups[g.key] : true;
  const strings = (list) => (Array.isArray(list) ? list.filter((x) => typeof x === "string") : []);
  return {
    groups, hiddenKinds: strings(raw?.hiddenKinds), hiddenHealth: strings(raw?.hiddenHealth).filter((x) => HEALTH.includes(x)),
    open: raw?.open !== false,
  };
}

// ---------------------------------------------------------------- the module

export async function install(ctx) {
  const { h, t, state } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_layers.css";
  document.head.append(link);

  const settings = parseSettings(ctx.storageGet(STORE_KEY));
  const data = {
    risk: null, heat: null, flood: null, tasks: [], roads: null, closed: null,
    stale: new Map(), // sensor id -> stale (from sensor.stale / sensor.recovered events)
  };
  const timers = new Map();
  let map = null;

  const save = () => ctx.storageSet(STORE_KEY, JSON.stringify(settings));

  // ---- data

  async function loadRisk() {
    data.risk = await ctx.api("/api/risk");
    data.heat = hotspotHeatPoints(data.risk);
    ctx.markDirty("layers:risk");
  }

  async function loadFlood() {
    data.flood = await ctx.api("/api/flood");
    ctx.markDirty("layers:flood");
  }

  async function loadTasks() {
    const body = await ctx.api("/api/tasks");
    data.tasks = body?.tasks ?? [];
    if (!data.roads) data.roads = await ctx.api("/api/layers/roads");
    data.closed = closedRoads(data.tasks, data.roads);
    ctx.markDirty("layers:roads");
    render();
  }

  function later(name, fn) {
    if (timers.has(name)) return;
    timers.set(name, setTimeout(() => {
      timers.delete(name);
      fn().catch((err) => ctx.logEvent("console.error", null, `${t(`layers.${name}`)}: ${err.message}`));
    }, REFRESH_MS));
  }

  ctx.onSnapshot(async () => {
    data.stale.clear(); // the snapshot's sensor health is newer
    await Promise.all([loadRisk(), loadFlood(), loadTasks()]);
  });
  ctx.on("incident.", () => later("flood", loadFlood));
  ctx.on("risk.hotspots", () => later("risk", loadRisk));
  ctx.on("task.", (d) => { if (d?.department === "traffic") later("roadsClosed", loadTasks); });
  const staleness = (stale) => (d) => {
    if (d?.sensor_id == null) return;
    data.stale.set(d.sensor_id, stale);
    ctx.markDirty("sensors");
  };
  ctx.on("sensor.stale", staleness(true));
  ctx.on("sensor.recovered", staleness(false));
  ctx.on("sensor.online", () => {});
  ctx.on("sensor.offline", () => {});

  // ---- sensors: kinds and health

  function sensorKinds() {
    const kinds = new Set();
    for (const record of state.sensors.values()) kinds.add(record.feature?.properties?.kind ?? "unknown");
    return [...kinds].sort();
  }

  function healthOf(id, record) {
    const stale = data.stale.has(id) ? data.stale.get(id) : Boolean(record.feature?.properties?.health?.stale);
    return sensorHealth(record.status, stale);
  }

  function applySensorFilter() {
    if (!map?.getLayer("sensors")) return;
    if (!settings.hiddenKinds.length && !settings.hiddenHealth.length) {
      map.setFilter("sensors", null);
      return;
    }
    const ids = [];
    for (const [id, record] of state.sensors) {
      const kind = record.feature?.properties?.kind ?? "unknown";
      if (!settings.hiddenKinds.includes(kind) && !settings.hiddenHealth.includes(healthOf(id, record))) ids.push(id);
    }
    map.setFilter("sensors", ["in", ["get", "id"], ["literal", ids]]);
  }

  // ---- visibility

  function applyVisibility() {
    if (!map) return;
    for (const g of GROUPS) {
      const visibility = settings.groups[g.key] ? "visible" : "none";
      for (const id of g.layers) {
        if (map.getLayer(id) && map.getLayoutProperty(id, "visibility") !== visibility) {
          map.setLayoutProperty(id, "visibility", visibility);
        }
      }
      if (g.markers) map.getContainer().classList.toggle("layers-hide-vehicles", !settings.groups[g.key]);
    }
    applySensorFilter();
  }

  function setGroup(key, on) {
    settings.groups[key] = on;
    save();
    applyVisibility();
    render();
  }

  function toggleHidden(list, value, shown) {
    const i = list.indexOf(value);
    if (shown && i >= 0) list.splice(i, 1);
    if (!shown && i < 0) list.push(value);
    save();
    applySensorFilter();
  }

  // ---- map layers

  function addLayers(m) {
    map = m;
    for (const name of ["layers-risk", "layers-heat", "layers-flood", "layers-roads-closed"]) {
      if (!m.getSource(name)) m.addSource(name, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    }
    // under the console's own overlays (paths, sensors, incidents), over the basemap and airspace
    const below = m.getLayer("mission-paths") ? "mission-paths" : undefined;
    const level = ["match", ["get", "level"], "blue", ctx.LEVEL_COLOURS.blue, "yellow", ctx.LEVEL_COLOURS.yellow,
      "orange", ctx.LEVEL_COLOURS.orange, "red", ctx.LEVEL_COLOURS.red, "#777"];
    const add = (layer) => { if (!m.getLayer(layer.id)) m.addLayer(layer, below); };
    add({
      id: "layers-flood-fill", type: "fill", source: "layers-flood",
      paint: { "fill-color": FLOOD_COLOUR, "fill-opacity": 0.28 },
    });
    add({
      id: "layers-flood-line", type: "line", source: "layers-flood",
      paint: { "line-color": FLOOD_COLOUR, "line-width": 1.5 },
    });
    add({
      // risk score as heat: blue (low) through the warning colours to red (high)
      id: "layers-risk-heat", type: "heatmap", source: "layers-heat",
      paint: {
        "heatmap-weight": ["coalesce", ["get", "weight"], 0],
        "heatmap-intensity": ["interpolate", ["linear"], ["zoom"], 8, 1, 14, 3],
        "heatmap-radius": ["interpolate", ["exponential", 2], ["zoom"], 8, 6, 12, 36, 15, 200],
        "heatmap-color": ["interpolate", ["linear"], ["heatmap-density"],
          0, "rgba(30,111,217,0)", 0.15, "rgba(30,111,217,0.35)", 0.4, ctx.LEVEL_COLOURS.yellow,
          0.7, ctx.LEVEL_COLOURS.orange, 1, ctx.LEVEL_COLOURS.red],
        "heatmap-opacity": 0.55,
      },
    });
    add({
      id: "layers-hotspots-fill", type: "fill", source: "layers-risk",
      paint: { "fill-color": level, "fill-opacity": 0.04 },
    });
    add({
      id: "layers-hotspots-line", type: "line", source: "layers-risk",
      paint: { "line-color": level, "line-width": 1.8, "line-dasharray": [3, 1.5] },
    });
    const roadBelow = m.getLayer("airspace-fill") ? "airspace-fill" : below;
    for (const layer of [
      {
        id: "layers-roads-closed-casing", type: "line", source: "layers-roads-closed",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": "#ffffff", "line-width": 8 },
      },
      {
        id: "layers-roads-closed", type: "line", source: "layers-roads-closed",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: {
          "line-color": ROAD_COLOUR, "line-width": 5,
          "line-dasharray": ["match", ["get", "state"], "closed", ["literal", [1, 0]], ["literal", [1.5, 1]]],
        },
      },
    ]) if (!m.getLayer(layer.id)) m.addLayer(layer, roadBelow);
    wirePopups(m);
    for (const name of ["risk", "flood", "roads"]) ctx.markDirty(`layers:${name}`);
    applyVisibility();
  }

  function wirePopups(m) {
    const popup = (ev, content) => {
      ev.originalEvent?.stopPropagation?.();
      new ctx.maplibregl.Popup({ maxWidth: "300px" }).setLngLat(ev.lngLat).setDOMContent(content).addTo(m);
    };
    const pointer = (id) => {
      m.on("mouseenter", id, () => { m.getCanvas().style.cursor = "pointer"; });
      m.on("mouseleave", id, () => { m.getCanvas().style.cursor = ""; });
    };
    pointer("layers-roads-closed");
    m.on("click", "layers-roads-closed", (ev) => {
      const p = ev.features?.[0]?.properties ?? {};
      popup(ev, h("div", { class: "popup" },
        h("h4", {}, ctx.pick(p, "name") || p.id),
        h("div", {}, `${t("layers.road")} · ${t(`layers.${p.state}`)}`),
        p.task_id != null ? h("div", { class: "muted" }, `${t("layers.task")} ${p.task_id} · #${p.incident_id ?? "?"}`) : null));
    });
    m.on("click", "layers-hotspots-fill", (ev) => {
      // incidents, sensors and the other modules' points answer their own clicks first
      const others = m.queryRenderedFeatures(ev.point).filter((f) => !f.layer.id.startsWith("layers-")
        && !["boundary-fill", "water", "rivers", "roads", "roads-casing", "boundary-line", "background", "basemap",
          "airspace-fill", "airspace-line"].includes(f.layer.id));
      if (others.length) return;
      const p = ev.features?.[0]?.properties ?? {};
      popup(ev, h("div", { class: "popup" },
        h("h4", {}, `${t("layers.hotspot")} · ${ctx.t(`level.${p.level}`)}`),
        h("div", {}, `${t("layers.score")} ${Number(p.peak_score ?? 0).toFixed(2)} · ${t("layers.people")} `
          + `${Math.round(Number(p.population_persons ?? 0)).toLocaleString()}`),
        p.why ? h("p", { class: "muted" }, p.why) : null));
    });
  }

  ctx.onMapLoad(addLayers);

  ctx.onFlush((dirty, mapReady) => {
    if (!mapReady || !map) return;
    if (dirty.has("layers:risk")) {
      ctx.setSource("layers-risk", data.risk?.type === "FeatureCollection" ? data.risk : empty());
      ctx.setSource("layers-heat", data.heat ?? empty());
    }
    if (dirty.has("layers:flood")) ctx.setSource("layers-flood", data.flood?.type === "FeatureCollection" ? data.flood : empty());
    if (dirty.has("layers:roads")) ctx.setSource("layers-roads-closed", data.closed ?? empty());
    if (dirty.has("sensors")) {
      applySensorFilter();
      if (sensorKinds().join() !== renderedKinds) render();
    }
    applyVisibility(); // layers of modules installed later (crews) take the saved switches too
  });

  function empty() {
    return { type: "FeatureCollection", features: [] };
  }

  // ---- panel

  const panel = h("section", { class: "panel layers-panel", id: "layers-panel" });
  const before = document.getElementById("event-panel");
  if (before?.parentElement === ctx.sidebar) ctx.sidebar.insertBefore(panel, before);
  else ctx.sidebar.append(panel);
  let renderedKinds = "";

  function checkbox(label, checked, onchange, attrs = {}) {
    return h("label", { class: "layers-check", ...attrs },
      h("input", { type: "checkbox", checked, onchange: (ev) => onchange(ev.target.checked) }),
      label);
  }

  /** The console's name of a sensor kind, else this module's (t() answers the bare key when it has none). */
  function kindLabel(kind) {
    const shared = ctx.t(`sensorKind.${kind}`);
    return shared !== kind ? shared : t(`layers.kind.${kind}`);
  }

  function swatchFor(key) {
    const style = {
      risk: `background:linear-gradient(90deg, rgba(30,111,217,0.4), ${ctx.LEVEL_COLOURS.yellow}, ${ctx.LEVEL_COLOURS.red})`,
      hotspots: `border:2px dashed ${ctx.LEVEL_COLOURS.orange};background:transparent`,
      flood: `background:${FLOOD_COLOUR};opacity:0.6`,
    }[key];
    return style ? h("span", { class: "layers-swatch", style }) : null;
  }

  function render() {
    const kinds = sensorKinds();
    renderedKinds = kinds.join();
    const closedCount = data.closed?.features?.length ?? 0;
    const groupRow = (g) => h("li", { dataset: { group: g.key } },
      checkbox([swatchFor(g.key), t(`layers.${g.key}`)], settings.groups[g.key], (on) => setGroup(g.key, on),
        { dataset: { layerGroup: g.key } }),
      g.key === "roadsClosed" ? h("span", { class: "count" }, String(closedCount)) : null,
      g.key === "roadsClosed" ? h("ul", { class: "layers-legend" },
        h("li", {}, h("span", { class: "layers-road closing" }), t("layers.closing")),
        h("li", {}, h("span", { class: "layers-road closed" }), t("layers.closed"))) : null,
      g.key === "sensors" ? h("details", { class: "layers-sub" },
        h("summary", {}, `${t("layers.byKind")} / ${t("layers.byHealth")}`),
        h("div", { class: "layers-kinds" }, kinds.map((kind) => checkbox(kindLabel(kind),
          !settings.hiddenKinds.includes(kind), (on) => toggleHidden(settings.hiddenKinds, kind, on),
          { dataset: { sensorKind: kind } }))),
        h("div", { class: "layers-health" }, HEALTH.map((x) => checkbox(t(`layers.health.${x}`),
          !settings.hiddenHealth.includes(x), (on) => toggleHidden(settings.hiddenHealth, x, on),
          { dataset: { sensorHealth: x } })))) : null);
    const details = h("details", {
      open: settings.open,
      ontoggle: (ev) => { settings.open = ev.target.open; save(); },
    },
    h("summary", {}, h("h2", {}, t("layers.title"))),
    h("ul", { class: "layers-list" }, GROUPS.map(groupRow)));
    // keep the sub-filter's unfolded state across re-renders
    const wasOpen = panel.querySelector(".layers-sub")?.open;
    panel.replaceChildren(details);
    if (wasOpen) panel.querySelector(".layers-sub").open = true;
  }

  render();
  document.getElementById("lang-toggle")?.addEventListener("click", () => render());

  window.yingji.layers = {
    groups: GROUPS.map((g) => ({ ...g })),
    settings: () => JSON.parse(JSON.stringify(settings)),
    set: setGroup,
    data: () => data,
    refresh: () => Promise.all([loadRisk(), loadFlood(), loadTasks()]).then(() => ctx.flushNow()),
    closedRoads, hotspotHeatPoints, sensorHealth, parseSettings, insidePolygon,
  };
}
