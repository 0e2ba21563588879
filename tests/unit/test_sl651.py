"""SL 651-2014 codec, stream splitter and reading mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.model import SensorError
from sensors.registry import Registry
from sensors.sl651 import (
    BEIJING,
    ELEMENTS,
    EOT,
    ESC,
    ETB,
    ACK,
    ETX,
    FRAME_REASONS,
    Element,
    EncodeError,
    Encoding,
    Frame,
    FrameError,
    FrameSplitter,
    Function,
    Garbage,
    MappingError,
    Observation,
    Sl651Mapping,
    StationReport,
    SUPPORTED_FUNCTIONS,
    confirmation,
    crc16,
    decode,
    encode,
)

# A worked exchange published in "SL651-2014全协议解析(HEX编码格式)",
# https://www.toymoban.com/news/detail-686475.html (also reposted at
# https://e-com-net.com/article/1736683930196697088.htm): uplink frames of a logger and the
# central station's downlink answers, with the decoded values the article gives.
PUBLISHED_KEEP_ALIVE = "7E7E01001234567812342F0008020003591011155111036BCA"
PUBLISHED_KEEP_ALIVE_2 = "7E7E00987654321012342F0008027E0822101110074703C3AE"
PUBLISHED_TEST_UP = (
    "7E7E010012345678123430002B020003591011154947F1F1001234567848F0F0591011154920190000052619000005"
    "392300000127381211150320FA"
)
PUBLISHED_TEST_DOWN = "7E7E00123456780112343080080200035910111549471B75D4"
PUBLISHED_TIMED_UP = (
    "7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F0170718110020190000402619000040"
    "3923000104903812109903A421"
)
PUBLISHED_TIMED_DOWN = "7E7E00112233440503E83280080200341707181100161BE5D4"

T0 = datetime(2024, 7, 10, 8, 0, tzinfo=BEIJING)  # 2024-07-10T00:00Z


def hex_frame(
    function: int,
    body: bytes,
    *,
    station: str = "0012345678",
    center: int = 1,
    direction: int = 0,
    start: int = 0x02,
    end: int = ETX,
    crc: int | None = None,
) -> bytes:
    """A HEX/BCD uplink frame assembled by hand (Table 20), independent of ``encode``."""
    word = (direction << 12) | len(body)
    raw = (
        b"\x7e\x7e"
        + bytes([center])
        + bytes.fromhex(station)
        + b"\x12\x34"
        + bytes([function])
        + word.to_bytes(2, "big")
        + bytes([start])
        + body
        + bytes([end])
    )
    return raw + (crc16(raw) if crc is None else crc).to_bytes(2, "big")


SERIAL_SENT = bytes.fromhex("0007240710080000")  # serial 7, sent 2024-07-10 08:00:00
HEAD = bytes.fromhex("F1F1001234567848F0F02407100800")  # ST 0012345678 H, TT 2024-07-10 08:00


def report_body(elements_hex: str) -> bytes:
    return SERIAL_SENT + HEAD + bytes.fromhex(elements_hex)


def simple_frame(elements: tuple[Element, ...], *, encoding: Encoding = Encoding.HEX, **kw: Any) -> Frame:
    fields: dict[str, Any] = {
        "station": "0012345678",
        "function": Function.TIMED,
        "serial": 7,
        "sent": datetime(2024, 7, 10, 8, 0, 30, tzinfo=BEIJING),
        "encoding": encoding,
        "reports": (StationReport("0012345678", "H", (Observation(T0, elements),)),),
    }
    fields.update(kw)
    return Frame(**fields)


# --- CRC and the published exchange -------------------------------------------------------


def test_crc_is_crc16_modbus_check_value() -> None:
    # CRC-16/MODBUS catalogue check value over ASCII "123456789".
    assert crc16(b"123456789") == 0x4B37
    assert crc16(b"") == 0xFFFF


@pytest.mark.parametrize(
    "frame_hex",
    [
        PUBLISHED_KEEP_ALIVE,
        PUBLISHED_KEEP_ALIVE_2,
        PUBLISHED_TEST_UP,
        PUBLISHED_TEST_DOWN,
        PUBLISHED_TIMED_UP,
        PUBLISHED_TIMED_DOWN,
    ],
)
def test_published_frames_check_and_reencode_byte_for_byte(frame_hex: str) -> None:
    raw = bytes.fromhex(frame_hex)
    assert crc16(raw[:-2]) == int.from_bytes(raw[-2:], "big")  # sent high byte first (Table 11)
    assert encode(decode(raw)) == raw


def test_published_keep_alive() -> None:
    frame = decode(bytes.fromhex(PUBLISHED_KEEP_ALIVE))
    header = (frame.function, frame.station, frame.center, frame.password, frame.serial)
    assert header == (0x2F, "0012345678", 1, 0x1234, 3)
    assert frame.upward and frame.end == ETX and frame.reports == ()
    assert frame.sent == datetime(2059, 10, 11, 15, 51, 11, tzinfo=BEIJING)  # the article's logger clock
    other = decode(bytes.fromhex(PUBLISHED_KEEP_ALIVE_2))
    assert (other.station, other.center, other.serial) == ("9876543210", 0, 0x7E08)


def test_published_test_report_values() -> None:
    frame = decode(bytes.fromhex(PUBLISHED_TEST_UP))
    assert frame.function == Function.TEST
    (report,) = frame.reports
    assert (report.station, report.category) == ("0012345678", "H")
    (observation,) = report.observations
    assert observation.time == datetime(2059, 10, 11, 15, 49, tzinfo=BEIJING)
    values = {e.code: e.value for e in observation.elements}
    # "当前降水量:0.5mm,降水量累计值:0.5mm,瞬时河道水位:0.127m,电源电压:11.15V"
    assert values == {"PJ": 0.5, "PT": 0.5, "Z": 0.127, "VT": 11.15}
    assert [e.decimals for e in observation.elements] == [1, 1, 3, 2]


def test_published_timed_report_values_and_answer() -> None:
    frame = decode(bytes.fromhex(PUBLISHED_TIMED_UP))
    assert (frame.function, frame.center, frame.password, frame.serial) == (0x32, 5, 0x03E8, 0x34)
    values = {e.code: e.value for e in frame.reports[0].observations[0].elements}
    assert values == {"PJ": 4.0, "PT": 4.0, "Z": 10.49, "VT": 10.99}
    # The published answer echoes the station's send time and ends with ESC.
    answer = confirmation(frame, sent=frame.sent, keep_online=True)
    assert encode(answer) == bytes.fromhex(PUBLISHED_TIMED_DOWN)
    down = decode(bytes.fromhex(PUBLISHED_TIMED_DOWN))
    assert down == answer and not down.upward and down.end == ESC


def test_published_test_report_answer() -> None:
    up = decode(bytes.fromhex(PUBLISHED_TEST_UP))
    assert encode(confirmation(up, sent=up.sent, keep_online=True)) == bytes.fromhex(PUBLISHED_TEST_DOWN)


def test_confirmation_end_characters_and_clock() -> None:
    up = simple_frame((Element.of("PT", 1.0),))
    now = datetime(2024, 7, 10, 0, 0, 1, 999_000, tzinfo=timezone.utc)
    answer = confirmation(up, sent=now)
    assert answer.end == EOT and answer.sent == now.replace(microsecond=0)
    assert (answer.serial, answer.function, answer.upward, answer.reports) == (7, Function.TIMED, False, ())
    assert confirmation(up, sent=now, keep_online=True).end == ESC
    more = simple_frame((Element.of("PT", 1.0),), end=ETB)
    assert confirmation(more, sent=now).end == ACK  # more frames follow (Table 10)
    with pytest.raises(EncodeError, match="only uplink reports"):
        confirmation(decode(bytes.fromhex(PUBLISHED_KEEP_ALIVE)), sent=now)
    wire = encode(answer)
    assert wire[11:13] == b"\x80\x08"  # downlink flag 1000, body of 8 bytes (Table 21)
    assert wire[2:7] == bytes.fromhex("0012345678") and wire[7] == 1  # station before centre


# --- ASCII encoding ------------------------------------------------------------------------


def test_ascii_frame_layout() -> None:
    frame = simple_frame(
        (Element.of("PJ", 0.5), Element("Z", -1.25, 2), Element.of("VT", None)),
        encoding=Encoding.ASCII,
        center=0x1F,
        password=0xAB12,
    )
    wire = encode(frame)
    body = b"0007240710080030ST 0012345678 H TT 2407100800 PJ 0.5 Z -1.25 VT M "
    head = b"\x01" + b"1F0012345678AB1232" + b"0" + f"{len(body):03X}".encode() + b"\x02"
    assert wire[:-4] == head + body + b"\x03"
    assert wire[-4:] == f"{crc16(wire[:-4]):04X}".encode()
    assert decode(wire) == frame


def test_ascii_accepts_lowercase_hex_and_downlink_answer() -> None:
    frame = simple_frame((Element.of("PT", 12.5),), encoding=Encoding.ASCII, station="00abcdef12")
    answer = confirmation(frame, sent=datetime(2024, 7, 10, 0, 1, tzinfo=timezone.utc))
    wire = encode(answer)
    assert wire[1:13] == b"00ABCDEF1201" and wire[19] == ord("8")  # station, centre, downlink
    assert decode(wire) == answer
    lower = bytearray(encode(frame))
    lower[1:23] = bytes(lower[1:23]).lower()
    lower[-4:] = f"{crc16(bytes(lower[:-4])):04x}".encode()
    assert decode(bytes(lower)) == frame


# --- rejections ----------------------------------------------------------------------------


def reason_of(data: bytes) -> str:
    with pytest.raises(FrameError) as info:
        decode(data)
    assert info.value.reason in FRAME_REASONS
    assert isinstance(info.value, SensorError)
    return info.value.reason


def test_reject_bad_start() -> None:
    assert reason_of(b"\x7e\x7d" + bytes(30)) == "bad_start"
    assert reason_of(b"") == "bad_start"


def test_reject_truncated() -> None:
    good = bytes.fromhex(PUBLISHED_TIMED_UP)
    assert reason_of(good[:10]) == "truncated"
    assert reason_of(good[:-1]) == "truncated"
    assert reason_of(b"\x01" + b"0" * 10) == "truncated"


def test_reject_bad_length() -> None:
    assert reason_of(bytes.fromhex(PUBLISHED_TIMED_UP) + b"\x00") == "bad_length"
    assert reason_of(hex_frame(0x32, b"\x00\x07\x24")) == "bad_length"  # no room for the send time


def test_reject_bad_header_and_direction() -> None:
    assert reason_of(hex_frame(0x32, report_body("2019000001"), start=0x05)) == "bad_header"
    assert reason_of(hex_frame(0x32, report_body("2019000001"), direction=0b0100)) == "bad_direction"
    ascii_frame = encode(simple_frame((Element.of("PT", 1.0),), encoding=Encoding.ASCII))
    assert reason_of(ascii_frame[:5] + b"G" + ascii_frame[6:]) == "bad_header"
    assert reason_of(ascii_frame[:19] + b"4" + ascii_frame[20:]) == "bad_direction"


def test_reject_bad_end() -> None:
    assert reason_of(hex_frame(0x32, report_body("2019000001"), end=EOT)) == "bad_end"  # EOT is downlink only


def test_reject_bad_crc_hex_and_ascii() -> None:
    good = bytearray(bytes.fromhex(PUBLISHED_TIMED_UP))
    good[40] ^= 0x01
    assert reason_of(bytes(good)) == "bad_crc"
    ascii_frame = bytearray(encode(simple_frame((Element.of("PT", 1.0),), encoding=Encoding.ASCII)))
    ascii_frame[-1] = ord("G")
    assert reason_of(bytes(ascii_frame)) == "bad_crc"


def test_reject_multipacket_and_functions() -> None:
    assert reason_of(hex_frame(0x36, b"\x00\x02\x01" + SERIAL_SENT, start=0x16)) == "multipacket"
    assert reason_of(hex_frame(0x60, SERIAL_SENT)) == "unknown_function"
    assert reason_of(hex_frame(0x31, SERIAL_SENT)) == "unsupported_function"  # uniform interval
    assert reason_of(hex_frame(0x37, SERIAL_SENT)) == "unsupported_function"


def test_reject_bad_bcd_and_bad_time() -> None:
    assert reason_of(hex_frame(0x32, report_body("392300000A27"))) == "bad_bcd"  # nibble A
    assert reason_of(hex_frame(0x32, bytes.fromhex("00072407100800A0") + HEAD)) == "bad_bcd"
    assert reason_of(hex_frame(0x32, bytes.fromhex("0007241310080000") + HEAD)) == "bad_time"  # month 13
    bad_observation = SERIAL_SENT + bytes.fromhex("F1F1001234567848F0F02402300800")  # 30 February
    assert reason_of(hex_frame(0x32, bad_observation)) == "bad_time"


def test_reject_bad_body() -> None:
    assert reason_of(hex_frame(0x32, SERIAL_SENT + bytes.fromhex("2019000005"))) == "bad_body"  # no ST/TT
    assert reason_of(hex_frame(0x32, report_body("3923000001"))) == "bad_body"  # data runs out
    assert reason_of(hex_frame(0x32, report_body("3900"))) == "bad_body"  # zero length
    assert reason_of(hex_frame(0x32, report_body("F46000"))) == "bad_body"  # DRP of 12 bytes holds 1
    assert reason_of(hex_frame(0x2F, SERIAL_SENT + b"\x00")) == "bad_body"  # keep-alive with extra bytes
    assert reason_of(hex_frame(0x32, SERIAL_SENT)) == "bad_body"  # a report with no station group


def test_reject_ascii_bad_value() -> None:
    good = encode(simple_frame((Element.of("PT", 12.5),), encoding=Encoding.ASCII))
    text = good[:-4].replace(b"PT 12.5", b"PT 12,5")
    assert reason_of(text + f"{crc16(text):04X}".encode()) == "bad_value"


def test_errors_name_the_station() -> None:
    bad = bytearray(bytes.fromhex(PUBLISHED_TIMED_UP))
    bad[-1] ^= 0xFF
    with pytest.raises(FrameError) as info:
        decode(bytes(bad))
    assert info.value.station == "0011223344" and "computed" in info.value.detail


# --- BCD values ----------------------------------------------------------------------------


def elements_of(data: bytes) -> tuple[Element, ...]:
    return decode(data).reports[0].observations[0].elements


def test_negative_values_follow_the_ff_rule() -> None:
    # §6.6.3.3 a): odd digit count -> "FF0" before the digits; even -> one byte FF.
    (air,) = elements_of(hex_frame(0x32, report_body("0219FF0053")))
    assert air == Element("AI", -5.3, 1)
    (volt,) = elements_of(hex_frame(0x32, report_body("381AFF1234")))
    assert volt == Element("VT", -12.34, 2)
    wire = encode(simple_frame((Element.of("AI", -5.3), Element.of("VT", -12.34))))
    assert bytes.fromhex("0219FF0053") in wire and bytes.fromhex("381AFF1234") in wire


def test_no_data_marker_all_f() -> None:
    (z, pt) = elements_of(hex_frame(0x32, report_body("3923FFFFFFFF" + "2619FFFFFF")))
    assert z == Element("Z", None, 3) and pt == Element("PT", None, 1)
    assert bytes.fromhex("3923FFFFFFFF") in encode(simple_frame((Element.of("Z", None),)))


def test_bcd_widths_and_zero() -> None:
    wire = encode(simple_frame((Element.of("Z", 0.0), Element.of("PT", 0.5), Element.of("NS", 7))))
    assert bytes.fromhex("392300000000") in wire  # N(7,3): 4 bytes
    assert bytes.fromhex("2619000005") in wire  # N(6,1): 3 bytes
    assert bytes.fromhex("190807") in wire  # N(2): 1 byte
    wide = simple_frame((Element("Z", 123456.789, 3),))  # more digits than N(7,3): widened
    assert bytes.fromhex("392B0123456789") in encode(wide) and decode(encode(wide)) == wide
    assert elements_of(encode(simple_frame((Element("Z", 12.3456, 3),))))[0].value == 12.346  # rounded


def test_series_and_unknown_identifiers() -> None:
    rain = (0.0, 0.5, None, 25.4) + (0.1,) * 8
    level = (1.5, None) + (655.34,) * 10
    frame = simple_frame(
        (
            Element.of("DRP", rain),
            Element.of("DRZ1", level),
            Element("ZT", "00000001", 0),
            Element("X76", "0A0B", 2),
            Element("XFF12", "01", 0),
        )
    )
    wire = encode(frame)
    assert bytes.fromhex("F4600005FFFE") in wire  # 12 bytes HEX of 0.1 mm, FF = no data
    assert bytes.fromhex("F5C00096FFFF") in wire  # 24 bytes HEX of 0.01 m, FFFF = no data
    assert decode(wire) == frame
    with pytest.raises(EncodeError, match="outside 0..25.4"):
        encode(simple_frame((Element.of("DRP", (25.5,) * 12),)))
    with pytest.raises(EncodeError, match="12 values"):
        encode(simple_frame((Element.of("DRP", (1.0,) * 11),)))


def test_encode_refuses_bad_frames() -> None:
    naive = datetime(2024, 7, 10, 8, 0)
    with pytest.raises(EncodeError, match="timezone-aware"):
        encode(simple_frame((), sent=naive))
    with pytest.raises(EncodeError, match="whole minute"):
        encode(simple_frame((), reports=(StationReport("0012345678", "H", (Observation(T0 + timedelta(seconds=5)),)),)))
    with pytest.raises(EncodeError, match="10 hex digits"):
        encode(simple_frame((), station="00123456"))
    with pytest.raises(EncodeError, match="finite"):
        encode(simple_frame((Element.of("Z", float("nan")),)))
    with pytest.raises(EncodeError, match="1..31"):
        encode(simple_frame((Element("Z", 10.0**62, 0),)))
    with pytest.raises(EncodeError, match="Table C.1"):
        Element.of("NOPE", 1.0)
    with pytest.raises(EncodeError, match="own meaning"):
        encode(simple_frame((Element("X39", "01", 0),)))
    with pytest.raises(EncodeError, match="not allowed"):
        encode(simple_frame((Element.of("PT", 1.0),), end=EOT))
    with pytest.raises(EncodeError, match="at most 4095"):
        encode(simple_frame(tuple(Element.of("Z", 1.0) for _ in range(700))))


# --- times ---------------------------------------------------------------------------------


def test_wire_times_are_beijing_time() -> None:
    utc = datetime(2024, 7, 9, 21, 0, tzinfo=timezone.utc)  # 2024-07-10 05:00 in Beijing
    frame = simple_frame((Element.of("PT", 1.0),), sent=utc, reports=(
        StationReport("0012345678", "P", (Observation(utc, (Element.of("PT", 1.0),)),)),
    ))  # fmt: skip
    wire = encode(frame)
    assert wire[16:22] == bytes.fromhex("240710050000")  # send time digits are local
    assert bytes.fromhex("F0F02407100500") in wire
    decoded = decode(wire)
    assert decoded.sent.utcoffset() == timedelta(hours=8) and decoded.sent == utc


# --- splitter ------------------------------------------------------------------------------


def test_splitter_skips_garbage_and_reassembles() -> None:
    frames = [bytes.fromhex(PUBLISHED_TEST_UP), encode(simple_frame((Element.of("PT", 2.0),), encoding=Encoding.ASCII))]
    stream = b"\x00\xff\x7e\x01garbage" + frames[0] + b"\x7e" + frames[1]
    splitter = FrameSplitter()
    out: list[bytes | Garbage] = []
    for byte in stream:
        out += splitter.feed(bytes([byte]))
    assert [item for item in out if isinstance(item, bytes)] == frames
    assert sum(item.size for item in out if isinstance(item, Garbage)) == len(stream) - sum(map(len, frames))
    assert splitter.buffered == 0 and splitter.flush() == b""


def test_splitter_passes_a_bad_crc_frame_whole_and_keeps_going() -> None:
    bad = bytearray(bytes.fromhex(PUBLISHED_TIMED_UP))
    bad[-2] ^= 0xFF
    good = bytes.fromhex(PUBLISHED_TEST_UP)
    out = FrameSplitter().feed(bytes(bad) + good)
    assert out == [bytes(bad), good]


def test_splitter_holds_a_partial_frame_until_flush() -> None:
    splitter = FrameSplitter()
    frame = bytes.fromhex(PUBLISHED_TEST_UP)
    assert splitter.feed(frame[:30]) == []
    assert splitter.buffered == 30
    assert splitter.flush() == frame[:30] and splitter.buffered == 0


def test_splitter_rejects_a_false_start_whose_end_is_wrong() -> None:
    false_start = hex_frame(0x32, report_body("2019000001"))[:-3] + b"\x00\x00\x00"  # no end character
    good = bytes.fromhex(PUBLISHED_KEEP_ALIVE)
    out = FrameSplitter().feed(false_start + good)
    assert out[-1] == good and isinstance(out[0], Garbage)


# --- mapping -------------------------------------------------------------------------------


def feature(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.6, 29.7]}, "properties": props}


def rain_props(sensor_id: str = "rg-1", **sl651: Any) -> dict[str, Any]:
    return {"id": sensor_id, "kind": "rain_gauge", "valid_min": 0, "valid_max": 300, "interval_s": 300, "sl651": sl651}


def level_props(sensor_id: str = "rl-1", **sl651: Any) -> dict[str, Any]:
    return {
        "id": sensor_id,
        "kind": "river_level",
        "datum": "Wusong",
        "valid_min": 150,
        "valid_max": 215,
        "interval_s": 300,
        "sl651": sl651,
    }


def mapping_of(*props: dict[str, Any]) -> Sl651Mapping:
    registry = Registry.from_geojson({"type": "FeatureCollection", "features": [feature(p) for p in props]})
    return Sl651Mapping.from_specs(registry.values())


def test_mapping_readings_with_utc_times() -> None:
    mapping = mapping_of(
        rain_props(station="0012345678", elements={"PN05": "rain"}, ignore=["PJ"]),
        rain_props("rg-2", station="0012345678", elements={"PT": "rain_total"}),
        level_props(station="0012345678", elements={"Z": "level", "VT": "supply"}),
    )
    frame = simple_frame(
        (
            Element.of("PN05", 1.5),
            Element.of("PJ", 12.0),
            Element.of("PT", 340.5),
            Element.of("Z", 182.345),
            Element.of("VT", 12.6),
        )
    )
    mapped = mapping.map(frame)
    assert mapped.rejections == () and mapped.ignored == 1
    at = datetime(2024, 7, 10, 0, 0, tzinfo=timezone.utc)  # 08:00 Beijing time
    assert [(r.sensor_id, r.quantity, r.value, r.unit, r.time) for r in mapped.readings] == [
        ("rg-1", "rain", 1.5, "mm", at),
        ("rg-2", "rain_total", 340.5, "mm", at),
        ("rl-1", "level", 182.345, "m", at),
        ("rl-1", "supply", 12.6, "V", at),
    ]
    assert all(r.time.tzinfo is timezone.utc and r.flag == "good" for r in mapped.readings)


def test_mapping_of_the_published_timed_report() -> None:
    mapping = mapping_of(level_props(station="0011223344", elements={"Z": "level"}))
    mapped = mapping.map(decode(bytes.fromhex(PUBLISHED_TIMED_UP)))
    assert [(r.sensor_id, r.value, r.time) for r in mapped.readings] == [
        ("rl-1", 10.49, datetime(2017, 7, 18, 3, 0, tzinfo=timezone.utc))  # 11:00 Beijing time
    ]
    assert [r.reason for r in mapped.rejections] == ["unmapped_element"] * 3  # PJ, PT, VT
    assert all(r.topic == "sl651/0011223344" and "mapped to no sensor" in r.detail for r in mapped.rejections)


def test_mapping_series_no_data_and_relative_levels() -> None:
    mapping = mapping_of(
        rain_props(station="00123456AB", elements={"DRP": "rain"}),
        level_props(station="00123456AB", elements={"DRZ1": "level"}, level_base_m=150.0),
    )
    rain = (0.5, None) + (0.0,) * 10
    level = (31.25,) + (None,) * 11
    series = (Element.of("DRP", rain), Element.of("DRZ1", level))
    frame = simple_frame(series, station="00123456AB", reports=(
        StationReport("00123456ab", "H", (Observation(T0, series),)),  # address case does not matter
    ))  # fmt: skip
    mapped = mapping.map(frame)
    rain_readings = [r for r in mapped.readings if r.quantity == "rain"]
    assert len(rain_readings) == 11 and rain_readings[0].value == 0.5
    assert rain_readings[1].time - rain_readings[0].time == timedelta(minutes=10)  # value 1 missing
    assert [(r.value, r.time) for r in mapped.readings if r.quantity == "level"] == [
        (181.25, datetime(2024, 7, 10, 0, 0, tzinfo=timezone.utc))
    ]
    assert [r.reason for r in mapped.rejections] == ["no_data"] * 12
    assert {r.sensor_id for r in mapped.rejections} == {"rg-1", "rl-1"}


def test_mapping_unknown_station_and_password() -> None:
    mapping = mapping_of(level_props(station="0012345678", elements={"Z": "level"}, password="1234"))
    stranger = simple_frame((Element.of("Z", 1.0),), station="0099999999", reports=(
        StationReport("0099999999", "H", (Observation(T0, (Element.of("Z", 1.0),)),)),
    ))  # fmt: skip
    mapped = mapping.map(stranger)
    assert mapped.readings == () and [r.reason for r in mapped.rejections] == ["unknown_station"]
    assert mapping.authenticate(stranger) is None  # unknown stations are not password-checked
    assert mapping.authenticate(simple_frame((), password=0x1234)) is None
    refusal = mapping.authenticate(simple_frame((), password=0x9999))
    assert refusal is not None and refusal.reason == "bad_password" and "9999" in refusal.detail
    assert mapping.stations == frozenset({"0012345678"})


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (rain_props(station="0012345678", elements={"PJ": "rain"}), "since the day start"),
        (rain_props(station="0012345678", elements={"PT": "rain"}), "gives 'rain_total'"),
        (rain_props(station="0012345678", elements={"P1": "rain"}), "interval_s is 300"),
        (rain_props(station="0012345678", elements={"PN05": "rain", "PT": "rain_total"}), "not both"),
        (rain_props(station="0012345678", elements={"PN05": "rain", "DRP": "rain"}), "both give 'rain'"),
        (rain_props(station="0012345678", elements={"Z": "level"}), "does not report 'level'"),
        (level_props(station="0012345678", elements={"PT": "rain_total"}), "does not report 'rain_total'"),
        (level_props(station="0012345678", elements={"DRZ1": "level"}), "level_base_m"),
        (level_props(station="0012345678", elements={"Q": "flow"}), "cannot be mapped"),
        (level_props(station="12345", elements={"Z": "level"}), "10 hex digits"),
        (level_props(station="0012345678", elements={}), "'elements'"),
        (level_props(station="0012345678", elements={"Z": "level"}, pasword="1234"), "unknown key"),
        (level_props(station="0012345678", elements={"Z": "level"}, password=1234), "4 hex digits"),
        (level_props(station="0012345678", elements={"Z": "level", "ZU": "level"}), "both give 'level'"),
        (level_props(station="0012345678", elements={"Z": "level"}, ignore="PJ"), "'ignore' must be a list"),
        (level_props(station="0012345678", elements={"Z": "level"}, ignore=["Z"]), "mapped and ignored"),
    ],
)
def test_mapping_config_errors(props: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        mapping_of(props)


def test_mapping_clashes_between_sensors_of_one_station() -> None:
    with pytest.raises(MappingError, match="mapped twice"):
        mapping_of(
            level_props(station="0012345678", elements={"Z": "level"}),
            level_props("rl-2", station="0012345678", elements={"Z": "level"}),
        )
    with pytest.raises(MappingError, match="ignored by another"):
        mapping_of(
            level_props(station="0012345678", elements={"Z": "level"}),
            rain_props(station="0012345678", elements={"PT": "rain_total"}, ignore=["Z"]),
        )
    with pytest.raises(MappingError, match="different passwords"):
        mapping_of(
            level_props(station="0012345678", elements={"Z": "level"}, password="1234"),
            rain_props(station="0012345678", elements={"PT": "rain_total"}),
        )


def test_mapping_ignores_sensors_without_sl651() -> None:
    props = level_props(station="0012345678", elements={"Z": "level"})
    del props["sl651"]
    assert mapping_of(props).stations == frozenset()


# --- properties ----------------------------------------------------------------------------

_BCD_CODES = [code for code, d in ELEMENTS.items() if d.form == "bcd"]
_times = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(BEIJING)
).map(lambda t: t.replace(second=0, microsecond=0))


@st.composite
def bcd_elements(draw: st.DrawFn) -> Element:
    code = draw(st.sampled_from(_BCD_CODES))
    definition = ELEMENTS[code]
    if draw(st.integers(0, 9)) == 0:
        return Element(code, None, definition.decimals)
    decimals = draw(st.integers(0, 4))
    magnitude = draw(st.integers(0, 10**12 - 1))
    sign = draw(st.sampled_from((1, -1)))
    return Element(code, sign * magnitude / 10**decimals, decimals)


@st.composite
def series_elements(draw: st.DrawFn) -> Element:
    if draw(st.booleans()):
        rain = st.one_of(st.none(), st.integers(0, 254).map(lambda n: n / 10))  # 0.1 mm, FFH = no data
        return Element.of("DRP", tuple(draw(st.lists(rain, min_size=12, max_size=12))))
    level = st.one_of(st.none(), st.integers(0, 65534).map(lambda n: n / 100))  # 0.01 m, FFFFH = no data
    return Element.of(f"DRZ{draw(st.integers(1, 8))}", tuple(draw(st.lists(level, min_size=12, max_size=12))))


_hex_data = st.binary(min_size=1, max_size=8).map(lambda b: b.hex().upper())


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    encoding = draw(st.sampled_from(list(Encoding)))
    function = draw(st.sampled_from(sorted(SUPPORTED_FUNCTIONS)))
    station = draw(st.binary(min_size=5, max_size=5)).hex().upper()
    reports: tuple[StationReport, ...] = ()
    if function != Function.KEEP_ALIVE:
        element = st.one_of(
            bcd_elements(),
            series_elements(),
            _hex_data.map(lambda v: Element("ZT", v, 0)),
        )
        observation = st.builds(Observation, _times, st.lists(element, max_size=4).map(tuple))
        report = st.builds(
            StationReport,
            st.binary(min_size=5, max_size=5).map(lambda b: b.hex().upper()),
            st.sampled_from("PHKZDTMGQIO"),
            st.lists(observation, min_size=1, max_size=2).map(tuple),
        )
        reports = tuple(draw(st.lists(report, min_size=1, max_size=2)))
    return Frame(
        station=station,
        function=function,
        serial=draw(st.integers(0, 0xFFFF)),
        sent=draw(_times).replace(second=draw(st.integers(0, 59))),
        center=draw(st.integers(0, 255)),
        password=draw(st.integers(0, 0xFFFF)),
        end=draw(st.sampled_from([ETX, ETB])),
        encoding=encoding,
        reports=reports,
    )


@settings(max_examples=300, deadline=None)
@given(frames())
def test_decode_inverts_encode(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@settings(max_examples=200, deadline=None)
@given(frames())
def test_confirmations_round_trip(frame: Frame) -> None:
    if frame.function == Function.KEEP_ALIVE:
        return
    answer = confirmation(frame, sent=frame.sent)
    assert decode(encode(answer)) == answer


@settings(max_examples=100, deadline=None)
@given(
    st.lists(frames(), min_size=1, max_size=4),
    st.lists(st.binary(max_size=20).map(lambda b: bytes(c for c in b if c not in b"\x7e\x01")), min_size=5, max_size=5),
    st.integers(1, 64),
)
def test_splitter_finds_every_frame_in_any_chunking(items: list[Frame], garbage: list[bytes], chunk: int) -> None:
    wires = [encode(f) for f in items]
    stream = b"".join(g + w for g, w in zip(garbage, wires)) + garbage[-1]
    splitter = FrameSplitter()
    out: list[bytes | Garbage] = []
    for i in range(0, len(stream), chunk):
        out += splitter.feed(stream[i : i + chunk])
    assert [item for item in out if isinstance(item, bytes)] == wires
    assert [decode(item) for item in out if isinstance(item, bytes)] == items


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"\x7e\x7e", b"\x01", b""]), st.binary(max_size=80))
def test_decode_raises_only_frame_errors(prefix: bytes, rest: bytes) -> None:
    try:
        decode(prefix + rest)
    except FrameError as err:
        assert err.reason in FRAME_REASONS
