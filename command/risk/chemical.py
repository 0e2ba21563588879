"""Hazardous chemicals: gas-detector alarm levels, Gaussian plume dispersion, evacuation areas.

Pure: numbers, numpy arrays and frozen dataclasses in, the same out. No clock, no I/O.

Detector levels (per substance, a site may override them with ``GasThresholds.from_mapping``)
----------------------------------------------------------------------------------------
GB/T 50493-2019 (石油化工可燃气体和有毒气体检测报警设计标准) sets the alarm set points: toxic
gas first-level alarm ≤ 100 % OEL, second-level ≤ 200 % OEL; combustible gas 25 % / 50 % LEL.
The occupational exposure limits (OEL) are those of GBZ 2.1-2019 (mg/m³); as in GB/T 50493's
table of common toxic gases, the OEL is the MAC where one is set, otherwise the PC-TWA
(NH3: alarms at 20 and 40 mg/m³; H2S: 10 and 20; Cl2: 1 and 2). Yingji maps them to colours:

=========  =======================================  ===========================================
level      NH3, H2S, Cl2 (toxic)                    VOC (PID, isobutylene-equivalent ppm)
=========  =======================================  ===========================================
blue       first-level alarm, 100 % OEL             PID low alarm, 50 ppm (local default)
yellow     second-level alarm, 200 % OEL            PID high alarm, 100 ppm (local default)
orange     AEGL-2, 60 min (US EPA / NRC)            25 % LEL of isobutylene (GB/T 50493 first)
red        IDLH (NIOSH 1994 revision)               50 % LEL of isobutylene (GB/T 50493 second)
=========  =======================================  ===========================================

Orange marks the concentration above which the general public may suffer serious or
irreversible effects or be unable to escape (AEGL-2); red, the concentration from which a
worker could not escape unharmed (IDLH). The detector levels are the system's assessment,
not the site's alarm system, which keeps its own set points.

Plume (a continuous point source)
---------------------------------
Turner (1970), *Workbook of Atmospheric Dispersion Estimates*, eq. 3.1: the Gaussian plume
with total ground reflection, Pasquill–Gifford stability classes A–F, open-country (rural)
σy, σz of Briggs (1973) as tabulated by Gifford (1976) (reproduced in Boubel, Fox, Turner &
Stern, *Fundamentals of Air Pollution*, 3rd ed. 1994, Table 19-7; also Hanna, Briggs & Hosker
1982). Passive (neutrally buoyant) gas, flat open terrain, steady wind: a screening model.
It does not model dense-gas slumping (Cl2 is 2.4 times as dense as air), buildings, terrain
or a mixing lid; say so where it matters (``PlumeEstimate.why`` does).

Evacuation zones (``evacuation_zones``): the hot zone is where the ground-level concentration
reaches the substance's red level (IDLH; 50 % LEL for VOC); the warm zone, where it reaches
its short-term OEL (GBZ 2.1-2019 PC-STEL where set, otherwise MAC; the PID low alarm for VOC).
The Pasquill–Gifford σ describe roughly 10-minute averages (Turner 1970, ch. 3), comparable
with a 15-minute STEL and the 30-minute IDLH escape time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import shapely
from pyproj import Transformer
from scipy import optimize
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from .rules import Level

__all__ = [
    "DEFAULT_GAS_THRESHOLDS",
    "DEFAULT_PLUME_SETTINGS",
    "NOTE",
    "NOTE_ZH",
    "REFERENCE_PRESSURE_KPA",
    "REFERENCE_TEMP_C",
    "SUBSTANCES",
    "ChemicalError",
    "EvacuationZones",
    "Facilities",
    "GasAssessment",
    "GasThresholds",
    "InvalidValueError",
    "PlumeEstimate",
    "PlumeSettings",
    "PopulationPoints",
    "StabilityClass",
    "Substance",
    "UnknownSubstanceError",
    "assess_gas",
    "briggs_rural_sigmas_m",
    "estimate_plume",
    "evacuation_zones",
    "gas_level",
    "gaussian_plume_mg_m3",
    "ground_concentration_mg_m3_at",
    "mg_m3_to_ppm",
    "molar_volume_l_per_mol",
    "pasquill_categories",
    "pasquill_stability",
    "ppm_to_mg_m3",
    "substance",
]

NOTE = ("System assessment from detector readings and a screening dispersion model; the site's "
        "alarm system and the responders on the scene decide.")
NOTE_ZH = "系统根据检测数据和筛查性扩散模型研判；以现场报警系统和现场处置人员的判断为准。"


class ChemicalError(ValueError):
    """Input the chemical models cannot use; the message says what and why."""


class UnknownSubstanceError(ChemicalError):
    """A substance that has no molar mass and no alarm levels here."""


class InvalidValueError(ChemicalError):
    """A number out of its domain: negative ppm, NaN wind, thresholds out of order."""


def _finite(name: str, value: float, *, minimum: float | None = None, strict: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (v < minimum or (strict and v == minimum)):
        rel = ">" if strict else "≥"
        raise InvalidValueError(f"{name} must be {rel} {minimum:g}, got {v:g}")
    return v


# --- substances and unit conversion -------------------------------------------------------

# Standard atomic weights, abridged to five significant figures (IUPAC CIAAW, 2021).
_ATOMIC_WEIGHT = {"H": 1.0080, "C": 12.011, "N": 14.007, "S": 32.06, "Cl": 35.45}
# Mean molar mass of dry air (U.S. Standard Atmosphere 1976): heavier gases slump.
_AIR_MOLAR_MASS_G_PER_MOL = 28.9644

R_J_PER_MOL_K = 8.314462618  # molar gas constant (CODATA 2018; exact in the 2019 SI)
# Reference conditions of Chinese workplace-air limits: GBZ 159-2004 converts a sampled air
# volume to 20 °C and 101.3 kPa; the standard atmosphere 101.325 kPa is used here.
REFERENCE_TEMP_C = 20.0
REFERENCE_PRESSURE_KPA = 101.325


@dataclass(frozen=True, slots=True)
class Substance:
    """A gas the detectors report: key (``"NH3"``), names, CAS number and molar mass."""

    key: str
    name: str
    name_zh: str
    cas: str
    molar_mass_g_per_mol: float

    @property
    def denser_than_air(self) -> bool:
        return self.molar_mass_g_per_mol > _AIR_MOLAR_MASS_G_PER_MOL


def _mass(**atoms: int) -> float:
    return sum(_ATOMIC_WEIGHT[el] * n for el, n in atoms.items())


SUBSTANCES: Mapping[str, Substance] = {
    "NH3": Substance("NH3", "ammonia", "氨", "7664-41-7", _mass(N=1, H=3)),
    "H2S": Substance("H2S", "hydrogen sulfide", "硫化氢", "7783-06-4", _mass(H=2, S=1)),
    "Cl2": Substance("Cl2", "chlorine", "氯气", "7782-50-5", _mass(Cl=2)),
    # A PID reports VOC as the isobutylene that would give the same signal (isobutylene is
    # the usual calibration gas); mass conversions of "VOC" therefore use isobutylene, C4H8.
    "VOC": Substance("VOC", "VOC (isobutylene-equivalent)", "挥发性有机物（异丁烯当量）",
                     "115-11-7", _mass(C=4, H=8)),
}
_BY_UPPER = {k.upper(): k for k in SUBSTANCES}


def substance(key: str) -> Substance:
    """The substance for a detector's key, case-insensitive (``"nh3"``, ``"CL2"``).

    >>> substance("cl2").name
    'chlorine'
    """
    try:
        return SUBSTANCES[_BY_UPPER[str(key).strip().upper()]]
    except KeyError:
        raise UnknownSubstanceError(
            f"unknown substance {key!r}: known are {', '.join(SUBSTANCES)}") from None


def molar_volume_l_per_mol(temp_c: float = REFERENCE_TEMP_C,
                           pressure_kpa: float = REFERENCE_PRESSURE_KPA) -> float:
    """Ideal-gas molar volume V = RT/p in L/mol (24.055 L/mol at 20 °C, 101.325 kPa)."""
    t_k = _finite("temp_c", temp_c, minimum=-273.15, strict=True) + 273.15
    p = _finite("pressure_kpa", pressure_kpa, minimum=0.0, strict=True)
    return R_J_PER_MOL_K * t_k / p


def ppm_to_mg_m3(ppm: float | np.ndarray, molar_mass_g_per_mol: float, *,
                 temp_c: float = REFERENCE_TEMP_C,
                 pressure_kpa: float = REFERENCE_PRESSURE_KPA) -> float | np.ndarray:
    """Volume mixing ratio (µmol/mol) to mass concentration: mg/m³ = ppm · M / V_m.

    >>> round(ppm_to_mg_m3(0.5, substance("Cl2").molar_mass_g_per_mol, temp_c=25.0), 2)
    1.45
    """
    m = _finite("molar_mass_g_per_mol", molar_mass_g_per_mol, minimum=0.0, strict=True)
    vm = molar_volume_l_per_mol(temp_c, pressure_kpa)
    if np.ndim(ppm):
        return np.asarray(ppm, dtype=float) * m / vm
    return float(ppm) * m / vm


def mg_m3_to_ppm(mg_m3: float | np.ndarray, molar_mass_g_per_mol: float, *,
                 temp_c: float = REFERENCE_TEMP_C,
                 pressure_kpa: float = REFERENCE_PRESSURE_KPA) -> float | np.ndarray:
    """Mass concentration to volume mixing ratio: ppm = mg/m³ · V_m / M.

    >>> round(mg_m3_to_ppm(10.0, substance("H2S").molar_mass_g_per_mol), 2)
    7.06
    """
    m = _finite("molar_mass_g_per_mol", molar_mass_g_per_mol, minimum=0.0, strict=True)
    vm = molar_volume_l_per_mol(temp_c, pressure_kpa)
    if np.ndim(mg_m3):
        return np.asarray(mg_m3, dtype=float) * vm / m
    return float(mg_m3) * vm / m


def _ppm(key: str, mg_m3: float) -> float:
    return float(mg_m3_to_ppm(mg_m3, SUBSTANCES[key].molar_mass_g_per_mol))


# --- detector alarm levels ------------------------------------------------------------------

# GBZ 2.1-2019, table 1 (mg/m³): NH3 PC-TWA 20, PC-STEL 30; H2S MAC 10; Cl2 MAC 1.
_OEL_MG_M3 = {"NH3": 20.0, "H2S": 10.0, "Cl2": 1.0}  # MAC, else PC-TWA (GB/T 50493 table)
_SHORT_TERM_OEL_MG_M3 = {"NH3": 30.0, "H2S": 10.0, "Cl2": 1.0}  # PC-STEL, else MAC
# NIOSH, Documentation for IDLH Concentrations (1994 revision), ppm.
_IDLH_PPM = {"NH3": 300.0, "H2S": 100.0, "Cl2": 10.0}
# AEGL-2, 60-minute values (US EPA, National Advisory Committee; NRC AEGL volumes), ppm.
_AEGL2_60MIN_PPM = {"NH3": 160.0, "H2S": 27.0, "Cl2": 2.0}
# Isobutylene lower flammability limit 1.8 % by volume (Zabetakis 1965, USBM Bulletin 627).
_ISOBUTYLENE_LEL_PPM = 18_000.0
# Handheld-PID low/high alarm defaults for isobutylene-equivalent VOC. A local default, not a
# standard: a site sets them from the OEL of its actual compound and the PID correction factor.
_VOC_PID_LOW_PPM, _VOC_PID_HIGH_PPM = 50.0, 100.0

Colour = Literal["blue", "yellow", "orange", "red"]
_COLOURS: tuple[Colour, ...] = ("blue", "yellow", "orange", "red")


@dataclass(frozen=True, slots=True)
class GasThresholds:
    """One substance's detector levels (ppm) and warm-zone level; a site may override them.

    ``red_ppm`` is also the hot-zone level of ``evacuation_zones``.
    """

    blue_ppm: float
    yellow_ppm: float
    orange_ppm: float
    red_ppm: float
    warm_zone_ppm: float

    def __post_init__(self) -> None:
        for name in ("blue_ppm", "yellow_ppm", "orange_ppm", "red_ppm", "warm_zone_ppm"):
            _finite(name, getattr(self, name), minimum=0.0, strict=True)
        if not self.blue_ppm <= self.yellow_ppm <= self.orange_ppm <= self.red_ppm:
            raise InvalidValueError(
                f"thresholds out of order: blue {self.blue_ppm:g}, yellow {self.yellow_ppm:g}, "
                f"orange {self.orange_ppm:g}, red {self.red_ppm:g} ppm")

    @property
    def hot_zone_ppm(self) -> float:
        return self.red_ppm

    @classmethod
    def from_mapping(cls, key: str, overrides: Mapping[str, float] | None = None) -> GasThresholds:
        """The substance's defaults with a site's overrides (unknown keys are ignored)."""
        base = DEFAULT_GAS_THRESHOLDS[substance(key).key]
        known = {k: float(v) for k, v in (overrides or {}).items() if k in cls.__dataclass_fields__}
        return dataclasses.replace(base, **known)


def _toxic_defaults(key: str) -> GasThresholds:
    oel = _ppm(key, _OEL_MG_M3[key])
    return GasThresholds(blue_ppm=oel, yellow_ppm=2.0 * oel, orange_ppm=_AEGL2_60MIN_PPM[key],
                         red_ppm=_IDLH_PPM[key],
                         warm_zone_ppm=_ppm(key, _SHORT_TERM_OEL_MG_M3[key]))


DEFAULT_GAS_THRESHOLDS: Mapping[str, GasThresholds] = {
    "NH3": _toxic_defaults("NH3"),
    "H2S": _toxic_defaults("H2S"),
    "Cl2": _toxic_defaults("Cl2"),
    "VOC": GasThresholds(blue_ppm=_VOC_PID_LOW_PPM, yellow_ppm=_VOC_PID_HIGH_PPM,
                         orange_ppm=0.25 * _ISOBUTYLENE_LEL_PPM, red_ppm=0.50 * _ISOBUTYLENE_LEL_PPM,
                         warm_zone_ppm=_VOC_PID_LOW_PPM),
}

_BASIS_TOXIC = {"blue": ("first-level alarm, 100 % OEL", "一级报警，100% OEL"),
                "yellow": ("second-level alarm, 200 % OEL", "二级报警，200% OEL"),
                "orange": ("AEGL-2, 60 min", "AEGL-2，60 分钟"),
                "red": ("IDLH", "IDLH，立即威胁生命和健康浓度")}
_BASIS_VOC = {"blue": ("PID low alarm", "PID 低报"),
              "yellow": ("PID high alarm", "PID 高报"),
              "orange": ("25 % LEL, first-level combustible alarm", "25% LEL，可燃气体一级报警"),
              "red": ("50 % LEL, second-level combustible alarm", "50% LEL，可燃气体二级报警")}
_WARM_BASIS = {"NH3": ("PC-STEL 30 mg/m³", "PC-STEL 30 mg/m³"), "H2S": ("MAC 10 mg/m³", "MAC 10 mg/m³"),
               "Cl2": ("MAC 1 mg/m³", "MAC 1 mg/m³"), "VOC": ("PID low alarm", "PID 低报")}
_COLOUR_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


def _basis(key: str, colour: Colour, value: float) -> tuple[str, str]:
    """Why a level has its value: the default's source, or 'site setting' when overridden."""
    if not math.isclose(value, getattr(DEFAULT_GAS_THRESHOLDS[key], f"{colour}_ppm")):
        return "site setting", "现场设定"
    return (_BASIS_VOC if key == "VOC" else _BASIS_TOXIC)[colour]


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.1f}"
    return f"{v:.3f}"


