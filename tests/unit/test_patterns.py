"""Search and task patterns: spacing, coverage, turns, IAMSAR geometry, water-only boats, partitions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from command.dispatch.geometry import densify, utm_transformers
from command.dispatch.patterns import (
    DEFAULT_TURN_PENALTY_S,
    Pattern,
    boat_survey,
    broadcast_sweep,
    camera_swath_m,
    expanding_square,
    orbit,
    overwatch,
    parallel_track,
    partition_area,
    route_patrol,
    sector_search,
    track_spacing_m,
)
from command.district import District
from sitl.scenarios.yubei.generate import generate

FWD, INV = utm_transformers()
ORIGIN = (106.62, 29.75)  # Yubei
OX, OY = FWD.transform(*ORIGIN)


def ll(geom: BaseGeometry) -> BaseGeometry:
    """A shape drawn in metres east/north of ORIGIN, as lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack(INV.transform(c[:, 0] + OX, c[:, 1] + OY)))


def ll_pt(x: float, y: float) -> tuple[float, float]:
    lon, lat = INV.transform(OX + x, OY + y)
    return (float(lon), float(lat))


def metres(p: Pattern) -> np.ndarray:
    """Waypoints in metres east/north of ORIGIN."""
    x, y = FWD.transform(*np.array(p.waypoints).T)
    return np.column_stack([np.asarray(x) - OX, np.asarray(y) - OY])


def in_metres(geom_ll: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom_ll, lambda c: np.column_stack(FWD.transform(c[:, 0], c[:, 1])) - [OX, OY])


def headings_deg(xy: np.ndarray) -> np.ndarray:
    d = np.diff(xy, axis=0)
    return np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0  # compass bearing of each leg


def turn_angles_deg(xy: np.ndarray) -> np.ndarray:
    """Signed heading change at each inner waypoint, + to the right."""
    return (np.diff(headings_deg(xy)) + 180.0) % 360.0 - 180.0


RECT = box(0, 0, 1000, 400)
L_SHAPE = Polygon([(0, 0), (1000, 0), (1000, 300), (300, 300), (300, 900), (0, 900)])
U_SHAPE = Polygon([(0, 0), (1000, 0), (1000, 1000), (700, 1000), (700, 300), (300, 300), (300, 1000), (0, 1000)])
HOLED = Polygon([(0, 0), (1200, 200), (1000, 900), (100, 700)], [[(400, 300), (700, 350), (600, 600), (350, 500)]])
HFOV = 73.7  # 24 mm-equivalent lens, horizontal


# --- camera geometry --------------------------------------------------------------------------

def test_swath_and_spacing() -> None:
    assert camera_swath_m(50.0, 90.0) == pytest.approx(100.0)
    assert camera_swath_m(100.0, 50.0) == pytest.approx(2 * 100 * math.tan(math.radians(25)))
    for swath, overlap in [(100.0, 0.2), (74.9, 0.0), (300.0, 0.35)]:
        assert track_spacing_m(swath, overlap) == pytest.approx(swath * (1 - overlap))
    p = parallel_track(ll(RECT), agl_m=60.0, hfov_deg=HFOV, speed_mps=10.0, overlap=0.3)
    assert p.swath_m == pytest.approx(2 * 60 * math.tan(math.radians(HFOV / 2)))
    assert p.spacing_m == pytest.approx(p.swath_m * 0.7)


# --- parallel track ---------------------------------------------------------------------------

