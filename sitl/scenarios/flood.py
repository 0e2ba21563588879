"""Scripted flood scenario: each sensor's value at a simulated time, from ``scenario.yaml``.

Reproducible: a value depends only on the script, the sensor and the time since start
(level noise is drawn from a generator seeded by sensor, seed and whole second).

``scenario.yaml``::

    seed: 7
    levels:
      cuntan-level: {baseline_m: 176.0, peak_m: 184.2, rise_start_h: 1.0, rise_end_h: 9.0, noise_m: 0.02}
    rain:
      interval_s: 300          # default report interval: a value is the rain of (t - interval, t]
      storms:
        - {start_h: 2.0, end_h: 5.0, totals_mm: {rain-longxing: 72.0}}

A level stays at ``baseline_m`` until ``rise_start_h``, rises along a smoothstep to
``peak_m`` at ``rise_end_h`` and holds there. A storm's rain rate over [start, end] is a
half sine, so its cumulative rain is total * (1 - cos(pi x)) / 2 and the amounts of
consecutive intervals add up to the total exactly (up to rounding to 0.01 mm).
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

__all__ = ["FloodScript", "LevelScript", "RainScript", "ScenarioError", "Storm", "value_at"]


class ScenarioError(Exception):
    """A scenario file that cannot be used."""


@dataclass(frozen=True, slots=True)
class LevelScript:
    sensor_id: str
    baseline_m: float
    peak_m: float
    rise_start_h: float
    rise_end_h: float
    noise_m: float = 0.0
    seed: int = 0

    def level_m(self, elapsed_s: float) -> float:
        h = elapsed_s / 3600.0
        if h <= self.rise_start_h:
            x = 0.0
        elif h >= self.rise_end_h:
            x = 1.0
        else:
            x = (h - self.rise_start_h) / (self.rise_end_h - self.rise_start_h)
        smooth = x * x * (3.0 - 2.0 * x)
        value = self.baseline_m + (self.peak_m - self.baseline_m) * smooth
        if self.noise_m > 0:
            rng = random.Random(f"{self.seed}:{self.sensor_id}:{math.floor(elapsed_s)}")
            value += self.noise_m * (2.0 * rng.random() - 1.0)
        return round(value, 3)


@dataclass(frozen=True, slots=True)
class Storm:
    start_h: float
    end_h: float
    total_mm: float

    def cumulative_mm(self, elapsed_s: float) -> float:
        h = elapsed_s / 3600.0
        if h <= self.start_h:
            return 0.0
        if h >= self.end_h:
            return self.total_mm
        x = (h - self.start_h) / (self.end_h - self.start_h)
        return self.total_mm * (1.0 - math.cos(math.pi * x)) / 2.0


@dataclass(frozen=True, slots=True)
class RainScript:
    sensor_id: str
    storms: tuple[Storm, ...]
    interval_s: float = 300.0

    def rain_mm(self, elapsed_s: float, interval_s: float | None = None) -> float:
        """Rain in (t - interval, t]; zero outside every storm."""
        dt = self.interval_s if interval_s is None else interval_s
        total = sum(s.cumulative_mm(elapsed_s) - s.cumulative_mm(elapsed_s - dt) for s in self.storms)
        return round(max(total, 0.0), 2)


def value_at(spec: LevelScript | RainScript, sim_time: datetime, *, start: datetime,
             interval_s: float | None = None) -> float:
    """The scripted value at ``sim_time``: a level (m) or the rain of the interval ending then (mm)."""
    if sim_time.tzinfo is None or start.tzinfo is None:
        raise ValueError("sim_time and start must be timezone-aware")
    elapsed_s = (sim_time - start).total_seconds()
    if isinstance(spec, LevelScript):
        return spec.level_m(elapsed_s)
    return spec.rain_mm(elapsed_s, interval_s)


def _num(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError(f"{where}: {key!r} must be a number, got {v!r}")
    return float(v)


@dataclass(frozen=True, slots=True)
class FloodScript:
    """The scripted values of every sensor named in a scenario file."""

    levels: Mapping[str, LevelScript]
    rain: Mapping[str, RainScript]
    duration_h: float | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> FloodScript:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ScenarioError(f"{p}: cannot read: {err}") from err
        if not isinstance(data, dict):
            raise ScenarioError(f"{p}: expected a mapping")
        return cls.from_mapping(data, origin=str(p))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "scenario") -> FloodScript:
        seed = int(data.get("seed", 0))
        levels: dict[str, LevelScript] = {}
        for sid, raw in (data.get("levels") or {}).items():
            where = f"{origin}: levels.{sid}"
            if not isinstance(raw, dict):
                raise ScenarioError(f"{where}: expected a mapping")
            spec = LevelScript(str(sid), _num(raw, "baseline_m", where), _num(raw, "peak_m", where),
                               _num(raw, "rise_start_h", where, 0.0), _num(raw, "rise_end_h", where),
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
            for sid, total in storm["totals_mm"].items():
                t = _num({"total": total}, "total", f"{where}.totals_mm.{sid}")
                if t < 0:
                    raise ScenarioError(f"{where}.totals_mm.{sid}: must not be negative")
                storms.setdefault(str(sid), []).append(Storm(start_h, end_h, t))
        rain = {sid: RainScript(sid, tuple(s), interval_s) for sid, s in storms.items()}
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
