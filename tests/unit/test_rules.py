"""Threshold rules: every level boundary of the flood and rainstorm signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from command.risk.rules import (
    NOTE,
    Level,
    RainThresholds,
    assess_rainstorm,
    assess_river_level,
    rain_accumulations,
    rainstorm_signal,
    river_level_signal,
)

CUNTAN = {"warning_m": 180.5, "guaranteed_m": 183.5, "historical_max_m": 191.62, "approach_m": 1.0}


def test_level_names() -> None:
    assert [lv.colour for lv in Level] == ["none", "blue", "yellow", "orange", "red"]
    assert [lv.colour_zh for lv in Level] == ["无", "蓝色", "黄色", "橙色", "红色"]
    assert [lv.response for lv in Level] == ["", "IV", "III", "II", "I"]
    assert Level.RED.response_zh == "Ⅰ级" and Level.BLUE.response_zh == "Ⅳ级"
    assert Level.NONE < Level.BLUE < Level.YELLOW < Level.ORANGE < Level.RED


@pytest.mark.parametrize(("level_m", "expected"), [
    (170.0, Level.NONE),
    (179.49, Level.NONE),
    (179.5, Level.BLUE),  # exactly approach_m below warning
    (180.49, Level.BLUE),
    (180.5, Level.YELLOW),
    (183.49, Level.YELLOW),
    (183.5, Level.ORANGE),
    (191.61, Level.ORANGE),
    (191.62, Level.RED),
    (195.0, Level.RED),
])
def test_river_level_boundaries(level_m: float, expected: Level) -> None:
    assert river_level_signal(level_m, **CUNTAN) is expected


def test_river_without_approach_band_has_no_blue() -> None:
    assert river_level_signal(180.49, **{**CUNTAN, "approach_m": 0.0}) is Level.NONE


def test_river_rejects_thresholds_out_of_order() -> None:
    with pytest.raises(ValueError, match="out of order"):
        river_level_signal(180.0, warning_m=184.0, guaranteed_m=183.5, historical_max_m=191.6, approach_m=1.0)


def test_river_assessment_reason() -> None:
    a = assess_river_level("cuntan-level", 181.02, datum="Wusong", **CUNTAN)
    assert a.kind == "flood" and a.level is Level.YELLOW and a.sensor_id == "cuntan-level"
    assert a.reason == "Gauge exceeds the warning level 180.50 m (Wusong): 181.02 m"
    assert a.reason_zh == "水位181.02 米，超过警戒水位180.50 米（吴淞基面）"
    assert a.threshold == 180.5 and a.value == 181.02
    assert a.note == NOTE and "not an official" in a.note and "非官方" in a.note_zh
    assert assess_river_level("g", 192.0, **CUNTAN).reason.startswith("Gauge exceeds the historical maximum 191.62 m")
    blue = assess_river_level("g", 180.0, **CUNTAN)
    assert blue.level is Level.BLUE and "approaches the warning level" in blue.reason
    assert assess_river_level("g", 175.0, **CUNTAN).threshold is None


T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def test_window_edges() -> None:
    times = [T0 - timedelta(hours=3), T0 - timedelta(hours=3) + timedelta(seconds=1), T0, T0 + timedelta(seconds=1)]
    acc = rain_accumulations(times, [10.0, 20.0, 5.0, 100.0], T0)
    # (now - 3 h, now]: the stamp at exactly now - 3 h and the one after now are out.
    assert acc[3] == 25.0
    assert acc[6] == 35.0 and acc[12] == 35.0


def test_windows_sum_every_interval() -> None:
    times = [T0 - timedelta(minutes=5 * k) for k in range(0, 12 * 12)]  # 12 h of 5-minute reports
    acc = rain_accumulations(times, [1.0] * len(times), T0)
    assert acc == {3: 36.0, 6: 72.0, 12: 144.0}


def test_rain_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        rain_accumulations([T0], [1.0, 2.0], T0)


@pytest.mark.parametrize(("acc", "expected"), [
    ({3: 0.0, 6: 0.0, 12: 0.0}, Level.NONE),
    ({3: 10.0, 6: 20.0, 12: 49.9}, Level.NONE),
    ({3: 10.0, 6: 20.0, 12: 50.0}, Level.BLUE),
    ({3: 10.0, 6: 49.9, 12: 80.0}, Level.BLUE),
    ({3: 10.0, 6: 50.0, 12: 80.0}, Level.YELLOW),
    ({3: 49.9, 6: 60.0, 12: 80.0}, Level.YELLOW),
    ({3: 50.0, 6: 60.0, 12: 80.0}, Level.ORANGE),
    ({3: 99.9, 6: 120.0, 12: 150.0}, Level.ORANGE),
    ({3: 100.0, 6: 120.0, 12: 150.0}, Level.RED),
    ({3: 100.0}, Level.RED),
    ({}, Level.NONE),
])
def test_rainstorm_boundaries(acc: dict[int, float], expected: Level) -> None:
    assert rainstorm_signal(acc) is expected


def test_rainstorm_threshold_overrides() -> None:
    th = RainThresholds.from_mapping({"orange_3h_mm": 40.0, "unknown": 1.0})
    assert rainstorm_signal({3: 45.0, 6: 45.0, 12: 45.0}, th) is Level.ORANGE
    assert rainstorm_signal({3: 45.0, 6: 45.0, 12: 45.0}) is Level.NONE


def test_rainstorm_assessment_reason() -> None:
    a = assess_rainstorm("rain-longxing", {3: 72.0, 6: 80.0, 12: 81.0})
    assert a.kind == "rainstorm" and a.level is Level.ORANGE and a.window_h == 3 and a.value == 72.0
    assert a.reason == "Rain gauge: 72.0 mm in 3 h, at or above 50 mm in 3 h"
    assert "3 小时降雨 72.0 毫米" in a.reason_zh
    quiet = assess_rainstorm("r", {3: 1.0, 6: 2.0, 12: 3.0})
    assert quiet.level is Level.NONE and quiet.threshold is None and "below" in quiet.reason
