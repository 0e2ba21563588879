"""SL 651-2014 hydrological telemetry frames: CRC, codec, stream splitter, reading mapping. Pure.

SL 651-2014 水文监测数据通信规约 (Transmission protocols for hydrologic monitoring data,
Ministry of Water Resources of China, 2014) is what rain and level gauges in China send to a
central station over GPRS/4G TCP. Section, table and appendix numbers below are the
standard's. Covered here:

- both frame encodings (§6.1.1): HEX/BCD (start 7E7EH; Tables 20, 21) and ASCII (start SOH
  01H, every header field as hex digits; Tables 16, 17);
- control characters (Table 10) and the CRC of Table 11 (generator X^16+X^15+X^2+1, register
  preset FFFFH, bits taken LSB first with A001H as in Appendix H.3.2 — i.e. CRC-16/MODBUS —
  but sent high byte first);
- bodies of the link keep-alive (2FH, Table 27), test (30H, Table 28), timed (32H, Table 32),
  added (33H, Table 34) and hourly (34H, Table 36) reports, and the confirmation frames a
  central station answers with (Tables 29, 33, 35, 37);
- element identifiers of Table C.1 with the data-definition byte of Table 26 (high 5 bits: byte
  count including the sign byte, low 3 bits: decimals), the BCD sign rule of §6.6.3.3 a), and
  the HEX series DRP (F4H) and DRZ1..8 (F5H..FCH).

Refused with a reason, not decoded: multi-packet M3 frames (SYN, Table 22), uniform-interval
reports (31H), manual, picture, query and command frames.

Times on the wire are the station clock's local time: China Standard Time, UTC+8, no daylight
saving (none since 1991). Decoded times are aware datetimes in ``BEIJING``; two-digit years
are 2000-2099. Station addresses are the 10 hex digits of the 5 address bytes as they appear on
the wire (Tables 13 and 14; ASCII frames send exactly these characters).

Example::

    >>> frame = decode(bytes.fromhex("7E7E01001234567812342F0008020003591011155111036BCA"))
    >>> frame.station, hex(frame.function), frame.serial
    ('0012345678', '0x2f', 3)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any, Final

from sensors.model import Reading, Rejection, SensorError
from sensors.registry import SensorSpec

__all__ = [
    "BEIJING",
    "DOWN_ENDS",
    "ELEMENTS",
    "ELEMENT_QUANTITIES",
    "FRAME_REASONS",
    "MAPPING_REASONS",
    "MAX_FRAME_BYTES",
    "QUANTITY_UNITS",
    "RAIN_PERIOD_S",
    "REPORT_FUNCTIONS",
    "SUPPORTED_FUNCTIONS",
    "UP_ENDS",
    "Element",
    "ElementDef",
    "EncodeError",
    "Encoding",
    "Frame",
    "FrameError",
    "FrameSplitter",
    "Function",
    "Garbage",
    "Mapped",
    "MappingError",
    "Observation",
    "Sl651Error",
    "Sl651Mapping",
    "StationReport",
    "confirmation",
    "crc16",
    "decode",
    "encode",
]

BEIJING: Final = timezone(timedelta(hours=8), "UTC+08:00")

# Control characters, Table 10 (ESC: "transmission ends, terminal stays online", H.4.4.1).
SOH: Final = 0x01
HEX_START: Final = b"\x7e\x7e"
STX: Final = 0x02
SYN: Final = 0x16
ETX: Final = 0x03
ETB: Final = 0x17
ENQ: Final = 0x05
EOT: Final = 0x04
ACK: Final = 0x06
NAK: Final = 0x15
ESC: Final = 0x1B
UP_ENDS: Final = frozenset({ETX, ETB})  # Tables 16, 20, 22
DOWN_ENDS: Final = frozenset({ENQ, ACK, NAK, EOT, ESC})  # Tables 17, 21, 23
_ENDS = UP_ENDS | DOWN_ENDS

# Header sizes. HEX (Table 20): start 2 + centre 1 + station 5 + password 2 + function 1 +
# direction/length 2 + STX 1. ASCII (Table 16): SOH 1 + 2 + 10 + 4 + 2 + 4 hex digits + STX 1.
_HEX_HEAD = 14
_ASCII_HEAD = 24
_MAX_BODY = 0x0FFF  # 12 length bits, "0001~4095" (Tables 16, 20)
MAX_FRAME_BYTES: Final = _ASCII_HEAD + _MAX_BODY + 1 + 4


class Encoding(str, Enum):
    """The two frame encodings of §6.1.1."""

    HEX = "hex"
    ASCII = "ascii"


class Function(IntEnum):
    """Function codes this codec decodes (Table B.1)."""

    KEEP_ALIVE = 0x2F  # 链路维持报, §6.6.4.2
    TEST = 0x30  # 测试报, §6.6.4.3
    EVEN_INTERVAL = 0x31  # 均匀时段水文信息报, §6.6.4.4 (refused: not decoded)
    TIMED = 0x32  # 遥测站定时报, §6.6.4.5
    ADDED = 0x33  # 遥测站加报报, §6.6.4.6
    HOURLY = 0x34  # 遥测站小时报, §6.6.4.7


SUPPORTED_FUNCTIONS: Final = frozenset(
    {Function.KEEP_ALIVE, Function.TEST, Function.TIMED, Function.ADDED, Function.HOURLY}
)
# Uplink reports a central station confirms in M2 (§6.3.1.2 b); the keep-alive has no
# downlink frame (§6.6.4.2).
REPORT_FUNCTIONS: Final = frozenset({Function.TEST, Function.TIMED, Function.ADDED, Function.HOURLY})
# Codes Table B.1 defines (2FH..3AH, 40H..51H); the rest is reserved or user-defined.
_STANDARD_FUNCTIONS = frozenset(range(0x2F, 0x3B)) | frozenset(range(0x40, 0x52))

# Rejection reasons of ``decode``, in the order a frame meets them.
FRAME_REASONS: Final = (
    "bad_start",  # not 7E7EH or SOH
    "truncated",  # fewer bytes than the header or the declared length
    "bad_header",  # header not hex digits (ASCII), no STX/SYN where it belongs
    "bad_direction",  # up/down flag neither 0000 nor 1000 (Table 20 item 6)
    "bad_length",  # more bytes than declared, or a body too short for its function
    "bad_end",  # end character not allowed for the direction (Tables 20, 21)
    "bad_crc",
    "multipacket",  # SYN, M3 multi-packet transfer: not handled
    "unknown_function",  # a code Table B.1 reserves or leaves to users
    "unsupported_function",  # a code of Table B.1 this codec does not decode
    "bad_bcd",  # a BCD field with a nibble above 9
    "bad_time",  # BCD digits that are no calendar time
    "bad_value",  # an ASCII value that is no number / hex data
    "bad_body",  # body structure (identifiers, lengths, order)
)
# Rejection reasons of ``Sl651Mapping``.
MAPPING_REASONS: Final = ("bad_password", "unknown_station", "unmapped_element", "no_data")


class Sl651Error(SensorError):
    """Base of the SL 651 errors."""


class FrameError(Sl651Error):
    """A frame the decoder refuses; ``reason`` is the rejection code (``FRAME_REASONS``)."""

    def __init__(self, reason: str, detail: str, *, station: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.station = station  # when the header could be read
        super().__init__(f"{reason}: {detail}")


class EncodeError(Sl651Error, ValueError):
    """A ``Frame`` or ``Element`` that cannot be put on the wire."""


class MappingError(Sl651Error):
    """A registry ``sl651`` entry that does not fit the schema."""


# --- element identifiers (Table C.1) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElementDef:
    """One row of Table C.1: guide byte, ASCII identifier, N(digits, decimals), unit."""

    guide: int
    code: str
    digits: int  # D of N(D,d): digits without the point
    decimals: int  # d of N(D,d)
    unit: str
    form: str = "bcd"  # bcd | hex (unsigned HEX, §6.6.3.3 c) | rain5 (F4H) | level5 (F5H..FCH)


def _rows() -> list[ElementDef]:
    # Table C.1 rows 15-131 (guides 01H-75H); units in SI-style symbols.
    numeric = [
        (0x01, "AC", 8, 2, "m2"), (0x02, "AI", 3, 1, "Cel"), (0x03, "C", 3, 1, "Cel"),
        (0x05, "DT", 4, 2, "h.min"), (0x06, "ED", 5, 1, "mm"), (0x07, "EJ", 5, 1, "mm"),
        (0x08, "FL", 5, 0, "hPa"), (0x09, "GH", 5, 2, "m"), (0x0A, "GN", 3, 0, ""),
        (0x0B, "GS", 1, 0, ""), (0x0C, "GT", 3, 0, ""), (0x0D, "GTP", 3, 1, "Cel"),
        (0x0E, "H", 6, 2, "m"), (0x0F, "HW", 5, 2, "m"), (0x18, "MST", 4, 1, "%"),
        (0x19, "NS", 2, 0, ""), (0x1A, "P1", 5, 1, "mm"), (0x1B, "P2", 5, 1, "mm"),
        (0x1C, "P3", 5, 1, "mm"), (0x1D, "P6", 5, 1, "mm"), (0x1E, "P12", 5, 1, "mm"),
        (0x1F, "PD", 5, 1, "mm"), (0x20, "PJ", 5, 1, "mm"), (0x21, "PN01", 5, 1, "mm"),
        (0x22, "PN05", 5, 1, "mm"), (0x23, "PN10", 5, 1, "mm"), (0x24, "PN30", 5, 1, "mm"),
        (0x25, "PR", 5, 1, "mm"), (0x26, "PT", 6, 1, "mm"), (0x27, "Q", 9, 3, "m3/s"),
        (0x30, "QA", 9, 3, "m3/s"), (0x31, "QZ", 9, 3, "m3/s"), (0x32, "SW", 11, 3, "10^4 t"),
        (0x33, "UC", 2, 0, ""), (0x34, "UE", 2, 0, ""), (0x35, "US", 4, 1, "m/s"),
        (0x36, "VA", 5, 3, "m/s"), (0x37, "VJ", 5, 3, "m/s"), (0x38, "VT", 4, 2, "V"),
        (0x39, "Z", 7, 3, "m"), (0x3A, "ZB", 7, 3, "m"), (0x3B, "ZU", 7, 3, "m"),
        (0x44, "SQ", 9, 3, "kg/m3"), (0x46, "pH", 4, 2, ""), (0x47, "DO", 4, 1, "mg/L"),
        (0x48, "COND", 5, 0, "uS/cm"), (0x49, "TURB", 3, 0, "NTU"), (0x4A, "CODMN", 4, 1, "mg/L"),
        (0x4B, "REDOX", 5, 1, "mV"), (0x4C, "NH4N", 6, 2, "mg/L"), (0x4D, "TP", 5, 3, "mg/L"),
        (0x4E, "TN", 5, 2, "mg/L"), (0x4F, "TOC", 4, 2, "mg/L"), (0x50, "CU", 7, 4, "mg/L"),
        (0x51, "ZN", 6, 4, "mg/L"), (0x52, "SE", 7, 5, "mg/L"), (0x53, "AS", 7, 5, "mg/L"),
        (0x54, "THG", 7, 5, "mg/L"), (0x55, "CD", 7, 5, "mg/L"), (0x56, "PB", 7, 5, "mg/L"),
        (0x57, "CHLA", 4, 2, "mg/L"), (0x70, "VTA", 4, 1, "V"), (0x71, "VTB", 4, 1, "V"),
        (0x72, "VTC", 4, 1, "V"), (0x73, "VIA", 4, 1, "A"), (0x74, "VIB", 4, 1, "A"),
        (0x75, "VIC", 4, 1, "A"),
    ]  # fmt: skip
    rows = [ElementDef(g, c, d, p, u) for g, c, d, p, u in numeric]
    rows += [ElementDef(0x10 + i, f"M{depth}", 4, 1, "%") for i, depth in enumerate((10, 20, 30, 40, 50, 60, 80, 100))]
    rows += [ElementDef(0x28 + i, f"Q{i + 1}", 9, 3, "m3/s") for i in range(8)]
    rows += [ElementDef(0x3C + i, f"Z{i + 1}", 7, 3, "m") for i in range(8)]
    rows += [ElementDef(0x58 + i, f"WP{i + 1}", 5, 2, "kPa") for i in range(8)]
    rows += [ElementDef(0x60 + i, f"SYL{i + 1}", 11, 3, "m3") for i in range(8)]
    rows += [ElementDef(0x68 + i, f"SBL{i + 1}", 10, 2, "m3/h") for i in range(8)]
    # Unsigned HEX data: status/alarm word (Table 58), 4 bytes; time-step code dhm
    # (Table C.1 note g, Table C.3), 3 bytes, HEX/BCD frames only.
    rows.append(ElementDef(0x45, "ZT", 8, 0, "", form="hex"))
    rows.append(ElementDef(0x04, "DRxnn", 6, 0, "", form="hex"))
    # 5-minute series of one hour (rows 5-13): 12 x 1 byte of 0.1 mm (FFH = no data) and
    # 12 x 2 bytes of 0.01 m relative level (FFFFH = no data).
    rows.append(ElementDef(0xF4, "DRP", 24, 1, "mm", form="rain5"))
    rows += [ElementDef(0xF5 + i, f"DRZ{i + 1}", 48, 2, "m", form="level5") for i in range(8)]
    return rows


ELEMENTS: Final[Mapping[str, ElementDef]] = MappingProxyType({row.code: row for row in _rows()})
_BY_GUIDE: Final = MappingProxyType({row.guide: row for row in ELEMENTS.values()})
# Guides with fixed meaning in a body: TT, ST, manual data, picture, flow batch (Table C.1).
_TT, _ST, _MANUAL, _PICTURE, _FLOW_BATCH, _EXTENDED = 0xF0, 0xF1, 0xF2, 0xF3, 0xFD, 0xFF
_SERIES_STEP: Final = timedelta(minutes=5)
_SERIES_LEN = 12
_RAW_CODE = re.compile(r"X(FF[0-9A-F]{2}|[0-9A-F]{2})")
_TIME_STEP_TOKEN = re.compile(r"DR[DHN][0-9]{2}")
_ASCII_NUMBER = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789ABCDEFabcdef" for c in text)


# --- plain data ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a report.

    ``value``: a number for BCD elements, ``None`` for the "no data" marker (all F in HEX
    frames, §6.6.4.4 d; ``M`` in ASCII frames), a tuple of 12 numbers/``None`` for the DRP
    and DRZ series, a hex string for HEX-coded data (ZT) and for identifiers outside
    Table C.1 (their ``code`` is ``X`` + guide in hex, e.g. ``X76``, ``XFF12``).
    ``decimals`` is the decimal places sent (low 3 bits of the data definition, Table 26).
    """

    code: str
    value: float | tuple[float | None, ...] | str | None
    decimals: int = 0

    @classmethod
    def of(cls, code: str, value: float | tuple[float | None, ...] | str | None) -> Element:
        """An element with the decimals of Table C.1, e.g. ``Element.of("Z", 12.345)``."""
        definition = ELEMENTS.get(code)
        if definition is None:
            raise EncodeError(f"{code!r} is not an identifier of SL 651-2014 Table C.1")
        decimals = definition.decimals if definition.form in ("bcd", "rain5", "level5") else 0
        return cls(code, value, decimals)


