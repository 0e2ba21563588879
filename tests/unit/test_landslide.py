"""Landslide science: displacement rates, inverse-velocity forecast, tangent angle, rain thresholds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.risk.landslide import (
    CAINE_1980,
    GUZZETTI_2008_GLOBAL,
    DeformationStage,
    DuplicateTimeError,
    FailureForecast,
    InsufficientDataError,
    IntensityDurationThreshold,
    LandslideError,
    NaiveTimeError,
    NotAccelerating,
    RatioBreaks,
    TangentAngleThresholds,
    assess_tangent_angle,
    deformation_stage,
    describe_staged,
    displacement_series,
    estimate_v0,
    exceedance_ratio,
    forecast_failure_time,
    max_exceedance,
    ratio_level,
    ratio_levels,
    staged_exceedance,
    tangent_angle_deg,
    tangent_levels,
    velocities,
)
from command.risk.rules import Level

T0 = datetime(2024, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def series_at(t_day, disp_mm):
    return displacement_series([T0 + timedelta(days=float(d)) for d in t_day], disp_mm)


def days_after_t0(t: datetime) -> float:
    return (t - T0) / DAY


def hyperbolic_mm(t_day, *, a_mm: float, tf_day: float):
    """Displacement whose velocity is v = A/(t_f − t): 1/v falls linearly to zero at t_f (Fukuzono α = 2)."""
    return -a_mm * np.log1p(-np.asarray(t_day, dtype=float) / tf_day)


def creep_then_failure_mm(t_day, *, v0: float = 1.0, onset_day: float = 60.0, a_mm: float = 10.0):
    """Steady creep at v0 until the onset, then v = A/(t_f − t) with t_f = onset + A/v0."""
    t = np.asarray(t_day, dtype=float)
    lead = a_mm / v0
    return np.where(t <= onset_day, v0 * t, v0 * onset_day - a_mm * np.log1p(-(t - onset_day) / lead))


# --- Displacement series -----------------------------------------------------------------------


def test_series_sorts_converts_to_utc_and_counts_days() -> None:
    cst = timezone(timedelta(hours=8))
    times = [datetime(2024, 6, 3, 8, tzinfo=cst), datetime(2024, 6, 1, 8, tzinfo=cst),
             datetime(2024, 6, 2, 8, tzinfo=cst)]
    s = displacement_series(times, [2.0, 0.0, 1.0])
    assert s.t0 == datetime(2024, 6, 1, 0, tzinfo=UTC) and s.t0.utcoffset() == timedelta(0)
    assert s.t_day.tolist() == [0.0, 1.0, 2.0]
    assert s.displacement_mm.tolist() == [0.0, 1.0, 2.0]
    assert s.times == (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC),
                       datetime(2024, 6, 3, tzinfo=UTC))
    with pytest.raises(ValueError):
        s.displacement_mm[0] = 5.0  # frozen arrays


def test_series_rejects_naive_times_nan_and_mismatch() -> None:
    with pytest.raises(NaiveTimeError, match="reading 1"):
        displacement_series([T0, datetime(2024, 6, 2)], [0.0, 1.0])
    with pytest.raises(LandslideError, match="reading 1: displacement nan"):
        displacement_series([T0, T0 + DAY], [0.0, math.nan])
    with pytest.raises(LandslideError, match="2 times but 3"):
        displacement_series([T0, T0 + DAY], [0.0, 1.0, 2.0])
    with pytest.raises(InsufficientDataError):
        displacement_series([], [])
    assert issubclass(LandslideError, ValueError)


def test_duplicate_times_raise_or_merge() -> None:
    other_zone = (T0 + DAY).astimezone(timezone(timedelta(hours=8)))  # the same instant, another offset
    with pytest.raises(DuplicateTimeError, match="2024-06-02T00:00:00"):
        displacement_series([T0, T0 + DAY, other_zone], [0.0, 1.0, 3.0])
    s = displacement_series([T0, T0 + DAY, other_zone], [0.0, 1.0, 3.0], duplicates="mean")
    assert s.t_day.tolist() == [0.0, 1.0] and s.displacement_mm.tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="duplicates"):
        displacement_series([T0, T0], [0.0, 1.0], duplicates="last")  # type: ignore[arg-type]


def test_velocity_belongs_to_the_interval_midpoint_and_handles_irregular_sampling() -> None:
    s = series_at([0.0, 1.0, 1.5, 4.0], [0.0, 2.0, 3.0, 8.0])
    vel = velocities(s)
    assert vel.velocity_mm_per_day.tolist() == [2.0, 2.0, 2.0]
    assert vel.mid_day.tolist() == [0.5, 1.25, 2.75]
    assert vel.start_index.tolist() == [0, 1, 2] and vel.end_index.tolist() == [1, 2, 3]
    assert vel.mid_times[1] == T0 + timedelta(hours=30)
    mid, acc = vel.acceleration()
    assert acc.tolist() == [0.0, 0.0] and mid.tolist() == [0.875, 2.0]


def test_acceleration_between_consecutive_velocities() -> None:
    s = series_at([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 3.0, 6.0])  # velocities 1, 2, 3 at 0.5, 1.5, 2.5
    vel = velocities(s)
    mid, acc = vel.acceleration()
    assert acc.tolist() == [1.0, 1.0] and mid.tolist() == [1.0, 2.0]
    aligned = vel.acceleration_aligned()
    assert math.isnan(aligned[0]) and aligned[1:].tolist() == [1.0, 1.0]


def test_smoothing_is_the_time_weighted_mean_over_the_baseline() -> None:
    s = series_at([0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 7.0, 8.0])  # raw 1, 3, 1 mm/day over 1, 2, 1 days
    v2 = velocities(s, smooth_n=2)
    assert v2.velocity_mm_per_day.tolist() == [7.0 / 3.0, 7.0 / 3.0]
    assert v2.mid_day.tolist() == [1.5, 2.5] and v2.end_index.tolist() == [2, 3]
    raw = velocities(s).velocity_mm_per_day
    weights = np.diff(s.t_day)
    assert v2.velocity_mm_per_day[0] == pytest.approx(np.average(raw[:2], weights=weights[:2]))
    with pytest.raises(ValueError, match="smooth_n"):
        velocities(s, smooth_n=0)
    assert len(velocities(s, smooth_n=5)) == 0


def test_one_misread_reading_inside_the_baseline_cancels() -> None:
    t = np.arange(10.0)
    d = t.copy()
    d[5] += 40.0
    v = velocities(series_at(t, d), smooth_n=3)
    # baselines that hold reading 5 strictly inside are untouched by it
    inside = (v.start_index < 5) & (v.end_index > 5)
    assert np.allclose(v.velocity_mm_per_day[inside], 1.0)
    assert not np.allclose(velocities(series_at(t, d)).velocity_mm_per_day, 1.0)


increasing_days = st.lists(st.floats(0.01, 5.0), min_size=2, max_size=30).map(lambda gaps: np.cumsum([0.0, *gaps]))


@settings(max_examples=60, deadline=None)
@given(t=increasing_days, rate=st.floats(-5.0, 50.0), offset=st.floats(-100.0, 100.0))
def test_uniform_motion_has_constant_velocity_and_zero_acceleration(t, rate, offset) -> None:
    vel = velocities(series_at(t, offset + rate * t))
    assert np.allclose(vel.velocity_mm_per_day, rate, atol=1e-6)
    assert np.allclose(vel.acceleration()[1], 0.0, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(t=increasing_days, seed=st.integers(0, 2**32 - 1))
def test_reading_order_does_not_matter(t, seed) -> None:
    d = np.sqrt(t) * 3.0
    perm = np.random.default_rng(seed).permutation(len(t))
    a = series_at(t, d)
    b = displacement_series([T0 + timedelta(days=float(x)) for x in t[perm]], d[perm])
    assert a.t_day.tolist() == b.t_day.tolist() and a.displacement_mm.tolist() == b.displacement_mm.tolist()


# --- Inverse-velocity failure forecast (Fukuzono 1985) ---------------------------------------


def test_forecast_recovers_a_known_failure_time() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    f = forecast_failure_time(velocities(series_at(t, hyperbolic_mm(t, a_mm=70.0, tf_day=70.0))))
    assert isinstance(f, FailureForecast)
    assert days_after_t0(f.failure_time) == pytest.approx(70.0, abs=0.05)
    assert f.r2 > 0.999 and f.n_points == 59 and f.slope_per_mm < 0
    assert f.window_start == T0 + timedelta(hours=12) and days_after_t0(f.window_end) == 58.5
    assert f.failure_time.tzinfo is not None


@settings(max_examples=40, deadline=None)
@given(tf=st.floats(20.0, 400.0), a_mm=st.floats(1.0, 500.0), gaps=st.lists(st.floats(0.2, 1.0), min_size=8,
                                                                             max_size=40))
def test_forecast_noise_free_hyperbola_any_sampling(tf, a_mm, gaps) -> None:
    t = np.cumsum([0.0, *gaps])
    t = t[t < 0.85 * tf]
    if len(t) < 7:
        return
    f = forecast_failure_time(velocities(series_at(t, hyperbolic_mm(t, a_mm=a_mm, tf_day=tf))))
    assert isinstance(f, FailureForecast)
    # midpoint velocities of a hyperbola are not exactly hyperbolic: a small, bounded bias
    assert days_after_t0(f.failure_time) == pytest.approx(tf, rel=0.01, abs=0.1)


@pytest.mark.parametrize("seed", range(10))
def test_forecast_with_noise_lands_within_a_day(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 60.0, 1.0)
    d = hyperbolic_mm(t, a_mm=70.0, tf_day=70.0) + rng.normal(0.0, 0.05, t.size)
    f = forecast_failure_time(velocities(series_at(t, d), smooth_n=3))
    assert isinstance(f, FailureForecast)
    assert days_after_t0(f.failure_time) == pytest.approx(70.0, abs=1.0)


def test_forecast_after_a_steady_stage_uses_only_the_accelerating_tail() -> None:
    t = np.concatenate([np.arange(0.0, 60.0, 1.0), np.arange(60.0, 69.75, 0.25)])
    f = forecast_failure_time(velocities(series_at(t, creep_then_failure_mm(t))))
    assert isinstance(f, FailureForecast)
    assert days_after_t0(f.failure_time) == pytest.approx(70.0, abs=0.1)
    assert days_after_t0(f.window_start) >= 59.5


@pytest.mark.parametrize("seed", range(5))
def test_steady_creep_is_not_accelerating(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 90.0, 1.0)
    d = 1.2 * t + rng.normal(0.0, 0.1, t.size)
    for k in (1, 3):
        assert isinstance(forecast_failure_time(velocities(series_at(t, d), smooth_n=k)), NotAccelerating)


def test_decelerating_is_not_accelerating() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    result = forecast_failure_time(velocities(series_at(t, 30.0 * np.log1p(t / 5.0))))
    assert isinstance(result, NotAccelerating)
    assert "fewer than 5" in result.reason and result.n_points == 1


def test_forecast_rejects_a_short_run_a_backward_move_and_a_poor_fit() -> None:
    t = np.arange(0.0, 5.0, 1.0)
    few = forecast_failure_time(velocities(series_at(t, hyperbolic_mm(t, a_mm=10.0, tf_day=10.0))))
    assert isinstance(few, NotAccelerating) and few.n_points == 4
    back = forecast_failure_time(velocities(series_at([0.0, 1.0, 2.0], [0.0, 2.0, 1.0])))
    assert isinstance(back, NotAccelerating) and "not positive" in back.reason
    # velocities 1, 1.01, 1.02, 1.03, 50: rising at every step but 1/v is far from a line
    curved = series_at(np.arange(6.0), np.cumsum([0.0, 1.0, 1.01, 1.02, 1.03, 50.0]))
    poor = forecast_failure_time(velocities(curved))
    assert isinstance(poor, NotAccelerating) and "r²" in poor.reason
    assert poor.r2 is not None and poor.r2 < 0.8
    assert isinstance(forecast_failure_time(velocities(curved), min_r2=0.5), FailureForecast)
    with pytest.raises(ValueError, match="min_points"):
        forecast_failure_time(velocities(curved), min_points=1)


def test_forecast_of_an_empty_velocity_record() -> None:
    assert isinstance(forecast_failure_time(velocities(series_at([0.0], [0.0]))), NotAccelerating)


# --- Improved tangent angle (Xu et al. 2009) ---------------------------------------------------


def test_tangent_angle_is_arctan_of_velocity_over_v0() -> None:
    assert tangent_angle_deg([0.0, 2.0, 4.0, -2.0], 2.0).tolist() == pytest.approx([0.0, 45.0, 63.4349, -45.0],
                                                                                  abs=1e-4)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(LandslideError, match="v0"):
            tangent_angle_deg([1.0], bad)


@pytest.mark.parametrize(("angle", "stage"), [
    (-10.0, DeformationStage.CONSTANT_VELOCITY),
    (45.0, DeformationStage.CONSTANT_VELOCITY),  # α ≈ 45°: the constant-velocity stage
    (45.01, DeformationStage.INITIAL_ACCELERATION),
    (79.99, DeformationStage.INITIAL_ACCELERATION),
    (80.0, DeformationStage.MEDIUM_ACCELERATION),
    (84.99, DeformationStage.MEDIUM_ACCELERATION),
    (85.0, DeformationStage.IMMINENT_FAILURE),
    (89.9, DeformationStage.IMMINENT_FAILURE),
])
def test_stage_boundaries(angle: float, stage: DeformationStage) -> None:
    assert deformation_stage(angle) is stage


def test_stage_names_and_nan() -> None:
    assert [s.warning for s in DeformationStage] == ["attention", "caution", "alert", "alarm"]
    assert [s.warning_zh for s in DeformationStage] == ["注意级", "警示级", "警戒级", "警报级"]
    assert DeformationStage.IMMINENT_FAILURE.name_zh == "临滑阶段"
    with pytest.raises(LandslideError):
        deformation_stage(math.nan)


def test_thresholds_from_mapping_and_validation() -> None:
    th = TangentAngleThresholds.from_mapping({"alarm_deg": 87, "hysteresis_deg": "1.5", "unknown": 3})
    assert th.alarm_deg == 87.0 and th.hysteresis_deg == 1.5 and th.caution_deg == 45.0
    assert deformation_stage(86.0, th) is DeformationStage.MEDIUM_ACCELERATION
    with pytest.raises(ValueError, match="out of order"):
        TangentAngleThresholds(alert_deg=90.0)
    with pytest.raises(ValueError, match="hysteresis"):
        TangentAngleThresholds(hysteresis_deg=-1.0)


def levels(angles, accels=None, **kw):
    accels = [math.nan] * len(angles) if accels is None else accels
    return [lv.name for lv in tangent_levels(angles, accels, **kw)]


def test_instantaneous_levels_with_persistence_one() -> None:
    got = levels([-5.0, 30.0, 50.0, 81.0, 86.0, 86.0], [math.nan, 0.0, 0.1, 0.2, 0.3, 0.2], persistence=1)
    # red needs a positive, rising acceleration: the last 86° falls back to orange
    assert got == ["NONE", "BLUE", "YELLOW", "ORANGE", "RED", "ORANGE"]


def test_red_needs_rising_acceleration() -> None:
    assert levels([86.0, 86.0, 86.0], [5.0, 4.0, 3.0], persistence=2) == ["NONE", "ORANGE", "ORANGE"]
    assert levels([86.0, 86.0, 86.0], [3.0, 4.0, 5.0], persistence=2) == ["NONE", "RED", "RED"]
    assert levels([86.0, 86.0], [-1.0, -0.5], persistence=1) == ["ORANGE", "ORANGE"]


def test_a_level_is_raised_only_after_it_persists() -> None:
    assert levels([50.0, 50.0, 50.0], persistence=3) == ["NONE", "NONE", "YELLOW"]
    # the run is broken by a lower evaluation: the count starts again
    assert levels([50.0, 10.0, 50.0, 50.0], persistence=2) == ["NONE", "BLUE", "BLUE", "YELLOW"]
    # a mixed run raises to the lowest level it sustained
    assert levels([82.0, 60.0], persistence=2) == ["NONE", "YELLOW"]


def test_a_level_is_lowered_with_hysteresis() -> None:
    # orange entered at 80°; 79° is within the 2° hysteresis and holds it; 77° twice lowers it
    assert levels([82.0, 82.0, 79.0, 79.0, 77.0, 77.0], persistence=2) == [
        "NONE", "ORANGE", "ORANGE", "ORANGE", "ORANGE", "YELLOW"]
    # without hysteresis the same dip lowers it
    no_margin = TangentAngleThresholds(hysteresis_deg=0.0)
    assert levels([82.0, 82.0, 79.0, 79.0], persistence=2, thresholds=no_margin) == [
        "NONE", "ORANGE", "ORANGE", "YELLOW"]
    # lower_after can hold a level longer than it took to raise it
    assert levels([82.0, 82.0, 30.0, 30.0, 30.0], persistence=2, lower_after=3) == [
        "NONE", "ORANGE", "ORANGE", "ORANGE", "BLUE"]


def test_nan_angles_neither_count_nor_break_a_run() -> None:
    assert levels([50.0, math.nan, 50.0], persistence=2) == ["NONE", "NONE", "YELLOW"]
    assert levels([math.nan, math.nan], persistence=1) == ["NONE", "NONE"]


def test_tangent_levels_validation() -> None:
    with pytest.raises(ValueError, match="persistence"):
        tangent_levels([1.0], [0.0], persistence=0)
    with pytest.raises(ValueError, match="lower_after"):
        tangent_levels([1.0], [0.0], lower_after=0)
    with pytest.raises(LandslideError, match="accelerations"):
        tangent_levels([1.0, 2.0], [0.0])


def test_estimate_v0_from_the_opening_window() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 120.0, 1.0)
    d = np.where(t < 40.0, 0.8 * t, 32.0 + 3.0 * (t - 40.0)) + rng.normal(0.0, 0.05, t.size)
    est = estimate_v0(series_at(t, d))
    assert est.v0_mm_per_day == pytest.approx(0.8, abs=0.02)  # the first 30 days only
    assert est.n_points == 31 and est.window_end == T0 + 30 * DAY
    short = estimate_v0(series_at(t[:31], d[:31]))  # 30-day record: its first third, 10 days
    assert short.n_points == 11 and short.window_end == T0 + 10 * DAY


def test_estimate_v0_failures_say_to_give_v0() -> None:
    with pytest.raises(InsufficientDataError, match="give v0"):
        estimate_v0(series_at([0.0, 10.0], [0.0, 1.0]))  # only the first reading in the first 3.3 days
    with pytest.raises(LandslideError, match="does not advance"):
        estimate_v0(series_at(np.arange(30.0), np.zeros(30)))
    with pytest.raises(InsufficientDataError):
        estimate_v0(series_at([0.0], [0.0]))


def test_creep_to_failure_climbs_through_every_level() -> None:
    t = np.concatenate([np.arange(0.0, 60.0, 1.0), np.arange(60.0, 69.75, 0.25)])
    a = assess_tangent_angle(series_at(t, creep_then_failure_mm(t)))
    assert a.v0_estimate is not None and a.v0_mm_per_day == pytest.approx(1.0)
    assert a.velocities.mid_day.size == a.angle_deg.size == len(a.levels) == len(a.stages)
    steady = a.velocities.mid_day < 60.0
    assert np.allclose(a.angle_deg[steady], 45.0)
    assert {a.levels[j] for j in np.flatnonzero(steady)[1:]} == {Level.BLUE}
    # issued levels never skip back down on a monotone acceleration, and end red
    assert list(a.levels) == sorted(a.levels)
    assert {Level.YELLOW, Level.ORANGE, Level.RED} <= set(a.levels)
    assert a.level is Level.RED and a.stages[-1] is DeformationStage.IMMINENT_FAILURE
    first_red = a.levels.index(Level.RED)
    assert all(a.angle_deg[first_red - 1:first_red + 1] >= 85.0)


def test_given_v0_overrides_the_estimate() -> None:
    t = np.arange(0.0, 30.0, 1.0)
    a = assess_tangent_angle(series_at(t, 2.0 * t), v0_mm_per_day=1.0)
    assert a.v0_estimate is None and np.allclose(a.angle_deg, math.degrees(math.atan(2.0)))
    assert a.level is Level.YELLOW


def test_one_noisy_reading_cannot_raise_red() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    d = t.copy()
    d[40] += 50.0  # one misread reading: 51 mm/day into it, −49 mm/day out of it
    kept = assess_tangent_angle(series_at(t, d), v0_mm_per_day=1.0)  # default persistence 2
    assert max(kept.levels) is Level.BLUE
    # the same series without persistence raises red: the guard is what holds it down
    jumpy = assess_tangent_angle(series_at(t, d), v0_mm_per_day=1.0, persistence=1)
    assert Level.RED in jumpy.levels
    # smoothing spreads the same misreading thin
    smooth = assess_tangent_angle(series_at(t, d), v0_mm_per_day=1.0, smooth_n=5, persistence=1)
    assert Level.RED not in smooth.levels


def test_empty_assessment_reads_none() -> None:
    a = assess_tangent_angle(series_at([0.0], [0.0]), v0_mm_per_day=1.0)
    assert a.levels == () and a.level is Level.NONE


# --- Rainfall intensity–duration thresholds -----------------------------------------------------


def test_published_threshold_values() -> None:
    assert float(CAINE_1980.intensity_mm_per_h(1.0)) == pytest.approx(14.82)
    assert float(CAINE_1980.intensity_mm_per_h(10.0)) == pytest.approx(14.82 * 10 ** -0.39)
    assert float(CAINE_1980.accumulation_mm(24.0)) == pytest.approx(14.82 * 24 ** 0.61)
    assert float(GUZZETTI_2008_GLOBAL.intensity_mm_per_h(1.0)) == pytest.approx(2.20)
    assert float(GUZZETTI_2008_GLOBAL.accumulation_mm(100.0)) == pytest.approx(2.20 * 100 ** 0.56)
    assert CAINE_1980.min_duration_h == pytest.approx(1 / 6) and CAINE_1980.max_duration_h == 240.0
    assert (GUZZETTI_2008_GLOBAL.min_duration_h, GUZZETTI_2008_GLOBAL.max_duration_h) == (0.1, 1000.0)


def test_duration_outside_the_valid_range_is_an_error() -> None:
    with pytest.raises(LandslideError, match="outside the Caine 1980 range"):
        CAINE_1980.accumulation_mm(300.0)
    with pytest.raises(LandslideError, match="0.05 h"):
        exceedance_ratio(10.0, [1.0, 0.05], GUZZETTI_2008_GLOBAL)


def test_threshold_from_mapping() -> None:
    assert IntensityDurationThreshold.from_mapping({}) == GUZZETTI_2008_GLOBAL
    assert IntensityDurationThreshold.from_mapping({"preset": "caine1980"}) == CAINE_1980
    local = IntensityDurationThreshold.from_mapping({"a_mm_per_h": "7.5", "b": -0.5, "max_duration_h": 72,
                                                     "colour": "ignored"})
    assert (local.a_mm_per_h, local.b, local.min_duration_h, local.max_duration_h, local.name) == (
        7.5, -0.5, 0.1, 72.0, "custom")
    with pytest.raises(ValueError, match="unknown threshold preset"):
        IntensityDurationThreshold.from_mapping({"preset": "nowhere"})
    with pytest.raises(ValueError, match="0 < min < max"):
        IntensityDurationThreshold.from_mapping({"min_duration_h": 10, "max_duration_h": 5})
    with pytest.raises(ValueError, match="a > 0"):
        IntensityDurationThreshold(0.0, -0.4, 1.0, 10.0)


def test_exceedance_ratio_is_vectorised_and_keeps_nan() -> None:
    acc = np.array([[0.0, 14.82], [29.64, math.nan]])
    r = exceedance_ratio(acc, 1.0, CAINE_1980)
    assert r.shape == (2, 2)
    assert r[0].tolist() == pytest.approx([0.0, 1.0]) and r[1, 0] == pytest.approx(2.0) and math.isnan(r[1, 1])
    with pytest.raises(LandslideError, match="negative"):
        exceedance_ratio([1.0, -0.1], 1.0)


@settings(max_examples=60, deadline=None)
@given(acc=st.floats(0.0, 1000.0), k=st.floats(0.0, 10.0), dur=st.floats(0.1, 1000.0))
def test_exceedance_ratio_scales_with_rain(acc, k, dur) -> None:
    assert float(exceedance_ratio(acc * k, dur)) == pytest.approx(k * float(exceedance_ratio(acc, dur)),
                                                                  rel=1e-9, abs=1e-12)


def test_max_exceedance_over_a_grid_of_windows() -> None:
    th = GUZZETTI_2008_GLOBAL
    need = {d: float(th.accumulation_mm(d)) for d in (1, 3, 6, 12, 24)}
    nan = math.nan
    grids = {
        1: np.array([[0.5 * need[1], 0.0], [nan, nan]]),
        3: np.array([[0.6 * need[3], 0.0], [2.0 * need[3], nan]]),
        6: np.array([[0.6 * need[6], 0.0], [2.0 * need[6], nan]]),  # tie with 3 h: the shorter wins
        12: np.array([[1.4 * need[12], 0.0], [nan, nan]]),
        24: np.array([[1.2 * need[24], 0.0], [0.1, nan]]),
    }
    ex = max_exceedance(grids, th)
    assert ex.ratio[0, 0] == pytest.approx(1.4) and ex.duration_h[0, 0] == 12.0
    assert ex.ratio[0, 1] == 0.0 and ex.duration_h[0, 1] == 1.0
    assert ex.ratio[1, 0] == pytest.approx(2.0) and ex.duration_h[1, 0] == 3.0
    assert math.isnan(ex.ratio[1, 1]) and math.isnan(ex.duration_h[1, 1])
    with pytest.raises(InsufficientDataError):
        max_exceedance({})


def test_ratio_levels_and_breaks() -> None:
    got = ratio_levels([0.0, 0.49, 0.5, 0.75, 0.99, 1.0, 1.49, 1.5, 9.0, math.nan])
    assert got.tolist() == [0, 0, 1, 2, 2, 3, 3, 4, 4, -1]
    assert ratio_level(1.0) is Level.ORANGE and ratio_level(0.2) is Level.NONE
    with pytest.raises(LandslideError):
        ratio_level(math.nan)
    strict = RatioBreaks.from_mapping({"orange": 1.2, "red": 2, "other": 1})
    assert (strict.blue, strict.orange, strict.red) == (0.5, 1.2, 2.0)
    assert ratio_level(1.0, strict) is Level.YELLOW
    with pytest.raises(ValueError, match="out of order"):
        RatioBreaks(yellow=1.1)


def test_forecast_rain_raises_a_staged_warning_before_observed_rain_does() -> None:
    th = CAINE_1980
    # 6 h of steady rain at 60 % of the 6 h threshold; 25 mm/h expected for the next 3 h
    observed = {1: 0.6 * float(th.accumulation_mm(6.0)) / 6, 3: 0.6 * float(th.accumulation_mm(6.0)) / 2,
                6: 0.6 * float(th.accumulation_mm(6.0))}
    forecast = {1: 25.0, 3: 75.0, 6: 75.0}
    now = max_exceedance(observed, th)
    assert float(now.ratio) < 1.0 and ratio_level(float(now.ratio)) < Level.ORANGE
    staged = staged_exceedance(observed, forecast, th)
    lead = float(staged.lead_h)
    assert lead in (1.0, 3.0) and float(staged.ratio) >= 1.0
    assert describe_staged(lead)[0] == f"Rain expected to reach the landslide threshold in ~{lead:g} h"
    # three hours on, the forecast rain has fallen: the observed rain now reaches it (lead 0)
    later = {1: 25.0, 3: 75.0, 6: 75.0 + observed[3]}
    assert float(max_exceedance(later, th).ratio) >= 1.0
    assert float(staged_exceedance(later, {1: 0.0}, th).lead_h) == 0.0


def test_staged_lead_times_on_a_grid() -> None:
    th = GUZZETTI_2008_GLOBAL
    obs = {1: np.array([0.0, 0.0, 50.0, 0.0]), 24: np.array([0.0, 0.0, 60.0, 0.0])}
    fc = {1: np.array([0.0, 0.0, 0.0, math.nan]),
          3: np.array([0.0, 12.0, 0.0, math.nan]),
          6: np.array([1.0, 12.0, 0.0, math.nan])}
    s = staged_exceedance(obs, fc, th)
    assert math.isnan(s.lead_h[0])  # 1 mm in 6 h: never
    assert s.lead_h[1] == 3.0  # 12 mm in 3 h > 2.2·3^0.56 ≈ 4.3 mm
    assert s.lead_h[2] == 0.0  # already exceeded
    assert math.isnan(s.lead_h[3]) and math.isnan(s.ratio[3])  # no data anywhere: no warning, no number
    assert s.ratio[1] >= 1.0 and s.duration_h[1] == 3.0


def test_staged_rejects_non_cumulative_or_negative_forecasts() -> None:
    with pytest.raises(LandslideError, match="cumulative"):
        staged_exceedance({1: 0.0}, {1: 5.0, 3: 4.0})
    with pytest.raises(LandslideError, match="negative"):
        staged_exceedance({1: 0.0}, {1: -1.0})
    with pytest.raises(LandslideError, match="positive"):
        staged_exceedance({1: 0.0}, {0: 1.0})
    with pytest.raises(InsufficientDataError):
        staged_exceedance({1: 0.0}, {})


@settings(max_examples=60, deadline=None)
@given(obs=st.floats(0.0, 80.0), f1=st.floats(0.0, 40.0), f2=st.floats(0.0, 40.0), f3=st.floats(0.0, 40.0),
       extra=st.floats(0.0, 40.0))
def test_more_forecast_rain_never_delays_the_warning(obs, f1, f2, f3, extra) -> None:
    fc = {1: f1, 3: f1 + f2, 6: f1 + f2 + f3}
    wetter = {k: v + extra for k, v in fc.items()}
    base = float(staged_exceedance({6: obs}, fc).lead_h)
    more = float(staged_exceedance({6: obs}, wetter).lead_h)
    assert math.isnan(base) or more <= base


def test_describe_staged() -> None:
    assert describe_staged(math.nan)[0].startswith("Rain not expected")
    assert describe_staged(0.0) == ("Rain has reached the landslide threshold", "降雨已达到滑坡降雨阈值")
    assert describe_staged(6.0)[1] == "预计约 6 小时后降雨达到滑坡降雨阈值"
