"""Airspace approvals: what a planned flight needs from air traffic management, and whether a grant covers it.

Model (Interim Regulations on Unmanned Aircraft Flight Management, State Council / CMC, in force
1 Jan 2024, art. 19): airspace above 120 m true height, and the zones drawn as controlled airspace
(around airports and other listed places), is *controlled airspace*; a drone flies there only with an
approved flight activity application from the air traffic management body. Hence:

- a ``controlled`` zone the path enters (at any height) needs an approval for that zone;
- any part of the path above the 120 m ceiling (``NATIONAL_CEILING_AGL_M``) needs an approval for the
  airspace above the ceiling (zone id ``NATIONAL_CEILING_ID``), wherever it is;
- a ``prohibited`` zone (air prohibited area) is never approvable: it is listed with
  ``approvable=False`` so that the refusal is said, and no grant ever covers it;
- a ``height_limited`` zone's ceiling is not an approval matter here: a grant never lifts it
  (docs/district-folder.md: no flight above ``ceiling_agl_m``); ``airspace.check_path`` reports it.

A flight above 120 m inside a controlled zone needs both approvals (one ATC approval can be recorded
as two grants with the same ``reference``).

Heights are metres above ground at the path's vertices, linear between them (as
``airspace.check_path`` without terrain); the parts of the path that need an approval are computed
exactly on that profile, leg by leg, in lon/lat (no sampling). Times are timezone-aware; nothing here
reads a clock.

A grant (``Grant``) is the record of one approval: zone, issuer, the ATC approval number, a validity
window, an altitude cap and optionally a polygon that restricts the approved area. ``check_grants``
says which needs a grant covers (one grant must cover a whole need) and, for the others, why not;
``grant_caps`` gives the approved altitude cap per zone, for the altitude planner: the plan must then
fly only inside what was granted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from command.dispatch.airspace import NATIONAL_CEILING_AGL_M, Zone
from command.dispatch.errors import PlanRefused

__all__ = [
    "NATIONAL_CEILING_ID",
    "ApprovalNeed",
    "Coverage",
    "Grant",
    "GrantCheck",
    "Refusal",
    "check_grants",
    "grant_caps",
    "needed_approvals",
    "approval_check",
    "require_grants",
]

# Zone id of the airspace above the national true-height ceiling (Interim Regulations 2024, art. 19).
NATIONAL_CEILING_ID = "national-ceiling"
_NATIONAL_NAME = f"Airspace above {NATIONAL_CEILING_AGL_M:.0f} m true height"
_NATIONAL_NAME_ZH = f"真高{NATIONAL_CEILING_AGL_M:.0f}米以上空域"
_TOL_M = 0.5  # heights are planned in whole metres (as airspace.check_path): no need for rounding noise
_AREA_TOL_DEG = 1e-7  # ~1 cm: a path part on a grant polygon's edge is inside it

NeedKind = Literal["controlled", "national_ceiling", "prohibited"]
RefusalCode = Literal["prohibited", "no_grant", "wrong_zone", "expired", "not_yet_valid", "ends_before_flight",
                      "altitude_above_cap", "area_outside"]


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _window(when_start: datetime, when_end: datetime) -> None:
    _aware("when_start", when_start)
    _aware("when_end", when_end)
    if when_end <= when_start:
        raise ValueError(f"when_end {when_end.isoformat()} must be after when_start {when_start.isoformat()}")


@dataclass(frozen=True, slots=True)
class ApprovalNeed:
    """One approval a planned flight needs (or, ``approvable=False``, a zone no approval can open)."""

    zone_id: str
    zone_name: str
    zone_name_zh: str
    kind: NeedKind
    approvable: bool
    reason: str
    reason_zh: str
    max_agl_m: float  # highest planned height above ground where the approval is needed
    when_start: datetime  # the flight's time window (aware)
    when_end: datetime
    where: BaseGeometry  # lon/lat part of the path that needs the approval


@dataclass(frozen=True, slots=True)
class Grant:
    """One approval from air traffic management, as recorded by the dispatcher."""

    id: str
    zone_id: str
    granted_by: str  # the approving body, e.g. the regional ATM bureau
    reference: str  # its approval number
    valid_from: datetime
    valid_to: datetime
    max_alt_agl_m: float
    polygon: Polygon | MultiPolygon | None = None  # approved area inside the zone (lon/lat); None = whole zone
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "zone_id", "granted_by", "reference"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"grant {self.id!r}: {name} must not be empty")
        _aware(f"grant {self.id!r}: valid_from", self.valid_from)
        _aware(f"grant {self.id!r}: valid_to", self.valid_to)
        if self.valid_to <= self.valid_from:
            raise ValueError(f"grant {self.id!r}: valid_to {self.valid_to.isoformat()} must be after "
                             f"valid_from {self.valid_from.isoformat()}")
        cap = self.max_alt_agl_m
        if not isinstance(cap, (int, float)) or not math.isfinite(cap) or cap < 0:
            raise ValueError(f"grant {self.id!r}: max_alt_agl_m must be a finite number >= 0, got {cap!r}")
        if self.polygon is not None:
            if not isinstance(self.polygon, (Polygon, MultiPolygon)) or self.polygon.is_empty:
                raise ValueError(f"grant {self.id!r}: polygon must be a non-empty Polygon or MultiPolygon")
            if not self.polygon.is_valid:
                raise ValueError(f"grant {self.id!r}: polygon is not valid ({shapely.is_valid_reason(self.polygon)})")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one grant does not cover one need (``grant_id`` is empty when no grant is concerned)."""

    grant_id: str
    code: RefusalCode
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class Coverage:
    """A need and the grant that covers it, or None and every reason why not."""

    need: ApprovalNeed
    grant: Grant | None
    refusals: tuple[Refusal, ...] = ()

    @property
    def covered(self) -> bool:
        return self.grant is not None


