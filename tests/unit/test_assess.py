"""Which model assesses which sensor: flood trend, slope movement, gas alarms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from command.risk.assess import ASSESSED, assess
from command.risk.rules import Level
from sensors.model import Reading
from sensors.registry import Registry

T0 = datetime(2025, 7, 1, tzinfo=timezone.utc)


def feature(sid: str, kind: str, **props: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.7, 29.8]},
            "properties": {"id": sid, "kind": kind, "interval_s": 3600, **props}}


REG = Registry.from_geojson({"type": "FeatureCollection", "features": [
    feature("gauge", "river_level", valid_min=150, valid_max=200, datum="Wusong",
            thresholds={"warning_m": 180.5, "guaranteed_m": 183.5, "historical_max_m": 191.62}),
    feature("gnss", "gnss_displacement", name="Slope GNSS", thresholds={"v0_mm_per_day": 1.0}),
    feature("plant", "gas_detector", site="riverside-plant", thresholds={"nh3_yellow_ppm": 50.0}),
]})


def test_a_rising_gauge_says_how_fast_and_when_it_reaches_warning() -> None:
    history = [(T0 + timedelta(hours=h), 178.0 + 0.5 * h) for h in range(4)]  # 0.5 m/h
    now, value = history[-1]
    a = assess(REG["gauge"], Reading("gauge", "level", value, "m", now), history=history)
    assert a is not None and a.level == Level.BLUE  # 179.5: within 1 m of warning
    assert a.extra is not None and a.extra["rise_m_per_h"] == pytest.approx(0.5)
    assert a.extra["hours_to_warning"] == pytest.approx(2.0)
    assert "rising 0.50 m/h" in a.reason and "warning level in ~2.0 h" in a.reason
    assert "上涨" in a.reason_zh


def creep_then_failure(days: int, t_f_day: float, v0: float = 1.0) -> list[tuple[datetime, float]]:
    """Constant creep at v0 mm/day, then v = A/(t_f − t) (Fukuzono) from day 20."""
    out, disp, step = [], 0.0, 0.1
    t = 0.0
    while t <= days:
        v = v0 if t < 20 else max(v0, 5.0 / (t_f_day - t))
        out.append((T0 + timedelta(days=t), round(disp, 3)))
        disp += v * step
        t += step
    return out


def test_an_accelerating_slope_rises_to_red_with_a_failure_forecast_and_steady_creep_opens_nothing() -> None:
    steady = creep_then_failure(19, 30.0)
    a = assess(REG["gnss"], Reading("gnss", "horizontal", steady[-1][1], "mm", steady[-1][0]), history=steady)
    assert a is not None and a.kind == "landslide" and a.level == Level.NONE
    assert a.extra is not None and a.extra["stage"] == "constant_velocity"

    failing = creep_then_failure(29.9, 30.0)  # 2.4 hours before the scripted failure
    a = assess(REG["gnss"], Reading("gnss", "horizontal", failing[-1][1], "mm", failing[-1][0]), history=failing)
    assert a is not None and a.level >= Level.ORANGE  # red needs two evaluations at ≥ 85° (persistence)
    assert a.extra is not None and a.extra["stage"] in ("medium_acceleration", "imminent_failure")
    assert a.extra is not None and "failure_time" in a.extra
    forecast = datetime.fromisoformat(str(a.extra["failure_time"]))
    assert abs((forecast - (T0 + timedelta(days=30))).total_seconds()) < 2 * 86400
    assert "tangent angle" in a.reason and "切线角" in a.reason_zh


def test_a_young_record_is_not_judged() -> None:
    few = creep_then_failure(1, 30.0)[:3]
    a = assess(REG["gnss"], Reading("gnss", "horizontal", few[-1][1], "mm", few[-1][0]), history=few)
    assert a is not None and a.level == Level.NONE and "Too few readings" in a.reason


@pytest.mark.parametrize(("gas", "ppm", "level"), [
    ("nh3", 10.0, Level.NONE), ("nh3", 30.0, Level.BLUE), ("nh3", 55.0, Level.YELLOW),  # site override: 50
    ("h2s", 120.0, Level.RED), ("cl2", 0.1, Level.NONE)])
def test_gas_readings_against_the_substance_and_site_levels(gas: str, ppm: float, level: Level) -> None:
    a = assess(REG["plant"], Reading("plant", gas, ppm, "ppm", T0))
    assert a is not None and a.kind == "chemical_leak" and a.level == level
    assert a.extra is not None and a.extra["site"] == "riverside-plant"


def test_context_records_are_not_assessed() -> None:
    assert assess(REG["gnss"], Reading("gnss", "up", 3.0, "mm", T0)) is None
    assert "battery" not in ASSESSED["river_level"]
