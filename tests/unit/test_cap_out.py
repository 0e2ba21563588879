"""CAP 1.2 out: messages built, checked against the official OASIS schema, read back, and the Atom feed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from command.linkage.cap import (
    ASSESSMENT_LABEL,
    ASSESSMENT_LABEL_ZH,
    CAP_MIME,
    KINDS,
    MAX_POLYGON_POINTS,
    Area,
    AtomEntry,
    CapMessage,
    CapRuleError,
    CapValidationError,
    Circle,
    FeedError,
    Info,
    Reference,
    atom_feed,
    cap_datetime,
    check_rules,
    entry_for,
    info_for_incident,
    severity_for,
    to_xml,
    urgency_certainty,
    validate,
)
from command.official import parse_cap
from command.risk.rules import Level
from tests.cap_schema import cap_schema_path

SCHEMA = cap_schema_path()  # no schema, no test run: a missing package fails here, loudly
DATA = Path(__file__).parent.parent / "data"
N = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
A = {"atom": "http://www.w3.org/2005/Atom"}
SH = ZoneInfo("Asia/Shanghai")
SENT = datetime(2026, 7, 12, 0, 30, tzinfo=timezone.utc)  # 08:30 in Chongqing
SENDER = "yingji@yubei.example"
SQUARE = Polygon([(106.5, 29.6), (106.6, 29.6), (106.6, 29.7), (106.5, 29.7)])  # lon/lat
SQUARE_CAP = "29.6,106.5 29.6,106.6 29.7,106.6 29.7,106.5 29.6,106.5"  # the same square, lat,lon


def incident_infos(level: Level = Level.YELLOW, **overrides: object) -> tuple[Info, Info]:
    values: dict = {
        "kind": "rainstorm", "level": level, "title": "Heavy rain over Longxi", "title_zh": "龙溪街道强降雨",
        "place": "Longxi subdistrict", "place_zh": "龙溪街道", "sender_name": "Yubei District Emergency Bureau",
        "sender_name_zh": "渝北区应急管理局", "geometry": SQUARE,
        "description": ["52 mm of rain in 6 h at gauge R-12."], "description_zh": ["R-12 雨量站 6 小时降雨 52 毫米。"],
        "instruction": "Keep out of underpasses and low roads.", "instruction_zh": "请勿进入下穿通道和低洼路段。",
        "expires": SENT + timedelta(hours=6),
    }
    values.update(overrides)
    return info_for_incident(**values)


def alert(**overrides: object) -> CapMessage:
    values: dict = {"identifier": "YJ-2026-0001", "sender": SENDER, "sent": SENT, "status": "Actual",
                    "msg_type": "Alert", "scope": "Public", "incidents": ("INC-42",), "infos": incident_infos()}
    values.update(overrides)
    return CapMessage(**values)


def root_of(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)


def texts(xml: bytes, path: str) -> list[str]:
    return [el.text or "" for el in root_of(xml).iterfind(path, N)]


# --- whole messages against the official schema -----------------------------------------------


def test_the_schema_is_the_official_oasis_cap_1_2_file() -> None:
    root = ET.parse(SCHEMA).getroot()
    assert root.get("targetNamespace") == "urn:oasis:names:tc:emergency:cap:1.2"
    assert [e.get("name") for e in root.findall("{http://www.w3.org/2001/XMLSchema}element")] == [
        "alert", "valueName", "value"]


def test_an_alert_is_written_exactly_as_the_reviewed_sample() -> None:
    assert to_xml(alert(), tz=SH) == (DATA / "cap_out_rainstorm_alert.xml").read_bytes()


def test_alert_update_and_cancel_validate_and_their_references_render_exactly() -> None:
    first = alert()
    update = alert(identifier="YJ-2026-0002", sent=SENT + timedelta(hours=1), msg_type="Update",
                   references=(Reference.to(first),), infos=incident_infos(Level.ORANGE))
    cancel = CapMessage(identifier="YJ-2026-0003", sender=SENDER, sent=SENT + timedelta(hours=3), status="Actual",
                        msg_type="Cancel", scope="Public", references=(Reference.to(first), Reference.to(update)),
                        note="Rain has stopped; the warning is lifted.")
    docs = [to_xml(m, tz=SH) for m in (first, update, cancel)]
    for doc in docs:
        validate(doc, SCHEMA)
    assert texts(docs[0], "cap:references") == []
    assert texts(docs[1], "cap:references") == ["yingji@yubei.example,YJ-2026-0001,2026-07-12T08:30:00+08:00"]
    assert texts(docs[2], "cap:references") == [
        "yingji@yubei.example,YJ-2026-0001,2026-07-12T08:30:00+08:00 "
        "yingji@yubei.example,YJ-2026-0002,2026-07-12T09:30:00+08:00"]
    assert texts(docs[1], "cap:msgType") == ["Update"] and texts(docs[2], "cap:msgType") == ["Cancel"]
    assert texts(docs[1], "cap:info/cap:severity") == ["Severe", "Severe"]
    assert texts(docs[2], "cap:info") == []
    assert texts(docs[2], "cap:note") == ["Rain has stopped; the warning is lifted."]
    # the reference's time is written as the earlier message wrote its own <sent>
    assert texts(docs[0], "cap:sent") == [texts(docs[1], "cap:references")[0].split(",")[2]]


@pytest.mark.parametrize(("when", "tz", "text"), [
    (SENT, SH, "2026-07-12T08:30:00+08:00"),
    (SENT.astimezone(SH), None, "2026-07-12T08:30:00+08:00"),
    (SENT, None, "2026-07-12T00:30:00-00:00"),  # CAP 1.2 §3.3.2: UTC is -00:00, never Z or +00:00
    (SENT.replace(microsecond=999_999), SH, "2026-07-12T08:30:00+08:00"),  # no fractional seconds
    (SENT, ZoneInfo("America/St_Johns"), "2026-07-11T22:00:00-02:30"),
    (datetime(2026, 7, 12, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=45))), None,
     "2026-07-12T08:30:00+05:45"),
])
def test_cap_times_carry_a_numeric_offset(when: datetime, tz: ZoneInfo | None, text: str) -> None:
    assert cap_datetime(when, tz) == text


def test_a_time_cap_cannot_write_is_refused() -> None:
    with pytest.raises(CapRuleError, match="naive datetime"):
        cap_datetime(datetime(2026, 7, 12, 8, 30))
    with pytest.raises(CapRuleError, match="not whole minutes"):
        cap_datetime(datetime(2026, 7, 12, 8, 30, tzinfo=timezone(timedelta(hours=8, seconds=6))))


# --- info blocks from an incident --------------------------------------------------------------


def test_an_incident_gives_a_chinese_and_an_english_info_block_labelled_as_the_systems_assessment() -> None:
    zh, en = incident_infos()
    assert (zh.language, en.language) == ("zh-CN", "en-US")
    assert (zh.event, en.event) == ("暴雨", "Rainstorm")
    assert zh.headline == "暴雨黄色预警（系统研判）：龙溪街道强降雨"
    assert en.headline == "Yellow rainstorm warning (Yingji assessment): Heavy rain over Longxi"
    assert zh.description == f"{ASSESSMENT_LABEL_ZH}\nR-12 雨量站 6 小时降雨 52 毫米。"
    assert en.description == f"{ASSESSMENT_LABEL}\n52 mm of rain in 6 h at gauge R-12."
    assert ASSESSMENT_LABEL == "Yingji assessment (not an official meteorological or hydrological warning)"
    assert ASSESSMENT_LABEL_ZH == "系统研判（非气象/水文部门正式预警）"
    assert dict(zh.parameters) == {"colour": "yellow", "response_level": "III", "incident_kind": "rainstorm",
                                   "预警级别": "黄色", "响应级别": "Ⅲ级", "研判来源": "系统研判"}
    assert dict(en.parameters) == {"colour": "yellow", "response_level": "III", "incident_kind": "rainstorm",
                                   "assessment": "system"}
    assert (zh.urgency, zh.certainty, en.urgency, en.certainty) == ("Immediate", "Observed", "Immediate", "Observed")
    assert zh.categories == en.categories == ("Met",) and zh.response_types == ("Prepare", "Monitor")
    assert (zh.areas[0].description, en.areas[0].description) == ("龙溪街道", "Longxi subdistrict")
    assert zh.areas[0].polygons == en.areas[0].polygons
    assert (zh.sender_name, en.sender_name) == ("渝北区应急管理局", "Yubei District Emergency Bureau")


def test_an_official_relay_carries_no_assessment_label() -> None:
    zh, en = incident_infos(system_assessment=False, description=[], description_zh=[])
    assert zh.headline == "暴雨黄色预警：龙溪街道强降雨" and en.description is None
    assert "研判来源" not in dict(zh.parameters) and "assessment" not in dict(en.parameters)


@pytest.mark.parametrize(("level", "severity", "colour", "response"), [
    (Level.BLUE, "Minor", "blue", "IV"),
    (Level.YELLOW, "Moderate", "yellow", "III"),
    (Level.ORANGE, "Severe", "orange", "II"),
    (Level.RED, "Extreme", "red", "I"),
])
def test_each_level_maps_to_its_cap_severity(level: Level, severity: str, colour: str, response: str) -> None:
    assert severity_for(level) == severity
    zh, en = incident_infos(level)
    assert zh.severity == en.severity == severity
    assert dict(en.parameters)["colour"] == colour and dict(en.parameters)["response_level"] == response
    assert dict(zh.parameters)["预警级别"] == level.colour_zh
    warning = parse_cap(to_xml(alert(infos=(zh, en))))
    assert (warning.severity, warning.colour) == (severity, colour)


def test_level_none_has_no_severity() -> None:
    with pytest.raises(CapRuleError, match="only blue, yellow, orange and red are alerted"):
        severity_for(Level.NONE)
    with pytest.raises(CapRuleError, match="no CAP severity"):
        incident_infos(Level.NONE)


@pytest.mark.parametrize(("basis", "urgency", "certainty"), [
    ("observed", "Immediate", "Observed"), ("forecast", "Expected", "Likely"), ("possible", "Future", "Possible"),
])
def test_urgency_and_certainty_follow_what_the_hazard_rests_on(basis: str, urgency: str, certainty: str) -> None:
    assert urgency_certainty(basis) == (urgency, certainty)  # type: ignore[arg-type]
    zh, _ = incident_infos(basis=basis)
    assert (zh.urgency, zh.certainty) == (urgency, certainty)
    with pytest.raises(CapRuleError, match="basis 'rumour' is not one of observed, forecast, possible"):
        urgency_certainty("rumour")  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "categories", "event", "event_zh"), [
    ("flood", ("Met",), "Flood", "洪水"),
    ("rainstorm", ("Met",), "Rainstorm", "暴雨"),
    ("landslide", ("Geo",), "Landslide", "滑坡"),
    ("fire", ("Fire",), "Fire", "火灾"),
    ("chemical_leak", ("CBRNE", "Env"), "Hazardous chemical leak", "危险化学品泄漏"),
    ("other", ("Other",), "Emergency", "突发事件"),
])
def test_each_incident_kind_has_a_category_and_event_names(kind: str, categories: tuple[str, ...], event: str,
                                                          event_zh: str) -> None:
    zh, en = incident_infos(kind=kind)
    assert zh.categories == en.categories == categories
    assert (en.event, zh.event) == (event, event_zh)
    assert zh.response_types == KINDS[kind].response_types
    validate(to_xml(alert(infos=(zh, en))), SCHEMA)


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(CapRuleError, match="incident kind 'meteor' has no CAP terms; known kinds: flood, rainstorm"):
        incident_infos(kind="meteor")


def test_response_types_can_be_chosen() -> None:
    zh, en = incident_infos(kind="flood", level=Level.RED, response_types=("Evacuate",))
    assert zh.response_types == en.response_types == ("Evacuate",)
    with pytest.raises(CapRuleError, match="responseType 'Run' is not one of Shelter, Evacuate"):
        incident_infos(response_types=("Run",))


# --- areas ---------------------------------------------------------------------------------------


def test_a_shapely_square_becomes_a_lat_lon_polygon() -> None:
    area = Area.from_geometry("Square", SQUARE)
    assert area.polygons == (((106.5, 29.6), (106.6, 29.6), (106.6, 29.7), (106.5, 29.7), (106.5, 29.6)),)
    assert texts(to_xml(alert()), "cap:info/cap:area/cap:polygon") == [SQUARE_CAP, SQUARE_CAP]


def test_plain_coordinates_are_closed_and_converted_the_same_way() -> None:
    coords = [(106.5, 29.6), (106.6, 29.6), (106.6, 29.7), (106.5, 29.7)]
    assert Area.from_geometry("Square", coords) == Area.from_geometry("Square", SQUARE)


def test_a_circle_is_written_lat_lon_radius_km() -> None:
    circle = Circle(106.63, 29.72, 2.5)
    assert circle.render() == "29.72,106.63 2.5"
    doc = to_xml(alert(infos=incident_infos(kind="chemical_leak", geometry=None, circles=(circle,))))
    validate(doc, SCHEMA)
    assert texts(doc, "cap:info/cap:area/cap:circle") == ["29.72,106.63 2.5", "29.72,106.63 2.5"]
    assert texts(doc, "cap:info/cap:area/cap:polygon") == []
    assert parse_cap(doc).areas[0].circles == ((106.63, 29.72, 2.5),)


def test_a_multipolygon_gives_one_polygon_element_per_part() -> None:
    other = Polygon([(106.7, 29.8), (106.8, 29.8), (106.75, 29.9)])
    doc = to_xml(alert(infos=incident_infos(geometry=MultiPolygon([SQUARE, other]))))
    validate(doc, SCHEMA)
    zh_polygons = texts(doc, "cap:info[cap:language='zh-CN']/cap:area/cap:polygon")
    assert zh_polygons == [SQUARE_CAP, "29.8,106.7 29.8,106.8 29.9,106.75 29.8,106.7"]


def test_a_hole_is_dropped_and_only_the_exterior_is_sent() -> None:
    with_hole = Polygon(SQUARE.exterior.coords, [[(106.52, 29.62), (106.58, 29.62), (106.58, 29.68)]])
    assert Area.from_geometry("Ring", with_hole).polygons == Area.from_geometry("Ring", SQUARE).polygons


def test_a_long_outline_is_simplified_to_a_covering_ring_within_the_limit() -> None:
    disc = Point(106.6, 29.7).buffer(0.1, quad_segs=256)  # 1025 points
    ring = Area.from_geometry("Disc", disc).polygons[0]
    assert 4 <= len(ring) <= MAX_POLYGON_POINTS == 100 and ring[0] == ring[-1]
    simplified = Polygon(ring)
    assert simplified.buffer(1e-5).covers(disc)  # warns all of it (1e-5°: coordinate rounding)
    assert simplified.area < disc.area * 1.01  # and not much more
    validate(to_xml(alert(infos=incident_infos(geometry=disc))), SCHEMA)


@pytest.mark.parametrize(("build", "words"), [
    (lambda: Area("A", (((106.5, 29.6), (106.6, 29.6), (106.5, 29.6)),)), "has 3 points; CAP needs at least 4"),
    (lambda: Area("A", (((106.5, 29.6), (106.6, 29.6), (106.6, 29.7), (106.5, 29.7)),)), "is not closed"),
    (lambda: Area("A", (((106.5, 29.6), (106.6, 29.7), (106.6, 29.6), (106.5, 29.65), (106.5, 29.6)),)),
     "is not a simple ring: Self-intersection"),
    (lambda: Area("A", (((106.5, 29.6), (106.6, 29.6), (106.7, 29.6), (106.5, 29.6)),)), "encloses no area"),
    (lambda: Area.from_geometry("A", [(29.6, 106.5), (29.6, 106.6), (29.7, 106.6)]),
     r"outside WGS 84 .* positions are \(lon, lat\)"),
    (lambda: Area.from_geometry("A", Point(106.6, 29.7)), "must be a Polygon or MultiPolygon, got a Point"),
    (lambda: Area.from_geometry("A", Polygon()), "the area geometry is empty"),
    (lambda: Area.from_geometry("A", [(106.5, 29.6), (106.6, 29.6)]), "a polygon needs at least 3"),
    (lambda: Area("", ()), "areaDesc is required"),
    (lambda: Circle(106.6, 29.7, 0), "radius_km must be a positive number"),
    (lambda: Circle(106.6, float("nan"), 1), "not a pair of finite numbers"),
])
def test_a_bad_area_is_refused_with_the_reason(build: object, words: str) -> None:
    with pytest.raises(CapRuleError, match=words):
        build()  # type: ignore[operator]


# --- text through XML ----------------------------------------------------------------------------


def test_markup_characters_quotes_and_chinese_round_trip() -> None:
    nasty = 'Rain <b>&amp; "floods" & \'mud\' > 50 mm — 龙溪街道 ]]> <!-- no -->'
    zh, en = incident_infos(title=nasty, title_zh=nasty, instruction=nasty, place=nasty)
    doc = to_xml(alert(infos=(zh, en), note=nasty))
    validate(doc, SCHEMA)
    root = root_of(doc)
    assert root.findtext("cap:note", namespaces=N) == nasty
    en_info = root.find("cap:info[cap:language='en-US']", N)
    assert en_info is not None
    assert en_info.findtext("cap:headline", namespaces=N) == en.headline
    assert en_info.findtext("cap:instruction", namespaces=N) == nasty
    assert en_info.findtext("cap:area/cap:areaDesc", namespaces=N) == nasty
    assert b"<b>" not in doc and b"&amp;amp;" in doc  # escaped once by the writer, not by hand


def test_characters_xml_cannot_carry_are_refused() -> None:
    with pytest.raises(CapRuleError, match="U\\+0007, which XML cannot carry"):
        incident_infos(instruction="bell\x07")


# --- broken messages -----------------------------------------------------------------------------


def test_an_update_or_cancel_without_references_is_refused() -> None:
    update = alert(identifier="YJ-2026-0002", msg_type="Update")
    with pytest.raises(CapRuleError, match=r"an Update must name the message\(s\) it replaces"):
        to_xml(update)
    with pytest.raises(CapRuleError, match="a Cancel must name"):
        check_rules(replace(update, msg_type="Cancel", infos=()))


@pytest.mark.parametrize(("overrides", "words"), [
    ({"sent": datetime(2026, 7, 12, 8, 30)}, "sent 2026-07-12T08:30:00 is a naive datetime"),
    ({"identifier": "YJ 0001"}, "identifier 'YJ 0001' must not contain spaces, commas"),
    ({"sender": "a,b"}, "sender 'a,b' must not contain"),
    ({"status": "Real"}, "status 'Real' is not one of Actual, Exercise, System, Test, Draft"),
    ({"msg_type": "Ack"}, "msgType 'Ack' is not one of Alert, Update, Cancel"),
    ({"scope": "Everyone"}, "scope 'Everyone' is not one of"),
    ({"references": (("yingji", "YJ-1", SENT),)}, "references must be Reference"),
    ({"incidents": "INC-42"}, "incidents must be a sequence"),
])
def test_a_bad_message_field_is_refused_when_built(overrides: dict, words: str) -> None:
    with pytest.raises(CapRuleError, match=words):
        alert(**overrides)


@pytest.mark.parametrize(("info", "words"), [
    ({"event": ""}, r"info \(en-US\) event is required"),
    ({"event": "   "}, r"info \(en-US\) event is required"),
    ({"categories": ()}, "at least one category is required"),
    ({"categories": "Met"}, "categories must be a sequence"),
    ({"severity": "Bad"}, "severity 'Bad' is not one of Extreme, Severe"),
    ({"urgency": "Soon"}, "urgency 'Soon' is not one of"),
    ({"certainty": None}, "certainty None is not one of"),
    ({"language": "english please"}, "is not a language tag"),
    ({"expires": datetime(2026, 7, 12, 14, 30)}, r"info \(en-US\) expires .* is a naive datetime"),
    ({"web": "alerts/42"}, "must be a full absolute URI"),
    ({"parameters": (("colour",),)}, "is not a \\(valueName, value\\) pair"),
])
def test_a_bad_info_block_is_refused_when_built(info: dict, words: str) -> None:
    base: dict[str, Any] = {"language": "en-US", "categories": ("Met",), "event": "Rainstorm", "urgency": "Immediate",
                            "severity": "Moderate", "certainty": "Observed"}
    Info(**base)  # the base is fine
    with pytest.raises(CapRuleError, match=words):
        Info(**{**base, **info})


@pytest.mark.parametrize(("overrides", "words"), [
    ({"scope": "Restricted"}, "scope Restricted needs a restriction text"),
    ({"scope": "Public", "restriction": "staff only"}, "restriction is for scope Restricted, not Public"),
    ({"scope": "Private"}, "scope Private needs addresses"),
    ({"infos": ()}, "an Alert needs at least one info block"),
    ({"references": (Reference(SENDER, "YJ-2026-0001", SENT),)}, "references itself"),
    ({"references": (Reference(SENDER, "YJ-2025-9", SENT + timedelta(minutes=1)),)}, "was sent after this message"),
    ({"infos": incident_infos(expires=SENT)}, r"info \(zh-CN\) expires .* is not after sent"),
    ({"infos": incident_infos(effective=SENT, onset=SENT + timedelta(hours=7))}, "onset .* is after expires"),
])
def test_rules_across_fields_are_checked_before_writing(overrides: dict, words: str) -> None:
    msg = alert(**overrides)
    with pytest.raises(CapRuleError, match=words) as err:
        to_xml(msg)
    assert any(words.split(" ")[0] in p for p in err.value.problems)


def test_all_broken_rules_are_listed_together() -> None:
    msg = alert(msg_type="Update", scope="Private", infos=())
    with pytest.raises(CapRuleError) as err:
        check_rules(msg)
    assert err.value.problems == (
        "an Update must name the message(s) it replaces in references (CAP 1.2 §3.2.1)",
        "scope Private needs addresses (CAP 1.2 §3.2.1)",
        "an Update needs at least one info block",
    )


def test_restricted_and_private_messages_carry_what_cap_requires() -> None:
    restricted = to_xml(alert(scope="Restricted", restriction="Emergency departments of Yubei only"))
    private = to_xml(alert(scope="Private", addresses=("fire-dept@yubei.example", "Yubei Traffic Police")))
    for doc in (restricted, private):
        validate(doc, SCHEMA)
    assert texts(restricted, "cap:restriction") == ["Emergency departments of Yubei only"]
    assert texts(private, "cap:addresses") == ['fire-dept@yubei.example "Yubei Traffic Police"']
    with pytest.raises(CapRuleError, match="must not contain a double quote"):
        alert(scope="Private", addresses=('say "hi"',))


# --- the schema catches what is written by hand -------------------------------------------------

HAND = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>HAND-1</identifier>
  <sender>hand@example.cn</sender>
  <sent>2026-07-12T08:30:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>Rainstorm</event>
    <urgency>Immediate</urgency>
    <severity>Moderate</severity>
    <certainty>Observed</certainty>
    <area>
      <areaDesc>Yubei</areaDesc>
      <polygon>29.6,106.5 29.6,106.6 29.7,106.6 29.6,106.5</polygon>
    </area>
  </info>
</alert>
"""


