"""Transfer of people (转移): evacuation zones, the people inside, shelters, counts, closing, and the
numbering of the reports the bureau sends up (首报 / 续报 / 终报). Pure.

* ``zone_geometry``: a zone drawn by a person, a GeoJSON Polygon in lon/lat, checked.
* ``estimate_population``: how many people live in a zone, an estimate (never a count): the larger
  of the townships' populations weighted by the share of their area inside the zone and the
  residents of the villages and nursing homes inside (see ``PopulationEstimate``).
* ``choose_shelters``: the nearest shelters at least ``margin_m`` outside the zone, nearest first,
  until their free places cover the estimate.
* ``check_count`` / ``current_figures``: counts taken on the ground, each a record, the zone's
  figures the latest; the rules a count must keep (``check_count``).
* ``check_close``: a zone closes on a count that leaves nobody inside, or that names the people
  who refuse to leave.
* ``next_report`` / ``initial_report_due`` / ``render_report``: the order and numbering of an
  incident's reports, when its initial report is due, and the report's text (Chinese, English).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from command.dispatch.geometry import UTM_48N, to_utm, utm_transformers
from command.linkage.context import POPULATION_NOTE, POPULATION_NOTE_ZH, linkage_context
from command.risk.rules import Level

__all__ = [
    "CLOSE_STATES",
    "CloseRefused",
    "Count",
    "CountRefused",
    "EvacuationError",
    "Figures",
    "FUTURE_TOLERANCE_S",
    "PopulationEstimate",
    "REPORT_KINDS",
    "ReportNumber",
    "ReportOrderError",
    "SHELTER_MARGIN_M",
    "SHELTER_REACH_M",
    "ShelterChoice",
    "ShelterPick",
    "ZoneError",
    "check_close",
    "check_count",
    "choose_shelters",
    "current_figures",
    "estimate_population",
    "initial_report_due",
    "next_report",
    "render_report",
    "zone_geometry",
    "zone_transition",
]

# Project choices (not from a standard), in metres: people are sent to shelters at least this far
# outside the zone (the staging margin of command.linkage.context), and not farther than this.
SHELTER_MARGIN_M = 300.0
SHELTER_REACH_M = 15_000.0
# A count may carry a time a little ahead of the service clock (a phone's clock runs fast); not more.
FUTURE_TOLERANCE_S = 300.0
MAX_ZONE_POSITIONS = 10_000
CLOSE_STATES = ("open", "closed")
REPORT_KINDS = ("initial", "follow_up", "final")

# Who lives at a facility of these kinds (``Facility.population``): counted in a zone's estimate.
# A town's figure is its township's whole population: added only where no township covers the zone.
_POINT_KINDS = ("village", "nursing_home")
_TOWN_KINDS = ("town",)
FACILITIES_NOTE = ("Residents of the villages and nursing homes inside the zone (towns' figures are their whole "
                   "township's and count only where the district has no township data for the zone).")
FACILITIES_NOTE_ZH = "区内村庄、养老机构的常住人数（镇的人数为全镇人口，仅在该区域无镇街数据时计入）。"
ESTIMATE_NOTE = ("Estimate, not a count: the larger of the township estimate and the residents counted at "
                 "places inside. The counts recorded on the ground replace it.")
ESTIMATE_NOTE_ZH = "估算值，非实际统计：取镇街面积加权估算与区内居民点常住人数中的较大者；以现场上报的统计数为准。"


class EvacuationError(ValueError):
    """Base of the evacuation rules' errors; the message names the problem."""


class ZoneError(EvacuationError):
    """A zone's area cannot be used, or a zone cannot move to the state asked."""


class CountRefused(EvacuationError):
    """A count breaks a rule of ``check_count``."""


class CloseRefused(EvacuationError):
    """A zone cannot be closed on its counts (``check_close``)."""


class ReportOrderError(EvacuationError):
    """A report of this kind cannot be issued now (``next_report``)."""


# --- zones --------------------------------------------------------------------------------------


