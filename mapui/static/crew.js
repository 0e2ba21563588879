// Yingji field-crew app: a phone page (installable, works offline) for the members of one crew.
//
// A crew member signs in, sees the crew's tasks (newest open first) with a map and the straight-line
// bearing and distance to each task's target, accepts or declines them, reports arriving on site
// and finishing (a report and an optional photo), checks in on a timer ("I am safe"), can send an
// SOS, and shares the phone's position while on duty.
//
// Every change goes through the *outbox*, an IndexedDB store that survives reloads: the change is
// written there first (with an op_id made here), shown at once, and sent in order when the link
// allows (on start, on the browser's `online` event, every 20 s, and right after a change). The
// server answers a repeated op_id with the same result and changes nothing, so a change whose answer
// was lost is simply sent again: no duplicates, nothing lost. A change that is no longer possible
// (409, e.g. the dispatcher cancelled the task) is dropped from the outbox and shown to the crew; a
// 401 keeps the outbox and asks the crew member to sign in again. The phone's position is not queued
// change by change: only the latest one is kept and sent (at most every 15 s).
//
// Plain ES module, no build step; every asset is served by the command service (no internet), and
// the service worker (/crew-sw.js) keeps the app shell for offline use.

import { ApiError, Session, localTime, translator } from "./session.js";

const TOKEN_KEY = "yingji.crew.token";
const LANG_KEY = "yingji.crew.lang";
const DUTY_KEY = "yingji.crew.duty";
const DB_NAME = "yingji-crew";
const DB_VERSION = 1;
const SYNC_EVERY_MS = 20_000; // outbox retry period
const POLL_EVERY_MS = 30_000; // GET /api/tasks while online (the live feed may drop)
const POSITION_MIN_MS = 15_000; // at most one position report per 15 s
const PHOTO_MAX_BYTES = 5 * 1024 * 1024; // the server's limit (POST /api/photos)
const PHOTO_MAX_SIDE_PX = 2560; // a photo re-encoded to fit is scaled down to this
const PHOTO_TYPES = new Set(["image/jpeg", "image/png"]);
const OPEN_STATUSES = new Set(["sent", "delivered", "acknowledged", "in_progress"]);
const OP_STATUS = { ack: "acknowledged", start: "in_progress", done: "done", decline: "declined" };
const GEO_LAYERS = ["boundary", "rivers", "roads", "facilities"];
const EMPTY = Object.freeze({ type: "FeatureCollection", features: [] });
// Chinese warning colours, blue < yellow < orange < red (as in the console).
const LEVEL_COLOURS = { blue: "#1e6fd9", yellow: "#e6b800", orange: "#f57c00", red: "#d32f2f" };
const LEVEL_NAMES = ["none", "blue", "yellow", "orange", "red"]; // the service's numbers 0..4 (command.risk.rules.Level)
const EARTH_RADIUS_M = 6_371_008.8; // mean Earth radius (IUGG), for the haversine distance

const TEXT = {
  "zh-CN": {
    title: "现场队伍", signIn: "登录", userId: "用户名", password: "密码", signInButton: "登录",
    signOut: "退出登录", online: "在线", offline: "离线", queued: "待发送", tasks: "任务", noTasks: "暂无任务",
    checkinDue: "报平安倒计时", imSafe: "报平安", onDuty: "在岗（共享位置）", cancel: "取消",
    sosConfirm: "确认发送 SOS 求救？调度台将立即收到。", sosNote: "说明（可选）", sosSend: "确认求救",
    sosQueued: "SOS 尚未发出（无网络），已排队，联网后自动发送", sosSent: "SOS 已发出 {time}，调度台已收到",
    checkinNone: "无任务时无需报平安", checkinOverdue: "已超时 {time}", checkinQueued: "已报平安（待发送）",
    checkinMissed: "未按时报平安，调度台已收到提醒",
    hazard: "⚠ 您已进入危险区域：{title}（{level}）。注意安全，必要时撤离。", hazardLeft: "已离开危险区域",
    accept: "接受", decline: "拒绝", onSite: "已到现场", done: "完成", submit: "提交", photo: "现场照片",
    reason: "拒绝原因", note: "备注（可选）", report: "完成情况（必填）", reportRequired: "请填写完成情况",
    reasonRequired: "请填写拒绝原因", photoTooBig: "照片无法使用：{reason}",
    photoUnreadable: "无法读取该图片", photoReady: "照片 {size}",
    status_sent: "新任务", status_delivered: "新任务", status_acknowledged: "已接受",
    status_in_progress: "在现场", status_done: "已完成", status_declined: "已拒绝", status_cancelled: "已取消",
    queuedBadge: "待发送", created: "下达", directions: "直线距离 {dist} · 方位 {dir}（{deg}°）· 非道路导航",
    noTarget: "此任务无目标位置", noFix: "尚无本机位置，显示队伍最后位置", noPosition: "尚无位置，无法计算距离",
    positionSent: "位置已共享 {time}", positionPending: "位置待发送", positionOff: "未共享位置",
    positionDenied: "无法获取位置：{reason}",
    dropped: "调度台已不接受此操作（{what}）：{detail}", dismiss: "知道了",
    authExpired: "登录已过期，请重新登录；{n} 项待发送已保留，登录后自动发送。",
    notCrew: "此账号不是现场队伍成员", signInFailed: "登录失败：{detail}",
    op_ack: "接受任务", op_start: "到达现场", op_done: "完成任务", op_decline: "拒绝任务",
    op_sos: "SOS", op_checkin: "报平安", lang: "English", deg: "°",
    level_blue: "蓝色", level_yellow: "黄色", level_orange: "橙色", level_red: "红色",
    dirs: "北,东北,东,东南,南,西南,西,西北",
  },
  en: {
    title: "Field crew", signIn: "Sign in", userId: "User id", password: "Password", signInButton: "Sign in",
    signOut: "Sign out", online: "Online", offline: "Offline", queued: "queued", tasks: "Tasks", noTasks: "No tasks",
    checkinDue: "Check-in due in", imSafe: "I am safe", onDuty: "On duty (share position)", cancel: "Cancel",
    sosConfirm: "Send an SOS? The dispatchers get it at once.", sosNote: "Note (optional)", sosSend: "Send SOS",
    sosQueued: "SOS NOT SENT YET (no network): queued, it goes out as soon as the link returns",
    sosSent: "SOS sent {time}; the dispatchers have it",
    checkinNone: "No check-in needed while not on a task", checkinOverdue: "Overdue by {time}",
    checkinQueued: "Checked in (queued)", checkinMissed: "Check-in missed: the dispatchers were alerted",
    hazard: "⚠ You are inside a hazard area: {title} ({level}). Take care; leave if needed.",
    hazardLeft: "Left the hazard area",
    accept: "Accept", decline: "Decline", onSite: "On site", done: "Done", submit: "Submit", photo: "Photo",
    reason: "Reason for declining", note: "Note (optional)", report: "Report (required)",
    reportRequired: "Write a report first", reasonRequired: "Give a reason for declining",
    photoTooBig: "Photo not usable: {reason}", photoUnreadable: "This image cannot be read",
    photoReady: "Photo {size}",
    status_sent: "New", status_delivered: "New", status_acknowledged: "Accepted", status_in_progress: "On site",
    status_done: "Done", status_declined: "Declined", status_cancelled: "Cancelled",
    queuedBadge: "queued", created: "Given", directions: "Straight-line {dist} · bearing {dir} ({deg}°) · not road directions",
    noTarget: "This task has no target position", noFix: "No phone position yet: using the crew's last position",
    noPosition: "No position yet: distance unknown",
    positionSent: "Position shared {time}", positionPending: "Position waiting to be sent",
    positionOff: "Position not shared", positionDenied: "No position: {reason}",
    dropped: "The dispatchers no longer accept this change ({what}): {detail}", dismiss: "OK",
    authExpired: "Your sign-in ran out: sign in again. {n} queued change(s) are kept and sent after signing in.",
    notCrew: "This account is not a field crew member", signInFailed: "Sign-in failed: {detail}",
    op_ack: "accept task", op_start: "on site", op_done: "task done", op_decline: "decline task",
    op_sos: "SOS", op_checkin: "check-in", lang: "中文", deg: "°",
    level_blue: "blue", level_yellow: "yellow", level_orange: "orange", level_red: "red",
    dirs: "N,NE,E,SE,S,SW,W,NW",
  },
};

