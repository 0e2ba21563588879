"""Map layers, crews and sign-in in the dispatcher console, in headless Chromium against the real service.

With users configured nothing is readable anonymously: the console asks to sign in, and the
dispatcher chen-li signs in. The layer switcher turns the risk heat map and the flood extents off and
on. The crew luoqi-zhang calls SOS through the API: the console's alarm strip shows it and the
dispatcher acknowledges it (the API then holds no open SOS). The dispatcher gives the crew a task at a
place clicked on the map (the API holds the task at that place), and a crew position inside the
incident's hazard area shows the hazard alarm.

With a GCJ-02 basemap (YINGJI_TILE_CRS=gcj02) the console draws every overlay converted (about 480 m
from the raw WGS-84 position in Yubei, docs/basemap.md) while the API keeps WGS-84, and a place clicked
on the map is converted back before it is sent.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from shapely.geometry import shape

from tests.browser.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS
from tests.fixtures_service import LiveService, _publish

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DISPATCHER = "chen-li"
CREW_USER = "luoqi-zhang"
CREW = "crew-luoqi-water"
SOS_NOTE = "boat engine failed near the bank"
TASK_ZH = "转移河边低洼处群众"
TASK_EN = "Move people away from the low river bank"
RIVER_GAUGE = "cuntan-level"  # a Yangtze level gauge: above its warning level, a flood with an extent


def password(user: str) -> str:
    return f"{user}-yubei-2025"  # tests/data/users_sample.yaml


def sign_in(live: LiveService, user: str) -> str:
    r = httpx.post(f"{live.base_url}/api/auth/sign-in", json={"user": user, "password": password(user)}, timeout=10)
    r.raise_for_status()
    return r.json()["token"]


def as_user(live: LiveService, token: str, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, f"{live.base_url}{path}", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def metres(a: list[float], b: list[float]) -> float:
    """Great-circle distance between two [lon, lat] (haversine, mean Earth radius)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


class Browser:
    """One Chromium page that records page errors and any request leaving the service's origin."""

    def __init__(self, live: LiveService) -> None:
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(live.base_url))
        self.page_errors: list[str] = []
        self.outside: list[str] = []

    async def open(self, pw: Any) -> Any:
        self.browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await self.browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        page.on("request", lambda req: None if req.url.startswith((self.origin, "data:", "blob:"))
                else self.outside.append(req.url))

        async def dismiss(dialog: Any) -> None:
            await dialog.dismiss()  # a prompt means a token was missing: fails below

        page.on("dialog", dismiss)
        return page

    def check(self) -> None:
        assert not self.page_errors, self.page_errors
        assert not self.outside, f"requests leaving the machine: {self.outside}"


async def until(page: Any, expression: str, what: str) -> Any:
    """Poll an (async) page expression until it is truthy: wait_for_function takes a promise as truthy."""
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await page.wait_for_timeout(200)
    raise AssertionError(f"timed out waiting for {what}")


async def visibility(page: Any, layer: str) -> str:
    return await page.evaluate("(id) => window.yingji.map.getLayoutProperty(id, 'visibility') ?? 'visible'", layer)


async def click_map_at(page: Any, offset: tuple[int, int]) -> dict[str, Any]:
    """Click the map `offset` pixels from its centre; the clicked position as MapLibre reads it."""
    box = await page.evaluate("""() => {
        const r = window.yingji.map.getCanvas().getBoundingClientRect();
        return {left: r.left, top: r.top, width: r.width, height: r.height};
    }""")
    x = round(box["left"] + box["width"] / 2 + offset[0])
    y = round(box["top"] + box["height"] / 2 + offset[1])
    at = await page.evaluate("([x, y]) => window.yingji.map.unproject([x, y]).toArray()",
                             [x - box["left"], y - box["top"]])
    await page.mouse.click(x, y)
    return {"display": at}


