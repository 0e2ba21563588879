"""Ingest against a real private Mosquitto: readings, rejections, status, will, simulators."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiomqtt
import pytest

from sensors.devices import FleetStats, SimClock, run_devices
from sensors.ingest import Ingestor
from sensors.model import Reading, Rejection
from sensors.registry import Registry, SensorSpec
from sensors.senml import Sample, encode
from sensors.topics import senml_topic, status_topic
from tests.fixtures_mqtt import MosquittoInstance

START = datetime(2024, 7, 10, 6, 0, tzinfo=timezone.utc)
DEADLINE_S = 15.0


def make_registry(prefix: str) -> Registry:
    """A river gauge and a rain gauge with ids unique to one test (retained status persists)."""

    def feature(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.6, 29.7]}, "properties": props}

    return Registry.from_geojson(
        {
            "type": "FeatureCollection",
            "features": [
                feature(
                    {
                        "id": f"{prefix}-RL",
                        "kind": "river_level",
                        "name": "river",
                        "name_zh": "河",
                        "valid_min": 150,
                        "valid_max": 215,
                        "interval_s": 300,
                        "datum": "Wusong",
                    }
                ),
                feature(
                    {
                        "id": f"{prefix}-RG",
                        "kind": "rain_gauge",
                        "name": "rain",
                        "name_zh": "雨",
                        "valid_min": 0,
                        "valid_max": 200,
                        "interval_s": 300,
                    }
                ),
            ],
        }
    )


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


@dataclass
class Sink:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)

    async def on_readings(self, batch: list[Reading]) -> None:
        self.readings.extend(batch)

    async def on_rejection(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)

    async def on_status(self, sensor_id: str, status: str) -> None:
        self.statuses.append((sensor_id, status))


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll until ``predicate`` holds; fail with ``what`` after a generous deadline."""
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@asynccontextmanager
async def running_ingestor(
    broker: MosquittoInstance,
    registry: Registry,
    sink: Sink,
    *,
    clock: Callable[[], datetime] = lambda: START,
    shared_group: str | None = None,
) -> AsyncIterator[Ingestor]:
    ingestor = Ingestor(
        registry=registry,
        on_readings=sink.on_readings,
        on_rejection=sink.on_rejection,
        on_status=sink.on_status,
        clock=clock,
        shared_group=shared_group,
    )
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=unique("ingest-"), protocol=aiomqtt.ProtocolVersion.V311
    ) as client:
        task = asyncio.create_task(ingestor.run(client))
        try:
            await wait_until(lambda: ingestor.subscribed.is_set() or task.done(), "the subscription")
            assert not task.done(), task.exception()
            yield ingestor
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


@asynccontextmanager
async def publisher(broker: MosquittoInstance, **kwargs: Any) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=unique("pub-"), protocol=aiomqtt.ProtocolVersion.V311, **kwargs
    ) as client:
        yield client


async def clear_retained(broker: MosquittoInstance, registry: Registry) -> None:
    """Delete the retained statuses a test left (an empty retained message)."""
    async with publisher(broker) as pub:
        for sensor_id in registry:
            await pub.publish(status_topic(sensor_id), b"", qos=1, retain=True)


def mine(sink: Sink, registry: Registry) -> list[Rejection]:
    """Rejections about this test's sensors (others' retained messages may pass by)."""
    return [r for r in sink.rejections if r.sensor_id in registry]


def level(sensor_id: str, value: float, minutes: int) -> bytes:
    return encode(sensor_id, [Sample("level", value, "m", START + timedelta(minutes=minutes))])


async def test_readings_arrive_in_order(mosquitto: MosquittoInstance) -> None:
    registry = make_registry(unique("A"))
    rl, rg = list(registry)
    sink = Sink()
    async with running_ingestor(mosquitto, registry, sink) as ingestor, publisher(mosquitto) as pub:
        for i in range(30):
            await pub.publish(senml_topic(rl), level(rl, 180 + i / 10, -i), qos=1)
        rain = encode(rg, [Sample("rain", 2.5, "mm", START - timedelta(minutes=5)), Sample("rain", 0.5, "mm", START)])
        await pub.publish(senml_topic(rg), rain, qos=1)
        await wait_until(lambda: ingestor.stats.messages == 31, "31 messages")
    assert [r.value for r in sink.readings[:30]] == [180 + i / 10 for i in range(30)]
    assert sink.readings[30:] == [
        Reading(rg, "rain", 2.5, "mm", START - timedelta(minutes=5)),
        Reading(rg, "rain", 0.5, "mm", START),
    ]
    assert ingestor.stats.accepted == 32
    assert sink.rejections == [] and ingestor.stats.rejected_total == 0


