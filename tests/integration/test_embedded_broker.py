"""The embedded amqtt broker and the broker probe."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta, timezone

import aiomqtt
import pytest

from command.broker import broker_answers, embedded_broker
from sensors.ingest import Ingestor
from sensors.model import Reading
from sensors.registry import Registry
from sensors.senml import Sample, encode
from sensors.topics import senml_topic, status_topic
from tests.fixtures_mqtt import MosquittoInstance

NOW = datetime(2024, 7, 10, 6, 0, tzinfo=timezone.utc)
V311 = aiomqtt.ProtocolVersion.V311

REGISTRY = Registry.from_geojson(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [106.6, 29.7]},
                "properties": {
                    "id": "RG-001",
                    "kind": "rain_gauge",
                    "name": "rain",
                    "name_zh": "雨",
                    "valid_min": 0,
                    "valid_max": 200,
                    "interval_s": 300,
                },
            }
        ],
    }
)


async def wait_until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(15):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_publish_subscribe_qos1() -> None:
    async with embedded_broker(port=0) as broker:
        assert broker.host == "127.0.0.1" and broker.port > 0
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert await broker_answers(broker.url)
        async with (
            aiomqtt.Client(broker.host, broker.port, identifier="sub", protocol=V311) as sub,
            aiomqtt.Client(broker.host, broker.port, identifier="pub", protocol=V311) as pub,
        ):
            await sub.subscribe("yingji/test/#", qos=1)
            for i in range(5):
                await pub.publish("yingji/test/x", f"m{i}", qos=1)
            got = []
            async with asyncio.timeout(15):
                async for message in sub.messages:
                    got.append((message.topic.value, message.payload, message.qos))
                    if len(got) == 5:
                        break
        assert got == [("yingji/test/x", f"m{i}".encode(), 1) for i in range(5)]
    assert not await broker_answers(broker.url)


async def test_binds_loopback_only() -> None:
    async with embedded_broker(port=0) as broker:
        # Bound to 127.0.0.1, not 0.0.0.0: another loopback address finds nobody there.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", broker.port), timeout=0.5):
            pass
        assert await broker_answers(broker.url)
    with pytest.raises(ValueError, match="loopback"):
        async with embedded_broker(host="0.0.0.0", port=0):
            pass


async def test_ingestor_against_the_embedded_broker() -> None:
    readings: list[Reading] = []
    statuses: list[tuple[str, str]] = []

    async def on_readings(batch: list[Reading]) -> None:
        readings.extend(batch)

    async def on_status(sensor_id: str, status: str) -> None:
        statuses.append((sensor_id, status))

    ingestor = Ingestor(registry=REGISTRY, on_readings=on_readings, on_status=on_status, clock=lambda: NOW)
    async with (
        embedded_broker(port=0) as broker,
        aiomqtt.Client(broker.host, broker.port, identifier="ingest", protocol=V311) as client,
    ):
        task = asyncio.create_task(ingestor.run(client))
        try:
            await wait_until(ingestor.subscribed.is_set, "the subscription")
            async with aiomqtt.Client(broker.host, broker.port, identifier="dev", protocol=V311) as dev:
                await dev.publish(status_topic("RG-001"), "online", qos=1, retain=True)
                await dev.publish(senml_topic("RG-001"), b"garbage", qos=1)
                for k in range(3):
                    sample = Sample("rain", 0.5 * k, "mm", NOW - timedelta(minutes=10 - 5 * k))
                    await dev.publish(senml_topic("RG-001"), encode("RG-001", [sample]), qos=1)
            await wait_until(lambda: ingestor.stats.messages == 5, "five messages")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert [r.value for r in readings] == [0.0, 0.5, 1.0]
    assert statuses == [("RG-001", "online")]
    assert ingestor.stats.rejected == {"malformed_json": 1}


async def test_probe_sees_mosquitto_and_nothing_elsewhere(mosquitto: MosquittoInstance) -> None:
    assert await broker_answers(mosquitto.url)
    with socket.socket() as sock:  # a port that listens but does not speak MQTT
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not await broker_answers(f"mqtt://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.3)
