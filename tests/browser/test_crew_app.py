"""The field-crew app (/crew) on a phone-sized headless Chromium against the real service.

A dispatcher (the operator's API token) gives the Luoqi water-rescue squad a task on the map; its
member signs in on the phone and accepts it, loses the network, reports on site and done (a report
and a photo), and the changes wait in the phone's outbox (IndexedDB, kept across a reload served by
the service worker). When the link returns they go out in order, once: the console's API shows the
task done with one done entry, the report and the photo, even though the answer to the first "done"
was lost and the phone sent it again. A change the dispatchers overtook meanwhile (409) is dropped
and shown. SOS queues offline, shown as queued, and arrives once; a token that ran out keeps the
outbox until the member signs in again. Another crew's member does not see the task. No request
leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from pyproj import Geod

from tests.browser.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS
from tests.images import png

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DEADLINE_S = DEADLINE_MS / 1000
LUOQI = "crew-luoqi-water"  # luoqi-zhang's crew
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
SLOPE = {"lon": 106.75, "lat": 29.80}  # where the test's landslide is reported and the phone stands
TARGET = {"lon": 106.93, "lat": 29.72}  # the Luoqi ferry ramp





class Operator:
    """The console's side, through the API with the service's token (not through the browser)."""

    def __init__(self, live: Any) -> None:
        self.http = httpx.Client(base_url=live.base_url, timeout=10.0,
                                 headers={"Authorization": f"Bearer {live.token}"})

    def post(self, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        r = self.http.post(path, json=body)
        assert r.status_code == expect, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def get(self, path: str) -> Any:
        r = self.http.get(path)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def task(self, task_id: int) -> dict[str, Any]:
        return self.get(f"/api/tasks/{task_id}")

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.get("/api/events?limit=5000")["events"] if e["kind"] == kind]


async def until(predicate: Any, what: str, timeout_s: float = DEADLINE_S) -> Any:
    """Poll a (blocking, quick) predicate of the API until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def sign_in(page: Any, user: str, password: str) -> None:
    await page.locator("#signin-user").fill(user)
    await page.locator("#signin-password").fill(password)
    await page.locator("#signin-form button[type=submit]").click()


async def outbox_len(page: Any) -> int:
    return await page.evaluate("window.yingjiCrew.outbox().length")


async def wait_outbox(page: Any, n: int) -> None:
    await page.wait_for_function("(n) => window.yingjiCrew.outbox().length === n", arg=n, timeout=DEADLINE_MS)


def task_item(page: Any, task_id: int) -> Any:
    return page.locator(f'#task-list .task[data-id="{task_id}"]')


