"""The vehicle panel, flight log book, timeline and replay of the dispatcher console, in headless
Chromium against the real service with sign-in on.

The dispatcher approves a dispatch and watches the drone: chen-li (dispatcher and pilot) plans the
fixture's rainstorm incident and approves the recon flight as pilot in command (no weather station
has reported, so she launches anyway with a reason). In the vehicle panel she sees the drone's mode,
battery and mission progress change, points its camera with a "look here" map click, holds it
(dismissing the confirmation first, which sends nothing) and sends it home. The flight log lists the
flight with its pilot and exports it as CSV and GeoJSON; the timeline filters to incident events
and replays the last hour, the drone moving along its track. wu-dispatch, a dispatcher who is not a
pilot, pressing hold sees the refusal.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import SIGN_IN, rainstorm_live
from tests.browser.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS
from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import LiveService

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PILOT = "chen-li"  # dispatcher + pilot (tests/data/users_sample.yaml)
NOT_PILOT = "wu-dispatch"  # dispatcher only
VEHICLE = "UAV-1"
OVERRIDE_REASON = "sheltered launch site, wind checked on site"
FLIGHT_DEADLINE_MS = 120_000  # the simulated flight (a deadline for slow machines)
# The simulated fleet runs at 5× (the shared fixture's 20× flies the recon in about 15 s of wall time,
# over before a person, or a browser on two busy cores, has pressed three buttons).
FLEET_SPEEDUP = 5.0


@pytest.fixture
def watched_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    """The live system with sign-in on (as ``signed_in_service``), the fleet at 5×, and an open
    rainstorm incident near UAV-1's base."""
    with rainstorm_live(mosquitto, yubei_folder, tmp_path, monkeypatch, env=SIGN_IN, speedup=FLEET_SPEEDUP) as live:
        yield live


def sign_in(live: LiveService, user: str) -> str:
    """A sign-in token for ``user`` (password "<id>-yubei-2025")."""
    r = httpx.post(f"{live.base_url}/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"},
                   timeout=10.0)
    r.raise_for_status()
    return r.json()["token"]


def commands(live: LiveService, action: str, operator: str) -> list[dict[str, Any]]:
    """vehicle.command events of ``action`` by ``operator`` in the persistent event log."""
    events = live.get("/api/events?limit=5000")["events"]
    return [e for e in events if e["kind"] == "vehicle.command" and e["data"].get("action") == action
            and e["data"].get("operator") == operator]


