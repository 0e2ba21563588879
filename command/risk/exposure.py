"""Exposure layers on the grid: who and what is there to be hit.

Each layer is named with its unit and holds a raw quantity per cell: people
(``population_persons``), counts of facilities (``schools_count``, ``hospitals_count``,
``nursing_homes_count``, ``bridges_count``) and road length (``road_length_m``).
Scoring (``command.risk.score``) normalises them; here they stay in their units so a
hotspot can say "12,400 people, 2 schools".

Population comes either from a population raster (persons per cell, WorldPop/LandScan
style; resampled preserving the total) or, when the district has none, from its town
points: each town's population spread with a Gaussian kernel that keeps the town total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
from scipy import ndimage

from .grid import Grid

__all__ = [
    "DEFAULT_FACILITY_LAYERS",
    "POPULATION",
    "ROAD_LENGTH",
    "Exposure",
    "ExposureError",
    "ExposureParams",
    "PopulationRaster",
    "build_exposure",
    "distance_to_nearest_m",
    "facility_counts",
    "population_from_points",
    "population_from_raster",
    "road_length_m",
]

POPULATION = "population_persons"
ROAD_LENGTH = "road_length_m"
# Layer name → facility ``kind`` counted in it (docs/district-folder.md lists the kinds).
DEFAULT_FACILITY_LAYERS: Mapping[str, str] = MappingProxyType({
    "schools_count": "school",
    "hospitals_count": "hospital",
    "nursing_homes_count": "nursing_home",
    "bridges_count": "bridge",
})


class ExposureError(ValueError):
    """Exposure input that cannot be used; the message names it."""


class _Facility(Protocol):
    id: str
    kind: str
    lon: float
    lat: float
    population: int | None


@dataclass(frozen=True, slots=True)
class ExposureParams:
    """How point data become layers.

    A town's Gaussian has standard deviation ``population_sigma_m`` when given; otherwise
    it is sized so that its peak density equals one person per ``land_m2_per_person``:
    σ = √(P · a / 2π). The default 100 m² per person is the middle of the per-capita urban
    construction land of GB 50137-2011 (Code for classification of urban land use and
    planning standards of development land, Table 4.2.1: 65.0–115.0 m² per person). The
    kernel is cut at ``truncate_sigmas`` and renormalised over the cells kept, so every
    town's total is preserved.
    """

    population_sigma_m: float | None = None
    land_m2_per_person: float = 100.0
    truncate_sigmas: float = 3.0
    population_kinds: tuple[str, ...] = ("town",)
    facility_layers: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FACILITY_LAYERS)

    def __post_init__(self) -> None:
        if self.population_sigma_m is not None and not self.population_sigma_m > 0:
            raise ExposureError(f"population_sigma_m must be positive, got {self.population_sigma_m}")
        if not self.land_m2_per_person > 0:
            raise ExposureError(f"land_m2_per_person must be positive, got {self.land_m2_per_person}")
        if not self.truncate_sigmas >= 1:
            raise ExposureError(f"truncate_sigmas must be ≥ 1, got {self.truncate_sigmas}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ExposureParams:
        """Defaults with overrides (unknown keys are ignored)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "facility_layers" in known:
            known["facility_layers"] = MappingProxyType(dict(known["facility_layers"]))
        if "population_kinds" in known:
            known["population_kinds"] = tuple(known["population_kinds"])
        for k in ("population_sigma_m", "land_m2_per_person", "truncate_sigmas"):
            if known.get(k) is not None:
                known[k] = float(known[k])
        return cls(**known)

    def sigma_m(self, persons: float) -> float:
        """Kernel standard deviation (m) for a place of ``persons``."""
        if self.population_sigma_m is not None:
            return self.population_sigma_m
        return math.sqrt(max(persons, 1.0) * self.land_m2_per_person / (2.0 * math.pi))


