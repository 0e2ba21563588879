// Timeline and replay of the dispatcher console.
//
// The timeline lists state-change events from the persistent event log (GET /api/events) and the
// live feed, with filters: a kind group, an incident id and free text. The replay plays the last
// N hours back onto the map in its own sources and layers: incidents appear with their level as
// their events come, vehicles move along their stored tracks (GET /api/vehicles/{name}/track;
// telemetry is not in the event log). Play/pause, speed 10×/60×/300×, and a time slider showing
// the replay time in Asia/Shanghai. Leaving the replay restores the live layers and markers.
//
// The event log has no time index over HTTP: the first event of a window is found by a binary
// search over sequence numbers (GET /api/events?after=<seq>&limit=…), a few small requests.

const LIST_MAX = 300; // rows shown
const KEPT_MAX = 2000; // events held for the list
const TAIL = 300; // events fetched at start
const PAGE = 5000; // the API's largest page
const MAX_PAGES = 40; // a replay window of at most 200k events
const PROBE = 20; // rows asked for by a probe (some may be hidden from this user)
const TICK_MS = 200;
const HOURS = [1, 3, 6, 12];
const SPEEDS = [10, 60, 300];
const LEAD_MS = 5000; // a replay starts this long before the window's first record
const EMPTY = Object.freeze({ type: "FeatureCollection", features: [] });
const LIVE_LAYERS = ["incidents-halo", "incidents", "vehicle-trails", "mission-paths", "plan-paths-proposed",
  "plan-paths-active", "plan-areas", "plan-areas-fill"];
const TRANSIENT = new Set(["sensor.reading", "vehicle.telemetry", "vehicle.adsb"]);
const VEHICLE_COLOURS = { copter: "#6a1b9a", boat: "#00838f" };

// Kind groups of the filter, by the kind's first part.
const GROUPS = {
  incident: ["incident", "official", "risk", "report"],
  task: ["task", "linkage", "webhook", "department", "delivery"],
  flight: ["plan", "vehicle", "flight", "mission", "dispatch", "fleet", "traffic", "airspace", "patrol"],
  crew: ["crew"],
  alert: ["alert", "forecast", "evacuation", "shelter"],
  sensor: ["sensor", "reading"],
};
// Prefixes the live feed is listened to for (every group's, and a few others the list shows).
const PREFIXES = [...Object.values(GROUPS).flat(), "auth"].map((p) => `${p}.`);

const STRINGS = {
  zh: {
    timeline: {
      panel: "时间线", group: "类别", all: "全部", incidentId: "事件号", text: "搜索", none: "无匹配事件",
      groups: { incident: "事件", task: "任务/联动", flight: "方案/装备", crew: "队伍", alert: "预警/疏散", sensor: "传感器", other: "其他" },
      replay: "回放", lastHours: "最近", hours: "小时", play: "播放", pause: "暂停", exit: "退出回放", speed: "倍速",
      loading: "加载中…", replayTime: "回放时间", shown: "条", eventsSoFar: "已发生事件", noData: "该时段无记录",
    },
  },
  en: {
    timeline: {
      panel: "Timeline", group: "Kind", all: "all", incidentId: "Incident #", text: "Search", none: "no matching events",
      groups: { incident: "Incidents", task: "Tasks / linkage", flight: "Plans / vehicles", crew: "Crews", alert: "Alerts / evacuation", sensor: "Sensors", other: "Other" },
      replay: "Replay", lastHours: "last", hours: "h", play: "Play", pause: "Pause", exit: "Leave replay", speed: "Speed",
      loading: "loading…", replayTime: "Replay time", shown: "shown", eventsSoFar: "events so far", noData: "nothing recorded in this window",
    },
  },
};

/** The filter group of an event kind ("plan.approved" → "flight"). */
export function groupOf(kind) {
  const head = String(kind).split(".")[0];
  for (const [group, heads] of Object.entries(GROUPS)) if (heads.includes(head)) return group;
  return "other";
}

/** The incident an event is about, or null. */
export function incidentOf(event) {
  const d = event?.data ?? {};
  if (d.incident_id != null) return Number(d.incident_id);
  if (String(event?.kind).startsWith("incident.") && d.id != null) return Number(d.id);
  return null;
}

