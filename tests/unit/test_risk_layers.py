"""Hazard layers of the risk map (command.risk.layers) and the service-side builder (command.hazardmap)."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shapely.geometry import Point, box, mapping

from command.district import District, DistrictError
from command.hazardmap import HazardMap
from command.risk import landslide
from command.risk.exposure import Exposure
from command.risk.grid import Grid
from command.risk.hotspots import HotspotParams, SensorRef
from command.risk.layers import (
    CHEMICAL,
    FIRE,
    FIRE_WEATHER_MAX,
    FLOOD,
    LANDSLIDE_RAIN,
    LANDSLIDE_SLOPE,
    RAIN_3H,
    STATIC_LAYERS,
    FireStation,
    FloodHazardParams,
    RainLayers,
    SusceptibilityParams,
    area_layer,
    fire_layer,
    flood_depth_m,
    flood_hazard,
    level_hazard,
    slope_deg,
    susceptibility,
)
from command.risk.riskmap import RiskModel, compute, update_reading
from command.risk.rules import Level
from command.risk.score import ScoreError
from sensors.registry import Registry
from sitl.scenarios.yubei.generate import generate

GRID = Grid.from_bbox((106.60, 29.70, 106.64, 29.74), cell_m=100.0)


# --- terrain ------------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, 5.0, 20.0, 45.0])
def test_slope_of_a_plane(angle: float) -> None:
    x = np.arange(20) * 30.0
    z = np.tile(x * math.tan(math.radians(angle)), (15, 1))  # rising east
    assert np.allclose(slope_deg(z, 30.0), angle)
    assert np.allclose(slope_deg(z.T, 30.0), angle)  # rising south


def test_slope_rejects_bad_input() -> None:
    with pytest.raises(ScoreError, match="2-D"):
        slope_deg(np.zeros(5), 30.0)
    with pytest.raises(ScoreError, match="cell_m"):
        slope_deg(np.zeros((3, 3)), 0.0)


def test_susceptibility_ramps_between_flat_and_steep() -> None:
    s = susceptibility(np.array([[0.0, 10.0, 22.5, 35.0, 60.0, np.nan]]))
    assert s.tolist() == [[0.0, 0.0, 0.5, 1.0, 1.0, 0.0]]
    water = np.array([[False, False, False, True, False, False]])
    assert susceptibility(np.array([[0.0, 10.0, 22.5, 35.0, 60.0, 30.0]]), water=water)[0, 3] == 0.0
    with pytest.raises(ScoreError):
        SusceptibilityParams(flat_deg=30.0, steep_deg=20.0)


# --- rain-driven ----------------------------------------------------------------------------------


def test_rain_layers_against_the_threshold() -> None:
    s = np.array([[1.0, 0.5, 0.0, 1.0]], dtype=np.float32)
    layers = RainLayers(s)
    need = float(landslide.CAINE_1980.accumulation_mm(3.0)) * landslide.DEFAULT_RATIO_BREAKS.red
    assert 43.0 < need < 44.0  # Caine (1980) at 3 h: 14.82 x 3^0.61 = 29 mm, red at 1.5 times it
    rain = np.array([[need, need, need, np.nan]], dtype=np.float32)
    out = layers(rain, (slice(0, 1), slice(0, 4)))
    assert set(out) == set(layers.names) == {RAIN_3H, LANDSLIDE_RAIN}
    assert np.allclose(out[LANDSLIDE_RAIN], [[1.0, 0.5, 0.0, 0.0]])  # unknown rain: no landslide hazard
    assert np.isnan(out[RAIN_3H][0, 3])  # ... but the rain itself stays unknown
    half = layers(rain / 2, (slice(0, 1), slice(0, 4)))
    assert np.allclose(half[LANDSLIDE_RAIN][0, :3], [0.5, 0.25, 0.0])
    assert np.allclose(half[RAIN_3H][0, 0], need / 2 / 100.0)


# --- shapes, flood, fire --------------------------------------------------------------------------


def _cell_lonlat(r: int, c: int) -> tuple[float, float]:
    lon, lat = GRID.lonlat_of_cell(r, c)
    return float(lon), float(lat)


def test_area_layer_takes_the_highest() -> None:
    lon, lat = _cell_lonlat(20, 20)
    small, big = Point(lon, lat).buffer(0.002), Point(lon, lat).buffer(0.006)
    layer = area_layer(GRID, [(big, 0.6), (small, 1.0)])
    assert layer[20, 20] == 1.0 and layer[20, 24] == pytest.approx(0.6) and layer[0, 0] == 0.0
    assert area_layer(GRID, []).sum() == 0.0
    with pytest.raises(ScoreError, match="within"):
        area_layer(GRID, [(big, 1.5)])


@pytest.mark.parametrize(("depth", "expected"), [
    (0.0, 0.0), (0.2, 0.1),  # shallow: HR = d (v + 0.5), no debris
    (1.0, 0.75),  # HR = 1 x 1.0 + 0.5 = 1.5 of 2
    (2.0, 1.0), (5.0, 1.0),  # danger for all
])
def test_flood_hazard_rating(depth: float, expected: float) -> None:
    assert flood_hazard(np.array([depth]))[0] == pytest.approx(expected, abs=1e-6)


def test_flood_depth_under_the_surface_inside_the_extent() -> None:
    z = np.full(GRID.shape, 200.0)
    z[:, 30:] = 195.0
    lon0, lat0 = _cell_lonlat(35, 5)
    lon1, lat1 = _cell_lonlat(5, 35)
    extent = box(lon0, lat0, lon1, lat1)
    d = flood_depth_m(GRID, z, [(extent, 197.0)])
    assert d[20, 32] == pytest.approx(2.0) and d[20, 10] == 0.0  # the high ground stays dry
    assert d[40, 32] == 0.0  # outside the extent
    water = np.zeros(GRID.shape, dtype=bool)
    water[20, 32] = True
    h = flood_hazard(d, FloodHazardParams(), water=water)
    assert h[20, 32] == 0.0 and h[21, 32] == pytest.approx(1.0)


def test_fire_layer_forest_only_nearest_station_and_open_fires() -> None:
    forest = np.zeros(GRID.shape)
    forest[:, :20] = 1.0
    west = FireStation("wx-w", *_cell_lonlat(20, 2), danger=5)
    east = FireStation("wx-e", *_cell_lonlat(20, 38), danger=3)
    layer = fire_layer(GRID, forest, [west, east])
    assert layer[20, 2] == pytest.approx(FIRE_WEATHER_MAX)  # 五级: the most fire weather can say
    assert layer[20, 30] == 0.0  # not forest
    assert layer[20, 19] == pytest.approx(FIRE_WEATHER_MAX)  # nearer the west station
    near_east = fire_layer(GRID, np.ones(GRID.shape), [west, east])
    assert near_east[20, 38] == pytest.approx(0.5 * FIRE_WEATHER_MAX)  # 三级
    out_of_reach = fire_layer(GRID, forest, [west], reach_m=50.0)
    assert out_of_reach[20, 2] > 0 and out_of_reach[20, 10] == 0.0
    burning = fire_layer(GRID, forest, [], fires=[Point(*_cell_lonlat(10, 30)).buffer(0.001)])
    assert burning[10, 30] == 1.0 and burning[10, 2] == 0.0
    with pytest.raises(ScoreError, match="1..5"):
        fire_layer(GRID, forest, [FireStation("x", *_cell_lonlat(1, 1), danger=7)])


def test_level_hazard() -> None:
    assert [level_hazard(lv) for lv in Level] == [0.0, 0.25, 0.5, 0.75, 1.0]


# --- the risk model with every layer --------------------------------------------------------------


def _model(susc: np.ndarray) -> RiskModel:
    people = np.full(GRID.shape, 20_000.0 * GRID.cell_area_m2 / 1e6)  # dense town everywhere
    exposure = Exposure(GRID, {"population_persons": people}, (), np.empty(0, dtype=np.intp))
    stations = [("g1", *_cell_lonlat(10, 10)), ("g2", *_cell_lonlat(30, 30))]
    rain = RainLayers(susc)
    return RiskModel.build(GRID, exposure, stations, vulnerability=0.5, lack_of_coping=1.0,
                           hazard_from_rain=rain, rain_layers=rain.names,
                           static_hazards={n: np.zeros(GRID.shape, dtype=np.float32) for n in STATIC_LAYERS},
                           hotspots=HotspotParams(min_area_m2=0.0))


def test_static_layers_drive_hotspots_and_name_their_sensors() -> None:
    model = _model(np.zeros(GRID.shape, dtype=np.float32))
    plain = compute(model, {"g1": 0.0, "g2": 0.0})
    assert plain.hotspots == ()
    plume = np.zeros(GRID.shape, dtype=np.float32)
    plume[5:9, 5:9] = 1.0
    spill = model.with_static({CHEMICAL: plume}, {CHEMICAL: [SensorRef("gas-1", *_cell_lonlat(6, 6), 500.0)]})
    assert model.static_hazards[CHEMICAL].max() == 0.0  # the old model is unchanged
    state = compute(spill, {"g1": 0.0, "g2": 0.0})
    (spot,) = state.hotspots
    assert spot.n_cells == 16 and spot.why.hazards[0].layer == CHEMICAL
    assert spot.sensors == {CHEMICAL: ("gas-1",)}
    with pytest.raises(ScoreError, match="not in the model"):
        model.with_static({"tsunami": plume})


def test_incremental_update_with_landslide_rain_equals_full() -> None:
    susc = np.zeros(GRID.shape, dtype=np.float32)
    susc[:, 25:] = 0.8
    model = _model(susc)
    flood = np.zeros(GRID.shape, dtype=np.float32)
    flood[30:, :10] = 0.9
    model = model.with_static({FLOOD: flood})
    before = compute(model, {"g1": 10.0, "g2": 10.0})
    after = update_reading(before, "g2", 60.0)
    full = compute(model, {"g1": 10.0, "g2": 60.0}, previous=before.hotspots)
    for name in full.risk.hazards:
        assert np.array_equal(after.risk.hazards[name], full.risk.hazards[name], equal_nan=True), name
    assert np.array_equal(after.risk.score, full.risk.score, equal_nan=True)
    assert [h.id for h in after.hotspots] == [h.id for h in full.hotspots]
    assert full.risk.hazards[LANDSLIDE_RAIN][30, 30] > 0 and full.risk.hazards[LANDSLIDE_RAIN][30, 10] == 0


# --- the service-side builder on the synthetic district ------------------------------------------


@dataclass
class Row:
    kind: str
    level: int
    lon: float
    lat: float
    detail: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def yubei(tmp_path_factory: pytest.TempPathFactory) -> tuple[District, Registry]:
    district = District.load(generate(tmp_path_factory.mktemp("layers") / "district"))
    return district, Registry.from_geojson(district.sensors_path)


def test_hazard_map_from_incidents(yubei: tuple[District, Registry]) -> None:
    district, registry = yubei
    grid = Grid.from_bbox(district.bbox, cell_m=200.0, epsg=district.utm_epsg)
    hm = HazardMap(district, registry, grid)
    assert hm.forest.any() and hm.forest.mean() < 0.5  # the ridges, not the valleys
    assert hm.susceptibility.max() > 0 and hm.susceptibility[hm.water].max() == 0.0
    empty = hm.build([], [])
    assert set(empty.layers) == set(STATIC_LAYERS) and all(a.max() == 0 for a in empty.layers.values())

    gauge = registry.get("yulin-level")
    land = Point(gauge.lon, gauge.lat).buffer(0.01)
    # a dry cell on the bank, the nearest to the gauge: the water surface 1 m over its ground
    gr, gc = (int(v) for v in grid.cell_of_lonlat(gauge.lon, gauge.lat))
    rr, cc = np.nonzero(~hm.water)
    k = int(np.argmin((rr - gr) ** 2 + (cc - gc) ** 2))
    bank = (int(rr[k]), int(cc[k]))
    ground = float(hm.elevation_m[bank])
    slope_sensor = next(s for s in registry.values() if s.kind == "gnss_displacement")
    gas = next(s for s in registry.values() if s.kind == "gas_detector")
    rows = [
        Row("flood", 3, gauge.lon, gauge.lat, {"members": {"yulin-level": {
            "sensor_id": "yulin-level", "model": {"extent": {"geometry": mapping(land), "surface_m": ground + 1.0,
                                                             "reach_km": 20.0}}}}}),
        Row("landslide", int(Level.RED), slope_sensor.lon, slope_sensor.lat,
            {"members": {slope_sensor.sensor_id: {"sensor_id": slope_sensor.sensor_id}}}),
        Row("chemical_leak", 3, gas.lon, gas.lat, {"members": {f"{gas.sensor_id}:nh3": {
            "sensor_id": gas.sensor_id, "model": {"plume": {
                "warm_zone": mapping(Point(gas.lon, gas.lat).buffer(0.01)),
                "hot_zone": mapping(Point(gas.lon, gas.lat).buffer(0.003)), "downwind_length_m": 1000.0}}}}}),
        Row("rainstorm", 4, gauge.lon, gauge.lat, {"members": {}}),  # not drawn: the rain layers carry it
        Row("flood", 2, 0.0, 0.0, {"members": {"x": {"model": {"extent": {"error": "no terrain offset"}}}}}),
    ]
    wx = registry.get("wx-tongluo-ridge")
    built = hm.build(rows, [FireStation(wx.sensor_id, wx.lon, wx.lat, 4)])
    assert built.layers[FLOOD][bank] == pytest.approx(0.75)  # 1 m deep: HR 1.5 of 2
    assert built.layers[FLOOD][gr, gc] == 0.0  # the river itself
    assert built.layers[FLOOD].max() > 0 and built.sensors[FLOOD][0].sensor_id == "yulin-level"
    r, c = grid.cell_of_lonlat(slope_sensor.lon, slope_sensor.lat)
    assert built.layers[LANDSLIDE_SLOPE][int(r), int(c)] == 1.0
    r, c = grid.cell_of_lonlat(gas.lon, gas.lat)
    assert built.layers[CHEMICAL][int(r), int(c)] == 1.0
    assert built.sensors[CHEMICAL][0].sensor_id == gas.sensor_id
    assert built.layers[FIRE].max() == pytest.approx(0.75 * FIRE_WEATHER_MAX)
    assert (built.layers[FIRE] > 0).sum() <= hm.forest.sum()
    assert built.fire_signature == (("wx-tongluo-ridge", 4),)
    assert Path(district.path / "landcover.geojson").is_file()


def test_district_without_landcover_has_no_forest(yubei: tuple[District, Registry], tmp_path: Path) -> None:
    district, _ = yubei
    copy = tmp_path / "d"
    shutil.copytree(district.path, copy)
    (copy / "landcover.geojson").unlink()
    (copy / "patrols.yaml").unlink()  # its forest patrol names a forest of the land cover
    assert District.load(copy).forest.is_empty
    (copy / "landcover.geojson").write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                            '"geometry": {"type": "Point", "coordinates": [106.7, 29.8]}, '
                                            '"properties": {"kind": "forest"}}]}')
    with pytest.raises(DistrictError, match="landcover.geojson"):
        District.load(copy)
