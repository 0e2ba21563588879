"""Forest fire science: FWI System against its published test table, latitude bands, danger
levels, corroboration of detections, FBP spread.

The FWI reference numbers are the test table of Wang, Anderson & Suddaby (2015), Information
Report NOR-X-424, in ``tests/data/fwi_wang2015.csv`` (its header says where it was copied
from). That table uses the standard 46°N day lengths, so it is run here at latitudes that
select the standard tables (46°N, and 44°N and 60°N which fall in the same cffdrs band).
The 29.7°N adjustment and the FBP spread numbers are checked against hand calculations
written out in the tests.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
import shapely
from shapely.geometry import Point

from command.risk.fire import (
    DC_DAY_LENGTH_FACTORS,
    DEFAULT_CORROBORATION,
    DEFAULT_DANGER_BREAKS,
    DMC_DAY_LENGTHS,
    FBP_FUELS,
    CorroborationRules,
    DangerBreaks,
    DangerLevel,
    Detection,
    FireInputError,
    NoonWeather,
    back_ros,
    bui,
    buildup_effect,
    corroborate,
    danger_level,
    dc,
    dc_day_length_factor,
    dmc,
    dmc_day_length,
    ffmc,
    fwi,
    fwi_series,
    head_ros,
    intersect_bearings,
    isi,
    length_to_breadth,
    spread_estimate,
    warning_level,
)
from command.risk.rules import Level

DATA = Path(__file__).resolve().parents[1] / "data" / "fwi_wang2015.csv"
COMPONENTS = ("ffmc", "dmc", "dc", "isi", "bui", "fwi")


def _table() -> list[dict[str, str]]:
    with DATA.open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


TABLE = _table()


def _weather(row: dict[str, str]) -> NoonWeather:
    return NoonWeather(int(row["month"]), float(row["temp"]), float(row["rh"]), float(row["wind"]),
                       float(row["rain"]))


# --- the published table -------------------------------------------------------------------


def test_table_is_complete() -> None:
    assert len(TABLE) == 49
    assert (TABLE[0]["month"], TABLE[0]["day"], TABLE[-1]["month"], TABLE[-1]["day"]) == ("4", "13", "5", "31")


@pytest.mark.parametrize("lat", [46.0, 44.0, 60.0])
def test_series_reproduces_wang_2015_table_to_printed_precision(lat: float) -> None:
    days = fwi_series([_weather(r) for r in TABLE], lat)
    assert len(days) == len(TABLE)
    misses = []
    for row, day in zip(TABLE, days, strict=True):
        for name in COMPONENTS:
            got, published = getattr(day, name), float(row[name])
            # printed to one decimal: the exact value must round to the printed one
            if abs(got - published) > 0.05 + 1e-9:
                misses.append(f"{row['month']}-{row['day']} {name}: {got:.3f} vs {published}")
    assert misses == []


def test_first_day_component_by_component() -> None:
    # 13 April from the standard start-up FFMC 85, DMC 6, DC 15 (first row of the table)
    f = ffmc(85.0, 17.0, 42.0, 25.0, 0.0)
    p = dmc(6.0, 17.0, 42.0, 0.0, 4, 46.0)
    d = dc(15.0, 17.0, 0.0, 4, 46.0)
    r = isi(f, 25.0)
    u = bui(p, d)
    assert [round(v, 1) for v in (f, p, d, r, u, fwi(r, u))] == [87.7, 8.5, 19.0, 10.9, 8.5, 10.1]
    # DMC and DC drying by hand, VW87 Eqs. 16-17 and 22-23 with April's Le 12.8 h, Lf 0.9
    assert p == pytest.approx(6.0 + 100 * 1.894 * (17.0 + 1.1) * (100 - 42.0) * 12.8e-6, abs=1e-12)
    assert d == pytest.approx(15.0 + 0.5 * (0.36 * (17.0 + 2.8) + 0.9), abs=1e-12)


def test_rain_days_of_the_table_individually() -> None:
    # each rain phase from the previous day's exact codes (not the printed ones)
    days = fwi_series([_weather(r) for r in TABLE], 46.0)
    for i, row in enumerate(TABLE[1:], start=1):
        w, prev = _weather(row), days[i - 1]
        assert ffmc(prev.ffmc, w.temp_c, w.rh_pct, w.wind_kmh, w.rain_mm) == pytest.approx(days[i].ffmc)
        assert dmc(prev.dmc, w.temp_c, w.rh_pct, w.rain_mm, w.month, 46.0) == pytest.approx(days[i].dmc)
        assert dc(prev.dc, w.temp_c, w.rain_mm, w.month, 46.0) == pytest.approx(days[i].dc)


def test_vectorised_over_stations_equals_scalar() -> None:
    rows = TABLE[:12]
    # three "stations": the table, and the table 2 °C warmer and 10 % drier
    temps = np.array([[float(r["temp"]) + k for k in (0, 2, 2)] for r in rows])
    rhs = np.array([[float(r["rh"]) - k for k in (0, 10, 10)] for r in rows])
    f, p, d = np.full(3, 85.0), np.full(3, 6.0), np.full(3, 15.0)
    for i, r in enumerate(rows):
        m, w, rain = int(r["month"]), float(r["wind"]), float(r["rain"])
        f_new = ffmc(f, temps[i], rhs[i], w, rain)
        p_new = dmc(p, temps[i], rhs[i], rain, m, np.array([46.0, 46.0, 29.7]))
        d_new = dc(d, temps[i], rain, m, 46.0)
        for k in range(3):
            assert f_new[k] == pytest.approx(ffmc(f[k], temps[i][k], rhs[i][k], w, rain))
            lat = 29.7 if k == 2 else 46.0
            assert p_new[k] == pytest.approx(dmc(p[k], temps[i][k], rhs[i][k], rain, m, lat))
            assert d_new[k] == pytest.approx(dc(d[k], temps[i][k], rain, m, 46.0))
        f, p, d = f_new, p_new, d_new
    assert isinstance(ffmc(85.0, 20.0, 40.0, 10.0, 0.0), float)
    assert isinstance(isi(np.array([85.0, 90.0]), 10.0), np.ndarray)


def test_series_accepts_mappings_with_csv_names() -> None:
    rows = [{"month": r["month"], "temp": r["temp"], "rh": r["rh"], "wind": r["wind"], "rain": r["rain"]}
            for r in TABLE[:3]]
    assert fwi_series(rows, 46.0) == fwi_series([_weather(r) for r in TABLE[:3]], 46.0)


def test_series_start_values_matter() -> None:
    wet = fwi_series([_weather(TABLE[0])], 46.0, ffmc0=60.0, dmc0=2.0, dc0=5.0)[0]
    std = fwi_series([_weather(TABLE[0])], 46.0)[0]
    assert wet.ffmc < std.ffmc and wet.dmc < std.dmc and wet.dc < std.dc
    assert wet.dmc == pytest.approx(std.dmc - 4.0) and wet.dc == pytest.approx(std.dc - 10.0)


def test_empty_series() -> None:
    assert fwi_series([], 29.7) == []


# --- latitude bands (cffdrs) ---------------------------------------------------------------


def test_day_length_tables_are_cffdrs() -> None:
    assert DMC_DAY_LENGTHS["46N"] == (6.5, 7.5, 9.0, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8.0, 7.0, 6.0)
    assert DMC_DAY_LENGTHS["20N"] == (7.9, 8.4, 8.9, 9.5, 9.9, 10.2, 10.1, 9.7, 9.1, 8.6, 8.1, 7.8)
    assert DMC_DAY_LENGTHS["20S"] == (10.1, 9.6, 9.1, 8.5, 8.1, 7.8, 7.9, 8.3, 8.9, 9.4, 9.9, 10.2)
    assert DMC_DAY_LENGTHS["40S"] == (11.5, 10.5, 9.2, 7.9, 6.8, 6.2, 6.5, 7.4, 8.7, 10.0, 11.2, 11.8)
    assert DC_DAY_LENGTH_FACTORS["north"] == (-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6)
    assert DC_DAY_LENGTH_FACTORS["south"] == (6.4, 5.0, 2.4, 0.4, -1.6, -1.6, -1.6, -1.6, -1.6, 0.9, 3.8, 5.8)


@pytest.mark.parametrize(("lat", "band"), [
    (90.0, "46N"), (46.0, "46N"), (30.01, "46N"),
    (30.0, "20N"), (29.7, "20N"), (10.01, "20N"),
    (10.0, "equator"), (0.0, "equator"), (-9.99, "equator"),
    (-10.0, "20S"), (-29.99, "20S"),
    (-30.0, "40S"), (-90.0, "40S"),
])
def test_dmc_band_edges(lat: float, band: str) -> None:
    assert [dmc_day_length(m, lat) for m in range(1, 13)] == list(DMC_DAY_LENGTHS[band])


@pytest.mark.parametrize(("lat", "band"), [
    (46.0, "north"), (29.7, "north"), (20.01, "north"),
    (20.0, "equator"), (0.0, "equator"), (-19.99, "equator"),
    (-20.0, "south"), (-45.0, "south"),
])
def test_dc_band_edges(lat: float, band: str) -> None:
    assert [dc_day_length_factor(m, lat) for m in range(1, 13)] == list(DC_DAY_LENGTH_FACTORS[band])


def test_yubei_dmc_uses_the_20n_day_length() -> None:
    # July at 29.7°N: Le = 10.1 h (20°N table) instead of 12.4 h (46°N): VW87 Eqs. 16-17 by hand
    p = dmc(20.0, 32.0, 55.0, 0.0, 7, 29.7)
    assert p == pytest.approx(20.0 + 100 * 1.894 * (32.0 + 1.1) * (100 - 55.0) * 10.1e-6, abs=1e-12)
    standard = dmc(20.0, 32.0, 55.0, 0.0, 7, 46.0)
    assert (p - 20.0) / (standard - 20.0) == pytest.approx(10.1 / 12.4)
    # December: the 20°N day is longer than the 46°N one, so the duff dries faster there
    assert dmc(20.0, 10.0, 60.0, 0.0, 12, 29.7) > dmc(20.0, 10.0, 60.0, 0.0, 12, 46.0)


def test_yubei_dc_uses_the_standard_factors() -> None:
    assert dc(100.0, 32.0, 0.0, 7, 29.7) == dc(100.0, 32.0, 0.0, 7, 46.0) == pytest.approx(
        100.0 + 0.5 * (0.36 * (32.0 + 2.8) + 6.4))


def test_yubei_series_differs_from_standard_only_through_the_dmc() -> None:
    rows = [NoonWeather(8, 38.0 - k % 3, 45.0 + k % 5, 8.0 + k % 4, 3.0 if k == 6 else 0.0) for k in range(20)]
    yubei, standard = fwi_series(rows, 29.7), fwi_series(rows, 46.0)
    assert [d.ffmc for d in yubei] == [d.ffmc for d in standard]
    assert [d.dc for d in yubei] == [d.dc for d in standard]
    assert [d.isi for d in yubei] == [d.isi for d in standard]
    assert all(y.dmc < s.dmc for y, s in zip(yubei, standard, strict=True))  # August: 9.7 h < 10.9 h


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ffmc(85, 20, 120, 10, 0), "rh_pct must be within 0..100 %, got 120"),
    (lambda: ffmc(85, 20, -1, 10, 0), "rh_pct must be within 0..100"),
    (lambda: ffmc(85, 20, 40, -5, 0), "wind_kmh must be at least 0 km/h, got -5"),
    (lambda: ffmc(85, 20, 40, 10, -0.1), "rain_mm must be at least 0 mm"),
    (lambda: ffmc(102, 20, 40, 10, 0), "prev_ffmc must be within 0..101"),
    (lambda: ffmc(85, float("nan"), 40, 10, 0), "temp_c must be a finite number, got nan"),
    (lambda: ffmc(85, float("inf"), 40, 10, 0), "temp_c must be a finite number"),
    (lambda: ffmc(85, "abc", 40, 10, 0), "temp_c must be a number, got 'abc'"),
    (lambda: ffmc(85, 20, np.array([40, 50, 101]), 10, 0), "got 101 at index 2"),
    (lambda: ffmc(85, np.array([20, 21]), np.array([40, 50, 60]), 10, 0), "different lengths"),
    (lambda: dmc(6, 20, 40, 0, 0, 46), "month must be within 1..12, got 0"),
    (lambda: dmc(6, 20, 40, 0, 13, 46), "month must be within 1..12, got 13"),
    (lambda: dmc(6, 20, 40, 0, 4.5, 46), "month must be a whole number"),
    (lambda: dmc(-1, 20, 40, 0, 4, 46), "prev_dmc must be at least 0"),
    (lambda: dc(15, 20, 0, 4, 91), "lat must be within -90..90"),
    (lambda: isi(85, -1), "wind_kmh must be at least 0"),
    (lambda: bui(-1, 10), "dmc must be at least 0"),
    (lambda: fwi(float("nan"), 10), "isi must be a finite number"),
    (lambda: NoonWeather(4, 20.0, 140.0, 10.0, 0.0), "rh_pct must be within 0..100"),
    (lambda: fwi_series([{"month": 4, "temp": 20}], 46.0), "row 0: row lacks rh, wind, rain"),
    (lambda: fwi_series([NoonWeather(4, 20, 40, 10, 0)], 46.0, ffmc0=120), "ffmc0 must be within 0..101"),
])
def test_bad_input_is_a_clear_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FireInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call()


def test_fire_input_error_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError) as info:
        ffmc(85, 20, 120, 10, 0)
    assert isinstance(info.value, FireInputError) and info.value.field == "rh_pct"


# --- properties ----------------------------------------------------------------------------

codes = st.floats(0, 101)
temps = st.floats(-30, 45)
rhs = st.floats(0, 100)
winds = st.floats(0, 80)
rains = st.floats(0, 100)
months = st.integers(1, 12)
lats = st.floats(-90, 90)


@settings(max_examples=200, deadline=None)
@given(codes, temps, rhs, winds, rains)
def test_ffmc_stays_in_range(f0: float, t: float, h: float, w: float, r: float) -> None:
    assert 0.0 <= ffmc(f0, t, h, w, r) <= 101.0


@settings(max_examples=200, deadline=None)
@given(codes, temps, rhs, winds, rains, rains)
def test_more_rain_never_raises_ffmc(f0: float, t: float, h: float, w: float, r1: float, r2: float) -> None:
    lo, hi = sorted((r1, r2))
    assert ffmc(f0, t, h, w, hi) <= ffmc(f0, t, h, w, lo) + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 400), temps, rhs, st.floats(0, 1.5), months, lats)
def test_dmc_never_falls_without_rain(p0: float, t: float, h: float, r: float, m: int, lat: float) -> None:
    assert dmc(p0, t, h, r, m, lat) >= p0


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 400), temps, rhs, rains, months, lats)
def test_dmc_not_negative_and_rain_only_lowers(p0: float, t: float, h: float, r: float, m: int, lat: float) -> None:
    wet, dry = dmc(p0, t, h, r, m, lat), dmc(p0, t, h, 0.0, m, lat)
    assert 0.0 <= wet <= dry + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1000), temps, rains, months, lats)
def test_dc_not_negative_and_rain_only_lowers(d0: float, t: float, r: float, m: int, lat: float) -> None:
    wet, dry = dc(d0, t, r, m, lat), dc(d0, t, 0.0, m, lat)
    assert 0.0 <= wet <= dry + 1e-9
    assert dry >= d0


@settings(max_examples=200, deadline=None)
@given(codes, winds, winds)
def test_isi_grows_with_wind(f: float, w1: float, w2: float) -> None:
    lo, hi = sorted((w1, w2))
    assert 0.0 <= isi(f, lo) <= isi(f, hi)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 100), st.floats(0, 100), st.floats(0, 300), st.floats(0, 300))
def test_fwi_grows_with_isi_and_bui(r1: float, r2: float, u1: float, u2: float) -> None:
    (ra, rb), (ua, ub) = sorted((r1, r2)), sorted((u1, u2))
    assert 0.0 <= fwi(ra, ua) <= fwi(rb, ua) + 1e-9
    assert fwi(ra, ua) <= fwi(ra, ub) + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 400), st.floats(0, 1000))
def test_bui_not_negative(p: float, d: float) -> None:
    assert bui(p, d) >= 0.0


def test_bui_of_zero_codes_is_zero() -> None:
    assert bui(0.0, 0.0) == 0.0 and fwi(0.0, 0.0) == 0.0


# --- danger levels -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "level"), [
    (0.0, DangerLevel.LOW), (5.19, DangerLevel.LOW),
    (5.2, DangerLevel.MODERATE), (11.19, DangerLevel.MODERATE),
    (11.2, DangerLevel.HIGH), (21.29, DangerLevel.HIGH),
    (21.3, DangerLevel.VERY_HIGH), (37.99, DangerLevel.VERY_HIGH),
    (38.0, DangerLevel.EXTREME), (120.0, DangerLevel.EXTREME),
])
def test_danger_level_boundaries(value: float, level: DangerLevel) -> None:
    assert danger_level(value) is level


def test_danger_level_names() -> None:
    assert [d.label for d in DangerLevel] == ["low", "moderate", "high", "very high", "extreme"]
    assert [d.label_zh for d in DangerLevel] == ["一级", "二级", "三级", "四级", "五级"]


def test_danger_breaks_from_mapping() -> None:
    b = DangerBreaks.from_mapping({"high_fwi": 15, "unknown": 3})
    assert b == DangerBreaks(high_fwi=15.0)
    assert danger_level(12.0, b) is DangerLevel.MODERATE and danger_level(12.0) is DangerLevel.HIGH
    assert DEFAULT_DANGER_BREAKS == DangerBreaks()


@pytest.mark.parametrize("overrides", [{"high_fwi": 4.0}, {"moderate_fwi": 0.0}, {"extreme_fwi": math.inf},
                                       {"very_high_fwi": 40.0}])
def test_danger_breaks_must_increase(overrides: dict[str, float]) -> None:
    with pytest.raises(FireInputError, match="increasing"):
        DangerBreaks.from_mapping(overrides)


@pytest.mark.parametrize("value", [-1.0, math.nan])
def test_danger_level_rejects_bad_fwi(value: float) -> None:
    with pytest.raises(FireInputError, match="fwi"):
        danger_level(value)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 200), st.floats(0, 200))
def test_danger_level_is_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert danger_level(lo) <= danger_level(hi)


def test_warning_levels() -> None:
    assert [warning_level(d) for d in DangerLevel] == [Level.NONE, Level.NONE, Level.YELLOW, Level.ORANGE,
                                                       Level.RED]


# --- corroboration -------------------------------------------------------------------------

GEOD = Geod(ellps="WGS84")
T0 = datetime(2022, 8, 21, 6, 0, tzinfo=UTC)
FIRE = (106.70, 29.75)  # a point on the ridge east of the airport (synthetic)


def _at(azimuth_deg: float, distance_m: float, origin: tuple[float, float] = FIRE) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth_deg, distance_m)
    return float(lon), float(lat)


def _bearing(frm: tuple[float, float], to: tuple[float, float]) -> float:
    return float(GEOD.inv(frm[0], frm[1], to[0], to[1])[0]) % 360.0


def _det(sensor_id: str, modality: str, where: tuple[float, float], minutes: float = 0.0,
         confidence: float = 0.8, bearing: float | None = None) -> Detection:
    return Detection(sensor_id, modality, T0 + timedelta(minutes=minutes), where[0], where[1],  # type: ignore[arg-type]
                     confidence, bearing)


def test_two_point_sensors_apart_confirm() -> None:
    a = _det("SM-01", "smoke", _at(0, 250))
    b = _det("SM-02", "smoke", _at(180, 250), minutes=4)
    c = corroborate([a, b])
    assert c.confirmed and c.detections == (a, b)
    assert c.reason == ("Confirmed: two independent detections 4.0 min apart: smoke detector SM-01 "
                        "(confidence 0.80) and smoke detector SM-02 (confidence 0.80), 500 m apart.")
    assert c.position_lonlat is not None
    assert GEOD.inv(*c.position_lonlat, *FIRE)[2] < 1.0  # the midpoint


def test_same_kind_side_by_side_is_not_independent() -> None:
    c = corroborate([_det("SM-01", "smoke", _at(0, 50)), _det("SM-02", "smoke", _at(180, 50), minutes=1)])
    assert c.status == "unverified"
    assert "no independent detection agrees within 15 min and 1000 m" in c.reason
    assert c.reason.endswith("Send a drone or a crew to check.")


def test_different_kinds_side_by_side_are_independent() -> None:
    c = corroborate([_det("SM-01", "smoke", _at(0, 50)), _det("FL-01", "flame", _at(180, 50), minutes=1)])
    assert c.confirmed


def test_same_sensor_twice_is_one_detection() -> None:
    c = corroborate([_det("SM-01", "smoke", FIRE), _det("SM-01", "smoke", FIRE, minutes=2)])
    assert c.status == "unverified" and len(c.detections) == 1


def test_too_far_apart_in_time_or_place() -> None:
    late = [_det("SM-01", "smoke", FIRE), _det("FL-01", "flame", _at(90, 100), minutes=16)]
    far = [_det("SM-01", "smoke", FIRE), _det("FL-01", "flame", _at(90, 1500), minutes=1)]
    assert corroborate(late).status == "unverified"
    assert corroborate(far).status == "unverified"
    wider = CorroborationRules.from_mapping({"window_s": 1200, "radius_m": 2000, "colour": "red"})
    assert corroborate(late, rules=wider).confirmed and corroborate(far, rules=wider).confirmed


def test_camera_bearing_through_a_point_sensor_confirms() -> None:
    cam_at = _at(230, 3000)
    smoke = _det("SM-07", "smoke", FIRE, minutes=2)
    on_line = _det("CAM-1", "camera", cam_at, bearing=_bearing(cam_at, FIRE))
    c = corroborate([on_line, smoke])
    assert c.confirmed and c.position_lonlat == (smoke.lon, smoke.lat)
    off_line = _det("CAM-1", "camera", cam_at, bearing=(_bearing(cam_at, FIRE) + 90.0) % 360.0)
    assert corroborate([off_line, smoke]).status == "unverified"
    behind = _det("CAM-1", "camera", cam_at, bearing=(_bearing(cam_at, FIRE) + 180.0) % 360.0)
    assert corroborate([behind, smoke]).status == "unverified"


def test_two_camera_bearings_locate_the_fire() -> None:
    cam_a, cam_b = _at(200, 4000), _at(300, 6000)
    a = _det("CAM-A", "camera", cam_a, bearing=_bearing(cam_a, FIRE))
    b = _det("CAM-B", "camera", cam_b, minutes=3, bearing=_bearing(cam_b, FIRE))
    c = corroborate([a, b])
    assert c.confirmed and c.reason.endswith("bearings cross.")
    assert c.position_lonlat is not None
    assert GEOD.inv(*c.position_lonlat, *FIRE)[2] < 10.0  # straight lines in UTM vs geodesics
    where = intersect_bearings(cam_a, a.bearing_deg, cam_b, b.bearing_deg)  # type: ignore[arg-type]
    assert where == c.position_lonlat


def test_bearings_that_do_not_cross_usefully() -> None:
    cam_a, cam_b = _at(200, 4000), _at(300, 6000)
    to_fire_a, to_fire_b = _bearing(cam_a, FIRE), _bearing(cam_b, FIRE)
    assert intersect_bearings(cam_a, to_fire_a, cam_b, (to_fire_b + 180) % 360) is None  # behind b
    assert intersect_bearings(cam_a, to_fire_a, cam_b, to_fire_b, max_range_m=5000) is None  # beyond range
    assert intersect_bearings(cam_a, 10.0, _at(90, 1000, cam_a), 10.0) is None  # parallel
    assert intersect_bearings(cam_a, 10.0, _at(90, 1000, cam_a), 15.0) is None  # crossing at 5°


def test_one_detection_with_high_danger_confirms() -> None:
    flame = _det("FL-3", "flame", FIRE, confidence=0.85)
    c = corroborate([flame], danger=DangerLevel.VERY_HIGH)
    assert c.confirmed and c.danger is DangerLevel.VERY_HIGH and c.detections == (flame,)
    assert c.reason == ("Confirmed: one detection, flame sensor FL-3 (confidence 0.85), while the forest-fire "
                        "danger is 四级 (very high), at or above 三级 (high).")
    assert corroborate([flame], danger=DangerLevel.HIGH).confirmed


@pytest.mark.parametrize("danger", [None, DangerLevel.LOW, DangerLevel.MODERATE])
def test_one_detection_alone_is_unverified(danger: DangerLevel | None) -> None:
    c = corroborate([_det("FL-3", "flame", FIRE)], danger=danger)
    assert c.status == "unverified" and not c.confirmed
    assert ("danger level unknown" if danger is None else "below 三级") in c.reason


def test_low_confidence_never_confirms() -> None:
    weak = [_det("SM-01", "smoke", FIRE, confidence=0.3), _det("FL-01", "flame", FIRE, confidence=0.4)]
    c = corroborate(weak, danger=DangerLevel.EXTREME)
    assert c.status == "unverified" and "confidence below 0.50" in c.reason


def test_most_confident_pair_is_reported() -> None:
    dets = [_det("SM-01", "smoke", FIRE, confidence=0.6), _det("FL-01", "flame", _at(0, 100), 1, 0.9),
            _det("SM-02", "smoke", _at(90, 400), 2, 0.95)]
    c = corroborate(dets)
    assert {d.sensor_id for d in c.detections} == {"FL-01", "SM-02"}


def test_camera_without_bearing_is_a_weak_witness() -> None:
    cam = _det("CAM-9", "camera", _at(45, 8000))
    smoke = _det("SM-01", "smoke", FIRE, minutes=1)
    assert corroborate([cam, smoke]).confirmed  # within camera_range_m
    alone = corroborate([cam], danger=DangerLevel.EXTREME)
    assert alone.confirmed and alone.position_lonlat is None  # a camera alone does not place the fire
    assert not corroborate([_det("CAM-9", "camera", _at(45, 12_000)), smoke]).confirmed


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time": datetime(2022, 8, 21, 6, 0)}, "timezone-aware"),
    ({"modality": "heat"}, "modality must be one of smoke, flame, camera"),
    ({"confidence": 1.5}, "confidence must be within 0..1"),
    ({"bearing_deg": 90.0}, "only a camera reports a bearing"),
    ({"lat": 95.0}, "detection lat must be within -90..90"),
    ({"sensor_id": ""}, "sensor_id must not be empty"),
])
def test_bad_detection(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"sensor_id": "SM-01", "modality": "smoke", "time": T0, "lon": FIRE[0],
                               "lat": FIRE[1], "confidence": 0.8}
    with pytest.raises(FireInputError, match=message):
        Detection(**{**base, **kwargs})  # type: ignore[arg-type]


def test_no_detections_is_an_error() -> None:
    with pytest.raises(FireInputError, match="no detections"):
        corroborate([])


def test_rules_validate() -> None:
    with pytest.raises(FireInputError, match="min_confidence"):
        CorroborationRules(min_confidence=2.0)
    assert DEFAULT_CORROBORATION.danger_confirms is DangerLevel.HIGH
    assert CorroborationRules.from_mapping({"danger_confirms": 4}).danger_confirms is DangerLevel.VERY_HIGH


# --- spread (FBP) --------------------------------------------------------------------------


def test_head_ros_by_hand() -> None:
    # C-2, ISI 10, BUI 64 (= its BUI0, so BE = 1): 110 (1 - e^-0.282)^1.5, by hand 13.3989 m/min
    assert head_ros(10.0, 64.0, FBP_FUELS["C-2"]) == pytest.approx(13.3989, abs=1e-4)
    assert head_ros(0.0, 64.0) == 0.0


def test_buildup_effect() -> None:
    c3 = FBP_FUELS["C-3"]
    assert buildup_effect(62.0, c3) == pytest.approx(1.0)
    assert buildup_effect(0.0, c3) == 1.0
    # below BUI0 spread is slowed, above it is sped up: FBP Eq. 54 by hand at BUI 31
    assert buildup_effect(31.0, c3) == pytest.approx(math.exp(50 * math.log(0.75) * (1 / 31 - 1 / 62)))
    assert buildup_effect(31.0, c3) < 1.0 < buildup_effect(120.0, c3)


def test_length_to_breadth_by_hand() -> None:
    assert length_to_breadth(0.0) == 1.0
    # 1 + 8.729 (1 - e^-0.6)^2.155 = 2.5708 at 20 km/h
    assert length_to_breadth(20.0) == pytest.approx(2.5708, abs=1e-4)
    assert length_to_breadth(200.0) < 1.0 + 8.729


def test_back_ros_without_wind_equals_head_ros() -> None:
    assert back_ros(8.0, 50.0, 0.0) == pytest.approx(head_ros(8.0, 50.0))
    assert back_ros(8.0, 50.0, 30.0) < head_ros(8.0, 50.0)


_TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)


def _utm(x: float, y: float) -> tuple[float, float]:
    return _TO_UTM.transform(x, y)


def _utm_geom(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_UTM.transform(xy[:, 0], xy[:, 1])))


def test_spread_runs_downwind_with_fbp_distances() -> None:
    ign = (106.65, 29.70)
    e = spread_estimate(ign, wind_kmh=20.0, wind_from_deg=270.0, isi=10.0, bui=64.0, elapsed_h=1.0,
                        fuel=FBP_FUELS["C-2"])
    assert e.fuel == "C-2" and e.downwind_deg == 90.0
    assert e.head_ros_m_per_min == pytest.approx(13.3989, abs=1e-4)
    # FBP Eq. 71 with alpha 0.115/min over 60 min
    grow = 60 + math.exp(-0.115 * 60) / 0.115 - 1 / 0.115
    assert e.head_distance_m == pytest.approx(e.head_ros_m_per_min * grow)
    assert e.back_distance_m == pytest.approx(e.back_ros_m_per_min * grow)
    assert e.length_m == pytest.approx(e.head_distance_m + e.back_distance_m)
    assert e.breadth_m == pytest.approx(e.length_m / e.length_to_breadth)
    assert e.flank_ros_m_per_min == pytest.approx((e.head_ros_m_per_min + e.back_ros_m_per_min)
                                                  / (2 * e.length_to_breadth))
    # geometry: the head is east of the ignition, the tail slightly west
    poly = _utm_geom(e.perimeter)
    x0, y0 = _utm(*ign)
    minx, miny, maxx, maxy = poly.bounds
    assert maxx - x0 == pytest.approx(e.head_distance_m, rel=0.01)
    assert x0 - minx == pytest.approx(e.back_distance_m, rel=0.05, abs=2.0)
    assert maxy - miny == pytest.approx(e.breadth_m, rel=0.01)
    assert poly.area / 10_000 == pytest.approx(e.area_ha, rel=0.01)
    assert e.perimeter.contains(Point(ign)) and e.perimeter.is_valid


def test_spread_from_the_north_runs_south() -> None:
    ign = (106.65, 29.70)
    e = spread_estimate(ign, wind_kmh=30.0, wind_from_deg=0.0, isi=12.0, bui=60.0, elapsed_h=2.0)
    assert e.downwind_deg == 180.0 and e.fuel == "C-3"
    minx, miny, maxx, maxy = e.perimeter.bounds
    assert ign[1] - miny > 5 * (maxy - ign[1])  # the head runs far south, the back barely north


def test_spread_without_wind_is_a_circle_round_the_ignition() -> None:
    ign = (106.65, 29.70)
    e = spread_estimate(ign, wind_kmh=0.0, wind_from_deg=0.0, isi=5.0, bui=60.0, elapsed_h=1.0)
    assert e.length_to_breadth == 1.0 and e.head_distance_m == pytest.approx(e.back_distance_m)
    poly = _utm_geom(e.perimeter)
    assert poly.centroid.distance(Point(_utm(*ign))) < 0.5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"elapsed_h": 0.0}, "elapsed_h must be positive"),
    ({"elapsed_h": -1.0}, "elapsed_h must be at least 0"),
    ({"wind_kmh": -3.0}, "wind_kmh must be at least 0"),
    ({"wind_from_deg": 400.0}, "wind_from_deg must be within 0..360"),
    ({"isi": math.nan}, "isi must be a finite number"),
    ({"vertices": 4}, "vertices must be at least 8"),
])
def test_spread_rejects_bad_input(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"wind_kmh": 10.0, "wind_from_deg": 90.0, "isi": 5.0, "bui": 40.0, "elapsed_h": 1.0}
    with pytest.raises(FireInputError, match=message):
        spread_estimate((106.65, 29.70), **{**args, **kwargs})  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 60), st.floats(0, 359.9), st.floats(0.5, 40), st.floats(0, 150), st.floats(0.1, 6))
def test_spread_perimeter_holds_the_ignition(w: float, frm: float, r: float, u: float, h: float) -> None:
    ign = (106.65, 29.70)
    e = spread_estimate(ign, wind_kmh=w, wind_from_deg=frm, isi=r, bui=u, elapsed_h=h, vertices=36)
    assert e.perimeter.is_valid
    # the ignition is inside, or (strong wind: almost no backing spread) on the tail
    assert _utm_geom(e.perimeter).distance(Point(_utm(*ign))) < 0.01
    assert e.head_distance_m >= e.back_distance_m >= 0.0
    assert e.area_ha == pytest.approx(math.pi * e.length_m * e.breadth_m / 4 / 10_000)


def test_a_fire_that_barely_moves_still_has_a_polygon() -> None:
    # BUI 0.5: FBP's buildup effect all but stops spread (BE ~ e^-28 for C-3)
    e = spread_estimate((106.65, 29.70), wind_kmh=0.0, wind_from_deg=0.0, isi=1.0, bui=0.5, elapsed_h=1.0)
    assert e.head_ros_m_per_min < 1e-10 and e.length_m < 1e-6
    assert e.perimeter.is_valid and e.perimeter.contains(Point(106.65, 29.70))
    assert _utm_geom(e.perimeter).length == pytest.approx(math.pi * 1.0, rel=0.01)  # drawn 1 m across
