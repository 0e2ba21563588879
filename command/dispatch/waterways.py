"""Where a boat may go now: the water, the bridges it fits under and the current it must beat. Pure.

The service builds a ``Waterway`` from the district and the live state:

* water: the rivers' own water areas plus the flooded ground of open flood incidents deep
  enough for a boat (``command.floodmap``: ``boat_geometry``);
* crossings: every bridge with its headroom over today's water (its underside minus the water
  surface: the flood level where a flood extent covers it, else the low-water surface). A
  bridge with less headroom than the boat's air draft plus ``HEADROOM_MARGIN_M`` is an
  obstacle, and a plan that would need to pass it is refused naming it;
* flows: the current of each river where a gauge measures its surface velocity. The current
  runs along the river's centre line (drawn upstream to downstream, docs/district-folder.md)
  inside its channel; on flooded ground off the channel no current is known and none is
  assumed (said in the plan's checks). A leg on which the current leaves the boat less than
  ``paths.MIN_GROUND_SPEED_MPS`` over ground is refused (``paths.check_current``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from .energy import Flow
from .geometry import UTM_48N, to_lonlat, to_utm, utm_transformers
from .paths import WaterPlanner

__all__ = ["HEADROOM_MARGIN_M", "Crossing", "RiverFlow", "Waterway"]

# Room to keep between a boat's highest point and a bridge's underside: waves, the boat's
# own heave, the uncertainty of the water level between gauges. Our figure.
HEADROOM_MARGIN_M = 0.5
_GEOD = Geod(ellps="WGS84")
_TANGENT_M = 30.0  # the river's direction at a point: its centre line ± this


@dataclass(frozen=True, slots=True)
class Crossing:
    """A bridge as a boat meets it today."""

    id: str
    name: str
    name_zh: str
    line: LineString  # lon/lat, across the water
    headroom_m: float  # underside minus today's water surface

    def blocks(self, air_draft_m: float, margin_m: float = HEADROOM_MARGIN_M) -> bool:
        return self.headroom_m < air_draft_m + margin_m


@dataclass(frozen=True, slots=True)
class RiverFlow:
    """A river's measured surface current, along its centre line inside its channel."""

    river: str
    line: LineString  # lon/lat centre line, upstream to downstream
    channel: BaseGeometry  # lon/lat water area the current applies in
    speed_mps: float
    source: str  # the gauge that measured it

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_mps) and self.speed_mps >= 0):
            raise ValueError(f"river {self.river}: current must be a speed >= 0, got {self.speed_mps!r}")


@dataclass(frozen=True)
class Waterway:
    """The water a boat may use now (lon/lat), the bridges over it and the currents in it."""

    water: Polygon | MultiPolygon
    crossings: tuple[Crossing, ...] = ()
    flows: tuple[RiverFlow, ...] = ()
    epsg: int = UTM_48N
    _planners: dict[tuple[str, ...], WaterPlanner] = field(default_factory=dict, repr=False, compare=False)

    def planner(self, air_draft_m: float) -> WaterPlanner:
        """Boat paths on this water for a boat of this air draft (built once per set of blocking bridges:
        the graph over a river network and a flood's outline takes about a second)."""
        blocks = self.blocking(air_draft_m)
        key = tuple(c.id for c in blocks)
        if key not in self._planners:
            self._planners[key] = WaterPlanner(self.water, blocked=[c.line for c in blocks], epsg=self.epsg)
        return self._planners[key]

    def blocking(self, air_draft_m: float, margin_m: float = HEADROOM_MARGIN_M) -> tuple[Crossing, ...]:
        """The bridges a boat with this air draft cannot pass under today."""
        return tuple(c for c in self.crossings if c.blocks(air_draft_m, margin_m))

    def passable(self, air_draft_m: float, *, gap_m: float = 20.0) -> Polygon | MultiPolygon:
        """The water with a ``gap_m`` cut across it at every blocking bridge (patterns stay on one side)."""
        blocks = self.blocking(air_draft_m)
        if not blocks:
            return self.water
        cut = shapely.union_all([to_utm(c.line, self.epsg).buffer(gap_m / 2.0) for c in blocks])
        out = to_lonlat(to_utm(self.water, self.epsg).difference(cut), self.epsg)
        parts = [g for g in shapely.get_parts(out) if isinstance(g, Polygon) and not g.is_empty]
        return MultiPolygon(parts) if len(parts) != 1 else parts[0]

    def flow_at(self, lon: float, lat: float) -> Flow | None:
        """The current at a point: its river's speed, toward the river's downstream direction there."""
        p = Point(lon, lat)
        for f in self.flows:
            if f.speed_mps <= 0 or not f.channel.covers(p):
                continue
            _, inv = utm_transformers(self.epsg)
            line = to_utm(f.line, self.epsg)
            at = line.project(to_utm(p, self.epsg))
            a = inv.transform(*line.interpolate(max(at - _TANGENT_M, 0.0)).coords[0])
            b = inv.transform(*line.interpolate(min(at + _TANGENT_M, line.length)).coords[0])
            az, _, _ = _GEOD.inv(a[0], a[1], b[0], b[1])
            return Flow.current_toward(f.speed_mps, float(az) % 360.0)
        return None

    def leg_flows(self, path: Sequence[tuple[float, float]], *, step_m: float = 200.0) -> list[Flow | None]:
        """The current on each leg of a lon/lat path: of the currents met every ``step_m`` along the
        leg, the one most against it (a leg is as hard as its hardest stretch)."""
        out: list[Flow | None] = []
        for a, b in zip(path, path[1:]):
            course, _, dist = _GEOD.inv(a[0], a[1], b[0], b[1])
            n = max(1, int(math.ceil(dist / step_m)))
            worst: Flow | None = None
            worst_along = math.inf
            for k in range(n + 1):
                t = k / n
                f = self.flow_at(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                if f is None:
                    continue
                along = f.speed_mps * math.cos(math.radians(f.toward_deg - course))
                if along < worst_along:
                    worst, worst_along = f, along
            out.append(worst)
        return out
