"""The district gazetteer: ranking, Chinese and English names, places cut to the district, bad queries."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from shapely.geometry import LineString, Point, Polygon

from command.district import Bridge, Facility, River, Road, Township
from command.gazetteer import MAX_QUERY_CHARS, Gazetteer, GazetteerError, Place, UnknownPlace, fold

PLACES = [
    Place("facility:town-longxing", "town", "Longxing", "龙兴", 106.79, 29.775),
    Place("township:twp-longxing", "township", "Longxing Town", "龙兴镇", 106.80, 29.78),
    Place("road:longxing-ave", "road", "Longxing Avenue", "龙兴大道", 106.75, 29.76),
    Place("facility:school-longxing", "school", "Longxing Middle School", "龙兴中学", 106.786, 29.779),
    Place("facility:hosp-oldlongxing", "hospital", "Old Longxing Hospital", "老龙兴医院", 106.70, 29.70),
    Place("river:yulin", "river", "Yulin River", "御临河", 106.83, 29.80),
    Place("bridge:g50-yulin", "bridge", "G50 bridge over the Yulin", "G50沪渝高速御临河大桥", 106.84, 29.81),
]


@pytest.fixture
def gaz() -> Gazetteer:
    return Gazetteer(PLACES)


def ids(places: list[Place]) -> list[str]:
    return [p.id for p in places]


def test_chinese_exact_then_prefix_shorter_first_then_substring(gaz: Gazetteer) -> None:
    assert ids(gaz.search("龙兴")) == [
        "facility:town-longxing",  # exact
        "township:twp-longxing",  # prefix, 3 characters
        "road:longxing-ave",  # prefix, 4 characters: 龙兴大道 and 龙兴中学 tie, by English name
        "facility:school-longxing",
        "facility:hosp-oldlongxing",  # substring
    ]


def test_english_case_insensitive_with_the_same_ranking(gaz: Gazetteer) -> None:
    assert ids(gaz.search("LONGXING")) == [
        "facility:town-longxing", "township:twp-longxing", "road:longxing-ave", "facility:school-longxing",
        "facility:hosp-oldlongxing"]
    assert ids(gaz.search("middle sch")) == ["facility:school-longxing"]


def test_full_width_and_spaces_are_folded(gaz: Gazetteer) -> None:
    assert fold("  Ｇ５０  Bridge ") == "g50 bridge"
    assert ids(gaz.search("ｇ５０")) == ["bridge:g50-yulin"]
    assert ids(gaz.search("yulin   river")) == ["river:yulin"]


def test_limit_cuts_the_ranked_list(gaz: Gazetteer) -> None:
    assert ids(gaz.search("龙兴", limit=2)) == ["facility:town-longxing", "township:twp-longxing"]


def test_best_of_both_names_counts(gaz: Gazetteer) -> None:
    # 御临 is a prefix of the river's Chinese name and a substring of the bridge's
    assert ids(gaz.search("御临")) == ["river:yulin", "bridge:g50-yulin"]


def test_no_match_is_an_empty_list(gaz: Gazetteer) -> None:
    assert gaz.search("统景") == []
    assert gaz.search("zzz") == []


@pytest.mark.parametrize("query", ["", "   ", "\u3000"])
def test_empty_query_is_refused(gaz: Gazetteer, query: str) -> None:
    with pytest.raises(GazetteerError, match="empty"):
        gaz.search(query)


def test_too_long_query_and_bad_limit_are_refused(gaz: Gazetteer) -> None:
    with pytest.raises(GazetteerError, match=f"at most {MAX_QUERY_CHARS} characters"):
        gaz.search("龙" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(GazetteerError, match="limit must be at least 1"):
        gaz.search("龙兴", limit=0)


def test_get_and_unknown_id(gaz: Gazetteer) -> None:
    assert gaz.get("river:yulin").name_zh == "御临河"
    assert "river:yulin" in gaz and "river:nowhere" not in gaz
    with pytest.raises(UnknownPlace, match="no place 'river:nowhere'"):
        gaz.get("river:nowhere")


def test_repeated_id_is_refused() -> None:
    with pytest.raises(GazetteerError, match="used twice"):
        Gazetteer([PLACES[0], PLACES[0]])


def test_nearest_of_kinds_within_a_distance(gaz: Gazetteer) -> None:
    place, d_m = gaz.nearest(106.79, 29.776, kinds={"town", "township"})
    assert place.id == "facility:town-longxing"
    assert d_m == pytest.approx(111.2, abs=0.5)  # 0.001° of latitude
    assert gaz.nearest(106.0, 29.0, kinds={"town"}) is None  # more than 5 km from any town


def test_from_district_cuts_places_to_the_boundary() -> None:
    boundary = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    district = SimpleNamespace(
        boundary=boundary,
        facilities=(Facility("in", "village", "Shanxia", "山下村", 0.5, 0.5),
                    Facility("out", "hospital", "Far Hospital", "远方医院", 2.0, 2.0)),
        townships=(Township("t1", "town", "Half Town", "半镇", Polygon([(0.5, 0), (1.5, 0), (1.5, 1), (0.5, 1)])),
                   Township("t2", "town", "Outside Town", "外镇", Polygon([(2, 2), (3, 2), (3, 3), (2, 3)]))),
        roads=(Road("r1", "Edge Road", "边路", "arterial", LineString([(0.2, 0.5), (1.8, 0.5)])),),
        rivers=(River("v1", "Far River", "远河", LineString([(2, 0), (3, 0)])),),
        bridges=(Bridge("b1", "Little Bridge", "小桥", "v1", LineString([(0.1, 0.1), (0.1, 0.3)]), 100.0),),
    )
    g = Gazetteer.from_district(district)  # type: ignore[arg-type]
    assert len(g) == 4
    assert all(i in g for i in ("facility:in", "township:t1", "road:r1", "bridge:b1"))
    road = g.get("road:r1")
    assert (road.lon, road.lat) == (0.6, 0.5)  # halfway along the part inside (0.2 .. 1.0)
    bridge = g.get("bridge:b1")
    assert (bridge.lon, bridge.lat) == (0.1, 0.2)
    town = g.get("township:t1")
    assert 0.5 <= town.lon <= 1.0 and boundary.contains(Point(town.lon, town.lat))  # on the district's side
    assert g.get("facility:in").to_wire() == {"id": "facility:in", "kind": "village", "name": "Shanxia",
                                              "name_zh": "山下村", "lon": 0.5, "lat": 0.5}
