"""Quality control: every reason code, and the accepted reading."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sensors.ingest import Ingestor
from sensors.model import Reading, Rejection
from sensors.qc import MAX_FUTURE, REASONS, check
from sensors.registry import Registry
from sensors.senml import Sample, SenMLRecord, encode

NOW = datetime(2024, 7, 10, 6, 0, tzinfo=timezone.utc)
TOPIC = "yingji/sensors/RL-001/senml"

REGISTRY = Registry.from_geojson(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [106.63, 29.72]},
                "properties": {
                    "id": "RL-001",
                    "kind": "river_level",
                    "name": "Yulin River",
                    "name_zh": "御临河",
                    "valid_min": 150,
                    "valid_max": 215,
                    "interval_s": 300,
                    "datum": "Wusong",
                },
            }
        ],
    }
)
SPEC = REGISTRY["RL-001"]


def record(**fields: object) -> SenMLRecord:
    base: dict[str, object] = {"name": "urn:dev:yingji:RL-001:level", "time": NOW, "value": 182.5, "unit": "m"}
    base.update(fields)
    return SenMLRecord(**base)  # type: ignore[arg-type]


def test_good_record_becomes_a_reading() -> None:
    result = check(SPEC, record(), topic=TOPIC, now=NOW)
    assert result == Reading(sensor_id="RL-001", quantity="level", value=182.5, unit="m", time=NOW, flag="good")


def test_short_and_bare_names_are_accepted() -> None:
    assert isinstance(check(SPEC, record(name="RL-001:level"), topic=TOPIC, now=NOW), Reading)
    assert isinstance(check(SPEC, record(name="level"), topic=TOPIC, now=NOW), Reading)


def test_edges_of_the_range_and_of_the_future_are_accepted() -> None:
    assert isinstance(check(SPEC, record(value=150.0), topic=TOPIC, now=NOW), Reading)
    assert isinstance(check(SPEC, record(value=215.0), topic=TOPIC, now=NOW), Reading)
    assert isinstance(check(SPEC, record(time=NOW + MAX_FUTURE), topic=TOPIC, now=NOW), Reading)
    assert isinstance(check(SPEC, record(time=NOW - timedelta(days=3)), topic=TOPIC, now=NOW), Reading)


@pytest.mark.parametrize(
    ("spec", "fields", "topic", "reason", "words"),
    [
        (SPEC, {}, "yingji/sensors/RL-001", "bad_topic", "is not yingji/sensors"),
        (SPEC, {}, "yingji/sensors/RL-001/status", "bad_topic", "not status"),
        (SPEC, {"name": "urn:dev:mac:00ab:level"}, TOPIC, "bad_senml", "is not [urn:dev:yingji:]"),
        (SPEC, {"name": "RL-002:level"}, TOPIC, "sensor_mismatch", "names sensor 'RL-002'"),
        (None, {"name": "RL-404:level"}, "yingji/sensors/RL-404/senml", "unknown_sensor", "not in the registry"),
        (SPEC, {"name": "RL-001:rain"}, TOPIC, "wrong_quantity", "reports level, velocity, battery, rssi, supply, not 'rain'"),
            (SPEC, {"name": "RL-001:battery", "unit": "V"}, TOPIC, "wrong_unit", "battery must be in '%'"),
        (SPEC, {"unit": "cm"}, TOPIC, "wrong_unit", "must be in 'm', got unit 'cm'"),
        (SPEC, {"unit": None}, TOPIC, "wrong_unit", "got no unit"),
        (SPEC, {"value": "182.5"}, TOPIC, "bad_senml", "string value"),
        (SPEC, {"value": True}, TOPIC, "bad_senml", "boolean value"),
        (SPEC, {"value": None, "sum": 3.0}, TOPIC, "bad_senml", "no value"),
        (SPEC, {"value": float("nan")}, TOPIC, "non_finite", "not a finite number"),
        (SPEC, {"value": float("inf")}, TOPIC, "non_finite", "not a finite number"),
        (SPEC, {"time": NOW + MAX_FUTURE + timedelta(seconds=1)}, TOPIC, "future_time", "301 s ahead"),
    ],
)
def test_each_reason(spec: object, fields: dict[str, object], topic: str, reason: str, words: str) -> None:
    result = check(spec, record(**fields), topic=topic, now=NOW)  # type: ignore[arg-type]
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert words in result.detail
    assert result.topic == topic
    assert reason in REASONS


@pytest.mark.parametrize("value", [149.99, 1e6, -3.0])
def test_impossible_values_are_kept_and_flagged_bad(value: float) -> None:
    result = check(SPEC, record(value=value), topic=TOPIC, now=NOW)
    assert isinstance(result, Reading)
    assert result.flag == "bad"
    assert [n.check for n in result.qc] == ["range"]
    assert "outside the possible range [150, 215]" in result.qc[0].detail


def test_health_records_are_accepted_on_any_kind() -> None:
    result = check(SPEC, record(name="RL-001:battery", unit="%", value=87.0), topic=TOPIC, now=NOW)
    assert isinstance(result, Reading) and (result.quantity, result.flag) == ("battery", "good")


def test_registry_entry_of_another_sensor_is_a_mismatch() -> None:
    result = check(SPEC, record(name="level"), topic="yingji/sensors/RL-777/senml", now=NOW)
    assert isinstance(result, Rejection) and result.reason == "sensor_mismatch"
    assert result.sensor_id == "RL-777"


# The per-message ingest path (Ingestor.handle), without a broker.


async def test_handle_counts_duplicates_and_keeps_going() -> None:
    readings: list[Reading] = []
    rejections: list[Rejection] = []

    async def on_readings(batch: list[Reading]) -> None:
        if any(r.value == 200.0 for r in batch):
            raise RuntimeError("store is down")
        readings.extend(batch)

    async def on_rejection(rejection: Rejection) -> None:
        rejections.append(rejection)

    ingestor = Ingestor(registry=REGISTRY, on_readings=on_readings, on_rejection=on_rejection, clock=lambda: NOW)
    good = encode("RL-001", [Sample("level", 182.5, "m", NOW)])
    await ingestor.handle(TOPIC, good)
    await ingestor.handle(TOPIC, good)  # a QoS 1 redelivery
    await ingestor.handle(TOPIC, encode("RL-001", [Sample("level", 200.0, "m", NOW + timedelta(seconds=1))]))
    await ingestor.handle(TOPIC, b"\x00")
    await ingestor.handle("yingji/sensors/RL-001/status", b"maybe")
    await ingestor.handle("yingji/sensors/RL-001/status", b"")  # retained status deleted
    await ingestor.handle(TOPIC, encode("RL-001", [Sample("level", 182.6, "m", NOW + timedelta(seconds=2))]))
    assert [r.value for r in readings] == [182.5, 182.6]
    stats = ingestor.stats
    assert (stats.messages, stats.accepted, stats.duplicates) == (7, 3, 1)
    assert stats.handler_errors == 1
    assert stats.status_cleared == 1
    assert stats.rejected == {"malformed_json": 1, "bad_status": 1}
    assert [r.reason for r in rejections] == ["malformed_json", "bad_status"]


def test_shared_group_changes_only_the_senml_subscription() -> None:
    async def sink(_: object) -> None: ...

    ingestor = Ingestor(registry=REGISTRY, on_readings=sink, clock=lambda: NOW, shared_group="yingji")
    assert ingestor.subscriptions == ["$share/yingji/yingji/sensors/+/senml", "yingji/sensors/+/status",
                                     "yingji/sensors/+/ack"]
