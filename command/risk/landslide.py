"""Landslide science: displacement rates, failure-time forecast, tangent-angle warning, rain thresholds.

Pure: aware datetimes, numbers and numpy arrays in, frozen dataclasses and arrays out. No clock,
no I/O. Every formula and constant cites its source next to it.

Four pieces:

* **Displacement series.** Cumulative displacement (mm) of one monitoring point against time;
  velocity (mm/day) between readings, belonging to the midpoint of their interval, and
  acceleration (mm/day²) between consecutive velocities.
* **Inverse-velocity forecast.** Fukuzono (1985), "A new method for predicting the failure time
  of a slope", Proc. 4th International Conference and Field Workshop on Landslides, Tokyo:
  from the acceleration law dv/dt = A·v^α, v⁻¹ = [A(α−1)]^(1/(α−1)) · (t_f − t)^(1/(α−1));
  for α = 2 the inverse velocity falls *linearly* to zero at the failure time t_f.
* **Improved tangent angle.** Xu Qiang, Zeng Yuping, Qian Jiangping, Wang Chengjie, He Chaoyang
  (2009), "Study on a improved tangential angle and the corresponding landslide pre-warning
  criteria", Geological Bulletin of China 28(4): 501–505 (许强等, 改进的切线角及对应的滑坡预警判据).
* **Rainfall intensity–duration thresholds.** Caine (1980) and Guzzetti et al. (2008), with a
  staged (lead-time) warning from forecast rain.

The levels are the system's own assessment; official geohazard warnings are issued by the
natural-resources and meteorological services.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .rules import Level

__all__ = [
    "CAINE_1980",
    "DEFAULT_RATIO_BREAKS",
    "DEFAULT_TANGENT_THRESHOLDS",
    "MIN_FORECAST_POINTS",
    "MIN_FORECAST_R2",
    "V0_WINDOW_DAYS",
    "V0_WINDOW_FRACTION",
    "GUZZETTI_2008_GLOBAL",
    "ID_PRESETS",
    "DeformationStage",
    "FORECAST_LEADS_H",
    "DisplacementSeries",
    "DuplicateTimeError",
    "Exceedance",
    "FailureForecast",
    "InsufficientDataError",
    "IntensityDurationThreshold",
    "LandslideError",
    "NaiveTimeError",
    "NotAccelerating",
    "RatioBreaks",
    "StagedExceedance",
    "TangentAngleThresholds",
    "TangentAssessment",
    "V0Estimate",
    "Velocities",
    "assess_tangent_angle",
    "deformation_stage",
    "describe_staged",
    "displacement_series",
    "estimate_v0",
    "exceedance_ratio",
    "forecast_failure_time",
    "max_exceedance",
    "ratio_level",
    "ratio_levels",
    "staged_exceedance",
    "tangent_angle_deg",
    "tangent_levels",
    "velocities",
]

_DAY_S = 86400.0


# --- Errors -----------------------------------------------------------------------------------


class LandslideError(ValueError):
    """Base of the landslide module's input errors (a ``ValueError``)."""


class NaiveTimeError(LandslideError):
    """A time without a UTC offset: the core works in aware UTC only."""


class DuplicateTimeError(LandslideError):
    """Two readings at the same instant (with ``duplicates="error"``)."""


class InsufficientDataError(LandslideError):
    """Too few readings for the requested computation."""


# --- Displacement series -----------------------------------------------------------------------


def _frozen(a: ArrayLike, dtype: type = np.float64) -> NDArray[np.float64]:
    out = np.array(a, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class DisplacementSeries:
    """Cumulative displacement of one point, sorted by time, one reading per instant.

    ``t_day`` is days since ``t0`` (the first reading); build it with ``displacement_series``.
    """

    t0: datetime
    t_day: NDArray[np.float64]
    displacement_mm: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.t_day)

    @property
    def times(self) -> tuple[datetime, ...]:
        return tuple(_at(self.t0, d) for d in self.t_day)


def _at(t0: datetime, day: float) -> datetime:
    # whole microseconds, so a time read back from t_day matches the input exactly
    return t0 + timedelta(microseconds=round(float(day) * _DAY_S * 1e6))


