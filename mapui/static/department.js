// Yingji department view: a linked department's own tasks, their needs on the map, and the
// acknowledge / start / done / decline actions.
//
// Plain ES module, no build step. MapLibre GL JS comes from npm (mapui/node_modules), served
// under /vendor/maplibre-gl/; the basemap is drawn from the district's own layers and no glyphs
// or sprites are used, so the page works with no internet (names appear in the side panel and
// in popups, never as map text). The server decides what a department member may see
// (GET /api/tasks answers with the department's tasks only); the page shows what it is given.
// Updates come from the live feed (/ws) and, should it be down, from a slow poll.

import * as maplibregl from "/vendor/maplibre-gl/maplibre-gl.mjs";
import { ApiError, Session, localTime, translator } from "./session.js";

const STORAGE_KEY = "yingji.dept.token";
const LANG_KEY = "yingji.dept.lang";
const POLL_MS = 15000; // the slow poll that keeps the list right when the live feed is down
const TICK_MS = 1000; // countdowns
const DELIVERY_CHANNEL = "department view";
const GEO_LAYERS = ["boundary", "rivers", "roads", "facilities", "airspace"];
const EMPTY = Object.freeze({ type: "FeatureCollection", features: [] });
// Chinese warning colours, blue < yellow < orange < red (MWR 2013 / CMA Order 16).
const LEVEL_COLOURS = { blue: "#1e6fd9", yellow: "#e6b800", orange: "#f57c00", red: "#d32f2f" };
const OPEN_STATUSES = new Set(["sent", "delivered", "acknowledged", "in_progress"]);
const WAITING = new Set(["sent", "delivered"]); // the acknowledge deadline runs
// The transitions the task lifecycle allows (command/linkage/lifecycle.py): a button is offered only
// where the server would accept it; the server still decides, and its refusal is shown.
const ACTIONS = {
  ack: { from: new Set(["sent", "delivered"]) },
  start: { from: new Set(["acknowledged"]) },
  done: { from: new Set(["in_progress"]), field: "report", required: true },
  decline: { from: new Set(["sent", "delivered", "acknowledged", "in_progress"]), field: "reason", required: true },
};
// One colour per kind of need drawn on the map (kept clear of the warning colours).
const NEED_COLOURS = {
  hazard: "#7b1fa2", roads: "#5d4037", bridges: "#6d4c41", hospitals: "#00897b", vulnerable: "#8e24aa",
  staging: "#0277bd", rescue: "#c2185b", environment: "#558b2f", evacuation: "#00838f", villages: "#795548",
  command_post: "#283593",
};
// Needs made of facility rows (id, name, name_zh, lon, lat, distance_m, in_hazard).
const FACILITY_NEEDS = ["hospitals", "vulnerable", "staging", "environment", "villages", "bridges"];

