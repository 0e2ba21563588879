"""A vehicle task made into a mission a dispatcher can approve. Pure.

For one task (``tasks.TaskSpec``) and one vehicle, the steps are:

1. the pattern (``patterns``): an orbit, a lawnmower from the camera footprint, a patrol,
   a broadcast sweep, an overwatch hold, a boat survey on water;
2. the way there (``paths``): around prohibited zones and controlled zones without a valid
   approval (copter), or on water around the banks (boat);
3. heights (``paths.altitude_profile``): each leg level above sea level, the clearance over
   the highest ground under and beside it, under 120 m true height, a height-limited zone's
   ceiling or the cap an approval gives — never "above home" over the ridges;
4. the failsafe return (``paths.choose_return``): RTL at an altitude that keeps every return
   started along the path clear of zones and terrain, else SmartRTL, else refused;
5. approvals (``approvals``): what the path needs from air traffic management and whether
   the grants on record cover it;
6. battery (``energy``): the mission, the way home and the landing from the current charge,
   refused below the reserve;
7. the mission items (AMSL frame for the legs) and the figures a dispatcher decides on: time
   to target, duration, battery at landing, approvals, return, checks.

Any step that cannot be met raises ``PlanRefused`` with every reason (en, zh).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from uav.mission import FRAME_GLOBAL_AMSL, MissionItem, loiter_time, return_to_launch, takeoff, waypoint

from . import patterns as pt
from .airspace import Zone
from .allocation import DEFAULT_RESERVE_PCT
from .approvals import Grant, approval_check, require_grants
from .energy import EnergyModel, Flow, Leg, check_reserve, leg_energy_pct, leg_time_s, mission_energy_pct, path_legs
from .errors import PlanRefused
from .geometry import UTM_48N, ground_distance_m, path_length_m, utm_transformers
from .mission import MissionPlan
from .paths import (
    DEFAULT_CLEARANCE_M,
    AltitudeProfile,
    NoPath,
    altitude_profile,
    check_current,
    choose_return,
    obstacle_zones,
    plan_path,
)
from .tasks import TaskSpec
from .waterways import HEADROOM_MARGIN_M, Waterway

__all__ = ["PlanVehicle", "TaskPlan", "layer_plans", "plan_task", "vertical_conflict"]

TerrainFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
LonLat = tuple[float, float]

RECON_RADIUS_M = 60.0  # orbit radius over a recon target: the camera keeps it in view at 60 m height
SEARCH_SPEED_MPS = 8.0  # over a search area: slow enough for the camera (our choice)
THERMAL_HFOV_DEG = 50.0  # a typical 640 px thermal core behind a ~13 mm lens (our assumption)
# A flood survey boat looks for people cut off (on roofs, at windows, at the waterline) with its
# camera, about 100 m either side in the open, and sounds the depth along its track: a
# reconnaissance, not a hydrographic survey. Our assumption.
BOAT_SWATH_M = 200.0
SAMPLE_M = 10.0
# MAV_CMD_NAV_WAYPOINT, LOITER_UNLIM, LOITER_TURNS, LOITER_TIME: the items that are places
_POSITION_ITEMS = frozenset({16, 17, 18, 19})
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True, slots=True)
class PlanVehicle:
    """A vehicle as the planner sees it."""

    name: str
    type: str  # copter | boat
    home: LonLat
    home_ground_amsl_m: float  # ground (copter) or water surface (boat) at home
    battery_pct: float
    cruise_speed_mps: float
    endurance_s: float
    payloads: frozenset[str] = frozenset()
    air_draft_m: float = 1.5  # boats: height above the water, for bridges


@dataclass(frozen=True)
class TaskPlan:
    """A proposed mission for one task: the mission and the figures a dispatcher decides on."""

    task: TaskSpec
    mission: MissionPlan
    pattern: pt.Pattern
    time_to_target_s: float
    battery_at_landing_pct: float
    return_mode: str
    return_params: Mapping[str, float]
    approvals: tuple[Mapping[str, Any], ...] = ()
    coverage_area: BaseGeometry | None = None  # what a search must see (lon/lat), for the follow-up
    swath_m: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_wire(self) -> dict[str, Any]:
        m = self.mission
        return {
            "vehicle": m.vehicle, "vehicle_type": m.vehicle_type, "task": self.task.to_wire(),
            "pattern": self.pattern.kind, "pattern_text": self.pattern.describe(),
            "path": [list(p) for p in m.path], "items": len(m.items),
            "time_to_target_s": round(self.time_to_target_s, 1), "est_duration_s": round(m.est_duration_s, 1),
            "distance_m": round(m.distance_m, 1), "energy_pct": round(m.energy_pct, 1),
            "battery_at_landing_pct": round(self.battery_at_landing_pct, 1),
            "max_agl_m": round(m.max_agl_m, 1), "cruise_amsl_m": round(m.cruise_amsl_m, 1),
            "return": {"mode": self.return_mode, "params": dict(self.return_params)},
            "approvals": [dict(a) for a in self.approvals], "checks": list(m.checks), "notes": list(self.notes),
            "coverage_area": mapping(self.coverage_area) if self.coverage_area is not None else None,
            "swath_m": self.swath_m,
        }


def _pattern(task: TaskSpec, v: PlanVehicle, *, agl_m: float, water: BaseGeometry | None,
             usable: BaseGeometry | None) -> pt.Pattern:
    """The working pattern of a task for this vehicle (``usable``: the area the vehicle may work in)."""
    speed = min(v.cruise_speed_mps, SEARCH_SPEED_MPS)
    hfov = THERMAL_HFOV_DEG if "thermal_camera" in task.needs else pt.WIDE_24MM_HFOV_DEG
    area = task.area
    if area is not None and usable is not None:
        area = area.intersection(usable)
        if area.is_empty:
            raise PlanRefused([f"task {task.key}: its whole area lies in airspace the vehicle may not enter"],
                              [f"任务 {task.key} 的区域全部位于不可进入的空域"])
    if v.type == "boat":
        if task.kind == "boat_survey" and area is not None and water is not None:
            return pt.boat_survey(area, water, swath_m=BOAT_SWATH_M, speed_mps=v.cruise_speed_mps, start=v.home)
        return pt.overwatch(task.point, standoff_m=0.0, bearing_deg=0.0, speed_mps=v.cruise_speed_mps,
                            duration_s=task.duration_s or 60.0)
    if task.kind == "recon":
        return pt.orbit(task.point, radius_m=RECON_RADIUS_M, speed_mps=speed, duration_s=task.duration_s or 60.0)
    if task.kind in ("area_search", "boat_survey") and area is not None:
        return pt.parallel_track(area, agl_m=agl_m, hfov_deg=hfov, speed_mps=speed, start=v.home)
    if task.kind == "broadcast" and area is not None:
        return pt.broadcast_sweep(area, start=v.home)
    if task.kind in ("route_patrol", "gas_survey") and task.line is not None:
        return pt.route_patrol(task.line, speed_mps=speed, out_and_back=task.kind == "gas_survey",
                               swath_m=pt.camera_swath_m(agl_m, hfov))
    if task.kind == "overwatch":
        look = tuple(task.params.get("look_at") or task.point)
        standoff = ground_distance_m((float(look[0]), float(look[1])), task.point)
        fwd_az = _bearing((float(look[0]), float(look[1])), task.point) if standoff > 1.0 else 0.0
        return pt.overwatch((float(look[0]), float(look[1])), standoff_m=standoff, bearing_deg=fwd_az,
                            speed_mps=speed, duration_s=task.duration_s)
    if task.kind == "expanding_square":
        return pt.expanding_square(task.point, spacing_m=pt.track_spacing_m(pt.camera_swath_m(agl_m, hfov)),
                                   speed_mps=speed, radius_m=float(task.params.get("radius_m", 500.0)))
    if task.kind == "sector_search":
        return pt.sector_search(task.point, radius_m=float(task.params.get("radius_m", 500.0)), speed_mps=speed)
    raise PlanRefused([f"task {task.key} ({task.kind}) has no geometry to fly"], [f"任务 {task.key} 缺少航线几何"])


def _bearing(a: LonLat, b: LonLat) -> float:
    az, _, _ = _GEOD.inv(a[0], a[1], b[0], b[1])
    return float(az) % 360.0


def _approved(grants: Sequence[Grant], now: datetime, until: datetime) -> dict[str, float]:
    """Zones with a grant valid over the whole flight, and the lowest cap among them."""
    caps: dict[str, float] = {}
    for g in grants:
        if g.valid_from <= now and until <= g.valid_to:
            caps[g.zone_id] = min(caps.get(g.zone_id, g.max_alt_agl_m), g.max_alt_agl_m)
    return caps


def _items(profile: AltitudeProfile, pattern: pt.Pattern, home_ground_amsl_m: float) -> list[MissionItem]:
    holds = {wp: h for wp, h in zip(pattern.waypoints, pattern.hold_s, strict=True) if h > 0}
    first = profile.legs[0].alt_amsl_m
    items: list[MissionItem] = [takeoff(max(round(first - home_ground_amsl_m), 10.0))]
    for lon, lat, alt in profile.waypoints:
        hold = holds.pop((lon, lat), 0.0)
        if hold > 0:
            seconds = hold if math.isfinite(hold) else 3600.0
            items.append(loiter_time(lon, lat, alt, seconds, frame=FRAME_GLOBAL_AMSL))
        else:
            items.append(waypoint(lon, lat, alt, frame=FRAME_GLOBAL_AMSL))
    items.append(return_to_launch())
    return items


def plan_task(task: TaskSpec, vehicle: PlanVehicle, *, terrain: TerrainFn, zones: Sequence[Zone],
              water: BaseGeometry | None, grants: Sequence[Grant] = (), now: datetime,
              clearance_m: float = DEFAULT_CLEARANCE_M, reserve_pct: float = DEFAULT_RESERVE_PCT,
              wind: Flow | None = None, rtl_alt_m: float | None = None, epsg: int = UTM_48N,
              waterway: Waterway | None = None) -> TaskPlan:
    """The mission for ``task`` flown by ``vehicle``, or ``PlanRefused`` with every reason.

    A boat goes where ``waterway`` says (flooded ground, bridges, currents); without one, on
    ``water`` in still water, or in the uniform current ``wind``.

    ``clearance_m`` and ``rtl_alt_m`` (the lowest RTL altitude to try) are a vehicle's altitude layer
    when several fly over one incident (``paths.altitude_layers``)."""
    if vehicle.type not in task.vehicle_types:
        raise PlanRefused([f"task {task.key} needs a {' or '.join(sorted(task.vehicle_types))}, "
                           f"{vehicle.name} is a {vehicle.type}"],
                          [f"任务 {task.key} 需要{'或'.join(sorted(task.vehicle_types))}，{vehicle.name} 为 {vehicle.type}"])
    missing = set(task.needs) - set(vehicle.payloads)
    if missing:
        raise PlanRefused([f"{vehicle.name} does not carry {', '.join(sorted(missing))}"],
                          [f"{vehicle.name} 未搭载 {'、'.join(sorted(missing))}"])
    if vehicle.type == "boat":
        if waterway is None and water is not None and not water.is_empty:
            waterway = Waterway(water, epsg=epsg)  # type: ignore[arg-type]
        return _plan_boat(task, vehicle, waterway=waterway, reserve_pct=reserve_pct, current=wind, epsg=epsg)
    model = EnergyModel.for_vehicle("copter", vehicle.cruise_speed_mps, vehicle.endurance_s)
    horizon = now + timedelta(seconds=vehicle.endurance_s)
    caps = _approved(grants, now, now + timedelta(minutes=5))
    blocked = obstacle_zones(zones, approved_ids=tuple(caps))
    usable = None
    if blocked:
        usable = shapely.box(-180, -90, 180, 90).difference(shapely.union_all([z.polygon for z in blocked]))
    pattern = _pattern(task, vehicle, agl_m=clearance_m, water=water, usable=usable)
    try:
        transit = plan_path(vehicle.home, pattern.waypoints[0], blocked, epsg=epsg)
    except NoPath as err:
        raise PlanRefused([f"no way to the task: {err.reason}"], [f"无法到达任务区：{err.reason_zh}"]) from None
    path = [*transit.waypoints, *pattern.waypoints[1:]]
    if len(path) < 2:
        path = [vehicle.home, pattern.waypoints[0]]
    profile = altitude_profile(path, terrain, clearance_m=clearance_m, zones=zones, approved_caps_agl_m=caps,
                               step_m=SAMPLE_M, epsg=epsg)
    ret = choose_return(profile.legs, vehicle.home, vehicle.home_ground_amsl_m, (), zones, terrain,
                        rtl_alt_m=rtl_alt_m if rtl_alt_m is not None else clearance_m,
                        clearance_m=min(clearance_m, DEFAULT_CLEARANCE_M), approved_caps_agl_m=caps, epsg=epsg)
    # the legs' heights above ground at each vertex, for the approval check
    wps = profile.waypoints
    lons = np.array([p[0] for p in wps])
    lats = np.array([p[1] for p in wps])
    agl = np.array([p[2] for p in wps]) - np.asarray(terrain(lons, lats), dtype=float)
    # energy: climb to the first level, the legs (their level changes), holds, the way home, the landing
    first_alt = profile.legs[0].alt_amsl_m
    last = wps[-1]
    legs = [Leg(0.0, 0.0, first_alt - vehicle.home_ground_amsl_m)]
    legs += path_legs([(p[0], p[1]) for p in wps], alts_m=[p[2] for p in wps])
    finite_holds = sum(h for h in pattern.hold_s if math.isfinite(h))
    if finite_holds:
        legs.append(Leg(0.0, 0.0, 0.0, finite_holds))
    home_leg = path_legs([(last[0], last[1]), vehicle.home])
    legs += home_leg
    legs.append(Leg(0.0, 0.0, -(max(ret.rtl_alt_m, last[2] - vehicle.home_ground_amsl_m))))
    energy = mission_energy_pct(legs, model, wind)
    check_reserve(energy, vehicle.battery_pct, reserve_pct)
    speed = vehicle.cruise_speed_mps
    tta = (first_alt - vehicle.home_ground_amsl_m) / model.climb_speed_mps + transit.length_m / speed
    distance = path_length_m([(p[0], p[1]) for p in wps], epsg=epsg) + sum(leg.distance_m for leg in home_leg)
    duration = tta + max(pattern.est_duration_s, 0.0) + sum(leg.distance_m for leg in home_leg) / speed \
        + (last[2] - vehicle.home_ground_amsl_m) / model.descent_speed_mps
    if not math.isfinite(duration) or now + timedelta(seconds=duration) > horizon:
        duration = min(duration, vehicle.endurance_s)
    approvals = require_grants([(p[0], p[1]) for p in wps], agl, zones, grants, now=now,
                               until=now + timedelta(seconds=duration))
    max_agl = max(leg.max_agl_m for leg in profile.legs)
    min_agl = min(leg.min_agl_m for leg in profile.legs)
    checks = [
        f"path: {transit.length_m / 1000:.1f} km to the task around {len(blocked)} zone(s) "
        f"({transit.ratio:.2f}× the straight line), then {pattern.describe()}",
        f"height: every leg level above sea level, {min_agl:.0f}–{max_agl:.0f} m above ground "
        f"(clearance {clearance_m:.0f} m, sampled every {SAMPLE_M:.0f} m and {profile.lateral_m:.0f} m to either side)",
        f"return: {ret.mode} ({ret.note})",
        f"battery: {vehicle.battery_pct:.0f} % minus about {energy:.0f} % (mission, way home, landing) leaves "
        f"{vehicle.battery_pct - energy:.0f} %, reserve {reserve_pct:.0f} %",
    ]
    checks += [approval_check(a) for a in approvals]
    mission = MissionPlan(
        vehicle.name, "copter", tuple(_items(profile, pattern, vehicle.home_ground_amsl_m)),
        tuple([vehicle.home, *[(p[0], p[1]) for p in wps], vehicle.home]),
        float(max(p[2] for p in wps) - vehicle.home_ground_amsl_m), float(max(p[2] for p in wps)), float(max_agl),
        float(distance), float(duration), float(energy), tuple(checks), approvals)
    area = task.area.intersection(usable) if task.area is not None and usable is not None else task.area
    return TaskPlan(task, mission, pattern, float(tta), float(vehicle.battery_pct - energy), ret.mode,
                    dict(ret.params), approvals, area, pattern.swath_m, pattern.notes)


def _plan_boat(task: TaskSpec, vehicle: PlanVehicle, *, waterway: Waterway | None, reserve_pct: float,
               current: Flow | None, epsg: int) -> TaskPlan:
    if waterway is None or waterway.water.is_empty:
        raise PlanRefused(["no water areas known: cannot plan a boat"], ["无水域数据，无法规划无人船"])
    model = EnergyModel.for_vehicle("boat", vehicle.cruise_speed_mps, vehicle.endurance_s)
    blocking = waterway.blocking(vehicle.air_draft_m)
    water = waterway.passable(vehicle.air_draft_m)
    try:
        pattern = _pattern(task, vehicle, agl_m=0.0, water=water, usable=None)
    except ValueError as err:
        raise PlanRefused([f"task {task.key}: {err}"], [f"任务 {task.key}：无可航行水域（{err}）"]) from None
    try:
        ways = waterway.planner(vehicle.air_draft_m)
        out, back = ways.plan(vehicle.home, pattern.waypoints[0]), ways.plan(pattern.waypoints[-1], vehicle.home)
    except NoPath as err:
        reasons, reasons_zh = [f"no way on water: {err.reason}"], [f"水上无可行航线：{err.reason_zh}"]
        if blocking:
            try:  # would the way exist if the low bridges were not there? then they are why
                ways = Waterway(waterway.water, epsg=epsg).planner(vehicle.air_draft_m)
                ways.plan(vehicle.home, pattern.waypoints[0])
                ways.plan(pattern.waypoints[-1], vehicle.home)
            except NoPath:
                pass
            else:
                need = vehicle.air_draft_m + HEADROOM_MARGIN_M
                reasons = [f"bridge '{c.name}' leaves {c.headroom_m:.1f} m above today's water, "
                           f"{vehicle.name} needs {need:.1f} m" for c in blocking]
                reasons_zh = [f"“{c.name_zh}”桥下净空按当前水位仅 {c.headroom_m:.1f} 米，"
                              f"{vehicle.name} 需 {need:.1f} 米" for c in blocking]
        raise PlanRefused(reasons, reasons_zh) from None
    path = [*out.waypoints, *pattern.waypoints[1:]]
    full = [*path, *back.waypoints[1:]]
    flows = waterway.leg_flows(full) if waterway.flows else [current] * (len(full) - 1)
    reasons, reasons_zh = [], []
    for i, (a, b, flow) in enumerate(zip(full, full[1:], flows)):
        if flow is None or a == b:
            continue
        try:
            check_current([a, b], flow.speed_mps, flow.toward_deg, vehicle.cruise_speed_mps)
        except PlanRefused as err:
            reasons += [r.replace("leg 0", f"leg {i}", 1) for r in err.reasons]
            reasons_zh += [r.replace("第 0 航段", f"第 {i} 航段", 1) for r in err.reasons_zh]
    if reasons:
        raise PlanRefused(reasons, reasons_zh)
    legs = path_legs(full)
    holds = sum(h for h in pattern.hold_s if math.isfinite(h))
    energy = float(sum(leg_energy_pct(leg, model, flow) for leg, flow in zip(legs, flows)))
    if holds:
        energy += leg_energy_pct(Leg(0.0, 0.0, 0.0, holds), model, None)
    check_reserve(energy, vehicle.battery_pct, reserve_pct)
    distance = sum(leg.distance_m for leg in legs)
    duration = float(sum(leg_time_s(leg, model, flow) for leg, flow in zip(legs, flows))) + holds
    hold_at = {wp: h for wp, h in zip(pattern.waypoints, pattern.hold_s, strict=True) if h > 0}
    items: list[MissionItem] = []
    for lon, lat in [*path[1:], *back.waypoints[1:-1]]:
        h = hold_at.pop((lon, lat), 0.0)
        items.append(loiter_time(lon, lat, 0.0, h if math.isfinite(h) else 3600.0) if h > 0
                     else waypoint(lon, lat, 0.0))
    items.append(return_to_launch())
    strongest = max((f.speed_mps for f in flows if f is not None), default=0.0)
    checks = [f"water: {out.length_m / 1000:.1f} km out and {back.length_m / 1000:.1f} km back on water, "
              f"{pattern.describe()}",
              f"bridges: {len(waterway.crossings) - len(blocking)} passable"
              + (f", {len(blocking)} too low today ({', '.join(c.name for c in blocking)})" if blocking else ""),
              (f"current: up to {strongest:.1f} m/s on the way, every leg makes headway" if strongest > 0 else
               "current: none measured on the way" if waterway.flows else
               "current: not measured, planned as still water"),
              f"battery: {vehicle.battery_pct:.0f} % minus about {energy:.0f} % leaves "
              f"{vehicle.battery_pct - energy:.0f} %, reserve {reserve_pct:.0f} %"]
    mission = MissionPlan(vehicle.name, "boat", tuple(items), tuple(full), 0.0,
                          vehicle.home_ground_amsl_m, 0.0, float(distance), float(duration), float(energy),
                          tuple(checks))
    tta = float(sum(leg_time_s(leg, model, flow) for leg, flow in zip(legs[:len(out.waypoints) - 1], flows)))
    return TaskPlan(task, mission, pattern, tta, vehicle.battery_pct - energy, "RTL", {},
                    (), task.area, pattern.swath_m, pattern.notes)


def _flown_3d(plan: TaskPlan, step_m: float, epsg: int) -> np.ndarray:
    """(x, y, alt AMSL) every ``step_m`` along the mission's AMSL legs (take-off and landing at home left out)."""
    pts = [(it.lon_deg, it.lat_deg, it.alt_m) for it in plan.mission.items
           if it.frame == FRAME_GLOBAL_AMSL and it.command in _POSITION_ITEMS]
    if len(pts) < 2:
        return np.empty((0, 3))
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    z = np.array([p[2] for p in pts])
    out = []
    for i in range(len(pts) - 1):
        n = max(1, int(math.ceil(math.hypot(x[i + 1] - x[i], y[i + 1] - y[i]) / step_m)))
        t = np.linspace(0.0, 1.0, n + 1)
        # legs are level; a change of level is a vertical move over a waypoint (both heights sampled there)
        out.append(np.column_stack([x[i] + t * (x[i + 1] - x[i]), y[i] + t * (y[i + 1] - y[i]),
                                    z[i] + t * (z[i + 1] - z[i])]))
    return np.vstack(out)