@dataclass(frozen=True, slots=True)
class Observation:
    """The elements following one observation-time group (F0F0H / ``TT``, §6.6.2.8)."""

    time: datetime  # aware; on the wire whole minutes, Beijing time
    elements: tuple[Element, ...] = ()


@dataclass(frozen=True, slots=True)
class StationReport:
    """One station group of a report body (F1F1H / ``ST``, §6.6.2.7): address, category, data."""

    station: str  # 10 hex digits
    category: str  # Table A.1 letter: P rain, H river, K reservoir, Z sluice, ...
    observations: tuple[Observation, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "station", self.station.upper())


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One SL 651 frame, uplink (station to centre) or downlink."""

    station: str  # remote telemetry station address, 10 hex digits (§6.2.3.2)
    function: int  # Table B.1
    serial: int  # 流水号, 1..65535 (0 in centre-initiated frames, §6.6.2.4)
    sent: datetime  # 发报时间, aware, whole seconds
    center: int = 1  # central station address 1..255 (0 is accepted on decode)
    password: int = 0  # 2 bytes HEX (§6.2.3.3)
    upward: bool = True
    end: int = ETX
    encoding: Encoding = Encoding.HEX
    reports: tuple[StationReport, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "station", self.station.upper())


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes the splitter skipped because no frame starts there."""

    size: int
    head: bytes  # the first bytes, for a log line


