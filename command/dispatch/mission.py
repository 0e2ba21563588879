"""Recon mission planning: straight out, loiter over the target, return to launch.

Pure: vehicle, positions, terrain and zones in; a ``MissionPlan`` out, or ``PlanRefused``
with the reasons. No path-finding around zones: a straight leg that is unsafe is refused.

Copter: one constant height in the above-home frame (ArduPilot's default mission frame),
chosen so the vehicle stays ``clearance_m`` above the highest ground under the leg. The
plan is refused when that height would exceed the true-height cap anywhere on the leg, a
zone's ceiling, or when the leg crosses a prohibited or controlled zone.
Boat: on the water surface; the straight leg must stay on water.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from command.dispatch.airspace import NATIONAL_CEILING_AGL_M, Zone, check_path
from command.dispatch.allocation import DEFAULT_RESERVE_PCT, Candidate
from command.dispatch.errors import PlanRefused
from command.dispatch.geometry import UTM_48N, densify, path_length_m, utm_transformers
from command.district import Terrain
from uav.mission import MissionItem, loiter_time, return_to_launch, takeoff, waypoint

__all__ = ["MissionPlan", "PlanRefused", "plan_recon"]

# ArduCopter defaults: climb 2.5 m/s (WPNAV_SPEED_UP), descent 1.5 m/s (WPNAV_SPEED_DN),
# the last 10 m of a landing at 0.5 m/s (LAND_SPEED = 50 cm/s).
_CLIMB_MPS, _DESCENT_MPS, _LAND_MPS, _LAND_FINAL_M = 2.5, 1.5, 0.5, 10.0


@dataclass(frozen=True, slots=True)
class MissionPlan:
    """A checked recon mission, ready for ``Vehicle.upload_mission(plan.items)``."""

    vehicle: str
    vehicle_type: str
    items: tuple[MissionItem, ...]
    path: tuple[tuple[float, float], ...]  # lon/lat: home, target, home
    alt_above_home_m: float  # cruise height in the above-home frame (0 for a boat)
    cruise_amsl_m: float  # the same height above mean sea level
    max_agl_m: float  # highest height above ground along the path
    distance_m: float  # out and back
    est_duration_s: float
    energy_pct: float  # estimated battery use
    checks: tuple[str, ...]  # the checks it passed, readable
    approvals: tuple[Mapping[str, Any], ...] = ()  # the airspace grants it flies under


def plan_recon(vehicle: Candidate, home_lonlat: tuple[float, float], home_ground_amsl_m: float,
               target_lonlat: tuple[float, float], *, terrain: Terrain | None, zones: Sequence[Zone],
               clearance_m: float = 60.0, loiter_s: float = 60.0, cap_agl_m: float = NATIONAL_CEILING_AGL_M,
               water: BaseGeometry | None = None, reserve_pct: float = DEFAULT_RESERVE_PCT,
               step_m: float = 25.0, epsg: int = UTM_48N) -> MissionPlan:
    """Plan take-off, straight leg, loiter over the target for ``loiter_s``, return to launch.

    Raises ``PlanRefused`` listing every reason the plan is unsafe or not allowed.
    """
    home = (float(home_lonlat[0]), float(home_lonlat[1]))
    target = (float(target_lonlat[0]), float(target_lonlat[1]))
    leg_m = path_length_m([home, target], epsg=epsg)
    if vehicle.type == "boat":
        return _plan_boat(vehicle, home, home_ground_amsl_m, target, leg_m, loiter_s=loiter_s, water=water,
                          reserve_pct=reserve_pct, epsg=epsg)
    if terrain is None:
        raise PlanRefused(["no terrain model: cannot keep a safe height above ground"],
                          ["无地形数据，无法保证离地安全高度"])

    ground_max = terrain.max_along_line([home, target], step_m=step_m)
    if not math.isfinite(ground_max):
        raise PlanRefused(["the path leaves the terrain model"], ["航线超出地形数据范围"])
    # Above-home height that keeps clearance_m over the highest ground on the leg.
    # (rounded to the millimetre first, so interpolation noise does not add a metre)
    alt = max(math.ceil(round(ground_max - home_ground_amsl_m + clearance_m, 3)), math.ceil(clearance_m))
    cruise_amsl = home_ground_amsl_m + alt
    line = [home, target]
    vertex_ground = terrain.elevation_along(np.array([home[0], target[0]]), np.array([home[1], target[1]]))
    violations = check_path(line, cruise_amsl - vertex_ground, zones, terrain=terrain, cap_agl_m=cap_agl_m,
                            step_m=step_m, epsg=epsg)
    lons, lats, _, _ = densify(line, step_m, epsg=epsg)
    agl = cruise_amsl - terrain.elevation_along(lons, lats)
    max_agl = float(np.max(agl))

    duration = (alt / _CLIMB_MPS + 2.0 * leg_m / vehicle.cruise_speed_mps + loiter_s
                + max(alt - _LAND_FINAL_M, 0.0) / _DESCENT_MPS + min(alt, _LAND_FINAL_M) / _LAND_MPS)
    energy = 100.0 * duration / vehicle.endurance_s

    reasons = [v.reason for v in violations]
    reasons_zh = [v.reason_zh for v in violations]
    for i, v in enumerate(violations):
        if v.kind == "national_ceiling":
            reasons[i] += (f" (a straight leg {clearance_m:.0f} m above the highest ground, "
                           f"{ground_max:.0f} m, needs {cruise_amsl:.0f} m above sea level)")
            reasons_zh[i] += f"（直线航段须高于最高地面 {ground_max:.0f} 米 {clearance_m:.0f} 米，即海拔 {cruise_amsl:.0f} 米）"
    _refuse_if_any(reasons, reasons_zh, _battery(vehicle, energy, reserve_pct))

    checks = (
        f"terrain: cruise {cruise_amsl:.0f} m above sea level ({alt} m above home), at least "
        f"{clearance_m:.0f} m above the highest ground on the leg ({ground_max:.0f} m)",
        f"height: at most {max_agl:.0f} m above ground (cap {cap_agl_m:.0f} m true height)",
        f"airspace: no prohibited, controlled or height-limited zone breached ({len(zones)} zones checked)",
        f"battery: {vehicle.battery_pct:.0f} % minus about {energy:.0f} % leaves at least the {reserve_pct:.0f} % reserve",
    )
    items = (
        takeoff(float(alt)),
        waypoint(target[0], target[1], float(alt)),
        loiter_time(target[0], target[1], float(alt), float(loiter_s)),
        return_to_launch(),
    )
    return MissionPlan(vehicle.name, vehicle.type, items, (home, target, home), float(alt), float(cruise_amsl),
                       max_agl, 2.0 * leg_m, duration, energy, checks)


def _refuse_if_any(reasons: list[str], reasons_zh: list[str], battery: tuple[str, str] | None) -> None:
    """Raise PlanRefused with every reason found, the battery check's last."""
    if battery:
        reasons.append(battery[0])
        reasons_zh.append(battery[1])
    if reasons:
        raise PlanRefused(reasons, reasons_zh)


