"""Department linkage through the running service: an incident's playbook tasks reach the departments
over MQTT (retained, one topic per task) and signed webhooks (a real HTTP receiver; a failing one is
retried and the delivery log says so), their life is driven over HTTP, and an unacknowledged task is
escalated on the service clock, step by step, exactly once each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response

from command.api.app import create_app
from command.clock import ManualClock
from command.linkage.webhooks import SignatureError, verify
from command.runtime import Service
from command.settings import Settings
from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import DEADLINE_S, district_copy, open_rain_incident

SECRET = "traffic-cad-webhook-secret-2026"
STEP_S = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A department's own system: verifies every request; ``fail`` answers 500 to everything."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, Any], str]] = []  # (body, "ok" or the signature problem)
        self.port = _free_port()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verify(SECRET, body, dict(request.headers), now=time.time())
                verdict = "ok"
            except SignatureError as err:
                verdict = err.reason
            self.requests.append((json.loads(body), verdict))
            return Response(status_code=500 if self.fail else 200)

        return app


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(receiver.app(), host="127.0.0.1", port=receiver.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _until(predicate: Any, what: str, timeout_s: float = DEADLINE_S) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := predicate()):
            await asyncio.sleep(0.05)
    return value


@pytest.fixture
def district(yubei_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Receiver, Receiver]:
    """The district with traffic's and health's own systems as webhook targets (health's always fails)."""
    folder = district_copy(yubei_folder, tmp_path / "district")
    good, bad = Receiver(), Receiver(fail=True)
    data = yaml.safe_load((folder / "departments.yaml").read_text())
    for dept in data["departments"]:
        if dept["id"] in ("traffic", "health"):
            port = good.port if dept["id"] == "traffic" else bad.port
            dept["channels"]["webhook"] = {"url": f"http://127.0.0.1:{port}/hook", "secret_env": "YINGJI_TEST_HOOK"}
    (folder / "departments.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    monkeypatch.setenv("YINGJI_TEST_HOOK", SECRET)
    return folder, good, bad


async def test_tasks_reach_departments_live_their_life_and_escalate_on_time(
        mosquitto: MosquittoInstance, district: tuple[Path, Receiver, Receiver], tmp_path: Path) -> None:
    folder, good, bad = district
    clock = ManualClock(datetime.now(timezone.utc).replace(microsecond=0))
    settings = Settings(broker_url=mosquitto.url, data_dir=tmp_path / "data", district_dir=folder, api_token="t",
                        patrols=False, escalation_step_s=STEP_S, webhook_max_attempts=3, webhook_backoff_s=0.05)
    service = Service(settings, district_dir=folder, clock=clock)
    host, port = mosquitto.url.removeprefix("mqtt://").rsplit(":", 1)
    seen: dict[str, dict[str, Any]] = {}

    async def listen(client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            seen[str(msg.topic)] = json.loads(msg.payload)

    async with serving(good), serving(bad), aiomqtt.Client(host, int(port)) as mqtt:
        await mqtt.subscribe("yingji/departments/+/tasks/#", qos=1)
        listener = asyncio.create_task(listen(mqtt))
        running = asyncio.create_task(service.run())
        try:
            await _until(lambda: service.ready.is_set() and service.mqtt_connected, "the service")
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t",
                                     headers={"Authorization": "Bearer t"})
            incident_id = await open_rain_incident(service, mosquitto.url)
            tasks = (await http.get(f"/api/tasks?incident_id={incident_id}")).json()["tasks"]
            by_dept = {t["department"]: t for t in tasks}
            # the orange rainstorm's playbook: the bureau, fire, traffic, health, meteorology, the township
            assert {"emergency", "fire", "traffic", "health", "meteo"} <= set(by_dept), sorted(by_dept)
            assert all(t["status"] in ("sent", "delivered") and t["version"] == "2026.3" for t in tasks)
            for t in tasks:
                assert datetime.fromisoformat(t["ack_due_at"]) > datetime.fromisoformat(t["created_at"])
                if not t["township"]:
                    assert t["sent_to"] and t["sent_to"]["name"]  # the officer on duty now
            assert any(t["township"] for t in tasks)  # the street office or town the storm touches
            # MQTT: the current state of every task, retained on its own topic
            await _until(lambda: all(f"yingji/departments/{t['department']}/tasks/{t['id']}" in seen for t in tasks),
                         "every task on MQTT")
            async with aiomqtt.Client(host, int(port)) as late:  # a department that connects later still gets it
                await late.subscribe(f"yingji/departments/traffic/tasks/#", qos=1)
                async with asyncio.timeout(DEADLINE_S):
                    msg = await anext(late.messages)
                assert json.loads(msg.payload)["id"] == by_dept["traffic"]["id"] and msg.retain
            # webhooks: traffic's system got its task, signed; the task counts as delivered
            await _until(lambda: good.requests, "traffic's webhook")
            body, verdict = good.requests[0]
            assert verdict == "ok" and body["event"] == "task.created" and body["task"]["id"] == by_dept["traffic"]["id"]
            traffic = await _until(lambda: (r := service.task_view(service.store.task(by_dept["traffic"]["id"])))
                                   ["status"] == "delivered" and r, "traffic's task delivered")
            assert traffic["history"][-1]["note"] == "delivered by webhook traffic"
            # health's system answers 500: three attempts each, then failed, in the delivery log and an event
            health = [t for t in tasks if t["department"] == "health"]
            # (on a loaded machine the same rain may open another incident meanwhile: count this one's tasks)
            ours = {t["id"] for t in health}
            failed = await _until(lambda: len(d := [x for x in service.store.deliveries(state="failed")
                                                    if x.task_id in ours]) == len(health) and d,
                                  "every delivery to health to fail")
            assert {d.target_id for d in failed} == {"health"}
            assert all([a["status"] for a in d.attempts] == [500, 500, 500] for d in failed)
            log = (await http.get(f"/api/tasks/{by_dept['health']['id']}")).json()["deliveries"]
            assert log[0]["state"] == "failed" and len(log[0]["attempts"]) == 3
            asked = [(b, v) for b, v in bad.requests if b["task"]["id"] in ours]
            assert len(asked) == 3 * len(health) and all(v == "ok" for _, v in asked)
            assert len([e for e in service.store.events(limit=5000)
                        if e.kind == "webhook.failed" and e.data["task_id"] in ours]) == len(health)

            # the life: traffic acknowledges (twice: once counts), works, reports; health declines
            tid, hid = by_dept["traffic"]["id"], by_dept["health"]["id"]
            assert (await http.post(f"/api/tasks/{tid}/ack", json={"by": "traffic-wang"})).status_code == 200
            again = (await http.post(f"/api/tasks/{tid}/ack", json={"by": "someone-else"})).json()["task"]
            assert again["acknowledged_by"] == "traffic-wang"
            no_report = await http.post(f"/api/tasks/{tid}/done", json={"by": "traffic-wang", "report": ""})
            assert no_report.status_code == 422
            early = await http.post(f"/api/tasks/{tid}/done", json={"by": "traffic-wang", "report": "closed"})
            assert early.status_code == 409 and "cannot go from acknowledged to done" in early.text
            assert (await http.post(f"/api/tasks/{tid}/start", json={"by": "traffic-wang"})).status_code == 200
            done = await http.post(f"/api/tasks/{tid}/done", json={"by": "traffic-wang",
                                                                     "report": "G50 ramp closed, diversion via G65"})
            assert done.json()["task"]["status"] == "done" and done.json()["task"]["report"].startswith("G50")
            assert (await http.post(f"/api/tasks/{tid}/ack", json={"by": "x"})).status_code == 409  # final
            declined = await http.post(f"/api/tasks/{hid}/decline", json={"by": "health-li", "reason": "no team free"})
            assert declined.json()["task"]["status"] == "declined"
            assert (await http.post("/api/tasks/99999/ack", json={"by": "x"})).status_code == 404
            await _until(lambda: seen.get(f"yingji/departments/traffic/tasks/{tid}", {}).get("status") == "done",
                         "traffic's done on MQTT")

            # escalation of the bureau's task nobody acknowledged: resend at its deadline, the deputy a step
            # later, the head and the bureau's duty chief a step after that; each once
            eid = by_dept["emergency"]["id"]
            due = datetime.fromisoformat(by_dept["emergency"]["ack_due_at"])

            def steps() -> list[str]:
                return [e.data["step"] for e in service.store.events(limit=5000)
                        if e.kind == "task.escalated" and e.data["id"] == eid]

            clock.advance((due - clock.now()).total_seconds() - 1)
            await asyncio.sleep(2.5)  # two ticks of the service: nothing is due yet
            assert steps() == []
            clock.advance(1)
            await _until(lambda: steps() == ["resend"], "the resend")
            clock.advance(STEP_S)
            await _until(lambda: steps() == ["resend", "deputy"], "the deputy")
            clock.advance(STEP_S)
            await _until(lambda: steps() == ["resend", "deputy", "head_and_bureau"], "the head and the bureau")
            await asyncio.sleep(2.5)
            assert steps() == ["resend", "deputy", "head_and_bureau"]  # once each
            last = next(e.data for e in reversed(service.store.events(limit=5000))
                        if e.kind == "task.escalated" and e.data["id"] == eid)
            roles = {r["role"] for r in last["recipients"]}
            assert roles == {"head", "bureau_duty_chief"} and all(r["name"] for r in last["recipients"])
            dept = service.district.departments["emergency"]
            assert dept.head.name in {r["name"] for r in last["recipients"]}
            # traffic acknowledged in time: never escalated
            assert not [e for e in service.store.events(limit=5000) if e.kind == "task.escalated" and e.data["id"] == tid]

            # the incident was a false alarm: every open task is cancelled, the finished ones stay as they were
            service.cancel_incident_work(incident_id, by="dispatcher-zhao", reason="false alarm: gauge blocked")
            after = {t["department"]: t["status"] for t in (await http.get(f"/api/tasks?incident_id={incident_id}"))
                     .json()["tasks"]}
            assert after["traffic"] == "done" and after["health"] == "declined" and after["emergency"] == "cancelled"
            assert all(s in ("done", "declined", "cancelled") for s in after.values())
            departments = (await http.get("/api/departments")).json()["departments"]
            assert {d["id"]: d["channels"]["webhook"] for d in departments}["traffic"] is True
            assert all(d["on_duty"]["name"] for d in departments)
            await http.aclose()
        finally:
            for t in (running, listener):
                t.cancel()
            for t in (running, listener):
                with contextlib.suppress(asyncio.CancelledError):
                    await t


async def test_a_village_warning_counts_only_when_answered_and_a_reopened_incident_reissues_its_tasks(
        make_service) -> None:
    service, _ = await make_service()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t",
                                 headers={"Authorization": "Bearer t"}) as http:
        reported = await http.post("/api/incidents", json={
            "by": "dispatcher-zhao", "kind": "landslide", "level": "yellow", "title": "Cracks above Shanjiao",
            "title_zh": "山脚村上方出现裂缝", "source": "village_monitor",
            "location": {"place": "facility:village-shanjiao"}})
        assert reported.status_code == 201, reported.text
        incident_id = reported.json()["incident"]["id"]
        warnings = (await http.get(f"/api/incidents/{incident_id}/warnings")).json()
        village = next(w for w in warnings["warnings"] if w["recipient"] == "village-shanjiao")
        assert village["name_zh"] == "山脚村（合成）" and village["received"] is False and village["answered_by"] is None
        assert warnings["received"] < warnings["total"]
        task = (await http.get(f"/api/tasks/{village['task_id']}")).json()
        assert "叫应" in task["text_zh"] and task["township"] is True
        # someone in the village answers: now it counts as received, with who and when
        await http.post(f"/api/tasks/{village['task_id']}/ack", json={"by": "Shanjiao monitor Wang"})
        village = next(w for w in (await http.get(f"/api/incidents/{incident_id}/warnings")).json()["warnings"]
                       if w["recipient"] == "village-shanjiao")
        assert village["received"] is True and village["answered_by"] == "Shanjiao monitor Wang"
        assert (await http.get("/api/incidents/99999/warnings")).status_code == 404

        # a false alarm cancels every open task; reopened, they are issued again with fresh deadlines
        await http.post(f"/api/incidents/{incident_id}/false-alarm", json={"by": "dispatcher-zhao",
                                                                           "reason": "a road cutting, not the slope"})
        statuses = {t["status"] for t in (await http.get(f"/api/tasks?incident_id={incident_id}")).json()["tasks"]}
        assert statuses == {"cancelled"}
        reopened = await http.post(f"/api/incidents/{incident_id}/reopen", json={
            "by": "duty-chief-wang", "reason": "the geologist saw fresh cracks"})
        assert reopened.status_code == 200, reopened.text
        tasks = (await http.get(f"/api/tasks?incident_id={incident_id}")).json()["tasks"]
        assert {t["status"] for t in tasks} == {"sent"}
        for t in tasks:
            assert t["history"][-1]["note"] == "issued again: the incident is open again"
            assert t["acknowledged_by"] is None and t["escalation_stage"] == 0
            assert datetime.fromisoformat(t["ack_due_at"]) > datetime.fromisoformat(t["history"][-1]["at"])
