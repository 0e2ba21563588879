// Vehicle panel of the dispatcher console: the selected vehicle's telemetry, link, mission progress,
// latest photos and video address, a "look here" map click that points its camera, and commands
// (hold, continue, RTL, land, photo). Commands that change the flight ask for confirmation in a
// dialog naming the vehicle and the action. Only a pilot may command (POST /api/vehicles/{name}/
// control and .../command, action "vehicle.command" in command/auth.py): a refusal is shown as such.
//
// A vehicle is selected by clicking its row in the vehicle list or its marker on the map (listened
// for on the document by data-name, so console.js needs no hook). Positions are WGS-84; a clicked
// map position goes through crs.js fromDisplay before it is sent (a no-op on a WGS-84 basemap).

import { fromDisplay } from "./crs.js";

const FLIGHT_CHANGING = new Set(["hold", "resume", "rtl", "land"]); // confirmed in a dialog first
const COMMANDS = ["hold", "resume", "rtl", "land", "photo"];
const PHOTOS_KEPT = 4;
const PLAN_FLYING = new Set(["approved", "uploading", "flying", "returning"]);
const LINK_STALE_S = 5; // no telemetry for this long: the "last heard" turns to a warning

const STRINGS = {
  zh: {
    vehiclePanel: {
      panel: "装备详情", none: "点击列表或地图中的装备查看详情", close: "关闭",
      telemetry: "遥测", mode: "模式", armed: "已解锁", disarmed: "未解锁", battery: "电量", height: "相对高度",
      speed: "地速", heading: "航向", position: "位置", gps: "GPS", ekf: "EKF", ok: "正常", bad: "异常",
      link: "链路", lastHeard: "最后收到", secondsAgo: "秒前", packetLoss: "丢包", latency: "时延",
      notReported: "未上报",
      mission: "任务进度", waypoint: "航点", coverage: "覆盖", noMission: "无任务", incident: "事件",
      plan: "方案",
      control: "控制权", controlledBy: "控制人", nobody: "无人控制", takeControl: "接管控制",
      takeOver: "强制接管", release: "释放控制", you: "（本人）",
      commands: "指令", hold: "悬停", resume: "继续", rtl: "返航", land: "降落", photo: "拍照",
      lookHere: "看这里", lookHint: "在地图上点击相机要看的位置（Esc 取消）", lookSent: "相机已指向",
      confirmTitle: "确认指令", confirmText: "确认对 {vehicle} 执行「{action}」？此指令会改变飞行。",
      confirm: "确认执行", cancel: "取消", sending: "发送中…", sent: "已发送",
      notPilot: "无权操作：只有飞手（pilot 角色）可以控制或指挥装备。",
      conflict: "控制权冲突：", unavailable: "装备不可用：", tokenRejected: "登录已失效，请重新登录：",
      photos: "最新照片", noPhotos: "暂无照片", video: "视频流", noVideo: "未提供视频流",
      rtspNote: "浏览器无法播放 RTSP：请在视频播放器中打开此地址。", notServedHere: "图像不在本服务器上，仅显示地址。",
      alt: "海拔",
    },
    evt: {
      "vehicle.command": "装备指令", "vehicle.control": "装备控制权", "vehicle.photo": "装备照片",
    },
  },
  en: {
    vehiclePanel: {
      panel: "Vehicle", none: "Click a vehicle in the list or on the map", close: "Close",
      telemetry: "Telemetry", mode: "Mode", armed: "armed", disarmed: "disarmed", battery: "Battery",
      height: "Height", speed: "Speed", heading: "Heading", position: "Position", gps: "GPS", ekf: "EKF",
      ok: "ok", bad: "not ok", link: "Link", lastHeard: "Last heard", secondsAgo: "s ago", packetLoss: "Packets lost",
      latency: "Latency", notReported: "not reported",
      mission: "Mission", waypoint: "Waypoint", coverage: "coverage", noMission: "no mission", incident: "Incident",
      plan: "Plan",
      control: "Control", controlledBy: "Held by", nobody: "nobody", takeControl: "Take control",
      takeOver: "Take over", release: "Release", you: " (you)",
      commands: "Commands", hold: "Hold", resume: "Continue", rtl: "Return (RTL)", land: "Land", photo: "Photo",
      lookHere: "Look here", lookHint: "Click the map where the camera should look (Esc cancels)",
      lookSent: "Camera pointed at",
      confirmTitle: "Confirm command", confirmText: "Send \u201c{action}\u201d to {vehicle}? This changes its flight.",
      confirm: "Send", cancel: "Cancel", sending: "sending…", sent: "sent",
      notPilot: "Not allowed: only a pilot (pilot role) may control or command a vehicle.",
      conflict: "Control conflict: ", unavailable: "Vehicle unavailable: ", tokenRejected: "Sign-in expired, sign in again: ",
      photos: "Latest photos", noPhotos: "no photos yet", video: "Video", noVideo: "no video stream",
      rtspNote: "A browser cannot play RTSP: open this address in a video player.",
      notServedHere: "The image is not on this server: its address only.",
      alt: "alt",
    },
    evt: {
      "vehicle.command": "Vehicle command", "vehicle.control": "Vehicle control", "vehicle.photo": "Vehicle photo",
    },
  },
};

