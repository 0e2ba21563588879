// Yingji dispatcher console: map, incidents, vehicles, sensors and the live event log.
//
// Plain ES module, no build step. MapLibre GL JS comes from npm (mapui/node_modules),
// served by the command service under /vendor/maplibre-gl/. Everything works offline:
// the basemap is drawn from the district's own layers, and no glyphs or sprites are
// used (names appear in popups and side panels, never as map text).

import * as maplibregl from "/vendor/maplibre-gl/maplibre-gl.mjs";
import { addStrings, eventLabel, formatDateTime, formatTime, getLang, pick, setLang, t } from "./i18n.js";
import { setDisplayCrs, toDisplay } from "./crs.js";

// Chinese warning colours, blue < yellow < orange < red (MWR 2013 / CMA Order 16).
const LEVEL_COLOURS = { blue: "#1e6fd9", yellow: "#e6b800", orange: "#f57c00", red: "#d32f2f" };
const LEVEL_RANK = { blue: 1, yellow: 2, orange: 3, red: 4 };
const STATUS_RANK = { open: 0, dispatched: 1, closed: 2 };
const SENSOR_COLOURS = { online: "#2e9d4b", offline: "#8a8f96", unknown: "#d5d9de" };
const VEHICLE_COLOURS = { copter: "#6a1b9a", boat: "#00838f" };
const GEO_LAYERS = ["boundary", "rivers", "roads", "facilities", "airspace"];
const EMPTY = Object.freeze({ type: "FeatureCollection", features: [] });
const MAX_EVENTS = 200; // event log rows kept in the DOM
const TRAIL_POINTS = 120; // positions kept per vehicle for its trail line
const FLUSH_MS = 100; // coalesce map/DOM updates from bursts of telemetry
const RESYNC_MIN_MS = 2000; // at most one snapshot refetch per 2 s (bus.overflow: the feed missed events)
const RECONNECT_MAX_MS = 30000;
const TOKEN_KEY = "yingji.token";
const LANG_KEY = "yingji.lang";
const OPERATOR_KEY = "yingji.operator";
// Task plans (docs/dispatch.md). A plan moves forward only: a snapshot fetched before an
// event must not undo it, so a view whose state ranks lower than the one held is stale.
const PLAN_RANK = {
  proposed: 0, refused: 0, approved: 1, uploading: 2, flying: 3, returning: 4,
  landed: 5, failed: 5, rejected: 5, superseded: 5,
};
const PLAN_OPEN = new Set(["proposed", "approved", "uploading", "flying", "returning"]); // drawn on the map
// Plan colours keep clear of the warning colours (blue, yellow, orange, red) of the incidents.
const PLAN_COLOURS = ["#c2185b", "#00897b", "#5e35b1", "#6d4c41", "#0097a7", "#7cb342", "#37474f", "#8e24aa"];
const LAUNCH_WEATHER_REFUSAL = "refused: launch weather"; // 422 detail of a failed launch weather check
const DEFAULT_DISPATCHER = "dispatcher";

/** Console state, exposed as window.yingji for tests and for the curious. */
const state = {
  mapLoaded: false,
  snapshotLoaded: false,
  geographyLoaded: false,
  map: null,
  district: null,
  connection: "connecting",
  lastSeq: null,
  sensors: new Map(), // id -> {feature, status, latest}
  incidents: new Map(), // id -> Incident
  selectedIncident: null, // id of the incident whose plans are shown and drawn
  plans: new Map(), // plan id -> plan view (GET /api/plans, plan.* events)
  vehicles: new Map(), // name -> last telemetry (vehicle object)
  trails: new Map(), // name -> [[lon, lat], ...]
  events: [], // newest first, bounded
  counters: { messages: 0, readings: 0, badMessages: 0, resyncs: 0 },
  getLang,
  setLang: switchLang,
  refresh: loadSnapshots,
  sourceData: (name) => state.map?.getSource(name)?.getData(),
  flush: () => flushNow(), // apply pending updates to the panels and map now
};
window.yingji = state;

const ui = {
  pending: new Set(), // incident ids with an approve request in flight
  ackPending: new Set(), // task ids with an ack request in flight
  incidentErrors: new Map(), // incident id -> readable reason
  evidence: new Map(), // incident id -> evidence rows (fetched on demand)
  expanded: new Set(), // incident ids with evidence shown
  markers: new Map(), // vehicle name -> maplibregl.Marker
  dirty: new Set(), // names of things to redraw on the next flush
  flushTimer: null,
  popup: null, // {kind, id, popup} of the open popup
  lastResync: 0,
  logReadings: false,
  planForms: new Map(), // plan id -> {kind: approve|override|reject|edit, field drafts, error, reasons}
  planPending: new Set(), // plan ids with a decision in flight
  proposing: new Set(), // incident ids with a proposal in flight
  planErrors: new Map(), // incident id -> readable reason (proposal or loading failed)
  planNotes: new Map(), // incident id -> {waiting, nothingNew} from the last proposal
  plansLoading: new Set(),
  plansReload: new Set(),
  checksOpen: new Set(), // plan ids whose checks are unfolded
  focusNext: null, // data-focus key to focus after the next incident render
  composing: false, // an IME composition is under way in a form field: do not re-render under it
  lastPilot: "",
};

// ---------------------------------------------------------------- extensions
// Panels and layers live in their own modules (EXTENSIONS, mapui/static/console_*.js). Each exports
// install(ctx) and registers what it needs: handlers of event kinds ("crew.sos", or a prefix such as
// "crew."), snapshot loaders, a step of each flush, map layers once the map has loaded.
const EXTENSIONS = ["console_session", "console_vehicle", "console_flightlog", "console_timeline", "console_layers", "console_crews", "console_incident"];
const extensions = { kinds: [], summaries: [], snapshots: [], flushes: [], mapLoads: [], installed: [] };

function extensionHandlers(kind) {
  return extensions.kinds.filter(([k]) => k === kind || (k.endsWith(".") && kind.startsWith(k))).map(([, fn]) => fn);
}

async function installExtensions(ctx) {
  for (const name of EXTENSIONS) {
    try {
      const module = await import(`./${name}.js`);
      await module.install(ctx);
      extensions.installed.push(name);
    } catch (err) {
      logEvent("console.error", null, `${name}: ${err.message}`);
    }
  }
  state.extensions = [...extensions.installed];
}

// ---------------------------------------------------------------- small helpers

/** Build a DOM element: h("li", {class: "x", dataset: {id: 1}}, "text", child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style") el.style.cssText = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try {
    if (value == null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch { /* private mode: keep working without persistence */ }
}

function fmtNumber(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

function fmtLonLat(lon, lat) {
  return `${fmtNumber(lon, 5)}, ${fmtNumber(lat, 5)}`;
}

function validLonLat(lon, lat) {
  return Number.isFinite(lon) && Number.isFinite(lat) && Math.abs(lon) <= 180 && Math.abs(lat) <= 90;
}

/** The response level the rules suggest; declaring one is a human decision (YUBEI.md). */
function responseText(inc) {
  if (!inc?.response) return "";
  return getLang() === "zh"
    ? `建议${inc.response_zh || `${inc.response}级`}响应`
    : `Suggested response ${inc.response}`;
}

// ---------------------------------------------------------------- token and HTTP

/** Take #token=... from the address bar into localStorage and strip it from the URL. */
function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  if (!params.has("token")) return;
  const token = params.get("token").trim();
  if (token) storageSet(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
  window.history.replaceState(null, "", url);
}

function getToken({ ask }) {
  let token = storageGet(TOKEN_KEY);
  if (!token && ask) {
    token = (window.prompt(t("askToken")) || "").trim();
    if (token) storageSet(TOKEN_KEY, token);
  }
  return token || null;
}

class ApiError extends Error {
  constructor(status, message, detail = "") {
    super(message);
    this.status = status;
    this.detail = detail; // the server's own words, without the status
  }
}

/** Readable text from an error body: {"detail": str} or FastAPI's list of {loc, msg}. */
function detailText(payload) {
  const detail = payload?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d?.loc ? `${d.loc.join(".")}: ${d.msg}` : d?.msg ?? JSON.stringify(d))).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // every request carries the held token (reads are guarded too once users are configured)
  const bearer = token ?? storageGet(TOKEN_KEY);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, `${t("networkError")}: ${err.message}`);
  }
  const text = await resp.text();
  let payload = null;
  if (text) {
    try { payload = JSON.parse(text); } catch { payload = null; }
  }
  if (!resp.ok) {
    // a missing or expired sign-in: the session module (console_session.js) offers the sign-in form
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("yingji:unauthorized", { detail: { path } }));
    const reason = detailText(payload) || text.slice(0, 200) || resp.statusText;
    throw new ApiError(resp.status, `${resp.status}: ${reason}`, reason);
  }
  return payload;
}

// ---------------------------------------------------------------- flash and event log

let flashTimer = null;

