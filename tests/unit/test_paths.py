"""Safe paths, boat paths, altitude profiles, failsafe returns and altitude layers (command.dispatch.paths)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path as FsPath

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box

from command.dispatch.airspace import Zone
from command.dispatch.errors import PlanRefused
from command.dispatch.geometry import UTM_48N, densify, utm_transformers
from command.dispatch.paths import (
    NoPath,
    PathPlanner,
    altitude_layers,
    altitude_profile,
    check_current,
    check_returns,
    choose_return,
    obstacle_zones,
    plan_path,
    plan_water_path,
)
from command.district import District
from sitl.scenarios.yubei.generate import generate
from uav.mission import FRAME_GLOBAL_AMSL
from uav.rally import RallyPoint

FWD, INV = utm_transformers(UTM_48N)
CX, CY = FWD.transform(106.70, 29.80)  # a local origin, metres


def ll(x: float, y: float) -> tuple[float, float]:
    """Lon/lat of a point given in metres from the local origin."""
    lon, lat = INV.transform(CX + x, CY + y)
    return float(lon), float(lat)


def poly_m(coords: list[tuple[float, float]]) -> Polygon:
    return Polygon([ll(x, y) for x, y in coords])


def utm(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(FWD.transform(c[:, 0], c[:, 1])))


def flat(height_m: float = 300.0):
    return lambda lons, lats: np.full(np.shape(lons), height_m)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(FsPath(tmp_path_factory.mktemp("yubei")) / "d"))


@pytest.fixture(scope="module")
def core(district: District) -> Zone:
    return next(z for z in district.airspace if z.kind == "prohibited")


# ---- shortest paths around obstacles ----------------------------------------------------------


def test_straight_line_when_nothing_is_in_the_way() -> None:
    aside = poly_m([(-500, 2000), (500, 2000), (500, 3000), (-500, 3000)])
    path = plan_path(ll(-2000, 0), ll(2000, 0), [aside], buffer_m=100.0)
    assert path.waypoints == (ll(-2000, 0), ll(2000, 0))
    assert path.length_m == pytest.approx(4000.0, abs=0.01)
    assert path.ratio == pytest.approx(1.0)


def test_around_a_square_the_tangent_path() -> None:
    square = poly_m([(-500, -500), (500, -500), (500, 500), (-500, 500)])
    start, goal = ll(-2000, 100), ll(2000, 100)
    # No buffer: straight to the two upper corners and along the top edge.
    exact = 2 * math.hypot(1500, 400) + 1000
    path = plan_path(start, goal, [square], buffer_m=0.0)
    assert path.length_m == pytest.approx(exact, abs=1.0)
    assert len(path.waypoints) == 4
    # 50 m buffer: tangent to the rounded corners (radius 50), around their arcs, along the top.
    r, d = 50.0, math.hypot(1500, 400)
    turn = math.atan2(400, 1500) + math.asin(r / d)  # heading of the tangent line, then back to east on the arc
    tangent = 2 * (math.sqrt(d * d - r * r) + r * turn) + 1000
    fine = PathPlanner([square], buffer_m=r, simplify_m=0.0, quad_segs=32).plan(start, goal)
    assert fine.length_m == pytest.approx(tangent, abs=1.0)
    assert fine.straight_m == pytest.approx(4000.0, abs=0.01)
    assert fine.ratio == pytest.approx(tangent / 4000.0, abs=1e-3)
    # The default (coarser corners, simplified) keeps at least the buffer from the square.
    coarse = plan_path(start, goal, [square], buffer_m=r)
    assert utm(LineString(coarse.waypoints)).distance(utm(square)) >= r - 0.01
    assert coarse.length_m >= tangent - 0.01


def test_no_path_cases() -> None:
    square = poly_m([(-500, -500), (500, -500), (500, 500), (-500, 500)])
    with pytest.raises(NoPath, match="start lies inside 'obstacle 0'") as err:
        plan_path(ll(0, 0), ll(2000, 0), [square], buffer_m=50.0)
    assert "起点" in err.value.reason_zh
    assert isinstance(err.value, ValueError)
    zone = Zone("p1", "Plant", "prohibited", square, name_zh="化工厂")
    with pytest.raises(NoPath, match="goal lies inside 'Plant'") as err:
        plan_path(ll(2000, 0), ll(100, 100), [zone], buffer_m=50.0)
    assert "化工厂" in err.value.reason_zh
    # The goal in the courtyard of a ring-shaped zone: no way in.
    ring = poly_m([(-1000, -1000), (1000, -1000), (1000, 1000), (-1000, 1000)]).difference(square)
    with pytest.raises(NoPath, match="no path between start and goal"):
        plan_path(ll(3000, 0), ll(0, 0), [ring], buffer_m=50.0)


def test_an_end_inside_the_margin_moves_out_first() -> None:
    square = poly_m([(-500, -500), (500, -500), (500, 500), (-500, 500)])
    start = ll(-530, 0)  # 30 m from the zone, inside the 100 m margin
    path = plan_path(start, ll(-2000, 0), [square], buffer_m=100.0)
    assert path.waypoints[0] == start and len(path.waypoints) == 3
    out = utm(Point(path.waypoints[1]))
    assert out.distance(utm(square)) >= 100.0 - 0.01
    assert not LineString(path.waypoints).intersects(square)


def test_zones_to_avoid() -> None:
    sq = box(106.6, 29.7, 106.61, 29.71)
    zones = [Zone("a", "A", "prohibited", sq), Zone("b", "B", "controlled", sq),
             Zone("c", "C", "controlled", sq), Zone("d", "D", "height_limited", sq, 30.0)]
    assert [z.id for z in obstacle_zones(zones, approved_ids=["c"])] == ["a", "b"]


_coord = st.floats(-3000.0, 3000.0, allow_nan=False)


@st.composite
def obstacles(draw: st.DrawFn) -> list[Polygon]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        x, y = draw(_coord), draw(_coord)
        if draw(st.booleans()):
            w, h = draw(st.floats(100.0, 1500.0)), draw(st.floats(100.0, 1500.0))
            out.append(poly_m([(x, y), (x + w, y), (x + w, y + h), (x, y + h)]))
        else:
            pts = draw(st.lists(st.tuples(st.floats(0.0, 1500.0), st.floats(0.0, 1500.0)), min_size=3, max_size=7))
            hull = MultiPoint([(x + dx, y + dy) for dx, dy in pts]).convex_hull
            if not isinstance(hull, Polygon) or hull.area < 1000.0:
                hull = Point(x, y).buffer(200.0, quad_segs=3)
            out.append(poly_m(list(hull.exterior.coords)[:-1]))
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obs=obstacles(), a=st.tuples(_coord, _coord), b=st.tuples(_coord, _coord))
def test_paths_never_touch_an_obstacle(obs: list[Polygon], a: tuple[float, float], b: tuple[float, float]) -> None:
    buffer_m = 20.0
    start, goal = ll(*a), ll(*b)
    obs_m = [utm(p) for p in obs]
    ends_m = [Point(FWD.transform(*start)), Point(FWD.transform(*goal))]
    # An end within a metre of a zone's edge is a matter of rounding, not of planning.
    assume(not any(0.0 < p.distance(e) < 1.0 for p in obs_m for e in ends_m))
    inside = any(p.distance(e) == 0.0 for p in obs_m for e in ends_m)
    try:
        path = plan_path(start, goal, obs, buffer_m=buffer_m)
    except NoPath:
        # Only where it must: an end inside or near an obstacle, or shut in a pocket between them.
        grown = shapely.union_all([p.buffer(2 * buffer_m) for p in obs_m])
        pockets = [Polygon(r) for g in shapely.get_parts(grown) for r in g.interiors]
        assert inside or any(grown.covers(e) or any(k.covers(e) for k in pockets) for e in ends_m)
        return
    assert not inside
    assert path.waypoints[0] == start and path.waypoints[-1] == goal
    line = LineString(path.waypoints)
    assert not any(line.intersects(p) for p in obs)
    near = any(p.distance(e) < 2 * buffer_m for p in obs_m for e in ends_m)
    if not near:  # no end had to leave a margin first: the whole path keeps the margin
        assert min(utm(line).distance(p) for p in obs_m) >= buffer_m - 0.01
    assert path.length_m >= path.straight_m - 1e-6


def test_planner_keeps_its_graph_between_queries() -> None:
    squares = [poly_m([(x, -300), (x + 600, -300), (x + 600, 300), (x, 300)]) for x in (-2000, -500, 1000)]
    planner = PathPlanner(squares, buffer_m=50.0)
    assert planner.n_corners == 36 and planner.n_edges > 0
    for y in (-200, 0, 200):
        path = planner.plan(ll(-3000, y), ll(3000, y))
        assert not any(LineString(path.waypoints).intersects(s) for s in squares)
        assert path.ratio > 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="buffer_m"):
        PathPlanner([], buffer_m=-1.0)
    with pytest.raises(ValueError, match="not a WGS84 lon/lat"):
        plan_path((200.0, 29.0), (106.6, 29.7), [])
    with pytest.raises(TypeError, match="obstacle 0: expected"):
        PathPlanner([LineString([(106.6, 29.7), (106.7, 29.7)])])  # type: ignore[list-item]


# ---- boats ---------------------------------------------------------------------------------------


def _on_yangtze(district: District, at: float) -> tuple[float, float]:
    river = next(r for r in district.rivers if r.id == "yangtze")
    p = river.line.interpolate(at, normalized=True)
    return p.x, p.y


def _stays_on_water(district: District, waypoints: tuple[tuple[float, float], ...]) -> np.ndarray:
    lons, lats, _, _ = densify(waypoints, 10.0)
    assert shapely.covers(district.water, shapely.points(lons, lats)).all()
    bank = utm(district.water).boundary
    return shapely.distance(shapely.points(*FWD.transform(lons, lats)), bank)


def test_water_path_stays_on_the_river(district: District) -> None:
    a, b = _on_yangtze(district, 0.15), _on_yangtze(district, 0.7)
    path = plan_water_path(a, b, district.water, margin_m=20.0)
    assert path.waypoints[0] == a and path.waypoints[-1] == b
    assert path.length_m > 20_000 and 1.0 <= path.ratio < 1.2
    from_bank = _stays_on_water(district, path.waypoints)
    assert from_bank.min() >= 10.0  # the 20 m margin less at most the 10 m of simplifying
    # The straight line between the two points leaves the river: the path had to bend.
    assert not district.water.covers(LineString([a, b]))


def test_boat_at_the_bank_moves_out_first(district: District) -> None:
    centre = Point(FWD.transform(*_on_yangtze(district, 0.3)))
    bank = utm(district.water).boundary
    q = shapely.ops.nearest_points(bank, centre)[0]
    step = np.array([centre.x - q.x, centre.y - q.y])
    x, y = np.array([q.x, q.y]) + 5.0 * step / np.hypot(*step)
    start = tuple(map(float, INV.transform(x, y)))
    path = plan_water_path(start, _on_yangtze(district, 0.6), district.water, margin_m=20.0)
    assert path.waypoints[0] == start
    _stays_on_water(district, path.waypoints)


def test_water_no_path(district: District) -> None:
    a, b = _on_yangtze(district, 0.15), _on_yangtze(district, 0.7)
    with pytest.raises(NoPath, match="start is not on water") as err:
        plan_water_path((106.70, 29.90), b, district.water)
    assert "不在水面上" in err.value.reason_zh
    # A bridge too low for the boat, bank to bank across the river between them.
    mid = np.array(FWD.transform(*_on_yangtze(district, 0.4)))
    river = next(r for r in district.rivers if r.id == "yangtze")
    ahead = np.array(FWD.transform(*river.line.interpolate(0.41, normalized=True).coords[0]))
    across = np.array([-(ahead - mid)[1], (ahead - mid)[0]])
    across /= np.hypot(*across)
    bridge = LineString([INV.transform(*(mid + 3000 * across)), INV.transform(*(mid - 3000 * across))])
    with pytest.raises(NoPath, match="no path between start and goal"):
        plan_water_path(a, b, district.water, blocked=[bridge])
    assert plan_water_path(a, _on_yangtze(district, 0.35), district.water, blocked=[bridge]).length_m > 0


def test_current_refuses_an_upstream_leg() -> None:
    out_and_back = [(106.60, 29.60), (106.65, 29.60), (106.60, 29.60)]  # east, then west
    # The current flows west at 3 m/s; the boat makes 2 m/s through the water.
    with pytest.raises(PlanRefused) as err:
        check_current(out_and_back, 3.0, 270.0, 2.0)
    (reason,) = err.value.reasons
    assert reason.startswith("leg 0 (course 90°)") and "3.0 m/s against" in reason and "-1.0 m/s over ground" in reason
    assert "第 0 航段" in err.value.reasons_zh[0]
    # Slower current: both legs pass, 1 m/s lost upstream and gained downstream.
    legs = check_current(out_and_back, 1.0, 270.0, 2.0)
    assert [round(x.ground_speed_mps, 2) for x in legs] == [1.0, 3.0]
    assert all(x.ok for x in legs)
    # Positive but below 0.5 m/s over ground is refused too.
    with pytest.raises(PlanRefused, match="leaves 0.2 m/s over ground"):
        check_current(out_and_back[:2], 1.8, 270.0, 2.0)
    # A cross current stronger than the boat: it cannot hold its track.
    with pytest.raises(PlanRefused, match="cannot hold the track"):
        check_current([(106.60, 29.60), (106.60, 29.65)], 2.5, 90.0, 2.0)


# ---- altitude profiles ---------------------------------------------------------------------


def _samples(profile, terrain_fn, lateral_m: float = 0.0):
    """(AMSL, ground) every 10 m along each leg's track, or ``lateral_m`` to either side of it."""
    alts, grounds = [], []
    for leg in profile.legs:
        a, b = np.array(FWD.transform(*leg.start)), np.array(FWD.transform(*leg.end))
        n = max(1, math.ceil(np.hypot(*(b - a)) / 10.0))
        u = (b - a) / max(np.hypot(*(b - a)), 1e-9)
        for off in {0.0, lateral_m, -lateral_m}:
            pts = a + np.linspace(0, 1, n + 1)[:, None] * (b - a) + off * np.array([-u[1], u[0]])
            lon, lat = INV.transform(pts[:, 0], pts[:, 1])
            grounds.append(np.asarray(terrain_fn(np.asarray(lon), np.asarray(lat))))
            alts.append(np.full(n + 1, leg.alt_amsl_m))
    return np.concatenate(alts), np.concatenate(grounds)


