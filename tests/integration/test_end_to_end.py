"""End to end over real sockets: sensor reading → incident → approval → simulated copter
flies over the incident and lands back home; observed through the API and /ws."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import aiomqtt
import httpx
import pytest
import websockets

from tests.fixtures_service import LiveService, _publish, start_live

FLIGHT_DEADLINE_S = 120.0


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[1] - b[1]) * 111_320.0
    dx = (a[0] - b[0]) * 111_320.0 * math.cos(math.radians(a[1]))
    return math.hypot(dx, dy)


async def _events_until(ws: Any, stop_kind: str, *, deadline_s: float) -> list[dict[str, Any]]:
    """The events of the live feed's frames (docs/live-feed.md) up to the first of ``stop_kind``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(deadline_s):
        while True:
            frame = json.loads(await ws.recv())
            assert frame["type"] == "frame", frame
            for event in frame["events"]:
                seen.append(event)
                if event["kind"] == stop_kind:
                    return seen


async def test_reading_to_incident_to_flight_and_home(live_service: LiveService) -> None:
    live = live_service
    incident = live.get(f"/api/incidents/{live.incident_id}")
    assert incident["kind"] == "rainstorm" and incident["level"] == "orange" and incident["status"] == "open"
    assert incident["evidence"] and incident["evidence"][-1]["sensor_id"] == "rain-luoqi"
    assert "not an official warning signal" in incident["assessment_note"]
    assert {t["department"] for t in incident["tasks"]} >= {"emergency", "fire", "traffic", "health"}
    base = live.vehicles()["UAV-1"]
    home = (base["lon"], base["lat"])

    ws_url = live.base_url.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": live.token}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome" and welcome["operator"] is True, welcome
        async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
            r = await http.post(f"/api/incidents/{live.incident_id}/dispatch",
                                headers={"Authorization": f"Bearer {live.token}"},
                                json={"by": "duty dispatcher", "pilot": "Pilot Wang"})
        assert r.status_code == 202, r.text
        assert r.json()["incident"]["dispatch"]["vehicle"] == "UAV-1"
        events = await _events_until(ws, "mission.completed", deadline_s=FLIGHT_DEADLINE_S)

    kinds = [e["kind"] for e in events]
    for kind in ("dispatch.approved", "mission.uploaded", "dispatch.state", "mission.completed"):
        assert kind in kinds, f"{kind} missing from {sorted(set(kinds))}"
    assert kinds.index("dispatch.approved") < kinds.index("mission.uploaded") < kinds.index("mission.completed")
    [preflight] = [e["data"] for e in events if e["kind"] == "dispatch.preflight"]
    assert preflight["passed"] and {"heartbeat", "ekf", "gps", "battery", "fence"} <= {
        c["name"] for c in preflight["checks"]}
    assert kinds.index("dispatch.preflight") < kinds.index("dispatch.state")  # checked before arming
    states = [e["data"]["state"] for e in events if e["kind"] == "dispatch.state"]
    assert states == ["flying", "returning", "landed"]
    uav1 = [e["data"] for e in events if e["kind"] == "vehicle.telemetry" and e["data"]["name"] == "UAV-1"]
    target = (incident["lon"], incident["lat"])
    closest = min(_metres((t["lon"], t["lat"]), target) for t in uav1 if t["lon"] is not None)
    highest = max(t["alt_rel_m"] or 0.0 for t in uav1)
    assert closest < 30.0, f"the copter never came over the incident (closest {closest:.0f} m)"
    assert highest > 50.0, f"the copter never climbed to its cruise height (highest {highest:.0f} m)"

    final = live.vehicles()["UAV-1"]
    # home and disarmed: free for the next task (charging: the flight used some of its battery)
    assert final["armed"] is False and final["state"] in ("ready", "charging") and final["incident_id"] is None
    assert _metres((final["lon"], final["lat"]), home) < 5.0
    after = live.get(f"/api/incidents/{live.incident_id}")
    assert after["dispatch"]["state"] == "landed" and after["dispatch"]["approved_by"] == "duty dispatcher"
    track = live.get("/api/vehicles/UAV-1/track")["track"]
    assert len(track) >= 3 and any(p["armed"] for p in track)

    # the flight log book: one entry with pilot, approval, times, path and height above ground
    [entry] = live.get("/api/flights")["flights"]
    assert entry["vehicle"] == "UAV-1" and entry["incident_id"] == live.incident_id
    assert entry["pilot"] == "Pilot Wang" and entry["approved_by"] == "duty dispatcher"
    assert entry["state"] == "landed"
    assert entry["approved_at"] <= entry["armed_at"] <= entry["takeoff_at"] < entry["landed_at"]
    # cruise is 60 m above the highest ground on the leg; over lower ground it is higher
    assert 55.0 < entry["max_agl_m"] < 120.0, entry
    assert entry["distance_m"] > 2 * 0.8 * _metres(home, target)
    flight = live.get(f"/api/flights/{entry['id']}")
    assert len(flight["path"]) >= 3 and flight["preflight"]["passed"]
    # the on-board log is downloaded after landing and kept with the entry
    logged = live.wait_until(lambda: (f := live.get("/api/flights")["flights"][0])["log_file"] or f["log_error"],
                             "the flight's on-board log")
    assert logged == live.get("/api/flights")["flights"][0]["log_file"], logged
    csv_text = httpx.get(live.base_url + "/api/flights.csv").text.splitlines()
    assert csv_text[0].startswith("id,vehicle,incident_id,pilot") and "Pilot Wang" in csv_text[1]


