"""Incidents: when an assessment opens or updates one, and the lifecycle states.

Pure decision logic over plain data; the runtime applies the decisions to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from .risk.rules import Assessment, Level


class IncidentError(Exception):
    """Base of incident errors."""


class InvalidTransition(IncidentError):
    """A lifecycle change that the state machine does not allow."""


class Status(StrEnum):
    OPEN = "open"  # assessed, awaiting the dispatcher
    DISPATCHED = "dispatched"  # a dispatcher approved a vehicle mission
    CLOSED = "closed"


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.DISPATCHED, Status.CLOSED}),
    Status.DISPATCHED: frozenset({Status.OPEN, Status.CLOSED}),  # back to open if a mission fails
    Status.CLOSED: frozenset({Status.OPEN}),  # reopen
}


def transition(current: Status | str, target: Status | str) -> Status:
    """Return ``target`` if the lifecycle allows ``current → target``, else raise."""
    cur, tgt = Status(current), Status(target)
    if tgt not in _ALLOWED[cur]:
        raise InvalidTransition(f"an incident cannot go from {cur} to {tgt}")
    return tgt


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """What the decision needs to know of an incident already open for a sensor and kind."""

    incident_id: int
    level: Level


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["open", "raise", "lower", "none"]
    level: Level
    incident_id: int | None = None


def decide(assessment: Assessment, current: OpenIncident | None) -> Decision:
    """Open an incident on the first crossing, then follow the level up and down.

    A reading back below every threshold does not close the incident: closing is a
    dispatcher's decision. A lower level is recorded (the hazard is easing) but the
    incident stays open.
    """
    level = assessment.level
    if current is None:
        if level > Level.NONE:
            return Decision("open", level)
        return Decision("none", level)
    if level == Level.NONE or level == current.level:
        return Decision("none", current.level, current.incident_id)
    return Decision("raise" if level > current.level else "lower", level, current.incident_id)
