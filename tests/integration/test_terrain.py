"""Terrain over real UDP: the ground station serves terrain to the simulator's terrain
database, terrain-frame missions fly above the ground, the ground is solid."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle_sim import SimVehicle
from uav import mission
from uav.telemetry import Telemetry
from uav.vehicle import Vehicle

from tests.fixtures_sim import vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 40.0  # a ceiling for a loaded 2-core machine, not a measurement
M_PER_DEG = 111318.84502145034


def east_of_home(metres: float) -> float:
    return HOME_LON + metres / (M_PER_DEG * math.cos(math.radians(HOME_LAT)))


def north_of_home(metres: float) -> float:
    return HOME_LAT + metres / M_PER_DEG


def slope(lon: float, lat: float) -> float:
    """The synthetic ground: 260 m at home, rising 5 m per 100 m to the east."""
    east_m = (lon - HOME_LON) * M_PER_DEG * math.cos(math.radians(HOME_LAT))
    return HOME_ALT_M + 0.05 * east_m


def flying(*, terrain: Callable[[float, float], float] | None,
           ground: Callable[[float, float], float] | None = slope,
           **sim_kw: Any) -> AbstractAsyncContextManager[tuple[Vehicle, SimVehicle]]:
    return vehicle_and_sim("copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=1.0,
                           ground_amsl_m=ground, vehicle_kwargs={"terrain": terrain},
                           ready_within_s=DEADLINE_S, **sim_kw)


def said(t: Telemetry, text: str) -> bool:
    return any(text in line.text for line in t.statustext)


async def launch(vehicle: Vehicle, items: list[mission.MissionItem]) -> None:
    await vehicle.upload_mission(items)
    await vehicle.set_mode("GUIDED")
    await vehicle.arm()
    await vehicle.set_mode("AUTO")


WP_LON, WP_LAT = east_of_home(600.0), HOME_LAT  # ground 290 m there


def terrain_mission() -> list[mission.MissionItem]:
    return [mission.takeoff(30.0),
            mission.waypoint(WP_LON, WP_LAT, 50.0, frame=mission.FRAME_ABOVE_TERRAIN),
            mission.return_to_launch()]


async def test_terrain_frame_waypoint_flies_50_m_above_the_slope_when_served() -> None:
    async with flying(terrain=slope) as (vehicle, sim):
        await vehicle.upload_mission(terrain_mission())
        # the vehicle asks for the ground under it and its mission; the ground station answers
        async with asyncio.timeout(DEADLINE_S):
            while True:
                report = await vehicle.terrain_report(WP_LON, WP_LAT)
                if math.isfinite(report.terrain_height_m) and report.pending == 0:
                    break
                await asyncio.sleep(0.2)
        assert abs(report.terrain_height_m - 290.0) <= 1.0 and report.loaded >= 1
        assert vehicle.terrain is not None and vehicle.terrain.counters["bits_sent"] > 0
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.set_mode("AUTO")
        heights: list[float] = []
        async with asyncio.timeout(DEADLINE_S):
            async for t in vehicle.telemetry(maxsize=256):
                if t.mission_seq == 2 and t.armed:  # on the terrain-following leg
                    heights.append(t.alt_amsl_m - slope(t.lon_deg, t.lat_deg))
                if t.last_reached_seq >= 2:
                    break
        reached = vehicle.state
        assert abs(reached.alt_amsl_m - (slope(WP_LON, WP_LAT) + 50.0)) <= 3.0
        # never much closer to the slope than the take-off height (positions come every
        # ~8 sim seconds at this speed-up, so the first one on the leg may predate it)
        assert min(heights) > 20.0 and heights[-1] > 45.0
        # RTL lands at home (the disarming heartbeat may come before the last position)
        t = await vehicle.wait_for(lambda t: not t.armed and abs(t.alt_rel_m) < 1.0, DEADLINE_S)
        assert sim.crash_count == 0


async def test_terrain_frame_waypoint_without_terrain_data_fails_safe_to_rtl() -> None:
    async with flying(terrain=None) as (vehicle, sim):
        await launch(vehicle, terrain_mission())
        t = await vehicle.wait_for(lambda t: said(t, "Failsafe: Terrain data missing"),
                                   DEADLINE_S)
        assert t.last_reached_seq == 1  # took off, refused the terrain-frame waypoint
        t = await vehicle.wait_for(lambda t: t.mode == "RTL", DEADLINE_S)
        t = await vehicle.wait_for(lambda t: not t.armed and abs(t.alt_rel_m) < 1.0, DEADLINE_S)
        assert t.last_reached_seq < 2
        assert sim.counters["terrain_requests"] > 0  # it asked; nobody answered


async def test_flying_into_the_ground_is_a_crash() -> None:
    async with flying(terrain=None) as (vehicle, sim):
        # 20 m above home is 10 m below the ground 600 m east
        await launch(vehicle, [mission.takeoff(20.0), mission.waypoint(WP_LON, WP_LAT, 20.0),
                               mission.return_to_launch()])
        await vehicle.wait_for(lambda t: said(t, "Crash: Disarming"), DEADLINE_S)
        await vehicle.wait_for(lambda t: not t.armed, DEADLINE_S)
        assert sim.crash_count == 1 and not sim.armed
        # it lies on the slope, east of home, short of the waypoint
        assert abs(sim.alt_amsl_m - slope(sim.lon, sim.lat)) < 0.01
        assert HOME_LON < sim.lon < WP_LON and sim.alt_amsl_m > HOME_ALT_M + 15


async def test_land_touches_down_on_the_terrain() -> None:
    async with flying(terrain=None) as (vehicle, sim):
        land_lon = east_of_home(300.0)  # ground 275 m
        await launch(vehicle, [mission.takeoff(40.0), mission.waypoint(land_lon, HOME_LAT, 40.0),
                               mission.land()])
        # the disarming heartbeat may come before the last position report
        t = await vehicle.wait_for(lambda t: not t.armed and abs(t.alt_amsl_m - 275.0) < 0.5, DEADLINE_S)
        assert sim.crash_count == 0 and not said(t, "Crash")
        assert abs(sim.alt_amsl_m - 275.0) < 0.5


async def test_change_speed_and_loiter_turns_in_a_mission() -> None:
    centre_lat = north_of_home(300.0)
    async with flying(terrain=None, ground=None) as (vehicle, sim):
        await launch(vehicle, [
            mission.takeoff(20.0),
            mission.MissionItem(mav.MAV_CMD_DO_CHANGE_SPEED, param1=1, param2=5.0, param3=-1),
            mission.waypoint(HOME_LON, north_of_home(150.0), 20.0),
            mission.MissionItem(mav.MAV_CMD_NAV_LOITER_TURNS, lat_deg=centre_lat, lon_deg=HOME_LON,
                                alt_m=20.0, param1=1, param3=40.0),
            mission.return_to_launch()])
        speeds: list[float] = []
        bearings: list[float] = []
        radii: list[float] = []
        async with asyncio.timeout(DEADLINE_S):
            async for t in vehicle.telemetry(maxsize=256):
                if t.mission_seq == 3 and t.alt_rel_m > 19:
                    speeds.append(t.groundspeed_mps)
                if t.mission_seq == 4 and t.last_reached_seq == 3:
                    north = (t.lat_deg - centre_lat) * M_PER_DEG
                    east = (t.lon_deg - HOME_LON) * M_PER_DEG * math.cos(math.radians(HOME_LAT))
                    radii.append(math.hypot(north, east))
                    bearings.append(math.degrees(math.atan2(east, north)) % 360)
                if t.last_reached_seq >= 4:
                    break
        assert speeds and max(speeds) <= 5.5 and sorted(speeds)[len(speeds) // 2] > 4.0
        on_circle = [b for b, r in zip(bearings, radii) if abs(r - 40.0) < 3.0]
        assert len(on_circle) >= 10
        # one full turn: the vehicle was seen on every side of the centre
        assert {int(b // 90) for b in on_circle} == {0, 1, 2, 3}
