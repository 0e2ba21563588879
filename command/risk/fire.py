"""Forest fire: fire weather (Canadian FWI System), danger levels, corroboration, spread.

Pure: numbers, times and lon/lat in; floats, numpy arrays and frozen dataclasses out. No
clock, no I/O. Metric geometry is done in UTM 48N (EPSG:32648) with pyproj.

Sources (cited next to each constant and formula below):

- Van Wagner, C.E. 1987. Development and structure of the Canadian Forest Fire Weather
  Index System. Canadian Forestry Service, Forestry Technical Report 35 ("VW87"; equation
  numbers "Eq. n" below are VW87's, shared with Van Wagner & Pickett 1985, Forestry
  Technical Report 33, the FORTRAN program).
- Wang, Y., Anderson, K.R., Suddaby, R.M. 2015. Updated source code for calculating fire
  danger indices in the Canadian Forest Fire Weather Index System. Canadian Forest Service,
  Information Report NOR-X-424 (the test table reproduced by the unit tests).
- cffdrs, the R package of the Canadian Forest Fire Danger Rating System (Wang et al. 2017,
  Ecological Processes 6:5), functions ``duff_moisture_code`` and ``drought_code`` with
  ``lat.adjust = TRUE``: the latitude bands and day-length tables for the DMC and the DC.
- Forestry Canada Fire Danger Group 1992. Development and structure of the Canadian Forest
  Fire Behavior Prediction System. Information Report ST-X-3 ("FBP"; "FBP Eq. n").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from itertools import combinations
from typing import Literal

import numpy as np
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

from .rules import Level

__all__ = [
    "DC_DAY_LENGTH_FACTORS",
    "DEFAULT_CORROBORATION",
    "DEFAULT_DANGER_BREAKS",
    "DEFAULT_FUEL",
    "DMC_DAY_LENGTHS",
    "FBP_FUELS",
    "METRIC_CRS",
    "Corroboration",
    "CorroborationRules",
    "DangerBreaks",
    "DangerLevel",
    "Detection",
    "FireInputError",
    "FuelType",
    "FwiDay",
    "NoonWeather",
    "SpreadEstimate",
    "back_ros",
    "bui",
    "buildup_effect",
    "corroborate",
    "danger_level",
    "dc",
    "dc_day_length_factor",
    "dmc",
    "dmc_day_length",
    "ffmc",
    "fwi",
    "fwi_series",
    "head_ros",
    "intersect_bearings",
    "isi",
    "length_to_breadth",
    "spread_estimate",
    "warning_level",
]

METRIC_CRS = "EPSG:32648"  # UTM zone 48N, the house's metric frame (DESIGN.md)


class FireInputError(ValueError):
    """A fire-weather or fire-behaviour input out of its domain; ``field`` names it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- input checks -------------------------------------------------------------------------