function flash(message, kind = "error") {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

function summarise(kind, data) {
  const d = data ?? {};
  for (const [k, fn] of extensions.summaries) {
    if (k === kind || (k.endsWith(".") && kind.startsWith(k))) {
      const text = fn(d, kind);
      if (text) return text;
    }
  }
  switch (kind) {
    case "sensor.reading": {
      const sensor = state.sensors.get(d.sensor_id);
      const name = sensor ? pick(sensor.feature.properties, "name") : d.sensor_id;
      const flag = d.flag && d.flag !== "ok" ? ` [${d.flag}]` : "";
      return `${name} ${d.quantity ?? ""} = ${fmtNumber(d.value)} ${d.unit ?? ""}${flag}`;
    }
    case "sensor.status": {
      const sensor = state.sensors.get(d.sensor_id);
      const name = sensor ? pick(sensor.feature.properties, "name") : d.sensor_id;
      return `${name}: ${t(`sensorStatus.${d.status}`)}`;
    }
    case "reading.rejected":
      return `${d.topic ?? ""}: ${d.reason ?? ""}${d.detail ? ` (${d.detail})` : ""}`;
    case "incident.opened":
    case "incident.updated":
    case "incident.resolved":
      return `#${d.id} ${t(`level.${d.level}`)} ${pick(d, "title")} · ${t(`incidentStatus.${d.status}`)}`
        + (d.dispatch ? ` · ${d.dispatch.vehicle} ${t(`dispatchState.${d.dispatch.state}`)}` : "");
    case "dispatch.approved":
    case "dispatch.refused":
    case "mission.uploaded":
    case "mission.completed": {
      const extra = d.reason ?? d.detail ?? d.error ?? "";
      return `#${d.incident_id ?? "?"} ${d.vehicle ?? ""}${extra ? `: ${extra}` : ""}`;
    }
    case "dispatch.state":
      return `#${d.incident_id ?? "?"} ${t(`dispatchState.${d.state}`)}${d.error ? `: ${d.error}` : ""}`;
    case "vehicle.lost":
    case "vehicle.recovered":
    case "vehicle.connected":
      return d.name ?? "";
    case "vehicle.mode":
      return `${d.name ?? ""}: ${d.mode ?? ""}${d.armed ? " · armed" : ""}`;
    case "vehicle.mission_reached":
      return `${d.name ?? ""}: #${d.seq ?? "?"}`;
    case "vehicle.statustext":
      return `${d.name ?? ""}: ${d.text ?? ""}`;
    case "task.created":
    case "task.acknowledged":
      return `#${d.incident_id ?? "?"} ${pick(d, "department_name") || d.department || ""}: ${pick(d, "text")}`
        + (d.acknowledged_by ? ` (${d.acknowledged_by})` : "");
    case "plan.proposed":
    case "plan.refused":
    case "plan.approved":
    case "plan.rejected":
    case "plan.edited":
    case "plan.state": {
      const task = taskLabel(d.task?.kind ?? d.task_key);
      const who = d.decided_by ? ` · ${d.decided_by}` : "";
      const why = d.decision_reason ?? d.reason ?? d.error ?? (d.state === "refused" ? d.proposal?.reasons?.join("; ") : "");
      return `#${d.incident_id ?? "?"} ${t("plan")} ${d.id ?? "?"} ${task} ${d.vehicle ?? ""} · ${t(`planState.${d.state}`)}`
        + who + (d.pilot && kind === "plan.approved" ? ` · ${t("pilot")} ${d.pilot}` : "") + (why ? `: ${why}` : "");
    }
    case "plan.recall":
      return `#${d.incident_id ?? "?"} ${t("plan")} ${d.id ?? "?"} ${d.vehicle ?? ""}: ${t("battery")} `
        + `${fmtNumber(d.battery_pct, 0)} % · ${t("homeNeeds")} ${fmtNumber(d.home_pct, 0)} % + ${fmtNumber(d.reserve_pct, 0)} %`;
    case "plan.handover":
      return `#${d.incident_id ?? "?"} ${t("plan")} ${d.id ?? "?"} ${taskLabel(d.task_key)}: ${d.why ?? ""}`
        + (d.proposals?.length ? ` → ${d.proposals.map((x) => `${t("plan")} ${x}`).join(", ")}` : "");
    case "plan.launch_override":
      return `#${d.incident_id ?? "?"} ${t("plan")} ${d.id ?? "?"} · ${d.by ?? ""}: ${d.reason ?? ""}`
        + (d.overridden?.length ? ` (${d.overridden.join("; ")})` : "");
    case "plan.auto_approval_skipped":
      return `#${d.incident_id ?? "?"} ${t("plan")} ${d.id ?? "?"}: ${d.reason ?? ""}`;
    case "traffic.alert":
    case "traffic.clear":
      return `${d.drone ?? ""} · ${d.aircraft ?? d.icao ?? ""}: ${pick(d, "reason")}`;
    case "traffic.hold_failed":
      return `${d.drone ?? ""} · ${d.icao ?? ""}: ${d.error ?? ""}`;
    case "airspace.granted":
    case "airspace.revoked":
      return `${pick(d, "zone_name") || d.zone_id || ""} #${d.id ?? "?"} ${d.reference ?? ""} (${d.granted_by ?? ""})`
        + (d.max_alt_agl_m != null ? ` ≤ ${fmtNumber(d.max_alt_agl_m, 0)} m` : "");
    default:
      return typeof data === "string" ? data : JSON.stringify(d).slice(0, 160);
  }
}

const WARN_KINDS = new Set(["reading.rejected", "dispatch.refused", "vehicle.lost", "console.error",
  "plan.refused", "plan.recall", "plan.handover", "plan.launch_override", "traffic.alert", "traffic.hold_failed"]);

function logEvent(kind, time, data) {
  const entry = { kind, time: time ?? new Date().toISOString(), data };
  state.events.unshift(entry);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  const list = document.getElementById("event-log");
  list.prepend(renderEvent(entry));
  while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
}

function renderEvent(entry) {
  const level = entry.data?.level;
  return h("li", {
    class: `event${WARN_KINDS.has(entry.kind) ? " warn" : ""}`,
    dataset: { kind: entry.kind, ...(level ? { level } : {}) },
  },
  h("time", { datetime: entry.time }, formatTime(entry.time)),
  h("span", { class: "event-kind" }, eventLabel(entry.kind)),
  h("span", { class: "event-text" }, summarise(entry.kind, entry.data)));
}

function rerenderEventLog() {
  const list = document.getElementById("event-log");
  list.replaceChildren(...state.events.map(renderEvent));
}

// ---------------------------------------------------------------- state updates

function sensorAlert(record) {
  // River gauges: yellow at the warning level, orange at the guaranteed level, red at
  // the historical maximum (MWR 2013 hydrological warning signals, see YUBEI.md).
  // Rain thresholds are accumulations over hours, so one reading cannot show them.
  const props = record.feature.properties ?? {};
  const value = record.latest?.value;
  const th = props.thresholds ?? {};
  if (props.kind !== "river_level" || typeof value !== "number") return "none";
  if (typeof th.historical_max_m === "number" && value >= th.historical_max_m) return "red";
  if (typeof th.guaranteed_m === "number" && value >= th.guaranteed_m) return "orange";
  if (typeof th.warning_m === "number" && value >= th.warning_m) return "yellow";
  return "none";
}

function setSensors(collection) {
  state.sensors.clear();
  for (const feature of collection?.features ?? []) {
    const id = feature?.properties?.id;
    if (id == null || feature.geometry?.type !== "Point") continue;
    state.sensors.set(id, {
      feature,
      status: feature.properties.status ?? "unknown",
      latest: feature.properties.latest ?? null,
    });
  }
  markDirty("sensors");
}

function applyReading(d) {
  const record = state.sensors.get(d.sensor_id);
  if (!record) return;
  const prev = record.latest?.time ? Date.parse(record.latest.time) : -Infinity;
  const next = d.time ? Date.parse(d.time) : Date.now();
  if (next < prev) return; // out-of-order reading: keep the newer one
  record.latest = { value: d.value, unit: d.unit, time: d.time, flag: d.flag ?? null };
  if (record.status === "unknown") record.status = "online";
  markDirty("sensors");
}

function upsertIncident(incident, { force = false } = {}) {
  if (!incident || incident.id == null) return;
  const current = state.incidents.get(incident.id);
  if (!force && current?.updated_at && incident.updated_at
      && Date.parse(current.updated_at) > Date.parse(incident.updated_at)) {
    return; // a stale snapshot must not undo a newer event
  }
  state.incidents.set(incident.id, { ...current, ...incident });
  mergePlanSummaries(incident);
  markDirty("incidents");
}

function upsertTask(task) {
  const incident = state.incidents.get(task?.incident_id);
  if (!incident) return;
  const tasks = [...(incident.tasks ?? [])];
  const index = tasks.findIndex((x) => x.id === task.id);
  if (index >= 0) tasks[index] = { ...tasks[index], ...task };
  else tasks.push(task);
  state.incidents.set(incident.id, { ...incident, tasks });
  markDirty("incidents");
}

function upsertVehicle(vehicle) {
  if (!vehicle?.name) return;
  const merged = { ...state.vehicles.get(vehicle.name), ...vehicle };
  state.vehicles.set(vehicle.name, merged);
  if (validLonLat(merged.lon, merged.lat)) {
    const trail = state.trails.get(vehicle.name) ?? [];
    const last = trail[trail.length - 1];
    if (!last || last[0] !== merged.lon || last[1] !== merged.lat) trail.push([merged.lon, merged.lat]);
    if (trail.length > TRAIL_POINTS) trail.splice(0, trail.length - TRAIL_POINTS);
    state.trails.set(vehicle.name, trail);
  }
  markDirty("vehicles");
  markDirty(`vehicle:${vehicle.name}`);
}

function setVehicleLink(name, link) {
  const vehicle = state.vehicles.get(name);
  if (!vehicle) return;
  state.vehicles.set(name, { ...vehicle, link, ...(link === "lost" ? { state: "lost" } : {}) });
  markDirty("vehicles");
  markDirty(`vehicle:${name}`);
}

// Task plans: full views come from GET /api/plans and the plan.* events; incident views
// carry a summary of each (state, progress) that keeps the held views current.

function planColour(id) {
  return PLAN_COLOURS[Math.abs(Number(id) || 0) % PLAN_COLOURS.length];
}

function planRank(planState) {
  return PLAN_RANK[planState] ?? 0;
}

function markPlans() {
  markDirty("plans");
  markDirty("incidents");
}

function upsertPlan(view) {
  if (!view || view.id == null) return;
  const current = state.plans.get(view.id);
  if (current && planRank(view.state) < planRank(current.state)) return; // stale
  const { replaces, by, reason, ...plan } = view; // plan.edited adds who and why of the edit
  state.plans.set(view.id, { ...current, ...plan });
  if (plan.state !== "proposed") ui.planForms.delete(view.id);
  markPlans();
}

function supersedePlan(id) {
  const plan = state.plans.get(id);
  if (plan) state.plans.set(id, { ...plan, state: "superseded" });
  ui.planForms.delete(id);
  markPlans();
}

function applyPlanProgress(d) {
  const plan = state.plans.get(d?.id);
  if (!plan) {
    if (d?.incident_id != null && d.incident_id === state.selectedIncident) loadPlans(d.incident_id);
    return;
  }
  const { id, incident_id: incidentId, vehicle, ...progress } = d;
  state.plans.set(id, { ...plan, progress }); // the service replaces a plan's progress as a whole
  markPlans();
}

function mergePlanSummaries(incident) {
  if (!Array.isArray(incident?.plans)) return;
  let unknown = false;
  for (const summary of incident.plans) {
    const current = state.plans.get(summary.id);
    if (!current) { unknown = true; continue; }
    if (planRank(summary.state) < planRank(current.state)) continue;
    state.plans.set(summary.id, { ...current, state: summary.state, progress: summary.progress ?? current.progress });
    if (summary.state !== "proposed") ui.planForms.delete(summary.id);
  }
  if (unknown && incident.id === state.selectedIncident) loadPlans(incident.id);
  markDirty("plans");
}

async function loadPlans(incidentId) {
  if (ui.plansLoading.has(incidentId)) { ui.plansReload.add(incidentId); return; }
  ui.plansLoading.add(incidentId);
  try {
    const body = await api(`/api/plans?incident_id=${encodeURIComponent(incidentId)}`);
    for (const view of body?.plans ?? []) upsertPlan(view);
    if (ui.planErrors.get(incidentId)?.startsWith(t("plans"))) ui.planErrors.delete(incidentId);
  } catch (err) {
    ui.planErrors.set(incidentId, `${t("plans")}: ${err.message}`);
    logEvent("console.error", null, `#${incidentId} ${t("plans")}: ${err.message}`);
  } finally {
    ui.plansLoading.delete(incidentId);
    markPlans();
    if (ui.plansReload.delete(incidentId)) loadPlans(incidentId);
  }
}

/** The incident whose plans are listed in its card and drawn on the map. */
function selectIncident(id, { focus = true } = {}) {
  const inc = state.incidents.get(id);
  if (!inc) return;
  if (state.selectedIncident !== id) {
    state.selectedIncident = id;
    ui.planForms.clear();
    loadPlans(id);
    markPlans();
  }
  if (focus) focusOn(inc.lon, inc.lat, 13);
}

// ---------------------------------------------------------------- snapshots and WebSocket

async function loadSnapshots() {
  const results = await Promise.allSettled([
    api("/api/sensors").then(setSensors),
    api("/api/incidents").then((body) => {
      const fresh = new Set();
      for (const incident of body?.incidents ?? []) {
        fresh.add(incident.id);
        upsertIncident(incident);
      }
      for (const id of [...state.incidents.keys()]) if (!fresh.has(id)) state.incidents.delete(id);
      if (!state.incidents.has(state.selectedIncident)) state.selectedIncident = null;
      if (state.selectedIncident !== null) loadPlans(state.selectedIncident);
      markPlans();
    }),
    api("/api/vehicles").then((body) => { for (const v of body?.vehicles ?? []) upsertVehicle(v); }),
    ...extensions.snapshots.map((load) => load()),
  ]);
  const failed = results.filter((r) => r.status === "rejected");
  for (const r of failed) logEvent("console.error", null, r.reason?.message ?? String(r.reason));
  if (!failed.length) state.snapshotLoaded = true;
  flushNow();
}

/**
 * One message of the live feed (/ws, docs/live-feed.md): a welcome after our hello, then frames of
 * events, each already filtered for who we are. A frame holds state changes in order and the latest
 * update of each vehicle and sensor since the last one.
 */
function handleMessage(raw) {
  state.counters.messages += 1;
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    state.counters.badMessages += 1;
    logEvent("console.error", null, `bad message: ${String(raw).slice(0, 80)}`);
    return;
  }
  if (msg?.type === "welcome") {
    state.feedUser = msg.user ?? null;
    state.feedExpiresAt = msg.expires_at ?? null;
    return;
  }
  if (msg?.type === "frame" && Array.isArray(msg.events)) {
    for (const event of msg.events) {
      try {
        handleEvent(event);
      } catch (err) {
        state.counters.badMessages += 1;
        logEvent("console.error", null, `event not applied: ${err.message}`);
      }
    }
    return;
  }
  state.counters.badMessages += 1;
  logEvent("console.error", null, `unknown message: ${String(raw).slice(0, 80)}`);
}

