// Field crews and department units in the dispatcher console: on the map (GET /api/crews, crew.*
// events) coloured by status, with a popup; an alarm strip at the top of the sidebar for open SOS
// calls (acknowledged from here), crews inside a hazard area and missed check-ins, each shown until
// handled or cleared; and "give a task": pick a crew, click the place on the map, type the task and
// choose the incident → POST /api/crews/{id}/tasks. Each crew's open tasks are listed under it.
// A place clicked on the map is converted to WGS-84 (crs.js fromDisplay) before it is sent.

import { fromDisplay } from "./crs.js";

const STATUS_COLOURS = { available: "#2e7d32", on_task: "#1565c0", off_duty: "#9e9e9e", unavailable: "#6d4c41" };
const SOS_COLOUR = "#d32f2f";
const OPEN_TASK = new Set(["sent", "acknowledged", "in_progress"]);
const AGE_TICK_MS = 15000; // position ages in the list and popup are refreshed this often

const STRINGS = {
  zh: {
    crews: {
      title: "救援队伍与单位", crew: "队伍", unit: "单位", status: { available: "待命", on_task: "执行任务",
        off_duty: "休整", unavailable: "不可用" },
      sos: "求救", sosAck: "确认收到", hazard: "进入危险区", checkinMissed: "未按时报平安", department: "部门",
      position: "位置", age: "更新于", ago: "前", minutes: "分钟", seconds: "秒", stale: "位置过时",
      checkinDue: "报平安截止", giveTask: "派任务", pickPlace: "请在地图上点击任务地点", place: "地点",
      text: "任务（中文）", textEn: "任务（英文，可选）", incident: "事件", send: "下达", cancel: "取消",
      textRequired: "请填写任务内容", incidentRequired: "请选择事件", placeRequired: "请先在地图上点击地点",
      sent: "任务已下达", tasks: "任务", noTasks: "无进行中任务", none: "无",
      taskStatus: { sent: "已下达", acknowledged: "已接受", in_progress: "进行中" },
      acked: "已确认", by: "由", note: "备注", alarms: "告警",
      log: { position: "位置", status: "状态", sos: "求救", sos_acknowledged: "求救已确认", hazard_entered: "进入危险区",
        hazard_left: "离开危险区", checkin_missed: "未按时报平安", checked_in: "已报平安", photo: "上传照片" },
    },
  },
  en: {
    crews: {
      title: "Crews and units", crew: "crew", unit: "unit", status: { available: "available", on_task: "on task",
        off_duty: "off duty", unavailable: "unavailable" },
      sos: "SOS", sosAck: "Acknowledge", hazard: "in a hazard area", checkinMissed: "missed check-in",
      department: "Department", position: "Position", age: "Updated", ago: "ago", minutes: "min", seconds: "s",
      stale: "position stale", checkinDue: "Check-in due", giveTask: "Give a task",
      pickPlace: "Click the task's place on the map", place: "Place", text: "Task (Chinese)",
      textEn: "Task (English, optional)", incident: "Incident", send: "Send", cancel: "Cancel",
      textRequired: "Type the task", incidentRequired: "Choose the incident", placeRequired: "Click the place on the map first",
      sent: "Task sent", tasks: "Tasks", noTasks: "no open tasks", none: "none",
      taskStatus: { sent: "sent", acknowledged: "accepted", in_progress: "in progress" },
      acked: "acknowledged", by: "by", note: "note", alarms: "Alarms",
      log: { position: "position", status: "status", sos: "SOS", sos_acknowledged: "SOS acknowledged",
        hazard_entered: "entered a hazard area", hazard_left: "left the hazard area", checkin_missed: "missed check-in",
        checked_in: "checked in", photo: "photo uploaded" },
    },
  },
};

/** The event log's line for a crew event, e.g. "洛碛水域救援分队 · 进入危险区 #3 公路上方边坡滑塌". */
export function crewLogLine(kind, d, t, pick) {
  const what = kind.slice("crew.".length);
  const name = d?.name ? pick(d, "name") : d?.crew ?? d?.id ?? "";
  const parts = [name, t(`crews.log.${what}`)];
  if (what === "status") parts.push(t(`crews.status.${d.status}`));
  if (what === "hazard_entered") parts.push(`#${d.incident_id} ${pick(d, "title") ?? ""}`.trim());
  if (what === "sos" && d.sos?.note) parts.push(d.sos.note);
  if (what === "sos_acknowledged" && d.by) parts.push(`${t("crews.by")} ${d.by}`);
  return parts.filter(Boolean).join(" · ");
}

