"""Safety of planned missions over the synthetic Yubei district (command.dispatch.planner.plan_task).

A second opinion on the planner: seeded tasks at random places of the district (and, with an
approval, in the airport's controlled zone; and beside a temporary no-fly area), vehicles a few
kilometres away, and every mission the planner accepts is flown again from its mission items
alone — take-off above home, then each AMSL waypoint or loiter in order, straight lines between —
and checked against the terrain and the airspace here, without the planner's own checks
(``paths.altitude_profile``, ``paths.check_returns``):

- every 10 m of the path: at least the clearance over the ground (1 m below it for whole-metre
  planning), at most the ceiling that applies there (120 m true height, Interim Regulations on
  Unmanned Aircraft Flight Management 2024, art. 19; a height-limited zone's ceiling; the cap of
  an approval for a controlled zone); never in a prohibited zone, never in the controlled zone
  without an approval;
- an RTL started every 50 m along the path (ArduCopter "RTL Mode": climb in place to
  max(RTL_ALT above home, current height), fly straight home, descend), sampled every 25 m: no
  prohibited zone, the clearance over the ground, the ceilings (the cone RTL_CONE_SLOPE lowers a
  return only within RTL_ALT / 3 of home and never below the current height, so it is left out);
- the checks themselves catch a lowered mission, a low return and a missing approval;
- two vehicles over one incident on two altitude layers (``paths.altitude_layers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import pytest
import shapely
from pymavlink.dialects.v20 import ardupilotmega as mav
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point, Polygon

from command.dispatch.airspace import NATIONAL_CEILING_AGL_M, Zone
from command.dispatch.approvals import Grant
from command.dispatch.errors import PlanRefused
from command.dispatch.geometry import UTM_48N, utm_transformers
from command.dispatch.paths import DEFAULT_CLEARANCE_M, altitude_layers
from command.dispatch.planner import PlanVehicle, TaskPlan, layer_plans, plan_task
from command.dispatch.tasks import PAYLOADS, TaskSpec, tasks_for_incident
from command.district import District
from sitl.scenarios.yubei.generate import generate
from uav.mission import FRAME_ABOVE_HOME, FRAME_GLOBAL_AMSL, MissionItem

FWD, INV = utm_transformers(UTM_48N)
SEED = 20240601
N_TASKS = 30  # tasks anywhere in the district
N_CONTROLLED = 16  # tasks in the controlled zone where a 60 m clearance fits under an approval
N_AROUND = 16  # tasks beside a temporary no-fly area, the vehicle across it or aside
NOW = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)
CONTROLLED_ID = "ckg-control"
GRANT_CAP_M = 120.0
GRANT = Grant("grant-ckg", CONTROLLED_ID, "Southwest Regional ATM Bureau", "XN-2024-0701",
              NOW - timedelta(hours=1), NOW + timedelta(hours=8), GRANT_CAP_M)
CLEARANCE_M = DEFAULT_CLEARANCE_M
TOL_M = 1.0  # heights are planned in whole metres
PATH_STEP_M = 10.0
RETURN_EVERY_M = 50.0
RETURN_STEP_M = 25.0
HOME_TOL_M = 1.0
CROSSING_TOL_M = 0.5  # a path along a zone's edge may cross it by rounding noise, not more
LAYER_NEAR_M = 50.0  # "the same place" for two vehicles on two layers
ENDURANCE_S = 1800.0
CRUISE_MPS = 12.0
OVERWATCH_S = 300.0
# A temporary prohibited area in open country (a helicopter's rescue area, say), so that paths and
# patterns meet a prohibited zone: the airport's no-fly core lies inside its 30 m zone, where no
# plan at a 60 m clearance can come near it.
TEMP_NO_FLY_AT = (106.70, 29.95)
TEMP_NO_FLY_RADIUS_M = 1200.0


# ---- the district and the cases ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One task and one vehicle planned with some grants: the plan, or the reasons it was refused."""

    task: TaskSpec
    vehicle: PlanVehicle
    zones: tuple[Zone, ...]
    grants: tuple[Grant, ...]
    plan: TaskPlan | None
    refused: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(FsPath(tmp_path_factory.mktemp("yubei")) / "d"))


def _zone(district: District, zone_id: str) -> Zone:
    return next(z for z in district.airspace if z.id == zone_id)


