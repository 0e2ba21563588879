// Flight log book of the dispatcher console: every flight (GET /api/flights) with its vehicle,
// incident, pilot in command, approval, takeoff, landing, state, maximum height above ground and
// distance. Selecting one draws its flown path (solid) and planned path (dashed) on the map from
// GET /api/flights/{id}, and lists its checks. Exports: the whole book as CSV (GET /api/flights.csv,
// fetched with the held token, then saved from a blob) and the selected flight as GeoJSON (RFC 7946,
// built here from the flight's view).

const RELOAD_MS = 500; // flight.* events come in bursts (start, log, end): one reload per burst
const EMPTY = Object.freeze({ type: "FeatureCollection", features: [] });
const FLOWN_COLOUR = "#283593";
const PLANNED_COLOUR = "#ef6c00";

const STRINGS = {
  zh: {
    flightlog: {
      panel: "飞行记录", refresh: "刷新", exportCsv: "导出 CSV", exportGeojson: "导出 GeoJSON",
      none: "暂无飞行记录", pilot: "机长", approvedBy: "批准", takeoff: "起飞", landing: "降落", maxAgl: "最大离地高",
      distance: "航程", incident: "事件", checks: "检查", preflight: "起飞前检查", noChecks: "无检查记录",
      flown: "实际航迹", planned: "计划航线", points: "点", selectFirst: "请先选择一次飞行",
      state: { flying: "飞行中", landed: "已降落", failed: "失败", armed: "已解锁", approved: "已批准" },
    },
    evt: { "flight.started": "飞行开始", "flight.ended": "飞行结束", "flight.log": "飞行日志" },
  },
  en: {
    flightlog: {
      panel: "Flight log", refresh: "Refresh", exportCsv: "Export CSV", exportGeojson: "Export GeoJSON",
      none: "no flights yet", pilot: "Pilot", approvedBy: "Approved", takeoff: "Takeoff", landing: "Landing",
      maxAgl: "Max AGL", distance: "Distance", incident: "Incident", checks: "Checks", preflight: "Preflight",
      noChecks: "no checks recorded", flown: "flown path", planned: "planned path", points: "points",
      selectFirst: "Select a flight first",
      state: { flying: "flying", landed: "landed", failed: "failed", armed: "armed", approved: "approved" },
    },
    evt: { "flight.started": "Flight started", "flight.ended": "Flight ended", "flight.log": "Flight log" },
  },
};