def _reading(ppm: float) -> float:
    v = float(ppm)
    if math.isnan(v):
        raise InvalidValueError("gas reading is NaN: no value to assess")
    if v < 0:
        raise InvalidValueError(f"gas reading must not be negative, got {v:g} ppm")
    if math.isinf(v):
        raise InvalidValueError("gas reading is infinite")
    return v


def _decisive(ppm: float, th: GasThresholds) -> tuple[Level, Colour | None, float | None]:
    for level, colour in zip((Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE), _COLOURS[::-1]):
        value = getattr(th, f"{colour}_ppm")
        if ppm >= value:
            return level, colour, value
    return Level.NONE, None, None


def gas_level(key: str, ppm: float, thresholds: GasThresholds | None = None) -> Level:
    """Yingji level of one detector reading in ppm (VOC: isobutylene-equivalent ppm).

    >>> gas_level("H2S", 20.0)
    <Level.YELLOW: 2>
    """
    sub = substance(key)
    th = thresholds if thresholds is not None else DEFAULT_GAS_THRESHOLDS[sub.key]
    return _decisive(_reading(ppm), th)[0]


@dataclass(frozen=True, slots=True)
class GasAssessment:
    """One detector's verdict with reasons a person can read (en, zh)."""

    kind: Literal["chemical"]
    level: Level
    sensor_id: str
    substance: str
    value: float  # ppm (VOC: isobutylene-equivalent)
    unit: str
    reason: str
    reason_zh: str
    threshold: float | None = None  # the level reached, ppm (None when NONE)
    note: str = NOTE
    note_zh: str = NOTE_ZH