/** Whether an event passes the filters {group, incident, text} ("" or null: no filter). */
export function matches(event, filter, summaryText = "") {
  if (filter.group && groupOf(event.kind) !== filter.group) return false;
  if (filter.incident != null && filter.incident !== "" && incidentOf(event) !== Number(filter.incident)) return false;
  const text = String(filter.text ?? "").trim().toLowerCase();
  if (text) {
    const haystack = `${event.kind} ${summaryText} ${JSON.stringify(event.data ?? {})}`.toLowerCase();
    if (!haystack.includes(text)) return false;
  }
  return true;
}

/** A track's position at time tMs ([{ms, lon, lat}] sorted by ms), linearly interpolated; null before
 * its first point or after a gap longer than maxGapMs (the vehicle was not heard). */
export function positionAt(track, tMs, maxGapMs = 120000) {
  if (!track.length || tMs < track[0].ms) return null;
  let lo = 0;
  let hi = track.length - 1;
  if (tMs >= track[hi].ms) return tMs - track[hi].ms <= maxGapMs ? [track[hi].lon, track[hi].lat] : null;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (track[mid].ms <= tMs) lo = mid; else hi = mid;
  }
  const a = track[lo];
  const b = track[hi];
  if (b.ms - a.ms > maxGapMs) return tMs - a.ms <= maxGapMs ? [a.lon, a.lat] : null;
  const f = b.ms === a.ms ? 0 : (tMs - a.ms) / (b.ms - a.ms);
  return [a.lon + (b.lon - a.lon) * f, a.lat + (b.lat - a.lat) * f];
}