const session = new Session(TOKEN_KEY);

/** App state; read through window.yingjiCrew by tests. */
const state = {
  ready: false, // the first render is done (sign-in form or the app)
  lang: "zh-CN",
  user: null, // {id, name, name_zh, roles, crew}
  crew: null, // this crew's view from GET /api/crews (with hazard, sos, checkin_due_at)
  tasks: new Map(), // id -> task view from the server
  outbox: [], // mirror of the IndexedDB outbox of this user, oldest first (blobs left out)
  problems: [], // {op_id, kind, task_id, detail}: changes the server refused (shown to the crew)
  online: navigator.onLine,
  authNeeded: false,
  selected: null, // task id shown on the map
  fix: null, // the phone's latest position {lon, lat, at, accuracy_m}
  pendingPosition: null, // latest position not yet sent
  positionSentAt: 0, // Date.now() of the last position sent
  positionError: null,
  syncing: null, // the running sync (a promise)
  syncAgain: false,
  map: null,
  mapLoaded: false,
  swActive: false,
  lastSync: null, // {at, sent, dropped, error}
  feedTaskEvents: 0, // task events taken from the live feed
};

const ui = {
  drafts: new Map(), // task id -> {form, note, reason, report, photo: Blob|null, photoError}
  renderPending: false,
  watchId: null,
  lastHazardKey: null,
};

let t = translator(TEXT, state.lang);

// ---------------------------------------------------------------- small helpers

/** Build a DOM element: h("li", {class: "x", dataset: {id: 1}}, "text", child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try { window.localStorage.setItem(key, value); } catch { /* private mode: keep working */ }
}

