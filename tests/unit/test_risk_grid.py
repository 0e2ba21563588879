"""The risk grid, IDW interpolation and exposure layers (command.risk.grid / interpolate / exposure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box

from command.district import Facility, Road, Terrain
from command.risk.exposure import (
    POPULATION,
    ROAD_LENGTH,
    ExposureError,
    ExposureParams,
    PopulationRaster,
    build_exposure,
    distance_to_nearest_m,
    facility_counts,
    population_from_points,
    population_from_raster,
    road_length_m,
)
from command.risk.grid import Grid, GridError
from command.risk.interpolate import (
    IdwParams,
    InterpolationError,
    idw,
    idw_grid,
    influence_window,
    leave_one_out,
)

YUBEI_BBOX = (106.45, 29.6, 106.95, 30.1)


def small_grid(nrows: int = 60, ncols: int = 80, cell_m: float = 30.0) -> Grid:
    return Grid(west_m=600_000.0, north_m=3_300_000.0, cell_m=cell_m, nrows=nrows, ncols=ncols)


# --- grid -------------------------------------------------------------------------------------


def test_grid_from_bbox_covers_the_bbox_on_a_snapped_origin() -> None:
    g = Grid.from_bbox(YUBEI_BBOX, cell_m=30.0)
    assert g.epsg == 32648
    assert g.west_m % 30.0 == 0 and g.north_m % 30.0 == 0
    # ~48 km × ~56 km of 30 m cells
    assert 1550 < g.ncols < 1700 and 1800 < g.nrows < 1900
    lon = np.array([106.45, 106.95, 106.45, 106.95, 106.7])
    lat = np.array([29.6, 29.6, 30.1, 30.1, 30.1])  # corners and the bulging middle of the north edge
    rows, cols = g.cell_of_lonlat(lon, lat)
    assert np.all(rows >= 0) and np.all(cols >= 0)
    assert Grid.from_bbox(YUBEI_BBOX, cell_m=1000.0).shape == (57, 50)


def test_grid_centres_and_cells_round_trip() -> None:
    g = small_grid()
    x, y = g.centres_xy
    assert x.shape == y.shape == g.shape
    assert x[0, 0] == g.west_m + 15.0 and y[0, 0] == g.north_m - 15.0  # row 0 is the north edge
    rows, cols = g.cell_of_xy(x.ravel(), y.ravel())
    assert np.array_equal(rows, np.repeat(np.arange(g.nrows), g.ncols))
    assert np.array_equal(cols, np.tile(np.arange(g.ncols), g.nrows))
    lon, lat = g.centres_lonlat
    r2, c2 = g.cell_of_lonlat(lon.ravel(), lat.ravel())
    assert np.array_equal(r2, rows) and np.array_equal(c2, cols)
    with pytest.raises(ValueError):
        x[0, 0] = 0.0  # the cached centres are read-only


def test_cell_of_xy_off_grid_and_edges() -> None:
    g = small_grid(nrows=2, ncols=3)
    w, s, e, n = g.bounds_m
    rows, cols = g.cell_of_xy([w, e, w - 1, w + 1, np.nan, w + 1], [n, n - 1, n - 1, s, 0.0, s + 1e-6])
    assert rows.tolist() == [0, -1, -1, -1, -1, 1]
    assert cols.tolist() == [0, -1, -1, -1, -1, 0]


def test_window_covers_every_cell_within_the_radius() -> None:
    g = small_grid()
    x0, y0, r = g.west_m + 700.0, g.north_m - 400.0, 500.0
    rows, cols = g.window(x0, y0, r)
    x, y = g.centres_xy
    near = np.hypot(x - x0, y - y0) <= r
    inside = np.zeros(g.shape, dtype=bool)
    inside[rows, cols] = True
    assert np.all(inside[near])
    assert inside.sum() < 1.3 * (2 * r / g.cell_m + 3) ** 2
    # far away: an empty window; no radius: the whole grid
    far = g.window(g.west_m - 1e6, y0, r)
    assert far[1].stop <= far[1].start
    assert g.window(x0, y0, math.inf) == (slice(0, g.nrows), slice(0, g.ncols))
    with pytest.raises(GridError):
        g.window(x0, y0, -1.0)


def test_resample_is_bilinear_and_exact_on_a_plane() -> None:
    # A plane z = a + b·lon + c·lat is reproduced exactly by bilinear interpolation.
    cell = 0.002
    nrows, ncols = 40, 50
    xll, yll = 106.60, 29.70
    lon_c = xll + (np.arange(ncols) + 0.5) * cell
    lat_c = yll + (np.arange(nrows)[::-1] + 0.5) * cell  # row 0 north
    LON, LAT = np.meshgrid(lon_c, lat_c)
    z = 300.0 + 2000.0 * (LON - xll) - 5000.0 * (LAT - yll)
    terrain = Terrain(z, xll, yll, cell)
    g = Grid.from_bbox((106.62, 29.72, 106.68, 29.76), cell_m=30.0)
    out = g.resample(terrain)
    lon, lat = g.centres_lonlat
    assert out.shape == g.shape
    assert np.allclose(out, 300.0 + 2000.0 * (lon - xll) - 5000.0 * (lat - yll), atol=1e-6)
    # Off the terrain: NaN
    g_out = Grid.from_bbox((106.0, 29.0, 106.01, 29.01), cell_m=100.0)
    assert np.all(np.isnan(g_out.resample(terrain)))


def test_cell_polygons_in_metres_and_lonlat() -> None:
    g = small_grid()
    polys = g.cell_polygons([0, 5], [0, 7])
    assert np.allclose(shapely.area(polys), 900.0)
    assert polys[0].bounds == (g.west_m, g.north_m - 30.0, g.west_m + 30.0, g.north_m)
    ll = g.cell_polygons([5], [7], lonlat=True)[0]
    lon, lat = g.lonlat_of_cell(5, 7)
    assert ll.contains(shapely.Point(float(lon), float(lat)))


def test_mask_inside_a_polygon() -> None:
    g = Grid.from_bbox((106.60, 29.70, 106.70, 29.80), cell_m=200.0)
    area = box(106.62, 29.72, 106.68, 29.78)
    m = g.mask_inside(area)
    lon, lat = g.centres_lonlat
    assert np.array_equal(m, (lon > 106.62) & (lon < 106.68) & (lat > 29.72) & (lat < 29.78))


@pytest.mark.parametrize(("bbox", "cell"), [((1, 2, 3), 30.0), ((106.9, 29.6, 106.4, 30.1), 30.0),
                                            (YUBEI_BBOX, 0.0), (YUBEI_BBOX, math.nan), ((0, -95, 1, 0), 30.0)])
def test_bad_grids_are_refused(bbox: tuple[float, ...], cell: float) -> None:
    with pytest.raises(GridError):
        Grid.from_bbox(bbox, cell_m=cell)


def test_layer_shape_check() -> None:
    g = small_grid()
    with pytest.raises(GridError, match="rain has shape"):
        g.check(np.zeros((3, 3)), "rain")


# --- IDW --------------------------------------------------------------------------------------

coords = st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False)
values = st.floats(min_value=0.0, max_value=300.0, allow_nan=False)


@st.composite
def stations(draw: st.DrawFn, min_size: int = 1, max_size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_size, max_size))
    xy = np.round(np.array([[draw(coords), draw(coords)] for _ in range(n)]), 2)  # positions to the centimetre
    v = np.array([draw(values) for _ in range(n)])
    return xy, v


@settings(max_examples=60, deadline=None)
@given(stations(), st.sampled_from([1.0, 2.0, 3.0]), st.integers(1, 10))
def test_idw_is_exact_at_a_station(sv: tuple[np.ndarray, np.ndarray], power: float, k: int) -> None:
    xy, v = sv
    _, first = np.unique(xy, axis=0, return_index=True)  # stations on top of each other average
    xy, v = xy[np.sort(first)], v[np.sort(first)]
    est, used = idw(xy, v, xy, IdwParams(k=k, power=power, max_radius_m=math.inf))
    assert np.allclose(est, v, rtol=0, atol=1e-9)
    assert np.all(used >= 1)


@settings(max_examples=60, deadline=None)
@given(stations(), st.lists(st.tuples(coords, coords), min_size=1, max_size=30), st.integers(1, 10),
       st.floats(min_value=100.0, max_value=10_000.0))
def test_idw_is_bounded_by_the_values_used(sv: tuple[np.ndarray, np.ndarray], targets: list[tuple[float, float]],
                                           k: int, radius: float) -> None:
    xy, v = sv
    est, used = idw(xy, v, np.array(targets), IdwParams(k=k, max_radius_m=radius))
    have = used > 0
    assert np.all(np.isnan(est[~have]))
    assert np.all(est[have] >= v.min() - 1e-9) and np.all(est[have] <= v.max() + 1e-9)
    assert np.all(used <= min(k, len(v)))


def test_idw_hand_computed_and_radius() -> None:
    xy = [[0.0, 0.0], [100.0, 0.0], [0.0, 300.0]]
    v = [10.0, 20.0, 40.0]
    est, used = idw(xy, v, [[50.0, 0.0]], IdwParams(k=8, power=2.0, max_radius_m=1000.0))
    w = np.array([1 / 50**2, 1 / 50**2, 1 / (50**2 + 300**2)])
    assert est[0] == pytest.approx((w * v).sum() / w.sum())
    assert used[0] == 3
    est, used = idw(xy, v, [[50.0, 0.0]], IdwParams(k=2, power=2.0))  # the two nearest only
    assert est[0] == pytest.approx(15.0) and used[0] == 2
    est, used = idw(xy, v, [[50.0, 0.0], [5000.0, 5000.0]], IdwParams(max_radius_m=60.0))
    assert est[0] == pytest.approx(15.0) and np.isnan(est[1]) and used.tolist() == [2, 0]


def test_idw_skips_stations_without_a_value() -> None:
    est, used = idw([[0.0, 0.0], [10.0, 0.0]], [np.nan, 7.0], [[0.0, 0.0]])
    assert est[0] == 7.0 and used[0] == 1
    est, used = idw([[0.0, 0.0]], [np.nan], [[0.0, 0.0]])
    assert np.isnan(est[0]) and used[0] == 0


def test_idw_bad_input() -> None:
    with pytest.raises(InterpolationError, match="shape"):
        idw([[0.0, 0.0, 0.0]], [1.0], [[0.0, 0.0]])
    with pytest.raises(InterpolationError, match="2 station positions"):
        idw([[0.0, 0.0], [1.0, 1.0]], [1.0], [[0.0, 0.0]])
    with pytest.raises(InterpolationError, match="not finite at index"):
        idw([[0.0, np.nan]], [1.0], [[0.0, 0.0]])
    for bad in ({"k": 0}, {"power": -1.0}, {"max_radius_m": 0.0}):
        with pytest.raises(InterpolationError):
            IdwParams(**bad)
    with pytest.raises(InterpolationError, match="integer"):
        IdwParams.from_mapping({"k": 2.5})
    assert IdwParams.from_mapping({"k": "4", "power": "3", "other": 1}) == IdwParams(k=4, power=3.0)


@settings(max_examples=25, deadline=None)
@given(stations(max_size=20), st.integers(1, 9), st.sampled_from([500.0, 1500.0, math.inf]))
def test_idw_grid_matches_points_and_windows_are_bitwise_equal(sv: tuple[np.ndarray, np.ndarray], k: int,
                                                               radius: float) -> None:
    g = small_grid(nrows=150, ncols=170)  # more than one 128-cell block each way
    xy, v = sv
    # Generic positions (hypothesis likes 0.0 and 1.0): the two searches break exact ties at the
    # k-th distance differently, and a tie line can run along a whole row of cell centres.
    jitter = np.random.default_rng(len(v)).uniform(0.01, 0.99, xy.shape)
    xy = xy + jitter + [g.west_m, g.north_m - 4_500.0]
    params = IdwParams(k=k, max_radius_m=radius)
    full = idw_grid(g, xy, v, params)
    x, y = g.centres_xy
    pts, _ = idw(xy, v, np.column_stack([x.ravel(), y.ravel()]), params)
    # Same estimates (the sums run in another order: equal to rounding) and the same no-data cells.
    assert np.array_equal(np.isnan(full), np.isnan(pts.reshape(g.shape)))
    assert np.allclose(full, pts.reshape(g.shape), rtol=1e-9, atol=1e-9, equal_nan=True)
    window = (slice(17, 140), slice(3, 101))
    assert np.array_equal(idw_grid(g, xy, v, params, window=window), full[window], equal_nan=True)


def test_idw_grid_ties_go_to_the_lower_station_index() -> None:
    g = small_grid(nrows=3, ncols=3)
    cx, cy = g.xy_of_cell(1, 1)
    xy = np.array([[cx - 100.0, cy], [cx + 100.0, cy], [cx, cy + 100.0]])  # all three 100 m from the centre
    out = idw_grid(g, xy, np.array([1.0, 2.0, 30.0]), IdwParams(k=2))
    assert out[1, 1] == pytest.approx(1.5)


def test_idw_grid_station_on_a_cell_centre_is_exact() -> None:
    g = small_grid()
    cx, cy = g.xy_of_cell(10, 20)
    out = idw_grid(g, [[float(cx), float(cy)], [float(cx) + 300.0, float(cy)]], [5.0, 50.0])
    assert out[10, 20] == 5.0


def test_leave_one_out() -> None:
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [10_000.0, 0.0]])
    v = np.array([1.0, 2.0, 3.0, np.nan])
    pred, used = leave_one_out(xy, v, IdwParams(k=2, max_radius_m=500.0))
    w0 = np.array([1 / 100**2, 1 / 200**2])
    assert pred[0] == pytest.approx((w0 * [2.0, 3.0]).sum() / w0.sum())
    assert pred[1] == pytest.approx(2.0) and used[1] == 2  # 1 and 3 at equal distance
    assert used.tolist() == [2, 2, 2, 0]
    assert np.isnan(pred[3])  # nobody within 500 m
    # A station without a value is still predicted from the others.
    pred, used = leave_one_out(xy[:3], np.array([1.0, np.nan, 3.0]), IdwParams(k=2))
    assert pred[1] == pytest.approx(2.0) and used[1] == 2
    # Another station at the same place counts (d = 0: its value).
    pred, used = leave_one_out([[0.0, 0.0], [0.0, 0.0], [50.0, 0.0]], [4.0, 6.0, 100.0], IdwParams(k=2))
    assert pred[0] == 6.0 and pred[1] == 4.0


def test_influence_window_is_the_radius() -> None:
    g = small_grid(nrows=300, ncols=300)
    rows, cols = influence_window(g, (g.west_m + 4500.0, g.north_m - 4500.0), IdwParams(max_radius_m=600.0))
    assert 40 <= rows.stop - rows.start <= 44 and 40 <= cols.stop - cols.start <= 44


# --- exposure ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 500_000)), min_size=1, max_size=6),
       st.one_of(st.none(), st.floats(20.0, 3000.0)))
def test_population_total_is_preserved(towns: list[tuple[float, float, int]], sigma: float | None) -> None:
    g = Grid.from_bbox((106.60, 29.70, 106.70, 29.80), cell_m=60.0)
    w, s, e, n = 106.601, 29.701, 106.699, 29.799  # anywhere on the grid, edges included
    lon = [w + fx * (e - w) for fx, _, _ in towns]
    lat = [s + fy * (n - s) for _, fy, _ in towns]
    persons = [float(p) for _, _, p in towns]
    pop = population_from_points(g, lon, lat, persons, params=ExposureParams(population_sigma_m=sigma))
    assert pop.sum() == pytest.approx(sum(persons), rel=1e-9, abs=1e-6)
    assert np.all(pop >= 0)


def test_population_kernel_is_centred_and_sized_from_land_per_person() -> None:
    g = Grid.from_bbox((106.60, 29.70, 106.70, 29.80), cell_m=30.0)
    p = ExposureParams()
    sigma = p.sigma_m(50_000)
    assert sigma == pytest.approx(math.sqrt(50_000 * 100.0 / (2 * math.pi)))  # ≈ 892 m
    pop = population_from_points(g, [106.65], [29.75], [50_000.0])
    r, c = g.cell_of_lonlat(106.65, 29.75)
    peak = np.unravel_index(np.argmax(pop), pop.shape)
    assert abs(peak[0] - r) <= 1 and abs(peak[1] - c) <= 1
    # peak density ≈ one person per 100 m² = 9 per 900 m² cell
    assert pop.max() == pytest.approx(9.0, rel=0.05)


def test_population_bad_input() -> None:
    g = small_grid()
    with pytest.raises(ExposureError, match="off the grid"):
        population_from_points(g, [0.0], [0.0], [10.0])
    with pytest.raises(ExposureError, match="finite"):
        population_from_points(g, [106.6], [29.7], [-1.0])
    with pytest.raises(ExposureError):
        ExposureParams(population_sigma_m=0.0)


def test_population_raster_total_is_preserved() -> None:
    rng = np.random.default_rng(3)
    persons = rng.integers(0, 500, size=(20, 30)).astype(float)
    persons[3, 4] = np.nan  # nodata: nobody
    raster = PopulationRaster(persons, xll_deg=106.60, yll_deg=29.70, cell_deg=0.001)  # ~100 m cells
    g = Grid.from_bbox((106.59, 29.69, 106.64, 29.73), cell_m=30.0)  # covers the raster
    pop, lost = population_from_raster(g, raster)
    assert lost == 0.0
    assert pop.sum() == pytest.approx(np.nansum(persons), rel=1e-12)
    # A grid covering half the raster loses the rest, and says how much.
    g2 = Grid.from_bbox((106.60, 29.70, 106.615, 29.72), cell_m=30.0)
    pop2, lost2 = population_from_raster(g2, raster)
    assert pop2.sum() + lost2 == pytest.approx(np.nansum(persons), rel=1e-12)
    assert lost2 > 0
    with pytest.raises(ExposureError, match="negative"):
        PopulationRaster(-np.ones((2, 2)), 106.6, 29.7, 0.001)


def test_facility_counts() -> None:
    g = small_grid()
    lon, lat = g.lonlat_of_cell(np.array([3, 3, 7]), np.array([4, 4, 9]))
    counts = facility_counts(g, list(lon) + [0.0], list(lat) + [0.0])
    assert counts[3, 4] == 2 and counts[7, 9] == 1 and counts.sum() == 3


def test_road_length_is_exact_per_cell() -> None:
    g = small_grid()
    # A diagonal line inside the grid: the cell lengths add up to its length in metres.
    x = np.array([g.west_m + 10.0, g.west_m + 1000.0, g.west_m + 1500.0])
    y = np.array([g.north_m - 20.0, g.north_m - 777.0, g.north_m - 100.0])
    lon, lat = g.to_lonlat(x, y)
    out = road_length_m(g, [list(zip(lon, lat, strict=True))])
    assert out.sum() == pytest.approx(np.hypot(np.diff(x), np.diff(y)).sum(), rel=1e-6)
    # A horizontal line along a row: exactly one cell side per cell it crosses.
    xr = np.array([g.west_m + 30.0, g.west_m + 30.0 * 11])
    yr = np.array([g.north_m - 45.0] * 2)
    lon, lat = g.to_lonlat(xr, yr)
    out = road_length_m(g, [list(zip(lon, lat, strict=True))])
    assert np.allclose(out[1, 1:11], 30.0, rtol=1e-6) and out.sum() == pytest.approx(300.0, rel=1e-6)
    # Off the grid: not counted.
    assert road_length_m(g, [[(0.0, 0.0), (0.1, 0.1)]]).sum() == 0.0


def test_distance_to_nearest() -> None:
    g = small_grid()
    lon, lat = g.lonlat_of_cell(10, 10)
    d = distance_to_nearest_m(g, [float(lon)], [float(lat)])
    assert d[10, 10] == 0.0 and d[10, 13] == pytest.approx(90.0) and d[14, 13] == pytest.approx(150.0)
    assert np.all(np.isinf(distance_to_nearest_m(g, [], [])))


def test_build_exposure_from_district_like_data() -> None:
    g = Grid.from_bbox((106.60, 29.70, 106.70, 29.80), cell_m=50.0)
    facilities = [
        Facility("town-a", "town", "A", "", 106.65, 29.75, 40_000),
        Facility("town-b", "town", "B", "", 106.62, 29.72, None),
        Facility("school-a", "school", "S", "", 106.651, 29.751),
        Facility("hosp-a", "hospital", "H", "", 106.649, 29.749),
        Facility("home-a", "nursing_home", "N", "", 106.66, 29.76),
        Facility("far", "school", "F", "", 107.5, 29.75),
    ]
    roads = [Road("r1", "R1", "", "arterial", LineString([(106.61, 29.71), (106.69, 29.79)]))]
    ex = build_exposure(g, facilities=facilities, roads=roads)
    assert set(ex.layers) == {POPULATION, "schools_count", "hospitals_count", "nursing_homes_count",
                              "bridges_count", ROAD_LENGTH}
    assert ex.population.sum() == pytest.approx(40_000.0)
    assert ex.layers["schools_count"].sum() == 1  # the far school is off the grid
    assert ex.layers["nursing_homes_count"].sum() == 1 and ex.layers["bridges_count"].sum() == 0
    assert ex.layers[ROAD_LENGTH].sum() == pytest.approx(11_500, rel=0.05)  # ~11.5 km diagonal
    assert any("town-b" in note and "without population" in note for note in ex.notes)
    assert any(note.startswith("far:") for note in ex.notes)
    r, c = g.cell_of_lonlat(106.651, 29.751)
    assert ex.facilities_in(np.array([int(r) * g.ncols + int(c)])) == ("school-a",)
    with pytest.raises(ValueError):
        ex.population[0, 0] = 1.0  # read-only