/** One event of a frame: {seq, kind, time, data}. */
function handleEvent(msg) {
  // Audit-log events carry seq 1, 2, 3...; live-only ones (telemetry) carry 0. Gaps are normal
  // (the server sends each client only what its role may see); missed events are announced by
  // bus.overflow, and then the snapshots are refetched rather than showing a stale picture.
  if (Number.isInteger(msg?.seq) && msg.seq > 0 && (state.lastSeq === null || msg.seq > state.lastSeq)) {
    state.lastSeq = msg.seq;
  }
  const d = msg?.data ?? {};
  const handlers = extensionHandlers(String(msg?.kind ?? ""));
  for (const fn of handlers) {
    try { fn(d, msg); } catch (err) { logEvent("console.error", null, `${msg.kind}: ${err.message}`); }
  }
  switch (msg?.kind) {
    case "sensor.reading":
      applyReading(d);
      state.counters.readings += 1;
      if (ui.logReadings || (d.flag && d.flag !== "ok")) logEvent(msg.kind, msg.time, d);
      return;
    case "sensor.status": {
      const record = state.sensors.get(d.sensor_id);
      if (record) { record.status = d.status; markDirty("sensors"); }
      break;
    }
    case "incident.opened":
    case "incident.updated":
    case "incident.resolved":
      upsertIncident(d);
      break;
    case "vehicle.telemetry":
      upsertVehicle(d);
      return; // too frequent for the log; the vehicle list shows it
    case "bus.overflow":
      resync(t("feedBehind"));
      break;
    case "vehicle.lost":
      setVehicleLink(d.name, "lost");
      break;
    case "vehicle.recovered":
      setVehicleLink(d.name, "connected");
      break;
    case "task.created":
    case "task.acknowledged":
      upsertTask(d);
      break;
    case "dispatch.refused":
      if (d.incident_id != null) ui.incidentErrors.set(d.incident_id, d.reason ?? d.detail ?? eventLabel("dispatch.refused"));
      markDirty("incidents");
      break;
    case "plan.proposed":
    case "plan.refused":
    case "plan.approved":
    case "plan.rejected":
    case "plan.state":
      upsertPlan(d);
      break;
    case "plan.edited":
      if (d.replaces != null) supersedePlan(d.replaces);
      upsertPlan(d);
      break;
    case "plan.progress":
      applyPlanProgress(d);
      return; // every few seconds per flight: the plan list shows it
    case "plan.handover":
      // the relieved plan is marked handed over, and the new proposals come as plan.proposed
      if (d.incident_id === state.selectedIncident) loadPlans(d.incident_id);
      break;
    case "plan.recall":
    case "plan.launch_override":
    case "plan.auto_approval_skipped":
    case "traffic.alert":
    case "traffic.clear":
    case "traffic.hold_failed":
    case "airspace.granted":
    case "airspace.revoked":
    case "dispatch.approved":
    case "dispatch.state":
    case "mission.uploaded":
    case "mission.completed":
    case "reading.rejected":
    case "vehicle.connected":
    case "vehicle.mode":
    case "vehicle.mission_reached":
    case "vehicle.statustext":
      break;
    default:
      if (handlers.length) break; // an extension's kind
      state.counters.badMessages += 1;
      logEvent("console.error", msg?.time, `unknown event kind: ${String(msg?.kind).slice(0, 40)}`);
      return;
  }
  logEvent(msg.kind, msg.time, d);
}

function resync(reason) {
  const now = Date.now();
  if (now - ui.lastResync < RESYNC_MIN_MS) return;
  ui.lastResync = now;
  state.counters.resyncs += 1;
  logEvent("console.resync", null, reason);
  loadSnapshots();
}

function setConnection(status) {
  state.connection = status;
  const el = document.getElementById("conn-status");
  el.dataset.state = status;
  el.className = `conn ${status}`;
  el.textContent = t(status);
}

// Close codes of the live feed (command/api/live.py): refused or expired token, not allowed, bad message.
const WS_UNAUTHORIZED = 4401;

/** Open the feed again now (e.g. after signing in: the new token's view). */
function reconnectWebSocket() {
  ui.feedAnonymous = false;
  ui.ws?.close();
}

function connectWebSocket() {
  let attempt = 0;
  ui.feedAnonymous = false; // after the stored token was refused: reconnect as a viewer
  const open = () => {
    setConnection(attempt === 0 ? "connecting" : "disconnected");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${window.location.host}/ws`);
      ui.ws = ws;
    } catch {
      retry();
      return;
    }
    ws.onopen = () => {
      // The token goes in the first message: never in the URL (access logs), and a browser
      // cannot set headers on a WebSocket.
      const token = ui.feedAnonymous ? null : storageGet(TOKEN_KEY);
      ws.send(JSON.stringify({ type: "hello", token: token || null }));
      attempt = 0;
      state.lastSeq = null; // a new stream: its numbering is not comparable with the old one
      setConnection("connected");
      loadSnapshots();
    };
    ws.onmessage = (ev) => {
      try {
        handleMessage(ev.data);
      } catch (err) {
        state.counters.badMessages += 1;
        logEvent("console.error", null, `event not applied: ${err.message}`);
      }
    };
    ws.onclose = (ev) => {
      if (ev.code === WS_UNAUTHORIZED && !ui.feedAnonymous && storageGet(TOKEN_KEY)) {
        // The stored token was refused or ran out: keep it (actions will ask again), watch as a
        // viewer meanwhile, and say so.
        ui.feedAnonymous = true;
        flash(`${t("feedTokenRefused")} ${ev.reason || ""}`.trim(), "info");
        logEvent("console.info", null, `${t("feedTokenRefused")} ${ev.reason || ""}`);
        setConnection("disconnected");
        setTimeout(open, 200);
        return;
      }
      if (ev.code === WS_UNAUTHORIZED && ui.feedAnonymous) ui.feedAnonymous = false; // no anonymous reading: try the token again
      retry();
    };
    ws.onerror = () => { /* onclose follows and schedules the retry */ };
    state.socket = ws;
  };
  const retry = () => {
    setConnection("disconnected");
    // Exponential backoff with jitter, 1 s .. 30 s.
    const delay = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt = Math.min(attempt + 1, 10);
    setTimeout(open, delay);
  };
  open();
}

// ---------------------------------------------------------------- actions

async function approveDispatch(id) {
  const token = getToken({ ask: true });
  if (!token) {
    ui.incidentErrors.set(id, t("tokenMissing"));
    renderIncidents();
    return;
  }
  ui.pending.add(id);
  ui.incidentErrors.delete(id);
  renderIncidents();
  try {
    const by = document.getElementById("operator-name").value.trim();
    const body = await api(`/api/incidents/${encodeURIComponent(id)}/dispatch`,
      { method: "POST", token, ...(by ? { body: { by } } : {}) });
    if (body?.incident) upsertIncident(body.incident, { force: true });
    logEvent("console.info", null, `#${id} ${t("approve")}`);
  } catch (err) {
    let message = err.message;
    if (err.status === 401) {
      storageSet(TOKEN_KEY, null);
      message = `${t("tokenRejected")} ${err.message}`;
    }
    ui.incidentErrors.set(id, message);
    flash(`#${id} ${t("approve")}: ${message}`);
    logEvent("console.error", null, `#${id} ${message}`);
  } finally {
    ui.pending.delete(id);
    renderIncidents();
  }
}

async function acknowledgeTask(taskId) {
  const input = document.getElementById("operator-name");
  let by = input.value.trim();
  if (!by) {
    by = (window.prompt(t("askName")) || "").trim();
    if (!by) return;
    input.value = by;
    storageSet(OPERATOR_KEY, by);
  }
  const token = getToken({ ask: true });
  if (!token) { flash(t("tokenMissing")); return; }
  ui.ackPending.add(taskId);
  renderIncidents();
  try {
    const body = await api(`/api/tasks/${encodeURIComponent(taskId)}/ack`, { method: "POST", token, body: { by } });
    if (body?.task) upsertTask(body.task);
  } catch (err) {
    if (err.status === 401) storageSet(TOKEN_KEY, null);
    flash(`${t("ack")}: ${err.message}`);
    logEvent("console.error", null, `task ${taskId}: ${err.message}`);
  } finally {
    ui.ackPending.delete(taskId);
    renderIncidents();
  }
}

async function toggleEvidence(id) {
  if (ui.expanded.has(id)) {
    ui.expanded.delete(id);
    renderIncidents();
    return;
  }
  ui.expanded.add(id);
  try {
    const detail = await api(`/api/incidents/${encodeURIComponent(id)}`);
    ui.evidence.set(id, detail?.evidence ?? []);
  } catch (err) {
    ui.evidence.set(id, []);
    flash(`${t("evidence")}: ${err.message}`);
  }
  renderIncidents();
}

// Plan decisions: small inline forms under the plan (no dialogs), each field kept as a
// draft in ui.planForms so live re-renders never lose what is being typed.

function operatorName() {
  return document.getElementById("operator-name").value.trim() || DEFAULT_DISPATCHER;
}

function failureText(err) {
  if (err.status === 401) {
    storageSet(TOKEN_KEY, null);
    return `${t("tokenRejected")} ${err.message}`;
  }
  return err.message;
}

