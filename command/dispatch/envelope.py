"""The safety envelope of a mission: the geofence the vehicle carries while it flies it.

Compiled from the same data as the plan: an inclusion polygon around the planned path
(the vehicle's own fence action, RTL, fires if it strays outside), with the prohibited
zones that the margin reaches as exclusion polygons.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon

from uav.fence import Fence

from .airspace import Zone
from .geometry import UTM_48N, utm_transformers

DEFAULT_MARGIN_M = 300.0  # room for wind drift and the loiter circle around the straight legs
SIMPLIFY_M = 20.0  # keeps the polygon to a few dozen vertices (fence storage is small on a vehicle)


def _to_lonlat(poly: Polygon, epsg: int) -> list[tuple[float, float]]:
    _, inv = utm_transformers(epsg)
    xs, ys = poly.exterior.coords.xy
    lons, lats = inv.transform(list(xs), list(ys))
    return list(zip(lons, lats, strict=True))


def mission_fence(path_lonlat: Sequence[tuple[float, float]], zones: Sequence[Zone], *,
                  margin_m: float = DEFAULT_MARGIN_M, epsg: int = UTM_48N) -> Fence:
    """Inclusion polygon ``margin_m`` around the path, minus the prohibited zones it reaches.

    >>> fence = mission_fence([(106.85, 29.71), (106.86, 29.72)], [])
    >>> len(fence.polygons)
    1
    """
    if len(path_lonlat) < 1:
        raise ValueError("a fence needs a path")
    fwd, _ = utm_transformers(epsg)
    xs, ys = fwd.transform([p[0] for p in path_lonlat], [p[1] for p in path_lonlat])
    line = LineString(list(zip(xs, ys, strict=True))) if len(path_lonlat) > 1 else shapely.Point(xs[0], ys[0])
    area = line.buffer(margin_m).simplify(SIMPLIFY_M)
    fence = Fence.inclusion_polygon(_to_lonlat(area, epsg))
    for zone in zones:
        if zone.kind != "prohibited":
            continue
        zone_utm = shapely.transform(zone.polygon, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
        if not zone_utm.intersects(area):
            continue
        parts = zone_utm.geoms if isinstance(zone_utm, MultiPolygon) else [zone_utm]
        for part in parts:
            fence = fence.with_exclusion_polygon(_to_lonlat(part.simplify(SIMPLIFY_M), epsg))
    return fence