/** An op_id as the server wants it: 8–64 characters of [A-Za-z0-9_-] (a UUID fits). */
function newOpId() {
  if (window.crypto?.randomUUID) return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A network failure (no answer at all), as opposed to an answer saying no. */
function isNetworkError(err) {
  return !(err instanceof ApiError);
}

function pick(zh, en) {
  return state.lang === "en" ? (en || zh || "") : (zh || en || "");
}

/** A warning level as its colour name, from a colour name or the service's number (1 blue .. 4 red). */
function levelName(level) {
  if (typeof level === "number") return LEVEL_NAMES[level] || "red";
  return LEVEL_COLOURS[level] ? level : "red";
}

function fmtBytes(n) {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

// ---------------------------------------------------------------- geometry (pure)

/** Great-circle distance in metres between two lon/lat points (haversine formula). */
export function distanceM(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** Initial great-circle bearing from a to b, degrees clockwise from true north, 0–359. */
export function bearingDeg(a, b) {
  const rad = Math.PI / 180;
  const y = Math.sin((b.lon - a.lon) * rad) * Math.cos(b.lat * rad);
  const x = Math.cos(a.lat * rad) * Math.sin(b.lat * rad)
    - Math.sin(a.lat * rad) * Math.cos(b.lat * rad) * Math.cos((b.lon - a.lon) * rad);
  return (Math.round(Math.atan2(y, x) / rad) + 360) % 360;
}

function compassName(deg) {
  return t("dirs").split(",")[Math.round(deg / 45) % 8];
}

function fmtDistance(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(m >= 10_000 ? 0 : 1)} km` : `${Math.round(m)} m`;
}

function validLonLat(p) {
  return p && Number.isFinite(p.lon) && Number.isFinite(p.lat) && Math.abs(p.lon) <= 180 && Math.abs(p.lat) <= 90;
}

/** Where the crew is: the phone's own fix if there is one, else the crew's last reported position. */
function herePosition() {
  if (validLonLat(state.fix)) return { lon: state.fix.lon, lat: state.fix.lat, own: true };
  if (state.crew && validLonLat(state.crew)) return { lon: state.crew.lon, lat: state.crew.lat, own: false };
  return null;
}

// ---------------------------------------------------------------- IndexedDB

let dbPromise = null;

/** The app's database: "outbox" (queued changes, by seq) and "cache" (last tasks, crew, map layers). */
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains("outbox")) d.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
        if (!d.objectStoreNames.contains("cache")) d.createObjectStore("cache", { keyPath: "key" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error || new Error("IndexedDB could not be opened"));
    });
  }
  return dbPromise;
}

async function idb(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(store, mode);
    let result;
    const req = fn(tx.objectStore(store));
    if (req) req.onsuccess = () => { result = req.result; };
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error || new Error(`IndexedDB ${store}: transaction failed`));
    tx.onabort = () => reject(tx.error || new Error(`IndexedDB ${store}: transaction aborted`));
  });
}

const idbAll = (store) => idb(store, "readonly", (s) => s.getAll());
const idbGet = (store, key) => idb(store, "readonly", (s) => s.get(key));
const idbPut = (store, value) => idb(store, "readwrite", (s) => s.put(value));
const idbDelete = (store, key) => idb(store, "readwrite", (s) => s.delete(key));

async function cacheGet(key) {
  try { return (await idbGet("cache", key))?.value ?? null; } catch { return null; }
}

async function cachePut(key, value) {
  try { await idbPut("cache", { key, value }); } catch { /* a full disk only costs the offline copy */ }
}

// ---------------------------------------------------------------- outbox

/** This user's queued changes, oldest first. */
async function myEntries() {
  const all = await idbAll("outbox");
  return all.filter((e) => e.user === state.user?.id).sort((a, b) => a.seq - b.seq);
}

async function reloadOutbox() {
  const entries = await myEntries();
  state.outbox = entries.map(({ photo, ...rest }) => ({ ...rest, has_photo: Boolean(photo) || Boolean(rest.photo_id) }));
  render();
}

/** Queue one change (kind: ack|start|done|decline|sos|checkin) and try to send it at once. */
async function enqueue(kind, fields) {
  const entry = {
    op_id: newOpId(), kind, user: state.user.id, crew: state.user.crew, queued_at: new Date().toISOString(),
    ...fields,
  };
  await idbPut("outbox", entry);
  await reloadOutbox();
  syncOutbox();
  return entry.op_id;
}

/** Send one queued change; resolves with the server's answer, throws ApiError or a network error. */
async function sendEntry(entry) {
  const by = entry.user;
  const crew = encodeURIComponent(entry.crew);
  switch (entry.kind) {
    case "ack":
      return session.api(`/api/tasks/${entry.task_id}/ack`, { method: "POST", body: { by, op_id: entry.op_id } });
    case "start":
      return session.api(`/api/tasks/${entry.task_id}/start`,
        { method: "POST", body: { by, note: entry.note || "", op_id: entry.op_id } });
    case "decline":
      return session.api(`/api/tasks/${entry.task_id}/decline`,
        { method: "POST", body: { by, reason: entry.reason, op_id: entry.op_id } });
    case "done": {
      let photoId = entry.photo_id || null;
      if (!photoId && entry.photo) {
        const up = await session.api("/api/photos", {
          method: "POST", raw: entry.photo, headers: { "Content-Type": entry.photo.type || "image/jpeg" },
        });
        photoId = up.photo_id;
        // Keep the id, drop the blob: a replay of the done does not upload the photo again.
        await idbPut("outbox", { ...entry, photo: null, photo_id: photoId });
      }
      const body = { by, report: entry.report, op_id: entry.op_id };
      // photo_ids is what the service reads; photo_id kept for the documented single-photo form
      if (photoId) { body.photo_id = photoId; body.photo_ids = [photoId]; }
      return session.api(`/api/tasks/${entry.task_id}/done`, { method: "POST", body });
    }
    case "sos":
      return session.api(`/api/crews/${crew}/sos`, {
        method: "POST", body: { by, lon: entry.lon ?? null, lat: entry.lat ?? null, note: entry.note || "", op_id: entry.op_id },
      });
    case "checkin":
      return session.api(`/api/crews/${crew}/check-in`, { method: "POST", body: { by, op_id: entry.op_id } });
    default:
      throw new ApiError(400, `unknown queued change ${entry.kind}`);
  }
}

/** Take in what the server answered to a change. */
function applyAnswer(entry, answer) {
  if (answer?.task?.id != null) state.tasks.set(answer.task.id, answer.task);
  if (answer?.crew) mergeCrew(answer.crew);
  if (answer?.sos && state.crew) mergeCrew({ ...state.crew, sos: answer.sos });
}

/**
 * Send the queued changes in order. Stops at the first one that gets no answer (offline, server
 * down: tried again later) or a 401 (sign in again); drops one the server refuses for good (4xx)
 * and shows it. Runs once at a time; a call during a run makes the run go round again.
 */
function syncOutbox() {
  if (state.syncing) { state.syncAgain = true; return state.syncing; }
  state.syncing = (async () => {
    let sent = 0;
    let dropped = 0;
    let error = null;
    do {
      state.syncAgain = false;
      if (!state.user || state.authNeeded) break;
      const entries = await myEntries();
      for (const entry of entries) {
        try {
          const answer = await sendEntry(entry);
          await idbDelete("outbox", entry.seq);
          applyAnswer(entry, answer);
          sent += 1;
          setOnline(true);
        } catch (err) {
          if (isNetworkError(err)) { error = "network"; setOnline(false); break; }
          if (err.status === 401) { error = "auth"; needSignIn(); break; }
          if (err.status >= 500 || err.status === 408 || err.status === 429) { error = `http ${err.status}`; break; }
          // The server will never take this change (409 no longer possible, 404, 422): drop and say so.
          await idbDelete("outbox", entry.seq);
          state.problems.push({ op_id: entry.op_id, kind: entry.kind, task_id: entry.task_id ?? null,
            status: err.status, detail: err.message });
          dropped += 1;
        }
      }
      await reloadOutbox();
      if (error) break;
    } while (state.syncAgain);
    state.lastSync = { at: new Date().toISOString(), sent, dropped, error };
    if (sent || dropped) refresh();
  })().catch((err) => {
    state.lastSync = { at: new Date().toISOString(), sent: 0, dropped: 0, error: String(err?.message || err) };
  }).finally(() => {
    state.syncing = null;
    render();
  });
  return state.syncing;
}

// ---------------------------------------------------------------- tasks and crew

/** A task as the crew sees it: the server's view with the queued changes applied on top. */
function effectiveTask(task) {
  const pending = state.outbox.filter((e) => e.task_id === task.id && OP_STATUS[e.kind]);
  let status = task.status;
  let report = task.report;
  for (const e of pending) {
    status = OP_STATUS[e.kind];
    if (e.kind === "done") report = e.report;
  }
  return { ...task, status, report, server_status: task.status, queued: pending.length };
}

function taskList() {
  const rows = [...state.tasks.values()].map(effectiveTask);
  const open = (x) => (OPEN_STATUSES.has(x.status) ? 0 : 1);
  return rows.sort((a, b) => open(a) - open(b) || String(b.created_at).localeCompare(String(a.created_at))
    || b.id - a.id);
}

function mergeCrew(view) {
  if (!view) return;
  const before = state.crew?.hazard || null;
  state.crew = { ...(state.crew || {}), ...view };
  if ("hazard" in view) setHazard(view.hazard, before);
  cachePut(`crew:${state.user?.id}`, state.crew);
}

async function loadTasks() {
  const body = await session.api("/api/tasks");
  state.tasks = new Map((body.tasks || []).map((x) => [x.id, x]));
  cachePut(`tasks:${state.user.id}`, body.tasks || []);
}

async function loadCrew() {
  const body = await session.api("/api/crews");
  const mine = (body.crews || []).find((c) => c.id === state.user.crew) || (body.crews || [])[0] || null;
  if (mine) mergeCrew(mine);
}

/** Fetch tasks and crew; a failure keeps what is shown (offline) and marks the link. */
async function refresh() {
  if (!state.user || !session.signedIn) return;
  try {
    await Promise.all([loadTasks(), loadCrew()]);
    setOnline(true);
  } catch (err) {
    if (isNetworkError(err)) setOnline(false);
    else if (err.status === 401) needSignIn();
  }
  render();
}

// ---------------------------------------------------------------- safety: hazard, check-in, SOS

function setHazard(hazard, before) {
  const key = hazard ? `${hazard.incident_id}:${hazard.level}` : null;
  if (key && key !== ui.lastHazardKey) {
    try { navigator.vibrate?.([400, 150, 400, 150, 400]); } catch { /* no vibration motor */ }
  }
  if (!hazard && before) ui.hazardLeftAt = Date.now();
  ui.lastHazardKey = key;
  if (state.crew) state.crew.hazard = hazard || null;
}

function onEvent(event) {
  const kind = event.kind || "";
  const data = event.data || {};
  if (kind.startsWith("task.")) {
    state.feedTaskEvents += 1;
    const task = data.task && data.task.id != null ? data.task : data;
    if (task.id != null && (!task.crew || task.crew === state.user?.crew)) {
      state.tasks.set(task.id, { ...(state.tasks.get(task.id) || {}), ...task });
      cachePut(`tasks:${state.user.id}`, [...state.tasks.values()]);
    }
  } else if (kind.startsWith("crew.")) {
    // crew events carry the crew's view (id = the crew), plus the event's own fields
    const crewId = data.id ?? data.crew;
    if (crewId !== state.user?.crew) return;
    if (data.id != null) {
      const { left, by, due_at: dueAt, ...view } = data;
      mergeCrew(view);
    }
    if (kind === "crew.hazard_entered" && !("hazard" in data)) {
      mergeCrew({ hazard: { incident_id: data.incident_id, kind: data.kind, level: data.level, title: data.title,
        title_zh: data.title_zh } });
    } else if (kind === "crew.hazard_left" && !("hazard" in data)) {
      mergeCrew({ hazard: null });
    } else if (kind === "crew.checkin_missed") {
      mergeCrew({ checkin_missed: true });
      try { navigator.vibrate?.([200, 100, 200]); } catch { /* no vibration motor */ }
    } else if (kind === "crew.sos" && data.sos === undefined) {
      refresh();
    }
  }
  render();
}

function sendSos() {
  const here = herePosition();
  const note = $("sos-note").value.trim();
  $("sos-note").value = "";
  $("sos-confirm").hidden = true;
  try { navigator.vibrate?.(200); } catch { /* no vibration motor */ }
  return enqueue("sos", { lon: here?.lon ?? null, lat: here?.lat ?? null, note });
}

function checkIn() {
  return enqueue("checkin", {});
}

// ---------------------------------------------------------------- position

function positionLoopOn() {
  return storageGet(DUTY_KEY) !== "off";
}

function startWatching() {
  if (ui.watchId != null || !navigator.geolocation || !positionLoopOn()) return;
  ui.watchId = navigator.geolocation.watchPosition((pos) => {
    state.positionError = null;
    state.fix = { lon: pos.coords.longitude, lat: pos.coords.latitude, at: new Date(pos.timestamp).toISOString(),
      accuracy_m: pos.coords.accuracy };
    state.pendingPosition = state.fix;
    cachePut(`position:${state.user?.id}`, state.fix);
    sendPosition();
    render();
  }, (err) => {
    state.positionError = err.message || `code ${err.code}`;
    render();
  }, { enableHighAccuracy: true, maximumAge: 10_000, timeout: 60_000 });
}

function stopWatching() {
  if (ui.watchId != null) navigator.geolocation.clearWatch(ui.watchId);
  ui.watchId = null;
}

/** Send the latest position if there is one and the last was sent at least 15 s ago. */
async function sendPosition() {
  const fix = state.pendingPosition;
  if (!fix || !state.user?.crew || !positionLoopOn() || state.authNeeded || ui.positionInFlight) return;
  if (Date.now() - state.positionSentAt < POSITION_MIN_MS) return;
  ui.positionInFlight = true;
  try {
    const answer = await session.api(`/api/crews/${encodeURIComponent(state.user.crew)}/position`, {
      method: "POST", body: { by: state.user.id, lon: fix.lon, lat: fix.lat, at: fix.at, source: "app" },
    });
    state.positionSentAt = Date.now();
    if (state.pendingPosition === fix) state.pendingPosition = null;
    const { hazard, crew, ...rest } = answer || {};
    mergeCrew({ ...(crew || rest), hazard: hazard ?? (crew || rest).hazard ?? null });
    setOnline(true);
  } catch (err) {
    if (isNetworkError(err)) setOnline(false);
    else if (err.status === 401) needSignIn();
    else if (err.status < 500) {
      // refused for good (e.g. outside the district): do not resend this one
      if (state.pendingPosition === fix) state.pendingPosition = null;
      state.positionError = err.message;
      state.positionSentAt = Date.now();
    }
  } finally {
    ui.positionInFlight = false;
    render();
  }
}

// ---------------------------------------------------------------- link and sign-in

function setOnline(value) {
  const next = Boolean(value) && navigator.onLine;
  if (next === state.online) return;
  state.online = next;
  render();
}

function needSignIn() {
  state.authNeeded = true;
  render();
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $("signin-error");
  err.hidden = true;
  const id = $("signin-user").value.trim();
  const password = $("signin-password").value;
  try {
    const user = await session.signIn(id, password);
    if (!user.crew || !(user.roles || []).includes("crew")) {
      session.signOut();
      throw new Error(t("notCrew"));
    }
    $("signin-password").value = "";
    await startAs(user);
  } catch (e) {
    err.textContent = e instanceof ApiError ? t("signInFailed", { detail: e.message }) : e.message;
    err.hidden = false;
  }
}

function signOut() {
  stopWatching();
  session.signOut();
  state.user = null;
  state.crew = null;
  state.tasks = new Map();
  state.outbox = [];
  render();
}

let liveStarted = false;

/** Begin (or resume) as ``user``: cached data first, then the server, the feed and the outbox. */
async function startAs(user) {
  const sameUser = state.user?.id === user.id;
  state.user = user;
  state.authNeeded = !session.signedIn; // a token that ran out: keep working offline, ask to sign in
  if (!sameUser) {
    state.tasks = new Map(((await cacheGet(`tasks:${user.id}`)) || []).map((x) => [x.id, x]));
    state.crew = await cacheGet(`crew:${user.id}`);
    state.fix = await cacheGet(`position:${user.id}`);
  }
  await reloadOutbox();
  render();
  ensureMap();
  startWatching();
  await syncOutbox();
  await refresh();
  if (session.signedIn) {
    session.disconnect();
    session.connect(onEvent, (s) => {
      if (s === "open") refresh();
      if (s === "refused" && !session.signedIn) needSignIn();
    });
  }
  if (!liveStarted) {
    liveStarted = true;
    window.setInterval(() => { if (navigator.onLine) syncOutbox(); }, SYNC_EVERY_MS);
    window.setInterval(() => { if (navigator.onLine) refresh(); }, POLL_EVERY_MS);
    window.setInterval(() => { if (navigator.onLine) sendPosition(); }, 5000);
    window.setInterval(renderClock, 1000);
  }
}

// ---------------------------------------------------------------- photos

/** A photo the server takes (JPEG or PNG, at most 5 MB): as is, or re-encoded as a smaller JPEG. */
async function usablePhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file); // also proves it is an image, whatever its name says
  } catch {
    throw new Error(t("photoUnreadable"));
  }
  if (PHOTO_TYPES.has(file.type) && file.size <= PHOTO_MAX_BYTES) {
    bitmap.close?.();
    return new Blob([await file.arrayBuffer()], { type: file.type });
  }
  const scale = Math.min(1, PHOTO_MAX_SIDE_PX / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  for (const quality of [0.85, 0.7, 0.5]) {
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
    if (blob && blob.size <= PHOTO_MAX_BYTES) return blob;
  }
  throw new Error(t("photoTooBig", { reason: `> ${fmtBytes(PHOTO_MAX_BYTES)}` }));
}

// ---------------------------------------------------------------- task actions

function draft(id) {
  if (!ui.drafts.has(id)) ui.drafts.set(id, { form: null, note: "", reason: "", report: "", photo: null, error: null });
  return ui.drafts.get(id);
}

async function act(task, kind) {
  const d = draft(task.id);
  d.error = null;
  if (kind === "ack") {
    await enqueue("ack", { task_id: task.id });
  } else if (kind === "start") {
    await enqueue("start", { task_id: task.id, note: d.note.trim() });
    d.form = null;
  } else if (kind === "decline") {
    if (!d.reason.trim()) { d.error = t("reasonRequired"); render(true); return; }
    await enqueue("decline", { task_id: task.id, reason: d.reason.trim() });
    d.form = null;
  } else if (kind === "done") {
    if (!d.report.trim()) { d.error = t("reportRequired"); render(true); return; }
    await enqueue("done", { task_id: task.id, report: d.report.trim(), photo: d.photo || null });
    ui.drafts.delete(task.id);
  }
  render(true);
}

function taskActions(task) {
  const d = draft(task.id);
  const out = [];
  const button = (kind, label, cls = "") => h("button", {
    type: "button", class: `act act-${kind} ${cls}`, dataset: { act: kind },
    onclick: () => {
      if (kind === "ack") act(task, "ack");
      else { d.form = d.form === kind ? null : kind; d.error = null; render(true); }
    },
  }, label);
  if (task.status === "sent" || task.status === "delivered") {
    out.push(button("ack", t("accept"), "primary"), button("decline", t("decline")));
  } else if (task.status === "acknowledged") {
    // the service takes a crew task to done only from on site (acknowledged → in_progress → done)
    out.push(button("start", t("onSite"), "primary"), button("decline", t("decline")));
  } else if (task.status === "in_progress") {
    out.push(button("done", t("done"), "primary"));
  }
  if (!out.length) return null;
  const form = d.form ? taskForm(task, d) : null;
  return h("div", { class: "task-actions" }, h("div", { class: "row" }, out), form,
    d.error ? h("p", { class: "error task-error" }, d.error) : null);
}

function taskForm(task, d) {
  const field = (name, label, multiline) => {
    const attrs = { class: `field-${name}`, placeholder: label, "aria-label": label, value: d[name],
      oninput: (ev) => { d[name] = ev.target.value; } };
    return multiline ? h("textarea", { ...attrs, rows: 3 }) : h("input", { ...attrs, type: "text" });
  };
  const submit = h("button", { type: "button", class: "primary submit", onclick: () => act(task, d.form) }, t("submit"));
  if (d.form === "decline") return h("div", { class: "task-form" }, field("reason", t("reason"), true), submit);
  if (d.form === "start") return h("div", { class: "task-form" }, field("note", t("note"), false), submit);
  // done: report (required) and a photo
  const photo = h("input", {
    type: "file", accept: "image/*", capture: "environment", class: "field-photo", "aria-label": t("photo"),
    onchange: async (ev) => {
      const file = ev.target.files?.[0];
      d.photo = null;
      d.error = null;
      if (file) {
        try { d.photo = await usablePhoto(file); } catch (e) { d.error = e.message; }
      }
      render(true);
    },
  });
  return h("div", { class: "task-form" }, field("report", t("report"), true),
    h("label", { class: "photo" }, h("span", {}, t("photo")), photo),
    d.photo ? h("span", { class: "photo-ready muted" }, t("photoReady", { size: fmtBytes(d.photo.size) })) : null,
    submit);
}

// ---------------------------------------------------------------- render

function renderTask(task) {
  const text = pick(task.text_zh, task.text);
  const li = h("li", {
    class: `task${task.id === state.selected ? " selected" : ""}`,
    dataset: { id: task.id, status: task.status, queued: task.queued },
  },
  h("div", { class: "task-head", onclick: () => { state.selected = task.id; render(true); } },
    h("span", { class: `status status-${task.status}` }, t(`status_${task.status}`)),
    task.queued ? h("span", { class: "queued-badge" }, `${t("queuedBadge")} ${task.queued}`) : null,
    h("span", { class: "task-text" }, text),
  ),
  h("div", { class: "task-meta muted" },
    `#${task.id} · ${t("created")} `, h("time", { datetime: task.created_at }, localTime(task.created_at, state.lang)),
    task.target ? ` · ${targetSummary(task)}` : ""),
  task.report ? h("p", { class: "task-report" }, task.report) : null,
  task.decline_reason ? h("p", { class: "task-report muted" }, task.decline_reason) : null,
  taskActions(task));
  return li;
}

