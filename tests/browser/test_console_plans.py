"""Task plans in the dispatcher console, in headless Chromium against the real service.

The `live_service` fixture runs a private Mosquitto, the simulated fleet and the service,
and has opened a rainstorm incident at the Luoqi gauge, a kilometre from UAV-1's base. In
the console the dispatcher selects the incident, asks for plans, rejects one with a reason,
edits the next, and approves it with a pilot in command. No weather station has reported,
so the launch weather check refuses and the console offers to launch anyway with a reason.
The plan then flies: its state, progress and solid path follow the WebSocket events.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import pytest

from tests.browser.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS
from tests.fixtures_service import LiveService

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

OPERATOR = "Dispatcher Zhao"
PILOT = "Pilot Li"
REJECT_REASON = "wait for the downpour to ease"
EDIT_REASON = "masts near the gauge"
EDIT_CLEARANCE_M = 80
OVERRIDE_REASON = "sheltered launch site, wind checked on site"
OTHER_GAUGE = "rain-gulu"  # about 29 km north-west of Luoqi: another rainstorm cell, another incident


def _number(text: str) -> float:
    """The first number in a label such as "到达目标 2.1 分钟"."""
    found = re.search(r"-?\d+(?:\.\d+)?", text)
    assert found, f"no number in {text!r}"
    return float(found.group())


def _plan(live: LiveService, plan_id: int) -> dict:
    """The plan as the service holds it (to check the console against)."""
    return live.get(f"/api/plans/{plan_id}")


async def test_console_plans_rejects_edits_and_launches_anyway(live_service: LiveService) -> None:
    from playwright.async_api import async_playwright

    live = live_service
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live.base_url))
    page_errors: list[str] = []
    outside_requests: list[str] = []

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda err: page_errors.append(str(err)))

            def note_request(request) -> None:
                # The console must work with no internet: every request stays local.
                if not request.url.startswith((origin, "data:", "blob:")):
                    outside_requests.append(request.url)

            page.on("request", note_request)

            async def dismiss(dialog) -> None:
                await dialog.dismiss()  # a prompt means the token was not taken: fails below

            page.on("dialog", dismiss)
            try:
                await walk_through(page, live)
            finally:
                await page.screenshot(path=str(ARTIFACTS / "console_plans.png"))
        finally:
            await browser.close()

    assert not page_errors, page_errors
    assert not outside_requests, f"requests leaving the machine: {outside_requests}"


async def walk_through(page, live: LiveService) -> None:
    """Select, plan, reject, plan again, edit, approve (refused), launch anyway, follow, select another."""
    base = live.base_url.rstrip("/")
    incident_id = int(live.incident_id)
    await page.goto(f"{base}/#token={live.token}")
    await page.wait_for_function("window.yingji?.mapLoaded === true", timeout=DEADLINE_MS)
    await page.fill("#operator-name", OPERATOR)

    # Select the incident: its card shows the plans and the "Plan vehicles" button.
    item = page.locator(f'#incident-list .incident[data-id="{incident_id}"]')
    await item.wait_for(state="visible", timeout=DEADLINE_MS)
    assert await item.locator(".plans").count() == 0, "plans belong to the selected incident only"
    await item.locator(".incident-title").click()
    await item.locator(".plans .plan-btn").click()

    # A proposed recon plan for UAV-1, with its time to target and battery at landing.
    first = item.locator('.plan[data-state="proposed"][data-task="recon"]')
    await first.wait_for(state="visible", timeout=DEADLINE_MS)
    assert await first.get_attribute("data-vehicle") == "UAV-1"
    first_id = int(await first.get_attribute("data-id"))
    proposal = _plan(live, first_id)["proposal"]
    shown_ttt = _number(await first.locator(".plan-ttt").inner_text())
    assert shown_ttt > 0 and abs(shown_ttt - proposal["time_to_target_s"] / 60) <= 0.051
    shown_battery = _number(await first.locator(".plan-battery").inner_text())
    assert 30 < shown_battery < 100 and abs(shown_battery - proposal["battery_at_landing_pct"]) <= 0.51
    assert proposal["return"]["mode"] in await first.locator(".plan-return").inner_text()
    assert await first.locator(".plan-checks li").count() >= len(proposal["checks"]) > 0
    # drawn dashed on the map while it is a proposal
    await page.wait_for_function(
        """(id) => window.yingji.map.queryRenderedFeatures({layers: ['plan-paths-proposed']})
            .some((f) => f.properties.id === id)""",
        arg=first_id, timeout=DEADLINE_MS)

    # Reject: a reason is required, then kept with who rejected.
    await first.locator(".plan-reject").click()
    reason = first.locator('.reject-form input[name="reason"]')
    await reason.press("Enter")
    await first.locator(".plan-form-error").wait_for(state="visible", timeout=DEADLINE_MS)
    assert _plan(live, first_id)["state"] == "proposed", "an empty reason must not be sent"
    await reason.fill(REJECT_REASON)
    await reason.press("Enter")
    rejected = item.locator(f'.plan[data-id="{first_id}"][data-state="rejected"]')
    await rejected.wait_for(state="visible", timeout=DEADLINE_MS)
    assert REJECT_REASON in await rejected.locator(".plan-decision").inner_text()
    row = _plan(live, first_id)
    assert (row["state"], row["decided_by"], row["decision_reason"]) == ("rejected", OPERATOR, REJECT_REASON)

    # Plan again, then edit the proposal: higher over the ground, the old one superseded.
    await item.locator(".plans .plan-btn").click()
    second = item.locator(f'.plan[data-state="proposed"][data-task="recon"]:not([data-id="{first_id}"])')
    await second.wait_for(state="visible", timeout=DEADLINE_MS)
    second_id = int(await second.get_attribute("data-id"))
    await second.locator(".plan-edit").click()
    form = second.locator(".edit-form")
    await form.locator('select[name="vehicle"] option[value="UAV-1"]').wait_for(
        state="attached", timeout=DEADLINE_MS)
    await form.locator('input[name="clearance"]').fill(str(EDIT_CLEARANCE_M))
    await form.locator('input[name="reason"]').fill(EDIT_REASON)
    await form.locator('input[name="reason"]').press("Enter")
    third = item.locator(f'.plan[data-state="proposed"][data-task="recon"]:not([data-id="{second_id}"])'
                         f':not([data-id="{first_id}"])')
    await third.wait_for(state="visible", timeout=DEADLINE_MS)
    third_id = int(await third.get_attribute("data-id"))
    assert str(second_id) in await third.locator(".plan-origin").inner_text()
    assert await item.locator(f'.plan[data-id="{second_id}"]').count() == 0, "a superseded plan is hidden"
    edited = _plan(live, third_id)["proposal"]
    assert _plan(live, second_id)["state"] == "superseded"
    assert edited["edited_from"] == second_id and edited["cruise_amsl_m"] > proposal["cruise_amsl_m"]

    # Approve: the pilot in command is asked for, from the keyboard.
    plan = item.locator(f'.plan[data-id="{third_id}"]')
    await plan.locator(".plan-approve").click()
    await plan.locator('.approve-form input[name="pilot"]').wait_for(state="visible", timeout=DEADLINE_MS)
    assert await page.evaluate("document.activeElement?.name") == "pilot"
    await page.keyboard.press("Enter")  # no pilot: refused in the form, nothing sent
    await plan.locator(".plan-form-error").wait_for(state="visible", timeout=DEADLINE_MS)
    assert await page.evaluate("document.activeElement?.name") == "pilot"
    await page.keyboard.type(PILOT)
    await page.keyboard.press("Enter")
    # No weather station has reported: the check refuses and the console offers to launch anyway.
    override = plan.locator(".override-form")
    await override.wait_for(state="visible", timeout=DEADLINE_MS)
    refusal = await override.locator(".launch-refusal li").all_inner_texts()
    assert any("no weather observation" in r for r in refusal), refusal
    assert await override.locator('input[name="pilot"]').input_value() == PILOT
    assert await page.evaluate("document.activeElement?.name") == "reason"
    assert _plan(live, third_id)["state"] == "proposed"
    await page.keyboard.press("Enter")  # a reason is required to launch anyway
    await override.locator(".plan-form-error").wait_for(state="visible", timeout=DEADLINE_MS)
    await page.keyboard.type(OVERRIDE_REASON)
    await override.locator(".plan-submit.override").click()

    # It flies: state and progress from the WebSocket, its path drawn solid.
    await page.wait_for_function(
        """(id) => {
            const seen = (window.__planSeen ??= {states: new Set(), path: false, progress: ""});
            const el = document.querySelector(`#incident-list .plan[data-id="${id}"]`);
            if (el) seen.states.add(el.dataset.state);
            if (el?.dataset.state === "failed") {
                throw new Error(`plan failed: ${el.querySelector(".plan-error")?.textContent}`);
            }
            seen.progress = el?.querySelector(".plan-progress")?.textContent || seen.progress;
            seen.path = seen.path || window.yingji.map
                .queryRenderedFeatures({layers: ["plan-paths-active"]}).some((f) => f.properties.id === id);
            return seen.states.has("flying") && seen.path && /\\d+\\/\\d+/.test(seen.progress);
        }""",
        arg=third_id, polling=100, timeout=DEADLINE_MS)
    await page.screenshot(path=str(ARTIFACTS / "console_plans_flying.png"))
    flown = _plan(live, third_id)
    assert (flown["decided_by"], flown["pilot"]) == (OPERATOR, PILOT)
    launched = flown["proposal"]["launch"]["override"]
    assert (launched["by"], launched["reason"]) == (OPERATOR, OVERRIDE_REASON)
    assert OVERRIDE_REASON in await plan.locator(".plan-override").inner_text()
    assert PILOT in await plan.locator(".plan-decision").inner_text()
    await page.locator('#event-log .event.warn[data-kind="plan.launch_override"]').wait_for(
        state="attached", timeout=DEADLINE_MS)

    # Another incident selected: the first one's plans leave its card and the map.
    await asyncio.to_thread(live.publish_rainstorm, OTHER_GAUGE)
    other = page.locator(f'#incident-list .incident:not([data-id="{incident_id}"])')
    await other.first.wait_for(state="visible", timeout=DEADLINE_MS)
    await other.first.locator(".incident-title").click()
    await page.wait_for_function(
        "async () => (await window.yingji.sourceData('plan-paths')).features.length === 0",
        timeout=DEADLINE_MS)
    # the card list is redrawn on its own pass after the map's: wait for it, then the other card shows its own
    await item.locator(".plans").wait_for(state="detached", timeout=DEADLINE_MS)
    button = other.first.locator(".plans .plan-btn")
    assert await button.inner_text() == "规划任务"
    await page.locator("#lang-toggle").click()
    assert await button.inner_text() == "Plan vehicles"