async def open_console(browser: Any, live: LiveService, token: str, errors: list[str],
                       outside: list[str]) -> Any:
    """A page of the console with ``token`` held in localStorage before the console loads."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live.base_url))
    context = await browser.new_context(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    await context.add_init_script(f"window.localStorage.setItem('yingji.token', {json.dumps(token)});")
    page = await context.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))

    def note_request(request: Any) -> None:
        if not request.url.startswith((origin, "data:", "blob:")):
            outside.append(request.url)

    page.on("request", note_request)
    await page.goto(f"{live.base_url.rstrip('/')}/")
    try:
        await page.wait_for_function("window.yingji?.mapLoaded === true && window.yingji.vehicle !== undefined"
                                     " && window.yingji.snapshotLoaded === true"
                                     " && window.yingji.connection === 'connected'", timeout=DEADLINE_MS)
    except Exception as err:
        seen = await page.evaluate("""() => ({map: window.yingji?.mapLoaded, snapshot: window.yingji?.snapshotLoaded,
            connection: window.yingji?.connection, extensions: window.yingji?.extensions,
            errors: (window.yingji?.events ?? []).filter((e) => e.kind === 'console.error').map((e) => e.data)})""")
        raise AssertionError(f"the console did not load: {seen}; page errors {errors}") from err
    return page


async def test_dispatcher_approves_a_dispatch_and_watches_the_drone(watched_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = watched_service
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    outside: list[str] = []
    pilot_token = await asyncio.to_thread(sign_in, live, PILOT)
    other_token = await asyncio.to_thread(sign_in, live, NOT_PILOT)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await open_console(browser, live, pilot_token, errors, outside)
            try:
                await pilot_walk_through(page, live)
            finally:
                await page.screenshot(path=str(ARTIFACTS / "console-vehicle-end.png"))
            other = await open_console(browser, live, other_token, errors, outside)
            try:
                await not_pilot_refused(other, live)
            finally:
                await other.screenshot(path=str(ARTIFACTS / "console-vehicle-refused.png"))
            bad = await page.evaluate("window.yingji.counters.badMessages")
            assert bad == 0, await page.evaluate("window.yingji.events.filter((e) => e.kind === 'console.error')"
                                                 ".map((e) => e.data)")
        finally:
            await browser.close()
    assert not errors, errors
    assert not outside, f"requests leaving the machine: {outside}"


async def approve_recon(page: Any, live: LiveService) -> int:
    """Plan the fixture's incident and approve its recon flight with chen-li in command; its plan id."""
    item = page.locator(f'#incident-list .incident[data-id="{int(live.incident_id)}"]')
    await item.wait_for(state="visible", timeout=DEADLINE_MS)
    await item.locator(".incident-title").click()
    await item.locator(".plans .plan-btn").click()
    plan = item.locator(f'.plan[data-state="proposed"][data-task="recon"][data-vehicle="{VEHICLE}"]')
    await plan.wait_for(state="visible", timeout=DEADLINE_MS)
    plan_id = int(await plan.get_attribute("data-id"))
    plan = item.locator(f'.plan[data-id="{plan_id}"]')
    await plan.locator(".plan-approve").click()
    await plan.locator('.approve-form input[name="pilot"]').fill(PILOT)
    await plan.locator('.approve-form input[name="pilot"]').press("Enter")
    override = plan.locator(".override-form")  # no weather observation: launch anyway, with a reason
    await override.wait_for(state="visible", timeout=DEADLINE_MS)
    await override.locator('input[name="reason"]').fill(OVERRIDE_REASON)
    await override.locator(".plan-submit.override").click()
    await page.wait_for_function(
        """(id) => {
            const el = document.querySelector(`#incident-list .plan[data-id="${id}"]`);
            if (el?.dataset.state === "failed") throw new Error(el.textContent);
            return el?.dataset.state === "flying";
        }""", arg=plan_id, polling=200, timeout=FLIGHT_DEADLINE_MS)
    return plan_id