def _checked(name: str, value: object, *, lo: float | None = None, hi: float | None = None,
             unit: str = "") -> np.ndarray:
    """``value`` as a float array, finite and within [lo, hi], or a ``FireInputError``."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise FireInputError(f"{name} must be a number, got {value!r}", field=name) from None
    bad = ~np.isfinite(a)
    if bad.any():
        raise FireInputError(f"{name} must be a finite number, got {_first(a, bad)}", field=name)
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        out = (a < lo) | (a > hi)
        if out.any():
            raise FireInputError(f"{name} must be within {lo:g}..{hi:g}{u}, got {_first(a, out)}", field=name)
    elif lo is not None:
        out = a < lo
        if out.any():
            raise FireInputError(f"{name} must be at least {lo:g}{u}, got {_first(a, out)}", field=name)
    return a


def _first(a: np.ndarray, mask: np.ndarray) -> str:
    if a.ndim == 0:
        return f"{float(a):g}"
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    where = idx[0] if len(idx) == 1 else idx
    return f"{float(a[idx]):g} at index {where}"


def _month(value: object) -> np.ndarray:
    m = _checked("month", value, lo=1, hi=12)
    if (m != np.floor(m)).any():
        raise FireInputError(f"month must be a whole number 1..12, got {_first(m, m != np.floor(m))}",
                             field="month")
    return m.astype(int)


def _broadcast(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    try:
        return tuple(np.broadcast_arrays(*arrays))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise FireInputError(f"inputs of different lengths cannot be combined: {shapes}") from None


def _ret(a: np.ndarray) -> float | np.ndarray:
    """A 0-d result as a Python float; an array result as an array."""
    return float(a) if a.ndim == 0 else a


# --- Canadian Forest Fire Weather Index System (VW87) -------------------------------------

# FFMC <-> fine fuel moisture content: the original constant 147.2 of VW87 Eqs. 1 and 10
# (later code uses 250 * 59.5 / 101 = 147.27723; the published test tables use 147.2).
_FFMC_K = 147.2

# Day-length factors by latitude band, as tabulated by cffdrs (duff_moisture_code,
# drought_code, lat.adjust = TRUE). Month 1..12 → index 0..11.
DMC_DAY_LENGTHS: Mapping[str, tuple[float, ...]] = {
    # Effective day length Le (h), VW87 Table 1 (reference latitude 46°N): lat > 30°N.
    "46N": (6.5, 7.5, 9.0, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8.0, 7.0, 6.0),
    # 20°N reference: 10°N < lat <= 30°N (Yubei, ~29.7°N, falls here).
    "20N": (7.9, 8.4, 8.9, 9.5, 9.9, 10.2, 10.1, 9.7, 9.1, 8.6, 8.1, 7.8),
    # 10°S < lat <= 10°N: 9 h in every month.
    "equator": (9.0,) * 12,
    # 20°S reference: 30°S < lat <= 10°S.
    "20S": (10.1, 9.6, 9.1, 8.5, 8.1, 7.8, 7.9, 8.3, 8.9, 9.4, 9.9, 10.2),
    # 40°S reference: lat <= 30°S.
    "40S": (11.5, 10.5, 9.2, 7.9, 6.8, 6.2, 6.5, 7.4, 8.7, 10.0, 11.2, 11.8),
}
DC_DAY_LENGTH_FACTORS: Mapping[str, tuple[float, ...]] = {
    # Day-length adjustment Lf, VW87 Table 2: lat > 20°N (Yubei falls here).
    "north": (-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6),
    # 20°S < lat <= 20°N: 1.4 in every month.
    "equator": (1.4,) * 12,
    # lat <= 20°S: the northern table shifted by six months.
    "south": (6.4, 5.0, 2.4, 0.4, -1.6, -1.6, -1.6, -1.6, -1.6, 0.9, 3.8, 5.8),
}
# Band edges follow cffdrs's code, where a boundary latitude belongs to the band south of
# it (lat == 30 uses the 20°N table; cffdrs's comment says ">= 30N" for the 46°N table,
# its code says "> 30", and the code is what the package computes).


def _dmc_band(lat: np.ndarray) -> list[tuple[np.ndarray, str]]:
    return [(lat > 30, "46N"), (lat > 10, "20N"), (lat > -10, "equator"), (lat > -30, "20S")]


def dmc_day_length(month: object, lat: object) -> float | np.ndarray:
    """Effective day length Le (h) for the DMC (VW87 Table 1, bands of cffdrs).

    >>> dmc_day_length(7, 46.0), dmc_day_length(7, 29.7)
    (12.4, 10.1)
    """
    m = _month(month)
    la = _checked("lat", lat, lo=-90, hi=90, unit="°")
    m, la = _broadcast(m, la)
    out = np.select([c for c, _ in _dmc_band(la)],
                    [np.take(DMC_DAY_LENGTHS[k], m - 1) for _, k in _dmc_band(la)],
                    np.take(DMC_DAY_LENGTHS["40S"], m - 1))
    return _ret(out)


def dc_day_length_factor(month: object, lat: object) -> float | np.ndarray:
    """Day-length adjustment Lf for the DC (VW87 Table 2, bands of cffdrs).

    >>> dc_day_length_factor(7, 29.7), dc_day_length_factor(7, 0.0)
    (6.4, 1.4)
    """
    m = _month(month)
    la = _checked("lat", lat, lo=-90, hi=90, unit="°")
    m, la = _broadcast(m, la)
    out = np.select([la > 20, la > -20],
                    [np.take(DC_DAY_LENGTH_FACTORS["north"], m - 1),
                     np.take(DC_DAY_LENGTH_FACTORS["equator"], m - 1)],
                    np.take(DC_DAY_LENGTH_FACTORS["south"], m - 1))
    return _ret(out)


def ffmc(prev: object, temp_c: object, rh_pct: object, wind_kmh: object, rain_mm: object) -> float | np.ndarray:
    """Fine Fuel Moisture Code from yesterday's FFMC and today's noon weather (VW87 Eqs. 1–10).

    Inputs may be scalars or arrays (one value per station). Rain is the 24-h total (mm).

    >>> round(ffmc(85.0, 17.0, 42.0, 25.0, 0.0), 1)
    87.7
    """
    f0 = _checked("prev_ffmc", prev, lo=0, hi=101)
    t = _checked("temp_c", temp_c, unit="°C")
    h = _checked("rh_pct", rh_pct, lo=0, hi=100, unit="%")
    w = _checked("wind_kmh", wind_kmh, lo=0, unit="km/h")
    r = _checked("rain_mm", rain_mm, lo=0, unit="mm")
    f0, t, h, w, r = _broadcast(f0, t, h, w, r)
    with np.errstate(all="ignore"):
        mo = _FFMC_K * (101.0 - f0) / (59.5 + f0)  # Eq. 1
        wet = r > 0.5
        rf = np.where(wet, r - 0.5, 1.0)  # Eq. 2: rain less canopy interception
        mr = mo + 42.5 * rf * np.exp(-100.0 / (251.0 - mo)) * (1.0 - np.exp(-6.93 / rf))  # Eq. 3a
        mr = np.where(mo > 150.0, mr + 0.0015 * (mo - 150.0) ** 2 * np.sqrt(rf), mr)  # Eq. 3b
        mo = np.where(wet, np.minimum(mr, 250.0), mo)  # moisture content capped at 250 %
        tail = 0.18 * (21.1 - t) * (1.0 - np.exp(-0.115 * h))
        ed = 0.942 * h ** 0.679 + 11.0 * np.exp((h - 100.0) / 10.0) + tail  # Eq. 4, drying EMC
        ew = 0.618 * h ** 0.753 + 10.0 * np.exp((h - 100.0) / 10.0) + tail  # Eq. 5, wetting EMC
        ko = 0.424 * (1.0 - (h / 100.0) ** 1.7) + 0.0694 * np.sqrt(w) * (1.0 - (h / 100.0) ** 8)  # Eq. 6a
        kd = ko * 0.581 * np.exp(0.0365 * t)  # Eq. 6b
        k1 = (0.424 * (1.0 - ((100.0 - h) / 100.0) ** 1.7)
              + 0.0694 * np.sqrt(w) * (1.0 - ((100.0 - h) / 100.0) ** 8))  # Eq. 7a
        kw = k1 * 0.581 * np.exp(0.0365 * t)  # Eq. 7b
        m_dry = ed + (mo - ed) * 10.0 ** (-kd)  # Eq. 8
        m_wet = ew - (ew - mo) * 10.0 ** (-kw)  # Eq. 9
        m = np.where(mo > ed, m_dry, np.where(mo < ew, m_wet, mo))
        f = 59.5 * (250.0 - m) / (_FFMC_K + m)  # Eq. 10
    return _ret(np.clip(f, 0.0, 101.0))


def dmc(prev: object, temp_c: object, rh_pct: object, rain_mm: object, month: object,
        lat: object) -> float | np.ndarray:
    """Duff Moisture Code (VW87 Eqs. 11–17), day length by latitude band (cffdrs).

    >>> round(dmc(6.0, 17.0, 42.0, 0.0, 4, 46.0), 1)
    8.5
    """
    p0 = _checked("prev_dmc", prev, lo=0)
    t = _checked("temp_c", temp_c, unit="°C")
    h = _checked("rh_pct", rh_pct, lo=0, hi=100, unit="%")
    r = _checked("rain_mm", rain_mm, lo=0, unit="mm")
    le = np.asarray(dmc_day_length(month, lat))
    p0, t, h, r, le = _broadcast(p0, t, h, r, le)
    with np.errstate(all="ignore"):
        t = np.maximum(t, -1.1)  # VW87: no drying below -1.1 °C
        k = 1.894 * (t + 1.1) * (100.0 - h) * le * 1e-6  # Eq. 16, log drying rate
        re = 0.92 * r - 1.27  # Eq. 11, effective rain (rain > 1.5 mm)
        # Eq. 12, duff moisture content, in the form of Van Wagner & Pickett's (1985) program,
        # 20 + 280 / exp(0.023 P), which the published test tables were computed with (VW87
        # prints 20 + exp(5.6348 - P / 43.43); the two differ by up to ~0.1 in the DMC).
        mo = 20.0 + 280.0 / np.exp(0.023 * p0)
        b = np.where(p0 <= 33.0, 100.0 / (0.5 + 0.3 * p0),  # Eq. 13a
                     np.where(p0 <= 65.0, 14.0 - 1.3 * np.log(p0),  # Eq. 13b
                              6.2 * np.log(p0) - 17.2))  # Eq. 13c
        mr = mo + 1000.0 * re / (48.77 + b * re)  # Eq. 14
        pr = np.maximum(43.43 * (5.6348 - np.log(mr - 20.0)), 0.0)  # Eq. 15 (244.72 = 43.43 * 5.6348)
        p = np.where(r > 1.5, pr, p0) + 100.0 * k  # Eq. 17
    return _ret(np.maximum(p, 0.0))


def dc(prev: object, temp_c: object, rain_mm: object, month: object, lat: object) -> float | np.ndarray:
    """Drought Code (VW87 Eqs. 18–23), day-length factor by latitude band (cffdrs).

    >>> round(dc(15.0, 17.0, 0.0, 4, 46.0), 1)
    19.0
    """
    d0 = _checked("prev_dc", prev, lo=0)
    t = _checked("temp_c", temp_c, unit="°C")
    r = _checked("rain_mm", rain_mm, lo=0, unit="mm")
    lf = np.asarray(dc_day_length_factor(month, lat))
    d0, t, r, lf = _broadcast(d0, t, r, lf)
    with np.errstate(all="ignore"):
        t = np.maximum(t, -2.8)  # VW87: no evapotranspiration below -2.8 °C
        v = np.maximum(0.36 * (t + 2.8) + lf, 0.0)  # Eq. 22, potential evapotranspiration
        rd = 0.83 * r - 1.27  # Eq. 18, effective rain (rain > 2.8 mm)
        qo = 800.0 * np.exp(-d0 / 400.0)  # Eq. 19, moisture equivalent
        qr = qo + 3.937 * rd  # Eq. 20
        dr = np.maximum(400.0 * np.log(800.0 / qr), 0.0)  # Eq. 21
        d = np.where(r > 2.8, dr, d0) + 0.5 * v  # Eq. 23
    return _ret(np.maximum(d, 0.0))


def isi(ffmc_today: object, wind_kmh: object) -> float | np.ndarray:
    """Initial Spread Index from today's FFMC and noon wind (VW87 Eqs. 24–26).

    >>> round(isi(87.7, 25.0), 1)
    10.9
    """
    f = _checked("ffmc", ffmc_today, lo=0, hi=101)
    w = _checked("wind_kmh", wind_kmh, lo=0, unit="km/h")
    f, w = _broadcast(f, w)
    m = _FFMC_K * (101.0 - f) / (59.5 + f)  # Eq. 1 on today's FFMC
    f_wind = np.exp(0.05039 * w)  # Eq. 24
    f_fuel = 91.9 * np.exp(-0.1386 * m) * (1.0 + m ** 5.31 / 4.93e7)  # Eq. 25
    return _ret(0.208 * f_wind * f_fuel)  # Eq. 26


def bui(dmc_today: object, dc_today: object) -> float | np.ndarray:
    """Buildup Index from today's DMC and DC (VW87 Eqs. 27a–b).

    >>> round(bui(8.5451, 19.0), 1)
    8.5
    """
    p = _checked("dmc", dmc_today, lo=0)
    d = _checked("dc", dc_today, lo=0)
    p, d = _broadcast(p, d)
    with np.errstate(all="ignore"):
        a = 0.8 * p * d / (p + 0.4 * d)  # Eq. 27a
        b = p - (1.0 - 0.8 * d / (p + 0.4 * d)) * (0.92 + (0.0114 * p) ** 1.7)  # Eq. 27b
        u = np.where(p <= 0.4 * d, a, b)
    u = np.where((p == 0.0) & (d == 0.0), 0.0, u)  # 0/0 when both codes are zero
    return _ret(np.maximum(u, 0.0))


def fwi(isi_today: object, bui_today: object) -> float | np.ndarray:
    """Fire Weather Index from ISI and BUI (VW87 Eqs. 28–30).

    >>> round(fwi(10.9, 8.5), 1)
    10.1
    """
    r = _checked("isi", isi_today, lo=0)
    u = _checked("bui", bui_today, lo=0)
    r, u = _broadcast(r, u)
    with np.errstate(all="ignore"):
        f_d = np.where(u <= 80.0, 0.626 * u ** 0.809 + 2.0,  # Eq. 28a
                       1000.0 / (25.0 + 108.64 * np.exp(-0.023 * u)))  # Eq. 28b
        b = 0.1 * r * f_d  # Eq. 29
        s = np.where(b > 1.0, np.exp(2.72 * (0.434 * np.log(b)) ** 0.647), b)  # Eqs. 30a, 30b
    return _ret(s)


@dataclass(frozen=True, slots=True)
class NoonWeather:
    """One day's noon observation at one place (or arrays, one value per station)."""

    month: int
    temp_c: float
    rh_pct: float
    wind_kmh: float
    rain_mm: float  # the 24-h total ending at noon

    def __post_init__(self) -> None:
        _month(self.month)
        _checked("temp_c", self.temp_c, unit="°C")
        _checked("rh_pct", self.rh_pct, lo=0, hi=100, unit="%")
        _checked("wind_kmh", self.wind_kmh, lo=0, unit="km/h")
        _checked("rain_mm", self.rain_mm, lo=0, unit="mm")

    @classmethod
    def from_mapping(cls, row: Mapping[str, object]) -> NoonWeather:
        """From a row with keys ``month, temp, rh, wind, rain`` (the ``yingji fwi`` columns)."""
        missing = [k for k in ("month", "temp", "rh", "wind", "rain") if k not in row]
        if missing:
            raise FireInputError(f"row lacks {', '.join(missing)}", field=missing[0])
        return cls(row["month"], row["temp"], row["rh"], row["wind"], row["rain"])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FwiDay:
    """The six FWI System components of one day."""

    ffmc: float
    dmc: float
    dc: float
    isi: float
    bui: float
    fwi: float