def displacement_series(times: Sequence[datetime], displacement_mm: Sequence[float] | ArrayLike, *,
                        duplicates: Literal["error", "mean"] = "error") -> DisplacementSeries:
    """Validate, sort and de-duplicate readings into a ``DisplacementSeries``.

    Times must be aware (any offset; converted to UTC); displacements finite. Readings are
    sorted by time, so out-of-order arrival is fine. Two readings at the same instant raise
    ``DuplicateTimeError`` (default) or, with ``duplicates="mean"``, merge into one reading at
    their mean displacement.

    >>> t = [datetime(2024, 6, 2, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)]
    >>> s = displacement_series(t, [3.0, 1.0])
    >>> s.t_day.tolist(), s.displacement_mm.tolist()
    ([0.0, 1.0], [1.0, 3.0])
    """
    disp = np.asarray(displacement_mm, dtype=np.float64)
    if disp.ndim != 1 or len(times) != len(disp):
        raise LandslideError(f"{len(times)} times but {disp.size} displacements")
    if len(times) == 0:
        raise InsufficientDataError("no readings")
    for i, t in enumerate(times):
        if not isinstance(t, datetime):
            raise LandslideError(f"reading {i}: time {t!r} is not a datetime")
        if t.tzinfo is None or t.utcoffset() is None:
            raise NaiveTimeError(f"reading {i}: time {t.isoformat()} has no UTC offset")
    bad = np.flatnonzero(~np.isfinite(disp))
    if bad.size:
        raise LandslideError(f"reading {int(bad[0])}: displacement {disp[bad[0]]} is not a finite number")
    utc = [t.astimezone(UTC) for t in times]
    order = sorted(range(len(utc)), key=utc.__getitem__)
    t0 = utc[order[0]]
    # exact integer microseconds for duplicate detection, then days as floats
    us = np.array([(utc[i] - t0) // timedelta(microseconds=1) for i in order], dtype=np.int64)
    d = disp[order]
    same = np.flatnonzero(np.diff(us) == 0)
    if same.size:
        if duplicates == "error":
            raise DuplicateTimeError(f"two readings at {utc[order[int(same[0])]].isoformat()}")
        if duplicates != "mean":
            raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
        uniq, inverse = np.unique(us, return_inverse=True)
        d = np.bincount(inverse, weights=d) / np.bincount(inverse)
        us = uniq
    return DisplacementSeries(t0, _frozen(us / (_DAY_S * 1e6)), _frozen(d))


@dataclass(frozen=True, slots=True, eq=False)
class Velocities:
    """Velocities (mm/day) over intervals of a series, each at the midpoint of its interval.

    Velocity ``j`` spans readings ``start_index[j]`` .. ``end_index[j]``; ``mid_day`` is days
    since ``t0``.
    """

    t0: datetime
    mid_day: NDArray[np.float64]
    velocity_mm_per_day: NDArray[np.float64]
    start_index: NDArray[np.int64]
    end_index: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.mid_day)

    @property
    def mid_times(self) -> tuple[datetime, ...]:
        return tuple(_at(self.t0, d) for d in self.mid_day)

    def acceleration(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(mid_day, mm/day²) between consecutive velocities, at the midpoint of their midpoints."""
        m, v = self.mid_day, self.velocity_mm_per_day
        return (m[1:] + m[:-1]) / 2.0, np.diff(v) / np.diff(m)

    def acceleration_aligned(self) -> NDArray[np.float64]:
        """Acceleration ending at each velocity (from the previous one); NaN for the first."""
        out = np.full(len(self), np.nan)
        out[1:] = self.acceleration()[1]
        return out


def velocities(series: DisplacementSeries, *, smooth_n: int = 1) -> Velocities:
    """Velocities between readings ``i − smooth_n`` and ``i`` (mm/day), at the interval midpoints.

    ``smooth_n = 1`` gives the raw velocity between consecutive readings. ``smooth_n = k``
    gives the mean velocity over the last k intervals weighted by their durations,
    (S_i − S_{i−k}) / (t_i − t_{i−k}): a trailing moving average that needs no resampling of an
    irregular record. A single misread reading inside the baseline cancels out, and one at
    its end moves the velocity k times less than a raw difference would.

    >>> s = displacement_series([datetime(2024, 6, d, tzinfo=UTC) for d in (1, 2, 4)], [0.0, 1.0, 5.0])
    >>> velocities(s).velocity_mm_per_day.tolist(), velocities(s).mid_day.tolist()
    ([1.0, 2.0], [0.5, 2.0])
    """
    if smooth_n < 1:
        raise ValueError(f"smooth_n must be at least 1, got {smooth_n}")
    t, s = series.t_day, series.displacement_mm
    end = np.arange(smooth_n, len(t), dtype=np.int64)
    start = end - smooth_n
    v = (s[end] - s[start]) / (t[end] - t[start])
    mid = (t[end] + t[start]) / 2.0
    return Velocities(series.t0, _frozen(mid), _frozen(v), _frozen(start, np.int64), _frozen(end, np.int64))


# --- Inverse-velocity failure forecast (Fukuzono 1985) ---------------------------------------

# System defaults, not published values: the fit needs a handful of points and a clearly
# linear trend before a failure time is worth announcing.
MIN_FORECAST_POINTS = 5
MIN_FORECAST_R2 = 0.8


@dataclass(frozen=True, slots=True)
class FailureForecast:
    """Failure time where the least-squares line of 1/v against time reaches zero (Fukuzono 1985, α = 2)."""

    failure_time: datetime
    r2: float
    window_start: datetime  # midpoint time of the first velocity in the fit
    window_end: datetime  # midpoint time of the last velocity in the fit
    n_points: int
    slope_per_mm: float  # d(1/v)/dt: (day/mm) per day


@dataclass(frozen=True, slots=True)
class NotAccelerating:
    """No failure time: the record is not (clearly) accelerating; ``reason`` says why."""

    reason: str
    n_points: int
    r2: float | None = None


def _linear_fit(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float, float]:
    """Least-squares y = slope·x + intercept and its r²."""
    xm, ym = x.mean(), y.mean()
    dx, dy = x - xm, y - ym
    sxx, sxy, syy = float(dx @ dx), float(dx @ dy), float(dy @ dy)
    slope = sxy / sxx
    intercept = ym - slope * xm
    r2 = 1.0 if syy == 0.0 else sxy * sxy / (sxx * syy)
    return slope, float(intercept), r2


def forecast_failure_time(vel: Velocities, *, min_points: int = MIN_FORECAST_POINTS,
                          min_r2: float = MIN_FORECAST_R2) -> FailureForecast | NotAccelerating:
    """Inverse-velocity failure time (Fukuzono 1985, linear case α = 2), or ``NotAccelerating``.

    Window rule: the trailing run of velocities in which the velocity is positive and rises
    at every step (1/v falls at every step), walking back from the newest. With a noisy
    record, smooth first (``velocities(series, smooth_n=k)``): a reversal ends the run. The
    run needs at least ``min_points`` velocities; 1/v (day/mm) is fitted against time (days)
    by least squares; the fit must fall (slope < 0) with r² ≥ ``min_r2``. The failure time
    is where the line reaches zero, t_f = −intercept/slope; it may lie before the newest
    reading when the fit says failure is overdue.
    """
    if min_points < 2:
        raise ValueError(f"min_points must be at least 2, got {min_points}")
    v, m = vel.velocity_mm_per_day, vel.mid_day
    n = len(v)
    if n == 0 or not v[-1] > 0:
        return NotAccelerating("the newest velocity is not positive", 0)
    first = n - 1
    while first > 0 and 0 < v[first - 1] < v[first]:
        first -= 1
    count = n - first
    if count < min_points:
        return NotAccelerating(f"the trailing accelerating run has {count} velocities, fewer than {min_points}",
                               count)
    x, y = m[first:], 1.0 / v[first:]
    slope, intercept, r2 = _linear_fit(x, y)
    if not slope < 0:
        return NotAccelerating("the inverse velocity does not fall", count, r2)
    if r2 < min_r2:
        return NotAccelerating(f"the inverse-velocity fit has r² {r2:.3f}, below {min_r2}", count, r2)
    try:
        failure = _at(vel.t0, -intercept / slope)
    except OverflowError:
        return NotAccelerating("the fitted failure time lies beyond the calendar", count, r2)
    return FailureForecast(failure, r2, _at(vel.t0, x[0]), _at(vel.t0, x[-1]), count, slope)


# --- Improved tangent angle (Xu et al. 2009) ---------------------------------------------------
# Xu et al. (2009), Geological Bulletin of China 28(4): 501–505. The displacement is rescaled
# by the velocity v of the constant-velocity (steady creep) stage, T(i) = S(i)/v, so both axes
# are time and the angle is scale-free: α_i = arctan((T(i) − T(i−1)) / (t_i − t_{i−1}))
# = arctan(v_i / v). Stages and warning levels (the paper's table, as reproduced in
# "5G IoT-based geohazard monitoring and early warning system and its application",
# EURASIP J. Wireless Commun. Netw. 2021, doi:10.1186/s13638-021-02033-y, Table 1):
#   constant velocity  α ≈ 45°         attention 注意级  blue
#   initial accel.     45° < α < 80°   caution   警示级  yellow
#   medium accel.      80° ≤ α < 85°   alert     警戒级  orange
#   imminent failure   α ≥ 85°         alarm     警报级  red
# Trend: in the imminent-failure stage the acceleration, which oscillates about zero before,
# rises abruptly (Xu, Yuan, Zeng & Hack 2011, "Some new pre-warning criteria for creep slope
# failure", Science China Technological Sciences 54). So red here needs α ≥ 85° *and* a
# positive acceleration that is larger than the previous one; α ≥ 85° without it is orange.


class DeformationStage(Enum):
    """Deformation stage of a creeping slope by improved tangent angle (Xu et al. 2009)."""

    CONSTANT_VELOCITY = "constant_velocity"
    INITIAL_ACCELERATION = "initial_acceleration"
    MEDIUM_ACCELERATION = "medium_acceleration"
    IMMINENT_FAILURE = "imminent_failure"

    @property
    def name_zh(self) -> str:
        return {"constant_velocity": "等速变形阶段", "initial_acceleration": "初加速阶段",
                "medium_acceleration": "中加速阶段", "imminent_failure": "临滑阶段"}[self.value]

    @property
    def warning(self) -> str:
        """Xu et al. (2009) warning grade of the stage."""
        return {"constant_velocity": "attention", "initial_acceleration": "caution",
                "medium_acceleration": "alert", "imminent_failure": "alarm"}[self.value]

    @property
    def warning_zh(self) -> str:
        return {"constant_velocity": "注意级", "initial_acceleration": "警示级",
                "medium_acceleration": "警戒级", "imminent_failure": "警报级"}[self.value]


@dataclass(frozen=True, slots=True)
class TangentAngleThresholds:
    """Improved-tangent-angle stage boundaries (Xu et al. 2009) and the system's hysteresis.

    ``attention_min_deg`` (system assumption): the constant-velocity stage reads attention
    (blue) only above this angle; the default 0° means any forward movement, and a slope
    standing still or moving back (α ≤ 0°) reads none. ``hysteresis_deg`` (system
    assumption): a level, once issued, holds until the angle falls this far below the
    boundary that raised it.
    """

    attention_min_deg: float = 0.0
    caution_deg: float = 45.0  # α > 45°: initial acceleration (Xu et al. 2009)
    alert_deg: float = 80.0  # α ≥ 80°: medium acceleration (Xu et al. 2009)
    alarm_deg: float = 85.0  # α ≥ 85°: imminent failure (Xu et al. 2009)
    hysteresis_deg: float = 2.0

    def __post_init__(self) -> None:
        if not self.attention_min_deg < self.caution_deg < self.alert_deg < self.alarm_deg < 90.0:
            raise ValueError(f"tangent-angle boundaries out of order: attention {self.attention_min_deg}, "
                             f"caution {self.caution_deg}, alert {self.alert_deg}, alarm {self.alarm_deg}")
        if self.hysteresis_deg < 0:
            raise ValueError(f"hysteresis_deg must not be negative, got {self.hysteresis_deg}")

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float]) -> TangentAngleThresholds:
        """Defaults with a slope's overrides (unknown keys are ignored)."""
        known = {k: float(v) for k, v in overrides.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_TANGENT_THRESHOLDS = TangentAngleThresholds()


def tangent_angle_deg(velocity_mm_per_day: ArrayLike, v0_mm_per_day: float) -> NDArray[np.float64]:
    """Improved tangent angle α = arctan(v / v0) in degrees (Xu et al. 2009), vectorised.

    >>> tangent_angle_deg([1.0, 2.0], 1.0).round(2).tolist()
    [45.0, 63.43]
    """
    if not (math.isfinite(v0_mm_per_day) and v0_mm_per_day > 0):
        raise LandslideError(f"the constant-velocity-stage rate v0 must be a positive number, got {v0_mm_per_day}")
    return np.degrees(np.arctan(np.asarray(velocity_mm_per_day, dtype=np.float64) / v0_mm_per_day))


def deformation_stage(angle_deg: float,
                      thresholds: TangentAngleThresholds = DEFAULT_TANGENT_THRESHOLDS) -> DeformationStage:
    """Stage of one tangent angle (Xu et al. 2009); NaN raises ``LandslideError``.

    >>> deformation_stage(82.0)
    <DeformationStage.MEDIUM_ACCELERATION: 'medium_acceleration'>
    """
    if math.isnan(angle_deg):
        raise LandslideError("no tangent angle (NaN)")
    if angle_deg >= thresholds.alarm_deg:
        return DeformationStage.IMMINENT_FAILURE
    if angle_deg >= thresholds.alert_deg:
        return DeformationStage.MEDIUM_ACCELERATION
    if angle_deg > thresholds.caution_deg:
        return DeformationStage.INITIAL_ACCELERATION
    return DeformationStage.CONSTANT_VELOCITY


def _angle_level(angle: float, rising: bool, th: TangentAngleThresholds, margin: float) -> Level:
    """Instantaneous level of one evaluation; ``margin`` lowers every boundary (hysteresis)."""
    if angle >= th.alarm_deg - margin:
        return Level.RED if rising else Level.ORANGE
    if angle >= th.alert_deg - margin:
        return Level.ORANGE
    if angle > th.caution_deg - margin:
        return Level.YELLOW
    if angle > th.attention_min_deg - margin:
        return Level.BLUE
    return Level.NONE


def tangent_levels(angle_deg: ArrayLike, acceleration_mm_per_day2: ArrayLike, *,
                   thresholds: TangentAngleThresholds = DEFAULT_TANGENT_THRESHOLDS,
                   persistence: int = 2, lower_after: int | None = None) -> tuple[Level, ...]:
    """Issued warning level after each evaluation, with persistence and hysteresis.

    ``angle_deg[j]`` is the tangent angle of evaluation j; ``acceleration_mm_per_day2[j]`` the
    acceleration ending there (NaN when unknown). Red needs the acceleration to be positive
    and larger than the previous evaluation's (Xu et al. 2011). A level is *raised* to L only
    when the instantaneous level has been at least L for ``persistence`` consecutive
    evaluations; it is *lowered* only when, for ``lower_after`` consecutive evaluations
    (default: ``persistence``), the level judged with boundaries ``hysteresis_deg`` lower has
    been below it, and then to the highest of those. NaN angles are not evaluations: they
    neither count nor break a run, and the issued level carries over.
    """
    if persistence < 1:
        raise ValueError(f"persistence must be at least 1, got {persistence}")
    lower_after = persistence if lower_after is None else lower_after
    if lower_after < 1:
        raise ValueError(f"lower_after must be at least 1, got {lower_after}")
    angles = np.asarray(angle_deg, dtype=np.float64)
    acc = np.asarray(acceleration_mm_per_day2, dtype=np.float64)
    if angles.shape != acc.shape or angles.ndim != 1:
        raise LandslideError(f"{angles.size} angles but {acc.size} accelerations")
    issued = Level.NONE
    raise_hist: list[Level] = []
    hold_hist: list[Level] = []
    prev_acc = math.nan
    out: list[Level] = []
    for angle, a in zip(angles.tolist(), acc.tolist(), strict=True):
        if math.isnan(angle):
            out.append(issued)
            continue
        rising = a > 0 and (math.isnan(prev_acc) or a > prev_acc)
        prev_acc = a
        raise_hist.append(_angle_level(angle, rising, thresholds, 0.0))
        hold_hist.append(_angle_level(angle, rising, thresholds, thresholds.hysteresis_deg))
        if len(raise_hist) >= persistence:
            sustained = min(raise_hist[-persistence:])
            if sustained > issued:
                issued = sustained
        if len(hold_hist) >= lower_after:
            recent = max(hold_hist[-lower_after:])
            if recent < issued:
                issued = recent
        out.append(issued)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class V0Estimate:
    """Constant-velocity-stage rate fitted over the record's initial window."""

    v0_mm_per_day: float
    window_start: datetime
    window_end: datetime
    n_points: int


# System assumption: the record's opening is taken as the constant-velocity stage, at most
# its first 30 days and at most its first third, when no v0 is given for the slope.
V0_WINDOW_DAYS = 30.0
V0_WINDOW_FRACTION = 1.0 / 3.0


def estimate_v0(series: DisplacementSeries, *, window_days: float = V0_WINDOW_DAYS,
                max_fraction: float = V0_WINDOW_FRACTION) -> V0Estimate:
    """Constant-velocity-stage rate v0: least-squares slope of displacement over the initial window.

    The window runs from the first reading for min(``window_days``, ``max_fraction`` × record
    length) and needs at least two readings. This assumes the record opens in the
    constant-velocity stage; give v0 explicitly for a slope whose steady rate is known.
    """
    t = series.t_day
    if len(t) < 2:
        raise InsufficientDataError("estimating v0 needs at least two readings")
    span = min(window_days, max_fraction * float(t[-1]))
    inside = t <= span + 1e-9
    n = int(inside.sum())
    if n < 2:
        raise InsufficientDataError(f"only {n} reading in the first {span:.3g} days: too few to estimate v0; "
                                    f"give v0 explicitly")
    slope = _linear_fit(t[inside], series.displacement_mm[inside])[0]
    if not slope > 0:
        raise LandslideError(f"the displacement does not advance over the first {span:.3g} days "
                             f"(v0 = {slope:.4g} mm/day); give v0 explicitly")
    return V0Estimate(float(slope), series.t0, _at(series.t0, float(t[inside][-1])), n)


@dataclass(frozen=True, slots=True, eq=False)
class TangentAssessment:
    """Improved-tangent-angle assessment of a series: one evaluation per velocity."""

    v0_mm_per_day: float
    v0_estimate: V0Estimate | None  # None when v0 was given
    velocities: Velocities
    angle_deg: NDArray[np.float64]
    acceleration_mm_per_day2: NDArray[np.float64]  # ending at each velocity; NaN for the first
    stages: tuple[DeformationStage, ...]
    levels: tuple[Level, ...]  # issued level after each evaluation (persistence, hysteresis)
    thresholds: TangentAngleThresholds = field(default=DEFAULT_TANGENT_THRESHOLDS)

    @property
    def level(self) -> Level:
        """The level issued after the newest evaluation (NONE with no evaluation)."""
        return self.levels[-1] if self.levels else Level.NONE


def assess_tangent_angle(series: DisplacementSeries, *, v0_mm_per_day: float | None = None,
                         smooth_n: int = 1, persistence: int = 2, lower_after: int | None = None,
                         thresholds: TangentAngleThresholds = DEFAULT_TANGENT_THRESHOLDS,
                         v0_window_days: float = V0_WINDOW_DAYS) -> TangentAssessment:
    """Velocities, tangent angles, stages and issued levels of a displacement series.

    Without ``v0_mm_per_day`` the rate is estimated by ``estimate_v0`` (the record's opening).
    """
    est = None
    if v0_mm_per_day is None:
        est = estimate_v0(series, window_days=v0_window_days)
        v0_mm_per_day = est.v0_mm_per_day
    vel = velocities(series, smooth_n=smooth_n)
    angle = tangent_angle_deg(vel.velocity_mm_per_day, v0_mm_per_day)
    angle.setflags(write=False)
    acc = vel.acceleration_aligned()
    acc.setflags(write=False)
    stages = tuple(deformation_stage(a, thresholds) for a in angle.tolist())
    levels = tangent_levels(angle, acc, thresholds=thresholds, persistence=persistence, lower_after=lower_after)
    return TangentAssessment(v0_mm_per_day, est, vel, angle, acc, stages, levels, thresholds)


# --- Rainfall intensity–duration thresholds ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntensityDurationThreshold:
    """Power-law rainfall threshold I = a·D^b (I in mm/h, D in hours), valid for D in [min, max].

    The rain needed over a duration D is the threshold accumulation E = I·D = a·D^(1+b).
    """

    a_mm_per_h: float
    b: float
    min_duration_h: float
    max_duration_h: float
    name: str = ""

    def __post_init__(self) -> None:
        if not (self.a_mm_per_h > 0 and math.isfinite(self.b)):
            raise ValueError(f"threshold needs a > 0 and a finite b, got a={self.a_mm_per_h}, b={self.b}")
        if not 0 < self.min_duration_h < self.max_duration_h:
            raise ValueError(f"threshold duration range must satisfy 0 < min < max, got "
                             f"[{self.min_duration_h}, {self.max_duration_h}] h")

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float | str],
                     base: IntensityDurationThreshold | None = None) -> IntensityDurationThreshold:
        """A slope's threshold: ``preset`` (a key of ``ID_PRESETS``, default Guzzetti 2008) with overrides.

        Keys: ``preset``, ``a_mm_per_h``, ``b``, ``min_duration_h``, ``max_duration_h``,
        ``name``; unknown keys are ignored.
        """
        if base is None:
            preset = str(overrides.get("preset", "guzzetti2008"))
            if preset not in ID_PRESETS:
                raise ValueError(f"unknown threshold preset {preset!r}; known: {', '.join(sorted(ID_PRESETS))}")
            base = ID_PRESETS[preset]
        values: dict[str, float | str] = {
            "a_mm_per_h": base.a_mm_per_h, "b": base.b, "min_duration_h": base.min_duration_h,
            "max_duration_h": base.max_duration_h, "name": base.name}
        for k, v in overrides.items():
            if k in ("a_mm_per_h", "b", "min_duration_h", "max_duration_h"):
                values[k] = float(v)
            elif k == "name":
                values[k] = str(v)
        if any(k in overrides for k in ("a_mm_per_h", "b")) and "name" not in overrides:
            values["name"] = "custom"
        return cls(**values)  # type: ignore[arg-type]

    def _check(self, duration_h: NDArray[np.float64]) -> None:
        outside = ~((duration_h >= self.min_duration_h) & (duration_h <= self.max_duration_h))
        if np.any(outside):
            bad = float(duration_h[outside].flat[0])
            raise LandslideError(f"duration {bad:g} h is outside the {self.name or 'threshold'} range "
                                 f"[{self.min_duration_h:g}, {self.max_duration_h:g}] h")

    def intensity_mm_per_h(self, duration_h: ArrayLike) -> NDArray[np.float64]:
        """Threshold intensity I = a·D^b (mm/h) for durations in hours."""
        d = np.asarray(duration_h, dtype=np.float64)
        self._check(d)
        return self.a_mm_per_h * d ** self.b

    def accumulation_mm(self, duration_h: ArrayLike) -> NDArray[np.float64]:
        """Threshold rain over the duration, I·D = a·D^(1+b) (mm)."""
        d = np.asarray(duration_h, dtype=np.float64)
        self._check(d)
        return self.a_mm_per_h * d ** (1.0 + self.b)


# Caine (1980), "The rainfall intensity–duration control of shallow landslides and debris
# flows", Geografiska Annaler 62A(1–2): 23–27: I = 14.82·D^−0.39, 10 min < D < 10 days.
CAINE_1980 = IntensityDurationThreshold(14.82, -0.39, 10.0 / 60.0, 240.0, "Caine 1980")
# Guzzetti, Peruccacci, Rossi & Stark (2008), "The rainfall intensity–duration control of
# shallow landslides and debris flows: an update", Landslides 5(1): 3–17, global minimum
# threshold: I = 2.20·D^−0.44, 0.1 h < D < 1000 h.
GUZZETTI_2008_GLOBAL = IntensityDurationThreshold(2.20, -0.44, 0.1, 1000.0, "Guzzetti et al. 2008 global")
ID_PRESETS: dict[str, IntensityDurationThreshold] = {
    "caine1980": CAINE_1980, "guzzetti2008": GUZZETTI_2008_GLOBAL}


def exceedance_ratio(accumulation_mm: ArrayLike, duration_h: ArrayLike,
                     threshold: IntensityDurationThreshold = GUZZETTI_2008_GLOBAL) -> NDArray[np.float64]:
    """Rain over a duration divided by the threshold rain for it, a·D^(1+b); vectorised, NaN stays NaN.

    ≥ 1 means the threshold is reached. Negative rain raises ``LandslideError``.

    >>> float(exceedance_ratio(2 * 14.82, 1.0, CAINE_1980))
    2.0
    """
    acc = np.asarray(accumulation_mm, dtype=np.float64)
    if np.any(acc < 0):
        raise LandslideError(f"negative rain accumulation {float(acc[acc < 0].flat[0])} mm")
    return acc / threshold.accumulation_mm(duration_h)


@dataclass(frozen=True, slots=True, eq=False)
class Exceedance:
    """Largest exceedance ratio over the durations, and the duration (h) that gave it; NaN without data."""

    ratio: NDArray[np.float64]
    duration_h: NDArray[np.float64]


def max_exceedance(accumulations_mm: Mapping[float, ArrayLike],
                   threshold: IntensityDurationThreshold = GUZZETTI_2008_GLOBAL) -> Exceedance:
    """Max exceedance ratio over rain windows, e.g. {1: grid, 3: grid, 6: ..., 24: ...} (hours → mm).

    Grids broadcast together. A cell's NaN windows are skipped; a cell with no data in any
    window gets NaN ratio and duration. Ties go to the shorter duration.
    """
    if not accumulations_mm:
        raise InsufficientDataError("no rain windows")
    durations = sorted(float(d) for d in accumulations_mm)
    by_d = {float(d): a for d, a in accumulations_mm.items()}
    ratios = np.stack(np.broadcast_arrays(*[exceedance_ratio(by_d[d], d, threshold) for d in durations]))
    return _pick_max(ratios, np.array(durations))


def _pick_max(ratios: NDArray[np.float64], durations: NDArray[np.float64]) -> Exceedance:
    """Nan-aware max over axis 0 with the matching entry of ``durations`` (same axis-0 length)."""
    nodata = np.all(np.isnan(ratios), axis=0)
    filled = np.where(np.isnan(ratios), -np.inf, ratios)
    idx = np.argmax(filled, axis=0)
    ratio = np.take_along_axis(filled, idx[np.newaxis], axis=0)[0]
    dur = np.broadcast_to(durations.reshape((-1,) + (1,) * (ratios.ndim - 1)), ratios.shape)
    duration = np.take_along_axis(dur, idx[np.newaxis], axis=0)[0].astype(np.float64)
    ratio = np.where(nodata, np.nan, ratio)
    duration = np.where(nodata, np.nan, duration)
    return Exceedance(ratio, duration)


@dataclass(frozen=True, slots=True)
class RatioBreaks:
    """Exceedance ratio at which each level starts.

    System assumption, not a published scale: orange where the rain reaches the threshold
    (ratio 1), red at half as much again; blue and yellow as it approaches.
    """

    blue: float = 0.5
    yellow: float = 0.75
    orange: float = 1.0
    red: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.blue < self.yellow < self.orange < self.red:
            raise ValueError(f"ratio breaks out of order: {self.blue}, {self.yellow}, {self.orange}, {self.red}")

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float]) -> RatioBreaks:
        """Defaults with overrides (unknown keys are ignored)."""
        known = {k: float(v) for k, v in overrides.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_RATIO_BREAKS = RatioBreaks()


def ratio_levels(ratio: ArrayLike, breaks: RatioBreaks = DEFAULT_RATIO_BREAKS) -> NDArray[np.int8]:
    """Level (0..4, ``Level`` values) of each exceedance ratio; −1 where the ratio is NaN (no data)."""
    r = np.asarray(ratio, dtype=np.float64)
    edges = np.array([breaks.blue, breaks.yellow, breaks.orange, breaks.red])
    out = np.searchsorted(edges, np.nan_to_num(r, nan=-1.0), side="right").astype(np.int8)
    return np.where(np.isnan(r), np.int8(-1), out).astype(np.int8)


def ratio_level(ratio: float, breaks: RatioBreaks = DEFAULT_RATIO_BREAKS) -> Level:
    """Level of one exceedance ratio; NaN raises ``LandslideError``.

    >>> ratio_level(1.2)
    <Level.ORANGE: 3>
    """
    if math.isnan(ratio):
        raise LandslideError("no exceedance ratio (NaN)")
    return Level(int(ratio_levels(ratio, breaks)))


@dataclass(frozen=True, slots=True, eq=False)
class StagedExceedance:
    """Earliest lead time (h) at which the threshold would be reached; NaN: not within the horizon.

    0 means the observed rain already reaches it. ``ratio`` and ``duration_h`` belong to the
    decisive window at that lead (at the longest lead when it is never reached).
    """

    lead_h: NDArray[np.float64]
    ratio: NDArray[np.float64]
    duration_h: NDArray[np.float64]


# Staged short-range warning: leads of 1, 3 and 6 h ahead, so a warning can be announced
# "expected in ~6 h", then ~3 h, then ~1 h. System default, not a cited standard; the leads
# are whatever the forecast grids provide.
FORECAST_LEADS_H: tuple[float, ...] = (1.0, 3.0, 6.0)


def staged_exceedance(observed_mm: Mapping[float, ArrayLike], forecast_mm: Mapping[float, ArrayLike],
                      threshold: IntensityDurationThreshold = GUZZETTI_2008_GLOBAL, *,
                      trigger_ratio: float = 1.0) -> StagedExceedance:
    """Earliest forecast lead at which rain would reach ``trigger_ratio`` × the threshold.

    ``observed_mm``: rain over the last D hours, by D (e.g. 1, 3, 6, 12, 24). ``forecast_mm``:
    expected rain over the next L hours, by lead L (e.g. 1, 3, 6), cumulative, so it must not
    decrease with L. At lead L each observed window grows into one of D + L hours holding
    observed(D) + forecast(L), and the forecast alone forms a window of L hours; the largest
    ratio over these decides. Grown windows beyond the threshold's valid range are skipped.
    Lead 0 is the observed rain alone.
    """
    if not forecast_mm:
        raise InsufficientDataError("no forecast leads")
    now = max_exceedance(observed_mm, threshold)
    shape = now.ratio.shape
    lead = np.where(now.ratio >= trigger_ratio, 0.0, np.nan)
    ratio_at, dur_at = now.ratio.copy(), now.duration_h.copy()
    obs = {float(d): np.asarray(a, dtype=np.float64) for d, a in observed_mm.items()}
    fcs = {float(L): np.asarray(a, dtype=np.float64) for L, a in forecast_mm.items()}
    prev_fc: NDArray[np.float64] | None = None

    def in_range(d: float) -> bool:
        return threshold.min_duration_h <= d <= threshold.max_duration_h

    for lead_h in sorted(fcs):
        fc = fcs[lead_h]
        if lead_h <= 0:
            raise LandslideError(f"forecast lead must be positive, got {lead_h:g} h")
        if np.any(fc < 0):
            raise LandslideError(f"negative forecast rain {float(fc[fc < 0].flat[0])} mm to {lead_h:g} h")
        if prev_fc is not None and np.any(fc < prev_fc):  # NaN compares False: no complaint
            raise LandslideError(f"forecast rain to {lead_h:g} h is less than to an earlier lead: "
                                 f"forecast accumulations must be cumulative")
        prev_fc = fc
        windows = {lead_h: fc} if in_range(lead_h) else {}
        windows.update({d + lead_h: a + fc for d, a in obs.items() if in_range(d + lead_h)})
        if not windows:
            continue
        best = max_exceedance(windows, threshold)
        r, dur = np.broadcast_to(best.ratio, shape), np.broadcast_to(best.duration_h, shape)
        newly = np.isnan(lead) & (r >= trigger_ratio)
        lead = np.where(newly, lead_h, lead)
        pending = np.isnan(lead) | newly
        ratio_at = np.where(pending, r, ratio_at)
        dur_at = np.where(pending, dur, dur_at)
    return StagedExceedance(lead, ratio_at, dur_at)


def describe_staged(lead_h: float) -> tuple[str, str]:
    """Reason text (en, zh) for a staged lead time from ``staged_exceedance``."""
    if math.isnan(lead_h):
        return ("Rain not expected to reach the landslide threshold within the forecast",
                "预报时段内降雨预计不会达到滑坡降雨阈值")
    if lead_h == 0:
        return "Rain has reached the landslide threshold", "降雨已达到滑坡降雨阈值"
    return (f"Rain expected to reach the landslide threshold in ~{lead_h:g} h",
            f"预计约 {lead_h:g} 小时后降雨达到滑坡降雨阈值")
