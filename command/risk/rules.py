"""Threshold rules: hydrological (flood) and rainstorm signal levels from gauge data.

Pure: numbers and times in, a ``Level`` or an ``Assessment`` out. No clock, no I/O.

The levels are the system's own assessment against published thresholds; official warning
signals are issued only by the meteorological and hydrological services.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Literal

__all__ = [
    "DEFAULT_RAIN_THRESHOLDS",
    "NOTE",
    "NOTE_ZH",
    "RAIN_WINDOWS_H",
    "Assessment",
    "Level",
    "RainThresholds",
    "assess_rainstorm",
    "assess_river_level",
    "rain_accumulations",
    "rainstorm_signal",
    "river_level_signal",
]

NOTE = ("System assessment, not an official warning signal: only the meteorological "
        "and hydrological services issue signals.")
NOTE_ZH = "系统自动研判，非官方预警信号；预警信号仅由气象、水文部门发布。"


class Level(IntEnum):
    """Warning level, four colours (Chinese practice: blue < yellow < orange < red).

    Each colour maps to an emergency response level IV (lowest) .. I (highest); declaring
    a response is a human decision, the mapping only suggests it.
    """

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        return ("none", "blue", "yellow", "orange", "red")[self]

    @classmethod
    def of(cls, value: Level | int | str) -> Level:
        """A level from itself, its number (0..4) or its colour name; ValueError names what is wrong."""
        if isinstance(value, str):
            for lv in cls:
                if lv.colour == value:
                    return lv
            raise ValueError(f"unknown level {value!r}; known: {', '.join(lv.colour for lv in cls)}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown level {value!r}; levels are 0..4") from None

    @property
    def colour_zh(self) -> str:
        return ("无", "蓝色", "黄色", "橙色", "红色")[self]

    @property
    def response(self) -> str:
        return ("", "IV", "III", "II", "I")[self]

    @property
    def response_zh(self) -> str:
        return ("", "Ⅳ级", "Ⅲ级", "Ⅱ级", "Ⅰ级")[self]


@dataclass(frozen=True, slots=True)
class Assessment:
    """One rule's verdict for one sensor, with reasons a person can read (en, zh)."""

    kind: Literal["flood", "rainstorm", "landslide", "fire", "chemical_leak"]
    level: Level
    sensor_id: str
    value: float  # level_m for "flood"; mm in the decisive window for "rainstorm"
    unit: str
    reason: str
    reason_zh: str
    window_h: int | None = None  # rainstorm: the decisive accumulation window
    threshold: float | None = None  # the threshold that was reached (None when NONE)
    note: str = NOTE
    note_zh: str = NOTE_ZH
    extra: Mapping[str, object] | None = None  # model outputs worth keeping (forecasts, extents)


# --- Hydrological (flood) signals -------------------------------------------------------
# Ministry of Water Resources, "Measures for the Release of Hydrological Warnings (trial)"
# (水情预警发布管理办法（试行）, 2013): blue when the level approaches the
# warning level, yellow at the warning level, orange at the guaranteed level, red at the
# historical maximum (the return-period criteria, 5/20/50 years, need a frequency curve
# that a gauge registry does not hold).


_DATUM_ZH = {"Wusong": "吴淞", "Huanghai": "黄海"}


def river_level_signal(level_m: float, *, warning_m: float, guaranteed_m: float,
                       historical_max_m: float, approach_m: float) -> Level:
    """Signal level of a river gauge reading (all heights in the gauge's datum).

    >>> river_level_signal(181.0, warning_m=180.5, guaranteed_m=183.5, historical_max_m=191.62, approach_m=1.0)
    <Level.YELLOW: 2>
    """
    if not warning_m <= guaranteed_m <= historical_max_m:
        raise ValueError(f"thresholds out of order: warning {warning_m}, guaranteed {guaranteed_m}, "
                         f"historical max {historical_max_m}")
    if approach_m < 0:
        raise ValueError(f"approach_m must not be negative, got {approach_m}")
    if level_m >= historical_max_m:
        return Level.RED
    if level_m >= guaranteed_m:
        return Level.ORANGE
    if level_m >= warning_m:
        return Level.YELLOW
    if approach_m > 0 and level_m >= warning_m - approach_m:
        return Level.BLUE
    return Level.NONE


def assess_river_level(sensor_id: str, level_m: float, *, warning_m: float, guaranteed_m: float,
                       historical_max_m: float, approach_m: float, datum: str | None = None) -> Assessment:
    """``river_level_signal`` with the reason spelled out."""
    level = river_level_signal(level_m, warning_m=warning_m, guaranteed_m=guaranteed_m,
                               historical_max_m=historical_max_m, approach_m=approach_m)
    d = f" ({datum})" if datum else ""
    dz = f"（{_DATUM_ZH.get(datum, datum)}基面）" if datum else ""
    if level is Level.RED:
        threshold, what, what_zh = historical_max_m, "the historical maximum", "历史最高水位"
    elif level is Level.ORANGE:
        threshold, what, what_zh = guaranteed_m, "the guaranteed level", "保证水位"
    elif level is Level.YELLOW:
        threshold, what, what_zh = warning_m, "the warning level", "警戒水位"
    else:
        threshold, what, what_zh = None, "", ""
    if threshold is not None:
        reason = f"Gauge exceeds {what} {threshold:.2f} m{d}: {level_m:.2f} m"
        reason_zh = f"水位{level_m:.2f} 米，超过{what_zh}{threshold:.2f} 米{dz}"
    elif level is Level.BLUE:
        threshold = warning_m - approach_m
        reason = (f"Gauge approaches the warning level {warning_m:.2f} m{d}: {level_m:.2f} m, "
                  f"{warning_m - level_m:.2f} m below")
        reason_zh = f"水位{level_m:.2f} 米，接近警戒水位{warning_m:.2f} 米{dz}（差 {warning_m - level_m:.2f} 米）"
    else:
        reason = f"Gauge below the warning level {warning_m:.2f} m{d}: {level_m:.2f} m"
        reason_zh = f"水位{level_m:.2f} 米，低于警戒水位{warning_m:.2f} 米{dz}"
    return Assessment("flood", level, sensor_id, level_m, "m", reason, reason_zh, threshold=threshold)