def fwi_series(rows: Iterable[NoonWeather | Mapping[str, object]], lat: float, ffmc0: float = 85.0,
               dmc0: float = 6.0, dc0: float = 15.0) -> list[FwiDay]:
    """Consecutive days of noon weather → the six components, codes carried day to day.

    The start values are VW87's standard spring start-up (FFMC 85, DMC 6, DC 15). A gap in
    the days is the caller's to prevent: each row is taken as the day after the previous.

    >>> [round(d.fwi, 1) for d in fwi_series([{"month": 4, "temp": 17, "rh": 42, "wind": 25, "rain": 0}], 46.0)]
    [10.1]
    """
    _checked("ffmc0", ffmc0, lo=0, hi=101)
    _checked("dmc0", dmc0, lo=0)
    _checked("dc0", dc0, lo=0)
    _checked("lat", lat, lo=-90, hi=90, unit="°")
    f, p, d = ffmc0, dmc0, dc0
    out: list[FwiDay] = []
    for i, row in enumerate(rows):
        try:
            w = row if isinstance(row, NoonWeather) else NoonWeather.from_mapping(row)
        except FireInputError as err:
            raise FireInputError(f"row {i}: {err}", field=err.field) from None
        f = ffmc(f, w.temp_c, w.rh_pct, w.wind_kmh, w.rain_mm)
        p = dmc(p, w.temp_c, w.rh_pct, w.rain_mm, w.month, lat)
        d = dc(d, w.temp_c, w.rain_mm, w.month, lat)
        r = isi(f, w.wind_kmh)
        u = bui(p, d)
        out.append(FwiDay(f, p, d, r, u, fwi(r, u)))  # type: ignore[arg-type]
    return out