async def test_repeated_and_concurrent_approvals_upload_one_mission(live_service: LiveService) -> None:
    live = live_service
    headers = {"Authorization": f"Bearer {live.token}"}
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        first, second = await asyncio.gather(
            http.post(f"/api/incidents/{live.incident_id}/dispatch", headers=headers),
            http.post(f"/api/incidents/{live.incident_id}/dispatch", headers=headers))
        third = await http.post(f"/api/incidents/{live.incident_id}/dispatch", headers=headers)
    codes = sorted([first.status_code, second.status_code])
    assert codes == [202, 409], (first.text, second.text)
    assert third.status_code == 409 and "already approved" in third.json()["detail"]
    live.wait_until(lambda: any(e["kind"] == "mission.uploaded" for e in live.get("/api/events")["events"]),
                    "the mission upload")
    uploads = [e for e in live.get("/api/events")["events"] if e["kind"] == "mission.uploaded"]
    assert len(uploads) == 1
    on_task = [v for v in live.vehicles().values() if v["state"] == "on_task"]
    assert [v["name"] for v in on_task] == ["UAV-1"]


def test_state_changes_need_the_token_and_bad_requests_say_why(live_service: LiveService) -> None:
    live = live_service
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        r = http.post(f"/api/incidents/{live.incident_id}/dispatch")
        assert r.status_code == 401 and "bearer token" in r.json()["detail"]
        r = http.post(f"/api/incidents/{live.incident_id}/dispatch", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        auth = {"Authorization": f"Bearer {live.token}"}
        r = http.post("/api/incidents/9999/dispatch", headers=auth)
        assert r.status_code == 404 and "9999" in r.json()["detail"]
        r = http.post(f"/api/incidents/{live.incident_id}/dispatch", headers=auth, content=b"{not json")
        assert r.status_code == 422
        r = http.post("/api/tasks/1/ack", headers=auth, json={"by": ""})
        assert r.status_code == 422
        r = http.get("/api/layers/nope")
        assert r.status_code == 404 and "boundary" in r.json()["detail"]
    # nothing was dispatched by any of these
    assert live.get(f"/api/incidents/{live.incident_id}")["dispatch"] is None


def test_unsafe_mission_is_refused_with_the_reason_and_not_flown(live_system: LiveService) -> None:
    live = live_system
    # Longxing lies on a plateau: a straight leg from the nearest copter base would fly
    # more than 120 m above the valley floor to clear it.
    live.publish_rainstorm("rain-longxing")
    incident = live.wait_incident("rain-longxing")
    with live.client() as http:
        r = http.post(f"/api/incidents/{incident['id']}/dispatch")
    assert r.status_code == 422, r.text
    assert "120 m" in r.json()["detail"]
    after = live.get(f"/api/incidents/{incident['id']}")
    assert after["status"] == "open" and after["dispatch"]["state"] == "refused"
    kinds = [e["kind"] for e in live.get("/api/events")["events"]]
    assert "dispatch.refused" in kinds and "mission.uploaded" not in kinds
    assert all(v["state"] == "ready" and not v["armed"] for v in live.vehicles().values())


def test_bad_payloads_are_counted_and_good_ones_still_open_incidents(live_system: LiveService) -> None:
    live = live_system
    topic = "yingji/sensors/cuntan-level/senml"
    good = json.dumps([{"bn": "urn:dev:yingji:cuntan-level:", "n": "level", "u": "m", "v": 181.3}])
    asyncio.run(_publish(live.broker_url, [
        (topic, b"\xff\xfe not json"),
        (topic, json.dumps({"n": "level"})),
        (topic, json.dumps([{"bn": "urn:dev:yingji:cuntan-level:", "n": "level", "u": "cm", "v": 18130}])),
        (topic, json.dumps([{"bn": "urn:dev:yingji:cuntan-level:", "n": "level", "u": "m", "v": 9999}])),
        ("yingji/sensors/no-such-gauge/senml", json.dumps([{"bn": "urn:dev:yingji:no-such-gauge:", "n": "level",
                                                             "u": "m", "v": 1.0}])),
        (topic, good),
    ]))
    incident = live.wait_incident("cuntan-level")
    assert incident["kind"] == "flood" and incident["level"] == "yellow" and incident["on_water"] is True
    assert "180.50" in incident["reason"]
    def rejections_counted() -> str | None:
        text = httpx.get(live.base_url + "/metrics").text
        return text if "unknown_sensor" in text else None

    metrics = live.wait_until(rejections_counted, "the rejections in /metrics")
    for reason in ("malformed_json", "bad_senml", "wrong_unit", "unknown_sensor"):
        assert f'yingji_readings_rejected_total{{reason="{reason}"}} 1' in metrics, metrics
    # the impossible 9999 m is kept, flagged bad, and opens nothing
    assert 'yingji_readings_flagged_total{flag="bad",check="range"} 1' in metrics, metrics
    assert "yingji_readings_accepted_total 2" in metrics
    sensors = {f["properties"]["id"]: f["properties"] for f in live.get("/api/sensors")["features"]}
    assert sensors["cuntan-level"]["latest"]["value"] == pytest.approx(181.3)


def test_departments_receive_tasks_over_mqtt_and_acknowledge(live_system: LiveService) -> None:
    live = live_system

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        host, port = live.broker_url.removeprefix("mqtt://").rsplit(":", 1)
        received: dict[str, dict[str, Any]] = {}
        async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V311) as client:
            await client.subscribe("yingji/departments/+/tasks/#", qos=1)
            await asyncio.to_thread(live.publish_rainstorm)
            incident = await asyncio.to_thread(live.wait_incident)
            tasks = (await asyncio.to_thread(live.get, f"/api/tasks?incident_id={incident['id']}"))["tasks"]
            async with asyncio.timeout(20):
                async for msg in client.messages:
                    received[str(msg.topic)] = json.loads(msg.payload)
                    if all(f"yingji/departments/{t['department']}/tasks/{t['id']}" in received for t in tasks):
                        return tasks, received
        return tasks, received

    tasks, received = asyncio.run(scenario())
    # every task of the playbook on its department's topic, as the API has it
    assert {(t["department"], t["id"]) for t in tasks} == {(m["department"], m["id"]) for m in received.values()}
    assert {"emergency", "fire", "traffic", "health"} <= {t["department"] for t in tasks}
    fire = next(t for t in tasks if t["department"] == "fire")
    assert fire["status"] == "sent" and "Luoqi" in fire["text"] and "洛碛" in fire["text_zh"]
    with live.client() as http:
        r = http.post(f"/api/tasks/{fire['id']}/ack", json={"by": "Fire duty officer"})
        assert r.status_code == 200 and r.json()["task"]["status"] == "acknowledged"
    incident = live.get(f"/api/incidents/{fire['incident_id']}")
    status = {t["id"]: t["status"] for t in incident["tasks"]}
    assert status == {t["id"]: ("acknowledged" if t["id"] == fire["id"] else "sent") for t in tasks}