# --- CRC -----------------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC of Table 11 / Appendix H.3.2 (CRC-16/MODBUS), e.g. ``crc16(b"123456789") == 0x4B37``."""
    crc = 0xFFFF
    for byte in bytes(data):
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


# --- decoding ------------------------------------------------------------------------------


class _Cursor:
    """Reads a body left to right; running out is a ``bad_body`` error."""

    __slots__ = ("data", "pos", "station")

    def __init__(self, data: bytes, station: str) -> None:
        self.data = data
        self.pos = 0
        self.station = station

    def take(self, n: int, what: str) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) < n:
            raise FrameError("bad_body", f"{what} runs past the end of the body", station=self.station)
        self.pos += n
        return chunk

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def _bcd_digits(data: bytes, what: str, station: str | None) -> str:
    text = data.hex()
    if not text.isdigit():
        raise FrameError("bad_bcd", f"{what} {data.hex().upper()} is not BCD", station=station)
    return text


def _time_from_digits(digits: str, what: str, station: str | None) -> datetime:
    parts = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    year, month, day, hour, minute = parts[:5]
    second = parts[5] if len(parts) > 5 else 0
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=BEIJING)
    except ValueError:
        raise FrameError("bad_time", f"{what} {digits} is not a calendar time", station=station) from None


def _number_from_bcd(data: bytes, decimals: int, code: str, station: str) -> float | None:
    if all(byte == 0xFF for byte in data):
        return None  # no data: filled with F (§6.6.4.4 d)
    negative = data[0] == 0xFF  # §6.6.3.3 a): a leading FFH byte marks a negative number
    digits = _bcd_digits(data[1:] if negative else data, f"{code} value", station)
    magnitude = int(digits) / 10**decimals
    return -magnitude if negative else magnitude


def _series_from_hex(data: bytes, form: str, code: str, station: str) -> tuple[float | None, ...]:
    width = 1 if form == "rain5" else 2
    if len(data) != _SERIES_LEN * width:
        raise FrameError(
            "bad_body", f"{code} needs {_SERIES_LEN * width} bytes of data, got {len(data)}", station=station
        )
    missing = (1 << (8 * width)) - 1  # FFH / FFFFH: no data (Table C.1 rows 5, 6)
    scale = 10.0 if form == "rain5" else 100.0
    values = (int.from_bytes(data[i : i + width], "big") for i in range(0, len(data), width))
    return tuple(None if v == missing else v / scale for v in values)


def _hex_element(cursor: _Cursor) -> Element:
    guide = cursor.take(1, "identifier")[0]
    if guide in (_MANUAL, _PICTURE, _FLOW_BATCH):
        what = f"identifier {guide:02X}H (manual, picture or flow batch data) is not decoded"
        raise FrameError("bad_body", what, station=cursor.station)
    if guide == _EXTENDED:  # FFH: one more byte of user-defined identifier (Table 26)
        code = f"XFF{cursor.take(1, 'extended identifier')[0]:02X}"
        definition = None
    else:
        definition = _BY_GUIDE.get(guide)
        code = definition.code if definition is not None else f"X{guide:02X}"
    define = cursor.take(1, f"{code} data definition")[0]
    size, decimals = define >> 3, define & 0x07
    if size == 0:
        raise FrameError("bad_body", f"{code} has a data length of 0", station=cursor.station)
    data = cursor.take(size, f"{code} data")
    if definition is None or definition.form == "hex":
        return Element(code, data.hex().upper(), decimals)
    if definition.form == "bcd":
        return Element(code, _number_from_bcd(data, decimals, code, cursor.station), decimals)
    return Element(code, _series_from_hex(data, definition.form, code, cursor.station), definition.decimals)


def _hex_reports(cursor: _Cursor) -> tuple[StationReport, ...]:
    builder = _ReportBuilder(cursor.station)
    while not cursor.done:
        guide = cursor.data[cursor.pos]
        if guide == _ST:
            cursor.take(1, "ST")
            if cursor.take(1, "ST definition")[0] != _ST:  # fixed F1H (Table C.1 note b)
                raise FrameError("bad_body", "station identifier must be F1F1H", station=cursor.station)
            address = cursor.take(5, "station address").hex().upper()
            builder.station(address, chr(cursor.take(1, "station category")[0]))
        elif guide == _TT:
            cursor.take(1, "TT")
            if cursor.take(1, "TT definition")[0] != _TT:  # fixed F0H (Table C.1 note a)
                raise FrameError("bad_body", "observation time identifier must be F0F0H", station=cursor.station)
            digits = _bcd_digits(cursor.take(5, "observation time"), "observation time", cursor.station)
            builder.time(_time_from_digits(digits, "observation time", cursor.station))
        else:
            builder.element(_hex_element(cursor))
    return builder.done()