@dataclass(frozen=True, slots=True)
class PopulationRaster:
    """Persons per cell of a lon/lat raster (rows north to south, like ``Terrain``); NaN = nodata = nobody."""

    persons: np.ndarray
    xll_deg: float  # west edge
    yll_deg: float  # south edge
    cell_deg: float

    def __post_init__(self) -> None:
        p = np.asarray(self.persons, dtype=float)
        if p.ndim != 2 or p.size == 0:
            raise ExposureError(f"population raster must be a non-empty 2-D array, got shape {p.shape}")
        if not self.cell_deg > 0:
            raise ExposureError(f"population raster cell_deg must be positive, got {self.cell_deg}")
        if np.any(p < 0):
            raise ExposureError("population raster has negative counts")


# --- layers -----------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def population_from_points(grid: Grid, lon: Sequence[float], lat: Sequence[float], persons: Sequence[float], *,
                           params: ExposureParams = ExposureParams()) -> np.ndarray:
    """Persons per cell from places (lon/lat, persons), each spread by a truncated Gaussian keeping its total.

    A place off the grid raises ``ExposureError`` (its people would be lost).
    """
    lons = np.asarray(lon, dtype=float)
    lats = np.asarray(lat, dtype=float)
    pers = np.asarray(persons, dtype=float)
    if not (lons.shape == lats.shape == pers.shape and lons.ndim == 1):
        raise ExposureError(f"lon, lat and persons must be 1-D of one length, "
                            f"got {lons.shape}, {lats.shape}, {pers.shape}")
    if np.any(~np.isfinite(pers) | (pers < 0)):
        raise ExposureError("persons must be finite and ≥ 0")
    out = np.zeros(grid.shape)
    x, y = grid.to_xy(lons, lats)
    rows, cols = grid.cell_of_xy(x, y)
    off = np.flatnonzero(rows < 0)
    if off.size:
        raise ExposureError(f"place(s) at index {off.tolist()} lie off the grid")
    for xi, yi, p in zip(x, y, pers, strict=True):
        if p == 0:
            continue
        sigma = params.sigma_m(p)
        rs, cs = grid.window(xi, yi, params.truncate_sigmas * sigma)
        dx = grid.x_m[cs][None, :] - xi
        dy = grid.y_m[rs][:, None] - yi
        d2 = dx * dx + dy * dy
        w = np.exp(-d2 / (2.0 * sigma * sigma))
        w[d2 > (params.truncate_sigmas * sigma) ** 2] = 0.0
        total = w.sum()
        if total == 0.0:  # kernel narrower than a cell: all of it in the cell holding the place
            r, c = grid.cell_of_xy(xi, yi)
            out[int(r), int(c)] += p
            continue
        out[rs, cs] += w * (p / total)
    return out


