"""Safe paths around airspace, boat paths on water, altitude profiles over terrain, failsafe returns.

Pure: lon/lat (WGS84) in and out, metric work in UTM (``geometry.utm_transformers``), terrain as a
function ``terrain_fn(lons, lats) -> metres AMSL`` (``District.terrain.elevation_along`` fits).

Models and sources:

- Shortest path among polygonal obstacles: the shortest path bends only at convex corners of the
  obstacles, and each of its edges is tangent to the obstacles at both ends, so the reduced
  visibility graph (convex corners, mutually visible bitangent pairs) plus Dijkstra finds it
  (Lozano-Pérez & Wesley 1979, "An algorithm for planning collision-free paths among polyhedral
  obstacles", CACM 22(10); de Berg et al. 2008, Computational Geometry, ch. 15). The obstacles are
  the prohibited zones and the controlled zones without an approval, buffered by a horizontal
  margin; a segment may run along a buffered boundary but never through its interior (DE-9IM
  interior/interior, GEOS). The graph is built once per obstacle set (``PathPlanner``); each
  query adds the start and the goal.
- Boats: the same planner inside the water polygon shrunk by a bank margin; the land, the holes
  of the water polygon and the blocked bridges are the obstacles. A leg against the current is
  judged by the current triangle (the vessel crabs to hold its track: ground speed
  = √(V² − c⊥²) + c∥; Bowditch, The American Practical Navigator, NGA Pub. 9, "Dead
  Reckoning", current sailing).
- Altitude profile: each leg is flown level at one height above mean sea level (mission frame
  ``FRAME_GLOBAL_AMSL``, never "above home", which over a ridge means a height above a home far
  below). The height keeps ``clearance_m`` above the highest ground under the leg and a lateral
  margin, and stays at or below the true-height cap under the track (120 m, Interim Regulations
  on Unmanned Aircraft Flight Management 2024, art. 19; a height-limited zone's ceiling; an
  approval's ceiling). A leg where no height fits is split where the ground changes; a change of
  level happens over a waypoint (two items at one place), so every point flown is checked.
- Failsafe return: ArduCopter RTL climbs at its position, flies straight to the closest of home
  and the rally points at one height above home, then descends (ArduCopter docs "RTL Mode";
  ``ModeRTL::compute_return_target`` in ArduCopter/mode_rtl.cpp; ``AP_Rally``): return height =
  max(rally alt, RTL_ALT, current + RTL_CLIMB_MIN), limited near the target by the cone
  RTL_CONE_SLOPE × distance, never below the current height. SmartRTL retraces the path flown
  (docs "Smart RTL Mode"; the buffer holds SRTL_POINTS points and SmartRTL is refused once it is
  full).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely import STRtree
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from command.dispatch.airspace import NATIONAL_CEILING_AGL_M, Zone
from command.dispatch.errors import DispatchError, PlanRefused
from command.dispatch.geometry import UTM_48N, to_utm, utm_transformers
from uav.mission import FRAME_GLOBAL_AMSL, MissionItem, waypoint
from uav.rally import RallyPoint

__all__ = [
    "DEFAULT_BUFFER_M",
    "DEFAULT_CLEARANCE_M",
    "DEFAULT_LATERAL_M",
    "DEFAULT_WATER_MARGIN_M",
    "AltitudeProfile",
    "Layers",
    "LegCurrent",
    "NoPath",
    "Path",
    "PathPlanner",
    "ProfileLeg",
    "ReturnCheck",
    "ReturnChoice",
    "ReturnFailure",
    "WaterPlanner",
    "altitude_layers",
    "altitude_profile",
    "check_current",
    "check_returns",
    "choose_return",
    "obstacle_zones",
    "plan_path",
    "plan_water_path",
]

TerrainFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
LonLat = tuple[float, float]

# Horizontal margin around an obstacle: a copter's stopping distance at 12 m/s cruise with
# ArduCopter's default WPNAV_ACCEL 2.5 m/s² is v²/2a ≈ 29 m; with cross-track error in gusts and
# GNSS error the margin is rounded up to 100 m (our rule, not a regulation).
DEFAULT_BUFFER_M = 100.0
# Largest boundary move when simplifying buffered obstacles (at most half the buffer). The buffer
# is widened by it and by the chord sag of the rounded corners, so every point of a path keeps at
# least ``buffer_m`` from every obstacle (checked when the graph is built; else no simplifying).
DEFAULT_SIMPLIFY_M = 10.0
# Segments per quarter circle of a buffer's rounded corners (GEOS quad_segs): 2 keeps a
# rectangle to 12 corners, at the price of a radius 1/cos 22.5° ≈ 8 % wider.
DEFAULT_QUAD_SEGS = 2
# A boat keeps this far from the bank (hulls, moored craft, shallows): our rule.
DEFAULT_WATER_MARGIN_M = 20.0
# Below this ground speed a leg is refused: progress against the current is too slow to plan on
# (our rule, from the dispatch brief; a boat holding station is not on its way).
MIN_GROUND_SPEED_MPS = 0.5
# Height above the highest ground: the same 60 m as the recon planner (mission.plan_recon).
DEFAULT_CLEARANCE_M = 60.0
# Across-track margin for the terrain under a leg (position error and drift in wind): our rule.
DEFAULT_LATERAL_M = 30.0
_TOL_M = 0.5  # heights are planned in whole metres; rounding noise is not a breach
_NUDGE_M = 0.01  # a point moved out of a buffer lies this far outside its boundary

# ArduCopter defaults (parameter docs; AP_Rally.cpp, mode_rtl.cpp, AP_SmartRTL):
RTL_CONE_SLOPE_DEFAULT = 3.0  # RTL_CONE_SLOPE
RTL_MIN_CONE_SLOPE = 0.5  # below this ArduCopter ignores the cone (RTL_MIN_CONE_SLOPE)
RTL_ALT_MIN_M = 0.3  # RTL_ALT_MIN, 30 cm
SRTL_POINTS_DEFAULT = 300  # SRTL_POINTS
# A planned path may use at most this share of the SmartRTL buffer: drift, loiters and the climb
# add points beyond the planned vertices (our margin).
_SRTL_SHARE = 0.5
# The path must start this close to home for SmartRTL's retrace to follow checked legs only.
_HOME_TOLERANCE_M = 25.0

_GEOD = Geod(ellps="WGS84")


# ---- errors and small helpers ----------------------------------------------------------------


class NoPath(DispatchError, ValueError):
    """No safe path exists (or an end lies where it cannot be); ``reason`` says why (en, zh)."""

    def __init__(self, reason: str, reason_zh: str) -> None:
        self.reason = reason
        self.reason_zh = reason_zh
        self.reasons: tuple[str, ...] = (reason,)
        self.reasons_zh: tuple[str, ...] = (reason_zh,)
        super().__init__(reason)


def _lonlat(p: Sequence[float], what: str) -> LonLat:
    try:
        lon, lat = float(p[0]), float(p[1])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"{what}: expected (lon, lat), got {p!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"{what}: ({lon}, {lat}) is not a WGS84 lon/lat")
    return lon, lat


def _fmt(p: Sequence[float]) -> str:
    return f"({p[0]:.5f}, {p[1]:.5f})"


def _xy(points: Sequence[LonLat] | np.ndarray, epsg: int) -> np.ndarray:
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(pts[:, 0], pts[:, 1])
    return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])


def _lonlats(xy: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    _, inv = utm_transformers(epsg)
    lon, lat = inv.transform(xy[:, 0], xy[:, 1])
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    """The non-empty polygons of a geometry (collections flattened, lines and points dropped)."""
    out: list[Polygon] = []
    for g in shapely.get_parts(geom):
        if isinstance(g, Polygon):
            if not g.is_empty and g.area > 0:
                out.append(g)
        elif not g.is_empty and hasattr(g, "geoms"):
            out.extend(_polygons(g))
    return out


def _name_zh(zone: Zone) -> str:
    return zone.name_zh or zone.name


def obstacle_zones(zones: Sequence[Zone], *, approved_ids: Sequence[str] = ()) -> tuple[Zone, ...]:
    """The zones a path must go around: prohibited ones, and controlled ones without an approval.

    >>> obstacle_zones([])
    ()
    """
    approved = set(approved_ids)
    return tuple(z for z in zones if z.kind == "prohibited" or (z.kind == "controlled" and z.id not in approved))


# ---- the visibility graph (metres) -----------------------------------------------------------


def _corners(parts: Sequence[Polygon]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Convex corners of the obstacles: (xy, previous corner, next corner, part index) per corner.

    Rings are oriented so the obstacle lies on the left (exterior counter-clockwise, holes
    clockwise); a corner is convex when the boundary turns left there.
    """
    xy, prev, nxt, part = [], [], [], []
    for k, poly in enumerate(parts):
        poly = orient(poly, sign=1.0)
        for ring in (poly.exterior, *poly.interiors):
            c = np.asarray(ring.coords, dtype=float)[:-1, :2]
            if len(c) < 3:
                continue
            p, n = np.roll(c, 1, axis=0), np.roll(c, -1, axis=0)
            a, b = c - p, n - c
            cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
            scale = np.hypot(a[:, 0], a[:, 1]) * np.hypot(b[:, 0], b[:, 1])
            keep = cross > 1e-9 * scale
            xy.append(c[keep])
            prev.append(p[keep])
            nxt.append(n[keep])
            part.append(np.full(int(keep.sum()), k))
    if not xy:
        empty = np.zeros((0, 2))
        return empty, empty, empty, np.zeros(0, dtype=int)
    return np.concatenate(xy), np.concatenate(prev), np.concatenate(nxt), np.concatenate(part)


