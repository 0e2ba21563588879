"""Wind on copters and river current on boats (sitl.environment), seen by the ground side
over real UDP on 127.0.0.1. No gusts here (steady wind): nothing random."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.environment import Current, Environment, Wind
from sitl.vehicle_sim import SimVehicle
from uav import mission
from uav.vehicle import Vehicle

from tests.fixtures_sim import M_PER_DEG_LAT, poll_until, until, vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
DEADLINE_S = 30.0  # a ceiling for a loaded 2-core machine, not a measurement
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(HOME_LAT))

_until = partial(until, deadline_s=DEADLINE_S)
_poll = partial(poll_until, deadline_s=DEADLINE_S)


def _ne_from(lat0: float, lon0: float, sim: SimVehicle) -> tuple[float, float]:
    return (sim.lat - lat0) * M_PER_DEG_LAT, (sim.lon - lon0) * M_PER_DEG_LON


async def _sim_seconds(sim: SimVehicle, seconds: float,
                       check: Callable[[], None] | None = None) -> None:
    """Let ``seconds`` of sim time pass, running ``check`` every poll."""
    end = sim.sim_time_s + seconds

    def done() -> bool:
        if check is not None:
            check()
        return sim.sim_time_s >= end

    await _poll(done, f"{seconds} s of sim time")


async def _airborne(vehicle: Vehicle, alt_m: float = 20.0) -> None:
    await vehicle.wait_ready(DEADLINE_S)
    await vehicle.set_mode("GUIDED")
    await vehicle.arm()
    await vehicle.takeoff(alt_m)
    await _until(vehicle, lambda t: t.alt_rel_m > alt_m - 1.0, "climbed")


async def test_upwind_leg_is_slower_and_costs_more_battery_than_downwind() -> None:
    # 6 m/s from the west: the air moves east. Leg 2→3 goes 300 m east (downwind),
    # leg 3→4 comes back (upwind). WP_SPD 10 m/s; the quad's lean limit gives 11.46 m/s.
    east_lon = HOME_LON + 300.0 / M_PER_DEG_LON
    env = Environment(wind=Wind(speed_mps=6.0, from_deg=270.0))
    async with vehicle_and_sim("copter", home=HOME, speedup=20.0, ekf_ready_after_s=2.0,
                               environment=env) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.upload_mission([
            mission.takeoff(20.0), mission.waypoint(HOME_LON, HOME_LAT, 20.0),
            mission.waypoint(east_lon, HOME_LAT, 20.0), mission.waypoint(HOME_LON, HOME_LAT, 20.0),
            mission.return_to_launch()])
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.set_mode("AUTO")
        await _until(vehicle, lambda t: t.last_reached_seq >= 4, "back over home")
        marks = {seq: (t_s, used_mah) for seq, t_s, used_mah in sim.reached_log}
        downwind_s = marks[3][0] - marks[2][0]
        upwind_s = marks[4][0] - marks[3][0]
        assert downwind_s == pytest.approx(29.8, abs=1.0)  # at the 10 m/s it was asked for
        assert upwind_s == pytest.approx(298.0 / (11.46 - 6.0), rel=0.05)  # lean-limited
        assert upwind_s > 1.5 * downwind_s
        down_mah = marks[3][1] - marks[2][1]
        up_mah = marks[4][1] - marks[3][1]
        assert down_mah > 0 and up_mah > 1.5 * down_mah  # longer, and harder work
        # per second too: the lean against the wind costs power (hover_power_ratio)
        assert up_mah / upwind_s > 1.1 * down_mah / downwind_s


async def test_copter_holds_in_wind_drifts_in_a_gale_and_comes_back() -> None:
    async with vehicle_and_sim("copter", home=HOME, speedup=20.0,
                               ekf_ready_after_s=2.0) as (vehicle, sim):
        await _airborne(vehicle)
        await vehicle.set_mode("LOITER")
        lat0, lon0 = sim.lat, sim.lon
        sim.environment = Environment(wind=Wind(speed_mps=8.0, from_deg=270.0))

        def held() -> None:
            assert math.hypot(*_ne_from(lat0, lon0, sim)) < 1.0

        await _sim_seconds(sim, 20.0, held)  # 8 m/s is within what it can lean against

        sim.environment = Environment(wind=Wind(speed_mps=16.0, from_deg=270.0))
        await _sim_seconds(sim, 10.0)
        north, east = _ne_from(lat0, lon0, sim)
        assert east > 25.0 and abs(north) < 2.0  # carried east at ~16 - 11.5 m/s
        t = await _until(vehicle, lambda t: t.groundspeed_mps > 3.0, "drift seen")
        assert t.mode == "LOITER"

        sim.environment = Environment()  # the gale drops: back to the loiter point
        await _poll(lambda: math.hypot(*_ne_from(lat0, lon0, sim)) < 1.0, "back at the point")


async def test_wind_is_reported_in_the_wind_message() -> None:
    env = Environment(wind=Wind(speed_mps=6.0, from_deg=250.0))
    async with vehicle_and_sim("copter", home=HOME, speedup=20.0, ekf_ready_after_s=2.0,
                               environment=env) as (vehicle, _sim):
        await vehicle.wait_ready(DEADLINE_S)
        wind = await vehicle.request_message(mav.MAVLINK_MSG_ID_WIND)
        assert wind["speed"] == pytest.approx(6.0, abs=0.01)
        assert wind["direction"] == pytest.approx(250.0, abs=0.1)
        t = await _until(vehicle, lambda t: t.wind_speed_mps > 0, "WIND stream")
        assert t.wind_from_deg == pytest.approx(250.0, abs=0.1)


async def test_boat_drifts_downstream_in_hold_and_stays_put_in_loiter() -> None:
    env = Environment(current=Current(speed_mps=1.0, toward_deg=90.0))  # sets east
    async with vehicle_and_sim("boat", system_id=3, home=(106.81, 29.66, 160.0), speedup=20.0,
                               ekf_ready_after_s=2.0, environment=env) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.set_mode("HOLD")  # Rover HOLD: motors stopped
        lat0, lon0, t0_s = sim.lat, sim.lon, sim.sim_time_s
        await _sim_seconds(sim, 20.0)
        north, east = _ne_from(lat0, lon0, sim)
        drifted_s = sim.sim_time_s - t0_s  # read together with the position
        assert east == pytest.approx(1.0 * drifted_s, abs=0.2) and abs(north) < 0.1
        t = await _until(vehicle, lambda t: t.groundspeed_mps > 0.8, "drift in telemetry")
        assert t.groundspeed_mps == pytest.approx(1.0, abs=0.1)

        await vehicle.set_mode("LOITER")
        await _poll(lambda: sim.hold_point is not None, "loiter point")
        lon1, lat1 = sim.hold_point
        radius_m = sim.param("LOIT_RADIUS")
        assert radius_m == 2.0
        farthest = [0.0]

        def within() -> None:
            d = math.hypot(*_ne_from(lat1, lon1, sim))
            farthest[0] = max(farthest[0], d)
            assert d <= radius_m + 0.5, f"{d:.2f} m from the loiter point"
            assert sim.hold_point == (lon1, lat1)  # one loiter point throughout

        await _sim_seconds(sim, 60.0, within)
        # it drifted to the edge of the radius and was driven back each time
        assert farthest[0] > 1.5
        east_now = _ne_from(lat1, lon1, sim)[1]
        assert 0.0 < east_now <= radius_m + 0.5  # downstream side
