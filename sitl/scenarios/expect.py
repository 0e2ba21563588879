"""What a correct system must do in a scenario, and must not: the ``expect`` block, as data.

Schema (docs/scenarios.md, "Expectations"):

- ``incidents``: the system must open (or raise) an incident of ``kind`` with these
  ``sensors`` among its members at ``level`` or higher; the script reaches it at ``after_h``
  (no report shows it earlier), and the system must show it by ``after_h + within_min``.
  ``by_sensor_h`` gives each sensor's own crossing; ``confirmed_after_h`` when k-of-n
  corroboration (or the kind's own rule) can first confirm it; a landslide adds the script's
  failure time ``failure_h`` and ``lost_h``, when the slope's sensors stop reporting.
- ``ratings``: assessments the system must show without necessarily opening an incident
  (the fire-danger rating of a station's noon weather).
- ``quiet``: a faulty sensor's non-effects: ``at_most: none`` (it never opens or joins an
  incident) or ``at_most: unverified`` (alone it opens at most an unverified one).
- ``health``: device states the system must show (a dead sensor goes ``stale``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .flood import ScenarioError, number

__all__ = ["LEVELS", "Expectations", "HealthExpectation", "IncidentExpectation", "QuietExpectation",
           "RatingExpectation"]

LEVELS = ("blue", "yellow", "orange", "red")
INCIDENT_KINDS = ("flood", "rainstorm", "landslide", "fire", "chemical_leak")
RATING_KINDS = ("fire_danger",)
AT_MOST = ("none", "unverified")


def _sensors(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    s = raw.get("sensors")
    if not isinstance(s, list) or not s or not all(isinstance(x, str) for x in s):
        raise ScenarioError(f"{where}: 'sensors' must be a non-empty list of sensor ids")
    return tuple(s)


def _choice(raw: Mapping[str, Any], key: str, options: tuple[str, ...], where: str, *,
            optional: bool = False) -> str | None:
    v = raw.get(key)
    if v is None and optional:
        return None
    if v not in options:
        raise ScenarioError(f"{where}: {key!r} must be one of {', '.join(options)}, got {v!r}")
    return str(v)


@dataclass(frozen=True, slots=True)
class IncidentExpectation:
    kind: str
    sensors: tuple[str, ...]
    level: str | None  # None: the rules prescribe no level (a detected fire)
    after_h: float
    within_min: float
    by_sensor_h: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    confirmed_after_h: float | None = None
    basis: str = ""
    failure_h: float | None = None  # landslide: t_f of the script (where 1/v reaches zero)
    lost_h: float | None = None  # landslide: the slope's sensors stop reporting here

    @property
    def deadline_h(self) -> float:
        return self.after_h + self.within_min / 60.0


@dataclass(frozen=True, slots=True)
class RatingExpectation:
    kind: str
    sensors: tuple[str, ...]
    level: str | None  # the warning colour of the rating (None: no warning signal)
    after_h: float
    within_min: float
    day: int
    rating: str  # e.g. the danger level "high"
    basis: str = ""


@dataclass(frozen=True, slots=True)
class QuietExpectation:
    sensors: tuple[str, ...]
    fault: str
    at_most: str  # none | unverified
    kinds: tuple[str, ...] = ()
    basis: str = ""


@dataclass(frozen=True, slots=True)
class HealthExpectation:
    sensors: tuple[str, ...]
    state: str
    after_h: float
    within_min: float
    basis: str = ""


@dataclass(frozen=True, slots=True)
class Expectations:
    incidents: tuple[IncidentExpectation, ...] = ()
    ratings: tuple[RatingExpectation, ...] = ()
    quiet: tuple[QuietExpectation, ...] = ()
    health: tuple[HealthExpectation, ...] = ()

    @property
    def sensor_ids(self) -> frozenset[str]:
        out: set[str] = set()
        for group in (self.incidents, self.ratings, self.quiet, self.health):
            for e in group:
                out.update(e.sensors)
        return frozenset(out)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, *, where: str) -> Expectations:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a mapping of incidents, ratings, quiet, health")
        unknown = sorted(set(raw) - {"incidents", "ratings", "quiet", "health"})
        if unknown:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")
        incidents, ratings, quiet, health = [], [], [], []
        for i, e in enumerate(raw.get("incidents") or []):
            w = f"{where}.incidents[{i}]"
            by = e.get("by_sensor_h") or {}
            conf = e.get("confirmed_after_h")
            incidents.append(IncidentExpectation(
                str(_choice(e, "kind", INCIDENT_KINDS, w)), _sensors(e, w),
                _choice(e, "level", LEVELS, w, optional=True), number(e, "after_h", w), number(e, "within_min", w),
                MappingProxyType({str(k): number(by, k, f"{w}.by_sensor_h") for k in by}),
                None if conf is None else number(e, "confirmed_after_h", w), str(e.get("basis", "")),
                None if e.get("failure_h") is None else number(e, "failure_h", w),
                None if e.get("lost_h") is None else number(e, "lost_h", w)))
        for i, e in enumerate(raw.get("ratings") or []):
            w = f"{where}.ratings[{i}]"
            ratings.append(RatingExpectation(
                str(_choice(e, "kind", RATING_KINDS, w)), _sensors(e, w), _choice(e, "level", LEVELS, w, optional=True),
                number(e, "after_h", w), number(e, "within_min", w), int(number(e, "day", w)),
                str(e.get("rating", "")), str(e.get("basis", ""))))
        for i, e in enumerate(raw.get("quiet") or []):
            w = f"{where}.quiet[{i}]"
            kinds = e.get("kinds") or []
            quiet.append(QuietExpectation(_sensors(e, w), str(e.get("fault", "")),
                                          str(_choice(e, "at_most", AT_MOST, w)),
                                          tuple(str(k) for k in kinds), str(e.get("basis", ""))))
        for i, e in enumerate(raw.get("health") or []):
            w = f"{where}.health[{i}]"
            health.append(HealthExpectation(_sensors(e, w), str(_choice(e, "state", ("stale", "offline"), w)),
                                            number(e, "after_h", w), number(e, "within_min", w),
                                            str(e.get("basis", ""))))
        return cls(tuple(incidents), tuple(ratings), tuple(quiet), tuple(health))