def population_from_raster(grid: Grid, raster: PopulationRaster, *, subsamples: int | None = None
                           ) -> tuple[np.ndarray, float]:
    """Persons per cell from a population raster, and the persons that fell off the grid.

    Each raster cell is split into ``subsamples``² equal parts placed inside its projected
    outline; each part goes to the grid cell holding it, so the total is preserved (exactly
    for the parts on the grid). By default parts are at most half a grid cell apart.
    """
    persons = np.nan_to_num(np.asarray(raster.persons, dtype=float), nan=0.0)
    nr, nc = persons.shape
    # Projected corner lattice of the raster (row 0 = north edge).
    clon = raster.xll_deg + np.arange(nc + 1) * raster.cell_deg
    clat = raster.yll_deg + (nr - np.arange(nr + 1)) * raster.cell_deg
    LON, LAT = np.meshgrid(clon, clat)
    X, Y = grid.to_xy(LON, LAT)
    if subsamples is None:
        edge_m = float(np.nanmean(np.hypot(np.diff(X, axis=1), np.diff(Y, axis=1))))
        subsamples = int(np.clip(math.ceil(2.0 * edge_m / grid.cell_m), 1, 32))
    if subsamples < 1:
        raise ExposureError(f"subsamples must be ≥ 1, got {subsamples}")
    s = subsamples
    u = (np.arange(s) + 0.5) / s
    uu, vv = np.meshgrid(u, u)  # uu along columns (east), vv along rows (south)
    uu, vv = uu.ravel(), vv.ravel()
    out = np.zeros(grid.size)
    lost = 0.0
    idx = np.flatnonzero(persons > 0)
    for chunk in np.array_split(idx, max(1, len(idx) * s * s // 2_000_000 + 1)):
        r, c = np.divmod(chunk, nc)
        # Bilinear position of each part inside the (nearly parallelogram) projected cell.
        x = ((1 - uu) * (1 - vv))[None] * X[r, c][:, None] + (uu * (1 - vv))[None] * X[r, c + 1][:, None] \
            + ((1 - uu) * vv)[None] * X[r + 1, c][:, None] + (uu * vv)[None] * X[r + 1, c + 1][:, None]
        y = ((1 - uu) * (1 - vv))[None] * Y[r, c][:, None] + (uu * (1 - vv))[None] * Y[r, c + 1][:, None] \
            + ((1 - uu) * vv)[None] * Y[r + 1, c][:, None] + (uu * vv)[None] * Y[r + 1, c + 1][:, None]
        share = np.repeat(persons[r, c] / (s * s), s * s)
        gr, gc = grid.cell_of_xy(x.ravel(), y.ravel())
        on = gr >= 0
        out += np.bincount(gr[on] * grid.ncols + gc[on], weights=share[on], minlength=grid.size)
        lost += float(share[~on].sum())
    return out.reshape(grid.shape), lost


def facility_counts(grid: Grid, lon: Sequence[float], lat: Sequence[float]) -> np.ndarray:
    """Number of points in each cell (points off the grid are not counted)."""
    rows, cols = grid.cell_of_lonlat(lon, lat)
    rows, cols = np.atleast_1d(rows), np.atleast_1d(cols)
    on = rows >= 0
    return np.bincount(rows[on] * grid.ncols + cols[on], minlength=grid.size).reshape(grid.shape).astype(float)


def road_length_m(grid: Grid, lines_lonlat: Iterable[Sequence[tuple[float, float]]]) -> np.ndarray:
    """Length (m) of road inside each cell: each segment is cut at the cell edges it crosses."""
    out = np.zeros(grid.shape)
    for coords in lines_lonlat:
        pts = np.asarray(coords, dtype=float).reshape(-1, 2)
        if len(pts) < 2:
            continue
        x, y = grid.to_xy(pts[:, 0], pts[:, 1])
        for x0, y0, x1, y1 in zip(x[:-1], y[:-1], x[1:], y[1:], strict=True):
            _add_segment(grid, out, x0, y0, x1, y1)
    return out


def _add_segment(grid: Grid, out: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> None:
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy)
    if length == 0.0:
        return
    ts = [np.array([0.0, 1.0])]
    if dx != 0.0:  # crossings of vertical cell edges x = west + i·cell
        i0 = math.ceil((min(x0, x1) - grid.west_m) / grid.cell_m)
        i1 = math.floor((max(x0, x1) - grid.west_m) / grid.cell_m)
        ts.append((grid.west_m + np.arange(i0, i1 + 1) * grid.cell_m - x0) / dx)
    if dy != 0.0:  # crossings of horizontal cell edges y = north − j·cell
        j0 = math.ceil((grid.north_m - max(y0, y1)) / grid.cell_m)
        j1 = math.floor((grid.north_m - min(y0, y1)) / grid.cell_m)
        ts.append((grid.north_m - np.arange(j0, j1 + 1) * grid.cell_m - y0) / dy)
    t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
    mid = (t[:-1] + t[1:]) / 2.0
    rows, cols = grid.cell_of_xy(x0 + mid * dx, y0 + mid * dy)
    on = rows >= 0
    np.add.at(out, (rows[on], cols[on]), np.diff(t)[on] * length)


def distance_to_nearest_m(grid: Grid, lon: Sequence[float], lat: Sequence[float]) -> np.ndarray:
    """Distance (m) from each cell centre to the nearest cell holding a point (e.g. a fire station).

    Infinite everywhere when no point lies on the grid.
    """
    rows, cols = grid.cell_of_lonlat(lon, lat)
    rows, cols = np.atleast_1d(rows), np.atleast_1d(cols)
    on = rows >= 0
    if not on.any():
        return np.full(grid.shape, np.inf)
    free = np.ones(grid.shape, dtype=bool)
    free[rows[on], cols[on]] = False
    return ndimage.distance_transform_edt(free, sampling=grid.cell_m)


# --- the exposure of a district ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Exposure:
    """Exposure layers of a grid (raw units, read-only) and where each facility sits."""

    grid: Grid
    layers: Mapping[str, np.ndarray]
    facility_ids: tuple[str, ...] = ()
    facility_kinds: tuple[str, ...] = ()
    facility_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))  # flat index; −1 off grid
    notes: tuple[str, ...] = ()  # what could not be placed, and why

    def __post_init__(self) -> None:
        for name, a in self.layers.items():
            self.grid.check(a, name)
        if not len(self.facility_ids) == len(self.facility_kinds) == len(self.facility_cells):
            raise ExposureError("facility ids, kinds and cells differ in length")

    @property
    def population(self) -> np.ndarray:
        return self.layers[POPULATION]

    def facilities_in(self, cells: np.ndarray) -> tuple[str, ...]:
        """Ids of the facilities whose cell is among ``cells`` (flat indices)."""
        hit = np.isin(self.facility_cells, cells)
        return tuple(self.facility_ids[i] for i in np.flatnonzero(hit))