async def give_task(page: Any, incident_id: int, offset: tuple[int, int]) -> dict[str, Any]:
    """Pick the crew, click the place, type the task, choose the incident and send it."""
    await page.click(f'.crew-give[data-crew="{CREW}"]')
    await page.wait_for_function(f"window.yingji.crewsUi.picking() === '{CREW}'", timeout=DEADLINE_MS)
    clicked = await click_map_at(page, offset)
    await page.wait_for_function("window.yingji.crewsUi.form()?.place != null", timeout=DEADLINE_MS)
    clicked["sent"] = (await page.evaluate("window.yingji.crewsUi.form()"))["place"]
    form = page.locator(f'.crews-form[data-crew="{CREW}"]')
    await form.locator("textarea[name=text_zh]").fill(TASK_ZH)
    await form.locator("input[name=text]").fill(TASK_EN)
    await form.locator("select[name=incident]").select_option(str(incident_id))
    await form.locator(".crews-send").click()
    await page.wait_for_function("window.yingji.crewsUi.form() === null", timeout=DEADLINE_MS)
    return clicked


async def test_console_sign_in_layers_and_crews(signed_in_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = signed_in_service
    crew_token = sign_in(live, CREW_USER)
    incident = live.get(f"/api/incidents/{live.incident_id}")
    ARTIFACTS.mkdir(exist_ok=True)
    b = Browser(live)
    async with async_playwright() as pw:
        page = await b.open(pw)
        try:
            await page.goto(live.base_url)

            # -- sign-in: asked for, refused with a wrong password, then accepted
            await page.wait_for_selector("#session .session-form", timeout=DEADLINE_MS)
            assert await page.evaluate("window.yingji.mapLoaded") is False  # nothing readable yet
            await page.fill("#session input[name=user]", DISPATCHER)
            await page.fill("#session input[name=password]", "not-the-password")
            await page.click("#session .session-submit")
            await page.wait_for_selector("#session .session-error", timeout=DEADLINE_MS)
            assert await page.evaluate("localStorage.getItem('yingji.token')") is None
            await page.fill("#session input[name=password]", password(DISPATCHER))
            await page.click("#session .session-submit")
            await page.wait_for_selector("#session .session-user", timeout=DEADLINE_MS)
            assert "陈丽" in await page.inner_text("#session .session-user")  # zh by default: name_zh
            assert await page.input_value("#operator-name") == DISPATCHER
            await page.wait_for_function("window.yingji.mapLoaded && window.yingji.snapshotLoaded "
                                         "&& window.yingji.connection === 'connected' && window.yingji.feedUser "
                                         f"=== '{DISPATCHER}'", timeout=DEADLINE_MS)

            # -- a flood (the Yangtze 5 m above its warning level): its extent comes with the incident events
            warning_m = next(f["properties"]["thresholds"]["warning_m"] for f in live.get("/api/sensors")["features"]
                             if f["properties"]["id"] == RIVER_GAUGE)
            await _publish(live.broker_url, [(f"yingji/sensors/{RIVER_GAUGE}/senml", json.dumps(
                [{"bn": f"urn:dev:yingji:{RIVER_GAUGE}:", "n": "level", "u": "m", "v": warning_m + 5.0,
                  "t": time.time()}]))])
            await until(page, "(async () => (await window.yingji.sourceData('layers-flood'))?.features?.length > 0)()",
                        "the flood extent drawn")

            # -- layers: the risk heat map and the flood extents switch off and on, remembered
            await until(page, "(async () => window.yingji.layers.data().heat?.features.length > 0 "
                        "&& (await window.yingji.sourceData('layers-heat'))?.features?.length > 0)()",
                        "the risk heat points drawn")
            for group, layer in (("risk", "layers-risk-heat"), ("flood", "layers-flood-fill")):
                assert await visibility(page, layer) == "visible"
                await page.click(f'[data-layer-group="{group}"] input')
                assert await visibility(page, layer) == "none"
                stored = await page.evaluate("JSON.parse(localStorage.getItem('yingji.layers'))")
                assert stored["groups"][group] is False
                await page.click(f'[data-layer-group="{group}"] input')
                assert await visibility(page, layer) == "visible"
            # vehicles are DOM markers: hidden by a class on the map
            await page.click('[data-layer-group="vehicles"] input')
            assert await page.evaluate(
                "getComputedStyle(document.querySelector('.vehicle-marker')).display") == "none"
            assert await visibility(page, "vehicle-trails") == "none"
            await page.click('[data-layer-group="vehicles"] input')
            assert await page.evaluate(
                "getComputedStyle(document.querySelector('.vehicle-marker')).display") != "none"
            # sensors by kind: hiding rain gauges filters them out of the drawn layer
            await page.click(".layers-sub summary")
            await page.click('[data-sensor-kind="rain_gauge"] input')
            drawn = await page.evaluate("""() => {
                const f = window.yingji.map.getFilter('sensors');
                return f ? f[2][1] : null; }""")
            rain = await page.evaluate("[...window.yingji.sensors.values()]"
                                       ".filter(r => r.feature.properties.kind === 'rain_gauge').length")
            total = await page.evaluate("window.yingji.sensors.size")
            assert drawn is not None and rain > 0 and len(drawn) == total - rain
            await page.click('[data-sensor-kind="rain_gauge"] input')
            assert await page.evaluate("window.yingji.map.getFilter('sensors')") is None
            await page.evaluate(f"window.yingji.map.jumpTo({{center: [{incident['lon']}, {incident['lat']}], zoom: 11}})")
            await page.wait_for_timeout(1200)
            await page.screenshot(path=str(ARTIFACTS / "console-layers-risk.png"))

            await check_pure_helpers(page)

            # -- SOS from the crew: shown, acknowledged from the console
            as_user(live, crew_token, "POST", f"/api/crews/{CREW}/sos",
                    {"by": CREW_USER, "note": SOS_NOTE, "lon": 106.84, "lat": 29.71})
            alarm = page.locator(f'.crew-alarm.sos[data-crew="{CREW}"]')
            await alarm.wait_for(timeout=DEADLINE_MS)
            assert SOS_NOTE in await alarm.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "console-layers-sos.png"))
            await alarm.locator(".crew-sos-ack").click()
            await alarm.wait_for(state="detached", timeout=DEADLINE_MS)
            crew = live.get(f"/api/crews/{CREW}")
            assert crew["sos"] is None

            # -- give the crew a task at a place clicked on the map
            clicked = await give_task(page, live.incident_id, (60, -40))
            assert clicked["sent"] == pytest.approx(clicked["display"], abs=1e-9)  # a WGS-84 basemap: no change
            tasks = [x for x in live.get(f"/api/tasks?crew={CREW}")["tasks"] if x["text_zh"] == TASK_ZH]
            assert len(tasks) == 1, tasks
            task = tasks[0]
            assert task["text"] == TASK_EN and task["incident_id"] == live.incident_id
            target = [task["target"]["lon"], task["target"]["lat"]]
            assert metres(target, clicked["display"]) < 3.0
            await page.wait_for_selector(f'.crew-row[data-crew="{CREW}"] .crew-tasks li[data-task="{task["id"]}"]',
                                         timeout=DEADLINE_MS)

            # -- the crew walks into the flood's extent (a hazard area): the hazard alarm shows
            flood = live.get("/api/flood")["features"][0]
            inside = shape(flood["geometry"]).representative_point()
            moved = as_user(live, crew_token, "POST", f"/api/crews/{CREW}/position",
                            {"by": CREW_USER, "lon": inside.x, "lat": inside.y})
            flood_incident = flood["properties"]["incident_id"]
            assert (moved.get("hazard") or {}).get("incident_id") == flood_incident, moved
            hazard = page.locator(f'.crew-alarm.hazard[data-crew="{CREW}"]')
            await hazard.wait_for(timeout=DEADLINE_MS)
            assert f"#{flood_incident}" in await hazard.inner_text()
            shown = next(c for c in await page.evaluate("window.yingji.crewsUi.crews()") if c["id"] == CREW)
            assert shown["kind"] == "crew" and shown["hazard"]["incident_id"] == flood_incident
            await page.wait_for_timeout(500)
            await page.screenshot(path=str(ARTIFACTS / "console-layers-crews.png"))

            unknown = await page.evaluate("window.yingji.events.filter(e => e.kind === 'console.error')"
                                          ".map(e => String(e.data))")
            assert not [u for u in unknown if "crew." in u or "task." in u or "risk." in u], unknown

            # -- sign-out: the form is offered again, the operator field is free again
            await page.click("#session .session-signout")
            assert await page.evaluate("localStorage.getItem('yingji.token')") is None
            assert not await page.evaluate("document.getElementById('operator-name').readOnly")
        finally:
            await page.screenshot(path=str(ARTIFACTS / "console-layers-end.png"))
            await b.browser.close()
    b.check()


