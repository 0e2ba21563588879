"""Incidents: when an assessment opens or updates one, and the lifecycle states.

Pure decision logic over plain data; the runtime applies the decisions to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# --- one incident per phenomenon: members, level with hysteresis, corroboration -----------

# Lowering waits until the lower level has held this long (hysteresis in time: a level
# that flickers around a threshold moves the incident once, not on every reading).
LOWER_AFTER_S = 1800.0
# k of n: a crossing seen by at least this many independent sensors with good data is
# confirmed; fewer (a lone gauge, a suspect reading, a local downpour) stays unverified
# until a second sensor, a drone or a crew confirms it.
CONFIRM_K = 2


@dataclass(frozen=True, slots=True)
class Member:
    """One sensor's current say in an incident."""

    sensor_id: str
    level: Level
    flag: str  # the QC flag of its newest assessed reading
    modality: str  # the sensor kind


def aggregate_level(members: dict[str, Member]) -> Level:
    """The phenomenon's level: the highest of its sensors' current levels."""
    return max((m.level for m in members.values()), default=Level.NONE)


def hysteresis(current: Level, wanted: Level, *, pending_since_s: float | None, now_s: float,
               lower_after_s: float = LOWER_AFTER_S) -> tuple[Level, float | None]:
    """Raise at once; lower only after ``wanted`` has stayed below ``current`` for ``lower_after_s``.

    Returns the level to apply and the new pending-since time (None when nothing is pending).
    Times are seconds on any common clock (e.g. POSIX).
    """
    if wanted >= current:
        return wanted, None
    since = now_s if pending_since_s is None else pending_since_s
    if now_s - since >= lower_after_s:
        return wanted, None
    return current, since


def verification(members: dict[str, Member], *, k: int = CONFIRM_K) -> tuple[str, str]:
    """``("confirmed" | "unverified", reason)`` from k-of-n corroboration by independent sensors."""
    agreeing = sorted({m.sensor_id for m in members.values() if m.level > Level.NONE and m.flag == "good"})
    if len(agreeing) >= k:
        return "confirmed", f"{len(agreeing)} sensors with good data agree ({', '.join(agreeing)})"
    suspect = sorted({m.sensor_id for m in members.values() if m.level > Level.NONE and m.flag != "good"})
    if suspect and not agreeing:
        return "unverified", (f"only suspect data ({', '.join(suspect)}): a drone or a crew should check "
                              f"before it is treated as real")
    return "unverified", (f"seen by {len(agreeing)} sensor{'s' if len(agreeing) != 1 else ''} only; "
                          f"{k} independent sensors, a drone or a crew must confirm it")


def link_groups(keys: Sequence[str], linked: Callable[[str, str], bool]) -> list[list[str]]:
    """The groups of ``keys`` that ``linked`` joins, directly or through others (single linkage).

    Each group keeps the keys' order, and the groups come in the order of their first key.
    An incident whose sensors fall into two groups covers two phenomena (split it); two
    incidents whose sensors link are one (merge them).
    """
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if root(i) != root(j) and linked(keys[i], keys[j]):
                parent[max(root(i), root(j))] = min(root(i), root(j))
    groups: dict[int, list[str]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(root(i), []).append(key)
    return list(groups.values())
