"""The incident detail panel of the dispatcher console, in headless Chromium against the real service.

`signed_in_service` runs Mosquitto, the simulated fleet and the service with sign-in on, and has
opened a rainstorm incident at the Luoqi gauge (six 10-minute reports of 10 mm: 50 mm in 3 h at the
fifth, orange). Chen Li (dispatcher) selects it: the panel shows the level history and an SVG chart of
the gauge's 3-hour rain with the orange (50 mm) and red (100 mm) threshold lines and the crossing
marked; the department tasks as GET /api/tasks has them; a task the fire brigade acknowledges through
the API turns acknowledged live. Chen Li gives that task to a crew, drafts a CAP alert (a one-language
instruction is refused in the form first), and is refused when releasing it; Liu Min (duty chief, a
second browser) releases it and Chen Li's panel shows it released. An evacuation zone and the initial
report drawn through the API appear under "people at risk".
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS
from tests.fixtures_service import LiveService

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PANEL = "#incident-detail-panel"
INSTRUCTION_ZH = "远离河道和边坡，听从镇街转移安排"
INSTRUCTION_EN = "Keep away from streams and slopes; follow the town's evacuation orders"
CREW = "crew-luoqi-water"  # a fire brigade crew based at Luoqi
RAIN_3H_MS = 3 * 3600 * 1000


def sign_in(live: LiveService, user: str) -> str:
    """A token for one of tests/data/users_sample.yaml's people (password "<id>-yubei-2025")."""
    r = httpx.post(f"{live.base_url}/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"},
                   timeout=10.0)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def call(live: LiveService, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with httpx.Client(base_url=live.base_url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}) as c:
        return c.request(method, path, json=body)


def rain_3h(readings: list[dict[str, Any]]) -> list[float]:
    """The 3-hour accumulation at each report (amounts stamped in (t - 3 h, t]), as the chart draws it."""
    times = [datetime.fromisoformat(r["time"]) for r in readings]
    return [round(sum(r["value"] for r, u in zip(readings, times, strict=True) if t - timedelta(hours=3) < u <= t), 3)
            for t in times]


class Browser:
    """One signed-in person's console page, with its page errors and any request leaving 127.0.0.1."""

    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("request", self._note)

        async def dismiss(dialog) -> None:
            await dialog.dismiss()  # a prompt means the token was not taken: the steps below fail

        page.on("dialog", dismiss)
        self.origin = origin

    def _note(self, request) -> None:
        if not request.url.startswith((self.origin, "data:", "blob:")):
            self.outside.append(request.url)

    async def open(self, live: LiveService, token: str, incident_id: int) -> None:
        page = self.page
        await page.goto(f"{live.base_url.rstrip('/')}/#token={token}")
        await page.wait_for_function("window.yingji?.mapLoaded === true", timeout=DEADLINE_MS)
        item = page.locator(f'#incident-list .incident[data-id="{incident_id}"]')
        await item.wait_for(state="visible", timeout=DEADLINE_MS)
        await item.locator(".incident-title").click()
        await page.locator(f'{PANEL}[data-incident="{incident_id}"]').wait_for(state="visible", timeout=DEADLINE_MS)


async def test_incident_detail_why_tasks_cap_people(signed_in_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = signed_in_service
    incident_id = int(live.incident_id)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live.base_url))
    chen, chief, fire = (await asyncio.gather(*(asyncio.to_thread(sign_in, live, u)
                                                for u in ("chen-li", "chief-liu", "fire-wang"))))
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            first = Browser(await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page(),
                            origin)
            second = Browser(await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page(),
                             origin)
            try:
                await walk_through(live, incident_id, first, second, chen=chen, chief=chief, fire=fire)
            finally:
                await first.page.screenshot(path=str(ARTIFACTS / "console-incident-dispatcher.png"))
                await second.page.screenshot(path=str(ARTIFACTS / "console-incident-chief.png"))
        finally:
            await browser.close()

    for who in (first, second):
        assert not who.errors, who.errors
        assert not who.outside, f"requests leaving the machine: {who.outside}"