def assess_gas(sensor_id: str, key: str, ppm: float,
               thresholds: GasThresholds | None = None) -> GasAssessment:
    """``gas_level`` with the reason spelled out."""
    sub = substance(key)
    th = thresholds if thresholds is not None else DEFAULT_GAS_THRESHOLDS[sub.key]
    v = _reading(ppm)
    level, colour, value = _decisive(v, th)
    if colour is not None and value is not None:
        en, zh = _basis(sub.key, colour, value)
        reason = f"{sub.key} {_fmt(v)} ppm: at or above the {colour} level {_fmt(value)} ppm ({en})"
        reason_zh = f"{sub.name_zh} {_fmt(v)} ppm，达到{_COLOUR_ZH[colour]}等级 {_fmt(value)} ppm（{zh}）"
    else:
        en, zh = _basis(sub.key, "blue", th.blue_ppm)
        reason = f"{sub.key} {_fmt(v)} ppm: below the blue level {_fmt(th.blue_ppm)} ppm ({en})"
        reason_zh = f"{sub.name_zh} {_fmt(v)} ppm，低于蓝色等级 {_fmt(th.blue_ppm)} ppm（{zh}）"
    return GasAssessment("chemical", level, sensor_id, sub.key, v, "ppm", reason, reason_zh,
                         threshold=value)


# --- atmospheric stability ------------------------------------------------------------------

StabilityClass = Literal["A", "B", "C", "D", "E", "F"]
Insolation = Literal["strong", "moderate", "slight"]
_CLASSES = "ABCDEF"

# Pasquill (1961) key as given by Turner (1970), Table 1. Rows: surface wind speed at 10 m,
# < 2, 2–3, 3–5, 5–6, > 6 m/s. Day columns: strong, moderate, slight incoming solar radiation.
# Night columns: thinly overcast or ≥ 4/8 low cloud; ≤ 3/8 cloud. Two letters are the
# intermediate classes (A–B ...). Turner leaves night < 2 m/s blank; the 2–3 m/s entries
# (E, F) fill it, as NOAA READY's reproduction of Pasquill's table does.
_DAY = (("A", "AB", "B"), ("AB", "B", "C"), ("B", "BC", "C"), ("C", "CD", "D"), ("C", "D", "D"))
_NIGHT = (("E", "F"), ("E", "F"), ("D", "E"), ("D", "D"), ("D", "D"))
_INSOLATION = {"strong": 0, "moderate": 1, "slight": 2}


