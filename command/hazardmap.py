"""The district's hazard layers on the risk grid, from what the service knows.

``HazardMap`` holds what comes from the district folder once (ground elevation, water,
forest, slope susceptibility on the risk grid) and turns the open incidents and the
day's fire weather into the static layers of ``command.risk.layers``:

* ``flood``: each open flood incident member's extent (polygon and water surface) → depth →
  hazard rating;
* ``landslide_slope``: each open landslide incident's monitored sensors and slopes → a disk
  (``SLOPE_RADIUS_M``, or the slope's own ``radius_m``) at the incident's level;
* ``fire``: forest cells at the nearest weather station's danger level, and each open
  fire's estimated spread area at 1;
* ``chemical``: each open leak's plume zones.

Each layer comes with the sensors behind it, so a hotspot can say which ones made it.
Input rows are plain (kind, level, lon, lat, detail) records; this module reads no store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from sensors.registry import Registry

from .dispatch.geometry import circle_lonlat
from .district import District
from .risk.grid import Grid
from .risk.hotspots import HotspotParams, SensorRef
from .risk.layers import (
    CHEMICAL,
    FIRE,
    FLOOD,
    HOT_ZONE_HAZARD,
    LANDSLIDE_SLOPE,
    STATIC_LAYERS,
    WARM_ZONE_HAZARD,
    FireStation,
    FloodHazardParams,
    RainLayers,
    SusceptibilityParams,
    area_layer,
    fire_layer,
    flood_depth_m,
    flood_hazard,
    level_hazard,
    slope_deg,
    susceptibility,
)
from .risk.riskmap import RiskModel
from .risk.score import LAYER_DTYPE

__all__ = ["HazardMap", "IncidentLike", "SLOPE_RADIUS_M", "district_risk_model"]

# A monitored slope's hazard area when the district does not state its size: a few hundred
# metres is the scale of the slopes such stations watch (project choice).
SLOPE_RADIUS_M = 300.0
FIRE_STATION_REACH_M = 30_000.0


class IncidentLike(Protocol):
    kind: str
    level: int
    lon: float
    lat: float
    detail: Mapping[str, Any]


def _geom(g: Any) -> BaseGeometry | None:
    try:
        return shape(g) if g else None
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


@dataclass(frozen=True)
class Layers:
    """Static layers and their sensors, ready for ``RiskModel.with_static``."""

    layers: Mapping[str, np.ndarray]
    sensors: Mapping[str, tuple[SensorRef, ...]]
    fire_signature: tuple[tuple[str, int], ...]


class HazardMap:
    """Static hazard layers of one district on one risk grid."""

    def __init__(self, district: District, registry: Registry, grid: Grid, *,
                 susceptibility_params: SusceptibilityParams = SusceptibilityParams(),
                 flood_params: FloodHazardParams = FloodHazardParams()) -> None:
        self.grid = grid
        self.registry = registry
        self.elevation_m = grid.resample(district.terrain)
        self.water = grid.mask_inside(district.water) if not district.water.is_empty \
            else np.zeros(grid.shape, dtype=bool)
        self.forest = (grid.mask_inside(district.forest) if not district.forest.is_empty
                       else np.zeros(grid.shape, dtype=bool)).astype(float)
        self.susceptibility = susceptibility(slope_deg(self.elevation_m, grid.cell_m), susceptibility_params,
                                             water=self.water)
        self.flood_params = flood_params
        self.slopes = {f.id: f for f in district.facilities if f.kind == "landslide_slope"}

    def rain_layers(self) -> RainLayers:
        return RainLayers(self.susceptibility)

    def _ref(self, sensor_id: str, radius_m: float) -> SensorRef | None:
        spec = self.registry.get(sensor_id)
        if spec is not None:
            return SensorRef(sensor_id, spec.lon, spec.lat, radius_m)
        slope = self.slopes.get(sensor_id)
        return SensorRef(sensor_id, slope.lon, slope.lat, radius_m) if slope is not None else None

    def build(self, incidents: Iterable[IncidentLike], fire_stations: Sequence[FireStation]) -> Layers:
        """The static layers from the open incidents and the stations' fire danger of the day."""
        floods: list[tuple[BaseGeometry, float]] = []
        slopes: list[tuple[BaseGeometry, float]] = []
        fires: list[BaseGeometry] = []
        plumes: list[tuple[BaseGeometry, float]] = []
        refs: dict[str, list[SensorRef]] = {FLOOD: [], LANDSLIDE_SLOPE: [], FIRE: [], CHEMICAL: []}
        for row in incidents:
            members = (row.detail.get("members") or {})
            if row.kind == "flood":
                for key, m in members.items():
                    extent = (m.get("model") or {}).get("extent") or {}
                    geom = _geom(extent.get("geometry"))
                    surface = extent.get("surface_m")
                    if geom is not None and isinstance(surface, (int, float)):
                        floods.append((geom, float(surface)))
                        ref = self._ref(m.get("sensor_id", key), float(extent.get("reach_km", 20.0)) * 1000.0)
                        if ref:
                            refs[FLOOD].append(ref)
            elif row.kind == "landslide":
                value = level_hazard(row.level)
                for key, m in members.items():
                    sid = m.get("sensor_id", key)
                    ref = self._ref(sid, SLOPE_RADIUS_M)
                    if ref is None:
                        continue
                    radius = SLOPE_RADIUS_M
                    spec = self.registry.get(sid)
                    if spec is not None and isinstance(spec.properties.get("radius_m"), (int, float)):
                        radius = float(spec.properties["radius_m"])
                    slopes.append((circle_lonlat(ref.lon, ref.lat, radius, epsg=self.grid.epsg), value))
                    refs[LANDSLIDE_SLOPE].append(SensorRef(ref.sensor_id, ref.lon, ref.lat, radius))
            elif row.kind == "fire":
                geom = None
                for m in members.values():
                    spread = (m.get("model") or {}).get("spread") or {}
                    geom = _geom(spread.get("perimeter")) or geom
                    ref = self._ref(m.get("sensor_id", ""), 2_000.0)
                    if ref:
                        refs[FIRE].append(ref)
                fires.append(geom if geom is not None else circle_lonlat(row.lon, row.lat, 200.0, epsg=self.grid.epsg))
            elif row.kind == "chemical_leak":
                for key, m in members.items():
                    plume = (m.get("model") or {}).get("plume") or {}
                    warm, hot = _geom(plume.get("warm_zone")), _geom(plume.get("hot_zone"))
                    if warm is not None:
                        plumes.append((warm, WARM_ZONE_HAZARD))
                    if hot is not None:
                        plumes.append((hot, HOT_ZONE_HAZARD))
                    if warm is not None or hot is not None:
                        reach = float(plume.get("downwind_length_m") or 1_000.0)
                        ref = self._ref(m.get("sensor_id", key.split(":")[0]), reach)
                        if ref:
                            refs[CHEMICAL].append(ref)
        depth = flood_depth_m(self.grid, self.elevation_m, floods)
        refs[FIRE] += [SensorRef(s.station_id, s.lon, s.lat, FIRE_STATION_REACH_M) for s in fire_stations]
        layers = {
            FLOOD: flood_hazard(depth, self.flood_params, water=self.water),
            LANDSLIDE_SLOPE: area_layer(self.grid, slopes),
            FIRE: fire_layer(self.grid, self.forest, fire_stations, reach_m=FIRE_STATION_REACH_M, fires=fires),
            CHEMICAL: area_layer(self.grid, plumes),
        }
        unique = {n: tuple({r.sensor_id: r for r in rs}.values()) for n, rs in refs.items()}
        return Layers(layers, unique, tuple(sorted((s.station_id, s.danger) for s in fire_stations)))



def district_risk_model(district: District, registry: Registry, *, cell_m: float,
                        hotspots: HotspotParams = HotspotParams(), **kw: Any) -> tuple[RiskModel, HazardMap] | None:
    """The district's risk model with every hazard layer (the static ones at 0 until ``HazardMap.build``),
    and its hazard map; None without rain gauges (the rain field is the map's base)."""
    gauges = registry.of_kind("rain_gauge")
    if not gauges:
        return None
    model = RiskModel.for_district(district, [(g.sensor_id, g.lon, g.lat) for g in gauges], cell_m=cell_m,
                                   hotspots=hotspots, **kw)
    hazard_map = HazardMap(district, registry, model.grid)
    rain = hazard_map.rain_layers()
    static = {name: np.zeros(model.grid.shape, dtype=LAYER_DTYPE) for name in STATIC_LAYERS}
    return replace(model, hazard_from_rain=rain, rain_layers=rain.names, static_hazards=static), hazard_map