# --- Danger levels (森林火险等级) ----------------------------------------------------------


class DangerLevel(IntEnum):
    """China's five forest-fire danger levels, 一级 (lowest) .. 五级 (highest)."""

    LOW = 1
    MODERATE = 2
    HIGH = 3
    VERY_HIGH = 4
    EXTREME = 5

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")

    @property
    def label_zh(self) -> str:
        return ("", "一级", "二级", "三级", "四级", "五级")[self]


@dataclass(frozen=True, slots=True)
class DangerBreaks:
    """Lowest FWI of each danger level from 二级 up (一级 is everything below ``moderate_fwi``).

    The defaults are this system's assumption, not a Chinese standard: China's meteorological
    forest-fire danger rating (森林火险气象等级, QX/T 77-2007 and its successors) is computed
    from its own index, and no published FWI calibration for Chongqing was found. They are
    the class limits of the EFFIS harmonised European FWI danger classes (very low < 5.2,
    low 5.2–11.2, moderate 11.2–21.3, high 21.3–38.0, very high 38.0–50.0, extreme >= 50),
    with very high and extreme merged into 五级, so that 三级 (the first level with a warning
    signal, "moderate danger" in Chinese warning texts) starts at EFFIS "moderate". A
    district should re-fit them to its own fire occurrence record and override them.
    """

    moderate_fwi: float = 5.2
    high_fwi: float = 11.2
    very_high_fwi: float = 21.3
    extreme_fwi: float = 38.0

    def __post_init__(self) -> None:
        values = (self.moderate_fwi, self.high_fwi, self.very_high_fwi, self.extreme_fwi)
        if not all(math.isfinite(v) for v in values) or not 0 < values[0] < values[1] < values[2] < values[3]:
            raise FireInputError(f"FWI danger breaks must be finite, positive and increasing, got {values}")

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float]) -> DangerBreaks:
        """Defaults with overrides by field name (unknown keys are ignored)."""
        known = {k: float(v) for k, v in overrides.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_DANGER_BREAKS = DangerBreaks()


def danger_level(fwi_value: float, breaks: DangerBreaks = DEFAULT_DANGER_BREAKS) -> DangerLevel:
    """Danger level of one FWI value; a value exactly on a break belongs to the higher level.

    >>> danger_level(25.0)
    <DangerLevel.VERY_HIGH: 4>
    """
    v = float(_checked("fwi", fwi_value, lo=0))
    if v >= breaks.extreme_fwi:
        return DangerLevel.EXTREME
    if v >= breaks.very_high_fwi:
        return DangerLevel.VERY_HIGH
    if v >= breaks.high_fwi:
        return DangerLevel.HIGH
    if v >= breaks.moderate_fwi:
        return DangerLevel.MODERATE
    return DangerLevel.LOW


# Forest-fire danger warning signals in China are yellow, orange and red for danger levels
# 三级, 四级 and 五级; levels 一级 and 二级 are forecast without a warning signal (Ministry of
# Emergency Management, fire-season notice of April 2021, as reported; provincial signal
# rules use the same three colours). QX/T 77-2007 paints 二级 blue on danger maps, but that
# is a map colour, not a warning; so no danger level maps to Level.BLUE.
_WARNING_OF_DANGER = {DangerLevel.LOW: Level.NONE, DangerLevel.MODERATE: Level.NONE,
                      DangerLevel.HIGH: Level.YELLOW, DangerLevel.VERY_HIGH: Level.ORANGE,
                      DangerLevel.EXTREME: Level.RED}


def warning_level(danger: DangerLevel) -> Level:
    """Yingji warning colour of a danger level: 三级 yellow, 四级 orange, 五级 red, else none.

    >>> warning_level(DangerLevel.VERY_HIGH)
    <Level.ORANGE: 3>
    """
    return _WARNING_OF_DANGER[DangerLevel(danger)]


# --- Corroboration of fire detections ------------------------------------------------------

Modality = Literal["smoke", "flame", "camera"]
_MODALITIES = ("smoke", "flame", "camera")
_GEOD = Geod(ellps="WGS84")


@lru_cache(maxsize=8)
def _transformers(crs: str) -> tuple[Transformer, Transformer]:
    fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return fwd, inv


def _to_xy(lon: float, lat: float, crs: str) -> np.ndarray:
    x, y = _transformers(crs)[0].transform(lon, lat)
    return np.array([x, y])


def _to_lonlat(xy: np.ndarray, crs: str) -> tuple[float, float]:
    lon, lat = _transformers(crs)[1].transform(float(xy[0]), float(xy[1]))
    return float(lon), float(lat)


def _grid_direction(lon: float, lat: float, azimuth_deg: float, crs: str) -> np.ndarray:
    """Unit vector in the metric grid of a true azimuth at a point (grid convergence included)."""
    lon2, lat2, _ = _GEOD.fwd(lon, lat, azimuth_deg, 1000.0)
    v = _to_xy(lon2, lat2, crs) - _to_xy(lon, lat, crs)
    return v / np.hypot(*v)


def _check_lonlat(lon: float, lat: float, what: str) -> None:
    _checked(f"{what} lon", lon, lo=-180, hi=180, unit="°")
    _checked(f"{what} lat", lat, lo=-90, hi=90, unit="°")


@dataclass(frozen=True, slots=True)
class Detection:
    """One sensor's fire detection.

    ``lon``/``lat`` are the sensor's position. A point sensor (smoke, flame) sees a fire
    near itself; a camera sees it somewhere along ``bearing_deg`` (true, clockwise from
    north), when its analytics report one.
    """

    sensor_id: str
    modality: Modality
    time: datetime
    lon: float
    lat: float
    confidence: float
    bearing_deg: float | None = None

    def __post_init__(self) -> None:
        if not self.sensor_id:
            raise FireInputError("sensor_id must not be empty", field="sensor_id")
        if self.modality not in _MODALITIES:
            raise FireInputError(f"modality must be one of {', '.join(_MODALITIES)}, got {self.modality!r}",
                                 field="modality")
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise FireInputError(f"time must be timezone-aware (UTC), got {self.time.isoformat()}", field="time")
        _check_lonlat(self.lon, self.lat, "detection")
        _checked("confidence", self.confidence, lo=0, hi=1)
        if self.bearing_deg is not None:
            if self.modality != "camera":
                raise FireInputError(f"only a camera reports a bearing, not a {self.modality} sensor",
                                     field="bearing_deg")
            _checked("bearing_deg", self.bearing_deg, lo=0, hi=360, unit="°")

    @property
    def description(self) -> str:
        kind = {"smoke": "smoke detector", "flame": "flame sensor", "camera": "camera"}[self.modality]
        return f"{kind} {self.sensor_id} (confidence {self.confidence:.2f})"


@dataclass(frozen=True, slots=True)
class CorroborationRules:
    """When detections confirm a fire. Every default is this system's assumption (no standard).

    - Two detections are *independent* when they come from different sensors and either
      sense differently (smoke, flame, camera) or stand at least ``min_separation_m`` apart:
      two detectors of one kind side by side share the causes of a false alarm (dust, steam,
      a cooking fire, a sunlit reflection); different kinds of sensing, or the same kind far
      apart, rarely do.
    - They *agree* when they are at most ``window_s`` apart in time and in place: two point
      sensors within ``radius_m`` of each other; a point sensor within ``radius_m`` of a
      camera's bearing line (no farther than ``camera_range_m`` out); two cameras whose
      bearings cross ahead of both within ``camera_range_m`` at an angle of at least
      ``min_crossing_deg``. A camera without a bearing agrees with anything within
      ``camera_range_m``.
    - One detection confirms on its own when the local danger level is at least
      ``danger_confirms`` (三级 by default, the first level with a warning signal).
    - A detection below ``min_confidence`` never confirms; it still asks for a check.
    """

    window_s: float = 900.0
    radius_m: float = 1000.0
    min_separation_m: float = 300.0
    camera_range_m: float = 10_000.0
    min_crossing_deg: float = 10.0
    min_confidence: float = 0.5
    danger_confirms: DangerLevel = DangerLevel.HIGH
    metric_crs: str = METRIC_CRS

    def __post_init__(self) -> None:
        for name in ("window_s", "radius_m", "min_separation_m", "camera_range_m"):
            _checked(name, getattr(self, name), lo=0)
        _checked("min_crossing_deg", self.min_crossing_deg, lo=0, hi=90, unit="°")
        _checked("min_confidence", self.min_confidence, lo=0, hi=1)
        object.__setattr__(self, "danger_confirms", DangerLevel(self.danger_confirms))

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, object]) -> CorroborationRules:
        """Defaults with overrides by field name (unknown keys are ignored)."""
        known = {k: v for k, v in overrides.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


DEFAULT_CORROBORATION = CorroborationRules()


@dataclass(frozen=True, slots=True)
class Corroboration:
    """Verdict on a set of detections of one suspected fire."""

    status: Literal["confirmed", "unverified"]
    reason: str
    detections: tuple[Detection, ...]  # the detections the verdict rests on
    position_lonlat: tuple[float, float] | None = None  # best estimate of the fire, if any
    danger: DangerLevel | None = None

    @property
    def confirmed(self) -> bool:
        return self.status == "confirmed"


def intersect_bearings(a_lonlat: tuple[float, float], a_bearing_deg: float,
                       b_lonlat: tuple[float, float], b_bearing_deg: float, *,
                       max_range_m: float = 10_000.0, min_crossing_deg: float = 10.0,
                       metric_crs: str = METRIC_CRS) -> tuple[float, float] | None:
    """Where two cameras' bearings cross, as (lon, lat); None if they do not cross ahead of
    both within ``max_range_m``, or cross at less than ``min_crossing_deg``.

    >>> intersect_bearings((106.60, 29.70), 45.0, (106.62, 29.70), 315.0) is not None
    True
    """
    _check_lonlat(*a_lonlat, "camera a")
    _check_lonlat(*b_lonlat, "camera b")
    _checked("a_bearing_deg", a_bearing_deg, lo=0, hi=360, unit="°")
    _checked("b_bearing_deg", b_bearing_deg, lo=0, hi=360, unit="°")
    return _crossing(a_lonlat, a_bearing_deg, b_lonlat, b_bearing_deg, max_range_m, min_crossing_deg, metric_crs)


def _crossing(a_lonlat: tuple[float, float], a_brg: float, b_lonlat: tuple[float, float], b_brg: float,
              max_range_m: float, min_crossing_deg: float, crs: str) -> tuple[float, float] | None:
    pa, pb = _to_xy(*a_lonlat, crs), _to_xy(*b_lonlat, crs)
    da, db = _grid_direction(*a_lonlat, a_brg, crs), _grid_direction(*b_lonlat, b_brg, crs)
    cross = da[0] * db[1] - da[1] * db[0]  # sin of the crossing angle
    if abs(cross) < math.sin(math.radians(min_crossing_deg)):
        return None
    # pa + s*da = pb + u*db  (Cramer's rule)
    w = pb - pa
    s = (w[0] * db[1] - w[1] * db[0]) / cross
    u = (w[0] * da[1] - w[1] * da[0]) / cross
    if not (0.0 < s <= max_range_m and 0.0 < u <= max_range_m):
        return None
    return _to_lonlat(pa + s * da, crs)


def _distance_m(a: Detection, b: Detection) -> float:
    return float(_GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2])