async def check_pure_helpers(page: Any) -> None:
    """The modules' pure helpers on good and bad input (roads closed, sensor health, saved switches,
    the crew task body, the alarm order)."""
    result = await page.evaluate("""() => {
      const L = window.yingji.layers, C = window.yingji.crewsUi;
      const roads = {type: 'FeatureCollection', features: [
        {type: 'Feature', properties: {id: 'g65', name: 'G65'}, geometry: {type: 'LineString', coordinates: [[106.6, 29.7], [106.7, 29.8]]}},
        {type: 'Feature', properties: {id: 'jinkai', name: 'Jinkai Avenue'}, geometry: {type: 'LineString', coordinates: [[106.5, 29.6], [106.6, 29.7]]}}]};
      const road = (id, name) => ({id, name});
      const tasks = [
        {id: 1, department: 'traffic', status: 'acknowledged', needs: {roads: [road('g65', 'G65')]}},
        {id: 2, department: 'traffic', status: 'done', needs: {roads: [road('g65', 'G65')]}},
        {id: 3, department: 'traffic', status: 'in_progress', needs: {roads: [road('nope', 'Jinkai Avenue')]}},
        {id: 4, department: 'traffic', status: 'sent', needs: {roads: [road('g65', 'G65')]}},
        {id: 5, department: 'police', status: 'done', needs: {roads: [road('jinkai', 'Jinkai Avenue')]}},
        {id: 6, department: 'traffic', status: 'done', needs: {roads: [road('unknown', 'Nowhere')]}},
        {id: 7, department: 'traffic', status: 'done', needs: {roads: 'g65'}},
        {id: 8, department: 'traffic', status: 'done'},
        null,
      ];
      const closed = L.closedRoads(tasks, roads).features.map(f => [f.properties.id, f.properties.state]);
      const heat = L.hotspotHeatPoints({features: [
        {properties: {id: 'a', level: 'red', peak_score: 0.8, peak: [106.7, 29.75]},
         geometry: {type: 'Polygon', coordinates: [[[106.69, 29.74], [106.71, 29.74], [106.71, 29.76], [106.69, 29.76], [106.69, 29.74]]]}},
        {properties: {id: 'b', level: 'blue', peak_score: 0}, geometry: null},
        {properties: {id: 'c'}, geometry: {type: 'Polygon', coordinates: [[[1, 1]]]}}]});
      return {
        closed, nothingFromNull: L.closedRoads(null, null).features.length,
        heatCount: heat.features.length, heatHotspots: [...new Set(heat.features.map(f => f.properties.hotspot))],
        heatInside: heat.features.every(f => f.geometry.coordinates[0] >= 106.69 && f.geometry.coordinates[0] <= 106.71),
        health: [L.sensorHealth('offline', true), L.sensorHealth('online', true), L.sensorHealth('online', false),
                 L.sensorHealth('unknown', false), L.sensorHealth(undefined, false)],
        badSettings: L.parseSettings('{not json').groups.risk,
        oddSettings: L.parseSettings('{"groups": {"risk": "no", "flood": false}, "hiddenHealth": ["stale", 3, "nonsense"]}'),
        noText: C.taskBody({by: 'x', incidentId: 1, text: ' ', textZh: '', place: [106.7, 29.7]}).error,
        noIncident: C.taskBody({by: 'x', incidentId: '', text: 'go', place: [106.7, 29.7]}).error,
        noPlace: C.taskBody({by: 'x', incidentId: 2, text: 'go', place: null}).error,
        nanPlace: C.taskBody({by: 'x', incidentId: 2, text: 'go', place: [NaN, 29]}).error,
        zhOnly: C.taskBody({by: 'x', incidentId: '2', textZh: '去', place: [106.7, 29.7]}).body,
        alarms: C.crewAlarms([
          {id: 'a', checkin_missed: true, checkin_due_at: '2026-01-01T00:00:00Z'},
          {id: 'b', hazard: {incident_id: 1}, position_at: '2026-01-01T00:00:00Z'},
          {id: 'c', sos: {at: '2026-01-01T00:00:00Z'}, hazard: {incident_id: 1}},
          {id: 'd'}, null]).map(a => `${a.kind}:${a.crew.id}`),
      };
    }""")
    assert result["closed"] == [["g65", "closed"], ["nope", "closing"]], result["closed"]
    assert result["nothingFromNull"] == 0
    assert result["heatCount"] > 10 and result["heatHotspots"] == ["a"] and result["heatInside"]
    assert result["health"] == ["offline", "stale", "online", "unknown", "unknown"]
    assert result["badSettings"] is True
    assert result["oddSettings"]["groups"]["risk"] is True and result["oddSettings"]["groups"]["flood"] is False
    assert result["oddSettings"]["hiddenHealth"] == ["stale"]
    assert (result["noText"], result["noIncident"], result["noPlace"], result["nanPlace"]) == \
        ("text", "incident", "place", "place")
    assert result["zhOnly"] == {"by": "x", "incident_id": 2, "text": "去", "text_zh": "去", "lon": 106.7, "lat": 29.7}
    assert result["alarms"] == ["sos:c", "hazard:b", "hazard:c", "checkin:a"]


