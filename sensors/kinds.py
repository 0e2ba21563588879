"""Sensor kinds: what each kind of field device reports, in which units, within which limits.

Every kind declares its SenML record names (``quantity``) and units, the physically
possible range of each (the "gross error" limits of WMO-No. 1269 and GHCN-Daily), and
the temporal limits the per-sensor quality checks use:

- ``step_max`` per ``step_base_s``: the largest plausible change between two consecutive
  readings (WMO "time consistency": Zahumenský 2004, *Guidelines on Quality Control
  Procedures for Data from Automatic Weather Stations*, WMO CBS, Table of maximum
  variances between successive 1-minute values: air temperature 3 °C, dew point 2 °C,
  relative humidity 10 %, wind speed 20 m/s, pressure 0.5 hPa). For readings further
  apart than the base the limit grows linearly with the gap (a project choice: generous,
  so that the step check flags spikes and jumps, not weather).
- ``flat_min_change`` over ``flat_window_s``: the least variability a working sensor
  shows (Zahumenský 2004, minimum required variability over 60 minutes: air temperature
  0.1 °C, humidity 1 %, wind speed 0.5 m/s, wind direction 10°); ``flat_ok`` is a value
  that may legitimately stay flat (no rain, no smoke, no gas).
- ``cumulative``: a counter that never decreases except through a reset to near zero
  (GHCN-Daily "internal consistency", Durre et al. 2010).

Units are SenML symbols (RFC 8428 §12.1, and the secondary units of RFC 8798 where the
primary registry has none, e.g. ``mm``, ``ppm``); a device must send exactly these.

Every kind also accepts the device-health records ``battery`` (%), ``rssi`` (dBm) and
``supply`` (V): they feed device health, not hazard models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = ["HEALTH_QUANTITIES", "KINDS", "GAS_SUBSTANCES", "Kind", "Quantity"]


@dataclass(frozen=True, slots=True)
class Quantity:
    """One SenML record a sensor reports, with its unit and its quality limits."""

    name: str
    unit: str
    valid_min: float
    valid_max: float
    step_max: float | None = None  # largest plausible change per step_base_s (None: no step check)
    step_base_s: float = 60.0
    flat_min_change: float | None = None  # least variability over flat_window_s (None: no flatline check)
    flat_window_s: float = 3600.0
    flat_ok: float | None = None  # a value allowed to stay flat (e.g. 0 mm of rain)
    cumulative: bool = False  # a counter: never decreases except by a reset to ~0
    health: bool = False  # device health, not a measurement of the hazard

    def with_range(self, valid_min: float, valid_max: float) -> Quantity:
        return replace(self, valid_min=valid_min, valid_max=valid_max)


HEALTH_QUANTITIES: Mapping[str, Quantity] = MappingProxyType({
    "battery": Quantity("battery", "%", 0.0, 100.0, health=True),
    "rssi": Quantity("rssi", "dBm", -150.0, 0.0, health=True),
    "supply": Quantity("supply", "V", 0.0, 60.0, health=True),
})

GAS_SUBSTANCES = ("nh3", "h2s", "cl2", "voc")
_COLOURS = ("blue", "yellow", "orange", "red")


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of sensor: its records (the first is the primary one) and its threshold keys."""

    name: str
    records: tuple[Quantity, ...]
    threshold_keys: frozenset[str] = frozenset()
    datum_required: bool = False
    quantities: Mapping[str, Quantity] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = {q.name: q for q in self.records}
        for name, q in HEALTH_QUANTITIES.items():
            merged.setdefault(name, q)
        object.__setattr__(self, "quantities", MappingProxyType(merged))

    @property
    def primary(self) -> Quantity:
        return self.records[0]

    @property
    def quantity(self) -> str:
        """The primary SenML record name."""
        return self.records[0].name

    @property
    def unit(self) -> str:
        return self.records[0].unit


_LEVEL_KEYS = frozenset({"warning_m", "guaranteed_m", "historical_max_m", "approach_m"})
_SLOPE_KEYS = frozenset({"v0_mm_per_day"})
_INF = math.inf