def _point_to_ray(point: Detection, cam: Detection, rules: CorroborationRules) -> bool:
    crs = rules.metric_crs
    p, c = _to_xy(point.lon, point.lat, crs), _to_xy(cam.lon, cam.lat, crs)
    d = _grid_direction(cam.lon, cam.lat, cam.bearing_deg, crs)  # type: ignore[arg-type]
    v = p - c
    along = float(v @ d)
    across = abs(float(v[0] * d[1] - v[1] * d[0]))
    return -rules.radius_m <= along <= rules.camera_range_m + rules.radius_m and across <= rules.radius_m


def _agree(a: Detection, b: Detection, rules: CorroborationRules) -> tuple[bool, tuple[float, float] | None]:
    """Whether two detections can be the same fire, and where it is if that follows."""
    cams = [d for d in (a, b) if d.modality == "camera"]
    points = [d for d in (a, b) if d.modality != "camera"]
    if not cams:
        if _distance_m(a, b) > rules.radius_m:
            return False, None
        lon, lat, _ = _GEOD.fwd(a.lon, a.lat, _GEOD.inv(a.lon, a.lat, b.lon, b.lat)[0], _distance_m(a, b) / 2)
        return True, (float(lon), float(lat))
    if any(c.bearing_deg is None for c in cams):
        return _distance_m(a, b) <= rules.camera_range_m, (
            (points[0].lon, points[0].lat) if points else None)
    if points:
        ok = _point_to_ray(points[0], cams[0], rules)
        return ok, ((points[0].lon, points[0].lat) if ok else None)
    x = _crossing((a.lon, a.lat), a.bearing_deg, (b.lon, b.lat), b.bearing_deg,  # type: ignore[arg-type]
                  rules.camera_range_m, rules.min_crossing_deg, rules.metric_crs)
    return x is not None, x


