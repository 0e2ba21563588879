"""Metric helpers: WGS84 lon/lat at the boundary, UTM metres inside (pyproj, always_xy)."""

from __future__ import annotations

import math

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["UTM_48N", "circle_lonlat", "densify", "ground_distance_m", "path_length_m", "to_lonlat", "to_utm",
           "utm_transformers"]

UTM_48N = 32648  # EPSG code of WGS84 / UTM zone 48N (Chongqing)


@lru_cache(maxsize=8)
def utm_transformers(epsg: int = UTM_48N) -> tuple[Transformer, Transformer]:
    """(lon/lat → metres, metres → lon/lat) for a projected CRS, axis order x, y."""
    fwd = Transformer.from_crs(4326, epsg, always_xy=True)
    inv = Transformer.from_crs(epsg, 4326, always_xy=True)
    return fwd, inv


def to_utm(geom: BaseGeometry, epsg: int = UTM_48N) -> BaseGeometry:
    """A lon/lat geometry in the projected CRS's metres."""
    fwd, _ = utm_transformers(epsg)
    return shapely.transform(geom, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))


def to_lonlat(geom: BaseGeometry, epsg: int = UTM_48N) -> BaseGeometry:
    """A geometry in the projected CRS's metres back in lon/lat."""
    _, inv = utm_transformers(epsg)
    return shapely.transform(geom, lambda c: np.column_stack(inv.transform(c[:, 0], c[:, 1])))


def _xy(path_lonlat: Sequence[tuple[float, float]], epsg: int) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(path_lonlat, dtype=float).reshape(-1, 2)
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(pts[:, 0], pts[:, 1])
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def path_length_m(path_lonlat: Sequence[tuple[float, float]], *, epsg: int = UTM_48N) -> float:
    """Length of a lon/lat polyline in metres (grid distance in the projected CRS)."""
    x, y = _xy(path_lonlat, epsg)
    return float(np.hypot(np.diff(x), np.diff(y)).sum()) if len(x) > 1 else 0.0


def densify(path_lonlat: Sequence[tuple[float, float]], step_m: float, *,
            epsg: int = UTM_48N) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample a polyline every ``step_m`` or closer, keeping every vertex.

    Returns ``(lons, lats, along_m, seg)``: sample positions, distance from the start and
    the index of the segment each sample lies on (the last vertex gets the last segment).
    """
    if step_m <= 0:
        raise ValueError(f"step_m must be positive, got {step_m}")
    x, y = _xy(path_lonlat, epsg)
    if len(x) == 0:
        raise ValueError("empty path")
    if len(x) == 1:
        _, inv = utm_transformers(epsg)
        lon, lat = inv.transform(x, y)
        return np.asarray(lon), np.asarray(lat), np.zeros(1), np.zeros(1, dtype=int)
    xs, ys, along, seg = [], [], [], []
    start = 0.0
    for i in range(len(x) - 1):
        length = float(np.hypot(x[i + 1] - x[i], y[i + 1] - y[i]))
        n = max(1, int(np.ceil(length / step_m)))
        last = i == len(x) - 2
        t = np.linspace(0.0, 1.0, n + 1)[: None if last else -1]
        xs.append(x[i] + t * (x[i + 1] - x[i]))
        ys.append(y[i] + t * (y[i + 1] - y[i]))
        along.append(start + t * length)
        seg.append(np.full(len(t), i, dtype=int))
        start += length
    _, inv = utm_transformers(epsg)
    lon, lat = inv.transform(np.concatenate(xs), np.concatenate(ys))
    return np.asarray(lon), np.asarray(lat), np.concatenate(along), np.concatenate(seg)


def ground_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, mean Earth radius) between two lon/lat points, metres."""
    p1, p2 = math.radians(a[1]), math.radians(b[1])
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[0] - a[0]) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def circle_lonlat(lon: float, lat: float, radius_m: float, *, segments: int = 64, epsg: int = UTM_48N) -> Polygon:
    """A circle of ``radius_m`` metres around a lon/lat point (drawn in the metric CRS), as a lon/lat polygon."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    fwd, inv = utm_transformers(epsg)
    x, y = fwd.transform(lon, lat)
    a = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    lons, lats = inv.transform(x + radius_m * np.cos(a), y + radius_m * np.sin(a))
    return Polygon(np.column_stack([lons, lats]))
