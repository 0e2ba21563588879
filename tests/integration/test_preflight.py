"""Pre-flight checks against the simulator over real UDP."""

from __future__ import annotations

import asyncio
import math
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import pytest

from sitl.vehicle_sim import SimVehicle, VehicleKind
from uav.errors import PreflightFailed
from uav.fence import Fence
from uav.preflight import preflight
from uav.vehicle import Vehicle

from tests.fixtures_sim import square_around, until, vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.60, 29.70, 250.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 25.0  # a generous ceiling for a loaded 2-core machine, not a measurement


_until = partial(until, deadline_s=DEADLINE_S)


def _one(kind: VehicleKind, **kw: Any) -> AbstractAsyncContextManager[tuple[Vehicle, SimVehicle]]:
    return vehicle_and_sim(kind, system_id=2, home=HOME, speedup=SPEEDUP, **kw)


@pytest.mark.parametrize("kind", ["copter", "boat"])
async def test_preflight_passes_on_a_ready_vehicle_and_makes_it_safe(kind: str) -> None:
    async with _one(kind, ekf_ready_after_s=2.0) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await _until(vehicle, lambda t: t.gps_fix_type >= 3 and math.isfinite(t.battery_pct),
                     "GPS and battery reported")
        assert sim.param("FS_GCS_ENABLE") == 0  # unsafe before
        fence = Fence.inclusion_polygon(square_around(HOME_LON, HOME_LAT, 400.0))
        report = await preflight(vehicle, need_pct=40, reserve_pct=20, fence=fence,
                                 required_params={"RTL_SPEED": 0}, fence_alt_max_m=120.0)
        assert report.passed, report.summary()
        names = [c.name for c in report.checks]
        assert names[:4] == ["heartbeat", "ekf", "gps", "battery"]
        assert "param RTL_SPEED" in names and "fence" in names
        assert sim.param("FS_GCS_ENABLE") == 1 and sim.param("FENCE_ACTION") == 1
        if kind == "copter":
            assert sim.param("BATT_FS_LOW_ACT") == 2
            assert sim.param("FENCE_TYPE") == 5 and sim.param("FENCE_ALT_MAX") == 120.0
        else:
            assert sim.param("BATT_FS_LOW_ACT") == 1 and sim.param("FS_ACTION") == 1
            assert sim.param("FENCE_TYPE") == 4
        assert sim.param("FENCE_ENABLE") == 1 and sim.param("FENCE_TOTAL") == 6
        assert "set 0 → 1" in next(c.reason for c in report.checks
                                   if c.name == "param FS_GCS_ENABLE")
        assert len((await vehicle.download_fence()).polygons) == 1
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()  # inside its fence, with safe failsafes: it may go
        assert (await _until(vehicle, lambda t: t.armed, "armed")).armed


async def test_preflight_fails_before_ekf_ready_and_on_low_battery() -> None:
    async with _one("copter", ekf_ready_after_s=100_000.0) as (vehicle, sim):
        sim.set_battery_pct(45.0)
        await _until(vehicle, lambda t: t.heartbeat_seen and math.isfinite(t.battery_pct)
                     and t.gps_fix_type >= 3, "heartbeat, battery and GPS")
        report = await preflight(vehicle, need_pct=40, reserve_pct=20, fence=None,
                                 required_params={})
        assert not report.passed
        failed = {c.name: c for c in report.failures}
        assert set(failed) == {"ekf", "battery"}
        assert failed["ekf"].reason.startswith("EKF not ready")
        assert "45 % < 40 % needed + 20 % reserve" in failed["battery"].reason
        with pytest.raises(PreflightFailed, match="ekf .*battery"):
            report.raise_if_failed()
        assert not vehicle.state.armed and not sim.armed


async def test_preflight_refuses_when_a_failsafe_cannot_be_set_and_reports_a_silent_vehicle(
        ) -> None:
    async with _one("copter", ekf_ready_after_s=2.0) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await _until(vehicle, lambda t: t.gps_fix_type >= 3, "GPS")
        sim.make_param_read_only("FS_GCS_ENABLE")
        report = await preflight(vehicle, need_pct=10, reserve_pct=10, fence=None,
                                 required_params={})
        [failed] = report.failures
        assert failed.name == "param FS_GCS_ENABLE"
        assert "Param write denied (FS_GCS_ENABLE)" in failed.reason

        sim.pause_link()
        await asyncio.sleep(1.2)  # silent for longer than the 1 s limit asked below
        silent = await preflight(vehicle, need_pct=10, reserve_pct=10,
                                 fence=Fence.inclusion_circle(HOME_LON, HOME_LAT, 300.0),
                                 required_params={}, heartbeat_max_age_s=1.0)
        assert not silent.passed
        assert "s ago" in silent.checks[0].reason
        assert all(c.reason == "not checked: vehicle not heard"
                   for c in silent.checks if c.name.startswith("param") or c.name == "fence")
