"""Incidents people report and the incident's human life, through the service's HTTP API in process:
reported on the map (a point or a gazetteer place) and through the signed intake webhook, dispatched
like any other, acknowledged, confirmed, declared a response, marked a false alarm (their department
tasks cancelled), closed, reopened and merged; an unacknowledged red incident sounds its alarm and is
escalated to the duty chief exactly once, on a stepped service clock."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml

from command.api.app import create_app
from command.clock import ManualClock
from command.linkage.webhooks import signed_headers
from command.runtime import Service
from command.settings import Settings
from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import RAIN_GAUGE, district_copy, running_service

SECRET = "hotline-119-intake-secret-2026"
PHONE = "+86 138 0000 1234"


def _api(service: Service, *, token: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://yingji",
                             headers={"Authorization": f"Bearer {service.token}"} if token else {})


def _report(lon: float | None = None, lat: float | None = None, *, place: str | None = None, kind: str = "other",
            level: str = "orange", title: str = "Road washed out", source: str = "hotline_12345",
            **extra: Any) -> dict[str, Any]:
    location = {"place": place} if place is not None else {"lon": lon, "lat": lat}
    return {"by": "dispatcher-zhao", "kind": kind, "level": level, "title": title, "source": source,
            "location": location, **extra}


def _events(service: Service, kind: str, incident_id: int | None = None) -> list[dict[str, Any]]:
    out = []
    for e in service.store.events(limit=100_000):
        if e.kind == kind and (incident_id is None or e.data.get("incident_id", e.data.get("id")) == incident_id):
            out.append(e.data)
    return out


async def _open(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post("/api/incidents", json=body)
    assert r.status_code == 201, r.text
    return r.json()["incident"]


# -- reported incidents ------------------------------------------------------------------------------


async def test_reported_by_point_and_by_place_with_tasks_and_a_recon_plan(make_service) -> None:
    service, _ = await make_service()
    api = _api(service)
    gauge = service.registry[RAIN_GAUGE]  # a kilometre from a copter base

    found = await api.get("/api/gazetteer", params={"q": "龙兴", "limit": 3})
    assert found.status_code == 200
    assert [p["id"] for p in found.json()["places"]] == ["facility:town-longxing", "township:twp-longxing",
                                                         "road:longxing-ave"]
    school = (await api.get("/api/gazetteer", params={"q": "Longxing Middle School"})).json()["places"][0]
    assert school["id"] == "facility:school-longxing" and school["name_zh"] == "龙兴中学"
    assert (await api.get("/api/gazetteer", params={"q": "统景温泉不存在"})).json()["places"] == []
    for bad in ({"q": ""}, {"q": "   "}, {"q": "x" * 65}, {}):
        assert (await api.get("/api/gazetteer", params=bad)).status_code == 422, bad

    body = _report(gauge.lon, gauge.lat, description="The road to the village is under water",
                   reporter={"name": "Li Ming", "phone": PHONE})
    assert (await _api(service, token=False).post("/api/incidents", json=body)).status_code == 401
    inc = await _open(api, body)
    assert (inc["kind"], inc["level"], inc["status"], inc["sensor_id"]) == ("other", "orange", "open", None)
    assert (inc["lon"], inc["lat"]) == (gauge.lon, gauge.lat)
    assert inc["verification"]["state"] == "reported"
    assert inc["source"] == "hotline_12345" and inc["reported_by"] == "dispatcher-zhao"
    assert inc["reason"] == ("Reported by the 12345 citizen service hotline (dispatcher-zhao): "
                             "The road to the village is under water")
    assert inc["reporter"] == {"name": "Li Ming", "phone": "+** *** **** 1234"}  # the view is read without a token
    assert inc["place"]["name"].endswith("(near Luoqi, 1.3 km)"), inc["place"]
    assert [(lv["level"], lv["source"]) for lv in inc["levels"]] == [("orange", "hotline_12345")]
    assert [a["action"] for a in inc["actions"]] == ["reported"]
    assert inc["response_advice"]["level"] == "II" and inc["declared_response"] is None
    assert [e["id"] for e in _events(service, "incident.opened")] == [inc["id"]]
    # the full number only with the token
    assert (await _api(service, token=False).get(f"/api/incidents/{inc['id']}/reporter")).status_code == 401
    who = (await api.get(f"/api/incidents/{inc['id']}/reporter")).json()
    assert who["reporter"] == {"name": "Li Ming", "phone": PHONE}

    # department tasks from the playbook (default entry, orange), and a vehicle recon plan
    tasks = (await api.get("/api/tasks", params={"incident_id": inc["id"]})).json()["tasks"]
    assert {"emergency", "fire"} <= {t["department"] for t in tasks}, tasks
    assert all(t["status"] in ("sent", "delivered") for t in tasks)
    proposed = await api.post(f"/api/incidents/{inc['id']}/plans", json={"by": "dispatcher-zhao"})
    assert proposed.status_code == 201, proposed.text
    plans = proposed.json()["plans"]
    assert [(p["task_key"], p["state"], p["vehicle"]) for p in plans] == [("recon", "proposed", "UAV-1")], plans

    # a gazetteer place: the incident stands at the place's point and the tasks name it
    fire = await _open(api, _report(place="facility:school-longxing", kind="fire", level="yellow",
                                    title="Smoke from the school's kitchen", source="hotline_119"))
    assert (fire["lon"], fire["lat"]) == (school["lon"], school["lat"])
    assert fire["place"] == {"id": "facility:school-longxing", "kind": "school", "name": "Longxing Middle School",
                             "name_zh": "龙兴中学"}
    assert fire["title_zh"] == "Smoke from the school's kitchen"  # no Chinese title given: the title stands
    fire_tasks = (await api.get("/api/tasks", params={"incident_id": fire["id"]})).json()["tasks"]
    assert fire_tasks and any("Longxing Middle School" in t["text"] for t in fire_tasks), fire_tasks

    # refused with a reason
    outside = await api.post("/api/incidents", json=_report(105.0, 29.0))
    assert outside.status_code == 422 and "lies outside Yubei District" in outside.json()["detail"], outside.text
    cases = [
        (_report(gauge.lon, gauge.lat, kind="earthquake"), "kind"),
        (_report(gauge.lon, gauge.lat, level="purple"), "level"),
        (_report(gauge.lon, gauge.lat, source="twitter"), "source"),
        (_report(gauge.lon, None), "a point needs both lon and lat"),
        ({**_report(gauge.lon, gauge.lat), "location": {"lon": gauge.lon, "lat": gauge.lat, "place": "x"}},
         "either lon and lat or a place"),
        (_report(gauge.lon, gauge.lat, reporter={"name": "x", "phone": "call me"}), "phone"),
        (_report(gauge.lon, gauge.lat, title=""), "title"),
    ]
    for body, why in cases:
        r = await api.post("/api/incidents", json=body)
        assert r.status_code == 422 and why in r.text, (why, r.text)
    unknown = await api.post("/api/incidents", json=_report(place="facility:nowhere"))
    assert unknown.status_code == 422 and "no place 'facility:nowhere'" in unknown.text
    assert len(service.store.incidents()) == 2  # nothing refused was stored


# -- the intake webhook --------------------------------------------------------------------------------


def _signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return {**signed_headers(secret, body, timestamp=int(time.time()) if at is None else at,
                             delivery_id="0" * 32, event_type="incident.report"),
            "Content-Type": "application/json"}


async def test_intake_webhook_signed_idempotent_and_refused(make_service) -> None:
    service, _ = await make_service()
    http = _api(service, token=False)  # the intake takes no bearer token: its signature authenticates it
    gauge = service.registry[RAIN_GAUGE]
    body = json.dumps({**_report(gauge.lon, gauge.lat, kind="fire", level="red", title="Barn fire",
                                 source="hotline_119", reporter={"name": "Wang Fang", "phone": PHONE}),
                       "external_id": "119-2026-000731"}).encode()

    off = await http.post("/api/intake/incidents", content=body, headers=_signed(body))
    assert off.status_code == 503 and "no intake secret is configured" in off.text, off.text
    # the secret as the setting intake_secret gives it (a copy of the settings with it)
    service.settings = service.settings.model_copy(update={"intake_secret": SECRET})

    first = await http.post("/api/intake/incidents", content=body, headers=_signed(body))
    assert first.status_code == 201, first.text
    inc = first.json()["incident"]
    assert first.json()["created"] is True
    assert (inc["kind"], inc["level"], inc["source"], inc["external_id"]) == ("fire", "red", "hotline_119",
                                                                              "119-2026-000731")
    again = await http.post("/api/intake/incidents", content=body, headers=_signed(body))
    assert again.status_code == 200 and again.json()["incident"]["id"] == inc["id"] and not again.json()["created"]
    assert [r.id for r in service.store.incidents()] == [inc["id"]]
    assert len(_events(service, "incident.opened")) == 1

    bad = await http.post("/api/intake/incidents", content=body, headers=_signed(body, secret="another-secret-0123456"))
    assert bad.status_code == 401 and "bad_signature" in bad.text, bad.text
    tampered = await http.post("/api/intake/incidents", content=body.replace(b"Barn", b"Farm"), headers=_signed(body))
    assert tampered.status_code == 401 and "bad_signature" in tampered.text
    stale = await http.post("/api/intake/incidents", content=body,
                            headers=_signed(body, at=int(time.time()) - 1000))
    assert stale.status_code == 401 and "stale" in stale.text, stale.text
    unsigned = await http.post("/api/intake/incidents", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and "missing header X-Yingji-Timestamp" in unsigned.text
    # signed but not a report: the body's problem, named
    wrong = json.dumps({**json.loads(body), "kind": "meteor", "external_id": "119-2026-000732"}).encode()
    r = await http.post("/api/intake/incidents", content=wrong, headers=_signed(wrong))
    assert r.status_code == 422 and "kind" in r.text, r.text
    no_case = json.dumps({k: v for k, v in json.loads(body).items() if k != "external_id"}).encode()
    r = await http.post("/api/intake/incidents", content=no_case, headers=_signed(no_case))
    assert r.status_code == 422 and "external_id" in r.text
    assert [r.id for r in service.store.incidents()] == [inc["id"]]


# -- a person's actions --------------------------------------------------------------------------------


async def test_ack_confirm_response_false_alarm_close_reopen_merge(make_service) -> None:
    service, _ = await make_service()
    api = _api(service)
    gauge = service.registry[RAIN_GAUGE]
    a = await _open(api, _report(gauge.lon, gauge.lat, title="Water over the road"))
    b = await _open(api, _report(gauge.lon + 0.01, gauge.lat, title="Smell of gas", kind="chemical_leak"))

    # acknowledged once: a repeat keeps the first who and when
    first = (await api.post(f"/api/incidents/{a['id']}/ack", json={"by": "dispatcher-zhao"})).json()["incident"]
    second = await api.post(f"/api/incidents/{a['id']}/ack", json={"by": "dispatcher-li"})
    assert second.status_code == 200
    assert second.json()["incident"]["acknowledged"] == first["acknowledged"]
    assert first["acknowledged"]["by"] == "dispatcher-zhao"
    assert len(_events(service, "incident.acknowledged", a["id"])) == 1

    # confirmed with the service's one confirmation (as POST .../verify)
    c = await api.post(f"/api/incidents/{a['id']}/confirm", json={"by": "crew-7", "how": "crew", "note": "seen"})
    assert c.status_code == 200
    v = c.json()["incident"]["verification"]
    assert (v["state"], v["by"], v["how"]) == ("confirmed", "crew-7", "crew")
    assert len(_events(service, "incident.verified", a["id"])) == 1
    assert (await api.post(f"/api/incidents/{a['id']}/confirm", json={"by": "x", "how": "rumour"})).status_code == 422

    # the response level: advice from the level, the declaration a person's, recorded with it
    r = await api.post(f"/api/incidents/{a['id']}/response",
                       json={"by": "commander-wang", "level": "III", "reason": "one road, no people cut off"})
    declared = r.json()["incident"]["declared_response"]
    assert (declared["level"], declared["level_zh"], declared["by"], declared["advice"]["level"],
            declared["follows_advice"]) == ("III", "Ⅲ级", "commander-wang", "II", False)
    assert (await api.post(f"/api/incidents/{a['id']}/response",
                           json={"by": "w", "level": "V", "reason": "x"})).status_code == 422

    # a false alarm: level none, closed with the record kept, its department tasks cancelled
    assert [t["status"] for t in b["tasks"]] and all(t["status"] == "sent" for t in b["tasks"])
    fa = await api.post(f"/api/incidents/{b['id']}/false-alarm", json={"by": "dispatcher-zhao",
                                                                       "reason": "a gas cooker, checked by 119"})
    assert fa.status_code == 200, fa.text
    fb = fa.json()["incident"]
    assert (fb["status"], fb["level"], fb["verification"]["state"]) == ("closed", "none", "false_alarm")
    assert fb["closed"]["reason"] == "false alarm" and fb["closed"]["by"] == "dispatcher-zhao"
    assert fb["closed"]["note"] == "a gas cooker, checked by 119"
    tasks = (await api.get("/api/tasks", params={"incident_id": b["id"]})).json()["tasks"]
    assert tasks and {t["status"] for t in tasks} == {"cancelled"}
    assert len(_events(service, "incident.false_alarm", b["id"])) == 1

    # illegal on a closed incident: 409 with the reason
    for path, body in (("ack", {"by": "d"}), ("false-alarm", {"by": "d", "reason": "r"}),
                       ("close", {"by": "d", "reason": "r"}), ("confirm", {"by": "d", "how": "crew"}),
                       ("response", {"by": "d", "level": "IV", "reason": "r"})):
        r = await api.post(f"/api/incidents/{b['id']}/{path}", json=body)
        assert r.status_code == 409 and "closed" in r.json()["detail"], (path, r.text)

    # reopened: back to its level and its verification before the false alarm
    ro = await api.post(f"/api/incidents/{b['id']}/reopen", json={"by": "dispatcher-li", "reason": "smell again"})
    assert ro.status_code == 200, ro.text
    rb = ro.json()["incident"]
    assert (rb["status"], rb["level"], rb["verification"]["state"], rb["closed"]) == ("open", "orange", "reported",
                                                                                      None)
    assert [x["action"] for x in rb["actions"]] == ["reported", "false_alarm", "reopened"]
    assert rb["actions"][-1]["was"]["closed_reason"] == "false alarm"
    again = await api.post(f"/api/incidents/{b['id']}/reopen", json={"by": "d", "reason": "r"})
    assert again.status_code == 409 and "not closed" in again.text

    # closing needs a reason
    assert (await api.post(f"/api/incidents/{a['id']}/close", json={"by": "d"})).status_code == 422
    assert (await api.post(f"/api/incidents/{a['id']}/close", json={"by": "d", "reason": "  "})).status_code == 422
    closed = await api.post(f"/api/incidents/{a['id']}/close", json={"by": "dispatcher-zhao",
                                                                     "reason": "road reopened by the crew"})
    ca = closed.json()["incident"]
    assert (ca["status"], ca["closed"]["reason"], ca["closed"]["by"]) == ("closed", "road reopened by the crew",
                                                                          "dispatcher-zhao")
    assert len(_events(service, "incident.closed", a["id"])) == 1
    assert [x["action"] for x in ca["actions"]] == ["reported", "acknowledged", "confirmed", "response_declared",
                                                    "closed"]
    assert (await api.post(f"/api/incidents/{a['id']}/reopen", json={"by": "d", "reason": "r"})).status_code == 200
    assert len(_events(service, "incident.reopened", a["id"])) == 1

    # merged: closed as merged into the other, its tasks shown with the kept one
    c = await _open(api, _report(gauge.lon, gauge.lat + 0.01, title="Landslip on the hill road", kind="landslide",
                                 level="yellow"))
    d = await _open(api, _report(gauge.lon, gauge.lat + 0.011, title="Rocks on the hill road", kind="landslide",
                                 level="orange"))
    d_tasks = {t["id"] for t in (await api.get("/api/tasks", params={"incident_id": d["id"]})).json()["tasks"]}
    m = await api.post(f"/api/incidents/{d['id']}/merge", json={"by": "dispatcher-zhao", "into": c["id"]})
    assert m.status_code == 200, m.text
    kept = m.json()["incident"]
    assert kept["id"] == c["id"] and kept["level"] == "orange" and kept["status"] == "open"
    assert kept["verification"]["state"] == "reported"
    assert [(x["id"], {t["id"] for t in x["tasks"]}) for x in kept["merged_from"]] == [(d["id"], d_tasks)]
    assert kept["actions"][-1]["action"] == "merged_from" and kept["actions"][-1]["from"] == d["id"]
    # (the incident's view shows its life once incident_view merges life_view; until then, the two together)
    gone = {**(await api.get(f"/api/incidents/{d['id']}")).json(), **service.life_view(service.store.incident(d["id"]))}
    assert gone["status"] == "closed" and gone["merged_into"] == c["id"]
    assert gone["closed"]["reason"] == f"merged into incident #{c['id']}"
    assert [e["into"] for e in _events(service, "incident.merged", d["id"])] == [c["id"]]
    # illegal merges
    r = await api.post(f"/api/incidents/{c['id']}/merge", json={"by": "d", "into": c["id"]})
    assert r.status_code == 409 and "into itself" in r.text
    r = await api.post(f"/api/incidents/{c['id']}/merge", json={"by": "d", "into": d["id"]})
    assert r.status_code == 409 and f"incident {d['id']} is closed" in r.text
    r = await api.post(f"/api/incidents/{d['id']}/merge", json={"by": "d", "into": c["id"]})
    assert r.status_code == 409 and "already closed" in r.text
    assert (await api.post(f"/api/incidents/{c['id']}/merge", json={"by": "d", "into": 999})).status_code == 404
    assert (await api.post("/api/incidents/999/ack", json={"by": "d"})).status_code == 404
    assert (await _api(service, token=False).post(f"/api/incidents/{c['id']}/ack", json={"by": "d"})).status_code \
        == 401


# -- the unacknowledged red alarm ---------------------------------------------------------------------


async def test_unacknowledged_red_alarm_repeats_and_escalates_once(mosquitto: MosquittoInstance,
                                                                    yubei_folder: Path, tmp_path: Path) -> None:
    folder = district_copy(yubei_folder, tmp_path / "district")
    start = datetime.now(timezone.utc).replace(microsecond=0)
    clock = ManualClock(start)
    # the settings red_alarm_repeat_s and red_ack_escalate_s, set on a copy (they are read where used)
    settings = Settings(broker_url=mosquitto.url, data_dir=tmp_path / "data", district_dir=folder, api_token="t",
                        patrols=False).model_copy(update={"red_alarm_repeat_s": 30.0, "red_ack_escalate_s": 120.0})
    bureau = next(d for d in yaml.safe_load((folder / "departments.yaml").read_text())["departments"]
                  if d["id"] == "emergency")

    async def step(service: Service, seconds: float) -> None:
        clock.advance(seconds)
        await service._incident_life_tick(clock.now())

    async with running_service(settings, folder, clock) as service:
        api = _api(service)
        gauge = service.registry[RAIN_GAUGE]
        red = await _open(api, _report(gauge.lon, gauge.lat, kind="fire", level="red", title="Forest fire"))
        quiet = await _open(api, _report(gauge.lon, gauge.lat + 0.01, kind="fire", level="red", title="Barn fire"))
        orange = await _open(api, _report(gauge.lon, gauge.lat + 0.02, title="Fallen tree"))
        await api.post(f"/api/incidents/{quiet['id']}/ack", json={"by": "dispatcher-zhao"})
        alarms = lambda i: len(_events(service, "incident.alarm", i))  # noqa: E731
        escalations = lambda i: _events(service, "incident.escalated", i)  # noqa: E731

        assert (alarms(red["id"]), alarms(quiet["id"]), alarms(orange["id"])) == (1, 1, 0)  # at once
        assert red["alarm"]["sounding"] is True
        await step(service, 29)
        assert alarms(red["id"]) == 1
        await step(service, 1)  # 30 s: again
        assert alarms(red["id"]) == 2
        await step(service, 89)  # 119 s: again, not escalated yet
        assert alarms(red["id"]) == 3 and escalations(red["id"]) == []
        await step(service, 1)  # 120 s unacknowledged: escalated to the duty chief
        [up] = escalations(red["id"])
        assert up["to"]["name"] == bureau["head"]["name"] and up["to"]["department"] == "emergency"
        assert up["reason"] == "red for 120 s without acknowledgement (limit 120 s)"
        for _ in range(5):
            await step(service, 60)
        assert len(escalations(red["id"])) == 1 and alarms(red["id"]) == 3 + 5
        row = service.store.incident(red["id"])
        assert row.detail["escalated"]["to"]["name"] == bureau["head"]["name"]
        assert [a["action"] for a in row.detail["actions"]] == ["reported", "escalated"]
        # the acknowledged red incident: its one alarm, never escalated; the orange one: no alarm
        assert (alarms(quiet["id"]), escalations(quiet["id"]), alarms(orange["id"])) == (1, [], 0)
        assert service.life_view(row)["alarm"] == {"sounding": True, "escalated": row.detail["escalated"]}
        before = alarms(red["id"])

    # a restart does not escalate again; the alarm sounds at once (the service's own tick or this one)
    # until someone acknowledges
    async with running_service(settings, folder, clock) as service:
        api = _api(service)
        await step(service, 1)
        assert len(_events(service, "incident.alarm", red["id"])) == before + 1
        assert len(_events(service, "incident.escalated", red["id"])) == 1
        assert (await api.post(f"/api/incidents/{red['id']}/ack", json={"by": "dispatcher-li"})).status_code == 200
        for _ in range(3):
            await step(service, 60)
        assert len(_events(service, "incident.alarm", red["id"])) == before + 1
        assert service.life_view(service.store.incident(red["id"]))["alarm"]["sounding"] is False
