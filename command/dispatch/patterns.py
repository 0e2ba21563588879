"""Search and task patterns: orbit, parallel track, IAMSAR squares and sectors, patrols, surveys.

Pure geometry: lon/lat in, a ``Pattern`` (lon/lat waypoints, holds, length, duration, coverage)
out. All metric work is done in UTM 48N metres (``command.dispatch.geometry``); a pattern
is the working part of a mission only (no take-off, transit or return).

Model and sources:

- Camera swath across track, nadir pinhole camera: ``swath = 2 · agl · tan(hfov / 2)``;
  track spacing ``S = swath · (1 − overlap)`` (parallel-track / "creeping line" geometry,
  IAMSAR Manual Vol. II, 2022 ed., §5). The camera's horizontal field of view is taken
  across the track.
- Parallel track (lawnmower): tracks run along the long axis of the area's minimum rotated
  rectangle (fewest turns) or a given heading, one spacing apart, centred on the area.
  Track ends, ``edges``: ``"cover"`` (default) — each track spans the footprint of the band
  it is responsible for (every x where the band [y − S/2, y + S/2] meets the area), so
  every point of the area lies within S/2 ≤ swath/2 of a track and coverage is complete by
  construction; the price is that a track may run up to S/2 outside a slanted boundary.
  ``"clip"`` — tracks are the sweep lines clipped to the area: they never leave it, but
  corners between a slanted edge and a track end are missed (a few % of a compact area,
  more of a sliver: see ``coverage``).
- Concave areas (and holes) give several segments per sweep line. They are grouped into
  boustrophedon cells (runs of segments on consecutive lines that overlap one-to-one;
  Choset 2000, "Coverage of known spaces: the boustrophedon cellular decomposition",
  Autonomous Robots 9); each cell is flown back and forth, and the next cell is the one
  with a corner nearest the current position. Simplification: that order is greedy, not
  an optimal tour, and a jump between cells is a straight line that may cross outside the
  area or over a hole (one jump per cell); it is not planned around the outside.
  Boats do not take that short cut: their connectors are shortest paths on water.
- Expanding square (SS) and sector search (VS): IAMSAR Manual Vol. II (2022 ed.), §5 —
  SS legs 1, 1, 2, 2, 3, 3, … × S with 90° turns; VS three triangles of legs equal to the
  search radius, 120° turns, nine legs, an optional second pattern turned 30°.
- Duration: length / speed + holds + a fixed penalty per turn sharper than 60°
  (``DEFAULT_TURN_PENALTY_S``, an estimate from ArduCopter defaults, see below).
- Coverage: the share of the target polygon within ``swath / 2`` of the path (shapely
  buffer with flat caps, in UTM), where a target polygon exists.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from command.dispatch.geometry import UTM_48N, to_utm, utm_transformers

__all__ = [
    "BANK_CLEARANCE_M",
    "BROADCAST_AGL_M",
    "BROADCAST_AUDIBLE_RADIUS_M",
    "BROADCAST_SPEED_MPS",
    "DEFAULT_OVERLAP",
    "DEFAULT_TURN_PENALTY_S",
    "MIN_BOAT_LEG_M",
    "ORBIT_MAX_ACCEL_MPS2",
    "ORBIT_RATE_DEG_S",
    "TURN_THRESHOLD_DEG",
    "WIDE_24MM_HFOV_DEG",
    "AreaShare",
    "Loiter",
    "Pattern",
    "boat_survey",
    "broadcast_sweep",
    "camera_swath_m",
    "expanding_square",
    "orbit",
    "overwatch",
    "parallel_track",
    "partition_area",
    "route_patrol",
    "sector_search",
    "track_spacing_m",
]

LonLat = tuple[float, float]
Edges = Literal["cover", "clip"]
AreaLike = BaseGeometry | Sequence[LonLat]

# Side overlap between adjacent camera swaths: 20 % leaves margin for cross-track error and
# wind drift (a planning default; photogrammetry uses 60-80 %, search only needs no gaps).
DEFAULT_OVERLAP = 0.2

# Horizontal field of view of a 24 mm (35 mm-equivalent) lens: 2·atan(36 mm / 2 / 24 mm)
# = 73.7°. The 84° often quoted for such cameras is the diagonal field of view.
WIDE_24MM_HFOV_DEG = 73.7

# A heading change sharper than this counts as a turn (the vehicle slows down for it).
TURN_THRESHOLD_DEG = 60.0
# Time lost per turn, estimate: stopping from and regaining cruise speed costs v/a =
# 10 / 2.5 = 4 s at ArduCopter's defaults (WPNAV_SPEED 10 m/s, WPNAV_ACCEL 2.5 m/s²), yawing
# at ATC_SLEW_YAW 60°/s adds 1.5-3 s, jerk-limited S-curve ramps about 1 s: about 8 s.
DEFAULT_TURN_PENALTY_S = 8.0
# ArduCopter's circle controller (AC_Circle, libraries/AC_WPNav) flies a circle at most at
# sqrt(0.5 · a_max · r) — half the horizontal acceleration limit (WPNAV_ACCEL, default
# 2.5 m/s²) is spent towards the centre — and at most CIRCLE_RATE (default 20°/s) × r:
# small orbits are flown slower than cruise.
ORBIT_MAX_ACCEL_MPS2 = 2.5
ORBIT_RATE_DEG_S = 20.0

# Loudspeaker broadcast. Assumption, to be set per device: a drone loudspeaker of about
# 120 dB(A) at 1 m, flown at 50 m above ground, is intelligible about 150 m to the side:
# spherical spreading (−20·log10 r dB) leaves ≈ 120 − 20·log10(158 m) ≈ 76 dB(A) at the
# listener, about 10 dB above a 65 dB(A) street/rain background.
BROADCAST_AUDIBLE_RADIUS_M = 150.0
BROADCAST_AGL_M = 50.0
# Slow enough that a listener 0.8 radius off the track hears the message for
# 2·sqrt(150² − 120²) / 5 = 36 s: two repetitions of a 15 s message.
BROADCAST_SPEED_MPS = 5.0

# Boats: keep this far off the bank (shallows, debris, moored craft), and drop track parts
# shorter than this (not worth the turns). Planning assumptions.
BANK_CLEARANCE_M = 10.0
MIN_BOAT_LEG_M = 20.0

_LABELS = {
    "orbit": "orbit",
    "parallel_track": "parallel-track search",
    "expanding_square": "expanding-square search (IAMSAR SS)",
    "sector": "sector search (IAMSAR VS)",
    "patrol": "route patrol",
    "boat_survey": "boat survey on water",
    "broadcast": "loudspeaker broadcast sweep",
    "overwatch": "overwatch",
}


@dataclass(frozen=True, slots=True)
class Loiter:
    """A loiter at ``centre``: ``turns`` laps of ``radius_m``, or ``time_s`` (``inf``: until told)."""

    centre: LonLat
    radius_m: float
    turns: float | None
    time_s: float
    clockwise: bool = True


@dataclass(frozen=True, slots=True)
class Pattern:
    """The working part of a mission: lon/lat waypoints and what flying them costs and covers."""

    kind: str
    waypoints: tuple[LonLat, ...]
    hold_s: tuple[float, ...]  # hold/loiter at each waypoint, s (inf: until told otherwise)
    speed_mps: float
    length_m: float  # distance flown, loiter laps included
    est_duration_s: float  # length / speed + holds + turns × turn penalty (inf with an unlimited hold)
    turns: int  # heading changes sharper than TURN_THRESHOLD_DEG
    area_m2: float | None = None  # target area within the sensor swath (m²)
    coverage: float | None = None  # area_m2 / target_area_m2
    target_area_m2: float | None = None
    swath_m: float | None = None
    spacing_m: float | None = None
    tracks: int | None = None
    agl_m: float | None = None
    loiter: Loiter | None = None
    roi: LonLat | None = None  # where the camera should look, when not straight down
    notes: tuple[str, ...] = ()

    @property
    def legs(self) -> int:
        """Number of straight legs between waypoints."""
        return max(len(self.waypoints) - 1, 0)

    def describe(self) -> str:
        """One readable line: what, how far, how long, what it covers."""
        parts = [_LABELS.get(self.kind, self.kind)]
        if self.tracks is not None and self.spacing_m is not None:
            parts.append(f"{self.tracks} tracks {self.spacing_m:.0f} m apart")
        elif self.legs:
            parts.append(f"{self.legs} legs")
        if self.loiter is not None:
            lo = self.loiter
            what = "hover" if lo.radius_m == 0 else f"{lo.radius_m:.0f} m circle"
            if lo.turns is not None:
                what += f", {lo.turns:.1f} laps"
            what += " until told" if math.isinf(lo.time_s) else f" for {lo.time_s / 60:.1f} min"
            parts.append(what)
        if self.length_m > 0:
            parts.append(f"{self.length_m / 1000:.2f} km")
        if math.isinf(self.est_duration_s):
            parts.append("no time limit")
        else:
            parts.append(f"about {self.est_duration_s / 60:.1f} min at {self.speed_mps:g} m/s")
        if self.turns:
            parts.append(f"{self.turns} turns")
        if self.coverage is not None and self.target_area_m2:
            parts.append(f"covers {100 * self.coverage:.1f} % of {self.target_area_m2 / 1e6:.2f} km²")
        elif self.area_m2:
            parts.append(f"sweeps {self.area_m2 / 1e6:.2f} km²")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class AreaShare:
    """One of N equal-area parts of an area (lon/lat geometry) with its own parallel-track search."""

    index: int
    area: BaseGeometry
    area_m2: float
    pattern: Pattern


# --- camera geometry --------------------------------------------------------------------------

def camera_swath_m(agl_m: float, hfov_deg: float) -> float:
    """Ground width seen across track by a nadir camera: 2 · agl · tan(hfov / 2)."""
    if not agl_m > 0:
        raise ValueError(f"height above ground must be positive, got {agl_m} m")
    if not 0 < hfov_deg < 180:
        raise ValueError(f"horizontal field of view must be between 0° and 180° (exclusive), got {hfov_deg}°")
    return 2.0 * agl_m * math.tan(math.radians(hfov_deg) / 2.0)


def track_spacing_m(swath_m: float, overlap: float = DEFAULT_OVERLAP) -> float:
    """Distance between parallel tracks: swath · (1 − overlap)."""
    if not swath_m > 0:
        raise ValueError(f"swath must be positive, got {swath_m} m")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    return swath_m * (1.0 - overlap)


# --- patterns ---------------------------------------------------------------------------------

def orbit(centre: LonLat, *, radius_m: float, speed_mps: float, laps: float | None = None,
          duration_s: float | None = None, clockwise: bool = True,
          max_accel_mps2: float = ORBIT_MAX_ACCEL_MPS2) -> Pattern:
    """Fly to ``centre`` and circle it ``laps`` times or for ``duration_s``; the camera looks at the centre.

    The vehicle first moves out to the circle (one radius); the orbit speed is capped as
    ArduCopter's circle controller does (``ORBIT_MAX_ACCEL_MPS2``, ``ORBIT_RATE_DEG_S``).
    """
    _positive(speed_mps, "speed")
    _positive(radius_m, "orbit radius")
    if (laps is None) == (duration_s is None):
        raise ValueError("give exactly one of laps or duration_s for an orbit")
    v = min(speed_mps, math.sqrt(0.5 * max_accel_mps2 * radius_m), math.radians(ORBIT_RATE_DEG_S) * radius_m)
    circumference = 2.0 * math.pi * radius_m
    if laps is not None:
        _positive(laps, "number of laps")
        orbit_s = laps * circumference / v
    else:
        _positive(duration_s, "orbit duration")  # type: ignore[arg-type]
        orbit_s = float(duration_s)  # type: ignore[arg-type]
        laps = orbit_s * v / circumference
    c = _lonlat(centre)
    notes = (f"orbit speed limited to {v:.1f} m/s by the turn radius",) if v < speed_mps else ()
    return Pattern("orbit", (c,), (orbit_s,), speed_mps, radius_m + laps * circumference,
                   radius_m / speed_mps + orbit_s, 0, loiter=Loiter(c, radius_m, laps, orbit_s, clockwise),
                   roi=c, notes=notes)


def overwatch(target: LonLat, *, standoff_m: float, bearing_deg: float, speed_mps: float,
              duration_s: float | None = None, radius_m: float = 0.0, epsg: int = UTM_48N) -> Pattern:
    """Hold ``standoff_m`` from ``target`` on ``bearing_deg`` (from the target), looking at it.

    ``duration_s`` None holds until told otherwise (``hold_s`` and the duration are ``inf``);
    ``radius_m`` 0 hovers, more circles the standoff position.
    """
    _positive(speed_mps, "speed")
    if not standoff_m >= 0:
        raise ValueError(f"standoff distance must be zero or more, got {standoff_m} m")
    if not radius_m >= 0:
        raise ValueError(f"loiter radius must be zero or more, got {radius_m} m")
    if duration_s is not None:
        _positive(duration_s, "overwatch duration")
    hold = math.inf if duration_s is None else float(duration_s)
    fwd, inv = utm_transformers(epsg)
    tx, ty = fwd.transform(*_lonlat(target))
    b = math.radians(bearing_deg)
    lon, lat = inv.transform(tx + standoff_m * math.sin(b), ty + standoff_m * math.cos(b))
    pos = (float(lon), float(lat))
    return Pattern("overwatch", (pos,), (hold,), speed_mps, 0.0, hold, 0,
                   loiter=Loiter(pos, radius_m, None, hold), roi=_lonlat(target),
                   notes=(f"standoff {standoff_m:.0f} m on bearing {bearing_deg % 360:.0f}° from the target",))


def parallel_track(area: AreaLike, *, agl_m: float, hfov_deg: float, speed_mps: float,
                   overlap: float = DEFAULT_OVERLAP, heading_deg: float | None = None,
                   start: LonLat | None = None, edges: Edges = "cover",
                   turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N) -> Pattern:
    """Lawnmower over ``area`` (concave and holed allowed) with the camera's swath and overlap.

    Tracks run along the area's long axis unless ``heading_deg`` (compass, grid north) is
    given, and start at the corner nearest ``start``. ``edges``: see the module notes.
    """
    swath = camera_swath_m(agl_m, hfov_deg)
    return _lawnmower("parallel_track", area, swath_m=swath, spacing_m=track_spacing_m(swath, overlap),
                      speed_mps=speed_mps, heading_deg=heading_deg, start=start, edges=edges,
                      turn_penalty_s=turn_penalty_s, agl_m=agl_m, epsg=epsg)


def broadcast_sweep(zone: AreaLike, *, audible_radius_m: float = BROADCAST_AUDIBLE_RADIUS_M,
                    overlap: float = DEFAULT_OVERLAP, agl_m: float = BROADCAST_AGL_M,
                    speed_mps: float = BROADCAST_SPEED_MPS, heading_deg: float | None = None,
                    start: LonLat | None = None, edges: Edges = "cover",
                    turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N) -> Pattern:
    """Lawnmower over an evacuation zone for a loudspeaker: swath = 2 × audible radius, slow speed."""
    _positive(audible_radius_m, "audible radius")
    _positive(agl_m, "height above ground")
    swath = 2.0 * audible_radius_m
    spacing = track_spacing_m(swath, overlap)
    p = _lawnmower("broadcast", zone, swath_m=swath, spacing_m=spacing, speed_mps=speed_mps,
                   heading_deg=heading_deg, start=start, edges=edges, turn_penalty_s=turn_penalty_s, agl_m=agl_m,
                   epsg=epsg)
    edge = spacing / 2.0  # a listener is at most half a spacing from the nearest track
    dwell = 2.0 * math.sqrt(max(audible_radius_m**2 - edge**2, 0.0)) / speed_mps
    heard = f"a listener between two tracks hears the loudspeaker for at least {dwell:.0f} s per pass"
    return replace(p, notes=(*p.notes, heard))


def expanding_square(datum: LonLat, *, spacing_m: float, speed_mps: float, first_heading_deg: float = 0.0,
                     radius_m: float | None = None, legs: int | None = None,
                     turn: Literal["right", "left"] = "right", swath_m: float | None = None,
                     turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N) -> Pattern:
    """IAMSAR expanding square from ``datum``: legs 1, 1, 2, 2, 3, 3, … × S, 90° turns.

    Stops after ``legs`` legs, or before the first leg whose end is farther than
    ``radius_m`` from the datum. Coverage (with ``swath_m``) is of the area the legs enclose.
    """
    _positive(spacing_m, "track spacing")
    _positive(speed_mps, "speed")
    if (radius_m is None) == (legs is None):
        raise ValueError("give exactly one of radius_m or legs for an expanding square")
    if legs is not None and legs < 1:
        raise ValueError(f"an expanding square needs at least one leg, got {legs}")
    if radius_m is not None:
        _positive(radius_m, "search radius")
        if spacing_m > radius_m:
            raise ValueError(f"search radius {radius_m} m is shorter than the first leg ({spacing_m} m)")
    if turn not in ("right", "left"):
        raise ValueError(f"turn must be 'right' or 'left', got {turn!r}")
    sign = 1.0 if turn == "right" else -1.0
    pts = [np.zeros(2)]
    i = 0
    while legs is None or i < legs:
        length = spacing_m * (i // 2 + 1)
        h = math.radians(first_heading_deg + sign * 90.0 * i)
        nxt = pts[-1] + length * np.array([math.sin(h), math.cos(h)])
        if radius_m is not None and np.hypot(*nxt) > radius_m * (1 + 1e-9):
            break
        pts.append(nxt)
        i += 1
    return _datum_pattern("expanding_square", datum, np.array(pts), speed_mps=speed_mps, swath_m=swath_m,
                          spacing_m=spacing_m, turn_penalty_s=turn_penalty_s, epsg=epsg)


def sector_search(datum: LonLat, *, radius_m: float, speed_mps: float, first_heading_deg: float = 0.0,
                  second_pattern: bool = False, turn: Literal["right", "left"] = "right",
                  swath_m: float | None = None, turn_penalty_s: float = DEFAULT_TURN_PENALTY_S,
                  epsg: int = UTM_48N) -> Pattern:
    """IAMSAR sector search from ``datum``: 9 legs of ``radius_m``, 120° turns, back over the datum.

    ``second_pattern`` adds the second 9 legs turned 30° in the direction of the turns.
    Coverage (with ``swath_m``) is of the area the legs enclose.
    """
    _positive(radius_m, "search radius")
    _positive(speed_mps, "speed")
    if turn not in ("right", "left"):
        raise ValueError(f"turn must be 'right' or 'left', got {turn!r}")
    sign = 1.0 if turn == "right" else -1.0
    pts = [np.zeros(2)]
    for rotation in (0.0, 30.0) if second_pattern else (0.0,):
        h0 = first_heading_deg + sign * rotation
        for sector in range(3):
            # out, across, back over the datum; each triangle starts 240° on from the last
            for k in range(3):
                h = math.radians(h0 + sign * (240.0 * sector + 120.0 * k))
                pts.append(pts[-1] + radius_m * np.array([math.sin(h), math.cos(h)]))
            pts[-1] = np.zeros(2)  # closes on the datum: remove rounding drift
    return _datum_pattern("sector", datum, np.array(pts), speed_mps=speed_mps, swath_m=swath_m,
                          spacing_m=None, turn_penalty_s=turn_penalty_s, epsg=epsg)


def route_patrol(line: BaseGeometry | Sequence[LonLat], *, speed_mps: float, offset_m: float = 0.0,
                 side: Literal["left", "right"] = "left", out_and_back: bool = True, simplify_m: float = 10.0,
                 max_leg_m: float | None = None, swath_m: float | None = None,
                 turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N) -> Pattern:
    """Patrol along a line (river centre line, road), optionally ``offset_m`` to one side.

    ``side`` is relative to the line's direction. The line is simplified (``simplify_m``
    tolerance), then cut into legs no longer than ``max_leg_m``; ``out_and_back`` flies it
    back to the start. With ``swath_m`` the swept strip's area is reported.
    """
    _positive(speed_mps, "speed")
    if not offset_m >= 0:
        raise ValueError(f"offset must be zero or more (choose the side with side=), got {offset_m} m")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not simplify_m >= 0:
        raise ValueError(f"simplification tolerance must be zero or more, got {simplify_m} m")
    if max_leg_m is not None:
        _positive(max_leg_m, "maximum leg length")
    if isinstance(line, BaseGeometry):
        geom = line
    elif len(line) >= 2:
        geom = LineString([_lonlat(p) for p in line])
    else:
        raise ValueError("patrol line is empty: give at least two points")
    if geom.is_empty:
        raise ValueError("patrol line is empty: give at least two points")
    geom = shapely.line_merge(geom) if geom.geom_type == "MultiLineString" else geom
    if geom.geom_type != "LineString":
        raise ValueError(f"patrol line must be one connected line, got a {geom.geom_type}")
    xy = to_utm(geom, epsg)
    if xy.length <= 0:
        raise ValueError("patrol line has zero length")
    notes: list[str] = []
    path = xy.simplify(simplify_m) if simplify_m > 0 else xy
    if offset_m > 0:
        off = shapely.offset_curve(path, offset_m if side == "left" else -offset_m, quad_segs=4, join_style="round")
        off = shapely.line_merge(off) if off.geom_type == "MultiLineString" else off
        if off.geom_type == "MultiLineString":  # tight bends break the offset line: keep the longest run
            off = max(off.geoms, key=lambda g: g.length)
            notes.append("the offset line broke at tight bends; the longest continuous run is kept")
        if off.is_empty:
            raise ValueError(f"offset {offset_m} m leaves no line (bends tighter than the offset)")
        path = off.simplify(simplify_m) if simplify_m > 0 else off
        notes.append(f"{offset_m:.0f} m to the {side} of the line")
    pts = np.asarray(path.coords)[:, :2]
    if max_leg_m is not None:
        pts = _split_legs(pts, max_leg_m)
    if out_and_back:
        pts = np.vstack([pts, pts[-2::-1]])
    area = None
    if swath_m is not None:
        _positive(swath_m, "swath")
        area = float(_swept(pts, swath_m).area)
    return _pattern("patrol", pts, speed_mps=speed_mps, turn_penalty_s=turn_penalty_s, epsg=epsg,
                    area_m2=area, swath_m=swath_m, notes=tuple(notes))


def boat_survey(area: AreaLike, water: BaseGeometry, *, swath_m: float, speed_mps: float,
                overlap: float = DEFAULT_OVERLAP, heading_deg: float | None = None, start: LonLat | None = None,
                min_leg_m: float = MIN_BOAT_LEG_M, bank_clearance_m: float = BANK_CLEARANCE_M,
                turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N) -> Pattern:
    """Parallel tracks over ``area`` ∩ ``water`` that never leave the water.

    Tracks are clipped to the water shrunk by ``bank_clearance_m``; parts shorter than
    ``min_leg_m`` are dropped; connectors between tracks are shortest paths on that water.
    Water parts not reachable by water from the largest one are left out (see ``notes``).
    Coverage is of ``area`` ∩ ``water``.
    """
    spacing = track_spacing_m(swath_m, overlap)
    _positive(speed_mps, "speed")
    if not min_leg_m >= 0:
        raise ValueError(f"minimum leg length must be zero or more, got {min_leg_m} m")
    _positive(bank_clearance_m, "bank clearance")
    area_xy = _area_utm(area, epsg)
    if water is None or water.is_empty:
        raise ValueError("water geometry is empty: a boat survey needs water areas")
    water_xy = to_utm(water, epsg)
    target = shapely.intersection(area_xy, water_xy)
    if target.area <= 0:
        raise ValueError("the survey area has no water")
    # Navigable water near the area: off the banks, simplified within a quarter of the clearance.
    margin = max(spacing, 200.0)
    nav = shapely.intersection(water_xy.buffer(-bank_clearance_m), area_xy.buffer(margin))
    nav = nav.simplify(bank_clearance_m / 4.0)
    nav = shapely.union_all([g for g in shapely.get_parts(nav) if g.geom_type == "Polygon" and g.area > 0])
    if nav.is_empty:
        raise ValueError(f"no water in the area is more than {bank_clearance_m} m from a bank")
    frame = _Frame.for_area(target, heading_deg)  # tracks along the water's long axis, not the area's
    nav_l = frame.to_local(nav)
    ys, lines = _sweep(frame.to_local(target), spacing)
    # clip every track to navigable water, drop short parts
    clipped: list[list[tuple[float, float]]] = []
    for y, segs in zip(ys, lines, strict=True):
        keep: list[tuple[float, float]] = []
        for a, b in segs:
            piece = shapely.intersection(LineString([(a, y), (b, y)]), nav_l)
            for g in shapely.get_parts(piece):
                if g.geom_type == "LineString" and g.length >= max(min_leg_m, 1e-6):
                    x0, _, x1, _ = g.bounds
                    keep.append((x0, x1))
        clipped.append(sorted(keep))
    if not any(clipped):
        raise ValueError(f"no track on water is {min_leg_m} m long or more: the water is too narrow for "
                         f"{spacing:.0f} m spacing")
    router = _Router(nav_l)
    # keep the water part holding the most track length; others cannot be reached by water
    part = {(k, j): router.part_of(np.array([(a + b) / 2, ys[k]]))
            for k, segs in enumerate(clipped) for j, (a, b) in enumerate(segs)}
    totals: dict[int, float] = {}
    for (k, j), lab in part.items():
        a, b = clipped[k][j]
        totals[lab] = totals.get(lab, 0.0) + (b - a)
    main = max(totals, key=lambda lab: totals[lab])
    notes: list[str] = []
    dropped = sum(1 for lab in part.values() if lab != main)
    if dropped:
        notes.append(f"{dropped} track parts on water not connected to the main water body were left out")
    kept = [[s for j, s in enumerate(segs) if part[k, j] == main] for k, segs in enumerate(clipped)]
    order = _order(kept, ys, frame.start_local(start, epsg))
    pts: list[np.ndarray] = []
    skipped = 0
    for enter, leave in order:
        if pts:
            via = router.route(pts[-1], enter)
            if via is None:
                skipped += 1
                continue
            pts.extend(via[1:-1])
        pts.extend([enter, leave])
    if skipped:
        notes.append(f"{skipped} track parts could not be reached on water and were left out")
    path = frame.to_utm_xy(np.array(pts))
    n_tracks = sum(len(s) for s in kept) - skipped
    return _pattern("boat_survey", path, speed_mps=speed_mps, turn_penalty_s=turn_penalty_s, epsg=epsg,
                    target=target, swath_m=swath_m, spacing_m=spacing, tracks=n_tracks,
                    notes=tuple(notes) + (f"keeps {bank_clearance_m:.0f} m off the banks",))


def partition_area(area: AreaLike, n: int, *, agl_m: float, hfov_deg: float, speed_mps: float,
                   overlap: float = DEFAULT_OVERLAP, heading_deg: float | None = None,
                   start: LonLat | None = None, edges: Edges = "cover",
                   turn_penalty_s: float = DEFAULT_TURN_PENALTY_S, epsg: int = UTM_48N,
                   rel_tol: float = 1e-6) -> tuple[AreaShare, ...]:
    """Split ``area`` into ``n`` parts of equal area by cuts across its long axis; one lawnmower each.

    Cut positions are found by bisection on the area to one side of the cut (monotone in
    the cut position), to ``rel_tol`` of the part area. Parts are ordered along the long axis.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"number of parts must be a whole number, got {n!r}")
    if n < 1:
        raise ValueError(f"number of parts must be at least 1, got {n}")
    camera_swath_m(agl_m, hfov_deg)  # validate before the work
    xy = _area_utm(area, epsg)
    frame = _Frame.for_area(xy, None)
    local = frame.to_local(xy)
    x0, y0, x1, y1 = local.bounds
    total = local.area
    pad = 1.0 + 0.01 * max(x1 - x0, y1 - y0)
    cuts = [x0 - pad]

    def left_of(x: float) -> float:
        return float(shapely.clip_by_rect(local, x0 - pad, y0 - pad, x, y1 + pad).area)

    for i in range(1, n):
        goal = total * i / n
        lo, hi = cuts[-1], x1 + pad
        for _ in range(200):  # area left of the cut grows with the cut: bisection
            mid = 0.5 * (lo + hi)
            got = left_of(mid)
            if abs(got - goal) <= rel_tol * total / n:
                lo = hi = mid
                break
            lo, hi = (mid, hi) if got < goal else (lo, mid)
        cuts.append(0.5 * (lo + hi))
    cuts.append(x1 + pad)
    _, inv = utm_transformers(epsg)
    shares = []
    for i in range(n):
        part_l = shapely.intersection(local, shapely.box(cuts[i], y0 - pad, cuts[i + 1], y1 + pad))
        part_l = shapely.union_all([g for g in shapely.get_parts(part_l) if g.geom_type == "Polygon"])
        part_xy = frame.to_utm(part_l)
        part_ll = shapely.transform(part_xy, lambda c: np.column_stack(inv.transform(c[:, 0], c[:, 1])))
        pattern = parallel_track(part_ll, agl_m=agl_m, hfov_deg=hfov_deg, speed_mps=speed_mps, overlap=overlap,
                                 heading_deg=heading_deg, start=start, edges=edges,
                                 turn_penalty_s=turn_penalty_s, epsg=epsg)
        shares.append(AreaShare(i, part_ll, float(part_xy.area), pattern))
    return tuple(shares)


