"""The dispatcher console in headless Chromium against the real service.

The `live_service` fixture runs a private Mosquitto, the simulated fleet and the
service, and has opened an incident from a threshold-crossing reading. The page must
render the map offline, list the incident, approve its dispatch, and show the
dispatched vehicle moving from live telemetry.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
MAPLIBRE = REPO / "mapui" / "node_modules" / "maplibre-gl" / "dist" / "maplibre-gl.mjs"
ARTIFACTS = REPO / "test-artifacts"
DEADLINE_MS = 30_000  # a deadline for slow machines, not a speed requirement
POSITIONS_SEEN = 3  # the start position and two later ones: the vehicle is moving

# `make test` installs both; a missing one is a broken set-up, not a reason to skip.
assert CHROMIUM.exists(), "Debian's Chromium (/usr/bin/chromium) is not installed: run `make test`"
assert MAPLIBRE.exists(), "MapLibre GL JS missing: run `make install` (npm ci in mapui/)"


async def test_console_shows_sensors_incident_and_moving_vehicle(live_service) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    base = live_service.base_url.rstrip("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    incident_id = int(live_service.incident_id)
    page_errors: list[str] = []
    outside_requests: list[str] = []

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("pageerror", lambda err: page_errors.append(str(err)))

            def note_request(request) -> None:
                # The console must work with no internet: every request stays local.
                url = request.url
                if not (url.startswith(origin) or url.startswith(("data:", "blob:"))):
                    outside_requests.append(url)

            async def dismiss(dialog) -> None:
                await dialog.dismiss()  # a prompt means the token was not taken: fails below

            page.on("request", note_request)
            page.on("dialog", dismiss)
            try:
                await page.goto(f"{base}/#token={live_service.token}")
                await page.wait_for_function("window.yingji?.mapLoaded === true", timeout=DEADLINE_MS)
                assert "token" not in page.url, "the token must be stripped from the address bar"

                # Sensors: counted in the panel, present in the map source, drawn on the map.
                await page.wait_for_function(
                    "Number(document.querySelector('#sensor-count').textContent) > 0",
                    timeout=DEADLINE_MS,
                )
                source_count = await page.evaluate(
                    "async () => (await window.yingji.sourceData('sensors')).features.length"
                )
                assert source_count > 0
                await page.wait_for_function(
                    "window.yingji.map.queryRenderedFeatures({layers: ['sensors']}).length > 0",
                    timeout=DEADLINE_MS,
                )

                # The incident opened by the fixture's reading, with its approve button.
                item = page.locator(f'#incident-list .incident[data-id="{incident_id}"]')
                await item.wait_for(state="visible", timeout=DEADLINE_MS)
                # The "system assessment, not an official signal" note, and the time in
                # Asia/Shanghai (the UI's local time; the API speaks UTC).
                assert (await item.locator(".assessment-note").inner_text()).strip()
                opened_at = await page.evaluate(
                    "(id) => window.yingji.incidents.get(id).opened_at", incident_id
                )
                local = datetime.fromisoformat(opened_at).astimezone(ZoneInfo("Asia/Shanghai"))
                shown_time = await item.locator(".incident-meta time").inner_text()
                assert shown_time == local.strftime("%Y-%m-%d %H:%M:%S")
                await item.locator(".approve-btn").click()
                await page.wait_for_function(
                    """(id) => {
                        const inc = window.yingji.incidents.get(id);
                        const err = document.querySelector(
                            `#incident-list .incident[data-id="${id}"] .incident-error`);
                        return Boolean(err) || Boolean(inc && inc.dispatch && inc.dispatch.vehicle);
                    }""",
                    arg=incident_id,
                    timeout=DEADLINE_MS,
                )
                error = item.locator(".incident-error")
                assert await error.count() == 0, await error.inner_text()
                vehicle = await page.evaluate(
                    "(id) => window.yingji.incidents.get(id).dispatch.vehicle", incident_id
                )

                # The dispatched vehicle's displayed position changes with live telemetry.
                row = page.locator(f'#vehicle-list .vehicle[data-name="{vehicle}"]')
                await row.wait_for(state="visible", timeout=DEADLINE_MS)
                await page.wait_for_function(
                    """([name, wanted]) => {
                        const el = document.querySelector(
                            `#vehicle-list .vehicle[data-name="${name}"] .pos`);
                        const seen = (window.__positionsSeen ??= new Set());
                        if (el) seen.add(el.textContent);
                        return seen.size >= wanted;
                    }""",
                    arg=[vehicle, POSITIONS_SEEN],
                    polling=100,
                    timeout=DEADLINE_MS,
                )
                # The panel shows the last telemetry (read in one task, after a flush).
                shown, telemetry = await page.evaluate(
                    """(name) => {
                        window.yingji.flush();
                        const el = document.querySelector(
                            `#vehicle-list .vehicle[data-name="${name}"] .pos`);
                        const v = window.yingji.vehicles.get(name);
                        return [el.textContent, [v.lon, v.lat]];
                    }""",
                    vehicle,
                )
                lon_text, lat_text = (part.strip() for part in shown.split(","))
                assert abs(float(lon_text) - telemetry[0]) < 1e-5
                assert abs(float(lat_text) - telemetry[1]) < 1e-5
                await page.locator(f'.vehicle-marker[data-name="{vehicle}"]').wait_for(
                    state="attached", timeout=DEADLINE_MS
                )
                # a flying vehicle is shown connected and on its task, not offline
                assert await row.get_attribute("data-link") == "connected"
                # (on a slow machine the short recon may already be on its way home)
                assert await row.get_attribute("data-state") in ("on_task", "returning")
                assert await page.locator("#event-log .event").count() > 0
            finally:
                await page.screenshot(path=str(ARTIFACTS / "console.png"))
        finally:
            await browser.close()

    assert not page_errors, page_errors
    assert not outside_requests, f"requests leaving the machine: {outside_requests}"
