"""Flood extent at a river gauge's reach: the gauge level as a water surface over the terrain.

``command.risk.flood.flood_extent`` floods the ground below a surface that is connected to
the water. Here the surface is the gauge's level (converted to the terrain's datum with the
gauge's ``terrain_offset_m``), held flat over the reach the gauge watches (``reach_m`` around
it: a flat surface is a fair picture of a reach, not of a whole river), seeded from the water
areas inside that reach. The result is an upper bound (no hydraulics: walls, culverts and
the time water takes are ignored) with the people and facilities inside it, and the flooded
ground deep enough for a boat (``boat_geometry``, at least ``BOAT_MIN_DEPTH_M``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping

from sensors.registry import SensorSpec

from .district import District
from .risk.flood import cell_area_m2, flood_extent, mask_polygons, water_mask

__all__ = ["FloodMapper"]

DEFAULT_REACH_M = 20_000.0
# Flooded ground a boat may cross: at least this deep. A survey boat draws 0.3-0.5 m; the rest
# is margin for what a flood hides (kerbs, walls, cars, debris). Our figure.
BOAT_MIN_DEPTH_M = 1.0


class FloodMapper:
    """Flood extents of one district's gauges (terrain and water mask prepared once)."""

    def __init__(self, district: District, *, reach_m: float = DEFAULT_REACH_M) -> None:
        self.terrain = district.terrain
        self.reach_m = reach_m
        self.water = water_mask(self.terrain, district.water)
        nrows, ncols = self.terrain.z_m.shape
        cell = self.terrain.cell_deg
        self._lons = self.terrain.xll_deg + (np.arange(ncols) + 0.5) * cell
        self._lats = self.terrain.yll_deg + (nrows - np.arange(nrows) - 0.5) * cell  # row 0 = north
        self._places = [f for f in district.facilities if f.kind in ("town", "village", "school", "hospital",
                                                                      "nursing_home", "chemical_site")]

    def extent(self, spec: SensorSpec, level_m: float) -> dict[str, Any]:
        """The flooded area at ``spec``'s reach for a gauge level (in the gauge's datum)."""
        offset = spec.properties.get("terrain_offset_m")
        if not isinstance(offset, (int, float)) or isinstance(offset, bool):
            return {"error": f"gauge {spec.sensor_id} has no terrain_offset_m (its {spec.datum or 'unknown'} datum "
                             f"against the terrain's): no flood extent"}
        surface_m = float(level_m) + float(offset)
        kx = 111_320.0 * math.cos(math.radians(spec.lat))
        dx = (self._lons - spec.lon) * kx
        dy = (self._lats - spec.lat) * 110_574.0
        near = (dy[:, np.newaxis] ** 2 + dx[np.newaxis, :] ** 2) <= self.reach_m ** 2
        result = flood_extent(self.terrain, self.water & near, surface_m, polygons=False)
        extent = result.extent & near
        polygons = mask_polygons(self.terrain, extent)
        land = extent & ~self.water
        deep = mask_polygons(self.terrain, land & (result.depth_m >= BOAT_MIN_DEPTH_M))
        # the cells' stepped outline, a quarter cell inside, simplified by as much: inside the deep water,
        # with a few dozen corners instead of thousands (boats' paths are planned around them)
        step = self.terrain.cell_deg / 4.0
        deep = shapely.simplify(shapely.buffer(deep, -step, join_style="mitre"), step)
        area_row = cell_area_m2(self.terrain)  # m² of a cell, by row
        inside = [f for f in self._places if polygons.contains(shapely.Point(f.lon, f.lat))]
        return {
            "surface_m": round(surface_m, 2), "gauge_level_m": round(float(level_m), 2),
            "reach_km": self.reach_m / 1000.0,
            "area_km2": round(float(extent.sum(axis=1) @ area_row) / 1e6, 3),
            "land_area_km2": round(float(land.sum(axis=1) @ area_row) / 1e6, 3),
            "max_depth_m": round(float(np.where(land, result.depth_m, 0.0).max()) if land.any() else 0.0, 2),
            "people": int(sum(f.population or 0 for f in inside)),
            "facilities": [f.id for f in inside],
            "geometry": mapping(polygons),
            # flooded ground (outside the river's own water areas) deep enough for a boat
            "boat_geometry": mapping(deep), "boat_min_depth_m": BOAT_MIN_DEPTH_M,
            "note": "upper bound: flat water surface over the gauge's reach, no hydraulics",
        }
