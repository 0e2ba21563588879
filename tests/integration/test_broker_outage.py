"""The broker goes away and comes back: the service reconnects with backoff, keeps
ingesting, and sends the events it could not publish meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from pathlib import Path

from command.runtime import Service
from command.settings import Settings
from tests.fixtures_mqtt import MOSQUITTO, _accepts, start_mosquitto, stop_process
from tests.fixtures_service import DEADLINE_S, _publish, district_copy


async def _wait(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_service_rides_out_a_broker_restart(yubei_folder: Path, tmp_path: Path) -> None:
    proc, broker = start_mosquitto(tmp_path)
    district = district_copy(yubei_folder, tmp_path / "district")
    service = Service(Settings(broker_url=broker.url, data_dir=tmp_path / "data", district_dir=district,
                               api_token="t"), district_dir=district)
    running = asyncio.create_task(service.run())
    try:
        await _wait(lambda: service.mqtt_connected, "the first connection")
        stop_process(proc)
        await _wait(lambda: not service.mqtt_connected, "the service to notice the broker is gone")
        # a state change while the broker is away: its MQTT copy must wait, not vanish
        published = service.metrics.mqtt_published
        service.bus.publish("incident.note", {"text": "written while the broker was down"})
        await _wait(lambda: service._outbox.qsize() >= 1, "the note to wait in the outbox")
        proc = subprocess.Popen([str(MOSQUITTO), "-c", str(broker.conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
        await _wait(lambda: _accepts(broker.host, broker.port), "the broker to listen again")
        # reconnection backs off (1 s, 2 s, …); then the waiting note goes out (QoS 1: acknowledged)
        await _wait(lambda: service.mqtt_connected and service._outbox.empty()
                    and service.metrics.mqtt_published > published, "the note to be published")
        assert service.mqtt_connected
        before = service.ingestor.stats.accepted
        await _publish(broker.url, [("yingji/sensors/cuntan-level/senml",
                                     json.dumps([{"bn": "urn:dev:yingji:cuntan-level:", "n": "level",
                                                  "u": "m", "v": 176.2}]))])
        await _wait(lambda: service.ingestor.stats.accepted == before + 1, "a reading after the restart")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        stop_process(proc)