def _independent(a: Detection, b: Detection, rules: CorroborationRules) -> bool:
    if a.sensor_id == b.sensor_id:
        return False
    return a.modality != b.modality or _distance_m(a, b) >= rules.min_separation_m


def corroborate(detections: Sequence[Detection], *, danger: DangerLevel | None = None,
                rules: CorroborationRules = DEFAULT_CORROBORATION) -> Corroboration:
    """Confirm a suspected fire from its detections and the local danger level.

    Confirmed: two independent detections that agree in time and place, or one detection
    while the danger level is at least ``rules.danger_confirms``. Otherwise unverified: a
    drone or a crew should look. Of several agreeing pairs, the most confident is reported.
    """
    if not detections:
        raise FireInputError("no detections to corroborate", field="detections")
    if danger is not None:
        danger = DangerLevel(danger)
    usable = [d for d in detections if d.confidence >= rules.min_confidence]
    window_min = rules.window_s / 60.0

    best: tuple[tuple[float, float], Detection, Detection, tuple[float, float] | None] | None = None
    for a, b in combinations(usable, 2):
        dt_s = abs((a.time - b.time).total_seconds())
        if dt_s > rules.window_s or not _independent(a, b, rules):
            continue
        ok, where = _agree(a, b, rules)
        if ok:
            key = (a.confidence + b.confidence, -dt_s)
            if best is None or key > best[0]:
                first, second = sorted((a, b), key=lambda d: d.time)
                best = (key, first, second, where)
    if best is not None:
        _, a, b, where = best
        dt_min = abs((b.time - a.time).total_seconds()) / 60.0
        reason = (f"Confirmed: two independent detections {dt_min:.1f} min apart: {a.description} and "
                  f"{b.description}")
        if a.modality != "camera" and b.modality != "camera":
            reason += f", {_distance_m(a, b):.0f} m apart"
        elif where is not None and a.modality == b.modality == "camera":
            reason += ", bearings cross"
        return Corroboration("confirmed", reason + ".", (a, b), where, danger)

    anchor = max(usable or detections, key=lambda d: (d.confidence, d.time))
    where = None if anchor.modality == "camera" else (anchor.lon, anchor.lat)
    if usable and danger is not None and danger >= rules.danger_confirms:
        reason = (f"Confirmed: one detection, {anchor.description}, while the forest-fire danger is "
                  f"{danger.label_zh} ({danger.label}), at or above {rules.danger_confirms.label_zh} "
                  f"({rules.danger_confirms.label}).")
        return Corroboration("confirmed", reason, (anchor,), where, danger)

    if not usable:
        why = f"confidence below {rules.min_confidence:.2f}"
    else:
        danger_text = ("danger level unknown" if danger is None else
                       f"danger {danger.label_zh} ({danger.label}) below {rules.danger_confirms.label_zh}")
        why = (f"no independent detection agrees within {window_min:g} min and "
               f"{rules.radius_m:.0f} m; {danger_text}")
    reason = f"Unverified: {anchor.description}; {why}. Send a drone or a crew to check."
    return Corroboration("unverified", reason, (anchor,), where, danger)