def test_the_hand_written_message_is_valid_as_it_stands() -> None:
    validate(HAND.encode(), SCHEMA)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("<severity>Moderate</severity>", "<severity>Bad</severity>",
     "line 13: Element 'cap:severity': [facet 'enumeration'] The value 'Bad' is not an element of the set"),
    ("<urgency>Immediate</urgency>\n    <severity>Moderate</severity>",
     "<severity>Moderate</severity>\n    <urgency>Immediate</urgency>",
     "Element 'cap:severity': This element is not expected. Expected is one of ( cap:responseType, cap:urgency )."),
    ("+08:00</sent>", "Z</sent>", "Element 'cap:sent': [facet 'pattern'] The value '2026-07-12T08:30:00Z'"),
    ("<event>Rainstorm</event>", "", "Element 'cap:urgency': This element is not expected. Expected is"),
    ("<msgType>Alert</msgType>", "<msgType>Update</msgType>", "an Update must name the message(s) it replaces"),
    ("29.6,106.5</polygon>", "29.7,106.5</polygon>", "line 17: cap:polygon needs at least 4 'lat,lon' pairs"),
    ("29.6,106.5 29.6,106.6 29.7,106.6 29.6,106.5", "106.5,29.6 106.6,29.6 106.6,29.7 106.5,29.6",
     "cap:polygon has a point outside WGS 84"),
    ("<areaDesc>Yubei</areaDesc>", "<areaDesc>Yubei</areaDesc><circle>29.6 106.5 2</circle>",
     "cap:circle is not 'lat,lon radius_km'"),
])
def test_a_document_breaking_the_schema_or_the_rules_fails_with_the_element_named(old: str, new: str,
                                                                                 words: str) -> None:
    assert old in HAND
    with pytest.raises(CapValidationError) as err:
        validate(HAND.replace(old, new).encode(), SCHEMA)
    assert any(words in e for e in err.value.errors), err.value.errors
    assert words in str(err.value)


