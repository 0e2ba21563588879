"""Evacuation rules (pure): the people in a zone, the shelters for them, counts and closing, the
numbering of the reports sent up and when the initial one is due, the report's text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace as NS

import pytest
from pyproj import Geod
from shapely.geometry import Point, box

from command.linkage.evacuation import (
    CloseRefused,
    Count,
    CountRefused,
    ReportOrderError,
    ZoneError,
    check_close,
    check_count,
    choose_shelters,
    current_figures,
    estimate_population,
    initial_report_due,
    next_report,
    render_report,
    zone_geometry,
    zone_transition,
)

T0 = datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc)
ZONE = box(106.71, 29.70, 106.73, 29.71)  # about 1.9 km × 1.1 km
GEOD = Geod(ellps="WGS84")


def _facility(fid: str, kind: str, lon: float, lat: float, *, population: int | None = None,
              capacity: int | None = None) -> NS:
    return NS(id=fid, kind=kind, name=fid.title(), name_zh=fid, lon=lon, lat=lat, population=population,
              capacity=capacity)


def _township(tid: str, area, population: int) -> NS:
    return NS(id=tid, kind="town", name=tid.title(), name_zh=tid, area=area, population=population)


def _metres_east(lon: float, lat: float, metres: float) -> float:
    """The longitude ``metres`` east of (lon, lat) on the ellipsoid."""
    lon2, _, _ = GEOD.fwd(lon, lat, 90.0, metres)
    return lon2


# -- the people inside -----------------------------------------------------------------------------


def test_population_is_the_area_weighted_township_estimate_when_it_is_the_larger() -> None:
    # a township half inside the zone (split along a meridian), another wholly outside
    half = _township("twp-a", box(106.70, 29.70, 106.72, 29.71), 10_000)
    out = _township("twp-b", box(106.80, 29.80, 106.82, 29.81), 50_000)
    village = _facility("village-x", "village", 106.725, 29.705, population=400)
    est = estimate_population(ZONE, facilities=[village], townships=[half, out])
    assert est.method == "townships_area_weighted"
    assert abs(est.townships_people - 5_000) <= 5, est.townships_people
    assert est.people == est.townships_people and est.facilities_people == 400
    assert [t["id"] for t in est.townships] == ["twp-a"] and abs(est.townships[0]["share"] - 0.5) < 0.002
    wire = est.to_wire()
    assert wire["estimate"] is True and wire["note"].startswith("Estimate, not a count")
    assert wire["places"] == [{"id": "village-x", "kind": "village", "name": "Village-X", "name_zh": "village-x",
                               "lon": 106.725, "lat": 29.705, "population": 400, "counted": True}]


def test_residents_at_places_inside_win_when_more_and_towns_count_only_without_townships() -> None:
    thin = _township("twp-a", box(106.60, 29.60, 106.90, 29.90), 3_000)  # large and sparse: few people in the zone
    home = _facility("care-x", "nursing_home", 106.715, 29.705, population=120)
    village = _facility("village-x", "village", 106.725, 29.705, population=650)
    town = _facility("town-x", "town", 106.72, 29.706, population=50_000)
    outside = _facility("village-y", "village", 106.75, 29.705, population=9_999)
    est = estimate_population(ZONE, facilities=[home, village, town, outside], townships=[thin])
    assert est.method == "facilities_inside"
    assert est.townships_people < 770 and est.facilities_people == 770 and est.people == 770
    counted = {p["id"]: p["counted"] for p in est.places}
    assert counted == {"town-x": False, "village-x": True, "care-x": True}  # the town's figure is its township's
    # no township data: the towns inside are counted too
    bare = estimate_population(ZONE, facilities=[home, village, town, outside], townships=[])
    assert (bare.method, bare.people, bare.townships_people) == ("facilities_inside", 50_770, 0)
    assert estimate_population(ZONE, facilities=[outside], townships=[]).method == "none"


def test_a_zone_that_is_not_an_area_is_refused() -> None:
    with pytest.raises(ZoneError, match="Polygon or MultiPolygon"):
        estimate_population(Point(106.7, 29.7), facilities=[], townships=[])
    with pytest.raises(ZoneError, match="encloses no area"):
        choose_shelters(box(106.7, 29.7, 106.7, 29.71), 10, shelters=[])


# -- shelters --------------------------------------------------------------------------------------


def test_nearest_shelters_at_least_300_m_outside_until_their_room_covers_the_people() -> None:
    lat = 29.705
    edge = 106.73  # the zone's east edge
    inside = _facility("s-inside", "shelter", 106.72, lat, capacity=10_000)
    close = _facility("s-200m", "shelter", _metres_east(edge, lat, 200), lat, capacity=10_000)
    first = _facility("s-500m", "shelter", _metres_east(edge, lat, 500), lat, capacity=1_000)
    second = _facility("s-900m", "shelter", _metres_east(edge, lat, 900), lat, capacity=1_500)
    third = _facility("s-2km", "shelter", _metres_east(edge, lat, 2_000), lat, capacity=4_000)
    unknown = _facility("s-nocap", "shelter", _metres_east(edge, lat, 400), lat)
    choice = choose_shelters(ZONE, 2_200, shelters=[third, second, first, close, inside, unknown])
    assert [s.id for s in choice.shelters] == ["s-500m", "s-900m"]
    for pick, metres in zip(choice.shelters, (500, 900), strict=True):
        assert abs(pick.distance_m - metres) <= 2, (pick.id, pick.distance_m)  # UTM vs the ellipsoid
    assert (choice.free, choice.covered, choice.shortfall) == (2_500, True, 0)
    assert dict(choice.skipped) == {"s-200m": "only 200 m outside the zone (at least 300 m)",
                                    "s-inside": "inside the zone", "s-nocap": "no capacity recorded"}
    wire = choice.to_wire()
    assert wire["shelters"][0] == {"id": "s-500m", "name": "S-500M", "name_zh": "s-500m", "lon": first.lon,
                                   "lat": lat, "capacity": 1_000, "occupancy": 0, "free": 1_000,
                                   "distance_m": choice.shelters[0].distance_m}

    # occupancy takes room: the nearest is full, the next has 100 places left, so the third is needed too
    busy = choose_shelters(ZONE, 2_200, shelters=[third, second, first], occupancy={"s-500m": 1_000, "s-900m": 1_400})
    assert [s.id for s in busy.shelters] == ["s-900m", "s-2km"]
    assert dict(busy.skipped) == {"s-500m": "full (1000 of 1000 places taken)"}
    assert (busy.free, busy.covered) == (4_100, True)

    # not enough room anywhere: every qualifying shelter, and by how many it falls short
    short = choose_shelters(ZONE, 10_000, shelters=[third, second, first])
    assert [s.id for s in short.shelters] == ["s-500m", "s-900m", "s-2km"]
    assert (short.covered, short.shortfall) == (False, 3_500)

    # nobody to move: the nearest is still named; a shelter in another zone being evacuated is not used
    other = box(first.lon - 0.001, lat - 0.001, first.lon + 0.001, lat + 0.001)
    none = choose_shelters(ZONE, 0, shelters=[third, second, first], avoid=[other])
    assert [s.id for s in none.shelters] == ["s-900m"]
    assert dict(none.skipped) == {"s-500m": "inside another zone being evacuated"}

    # beyond the reach
    far = choose_shelters(ZONE, 10, shelters=[third], reach_m=1_000)
    assert far.shelters == () and dict(far.skipped)["s-2km"].endswith("(farther than 1000 m)")


# -- counts and closing ----------------------------------------------------------------------------


def test_figures_are_the_latest_count_and_the_latest_stated_optional_figures() -> None:
    counts = [Count(T0, 10, 90, dead=1, total=100, by="a"),
              Count(T0 + timedelta(minutes=30), 60, 38, injured=3, missing=1, by="b")]
    f = current_figures(counts)
    assert f is not None
    assert (f.evacuated, f.remaining, f.dead, f.injured, f.missing, f.total, f.sheltered) == (
        60, 38, 1, 3, 1, 100, None)
    assert (f.at, f.by, f.counts) == (T0 + timedelta(minutes=30), "b", 2)
    assert f.since["dead"] == T0 and f.since["injured"] == T0 + timedelta(minutes=30)
    assert current_figures([]) is None


def test_count_rules() -> None:
    now = T0 + timedelta(hours=1)
    current = current_figures([Count(T0, 50, 50, dead=2, total=105)])
    check_count(Count(now, 80, 20, sheltered=70, injured=5, missing=1, dead=2), current=current, now=now)  # fine
    cases = [
        (Count(now, -1, 20), "evacuated must be a non-negative whole number"),
        (Count(now, 80, 20, dead=True), "dead must be a non-negative whole number"),  # type: ignore[arg-type]
        (Count(now, 80, 2.5), "remaining must be a non-negative whole number"),  # type: ignore[arg-type]
        (Count(now + timedelta(minutes=10), 80, 20), "ahead of the service clock"),
        (Count(T0 - timedelta(minutes=1), 80, 20), "before the zone's latest count"),
        (Count(now, 80, 20, sheltered=81), "sheltered (81) cannot exceed evacuated (80)"),
        (Count(now, 80, 20, injured=101), "injured (101) cannot exceed evacuated + remaining (100)"),
        (Count(now, 80, 20, missing=2, dead=4), "= 106 exceeds the zone's total of 105 people (stated in an earlier"),
        (Count(now, 80, 20, total=99), "= 100 exceeds the zone's total of 99 people (stated in this count)"),
        (Count(now, 40, 60), "evacuated is a running total: 40 is lower than the latest 50"),
        (Count(now, 80, 20, dead=1), "dead 1 is lower than the latest 2"),
    ]
    for count, why in cases:
        with pytest.raises(CountRefused, match=why.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
            check_count(count, current=current, now=now)
    # a correction with a note is accepted; the first count needs no history; a clock a little fast is fine
    check_count(Count(now, 40, 60, note="double-counted bus"), current=current, now=now)
    check_count(Count(now + timedelta(minutes=4), 0, 300), current=None, now=now)


def test_closing_needs_a_count_leaving_nobody_or_naming_who_refuses() -> None:
    with pytest.raises(CloseRefused, match="has no counts"):
        check_close(None, zone_id=7, refusing=None)
    left = current_figures([Count(T0, 95, 5)])
    with pytest.raises(CloseRefused, match="still has 5 people remaining"):
        check_close(left, zone_id=7, refusing=None)
    with pytest.raises(CloseRefused, match="3 refusing to leave does not match the 5 remaining"):
        check_close(left, zone_id=7, refusing=3)
    assert check_close(left, zone_id=7, refusing=5) == {"evacuated": 95, "remaining": 5, "count_at": T0.isoformat(),
                                                        "refusing": 5}
    empty = current_figures([Count(T0, 100, 0)])
    assert check_close(empty, zone_id=7, refusing=None)["remaining"] == 0
    with pytest.raises(CloseRefused, match="nobody remaining, yet 2 are said to refuse"):
        check_close(empty, zone_id=7, refusing=2)
    assert zone_transition("open", "closed") == "closed" and zone_transition("closed", "open") == "open"
    with pytest.raises(ZoneError, match="evacuation zone 7 is already closed"):
        zone_transition("closed", "closed", zone_id=7)


def test_a_drawn_zone_must_be_a_closed_valid_lonlat_polygon() -> None:
    ring = [[106.7, 29.7], [106.71, 29.7], [106.71, 29.71], [106.7, 29.7]]
    assert zone_geometry({"type": "Polygon", "coordinates": [ring]}).bounds == (106.7, 29.7, 106.71, 29.71)
    cases = [
        ({"type": "Point", "coordinates": [106.7, 29.7]}, "must be a GeoJSON Polygon, got 'Point'"),
        ({"type": "Polygon", "coordinates": []}, "no rings"),
        ({"type": "Polygon", "coordinates": [ring[:3]]}, "needs at least 4 positions"),
        ({"type": "Polygon", "coordinates": [[*ring[:3], [106.7, 29.71]]]}, "is not closed"),
        ({"type": "Polygon", "coordinates": [[[206.7, 29.7], *ring[1:3], [206.7, 29.7]]]}, "outside WGS84"),
        ({"type": "Polygon", "coordinates": [[[106.7, 29.7], [106.71, 29.71], [106.71, 29.7], [106.7, 29.71],
                                              [106.7, 29.7]]]}, "invalid: Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[106.7, 29.7], [106.71, 29.7], [106.72, 29.7], [106.7, 29.7]]]},
         "encloses no area"),
        ({"type": "Polygon", "coordinates": [[["106.7", 29.7], *ring[1:]]]}, "not \\[lon, lat\\]"),
    ]
    for geo, why in cases:
        with pytest.raises(ZoneError, match=why):
            zone_geometry(geo)


# -- reports up ------------------------------------------------------------------------------------


def test_report_numbering() -> None:
    first = next_report([], "initial")
    assert (first.seq, first.kind, first.follow_up, first.label, first.label_zh) == (1, "initial", None,
                                                                                     "initial report", "首报")
    two = next_report(["initial", "follow_up"], "follow_up")
    assert (two.seq, two.follow_up, two.label, two.label_zh) == (3, 2, "follow-up report 2", "续报2")
    last = next_report(["initial", "follow_up", "follow_up"], "final")
    assert (last.seq, last.label_zh) == (4, "终报")
    assert next_report(["initial"], "final").seq == 2
    refused = [([], "follow_up", "the first report must be the initial report"),
               ([], "final", "the first report must be the initial report"),
               (["initial"], "initial", "was issued already"),
               (["initial", "final"], "follow_up", "takes no more reports"),
               (["initial", "final"], "final", "takes no more reports"),
               (["initial"], "update", "unknown report kind")]
    for issued, kind, why in refused:
        with pytest.raises(ReportOrderError, match=why):
            next_report(issued, kind)


def test_the_initial_report_is_due_after_the_incident_first_became_orange() -> None:
    levels = [{"level": "yellow", "time": T0.isoformat()},
              {"level": "orange", "time": (T0 + timedelta(hours=2)).isoformat()},
              {"level": "red", "time": (T0 + timedelta(hours=3)).isoformat()}]
    assert initial_report_due(4, levels, T0, 3600) == T0 + timedelta(hours=3)
    assert initial_report_due(2, levels[:1], T0, 3600) is None  # yellow: no deadline
    assert initial_report_due(3, [], T0, 1800) == T0 + timedelta(minutes=30)  # no history: from the opening


def test_report_text_in_both_languages() -> None:
    data = {
        "report": {"label": "follow-up report 2", "label_zh": "续报2", "by": "duty-officer-chen", "note": ""},
        "sender": "Emergency Management Bureau of Yubei District", "sender_zh": "渝北区应急管理局",
        "as_of_local": "2026-07-01 15:00",
        "incident": {"kind": "flood", "kind_zh": "洪水", "level": "orange", "level_zh": "橙色",
                     "title": "Yulin river flood", "title_zh": "御临河洪水", "place": "Longxing", "place_zh": "龙兴",
                     "opened_at_local": "2026-07-01 14:00", "status": "open"},
        "response": {"declared": {"level": "II", "level_zh": "Ⅱ级", "by": "chief-wang", "at_local": "2026-07-01 14:20"},
                     "advice": {"level": "II"}},
        "evacuation": {"zones_total": 2, "zones_open": 1, "population_estimate": 1234, "evacuated": 800,
                       "remaining": 30, "sheltered": 700,
                       "zones": [{"name": "Riverside", "name_zh": "沿河", "state": "open", "population_estimate": 1000,
                                  "counted": True, "evacuated": 800, "remaining": 30},
                                 {"name": "Island", "name_zh": "江心", "state": "closed", "population_estimate": 234,
                                  "counted": False, "evacuated": None, "remaining": None}]},
        "casualties": {"dead": 0, "injured": 2, "missing": 1},
        "departments": {"total": 3, "by_status": {"acknowledged": 1, "done": 2}},
        "vehicles": {"total": 1, "by_state": {"flying": 1}},
    }
    zh, en = render_report(data)
    assert zh.splitlines()[0] == "【续报2】渝北区应急管理局关于御临河洪水的报告"
    assert "已启动Ⅱ级应急响应（chief-wang，2026-07-01 14:20）" in zh
    assert "区内人口估算约 1234 人（估算值）；已转移 800 人，尚未转移 30 人，集中安置 700 人" in zh
    assert "江心：估算 234 人，已转移 — 人，尚未转移 — 人，已关闭（尚无统计）。" in zh
    assert "死亡 0 人，受伤 2 人，失踪 1 人" in zh and "共 3 项任务（已接收 1，已完成 2）" in zh
    assert "共 1 项任务计划（执行中 1）" in zh
    assert en.splitlines()[0] == "[FOLLOW-UP REPORT 2] Emergency Management Bureau of Yubei District: report on " \
                                 "Yulin river flood"
    assert "2. Response: level II emergency response declared by chief-wang at 2026-07-01 14:20." in en
    assert "4. Casualties: 0 dead, 2 injured, 1 missing" in en
    # no response declared: the advice is named
    zh2, en2 = render_report({**data, "response": {"declared": None, "advice": {"level": "II"}}})
    assert "尚未宣布应急响应（系统建议Ⅱ级）" in zh2 and "none declared yet (level II advised)" in en2