class _ReportBuilder:
    """Collects station groups, time groups and elements in body order (§6.6.2.7, §6.6.2.11)."""

    __slots__ = ("_elements", "_observations", "_reports", "_station", "_time", "_where")

    def __init__(self, where: str) -> None:
        self._where = where
        self._reports: list[StationReport] = []
        self._station: tuple[str, str] | None = None
        self._observations: list[Observation] = []
        self._time: datetime | None = None
        self._elements: list[Element] = []

    def _close_time(self) -> None:
        if self._time is not None:
            self._observations.append(Observation(self._time, tuple(self._elements)))
        self._time, self._elements = None, []

    def _close_station(self) -> None:
        self._close_time()
        if self._station is not None:
            self._reports.append(StationReport(*self._station, tuple(self._observations)))
        self._station, self._observations = None, []

    def station(self, address: str, category: str) -> None:
        self._close_station()
        self._station = (address, category)

    def time(self, when: datetime) -> None:
        if self._station is None:
            raise FrameError("bad_body", "observation time before any station address group", station=self._where)
        self._close_time()
        self._time = when

    def element(self, element: Element) -> None:
        if self._time is None:
            raise FrameError(
                "bad_body", f"element {element.code} before any observation time group", station=self._where
            )
        self._elements.append(element)

    def done(self) -> tuple[StationReport, ...]:
        self._close_station()
        if not self._reports:
            raise FrameError("bad_body", "report without a station address group (F1F1H / ST)", station=self._where)
        return tuple(self._reports)


def _check_function(function: int, station: str) -> None:
    if function not in _STANDARD_FUNCTIONS:
        what = f"function code {function:02X}H is reserved or user-defined (Table B.1)"
        raise FrameError("unknown_function", what, station=station)
    if function not in SUPPORTED_FUNCTIONS:
        what = f"function code {function:02X}H (Table B.1) is not handled"
        raise FrameError("unsupported_function", what, station=station)


def _needs_reports(function: int, upward: bool) -> bool:
    return upward and function in REPORT_FUNCTIONS


def _decode_hex(data: bytes) -> Frame:
    if len(data) < _HEX_HEAD:
        raise FrameError("truncated", f"{len(data)} bytes, a HEX/BCD header needs {_HEX_HEAD}")
    word = int.from_bytes(data[11:13], "big")
    direction, length = word >> 12, word & _MAX_BODY
    if direction not in (0b0000, 0b1000):
        raise FrameError("bad_direction", f"up/down flag {direction:04b} is neither 0000 nor 1000 (Table 20)")
    upward = direction == 0
    if upward:
        center, station = data[2], data[3:8].hex().upper()
    else:
        station, center = data[2:7].hex().upper(), data[7]
    if data[13] not in (STX, SYN):
        raise FrameError("bad_header", f"byte 13 is {data[13]:02X}H, not STX/SYN", station=station)
    total = _HEX_HEAD + length + 3
    _check_size(len(data), total, station)
    end = data[_HEX_HEAD + length]
    _check_end(end, upward, station)
    sent_crc, crc = int.from_bytes(data[-2:], "big"), crc16(data[:-2])
    if sent_crc != crc:
        raise FrameError("bad_crc", f"CRC {sent_crc:04X}H sent, {crc:04X}H computed", station=station)
    if data[13] == SYN:
        raise FrameError("multipacket", "multi-packet (M3, SYN) frames are not handled", station=station)
    function = data[10]
    _check_function(function, station)
    cursor = _Cursor(data[_HEX_HEAD : _HEX_HEAD + length], station)
    serial = int.from_bytes(_head_field(cursor, 2, function), "big")
    sent = _time_from_digits(_bcd_digits(_head_field(cursor, 6, function), "send time", station), "send time", station)
    reports = _hex_reports(cursor) if _needs_reports(function, upward) else ()
    _check_rest(cursor.done, function, upward, station)
    return Frame(
        station=station,
        function=function,
        serial=serial,
        sent=sent,
        center=center,
        password=int.from_bytes(data[8:10], "big"),
        upward=upward,
        end=end,
        encoding=Encoding.HEX,
        reports=reports,
    )


def _head_field(cursor: _Cursor, size: int, function: int) -> bytes:
    if len(cursor.data) - cursor.pos < size:
        raise FrameError(
            "bad_length", f"a {function:02X}H body needs a serial number and a send time", station=cursor.station
        )
    return cursor.take(size, "serial number / send time")


def _check_size(size: int, total: int, station: str) -> None:
    if size < total:
        raise FrameError("truncated", f"{size} bytes of a {total}-byte frame", station=station)
    if size > total:
        raise FrameError("bad_length", f"{size} bytes, the header declares {total}", station=station)


def _check_end(end: int, upward: bool, station: str) -> None:
    allowed = UP_ENDS if upward else DOWN_ENDS
    if end not in allowed:
        side = "an uplink" if upward else "a downlink"
        raise FrameError("bad_end", f"end character {end:02X}H is not allowed in {side} frame", station=station)


def _check_rest(done: bool, function: int, upward: bool, station: str) -> None:
    if done:
        return
    if upward:
        raise FrameError("bad_body", f"a {function:02X}H uplink body has bytes after its send time", station=station)
    raise FrameError(
        "unsupported_function", f"downlink {function:02X}H frames with parameters are not handled", station=station
    )


def _ascii_text(data: bytes, what: str, reason: str, station: str | None = None) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(reason, f"{what} is not ASCII", station=station) from None


def _decode_ascii(data: bytes) -> Frame:
    if len(data) < _ASCII_HEAD:
        raise FrameError("truncated", f"{len(data)} bytes, an ASCII header needs {_ASCII_HEAD}")
    head = data[1:23]
    if not all(byte in _HEX_DIGITS for byte in head):
        raise FrameError("bad_header", f"header {head!r} is not 22 hex digits (Table 16)")
    text = head.decode("ascii").upper()
    if text[18] not in "08":
        raise FrameError("bad_direction", f"up/down flag {text[18]!r} is neither '0' nor '8' (Table 16)")
    upward = text[18] == "0"
    if upward:
        center, station = int(text[0:2], 16), text[2:12]
    else:
        station, center = text[0:10], int(text[10:12], 16)
    length = int(text[19:22], 16)
    if data[23] not in (STX, SYN):
        raise FrameError("bad_header", f"byte 23 is {data[23]:02X}H, not STX/SYN", station=station)
    total = _ASCII_HEAD + length + 5
    _check_size(len(data), total, station)
    end = data[_ASCII_HEAD + length]
    _check_end(end, upward, station)
    crc_text = data[-4:]
    crc = crc16(data[:-4])
    if not all(byte in _HEX_DIGITS for byte in crc_text) or int(crc_text, 16) != crc:
        raise FrameError("bad_crc", f"CRC {crc_text!r} sent, {crc:04X} computed", station=station)
    if data[23] == SYN:
        raise FrameError("multipacket", "multi-packet (M3, SYN) frames are not handled", station=station)
    function = int(text[16:18], 16)
    _check_function(function, station)
    body = _ascii_text(data[_ASCII_HEAD : _ASCII_HEAD + length], "body", "bad_body", station)
    if len(body) < 16:
        what = f"a {function:02X}H body needs a serial number and a send time"
        raise FrameError("bad_length", what, station=station)
    if not _is_hex(body[:4]):
        raise FrameError("bad_value", f"serial number {body[:4]!r} is not 4 hex digits", station=station)
    if not body[4:16].isdigit():
        raise FrameError("bad_bcd", f"send time {body[4:16]!r} is not 12 digits", station=station)
    rest = body[16:]
    reports: tuple[StationReport, ...] = ()
    if _needs_reports(function, upward):
        reports = _ascii_reports(rest.split(), station)
    elif rest:
        _check_rest(False, function, upward, station)
    return Frame(
        station=station,
        function=function,
        serial=int(body[:4], 16),
        sent=_time_from_digits(body[4:16], "send time", station),
        center=center,
        password=int(text[12:16], 16),
        upward=upward,
        end=end,
        encoding=Encoding.ASCII,
        reports=reports,
    )


