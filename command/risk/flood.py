"""River floods: rate of rise, trend forecast, Muskingum routing, rating curves, flood extent.

Pure: arrays, aware UTC datetimes and frozen dataclasses in, the same out. No clock, no I/O.

Heights carry their datum. Gauge levels are in the gauge's datum (Wusong or Huanghai 1985;
Chongqing bulletins mix them); the terrain grid is metres AMSL, taken here as the 1985
National Height Datum ("Huanghai"). Convert a gauge level with ``convert_datum_m`` before
comparing it with the ground.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy import ndimage, signal
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from .rules import Level, river_level_signal

if TYPE_CHECKING:  # the grid is any object with Terrain's fields; no district loading here
    from command.district import Terrain

__all__ = [
    "DEFAULT_HORIZON_H",
    "DEFAULT_WINDOW_H",
    "DatumOffset",
    "FloodError",
    "FloodExtent",
    "LevelForecast",
    "RatingCurve",
    "RiverThresholds",
    "RoutedForecast",
    "RoutingUnstable",
    "cell_area_m2",
    "convert_datum_m",
    "flood_extent",
    "forecast_by_trend",
    "hours_to_level",
    "mask_polygons",
    "muskingum_coefficients",
    "muskingum_route",
    "rise_rate_m_per_h",
    "rise_rates_m_per_h",
    "route_to_downstream",
    "water_mask",
]


class FloodError(ValueError):
    """Input the flood models cannot use; the message says what and why."""


class RoutingUnstable(FloodError):
    """Muskingum parameters outside 2KX ≤ Δt ≤ 2K(1−X): the routed hydrograph would be wrong."""


DEFAULT_WINDOW_H = 3.0  # trailing window of the rate of rise (hours)
DEFAULT_HORIZON_H = 72.0  # trend extrapolation beyond three days is not a forecast


# --- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiverThresholds:
    """A gauge's characteristic levels (its own datum) for the MWR (2013) hydrological signals.

    Warning, guaranteed and historical-maximum levels are the gauge's published values; there
    is no national default. ``approach_m`` is the blue band below the warning level (the
    measures leave it to the issuing office; 1.0 m is the service's default, as in
    ``command.risk.assess``). Without a historical maximum, red is never reached.
    """

    warning_m: float
    guaranteed_m: float
    historical_max_m: float = math.inf
    approach_m: float = 1.0

    def __post_init__(self) -> None:
        for name in ("warning_m", "guaranteed_m", "approach_m"):
            if not math.isfinite(getattr(self, name)):
                raise FloodError(f"{name} must be a finite number, got {getattr(self, name)}")
        if math.isnan(self.historical_max_m):
            raise FloodError("historical_max_m must be a number (or infinity for none), got nan")
        if not self.warning_m <= self.guaranteed_m <= self.historical_max_m:
            raise FloodError(f"thresholds out of order: warning {self.warning_m}, guaranteed "
                             f"{self.guaranteed_m}, historical max {self.historical_max_m}")
        if self.approach_m < 0:
            raise FloodError(f"approach_m must not be negative, got {self.approach_m}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float], *, approach_m: float = 1.0) -> RiverThresholds:
        """From a gauge's ``thresholds`` (registry keys); ``approach_m`` there overrides the argument."""
        missing = [k for k in ("warning_m", "guaranteed_m") if k not in values]
        if missing:
            raise FloodError(f"river thresholds lack {', '.join(missing)} (have: {', '.join(sorted(values)) or 'none'})")
        try:
            return cls(warning_m=float(values["warning_m"]), guaranteed_m=float(values["guaranteed_m"]),
                       historical_max_m=float(values.get("historical_max_m", math.inf)),
                       approach_m=float(values.get("approach_m", approach_m)))
        except (TypeError, ValueError) as err:
            if isinstance(err, FloodError):
                raise
            raise FloodError(f"river thresholds must be numbers: {err}") from None

    def signal(self, level_m: float) -> Level:
        """Signal level of one reading (``rules.river_level_signal``); NONE for a NaN level."""
        if math.isnan(level_m):
            return Level.NONE
        return river_level_signal(level_m, warning_m=self.warning_m, guaranteed_m=self.guaranteed_m,
                                  historical_max_m=self.historical_max_m, approach_m=self.approach_m)


