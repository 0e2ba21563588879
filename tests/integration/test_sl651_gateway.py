"""SL 651 central station over real TCP sockets on 127.0.0.1, with simulated stations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio

from sensors.model import Reading, Rejection
from sensors.registry import Registry
from sensors.sl651 import (
    BEIJING,
    EOT,
    ESC,
    Element,
    Encoding,
    Function,
    Sl651Mapping,
    crc16,
    decode,
    encode,
)
from sensors.sl651_gateway import DeviceError, Sl651Device, Sl651Gateway

NOW = datetime(2024, 7, 10, 0, 5, 30, tzinfo=timezone.utc)
OBSERVED = datetime(2024, 7, 10, 8, 5, tzinfo=BEIJING)  # 00:05 UTC
STATION = "0012345678"
OTHER_STATION = "0012345679"


def clock() -> datetime:
    return NOW


def feature(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.6, 29.7]}, "properties": props}


def mapping() -> Sl651Mapping:
    """One logger with a rain gauge and a river gauge, and a second logger with a river gauge."""

    def rain(sensor_id: str, station: str) -> dict[str, Any]:
        return feature(
            {
                "id": sensor_id,
                "kind": "rain_gauge",
                "valid_min": 0,
                "valid_max": 300,
                "interval_s": 300,
                "sl651": {"station": station, "elements": {"PN05": "rain"}, "ignore": ["PJ"]},
            }
        )

    def level(sensor_id: str, station: str, **extra: Any) -> dict[str, Any]:
        return feature(
            {
                "id": sensor_id,
                "kind": "river_level",
                "datum": "Wusong",
                "valid_min": 150,
                "valid_max": 215,
                "interval_s": 300,
                "sl651": {"station": station, "elements": {"Z": "level", "VT": "supply"}, **extra},
            }
        )

    registry = Registry.from_geojson(
        {
            "type": "FeatureCollection",
            "features": [rain("rg-a", STATION), level("rl-a", STATION), level("rl-b", OTHER_STATION, password="4321")],
        }
    )
    return Sl651Mapping.from_specs(registry.values())


class Sink:
    """Collects what the gateway hands on; ``wait`` for a condition under a deadline."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.test_readings: list[Reading] = []
        self.rejections: list[Rejection] = []
        self.fail_readings = 0  # raise on the next n on_readings calls
        self._changed = asyncio.Event()

    async def on_readings(self, readings: list[Reading]) -> None:
        if self.fail_readings:
            self.fail_readings -= 1
            raise RuntimeError("store unavailable")
        self.readings += readings
        self._changed.set()

    async def on_test_readings(self, readings: list[Reading]) -> None:
        self.test_readings += readings
        self._changed.set()

    async def on_rejection(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)
        self._changed.set()

    def reasons(self) -> list[str]:
        return [r.reason for r in self.rejections]

    async def wait(self, condition: Any, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@pytest_asyncio.fixture(loop_scope="function")
async def sink() -> Sink:
    return Sink()


@pytest_asyncio.fixture(loop_scope="function")
async def gateway(sink: Sink) -> AsyncIterator[Sl651Gateway]:
    async with Sl651Gateway(
        mapping=mapping(),
        on_readings=sink.on_readings,
        on_rejection=sink.on_rejection,
        on_test_readings=sink.on_test_readings,
        clock=clock,
        host="127.0.0.1",
        port=0,
        center=1,
    ) as gw:
        yield gw


def device(gateway: Sl651Gateway, station: str = STATION, **kw: Any) -> Sl651Device:
    kw.setdefault("reply_timeout_s", 5.0)
    return Sl651Device(host="127.0.0.1", port=gateway.port, station=station, clock=clock, **kw)


RAIN_AND_LEVEL = (Element.of("PN05", 2.5), Element.of("PJ", 12.5), Element.of("Z", 182.345), Element.of("VT", 12.61))


async def test_timed_report_gives_readings_and_a_confirmation(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        answer = await station.report(RAIN_AND_LEVEL, observed=OBSERVED)
    assert not answer.upward and answer.function == Function.TIMED and answer.serial == 1
    assert answer.end == EOT and answer.station == STATION and answer.center == 1
    assert answer.sent == NOW  # the central station's clock
    at = datetime(2024, 7, 10, 0, 5, tzinfo=timezone.utc)
    assert [(r.sensor_id, r.quantity, r.value, r.unit, r.time) for r in sink.readings] == [
        ("rg-a", "rain", 2.5, "mm", at),
        ("rl-a", "level", 182.345, "m", at),
        ("rl-a", "supply", 12.61, "V", at),
    ]
    assert sink.rejections == []
    stats = gateway.stats
    counts = (stats.frames_ok, stats.confirmations, stats.readings, stats.ignored, stats.rejected_total)
    assert counts == (1, 1, 3, 1, 0)
    assert stats.bytes_in > 0 and stats.bytes_out == len(encode(answer))


async def test_ascii_station_is_answered_in_ascii(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway, encoding=Encoding.ASCII) as station:
        answer = await station.report((Element.of("Z", 181.2),), observed=OBSERVED, function=Function.ADDED)
    assert answer.encoding is Encoding.ASCII and answer.function == Function.ADDED
    assert [(r.sensor_id, r.value) for r in sink.readings] == [("rl-a", 181.2)]


async def test_garbage_then_a_good_frame(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        await station.send_bytes(b"AT+CSQ\r\n\x00\x7e\x01\xff" * 3)
        answer = await station.report(RAIN_AND_LEVEL, observed=OBSERVED)
    assert answer.serial == 1
    assert len(sink.readings) == 3
    assert "garbage" in sink.reasons() and set(sink.reasons()) == {"garbage"}
    assert gateway.stats.confirmations == 1


async def test_bad_crc_is_rejected_and_the_connection_stays_usable(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        damaged = bytearray(encode(station.report_frame(RAIN_AND_LEVEL, observed=OBSERVED)))
        damaged[-1] ^= 0x5A
        await station.send_bytes(bytes(damaged))
        await sink.wait(lambda: "bad_crc" in sink.reasons())
        answer = await station.report(RAIN_AND_LEVEL, observed=OBSERVED)
    assert answer.serial == 2  # the first answer is for the good frame: the damaged one got none
    (rejection,) = sink.rejections
    assert rejection.reason == "bad_crc" and rejection.topic == f"sl651/{STATION}"
    assert len(sink.readings) == 3 and gateway.stats.rejected["bad_crc"] == 1


async def test_two_stations_at_once(gateway: Sl651Gateway, sink: Sink) -> None:
    async def first() -> list[tuple[str, int]]:
        async with device(gateway) as station:
            one = await station.report(RAIN_AND_LEVEL, observed=OBSERVED)
            two = await station.report((Element.of("Z", 182.4),), observed=OBSERVED + timedelta(minutes=5))
        return [(one.station, one.serial), (two.station, two.serial)]

    async def second() -> list[tuple[str, int]]:
        async with device(gateway, OTHER_STATION, password=0x4321) as station:
            answer = await station.report((Element.of("Z", 170.5), Element.of("VT", 12.0)), observed=OBSERVED)
        return [(answer.station, answer.serial)]

    answers = await asyncio.gather(first(), second())
    assert answers == [[(STATION, 1), (STATION, 2)], [(OTHER_STATION, 1)]]
    assert sorted((r.sensor_id, r.quantity) for r in sink.readings) == sorted(
        [("rg-a", "rain"), ("rl-a", "level"), ("rl-a", "supply"), ("rl-b", "level"), ("rl-b", "supply"),
         ("rl-a", "level")]
    )  # fmt: skip
    assert gateway.stats.connections == 2 and gateway.stats.confirmations == 3


async def test_keep_alive_gets_no_answer_and_test_reports_stay_apart(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway, reply_timeout_s=0.3) as station:
        await station.keep_alive()
        with pytest.raises(DeviceError) as info:
            await station.receive()
        assert info.value.cause == "timeout"
        answer = await station.report((Element.of("Z", 180.0),), observed=OBSERVED, function=Function.TEST)
    assert answer.function == Function.TEST
    assert sink.readings == [] and [(r.sensor_id, r.value) for r in sink.test_readings] == [("rl-a", 180.0)]
    assert gateway.stats.keep_alives == 1 and gateway.stats.test_frames == 1


async def test_unknown_station_and_unmapped_element_are_rejected_but_confirmed(
    gateway: Sl651Gateway, sink: Sink
) -> None:
    async with device(gateway, "0099999999") as stranger:
        await stranger.report((Element.of("Z", 1.0),), observed=OBSERVED)
    async with device(gateway) as station:
        elements = (Element.of("Z", 180.0), Element.of("Q", 12.5), Element.of("PN05", None))
        await station.report(elements, observed=OBSERVED)
    assert sink.reasons() == ["unknown_station", "unmapped_element", "no_data"]
    assert [(r.sensor_id, r.value) for r in sink.readings] == [("rl-a", 180.0)]
    assert gateway.stats.confirmations == 2


async def test_wrong_password_or_centre_gets_no_answer(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway, OTHER_STATION, password=0x1111, reply_timeout_s=0.3) as station:
        with pytest.raises(DeviceError, match="timeout"):
            await station.report((Element.of("Z", 170.0),), observed=OBSERVED)
    async with device(gateway, center=9, reply_timeout_s=0.3) as station:
        with pytest.raises(DeviceError, match="timeout"):
            await station.report((Element.of("Z", 170.0),), observed=OBSERVED)
    assert sink.reasons() == ["bad_password", "wrong_center"] and sink.readings == []


async def test_resent_report_is_confirmed_once_more_but_not_stored_twice(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        frame = station.report_frame(RAIN_AND_LEVEL, observed=OBSERVED)
        for _ in range(2):
            await station.send_bytes(encode(frame))
            answer = await station.confirmation_of(frame)
            assert answer.serial == frame.serial
    assert len(sink.readings) == 3 and gateway.stats.duplicates == 1 and gateway.stats.confirmations == 2


async def test_failing_store_leaves_the_report_unconfirmed(gateway: Sl651Gateway, sink: Sink) -> None:
    sink.fail_readings = 1
    async with device(gateway, reply_timeout_s=0.3) as station:
        frame = station.report_frame(RAIN_AND_LEVEL, observed=OBSERVED)
        await station.send_bytes(encode(frame))
        with pytest.raises(DeviceError, match="timeout"):
            await station.confirmation_of(frame)
        await station.send_bytes(encode(frame))  # the station resends (§6.3.1.2 b)
        assert (await station.confirmation_of(frame)).serial == frame.serial
    assert len(sink.readings) == 3
    assert gateway.stats.unconfirmed == 1 and gateway.stats.handler_errors == 1


async def test_truncated_frame_at_close_is_reported(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        wire = encode(station.report_frame(RAIN_AND_LEVEL, observed=OBSERVED))
        await station.send_bytes(wire[:20])
    await sink.wait(lambda: "truncated" in sink.reasons())
    assert sink.readings == []


async def test_idle_connection_is_closed(sink: Sink) -> None:
    async with Sl651Gateway(
        mapping=mapping(), on_readings=sink.on_readings, clock=clock, host="127.0.0.1", port=0, idle_timeout_s=0.2
    ) as gw:
        async with device(gw) as station:
            with pytest.raises(DeviceError) as info:
                await station.receive()
            assert info.value.cause == "closed"
        assert gw.stats.idle_closed == 1 and gw.stats.open_connections == 0


async def test_keep_online_answers_with_esc(sink: Sink) -> None:
    async with Sl651Gateway(
        mapping=mapping(), on_readings=sink.on_readings, clock=clock, host="127.0.0.1", port=0, keep_online=True
    ) as gw:
        async with device(gw) as station:
            answer = await station.report((Element.of("Z", 180.0),), observed=OBSERVED)
    assert answer.end == ESC


async def test_downlink_frame_from_a_station_is_rejected(gateway: Sl651Gateway, sink: Sink) -> None:
    async with device(gateway) as station:
        # A confirmation-shaped downlink frame (Table 21) sent the wrong way.
        down = bytes.fromhex("7E7E0012345678011234328008020003240710080000") + b"\x04"
        await station.send_bytes(down + crc16(down).to_bytes(2, "big"))
        await sink.wait(lambda: sink.rejections != [])
    assert sink.reasons() == ["downlink_frame"]
    assert decode(down + crc16(down).to_bytes(2, "big")).upward is False


async def test_shutdown_closes_open_connections(sink: Sink) -> None:
    gw = Sl651Gateway(mapping=mapping(), on_readings=sink.on_readings, clock=clock, host="127.0.0.1", port=0)
    async with gw:
        port = gw.port
        async with device(gw) as station:
            await station.report((Element.of("Z", 180.0),), observed=OBSERVED)
            await gw.aclose()
            with pytest.raises(DeviceError) as info:
                await station.receive()
            assert info.value.cause == "closed"
    assert gw.stats.open_connections == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_run_serves_until_cancelled(sink: Sink) -> None:
    gw = Sl651Gateway(mapping=mapping(), on_readings=sink.on_readings, clock=clock, host="127.0.0.1", port=0)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(gw.run())
        async with asyncio.timeout(5):
            await gw.serving.wait()
        async with device(gw) as station:
            await station.report((Element.of("Z", 180.0),), observed=OBSERVED)
        task.cancel()
    assert not gw.serving.is_set() and len(sink.readings) == 1