const DICT = {
  "zh-CN": {
    appTitle: "应急联动 · 部门", userId: "用户名", password: "密码", signIn: "登录", signOut: "退出",
    signingIn: "登录中…", langToggle: "English", badCredentials: "用户名或密码错误",
    fillBoth: "请输入用户名和密码", signInFailed: "登录失败：{detail}", sessionExpired: "登录已过期，请重新登录",
    notDepartment: "该账号不属于任何联动部门，无法使用部门页面",
    tasks: "任务", closedTasks: "已结束", noTasks: "暂无任务", live: "实时", polling: "轮询", connecting: "连接中",
    "status.sent": "已发送", "status.delivered": "已送达", "status.acknowledged": "已确认",
    "status.in_progress": "处置中", "status.done": "已完成", "status.declined": "已拒绝", "status.cancelled": "已取消",
    "level.blue": "蓝色", "level.yellow": "黄色", "level.orange": "橙色", "level.red": "红色",
    ackDueIn: "{t} 内确认", ackOverdue: "确认已超时 {t}", doneDueIn: "{t} 内完成", doneOverdue: "完成已超时 {t}",
    incident: "事件", status: "状态", ackDue: "确认时限", completeDue: "完成时限", acknowledgedBy: "确认人",
    report: "处置报告", declineReason: "拒绝原因", needs: "所需信息", history: "处理记录", opened: "发生时间",
    ack: "确认接收", start: "开始处置", done: "完成", decline: "拒绝",
    startNote: "说明（可选）", doneReport: "处置报告（必填）", declineReasonField: "拒绝原因（必填）",
    reportRequired: "请填写处置报告", reasonRequired: "请填写拒绝原因", refused: "操作被拒绝：{detail}",
    requestFailed: "请求失败：{detail}",
    "need.hazard": "危险区", "need.roads": "道路", "need.bridges": "桥梁", "need.hospitals": "医院",
    "need.vulnerable": "学校和养老机构", "need.staging": "集结点", "need.rescue": "救援力量",
    "need.environment": "化工企业和水源地", "need.evacuation": "转移安置", "need.townships": "镇街",
    "need.villages": "村（社区）", "need.command_post": "前方指挥部",
    area: "面积 {km2} 平方千米", assumedRadius: "（未绘制危险区，按半径 {r} 米估计）", inHazard: "在危险区内",
    distance: "{m} 米", lengthInside: "区内 {m} 米", team: "救援队伍：{name}", stations: "消防站", access: "进入道路",
    places: "危险区内居民点", shelters: "避难场所", population: "估计人口 {n} 人", none: "无",
    incidentOnMap: "事件位置",
  },
  en: {
    appTitle: "Linkage · Department", userId: "User id", password: "Password", signIn: "Sign in", signOut: "Sign out",
    signingIn: "Signing in…", langToggle: "中文", badCredentials: "Wrong user id or password",
    fillBoth: "Enter your user id and password", signInFailed: "Sign-in failed: {detail}",
    sessionExpired: "Your session has expired: sign in again",
    notDepartment: "This account belongs to no linked department: the department view is not for it",
    tasks: "Tasks", closedTasks: "Closed", noTasks: "No tasks", live: "Live", polling: "Polling", connecting: "Connecting",
    "status.sent": "Sent", "status.delivered": "Delivered", "status.acknowledged": "Acknowledged",
    "status.in_progress": "In progress", "status.done": "Done", "status.declined": "Declined",
    "status.cancelled": "Cancelled",
    "level.blue": "Blue", "level.yellow": "Yellow", "level.orange": "Orange", "level.red": "Red",
    ackDueIn: "acknowledge within {t}", ackOverdue: "acknowledgement overdue by {t}", doneDueIn: "due in {t}",
    doneOverdue: "overdue by {t}",
    incident: "Incident", status: "Status", ackDue: "Acknowledge by", completeDue: "Complete by",
    acknowledgedBy: "Acknowledged by", report: "Report", declineReason: "Reason declined", needs: "What you need",
    history: "History", opened: "Opened",
    ack: "Acknowledge", start: "Start", done: "Done", decline: "Decline",
    startNote: "Note (optional)", doneReport: "Report (required)", declineReasonField: "Reason (required)",
    reportRequired: "Write a report of what was done", reasonRequired: "Give the reason for declining",
    refused: "Refused: {detail}", requestFailed: "Request failed: {detail}",
    "need.hazard": "Hazard area", "need.roads": "Roads", "need.bridges": "Bridges", "need.hospitals": "Hospitals",
    "need.vulnerable": "Schools and nursing homes", "need.staging": "Staging points", "need.rescue": "Rescue",
    "need.environment": "Chemical sites and water intakes", "need.evacuation": "Evacuation",
    "need.townships": "Townships", "need.villages": "Villages", "need.command_post": "Forward command post",
    area: "area {km2} km²", assumedRadius: " (no hazard area drawn: a {r} m radius assumed)", inHazard: "in the hazard",
    distance: "{m} m", lengthInside: "{m} m inside", team: "Team: {name}", stations: "Fire stations",
    access: "Access roads", places: "Places in the hazard", shelters: "Shelters", population: "about {n} people",
    none: "none", incidentOnMap: "Incident",
  },
};

/** Page state, exposed as window.yingjiDept for tests and for the curious. */
const state = {
  lang: "zh-CN",
  user: null,
  department: null, // the signed-in member's department ({id, name, name_zh}), from GET /api/departments
  tasks: new Map(), // id -> task view
  incidents: new Map(), // id -> incident public view
  selected: null, // task id
  map: null,
  mapLoaded: false,
  geographyLoaded: false,
  connection: "connecting", // live | polling | connecting
  counters: { events: 0, polls: 0, liveTaskUpdates: 0 },
  errors: new Map(), // task id -> {action, text}
  drafts: new Map(), // `${task id}:${field}` -> text typed and not yet sent
  busy: new Set(), // task ids with an action in flight
  delivered: new Set(), // task ids whose delivery this page has confirmed
  liveSeen: new Set(), // task ids the live feed has told of
  timers: [],
};

const session = new Session(STORAGE_KEY);
let t = translator(DICT, state.lang);

window.yingjiDept = {
  get mapLoaded() { return state.mapLoaded; },
  get geographyLoaded() { return state.geographyLoaded; },
  get map() { return state.map; },
  get connection() { return state.connection; },
  get counters() { return { ...state.counters }; },
  get user() { return state.user; },
  lang: () => state.lang,
  setLang: (lang) => switchLang(lang),
  tasks: () => [...state.tasks.values()],
  incidents: () => [...state.incidents.values()],
  liveSeen: () => [...state.liveSeen],
  selected: () => state.selected,
  select: (id) => selectTask(Number(id)),
  refresh: () => refresh(),
  sourceData: (name) => state.map?.getSource(name)?.getData(),
};

// ---------------------------------------------------------------- small helpers

/** An element with attributes and children (strings become text, never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style") el.style.cssText = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** The name of a row in the page's language: name_zh in Chinese (falling back to name), name in English. */
function named(row, key = "name") {
  if (!row) return "";
  return state.lang === "en" ? row[key] ?? row[`${key}_zh`] ?? "" : row[`${key}_zh`] || row[key] || "";
}