def build_exposure(grid: Grid, *, facilities: Sequence[_Facility], roads: Iterable[Any] = (),
                   population_raster: PopulationRaster | None = None,
                   params: ExposureParams = ExposureParams()) -> Exposure:
    """All exposure layers of a district: population (raster if given, else town kernels),
    facility counts, road length. ``facilities`` and ``roads`` are ``District.facilities`` /
    ``District.roads`` (anything with the same fields: roads need ``.line`` in lon/lat)."""
    notes: list[str] = []
    layers: dict[str, np.ndarray] = {}
    if population_raster is not None:
        pop, lost = population_from_raster(grid, population_raster)
        if lost > 0:
            notes.append(f"population raster: {lost:.0f} persons lie off the grid")
    else:
        places = [f for f in facilities if f.kind in params.population_kinds]
        for f in places:
            if f.population is None:
                notes.append(f"{f.id}: {f.kind} without population, not in {POPULATION}")
        placed = [f for f in places if f.population is not None]
        x, y = grid.to_xy([f.lon for f in placed], [f.lat for f in placed])
        rows, _ = grid.cell_of_xy(x, y)
        for f, r in zip(placed, np.atleast_1d(rows), strict=True):
            if r < 0:
                notes.append(f"{f.id}: off the grid, its {f.population} persons are not in {POPULATION}")
        on = [f for f, r in zip(placed, np.atleast_1d(rows), strict=True) if r >= 0]
        pop = population_from_points(grid, [f.lon for f in on], [f.lat for f in on],
                                     [float(f.population or 0) for f in on], params=params)
    layers[POPULATION] = pop
    for name, kind in params.facility_layers.items():
        these = [f for f in facilities if f.kind == kind]
        layers[name] = facility_counts(grid, [f.lon for f in these], [f.lat for f in these])
    layers[ROAD_LENGTH] = road_length_m(grid, [list(r.line.coords) for r in roads])
    rows, cols = grid.cell_of_lonlat([f.lon for f in facilities], [f.lat for f in facilities])
    rows, cols = np.atleast_1d(rows), np.atleast_1d(cols)
    cells = np.where(rows >= 0, rows * grid.ncols + cols, -1)
    for f, c in zip(facilities, cells, strict=True):
        if c < 0:
            notes.append(f"{f.id}: {f.kind} off the grid")
    return Exposure(grid, MappingProxyType({k: _readonly(v) for k, v in layers.items()}),
                    tuple(f.id for f in facilities), tuple(f.kind for f in facilities),
                    _readonly(cells.astype(np.intp)), tuple(notes))