@dataclass(frozen=True, slots=True)
class GrantCheck:
    """The needs of one plan against the grants on record."""

    covered: tuple[Coverage, ...]
    uncovered: tuple[Coverage, ...]

    @property
    def ok(self) -> bool:
        return not self.uncovered

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{c.need.reason}: " + "; ".join(r.reason for r in c.refusals) for c in self.uncovered)

    @property
    def reasons_zh(self) -> tuple[str, ...]:
        return tuple(f"{c.need.reason_zh}：" + "；".join(r.reason_zh for r in c.refusals) for c in self.uncovered)


# --- needs -----------------------------------------------------------------------------------------------


def _legs(path: list[tuple[float, float]]) -> np.ndarray:
    return shapely.linestrings(np.array([[path[i], path[i + 1]] for i in range(len(path) - 1)]))


def _max_agl_inside(legs: np.ndarray, agl: np.ndarray, polygon: Polygon | MultiPolygon) -> float | None:
    """Highest height above ground of the path inside ``polygon`` (None when it stays out).

    Heights are linear along each leg, so the highest point of a leg's part inside the polygon is one
    of that part's vertices: the vertices of ``leg ∩ polygon`` are enough.
    """
    # A zero-length leg (a hover) is a point: a degenerate line intersects nothing in GEOS.
    zero = shapely.length(legs) == 0.0
    shapes = np.where(zero, shapely.get_point(legs, 0), legs)
    hit = np.flatnonzero(shapely.intersects(shapes, polygon))
    best: float | None = None
    for i in hit:
        if zero[i]:
            h = float(max(agl[i], agl[i + 1]))
            best = h if best is None else max(best, h)
            continue
        part = shapely.intersection(legs[i], polygon)
        pts = shapely.points(shapely.get_coordinates(part))
        if len(pts) == 0:
            continue
        t = np.nan_to_num(shapely.line_locate_point(legs[i], pts, normalized=True), nan=0.0)
        h = float(np.max(agl[i] + t * (agl[i + 1] - agl[i])))
        best = h if best is None else max(best, h)
    return best


def _parts_above(legs: np.ndarray, agl: np.ndarray, cap_m: float) -> BaseGeometry:
    """The parts of the path where the linear height profile is above ``cap_m`` (lon/lat lines)."""
    parts: list[BaseGeometry] = []
    for i, leg in enumerate(legs):
        a0, a1 = float(agl[i]), float(agl[i + 1])
        if max(a0, a1) <= cap_m:
            continue
        if a0 == a1:
            t0, t1 = 0.0, 1.0
        else:
            t_cross = (cap_m - a0) / (a1 - a0)  # where the profile meets the cap
            t0, t1 = (max(0.0, t_cross), 1.0) if a1 > a0 else (0.0, min(1.0, t_cross))
        if leg.length == 0.0:  # a hover: the leg is a point
            parts.append(Point(leg.coords[0]))
        else:
            parts.append(substring(leg, t0, t1, normalized=True))
    return shapely.union_all(parts)