function taskText(task) {
  return state.lang === "en" ? task.text || task.text_zh : task.text_zh || task.text;
}

function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try { window.localStorage.setItem(key, value); } catch { /* storage unavailable: the choice lasts this visit */ }
}

/** A readable reason from the server's error detail (FastAPI's 422 detail is a list of {loc, msg}). */
function readableDetail(err) {
  const text = err?.message ?? String(err);
  try {
    const items = JSON.parse(text);
    if (Array.isArray(items)) {
      return items.map((i) => `${(i.loc || []).filter((p) => p !== "body").join(".")}: ${i.msg}`).join("; ");
    }
  } catch { /* not JSON: the detail is already a sentence */ }
  return text;
}

/** "1:05:09" / "8:32" for a number of seconds. */
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** The deadline that runs now: acknowledge while waiting, complete while working; none once closed. */
function runningDeadline(task) {
  if (WAITING.has(task.status)) return { kind: "ack", at: task.ack_due_at };
  if (OPEN_STATUSES.has(task.status)) return { kind: "done", at: task.complete_due_at };
  return null;
}

function dueText(task, now = Date.now()) {
  const d = runningDeadline(task);
  if (!d || !d.at) return { text: "", overdue: false };
  const left = (Date.parse(d.at) - now) / 1000;
  const overdue = left < 0;
  const key = d.kind === "ack" ? (overdue ? "ackOverdue" : "ackDueIn") : (overdue ? "doneOverdue" : "doneDueIn");
  return { text: t(key, { t: duration(Math.abs(left)) }), overdue };
}

/** Open tasks first, the nearest running deadline first; closed ones newest first. */
function sortTasks(tasks) {
  const open = tasks.filter((x) => OPEN_STATUSES.has(x.status));
  const closed = tasks.filter((x) => !OPEN_STATUSES.has(x.status));
  const due = (x) => Date.parse(runningDeadline(x)?.at ?? "") || Number.MAX_SAFE_INTEGER;
  open.sort((a, b) => due(a) - due(b) || a.id - b.id);
  closed.sort((a, b) => (Date.parse(b.updated_at) || 0) - (Date.parse(a.updated_at) || 0) || b.id - a.id);
  return { open, closed };
}

// ---------------------------------------------------------------- sign-in

function showSignIn(notice = null) {
  document.getElementById("app").hidden = true;
  document.getElementById("signin").hidden = false;
  const n = document.getElementById("signin-notice");
  n.textContent = notice ?? "";
  n.hidden = !notice;
  document.getElementById("signin-error").hidden = true;
  document.getElementById("signin-password").value = "";
  document.getElementById("signin-user").focus();
}

function signInError(text) {
  const el = document.getElementById("signin-error");
  el.textContent = text;
  el.hidden = false;
}

async function onSignIn(ev) {
  ev.preventDefault();
  const user = document.getElementById("signin-user").value.trim();
  const password = document.getElementById("signin-password").value;
  if (!user || !password) { signInError(t("fillBoth")); return; }
  const button = document.getElementById("signin-submit");
  button.disabled = true;
  button.textContent = t("signingIn");
  try {
    await session.signIn(user, password);
  } catch (err) {
    signInError(err instanceof ApiError && err.status === 401 ? t("badCredentials")
      : t("signInFailed", { detail: readableDetail(err) }));
    return;
  } finally {
    button.disabled = false;
    button.textContent = t("signIn");
  }
  await enter();
}

/** The token ran out or was refused: back to the sign-in form, saying why. */
function expire() {
  stop();
  session.signOut();
  showSignIn(t("sessionExpired"));
}

function signOut() {
  stop();
  session.signOut();
  showSignIn();
}

function stop() {
  for (const id of state.timers) window.clearInterval(id);
  state.timers = [];
  session.disconnect();
  state.tasks.clear();
  state.incidents.clear();
  state.delivered.clear();
  state.liveSeen.clear();
  state.errors.clear();
  state.drafts.clear();
  state.selected = null;
  state.user = null;
  state.department = null;
  updateMap();
}

/** Signed in: show the page, load the tasks, listen to the live feed and poll slowly. */
async function enter() {
  const user = session.user;
  if (!user?.department) {
    session.signOut();
    showSignIn();
    signInError(t("notDepartment"));
    return;
  }
  state.user = user;
  document.getElementById("signin").hidden = true;
  document.getElementById("app").hidden = false;
  renderStatic();
  if (!state.map) createMap();
  else {
    state.map.resize(); // it may have been made while the page was hidden
    if (state.mapLoaded) loadGeography(); // the layers are read again with this sign-in's token
  }
  setConnection("connecting");
  loadDepartment();
  await refresh();
  if (state.user !== user) return; // the token was refused meanwhile: back at the sign-in form
  session.connect(onEvent, onFeedState);
  state.timers.push(window.setInterval(() => refresh(), POLL_MS));
  state.timers.push(window.setInterval(tick, TICK_MS));
  state.timers.push(window.setInterval(() => { if (!session.signedIn) expire(); }, 5000));
}