# --- internals --------------------------------------------------------------------------------

def _positive(value: float | None, what: str) -> None:
    if value is None or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{what} must be a positive number, got {value}")


def _lonlat(p: Sequence[float]) -> LonLat:
    lon, lat = float(p[0]), float(p[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"not a lon/lat position: {p!r}")
    return (lon, lat)


def _area_utm(area: AreaLike, epsg: int) -> BaseGeometry:
    """Validate an area (lon/lat polygon, multipolygon or ring of points) and project it."""
    if isinstance(area, BaseGeometry):
        geom = area
    else:
        pts = [_lonlat(p) for p in area]
        if len(pts) < 3:
            raise ValueError(f"area polygon is empty: it needs at least three corners, got {len(pts)}")
        geom = Polygon(pts)
    if geom.is_empty:
        raise ValueError("area polygon is empty")
    if not isinstance(geom, (Polygon, MultiPolygon)):
        raise TypeError(f"area must be a polygon, got a {geom.geom_type}")
    if not geom.is_valid:
        raise ValueError(f"area polygon is not valid ({shapely.is_valid_reason(geom)})")
    xy = to_utm(geom, epsg)
    if not xy.area > 0:
        raise ValueError("area polygon has zero area")
    return xy


@dataclass(frozen=True, slots=True)
class _Frame:
    """A local frame: origin at the area's centroid, x along the track direction."""

    cx: float
    cy: float
    theta: float  # track direction, radians counter-clockwise from grid east

    @staticmethod
    def for_area(xy: BaseGeometry, heading_deg: float | None) -> _Frame:
        c = xy.centroid
        if heading_deg is not None:
            if not math.isfinite(heading_deg):
                raise ValueError(f"heading must be a finite number of degrees, got {heading_deg}")
            return _Frame(c.x, c.y, math.radians(90.0 - heading_deg))
        rect = np.asarray(shapely.minimum_rotated_rectangle(xy).exterior.coords)
        e0, e1 = rect[1] - rect[0], rect[2] - rect[1]
        e = e0 if np.hypot(*e0) >= np.hypot(*e1) else e1
        return _Frame(c.x, c.y, math.atan2(e[1], e[0]))

    def _rot(self, pts: np.ndarray, sign: float) -> np.ndarray:
        cs, sn = math.cos(self.theta), sign * math.sin(self.theta)
        return np.column_stack([cs * pts[:, 0] - sn * pts[:, 1], sn * pts[:, 0] + cs * pts[:, 1]])

    def to_local_xy(self, pts: np.ndarray) -> np.ndarray:
        return self._rot(np.asarray(pts, dtype=float) - [self.cx, self.cy], -1.0)

    def to_utm_xy(self, pts: np.ndarray) -> np.ndarray:
        return self._rot(np.asarray(pts, dtype=float).reshape(-1, 2), 1.0) + [self.cx, self.cy]

    def to_local(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self.to_local_xy)

    def to_utm(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self.to_utm_xy)

    def start_local(self, start: LonLat | None, epsg: int) -> np.ndarray | None:
        if start is None:
            return None
        fwd, _ = utm_transformers(epsg)
        x, y = fwd.transform(*_lonlat(start))
        return self.to_local_xy(np.array([[x, y]]))[0]


def _sweep(local: BaseGeometry, spacing: float,
           edges: Edges = "cover") -> tuple[np.ndarray, list[list[tuple[float, float]]]]:
    """Sweep lines (y) and, on each, the x-intervals of its track segments.

    Lines are centred on the area's extent, one spacing apart, so the bands [y − S/2, y + S/2]
    cover it. ``cover``: a line's intervals are the x-projection of area ∩ band (parts
    merged); ``clip``: the line ∩ area.
    """
    x0, y0, x1, y1 = local.bounds
    height = y1 - y0
    n = max(1, math.ceil(height / spacing - 1e-9))
    first = y0 + (height - (n - 1) * spacing) / 2.0
    ys = first + spacing * np.arange(n)
    tiny = 1e-9 * local.area  # slivers from rounding, not area
    lines: list[list[tuple[float, float]]] = []
    for y in ys:
        if edges == "cover":
            band = shapely.clip_by_rect(local, x0 - 1.0, y - spacing / 2.0, x1 + 1.0, y + spacing / 2.0)
            spans = sorted((float(b[0]), float(b[2])) for g in shapely.get_parts(band)
                           if g.area > tiny for b in [g.bounds])
        else:
            cut = shapely.intersection(LineString([(x0 - 1.0, y), (x1 + 1.0, y)]), local)
            spans = sorted((float(b[0]), float(b[2])) for g in shapely.get_parts(cut)
                           if g.geom_type == "LineString" and g.length > 0 for b in [g.bounds])
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        lines.append(merged)
    return ys, lines


def _cells(lines: list[list[tuple[float, float]]]) -> list[list[tuple[int, int]]]:
    """Boustrophedon cells: runs of segments on consecutive lines that overlap one-to-one.

    A cell ends where the area splits (a segment overlaps two on the next line) or merges
    (Choset 2000, boustrophedon cellular decomposition, on the sweep lines).
    """
    def overlaps(k: int, j: int, k2: int) -> list[int]:
        if not 0 <= k2 < len(lines):
            return []
        a, b = lines[k][j]
        return [i for i, (c, d) in enumerate(lines[k2]) if c <= b and d >= a]

    cells: list[list[tuple[int, int]]] = []
    placed: set[tuple[int, int]] = set()
    for k, segs in enumerate(lines):
        for j in range(len(segs)):
            if (k, j) in placed:
                continue
            cell = [(k, j)]
            placed.add((k, j))
            while True:
                ck, cj = cell[-1]
                up = overlaps(ck, cj, ck + 1)
                if len(up) != 1 or overlaps(ck + 1, up[0], ck) != [cj] or (ck + 1, up[0]) in placed:
                    break
                cell.append((ck + 1, up[0]))
                placed.add((ck + 1, up[0]))
            cells.append(cell)
    return cells


def _order(lines: list[list[tuple[float, float]]], ys: np.ndarray,
           start: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Segments in flying order, as (enter, leave) points.

    Each cell is flown boustrophedon from the corner it is entered at; the next cell is
    the one with a corner nearest the current position (greedy, not an optimal tour). The
    first corner is the one nearest ``start`` (else the lowest line's left end).
    """
    cells = _cells(lines)
    if not cells:
        return []

    def point(seg: tuple[int, int], left: bool) -> np.ndarray:
        a, b = lines[seg[0]][seg[1]]
        return np.array([a if left else b, ys[seg[0]]])

    def corners(c: int) -> list[tuple[int, bool, bool]]:  # (cell, from its first line?, enter at left?)
        return [(c, first, left) for first in (True, False) for left in (True, False)]

    todo = set(range(len(cells)))
    if start is None:
        here = point(cells[0][0], True)
    else:
        here = start
    out: list[tuple[np.ndarray, np.ndarray]] = []
    while todo:
        options = [o for c in sorted(todo) for o in corners(c)]
        c, first, left = min(options, key=lambda o: float(np.hypot(
            *(point(cells[o[0]][0 if o[1] else -1], o[2]) - here))))
        todo.discard(c)
        for seg in cells[c] if first else cells[c][::-1]:
            out.append((point(seg, left), point(seg, not left)))
            left = not left
        here = out[-1][1]
    return out


def _count_turns(xy: np.ndarray) -> int:
    d = np.diff(xy, axis=0)
    d = d[np.hypot(d[:, 0], d[:, 1]) > 1e-6]
    if len(d) < 2:
        return 0
    h = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    turn = np.abs((np.diff(h) + 180.0) % 360.0 - 180.0)
    return int(np.count_nonzero(turn > TURN_THRESHOLD_DEG))


def _dedupe(xy: np.ndarray, tol: float = 0.01) -> np.ndarray:
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.hypot(*np.diff(xy, axis=0).T) > tol
    return xy[keep]


def _swept(xy: np.ndarray, swath_m: float) -> BaseGeometry:
    """Ground within the sensor swath of a path (flat caps: nothing is claimed past the ends)."""
    if len(xy) < 2:
        return Point(xy[0]).buffer(swath_m / 2.0)
    return LineString(xy).buffer(swath_m / 2.0, cap_style="flat")


def _split_legs(xy: np.ndarray, max_leg_m: float) -> np.ndarray:
    out = [xy[0]]
    for p, q in itertools.pairwise(xy):
        n = max(1, math.ceil(float(np.hypot(*(q - p))) / max_leg_m))
        out.extend(p + (q - p) * t for t in np.arange(1, n + 1) / n)
    return np.array(out)


def _pattern(kind: str, xy: np.ndarray, *, speed_mps: float, turn_penalty_s: float, epsg: int,
             target: BaseGeometry | None = None, swath_m: float | None = None, area_m2: float | None = None,
             spacing_m: float | None = None, tracks: int | None = None, agl_m: float | None = None,
             notes: tuple[str, ...] = ()) -> Pattern:
    """Assemble a Pattern from a UTM path: length, turns, duration, coverage, lon/lat waypoints."""
    if not turn_penalty_s >= 0:
        raise ValueError(f"turn penalty must be zero or more, got {turn_penalty_s} s")
    xy = _dedupe(np.asarray(xy, dtype=float).reshape(-1, 2))
    length = float(np.hypot(*np.diff(xy, axis=0).T).sum()) if len(xy) > 1 else 0.0
    turns = _count_turns(xy)
    coverage = target_area = None
    if target is not None and swath_m is not None:
        target_area = float(target.area)
        area_m2 = float(shapely.intersection(target, _swept(xy, swath_m)).area)
        coverage = area_m2 / target_area
    _, inv = utm_transformers(epsg)
    lon, lat = inv.transform(xy[:, 0], xy[:, 1])
    waypoints = tuple((float(a), float(b)) for a, b in zip(np.atleast_1d(lon), np.atleast_1d(lat), strict=True))
    return Pattern(kind, waypoints, (0.0,) * len(waypoints), speed_mps, length,
                   length / speed_mps + turns * turn_penalty_s, turns, area_m2, coverage, target_area, swath_m,
                   spacing_m, tracks, agl_m, notes=notes)


def _lawnmower(kind: str, area: AreaLike, *, swath_m: float, spacing_m: float, speed_mps: float,
               heading_deg: float | None, start: LonLat | None, edges: Edges, turn_penalty_s: float,
               agl_m: float | None, epsg: int) -> Pattern:
    _positive(speed_mps, "speed")
    _positive(spacing_m, "track spacing")
    if edges not in ("cover", "clip"):
        raise ValueError(f"edges must be 'cover' or 'clip', got {edges!r}")
    xy = _area_utm(area, epsg)
    frame = _Frame.for_area(xy, heading_deg)
    ys, lines = _sweep(frame.to_local(xy), spacing_m, edges)
    order = _order(lines, ys, frame.start_local(start, epsg))
    if not order:
        raise ValueError("area polygon is too small or thin to lay tracks over")
    path = frame.to_utm_xy(np.array([p for seg in order for p in seg]))
    cells = len(_cells(lines))
    notes = () if cells == 1 else (
        f"{cells} cells: straight jumps between them may cross outside the area",)
    return _pattern(kind, path, speed_mps=speed_mps, turn_penalty_s=turn_penalty_s, epsg=epsg, target=xy,
                    swath_m=swath_m, spacing_m=spacing_m, tracks=len(order), agl_m=agl_m, notes=notes)


def _datum_pattern(kind: str, datum: LonLat, local: np.ndarray, *, speed_mps: float, swath_m: float | None,
                   spacing_m: float | None, turn_penalty_s: float, epsg: int) -> Pattern:
    """A pattern given in metres east/north of a datum."""
    fwd, _ = utm_transformers(epsg)
    dx, dy = fwd.transform(*_lonlat(datum))
    xy = local + [dx, dy]
    target = area = None
    if swath_m is not None:
        _positive(swath_m, "swath")
        hull = shapely.convex_hull(shapely.multipoints(xy))
        if hull.area > 0:
            target = hull
        else:  # a single leg encloses nothing: report the swept strip only
            area = float(_swept(xy, swath_m).area)
    return _pattern(kind, xy, speed_mps=speed_mps, turn_penalty_s=turn_penalty_s, epsg=epsg, target=target,
                    swath_m=swath_m, area_m2=area, spacing_m=spacing_m)


class _Router:
    """Shortest paths inside a polygonal region (visibility graph over its reflex corners)."""

    def __init__(self, region: BaseGeometry) -> None:
        self.parts = [g for g in shapely.get_parts(region) if g.geom_type == "Polygon"]
        # a millimetre of slack so that paths along the region's own boundary count as inside
        self.test = region.buffer(1e-3)
        shapely.prepare(self.test)
        nodes: list[np.ndarray] = []
        for poly in self.parts:
            poly = orient(poly, sign=1.0)  # exterior counter-clockwise, holes clockwise: inside on the left
            for ring in [poly.exterior, *poly.interiors]:
                c = np.asarray(ring.coords)[:-1, :2]
                if len(c) < 3:
                    continue
                prev, nxt = np.roll(c, 1, axis=0), np.roll(c, -1, axis=0)
                cross = ((c[:, 0] - prev[:, 0]) * (nxt[:, 1] - c[:, 1])
                         - (c[:, 1] - prev[:, 1]) * (nxt[:, 0] - c[:, 0]))
                nodes.append(c[cross < 0])  # reflex corners: where shortest paths bend
        self.nodes = np.vstack(nodes) if nodes else np.zeros((0, 2))
        n = len(self.nodes)
        i, j = np.triu_indices(n, k=1)
        ok = self._visible(self.nodes[i], self.nodes[j])
        self._edges = (i[ok], j[ok], np.hypot(*(self.nodes[i[ok]] - self.nodes[j[ok]]).T))

    def _visible(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if len(a) == 0:
            return np.zeros(0, dtype=bool)
        return shapely.covers(self.test, shapely.linestrings(np.stack([a, b], axis=1)))

    def part_of(self, p: np.ndarray) -> int:
        d = [poly.distance(Point(p)) for poly in self.parts]
        return int(np.argmin(d))

    def route(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray] | None:
        """Points from ``a`` to ``b`` staying inside the region, or None when not connected."""
        if self._visible(a[None], b[None])[0]:
            return [a, b]
        n = len(self.nodes)
        if n == 0:
            return None
        ends = np.array([a, b])
        ia, ib = [], []
        for p in ends:
            ok = self._visible(np.repeat(p[None], n, axis=0), self.nodes)
            ia.append(np.flatnonzero(ok))
            ib.append(np.hypot(*(self.nodes[ok] - p).T))
        i, j, w = self._edges
        rows = np.concatenate([i, ia[0], ia[1]])
        cols = np.concatenate([j, np.full(len(ia[0]), n), np.full(len(ia[1]), n + 1)])
        weights = np.concatenate([w, ib[0], ib[1]]) + 1e-9  # explicit zeros would vanish from the graph
        graph = csr_matrix((weights, (rows, cols)), shape=(n + 2, n + 2))
        dist, pred = dijkstra(graph, directed=False, indices=n, return_predecessors=True)
        if not math.isfinite(dist[n + 1]):
            return None
        out = [b]
        k = pred[n + 1]
        while k != n:
            out.append(self.nodes[k])
            k = pred[k]
        out.append(a)
        return out[::-1]