// ---------------------------------------------------------------- pure helpers (exported for tests)

/** The alarms a set of crews raises, most urgent first: open SOS, inside a hazard, missed check-in. */
export function crewAlarms(crews) {
  const sos = [];
  const hazard = [];
  const missed = [];
  for (const c of crews ?? []) {
    if (!c?.id) continue;
    if (c.sos) sos.push({ kind: "sos", crew: c, since: c.sos.at ?? null });
    if (c.hazard) hazard.push({ kind: "hazard", crew: c, since: c.position_at ?? null });
    if (c.checkin_missed) missed.push({ kind: "checkin", crew: c, since: c.checkin_due_at ?? null });
  }
  const newest = (a, b) => String(b.since ?? "").localeCompare(String(a.since ?? ""));
  return [...sos.sort(newest), ...hazard.sort(newest), ...missed.sort(newest)];
}

/** The body of POST /api/crews/{id}/tasks from the form's fields, or {error} naming what is missing. */
export function taskBody({ by, incidentId, text, textZh, place }) {
  const zh = String(textZh ?? "").trim();
  const en = String(text ?? "").trim();
  if (!zh && !en) return { error: "text" };
  const incident = Number(incidentId);
  if (!Number.isInteger(incident) || incident < 1) return { error: "incident" };
  if (!Array.isArray(place) || !place.every(Number.isFinite)) return { error: "place" };
  // the API takes English (or the only text) in `text` and Chinese in `text_zh`
  return { body: { by, incident_id: incident, text: en || zh, ...(zh ? { text_zh: zh } : {}), lon: place[0], lat: place[1] } };
}

