"""Launch weather check: limits, stale or missing weather, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from command.dispatch.launch import (
    MULTIROTOR,
    AirframeLimits,
    Override,
    boat_limits,
    check_launch,
    override,
)

NOW = datetime(2024, 7, 1, 6, 0, tzinfo=UTC)


def wx(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"wind_mps": 5.0, "gust_mps": 8.0, "rain_mm_per_h": 0.0, "temp_c": 31.0,
                            "observed_at": NOW - timedelta(minutes=10), "station_id": "A5701", "distance_km": 4.2}
    base.update(kw)
    return base


def test_fair_weather_launches() -> None:
    c = check_launch(MULTIROTOR, wx(), now=NOW)
    assert c.ok and c.reasons == () and c.codes == ()
    assert c.station_id == "A5701" and c.age_s == pytest.approx(600.0) and c.distance_km == pytest.approx(4.2)
    assert c.checked_at == NOW and c.limits is MULTIROTOR


@pytest.mark.parametrize(("field", "value", "code"), [
    ("wind_mps", 12.5, "wind"),
    ("gust_mps", 16.0, "gust"),
    ("rain_mm_per_h", 3.0, "rain"),
    ("temp_c", -25.0, "temp_low"),
    ("temp_c", 51.0, "temp_high"),
])
def test_each_limit_refuses(field: str, value: float, code: str) -> None:
    c = check_launch(MULTIROTOR, wx(**{field: value}), now=NOW)
    assert not c.ok and c.codes == (code,)
    assert len(c.reasons) == len(c.reasons_zh) == 1
    assert f"{value:.1f}" in c.reasons[0] and MULTIROTOR.name in c.reasons[0]


def test_limits_themselves_are_allowed() -> None:
    c = check_launch(MULTIROTOR, wx(wind_mps=12.0, gust_mps=15.0, rain_mm_per_h=2.5, temp_c=50.0), now=NOW)
    assert c.ok
    assert check_launch(MULTIROTOR, wx(temp_c=-20.0), now=NOW).ok


def test_every_failure_is_listed() -> None:
    c = check_launch(MULTIROTOR, wx(wind_mps=14.0, gust_mps=20.0, rain_mm_per_h=10.0), now=NOW)
    assert c.codes == ("wind", "gust", "rain")
    assert "平均风速" in c.reasons_zh[0] and "阵风" in c.reasons_zh[1] and "降雨" in c.reasons_zh[2]


def test_stale_weather_refuses() -> None:
    c = check_launch(MULTIROTOR, wx(observed_at=NOW - timedelta(minutes=45)), now=NOW)
    assert c.codes == ("stale",) and c.age_s == pytest.approx(2700.0)
    assert "45 min old" in c.reasons[0] and "A5701" in c.reasons[0]
    assert check_launch(MULTIROTOR, wx(observed_at=NOW - timedelta(minutes=30)), now=NOW).ok
    c = check_launch(MULTIROTOR, wx(observed_at=NOW - timedelta(minutes=10)), now=NOW, max_age_s=300)
    assert c.codes == ("stale",)


def test_missing_weather_refuses() -> None:
    for weather in (None, {}):
        c = check_launch(MULTIROTOR, weather, now=NOW)
        assert not c.ok and c.codes == ("missing",) and c.station_id is None and c.age_s is None
    c = check_launch(MULTIROTOR, {k: v for k, v in wx().items() if k != "gust_mps"}, now=NOW)
    assert c.codes == ("missing:gust_mps",) and c.reasons == ("no gust reading",)
    c = check_launch(MULTIROTOR, wx(temp_c=None, rain_mm_per_h=float("nan"), wind_mps="calm"), now=NOW)
    assert c.codes == ("missing:wind_mps", "missing:rain_mm_per_h", "missing:temp_c")  # temp_c said once


def test_observation_time_problems() -> None:
    assert check_launch(MULTIROTOR, wx(observed_at=None), now=NOW).codes == ("bad_time",)
    assert check_launch(MULTIROTOR, wx(observed_at="yesterday"), now=NOW).codes == ("bad_time",)
    naive = check_launch(MULTIROTOR, wx(observed_at=datetime(2024, 7, 1, 5, 55)), now=NOW)
    assert naive.codes == ("bad_time",) and "time zone" in naive.reasons[0]
    assert check_launch(MULTIROTOR, wx(observed_at="2024-07-01T13:55:00+08:00"), now=NOW).ok  # ISO text, Beijing
    future = check_launch(MULTIROTOR, wx(observed_at=NOW + timedelta(minutes=5)), now=NOW)
    assert future.codes == ("future",)
    assert check_launch(MULTIROTOR, wx(observed_at=NOW + timedelta(seconds=30)), now=NOW).ok  # clock jitter


def test_far_station_refuses() -> None:
    c = check_launch(MULTIROTOR, wx(distance_km=40.0), now=NOW)
    assert c.codes == ("far",) and "40.0 km" in c.reasons[0]
    assert check_launch(MULTIROTOR, wx(distance_km=40.0), now=NOW, max_distance_km=50.0).ok


def test_boat_checks_the_current_not_the_rain() -> None:
    boat = boat_limits(5.0)
    assert boat.max_current_mps == pytest.approx(4.5) and boat.max_rain_mm_per_h is None
    base = wx(rain_mm_per_h=None, gust_mps=None, current_mps=2.0)
    assert check_launch(boat, wx(rain_mm_per_h=30.0, gust_mps=25.0, current_mps=2.0), now=NOW).ok
    assert check_launch(boat, base, now=NOW).ok
    c = check_launch(boat, {**base, "current_mps": 4.8}, now=NOW)
    assert c.codes == ("current",) and "流速" in c.reasons_zh[0]
    assert check_launch(boat, {**base, "current_mps": None}, now=NOW).codes == ("missing:current_mps",)
    assert check_launch(boat, {**base, "wind_mps": 15.0}, now=NOW).codes == ("wind",)
    # A multirotor does not need a current reading.
    assert check_launch(MULTIROTOR, wx(), now=NOW).ok


def test_limit_validation() -> None:
    with pytest.raises(ValueError, match="headway"):
        boat_limits(0.4)
    with pytest.raises(ValueError, match="max_wind_mps"):
        AirframeLimits(max_wind_mps=-1.0)
    with pytest.raises(ValueError, match="max_gust_mps"):
        AirframeLimits(max_gust_mps=float("nan"))
    with pytest.raises(ValueError, match="min_temp_c"):
        AirframeLimits(min_temp_c=10.0, max_temp_c=0.0)
    with pytest.raises(ValueError, match="max_temp_c"):
        AirframeLimits(max_temp_c=float("inf"))
    with pytest.raises(ValueError, match="timezone-aware"):
        check_launch(MULTIROTOR, wx(), now=datetime(2024, 7, 1, 6))
    with pytest.raises(ValueError, match="max_age_s"):
        check_launch(MULTIROTOR, wx(), now=NOW, max_age_s=0)


def test_override_needs_author_and_reason() -> None:
    failed = check_launch(MULTIROTOR, wx(gust_mps=17.0), now=NOW)
    rec = override(failed, " Li Wei ", " trapped residents; gusts easing per radar ", NOW + timedelta(minutes=2))
    assert isinstance(rec, Override)
    assert (rec.by, rec.reason, rec.at) == ("Li Wei", "trapped residents; gusts easing per radar",
                                            NOW + timedelta(minutes=2))
    assert rec.overridden == failed.reasons and rec.check is failed
    for reason in ("", "   "):
        with pytest.raises(ValueError, match="reason"):
            override(failed, "Li Wei", reason, NOW)
    with pytest.raises(ValueError, match="author"):
        override(failed, "", "urgent", NOW)
    with pytest.raises(ValueError, match="nothing to override"):
        override(check_launch(MULTIROTOR, wx(), now=NOW), "Li Wei", "urgent", NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        override(failed, "Li Wei", "urgent", datetime(2024, 7, 1, 6))