def test_profile_over_a_ridge_keeps_clearance_and_cap(district: District) -> None:
    terrain = district.terrain.elevation_along
    valley_to_valley = [(106.70, 29.88), (106.80, 29.88)]  # over Tongluo Shan
    profile = altitude_profile(valley_to_valley, terrain, clearance_m=60.0, cap_agl_m=120.0, lateral_m=30.0)
    ground = terrain(np.array([106.70, 106.80]), np.array([29.88, 29.88]))
    crest = district.terrain.max_along_line(valley_to_valley, step_m=10.0)
    assert crest - ground.max() > 150.0  # more than the 60 m between clearance and cap: it must split
    assert profile.splits > 0 and len(profile.legs) == profile.splits + 1
    alt, g = _samples(profile, terrain)
    agl = alt - g
    assert agl.min() >= 60.0 - 1e-6 and agl.max() <= 120.0 + 1e-6
    alt, g = _samples(profile, terrain, lateral_m=30.0)
    assert (alt - g).min() >= 60.0 - 1e-6
    for leg in profile.legs:
        assert 60.0 - 1e-6 <= leg.min_agl_m <= leg.max_agl_m <= 120.0 + 1e-6
    assert profile.legs[0].start == valley_to_valley[0] and profile.legs[-1].end == valley_to_valley[1]
    items = profile.mission_items()
    assert all(i.frame == FRAME_GLOBAL_AMSL for i in items)
    assert [(i.lon_deg, i.lat_deg, i.alt_m) for i in items] == [(w[0], w[1], w[2]) for w in profile.waypoints]
    # Each change of level happens over one place (a vertical move), never along a leg.
    wps = profile.waypoints
    for p, q in itertools.pairwise(wps):
        assert p[2] == q[2] or p[:2] == q[:2]


