"""Parameters, geofence and rally points: uav.Vehicle against the simulator over real UDP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle_sim import SimVehicle, VehicleKind
from uav import mission, transfer
from uav.errors import MissionRejected, ParamNotFound, ParamSetFailed
from uav.fence import Fence, fence_items
from uav.rally import RallyPoint
from uav.vehicle import Vehicle

from tests.fixtures_sim import M_PER_DEG_LAT, square_around, until, vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 25.0  # a generous ceiling for a loaded 2-core machine, not a measurement


_until = partial(until, deadline_s=DEADLINE_S)


@asynccontextmanager
async def _one(kind: VehicleKind = "copter",
               **kw: Any) -> AsyncIterator[tuple[Vehicle, SimVehicle]]:
    async with vehicle_and_sim(kind, home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0,
                               **kw) as (vehicle, sim):
        await _until(vehicle, lambda t: t.heartbeat_seen, "heartbeat")
        yield vehicle, sim


async def test_get_set_verify_and_unknown_parameters() -> None:
    async with _one() as (vehicle, sim):
        assert await vehicle.get_param("RTL_ALT") == 1500.0
        assert await vehicle.get_param("FENCE_ENABLE") == 0.0
        assert vehicle.param_cache["FENCE_ENABLE"].param_type == mav.MAV_PARAM_TYPE_INT8

        assert await vehicle.set_param("FENCE_ENABLE", 1) == 1.0
        assert sim.param("FENCE_ENABLE") == 1.0
        assert await vehicle.set_param("WP_SPD", 7.3) == pytest.approx(7.3, rel=1e-6)
        assert sim.param("WP_SPD") == pytest.approx(7.3, rel=1e-6)
        assert await vehicle.get_param("WP_SPD") == pytest.approx(7.3, rel=1e-6)

        with pytest.raises(ParamNotFound) as missing:
            await vehicle.get_param("NO_SUCH_PARAM", 0.3, attempts=2)
        assert missing.value.name == "NO_SUCH_PARAM"
        with pytest.raises(ParamNotFound):
            await vehicle.set_param("NO_SUCH_PARAM", 1.0, timeout_s=0.3, attempts=2)
        with pytest.raises(ValueError, match="out of range"):
            await vehicle.set_param("FENCE_ACTION", 300)  # INT8
        assert sim.counters["unknown_param"] >= 2

        sim.make_param_read_only("FENCE_TOTAL")
        with pytest.raises(ParamSetFailed) as refused:
            await vehicle.set_param("FENCE_TOTAL", 3)
        assert refused.value.got == 0.0 and refused.value.wanted == 3.0
        assert refused.value.statustext == "Param write denied (FENCE_TOTAL)"


async def test_whole_list_with_progress_recovers_lost_entries() -> None:
    async with _one("boat") as (vehicle, sim):
        sim.drop_from_param_list(["RTL_SPEED", "FENCE_ACTION", "MIS_TOTAL"])
        seen: list[tuple[int, int]] = []

        def progress(got: int, total: int) -> None:
            seen.append((got, total))
            if got == 3:
                raise RuntimeError("a broken progress display must not stop the download")

        values = await vehicle.get_all_params(progress=progress, timeout_s=DEADLINE_S)
        total = seen[-1][1]
        assert len(values) == total and seen[-1] == (total, total)
        assert [g for g, _ in seen] == list(range(1, total + 1))
        assert values["FENCE_ACTION"] == 1.0 and values["RTL_SPEED"] == 0.0
        assert values["FENCE_TYPE"] == 6.0  # Rover: circle | polygon
        assert sim.counters["param_list_sent"] == total - 3
        assert {"SYSID_THISMAV", "FS_ACTION", "BATT_FS_LOW_ACT", "FENCE_ENABLE"} <= set(values)


async def test_fence_round_trip_total_staging_and_clear() -> None:
    async with _one() as (vehicle, sim):
        fence = Fence.inclusion_polygon(square_around(HOME_LON, HOME_LAT, 100.0))
        await vehicle.upload_fence(fence)
        back = await vehicle.download_fence()
        assert len(back.polygons) == 1 and back.polygons[0].inclusion
        flat = [x for v in back.polygons[0].vertices for x in v]
        assert flat == pytest.approx([x for v in fence.polygons[0].vertices for x in v], abs=1e-7)
        # FACTS: a 4-vertex inclusion polygon reads FENCE_TOTAL 6; FENCE_ENABLE unchanged.
        assert await vehicle.get_param("FENCE_TOTAL") == 6.0
        assert await vehicle.get_param("FENCE_ENABLE") == 0.0

        bigger = fence.with_exclusion_circle(HOME_LON, HOME_LAT, 10.0)
        await vehicle.upload_fence(bigger)
        assert (await vehicle.download_fence()).circles == bigger.circles

        # A polygon whose vertex count does not match is refused at the end of the upload,
        # and the vehicle keeps the fence it had (staged like MissionItemProtocol_Fence).
        broken = fence_items(Fence.inclusion_polygon(square_around(HOME_LON, HOME_LAT, 50.0)))[:3]
        with pytest.raises(MissionRejected) as info:
            await vehicle._transfer.upload(transfer.FENCE, broken)
        assert info.value.result_name == "MAV_MISSION_ERROR"
        assert (await vehicle.download_fence()).circles == bigger.circles

        await vehicle.clear_fence()
        assert (await vehicle.download_fence()).empty
        assert await vehicle.get_param("FENCE_TOTAL") == 0.0


async def test_rally_points_round_trip_and_clear() -> None:
    async with _one() as (vehicle, sim):
        points = [RallyPoint(HOME_LON + 0.001, HOME_LAT, 30.0),
                  RallyPoint(HOME_LON, HOME_LAT + 0.001, 25.0)]
        await vehicle.upload_rally(points)
        back = await vehicle.download_rally()
        assert [(p.lon_deg, p.lat_deg, p.alt_m) for p in back] == [
            pytest.approx((p.lon_deg, p.lat_deg, p.alt_m), abs=1e-7) for p in points]
        assert sim.param("RALLY_TOTAL") == 2
        assert await vehicle.download_mission() == []  # other mission types untouched
        await vehicle.clear_rally()
        assert await vehicle.download_rally() == []


@pytest.mark.parametrize(("action", "mode"), [(1, "RTL"), (2, "LAND"), (0, "AUTO")])
async def test_leaving_the_fence_triggers_the_configured_action(action: int, mode: str) -> None:
    async with _one() as (vehicle, sim):
        texts = vehicle.link.subscribe(1, types={"STATUSTEXT"}, maxsize=512)
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.upload_fence(Fence.inclusion_polygon(square_around(HOME_LON, HOME_LAT, 60.0)))
        await vehicle.set_param("FENCE_TYPE", 4)  # polygon only
        await vehicle.set_param("FENCE_ACTION", action)
        await vehicle.set_param("FENCE_ENABLE", 1)
        north_lat = HOME_LAT + 300.0 / M_PER_DEG_LAT
        await vehicle.upload_mission([mission.takeoff(20.0),
                                      mission.waypoint(HOME_LON, north_lat, 20.0),
                                      mission.loiter_time(HOME_LON, north_lat, 20.0, 600.0)])
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.set_mode("AUTO")
        breached = await _until(vehicle, lambda t: any(s.text == "Fence Breached"
                                                       for s in t.statustext), "Fence Breached")
        assert sim.fence_breach_count == 1
        assert breached.lat_deg > HOME_LAT  # it left northwards
        acted = await _until(vehicle, lambda t: t.mode == mode, f"mode {mode}")
        assert acted.armed
        if action == 1:
            home = await _until(vehicle, lambda t: t.landed and not t.armed, "back and landed")
            assert abs(home.lat_deg - HOME_LAT) * M_PER_DEG_LAT < 10.0
            seen = []
            while (msg := texts.get_nowait()) is not None:
                seen.append(msg.text)
            # the ground station saw the breach, then its clearing on the way back
            assert seen.index("Fence Breached") < seen.index("Fence breach cleared")
            assert sim.fence_breach_count == 1
        elif action == 2:
            landed = await _until(vehicle, lambda t: t.landed and not t.armed, "landed")
            assert (landed.lat_deg - HOME_LAT) * M_PER_DEG_LAT > 55.0  # landed out there
        else:
            far = await _until(vehicle, lambda t: (t.lat_deg - HOME_LAT) * M_PER_DEG_LAT > 200,
                               "flying on")
            assert far.mode == "AUTO" and sim.fence_breach_count == 1