// ---------------------------------------------------------------- data

/** A call to the API; a refused token (401) sends the person back to the sign-in form. */
async function api(path, options) {
  try {
    return await session.api(path, options);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && state.user) expire();
    throw err;
  }
}

function flash(text) {
  const el = document.getElementById("flash");
  el.textContent = text ?? "";
  el.hidden = !text;
}

/** Fetch the department's tasks and their incidents; confirm delivery of the ones shown for the first time. */
async function refresh() {
  if (!state.user) return;
  state.counters.polls += 1;
  let body;
  try {
    body = await api("/api/tasks");
  } catch (err) {
    if (state.user) flash(t("requestFailed", { detail: readableDetail(err) }));
    return;
  }
  flash(null);
  const seen = new Set();
  for (const task of body.tasks ?? []) {
    seen.add(task.id);
    upsertTask(task);
  }
  for (const id of [...state.tasks.keys()]) if (!seen.has(id)) state.tasks.delete(id);
  await loadIncidents();
  loadFlood();
  if (state.selected === null || !state.tasks.has(state.selected)) {
    state.selected = sortTasks([...state.tasks.values()]).open[0]?.id ?? null;
  }
  render();
  confirmDeliveries();
}

/** Keep the newer of two views of a task (a poll answered before an event must not undo it). */
function upsertTask(task) {
  const held = state.tasks.get(task.id);
  if (held && (Date.parse(held.updated_at) || 0) > (Date.parse(task.updated_at) || 0)) return false;
  state.tasks.set(task.id, task);
  return true;
}

/** The department's own name (both languages) for the header. */
async function loadDepartment() {
  try {
    const body = await api("/api/departments");
    state.department = (body.departments ?? []).find((d) => d.id === state.user?.department) ?? null;
    renderStatic();
  } catch { /* the header falls back to the tasks' department name */ }
}

async function loadIncidents() {
  const ids = new Set([...state.tasks.values()].map((x) => x.incident_id).filter((x) => x !== null));
  for (const id of [...state.incidents.keys()]) if (!ids.has(id)) state.incidents.delete(id);
  await Promise.all([...ids].map(async (id) => {
    try {
      state.incidents.set(id, await api(`/api/incidents/${id}`));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) flash(t("requestFailed", { detail: readableDetail(err) }));
    }
  }));
}

/** Tell the service this page has shown a task (sent -> delivered), once per task. */
function confirmDeliveries() {
  for (const task of state.tasks.values()) {
    if (task.status !== "sent" || state.delivered.has(task.id)) continue;
    state.delivered.add(task.id);
    api(`/api/tasks/${task.id}/delivered`, { method: "POST", body: { channel: DELIVERY_CHANNEL } })
      .then((res) => { if (res?.task && upsertTask(res.task)) render(); })
      .catch(() => state.delivered.delete(task.id)); // tried again on the next refresh
  }
}

function onFeedState(s) {
  if (s === "open") setConnection("live");
  else if (s === "refused") expire();
  else setConnection("polling");
}

/** One live event: a task of ours or one of our incidents changed. */
function onEvent(event) {
  state.counters.events += 1;
  const kind = event?.kind ?? "";
  const data = event?.data ?? {};
  if (kind === "bus.overflow") { refresh(); return; }
  if (kind.startsWith("task.") && data.id !== undefined && data.status && data.department) {
    if (data.department !== state.user?.department) return; // not ours (the server does not send them)
    state.counters.liveTaskUpdates += 1;
    state.liveSeen.add(data.id);
    const isNew = !state.tasks.has(data.id);
    if (!upsertTask(data)) return;
    if (isNew && !state.incidents.has(data.incident_id)) loadIncidents().then(render);
    if (isNew) loadFlood(); // a new incident may be a flood with an extent
    if (state.selected === null) state.selected = data.id;
    render();
    confirmDeliveries();
  } else if (kind.startsWith("task.")) {
    refresh(); // an event without the task view: fetch the list again
  } else if (kind.startsWith("incident.") && data.id !== undefined && state.incidents.has(data.id)) {
    state.incidents.set(data.id, { ...state.incidents.get(data.id), ...data });
    render();
  }
}

function setConnection(s) {
  state.connection = s;
  const el = document.getElementById("conn-status");
  el.dataset.state = s;
  el.textContent = t(s);
}

// ---------------------------------------------------------------- actions

/** Run one action on a task; the server's refusal is shown under the task's buttons. */
async function act(task, action) {
  const spec = ACTIONS[action];
  const field = spec.field ?? (action === "start" ? "note" : null);
  const text = field ? (state.drafts.get(`${task.id}:${field}`) ?? "").trim() : "";
  if (spec.required && !text) {
    state.errors.set(task.id, { action, text: t(action === "done" ? "reportRequired" : "reasonRequired") });
    renderDetail();
    return;
  }
  const by = state.user.id;
  const body = { by, ...(field ? { [field]: text } : {}) };
  state.busy.add(task.id);
  state.errors.delete(task.id);
  renderDetail();
  try {
    const res = await api(`/api/tasks/${task.id}/${action}`, { method: "POST", body });
    if (res?.task) upsertTask(res.task);
    if (field) state.drafts.delete(`${task.id}:${field}`);
  } catch (err) {
    state.errors.set(task.id, { action, text: t("refused", { detail: readableDetail(err) }) });
  } finally {
    state.busy.delete(task.id);
    render();
  }
}