function targetSummary(task) {
  const here = herePosition();
  if (!here || !validLonLat(task.target)) return "";
  return fmtDistance(distanceM(here, task.target));
}

function directionsText(task) {
  if (!task) return "";
  if (!validLonLat(task.target)) return t("noTarget");
  const here = herePosition();
  if (!here) return t("noPosition");
  const deg = bearingDeg(here, task.target);
  const line = t("directions", { dist: fmtDistance(distanceM(here, task.target)), dir: compassName(deg), deg });
  return here.own ? line : `${line} (${t("noFix")})`;
}

function renderClock() {
  const box = $("checkin");
  const due = state.crew?.checkin_due_at;
  const queued = state.outbox.some((e) => e.kind === "checkin");
  let label = t("checkinNone");
  let st = "none";
  if (queued) { label = t("checkinQueued"); st = "queued"; }
  else if (due) {
    const left = Date.parse(due) - Date.now();
    if (left >= 0) { label = fmtDuration(left); st = left < 5 * 60_000 ? "soon" : "ok"; }
    else { label = t("checkinOverdue", { time: fmtDuration(-left) }); st = "overdue"; }
  }
  if (state.crew?.checkin_missed && st !== "queued") st = "overdue";
  box.dataset.state = st;
  $("checkin-countdown").textContent = state.crew?.checkin_missed && st === "overdue"
    ? `${due ? `${label} · ` : ""}${t("checkinMissed")}` : label;
}

