"""The dispatcher's task plans through the running system: propose, edit, reject, approve with a
pilot in command, fly against the simulated fleet and follow until home — over real HTTP, MQTT,
MAVLink and SQLite."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx

from tests.fixtures_service import LiveService

FLIGHT_DEADLINE_S = 120.0


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    k = 111_320.0
    return math.hypot((a[0] - b[0]) * k * math.cos(math.radians(a[1])), (a[1] - b[1]) * k)


def test_plan_proposed_edited_approved_flown_and_followed(live_service: LiveService) -> None:
    live = live_service
    incident = live.get(f"/api/incidents/{live.incident_id}")
    url = f"/api/incidents/{live.incident_id}/plans"
    assert httpx.post(live.base_url + url, json={"by": "x"}).status_code == 401
    with live.client() as http:
        proposed = http.post(url, json={"by": "dispatcher-zhao"})
        assert proposed.status_code == 201, proposed.text
        [plan] = proposed.json()["plans"]
        assert plan["state"] == "proposed" and plan["task_key"] == "recon" and plan["vehicle"] == "UAV-1"
        p = plan["proposal"]
        # what a dispatcher decides on: vehicle, path, time to target, battery at landing, return, checks
        assert p["time_to_target_s"] > 0 and 30 < p["battery_at_landing_pct"] < 100
        assert p["path"][0] == p["path"][-1] and p["return"]["mode"] in ("RTL", "SMART_RTL")
        assert any(c.startswith("height:") for c in p["checks"]) and p["approvals"] == []
        # asking again proposes nothing new: the task has its proposal
        again = http.post(url, json={"by": "dispatcher-zhao"}).json()
        assert again["plans"] == []

        # an edit the planner cannot honour is refused with the reason, the proposal stays
        far = http.post(f"/api/plans/{plan['id']}/edit",
                        json={"by": "dispatcher-zhao", "vehicle": "UAV-3", "reason": "keep UAV-1 for the plant"})
        assert far.status_code == 422 and "reserve" in far.json()["detail"], far.text
        assert live.get(f"/api/plans/{plan['id']}")["state"] == "proposed"
        # edited: higher over the ground; the first proposal is superseded
        edited = http.post(f"/api/plans/{plan['id']}/edit",
                           json={"by": "dispatcher-zhao", "clearance_m": 80, "reason": "masts near the gauge"})
        assert edited.status_code == 201, edited.text
        assert edited.json()["vehicle"] == "UAV-1" and edited.json()["proposal"]["edited_from"] == plan["id"]
        assert edited.json()["proposal"]["cruise_amsl_m"] > p["cruise_amsl_m"]
        assert live.get(f"/api/plans/{plan['id']}")["state"] == "superseded"
        assert http.post(f"/api/plans/{plan['id']}/approve",
                         json={"by": "d", "pilot": "p"}).status_code == 409  # a superseded plan never flies
        bad = http.post(f"/api/plans/{plan['id']}/edit", json={"by": "d", "vehicle": "UAV-9", "reason": "r"})
        assert bad.status_code == 409  # only a proposal can be edited

        # rejected with a reason, then proposed again (UAV-1, the nearest)
        second = edited.json()
        rejected = http.post(f"/api/plans/{second['id']}/reject", json={"by": "dispatcher-zhao", "reason": "wait"})
        assert rejected.status_code == 200 and rejected.json()["decision_reason"] == "wait"
        [plan] = http.post(url, json={"by": "dispatcher-zhao"}).json()["plans"]
        assert plan["vehicle"] == "UAV-1"

        # approval needs a pilot in command, and the launch weather from the nearest station
        nopilot = http.post(f"/api/plans/{plan['id']}/approve", json={"by": "dispatcher-zhao"})
        assert nopilot.status_code == 422
        blind = http.post(f"/api/plans/{plan['id']}/approve", json={"by": "dispatcher-zhao", "pilot": "Pilot Li"})
        assert blind.status_code == 422 and "no weather observation" in blind.text, blind.text
        now = time.time()
        live.publish("yingji/sensors/wx-luoqi-valley/senml", json.dumps([
            {"bn": "urn:dev:yingji:wx-luoqi-valley:", "bt": now, "n": "wind_speed", "u": "m/s", "v": 16.5},
            {"n": "temp", "u": "Cel", "v": 29.0}, {"n": "rain", "u": "mm", "v": 0.0}]))
        live.wait_until(lambda: live.get("/api/sensors/wx-luoqi-valley/readings")["readings"] or None,
                        "the weather station's readings")
        windy = http.post(f"/api/plans/{plan['id']}/approve", json={"by": "dispatcher-zhao", "pilot": "Pilot Li"})
        assert windy.status_code == 422 and "mean wind 16.5 m/s above the limit" in windy.text, windy.text
        assert live.get(f"/api/plans/{plan['id']}")["state"] == "proposed"
        # launched anyway, with the reason on record; approved once only
        approved = http.post(f"/api/plans/{plan['id']}/approve", json={
            "by": "dispatcher-zhao", "pilot": "Pilot Li", "override_reason": "sheltered launch site, checked on site"})
        assert approved.status_code == 202, approved.text
        assert approved.json()["pilot"] == "Pilot Li" and approved.json()["decided_by"] == "dispatcher-zhao"
        launch = approved.json()["proposal"]["launch"]
        assert launch["station_id"] == "wx-luoqi-valley" and launch["override"]["by"] == "dispatcher-zhao"
        assert any("gusts" in n for n in launch["not_checked"])
        twice = http.post(f"/api/plans/{plan['id']}/approve", json={"by": "dispatcher-qian", "pilot": "Pilot Sun"})
        assert twice.status_code == 409 and "uploading" in twice.text

    def landed() -> dict[str, Any] | None:
        row = live.get(f"/api/plans/{plan['id']}")
        if row["state"] == "failed":
            raise AssertionError(f"the plan failed: {row['error']}")
        return row if row["state"] == "landed" else None

    done = live.wait_until(landed, "the plan's flight to end", timeout_s=FLIGHT_DEADLINE_S)
    progress = done["progress"]
    assert progress["reached"] is True and progress["items"] == plan["proposal"]["items"]
    # last written at landing: home again, as far from the target as the base is
    home, target = tuple(plan["proposal"]["path"][0]), tuple(plan["task"]["point"])
    assert abs(progress["distance_to_target_m"] - _metres(home, target)) < 50.0
    after = live.get(f"/api/incidents/{live.incident_id}")
    assert [(p["task_key"], p["state"]) for p in after["plans"] if p["id"] == plan["id"]] == [("recon", "landed")]
    [entry] = live.get("/api/flights")["flights"]
    assert entry["pilot"] == "Pilot Li" and entry["approved_by"] == "dispatcher-zhao" and entry["state"] == "landed"
    final = live.vehicles()["UAV-1"]
    assert final["armed"] is False and _metres((final["lon"], final["lat"]), tuple(plan["proposal"]["path"][0])) < 5
    # the copter flew the plan's levels above sea level, never lower than its clearance over the target
    assert entry["max_agl_m"] is not None and entry["max_agl_m"] <= 120.0 + 1.0
    kinds = [e["kind"] for e in live.get("/api/events?limit=2000")["events"]]
    for kind in ("plan.proposed", "plan.edited", "plan.rejected", "plan.launch_override", "plan.approved",
                 "plan.state", "plan.progress", "mission.completed"):
        assert kind in kinds, kind
    assert incident["kind"] == "rainstorm"


async def test_a_higher_priority_incident_takes_a_flying_vehicle_and_its_task_is_handed_over(make_service) -> None:
    """A red incident with no free vehicle: the proposal names the copter flying for a yellow one; the
    dispatcher recalls it, the yellow incident's task is handed over (proposed again), and once home the
    copter is proposed for the red incident."""
    import asyncio

    from command.api.app import create_app
    from sensors.model import Reading

    service, sim = await make_service()
    now = service.clock.now()
    service.ingest_http([Reading("wx-luoqi-valley", q, v, u, now) for q, v, u in (
        ("wind_speed", 3.0, "m/s"), ("temp", 27.0, "Cel"), ("rain", 0.0, "mm"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t",
                                 headers={"Authorization": "Bearer t"}) as http:
        async def report(level: str, lon: float, lat: float) -> int:
            r = await http.post("/api/incidents", json={
                "by": "dispatcher-zhao", "kind": "other", "level": level, "title": f"{level} report",
                "source": "hotline_110", "location": {"lon": lon, "lat": lat}})
            assert r.status_code == 201, r.text
            return r.json()["incident"]["id"]

        async def until(predicate, what: str):
            async with asyncio.timeout(60):
                while not (value := predicate()):
                    await asyncio.sleep(0.1)
            return value

        yellow = await report("yellow", 106.870, 29.718)
        [low] = (await http.post(f"/api/incidents/{yellow}/plans", json={"by": "dispatcher-zhao"})).json()["plans"]
        assert low["vehicle"] == "UAV-1"
        approved = await http.post(f"/api/plans/{low['id']}/approve", json={"by": "dispatcher-zhao", "pilot": "Li"})
        assert approved.status_code == 202, approved.text
        await until(lambda: service.store.plan(low["id"]).state == "flying", "the yellow plan to fly")

        red = await report("red", 106.850, 29.705)
        [high] = (await http.post(f"/api/incidents/{red}/plans", json={"by": "dispatcher-zhao"})).json()["plans"]
        assert high["state"] == "refused" and high["vehicle"] is None
        [candidate] = high["proposal"]["preempt"]
        assert (candidate["plan_id"], candidate["vehicle"], candidate["incident_id"]) == (low["id"], "UAV-1", yellow)
        assert any("could be recalled" in r for r in high["proposal"]["reasons"])
        # the other way round is refused: a yellow incident does not take the red one's vehicle
        wrong = await http.post(f"/api/plans/{low['id']}/preempt",
                                json={"by": "d", "reason": "r", "for_incident": yellow})
        assert wrong.status_code == 422 and "does not outrank" in wrong.text
        taken = await http.post(f"/api/plans/{low['id']}/preempt", json={
            "by": "dispatcher-zhao", "reason": "people trapped at the red report", "for_incident": red})
        assert taken.status_code == 200, taken.text
        assert taken.json()["progress"]["handed_over"] is True
        kinds = [e.kind for e in service.store.events(limit=5000)]
        assert "plan.preempted" in kinds and "plan.handover" in kinds
        # the yellow task was proposed again (no other vehicle: refused, with the reason), not dropped
        again = [p for p in service.store.plans(incident_id=yellow) if p.id != low["id"]]
        assert [(p.task_key, p.state) for p in again] == [(low["task_key"], "refused")]
        # home, the copter is free for the red incident
        await until(lambda: service.store.plan(low["id"]).state == "landed", "the recalled copter to land")
        await until(lambda: service._plan_vehicles(only="UAV-1"), "UAV-1 to be ready again")
        [now_red] = (await http.post(f"/api/incidents/{red}/plans", json={"by": "dispatcher-zhao"})).json()["plans"]
        assert now_red["state"] == "proposed" and now_red["vehicle"] == "UAV-1"
        assert now_red["task"]["incident_id"] == red
