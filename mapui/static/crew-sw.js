// Service worker of the field-crew app (/crew): keeps the app shell so the page opens and works
// with no network. Served from /crew-sw.js (Service-Worker-Allowed: /) and registered with scope
// /crew, so it controls the crew app only, never the console.
//
// - App shell (page, script, styles, session.js, MapLibre, manifest, icon): cache-first, and
//   refreshed in the background whenever the network answers, so the next start gets a new release
//   without a version bump (bump CACHE to drop every old copy at once).
// - /api/ and /ws: network only. Data offline is the page's job (IndexedDB: the outbox and the last
//   tasks, crew and map layers); a stale API answer from a cache would be a lie about the situation.
// - Anything else: the network, untouched.

const CACHE = "yingji-crew-v1";
const CORE = [
  "/crew",
  "/static/crew.js",
  "/static/crew.css",
  "/static/session.js",
  "/static/crew.webmanifest",
  "/static/crew-icon.svg",
];
// MapLibre is optional for the shell: without it the app still lists tasks and directions.
const VENDOR = [
  "/vendor/maplibre-gl/maplibre-gl.mjs",
  "/vendor/maplibre-gl/maplibre-gl-worker.mjs",
  "/vendor/maplibre-gl/maplibre-gl.css",
];
const SHELL = new Set([...CORE, ...VENDOR]);

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(CORE.map((url) => new Request(url, { cache: "reload" })));
    await Promise.allSettled(VENDOR.map((url) => cache.add(new Request(url, { cache: "reload" }))));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("yingji-crew-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** The shell entry a request stands for ("/crew?x" is the page; the worker script has a ?v=). */
function shellKey(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (request.mode === "navigate" && (url.pathname === "/crew" || url.pathname === "/crew/")) return "/crew";
  return SHELL.has(url.pathname) ? url.pathname : null;
}

self.addEventListener("fetch", (event) => {
  const key = shellKey(event.request);
  if (!key) return; // /api/, /ws and the rest: straight to the network
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(key);
    const fresh = fetch(key, { cache: "no-cache" })
      .then(async (response) => {
        if (response.ok) await cache.put(key, response.clone());
        return response;
      });
    if (cached) {
      event.waitUntil(fresh.catch(() => undefined)); // refresh for next time; offline is fine
      return cached;
    }
    return fresh;
  })());
});