async function proposePlans(incidentId) {
  const token = getToken({ ask: true });
  if (!token) {
    ui.planErrors.set(incidentId, t("tokenMissing"));
    markPlans();
    return;
  }
  ui.proposing.add(incidentId);
  ui.planErrors.delete(incidentId);
  ui.planNotes.delete(incidentId);
  markPlans();
  try {
    const body = await api(`/api/incidents/${encodeURIComponent(incidentId)}/plans`,
      { method: "POST", token, body: { by: operatorName() } });
    const plans = body?.plans ?? [];
    const waiting = body?.waiting ?? [];
    for (const view of plans) upsertPlan(view);
    ui.planNotes.set(incidentId, { waiting, nothingNew: !plans.length && !waiting.length });
    logEvent("console.info", null, `#${incidentId} ${t("planVehicles")}: ${plans.length}`);
  } catch (err) {
    const message = failureText(err);
    ui.planErrors.set(incidentId, message);
    logEvent("console.error", null, `#${incidentId} ${t("planVehicles")}: ${message}`);
  } finally {
    ui.proposing.delete(incidentId);
    ui.focusNext = `plans:${incidentId}:propose`;
    markPlans();
  }
}

const FORM_FIRST_FIELD = { approve: "pilot", override: "reason", reject: "reason", edit: "vehicle" };

function togglePlanForm(planId, kind) {
  if (ui.planForms.get(planId)?.kind === kind) {
    closePlanForm(planId);
    return;
  }
  ui.planForms.set(planId, {
    kind, pilot: ui.lastPilot, reason: "", vehicle: "", clearance: "", error: null, reasons: [],
  });
  ui.focusNext = `plan:${planId}:${FORM_FIRST_FIELD[kind]}`;
  if (kind === "edit") refreshVehicleChoices();
  markDirty("incidents");
}

function closePlanForm(planId) {
  const kind = ui.planForms.get(planId)?.kind;
  ui.planForms.delete(planId);
  ui.focusNext = `plan:${planId}:${kind === "override" ? "approve" : kind}-btn`;
  markDirty("incidents");
}

function formError(planId, message, field = null) {
  const form = ui.planForms.get(planId);
  if (form) form.error = message;
  if (field) ui.focusNext = `plan:${planId}:${field}`;
  markDirty("incidents");
}

/** The vehicle choices of an edit come from /api/vehicles, fetched again when the form opens. */
async function refreshVehicleChoices() {
  try {
    const body = await api("/api/vehicles");
    for (const v of body?.vehicles ?? []) upsertVehicle(v);
  } catch (err) {
    logEvent("console.error", null, `/api/vehicles: ${err.message}`);
  }
  markDirty("incidents");
}

/** The failed checks of a launch-weather refusal: "refused: launch weather: a; b (approve with ...)". */
function launchReasons(detail) {
  const text = String(detail).slice(LAUNCH_WEATHER_REFUSAL.length).replace(/^:\s*/, "")
    .replace(/\s*\(approve with an override reason[^)]*\)\s*$/, "");
  const reasons = text.split(/;\s+/).map((r) => r.trim()).filter(Boolean);
  return reasons.length ? reasons : [String(detail)];
}

async function decidePlan(planId, action, body) {
  const token = getToken({ ask: true });
  if (!token) {
    formError(planId, t("tokenMissing"));
    return null;
  }
  ui.planPending.add(planId);
  const form = ui.planForms.get(planId);
  if (form) form.error = null;
  markDirty("incidents");
  try {
    return await api(`/api/plans/${encodeURIComponent(planId)}/${action}`, { method: "POST", token, body });
  } finally {
    ui.planPending.delete(planId);
    markDirty("incidents");
  }
}

async function approvePlan(planId) {
  const form = ui.planForms.get(planId);
  if (!form) return;
  const override = form.kind === "override";
  const pilot = form.pilot.trim();
  const reason = form.reason.trim();
  if (!pilot) { formError(planId, t("pilotRequired"), "pilot"); return; }
  if (override && !reason) { formError(planId, t("reasonRequired"), "reason"); return; }
  ui.lastPilot = pilot;
  try {
    const view = await decidePlan(planId, "approve",
      { by: operatorName(), pilot, ...(override ? { override_reason: reason } : {}) });
    if (!view) return;
    ui.planForms.delete(planId);
    upsertPlan(view);
    ui.focusNext = `plan:${planId}:item`;
    logEvent("console.info", null, `${t("plan")} ${planId} ${t("approvePlan")} · ${t("pilot")} ${pilot}`
      + (override ? ` · ${t("launchAnyway")}: ${reason}` : ""));
  } catch (err) {
    const current = ui.planForms.get(planId);
    if (err.status === 422 && String(err.detail).startsWith(LAUNCH_WEATHER_REFUSAL) && current) {
      // The dispatcher may launch anyway, with a reason that is logged with their name.
      ui.planForms.set(planId, {
        ...current, kind: "override", reason: override ? current.reason : "", error: null,
        reasons: launchReasons(err.detail),
      });
      ui.focusNext = `plan:${planId}:reason`;
      markDirty("incidents");
    } else {
      formError(planId, failureText(err));
      logEvent("console.error", null, `${t("plan")} ${planId} ${t("approvePlan")}: ${err.message}`);
    }
  }
}

async function rejectPlan(planId) {
  const form = ui.planForms.get(planId);
  if (!form) return;
  const reason = form.reason.trim();
  if (!reason) { formError(planId, t("reasonRequired"), "reason"); return; }
  try {
    const view = await decidePlan(planId, "reject", { by: operatorName(), reason });
    if (!view) return;
    ui.planForms.delete(planId);
    upsertPlan(view);
    ui.focusNext = `plan:${planId}:item`;
    logEvent("console.info", null, `${t("plan")} ${planId} ${t("rejectPlan")}: ${reason}`);
  } catch (err) {
    formError(planId, failureText(err));
    logEvent("console.error", null, `${t("plan")} ${planId} ${t("rejectPlan")}: ${err.message}`);
  }
}

// The API's bounds for an edited clearance over the highest ground (command/api/app.py EditBody).
const CLEARANCE_MIN_M = 20;
const CLEARANCE_MAX_M = 120;

async function editPlan(planId) {
  const form = ui.planForms.get(planId);
  if (!form) return;
  const reason = form.reason.trim();
  const clearanceText = String(form.clearance ?? "").trim();
  const clearance = clearanceText === "" ? null : Number(clearanceText);
  if (clearance !== null && !(clearance >= CLEARANCE_MIN_M && clearance <= CLEARANCE_MAX_M)) {
    formError(planId, t("clearanceRange"), "clearance");
    return;
  }
  if (!reason) { formError(planId, t("reasonRequired"), "reason"); return; }
  const body = { by: operatorName(), reason };
  if (form.vehicle) body.vehicle = form.vehicle;
  if (clearance !== null) body.clearance_m = clearance;
  try {
    const view = await decidePlan(planId, "edit", body);
    if (!view) return;
    ui.planForms.delete(planId);
    supersedePlan(planId);
    upsertPlan(view);
    ui.focusNext = `plan:${view.id}:item`;
    logEvent("console.info", null, `${t("plan")} ${planId} → ${view.id} ${t("editPlan")}: ${reason}`);
  } catch (err) {
    formError(planId, failureText(err));
    logEvent("console.error", null, `${t("plan")} ${planId} ${t("editPlan")}: ${err.message}`);
  }
}

function submitPlanForm(planId) {
  const kind = ui.planForms.get(planId)?.kind;
  if (kind === "approve" || kind === "override") approvePlan(planId);
  else if (kind === "reject") rejectPlan(planId);
  else if (kind === "edit") editPlan(planId);
}

// ---------------------------------------------------------------- panels

function sortedIncidents() {
  return [...state.incidents.values()].sort((a, b) =>
    (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9)
    || (LEVEL_RANK[b.level] ?? 0) - (LEVEL_RANK[a.level] ?? 0)
    || Date.parse(b.opened_at ?? 0) - Date.parse(a.opened_at ?? 0));
}

function renderTask(task) {
  const acked = task.status === "acknowledged";
  return h("li", { class: `task ${acked ? "acked" : "sent"}`, dataset: { id: task.id, status: task.status } },
    h("div", { class: "task-head" },
      h("strong", {}, pick(task, "department_name") || task.department),
      h("span", { class: `task-status ${acked ? "ok" : "waiting"}` },
        acked ? `${t("acked")} · ${task.acknowledged_by ?? ""} ${formatTime(task.acknowledged_at)}` : t("notAcked"))),
    h("div", { class: "task-text" }, pick(task, "text")),
    acked ? null : h("button", {
      type: "button", class: "ack-btn", dataset: { task: task.id },
      disabled: ui.ackPending.has(task.id),
      onclick: (ev) => { ev.stopPropagation(); acknowledgeTask(task.id); },
    }, t("ack")));
}

function taskLabel(kind) {
  return kind ? t(`taskKind.${kind}`) : "—";
}

function minutes(seconds) {
  return typeof seconds === "number" && Number.isFinite(seconds)
    ? `${fmtNumber(seconds / 60, 1)} ${t("minutes")}` : "—";
}

function percent(value) {
  return typeof value === "number" && Number.isFinite(value) ? `${fmtNumber(value, 0)} %` : "—";
}

/** "item 3/12 · coverage 37 % · reached" for a flying plan, or null before its first report. */
function progressText(progress) {
  if (!progress || progress.item == null) return null;
  const parts = [`${t("progressItem")} ${progress.item}/${progress.items ?? "?"}`];
  if (typeof progress.coverage === "number") parts.push(`${t("coverage")} ${Math.round(progress.coverage * 100)} %`);
  if (progress.reached) parts.push(t("reached"));
  else if (typeof progress.time_to_target_s === "number") parts.push(`${t("timeToTarget")} ${minutes(progress.time_to_target_s)}`);
  if (typeof progress.battery_pct === "number") parts.push(`${t("battery")} ${percent(progress.battery_pct)}`);
  return parts.join(" · ");
}

/** The plans of an incident worth showing, newest first: every open plan, and for each task its
 * newest refused, rejected or finished entry unless a newer plan of the task replaced it. */
function incidentPlans(incidentId) {
  const plans = [...state.plans.values()]
    .filter((p) => p.incident_id === incidentId && p.state !== "superseded")
    .sort((a, b) => b.id - a.id);
  const shown = new Set();
  return plans.filter((p) => {
    const keep = PLAN_OPEN.has(p.state) || !shown.has(p.task_key);
    if (keep) shown.add(p.task_key);
    return keep;
  });
}

function approvalText(a) {
  return `${a.zone_id}: ${t("grant")} #${a.grant_id} ${a.reference ?? ""} (${a.granted_by ?? ""}), `
    + `${t("flownUpTo")} ${fmtNumber(a.flight_max_agl_m, 0)} m / ${t("cap")} ${fmtNumber(a.max_alt_agl_m, 0)} m`;
}

