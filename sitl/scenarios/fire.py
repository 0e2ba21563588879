"""Scripted forest fire: what the smoke detectors, flame sensors and fire-watch cameras report.

A fire starts at ``ignition.at_h``; each detector starts to respond ``start_min`` minutes
later and reaches its peak ``rise_min`` minutes after that (a smoothstep):

- smoke detector: obscuration (%/m) from 0 to ``peak``;
- flame sensor: its temperature from the ambient air (the weather script at its height) to
  ``peak_c``, and ``flame`` 1 from ``flame_min`` minutes after ignition (0 before);
- fire-watch camera: detection ``confidence`` from 0 to ``peak`` and, while it is above 0,
  ``bearing``: degrees true (clockwise from north) from the camera to the detection, here
  ``bearing_deg`` with a ±0.3° wobble of the analytics.

Before the fire, and in a scenario without one, detectors read 0 (cameras report only a
confidence of 0, no bearing) and flame sensors the ambient temperature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .flood import ScenarioError, number
from .shapes import ramp, wave

__all__ = ["FIRE_KINDS", "FireScript", "quiet_fire_records"]

FIRE_KINDS = ("smoke_detector", "flame_sensor", "fire_camera")


def quiet_fire_records(kind: str, ambient_c: float) -> dict[str, float]:
    """What a fire detector reports with no fire in sight."""
    if kind == "smoke_detector":
        return {"obscuration": 0.0}
    if kind == "flame_sensor":
        return {"temp": round(ambient_c, 2), "flame": 0.0}
    return {"confidence": 0.0}


@dataclass(frozen=True, slots=True)
class FireScript:
    """One fire: where and when it starts and how each detector sees it."""

    lon: float
    lat: float
    at_h: float
    detectors: Mapping[str, Mapping[str, float]]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, where: str) -> FireScript:
        if not isinstance(raw, dict) or not isinstance(raw.get("ignition"), dict):
            raise ScenarioError(f"{where}: expected ignition: {{lon, lat, at_h}} and detectors")
        ign = raw["ignition"]
        detectors: dict[str, dict[str, float]] = {}
        for sid, p in (raw.get("detectors") or {}).items():
            w = f"{where}.detectors.{sid}"
            if not isinstance(p, dict):
                raise ScenarioError(f"{w}: expected a mapping")
            detectors[str(sid)] = {k: number(p, k, w) for k in p}
            for key in ("start_min", "rise_min"):
                number(p, key, w)
        return cls(number(ign, "lon", f"{where}.ignition"), number(ign, "lat", f"{where}.ignition"),
                   number(ign, "at_h", f"{where}.ignition"), detectors)

    def progress(self, sensor_id: str, elapsed_s: float) -> float:
        """0..1: how far the detector's response has come (0 for a detector not in the script)."""
        p = self.detectors.get(sensor_id)
        if p is None:
            return 0.0
        start_h = self.at_h + p["start_min"] / 60.0
        return ramp(elapsed_s / 3600.0, start_h, p["rise_min"] / 60.0)

    def records(self, kind: str, sensor_id: str, elapsed_s: float, ambient_c: float) -> dict[str, float]:
        p = self.detectors.get(sensor_id)
        if p is None:
            return quiet_fire_records(kind, ambient_c)
        x = self.progress(sensor_id, elapsed_s)
        if kind == "smoke_detector":
            return {"obscuration": round(p.get("peak", 10.0) * x, 3)}
        if kind == "flame_sensor":
            burning = elapsed_s >= (self.at_h + p.get("flame_min", p["start_min"] + p["rise_min"]) / 60.0) * 3600.0
            temp = ambient_c + (p.get("peak_c", 400.0) - ambient_c) * x
            return {"temp": round(temp, 2), "flame": 1.0 if burning else 0.0}
        confidence = round(p.get("peak", 0.9) * x, 3)
        if confidence <= 0.0:
            return {"confidence": 0.0}
        bearing = (p["bearing_deg"] + wave(elapsed_s, 5 * 60.0, 0.3)) % 360.0
        return {"confidence": confidence, "bearing": round(bearing, 2)}
