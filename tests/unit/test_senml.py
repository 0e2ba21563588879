"""SenML (RFC 8428) decoding, resolution and encoding."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from sensors.devices import SimClock
from sensors.model import Reading, SensorError
from sensors.mqtturl import BrokerUrlError, MqttUrl, parse_mqtt_url
from sensors.senml import (
    Sample,
    SenMLError,
    SenMLJSONError,
    SenMLRecord,
    decode,
    decode_each,
    encode,
    split_name,
)
from sensors.topics import (
    SENML_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    TopicError,
    parse_topic,
    senml_topic,
    shared_subscription,
    status_topic,
)

NOW = datetime(2024, 7, 10, 6, 0, tzinfo=timezone.utc)
T0 = 1_720_591_200.0  # 2024-07-10T06:00:00Z


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def test_rfc8428_example_multiple_measurements() -> None:
    # RFC 8428 §5.1.2 style: base name, base time, base unit, relative offsets.
    pack = [
        {"bn": "urn:dev:ow:10e2073a01080063:", "bt": 1.320067464e09, "bu": "%RH", "v": 20},
        {"u": "lon", "v": 24.30621},
        {"u": "lat", "v": 60.07965},
        {"t": 60, "v": 20.3},
        {"u": "lon", "t": 60, "v": 24.30622},
    ]
    records = decode(json.dumps(pack), now=NOW)
    assert [r.name for r in records] == ["urn:dev:ow:10e2073a01080063:"] * 5
    assert [r.unit for r in records] == ["%RH", "lon", "lat", "%RH", "lon"]
    assert records[0].time == at(1.320067464e09)
    assert records[3].time == at(1.320067464e09 + 60)
    assert records[3].value == 20.3


def test_base_value_and_base_sum_are_added() -> None:
    pack = [
        {"bn": "RL-1:", "bt": T0, "bu": "m", "bv": 180.0, "bs": 10.0, "n": "level", "v": 1.25},
        {"n": "level", "t": 60, "v": -0.5, "s": 2.0},
        {"n": "level", "t": 120},  # no v: the base value stands for it
    ]
    records = decode(json.dumps(pack), now=NOW)
    assert [r.value for r in records] == [181.25, 179.5, 180.0]
    assert records[0].sum == 10.0
    assert records[1].sum == 12.0
    assert records[2].time == at(T0 + 120)


def test_relative_time_is_relative_to_now() -> None:
    records = decode(b'[{"bn":"RG-1:","n":"rain","u":"mm","v":1.5,"t":-30},{"n":"rain","u":"mm","v":0}]', now=NOW)
    assert records[0].time == NOW - timedelta(seconds=30)
    assert records[1].time == NOW  # no time at all means "now"
    # 2**28 and above is absolute (RFC 8428 §4.5.3).
    (record,) = decode(json.dumps([{"n": "x", "v": 1, "t": 2**28}]), now=NOW)
    assert record.time == at(2**28)


def test_relative_base_time_plus_offset() -> None:
    (record,) = decode(b'[{"bn":"RL-1:","bt":-120,"n":"level","u":"m","v":3,"t":60}]', now=NOW)
    assert record.time == NOW - timedelta(seconds=60)


def test_several_sensors_in_one_pack_and_urn_names() -> None:
    pack = [
        {"bn": "urn:dev:yingji:RL-1:", "bt": T0, "n": "level", "u": "m", "v": 3.5},
        {"bn": "urn:dev:yingji:RG-2:", "n": "rain", "u": "mm", "v": 0.4, "t": 5},
        {"n": "rain", "u": "mm", "v": 0.6, "t": 10, "ut": 300},
    ]
    records = decode(json.dumps(pack), now=NOW)
    assert [split_name(r.name) for r in records] == [("RL-1", "level"), ("RG-2", "rain"), ("RG-2", "rain")]
    assert records[2].time == at(T0 + 10)
    assert records[2].update_time_s == 300.0
    assert [r.index for r in records] == [0, 1, 2]


def test_string_boolean_and_data_values() -> None:
    pack = [
        {"bn": "D-1:", "n": "msg", "vs": "ok"},
        {"n": "door", "vb": True},
        {"n": "blob", "vd": "aGk"},  # base64url, no padding
    ]
    values = [r.value for r in decode(json.dumps(pack), now=NOW)]
    assert values == ["ok", True, b"hi"]


def test_record_of_only_base_fields_yields_nothing() -> None:
    records = decode(b'[{"bn":"RL-1:","bt":1720591200,"bu":"m"},{"n":"level","v":2}]', now=NOW)
    assert len(records) == 1
    assert records[0] == SenMLRecord(name="RL-1:level", time=at(T0), value=2.0, unit="m", index=1)


def test_bver_and_unknown_fields() -> None:
    # Unknown labels are ignored (RFC 8428 §4.4) ...
    (record,) = decode(b'[{"bver":10,"n":"a","v":1,"extra":{"x":1}}]', now=NOW)
    assert record.value == 1.0
    # ... unless they end in "_" (must understand).
    with pytest.raises(SenMLError, match="must-understand"):
        decode(b'[{"n":"a","v":1,"foo_":1}]', now=NOW)


def test_nan_is_passed_on_for_qc() -> None:
    # JSON has no NaN, but Python's json accepts it; QC rejects it as non_finite.
    (record,) = decode(b'[{"n":"RL-1:level","u":"m","v":NaN}]', now=NOW)
    assert isinstance(record.value, float) and math.isnan(record.value)


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (b"{not json", "malformed_json", "not JSON"),
        (b"\xff\xfe", "malformed_json", "UTF-8"),
        (b"", "malformed_json", "not JSON"),
        (b'{"n":"a","v":1}', "bad_senml", "JSON array"),
        (b"[]", "bad_senml", "empty"),
        (b"[1, 2]", "bad_senml", "JSON object"),
        (b'"text"', "bad_senml", "got a JSON string"),
    ],
)
def test_whole_pack_errors(payload: bytes, code: str, words: str) -> None:
    with pytest.raises(SenMLError, match=words) as info:
        decode_each(payload, now=NOW)
    assert info.value.code == code
    assert isinstance(info.value, SensorError)
    assert isinstance(info.value, SenMLJSONError) == (code == "malformed_json")


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"n": "a", "v": "3.2"}, "'v' must be a number, got string"),
        ({"n": "a", "v": True}, "'v' must be a number, got boolean"),
        ({"n": "a", "v": None}, "'v' must be a number, got null"),
        ({"n": "a", "v": [1]}, "'v' must be a number, got array"),
        ({"n": 5, "v": 1}, "'n' must be a string"),
        ({"n": "a", "u": 1, "v": 1}, "'u' must be a string"),
        ({"n": "a", "v": 1, "t": "now"}, "'t' must be a number"),
        ({"n": "a", "vb": "yes"}, "'vb' must be true or false"),
        ({"n": "a", "vs": 3}, "'vs' must be a string"),
        ({"n": "a", "v": 1, "vs": "1"}, "one value field, got v and vs"),
        ({"n": "a"}, "no value"),
        ({"v": 1}, "no name"),
        ({"n": "bad name!", "v": 1}, "characters outside"),
        ({"n": "a", "vd": "!!"}, "base64url"),
        ({"n": "a", "v": 1, "ut": -5}, "'ut'"),
        ({"n": "a", "v": 1, "t": 1e300}, "out of range"),
    ],
)
def test_record_errors_are_readable(record: dict[str, object], words: str) -> None:
    with pytest.raises(SenMLError, match=words.replace("(", r"\(")):
        decode(json.dumps([record]), now=NOW)


def test_duplicate_key_in_one_record() -> None:
    with pytest.raises(SenMLError, match="'v' appears twice"):
        decode(b'[{"n":"a","v":1,"v":2}]', now=NOW)


def test_a_bad_record_spoils_only_itself() -> None:
    pack = [
        {"bn": "RL-1:", "n": "level", "u": "m", "v": 1},
        {"n": "level", "u": "m", "v": "oops"},
        {"n": "level", "u": "m", "v": 3},
    ]
    items = decode_each(json.dumps(pack), now=NOW)
    assert [type(i).__name__ for i in items] == ["SenMLRecord", "SenMLError", "SenMLRecord"]
    assert isinstance(items[1], SenMLError) and items[1].index == 1


def test_a_bad_base_field_spoils_the_records_after_it() -> None:
    pack = [
        {"bn": "RL-1:", "n": "level", "u": "m", "v": 1},
        {"bn": 7, "n": "level", "v": 2},
        {"n": "level", "u": "m", "v": 3},
    ]
    items = decode_each(json.dumps(pack), now=NOW)
    assert isinstance(items[0], SenMLRecord)
    assert isinstance(items[1], SenMLError) and "'bn' must be a string" in str(items[1])
    assert isinstance(items[2], SenMLError) and "bad base field in record 1" in str(items[2])


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"bver": 11, "n": "a", "v": 1}, "newer than 10"),
        ({"bver": 2.5, "n": "a", "v": 1}, "positive integer"),
    ],
)
def test_versions(record: dict[str, object], words: str) -> None:
    with pytest.raises(SenMLError, match=words):
        decode(json.dumps([record]), now=NOW)
    with pytest.raises(SenMLError, match="versions 5 and 6"):
        decode(b'[{"bver":5,"n":"a","v":1},{"bver":6,"n":"a","v":1}]', now=NOW)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decode(b'[{"n":"a","v":1}]', now=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("urn:dev:yingji:RL-001:level", ("RL-001", "level")),
        ("RG_7:rain", ("RG_7", "rain")),
        ("level", (None, "level")),
    ],
)
def test_split_name(name: str, expected: tuple[str | None, str]) -> None:
    assert split_name(name) == expected


@pytest.mark.parametrize("name", ["urn:dev:mac:0024be:level", "RL-1:", "urn:dev:yingji:", "a.b:level"])
def test_split_name_rejects_other_schemes(name: str) -> None:
    with pytest.raises(SenMLError):
        split_name(name)


def test_encode_round_trip() -> None:
    samples = [
        Sample(quantity="level", value=182.35, unit="m", time=at(T0)),
        Reading(sensor_id="RL-1", quantity="level", value=182.4, unit="m", time=at(T0 + 300)),
    ]
    payload = encode("RL-1", samples)
    pack = json.loads(payload)
    assert pack[0]["bn"] == "urn:dev:yingji:RL-1:" and pack[0]["bt"] == T0
    assert pack[1]["t"] == 300
    records = decode(payload, now=NOW)
    assert [(r.name, r.value, r.unit, r.time) for r in records] == [
        ("urn:dev:yingji:RL-1:level", 182.35, "m", at(T0)),
        ("urn:dev:yingji:RL-1:level", 182.4, "m", at(T0 + 300)),
    ]


def test_encode_refuses_bad_input() -> None:
    with pytest.raises(SenMLError):
        encode("bad/id", [Sample("level", 1.0, "m", NOW)])
    with pytest.raises(SenMLError):
        encode("RL-1", [])
    with pytest.raises(SenMLError):
        encode("RL-1", [Sample("level", "1", "m", NOW)])  # type: ignore[arg-type]


# The rest of the wire contract: topics, broker URLs, simulation clock.


def test_topics() -> None:
    assert senml_topic("RL-001") == "yingji/sensors/RL-001/senml"
    assert status_topic("RG_7") == "yingji/sensors/RG_7/status"
    assert SENML_SUBSCRIPTION == "yingji/sensors/+/senml"
    assert STATUS_SUBSCRIPTION == "yingji/sensors/+/status"
    assert parse_topic("yingji/sensors/RL-001/senml") == ("RL-001", "senml")
    assert parse_topic("yingji/sensors/RL-001/status") == ("RL-001", "status")
    assert shared_subscription("yingji") == "$share/yingji/yingji/sensors/+/senml"


@pytest.mark.parametrize(
    "topic",
    [
        "yingji/sensors/RL-001",
        "yingji/sensors/RL-001/senml/extra",
        "yingji/sensor/RL-001/senml",
        "yingji/sensors/RL 001/senml",
        "yingji/sensors//senml",
        "yingji/sensors/RL-001/json",
        "",
    ],
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_topic_builders_refuse_bad_ids() -> None:
    for bad in ("a/b", "+", "#", "", "水位"):
        with pytest.raises(TopicError):
            senml_topic(bad)
    with pytest.raises(TopicError):
        shared_subscription("a/b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:18830", MqttUrl("127.0.0.1", 18830)),
        ("mqtt://broker", MqttUrl("broker", 1883)),
        ("mqtts://broker", MqttUrl("broker", 8883, tls=True)),
        ("mqtt://u%40x:p@broker:1884/", MqttUrl("broker", 1884, username="u@x", password="p")),
        ("mqtt://[::1]:1883", MqttUrl("::1", 1883)),
    ],
)
def test_mqtt_urls(url: str, expected: MqttUrl) -> None:
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize("url", ["http://broker:80", "mqtt://", "mqtt://h:99999", "mqtt://h:1883/topic", "127.0.0.1"])
def test_bad_mqtt_urls(url: str) -> None:
    with pytest.raises(BrokerUrlError):
        parse_mqtt_url(url)


def test_url_round_trip() -> None:
    assert parse_mqtt_url("mqtt://u:p@127.0.0.1:1884").url == "mqtt://127.0.0.1:1884"
    assert parse_mqtt_url("mqtts://[::1]").url == "mqtts://[::1]:8883"


def test_sim_clock_runs_at_speed() -> None:
    wall = [100.0]
    clock = SimClock(NOW, speed=60.0, wall=lambda: wall[0])
    assert clock() == NOW
    wall[0] += 2.5
    assert clock() == NOW + timedelta(minutes=2.5)
    with pytest.raises(ValueError):
        SimClock(NOW, speed=0)
    with pytest.raises(ValueError):
        SimClock(datetime(2024, 1, 1), speed=1)
