"""Hotspots (command.risk.hotspots) and the incremental risk update (command.risk.riskmap)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString

from command.district import District, Facility, Road
from command.risk.exposure import POPULATION, ROAD_LENGTH, Exposure, ExposureParams, build_exposure
from command.risk.grid import Grid
from command.risk.hotspots import HotspotError, HotspotParams, SensorRef, find_hotspots
from command.risk.interpolate import IdwParams
from command.risk.riskmap import RAIN_LAYER, RiskModel, RiskState, compute, update_reading
from command.risk.rules import Level
from command.risk.score import RiskMap, compute_risk

GRID = Grid(west_m=600_000.0, north_m=3_300_000.0, cell_m=30.0, nrows=40, ncols=50)
REF_POP = 10_000.0 * GRID.cell_area_m2 / 1e6  # persons per cell that normalise to exposure 1
ANY = HotspotParams(min_area_m2=0.0)


def risk_of(h: np.ndarray, *, pop: float | np.ndarray = REF_POP, grid: Grid = GRID) -> RiskMap:
    """Exposure 1, V = L = 1: score = H^(1/3); H 0.5 → 0.79 (red), 0.1 → 0.46 (yellow), 0 → none."""
    ex = {POPULATION: np.broadcast_to(np.asarray(pop, dtype=float), grid.shape).copy()}
    return compute_risk(grid, {"flood": h}, ex, vulnerability=1.0, lack_of_coping=1.0)


def blob(cells: list[tuple[int, int]], value: float = 0.5, grid: Grid = GRID) -> np.ndarray:
    h = np.zeros(grid.shape)
    for r, c in cells:
        h[r, c] = value
    return h


def rect(r0: int, r1: int, c0: int, c1: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(r0, r1) for c in range(c0, c1)]


def utm_area(grid: Grid, geom: shapely.Geometry) -> float:
    return shapely.transform(geom, lambda x, y: grid.to_xy(x, y), interleaved=False).area


# --- shape ------------------------------------------------------------------------------------


def test_eight_connected_cells_are_one_hotspot() -> None:
    risk = risk_of(blob([(5, 5), (6, 6), (7, 7), (20, 20)]))
    hs = find_hotspots(risk, params=ANY)
    assert sorted(h.n_cells for h in hs) == [1, 3]
    diag = next(h for h in hs if h.n_cells == 3)
    assert diag.polygon.geom_type == "MultiPolygon"  # cells touching at corners only
    assert diag.area_m2 == 3 * 900.0


def test_minimum_area_drops_specks() -> None:
    risk = risk_of(blob(rect(2, 4, 2, 4) + rect(10, 20, 10, 20)))
    hs = find_hotspots(risk, params=HotspotParams(min_area_m2=5 * 900.0))
    assert [h.n_cells for h in hs] == [100]
    assert find_hotspots(risk_of(np.zeros(GRID.shape))) == ()


def test_min_level_selects_cells() -> None:
    h = blob(rect(5, 10, 5, 10), 0.5)  # red
    h[5:10, 10:15] = 0.1  # yellow, touching
    risk = risk_of(h)
    red = find_hotspots(risk, params=HotspotParams(min_level=Level.RED, min_area_m2=0.0))
    yellow = find_hotspots(risk, params=HotspotParams(min_level=Level.YELLOW, min_area_m2=0.0))
    assert [x.n_cells for x in red] == [25] and [x.n_cells for x in yellow] == [50]
    assert yellow[0].level is Level.RED  # the highest level inside
    assert HotspotParams.from_mapping({"min_level": "orange"}).min_level is Level.ORANGE
    with pytest.raises(HotspotError):
        HotspotParams(min_level=Level.NONE)


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    m = np.array(draw(st.lists(st.booleans(), min_size=12 * 14, max_size=12 * 14))).reshape(12, 14)
    return m


@settings(max_examples=60, deadline=None)
@given(masks())
def test_polygon_area_is_the_cell_area(mask: np.ndarray) -> None:
    h = np.zeros(GRID.shape)
    h[10:22, 20:34] = np.where(mask, 0.5, 0.0)
    hs = find_hotspots(risk_of(h), params=ANY)
    assert sum(x.n_cells for x in hs) == mask.sum()
    for x in hs:
        assert x.area_m2 == x.n_cells * 900.0
        assert x.outline_m.is_valid and x.outline_m.area == pytest.approx(x.area_m2, abs=1e-6)
        # The simplified WGS84 outline moves its edges by at most half a cell.
        assert x.polygon.is_valid
        bound = x.outline_m.length * 15.0 + 1.0
        assert abs(utm_area(GRID, x.polygon) - x.area_m2) <= bound
        cx, cy = GRID.xy_of_cell(*divmod(x.peak_cell, GRID.ncols))
        assert x.outline_m.contains(shapely.Point(float(cx), float(cy)))


def test_large_hotspot_polygon_keeps_its_hole() -> None:
    cells = [rc for rc in rect(5, 35, 5, 45) if not (15 <= rc[0] < 25 and 15 <= rc[1] < 30)]
    hs = find_hotspots(risk_of(blob(cells)), params=ANY)
    assert len(hs) == 1
    poly = hs[0].polygon
    assert poly.geom_type == "Polygon" and len(poly.interiors) == 1
    assert utm_area(GRID, poly) == pytest.approx(len(cells) * 900.0, rel=0.01)
    lon, lat = GRID.lonlat_of_cell(20, 20)  # in the hole
    assert not poly.contains(shapely.Point(float(lon), float(lat)))


def test_peak_population_and_facilities_inside() -> None:
    g = Grid.from_bbox((106.60, 29.70, 106.64, 29.73), cell_m=30.0)
    lon, lat = g.lonlat_of_cell(np.array([10, 30, 60]), np.array([10, 30, 60]))
    facilities = [Facility("town-x", "town", "X", "", float(lon[1]), float(lat[1]), 20_000),
                  Facility("school-x", "school", "S", "", float(lon[1]), float(lat[1])),
                  Facility("hosp-far", "hospital", "H", "", float(lon[2]), float(lat[2]))]
    ex = build_exposure(g, facilities=facilities,
                        roads=[Road("r", "R", "", "arterial", LineString([(106.60, 29.70), (106.64, 29.73)]))])
    h = np.zeros(g.shape)
    h[20:45, 20:45] = 0.3
    h[33, 27] = 0.6
    risk = compute_risk(g, {"flood": h}, ex, vulnerability=1.0, lack_of_coping=1.0)
    hs = find_hotspots(risk, exposure=ex, params=ANY)
    main = max(hs, key=lambda x: x.n_cells)
    assert main.peak_cell == 33 * g.ncols + 27
    plon, plat = g.lonlat_of_cell(33, 27)
    assert (main.peak_lon, main.peak_lat) == pytest.approx((float(plon), float(plat)))
    assert main.facility_ids == ("town-x", "school-x")
    assert main.population_persons == pytest.approx(float(ex.population[20:45, 20:45].sum()))
    assert 0 < main.population_persons < 20_000
    assert main.why.top_hazard is not None and main.why.top_hazard.layer == "flood"
    assert main.why.top_hazard.value == pytest.approx(0.6)
    feature = main.to_feature()
    json.dumps(feature)  # plain data
    assert feature["properties"]["level"] == main.level.colour and feature["geometry"]["type"] == "Polygon"
    assert feature["properties"]["facility_ids"] == ["town-x", "school-x"]


def test_sensors_that_drove_a_hotspot() -> None:
    h = blob(rect(10, 20, 10, 20))
    risk = compute_risk(GRID, {"rain": h, "fire": np.zeros(GRID.shape)}, {POPULATION: np.full(GRID.shape, REF_POP)},
                        vulnerability=1.0, lack_of_coping=1.0)

    def at(r: float, c: float) -> tuple[float, float]:
        x, y = GRID.xy_of_cell(r, c)
        lon, lat = GRID.to_lonlat(x, y)
        return float(lon), float(lat)

    inside = SensorRef("g-in", *at(15, 15))
    near = SensorRef("g-near", *at(15, 25), radius_m=300.0)  # 5.5 cells = 165 m from the edge
    far = SensorRef("g-far", *at(15, 45), radius_m=300.0)  # 25.5 cells away
    nearer = SensorRef("g-nearer", *at(15, 21), radius_m=300.0)
    smoke = SensorRef("s-1", *at(15, 15))
    hs = find_hotspots(risk, params=ANY, sensors={"rain": [inside, near, far, nearer], "fire": [smoke]})
    assert len(hs) == 1
    assert hs[0].sensors == {"rain": ("g-in", "g-nearer", "g-near")}  # nearest first; fire drove nothing


# --- stable ids -------------------------------------------------------------------------------


def test_ids_follow_the_phenomenon() -> None:
    first = find_hotspots(risk_of(blob(rect(5, 15, 5, 15) + rect(25, 35, 30, 40))), params=ANY)
    assert {h.id for h in first} == {first[0].id, first[1].id} and len(first) == 2
    a = next(h for h in first if h.cells.min() < 25 * GRID.ncols)
    b = next(h for h in first if h is not a)
    assert a.id == f"hs-{a.peak_cell // GRID.ncols}-{a.peak_cell % GRID.ncols}"
    # The first one drifts east and grows, the second one vanishes, a new one appears.
    moved = find_hotspots(risk_of(blob(rect(5, 16, 8, 19) + rect(30, 36, 2, 8))), params=ANY, previous=first)
    assert len(moved) == 2
    assert a.id in {h.id for h in moved}
    assert b.id not in {h.id for h in moved}
    # Split: the larger part keeps the id.
    split = find_hotspots(risk_of(blob(rect(5, 16, 8, 12) + rect(5, 16, 13, 19))), params=ANY, previous=moved)
    kept = next(h for h in split if h.id == a.id)
    assert kept.n_cells == max(h.n_cells for h in split)
    # Merge: the one with the larger overlap keeps its id, the other's id is gone.
    merged = find_hotspots(risk_of(blob(rect(5, 16, 8, 19))), params=ANY, previous=split)
    assert [h.id for h in merged] == [a.id]


def test_ids_are_unique_even_when_peaks_would_collide() -> None:
    prev = find_hotspots(risk_of(blob(rect(5, 8, 5, 8))), params=ANY)
    # A new hotspot far away whose peak cell name is taken by a surviving one cannot happen by
    # position, but two new hotspots always get distinct ids.
    now = find_hotspots(risk_of(blob(rect(5, 8, 5, 8) + rect(20, 23, 20, 23) + rect(30, 33, 40, 43))),
                        params=ANY, previous=prev)
    assert len({h.id for h in now}) == 3 and prev[0].id in {h.id for h in now}


def test_previous_from_another_grid_is_refused() -> None:
    big = Grid(west_m=0.0, north_m=100_000.0, cell_m=30.0, nrows=100, ncols=100)
    prev = find_hotspots(risk_of(blob(rect(90, 95, 90, 95), grid=big), grid=big), params=ANY)
    with pytest.raises(HotspotError, match="different grid"):
        find_hotspots(risk_of(blob(rect(5, 8, 5, 8))), params=ANY, previous=prev)


# --- incremental == full ----------------------------------------------------------------------

MODEL_GRID = Grid(west_m=600_000.0, north_m=3_300_000.0, cell_m=30.0, nrows=180, ncols=220)


def _model() -> RiskModel:
    g = MODEL_GRID
    towns = [(30, 40, 30_000), (120, 60, 8_000), (90, 170, 15_000), (150, 200, 4_000), (40, 190, 12_000),
             (160, 110, 20_000)]
    lon, lat = g.lonlat_of_cell(np.array([t[0] for t in towns]), np.array([t[1] for t in towns]))
    facilities = [Facility(f"town-{i}", "town", f"T{i}", "", float(lo), float(la), t[2])
                  for i, (lo, la, t) in enumerate(zip(lon, lat, towns, strict=True))]
    facilities.append(Facility("school-0", "school", "S", "", float(lon[0]), float(lat[0])))
    ex = build_exposure(g, facilities=facilities, params=ExposureParams(population_sigma_m=250.0))  # compact towns
    slon, slat = g.lonlat_of_cell(np.array([20, 60, 100, 170, 10, 130, 90]),
                                  np.array([20, 150, 60, 30, 210, 120, 100]))
    stations = [(f"rain-{i}", float(a), float(b)) for i, (a, b) in enumerate(zip(slon, slat, strict=True))]
    slope = np.linspace(0.0, 1.0, g.size).reshape(g.shape)

    def hazards(rain: np.ndarray, window: tuple[slice, slice]) -> dict[str, np.ndarray]:
        ratio = np.minimum(rain / np.float32(100.0), np.float32(1.0))
        return {RAIN_LAYER: ratio, "landslide": ratio * slope[window].astype(np.float32)}

    # A short reach (1.5 km = 50 cells) so that an update leaves some hotspots alone.
    return RiskModel.build(g, ex, stations, vulnerability=0.6, lack_of_coping=0.9, hazard_from_rain=hazards,
                           rain_layers=(RAIN_LAYER, "landslide"), static_hazards={"fire": np.full(g.shape, 0.05)},
                           idw=IdwParams(k=4, max_radius_m=1_500.0),
                           hotspots=HotspotParams(min_area_m2=3 * 900.0))


MODEL = _model()


def assert_same_state(a: RiskState, b: RiskState) -> None:
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.rain_mm, b.rain_mm, equal_nan=True)
    for name in b.risk.hazards:
        assert np.array_equal(a.risk.hazards[name], b.risk.hazards[name], equal_nan=True), name
    assert np.array_equal(a.risk.score, b.risk.score, equal_nan=True)
    assert np.array_equal(a.risk.level, b.risk.level)
    assert np.array_equal(a.labels, b.labels)
    assert len(a.hotspots) == len(b.hotspots)
    for x, y in zip(a.hotspots, b.hotspots, strict=True):
        assert x.same_as(y), (x.id, y.id)
        assert x.why == y.why


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.one_of(st.floats(0.0, 150.0), st.just(math.nan))),
                min_size=1, max_size=5),
       st.lists(st.floats(0.0, 150.0), min_size=7, max_size=7))
def test_incremental_update_equals_full_recompute(updates: list[tuple[int, float]], start: list[float]) -> None:
    state = compute(MODEL, start)
    values = list(start)
    for i, value in updates:
        values[i] = value
        before = state
        state = update_reading(before, f"rain-{i}", value)
        # The update stands for a full recompute carrying ids from the state before it.
        assert_same_state(state, compute(MODEL, values, previous=before.hotspots))


def test_incremental_chain_keeps_ids_like_a_full_chain() -> None:
    start = [10.0, 80.0, 5.0, 60.0, 0.0, 90.0, 40.0]
    inc = compute(MODEL, start)
    full = compute(MODEL, start)
    values = list(start)
    reused = 0
    for i, value in [(1, 120.0), (5, 0.0), (3, math.nan), (6, 150.0), (1, 2.0), (3, 70.0), (0, 0.0)]:
        values[i] = value
        before = inc
        inc = update_reading(inc, f"rain-{i}", value)
        reused += sum(any(h is b for b in before.hotspots) for h in inc.hotspots)
        full = compute(MODEL, values, previous=full.hotspots)
        assert_same_state(inc, full)
    assert reused > 0, "the updates left some hotspots untouched, and reused them"
    assert len(full.hotspots) >= 3


def test_update_of_an_unknown_station_or_a_far_one() -> None:
    state = compute(MODEL, [10.0] * 7)
    with pytest.raises(KeyError, match="unknown station"):
        update_reading(state, "rain-99", 1.0)
    with pytest.raises(ValueError, match="without a usable position: bad"):
        RiskModel.build(MODEL.grid, MODEL.exposure, [("bad", math.nan, 29.7)], vulnerability=0.5, lack_of_coping=0.5)
    far = RiskModel.build(MODEL.grid, MODEL.exposure, [("far", 0.0, 0.0), ("near", *MODEL.grid.lonlat_of_cell(5, 5))],
                          vulnerability=0.5, lack_of_coping=0.5)
    s = compute(far, [1.0, 2.0])
    s2 = update_reading(s, "far", 50.0)
    assert s2.values.tolist() == [50.0, 2.0] and s2.risk is s.risk


def test_compute_takes_values_by_station_id() -> None:
    a = compute(MODEL, {"rain-1": 30.0})
    assert np.isnan(a.values[0]) and a.values[1] == 30.0
    with pytest.raises(KeyError):
        compute(MODEL, {"nope": 1.0})
    with pytest.raises(ValueError):
        compute(MODEL, [1.0, 2.0])


# --- the synthetic district end to end ----------------------------------------------------------


@pytest.fixture(scope="module")
def yubei(tmp_path_factory: pytest.TempPathFactory) -> District:
    from sitl.scenarios.yubei import generate  # here, so the other tests run whatever the simulator's state

    return District.load(generate(tmp_path_factory.mktemp("yubei")))


def test_yubei_storm_band_hotspots_and_incremental(yubei: District) -> None:
    sensors = json.loads(Path(yubei.sensors_path).read_text(encoding="utf-8"))["features"]
    stations = [(f["properties"]["id"], *f["geometry"]["coordinates"]) for f in sensors
                if f["properties"]["kind"] == "rain_gauge"]
    model = RiskModel.for_district(yubei, stations, cell_m=150.0)
    assert model.grid.cell_m == 150.0 and model.inside is not None
    # The scenario's first storm (mm over three hours).
    totals = {"rain-longxing": 72.0, "rain-luoqi": 58.0, "rain-muer": 44.0, "rain-tongjing": 31.0,
              "rain-wangjia": 12.0, "rain-lianglu": 9.0, "rain-gulu": 8.0, "rain-xiantao": 6.0, "rain-cizhu": 5.0}
    state = compute(model, totals)
    assert state.hotspots, "the storm band over populated towns makes hotspots"
    top = state.hotspots[0]
    assert top.level >= Level.ORANGE
    assert top.why.top_hazard is not None and top.why.top_hazard.layer == RAIN_LAYER
    assert top.sensors[RAIN_LAYER][0] in {"rain-longxing", "rain-muer", "rain-luoqi"}
    towns = [h for h in state.hotspots if any(f.startswith("town-") for f in h.facility_ids)]
    assert towns and all(h.population_persons > 0 for h in towns)
    assert np.all(np.isnan(state.risk.score[~model.inside]))  # outside the boundary: blank
    # One new reading: the update equals a full recompute.
    updated = update_reading(state, "rain-muer", 95.0)
    full = compute(model, {**totals, "rain-muer": 95.0}, previous=state.hotspots)
    assert_same_state(updated, full)
    assert any(h.id == top.id for h in updated.hotspots)
    # Exposure: every town's people are on the grid.
    towns_total = sum(f.population or 0 for f in yubei.facilities_of("town"))
    assert model.exposure.population.sum() == pytest.approx(towns_total)
    assert isinstance(model.exposure, Exposure) and model.exposure.layers[ROAD_LENGTH].sum() > 10_000