def _ascii_reports(tokens: list[str], station: str) -> tuple[StationReport, ...]:
    builder = _ReportBuilder(station)
    it = iter(tokens)

    def following(what: str) -> str:
        token = next(it, None)
        if token is None:
            raise FrameError("bad_body", f"{what} has no value", station=station)
        return token

    for token in it:
        if token == "ST":
            address, category = following("ST"), following("ST station category")
            if len(address) != 10 or not _is_hex(address):
                raise FrameError("bad_value", f"station address {address!r} is not 10 hex digits", station=station)
            if len(category) != 1:
                raise FrameError("bad_value", f"station category {category!r} is not one letter", station=station)
            builder.station(address.upper(), category)
        elif token == "TT":
            digits = following("TT")
            if len(digits) != 10 or not digits.isdigit():
                raise FrameError("bad_bcd", f"observation time {digits!r} is not 10 digits", station=station)
            builder.time(_time_from_digits(digits, "observation time", station))
        elif _TIME_STEP_TOKEN.fullmatch(token):
            raise FrameError(
                "bad_body", f"time-step code {token} belongs to uniform-interval reports (31H)", station=station
            )
        else:
            builder.element(_ascii_element(token, following(token), station))
    return builder.done()


def _ascii_element(code: str, token: str, station: str) -> Element:
    definition = ELEMENTS.get(code)
    if definition is None:
        return Element(code, token, 0)
    if definition.form == "bcd":
        if token == "M":  # no data (§6.6.4.4 d)
            return Element(code, None, definition.decimals)
        match = _ASCII_NUMBER.fullmatch(token)
        if match is None:
            raise FrameError("bad_value", f"{code} value {token!r} is not a decimal number", station=station)
        return Element(code, float(token), len(match.group(1) or ""))
    if not token or not _is_hex(token) or len(token) % 2:
        raise FrameError("bad_value", f"{code} value {token!r} is not hex data", station=station)
    if definition.form == "hex":
        return Element(code, token.upper(), 0)
    return Element(code, _series_from_hex(bytes.fromhex(token), definition.form, code, station), definition.decimals)


def decode(data: bytes | bytearray | memoryview) -> Frame:
    """Decode one complete frame (HEX/BCD or ASCII); raise ``FrameError`` with a reason."""
    raw = bytes(data)
    if raw[:2] == HEX_START:
        return _decode_hex(raw)
    if raw[:1] == bytes([SOH]):
        return _decode_ascii(raw)
    raise FrameError("bad_start", f"frame starts with {raw[:2].hex().upper() or 'nothing'}, not 7E7E or 01")


# --- encoding ------------------------------------------------------------------------------


def _time_digits(when: datetime, what: str, *, seconds: bool) -> str:
    if when.tzinfo is None:
        raise EncodeError(f"{what} must be timezone-aware, got {when.isoformat()}")
    local = when.astimezone(BEIJING)
    if not 2000 <= local.year <= 2099:
        raise EncodeError(f"{what} {local.isoformat()} is outside 2000-2099 (two-digit years)")
    if local.microsecond or (not seconds and local.second):
        unit = "second" if seconds else "minute"
        raise EncodeError(f"{what} {local.isoformat()} is not a whole {unit}")
    return local.strftime("%y%m%d%H%M%S" if seconds else "%y%m%d%H%M")