def _wind_row(u_mps: float) -> int:
    # Band edges read as [0, 2), [2, 3), [3, 5), [5, 6], (6, ∞): "2–3" starts at 2, "> 6" is strict.
    if u_mps < 2.0:
        return 0
    if u_mps < 3.0:
        return 1
    if u_mps < 5.0:
        return 2
    if u_mps <= 6.0:
        return 3
    return 4


def pasquill_categories(wind_10m_mps: float, *, daytime: bool, insolation: Insolation | None = None,
                        cloud_oktas: int | None = None) -> tuple[StabilityClass, ...]:
    """Pasquill class(es) from the Turner (1970) key: one letter, or two for A–B, B–C, C–D.

    ``daytime`` is the caller's: Turner's night runs from one hour before sunset to one hour
    after sunrise. Overcast (8 oktas) is neutral D, day or night (Turner 1970, Table 1 note).
    By day the insolation class is required (lower it for cloud); by night the cloud cover.

    >>> pasquill_categories(2.5, daytime=True, insolation="strong")
    ('A', 'B')
    """
    u = _finite("wind_10m_mps", wind_10m_mps, minimum=0.0)
    if cloud_oktas is not None and not (float(cloud_oktas).is_integer() and 0 <= cloud_oktas <= 8):
        raise InvalidValueError(f"cloud_oktas must be an integer 0..8, got {cloud_oktas!r}")
    if cloud_oktas == 8:
        return ("D",)
    row = _wind_row(u)
    if daytime:
        if insolation not in _INSOLATION:
            raise InvalidValueError(
                f"daytime needs insolation 'strong', 'moderate' or 'slight', got {insolation!r}")
        cell = _DAY[row][_INSOLATION[insolation]]
    else:
        if cloud_oktas is None:
            raise InvalidValueError("night needs cloud_oktas (0..8)")
        cell = _NIGHT[row][0 if cloud_oktas >= 4 else 1]
    return tuple(cell)  # type: ignore[return-value]


def pasquill_stability(wind_10m_mps: float, *, daytime: bool, insolation: Insolation | None = None,
                       cloud_oktas: int | None = None,
                       intermediate: Literal["stable", "unstable"] = "stable") -> StabilityClass:
    """One Pasquill class A–F; an intermediate class resolves to its more stable letter.

    The more stable letter (default) gives narrower plumes and higher ground concentrations
    downwind of a ground-level release: the cautious choice for evacuation.

    >>> pasquill_stability(1.5, daytime=False, cloud_oktas=2)
    'F'
    """
    if intermediate not in ("stable", "unstable"):
        raise InvalidValueError(f"intermediate must be 'stable' or 'unstable', got {intermediate!r}")
    cats = pasquill_categories(wind_10m_mps, daytime=daytime, insolation=insolation,
                               cloud_oktas=cloud_oktas)
    return cats[-1] if intermediate == "stable" else cats[0]


def _stability(stability: str) -> StabilityClass:
    s = str(stability).strip().upper()
    if len(s) != 1 or s not in _CLASSES:
        raise InvalidValueError(f"stability class must be one of A–F, got {stability!r}")
    return s  # type: ignore[return-value]


# --- dispersion -------------------------------------------------------------------------------

# Briggs (1973) open-country σ (x in metres, 100 m < x < 10 km), after Gifford (1976):
#   σy = a_y x (1 + 0.0001 x)^(-1/2) for every class;
#   σz = a_z x (1 + b_z x)^(-p_z): A 0.20x; B 0.12x; C 0.08x(1+0.0002x)^-1/2;
#   D 0.06x(1+0.0015x)^-1/2; E 0.03x(1+0.0003x)^-1; F 0.016x(1+0.0003x)^-1.
_BRIGGS_RURAL: Mapping[str, tuple[float, float, float, float]] = {
    #     a_y,  a_z,   b_z,    p_z
    "A": (0.22, 0.20, 0.0, 0.0),
    "B": (0.16, 0.12, 0.0, 0.0),
    "C": (0.11, 0.08, 0.0002, 0.5),
    "D": (0.08, 0.06, 0.0015, 0.5),
    "E": (0.06, 0.03, 0.0003, 1.0),
    "F": (0.04, 0.016, 0.0003, 1.0),
}
BRIGGS_VALID_RANGE_M = (100.0, 10_000.0)


def briggs_rural_sigmas_m(x_m: float | np.ndarray, stability: str) -> tuple[np.ndarray, np.ndarray]:
    """σy, σz (m) at downwind distance x (m) for a Pasquill class; NaN where x ≤ 0.

    >>> [round(float(s), 1) for s in briggs_rural_sigmas_m(1000.0, "D")]
    [76.3, 37.9]
    """
    a_y, a_z, b_z, p_z = _BRIGGS_RURAL[_stability(stability)]
    x = np.asarray(x_m, dtype=float)
    xp = np.where(x > 0, x, np.nan)
    sigma_y = a_y * xp * (1.0 + 0.0001 * xp) ** -0.5
    sigma_z = a_z * xp * (1.0 + b_z * xp) ** -p_z
    return sigma_y, sigma_z


def gaussian_plume_mg_m3(emission_g_per_s: float, wind_speed_mps: float,
                         x_m: float | np.ndarray, y_m: float | np.ndarray,
                         z_m: float | np.ndarray = 0.0, *, stability: str,
                         release_height_m: float = 0.0, reflection: bool = True) -> np.ndarray:
    """Concentration (mg/m³) of a continuous point source, Turner (1970) eq. 3.1.

    C = Q / (2π u σy σz) · exp(−y²/2σy²) · [exp(−(z−H)²/2σz²) + exp(−(z+H)²/2σz²)],
    the second term being the image source of total ground reflection. x is downwind of the
    source, y crosswind, z above ground, H the effective release height (stack plus plume
    rise); zero upwind (x ≤ 0). u is the wind speed the caller has already made valid
    (see ``PlumeSettings``): the formula has no meaning in calm.
    """
    q = _finite("emission_g_per_s", emission_g_per_s, minimum=0.0)
    u = _finite("wind_speed_mps", wind_speed_mps, minimum=0.0, strict=True)
    h = _finite("release_height_m", release_height_m, minimum=0.0)
    x, y, z = np.broadcast_arrays(np.asarray(x_m, float), np.asarray(y_m, float), np.asarray(z_m, float))
    if np.any(z < 0):
        raise InvalidValueError("receptor height z_m must not be negative")
    sy, sz = briggs_rural_sigmas_m(x, stability)
    with np.errstate(invalid="ignore", divide="ignore"):
        vertical = np.exp(-((z - h) ** 2) / (2 * sz**2))
        if reflection:
            vertical = vertical + np.exp(-((z + h) ** 2) / (2 * sz**2))
        c = q / (2 * np.pi * u * sy * sz) * np.exp(-(y**2) / (2 * sy**2)) * vertical
    return np.where(x > 0, c * 1000.0, 0.0)  # g/m³ → mg/m³