def _cross(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    return d[..., 0] * w[..., 1] - d[..., 1] * w[..., 0]


def _tangent_at(v: np.ndarray, d: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Whether the line through corner ``v`` with direction ``d`` has both neighbours on one side.

    Exact signs, no tolerance: a near-collinear neighbour may drop a candidate edge (a path a
    hair longer at worst), never admit an unsafe one (visibility is tested apart).
    """
    return _cross(d, prev - v) * _cross(d, nxt - v) >= 0.0


class _Visibility:
    """Reduced visibility graph among obstacle polygons (metres); boundaries may be touched."""

    def __init__(self, parts: Sequence[Polygon]) -> None:
        self.parts = np.array(list(parts), dtype=object)
        for p in self.parts:
            shapely.prepare(p)
        self.tree = STRtree(self.parts)
        # A convex part cannot be re-entered by a segment tangent to it at one of its corners.
        self.convex = np.array([len(p.interiors) == 0 and p.convex_hull.area - p.area <= 1e-9 * p.area
                                for p in self.parts], dtype=bool)
        self.xy, self.prev, self.next, self.part = _corners(self.parts)
        n = len(self.xy)
        rows, cols, weights = [], [], []
        to_prev, to_next = self.prev - self.xy, self.next - self.xy
        chunk = max(1, 1_000_000 // max(n, 1))
        for i0 in range(0, n, chunk):
            i1 = min(n, i0 + chunk)
            d = self.xy[None, :, :] - self.xy[i0:i1, None, :]  # (rows, n, 2): every pair from the chunk
            ok = np.arange(n)[None, :] > np.arange(i0, i1)[:, None]  # each pair once
            ok &= _cross(d, to_prev[i0:i1, None, :]) * _cross(d, to_next[i0:i1, None, :]) >= 0.0
            ok &= _cross(d, to_prev[None, :, :]) * _cross(d, to_next[None, :, :]) >= 0.0
            i, j = np.nonzero(ok)
            i = i + i0
            visible = ~self.blocked(self.xy[i], self.xy[j], self.part[i], self.part[j])
            i, j = i[visible], j[visible]
            rows.append(i)
            cols.append(j)
            weights.append(np.hypot(*(self.xy[j] - self.xy[i]).T))
        self.rows = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
        self.cols = np.concatenate(cols) if cols else np.zeros(0, dtype=int)
        self.weights = np.concatenate(weights) if weights else np.zeros(0)

    @property
    def n_edges(self) -> int:
        return len(self.rows)

    def blocked(self, a: np.ndarray, b: np.ndarray, part_a: np.ndarray | None = None,
                part_b: np.ndarray | None = None) -> np.ndarray:
        """Whether each segment a→b passes through the interior of an obstacle.

        ``part_a``/``part_b`` name the part a corner end belongs to (−1: none); a segment tangent
        there cannot enter that part if it is convex, so that pair is not tested again.
        """
        m = len(a)
        out = np.zeros(m, dtype=bool)
        if m == 0 or len(self.parts) == 0:
            return out
        segs = shapely.linestrings(np.stack([a, b], axis=1))
        si, pj = self.tree.query(segs)  # bounding boxes; then the prepared obstacles say which touch
        touch = shapely.intersects(self.parts[pj], segs[si])
        si, pj = si[touch], pj[touch]
        if part_a is not None:
            own = ((part_a[si] == pj) | (part_b[si] == pj)) & self.convex[pj]  # type: ignore[index]
            si, pj = si[~own], pj[~own]
        if len(si):
            hit = shapely.relate_pattern(self.parts[pj], segs[si], "T********")
            out[si[hit]] = True
        return out

    def inside(self, p: np.ndarray) -> int | None:
        """Index of the part whose interior holds point ``p``, or None."""
        hits = self.tree.query(Point(p), predicate="within")
        return int(hits[0]) if len(hits) else None

    def shortest(self, s: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        """Corner path (metres) from s to g, both outside every interior; None if there is none."""
        n = len(self.xy)
        idx = np.arange(n)
        ends_r, ends_c, ends_w = [], [], []
        for node, p in ((n, s), (n + 1, g)):
            d = self.xy - p
            ok = _tangent_at(self.xy, d, self.prev, self.next) if n else np.zeros(0, dtype=bool)
            cand = idx[ok]
            free = ~self.blocked(np.repeat(p[None, :], len(cand), axis=0), self.xy[cand],
                                 np.full(len(cand), -1), self.part[cand])
            cand = cand[free]
            ends_r.append(np.full(len(cand), node))
            ends_c.append(cand)
            ends_w.append(np.hypot(*(self.xy[cand] - p).T))
        if not self.blocked(s[None, :], g[None, :])[0]:
            ends_r.append(np.array([n]))
            ends_c.append(np.array([n + 1]))
            ends_w.append(np.array([float(np.hypot(*(g - s)))]))
        rows = np.concatenate([self.rows, *ends_r])
        cols = np.concatenate([self.cols, *ends_c])
        # A zero weight is "no edge" in a sparse matrix: every edge gets a nanometre more.
        w = np.concatenate([self.weights, *ends_w]) + 1e-9
        graph = coo_matrix((w, (rows, cols)), shape=(n + 2, n + 2)).tocsr()
        dist, pred = dijkstra(graph, directed=False, indices=n, return_predecessors=True)
        if not np.isfinite(dist[n + 1]):
            return None
        order = [n + 1]
        while order[-1] != n:
            order.append(int(pred[order[-1]]))
        pts = np.vstack([self.xy, s[None, :], g[None, :]])
        return pts[order[::-1]]


# ---- paths -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """A planned path: lon/lat waypoints from start to goal, its length and the straight line's."""

    waypoints: tuple[LonLat, ...]
    length_m: float
    straight_m: float
    ratio: float  # length / straight line (1.0 when both ends coincide)


class _Planner:
    """Visibility-graph planner over soft obstacles (buffered) with hard ones never to be crossed."""

    def __init__(self, soft_parts: Sequence[Polygon], epsg: int) -> None:
        self.epsg = epsg
        self.graph = _Visibility(soft_parts)

    # Overridden: where an end may not be, and what a segment may not cross.
    def _end_refusal(self, p: Point, which: str) -> tuple[str, str] | None:
        raise NotImplementedError

    def _segment_refusal(self, seg: LineString) -> tuple[str, str] | None:
        raise NotImplementedError

    def _free_end(self, p: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(point in free space, the point moved to or None): an end inside a margin moves out first."""
        why = self._end_refusal(Point(p), which)
        if why:
            raise NoPath(*why)
        k = self.graph.inside(p)
        if k is None:
            return p, None
        part = self.graph.parts[k]
        ring = part.boundary
        q = np.asarray(ring.interpolate(ring.project(Point(p))).coords[0][:2], dtype=float)
        step = q - p
        norm = float(np.hypot(*step))
        if norm > 0:
            q = q + step / norm * _NUDGE_M
        if self.graph.inside(q) is not None:
            raise NoPath(f"the {which} lies inside the margin and no way out of it was found",
                         f"{_WHICH_ZH[which]}位于安全裕度内，找不到离开的路径")
        why = self._segment_refusal(LineString([p, q]))
        if why:
            raise NoPath(*why)
        return q, q

    def _plan_xy(self, s: np.ndarray, g: np.ndarray) -> np.ndarray:
        s_free, s_moved = self._free_end(s, "start")
        g_free, g_moved = self._free_end(g, "goal")
        corners = self.graph.shortest(s_free, g_free)
        if corners is None:
            raise NoPath("no path between start and goal avoids the obstacles",
                         "起点与终点之间没有避开障碍的路径")
        # An end inside a margin first moves straight out of it (``corners`` starts and ends there).
        pts = [*([s] if s_moved is not None else []), *corners, *([g] if g_moved is not None else [])]
        return np.asarray(pts, dtype=float)

    def _path(self, start: LonLat, goal: LonLat, pts: np.ndarray) -> Path:
        lon, lat = _lonlats(pts[1:-1], self.epsg) if len(pts) > 2 else (np.zeros(0), np.zeros(0))
        wps = (start, *zip(lon.tolist(), lat.tolist(), strict=True), goal)
        length = float(np.hypot(*np.diff(pts, axis=0).T).sum())
        straight = float(np.hypot(*(pts[-1] - pts[0])))
        return Path(tuple(wps), length, straight, length / straight if straight > 0 else 1.0)

    def plan(self, start: Sequence[float], goal: Sequence[float]) -> Path:
        """Shortest safe path from ``start`` to ``goal`` (lon/lat); ``NoPath`` says why there is none."""
        s_ll, g_ll = _lonlat(start, "start"), _lonlat(goal, "goal")
        s, g = _xy([s_ll, g_ll], self.epsg)
        if float(np.hypot(*(g - s))) < 1e-6:
            why = self._end_refusal(Point(s), "start")
            if why:
                raise NoPath(*why)
            return Path((s_ll, g_ll), 0.0, 0.0, 1.0)
        return self._path(s_ll, g_ll, self._plan_xy(s, g))


_WHICH_ZH = {"start": "起点", "goal": "终点"}


class PathPlanner(_Planner):
    """Shortest paths around a fixed set of obstacles; the graph is built once, per query only the ends.

    ``obstacles`` are lon/lat polygons or zones (``obstacle_zones`` picks them from a district's
    airspace). Each is buffered by ``buffer_m``; overlapping buffers merge. A path keeps at least
    ``buffer_m`` from every obstacle, except that an end lying within the margin first moves
    straight out of it (refused if that would cross the obstacle).

    >>> from shapely.geometry import box
    >>> planner = PathPlanner([box(106.60, 29.70, 106.61, 29.71)], buffer_m=50.0)
    >>> path = planner.plan((106.59, 29.705), (106.62, 29.705))
    >>> len(path.waypoints) > 2 and path.ratio > 1.0
    True
    """

    def __init__(self, obstacles: Sequence[Polygon | MultiPolygon | Zone], *, buffer_m: float = DEFAULT_BUFFER_M,
                 epsg: int = UTM_48N, simplify_m: float = DEFAULT_SIMPLIFY_M,
                 quad_segs: int = DEFAULT_QUAD_SEGS) -> None:
        if not (math.isfinite(buffer_m) and buffer_m >= 0):
            raise ValueError(f"buffer_m must be >= 0, got {buffer_m}")
        if simplify_m < 0 or quad_segs < 1:
            raise ValueError(f"simplify_m must be >= 0 and quad_segs >= 1, got {simplify_m}, {quad_segs}")
        hard, names = [], []
        for i, ob in enumerate(obstacles):
            if isinstance(ob, Zone):
                geom, name, name_zh = ob.polygon, ob.name, _name_zh(ob)
            elif isinstance(ob, (Polygon, MultiPolygon)):
                geom, name, name_zh = ob, f"obstacle {i}", f"障碍 {i}"
            else:
                raise TypeError(f"obstacle {i}: expected a Polygon, MultiPolygon or Zone, got {type(ob).__name__}")
            if geom.is_empty:
                raise ValueError(f"obstacle {i} ({name}) is empty")
            hard.append(shapely.make_valid(to_utm(geom, epsg)))
            names.append((name, name_zh))
        self.buffer_m = float(buffer_m)
        self.hard = np.array(hard, dtype=object)
        self.names = names
        for h in self.hard:
            shapely.prepare(h)
        self.hard_tree = STRtree(self.hard)
        if hard:
            tol = min(simplify_m, 0.5 * buffer_m)
            # The rounded corners are chords: buffer so the chords, after simplifying (which moves the
            # outline by up to ``tol``), still keep ``buffer_m`` from every zone; checked below.
            radius = (buffer_m + tol) / math.cos(math.pi / (4 * quad_segs))
            soft = shapely.union_all([shapely.buffer(h, radius, quad_segs=quad_segs) if buffer_m > 0 else h
                                      for h in hard])
            if tol > 0:
                simple = shapely.simplify(soft, tol)
                if all(shapely.covers(simple, h) and shapely.distance(h, simple.boundary) >= buffer_m - 1e-6
                       for h in hard):
                    soft = simple
            parts = _polygons(soft)
        else:
            parts = []
        super().__init__(parts, epsg)

    @property
    def n_corners(self) -> int:
        return len(self.graph.xy)

    @property
    def n_edges(self) -> int:
        return self.graph.n_edges

    def _end_refusal(self, p: Point, which: str) -> tuple[str, str] | None:
        for k in self.hard_tree.query(p, predicate="intersects"):
            name, name_zh = self.names[int(k)]
            return (f"the {which} lies inside '{name}': no path can leave it",
                    f"{_WHICH_ZH[which]}位于“{name_zh}”内，无法规划航线")
        return None

    def _segment_refusal(self, seg: LineString) -> tuple[str, str] | None:
        for k in self.hard_tree.query(seg, predicate="intersects"):
            if shapely.relate_pattern(self.hard[int(k)], seg, "T********"):
                name, name_zh = self.names[int(k)]
                return (f"leaving the {self.buffer_m:.0f} m margin would cross '{name}'",
                        f"离开 {self.buffer_m:.0f} 米安全裕度须穿越“{name_zh}”")
        return None


def plan_path(start: Sequence[float], goal: Sequence[float], obstacles: Sequence[Polygon | MultiPolygon | Zone], *,
              buffer_m: float = DEFAULT_BUFFER_M, epsg: int = UTM_48N) -> Path:
    """Shortest path (lon/lat) from ``start`` to ``goal`` around ``obstacles`` buffered by ``buffer_m``.

    Raises ``NoPath`` when an end lies inside an obstacle or no path exists. For many queries over
    the same obstacles use ``PathPlanner`` (it keeps the graph).

    >>> plan_path((106.60, 29.70), (106.62, 29.70), []).ratio
    1.0
    """
    return PathPlanner(obstacles, buffer_m=buffer_m, epsg=epsg).plan(start, goal)


class WaterPlanner(_Planner):
    """Shortest boat paths inside a water polygon shrunk by ``margin_m``, around blocked bridges.

    ``blocked``: bridges too low for the boat (or anything else not to pass), lon/lat polygons or
    lines, buffered by ``margin_m``.
    """

    def __init__(self, water: Polygon | MultiPolygon, *, margin_m: float = DEFAULT_WATER_MARGIN_M,
                 blocked: Sequence[BaseGeometry] = (), epsg: int = UTM_48N,
                 simplify_m: float = DEFAULT_SIMPLIFY_M) -> None:
        if not isinstance(water, (Polygon, MultiPolygon)) or water.is_empty:
            raise ValueError("water must be a non-empty Polygon or MultiPolygon (lon/lat)")
        if not (math.isfinite(margin_m) and margin_m >= 0):
            raise ValueError(f"margin_m must be >= 0, got {margin_m}")
        self.water_lonlat = water
        self.water = shapely.make_valid(to_utm(water, epsg))
        self.margin_m = float(margin_m)
        blocks = [shapely.make_valid(to_utm(b, epsg)) for b in blocked if not b.is_empty]
        self.blocked = np.array(blocks, dtype=object)
        for b in self.blocked:
            shapely.prepare(b)
        shapely.prepare(self.water)
        # mitred: a round join would put an arc of vertices at every corner of a flood's stepped outline
        free = shapely.buffer(self.water, -margin_m, join_style="mitre") if margin_m > 0 else self.water
        if blocks:
            free = shapely.difference(free, shapely.union_all([shapely.buffer(b, max(margin_m, _NUDGE_M))
                                                               for b in blocks]))
        tol = min(simplify_m, 0.5 * margin_m)
        if tol > 0 and not free.is_empty:
            simple = shapely.simplify(free, tol)
            if shapely.covers(self.water, simple) and not any(shapely.intersects(simple, b) for b in blocks):
                free = simple
        self.free = free
        if free.is_empty:
            parts: list[Polygon] = []
        else:
            w, s, e, n = free.bounds
            frame = box(w - 1000.0, s - 1000.0, e + 1000.0, n + 1000.0)
            parts = _polygons(shapely.difference(frame, free))
        super().__init__(parts, epsg)

    def _end_refusal(self, p: Point, which: str) -> tuple[str, str] | None:
        if not self.water.covers(p):
            return (f"the {which} is not on water", f"{_WHICH_ZH[which]}不在水面上")
        if any(b.intersects(p) for b in self.blocked):
            return (f"the {which} lies on a blocked crossing", f"{_WHICH_ZH[which]}位于禁止通行的桥区")
        if self.free.is_empty:
            return (f"no water is wider than twice the {self.margin_m:.0f} m bank margin",
                    f"没有宽于两倍离岸裕度（{self.margin_m:.0f} 米）的水域")
        return None

    def _segment_refusal(self, seg: LineString) -> tuple[str, str] | None:
        if not self.water.covers(seg):
            return ("the way from the bank to open water leaves the water", "从岸边驶入开阔水域的航段离开水面")
        if any(b.intersects(seg) for b in self.blocked):
            return ("the way from the bank to open water crosses a blocked crossing", "从岸边驶入开阔水域须穿越禁止通行的桥区")
        return None


def plan_water_path(start: Sequence[float], goal: Sequence[float], water_polygon: Polygon | MultiPolygon, *,
                    margin_m: float = DEFAULT_WATER_MARGIN_M, blocked: Sequence[BaseGeometry] = (),
                    epsg: int = UTM_48N) -> Path:
    """Shortest boat path on water, ``margin_m`` from the banks, around ``blocked`` crossings.

    An end on water but within the margin (a boat base at the bank) first moves straight out to
    the margin. Raises ``NoPath`` when an end is not on water or the water does not connect them.
    """
    return WaterPlanner(water_polygon, margin_m=margin_m, blocked=blocked, epsg=epsg).plan(start, goal)


# ---- current -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegCurrent:
    """One leg against the current: course, current along (+ helping) and across it, ground speed."""

    leg: int
    course_deg: float
    along_mps: float
    cross_mps: float
    ground_speed_mps: float  # NaN when the boat cannot hold the track at all
    ok: bool


def check_current(legs: Path | Sequence[Sequence[float]], current_speed_mps: float, current_toward_deg: float,
                  boat_speed_mps: float, *, min_ground_speed_mps: float = MIN_GROUND_SPEED_MPS) -> tuple[LegCurrent, ...]:
    """Ground speed of a boat on each leg of a lon/lat path in a uniform current; refuse slow legs.

    The boat crabs into the cross-track current to hold its track, so its ground speed is
    √(V² − c⊥²) + c∥. A leg is refused (``PlanRefused``, naming the leg and the figures) when
    the boat cannot hold the track or makes less than ``min_ground_speed_mps``.

    >>> [round(r.ground_speed_mps, 1) for r in check_current([(106.6, 29.6), (106.7, 29.6)], 1.0, 90.0, 3.0)]
    [4.0]
    """
    pts = [_lonlat(p, f"waypoint {i}") for i, p in enumerate(legs.waypoints if isinstance(legs, Path) else legs)]
    if len(pts) < 2:
        raise ValueError("a path needs at least two waypoints")
    for name, v in (("current_speed_mps", current_speed_mps), ("boat_speed_mps", boat_speed_mps)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite speed >= 0, got {v}")
    if boat_speed_mps <= 0:
        raise ValueError("boat_speed_mps must be positive")
    out: list[LegCurrent] = []
    reasons, reasons_zh = [], []
    for i, (a, b) in enumerate(itertools.pairwise(pts)):
        course, _, dist = _GEOD.inv(a[0], a[1], b[0], b[1])
        if dist <= 0:
            continue
        rel = math.radians(current_toward_deg - course)
        along, cross = current_speed_mps * math.cos(rel), current_speed_mps * math.sin(rel)
        gs = math.sqrt(boat_speed_mps ** 2 - cross ** 2) + along if abs(cross) < boat_speed_mps else math.nan
        ok = math.isfinite(gs) and gs >= min_ground_speed_mps
        out.append(LegCurrent(i, course % 360.0, along, cross, gs, ok))
        if ok:
            continue
        if not math.isfinite(gs):
            reasons.append(f"leg {i} (course {course % 360:.0f}°): the cross current {abs(cross):.1f} m/s is not "
                           f"less than the boat's {boat_speed_mps:.1f} m/s, it cannot hold the track")
            reasons_zh.append(f"第 {i} 航段（航向 {course % 360:.0f}°）：横流 {abs(cross):.1f} 米/秒不小于船速 "
                              f"{boat_speed_mps:.1f} 米/秒，无法保持航迹")
        else:
            reasons.append(f"leg {i} (course {course % 360:.0f}°): current {-along:.1f} m/s against the boat's "
                           f"{boat_speed_mps:.1f} m/s leaves {gs:.1f} m/s over ground, less than {min_ground_speed_mps:.1f} m/s")
            reasons_zh.append(f"第 {i} 航段（航向 {course % 360:.0f}°）：逆流 {-along:.1f} 米/秒，船速 {boat_speed_mps:.1f} "
                              f"米/秒，对地速度仅 {gs:.1f} 米/秒，低于 {min_ground_speed_mps:.1f} 米/秒")
    if reasons:
        raise PlanRefused(reasons, reasons_zh)
    return tuple(out)


# ---- ceilings along a line ------------------------------------------------------------------


def _ceilings(lons: np.ndarray, lats: np.ndarray, zones: Sequence[Zone], cap_agl_m: float | None,
              approved_caps_agl_m: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, list[tuple[Zone, np.ndarray]]]:
    """(ceiling AGL, index of the zone setting it or −1 for the national cap, forbidden zones and where)."""
    cap = np.full(lons.shape, math.inf if cap_agl_m is None else float(cap_agl_m))
    source = np.full(lons.shape, -1, dtype=int)
    forbidden: list[tuple[Zone, np.ndarray]] = []
    for k, zone in enumerate(zones):
        inside = shapely.contains_xy(zone.polygon, lons, lats)
        if not inside.any():
            continue
        if zone.kind == "prohibited" or (zone.kind == "controlled" and zone.id not in approved_caps_agl_m):
            forbidden.append((zone, inside))
            continue
        ceiling = float(zone.ceiling_agl_m if zone.kind == "height_limited" else approved_caps_agl_m[zone.id])
        lower = inside & (ceiling < cap)
        cap = np.where(lower, ceiling, cap)
        source = np.where(lower, k, source)
    return cap, source, forbidden


def _cap_name(zones: Sequence[Zone], k: int, cap: float) -> tuple[str, str]:
    if k < 0:
        return (f"the {cap:.0f} m true-height ceiling", f"真高 {cap:.0f} 米上限")
    z = zones[k]
    return (f"the {cap:.0f} m ceiling of '{z.name}'", f"“{_name_zh(z)}”{cap:.0f} 米限高")


def _forbidden_reason(zone: Zone) -> tuple[str, str]:
    if zone.kind == "prohibited":
        return (f"prohibited zone '{zone.name}'", f"禁飞区“{_name_zh(zone)}”")
    return (f"controlled airspace '{zone.name}' without an approval", f"未获批准的管制空域“{_name_zh(zone)}”")


# ---- altitude profile ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileLeg:
    """A leg flown level at ``alt_amsl_m``; heights above ground along its track (min, max)."""

    start: LonLat
    end: LonLat
    alt_amsl_m: float
    min_agl_m: float
    max_agl_m: float
    ground_max_m: float  # highest ground under the leg and its lateral margin
    length_m: float
    path_leg: int  # index of the path leg it is part of (a split leg gives several)


@dataclass(frozen=True, slots=True)
class AltitudeProfile:
    """Legs with their heights above sea level; ``mission_items`` gives the AMSL waypoints."""

    legs: tuple[ProfileLeg, ...]
    clearance_m: float
    lateral_m: float
    splits: int  # waypoints inserted where no single height fitted a path leg

    @property
    def waypoints(self) -> tuple[tuple[float, float, float], ...]:
        """(lon, lat, alt AMSL) in flying order; a change of level is two points at one place."""
        out: list[tuple[float, float, float]] = []
        for leg in self.legs:
            first = (leg.start[0], leg.start[1], leg.alt_amsl_m)
            if not out or out[-1] != first:
                out.append(first)
            out.append((leg.end[0], leg.end[1], leg.alt_amsl_m))
        return tuple(out)

    def mission_items(self, *, hold_s: float = 0.0) -> list[MissionItem]:
        """MAV_CMD_NAV_WAYPOINT items in ``FRAME_GLOBAL_AMSL``, one per point of ``waypoints``."""
        return [waypoint(lon, lat, alt, hold_s=hold_s, frame=FRAME_GLOBAL_AMSL) for lon, lat, alt in self.waypoints]


def _path_points(path: Path | Sequence[Sequence[float]]) -> list[LonLat]:
    pts = [_lonlat(p, f"waypoint {i}") for i, p in enumerate(path.waypoints if isinstance(path, Path) else path)]
    if len(pts) < 2:
        raise ValueError("a path needs at least two waypoints")
    return pts


def altitude_profile(path: Path | Sequence[Sequence[float]], terrain_elevation_fn: TerrainFn, *,
                     clearance_m: float = DEFAULT_CLEARANCE_M, cap_agl_m: float = NATIONAL_CEILING_AGL_M,
                     zones: Sequence[Zone] = (), approved_caps_agl_m: Mapping[str, float] | None = None,
                     step_m: float = 10.0, lateral_m: float = DEFAULT_LATERAL_M,
                     epsg: int = UTM_48N) -> AltitudeProfile:
    """Level legs above sea level that keep ``clearance_m`` over the ground and stay under the cap.

    Every ``step_m`` along each leg and across it within ``lateral_m``, the ground is sampled: the
    height must be ≥ the highest ground + ``clearance_m`` and ≤ the ground under the track + the
    ceiling there (``cap_agl_m``, a height-limited zone's ceiling, or the ceiling an approval
    gives a controlled zone, ``approved_caps_agl_m[zone.id]``). The lowest such height is chosen
    (whole metres when they fit). A leg where none fits is split where the ground changes into
    the fewest legs that each fit; if even that fails, ``PlanRefused`` names the place.
    """
    if not (math.isfinite(clearance_m) and clearance_m >= 0):
        raise ValueError(f"clearance_m must be >= 0, got {clearance_m}")
    if not (math.isfinite(cap_agl_m) and cap_agl_m > 0):
        raise ValueError(f"cap_agl_m must be positive, got {cap_agl_m}")
    if not (step_m > 0 and math.isfinite(step_m)) or not (lateral_m >= 0 and math.isfinite(lateral_m)):
        raise ValueError(f"step_m must be > 0 and lateral_m >= 0, got {step_m}, {lateral_m}")
    approvals = dict(approved_caps_agl_m or {})
    pts = _path_points(path)
    xy = _xy(pts, epsg)
    n_side = math.ceil(lateral_m / step_m) if lateral_m > 0 else 0
    offsets = np.linspace(-lateral_m, lateral_m, 2 * n_side + 1) if n_side else np.zeros(1)
    centre = int(np.argmin(np.abs(offsets)))

    legs: list[ProfileLeg] = []
    splits = 0
    for i in range(len(xy) - 1):
        a, b = xy[i], xy[i + 1]
        length = float(np.hypot(*(b - a)))
        if length == 0.0:
            continue
        n = max(1, math.ceil(length / step_m))
        t = np.linspace(0.0, 1.0, n + 1)
        u = (b - a) / length
        normal = np.array([-u[1], u[0]])
        grid = a[None, None, :] + (t[:, None, None] * (b - a)[None, None, :]) + offsets[None, :, None] * normal
        lon, lat = _lonlats(grid.reshape(-1, 2), epsg)
        ground = np.asarray(terrain_elevation_fn(lon, lat), dtype=float).reshape(len(t), len(offsets))
        lon, lat = lon.reshape(ground.shape), lat.reshape(ground.shape)
        clon, clat = lon[:, centre].copy(), lat[:, centre].copy()
        clon[0], clat[0], clon[-1], clat[-1] = pts[i][0], pts[i][1], pts[i + 1][0], pts[i + 1][1]
        missing = ~np.isfinite(ground)
        if missing.any():
            k = int(np.argmax(missing.any(axis=1)))
            raise PlanRefused([f"leg {i} leaves the terrain model near {_fmt((clon[k], clat[k]))}"],
                              [f"第 {i} 航段在 {_fmt((clon[k], clat[k]))} 附近超出地形数据范围"])
        cap, source, forbidden = _ceilings(clon, clat, zones, cap_agl_m, approvals)
        for zone, inside in forbidden:
            k = int(np.argmax(inside))
            what, what_zh = _forbidden_reason(zone)
            raise PlanRefused([f"leg {i} enters {what} at {_fmt((clon[k], clat[k]))}"],
                              [f"第 {i} 航段在 {_fmt((clon[k], clat[k]))} 进入{what_zh}"])
        lo = ground.max(axis=1) + clearance_m  # lowest allowed height at each step
        hi = ground[:, centre] + cap  # highest allowed height at each step
        cuts = _split(lo, hi)
        if isinstance(cuts, int):
            raise _no_height(i, cuts, lo, hi, ground, cap, source, zones, clon, clat, clearance_m, lateral_m, step_m)
        splits += len(cuts) - 2
        for j0, j1 in itertools.pairwise(cuts):
            lo_max, hi_min = float(lo[j0:j1 + 1].max()), float(hi[j0:j1 + 1].min())
            alt = float(math.ceil(round(lo_max, 3)))
            if alt > hi_min:
                alt = lo_max
            agl = alt - ground[j0:j1 + 1, centre]
            legs.append(ProfileLeg((float(clon[j0]), float(clat[j0])), (float(clon[j1]), float(clat[j1])), alt,
                                   float(agl.min()), float(agl.max()), float(ground[j0:j1 + 1].max()),
                                   length * float(t[j1] - t[j0]), i))
    if not legs:
        raise ValueError("the path has no leg of non-zero length")
    return AltitudeProfile(tuple(legs), float(clearance_m), float(lateral_m), splits)


def _split(lo: np.ndarray, hi: np.ndarray) -> list[int] | int:
    """Fewest cut indices (first and last included) so each piece has max(lo) ≤ min(hi).

    Greedy: each piece runs as far as it can (a sub-range of a feasible range is feasible, so
    this is optimal). Returns the index where a piece could not go past one step instead.
    """
    cuts = [0]
    start, n = 0, len(lo)
    while start < n - 1:
        top, bottom = lo[start], hi[start]
        if top > bottom + 1e-9:
            return start
        end = start
        while end + 1 < n:
            top, bottom = max(top, lo[end + 1]), min(bottom, hi[end + 1])
            if top > bottom + 1e-9:
                break
            end += 1
        if end == start:  # name the sample with no room at all, if that is what stopped it
            return start + 1 if lo[start + 1] > hi[start + 1] + 1e-9 else start
        cuts.append(end)
        start = end
    if lo[-1] > hi[-1] + 1e-9:
        return n - 1
    return cuts


def _no_height(leg: int, k: int, lo: np.ndarray, hi: np.ndarray, ground: np.ndarray, cap: np.ndarray,
               source: np.ndarray, zones: Sequence[Zone], lon: np.ndarray, lat: np.ndarray, clearance_m: float,
               lateral_m: float, step_m: float) -> PlanRefused:
    where = _fmt((lon[k], lat[k]))
    limit, limit_zh = _cap_name(zones, int(source[k]), float(cap[k]))
    if lo[k] > hi[k] + 1e-9:
        return PlanRefused(
            [(f"leg {leg}: no height fits at {where}: {clearance_m:.0f} m above the highest ground within "
             f"{lateral_m:.0f} m ({ground[k].max():.0f} m) is {lo[k]:.0f} m above sea level, above {limit} "
             f"({hi[k]:.0f} m above sea level)")],
            [(f"第 {leg} 航段在 {where} 无可用高度：高于 {lateral_m:.0f} 米范围内最高地面（{ground[k].max():.0f} 米）"
             f"{clearance_m:.0f} 米即海拔 {lo[k]:.0f} 米，超过{limit_zh}（海拔 {hi[k]:.0f} 米）")])
    nxt = min(k + 1, len(lo) - 1)
    to = _fmt((lon[nxt], lat[nxt]))
    kk = k if hi[k] <= hi[nxt] else nxt
    limit, limit_zh = _cap_name(zones, int(source[kk]), float(cap[kk]))
    low, high = float(max(lo[k], lo[nxt])), float(min(hi[k], hi[nxt]))
    change = float(abs(ground[nxt].max() - ground[k].max()))
    ground_note = f", the ground changes by {change:.0f} m" if change >= 1.0 else ""
    ground_note_zh = f"，地面变化 {change:.0f} 米" if change >= 1.0 else ""
    return PlanRefused(
        [(f"leg {leg}: no height fits between {where} and {to} ({step_m:.0f} m apart{ground_note}): "
         f"{clearance_m:.0f} m above the highest ground within {lateral_m:.0f} m is {low:.0f} m above sea level, "
         f"above {limit} ({high:.0f} m above sea level)")],
        [(f"第 {leg} 航段在 {where} 与 {to} 之间（相距 {step_m:.0f} 米{ground_note_zh}）无可用高度："
         f"高于 {lateral_m:.0f} 米范围内最高地面 {clearance_m:.0f} 米即海拔 {low:.0f} 米，超过{limit_zh}"
         f"（海拔 {high:.0f} 米）")])


# ---- failsafe returns ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnFailure:
    """Returns started along one stretch of the path that fail the same way, with the first place."""

    kind: Literal["prohibited", "controlled", "terrain", "height_limited", "national_ceiling", "no_terrain"]
    from_along_m: float
    to_along_m: float
    start_lonlat: LonLat  # where the first failing return starts
    at_lonlat: LonLat  # where on that return line it fails
    target: str  # "home" or "rally 0", ...
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class ReturnCheck:
    """Straight returns from every ``step_m`` along the path at RTL height, and their failures."""

    rtl_alt_m: float
    returns: int
    failures: tuple[ReturnFailure, ...]
    min_clearance_m: float  # lowest height above ground on any return line
    max_agl_m: float  # highest height above ground on any return line
    targets: tuple[str, ...]  # the target each return flies to, in path order

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class _Returns:
    """The geometry of the returns from a path to a set of targets (independent of RTL_ALT)."""

    start_ll: np.ndarray  # (R, 2) lon/lat
    along: np.ndarray  # (R,)
    curr_m: np.ndarray  # (R,) height above home at the start
    dist_m: np.ndarray  # (R,) to the target
    target: np.ndarray  # (R,) index: 0 home, k rally k−1
    target_alt_m: np.ndarray  # (R,) the target's own altitude above home (0 for home)
    names: tuple[str, ...]
    idx: np.ndarray  # (S,) return of each sample
    s_ll: np.ndarray  # (S, 2) samples lon/lat
    ground: np.ndarray  # (S,)
    cap: np.ndarray  # (S,)
    source: np.ndarray  # (S,) zone setting the cap, −1 national
    forbidden: tuple[tuple[int, np.ndarray, np.ndarray], ...]  # (zone index, failing returns, first sample)


def _starts(legs: Sequence[ProfileLeg], step_m: float, epsg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xy_all, alt_all, along_all = [], [], []
    run = 0.0
    for leg in legs:
        a, b = _xy([leg.start, leg.end], epsg)
        length = float(np.hypot(*(b - a)))
        n = max(1, math.ceil(length / step_m))
        t = np.linspace(0.0, 1.0, n + 1)
        xy_all.append(a + t[:, None] * (b - a))
        alt_all.append(np.full(len(t), leg.alt_amsl_m))
        along_all.append(run + t * length)
        run += length
    return np.concatenate(xy_all), np.concatenate(alt_all), np.concatenate(along_all)


def _returns(legs: Sequence[ProfileLeg], home: LonLat, home_ground_amsl_m: float, rally: Sequence[RallyPoint],
             zones: Sequence[Zone], terrain_fn: TerrainFn, *, step_m: float, sample_m: float, cap_agl_m: float | None,
             approvals: Mapping[str, float], rally_limit_km: float, include_home: bool, epsg: int) -> _Returns:
    if not legs:
        raise ValueError("no legs to return from")
    xy, alt, along = _starts(legs, step_m, epsg)
    targets_ll = [home, *((p.lon_deg, p.lat_deg) for p in rally)]
    txy = _xy(targets_ll, epsg)
    d_all = np.hypot(xy[:, None, 0] - txy[None, :, 0], xy[:, None, 1] - txy[None, :, 1])  # (R, 1 + n rally)
    # AP_Rally::calc_best_rally_or_home_location: the closest rally point, unless every rally point
    # is beyond RALLY_LIMIT_KM (then home); home instead when RALLY_INCL_HOME and home is closer.
    tgt = np.zeros(len(xy), dtype=int)
    if rally:
        near = 1 + np.argmin(d_all[:, 1:], axis=1)
        d_near = d_all[np.arange(len(xy)), near]
        use = np.ones(len(xy), dtype=bool)
        if rally_limit_km > 0:
            use &= d_near <= rally_limit_km * 1000.0
        if include_home:
            use &= d_near < d_all[:, 0]
        tgt = np.where(use, near, 0)
    dist = d_all[np.arange(len(xy)), tgt]
    target_alt = np.array([0.0, *(p.alt_m for p in rally)])[tgt]
    names = ("home", *(f"rally {k}" for k in range(len(rally))))

    counts = np.maximum(1, np.ceil(dist / sample_m).astype(int)) + 1
    idx = np.repeat(np.arange(len(xy)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    t = (np.arange(len(idx)) - first[idx]) / (counts[idx] - 1)
    s_xy = xy[idx] + t[:, None] * (txy[tgt][idx] - xy[idx])
    lon, lat = _lonlats(s_xy, epsg)
    ground = np.asarray(terrain_fn(lon, lat), dtype=float)
    cap, source, forbidden_zones = _ceilings(lon, lat, zones, cap_agl_m, approvals)

    # Exact crossing test for the forbidden zones (the samples only say where).
    start_ll = np.column_stack(_lonlats(xy, epsg))
    lines = shapely.linestrings(np.stack([start_ll, np.asarray(targets_ll, dtype=float)[tgt]], axis=1))
    forbidden = []
    for k, zone in enumerate(zones):
        if not (zone.kind == "prohibited" or (zone.kind == "controlled" and zone.id not in approvals)):
            continue
        crossing = shapely.intersects(lines, zone.polygon)
        if not crossing.any():
            continue
        inside = next((m for z, m in forbidden_zones if z is zone), np.zeros(len(idx), dtype=bool))
        first_in = np.full(len(xy), -1)
        hits = np.nonzero(inside)[0]
        if len(hits):
            r_hit = idx[hits]
            order = np.unique(r_hit, return_index=True)
            first_in[order[0]] = hits[order[1]]
        failing = np.nonzero(crossing)[0]
        forbidden.append((k, failing, np.where(first_in[failing] >= 0, first_in[failing], first[failing])))
    return _Returns(start_ll, along, alt - home_ground_amsl_m, dist, tgt, target_alt, names, idx,
                    np.column_stack([lon, lat]), ground, cap, source, tuple(forbidden))


def _return_heights(r: _Returns, rtl_alt_m: float, cone_slope: float, climb_min_m: float) -> np.ndarray:
    """Return height above home of each return (ModeRTL::compute_return_target, above-home frame)."""
    target = np.maximum(r.target_alt_m, 0.0)
    min_rtl = np.maximum(RTL_ALT_MIN_M, r.curr_m + max(0.0, climb_min_m))
    target = np.maximum(target, np.maximum(rtl_alt_m, min_rtl))
    if cone_slope >= RTL_MIN_CONE_SLOPE:
        target = np.minimum(target, np.maximum(r.dist_m * cone_slope, min_rtl))
    return np.maximum(target, r.curr_m)


def _evaluate(r: _Returns, zones: Sequence[Zone], home_ground_amsl_m: float, *, rtl_alt_m: float, clearance_m: float,
              cone_slope: float, climb_min_m: float) -> ReturnCheck:
    ret_amsl = home_ground_amsl_m + _return_heights(r, rtl_alt_m, cone_slope, climb_min_m)
    agl = ret_amsl[r.idx] - r.ground
    found: list[tuple[str, np.ndarray, np.ndarray, Callable[[int, int], tuple[str, str]]]] = []

    for k, failing, at in r.forbidden:
        what, what_zh = _forbidden_reason(zones[k])
        kind = "prohibited" if zones[k].kind == "prohibited" else "controlled"
        found.append((kind, failing, at,
                      lambda ri, si, what=what, what_zh=what_zh: (
                          f"a return to {r.names[r.target[ri]]} crosses {what}",
                          f"返航至{_target_zh(r.names[r.target[ri]])}的直线穿越{what_zh}")))

    missing = ~np.isfinite(agl)
    if missing.any():
        found.append(("no_terrain", *_first_per_return(r.idx, missing),
                      lambda ri, si: (f"a return to {r.names[r.target[ri]]} leaves the terrain model",
                                      f"返航至{_target_zh(r.names[r.target[ri]])}的航线超出地形数据范围")))
    low = np.isfinite(agl) & (agl < clearance_m - _TOL_M)
    if low.any():
        found.append(("terrain", *_first_per_return(r.idx, low),
                      lambda ri, si: (
                          (f"a return to {r.names[r.target[ri]]} at {ret_amsl[ri]:.0f} m above sea level passes "
                          f"{agl[si]:.0f} m above the ground (clearance {clearance_m:.0f} m)"),
                          (f"以海拔 {ret_amsl[ri]:.0f} 米返航至{_target_zh(r.names[r.target[ri]])}时离地仅 "
                          f"{agl[si]:.0f} 米（安全高度 {clearance_m:.0f} 米）"))))
    high = np.isfinite(agl) & (agl > r.cap + _TOL_M)
    for kind, sel in (("national_ceiling", high & (r.source < 0)), ("height_limited", high & (r.source >= 0))):
        if sel.any():
            found.append((kind, *_first_per_return(r.idx, sel),
                          lambda ri, si: (
                              (f"a return to {r.names[r.target[ri]]} flies {agl[si]:.0f} m above the ground, above "
                              f"{_cap_name(zones, int(r.source[si]), float(r.cap[si]))[0]}"),
                              (f"返航至{_target_zh(r.names[r.target[ri]])}时离地 {agl[si]:.0f} 米，超过"
                              f"{_cap_name(zones, int(r.source[si]), float(r.cap[si]))[1]}"))))

    failures: list[ReturnFailure] = []
    for kind, returns_, samples, say in found:
        # One failure per stretch of consecutive failing returns to the same target.
        breaks = np.nonzero((np.diff(returns_) != 1) | (np.diff(r.target[returns_]) != 0))[0] + 1
        for run in np.split(np.arange(len(returns_)), breaks):
            ri, si = int(returns_[run[0]]), int(samples[run[0]])
            reason, reason_zh = say(ri, si)
            a0, a1 = float(r.along[ri]), float(r.along[returns_[run[-1]]])
            failures.append(ReturnFailure(
                kind, a0, a1, (float(r.start_ll[ri, 0]), float(r.start_ll[ri, 1])),  # type: ignore[arg-type]
                (float(r.s_ll[si, 0]), float(r.s_ll[si, 1])), r.names[r.target[ri]],
                f"{reason} (returns from {a0 / 1000:.2f}–{a1 / 1000:.2f} km along the path, first from "
                f"{_fmt(r.start_ll[ri])}, at {_fmt(r.s_ll[si])})",
                f"{reason_zh}（航线 {a0 / 1000:.2f}–{a1 / 1000:.2f} 公里处起返航，首次自 {_fmt(r.start_ll[ri])}，"
                f"位置 {_fmt(r.s_ll[si])}）"))
    failures.sort(key=lambda f: (f.from_along_m, f.kind))
    finite = agl[np.isfinite(agl)]
    return ReturnCheck(float(rtl_alt_m), len(r.along), tuple(failures),
                       float(finite.min()) if len(finite) else math.nan,
                       float(finite.max()) if len(finite) else math.nan,
                       tuple(r.names[t] for t in r.target))


def _target_zh(name: str) -> str:
    return "起飞点" if name == "home" else name.replace("rally ", "集结点 ")


def _first_per_return(idx: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(returns with a True sample, the first such sample of each)."""
    hits = np.nonzero(mask)[0]
    returns_, first = np.unique(idx[hits], return_index=True)
    return returns_, hits[first]


def check_returns(path_legs_amsl: Sequence[ProfileLeg], home: Sequence[float], home_ground_amsl_m: float,
                  rally_points: Sequence[RallyPoint], zones: Sequence[Zone], terrain_fn: TerrainFn, *,
                  rtl_alt_m: float, step_m: float = 50.0, clearance_m: float = DEFAULT_CLEARANCE_M,
                  cap_agl_m: float | None = NATIONAL_CEILING_AGL_M,
                  approved_caps_agl_m: Mapping[str, float] | None = None, cone_slope: float = RTL_CONE_SLOPE_DEFAULT,
                  climb_min_m: float = 0.0, rally_limit_km: float = 0.0, include_home: bool = True,
                  sample_m: float = 25.0, epsg: int = UTM_48N) -> ReturnCheck:
    """Would an RTL started anywhere on the path (every ``step_m``) be safe?

    Each return climbs in place to its RTL height (see the module notes), flies straight to the
    closest of home and the rally points and descends there. Its line (sampled every
    ``sample_m``) must not cross a prohibited zone or an unapproved controlled one, must keep
    ``clearance_m`` over the ground and stay under the ceilings (zones' always; the national
    ``cap_agl_m`` unless None). Failures are grouped by stretch of the path, with positions.
    ``rally_limit_km`` and ``include_home`` are RALLY_LIMIT_KM and RALLY_INCL_HOME (copter
    defaults 0.3 km and 1; 0 km here: rally points at any distance count).
    """
    home_ll = _lonlat(home, "home")
    if not (math.isfinite(rtl_alt_m) and rtl_alt_m >= 0):
        raise ValueError(f"rtl_alt_m must be >= 0, got {rtl_alt_m}")
    if step_m <= 0 or sample_m <= 0:
        raise ValueError(f"step_m and sample_m must be positive, got {step_m}, {sample_m}")
    r = _returns(list(path_legs_amsl), home_ll, home_ground_amsl_m, rally_points, zones, terrain_fn, step_m=step_m,
                 sample_m=sample_m, cap_agl_m=cap_agl_m, approvals=dict(approved_caps_agl_m or {}),
                 rally_limit_km=rally_limit_km, include_home=include_home, epsg=epsg)
    return _evaluate(r, zones, home_ground_amsl_m, rtl_alt_m=rtl_alt_m, clearance_m=clearance_m,
                     cone_slope=cone_slope, climb_min_m=climb_min_m)


@dataclass(frozen=True, slots=True)
class ReturnChoice:
    """The failsafe return chosen for a path: RTL (with rally points and RTL_ALT) or SmartRTL."""

    mode: Literal["RTL", "SMART_RTL"]
    rtl_alt_m: float
    rally_points: tuple[RallyPoint, ...]
    params: Mapping[str, float]  # ArduCopter parameters to set (RTL_ALT in cm, as the firmware)
    check: ReturnCheck  # the RTL check (passing for RTL; the best failing one for SmartRTL)
    note: str
    note_zh: str


def _leg_refusals(legs: Sequence[ProfileLeg], zones: Sequence[Zone], terrain_fn: TerrainFn, *, clearance_m: float,
                  cap_agl_m: float | None, approvals: Mapping[str, float], epsg: int) -> list[tuple[str, str]]:
    """Why flying the legs themselves (as SmartRTL retraces them) would not be safe; empty if it is."""
    xy, alt, _ = _starts(legs, 10.0, epsg)
    lon, lat = _lonlats(xy, epsg)
    agl = alt - np.asarray(terrain_fn(lon, lat), dtype=float)
    cap, _, forbidden = _ceilings(lon, lat, zones, cap_agl_m, approvals)
    out = []
    for zone, inside in forbidden:
        k = int(np.argmax(inside))
        what, what_zh = _forbidden_reason(zone)
        out.append((f"the path enters {what} at {_fmt((lon[k], lat[k]))}", f"航线在 {_fmt((lon[k], lat[k]))} 进入{what_zh}"))
    bad = ~np.isfinite(agl) | (agl < clearance_m - _TOL_M) | (agl > cap + _TOL_M)
    if bad.any():
        k = int(np.argmax(bad))
        out.append((f"the path itself is not safe at {_fmt((lon[k], lat[k]))} ({agl[k]:.0f} m above the ground)",
                    f"航线本身在 {_fmt((lon[k], lat[k]))} 不安全（离地 {agl[k]:.0f} 米）"))
    return out


def choose_return(path_legs_amsl: Sequence[ProfileLeg], home: Sequence[float], home_ground_amsl_m: float,
                  rally_candidates: Sequence[RallyPoint], zones: Sequence[Zone], terrain_fn: TerrainFn, *,
                  rtl_alt_m: float = DEFAULT_CLEARANCE_M, rtl_step_m: float = 5.0, step_m: float = 50.0,
                  clearance_m: float = DEFAULT_CLEARANCE_M, cap_agl_m: float | None = NATIONAL_CEILING_AGL_M,
                  approved_caps_agl_m: Mapping[str, float] | None = None, cone_slope: float = RTL_CONE_SLOPE_DEFAULT,
                  srtl_points: int = SRTL_POINTS_DEFAULT, epsg: int = UTM_48N) -> ReturnChoice:
    """Choose the failsafe return for a path, or refuse (``PlanRefused``, en + zh).

    1. RTL: the rally candidates all together, home alone, then each candidate alone; for each,
       the lowest RTL_ALT from ``rtl_alt_m`` up (``rtl_step_m`` steps) whose returns all pass
       ``check_returns``. The lowest RTL_ALT wins, the earlier set on a tie.
    2. Otherwise SmartRTL, which retraces the path flown: safe when the path is (checked again
       here), when it starts at home and fits well within the SRTL_POINTS buffer. The failsafe
       actions must then be "SmartRTL or Land", never "SmartRTL or RTL": RTL is the unsafe one.
    3. Otherwise ``PlanRefused`` with both reasons.
    """
    legs = list(path_legs_amsl)
    home_ll = _lonlat(home, "home")
    if not legs:
        raise ValueError("no legs to return from")
    if rtl_step_m <= 0:
        raise ValueError(f"rtl_step_m must be positive, got {rtl_step_m}")
    approvals = dict(approved_caps_agl_m or {})
    candidates = list(rally_candidates)
    sets: list[tuple[RallyPoint, ...]] = [tuple(candidates)] if candidates else []
    sets.append(())
    if len(candidates) > 1:
        sets.extend((c,) for c in candidates)

    best: tuple[float, int, ReturnCheck, tuple[RallyPoint, ...]] | None = None
    first_check: ReturnCheck | None = None  # the first set at the given RTL_ALT: what a refusal shows
    top_alt = float(rtl_alt_m)
    for order, rally in enumerate(sets):
        r = _returns(legs, home_ll, home_ground_amsl_m, rally, zones, terrain_fn, step_m=step_m, sample_m=25.0,
                     cap_agl_m=cap_agl_m, approvals=approvals, rally_limit_km=0.0, include_home=True, epsg=epsg)
        finite = r.ground[np.isfinite(r.ground)]
        # Above this RTL_ALT every return already clears the highest ground: going higher cannot help.
        top = (float(finite.max()) if len(finite) else home_ground_amsl_m) + clearance_m - home_ground_amsl_m
        alts = [float(rtl_alt_m)]
        while alts[-1] < top:
            alts.append(min(alts[-1] + rtl_step_m, float(math.ceil(top))))
        for alt in alts:
            check = _evaluate(r, zones, home_ground_amsl_m, rtl_alt_m=alt, clearance_m=clearance_m,
                              cone_slope=cone_slope, climb_min_m=0.0)
            if check.ok:
                if best is None or (alt, order) < (best[0], best[1]):
                    best = (alt, order, check, rally)
                break
            if first_check is None:
                first_check = check
            top_alt = max(top_alt, alt)

    if best is not None:
        alt, _, check, rally = best
        params = {"RTL_ALT": round(alt * 100.0), "RTL_CONE_SLOPE": cone_slope, "RTL_CLIMB_MIN": 0.0,
                  "RALLY_INCL_HOME": 1.0, "RALLY_LIMIT_KM": 0.0, "RALLY_TOTAL": float(len(rally))}
        where = f"the closest of home and {len(rally)} rally point(s)" if rally else "home"
        where_zh = f"起飞点与 {len(rally)} 个集结点中最近者" if rally else "起飞点"
        raised = alt > rtl_alt_m
        return ReturnChoice(
            "RTL", alt, rally, params, check,
            f"RTL to {where} at RTL_ALT {alt:.0f} m{' (raised for terrain)' if raised else ''}: every return from "
            f"{check.returns} points along the path avoids the prohibited zones and keeps {clearance_m:.0f} m over "
            "the ground under the ceilings; RALLY_LIMIT_KM 0 so rally points at any distance are used",
            f"返航（RTL）至{where_zh}，RTL_ALT {alt:.0f} 米{'（因地形提高）' if raised else ''}：沿航线 "
            f"{check.returns} 处起返航均避开禁飞区，离地不低于 {clearance_m:.0f} 米且不超限高；RALLY_LIMIT_KM 设为 0")

    assert first_check is not None
    tried = f"RTL_ALT {rtl_alt_m:.0f}–{top_alt:.0f} m, {len(sets)} return set(s)"
    tried_zh = f"RTL_ALT {rtl_alt_m:.0f}–{top_alt:.0f} 米、{len(sets)} 种返航点组合"
    rtl_reasons = [f"RTL is not safe ({tried} tried); at RTL_ALT {rtl_alt_m:.0f} m: " + f.reason
                   for f in first_check.failures[:3]]
    rtl_reasons_zh = [f"直线返航不安全（已试 {tried_zh}）；RTL_ALT {rtl_alt_m:.0f} 米时：" + f.reason_zh
                      for f in first_check.failures[:3]]
    srtl = _leg_refusals(legs, zones, terrain_fn, clearance_m=clearance_m, cap_agl_m=cap_agl_m, approvals=approvals,
                         epsg=epsg)
    start_gap = float(np.hypot(*np.diff(_xy([home_ll, legs[0].start], epsg), axis=0)[0]))
    if start_gap > _HOME_TOLERANCE_M:
        srtl.append((f"the path starts {start_gap:.0f} m from home: SmartRTL would retrace a leg not checked here",
                     f"航线起点距起飞点 {start_gap:.0f} 米：智能返航将沿未经校核的航段返回"))
    profile = AltitudeProfile(tuple(legs), clearance_m, 0.0, 0)
    n_points = len(profile.waypoints) + 1  # + the take-off climb
    if n_points > _SRTL_SHARE * srtl_points:
        srtl.append(((f"the path has {n_points} points, more than {_SRTL_SHARE:.0%} of the SmartRTL buffer "
                     f"(SRTL_POINTS {srtl_points})"),
                     f"航线有 {n_points} 个航点，超过智能返航缓存（SRTL_POINTS {srtl_points}）的 {_SRTL_SHARE:.0%}"))
    if not srtl:
        return ReturnChoice(
            "SMART_RTL", float(rtl_alt_m), (), {"SRTL_POINTS": float(srtl_points), "RTL_ALT": round(rtl_alt_m * 100.0)},
            first_check,
            f"SmartRTL: it retraces the planned path, which is safe; a straight RTL is not ({tried} tried; at "
            f"RTL_ALT {rtl_alt_m:.0f} m: " + "; ".join(f.reason for f in first_check.failures[:2])
            + "). Set the failsafe actions to 'SmartRTL or Land', not 'SmartRTL or RTL'",
            f"智能返航（SmartRTL）：沿已校核的航线原路返回；直线返航不安全（已试 {tried_zh}；RTL_ALT {rtl_alt_m:.0f} 米时："
            + "；".join(f.reason_zh for f in first_check.failures[:2])
            + "）。失效保护动作须设为“智能返航或降落”，不可设为“智能返航或返航”")
    raise PlanRefused(rtl_reasons + [f"SmartRTL is not safe either: {why}" for why, _ in srtl],
                      rtl_reasons_zh + [f"智能返航亦不安全：{why_zh}" for _, why_zh in srtl])


# ---- deconfliction -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layers:
    """Distinct cruise heights (m above ground, use as each vehicle's clearance) and RTL_ALTs."""

    cruise_agl_m: tuple[float, ...]
    rtl_alt_m: tuple[float, ...]


def altitude_layers(n: int, base_agl_m: float, *, step_m: float = 15.0, cap_agl_m: float = NATIONAL_CEILING_AGL_M,
                    rtl_base_m: float | None = None, rtl_step_m: float = 10.0) -> Layers:
    """Cruise layers ``step_m`` apart and RTL altitudes ``rtl_step_m`` apart for ``n`` vehicles.

    The steps keep several times a multirotor's vertical hold error (a few metres with GNSS and
    a barometer) between vehicles over one incident (our rule). ``PlanRefused`` when the top
    layer or the top RTL altitude would exceed ``cap_agl_m``.

    >>> altitude_layers(3, 60.0).cruise_agl_m
    (60.0, 75.0, 90.0)
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of vehicles, got {n!r}")
    if not (step_m > 0 and rtl_step_m > 0 and base_agl_m >= 0):
        raise ValueError(f"steps must be positive and base_agl_m >= 0, got {step_m}, {rtl_step_m}, {base_agl_m}")
    rtl0 = float(base_agl_m if rtl_base_m is None else rtl_base_m)
    cruise = tuple(float(base_agl_m + k * step_m) for k in range(n))
    rtl = tuple(rtl0 + k * rtl_step_m for k in range(n))
    reasons, reasons_zh = [], []
    if cruise[-1] > cap_agl_m + 1e-9:
        fit = int((cap_agl_m - base_agl_m) // step_m) + 1 if cap_agl_m >= base_agl_m else 0
        reasons.append(f"{n} cruise layers {step_m:.0f} m apart from {base_agl_m:.0f} m reach {cruise[-1]:.0f} m, above "
                       f"the {cap_agl_m:.0f} m ceiling (at most {fit} fit)")
        reasons_zh.append(f"{n} 个巡航高度层（间隔 {step_m:.0f} 米，自 {base_agl_m:.0f} 米起）最高 {cruise[-1]:.0f} 米，"
                          f"超过 {cap_agl_m:.0f} 米上限（最多容纳 {fit} 层）")
    if rtl[-1] > cap_agl_m + 1e-9:
        reasons.append(f"{n} RTL altitudes {rtl_step_m:.0f} m apart from {rtl0:.0f} m reach {rtl[-1]:.0f} m, above "
                       f"the {cap_agl_m:.0f} m ceiling")
        reasons_zh.append(f"{n} 个返航高度（间隔 {rtl_step_m:.0f} 米，自 {rtl0:.0f} 米起）最高 {rtl[-1]:.0f} 米，"
                          f"超过 {cap_agl_m:.0f} 米上限")
    if reasons:
        raise PlanRefused(reasons, reasons_zh)
    return Layers(cruise, rtl)
