"""Flood science: rate of rise, trend forecast, Muskingum routing, rating curves, datums, extent."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from scipy.ndimage import gaussian_filter
from shapely.geometry import MultiPolygon, box

from command.district import Terrain
from command.risk.flood import (
    DatumOffset,
    FloodError,
    RatingCurve,
    RiverThresholds,
    RoutingUnstable,
    cell_area_m2,
    convert_datum_m,
    flood_extent,
    forecast_by_trend,
    hours_to_level,
    mask_polygons,
    muskingum_coefficients,
    muskingum_route,
    rise_rate_m_per_h,
    rise_rates_m_per_h,
    route_to_downstream,
    water_mask,
)
from command.risk.rules import Level

T0 = datetime(2020, 8, 19, tzinfo=UTC)
CUNTAN = RiverThresholds(warning_m=180.5, guaranteed_m=183.5, historical_max_m=191.62, approach_m=1.0)
GEOD = Geod(ellps="WGS84")


def hours(*hs: float) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in hs]


# --- rate of rise -----------------------------------------------------------------------------


def test_rise_rates_known_values() -> None:
    times = hours(0, 1, 2, 3, 4)
    rates = rise_rates_m_per_h(times, [179.0, 179.5, 180.0, 180.6, 181.0])
    assert math.isnan(rates[0])  # one reading: no slope
    assert rates[1:3] == pytest.approx([0.5, 0.5])
    assert rates[3] == pytest.approx(0.53)  # 0..3 h: Σ(t−t̄)(y−ȳ)/Σ(t−t̄)² = 2.65/5
    assert rates[4] == pytest.approx(0.51)  # 1..4 h (the 0 h reading is 4 h old)


def test_rise_window_is_closed_at_its_start() -> None:
    # Readings exactly window_h apart are both inside the window.
    rates = rise_rates_m_per_h(hours(0, 3), [180.0, 181.5], window_h=3.0)
    assert rates[1] == pytest.approx(0.5)
    # ... but a reading older than the window is not.
    rates = rise_rates_m_per_h(hours(0, 3.01), [180.0, 181.5], window_h=3.0)
    assert math.isnan(rates[1])


def test_rise_forgets_old_readings() -> None:
    # A jump, then flat: once the jump leaves the window the rate is 0.
    times = hours(0, 1, 2, 3, 4, 5, 6)
    rates = rise_rates_m_per_h(times, [180, 182, 182, 182, 182, 182, 182], window_h=2.0)
    assert rates[1] == pytest.approx(2.0)
    assert rates[4:] == pytest.approx([0.0, 0.0, 0.0])


def test_rise_skips_nan_levels_and_needs_min_points() -> None:
    times = hours(0, 0.5, 1)
    rates = rise_rates_m_per_h(times, [180.0, math.nan, 180.4])
    assert rates[2] == pytest.approx(0.4)
    assert math.isnan(rise_rates_m_per_h(times, [180.0, 180.1, 180.4], min_points=3)[1])
    assert rise_rates_m_per_h(times, [180.0, 180.1, 180.4], min_points=3)[2] == pytest.approx(0.4)


def test_rise_rate_at_now_between_readings() -> None:
    times = hours(0, 1, 2, 10)
    levels = [180.0, 180.2, 180.4, 170.0]
    assert rise_rate_m_per_h(times, levels, now=T0 + timedelta(hours=2.5)) == pytest.approx(0.2)
    assert math.isnan(rise_rate_m_per_h(times, levels, now=T0 + timedelta(hours=8)))
    assert math.isnan(rise_rate_m_per_h([], [], now=T0))


@pytest.mark.parametrize(("times", "levels", "match"), [
    (hours(0, 2, 1), [1.0, 2.0, 3.0], "times must increase"),
    (hours(0, 1, 1), [1.0, 2.0, 3.0], "times must increase"),
    ([datetime(2020, 1, 1), datetime(2020, 1, 2)], [1.0, 2.0], "no time zone"),
    (hours(0, 1), [1.0], "2 times but 1 levels"),
])
def test_rise_rejects_bad_series(times: list[datetime], levels: list[float], match: str) -> None:
    with pytest.raises(FloodError, match=match):
        rise_rates_m_per_h(times, levels)


def test_rise_rejects_bad_window() -> None:
    with pytest.raises(FloodError, match="window_h"):
        rise_rates_m_per_h(hours(0, 1), [1.0, 2.0], window_h=0)
    with pytest.raises(FloodError, match="min_points"):
        rise_rates_m_per_h(hours(0, 1), [1.0, 2.0], min_points=1)


@settings(max_examples=60, deadline=None)
@given(steps_min=st.lists(st.integers(min_value=1, max_value=90), min_size=2, max_size=40),
       slope=st.floats(min_value=-2.0, max_value=2.0), base=st.floats(min_value=100.0, max_value=300.0))
def test_rise_of_a_straight_line_is_its_slope_under_any_sampling(steps_min: list[int], slope: float,
                                                                 base: float) -> None:
    offsets_h = np.cumsum([0, *steps_min]) / 60.0
    times = [T0 + timedelta(hours=float(h)) for h in offsets_h]
    rates = rise_rates_m_per_h(times, base + slope * offsets_h)
    assert math.isnan(rates[0])
    assert rates[1:] == pytest.approx(np.full(len(steps_min), slope), abs=1e-6)  # steps < window


# --- trend forecast ---------------------------------------------------------------------------


def test_hours_to_level() -> None:
    assert hours_to_level(179.5, 0.25, 180.5) == pytest.approx(4.0)
    assert hours_to_level(179.5, 0.0, 180.5) is None  # not rising
    assert hours_to_level(179.5, -0.1, 180.5) is None  # falling
    assert hours_to_level(180.5, 0.3, 180.5) is None  # already there
    assert hours_to_level(181.0, 0.3, 180.5) is None  # above
    assert hours_to_level(170.0, 0.1, 180.5) is None  # 105 h > 72 h horizon
    assert hours_to_level(170.0, 0.1, 180.5, horizon_h=200) == pytest.approx(105.0)
    assert hours_to_level(math.nan, 0.1, 180.5) is None
    assert hours_to_level(179.0, math.nan, 180.5) is None
    assert hours_to_level(179.0, 0.1, math.inf) is None
    with pytest.raises(FloodError, match="horizon_h"):
        hours_to_level(179.0, 0.1, 180.5, horizon_h=0)


def test_forecast_by_trend_known_answers() -> None:
    times = hours(0, 1, 2, 3)
    f = forecast_by_trend(times, [178.9, 179.1, 179.3, 179.5], CUNTAN)
    assert f.time == times[-1] and f.level_m == 179.5 and f.signal is Level.BLUE
    assert f.rise_m_per_h == pytest.approx(0.2)
    assert f.hours_to_warning == pytest.approx(5.0)
    assert f.hours_to_guaranteed == pytest.approx(20.0)
    assert f.hours_to_historical_max == pytest.approx(60.6)  # (191.62 − 179.5) / 0.2
    short = forecast_by_trend(times, [178.9, 179.1, 179.3, 179.5], CUNTAN, horizon_h=12)
    assert short.hours_to_warning == pytest.approx(5.0)
    assert short.hours_to_guaranteed is None and short.hours_to_historical_max is None


def test_forecast_by_trend_uses_reading_at_or_before_now() -> None:
    times = hours(0, 1, 2, 3)
    levels = [181.0, 181.5, 182.0, 150.0]
    f = forecast_by_trend(times, levels, CUNTAN, now=T0 + timedelta(hours=2, minutes=30))
    assert f.level_m == 182.0 and f.signal is Level.YELLOW
    assert f.hours_to_warning is None  # already above
    assert f.hours_to_guaranteed == pytest.approx(3.0)
    with pytest.raises(FloodError, match="no reading"):
        forecast_by_trend(times, levels, CUNTAN, now=T0 - timedelta(hours=1))
    with pytest.raises(FloodError, match="no readings"):
        forecast_by_trend([], [], CUNTAN)


def test_forecast_single_reading_has_no_rate() -> None:
    f = forecast_by_trend(hours(0), [180.0], CUNTAN)
    assert math.isnan(f.rise_m_per_h)
    assert f.hours_to_warning is None and f.hours_to_guaranteed is None


def test_forecast_is_frozen() -> None:
    f = forecast_by_trend(hours(0, 1), [180.0, 180.1], CUNTAN)
    with pytest.raises(AttributeError):
        f.level_m = 1.0  # type: ignore[misc]


def test_river_thresholds_from_mapping() -> None:
    th = RiverThresholds.from_mapping({"warning_m": 180.5, "guaranteed_m": 183.5, "historical_max_m": 191.62})
    assert th == CUNTAN
    assert RiverThresholds.from_mapping({"warning_m": 1, "guaranteed_m": 2, "approach_m": 0.3}).approach_m == 0.3
    assert RiverThresholds.from_mapping({"warning_m": 1, "guaranteed_m": 2}, approach_m=0.2).approach_m == 0.2
    assert RiverThresholds.from_mapping({"warning_m": 1, "guaranteed_m": 2}).historical_max_m == math.inf
    with pytest.raises(FloodError, match="lack guaranteed_m"):
        RiverThresholds.from_mapping({"warning_m": 1})
    with pytest.raises(FloodError, match="out of order"):
        RiverThresholds.from_mapping({"warning_m": 3, "guaranteed_m": 2})
    with pytest.raises(FloodError, match="must be numbers"):
        RiverThresholds.from_mapping({"warning_m": "high", "guaranteed_m": 2})
    with pytest.raises(FloodError, match="approach_m"):
        RiverThresholds(1.0, 2.0, approach_m=-0.1)
    with pytest.raises(FloodError, match="finite"):
        RiverThresholds(math.nan, 2.0)


def test_river_thresholds_signal_matches_rules() -> None:
    assert [CUNTAN.signal(h).colour for h in (179.0, 179.6, 181.0, 184.0, 192.0)] == \
        ["none", "blue", "yellow", "orange", "red"]
    assert CUNTAN.signal(math.nan) is Level.NONE
    assert RiverThresholds(180.5, 183.5).signal(1000.0) is Level.ORANGE  # no historical max: no red


# --- Muskingum --------------------------------------------------------------------------------


def test_muskingum_coefficients_chow_example() -> None:
    # Chow, Maidment & Mays (1988), Example 8.4.1: K = 2.3 h, X = 0.15, Δt = 1 h.
    c0, c1, c2 = muskingum_coefficients(2.3, 0.15, 1.0)
    assert (c0, c1, c2) == pytest.approx((0.0631, 0.3442, 0.5927), abs=1e-4)


@settings(max_examples=100, deadline=None)
@given(k_h=st.floats(min_value=0.1, max_value=100.0), x=st.floats(min_value=0.0, max_value=0.5),
       frac=st.floats(min_value=0.0, max_value=1.0))
def test_muskingum_coefficients_sum_to_one_and_are_non_negative(k_h: float, x: float, frac: float) -> None:
    lo, hi = 2 * k_h * x, 2 * k_h * (1 - x)
    dt_h = lo + frac * (hi - lo)
    if dt_h <= 0:
        return
    c = muskingum_coefficients(k_h, x, dt_h)
    assert sum(c) == pytest.approx(1.0)
    assert all(ci >= 0 for ci in c)


@pytest.mark.parametrize(("k_h", "x", "dt_h"), [
    (10.0, 0.2, 3.0),  # Δt < 2KX = 4
    (2.0, 0.2, 3.5),  # Δt > 2K(1−X) = 3.2
    (1.0, 0.5, 1.5),  # X = 0.5 allows only Δt = K
])
def test_muskingum_rejects_unstable_steps(k_h: float, x: float, dt_h: float) -> None:
    with pytest.raises(RoutingUnstable, match=r"2KX .* ≤ Δt ≤ 2K\(1−X\)"):
        muskingum_coefficients(k_h, x, dt_h)
    with pytest.raises(RoutingUnstable):
        muskingum_route([1.0, 2.0, 3.0], k_h=k_h, x=x, dt_h=dt_h)


@pytest.mark.parametrize(("k_h", "x", "dt_h", "match"), [
    (0.0, 0.2, 1.0, "K must be positive"),
    (2.0, 0.6, 1.0, r"X must lie in \[0, 0.5\]"),
    (2.0, -0.1, 1.0, r"X must lie"),
    (2.0, 0.2, 0.0, "Δt must be positive"),
    (math.nan, 0.2, 1.0, "finite"),
])
def test_muskingum_rejects_bad_parameters(k_h: float, x: float, dt_h: float, match: str) -> None:
    with pytest.raises(FloodError, match=match):
        muskingum_coefficients(k_h, x, dt_h)


def _hydrograph(n: int = 200, base: float = 100.0, peak: float = 1000.0, rise: int = 10, fall: int = 30) -> np.ndarray:
    q = np.full(n, base)
    q[5:5 + rise] = np.linspace(base, peak, rise, endpoint=False)
    q[5 + rise:5 + rise + fall] = np.linspace(peak, base, fall, endpoint=False)
    return q


def test_muskingum_pure_translation() -> None:
    # X = 0.5, K = Δt: C0 = C2 = 0, C1 = 1, the wave moves one step unchanged.
    assert muskingum_coefficients(2.0, 0.5, 2.0) == pytest.approx((0.0, 1.0, 0.0))
    q = _hydrograph()
    out = muskingum_route(q, k_h=2.0, x=0.5, dt_h=2.0)
    assert out[0] == q[0]
    assert out[1:] == pytest.approx(q[:-1])


def test_muskingum_mass_balance_attenuation_and_delay() -> None:
    q = _hydrograph()
    out = muskingum_route(q, k_h=6.0, x=0.2, dt_h=3.0)
    assert np.sum(out - 100.0) == pytest.approx(np.sum(q - 100.0), rel=1e-3)  # volume kept
    assert out.max() < 0.95 * q.max()  # attenuated
    assert int(np.argmax(out)) > int(np.argmax(q))  # delayed
    assert out.min() >= 100.0 - 1e-9  # no dip below the base flow


def test_muskingum_matches_the_recursion() -> None:
    q = _hydrograph(60)
    c0, c1, c2 = muskingum_coefficients(3.0, 0.25, 2.0)
    expected = [150.0]
    for j in range(1, q.size):
        expected.append(c0 * q[j] + c1 * q[j - 1] + c2 * expected[-1])
    assert muskingum_route(q, k_h=3.0, x=0.25, dt_h=2.0, initial_outflow_m3s=150.0) == pytest.approx(expected)


def test_muskingum_steady_state_and_edges() -> None:
    assert muskingum_route(np.full(20, 500.0), k_h=5.0, x=0.1, dt_h=1.0) == pytest.approx(np.full(20, 500.0))
    assert muskingum_route([], k_h=5.0, x=0.1, dt_h=1.0).size == 0
    with pytest.raises(FloodError, match="missing value"):
        muskingum_route([1.0, math.nan, 2.0], k_h=5.0, x=0.1, dt_h=1.0)
    with pytest.raises(FloodError, match="1-D"):
        muskingum_route(np.ones((2, 2)), k_h=5.0, x=0.1, dt_h=1.0)


# --- rating curves and routed forecasts -------------------------------------------------------


def test_rating_curve_round_trip() -> None:
    r = RatingCurve(a=120.0, h0_m=160.0, b=1.6)
    h = np.array([161.0, 170.0, 185.5])
    q = r.discharge_m3s(h)
    assert q[0] == pytest.approx(120.0)
    assert q[1] == pytest.approx(120.0 * 10.0 ** 1.6)
    assert r.level_m(q) == pytest.approx(h)
    assert r.discharge_m3s(159.0) == 0.0 and r.discharge_m3s(160.0) == 0.0
    assert r.level_m(0.0) == 160.0
    assert math.isnan(r.level_m(-1.0))
    assert math.isnan(r.discharge_m3s(math.nan))
    assert isinstance(r.discharge_m3s(170.0), float)


def test_rating_curve_from_mapping() -> None:
    r = RatingCurve.from_mapping({"a": 50, "h0_m": 170.2, "b": 1.5, "note": "2019 fit"})
    assert r == RatingCurve(50.0, 170.2, 1.5)
    with pytest.raises(FloodError, match="lacks h0_m, b"):
        RatingCurve.from_mapping({"a": 1})
    with pytest.raises(FloodError, match="numbers"):
        RatingCurve.from_mapping({"a": "x", "h0_m": 1, "b": 1})
    with pytest.raises(FloodError, match="coefficient a"):
        RatingCurve(a=0.0, h0_m=0.0, b=1.0)
    with pytest.raises(FloodError, match="exponent b"):
        RatingCurve(a=1.0, h0_m=0.0, b=-1.0)


def test_route_to_downstream_pure_translation_known_answers() -> None:
    # Same linear rating both ends and a one-step translation: the downstream level is the
    # upstream level one hour later, then holds the last upstream level.
    rating = RatingCurve(a=100.0, h0_m=0.0, b=1.0)
    times = hours(*range(11))
    levels = np.arange(11, dtype=float)  # 0 .. 10 m, now = 10 h
    th = RiverThresholds(warning_m=9.5, guaranteed_m=10.0, historical_max_m=12.0)
    f = route_to_downstream(times, levels, upstream_rating=rating, downstream_rating=rating, thresholds=th,
                            k_h=1.0, x=0.5, dt_h=1.0, horizon_h=5.0)
    assert f.now == times[-1]
    assert f.times[0] == times[0] and f.times[-1] == times[-1] + timedelta(hours=5)
    assert f.downstream_level_m[1:11] == pytest.approx(levels[:-1])
    assert f.level_now_m == pytest.approx(9.0)
    assert f.hours_to_warning == pytest.approx(0.5)
    assert f.hours_to_guaranteed == pytest.approx(1.0)
    assert f.hours_to_historical_max is None
    assert f.peak_level_m == pytest.approx(10.0) and f.peak_time == times[-1] + timedelta(hours=1)
    with pytest.raises(ValueError):
        f.downstream_level_m[0] = 1.0  # read-only


def test_route_to_downstream_lags_and_attenuates() -> None:
    up = RatingCurve(a=80.0, h0_m=190.0, b=1.5)
    down = RatingCurve(a=150.0, h0_m=170.0, b=1.4)
    # Upstream rises 6 m over 12 h (sampled every 20 min), observed until now.
    offsets = np.arange(0, 12.01, 1 / 3)
    times = [T0 + timedelta(hours=float(h)) for h in offsets]
    levels = 192.0 + 6.0 * np.clip((offsets - 2.0) / 10.0, 0, 1)
    q_now = up.discharge_m3s(levels[-1])
    h_final = down.level_m(q_now)  # where the downstream level settles
    h_start = down.level_m(up.discharge_m3s(192.0))
    warning = h_start + 0.9 * (h_final - h_start)
    th = RiverThresholds(warning_m=float(warning), guaranteed_m=float(h_final) + 1.0)
    f = route_to_downstream(times, levels, upstream_rating=up, downstream_rating=down, thresholds=th,
                            k_h=8.0, x=0.2, dt_h=4.0)
    assert f.level_now_m < warning  # the reach has not passed the wave on yet
    assert f.hours_to_warning is not None and 0 < f.hours_to_warning < 72
    assert f.hours_to_guaranteed is None  # never reached on persistence
    assert f.peak_level_m == pytest.approx(float(h_final), abs=0.05)
    # Consistent with the returned series: the crossing lies in the step that first reaches warning.
    after = [(t, h) for t, h in zip(f.times, f.downstream_level_m, strict=True) if t > f.now]
    k = next(i for i, (_, h) in enumerate(after) if h >= warning)
    first_h = (after[k][0] - f.now).total_seconds() / 3600
    assert first_h - 4.0 < f.hours_to_warning <= first_h


def test_route_to_downstream_lateral_inflow_and_errors() -> None:
    rating = RatingCurve(a=100.0, h0_m=0.0, b=1.0)
    th = RiverThresholds(warning_m=5.0, guaranteed_m=6.0)
    f = route_to_downstream(hours(0, 1), [1.0, 1.0], upstream_rating=rating, downstream_rating=rating,
                            thresholds=th, k_h=2.0, x=0.2, dt_h=1.0, lateral_m3s=100.0)
    assert f.downstream_level_m == pytest.approx(2.0)  # (100 + 100) m³/s on the same rating
    with pytest.raises(RoutingUnstable):
        route_to_downstream(hours(0, 1), [1.0, 1.0], upstream_rating=rating, downstream_rating=rating,
                            thresholds=th, k_h=10.0, x=0.4, dt_h=1.0)
    with pytest.raises(FloodError, match="no upstream level"):
        route_to_downstream(hours(0, 1), [math.nan, math.nan], upstream_rating=rating,
                            downstream_rating=rating, thresholds=th, k_h=2.0, x=0.2, dt_h=1.0)
    with pytest.raises(FloodError, match="lateral_m3s"):
        route_to_downstream(hours(0, 1), [1.0, 1.0], upstream_rating=rating, downstream_rating=rating,
                            thresholds=th, k_h=2.0, x=0.2, dt_h=1.0, lateral_m3s=-1.0)
    # Already above the warning at now: no time to give.
    f = route_to_downstream(hours(0, 1), [7.0, 7.0], upstream_rating=rating, downstream_rating=rating,
                            thresholds=th, k_h=2.0, x=0.2, dt_h=1.0)
    assert f.hours_to_warning is None and f.hours_to_guaranteed is None


# --- datums -----------------------------------------------------------------------------------


def test_datum_conversion() -> None:
    off = DatumOffset(1.49)
    hh = convert_datum_m(180.5, from_datum="Wusong", to_datum="Huanghai", offset=off)
    assert hh == pytest.approx(179.01)
    assert convert_datum_m(hh, from_datum="Huanghai", to_datum="Wusong", offset=off) == pytest.approx(180.5)
    assert convert_datum_m(np.array([1.0, 2.0]), from_datum="Wusong", to_datum="Huanghai", offset=off) == \
        pytest.approx([-0.49, 0.51])
    assert convert_datum_m(180.5, from_datum="Wusong", to_datum="Wusong") == 180.5
    with pytest.raises(FloodError, match="needs the gauge's Wusong − Huanghai offset"):
        convert_datum_m(180.5, from_datum="Wusong", to_datum="Huanghai")
    with pytest.raises(FloodError, match="unknown vertical datum 'CGVD'"):
        convert_datum_m(180.5, from_datum="CGVD", to_datum="Huanghai", offset=off)


def test_datum_offset_from_mapping_is_required() -> None:
    assert DatumOffset.from_mapping({"wusong_minus_huanghai_m": "1.59"}) == DatumOffset(1.59)
    with pytest.raises(FloodError, match="no default"):
        DatumOffset.from_mapping({})
    with pytest.raises(FloodError, match="must be a number"):
        DatumOffset.from_mapping({"wusong_minus_huanghai_m": "about 1.5"})
    with pytest.raises(FloodError, match="finite"):
        DatumOffset(math.inf)


# --- flood extent -----------------------------------------------------------------------------

CELL = 0.001


def valley() -> tuple[Terrain, np.ndarray]:
    """A river along column 10 at 100 m, banks rising 0.5 m per cell; a closed pit at 95 m east of a ridge."""
    nrows, ncols = 30, 60
    col = np.arange(ncols)
    z = np.tile(100.0 + 0.5 * np.abs(col - 10), (nrows, 1))
    z[:, 38:41] = 130.0  # ridge
    z[10:20, 45:52] = 95.0  # depression behind the ridge, below any test level
    water = np.zeros((nrows, ncols), dtype=bool)
    water[:, 10] = True
    return Terrain(z, 106.6, 29.6, CELL), water


def test_valley_extent_known() -> None:
    terrain, water = valley()
    fx = flood_extent(terrain, water, 103.0)
    cols = np.flatnonzero(fx.extent.any(axis=0))
    assert cols.tolist() == list(range(5, 16))  # 0.5·|c − 10| < 3 ⇒ |c − 10| ≤ 5
    assert fx.extent[:, 5:16].all()
    assert not fx.extent[:, 45:52].any()  # the pit is below the level but not connected
    assert fx.depth_m[0, 10] == pytest.approx(3.0)
    assert fx.depth_m[7, 12] == pytest.approx(2.0)
    assert fx.max_depth_m == pytest.approx(3.0)
    per_row = cell_area_m2(terrain)
    assert fx.area_m2 == pytest.approx(11 * per_row.sum())
    assert fx.land_area_m2 == pytest.approx(10 * per_row.sum())


def test_depth_is_surface_minus_ground_inside_and_zero_outside() -> None:
    terrain, water = valley()
    fx = flood_extent(terrain, water, 104.2)
    z = terrain.z_m
    assert np.all(fx.depth_m[fx.extent] > 0)
    assert fx.depth_m[fx.extent] == pytest.approx((104.2 - z)[fx.extent])
    assert np.all(fx.depth_m[~fx.extent] == 0)


def test_level_below_the_water_floods_nothing() -> None:
    terrain, water = valley()
    fx = flood_extent(terrain, water, 99.0)
    assert not fx.extent.any() and fx.area_m2 == 0.0 and fx.polygons.is_empty


def test_sloping_surface() -> None:
    terrain, water = valley()
    # Surface 103 m in the north rows, 101 m in the south rows.
    surface = np.where(np.arange(30)[:, None] < 15, 103.0, 101.0) * np.ones((30, 60))
    fx = flood_extent(terrain, water, surface)
    assert np.flatnonzero(fx.extent[0]).tolist() == list(range(5, 16))
    assert np.flatnonzero(fx.extent[29]).tolist() == list(range(9, 12))  # 0.5·|c−10| < 1


def test_diagonal_neighbours_connect() -> None:
    z = np.full((5, 5), 50.0)
    z[0, 0] = z[1, 1] = z[2, 2] = 10.0  # a diagonal chain below the level
    water = np.zeros((5, 5), dtype=bool)
    water[0, 0] = True
    fx = flood_extent(Terrain(z, 106.0, 29.0, CELL), water, 20.0)
    assert fx.extent.sum() == 3 and fx.extent[2, 2]


def test_nan_ground_never_floods() -> None:
    terrain, water = valley()
    z = terrain.z_m.copy()
    z[:, 12] = np.nan  # a no-data strip cuts the east bank off
    fx = flood_extent(Terrain(z, 106.6, 29.6, CELL), water, 103.0)
    assert not fx.extent[:, 12].any()
    assert not fx.extent[:, 13:16].any()
    assert fx.extent[:, 5:12].all()


def test_extent_rejects_shape_mismatch() -> None:
    terrain, water = valley()
    with pytest.raises(FloodError, match="water mask shape"):
        flood_extent(terrain, water[:, :10], 103.0)
    with pytest.raises(FloodError, match="surface must be one level or a grid"):
        flood_extent(terrain, water, np.ones((3, 3)))
    with pytest.raises(FloodError, match="mask shape"):
        mask_polygons(terrain, water[:5])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lo=st.floats(90.0, 115.0), extra=st.floats(0.0, 10.0))
def test_higher_level_floods_a_superset(seed: int, lo: float, extra: float) -> None:
    rng = np.random.default_rng(seed)
    z = 100.0 + 10.0 * rng.random((20, 25))
    water = rng.random((20, 25)) < 0.05
    terrain = Terrain(z, 106.6, 29.6, CELL)
    a = flood_extent(terrain, water, lo, polygons=False)
    b = flood_extent(terrain, water, lo + extra, polygons=False)
    assert np.all(b.extent[a.extent])
    assert b.area_m2 >= a.area_m2


def _cell_centres(terrain: Terrain) -> tuple[np.ndarray, np.ndarray]:
    nrows, ncols = terrain.z_m.shape
    lon = terrain.xll_deg + (np.arange(ncols) + 0.5) * terrain.cell_deg
    lat = terrain.yll_deg + (nrows - np.arange(nrows) - 0.5) * terrain.cell_deg
    return np.meshgrid(lon, lat)


def _geodesic_area(geom: MultiPolygon) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def test_polygons_cover_exactly_the_extent_cells_and_area_matches() -> None:
    rng = np.random.default_rng(7)
    z = 100.0 + 8.0 * rng.random((40, 50))
    z[18:23, 20:25] = 120.0  # an island: a hole in the extent
    water = np.zeros((40, 50), dtype=bool)
    water[:, 0] = True
    terrain = Terrain(z, 106.6, 29.6, 0.002)
    fx = flood_extent(terrain, water, 105.0)
    assert fx.polygons.is_valid and isinstance(fx.polygons, MultiPolygon)
    lon, lat = _cell_centres(terrain)
    assert np.array_equal(shapely.contains_xy(fx.polygons, lon, lat), fx.extent)
    assert _geodesic_area(fx.polygons) == pytest.approx(fx.area_m2, rel=1e-4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), p=st.floats(0.05, 0.95))
def test_mask_polygons_area_matches_any_mask(seed: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((15, 18)) < p
    terrain = Terrain(np.zeros((15, 18)), 106.6, 29.6, 0.002)
    polys = mask_polygons(terrain, mask)
    expected = float(mask.sum(axis=1) @ cell_area_m2(terrain))
    assert polys.is_valid
    assert _geodesic_area(polys) == pytest.approx(expected, rel=1e-4)
    lon, lat = _cell_centres(terrain)
    assert np.array_equal(shapely.contains_xy(polys, lon, lat), mask)


def test_mask_polygons_large_grid() -> None:
    # A district-sized grid with blobs, holes and lone cells gives valid geometry of the right area.
    rng = np.random.default_rng(3)
    mask = (gaussian_filter(rng.standard_normal((300, 250)), sigma=4.0) > 0.0) ^ (rng.random((300, 250)) < 0.02)
    terrain = Terrain(np.zeros((300, 250)), 106.45, 29.55, 0.002)
    polys = mask_polygons(terrain, mask)
    assert polys.is_valid
    assert _geodesic_area(polys) == pytest.approx(float(mask.sum(axis=1) @ cell_area_m2(terrain)), rel=1e-4)


def test_cell_area_matches_the_ellipsoid() -> None:
    terrain = Terrain(np.zeros((3, 2)), 106.6, 29.6, 0.002)
    areas = cell_area_m2(terrain)
    for row, lat_top in enumerate((29.606, 29.604, 29.602)):
        cell = box(106.6, lat_top - 0.002, 106.602, lat_top)
        assert areas[row] == pytest.approx(_geodesic_area(cell), rel=1e-6)
    assert areas[0] < areas[2]  # cells shrink northwards


def test_water_mask_marks_cells_whose_centre_is_in_the_water() -> None:
    terrain = Terrain(np.zeros((10, 10)), 106.0, 29.0, 0.01)
    # Covers the centres of columns 2..4 (lon 106.025..106.045) in rows 0..1 (lat 29.095, 29.085).
    water = box(106.02, 29.08, 106.05, 29.10)
    m = water_mask(terrain, water)
    expected = np.zeros((10, 10), dtype=bool)
    expected[0:2, 2:5] = True
    assert np.array_equal(m, expected)
    assert not water_mask(terrain, MultiPolygon()).any()