/** Whether a field in the task list is being typed in (re-rendering would lose the caret). */
function typing() {
  const el = document.activeElement;
  return Boolean(el && $("task-list").contains(el) && (el.tagName === "TEXTAREA" || el.tagName === "INPUT"));
}

function render(force = false) {
  if (ui.renderPending && !force) return;
  ui.renderPending = true;
  const run = () => { ui.renderPending = false; renderNow(force); };
  if (force) run(); else window.requestAnimationFrame(run);
}

function renderNow(force) {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  $("lang-toggle").textContent = t("lang");
  document.title = `${t("title")} · Yingji`;

  const signedInUser = Boolean(state.user);
  $("signin").hidden = signedInUser && !state.authNeeded;
  $("app").hidden = !signedInUser;
  const n = state.outbox.length;
  const net = $("net");
  net.dataset.state = state.online ? "online" : "offline";
  $("net-label").textContent = state.online ? t("online") : t("offline");
  $("queue-count").textContent = String(n);
  net.dataset.queued = String(n);

  const auth = $("auth-banner");
  auth.hidden = !state.authNeeded;
  auth.textContent = state.authNeeded ? t("authExpired", { n }) : "";
  if (state.authNeeded && state.user && !$("signin-user").value) $("signin-user").value = state.user.id;

  renderProblems();
  if (!signedInUser) { state.ready = true; return; }

  $("crew-name").textContent = pick(state.crew?.name_zh, state.crew?.name) || state.user.crew || "";
  $("user-name").textContent = pick(state.user.name_zh, state.user.name);

  // hazard banner
  const hz = state.crew?.hazard;
  const banner = $("hazard-banner");
  banner.hidden = !hz;
  if (hz) {
    const level = levelName(hz.level);
    banner.textContent = t("hazard", { title: pick(hz.title_zh, hz.title) || hz.kind || "", level: t(`level_${level}`) });
    banner.style.background = LEVEL_COLOURS[level];
    banner.style.color = level === "yellow" ? "#000" : "#fff";
    banner.dataset.incident = String(hz.incident_id ?? "");
  }
  // SOS banner: queued (prominent) or sent
  const sosQueued = state.outbox.some((e) => e.kind === "sos");
  const sos = state.crew?.sos;
  const sb = $("sos-banner");
  sb.hidden = !sosQueued && !sos;
  sb.className = `banner ${sosQueued ? "sos-queued" : "sos-sent"}`;
  sb.dataset.state = sosQueued ? "queued" : sos ? "sent" : "none";
  sb.textContent = sosQueued ? t("sosQueued")
    : sos ? t("sosSent", { time: localTime(sos.at || sos.opened_at || sos.created_at, state.lang) }) : "";

  // position line
  const duty = positionLoopOn();
  $("duty-toggle").checked = duty;
  $("position-status").textContent = !duty ? t("positionOff")
    : state.positionError ? t("positionDenied", { reason: state.positionError })
      : state.pendingPosition && state.positionSentAt === 0 ? t("positionPending")
        : state.positionSentAt ? t("positionSent", { time: localTime(new Date(state.positionSentAt).toISOString(), state.lang) })
          : "";
  renderClock();

  // tasks
  const tasks = taskList();
  if (state.selected == null || !tasks.some((x) => x.id === state.selected)) {
    state.selected = tasks.find((x) => OPEN_STATUSES.has(x.status))?.id ?? tasks[0]?.id ?? null;
  }
  $("task-count").textContent = String(tasks.filter((x) => OPEN_STATUSES.has(x.status)).length);
  $("no-tasks").hidden = tasks.length > 0;
  if (force || !typing()) {
    $("task-list").replaceChildren(...tasks.map(renderTask));
  } else {
    ui.renderAfterTyping = true;
  }
  const selected = tasks.find((x) => x.id === state.selected) || null;
  $("directions").textContent = directionsText(selected);
  renderMap(selected);
  state.ready = true;
}

