"""Scripted surface weather: each weather station's records at a simulated time.

The script gives one row of values per scenario day at local noon (the observation time
of the Canadian FWI System, Van Wagner 1987) for a reference height; between noons the
values run linearly, and a diurnal cycle that is zero at noon rides on top (temperature
highest at 14:00 and lowest at 02:00 local, humidity the other way round, wind strongest in
the afternoon). Stations differ by height and exposure:

- temperature falls 6.5 °C per km above the reference height (the ICAO standard
  atmosphere's tropospheric lapse rate, ICAO Doc 7488);
- the dew point is the reference one (a well-mixed afternoon boundary layer), so relative
  humidity follows from the station's temperature (Magnus formula, Alduchov & Eskridge
  1996, a = 17.625, b = 243.04 °C);
- station pressure is the sea-level pressure reduced by the standard atmosphere's
  barometric formula, p = p0 (1 − 2.25577e-5 z)^5.25588 (ICAO Doc 7488), with a ±80 Pa
  semi-diurnal tide (peaks at 10:00 and 22:00 local);
- ``wind_factor`` scales the wind (a ridge top is windier than a valley).

A working sensor never reads perfectly flat, and the quality checks know it (minimum
variability over an hour: 0.1 °C, 1 % RH, 0.5 m/s, 10°; Zahumenský 2004): each record
carries a small, regular sine of a few tens of minutes, different per station; humidity reads
exactly 100 % in saturated air (from 99 % up), as a capacitive sensor does.

Scenario hour 0 is local midnight plus ``start_local_h`` hours (default 0): noon of day
``d`` is scenario hour 24 d + 12 − start_local_h.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .flood import ScenarioError, number
from .shapes import wave

__all__ = ["MAGNUS_A", "MAGNUS_B_C", "NoonRow", "WeatherScript", "dew_point_c", "relative_humidity_pct",
           "station_pressure_pa"]

MAGNUS_A, MAGNUS_B_C = 17.625, 243.04  # Alduchov & Eskridge (1996), over water
_TIDE_PA = 80.0


def dew_point_c(temp_c: float, rh_pct: float) -> float:
    """Dew point (°C) from air temperature and relative humidity (Magnus formula)."""
    gamma = math.log(max(rh_pct, 0.1) / 100.0) + MAGNUS_A * temp_c / (MAGNUS_B_C + temp_c)
    return MAGNUS_B_C * gamma / (MAGNUS_A - gamma)


def relative_humidity_pct(temp_c: float, dew_c: float) -> float:
    """Relative humidity (%) from air temperature and dew point (Magnus formula), at most 100."""
    rh = 100.0 * math.exp(MAGNUS_A * dew_c / (MAGNUS_B_C + dew_c) - MAGNUS_A * temp_c / (MAGNUS_B_C + temp_c))
    return min(rh, 100.0)


def station_pressure_pa(sea_level_pa: float, elevation_m: float) -> float:
    """Station pressure from sea-level pressure (ICAO standard atmosphere, Doc 7488)."""
    return sea_level_pa * (1.0 - 2.25577e-5 * elevation_m) ** 5.25588


@dataclass(frozen=True, slots=True)
class NoonRow:
    """One day's noon values at the reference height."""

    temp_c: float
    rh_pct: float
    wind_mps: float
    wind_from_deg: float
    pressure_hpa: float = 1005.0  # sea level


def _shape(local_h: float) -> float:
    """Diurnal shape: 0 at 12:00, +0.13 at 14:00 (highest), −1.87 at 02:00 (lowest)."""
    return math.cos(2.0 * math.pi * (local_h - 14.0) / 24.0) - math.cos(2.0 * math.pi * (12.0 - 14.0) / 24.0)