def test_not_xml_and_a_missing_schema_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CapValidationError, match="not well-formed XML"):
        validate(b"<alert>", SCHEMA)
    with pytest.raises(CapValidationError, match="No matching global declaration available for the validation root"):
        validate(b"<alert xmlns='urn:other'/>", SCHEMA)
    with pytest.raises(FileNotFoundError, match=r"CAP 1\.2 schema not found"):
        validate(HAND.encode(), tmp_path / "missing.xsd")


# --- read back by our own CAP reader ------------------------------------------------------------


def test_our_alert_reads_back_through_the_official_warning_parser() -> None:
    msg = alert(infos=incident_infos(Level.ORANGE, kind="flood", basis="forecast"))
    warning = parse_cap(to_xml(msg, tz=SH))
    assert (warning.identifier, warning.sender, warning.msg_type) == ("YJ-2026-0001", SENDER, "Alert")
    assert warning.sent == SENT and warning.expires == SENT + timedelta(hours=6)
    assert (warning.severity, warning.colour, warning.language) == ("Severe", "orange", "zh-CN")
    assert (warning.urgency, warning.certainty, warning.event) == ("Expected", "Likely", "洪水")
    assert warning.areas[0].description == "龙溪街道"
    assert warning.areas[0].polygons == (tuple(SQUARE.exterior.coords),)
    english = parse_cap(to_xml(msg), prefer_language="en-US")
    assert (english.colour, english.areas[0].description) == ("orange", "Longxi subdistrict")
    update = alert(identifier="YJ-2026-0002", msg_type="Update", sent=SENT + timedelta(hours=1),
                   references=(Reference.to(msg),))
    assert parse_cap(to_xml(update)).references == ("YJ-2026-0001",)