async def test_bad_payloads_are_rejected_by_reason_and_good_ones_go_through(
    mosquitto: MosquittoInstance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sensors.ingest")
    registry = make_registry(unique("B"))
    rl, _ = list(registry)
    bn = f"urn:dev:yingji:{rl}:"
    topic = senml_topic(rl)
    t = (START - timedelta(minutes=1)).timestamp()
    messages: list[tuple[str, bytes]] = [
        (topic, level(rl, 181.0, -10)),
        (topic, b"not json at all"),
        (topic, b'{"bn": "x", "n": "level", "v": 1}'),
        (senml_topic("NOBODY"), encode("NOBODY", [Sample("level", 181.0, "m", START)])),
        (topic, json.dumps([{"bn": bn, "bt": t, "n": "level", "u": "cm", "v": 18100}]).encode()),
        (topic, f'[{{"bn": "{bn}", "bt": {t}, "n": "level", "u": "m", "v": NaN}}]'.encode()),
        (topic, level(rl, 999.0, -9)),
        (topic, json.dumps([{"bn": bn, "bt": t, "n": "level", "u": "m", "v": "181.2"}]).encode()),
        (topic, level(rl, 181.1, -8)),
        # One pack, three records: the middle one is out of range (kept, flagged bad).
        (
            topic,
            json.dumps(
                [
                    {"bn": bn, "bt": t, "bu": "m", "n": "level", "v": 181.2},
                    {"n": "level", "v": 5.0, "t": 10},
                    {"n": "level", "v": 181.3, "t": 20},
                ]
            ).encode(),
        ),
        ("yingji/sensors/bad id/senml", b"[]"),
        (topic, level(rl, 181.4, 60)),  # an hour ahead of the clock
        (topic, level(rl, 181.5, -7)),
    ]
    sink = Sink()
    async with running_ingestor(mosquitto, registry, sink) as ingestor, publisher(mosquitto) as pub:
        for msg_topic, payload in messages:
            await pub.publish(msg_topic, payload, qos=1)
        await wait_until(lambda: ingestor.stats.messages == len(messages), f"{len(messages)} messages")

    # impossible values are kept, flagged bad by the range check; the rest are good
    assert [(r.value, r.flag) for r in sink.readings] == [
        (181.0, "good"), (999.0, "bad"), (181.1, "good"), (181.2, "good"), (5.0, "bad"), (181.3, "good"),
        (181.5, "good")]
    assert all(n.check == "range" for r in sink.readings for n in r.qc)
    expected = Counter(
        malformed_json=1,
        bad_senml=2,
        unknown_sensor=1,
        wrong_unit=1,
        non_finite=1,
        bad_topic=1,
        future_time=1,
    )
    assert ingestor.stats.rejected == expected
    assert Counter(r.reason for r in sink.rejections) == expected
    assert ingestor.stats.accepted == 7
    by_reason = {r.reason: r for r in sink.rejections}
    assert "not JSON" in by_reason["malformed_json"].detail
    assert "JSON array" in by_reason["bad_senml"].detail or "must be a number" in by_reason["bad_senml"].detail
    assert by_reason["unknown_sensor"].sensor_id == "NOBODY"
    warnings = [r.getMessage() for r in caplog.records if r.name == "sensors.ingest" and r.levelno == logging.WARNING]
    assert any(topic in w and "non_finite" in w for w in warnings)
    assert len(warnings) == expected.total()


async def test_status_online_offline_retained(mosquitto: MosquittoInstance) -> None:
    registry = make_registry(unique("C"))
    rl, rg = list(registry)
    async with publisher(mosquitto) as pub:
        await pub.publish(status_topic(rl), "online", qos=1, retain=True)
        await pub.publish(status_topic(rg), "offline", qos=1, retain=True)
        await pub.publish(status_topic(rg), "sleepy", qos=1)
    # A later subscriber gets the retained statuses.
    sink = Sink()
    async with running_ingestor(mosquitto, registry, sink) as ingestor:
        await wait_until(lambda: len(sink.statuses) == 2, "two retained statuses")
        assert sorted(sink.statuses) == sorted([(rl, "online"), (rg, "offline")])
        async with publisher(mosquitto) as pub:
            await pub.publish(status_topic(rl), "offline", qos=1, retain=True)
            await pub.publish(status_topic(rg), "sleepy", qos=1)
        await wait_until(lambda: ingestor.stats.rejected["bad_status"] == 1, "the bad status")
        await wait_until(lambda: (rl, "offline") in sink.statuses, "offline")
        await clear_retained(mosquitto, registry)
        await wait_until(lambda: ingestor.stats.status_cleared >= 2, "the deletions")
    assert sink.statuses.count((rl, "offline")) == 1
    assert ingestor.stats.status_updates >= 3
    assert [r.reason for r in mine(sink, registry)] == ["bad_status"]


_DEVICE_SCRIPT = """
import asyncio, json, sys
from sensors.devices import run_devices
from sensors.registry import Registry
registry = Registry.from_geojson(json.loads(sys.argv[2]))
asyncio.run(run_devices(sys.argv[1], list(registry.values()), lambda spec, t: 182.0,
                        speed=1.0, interval_s=0.5, identifier_prefix=sys.argv[3]))
"""


async def test_will_marks_a_killed_device_offline(mosquitto: MosquittoInstance) -> None:
    prefix = unique("D")
    registry = make_registry(prefix)
    rl = f"{prefix}-RL"
    only_river = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [106.6, 29.7]},
                "properties": dict(registry[rl].properties),
            }
        ],
    }
    sink = Sink()
    # The device runs its own clock (now): the ingest clock follows wall time here.
    async with running_ingestor(mosquitto, registry, sink, clock=lambda: datetime.now(timezone.utc)):
        proc = subprocess.Popen(
            [sys.executable, "-c", _DEVICE_SCRIPT, mosquitto.url, json.dumps(only_river), unique("sim")],
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        try:
            await wait_until(lambda: (rl, "online") in sink.statuses, "the device to come online")
            await wait_until(lambda: len(sink.readings) >= 1, "a reading from the device")
            os.kill(proc.pid, signal.SIGKILL)  # no DISCONNECT: the broker sends the will
            proc.wait(timeout=10)
            await wait_until(lambda: (rl, "offline") in sink.statuses, "the will (offline)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert sink.statuses.index((rl, "online")) < sink.statuses.index((rl, "offline"))
    assert all(r.sensor_id == rl and r.value == 182.0 for r in sink.readings)
    assert mine(sink, registry) == []
    await clear_retained(mosquitto, registry)


@pytest.mark.parametrize("devices_per_client", [1, 2])
async def test_simulated_fleet_end_to_end(mosquitto: MosquittoInstance, devices_per_client: int) -> None:
    prefix = unique("E")
    registry = make_registry(prefix)
    specs = list(registry.values())
    clock = SimClock(START, speed=600.0)  # one shared simulation clock for devices and ingest
    seen: list[tuple[str, float]] = []

    def value_at(spec: SensorSpec, at: datetime) -> float | None:
        seen.append((spec.sensor_id, spec.interval_s))
        minutes = (at - START).total_seconds() / 60
        return 180.0 + minutes / 100 if spec.kind == "river_level" else 1.5

    sink = Sink()
    stats = FleetStats()
    async with running_ingestor(mosquitto, registry, sink, clock=clock):
        fleet = asyncio.create_task(
            run_devices(
                mosquitto.url,
                specs,
                value_at,
                speed=600.0,
                interval_s=60.0,
                clock=clock,
                devices_per_client=devices_per_client,
                identifier_prefix=unique("sim"),
                stats=stats,
            )
        )

        def enough() -> bool:
            return fleet.done() or all(sum(r.sensor_id == s.sensor_id for r in sink.readings) >= 3 for s in specs)

        await wait_until(enough, "three readings per sensor")
        fleet.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fleet
        await wait_until(lambda: all((s.sensor_id, "offline") in sink.statuses for s in specs), "clean offline")
    await clear_retained(mosquitto, registry)
    assert mine(sink, registry) == []
    for spec in specs:
        assert (spec.sensor_id, "online") in sink.statuses
        ours = [r for r in sink.readings if r.sensor_id == spec.sensor_id]
        times = [r.time for r in ours]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(b - a == timedelta(seconds=60) for a, b in itertools.pairwise(times))
        assert all(r.unit == spec.unit and r.quantity == spec.quantity for r in ours)
    assert {interval for _, interval in seen} == {60.0}  # providers see the interval in use
    assert all(r.value == 1.5 for r in sink.readings if r.quantity == "rain")
    # a publish cancelled by the stop may have reached the broker before it was counted:
    # at most one per device
    assert stats.published >= len(sink.readings) - len(specs)


async def test_shared_subscription_splits_the_stream(mosquitto: MosquittoInstance) -> None:
    registry = make_registry(unique("F"))
    rl, _ = list(registry)
    group = unique("g")
    a, b = Sink(), Sink()
    async with (
        running_ingestor(mosquitto, registry, a, shared_group=group) as ia,
        running_ingestor(mosquitto, registry, b, shared_group=group) as ib,
        publisher(mosquitto) as pub,
    ):
        for i in range(40):
            await pub.publish(senml_topic(rl), level(rl, 180 + i / 10, -i), qos=1)
        await wait_until(lambda: ia.stats.messages + ib.stats.messages == 40, "40 messages between the two")
    values = sorted(r.value for r in a.readings + b.readings)
    assert values == sorted(180 + i / 10 for i in range(40))  # each reading exactly once
    assert a.readings and b.readings  # both members got a share