def _ln_centreline_mg_m3(x: np.ndarray | float, q: float, u: float, stab: str, h: float) -> np.ndarray:
    """ln of the ground-level (z = 0) centreline concentration, reflection included.

    In logs so that an elevated plume close to its source does not underflow to 0:
    C(x, 0, 0) = Q / (π u σy σz) · exp(−H²/2σz²) (Turner 1970, eq. 3.2 with y = 0).
    """
    sy, sz = briggs_rural_sigmas_m(x, stab)
    return np.log(1000.0 * q / (np.pi * u * sy * sz)) - h**2 / (2 * sz**2)


# --- geometry helpers -------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _transformers(metric_crs: str) -> tuple[Transformer, Transformer]:
    return (Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True),
            Transformer.from_crs(metric_crs, "EPSG:4326", always_xy=True))


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plume's local frame in the metric CRS: source, downwind and left unit vectors."""

    e0: float
    n0: float
    down: tuple[float, float]
    left: tuple[float, float]

    def to_metric(self, xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack((self.e0 + x * self.down[0] + y * self.left[0],
                                self.n0 + x * self.down[1] + y * self.left[1]))

    def from_metric(self, e: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        de, dn = e - self.e0, n - self.n0
        return de * self.down[0] + dn * self.down[1], de * self.left[0] + dn * self.left[1]


def _frame(lon: float, lat: float, wind_from_deg: float, metric_crs: str) -> _Frame:
    fwd, _ = _transformers(metric_crs)
    e0, n0 = fwd.transform(lon, lat)
    # Grid bearing of true north at the source (minus the meridian convergence): in UTM 48N
    # it is about −0.8° at 106.6°E; the wind direction is a true bearing.
    e1, n1 = fwd.transform(lon, lat + 0.001)
    north_grid_deg = math.degrees(math.atan2(e1 - e0, n1 - n0))
    to_rad = math.radians((wind_from_deg + 180.0) % 360.0 + north_grid_deg)
    down = (math.sin(to_rad), math.cos(to_rad))
    return _Frame(float(e0), float(n0), down, (-down[1], down[0]))


def _compass(deg: float) -> str:
    names = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
             "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")
    return names[round((deg % 360.0) / 22.5) % 16]


# --- inputs: population and facilities -------------------------------------------------------


def _lonlat(name: str, lon: np.ndarray, lat: np.ndarray) -> None:
    if lon.shape != lat.shape:
        raise InvalidValueError(f"{name}: lon has {lon.size} values but lat has {lat.size}")
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise InvalidValueError(f"{name}: lon/lat must be finite")
    if np.any(np.abs(lat) > 90) or np.any(np.abs(lon) > 180):
        raise InvalidValueError(f"{name}: lon/lat out of range (expect WGS84 degrees, lon first)")


@dataclass(frozen=True, slots=True, eq=False)
class PopulationPoints:
    """People at points: survey points, or the cell centres of a population grid (any shape).

    A NaN count is missing data and makes the total NaN rather than silently low.
    """

    lon: np.ndarray
    lat: np.ndarray
    people: np.ndarray

    def __post_init__(self) -> None:
        lon, lat = np.ravel(np.asarray(self.lon, float)), np.ravel(np.asarray(self.lat, float))
        people = np.ravel(np.asarray(self.people, float))
        _lonlat("population", lon, lat)
        if people.shape != lon.shape:
            raise InvalidValueError(f"population: {lon.size} points but {people.size} counts")
        if np.any(people < 0):
            raise InvalidValueError("population: people must not be negative")
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "people", people)


@dataclass(frozen=True, slots=True, eq=False)
class Facilities:
    """Facilities (schools, hospitals, plants ...) by id at lon/lat."""

    ids: tuple[str, ...]
    lon: np.ndarray
    lat: np.ndarray

    def __post_init__(self) -> None:
        ids = tuple(str(i) for i in self.ids)
        lon, lat = np.ravel(np.asarray(self.lon, float)), np.ravel(np.asarray(self.lat, float))
        _lonlat("facilities", lon, lat)
        if len(ids) != lon.size:
            raise InvalidValueError(f"facilities: {len(ids)} ids but {lon.size} positions")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "lat", lat)


# --- the estimate -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlumeSettings:
    """Model limits and grid; a district may override them (``from_mapping``).

    Calm and low winds: a steady-state plume divides by the wind speed and is invalid in calm.
    US EPA, Meteorological Monitoring Guidance for Regulatory Modeling Applications
    (EPA-454/R-99-005, 2000), §6.2.3: winds below about 1 m/s (the lowest in the models'
    validations) are reset to 1 m/s, and a calm is a speed below the anemometer's starting
    threshold, which the same guidance caps at 0.5 m/s. Below ``calm_below_mps`` the estimate
    is a circle of ``calm_radius_m`` round the source: a local default to be set per site
    (of the order of the Emergency Response Guidebook's large-spill initial isolation
    distances for toxic gases), not a modelled distance.
    """

    calm_below_mps: float = 0.5
    min_wind_mps: float = 1.0
    calm_radius_m: float = 500.0
    max_range_m: float = 20_000.0  # the footprint is cut here and flagged ``truncated``
    min_range_m: float = 1.0  # nearest downwind station; a point source has no near field
    stations: int = 400  # downwind stations of the search grid
    metric_crs: str = "EPSG:32648"  # UTM 48N; another district sets its own zone

    def __post_init__(self) -> None:
        _finite("calm_below_mps", self.calm_below_mps, minimum=0.0)
        _finite("min_wind_mps", self.min_wind_mps, minimum=0.0, strict=True)
        if self.min_wind_mps < self.calm_below_mps:
            raise InvalidValueError("min_wind_mps must not be below calm_below_mps")
        _finite("calm_radius_m", self.calm_radius_m, minimum=0.0, strict=True)
        _finite("min_range_m", self.min_range_m, minimum=0.0, strict=True)
        _finite("max_range_m", self.max_range_m, minimum=self.min_range_m, strict=True)
        if int(self.stations) != self.stations or self.stations < 16:
            raise InvalidValueError(f"stations must be an integer ≥ 16, got {self.stations!r}")

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, object]) -> PlumeSettings:
        """Defaults with a district's overrides (unknown keys are ignored)."""
        known: dict[str, object] = {}
        for k, v in overrides.items():
            if k == "metric_crs":
                known[k] = str(v)
            elif k == "stations":
                known[k] = int(v)  # type: ignore[call-overload]
            elif k in cls.__dataclass_fields__:
                known[k] = float(v)  # type: ignore[arg-type]
        return cls(**known)  # type: ignore[arg-type]