function num(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** The image address to show as an <img>: only http(s) on this very host (no request leaves it). */
export function localImageUrl(fileUrl, location = window.location) {
  if (typeof fileUrl !== "string" || !fileUrl) return null;
  let url;
  try { url = new URL(fileUrl, location.href); } catch { return null; }
  if (!["http:", "https:"].includes(url.protocol) || url.host !== location.host) return null;
  return url.href;
}

export async function install(ctx) {
  const { h, t, api, state } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_vehicle.css";
  document.head.append(link);

  const my = {
    selected: null,
    lastHeard: new Map(), // name -> ISO time of its last telemetry
    photos: new Map(), // name -> [photo, ...] newest first
    progress: new Map(), // name -> the last plan.progress of its flight
    reached: new Map(), // name -> last mission item reached (vehicle.mission_reached)
    pending: null, // the action in flight
    error: null, // readable reason of the last refusal
    notice: null, // what was last done
    look: false,
    lookMarker: null,
    commandsSent: [], // for tests: {action, vehicle, at}
    collapsed: false,
  };

  const me = () => state.feedUser || ctx.operatorName();
  const vehicle = () => (my.selected ? state.vehicles.get(my.selected) : null);

  // ---------------------------------------------------------------- DOM skeleton (built once)
  const field = (name) => h("span", { class: "vd-value", dataset: { field: name } }, "—");
  const cell = (label, name) => h("div", { class: "vd-cell" }, h("span", { class: "vd-label" }, t(label)), field(name));
  const commandButton = (action) => h("button", {
    type: "button", class: `vd-cmd vd-${action}`, dataset: { action },
    onclick: () => sendCommand(action),
  }, t(`vehiclePanel.${action}`));
  const body = h("div", { class: "vd-body" });
  const empty = h("div", { class: "empty vd-empty" }, t("vehiclePanel.none"));
  const toggle = h("button", {
    type: "button", class: "vd-collapse link-btn", "aria-expanded": "true",
    onclick: () => { my.collapsed = !my.collapsed; render(); },
  }, "▾");
  const title = h("span", { class: "vd-title" });
  const section = h("section", { class: "panel", id: "vehicle-detail-panel", "aria-label": t("vehiclePanel.panel") },
    h("h2", {}, toggle, h("span", {}, t("vehiclePanel.panel")), " ", title,
      h("button", { type: "button", class: "vd-close link-btn", title: t("vehiclePanel.close"),
        onclick: () => select(null) }, "×")),
    empty, body);

  body.append(
    h("div", { class: "vd-grid" },
      cell("vehiclePanel.mode", "mode"), cell("vehiclePanel.battery", "battery"), cell("vehiclePanel.height", "height"),
      cell("vehiclePanel.speed", "speed"), cell("vehiclePanel.heading", "heading"), cell("vehiclePanel.position", "position"),
      cell("vehiclePanel.gps", "gps"), cell("vehiclePanel.ekf", "ekf")),
    h("div", { class: "vd-grid" },
      cell("vehiclePanel.link", "link"), cell("vehiclePanel.lastHeard", "lastHeard"), cell("vehiclePanel.packetLoss", "packetLoss")),
    h("div", { class: "vd-row vd-mission" }, h("span", { class: "vd-label" }, t("vehiclePanel.mission")), field("mission"),
      h("div", { class: "vd-bar" }, h("div", { class: "vd-bar-fill" }))),
    h("div", { class: "vd-row vd-control" }, h("span", { class: "vd-label" }, t("vehiclePanel.controlledBy")),
      field("controller"),
      h("button", { type: "button", class: "vd-take", onclick: () => takeControl(false) }, t("vehiclePanel.takeControl")),
      h("button", { type: "button", class: "vd-takeover", onclick: () => takeControl(true) }, t("vehiclePanel.takeOver")),
      h("button", { type: "button", class: "vd-release", onclick: () => releaseControl() }, t("vehiclePanel.release"))),
    h("div", { class: "vd-commands" }, COMMANDS.map(commandButton),
      h("button", { type: "button", class: "vd-cmd vd-look", "aria-pressed": "false", onclick: () => setLook(!my.look) },
        t("vehiclePanel.lookHere"))),
    h("div", { class: "vd-hint muted", hidden: true }, t("vehiclePanel.lookHint")),
    h("div", { class: "vd-error", role: "alert", hidden: true }),
    h("div", { class: "vd-notice muted", role: "status", hidden: true }),
    h("div", { class: "vd-media" },
      h("div", { class: "vd-label" }, t("vehiclePanel.video")), h("div", { class: "vd-video" }),
      h("div", { class: "vd-label" }, t("vehiclePanel.photos")), h("ul", { class: "vd-photos" })));
  const anchor = ctx.sidebar.querySelector("#vehicle-panel");
  if (anchor) anchor.after(section); else ctx.sidebar.append(section);

  // The confirmation dialog: a modal <dialog> naming the vehicle and the action.
  const dialogText = h("p", { class: "vd-confirm-text" });
  const dialog = h("dialog", { id: "vehicle-confirm", class: "vd-dialog" },
    h("form", { method: "dialog" },
      h("h3", {}, t("vehiclePanel.confirmTitle")), dialogText,
      h("div", { class: "vd-dialog-buttons" },
        h("button", { value: "cancel", class: "vd-confirm-cancel" }, t("vehiclePanel.cancel")),
        h("button", { value: "ok", class: "vd-confirm-ok" }, t("vehiclePanel.confirm")))));
  document.body.append(dialog);

  function confirmCommand(name, action) {
    dialogText.textContent = t("vehiclePanel.confirmText").replace("{vehicle}", name)
      .replace("{action}", t(`vehiclePanel.${action}`));
    dialog.querySelector(".vd-confirm-cancel").textContent = t("vehiclePanel.cancel");
    dialog.querySelector(".vd-confirm-ok").textContent = t("vehiclePanel.confirm");
    dialog.querySelector("h3").textContent = t("vehiclePanel.confirmTitle");
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector(".vd-confirm-cancel").focus(); // the safe choice has the focus
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  // ---------------------------------------------------------------- rendering (values in place)
  const set = (name, text, cls = null) => {
    const el = body.querySelector(`[data-field="${name}"]`);
    el.textContent = text;
    el.className = `vd-value${cls ? ` ${cls}` : ""}`;
  };

  function missionOf(v) {
    const fromPlans = [...state.plans.values()]
      .filter((p) => p.vehicle === v.name && PLAN_FLYING.has(p.state))
      .sort((a, b) => b.id - a.id)[0];
    const progress = my.progress.get(v.name) ?? fromPlans?.progress ?? null;
    return { plan: fromPlans ?? null, progress };
  }

  function missionText(v) {
    const { plan, progress } = missionOf(v);
    const parts = [];
    if (v.incident_id != null) parts.push(`${t("vehiclePanel.incident")} #${v.incident_id}`);
    if (plan) parts.push(`${t("vehiclePanel.plan")} ${plan.id}`);
    let fraction = null;
    if (progress?.item != null) {
      parts.push(`${t("vehiclePanel.waypoint")} ${progress.item}/${progress.items ?? "?"}`);
      if (progress.items) fraction = Math.min(1, progress.item / progress.items);
    } else if (my.reached.has(v.name) && v.incident_id != null) {
      parts.push(`${t("vehiclePanel.waypoint")} ${my.reached.get(v.name)}`);
    }
    if (typeof progress?.coverage === "number") {
      parts.push(`${t("vehiclePanel.coverage")} ${Math.round(progress.coverage * 100)} %`);
      fraction = progress.coverage;
    } else if (fraction !== null) {
      parts.push(`${Math.round(fraction * 100)} %`);
    }
    return { text: parts.length ? parts.join(" · ") : t("vehiclePanel.noMission"), fraction };
  }

  function lastHeardText(v) {
    const at = my.lastHeard.get(v.name);
    if (typeof v.last_heard_age_s === "number") return [`${num(v.last_heard_age_s, 0)} ${t("vehiclePanel.secondsAgo")}`, v.last_heard_age_s > LINK_STALE_S];
    if (!at) return ["—", false];
    const age = Math.max(0, (Date.now() - Date.parse(at)) / 1000);
    return [`${ctx.formatTime(at)} (${num(age, 0)} ${t("vehiclePanel.secondsAgo")})`, age > LINK_STALE_S];
  }

  function renderPhotos(v) {
    const list = body.querySelector(".vd-photos");
    const photos = my.photos.get(v.name) ?? [];
    const key = `${v.name}|${photos.map((p) => `${p.index}@${p.time}`).join(",")}`;
    if (list.dataset.key === key) return; // unchanged: keep the images as they are
    list.dataset.key = key;
    list.replaceChildren(...(photos.length ? photos.map((p) => {
      const src = localImageUrl(p.file_url);
      return h("li", { class: "vd-photo", dataset: { index: p.index ?? "" } },
        src ? h("img", { src, alt: `${v.name} ${p.index ?? ""}`, loading: "lazy" }) : null,
        h("div", {}, `${ctx.formatDateTime(p.time)} · ${num(p.lon, 5)}, ${num(p.lat, 5)} · ${t("vehiclePanel.alt")} ${num(p.alt_amsl_m, 0)} m`),
        p.file_url ? h("div", { class: "vd-url" }, p.file_url) : null,
        p.file_url && !src ? h("div", { class: "muted" }, t("vehiclePanel.notServedHere")) : null);
    }) : [h("li", { class: "muted" }, t("vehiclePanel.noPhotos"))]));
  }

  function renderVideo(v) {
    const box = body.querySelector(".vd-video");
    const url = v.video_url;
    if (box.dataset.url === (url ?? "")) return;
    box.dataset.url = url ?? "";
    if (!url) { box.replaceChildren(h("span", { class: "muted" }, t("vehiclePanel.noVideo"))); return; }
    const playable = localImageUrl(url); // an http(s) stream on this host: a <video> can try it
    box.replaceChildren(...[
      playable ? h("video", { src: playable, controls: true, muted: true, preload: "none" }) : null,
      h("code", { class: "vd-url" }, url),
      /^rtsps?:/i.test(url) ? h("div", { class: "muted" }, t("vehiclePanel.rtspNote")) : null,
    ].filter(Boolean));
  }

  function render() {
    const v = vehicle();
    toggle.textContent = my.collapsed ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!my.collapsed));
    section.classList.toggle("collapsed", my.collapsed);
    section.dataset.vehicle = v?.name ?? "";
    empty.hidden = Boolean(v) || my.collapsed;
    body.hidden = !v || my.collapsed;
    title.textContent = v ? `${v.name} · ${t(`vehicleState.${v.state}`)}` : "";
    if (!v) return;
    set("mode", `${v.mode ?? "—"} · ${v.armed ? t("vehiclePanel.armed") : t("vehiclePanel.disarmed")}`);
    set("battery", `${num(v.battery_pct, 0)} %`, typeof v.battery_pct === "number" && v.battery_pct < 30 ? "low" : null);
    set("height", `${num(v.alt_rel_m, 1)} m`);
    set("speed", `${num(v.groundspeed_mps, 1)} m/s`);
    set("heading", `${num(v.heading_deg, 0)}°`);
    set("position", `${num(v.lon, 5)}, ${num(v.lat, 5)}`);
    // GPS and EKF health only when the vehicle's view reports them.
    const gps = v.gps_fix ?? v.gps_fix_type;
    set("gps", gps != null ? `${gps}${v.satellites != null ? ` · ${v.satellites} sat` : ""}` : t("vehiclePanel.notReported"),
      gps == null ? "muted" : null);
    set("ekf", v.ekf_ok == null ? t("vehiclePanel.notReported") : (v.ekf_ok ? t("vehiclePanel.ok") : t("vehiclePanel.bad")),
      v.ekf_ok == null ? "muted" : (v.ekf_ok ? null : "low"));
    set("link", t(`link.${v.link}`), v.link === "connected" ? "ok" : "low");
    const [heard, stale] = lastHeardText(v);
    set("lastHeard", heard, stale ? "low" : null);
    set("packetLoss", typeof v.packet_loss === "number" ? `${num(v.packet_loss * 100, 1)} %` : t("vehiclePanel.notReported"),
      typeof v.packet_loss === "number" ? null : "muted");
    const mission = missionText(v);
    set("mission", mission.text);
    body.querySelector(".vd-bar-fill").style.width = `${Math.round((mission.fraction ?? 0) * 100)}%`;
    body.querySelector(".vd-bar").hidden = mission.fraction === null;
    const holder = v.controller ?? null;
    set("controller", holder ? `${holder}${holder === me() ? t("vehiclePanel.you") : ""}` : t("vehiclePanel.nobody"));
    body.querySelector(".vd-take").hidden = holder !== null;
    body.querySelector(".vd-takeover").hidden = holder === null || holder === me();
    body.querySelector(".vd-release").hidden = holder !== me();
    for (const button of body.querySelectorAll(".vd-commands button, .vd-control button")) {
      button.disabled = my.pending !== null;
    }
    for (const button of body.querySelectorAll(".vd-cmd[data-action]")) {
      button.textContent = my.pending === button.dataset.action ? t("vehiclePanel.sending") : t(`vehiclePanel.${button.dataset.action}`);
    }
    const look = body.querySelector(".vd-look");
    look.setAttribute("aria-pressed", String(my.look));
    look.classList.toggle("active", my.look);
    body.querySelector(".vd-hint").hidden = !my.look;
    const error = body.querySelector(".vd-error");
    error.hidden = !my.error;
    error.textContent = my.error ?? "";
    const notice = body.querySelector(".vd-notice");
    notice.hidden = !my.notice;
    notice.textContent = my.notice ?? "";
    renderVideo(v);
    renderPhotos(v);
  }

  function markRows() {
    for (const el of document.querySelectorAll("#vehicle-list .vehicle[data-name], .vehicle-marker[data-name]")) {
      el.classList.toggle("vd-selected", el.dataset.name === my.selected);
    }
  }

  function select(name) {
    if (name !== null && !state.vehicles.has(name)) return;
    if (name !== my.selected) {
      setLook(false);
      my.error = null;
      my.notice = null;
      body.querySelector(".vd-video").dataset.url = "\u0000"; // redraw for the new vehicle
    }
    my.selected = name;
    my.collapsed = false;
    render();
    markRows();
  }

  // ---------------------------------------------------------------- commands

  /** A refusal in plain words: a 403 says only a pilot may command; 409 who holds control. */
  function refusalText(err) {
    if (err?.status === 403) return `${t("vehiclePanel.notPilot")} (403: ${err.detail || ""})`;
    if (err?.status === 409) return `${t("vehiclePanel.conflict")}${err.detail}`;
    if (err?.status === 503) return `${t("vehiclePanel.unavailable")}${err.detail}`;
    if (err?.status === 401) return `${t("vehiclePanel.tokenRejected")}${err.detail}`;
    return err?.message ?? String(err);
  }

  async function run(action, fn) {
    my.pending = action;
    my.error = null;
    my.notice = null;
    render();
    try {
      await fn();
    } catch (err) {
      my.error = refusalText(err);
      ctx.logEvent("console.error", null, `${my.selected ?? ""} ${action}: ${my.error}`);
    } finally {
      my.pending = null;
      render();
    }
  }

  function updateVehicle(name, patch) {
    const v = state.vehicles.get(name);
    if (!v) return;
    state.vehicles.set(name, { ...v, ...patch });
    ctx.markDirty("vehicles");
    ctx.markDirty(`vehicle:${name}`);
  }

  async function takeControl(force) {
    const name = my.selected;
    if (!name) return;
    await run(force ? "takeover" : "take", async () => {
      const body = await api(`/api/vehicles/${encodeURIComponent(name)}/control`,
        { method: "POST", body: { operator: me(), force } });
      updateVehicle(name, { controller: body?.operator ?? me() });
    });
  }

  async function releaseControl() {
    const name = my.selected;
    if (!name) return;
    await run("release", async () => {
      await api(`/api/vehicles/${encodeURIComponent(name)}/control`, { method: "DELETE", body: { operator: me() } });
      updateVehicle(name, { controller: null });
    });
  }

  /** Take control if someone else's (or nobody's) and send one command. */
  async function command(name, action, extra = {}) {
    const v = state.vehicles.get(name);
    if (v?.controller !== me()) {
      const taken = await api(`/api/vehicles/${encodeURIComponent(name)}/control`,
        { method: "POST", body: { operator: me(), force: false } });
      updateVehicle(name, { controller: taken?.operator ?? me() });
    }
    const result = await api(`/api/vehicles/${encodeURIComponent(name)}/command`,
      { method: "POST", body: { operator: me(), action, ...extra } });
    my.commandsSent.push({ vehicle: name, action, at: new Date().toISOString() });
    return result;
  }

  async function sendCommand(action) {
    const name = my.selected;
    if (!name || my.pending) return;
    if (FLIGHT_CHANGING.has(action) && !(await confirmCommand(name, action))) return; // dismissed: nothing sent
    await run(action, async () => {
      const result = await command(name, action);
      if (action === "photo" && result?.image) addPhoto(name, result.image);
      my.notice = `${t(`vehiclePanel.${action}`)} · ${t("vehiclePanel.sent")}`;
      ctx.logEvent("console.info", null, `${name} ${t(`vehiclePanel.${action}`)}`);
    });
  }

  function addPhoto(name, photo) {
    const list = (my.photos.get(name) ?? []).filter((p) => !(p.index === photo.index && p.time === photo.time));
    list.unshift(photo);
    my.photos.set(name, list.slice(0, PHOTOS_KEPT));
    if (name === my.selected) render();
  }

  // ---------------------------------------------------------------- look here

  function setLook(on) {
    my.look = Boolean(on) && my.selected !== null;
    const canvas = state.map?.getCanvas();
    if (canvas) canvas.style.cursor = my.look ? "crosshair" : "";
    if (my.selected) render();
  }

  function placeLookMarker(lngLat) {
    if (!my.lookMarker) {
      my.lookMarker = new ctx.maplibregl.Marker({
        element: h("div", { class: "vd-look-marker", title: t("vehiclePanel.lookHere") }),
      });
    }
    my.lookMarker.setLngLat(lngLat).addTo(state.map);
  }

  async function lookAt(displayLngLat) {
    const name = my.selected;
    if (!name) return;
    setLook(false);
    const [lon, lat] = fromDisplay([displayLngLat.lng, displayLngLat.lat]);
    placeLookMarker(displayLngLat);
    await run("look_at", async () => {
      await command(name, "look_at", { lon, lat });
      my.notice = `${t("vehiclePanel.lookSent")} ${num(lon, 5)}, ${num(lat, 5)}`;
    });
  }

  ctx.onMapLoad((map) => {
    map.on("click", (ev) => { if (my.look) lookAt(ev.lngLat); });
  });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && my.look) setLook(false); });

  // Selecting: a press on a row of the vehicle list or on a marker. On the press, not the click: the
  // rows are redrawn with every telemetry frame, and a click needs the same element under its press
  // and its release. Capture phase: the marker's own handler stops the event.
  document.addEventListener("pointerdown", (ev) => {
    const el = ev.target instanceof Element ? ev.target.closest("#vehicle-list .vehicle[data-name], .vehicle-marker[data-name]") : null;
    if (el) select(el.dataset.name);
  }, true);

  // ---------------------------------------------------------------- live events

  ctx.on("vehicle.telemetry", (d, event) => {
    if (d?.name) my.lastHeard.set(d.name, event?.time ?? new Date().toISOString());
  });
  ctx.on("plan.progress", (d) => { if (d?.vehicle) my.progress.set(d.vehicle, d); });
  ctx.on("plan.state", (d) => {
    if (d?.vehicle && !PLAN_FLYING.has(d.state)) my.progress.delete(d.vehicle);
  });
  ctx.on("vehicle.mission_reached", (d) => { if (d?.name) my.reached.set(d.name, d.seq); });
  ctx.on("vehicle.control", (d) => { if (d?.name) updateVehicle(d.name, { controller: d.operator ?? null }); });
  ctx.on("vehicle.photo", (d) => { if (d?.name) addPhoto(d.name, d); });
  ctx.on("vehicle.command", () => {}); // shown in the event log (registered so it is not counted as unknown)

  ctx.onFlush((dirty) => {
    if (dirty.has("vehicles")) markRows();
    if (my.selected && (dirty.has(`vehicle:${my.selected}`) || dirty.has("plans"))) render();
  });
  setInterval(() => { if (my.selected && !my.collapsed) render(); }, 1000); // "last heard … s ago"

  render();
  state.vehicle = {
    select,
    get selected() { return my.selected; },
    get lookMode() { return my.look; },
    get error() { return my.error; },
    photos: (name) => [...(my.photos.get(name) ?? [])],
    commandsSent: my.commandsSent,
    lookMarker: () => (my.lookMarker ? my.lookMarker.getLngLat().toArray() : null),
  };
}