/** "3 min" / "40 s" from an ISO time to now. */
function ageText(t, iso, now = Date.now()) {
  const at = Date.parse(iso ?? "");
  if (!Number.isFinite(at)) return "—";
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s} ${t("crews.seconds")}` : `${Math.round(s / 60)} ${t("crews.minutes")}`;
}

// ---------------------------------------------------------------- the module

export async function install(ctx) {
  const { h, t, state } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_crews.css";
  document.head.append(link);

  const crews = new Map(); // id -> crew view (GET /api/crews, crew.* events)
  const tasks = new Map(); // task id -> crew task (task.crew set)
  const s = {
    picking: null, // crew id whose task place is being picked on the map
    form: null, // {crew, place: [lon, lat] WGS-84, text, textZh, incidentId, error, busy}
    acking: new Set(), // crew ids with an SOS acknowledgement in flight
    open: new Set(), // crew ids whose rows are unfolded
  };
  let map = null;

  state.crews = crews;

  function upsertCrew(view) {
    if (!view?.id || !view.name) return; // crew.photo and the like carry no crew view
    const { left, by, due_at: dueAt, ...crew } = view;
    crews.set(view.id, { ...crews.get(view.id), ...crew });
    ctx.markDirty("crews");
  }

  function upsertTask(task) {
    if (!task?.crew || task.id == null) return;
    tasks.set(task.id, { ...tasks.get(task.id), ...task });
    ctx.markDirty("crews");
  }

  ctx.onSnapshot(async () => {
    const [crewBody, taskBody_] = await Promise.all([ctx.api("/api/crews"), ctx.api("/api/tasks?open_only=true")]);
    const fresh = new Set();
    for (const c of crewBody?.crews ?? []) { fresh.add(c.id); upsertCrew(c); }
    for (const id of [...crews.keys()]) if (!fresh.has(id)) crews.delete(id);
    tasks.clear();
    for (const task of taskBody_?.tasks ?? []) upsertTask(task);
    ctx.markDirty("crews");
  });
  ctx.on("crew.", (d, ev) => {
    if (ev.kind === "crew.hazard_entered") {
      // the crew's view with the hazard's incident_id, kind, level and titles laid over it: the
      // hazard is also in the view's own `hazard`; keep the crew's own kind and incident
      const { incident_id: incidentId, kind, level, title, title_zh: titleZh, ...view } = d;
      const held = crews.get(d.id);
      upsertCrew({ ...view, kind: held?.kind ?? "crew", incident_id: held?.incident_id ?? null,
        hazard: view.hazard ?? { incident_id: incidentId, kind, level, title, title_zh: titleZh } });
    } else upsertCrew(d);
    if (ev.kind === "crew.sos") ctx.flash(`${t("crews.sos")}: ${ctx.pick(d, "name")} ${d.sos?.note ?? ""}`.trim());
  });
  ctx.on("task.", (d) => upsertTask(d));
  ctx.summary("crew.", (d, kind) => crewLogLine(kind, d, t, ctx.pick));

  // ---- actions

  async function acknowledgeSos(crewId) {
    s.acking.add(crewId);
    ctx.markDirty("crews");
    try {
      const body = await ctx.api(`/api/crews/${encodeURIComponent(crewId)}/sos/ack`,
        { method: "POST", body: { by: ctx.operatorName() } });
      if (body?.crew) upsertCrew(body.crew);
    } catch (err) {
      ctx.flash(`${t("crews.sosAck")}: ${err.message}`);
      ctx.logEvent("console.error", null, `${crewId} ${t("crews.sosAck")}: ${err.message}`);
    } finally {
      s.acking.delete(crewId);
      ctx.markDirty("crews");
    }
  }

  function startPicking(crewId) {
    s.picking = crewId;
    s.form = {
      crew: crewId, place: null, text: "", textZh: "", error: null, busy: false,
      incidentId: state.selectedIncident ?? defaultIncident(),
    };
    s.open.add(crewId);
    map?.getCanvas().classList.add("crews-picking");
    ctx.flash(t("crews.pickPlace"), "info");
    ctx.markDirty("crews");
  }

  function stopPicking() {
    s.picking = null;
    map?.getCanvas().classList.remove("crews-picking");
  }

  function cancelForm() {
    stopPicking();
    s.form = null;
    ctx.markDirty("crews");
  }

  function defaultIncident() {
    const open = [...state.incidents.values()].filter((i) => i.status !== "closed");
    return open.length === 1 ? open[0].id : null;
  }

  async function sendTask() {
    const form = s.form;
    if (!form || form.busy) return;
    const made = taskBody({ by: ctx.operatorName(), incidentId: form.incidentId, text: form.text,
      textZh: form.textZh, place: form.place });
    if (made.error) {
      form.error = t({ text: "crews.textRequired", incident: "crews.incidentRequired", place: "crews.placeRequired" }[made.error]);
      ctx.markDirty("crews");
      return;
    }
    form.busy = true;
    form.error = null;
    ctx.markDirty("crews");
    try {
      const body = await ctx.api(`/api/crews/${encodeURIComponent(form.crew)}/tasks`, { method: "POST", body: made.body });
      if (body?.task) upsertTask(body.task);
      ctx.logEvent("console.info", null, `${t("crews.sent")}: ${form.crew} #${made.body.incident_id}`);
      s.form = null;
    } catch (err) {
      form.error = err.message;
      form.busy = false;
    }
    ctx.markDirty("crews");
  }

  // ---- map

  function crewCollection() {
    const features = [];
    for (const c of crews.values()) {
      if (!Number.isFinite(c.lon) || !Number.isFinite(c.lat)) continue;
      features.push({
        type: "Feature", geometry: { type: "Point", coordinates: [c.lon, c.lat] },
        properties: {
          id: c.id, kind: c.kind, status: c.status, sos: Boolean(c.sos), hazard: Boolean(c.hazard),
          missed: Boolean(c.checkin_missed), stale: Boolean(c.position_stale),
        },
      });
    }
    return { type: "FeatureCollection", features };
  }

  function targetCollection() {
    const features = [];
    for (const task of tasks.values()) {
      const target = task.target;
      if (!OPEN_TASK.has(task.status) || !Number.isFinite(target?.lon) || !Number.isFinite(target?.lat)) continue;
      features.push({
        type: "Feature", geometry: { type: "Point", coordinates: [target.lon, target.lat] },
        properties: { id: task.id, crew: task.crew, status: task.status },
      });
    }
    if (s.form?.place) {
      features.push({
        type: "Feature", geometry: { type: "Point", coordinates: s.form.place },
        properties: { id: "draft", crew: s.form.crew, status: "draft" },
      });
    }
    return { type: "FeatureCollection", features };
  }

  function addLayers(m) {
    map = m;
    for (const name of ["crews", "crews-targets"]) {
      if (!m.getSource(name)) m.addSource(name, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    }
    const colour = ["match", ["get", "status"], ...Object.entries(STATUS_COLOURS).flat(), "#607d8b"];
    const stroke = ["case", ["get", "sos"], SOS_COLOUR, ["get", "hazard"], ctx.LEVEL_COLOURS.orange,
      ["get", "missed"], ctx.LEVEL_COLOURS.yellow, "#ffffff"];
    const strokeWidth = ["case", ["any", ["get", "sos"], ["get", "hazard"], ["get", "missed"]], 4, 2];
    if (!m.getLayer("crews-targets")) {
      m.addLayer({
        id: "crews-targets", type: "circle", source: "crews-targets",
        paint: {
          "circle-radius": 6, "circle-color": "#ffffff",
          "circle-stroke-color": ["match", ["get", "status"], "draft", "#ff6f00", "#1565c0"],
          "circle-stroke-width": 3,
        },
      });
    }
    if (!m.getLayer("crews-unit")) {
      m.addLayer({
        id: "crews-unit", type: "circle", source: "crews", filter: ["==", ["get", "kind"], "unit"],
        paint: {
          "circle-radius": 5.5, "circle-color": colour, "circle-opacity": ["case", ["get", "stale"], 0.5, 1],
          "circle-stroke-color": stroke, "circle-stroke-width": strokeWidth,
        },
      });
    }
    if (!m.getLayer("crews-crew")) {
      m.addLayer({
        id: "crews-crew", type: "circle", source: "crews", filter: ["!=", ["get", "kind"], "unit"],
        paint: {
          "circle-radius": 7.5, "circle-color": colour, "circle-opacity": ["case", ["get", "stale"], 0.5, 1],
          "circle-stroke-color": stroke, "circle-stroke-width": strokeWidth,
        },
      });
    }
    for (const id of ["crews-crew", "crews-unit"]) {
      m.on("mouseenter", id, () => { if (!s.picking) m.getCanvas().style.cursor = "pointer"; });
      m.on("mouseleave", id, () => { if (!s.picking) m.getCanvas().style.cursor = ""; });
      m.on("click", id, (ev) => {
        if (s.picking) return;
        const crew = crews.get(ev.features?.[0]?.properties?.id);
        if (!crew) return;
        new ctx.maplibregl.Popup({ maxWidth: "300px" }).setLngLat(ev.lngLat).setDOMContent(popupContent(crew)).addTo(m);
      });
    }
    m.on("click", (ev) => {
      if (!s.picking || !s.form) return;
      // the map shows the basemap's datum; the service keeps WGS-84
      const [lon, lat] = fromDisplay([ev.lngLat.lng, ev.lngLat.lat]);
      s.form.place = [lon, lat];
      s.form.error = null;
      stopPicking();
      ctx.markDirty("crews");
      requestAnimationFrame(() => panel.querySelector(".crews-form textarea")?.focus());
    });
    ctx.markDirty("crews");
  }

  ctx.onMapLoad(addLayers);

  ctx.onFlush((dirty, mapReady) => {
    if (!dirty.has("crews") && !dirty.has("incidents")) return;
    if (dirty.has("crews")) {
      renderAlarms();
      if (mapReady) {
        ctx.setSource("crews", crewCollection());
        ctx.setSource("crews-targets", targetCollection());
      }
    }
    renderPanel();
  });

  // ---- popup, alarms, panel

  function popupContent(c) {
    const row = (label, value) => h("tr", {}, h("th", {}, label), h("td", {}, value));
    return h("div", { class: "popup crew-popup", dataset: { crew: c.id } },
      h("h4", {}, ctx.pick(c, "name")),
      h("table", {},
        row(t("crews.department"), c.department ?? "—"),
        row(t("status"), t(`crews.status.${c.status}`) + (c.incident_id != null ? ` · #${c.incident_id}` : "")),
        row(t("crews.age"), `${ageText(t, c.position_at)} ${t("crews.ago")}${c.position_stale ? ` (${t("crews.stale")})` : ""}`),
        row(t("crews.checkinDue"), c.checkin_due_at ? ctx.formatTime(c.checkin_due_at) : "—"),
        c.sos ? row(t("crews.sos"), `${ctx.formatTime(c.sos.at)} ${c.sos.note ?? ""}`) : null,
        c.hazard ? row(t("crews.hazard"), `#${c.hazard.incident_id} ${ctx.pick(c.hazard, "title")}`) : null));
  }

  const strip = h("section", { id: "crew-alarms", class: "crew-alarms", role: "alert", "aria-label": t("crews.alarms"), hidden: true });
  const flashEl = document.getElementById("flash");
  if (flashEl?.parentElement === ctx.sidebar) flashEl.after(strip);
  else ctx.sidebar.prepend(strip);

  function renderAlarms() {
    const alarms = crewAlarms([...crews.values()]);
    strip.hidden = alarms.length === 0;
    strip.replaceChildren(...alarms.map((a) => {
      const c = a.crew;
      const name = ctx.pick(c, "name");
      const focus = () => ctx.focusOn(c.sos?.lon ?? c.lon, c.sos?.lat ?? c.lat, 14);
      if (a.kind === "sos") {
        return h("div", { class: "crew-alarm sos", dataset: { crew: c.id, kind: "sos" } },
          h("strong", {}, t("crews.sos")),
          h("button", { type: "button", class: "link-btn crew-alarm-name", onclick: focus }, name),
          h("span", { class: "crew-alarm-text" },
            `${ctx.formatTime(c.sos.at)}${c.sos.by ? ` · ${c.sos.by}` : ""}${c.sos.note ? ` · ${c.sos.note}` : ""}`),
          h("button", {
            type: "button", class: "crew-sos-ack", dataset: { crew: c.id }, disabled: s.acking.has(c.id),
            onclick: () => acknowledgeSos(c.id),
          }, t("crews.sosAck")));
      }
      const text = a.kind === "hazard"
        ? `${t("crews.hazard")}: #${c.hazard.incident_id} ${ctx.pick(c.hazard, "title")}`
        : `${t("crews.checkinMissed")} (${ctx.formatTime(c.checkin_due_at)})`;
      return h("div", { class: `crew-alarm ${a.kind}`, dataset: { crew: c.id, kind: a.kind } },
        h("button", { type: "button", class: "link-btn crew-alarm-name", onclick: focus }, name),
        h("span", { class: "crew-alarm-text" }, text));
    }));
  }

  const panel = h("section", { class: "panel crews-panel", id: "crews-panel" });
  const before = document.getElementById("sensor-panel");
  if (before?.parentElement === ctx.sidebar) ctx.sidebar.insertBefore(panel, before);
  else ctx.sidebar.append(panel);
  let panelOpen = ctx.storageGet("yingji.crews.open") !== "false";

  function renderForm(c) {
    const form = s.form;
    const draft = (name) => (ev) => { form[name] = ev.target.value; };
    const incidents = [...state.incidents.values()].filter((i) => i.status !== "closed").sort((a, b) => b.id - a.id);
    return h("form", {
      class: "crews-form", dataset: { crew: c.id }, novalidate: true,
      onsubmit: (ev) => { ev.preventDefault(); sendTask(); },
      onkeydown: (ev) => { if (ev.key === "Escape") { ev.preventDefault(); cancelForm(); } },
    },
    h("div", { class: "crews-place" }, `${t("crews.place")}: `,
      form.place ? `${form.place[0].toFixed(5)}, ${form.place[1].toFixed(5)}` : h("em", {}, t("crews.pickPlace")),
      form.place ? h("button", { type: "button", class: "link-btn", onclick: () => startPickingAgain() }, "↺") : null),
    h("label", {}, h("span", {}, t("crews.text")),
      h("textarea", { name: "text_zh", rows: 2, maxlength: 1000, oninput: draft("textZh") }, form.textZh)),
    h("label", {}, h("span", {}, t("crews.textEn")),
      h("input", { name: "text", type: "text", maxlength: 1000, value: form.text, oninput: draft("text") })),
    h("label", {}, h("span", {}, t("crews.incident")),
      h("select", { name: "incident", onchange: draft("incidentId") },
        h("option", { value: "", selected: form.incidentId == null }, "—"),
        incidents.map((i) => h("option", { value: i.id, selected: String(form.incidentId) === String(i.id) },
          `#${i.id} ${ctx.pick(i, "title")}`)))),
    form.error ? h("div", { class: "crews-error", role: "alert" }, form.error) : null,
    h("div", { class: "crews-buttons" },
      h("button", { type: "submit", class: "crews-send", disabled: form.busy }, t("crews.send")),
      h("button", { type: "button", class: "crews-cancel", onclick: cancelForm }, t("crews.cancel"))));
  }

  function startPickingAgain() {
    if (!s.form) return;
    s.picking = s.form.crew;
    map?.getCanvas().classList.add("crews-picking");
    ctx.flash(t("crews.pickPlace"), "info");
  }

  function renderCrew(c) {
    const open = tasksOf(c.id);
    const unfolded = s.open.has(c.id) || s.form?.crew === c.id;
    return h("li", {
      class: `crew-row status-${c.status}${c.sos ? " has-sos" : ""}`,
      dataset: { crew: c.id, kind: c.kind, status: c.status },
    },
    h("div", { class: "crew-head" },
      h("span", { class: "crew-dot", style: `background:${STATUS_COLOURS[c.status] ?? "#607d8b"}` }),
      h("button", {
        type: "button", class: "link-btn crew-name", "aria-expanded": String(unfolded),
        onclick: () => { if (s.open.has(c.id)) s.open.delete(c.id); else s.open.add(c.id); ctx.markDirty("crews"); },
      }, ctx.pick(c, "name")),
      h("span", { class: "muted" }, `${t(`crews.${c.kind === "unit" ? "unit" : "crew"}`)} · ${t(`crews.status.${c.status}`)}`),
      open.length ? h("span", { class: "count" }, String(open.length)) : null,
      h("button", {
        type: "button", class: "crew-give", dataset: { crew: c.id },
        onclick: () => (s.form?.crew === c.id ? cancelForm() : startPicking(c.id)),
      }, t("crews.giveTask"))),
    unfolded ? h("ul", { class: "crew-tasks" }, open.length
      ? open.map((task) => h("li", { dataset: { task: task.id, status: task.status } },
        `#${task.incident_id} ${ctx.pick(task, "text")} · ${t(`crews.taskStatus.${task.status}`)}`))
      : h("li", { class: "muted" }, t("crews.noTasks"))) : null,
    s.form?.crew === c.id ? renderForm(c) : null);
  }

  function tasksOf(crewId) {
    return [...tasks.values()].filter((x) => x.crew === crewId && OPEN_TASK.has(x.status)).sort((a, b) => a.id - b.id);
  }

  function renderPanel() {
    // keep what is being typed: the form's fields are drafts in s.form, but focus and caret live in the DOM
    const active = document.activeElement;
    const focusName = active && panel.contains(active) && active.name ? active.name : null;
    const caret = focusName && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    const list = [...crews.values()].sort((a, b) => (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind === "crew" ? -1 : 1));
    const details = h("details", {
      open: panelOpen,
      ontoggle: (ev) => { panelOpen = ev.target.open; ctx.storageSet("yingji.crews.open", String(panelOpen)); },
    },
    h("summary", {}, h("h2", {}, t("crews.title"), " ", h("span", { class: "count" }, String(crews.size)))),
    h("ul", { class: "crew-list" }, list.map(renderCrew)));
    panel.replaceChildren(details);
    if (focusName) {
      const el = panel.querySelector(`.crews-form [name="${focusName}"]`);
      if (el) {
        el.focus();
        if (caret) try { el.setSelectionRange(...caret); } catch { /* not a text field */ }
      }
    }
  }

  renderPanel();
  setInterval(() => { if (crews.size) renderPanel(); }, AGE_TICK_MS);
  document.getElementById("lang-toggle")?.addEventListener("click", () => { renderAlarms(); renderPanel(); });

  window.yingji.crewsUi = {
    crews: () => [...crews.values()],
    tasks: () => [...tasks.values()],
    form: () => (s.form ? { ...s.form } : null),
    picking: () => s.picking,
    giveTask: startPicking,
    crewAlarms, taskBody,
  };
}