DEFAULT_PLUME_SETTINGS = PlumeSettings()


@dataclass(frozen=True, slots=True)
class PlumeEstimate:
    """Where the ground-level concentration reaches a threshold, and who is there.

    ``footprint`` is in WGS84 lon/lat: a Polygon, a MultiPolygon, or an empty Polygon when
    the threshold is not reached. Lengths are true ground metres measured in the metric CRS.
    """

    substance: str
    emission_g_per_s: float
    wind_from_deg: float  # direction the wind blows FROM, degrees true; NaN allowed in calm
    wind_speed_mps: float  # as measured at 10 m
    model_wind_speed_mps: float  # after the low-wind reset; NaN in calm
    stability: StabilityClass
    release_height_m: float
    threshold_ppm: float
    threshold_mg_m3: float
    threshold_label: str
    calm: bool
    truncated: bool  # the footprint reaches max_range_m and is cut there
    footprint: BaseGeometry
    downwind_length_m: float  # source to the farthest downwind edge (calm: the radius)
    max_width_m: float  # widest crosswind extent (calm: the diameter)
    area_m2: float
    people_inside: float  # NaN when no population was given, or when a count inside is NaN
    facility_ids_inside: tuple[str, ...]
    why: str
    why_zh: str

    @property
    def polygons(self) -> tuple[Polygon, ...]:
        """The footprint as a tuple of polygons (empty when the threshold is not reached)."""
        if self.footprint.is_empty:
            return ()
        if isinstance(self.footprint, Polygon):
            return (self.footprint,)
        return tuple(self.footprint.geoms)  # type: ignore[attr-defined]


def _model_wind(wind_speed_mps: float, settings: PlumeSettings) -> float | None:
    """The wind the plume uses: None in calm, else at least ``min_wind_mps``."""
    u = _finite("wind_speed_mps", wind_speed_mps, minimum=0.0)
    if u < settings.calm_below_mps:
        return None
    return max(u, settings.min_wind_mps)


def _intervals(g: Callable[[float], float], xs: np.ndarray, gx: np.ndarray, x_min: float,
               x_max: float) -> list[tuple[float, float, bool]]:
    """Runs of g ≥ 0 along the stations, edges refined by Brent's method."""
    out: list[tuple[float, float, bool]] = []
    above = gx >= 0
    i, n = 0, len(xs)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        start = 0.0 if i == 0 and xs[0] <= x_min else optimize.brentq(g, xs[i - 1], xs[i])
        if j == n - 1:
            end, cut = x_max, True
        else:
            end, cut = optimize.brentq(g, xs[j], xs[j + 1]), False
        out.append((float(start), float(end), cut))
        i = j + 1
    return out


def _half_width_m(x: np.ndarray, ln_c: np.ndarray, ln_t: float, stab: str) -> np.ndarray:
    """Crosswind half-width where C(x, y, 0) = T: y = σy √(2 ln(C(x,0,0)/T)) (Gaussian in y)."""
    sy, _ = briggs_rural_sigmas_m(x, stab)
    return np.where(ln_c > ln_t, sy * np.sqrt(2.0 * np.clip(ln_c - ln_t, 0.0, None)), 0.0)


def _footprint_local(q: float, u: float, stab: str, h: float, threshold_mg_m3: float,
                     settings: PlumeSettings) -> tuple[list[np.ndarray], float, float, bool]:
    """Footprint rings in the plume frame (x downwind, y left), length, width, truncated."""
    ln_t = math.log(threshold_mg_m3)
    x_min, x_max = settings.min_range_m, settings.max_range_m

    def g(x: float) -> float:
        return float(_ln_centreline_mg_m3(x, q, u, stab, h)) - ln_t

    def half_width(x: float) -> float:
        xa = np.array([x])
        return float(_half_width_m(xa, _ln_centreline_mg_m3(xa, q, u, stab, h), ln_t, stab)[0])

    xs = np.geomspace(x_min, x_max, int(settings.stations))
    ln_c = _ln_centreline_mg_m3(xs, q, u, stab, h)
    k = int(np.nanargmax(ln_c))
    if 0 < k < len(xs) - 1:  # an elevated plume's ground maximum: refine it between stations
        peak = optimize.minimize_scalar(lambda x: -g(x), bounds=(xs[k - 1], xs[k + 1]),
                                        method="bounded", options={"xatol": 1e-3})
        xs = np.sort(np.append(xs, peak.x))
        ln_c = _ln_centreline_mg_m3(xs, q, u, stab, h)
    rings: list[np.ndarray] = []
    length, width, truncated = 0.0, 0.0, False
    for start, end, cut in _intervals(g, xs, ln_c - ln_t, x_min, x_max):
        lo = max(start, x_min)
        px = np.unique(np.concatenate((np.geomspace(lo, end, 160), np.linspace(lo, end, 160))))
        w = _half_width_m(px, _ln_centreline_mg_m3(px, q, u, stab, h), ln_t, stab)
        if not cut:
            w[-1] = 0.0  # the far edge is where the centreline meets the threshold
        if start < x_min:  # closes at the source: a ground release exceeds T right at it
            px, w = np.concatenate(([0.0], px)), np.concatenate(([0.0], w))
        kmax = int(np.argmax(w))
        if 0 < kmax < len(px) - 1:  # the widest point, refined between stations
            best = optimize.minimize_scalar(lambda x: -half_width(x), bounds=(px[kmax - 1], px[kmax + 1]),
                                            method="bounded", options={"xatol": 1e-3})
            width = max(width, 2.0 * float(-best.fun))
        width = max(width, 2.0 * float(np.max(w)))
        upper = np.column_stack((px, w))
        lower = np.column_stack((px[::-1], -w[::-1]))
        rings.append(np.vstack((upper, lower)))
        length = max(length, end)
        truncated = truncated or cut
    return rings, length, width, truncated


