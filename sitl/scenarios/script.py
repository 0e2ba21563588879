"""One named scenario of ``scenario.yaml``: every registered sensor's records at a simulated time.

The scenario combines the scripts of its hazards (``flood``: levels and rain; ``weather``;
``slope``; ``fire``; ``gas``), applies its ``faults`` and adds each device's health records
(``battery`` %, ``rssi`` dBm). Every sensor of the registry reports in every scenario: the
ones a hazard does not touch report quiet values (no rain, no smoke, background gas, a slope
creeping at its steady rate). Schema: docs/scenarios.md.

Reproducible: a value depends only on the file, the sensor and the time since the start.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sensors.kinds import KINDS
from sensors.registry import Registry, SensorSpec

from .expect import Expectations
from .faults import Fault
from .fire import FIRE_KINDS, FireScript, quiet_fire_records
from .flood import DEFAULT_SCENARIO, FloodScript, ScenarioError, number, read_scenario_file, select_scenario
from .gas import LeakScript, gas_records
from .shapes import wave
from .slope import SlopeScript
from .weather import NoonRow, WeatherScript

__all__ = ["BUCKET_MM", "DEFAULT_SCENARIO", "Scenario", "scenario_names"]

BUCKET_MM = 0.1  # a tipping bucket's resolution: a cumulative gauge counts whole tips
_QUIET_WEATHER = NoonRow(temp_c=25.0, rh_pct=70.0, wind_mps=2.0, wind_from_deg=45.0)
_SLOPE_KINDS = {"gnss_displacement": "gnss", "crack_meter": "crack", "inclinometer": "tilt", "soil_moisture": "soil"}
_LEVEL_KINDS = ("river_level", "reservoir_level")


def scenario_names(path: str | Path) -> list[str]:
    """The named scenarios of a file (a file without ``scenarios:`` holds one, summer_flood)."""
    data = read_scenario_file(path)
    named = data.get("scenarios")
    return [DEFAULT_SCENARIO] if named is None else [str(k) for k in named]


def _local_hours(text: Any, where: str) -> float | None:
    if text is None:
        return None
    try:
        hh, mm = str(text).split(":")
        h = int(hh) + int(mm) / 60.0
    except ValueError:
        raise ScenarioError(f"{where}: start_local must be HH:MM, got {text!r}") from None
    if not 0 <= h < 24:
        raise ScenarioError(f"{where}: start_local must be within a day, got {text!r}")
    return h


def _elevation(spec: SensorSpec) -> float | None:
    z = spec.properties.get("elevation_m")
    return float(z) if isinstance(z, (int, float)) and not isinstance(z, bool) else None


# Mean velocity over surface velocity in a natural channel: 0.85, the usual coefficient of the float
# method (Rantz et al. 1982, Measurement and Computation of Streamflow, USGS WSP 2175, vol. 1, ch. 8).
SURFACE_TO_MEAN = 0.85


def _surface_velocity(spec: SensorSpec, level_m: float) -> float | None:
    """A radar gauge's surface velocity at a level: its rating's flow over a rectangular section of the
    channel's width and the depth above zero flow, divided by SURFACE_TO_MEAN. None: the gauge does not
    measure velocity (no ``surface_velocity`` or no rating)."""
    sv = spec.properties.get("surface_velocity")
    rating = (spec.properties.get("routing") or {}).get("rating")
    if not isinstance(sv, dict) or not isinstance(rating, dict):
        return None
    depth = level_m - float(rating["h0_m"])
    if depth <= 0:
        return 0.0
    q = float(rating["a"]) * depth ** float(rating["b"])
    return round(q / (float(sv["channel_width_m"]) * depth) / SURFACE_TO_MEAN, 2)


def _substances(spec: SensorSpec) -> list[str]:
    s = spec.properties.get("substance")
    if isinstance(s, str):
        return [s]
    if isinstance(s, list) and s:
        return [str(x) for x in s]
    return [q.name for q in KINDS[spec.kind].records]


@dataclass(frozen=True, slots=True)
class Scenario:
    """The scripts, faults and expectations of one named scenario."""

    name: str
    name_zh: str
    seed: int
    duration_h: float | None
    start_local_h: float | None  # local time of day the scenario starts at (hours); None: whenever run
    flood: FloodScript
    weather: WeatherScript
    counters_mm: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    slopes: Mapping[str, SlopeScript] = field(default_factory=lambda: MappingProxyType({}))
    fire: FireScript | None = None
    leak: LeakScript | None = None
    background_ppm: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    faults: tuple[Fault, ...] = ()
    expect: Expectations = field(default_factory=Expectations)
    title: str = ""  # the scenario's display name (``name`` in the file)
    description: str = ""

    # -- reading -----------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, name: str | None = None) -> Scenario:
        return cls.from_mapping(read_scenario_file(path), name, origin=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], name: str | None = None, *,
                     origin: str = "scenario") -> Scenario:
        name, raw = select_scenario(data, name, origin=origin)
        where = f"{origin}: scenarios.{name}" if "scenarios" in data else origin
        start_local_h = _local_hours(raw.get("start_local"), where)
        flood = FloodScript.from_mapping(raw, origin=where)
        weather_raw = raw.get("weather")
        day_h = start_local_h or 0.0  # without a start time, hour 0 counts as local midnight
        weather = (WeatherScript((_QUIET_WEATHER,), start_local_h=day_h) if weather_raw is None
                   else WeatherScript.from_mapping(weather_raw, start_local_h=day_h, where=f"{where}.weather"))
        rain_raw = raw.get("rain") or {}
        counters = {str(k): number(rain_raw.get("counters_mm"), k, f"{where}.rain.counters_mm")
                    for k in (rain_raw.get("counters_mm") or {})}
        slopes = {str(k): SlopeScript.from_mapping(str(k), v, where=f"{where}.slope.{k}")
                  for k, v in (raw.get("slope") or {}).items()}
        fire = None if raw.get("fire") is None else FireScript.from_mapping(raw["fire"], where=f"{where}.fire")
        gas_raw = raw.get("gas") or {}
        leak = None if gas_raw.get("leak") is None else LeakScript.from_mapping(gas_raw["leak"],
                                                                               where=f"{where}.gas.leak")
        background = {str(k): number(gas_raw.get("background_ppm"), k, f"{where}.gas.background_ppm")
                      for k in (gas_raw.get("background_ppm") or {})}
        faults = tuple(Fault.from_mapping(f, where=f"{where}.faults[{i}]")
                       for i, f in enumerate(raw.get("faults") or []))
        duration = raw.get("duration_h")
        return cls(name, str(raw.get("name_zh", "")), int(raw.get("seed", 0)),
                   None if duration is None else number(raw, "duration_h", where), start_local_h, flood, weather,
                   MappingProxyType(counters), MappingProxyType(slopes), fire, leak, MappingProxyType(background),
                   faults, Expectations.from_mapping(raw.get("expect"), where=f"{where}.expect"),
                   str(raw.get("name", name)), str(raw.get("description", "")))

    # -- values --------------------------------------------------------------------------------
    def rain_since_start_mm(self, sensor_id: str, elapsed_s: float) -> float:
        """Rain at a gauge (or a weather station) since the scenario start, unrounded."""
        script = self.flood.rain.get(sensor_id)
        return 0.0 if script is None else script.cumulative_mm(elapsed_s)

    def clean_records(self, spec: SensorSpec, elapsed_s: float, *,
                      interval_s: float | None = None) -> dict[str, float] | None:
        """The records the sensor would report without faults and health records (None: no report)."""
        sid, kind = spec.sensor_id, spec.kind
        dt = spec.interval_s if interval_s is None else interval_s
        if kind in _LEVEL_KINDS:
            level = self.flood.levels.get(sid)
            if level is None:
                return None
            h = level.level_m(elapsed_s)
            v = _surface_velocity(spec, h)
            return {"level": h} if v is None else {"level": h, "velocity": v}
        if kind == "rain_gauge":
            rain = self.flood.rain.get(sid)
            if spec.properties.get("cumulative"):
                tips = math.floor(self.rain_since_start_mm(sid, elapsed_s) / BUCKET_MM + 1e-9)
                return {"rain_total": round(self.counters_mm.get(sid, 0.0) + tips * BUCKET_MM, 1)}
            return {"rain": 0.0 if rain is None else rain.rain_mm(elapsed_s, dt)}
        if kind == "weather_station":
            out = self.weather.records(sid, elapsed_s, _elevation(spec))
            rain = self.flood.rain.get(sid)
            out["rain"] = 0.0 if rain is None else rain.rain_mm(elapsed_s, dt)
            return out
        if kind in _SLOPE_KINDS:
            slope = self.slopes.get(str(spec.properties.get("slope", "")))
            if slope is not None and sid in slope.parts:
                return slope.records(sid, elapsed_s, self.rain_since_start_mm)
            rest = {"gnss": {"east": 0.0, "north": 0.0, "up": 0.0}, "crack": {"opening": 0.0},
                    "tilt": {"tilt_x": 0.0, "tilt_y": 0.0}, "soil": {"moisture": 25.0}}
            return dict(rest[_SLOPE_KINDS[kind]])
        if kind in FIRE_KINDS:
            ambient = self.weather.records(sid, elapsed_s, _elevation(spec))["temp"]
            if self.fire is None:
                return quiet_fire_records(kind, ambient)
            return self.fire.records(kind, sid, elapsed_s, ambient)
        if kind == "gas_detector":
            if self.leak is None:
                return gas_records(_substances(spec), self.background_ppm)
            return self.leak.records(sid, _substances(spec), elapsed_s, self.background_ppm)
        return None

    def faults_of(self, sensor_id: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.sensor_id == sensor_id)

    def health_records(self, spec: SensorSpec, elapsed_s: float) -> dict[str, float]:
        """Battery (%: slow drain, or the run-down of a device about to die) and signal (dBm)."""
        crc = zlib.crc32(spec.sensor_id.encode())
        battery = 98.0 - 0.2 * elapsed_s / 86400.0 - (crc % 7)
        for f in self.faults_of(spec.sensor_id):
            battery = f.battery_pct(elapsed_s, battery)
        rssi = -(68.0 + crc % 22) + wave(elapsed_s, 53 * 60.0, 2.0, crc % 628 / 100.0)
        return {"battery": round(battery, 1), "rssi": float(round(rssi))}

    def records(self, spec: SensorSpec, elapsed_s: float, *,
                interval_s: float | None = None) -> dict[str, float] | None:
        """What the device publishes at ``elapsed_s``: its records with faults applied, and health."""
        dt = spec.interval_s if interval_s is None else interval_s

        def clean(t: float) -> dict[str, float] | None:
            return self.clean_records(spec, t, interval_s=dt)

        out = clean(elapsed_s)
        if out is None:
            return None
        primary = spec.quantity if spec.quantity in out else next(iter(out))
        for fault in self.faults_of(spec.sensor_id):
            out = fault.apply(out, elapsed_s, interval_s=dt, primary=primary, clean=clean)
            if out is None:
                return None
        return {**out, **self.health_records(spec, elapsed_s)}

    def records_at(self, spec: SensorSpec, sim_time: datetime, *, start: datetime,
                   interval_s: float | None = None) -> dict[str, float] | None:
        """``records`` at an aware simulated time, counting from ``start``."""
        if sim_time.tzinfo is None or start.tzinfo is None:
            raise ValueError("sim_time and start must be timezone-aware")
        return self.records(spec, (sim_time - start).total_seconds(), interval_s=interval_s)

    # -- checks --------------------------------------------------------------------------------
    def named_sensors(self) -> dict[str, str]:
        """Every sensor id the scenario names, with where (for error messages)."""
        out: dict[str, str] = {}
        for sid in self.flood.levels:
            out[sid] = "levels"
        for sid in self.flood.rain:
            out.setdefault(sid, "rain")
        for sid in self.counters_mm:
            out.setdefault(sid, "rain.counters_mm")
        for slope in self.slopes.values():
            for sid in slope.parts:
                out.setdefault(sid, f"slope.{slope.slope_id}")
        if self.fire is not None:
            for sid in self.fire.detectors:
                out.setdefault(sid, "fire.detectors")
        if self.leak is not None:
            for sid in self.leak.plateau_ppm:
                out.setdefault(sid, "gas.leak.plateau_ppm")
            out.setdefault(self.leak.wind_station, "gas.leak.wind_station")
        for sid in self.weather.wind_factor:
            out.setdefault(sid, "weather.stations")
        for f in self.faults:
            out.setdefault(f.sensor_id, "faults")
        for sid in self.expect.sensor_ids:
            out.setdefault(sid, "expect")
        return out

    def validate(self, registry: Registry) -> None:
        """Raise ``ScenarioError`` listing every sensor the scenario names wrongly for ``registry``."""
        problems: list[str] = []

        def kind_of(sid: str, where: str, kinds: Sequence[str]) -> SensorSpec | None:
            spec = registry.get(sid)
            if spec is None:
                problems.append(f"{where}: no sensor {sid!r} in the registry")
                return None
            if spec.kind not in kinds:
                problems.append(f"{where}: {sid!r} is a {spec.kind}, not a {' or '.join(kinds)}")
                return None
            return spec

        for sid in self.flood.levels:
            kind_of(sid, "levels", _LEVEL_KINDS)
        for sid in self.flood.rain:
            kind_of(sid, "rain.storms", ("rain_gauge", "weather_station"))
        for sid in self.counters_mm:
            spec = kind_of(sid, "rain.counters_mm", ("rain_gauge",))
            if spec is not None and not spec.properties.get("cumulative"):
                problems.append(f"rain.counters_mm: {sid!r} is not declared cumulative in the registry")
        for sid in self.weather.wind_factor:
            kind_of(sid, "weather.stations", ("weather_station",))
        roles = {v: k for k, v in _SLOPE_KINDS.items()}
        for slope in self.slopes.values():
            for sid, part in slope.parts.items():
                spec = kind_of(sid, f"slope.{slope.slope_id}.{part.role}", (roles[part.role],))
                if spec is not None and spec.properties.get("slope") != slope.slope_id:
                    problems.append(f"slope.{slope.slope_id}: {sid!r} is registered on slope "
                                    f"{spec.properties.get('slope')!r}")
                if part.role == "soil":
                    kind_of(str(part.params["gauge"]), f"slope.{slope.slope_id}.soil.{sid}.gauge", ("rain_gauge",))
        if self.fire is not None:
            for sid, p in self.fire.detectors.items():
                spec = kind_of(sid, "fire.detectors", FIRE_KINDS)
                if spec is not None and spec.kind == "fire_camera" and "bearing_deg" not in p:
                    problems.append(f"fire.detectors.{sid}: a camera needs bearing_deg")
        if self.leak is not None:
            for sid in self.leak.plateau_ppm:
                spec = kind_of(sid, "gas.leak.plateau_ppm", ("gas_detector",))
                if spec is not None and self.leak.substance not in _substances(spec):
                    problems.append(f"gas.leak: {sid!r} does not measure {self.leak.substance!r}")
            kind_of(self.leak.wind_station, "gas.leak.wind_station", ("weather_station",))
        for f in self.faults:
            spec = registry.get(f.sensor_id)
            if spec is None:
                problems.append(f"faults: no sensor {f.sensor_id!r} in the registry")
            elif f.record is not None and spec.quantity_spec(f.record) is None:
                problems.append(f"faults: a {spec.kind} has no record {f.record!r}")
        for sid in self.expect.sensor_ids:
            if sid not in registry and sid not in self.slopes:  # a slope's rain warning names the slope
                problems.append(f"expect: no sensor {sid!r} in the registry")
        if problems:
            raise ScenarioError(f"scenario {self.name!r}: " + "; ".join(problems))

    def reports(self, spec: SensorSpec) -> bool:
        """True when the scenario gives the sensor anything to publish."""
        return self.clean_records(spec, 0.0) is not None
