"""Manned traffic end to end: the simulated autopilot forwards ADS-B traffic over real UDP, the
fleet keeps it and sends ``vehicle.adsb`` events, and a traffic watch holds a flying copter that
an aircraft comes at (the service's hold: DO_PAUSE_CONTINUE, else a holding mode)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from command.clock import SystemClock
from command.traffic_watch import TrafficWatch
from sitl.vehicle_sim import SimConfigError, SimVehicle
from uav import mission
from uav.commands import PauseOutcome
from uav.fleet import Fleet, FleetEntry

from tests.fixtures_sim import M_PER_DEG_LAT, free_udp_port, make_sim, poll_until, until

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
SPEEDUP = 30.0
DEADLINE_S = 25.0  # a generous ceiling for a loaded 2-core machine, not a measurement
FLY_ALT_M = 60.0
HOVER = 0x780001  # a helicopter hovering 8 km east: heard, never a threat
HELI = 0x780A1B  # one coming down the copter's track


def _north_east_m(lon: float, lat: float, lon0: float, lat0: float) -> tuple[float, float]:
    return (lat - lat0) * M_PER_DEG_LAT, (lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))


async def _sim_seconds(sim: SimVehicle, seconds: float) -> None:
    """Wait until ``seconds`` of the simulator's time have gone by."""
    end = sim.sim_time_s + seconds
    await poll_until(lambda: sim.sim_time_s >= end, f"{seconds} s of sim time", DEADLINE_S)


def test_inject_adsb_refuses_what_adsb_vehicle_cannot_carry() -> None:
    sim = SimVehicle(kind="copter", system_id=1, home_lon=HOME_LON, home_lat=HOME_LAT)
    with pytest.raises(SimConfigError, match="24 bits"):
        sim.inject_adsb(0x1000000, HOME_LON, HOME_LAT, 500.0, 0.0, 50.0)
    with pytest.raises(SimConfigError, match="speed"):
        sim.inject_adsb(1, HOME_LON, HOME_LAT, 500.0, 0.0, 700.0)
    with pytest.raises(SimConfigError, match="callsign"):
        sim.inject_adsb(1, HOME_LON, HOME_LAT, 500.0, 0.0, 50.0, callsign="TOO-LONG-1")
    sim.inject_adsb(1, HOME_LON, HOME_LAT, 500.0, 450.0, 50.0)
    assert sim.adsb_position(1) == (HOME_LON, HOME_LAT, 500.0)
    sim.clear_adsb(1)
    assert sim.adsb_position(1) is None


