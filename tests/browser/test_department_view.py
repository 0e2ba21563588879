"""The department view in headless Chromium against the real service.

The `signed_in_service` fixture (tests/browser/conftest.py) runs a private Mosquitto, the
simulated fleet and the service with sign-in on, and has opened a rainstorm incident whose
playbook gives the fire brigade a task. A fire-brigade member signs in (a wrong password is
refused first), sees the brigade's tasks and no other department's (compared with what the API
tells the operator), sees the incident on the map, acknowledges, starts with a note and finishes
with a report, and each change is what the API then shows. A new incident's task arrives on the
live feed. The page switches to English, fits a phone's screen, and never asks for anything
outside 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.test_console import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEADLINE_MS,
)
from tests.fixtures_service import LiveService, _publish

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DEADLINE_S = DEADLINE_MS / 1000
MEMBER = "fire-wang"  # tests/data/users_sample.yaml: department fire
OTHER_MEMBER = "traffic-sun"  # department traffic
RIVER_GAUGE = "cuntan-level"  # a Yangtze level gauge: above its warning level, a flood with an extent
START_NOTE = "两个水域救援班组已出发"
REPORT = "已在洛碛镇预置两个水域救援班组和两艘冲锋舟，待命"
TOO_LONG_REPORT = "长" * 2001  # the API takes at most 2000 characters



def password(user: str) -> str:
    return f"{user}-yubei-2025"


async def until(probe: Callable[[], Awaitable[Any]], what: str, *, timeout_s: float = DEADLINE_S) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


async def sign_in(page: Any, user: str, secret: str) -> None:
    await page.fill("#signin-user", user)
    await page.fill("#signin-password", secret)
    await page.click("#signin-submit")


async def shown_task_ids(page: Any) -> set[int]:
    ids = await page.evaluate(
        "() => [...document.querySelectorAll('#task-list .task, #closed-list .task')].map((e) => e.dataset.id)")
    return {int(i) for i in ids}


async def test_department_member_acknowledges_starts_and_closes_a_task(signed_in_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = signed_in_service
    ARTIFACTS.mkdir(exist_ok=True)
    base = live.base_url.rstrip("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    page_errors: list[str] = []
    outside_requests: list[str] = []
    operator = httpx.AsyncClient(base_url=base, timeout=10.0, headers={"Authorization": f"Bearer {live.token}"})

    async def api_tasks() -> list[dict[str, Any]]:
        r = await operator.get("/api/tasks")
        r.raise_for_status()
        return r.json()["tasks"]

    async def api_task(task_id: int) -> dict[str, Any]:
        r = await operator.get(f"/api/tasks/{task_id}")
        r.raise_for_status()
        return r.json()

    departments = {d["id"]: d for d in (await operator.get("/api/departments")).json()["departments"]}
    everything = await api_tasks()
    ours = [t for t in everything if t["department"] == "fire" and t["incident_id"] == live.incident_id]
    assert ours, f"the rainstorm playbook gave the fire brigade no task: {[t['department'] for t in everything]}"
    assert {t["department"] for t in everything} - {"fire"}, "the journey needs other departments' tasks too"
    task_id = ours[0]["id"]

    def note_request(request: Any) -> None:
        # The page must work with no internet: every request stays on this machine.
        url = request.url
        if not (url.startswith(origin) or url.startswith(("data:", "blob:"))):
            outside_requests.append(url)

    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1400, "height": 900})
                page = await context.new_page()
                page.on("pageerror", lambda err: page_errors.append(str(err)))
                page.on("request", note_request)
                try:
                    await _journey(page, live, operator, task_id, departments, api_tasks, api_task)
                finally:
                    await page.screenshot(path=str(ARTIFACTS / "department-last.png"))
                other = await browser.new_page(viewport={"width": 1000, "height": 800})
                other.on("pageerror", lambda err: page_errors.append(str(err)))
                other.on("request", note_request)
                await _another_department_sees_only_its_own(other, base, api_tasks)
            finally:
                await browser.close()
    finally:
        await operator.aclose()

    assert not page_errors, page_errors
    assert not outside_requests, f"requests leaving the machine: {outside_requests}"


async def _journey(page: Any, live: LiveService, operator: httpx.AsyncClient, task_id: int,
                   departments: dict[str, Any],
                   api_tasks: Callable[[], Awaitable[list[dict[str, Any]]]],
                   api_task: Callable[[int], Awaitable[dict[str, Any]]]) -> None:
    # A token the service refuses (run out, or signed by another secret): back to the sign-in form.
    await page.goto(f"{live.base_url}/department")
    await page.evaluate("""() => {
        localStorage.setItem('yingji.dept.token', 'not.a.token');
        localStorage.setItem('yingji.dept.token.user', JSON.stringify({id: 'fire-wang', department: 'fire'}));
        localStorage.setItem('yingji.dept.token.expires', new Date(Date.now() + 600000).toISOString());
    }""")
    await page.reload()
    notice = page.locator("#signin-notice")
    await notice.wait_for(state="visible", timeout=DEADLINE_MS)
    assert "过期" in await notice.inner_text()
    assert await page.evaluate("localStorage.getItem('yingji.dept.token')") is None
    assert await page.locator("#app").is_hidden()

    # Chinese by default.
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    assert (await page.inner_text("#signin-submit")).strip() == "登录"

    # Empty fields and a wrong password: refused with a reason, still on the sign-in form.
    await sign_in(page, MEMBER, "")
    error = page.locator("#signin-error")
    await error.wait_for(state="visible", timeout=DEADLINE_MS)
    assert "请输入" in await error.inner_text()
    await sign_in(page, MEMBER, "wrong-password")
    await page.wait_for_function(
        "document.querySelector('#signin-error').textContent.includes('错误')", timeout=DEADLINE_MS)
    assert await page.locator("#app").is_hidden()

    await sign_in(page, MEMBER, password(MEMBER))
    await page.wait_for_function(
        "window.yingjiDept.mapLoaded && window.yingjiDept.geographyLoaded && window.yingjiDept.tasks().length > 0",
        timeout=DEADLINE_MS)
    assert (await page.inner_text("#dept-name")).strip() == departments["fire"]["name_zh"]
    assert (await page.inner_text("#user-name")).strip() == "王强"

    # The brigade's tasks, all of them, and nothing of another department's: what the API tells
    # the operator, cut to the fire brigade (read again until both agree: new tasks may arrive).
    async def same_as_api() -> tuple[set[int], set[int]] | None:
        everything = await api_tasks()
        fire = {t["id"] for t in everything if t["department"] == "fire"}
        shown = await shown_task_ids(page)
        return (shown, {t["id"] for t in everything} - fire) if shown == fire else None

    shown, others = await until(same_as_api, "the page to list exactly the fire brigade's tasks")
    assert task_id in shown and others and not (shown & others)
    assert {t["department"] for t in await page.evaluate("window.yingjiDept.tasks()")} == {"fire"}

    # Showing a task confirms its delivery to the service.
    delivered = await until(lambda: _status_in(api_task, task_id, {"delivered"}), "the page to confirm delivery")
    assert any(h["to"] == "delivered" for h in delivered["history"])

    # The task opened: the incident and the task's needs on the map.
    await page.locator(f'#task-list .task[data-id="{task_id}"]').click()
    await page.wait_for_function("(id) => window.yingjiDept.selected() === id", arg=task_id, timeout=DEADLINE_MS)
    await page.wait_for_function(
        """(id) => window.yingjiDept.map.queryRenderedFeatures({layers: ['incidents']})
                     .some((f) => f.properties.id === id)""",
        arg=live.incident_id, timeout=DEADLINE_MS)
    await page.wait_for_function(
        """() => ['need-points', 'roads', 'boundary-line']
                   .every((l) => window.yingjiDept.map.queryRenderedFeatures({layers: [l]}).length > 0)""",
        timeout=DEADLINE_MS)
    incident_colour = await page.evaluate(
        """(id) => window.yingjiDept.map.queryRenderedFeatures({layers: ['incidents']})
                     .find((f) => f.properties.id === id).properties.colour""", live.incident_id)
    assert incident_colour == "#f57c00", "an orange incident is drawn orange"
    detail = page.locator("#task-detail")
    assert (await detail.locator("h3").inner_text()).strip() == (await api_task(task_id))["text_zh"]
    assert await detail.locator("[data-need]").count() == len((await api_task(task_id))["needs"])
    due = page.locator(f'#task-list .task[data-id="{task_id}"] .due')
    assert "内确认" in await due.inner_text() or "超时" in await due.inner_text()
    await page.wait_for_timeout(500)  # let the map finish drawing for the picture
    await page.screenshot(path=str(ARTIFACTS / "department-map.png"))

    # Decline without a reason: refused on the page, nothing sent.
    await page.click("#btn-decline")
    await detail.locator(".action-error").wait_for(state="visible", timeout=DEADLINE_MS)
    assert "拒绝原因" in await detail.locator(".action-error").inner_text()
    assert (await api_task(task_id))["status"] == "delivered"

    # Acknowledge: the API shows it acknowledged by the signed-in member.
    await page.click("#btn-ack")
    acked = await until(lambda: _status_in(api_task, task_id, {"acknowledged"}), "the acknowledgement")
    assert acked["acknowledged_by"] == MEMBER
    await detail.locator('.status-badge[data-status="acknowledged"]').wait_for(timeout=DEADLINE_MS)
    assert await detail.locator(".action-error").count() == 0

    # Start, with a note.
    await page.fill("#start-note", START_NOTE)
    await page.click("#btn-start")
    started = await until(lambda: _status_in(api_task, task_id, {"in_progress"}), "the start")
    assert any(h.get("note") == START_NOTE and h["by"] == MEMBER for h in started["history"]), started["history"]

    # Done: a report is required; one the server refuses shows the server's reason.
    await page.click("#btn-done")
    await page.wait_for_function(
        "document.querySelector('#task-detail .action-error')?.textContent.includes('处置报告')",
        timeout=DEADLINE_MS)
    await page.fill("#done-report", TOO_LONG_REPORT)
    await page.click("#btn-done")
    await page.wait_for_function(
        "document.querySelector('#task-detail .action-error')?.textContent.includes('2000')",
        timeout=DEADLINE_MS)
    assert (await api_task(task_id))["status"] == "in_progress"
    await page.fill("#done-report", REPORT)
    await page.click("#btn-done")
    done = await until(lambda: _status_in(api_task, task_id, {"done"}), "the report")
    assert done["report"] == REPORT
    await page.locator(f'#closed-list .task[data-id="{task_id}"]').wait_for(state="attached", timeout=DEADLINE_MS)
    assert await page.locator(f'#task-list .task[data-id="{task_id}"]').count() == 0
    assert (await detail.locator(".facts").inner_text()).count(REPORT) == 1

    # A new incident, a flood: its task for the brigade comes on the live feed, and the flood's
    # extent and the task's hazard area are drawn.
    before = await shown_task_ids(page)
    sensors = (await operator.get("/api/sensors")).json()["features"]
    warning_m = next(f["properties"]["thresholds"]["warning_m"] for f in sensors
                     if f["properties"]["id"] == RIVER_GAUGE)
    await _publish(live.broker_url, [(f"yingji/sensors/{RIVER_GAUGE}/senml", json.dumps(
        [{"bn": f"urn:dev:yingji:{RIVER_GAUGE}:", "n": "level", "u": "m", "v": warning_m + 5.0,
          "t": time.time()}]))])
    flood_task_id = await page.wait_for_function(
        """(known) => window.yingjiDept.tasks().find((t) => !known.includes(t.id)
                       && window.yingjiDept.liveSeen().includes(t.id) && t.needs && t.needs.hazard)?.id""",
        arg=sorted(before), timeout=DEADLINE_MS)
    flood_task_id = await flood_task_id.json_value()
    assert await page.evaluate("window.yingjiDept.connection") == "live"
    new_ids = await shown_task_ids(page) - before
    assert flood_task_id in new_ids
    for new_id in new_ids:
        assert (await api_task(new_id))["department"] == "fire"
    await page.evaluate("(id) => window.yingjiDept.select(id)", flood_task_id)
    await page.wait_for_function(
        """() => ['flood', 'need-areas', 'need-points', 'incidents']
                   .every((l) => window.yingjiDept.map.queryRenderedFeatures({layers: [l]}).length > 0)""",
        timeout=DEADLINE_MS)
    await page.wait_for_timeout(500)  # let the map finish drawing for the picture
    await page.screenshot(path=str(ARTIFACTS / "department-flood.png"))

    # English: labels, statuses and the department's name; back to the finished task.
    await page.locator("#topbar [data-lang-toggle]").click()
    await page.evaluate("(id) => window.yingjiDept.select(id)", task_id)
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert (await page.inner_text("#task-panel h2")).startswith("Tasks")
    assert (await page.inner_text("#dept-name")).strip() == departments["fire"]["name"]
    assert (await detail.locator(".status-badge").first.inner_text()).strip() == "Done"
    assert (await detail.locator("h3").inner_text()).strip() == done["text"]
    assert (await page.inner_text("#signout")).strip() == "Sign out"
    await page.screenshot(path=str(ARTIFACTS / "department-en.png"))

    # A phone: the map above, the list below.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(300)
    map_box = await page.locator("#map").bounding_box()
    list_box = await page.locator("#task-panel").bounding_box()
    assert map_box and list_box and map_box["y"] + map_box["height"] <= list_box["y"] + 1
    assert map_box["width"] > 300
    await page.screenshot(path=str(ARTIFACTS / "department-phone.png"))

    # Sign out: the token is gone, the sign-in form is back.
    await page.click("#signout")
    await page.locator("#signin").wait_for(state="visible", timeout=DEADLINE_MS)
    assert await page.evaluate("localStorage.getItem('yingji.dept.token')") is None


async def _status_in(api_task: Callable[[int], Awaitable[dict[str, Any]]], task_id: int,
                     statuses: set[str]) -> dict[str, Any] | None:
    task = await api_task(task_id)
    return task if task["status"] in statuses else None


async def _another_department_sees_only_its_own(page: Any, base: str,
                                                api_tasks: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
    """The traffic department's member, in another browser profile, sees the traffic tasks only."""
    await page.goto(f"{base}/department")
    await sign_in(page, OTHER_MEMBER, password(OTHER_MEMBER))
    await page.wait_for_function("window.yingjiDept.mapLoaded && window.yingjiDept.tasks().length > 0",
                                 timeout=DEADLINE_MS)

    async def same_as_api() -> bool:
        traffic = {t["id"] for t in await api_tasks() if t["department"] == "traffic"}
        return await shown_task_ids(page) == traffic

    await until(same_as_api, "the page to list exactly the traffic department's tasks")
