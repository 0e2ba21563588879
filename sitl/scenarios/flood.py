"""Scripted flood scenario: each sensor's value at a simulated time, from ``scenario.yaml``.

Reproducible: a value depends only on the script, the sensor and the time since start
(level noise is drawn from a generator seeded by sensor, seed and whole second).

``scenario.yaml`` holds named scenarios under ``scenarios:`` (docs/scenarios.md); this
module reads the levels and rain of one of them (``summer_flood`` by default). A file
without ``scenarios:`` is one flood script at the top level, as before::

    seed: 7
    levels:
      cuntan-level: {baseline_m: 176.0, peak_m: 184.2, rise_start_h: 1.0, rise_end_h: 9.0, noise_m: 0.02}
    rain:
      interval_s: 300          # default report interval: a value is the rain of (t - interval, t]
      storms:
        - {start_h: 2.0, end_h: 5.0, totals_mm: {rain-longxing: 72.0}}

A level stays at ``baseline_m`` until ``rise_start_h``, rises along a smoothstep to
``peak_m`` at ``rise_end_h`` and holds there (without ``peak_m`` it holds ``baseline_m``).
A storm's rain rate over [start, end] is a half sine, so its cumulative rain is
total * (1 - cos(pi x)) / 2 and the amounts of consecutive intervals add up to the total
exactly (up to rounding to 0.01 mm). A long storm may come in ``pulses``: the rate times
(1 + pulse_depth · sin(2π · pulses · x)), which keeps the total. With ``rain.bucket_mm``
(e.g. 0.1) a gauge reports whole tips of its bucket, as a tipping bucket does: the amounts
still add up to the total, to within one tip.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_SCENARIO", "FloodScript", "LevelScript", "RainScript", "ScenarioError", "Storm",
           "number", "read_scenario_file", "select_scenario", "value_at"]

DEFAULT_SCENARIO = "summer_flood"


class ScenarioError(Exception):
    """A scenario file that cannot be used."""


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """The parsed ``scenario.yaml`` (a mapping), or ``ScenarioError`` naming the file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ScenarioError(f"{p}: cannot read: {err}") from err
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}: expected a mapping")
    return data


def select_scenario(data: Mapping[str, Any], name: str | None = None, *,
                    origin: str = "scenario") -> tuple[str, Mapping[str, Any]]:
    """``(name, script)`` of one named scenario; a file without ``scenarios:`` is itself the script.

    Top-level ``seed`` and ``synthetic`` apply to every scenario that does not set its own.
    """
    named = data.get("scenarios")
    if named is None:
        return name or DEFAULT_SCENARIO, data
    if not isinstance(named, dict) or not named:
        raise ScenarioError(f"{origin}: 'scenarios' must be a mapping of name: script")
    wanted = name or str(data.get("default", DEFAULT_SCENARIO))
    script = named.get(wanted)
    if not isinstance(script, dict):
        raise ScenarioError(f"{origin}: no scenario {wanted!r} (there are: {', '.join(named)})")
    merged = {k: data[k] for k in ("seed", "synthetic") if k in data}
    merged.update(script)
    return wanted, merged


@dataclass(frozen=True, slots=True)
class LevelScript:
    sensor_id: str
    baseline_m: float
    peak_m: float
    rise_start_h: float
    rise_end_h: float
    noise_m: float = 0.0
    seed: int = 0

    def level_m(self, elapsed_s: float, *, noise: bool = True) -> float:
        h = elapsed_s / 3600.0
        if h <= self.rise_start_h:
            x = 0.0
        elif h >= self.rise_end_h:
            x = 1.0
        else:
            x = (h - self.rise_start_h) / (self.rise_end_h - self.rise_start_h)
        smooth = x * x * (3.0 - 2.0 * x)
        value = self.baseline_m + (self.peak_m - self.baseline_m) * smooth
        if noise and self.noise_m > 0:
            rng = random.Random(f"{self.seed}:{self.sensor_id}:{math.floor(elapsed_s)}")
            value += self.noise_m * (2.0 * rng.random() - 1.0)
        return round(value, 3)


@dataclass(frozen=True, slots=True)
class Storm:
    start_h: float
    end_h: float
    total_mm: float
    pulses: int = 0  # rain pulses within the storm (0: one smooth half sine)
    pulse_depth: float = 0.0  # 0..1: how far the rate swings about the half sine

    def cumulative_mm(self, elapsed_s: float) -> float:
        h = elapsed_s / 3600.0
        if h <= self.start_h:
            return 0.0
        if h >= self.end_h:
            return self.total_mm
        x = (h - self.start_h) / (self.end_h - self.start_h)
        smooth = (1.0 - math.cos(math.pi * x)) / 2.0
        if not self.pulses or not self.pulse_depth:
            return self.total_mm * smooth
        # rate ∝ sin(πx)(1 + a sin(2πnx)): the pulse term integrates to zero over the storm,
        # so the total is kept exactly; its integral from 0 to x in closed form.
        n, a = self.pulses, self.pulse_depth
        lo, hi = (2 * n - 1) * math.pi, (2 * n + 1) * math.pi
        pulse = (math.pi / 2.0) * 0.5 * (math.sin(lo * x) / lo - math.sin(hi * x) / hi)
        return self.total_mm * (smooth + a * pulse)