function renderPlanChecks(p) {
  const proposal = p.proposal ?? {};
  const launch = proposal.launch;
  const rows = [
    ...(proposal.checks ?? []),
    ...(proposal.notes ?? []).map((n) => `${t("note")}: ${n}`),
  ];
  if (launch) {
    const w = launch.weather ?? {};
    const observed = [
      w.wind_mps != null ? `${t("wind")} ${fmtNumber(w.wind_mps, 1)} m/s` : null,
      w.temp_c != null ? `${fmtNumber(w.temp_c, 1)} °C` : null,
      w.rain_mm_per_h != null ? `${t("rain")} ${fmtNumber(w.rain_mm_per_h, 1)} mm/h` : null,
    ].filter(Boolean).join(", ");
    rows.push(`${t("launchWeather")}: ${launch.ok ? t("passed") : t("failed")}`
      + (launch.station_id ? ` · ${launch.station_id}${observed ? ` (${observed})` : ""}` : "")
      + (launch.reasons?.length ? ` · ${launch.reasons.join("; ")}` : ""));
    for (const n of launch.not_checked ?? []) rows.push(`${t("notChecked")}: ${n}`);
  }
  if (!rows.length) return null;
  return h("details", {
    class: "plan-checks", open: ui.checksOpen.has(p.id),
    ontoggle: (ev) => { if (ev.target.open) ui.checksOpen.add(p.id); else ui.checksOpen.delete(p.id); },
  },
  h("summary", { dataset: { focus: `plan:${p.id}:checks` } }, `${t("checks")} (${rows.length})`),
  h("ul", {}, rows.map((r) => h("li", {}, r))));
}

function renderPlanFacts(p) {
  const proposal = p.proposal ?? {};
  const approvals = proposal.approvals ?? [];
  const progress = progressText(p.progress);
  const launch = proposal.launch;
  const decided = p.decided_by && p.state !== "superseded"
    ? (p.state === "rejected"
      ? `${t("rejectedBy")} ${p.decided_by}${p.decision_reason ? `: ${p.decision_reason}` : ""}`
      : `${t("approvedBy")} ${p.decided_by} · ${t("pilot")} ${p.pilot ?? "—"}`)
    : null;
  return [
    h("div", { class: "plan-facts" },
      h("span", { class: "plan-ttt" }, `${t("timeToTarget")} ${minutes(proposal.time_to_target_s)}`),
      h("span", { class: "plan-battery" }, `${t("batteryAtLanding")} ${percent(proposal.battery_at_landing_pct)}`),
      h("span", { class: "plan-duration" }, `${t("flightTime")} ${minutes(proposal.est_duration_s)}`),
      h("span", { class: "plan-energy" }, `${t("energy")} ${percent(proposal.energy_pct)}`),
      h("span", { class: "plan-agl" }, `${t("maxAgl")} ${fmtNumber(proposal.max_agl_m, 0)} m`),
      h("span", { class: "plan-return" }, `${t("returnMode")} ${proposal.return?.mode ?? "—"}`)),
    h("div", { class: "plan-approvals" },
      `${t("approvals")}: `,
      approvals.length ? h("ul", {}, approvals.map((a) => h("li", {}, approvalText(a)))) : t("approvalsNone")),
    proposal.pattern_text ? h("div", { class: "plan-pattern muted" }, proposal.pattern_text) : null,
    proposal.handover_from != null ? h("div", { class: "plan-origin" }, `${t("handoverOf")} ${proposal.handover_from}`) : null,
    proposal.edited_from != null ? h("div", { class: "plan-origin" },
      `${t("editedFrom")} ${proposal.edited_from}${proposal.edit_reason ? `: ${proposal.edit_reason}` : ""}`) : null,
    decided ? h("div", { class: "plan-decision" }, decided) : null,
    launch?.override ? h("div", { class: "plan-override" },
      `${t("launchOverride")}: ${launch.override.by}: ${launch.override.reason}`
        + (launch.reasons?.length ? ` (${launch.reasons.join("; ")})` : "")) : null,
    progress ? h("div", { class: "plan-progress" }, progress) : null,
    p.progress?.handed_over ? h("div", { class: "plan-handover" },
      `${t("handedOver")}${p.progress.handed_over_why ? `: ${p.progress.handed_over_why}` : ""}`) : null,
    p.error ? h("div", { class: "plan-error error-text" }, p.error) : null,
    renderPlanChecks(p),
  ];
}

function formField(label, control) {
  return h("label", { class: "plan-field" }, h("span", {}, label), control);
}

function renderPlanForm(p, form) {
  const pending = ui.planPending.has(p.id);
  const key = (name) => `plan:${p.id}:${name}`;
  const draft = (name) => (ev) => { form[name] = ev.target.value; };
  const text = (name, attrs = {}) => h("input", {
    type: "text", name, value: form[name] ?? "", required: true, "aria-required": "true",
    dataset: { focus: key(name) }, oninput: draft(name),
    oncompositionstart: () => { ui.composing = true; },
    oncompositionend: (ev) => { ui.composing = false; form[name] = ev.target.value; },
    ...attrs,
  });
  const body = [];
  if (form.kind === "override") {
    body.push(h("div", { class: "launch-refusal", role: "alert" },
      h("strong", {}, t("launchRefused")),
      h("ul", {}, form.reasons.map((r) => h("li", {}, r)))));
  }
  if (form.kind === "approve" || form.kind === "override") {
    body.push(formField(t("pilot"), text("pilot", { maxlength: 64, autocomplete: "name" })));
  }
  if (form.kind === "override") body.push(formField(t("overrideReason"), text("reason", { maxlength: 500 })));
  if (form.kind === "reject") body.push(formField(t("reason"), text("reason", { maxlength: 500 })));
  if (form.kind === "edit") {
    const vehicles = [...state.vehicles.values()].sort((a, b) => a.name.localeCompare(b.name));
    body.push(
      formField(t("vehicle"), h("select", {
        name: "vehicle", dataset: { focus: key("vehicle") },
        onchange: draft("vehicle"), oninput: draft("vehicle"),
      },
      h("option", { value: "", selected: !form.vehicle }, `${t("keepVehicle")} (${p.vehicle ?? "—"})`),
      vehicles.map((v) => h("option", { value: v.name, selected: form.vehicle === v.name },
        `${v.name} · ${t(`vehicleType.${v.type}`)} · ${t(`vehicleState.${v.state}`)}`)))),
      formField(t("clearance"), h("input", {
        type: "number", name: "clearance", min: CLEARANCE_MIN_M, max: CLEARANCE_MAX_M, step: 1,
        inputmode: "numeric", placeholder: `${CLEARANCE_MIN_M}–${CLEARANCE_MAX_M}`, value: form.clearance ?? "",
        dataset: { focus: key("clearance") }, oninput: draft("clearance"),
      })),
      formField(t("reason"), text("reason", { maxlength: 500 })));
  }
  const submitLabel = { approve: t("approvePlan"), override: t("launchAnyway"), reject: t("rejectPlan"),
    edit: t("replan") }[form.kind];
  return h("form", {
    class: `plan-form ${form.kind}-form`, dataset: { kind: form.kind }, novalidate: true,
    onsubmit: (ev) => { ev.preventDefault(); if (!pending) submitPlanForm(p.id); },
    onkeydown: (ev) => { if (ev.key === "Escape") { ev.preventDefault(); closePlanForm(p.id); } },
  },
  ...body,
  form.error ? h("div", { class: "plan-form-error", role: "alert" }, form.error) : null,
  h("div", { class: "plan-form-buttons" },
    h("button", { type: "submit", class: `plan-submit ${form.kind}`, disabled: pending, dataset: { focus: key("submit") } },
      pending ? t("approving") : submitLabel),
    h("button", { type: "button", class: "plan-cancel", dataset: { focus: key("cancel") },
      onclick: () => closePlanForm(p.id) }, t("cancel"))));
}

function renderPlanActions(p) {
  const open = ui.planForms.get(p.id)?.kind;
  const button = (kind, label) => h("button", {
    type: "button", class: `plan-action plan-${kind}`, dataset: { focus: `plan:${p.id}:${kind}-btn` },
    "aria-expanded": String(open === kind || (kind === "approve" && open === "override")),
    disabled: ui.planPending.has(p.id),
    onclick: () => togglePlanForm(p.id, kind),
  }, label);
  return h("div", { class: "plan-actions" },
    button("approve", t("approvePlan")), button("reject", t("rejectPlan")), button("edit", t("editPlan")));
}

function renderPlan(p) {
  const task = p.task ?? {};
  const refused = p.state === "refused";
  const form = p.state === "proposed" ? ui.planForms.get(p.id) : null;
  return h("li", {
    class: `plan state-${p.state}`,
    dataset: { id: p.id, state: p.state, task: p.task_key, vehicle: p.vehicle ?? "", focus: `plan:${p.id}:item` },
    tabindex: -1,
    style: `border-left-color:${refused ? "#9e9e9e" : planColour(p.id)}`,
  },
  h("div", { class: "plan-head" },
    h("span", { class: "plan-id muted" }, `${t("plan")} ${p.id}`),
    h("strong", { class: "plan-task" }, taskLabel(task.kind ?? p.task_key)),
    task.kind && p.task_key !== task.kind ? h("span", { class: "plan-key muted" }, p.task_key) : null,
    h("span", { class: "plan-vehicle" }, p.vehicle ?? "—"),
    h("span", { class: `badge plan-state state-${p.state}` }, t(`planState.${p.state}`))),
  pick(task, "reason") ? h("div", { class: "plan-reason" }, pick(task, "reason")) : null,
  task.needs?.length ? h("div", { class: "plan-needs muted" },
    `${t("needs")}: ${task.needs.map((n) => t(`payload.${n}`)).join(", ")}`) : null,
  refused
    ? h("div", { class: "plan-refusals" },
      h("span", {}, t("refusedReasons")),
      h("ul", {}, (p.proposal?.reasons ?? []).map((r) => h("li", {}, r))))
    : renderPlanFacts(p),
  p.state === "proposed" ? renderPlanActions(p) : null,
  form ? renderPlanForm(p, form) : null);
}

function renderPlansSection(inc) {
  const plans = incidentPlans(inc.id);
  const notes = ui.planNotes.get(inc.id);
  const error = ui.planErrors.get(inc.id);
  const proposing = ui.proposing.has(inc.id);
  return h("section", {
    class: "plans", dataset: { incident: inc.id }, "aria-label": t("plans"),
    // clicks and keys inside the plans belong to them, not to the card that selects the incident
    onclick: (ev) => ev.stopPropagation(),
    onkeydown: (ev) => ev.stopPropagation(),
  },
  h("h3", {}, t("plans")),
  inc.status !== "closed" ? h("button", {
    type: "button", class: "plan-btn", dataset: { focus: `plans:${inc.id}:propose` }, disabled: proposing,
    onclick: () => proposePlans(inc.id),
  }, proposing ? t("planning") : t("planVehicles")) : null,
  error ? h("div", { class: "incident-error plans-error", role: "alert" }, error) : null,
  notes?.nothingNew ? h("div", { class: "plans-note muted" }, t("planNothingNew")) : null,
  notes?.waiting?.length ? h("ul", { class: "plans-waiting muted" }, notes.waiting.map((w) =>
    h("li", {}, `${taskLabel(w.key)} ${t("waitsFor")} ${taskLabel(w.after)}`))) : null,
  plans.length
    ? h("ol", { class: "plan-list" }, plans.map(renderPlan))
    : h("div", { class: "empty" }, ui.plansLoading.has(inc.id) ? t("loading") : t("noPlans")));
}