def test_profile_refuses_where_no_height_fits(district: District) -> None:
    terrain = district.terrain.elevation_along
    zones = [z for z in district.airspace if z.kind == "height_limited"]
    # West of the airport core, inside its 30 m zone: 60 m clearance cannot fit under 30 m.
    with pytest.raises(PlanRefused) as err:
        altitude_profile([(106.57, 29.70), (106.59, 29.70)], terrain, clearance_m=60.0, zones=zones)
    (reason,) = err.value.reasons
    assert "leg 0: no height fits at (106.5" in reason and "ceiling of 'Airport 30 m zone'" in reason
    assert "机场限高30米区" in err.value.reasons_zh[0]
    # The same flight at 20 m clearance fits and stays under 30 m there.
    low = altitude_profile([(106.57, 29.70), (106.59, 29.70)], terrain, clearance_m=20.0, zones=zones)
    alt, g = _samples(low, terrain)
    assert (alt - g).max() <= 30.0 + 1e-6 and (alt - g).min() >= 20.0 - 1e-6
    # A 200 m cliff within one step: no split can help.
    cliff = lambda lons, lats: np.where(np.asarray(lons) > 106.65, 500.0, 300.0)
    with pytest.raises(PlanRefused, match=r"no height fits between \(106\.6"):
        altitude_profile([(106.60, 29.80), (106.70, 29.80)], cliff)
    # A prohibited zone on the leg is refused with the place.
    no_fly = Zone("nf", "No-fly", "prohibited", box(106.64, 29.79, 106.66, 29.81))
    with pytest.raises(PlanRefused, match=r"leg 0 enters prohibited zone 'No-fly' at \(106\.64"):
        altitude_profile([(106.60, 29.80), (106.70, 29.80)], flat(), zones=[no_fly])