function renderProblems() {
  const box = $("problems");
  box.hidden = state.problems.length === 0;
  box.replaceChildren(...state.problems.map((p, i) => h("div", { class: "problem", dataset: { op: p.op_id } },
    h("span", {}, t("dropped", { what: `${t(`op_${p.kind}`)}${p.task_id != null ? ` #${p.task_id}` : ""}`, detail: p.detail })),
    h("button", { type: "button", class: "small", onclick: () => { state.problems.splice(i, 1); render(true); } },
      t("dismiss")))));
}

// ---------------------------------------------------------------- map

let maplibregl = null;

async function ensureMap() {
  if (state.map || ui.mapStarting) return;
  ui.mapStarting = true;
  try {
    maplibregl = await import("/vendor/maplibre-gl/maplibre-gl.mjs");
  } catch {
    ui.mapStarting = false;
    return; // no map library (first visit offline): the task list and directions still work
  }
  let district = await cacheGet("district");
  try {
    district = await session.api("/api/district");
    cachePut("district", district);
  } catch { /* offline: the cached one */ }
  const here = herePosition();
  const options = {
    container: "map",
    style: mapStyle(),
    attributionControl: { compact: true },
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    maxPitch: 0,
  };
  if (Array.isArray(district?.bbox) && district.bbox.length === 4) {
    const [w, s, e, n] = district.bbox;
    options.bounds = [[w, s], [e, n]];
    options.fitBoundsOptions = { padding: 12 };
  } else {
    options.center = here ? [here.lon, here.lat] : district?.center ?? [106.63, 29.72];
    options.zoom = 11;
  }
  const map = new maplibregl.Map(options);
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  state.map = map;
  map.on("load", async () => {
    state.mapLoaded = true;
    await Promise.all(GEO_LAYERS.map(async (name) => {
      let data = await cacheGet(`layer:${name}`);
      try {
        data = await session.api(`/api/layers/${name}`);
        cachePut(`layer:${name}`, data);
      } catch { /* offline: the cached copy */ }
      map.getSource(name)?.setData(data?.type === "FeatureCollection" ? data : EMPTY);
    }));
    ui.fitted = false;
    render();
  });
}

function mapStyle() {
  const sources = {};
  for (const name of [...GEO_LAYERS, "route", "target", "here"]) sources[name] = { type: "geojson", data: EMPTY };
  const isPolygon = ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]];
  const isLine = ["in", ["geometry-type"], ["literal", ["LineString", "MultiLineString"]]];
  return {
    version: 8,
    sources,
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#eef1ea" } },
      { id: "boundary-fill", type: "fill", source: "boundary", paint: { "fill-color": "#fbfbf6", "fill-opacity": 0.9 } },
      { id: "water", type: "fill", source: "rivers", filter: isPolygon, paint: { "fill-color": "#a9d3f0" } },
      { id: "rivers", type: "line", source: "rivers", filter: isLine, paint: { "line-color": "#7bb8e6", "line-width": 2 } },
      { id: "roads-casing", type: "line", source: "roads", paint: { "line-color": "#c9c2b2", "line-width": 4 } },
      {
        id: "roads", type: "line", source: "roads",
        paint: { "line-color": ["match", ["get", "class"], "expressway", "#f6c26b", "#ffffff"], "line-width": 2.5 },
      },
      { id: "boundary-line", type: "line", source: "boundary", paint: { "line-color": "#5d6b5f", "line-width": 1.5, "line-dasharray": [4, 2] } },
      {
        id: "facilities", type: "circle", source: "facilities",
        paint: { "circle-color": "#9e9e9e", "circle-radius": 3, "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
      },
      { id: "route", type: "line", source: "route", paint: { "line-color": "#b71c1c", "line-width": 3, "line-dasharray": [2, 1.5] } },
      {
        id: "target", type: "circle", source: "target",
        paint: { "circle-color": "#b71c1c", "circle-radius": 9, "circle-stroke-color": "#fff", "circle-stroke-width": 3 },
      },
      {
        id: "here", type: "circle", source: "here",
        paint: { "circle-color": "#1565c0", "circle-radius": 8, "circle-stroke-color": "#fff", "circle-stroke-width": 3 },
      },
    ],
  };
}

const point = (p) => ({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: [p.lon, p.lat] } });
const collection = (...features) => ({ type: "FeatureCollection", features: features.filter(Boolean) });