function renderIncident(inc) {
  const colour = LEVEL_COLOURS[inc.level] ?? "#777";
  const error = ui.incidentErrors.get(inc.id);
  const dispatch = inc.dispatch;
  const evidence = ui.expanded.has(inc.id) ? ui.evidence.get(inc.id) : null;
  const selected = state.selectedIncident === inc.id;
  return h("li", {
    class: `incident ${inc.status}${selected ? " selected" : ""}`,
    dataset: { id: inc.id, level: inc.level, status: inc.status, focus: `incident:${inc.id}` },
    style: `border-left-color:${colour}`,
    tabindex: 0,
    "aria-current": selected ? "true" : null,
    onclick: () => selectIncident(inc.id),
    onkeydown: (ev) => {
      if (ev.target === ev.currentTarget && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        selectIncident(inc.id);
      }
    },
  },
  h("div", { class: "incident-head" },
    h("span", { class: "level-badge", style: `background:${colour}` }, t(`level.${inc.level}`)),
    h("span", { class: "response" }, responseText(inc)),
    h("span", { class: "incident-status" }, t(`incidentStatus.${inc.status}`))),
  h("div", { class: "incident-title" }, `#${inc.id} ${pick(inc, "title")}`),
  h("div", { class: "incident-meta" },
    h("span", {}, `${t(`kind.${inc.kind}`)} · ${t("opened")} `),
    h("time", { datetime: inc.opened_at }, formatDateTime(inc.opened_at)),
    inc.updated_at && inc.updated_at !== inc.opened_at
      ? h("span", { class: "muted" }, ` · ${t("updated")} ${formatTime(inc.updated_at)}`) : null),
  pick(inc, "reason") ? h("p", { class: "incident-reason" }, pick(inc, "reason")) : null,
  h("p", { class: "assessment-note" }, pick(inc, "assessment_note")),
  dispatch ? h("div", { class: `dispatch-state ${dispatch.state}` },
    `${t("dispatch")}: ${dispatch.vehicle} · ${t(`dispatchState.${dispatch.state}`)}`
      + (dispatch.approved_by ? ` · ${dispatch.approved_by} ${formatTime(dispatch.approved_at)}` : ""),
    dispatch.error ? h("span", { class: "error-text" }, ` · ${dispatch.error}`) : null) : null,
  inc.status === "open" ? h("button", {
    type: "button", class: "approve-btn", dataset: { id: inc.id },
    disabled: ui.pending.has(inc.id),
    onclick: (ev) => { ev.stopPropagation(); approveDispatch(inc.id); },
  }, ui.pending.has(inc.id) ? t("approving") : (getLang() === "zh" ? "批准派遣 / Approve dispatch" : "Approve dispatch / 批准派遣")) : null,
  error ? h("div", { class: "incident-error", role: "alert" }, error) : null,
  selected ? renderPlansSection(inc) : null,
  inc.tasks?.length ? h("div", { class: "tasks" },
    h("h3", {}, t("tasks")),
    h("ul", { class: "task-list" }, inc.tasks.map(renderTask))) : null,
  h("button", {
    type: "button", class: "link-btn evidence-btn",
    onclick: (ev) => { ev.stopPropagation(); toggleEvidence(inc.id); },
  }, `${ui.expanded.has(inc.id) ? "▾" : "▸"} ${t("showEvidence")}`),
  evidence ? h("ul", { class: "evidence" }, evidence.map((e) => h("li", {},
    `${e.sensor_id} ${e.quantity} = ${fmtNumber(e.value)} ${e.unit ?? ""} · ${formatDateTime(e.time)}`))) : null);
}

function renderIncidents() {
  const list = document.getElementById("incident-list");
  // The list is rebuilt on every change: keep keyboard focus (and the caret) where it was.
  const active = document.activeElement;
  const kept = active && list.contains(active) ? active.dataset?.focus : null;
  const focusKey = ui.focusNext ?? kept;
  const caret = !ui.focusNext && kept && typeof active.selectionStart === "number"
    ? [active.selectionStart, active.selectionEnd] : null;
  const scrollTop = list.scrollTop;
  const incidents = sortedIncidents();
  list.replaceChildren(...(incidents.length
    ? incidents.map(renderIncident)
    : [h("li", { class: "empty" }, t("noIncidents"))]));
  list.scrollTop = scrollTop;
  const moved = ui.focusNext !== null;
  ui.focusNext = null;
  if (focusKey) {
    const el = list.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`);
    if (el) {
      el.focus({ preventScroll: !moved });
      if (caret) try { el.setSelectionRange(...caret); } catch { /* not a text field */ }
    }
  }
  document.getElementById("incident-count").textContent =
    String(incidents.filter((i) => i.status !== "closed").length);
}

const COPTER_SVG = `<svg viewBox="0 0 32 32" width="30" height="30" aria-hidden="true">
  <g stroke="#fff" stroke-width="1.5"><line x1="8" y1="8" x2="24" y2="24"/><line x1="24" y1="8" x2="8" y2="24"/></g>
  <g fill="currentColor" stroke="#fff" stroke-width="1.2">
    <circle cx="8" cy="8" r="5"/><circle cx="24" cy="8" r="5"/><circle cx="8" cy="24" r="5"/><circle cx="24" cy="24" r="5"/>
    <circle cx="16" cy="16" r="4.5"/></g>
  <path d="M16 2 L20 9 L12 9 Z" fill="#fff" stroke="currentColor" stroke-width="1"/></svg>`;
const BOAT_SVG = `<svg viewBox="0 0 32 32" width="30" height="30" aria-hidden="true">
  <path d="M16 2 C22 8 23 13 23 18 L23 29 L9 29 L9 18 C9 13 10 8 16 2 Z" fill="currentColor" stroke="#fff" stroke-width="1.5"/>
  <rect x="13" y="15" width="6" height="7" rx="1" fill="#fff" opacity="0.85"/></svg>`;

function vehicleIcon(type) {
  const span = h("span", { class: `veh-icon ${type === "boat" ? "boat" : "copter"}` });
  span.innerHTML = type === "boat" ? BOAT_SVG : COPTER_SVG; // constant markup, no data
  span.style.color = VEHICLE_COLOURS[type] ?? "#444";
  return span;
}

function renderVehicleRow(v) {
  const row = h("li", {
    class: `vehicle ${v.state ?? ""} link-${v.link ?? "never"}`,
    dataset: { name: v.name, type: v.type, state: v.state ?? "", link: v.link ?? "" },
    onclick: () => {
      const now = state.vehicles.get(v.name) ?? v; // the row outlives this telemetry: where it is now
      focusOn(now.lon, now.lat, 14);
    },
  });
  const icon = vehicleIcon(v.type);
  icon.firstElementChild.style.transform = `rotate(${Number(v.heading_deg) || 0}deg)`;
  row.append(
    h("div", { class: "vehicle-head" },
      icon,
      h("strong", { class: "vehicle-name" }, v.name),
      h("span", { class: "muted" }, t(`vehicleType.${v.type}`)),
      h("span", { class: `badge state-${v.state}` }, t(`vehicleState.${v.state}`)),
      v.incident_id != null ? h("span", { class: "badge incident-ref" }, `#${v.incident_id}`) : null),
    h("div", { class: "vehicle-meta" },
      h("span", { class: "pos", title: "lon, lat" }, fmtLonLat(v.lon, v.lat)),
      h("span", {}, `${t("altitude")} ${fmtNumber(v.alt_rel_m, 1)} m`),
      h("span", {}, `${t("speed")} ${fmtNumber(v.groundspeed_mps, 1)} m/s`),
      h("span", {}, `${t("heading")} ${fmtNumber(v.heading_deg, 0)}°`),
      h("span", { class: typeof v.battery_pct === "number" && v.battery_pct < 30 ? "low" : "" },
        `${t("battery")} ${fmtNumber(v.battery_pct, 0)}%`),
      h("span", {}, `${v.mode ?? "—"} · ${v.armed ? t("armed") : t("disarmed")}`),
      h("span", { class: `link link-${v.link}` }, t(`link.${v.link}`))));
  return row;
}

