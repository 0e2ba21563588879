"""People commanding vehicles through the API: control leases, commands, photos, fleet
commands, and the flight record (on-board log) — service and simulated copter in this
process, the API on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import uvicorn

from command.api.app import create_app
from command.runtime import Service
from tests.fixtures_mqtt import free_port
from tests.fixtures_service import DEADLINE_S, open_rain_incident

TOKEN = {"Authorization": "Bearer t"}


@contextlib.asynccontextmanager
async def serving(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=TOKEN, timeout=30) as http:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.02)
            yield http
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture(loop_scope="function")
async def api(make_service, tmp_path: Path):
    service, sim = await make_service(sim_options={"images_dir": tmp_path / "images",
                                                   "district_dir": None}, loiter_s=5.0)
    async with serving(service) as http:
        yield service, sim, http


async def test_one_operator_controls_a_vehicle_others_are_refused(api) -> None:
    service, sim, http = api
    r = await http.post("/api/vehicles/UAV-1/control", json={"operator": "dispatcher:zhang"})
    assert r.status_code == 200 and r.json()["previous"] is None
    r = await http.post("/api/vehicles/UAV-1/command", json={"operator": "dispatcher:li", "action": "rtl"})
    assert r.status_code == 409 and "dispatcher:zhang" in r.json()["detail"]
    r = await http.post("/api/vehicles/UAV-1/control", json={"operator": "dispatcher:li"})
    assert r.status_code == 409
    r = await http.post("/api/vehicles/UAV-1/control", json={"operator": "dispatcher:li", "force": True})
    assert r.status_code == 200 and r.json()["previous"] == "dispatcher:zhang"
    assert (await http.get("/api/vehicles")).json()["vehicles"][0]["controller"] == "dispatcher:li"
    r = await http.post("/api/vehicles/UAV-1/command", json={"operator": "dispatcher:zhang", "action": "hold"})
    assert r.status_code == 409

    # "look here", then a photo: taken where the copter is, stored, geotagged
    r = await http.post("/api/vehicles/UAV-1/command",
                        json={"operator": "dispatcher:li", "action": "look_at", "lon": 106.85, "lat": 29.713})
    assert r.status_code == 200, r.text
    r = await http.post("/api/vehicles/UAV-1/command", json={"operator": "dispatcher:li", "action": "photo"})
    assert r.status_code == 200, r.text
    image = r.json()["image"]
    assert abs(image["lon"] - sim.lon) < 1e-4 and abs(image["lat"] - sim.lat) < 1e-4
    path = Path(image["file_url"].removeprefix("file://"))
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = await http.request("DELETE", "/api/vehicles/UAV-1/control", json={"operator": "dispatcher:zhang"})
    assert r.status_code == 409  # only the holder gives control back
    r = await http.request("DELETE", "/api/vehicles/UAV-1/control", json={"operator": "dispatcher:li"})
    assert r.status_code == 204
    r = await http.post("/api/vehicles/UAV-1/command", json={"operator": "dispatcher:zhang", "action": "explode"})
    assert r.status_code == 422  # not an action
    r = await http.post("/api/vehicles/NOPE/command", json={"operator": "dispatcher:zhang", "action": "rtl"})
    assert r.status_code == 404
    r = await http.post("/api/vehicles/UAV-1/command", json={"action": "rtl"}, headers={"Authorization": ""})
    assert r.status_code == 401


async def test_rtl_all_brings_a_flying_copter_home_and_its_log_is_kept(api, mosquitto) -> None:
    service, sim, http = api
    incident_id = await open_rain_incident(service, mosquitto.url)
    r = await http.post(f"/api/incidents/{incident_id}/dispatch", json={"by": "chief", "pilot": "Pilot Zhao"})
    assert r.status_code == 202, r.text
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0:
            await asyncio.sleep(0.05)
    r = await http.post("/api/fleet/command", json={"operator": "chief", "action": "rtl"})
    assert r.status_code == 200, r.text
    outcomes = r.json()["outcomes"]
    assert outcomes["UAV-1"]["ok"] and outcomes["UAV-1"]["action"] == "RTL"
    # the others are not simulated here: each gets its own error, and the command went on
    assert outcomes["UAV-2"]["error"]["type"] == "VehicleUnavailable" and not outcomes["UAV-2"]["ok"]
    assert sim.mode == "RTL"
    async with asyncio.timeout(DEADLINE_S):
        while not (flights := (await http.get("/api/flights")).json()["flights"]) or not (
                flights[0]["log_file"] or flights[0]["log_error"]):
            await asyncio.sleep(0.2)
    [flight] = flights
    assert flight["state"] == "landed" and flight["pilot"] == "Pilot Zhao", flight
    assert flight["log_error"] is None, flight
    log_file = Path(flight["log_file"])
    assert log_file.exists() and log_file.stat().st_size > 0
