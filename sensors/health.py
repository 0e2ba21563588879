"""Device health: last seen, battery, signal, online/offline and staleness, per sensor.

One owner per data source holds the last known state and reports only transitions
("stale", "recovered", "offline", "online"), as Home Assistant's coordinators do, so the
audit log records a sensor going quiet once, not once a minute.

A sensor is *stale* when nothing has come from it for ``k`` times its reporting interval
(GHCN/Mesonet practice treats a missing report as missing data, not as zero; ``k`` = 3 by
default, so one lost message over a lossy 4G/5G link is not yet an outage). Its expected
readings are then *missing*, which the API shows as that sensor's flag. Pure: the caller
passes the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sensors.model import Reading
from sensors.registry import SensorSpec

__all__ = ["DEFAULT_STALE_FACTOR", "Health", "HealthTracker", "Transition"]

DEFAULT_STALE_FACTOR = 3.0


@dataclass(slots=True)
class Health:
    """What is known of one device's health."""

    sensor_id: str
    interval_s: float
    last_seen: datetime | None = None  # receive time of the newest reading
    last_reading_time: datetime | None = None  # the newest reading's own time
    battery_pct: float | None = None
    rssi_dbm: float | None = None
    supply_v: float | None = None
    status: str | None = None  # what the device says on its status topic: online / offline
    stale: bool = False
    suspect_count: int = 0
    bad_count: int = 0

    @property
    def state(self) -> str:
        """offline (the device or its will said so), stale (silent too long), ok, or unknown."""
        if self.status == "offline":
            return "offline"
        if self.stale:
            return "stale"
        if self.last_seen is None:
            return "unknown"
        return "ok"

    def to_wire(self) -> dict[str, Any]:
        return {
            "state": self.state, "status": self.status, "stale": self.stale,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "last_reading_time": self.last_reading_time.isoformat() if self.last_reading_time else None,
            "battery_pct": self.battery_pct, "rssi_dbm": self.rssi_dbm, "supply_v": self.supply_v,
            "interval_s": self.interval_s, "suspect_readings": self.suspect_count, "bad_readings": self.bad_count,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    sensor_id: str
    change: Literal["stale", "recovered", "offline", "online"]
    detail: str


class HealthTracker:
    """Health of every registered sensor; ``seen``/``status``/``tick`` return transitions."""

    def __init__(self, specs: Iterable[SensorSpec], *, stale_factor: float = DEFAULT_STALE_FACTOR,
                 started: datetime | None = None) -> None:
        self.stale_factor = stale_factor
        self._health = {s.sensor_id: Health(s.sensor_id, s.interval_s) for s in specs}
        # A sensor never heard from is judged from the tracker's start: at start-up every
        # sensor has k intervals to report before it counts as stale.
        self._started = started

    def __getitem__(self, sensor_id: str) -> Health:
        return self._health[sensor_id]

    def get(self, sensor_id: str) -> Health | None:
        return self._health.get(sensor_id)

    def seen(self, reading: Reading, *, received: datetime) -> list[Transition]:
        """Record a reading; a stale sensor that reports again has recovered."""
        h = self._health.get(reading.sensor_id)
        if h is None:
            return []
        out: list[Transition] = []
        h.last_seen = received if h.last_seen is None else max(h.last_seen, received)
        if h.last_reading_time is None or reading.time > h.last_reading_time:
            h.last_reading_time = reading.time
        if reading.quantity == "battery":
            h.battery_pct = reading.value
        elif reading.quantity == "rssi":
            h.rssi_dbm = reading.value
        elif reading.quantity == "supply":
            h.supply_v = reading.value
        if reading.flag == "suspect":
            h.suspect_count += 1
        elif reading.flag == "bad":
            h.bad_count += 1
        if h.stale:
            h.stale = False
            out.append(Transition(h.sensor_id, "recovered", "reporting again"))
        return out

    def status(self, sensor_id: str, status: str) -> list[Transition]:
        """The device's own online/offline status (MQTT retained status and will)."""
        h = self._health.get(sensor_id)
        if h is None or h.status == status:
            return []
        previous, h.status = h.status, status
        if status == "offline":
            return [Transition(sensor_id, "offline", "the device or its broker will reported offline")]
        if previous == "offline":
            return [Transition(sensor_id, "online", "the device reported online")]
        return []

    def tick(self, now: datetime) -> list[Transition]:
        """Mark sensors silent for more than k intervals as stale (transitions only)."""
        out: list[Transition] = []
        if self._started is None:
            self._started = now
        for h in self._health.values():
            if h.stale:
                continue
            since = h.last_seen or self._started
            limit = timedelta(seconds=self.stale_factor * h.interval_s)
            if now - since > limit:
                h.stale = True
                heard = f"last heard {h.last_seen.isoformat()}" if h.last_seen else "never heard"
                out.append(Transition(h.sensor_id, "stale",
                                      f"nothing for more than {self.stale_factor:g} × {h.interval_s:g} s ({heard})"))
        return out