async def pilot_walk_through(page: Any, live: LiveService) -> None:
    panel = page.locator("#vehicle-detail-panel")
    assert await panel.locator(".vd-empty").is_visible(), "no vehicle selected yet"
    # Select the drone by its marker on the map, and note what the panel shows while it flies.
    await page.locator(f'.vehicle-marker[data-name="{VEHICLE}"]').click()
    await page.wait_for_function(f"window.yingji.vehicle.selected === '{VEHICLE}'", timeout=DEADLINE_MS)
    assert await panel.get_attribute("data-vehicle") == VEHICLE
    await page.evaluate("""() => {
        const seen = (window.__vd = {modes: new Set(), batteries: new Set(), missions: new Set()});
        const value = (f) => document.querySelector(`#vehicle-detail-panel [data-field="${f}"]`).textContent;
        setInterval(() => {
            seen.modes.add(value("mode")); seen.batteries.add(value("battery")); seen.missions.add(value("mission"));
        }, 100);
    }""")
    plan_id = await approve_recon(page, live)
    # On its way: airborne and cruising (a hold on the ground would end the flight, one in the climb
    # would keep it over its base).
    await page.wait_for_function(
        """() => {
            const value = (f) => parseFloat(document.querySelector(`#vehicle-detail-panel [data-field="${f}"]`).textContent);
            return value("height") > 15 && value("speed") > 3;
        }""", polling=100, timeout=FLIGHT_DEADLINE_MS)

    # Hold: the dialog names the vehicle and the action; dismissing it sends nothing.
    await panel.locator(".vd-cmd.vd-hold").click()
    dialog = page.locator("#vehicle-confirm")
    await dialog.wait_for(state="visible", timeout=DEADLINE_MS)
    text = await dialog.locator(".vd-confirm-text").inner_text()
    assert VEHICLE in text and "悬停" in text, text
    await dialog.locator(".vd-confirm-cancel").click()
    await dialog.wait_for(state="hidden", timeout=DEADLINE_MS)
    assert await page.evaluate("window.yingji.vehicle.commandsSent.length") == 0
    # Confirmed: sent once, by chen-li (control taken first), and the drone stops over the ground.
    await panel.locator(".vd-cmd.vd-hold").click()
    await dialog.locator(".vd-confirm-ok").click()
    await page.wait_for_function(
        """() => parseFloat(document.querySelector('#vehicle-detail-panel [data-field="speed"]').textContent) < 0.5
            && window.yingji.vehicle.commandsSent.length === 1""",
        polling=200, timeout=DEADLINE_MS)
    assert await panel.locator(".vd-error").is_hidden(), await panel.locator(".vd-error").inner_text()
    held = await asyncio.to_thread(live.wait_until, lambda: commands(live, "hold", PILOT), "a hold by chen-li")
    assert len(held) == 1, "the dismissed confirmation sent nothing"
    assert PILOT in await panel.locator('[data-field="controller"]').inner_text(), "control taken before commanding"
    state = live.vehicles()[VEHICLE]
    # ArduPilot pauses only on the way to a waypoint (DO_PAUSE_CONTINUE); over the incident the hold
    # is the BRAKE mode. Either way it stays in the air, stopped, under chen-li's control.
    facts = {k: state[k] for k in ("mode", "armed", "controller", "state", "alt_rel_m")}
    assert state["armed"] and state["alt_rel_m"] > 10 and state["controller"] == PILOT, facts
    assert state["mode"] in ("AUTO", "BRAKE", "LOITER"), facts

    # Mode and battery seen changing, and the mission's progress (waypoint n/m, %).
    await page.wait_for_function(
        """() => window.__vd.modes.size >= 2 && window.__vd.batteries.size >= 2
            && [...window.__vd.missions].some((m) => /\\d+\\/\\d+/.test(m) && /\\d+ %/.test(m))""",
        polling=200, timeout=DEADLINE_MS)
    seen = await page.evaluate("({modes: [...window.__vd.modes], batteries: [...window.__vd.batteries],"
                               " missions: [...window.__vd.missions]})")
    assert any(m.startswith("AUTO") for m in seen["modes"]), seen
    assert any(str(plan_id) in m for m in seen["missions"]), seen
    video = await panel.locator(".vd-video").inner_text()
    assert video.startswith("rtsp://") and "RTSP" in video, f"the stream's address, shown honestly: {video!r}"
    await page.screenshot(path=str(ARTIFACTS / "console-vehicle-flying.png"))

    # Look here: the next map click points the camera there, by chen-li.
    await panel.locator(".vd-look").click()
    assert await page.evaluate("window.yingji.vehicle.lookMode") is True
    box = await page.locator("#map").bounding_box()
    await page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.55)
    await page.wait_for_function("window.yingji.vehicle.commandsSent.some((c) => c.action === 'look_at')",
                                 timeout=DEADLINE_MS)
    assert await page.evaluate("window.yingji.vehicle.lookMarker()") is not None
    looked = await asyncio.to_thread(
        live.wait_until, lambda: commands(live, "look_at", PILOT), "a look_at command by chen-li in the event log")
    assert looked[0]["data"]["name"] == VEHICLE
    assert await page.evaluate("window.yingji.vehicle.lookMode") is False
    assert await panel.locator(".vd-error").is_hidden(), await panel.locator(".vd-error").inner_text()

    # A photo: its position and time in the panel (the simulated image is not served over HTTP).
    await panel.locator("button.vd-cmd.vd-photo").click()
    await panel.locator("li.vd-photo").first.wait_for(state="visible", timeout=DEADLINE_MS)

    # Return to launch (confirmed): the mode shown changes to RTL.
    await panel.locator(".vd-cmd.vd-rtl").click()
    assert "返航" in await dialog.locator(".vd-confirm-text").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "console-vehicle-confirm.png"))
    await dialog.locator(".vd-confirm-ok").click()
    await page.wait_for_function(
        """() => document.querySelector('#vehicle-detail-panel [data-field="mode"]').textContent.startsWith("RTL")""",
        polling=200, timeout=DEADLINE_MS)
    assert commands(live, "rtl", PILOT)
    await page.screenshot(path=str(ARTIFACTS / "console-vehicle-rtl.png"))

    await flight_log(page, live)
    await timeline_and_replay(page, live)


