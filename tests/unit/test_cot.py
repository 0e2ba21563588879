"""Cursor-on-Target out: vehicle, incident, hazard-area and delete events, read back with xml.etree."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from command.linkage.cot import (
    INCIDENT_STALE,
    LEVEL_ARGB,
    MAX_RING_VERTICES,
    UNKNOWN,
    VEHICLE_STALE,
    CotError,
    IncidentMark,
    VehicleState,
    cot_time,
    delete_event,
    hazard_events,
    hazard_rings,
    incident_event,
    to_bytes,
    vehicle_event,
)

T = datetime(2026, 7, 12, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))  # 00:30:15.123 UTC
UAV = VehicleState(name="UAV-1", kind="copter", lon=106.857, lat=29.712, alt_amsl_m=180.4, course_deg=275.0,
                   speed_mps=11.96, battery_pct=87.4, mode="AUTO", state="on_task", incident_id=3)
RAIN = IncidentMark(incident_id=7, kind="rainstorm", level="red", status="open", lon=106.85, lat=29.71,
                    title="Rainstorm at Luoqi: red level", title_zh="洛碛暴雨红色等级", level_zh="红色",
                    response="I", response_zh="Ⅰ级", reason="62 mm in 3 h", reason_zh="3小时降雨62毫米",
                    note="System assessment, not an official warning", note_zh="系统研判，非官方预警")


def back(event: ET.Element) -> ET.Element:
    """The event as a receiver reads it: encoded, then parsed."""
    return ET.fromstring(to_bytes(event))


def test_a_copter_is_a_friendly_rotary_wing_drone_placed_by_gps() -> None:
    e = back(vehicle_event(UAV, time=T))
    assert e.tag == "event"
    assert e.attrib == {"version": "2.0", "uid": "yingji-vehicle-UAV-1", "type": "a-f-A-M-H-Q", "how": "m-g",
                        "time": "2026-07-12T00:30:15.123Z", "start": "2026-07-12T00:30:15.123Z",
                        "stale": "2026-07-12T00:30:45.123Z"}
    assert e.find("point").attrib == {"lat": "29.7120000", "lon": "106.8570000", "hae": "180.4",
                                      "ce": "9999999.0", "le": "9999999.0"}
    detail = e.find("detail")
    assert detail.find("contact").attrib == {"callsign": "UAV-1"}
    assert detail.find("__group").attrib == {"name": "Cyan", "role": "Team Member"}
    assert detail.find("track").attrib == {"course": "275.0", "speed": "11.96"}
    assert detail.find("status").attrib == {"battery": "87"}
    assert detail.find("remarks").text == \
        "Yingji copter UAV-1 · state on_task · on incident #3 · mode AUTO · battery 87%"


def test_a_boat_is_a_non_military_surface_vessel_and_stale_after_thirty_seconds() -> None:
    e = back(vehicle_event(VehicleState(name="USV-1", kind="boat", lon=106.9, lat=29.6), time=T))
    assert e.get("type") == "a-f-S-X"
    stale = datetime.fromisoformat(e.get("stale")) - datetime.fromisoformat(e.get("start"))
    assert stale == VEHICLE_STALE == timedelta(seconds=30)
    detail = e.find("detail")
    assert detail.find("track") is None and detail.find("status") is None  # nothing known, nothing claimed
    assert detail.find("remarks").text == "Yingji boat USV-1 · battery unknown"
    assert e.find("point").get("hae") == "9999999.0"  # altitude unknown


def test_hae_is_the_amsl_height_plus_the_geoid_undulation_and_accuracy_fills_ce_le() -> None:
    v = VehicleState(name="UAV-2", kind="copter", lon=106.8, lat=29.8, alt_amsl_m=300.0, ce_m=2.5, le_m=4.0)
    point = back(vehicle_event(v, time=T, geoid_undulation_m=-28.3)).find("point")
    assert (point.get("hae"), point.get("ce"), point.get("le")) == ("271.7", "2.5", "4.0")


def test_a_course_is_folded_into_0_to_360_degrees() -> None:
    v = VehicleState(name="UAV-1", kind="copter", lon=106.8, lat=29.8, course_deg=-90.0, speed_mps=3.0)
    assert back(vehicle_event(v, time=T)).find("detail/track").attrib == {"course": "270.0", "speed": "3.00"}


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "plane"}, "no CoT type for a 'plane'"),
    ({"lon": 29.7, "lat": 106.8}, "outside WGS 84"),
    ({"lat": math.nan}, "latitude must be a finite number"),
    ({"alt_amsl_m": math.inf}, "altitude must be a finite number"),
    ({"battery_pct": "full"}, "battery must be a finite number"),
])
def test_a_vehicle_that_cannot_be_placed_is_refused_by_name(change: dict, message: str) -> None:
    fields = {"name": "UAV-1", "kind": "copter", "lon": 106.8, "lat": 29.8, **change}
    with pytest.raises(CotError, match=message):
        vehicle_event(VehicleState(**fields), time=T)


def test_times_must_be_aware_and_are_written_in_utc_with_milliseconds() -> None:
    assert cot_time(T) == "2026-07-12T00:30:15.123Z"
    assert cot_time(datetime(2026, 1, 1, tzinfo=timezone.utc)) == "2026-01-01T00:00:00.000Z"
    with pytest.raises(CotError, match="timezone-aware"):
        vehicle_event(UAV, time=datetime(2026, 7, 12, 8, 30))


def test_an_incident_is_a_hostile_incident_marker_with_its_level_and_titles() -> None:
    e = back(incident_event(RAIN, time=T))
    assert e.attrib == {"version": "2.0", "uid": "yingji-incident-7", "type": "a-h-X-i-m-r", "how": "m-f",
                        "time": "2026-07-12T00:30:15.123Z", "start": "2026-07-12T00:30:15.123Z",
                        "stale": "2026-07-12T00:40:15.123Z"}
    assert INCIDENT_STALE == timedelta(minutes=10)
    assert e.find("point").attrib == {"lat": "29.7100000", "lon": "106.8500000", "hae": "9999999.0",
                                      "ce": "9999999.0", "le": "9999999.0"}
    detail = e.find("detail")
    assert detail.find("contact").get("callsign") == "洛碛暴雨红色等级"
    assert detail.find("color").get("argb") == str(LEVEL_ARGB["red"]) == "-65536"
    assert detail.find("remarks").text.split("\n") == [
        "Yingji incident #7 · rainstorm · level red (红色) · response I (Ⅰ级) · open",
        "洛碛暴雨红色等级", "Rainstorm at Luoqi: red level", "3小时降雨62毫米", "62 mm in 3 h",
        "系统研判，非官方预警", "System assessment, not an official warning"]


@pytest.mark.parametrize(("kind", "cot_type"), [
    ("flood", "a-h-X-i-m-f"), ("rainstorm", "a-h-X-i-m-r"), ("landslide", "a-h-X-i-g-l"), ("fire", "a-h-X-i-f"),
    ("chemical_leak", "a-h-X-i-c"), ("other", "a-h-X-i-o"), ("something_new", "a-h-X-i-o"),
])
def test_each_incident_kind_has_its_incident_management_type(kind: str, cot_type: str) -> None:
    mark = IncidentMark(incident_id=1, kind=kind, level="yellow", status="open", lon=106.8, lat=29.8, title="x")
    assert incident_event(mark, time=T).get("type") == cot_type


def test_a_reported_incident_is_placed_by_a_person() -> None:
    mark = IncidentMark(incident_id=2, kind="fire", level="orange", status="open", lon=106.8, lat=29.8,
                        title="Smoke on the ridge", reported=True)
    e = back(incident_event(mark, time=T))
    assert e.get("how") == "h-e"
    assert e.find("detail/contact").get("callsign") == "Smoke on the ridge"  # no Chinese title: the English one
    assert e.find("detail/remarks").text.split("\n")[0] == \
        "Yingji incident #2 · fire · level orange · open · reported by a person"


def test_text_is_escaped_and_characters_xml_cannot_carry_are_removed() -> None:
    nasty = 'Tank <B> & "valve" \'3\'\x00\x1b end'
    mark = IncidentMark(incident_id=9, kind="chemical_leak", level="red", status="open", lon=106.8, lat=29.8,
                        title=nasty, title_zh=nasty, reason="a]]>b")
    raw = to_bytes(incident_event(mark, time=T))
    assert b"&lt;B&gt; &amp; " in raw and b"\x00" not in raw and b"\x1b" not in raw
    e = ET.fromstring(raw)
    assert e.find("detail/contact").get("callsign") == 'Tank <B> & "valve" \'3\' end'
    assert e.find("detail/remarks").text.split("\n")[-1] == "a]]>b"


def test_a_document_is_utf8_with_its_declaration() -> None:
    raw = to_bytes(incident_event(RAIN, time=T))
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<event ')
    assert "洛碛暴雨".encode() in raw


def test_an_unknown_level_is_refused() -> None:
    mark = IncidentMark(incident_id=1, kind="flood", level="purple", status="open", lon=106.8, lat=29.8, title="x")
    with pytest.raises(CotError, match="unknown level 'purple'"):
        incident_event(mark, time=T)


def test_a_hazard_area_is_a_closed_drawing_in_the_level_colour_one_per_part() -> None:
    square = ((106.80, 29.70), (106.82, 29.70), (106.82, 29.72), (106.80, 29.72))
    triangle = ((106.90, 29.60), (106.91, 29.60), (106.90, 29.61), (106.90, 29.60))  # closed: not doubled
    mark = IncidentMark(incident_id=4, kind="flood", level="orange", status="open", lon=106.81, lat=29.71,
                        title="River level at Luoqi", title_zh="洛碛水位", hazard=(square, triangle))
    first, second = (back(e) for e in hazard_events(mark, time=T))
    assert first.attrib == {"version": "2.0", "uid": "yingji-incident-4-hazard-0", "type": "u-d-f", "how": "m-f",
                            "time": "2026-07-12T00:30:15.123Z", "start": "2026-07-12T00:30:15.123Z",
                            "stale": "2026-07-12T00:40:15.123Z"}
    assert first.find("point").attrib == {"lat": "29.7100000", "lon": "106.8100000", "hae": "9999999.0",
                                          "ce": "9999999.0", "le": "9999999.0"}
    assert [link.get("point") for link in first.findall("detail/link")] == [
        "29.7000000,106.8000000", "29.7000000,106.8200000", "29.7200000,106.8200000", "29.7200000,106.8000000",
        "29.7000000,106.8000000"]  # lat,lon; closed by repeating the first
    detail = first.find("detail")
    assert detail.find("contact").get("callsign") == "洛碛水位 · 影响范围 hazard area"
    assert detail.find("strokeColor").get("value") == str(0xFFFFA500 - (1 << 32))
    assert detail.find("fillColor").get("value") == str(0x40FFA500)
    assert detail.find("strokeWeight").get("value") == "3.0"
    assert detail.find("labels_on").get("value") == "false"
    assert second.get("uid") == "yingji-incident-4-hazard-1"
    assert len(second.findall("detail/link")) == 4


def test_no_hazard_no_drawing_and_a_degenerate_ring_is_refused() -> None:
    assert hazard_events(RAIN, time=T) == []
    flat = IncidentMark(incident_id=1, kind="flood", level="red", status="open", lon=106.8, lat=29.8, title="x",
                        hazard=(((106.8, 29.8), (106.9, 29.8), (106.8, 29.8)),))
    with pytest.raises(CotError, match="2 distinct vertices"):
        hazard_events(flat, time=T)
    swapped = IncidentMark(incident_id=1, kind="flood", level="red", status="open", lon=106.8, lat=29.8, title="x",
                           hazard=(((29.8, 106.8), (29.9, 106.8), (29.9, 106.9)),))
    with pytest.raises(CotError, match="outside WGS 84"):
        hazard_events(swapped, time=T)


def test_hazard_rings_cover_a_detailed_area_within_the_vertex_limit() -> None:
    fine = Point(106.85, 29.71).buffer(0.01, quad_segs=500)  # 2000 vertices
    (ring,) = hazard_rings(fine)
    assert 4 <= len(ring) <= MAX_RING_VERTICES
    assert Polygon(ring).covers(fine)  # the simplified outline still holds the whole area
    assert Polygon(ring).area < fine.area * 1.05


def test_hazard_rings_keep_the_largest_parts_first() -> None:
    small = Point(106.9, 29.6).buffer(0.001, quad_segs=4)
    large = Point(106.8, 29.7).buffer(0.01, quad_segs=4)
    rings = hazard_rings(MultiPolygon([small, large]))
    assert [round(Polygon(r).area, 8) for r in rings] == [round(large.area, 8), round(small.area, 8)]
    assert hazard_rings(MultiPolygon([small, large]), max_parts=1) == rings[:1]
    assert hazard_rings(None) == ()
    with pytest.raises(CotError, match="Polygon or MultiPolygon, got a Point"):
        hazard_rings(Point(106.8, 29.7))


def test_a_delete_removes_the_named_event_everywhere() -> None:
    e = back(delete_event("yingji-incident-7", target_type="a-h-X-i-m-r", time=T))
    assert e.attrib == {"version": "2.0", "uid": "yingji-incident-7.delete", "type": "t-x-d-d", "how": "h-g-i-g-o",
                        "time": "2026-07-12T00:30:15.123Z", "start": "2026-07-12T00:30:15.123Z",
                        "stale": "2026-07-12T00:31:15.123Z"}
    assert e.find("detail/link").attrib == {"uid": "yingji-incident-7", "relation": "p-p", "type": "a-h-X-i-m-r"}
    assert e.find("detail/__forcedelete") is not None
    assert float(e.find("point").get("hae")) == UNKNOWN
    with pytest.raises(CotError, match="uid of the event it removes"):
        delete_event(" ", target_type="u-d-f", time=T)