def zone_geometry(geojson: Mapping[str, Any]) -> Polygon:
    """A zone's GeoJSON Polygon (lon/lat, RFC 7946) as a valid shapely polygon; ``ZoneError`` if not.

    >>> zone_geometry({"type": "Polygon", "coordinates": [[[106.7, 29.7], [106.71, 29.7], [106.71, 29.71],
    ...                                                     [106.7, 29.7]]]}).geom_type
    'Polygon'
    """
    if not isinstance(geojson, Mapping) or geojson.get("type") != "Polygon":
        kind = geojson.get("type") if isinstance(geojson, Mapping) else type(geojson).__name__
        raise ZoneError(f"the area must be a GeoJSON Polygon, got {kind!r}")
    rings = geojson.get("coordinates")
    if not isinstance(rings, Sequence) or not rings:
        raise ZoneError("the polygon has no rings")
    positions = 0
    for k, ring in enumerate(rings):
        which = "outer ring" if k == 0 else f"hole {k}"
        if not isinstance(ring, Sequence) or len(ring) < 4:
            raise ZoneError(f"the polygon's {which} needs at least 4 positions (the first repeated last)")
        positions += len(ring)
        for p in ring:
            if (not isinstance(p, Sequence) or len(p) not in (2, 3)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
                raise ZoneError(f"the polygon's {which} has a position that is not [lon, lat]: {p!r}")
            lon, lat = float(p[0]), float(p[1])
            if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
                raise ZoneError(f"the polygon's {which} has a position outside WGS84 lon/lat: {list(p)!r}")
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise ZoneError(f"the polygon's {which} is not closed: its last position must repeat its first "
                            f"(RFC 7946 §3.1.6)")
    if positions > MAX_ZONE_POSITIONS:
        raise ZoneError(f"the polygon has {positions} positions; at most {MAX_ZONE_POSITIONS}")
    poly = shape({"type": "Polygon", "coordinates": [[(float(p[0]), float(p[1])) for p in r] for r in rings]})
    if poly.is_empty or poly.convex_hull.area <= 0:  # its positions on one line (a bow tie has area 0 too)
        raise ZoneError("the polygon encloses no area")
    if not poly.is_valid:
        raise ZoneError(f"the polygon is invalid: {shapely.is_valid_reason(poly)}")
    return poly


def zone_transition(state: str, to: str, *, zone_id: int | str = "") -> str:
    """The zone's next state: open → closed (close), closed → open (reopen); ``ZoneError`` otherwise."""
    if state not in CLOSE_STATES or to not in CLOSE_STATES:
        raise ZoneError(f"unknown zone state {state!r} or {to!r}; one of {', '.join(CLOSE_STATES)}")
    if state == to:
        raise ZoneError(f"evacuation zone {zone_id} is already {state}")
    return to


# --- the people inside ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PopulationEstimate:
    """How many people live in a zone: an estimate, never a count.

    ``people`` is the larger of ``townships_people`` (each township's population times the share of
    its area inside the zone, people assumed evenly spread: ``command.linkage.context``) and
    ``facilities_people`` (residents of the villages and nursing homes inside; the towns inside too
    where no township covers the zone). Both figures describe the same people (a township's
    population includes its villages' and homes' residents), so they are compared, never added.
    """

    people: int
    method: str  # townships_area_weighted | facilities_inside | none
    townships_people: int
    facilities_people: int
    townships: tuple[Mapping[str, Any], ...] = ()  # id, name, name_zh, population, share, population_estimate
    places: tuple[Mapping[str, Any], ...] = ()  # facilities with residents inside: id, kind, ..., counted

    def to_wire(self) -> dict[str, Any]:
        return {"people": self.people, "estimate": True, "method": self.method,
                "townships_people": self.townships_people, "facilities_people": self.facilities_people,
                "townships": [dict(t) for t in self.townships], "places": [dict(p) for p in self.places],
                "note": ESTIMATE_NOTE, "note_zh": ESTIMATE_NOTE_ZH,
                "townships_note": POPULATION_NOTE, "townships_note_zh": POPULATION_NOTE_ZH,
                "facilities_note": FACILITIES_NOTE, "facilities_note_zh": FACILITIES_NOTE_ZH}


def _utm_points(items: Sequence[Any], epsg: int) -> np.ndarray:
    if not items:
        return np.empty(0, dtype=object)
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(np.array([f.lon for f in items], dtype=float), np.array([f.lat for f in items], dtype=float))
    return shapely.points(np.asarray(x), np.asarray(y))


def _checked_zone(zone: BaseGeometry) -> Polygon | MultiPolygon:
    if not isinstance(zone, (Polygon, MultiPolygon)):
        raise ZoneError(f"a zone is a Polygon or MultiPolygon in lon/lat, got {zone.geom_type}")
    if zone.is_empty or zone.area <= 0:
        raise ZoneError("the zone encloses no area")
    if not zone.is_valid:
        raise ZoneError(f"the zone is invalid: {shapely.is_valid_reason(zone)}")
    return zone


def estimate_population(zone: Polygon | MultiPolygon, *, facilities: Iterable[Any], townships: Iterable[Any],
                        utm_epsg: int = UTM_48N) -> PopulationEstimate:
    """The people in ``zone`` (lon/lat), estimated from the district (see ``PopulationEstimate``).

    Facilities and townships are duck-typed like ``command.district.Facility`` and ``Township``.

    >>> from types import SimpleNamespace as NS
    >>> from shapely.geometry import box
    >>> home = NS(id="care-1", kind="nursing_home", name="Home", name_zh="敬老院", lon=106.705, lat=29.705,
    ...           population=120)
    >>> estimate_population(box(106.70, 29.70, 106.71, 29.71), facilities=[home], townships=[]).people
    120
    """
    zone = _checked_zone(zone)
    townships = tuple(townships)
    point = zone.representative_point()
    ctx = linkage_context(zone, point=(point.x, point.y), kind="other", roads=(), bridges=(), facilities=(),
                          townships=townships, utm_epsg=utm_epsg)["evacuation"]
    township_rows = tuple(ctx["townships"])
    townships_people = int(ctx["population_estimate"])
    zone_utm = to_utm(zone, utm_epsg)
    shapely.prepare(zone_utm)
    with_people = [f for f in facilities if f.kind in (*_POINT_KINDS, *_TOWN_KINDS) and f.population]
    inside = shapely.contains(zone_utm, _utm_points(with_people, utm_epsg)) if with_people else []
    places = []
    counted_people = 0
    for f, hit in zip(with_people, inside, strict=True):
        if not hit:
            continue
        counted = f.kind in _POINT_KINDS or not township_rows
        counted_people += int(f.population) if counted else 0
        places.append({"id": f.id, "kind": f.kind, "name": f.name, "name_zh": f.name_zh, "lon": float(f.lon),
                       "lat": float(f.lat), "population": int(f.population), "counted": counted})
    places.sort(key=lambda p: (-p["population"], p["id"]))
    if not township_rows and not places:
        method = "none"
    elif township_rows and townships_people >= counted_people:
        method = "townships_area_weighted"
    else:
        method = "facilities_inside"
    return PopulationEstimate(max(townships_people, counted_people), method, townships_people, counted_people,
                              township_rows, tuple(places))


# --- shelters -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShelterPick:
    """A shelter assigned to a zone: its places, those taken now, and how far it stands outside the zone."""

    id: str
    name: str
    name_zh: str
    lon: float
    lat: float
    capacity: int
    occupancy: int
    distance_m: int  # from the zone's edge

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.occupancy)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "name_zh": self.name_zh, "lon": self.lon, "lat": self.lat,
                "capacity": self.capacity, "occupancy": self.occupancy, "free": self.free,
                "distance_m": self.distance_m}


