"""Flood extent at a gauge's reach on the synthetic district's terrain."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from command.district import District
from command.floodmap import FloodMapper
from sensors.registry import Registry
from sitl.scenarios.yubei.generate import generate


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(tmp_path_factory.mktemp("floodmap") / "d"))


def test_a_higher_level_floods_more_and_a_gauge_needs_its_datum_offset(district: District) -> None:
    gauge = Registry.from_geojson(district.sensors_path)["cuntan-level"]
    mapper = FloodMapper(district)
    areas = [mapper.extent(gauge, level)["land_area_km2"] for level in (178.0, 181.0, 184.0, 190.0)]
    assert areas == sorted(areas) and areas[-1] > areas[0] > 0
    e = mapper.extent(gauge, 184.0)
    assert e["surface_m"] == 184.0 and e["max_depth_m"] > 0 and e["geometry"]["type"] == "MultiPolygon"
    # the reach limits it: a short reach floods less
    assert FloodMapper(district, reach_m=5_000.0).extent(gauge, 184.0)["area_km2"] < e["area_km2"]
    props = {k: v for k, v in gauge.properties.items() if k != "terrain_offset_m"}
    unknown = dataclasses.replace(gauge, properties=MappingProxyType(props))
    assert "no terrain_offset_m" in mapper.extent(unknown, 184.0)["error"]
    shifted = dataclasses.replace(gauge, properties=MappingProxyType({**props, "terrain_offset_m": -2.0}))
    assert mapper.extent(shifted, 184.0)["surface_m"] == 182.0