export async function install(ctx) {
  const { h, t, api, state } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_timeline.css";
  document.head.append(link);

  const my = {
    events: [], // newest first, {seq, kind, time, data}
    seqs: new Set(),
    filter: { group: "", incident: "", text: "" },
    collapsed: true,
    error: null,
    replay: null,
    renderTimer: null,
  };

  // ---------------------------------------------------------------- summaries

  function summary(e) {
    const d = e.data ?? {};
    const parts = [];
    const inc = incidentOf(e);
    if (inc != null) parts.push(`#${inc}`);
    const who = d.name ?? d.vehicle ?? d.sensor_id ?? d.crew ?? ctx.pick(d, "department_name") ?? d.department;
    if (who) parts.push(String(who));
    const title = ctx.pick(d, "title");
    if (title) parts.push(title);
    if (d.level) parts.push(t(`level.${d.level}`));
    const what = d.action ?? d.state ?? d.status ?? d.mode;
    if (what) parts.push(String(what));
    const by = d.operator ?? d.by ?? d.decided_by ?? d.approved_by ?? d.acknowledged_by;
    if (by) parts.push(`${by}`);
    const why = d.reason ?? d.error ?? d.text;
    if (typeof why === "string" && why) parts.push(why.slice(0, 120));
    return parts.join(" · ");
  }

  // ---------------------------------------------------------------- DOM

  const count = h("span", { class: "count" }, "0");
  const toggle = h("button", { type: "button", class: "tl-collapse link-btn", "aria-expanded": "false",
    onclick: () => { my.collapsed = !my.collapsed; render(); } }, "▸");
  const groupSelect = h("select", { class: "tl-group", "aria-label": t("timeline.group"),
    onchange: (ev) => { my.filter.group = ev.target.value; render(); } },
  h("option", { value: "" }, t("timeline.all")),
  [...Object.keys(GROUPS), "other"].map((g) => h("option", { value: g }, t(`timeline.groups.${g}`))));
  const incidentInput = h("input", { type: "number", min: 1, class: "tl-incident", placeholder: t("timeline.incidentId"),
    "aria-label": t("timeline.incidentId"), oninput: (ev) => { my.filter.incident = ev.target.value.trim(); render(); } });
  const textInput = h("input", { type: "search", class: "tl-text", placeholder: t("timeline.text"),
    "aria-label": t("timeline.text"), oninput: (ev) => { my.filter.text = ev.target.value; render(); } });
  const list = h("ol", { class: "tl-list" });
  const error = h("div", { class: "tl-error", role: "alert", hidden: true });

  const hoursSelect = h("select", { class: "tl-hours", "aria-label": t("timeline.lastHours") },
    HOURS.map((n) => h("option", { value: n }, `${t("timeline.lastHours")} ${n} ${t("timeline.hours")}`)));
  const speedSelect = h("select", { class: "tl-speed", "aria-label": t("timeline.speed"),
    onchange: (ev) => { if (my.replay) my.replay.speed = Number(ev.target.value); } },
  SPEEDS.map((n) => h("option", { value: n, selected: n === 60 }, `${n}×`)));
  const replayButton = h("button", { type: "button", class: "tl-replay", onclick: () => enterReplay(Number(hoursSelect.value)) },
    t("timeline.replay"));
  const playButton = h("button", { type: "button", class: "tl-play", onclick: () => setPlaying(!my.replay?.playing) },
    t("timeline.play"));
  const exitButton = h("button", { type: "button", class: "tl-exit", onclick: () => exitReplay() }, t("timeline.exit"));
  const slider = h("input", { type: "range", class: "tl-slider", min: 0, max: 1, step: 1000, value: 0,
    "aria-label": t("timeline.replayTime"),
    oninput: (ev) => { if (my.replay) { my.replay.t = Number(ev.target.value); drawReplay(); } } });
  const clock = h("span", { class: "tl-clock" });
  const replayStatus = h("span", { class: "tl-status muted" });
  const replayBar = h("div", { class: "tl-replay-bar" },
    h("div", { class: "tl-row" }, hoursSelect, replayButton, playButton, speedSelect, exitButton),
    h("div", { class: "tl-row tl-live-only" }, slider),
    h("div", { class: "tl-row tl-live-only" }, clock, replayStatus));

  const content = h("div", { class: "tl-content" },
    h("div", { class: "tl-row tl-filters" }, groupSelect, incidentInput, textInput),
    error, list, replayBar);
  const section = h("section", { class: "panel", id: "timeline-panel", "aria-label": t("timeline.panel") },
    h("h2", {}, toggle, h("span", {}, t("timeline.panel")), " ", count), content);
  const anchor = ctx.sidebar.querySelector("#event-panel");
  if (anchor) anchor.before(section); else ctx.sidebar.append(section);

  function eventRow(e) {
    const inc = incidentOf(e);
    const future = my.replay && Date.parse(e.time) > my.replay.t;
    return h("li", {
      class: `tl-event${future ? " future" : ""}`,
      dataset: { kind: e.kind, seq: e.seq, group: groupOf(e.kind), ...(inc != null ? { incident: inc } : {}) },
    },
    h("time", { datetime: e.time }, ctx.formatDateTime(e.time)),
    h("span", { class: "tl-kind" }, ctx.eventLabel(e.kind)),
    h("span", { class: "tl-summary" }, summary(e)));
  }

  function render() {
    clearTimeout(my.renderTimer);
    my.renderTimer = null;
    toggle.textContent = my.collapsed ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!my.collapsed));
    content.hidden = my.collapsed;
    error.hidden = !my.error;
    error.textContent = my.error ?? "";
    const source = my.replay ? my.replay.events.slice().reverse() : my.events;
    const shown = [];
    for (const e of source) {
      if (matches(e, my.filter, summary(e))) shown.push(e);
      if (shown.length >= LIST_MAX) break;
    }
    count.textContent = String(shown.length);
    if (!my.collapsed) {
      list.replaceChildren(...(shown.length ? shown.map(eventRow) : [h("li", { class: "empty" }, t("timeline.none"))]));
    }
    const r = my.replay;
    section.classList.toggle("replaying", Boolean(r));
    replayButton.disabled = Boolean(r?.loading);
    playButton.hidden = !r || r.loading;
    exitButton.hidden = !r;
    for (const el of replayBar.querySelectorAll(".tl-live-only")) el.hidden = !r || r.loading;
    playButton.textContent = r?.playing ? t("timeline.pause") : t("timeline.play");
    replayButton.textContent = r?.loading ? t("timeline.loading") : t("timeline.replay");
  }

  function renderSoon() {
    if (my.renderTimer === null) my.renderTimer = setTimeout(render, 250);
  }

  function add(e) {
    if (!e || !Number.isInteger(e.seq) || e.seq <= 0 || TRANSIENT.has(e.kind) || my.seqs.has(e.seq)) return;
    my.seqs.add(e.seq);
    my.events.push(e);
  }

  function settle() {
    my.events.sort((a, b) => b.seq - a.seq);
    if (my.events.length > KEPT_MAX) {
      for (const e of my.events.splice(KEPT_MAX)) my.seqs.delete(e.seq);
    }
  }

  // ---------------------------------------------------------------- the event log over HTTP

  async function page(after, limit) {
    const body = await api(`/api/events?after=${Math.max(0, Math.floor(after))}&limit=${limit}`);
    return Array.isArray(body?.events) ? body.events : [];
  }

  async function firstAfter(after) {
    return (await page(after, PROBE))[0] ?? null;
  }

  /** The largest sequence number the log holds for us (0 when empty): doubling, then bisection. */
  async function lastSeq() {
    let lo = 0;
    let hi = 64;
    while (await firstAfter(hi)) { lo = hi; hi *= 2; }
    // invariant: something after lo (or lo = 0), nothing after hi
    if (lo === 0 && !(await firstAfter(0))) return 0;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (await firstAfter(mid)) lo = mid; else hi = mid;
    }
    return hi;
  }

  /** The events with time >= startMs, oldest first. */
  async function eventsSince(startMs) {
    let lo = 0; // first event after lo may be earlier than start (or lo = 0)
    let hi = await lastSeq(); // nothing after hi
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      const e = await firstAfter(mid);
      if (e && Date.parse(e.time) < startMs) lo = mid; else hi = mid;
    }
    const out = [];
    let after = lo;
    for (let n = 0; n < MAX_PAGES; n += 1) {
      const rows = await page(after, PAGE);
      for (const e of rows) if (Date.parse(e.time) >= startMs) out.push(e);
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1].seq;
    }
    return out;
  }

  async function loadTail() {
    try {
      const last = await lastSeq();
      for (const e of await page(Math.max(0, last - TAIL), TAIL)) add(e);
      settle();
      my.error = null;
    } catch (err) {
      my.error = `${t("timeline.panel")}: ${err.message}`;
    }
    render();
  }

  // ---------------------------------------------------------------- replay

  async function loadTracks(startMs, hours) {
    const limit = Math.min(20000, Math.ceil(hours * 3600 / 2) + 200); // one stored point per 2 s at most
    const tracks = new Map();
    await Promise.all([...state.vehicles.values()].map(async (v) => {
      const body = await api(`/api/vehicles/${encodeURIComponent(v.name)}/track?limit=${limit}`);
      const points = (body?.track ?? [])
        .map((p) => ({ ms: Date.parse(p.time), lon: p.lon, lat: p.lat, mode: p.mode }))
        .filter((p) => p.ms >= startMs && Number.isFinite(p.lon) && Number.isFinite(p.lat))
        .sort((a, b) => a.ms - b.ms);
      if (points.length) tracks.set(v.name, { type: v.type, points });
    }));
    return tracks;
  }

  async function enterReplay(hours) {
    if (my.replay?.loading) return;
    stopTimer();
    const end = Date.now();
    const start = end - hours * 3600 * 1000;
    my.replay = { loading: true, start, end, t: start, playing: false, speed: Number(speedSelect.value),
      events: [], tracks: new Map(), hidden: [], timer: null };
    my.collapsed = false;
    render();
    try {
      const [events, tracks] = await Promise.all([eventsSince(start), loadTracks(start, hours)]);
      const r = my.replay;
      if (!r) return; // left meanwhile
      r.events = events.filter((e) => !TRANSIENT.has(e.kind)).map((e) => ({ ...e, ms: Date.parse(e.time) }));
      r.tracks = tracks;
      const firsts = [...r.events.map((e) => e.ms), ...[...tracks.values()].map((x) => x.points[0].ms)];
      r.t = firsts.length ? Math.max(start, Math.min(...firsts) - LEAD_MS) : start;
      r.loading = false;
      my.error = firsts.length ? null : t("timeline.noData");
      slider.min = String(start);
      slider.max = String(end);
      hideLive();
      drawReplay();
      setPlaying(true);
    } catch (err) {
      my.error = `${t("timeline.replay")}: ${err.message}`;
      exitReplay();
    }
  }

  // The live layers are hidden by a filter that matches nothing, not by their visibility: the
  // layer switcher (console_layers.js) owns visibility and applies it on every flush.
  const NOTHING = ["==", ["get", "replay_hidden"], true]; // no live feature has this property

  function hideLive() {
    const map = state.map;
    const r = my.replay;
    if (!map || !r) return;
    r.hidden = [];
    for (const id of LIVE_LAYERS) {
      if (!map.getLayer(id)) continue;
      r.hidden.push([id, map.getFilter(id) ?? null]);
      map.setFilter(id, NOTHING);
    }
    for (const marker of ctx.ui.markers.values()) marker.getElement().style.visibility = "hidden";
    for (const id of REPLAY_LAYERS) if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", "visible");
  }

  function restoreLive() {
    const map = state.map;
    const r = my.replay;
    if (!map) return;
    for (const [id, filter] of r?.hidden ?? []) if (map.getLayer(id)) map.setFilter(id, filter);
    for (const marker of ctx.ui.markers.values()) marker.getElement().style.visibility = "";
    for (const id of REPLAY_LAYERS) if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", "none");
    for (const id of REPLAY_SOURCES) ctx.setSource(id, EMPTY);
  }

  function stopTimer() {
    if (my.replay?.timer) clearInterval(my.replay.timer);
    if (my.replay) my.replay.timer = null;
  }

  function setPlaying(on) {
    const r = my.replay;
    if (!r || r.loading) return;
    stopTimer();
    r.playing = Boolean(on);
    if (r.playing) {
      if (r.t >= r.end) r.t = r.start;
      r.timer = setInterval(() => {
        r.t = Math.min(r.end, r.t + TICK_MS * r.speed);
        if (r.t >= r.end) setPlaying(false);
        drawReplay();
      }, TICK_MS);
    }
    render();
  }

  function exitReplay() {
    stopTimer();
    restoreLive();
    my.replay = null;
    render();
    ctx.markDirty("incidents");
    ctx.markDirty("vehicles");
    ctx.markDirty("plans");
  }

  /** The incidents at time tMs: those held now and opened before the window (as they are now),
   * then every incident event of the window up to tMs applied in order. */
  function incidentsAt(r, tMs) {
    const byId = new Map();
    for (const inc of state.incidents.values()) {
      const opened = Date.parse(inc.opened_at ?? "");
      if (opened < r.start) byId.set(inc.id, { id: inc.id, level: inc.level, status: inc.status, lon: inc.lon, lat: inc.lat });
    }
    for (const e of r.events) {
      if (e.ms > tMs) break;
      if (!e.kind.startsWith("incident.") || e.data?.id == null) continue;
      const d = e.data;
      const prev = byId.get(d.id) ?? {};
      byId.set(d.id, { ...prev, id: d.id, level: d.level ?? prev.level, status: e.kind === "incident.resolved" ? "closed" : (d.status ?? prev.status),
        lon: d.lon ?? prev.lon, lat: d.lat ?? prev.lat });
    }
    return [...byId.values()].filter((i) => Number.isFinite(i.lon) && Number.isFinite(i.lat));
  }

  function drawReplay() {
    const r = my.replay;
    if (!r || r.loading) return;
    const point = (c, props) => ({ type: "Feature", geometry: { type: "Point", coordinates: c }, properties: props });
    const incidents = incidentsAt(r, r.t).map((i) => point([i.lon, i.lat], { id: i.id, level: i.level, status: i.status }));
    const vehicles = [];
    const trails = [];
    r.positions = {};
    for (const [name, { type, points }] of r.tracks) {
      const at = positionAt(points, r.t);
      if (at) {
        vehicles.push(point(at, { name, type }));
        r.positions[name] = at;
      }
      const flown = points.filter((p) => p.ms <= r.t).map((p) => [p.lon, p.lat]);
      if (at) flown.push(at);
      if (flown.length > 1) trails.push({ type: "Feature", geometry: { type: "LineString", coordinates: flown }, properties: { name, type } });
    }
    ctx.setSource("replay-incidents", { type: "FeatureCollection", features: incidents });
    ctx.setSource("replay-trails", { type: "FeatureCollection", features: trails });
    ctx.setSource("replay-vehicles", { type: "FeatureCollection", features: vehicles });
    slider.value = String(r.t);
    clock.textContent = `${t("timeline.replayTime")} ${ctx.formatDateTime(new Date(r.t).toISOString())} (UTC+8)`;
    const so = r.events.filter((e) => e.ms <= r.t).length;
    replayStatus.textContent = ` · ${t("timeline.eventsSoFar")} ${so}`;
    if (so !== r.shownSoFar) {
      r.shownSoFar = so;
      renderSoon(); // future rows dimmed
    }
  }

  const REPLAY_SOURCES = ["replay-trails", "replay-incidents", "replay-vehicles"];
  const REPLAY_LAYERS = ["replay-trails", "replay-incidents-halo", "replay-incidents", "replay-vehicles"];
  const levelColour = ["match", ["get", "level"], "blue", ctx.LEVEL_COLOURS.blue, "yellow", ctx.LEVEL_COLOURS.yellow,
    "orange", ctx.LEVEL_COLOURS.orange, "red", ctx.LEVEL_COLOURS.red, "#777"];
  const typeColour = ["match", ["get", "type"], "boat", VEHICLE_COLOURS.boat, VEHICLE_COLOURS.copter];

  ctx.onMapLoad((map) => {
    if (map.getSource("replay-vehicles")) return;
    for (const id of REPLAY_SOURCES) map.addSource(id, { type: "geojson", data: EMPTY });
    const hidden = { visibility: "none" };
    map.addLayer({ id: "replay-trails", type: "line", source: "replay-trails",
      layout: { ...hidden, "line-cap": "round", "line-join": "round" },
      paint: { "line-color": typeColour, "line-width": 3, "line-opacity": 0.55 } });
    map.addLayer({ id: "replay-incidents-halo", type: "circle", source: "replay-incidents", layout: hidden,
      paint: { "circle-color": levelColour, "circle-radius": 20,
        "circle-opacity": ["match", ["get", "status"], "closed", 0.05, 0.22] } });
    map.addLayer({ id: "replay-incidents", type: "circle", source: "replay-incidents", layout: hidden,
      paint: { "circle-color": levelColour, "circle-radius": 9, "circle-stroke-color": "#fff", "circle-stroke-width": 2.5,
        "circle-opacity": ["match", ["get", "status"], "closed", 0.4, 1] } });
    map.addLayer({ id: "replay-vehicles", type: "circle", source: "replay-vehicles", layout: hidden,
      paint: { "circle-color": typeColour, "circle-radius": 8, "circle-stroke-color": "#fff", "circle-stroke-width": 2.5 } });
  });

  // ---------------------------------------------------------------- live feed and snapshots

  const onLive = (d, event) => {
    add({ seq: event?.seq, kind: event?.kind, time: event?.time, data: d });
    settle();
    if (!my.replay) renderSoon();
  };
  for (const prefix of PREFIXES) ctx.on(prefix, onLive);
  ctx.onSnapshot(loadTail);

  render();
  state.timeline = {
    groupOf, matches, positionAt, enterReplay, exitReplay, setPlaying, lastSeq, eventsSince,
    get events() { return my.events; },
    get filter() { return { ...my.filter }; },
    get replay() {
      const r = my.replay;
      return r ? { loading: r.loading, playing: r.playing, t: r.t, start: r.start, end: r.end, speed: r.speed,
        events: r.events.length, vehicles: [...r.tracks.keys()], positions: { ...(r.positions ?? {}) } } : null;
    },
  };
}
