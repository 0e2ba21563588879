"""CAP 1.2 alerts out of the running service: drafted by one person, released by another, valid
against the official OASIS schema, referenced exactly by their Updates and Cancels, and listed
in the public Atom feed — over the service's own HTTP API, store and event bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from lxml import etree
from shapely.geometry import MultiPolygon, Point, Polygon, mapping

from command.alerts import MAX_AREA_POLYGONS, CapSchemaMissing, cap_area, hazard_area, locate_cap_schema
from command.api.app import create_app
from command.risk.rules import Level
from command.runtime import Service
from tests.cap_schema import cap_schema_path
from tests.fixtures_service import open_rain_incident

CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}
SCHEMA = etree.XMLSchema(etree.parse(str(cap_schema_path())))  # the official file: no schema, no test run
SEVERITY = {Level.BLUE: "Minor", Level.YELLOW: "Moderate", Level.ORANGE: "Severe", Level.RED: "Extreme"}
TOKEN = {"Authorization": "Bearer t"}
A, B = "dispatcher-li", "duty-chief-wang"  # the drafter and the second person


@pytest_asyncio.fixture(loop_scope="function")
async def running(make_service, mosquitto) -> AsyncIterator[tuple[Service, httpx.AsyncClient, int]]:
    """The service (alerts as Exercise), an in-process HTTP client without a token, and an open rainstorm."""
    service, _ = await make_service(cap_status="Exercise")  # a drill: its alerts go out as CAP status Exercise
    incident_id = await open_rain_incident(service, mosquitto.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                                 base_url="http://yingji.test") as http:
        yield service, http, incident_id


def doc(xml: bytes | str) -> etree._Element:
    return etree.fromstring(xml.encode() if isinstance(xml, str) else xml)


def text(root: etree._Element, path: str) -> list[str]:
    return [el.text or "" for el in root.iterfind(path, CAP)]


def feed_entries(body: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(body)  # well-formed, or this raises
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    return [{"id": e.findtext("a:id", namespaces=ATOM), "title": e.findtext("a:title", namespaces=ATOM),
             "updated": e.findtext("a:updated", namespaces=ATOM),
             "href": e.find("a:link[@rel='alternate']", ATOM).get("href"),
             "type": e.find("a:link[@rel='alternate']", ATOM).get("type")}
            for e in root.iterfind("a:entry", ATOM)]


async def draft(http: httpx.AsyncClient, incident_id: int, **body: Any) -> httpx.Response:
    return await http.post(f"/api/incidents/{incident_id}/alerts", json={"by": A, **body}, headers=TOKEN)


async def release(http: httpx.AsyncClient, message_id: int, by: str = B) -> httpx.Response:
    return await http.post(f"/api/alerts/messages/{message_id}/release", json={"by": by}, headers=TOKEN)


async def next_second(service: Service, after: str) -> None:
    """Wait until the service clock is past the whole second ``after`` (CAP times are whole seconds)."""
    while service.clock.now().replace(microsecond=0) <= datetime.fromisoformat(after):
        await asyncio.sleep(0.05)


# --- the two-person rule, the schema, the public view ------------------------------------------


async def test_a_drafter_cannot_release_and_a_second_person_publishes_a_valid_bilingual_alert(running) -> None:
    service, http, incident_id = running
    released_events = service.bus.subscribe(maxsize=100, kinds=frozenset({"alert.released"}))
    incident = service.store.incident(incident_id)

    drafted = await draft(http, incident_id, instruction="Keep out of underpasses and low roads.",
                          instruction_zh="请勿进入下穿通道和低洼路段。")
    assert drafted.status_code == 201, drafted.text
    d = drafted.json()
    assert (d["state"], d["msg_type"], d["scope"], d["status"], d["drafted_by"]) == (
        "draft", "Alert", "Public", "Exercise", A)
    assert d["identifier"] == f"yingji-yubei-district-synthetic-{incident_id}-1"
    assert d["preview_checked"] == "schema"
    preview = doc(d["preview_xml"])
    SCHEMA.assertValid(preview)
    assert text(preview, "cap:status") == ["Draft"]  # a preview is never actionable

    async def nothing_public() -> None:
        assert feed_entries((await http.get("/api/alerts/cap")).content) == []
        assert (await http.get(f"/api/alerts/messages/{d['id']}.xml")).status_code == 404
        assert (await http.get(f"/api/alerts/messages/{d['id']}")).status_code == 404
        assert (await http.get(f"/api/alerts/{d['alert_id']}")).status_code == 404
        assert (await http.get("/api/alerts")).json() == {"alerts": []}

    await nothing_public()
    # with the token the draft is there (its preview), with its open-draft marker
    with_token = await http.get(f"/api/alerts/messages/{d['id']}.xml", headers=TOKEN)
    assert with_token.status_code == 200 and text(doc(with_token.content), "cap:status") == ["Draft"]
    [listed] = (await http.get("/api/alerts", headers=TOKEN)).json()["alerts"]
    assert (listed["state"], listed["open_draft"]["id"], listed["latest"]) == ("unreleased", d["id"], None)

    # the drafter cannot release it, not even written differently
    for same in (A, " Dispatcher-LI "):
        refused = await release(http, d["id"], by=same)
        assert refused.status_code == 409 and "a second person must release it" in refused.json()["detail"]
    await nothing_public()
    assert released_events.queue.empty()
    assert (await http.post(f"/api/alerts/messages/{d['id']}/release", json={"by": B})).status_code == 401

    out = await release(http, d["id"])
    assert out.status_code == 200, out.text
    r = out.json()
    assert (r["state"], r["released_by"], r["drafted_by"], r["references"]) == ("released", B, A, None)
    event = released_events.queue.get_nowait()
    assert event.data["identifier"] == d["identifier"] and event.data["released_by"] == B

    # public now: the feed lists it, its document is served as CAP and is valid CAP 1.2
    feed = await http.get("/api/alerts/cap")
    assert feed.status_code == 200 and feed.headers["content-type"] == "application/atom+xml"
    [entry] = feed_entries(feed.content)
    assert entry["href"] == f"http://yingji.test/api/alerts/messages/{d['id']}.xml"
    assert entry["type"] == "application/cap+xml" and "系统研判" in entry["title"]
    got = await http.get(f"/api/alerts/messages/{d['id']}.xml")
    assert got.status_code == 200 and got.headers["content-type"] == "application/cap+xml"
    root = doc(got.content)
    SCHEMA.assertValid(root)
    assert text(root, "cap:identifier") == [d["identifier"]]
    assert text(root, "cap:sender") == [r["sender"]] == ["yingji@yubei-district-synthetic"]
    assert text(root, "cap:status") == ["Exercise"] and text(root, "cap:msgType") == ["Alert"]
    assert text(root, "cap:scope") == ["Public"] and text(root, "cap:references") == []
    sent = datetime.fromisoformat(text(root, "cap:sent")[0])
    assert sent == datetime.fromisoformat(r["sent"]) and sent.utcoffset().total_seconds() == 8 * 3600
    assert text(root, "cap:info/cap:language") == ["zh-CN", "en-US"]
    assert text(root, "cap:info/cap:severity") == [SEVERITY[Level(incident.level)]] * 2
    assert text(root, "cap:info/cap:event") == ["暴雨", "Rainstorm"]
    zh_desc, en_desc = text(root, "cap:info/cap:description")
    assert en_desc.startswith("Yingji assessment (not an official meteorological or hydrological warning)")
    assert zh_desc.startswith("系统研判（非气象/水文部门正式预警）")
    assert "(Yingji assessment)" in text(root, "cap:info/cap:headline")[1]
    assert text(root, "cap:info/cap:instruction") == ["请勿进入下穿通道和低洼路段。",
                                                      "Keep out of underpasses and low roads."]
    # a rainstorm has no modelled hazard area: a 1 km circle around the incident (CAP: "lat,lon radius")
    lat, lon = (f"{v:.5f}".rstrip("0").rstrip(".") for v in (incident.lat, incident.lon))
    assert text(root, "cap:info/cap:area/cap:circle") == [f"{lat},{lon} 1"] * 2
    assert all(a for a in text(root, "cap:info/cap:area/cap:areaDesc"))
    # the stored bytes are what is served, and the per-alert view shows one released message
    view = (await http.get(f"/api/alerts/{d['alert_id']}")).json()
    assert view["state"] == "active" and [m["id"] for m in view["messages"]] == [d["id"]]
    assert view["open_draft"] is None


# --- updates, cancels and the feed ------------------------------------------------------------


async def test_update_and_cancel_reference_the_previous_release_and_the_feed_shows_the_newest(running) -> None:
    service, http, incident_id = running
    first = (await draft(http, incident_id)).json()
    assert (await release(http, first["id"])).status_code == 200
    alert_xml = doc((await http.get(f"/api/alerts/messages/{first['id']}.xml")).content)

    # one Alert per alert: the next one is an Update (by default)
    again = await draft(http, incident_id, msg_type="Alert")
    assert again.status_code == 409 and "Update" in again.json()["detail"]
    update = await draft(http, incident_id, note="Rain still heavy; area unchanged.")
    assert update.status_code == 201 and update.json()["msg_type"] == "Update"
    u = update.json()
    assert (await release(http, u["id"], by=B)).status_code == 200
    update_xml = doc((await http.get(f"/api/alerts/messages/{u['id']}.xml")).content)
    SCHEMA.assertValid(update_xml)
    expected = ",".join(text(alert_xml, f"cap:{k}")[0] for k in ("sender", "identifier", "sent"))
    assert text(update_xml, "cap:references") == [expected]
    assert text(update_xml, "cap:note") == ["Rain still heavy; area unchanged."]
    assert text(update_xml, "cap:incidents") == text(alert_xml, "cap:incidents") == [
        f"yingji-yubei-district-synthetic-{incident_id}"]

    # a second alert (another incident), released later: the feed lists each alert's newest message,
    # newest first
    now = service.clock.now()
    other = service.store.insert_incident(
        kind="landslide", sensor_id=None, level=int(Level.YELLOW), status="open", lon=106.62, lat=29.78,
        on_water=False, opened_at=now, updated_at=now,
        detail={"title": "Cracks above Shanjiao village", "title_zh": "山脚村上方边坡开裂",
                "place": {"id": None, "name": "Shanjiao village slope", "name_zh": "山脚村边坡"},
                "reason": "reported by a villager",
                "reason_zh": "村民报告"})
    await next_second(service, u_sent := (await http.get(f"/api/alerts/messages/{u['id']}")).json()["sent"])
    second = (await draft(http, other.id, by="dispatcher-zhao")).json()
    assert (await release(http, second["id"], by=A)).status_code == 200  # A did not draft this one
    landslide_xml = doc((await http.get(f"/api/alerts/messages/{second['id']}.xml")).content)
    SCHEMA.assertValid(landslide_xml)
    # the slope and its run-out: polygons (no circle), severity from yellow
    assert text(landslide_xml, "cap:info/cap:area/cap:circle") == []
    assert len(text(landslide_xml, "cap:info/cap:area/cap:polygon")) >= 2
    assert text(landslide_xml, "cap:info/cap:severity") == ["Moderate", "Moderate"]
    assert text(landslide_xml, "cap:info/cap:area/cap:areaDesc") == ["山脚村边坡", "Shanjiao village slope"]
    entries = feed_entries((await http.get("/api/alerts/cap")).content)
    assert [e["href"].rsplit("/", 1)[1] for e in entries] == [f"{second['id']}.xml", f"{u['id']}.xml"]
    assert entries[1]["updated"] == datetime.fromisoformat(u_sent).isoformat()
    assert len({e["id"] for e in entries}) == 2

    # the Cancel references the Update exactly; it ends the alert
    await next_second(service, u_sent)
    cancel = await draft(http, incident_id, msg_type="Cancel", note="Rain has stopped; the warning is lifted.",
                         by="duty-chief-wang")
    assert cancel.status_code == 201, cancel.text
    c = cancel.json()
    assert (await release(http, c["id"], by=A)).status_code == 200
    cancel_xml = doc((await http.get(f"/api/alerts/messages/{c['id']}.xml")).content)
    SCHEMA.assertValid(cancel_xml)
    assert text(cancel_xml, "cap:msgType") == ["Cancel"]
    assert text(cancel_xml, "cap:references") == [
        ",".join(text(update_xml, f"cap:{k}")[0] for k in ("sender", "identifier", "sent"))]
    assert text(cancel_xml, "cap:info/cap:responseType") == ["AllClear", "AllClear"]
    assert text(cancel_xml, "cap:info/cap:language") == ["zh-CN", "en-US"]
    after = await draft(http, incident_id)
    assert after.status_code == 409 and "cancelled" in after.json()["detail"]
    view = (await http.get(f"/api/alerts/{c['alert_id']}")).json()
    assert view["state"] == "cancelled"
    assert [(m["msg_type"], m["state"]) for m in view["messages"]] == [
        ("Alert", "released"), ("Update", "released"), ("Cancel", "released")]
    # the feed now shows the Cancel as that alert's newest message
    entries = feed_entries((await http.get("/api/alerts/cap")).content)
    assert [e["href"].rsplit("/", 1)[1] for e in entries] == [f"{c['id']}.xml", f"{second['id']}.xml"]
    assert entries[0]["title"].startswith("解除：")


# --- withdrawal, conflicts, bad requests -------------------------------------------------------


async def test_withdrawn_drafts_one_open_draft_bad_bodies_and_unknown_things(running) -> None:
    service, http, incident_id = running
    assert (await draft(http, incident_id, msg_type="Update")).status_code == 409  # nothing released to update
    assert (await draft(http, incident_id, msg_type="Cancel")).status_code == 409

    first = await draft(http, incident_id)
    assert first.status_code == 201
    f = first.json()
    two = await draft(http, incident_id, by="someone-else")
    assert two.status_code == 409 and f"message {f['id']}" in two.json()["detail"]

    out = await http.post(f"/api/alerts/messages/{f['id']}/withdraw",
                          json={"by": B, "reason": "wrong area: the storm moved east"}, headers=TOKEN)
    assert out.status_code == 200, out.text
    assert (out.json()["state"], out.json()["withdrawn_by"]) == ("withdrawn", B)
    assert (await release(http, f["id"])).status_code == 409  # a withdrawn draft is never released
    again = await http.post(f"/api/alerts/messages/{f['id']}/withdraw", json={"by": B, "reason": "x"}, headers=TOKEN)
    assert again.status_code == 409
    assert (await http.get(f"/api/alerts/messages/{f['id']}.xml")).status_code == 404
    assert feed_entries((await http.get("/api/alerts/cap")).content) == []

    # after the withdrawal a new draft may be made; it has the next identifier
    redo = await draft(http, incident_id, scope="Restricted", restriction="District emergency agencies only")
    assert redo.status_code == 201 and redo.json()["identifier"].endswith(f"-{incident_id}-2")
    # a released Restricted (inter-agency) message is not public
    assert (await release(http, redo.json()["id"])).status_code == 200
    mid = redo.json()["id"]
    assert (await http.get(f"/api/alerts/messages/{mid}.xml")).status_code == 404
    assert feed_entries((await http.get("/api/alerts/cap")).content) == []
    restricted = doc((await http.get(f"/api/alerts/messages/{mid}.xml", headers=TOKEN)).content)
    SCHEMA.assertValid(restricted)
    assert text(restricted, "cap:scope") == ["Restricted"]
    assert text(restricted, "cap:restriction") == ["District emergency agencies only"]
    assert len(feed_entries((await http.get("/api/alerts/cap", headers=TOKEN)).content)) == 1

    # bad bodies: 422 with the reason
    url = f"/api/incidents/{incident_id}/alerts"
    for body, words in [
        ({}, "by"),
        ({"by": "   "}, "by"),
        ({"by": A, "msg_type": "Warning"}, "msg_type"),
        ({"by": A, "scope": "Private"}, "scope"),
        ({"by": A, "scope": "Restricted"}, "restriction text"),
        ({"by": A, "restriction": "agencies"}, "only for scope Restricted"),
        ({"by": A, "instruction": "Leave now."}, "both languages"),
        ({"by": A, "msgType": "Update"}, "msgType"),
        ({"by": A, "note": "x" * 501}, "note"),
    ]:
        bad = await http.post(url, json=body, headers=TOKEN)
        assert bad.status_code == 422 and words in bad.text, (body, bad.text)
    assert (await http.post(f"/api/alerts/messages/{mid}/withdraw", json={"by": B}, headers=TOKEN)).status_code == 422
    assert (await http.post(url, json={"by": A})).status_code == 401  # no token

    # incidents that have nothing to warn of: refused with the reason
    now = service.clock.now()
    for kind, level, words in [("patrol", Level.BLUE, "not a hazard"), ("rainstorm", Level.NONE, "no warning level")]:
        row = service.store.insert_incident(kind=kind, sensor_id=None, level=int(level), status="open", lon=106.7,
                                            lat=29.8, on_water=False, opened_at=now, updated_at=now,
                                            detail={"title": "t", "title_zh": "t"})
        nothing = await draft(http, row.id)
        assert nothing.status_code == 422 and words in nothing.json()["detail"], nothing.text
    closed = service.store.insert_incident(kind="fire", sensor_id=None, level=int(Level.ORANGE), status="closed",
                                           lon=106.7, lat=29.8, on_water=False, opened_at=now, updated_at=now,
                                           detail={"title": "t", "title_zh": "t"})
    late = await draft(http, closed.id)
    assert late.status_code == 409 and "nothing to warn of" in late.json()["detail"]
    # refused drafts leave no alert behind
    assert [a["incident_id"] for a in (await http.get("/api/alerts", headers=TOKEN)).json()["alerts"]] == [incident_id]

    # unknown things: 404
    assert (await http.post("/api/incidents/99999/alerts", json={"by": A}, headers=TOKEN)).status_code == 404
    assert (await release(http, 99999)).status_code == 404
    assert (await http.get("/api/alerts/99999", headers=TOKEN)).status_code == 404
    assert (await http.get("/api/alerts/messages/99999.xml", headers=TOKEN)).status_code == 404
    assert service.store.incident(incident_id).status == "open"


# --- closing, the schema at run time, the hazard area ---------------------------------------------


async def test_closing_an_incident_with_an_alert_in_force_asks_a_person_for_a_cancel(running) -> None:
    service, http, incident_id = running
    needed = service.bus.subscribe(maxsize=100, kinds=frozenset({"alert.cancel_needed"}))
    d = (await draft(http, incident_id)).json()
    assert (await release(http, d["id"])).status_code == 200
    assert service.check_alerts(service.clock.now()) == []  # open: nothing to ask

    now = service.clock.now()
    detail = {**service.store.incident(incident_id).detail, "closed_reason": "hazard ended"}
    service.store.update_incident(incident_id, status="closed", updated_at=now, detail=detail)
    assert service.check_alerts(now) == [d["alert_id"]]
    assert service.check_alerts(now) == []  # once
    event = needed.queue.get_nowait()
    assert (event.data["alert_id"], event.data["incident_id"], event.data["identifier"]) == (
        d["alert_id"], incident_id, d["identifier"])
    assert "hazard ended" in event.data["reason"] and needed.queue.empty()
    # the service did not cancel by itself
    assert (await http.get(f"/api/alerts/{d['alert_id']}")).json()["state"] == "active"
    assert (await http.get("/api/alerts")).json()["alerts"][0]["cancel_needed"] is True

    # a closed incident's alert takes only a Cancel
    update = await draft(http, incident_id, msg_type="Update")
    assert update.status_code == 409 and "only be cancelled" in update.json()["detail"]
    cancel = await draft(http, incident_id, msg_type="Cancel")
    assert cancel.status_code == 201
    assert (await release(http, cancel.json()["id"])).status_code == 200
    assert (await http.get(f"/api/alerts/{d['alert_id']}")).json()["state"] == "cancelled"


async def test_without_the_schema_nothing_is_released_and_a_flood_is_warned_over_its_extent(running) -> None:
    service, http, _ = running
    now = service.clock.now()
    # a flood incident whose model drew an extent of two pieces, one outlined by 400 points
    big = Point(106.80, 29.70).buffer(0.02, quad_segs=100)
    small = Polygon([(106.85, 29.72), (106.86, 29.72), (106.86, 29.73), (106.85, 29.73)])
    incident = service.store.insert_incident(
        kind="flood", sensor_id=None, level=int(Level.RED), status="open", lon=106.80, lat=29.70, on_water=True,
        opened_at=now, updated_at=now,
        detail={"title": "Yulin river over its banks", "title_zh": "御临河漫堤", "place": "Yulin river, Luoqi reach",
                "place_zh": "御临河洛碛段",
                "members": {"yulin-gauge": {"sensor_id": "yulin-gauge", "level": "red",
                                            "model": {"extent": {"geometry": mapping(MultiPolygon([big, small]))}}}}})
    # a deployment whose configured CAP schema is not there
    service.settings = service.settings.model_copy(update={"cap_schema": Path("/nonexistent/CAP-v1.2-schema.xsd")})
    drafted = await draft(http, incident.id)
    assert drafted.status_code == 201 and drafted.json()["preview_checked"] == "rules"
    refused = await release(http, drafted.json()["id"])
    assert refused.status_code == 503 and "cap_schema" in refused.json()["detail"]
    assert (await http.get(f"/api/alerts/messages/{drafted.json()['id']}.xml")).status_code == 404
    assert feed_entries((await http.get("/api/alerts/cap")).content) == []

    service.settings = service.settings.model_copy(update={"cap_schema": None})
    out = await release(http, drafted.json()["id"])
    assert out.status_code == 200, out.text
    root = doc((await http.get(f"/api/alerts/messages/{drafted.json()['id']}.xml")).content)
    SCHEMA.assertValid(root)
    assert text(root, "cap:info/cap:severity") == ["Extreme", "Extreme"]
    assert text(root, "cap:info/cap:area/cap:circle") == []
    polygons = text(root, "cap:info/cap:area/cap:polygon")
    assert len(polygons) == 4  # two pieces, in each language
    rings = [[tuple(float(v) for v in p.split(",")) for p in poly.split()] for poly in polygons[:2]]
    assert all(4 <= len(r) <= 100 and r[0] == r[-1] for r in rings)
    covered = MultiPolygon([Polygon([(lon, lat) for lat, lon in r]) for r in rings])
    # the simplified outline still covers the extent (to the 1e-5 degree rounding of CAP coordinates)
    assert covered.buffer(2e-5).contains(big) and covered.buffer(2e-5).contains(small)
    assert "flood extent" in "".join(text(root, "cap:info/cap:description"))


# --- pure parts: the area, the schema locator ------------------------------------------------------


def test_an_area_in_many_pieces_is_merged_into_few_that_cover_it() -> None:
    squares = [Polygon([(106.5 + i * 0.01, 29.6), (106.505 + i * 0.01, 29.6), (106.505 + i * 0.01, 29.605),
                        (106.5 + i * 0.01, 29.605)]) for i in range(25)]
    area = cap_area(MultiPolygon(squares))
    parts = list(getattr(area, "geoms", [area]))
    assert 1 <= len(parts) <= MAX_AREA_POLYGONS
    assert all(area.contains(s) for s in squares)
    holed = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    assert cap_area(holed).equals(Polygon([(0, 0), (4, 0), (4, 4), (0, 4)]))  # CAP has no holes: warned whole
    with pytest.raises(ValueError, match="no polygon"):
        cap_area(Point(0, 0))


def test_hazard_areas_come_from_the_incident_models() -> None:
    plume = Polygon([(106.6, 29.7), (106.62, 29.7), (106.62, 29.71)])
    geom, what, what_zh = hazard_area("chemical_leak", 106.6, 29.7,
                                      {"members": {"gas-1:h2s": {"model": {"plume": {"warm_zone": mapping(plume),
                                                                                      "hot_zone": None}}}}})
    assert geom.equals(plume) and "plume" in what and what_zh
    spread = Point(106.7, 29.9).buffer(0.003)
    geom, what, _ = hazard_area("fire", 106.7, 29.9, {"members": {"cam-1": {"model": {"spread": {
        "perimeter": mapping(spread)}}}}})
    assert geom.equals(spread) and "fire spread" in what
    assert hazard_area("rainstorm", 106.7, 29.9, {"members": {"rain-1": {"model": {}}}}) == (None, "", "")
    assert hazard_area("flood", 106.7, 29.9, {"members": {"g": {"model": {"extent": {"error": "no DEM"}}}}})[0] is None
    # a landslide without terrain has no run-out to draw
    assert hazard_area("landslide", 106.7, 29.9, {})[0] is None
    # ground rising to the north (about 45°): the debris runs south, beyond the slope's own 300 m disk
    steep = hazard_area("landslide", 106.7, 29.9, {}, elevation=lambda lons, lats: (lats - 29.0) * 111_000.0)[0]
    assert steep.contains(Point(106.7, 29.9))
    assert steep.bounds[1] < 29.9 - 0.01 and steep.bounds[3] < 29.9 + 0.004


def test_the_schema_locator_finds_the_official_file_or_says_what_is_missing(tmp_path) -> None:
    assert locate_cap_schema() == cap_schema_path()
    assert locate_cap_schema(cap_schema_path()) == cap_schema_path()
    with pytest.raises(CapSchemaMissing, match="not a file"):
        locate_cap_schema(tmp_path / "missing.xsd")
    other = tmp_path / "other.xsd"
    other.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x" version="1"/>')
    with pytest.raises(CapSchemaMissing, match="not the CAP 1.2 schema"):
        locate_cap_schema(other)