# --- Wind-driven spread (Canadian FBP System, FCFDG 1992) ----------------------------------


@dataclass(frozen=True, slots=True)
class FuelType:
    """An FBP fuel type with the rate-of-spread and buildup-effect constants of ST-X-3."""

    code: str
    name: str
    a: float  # FBP Table 6: ROS = a * (1 - exp(-b * ISI)) ** c  (m/min)
    b: float
    c: float
    q: float  # FBP Table 7: proportion of maximum ROS at the fuel's average BUI
    bui0: float  # FBP Table 7: the fuel's average BUI


# FBP (ST-X-3) Tables 6 and 7, the fuel types whose spread needs no more than ISI and BUI
# (C-6, the mixedwoods and the grasses need crown, conifer or curing inputs).
FBP_FUELS: Mapping[str, FuelType] = {f.code: f for f in (
    FuelType("C-1", "spruce-lichen woodland", 90.0, 0.0649, 4.5, 0.90, 72.0),
    FuelType("C-2", "boreal spruce", 110.0, 0.0282, 1.5, 0.70, 64.0),
    FuelType("C-3", "mature jack or lodgepole pine", 110.0, 0.0444, 3.0, 0.75, 62.0),
    FuelType("C-4", "immature jack or lodgepole pine", 110.0, 0.0293, 1.5, 0.80, 66.0),
    FuelType("C-5", "red and white pine", 30.0, 0.0697, 4.0, 0.80, 56.0),
    FuelType("C-7", "ponderosa pine - Douglas-fir", 45.0, 0.0305, 2.0, 0.85, 106.0),
    FuelType("D-1", "leafless aspen", 30.0, 0.0232, 1.6, 0.90, 32.0),
    FuelType("S-1", "jack or lodgepole pine slash", 75.0, 0.0297, 1.3, 0.75, 38.0),
    FuelType("S-2", "white spruce - balsam slash", 40.0, 0.0438, 1.7, 0.75, 63.0),
    FuelType("S-3", "coastal cedar - hemlock - Douglas-fir slash", 55.0, 0.0829, 3.2, 0.75, 31.0),
)}
# Default: C-3, a closed mature pine stand, as the nearest FBP stand-in for the Masson pine
# (Pinus massoniana) forest of the district's ridges. This is an assumption: FBP was not
# calibrated in Chinese subtropical forest; choose the fuel type per area where known.
DEFAULT_FUEL = FBP_FUELS["C-3"]
# FBP Eqs. 71-72: a point-source fire accelerates to its equilibrium spread with alpha =
# 0.115 /min for open fuels; closed canopies use 0.115 - 18.8 CFB^2.5 exp(-8 CFB), which is
# 0.115 for a surface fire (crown fraction burned CFB = 0). Crowning is not modelled here, so
# 0.115 for all fuels: for crowning closed stands this slightly overstates early growth.
_ALPHA_PER_MIN = 0.115
_MIN_DRAWN_M = 1.0


def buildup_effect(bui_value: float, fuel: FuelType = DEFAULT_FUEL) -> float:
    """FBP Eq. 54: BE = exp(50 ln q (1/BUI - 1/BUI0)); 1 when BUI is 0."""
    u = float(_checked("bui", bui_value, lo=0))
    if u <= 0.0:
        return 1.0
    return math.exp(50.0 * math.log(fuel.q) * (1.0 / u - 1.0 / fuel.bui0))


