"""What each linked department needs to know of an incident's geometry. Pure.

An incident has a place (the point of the sensor or report) and, when a model drew one, a
hazard area: the flood extent, the landslide run-out, the gas plume, the fire's spread. Every
department asks a different question of that area:

* traffic — which roads run through it (to close or divert), which bridges stand in or near it;
* health — which hospitals are near (to receive casualties) and which stand inside (to evacuate);
* fire & rescue — the nearest stations and the team the hazard calls for, where to stage;
* ecology — chemical sites and drinking-water intakes it reaches;
* townships, police — towns and villages inside, and an estimate of the people affected.

``linkage_context`` answers all of them at once in plain, JSON-ready data (lists, dicts, GeoJSON
geometry, distances in whole metres), computed in the district's UTM zone. ``template_context``
flattens it into the few strings a playbook text may use (``TEMPLATE_KEYS``).

Without a hazard area the incident is taken as a circle of ``default_radius_m`` around its point,
and the result says so (``hazard.assumed``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from command.dispatch.geometry import UTM_48N, circle_lonlat, utm_transformers
from command.risk.rules import Level

__all__ = [
    "BRIDGE_NEAR_M",
    "ContextError",
    "ENVIRONMENT_NEAR_M",
    "NEEDS_KEYS",
    "POPULATION_NOTE",
    "POPULATION_NOTE_ZH",
    "RESCUE_TEAMS",
    "STAGING_MARGIN_M",
    "TEMPLATE_KEYS",
    "VULNERABLE_NEAR_M",
    "linkage_context",
    "template_context",
]

# Project choices, in metres (not from a standard): how near counts as "near" for each question.
BRIDGE_NEAR_M = 200.0  # a bridge this close may be cut off or loaded by the hazard: inspect it
VULNERABLE_NEAR_M = 200.0  # schools and nursing homes this close are warned with those inside
COMMAND_POST_MARGIN_M = 500.0  # a forward command post stands at least this far outside the hazard
COMMAND_POST_KINDS = ("shelter", "school", "fire_station", "town")  # places with room, power and a road
ACCESS_STATIONS = 3  # fire stations whose approach to the hazard is worked out
VILLAGE_NEAR_M = 200.0  # villages this close are warned (and must answer: 叫应) with those inside
ENVIRONMENT_NEAR_M = 1000.0  # chemical sites and water intakes within this reach are checked
STAGING_MARGIN_M = 300.0  # ambulances stage at least this far outside the hazard
STAGING_MAX = 3
SHELTERS_MAX = 5
HOSPITALS_IN_SUMMARY = 3

# The rescue team an incident kind calls for: (id, English, Chinese).
RESCUE_TEAMS: Mapping[str, tuple[str, str, str]] = {
    "flood": ("water_rescue", "water rescue team", "水域救援队"),
    "rainstorm": ("water_rescue", "water rescue team", "水域救援队"),
    "fire": ("forest_fire", "forest fire team", "森林灭火队"),
    "chemical_leak": ("hazmat", "hazardous materials team", "危化品处置队"),
    "landslide": ("search_and_rescue", "search and rescue team", "搜救队"),
}
_GENERAL_TEAM = ("general_rescue", "general rescue team", "综合救援队")

# The computed payloads a playbook task may ask for with ``needs``.
NEEDS_KEYS: frozenset[str] = frozenset({"hazard", "roads", "bridges", "hospitals", "vulnerable", "staging",
                                        "rescue", "environment", "evacuation", "townships", "villages",
                                        "command_post"})

# The placeholders a playbook text may use; the playbook loader checks texts against this set.
TEMPLATE_KEYS: frozenset[str] = frozenset({"place", "place_zh", "level", "level_zh", "title", "title_zh",
                                           "roads", "roads_zh", "hospitals", "hospitals_zh", "population",
                                           "townships", "townships_zh"})

POPULATION_NOTE = ("Estimate: each township's population times the share of its area inside the hazard "
                   "(people assumed evenly spread); not a count.")
POPULATION_NOTE_ZH = "估算值：各镇街人口乘以其位于危险区内的面积比例（假定人口均匀分布），并非实际统计。"

_NONE, _NONE_ZH = "none", "无"


class ContextError(ValueError):
    """The incident geometry or a parameter cannot be used; the message names the problem."""


def linkage_context(hazard: Polygon | MultiPolygon | None, *, point: tuple[float, float], kind: str,
                    roads: Iterable[Any], bridges: Iterable[Any], facilities: Iterable[Any],
                    townships: Iterable[Any], utm_epsg: int = UTM_48N, reach_m: float = 15000.0,
                    default_radius_m: float = 500.0) -> dict[str, Any]:
    """Everything the linked departments need from the hazard area, JSON-ready.

    ``hazard`` is a lon/lat (Multi)Polygon, or None for a circle of ``default_radius_m`` around
    ``point`` (lon, lat). ``kind`` is the incident kind (it picks the rescue team). Roads,
    facilities and townships are duck-typed like ``command.district.Road``, ``Facility`` and
    ``Township``; a bridge is a point or a line (``_bridges``). The module docstring says what
    each key answers.

    >>> ctx = linkage_context(None, point=(106.6, 29.7), kind="flood", roads=(), bridges=(),
    ...                       facilities=(), townships=())
    >>> ctx["hazard"]["assumed"], ctx["roads"], ctx["summary"]["roads"]
    (True, [], 'none')
    """
    lon, lat = _point(point)
    if not (math.isfinite(reach_m) and reach_m > 0):
        raise ContextError(f"reach_m must be a positive number of metres, got {reach_m}")
    assumed = hazard is None
    if hazard is None:
        if not (math.isfinite(default_radius_m) and default_radius_m > 0):
            raise ContextError(f"default_radius_m must be a positive number of metres, got {default_radius_m}")
        hazard = circle_lonlat(lon, lat, default_radius_m, epsg=utm_epsg)
    elif not isinstance(hazard, (Polygon, MultiPolygon)):
        raise ContextError(f"hazard must be a Polygon or MultiPolygon in lon/lat, got {hazard.geom_type}")
    elif hazard.is_empty:
        raise ContextError("hazard is an empty polygon")
    elif not hazard.is_valid:
        raise ContextError(f"hazard polygon is invalid: {shapely.is_valid_reason(hazard)}")

    fwd, inv = utm_transformers(utm_epsg)
    to_utm = _transformer(fwd)
    to_lonlat = _transformer(inv)
    hz = to_utm(hazard)
    shapely.prepare(hz)
    edge = hz.boundary
    px, py = fwd.transform(lon, lat)
    here = Point(px, py)

    facilities = tuple(facilities)
    fac_pts = _facility_points(facilities, fwd)
    fac_dist = shapely.distance(hz, fac_pts) if facilities else np.zeros(0)
    fac_edge = shapely.distance(edge, fac_pts) if facilities else np.zeros(0)
    fac_in = shapely.intersects(hz, fac_pts) if facilities else np.zeros(0, dtype=bool)

    def of_kind(*kinds: str) -> list[int]:
        return [i for i, f in enumerate(facilities) if f.kind in kinds]

    road_rows = _roads(roads, hz, to_utm, to_lonlat)
    bridge_rows = _bridges(bridges, hz, fwd)

    hospitals = []
    for i in of_kind("hospital"):
        if fac_dist[i] <= reach_m:
            signed = -fac_edge[i] if fac_in[i] else fac_edge[i]
            hospitals.append((signed, facilities[i].id, _facility(facilities[i], distance_m=fac_edge[i],
                                                                   in_hazard=bool(fac_in[i]))))
    hospitals.sort(key=lambda t: (t[0], t[1]))
    hospital_rows = [row for _, _, row in hospitals]

    vulnerable = [_facility(facilities[i], distance_m=fac_dist[i], in_hazard=bool(fac_in[i]))
                  for i in of_kind("school", "nursing_home") if fac_dist[i] <= VULNERABLE_NEAR_M]
    vulnerable.sort(key=lambda r: (r["distance_m"], r["id"]))

    def nearest_outside(kinds: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        picked = sorted((fac_dist[i], facilities[i].id, i) for i in of_kind(*kinds)
                        if STAGING_MARGIN_M <= fac_dist[i] <= reach_m)
        return [_facility(facilities[i], distance_m=d) for d, _, i in picked[:limit]]

    staging = nearest_outside(("fire_station", "hospital", "ambulance_station"), STAGING_MAX)

    team_id, team, team_zh = RESCUE_TEAMS.get(kind, _GENERAL_TEAM)
    stations = []
    for i in of_kind("fire_station"):
        d = float(shapely.distance(here, fac_pts[i]))
        stations.append((d, facilities[i].id, _facility(facilities[i], distance_m=d, in_hazard=bool(fac_in[i]))))
    stations.sort(key=lambda t: (t[0], t[1]))
    rescue = {"team": team_id, "team_name": team, "team_name_zh": team_zh,
              "stations": [row for _, _, row in stations],
              "access": _access([facilities[i] for _, _, i in sorted(
                  (d, facilities[i].id, i) for i in of_kind("fire_station")
                  for d in (float(shapely.distance(here, fac_pts[i])),))][:ACCESS_STATIONS],
                  roads, hz, fwd, to_utm, to_lonlat)}
    post = sorted((float(shapely.distance(here, fac_pts[i])), facilities[i].id, i) for i in of_kind(*COMMAND_POST_KINDS)
                  if fac_dist[i] >= COMMAND_POST_MARGIN_M)
    command_post = ({**_facility(facilities[post[0][2]], distance_m=post[0][0]),
                     "hazard_distance_m": round(float(fac_dist[post[0][2]])),
                     "note": f"suggested: the nearest {', '.join(COMMAND_POST_KINDS)} at least "
                             f"{COMMAND_POST_MARGIN_M:.0f} m outside the hazard; the commander decides",
                     "note_zh": f"建议：危险区外至少 {COMMAND_POST_MARGIN_M:.0f} 米、距事发点最近的避难场所/学校/消防站/镇街；"
                                "由指挥长确定"} if post else None)

    environment = [_facility(facilities[i], distance_m=fac_dist[i], in_hazard=bool(fac_in[i]))
                   for i in of_kind("chemical_site", "water_intake") if fac_dist[i] <= ENVIRONMENT_NEAR_M]
    environment.sort(key=lambda r: (r["distance_m"], r["id"]))

    villages = [_facility(facilities[i], distance_m=fac_dist[i], in_hazard=bool(fac_in[i]))
                for i in of_kind("village") if fac_dist[i] <= VILLAGE_NEAR_M]
    villages.sort(key=lambda r: (r["distance_m"], r["id"]))

    places = [_facility(facilities[i], in_hazard=True) for i in of_kind("town", "village") if fac_in[i]]
    places.sort(key=lambda r: (-(r["population"] or 0), r["id"]))
    township_rows, township_ids = _townships(townships, hz, to_utm)
    places_population = sum(r["population"] or 0 for r in places)
    estimate = sum(r["population_estimate"] for r in township_rows)
    evacuation = {
        "places": places,
        "places_population": places_population,
        "townships": township_rows,
        "population_estimate": estimate,
        "note": POPULATION_NOTE,
        "note_zh": POPULATION_NOTE_ZH,
        "shelters": nearest_outside(("shelter",), SHELTERS_MAX),
    }

    receiving = [r for r in hospital_rows if not r["in_hazard"]][:HOSPITALS_IN_SUMMARY]
    summary = {
        "roads": ", ".join(r["name"] for r in road_rows) or _NONE,
        "roads_zh": "、".join(r["name_zh"] or r["name"] for r in road_rows) or _NONE_ZH,
        "hospitals": ", ".join(r["name"] for r in receiving) or _NONE,
        "hospitals_zh": "、".join(r["name_zh"] or r["name"] for r in receiving) or _NONE_ZH,
        # The township estimate covers everyone; the places' figures only the named towns and villages.
        "population": estimate if township_rows else places_population,
        "population_source": "townships_area_weighted" if township_rows else "places",
        "townships": ", ".join(t["name"] for t in township_ids) or _NONE,
        "townships_zh": "、".join(t["name_zh"] or t["name"] for t in township_ids) or _NONE_ZH,
    }
    hazard_row: dict[str, Any] = {"geometry": _geojson(hazard), "area_m2": round(hz.area), "assumed": assumed}
    if assumed:
        hazard_row["radius_m"] = round(default_radius_m)
    return {
        "hazard": hazard_row,
        "roads": road_rows,
        "bridges": bridge_rows,
        "hospitals": hospital_rows,
        "vulnerable": vulnerable,
        "staging": staging,
        "rescue": rescue,
        "environment": environment,
        "evacuation": evacuation,
        "townships": township_ids,
        "villages": villages,
        "command_post": command_post,
        "summary": summary,
    }


def template_context(ctx: Mapping[str, Any], *, place: str, place_zh: str, level: Level | int | str,
                     title: str, title_zh: str) -> dict[str, Any]:
    """The flat values playbook texts may use (exactly ``TEMPLATE_KEYS``), from a ``linkage_context``.

    >>> ctx = linkage_context(None, point=(106.6, 29.7), kind="flood", roads=(), bridges=(),
    ...                       facilities=(), townships=())
    >>> template_context(ctx, place="Longxing", place_zh="龙兴", level="orange", title="Flood",
    ...                  title_zh="洪水")["level_zh"]
    '橙色'
    """
    lv = _level(level)
    s = ctx["summary"]
    out = {"place": place, "place_zh": place_zh or place, "level": lv.colour, "level_zh": lv.colour_zh,
           "title": title, "title_zh": title_zh or title, "roads": s["roads"], "roads_zh": s["roads_zh"],
           "hospitals": s["hospitals"], "hospitals_zh": s["hospitals_zh"], "population": int(s["population"]),
           "townships": s["townships"], "townships_zh": s["townships_zh"]}
    return out  # exactly TEMPLATE_KEYS, the set the playbook loader checks texts against


# --- pieces ---------------------------------------------------------------------------------


def _level(level: Level | int | str) -> Level:
    try:
        return Level.of(level)
    except ValueError as err:
        raise ContextError(str(err)) from None


def _point(point: tuple[float, float]) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in point)
    except (TypeError, ValueError):
        raise ContextError(f"point must be (lon, lat), got {point!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ContextError(f"point {point!r} is not WGS84 (lon, lat)")
    return lon, lat


def _transformer(tr: Any) -> Callable[[BaseGeometry], BaseGeometry]:
    def apply(geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    return apply


def _facility_points(facilities: Sequence[Any], fwd: Any) -> np.ndarray:
    if not facilities:
        return np.empty(0, dtype=object)
    x, y = fwd.transform(np.array([f.lon for f in facilities], dtype=float),
                         np.array([f.lat for f in facilities], dtype=float))
    return shapely.points(np.asarray(x), np.asarray(y))


def _facility(f: Any, *, distance_m: float | None = None, in_hazard: bool | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": f.id, "kind": f.kind, "name": f.name, "name_zh": f.name_zh,
                           "lon": float(f.lon), "lat": float(f.lat), "population": f.population,
                           "capacity": getattr(f, "capacity", None)}
    if distance_m is not None:
        row["distance_m"] = round(float(distance_m))
    if in_hazard is not None:
        row["in_hazard"] = in_hazard
    return row


def _roads(roads: Iterable[Any], hz: BaseGeometry, to_utm: Callable[[BaseGeometry], BaseGeometry],
           to_lonlat: Callable[[BaseGeometry], BaseGeometry]) -> list[dict[str, Any]]:
    """The roads that cross the hazard, longest stretch inside first.

    A road crosses the hazard when a stretch of it of positive length runs through the hazard's
    interior (DE-9IM interior ∩ interior of dimension 1): a road that enters, one that lies wholly
    inside, not one that only touches the edge at a point or runs along the edge.
    """
    rows = []
    for road in roads:
        line = to_utm(road.line)
        if not shapely.relate_pattern(line, hz, "1********"):
            continue
        inside = _lines(shapely.intersection(line, hz))
        rows.append({"id": road.id, "name": road.name, "name_zh": road.name_zh, "class": road.road_class,
                     "length_inside_m": round(inside.length), "geometry": _geojson(to_lonlat(inside))})
    rows.sort(key=lambda r: (-r["length_inside_m"], r["id"]))
    return rows


def _access(stations: Sequence[Any], roads: Iterable[Any], hz: BaseGeometry, fwd: Any,
            to_utm: Callable[[BaseGeometry], BaseGeometry],
            to_lonlat: Callable[[BaseGeometry], BaseGeometry]) -> list[dict[str, Any]]:
    """How each station's crews reach the hazard: of the roads that reach its edge, the one whose entry
    point is nearest the station (straight-line distance from the station to that entry, not a route
    along the roads: the district's road layer is a few main roads, not a network)."""
    edge = hz.boundary
    entries = []  # (road, entry point in metres)
    for road in roads:
        line = to_utm(road.line)
        meet = shapely.intersection(line, edge)
        for p in shapely.get_parts(meet):
            if not p.is_empty:
                entries.append((road, p if p.geom_type == "Point" else shapely.centroid(p)))
    out = []
    for st in stations:
        x, y = fwd.transform(st.lon, st.lat)
        here = Point(x, y)
        if not entries:
            out.append({"station": st.id, "name": st.name, "name_zh": st.name_zh, "road": None,
                        "note": "no main road reaches the hazard: approach by local roads",
                        "note_zh": "无主干道通达危险区：经地方道路前往"})
            continue
        road, p = min(entries, key=lambda e: (shapely.distance(here, e[1]), e[0].id))
        lon, lat = to_lonlat(p).coords[0]
        out.append({"station": st.id, "name": st.name, "name_zh": st.name_zh, "road": road.id,
                    "road_name": road.name, "road_name_zh": road.name_zh,
                    "entry": [round(lon, 6), round(lat, 6)], "distance_m": round(float(shapely.distance(here, p)))})
    return out


def _lines(geom: BaseGeometry) -> LineString | MultiLineString:
    """The linear part of an intersection (points where the road only touches are dropped)."""
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, (LineString, MultiLineString))]
    merged = shapely.line_merge(shapely.union_all(parts)) if parts else LineString()
    return merged