# --- Rainstorm signals --------------------------------------------------------------------
# China Meteorological Administration Order No. 16 (2007), "Measures for the Release and
# Dissemination of Meteorological Disaster Warning Signals", annex, rainstorm signals:
#   blue   >= 50 mm in 12 h, yellow >= 50 mm in 6 h, orange >= 50 mm in 3 h,
#   red    >= 100 mm in 3 h (rainfall reached, or expected, and continuing).
# Only the "reached" half is assessed here: forecasts are not ours.

RAIN_WINDOWS_H: tuple[int, ...] = (3, 6, 12)


@dataclass(frozen=True, slots=True)
class RainThresholds:
    """Rainstorm thresholds (CMA Order No. 16, 2007); a sensor may override them."""

    blue_12h_mm: float = 50.0
    yellow_6h_mm: float = 50.0
    orange_3h_mm: float = 50.0
    red_3h_mm: float = 100.0

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float]) -> RainThresholds:
        """Defaults with a sensor's ``thresholds`` overrides (unknown keys are ignored)."""
        known = {k: float(v) for k, v in overrides.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_RAIN_THRESHOLDS = RainThresholds()


def rain_accumulations(times: Sequence[datetime], amounts_mm: Sequence[float], now: datetime,
                       windows_h: Sequence[int] = RAIN_WINDOWS_H) -> dict[int, float]:
    """Rain in each window: the sum of per-interval amounts stamped in (now − window, now].

    Each amount is the rain of the interval that ends at its time stamp (SenML rain
    gauges report the interval's total at its end), so a stamp exactly at now − window
    belongs to the previous window.
    """
    if len(times) != len(amounts_mm):
        raise ValueError(f"{len(times)} times but {len(amounts_mm)} amounts")
    out: dict[int, float] = {}
    for hours in windows_h:
        start = now - timedelta(hours=hours)
        out[hours] = float(sum(a for t, a in zip(times, amounts_mm, strict=True) if start < t <= now))
    return out


def _rain_decisive(acc: Mapping[int, float], th: RainThresholds) -> tuple[Level, int, float | None]:
    a3, a6, a12 = acc.get(3, 0.0), acc.get(6, 0.0), acc.get(12, 0.0)
    if a3 >= th.red_3h_mm:
        return Level.RED, 3, th.red_3h_mm
    if a3 >= th.orange_3h_mm:
        return Level.ORANGE, 3, th.orange_3h_mm
    if a6 >= th.yellow_6h_mm:
        return Level.YELLOW, 6, th.yellow_6h_mm
    if a12 >= th.blue_12h_mm:
        return Level.BLUE, 12, th.blue_12h_mm
    return Level.NONE, 3, None


def rainstorm_signal(acc: Mapping[int, float], thresholds: RainThresholds = DEFAULT_RAIN_THRESHOLDS) -> Level:
    """Rainstorm level from accumulations by window in hours (``rain_accumulations``).

    >>> rainstorm_signal({3: 55.0, 6: 60.0, 12: 61.0})
    <Level.ORANGE: 3>
    """
    return _rain_decisive(acc, thresholds)[0]


def assess_rainstorm(sensor_id: str, acc: Mapping[int, float],
                     thresholds: RainThresholds = DEFAULT_RAIN_THRESHOLDS) -> Assessment:
    """``rainstorm_signal`` with the reason spelled out."""
    level, window_h, threshold = _rain_decisive(acc, thresholds)
    value = float(acc.get(window_h, 0.0))
    if threshold is not None:
        reason = f"Rain gauge: {value:.1f} mm in {window_h} h, at or above {threshold:.0f} mm in {window_h} h"
        reason_zh = f"雨量站：{window_h} 小时降雨 {value:.1f} 毫米，达到 {window_h} 小时 {threshold:.0f} 毫米"
    else:
        parts = ", ".join(f"{acc.get(h, 0.0):.1f} mm/{h} h" for h in RAIN_WINDOWS_H)
        parts_zh = "，".join(f"{h} 小时 {acc.get(h, 0.0):.1f} 毫米" for h in RAIN_WINDOWS_H)
        reason = f"Rain gauge below rainstorm thresholds: {parts}"
        reason_zh = f"雨量站未达暴雨标准：{parts_zh}"
    return Assessment("rainstorm", level, sensor_id, value, "mm", reason, reason_zh,
                      window_h=window_h, threshold=threshold)
