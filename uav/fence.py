"""Geofences as plain data, and their mission items (MAV_MISSION_TYPE_FENCE).

    fence = Fence.inclusion_polygon([(106.50, 29.60), (106.54, 29.60), (106.54, 29.64)])
    fence = fence.with_exclusion_circle(106.52, 29.62, radius_m=50)
    await vehicle.upload_fence(fence)

Wire form (https://mavlink.io/en/services/geofence.html): one item per polygon vertex,
MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION (5001) / _EXCLUSION (5002) with param1 = the
polygon's vertex count, vertices of one polygon consecutive; one item per circle,
MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION (5003) / _EXCLUSION (5004) with param1 = radius in
metres; optionally MAV_CMD_NAV_FENCE_RETURN_POINT (5000). Fence items have no home slot.
Coordinates are (lon, lat) in degrees, WGS84, as everywhere in Yingji.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.mission import FRAME_ABOVE_HOME, FRAME_GLOBAL_AMSL, MissionItem

__all__ = ["Fence", "FenceCircle", "FencePolygon", "fence_items", "fence_from_items",
           "MIN_POLYGON_VERTICES"]

# A polygon needs at least 3 vertices (AC_PolyFence_loader rejects fewer).
MIN_POLYGON_VERTICES = 3
_INCL_VERTEX = mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
_EXCL_VERTEX = mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION
_INCL_CIRCLE = mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
_EXCL_CIRCLE = mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION
_RETURN = mav.MAV_CMD_NAV_FENCE_RETURN_POINT

LonLat = tuple[float, float]


def _check_point(lon_deg: float, lat_deg: float) -> LonLat:
    lon, lat = float(lon_deg), float(lat_deg)
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise ValueError(f"({lon_deg}, {lat_deg}) is not a WGS84 lon/lat")
    return lon, lat


@dataclass(frozen=True, slots=True)
class FencePolygon:
    """A polygon the vehicle must stay inside (inclusion) or outside (exclusion)."""

    vertices: tuple[LonLat, ...]
    inclusion: bool = True

    def __post_init__(self) -> None:
        points = [_check_point(lon, lat) for lon, lat in self.vertices]
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()  # a closed ring (shapely's exterior.coords) repeats its first vertex
        if len(points) < MIN_POLYGON_VERTICES:
            raise ValueError(f"a fence polygon needs at least {MIN_POLYGON_VERTICES} "
                             f"distinct vertices, got {len(points)}")
        object.__setattr__(self, "vertices", tuple(points))


@dataclass(frozen=True, slots=True)
class FenceCircle:
    """A circle the vehicle must stay inside (inclusion) or outside (exclusion)."""

    lon_deg: float
    lat_deg: float
    radius_m: float
    inclusion: bool = True

    def __post_init__(self) -> None:
        _check_point(self.lon_deg, self.lat_deg)
        if not (math.isfinite(self.radius_m) and self.radius_m > 0):
            raise ValueError(f"a fence circle needs a positive radius, got {self.radius_m}")


@dataclass(frozen=True, slots=True)
class Fence:
    """Polygons and circles (inclusion and exclusion) plus an optional return point."""

    polygons: tuple[FencePolygon, ...] = ()
    circles: tuple[FenceCircle, ...] = ()
    return_point: LonLat | None = None

    @classmethod
    def inclusion_polygon(cls, vertices: Iterable[Sequence[float]]) -> Fence:
        """A fence that keeps the vehicle inside ``vertices`` ((lon, lat) pairs)."""
        return cls(polygons=(FencePolygon(tuple((v[0], v[1]) for v in vertices)),))

    @classmethod
    def inclusion_circle(cls, lon_deg: float, lat_deg: float, radius_m: float) -> Fence:
        """A fence that keeps the vehicle within ``radius_m`` of a point."""
        return cls(circles=(FenceCircle(lon_deg, lat_deg, radius_m),))

    def with_exclusion_polygon(self, vertices: Iterable[Sequence[float]]) -> Fence:
        """This fence plus a no-go polygon."""
        poly = FencePolygon(tuple((v[0], v[1]) for v in vertices), inclusion=False)
        return replace(self, polygons=(*self.polygons, poly))

    def with_exclusion_circle(self, lon_deg: float, lat_deg: float, radius_m: float) -> Fence:
        """This fence plus a no-go circle."""
        return replace(self, circles=(*self.circles,
                                      FenceCircle(lon_deg, lat_deg, radius_m, inclusion=False)))

    @property
    def empty(self) -> bool:
        return not self.polygons and not self.circles and self.return_point is None


def fence_items(fence: Fence) -> list[MissionItem]:
    """The mission items (MAV_MISSION_TYPE_FENCE) that describe ``fence``, in order."""
    items: list[MissionItem] = []
    if fence.return_point is not None:
        lon, lat = fence.return_point
        items.append(MissionItem(_RETURN, frame=FRAME_ABOVE_HOME, lat_deg=lat, lon_deg=lon))
    for poly in fence.polygons:
        cmd = _INCL_VERTEX if poly.inclusion else _EXCL_VERTEX
        n = float(len(poly.vertices))
        items += [MissionItem(cmd, frame=FRAME_GLOBAL_AMSL, lat_deg=lat, lon_deg=lon, param1=n)
                  for lon, lat in poly.vertices]
    for c in fence.circles:
        items.append(MissionItem(_INCL_CIRCLE if c.inclusion else _EXCL_CIRCLE,
                                 frame=FRAME_GLOBAL_AMSL, lat_deg=c.lat_deg, lon_deg=c.lon_deg,
                                 param1=float(c.radius_m)))
    return items


def fence_from_items(items: Sequence[MissionItem]) -> Fence:
    """The Fence read back from a vehicle's fence items; ValueError names a malformed item."""
    polygons: list[FencePolygon] = []
    circles: list[FenceCircle] = []
    return_point: LonLat | None = None
    i = 0
    while i < len(items):
        it = items[i]
        if it.command in (_INCL_VERTEX, _EXCL_VERTEX):
            n = int(round(it.param1))
            group = items[i:i + n]
            if n < MIN_POLYGON_VERTICES or len(group) < n or any(
                    g.command != it.command or int(round(g.param1)) != n for g in group):
                raise ValueError(f"fence item {i}: polygon of {n} vertices is not followed by "
                                 f"{n} matching vertex items")
            polygons.append(FencePolygon(tuple((g.lon_deg, g.lat_deg) for g in group),
                                         inclusion=it.command == _INCL_VERTEX))
            i += n
            continue
        if it.command in (_INCL_CIRCLE, _EXCL_CIRCLE):
            circles.append(FenceCircle(it.lon_deg, it.lat_deg, it.param1,
                                       inclusion=it.command == _INCL_CIRCLE))
        elif it.command == _RETURN:
            return_point = (it.lon_deg, it.lat_deg)
        else:
            raise ValueError(f"fence item {i}: command {it.command} is not a fence command")
        i += 1
    return Fence(tuple(polygons), tuple(circles), return_point)