async def walk_through(live: LiveService, incident_id: int, first: Browser, second: Browser, *,
                       chen: str, chief: str, fire: str) -> None:
    page = first.page
    await first.open(live, chen, incident_id)
    panel = page.locator(PANEL)

    # 1. Why: the level history, and the chart of the gauge's readings with the thresholds.
    incident = (await asyncio.to_thread(call, live, chen, "GET", f"/api/incidents/{incident_id}")).json()
    steps = panel.locator(".idt-levels .idt-step")
    await steps.first.wait_for(state="visible", timeout=DEADLINE_MS)
    assert await steps.count() == len(incident["levels"]) >= 1
    assert [await s.get_attribute("data-level") for s in await steps.all()] == [e["level"] for e in incident["levels"]]
    series = panel.locator('.idt-chart svg polyline.series[data-sensor="rain-luoqi"]')
    await series.wait_for(state="attached", timeout=DEADLINE_MS)
    readings = (await asyncio.to_thread(call, live, chen, "GET", "/api/sensors/rain-luoqi/readings")).json()["readings"]
    expected = rain_3h([r for r in readings if r["quantity"] == "rain"])
    shown = [float(v) for v in (await series.get_attribute("data-values")).split(",")]
    assert shown == expected and len(shown) >= 6, (shown, expected)
    assert len((await series.get_attribute("points")).split()) == len(expected)
    thresholds = {float(await x.get_attribute("data-value")): await x.get_attribute("data-level")
                  for x in await panel.locator(".idt-chart svg line.threshold").all()}
    assert thresholds == {50.0: "orange", 100.0: "red"}, thresholds
    crossing = panel.locator('.idt-chart svg circle.crossing[data-level="orange"]')
    assert await crossing.count() == 1
    first_over = next(i for i, v in enumerate(expected) if v >= 50)
    assert float(await crossing.get_attribute("data-value")) == expected[first_over]
    # the risk layers that scored the place: each hotspot the service names, with its exposure
    hotspots = panel.locator(".idt-hotspots .idt-hotspot")
    assert await hotspots.count() == len(incident["hotspots"])
    if incident["hotspots"]:
        assert await panel.locator('.idt-hotspot .idt-tag.exposure[data-layer="population_persons"]').count() >= 1

    await panel.locator(".idt-why").screenshot(path=str(ARTIFACTS / "console-incident-chart.png"))

    # 2. Tasks: as GET /api/tasks has them, with their statuses.
    tasks = (await asyncio.to_thread(call, live, chen, "GET", f"/api/tasks?incident_id={incident_id}")).json()["tasks"]
    department_tasks = [t for t in tasks if t["parent_id"] is None]
    rows = panel.locator(".idt-task-list > .idt-task")
    await page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n",
        arg=[f"{PANEL} .idt-task-list > .idt-task", len(department_tasks)], timeout=DEADLINE_MS)
    shown_tasks = [(int(await r.get_attribute("data-id")), await r.get_attribute("data-status")) for r in await rows.all()]
    assert shown_tasks == [(t["id"], t["status"]) for t in department_tasks]
    assert await panel.locator(".idt-task-list .idt-due.countdown").count() >= len(department_tasks)

    # The fire brigade acknowledges its task through the API: the panel follows live.
    fire_task = next(t for t in department_tasks if t["department"] == "fire")
    row = panel.locator(f'.idt-task[data-id="{fire_task["id"]}"]')
    assert await row.get_attribute("data-status") == "sent"
    r = await asyncio.to_thread(call, live, fire, "POST", f"/api/tasks/{fire_task['id']}/ack", {"by": "fire-wang"})
    assert r.status_code == 200, r.text
    acked = panel.locator(f'.idt-task[data-id="{fire_task["id"]}"][data-status="acknowledged"]')
    await acked.wait_for(state="visible", timeout=DEADLINE_MS)
    assert "fire-wang" in await acked.locator(".idt-acked").inner_text()

    # Give it to a crew: without a choice nothing is sent; with one, the crew task appears under it.
    await acked.locator(".idt-assign-btn").click()
    await acked.locator(".idt-error").wait_for(state="visible", timeout=DEADLINE_MS)
    await acked.locator('select[name="crew"]').select_option(CREW)
    await acked.locator(".idt-assign-btn").click()
    crew_row = panel.locator(f'.idt-task[data-id="{fire_task["id"]}"] .idt-crew-task[data-crew="{CREW}"]')
    await crew_row.wait_for(state="visible", timeout=DEADLINE_MS)
    after = (await asyncio.to_thread(call, live, chen, "GET", f"/api/tasks?incident_id={incident_id}")).json()["tasks"]
    assert [t["crew"] for t in after if t["parent_id"] == fire_task["id"]] == [CREW]

    # 3. CAP: an instruction in one language only is refused in the form and nothing is sent.
    form = panel.locator(".idt-draft-form")
    await form.locator('textarea[name="instruction_zh"]').fill(INSTRUCTION_ZH)
    await form.locator(".idt-draft-btn").click()
    await form.locator(".idt-draft-error").wait_for(state="visible", timeout=DEADLINE_MS)
    alerts = (await asyncio.to_thread(call, live, chen, "GET", "/api/alerts")).json()["alerts"]
    assert not [a for a in alerts if a["incident_id"] == incident_id], "a half-filled form must not draft"
    await form.locator('textarea[name="instruction"]').fill(INSTRUCTION_EN)
    await form.locator(".idt-draft-btn").click()
    draft = panel.locator('.idt-message[data-state="draft"]')
    await draft.wait_for(state="visible", timeout=DEADLINE_MS)
    assert await draft.get_attribute("data-msg-type") == "Alert"
    assert "chen-li" in await draft.locator(".idt-message-facts").inner_text()
    message_id = int(await draft.get_attribute("data-id"))
    assert await form.locator('textarea[name="instruction_zh"]').input_value() == "", "the form clears once drafted"
    # A second draft while this one waits is refused by the service (409): the form says why.
    await form.locator(".idt-draft-btn").click()
    await page.wait_for_function(
        "(sel) => /still a draft/.test(document.querySelector(sel)?.textContent ?? '')",
        arg=f"{PANEL} .idt-draft-error", timeout=DEADLINE_MS)
    assert await panel.locator(".idt-message").count() == 1

    # Chen Li may not release it (a dispatcher, and its drafter): the server's refusal is shown.
    await draft.locator(".idt-release-btn").click()
    refusal = panel.locator(f'.idt-message[data-id="{message_id}"] .idt-refusal')
    await refusal.wait_for(state="visible", timeout=DEADLINE_MS)
    assert "alert.release" in await refusal.inner_text()
    message = (await asyncio.to_thread(call, live, chen, "GET", f"/api/alerts/messages/{message_id}")).json()
    assert message["state"] == "draft"
    await page.screenshot(path=str(ARTIFACTS / "console-incident-refused.png"))

    # Liu Min (duty chief), in a second browser, releases it; Chen Li's panel shows it released.
    await second.open(live, chief, incident_id)
    theirs = second.page.locator(f'{PANEL} .idt-message[data-id="{message_id}"][data-state="draft"]')
    await theirs.wait_for(state="visible", timeout=DEADLINE_MS)
    await theirs.locator(".idt-release-btn").click()
    await second.page.locator(f'{PANEL} .idt-message[data-id="{message_id}"][data-state="released"]').wait_for(
        state="visible", timeout=DEADLINE_MS)
    released = panel.locator(f'.idt-message[data-id="{message_id}"][data-state="released"]')
    await released.wait_for(state="visible", timeout=DEADLINE_MS)
    assert "chief-liu" in await released.locator(".idt-message-facts").inner_text()
    assert await released.locator(".idt-xml").get_attribute("href") == f"/api/alerts/messages/{message_id}.xml"
    assert await panel.locator(".idt-feed").get_attribute("href") == "/api/alerts/cap"
    message = (await asyncio.to_thread(call, live, chen, "GET", f"/api/alerts/messages/{message_id}")).json()
    assert (message["state"], message["drafted_by"], message["released_by"]) == ("released", "chen-li", "chief-liu")

    # 4. People at risk: a zone around the gauge and the initial report, drawn through the API.
    lon, lat = incident["lon"], incident["lat"]
    ring = [[lon - 0.01, lat - 0.01], [lon + 0.01, lat - 0.01], [lon + 0.01, lat + 0.01], [lon - 0.01, lat + 0.01],
            [lon - 0.01, lat - 0.01]]
    r = await asyncio.to_thread(call, live, chen, "POST", f"/api/incidents/{incident_id}/evacuation-zones",
                                {"by": "chen-li", "name": "Luoqi riverside", "name_zh": "洛碛沿河片区",
                                 "area": {"type": "Polygon", "coordinates": [ring]}})
    assert r.status_code == 201, r.text
    zone_id = r.json()["zone"]["id"]
    r = await asyncio.to_thread(call, live, chen, "POST", f"/api/evacuation-zones/{zone_id}/counts",
                                {"by": "chen-li", "evacuated": 120, "remaining": 30})
    assert r.status_code == 201, r.text
    r = await asyncio.to_thread(call, live, chen, "POST", f"/api/incidents/{incident_id}/reports",
                                {"by": "chen-li", "kind": "initial"})
    assert r.status_code == 201, r.text
    zone = panel.locator(f'.idt-zones .idt-zone[data-id="{zone_id}"]')
    await zone.wait_for(state="visible", timeout=DEADLINE_MS)
    await page.wait_for_function(
        "(sel) => /120/.test(document.querySelector(sel)?.textContent ?? '')",
        arg=f'{PANEL} .idt-zone[data-id="{zone_id}"]', timeout=DEADLINE_MS)
    await panel.locator('.idt-reports .idt-report[data-kind="initial"]').wait_for(state="visible", timeout=DEADLINE_MS)
    assert "120" in await panel.locator(".idt-totals").inner_text()

    # Screenshots: the whole console, then the panel with "why" and then "tasks" folded away.
    await page.screenshot(path=str(ARTIFACTS / "console-incident-why.png"))
    await panel.locator(".idt-why > summary").click()
    assert not await panel.locator(".idt-why").evaluate("(d) => d.open")
    await page.screenshot(path=str(ARTIFACTS / "console-incident-tasks.png"))
    await panel.locator(".idt-tasks > summary").click()
    await panel.screenshot(path=str(ARTIFACTS / "console-incident-cap-people.png"))