async def test_traffic_is_heard_on_the_ground_and_a_threatened_copter_holds() -> None:
    port = free_udp_port()
    events: list[tuple[str, str, dict[str, Any]]] = []
    published: list[tuple[str, dict[str, Any]]] = []
    holds: list[tuple[str, str, PauseOutcome]] = []

    async def hold(name: str, reason: str) -> None:  # what the service does for a traffic hold
        holds.append((name, reason, await fleet.vehicle(name).pause()))

    watch = TrafficWatch(hold, lambda kind, data: published.append((kind, data)), SystemClock())

    def on_event(kind: str, name: str, data: dict[str, Any]) -> None:  # the service's wiring
        events.append((kind, name, data))
        if kind == "vehicle.adsb":
            watch.observe(name, data)
        elif kind == "vehicle.telemetry":
            watch.update_drone(name, data["lon"], data["lat"], data["alt_amsl_m"], data["vel_north_mps"],
                               data["vel_east_mps"], data["climb_mps"], data["armed"], landed=data["landed"])

    def published_of(kind: str) -> list[dict[str, Any]]:
        return [d for k, d in published if k == kind]

    fleet = Fleet([FleetEntry("UAV-1", "copter", f"udpin:127.0.0.1:{port}", 1)], on_event=on_event,
                  telemetry_period_s=0.2)
    sim = make_sim("copter", 1, port, home=(HOME_LON, HOME_LAT, HOME_ALT_M), speedup=SPEEDUP,
                   ekf_ready_after_s=2.0)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(sim.run()), tg.create_task(fleet.run()), tg.create_task(watch.run())]
        try:
            await poll_until(lambda: fleet.link_state("UAV-1") == "connected", "connected", DEADLINE_S)
            vehicle = fleet.vehicle("UAV-1")
            await vehicle.wait_ready(DEADLINE_S)
            wp_lat = HOME_LAT + 3000.0 / M_PER_DEG_LAT  # 3 km north
            await vehicle.upload_mission([mission.takeoff(FLY_ALT_M), mission.waypoint(HOME_LON, wp_lat, FLY_ALT_M),
                                          mission.return_to_launch()])
            await vehicle.set_mode("GUIDED")
            await vehicle.arm()
            await vehicle.set_mode("AUTO")
            cruising = await until(vehicle, lambda t: t.mission_seq == 2 and t.alt_rel_m > FLY_ALT_M - 1.0
                                   and t.groundspeed_mps > 5.0, "on the way to the waypoint", DEADLINE_S)

            # 1. A hovering helicopter far away: listed where it is, reported, no alert.
            hover_lon = HOME_LON + 8000.0 / (M_PER_DEG_LAT * math.cos(math.radians(HOME_LAT)))
            sim.inject_adsb(HOVER, hover_lon, HOME_LAT, 600.0, 90.0, 0.0, callsign="HOVER1")
            await poll_until(lambda: any(r.icao_address == HOVER for r in vehicle.traffic()), "hover heard",
                             DEADLINE_S)
            (heard,) = vehicle.traffic()
            assert (heard.lon_deg, heard.lat_deg) == pytest.approx((hover_lon, HOME_LAT), abs=2e-7)
            assert heard.alt_m == pytest.approx(600.0, abs=0.001) and heard.altitude_type == "geometric"
            assert heard.callsign == "HOVER1" and heard.speed_mps == 0.0 and heard.heading_deg == 90.0
            assert heard.climb_mps == 0.0 and heard.tslc_s == 0.0 and heard.icao_hex == "780001"
            await poll_until(lambda: any(k == "vehicle.adsb" and d["icao_address"] == HOVER for k, _n, d in events),
                             "vehicle.adsb event", DEADLINE_S)
            event = next(d for k, n, d in events if k == "vehicle.adsb" and n == "UAV-1")
            assert (event["lon"], event["lat"], event["alt_m"]) == (heard.lon_deg, heard.lat_deg, 600.0)
            assert event["callsign"] == "HOVER1" and event["icao"] == "780001"

            # 2. A helicopter 4 km up the track, 50 m above, flying south at 30 m/s: a threat within 60 s.
            start_lat = sim.lat + 4000.0 / M_PER_DEG_LAT
            heli_alt = cruising.alt_amsl_m + 50.0
            sim.inject_adsb(HELI, HOME_LON, start_lat, heli_alt, 180.0, 30.0, callsign="B7613")
            await poll_until(lambda: published_of("traffic.alert"), "traffic.alert", DEADLINE_S)
            (alert,) = published_of("traffic.alert")
            assert alert["drone"] == "UAV-1" and alert["callsign"] == "B7613" and alert["action"] == "hold"
            assert alert["reported_by"] == "UAV-1" and 0.0 < alert["distance_m"] < 4000.0
            assert alert["vertical_m"] == pytest.approx(50.0, abs=5.0)
            await poll_until(lambda: holds, "hold", DEADLINE_S)
            name, reason, outcome = holds[0]
            assert name == "UAV-1" and "B7613" in reason and "UAV-1 holds" in reason
            assert outcome.method == "pause_continue"  # paused on its track, still in AUTO
            assert sim.mode == "AUTO" and vehicle.state.mode == "AUTO"
            here = (sim.lon, sim.lat)
            await _sim_seconds(sim, 10.0)  # flying on, it would cover 100 m
            moved_m = math.hypot(*_north_east_m(sim.lon, sim.lat, *here))
            assert moved_m < 1.0 and sim.armed and sim.alt_rel_m == pytest.approx(FLY_ALT_M, abs=1.0)

            # the ground lists both; the mover lies on its track at its level
            listed = {r.icao_address: r for r in vehicle.traffic()}
            assert set(listed) == {HOVER, HELI}
            heli = listed[HELI]
            north_m, east_m = _north_east_m(heli.lon_deg, heli.lat_deg, HOME_LON, start_lat)
            assert abs(east_m) < 1.0 and north_m < 0.0  # south of where it started, on the meridian
            assert heli.alt_m == pytest.approx(heli_alt, abs=0.01) and heli.heading_deg == 180.0
            assert heli.speed_mps == 30.0 and heli.callsign == "B7613"

            # 3. It passes and flies away: the threat clears, and the copter was held once.
            await poll_until(lambda: published_of("traffic.clear"), "traffic.clear", DEADLINE_S)
            (clear,) = published_of("traffic.clear")
            assert clear["drone"] == "UAV-1" and clear["icao"] == "780A1B" and clear["held"]
            assert "no longer a threat" in clear["reason"]
            assert len(holds) == 1 and len(published_of("traffic.alert")) == 1
            assert not any(d["icao_address"] == HOVER for d in published_of("traffic.alert"))

            # 4. Cleared from the simulated sky: no more reports of it, the hovering one goes on.
            sim.clear_adsb(HELI)
            last = {r.icao_address: r.received_at_s for r in vehicle.traffic()}
            await poll_until(lambda: {r.icao_address: r.received_at_s for r in vehicle.traffic()}[HOVER]
                             > last[HOVER] + 1.0, "hover heard again", DEADLINE_S)
            await _sim_seconds(sim, 3.0)
            assert {r.icao_address: r.received_at_s for r in vehicle.traffic()}[HELI] == last[HELI]
            assert vehicle.adsb_rejected == 0
        finally:
            for task in tasks:
                task.cancel()