async def test_crew_app_offline_done_arrives_once(signed_in_service) -> None:
    from playwright.async_api import async_playwright

    live = signed_in_service
    ARTIFACTS.mkdir(exist_ok=True)
    base = live.base_url.rstrip("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    op = Operator(live)
    page_errors: list[str] = []
    outside_requests: list[str] = []

    # The dispatcher's side: a landslide where the phone stands, and two tasks for the squad.
    slide = op.post("/api/incidents", {"by": "desk", "kind": "landslide", "level": "orange",
                                       "title": "Slope failure above the road", "title_zh": "公路上方边坡滑塌",
                                       "source": "dispatcher", "location": SLOPE}, expect=201)["incident"]
    ramp = op.post(f"/api/crews/{LUOQI}/tasks", {
        "by": "desk", "incident_id": live.incident_id, "text": "Check the Luoqi ferry ramp",
        "text_zh": "查看洛碛渡口坡道", **TARGET}, expect=201)["task"]
    bank = op.post(f"/api/crews/{LUOQI}/tasks", {
        "by": "desk", "incident_id": live.incident_id, "text": "Patrol the river bank",
        "text_zh": "巡查河岸"}, expect=201)["task"]

    def note_request(request: Any) -> None:
        url = request.url
        if not (url.startswith(origin) or url.startswith(("data:", "blob:"))):
            outside_requests.append(url)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                **PHONE, geolocation={"longitude": SLOPE["lon"], "latitude": SLOPE["lat"], "accuracy": 10},
                permissions=["geolocation"])
            context.on("request", note_request)
            page = await context.new_page()
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            try:
                await page.goto(f"{base}/crew")
                await page.wait_for_function("window.yingjiCrew?.ready === true", timeout=DEADLINE_MS)
                assert await page.locator("#signin").is_visible()
                assert await page.locator("h1").inner_text() == "现场队伍"  # zh-CN by default

                # a wrong password is refused with a reason, and nothing else happens
                await sign_in(page, "luoqi-zhang", "not-the-password")
                await page.locator("#signin-error").wait_for(state="visible", timeout=DEADLINE_MS)
                assert "登录失败" in await page.locator("#signin-error").inner_text()
                assert await page.locator("#app").is_hidden()
                await sign_in(page, "luoqi-zhang", "luoqi-zhang-yubei-2025")
                await page.locator("#app").wait_for(state="visible", timeout=DEADLINE_MS)

                # the squad's tasks, newest open first, with the straight-line directions
                await task_item(page, ramp["id"]).wait_for(state="visible", timeout=DEADLINE_MS)
                await task_item(page, bank["id"]).wait_for(state="visible", timeout=DEADLINE_MS)
                ids = await page.eval_on_selector_all("#task-list .task", "els => els.map(e => Number(e.dataset.id))")
                assert ids == [bank["id"], ramp["id"]]
                assert "查看洛碛渡口坡道" in await task_item(page, ramp["id"]).inner_text()
                shown = await task_item(page, ramp["id"]).locator("time").inner_text()
                local = datetime.fromisoformat(ramp["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
                assert shown == local.strftime("%m/%d %H:%M"), shown  # Asia/Shanghai, not UTC
                await task_item(page, ramp["id"]).locator(".task-head").click()
                await page.wait_for_function(
                    "document.querySelector('#directions').textContent.includes('直线距离')", timeout=DEADLINE_MS)

                # the phone's position reaches the console, and standing in the slide's area warns
                await until(lambda: op.get(f"/api/crews/{LUOQI}")["position_source"] == "app",
                            "the phone's position at the console")
                banner = page.locator("#hazard-banner")
                await banner.wait_for(state="visible", timeout=DEADLINE_MS)
                assert await banner.get_attribute("data-incident") == str(slide["id"])
                assert "危险区域" in await banner.inner_text() and "橙色" in await banner.inner_text()
                await page.wait_for_function("window.yingjiCrew.mapLoaded === true", timeout=DEADLINE_MS)
                await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=DEADLINE_MS)
                await page.screenshot(path=str(ARTIFACTS / "crew-tasks.png"), full_page=True)

                # accept both while online: sent at once
                for task in (ramp, bank):
                    await task_item(page, task["id"]).locator('button[data-act="ack"]').click()
                    await until(lambda t=task: op.task(t["id"])["status"] == "acknowledged", "the acceptance")
                await wait_outbox(page, 0)

                # a task given now arrives through the live feed
                late = op.post(f"/api/crews/{LUOQI}/tasks", {
                    "by": "desk", "incident_id": live.incident_id, "text": "Warn the ferry houses",
                    "text_zh": "通知渡口住户撤离", "lon": 106.92, "lat": 29.71}, expect=201)["task"]
                await task_item(page, late["id"]).wait_for(state="visible", timeout=DEADLINE_MS)
                assert await page.evaluate("window.yingjiCrew.feedTaskEvents") > 0

                # the straight line's length and bearing agree with the WGS84 ellipsoid (pyproj)
                dist_m, bearing = await page.evaluate(
                    "([a, b]) => [window.yingjiCrew.distanceM(a, b), window.yingjiCrew.bearingDeg(a, b)]",
                    [SLOPE, TARGET])
                azimuth, _, geod_m = Geod(ellps="WGS84").inv(SLOPE["lon"], SLOPE["lat"], TARGET["lon"], TARGET["lat"])
                assert abs(dist_m - geod_m) / geod_m < 0.005  # a sphere against the ellipsoid: within 0.5 %
                assert abs(bearing - azimuth % 360) <= 1

                # the dispatcher's console, open on another machine while the phone goes offline
                desk = await browser.new_context(viewport={"width": 1400, "height": 860})
                console = await desk.new_page()
                console.on("pageerror", lambda err: page_errors.append(f"console: {err}"))
                await console.goto(f"{base}/#token={live.token}")
                await console.wait_for_function("window.yingji?.snapshotLoaded === true && "
                                                "window.yingji.connection === 'connected'", timeout=DEADLINE_MS)

                # ---- offline: on site and done, with a report and a photo
                await context.set_offline(True)
                await page.wait_for_function("document.querySelector('#net').dataset.state === 'offline'",
                                             timeout=DEADLINE_MS)
                item = task_item(page, ramp["id"])
                await item.locator('button[data-act="start"]').click()
                await item.locator(".field-note").fill("已到渡口")
                await item.locator(".submit").click()
                await wait_outbox(page, 1)
                await item.locator('button[data-act="done"]').click()
                await item.locator(".submit").click()  # no report: refused on the phone, nothing queued
                assert "请填写完成情况" in await item.locator(".task-error").inner_text()
                assert await outbox_len(page) == 1
                await item.locator(".field-photo").set_input_files(
                    {"name": "notes.png", "mimeType": "image/png", "buffer": b"this is not an image"})
                await item.locator(".task-error").wait_for(state="visible", timeout=DEADLINE_MS)
                assert "无法读取该图片" in await item.locator(".task-error").inner_text()
                await item.locator(".field-photo").set_input_files(
                    {"name": "ramp.png", "mimeType": "image/png", "buffer": png()})
                await item.locator(".photo-ready").wait_for(state="visible", timeout=DEADLINE_MS)
                await item.locator(".field-report").fill("坡道被淹，已拉警戒线")
                await item.locator(".submit").click()
                await wait_outbox(page, 2)
                # meanwhile the dispatchers close the bank task themselves; the phone goes on site there
                op.post(f"/api/tasks/{bank['id']}/start", {"by": "desk", "note": "police patrol on the bank"})
                op.post(f"/api/tasks/{bank['id']}/done", {"by": "desk", "report": "patrolled by the police"})
                await task_item(page, bank["id"]).locator('button[data-act="start"]').click()
                await task_item(page, bank["id"]).locator(".submit").click()
                await wait_outbox(page, 3)
                assert await page.locator("#queue-count").inner_text() == "3"
                assert await task_item(page, ramp["id"]).get_attribute("data-status") == "done"
                assert await task_item(page, ramp["id"]).locator(".queued-badge").count() == 1
                assert op.task(ramp["id"])["status"] == "acknowledged"  # nothing has left the phone
                await page.screenshot(path=str(ARTIFACTS / "crew-offline.png"), full_page=True)

                # a reload with no network: the shell from the service worker, the outbox from IndexedDB
                await page.reload()
                await page.wait_for_function("window.yingjiCrew?.ready === true", timeout=DEADLINE_MS)
                await task_item(page, ramp["id"]).wait_for(state="visible", timeout=DEADLINE_MS)
                assert await outbox_len(page) == 3
                assert await task_item(page, ramp["id"]).get_attribute("data-status") == "done"

                # ---- back online; the answer to the first "done" is lost, so the phone sends it again
                lost: list[int] = []

                async def lose_first_answer(route: Any) -> None:
                    if lost:
                        await route.continue_()
                        return
                    response = await route.fetch()  # the service does it...
                    lost.append(response.status)
                    await route.abort("connectionreset")  # ...and the phone never hears

                await context.route("**/api/tasks/*/done", lose_first_answer)
                await context.set_offline(False)
                await until(lambda: lost, "the first done to reach the service")
                assert lost == [200]
                await page.evaluate("window.yingjiCrew.sync()")  # the 20 s retry, without the wait
                await wait_outbox(page, 0)

                final = op.task(ramp["id"])
                assert final["status"] == "done"
                assert [h["to"] for h in final["history"]].count("done") == 1, final["history"]
                assert final["report"] == "坡道被淹，已拉警戒线"
                assert len(final["photos"]) == 1
                photo = op.http.get(final["photos"][0])
                assert photo.status_code == 200 and photo.content == png()
                assert len([e for e in op.events("task.done") if e["data"]["id"] == ramp["id"]]) == 1
                # ... and the console, live all along, shows it done once
                seen_done = ("(id) => window.yingji.events.filter("
                             "(e) => e.kind === 'task.done' && e.data?.id === id).length")
                await console.wait_for_function(f"({seen_done})({ramp['id']}) >= 1", timeout=DEADLINE_MS)
                await asyncio.sleep(1.0)  # anything repeated would have come by now
                assert await console.evaluate(seen_done, ramp["id"]) == 1
                await console.screenshot(path=str(ARTIFACTS / "crew-console.png"))
                await desk.close()
                # the bank task's "on site" came too late: dropped from the outbox and shown
                problems = await page.evaluate("window.yingjiCrew.problems()")
                assert [(p["task_id"], p["status"]) for p in problems] == [(bank["id"], 409)], problems
                assert await page.locator("#problems").is_visible()
                assert op.task(bank["id"])["status"] == "done"
                await page.screenshot(path=str(ARTIFACTS / "crew-synced.png"), full_page=True)

                # a reload: nothing queued, the task done
                await page.reload()
                await page.wait_for_function("window.yingjiCrew?.ready === true", timeout=DEADLINE_MS)
                await page.wait_for_function(
                    "(id) => document.querySelector(`#task-list .task[data-id=\"${id}\"]`)?.dataset.status === 'done'",
                    arg=ramp["id"], timeout=DEADLINE_MS)
                assert await outbox_len(page) == 0
                assert await page.locator("#queue-count").inner_text() == "0"
                assert await task_item(page, ramp["id"]).locator(".queued-badge").count() == 0

                # ---- SOS with no network: queued and shown as such, then sent once
                await context.set_offline(True)
                await page.locator("#sos-btn").click()
                await page.locator("#sos-note").fill("船只倾覆")
                await page.locator("#sos-send").click()
                sos_banner = page.locator("#sos-banner")
                await sos_banner.wait_for(state="visible", timeout=DEADLINE_MS)
                assert await sos_banner.get_attribute("data-state") == "queued"
                await page.screenshot(path=str(ARTIFACTS / "crew-sos-queued.png"), full_page=True)
                await context.set_offline(False)
                await wait_outbox(page, 0)
                await page.wait_for_function("document.querySelector('#sos-banner').dataset.state === 'sent'",
                                             timeout=DEADLINE_MS)
                soses = await until(lambda: op.events("crew.sos"), "the SOS at the console")
                assert len(soses) == 1 and soses[0]["data"]["sos"]["note"] == "船只倾覆"

                # ---- a token that ran out: the queued check-in waits for a new sign-in
                # (the token runs out first: a sync already under way cannot still carry the good one)
                await page.evaluate("localStorage.setItem('yingji.crew.token', 'a-token-that-ran-out')")
                await context.set_offline(True)
                await page.locator("#checkin-btn").click()
                await wait_outbox(page, 1)
                await context.set_offline(False)
                await page.locator("#auth-banner").wait_for(state="visible", timeout=DEADLINE_MS)
                assert await outbox_len(page) == 1
                assert not op.events("crew.checked_in")
                await page.locator("#signin-password").fill("luoqi-zhang-yubei-2025")
                await page.locator("#signin-form button[type=submit]").click()
                await wait_outbox(page, 0)
                await until(lambda: len(op.events("crew.checked_in")) == 1, "the check-in at the console")
                assert await page.locator("#auth-banner").is_hidden()

                # English on request
                await page.locator("#lang-toggle").click()
                assert await page.locator("h1").inner_text() == "Field crew"
                await task_item(page, ramp["id"]).locator(".task-head").click()
                assert "Straight-line" in await page.locator("#directions").inner_text()
                assert await task_item(page, ramp["id"]).locator(".status").inner_text() == "Done"
                await page.screenshot(path=str(ARTIFACTS / "crew-en.png"), full_page=True)
            finally:
                await page.screenshot(path=str(ARTIFACTS / "crew-last.png"), full_page=True)
                await context.close()

            # ---- another crew's member sees none of it
            other = await browser.new_context(**PHONE)
            other.on("request", note_request)
            page2 = await other.new_page()
            page2.on("pageerror", lambda err: page_errors.append(str(err)))
            try:
                await page2.goto(f"{base}/crew")
                await page2.wait_for_function("window.yingjiCrew?.ready === true", timeout=DEADLINE_MS)
                await sign_in(page2, "longxing-li", "longxing-li-yubei-2025")
                await page2.locator("#app").wait_for(state="visible", timeout=DEADLINE_MS)
                await page2.wait_for_function("window.yingjiCrew.crew()?.id === 'crew-longxing-water'",
                                              timeout=DEADLINE_MS)
                await page2.locator("#no-tasks").wait_for(state="visible", timeout=DEADLINE_MS)
                assert await page2.evaluate("window.yingjiCrew.tasks().length") == 0
                assert await page2.locator("#task-list .task").count() == 0
                await page2.screenshot(path=str(ARTIFACTS / "crew-other.png"), full_page=True)
            finally:
                await other.close()
        finally:
            await browser.close()
            op.http.close()

    assert not page_errors, page_errors
    assert not outside_requests, f"requests leaving the machine: {outside_requests}"