def test_rectangle_tracks_along_the_long_axis_with_turns_and_full_coverage() -> None:
    p = parallel_track(ll(RECT), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
    xy = metres(p)
    n = math.ceil(400 / p.spacing_m)
    assert p.tracks == n and len(xy) == 2 * n
    tracks = xy.reshape(n, 2, 2)
    assert np.allclose(tracks[:, 0, 1], tracks[:, 1, 1], atol=1e-3)  # east-west tracks
    assert np.allclose(np.abs(tracks[:, 1, 0] - tracks[:, 0, 0]), 1000.0, atol=1e-3)
    assert np.allclose(np.diff(tracks[:, 0, 1]), p.spacing_m, atol=1e-3)  # one spacing apart
    assert np.all(np.sign(tracks[1:, 1, 0] - tracks[1:, 0, 0]) == -np.sign(tracks[:-1, 1, 0] - tracks[:-1, 0, 0]))
    assert p.turns == 2 * (n - 1)
    assert p.length_m == pytest.approx(n * 1000 + (n - 1) * p.spacing_m, rel=1e-6)
    assert p.est_duration_s == pytest.approx(p.length_m / 10.0 + p.turns * DEFAULT_TURN_PENALTY_S)
    assert p.coverage >= 0.98 and p.target_area_m2 == pytest.approx(400_000, rel=1e-6)
    assert p.hold_s == (0.0,) * len(p.waypoints)


def test_fewer_turns_along_the_long_axis_than_across() -> None:
    along = parallel_track(ll(RECT), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
    across = parallel_track(ll(RECT), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0, heading_deg=0.0)
    assert across.turns > along.turns
    legs = headings_deg(metres(across))
    assert np.all(np.isclose(legs[::2] % 180, 0.0, atol=1e-3) | np.isclose(legs[::2] % 180, 180.0, atol=1e-3))
    assert across.coverage >= 0.98


def test_rotated_rectangle_tracks_follow_its_long_axis() -> None:
    rotated = shapely.affinity.rotate(RECT, 30.0, origin=(0, 0))  # long axis at 30° north of east
    p = parallel_track(ll(rotated), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
    track_bearings = headings_deg(metres(p))[::2] % 180.0
    assert np.allclose(track_bearings, 60.0, atol=0.01)  # 30° north of east is bearing 60°
    assert p.turns == 2 * (p.tracks - 1)


@pytest.mark.parametrize("corner", [(0, 0), (1000, 0), (0, 400), (1000, 400)])
def test_starts_at_the_corner_nearest_the_start_point(corner: tuple[float, float]) -> None:
    start = ll_pt(corner[0] + 150 * np.sign(corner[0] - 500), corner[1] + 150 * np.sign(corner[1] - 200))
    p = parallel_track(ll(RECT), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0, start=start)
    first = metres(p)[0]
    assert abs(first[0] - corner[0]) < 1e-3
    assert abs(first[1] - corner[1]) <= p.spacing_m / 2


@pytest.mark.parametrize("shape", [RECT, L_SHAPE, U_SHAPE, HOLED], ids=["rectangle", "L", "U", "holed"])
@pytest.mark.parametrize("edges", ["cover", "clip"])
def test_coverage_of_rectangle_and_concave_shapes(shape: Polygon, edges: str) -> None:
    p = parallel_track(ll(shape), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0, edges=edges)
    assert p.coverage >= 0.98, p.describe()
    # what coverage says is what the path sweeps
    swept = LineString(metres(p)).buffer(p.swath_m / 2, cap_style="flat")
    assert shape.intersection(swept).area / shape.area == pytest.approx(p.coverage, abs=1e-4)


def test_cover_tracks_stay_within_half_a_spacing_and_clip_tracks_inside() -> None:
    for shape in (HOLED, L_SHAPE):
        cover = parallel_track(ll(shape), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
        near = shape.buffer(cover.spacing_m / 2 + 0.01)
        assert all(near.covers(Point(q)) for q in metres(cover))
        clip = parallel_track(ll(shape), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0, edges="clip")
        xy = metres(clip)
        inside = shape.buffer(0.01)
        assert all(inside.covers(Point(q)) for q in xy)
        tracks = xy.reshape(-1, 2, 2)  # clip tracks: every track lies in the area
        assert all(inside.covers(LineString(t)) for t in tracks)


def test_concave_area_crosses_outside_once_per_cell_jump() -> None:
    # tracks east-west across both arms of a U: three cells (base, two arms), one jump over the notch
    p = parallel_track(ll(U_SHAPE), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0, heading_deg=90.0, edges="clip")
    xy = metres(p)
    inside = U_SHAPE.buffer(0.01)
    outside_legs = [i for i in range(len(xy) - 1) if not inside.covers(LineString(xy[i:i + 2]))]
    assert len(outside_legs) == 1
    jump = xy[outside_legs[0]:outside_legs[0] + 2]
    # from one arm to the other along the top track line, straight across the notch
    assert np.allclose(jump[:, 1], jump[0, 1], atol=1e-3) and jump[0, 1] > 900.0
    assert min(jump[:, 0]) <= 300.0 + 1e-3 and max(jump[:, 0]) >= 700.0 - 1e-3
    assert p.coverage >= 0.98
    assert any("3 cells" in n for n in p.notes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    corners=st.tuples(*[st.tuples(st.floats(200, 1500), st.floats(200, 1500)) for _ in range(4)]),
    agl=st.floats(30, 120), hfov=st.floats(40, 90), overlap=st.floats(0.0, 0.4),
    heading=st.one_of(st.none(), st.floats(0, 360)),
)
def test_lawnmower_covers_random_convex_quadrilaterals(corners, agl, hfov, overlap, heading) -> None:
    signs = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    pts = [(sx * x, sy * y) for (x, y), (sx, sy) in zip(corners, signs, strict=True)]
    quad = shapely.convex_hull(shapely.multipoints(pts))
    assume(len(quad.exterior.coords) == 5)  # all four corners on the hull: a convex quadrilateral
    p = parallel_track(ll(quad), agl_m=agl, hfov_deg=hfov, speed_mps=10.0, overlap=overlap, heading_deg=heading)
    assert p.spacing_m == pytest.approx(p.swath_m * (1 - overlap))
    assert p.coverage >= 0.98
    assert p.turns <= 2 * (p.tracks - 1) + 2


# --- IAMSAR patterns --------------------------------------------------------------------------

def test_expanding_square_legs_and_right_angle_turns() -> None:
    s = 100.0
    p = expanding_square(ll_pt(0, 0), spacing_m=s, speed_mps=10.0, first_heading_deg=30.0, legs=9)
    xy = metres(p)
    assert np.allclose(xy[0], 0.0, atol=1e-6)
    lengths = np.hypot(*np.diff(xy, axis=0).T)
    assert np.allclose(lengths, s * np.array([1, 1, 2, 2, 3, 3, 4, 4, 5]), atol=1e-3)
    assert headings_deg(xy)[0] == pytest.approx(30.0, abs=1e-6)
    assert np.allclose(turn_angles_deg(xy), 90.0, atol=1e-6)  # every turn 90° to the right
    assert p.turns == 8 and p.legs == 9
    left = expanding_square(ll_pt(0, 0), spacing_m=s, speed_mps=10.0, legs=4, turn="left")
    assert np.allclose(turn_angles_deg(metres(left)), -90.0, atol=1e-6)


def test_expanding_square_stops_within_the_radius() -> None:
    p = expanding_square(ll_pt(0, 0), spacing_m=100.0, speed_mps=10.0, radius_m=450.0, swath_m=120.0)
    xy = metres(p)
    assert np.all(np.hypot(*xy.T) <= 450.0 + 1e-3)
    longer = expanding_square(ll_pt(0, 0), spacing_m=100.0, speed_mps=10.0, legs=p.legs + 1)
    assert np.hypot(*metres(longer)[-1]) > 450.0  # the next leg would have left the radius
    assert 0.9 <= p.coverage <= 1.0


def test_sector_search_nine_legs_120_degree_turns_within_radius() -> None:
    r = 800.0
    p = sector_search(ll_pt(0, 0), radius_m=r, speed_mps=10.0, first_heading_deg=45.0)
    xy = metres(p)
    assert p.legs == 9
    assert np.allclose(np.hypot(*np.diff(xy, axis=0).T), r, atol=1e-3)
    assert np.all(np.hypot(*xy.T) <= r + 1e-3)
    assert np.allclose(xy[[0, 3, 6, 9]], 0.0, atol=1e-3)  # every triangle returns over the datum
    turns = turn_angles_deg(xy)
    at_datum = np.array([2, 5])  # inner waypoints 3 and 6 are the datum: straight through
    assert np.allclose(np.delete(turns, at_datum), 120.0, atol=1e-6)
    assert np.allclose(turns[at_datum], 0.0, atol=1e-6)
    assert p.turns == 6
    assert headings_deg(xy)[0] == pytest.approx(45.0)
    # the six spokes are 60° apart
    spokes = sorted(np.round(np.degrees(np.arctan2(xy[[1, 2, 4, 5, 7, 8], 0], xy[[1, 2, 4, 5, 7, 8], 1])) % 360, 6))
    assert np.allclose(np.diff(spokes), 60.0, atol=1e-6)


def test_sector_search_second_pattern_turned_30_degrees() -> None:
    p = sector_search(ll_pt(0, 0), radius_m=500.0, speed_mps=10.0, first_heading_deg=0.0, second_pattern=True)
    xy = metres(p)
    assert p.legs == 18
    assert headings_deg(xy)[9] == pytest.approx(30.0, abs=1e-6)
    assert np.all(np.hypot(*xy.T) <= 500.0 + 1e-3)


# --- patrol -----------------------------------------------------------------------------------

def side_of(line: LineString, q: np.ndarray) -> float:
    """+1 left of the line's direction, −1 right."""
    d = line.project(Point(q))
    a = np.asarray(line.interpolate(max(d - 1.0, 0.0)).coords[0])
    b = np.asarray(line.interpolate(min(d + 1.0, line.length)).coords[0])
    t, v = b - a, q - a
    return float(np.sign(t[0] * v[1] - t[1] * v[0]))


@pytest.mark.parametrize("side", ["left", "right"])
def test_patrol_offset_stays_on_the_intended_side(side: str) -> None:
    x = np.linspace(0, 3000, 80)
    river = LineString(np.column_stack([x, 250 * np.sin(x / 500)]))
    p = route_patrol([ll_pt(*c) for c in river.coords], speed_mps=8.0, offset_m=60.0, side=side,
                     out_and_back=False, max_leg_m=200.0)
    xy = metres(p)
    lons, lats, _, _ = densify(p.waypoints, 5.0)
    sx, sy = FWD.transform(lons, lats)
    samples = np.column_stack([np.asarray(sx) - OX, np.asarray(sy) - OY])
    want = 1.0 if side == "left" else -1.0
    assert all(side_of(river, q) == want for q in samples)
    dist = shapely.distance(river, shapely.points(samples))
    assert np.all(dist >= 60.0 - 10.0 - 0.5) and np.all(dist <= 60.0 + 10.0 + 0.5)  # ± simplification
    assert np.all(np.hypot(*np.diff(xy, axis=0).T) <= 200.0 + 1e-3)
    assert any(side in n for n in p.notes)


def test_patrol_out_and_back_returns_to_the_start() -> None:
    line = [ll_pt(0, 0), ll_pt(1000, 0), ll_pt(1500, 600)]
    one = route_patrol(line, speed_mps=8.0, out_and_back=False)
    both = route_patrol(line, speed_mps=8.0)
    assert both.length_m == pytest.approx(2 * one.length_m, rel=1e-9)
    assert np.allclose(metres(both)[-1], metres(both)[0], atol=1e-6)
    assert both.turns == one.turns * 2 + 1  # the turn-around at the far end
    assert both.est_duration_s == pytest.approx(both.length_m / 8.0 + both.turns * DEFAULT_TURN_PENALTY_S)


# --- boat survey ------------------------------------------------------------------------------

RIVER = Polygon([(-500, 200), (800, 100), (2000, 400), (2000, 900), (800, 600), (-500, 700)])
ISLAND = Point(800, 380).buffer(120)
POND = Point(200, 1200).buffer(150)  # inside the area but not connected to the river


def assert_on_water(p: Pattern, water_ll: BaseGeometry) -> None:
    lons, lats, _, _ = densify(p.waypoints, 2.0)
    on = shapely.covers(water_ll, shapely.points(lons, lats))
    assert on.all(), f"{np.count_nonzero(~on)} of {len(on)} samples on land"


def test_boat_survey_never_leaves_the_water() -> None:
    water = ll(shapely.union(RIVER.difference(ISLAND), POND))
    area = ll(box(0, 0, 1500, 1400))
    p = boat_survey(area, water, swath_m=60.0, speed_mps=4.0, start=ll_pt(300, 150))
    assert_on_water(p, water)
    assert p.tracks > 5 and p.coverage > 0.85
    assert any("not connected" in n for n in p.notes)  # the pond
    xy = metres(p)
    assert not any(POND.buffer(20).covers(Point(q)) for q in xy)
    # it goes around the island rather than across it
    assert not any(LineString(xy[i:i + 2]).intersects(ISLAND) for i in range(len(xy) - 1))
    # coverage is of the area's water, island and pond included
    assert p.target_area_m2 == pytest.approx(shapely.intersection(box(0, 0, 1500, 1400), shapely.union(
        RIVER.difference(ISLAND), POND)).area, rel=1e-3)


def test_boat_survey_drops_short_parts_and_refuses_narrow_water() -> None:
    water = ll(RIVER)
    area = ll(box(0, 0, 1500, 1000))
    short = boat_survey(area, water, swath_m=60.0, speed_mps=4.0, min_leg_m=0.0)
    long = boat_survey(area, water, swath_m=60.0, speed_mps=4.0, min_leg_m=1200.0)
    assert long.tracks < short.tracks
    xy = metres(long)
    legs = [np.hypot(*(xy[i + 1] - xy[i])) for i in range(len(xy) - 1)]
    assert max(legs) >= 1200.0
    with pytest.raises(ValueError, match="no track on water"):
        boat_survey(area, water, swath_m=60.0, speed_mps=4.0, min_leg_m=5000.0)
    with pytest.raises(ValueError, match="no water"):
        boat_survey(ll(box(0, 1500, 500, 2000)), water, swath_m=60.0, speed_mps=4.0)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    folder: Path = tmp_path_factory.mktemp("district") / "d"
    generate(folder)
    return District.load(folder)


def test_boat_survey_on_the_district_rivers(district: District) -> None:
    area = box(106.835, 29.685, 106.875, 29.725)  # Yulin river mouth on the Yangtze
    p = boat_survey(area, district.water, swath_m=40.0, speed_mps=4.0, start=(106.86, 29.69))
    assert_on_water(p, district.water)
    assert p.coverage > 0.9


# --- equal-area partition ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [L_SHAPE, HOLED], ids=["L", "holed"])
def test_partition_equal_areas_whose_union_is_the_area(shape: Polygon, n: int) -> None:
    shares = partition_area(ll(shape), n, agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
    assert len(shares) == n and [s.index for s in shares] == list(range(n))
    areas = np.array([s.area_m2 for s in shares])
    assert np.all(np.abs(areas / (shape.area / n) - 1) <= 0.01)
    parts = [in_metres(s.area) for s in shares]
    union = shapely.union_all(parts)
    assert shapely.symmetric_difference(union, shape).area <= 1e-6 * shape.area
    for i in range(n):
        for j in range(i + 1, n):
            assert parts[i].intersection(parts[j]).area <= 1e-6 * shape.area
        assert shares[i].pattern.coverage >= 0.98
        assert shares[i].pattern.target_area_m2 == pytest.approx(areas[i], rel=1e-6)


# --- orbit, overwatch, broadcast --------------------------------------------------------------

def test_orbit_laps_or_duration() -> None:
    p = orbit(ll_pt(0, 0), radius_m=150.0, speed_mps=12.0, laps=2)
    assert p.loiter.turns == 2 and p.loiter.radius_m == 150.0 and p.roi == p.waypoints[0]
    assert p.hold_s[0] == pytest.approx(2 * 2 * math.pi * 150 / 12.0)
    assert p.length_m == pytest.approx(150 + 2 * 2 * math.pi * 150)
    assert p.est_duration_s == pytest.approx(150 / 12.0 + p.hold_s[0])
    q = orbit(ll_pt(0, 0), radius_m=150.0, speed_mps=12.0, duration_s=300.0)
    assert q.loiter.time_s == 300.0 and q.loiter.turns == pytest.approx(300 * 12 / (2 * math.pi * 150))
    small = orbit(ll_pt(0, 0), radius_m=10.0, speed_mps=12.0, laps=1)  # 20°/s × 10 m = 3.5 m/s
    assert small.hold_s[0] == pytest.approx(2 * math.pi * 10 / (math.radians(20) * 10))
    assert any("limited" in n for n in small.notes)
    with pytest.raises(ValueError, match="exactly one of laps or duration"):
        orbit(ll_pt(0, 0), radius_m=100.0, speed_mps=12.0)


def test_overwatch_holds_at_the_standoff_looking_at_the_target() -> None:
    target = ll_pt(0, 0)
    p = overwatch(target, standoff_m=400.0, bearing_deg=225.0, speed_mps=12.0)
    pos = metres(p)[0]
    assert np.hypot(*pos) == pytest.approx(400.0, abs=1e-3)
    assert math.degrees(math.atan2(pos[0], pos[1])) % 360 == pytest.approx(225.0, abs=1e-6)
    assert p.roi == target and math.isinf(p.hold_s[0]) and math.isinf(p.est_duration_s)
    assert "until told" in p.describe()
    timed = overwatch(target, standoff_m=0.0, bearing_deg=0.0, speed_mps=12.0, duration_s=600.0)
    assert timed.hold_s == (600.0,) and timed.est_duration_s == 600.0


def test_broadcast_spacing_from_the_audible_range() -> None:
    p = broadcast_sweep(ll(U_SHAPE))
    assert p.swath_m == 300.0 and p.spacing_m == pytest.approx(240.0)
    assert p.speed_mps == 5.0 and p.agl_m == 50.0 and p.kind == "broadcast"
    assert p.coverage >= 0.98
    assert any("hears the loudspeaker" in n for n in p.notes)


def test_describe_reads_like_the_pattern() -> None:
    p = parallel_track(ll(RECT), agl_m=50.0, hfov_deg=HFOV, speed_mps=10.0)
    text = p.describe()
    assert text.startswith("parallel-track search") and f"{p.tracks} tracks" in text and "covers" in text
    assert "IAMSAR SS" in expanding_square(ll_pt(0, 0), spacing_m=50.0, speed_mps=5.0, legs=4).describe()


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda: parallel_track(Polygon(), agl_m=50, hfov_deg=70, speed_mps=10), "empty"),
    (lambda: parallel_track([ll_pt(0, 0), ll_pt(1, 1)], agl_m=50, hfov_deg=70, speed_mps=10), "empty"),
    (lambda: parallel_track(ll(Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])), agl_m=50, hfov_deg=70,
                            speed_mps=10), "not valid"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=0, speed_mps=10), "field of view"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=180, speed_mps=10), "field of view"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=-20, speed_mps=10), "field of view"),
    (lambda: parallel_track(ll(RECT), agl_m=0, hfov_deg=70, speed_mps=10), "height above ground"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=70, speed_mps=0), "speed"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=70, speed_mps=10, overlap=1.0), "overlap"),
    (lambda: parallel_track(ll(RECT), agl_m=50, hfov_deg=70, speed_mps=10, edges="wide"), "edges"),
    (lambda: track_spacing_m(0.0), "swath"),
    (lambda: expanding_square(ll_pt(0, 0), spacing_m=0.0, speed_mps=5, legs=4), "track spacing"),
    (lambda: expanding_square(ll_pt(0, 0), spacing_m=-10.0, speed_mps=5, legs=4), "track spacing"),
    (lambda: expanding_square(ll_pt(0, 0), spacing_m=100.0, speed_mps=5, radius_m=50.0), "shorter than"),
    (lambda: expanding_square(ll_pt(0, 0), spacing_m=100.0, speed_mps=5), "exactly one"),
    (lambda: sector_search(ll_pt(0, 0), radius_m=0.0, speed_mps=5), "search radius"),
    (lambda: partition_area(ll(RECT), 0, agl_m=50, hfov_deg=70, speed_mps=10), "at least 1"),
    (lambda: partition_area(ll(RECT), -2, agl_m=50, hfov_deg=70, speed_mps=10), "at least 1"),
    (lambda: partition_area(ll(RECT), 2, agl_m=50, hfov_deg=200, speed_mps=10), "field of view"),
    (lambda: boat_survey(ll(RECT), Polygon(), swath_m=50, speed_mps=4), "water geometry is empty"),
    (lambda: route_patrol([ll_pt(0, 0)], speed_mps=5), "at least two points"),
    (lambda: route_patrol([ll_pt(0, 0), ll_pt(100, 0)], speed_mps=5, offset_m=-5), "offset"),
    (lambda: overwatch(ll_pt(0, 0), standoff_m=-1, bearing_deg=0, speed_mps=5), "standoff"),
    (lambda: orbit((200.0, 29.0), radius_m=100, speed_mps=5, laps=1), "lon/lat"),
])
def test_bad_input_is_refused_with_a_reason(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError, match="whole number"):
        partition_area(ll(RECT), 2.5, agl_m=50, hfov_deg=70, speed_mps=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a polygon"):
        parallel_track(LineString([ll_pt(0, 0), ll_pt(100, 0)]), agl_m=50, hfov_deg=70, speed_mps=10)
