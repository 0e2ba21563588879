"""Launch weather check: may this vehicle take off in the weather observed near its base?

The observation (nearest weather station: mean wind, gust, rain rate, temperature, for a boat the
river current) is compared with the vehicle's limits. Every exceeded limit is a reason; so is weather
that is missing, too old, from a station too far away, or dated after ``now``: no weather is never
"fine". A dispatcher may override a failed check with a written reason; the ``Override`` record is
for the audit log.

Default limits are manufacturer figures of a vehicle class, configurable per fleet:

- multirotor (``MULTIROTOR``), after the DJI Matrice 300 RTK class of industrial quadcopters (DJI M300
  RTK specifications: max wind resistance 15 m/s, IP45, operating temperature −20 to 50 °C). The gust
  limit is the maker's 15 m/s; the mean-wind limit is kept at 12 m/s to leave room for gusts (an
  operator's margin, not a maker's figure). IP45 is protection against water jets, not against
  flying through heavy rain: the rain limit is the top of "light rain", 2.5 mm/h (AMS Glossary of
  Meteorology, "Rain": light up to 0.25 cm/h, moderate 0.26-0.76 cm/h, heavy above).
- boat (``boat_limits(cruise_speed_mps)``): wind and rain matter little on a river; the current does.
  The boat must keep ``min_headway_mps`` of ground speed against it (0.5 m/s, as
  ``paths.check_current`` requires of a leg), so the largest current is the cruise speed minus that.
  Mean wind is capped at 13.8 m/s, the top of Beaufort force 6 (WMO Beaufort scale: strong breeze
  10.8-13.8 m/s); an operator's choice for a small craft, configurable.

A limit set to None is not checked for that vehicle (and its reading is not required).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_DISTANCE_KM",
    "MULTIROTOR",
    "AirframeLimits",
    "LaunchCheck",
    "Override",
    "boat_limits",
    "check_launch",
    "override",
]

# Observations older than 30 min are stale: convective weather (the summer storms of a flood season)
# changes within that time. An operator's choice, configurable per call.
DEFAULT_MAX_AGE_S = 1800.0
# A station farther than this does not represent the launch site (ridges and river valleys change the
# wind within a few kilometres); an operator's choice, configurable per call.
DEFAULT_MAX_DISTANCE_KM = 15.0
_FUTURE_TOL_S = 60.0  # clocks of stations and of the service may differ by this much


@dataclass(frozen=True, slots=True)
class AirframeLimits:
    """Weather limits of a vehicle; None means "not a limit for this vehicle"."""

    name: str = "multirotor (DJI M300 RTK class)"
    max_wind_mps: float | None = 12.0
    max_gust_mps: float | None = 15.0
    max_rain_mm_per_h: float | None = 2.5
    min_temp_c: float | None = -20.0
    max_temp_c: float | None = 50.0
    max_current_mps: float | None = None

    def __post_init__(self) -> None:
        for field in ("max_wind_mps", "max_gust_mps", "max_rain_mm_per_h", "max_current_mps"):
            v = getattr(self, field)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ValueError(f"{self.name}: {field} must be a finite number >= 0 or None, got {v!r}")
        for field in ("min_temp_c", "max_temp_c"):
            v = getattr(self, field)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{self.name}: {field} must be a finite number or None, got {v!r}")
        if self.min_temp_c is not None and self.max_temp_c is not None and self.min_temp_c >= self.max_temp_c:
            raise ValueError(f"{self.name}: min_temp_c {self.min_temp_c} must be below max_temp_c {self.max_temp_c}")


MULTIROTOR = AirframeLimits()


def boat_limits(cruise_speed_mps: float, *, min_headway_mps: float = 0.5, name: str = "unmanned boat") -> AirframeLimits:
    """Limits of a boat cruising at ``cruise_speed_mps``: current up to cruise speed minus the headway kept."""
    if not math.isfinite(cruise_speed_mps) or cruise_speed_mps <= min_headway_mps:
        raise ValueError(f"cruise_speed_mps {cruise_speed_mps} must exceed the headway kept ({min_headway_mps} m/s)")
    return AirframeLimits(name=name, max_wind_mps=13.8, max_gust_mps=None, max_rain_mm_per_h=None,
                          min_temp_c=0.0, max_temp_c=50.0, max_current_mps=cruise_speed_mps - min_headway_mps)


@dataclass(frozen=True, slots=True)
class LaunchCheck:
    """The verdict: ``ok`` or the reasons (en, zh, and a code each), with the observation it rests on."""

    ok: bool
    reasons: tuple[str, ...]
    reasons_zh: tuple[str, ...]
    codes: tuple[str, ...]  # wind gust rain temp_low temp_high current missing missing:<key> stale far future bad_time
    station_id: str | None
    age_s: float | None  # age of the observation at ``checked_at``
    distance_km: float | None
    checked_at: datetime
    limits: AirframeLimits


@dataclass(frozen=True, slots=True)
class Override:
    """A dispatcher's decision to launch despite a failed check, for the audit log."""

    by: str
    reason: str
    at: datetime
    check: LaunchCheck

    @property
    def overridden(self) -> tuple[str, ...]:
        return self.check.reasons


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _number(weather: Mapping[str, Any], key: str) -> float | None:
    v = weather.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _observed_at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