def _offset(p: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    x, y = FWD.transform(*p)
    lon, lat = INV.transform(x + east_m, y + north_m)
    return float(lon), float(lat)


def _random_point(rng: np.random.Generator, region: Any) -> tuple[float, float]:
    w, s, e, n = region.bounds
    while True:
        p = (float(rng.uniform(w, e)), float(rng.uniform(s, n)))
        if region.contains(Point(p)):
            return p


def _task(rng: np.random.Generator, i: int, kind: str, at: tuple[float, float]) -> TaskSpec:
    copter = frozenset({"copter"})
    key = f"{kind}-{i}"
    if kind == "recon":
        return TaskSpec(key, "recon", i, 2, at, copter, frozenset({"zoom_camera"}), duration_s=60.0)
    if kind == "area_search":  # a small rotated rectangle, 300-800 m a side
        a, b, th = rng.uniform(150.0, 400.0), rng.uniform(150.0, 400.0), rng.uniform(0.0, math.pi)
        c, s = math.cos(th), math.sin(th)
        corners = [_offset(at, c * x - s * y, s * x + c * y) for x, y in ((-a, -b), (a, -b), (a, b), (-a, b))]
        return TaskSpec(key, "area_search", i, 2, at, copter, frozenset({"zoom_camera"}), area=Polygon(corners))
    if kind == "route_patrol":  # a bent line 0.8-2 km long
        length, th = rng.uniform(800.0, 2000.0), rng.uniform(0.0, 2 * math.pi)
        mid = _offset(at, 0.5 * length * math.sin(th) + rng.uniform(-200, 200),
                      0.5 * length * math.cos(th) + rng.uniform(-200, 200))
        end = _offset(at, length * math.sin(th), length * math.cos(th))
        return TaskSpec(key, "route_patrol", i, 2, at, copter, frozenset({"thermal_camera"}),
                        line=LineString([at, mid, end]))
    look = _offset(at, rng.uniform(-300.0, 300.0), rng.uniform(-300.0, 300.0))
    return TaskSpec(key, "overwatch", i, 2, at, copter, frozenset({"thermal_camera"}),
                    duration_s=float(rng.uniform(120.0, 600.0)), params={"look_at": list(look)})


def _vehicle(rng: np.random.Generator, district: District, name: str, near: tuple[float, float],
             allowed: Any) -> PlanVehicle:
    """A copter based 0.5-4 km from ``near``, inside ``allowed`` (never in a prohibited zone)."""
    while True:
        r, th = rng.uniform(500.0, 4000.0), rng.uniform(0.0, 2 * math.pi)
        home = _offset(near, r * math.sin(th), r * math.cos(th))
        if allowed.contains(Point(home)):
            break
    return PlanVehicle(name, "copter", home, district.terrain.elevation_at(*home), 100.0, CRUISE_MPS, ENDURANCE_S,
                       frozenset(PAYLOADS))


def _plan(task: TaskSpec, vehicle: PlanVehicle, district: District, grants: Sequence[Grant], *,
          extra_zones: Sequence[Zone] = (), clearance_m: float = CLEARANCE_M, rtl_alt_m: float | None = None) -> Case:
    zones = (*district.airspace, *extra_zones)
    try:
        plan = plan_task(task, vehicle, terrain=district.terrain.elevation_along, zones=zones,
                         water=district.water, grants=grants, now=NOW, clearance_m=clearance_m, rtl_alt_m=rtl_alt_m)
    except PlanRefused as err:
        assert err.reasons, f"{task.key} by {vehicle.name}: a refusal without a reason"
        return Case(task, vehicle, zones, tuple(grants), None, tuple(err.reasons))
    return Case(task, vehicle, zones, tuple(grants), plan)


def _temp_no_fly() -> Zone:
    cx, cy = FWD.transform(*TEMP_NO_FLY_AT)
    disc = Point(cx, cy).buffer(TEMP_NO_FLY_RADIUS_M, quad_segs=16)
    return Zone("temp-no-fly", "Temporary no-fly area", "prohibited",
                shapely.transform(disc, lambda c: np.column_stack(INV.transform(c[:, 0], c[:, 1]))),
                name_zh="临时禁飞区")


@dataclass(frozen=True)
class Cases:
    anywhere: tuple[Case, ...]  # the district-wide tasks, no grant
    anywhere_granted: tuple[Case, ...]  # the same with the grant for the controlled zone
    controlled: tuple[Case, ...]  # the controlled-zone tasks, no grant
    controlled_granted: tuple[Case, ...]  # the same with the grant
    around: tuple[Case, ...]  # beside the temporary no-fly area, the vehicle across it or aside

    @property
    def planned(self) -> list[Case]:
        return [c for group in (self.anywhere, self.anywhere_granted, self.controlled, self.controlled_granted,
                                self.around) for c in group if c.plan is not None]


@pytest.fixture(scope="module")
def cases(district: District) -> Cases:
    rng = np.random.default_rng(SEED)
    kinds = ("recon", "area_search", "route_patrol", "overwatch")
    prohibited = shapely.union_all([z.polygon for z in district.airspace if z.kind == "prohibited"])
    outside_prohibited = district.boundary.difference(prohibited)
    # Where the approval makes room for a 60 m clearance: the controlled zone outside the 30 m and
    # 60 m height limits and the no-fly core (elsewhere in it no height fits under the ceiling).
    low = shapely.union_all([z.polygon for z in district.airspace
                             if z.kind == "prohibited" or (z.kind == "height_limited" and z.ceiling_agl_m is not None
                                                           and z.ceiling_agl_m < 2 * CLEARANCE_M)])
    roomy = _zone(district, CONTROLLED_ID).polygon.difference(low).intersection(district.boundary)
    roomy_inner = roomy.buffer(-0.003)  # ~300 m inside its edges

    anywhere, controlled, around = [], [], []
    for i in range(N_TASKS):
        task = _task(rng, i, kinds[i % len(kinds)], _random_point(rng, district.boundary))
        anywhere.append((task, _vehicle(rng, district, f"UAV-A{i}", task.point, outside_prohibited)))
    for i in range(N_CONTROLLED):
        task = _task(rng, 100 + i, kinds[i % len(kinds)], _random_point(rng, roomy_inner))
        controlled.append((task, _vehicle(rng, district, f"UAV-C{i}", task.point, roomy)))
    no_fly = _temp_no_fly()
    for i in range(N_AROUND):  # 0-1 km beyond the area's edge, the home 0-1 km beyond it, across or aside
        r, th = TEMP_NO_FLY_RADIUS_M + rng.uniform(0.0, 1000.0), rng.uniform(0.0, 2 * math.pi)
        side = math.pi if i % 2 == 0 else rng.choice([-1.0, 1.0]) * math.pi / 2
        r_home, th_home = TEMP_NO_FLY_RADIUS_M + rng.uniform(0.0, 1000.0), th + side + rng.uniform(-0.6, 0.6)
        at = _offset(TEMP_NO_FLY_AT, r * math.sin(th), r * math.cos(th))
        home = _offset(TEMP_NO_FLY_AT, r_home * math.sin(th_home), r_home * math.cos(th_home))
        task = _task(rng, 200 + i, kinds[i % len(kinds)], at)
        vehicle = PlanVehicle(f"UAV-T{i}", "copter", home, district.terrain.elevation_at(*home), 100.0,
                              CRUISE_MPS, ENDURANCE_S, frozenset(PAYLOADS))
        around.append((task, vehicle))
    return Cases(
        tuple(_plan(t, v, district, ()) for t, v in anywhere),
        tuple(_plan(t, v, district, (GRANT,)) for t, v in anywhere),
        tuple(_plan(t, v, district, ()) for t, v in controlled),
        tuple(_plan(t, v, district, (GRANT,)) for t, v in controlled),
        tuple(_plan(t, v, district, (), extra_zones=(no_fly,)) for t, v in around),
    )


# ---- the flown path, rebuilt from the mission items ------------------------------------------------


@dataclass(frozen=True)
class Flown:
    """The path a mission flies: vertices in UTM metres with AMSL heights, and where the climb-out ends."""

    xy: np.ndarray  # (N, 2) metres
    alt_amsl_m: np.ndarray  # (N,)
    first_checked: int  # index of the first vertex after the climb-out above home
    home_xy: np.ndarray
    home_ground_m: float


def flown_path(plan: TaskPlan, vehicle: PlanVehicle) -> Flown:
    """Home on the ground, the take-off climb above home, then the AMSL waypoints and loiters in order."""
    items: Sequence[MissionItem] = plan.mission.items
    assert items[0].command == mav.MAV_CMD_NAV_TAKEOFF and items[0].frame == FRAME_ABOVE_HOME, items[0]
    assert items[-1].command == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, items[-1]
    home_xy = np.array(FWD.transform(*vehicle.home))
    xy, alt = [home_xy, home_xy], [vehicle.home_ground_amsl_m, vehicle.home_ground_amsl_m + items[0].alt_m]
    for it in items[1:-1]:
        assert it.command in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME), it
        # Never "above home": over the ridges that would be a height above a home far below.
        assert it.frame == FRAME_GLOBAL_AMSL, f"{plan.task.key}: item {it} is not in the AMSL frame"
        xy.append(np.array(FWD.transform(it.lon_deg, it.lat_deg)))
        alt.append(it.alt_m)
    xy_a, alt_a = np.array(xy), np.array(alt)
    at_home = np.hypot(*(xy_a - home_xy).T) <= HOME_TOL_M
    first = 1
    while first + 1 < len(xy_a) and at_home[first + 1]:
        first += 1  # the climb-out: vertical segments above home
    return Flown(xy_a, alt_a, first, home_xy, vehicle.home_ground_amsl_m)