def _battery(vehicle: Candidate, energy_pct: float, reserve_pct: float) -> tuple[str, str] | None:
    if vehicle.battery_pct - energy_pct >= reserve_pct:
        return None
    return (f"battery {vehicle.battery_pct:.0f} % minus about {energy_pct:.0f} % for the mission leaves less than "
            f"the {reserve_pct:.0f} % reserve",
            f"电量 {vehicle.battery_pct:.0f}% 减去任务耗电约 {energy_pct:.0f}% 后低于 {reserve_pct:.0f}% 余量")


def _plan_boat(vehicle: Candidate, home: tuple[float, float], home_amsl_m: float, target: tuple[float, float],
               leg_m: float, *, loiter_s: float, water: BaseGeometry | None, reserve_pct: float,
               epsg: int) -> MissionPlan:
    if water is None or water.is_empty:
        raise PlanRefused(["no water areas known: cannot check a boat path"], ["无水域数据，无法校核无人船航线"])
    reasons: list[str] = []
    reasons_zh: list[str] = []
    if not shapely.covers(water, shapely.Point(home)):
        reasons.append("the boat's home is not on water")
        reasons_zh.append("无人船起点不在水面上")
    if not shapely.covers(water, shapely.Point(target)):
        reasons.append("the target is not on water: a boat cannot reach it")
        reasons_zh.append("目标不在水面上，无人船无法到达")
    line = LineString([home, target]) if home != target else None
    if line is not None and not reasons:
        outside = line.difference(water)
        if not outside.is_empty:
            fwd, _ = utm_transformers(epsg)
            dry_m = shapely.transform(outside, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1]))).length
            if dry_m > 1.0:  # touching a bank vertex is not leaving the water
                reasons.append(f"the straight path leaves the water for {dry_m:.0f} m")
                reasons_zh.append(f"直线航线有 {dry_m:.0f} 米不在水面上")
    duration = 2.0 * leg_m / vehicle.cruise_speed_mps + loiter_s
    energy = 100.0 * duration / vehicle.endurance_s
    _refuse_if_any(reasons, reasons_zh, _battery(vehicle, energy, reserve_pct))
    checks = (
        f"water: the path stays on water ({leg_m / 1000:.1f} km each way)",
        f"battery: {vehicle.battery_pct:.0f} % minus about {energy:.0f} % leaves at least the {reserve_pct:.0f} % reserve",
    )
    items = (
        waypoint(target[0], target[1], 0.0),
        loiter_time(target[0], target[1], 0.0, float(loiter_s)),
        return_to_launch(),
    )
    return MissionPlan(vehicle.name, vehicle.type, items, (home, target, home), 0.0, float(home_amsl_m), 0.0,
                       2.0 * leg_m, duration, energy, checks)
