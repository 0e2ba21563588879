"""Plain data shared by the sensing room: readings and rejections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class SensorError(Exception):
    """Base of every error raised by the sensing room."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted measurement, resolved from SenML (absolute time, SI units)."""

    sensor_id: str
    quantity: str  # SenML record name without the base name, e.g. "level", "rain"
    value: float
    unit: str  # SenML unit symbol, e.g. "m", "mm"
    time: datetime  # timezone-aware UTC
    flag: str = "good"  # QC flag: good / suspect


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload or record refused by ingest, with a reason a person can read."""

    topic: str
    reason: str  # short code: malformed_json, bad_senml, unknown_sensor, wrong_unit, non_finite, out_of_range, ...
    detail: str
    sensor_id: str | None = None