def needed_approvals(path_lonlat: Sequence[tuple[float, float]], alts_agl_m: Sequence[float] | float,
                     zones: Sequence[Zone], *, when_start: datetime, when_end: datetime) -> list[ApprovalNeed]:
    """Every approval the flight needs, in zone order, the national ceiling last; empty when none.

    ``alts_agl_m`` is the height above ground at each vertex (or one height for all).

    >>> from datetime import datetime, UTC
    >>> needed_approvals([(106.6, 29.8), (106.61, 29.8)], 50.0, [],
    ...                  when_start=datetime(2024, 7, 1, 2, tzinfo=UTC), when_end=datetime(2024, 7, 1, 3, tzinfo=UTC))
    []
    """
    _window(when_start, when_end)
    path = [(float(lon), float(lat)) for lon, lat in path_lonlat]
    if not path:
        raise ValueError("empty path")
    if np.ndim(alts_agl_m) == 0:
        agl = np.full(len(path), float(alts_agl_m))  # type: ignore[arg-type]
    else:
        agl = np.asarray(alts_agl_m, dtype=float)
        if agl.shape != (len(path),):
            raise ValueError(f"{len(path)} vertices but {agl.size} heights")
    if not np.all(np.isfinite(agl)):
        raise ValueError("heights above ground must be finite numbers")
    if len(path) == 1:  # a hover at one point: a zero-length leg
        path = path * 2
        agl = np.repeat(agl, 2)
    legs = _legs(path)
    line = LineString(path) if len(set(path)) > 1 else Point(path[0])

    out: list[ApprovalNeed] = []
    for zone in zones:
        if zone.kind == "height_limited":
            continue
        worst = _max_agl_inside(legs, agl, zone.polygon)
        if worst is None:
            continue
        where = shapely.intersection(line, zone.polygon)
        zh = zone.name_zh or zone.name
        if zone.kind == "prohibited":
            out.append(ApprovalNeed(
                zone.id, zone.name, zh, "prohibited", False,
                f"crosses prohibited zone '{zone.name}': no approval can permit it, the plan is refused",
                f"穿越禁飞区“{zh}”：任何批准都不能放行，飞行计划不予通过",
                worst, when_start, when_end, where))
        else:
            out.append(ApprovalNeed(
                zone.id, zone.name, zh, "controlled", True,
                f"enters controlled airspace '{zone.name}' up to {worst:.0f} m above ground: "
                "needs approval from air traffic management",
                f"进入管制空域“{zh}”（离地最高 {worst:.0f} 米）：须经空中交通管理机构批准",
                worst, when_start, when_end, where))

    top = float(np.max(agl))
    if top > NATIONAL_CEILING_AGL_M + _TOL_M:
        out.append(ApprovalNeed(
            NATIONAL_CEILING_ID, _NATIONAL_NAME, _NATIONAL_NAME_ZH, "national_ceiling", True,
            f"flies {top:.0f} m above ground, above the {NATIONAL_CEILING_AGL_M:.0f} m true-height ceiling: "
            "controlled airspace, needs approval from air traffic management "
            "(Interim Regulations on Unmanned Aircraft Flight Management, 2024, art. 19)",
            f"离地 {top:.0f} 米，超过真高 {NATIONAL_CEILING_AGL_M:.0f} 米：属管制空域，须经空中交通管理机构批准"
            "（《无人驾驶航空器飞行管理暂行条例》，2024，第十九条）",
            top, when_start, when_end, _parts_above(legs, agl, NATIONAL_CEILING_AGL_M + _TOL_M)))
    return out


# --- grants ----------------------------------------------------------------------------------------------


def _t(value: datetime) -> str:
    return value.isoformat(timespec="minutes")


def _grant_refusals(need: ApprovalNeed, grant: Grant, now: datetime) -> list[Refusal]:
    """Every reason ``grant`` (for the need's zone) does not cover ``need``; empty when it does."""
    out: list[Refusal] = []
    g = grant.id
    if grant.valid_to <= now:
        out.append(Refusal(g, "expired", f"grant {g} expired at {_t(grant.valid_to)}",
                           f"批准 {g} 已于 {_t(grant.valid_to)} 过期"))
    elif grant.valid_to < need.when_end:
        out.append(Refusal(g, "ends_before_flight",
                           f"grant {g} ends at {_t(grant.valid_to)}, before the flight ends ({_t(need.when_end)})",
                           f"批准 {g} 于 {_t(grant.valid_to)} 结束，早于飞行结束（{_t(need.when_end)}）"))
    if grant.valid_from > need.when_start:
        out.append(Refusal(g, "not_yet_valid",
                           f"grant {g} is valid only from {_t(grant.valid_from)}, after the flight starts "
                           f"({_t(need.when_start)})",
                           f"批准 {g} 自 {_t(grant.valid_from)} 起生效，晚于飞行开始（{_t(need.when_start)}）"))
    if need.max_agl_m > grant.max_alt_agl_m + _TOL_M:
        out.append(Refusal(g, "altitude_above_cap",
                           f"the plan flies {need.max_agl_m:.0f} m above ground, above grant {g}'s cap of "
                           f"{grant.max_alt_agl_m:.0f} m",
                           f"计划离地 {need.max_agl_m:.0f} 米，高于批准 {g} 的限高 {grant.max_alt_agl_m:.0f} 米"))
    if (grant.polygon is not None and not need.where.is_empty
            and not shapely.covers(shapely.buffer(grant.polygon, _AREA_TOL_DEG), need.where)):
        out.append(Refusal(g, "area_outside", f"the path leaves the area approved by grant {g}",
                           f"航线超出批准 {g} 的范围"))
    return out