function num(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** Positions [lon, lat, ...] with finite lon/lat only. */
function cleanPath(path) {
  return (Array.isArray(path) ? path : [])
    .filter((c) => Array.isArray(c) && Number.isFinite(c[0]) && Number.isFinite(c[1]))
    .map((c) => c.slice(0, 3).map(Number));
}

/** The flight as GeoJSON (RFC 7946, WGS-84 lon/lat/height): its flown and planned paths as LineStrings. */
export function flightGeoJSON(flight) {
  const { path, planned_path: planned, preflight, ...props } = flight ?? {};
  const features = [];
  const flown = cleanPath(path);
  if (flown.length > 1) {
    features.push({ type: "Feature", geometry: { type: "LineString", coordinates: flown },
      properties: { ...props, kind: "flown", height: "alt_rel_m (above home)" } });
  }
  const plan = cleanPath(planned);
  if (plan.length > 1) {
    features.push({ type: "Feature", geometry: { type: "LineString", coordinates: plan },
      properties: { id: props.id, vehicle: props.vehicle, kind: "planned" } });
  }
  return { type: "FeatureCollection", features };
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function install(ctx) {
  const { h, t, api, state } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_flightlog.css";
  document.head.append(link);

  const my = { flights: [], selected: null, detail: null, error: null, collapsed: true, timer: null, exports: [] };

  const count = h("span", { class: "count" }, "0");
  const toggle = h("button", { type: "button", class: "fl-collapse link-btn", "aria-expanded": "false",
    onclick: () => { my.collapsed = !my.collapsed; render(); } }, "▸");
  const list = h("ol", { class: "fl-list" });
  const detail = h("div", { class: "fl-detail" });
  const error = h("div", { class: "fl-error", role: "alert", hidden: true });
  const tools = h("div", { class: "fl-tools" },
    h("button", { type: "button", class: "fl-refresh", onclick: () => load() }, t("flightlog.refresh")),
    h("button", { type: "button", class: "fl-csv", onclick: () => exportCsv() }, t("flightlog.exportCsv")),
    h("button", { type: "button", class: "fl-geojson", onclick: () => exportGeoJSON() }, t("flightlog.exportGeojson")));
  const content = h("div", { class: "fl-content" }, tools, error, list, detail);
  const section = h("section", { class: "panel", id: "flightlog-panel", "aria-label": t("flightlog.panel") },
    h("h2", {}, toggle, h("span", {}, t("flightlog.panel")), " ", count), content);
  const anchor = ctx.sidebar.querySelector("#vehicle-detail-panel") ?? ctx.sidebar.querySelector("#vehicle-panel");
  if (anchor) anchor.after(section); else ctx.sidebar.append(section);

  function fail(what, err) {
    my.error = `${what}: ${err.message ?? err}`;
    ctx.logEvent("console.error", null, my.error);
    render();
  }

  function flightRow(f) {
    const selected = my.selected === f.id;
    return h("li", {
      class: `fl-flight state-${f.state}${selected ? " selected" : ""}`,
      dataset: { id: f.id, vehicle: f.vehicle, pilot: f.pilot ?? "", state: f.state ?? "" },
      tabindex: 0, "aria-current": selected ? "true" : null,
      onclick: () => select(f.id),
      onkeydown: (ev) => { if (ev.key === "Enter") select(f.id); },
    },
    h("div", { class: "fl-head" },
      h("strong", {}, `#${f.id} ${f.vehicle}`),
      f.incident_id != null ? h("span", { class: "badge" }, `${t("flightlog.incident")} #${f.incident_id}`) : null,
      h("span", { class: `badge fl-state state-${f.state}` }, t(`flightlog.state.${f.state}`))),
    h("div", { class: "fl-meta" },
      h("span", { class: "fl-pilot" }, `${t("flightlog.pilot")} ${f.pilot ?? "—"}`),
      h("span", {}, `${t("flightlog.approvedBy")} ${f.approved_by ?? "—"} ${f.approved_at ? ctx.formatTime(f.approved_at) : ""}`),
      h("span", {}, `${t("flightlog.takeoff")} ${ctx.formatDateTime(f.takeoff_at)}`),
      h("span", {}, `${t("flightlog.landing")} ${ctx.formatDateTime(f.landed_at)}`),
      h("span", {}, `${t("flightlog.maxAgl")} ${num(f.max_agl_m, 0)} m`),
      h("span", {}, `${t("flightlog.distance")} ${num((f.distance_m ?? NaN) / 1000, 2)} km`)));
  }

  function checkText(c) {
    if (typeof c === "string") return c;
    if (c && typeof c === "object") {
      const name = c.name ?? c.check ?? c.key ?? "";
      const passed = c.passed ?? c.ok;
      const ok = passed === true ? "✓" : passed === false ? "✗" : "";
      const why = ctx.pick(c, "reason") || c.detail || c.text || "";
      return `${ok} ${name}${why ? `: ${why}` : ""}`.trim() || JSON.stringify(c);
    }
    return String(c);
  }

  function renderDetail() {
    const d = my.detail;
    if (!d || d.id !== my.selected) { detail.replaceChildren(); return; }
    const checks = [...(d.checks ?? [])];
    const preflight = d.preflight;
    // the preflight record: {vehicle, passed, checks: [{name, passed, reason, reason_zh}]} (uav.preflight)
    const preflightRows = Array.isArray(preflight) ? preflight
      : Array.isArray(preflight?.checks) ? preflight.checks : [];
    detail.replaceChildren(...[
      h("div", { class: "fl-paths muted" },
        h("span", { class: "fl-swatch", style: `border-color:${FLOWN_COLOUR}` }),
        `${t("flightlog.flown")} ${cleanPath(d.path).length} ${t("flightlog.points")} · `,
        h("span", { class: "fl-swatch dashed", style: `border-color:${PLANNED_COLOUR}` }),
        `${t("flightlog.planned")} ${cleanPath(d.planned_path).length} ${t("flightlog.points")}`),
      h("div", { class: "vd-label" }, t("flightlog.checks")),
      checks.length ? h("ul", { class: "fl-checks" }, checks.map((c) => h("li", {}, checkText(c))))
        : h("div", { class: "muted" }, t("flightlog.noChecks")),
      preflightRows.length ? h("div", { class: "vd-label" },
        `${t("flightlog.preflight")}${preflight?.passed === true ? " ✓" : preflight?.passed === false ? " ✗" : ""}`) : null,
      preflightRows.length ? h("ul", { class: "fl-checks fl-preflight" }, preflightRows.map((c) => h("li", {}, checkText(c)))) : null,
      d.log_file ? h("div", { class: "muted" }, `log: ${d.log_file}`) : null,
      d.log_error ? h("div", { class: "error-text" }, `log: ${d.log_error}`) : null,
    ].filter(Boolean));
  }

  function render() {
    toggle.textContent = my.collapsed ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!my.collapsed));
    content.hidden = my.collapsed;
    count.textContent = String(my.flights.length);
    error.hidden = !my.error;
    error.textContent = my.error ?? "";
    const newest = [...my.flights].sort((a, b) => b.id - a.id);
    list.replaceChildren(...(newest.length ? newest.map(flightRow) : [h("li", { class: "empty" }, t("flightlog.none"))]));
    renderDetail();
  }

  function draw() {
    const d = my.detail;
    const flown = d && d.id === my.selected ? cleanPath(d.path).map((c) => [c[0], c[1]]) : [];
    const planned = d && d.id === my.selected ? cleanPath(d.planned_path).map((c) => [c[0], c[1]]) : [];
    const line = (coordinates, kind) => ({ type: "Feature", geometry: { type: "LineString", coordinates },
      properties: { id: d.id, kind } });
    const features = [];
    if (flown.length > 1) features.push(line(flown, "flown"));
    if (planned.length > 1) features.push(line(planned, "planned"));
    ctx.setSource("flightlog-paths", { type: "FeatureCollection", features }); // setSource converts to the basemap datum
  }

  async function load() {
    try {
      const body = await api("/api/flights");
      my.flights = Array.isArray(body?.flights) ? body.flights : [];
      my.error = null;
    } catch (err) {
      fail(t("flightlog.panel"), err);
      return;
    }
    render();
    if (my.selected !== null) await fetchDetail(my.selected);
  }

  function reloadSoon() {
    clearTimeout(my.timer);
    my.timer = setTimeout(load, RELOAD_MS);
  }

  async function fetchDetail(id) {
    try {
      my.detail = await api(`/api/flights/${encodeURIComponent(id)}`);
      my.error = null;
    } catch (err) {
      my.detail = null;
      fail(`#${id}`, err);
    }
    render();
    draw();
  }

  async function select(id) {
    my.selected = id;
    render();
    await fetchDetail(id);
    const first = cleanPath(my.detail?.path)[0] ?? cleanPath(my.detail?.planned_path)[0];
    if (first) ctx.focusOn(first[0], first[1], 13); // WGS-84: focusOn converts
  }

  async function exportCsv() {
    // A link to /api/flights.csv would go without the token: fetch it with the token, save the blob.
    try {
      const headers = { Accept: "text/csv" };
      const token = ctx.storageGet(ctx.TOKEN_KEY);
      if (token) headers.Authorization = `Bearer ${token}`;
      const resp = await fetch("/api/flights.csv", { headers });
      if (!resp.ok) {
        const text = await resp.text();
        let reason = text.slice(0, 200);
        try { reason = JSON.parse(text).detail ?? reason; } catch { /* not JSON */ }
        throw new ctx.ApiError(resp.status, `${resp.status}: ${reason}`, reason);
      }
      const blob = await resp.blob();
      my.exports.push({ kind: "csv", bytes: blob.size });
      saveBlob(blob, "flight-log.csv");
    } catch (err) {
      fail(t("flightlog.exportCsv"), err);
    }
  }

  function exportGeoJSON() {
    if (!my.detail || my.detail.id !== my.selected) {
      my.error = t("flightlog.selectFirst");
      render();
      return;
    }
    const text = JSON.stringify(flightGeoJSON(my.detail), null, 1);
    my.exports.push({ kind: "geojson", id: my.detail.id, bytes: text.length });
    saveBlob(new Blob([text], { type: "application/geo+json" }), `flight-${my.detail.id}.geojson`);
  }

  ctx.onMapLoad((map) => {
    if (map.getSource("flightlog-paths")) return;
    map.addSource("flightlog-paths", { type: "geojson", data: EMPTY });
    map.addLayer({
      id: "flightlog-planned", type: "line", source: "flightlog-paths", filter: ["==", ["get", "kind"], "planned"],
      layout: { "line-join": "round" },
      paint: { "line-color": PLANNED_COLOUR, "line-width": 2.5, "line-dasharray": [2, 1.5], "line-opacity": 0.9 },
    });
    map.addLayer({
      id: "flightlog-flown", type: "line", source: "flightlog-paths", filter: ["==", ["get", "kind"], "flown"],
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": FLOWN_COLOUR, "line-width": 3.5, "line-opacity": 0.9 },
    });
    draw();
  });
  ctx.onSnapshot(load);
  ctx.on("flight.", reloadSoon);

  render();
  state.flightlog = {
    load, select, exportCsv, exportGeoJSON, flightGeoJSON,
    get flights() { return my.flights; },
    get selected() { return my.selected; },
    get detail() { return my.detail; },
    exports: my.exports,
  };
}