def head_ros(isi_value: float, bui_value: float, fuel: FuelType = DEFAULT_FUEL) -> float:
    """Head fire rate of spread (m/min) on level ground: FBP Eq. 26 times Eq. 54.

    >>> round(head_ros(10.0, 64.0, FBP_FUELS["C-2"]), 1)
    13.4
    """
    r = float(_checked("isi", isi_value, lo=0))
    return fuel.a * (1.0 - math.exp(-fuel.b * r)) ** fuel.c * buildup_effect(bui_value, fuel)


def back_ros(isi_value: float, bui_value: float, wind_kmh: float, fuel: FuelType = DEFAULT_FUEL) -> float:
    """Back fire rate of spread (m/min): FBP Eqs. 75-77.

    The back ISI is 0.208 f(F) exp(-0.05039 W) (Eq. 76 with Eq. 75); with the head ISI
    = 0.208 f(F) exp(0.05039 W) (VW87 Eqs. 24, 26) that is ISI * exp(-2 * 0.05039 W), so
    ``isi_value`` must be the ISI computed with this same wind.
    """
    w = float(_checked("wind_kmh", wind_kmh, lo=0, unit="km/h"))
    r = float(_checked("isi", isi_value, lo=0))
    return head_ros(r * math.exp(-2.0 * 0.05039 * w), bui_value, fuel)


def length_to_breadth(wind_kmh: float) -> float:
    """Length-to-breadth ratio of the fire ellipse: FBP Eq. 79 (after Alexander 1985).

    >>> length_to_breadth(0.0)
    1.0
    """
    w = float(_checked("wind_kmh", wind_kmh, lo=0, unit="km/h"))
    return 1.0 + 8.729 * (1.0 - math.exp(-0.030 * w)) ** 2.155


@dataclass(frozen=True, slots=True)
class SpreadEstimate:
    """Elliptical fire growth from a point ignition (FBP), in WGS84 lon/lat."""

    fuel: str
    elapsed_h: float
    head_ros_m_per_min: float
    back_ros_m_per_min: float
    flank_ros_m_per_min: float
    length_to_breadth: float
    head_distance_m: float
    back_distance_m: float
    length_m: float
    breadth_m: float
    area_ha: float
    downwind_deg: float  # the direction the head runs to (true, clockwise from north)
    perimeter: Polygon = field(compare=False)  # lon/lat


def spread_estimate(ignition_lonlat: tuple[float, float], *, wind_kmh: float, wind_from_deg: float,
                    isi: float, bui: float, elapsed_h: float, fuel: FuelType = DEFAULT_FUEL,
                    vertices: int = 72, metric_crs: str = METRIC_CRS) -> SpreadEstimate:
    """Head rate of spread and elliptical perimeter after ``elapsed_h`` hours.

    ``wind_from_deg`` is where the wind blows from (meteorological convention); the head runs
    downwind. ``isi`` must be computed with this wind (``isi(ffmc, wind_kmh)``). Level
    ground: slope, spotting and crowning are not modelled, so on the district's ridges the
    upslope run can be faster. Spread distances include FBP's point-source acceleration
    (Eq. 71); the ellipse has the ignition on its major axis, DH ahead and DB behind, and
    breadth (DH + DB) / LB (FBP Eqs. 79, 89).
    """
    lon, lat = ignition_lonlat
    _check_lonlat(lon, lat, "ignition")
    _checked("wind_from_deg", wind_from_deg, lo=0, hi=360, unit="°")
    hours = float(_checked("elapsed_h", elapsed_h, lo=0, unit="h"))
    if hours <= 0.0:
        raise FireInputError(f"elapsed_h must be positive, got {elapsed_h}", field="elapsed_h")
    if vertices < 8:
        raise FireInputError(f"vertices must be at least 8, got {vertices}", field="vertices")
    ros = head_ros(isi, bui, fuel)
    bros = back_ros(isi, bui, wind_kmh, fuel)
    lb = length_to_breadth(wind_kmh)
    fros = (ros + bros) / (2.0 * lb)  # FBP Eq. 89
    t_min = hours * 60.0
    grow = t_min + math.exp(-_ALPHA_PER_MIN * t_min) / _ALPHA_PER_MIN - 1.0 / _ALPHA_PER_MIN  # FBP Eq. 71
    dh, db = ros * grow, bros * grow
    length = dh + db
    breadth = length / lb
    downwind = (float(wind_from_deg) + 180.0) % 360.0
    origin = _to_xy(lon, lat, metric_crs)
    u = _grid_direction(lon, lat, downwind, metric_crs)
    v = np.array([-u[1], u[0]])
    centre = origin + u * (dh - db) / 2.0
    theta = np.linspace(0.0, 2.0 * math.pi, vertices, endpoint=False)
    # Drawn no smaller than _MIN_DRAWN_M across, so a fire that barely moves (a very low BUI)
    # still has a valid polygon; the numbers in the result are not clamped.
    semi_major = max(length, _MIN_DRAWN_M) / 2.0
    semi_minor = max(breadth, _MIN_DRAWN_M) / 2.0
    pts = (centre[:, None] + np.outer(u, np.cos(theta)) * semi_major
           + np.outer(v, np.sin(theta)) * semi_minor)
    lons, lats = _transformers(metric_crs)[1].transform(pts[0], pts[1])
    perimeter = Polygon(list(zip(np.asarray(lons).tolist(), np.asarray(lats).tolist(), strict=True)))
    area_ha = math.pi * (length / 2.0) * (breadth / 2.0) / 10_000.0
    return SpreadEstimate(fuel.code, hours, ros, bros, fros, lb, dh, db, length, breadth, area_ha,
                          downwind, perimeter)