def _scaled(value: float, decimals: int, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EncodeError(f"{code} value {value!r} is not a finite number")
    return int(Decimal(repr(float(value))).scaleb(decimals).to_integral_value(ROUND_HALF_EVEN))


def _check_decimals(element: Element) -> None:
    if not 0 <= element.decimals <= 7:
        raise EncodeError(f"{element.code} decimals {element.decimals} outside 0..7 (Table 26)")


def _bcd_number(value: float | None, decimals: int, digits: int, code: str) -> bytes:
    if value is None:
        return b"\xff" * max(1, (digits + 1) // 2)
    scaled = _scaled(value, decimals, code)
    text = str(abs(scaled))
    width = max(digits, len(text))
    data = bytes.fromhex(text.zfill(width + width % 2))
    return b"\xff" + data if scaled < 0 else data  # §6.6.3.3 a)


def _series_values(element: Element, definition: ElementDef) -> list[int]:
    values = element.value
    if not isinstance(values, tuple) or len(values) != _SERIES_LEN:
        raise EncodeError(f"{element.code} needs a tuple of {_SERIES_LEN} values, got {values!r}")
    width = 1 if definition.form == "rain5" else 2
    missing = (1 << (8 * width)) - 1
    out = []
    for value in values:
        if value is None:
            out.append(missing)
            continue
        scaled = _scaled(value, definition.decimals, element.code)
        if not 0 <= scaled < missing:
            limit = (missing - 1) / 10**definition.decimals
            raise EncodeError(f"{element.code} value {value!r} outside 0..{limit:g} {definition.unit}")
        out.append(scaled)
    return out


def _hex_data(element: Element) -> tuple[bytes, bytes]:
    """(guide bytes, data) of one element; the data definition is derived from the data."""
    definition = ELEMENTS.get(element.code)
    if definition is None:
        match = _RAW_CODE.fullmatch(element.code)
        if match is None:
            raise EncodeError(f"{element.code!r} is neither a Table C.1 identifier nor X + hex guide")
        guide = bytes.fromhex(match.group(1))
        if guide[0] in _BY_GUIDE or guide[0] in (_TT, _ST, _MANUAL, _PICTURE, _FLOW_BATCH):
            raise EncodeError(f"{element.code} is a guide with its own meaning; use its identifier")
        return guide, _hex_value(element)
    if definition.form == "bcd":
        if element.value is not None and not isinstance(element.value, (int, float)):
            raise EncodeError(f"{element.code} value {element.value!r} is not a number")
        digits = definition.digits - definition.decimals + element.decimals
        return bytes([definition.guide]), _bcd_number(element.value, element.decimals, digits, element.code)
    if definition.form == "hex":
        return bytes([definition.guide]), _hex_value(element)
    width = 1 if definition.form == "rain5" else 2
    data = b"".join(v.to_bytes(width, "big") for v in _series_values(element, definition))
    return bytes([definition.guide]), data


def _hex_value(element: Element) -> bytes:
    value = element.value
    if not isinstance(value, str) or not value or len(value) % 2 or not _is_hex(value):
        raise EncodeError(f"{element.code} value {value!r} must be hex data")
    return bytes.fromhex(value)


def _encode_hex_element(element: Element) -> bytes:
    _check_decimals(element)
    guide, data = _hex_data(element)
    if not 1 <= len(data) <= 31:
        raise EncodeError(f"{element.code}: {len(data)} data bytes, the definition byte holds 1..31")
    definition = ELEMENTS.get(element.code)
    decimals = 0 if definition is not None and definition.form in ("rain5", "level5") else element.decimals
    if definition is not None and definition.form in ("rain5", "level5") and element.decimals != definition.decimals:
        raise EncodeError(f"{element.code} has {definition.decimals} decimals by definition (Table C.1)")
    return guide + bytes([(len(data) << 3) | decimals]) + data


def _encode_ascii_element(element: Element) -> str:
    definition = ELEMENTS.get(element.code)
    if definition is None:
        value = element.value
        if (
            not isinstance(value, str)
            or not value
            or any(c.isspace() for c in value + element.code)
            or not element.code
            or element.code in ("ST", "TT")
            or _TIME_STEP_TOKEN.fullmatch(element.code)
        ):
            raise EncodeError(f"{element.code!r} {value!r} cannot be written as ASCII tokens")
        if element.decimals:
            raise EncodeError(f"{element.code}: ASCII raw values carry no decimals")
        return f"{element.code} {value} "
    _check_decimals(element)
    if definition.form == "bcd":
        if element.value is None:
            if element.decimals != definition.decimals:
                raise EncodeError(f"{element.code}: an ASCII 'M' (no data) has the decimals of Table C.1")
            return f"{element.code} M "
        _scaled(element.value, element.decimals, element.code)  # type: ignore[arg-type]
        return f"{element.code} {element.value:.{element.decimals}f} "
    if definition.form == "hex":
        if definition.code == "DRxnn":
            raise EncodeError("the HEX time-step code DRxnn has no ASCII form here")
        return f"{element.code} {_hex_value(element).hex().upper()} "
    if element.decimals != definition.decimals:
        raise EncodeError(f"{element.code} has {definition.decimals} decimals by definition (Table C.1)")
    width = 2 if definition.form == "rain5" else 4
    return f"{element.code} {''.join(f'{v:0{width}X}' for v in _series_values(element, definition))} "


def _check_frame(frame: Frame) -> None:
    if len(frame.station) != 10 or not all(c in "0123456789ABCDEF" for c in frame.station):
        raise EncodeError(f"station {frame.station!r} must be 10 hex digits")
    if not 0 <= frame.center <= 0xFF:
        raise EncodeError(f"central station address {frame.center} outside 0..255")
    if not 0 <= frame.password <= 0xFFFF:
        raise EncodeError(f"password {frame.password} outside 0..FFFFH")
    if not 0 <= frame.function <= 0xFF:
        raise EncodeError(f"function code {frame.function} outside 0..FFH")
    if not 0 <= frame.serial <= 0xFFFF:
        raise EncodeError(f"serial number {frame.serial} outside 0..65535")
    if frame.end not in (UP_ENDS if frame.upward else DOWN_ENDS):
        raise EncodeError(f"end character {frame.end:02X}H not allowed in this direction")
    if frame.reports and not _needs_reports(frame.function, frame.upward):
        side = "uplink" if frame.upward else "downlink"
        raise EncodeError(f"a {side} {frame.function:02X}H frame carries no reports")
    if not frame.reports and _needs_reports(frame.function, frame.upward):
        raise EncodeError(f"an uplink {frame.function:02X}H report needs at least one station group")
    for report in frame.reports:
        if len(report.station) != 10 or not all(c in "0123456789ABCDEF" for c in report.station):
            raise EncodeError(f"station {report.station!r} must be 10 hex digits")
        if len(report.category) != 1 or not report.category.isprintable() or ord(report.category) > 0x7F:
            raise EncodeError(f"station category {report.category!r} must be one ASCII letter (Table A.1)")


def _hex_body(frame: Frame) -> bytes:
    out = bytearray(frame.serial.to_bytes(2, "big"))
    out += bytes.fromhex(_time_digits(frame.sent, "send time", seconds=True))
    for report in frame.reports:
        out += bytes([_ST, _ST]) + bytes.fromhex(report.station) + report.category.encode("ascii")
        for observation in report.observations:
            out += bytes([_TT, _TT]) + bytes.fromhex(_time_digits(observation.time, "observation time", seconds=False))
            for element in observation.elements:
                out += _encode_hex_element(element)
    return bytes(out)


def _ascii_body(frame: Frame) -> bytes:
    parts = [f"{frame.serial:04X}", _time_digits(frame.sent, "send time", seconds=True)]
    for report in frame.reports:
        parts.append(f"ST {report.station} {report.category} ")
        for observation in report.observations:
            parts.append(f"TT {_time_digits(observation.time, 'observation time', seconds=False)} ")
            parts.extend(_encode_ascii_element(element) for element in observation.elements)
    return "".join(parts).encode("ascii")


def encode(frame: Frame) -> bytes:
    """The wire bytes of ``frame``: header, body, end character and CRC (Tables 16/17, 20/21)."""
    _check_frame(frame)
    if frame.encoding is Encoding.HEX:
        body = _hex_body(frame)
    else:
        body = _ascii_body(frame)
    if len(body) > _MAX_BODY:
        raise EncodeError(f"body of {len(body)} bytes; one frame holds at most {_MAX_BODY}")
    if frame.encoding is Encoding.HEX:
        station = bytes.fromhex(frame.station)
        center = bytes([frame.center])
        addresses = center + station if frame.upward else station + center
        word = (0 if frame.upward else 0x8000) | len(body)
        head = HEX_START + addresses + frame.password.to_bytes(2, "big") + bytes([frame.function])
        raw = head + word.to_bytes(2, "big") + bytes([STX]) + body + bytes([frame.end])
        return raw + crc16(raw).to_bytes(2, "big")
    center_text = f"{frame.center:02X}"
    addresses_text = center_text + frame.station if frame.upward else frame.station + center_text
    head_text = f"{addresses_text}{frame.password:04X}{frame.function:02X}{'0' if frame.upward else '8'}{len(body):03X}"
    raw = bytes([SOH]) + head_text.encode("ascii") + bytes([STX]) + body + bytes([frame.end])
    return raw + f"{crc16(raw):04X}".encode("ascii")


def confirmation(frame: Frame, *, sent: datetime, keep_online: bool = False) -> Frame:
    """The central station's confirmation of an uplink report (M2, §6.3.1.2 b).

    Same function code, serial number, password and encoding (§6.1.2, §6.6.2.4); the body is
    serial + send time (Tables 29, 33, 35, 37). End character: ACK when the station said more
    frames follow (ETB, Table 10), else ESC to keep the station online (§6.3.2.4, H.4.4.1) or
    EOT to let it leave. ``sent`` (the centre's clock) is floored to the second.
    """
    if not frame.upward or frame.function not in REPORT_FUNCTIONS:
        raise EncodeError(f"only uplink reports are confirmed, not {frame.function:02X}H (§6.6.4.2)")
    if frame.end == ETB:
        end = ACK
    else:
        end = ESC if keep_online else EOT
    return Frame(
        station=frame.station,
        function=frame.function,
        serial=frame.serial,
        sent=sent.replace(microsecond=0),
        center=frame.center,
        password=frame.password,
        upward=False,
        end=end,
        encoding=frame.encoding,
    )


# --- stream splitting ----------------------------------------------------------------------


def _frame_length(buf: bytearray, i: int) -> int | None:
    """Length of a plausible frame at ``buf[i]``; 0 if none starts there; None if more bytes are needed."""
    available = len(buf) - i
    if buf[i] == 0x7E:
        if available < 2:
            return None
        if buf[i + 1] != 0x7E:
            return 0
        if available < _HEX_HEAD:
            return None
        if buf[i + 11] >> 4 not in (0b0000, 0b1000) or buf[i + 13] not in (STX, SYN):
            return 0
        length = ((buf[i + 11] & 0x0F) << 8) | buf[i + 12]
        total, end_at = _HEX_HEAD + length + 3, _HEX_HEAD + length
    else:  # SOH
        need = min(available, _ASCII_HEAD)
        if not all(byte in _HEX_DIGITS for byte in buf[i + 1 : i + min(need, 23)]):
            return 0
        if available < _ASCII_HEAD:
            return None
        if buf[i + 19] not in b"08" or buf[i + 23] not in (STX, SYN):
            return 0
        length = int(buf[i + 20 : i + 23].decode("ascii"), 16)
        total, end_at = _ASCII_HEAD + length + 5, _ASCII_HEAD + length
    if available < total:
        return None
    return total if buf[i + end_at] in _ENDS else 0


class FrameSplitter:
    """Cuts a byte stream into candidate frames; skips garbage and finds the next start.

    A candidate is a start (7E7EH or SOH), a well-formed header and a legal end character at
    the declared length; its CRC is ``decode``'s business. Bytes that start no candidate come
    out as one ``Garbage`` per ``feed``. The buffer never holds more than one maximal frame
    plus the last chunk.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | Garbage]:
        """Add received bytes; return complete candidate frames and skipped garbage, in order."""
        buf = self._buf
        buf += data
        out: list[bytes | Garbage] = []
        i = 0
        garbage_from = 0
        while i < len(buf):
            if buf[i] not in (0x7E, SOH):
                i += 1
                continue
            size = _frame_length(buf, i)
            if size is None:
                break
            if size == 0:
                i += 1
                continue
            if i > garbage_from:
                out.append(Garbage(i - garbage_from, bytes(buf[garbage_from : min(i, garbage_from + 16)])))
            out.append(bytes(buf[i : i + size]))
            i += size
            garbage_from = i
        if i > garbage_from:
            out.append(Garbage(i - garbage_from, bytes(buf[garbage_from : min(i, garbage_from + 16)])))
        del buf[:i]
        return out

    def flush(self) -> bytes:
        """At the end of the stream: return (and forget) the bytes of an unfinished frame."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


# --- mapping to readings -------------------------------------------------------------------

# Yingji quantity (sensors/kinds.py) of each mappable element. SL 651-2014 keeps three kinds
# of rain apart: PT is a running total from a start point, usually 1 January (§3.1.6), the
# counter Yingji calls ``rain_total``; P1..PD, PN01..PN30 and the DRP series are totals over
# a fixed period ending at the observation time (§6.6.2.8 c), i.e. ``rain``; PJ "current
# rainfall" is the total since the latest day start (§3.1.8): neither (it restarts every day
# from a non-zero value in rain, which a counter check reads as an impossible drop), so it is
# not mapped. VT is the supply voltage, Yingji's health record ``supply``.
ELEMENT_QUANTITIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "PT": "rain_total",
        **{code: "rain" for code in ("PN01", "PN05", "PN10", "PN30", "P1", "P2", "P3", "P6", "P12", "PD", "DRP")},
        **{code: "level" for code in ("Z", "ZU", "ZB", *(f"Z{i}" for i in range(1, 9)))},
        **{f"DRZ{i}": "level" for i in range(1, 9)},
        "VT": "supply",
    }
)
# Period of each interval-rain element (Table C.1 rows 40-50; DRP: 5 min, row 5).
RAIN_PERIOD_S: Final[Mapping[str, float]] = MappingProxyType(
    {
        "PN01": 60.0, "PN05": 300.0, "PN10": 600.0, "PN30": 1800.0, "DRP": 300.0,
        "P1": 3600.0, "P2": 7200.0, "P3": 10800.0, "P6": 21600.0, "P12": 43200.0, "PD": 86400.0,
    }
)  # fmt: skip
QUANTITY_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {"rain": "mm", "rain_total": "mm", "level": "m", "supply": "V"}
)
_CONFIG_KEYS = frozenset({"station", "elements", "ignore", "password", "level_base_m"})
_NOT_MAPPABLE = MappingProxyType(
    {
        "PJ": "PJ is rain since the day start (SL 651-2014 §3.1.8): neither interval rain nor a counter; "
        "map PT (rain_total) or an interval element (rain), and list PJ under 'ignore'",
    }
)