async def flight_log(page: Any, live: LiveService) -> None:
    panel = page.locator("#flightlog-panel")
    await panel.locator(".fl-collapse").click()
    flights = live.get("/api/flights")["flights"]
    mine = [f for f in flights if f["vehicle"] == VEHICLE and f["pilot"] == PILOT]
    assert mine, flights
    flight_id = mine[-1]["id"]
    row = panel.locator(f'.fl-flight[data-id="{flight_id}"]')
    await row.wait_for(state="visible", timeout=DEADLINE_MS)
    assert await row.get_attribute("data-pilot") == PILOT
    assert PILOT in await row.locator(".fl-pilot").inner_text()
    await row.click()
    await page.wait_for_function(
        """(id) => window.yingji.flightlog.detail?.id === id && window.yingji.map
            .queryRenderedFeatures({layers: ['flightlog-flown', 'flightlog-planned']}).length > 0""",
        arg=flight_id, timeout=DEADLINE_MS)
    checks = await panel.locator(".fl-detail").inner_text()
    assert "✓ heartbeat" in checks and "null" not in checks and "{" not in checks, checks
    await page.screenshot(path=str(ARTIFACTS / "console-vehicle-flightlog.png"))

    async with page.expect_download(timeout=DEADLINE_MS) as info:
        await panel.locator(".fl-csv").click()
    download = await info.value
    assert download.suggested_filename == "flight-log.csv"
    rows = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text())))
    assert any(r["id"] == str(flight_id) and r["pilot"] == PILOT and r["vehicle"] == VEHICLE for r in rows), rows

    async with page.expect_download(timeout=DEADLINE_MS) as info:
        await panel.locator(".fl-geojson").click()
    download = await info.value
    assert download.suggested_filename == f"flight-{flight_id}.geojson"
    geo = json.loads(Path(await download.path()).read_text())
    kinds = {f["properties"]["kind"]: f for f in geo["features"]}
    assert geo["type"] == "FeatureCollection" and set(kinds) == {"flown", "planned"}, geo
    assert kinds["flown"]["properties"]["pilot"] == PILOT
    assert len(kinds["flown"]["geometry"]["coordinates"]) > 2


