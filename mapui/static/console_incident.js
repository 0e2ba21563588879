// Incident detail panel of the dispatcher console: why the selected incident exists (level history,
// an evidence chart of the readings that triggered it, the risk layers that scored its place), the
// department tasks with their deadlines, the CAP alert, and the people at risk.
//
// An extension module (console.js EXTENSIONS): it follows state.selectedIncident, loads the
// incident's REST views when the selection changes or a snapshot loads, and keeps them current from
// the live feed (incident.*, task.*, alert.*, evacuation.*, shelter.*, report.*, sensor.reading).
// The chart is plain inline SVG built from DOM nodes: no chart library, no HTML strings of data.

const SVG_NS = "http://www.w3.org/2000/svg";
const TICK_MS = 1000; // countdowns
const RELOAD_MS = 250; // coalesce bursts of events into one refetch
const READINGS_LIMIT = 1000; // readings fetched per member sensor (10-min gauges: ~1 week)
const CHART_HOURS = 12; // the chart shows at most the last 12 h of readings
const SECTIONS = ["why", "tasks", "cap", "people"];
const OPEN_KEY = "yingji.incidentDetail.open"; // which sections are unfolded (kept across reloads)
const TASK_CLOSED = new Set(["done", "declined", "cancelled"]);
const TASK_ACKED = new Set(["acknowledged", "in_progress", "done"]);

// Rainstorm thresholds, China Meteorological Administration Order No. 16 (2007), annex: blue
// ≥ 50 mm in 12 h, yellow ≥ 50 mm in 6 h, orange ≥ 50 mm in 3 h, red ≥ 100 mm in 3 h (the same
// defaults as command/risk/rules.py RainThresholds; a gauge's "thresholds" property overrides them).
const RAIN_DEFAULTS = { blue_12h_mm: 50, yellow_6h_mm: 50, orange_3h_mm: 50, red_3h_mm: 100 };
// The rain window whose accumulation decides each level (the same rules).
const RAIN_WINDOW_H = { blue: 12, yellow: 6, orange: 3, red: 3 };
// River gauges (MWR 2013 hydrological warning signals, YUBEI.md): warning level yellow, guaranteed
// level orange, the historical maximum red.
const RIVER_KEYS = [["warning_m", "yellow"], ["guaranteed_m", "orange"], ["historical_max_m", "red"]];

const STRINGS = {
  zh: {
    incident: {
      panel: "事件详情", none: "在事件列表中选择一个事件", loading: "加载中…", collapse: "收起", expand: "展开",
      why: "研判依据", tasks: "部门任务", cap: "CAP 预警", people: "受威胁人员",
      levels: "等级变化", verification: "核实", chart: "触发读数", noReadings: "暂无读数",
      rain3: "3 小时累计雨量", rain6: "6 小时累计雨量", rain12: "12 小时累计雨量", interval: "时段雨量",
      crossed: "越限", threshold: "阈值", falseAlarm: "误报", reopened: "重新打开", by: "由",
      layers: "风险评分图层", noHotspots: "该位置无风险热点", score: "评分", people_: "人口",
      schools: "学校", hospitals: "医院", careHomes: "养老院", roads: "道路", facilities: "设施",
      hazard: {
        rain_3h: "3 小时降雨", landslide_rain: "降雨诱发滑坡", flood: "洪水", landslide_slope: "边坡变形",
        fire: "森林火险", chemical: "危化品",
      },
      noTasks: "暂无部门任务", ackBy: "签收", ackDue: "签收时限", doneDue: "完成时限", overdue: "已超时",
      left: "剩余", late: "超时", onTime: "按时", escalation: "升级", stage: "级",
      toCrew: "交给队伍", chooseCrew: "选择队伍…", assign: "派给队伍", assigning: "派发中…", crewTask: "队伍任务",
      noCrews: "该部门无队伍",
      status: {
        sent: "已发送", delivered: "已送达", acknowledged: "已签收", in_progress: "处置中", done: "已完成",
        declined: "已拒绝", cancelled: "已取消",
      },
      warnings: "村组叫应", answered: "已应答", notAnswered: "未应答", noWarnings: "无村组叫应",
      notAllowed: "无权查看",
      alerts: "预警消息", noAlerts: "尚未起草预警", draft: "起草预警", drafting: "提交中…",
      instructionZh: "指引（中文）", instructionEn: "指引（英文）", msgType: "消息类型", auto: "自动",
      bothLanguages: "指引需同时填写中英文，或都不填", release: "签发", releasing: "签发中…",
      refused: "被拒绝", xml: "CAP XML", feed: "Atom 订阅", preview: "预览 XML", scope: "范围",
      draftedBy: "起草", releasedBy: "签发", withdrawnBy: "撤回",
      msgState: { draft: "草稿", released: "已签发", withdrawn: "已撤回" },
      cancelNeeded: "事件已关闭：需签发取消消息",
      zones: "转移区域", noZones: "尚未划定转移区域", population: "人口", evacuated: "已转移", remaining: "未转移",
      sheltered: "已安置", shelters: "避难场所", capacity: "容量", occupancy: "在场", free: "空余",
      overCapacity: "超容", reports: "信息报送", noReports: "尚未报送", initialDue: "首报时限",
      reportText: "报告全文", zoneState: { open: "进行中", closed: "已关闭" },
      verify: { unverified: "未核实", reported: "报告未核实", verified: "已核实", false_alarm: "误报" },
    },
  },
  en: {
    incident: {
      panel: "Incident detail", none: "Select an incident in the list", loading: "Loading…", collapse: "Fold",
      expand: "Unfold",
      why: "Why this incident", tasks: "Department tasks", cap: "CAP alert", people: "People at risk",
      levels: "Level history", verification: "Verification", chart: "Triggering readings", noReadings: "No readings",
      rain3: "rain in 3 h", rain6: "rain in 6 h", rain12: "rain in 12 h", interval: "rain per report",
      crossed: "crossed", threshold: "threshold", falseAlarm: "false alarm", reopened: "reopened", by: "by",
      layers: "Layers that scored it", noHotspots: "No risk hotspot at this place", score: "score",
      people_: "people", schools: "schools", hospitals: "hospitals", careHomes: "care homes", roads: "roads", facilities: "facilities",
      hazard: {
        rain_3h: "3-h rain", landslide_rain: "rain-triggered landslide", flood: "flood",
        landslide_slope: "slope movement", fire: "forest fire", chemical: "chemical",
      },
      noTasks: "No department tasks", ackBy: "acknowledged", ackDue: "ack due", doneDue: "done due",
      overdue: "overdue", left: "left", late: "late", onTime: "on time", escalation: "escalation",
      stage: "stage", toCrew: "Give to crew", chooseCrew: "Choose a crew…", assign: "Assign", assigning: "Assigning…",
      crewTask: "crew task", noCrews: "the department has no crews",
      status: {
        sent: "sent", delivered: "delivered", acknowledged: "acknowledged", in_progress: "in progress",
        done: "done", declined: "declined", cancelled: "cancelled",
      },
      warnings: "Village warnings", answered: "answered", notAnswered: "not answered", noWarnings: "No village warnings",
      notAllowed: "not permitted",
      alerts: "Alert messages", noAlerts: "No alert drafted yet", draft: "Draft alert", drafting: "Sending…",
      instructionZh: "Instruction (Chinese)", instructionEn: "Instruction (English)", msgType: "Message type",
      auto: "automatic", bothLanguages: "Give the instruction in both languages, or neither",
      release: "Release", releasing: "Releasing…", refused: "Refused", xml: "CAP XML", feed: "Atom feed",
      preview: "XML preview", scope: "scope", draftedBy: "drafted", releasedBy: "released", withdrawnBy: "withdrawn",
      msgState: { draft: "draft", released: "released", withdrawn: "withdrawn" },
      cancelNeeded: "The incident is closed: a Cancel message must be released",
      zones: "Evacuation zones", noZones: "No evacuation zone drawn yet", population: "population",
      evacuated: "evacuated", remaining: "remaining", sheltered: "sheltered", shelters: "Shelters",
      capacity: "capacity", occupancy: "in", free: "free", overCapacity: "over capacity", reports: "Reports",
      noReports: "No report issued yet", initialDue: "initial report due", reportText: "Report text",
      zoneState: { open: "open", closed: "closed" },
      verify: { unverified: "unverified", reported: "reported, not confirmed", verified: "verified", false_alarm: "false alarm" },
    },
  },
};

