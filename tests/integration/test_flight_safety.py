"""Safety outcomes of a flight, with the service and a simulated copter in one process
(real MQTT broker, real MAVLink over UDP)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest_asyncio
import shapely.geometry
import uvicorn
from fastapi import FastAPI, Response

from command.dispatch.patrols import load_patrols
from command.hazards import LOCAL
from command.runtime import Service
from sensors.model import Reading
from tests.fixtures_mqtt import free_port
from tests.fixtures_service import DEADLINE_S, RAIN_GAUGE, _publish, open_rain_incident, rainstorm_senml


@pytest_asyncio.fixture(loop_scope="function")
async def service_with_copter(make_service) -> tuple[Service, object]:
    return await make_service()


async def test_low_battery_on_a_mission_orders_the_copter_home(service_with_copter, mosquitto) -> None:
    service, sim = service_with_copter
    events = service.bus.subscribe(maxsize=100_000)
    incident_id = await open_rain_incident(service, mosquitto.url)
    service.approve_dispatch(incident_id, by="test")
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0:  # climbing out on the first leg
            await asyncio.sleep(0.05)
    # above the vehicle's own failsafe level (~20 %), below the service's return level (25 %)
    sim.set_battery_pct(24.0)
    seen: list[str] = []
    reached: list[int] = []
    async with asyncio.timeout(DEADLINE_S):
        while "mission.completed" not in seen:
            event = await events.queue.get()
            seen.append(event.kind)
            if event.kind == "vehicle.mission_reached":
                reached.append(event.data["seq"])
    assert "dispatch.low_battery" in seen
    assert seen.index("dispatch.low_battery") < seen.index("mission.completed")
    assert 3 not in reached, "the copter went on to loiter over the incident on a low battery"
    assert sim.mode == "RTL" and not sim.armed and sim.landed
    dispatch = service.store.dispatch(incident_id)
    assert dispatch is not None and dispatch.state == "landed"


async def test_a_vehicle_lost_on_a_mission_is_reported_with_its_incident(service_with_copter, mosquitto) -> None:
    service, sim = service_with_copter
    events = service.bus.subscribe(maxsize=100_000)
    incident_id = await open_rain_incident(service, mosquitto.url)
    service.approve_dispatch(incident_id, by="test")
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0:
            await asyncio.sleep(0.05)
    sim.pause_link()
    async with asyncio.timeout(DEADLINE_S):
        while True:
            event = await events.queue.get()
            if event.kind == "vehicle.lost":
                break
    assert event.data == {**event.data, "name": "UAV-1", "incident_id": incident_id}
    assert service.vehicle_view("UAV-1")["state"] == "lost"
    # the vehicle flies its uploaded mission on its own, which ends in RTL; when the link
    # returns, the service sees it home and closes the flight
    sim.resume_link()
    async with asyncio.timeout(DEADLINE_S * 2):
        while (d := service.store.dispatch(incident_id)) is None or d.state != "landed":
            await asyncio.sleep(0.2)
    assert not sim.armed and sim.landed


async def test_a_failed_preflight_check_keeps_the_vehicle_on_the_ground(service_with_copter, mosquitto) -> None:
    service, sim = service_with_copter
    sim.make_param_read_only("FS_GCS_ENABLE")  # the GCS failsafe cannot be switched on
    events = service.bus.subscribe(maxsize=100_000)
    incident_id = await open_rain_incident(service, mosquitto.url)
    service.approve_dispatch(incident_id, by="test")
    async with asyncio.timeout(DEADLINE_S):
        while (d := service.store.dispatch(incident_id)) is None or d.state not in ("failed", "flying"):
            await asyncio.sleep(0.05)
    assert d.state == "failed" and "FS_GCS_ENABLE" in (d.error or "")
    preflight = []
    while not events.queue.empty():
        event = events.queue.get_nowait()
        if event.kind == "dispatch.preflight":
            preflight.append(event.data)
    assert len(preflight) == 1 and not preflight[0]["passed"]
    assert not sim.armed and sim.landed
    incident = service.store.incident(incident_id)
    assert incident.status == "open"  # back to the dispatcher, who may approve again
    assert "UAV-1" not in service.assignments


async def test_positions_in_flight_are_reported_and_buffered_while_the_endpoint_fails(make_service, mosquitto) -> None:
    received: list[dict] = []
    answers = iter([503, 503])  # the endpoint is down for the first two reports
    receiver = FastAPI()

    @receiver.post("/positions")
    async def positions(body: dict) -> Response:
        status = next(answers, 200)
        if status == 200:
            received.extend(body["positions"])
        return Response(status_code=status)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        service, sim = await make_service(flight_report_url=f"http://127.0.0.1:{port}/positions",
                                          flight_report_period_s=0.2, loiter_s=5.0)
        incident_id = await open_rain_incident(service, mosquitto.url)
        service.approve_dispatch(incident_id, by="test", pilot="Pilot Li")
        async with asyncio.timeout(DEADLINE_S):
            while (d := service.store.dispatch(incident_id)) is None or d.state != "landed":
                await asyncio.sleep(0.2)
            while service.report_stats.batches == 0 or not received:
                await asyncio.sleep(0.1)
    finally:
        server.should_exit = True
        await serving
    assert service.report_stats.failures >= 2  # kept, then delivered when the endpoint answered
    assert {p["name"] for p in received} == {"UAV-1"}
    assert all(p["lon"] is not None and p["alt_amsl_m"] is not None for p in received)
    assert max(p["alt_rel_m"] for p in received) > 50.0
    times = [p["time"] for p in received]
    assert times == sorted(times)  # oldest first, nothing reordered by the retries
    [flight] = service.store.flights()
    assert flight.pilot == "Pilot Li" and flight.state == "landed" and flight.max_agl_m is not None


async def test_manned_traffic_heard_over_ads_b_holds_the_drone(service_with_copter, mosquitto) -> None:
    service, sim = service_with_copter
    events = service.bus.subscribe(maxsize=100_000)
    incident_id = await open_rain_incident(service, mosquitto.url)
    service.approve_dispatch(incident_id, by="test")
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0 or sim.mode != "AUTO":
            await asyncio.sleep(0.05)
    # a police helicopter 1.5 km north at the drone's height, flying south at 40 m/s: head-on
    north = sim.lat + 1500.0 / 111_320.0
    sim.inject_adsb(0x780ABC, sim.lon, north, sim.alt_amsl_m, 180.0, 40.0, callsign="B7001")
    alert = None
    async with asyncio.timeout(DEADLINE_S):
        while alert is None:
            event = await events.queue.get()
            if event.kind == "traffic.alert":
                alert = event.data
    assert alert["drone"] == "UAV-1" and alert["callsign"] == "B7001" and alert["action"] == "hold"
    async with asyncio.timeout(DEADLINE_S):
        while sim.mode not in ("BRAKE", "LOITER"):
            await asyncio.sleep(0.05)
    held = (sim.lon, sim.lat)
    await asyncio.sleep(1.0)
    assert abs(sim.lon - held[0]) < 1e-4 and abs(sim.lat - held[1]) < 1e-4  # it stays put
    logged = [(e.kind, e.data.get("operator")) for e in service.store.events(limit=100_000)]
    assert ("vehicle.command", "traffic-watch") in logged and ("traffic.alert", None) in logged
    sim.clear_adsb(0x780ABC)


async def test_a_plan_is_recalled_when_its_battery_only_just_gets_it_home_and_its_task_handed_over(
        service_with_copter, mosquitto) -> None:
    service, sim = service_with_copter
    events = service.bus.subscribe(maxsize=100_000)
    incident_id = await open_rain_incident(service, mosquitto.url)
    now = service.clock.now()
    service.ingest_http([Reading("wx-luoqi-valley", q, v, u, now) for q, v, u in (
        ("wind_speed", 3.0, "m/s"), ("temp", 27.0, "Cel"), ("rain", 0.0, "mm"))])
    [plan] = service.propose_plans(incident_id, by="dispatcher-zhao")["plans"]
    assert plan["vehicle"] == "UAV-1" and plan["state"] == "proposed"
    service.approve_plan(plan["id"], by="dispatcher-zhao", pilot="Pilot Li")
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0:
            await asyncio.sleep(0.05)
    # 32 %: above the 25 % low-battery return, but the way home and the 30 % reserve need more
    sim.set_battery_pct(32.0)
    recall = None
    async with asyncio.timeout(DEADLINE_S):
        while recall is None:
            event = await events.queue.get()
            if event.kind == "plan.recall":
                recall = event.data
    assert recall["id"] == plan["id"] and recall["vehicle"] == "UAV-1" and recall["reserve_pct"] == 30.0
    async with asyncio.timeout(DEADLINE_S):
        while sim.mode != "RTL" or service.store.plan(plan["id"]).state != "returning":
            await asyncio.sleep(0.05)
    row = service.store.plan(plan["id"])
    assert row.state == "returning" and row.progress["handed_over"] is True and "recalled" in row.progress[
        "handed_over_why"]
    # the task is not dropped: a new proposal for it (here no other vehicle answers, so it says why)
    later = [p for p in service.store.plans(incident_id=incident_id) if p.id != plan["id"]]
    assert [(p.task_key, p.proposed_by) for p in later] == [("recon", "hand-over")]
    assert later[0].state == "refused" and later[0].proposal["reasons"]
    async with asyncio.timeout(DEADLINE_S * 2):
        while service.store.plan(plan["id"]).state != "landed":
            await asyncio.sleep(0.2)


async def test_the_policy_flies_a_red_incidents_recon_with_the_duty_pilot(make_service, mosquitto) -> None:
    service, sim = await make_service(auto_approve_red_recon=True, duty_pilot="Pilot Duty")
    now = service.clock.now()
    service.ingest_http([Reading("wx-luoqi-valley", q, v, u, now) for q, v, u in (
        ("wind_speed", 3.0, "m/s"), ("temp", 27.0, "Cel"), ("rain", 0.0, "mm"))])
    # 120 mm in the hour: red at once
    await _publish(mosquitto.url, [(f"yingji/sensors/{RAIN_GAUGE}/senml", rainstorm_senml(RAIN_GAUGE, total_mm=120.0))])
    def recon() -> object | None:
        return next((p for p in service.store.plans() if p.task_key == "recon"
                     and service.store.incident(p.incident_id).kind == "rainstorm"), None)

    async with asyncio.timeout(DEADLINE_S):
        while (plan := recon()) is None or plan.state not in ("flying", "returning", "landed"):
            await asyncio.sleep(0.1)
    assert plan.vehicle == "UAV-1" and plan.pilot == "Pilot Duty"
    assert plan.decided_by == "policy: red-incident recon" and plan.proposal["approvals"] == []
    # the same rain raises the Yufengshan slope's rain warning to red: the policy proposes its run-out
    # search too, which no vehicle can fly (controlled airspace without a grant): refused, with the reasons
    async with asyncio.timeout(DEADLINE_S):
        while not (others := [p for p in service.store.plans() if p.id != plan.id]):
            await asyncio.sleep(0.1)
    assert [(service.store.incident(p.incident_id).kind, p.task_key, p.state) for p in others] == [
        ("landslide", "runout-search", "refused")]
    assert all(p.decided_by is None and p.proposal["reasons"] for p in others)
    assert service.store.incident(plan.incident_id).level == 4


async def test_a_scheduled_patrol_flies_yields_to_an_incident_and_reports(make_service, mosquitto) -> None:
    service, sim = await make_service(duty_pilot="Pilot Duty")
    now = service.clock.now()
    service.ingest_http([Reading("wx-luoqi-valley", q, v, u, now) for q, v, u in (
        ("wind_speed", 3.0, "m/s"), ("temp", 27.0, "Cel"), ("rain", 0.0, "mm"))])
    slot = now.astimezone(LOCAL).strftime("%H:%M")
    service.district = dataclasses.replace(service.district, patrols=load_patrols({"patrols": [
        {"id": "luoqi-plant", "name": "Luoqi plant patrol", "around": {"facility": "chem-luoqi", "radius_m": 300},
         "at": [slot], "needs": ["gas_sensor"]}]}))
    [run] = service.run_patrols()
    assert service.run_patrols() == []  # a slot runs once
    incident = service.store.incident(run)
    assert incident.kind == "patrol" and incident.level == 0 and "Luoqi plant patrol" in incident.detail["title"]
    [plan] = service.store.plans(incident_id=run)
    assert plan.task_key == "patrol-luoqi-plant" and plan.vehicle == "UAV-1" and plan.pilot == "Pilot Duty"
    assert plan.decided_by == "schedule"
    async with asyncio.timeout(DEADLINE_S):
        while sim.alt_rel_m < 30.0:
            await asyncio.sleep(0.05)
    # an orange incident opens: the patrol comes home, its vehicle free for it
    events = service.bus.subscribe(maxsize=100_000)
    await _publish(mosquitto.url, [(f"yingji/sensors/{RAIN_GAUGE}/senml", rainstorm_senml(RAIN_GAUGE))])
    async with asyncio.timeout(DEADLINE_S):
        while (event := await events.queue.get()).kind != "patrol.recalled":
            pass
    assert event.data["vehicle"] == "UAV-1"
    async with asyncio.timeout(DEADLINE_S * 2):
        while service.store.plan(plan.id).state != "landed":
            await asyncio.sleep(0.2)
    done = service.store.incident(run)
    assert done.status == "closed" and done.detail["closed_reason"] == "patrol done" and "coverage" in done.detail
    # while the incident is open, the next patrol slot yields
    service._patrols_done.clear()  # noqa: SLF001 — the same slot again, as a later one would come
    assert service.run_patrols() == []
    skipped = [e.data for e in service.store.events(limit=100_000) if e.kind == "patrol.skipped"]
    assert skipped and "need the vehicles" in skipped[-1]["reason"]


async def test_an_area_too_big_for_one_drone_is_split_among_two(make_service, sim_vehicle) -> None:
    service, _ = await make_service()
    # a second copter at the same base (UAV-2's identity, flown from Luoqi)
    uav1, spec = service.vehicle_specs["UAV-1"], service.vehicle_specs["UAV-2"]
    await sim_vehicle(kind="copter", system_id=spec.system_id, home_lon=uav1.base_lon, home_lat=uav1.base_lat,
                      home_alt_amsl_m=uav1.base_alt_m, gcs_port=int(spec.url.rsplit(":", 1)[1]), speedup=20.0,
                      ekf_ready_after_s=1.0, cruise_speed_mps=spec.cruise_speed_mps, name="UAV-2")
    async with asyncio.timeout(DEADLINE_S):
        while not service.fleet.states().get("UAV-2", {}).get("ekf_ok"):
            await asyncio.sleep(0.1)
    slot = service.clock.now().astimezone(LOCAL).strftime("%H:%M")
    # 0.8 km² around the plant: about 76 % of a battery for one copter, more than the 30 % reserve allows
    service.district = dataclasses.replace(service.district, patrols=load_patrols({"patrols": [
        {"id": "plant-wide", "name": "Wide plant patrol", "around": {"facility": "chem-luoqi", "radius_m": 500},
         "at": [slot]}]}))
    [run] = service.run_patrols()
    plans = service.store.plans(incident_id=run)
    assert sorted((p.task_key, p.state) for p in plans) == [
        ("patrol-plant-wide-1of2", "proposed"), ("patrol-plant-wide-2of2", "proposed")], [
        (p.task_key, p.state, p.proposal.get("reasons")) for p in plans]
    assert {p.vehicle for p in plans} == {"UAV-1", "UAV-2"}
    areas = [shapely.geometry.shape(p.proposal["coverage_area"]) for p in plans]
    assert abs(areas[0].area - areas[1].area) / areas[0].area < 0.02 and not areas[0].overlaps(areas[1])
    assert all(p.proposal["battery_at_landing_pct"] >= 30.0 for p in plans)
    # the split task is busy: asking again proposes nothing new
    assert service.propose_plans(run, by="dispatcher")["plans"] == []
