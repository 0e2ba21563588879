"""Hazard layers of the district risk map (0..1 per cell), one per phenomenon. Pure.

The score (``score.py``) combines these by a weighted probabilistic union; here each
layer is built from what the service knows:

* ``rain_3h`` — the 3-hour rain over the red rainstorm threshold (``riskmap.rainstorm_hazard``).
* ``landslide_rain`` — rain-triggered shallow landslides: the terrain's susceptibility
  (slope angle) times how far the interpolated 3-hour rain is over a rainfall
  intensity–duration threshold (Caine 1980 by default). Cell-local, so it follows every
  new rain reading through ``riskmap.update_reading``.
* ``landslide_slope`` — monitored slopes with an open incident (GNSS, crack meters): a disk
  around the slope at the incident's level.
* ``flood`` — open flood incidents' extents: the depth under the forecast water surface as
  a flood hazard rating (Defra/Environment Agency FD2321).
* ``fire`` — the forest-fire danger level of the nearest weather station over forest
  cells (at most ``FIRE_WEATHER_MAX``), and the estimated spread area of an open fire at 1.
* ``chemical`` — open leak incidents' plume zones (hot and warm).

Every layer is 0 where its hazard is absent (never NaN): an unknown hazard must not blank
a cell's score for the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from . import landslide
from .grid import Grid, Window
from .rules import DEFAULT_RAIN_THRESHOLDS, Level
from .score import LAYER_DTYPE, ScoreError

__all__ = [
    "CHEMICAL",
    "FIRE",
    "FLOOD",
    "HOT_ZONE_HAZARD",
    "LANDSLIDE_RAIN",
    "LANDSLIDE_SLOPE",
    "RAIN_3H",
    "STATIC_LAYERS",
    "WARM_ZONE_HAZARD",
    "FireStation",
    "FIRE_WEATHER_MAX",
    "FloodHazardParams",
    "RainLayers",
    "SusceptibilityParams",
    "area_layer",
    "fire_layer",
    "flood_depth_m",
    "flood_hazard",
    "level_hazard",
    "slope_deg",
    "susceptibility",
]

RAIN_3H = "rain_3h"
LANDSLIDE_RAIN = "landslide_rain"
LANDSLIDE_SLOPE = "landslide_slope"
FLOOD = "flood"
FIRE = "fire"
CHEMICAL = "chemical"
STATIC_LAYERS = (FLOOD, LANDSLIDE_SLOPE, FIRE, CHEMICAL)  # rebuilt when incidents or fire weather change

# Plume zones as hazard (project choice): inside the hot zone (IDLH or AEGL-3 reached) the
# hazard is certain; the warm zone (AEGL-2: serious or irreversible effects, or impaired
# ability to escape, for a 60-minute exposure) counts 0.6.
HOT_ZONE_HAZARD = 1.0
WARM_ZONE_HAZARD = 0.6


def level_hazard(level: Level | int) -> float:
    """An incident level as a hazard value: blue 0.25, yellow 0.5, orange 0.75, red 1 (none 0)."""
    return max(0, min(4, int(level))) / 4.0


# --- terrain --------------------------------------------------------------------------------


def slope_deg(elevation_m: np.ndarray, cell_m: float) -> np.ndarray:
    """Slope angle (degrees) of a square-cell elevation grid by central differences (edges one-sided).

    NaN elevations give NaN slopes next to them.
    """
    z = np.asarray(elevation_m, dtype=float)
    if z.ndim != 2 or min(z.shape) < 2:
        raise ScoreError(f"slope needs a 2-D elevation grid of at least 2 x 2 cells, got shape {z.shape}")
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise ScoreError(f"cell_m must be a positive number of metres, got {cell_m}")
    dz_dy, dz_dx = np.gradient(z, cell_m)
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))


@dataclass(frozen=True, slots=True)
class SusceptibilityParams:
    """Slope-angle susceptibility to shallow landslides: 0 below ``flat_deg``, 1 from ``steep_deg``, linear between.

    Defaults: Dai & Lee (2002, "Landslide characteristics and slope instability modeling
    using GIS, Lantau Island, Hong Kong", Geomorphology 42: 213–228) found landslide
    frequency rising with slope angle up to about 35°; below about 10° slopes rarely fail.
    A district with a landslide inventory should fit its own susceptibility (and pass it as
    a layer instead).
    """

    flat_deg: float = 10.0
    steep_deg: float = 35.0

    def __post_init__(self) -> None:
        if not 0 <= self.flat_deg < self.steep_deg <= 90:
            raise ScoreError(f"susceptibility needs 0 <= flat_deg < steep_deg <= 90, got "
                             f"{self.flat_deg}, {self.steep_deg}")


def susceptibility(slope: np.ndarray, params: SusceptibilityParams = SusceptibilityParams(), *,
                   water: np.ndarray | None = None) -> np.ndarray:
    """0..1 per cell from the slope angle; 0 on water and where the slope is unknown."""
    s = np.asarray(slope, dtype=float)
    out = np.clip((s - params.flat_deg) / (params.steep_deg - params.flat_deg), 0.0, 1.0)
    out = np.where(np.isfinite(out), out, 0.0)
    if water is not None:
        out = np.where(np.asarray(water, dtype=bool), 0.0, out)
    return out.astype(LAYER_DTYPE)


# --- rain-driven layers ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RainLayers:
    """The rain-driven layers of a block of cells from its 3-hour rain (mm): ``rain_3h`` and ``landslide_rain``.

    ``landslide_rain`` = susceptibility × min(1, E / red), where E is the exceedance ratio of
    the 3-hour rain over the intensity–duration threshold (``threshold``, Caine 1980 by
    default: 29 mm in 3 h) and ``red`` the ratio at which the slope warnings turn red
    (``landslide.RatioBreaks``). Only the 3-hour window is interpolated for the map; the
    slope warnings (``forecasts.stage_slope``) check every window at each slope.
    """

    susceptibility: np.ndarray  # 0..1, the grid's shape
    threshold: landslide.IntensityDurationThreshold = landslide.CAINE_1980
    breaks: landslide.RatioBreaks = landslide.DEFAULT_RATIO_BREAKS
    duration_h: float = 3.0
    rain_red_mm: float = DEFAULT_RAIN_THRESHOLDS.red_3h_mm  # 100 mm in 3 h (CMA Order No. 16, 2007)

    @property
    def names(self) -> tuple[str, str]:
        return (RAIN_3H, LANDSLIDE_RAIN)

    def __call__(self, rain_mm: np.ndarray, window: Window) -> Mapping[str, np.ndarray]:
        rain = np.asarray(rain_mm, dtype=LAYER_DTYPE)
        known = np.where(np.isfinite(rain), rain, LAYER_DTYPE(0.0))
        need = LAYER_DTYPE(float(self.threshold.accumulation_mm(self.duration_h)) * self.breaks.red)
        s = self.susceptibility[window]
        return MappingProxyType({
            RAIN_3H: np.minimum(rain / LAYER_DTYPE(self.rain_red_mm), LAYER_DTYPE(1.0)),
            LANDSLIDE_RAIN: (s * np.minimum(known / need, LAYER_DTYPE(1.0))).astype(LAYER_DTYPE),
        })


# --- shapes on the grid ---------------------------------------------------------------------


def _cells_in(grid: Grid, geom_lonlat: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the cells whose centre lies in a lon/lat geometry; only its bounds are tested."""
    if geom_lonlat.is_empty:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    w, s, e, n = geom_lonlat.bounds
    lon = np.array([w, e, e, w])
    lat = np.array([s, s, n, n])
    x, y = grid.to_xy(lon, lat)
    c0 = max(0, int(np.floor((np.min(x) - grid.west_m) / grid.cell_m)) - 1)
    c1 = min(grid.ncols, int(np.ceil((np.max(x) - grid.west_m) / grid.cell_m)) + 1)
    r0 = max(0, int(np.floor((grid.north_m - np.max(y)) / grid.cell_m)) - 1)
    r1 = min(grid.nrows, int(np.ceil((grid.north_m - np.min(y)) / grid.cell_m)) + 1)
    if r0 >= r1 or c0 >= c1:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    clon, clat = grid.lonlat_of_cell(rr.ravel(), cc.ravel())
    shapely.prepare(geom_lonlat)
    inside = shapely.contains_xy(geom_lonlat, clon, clat)
    return rr.ravel()[inside], cc.ravel()[inside]


def area_layer(grid: Grid, areas: Iterable[tuple[BaseGeometry, float]]) -> np.ndarray:
    """A layer from (lon/lat area, hazard 0..1) pairs: each cell takes the highest area holding its centre."""
    out = np.zeros(grid.shape, dtype=LAYER_DTYPE)
    for geom, value in areas:
        if not 0.0 <= value <= 1.0:
            raise ScoreError(f"area hazard must lie within [0, 1], got {value}")
        rr, cc = _cells_in(grid, geom)
        if rr.size:
            out[rr, cc] = np.maximum(out[rr, cc], LAYER_DTYPE(value))
    return out


# --- flood ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FloodHazardParams:
    """Flood hazard rating HR = d·(v + 0.5) + DF (Defra/Environment Agency 2006, R&D FD2321/TR1,
    "Flood Risks to People Phase 2"), scaled so that HR 2 ("danger for all", the top class)
    gives 1. No hydraulics here, so v is one assumed floodplain velocity; DF, the debris
    factor, applies from ``debris_depth_m`` (FD2321: 0.5 for pasture, 1 in urban areas, for
    depths over 0.25 m)."""

    velocity_mps: float = 0.5
    debris_factor: float = 0.5
    debris_depth_m: float = 0.25
    danger_for_all: float = 2.0

    def __post_init__(self) -> None:
        if not (self.velocity_mps >= 0 and self.debris_factor >= 0 and self.debris_depth_m >= 0
                and self.danger_for_all > 0):
            raise ScoreError("flood hazard parameters must be non-negative (danger_for_all positive)")


def flood_depth_m(grid: Grid, elevation_m: np.ndarray, extents: Iterable[tuple[BaseGeometry, float]]) -> np.ndarray:
    """Water depth per cell from (extent polygon lon/lat, water surface m in the terrain's datum) pairs.

    A cell inside an extent is under ``surface − ground`` (the deepest of overlapping
    extents); 0 elsewhere and on ground above the surface.
    """
    z = grid.check(np.asarray(elevation_m, dtype=float), "elevation")
    out = np.zeros(grid.shape, dtype=float)
    for geom, surface in extents:
        rr, cc = _cells_in(grid, geom)
        if rr.size:
            d = np.nan_to_num(surface - z[rr, cc], nan=0.0)
            out[rr, cc] = np.maximum(out[rr, cc], np.maximum(d, 0.0))
    return out


def flood_hazard(depth_m: np.ndarray, params: FloodHazardParams = FloodHazardParams(), *,
                 water: np.ndarray | None = None) -> np.ndarray:
    """0..1 per cell from the depth; the river's own channel (``water``) counts 0 (no one lives there)."""
    d = np.asarray(depth_m, dtype=float)
    df = np.where(d > params.debris_depth_m, params.debris_factor, 0.0)
    hr = np.where(d > 0, d * (params.velocity_mps + 0.5) + df, 0.0)
    out = np.clip(hr / params.danger_for_all, 0.0, 1.0)
    if water is not None:
        out = np.where(np.asarray(water, dtype=bool), 0.0, out)
    return out.astype(LAYER_DTYPE)


# --- fire -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FireStation:
    """A weather station's forest-fire danger level (1..5, China's 一级..五级) for the day."""

    station_id: str
    lon: float
    lat: float
    danger: int


# Fire weather says how readily a fire would start and spread, not that one burns: at the
# top danger level (五级) a forest cell counts half as much as a burning one (project choice).
FIRE_WEATHER_MAX = 0.5


def fire_layer(grid: Grid, forest: np.ndarray, stations: Sequence[FireStation], *, reach_m: float = 30_000.0,
               fires: Iterable[BaseGeometry] = (), weather_max: float = FIRE_WEATHER_MAX) -> np.ndarray:
    """Forest cells take the nearest station's danger within ``reach_m``, scaled (level − 1) / 4 × ``weather_max``
    (一级 0 … 五级 ``weather_max``); the estimated spread area of each open fire (``fires``, lon/lat) is 1.

    ``forest`` is each cell's forest fraction (0..1). Cells with no station in reach have
    no fire-weather hazard (0), not an unknown one.
    """
    if not 0.0 <= weather_max <= 1.0:
        raise ScoreError(f"weather_max must lie within [0, 1], got {weather_max}")
    f = np.clip(np.asarray(grid.check(np.asarray(forest, dtype=float), "forest"), dtype=float), 0.0, 1.0)
    out = np.zeros(grid.shape, dtype=float)
    if stations:
        for s in stations:
            if not 1 <= s.danger <= 5:
                raise ScoreError(f"station {s.station_id}: danger level must be 1..5, got {s.danger}")
        x, y = grid.to_xy([s.lon for s in stations], [s.lat for s in stations])
        tree = cKDTree(np.column_stack([x, y]))
        rows = np.flatnonzero(f.any(axis=1))
        if rows.size:
            cx, cy = grid.centres_xy
            sub = f[rows] > 0
            pts = np.column_stack([cx[rows][sub], cy[rows][sub]])
            d, i = tree.query(pts, distance_upper_bound=reach_m)
            ok = np.isfinite(d)
            danger = np.array([(s.danger - 1) / 4.0 * weather_max for s in stations])
            val = np.zeros(len(pts))
            val[ok] = danger[i[ok]]
            block = np.zeros(sub.shape)
            block[sub] = val
            out[rows] = block * f[rows]
    for perimeter in fires:
        rr, cc = _cells_in(grid, perimeter)
        out[rr, cc] = 1.0
    return out.astype(LAYER_DTYPE)