# (weather key, limit field, code, what (en), what (zh), unit, "above" limit or "below" limit)
_CHECKS = (
    ("wind_mps", "max_wind_mps", "wind", "mean wind", "平均风速", "m/s", "above"),
    ("gust_mps", "max_gust_mps", "gust", "gust", "阵风", "m/s", "above"),
    ("rain_mm_per_h", "max_rain_mm_per_h", "rain", "rain", "降雨", "mm/h", "above"),
    ("temp_c", "min_temp_c", "temp_low", "temperature", "气温", "°C", "below"),
    ("temp_c", "max_temp_c", "temp_high", "temperature", "气温", "°C", "above"),
    ("current_mps", "max_current_mps", "current", "current", "流速", "m/s", "above"),
)


def check_launch(limits: AirframeLimits, weather: Mapping[str, Any] | None, *, now: datetime,
                 max_age_s: float = DEFAULT_MAX_AGE_S,
                 max_distance_km: float = DEFAULT_MAX_DISTANCE_KM) -> LaunchCheck:
    """Check ``weather`` (wind_mps, gust_mps, rain_mm_per_h, temp_c, current_mps, observed_at, station_id,
    distance_km) against ``limits`` at ``now``; every failure is a reason.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2024, 7, 1, 2, tzinfo=UTC)
    >>> check_launch(MULTIROTOR, {"wind_mps": 4, "gust_mps": 7, "rain_mm_per_h": 0, "temp_c": 28,
    ...              "observed_at": t, "station_id": "A1", "distance_km": 3}, now=t).ok
    True
    """
    _aware("now", now)
    if max_age_s <= 0:
        raise ValueError(f"max_age_s must be positive, got {max_age_s}")
    reasons: list[str] = []
    reasons_zh: list[str] = []
    codes: list[str] = []

    def fail(code: str, en: str, zh: str) -> None:
        codes.append(code)
        reasons.append(en)
        reasons_zh.append(zh)

    if not weather:
        fail("missing", "no weather observation for the launch site", "起飞点无气象观测")
        return LaunchCheck(False, tuple(reasons), tuple(reasons_zh), tuple(codes), None, None, None, now, limits)

    station = weather.get("station_id")
    station_id = str(station) if station not in (None, "") else None
    at = _observed_at(weather.get("observed_at"))
    age_s: float | None = None
    if at is None:
        fail("bad_time", "the observation has no readable time", "观测时间缺失或无法识别")
    elif at.tzinfo is None or at.utcoffset() is None:
        fail("bad_time", "the observation time has no time zone", "观测时间缺少时区")
    else:
        age_s = (now - at).total_seconds()
        if age_s > max_age_s:
            fail("stale", f"weather from station {station_id} is {age_s / 60:.0f} min old "
                          f"(older than {max_age_s / 60:.0f} min)",
                 f"气象站 {station_id} 的观测已过去 {age_s / 60:.0f} 分钟（超过 {max_age_s / 60:.0f} 分钟）")
        elif age_s < -_FUTURE_TOL_S:
            fail("future", f"weather from station {station_id} is dated {-age_s:.0f} s in the future: clocks disagree",
                 f"气象站 {station_id} 的观测时间比当前晚 {-age_s:.0f} 秒：时钟不一致")
    distance_km = _number(weather, "distance_km")
    if distance_km is not None and distance_km > max_distance_km:
        fail("far", f"station {station_id} is {distance_km:.1f} km away (more than {max_distance_km:.0f} km): "
                    "it does not represent the launch site",
             f"气象站 {station_id} 距起飞点 {distance_km:.1f} 公里（超过 {max_distance_km:.0f} 公里），不具代表性")

    for key, field, code, what, what_zh, unit, side in _CHECKS:
        limit = getattr(limits, field)
        if limit is None:
            continue
        value = _number(weather, key)
        if value is None:
            if f"missing:{key}" not in codes:
                fail(f"missing:{key}", f"no {what} reading", f"缺少{what_zh}观测")
            continue
        if side == "above" and value > limit:
            fail(code, f"{what} {value:.1f} {unit} above the limit of {limit:.1f} {unit} ({limits.name})",
                 f"{what_zh} {value:.1f} {unit}，超过上限 {limit:.1f} {unit}（{limits.name}）")
        elif side == "below" and value < limit:
            fail(code, f"{what} {value:.1f} {unit} below the limit of {limit:.1f} {unit} ({limits.name})",
                 f"{what_zh} {value:.1f} {unit}，低于下限 {limit:.1f} {unit}（{limits.name}）")
    return LaunchCheck(not codes, tuple(reasons), tuple(reasons_zh), tuple(codes), station_id, age_s,
                       distance_km, now, limits)


def override(check: LaunchCheck, by: str, reason: str, now: datetime) -> Override:
    """Record a dispatcher's launch despite a failed check; the author and a reason are required."""
    _aware("now", now)
    if check.ok:
        raise ValueError("the launch check passed: there is nothing to override")
    if not isinstance(by, str) or not by.strip():
        raise ValueError("an override needs its author (who decides to launch)")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("an override needs a written reason")
    return Override(by.strip(), reason.strip(), now, check)