# --- Atom feed -----------------------------------------------------------------------------------


def feed_entries() -> list[AtomEntry]:
    first = alert()
    later = alert(identifier="YJ-2026-0007", sent=SENT + timedelta(hours=2), incidents=("INC-43",),
                  infos=incident_infos(Level.RED, kind="landslide", title="Slope moving above Huilong Road",
                                       title_zh="回龙路上方边坡变形"))
    return [entry_for(first, entry_id="urn:yingji:alert:42", cap_url="https://yingji.example/api/alerts/42/cap"),
            entry_for(later, entry_id="urn:yingji:alert:43", cap_url="https://yingji.example/api/alerts/43/cap",
                      language="en-US")]


def test_the_atom_feed_has_what_rfc_4287_requires_and_links_each_cap_document() -> None:
    doc = atom_feed(feed_entries(), feed_id="urn:yingji:alerts:yubei", title="渝北区应急预警 Yubei alerts",
                    self_url="https://yingji.example/api/alerts/feed", updated=SENT + timedelta(hours=2),
                    author="渝北区应急管理局")
    root = ET.fromstring(doc)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed" and doc.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert root.findtext("atom:id", namespaces=A) == "urn:yingji:alerts:yubei"
    assert root.findtext("atom:title", namespaces=A) == "渝北区应急预警 Yubei alerts"
    assert root.findtext("atom:updated", namespaces=A) == "2026-07-12T02:30:00+00:00"
    assert root.findtext("atom:author/atom:name", namespaces=A) == "渝北区应急管理局"
    links = root.findall("atom:link", A)
    assert [(x.get("rel"), x.get("type"), x.get("href")) for x in links] == [
        ("self", "application/atom+xml", "https://yingji.example/api/alerts/feed")]
    entries = root.findall("atom:entry", A)
    assert [e.findtext("atom:id", namespaces=A) for e in entries] == ["urn:yingji:alert:43", "urn:yingji:alert:42"]
    newest, oldest = entries
    assert newest.findtext("atom:title", namespaces=A) == (
        "Red landslide warning (Yingji assessment): Slope moving above Huilong Road")
    assert newest.findtext("atom:updated", namespaces=A) == "2026-07-12T02:30:00+00:00"
    assert oldest.findtext("atom:title", namespaces=A) == "暴雨黄色预警（系统研判）：龙溪街道强降雨"
    assert (oldest.findtext("atom:summary", namespaces=A) or "").startswith(ASSESSMENT_LABEL_ZH)
    for entry, n in ((newest, 43), (oldest, 42)):
        (link,) = entry.findall("atom:link", A)
        assert (link.get("rel"), link.get("type"), link.get("href")) == (
            "alternate", CAP_MIME, f"https://yingji.example/api/alerts/{n}/cap")
    assert CAP_MIME == "application/cap+xml"


