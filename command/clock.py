"""Injected time: the core never reads the wall clock itself."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Aware UTC wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock a test steps by hand."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class ScaledClock:
    """Simulation time running ``speed`` times faster than the wall clock from ``epoch``.

    ``now = epoch + (wall_now - epoch) × speed``. Anchored to a shared epoch (not to the
    moment each process started), so a service and a separately started simulator given the
    same epoch and speed agree on the time.
    """

    def __init__(self, epoch: datetime, speed: float, *, wall: Clock | None = None) -> None:
        if epoch.tzinfo is None:
            raise ValueError("ScaledClock needs an aware epoch")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.epoch, self.speed = epoch, speed
        self._wall = wall or SystemClock()

    def now(self) -> datetime:
        return self.epoch + (self._wall.now() - self.epoch) * self.speed
