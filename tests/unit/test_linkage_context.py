"""What each department needs from the hazard geometry (command.linkage.context).

The synthetic cases are drawn in UTM metres around a point in Yubei and handed over in lon/lat,
as the service does; the last test runs on the generated synthetic district.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, shape

from command.district import District, Facility, Road
from command.dispatch.geometry import utm_transformers
from command.linkage.context import (
    NEEDS_KEYS,
    POPULATION_NOTE,
    RESCUE_TEAMS,
    TEMPLATE_KEYS,
    ContextError,
    linkage_context,
    template_context,
)

FWD, INV = utm_transformers(32648)
X0, Y0 = FWD.transform(106.70, 29.80)  # origin of the test drawings (UTM 48N metres)
HAZARD_UTM = box(X0, Y0, X0 + 1000.0, Y0 + 1000.0)  # a 1 km square


def ll(geom):
    """A drawing in metres relative to the origin, as lon/lat."""
    moved = affinity.translate(geom, X0, Y0) if not geom.is_empty else geom
    return shapely.transform(moved, lambda c: np.column_stack(INV.transform(c[:, 0], c[:, 1])))


def utm(geom):
    return shapely.transform(geom, lambda c: np.column_stack(FWD.transform(c[:, 0], c[:, 1])))


def lonlat(x, y):
    """Lon/lat of a point drawn in metres relative to the origin."""
    return INV.transform(X0 + x, Y0 + y)


SQUARE = ll(box(0, 0, 1000, 1000))


def fac(fid, kind, x, y, population=None):
    lon, lat = lonlat(x, y)
    return Facility(fid, kind, fid, fid + "_zh", lon, lat, population)


@dataclass(frozen=True)
class Bridge:
    id: str
    name: str
    name_zh: str
    road_id: str
    river_id: str
    lon: float
    lat: float
    deck_amsl_m: float
    clearance_m: float


@dataclass(frozen=True)
class Township:
    id: str
    name: str
    name_zh: str
    population: int
    area: Polygon


def bridge(bid, x, y, clearance):
    lon, lat = lonlat(x, y)
    return Bridge(bid, bid, bid + "桥", "r", "yulin", lon, lat, 200.0, clearance)


def road(rid, coords, cls="arterial"):
    return Road(rid, rid.title(), rid + "路", cls, ll(LineString(coords)))


ROADS = (
    road("crossing", [(-500, 400), (1500, 400)]),  # 1000 m inside
    road("corner", [(1000, 1000), (1600, 1600)]),  # touches the square at its corner only
    road("outside", [(-500, -300), (1500, -300)]),
    road("edge", [(0, 1000), (1000, 1000)]),  # runs along the top edge, never enters
    road("inner", [(200, 200), (200, 700)], "expressway"),  # wholly inside: 500 m
    road("spur", [(500, 600), (1800, 600)]),  # from inside outward: 500 m inside
)
FACILITIES = (
    fac("hosp-in", "hospital", 500, 800),  # 200 m from the edge, inside
    fac("hosp-near", "hospital", 1500, 500),  # 500 m outside
    fac("hosp-far", "hospital", 500, -3000),  # 3000 m outside
    fac("hosp-beyond", "hospital", 500, 21000),  # beyond the 15 km reach
    fac("fire-close", "fire_station", -100, 500),  # 100 m outside: too close to stage
    fac("fire-far", "fire_station", 3000, 500),  # 2000 m outside
    fac("amb-1", "ambulance_station", 500, 2000),  # 1000 m outside
    fac("school-in", "school", 300, 300, 900),
    fac("care-near", "nursing_home", 1150, 500, 120),  # 150 m outside
    fac("school-out", "school", 500, -300),  # 300 m outside: not warned
    fac("chem-near", "chemical_site", 500, 1800),  # 800 m outside
    fac("intake-in", "water_intake", 900, 100),
    fac("intake-far", "water_intake", -1200, 500),  # 1200 m outside
    fac("village-in", "village", 700, 300, 1200),
    fac("village-nopop", "village", 600, 200),
    fac("town-out", "town", 4000, 4000, 50000),
    fac("shelter-1", "shelter", 2000, 500),  # 1000 m outside
)
TOWNSHIPS = (
    Township("a", "A Town", "甲镇", 90000, ll(box(-1000, -1000, 500, 2000))),  # 1/9 of it inside
    Township("b", "B Street", "乙街道", 30000, ll(box(500, -1000, 3000, 2000))),  # 1/15 inside
    Township("c", "C Town", "丙镇", 10000, ll(box(1000, 0, 2000, 1000))),  # shares an edge only
)
BRIDGES = (bridge("br-in", 500, 500, 4.5), bridge("br-near", 1150, 500, 6.0), bridge("br-far", 1250, 500, 7.0))
POINT = lonlat(500, 500)


@pytest.fixture(scope="module")
def ctx():
    return linkage_context(SQUARE, point=POINT, kind="flood", roads=ROADS, bridges=BRIDGES,
                           facilities=FACILITIES, townships=TOWNSHIPS)


def test_the_roads_are_exactly_those_crossing_the_hazard_with_their_length_inside(ctx):
    assert [r["id"] for r in ctx["roads"]] == ["crossing", "inner", "spur"]  # longest stretch inside first
    lengths = {r["id"]: r["length_inside_m"] for r in ctx["roads"]}
    assert lengths["crossing"] == pytest.approx(1000, abs=1)
    assert lengths["inner"] == pytest.approx(500, abs=1)
    assert lengths["spur"] == pytest.approx(500, abs=1)
    crossing = ctx["roads"][0]
    assert (crossing["name"], crossing["name_zh"], crossing["class"]) == ("Crossing", "crossing路", "arterial")
    clipped = shape(crossing["geometry"])
    assert crossing["geometry"]["type"] == "LineString"
    assert utm(clipped).length == pytest.approx(1000, abs=1)
    assert utm(clipped).buffer(0.5).within(HAZARD_UTM.buffer(1.0))  # the clipped part lies in the hazard
    json.dumps(ctx)  # JSON-ready throughout


def test_a_road_touching_the_hazard_only_at_a_point_or_along_its_edge_does_not_cross():
    for rid in ("corner", "edge"):
        only = [r for r in ROADS if r.id == rid]
        got = linkage_context(SQUARE, point=POINT, kind="flood", roads=only, bridges=(), facilities=(), townships=())
        assert got["roads"] == [], rid
        assert utm(only[0].line).intersects(utm(SQUARE))  # it does touch


def test_bridges_in_or_within_200_m_of_the_hazard(ctx):
    assert [(b["id"], b["distance_m"], b["in_hazard"], b["clearance_m"]) for b in ctx["bridges"]] == [
        ("br-in", 0, True, 4.5), ("br-near", 150, False, 6.0)]
    assert ctx["bridges"][0]["road_id"] == "r" and ctx["bridges"][0]["river_id"] == "yulin"


@dataclass(frozen=True)
class LineBridge:
    id: str
    name: str
    name_zh: str
    river: str
    line: LineString
    underside_amsl_m: float
    road: str | None = None


def test_a_bridge_drawn_as_a_line_across_the_water_is_measured_from_its_nearest_point():
    across = LineBridge("br-line", "Line", "线桥", "yulin", ll(LineString([(1180, 300), (1180, 700)])), 190.0, "g50")
    away = LineBridge("br-away", "Away", "远桥", "yulin", ll(LineString([(1300, 300), (1300, 700)])), 190.0)
    got = linkage_context(SQUARE, point=POINT, kind="flood", roads=(), bridges=[away, across], facilities=(),
                          townships=())
    assert [(b["id"], b["distance_m"], b["road_id"], b["river_id"], b["underside_amsl_m"], b["clearance_m"])
            for b in got["bridges"]] == [("br-line", 180, "g50", "yulin", 190.0, None)]
    x, y = FWD.transform(got["bridges"][0]["lon"], got["bridges"][0]["lat"])
    assert (x - X0, y - Y0) == (pytest.approx(1180, abs=0.5), pytest.approx(500, abs=0.5))  # its middle


def test_hospitals_within_reach_sorted_inside_first_then_nearest(ctx):
    rows = [(h["id"], h["distance_m"], h["in_hazard"]) for h in ctx["hospitals"]]
    assert rows == [("hosp-in", 200, True), ("hosp-near", 500, False), ("hosp-far", 3000, False)]


def test_vulnerable_sites_inside_or_within_200_m(ctx):
    rows = [(v["id"], v["kind"], v["population"], v["in_hazard"], v["distance_m"]) for v in ctx["vulnerable"]]
    assert rows == [("school-in", "school", 900, True, 0), ("care-near", "nursing_home", 120, False, 150)]


def test_staging_points_are_the_three_nearest_at_least_300_m_outside(ctx):
    assert [(s["id"], s["distance_m"]) for s in ctx["staging"]] == [
        ("hosp-near", 500), ("amb-1", 1000), ("fire-far", 2000)]
    hazard = utm(SQUARE)
    for s in ctx["staging"]:
        x, y = FWD.transform(s["lon"], s["lat"])
        assert hazard.distance(Point(x, y)) >= 300.0


def test_rescue_stations_by_distance_to_the_point_with_the_team_for_the_kind(ctx):
    assert ctx["rescue"]["team"] == "water_rescue"
    assert [(s["id"], s["distance_m"]) for s in ctx["rescue"]["stations"]] == [("fire-close", 600), ("fire-far", 2500)]
    teams = {}
    for kind in ("flood", "rainstorm", "fire", "chemical_leak", "landslide", "default"):
        teams[kind] = linkage_context(SQUARE, point=POINT, kind=kind, roads=(), bridges=(), facilities=(),
                                      townships=())["rescue"]["team"]
    assert teams == {"flood": "water_rescue", "rainstorm": "water_rescue", "fire": "forest_fire",
                     "chemical_leak": "hazmat", "landslide": "search_and_rescue", "default": "general_rescue"}
    assert set(RESCUE_TEAMS) == {"flood", "rainstorm", "fire", "chemical_leak", "landslide"}


def test_each_station_approaches_by_the_road_whose_entry_is_nearest_and_a_command_post_is_suggested(ctx):
    access = {a["station"]: a for a in ctx["rescue"]["access"]}
    # fire-close (-100, 500) enters by the crossing road at the west edge (0, 400): √(100² + 100²) m
    assert access["fire-close"]["road"] == "crossing" and access["fire-close"]["distance_m"] == 141
    assert access["fire-close"]["entry"] == pytest.approx(list(lonlat(0, 400)), abs=1e-5)
    # fire-far (3000, 500): the crossing road's (1000, 400) and the spur's (1000, 600), equally near
    assert access["fire-far"]["road"] in ("crossing", "spur") and access["fire-far"]["distance_m"] == 2002
    none = linkage_context(SQUARE, point=POINT, kind="fire", roads=(), bridges=(), facilities=FACILITIES,
                           townships=())["rescue"]["access"]
    assert {a["road"] for a in none} == {None} and "local roads" in none[0]["note"]
    # the nearest shelter, school, fire station or town at least 500 m outside: shelter-1, 1 km out
    post = ctx["command_post"]
    assert (post["id"], post["distance_m"], post["hazard_distance_m"]) == ("shelter-1", 1500, 1000)
    assert "commander decides" in post["note"]
    bare = linkage_context(SQUARE, point=POINT, kind="fire", roads=(), bridges=(), facilities=(), townships=())
    assert bare["command_post"] is None and bare["rescue"]["access"] == []


def test_environment_sites_inside_or_within_1_km(ctx):
    assert [(e["id"], e["distance_m"], e["in_hazard"]) for e in ctx["environment"]] == [
        ("intake-in", 0, True), ("chem-near", 800, False)]


def test_evacuation_places_and_area_weighted_township_estimate(ctx):
    ev = ctx["evacuation"]
    assert [(p["id"], p["population"]) for p in ev["places"]] == [("village-in", 1200), ("village-nopop", None)]
    assert ev["places_population"] == 1200
    rows = {t["id"]: t for t in ev["townships"]}
    assert set(rows) == {"a", "b"}  # c only shares an edge
    assert rows["a"]["share"] == pytest.approx(1 / 9, abs=1e-4)
    assert rows["b"]["share"] == pytest.approx(1 / 15, abs=1e-4)
    assert rows["a"]["population_estimate"] == pytest.approx(10000, abs=2)
    assert rows["b"]["population_estimate"] == pytest.approx(2000, abs=2)
    assert ev["population_estimate"] == rows["a"]["population_estimate"] + rows["b"]["population_estimate"]
    assert ev["note"] == POPULATION_NOTE and "estimate" in ev["note"].lower() and "估算" in ev["note_zh"]
    assert [(s["id"], s["distance_m"]) for s in ev["shelters"]] == [("shelter-1", 1000)]
    assert ctx["townships"] == [{"id": "a", "name": "A Town", "name_zh": "甲镇"},
                                {"id": "b", "name": "B Street", "name_zh": "乙街道"}]


def test_summary_and_template_context(ctx):
    s = ctx["summary"]
    assert s["roads"] == "Crossing, Inner, Spur" and s["roads_zh"] == "crossing路、inner路、spur路"
    assert s["hospitals"] == "hosp-near, hosp-far"  # receiving hospitals: outside the hazard, nearest first
    assert s["population"] == ctx["evacuation"]["population_estimate"]
    assert s["population_source"] == "townships_area_weighted"
    flat = template_context(ctx, place="Longxing", place_zh="龙兴", level=3, title="Flood", title_zh="洪水")
    assert set(flat) == TEMPLATE_KEYS
    assert flat == {"place": "Longxing", "place_zh": "龙兴", "level": "orange", "level_zh": "橙色",
                    "title": "Flood", "title_zh": "洪水", "roads": "Crossing, Inner, Spur",
                    "roads_zh": "crossing路、inner路、spur路", "hospitals": "hosp-near, hosp-far",
                    "hospitals_zh": "hosp-near_zh、hosp-far_zh", "population": s["population"],
                    "townships": "A Town, B Street", "townships_zh": "甲镇、乙街道"}
    assert set(NEEDS_KEYS) <= set(ctx)  # every key a playbook may ask for is computed
    with pytest.raises(ContextError, match="unknown level 'purple'"):
        template_context(ctx, place="x", place_zh="x", level="purple", title="t", title_zh="t")


def test_without_townships_the_population_is_that_of_the_places_inside():
    got = linkage_context(SQUARE, point=POINT, kind="flood", roads=(), bridges=(), facilities=FACILITIES,
                          townships=())
    assert got["summary"]["population"] == 1200 and got["summary"]["population_source"] == "places"
    assert got["summary"]["roads"] == "none" and got["summary"]["roads_zh"] == "无"


def test_a_multipolygon_hazard_counts_both_parts():
    west, east = box(0, 0, 1000, 1000), box(3000, 0, 4000, 1000)
    hazard = ll(MultiPolygon([west, east]))
    through = road("through", [(-500, 500), (4500, 500)])
    got = linkage_context(hazard, point=POINT, kind="flood", roads=[through], bridges=(),
                          facilities=[fac("h-gap", "hospital", 2000, 500)],
                          townships=[Township("t", "T", "T", 40000, ll(box(-1000, -1000, 5000, 2000)))])
    assert [r["id"] for r in got["roads"]] == ["through"]
    assert got["roads"][0]["length_inside_m"] == pytest.approx(2000, abs=1)
    assert got["roads"][0]["geometry"]["type"] == "MultiLineString"
    assert [(h["id"], h["distance_m"], h["in_hazard"]) for h in got["hospitals"]] == [("h-gap", 1000, False)]
    # 2 km² of 18 km²
    assert got["evacuation"]["townships"][0]["share"] == pytest.approx(2 / 18, abs=1e-4)
    assert got["hazard"]["area_m2"] == pytest.approx(2_000_000, rel=1e-4)


def test_no_hazard_means_a_circle_of_the_default_radius_around_the_point():
    through = road("through", [(-1000, 500), (2000, 500)])
    got = linkage_context(None, point=POINT, kind="landslide", roads=[through], bridges=(),
                          facilities=[fac("h", "hospital", 500, 1500)], townships=(), default_radius_m=500.0)
    assert got["hazard"]["assumed"] is True and got["hazard"]["radius_m"] == 500
    assert got["hazard"]["area_m2"] == pytest.approx(math.pi * 500**2, rel=0.005)  # a 64-gon
    assert got["roads"][0]["length_inside_m"] == pytest.approx(1000, abs=1)  # a diameter
    assert got["hospitals"][0]["distance_m"] == pytest.approx(500, abs=1)
    given = linkage_context(SQUARE, point=POINT, kind="landslide", roads=(), bridges=(), facilities=(),
                            townships=())
    assert given["hazard"]["assumed"] is False and "radius_m" not in given["hazard"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hazard": LineString([(106.7, 29.8), (106.71, 29.81)])}, "must be a Polygon or MultiPolygon"),
    ({"hazard": Polygon()}, "empty polygon"),
    ({"hazard": Polygon([(106.70, 29.80), (106.71, 29.81), (106.71, 29.80), (106.70, 29.81)])},
     "hazard polygon is invalid: Self-intersection"),
    ({"point": (106.7,)}, r"point must be \(lon, lat\)"),
    ({"point": (500000.0, 3300000.0)}, "is not WGS84"),
    ({"reach_m": 0.0}, "reach_m must be a positive number"),
    ({"hazard": None, "default_radius_m": -1.0}, "default_radius_m must be a positive number"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    args = {"hazard": SQUARE, "point": POINT, "kind": "flood", "roads": (), "bridges": (), "facilities": (),
            "townships": ()} | kwargs
    hazard = args.pop("hazard")
    with pytest.raises(ContextError, match=message):
        linkage_context(hazard, **args)


# --- the synthetic district -----------------------------------------------------------------


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    from sitl.scenarios.yubei.generate import generate

    return District.load(generate(tmp_path_factory.mktemp("linkage") / "d"))


def test_on_the_synthetic_district_the_roads_are_those_crossing_a_flood_at_the_yulin_gauge(district):
    sensors = json.loads(Path(district.sensors_path).read_text(encoding="utf-8"))
    (gauge,) = [f for f in sensors["features"] if f["properties"]["id"] == "yulin-level"]
    lon, lat = gauge["geometry"]["coordinates"]
    flood_utm = Point(FWD.transform(lon, lat)).buffer(1500.0)
    flood = shapely.transform(flood_utm, lambda c: np.column_stack(INV.transform(c[:, 0], c[:, 1])))

    got = linkage_context(flood, point=(lon, lat), kind="flood", roads=district.roads, bridges=(),
                          facilities=district.facilities, townships=(), utm_epsg=district.utm_epsg)

    expected = {}
    for r in district.roads:
        line = utm(r.line)
        if line.crosses(flood_utm) or line.within(flood_utm):
            expected[r.id] = line.intersection(flood_utm).length
    assert expected, "the test flood should cross at least one road"
    assert {r["id"] for r in got["roads"]} == set(expected)
    for r in got["roads"]:
        assert r["length_inside_m"] == pytest.approx(expected[r["id"]], abs=1)
    # Facilities agree with an independent check too: hospitals within reach, staging outside.
    for h in got["hospitals"]:
        assert flood_utm.distance(Point(FWD.transform(h["lon"], h["lat"]))) <= 15000.0
    for s in got["staging"]:
        assert flood_utm.distance(Point(FWD.transform(s["lon"], s["lat"]))) >= 300.0
    json.dumps(got)