def test_a_silent_vehicle_is_reported_lost(live_system: LiveService) -> None:
    live = live_system
    live.fleet.stop()  # every simulated vehicle goes silent at once
    lost = live.wait_until(lambda: all(v["state"] == "lost" for v in live.vehicles().values()) or None,
                           "the vehicles to be reported lost", watch=(live.service,))
    assert lost
    kinds = [e["kind"] for e in live.get("/api/events")["events"]]
    assert kinds.count("vehicle.lost") == 6  # the whole fleet: four copters, two boats
    assert 'yingji_vehicles{state="lost"} 6' in httpx.get(live.base_url + "/metrics").text


def test_restart_keeps_incidents_tracks_and_events(live_service: LiveService) -> None:
    live = live_service
    with live.client() as http:
        assert http.post(f"/api/incidents/{live.incident_id}/dispatch").status_code == 202
    live.wait_until(lambda: live.get(f"/api/incidents/{live.incident_id}")["dispatch"]["state"] == "flying",
                    "the copter to take off")
    live.wait_until(lambda: len(live.get("/api/vehicles/UAV-1/track")["track"]) >= 2, "a few track points")
    before_events = live.get("/api/events")["events"]
    before_track = live.get("/api/vehicles/UAV-1/track")["track"]
    assert live.stop_service() in (0, -15)
    live.start_service()
    after = live.get(f"/api/incidents/{live.incident_id}")
    assert after["id"] == live.incident_id and after["level"] == "orange" and after["dispatch"]["vehicle"] == "UAV-1"
    track = live.get("/api/vehicles/UAV-1/track")["track"]
    assert track[: len(before_track)] == before_track
    events = live.get("/api/events")["events"]
    assert events[: len(before_events)] == before_events
    # the restarted service keeps watching the flight to its end
    live.wait_until(lambda: live.get(f"/api/incidents/{live.incident_id}")["dispatch"]["state"] == "landed",
                    "the resumed flight to land", timeout_s=FLIGHT_DEADLINE_S)


def test_a_signed_fleet_flies_and_the_service_signs(mosquitto, yubei_folder, tmp_path) -> None:
    """Every vehicle has its own MAVLink 2 signing key in the fleet file; the simulator
    refuses unsigned commands, so a completed flight shows the service signs per vehicle."""
    live = start_live(mosquitto, yubei_folder, tmp_path, signed=True)
    try:
        live.publish_rainstorm()
        incident_id = live.wait_incident()["id"]
        with live.client() as http:
            assert http.post(f"/api/incidents/{incident_id}/dispatch").status_code == 202
        live.wait_until(lambda: (live.get(f"/api/incidents/{incident_id}")["dispatch"] or {}).get("state")
                        in ("landed", "failed"), "the signed flight to end", timeout_s=FLIGHT_DEADLINE_S)
        dispatch = live.get(f"/api/incidents/{incident_id}")["dispatch"]
        assert dispatch["state"] == "landed", dispatch
    finally:
        live.service.stop()
        live.fleet.stop()