@dataclass(frozen=True, slots=True)
class ShelterChoice:
    """The shelters for a zone's people, nearest first; ``covered`` when their free places suffice."""

    people: int
    shelters: tuple[ShelterPick, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (shelter id, why not), by id
    margin_m: float = SHELTER_MARGIN_M
    reach_m: float = SHELTER_REACH_M

    @property
    def free(self) -> int:
        return sum(s.free for s in self.shelters)

    @property
    def covered(self) -> bool:
        return self.free >= self.people

    @property
    def shortfall(self) -> int:
        return max(0, self.people - self.free)

    def to_wire(self) -> dict[str, Any]:
        return {"people": self.people, "free": self.free, "covered": self.covered, "shortfall": self.shortfall,
                "margin_m": self.margin_m, "reach_m": self.reach_m,
                "shelters": [s.to_wire() for s in self.shelters],
                "skipped": [{"id": i, "reason": why} for i, why in self.skipped]}


def choose_shelters(zone: Polygon | MultiPolygon, people: int, *, shelters: Iterable[Any],
                    occupancy: Mapping[str, int] | None = None, avoid: Sequence[BaseGeometry] = (),
                    margin_m: float = SHELTER_MARGIN_M, reach_m: float = SHELTER_REACH_M,
                    utm_epsg: int = UTM_48N) -> ShelterChoice:
    """The shelters for ``people`` leaving ``zone`` (lon/lat): nearest first, until their free places cover them.

    A shelter qualifies when it has a capacity, stands at least ``margin_m`` and at most ``reach_m``
    outside the zone (distance from the zone's edge), lies in none of the ``avoid`` areas (other
    zones being evacuated) and has a free place (capacity minus ``occupancy``). Without enough
    places, every qualifying shelter is taken and the choice says by how many it falls short;
    with nobody to move, the nearest one is still named (where to send whoever turns up).
    Shelters are duck-typed like ``command.district.Facility`` (``capacity``). (The linkage context's
    ``evacuation.shelters`` names the five nearest without regard to their room; here room decides.)

    >>> from types import SimpleNamespace as NS
    >>> from shapely.geometry import box
    >>> near = NS(id="s-near", name="Near", name_zh="近", lon=106.72, lat=29.705, capacity=100)
    >>> far = NS(id="s-far", name="Far", name_zh="远", lon=106.75, lat=29.705, capacity=5000)
    >>> c = choose_shelters(box(106.70, 29.70, 106.71, 29.71), 300, shelters=[far, near])
    >>> [s.id for s in c.shelters], c.covered
    (['s-near', 's-far'], True)
    """
    zone = _checked_zone(zone)
    if isinstance(people, bool) or not isinstance(people, int) or people < 0:
        raise EvacuationError(f"people must be a non-negative whole number, got {people!r}")
    if not (math.isfinite(margin_m) and margin_m >= 0 and math.isfinite(reach_m) and reach_m > margin_m):
        raise EvacuationError(f"need 0 <= margin_m < reach_m, got margin {margin_m} m, reach {reach_m} m")
    occupancy = occupancy or {}
    sites = tuple(shelters)
    zone_utm = to_utm(zone, utm_epsg)
    pts = _utm_points(sites, utm_epsg)
    dist = shapely.distance(zone_utm, pts) if sites else np.zeros(0)
    avoid_utm = [to_utm(a, utm_epsg) for a in avoid]
    candidates: list[tuple[float, str, ShelterPick]] = []
    skipped: list[tuple[str, str]] = []
    for k, f in enumerate(sites):
        d = float(dist[k])
        capacity = getattr(f, "capacity", None)
        taken = int(occupancy.get(f.id, 0))
        if capacity is None:
            skipped.append((f.id, "no capacity recorded"))
        elif d < margin_m:
            skipped.append((f.id, "inside the zone" if d == 0 else
                            f"only {d:.0f} m outside the zone (at least {margin_m:.0f} m)"))
        elif d > reach_m:
            skipped.append((f.id, f"{d:.0f} m from the zone (farther than {reach_m:.0f} m)"))
        elif any(shapely.intersects(a, pts[k]) for a in avoid_utm):
            skipped.append((f.id, "inside another zone being evacuated"))
        elif taken >= capacity:
            skipped.append((f.id, f"full ({taken} of {capacity} places taken)"))
        else:
            candidates.append((d, f.id, ShelterPick(f.id, f.name, f.name_zh, float(f.lon), float(f.lat), int(capacity),
                                                    taken, round(d))))
    candidates.sort(key=lambda t: (t[0], t[1]))
    picked: list[ShelterPick] = []
    free = 0
    for _, _, pick in candidates:
        if picked and free >= people:
            break
        picked.append(pick)
        free += pick.free
    return ShelterChoice(people, tuple(picked), tuple(sorted(skipped)), margin_m, reach_m)


# --- counts ---------------------------------------------------------------------------------------

_OPTIONAL = ("sheltered", "missing", "injured", "dead", "total")


@dataclass(frozen=True, slots=True)
class Count:
    """One count of a zone's people, as the person on the ground gives it.

    ``evacuated``: people moved out of the zone so far (cumulative). ``remaining``: people still in
    it. ``missing`` and ``dead``: people of the zone in neither group. ``sheltered``: of the
    evacuated, those now in shelters. ``injured``: of the evacuated or remaining, those hurt.
    ``total``: the people the zone held, when the count-taker states it (a village register); a
    figure left out (None) is not known to this count, not zero.
    """

    at: datetime
    evacuated: int
    remaining: int
    sheltered: int | None = None
    missing: int | None = None
    injured: int | None = None
    dead: int | None = None
    total: int | None = None
    note: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Figures:
    """A zone's current figures: evacuated and remaining of its latest count; each optional figure
    from the latest count that states it (its time in ``since``)."""

    at: datetime
    by: str
    evacuated: int
    remaining: int
    sheltered: int | None = None
    missing: int | None = None
    injured: int | None = None
    dead: int | None = None
    total: int | None = None
    counts: int = 1
    since: Mapping[str, datetime] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "by": self.by, "evacuated": self.evacuated, "remaining": self.remaining,
                "sheltered": self.sheltered, "missing": self.missing, "injured": self.injured, "dead": self.dead,
                "total": self.total, "counts": self.counts,
                "since": {k: v.isoformat() for k, v in self.since.items()}}