def _bridges(bridges: Iterable[Any], hz: BaseGeometry, fwd: Any) -> list[dict[str, Any]]:
    """Bridges in the hazard or within ``BRIDGE_NEAR_M`` of it, nearest first.

    A bridge is a point (``lon``, ``lat``) or a line across the water (``line``); its road and
    river are ``road_id``/``river_id`` or ``road``/``river``; heights are passed on when given
    (``deck_amsl_m``, ``clearance_m``, ``underside_amsl_m``).
    """
    to_utm = _transformer(fwd)
    rows = []
    for b in bridges:
        line = getattr(b, "line", None)
        if line is not None:
            geom = to_utm(line)
            lon, lat = line.interpolate(0.5, normalized=True).coords[0]
        else:
            lon, lat = float(b.lon), float(b.lat)
            geom = Point(*fwd.transform(lon, lat))
        d = float(shapely.distance(hz, geom))
        if d <= BRIDGE_NEAR_M:
            rows.append({"id": b.id, "name": b.name, "name_zh": b.name_zh,
                         "road_id": _first(b, "road_id", "road"), "river_id": _first(b, "river_id", "river"),
                         "lon": float(lon), "lat": float(lat), "distance_m": round(d),
                         "in_hazard": bool(shapely.intersects(hz, geom)),
                         "deck_amsl_m": getattr(b, "deck_amsl_m", None), "clearance_m": getattr(b, "clearance_m", None),
                         "underside_amsl_m": getattr(b, "underside_amsl_m", None)})
    rows.sort(key=lambda r: (r["distance_m"], r["id"]))
    return rows


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _townships(townships: Iterable[Any], hz: BaseGeometry,
               to_utm: Callable[[BaseGeometry], BaseGeometry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(evacuation rows with share and estimate, recipient rows) of the townships the hazard covers.

    A township is touched when the hazard covers a positive area of it (sharing only an edge or
    a corner does not count).
    """
    rows, ids = [], []
    for t in townships:
        area = to_utm(t.area)
        total = area.area
        inside = shapely.intersection(area, hz).area if total > 0 else 0.0
        if inside <= 0.0:
            continue
        share = min(1.0, inside / total)
        population = t.population
        rows.append({"id": t.id, "name": t.name, "name_zh": t.name_zh, "population": population,
                     "share": round(share, 4), "area_inside_m2": round(inside),
                     "population_estimate": round((population or 0) * share)})
        ids.append({"id": t.id, "name": t.name, "name_zh": t.name_zh})
    order = sorted(range(len(rows)), key=lambda k: rows[k]["id"])
    return [rows[k] for k in order], [ids[k] for k in order]


def _geojson(geom: BaseGeometry) -> dict[str, Any]:
    """GeoJSON geometry with plain lists and coordinates rounded to 1e-7° (about a centimetre)."""
    return _plain(mapping(geom))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 7)
    return value