// ---------------------------------------------------------------- rendering

function renderStatic() {
  document.documentElement.lang = state.lang;
  document.title = t("appTitle");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-lang-toggle]")) el.textContent = t("langToggle");
  const u = state.user;
  if (u) {
    const first = [...state.tasks.values()][0];
    const deptName = named(state.department) || (first ? named(first, "department_name") : "");
    document.getElementById("dept-name").textContent = deptName || u.department;
    document.getElementById("dept-name").dataset.department = u.department;
    document.getElementById("user-name").textContent = named(u) || u.id;
  }
  setConnection(state.connection);
}

function switchLang(lang) {
  state.lang = lang === "en" ? "en" : "zh-CN";
  storageSet(LANG_KEY, state.lang);
  t = translator(DICT, state.lang);
  renderStatic();
  render();
}

function render() {
  renderStatic();
  renderList();
  renderDetail();
  updateMap();
}

function taskItem(task) {
  const inc = state.incidents.get(task.incident_id);
  const due = dueText(task);
  const colour = LEVEL_COLOURS[inc?.level] ?? "#9e9e9e";
  return h("li", {
    class: `task${task.id === state.selected ? " selected" : ""}`, "data-id": task.id, "data-status": task.status,
    style: `border-left-color:${colour}`, onclick: () => selectTask(task.id),
  },
  h("div", { class: "task-meta" },
    h("span", { class: "status-badge", "data-status": task.status }, t(`status.${task.status}`)),
    inc ? h("span", { class: "incident-title" }, named(inc, "title")) : null,
    h("span", { class: `due${due.overdue ? " overdue" : ""}`, "data-overdue": due.overdue ? "true" : null }, due.text)),
  h("div", { class: "task-text" }, taskText(task)));
}

function renderList() {
  const { open, closed } = sortTasks([...state.tasks.values()]);
  document.getElementById("task-list").replaceChildren(...open.map(taskItem));
  document.getElementById("closed-list").replaceChildren(...closed.map(taskItem));
  document.getElementById("open-count").textContent = String(open.length);
  document.getElementById("closed-count").textContent = String(closed.length);
  document.getElementById("no-tasks").hidden = open.length + closed.length > 0;
  document.getElementById("closed-tasks").hidden = closed.length === 0;
}

/** Refresh only the countdowns (once a second); a full render would reset typed text. */
function tick() {
  for (const el of document.querySelectorAll(".task[data-id]")) {
    const task = state.tasks.get(Number(el.dataset.id));
    const dueEl = el.querySelector(".due");
    if (!task || !dueEl) continue;
    const due = dueText(task);
    dueEl.textContent = due.text;
    dueEl.classList.toggle("overdue", due.overdue);
    if (due.overdue) dueEl.dataset.overdue = "true"; else delete dueEl.dataset.overdue;
  }
}

function selectTask(id) {
  if (!state.tasks.has(id)) return;
  state.selected = id;
  renderList();
  renderDetail();
  updateMap({ fit: true });
  // Read the whole task when it is opened (the list's view may be older than the server's).
  api(`/api/tasks/${id}`).then((task) => { if (upsertTask(task)) render(); }).catch(() => {});
}

function fact(label, value) {
  return value === null || value === undefined || value === "" ? [] : [h("dt", {}, label), h("dd", {}, value)];
}

function facilityLine(row) {
  const bits = [named(row)];
  if (row.distance_m !== undefined && row.distance_m !== null) bits.push(t("distance", { m: row.distance_m }));
  const li = h("li", { "data-id": row.id ?? null }, bits.join(" · "));
  if (row.in_hazard) li.append(" · ", h("span", { class: "in-hazard" }, t("inHazard")));
  return li;
}