@dataclass(frozen=True, slots=True)
class WeatherScript:
    """Noon rows by scenario day, the diurnal amplitudes and per-station exposure."""

    noon: tuple[NoonRow, ...]
    ref_elevation_m: float = 300.0
    lapse_c_per_km: float = 6.5
    temp_amplitude_c: float = 5.0  # half the daily range
    rh_amplitude_pct: float = 15.0
    start_local_h: float = 0.0
    wind_factor: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, start_local_h: float, where: str) -> WeatherScript:
        rows = raw.get("noon")
        if not isinstance(rows, list) or not rows:
            raise ScenarioError(f"{where}.noon: a list of one row per day is required")
        noon = []
        for i, row in enumerate(rows):
            w = f"{where}.noon[{i}]"
            if not isinstance(row, dict):
                raise ScenarioError(f"{w}: expected a mapping")
            noon.append(NoonRow(number(row, "temp_c", w), number(row, "rh_pct", w), number(row, "wind_mps", w),
                                number(row, "wind_from_deg", w), number(row, "pressure_hpa", w, 1005.0)))
            if not 0 < noon[-1].rh_pct <= 100 or noon[-1].wind_mps < 0:
                raise ScenarioError(f"{w}: rh_pct must be in (0, 100] and wind_mps not negative")
        stations = raw.get("stations") or {}
        factors = {str(k): number(v, "wind_factor", f"{where}.stations.{k}", 1.0) for k, v in stations.items()}
        return cls(tuple(noon), number(raw, "ref_elevation_m", where, 300.0),
                   number(raw, "lapse_c_per_km", where, 6.5), number(raw, "temp_amplitude_c", where, 5.0),
                   number(raw, "rh_amplitude_pct", where, 15.0), start_local_h, MappingProxyType(factors))

    def noon_h(self, day: int) -> float:
        """Scenario hour of local noon on ``day`` (0 = the first day)."""
        return 24.0 * day + 12.0 - self.start_local_h

    def _interp(self, h: float) -> tuple[NoonRow, float]:
        """The noon values interpolated at scenario hour ``h``, and the wind direction."""
        rows = self.noon
        first, last = self.noon_h(0), self.noon_h(len(rows) - 1)
        if h <= first or len(rows) == 1:
            return rows[0], rows[0].wind_from_deg
        if h >= last:
            return rows[-1], rows[-1].wind_from_deg
        d = int((h - first) // 24.0)
        a, b = rows[d], rows[d + 1]
        x = (h - self.noon_h(d)) / 24.0

        def lerp(u: float, v: float) -> float:
            return u + (v - u) * x

        turn = (b.wind_from_deg - a.wind_from_deg + 180.0) % 360.0 - 180.0  # the shorter way round
        row = NoonRow(lerp(a.temp_c, b.temp_c), lerp(a.rh_pct, b.rh_pct), lerp(a.wind_mps, b.wind_mps),
                      0.0, lerp(a.pressure_hpa, b.pressure_hpa))
        return row, (a.wind_from_deg + turn * x) % 360.0

    def reference(self, elapsed_s: float) -> tuple[float, float]:
        """(temperature °C, relative humidity %) at the reference height, without sensor variability."""
        h = elapsed_s / 3600.0
        row, _ = self._interp(h)
        s = _shape((h + self.start_local_h) % 24.0)
        temp = row.temp_c + self.temp_amplitude_c * s
        rh = min(max(row.rh_pct - self.rh_amplitude_pct * s, 3.0), 100.0)
        return temp, rh

    def records(self, sensor_id: str, elapsed_s: float, elevation_m: float | None) -> dict[str, float]:
        """Every weather record of one station (without rain, which comes from the storms)."""
        h = elapsed_s / 3600.0
        z = self.ref_elevation_m if elevation_m is None else elevation_m
        row, wind_from = self._interp(h)
        local_h = (h + self.start_local_h) % 24.0
        s = _shape(local_h)
        phase = (zlib.crc32(sensor_id.encode()) % 1000) / 1000.0 * 2.0 * math.pi
        temp_ref, rh_ref = self.reference(elapsed_s)
        dew_ref = dew_point_c(temp_ref, rh_ref)
        temp = temp_ref - self.lapse_c_per_km * (z - self.ref_elevation_m) / 1000.0
        temp += wave(elapsed_s, 37 * 60.0, 0.15, phase)
        dew = min(dew_ref, temp)
        rh = relative_humidity_pct(temp, dew) + wave(elapsed_s, 41 * 60.0, 1.5, phase)
        # A capacitive sensor in saturated air reads 100 %; below that it never rests.
        rh = 100.0 if rh >= 99.0 else max(rh, 1.0)
        factor = self.wind_factor.get(sensor_id, 1.0)
        wind = factor * row.wind_mps * (1.0 + 0.3 * s) + wave(elapsed_s, 23 * 60.0, 0.4, phase)
        wind_dir = (wind_from + wave(elapsed_s, 47 * 60.0, 12.0, phase)) % 360.0
        sea_pa = row.pressure_hpa * 100.0 + _TIDE_PA * math.cos(4.0 * math.pi * (local_h - 10.0) / 24.0)
        return {
            "temp": round(temp, 2),
            "humidity": round(rh, 1),
            "wind_speed": round(max(wind, 0.0), 2),
            "wind_dir": round(wind_dir, 1) % 360.0,
            "dew_point": round(dew, 2),
            "pressure": float(round(station_pressure_pa(sea_pa, z))),
        }
