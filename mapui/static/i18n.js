// Console strings (zh-CN default, English toggle) and Asia/Shanghai time formatting.

export const TIME_ZONE = "Asia/Shanghai"; // UI shows local time; data is UTC (DESIGN.md)

const STRINGS = {
  zh: {
    title: "应急指挥 · 调度台",
    incidents: "事件",
    vehicles: "无人装备",
    sensors: "传感器",
    events: "事件日志",
    sensorsOnline: "在线",
    noIncidents: "暂无事件",
    noVehicles: "暂无装备",
    approve: "批准派遣",
    approving: "正在提交…",
    ack: "确认",
    acked: "已确认",
    notAcked: "未确认",
    tasks: "部门联动任务",
    response: "响应级别",
    opened: "发生时间",
    updated: "更新",
    status: "状态",
    dispatch: "派遣",
    evidence: "依据",
    showEvidence: "查看依据",
    langToggle: "English",
    connected: "实时连接",
    connecting: "连接中…",
    disconnected: "连接中断，重连中",
    operator: "值班员",
    operatorPlaceholder: "姓名",
    askToken: "请输入调度令牌（Bearer token）以批准派遣：",
    askName: "请输入确认人姓名：",
    tokenMissing: "未提供令牌，未提交。",
    tokenRejected: "令牌无效，请重新输入。",
    requestFailed: "请求失败",
    networkError: "网络错误",
    level: { blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色" },
    incidentStatus: { open: "待处置", dispatched: "已派遣", closed: "已关闭" },
    dispatchState: {
      uploading: "上传航线", flying: "执行中", returning: "返航中",
      landed: "已完成", failed: "失败",
    },
    kind: { flood: "洪水", rainstorm: "暴雨" },
    vehicleType: { copter: "无人机", boat: "无人船" },
    vehicleState: { ready: "待命", on_task: "执行任务", lost: "失联", offline: "离线" },
    link: { connected: "链路正常", lost: "链路丢失", never: "未连接" },
    armed: "已解锁",
    disarmed: "未解锁",
    battery: "电量",
    altitude: "相对高度",
    speed: "地速",
    heading: "航向",
    sensorStatus: { online: "在线", offline: "离线", unknown: "未知" },
    sensorKind: { river_level: "水位站", rain_gauge: "雨量站" },
    latest: "最新读数",
    noReading: "暂无读数",
    thresholds: "阈值",
    flag: "质量标记",
    facility: {
      town: "镇街", hospital: "医院", school: "学校", fire_station: "消防站",
      drone_base: "无人机基地", boat_base: "无人船基地", landslide_slope: "滑坡隐患点",
      weather_station: "气象站",
    },
    population: "人口",
    airspace: { prohibited: "禁飞区", height_limited: "限高区", controlled: "管制空域" },
    ceiling: "限高（离地）",
    legend: "图例",
    evt: {
      "sensor.reading": "读数",
      "sensor.status": "传感器状态",
      "reading.rejected": "读数被拒",
      "incident.opened": "新事件",
      "incident.updated": "事件更新",
      "incident.resolved": "事件解除",
      "dispatch.approved": "派遣已批准",
      "dispatch.refused": "派遣被拒",
      "mission.uploaded": "航线已上传",
      "mission.completed": "任务完成",
      "dispatch.state": "派遣进展",
      "vehicle.connected": "装备上线",
      "vehicle.mode": "飞行模式",
      "vehicle.mission_reached": "到达航点",
      "vehicle.statustext": "装备消息",
      "vehicle.telemetry": "遥测",
      "vehicle.lost": "装备失联",
      "vehicle.recovered": "装备恢复",
      "task.created": "联动任务",
      "task.acknowledged": "任务已确认",
      "console.error": "操作失败",
      "console.info": "操作",
      "console.resync": "重新同步",
    },
  },
  en: {
    title: "Yingji · Dispatcher console",
    incidents: "Incidents",
    vehicles: "Vehicles",
    sensors: "Sensors",
    events: "Event log",
    sensorsOnline: "online",
    noIncidents: "No incidents",
    noVehicles: "No vehicles",
    approve: "Approve dispatch",
    approving: "Submitting…",
    ack: "Acknowledge",
    acked: "Acknowledged",
    notAcked: "Not yet acknowledged",
    tasks: "Department tasks",
    response: "Response level",
    opened: "Opened",
    updated: "Updated",
    status: "Status",
    dispatch: "Dispatch",
    evidence: "Evidence",
    showEvidence: "Show evidence",
    langToggle: "中文",
    connected: "Live",
    connecting: "Connecting…",
    disconnected: "Disconnected, retrying",
    operator: "Operator",
    operatorPlaceholder: "name",
    askToken: "Enter the dispatcher token (Bearer) to approve the dispatch:",
    askName: "Acknowledged by (name):",
    tokenMissing: "No token given; nothing sent.",
    tokenRejected: "Token rejected; please enter it again.",
    requestFailed: "Request failed",
    networkError: "Network error",
    level: { blue: "Blue", yellow: "Yellow", orange: "Orange", red: "Red" },
    incidentStatus: { open: "Open", dispatched: "Dispatched", closed: "Closed" },
    dispatchState: {
      uploading: "Uploading", flying: "Flying", returning: "Returning",
      landed: "Landed", failed: "Failed",
    },
    kind: { flood: "Flood", rainstorm: "Rainstorm" },
    vehicleType: { copter: "Drone", boat: "Boat" },
    vehicleState: { ready: "Ready", on_task: "On task", lost: "Lost", offline: "Offline" },
    link: { connected: "Link OK", lost: "Link lost", never: "Never connected" },
    armed: "Armed",
    disarmed: "Disarmed",
    battery: "Battery",
    altitude: "Alt (rel)",
    speed: "Ground speed",
    heading: "Heading",
    sensorStatus: { online: "Online", offline: "Offline", unknown: "Unknown" },
    sensorKind: { river_level: "River gauge", rain_gauge: "Rain gauge" },
    latest: "Latest reading",
    noReading: "No reading yet",
    thresholds: "Thresholds",
    flag: "QC flag",
    facility: {
      town: "Town", hospital: "Hospital", school: "School", fire_station: "Fire station",
      drone_base: "Drone base", boat_base: "Boat base", landslide_slope: "Landslide slope",
      weather_station: "Weather station",
    },
    population: "Population",
    airspace: { prohibited: "No-fly zone", height_limited: "Height-limited", controlled: "Controlled" },
    ceiling: "Ceiling (AGL)",
    legend: "Legend",
    evt: {
      "sensor.reading": "Reading",
      "sensor.status": "Sensor status",
      "reading.rejected": "Reading rejected",
      "incident.opened": "Incident opened",
      "incident.updated": "Incident updated",
      "incident.resolved": "Incident closed",
      "dispatch.approved": "Dispatch approved",
      "dispatch.refused": "Dispatch refused",
      "mission.uploaded": "Mission uploaded",
      "mission.completed": "Mission completed",
      "dispatch.state": "Dispatch progress",
      "vehicle.connected": "Vehicle connected",
      "vehicle.mode": "Vehicle mode",
      "vehicle.mission_reached": "Waypoint reached",
      "vehicle.statustext": "Vehicle message",
      "vehicle.telemetry": "Telemetry",
      "vehicle.lost": "Vehicle lost",
      "vehicle.recovered": "Vehicle recovered",
      "task.created": "Task created",
      "task.acknowledged": "Task acknowledged",
      "console.error": "Action failed",
      "console.info": "Action",
      "console.resync": "Resynchronised",
    },
  },
};

let lang = "zh";

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** Look up a dotted key ("level.red"); falls back to the key's last part. */
export function t(key) {
  const walk = (table) => key.split(".").reduce((node, part) => (node == null ? node : node[part]), table);
  const found = walk(STRINGS[lang]) ?? walk(STRINGS.en);
  return typeof found === "string" ? found : key.split(".").pop();
}

/** Label of an event kind ("incident.opened"), whose own name contains dots. */
export function eventLabel(kind) {
  return STRINGS[lang].evt[kind] ?? STRINGS.en.evt[kind] ?? kind;
}

/** Pick the language's variant of a bilingual field pair (name / name_zh). */
export function pick(obj, field) {
  if (!obj) return "";
  if (lang === "zh" && obj[`${field}_zh`]) return obj[`${field}_zh`];
  return obj[field] ?? obj[`${field}_zh`] ?? "";
}

const partsFormatter = new Intl.DateTimeFormat("en-CA", {
  timeZone: TIME_ZONE,
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23",
});

function parts(iso) {
  const date = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  const out = {};
  for (const p of partsFormatter.formatToParts(date)) out[p.type] = p.value;
  return out;
}

/** "2024-07-10 14:05:09" in Asia/Shanghai, or "—" for a missing/invalid time. */
export function formatDateTime(iso) {
  const p = iso ? parts(iso) : null;
  return p ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}` : "—";
}

/** "14:05:09" in Asia/Shanghai. */
export function formatTime(iso) {
  const p = iso ? parts(iso) : null;
  return p ? `${p.hour}:${p.minute}:${p.second}` : "—";
}