/** The rows of one need, as list items, in the page's language. */
function needItems(key, value) {
  if (value === null || value === undefined) return [h("li", {}, t("none"))];
  if (key === "hazard") {
    const km2 = ((value.area_m2 ?? 0) / 1e6).toFixed(2);
    return [h("li", {}, t("area", { km2 }) + (value.assumed ? t("assumedRadius", { r: value.radius_m }) : ""))];
  }
  if (key === "roads") {
    return value.length ? value.map((r) => h("li", { "data-id": r.id }, `${named(r)} · ${t("lengthInside", { m: r.length_inside_m })}`))
      : [h("li", {}, t("none"))];
  }
  if (FACILITY_NEEDS.includes(key)) return value.length ? value.map(facilityLine) : [h("li", {}, t("none"))];
  if (key === "townships") return [h("li", {}, value.map((x) => named(x)).join(state.lang === "en" ? ", " : "、") || t("none"))];
  if (key === "command_post") {
    return [facilityLine(value), h("li", { class: "muted" }, named(value, "note"))];
  }
  if (key === "rescue") {
    return [
      h("li", {}, t("team", { name: named(value, "team_name") })),
      h("li", { class: "sub" }, h("strong", {}, t("stations")), h("ul", {}, (value.stations ?? []).map(facilityLine))),
      h("li", { class: "sub" }, h("strong", {}, t("access")), h("ul", {}, (value.access ?? []).map((a) => h("li", {},
        `${named(a)} → ${a.road ? `${named(a, "road_name")} · ${t("distance", { m: a.distance_m })}` : named(a, "note")}`)))),
    ];
  }
  if (key === "evacuation") {
    return [
      h("li", {}, t("population", { n: value.population_estimate ?? value.places_population ?? 0 })),
      h("li", { class: "muted" }, named(value, "note")),
      h("li", { class: "sub" }, h("strong", {}, t("places")), h("ul", {}, (value.places ?? []).map(facilityLine))),
      h("li", { class: "sub" }, h("strong", {}, t("shelters")), h("ul", {}, (value.shelters ?? []).map(facilityLine))),
    ];
  }
  // A need this page does not know yet: its plain values, so nothing is hidden from the department.
  return [h("li", {}, typeof value === "object" ? JSON.stringify(value) : String(value))];
}

function actionBlock(task, action) {
  const spec = ACTIONS[action];
  if (!spec.from.has(task.status)) return null;
  const busy = state.busy.has(task.id);
  const field = spec.field ?? (action === "start" ? "note" : null);
  const block = h("div", { class: "action", "data-action": action });
  if (field) {
    const label = { note: "startNote", report: "doneReport", reason: "declineReasonField" }[field];
    const area = h("textarea", { id: `${action}-${field}`, placeholder: t(label), "aria-label": t(label) });
    area.value = state.drafts.get(`${task.id}:${field}`) ?? "";
    area.addEventListener("input", () => state.drafts.set(`${task.id}:${field}`, area.value));
    block.append(area);
  }
  block.append(h("button", {
    type: "button", id: `btn-${action}`, class: action === "decline" ? "decline" : null, disabled: busy,
    onclick: () => act(task, action),
  }, t(action)));
  return block;
}

function renderDetail() {
  const panel = document.getElementById("task-detail");
  const task = state.tasks.get(state.selected);
  if (!task) { panel.hidden = true; panel.replaceChildren(); return; }
  // Keep the caret where it was when a re-render replaces a textarea being typed in.
  const focused = document.activeElement?.tagName === "TEXTAREA" ? document.activeElement.id : null;
  const inc = state.incidents.get(task.incident_id);
  const level = inc?.level;
  const error = state.errors.get(task.id);
  const needs = task.needs ?? {};
  panel.hidden = false;
  panel.dataset.id = task.id;
  const children = [
    h("h3", {}, taskText(task)),
    h("dl", { class: "facts" },
      fact(t("status"), h("span", { class: "status-badge", "data-status": task.status }, t(`status.${task.status}`))),
      fact(t("incident"), inc ? h("span", {},
        h("span", { class: "level-badge", style: `background:${LEVEL_COLOURS[level] ?? "#777"}` },
          t(`level.${level}`)), " ", named(inc, "title")) : `#${task.incident_id}`),
      fact(t("opened"), inc ? localTime(inc.opened_at, state.lang) : null),
      fact(t("ackDue"), WAITING.has(task.status) ? localTime(task.ack_due_at, state.lang) : null),
      fact(t("completeDue"), OPEN_STATUSES.has(task.status) ? localTime(task.complete_due_at, state.lang) : null),
      fact(t("acknowledgedBy"), task.acknowledged_by
        ? `${task.acknowledged_by} · ${localTime(task.acknowledged_at, state.lang)}` : null),
      fact(t("report"), task.report),
      fact(t("declineReason"), task.decline_reason)),
    h("div", { class: "actions" }, ["ack", "start", "done", "decline"].map((a) => actionBlock(task, a))),
    error ? h("p", { class: "error action-error", role: "alert", "data-action": error.action }, error.text) : null,
    Object.keys(needs).length ? h("h4", {}, t("needs")) : null,
    h("div", { class: "needs" }, Object.entries(needs).map(([key, value]) => h("section", { "data-need": key },
      h("strong", { style: `color:${NEED_COLOURS[key] ?? "inherit"}` }, t(`need.${key}`)),
      h("ul", {}, needItems(key, value))))),
    h("h4", {}, t("history")),
    h("ol", { class: "history" }, (task.history ?? []).map((e) => h("li", {},
      [localTime(e.at, state.lang), e.to ? t(`status.${e.to}`) : e.action, e.by, e.note].filter(Boolean).join(" · ")))),
  ];
  panel.replaceChildren(...children.filter(Boolean));
  if (focused) {
    const el = document.getElementById(focused);
    if (el) { el.focus(); el.setSelectionRange(el.value.length, el.value.length); }
  }
}