function renderMap(task) {
  const map = state.map;
  if (!map || !state.mapLoaded) return;
  const here = herePosition();
  const target = validLonLat(task?.target) ? task.target : null;
  map.getSource("here")?.setData(here ? collection(point(here)) : EMPTY);
  map.getSource("target")?.setData(target ? collection(point(target)) : EMPTY);
  map.getSource("route")?.setData(here && target ? collection({ type: "Feature", properties: {},
    geometry: { type: "LineString", coordinates: [[here.lon, here.lat], [target.lon, target.lat]] } }) : EMPTY);
  const key = `${task?.id}:${here ? "h" : ""}`;
  if (ui.fitKey !== key && (here || target)) {
    ui.fitKey = key;
    const pts = [here, target].filter(Boolean);
    const lons = pts.map((p) => p.lon);
    const lats = pts.map((p) => p.lat);
    if (pts.length === 1) map.jumpTo({ center: [lons[0], lats[0]], zoom: 13 });
    else map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]],
      { padding: 40, maxZoom: 15, animate: false });
  }
}

// ---------------------------------------------------------------- start

function setLang(lang) {
  state.lang = lang === "en" ? "en" : "zh-CN";
  storageSet(LANG_KEY, state.lang);
  t = translator(TEXT, state.lang);
  render(true);
}

