"""Crews in the running service: tasks from dispatchers and departments, a phone's offline queue
replayed without duplicates, photos, SOS, check-ins on a timer and warnings on entering a hazard."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from command.api.app import create_app
from tests.fixtures_service import open_rain_incident
from tests.images import png

USERS = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
SECRET = "a-test-signing-secret-of-32-chars!!"
OPERATOR = {"Authorization": "Bearer t"}
LUOQI = "crew-luoqi-water"  # luoqi-zhang's crew (fire department)
LONGXING = "crew-longxing-water"  # longxing-li's crew
DEADLINE_S = 20.0




async def _sign_in(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await http.post("/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _kinds(service: Any, kind: str) -> list[Any]:
    return [e for e in service.store.events(limit=100_000) if e.kind == kind]


async def test_a_crew_task_from_the_dispatcher_lives_on_the_phone_and_replays_without_duplicates(
        make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    incident_id = await open_rain_incident(service, mosquitto.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        made = await http.post(f"/api/crews/{LUOQI}/tasks", headers=OPERATOR, json={
            "by": "dispatcher", "incident_id": incident_id, "text": "Check the Luoqi ferry ramp",
            "text_zh": "查看洛碛渡口坡道", "lon": 106.93, "lat": 29.72})
        assert made.status_code == 201, made.text
        task = made.json()["task"]
        assert (task["crew"], task["department"], task["status"]) == (LUOQI, "fire", "sent")
        assert task["target"] == {"lon": 106.93, "lat": 29.72}

        crew = await _sign_in(http, "luoqi-zhang")
        mine = (await http.get("/api/tasks", headers=crew)).json()["tasks"]
        assert [t["id"] for t in mine] == [task["id"]]
        other = await _sign_in(http, "longxing-li")
        assert (await http.get("/api/tasks", headers=other)).json()["tasks"] == []
        assert (await http.post(f"/api/tasks/{task['id']}/ack", headers=other, json={"by": "x"})).status_code == 404

        tid = task["id"]
        accept = {"by": "luoqi-zhang", "op_id": "op-accept-0001"}
        first = await http.post(f"/api/tasks/{tid}/ack", headers=crew, json=accept)
        again = await http.post(f"/api/tasks/{tid}/ack", headers=crew, json=accept)  # the queue replays it
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json()["task"]["status"] == "acknowledged" == again.json()["task"]["status"]
        on_site = {"by": "luoqi-zhang", "note": "on the ramp", "op_id": "op-onsite-0002"}
        assert (await http.post(f"/api/tasks/{tid}/start", headers=crew, json=on_site)).status_code == 200
        bad = await http.post("/api/photos", headers={**crew, "Content-Type": "image/png"}, content=b"not an image")
        assert bad.status_code == 422 and "JPEG or PNG" in bad.text
        big = await http.post("/api/photos", headers={**crew, "Content-Type": "image/jpeg"},
                              content=b"\xff\xd8\xff" + bytes(5 * 1024 * 1024))
        assert big.status_code == 413
        photo = await http.post("/api/photos", headers={**crew, "Content-Type": "image/png"}, content=png())
        assert photo.status_code == 201, photo.text
        pid = photo.json()["photo_id"]
        unknown = await http.post(f"/api/tasks/{tid}/done", headers=crew, json={
            "by": "luoqi-zhang", "report": "x", "photo_ids": ["0" * 32], "op_id": "op-done-bad-01"})
        assert unknown.status_code == 422
        finish = {"by": "luoqi-zhang", "report": "Ramp under water, closed with tape", "photo_ids": [pid],
                  "op_id": "op-done-0003"}
        done = await http.post(f"/api/tasks/{tid}/done", headers=crew, json=finish)
        assert done.status_code == 200, done.text
        # the whole queue arrives again after a lost answer: the same answers, nothing repeated
        for path, body in (("ack", accept), ("start", on_site), ("done", finish)):
            replay = await http.post(f"/api/tasks/{tid}/{path}", headers=crew, json=body)
            assert replay.status_code == 200 and replay.json()["task"]["status"] == "done", replay.text
        # a change made after it was done (a new op) is a conflict the phone shows
        late = await http.post(f"/api/tasks/{tid}/start", headers=crew, json={"by": "luoqi-zhang",
                                                                             "op_id": "op-late-0004"})
        assert late.status_code == 409
        final = (await http.get(f"/api/tasks/{tid}", headers=OPERATOR)).json()
        assert [h["to"] for h in final["history"]] == ["sent", "acknowledged", "in_progress", "done"]
        assert final["report"] == finish["report"] and final["photos"] == [f"/api/photos/{pid}"]
        got = await http.get(final["photos"][0], headers=OPERATOR)
        assert got.status_code == 200 and got.content == png() and got.headers["content-type"] == "image/png"
        assert (await http.get("/api/photos/../../etc/passwd", headers=OPERATOR)).status_code == 404
        assert len([e for e in _kinds(service, "task.done") if e.data["id"] == tid]) == 1
        bad_op = await http.post(f"/api/tasks/{tid}/ack", headers=crew, json={"by": "x", "op_id": "short"})
        assert bad_op.status_code == 422


async def test_a_department_hands_its_task_to_its_own_crew_only(make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    incident_id = await open_rain_incident(service, mosquitto.url)
    fire_task = next(t for t in service.store.tasks(incident_id=incident_id) if t.department == "fire")
    traffic_crew = next(c.id for c in service.district.crews if c.department != "fire")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        fire = await _sign_in(http, "fire-wang")
        handed = await http.post(f"/api/tasks/{fire_task.id}/assign", headers=fire,
                                 json={"by": "fire-wang", "crew": LUOQI, "note": "take the boat"})
        assert handed.status_code == 201, handed.text
        child = handed.json()["task"]
        assert (child["crew"], child["parent_id"], child["department"]) == (LUOQI, fire_task.id, "fire")
        assert child["text"].endswith("take the boat")
        not_ours = await http.post(f"/api/tasks/{fire_task.id}/assign", headers=fire,
                                   json={"by": "fire-wang", "crew": traffic_crew})
        assert not_ours.status_code == 422 and "belongs to" in not_ours.text
        traffic = await _sign_in(http, "traffic-sun")
        assert (await http.post(f"/api/tasks/{fire_task.id}/assign", headers=traffic,
                                json={"by": "traffic-sun", "crew": LUOQI})).status_code == 404
        assert (await http.post(f"/api/crews/{LUOQI}/tasks", headers=traffic, json={
            "by": "traffic-sun", "incident_id": incident_id, "text": "x"})).status_code == 403
        crew = await _sign_in(http, "luoqi-zhang")
        assert [t["id"] for t in (await http.get("/api/tasks", headers=crew)).json()["tasks"]] == [child["id"]]
        assert (await http.post(f"/api/tasks/{child['id']}/assign", headers=fire,
                                json={"by": "fire-wang", "crew": LUOQI})).status_code == 422  # a crew's already


class _Later:
    """The service's clock, ``seconds`` ahead."""

    def __init__(self, clock: Any, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def now(self) -> Any:
        return self.clock.now() + timedelta(seconds=self.seconds)


async def _until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_sos_check_in_timer_and_hazard_entry(make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET, crew_checkin_s=60.0)
    incident_id = await open_rain_incident(service, mosquitto.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        crew = await _sign_in(http, "luoqi-zhang")
        # SOS: once, however often the phone sends it; open until a dispatcher takes it
        sos = {"by": "luoqi-zhang", "lon": 106.93, "lat": 29.72, "note": "boat capsized", "op_id": "op-sos-00001"}
        for _ in range(2):
            r = await http.post(f"/api/crews/{LUOQI}/sos", headers=crew, json=sos)
            assert r.status_code == 201, r.text
        assert len(_kinds(service, "crew.sos")) == 1
        assert (await http.get(f"/api/crews/{LUOQI}", headers=crew)).json()["sos"]["note"] == "boat capsized"
        assert (await http.post(f"/api/crews/{LONGXING}/sos", headers=crew, json=sos)).status_code == 403
        assert (await http.post(f"/api/crews/{LUOQI}/sos/ack", headers=crew, json={"by": "x"})).status_code == 403
        taken = await http.post(f"/api/crews/{LUOQI}/sos/ack", headers=OPERATOR, json={"by": "desk"})
        assert taken.status_code == 200 and taken.json()["crew"]["sos"] is None
        assert (await http.post(f"/api/crews/{LUOQI}/sos/ack", headers=OPERATOR, json={"by": "desk"})
                ).status_code == 409

        # on a task: the check-in clock starts; a missed check-in is raised once; checking in restarts it
        made = (await http.post(f"/api/crews/{LUOQI}/tasks", headers=OPERATOR, json={
            "by": "desk", "incident_id": incident_id, "text": "Patrol the bank"})).json()["task"]
        assert (await http.post(f"/api/tasks/{made['id']}/ack", headers=crew, json={"by": "x"})).status_code == 200
        await _until(lambda: service.crew_view(service._crew_row(LUOQI))["checkin_due_at"], "the check-in clock")
        assert not _kinds(service, "crew.checkin_missed")
        service.clock = _Later(service.clock, 61.0)
        await _until(lambda: _kinds(service, "crew.checkin_missed"), "a missed check-in")
        await asyncio.sleep(1.2)  # more ticks: still once
        assert len(_kinds(service, "crew.checkin_missed")) == 1
        checked = await http.post(f"/api/crews/{LUOQI}/check-in", headers=crew, json={"by": "luoqi-zhang"})
        assert checked.status_code == 200 and checked.json()["crew"]["checkin_missed"] is False
        assert (await http.post(f"/api/crews/{LONGXING}/check-in", headers=crew, json={"by": "x"})).status_code == 403

        # a landslide reported on a slope: walking into its area warns; walking out says so
        slide = await http.post("/api/incidents", headers=OPERATOR, json={
            "by": "desk", "kind": "landslide", "level": "orange", "title": "Slope failure above the road",
            "source": "dispatcher", "location": {"lon": 106.75, "lat": 29.80}})
        assert slide.status_code == 201, slide.text
        inside = await http.post(f"/api/crews/{LUOQI}/position", headers=crew, json={
            "by": "luoqi-zhang", "lon": 106.75, "lat": 29.80})
        assert inside.status_code == 200, inside.text
        assert inside.json()["hazard"]["incident_id"] == slide.json()["incident"]["id"]
        entered = _kinds(service, "crew.hazard_entered")
        assert len(entered) == 1 and entered[0].data["kind"] == "landslide" and entered[0].data["id"] == LUOQI
        again = await http.post(f"/api/crews/{LUOQI}/position", headers=crew, json={
            "by": "luoqi-zhang", "lon": 106.7501, "lat": 29.8001})
        assert again.json()["hazard"] is not None and len(_kinds(service, "crew.hazard_entered")) == 1
        out = await http.post(f"/api/crews/{LUOQI}/position", headers=crew, json={
            "by": "luoqi-zhang", "lon": 106.93, "lat": 29.72})
        assert out.json()["hazard"] is None and len(_kinds(service, "crew.hazard_left")) == 1