async def timeline_and_replay(page: Any, live: LiveService) -> None:
    panel = page.locator("#timeline-panel")
    await panel.locator(".tl-collapse").click()
    await panel.locator('.tl-event[data-kind="vehicle.command"]').first.wait_for(state="attached", timeout=DEADLINE_MS)
    await panel.locator(".tl-group").select_option("incident")
    await page.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('#timeline-panel .tl-event')];
            return rows.some((r) => r.dataset.kind.startsWith('incident.'))
                && rows.every((r) => r.dataset.group === 'incident');
        }""", timeout=DEADLINE_MS)
    await panel.locator(".tl-incident").fill(str(int(live.incident_id)))
    await page.wait_for_function(
        "(id) => [...document.querySelectorAll('#timeline-panel .tl-event')].every((r) => r.dataset.incident === id)",
        arg=str(live.incident_id), timeout=DEADLINE_MS)
    kinds = await panel.locator(".tl-event").evaluate_all(
        "(rows) => rows.map((r) => [r.dataset.group, r.dataset.incident])")
    assert kinds and all(g == "incident" and i == str(live.incident_id) for g, i in kinds), kinds
    await panel.locator(".tl-incident").fill("")
    await panel.locator(".tl-group").select_option("")
    await panel.locator(".tl-text").fill("look_at")
    texts = await panel.locator(".tl-event").evaluate_all("(rows) => rows.map((r) => r.dataset.kind)")
    assert texts and set(texts) == {"vehicle.command"}, texts
    await panel.locator(".tl-text").fill("")

    # Replay of the last hour: the drone moves along its track; leaving restores the live view.
    await panel.locator(".tl-hours").select_option("1")
    await panel.locator(".tl-speed").select_option("10")  # the whole run is a few minutes: 10× to watch it
    await panel.locator(".tl-replay").click()
    await page.wait_for_function("window.yingji.timeline.replay?.playing === true", timeout=DEADLINE_MS)
    replay = await page.evaluate("window.yingji.timeline.replay")
    assert VEHICLE in replay["vehicles"] and replay["events"] > 0, replay
    assert await page.evaluate("JSON.stringify(window.yingji.map.getFilter('incidents'))") == '["==",["get","replay_hidden"],true]', \
        await page.evaluate("({layer: !!window.yingji.map.getLayer('incidents'), errors: window.yingji.events"
                            ".filter((e) => e.kind === 'console.error').map((e) => e.data)})")
    # The whole run is a few minutes: pause, move the slider to the takeoff, and play from there at 10×.
    await panel.locator(".tl-play").click()
    await page.wait_for_function("window.yingji.timeline.replay.playing === false", timeout=DEADLINE_MS)
    flight = [f for f in live.get("/api/flights")["flights"] if f["vehicle"] == VEHICLE][-1]
    takeoff_ms = int(datetime.fromisoformat(flight["takeoff_at"]).timestamp() * 1000)
    await panel.locator(".tl-slider").fill(str(takeoff_ms))
    assert abs((await page.evaluate("window.yingji.timeline.replay"))["t"] - takeoff_ms) <= 1000
    await asyncio.sleep(0.6)  # paused: the replay time stays
    assert abs((await page.evaluate("window.yingji.timeline.replay"))["t"] - takeoff_ms) <= 1000
    await panel.locator(".tl-play").click()
    first = None
    deadline = time.monotonic() + DEADLINE_MS / 1000
    moved = False
    while time.monotonic() < deadline and not moved:
        at = (await page.evaluate("window.yingji.timeline.replay"))["positions"].get(VEHICLE)
        if at and first is None:
            first = at
        moved = bool(first and at and abs(at[0] - first[0]) + abs(at[1] - first[1]) > 1e-4)
        await asyncio.sleep(0.2)
    track = live.get(f"/api/vehicles/{VEHICLE}/track")["track"]
    assert moved, ("the replayed drone must move along its track", first, takeoff_ms, flight,
                   await page.evaluate("window.yingji.timeline.replay"), track[:2], track[-2:], len(track))
    drawn = await page.evaluate("window.yingji.map.queryRenderedFeatures({layers: ['replay-vehicles']}).length")
    assert drawn >= 1
    clock = await panel.locator(".tl-clock").inner_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC\+8\)", clock), clock
    await page.screenshot(path=str(ARTIFACTS / "console-vehicle-replay.png"))
    await panel.locator(".tl-exit").click()
    assert await page.evaluate("window.yingji.timeline.replay") is None
    assert await page.evaluate("window.yingji.map.getFilter('incidents') ?? null") is None
    assert await page.evaluate(
        "[...document.querySelectorAll('.vehicle-marker')].every((m) => m.style.visibility === '')")
    assert await page.evaluate("window.yingji.map.getLayoutProperty('replay-vehicles', 'visibility')") == "none"


async def not_pilot_refused(page: Any, live: LiveService) -> None:
    """wu-dispatch may watch but not command: hold, confirmed, is refused with the reason shown."""
    panel = page.locator("#vehicle-detail-panel")
    # the row of the list, this time (redrawn with every frame: wait for a quiet moment)
    await page.locator(f'#vehicle-list .vehicle[data-name="{VEHICLE}"]').click(timeout=DEADLINE_MS)
    await page.wait_for_function(f"window.yingji.vehicle.selected === '{VEHICLE}'", timeout=DEADLINE_MS)
    await panel.locator(".vd-cmd.vd-hold").click()
    await page.locator("#vehicle-confirm .vd-confirm-ok").click()
    error = panel.locator(".vd-error")
    await error.wait_for(state="visible", timeout=DEADLINE_MS)
    text = await error.inner_text()
    assert "403" in text and "飞手" in text, text
    assert not commands(live, "hold", NOT_PILOT)
