"""ArduPilot terrain protocol maths (uav.terrain, sitl.ground) and the simulator's ESRI grid."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest

from command.district import Terrain
from sitl.ground import Grid, TerrainDatabase, find_terrain
from sitl.vehicle_sim import SimConfigError
from uav.terrain import (
    BITMAP_MASK, M_PER_DEG, TerrainServer, bit_points, grid_info, report_from_wire,
)

LAT0, LON0 = 29.8, 106.7
LAT0_E7, LON0_E7 = 298_000_000, 1_067_000_000


def north_m(lon: float, lat: float) -> float:
    return (lat - LAT0) * M_PER_DEG


def east_m(lon: float, lat: float) -> float:
    return (lon - LON0) * M_PER_DEG * math.cos(math.radians(LAT0))


def test_gridbit_9_covers_points_4_to_7_north_and_east():
    # bit 9 = row 9 // 8 = 1 (north), column 9 % 8 = 1 (east): points x 4..7, y 4..7;
    # data[i] is north index i // 4, east index i % 4 (AP_Terrain handle_terrain_data).
    server = TerrainServer(north_m)
    [(bit, data)] = server.answer(LAT0_E7, LON0_E7, 100, 1 << 9)
    assert bit == 9
    assert data == tuple(100 * (4 + i // 4) for i in range(16))  # 400, 400, 400, 400, 500...
    east = TerrainServer(east_m).answer(LAT0_E7, LON0_E7, 100, 1 << 9)[0][1]
    assert east == tuple(100 * (4 + i % 4) for i in range(16))  # 400, 500, 600, 700, 400...


def test_last_bit_is_the_north_east_corner():
    points = bit_points(LAT0_E7, LON0_E7, 30, 55)  # row 6, column 7
    lat, lon = points[15]  # point x 27, y 31
    assert north_m(lon, lat) == pytest.approx(27 * 30, abs=0.01)
    assert east_m(lon, lat) == pytest.approx(31 * 30, abs=0.05)
    with pytest.raises(ValueError):
        bit_points(LAT0_E7, LON0_E7, 30, 56)


def test_only_requested_known_bits_are_answered():
    # unknown (NaN) west of LON0 + 1 km: columns 0..2 known (east ≤ 1100 m at spacing 100)
    server = TerrainServer(lambda lon, lat: 300.0 if east_m(lon, lat) < 1150 else math.nan)
    answered = server.answer(LAT0_E7, LON0_E7, 100, BITMAP_MASK)
    bits = {bit for bit, _ in answered}
    assert bits == {row * 8 + col for row in range(7) for col in range(3)}
    assert all(data == (300,) * 16 for _, data in answered)
    assert server.counters["bits_unknown"] == 56 - 21
    assert [b for b, _ in server.answer(LAT0_E7, LON0_E7, 100, (1 << 0) | (1 << 16))] == [0, 16]


def test_bad_requests_are_counted_not_raised():
    server = TerrainServer(north_m)
    assert server.handle(SimpleNamespace(lat=LAT0_E7, lon=LON0_E7, grid_spacing=0, mask=1)) == []
    assert server.counters["bad_requests"] == 1
    [msg] = server.handle(SimpleNamespace(lat=LAT0_E7, lon=LON0_E7, grid_spacing=100, mask=2))
    assert (msg.gridbit, msg.grid_spacing, msg.lat, list(msg.data)[:4]) == (1, 100, LAT0_E7, [0] * 4)


def test_grid_info_blocks_start_on_whole_degrees():
    info = grid_info(LAT0 + 0.0001, LON0 + 0.0001, 100)
    ix = int(((LAT0 + 0.0001) - 29) * M_PER_DEG // 100)
    assert info.idx_x == ix % 24
    assert 0 <= info.idx_y < 28 and 0 <= info.frac_x < 1 and 0 <= info.frac_y < 1
    corner_north = (info.grid_lat_e7 / 1e7 - 29) * M_PER_DEG
    assert corner_north == pytest.approx((ix // 24) * 24 * 100, abs=0.02)


def ramp(lon: float, lat: float) -> float:
    """Ground rising 5 m per 100 m east and 2 m per 100 m north from 200 m."""
    return 200.0 + 0.05 * east_m(lon, lat) + 0.02 * north_m(lon, lat)


def test_vehicle_database_filled_by_the_server_reads_the_ground_back():
    db = TerrainDatabase(100)
    server = TerrainServer(ramp)
    here = (LAT0 + 0.003, LON0 + 0.004)
    assert db.height_amsl(*here) is None  # not loaded: the block is now wanted
    rounds = 0
    while (req := db.next_request(*here)) is not None:
        rounds += 1
        lat_e7, lon_e7, spacing, mask = req
        for msg in server.handle(SimpleNamespace(lat=lat_e7, lon=lon_e7, grid_spacing=spacing,
                                                 mask=mask)):
            assert db.store(msg.lat, msg.lon, msg.grid_spacing, msg.gridbit, list(msg.data))
    assert rounds == 1 and db.loaded == 1 and db.pending == 0
    rng = random.Random(7)
    for _ in range(50):
        lat, lon = here[0] + rng.uniform(-0.002, 0.002), here[1] + rng.uniform(-0.002, 0.002)
        assert db.height_amsl(lat, lon) == pytest.approx(ramp(lon, lat), abs=1.0)
    assert not db.store(LAT0_E7, LON0_E7 + 5, 100, 0, [0] * 16)  # a block never asked for
    assert not db.store(*db.next_request(*here)[:2] if db.next_request(*here) else
                        (LAT0_E7, LON0_E7), 50, 0, [0] * 16)  # another spacing


def test_vehicle_asks_for_its_neighbourhood_under_it_first():
    db = TerrainDatabase(100)
    db.want_around(LAT0 + 0.5, LON0 + 0.5)
    # 0.7 block sizes away: neighbouring blocks, some of them the same (blocks overlap)
    assert 4 <= db.pending <= 9
    here = grid_info(LAT0 + 0.5, LON0 + 0.5, 100)
    lat_e7, lon_e7, spacing, mask = db.next_request(LAT0 + 0.5, LON0 + 0.5)
    assert (lat_e7, lon_e7, spacing, mask) == (here.grid_lat_e7, here.grid_lon_e7, 100, BITMAP_MASK)


def test_terrain_report_without_data_is_nan():
    r = report_from_wire(SimpleNamespace(lat=LAT0_E7, lon=LON0_E7, spacing=0, terrain_height=0.0,
                                         current_height=0.0, pending=3, loaded=0))
    assert math.isnan(r.terrain_height_m) and r.pending == 3


# ---- the simulator's ESRI ASCII grid reader ------------------------------------------------

ASC = """ncols 3
nrows 2
xllcorner 106.0
yllcorner 29.0
cellsize 0.01
nodata_value -9999
100 110 -9999
200 210 220
"""


def test_esri_grid_is_bilinear_between_cell_centres(tmp_path):
    path = tmp_path / "terrain.asc"
    path.write_text(ASC, encoding="ascii")
    grid = Grid.load(path)
    # cell centres: row north (lat 29.015) 100 110 nodata; row south (29.005) 200 210 220
    assert grid.elevation_at(106.005, 29.005) == pytest.approx(200)
    assert grid.elevation_at(106.005, 29.015) == pytest.approx(100)
    assert grid.elevation_at(106.010, 29.010) == pytest.approx((200 + 210 + 100 + 110) / 4)
    assert math.isnan(grid.elevation_at(106.025, 29.015))  # nodata
    assert math.isnan(grid.elevation_at(105.99, 29.01))  # outside
    # the same reading as the product's district terrain
    terrain = Terrain.load(path)
    rng = random.Random(3)
    for _ in range(30):
        lon, lat = rng.uniform(106.0, 106.02), rng.uniform(29.0, 29.02)
        assert grid.elevation_at(lon, lat) == pytest.approx(terrain.elevation_at(lon, lat),
                                                              nan_ok=True)


def test_esri_grid_centre_header_and_errors(tmp_path):
    path = tmp_path / "terrain.asc"
    path.write_text(ASC.replace("xllcorner 106.0", "xllcenter 106.005")
                    .replace("yllcorner 29.0", "yllcenter 29.005"), encoding="ascii")
    assert Grid.load(path).bounds == pytest.approx((106.0, 29.0, 106.03, 29.02))
    path.write_text(ASC.replace("ncols 3", "ncols 4"), encoding="ascii")
    with pytest.raises(SimConfigError, match="expected 2x4"):
        Grid.load(path)
    with pytest.raises(SimConfigError):
        Grid.load(tmp_path / "missing.asc")


def test_terrain_found_beside_the_fleet_file(tmp_path):
    (tmp_path / "fleet.yaml").write_text("vehicles: []\n")
    assert find_terrain(tmp_path / "fleet.yaml") is None
    (tmp_path / "terrain.asc").write_text(ASC)
    assert find_terrain(tmp_path / "fleet.yaml") == tmp_path / "terrain.asc"
    with pytest.raises(SimConfigError):
        find_terrain(tmp_path / "fleet.yaml", tmp_path / "nowhere")


def test_a_vectorised_elevation_source_gives_the_same_sub_grids_in_one_call() -> None:
    import numpy as np

    from uav.terrain import TerrainServer

    calls = {"n": 0}

    def plane(lon, lat):  # takes scalars or arrays, like a grid's bilinear lookup
        calls["n"] += 1
        return 200.0 + 1000.0 * (np.asarray(lon) - 106.0) + 500.0 * (np.asarray(lat) - 29.0)

    def scalar_only(lon: float, lat: float) -> float:
        return float(200.0 + 1000.0 * (lon - 106.0) + 500.0 * (lat - 29.0))

    fast, slow = TerrainServer(plane), TerrainServer(scalar_only)
    for bit in (0, 17, 55):
        assert fast.sub_grid(297_000_000, 1_067_000_000, 100, bit) == slow.sub_grid(297_000_000, 1_067_000_000,
                                                                                      100, bit)
    assert calls["n"] == 3 and fast._vectorised is True and slow._vectorised is False
