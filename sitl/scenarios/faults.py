"""Faulty sensors in a scenario: stuck, spiking and dead devices.

- ``stuck``: from ``from_h`` (to ``to_h``) the record reads ``value`` (default: its value at
  ``from_h``) at every report — a frozen logger or a seized vane. The persistence test of
  quality control flags it once a whole check window is flat.
- ``spike``: at ``from_h`` and every ``every_h`` after (to ``to_h``), one report reads
  ``value`` — an electrical glitch or a fault code. Each spike lasts one reporting
  interval, so exactly one report carries it.
- ``dead``: from ``from_h`` (to ``to_h``) the device sends nothing; its battery runs down
  over ``drain_h`` hours before (the health record ``battery``).

``record`` names the SenML record (default: the kind's primary record); a dead device
loses every record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .flood import ScenarioError, number

__all__ = ["FAULT_TYPES", "Fault"]

FAULT_TYPES = ("stuck", "spike", "dead")
_EPS_S = 1e-6


@dataclass(frozen=True, slots=True)
class Fault:
    """One faulty sensor: what goes wrong, when, and (for stuck and spike) with which value."""

    sensor_id: str
    type: Literal["stuck", "spike", "dead"]
    from_h: float
    to_h: float | None = None
    record: str | None = None
    value: float | None = None
    every_h: float | None = None
    drain_h: float = 12.0
    why: str = ""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, where: str) -> Fault:
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        kind = raw.get("type")
        if kind not in FAULT_TYPES:
            raise ScenarioError(f"{where}: type must be one of {', '.join(FAULT_TYPES)}, got {kind!r}")
        sensor = raw.get("sensor")
        if not isinstance(sensor, str):
            raise ScenarioError(f"{where}: 'sensor' (an id) is required")
        record = raw.get("record")
        if record is not None and (not isinstance(record, str) or kind == "dead"):
            raise ScenarioError(f"{where}: 'record' is a record name, and a dead device loses every record")
        if kind == "spike" and "value" not in raw:
            raise ScenarioError(f"{where}: a spike needs its 'value'")
        fault = cls(
            sensor, kind, number(raw, "from_h", where),
            None if raw.get("to_h") is None else number(raw, "to_h", where), record,
            None if raw.get("value") is None else number(raw, "value", where),
            None if raw.get("every_h") is None else number(raw, "every_h", where),
            number(raw, "drain_h", where, 12.0), str(raw.get("why", "")))
        if fault.to_h is not None and fault.to_h <= fault.from_h:
            raise ScenarioError(f"{where}: to_h must be after from_h")
        if fault.every_h is not None and fault.every_h <= 0:
            raise ScenarioError(f"{where}: every_h must be positive")
        return fault

    def covers(self, elapsed_s: float) -> bool:
        """True while the fault is in force (for a spike: between its first and last spike)."""
        # times within a microsecond of a boundary count as on it (reports land exactly on the hour)
        return elapsed_s >= self.from_h * 3600.0 - _EPS_S and (self.to_h is None
                                                               or elapsed_s < self.to_h * 3600.0 - _EPS_S)

    def spike_at(self, elapsed_s: float, interval_s: float) -> bool:
        """True when a report at ``elapsed_s`` carries a spike: spike k spans [from + k·every, + interval)."""
        if self.type != "spike" or not self.covers(elapsed_s):
            return False
        since_s = elapsed_s - self.from_h * 3600.0 + _EPS_S
        period_s = (self.every_h or 0.0) * 3600.0
        k = 0 if not period_s else math.floor(since_s / period_s)
        return since_s - k * period_s < interval_s

    def apply(self, records: dict[str, float] | None, elapsed_s: float, *, interval_s: float, primary: str,
              clean: Callable[[float], dict[str, float] | None]) -> dict[str, float] | None:
        """The records a faulty device reports at ``elapsed_s`` (``clean``: its values without faults)."""
        if records is None or not self.covers(elapsed_s):
            return records
        if self.type == "dead":
            return None
        record = self.record or primary
        if self.type == "spike":
            if self.spike_at(elapsed_s, interval_s) and self.value is not None:
                return {**records, record: self.value}
            return records
        value = self.value
        if value is None:
            held = clean(self.from_h * 3600.0) or {}
            value = held.get(record)
            if value is None:
                return records
        return {**records, record: value}

    def battery_pct(self, elapsed_s: float, normal_pct: float) -> float:
        """The battery of a device that is going to die: normal, then down to 2 % at ``from_h``."""
        if self.type != "dead":
            return normal_pct
        left_h = self.from_h - elapsed_s / 3600.0
        if left_h >= self.drain_h:
            return normal_pct
        return max(2.0, 2.0 + (normal_pct - 2.0) * left_h / self.drain_h)
