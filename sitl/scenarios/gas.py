"""Scripted gas leak at a hazardous-chemical site: what its gas detectors read.

One substance leaks from ``start_h``: every detector's reading rises along a smoothstep over
``rise_min`` to its plateau (``plateau_ppm``, by detector), with a ±8 % plume meander of a
7-minute period, and, once the leak is isolated at ``end_h``, falls back over ``fall_min``.
The plateaus are the script's own numbers, ordered by the wind: the detector straight
downwind of the source reads most, the one upwind least (the unit tests check the order
against the wind of ``wind_station``). Every other substance, and every substance outside
the leak, reads its ``background_ppm`` (default 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .flood import ScenarioError, number
from .shapes import ramp, wave

__all__ = ["LeakScript", "gas_records"]


def gas_records(substances: Iterable[str], background: Mapping[str, float]) -> dict[str, float]:
    """Quiet readings of a detector's substances."""
    return {s: float(background.get(s, 0.0)) for s in substances}


@dataclass(frozen=True, slots=True)
class LeakScript:
    """One leak: substance, source, timing, the wind station that drives it, plateaus by detector."""

    site: str
    substance: str
    lon: float
    lat: float
    start_h: float
    rise_min: float
    end_h: float | None
    fall_min: float
    wind_station: str
    plateau_ppm: Mapping[str, float]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, where: str) -> LeakScript:
        if not isinstance(raw, dict) or not isinstance(raw.get("source"), dict):
            raise ScenarioError(f"{where}: expected site, substance, source: {{lon, lat}}, start_h, plateau_ppm")
        for key in ("site", "substance", "wind_station"):
            if not isinstance(raw.get(key), str):
                raise ScenarioError(f"{where}: {key!r} must be text")
        plateaus = raw.get("plateau_ppm")
        if not isinstance(plateaus, dict) or not plateaus:
            raise ScenarioError(f"{where}: plateau_ppm must map detector ids to ppm")
        ppm = {str(k): number(plateaus, k, f"{where}.plateau_ppm") for k in plateaus}
        if any(v < 0 for v in ppm.values()):
            raise ScenarioError(f"{where}.plateau_ppm: concentrations must not be negative")
        end = raw.get("end_h")
        return cls(raw["site"], raw["substance"], number(raw["source"], "lon", f"{where}.source"),
                   number(raw["source"], "lat", f"{where}.source"), number(raw, "start_h", where),
                   number(raw, "rise_min", where, 30.0), None if end is None else number(raw, "end_h", where),
                   number(raw, "fall_min", where, 30.0), raw["wind_station"], ppm)

    def leak_ppm(self, sensor_id: str, elapsed_s: float) -> float:
        """The leak's contribution at one detector (ppm), without background."""
        plateau = self.plateau_ppm.get(sensor_id, 0.0)
        h = elapsed_s / 3600.0
        shape = ramp(h, self.start_h, self.rise_min / 60.0)
        if self.end_h is not None:
            shape -= ramp(h, self.end_h, self.fall_min / 60.0)
        if shape <= 0.0:
            return 0.0
        return plateau * shape * (1.0 + wave(elapsed_s, 7 * 60.0, 0.08))

    def records(self, sensor_id: str, substances: Iterable[str], elapsed_s: float,
                background: Mapping[str, float]) -> dict[str, float]:
        out = gas_records(substances, background)
        if self.substance in out:
            out[self.substance] = round(out[self.substance] + self.leak_ppm(sensor_id, elapsed_s), 3)
        return out