def sample_segments(xy: np.ndarray, alt: np.ndarray, step_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ``step_m`` (or closer) along straight 3-D segments, ends included: (xy, alt, along)."""
    out_xy, out_alt, out_along = [], [], []
    run = 0.0
    for i in range(len(xy) - 1):
        d = float(np.hypot(*(xy[i + 1] - xy[i])))
        t = np.linspace(0.0, 1.0, max(1, math.ceil(d / step_m)) + 1)
        out_xy.append(xy[i] + t[:, None] * (xy[i + 1] - xy[i]))
        out_alt.append(alt[i] + t * (alt[i + 1] - alt[i]))
        out_along.append(run + t * d)
        run += d
    return np.concatenate(out_xy), np.concatenate(out_alt), np.concatenate(out_along)


def lonlat(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = INV.transform(xy[:, 0], xy[:, 1])
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def ceilings(lon: np.ndarray, lat: np.ndarray, zones: Sequence[Zone],
             grants: Sequence[Grant]) -> tuple[np.ndarray, list[tuple[Zone, np.ndarray]]]:
    """(the true-height ceiling at each point, [(zone, inside)] for the zones it may not enter)."""
    granted = {g.zone_id: g.max_alt_agl_m for g in grants if g.valid_from <= NOW < g.valid_to}
    cap = np.full(lon.shape, NATIONAL_CEILING_AGL_M)
    forbidden: list[tuple[Zone, np.ndarray]] = []
    for z in zones:
        inside = shapely.contains_xy(z.polygon, lon, lat)
        if z.kind == "prohibited" or (z.kind == "controlled" and z.id not in granted):
            forbidden.append((z, inside))
        elif z.kind == "height_limited":
            cap = np.where(inside, np.minimum(cap, float(z.ceiling_agl_m or 0.0)), cap)
        else:
            cap = np.where(inside, np.minimum(cap, granted[z.id]), cap)
    return cap, forbidden


def crossing_m(xy: np.ndarray, zone: Zone) -> float:
    """Length (m) of the horizontal polyline ``xy`` inside the zone (its edge does not count)."""
    if len(xy) < 2:
        return 0.0
    line = LineString(np.column_stack(lonlat(xy)))
    part = shapely.intersection(line, zone.polygon)
    if part.is_empty:
        return 0.0
    return float(shapely.length(shapely.transform(part, lambda c: np.column_stack(FWD.transform(c[:, 0], c[:, 1])))))


def _where(lon: float, lat: float) -> str:
    return f"({lon:.5f}, {lat:.5f})"


def path_breaches(case: Case, district: District, clearance_m: float = CLEARANCE_M) -> list[str]:
    """Every way the flown path breaks the rules (empty: safe), one line per kind and place."""
    assert case.plan is not None
    f = flown_path(case.plan, case.vehicle)
    xy, alt, _ = sample_segments(f.xy[f.first_checked:], f.alt_amsl_m[f.first_checked:], PATH_STEP_M)
    lon, lat = lonlat(xy)
    agl = alt - district.terrain.elevation_along(lon, lat)
    cap, forbidden = ceilings(lon, lat, case.zones, case.grants)
    who = f"{case.task.key} by {case.vehicle.name} (grants {[g.zone_id for g in case.grants]})"
    out = []
    low = ~(agl >= clearance_m - TOL_M)
    if low.any():
        k = int(np.argmin(np.where(np.isfinite(agl), agl, -np.inf)))
        out.append(f"{who}: {int(low.sum())} samples below {clearance_m:.0f} m over the ground, lowest {agl[k]:.1f} m "
                   f"at {_where(lon[k], lat[k])}")
    high = agl > cap + TOL_M
    if high.any():
        k = int(np.argmax(np.where(high, agl - cap, -np.inf)))
        out.append(f"{who}: {int(high.sum())} samples above the ceiling, worst {agl[k]:.1f} m over a {cap[k]:.0f} m "
                   f"ceiling at {_where(lon[k], lat[k])}")
    for zone, inside in forbidden:
        if inside.any():
            k = int(np.argmax(inside))
            out.append(f"{who}: {int(inside.sum())} samples inside {zone.id}, first at {_where(lon[k], lat[k])}")
        length = crossing_m(f.xy[f.first_checked:], zone)
        if length > CROSSING_TOL_M:
            out.append(f"{who}: the path runs {length:.1f} m inside {zone.id}")
    return out


# ---- planned and refused --------------------------------------------------------------------------


def test_enough_tasks_are_planned_and_refusals_say_why(cases: Cases) -> None:
    planned_anywhere = [c for c in cases.anywhere if c.plan is not None]
    assert len(planned_anywhere) >= 10, [c.refused for c in cases.anywhere]
    assert len(cases.anywhere) - len(planned_anywhere) >= 1, "no refusal at all: the district's zones were not met"
    # Without the approval nothing is planned in the controlled zone: the task or the home lies in it.
    assert all(c.plan is None for c in cases.controlled), [c.task.key for c in cases.controlled if c.plan]
    assert any("controlled" in r or "Jiangbei airport controlled airspace" in r
               for c in cases.controlled for r in c.refused)
    # With it, plans there carry the approval and its cap.
    granted = [c for c in cases.controlled_granted if c.plan is not None]
    assert len(granted) >= 5, [c.refused for c in cases.controlled_granted]
    for c in granted:
        assert c.plan is not None
        zones = {a["zone_id"]: a for a in c.plan.approvals}
        assert CONTROLLED_ID in zones, (c.task.key, c.plan.approvals)
        assert zones[CONTROLLED_ID]["max_alt_agl_m"] == GRANT_CAP_M
    # Beside the temporary no-fly area: plans go around it, patrols across it are refused.
    around = [c for c in cases.around if c.plan is not None]
    assert len(around) >= 6, [c.refused for c in cases.around]
    assert any("Temporary no-fly area" in r for c in cases.around for r in c.refused)


# ---- the flown path against the terrain and the airspace ------------------------------------------


def test_flown_paths_keep_clearance_stay_under_ceilings_and_out_of_forbidden_zones(
        cases: Cases, district: District) -> None:
    checked = cases.planned
    assert len(checked) >= 15
    breaches = [b for c in checked for b in path_breaches(c, district)]
    assert not breaches, "\n".join(breaches)


def test_missions_climb_out_above_home_and_start_there(cases: Cases) -> None:
    """The first waypoint is over home: the climb is vertical there and SmartRTL retraces checked legs only."""
    for c in cases.planned:
        assert c.plan is not None
        f = flown_path(c.plan, c.vehicle)
        assert float(np.hypot(*(f.xy[2] - f.home_xy))) <= HOME_TOL_M, c.task.key
        # the take-off climbs to the first level (whole metres)
        assert abs(f.alt_amsl_m[1] - f.alt_amsl_m[2]) <= 1.0, (c.task.key, f.alt_amsl_m[:3])
        assert f.alt_amsl_m[2] - f.home_ground_m >= CLEARANCE_M - TOL_M, c.task.key


# ---- the checks are not blind ---------------------------------------------------------------------


def _lowered(case: Case, by_m: float, *, rtl_alt_m: float | None = None) -> Case:
    """The same mission ``by_m`` lower on every AMSL item (and another RTL_ALT): a plan the checks must refuse."""
    assert case.plan is not None
    items = tuple(replace(it, alt_m=it.alt_m - by_m) if it.frame == FRAME_GLOBAL_AMSL and it.command in
                  (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME) else it for it in case.plan.mission.items)
    params = dict(case.plan.return_params)
    if rtl_alt_m is not None:
        params["RTL_ALT"] = round(rtl_alt_m * 100.0)
    plan = replace(case.plan, mission=replace(case.plan.mission, items=items), return_params=params)
    return replace(case, plan=plan)


def test_the_checks_catch_unsafe_missions(cases: Cases, district: District) -> None:
    """The second opinion is not blind: a lowered mission, a missing approval, a low return all show."""
    rtl = next(c for c in cases.anywhere if c.plan is not None and c.plan.return_mode == "RTL")
    assert any("below 60 m over the ground" in b for b in path_breaches(_lowered(rtl, 20.0), district))
    assert any("above the ceiling" in b for b in path_breaches(_lowered(rtl, -80.0), district))
    assert any("over the ground at" in b for b in return_breaches(_lowered(rtl, 40.0, rtl_alt_m=0.0), district))
    granted = next(c for c in cases.controlled_granted if c.plan is not None)
    unapproved = replace(granted, grants=())
    assert any(f"inside {CONTROLLED_ID}" in b for b in path_breaches(unapproved, district))
    assert any(f"crosses {CONTROLLED_ID}" in b for b in return_breaches(unapproved, district))


# ---- returns ------------------------------------------------------------------------------------


def return_breaches(case: Case, district: District, clearance_m: float = CLEARANCE_M) -> list[str]:
    """RTL from every 50 m of the path: climb in place, straight home at max(RTL_ALT, current), descend."""
    assert case.plan is not None
    f = flown_path(case.plan, case.vehicle)
    rtl_alt_m = case.plan.return_params["RTL_ALT"] / 100.0  # ArduCopter's RTL_ALT is in centimetres
    # every 50 m or closer, and every vertex (both heights of a change of level)
    s_xy, s_alt, along = sample_segments(f.xy[f.first_checked:], f.alt_amsl_m[f.first_checked:], RETURN_EVERY_M)
    who = f"{case.task.key} by {case.vehicle.name} (RTL_ALT {rtl_alt_m:.0f} m)"
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for k in range(len(s_xy)):
        start = s_xy[k]
        height = max(f.home_ground_m + rtl_alt_m, float(s_alt[k]))
        line = np.vstack([start, f.home_xy])
        xy, _, _ = sample_segments(line, np.array([height, height]), RETURN_STEP_M)
        lon, lat = lonlat(xy)
        agl = height - district.terrain.elevation_along(lon, lat)
        cap, forbidden = ceilings(lon, lat, case.zones, case.grants)
        slon, slat = lonlat(start[None, :])
        frm = f"from {_where(slon[0], slat[0])} ({along[k]:.0f} m along)"
        low = ~(agl >= clearance_m - TOL_M)
        if low.any() and ("low", who) not in seen:
            seen.add(("low", who))
            j = int(np.argmin(np.where(np.isfinite(agl), agl, -np.inf)))
            out.append(f"{who}: return {frm} at {height:.0f} m AMSL passes {agl[j]:.1f} m over the ground at "
                       f"{_where(lon[j], lat[j])}")
        high = agl > cap + TOL_M
        if high.any() and ("high", who) not in seen:
            seen.add(("high", who))
            j = int(np.argmax(np.where(high, agl - cap, -np.inf)))
            out.append(f"{who}: return {frm} at {height:.0f} m AMSL flies {agl[j]:.1f} m over the ground under a "
                       f"{cap[j]:.0f} m ceiling at {_where(lon[j], lat[j])}")
        for zone, inside in forbidden:
            if (zone.id, who) not in seen and (inside.any() or crossing_m(line, zone) > CROSSING_TOL_M):
                seen.add((zone.id, who))
                out.append(f"{who}: return {frm} crosses {zone.id}")
    return out


def test_rtl_from_anywhere_along_the_path_is_safe(cases: Cases, district: District) -> None:
    rtl = [c for c in cases.planned if c.plan is not None and c.plan.return_mode == "RTL"]
    assert len(rtl) >= 10
    breaches = [b for c in rtl for b in return_breaches(c, district)]
    assert not breaches, "\n".join(breaches)


def test_smart_rtl_is_chosen_only_where_a_straight_return_is_not_safe(cases: Cases, district: District) -> None:
    """SmartRTL retraces the path (checked above); it is the fallback, so a straight return must fail there."""
    smart = [c for c in cases.planned if c.plan is not None and c.plan.return_mode == "SMART_RTL"]
    for c in smart:
        assert c.plan is not None
        assert return_breaches(c, district), f"{c.task.key}: SmartRTL chosen though RTL at RTL_ALT is safe"


# ---- two vehicles over one incident, on two altitude layers ---------------------------------------


def _fire_detail(at: tuple[float, float], downwind_deg: float) -> dict[str, Any]:
    return {"members": {"fire-1": {"model": {"position": list(at), "spread": {"downwind_deg": downwind_deg}}}}}


def test_two_vehicles_on_two_layers_are_vertically_separated(district: District) -> None:
    rng = np.random.default_rng(SEED + 1)
    layers = altitude_layers(2, CLEARANCE_M)
    step = layers.cruise_agl_m[1] - layers.cruise_agl_m[0]
    prohibited = shapely.union_all([z.polygon for z in district.airspace if z.kind == "prohibited"])
    controlled = _zone(district, CONTROLLED_ID).polygon
    free = district.boundary.difference(controlled.union(prohibited).buffer(0.01))
    pairs, conflicts = 0, []
    for i in range(12):
        fire = _random_point(rng, free.buffer(-0.01))
        tasks = tasks_for_incident(500 + i, "fire", 3, *fire, _fire_detail(fire, float(rng.uniform(0, 360))))
        # a 5 min overwatch: the 20 min one does not fit a 30 min copter's battery above its reserve
        tasks = [replace(t, duration_s=OVERWATCH_S) if t.kind == "overwatch" else t for t in tasks]
        vehicles = [_vehicle(rng, district, f"UAV-L{i}-{k}", task.point, free) for k, task in enumerate(tasks[:2])]
        # the service's layering (command.plans): layer k, raised while it meets an earlier vehicle
        made = {}

        def replan(k: int, clearance: float, rtl: float, tasks: list = tasks, vehicles: list = vehicles) -> Any:
            c = _plan(tasks[k], vehicles[k], district, (), clearance_m=clearance, rtl_alt_m=rtl)
            made[k] = c
            if c.plan is None:
                raise PlanRefused(list(c.refused), list(c.refused))
            return c.plan

        layer_plans(2, replan, base_clearance_m=CLEARANCE_M)
        plans = [made[k] for k in sorted(made)]
        if len(plans) < 2:
            continue
        if any(c.plan is None for c in plans):
            continue
        pairs += 1
        samples = []
        for c in plans:
            assert c.plan is not None
            f = flown_path(c.plan, c.vehicle)
            xy, alt, _ = sample_segments(f.xy[f.first_checked:], f.alt_amsl_m[f.first_checked:], PATH_STEP_M)
            samples.append((xy, alt))
        (xa, aa), (xb, ab) = samples
        close = cKDTree(xa).sparse_distance_matrix(cKDTree(xb), LAYER_NEAR_M, output_type="ndarray")
        if len(close) == 0:
            continue
        ia, ib = close["i"], close["j"]
        gap = np.abs(aa[ia] - ab[ib])
        bad = gap < step - TOL_M
        if bad.any():
            w = int(np.argmin(np.where(bad, close["v"], np.inf)))  # the closest pair too close in height
            lon, lat = lonlat(xa[ia[w]:ia[w] + 1])
            conflicts.append(f"fire {i}: {plans[0].task.key} on the {layers.cruise_agl_m[0]:.0f} m layer at "
                             f"{aa[ia[w]]:.0f} m AMSL, {plans[1].task.key} on the {layers.cruise_agl_m[1]:.0f} m layer "
                             f"at {ab[ib[w]]:.0f} m AMSL, {close['v'][w]:.0f} m apart at {_where(lon[0], lat[0])} "
                             f"({int(bad.sum())} sample pairs within {LAYER_NEAR_M:.0f} m less than {step - TOL_M:.0f} m apart in height)")
    assert pairs >= 5
    # A layer is a clearance over each leg's own ground, not a height: layer_plans raises a vehicle a
    # layer more while it meets an earlier one, so none may be left closer than a layer in height.
    assert not conflicts, "\n".join(conflicts)