# --- time helpers -----------------------------------------------------------------------------


def _hours(times: Sequence[datetime], origin: datetime) -> np.ndarray:
    """Hours after ``origin`` of aware datetimes; raise on naive ones."""
    out = np.empty(len(times), dtype=float)
    for i, t in enumerate(times):
        if t.tzinfo is None or t.utcoffset() is None:
            raise FloodError(f"time {t.isoformat()} has no time zone: times must be aware (UTC)")
        out[i] = (t - origin).total_seconds() / 3600.0
    return out


def _series(times: Sequence[datetime], levels_m: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hours after the first time, levels) with times checked strictly increasing."""
    y = np.asarray(levels_m, dtype=float)
    if y.ndim != 1 or len(times) != y.size:
        raise FloodError(f"{len(times)} times but {y.size} levels")
    if not times:
        return np.empty(0), y
    t_h = _hours(times, times[0])
    bad = np.flatnonzero(np.diff(t_h) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise FloodError(f"times must increase: {times[i].isoformat()} (index {i}) is not after "
                         f"{times[i - 1].isoformat()}")
    return t_h, y


# --- 1. rate of rise --------------------------------------------------------------------------


def _slope(t_h: np.ndarray, y: np.ndarray, min_points: int) -> float:
    """Ordinary least-squares slope of y on t (Σ(t−t̄)(y−ȳ) / Σ(t−t̄)²), NaN-free inputs."""
    ok = np.isfinite(y)
    t, v = t_h[ok], y[ok]
    if t.size < min_points:
        return math.nan
    dt = t - t.mean()
    sxx = float(dt @ dt)
    if sxx <= 0.0:
        return math.nan
    return float(dt @ (v - v.mean())) / sxx


def rise_rates_m_per_h(times: Sequence[datetime], levels_m: Sequence[float] | np.ndarray, *,
                       window_h: float = DEFAULT_WINDOW_H, min_points: int = 2) -> np.ndarray:
    """Rate of rise (m/h) at every reading: least-squares slope over [t − window_h, t].

    The window is closed at both ends and includes the reading itself. Least squares weighs
    every reading, so irregular sampling is fine; NaN levels are left out. A window with
    fewer than ``min_points`` (≥ 2) readings gives NaN. Times must strictly increase.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2020, 8, 19, tzinfo=UTC)
    >>> rise_rates_m_per_h([t0, t0 + timedelta(hours=1)], [180.0, 180.3]).round(3).tolist()
    [nan, 0.3]
    """
    if not (window_h > 0 and math.isfinite(window_h)):
        raise FloodError(f"window_h must be a positive number of hours, got {window_h}")
    if min_points < 2:
        raise FloodError(f"a slope needs min_points >= 2, got {min_points}")
    t_h, y = _series(times, levels_m)
    # Small tolerance so a reading exactly window_h earlier is inside despite rounding.
    starts = np.searchsorted(t_h, t_h - window_h - 1e-9, side="left")
    return np.array([_slope(t_h[s:i + 1], y[s:i + 1], min_points) for i, s in enumerate(starts)])


def rise_rate_m_per_h(times: Sequence[datetime], levels_m: Sequence[float] | np.ndarray, *, now: datetime,
                      window_h: float = DEFAULT_WINDOW_H, min_points: int = 2) -> float:
    """Rate of rise (m/h) at ``now``: least-squares slope of the readings in [now − window_h, now]."""
    if not (window_h > 0 and math.isfinite(window_h)):
        raise FloodError(f"window_h must be a positive number of hours, got {window_h}")
    if min_points < 2:
        raise FloodError(f"a slope needs min_points >= 2, got {min_points}")
    t_h, y = _series(times, levels_m)
    if not times:
        return math.nan
    now_h = _hours([now], times[0])[0]
    sel = (t_h >= now_h - window_h - 1e-9) & (t_h <= now_h + 1e-9)
    return _slope(t_h[sel], y[sel], min_points)


# --- 2. trend forecast ------------------------------------------------------------------------


def hours_to_level(level_m: float, rise_m_per_h: float, target_m: float, *,
                   horizon_h: float = DEFAULT_HORIZON_H) -> float | None:
    """Hours until ``target_m`` at the current rate of rise (linear extrapolation).

    None when the level is not rising, is already at or above the target, is unknown (NaN),
    or would reach it only after ``horizon_h``.

    >>> hours_to_level(179.5, 0.25, 180.5)
    4.0
    """
    if not (horizon_h > 0):
        raise FloodError(f"horizon_h must be positive, got {horizon_h}")
    if not (math.isfinite(level_m) and math.isfinite(rise_m_per_h)) or math.isnan(target_m):
        return None
    if rise_m_per_h <= 0.0 or level_m >= target_m:
        return None
    hours = (target_m - level_m) / rise_m_per_h
    return hours if hours <= horizon_h else None


@dataclass(frozen=True, slots=True)
class LevelForecast:
    """Trend extrapolation from the newest reading; hours are None when not applicable."""

    time: datetime  # the newest reading used
    level_m: float
    rise_m_per_h: float  # NaN when the window has too few readings
    signal: Level  # now, from the newest reading
    hours_to_warning: float | None
    hours_to_guaranteed: float | None
    hours_to_historical_max: float | None
    window_h: float
    horizon_h: float


def forecast_by_trend(times: Sequence[datetime], levels_m: Sequence[float] | np.ndarray,
                      thresholds: RiverThresholds, *, now: datetime | None = None,
                      window_h: float = DEFAULT_WINDOW_H, horizon_h: float = DEFAULT_HORIZON_H) -> LevelForecast:
    """Hours until each threshold if the level keeps rising at its current least-squares rate.

    Uses the newest reading at or before ``now`` (default: the newest reading). A straight
    line is the crudest forecast: it ignores the wave's crest, so it is capped at
    ``horizon_h`` and is meant for the next few hours only.
    """
    t_h, y = _series(times, levels_m)
    if not times:
        raise FloodError("no readings to forecast from")
    now = times[-1] if now is None else now
    now_h = _hours([now], times[0])[0]
    usable = np.flatnonzero((t_h <= now_h + 1e-9) & np.isfinite(y))
    if usable.size == 0:
        raise FloodError(f"no reading with a level at or before {now.isoformat()}")
    i = int(usable[-1])
    rise = rise_rate_m_per_h(times, y, now=times[i], window_h=window_h)
    level = float(y[i])
    return LevelForecast(
        time=times[i], level_m=level, rise_m_per_h=rise, signal=thresholds.signal(level),
        hours_to_warning=hours_to_level(level, rise, thresholds.warning_m, horizon_h=horizon_h),
        hours_to_guaranteed=hours_to_level(level, rise, thresholds.guaranteed_m, horizon_h=horizon_h),
        hours_to_historical_max=hours_to_level(level, rise, thresholds.historical_max_m, horizon_h=horizon_h),
        window_h=window_h, horizon_h=horizon_h)


# --- 3. Muskingum routing and rating curves ---------------------------------------------------
# McCarthy (1938); Chow, Maidment & Mays (1988), Applied Hydrology, §8.4, Eqs. 8.4.7–8.4.10:
#   O[j+1] = C0·I[j+1] + C1·I[j] + C2·O[j]          (Chow's C1, C2, C3)
#   C0 = (Δt − 2KX) / (2K(1−X) + Δt)
#   C1 = (Δt + 2KX) / (2K(1−X) + Δt)
#   C2 = (2K(1−X) − Δt) / (2K(1−X) + Δt)           C0 + C1 + C2 = 1
# 2KX ≤ Δt ≤ 2K(1−X) keeps C0 and C2 non-negative; outside it the outflow dips below zero
# or oscillates (Chow et al. 1988, §8.4).


def muskingum_coefficients(k_h: float, x: float, dt_h: float) -> tuple[float, float, float]:
    """(C0, C1, C2) of the Muskingum equation for storage constant K, weight X and step Δt (hours).

    >>> [round(c, 4) for c in muskingum_coefficients(2.3, 0.15, 1.0)]  # Chow et al. (1988) Example 8.4.1
    [0.0631, 0.3442, 0.5927]
    """
    for name, v in (("k_h", k_h), ("x", x), ("dt_h", dt_h)):
        if not math.isfinite(v):
            raise FloodError(f"{name} must be a finite number, got {v}")
    if k_h <= 0:
        raise FloodError(f"K must be positive hours, got {k_h}")
    if dt_h <= 0:
        raise FloodError(f"Δt must be positive hours, got {dt_h}")
    if not 0.0 <= x <= 0.5:
        raise FloodError(f"X must lie in [0, 0.5], got {x}")
    lo, hi = 2 * k_h * x, 2 * k_h * (1 - x)
    tol = 1e-9 * max(1.0, hi)
    if not lo - tol <= dt_h <= hi + tol:
        raise RoutingUnstable(f"Δt = {dt_h:g} h outside 2KX = {lo:g} h ≤ Δt ≤ 2K(1−X) = {hi:g} h "
                              f"(K = {k_h:g} h, X = {x:g}): choose Δt in that range, or split the reach")
    den = hi + dt_h
    c0 = max((dt_h - lo) / den, 0.0)  # clamp rounding at the boundary
    c2 = max((hi - dt_h) / den, 0.0)
    return c0, 1.0 - c0 - c2, c2


def muskingum_route(inflow_m3s: Sequence[float] | np.ndarray, *, k_h: float, x: float, dt_h: float,
                    initial_outflow_m3s: float | None = None) -> np.ndarray:
    """Outflow hydrograph of a reach for an inflow sampled every ``dt_h`` hours.

    The reach starts with outflow ``initial_outflow_m3s`` (default: the first inflow, a
    steady state). The inflow must have no gaps (NaN) — fill or shorten it first.
    """
    q_in = np.asarray(inflow_m3s, dtype=float)
    if q_in.ndim != 1:
        raise FloodError(f"inflow must be a 1-D series, got shape {q_in.shape}")
    if q_in.size == 0:
        return q_in.copy()
    if not np.all(np.isfinite(q_in)):
        raise FloodError(f"inflow has {int(np.sum(~np.isfinite(q_in)))} missing value(s): fill or shorten it")
    c0, c1, c2 = muskingum_coefficients(k_h, x, dt_h)
    o0 = float(q_in[0]) if initial_outflow_m3s is None else float(initial_outflow_m3s)
    if not math.isfinite(o0):
        raise FloodError(f"initial outflow must be a finite number, got {o0}")
    # The recursion is a first-order IIR filter; lfilter runs it in C. The state makes the
    # first output equal o0: y[0] = C0·I[0] + zi.
    out, _ = signal.lfilter([c0, c1], [1.0, -c2], q_in, zi=[o0 - c0 * q_in[0]])
    return out


@dataclass(frozen=True, slots=True)
class RatingCurve:
    """Stage–discharge relation Q = a·(h − h0)^b of a gauge (its own datum).

    The power-law rating (WMO 2010, Manual on Stream Gauging, WMO-No. 1044, Vol. II, ch. 1):
    ``h0_m`` is the stage of zero flow, ``a`` and ``b`` are fitted to the gauge's discharge
    measurements. Q is 0 at or below h0; NaN in gives NaN out.
    """

    a: float  # m³/s per m^b
    h0_m: float
    b: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and self.a > 0):
            raise FloodError(f"rating coefficient a must be positive, got {self.a}")
        if not (math.isfinite(self.b) and self.b > 0):
            raise FloodError(f"rating exponent b must be positive, got {self.b}")
        if not math.isfinite(self.h0_m):
            raise FloodError(f"rating zero-flow stage h0_m must be a finite number, got {self.h0_m}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> RatingCurve:
        """From ``{"a": ..., "h0_m": ..., "b": ...}`` (unknown keys are ignored)."""
        missing = [k for k in ("a", "h0_m", "b") if k not in values]
        if missing:
            raise FloodError(f"rating curve lacks {', '.join(missing)} (have: {', '.join(sorted(values)) or 'none'})")
        try:
            a, h0, b = float(values["a"]), float(values["h0_m"]), float(values["b"])
        except (TypeError, ValueError) as err:
            raise FloodError(f"rating curve values must be numbers: {err}") from None
        return cls(a=a, h0_m=h0, b=b)

    def discharge_m3s(self, level_m: float | np.ndarray) -> float | np.ndarray:
        """Q (m³/s) for stage h (m); 0 at or below h0."""
        h = np.asarray(level_m, dtype=float)
        with np.errstate(invalid="ignore"):
            q = self.a * np.power(np.clip(h - self.h0_m, 0.0, None), self.b)
        return float(q) if q.ndim == 0 else q

    def level_m(self, discharge_m3s: float | np.ndarray) -> float | np.ndarray:
        """Stage h (m) for Q (m³/s): h0 + (Q/a)^(1/b); NaN for a negative discharge."""
        q = np.asarray(discharge_m3s, dtype=float)
        with np.errstate(invalid="ignore"):
            h = np.where(q >= 0, self.h0_m + np.power(np.clip(q, 0.0, None) / self.a, 1.0 / self.b), np.nan)
        return float(h) if h.ndim == 0 else h


@dataclass(frozen=True, slots=True, eq=False)
class RoutedForecast:
    """Downstream level expected from an upstream gauge, on a regular time step.

    ``times[i]`` are ``start + i·dt_h``; the series runs ``horizon_h`` past ``now`` (the newest
    upstream reading). Hours count from ``now``; None when the downstream level is already at or
    above the threshold at ``now``, or does not reach it within the horizon.
    """

    times: tuple[datetime, ...]
    upstream_m3s: np.ndarray  # inflow used (observed, then held at its last value)
    downstream_m3s: np.ndarray
    downstream_level_m: np.ndarray  # in the downstream gauge's datum
    now: datetime
    level_now_m: float
    peak_level_m: float  # highest level after now
    peak_time: datetime
    hours_to_warning: float | None
    hours_to_guaranteed: float | None
    hours_to_historical_max: float | None


def _first_crossing_h(t_h: np.ndarray, y: np.ndarray, target: float) -> float | None:
    """Hours (after t_h[0]) when y first reaches target, interpolated; None if y[0] already does or never."""
    if not math.isfinite(target) or not y.size or y[0] >= target:
        return None
    hit = np.flatnonzero(y >= target)
    if not hit.size:
        return None
    j = int(hit[0])
    frac = (target - y[j - 1]) / (y[j] - y[j - 1])
    return float(t_h[j - 1] + frac * (t_h[j] - t_h[j - 1]) - t_h[0])


def route_to_downstream(times: Sequence[datetime], upstream_levels_m: Sequence[float] | np.ndarray, *,
                        upstream_rating: RatingCurve, downstream_rating: RatingCurve,
                        thresholds: RiverThresholds, k_h: float, x: float, dt_h: float,
                        horizon_h: float = DEFAULT_HORIZON_H, lateral_m3s: float = 0.0) -> RoutedForecast:
    """Downstream gauge levels from upstream gauge levels: rating → Muskingum → inverse rating.

    Upstream levels (any sampling; NaN readings are skipped and gaps interpolated linearly)
    are resampled every ``dt_h`` hours from the first reading, turned into discharge with the
    upstream rating, held at the last discharge for ``horizon_h`` past the newest reading
    (persistence: the forecast is the reach's response to the wave already observed), routed
    through the reach, ``lateral_m3s`` (tributary inflow between the gauges) added, and turned
    into downstream levels with the downstream rating. The reach starts in steady state at the
    first reading, so the record should begin a few K before the rise.
    """
    if not (horizon_h > 0 and math.isfinite(horizon_h)):
        raise FloodError(f"horizon_h must be a positive number of hours, got {horizon_h}")
    if not (math.isfinite(lateral_m3s) and lateral_m3s >= 0):
        raise FloodError(f"lateral_m3s must be a non-negative number, got {lateral_m3s}")
    muskingum_coefficients(k_h, x, dt_h)  # reject bad parameters before any work
    t_h, h_up = _series(times, upstream_levels_m)
    ok = np.isfinite(h_up)
    if not ok.any():
        raise FloodError("no upstream level to route")
    t_obs, h_obs = t_h[ok], h_up[ok]
    now_h = float(t_obs[-1])
    n_steps = int(math.ceil((now_h + horizon_h) / dt_h - 1e-9))
    grid_h = dt_h * np.arange(n_steps + 1)
    h_grid = np.interp(grid_h, t_obs, h_obs)  # holds the end values outside the readings
    q_up = np.asarray(upstream_rating.discharge_m3s(h_grid), dtype=float)
    q_down = muskingum_route(q_up, k_h=k_h, x=x, dt_h=dt_h) + lateral_m3s
    level_down = np.asarray(downstream_rating.level_m(q_down), dtype=float)

    # The forecast starts at now: interpolate the routed series there, then the steps after.
    level_now = float(np.interp(now_h, grid_h, level_down))
    after = grid_h > now_h + 1e-9
    f_h = np.concatenate(([now_h], grid_h[after]))
    f_level = np.concatenate(([level_now], level_down[after]))
    k_peak = int(np.argmax(f_level))
    origin = times[0]
    for arr in (q_up, q_down, level_down):
        arr.setflags(write=False)
    return RoutedForecast(
        times=tuple(origin + timedelta(hours=float(h)) for h in grid_h),
        upstream_m3s=q_up, downstream_m3s=q_down, downstream_level_m=level_down,
        now=origin + timedelta(hours=now_h), level_now_m=level_now,
        peak_level_m=float(f_level[k_peak]), peak_time=origin + timedelta(hours=float(f_h[k_peak])),
        hours_to_warning=_first_crossing_h(f_h, f_level, thresholds.warning_m),
        hours_to_guaranteed=_first_crossing_h(f_h, f_level, thresholds.guaranteed_m),
        hours_to_historical_max=_first_crossing_h(f_h, f_level, thresholds.historical_max_m))


# --- 4. vertical datums -----------------------------------------------------------------------
# Wusong zero (吴淞零点): the lowest tide at Wusongkou 1871–1900, carried up the Yangtze by
# levelling; Huanghai here means the 1985 National Height Datum (mean sea at Qingdao
# 1952–1979). The difference Wusong − Huanghai is not one number: it varies along the river
# and between levelling campaigns (different gauges quote different values), so it is a
# required per-gauge parameter. No authoritative published table was found to cite; take it
# from the gauge's own record (its station book states both zeros). The small 1956 → 1985
# Huanghai change (about 0.029 m) is not modelled: "Huanghai" means 1985.

@dataclass(frozen=True, slots=True)
class DatumOffset:
    """Wusong − Huanghai 1985 at one gauge (metres; positive: Wusong numbers are higher)."""

    wusong_minus_huanghai_m: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.wusong_minus_huanghai_m):
            raise FloodError(f"wusong_minus_huanghai_m must be a finite number, got {self.wusong_minus_huanghai_m}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> DatumOffset:
        """From ``{"wusong_minus_huanghai_m": ...}``; required, there is no default."""
        if "wusong_minus_huanghai_m" not in values:
            raise FloodError("datum offset lacks wusong_minus_huanghai_m (station-specific; no default)")
        try:
            return cls(float(values["wusong_minus_huanghai_m"]))
        except (TypeError, ValueError) as err:
            if isinstance(err, FloodError):
                raise
            raise FloodError(f"wusong_minus_huanghai_m must be a number: {err}") from None


_DATUMS = ("Wusong", "Huanghai")


def convert_datum_m(level_m: float | np.ndarray, *, from_datum: str, to_datum: str,
                    offset: DatumOffset | None = None) -> float | np.ndarray:
    """A height in one datum expressed in the other (``offset`` required when they differ).

    >>> convert_datum_m(183.5, from_datum="Wusong", to_datum="Huanghai", offset=DatumOffset(1.5))
    182.0
    """
    for d in (from_datum, to_datum):
        if d not in _DATUMS:
            raise FloodError(f"unknown vertical datum {d!r} (known: {', '.join(_DATUMS)})")
    h = np.asarray(level_m, dtype=float)
    if from_datum != to_datum:
        if offset is None:
            raise FloodError(f"converting {from_datum} to {to_datum} needs the gauge's Wusong − Huanghai offset")
        sign = -1.0 if from_datum == "Wusong" else 1.0
        h = h + sign * offset.wusong_minus_huanghai_m
    return float(h) if h.ndim == 0 else h


# --- 5. flood extent on the terrain grid ------------------------------------------------------
# Height above the river ("bathtub" with connectivity): a cell floods when its ground lies
# below the water surface and it is joined to the river through such cells (8-neighbour
# connectivity), cf. HAND, Rennó et al. (2008), Remote Sens. Environ. 112(9); Nobre et al.
# (2011), J. Hydrol. 404. No hydraulics: walls, culverts and flow time are ignored, so the
# extent is an upper bound for a given level.

_WGS84_A_M = 6378137.0  # WGS84 semi-major axis (NIMA TR8350.2, 2000, Table 3.1)
_WGS84_E2 = 6.69437999014e-3  # WGS84 first eccentricity squared (same, Table 3.3)
_EIGHT = np.ones((3, 3), dtype=bool)


def _centres(terrain: Terrain) -> tuple[np.ndarray, np.ndarray]:
    """(lon of each column's centre, lat of each row's centre), rows north to south."""
    nrows, ncols = terrain.z_m.shape
    lons = terrain.xll_deg + (np.arange(ncols) + 0.5) * terrain.cell_deg
    lats = terrain.yll_deg + (nrows - np.arange(nrows) - 0.5) * terrain.cell_deg
    return lons, lats


def cell_area_m2(terrain: Terrain) -> np.ndarray:
    """Area (m²) of one cell in each row, on the WGS84 ellipsoid at the row's centre latitude.

    Cell ≈ M·N·cos φ·Δ², with M = a(1−e²)/(1−e² sin² φ)^{3/2} and N = a/(1−e² sin² φ)^{1/2} the
    meridian and prime-vertical radii of curvature (Snyder 1987, USGS PP 1395, Eqs. 4-18, 4-20).
    """
    _, lats = _centres(terrain)
    phi = np.radians(lats)
    w = 1.0 - _WGS84_E2 * np.sin(phi) ** 2
    m = _WGS84_A_M * (1.0 - _WGS84_E2) / w ** 1.5
    n = _WGS84_A_M / np.sqrt(w)
    d = math.radians(terrain.cell_deg)
    return m * n * np.cos(phi) * d * d


def water_mask(terrain: Terrain, water: BaseGeometry) -> np.ndarray:
    """Cells whose centre lies inside the water polygons (lon/lat), shaped like the grid.

    Water narrower than a cell may miss every centre; buffer it first if that matters.
    """
    lons, lats = _centres(terrain)
    if water.is_empty:
        return np.zeros(terrain.z_m.shape, dtype=bool)
    shapely.prepare(water)
    return shapely.contains_xy(water, lons[np.newaxis, :], lats[:, np.newaxis])


def mask_polygons(terrain: Terrain, mask: np.ndarray) -> MultiPolygon:
    """The True cells of a grid mask as WGS84 lon/lat polygons (cell edges, holes kept).

    Cells are merged into row runs, runs with the same columns in consecutive rows into
    rectangles, and the rectangles unioned (``shapely.union_all``).
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != terrain.z_m.shape:
        raise FloodError(f"mask shape {m.shape} differs from the grid {terrain.z_m.shape}")
    nrows, ncols = m.shape
    if not m.any():
        return MultiPolygon()
    edge = np.diff(np.pad(m, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    r_start, c_start = np.nonzero(edge == 1)  # row-major order: the k-th start pairs with the k-th end
    _, c_end = np.nonzero(edge == -1)  # exclusive end column
    # Stack runs with equal columns in consecutive rows into one rectangle.
    order = np.lexsort((r_start, c_end, c_start))
    rs, cs, ce = r_start[order], c_start[order], c_end[order]
    new = np.ones(rs.size, dtype=bool)
    new[1:] = (cs[1:] != cs[:-1]) | (ce[1:] != ce[:-1]) | (rs[1:] != rs[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:], rs.size) - 1
    top_row, bottom_row = rs[first], rs[last]
    # Coordinates from integer indices, so edges shared by neighbours are bit-identical.
    cell = terrain.cell_deg
    x0 = terrain.xll_deg + cs[first] * cell
    x1 = terrain.xll_deg + ce[first] * cell
    y1 = terrain.yll_deg + (nrows - top_row) * cell
    y0 = terrain.yll_deg + (nrows - bottom_row - 1) * cell
    merged = shapely.union_all(shapely.box(x0, y0, x1, y1))
    if isinstance(merged, Polygon):
        return MultiPolygon([merged])
    if isinstance(merged, MultiPolygon):
        return merged
    return MultiPolygon([g for g in shapely.get_parts(merged) if isinstance(g, Polygon)])


@dataclass(frozen=True, slots=True, eq=False)
class FloodExtent:
    """Inundation for one water surface: masks and depth on the grid, areas, lon/lat polygons."""

    extent: np.ndarray  # bool, grid shape: ground below the surface and joined to the water
    depth_m: np.ndarray  # surface − ground inside the extent, 0 outside
    area_m2: float  # the whole extent, river cells included
    land_area_m2: float  # the extent outside the water mask: newly flooded ground
    polygons: MultiPolygon = field(repr=False)  # the extent, WGS84 lon/lat

    @property
    def max_depth_m(self) -> float:
        return float(self.depth_m.max()) if self.depth_m.size else 0.0


def flood_extent(terrain: Terrain, water: np.ndarray, surface_m: float | np.ndarray, *,
                 polygons: bool = True) -> FloodExtent:
    """Cells flooded by a water surface (m, the terrain's datum) spreading from the water cells.

    ``surface_m`` is one level or a grid of levels (a sloping surface); NaN surface or
    ground never floods. The extent is every cell whose ground is below the surface and is
    8-connected through such cells to a water cell that is itself below the surface; a
    depression behind higher ground stays dry. ``polygons=False`` skips the polygons.
    """
    z = np.asarray(terrain.z_m, dtype=float)
    w = np.asarray(water, dtype=bool)
    if w.shape != z.shape:
        raise FloodError(f"water mask shape {w.shape} differs from the grid {z.shape}")
    s = np.asarray(surface_m, dtype=float)
    if s.ndim != 0 and s.shape != z.shape:
        raise FloodError(f"surface must be one level or a grid of shape {z.shape}, got shape {s.shape}")
    with np.errstate(invalid="ignore"):
        below = z < s  # False wherever either is NaN
    labels, count = ndimage.label(below, structure=_EIGHT)
    if count:
        seeds = np.unique(labels[below & w])
        extent = np.isin(labels, seeds[seeds > 0])
    else:
        extent = np.zeros(z.shape, dtype=bool)
    depth = np.where(extent, np.broadcast_to(s, z.shape) - z, 0.0)
    area_row = cell_area_m2(terrain)
    cells_per_row = extent.sum(axis=1)
    land_per_row = (extent & ~w).sum(axis=1)
    for arr in (extent, depth):
        arr.setflags(write=False)
    return FloodExtent(
        extent=extent, depth_m=depth, area_m2=float(cells_per_row @ area_row),
        land_area_m2=float(land_per_row @ area_row),
        polygons=mask_polygons(terrain, extent) if polygons else MultiPolygon())
