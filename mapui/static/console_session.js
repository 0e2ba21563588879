// Sign-in for the dispatcher console (top bar): user and password → POST /api/auth/sign-in → a
// short-lived token kept under ctx.TOKEN_KEY, which the console sends with every request and in the
// live feed's hello. While signed in the top bar shows the person's name and roles and a sign-out,
// and the operator field holds their user id (it is what the service records anyway). A request
// answered 401 (users configured and no token, or the token ran out) opens the sign-in form.
// A token from #token=... (the service's API token) keeps working as before: it is simply held.

const USER_KEY = "yingji.user"; // {id, name, name_zh, roles, department, crew}
const EXPIRES_KEY = "yingji.token.expires"; // ISO time the sign-in token runs out
const OPERATOR_KEY = "yingji.operator"; // console.js keeps the typed operator name here
const EXPIRY_MARGIN_MS = 5000; // open the form a little before the token runs out

const STRINGS = {
  zh: {
    session: {
      signIn: "登录", signOut: "退出", user: "用户名", password: "密码", submit: "登录",
      cancel: "取消", signingIn: "登录中…", required: "请输入用户名和密码",
      refused: "登录失败", expired: "登录已过期，请重新登录", needed: "请登录后使用调度台",
      signedIn: "已登录", signedOut: "已退出登录", apiToken: "API 令牌",
      role: { admin: "管理员", duty_chief: "值班领导", dispatcher: "调度员", pilot: "飞手", department: "部门",
        crew: "救援队员", viewer: "只读" },
    },
  },
  en: {
    session: {
      signIn: "Sign in", signOut: "Sign out", user: "User", password: "Password", submit: "Sign in",
      cancel: "Cancel", signingIn: "Signing in…", required: "Enter your user id and password",
      refused: "Sign-in refused", expired: "Your sign-in ran out: sign in again", needed: "Sign in to use the console",
      signedIn: "Signed in", signedOut: "Signed out", apiToken: "API token",
      role: { admin: "admin", duty_chief: "duty chief", dispatcher: "dispatcher", pilot: "pilot",
        department: "department", crew: "crew", viewer: "viewer" },
    },
  },
};

/** The held user, or null (a malformed entry counts as none). */
export function parseUser(text) {
  if (!text) return null;
  try {
    const user = JSON.parse(text);
    return user && typeof user.id === "string" && user.id ? user : null;
  } catch {
    return null;
  }
}

/** Milliseconds until `expiresAt` (ISO) from `now`; Infinity when there is no (valid) expiry. */
export function msUntil(expiresAt, now = Date.now()) {
  const at = expiresAt ? Date.parse(expiresAt) : NaN;
  return Number.isFinite(at) ? at - now : Infinity;
}