function wire() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("lang-toggle").addEventListener("click", () => setLang(state.lang === "en" ? "zh-CN" : "en"));
  $("sos-btn").addEventListener("click", () => { $("sos-confirm").hidden = false; $("sos-note").focus(); });
  $("sos-cancel").addEventListener("click", () => { $("sos-confirm").hidden = true; });
  $("sos-send").addEventListener("click", sendSos);
  $("checkin-btn").addEventListener("click", checkIn);
  $("duty-toggle").addEventListener("change", (ev) => {
    storageSet(DUTY_KEY, ev.target.checked ? "on" : "off");
    if (ev.target.checked) startWatching(); else stopWatching();
    render(true);
  });
  $("task-list").addEventListener("focusout", () => {
    window.setTimeout(() => { if (ui.renderAfterTyping && !typing()) { ui.renderAfterTyping = false; render(true); } }, 0);
  });
  window.addEventListener("online", () => { state.online = true; syncOutbox().then(refresh); sendPosition(); render(); });
  window.addEventListener("offline", () => { state.online = false; render(); });
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/crew-sw.js", { scope: "/crew" });
    await navigator.serviceWorker.ready;
    state.swActive = true;
  } catch { /* the app still works online without it */ }
}

window.yingjiCrew = {
  get ready() { return state.ready; },
  get online() { return state.online; },
  get swActive() { return state.swActive; },
  get mapLoaded() { return state.mapLoaded; },
  get lastSync() { return state.lastSync; },
  get lang() { return state.lang; },
  get feedTaskEvents() { return state.feedTaskEvents; },
  outbox: () => state.outbox.map((e) => ({ ...e })),
  tasks: () => taskList(),
  crew: () => (state.crew ? { ...state.crew } : null),
  problems: () => state.problems.map((p) => ({ ...p })),
  sync: () => syncOutbox(),
  refresh: () => refresh(),
  setLang,
  distanceM,
  bearingDeg,
};

async function main() {
  setLang(storageGet(LANG_KEY) || "zh-CN");
  wire();
  registerWorker();
  const user = session.user;
  if (user && user.crew) {
    await startAs(user);
  } else {
    render(true);
  }
  state.ready = true;
}

main().catch((err) => {
  state.ready = true;
  const box = $("problems");
  box.hidden = false;
  box.textContent = String(err?.message || err);
});