function renderVehicles(names = null) {
  const list = document.getElementById("vehicle-list");
  const vehicles = [...state.vehicles.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (names && list.querySelector(".vehicle")) {
    // Update only the rows that changed; keeps scrolling and hover stable.
    for (const name of names) {
      const v = state.vehicles.get(name);
      const old = list.querySelector(`.vehicle[data-name="${CSS.escape(name)}"]`);
      if (v && old) {
        // update the row in place: an element replaced on every telemetry frame cannot be clicked
        // reliably (it is gone between the press and the release) and loses hover and selection
        const fresh = renderVehicleRow(v);
        old.className = fresh.className;
        Object.assign(old.dataset, fresh.dataset);
        old.replaceChildren(...fresh.childNodes);
      } else if (v) return renderVehicles();
    }
  } else {
    list.replaceChildren(...(vehicles.length
      ? vehicles.map(renderVehicleRow)
      : [h("li", { class: "empty" }, t("noVehicles"))]));
  }
  document.getElementById("vehicle-count").textContent = String(vehicles.length);
  return undefined;
}

function renderSensorCount() {
  let online = 0;
  for (const record of state.sensors.values()) if (record.status === "online") online += 1;
  document.getElementById("sensor-count").textContent = String(state.sensors.size);
  document.getElementById("sensor-online").textContent = String(online);
}

function renderLegend() {
  const swatch = (colour, label, shape = "dot") =>
    h("li", {}, h("span", { class: `swatch ${shape}`, style: `background:${colour}` }), label);
  document.getElementById("legend").replaceChildren(
    h("strong", {}, t("legend")),
    h("ul", {},
      Object.entries(LEVEL_COLOURS).map(([level, colour]) => swatch(colour, t(`level.${level}`))),
      Object.entries(SENSOR_COLOURS).map(([status, colour]) =>
        swatch(colour, `${t("sensors")} · ${t(`sensorStatus.${status}`)}`, "dot small")),
      swatch("rgba(211,47,47,0.45)", t("airspace.prohibited"), "box"),
      swatch("rgba(245,124,0,0.4)", `${t("airspace.height_limited")} ≤30 m`, "box"),
      swatch("rgba(230,184,0,0.35)", t("airspace.height_limited"), "box"),
      swatch("rgba(126,87,194,0.25)", t("airspace.controlled"), "box"),
      h("li", {}, h("span", { class: "swatch line dashed" }), t("planProposedLine")),
      h("li", {}, h("span", { class: "swatch line" }), t("planActiveLine"))));
}

function renderStaticText() {
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  document.getElementById("lang-toggle").textContent = t("langToggle");
  const d = state.district;
  if (d) {
    document.getElementById("district-name").textContent = pick(d, "name");
    const notice = document.getElementById("district-notice");
    // {en, zh}, or one bilingual string as written in district.yaml.
    const n = d.notice;
    const text = typeof n === "string" ? n
      : n ? (getLang() === "zh" ? n.zh ?? n.en : n.en ?? n.zh) : "";
    notice.textContent = text ?? "";
    notice.title = text ?? "";
    notice.hidden = !text;
  }
  setConnection(state.connection);
}

function switchLang(next) {
  setLang(next);
  storageSet(LANG_KEY, getLang());
  ui.popup?.popup.remove();
  renderStaticText();
  renderLegend();
  renderIncidents();
  renderVehicles();
  rerenderEventLog();
}

function tickClock() {
  document.getElementById("clock").textContent = `${formatDateTime(new Date())} (UTC+8)`;
}

// ---------------------------------------------------------------- map

function buildStyle(district) {
  const sources = {};
  const geojson = () => ({ type: "geojson", data: EMPTY });
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1ea" } }];
  if (district.tile_url) {
    sources.basemap = { type: "raster", tiles: [district.tile_url], tileSize: 256 };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  for (const name of [...GEO_LAYERS, "mission-paths", "plan-areas", "plan-paths", "vehicle-trails", "sensors",
    "incidents"]) {
    sources[name] = geojson();
  }
  const isPolygon = ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]];
  const isLine = ["in", ["geometry-type"], ["literal", ["LineString", "MultiLineString"]]];
  const ceiling = ["coalesce", ["get", "ceiling_agl_m"], 1e9];
  layers.push(
    { id: "boundary-fill", type: "fill", source: "boundary", paint: { "fill-color": "#fbfbf6", "fill-opacity": 0.9 } },
    { id: "water", type: "fill", source: "rivers", filter: isPolygon, paint: { "fill-color": "#a9d3f0" } },
    {
      id: "rivers", type: "line", source: "rivers", filter: isLine,
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#7bb8e6", "line-width": ["interpolate", ["linear"], ["zoom"], 9, 1.5, 14, 5] },
    },
    {
      id: "roads-casing", type: "line", source: "roads",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": "#c9c2b2",
        "line-width": ["interpolate", ["linear"], ["zoom"], 9,
          ["match", ["get", "class"], "expressway", 3.2, 2], 14,
          ["match", ["get", "class"], "expressway", 9, 6]],
      },
    },
    {
      id: "roads", type: "line", source: "roads",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": ["match", ["get", "class"], "expressway", "#f6c26b", "#ffffff"],
        "line-width": ["interpolate", ["linear"], ["zoom"], 9,
          ["match", ["get", "class"], "expressway", 2, 1.2], 14,
          ["match", ["get", "class"], "expressway", 6, 4]],
      },
    },
    {
      // Airport drone zones: no-fly red, 30 m zones orange, higher ceilings yellow,
      // controlled airspace violet (2024 Interim Regulations on UA flight, YUBEI.md).
      id: "airspace-fill", type: "fill", source: "airspace",
      layout: {
        "fill-sort-key": ["match", ["get", "kind"], "prohibited", 1000, "height_limited",
          ["-", 500, ["min", ceiling, 499]], 0],
      },
      paint: {
        "fill-color": ["match", ["get", "kind"],
          "prohibited", "#d32f2f",
          "height_limited", ["case", ["<=", ceiling, 30], "#f57c00", "#e6b800"],
          "#7e57c2"],
        "fill-opacity": ["match", ["get", "kind"], "prohibited", 0.4, "height_limited", 0.22, 0.08],
      },
    },
    {
      id: "airspace-line", type: "line", source: "airspace",
      paint: {
        "line-color": ["match", ["get", "kind"],
          "prohibited", "#b71c1c",
          "height_limited", ["case", ["<=", ceiling, 30], "#e65100", "#c79a00"],
          "#7e57c2"],
        "line-width": 1.2,
        "line-dasharray": [3, 2],
      },
    },
    {
      id: "boundary-line", type: "line", source: "boundary",
      paint: { "line-color": "#5d6b5f", "line-width": 2, "line-dasharray": [4, 2, 1, 2] },
    },
    {
      id: "facilities", type: "circle", source: "facilities",
      paint: {
        "circle-color": ["match", ["get", "kind"],
          "town", "#6d6d6d", "hospital", "#e53935", "school", "#8e24aa",
          "fire_station", "#c62828", "drone_base", VEHICLE_COLOURS.copter,
          "boat_base", VEHICLE_COLOURS.boat, "landslide_slope", "#8d6e63",
          "weather_station", "#0288d1", "#9e9e9e"],
        "circle-radius": ["case", ["==", ["get", "kind"], "town"],
          ["interpolate", ["linear"], ["coalesce", ["get", "population"], 0], 0, 4, 300000, 10],
          ["match", ["get", "kind"], "drone_base", 6, "boat_base", 6, 4]],
        "circle-opacity": ["match", ["get", "kind"], "town", 0.35, 0.9],
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 1,
      },
    },
    {
      id: "mission-paths", type: "line", source: "mission-paths",
      layout: { "line-join": "round" },
      paint: {
        "line-color": ["match", ["get", "type"], "boat", VEHICLE_COLOURS.boat, VEHICLE_COLOURS.copter],
        "line-width": 2.5, "line-dasharray": [2, 1.5], "line-opacity": 0.85,
      },
    },
    {
      // The selected incident's plans, each in its own colour: a search's area outlined,
      // a proposed path dashed, an approved or flying one solid.
      id: "plan-areas-fill", type: "fill", source: "plan-areas",
      paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.08 },
    },
    {
      id: "plan-areas", type: "line", source: "plan-areas",
      paint: { "line-color": ["get", "colour"], "line-width": 1.5, "line-dasharray": [1, 1] },
    },
    {
      id: "plan-paths-proposed", type: "line", source: "plan-paths", filter: ["==", ["get", "style"], "proposed"],
      layout: { "line-join": "round" },
      paint: { "line-color": ["get", "colour"], "line-width": 3, "line-dasharray": [2, 1.5], "line-opacity": 0.9 },
    },
    {
      id: "plan-paths-active", type: "line", source: "plan-paths", filter: ["==", ["get", "style"], "active"],
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": ["get", "colour"], "line-width": 3.5, "line-opacity": 0.95 },
    },
    {
      id: "vehicle-trails", type: "line", source: "vehicle-trails",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": ["match", ["get", "type"], "boat", VEHICLE_COLOURS.boat, VEHICLE_COLOURS.copter],
        "line-width": 3, "line-opacity": 0.45,
      },
    },
    {
      id: "sensors", type: "circle", source: "sensors",
      paint: {
        "circle-color": ["match", ["get", "status"],
          "online", SENSOR_COLOURS.online, "offline", SENSOR_COLOURS.offline, SENSOR_COLOURS.unknown],
        "circle-radius": ["match", ["get", "kind"], "river_level", 6.5, 5],
        "circle-stroke-color": ["match", ["get", "alert"],
          "yellow", LEVEL_COLOURS.yellow, "orange", LEVEL_COLOURS.orange, "red", LEVEL_COLOURS.red, "#ffffff"],
        "circle-stroke-width": ["match", ["get", "alert"], "none", 1.5, 3.5],
      },
    },
    {
      id: "incidents-halo", type: "circle", source: "incidents",
      paint: {
        "circle-color": ["match", ["get", "level"],
          "blue", LEVEL_COLOURS.blue, "yellow", LEVEL_COLOURS.yellow, "orange", LEVEL_COLOURS.orange,
          "red", LEVEL_COLOURS.red, "#777"],
        "circle-radius": 20,
        "circle-opacity": ["match", ["get", "status"], "closed", 0.05, 0.22],
      },
    },
    {
      id: "incidents", type: "circle", source: "incidents",
      paint: {
        "circle-color": ["match", ["get", "level"],
          "blue", LEVEL_COLOURS.blue, "yellow", LEVEL_COLOURS.yellow, "orange", LEVEL_COLOURS.orange,
          "red", LEVEL_COLOURS.red, "#777"],
        "circle-radius": 9,
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 2.5,
        "circle-opacity": ["match", ["get", "status"], "closed", 0.4, 1],
      },
    },
  );
  return { version: 8, sources, layers };
}

function point(lon, lat, properties) {
  return { type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] }, properties };
}

function line(coordinates, properties) {
  return { type: "Feature", geometry: { type: "LineString", coordinates }, properties };
}

function sensorCollection() {
  const features = [];
  for (const [id, record] of state.sensors) {
    const props = record.feature.properties ?? {};
    features.push({
      type: "Feature",
      geometry: record.feature.geometry,
      properties: { id, kind: props.kind, status: record.status, alert: sensorAlert(record) },
    });
  }
  return { type: "FeatureCollection", features };
}

function incidentCollection() {
  const features = [];
  for (const inc of state.incidents.values()) {
    if (!validLonLat(inc.lon, inc.lat)) continue;
    features.push(point(inc.lon, inc.lat, { id: inc.id, level: inc.level, status: inc.status }));
  }
  // Draw the most severe on top.
  features.sort((a, b) => (LEVEL_RANK[a.properties.level] ?? 0) - (LEVEL_RANK[b.properties.level] ?? 0));
  return { type: "FeatureCollection", features };
}

function missionCollection() {
  const byVehicle = new Map();
  for (const inc of state.incidents.values()) {
    const d = inc.dispatch;
    if (d?.mission_path?.length > 1 && ["uploading", "flying", "returning"].includes(d.state)) {
      const type = state.vehicles.get(d.vehicle)?.type ?? "copter";
      byVehicle.set(d.vehicle, line(d.mission_path, { vehicle: d.vehicle, type }));
    }
  }
  for (const v of state.vehicles.values()) {
    if (v.mission_path?.length > 1) byVehicle.set(v.name, line(v.mission_path, { vehicle: v.name, type: v.type }));
  }
  return { type: "FeatureCollection", features: [...byVehicle.values()] };
}

function planCollections() {
  const paths = [];
  const areas = [];
  const selected = state.selectedIncident;
  for (const p of state.plans.values()) {
    if (selected === null || p.incident_id !== selected || !PLAN_OPEN.has(p.state)) continue;
    const props = {
      id: p.id, state: p.state, vehicle: p.vehicle, colour: planColour(p.id),
      style: p.state === "proposed" ? "proposed" : "active",
    };
    const path = (p.proposal?.path ?? []).filter((c) => Array.isArray(c) && validLonLat(c[0], c[1]));
    if (path.length > 1) paths.push(line(path.map((c) => [c[0], c[1]]), props));
    const area = p.proposal?.coverage_area;
    if (area && (area.type === "Polygon" || area.type === "MultiPolygon")) {
      areas.push({ type: "Feature", geometry: area, properties: props });
    }
  }
  return {
    paths: { type: "FeatureCollection", features: paths },
    areas: { type: "FeatureCollection", features: areas },
  };
}

function trailCollection() {
  const features = [];
  for (const [name, trail] of state.trails) {
    if (trail.length > 1) features.push(line(trail, { vehicle: name, type: state.vehicles.get(name)?.type }));
  }
  return { type: "FeatureCollection", features };
}