def current_figures(counts: Sequence[Count]) -> Figures | None:
    """The zone's figures from its counts in the order recorded (None without counts).

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 7, 1, tzinfo=timezone.utc)
    >>> f = current_figures([Count(t, 10, 90, dead=1), Count(t, 60, 40)])
    >>> f.evacuated, f.remaining, f.dead
    (60, 40, 1)
    """
    if not counts:
        return None
    last = counts[-1]
    known: dict[str, int | None] = dict.fromkeys(_OPTIONAL)
    since: dict[str, datetime] = {}
    for c in counts:
        for key in _OPTIONAL:
            value = getattr(c, key)
            if value is not None:
                known[key], since[key] = value, c.at
    return Figures(last.at, last.by, last.evacuated, last.remaining, counts=len(counts), since=since,
                   **known)  # type: ignore[arg-type]


def _whole(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CountRefused(f"{name} must be a non-negative whole number of people, got {value!r}")


def check_count(new: Count, *, current: Figures | None, now: datetime,
                future_tolerance_s: float = FUTURE_TOLERANCE_S) -> None:
    """Raise ``CountRefused`` naming the rule a count breaks; the rules are:

    * every figure is a non-negative whole number of people;
    * the count's time is not ahead of the service clock (by more than ``future_tolerance_s``) and
      not before the zone's latest count: counts are recorded in the order they were taken;
    * ``sheltered`` <= ``evacuated`` (the sheltered were evacuated first);
    * ``injured`` <= ``evacuated`` + ``remaining`` (the injured are among them);
    * evacuated + remaining + missing + dead <= the zone's total, when a total is stated (in this count
      or an earlier one): they are separate groups of the people the zone held;
    * ``evacuated`` (cumulative) and ``dead`` do not go down without a note saying why (a correction).
    """
    _whole("evacuated", new.evacuated)
    _whole("remaining", new.remaining)
    for key in _OPTIONAL:
        _whole(key, getattr(new, key), optional=True)
    if new.at.tzinfo is None:
        raise CountRefused("the count's time must carry its time zone")
    if (new.at - now).total_seconds() > future_tolerance_s:
        raise CountRefused(f"the count's time {new.at.isoformat()} is ahead of the service clock "
                           f"({now.isoformat()})")
    if current is not None and new.at < current.at:
        raise CountRefused(f"the count's time {new.at.isoformat()} is before the zone's latest count "
                           f"({current.at.isoformat()}): counts are recorded in the order they were taken")
    if new.sheltered is not None and new.sheltered > new.evacuated:
        raise CountRefused(f"sheltered ({new.sheltered}) cannot exceed evacuated ({new.evacuated}): the "
                           f"sheltered are people evacuated")
    if new.injured is not None and new.injured > new.evacuated + new.remaining:
        raise CountRefused(f"injured ({new.injured}) cannot exceed evacuated + remaining "
                           f"({new.evacuated + new.remaining}): the injured are counted among them")
    total = new.total if new.total is not None else (current.total if current is not None else None)
    if total is not None:
        accounted = new.evacuated + new.remaining + (new.missing or 0) + (new.dead or 0)
        if accounted > total:
            source = "this count" if new.total is not None else "an earlier count"
            raise CountRefused(f"evacuated + remaining + missing + dead = {accounted} exceeds the zone's total of "
                               f"{total} people (stated in {source})")
    if current is not None and not new.note.strip():
        if new.evacuated < current.evacuated:
            raise CountRefused(f"evacuated is a running total: {new.evacuated} is lower than the latest "
                               f"{current.evacuated}; give a note saying why (a correction)")
        if new.dead is not None and current.dead is not None and new.dead < current.dead:
            raise CountRefused(f"dead {new.dead} is lower than the latest {current.dead}; give a note saying why "
                               f"(a correction)")


def check_close(current: Figures | None, *, zone_id: int | str, refusing: int | None) -> dict[str, Any]:
    """What is recorded when a zone closes; ``CloseRefused`` unless its latest count leaves nobody in
    it, or ``refusing`` says that all who remain refuse to leave (their number is kept).

    >>> from datetime import datetime, timezone
    >>> f = current_figures([Count(datetime(2026, 7, 1, tzinfo=timezone.utc), 95, 5)])
    >>> check_close(f, zone_id=1, refusing=5)["refusing"]
    5
    """
    if refusing is not None:
        _whole("refusing", refusing)
    if current is None:
        raise CloseRefused(f"evacuation zone {zone_id} has no counts: record a count (evacuated, remaining) "
                           f"before closing it")
    record = {"evacuated": current.evacuated, "remaining": current.remaining, "count_at": current.at.isoformat(),
              "refusing": refusing}
    if current.remaining == 0:
        if refusing:
            raise CloseRefused(f"evacuation zone {zone_id}'s latest count has nobody remaining, yet {refusing} "
                               f"are said to refuse to leave: record a count with them as remaining")
        return record
    if refusing is None:
        raise CloseRefused(f"evacuation zone {zone_id} still has {current.remaining} people remaining (count of "
                           f"{current.at.isoformat()}): record a count with remaining 0, or close it giving the "
                           f"number who refuse to leave")
    if refusing != current.remaining:
        raise CloseRefused(f"{refusing} refusing to leave does not match the {current.remaining} remaining in "
                           f"evacuation zone {zone_id}'s latest count: record a new count first")
    return record


# --- reports up -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportNumber:
    """Where a report stands in its incident's series: 首报, 续报1, 续报2, ..., 终报."""

    seq: int  # 1, 2, ... within the incident
    kind: str  # initial | follow_up | final
    follow_up: int | None  # 1, 2, ... for follow-ups
    label: str
    label_zh: str


def next_report(issued: Sequence[str], kind: str) -> ReportNumber:
    """The number of the next report of ``kind`` after the ``issued`` kinds (in order); the rules: the
    first is the initial report and there is one only; follow-ups come after it, numbered 1, 2, ...;
    the final report comes once, last.

    >>> next_report(["initial", "follow_up"], "follow_up").label_zh
    '续报2'
    """
    if kind not in REPORT_KINDS:
        raise ReportOrderError(f"unknown report kind {kind!r}; one of {', '.join(REPORT_KINDS)}")
    if "final" in issued:
        raise ReportOrderError("the final report (终报) was issued: the incident takes no more reports")
    if kind == "initial":
        if issued:
            raise ReportOrderError("the initial report (首报) was issued already: the next ones are follow-ups "
                                   "(续报) or the final report (终报)")
        return ReportNumber(1, kind, None, "initial report", "首报")
    if not issued:
        raise ReportOrderError(f"the first report must be the initial report (首报), not a {kind.replace('_', '-')} "
                               f"report")
    if kind == "follow_up":
        n = sum(1 for k in issued if k == "follow_up") + 1
        return ReportNumber(len(issued) + 1, kind, n, f"follow-up report {n}", f"续报{n}")
    return ReportNumber(len(issued) + 1, kind, None, "final report", "终报")


def initial_report_due(level: int, levels: Sequence[Mapping[str, Any]], opened_at: datetime,
                       within_s: float) -> datetime | None:
    """When an incident's initial report is due: ``within_s`` after it first reached orange (its
    level history; the opening time without one), or None while it is below orange.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 7, 1, tzinfo=timezone.utc)
    >>> initial_report_due(3, [{"level": "yellow", "time": t.isoformat()},
    ...                        {"level": "orange", "time": "2026-07-01T00:20:00+00:00"}], t, 3600).isoformat()
    '2026-07-01T01:20:00+00:00'
    """
    if level < Level.ORANGE:
        return None
    since = opened_at
    for entry in levels:
        if entry.get("level") in ("orange", "red") and entry.get("time"):
            try:
                since = datetime.fromisoformat(str(entry["time"]))
            except ValueError:
                continue
            break
    return since + timedelta(seconds=within_s)


_TASK_STATES_ZH = {"sent": "已下发", "delivered": "已送达", "acknowledged": "已接收", "in_progress": "处置中",
                   "done": "已完成", "declined": "已拒绝", "cancelled": "已取消"}
_PLAN_STATES_ZH = {"proposed": "待批准", "refused": "无法执行", "approved": "已批准", "uploading": "上传中",
                   "flying": "执行中", "returning": "返航中", "landed": "已返回", "failed": "失败", "rejected": "已驳回",
                   "superseded": "已替换", "cancelled": "已取消"}
_STATUS_ZH = {"open": "处置中", "dispatched": "处置中（已派出）", "closed": "已结束"}
_RESPONSE_ZH = {"IV": "Ⅳ级", "III": "Ⅲ级", "II": "Ⅱ级", "I": "Ⅰ级"}


def _states(counts: Mapping[str, int], names: Mapping[str, str] | None = None, *, sep: str = ", ") -> str:
    return sep.join(f"{(names or {}).get(k, k)} {n}" for k, n in counts.items())


def _n(value: Any) -> str:
    return "—" if value is None else str(value)


def render_report(data: Mapping[str, Any]) -> tuple[str, str]:
    """The report's text, (Chinese, English), from its structured data (the keys the service's
    report snapshot writes: report, incident, response, evacuation, casualties, departments, vehicles)."""
    r, inc = data["report"], data["incident"]
    resp, ev, cas = data.get("response") or {}, data.get("evacuation") or {}, data.get("casualties") or {}
    depts, vehicles = data.get("departments") or {}, data.get("vehicles") or {}
    declared, advice = resp.get("declared"), resp.get("advice") or {}
    zh = [f"【{r['label_zh']}】{data.get('sender_zh', '')}关于{inc['title_zh']}的报告",
          f"报告时间：{data['as_of_local']}（北京时间）　报告人：{r['by']}",
          f"一、基本情况：{inc['kind_zh']}，{inc['level_zh']}预警；地点：{inc['place_zh']}；"
          f"系统立案时间：{inc['opened_at_local']}；当前状态：{_STATUS_ZH.get(inc['status'], inc['status'])}。"]
    en = [f"[{r['label'].upper()}] {data.get('sender', '')}: report on {inc['title']}",
          f"As of {data['as_of_local']} (Beijing time), by {r['by']}",
          f"1. The incident: {inc['kind']}, {inc['level']} warning; place: {inc['place']}; opened in the system "
          f"{inc['opened_at_local']}; status: {inc['status']}."]
    if declared:
        zh.append(f"二、应急响应：已启动{declared.get('level_zh', declared.get('level'))}应急响应"
                  f"（{declared.get('by')}，{declared.get('at_local', declared.get('at'))}）。")
        en.append(f"2. Response: level {declared.get('level')} emergency response declared by {declared.get('by')} "
                  f"at {declared.get('at_local', declared.get('at'))}.")
    else:
        adv = advice.get("level") or ""
        zh.append("二、应急响应：尚未宣布应急响应" + (f"（系统建议{_RESPONSE_ZH.get(adv, adv)}）。" if adv else "。"))
        en.append("2. Response: none declared yet" + (f" (level {adv} advised)." if adv else "."))
    zones = ev.get("zones") or []
    zh.append(f"三、人员转移：划定转移区 {ev.get('zones_total', 0)} 个（未关闭 {ev.get('zones_open', 0)} 个），"
              f"区内人口估算约 {ev.get('population_estimate', 0)} 人（估算值）；已转移 {ev.get('evacuated', 0)} 人，"
              f"尚未转移 {ev.get('remaining', 0)} 人，集中安置 {ev.get('sheltered', 0)} 人。")
    en.append(f"3. Evacuation: {ev.get('zones_total', 0)} zones ({ev.get('zones_open', 0)} open), about "
              f"{ev.get('population_estimate', 0)} people inside (an estimate); {ev.get('evacuated', 0)} evacuated, "
              f"{ev.get('remaining', 0)} remaining, {ev.get('sheltered', 0)} in shelters.")
    for z in zones:
        zh.append(f"　　{z['name_zh']}：估算 {z['population_estimate']} 人，已转移 {_n(z['evacuated'])} 人，"
                  f"尚未转移 {_n(z['remaining'])} 人" + ("，已关闭" if z["state"] == "closed" else "")
                  + ("" if z["counted"] else "（尚无统计）") + "。")
        en.append(f"   {z['name']}: about {z['population_estimate']} people, {_n(z['evacuated'])} evacuated, "
                  f"{_n(z['remaining'])} remaining" + (", closed" if z["state"] == "closed" else "")
                  + ("" if z["counted"] else " (no count yet)") + ".")
    zh.append(f"四、人员伤亡：死亡 {cas.get('dead', 0)} 人，受伤 {cas.get('injured', 0)} 人，失踪 {cas.get('missing', 0)} 人"
              f"（各转移区最新统计之和）。")
    en.append(f"4. Casualties: {cas.get('dead', 0)} dead, {cas.get('injured', 0)} injured, {cas.get('missing', 0)} "
              f"missing (the sum of the zones' latest counts).")
    by_status = depts.get("by_status") or {}
    zh.append(f"五、部门联动：共 {depts.get('total', 0)} 项任务" + (f"（{_states(by_status, _TASK_STATES_ZH, sep='，')}）"
                                                          if by_status else "") + "。")
    en.append(f"5. Departments: {depts.get('total', 0)} tasks" + (f" ({_states(by_status)})" if by_status else "")
              + ".")
    by_state = vehicles.get("by_state") or {}
    zh.append(f"六、无人机和无人船：共 {vehicles.get('total', 0)} 项任务计划"
              + (f"（{_states(by_state, _PLAN_STATES_ZH, sep='，')}）" if by_state else "") + "。")
    en.append(f"6. Drones and boats: {vehicles.get('total', 0)} task plans" + (f" ({_states(by_state)})" if by_state
                                                                                else "") + ".")
    if r.get("note"):
        zh.append(f"七、补充说明：{r['note']}")
        en.append(f"7. Note: {r['note']}")
    zh.append("（本报告由应急指挥系统根据系统记录生成，人口为估算值，伤亡与转移人数以现场统计为准。）")
    en.append("(Generated by the command system from its records; population figures are estimates, casualty and "
              "evacuation figures are the counts reported from the ground.)")
    return "\n".join(zh) + "\n", "\n".join(en) + "\n"