KINDS: Mapping[str, Kind] = MappingProxyType({k.name: k for k in (
    # Water level above the gauge's stated vertical datum (China: Wusong or Huanghai 1985).
    # A step of 1 m in 5 min is far beyond a river's rise (the Yangtze at Cuntan rises
    # by up to a few metres a day) but within a dam-break surge: beyond it, a spike.
    # Optional "velocity": the surface current, from a radar gauge that measures level and surface
    # velocity together (boats are refused legs against a current faster than they are). 15 m/s
    # is beyond any river's surface velocity; a step of 2 m/s in 5 min is a spike.
    Kind("river_level", (
        Quantity("level", "m", -_INF, _INF, step_max=1.0, step_base_s=300.0,
                 flat_min_change=0.005, flat_window_s=6 * 3600.0),
        Quantity("velocity", "m/s", 0.0, 15.0, step_max=2.0, step_base_s=300.0),
    ), _LEVEL_KEYS, datum_required=True),
    Kind("reservoir_level", (
        Quantity("level", "m", -_INF, _INF, step_max=0.5, step_base_s=300.0,
                 flat_min_change=0.002, flat_window_s=12 * 3600.0),
    ), _LEVEL_KEYS, datum_required=True),
    # Tipping-bucket gauge: "rain" is the amount in the interval ending at the time,
    # "rain_total" the bucket counter. 40 mm/min is WMO-No. 1269's upper limit of
    # precipitation intensity, so a 5-min value above 200 mm is impossible.
    Kind("rain_gauge", (
        Quantity("rain", "mm", 0.0, 200.0, flat_min_change=0.1, flat_window_s=3 * 3600.0, flat_ok=0.0),
        Quantity("rain_total", "mm", 0.0, 1e6, cumulative=True),
    ), frozenset({"blue_12h_mm", "yellow_6h_mm", "orange_3h_mm", "red_3h_mm"})),
    # Automatic weather station (limits: Zahumenský 2004, see module docstring).
    Kind("weather_station", (
        Quantity("temp", "Cel", -80.0, 60.0, step_max=3.0, flat_min_change=0.1),
        Quantity("humidity", "%RH", 0.0, 100.0, step_max=10.0, flat_min_change=1.0, flat_ok=100.0),
        Quantity("wind_speed", "m/s", 0.0, 75.0, step_max=20.0, flat_min_change=0.5, flat_ok=0.0),
        Quantity("wind_dir", "deg", 0.0, 360.0, flat_min_change=10.0),
        Quantity("dew_point", "Cel", -80.0, 35.0, step_max=2.0),
        Quantity("pressure", "Pa", 50_000.0, 110_000.0, step_max=50.0),
        Quantity("rain", "mm", 0.0, 200.0, flat_ok=0.0),
    )),
    # GNSS monitoring station on a slope: cumulative displacement from its reference
    # epoch (mm). 500 mm between two readings is a failure, not noise.
    Kind("gnss_displacement", (
        Quantity("east", "mm", -1e5, 1e5, step_max=500.0, step_base_s=3600.0),
        Quantity("north", "mm", -1e5, 1e5, step_max=500.0, step_base_s=3600.0),
        Quantity("up", "mm", -1e5, 1e5, step_max=500.0, step_base_s=3600.0),
        # derived by the service from east and north of the same epoch (or sent by the station)
        Quantity("horizontal", "mm", 0.0, 1.5e5, step_max=500.0, step_base_s=3600.0),
    ), _SLOPE_KEYS),
    Kind("crack_meter", (
        Quantity("opening", "mm", -100.0, 5000.0, step_max=200.0, step_base_s=3600.0),
    ), _SLOPE_KEYS),
    Kind("inclinometer", (
        Quantity("tilt_x", "deg", -90.0, 90.0, step_max=5.0, step_base_s=3600.0),
        Quantity("tilt_y", "deg", -90.0, 90.0, step_max=5.0, step_base_s=3600.0),
    )),
    # Volumetric water content of the soil (%).
    Kind("soil_moisture", (
        Quantity("moisture", "%", 0.0, 100.0, step_max=30.0, step_base_s=3600.0),
    ), frozenset({"saturation_pct"})),
    # Optical smoke detector: obscuration in % per metre (EN 54-7 / UL 268 alarm
    # sensitivities lie between about 1.6 and 12 %/m).
    Kind("smoke_detector", (
        Quantity("obscuration", "%/m", 0.0, 100.0, flat_ok=0.0),
    ), frozenset({"alarm_pct_per_m"})),
    # Flame / heat sensor.
    Kind("flame_sensor", (
        Quantity("temp", "Cel", -40.0, 1500.0),
        Quantity("flame", "/", 0.0, 1.0, flat_ok=0.0),
    ), frozenset({"alarm_c"})),
    # Fire-watch camera: a detection with a confidence (0..1) and the bearing to it.
    Kind("fire_camera", (
        Quantity("confidence", "/", 0.0, 1.0, flat_ok=0.0),
        Quantity("bearing", "deg", 0.0, 360.0),
    ), frozenset({"min_confidence"})),
    # Gas detector at a hazardous-chemical site, ppm by volume per substance (VOC as a
    # PID's isobutylene equivalent).
    Kind("gas_detector", tuple(
        Quantity(s, "ppm", 0.0, 10_000.0, flat_ok=0.0) for s in GAS_SUBSTANCES
    ), frozenset(f"{s}_{c}_ppm" for s in GAS_SUBSTANCES for c in _COLOURS)),
)})