def test_profile_under_zone_and_approval_ceilings() -> None:
    ctl = Zone("ctl", "Approach", "controlled", box(106.64, 29.79, 106.66, 29.81))
    path = [(106.60, 29.80), (106.70, 29.80)]
    with pytest.raises(PlanRefused, match="controlled airspace 'Approach' without an approval"):
        altitude_profile(path, flat(), zones=[ctl])
    profile = altitude_profile(path, flat(), zones=[ctl], approved_caps_agl_m={"ctl": 80.0}, clearance_m=60.0)
    assert [leg.alt_amsl_m for leg in profile.legs] == [360.0]
    with pytest.raises(PlanRefused, match="ceiling of 'Approach'"):
        altitude_profile(path, flat(), zones=[ctl], approved_caps_agl_m={"ctl": 50.0}, clearance_m=60.0)


# ---- failsafe returns ------------------------------------------------------------------------


HOME = (106.645, 29.665)  # south of the airport core
TARGET = (106.645, 29.775)  # north of it


def _around_the_core(core: Zone):
    path = plan_path(HOME, TARGET, [core], buffer_m=100.0)
    return altitude_profile(path, flat(), zones=[core])


def test_return_across_the_airport_core_fails_and_a_rally_point_avoids_it(core: Zone) -> None:
    # Flat ground and the core zone only, so the prohibited zone is the one rule that can fail.
    profile = _around_the_core(core)
    check = check_returns(profile.legs, HOME, 300.0, [], [core], flat(), rtl_alt_m=60.0)
    assert not check.ok and {f.kind for f in check.failures} == {"prohibited"}
    (fail,) = check.failures
    assert fail.target == "home" and fail.from_along_m > 0 and fail.to_along_m == pytest.approx(
        sum(leg.length_m for leg in profile.legs), abs=1.0)
    assert core.contains(*fail.at_lonlat) and "Jiangbei airport no-fly core" in fail.reason
    assert "江北机场禁飞核心区" in fail.reason_zh
    rally = [RallyPoint(*TARGET), RallyPoint(106.60, 29.72)]
    check = check_returns(profile.legs, HOME, 300.0, rally, [core], flat(), rtl_alt_m=60.0)
    assert check.ok and {"home", "rally 0", "rally 1"} == set(check.targets)
    assert check.min_clearance_m == pytest.approx(60.0)
    choice = choose_return(profile.legs, HOME, 300.0, rally, [core], flat())
    assert choice.mode == "RTL" and choice.rally_points == tuple(rally) and choice.rtl_alt_m == 60.0
    assert choice.params["RTL_ALT"] == 6000 and choice.params["RALLY_LIMIT_KM"] == 0.0
    # No rally point at all: RTL crosses the core, SmartRTL retraces the checked path instead.
    choice = choose_return(profile.legs, HOME, 300.0, [], [core], flat())
    assert choice.mode == "SMART_RTL" and "SmartRTL or Land" in choice.note and "智能返航或降落" in choice.note_zh


