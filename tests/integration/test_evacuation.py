"""Evacuation zones, shelters, counts and the reports sent up, through the service's HTTP API in process:
a flood of the Yulin river opened from a gauge reading over MQTT gets a zone over its modelled extent and
one drawn on the map at Longxing; counts are kept and the latest shown; a zone closes only when nobody
remains (or those who remain are named as refusing); a shelter over its capacity is told once per
crossing; reports go up in order (首报, 续报 1, 2, 终报); an orange incident without an initial report is
told overdue exactly once on a stepped service clock, also across a restart."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from shapely.geometry import box, mapping

from command.api.app import create_app
from command.clock import ManualClock
from command.linkage.evacuation import estimate_population
from command.linkage_service import incident_hazard
from command.runtime import Service
from command.settings import Settings
from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import DEADLINE_S, _publish, district_copy, running_service

GAUGE = "yulin-level"
# A zone drawn at Longxing: the town's centre and its elderly care home inside; the middle school's shelter
# about 480 m north-west of it, the central park's about 970 m west.
LONGXING = box(106.786, 29.765, 106.800, 29.778)
SCHOOL, PARK = "shelter-longxing-school", "shelter-longxing-park"


def _api(service: Service, *, token: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://yingji",
                             headers={"Authorization": f"Bearer {service.token}"} if token else {})


def _events(service: Service, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in service.store.events(limit=100_000) if e.kind == kind]


async def _flood(service: Service, broker_url: str) -> int:
    """A Yulin level half a metre over its warning level at Longxing, over MQTT: the flood incident (with
    its modelled extent) it opens."""
    spec = service.registry[GAUGE]
    level = spec.thresholds["warning_m"] + 0.5
    senml = json.dumps([{"bn": f"urn:dev:yingji:{GAUGE}:", "bt": time.time(), "n": "level", "u": "m", "v": level}])
    await _publish(broker_url, [(f"yingji/sensors/{GAUGE}/senml", senml)])
    async with asyncio.timeout(DEADLINE_S):
        while True:
            for row in service.store.incidents():
                if row.sensor_id == GAUGE and incident_hazard(row, service.district) is not None:
                    return row.id
            await asyncio.sleep(0.05)


def _polygon(geom: Any) -> dict[str, Any]:
    return json.loads(json.dumps(mapping(geom)))  # tuples → lists, as a client sends it


async def test_zones_counts_closing_and_reports_of_a_flood(make_service, mosquitto: MosquittoInstance) -> None:
    service, _ = await make_service()
    api = _api(service)
    flood_id = await _flood(service, mosquitto.url)
    flood = service.store.incident(flood_id)
    assert (flood.kind, flood.level) == ("flood", 2)  # yellow: at the warning level

    # -- a zone over the modelled flood extent
    r = await api.post(f"/api/incidents/{flood_id}/evacuation-zones",
                       json={"by": "dispatcher-zhao", "name": "Yulin flood extent", "name_zh": "御临河淹没范围",
                             "from_hazard": True})
    assert r.status_code == 201, r.text
    hz = r.json()["zone"]
    assert (hz["incident_id"], hz["source"], hz["state"], hz["figures"]) == (flood_id, "hazard", "open", None)
    expected = estimate_population(incident_hazard(flood, service.district), facilities=service.district.facilities,
                                   townships=service.district.townships)
    assert hz["population"]["people"] == expected.people > 0 and hz["population"]["estimate"] is True
    assert any(p["id"] == "care-luoqi" and p["counted"] for p in hz["population"]["places"])  # the Luoqi care home
    assert hz["shelters"] and all(s["distance_m"] >= 300 for s in hz["shelters"])
    assert hz["shelter_choice"]["covered"] == (sum(s["free"] for s in hz["shelters"]) >= hz["population"]["people"])

    # -- a zone drawn at Longxing
    r = await api.post(f"/api/incidents/{flood_id}/evacuation-zones",
                       json={"by": "dispatcher-zhao", "name": "Longxing old town", "name_zh": "龙兴老街",
                             "area": _polygon(LONGXING)})
    assert r.status_code == 201, r.text
    zone = r.json()["zone"]
    zid = zone["id"]
    assert zone["source"] == "polygon" and zone["geometry"]["type"] == "Polygon"
    pop = zone["population"]
    assert (pop["people"], pop["method"], pop["townships_people"], pop["facilities_people"]) == (
        731, "townships_area_weighted", 731, 120)
    assert [(p["id"], p["counted"]) for p in pop["places"]] == [("town-longxing", False), ("care-longxing", True)]
    assert [(t["id"], t["population_estimate"]) for t in pop["townships"]] == [("twp-longxing", 731)]
    assert [(s["id"], s["capacity"], s["distance_m"]) for s in zone["shelters"]] == [(SCHOOL, 1500, 484)]
    assert zone["shelter_choice"]["covered"] is True and zone["shelter_choice"]["shortfall"] == 0
    assert [e["id"] for e in _events(service, "evacuation.zone_opened")] == [hz["id"], zid]

    # -- closing needs counts
    r = await api.post(f"/api/evacuation-zones/{zid}/close", json={"by": "chief-wang", "reason": "all out"})
    assert r.status_code == 409 and "has no counts" in r.json()["detail"], r.text

    first = {"by": "crew-li", "evacuated": 500, "remaining": 230, "total": 800, "note": "village register"}
    r = await api.post(f"/api/evacuation-zones/{zid}/counts", json=first)
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/counts",
                       json={"by": "crew-zhou", "evacuated": 700, "remaining": 30, "sheltered": 650, "injured": 2,
                             "dead": 0})
    assert r.status_code == 201, r.text
    view = (await api.get(f"/api/evacuation-zones/{zid}")).json()["zone"]
    f = view["figures"]
    assert (f["evacuated"], f["remaining"], f["sheltered"], f["injured"], f["dead"], f["missing"], f["total"],
            f["by"], f["counts"]) == (700, 30, 650, 2, 0, None, 800, "crew-zhou", 2)
    assert [(c["seq"], c["by"], c["evacuated"], c["remaining"], c["total"], c["note"]) for c in view["counts"]] == [
        (1, "crew-li", 500, 230, 800, "village register"), (2, "crew-zhou", 700, 30, None, "")]

    # bad counts: refused with the reason, nothing recorded
    bad = [({"by": "x", "evacuated": -1, "remaining": 0}, "evacuated"),
           ({"by": "x", "evacuated": 12.5, "remaining": 0}, "evacuated"),
           ({"by": "x", "evacuated": "720", "remaining": 0}, "evacuated"),
           ({"by": "x", "evacuated": 720, "remaining": True}, "remaining"),
           ({"by": "x", "evacuated": 720}, "remaining"),
           ({"by": "x", "evacuated": 720, "remaining": 0, "evacuees": 3}, "evacuees"),
           ({"by": "", "evacuated": 720, "remaining": 0}, "by"),
           ({"by": "x", "evacuated": 720, "remaining": 0, "at": "2026-07-01T12:00:00"}, "timezone"),
           ({"by": "x", "evacuated": 720, "remaining": 10, "sheltered": 721}, "sheltered (721) cannot exceed"),
           ({"by": "x", "evacuated": 780, "remaining": 30}, "exceeds the zone's total of 800 people"),
           ({"by": "x", "evacuated": 600, "remaining": 0}, "evacuated is a running total"),
           ({"by": "x", "evacuated": 720, "remaining": 0, "at": (service.clock.now() + timedelta(hours=1)).isoformat()},
            "ahead of the service clock"),
           ({"by": "x", "evacuated": 720, "remaining": 0, "at": (service.clock.now() - timedelta(hours=1)).isoformat()},
            "before the zone's latest count")]
    for body, why in bad:
        r = await api.post(f"/api/evacuation-zones/{zid}/counts", json=body)
        assert r.status_code == 422 and why in r.text, (body, r.text)
    assert len((await api.get(f"/api/evacuation-zones/{zid}")).json()["zone"]["counts"]) == 2

    # people remain: closing is refused unless all who remain are named as refusing to leave
    r = await api.post(f"/api/evacuation-zones/{zid}/close", json={"by": "chief-wang", "reason": "done"})
    assert r.status_code == 409 and "still has 30 people remaining" in r.json()["detail"], r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/close", json={"by": "chief-wang", "reason": "done", "refusing": 5})
    assert r.status_code == 409 and "does not match the 30 remaining" in r.json()["detail"], r.text

    # a report snapshot now, before the last count (frozen: later counts do not change it)
    assert (await api.post(f"/api/incidents/{flood_id}/reports",
                           json={"by": "duty-chen", "kind": "follow_up"})).status_code == 409
    assert (await api.post(f"/api/incidents/{flood_id}/reports",
                           json={"by": "duty-chen", "kind": "final"})).status_code == 409
    r = await api.post(f"/api/incidents/{flood_id}/reports", json={"by": "duty-chen", "kind": "initial"})
    assert r.status_code == 201, r.text
    initial = r.json()["report"]
    assert (initial["seq"], initial["kind"], initial["label_zh"], initial["due_at"], initial["on_time"]) == (
        1, "initial", "首报", None, None)  # yellow: no deadline
    data = initial["data"]
    assert data["incident"]["place"] == service.registry[GAUGE].name and data["incident"]["level_zh"] == "黄色"
    assert (data["evacuation"]["zones_total"], data["evacuation"]["evacuated"], data["evacuation"]["remaining"],
            data["evacuation"]["sheltered"]) == (2, 700, 30, 650)
    assert data["casualties"] == {"dead": 0, "injured": 2, "missing": 0}
    tasks = (await api.get("/api/tasks", params={"incident_id": flood_id})).json()["tasks"]
    assert data["departments"]["total"] == len(tasks) > 0
    assert sum(data["departments"]["by_status"].values()) == len(tasks)
    assert data["vehicles"] == {"total": 0, "by_state": {}, "plans": []}
    assert initial["text_zh"].startswith("【首报】") and "已转移 700 人，尚未转移 30 人" in initial["text_zh"]
    assert "死亡 0 人，受伤 2 人，失踪 0 人" in initial["text_zh"] and "尚未宣布应急响应" in initial["text_zh"]
    assert initial["text_en"].startswith("[INITIAL REPORT]")

    # the last count, then the zone closes; no count is taken into a closed zone; reopened and closed again
    r = await api.post(f"/api/evacuation-zones/{zid}/counts",
                       json={"by": "crew-zhou", "evacuated": 730, "remaining": 0, "sheltered": 690})
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/close", json={"by": "chief-wang", "reason": "everyone out"})
    assert r.status_code == 200, r.text
    closed = r.json()["zone"]
    assert closed["state"] == "closed"
    assert {k: closed["closed"][k] for k in ("by", "reason", "evacuated", "remaining", "refusing")} == {
        "by": "chief-wang", "reason": "everyone out", "evacuated": 730, "remaining": 0, "refusing": None}
    r = await api.post(f"/api/evacuation-zones/{zid}/counts", json={"by": "x", "evacuated": 730, "remaining": 0})
    assert r.status_code == 409 and "is closed" in r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/close", json={"by": "chief-wang", "reason": "again"})
    assert r.status_code == 409 and "already closed" in r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/reopen", json={"by": "chief-wang", "reason": "people went back"})
    assert r.status_code == 200 and r.json()["zone"]["state"] == "open" and r.json()["zone"]["closed"] is None
    assert (await api.post(f"/api/evacuation-zones/{zid}/reopen",
                           json={"by": "chief-wang", "reason": "x"})).status_code == 409
    r = await api.post(f"/api/evacuation-zones/{zid}/counts",
                       json={"by": "crew-li", "evacuated": 735, "remaining": 3, "note": "five went back, two out"})
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/evacuation-zones/{zid}/close",
                       json={"by": "chief-wang", "reason": "remaining people refuse to leave", "refusing": 3})
    assert r.status_code == 200, r.text
    assert r.json()["zone"]["closed"]["refusing"] == 3
    assert [a["action"] for a in r.json()["zone"]["actions"]] == ["opened", "closed", "reopened", "closed"]
    assert len(_events(service, "evacuation.counts")) == 4
    assert [e["id"] for e in _events(service, "evacuation.zone_closed")] == [zid, zid]
    assert [e["id"] for e in _events(service, "evacuation.zone_reopened")] == [zid]

    # the incident's evacuation: both zones, the shelters, the totals of the latest figures
    ev = (await api.get(f"/api/incidents/{flood_id}/evacuation")).json()
    assert [z["id"] for z in ev["zones"]] == [hz["id"], zid] and "counts" not in ev["zones"][1]
    t = ev["totals"]
    assert (t["zones_total"], t["zones_open"], t["zones_counted"], t["evacuated"], t["remaining"], t["sheltered"],
            t["injured"], t["dead"]) == (2, 1, 1, 735, 3, 690, 2, 0)
    assert t["population_estimate"] == hz["population"]["people"] + 731
    assert SCHOOL in [s["id"] for s in ev["shelters"]]
    assert next(s for s in ev["shelters"] if s["id"] == SCHOOL)["zones"][-1] == zid

    # follow-ups numbered, the final report last and once
    for n in (1, 2):
        r = await api.post(f"/api/incidents/{flood_id}/reports",
                           json={"by": "duty-chen", "kind": "follow_up", "note": f"update {n}"})
        assert r.status_code == 201, r.text
        assert (r.json()["report"]["seq"], r.json()["report"]["label_zh"]) == (n + 1, f"续报{n}")
    follow2 = r.json()["report"]
    assert "已转移 735 人，尚未转移 3 人" in follow2["text_zh"] and "七、补充说明：update 2" in follow2["text_zh"]
    assert (await api.post(f"/api/incidents/{flood_id}/reports",
                           json={"by": "duty-chen", "kind": "initial"})).status_code == 409
    r = await api.post(f"/api/incidents/{flood_id}/reports", json={"by": "duty-chen", "kind": "final"})
    assert r.status_code == 201 and r.json()["report"]["label_zh"] == "终报"
    for kind in ("follow_up", "final"):
        r = await api.post(f"/api/incidents/{flood_id}/reports", json={"by": "duty-chen", "kind": kind})
        assert r.status_code == 409 and "takes no more reports" in r.json()["detail"], r.text
    listed = (await api.get(f"/api/incidents/{flood_id}/reports")).json()
    assert [(x["seq"], x["kind"], x["label_zh"]) for x in listed["reports"]] == [
        (1, "initial", "首报"), (2, "follow_up", "续报1"), (3, "follow_up", "续报2"), (4, "final", "终报")]
    assert listed["next_kinds"] == [] and listed["initial_due_at"] is None and listed["initial_overdue"] is None
    again = (await api.get(f"/api/reports/{initial['id']}")).json()["report"]
    assert again["data"] == data  # frozen when issued
    text = await api.get(f"/api/reports/{initial['id']}.txt")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text == initial["text_zh"] + "\n" + initial["text_en"]
    assert [e["seq"] for e in _events(service, "report.issued")] == [1, 2, 3, 4]

    # bad bodies and unknown ids
    other = await api.post("/api/incidents", json={"by": "dispatcher-zhao", "kind": "other", "level": "yellow",
                                                   "title": "Road washed out", "source": "crew",
                                                   "location": {"place": "facility:town-longxing"}})
    assert other.status_code == 201, other.text
    oid = other.json()["incident"]["id"]
    unclosed = _polygon(LONGXING)
    unclosed["coordinates"][0] = unclosed["coordinates"][0][:-1] + [[106.79, 29.79]]
    zone_cases = [
        ({"by": "x", "name": "z", "from_hazard": True}, oid, "has no hazard area"),
        ({"by": "x", "name": "z"}, flood_id, "give the zone's area"),
        ({"by": "x", "name": "z", "from_hazard": True, "area": _polygon(LONGXING)}, flood_id, "not both"),
        ({"by": "x", "name": "z", "area": {"type": "Point", "coordinates": [106.79, 29.77]}}, flood_id, "Polygon"),
        ({"by": "x", "name": "z", "area": unclosed}, flood_id, "is not closed"),
        ({"by": "x", "name": "z", "area": _polygon(box(105.0, 29.0, 105.01, 29.01))}, flood_id, "lies outside"),
        ({"by": "x", "name": "", "area": _polygon(LONGXING)}, flood_id, "name"),
    ]
    for body, incident_id, why in zone_cases:
        r = await api.post(f"/api/incidents/{incident_id}/evacuation-zones", json=body)
        assert r.status_code == 422 and why in r.text, (body, r.text)
    for bad_report in ({"by": "x", "kind": "update"}, {"by": "x"}, {"by": "x", "kind": "initial", "extra": 1}):
        assert (await api.post(f"/api/incidents/{oid}/reports", json=bad_report)).status_code == 422
    for path in ("/api/evacuation-zones/999", "/api/incidents/999/evacuation", "/api/incidents/999/reports",
                 "/api/reports/999", "/api/reports/999.txt"):
        r = await api.get(path)
        assert r.status_code == 404, (path, r.text)
    for path, body in (("/api/incidents/999/evacuation-zones", {"by": "x", "name": "z", "from_hazard": True}),
                       ("/api/evacuation-zones/999/counts", {"by": "x", "evacuated": 1, "remaining": 0}),
                       ("/api/evacuation-zones/999/close", {"by": "x", "reason": "r"}),
                       ("/api/evacuation-zones/999/reopen", {"by": "x", "reason": "r"}),
                       ("/api/incidents/999/reports", {"by": "x", "kind": "initial"})):
        r = await api.post(path, json=body)
        assert r.status_code == 404, (path, r.text)
    # changing anything needs the token
    anon = _api(service, token=False)
    assert (await anon.post(f"/api/evacuation-zones/{zid}/reopen", json={"by": "x", "reason": "r"})).status_code == 401
    assert (await anon.post(f"/api/incidents/{oid}/reports", json={"by": "x", "kind": "initial"})).status_code == 401
    assert (await anon.get(f"/api/evacuation-zones/{zid}")).status_code == 200


async def test_shelter_occupancy_and_over_capacity(make_service) -> None:
    service, _ = await make_service()
    api = _api(service)
    over = lambda: _events(service, "shelter.over_capacity")  # noqa: E731

    for people in (1400, 1600, 1700):
        r = await api.post(f"/api/shelters/{SCHOOL}/occupancy", json={"by": "shelter-manager-he", "people": people})
        assert r.status_code == 201, r.text
    s = r.json()["shelter"]
    assert (s["capacity"], s["occupancy"], s["free"], s["over_capacity"], s["over_by"]) == (1500, 1700, 0, True, 200)
    assert [e["occupancy"] for e in _events(service, "shelter.occupancy")] == [1400, 1600, 1700]
    assert [(e["id"], e["occupancy"]) for e in over()] == [(SCHOOL, 1600)]  # once, when it went over
    assert over()[0]["reason"] == "Longxing Middle School shelter holds 1600 people, 100 over its capacity of 1500"

    listed = (await api.get("/api/shelters")).json()
    assert [x["id"] for x in listed["shelters"]] == sorted(f.id for f in service.district.facilities
                                                           if f.kind == "shelter")
    school = next(x for x in listed["shelters"] if x["id"] == SCHOOL)
    assert (school["over_capacity"], school["occupancy_by"]) == (True, "shelter-manager-he")
    assert listed["over_capacity"] == [SCHOOL]
    park = next(x for x in listed["shelters"] if x["id"] == PARK)
    assert (park["capacity"], park["occupancy"], park["free"], park["over_capacity"]) == (4000, None, 4000, False)

    # back within capacity, then over again: told again
    for people in (1000, 1501):
        assert (await api.post(f"/api/shelters/{SCHOOL}/occupancy",
                               json={"by": "shelter-manager-he", "people": people})).status_code == 201
    assert [e["occupancy"] for e in over()] == [1600, 1501]

    # a full shelter is passed over when a zone is drawn: the next nearest with room is assigned
    inc = await api.post("/api/incidents", json={"by": "dispatcher-zhao", "kind": "landslide", "level": "orange",
                                                 "title": "Slope cracking above the old town",
                                                 "source": "village_monitor",
                                                 "location": {"lon": 106.793, "lat": 29.772}})
    assert inc.status_code == 201, inc.text
    r = await api.post(f"/api/incidents/{inc.json()['incident']['id']}/evacuation-zones",
                       json={"by": "dispatcher-zhao", "name": "Old town below the slope", "area": _polygon(LONGXING)})
    assert r.status_code == 201, r.text
    zone = r.json()["zone"]
    assert [(x["id"], x["distance_m"]) for x in zone["shelters"]] == [(PARK, 967)]
    assert {"id": SCHOOL, "reason": "full (1501 of 1500 places taken)"} in zone["shelter_choice"]["skipped"]
    assert zone["name_zh"] == "Old town below the slope"  # no Chinese name given: the name stands

    # refused
    for body in ({"by": "x", "people": -1}, {"by": "x", "people": 10.5}, {"by": "x"}, {"people": 3}):
        r = await api.post(f"/api/shelters/{SCHOOL}/occupancy", json=body)
        assert r.status_code == 422, (body, r.text)
    for fid in ("shelter-nowhere", "hospital-lianglu"):
        r = await api.post(f"/api/shelters/{fid}/occupancy", json={"by": "x", "people": 3})
        assert r.status_code == 404 and "no shelter" in r.text, r.text


# -- the initial report's deadline, on a stepped service clock --------------------------------------


async def test_initial_report_overdue_exactly_once_also_across_a_restart(mosquitto: MosquittoInstance,
                                                                          yubei_folder: Path, tmp_path: Path) -> None:
    folder = district_copy(yubei_folder, tmp_path / "district")
    start = datetime.now(timezone.utc).replace(microsecond=0)
    clock = ManualClock(start)
    # the setting report_initial_within_s, set on a copy (it is read where used)
    settings = Settings(broker_url=mosquitto.url, data_dir=tmp_path / "data", district_dir=folder, api_token="t",
                        patrols=False).model_copy(update={"report_initial_within_s": 600.0})

    async def step(service: Service, seconds: float) -> None:
        clock.advance(seconds)
        await service._evacuation_tick(clock.now())

    def report(level: str, title: str, lat: float) -> dict[str, Any]:
        return {"by": "dispatcher-zhao", "kind": "other", "level": level, "title": title, "source": "hotline_12345",
                "location": {"lon": 106.79, "lat": lat}}

    async with running_service(settings, folder, clock) as service:
        api = _api(service)
        late = (await api.post("/api/incidents", json=report("orange", "Houses flooded", 29.775))).json()["incident"]
        prompt = (await api.post("/api/incidents", json=report("red", "Bridge down", 29.78))).json()["incident"]
        minor = (await api.post("/api/incidents", json=report("yellow", "Tree on the road", 29.785))).json()["incident"]
        overdue = lambda: [e["incident_id"] for e in _events(service, "report.overdue")]  # noqa: E731

        await step(service, 300)
        r = await api.post(f"/api/incidents/{prompt['id']}/reports", json={"by": "duty-chen", "kind": "initial"})
        assert r.status_code == 201 and r.json()["report"]["on_time"] is True, r.text
        assert r.json()["report"]["due_at"] == (start + timedelta(seconds=600)).isoformat()
        await step(service, 299)  # 599 s after opening
        assert overdue() == []
        await step(service, 2)  # 601 s
        assert overdue() == [late["id"]]
        event = _events(service, "report.overdue")[0]
        assert (event["due_at"], event["within_s"], event["level"]) == (
            (start + timedelta(seconds=600)).isoformat(), 600.0, "orange")
        for _ in range(5):
            await step(service, 600)
        assert overdue() == [late["id"]]  # once
        listed = (await api.get(f"/api/incidents/{late['id']}/reports")).json()
        assert listed["initial_overdue"]["due_at"] == (start + timedelta(seconds=600)).isoformat()
        assert listed["next_kinds"] == ["initial"]
        assert (await api.get(f"/api/incidents/{minor['id']}/reports")).json()["initial_due_at"] is None

    clock.advance(60)
    async with running_service(settings, folder, clock) as service:  # the same database: a restart
        await step(service, 600)
        assert [e["incident_id"] for e in _events(service, "report.overdue")] == [late["id"]]
        r = await _api(service).post(f"/api/incidents/{late['id']}/reports", json={"by": "duty-chen",
                                                                                   "kind": "initial"})
        assert r.status_code == 201 and r.json()["report"]["on_time"] is False, r.text