/** Text of a number, or "—". */
function num(value, digits = 1) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** "12 min 05 s" / "1 h 04 min" for a span of seconds (no sign). */
export function spanText(seconds) {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m} min ${String(sec).padStart(2, "0")} s`;
}

/**
 * Rain accumulated in the window of `hours` ending at each reading: the sum of the per-report
 * amounts stamped in (t − window, t] (each amount is the rain of the interval ending at its stamp,
 * as command/risk/rules.py rain_accumulations reads them). Points are [{time_ms, value}], sorted.
 */
export function rainAccumulation(points, hours) {
  const windowMs = hours * 3600 * 1000;
  const out = [];
  let start = 0;
  let sum = 0;
  for (let i = 0; i < points.length; i += 1) {
    sum += points[i].value;
    while (points[start].time_ms <= points[i].time_ms - windowMs) {
      sum -= points[start].value;
      start += 1;
    }
    out.push({ time_ms: points[i].time_ms, value: Math.round(sum * 1000) / 1000 });
  }
  return out;
}

/** The indexes where a series first reaches `threshold` from below (the first point counts if already above). */
export function crossings(series, threshold) {
  const found = [];
  for (let i = 0; i < series.length; i += 1) {
    const before = i === 0 ? -Infinity : series[i - 1].value;
    if (series[i].value >= threshold && before < threshold) found.push(i);
  }
  return found;
}

/** What to chart for a member sensor: its series, its threshold lines and the axis label. */
export function chartSpec({ kind, thresholds = {}, unit = "", level = "orange", readings }) {
  const points = readings
    .filter((r) => typeof r.value === "number" && Number.isFinite(r.value) && r.flag !== "bad")
    .map((r) => ({ time_ms: Date.parse(r.time), value: r.value }))
    .filter((p) => Number.isFinite(p.time_ms))
    .sort((a, b) => a.time_ms - b.time_ms);
  if (kind === "rain_gauge") {
    const th = { ...RAIN_DEFAULTS };
    for (const [k, v] of Object.entries(thresholds ?? {})) if (k in th && Number.isFinite(Number(v))) th[k] = Number(v);
    const hours = RAIN_WINDOW_H[level] ?? 3;
    const lines = hours === 3
      ? [{ value: th.orange_3h_mm, colour: "orange" }, { value: th.red_3h_mm, colour: "red" }]
      : hours === 6 ? [{ value: th.yellow_6h_mm, colour: "yellow" }] : [{ value: th.blue_12h_mm, colour: "blue" }];
    return { series: rainAccumulation(points, hours), bars: points, lines, unit: "mm", label: `rain${hours}` };
  }
  const lines = [];
  for (const [key, colour] of RIVER_KEYS) {
    const v = Number(thresholds?.[key]);
    if (thresholds?.[key] != null && Number.isFinite(v)) lines.push({ value: v, colour, key });
  }
  return { series: points, bars: null, lines, unit, label: null };
}

/** Replace an element's children, skipping null/false ones (replaceChildren would print "null"). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  for (const c of children) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export async function install(ctx) {
  const { state, h, t, pick, formatDateTime, formatTime, api, LEVEL_COLOURS } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_incident.css";
  document.head.append(link);

  const opened = new Set((ctx.storageGet(OPEN_KEY) ?? "why,tasks,cap,people").split(",").filter(Boolean));
  const view = {
    id: null, // the incident shown
    generation: 0, // bumps on every selection: a late answer for an older one is dropped
    incident: null, readings: new Map(), risk: null, tasks: new Map(), crews: null, warnings: null,
    alerts: [], evacuation: null, reports: null, errors: {},
    assignPending: new Set(), crewChoice: new Map(), taskErrors: new Map(),
    releasePending: new Set(), releaseErrors: new Map(), draft: { zh: "", en: "", msgType: "", error: null, pending: false },
    reloadTimers: new Map(), collapsed: ctx.storageGet(`${OPEN_KEY}.panel`) === "folded",
  };

  // ------------------------------------------------------------ DOM skeleton
  const title = h("span", { class: "idt-title" });
  const foldBtn = h("button", { type: "button", class: "idt-fold link-btn", "aria-expanded": "true" });
  const empty = h("div", { class: "empty idt-empty" });
  const bodies = {};
  const summaries = {};
  const details = {};
  for (const name of SECTIONS) {
    summaries[name] = h("summary", { class: "idt-summary" });
    bodies[name] = h("div", { class: "idt-body", dataset: { section: name } });
    details[name] = h("details", {
      class: `idt-section idt-${name}`, dataset: { section: name }, open: opened.has(name),
      ontoggle: (ev) => {
        if (ev.target.open) opened.add(name); else opened.delete(name);
        ctx.storageSet(OPEN_KEY, [...opened].join(","));
      },
    }, summaries[name], bodies[name]);
  }
  // The alert form is built once and never moved, so live re-renders keep what is being typed.
  const capList = h("div", { class: "idt-cap-list" });
  const capForm = buildDraftForm();
  bodies.cap.append(capList, capForm);
  const content = h("div", { class: "idt-content" }, ...SECTIONS.map((n) => details[n]));
  const panel = h("section", {
    class: "panel incident-detail", id: "incident-detail-panel", "aria-live": "polite",
  }, h("h2", { class: "idt-head" }, title, foldBtn), empty, content);
  foldBtn.addEventListener("click", () => {
    view.collapsed = !view.collapsed;
    ctx.storageSet(`${OPEN_KEY}.panel`, view.collapsed ? "folded" : null);
    renderAll();
  });
  const incidentPanel = document.getElementById("incident-panel");
  if (incidentPanel?.parentElement === ctx.sidebar) incidentPanel.after(panel);
  else ctx.sidebar.append(panel);

  // ------------------------------------------------------------ loading

  async function load(part, fn) {
    const gen = view.generation;
    try {
      const value = await fn();
      if (gen !== view.generation) return;
      delete view.errors[part];
      return value;
    } catch (err) {
      if (gen !== view.generation) return;
      view.errors[part] = err;
      if (err.status !== 403) ctx.logEvent("console.error", null, `#${view.id} ${part}: ${err.message}`);
    }
    return undefined;
  }

  const loaders = {
    async why() {
      const id = view.id;
      const inc = await load("incident", () => api(`/api/incidents/${id}`));
      if (inc) view.incident = inc;
      const members = memberSensors();
      const [risk] = await Promise.all([
        load("risk", () => api("/api/risk")),
        ...members.map((sid) => load(`readings:${sid}`,
          () => api(`/api/sensors/${encodeURIComponent(sid)}/readings?limit=${READINGS_LIMIT}`))
          .then((body) => { if (body) view.readings.set(sid, body.readings ?? []); })),
      ]);
      if (risk) view.risk = risk;
      renderWhy();
    },
    async tasks() {
      const id = view.id;
      const [tasks, crews, warnings] = await Promise.all([
        load("tasks", () => api(`/api/tasks?incident_id=${id}`)),
        view.crews ? Promise.resolve(null) : load("crews", () => api("/api/crews")),
        load("warnings", () => api(`/api/incidents/${id}/warnings`)),
      ]);
      if (tasks) { view.tasks.clear(); for (const task of tasks.tasks ?? []) view.tasks.set(task.id, task); }
      if (crews) view.crews = crews.crews ?? [];
      if (warnings) view.warnings = warnings;
      renderTasks();
    },
    async cap() {
      const id = view.id;
      const list = await load("alerts", () => api("/api/alerts"));
      if (list) {
        const mine = (list.alerts ?? []).filter((a) => a.incident_id === id);
        const full = await Promise.all(mine.map((a) => load(`alert:${a.id}`, () => api(`/api/alerts/${a.id}`))));
        if (id === view.id) view.alerts = full.map((a, i) => a ?? { ...mine[i], messages: [] });
      }
      renderCap();
    },
    async people() {
      const id = view.id;
      const [evacuation, reports] = await Promise.all([
        load("evacuation", () => api(`/api/incidents/${id}/evacuation`)),
        load("reports", () => api(`/api/incidents/${id}/reports`)),
      ]);
      if (evacuation) view.evacuation = evacuation;
      if (reports) view.reports = reports;
      renderPeople();
    },
  };

  /** Refetch one section soon (bursts of events make one request). */
  function reload(section) {
    if (view.id === null || view.reloadTimers.has(section)) return;
    view.reloadTimers.set(section, setTimeout(() => {
      view.reloadTimers.delete(section);
      if (view.id !== null) loaders[section]();
    }, RELOAD_MS));
  }

  function follow() {
    const id = state.selectedIncident ?? null;
    if (id === view.id) return;
    view.id = id;
    view.generation += 1;
    view.incident = state.incidents.get(id) ?? null;
    view.readings.clear();
    view.tasks.clear();
    view.warnings = null;
    view.alerts = [];
    view.evacuation = null;
    view.reports = null;
    view.errors = {};
    view.taskErrors.clear();
    view.releaseErrors.clear();
    view.draft = { zh: "", en: "", msgType: "", error: null, pending: false };
    resetDraftForm();
    for (const timer of view.reloadTimers.values()) clearTimeout(timer);
    view.reloadTimers.clear();
    renderAll();
    if (id !== null) for (const section of SECTIONS) loaders[section]();
  }

  function memberSensors() {
    const inc = view.incident ?? {};
    const ids = new Set([...(inc.sensors ?? []), ...(inc.sensor_id ? [inc.sensor_id] : []),
      ...(inc.evidence ?? []).map((e) => e.sensor_id).filter(Boolean)]);
    return [...ids].filter((sid) => state.sensors.has(sid) || (inc.sensors ?? []).includes(sid));
  }

  // ------------------------------------------------------------ rendering

  function renderAll() {
    const inc = view.id !== null ? (view.incident ?? state.incidents.get(view.id)) : null;
    panel.dataset.incident = view.id ?? "";
    foldBtn.textContent = view.collapsed ? `▸ ${t("incident.expand")}` : `▾ ${t("incident.collapse")}`;
    foldBtn.setAttribute("aria-expanded", String(!view.collapsed));
    fill(title, t("incident.panel"), inc ? ` · #${inc.id} ${pick(inc, "title")}` : "");
    empty.textContent = t("incident.none");
    empty.hidden = view.id !== null || view.collapsed;
    content.hidden = view.id === null || view.collapsed;
    for (const name of SECTIONS) summaries[name].textContent = t(`incident.${name}`);
    renderDraftFormText();
    if (view.id !== null) { renderWhy(); renderTasks(); renderCap(); renderPeople(); }
  }

  const levelChip = (level) => h("span", {
    class: "idt-level", dataset: { level }, style: `background:${LEVEL_COLOURS[level] ?? "#8a8f96"}`,
  }, t(`level.${level}`));

  function sensorName(sid) {
    const props = state.sensors.get(sid)?.feature.properties;
    return props ? pick(props, "name") || sid : sid;
  }

  function errorLine(part) {
    const err = view.errors[part];
    if (!err) return null;
    return h("div", { class: "idt-error", role: "alert" }, err.status === 403 ? t("incident.notAllowed") : err.message);
  }

  // -- 1. why

  function levelReason(entry, inc) {
    if (entry.false_alarm) return `${t("incident.falseAlarm")} · ${t("incident.by")} ${entry.by ?? "?"}`;
    if (entry.reopened) return `${t("incident.reopened")} · ${t("incident.by")} ${entry.by ?? "?"}`;
    if (entry.sensor_id) {
      const props = state.sensors.get(entry.sensor_id)?.feature.properties ?? {};
      const rain = props.kind === "rain_gauge";
      const unit = rain ? `mm / ${RAIN_WINDOW_H[entry.level] ?? 3} h` : (props.unit ?? "");
      return `${sensorName(entry.sensor_id)}: ${num(entry.value)} ${unit}`;
    }
    if (entry.by) return `${t("incident.by")} ${entry.by}${entry.source ? ` (${entry.source})` : ""}`;
    return pick(inc, "reason");
  }

  function renderLevels(inc) {
    const levels = inc.levels ?? [];
    return h("div", { class: "idt-block" },
      h("h4", {}, t("incident.levels")),
      h("ol", { class: "idt-levels" }, levels.map((entry, i) => h("li", {
        class: "idt-step", dataset: { level: entry.level },
      },
      h("time", { datetime: entry.time }, formatDateTime(entry.time)),
      levelChip(entry.level),
      h("span", { class: "idt-step-why" }, levelReason(entry, inc),
        i === levels.length - 1 && pick(inc, "reason") ? h("span", { class: "muted" }, ` — ${pick(inc, "reason")}`) : null)))),
      inc.verification ? h("div", { class: "idt-verification muted" },
        `${t("incident.verification")}: ${t(`incident.verify.${inc.verification.state}`)}${inc.verification.reason ? ` · ${pick(inc.verification, "reason")}` : ""}`) : null);
  }

  /** One member sensor's chart: its series over the last hours, the thresholds, the crossings. */
  function renderChart(sid, inc) {
    const props = state.sensors.get(sid)?.feature.properties ?? {};
    const all = view.readings.get(sid) ?? [];
    const quantity = props.quantity ?? all[all.length - 1]?.quantity;
    const newest = all.length ? Date.parse(all[all.length - 1].time) : Date.now();
    const since = newest - CHART_HOURS * 3600 * 1000;
    const readings = all.filter((r) => r.quantity === quantity && Date.parse(r.time) > since);
    const memberLevel = [...(inc.levels ?? [])].reverse().find((e) => e.sensor_id === sid)?.level ?? inc.level;
    const spec = chartSpec({ kind: props.kind, thresholds: props.thresholds, unit: props.unit ?? readings[0]?.unit ?? "",
      level: memberLevel, readings });
    const name = `${sensorName(sid)}${quantity ? ` · ${quantity}` : ""}`;
    if (!spec.series.length) {
      return h("div", { class: "idt-chart empty", dataset: { sensor: sid } }, `${name}: ${t("incident.noReadings")}`);
    }
    const W = 360; const H = 150; const L = 38; const R = 8; const T = 8; const B = 20;
    const t0 = spec.series[0].time_ms;
    const t1 = Math.max(spec.series[spec.series.length - 1].time_ms, t0 + 60_000);
    const values = spec.series.map((p) => p.value);
    const lineValues = spec.lines.map((l) => l.value);
    let lo = Math.min(...values, ...lineValues);
    let hi = Math.max(...values, ...lineValues);
    if (spec.bars) lo = 0;
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const pad = (hi - lo) * 0.06;
    hi += pad; if (!spec.bars) lo -= pad;
    const x = (ms) => L + ((ms - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    const fmt = (v) => num(v, Math.abs(hi - lo) < 10 ? 2 : 1);
    const parts = [
      svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "idt-plot" }),
      svg("text", { x: L - 4, y: T + 8, class: "idt-axis", "text-anchor": "end" }, fmt(hi)),
      svg("text", { x: L - 4, y: H - B, class: "idt-axis", "text-anchor": "end" }, fmt(lo)),
      svg("text", { x: L, y: H - 5, class: "idt-axis" }, formatTime(new Date(t0).toISOString()).slice(0, 5)),
      svg("text", { x: W - R, y: H - 5, class: "idt-axis", "text-anchor": "end" },
        formatTime(new Date(t1).toISOString()).slice(0, 5)),
    ];
    if (spec.bars) {
      const bw = Math.max(2, Math.min(10, (W - L - R) / Math.max(spec.bars.length, 1) / 2));
      for (const b of spec.bars) {
        parts.push(svg("rect", {
          class: "idt-bar", x: x(b.time_ms) - bw / 2, y: y(Math.max(b.value, lo)), width: bw,
          height: Math.max(0, y(lo) - y(Math.max(b.value, lo))),
        }, svg("title", {}, `${formatTime(new Date(b.time_ms).toISOString())} ${num(b.value)} mm`)));
      }
    }
    for (const line of spec.lines) {
      const colour = LEVEL_COLOURS[line.colour] ?? "#777";
      parts.push(svg("line", {
        class: "threshold", x1: L, x2: W - R, y1: y(line.value), y2: y(line.value), stroke: colour,
        "data-value": line.value, "data-level": line.colour,
      }, svg("title", {}, `${t("incident.threshold")} ${t(`level.${line.colour}`)} ${line.value} ${spec.unit}`)));
      parts.push(svg("text", { x: W - R - 2, y: y(line.value) - 2, class: "idt-axis", "text-anchor": "end", fill: colour },
        `${line.value}`));
    }
    const pointsAttr = spec.series.map((p) => `${x(p.time_ms).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    parts.push(svg("polyline", {
      class: "series", points: pointsAttr, "data-sensor": sid, "data-values": values.join(","),
      "data-times": spec.series.map((p) => new Date(p.time_ms).toISOString()).join(","),
    }));
    for (const p of spec.series) parts.push(svg("circle", { class: "idt-dot", cx: x(p.time_ms), cy: y(p.value), r: 1.8 }));
    for (const line of spec.lines) {
      for (const i of crossings(spec.series, line.value)) {
        const p = spec.series[i];
        parts.push(svg("circle", {
          class: "crossing", cx: x(p.time_ms), cy: y(p.value), r: 4.5, fill: LEVEL_COLOURS[line.colour] ?? "#777",
          "data-level": line.colour, "data-time": new Date(p.time_ms).toISOString(), "data-value": p.value,
        }, svg("title", {}, `${t("incident.crossed")} ${line.value} ${spec.unit}: ${formatDateTime(new Date(p.time_ms).toISOString())} · ${num(p.value)} ${spec.unit}`)));
      }
    }
    const label = spec.label ? t(`incident.${spec.label}`) : (quantity ?? "");
    return h("figure", { class: "idt-chart", dataset: { sensor: sid } },
      h("figcaption", {}, name, h("span", { class: "muted" }, ` · ${label} (${spec.unit})`)),
      svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${name} ${label}`, class: "idt-svg" }, ...parts));
  }

  const EXPOSURE = {
    population_persons: (v) => `${t("incident.people_")} ${Math.round(v).toLocaleString()}`,
    schools_count: (v) => `${t("incident.schools")} ${Math.round(v)}`,
    hospitals_count: (v) => `${t("incident.hospitals")} ${Math.round(v)}`,
    road_length_m: (v) => `${t("incident.roads")} ${num(v / 1000, 1)} km`,
    nursing_homes_count: (v) => `${t("incident.careHomes")} ${Math.round(v)}`,
  };

  function renderHotspots(inc) {
    const spots = inc.hotspots ?? [];
    const features = new Map((view.risk?.features ?? []).map((f) => [f.properties?.id ?? f.id, f.properties ?? {}]));
    return h("div", { class: "idt-block" },
      h("h4", {}, t("incident.layers")),
      spots.length ? h("ul", { class: "idt-hotspots" }, spots.map((spot) => {
        const props = features.get(spot.id) ?? {};
        const exposures = props.exposures?.length ? props.exposures
          : [{ layer: "population_persons", total: spot.population_persons }];
        const facilities = props.facility_ids ?? [];
        // the service's own one-line account of the score goes in the tooltip: the tags say the same
        return h("li", { class: "idt-hotspot", dataset: { id: spot.id, level: spot.level }, title: spot.why ?? "" },
          levelChip(spot.level),
          props.peak_score != null ? h("span", { class: "muted" }, ` ${t("incident.score")} ${num(props.peak_score, 2)} `) : " ",
          (props.hazards ?? []).map((hz) => h("span", { class: "idt-tag hazard", dataset: { layer: hz.layer } },
            `${t(`incident.hazard.${hz.layer}`)} ${num(hz.value, 2)}`)),
          exposures.map((ex) => h("span", { class: "idt-tag exposure", dataset: { layer: ex.layer } },
            (EXPOSURE[ex.layer] ?? ((v) => `${ex.layer} ${num(v, 0)}`))(Number(ex.total) || 0))),
          facilities.length ? h("span", { class: "idt-tag exposure", dataset: { layer: "facilities" }, title: facilities.join(", ") },
            `${t("incident.facilities")} ${facilities.length}`) : null);
      })) : h("div", { class: "empty" }, t("incident.noHotspots")));
  }

  function renderWhy() {
    if (view.id === null) return;
    const inc = view.incident ?? state.incidents.get(view.id);
    if (!inc) { fill(bodies.why, h("div", { class: "empty" }, t("incident.loading"))); return; }
    const members = memberSensors();
    fill(bodies.why,
      errorLine("incident"),
      renderLevels(inc),
      h("div", { class: "idt-block" },
        h("h4", {}, t("incident.chart")),
        members.length ? members.map((sid) => renderChart(sid, inc)) : h("div", { class: "empty" }, t("incident.noReadings"))),
      renderHotspots(inc));
  }

  // -- 2. tasks

  function due(iso, { done = false, doneAt = null } = {}) {
    if (!iso) return h("span", { class: "muted" }, "—");
    if (done) {
      const late = doneAt && Date.parse(doneAt) > Date.parse(iso);
      return h("span", { class: `idt-due ${late ? "late" : "ok"}` },
        `${formatTime(iso)} · ${late ? t("incident.late") : t("incident.onTime")}`);
    }
    const el = h("span", { class: "idt-due countdown", dataset: { due: iso } });
    tickOne(el);
    return el;
  }

  function tickOne(el) {
    const left = (Date.parse(el.dataset.due) - Date.now()) / 1000;
    el.classList.toggle("overdue", left < 0);
    el.textContent = `${formatTime(el.dataset.due)} · ${left < 0 ? `${t("incident.overdue")} ${spanText(left)}` : `${t("incident.left")} ${spanText(left)}`}`;
  }

  function crewsOf(department) {
    return (view.crews ?? []).filter((c) => c.department === department);
  }

  async function assign(task) {
    const crew = view.crewChoice.get(task.id);
    if (!crew) { view.taskErrors.set(task.id, t("incident.chooseCrew")); renderTasks(); return; }
    view.assignPending.add(task.id);
    view.taskErrors.delete(task.id);
    renderTasks();
    try {
      const body = await api(`/api/tasks/${task.id}/assign`, { method: "POST", body: { by: ctx.operatorName(), crew } });
      if (body?.task) view.tasks.set(body.task.id, body.task);
      view.crewChoice.delete(task.id);
      ctx.logEvent("console.info", null, `#${task.incident_id} ${pick(task, "department_name")} → ${crew}`);
    } catch (err) {
      view.taskErrors.set(task.id, err.message);
    } finally {
      view.assignPending.delete(task.id);
      renderTasks();
    }
  }

  function renderTask(task, children) {
    const acked = TASK_ACKED.has(task.status);
    const closed = TASK_CLOSED.has(task.status);
    const crews = crewsOf(task.department);
    const error = view.taskErrors.get(task.id);
    const pending = view.assignPending.has(task.id);
    return h("li", { class: `idt-task status-${task.status}`, dataset: { id: task.id, status: task.status, department: task.department } },
      h("div", { class: "idt-task-head" },
        h("strong", { class: "idt-dept" }, pick(task, "department_name") || task.department),
        h("span", { class: `idt-badge status-${task.status}` }, t(`incident.status.${task.status}`)),
        task.escalation_stage > 0 ? h("span", { class: "idt-badge escalated", dataset: { stage: task.escalation_stage } },
          `${t("incident.escalation")} ${task.escalation_stage} ${t("incident.stage")}`) : null),
      h("div", { class: "idt-task-text" }, pick(task, "text")),
      h("div", { class: "idt-task-facts" },
        acked ? h("span", { class: "idt-acked" }, `${t("incident.ackBy")}: ${task.acknowledged_by ?? "—"} ${formatTime(task.acknowledged_at)}`) : null,
        h("span", { class: "idt-ack-due" }, `${t("incident.ackDue")} `,
          due(task.ack_due_at, { done: acked || closed, doneAt: task.acknowledged_at })),
        h("span", { class: "idt-done-due" }, `${t("incident.doneDue")} `,
          due(task.complete_due_at, { done: closed, doneAt: task.updated_at }))),
      children.length ? h("ul", { class: "idt-crew-tasks" }, children.map((c) => h("li", {
        class: "idt-crew-task", dataset: { id: c.id, status: c.status, crew: c.crew },
      }, `${t("incident.crewTask")} ${c.crew}: `, h("span", { class: `idt-badge status-${c.status}` }, t(`incident.status.${c.status}`)),
      c.acknowledged_by ? ` · ${c.acknowledged_by} ${formatTime(c.acknowledged_at)}` : null))) : null,
      !closed && !task.crew ? (crews.length ? h("div", { class: "idt-assign" },
        h("select", {
          name: "crew", "aria-label": t("incident.toCrew"), disabled: pending,
          onchange: (ev) => view.crewChoice.set(task.id, ev.target.value),
        }, h("option", { value: "" }, t("incident.chooseCrew")),
        crews.map((c) => h("option", { value: c.id, selected: view.crewChoice.get(task.id) === c.id },
          `${pick(c, "name")} · ${c.status ?? ""}`))),
        h("button", { type: "button", class: "idt-assign-btn", disabled: pending, onclick: () => assign(task) },
          pending ? t("incident.assigning") : t("incident.assign"))) : null) : null,
      error ? h("div", { class: "idt-error", role: "alert" }, error) : null);
  }

  function renderWarnings() {
    const w = view.warnings;
    const rows = w?.warnings ?? [];
    return h("div", { class: "idt-block idt-warnings" },
      h("h4", {}, t("incident.warnings"), w ? h("span", { class: "muted" }, ` ${w.received ?? 0}/${w.total ?? rows.length}`) : null),
      errorLine("warnings"),
      rows.length ? h("ul", {}, rows.map((r) => h("li", {
        class: `idt-warning ${r.received ? "answered" : "waiting"}`, dataset: { task: r.task_id, received: String(!!r.received) },
      },
      h("strong", {}, pick(r, "name") || r.recipient), " ",
      h("span", { class: `idt-badge ${r.received ? "status-acknowledged" : "status-sent"}` },
        r.received ? t("incident.answered") : t("incident.notAnswered")),
      r.received ? ` ${r.answered_by ?? ""} ${formatTime(r.answered_at)}` : [" ", due(r.ack_due_at)]))) :
        (w ? h("div", { class: "empty" }, t("incident.noWarnings")) : null));
  }

  function renderTasks() {
    if (view.id === null) return;
    const all = [...view.tasks.values()].sort((a, b) => a.id - b.id);
    const top = all.filter((task) => task.parent_id == null);
    const children = (id) => all.filter((task) => task.parent_id === id);
    const open = top.filter((task) => !TASK_ACKED.has(task.status) && !TASK_CLOSED.has(task.status)).length;
    summaries.tasks.textContent = `${t("incident.tasks")} (${top.length - open}/${top.length})`;
    fill(bodies.tasks,
      errorLine("tasks"),
      top.length ? h("ol", { class: "idt-task-list" }, top.map((task) => renderTask(task, children(task.id))))
        : h("div", { class: "empty" }, view.errors.tasks ? "" : t("incident.noTasks")),
      renderWarnings());
  }

  // -- 3. CAP

  function buildDraftForm() {
    const zh = h("textarea", { name: "instruction_zh", rows: 2, maxlength: 1000 });
    const en = h("textarea", { name: "instruction", rows: 2, maxlength: 1000 });
    const msgType = h("select", { name: "msg_type" },
      h("option", { value: "" }), h("option", { value: "Alert" }, "Alert"), h("option", { value: "Update" }, "Update"),
      h("option", { value: "Cancel" }, "Cancel"));
    const labels = { zh: h("span"), en: h("span"), msgType: h("span") };
    const error = h("div", { class: "idt-error idt-draft-error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "idt-draft-btn" });
    const form = h("form", {
      class: "idt-draft-form", novalidate: true,
      onsubmit: (ev) => { ev.preventDefault(); draftAlert(); },
    },
    h("label", {}, labels.zh, zh), h("label", {}, labels.en, en), h("label", { class: "inline" }, labels.msgType, msgType),
    error, submit);
    form.fields = { zh, en, msgType, labels, error, submit };
    return form;
  }

  function renderDraftFormText() {
    const f = capForm.fields;
    f.labels.zh.textContent = t("incident.instructionZh");
    f.labels.en.textContent = t("incident.instructionEn");
    f.labels.msgType.textContent = t("incident.msgType");
    f.msgType.options[0].textContent = t("incident.auto");
    f.submit.textContent = view.draft.pending ? t("incident.drafting") : t("incident.draft");
    f.submit.disabled = view.draft.pending;
    f.error.hidden = !view.draft.error;
    f.error.textContent = view.draft.error ?? "";
    const inc = view.id !== null ? state.incidents.get(view.id) : null;
    capForm.hidden = !inc;
  }

  function resetDraftForm() {
    const f = capForm.fields;
    f.zh.value = ""; f.en.value = ""; f.msgType.value = "";
    renderDraftFormText();
  }

  async function draftAlert() {
    const f = capForm.fields;
    const zh = f.zh.value.trim();
    const en = f.en.value.trim();
    if (Boolean(zh) !== Boolean(en)) {
      view.draft.error = t("incident.bothLanguages");
      renderDraftFormText();
      (zh ? f.en : f.zh).focus();
      return;
    }
    const body = { by: ctx.operatorName() };
    if (zh) { body.instruction_zh = zh; body.instruction = en; }
    if (f.msgType.value) body.msg_type = f.msgType.value;
    const id = view.id;
    view.draft.pending = true;
    view.draft.error = null;
    renderDraftFormText();
    try {
      await api(`/api/incidents/${id}/alerts`, { method: "POST", body });
      if (id === view.id) { f.zh.value = ""; f.en.value = ""; f.msgType.value = ""; }
      ctx.logEvent("console.info", null, `#${id} ${t("incident.draft")}`);
    } catch (err) {
      if (id === view.id) view.draft.error = `${t("incident.refused")}: ${err.message}`;
    } finally {
      view.draft.pending = false;
      renderDraftFormText();
      if (id === view.id) loaders.cap();
    }
  }

  async function release(message) {
    view.releasePending.add(message.id);
    view.releaseErrors.delete(message.id);
    renderCap();
    try {
      await api(`/api/alerts/messages/${message.id}/release`, { method: "POST", body: { by: ctx.operatorName() } });
      ctx.logEvent("console.info", null, `#${message.incident_id} ${t("incident.release")} ${message.identifier ?? message.id}`);
    } catch (err) {
      view.releaseErrors.set(message.id, err.message);
      ctx.logEvent("console.error", null, `${t("incident.release")} ${message.id}: ${err.message}`);
    } finally {
      view.releasePending.delete(message.id);
      renderCap();
      loaders.cap();
    }
  }

  function renderMessage(m) {
    const pending = view.releasePending.has(m.id);
    const refusal = m.state === "draft" ? view.releaseErrors.get(m.id) : null; // moot once released or withdrawn
    const scope = m.scope === "Restricted" ? `Restricted: ${m.restriction ?? ""}` : m.scope;
    return h("li", { class: `idt-message state-${m.state}`, dataset: { id: m.id, state: m.state, msgType: m.msg_type } },
      h("div", { class: "idt-message-head" },
        h("span", { class: "muted" }, `#${m.seq}`), " ",
        h("strong", {}, m.msg_type), " ",
        h("span", { class: `idt-badge msg-${m.state}` }, t(`incident.msgState.${m.state}`)), " ",
        h("span", { class: "muted" }, `${t("incident.scope")} ${scope}`)),
      h("div", { class: "idt-headline" }, pick(m, "headline")),
      h("div", { class: "idt-message-facts muted" },
        `${t("incident.draftedBy")} ${m.drafted_by ?? "—"} ${formatTime(m.drafted_at)}`,
        m.released_by ? ` · ${t("incident.releasedBy")} ${m.released_by} ${formatTime(m.released_at)}` : "",
        m.withdrawn_by ? ` · ${t("incident.withdrawnBy")} ${m.withdrawn_by}: ${m.withdraw_reason ?? ""}` : ""),
      h("div", { class: "idt-message-actions" },
        m.state === "released" && m.xml_url ? h("a", { href: m.xml_url, target: "_blank", rel: "noopener", class: "idt-xml" }, t("incident.xml")) : null,
        m.state === "draft" ? h("button", {
          type: "button", class: "idt-release-btn", disabled: pending, onclick: () => release(m),
        }, pending ? t("incident.releasing") : t("incident.release")) : null),
      m.state === "draft" && m.preview_xml ? h("details", { class: "idt-preview" },
        h("summary", {}, t("incident.preview")), h("pre", {}, m.preview_xml)) : null,
      refusal ? h("div", { class: "idt-error idt-refusal", role: "alert" }, `${t("incident.refused")}: ${refusal}`) : null);
  }

  function renderCap() {
    if (view.id === null) return;
    const messages = view.alerts.flatMap((a) => (a.messages ?? []).map((m) => ({ ...m, alert: a })));
    summaries.cap.textContent = `${t("incident.cap")}${messages.length ? ` (${messages.length})` : ""}`;
    fill(capList,
      h("div", { class: "idt-cap-links" },
        h("a", { href: "/api/alerts/cap", target: "_blank", rel: "noopener", class: "idt-feed" }, t("incident.feed"))),
      errorLine("alerts"),
      view.alerts.some((a) => a.cancel_needed) ? h("div", { class: "idt-error" }, t("incident.cancelNeeded")) : null,
      messages.length ? h("ol", { class: "idt-messages" }, messages.map(renderMessage))
        : h("div", { class: "empty" }, t("incident.noAlerts")));
    renderDraftFormText();
  }

  // -- 4. people at risk

  function renderPeople() {
    if (view.id === null) return;
    const ev = view.evacuation;
    const rep = view.reports;
    const totals = ev?.totals;
    const zones = ev?.zones ?? [];
    const shelters = ev?.shelters ?? [];
    const reports = rep?.reports ?? [];
    fill(bodies.people,
      errorLine("evacuation"),
      totals ? h("div", { class: "idt-totals" },
        h("span", {}, `${t("incident.population")} ${totals.population_estimate ?? 0}`),
        h("span", {}, `${t("incident.evacuated")} ${totals.evacuated ?? 0}`),
        h("span", { class: totals.remaining ? "idt-remaining" : "" }, `${t("incident.remaining")} ${totals.remaining ?? 0}`),
        h("span", {}, `${t("incident.sheltered")} ${totals.sheltered ?? 0}`)) : null,
      h("div", { class: "idt-block" },
        h("h4", {}, t("incident.zones")),
        zones.length ? h("ul", { class: "idt-zones" }, zones.map((z) => h("li", {
          class: `idt-zone state-${z.state}`, dataset: { id: z.id, state: z.state },
        },
        h("strong", {}, pick(z, "name")), " ",
        h("span", { class: "idt-badge" }, t(`incident.zoneState.${z.state}`)),
        h("div", { class: "muted" },
          `${t("incident.population")} ${z.population?.people ?? "—"} · ${t("incident.evacuated")} ${z.figures?.evacuated ?? "—"}`
          + ` · ${t("incident.remaining")} ${z.figures?.remaining ?? "—"}`)))) : h("div", { class: "empty" }, ev ? t("incident.noZones") : "")),
      shelters.length ? h("div", { class: "idt-block" },
        h("h4", {}, t("incident.shelters")),
        h("ul", { class: "idt-shelters" }, shelters.map((s) => h("li", {
          class: `idt-shelter${s.over_capacity ? " over" : ""}`, dataset: { id: s.id },
        }, h("strong", {}, pick(s, "name")),
        ` · ${t("incident.capacity")} ${s.capacity ?? "—"} · ${t("incident.occupancy")} ${s.occupancy ?? "—"} · ${t("incident.free")} ${s.free ?? "—"}`,
        s.over_capacity ? h("span", { class: "idt-error" }, ` ${t("incident.overCapacity")} +${s.over_by}`) : null)))) : null,
      h("div", { class: "idt-block" },
        h("h4", {}, t("incident.reports")),
        errorLine("reports"),
        reports.length ? h("ol", { class: "idt-reports" }, reports.map((r) => h("li", {
          class: "idt-report", dataset: { id: r.id, kind: r.kind },
        }, h("strong", {}, pick(r, "label")), ` · ${r.by} ${formatDateTime(r.issued_at)}`,
        r.on_time === false ? h("span", { class: "idt-error" }, ` · ${t("incident.late")}`) : null,
        h("details", {}, h("summary", {}, t("incident.reportText")), h("pre", {}, ctx.getLang() === "zh" ? r.text_zh : r.text_en)))))
          : (rep ? h("div", { class: "empty" }, t("incident.noReports")) : null),
        rep && !reports.length && rep.initial_due_at ? h("div", { class: "idt-initial-due" },
          `${t("incident.initialDue")} `, due(rep.initial_due_at)) : null));
  }

  // ------------------------------------------------------------ live feed

  const forSelected = (d) => view.id !== null && d?.incident_id === view.id;

  ctx.on("incident.", (d) => {
    if (view.id === null) return;
    if (d?.id === view.id) {
      view.incident = { ...view.incident, ...d }; // the event carries the view without evidence
      renderAll();
      reload("why");
    } else if (d?.incident_id === view.id) {
      reload("why");
    }
  });
  ctx.on("task.", (d) => {
    if (!forSelected(d)) return;
    if (d.id != null) view.tasks.set(d.id, { ...view.tasks.get(d.id), ...d });
    renderTasks();
    if (d.township || d.department?.startsWith("village")) reload("tasks"); // the 叫应 answers
  });
  ctx.on("alert.", (d) => { if (forSelected(d)) reload("cap"); });
  ctx.on("evacuation.", (d) => { if (forSelected(d)) reload("people"); });
  ctx.on("report.", (d) => { if (forSelected(d)) reload("people"); });
  ctx.on("shelter.", () => { if (view.id !== null && view.evacuation?.shelters?.length) reload("people"); });
  ctx.on("sensor.reading", (d) => {
    if (view.id === null || !view.readings.has(d?.sensor_id)) return;
    const list = view.readings.get(d.sensor_id);
    if (list.some((r) => r.time === d.time && r.quantity === d.quantity)) return;
    list.push({ quantity: d.quantity, value: d.value, unit: d.unit, time: d.time, flag: d.flag ?? null });
    list.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    if (list.length > READINGS_LIMIT) list.splice(0, list.length - READINGS_LIMIT);
    renderWhy();
  });

  ctx.onSnapshot(async () => {
    // a snapshot (connect, resync) may have missed events: fetch the shown incident's views again
    if (view.id !== null && state.incidents.has(view.id)) for (const section of SECTIONS) reload(section);
  });
  ctx.onFlush(() => follow());

  // Language switch: console.js re-renders its own panels; this one follows <html lang>.
  new MutationObserver(() => renderAll()).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  setInterval(() => { for (const el of panel.querySelectorAll("[data-due].countdown")) tickOne(el); }, TICK_MS);

  state.incidentDetail = {
    view,
    reload: (section) => (section ? loaders[section]() : Promise.all(SECTIONS.map((s) => loaders[s]()))),
    rainAccumulation, crossings, chartSpec,
  };
  renderAll();
}
