"""Airspace check of straight-leg paths against zones and the 120 m ceiling."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Polygon, box

from command.dispatch.airspace import Zone, check_path
from command.district import Terrain

CORE = Zone("core", "Jiangbei airport no-fly core", "prohibited", box(106.60, 29.70, 106.62, 29.72),
            name_zh="禁飞核心区")
Z60 = Zone("z60", "Airport 60 m zone", "height_limited", box(106.70, 29.70, 106.72, 29.72), 60.0)
CTRL = Zone("ctrl", "Military area", "controlled", box(106.80, 29.70, 106.82, 29.72))


def flat(height_m: float = 300.0) -> Terrain:
    return Terrain(np.full((60, 60), height_m), 106.5, 29.6, 0.01)


def slope() -> Terrain:
    """Ground rising 10 m per 0.01° eastwards from 200 m at 106.5°E (cell centres)."""
    z = np.tile(200.0 + 10.0 * np.arange(60), (60, 1))
    return Terrain(z, 106.495, 29.6, 0.01)


def test_clear_path() -> None:
    assert check_path([(106.65, 29.65), (106.66, 29.66)], 100.0, [CORE, Z60, CTRL]) == []


def test_crosses_prohibited_zone_at_any_height() -> None:
    (v,) = check_path([(106.59, 29.71), (106.63, 29.71)], 10.0, [CORE])
    assert v.kind == "prohibited" and v.zone_id == "core"
    assert v.reason == "crosses prohibited zone 'Jiangbei airport no-fly core'"
    assert "禁飞核心区" in v.reason_zh
    assert v.at_lonlat is not None and CORE.contains(*v.at_lonlat)


def test_clips_a_corner_between_samples() -> None:
    # The line cuts the zone's corner for a few metres: the exact intersection catches it.
    path = [(106.595, 29.7148), (106.6055, 29.6995)]
    assert [v.kind for v in check_path(path, 10.0, [CORE], step_m=10_000)] == ["prohibited"]


def test_height_limited_zone() -> None:
    path = [(106.69, 29.71), (106.73, 29.71)]
    (v,) = check_path(path, 80.0, [Z60])
    assert v.reason == "flies 80 m above ground inside 'Airport 60 m zone' (ceiling 60 m)"
    assert v.max_agl_m == pytest.approx(80.0)
    assert check_path(path, 60.0, [Z60]) == []
    # Interpolated between vertices: 40 m at the west end, 100 m at the east end.
    (v,) = check_path(path, [40.0, 100.0], [Z60])
    assert 80.0 < v.max_agl_m <= 100.0


def test_controlled_zone_needs_approval() -> None:
    (v,) = check_path([(106.79, 29.71), (106.83, 29.71)], 50.0, [CTRL])
    assert v.kind == "controlled" and "air traffic management" in v.reason


def test_national_ceiling_everywhere() -> None:
    (v,) = check_path([(106.65, 29.65), (106.66, 29.66)], 150.0, [])
    assert v.kind == "national_ceiling" and v.zone_id is None
    assert v.reason.startswith("flies 150 m above ground, above the 120 m true-height ceiling")
    assert check_path([(106.65, 29.65)], 120.0, []) == []
    assert [v.kind for v in check_path([(106.65, 29.65)], 90.0, [], cap_agl_m=80.0)] == ["national_ceiling"]


def test_terrain_under_a_level_leg() -> None:
    # Level flight at 400 m AMSL from 106.60°E (ground 300 m) east to 106.62°E (ground 320 m).
    t = slope()
    path = [(106.60, 29.70), (106.62, 29.70)]
    vertex_agl = [400.0 - t.elevation_at(*p) for p in path]
    assert vertex_agl == pytest.approx([100.0, 80.0])
    assert check_path(path, vertex_agl, [], terrain=t) == []
    assert check_path(path, vertex_agl, [], terrain=t, cap_agl_m=90.0)[0].max_agl_m == pytest.approx(100.0)
    # Climbing from 60 m to 260 m above ground while flying downhill: above the cap near the end.
    (v,) = check_path([(106.62, 29.70), (106.60, 29.70)], [60.0, 260.0], [], terrain=t)
    assert v.kind == "national_ceiling" and v.max_agl_m == pytest.approx(260.0)


def test_terrain_versus_vertex_interpolation() -> None:
    # The same vertex heights read differently with terrain: a level leg over a valley.
    z = np.full((60, 60), 300.0)
    z[:, 25:35] = 150.0  # a valley 150 m deep between 106.745 and 106.845 (cell centres 106.75..106.84)
    t = Terrain(z, 106.5, 29.6, 0.01)
    path = [(106.70, 29.80), (106.90, 29.80)]
    assert check_path(path, 100.0, []) == []  # no terrain: 100 m all along
    (v,) = check_path(path, 100.0, [], terrain=t)  # level at 400 m AMSL: 250 m over the valley
    assert v.kind == "national_ceiling" and v.max_agl_m == pytest.approx(250.0)


def test_leaving_the_terrain_model_is_reported() -> None:
    (v,) = check_path([(106.70, 29.80), (108.0, 29.80)], 50.0, [], terrain=flat())
    assert v.kind == "terrain"


def test_zone_validation() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        Zone("z", "Z", "height_limited", box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="kind"):
        Zone("z", "Z", "forbidden", box(0, 0, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="polygon"):
        Zone("z", "Z", "prohibited", Polygon())


def test_height_checks_per_vertex_count() -> None:
    with pytest.raises(ValueError, match="heights"):
        check_path([(106.6, 29.6), (106.7, 29.7)], [1.0, 2.0, 3.0], [])