@dataclass(frozen=True, slots=True)
class _Target:
    sensor_id: str
    quantity: str
    unit: str
    base_m: float = 0.0  # added to DRZ relative levels (§3.1.3, §3.1.4)


@dataclass(frozen=True, slots=True)
class _Station:
    password: int | None
    targets: Mapping[str, _Target]
    ignored: frozenset[str]


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one frame gives: readings (times in UTC), rejections, and elements left out on purpose."""

    readings: tuple[Reading, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    ignored: int = 0  # element values the registry lists under 'ignore'


@dataclass(frozen=True, slots=True)
class _SensorEntry:
    station: str
    password: int | None
    targets: dict[str, _Target]
    ignored: frozenset[str]


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _sensor_entry(spec: SensorSpec, raw: Any) -> _SensorEntry:
    where = f"sensor {spec.sensor_id!r} sl651"

    def error(message: str) -> MappingError:
        return MappingError(f"{where}: {message}")

    if not isinstance(raw, Mapping):
        raise error(f"must be an object, got {raw!r}")
    unknown = sorted(set(raw) - _CONFIG_KEYS)
    if unknown:
        raise error(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_CONFIG_KEYS))})")
    station = raw.get("station")
    if not isinstance(station, str) or len(station) != 10 or not _is_hex(station):
        raise error(f"'station' must be the 10 hex digits of the station address, got {station!r}")
    password = raw.get("password")
    if password is not None:
        if not isinstance(password, str) or len(password) != 4 or not _is_hex(password):
            raise error(f"'password' must be 4 hex digits, got {password!r}")
        password = int(password, 16)
    base = raw.get("level_base_m")
    if base is not None and not _is_number(base):
        raise error(f"'level_base_m' must be a finite number, got {base!r}")
    ignore = raw.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(code, str) and code for code in ignore):
        raise error(f"'ignore' must be a list of element identifiers, got {ignore!r}")
    elements = raw.get("elements", {})
    if not isinstance(elements, Mapping) or not (elements or ignore):
        example = '{"PT": "rain_total"}'
        raise error(f"'elements' must map element identifiers to quantities, e.g. {example}")
    targets: dict[str, _Target] = {}
    used: dict[str, str] = {}
    for code, quantity in elements.items():
        expected = ELEMENT_QUANTITIES.get(code)
        if expected is None:
            reason = _NOT_MAPPABLE.get(code, f"mappable: {', '.join(sorted(ELEMENT_QUANTITIES))}")
            raise error(f"element {code!r} cannot be mapped ({reason})")
        if quantity != expected:
            raise error(f"element {code} gives {expected!r}, not {quantity!r}")
        known = spec.quantity_spec(quantity)
        if known is None or known.unit != QUANTITY_UNITS[quantity]:
            raise error(f"a {spec.kind} does not report {quantity!r} in {QUANTITY_UNITS[quantity]} (from {code})")
        if quantity == "rain" and RAIN_PERIOD_S[code] != spec.interval_s:
            raise error(
                f"{code} is rain over {RAIN_PERIOD_S[code]:g} s but the sensor's interval_s is {spec.interval_s:g}; "
                "'rain' means rain since the previous value"
            )
        if code.startswith("DRZ") and base is None:
            raise error(f"{code} is a relative level; give 'level_base_m' (water-level base, §3.1.3)")
        if quantity in used:
            raise error(f"elements {used[quantity]} and {code} both give {quantity!r}")
        used[quantity] = code
        base_m = float(base) if code.startswith("DRZ") and base is not None else 0.0
        targets[code] = _Target(spec.sensor_id, quantity, QUANTITY_UNITS[quantity], base_m)
    if "rain" in used and "rain_total" in used:
        # Interval rain is derived from the counter's increments (docs/quality-control.md,
        # "Derived series"): taking both would count the rain twice.
        raise error(f"map {used['rain']} (rain) or {used['rain_total']} (rain_total), not both")
    both = sorted(set(ignore) & set(targets))
    if both:
        raise error(f"{', '.join(both)} both mapped and ignored")
    return _SensorEntry(station.upper(), password, targets, frozenset(ignore))


def _topic(station: str) -> str:
    return f"sl651/{station}"


class Sl651Mapping:
    """Which registry sensor and quantity each (station, element) of an SL 651 report feeds.

    Built from the registry: a sensor takes part when its properties carry ``sl651``::

        "sl651": {
            "station": "0012345678",           # 10 hex digits of the 5-byte address (§6.2.3.2)
            "elements": {"PT": "rain_total"},   # Table C.1 identifier -> Yingji quantity
            "ignore": ["PJ"],                   # optional: elements left out on purpose
            "password": "1234",                # optional, 4 hex digits; other passwords refused
            "level_base_m": 150.0               # optional; needed for DRZ1..8 (relative levels)
        }

    Quantities (``ELEMENT_QUANTITIES``), each one the sensor's kind reports
    (``SensorSpec.quantity_spec``): ``rain`` mm over the element's period, which must equal
    the sensor's ``interval_s`` (PN01..PN30, P1..P12, PD, DRP); ``rain_total`` mm running total
    (PT); ``level`` m (Z, ZU, ZB, Z1..Z8; DRZ1..8 plus ``level_base_m``); ``supply`` V (VT).
    A sensor takes ``rain`` or ``rain_total``, not both. Several sensors may share a station
    (one logger, several gauges); each element goes to one sensor; ``ignore`` applies to the
    station. An element neither mapped nor ignored is an ``unmapped_element`` rejection.
    Bad entries raise ``MappingError`` naming the sensor.
    """

    __slots__ = ("_stations",)

    def __init__(self, stations: Mapping[str, _Station]) -> None:
        self._stations = dict(stations)

    @classmethod
    def from_specs(cls, specs: Iterable[SensorSpec]) -> Sl651Mapping:
        """Collect the ``sl651`` entries of ``specs``; clashes raise ``MappingError``."""
        passwords: dict[str, int | None] = {}
        targets: dict[str, dict[str, _Target]] = {}
        ignored: dict[str, set[str]] = {}
        for spec in specs:
            raw = spec.properties.get("sl651")
            if raw is None:
                continue
            entry = _sensor_entry(spec, raw)
            station = entry.station
            if station in passwords and passwords[station] != entry.password:
                raise MappingError(f"station {station}: sensors give different passwords")
            passwords[station] = entry.password
            station_targets = targets.setdefault(station, {})
            for code, target in entry.targets.items():
                if code in station_targets:
                    raise MappingError(
                        f"station {station} element {code} is mapped twice "
                        f"({station_targets[code].sensor_id!r} and {target.sensor_id!r})"
                    )
                station_targets[code] = target
            ignored.setdefault(station, set()).update(entry.ignored)
        for station, codes in ignored.items():
            clash = sorted(codes & set(targets[station]))
            if clash:
                raise MappingError(f"station {station}: {', '.join(clash)} mapped by one sensor, ignored by another")
        return cls(
            {s: _Station(passwords[s], MappingProxyType(targets[s]), frozenset(ignored[s])) for s in passwords}
        )

    @property
    def stations(self) -> frozenset[str]:
        """Registered station addresses."""
        return frozenset(self._stations)

    def authenticate(self, frame: Frame) -> Rejection | None:
        """A ``bad_password`` rejection when the station has a password and the frame another."""
        station = self._stations.get(frame.station)
        if station is None or station.password is None or station.password == frame.password:
            return None
        return Rejection(
            topic=_topic(frame.station),
            reason="bad_password",
            detail=f"frame {frame.function:02X}H serial {frame.serial} has password {frame.password:04X}, "
            f"the registry {station.password:04X}",
        )

    def map(self, frame: Frame) -> Mapped:
        """Readings and rejections for every element of ``frame``'s reports."""
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        ignored = 0
        for report in frame.reports:
            topic = _topic(report.station)
            station = self._stations.get(report.station)
            if station is None:
                count = sum(len(o.elements) for o in report.observations)
                rejections.append(
                    Rejection(
                        topic=topic,
                        reason="unknown_station",
                        detail=f"station {report.station} ({count} elements, function {frame.function:02X}H) "
                        "is in no sensor's sl651 entry",
                    )
                )
                continue
            for observation in report.observations:
                for element in observation.elements:
                    if element.code in station.ignored:
                        ignored += 1
                        continue
                    self._element(element, observation.time, station, topic, readings, rejections)
        return Mapped(tuple(readings), tuple(rejections), ignored)

    @staticmethod
    def _element(
        element: Element,
        time: datetime,
        station: _Station,
        topic: str,
        readings: list[Reading],
        rejections: list[Rejection],
    ) -> None:
        target = station.targets.get(element.code)
        when = time.astimezone(timezone.utc)
        if target is None:
            rejections.append(
                Rejection(
                    topic=topic,
                    reason="unmapped_element",
                    detail=f"element {element.code} observed {when.isoformat()} is mapped to no sensor",
                )
            )
            return
        if isinstance(element.value, tuple):  # 5-minute series: value i at time + 5 min * i (Table 36 note)
            points = [(when + _SERIES_STEP * i, value) for i, value in enumerate(element.value)]
        else:
            points = [(when, element.value)]  # type: ignore[list-item]
        for at, value in points:
            if value is None:
                rejections.append(
                    Rejection(
                        topic=topic,
                        reason="no_data",
                        detail=f"element {element.code} observed {at.isoformat()}: the station sent no value",
                        sensor_id=target.sensor_id,
                    )
                )
                continue
            readings.append(
                Reading(
                    sensor_id=target.sensor_id,
                    quantity=target.quantity,
                    value=float(value) + target.base_m,
                    unit=target.unit,
                    time=at,
                )
            )