function updateVehicleMarker(v) {
  const map = state.map;
  if (!map || !validLonLat(v.lon, v.lat)) return;
  let marker = ui.markers.get(v.name);
  if (!marker) {
    const el = h("div", { class: "vehicle-marker", dataset: { name: v.name, type: v.type } },
      vehicleIcon(v.type), h("span", { class: "veh-label" }, v.name));
    el.addEventListener("click", (ev) => {
      ev.stopPropagation();
      const row = document.querySelector(`#vehicle-list .vehicle[data-name="${CSS.escape(v.name)}"]`);
      row?.scrollIntoView({ block: "nearest", behavior: "smooth" });
      row?.classList.add("highlight");
      setTimeout(() => row?.classList.remove("highlight"), 1500);
    });
    marker = new maplibregl.Marker({ element: el, anchor: "center" }).setLngLat(toDisplay([v.lon, v.lat])).addTo(map);
    ui.markers.set(v.name, marker);
  }
  marker.setLngLat(toDisplay([v.lon, v.lat])); // the basemap's datum (crs.js)
  const el = marker.getElement();
  el.dataset.state = v.state ?? "";
  el.dataset.link = v.link ?? "";
  el.title = `${v.name} · ${t(`vehicleState.${v.state}`)} · ${fmtLonLat(v.lon, v.lat)}`;
  // Heading 0° = north = up; the map does not rotate (rotation is disabled).
  el.querySelector(".veh-icon svg").style.transform = `rotate(${Number(v.heading_deg) || 0}deg)`;
}

function setSource(name, data) {
  const source = state.map?.getSource(name);
  if (source) source.setData(toDisplay(data)); // WGS-84 in, the basemap's datum drawn (crs.js)
}

function markDirty(what) {
  ui.dirty.add(what);
  if (ui.flushTimer === null) ui.flushTimer = setTimeout(flushNow, FLUSH_MS);
}

/** Apply pending changes to the panels and, once loaded, to the map sources. */
function flushNow() {
  clearTimeout(ui.flushTimer);
  ui.flushTimer = null;
  const dirty = ui.dirty;
  ui.dirty = new Set();
  const mapReady = state.mapLoaded;
  if (dirty.has("sensors")) {
    renderSensorCount();
    if (mapReady) setSource("sensors", sensorCollection());
    refreshPopup("sensor");
  }
  if (dirty.has("incidents")) {
    // Rebuilding a form under an IME composition would cut it: render once it ends.
    if (ui.composing) markDirty("incidents");
    else renderIncidents();
    if (mapReady) {
      setSource("incidents", incidentCollection());
      setSource("mission-paths", missionCollection());
    }
  }
  if (dirty.has("vehicles")) {
    const names = [...dirty].filter((x) => x.startsWith("vehicle:")).map((x) => x.slice(8));
    renderVehicles(names);
    if (mapReady) {
      for (const name of names) updateVehicleMarker(state.vehicles.get(name));
      setSource("vehicle-trails", trailCollection());
      setSource("mission-paths", missionCollection());
    }
  }
  if (dirty.has("plans") && mapReady) {
    const { paths, areas } = planCollections();
    setSource("plan-paths", paths);
    setSource("plan-areas", areas);
  }
  for (const step of extensions.flushes) {
    try { step(dirty, mapReady); } catch (err) { logEvent("console.error", null, `flush: ${err.message}`); }
  }
}

function focusOn(lon, lat, zoom) {
  if (state.map && validLonLat(lon, lat)) {
    state.map.easeTo({ center: toDisplay([lon, lat]), zoom: Math.max(state.map.getZoom(), zoom), duration: 600 });
  }
}

// Popups: built from DOM nodes (never from HTML strings of data).

function row(label, value) {
  return h("tr", {}, h("th", {}, label), h("td", {}, value));
}

function sensorPopupContent(id) {
  const record = state.sensors.get(id);
  if (!record) return h("div", {}, id);
  const props = record.feature.properties ?? {};
  const latest = record.latest;
  const thresholds = Object.entries(props.thresholds ?? {});
  return h("div", { class: "popup sensor-popup" },
    h("h4", {}, pick(props, "name") || id),
    h("table", {},
      row("ID", id),
      row(t("status"), t(`sensorKind.${props.kind}`) + " · " + t(`sensorStatus.${record.status}`)),
      row(t("latest"), latest
        ? `${fmtNumber(latest.value)} ${latest.unit ?? props.unit ?? ""} · ${formatDateTime(latest.time)}`
        : t("noReading")),
      latest?.flag && latest.flag !== "ok" ? row(t("flag"), latest.flag) : null,
      thresholds.length ? row(t("thresholds"),
        h("ul", { class: "thresholds" }, thresholds.map(([k, v]) => h("li", {}, `${k}: ${v}`)))) : null));
}

function incidentPopupContent(id) {
  const inc = state.incidents.get(id);
  if (!inc) return h("div", {}, `#${id}`);
  return h("div", { class: "popup" },
    h("h4", {}, `#${inc.id} ${pick(inc, "title")}`),
    h("div", {}, `${t(`level.${inc.level}`)} · ${responseText(inc)} · ${t(`incidentStatus.${inc.status}`)}`),
    h("div", { class: "muted" }, formatDateTime(inc.opened_at)),
    h("p", { class: "assessment-note" }, pick(inc, "assessment_note")));
}

function featurePopupContent(layer, props) {
  if (layer === "airspace-fill") {
    return h("div", { class: "popup" },
      h("h4", {}, pick(props, "name")),
      h("div", {}, t(`airspace.${props.kind}`)),
      props.ceiling_agl_m != null ? h("div", {}, `${t("ceiling")}: ${props.ceiling_agl_m} m`) : null);
  }
  return h("div", { class: "popup" },
    h("h4", {}, pick(props, "name")),
    h("div", {}, t(`facility.${props.kind}`)),
    props.population ? h("div", {}, `${t("population")}: ${Number(props.population).toLocaleString()}`) : null);
}

function showPopup(kind, id, lngLat, content) {
  ui.popup?.popup.remove();
  const popup = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(lngLat).setDOMContent(content).addTo(state.map);
  ui.popup = { kind, id, popup };
  popup.on("close", () => { if (ui.popup?.popup === popup) ui.popup = null; });
}

function refreshPopup(kind) {
  if (ui.popup?.kind === kind && kind === "sensor") ui.popup.popup.setDOMContent(sensorPopupContent(ui.popup.id));
}

function wireMapInteraction(map) {
  const clickable = ["incidents", "sensors", "facilities", "airspace-fill"];
  for (const layer of clickable) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("click", (ev) => {
    // Most specific first: incidents, sensors, facilities, then airspace underneath.
    const hits = map.queryRenderedFeatures(ev.point, { layers: clickable });
    const order = (f) => clickable.indexOf(f.layer.id);
    hits.sort((a, b) => order(a) - order(b));
    const hit = hits[0];
    if (!hit) return;
    const props = hit.properties ?? {};
    if (hit.layer.id === "incidents") {
      showPopup("incident", props.id, ev.lngLat, incidentPopupContent(props.id));
      selectIncident(props.id, { focus: false });
      const item = document.querySelector(`#incident-list .incident[data-id="${CSS.escape(String(props.id))}"]`);
      item?.scrollIntoView({ block: "nearest", behavior: "smooth" });
    } else if (hit.layer.id === "sensors") {
      showPopup("sensor", props.id, ev.lngLat, sensorPopupContent(props.id));
    } else {
      showPopup(hit.layer.id, null, ev.lngLat, featurePopupContent(hit.layer.id, props));
    }
  });
}

async function loadGeography() {
  const results = await Promise.allSettled(GEO_LAYERS.map(async (name) => {
    const data = await api(`/api/layers/${name}`);
    setSource(name, data?.type === "FeatureCollection" ? data : EMPTY);
  }));
  results.forEach((r, i) => {
    if (r.status === "rejected") logEvent("console.error", null, `${GEO_LAYERS[i]}: ${r.reason?.message}`);
  });
  state.geographyLoaded = results.every((r) => r.status === "fulfilled");
}

function createMap(district) {
  const [west, south, east, north] = Array.isArray(district.bbox) && district.bbox.length === 4
    ? district.bbox : [null, null, null, null];
  const options = {
    container: "map",
    style: buildStyle(district),
    attributionControl: { compact: true },
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    maxPitch: 0,
  };
  if (west !== null) {
    options.bounds = [[west, south], [east, north]];
    options.fitBoundsOptions = { padding: 24 };
  } else {
    options.center = district.center ?? [0, 0];
    options.zoom = 10;
  }
  const map = new maplibregl.Map(options);
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  state.map = map;
  map.on("load", () => {
    state.mapLoaded = true;
    wireMapInteraction(map);
    loadGeography();
    for (const v of state.vehicles.values()) updateVehicleMarker(v);
    for (const fn of extensions.mapLoads) {
      try { fn(map); } catch (err) { logEvent("console.error", null, `map layers: ${err.message}`); }
    }
    ui.dirty.add("sensors").add("incidents").add("vehicles").add("plans");
    flushNow();
  });
  map.on("error", (ev) => {
    // Keep going (e.g. an unreachable raster tile) but say so once in the log.
    const message = ev?.error?.message ?? "map error";
    if (!ui.mapErrors?.has(message)) {
      ui.mapErrors = ui.mapErrors ?? new Set();
      ui.mapErrors.add(message);
      logEvent("console.error", null, message);
    }
  });
}

async function loadDistrict() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api("/api/district");
    } catch (err) {
      flash(`${t("requestFailed")}: /api/district ${err.message}`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(RECONNECT_MAX_MS, 1000 * 2 ** attempt)));
    }
  }
}

// ---------------------------------------------------------------- start

async function main() {
  takeTokenFromFragment();
  setLang(storageGet(LANG_KEY) ?? "zh");
  const operator = document.getElementById("operator-name");
  operator.value = storageGet(OPERATOR_KEY) ?? "";
  operator.addEventListener("change", () => storageSet(OPERATOR_KEY, operator.value.trim() || null));
  document.getElementById("lang-toggle").addEventListener("click", () => switchLang(getLang() === "zh" ? "en" : "zh"));
  renderStaticText();
  renderLegend();
  renderIncidents();
  renderVehicles();
  tickClock();
  setInterval(tickClock, 1000);

  await installExtensions(extensionContext());
  state.district = await loadDistrict();
  setDisplayCrs(state.district?.tile_crs); // gcj02: every overlay is converted before it is drawn
  renderStaticText();
  createMap(state.district);
  await loadSnapshots();
  connectWebSocket();
}

/** What an extension module gets (see EXTENSIONS). */
function extensionContext() {
  return {
    state, ui, maplibregl, h, t, pick, getLang, formatDateTime, formatTime, eventLabel, addStrings,
    api, ApiError, flash, logEvent, markDirty, flushNow, setSource, focusOn, selectIncident, operatorName,
    storageGet, storageSet, TOKEN_KEY, LEVEL_COLOURS, resync, reconnect: () => reconnectWebSocket(),
    sidebar: document.getElementById("sidebar"),
    on(kind, fn) { extensions.kinds.push([kind, fn]); },
    summary(kind, fn) { extensions.summaries.push([kind, fn]); }, // the event log's line for a kind
    onSnapshot(fn) { extensions.snapshots.push(fn); },
    onFlush(fn) { extensions.flushes.push(fn); },
    onMapLoad(fn) { extensions.mapLoads.push(fn); if (state.mapLoaded) fn(state.map); },
  };
}

main().catch((err) => {
  flash(`${t("requestFailed")}: ${err.message}`);
  logEvent("console.error", null, err.message);
});
