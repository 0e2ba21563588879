"""Which model assesses which sensor: flood trend and routing, slope movement, gas alarms."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from command.risk.assess import ASSESSED, assess
from command.risk.flood import RatingCurve, RiverThresholds, route_to_downstream
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


# --- a downstream gauge's forecast routed from its upstream gauge (Muskingum) -------------------

ROUTING = {"upstream": "upper", "k_h": 2.0, "x": 0.1,  # 2KX = 0.4 h: the step defaults to 0.4 h
           "rating": {"a": 20.0, "h0_m": 180.5, "b": 1.6}, "upstream_rating": {"a": 25.0, "h0_m": 188.8, "b": 1.5},
           "lateral_m3s": 5.0}
ROUTED = Registry.from_geojson({"type": "FeatureCollection", "features": [
    feature("upper", "river_level", valid_min=175, valid_max=215, datum="Huanghai",
            thresholds={"warning_m": 197.0, "guaranteed_m": 199.0, "historical_max_m": 202.0}),
    feature("lower", "river_level", valid_min=167, valid_max=207, datum="Huanghai", routing=ROUTING,
            thresholds={"warning_m": 186.2, "guaranteed_m": 188.7, "historical_max_m": 192.4}),
]})


def smoothstep_wave(start_h: float, end_h: float, *, hours: float, base_m: float, rise_m: float
                    ) -> list[tuple[datetime, float]]:
    """Levels every 5 minutes for ``hours``: a smoothstep rise of ``rise_m`` between start_h and end_h."""
    out = []
    for k in range(int(hours * 12) + 1):
        h = k / 12
        x = min(max((h - start_h) / (end_h - start_h), 0.0), 1.0)
        out.append((T0 + timedelta(hours=h), round(base_m + rise_m * x * x * (3 - 2 * x), 3)))
    return out


def test_a_routed_gauge_forecasts_the_upstream_wave_without_raising_its_level() -> None:
    upper = smoothstep_wave(1.0, 6.0, hours=5.0, base_m=190.0, rise_m=5.2)  # the wave still rising upstream
    lower = smoothstep_wave(3.0, 8.0, hours=5.0, base_m=182.2, rise_m=5.2)
    now, value = lower[-1]
    reading = Reading("lower", "level", value, "m", now)
    spec = ROUTED["lower"]
    assert spec.properties["routing"]["dt_h"] == pytest.approx(0.4)  # the registry filled in the step
    plain = assess(spec, reading, history=lower)
    a = assess(spec, reading, history=lower, upstream_history=upper)
    assert plain is not None and a is not None

    th = spec.thresholds
    expected = route_to_downstream(
        [t for t, _ in upper], [v for _, v in upper], upstream_rating=RatingCurve(25.0, 188.8, 1.5),
        downstream_rating=RatingCurve(20.0, 180.5, 1.6), k_h=2.0, x=0.1, dt_h=0.4, lateral_m3s=5.0,
        thresholds=RiverThresholds(th["warning_m"], th["guaranteed_m"], th["historical_max_m"]))
    assert expected.hours_to_warning is not None  # the wave on its way reaches the warning level
    assert a.extra is not None and plain.extra is not None
    routed = a.extra["routed"]
    assert routed["upstream"] == "upper" and (routed["k_h"], routed["x"]) == (2.0, 0.1)
    assert routed["hours_to_warning"] == pytest.approx(expected.hours_to_warning, abs=0.005)
    assert routed["hours_to_guaranteed"] == (None if expected.hours_to_guaranteed is None
                                             else pytest.approx(expected.hours_to_guaranteed, abs=0.005))
    assert routed["peak_level_m"] == pytest.approx(expected.peak_level_m, abs=0.005)
    assert now < datetime.fromisoformat(routed["peak_time"]) <= expected.peak_time

    # a forecast informs: the level is the reading's own, the trend is untouched
    assert a.level == plain.level == Level.NONE  # 184.0 m: below the blue band (185.2 m)
    assert {k: v for k, v in a.extra.items() if k != "routed"} == plain.extra
    assert a.reason.startswith(plain.reason) and a.reason_zh.startswith(plain.reason_zh)
    assert "routed from upper (Muskingum K=2 h, X=0.1): peak " in a.reason
    assert f"warning level in ~{expected.hours_to_warning:.1f} h" in a.reason.split("routed from")[1]
    assert "马斯京根" in a.reason_zh and "警戒水位" in a.reason_zh.split("马斯京根")[1]

    # upstream readings after this one are not known at its time: they change nothing
    later = smoothstep_wave(1.0, 6.0, hours=7.0, base_m=190.0, rise_m=5.2)
    again = assess(spec, reading, history=lower, upstream_history=later)
    assert again is not None and again.extra is not None and again.extra["routed"] == routed


def test_a_gauge_above_warning_counts_to_the_next_threshold() -> None:
    upper = smoothstep_wave(0.0, 3.0, hours=6.0, base_m=192.0, rise_m=4.0)
    lower = [(T0 + timedelta(hours=6) - timedelta(minutes=5 * k), 187.0) for k in (1, 0)]
    a = assess(ROUTED["lower"], Reading("lower", "level", 187.0, "m", lower[-1][0]), history=lower,
               upstream_history=upper)
    assert a is not None and a.level == Level.YELLOW  # above warning: the reading's level, not the forecast's
    assert a.extra is not None and a.extra["routed"]["hours_to_warning"] is None


@pytest.mark.parametrize(("upper", "routing", "words"), [
    (smoothstep_wave(1.0, 6.0, hours=5.0, base_m=190.0, rise_m=5.2)[-12:], None,
     "levels span 0.9 h, less than K = 2 h"),
    (smoothstep_wave(1.0, 6.0, hours=5.0, base_m=190.0, rise_m=5.2)[-1:], None, "too little upstream record: 1"),
    (smoothstep_wave(1.0, 6.0, hours=3.5, base_m=190.0, rise_m=5.2), None, "1.5 h older than this reading"),
    (smoothstep_wave(1.0, 6.0, hours=5.0, base_m=190.0, rise_m=5.2), {**ROUTING, "dt_h": 0.1}, "outside 2KX"),
])
def test_no_routed_forecast_leaves_the_trend_and_says_why(upper: list[tuple[datetime, float]],
                                                          routing: dict[str, object] | None, words: str) -> None:
    spec = ROUTED["lower"]
    if routing is not None:  # a spec built by hand, past the registry's checks
        spec = replace(spec, properties=MappingProxyType({**spec.properties, "routing": routing}))
    lower = smoothstep_wave(3.0, 8.0, hours=5.0, base_m=182.2, rise_m=5.2)
    reading = Reading("lower", "level", lower[-1][1], "m", lower[-1][0])
    plain = assess(spec, reading, history=lower)
    a = assess(spec, reading, history=lower, upstream_history=upper)
    assert a is not None and plain is not None and a.extra is not None and plain.extra is not None
    assert words in a.extra["routed_error"]
    assert "routed" not in a.extra and (a.level, a.reason) == (plain.level, plain.reason)
    assert {k: v for k, v in a.extra.items() if k != "routed_error"} == plain.extra