def _exposure_text(people: float, counted: bool, n_fac: int | None) -> tuple[str, str]:
    if not counted:
        en, zh = "; people not counted (no population data)", "；未统计人数（无人口数据）"
    elif math.isfinite(people):
        en, zh = f"; about {people:,.0f} people inside", f"；范围内约 {people:,.0f} 人"
    else:
        en, zh = "; people inside unknown (missing counts)", "；范围内人数未知（人口数据缺失）"
    if n_fac is not None:
        en, zh = en + f", {n_fac} facilities inside", zh + f"，{n_fac} 处设施"
    return en, zh


def _why(sub: Substance, q: float, wind_from: float, u_meas: float, u_model: float | None,
         stab: str, h: float, threshold_ppm: float, labels: tuple[str, str], calm: bool,
         radius_m: float, length_m: float, width_m: float, truncated: bool,
         settings: PlumeSettings, exposure: tuple[str, str]) -> tuple[str, str]:
    lab = f" ({labels[0]})" if labels[0] else ""
    lab_zh = f"（{labels[1] or labels[0]}）" if labels[0] or labels[1] else ""
    head = f"{sub.key} ({sub.name}) release {q:g} g/s"
    head_zh = f"{sub.name_zh}（{sub.key}）泄漏 {q:g} g/s"
    pop, pop_zh = exposure
    if calm:
        why = (f"{head}; calm ({u_meas:.1f} m/s < {settings.calm_below_mps:g} m/s): a Gaussian plume is "
               f"invalid in calm, so the area is a circle of {radius_m:,.0f} m round the source "
               f"(configured), not a modelled extent; threshold {_fmt(threshold_ppm)} ppm{lab}{pop}.")
        why_zh = (f"{head_zh}；静风（{u_meas:.1f} m/s，低于 {settings.calm_below_mps:g} m/s）：高斯烟羽模型"
                  f"在静风下不适用，按配置取以泄漏源为圆心、半径 {radius_m:,.0f} 米的圆形区域，并非模型计算范围；"
                  f"阈值 {_fmt(threshold_ppm)} ppm{lab_zh}{pop_zh}。")
        return why, why_zh
    u_model = u_meas if u_model is None else u_model
    wind = f"wind from {wind_from:.0f}° ({_compass(wind_from)}) at {u_meas:.1f} m/s"
    wind_zh = f"风从 {wind_from:.0f}°（{_compass(wind_from)}）吹来，风速 {u_meas:.1f} m/s"
    if u_model > u_meas:
        wind += f" (modelled at the {u_model:g} m/s minimum)"
        wind_zh += f"（按最低 {u_model:g} m/s 计算）"
    extent = (f"ground level reaches {_fmt(threshold_ppm)} ppm{lab} up to {length_m:,.0f} m downwind, "
              f"{width_m:,.0f} m wide" if length_m > 0
              else f"ground level stays below {_fmt(threshold_ppm)} ppm{lab}")
    extent_zh = (f"地面浓度达到 {_fmt(threshold_ppm)} ppm{lab_zh}的范围：下风向 {length_m:,.0f} 米、"
                 f"最宽 {width_m:,.0f} 米" if length_m > 0
                 else f"地面浓度低于 {_fmt(threshold_ppm)} ppm{lab_zh}")
    notes, notes_zh = [], []
    if truncated:
        notes.append(f"cut at the {settings.max_range_m:,.0f} m computation limit")
        notes_zh.append(f"在 {settings.max_range_m:,.0f} 米计算边界处截断")
    lo, hi = BRIGGS_VALID_RANGE_M
    if length_m > 0 and not lo <= length_m <= hi:
        notes.append(f"extent outside the {lo:,.0f} m–{hi:,.0f} m range of the Briggs formulas")
        notes_zh.append(f"范围超出 Briggs 公式适用的 {lo:,.0f}–{hi:,.0f} 米")
    if sub.denser_than_air:
        notes.append("denser than air: the passive plume does not model dense-gas slumping")
        notes_zh.append("比空气重：被动扩散模型未考虑重气沉降")
    tail = ("; " + "; ".join(notes)) if notes else ""
    tail_zh = ("；" + "；".join(notes_zh)) if notes_zh else ""
    why = (f"{head}, {wind}, Pasquill class {stab}, release height {h:g} m: {extent} "
           f"(Gaussian plume, Turner 1970; Briggs rural σ){pop}{tail}.")
    why_zh = (f"{head_zh}，{wind_zh}，帕斯奎尔稳定度 {stab} 类，释放高度 {h:g} 米：{extent_zh}"
              f"（高斯烟羽模型，Turner 1970；Briggs 开阔地扩散参数）{pop_zh}{tail_zh}。")
    return why, why_zh


