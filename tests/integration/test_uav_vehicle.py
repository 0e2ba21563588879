"""uav.Vehicle and uav.Fleet against the ArduPilot-compatible simulator over real UDP."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle_sim import SimVehicle, VehicleKind
from uav import mission
from uav.errors import (
    CommandFailed, CommandUnsupported, MissionRejected, ModeChangeFailed, VehicleUnavailable,
    WrongMode,
)
from uav.fleet import Fleet, FleetEntry
from uav.link import open_link
from uav.vehicle import Vehicle

from tests.fixtures_sim import free_udp_port, make_sim, running, until, vehicle_and_sim

# A base in the south-west of the synthetic district, away from the airport.
HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
# Deadlines are generous ceilings for a loaded 2-core machine, not measurements.
DEADLINE_S = 25.0
M_PER_DEG_LAT = 111_320.0  # WGS84 mean, good to ~1 % for offsets of a few hundred metres


_sim = partial(make_sim, home=HOME, speedup=SPEEDUP)
_until = partial(until, deadline_s=DEADLINE_S)


def _one(kind: VehicleKind, system_id: int = 1,
         **kw: Any) -> AbstractAsyncContextManager[tuple[Vehicle, SimVehicle]]:
    return vehicle_and_sim(kind, system_id=system_id, home=HOME, speedup=SPEEDUP, **kw)


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dy = (lat2 - lat1) * M_PER_DEG_LAT
    dx = (lon2 - lon1) * M_PER_DEG_LAT * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


async def test_copter_flies_a_mission_and_comes_home() -> None:
    async with _one("copter", ekf_ready_after_s=5.0) as (vehicle, _sim_):
        ready = await vehicle.wait_ready(DEADLINE_S)
        assert ready.vehicle_type == "copter" and ready.position_valid and ready.ekf_ok

        wp_lat = HOME_LAT + 300.0 / M_PER_DEG_LAT  # ~300 m north of home
        plan = [mission.takeoff(30.0), mission.waypoint(HOME_LON, wp_lat, 30.0),
                mission.loiter_time(HOME_LON, wp_lat, 30.0, 5.0), mission.return_to_launch()]
        await vehicle.upload_mission(plan)
        back = await vehicle.download_mission()
        assert [i.command for i in back] == [i.command for i in plan]
        assert back[1].lat_deg == pytest.approx(wp_lat, abs=1e-6)
        assert back[1].alt_m == pytest.approx(30.0)

        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.set_mode("AUTO")
        assert vehicle.state.mode == "AUTO"

        climbed = await _until(vehicle, lambda t: t.alt_rel_m > 20.0, "climb")
        assert not climbed.landed
        await _until(vehicle, lambda t: t.last_reached_seq >= 2, "waypoint reached")
        near = await _until(
            vehicle, lambda t: _distance_m(t.lon_deg, t.lat_deg, HOME_LON, wp_lat) < 30.0,
            "at the waypoint")
        assert near.alt_rel_m == pytest.approx(30.0, abs=5.0)
        await _until(vehicle, lambda t: t.mission_seq >= 4 or t.mode == "RTL", "RTL item")
        # the disarming heartbeat may come before the last position report
        home = await _until(vehicle, lambda t: t.landed and not t.armed and t.alt_rel_m < 1.0,
                            "landed and disarmed")
        assert _distance_m(home.lon_deg, home.lat_deg, HOME_LON, HOME_LAT) < 10.0


async def test_arm_before_ekf_ready_fails_with_the_reason() -> None:
    async with _one("copter", ekf_ready_after_s=100_000.0) as (vehicle, _sim_):
        await _until(vehicle, lambda t: t.heartbeat_seen, "heartbeat")
        with pytest.raises(CommandFailed) as info:
            await vehicle.arm()
        assert info.value.result == mav.MAV_RESULT_FAILED
        assert info.value.statustext and info.value.statustext.startswith("Arm:")
        assert "Arm:" in str(info.value)
        assert not vehicle.state.armed


async def test_boat_refuses_auto_without_a_mission() -> None:
    async with _one("boat", system_id=3, ekf_ready_after_s=2.0) as (vehicle, _sim_):
        await vehicle.wait_ready(DEADLINE_S)
        assert vehicle.vehicle_type == "boat"
        await vehicle.set_mode("GUIDED")
        with pytest.raises(ModeChangeFailed) as info:
            await vehicle.set_mode("AUTO")
        assert "No Mission" in str(info.value)
        assert vehicle.state.mode == "GUIDED"

        # the boat drives where it is told in GUIDED, returns on RTL, and the GCS disarms it
        await vehicle.arm()
        await vehicle.change_speed(4.0)
        east_lon = HOME_LON + 120.0 / (M_PER_DEG_LAT * math.cos(math.radians(HOME_LAT)))
        await vehicle.goto(east_lon, HOME_LAT, 0.0)
        await _until(vehicle, lambda t: _distance_m(t.lon_deg, t.lat_deg, east_lon, HOME_LAT) < 10,
                     "at the GUIDED target")
        await vehicle.rtl()
        with pytest.raises(WrongMode):
            await vehicle.goto(HOME_LON, HOME_LAT, 0.0)
        await _until(vehicle, lambda t: _distance_m(t.lon_deg, t.lat_deg, HOME_LON, HOME_LAT) < 10
                     and t.groundspeed_mps < 0.5, "back home")
        assert vehicle.state.armed and vehicle.state.mode == "RTL"
        await vehicle.disarm()
        await _until(vehicle, lambda t: not t.armed, "disarmed")


async def test_unknown_command_is_unsupported_and_request_message_works() -> None:
    async with _one("copter", ekf_ready_after_s=2.0) as (vehicle, _sim_):
        await _until(vehicle, lambda t: t.heartbeat_seen, "heartbeat")
        with pytest.raises(CommandUnsupported):
            await vehicle.command(mav.MAV_CMD_WAYPOINT_USER_1, 1, 2, 3)
        version = await vehicle.request_message(mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
        assert "flight_sw_version" in version


async def test_fleet_tells_two_vehicles_apart_and_reports_lost_and_recovered() -> None:
    port = free_udp_port()
    url = f"udpin:127.0.0.1:{port}"
    events: list[tuple[str, str, dict[str, Any]]] = []
    changed = asyncio.Event()

    def on_event(kind: str, name: str, data: dict[str, Any]) -> None:
        events.append((kind, name, data))
        changed.set()
        if kind == "vehicle.telemetry" and name == "boat":
            raise RuntimeError("a broken listener must not stop the fleet")

    async def until_event(kind: str, name: str,
                          where: Callable[[dict[str, Any]], bool] = lambda d: True,
                          ) -> dict[str, Any]:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                for k, n, data in events:
                    if (k, n) == (kind, name) and where(data):
                        return data
                changed.clear()
                await changed.wait()

    fleet = Fleet([FleetEntry("copter", "copter", url, 1), FleetEntry("boat", "boat", url, 2)],
                  link_lost_s=1.0, on_event=on_event, telemetry_period_s=0.2)
    copter = _sim("copter", 1, port, ekf_ready_after_s=2.0)
    boat = _sim("boat", 2, port, ekf_ready_after_s=2.0)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(copter.run()), tg.create_task(boat.run()),
                 tg.create_task(fleet.run())]
        try:
            await until_event("vehicle.connected", "copter")
            await until_event("vehicle.connected", "boat")
            await until_event("vehicle.telemetry", "copter")
            await until_event("vehicle.telemetry", "boat")
            states = fleet.states()
            assert (states["copter"]["vehicle_type"], states["copter"]["system_id"]) == ("copter", 1)
            assert (states["boat"]["vehicle_type"], states["boat"]["system_id"]) == ("boat", 2)
            assert fleet.vehicle("copter").system_id == 1
            # commands go to the right vehicle behind the shared port
            await fleet.vehicle("boat").wait_ready(DEADLINE_S)
            await fleet.vehicle("boat").set_mode("HOLD")
            assert boat.mode == "HOLD" and copter.mode != "HOLD"
            await until_event("vehicle.statustext", "copter")
            await until_event("vehicle.mode", "boat", lambda d: d["mode"] == "HOLD")
            assert not any(k == "vehicle.mode" and n == "copter" and d["mode"] == "HOLD"
                           for k, n, d in events)

            copter.pause_link()
            lost = await until_event("vehicle.lost", "copter")
            assert lost["silent_s"] >= 1.0
            assert fleet.states()["copter"]["link"] == "lost"
            assert fleet.states()["boat"]["link"] == "connected"
            with pytest.raises(VehicleUnavailable, match="lost"):
                fleet.vehicle("copter")

            copter.resume_link()
            await until_event("vehicle.recovered", "copter")
            assert fleet.vehicle("copter").state.heartbeat_seen
            assert not any(k == "vehicle.lost" and n == "boat" for k, n, _ in events)
            assert fleet.event_errors > 0  # the raising listener was survived
        finally:
            for task in tasks:
                task.cancel()


async def test_tcp_link_to_a_listening_vehicle() -> None:
    sim = _sim("boat", 5, None, tcp=True, ekf_ready_after_s=2.0)
    async with asyncio.TaskGroup() as tg:
        sim_task = tg.create_task(sim.run())
        async with asyncio.timeout(DEADLINE_S):
            await sim.started.wait()
        link = await open_link(f"tcp:127.0.0.1:{sim.local_port}")
        try:
            vehicle = Vehicle(link, 5)
            async with running(link.run(), vehicle.run()):
                ready = await vehicle.wait_ready(DEADLINE_S)
                assert ready.vehicle_type == "boat" and ready.system_id == 5
                await vehicle.set_mode("HOLD")
                assert sim.mode == "HOLD"
        finally:
            await link.close()
            sim_task.cancel()


async def test_bad_mission_is_rejected_with_the_reason_then_cleared() -> None:
    async with _one("copter", system_id=7, ekf_ready_after_s=2.0) as (vehicle, _sim_):
        await vehicle.wait_ready(DEADLINE_S)
        bad = [mission.takeoff(20.0), mission.MissionItem(mav.MAV_CMD_NAV_WAYPOINT, frame=99,
                                                          lat_deg=HOME_LAT, lon_deg=HOME_LON,
                                                          alt_m=20.0)]
        with pytest.raises(MissionRejected) as info:
            await vehicle.upload_mission(bad)
        assert info.value.result_name == "MAV_MISSION_UNSUPPORTED_FRAME"
        await vehicle.clear_mission()
        assert await vehicle.download_mission() == []
        await vehicle.upload_mission([mission.takeoff(20.0), mission.return_to_launch()])
        assert [i.command for i in await vehicle.download_mission()] == [
            mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_RETURN_TO_LAUNCH]


async def test_a_lost_ack_does_not_make_a_command_fail_that_took_effect() -> None:
    # ArduPilot answers an arm or a takeoff once; when that answer is lost, sending the command
    # again is refused (a takeoff once climbing) or acts twice (an arm after an auto-disarm).
    # The vehicle checks its telemetry before sending again, and the command stands.
    async with _one("copter", ready_within_s=DEADLINE_S) as (vehicle, sim):
        await vehicle.set_mode("GUIDED")
        sim.faults.lose_acks = {mav.MAV_CMD_COMPONENT_ARM_DISARM: 1, mav.MAV_CMD_NAV_TAKEOFF: 1}
        await vehicle.arm()
        assert sim.armed
        await vehicle.takeoff(30.0)
        assert sim.faults.lose_acks == {mav.MAV_CMD_COMPONENT_ARM_DISARM: 0, mav.MAV_CMD_NAV_TAKEOFF: 0}
        await _until(vehicle, lambda t: t.alt_rel_m > 25.0, "the climb to 30 m")
        # a command that did not take effect is still sent again: a lost ACK of a mode change to
        # LOITER is retried by set_mode's own confirmation from the heartbeat
        sim.faults.lose_acks = {mav.MAV_CMD_DO_SET_MODE: 1}
        await vehicle.set_mode("LOITER")
        assert sim.mode == "LOITER"
