"""Vehicle tasks an incident calls for, from its kind and geometry. Pure.

An incident is a place and a shape (a flood extent, a plume, a slope, a fire and its wind);
the tasks are what drones and boats should do there, each with the payloads it needs and
the vehicle types that can do it:

* rainstorm: recon over the gauge (look at the ground the gauge cannot see);
* flood: a boat survey of the flooded area (on water only) and a drone search along the
  extent's edge (people cut off at the waterline), both within ``FLOOD_TASK_RADIUS_M`` of
  the gauge (the extent is an upper bound over a 20 km reach: the first sorties look where
  the level was measured); at orange and red, also a thermal search of the flooded ground
  for people cut off; without an extent, recon at the gauge;
* landslide: an area search of the run-out (the ground below the slope down to where it
  flattens, from the terrain) — people and roads buried there;
* fire: recon upwind of the fire (the smoke blows downwind), then overwatch while crews work;
* chemical leak: a loudspeaker broadcast over the warm zone (people to leave or shelter),
  a gas survey across the plume for a drone carrying a gas sensor, recon of the source.

Priority is the incident level (red 4 … blue 1). The pattern each task flies is drawn by
``command.dispatch.patterns``; who flies it by ``command.dispatch.assign``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry

from .geometry import UTM_48N, circle_lonlat, path_length_m, utm_transformers

__all__ = [
    "PAYLOADS",
    "TASK_KINDS",
    "TaskSpec",
    "runout_area",
    "tasks_for_incident",
]

TaskKind = Literal["recon", "area_search", "expanding_square", "sector_search", "route_patrol", "boat_survey",
                   "broadcast", "overwatch", "gas_survey"]
TASK_KINDS: tuple[str, ...] = ("recon", "area_search", "expanding_square", "sector_search", "route_patrol",
                               "boat_survey", "broadcast", "overwatch", "gas_survey")
PAYLOADS = frozenset({"zoom_camera", "thermal_camera", "loudspeaker", "light", "drop_kit", "gas_sensor",
                      "echosounder", "water_sampler"})

# Project choices, in metres: where recon of a fire stands off (upwind, out of the smoke) and
# how far a landslide run-out is searched.
FIRE_STANDOFF_M = 500.0
OVERWATCH_S = 1200.0
RUNOUT_MAX_M = 1500.0
RUNOUT_STEP_M = 20.0
RUNOUT_FLAT_DEG = 5.0  # debris spreads and stops where the ground flattens
RUNOUT_HALF_WIDTH_M = 150.0
FLOOD_TASK_RADIUS_M = 1200.0
FLOOD_SEARCH_FROM_LEVEL = 3  # orange and red floods: search the flooded ground itself for people
FLOOD_SEARCH_RADIUS_M = 500.0  # ... nearest the gauge first: a thermal search covers about 1 km² an hour


@dataclass(frozen=True)
class TaskSpec:
    """One vehicle task of an incident (geometry lon/lat)."""

    key: str  # unique within the incident: "recon", "boat-survey", "edge-search", ...
    kind: str  # one of TASK_KINDS
    incident_id: int
    priority: int  # the incident level, 1 (blue) .. 4 (red)
    point: tuple[float, float]  # target, datum or start
    vehicle_types: frozenset[str]
    needs: frozenset[str] = frozenset()  # payloads, all required
    area: BaseGeometry | None = None  # polygon of an area task
    line: LineString | None = None  # line of a patrol or survey transect
    after: str | None = None  # key of a task that must be done first
    duration_s: float | None = None  # hold time (overwatch, recon loiter)
    reason: str = ""
    reason_zh: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.key!r}: kind {self.kind!r} is not one of {', '.join(TASK_KINDS)}")
        unknown = set(self.needs) - PAYLOADS
        if unknown:
            raise ValueError(f"task {self.key!r}: unknown payload(s) {sorted(unknown)}")
        if not self.vehicle_types or not set(self.vehicle_types) <= {"copter", "boat"}:
            raise ValueError(f"task {self.key!r}: vehicle types must be copter and/or boat")

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key, "kind": self.kind, "incident_id": self.incident_id, "priority": self.priority,
            "point": list(self.point), "vehicle_types": sorted(self.vehicle_types), "needs": sorted(self.needs),
            "after": self.after, "duration_s": self.duration_s, "reason": self.reason, "reason_zh": self.reason_zh,
        }
        if self.area is not None:
            out["area"] = shapely.geometry.mapping(self.area)
        if self.line is not None:
            out["line"] = shapely.geometry.mapping(self.line)
        return out


def _geom(g: Any) -> BaseGeometry | None:
    try:
        out = shape(g) if g else None
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    return out if out is not None and not out.is_empty else None


def _offset(lon: float, lat: float, bearing_deg: float, distance_m: float, epsg: int) -> tuple[float, float]:
    fwd, inv = utm_transformers(epsg)
    x, y = fwd.transform(lon, lat)
    b = math.radians(bearing_deg)
    lon2, lat2 = inv.transform(x + distance_m * math.sin(b), y + distance_m * math.cos(b))
    return float(lon2), float(lat2)


def _land_edge(land: BaseGeometry) -> BaseGeometry:
    """The waterline of flooded land: its polygons' outer rings (islands' rings left out)."""
    rings = [LineString(p.exterior.coords) for p in shapely.get_parts(land) if isinstance(p, Polygon)]
    return shapely.union_all(rings) if rings else LineString()


def _longest_line(geom: BaseGeometry) -> LineString | None:
    """The longest connected line of ``geom`` (its pieces merged where they meet)."""
    if geom.is_empty:
        return None
    lines = [g for g in shapely.get_parts(shapely.line_merge(shapely.union_all(
        [g for g in shapely.get_parts(geom) if isinstance(g, LineString)]))) if isinstance(g, LineString)]
    return max(lines, key=lambda g: g.length) if lines else None


def _largest(geom: BaseGeometry) -> Polygon | None:
    polys = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon)]
    return max(polys, key=lambda p: p.area) if polys else None


def runout_area(lon: float, lat: float, elevation: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                max_m: float = RUNOUT_MAX_M, step_m: float = RUNOUT_STEP_M, flat_deg: float = RUNOUT_FLAT_DEG,
                half_width_m: float = RUNOUT_HALF_WIDTH_M, epsg: int = UTM_48N) -> tuple[Polygon, LineString]:
    """Where a slope's debris would run: steepest descent over the terrain from the slope until the ground
    flattens below ``flat_deg`` (or ``max_m``), buffered by ``half_width_m``; (area, path) in lon/lat.

    The direction at each step is the downhill gradient from four samples ``step_m`` around the
    point. A project choice, not a run-out model: it marks the ground to search, not a hazard zone.
    """
    if not (max_m > 0 and step_m > 0 and half_width_m > 0):
        raise ValueError("run-out lengths must be positive")
    fwd, inv = utm_transformers(epsg)
    x, y = (float(v) for v in fwd.transform(lon, lat))
    path = [(x, y)]
    travelled = 0.0
    while travelled < max_m:
        xs = np.array([x + step_m, x - step_m, x, x])
        ys = np.array([y, y, y + step_m, y - step_m])
        lons, lats = inv.transform(xs, ys)
        z = np.asarray(elevation(np.asarray(lons), np.asarray(lats)), dtype=float)
        if not np.all(np.isfinite(z)):
            break
        gx, gy = (z[0] - z[1]) / (2 * step_m), (z[2] - z[3]) / (2 * step_m)
        grad = math.hypot(gx, gy)
        if math.degrees(math.atan(grad)) < flat_deg:
            break
        x, y = x - step_m * gx / grad, y - step_m * gy / grad
        path.append((x, y))
        travelled += step_m
    line_m = LineString(path) if len(path) > 1 else Point(path[0]).buffer(1.0).exterior
    area_m = line_m.buffer(half_width_m).union(Point(path[0]).buffer(half_width_m))

    def to_ll(c: np.ndarray) -> np.ndarray:
        return np.column_stack(inv.transform(c[:, 0], c[:, 1]))

    area = shapely.transform(area_m, to_ll)
    line = shapely.transform(LineString(path if len(path) > 1 else [path[0], path[0]]), to_ll)
    return area, line  # type: ignore[return-value]


def tasks_for_incident(incident_id: int, kind: str, level: int, lon: float, lat: float,
                       detail: Mapping[str, Any], *, elevation: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
                       = None, water: BaseGeometry | None = None, epsg: int = UTM_48N) -> list[TaskSpec]:
    """The tasks an open incident calls for, from its kind, level, place and the models in its detail."""
    priority = max(1, min(4, int(level)))
    members = detail.get("members") or {}
    models = [m.get("model") or {} for m in members.values()]
    both = frozenset({"copter"})
    recon = TaskSpec("recon", "recon", incident_id, priority, (lon, lat), both, frozenset({"zoom_camera"}),
                     duration_s=60.0, reason="Look at the place the sensors report",
                     reason_zh="查看传感器报警位置")
    if kind == "flood":
        extents = [g for g in (_geom((m.get("extent") or {}).get("geometry")) for m in models) if g is not None]
        if not extents:
            return [recon]
        near = circle_lonlat(lon, lat, FLOOD_TASK_RADIUS_M, epsg=epsg)
        flooded = shapely.union_all(extents).intersection(near)
        land = flooded.difference(water) if water is not None and not water.is_empty else flooded
        out = []
        boat_area = _largest(flooded)
        if boat_area is not None:
            out.append(TaskSpec("boat-survey", "boat_survey", incident_id, priority,
                                boat_area.representative_point().coords[0], frozenset({"boat"}), area=boat_area,
                                reason="Survey the flooded area by boat: depth, people cut off",
                                reason_zh="无人船巡查淹没区：水深、被困人员"))
        people = (_largest(land.intersection(circle_lonlat(lon, lat, FLOOD_SEARCH_RADIUS_M, epsg=epsg)))
                  if level >= FLOOD_SEARCH_FROM_LEVEL else None)
        if people is not None:
            out.append(TaskSpec("flood-search", "area_search", incident_id, priority,
                                people.representative_point().coords[0], both, frozenset({"thermal_camera"}),
                                area=people, reason="Search the flooded ground for people cut off (thermal camera)",
                                reason_zh="热成像搜索淹没区内被困人员"))
        edge = _longest_line(shapely.intersection(_land_edge(land), near.buffer(-1e-6)))
        if edge is not None:
            out.append(TaskSpec("edge-search", "route_patrol", incident_id, priority, edge.coords[0], both,
                                frozenset({"thermal_camera"}), line=edge,
                                reason="Search along the flood's edge for people and vehicles at the waterline",
                                reason_zh="沿淹没边界搜索被困人员与车辆"))
        return out or [recon]
    if kind == "landslide":
        if elevation is None:
            return [recon]
        area, line = runout_area(lon, lat, elevation, epsg=epsg)
        return [TaskSpec("runout-search", "area_search", incident_id, priority, (lon, lat), both,
                         frozenset({"zoom_camera"}), area=area, line=line,
                         reason=f"Search the run-out below the slope ({path_length_m(list(line.coords), epsg=epsg):.0f} m downhill) "
                                f"for people, houses and roads",
                         reason_zh="搜索边坡下方滑坡可能影响范围内的人员、房屋和道路")]
    if kind == "fire":
        spread = next((m.get("spread") for m in models if m.get("spread")), None)
        pos = next((m.get("position") for m in models if m.get("position")), None) or [lon, lat]
        fire_at = (float(pos[0]), float(pos[1]))
        if spread and isinstance(spread.get("downwind_deg"), (int, float)):
            upwind = (float(spread["downwind_deg"]) + 180.0) % 360.0
            stand = _offset(*fire_at, upwind, FIRE_STANDOFF_M, epsg)
            why = f"upwind of the fire ({upwind:.0f}°, {FIRE_STANDOFF_M:.0f} m), out of its smoke"
        else:
            stand, why = fire_at, "over the fire (no wind known)"
        needs = frozenset({"thermal_camera"})
        return [
            TaskSpec("recon", "recon", incident_id, priority, stand, both, needs, duration_s=120.0,
                     reason=f"Recon {why}", reason_zh="在火场上风向侦察", params={"look_at": list(fire_at)}),
            TaskSpec("overwatch", "overwatch", incident_id, priority, stand, both, needs, after="recon",
                     duration_s=OVERWATCH_S, reason="Hold over the fire while crews work",
                     reason_zh="在火场上空持续监视，配合地面扑救", params={"look_at": list(fire_at)}),
        ]
    if kind == "chemical_leak":
        plume = next((m.get("plume") for m in models if m.get("plume")), None)
        out = [replace_reason(recon, "Look at the leak's source", "查看泄漏源")]
        if plume:
            warm = _geom(plume.get("warm_zone"))
            if warm is not None:
                out.append(TaskSpec("broadcast", "broadcast", incident_id, priority,
                                    warm.representative_point().coords[0], both, frozenset({"loudspeaker"}),
                                    area=_largest(warm) or warm,
                                    reason="Broadcast the evacuation order over the plume's warm zone",
                                    reason_zh="在扩散影响区上空广播疏散指令"))
            src = plume.get("source")
            length = plume.get("downwind_length_m")
            wind_from = plume.get("wind_from_deg")
            if src and isinstance(length, (int, float)) and isinstance(wind_from, (int, float)) and length > 0:
                downwind = (float(wind_from) + 180.0) % 360.0
                end = _offset(float(src[0]), float(src[1]), downwind, float(length), epsg)
                axis = LineString([(float(src[0]), float(src[1])), end])
                out.append(TaskSpec("gas-survey", "gas_survey", incident_id, priority, (float(src[0]), float(src[1])),
                                    both, frozenset({"gas_sensor"}), line=axis,
                                    reason=f"Measure the gas across the plume, {length:.0f} m downwind",
                                    reason_zh="沿扩散方向横切测量气体浓度"))
        return out
    return [recon]


def replace_reason(task: TaskSpec, reason: str, reason_zh: str) -> TaskSpec:
    return replace(task, reason=reason, reason_zh=reason_zh)
