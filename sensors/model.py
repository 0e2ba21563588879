"""Plain data shared by the sensing room: readings and rejections."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime


class SensorError(Exception):
    """Base of every error raised by the sensing room."""


FLAGS = ("good", "suspect", "bad", "missing")  # QC flags, best to worst


@dataclass(frozen=True, slots=True)
class QcNote:
    """Why a quality check flagged a reading: the check's name, its flag and a readable detail."""

    check: str  # range, step, flatline, consistency, neighbour, ...
    flag: str  # suspect or bad
    detail: str


def worst_flag(*flags: str) -> str:
    """The worst of QC flags (good < suspect < bad < missing)."""
    return max(flags, key=FLAGS.index, default="good")


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted measurement, resolved from SenML (absolute time, SI units)."""

    sensor_id: str
    quantity: str  # SenML record name without the base name, e.g. "level", "rain"
    value: float
    unit: str  # SenML unit symbol, e.g. "m", "mm"
    time: datetime  # timezone-aware UTC
    flag: str = "good"  # QC flag: good / suspect / bad (see FLAGS)
    qc: tuple[QcNote, ...] = ()  # the checks that lowered the flag

    def flagged(self, note: QcNote) -> Reading:
        """This reading with one more QC note (the flag becomes the worse of the two)."""
        return Reading(self.sensor_id, self.quantity, self.value, self.unit, self.time,
                       worst_flag(self.flag, note.flag), (*self.qc, note))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload or record refused by ingest, with a reason a person can read."""

    topic: str
    reason: str  # short code: malformed_json, bad_senml, unknown_sensor, wrong_unit, non_finite, future_time, ...
    detail: str
    sensor_id: str | None = None


class RejectionLog:
    """Logs rejections rate-limited per (topic, reason): the first three, then every 100th.

    A device that sends the same bad payload every second must not flood the log, and the
    first lines must still say exactly what is wrong. Bounded: at most ``max_keys`` pairs are
    remembered (then the counts start over).
    """

    def __init__(self, logger: logging.Logger, *, max_keys: int = 10_000) -> None:
        self._log = logger
        self._max_keys = max_keys
        self._counts: Counter[tuple[str, str]] = Counter()

    def note(self, rejection: Rejection) -> None:
        key = (rejection.topic, rejection.reason)
        if len(self._counts) >= self._max_keys and key not in self._counts:
            self._counts.clear()
        self._counts[key] += 1
        n = self._counts[key]
        if n <= 3 or n % 100 == 0:
            repeat = f" (seen {n} times)" if n > 3 else ""
            self._log.warning("rejected %s: %s: %s%s", rejection.topic, rejection.reason, rejection.detail, repeat)