export async function install(ctx) {
  const { h, t } = ctx;
  ctx.addStrings(STRINGS);
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/console_session.css";
  document.head.append(link);

  const s = {
    open: false, busy: false, error: "", note: "", expiryTimer: null, waiters: [],
    user: "", // the user id typed so far (the form is rebuilt on every change)
  };
  const operator = document.getElementById("operator-name");
  const box = h("span", { id: "session", class: "session" });
  const topbar = document.getElementById("topbar");
  topbar.insertBefore(box, operator?.closest("label") ?? document.getElementById("conn-status"));

  const heldUser = () => parseUser(ctx.storageGet(USER_KEY));
  const heldToken = () => ctx.storageGet(ctx.TOKEN_KEY);

  function roleText(roles) {
    return (roles ?? []).map((r) => t(`session.role.${r}`)).join(", ");
  }

  function applyOperator() {
    const user = heldUser();
    if (!operator) return;
    if (user && heldToken()) {
      operator.value = user.id;
      operator.readOnly = true;
      operator.title = t("session.signedIn");
    } else if (operator.readOnly) {
      operator.readOnly = false;
      operator.title = "";
      operator.value = ctx.storageGet(OPERATOR_KEY) ?? "";
    }
  }

  function scheduleExpiry() {
    clearTimeout(s.expiryTimer);
    const left = msUntil(ctx.storageGet(EXPIRES_KEY));
    if (!heldToken() || !Number.isFinite(left)) return;
    // setTimeout takes at most 2^31-1 ms; a token lives minutes, so this only guards odd clocks
    s.expiryTimer = setTimeout(() => {
      s.note = t("session.expired");
      openForm();
    }, Math.min(Math.max(0, left - EXPIRY_MARGIN_MS), 2 ** 31 - 1));
  }

  function render() {
    const user = heldUser();
    const token = heldToken();
    const parts = [];
    if (user && token) {
      parts.push(
        h("span", { class: "session-user", title: user.id },
          h("strong", {}, ctx.pick(user, "name") || user.id),
          h("span", { class: "session-roles" }, roleText(user.roles))),
        h("button", { type: "button", class: "session-signout", onclick: signOut }, t("session.signOut")));
    } else {
      if (token) parts.push(h("span", { class: "session-user muted-light" }, t("session.apiToken")));
      parts.push(h("button", {
        type: "button", class: "session-signin", "aria-expanded": String(s.open),
        onclick: () => (s.open ? closeForm() : openForm()),
      }, t("session.signIn")));
    }
    if (s.open) parts.push(renderForm());
    box.replaceChildren(...parts);
  }

  function renderForm() {
    const form = h("form", {
      class: "session-form", novalidate: true, "aria-label": t("session.signIn"),
      onsubmit: (ev) => { ev.preventDefault(); submit(form); },
      onkeydown: (ev) => { if (ev.key === "Escape") { ev.preventDefault(); closeForm(); } },
    },
    s.note ? h("div", { class: "session-note" }, s.note) : null,
    h("label", {}, h("span", {}, t("session.user")),
      h("input", { name: "user", type: "text", autocomplete: "username", maxlength: 64, required: true,
        value: s.user || heldUser()?.id || "", oninput: (ev) => { s.user = ev.target.value; } })),
    h("label", {}, h("span", {}, t("session.password")),
      h("input", { name: "password", type: "password", autocomplete: "current-password", maxlength: 256,
        required: true })),
    s.error ? h("div", { class: "session-error", role: "alert" }, s.error) : null,
    h("div", { class: "session-buttons" },
      h("button", { type: "submit", class: "session-submit", disabled: s.busy },
        s.busy ? t("session.signingIn") : t("session.submit")),
      h("button", { type: "button", class: "session-cancel", onclick: closeForm }, t("session.cancel"))));
    return form;
  }

  function focusForm() {
    const field = box.querySelector(s.user || heldUser()?.id ? "input[name=password]" : "input[name=user]");
    field?.focus();
  }

  function openForm() {
    if (s.open) return;
    s.open = true;
    s.error = "";
    render();
    focusForm();
  }

  function closeForm() {
    s.open = false;
    s.error = "";
    s.note = "";
    render();
  }

  async function submit(form) {
    const user = form.elements.user.value.trim();
    const password = form.elements.password.value;
    s.user = user;
    if (!user || !password) {
      s.error = t("session.required");
      render();
      focusForm();
      return;
    }
    s.busy = true;
    s.error = "";
    render();
    try {
      // token "": no bearer; a stale token must not stand in for the person signing in
      const body = await ctx.api("/api/auth/sign-in", { method: "POST", body: { user, password }, token: "" });
      if (!body?.token || !body?.user?.id) throw new Error("the service answered without a token");
      ctx.storageSet(ctx.TOKEN_KEY, body.token);
      ctx.storageSet(USER_KEY, JSON.stringify(body.user));
      ctx.storageSet(EXPIRES_KEY, body.expires_at || null);
      s.busy = false;
      s.open = false;
      s.note = "";
      applyOperator();
      scheduleExpiry();
      render();
      ctx.logEvent("console.info", null, `${t("session.signedIn")}: ${body.user.id}`);
      const waiting = s.waiters.splice(0);
      if (waiting.length) waiting.forEach((resolve) => resolve());
      else { ctx.reconnect(); ctx.resync(t("session.signedIn")); }
    } catch (err) {
      s.busy = false;
      s.error = `${t("session.refused")}: ${err.detail || err.message}`;
      render();
      const field = box.querySelector("input[name=password]");
      if (field) { field.value = ""; field.focus(); }
    }
  }

  function signOut() {
    const user = heldUser();
    clearTimeout(s.expiryTimer);
    ctx.storageSet(ctx.TOKEN_KEY, null);
    ctx.storageSet(USER_KEY, null);
    ctx.storageSet(EXPIRES_KEY, null);
    applyOperator();
    render();
    ctx.logEvent("console.info", null, `${t("session.signedOut")}${user ? `: ${user.id}` : ""}`);
    ctx.reconnect();
    ctx.resync(t("session.signedOut"));
  }

  window.addEventListener("yingji:unauthorized", (ev) => {
    if (ev.detail?.path === "/api/auth/sign-in") return; // a refused sign-in says so in the form
    if (heldUser() && msUntil(ctx.storageGet(EXPIRES_KEY)) <= 0) s.note = t("session.expired");
    openForm();
  });

  // A token running out while the console stays open: say so and offer the form.
  if (heldUser() && msUntil(ctx.storageGet(EXPIRES_KEY)) <= 0) {
    ctx.storageSet(ctx.TOKEN_KEY, null);
    ctx.storageSet(EXPIRES_KEY, null);
  }
  applyOperator();
  scheduleExpiry();
  render();

  const lang = document.getElementById("lang-toggle");
  lang?.addEventListener("click", () => render());

  window.yingji.session = {
    user: heldUser,
    open: openForm,
    signOut,
    isOpen: () => s.open,
  };

  // With users configured nothing can be read without signing in, the district included: wait
  // for the sign-in before the console goes on (it would only retry and fail meanwhile).
  let needed = false;
  try {
    await ctx.api("/api/district");
  } catch (err) {
    needed = err.status === 401;
    if (!needed) return; // another problem: the console's own loading says so
  }
  if (!needed) return;
  s.note = heldUser() ? t("session.expired") : t("session.needed");
  const signedIn = new Promise((resolve) => s.waiters.push(resolve));
  if (s.open) { render(); focusForm(); } else openForm(); // the 401 may have opened it already
  await signedIn;
}
