"""The service's sensing state: per-sensor QC, derived series, device health, maintenance.

Synchronous and clock-free (times are passed in): the runtime calls ``review`` on every
accepted reading before it is stored, ``tick`` periodically for staleness, and asks
``in_maintenance`` before a reading may open an incident.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sensors.health import HealthTracker, Transition
from sensors.model import QcNote, Reading, worst_flag
from sensors.quality import QualityControl
from sensors.registry import Registry

__all__ = ["MaintenanceWindow", "Sensing", "reading_wire"]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    window_id: int
    sensor_id: str
    start: datetime
    end: datetime
    reason: str
    by: str

    def covers(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.window_id, "sensor_id": self.sensor_id, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "reason": self.reason, "by": self.by}


class Sensing:
    """QC history, derived series, health and maintenance windows of every registered sensor."""

    def __init__(self, registry: Registry, *, stale_factor: float = 3.0, started: datetime | None = None) -> None:
        self.registry = registry
        self.qc = QualityControl(registry.values())
        self.health = HealthTracker(registry.values(), stale_factor=stale_factor, started=started)
        self._maintenance: dict[str, list[MaintenanceWindow]] = {}
        # newest reading of each record, by sensor then quantity (what the API shows)
        self.latest: dict[str, dict[str, Reading]] = {}

    # -- readings -------------------------------------------------------------------------
    def seed(self, readings: Iterable[Reading], *, newest: Iterable[Reading] = ()) -> None:
        """Stored readings at start-up: the QC history and the latest values (``newest``: each
        sensor's newest reading, however old, so a long-silent sensor still shows its last value)."""
        readings = list(readings)
        self.qc.seed(readings)
        for r in (*newest, *readings):
            self._keep_latest(r)

    def review(self, readings: Sequence[Reading], *, received: datetime) -> tuple[list[Reading], list[Transition]]:
        """QC-review accepted readings and add derived ones; return them with health transitions."""
        out: list[Reading] = []
        transitions: list[Transition] = []
        for r in readings:
            derived = self._derive(r)
            reviewed = self.qc.review(r)
            out.append(reviewed)
            if derived is not None:
                out.append(self.qc.review(derived) if reviewed.flag != "bad" else derived)
            transitions += self.health.seen(reviewed, received=received)
        for r in out:
            self._keep_latest(r)
        return out, transitions

    def _derive(self, r: Reading) -> Reading | None:
        """Derived series: a tipping-bucket counter's increments become interval rain; a GNSS
        station's east and north of one epoch become its horizontal displacement."""
        spec = self.registry.get(r.sensor_id)
        if spec is None or r.flag == "bad":
            return None
        if spec.kind == "gnss_displacement" and r.quantity in ("east", "north"):
            other = "north" if r.quantity == "east" else "east"
            match = next((h for h in self.qc.history(r.sensor_id, other) if h.time == r.time and h.flag != "bad"), None)
            if match is None:
                return None
            return Reading(r.sensor_id, "horizontal", round(math.hypot(r.value, match.value), 3), "mm", r.time,
                           worst_flag(r.flag, match.flag))
        if r.quantity != "rain_total":
            return None
        previous = [h for h in self.qc.history(r.sensor_id, "rain_total") if h.time < r.time and h.flag != "bad"]
        if not previous:
            return None  # the first count only sets the baseline
        last = previous[-1]
        increment = r.value - last.value
        notes: tuple[QcNote, ...] = ()
        if increment < 0:  # a logger reset: the counter restarted from zero
            increment = r.value
            notes = (QcNote("derived", "good", f"counter reset: {last.value:g} → {r.value:g} mm"),)
        return Reading(r.sensor_id, "rain", increment, "mm", r.time, r.flag, notes if r.flag == "good" else r.qc)

    def _keep_latest(self, r: Reading) -> None:
        records = self.latest.setdefault(r.sensor_id, {})
        prev = records.get(r.quantity)
        if prev is None or prev.time <= r.time:
            records[r.quantity] = r

    def newest(self, sensor_id: str, quantity: str) -> Reading | None:
        return self.latest.get(sensor_id, {}).get(quantity)

    def tick(self, now: datetime) -> list[Transition]:
        return self.health.tick(now)

    def status(self, sensor_id: str, status: str) -> list[Transition]:
        return self.health.status(sensor_id, status)

    # -- maintenance ----------------------------------------------------------------------
    def load_maintenance(self, windows: Iterable[MaintenanceWindow]) -> None:
        for w in windows:
            self.add_maintenance(w)

    def add_maintenance(self, window: MaintenanceWindow) -> None:
        windows = [w for w in self._maintenance.get(window.sensor_id, []) if w.window_id != window.window_id]
        windows.append(window)
        self._maintenance[window.sensor_id] = sorted(windows, key=lambda w: w.start)

    def maintenance(self, sensor_id: str) -> list[MaintenanceWindow]:
        return list(self._maintenance.get(sensor_id, ()))

    def in_maintenance(self, sensor_id: str, t: datetime) -> MaintenanceWindow | None:
        for w in self._maintenance.get(sensor_id, ()):
            if w.covers(t):
                return w
        return None

    # -- views ----------------------------------------------------------------------------
    def state(self, sensor_id: str, now: datetime) -> str:
        """maintenance, offline, stale, ok or unknown."""
        return "maintenance" if self.in_maintenance(sensor_id, now) else self.health[sensor_id].state

    def sensor_state(self, sensor_id: str, now: datetime) -> dict[str, Any]:
        """Health, maintenance and the newest value of every record of one sensor."""
        h = self.health[sensor_id]
        window = self.in_maintenance(sensor_id, now)
        values = {q: reading_wire(r) for q, r in self.latest.get(sensor_id, {}).items()}
        state = self.state(sensor_id, now)
        return {"health": {**h.to_wire(), "state": state}, "maintenance": window.to_wire() if window else None,
                "values": values,
                # A stale sensor's expected readings are missing data (not zero, not good).
                "flag": "missing" if h.stale else None}


def reading_wire(r: Reading) -> dict[str, Any]:
    """A reading as the API, the WebSocket and the event log show it."""
    wire: dict[str, Any] = {"sensor_id": r.sensor_id, "quantity": r.quantity, "value": r.value, "unit": r.unit,
                            "time": r.time.isoformat(), "flag": r.flag}
    if r.qc:
        wire["qc"] = [{"check": n.check, "flag": n.flag, "detail": n.detail} for n in r.qc]
    return wire