def _hill(height_m: float):
    """Ground 300 m with a round hill ``height_m`` high 1 km east of the local origin (Gaussian, σ 300 m)."""

    def fn(lons, lats):
        x, y = FWD.transform(np.asarray(lons), np.asarray(lats))
        r2 = (np.asarray(x) - CX - 1000.0) ** 2 + (np.asarray(y) - CY) ** 2
        return 300.0 + height_m * np.exp(-0.5 * r2 / 300.0 ** 2)
    return fn


def test_rtl_alt_is_raised_for_a_hill_or_smart_rtl_is_chosen() -> None:
    # The mission goes round the hill; the straight return from its far side goes over it.
    home = ll(0, 0)
    around = [home, ll(0, 2000), ll(2000, 2000), ll(2000, 0)]
    low = _hill(50.0)
    profile = altitude_profile(around, low)
    assert max(leg.alt_amsl_m for leg in profile.legs) <= 361.0  # the path keeps away from the hill
    check = check_returns(profile.legs, home, 300.0, [], [], low, rtl_alt_m=60.0)
    assert not check.ok and {f.kind for f in check.failures} == {"terrain"}
    assert check.failures[-1].to_along_m == pytest.approx(6000.0, abs=1.0)  # returns from the far side fail
    choice = choose_return(profile.legs, home, 300.0, [], [], low, rtl_alt_m=60.0)
    assert choice.mode == "RTL" and 105.0 <= choice.rtl_alt_m <= 115.0 and "raised for terrain" in choice.note
    assert check_returns(profile.legs, home, 300.0, [], [], low, rtl_alt_m=choice.rtl_alt_m).ok
    # A hill 150 m high: a return clearing it flies more than 120 m above the plain.
    high = _hill(150.0)
    profile = altitude_profile(around, high)
    choice = choose_return(profile.legs, home, 300.0, [], [], high, rtl_alt_m=60.0)
    assert choice.mode == "SMART_RTL" and not choice.check.ok
    # Neither: the path does not start at home, so its retrace is not checked either.
    away = altitude_profile(around[1:], high)
    with pytest.raises(PlanRefused) as err:
        choose_return(away.legs, home, 300.0, [], [], high, rtl_alt_m=60.0)
    assert any(r.startswith("RTL is not safe") for r in err.value.reasons)
    assert any("SmartRTL is not safe either: the path starts 2000 m from home" in r for r in err.value.reasons)
    assert any("智能返航亦不安全" in r for r in err.value.reasons_zh)


# ---- altitude layers -------------------------------------------------------------------------


def test_altitude_layers() -> None:
    layers = altitude_layers(4, 60.0)
    assert layers.cruise_agl_m == (60.0, 75.0, 90.0, 105.0)
    assert layers.rtl_alt_m == (60.0, 70.0, 80.0, 90.0)
    assert len(set(layers.cruise_agl_m)) == 4 and max(layers.cruise_agl_m) <= 120.0
    assert altitude_layers(5, 60.0).cruise_agl_m[-1] == 120.0
    with pytest.raises(PlanRefused, match="at most 5 fit") as err:
        altitude_layers(6, 60.0)
    assert "最多容纳 5 层" in err.value.reasons_zh[0]
    with pytest.raises(PlanRefused, match="RTL altitudes"):
        altitude_layers(3, 60.0, rtl_base_m=110.0)
    with pytest.raises(ValueError):
        altitude_layers(0, 60.0)