async def test_console_draws_gcj02_and_sends_wgs84(gcj02_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = gcj02_service
    b = Browser(live)
    raw = {f["properties"]["id"]: f["geometry"]["coordinates"] for f in live.get("/api/sensors")["features"]}
    sensor_id = "rain-luoqi"
    async with async_playwright() as pw:
        page = await b.open(pw)
        try:
            await page.goto(f"{live.base_url}/#token={live.token}")
            await until(page, "(async () => window.yingji.mapLoaded && window.yingji.snapshotLoaded "
                        "&& (await window.yingji.sourceData('sensors'))?.features?.length > 0)()", "sensors drawn")
            drawn, expected, held = await page.evaluate("""async (id) => {
                const gcoord = (await import('/vendor/gcoord/gcoord.esm-browser.prod.js')).default;
                const f = (await window.yingji.sourceData('sensors')).features.find(x => x.properties.id === id);
                const rawAt = window.yingji.sensors.get(id).feature.geometry.coordinates;
                return [f.geometry.coordinates, gcoord.transform(rawAt, gcoord.WGS84, gcoord.GCJ02), rawAt];
            }""", sensor_id)
            assert drawn == pytest.approx(expected, abs=1e-9)
            assert held == raw[sensor_id]  # the console's own data stay WGS-84
            assert 430 < metres(drawn, raw[sensor_id]) < 530  # docs/basemap.md: about 480 m in Yubei
            # the API still answers WGS-84
            assert live.get("/api/sensors")["features"][0]["geometry"]["coordinates"] == \
                next(iter(raw.values()))
            # a vehicle marker sits at the converted position too
            marker, vehicle = await page.evaluate("""async () => {
                const v = [...window.yingji.vehicles.values()][0];
                const el = document.querySelector(`.vehicle-marker[data-name="${v.name}"]`);
                const m = window.yingji.map;
                const p = [el.getBoundingClientRect().left + el.offsetWidth / 2 - m.getCanvas().getBoundingClientRect().left,
                           el.getBoundingClientRect().top + el.offsetHeight / 2 - m.getCanvas().getBoundingClientRect().top];
                return [m.unproject(p).toArray(), [v.lon, v.lat]];
            }""")
            assert 430 < metres(marker, vehicle) < 530

            # a crew task's place: clicked on the GCJ-02 map, sent as WGS-84
            await page.wait_for_selector(f'.crew-give[data-crew="{CREW}"]', timeout=DEADLINE_MS)
            clicked = await give_task(page, live.incident_id, (-50, 30))
            back = await page.evaluate("""async (p) => {
                const gcoord = (await import('/vendor/gcoord/gcoord.esm-browser.prod.js')).default;
                return gcoord.transform(p, gcoord.GCJ02, gcoord.WGS84); }""", clicked["display"])
            task = next(x for x in live.get(f"/api/tasks?crew={CREW}")["tasks"] if x["text_zh"] == TASK_ZH)
            target = [task["target"]["lon"], task["target"]["lat"]]
            assert metres(target, back) < 0.5
            assert 430 < metres(target, clicked["display"]) < 530
            await page.screenshot(path=str(ARTIFACTS / "console-layers-gcj02.png"))
        finally:
            await b.browser.close()
    b.check()
