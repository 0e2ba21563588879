"""The MAVLink parameter protocol, ground-station side, and ArduPilot's value encoding.

    value = await vehicle.get_param("FENCE_ENABLE")          # 0.0
    await vehicle.set_param("FENCE_ENABLE", 1)               # verified from the echo
    everything = await vehicle.get_all_params(progress=lambda got, total: ...)

Protocol: https://mavlink.io/en/services/parameter.html. Every value travels in the float
field of PARAM_VALUE / PARAM_SET; ``param_type`` (MAV_PARAM_TYPE) says what it stands for.
ArduPilot converts integers to float by value ("C cast",
MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST: INT8 3 travels as 3.0), not by copying the
bytes (PARAM_ENCODE_BYTEWISE, PX4): :func:`decode_value` / :func:`encode_value` do both.

ArduPilot never answers a read of a name it does not have (FACTS), so a read by name that
gets no answer while the vehicle keeps talking raises :class:`~uav.errors.ParamNotFound`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import LinkLost, ParamNotFound, ParamSetFailed, ParamTimeout
from uav.link import MavLink, Subscription

__all__ = ["ParamValue", "Params", "ProgressCallback", "decode_value", "encode_value",
           "values_equal", "check_name", "from_wire", "INT_RANGES", "NAME_MAX_CHARS"]

log = logging.getLogger(__name__)

# PARAM_VALUE.param_id is char[16], NUL-terminated only when shorter (common.xml).
NAME_MAX_CHARS: Final = 16
# PARAM_VALUE.param_index 65535 (-1 as uint16): a value sent on its own, not as part of a
# list (ArduPilot's echo of PARAM_SET, GCS_Param.cpp send_parameter_value).
NO_INDEX: Final = 65535
# Integer MAV_PARAM_TYPEs and their ranges (MAV_PARAM_TYPE, common.xml). 64-bit integers
# cannot travel in a float32 and are not used by ArduPilot.
INT_RANGES: Final[dict[int, tuple[int, int, str]]] = {
    mav.MAV_PARAM_TYPE_UINT8: (0, 0xFF, "<B"),
    mav.MAV_PARAM_TYPE_INT8: (-0x80, 0x7F, "<b"),
    mav.MAV_PARAM_TYPE_UINT16: (0, 0xFFFF, "<H"),
    mav.MAV_PARAM_TYPE_INT16: (-0x8000, 0x7FFF, "<h"),
    mav.MAV_PARAM_TYPE_UINT32: (0, 0xFFFF_FFFF, "<I"),
    mav.MAV_PARAM_TYPE_INT32: (-0x8000_0000, 0x7FFF_FFFF, "<i"),
}
# float32 carries ~7 significant digits (IEEE 754 binary32: 24-bit significand, 2**-23 ≈
# 1.2e-7 relative); a set value and its echo are compared within a few of those steps.
REAL32_REL_TOL: Final = 1e-6
REAL32_ABS_TOL: Final = 1e-7
# How long to wait for the STATUSTEXT that explains a refused PARAM_SET (sent just after
# the echo); the same grace as for a refused command in ``uav.vehicle``.
STATUSTEXT_GRACE_S: Final = 0.3

ProgressCallback = Callable[[int, int], object]  # (received, total)


@dataclass(frozen=True, slots=True)
class ParamValue:
    """One parameter as the vehicle reported it (value already decoded)."""

    name: str
    value: float
    param_type: int
    index: int  # -1 when the message carried no index (a PARAM_SET echo)
    count: int

    @property
    def is_integer(self) -> bool:
        return self.param_type in INT_RANGES


def check_name(name: str) -> str:
    """A parameter name as sent: ASCII, 1..16 characters; ValueError otherwise."""
    if not isinstance(name, str) or not name or len(name) > NAME_MAX_CHARS or not name.isascii():
        raise ValueError(f"parameter name must be 1..{NAME_MAX_CHARS} ASCII characters, "
                         f"got {name!r}")
    return name


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def decode_value(raw: float, param_type: int, *, bytewise: bool = False) -> float:
    """The value a PARAM_VALUE float stands for: ``decode_value(3.0, INT8) == 3.0``.

    ``bytewise=True`` reads the float's four bytes as the integer type (PX4 encoding).
    """
    spec = INT_RANGES.get(param_type)
    if spec is None:
        return float(raw)
    if bytewise:
        data = struct.pack("<f", raw)
        size = struct.calcsize(spec[2])
        return float(struct.unpack(spec[2], data[:size])[0])
    if not math.isfinite(raw):
        return float(raw)
    return float(round(raw))


def encode_value(value: float, param_type: int, *, bytewise: bool = False) -> float:
    """The float to put in PARAM_SET for ``value``; ValueError if it does not fit the type."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"parameter value must be finite, got {value}")
    spec = INT_RANGES.get(param_type)
    if spec is None:
        if abs(value) > 3.4028234e38:  # FLT_MAX
            raise ValueError(f"{value} does not fit a float32 parameter")
        return _f32(value)
    low, high, fmt = spec
    if abs(value - round(value)) > 1e-6:
        raise ValueError(f"{value} is not an integer, the parameter is "
                         f"{mav.enums['MAV_PARAM_TYPE'][param_type].name}")
    number = int(round(value))
    if not low <= number <= high:
        raise ValueError(f"{number} is out of range {low}..{high} for "
                         f"{mav.enums['MAV_PARAM_TYPE'][param_type].name}")
    if bytewise:
        size = struct.calcsize(fmt)
        data = struct.pack(fmt, number) + b"\x00" * (4 - size)
        return struct.unpack("<f", data)[0]
    return float(number)


