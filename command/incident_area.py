"""The area an incident's hazard covers, from the models of its sensors. Pure.

One answer for everyone who draws or warns an area: department tasks (``linkage_service``),
CAP alerts, evacuation zones drawn from the hazard, the TAK drawings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from .dispatch.geometry import UTM_48N, circle_lonlat
from .dispatch.tasks import runout_area
from .hazardmap import SLOPE_RADIUS_M

__all__ = ["hazard_area", "polygons_of"]


def polygons_of(geom: BaseGeometry | None) -> list[Polygon]:
    """The polygons in a geometry (made valid first), nested collections included; lines and points dropped."""
    if geom is None or geom.is_empty:
        return []
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if isinstance(geom, Polygon):
        return [geom]
    return [p for g in getattr(geom, "geoms", ()) for p in polygons_of(g)]


def _geojson(value: Any) -> BaseGeometry | None:
    try:
        return shape(value) if value else None
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


def hazard_area(kind: str, lon: float, lat: float, detail: Mapping[str, Any], *,
                elevation: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                epsg: int = UTM_48N) -> tuple[BaseGeometry | None, str, str]:
    """The hazard geometry of an incident (lon/lat) and what it is (en, zh); None when no model drew one.

    Flood: the members' extents at the current level. Chemical leak: the plume's warm zone (which
    holds the hot zone). Fire: the estimated spread perimeter. Landslide: the slope (the disk the
    risk map uses) and its run-out downhill (``dispatch.tasks.runout_area``, needs ``elevation``).
    """
    members = detail.get("members") or {}
    models = [m.get("model") or {} for m in members.values() if isinstance(m, Mapping)]
    parts: list[BaseGeometry] = []
    if kind == "flood":
        parts = [g for g in (_geojson((m.get("extent") or {}).get("geometry")) for m in models) if g is not None]
        what = ("estimated flood extent at the current river level", "当前水位下的估算淹没范围")
    elif kind == "chemical_leak":
        for m in models:
            plume = m.get("plume") or {}
            parts += [g for g in (_geojson(plume.get("warm_zone")), _geojson(plume.get("hot_zone"))) if g is not None]
        what = ("estimated gas plume (warm zone)", "估算气体扩散影响区")
    elif kind == "fire":
        parts = [g for g in (_geojson((m.get("spread") or {}).get("perimeter")) for m in models) if g is not None]
        what = ("estimated fire spread", "估算火势蔓延范围")
    elif kind == "landslide":
        if elevation is not None:
            runout, _ = runout_area(lon, lat, elevation, epsg=epsg)
            parts = [runout, circle_lonlat(lon, lat, SLOPE_RADIUS_M, epsg=epsg)]
        what = ("the slope and its estimated run-out downhill", "边坡及其下方估算滑坡影响范围")
    else:
        what = ("", "")
    polys = [p for g in parts for p in polygons_of(g)]
    if not polys:
        return None, "", ""
    return shapely.union_all(polys), what[0], what[1]