@dataclass(frozen=True, slots=True)
class RainScript:
    sensor_id: str
    storms: tuple[Storm, ...]
    interval_s: float = 300.0
    bucket_mm: float | None = None  # a tipping bucket's resolution: amounts in whole tips

    def rain_mm(self, elapsed_s: float, interval_s: float | None = None) -> float:
        """Rain in (t - interval, t]; zero outside every storm."""
        dt = self.interval_s if interval_s is None else interval_s
        if self.bucket_mm:
            b = self.bucket_mm
            tips = math.floor(self.cumulative_mm(elapsed_s) / b + 1e-9) - math.floor(
                self.cumulative_mm(elapsed_s - dt) / b + 1e-9)
            return round(max(tips, 0) * b, 2)
        total = sum(s.cumulative_mm(elapsed_s) - s.cumulative_mm(elapsed_s - dt) for s in self.storms)
        return round(max(total, 0.0), 2)

    def cumulative_mm(self, elapsed_s: float) -> float:
        """Rain since the scenario start (mm), unrounded."""
        return sum(s.cumulative_mm(elapsed_s) for s in self.storms)


def value_at(spec: LevelScript | RainScript, sim_time: datetime, *, start: datetime,
             interval_s: float | None = None) -> float:
    """The scripted value at ``sim_time``: a level (m) or the rain of the interval ending then (mm)."""
    if sim_time.tzinfo is None or start.tzinfo is None:
        raise ValueError("sim_time and start must be timezone-aware")
    elapsed_s = (sim_time - start).total_seconds()
    if isinstance(spec, LevelScript):
        return spec.level_m(elapsed_s)
    return spec.rain_mm(elapsed_s, interval_s)


def number(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    """``data[key]`` as a finite float (``default`` when absent), else ``ScenarioError`` naming ``where``."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {data!r}")
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError(f"{where}: {key!r} must be a number, got {v!r}")
    return float(v)


_num = number


@dataclass(frozen=True, slots=True)
class FloodScript:
    """The scripted values of every sensor named in a scenario file."""

    levels: Mapping[str, LevelScript]
    rain: Mapping[str, RainScript]
    duration_h: float | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, scenario: str | None = None) -> FloodScript:
        """The levels and rain of ``scenario`` (default: the file's ``default``, else summer_flood)."""
        return cls.from_mapping(read_scenario_file(path), origin=str(path), scenario=scenario)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "scenario",
                     scenario: str | None = None) -> FloodScript:
        if "scenarios" in data:
            name, data = select_scenario(data, scenario, origin=origin)
            origin = f"{origin}: scenarios.{name}"
        seed = int(data.get("seed", 0))
        levels: dict[str, LevelScript] = {}
        for sid, raw in (data.get("levels") or {}).items():
            where = f"{origin}: levels.{sid}"
            if not isinstance(raw, dict):
                raise ScenarioError(f"{where}: expected a mapping")
            baseline = _num(raw, "baseline_m", where)
            peak = _num(raw, "peak_m", where, baseline)
            flat = "peak_m" not in raw
            spec = LevelScript(str(sid), baseline, peak,
                               _num(raw, "rise_start_h", where, 0.0),
                               _num(raw, "rise_end_h", where, 1.0 if flat else None),
                               _num(raw, "noise_m", where, 0.0), seed)
            if spec.rise_end_h <= spec.rise_start_h:
                raise ScenarioError(f"{where}: rise_end_h must be after rise_start_h")
            levels[str(sid)] = spec
        rain_raw = data.get("rain") or {}
        interval_s = _num(rain_raw, "interval_s", f"{origin}: rain", 300.0)
        storms: dict[str, list[Storm]] = {}
        for i, storm in enumerate(rain_raw.get("storms") or []):
            where = f"{origin}: rain.storms[{i}]"
            if not isinstance(storm, dict) or not isinstance(storm.get("totals_mm"), dict):
                raise ScenarioError(f"{where}: expected start_h, end_h and totals_mm")
            start_h, end_h = _num(storm, "start_h", where), _num(storm, "end_h", where)
            if end_h <= start_h:
                raise ScenarioError(f"{where}: end_h must be after start_h")
            pulses = int(_num(storm, "pulses", where, 0.0))
            depth = _num(storm, "pulse_depth", where, 0.0)
            if pulses < 0 or not 0.0 <= depth <= 1.0:
                raise ScenarioError(f"{where}: pulses must not be negative and pulse_depth must be in [0, 1]")
            for sid, total in storm["totals_mm"].items():
                t = _num({"total": total}, "total", f"{where}.totals_mm.{sid}")
                if t < 0:
                    raise ScenarioError(f"{where}.totals_mm.{sid}: must not be negative")
                storms.setdefault(str(sid), []).append(Storm(start_h, end_h, t, pulses, depth))
        bucket = rain_raw.get("bucket_mm")
        bucket_mm = None if bucket is None else _num(rain_raw, "bucket_mm", f"{origin}: rain")
        if bucket_mm is not None and bucket_mm <= 0:
            raise ScenarioError(f"{origin}: rain.bucket_mm must be positive")
        rain = {sid: RainScript(sid, tuple(s), interval_s, bucket_mm) for sid, s in storms.items()}
        duration = data.get("duration_h")
        return cls(levels, rain, float(duration) if duration is not None else None)

    @property
    def sensor_ids(self) -> frozenset[str]:
        return frozenset(self.levels) | frozenset(self.rain)

    def spec(self, sensor_id: str) -> LevelScript | RainScript | None:
        return self.levels.get(sensor_id) or self.rain.get(sensor_id)

    def value_at(self, sensor_id: str, sim_time: datetime, *, start: datetime,
                 interval_s: float | None = None) -> float | None:
        """The sensor's scripted value, or None when the script does not name it."""
        spec = self.spec(sensor_id)
        if spec is None:
            return None
        return value_at(spec, sim_time, start=start, interval_s=interval_s)
