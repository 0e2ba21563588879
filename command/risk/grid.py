"""The district risk grid: square cells in UTM 48N (EPSG:32648), row 0 along the north edge.

Everything metric (distances, areas, road lengths, kernels) is done on this grid in metres;
lon/lat appear only at the boundary (cell centres for the map, polygons of hotspots).

>>> g = Grid.from_bbox((106.45, 29.6, 106.95, 30.1), cell_m=1000.0)
>>> g.shape
(57, 50)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from command.dispatch.geometry import UTM_48N, utm_transformers

if TYPE_CHECKING:  # any object with Terrain's fields and ``elevation_along`` will do
    from command.district import Terrain

__all__ = ["DEFAULT_CELL_M", "Grid", "GridError", "Window"]

DEFAULT_CELL_M = 30.0  # the SRTM / ASTER GDEM 1-arc-second posting (~30 m), the finest free terrain
BBOX_EDGE_SAMPLES = 64  # points per bbox edge when projecting it (a lon/lat edge is curved in UTM)

Window = tuple[slice, slice]  # (rows, cols) of a rectangular block of cells


class GridError(ValueError):
    """A grid that cannot be built, or a layer that does not fit the grid."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Grid:
    """Regular square cells in a projected CRS; cell (r, c) spans
    x ∈ [west + c·cell, west + (c+1)·cell), y ∈ (north − (r+1)·cell, north − r·cell]."""

    west_m: float  # easting of the west edge
    north_m: float  # northing of the north edge
    cell_m: float
    nrows: int
    ncols: int
    epsg: int = UTM_48N

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cell_m) and self.cell_m > 0):
            raise GridError(f"cell_m must be a positive number of metres, got {self.cell_m}")
        if self.nrows < 1 or self.ncols < 1:
            raise GridError(f"a grid needs at least one cell, got {self.nrows} x {self.ncols}")
        if not (np.isfinite(self.west_m) and np.isfinite(self.north_m)):
            raise GridError(f"grid origin must be finite, got ({self.west_m}, {self.north_m})")

    @classmethod
    def from_bbox(cls, bbox: Sequence[float], *, cell_m: float = DEFAULT_CELL_M, epsg: int = UTM_48N) -> Grid:
        """The smallest grid of ``cell_m`` cells, snapped to multiples of ``cell_m``, covering a lon/lat bbox."""
        if len(bbox) != 4:
            raise GridError(f"bbox must be [west, south, east, north], got {list(bbox)}")
        w, s, e, n = (float(v) for v in bbox)
        if not (w < e and s < n and -180 <= w and e <= 180 and -90 <= s and n <= 90):
            raise GridError(f"bbox {[w, s, e, n]} must be [west, south, east, north] in WGS84")
        if not (np.isfinite(cell_m) and cell_m > 0):
            raise GridError(f"cell_m must be a positive number of metres, got {cell_m}")
        t = np.linspace(0.0, 1.0, BBOX_EDGE_SAMPLES)
        lon = np.concatenate([w + t * (e - w), np.full_like(t, e), e - t * (e - w), np.full_like(t, w)])
        lat = np.concatenate([np.full_like(t, s), s + t * (n - s), np.full_like(t, n), n - t * (n - s)])
        fwd, _ = utm_transformers(epsg)
        x, y = fwd.transform(lon, lat)
        west = np.floor(np.min(x) / cell_m) * cell_m
        east = np.ceil(np.max(x) / cell_m) * cell_m
        south = np.floor(np.min(y) / cell_m) * cell_m
        north = np.ceil(np.max(y) / cell_m) * cell_m
        return cls(float(west), float(north), float(cell_m),
                   int(round((north - south) / cell_m)), int(round((east - west) / cell_m)), epsg)

    # --- size -----------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    @property
    def size(self) -> int:
        return self.nrows * self.ncols

    @property
    def cell_area_m2(self) -> float:
        return self.cell_m * self.cell_m

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in metres."""
        return (self.west_m, self.north_m - self.nrows * self.cell_m,
                self.west_m + self.ncols * self.cell_m, self.north_m)

    def check(self, layer: np.ndarray, name: str = "layer") -> np.ndarray:
        """``layer`` as an array, or ``GridError`` if its shape is not the grid's."""
        a = np.asarray(layer)
        if a.shape != self.shape:
            raise GridError(f"{name} has shape {a.shape}, the grid is {self.shape}")
        return a

    # --- cell centres ---------------------------------------------------------------------------
    # Cached (the grid is immutable) and read-only so no caller can change them for the others.

    @cached_property
    def x_m(self) -> np.ndarray:
        """Eastings of the column centres, shape (ncols,)."""
        return _readonly(self.west_m + (np.arange(self.ncols) + 0.5) * self.cell_m)

    @cached_property
    def y_m(self) -> np.ndarray:
        """Northings of the row centres (decreasing), shape (nrows,)."""
        return _readonly(self.north_m - (np.arange(self.nrows) + 0.5) * self.cell_m)

    @cached_property
    def centres_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of every cell centre, each shape (nrows, ncols), metres."""
        x, y = np.meshgrid(self.x_m, self.y_m)
        return _readonly(x), _readonly(y)

    @cached_property
    def centres_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) of every cell centre, each shape (nrows, ncols), degrees."""
        x, y = self.centres_xy
        lon, lat = self.to_lonlat(x, y)
        return _readonly(lon), _readonly(lat)

    # --- points ↔ cells ---------------------------------------------------------------------------

    def to_xy(self, lon: np.ndarray | Sequence[float] | float,
              lat: np.ndarray | Sequence[float] | float) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat → grid CRS metres."""
        fwd, _ = utm_transformers(self.epsg)
        x, y = fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def to_lonlat(self, x: np.ndarray | Sequence[float] | float,
                  y: np.ndarray | Sequence[float] | float) -> tuple[np.ndarray, np.ndarray]:
        """Grid CRS metres → WGS84 lon/lat."""
        _, inv = utm_transformers(self.epsg)
        lon, lat = inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    def cell_of_xy(self, x: np.ndarray | Sequence[float] | float,
                   y: np.ndarray | Sequence[float] | float) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells holding points in metres; both −1 for points off the grid or NaN."""
        xa = np.asarray(x, dtype=float)
        ya = np.asarray(y, dtype=float)
        with np.errstate(invalid="ignore"):
            fc = np.floor((xa - self.west_m) / self.cell_m)
            fr = np.floor((self.north_m - ya) / self.cell_m)
            ok = (fc >= 0) & (fc < self.ncols) & (fr >= 0) & (fr < self.nrows)
        rows = np.where(ok, np.nan_to_num(fr), -1).astype(np.intp)
        cols = np.where(ok, np.nan_to_num(fc), -1).astype(np.intp)
        return rows, cols

    def cell_of_lonlat(self, lon: np.ndarray | Sequence[float] | float,
                       lat: np.ndarray | Sequence[float] | float) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells holding lon/lat points; −1 off the grid."""
        return self.cell_of_xy(*self.to_xy(lon, lat))

    def xy_of_cell(self, rows: np.ndarray | int, cols: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y) in metres of cells."""
        r = np.asarray(rows)
        c = np.asarray(cols)
        return self.west_m + (c + 0.5) * self.cell_m, self.north_m - (r + 0.5) * self.cell_m

    def lonlat_of_cell(self, rows: np.ndarray | int, cols: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Centre lon/lat of cells."""
        return self.to_lonlat(*self.xy_of_cell(rows, cols))

    def window(self, x_m: float, y_m: float, radius_m: float) -> Window:
        """The block of cells whose centres may lie within ``radius_m`` of a point (clipped; may be empty)."""
        if not radius_m >= 0:
            raise GridError(f"radius_m must be ≥ 0, got {radius_m}")
        if not np.isfinite(radius_m):
            return (slice(0, self.nrows), slice(0, self.ncols))
        c0 = int(np.floor((x_m - radius_m - self.west_m) / self.cell_m - 0.5))
        c1 = int(np.ceil((x_m + radius_m - self.west_m) / self.cell_m - 0.5)) + 1
        r0 = int(np.floor((self.north_m - y_m - radius_m) / self.cell_m - 0.5))
        r1 = int(np.ceil((self.north_m - y_m + radius_m) / self.cell_m - 0.5)) + 1
        r0, r1 = max(r0, 0), min(max(r1, 0), self.nrows)
        c0, c1 = max(c0, 0), min(max(c1, 0), self.ncols)
        return (slice(r0, max(r0, r1)), slice(c0, max(c0, c1)))

    # --- layers from other rasters and shapes -----------------------------------------------------

    def resample(self, terrain: Terrain) -> np.ndarray:
        """Bilinear resampling of a lon/lat terrain grid onto the cell centres (m AMSL; NaN off the terrain)."""
        lon, lat = self.centres_lonlat
        return terrain.elevation_along(lon.ravel(), lat.ravel()).reshape(self.shape)

    def mask_inside(self, area_lonlat: BaseGeometry) -> np.ndarray:
        """True for cells whose centre lies inside a lon/lat (multi)polygon, e.g. the district boundary."""
        lon, lat = self.centres_lonlat
        shapely.prepare(area_lonlat)
        return shapely.contains_xy(area_lonlat, lon, lat)

    def cell_polygons(self, rows: np.ndarray | Sequence[int], cols: np.ndarray | Sequence[int], *,
                      lonlat: bool = False) -> np.ndarray:
        """Cell outlines (shapely Polygons), in metres or, with ``lonlat``, as WGS84 quadrilaterals."""
        r = np.asarray(rows, dtype=float)
        c = np.asarray(cols, dtype=float)
        x0 = self.west_m + c * self.cell_m
        y1 = self.north_m - r * self.cell_m
        x1, y0 = x0 + self.cell_m, y1 - self.cell_m
        if not lonlat:
            return shapely.box(x0, y0, x1, y1)
        xs = np.stack([x0, x1, x1, x0], axis=-1)
        ys = np.stack([y0, y0, y1, y1], axis=-1)
        lon, lat = self.to_lonlat(xs, ys)
        return shapely.polygons(np.stack([lon, lat], axis=-1))