def vertical_conflict(a: TaskPlan, b: TaskPlan, *, horizontal_m: float = 50.0, vertical_m: float = 15.0,
                      step_m: float = 10.0, epsg: int = UTM_48N) -> tuple[LonLat, float, float] | None:
    """The first place where two missions pass within ``horizontal_m`` of each other less than ``vertical_m``
    apart in height (place, altitude of a, altitude of b), or None when they are separated.

    Both may fly at the same time over one incident; times along the missions are not compared (a
    conservative check: the places alone must be separated)."""
    pa, pb = _flown_3d(a, step_m, epsg), _flown_3d(b, step_m, epsg)
    if not len(pa) or not len(pb):
        return None
    tree = cKDTree(pb[:, :2])
    for i, near in enumerate(tree.query_ball_point(pa[:, :2], horizontal_m)):
        if not near:
            continue
        gap = np.abs(pb[near, 2] - pa[i, 2])
        k = int(np.argmin(gap))
        if gap[k] < vertical_m - 0.5:
            _, inv = utm_transformers(epsg)
            lon, lat = inv.transform(pa[i, 0], pa[i, 1])
            return (float(lon), float(lat)), float(pa[i, 2]), float(pb[near[k], 2])
    return None


def layer_plans(count: int, replan: Callable[[int, float, float], TaskPlan], *, base_clearance_m: float,
                step_m: float = 15.0, rtl_step_m: float = 10.0, horizontal_m: float = 50.0,
                cap_agl_m: float = 120.0) -> list[TaskPlan | PlanRefused]:
    """Missions for ``count`` vehicles over one incident, vertically apart.

    ``replan(k, clearance_m, rtl_alt_m)`` makes vehicle k's mission. Vehicle k starts on layer k
    (``base + k·step`` over the ground, RTL altitudes ``rtl_step_m`` apart, ``paths.altitude_layers``).
    A layer is a clearance over the ground under each leg, not a height: two vehicles arriving over
    different ground can meet at one height. So while vehicle k passes within ``horizontal_m`` of an
    earlier one less than ``step_m`` apart in height, it is raised a layer more; when no layer under the
    ceiling separates it, its entry is the ``PlanRefused`` saying so.
    """
    out: list[TaskPlan | PlanRefused] = []
    placed: list[TaskPlan] = []
    for k in range(count):
        clearance = base_clearance_m + k * step_m
        rtl = base_clearance_m + k * rtl_step_m
        while True:
            if clearance > cap_agl_m:
                out.append(PlanRefused(
                    [f"no altitude layer under {cap_agl_m:.0f} m keeps it {step_m:.0f} m apart in height from the "
                     f"other vehicles over this incident"],
                    [f"{cap_agl_m:.0f} 米以下无高度层可与本事件其他无人机保持 {step_m:.0f} 米垂直间隔"]))
                break
            try:
                plan = replan(k, clearance, rtl)
            except PlanRefused as err:
                out.append(err)
                break
            if all(vertical_conflict(plan, q, horizontal_m=horizontal_m, vertical_m=step_m) is None for q in placed):
                out.append(plan)
                placed.append(plan)
                break
            clearance += step_m
    return out
