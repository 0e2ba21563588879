"""Scripted slope movement: GNSS displacement, crack opening, tilt and soil moisture.

The slope moves along its fall line (``azimuth_deg``, degrees true, the direction of
movement) at the constant creep rate ``v_c`` until ``accel_start_h`` (t_a), then follows
the inverse-velocity law of Fukuzono (1985, α = 2) towards failure at ``failure_h`` (t_f):

    v(t) = A / (t_f − t),  A = v_c · (t_f − t_a)   (continuous at t_a),
    D(t) = v_c · t_a + A · ln((t_f − t_a) / (t_f − t))   for t_a ≤ t < t_f,

so 1/v falls linearly to zero at t_f. Without ``accel_start_h`` the slope only creeps.
The sensors on the slide body are carried away shortly before t_f: they stop reporting
``lost_before_min`` minutes before it (the displacement itself diverges at t_f).

- GNSS station: horizontal displacement ``share`` × D (+ ``offset_mm`` accumulated before the
  scenario) split into east and north along the azimuth; ``up`` sinks by tan(``dip_deg``)
  times the horizontal displacement (movement plunging along the slip surface).
- Crack meter: opening ``offset_mm`` + ``share`` × D.
- Inclinometer: tilt along the fall line ``x0_deg`` + ``deg_per_mm`` × D, across it 15 % of that.
- Soil-moisture probe: θ = θ_s − (θ_s − θ_0) · exp(−P / ``scale_mm``), P the rain at its
  ``gauge`` since the start: a wetting curve approaching saturation θ_s (a project choice,
  not a soil-physics model; the scenario only needs moisture to follow the rain).

Displacements are the station's filtered solution (noise-free, µm rounding): the raw
millimetre noise of a GNSS fix would need the hourly filtering the slope models assume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .flood import ScenarioError, number

__all__ = ["SlopeMotion", "SlopeScript"]

_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class SlopeMotion:
    """Displacement along the fall line: creep, then the inverse-velocity stage to failure."""

    creep_mm_per_day: float
    accel_start_h: float | None = None
    failure_h: float | None = None
    lost_before_min: float = 10.0

    def __post_init__(self) -> None:
        if self.creep_mm_per_day <= 0:
            raise ScenarioError("creep_mm_per_day must be positive")
        if (self.accel_start_h is None) != (self.failure_h is None):
            raise ScenarioError("accel_start_h and failure_h go together")
        if self.failure_h is not None and self.accel_start_h is not None and not self.failure_h > self.accel_start_h:
            raise ScenarioError("failure_h must be after accel_start_h")

    @property
    def a_mm(self) -> float:
        """Fukuzono's A for α = 2 (mm): v = A / (t_f − t) with times in days."""
        if self.failure_h is None or self.accel_start_h is None:
            return math.nan
        return self.creep_mm_per_day * (self.failure_h - self.accel_start_h) / 24.0

    def lost(self, elapsed_s: float) -> bool:
        """True once the slide has carried the body's sensors away."""
        return self.failure_h is not None and elapsed_s >= self.failure_h * 3600.0 - self.lost_before_min * 60.0

    def velocity_mm_per_day(self, elapsed_s: float) -> float:
        if self.failure_h is None or self.accel_start_h is None or elapsed_s <= self.accel_start_h * 3600.0:
            return self.creep_mm_per_day
        left_d = (self.failure_h * 3600.0 - elapsed_s) / _DAY_S
        return math.inf if left_d <= 0 else self.a_mm / left_d

    def displacement_mm(self, elapsed_s: float) -> float:
        """Movement since the scenario start (mm); infinite from t_f on."""
        v_c = self.creep_mm_per_day
        if self.failure_h is None or self.accel_start_h is None or elapsed_s <= self.accel_start_h * 3600.0:
            return v_c * elapsed_s / _DAY_S
        t_a, t_f = self.accel_start_h * 3600.0, self.failure_h * 3600.0
        if elapsed_s >= t_f:
            return math.inf
        return v_c * t_a / _DAY_S + self.a_mm * math.log((t_f - t_a) / (t_f - elapsed_s))


@dataclass(frozen=True, slots=True)
class _Part:
    role: str  # gnss | crack | tilt | soil
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SlopeScript:
    """One monitored slope: its motion, fall line and the sensors on it."""

    slope_id: str
    motion: SlopeMotion
    azimuth_deg: float
    dip_deg: float
    parts: Mapping[str, _Part]

    @classmethod
    def from_mapping(cls, slope_id: str, raw: Mapping[str, Any], *, where: str) -> SlopeScript:
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        accel = raw.get("accel_start_h")
        fail = raw.get("failure_h")
        try:
            motion = SlopeMotion(number(raw, "creep_mm_per_day", where),
                                 None if accel is None else number(raw, "accel_start_h", where),
                                 None if fail is None else number(raw, "failure_h", where),
                                 number(raw, "lost_before_min", where, 10.0))
        except ScenarioError as err:
            if str(err).startswith(where):
                raise
            raise ScenarioError(f"{where}: {err}") from None
        parts: dict[str, _Part] = {}
        needs = {"gnss": ("share",), "crack": ("share",), "tilt": ("deg_per_mm",),
                 "soil": ("start_pct", "saturation_pct", "scale_mm")}
        for role, keys in needs.items():
            for sid, p in (raw.get(role) or {}).items():
                w = f"{where}.{role}.{sid}"
                for key in keys:
                    number(p, key, w)
                if role == "soil" and not isinstance(p.get("gauge"), str):
                    raise ScenarioError(f"{w}: 'gauge' (the rain sensor that wets it) is required")
                if str(sid) in parts:
                    raise ScenarioError(f"{w}: sensor listed twice on the slope")
                parts[str(sid)] = _Part(role, dict(p))
        return cls(slope_id, motion, number(raw, "azimuth_deg", where), number(raw, "dip_deg", where, 20.0),
                   parts)

    def records(self, sensor_id: str, elapsed_s: float,
                rain_mm: Callable[[str, float], float]) -> dict[str, float] | None:
        """The records of one sensor on the slope; None once the slide has taken it."""
        part = self.parts.get(sensor_id)
        if part is None:
            return None
        if self.motion.lost(elapsed_s):
            return None
        p = part.params
        if part.role == "soil":
            theta0, theta_s = float(p["start_pct"]), float(p["saturation_pct"])
            wet = rain_mm(str(p["gauge"]), elapsed_s)
            return {"moisture": round(theta_s - (theta_s - theta0) * math.exp(-wet / float(p["scale_mm"])), 2)}
        d = self.motion.displacement_mm(elapsed_s)
        if part.role == "tilt":
            tilt = float(p["deg_per_mm"]) * d
            return {"tilt_x": round(float(p.get("x0_deg", 0.0)) + tilt, 4),
                    "tilt_y": round(float(p.get("y0_deg", 0.0)) + 0.15 * tilt, 4)}
        horizontal = float(p.get("offset_mm", 0.0)) + float(p["share"]) * d
        if part.role == "crack":
            return {"opening": round(horizontal, 3)}
        az = math.radians(self.azimuth_deg)
        return {"east": round(horizontal * math.sin(az), 3), "north": round(horizontal * math.cos(az), 3),
                "up": round(-horizontal * math.tan(math.radians(self.dip_deg)), 3)}

    def horizontal_mm(self, sensor_id: str, elapsed_s: float) -> float:
        """A GNSS station's or crack meter's scripted displacement (mm), unrounded."""
        p = self.parts[sensor_id].params
        return float(p.get("offset_mm", 0.0)) + float(p["share"]) * self.motion.displacement_mm(elapsed_s)