// ---------------------------------------------------------------- map

function buildStyle(district) {
  const sources = {};
  for (const name of [...GEO_LAYERS, "flood", "need-areas", "need-lines", "need-points", "incidents"]) {
    sources[name] = { type: "geojson", data: EMPTY };
  }
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1ea" } }];
  if (district?.tile_url) {
    sources.basemap = { type: "raster", tiles: [district.tile_url], tileSize: 256 };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  const isPolygon = ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]];
  const isLine = ["in", ["geometry-type"], ["literal", ["LineString", "MultiLineString"]]];
  layers.push(
    { id: "boundary-fill", type: "fill", source: "boundary", paint: { "fill-color": "#fbfbf6", "fill-opacity": 0.9 } },
    { id: "water", type: "fill", source: "rivers", filter: isPolygon, paint: { "fill-color": "#a9d3f0" } },
    {
      id: "rivers", type: "line", source: "rivers", filter: isLine,
      paint: { "line-color": "#7bb8e6", "line-width": ["interpolate", ["linear"], ["zoom"], 9, 1.5, 14, 5] },
    },
    {
      id: "flood", type: "fill", source: "flood",
      paint: { "fill-color": "#1e88e5", "fill-opacity": 0.35, "fill-outline-color": "#0d47a1" },
    },
    {
      id: "roads", type: "line", source: "roads", layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": ["match", ["get", "class"], "expressway", "#f6c26b", "#bdb4a3"],
        "line-width": ["interpolate", ["linear"], ["zoom"], 9, 1.5, 14, 5],
      },
    },
    {
      id: "airspace", type: "line", source: "airspace",
      paint: { "line-color": "#7e57c2", "line-width": 1, "line-dasharray": [3, 2], "line-opacity": 0.6 },
    },
    { id: "boundary-line", type: "line", source: "boundary", paint: { "line-color": "#5d6b5f", "line-width": 2, "line-dasharray": [4, 2, 1, 2] } },
    {
      id: "facilities", type: "circle", source: "facilities",
      paint: {
        "circle-color": ["match", ["get", "kind"], "hospital", "#e53935", "fire_station", "#c62828", "town", "#6d6d6d",
          "#9e9e9e"],
        "circle-radius": 3, "circle-opacity": 0.6,
      },
    },
    {
      id: "need-areas", type: "fill", source: "need-areas",
      paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.15, "fill-outline-color": ["get", "colour"] },
    },
    { id: "need-areas-line", type: "line", source: "need-areas", paint: { "line-color": ["get", "colour"], "line-width": 2, "line-dasharray": [2, 1] } },
    {
      id: "need-lines", type: "line", source: "need-lines", layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": ["get", "colour"], "line-width": 5, "line-opacity": 0.85 },
    },
    {
      id: "need-points", type: "circle", source: "need-points",
      paint: {
        "circle-color": ["get", "colour"], "circle-radius": 7,
        "circle-stroke-color": ["case", ["get", "in_hazard"], "#d32f2f", "#ffffff"], "circle-stroke-width": 2,
      },
    },
    {
      id: "incidents-halo", type: "circle", source: "incidents",
      paint: { "circle-color": ["get", "colour"], "circle-radius": 20, "circle-opacity": 0.25 },
    },
    {
      id: "incidents", type: "circle", source: "incidents",
      paint: { "circle-color": ["get", "colour"], "circle-radius": 9, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2.5 },
    },
  );
  return { version: 8, sources, layers };
}

function setSource(name, data) {
  state.map?.getSource(name)?.setData(data ?? EMPTY);
}

function feature(geometry, properties) {
  return { type: "Feature", geometry, properties };
}

/** The selected task's needs as map features: areas, lines and points where the rows carry coordinates. */
function needFeatures(task) {
  const areas = [];
  const lines = [];
  const points = [];
  const point = (key, row, lonlat = [row.lon, row.lat]) => {
    if (!Number.isFinite(lonlat[0]) || !Number.isFinite(lonlat[1])) return;
    points.push(feature({ type: "Point", coordinates: lonlat }, {
      need: key, colour: NEED_COLOURS[key] ?? "#333", id: row.id ?? row.station ?? "", name: row.name ?? "",
      name_zh: row.name_zh ?? "", in_hazard: Boolean(row.in_hazard),
    }));
  };
  for (const [key, value] of Object.entries(task?.needs ?? {})) {
    if (!value) continue;
    const colour = NEED_COLOURS[key] ?? "#333";
    if (key === "hazard" && value.geometry) areas.push(feature(value.geometry, { need: key, colour }));
    else if (key === "roads") {
      for (const r of value) if (r.geometry) lines.push(feature(r.geometry, { need: key, colour, id: r.id, name: r.name, name_zh: r.name_zh ?? "" }));
    } else if (FACILITY_NEEDS.includes(key)) for (const row of value) point(key, row);
    else if (key === "command_post") point(key, value);
    else if (key === "rescue") {
      for (const s of value.stations ?? []) point(key, s);
      for (const a of value.access ?? []) if (Array.isArray(a.entry)) point(key, a, a.entry);
    } else if (key === "evacuation") {
      for (const row of [...(value.places ?? []), ...(value.shelters ?? [])]) point(key, row);
    }
  }
  const fc = (features) => ({ type: "FeatureCollection", features });
  return { areas: fc(areas), lines: fc(lines), points: fc(points) };
}