def values_equal(a: float, b: float, param_type: int) -> bool:
    """Same parameter value? Integers exactly; float32 within a few ulps."""
    if param_type in INT_RANGES:
        return math.isfinite(a) and math.isfinite(b) and round(a) == round(b)
    return math.isclose(_f32(a), _f32(b), rel_tol=REAL32_REL_TOL, abs_tol=REAL32_ABS_TOL)


def _clean(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    return str(text).split("\x00", 1)[0]


def from_wire(msg: Any, *, bytewise: bool = False) -> ParamValue:
    """ParamValue from a received PARAM_VALUE."""
    index = int(msg.param_index)
    return ParamValue(_clean(msg.param_id), decode_value(msg.param_value, msg.param_type,
                                                         bytewise=bytewise),
                      int(msg.param_type), -1 if index == NO_INDEX else index,
                      int(msg.param_count))


class Params:
    """Parameter protocol client for one vehicle; keeps the last value seen per name.

    One operation at a time (a lock): ArduPilot answers reads and sets in order, and a
    list download must not count another operation's echo.
    """

    def __init__(self, link: MavLink, system_id: int, target_component: int, *,
                 name: str, lost: Callable[[], bool], bytewise: bool = False) -> None:
        self.link = link
        self.system_id = system_id
        self.target_component = target_component
        self.name = name
        self.bytewise = bytewise
        self.cache: dict[str, ParamValue] = {}
        self._lost = lost
        self._lock = asyncio.Lock()

    def _subscribe(self, *, statustext: bool = False, maxsize: int = 256) -> Subscription:
        types = {"PARAM_VALUE", "STATUSTEXT"} if statustext else {"PARAM_VALUE"}
        return self.link.subscribe(self.system_id, types=types, maxsize=maxsize)

    def _remember(self, msg: Any) -> ParamValue:
        p = from_wire(msg, bytewise=self.bytewise)
        self.cache[p.name] = p
        return p

    def _send_read(self, name: str = "", index: int = -1) -> None:
        self.link.send(self.link.mav.param_request_read_encode(
            self.system_id, self.target_component, name.encode("ascii"), index),
            system_id=self.system_id)

    async def _next(self, sub: Subscription, timeout_s: float) -> Any | None:
        try:
            async with asyncio.timeout(timeout_s):
                return await sub.get()
        except TimeoutError:
            return None

    async def _wait_named(self, sub: Subscription, name: str, timeout_s: float,
                          texts: list[str] | None = None) -> ParamValue | None:
        """The next PARAM_VALUE for ``name`` within ``timeout_s`` (None if none)."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    msg = await sub.get()
                    if msg.get_type() == "STATUSTEXT":
                        if texts is not None:
                            texts.append(_clean(msg.text).strip())
                        continue
                    p = self._remember(msg)
                    if p.name == name:
                        return p
        except TimeoutError:
            return None

    # ---- read by name --------------------------------------------------------------------

    async def get(self, name: str, *, timeout_s: float = 1.0, attempts: int = 3) -> ParamValue:
        """PARAM_REQUEST_READ by name until PARAM_VALUE answers; ParamNotFound if the vehicle
        talks but never answers, LinkLost if it is silent."""
        check_name(name)
        async with self._lock:
            return await self._get(name, timeout_s, attempts)

    async def _get(self, name: str, timeout_s: float, attempts: int) -> ParamValue:
        with self._subscribe() as sub:
            for attempt in range(attempts):
                self._send_read(name)
                p = await self._wait_named(sub, name, timeout_s)
                if p is not None:
                    return p
                log.debug("%s: no PARAM_VALUE for %s (try %d)", self.name, name, attempt + 1)
        if self._lost():
            raise LinkLost(f"{self.name}: lost while reading parameter {name}")
        raise ParamNotFound(f"{self.name}: parameter {name} not answered after {attempts} "
                            f"reads (the vehicle has no such parameter)", name=name)

    # ---- the whole list ------------------------------------------------------------------

    async def get_all(self, *, progress: ProgressCallback | None = None,
                      timeout_s: float = 60.0, idle_s: float = 1.0,
                      batch: int = 32) -> dict[str, ParamValue]:
        """PARAM_REQUEST_LIST; collect by index until ``param_count``; indices still missing
        after ``idle_s`` of quiet are read one by one (``batch`` at a time). ParamTimeout
        after ``timeout_s`` overall, LinkLost if the vehicle goes silent."""
        async with self._lock:
            with self._subscribe(maxsize=8192) as sub:
                got: dict[int, ParamValue] = {}
                count: int | None = None
                try:
                    async with asyncio.timeout(timeout_s):
                        count = await self._collect(sub, got, progress, idle_s, batch)
                except TimeoutError:
                    raise ParamTimeout(
                        f"{self.name}: parameter list incomplete after {timeout_s:g} s "
                        f"({len(got)} of {count if count is not None else '?'})") from None
        return {p.name: p for _, p in sorted(got.items())}

    async def _collect(self, sub: Subscription, got: dict[int, ParamValue],
                       progress: ProgressCallback | None, idle_s: float, batch: int) -> int:
        request_list = self.link.mav.param_request_list_encode(self.system_id,
                                                               self.target_component)
        self.link.send(request_list, system_id=self.system_id)
        count: int | None = None
        while count is None or len(got) < count:
            msg = await self._next(sub, idle_s)
            if msg is None:
                if self._lost():
                    raise LinkLost(f"{self.name}: lost during the parameter list")
                if count is None:
                    self.link.send(request_list, system_id=self.system_id)  # list request lost
                    continue
                missing = [i for i in range(count) if i not in got][:max(1, batch)]
                log.info("%s: re-reading %d missing parameters (%d of %d in)", self.name,
                         len(missing), len(got), count)
                for index in missing:
                    self._send_read(index=index)
                continue
            p = self._remember(msg)
            if p.index < 0:
                continue  # an echo or an unsolicited change, not a list entry
            if count != p.count:
                if count is not None:
                    log.warning("%s: parameter count changed %d → %d", self.name, count, p.count)
                    got.clear()
                count = p.count
            if p.index < count and p.index not in got:
                got[p.index] = p
                _report(progress, len(got), count, self.name)
        return count

    # ---- set and verify ------------------------------------------------------------------

    async def set(self, name: str, value: float, *, timeout_s: float = 1.0,
                  attempts: int = 3) -> ParamValue:
        """PARAM_SET, verified from the echoed PARAM_VALUE (a read if the echo is lost).

        ValueError if ``value`` does not fit the parameter's type; ParamNotFound for an
        unknown name; ParamSetFailed if the vehicle keeps another value.
        """
        check_name(name)
        async with self._lock:
            known = self.cache.get(name) or await self._get(name, timeout_s, attempts)
            wire = encode_value(value, known.param_type, bytewise=self.bytewise)
            wanted = decode_value(wire, known.param_type, bytewise=self.bytewise)
            texts: list[str] = []
            with self._subscribe(statustext=True) as sub:
                echo: ParamValue | None = None
                for attempt in range(attempts):
                    self.link.send(self.link.mav.param_set_encode(
                        self.system_id, self.target_component, name.encode("ascii"), wire,
                        known.param_type), system_id=self.system_id)
                    echo = await self._wait_named(sub, name, timeout_s, texts)
                    if echo is not None:
                        break
                    log.debug("%s: no echo for PARAM_SET %s (try %d)", self.name, name,
                              attempt + 1)
                if echo is not None and not values_equal(echo.value, wanted, echo.param_type):
                    # ArduPilot sends the reason ("Param write denied") just after the echo.
                    await self._wait_named(sub, "", STATUSTEXT_GRACE_S, texts)
            if echo is None:
                echo = await self._get(name, timeout_s, attempts)  # the echo may be all we lost
            if not values_equal(echo.value, wanted, echo.param_type):
                text = next((t for t in reversed(texts) if name in t), None) or \
                    (texts[-1] if texts else None)
                reason = f" ({text})" if text else ""
                raise ParamSetFailed(f"{self.name}: {name} set to {wanted:g} but the vehicle "
                                     f"keeps {echo.value:g}{reason}", name=name, wanted=wanted,
                                     got=echo.value, statustext=text)
            return echo


def _report(progress: ProgressCallback | None, got: int, total: int, name: str) -> None:
    if progress is None:
        return
    try:
        progress(got, total)
    except Exception:  # a broken progress display must not stop the download
        log.exception("%s: parameter progress callback failed", name)