def check_grants(needs: Sequence[ApprovalNeed], grants: Sequence[Grant], *, now: datetime) -> GrantCheck:
    """Which needs a grant covers (the first grant in order that covers it whole), which not and why."""
    _aware("now", now)
    covered: list[Coverage] = []
    uncovered: list[Coverage] = []
    for need in needs:
        if not need.approvable:
            uncovered.append(Coverage(need, None, (Refusal(
                "", "prohibited", f"'{need.zone_name}' is a prohibited zone: no grant can cover it",
                f"“{need.zone_name_zh}”为禁飞区：任何批准都不能覆盖"),)))
            continue
        mine = [g for g in grants if g.zone_id == need.zone_id]
        if not mine:
            if grants:
                refusals = tuple(Refusal(g.id, "wrong_zone", f"grant {g.id} is for zone '{g.zone_id}', "
                                                             f"not '{need.zone_id}'",
                                         f"批准 {g.id} 针对空域“{g.zone_id}”，而非“{need.zone_id}”")
                                 for g in grants)
            else:
                refusals = (Refusal("", "no_grant", "no grant on record", "无批准记录"),)
            uncovered.append(Coverage(need, None, refusals))
            continue
        found: Grant | None = None
        why: list[Refusal] = []
        for g in mine:
            r = _grant_refusals(need, g, now)
            if not r:
                found = g
                break
            why.extend(r)
        if found is not None:
            covered.append(Coverage(need, found))
        else:
            uncovered.append(Coverage(need, None, tuple(why)))
    return GrantCheck(tuple(covered), tuple(uncovered))


def grant_caps(check: GrantCheck) -> dict[str, float]:
    """Approved altitude cap (m above ground) per covered zone id, for the altitude planner.

    Zones the plan needs but no grant covers are absent: the planner must keep out of them. The cap
    of ``NATIONAL_CEILING_ID`` replaces the 120 m ceiling where the path was approved to exceed it;
    no cap lifts a height-limited zone's ceiling.
    """
    caps: dict[str, float] = {}
    for c in check.covered:
        assert c.grant is not None  # a covered need always names its grant
        cap = c.grant.max_alt_agl_m
        caps[c.need.zone_id] = min(caps.get(c.need.zone_id, cap), cap)
    return caps


def require_grants(path_lonlat: Sequence[tuple[float, float]], alts_agl_m: Sequence[float] | float,
                   zones: Sequence[Zone], grants: Sequence[Grant], *, now: datetime,
                   until: datetime) -> tuple[dict[str, object], ...]:
    """The grants a flight flies under (one record per approval it needs; empty when it needs none), or
    ``PlanRefused`` saying which approvals are missing and why the grants on record do not cover them."""
    needs = needed_approvals(path_lonlat, alts_agl_m, [z for z in zones if z.kind == "controlled"],
                             when_start=now, when_end=until)
    if not needs:
        return ()
    check = check_grants(needs, grants, now=now)
    if not check.ok:
        raise PlanRefused(
            [f"{c.need.reason} — not covered: {'; '.join(r.reason for r in c.refusals)}" for c in check.uncovered],
            [f"{c.need.reason_zh}——未获批准：{'；'.join(r.reason_zh for r in c.refusals)}" for c in check.uncovered])
    return tuple({"grant_id": c.grant.id, "zone_id": c.need.zone_id, "reference": c.grant.reference,
                  "granted_by": c.grant.granted_by, "max_alt_agl_m": c.grant.max_alt_agl_m,
                  "valid_to": c.grant.valid_to.isoformat(), "flight_max_agl_m": round(c.need.max_agl_m, 1)}
                 for c in check.covered if c.grant is not None)


def approval_check(record: dict[str, object]) -> str:
    """One grant a plan flies under (a ``require_grants`` record), as a line of the plan's checks."""
    a = record
    return (f"approval: {a['zone_id']} flown up to {a['flight_max_agl_m']:.0f} m above ground under grant "
            f"#{a['grant_id']} ({a['reference']}, {a['granted_by']}, cap {a['max_alt_agl_m']:.0f} m, "
            f"valid to {a['valid_to']})")