function incidentFeatures() {
  const features = [];
  for (const inc of state.incidents.values()) {
    if (!Number.isFinite(inc.lon) || !Number.isFinite(inc.lat)) continue;
    features.push(feature({ type: "Point", coordinates: [inc.lon, inc.lat] }, {
      id: inc.id, level: inc.level ?? "", colour: LEVEL_COLOURS[inc.level] ?? "#777", title: inc.title ?? "",
      title_zh: inc.title_zh ?? "", selected: state.tasks.get(state.selected)?.incident_id === inc.id,
    }));
  }
  return { type: "FeatureCollection", features };
}

function updateMap({ fit = false } = {}) {
  if (!state.mapLoaded) return;
  const task = state.tasks.get(state.selected);
  const needs = needFeatures(task);
  setSource("incidents", incidentFeatures());
  setSource("need-areas", needs.areas);
  setSource("need-lines", needs.lines);
  setSource("need-points", needs.points);
  if (fit && task) fitTo(task, needs);
}

/** Zoom to the incident and what the task needs, so both are on screen. */
function fitTo(task, needs) {
  const bounds = new maplibregl.LngLatBounds();
  const inc = state.incidents.get(task.incident_id);
  if (inc && Number.isFinite(inc.lon)) bounds.extend([inc.lon, inc.lat]);
  const walk = (c) => { if (typeof c[0] === "number") bounds.extend(c); else c.forEach(walk); };
  for (const fc of [needs.areas, needs.lines, needs.points]) for (const f of fc.features) walk(f.geometry.coordinates);
  if (bounds.isEmpty()) return;
  state.map.fitBounds(bounds, { padding: 50, maxZoom: 14, duration: 0 });
}

async function loadGeography() {
  const results = await Promise.allSettled([
    ...GEO_LAYERS.map(async (name) => setSource(name, await api(`/api/layers/${name}`))),
    api("/api/flood").then((data) => setSource("flood", data ?? EMPTY)),
  ]);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length) flash(t("requestFailed", { detail: readableDetail(failed[0].reason) }));
  state.geographyLoaded = failed.length === 0;
}

/** The open floods' extents (public map data); kept as they were when the request fails. */
function loadFlood() {
  if (!state.mapLoaded || !state.user) return Promise.resolve();
  return api("/api/flood").then((d) => setSource("flood", d)).catch(() => {});
}

function popupFor(props) {
  const title = named(props, props.title !== undefined ? "title" : "name");
  const label = props.need ? t(`need.${props.need}`) : t("incidentOnMap");
  return h("div", { class: "popup" }, h("strong", {}, label), h("div", {}, title));
}

async function createMap() {
  let district = null;
  try {
    district = await api("/api/district");
  } catch (err) {
    flash(t("requestFailed", { detail: readableDetail(err) }));
  }
  const bbox = Array.isArray(district?.bbox) && district.bbox.length === 4 ? district.bbox : null;
  const options = {
    container: "map", style: buildStyle(district), attributionControl: { compact: true },
    dragRotate: false, pitchWithRotate: false, touchPitch: false, maxPitch: 0,
  };
  if (bbox) {
    options.bounds = [[bbox[0], bbox[1]], [bbox[2], bbox[3]]];
    options.fitBoundsOptions = { padding: 16 };
  } else {
    options.center = district?.center ?? [0, 0];
    options.zoom = 10;
  }
  const map = new maplibregl.Map(options);
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  state.map = map;
  map.on("load", async () => {
    state.mapLoaded = true;
    updateMap({ fit: true });
    if (state.user) await loadGeography();
  });
  map.on("click", (ev) => {
    const hit = map.queryRenderedFeatures(ev.point, { layers: ["incidents", "need-points", "need-lines"] })[0];
    if (!hit) return;
    new maplibregl.Popup({ maxWidth: "280px" }).setLngLat(ev.lngLat).setDOMContent(popupFor(hit.properties)).addTo(map);
  });
}

// ---------------------------------------------------------------- start

function main() {
  const saved = storageGet(LANG_KEY);
  state.lang = saved === "en" ? "en" : "zh-CN"; // Chinese unless English was chosen
  t = translator(DICT, state.lang);
  for (const el of document.querySelectorAll("[data-lang-toggle]")) {
    el.addEventListener("click", () => switchLang(state.lang === "en" ? "zh-CN" : "en"));
  }
  document.getElementById("signin-form").addEventListener("submit", onSignIn);
  document.getElementById("signout").addEventListener("click", signOut);
  renderStatic();
  if (session.signedIn) enter();
  else if (session.token) { session.signOut(); showSignIn(t("sessionExpired")); }
  else showSignIn();
}

main();
