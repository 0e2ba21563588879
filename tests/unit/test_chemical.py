"""Hazardous chemicals: alarm levels, unit conversion, Pasquill classes, Gaussian plume, footprints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer

from command.risk.chemical import (
    DEFAULT_GAS_THRESHOLDS,
    SUBSTANCES,
    ChemicalError,
    Facilities,
    GasThresholds,
    InvalidValueError,
    PlumeSettings,
    PopulationPoints,
    UnknownSubstanceError,
    assess_gas,
    briggs_rural_sigmas_m,
    estimate_plume,
    evacuation_zones,
    gas_level,
    gaussian_plume_mg_m3,
    ground_concentration_mg_m3_at,
    mg_m3_to_ppm,
    molar_volume_l_per_mol,
    pasquill_categories,
    pasquill_stability,
    ppm_to_mg_m3,
    substance,
)
from command.risk.rules import Level

SRC_LON, SRC_LAT = 106.60, 29.70  # a site in Yubei, UTM zone 48N
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
GEOD = Geod(ellps="WGS84")
CLASSES = "ABCDEF"


def utm(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_UTM.transform(c[:, 0], c[:, 1])))


def plume(**kw: object):
    args = dict(source_lon=SRC_LON, source_lat=SRC_LAT, emission_g_per_s=500.0, wind_from_deg=0.0,
                wind_speed_mps=2.0, stability="D", threshold_ppm=300.0)
    args.update(kw)
    key = args.pop("key", "NH3")
    return estimate_plume(key, **args)  # type: ignore[arg-type]


# --- unit conversion ------------------------------------------------------------------------


def test_molar_volume_at_reference_conditions() -> None:
    # V = RT/p with R = 8.314462618 J/(mol K): 24.055 L/mol at 20 °C, 24.465 at 25 °C
    assert molar_volume_l_per_mol() == pytest.approx(24.0551, abs=1e-4)
    assert molar_volume_l_per_mol(25.0) == pytest.approx(24.4654, abs=1e-4)


def test_molar_masses_from_standard_atomic_weights() -> None:
    assert SUBSTANCES["NH3"].molar_mass_g_per_mol == pytest.approx(17.031, abs=1e-3)
    assert SUBSTANCES["H2S"].molar_mass_g_per_mol == pytest.approx(34.076, abs=1e-3)
    assert SUBSTANCES["Cl2"].molar_mass_g_per_mol == pytest.approx(70.90, abs=1e-3)
    assert SUBSTANCES["VOC"].molar_mass_g_per_mol == pytest.approx(56.108, abs=1e-3)  # isobutylene


@pytest.mark.parametrize(("key", "ppm", "mg_m3_printed", "ndigits"), [
    # 25 °C equivalents as printed in NIOSH's IDLH documentation (1994):
    ("Cl2", 0.5, 1.45, 2),  # NIOSH REL 0.5 ppm (1.45 mg/m3)
    ("H2S", 10.0, 14.0, 0),  # ACGIH TLV 10 ppm (14 mg/m3)
    ("NH3", 25.0, 17.0, 0),  # ACGIH TLV 25 ppm (17 mg/m3)
    ("NH3", 35.0, 24.0, 0),  # ACGIH STEL 35 ppm (24 mg/m3)
])
def test_ppm_to_mg_m3_matches_published_equivalents(key: str, ppm: float, mg_m3_printed: float,
                                                    ndigits: int) -> None:
    m = SUBSTANCES[key].molar_mass_g_per_mol
    assert round(ppm_to_mg_m3(ppm, m, temp_c=25.0), ndigits) == mg_m3_printed


def test_mg_m3_to_ppm_at_20c() -> None:
    # GBZ 2.1 limits are mg/m³; at 20 °C, H2S MAC 10 mg/m³ = 10 × 24.055 / 34.076 ppm
    assert mg_m3_to_ppm(10.0, SUBSTANCES["H2S"].molar_mass_g_per_mol) == pytest.approx(7.0593, abs=1e-3)
    assert mg_m3_to_ppm(1.0, SUBSTANCES["Cl2"].molar_mass_g_per_mol) == pytest.approx(0.33928, abs=1e-4)
    arr = mg_m3_to_ppm(np.array([0.0, 20.0]), SUBSTANCES["NH3"].molar_mass_g_per_mol)
    assert isinstance(arr, np.ndarray) and arr[1] == pytest.approx(28.249, abs=1e-3)


@given(st.floats(0, 1e6), st.sampled_from(sorted(SUBSTANCES)), st.floats(-30, 45))
def test_ppm_mg_m3_round_trip(ppm: float, key: str, temp_c: float) -> None:
    m = SUBSTANCES[key].molar_mass_g_per_mol
    back = mg_m3_to_ppm(ppm_to_mg_m3(ppm, m, temp_c=temp_c), m, temp_c=temp_c)
    assert back == pytest.approx(ppm, rel=1e-12, abs=1e-12)


def test_conversion_rejects_impossible_conditions() -> None:
    with pytest.raises(InvalidValueError, match="temp_c"):
        molar_volume_l_per_mol(-300.0)
    with pytest.raises(InvalidValueError, match="pressure_kpa"):
        ppm_to_mg_m3(1.0, 17.0, pressure_kpa=0.0)
    with pytest.raises(InvalidValueError, match="molar_mass"):
        ppm_to_mg_m3(1.0, -17.0)


# --- alarm levels -----------------------------------------------------------------------------


def test_default_levels_follow_the_cited_limits() -> None:
    nh3, h2s, cl2, voc = (DEFAULT_GAS_THRESHOLDS[k] for k in ("NH3", "H2S", "Cl2", "VOC"))
    m = {k: SUBSTANCES[k].molar_mass_g_per_mol for k in SUBSTANCES}
    # blue/yellow: GB/T 50493-2019 100 % / 200 % OEL; OEL from GBZ 2.1-2019 (MAC, else PC-TWA)
    assert ppm_to_mg_m3(nh3.blue_ppm, m["NH3"]) == pytest.approx(20.0)  # PC-TWA 20 mg/m³
    assert ppm_to_mg_m3(nh3.yellow_ppm, m["NH3"]) == pytest.approx(40.0)
    assert ppm_to_mg_m3(h2s.blue_ppm, m["H2S"]) == pytest.approx(10.0)  # MAC 10 mg/m³
    assert ppm_to_mg_m3(cl2.yellow_ppm, m["Cl2"]) == pytest.approx(2.0)  # 2 × MAC 1 mg/m³
    assert nh3.blue_ppm == pytest.approx(28.25, abs=0.01) and cl2.blue_ppm == pytest.approx(0.339, abs=1e-3)
    # warm zone: short-term OEL, PC-STEL where set (NH3 30 mg/m³), otherwise MAC
    assert ppm_to_mg_m3(nh3.warm_zone_ppm, m["NH3"]) == pytest.approx(30.0)
    assert h2s.warm_zone_ppm == h2s.blue_ppm and cl2.warm_zone_ppm == cl2.blue_ppm
    # orange: AEGL-2 60 min; red: NIOSH IDLH (1994)
    assert (nh3.orange_ppm, h2s.orange_ppm, cl2.orange_ppm) == (160.0, 27.0, 2.0)
    assert (nh3.red_ppm, h2s.red_ppm, cl2.red_ppm) == (300.0, 100.0, 10.0)
    assert nh3.hot_zone_ppm == 300.0
    # VOC (isobutylene-equivalent): PID 50/100 ppm; 25 % / 50 % of the 1.8 % LEL
    assert (voc.blue_ppm, voc.yellow_ppm, voc.orange_ppm, voc.red_ppm) == (50.0, 100.0, 4500.0, 9000.0)
    for th in DEFAULT_GAS_THRESHOLDS.values():
        assert th.blue_ppm < th.yellow_ppm < th.orange_ppm < th.red_ppm


@pytest.mark.parametrize("key", sorted(SUBSTANCES))
def test_level_boundaries(key: str) -> None:
    th = DEFAULT_GAS_THRESHOLDS[key]
    below = np.nextafter
    assert gas_level(key, 0.0) is Level.NONE
    assert gas_level(key, below(th.blue_ppm, 0)) is Level.NONE
    assert gas_level(key, th.blue_ppm) is Level.BLUE  # reaching a level counts
    assert gas_level(key, below(th.yellow_ppm, 0)) is Level.BLUE
    assert gas_level(key, th.yellow_ppm) is Level.YELLOW
    assert gas_level(key, below(th.orange_ppm, 0)) is Level.YELLOW
    assert gas_level(key, th.orange_ppm) is Level.ORANGE
    assert gas_level(key, below(th.red_ppm, 0)) is Level.ORANGE
    assert gas_level(key, th.red_ppm) is Level.RED
    assert gas_level(key, 1e6) is Level.RED


def test_level_examples() -> None:
    assert gas_level("NH3", 40.0) is Level.BLUE
    assert gas_level("H2S", 20.0) is Level.YELLOW
    assert gas_level("Cl2", 5.0) is Level.ORANGE
    assert gas_level("cl2", 12.0) is Level.RED  # keys are case-insensitive
    assert gas_level("VOC", 120.0) is Level.YELLOW


def test_assessment_reason() -> None:
    a = assess_gas("plant-3-nh3", "NH3", 60.0)
    assert a.kind == "chemical" and a.level is Level.YELLOW and a.substance == "NH3"
    assert a.threshold == pytest.approx(56.497, abs=1e-3) and a.unit == "ppm"
    assert a.reason == "NH3 60.0 ppm: at or above the yellow level 56.5 ppm (second-level alarm, 200 % OEL)"
    assert a.reason_zh == "氨 60.0 ppm，达到黄色等级 56.5 ppm（二级报警，200% OEL）"
    quiet = assess_gas("s", "Cl2", 0.1)
    assert quiet.level is Level.NONE and quiet.threshold is None
    assert quiet.reason == "Cl2 0.100 ppm: below the blue level 0.339 ppm (first-level alarm, 100 % OEL)"
    assert "IDLH" in assess_gas("s", "H2S", 150.0).reason
    assert "50 % LEL" in assess_gas("s", "VOC", 9500.0).reason


def test_site_overrides() -> None:
    th = GasThresholds.from_mapping("h2s", {"blue_ppm": 5.0, "sensor_model": "x"})  # unknown key ignored
    assert th.blue_ppm == 5.0 and th.yellow_ppm == DEFAULT_GAS_THRESHOLDS["H2S"].yellow_ppm
    assert gas_level("H2S", 6.0, th) is Level.BLUE and gas_level("H2S", 6.0) is Level.NONE
    assert "site setting" in assess_gas("s", "H2S", 6.0, th).reason
    assert GasThresholds.from_mapping("NH3") == DEFAULT_GAS_THRESHOLDS["NH3"]


def test_bad_thresholds_rejected() -> None:
    with pytest.raises(InvalidValueError, match="out of order"):
        GasThresholds.from_mapping("NH3", {"yellow_ppm": 400.0})
    with pytest.raises(InvalidValueError, match="blue_ppm"):
        GasThresholds.from_mapping("NH3", {"blue_ppm": -1.0})
    with pytest.raises(InvalidValueError, match="warm_zone_ppm"):
        GasThresholds.from_mapping("NH3", {"warm_zone_ppm": math.nan})


def test_bad_readings_rejected() -> None:
    with pytest.raises(UnknownSubstanceError, match="unknown substance 'SO2'.*NH3, H2S, Cl2, VOC"):
        gas_level("SO2", 1.0)
    with pytest.raises(InvalidValueError, match="must not be negative, got -0.5 ppm"):
        gas_level("NH3", -0.5)
    with pytest.raises(InvalidValueError, match="NaN"):
        assess_gas("s", "NH3", math.nan)
    with pytest.raises(InvalidValueError, match="infinite"):
        gas_level("NH3", math.inf)
    assert issubclass(UnknownSubstanceError, ChemicalError) and issubclass(ChemicalError, ValueError)
    assert substance(" h2s ").key == "H2S"


# --- Pasquill stability -------------------------------------------------------------------------


@pytest.mark.parametrize(("u", "insolation", "expected"), [
    (1.0, "strong", "A"), (1.0, "moderate", "AB"), (1.0, "slight", "B"),
    (2.5, "strong", "AB"), (2.5, "moderate", "B"), (2.5, "slight", "C"),
    (4.0, "strong", "B"), (4.0, "moderate", "BC"), (4.0, "slight", "C"),
    (5.5, "strong", "C"), (5.5, "moderate", "CD"), (5.5, "slight", "D"),
    (7.0, "strong", "C"), (7.0, "moderate", "D"), (7.0, "slight", "D"),
    # band edges: "2–3" starts at 2, "3–5" at 3, "5–6" at 5 and includes 6, "> 6" is strict
    (2.0, "slight", "C"), (3.0, "slight", "C"), (3.0, "strong", "B"), (5.0, "strong", "C"),
    (6.0, "moderate", "CD"), (6.01, "moderate", "D"), (1.99, "strong", "A"),
])
def test_pasquill_day(u: float, insolation: str, expected: str) -> None:
    cats = pasquill_categories(u, daytime=True, insolation=insolation)  # type: ignore[arg-type]
    assert "".join(cats) == expected


@pytest.mark.parametrize(("u", "oktas", "expected"), [
    (2.5, 4, "E"), (2.5, 7, "E"), (2.5, 3, "F"), (2.5, 0, "F"),
    (4.0, 5, "D"), (4.0, 2, "E"),
    (5.5, 5, "D"), (5.5, 1, "D"), (7.0, 0, "D"),
    (1.0, 6, "E"), (1.0, 1, "F"),  # Turner leaves < 2 m/s blank: filled with the 2–3 m/s row
    (1.0, 8, "D"), (9.0, 8, "D"),  # overcast: neutral
])
def test_pasquill_night(u: float, oktas: int, expected: str) -> None:
    assert "".join(pasquill_categories(u, daytime=False, cloud_oktas=oktas)) == expected


def test_pasquill_overcast_day_is_neutral_and_intermediate_resolution() -> None:
    assert pasquill_stability(1.0, daytime=True, insolation="strong", cloud_oktas=8) == "D"
    assert pasquill_stability(1.0, daytime=True, insolation="moderate") == "B"  # A–B → more stable
    assert pasquill_stability(1.0, daytime=True, insolation="moderate", intermediate="unstable") == "A"
    assert pasquill_stability(5.5, daytime=True, insolation="moderate") == "D"
    assert pasquill_stability(1.5, daytime=False, cloud_oktas=2) == "F"


def test_pasquill_bad_input() -> None:
    with pytest.raises(InvalidValueError, match="insolation"):
        pasquill_stability(3.0, daytime=True)
    with pytest.raises(InvalidValueError, match="cloud_oktas"):
        pasquill_stability(3.0, daytime=False)
    with pytest.raises(InvalidValueError, match="0..8"):
        pasquill_stability(3.0, daytime=False, cloud_oktas=9)
    with pytest.raises(InvalidValueError, match="wind_10m_mps"):
        pasquill_stability(-1.0, daytime=False, cloud_oktas=2)
    with pytest.raises(InvalidValueError, match="wind_10m_mps"):
        pasquill_stability(math.nan, daytime=False, cloud_oktas=2)
    with pytest.raises(InvalidValueError, match="intermediate"):
        pasquill_stability(1.0, daytime=True, insolation="strong",
                           intermediate="middle")  # type: ignore[arg-type]


# --- dispersion coefficients --------------------------------------------------------------------

# σy, σz at x = 1 km, hand-computed from the Briggs (1973) open-country formulas as printed in
# Boubel et al. (1994) Table 19-7: σy = a x / √1.1; σz per class (no printed values at 1 km
# were found to compare with, so these are the formula's own numbers, rounded to 0.01 m).
SIGMAS_1KM = {
    "A": (209.76, 200.00),  # 220/√1.1, 0.20·1000
    "B": (152.55, 120.00),  # 160/√1.1, 0.12·1000
    "C": (104.88, 73.03),  # 110/√1.1, 80/√1.2
    "D": (76.28, 37.95),  # 80/√1.1, 60/√2.5
    "E": (57.21, 23.08),  # 60/√1.1, 30/1.3
    "F": (38.14, 12.31),  # 40/√1.1, 16/1.3
}


@pytest.mark.parametrize("cls", CLASSES)
def test_briggs_sigmas_at_1km(cls: str) -> None:
    sy, sz = briggs_rural_sigmas_m(1000.0, cls)
    assert float(sy) == pytest.approx(SIGMAS_1KM[cls][0], abs=0.006)
    assert float(sz) == pytest.approx(SIGMAS_1KM[cls][1], abs=0.006)


def test_briggs_sigmas_shape() -> None:
    x = np.array([1.0, 1000.0, 5000.0])
    for earlier, later in zip(CLASSES, CLASSES[1:]):  # more stable → narrower, at every distance
        sy1, sz1 = briggs_rural_sigmas_m(x, earlier)
        sy2, sz2 = briggs_rural_sigmas_m(x, later)
        assert np.all(sy1 > sy2) and np.all(sz1 > sz2)
    sy, sz = briggs_rural_sigmas_m(1.0, "D")  # near the source σ ≈ a·x
    assert float(sy) == pytest.approx(0.08, rel=1e-4) and float(sz) == pytest.approx(0.06, rel=2e-3)
    sy, sz = briggs_rural_sigmas_m(np.array([0.0, -5.0]), "A")
    assert np.all(np.isnan(sy)) and np.all(np.isnan(sz))
    with pytest.raises(InvalidValueError, match="A–F"):
        briggs_rural_sigmas_m(100.0, "G")


# --- Gaussian plume -----------------------------------------------------------------------------


def test_plume_known_value() -> None:
    # Q = 100 g/s, u = 5 m/s, class D, x = 1 km on the ground axis, ground release:
    # C = Q / (π u σy σz) = 100 / (π · 5 · 76.277 · 37.947) g/m³ = 2.1994 mg/m³
    c = gaussian_plume_mg_m3(100.0, 5.0, 1000.0, 0.0, 0.0, stability="D")
    assert float(c) == pytest.approx(2.1994, abs=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 20_000.0), st.floats(0.0, 2_000.0), st.floats(0.0, 100.0), st.floats(0.0, 100.0),
       st.sampled_from(CLASSES))
def test_plume_symmetric_about_axis(x: float, y: float, z: float, h: float, cls: str) -> None:
    left = gaussian_plume_mg_m3(50.0, 3.0, x, y, z, stability=cls, release_height_m=h)
    right = gaussian_plume_mg_m3(50.0, 3.0, x, -y, z, stability=cls, release_height_m=h)
    axis = gaussian_plume_mg_m3(50.0, 3.0, x, 0.0, z, stability=cls, release_height_m=h)
    assert float(left) == float(right)
    assert float(axis) >= float(left)


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 20_000.0), st.floats(-500.0, 500.0), st.floats(0.0, 200.0), st.sampled_from(CLASSES))
def test_reflection_doubles_a_ground_release(x: float, y: float, z: float, cls: str) -> None:
    with_ground = gaussian_plume_mg_m3(10.0, 2.0, x, y, z, stability=cls, release_height_m=0.0)
    free = gaussian_plume_mg_m3(10.0, 2.0, x, y, z, stability=cls, release_height_m=0.0, reflection=False)
    assert float(with_ground) == pytest.approx(2.0 * float(free), rel=1e-12, abs=1e-300)


def test_reflection_adds_the_image_source_for_an_elevated_release() -> None:
    # Above ground the image term is smaller than the real one: less than double
    full = gaussian_plume_mg_m3(10.0, 2.0, 500.0, 0.0, 10.0, stability="C", release_height_m=30.0)
    free = gaussian_plume_mg_m3(10.0, 2.0, 500.0, 0.0, 10.0, stability="C", release_height_m=30.0,
                                reflection=False)
    assert float(free) < float(full) < 2.0 * float(free)


@pytest.mark.parametrize("cls", CLASSES)
def test_ground_release_decreases_downwind(cls: str) -> None:
    x = np.geomspace(1.0, 20_000.0, 500)
    c = gaussian_plume_mg_m3(100.0, 3.0, x, 0.0, 0.0, stability=cls)
    assert np.all(np.diff(c) < 0)


@pytest.mark.parametrize("cls", CLASSES)
def test_elevated_release_rises_to_a_maximum_then_decreases(cls: str) -> None:
    x = np.geomspace(10.0, 50_000.0, 2000)
    c = gaussian_plume_mg_m3(100.0, 3.0, x, 0.0, 0.0, stability=cls, release_height_m=50.0)
    k = int(np.argmax(c))
    assert 0 < k < len(x) - 1  # the maximum is downwind of the source, not at it
    rising = c[: k + 1][c[: k + 1] > 0]  # close to the source the ground value underflows to 0
    assert len(rising) > 100 and np.all(np.diff(rising) > 0) and np.all(np.diff(c[: k + 1]) >= 0)
    assert np.all(np.diff(c[k:]) < 0)


@pytest.mark.parametrize("cls", ["A", "D", "F"])
def test_plume_carries_the_emission(cls: str) -> None:
    # With total reflection, ∫∫ C dy dz over the half-space z ≥ 0 equals Q/u at every x
    q, u, x = 20.0, 4.0, 800.0
    sy, sz = (float(s) for s in briggs_rural_sigmas_m(x, cls))
    y = np.linspace(-8 * sy, 8 * sy, 801)
    z = np.linspace(0.0, 8 * sz + 60.0, 801)
    yy, zz = np.meshgrid(y, z)
    c = gaussian_plume_mg_m3(q, u, x, yy, zz, stability=cls, release_height_m=15.0) / 1000.0  # g/m³
    flux = np.trapezoid(np.trapezoid(c, y, axis=1), z)
    assert flux == pytest.approx(q / u, rel=2e-3)


def test_plume_upwind_is_zero_and_bad_input() -> None:
    c = gaussian_plume_mg_m3(10.0, 2.0, np.array([-10.0, 0.0]), 0.0, 0.0, stability="D")
    assert np.all(c == 0.0)
    with pytest.raises(InvalidValueError, match="wind_speed_mps"):
        gaussian_plume_mg_m3(10.0, 0.0, 100.0, 0.0, stability="D")
    with pytest.raises(InvalidValueError, match="emission_g_per_s"):
        gaussian_plume_mg_m3(-1.0, 2.0, 100.0, 0.0, stability="D")
    with pytest.raises(InvalidValueError, match="z_m"):
        gaussian_plume_mg_m3(1.0, 2.0, 100.0, 0.0, -1.0, stability="D")
    with pytest.raises(InvalidValueError, match="release_height_m"):
        gaussian_plume_mg_m3(1.0, 2.0, 100.0, 0.0, stability="D", release_height_m=-2.0)


# --- footprints ---------------------------------------------------------------------------------


def test_wind_from_north_sends_the_plume_south() -> None:
    est = plume(wind_from_deg=0.0)
    minx, miny, maxx, maxy = est.footprint.bounds
    assert maxy <= SRC_LAT + 1e-9 and miny < SRC_LAT - 0.002  # all of it south, 0.2 km or more
    c = est.footprint.centroid
    assert abs(c.x - SRC_LON) < 1e-5  # on the meridian through the source
    assert est.downwind_length_m > 300 and est.footprint.geom_type == "Polygon"


@pytest.mark.parametrize("wind_from", [0.0, 45.0, 90.0, 180.0, 250.0, 359.0])
def test_footprint_lies_downwind(wind_from: float) -> None:
    est = plume(wind_from_deg=wind_from)
    c = est.footprint.centroid
    az, _, dist = GEOD.inv(SRC_LON, SRC_LAT, c.x, c.y)
    toward = (wind_from + 180.0) % 360.0
    assert abs((az - toward + 180.0) % 360.0 - 180.0) < 0.2  # true bearing, not grid bearing
    assert dist > 0.2 * est.downwind_length_m


def test_footprint_edges_are_where_the_threshold_is() -> None:
    est = plume(stability="D", emission_g_per_s=500.0, wind_speed_mps=3.0, threshold_ppm=300.0)
    m = SUBSTANCES["NH3"].molar_mass_g_per_mol
    t_mg = ppm_to_mg_m3(300.0, m)
    at_end = gaussian_plume_mg_m3(500.0, 3.0, est.downwind_length_m, 0.0, stability="D")
    assert float(at_end) == pytest.approx(t_mg, rel=1e-6)
    x = np.linspace(1.0, est.downwind_length_m, 2_001)[:, None]  # the width peaks smoothly: 2,001 stations find it
    y = np.linspace(0.0, est.max_width_m, 2_001)[None, :]
    c = gaussian_plume_mg_m3(500.0, 3.0, x, y, stability="D")
    brute_width = 2.0 * np.max(np.where(c >= t_mg, y, 0.0))
    assert est.max_width_m == pytest.approx(brute_width, abs=0.2)
    # the footprint's own extent in UTM agrees with the reported numbers
    fp = utm(est.footprint)
    assert fp.area == pytest.approx(est.area_m2, rel=1e-3)


def test_footprint_matches_a_raster_of_concentrations() -> None:
    args = dict(source_lon=SRC_LON, source_lat=SRC_LAT, emission_g_per_s=800.0, wind_from_deg=120.0,
                wind_speed_mps=2.5, stability="E")
    est = estimate_plume("NH3", threshold_ppm=160.0, **args)  # type: ignore[arg-type]
    fp = utm(est.footprint)
    e0, n0 = TO_UTM.transform(SRC_LON, SRC_LAT)
    r = est.downwind_length_m * 1.2
    ee, nn = np.meshgrid(np.linspace(e0 - r, e0 + r, 241), np.linspace(n0 - r, n0 + r, 241))
    lon, lat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True).transform(ee, nn)
    c = ground_concentration_mg_m3_at(lon, lat, key="NH3", **args)  # type: ignore[arg-type]
    t = ppm_to_mg_m3(160.0, SUBSTANCES["NH3"].molar_mass_g_per_mol)
    inside = shapely.contains_xy(fp, ee, nn)
    with np.errstate(divide="ignore"):
        clear = np.abs(np.log(c / t)) > 0.02  # cells not within 2 % of the threshold
    assert np.count_nonzero(inside) > 50
    assert np.array_equal(inside[clear], (c >= t)[clear])


def test_elevated_release_footprint_starts_downwind() -> None:
    est = plume(key="Cl2", emission_g_per_s=100.0, wind_from_deg=90.0, wind_speed_mps=3.0,
                stability="F", threshold_ppm=0.5, release_height_m=30.0)
    fp = utm(est.footprint)
    src = shapely.Point(TO_UTM.transform(SRC_LON, SRC_LAT))
    assert not fp.is_empty and fp.distance(src) > 500.0  # the plume touches down ~1 km away
    assert est.footprint.bounds[2] < SRC_LON  # wind from the east: all of it to the west
    assert "denser than air" in est.why


@settings(max_examples=25, deadline=None)
@given(q=st.floats(1.0, 2_000.0), factor=st.floats(1.05, 20.0), cls=st.sampled_from(CLASSES),
       u=st.floats(1.0, 10.0), h=st.sampled_from([0.0, 10.0, 40.0]), wind_from=st.floats(0.0, 359.9))
def test_higher_rate_means_bigger_footprint(q: float, factor: float, cls: str, u: float, h: float,
                                            wind_from: float) -> None:
    small = plume(emission_g_per_s=q, stability=cls, wind_speed_mps=u, release_height_m=h,
                  wind_from_deg=wind_from, threshold_ppm=50.0)
    big = plume(emission_g_per_s=q * factor, stability=cls, wind_speed_mps=u, release_height_m=h,
                wind_from_deg=wind_from, threshold_ppm=50.0)
    assert big.area_m2 >= small.area_m2
    assert big.downwind_length_m >= small.downwind_length_m
    assert big.max_width_m >= small.max_width_m - 1e-6
    if not small.footprint.is_empty:
        assert big.area_m2 > small.area_m2 or big.truncated
        assert utm(big.footprint).buffer(1.0).contains(utm(small.footprint))


def test_calm_gives_the_configured_circle() -> None:
    cfg = PlumeSettings(calm_radius_m=800.0)
    est = plume(wind_speed_mps=0.3, wind_from_deg=math.nan, settings=cfg)  # direction undefined in calm
    assert est.calm and math.isnan(est.model_wind_speed_mps)
    assert utm(est.footprint).area == pytest.approx(math.pi * 800.0**2, rel=5e-3)
    assert est.downwind_length_m == 800.0 and est.max_width_m == 1600.0
    src = shapely.Point(TO_UTM.transform(SRC_LON, SRC_LAT))
    assert utm(est.footprint).centroid.distance(src) < 1.0
    assert "calm" in est.why and "invalid" in est.why and "静风" in est.why_zh
    c = ground_concentration_mg_m3_at([SRC_LON], [SRC_LAT - 0.01], key="NH3", source_lon=SRC_LON,
                                      source_lat=SRC_LAT, emission_g_per_s=10.0, wind_from_deg=0.0,
                                      wind_speed_mps=0.2, stability="F")
    assert np.all(np.isnan(c))  # the model says nothing in calm


def test_low_wind_is_reset_to_the_minimum() -> None:
    slow = plume(wind_speed_mps=0.7)
    one = plume(wind_speed_mps=1.0)
    assert not slow.calm and slow.model_wind_speed_mps == 1.0 and slow.wind_speed_mps == 0.7
    assert slow.downwind_length_m == pytest.approx(one.downwind_length_m)
    assert "minimum" in slow.why


def test_why_names_the_inputs() -> None:
    est = plume(key="H2S", emission_g_per_s=50.0, wind_from_deg=200.0, wind_speed_mps=3.0,
                stability="E", threshold_ppm=100.0, threshold_label="hot zone, IDLH")
    for part in ("H2S", "50 g/s", "from 200° (SSW)", "3.0 m/s", "class E", "100 ppm (hot zone, IDLH)",
                 "m downwind"):
        assert part in est.why
    assert "硫化氢" in est.why_zh and "E 类" in est.why_zh


def test_nothing_above_threshold_gives_an_empty_footprint() -> None:
    est = plume(emission_g_per_s=0.0)
    assert est.footprint.is_empty and est.polygons == () and est.downwind_length_m == 0.0
    weak = plume(emission_g_per_s=0.001, threshold_ppm=300.0, release_height_m=50.0)
    assert weak.footprint.is_empty and "stays below" in weak.why


def test_footprint_cut_at_the_range_limit_is_flagged() -> None:
    est = plume(key="Cl2", emission_g_per_s=1000.0, stability="F", threshold_ppm=0.3,
                settings=PlumeSettings(max_range_m=5_000.0))
    assert est.truncated and est.downwind_length_m == 5_000.0
    assert "computation limit" in est.why


def test_people_and_facilities_inside() -> None:
    # 200 m downwind on the axis, 200 m upwind, 1 km crosswind; wind from the north
    e0, n0 = TO_UTM.transform(SRC_LON, SRC_LAT)
    back = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    pts = [back.transform(e0, n0 - 200.0), back.transform(e0, n0 + 200.0), back.transform(e0 + 1000.0, n0)]
    lon, lat = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    pop = PopulationPoints(lon=lon, lat=lat, people=np.array([120.0, 50.0, 900.0]))
    fac = Facilities(ids=("school-1", "clinic-2", "depot-3"), lon=lon, lat=lat)
    est = plume(population=pop, facilities=fac)
    assert est.people_inside == 120.0
    assert est.facility_ids_inside == ("school-1",)
    assert "about 120 people inside, 1 facilities inside" in est.why
    # a population grid (2-D arrays of cell centres) is flattened
    grid = PopulationPoints(lon=lon.reshape(1, 3), lat=lat.reshape(1, 3), people=np.ones((1, 3)))
    assert plume(population=grid).people_inside == 1.0
    # a missing count inside makes the total unknown, one outside does not
    missing_inside = PopulationPoints(lon, lat, np.array([np.nan, 1.0, 1.0]))
    assert math.isnan(plume(population=missing_inside).people_inside)
    assert plume(population=PopulationPoints(lon, lat, np.array([7.0, np.nan, 1.0]))).people_inside == 7.0
    # no population given: not counted, and said so
    bare = plume()
    assert math.isnan(bare.people_inside) and "not counted" in bare.why


def test_evacuation_zones_hot_inside_warm() -> None:
    zones = evacuation_zones("NH3", source_lon=SRC_LON, source_lat=SRC_LAT, emission_g_per_s=1000.0,
                             wind_from_deg=300.0, wind_speed_mps=2.0, stability="D")
    assert zones.hot.threshold_ppm == 300.0
    assert zones.warm.threshold_ppm == pytest.approx(42.37, abs=0.01)
    assert zones.warm.area_m2 > zones.hot.area_m2 > 0
    assert zones.warm.downwind_length_m > zones.hot.downwind_length_m
    assert utm(zones.warm.footprint).buffer(1.0).contains(utm(zones.hot.footprint))
    assert "hot zone, IDLH" in zones.hot.why and "warm zone, PC-STEL 30 mg/m³" in zones.warm.why
    assert "热区" in zones.hot.why_zh and "温区" in zones.warm.why_zh
    site = evacuation_zones("NH3", source_lon=SRC_LON, source_lat=SRC_LAT, emission_g_per_s=1000.0,
                            wind_from_deg=300.0, wind_speed_mps=2.0, stability="D",
                            thresholds=GasThresholds.from_mapping("NH3", {"red_ppm": 250.0}))
    assert site.hot.threshold_ppm == 250.0 and "site setting" in site.hot.why
    assert site.hot.area_m2 > zones.hot.area_m2


def test_plume_settings_from_mapping() -> None:
    cfg = PlumeSettings.from_mapping({"calm_radius_m": "300", "stations": 64, "metric_crs": "EPSG:32649",
                                      "colour": "red"})
    assert cfg.calm_radius_m == 300.0 and cfg.stations == 64 and cfg.metric_crs == "EPSG:32649"
    with pytest.raises(InvalidValueError, match="min_wind_mps"):
        PlumeSettings(calm_below_mps=1.5, min_wind_mps=1.0)
    with pytest.raises(InvalidValueError, match="stations"):
        PlumeSettings(stations=4)


@pytest.mark.parametrize(("kw", "match"), [
    ({"key": "CO"}, "unknown substance"),
    ({"emission_g_per_s": -5.0}, "emission_g_per_s"),
    ({"wind_speed_mps": math.nan}, "wind_speed_mps"),
    ({"wind_speed_mps": -1.0}, "wind_speed_mps"),
    ({"wind_from_deg": math.nan}, "wind_from_deg"),  # a direction is needed unless calm
    ({"threshold_ppm": 0.0}, "threshold_ppm"),
    ({"stability": "G"}, "A–F"),
    ({"source_lon": 29.7, "source_lat": 106.6}, "lon first"),
    ({"release_height_m": -1.0}, "release_height_m"),
])
def test_estimate_bad_input(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ChemicalError, match=match):
        plume(**kw)


def test_population_bad_input() -> None:
    with pytest.raises(InvalidValueError, match="2 points but 3 counts"):
        PopulationPoints(lon=[106.6, 106.61], lat=[29.7, 29.71], people=[1, 2, 3])
    with pytest.raises(InvalidValueError, match="negative"):
        PopulationPoints(lon=[106.6], lat=[29.7], people=[-1])
    with pytest.raises(InvalidValueError, match="finite"):
        PopulationPoints(lon=[math.nan], lat=[29.7], people=[1])
    with pytest.raises(InvalidValueError, match="2 ids but 1 positions"):
        Facilities(ids=("a", "b"), lon=[106.6], lat=[29.7])