def estimate_plume(key: str, *, source_lon: float, source_lat: float, emission_g_per_s: float,
                   wind_from_deg: float, wind_speed_mps: float, stability: str,
                   threshold_ppm: float, threshold_label: str = "", threshold_label_zh: str = "",
                   release_height_m: float = 0.0, population: PopulationPoints | None = None,
                   facilities: Facilities | None = None,
                   settings: PlumeSettings = DEFAULT_PLUME_SETTINGS) -> PlumeEstimate:
    """Ground-level footprint above ``threshold_ppm`` of a continuous release, and who is in it.

    The emission rate is an input (g/s): from the leak's hole and pressure, or a mass over a
    time. Wind is from the nearest weather station: the direction it blows FROM (degrees
    true) and its speed at 10 m, used unchanged at the release height. The footprint is
    computed on downwind stations in the plume's frame laid in ``settings.metric_crs``
    (UTM 48N): its crosswind edges are exact (the plume is Gaussian in y), its far edge found
    by root-finding; it is then returned in WGS84. People and facilities are counted inside
    the footprint with ``shapely.contains_xy`` in metric coordinates.
    """
    sub = substance(key)
    lon = _finite("source_lon", source_lon)
    lat = _finite("source_lat", source_lat)
    if abs(lon) > 180 or abs(lat) > 90:
        raise InvalidValueError(f"source lon/lat out of range: {lon}, {lat} (WGS84 degrees, lon first)")
    q = _finite("emission_g_per_s", emission_g_per_s, minimum=0.0)
    h = _finite("release_height_m", release_height_m, minimum=0.0)
    t_ppm = _finite("threshold_ppm", threshold_ppm, minimum=0.0, strict=True)
    stab = _stability(stability)
    u_meas = _finite("wind_speed_mps", wind_speed_mps, minimum=0.0)
    u_model = _model_wind(u_meas, settings)
    calm = u_model is None
    wind_from = float(wind_from_deg)
    if not calm:
        wind_from = _finite("wind_from_deg", wind_from_deg) % 360.0
    t_mg = float(ppm_to_mg_m3(t_ppm, sub.molar_mass_g_per_mol))

    fwd, inv = _transformers(settings.metric_crs)
    frame = _frame(lon, lat, 0.0 if calm else wind_from, settings.metric_crs)
    truncated = False
    if calm:
        metric: BaseGeometry = Point(frame.e0, frame.n0).buffer(settings.calm_radius_m, quad_segs=32)
        length, width = settings.calm_radius_m, 2.0 * settings.calm_radius_m
    elif q == 0.0:
        metric, length, width = Polygon(), 0.0, 0.0
    else:
        u = u_model if u_model is not None else settings.min_wind_mps  # not calm: never None
        rings, length, width, truncated = _footprint_local(q, u, stab, h, t_mg, settings)
        polys = [shapely.make_valid(Polygon(frame.to_metric(r))) for r in rings]
        metric = shapely.union_all(polys) if polys else Polygon()
    footprint = shapely.transform(metric, lambda c: np.column_stack(inv.transform(c[:, 0], c[:, 1])))

    people = math.nan  # not counted without population data
    if population is not None:
        people = 0.0
        if population.lon.size and not metric.is_empty:
            pe, pn = fwd.transform(population.lon, population.lat)
            inside = shapely.contains_xy(metric, np.asarray(pe), np.asarray(pn))
            people = float(np.sum(population.people[inside]))
    fac_ids: tuple[str, ...] = ()
    if facilities is not None and facilities.lon.size and not metric.is_empty:
        fe, fn = fwd.transform(facilities.lon, facilities.lat)
        inside = shapely.contains_xy(metric, np.asarray(fe), np.asarray(fn))
        fac_ids = tuple(i for i, hit in zip(facilities.ids, inside, strict=True) if hit)

    exposure = _exposure_text(people, population is not None,
                              None if facilities is None else len(fac_ids))
    why, why_zh = _why(sub, q, wind_from, u_meas, u_model, stab, h, t_ppm,
                       (threshold_label, threshold_label_zh), calm, settings.calm_radius_m, length,
                       width, truncated, settings, exposure)
    return PlumeEstimate(
        substance=sub.key, emission_g_per_s=q, wind_from_deg=wind_from, wind_speed_mps=u_meas,
        model_wind_speed_mps=math.nan if u_model is None else u_model, stability=stab,
        release_height_m=h, threshold_ppm=t_ppm, threshold_mg_m3=t_mg, threshold_label=threshold_label,
        calm=calm, truncated=truncated, footprint=footprint, downwind_length_m=float(length),
        max_width_m=float(width), area_m2=float(metric.area), people_inside=people,
        facility_ids_inside=fac_ids, why=why, why_zh=why_zh)


def ground_concentration_mg_m3_at(lon: float | np.ndarray, lat: float | np.ndarray, *, key: str,
                                  source_lon: float, source_lat: float, emission_g_per_s: float,
                                  wind_from_deg: float, wind_speed_mps: float, stability: str,
                                  release_height_m: float = 0.0,
                                  settings: PlumeSettings = DEFAULT_PLUME_SETTINGS) -> np.ndarray:
    """Ground-level concentration (mg/m³) at lon/lat points; NaN everywhere in calm.

    Same model and wind handling as ``estimate_plume``. Divide by ``ppm_to_mg_m3(1, M)`` or
    use ``mg_m3_to_ppm`` for ppm.
    """
    substance(key)
    u_model = _model_wind(wind_speed_mps, settings)
    lon_a, lat_a = np.asarray(lon, float), np.asarray(lat, float)
    if u_model is None:
        return np.full(np.broadcast(lon_a, lat_a).shape, np.nan)
    wind_from = _finite("wind_from_deg", wind_from_deg) % 360.0
    frame = _frame(_finite("source_lon", source_lon), _finite("source_lat", source_lat), wind_from,
                   settings.metric_crs)
    fwd, _ = _transformers(settings.metric_crs)
    e, n = fwd.transform(lon_a, lat_a)
    x, y = frame.from_metric(np.asarray(e), np.asarray(n))
    return gaussian_plume_mg_m3(emission_g_per_s, u_model, x, y, 0.0, stability=stability,
                                release_height_m=release_height_m)


@dataclass(frozen=True, slots=True)
class EvacuationZones:
    """Hot zone (the red level: IDLH, or 50 % LEL for VOC) inside the warm zone (short-term OEL)."""

    hot: PlumeEstimate
    warm: PlumeEstimate


def evacuation_zones(key: str, *, source_lon: float, source_lat: float, emission_g_per_s: float,
                     wind_from_deg: float, wind_speed_mps: float, stability: str,
                     release_height_m: float = 0.0, thresholds: GasThresholds | None = None,
                     population: PopulationPoints | None = None,
                     facilities: Facilities | None = None,
                     settings: PlumeSettings = DEFAULT_PLUME_SETTINGS) -> EvacuationZones:
    """Hot and warm zones of a release with the substance's (or a site's) thresholds.

    In calm both are the configured circle: the model says nothing about either.
    """
    sub = substance(key)
    th = thresholds if thresholds is not None else DEFAULT_GAS_THRESHOLDS[sub.key]
    default = DEFAULT_GAS_THRESHOLDS[sub.key]
    if not math.isclose(th.red_ppm, default.red_ppm):
        hot = ("hot zone, site setting", "热区，现场设定")
    elif sub.key == "VOC":
        hot = ("hot zone, 50 % LEL", "热区，50% LEL")
    else:
        hot = ("hot zone, IDLH", "热区，IDLH")
    if not math.isclose(th.warm_zone_ppm, default.warm_zone_ppm):
        warm = ("warm zone, site setting", "温区，现场设定")
    else:
        warm = ("warm zone, " + _WARM_BASIS[sub.key][0], "温区，" + _WARM_BASIS[sub.key][1])

    def zone(threshold_ppm: float, label: tuple[str, str]) -> PlumeEstimate:
        return estimate_plume(sub.key, source_lon=source_lon, source_lat=source_lat,
                              emission_g_per_s=emission_g_per_s, wind_from_deg=wind_from_deg,
                              wind_speed_mps=wind_speed_mps, stability=stability,
                              threshold_ppm=threshold_ppm, threshold_label=label[0],
                              threshold_label_zh=label[1], release_height_m=release_height_m,
                              population=population, facilities=facilities, settings=settings)

    return EvacuationZones(hot=zone(th.hot_zone_ppm, hot), warm=zone(th.warm_zone_ppm, warm))