def test_a_cancel_without_info_still_has_an_entry_title() -> None:
    cancel = CapMessage(identifier="YJ-2026-0009", sender=SENDER, sent=SENT, status="Actual", msg_type="Cancel",
                        scope="Public", references=(Reference(SENDER, "YJ-2026-0001", SENT - timedelta(hours=1)),),
                        note="Lifted.")
    entry = entry_for(cancel, entry_id="urn:yingji:alert:42", cap_url="https://yingji.example/a/42/cap")
    assert (entry.title, entry.summary, entry.updated) == ("Cancel: YJ-2026-0009", "Lifted.", SENT)


@pytest.mark.parametrize(("build", "words"), [
    (lambda e: atom_feed(e + e[:1], feed_id="urn:x", title="t", self_url="https://x/feed", updated=SENT),
     "entry id urn:yingji:alert:42 appears twice"),
    (lambda e: atom_feed(e, feed_id="alerts", title="t", self_url="https://x/feed", updated=SENT),
     "feed_id 'alerts' must be an absolute IRI"),
    (lambda e: atom_feed(e, feed_id="urn:x", title="t", self_url="/feed", updated=SENT),
     "self_url '/feed' must be an absolute IRI"),
    (lambda e: atom_feed(e, feed_id="urn:x", title="", self_url="https://x/feed", updated=SENT),
     "feed title is required"),
    (lambda e: atom_feed(e, feed_id="urn:x", title="t", self_url="https://x/feed", updated=datetime(2026, 7, 12)),
     "feed updated .* is a naive datetime"),
    (lambda e: AtomEntry(id="42", title="t", updated=SENT, cap_url="https://x/42"), "entry id '42' must be"),
    (lambda e: AtomEntry(id="urn:a", title="t", updated=SENT, cap_url="42.xml"), "cap_url '42.xml' must be"),
])
def test_a_bad_feed_is_refused_with_the_reason(build: object, words: str) -> None:
    with pytest.raises(FeedError, match=words):
        build(feed_entries())  # type: ignore[operator]
