"""Sensor registry from sensors.geojson (docs/district-folder.md, "Sensor properties")."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sensors.model import SensorError
from sensors.registry import KINDS, Registry, RegistryError, SensorSpec


def river(sensor_id: str = "RL-001", **props: Any) -> dict[str, Any]:
    base = {
        "id": sensor_id,
        "kind": "river_level",
        "name": "Yulin River at Longxi",
        "name_zh": "御临河龙溪站",
        "quantity": "level",
        "unit": "m",
        "valid_min": 150.0,
        "valid_max": 215.0,
        "interval_s": 300,
        "datum": "Wusong",
        "thresholds": {"warning_m": 183.5, "guaranteed_m": 186.0, "historical_max_m": 191.2},
    }
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.63, 29.72]}, "properties": base}


def gauge(sensor_id: str = "RG-001", **props: Any) -> dict[str, Any]:
    base = {
        "id": sensor_id,
        "kind": "rain_gauge",
        "name": "Lianglu rain gauge",
        "name_zh": "两路雨量站",
        "valid_min": 0,
        "valid_max": 200,
        "interval_s": 300,
    }
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.62, 29.73]}, "properties": base}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def test_loads_both_kinds_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "sensors.geojson"
    path.write_text(json.dumps(collection(river(), gauge())), encoding="utf-8")
    registry = Registry.from_geojson(path)
    assert len(registry) == 2 and list(registry) == ["RL-001", "RG-001"]
    rl = registry["RL-001"]
    assert isinstance(rl, SensorSpec)
    assert (rl.kind, rl.quantity, rl.unit, rl.datum) == ("river_level", "level", "m", "Wusong")
    assert (rl.lon, rl.lat) == (106.63, 29.72)
    assert rl.thresholds["warning_m"] == 183.5
    assert rl.name_zh == "御临河龙溪站"
    rg = registry["RG-001"]
    # quantity and unit default from the kind
    assert (rg.quantity, rg.unit, rg.valid_min, rg.interval_s) == ("rain", "mm", 0.0, 300.0)
    assert dict(rg.thresholds) == {}
    assert registry.get("nope") is None
    assert registry.of_kind("rain_gauge") == [rg]
    assert hash(rl)  # frozen spec is hashable despite its mappings


def test_kinds_table() -> None:
    assert (KINDS["river_level"].quantity, KINDS["river_level"].unit) == ("level", "m")
    assert (KINDS["rain_gauge"].quantity, KINDS["rain_gauge"].unit) == ("rain", "mm")


def test_spec_is_read_only() -> None:
    spec = Registry.from_geojson(collection(river()))["RL-001"]
    with pytest.raises(AttributeError):
        spec.valid_max = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.thresholds["warning_m"] = 1.0  # type: ignore[index]


def _broken(feature: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    feature = copy.deepcopy(feature)
    target = feature
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return feature


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (["properties", "id"], "RL 001", "must match"),
        (["properties", "id"], KeyError, "'id' is missing"),
        (["properties", "kind"], "tide_gauge", "kind 'tide_gauge' is not one of"),
        (["properties", "unit"], "cm", "reports in 'm', not 'cm'"),
        (["properties", "quantity"], "stage", "reports quantity 'level'"),
        (["properties", "valid_min"], 300, "valid_min 300.0 must be below valid_max"),
        (["properties", "valid_max"], "high", "'valid_max' must be a finite number"),
        (["properties", "valid_max"], KeyError, "'valid_max' is missing"),
        (["properties", "interval_s"], 0, "interval_s must be positive"),
        (["properties", "name"], 7, "'name' must be text"),
        (["properties", "datum"], 85, "datum must be text"),
        (["properties", "thresholds"], {"warn_m": 1.0}, "unknown threshold(s) warn_m"),
        (["properties", "thresholds"], {"warning_m": "x"}, "'warning_m' must be a finite number"),
        (["properties", "thresholds"], [1], "thresholds must be an object"),
        (["geometry", "type"], "LineString", "geometry must be a Point"),
        (["geometry", "coordinates"], [106.6], "coordinates must be"),
        (["geometry", "coordinates"], [206.6, 29.7], "outside WGS84"),
        (["type"], "Thing", "not a GeoJSON Feature"),
        (["properties"], None, "properties must be an object"),
    ],
)
def test_bad_entries_name_the_feature(path: list[str], value: Any, words: str) -> None:
    bad = _broken(river("RL-009"), path, value)
    with pytest.raises(RegistryError) as info:
        Registry.from_geojson(collection(gauge(), bad))
    message = str(info.value)
    assert words in message
    assert "sensor feature 1" in message
    assert isinstance(info.value, SensorError)


def test_duplicate_ids() -> None:
    with pytest.raises(RegistryError, match=r"sensor feature 1 repeats id 'RL-001' \(first in sensor feature 0\)"):
        Registry.from_geojson(collection(river(), river()))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "'features' must be a list"),
    ],
)
def test_bad_collections(data: dict[str, Any], words: str) -> None:
    with pytest.raises(RegistryError, match=words):
        Registry.from_geojson(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        Registry.from_geojson(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"broken\.geojson: not JSON"):
        Registry.from_geojson(broken)


# --- routing: a river gauge's forecast from an upstream gauge (Muskingum) --------------------------

def routed(sensor_id: str = "RL-002", **routing: Any) -> dict[str, Any]:
    base = {"upstream": "RL-001", "k_h": 2.5, "x": 0.2, "rating": {"a": 20.9, "h0_m": 180.7, "b": 1.6},
            "upstream_rating": {"a": 26.6, "h0_m": 188.8, "b": 1.5}}
    for key, value in routing.items():
        if value is KeyError:
            del base[key]
        else:
            base[key] = value
    return river(sensor_id, routing=base)


def test_routing_is_checked_and_its_step_filled_in() -> None:
    registry = Registry.from_geojson(collection(river(), routed(), routed("RL-003", upstream="RL-002", x=0.05, dt_h=0.5,
                                                                          lateral_m3s=5, horizon_h=24)))
    first = registry["RL-002"].properties["routing"]
    assert first["dt_h"] == pytest.approx(1.0)  # 2KX = 1 h: a quarter hour would be unstable
    assert (first["upstream"], first["lateral_m3s"], "horizon_h" in first) == ("RL-001", 0.0, False)
    assert first["rating"] == {"a": 20.9, "h0_m": 180.7, "b": 1.6}
    second = registry["RL-003"].properties["routing"]
    assert (second["dt_h"], second["lateral_m3s"], second["horizon_h"]) == (0.5, 5.0, 24.0)
    short = Registry.from_geojson(collection(river(), routed(k_h=1.0, x=0.1)))  # 2KX = 0.2 h
    assert short["RL-002"].properties["routing"]["dt_h"] == 0.25
    assert "routing" not in registry["RL-001"].properties


@pytest.mark.parametrize(
    ("features", "words"),
    [
        ((river(), routed(upstream="RL-404")), "upstream 'RL-404' is not a registered sensor"),
        ((gauge("RG-001"), routed(upstream="RG-001")), "upstream 'RG-001' is a rain_gauge, not a river_level"),
        ((river(), routed(upstream="RL-002")), "the reaches loop (RL-002 → RL-002)"),
        ((routed("RL-001", upstream="RL-002"), routed("RL-002", upstream="RL-001")),
         "the reaches loop (RL-001 → RL-002 → RL-001)"),
        ((river(), routed(upstream="RL 001")), "upstream 'RL 001' is not a sensor id"),
        ((river(), routed(upstream=KeyError)), "'upstream' is missing"),
        ((river(), routed(k_h=0)), "k_h (Muskingum K, the reach's travel time) must be positive"),
        ((river(), routed(k_h="long")), "'k_h' must be a finite number"),
        ((river(), routed(x=0.6)), "x (Muskingum X) must lie in [0, 0.5]"),
        ((river(), routed(x=KeyError)), "'x' is missing"),
        ((river(), routed(dt_h=0.25)), "dt_h = 0.25 h is outside 2KX = 1 h ≤ Δt ≤ 2K(1−X) = 4 h"),
        ((river(), routed(dt_h=6.0)), "dt_h = 6 h is outside"),
        ((river(), routed(dt_h=0)), "dt_h must be positive"),
        ((river(), routed(rating=KeyError)), "rating is missing (the downstream gauge's"),
        ((river(), routed(upstream_rating=KeyError)), "upstream_rating is missing (the upstream gauge's"),
        ((river(), routed(rating={"a": 20.9, "b": 1.6})), "rating: property 'h0_m' is missing"),
        ((river(), routed(upstream_rating={"a": -1.0, "h0_m": 188.8, "b": 1.5})),
         "upstream_rating: a must be positive"),
        ((river(), routed(rating={"a": 20.9, "h0_m": 180.7, "b": 0})), "rating: b must be positive"),
        ((river(), routed(rating=[20.9, 180.7, 1.6])), "rating must be an object {a, h0_m, b}"),
        ((river(), routed(lateral_m3s=-5.0)), "lateral_m3s must not be negative"),
        ((river(), routed(horizon_h=0)), "horizon_h must be positive"),
        ((river(), routed(k=2.5)), "unknown key(s) k"),
        ((river(), river("RL-002", routing="RL-001")), "routing must be an object"),
        ((river(), gauge(routing={"upstream": "RL-001"})),
         "routing is for river gauges (river_level), not a rain_gauge"),
    ],
)
def test_bad_routing_names_the_gauge(features: tuple[dict[str, Any], ...], words: str) -> None:
    with pytest.raises(RegistryError) as info:
        Registry.from_geojson(collection(*features))
    message = str(info.value)
    assert words in message
    assert "sensor feature 1" in message or "sensor feature 0" in message
