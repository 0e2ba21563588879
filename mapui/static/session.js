// Sign-in, API calls and the live feed for the department view and the crew app.
//
// A person signs in with their user id and password (POST /api/auth/sign-in); the short-lived token
// is kept in localStorage under `storageKey` and sent as a bearer token with every request. The live
// feed (/ws) opens with {"type": "hello", "token": ...} and then receives
// {"type": "welcome", ...} and {"type": "frame", "events": [...]} messages (docs/live-feed.md); the
// server sends each person only what their role may see.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export class Session {
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.ws = null;
    this.closed = false;
  }

  get token() {
    try { return window.localStorage.getItem(this.storageKey); } catch { return null; }
  }

  get user() {
    try { return JSON.parse(window.localStorage.getItem(`${this.storageKey}.user`) || "null"); } catch { return null; }
  }

  get expiresAt() {
    try { return window.localStorage.getItem(`${this.storageKey}.expires`); } catch { return null; }
  }

  /** Whether a token is held that has not run out yet. */
  get signedIn() {
    const exp = this.expiresAt;
    return Boolean(this.token) && (!exp || Date.parse(exp) > Date.now());
  }

  async signIn(user, password) {
    const body = await this.api("/api/auth/sign-in", { method: "POST", body: { user, password }, anonymous: true });
    window.localStorage.setItem(this.storageKey, body.token);
    window.localStorage.setItem(`${this.storageKey}.user`, JSON.stringify(body.user));
    window.localStorage.setItem(`${this.storageKey}.expires`, body.expires_at || "");
    return body.user;
  }

  signOut() {
    for (const k of [this.storageKey, `${this.storageKey}.user`, `${this.storageKey}.expires`]) {
      try { window.localStorage.removeItem(k); } catch { /* storage unavailable */ }
    }
    this.disconnect();
  }

  /** JSON in, JSON out; an ApiError with the server's detail for any answer but 2xx. */
  async api(path, { method = "GET", body, anonymous = false, headers = {}, raw } = {}) {
    const h = { Accept: "application/json", ...headers };
    if (!anonymous && this.token) h.Authorization = `Bearer ${this.token}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await fetch(path, { method, headers: h, body: payload });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
    if (!res.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : JSON.stringify(data?.detail ?? text);
      throw new ApiError(res.status, detail);
    }
    return data;
  }

  /** Open the live feed; `onEvent(event)` for each event, `onState(state)` with open/closed/refused. */
  connect(onEvent, onState = () => {}) {
    this.closed = false;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: this.token || null }));
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch { return; }
      if (data.type === "welcome") onState("open", data);
      else if (data.type === "frame") for (const e of data.events || []) onEvent(e);
      else if (data.kind) onEvent(data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4401 || ev.code === 4403) { onState("refused", ev); return; }
      onState("closed", ev);
      if (!this.closed) window.setTimeout(() => { if (!this.closed) this.connect(onEvent, onState); }, 2000);
    };
    return ws;
  }

  disconnect() {
    this.closed = true;
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
  }
}

/** A small text lookup: `t(key)` in the page's language, falling back to English, then the key. */
export function translator(dictionary, lang) {
  return (key, vars = {}) => {
    const text = (dictionary[lang] && dictionary[lang][key]) || dictionary.en[key] || key;
    return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
  };
}

/** A time in Asia/Shanghai (the district's time zone), e.g. "11-26 14:05". */
export function localTime(iso, lang = "zh-CN") {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  });
}
