"""A landslide warning station's siren and light, switched by the service over MQTT and
acknowledged by the (simulated) station; commands nobody answers are reported."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt
import httpx
from command.api.app import create_app
from sensors.devices import FleetStats, run_devices
from sensors.topics import ack_topic
from tests.fixtures_service import DEADLINE_S

STATION = "gnss-yufengshan-1"  # the slope's crown station carries the siren and light


async def test_siren_on_is_obeyed_and_acknowledged(make_service, mosquitto) -> None:
    service, _ = await make_service()
    events = service.bus.subscribe(maxsize=10_000)
    stats = FleetStats()
    spec = service.registry[STATION]
    assert spec.properties["actuators"] == ["siren", "light"]
    devices = asyncio.create_task(run_devices(mosquitto.url, [spec], lambda s, t: {"east": 1.0, "north": 1.0,
                                                                                   "up": 0.0}, stats=stats))
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://yingji",
                            headers={"Authorization": f"Bearer {service.token}"})
    try:
        async with asyncio.timeout(DEADLINE_S):  # the station's reporting and actuator connections are up
            while stats.subscribed < 1:
                await asyncio.sleep(0.05)
        bad = await api.post(f"/api/sensors/{STATION}/command", json={"by": "w", "actuator": "horn", "state": "on",
                                                                     "reason": "x"})
        assert bad.status_code == 422
        none = await api.post("/api/sensors/cuntan-level/command", json={"by": "w", "actuator": "siren",
                                                                        "state": "on", "reason": "x"})
        assert none.status_code == 422 and "has no siren" in none.text
        assert (await api.post("/api/sensors/nobody/command", json={"by": "w", "actuator": "siren", "state": "on",
                                                                    "reason": "x"})).status_code == 404
        sent = await api.post(f"/api/sensors/{STATION}/command", json={
            "by": "dispatcher-wang", "actuator": "siren", "state": "on", "duration_s": 900,
            "reason": "slope accelerating: warn Shanjiao village"})
        assert sent.status_code == 202, sent.text
        command_id = sent.json()["id"]
        async with asyncio.timeout(DEADLINE_S):
            while True:
                e = await events.queue.get()
                if e.kind == "sensor.command_acknowledged" and e.data["id"] == command_id:
                    break
        listed = (await api.get(f"/api/sensors/{STATION}/commands")).json()["commands"]
        assert [(c["id"], c["status"], c["state"]) for c in listed] == [(command_id, "done", "on")]
        assert stats.commands == 1

        # a malformed answer is rejected with a reason; an answer to nothing is reported
        host, port = mosquitto.url.removeprefix("mqtt://").rsplit(":", 1)
        async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V311) as client:
            await client.publish(ack_topic(STATION), b"{not json", qos=1)
            await client.publish(ack_topic(STATION), b'{"id": "nope", "ok": true}', qos=1)
        async with asyncio.timeout(DEADLINE_S):
            while service.ingestor.stats.rejected.get("bad_ack", 0) < 1:
                await asyncio.sleep(0.05)
            while True:
                e = await events.queue.get()
                if e.kind == "sensor.command_unmatched":
                    break
    finally:
        await api.aclose()
        devices.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await devices


async def test_a_command_nobody_answers_is_reported(make_service) -> None:
    service, _ = await make_service()
    events = service.bus.subscribe(maxsize=10_000)
    cmd = service.station_command(STATION, actuator="light", state="on", duration_s=60, by="w", reason="test")
    # no station listens; move the service's clock past the answer deadline
    service.clock = _Shifted(service.clock, seconds=31)
    async with asyncio.timeout(DEADLINE_S):
        while True:
            e = await events.queue.get()
            if e.kind == "sensor.command_unanswered":
                break
    assert e.data["id"] == cmd["id"] and service.commands[cmd["id"]]["status"] == "unanswered"


class _Shifted:
    """A clock a fixed time ahead of another (the station's answer deadline passes at once)."""

    def __init__(self, base, *, seconds: float) -> None:
        from datetime import timedelta

        self._base, self._delta = base, timedelta(seconds=seconds)

    def now(self):
        return self._base.now() + self._delta

