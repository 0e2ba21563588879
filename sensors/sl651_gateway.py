"""SL 651-2014 central station over TCP: device frames in, readings out, confirmations back.

Field loggers (rain and level gauges on GPRS/4G) open a TCP connection to the central station
and send SL 651 frames (see ``sensors.sl651``). ``Sl651Gateway`` accepts many such
connections, cuts each byte stream into frames (skipping garbage), decodes them, maps them to
``Reading``s through the registry (``Sl651Mapping``) and answers every correctly received
report with the confirmation frame of the M2 mode (SL 651-2014 §6.3.1.2 b).

Rules kept from the standard:

- a keep-alive (2FH) gets no answer (§6.6.4.2);
- a frame that is not received correctly (bad CRC, bad structure, wrong password) gets no
  answer: the station resends, at most twice (§6.3.1.2 b, §6.3.2.3);
- test reports (30H) are confirmed, but their data is test data that must not enter the
  production store (§6.6.4.3, H.4.8): it goes to ``on_test_readings`` if given, else it is
  counted and logged;
- the answer ends with EOT (the station may leave) or, with ``keep_online``, ESC (stay online
  for 10 minutes, §6.3.2.4, H.4.4.1); ACK after an ETB frame (Table 10).

A report is confirmed only after ``on_readings`` returned: a confirmation means the readings
were handed over. If the callback raises, no confirmation goes out and the station resends.
A resent report (same station, function, serial number and content) is confirmed again but its
readings are not handed over twice.

Nothing is dropped silently: every refused frame, garbage run, unknown station, unmapped
element and missing value becomes a ``Rejection`` (counted by reason in ``stats``, logged with
rate limiting, handed to ``on_rejection``). Rejection topics are ``sl651/{station}`` or, when no
station could be read, ``sl651/peer/{host}:{port}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from sensors.model import Reading, Rejection, RejectionLog
from sensors.sl651 import (
    ETX,
    Element,
    Encoding,
    Frame,
    FrameError,
    FrameSplitter,
    Function,
    Garbage,
    Observation,
    REPORT_FUNCTIONS,
    Sl651Error,
    Sl651Mapping,
    StationReport,
    confirmation,
    decode,
    encode,
)

__all__ = [
    "GATEWAY_REASONS",
    "DeviceError",
    "GatewayStats",
    "Sl651Device",
    "Sl651Gateway",
]

log = logging.getLogger("sensors.sl651_gateway")

# Rejection reasons the gateway adds to FRAME_REASONS and MAPPING_REASONS.
GATEWAY_REASONS = ("garbage", "downlink_frame", "wrong_center")

# A station online sends a keep-alive every 1..255 s (§6.6.4.2); five minutes of silence is
# more than any legal keep-alive interval, so the connection is dead or the station left.
DEFAULT_IDLE_TIMEOUT_S = 300.0
_CLOSE_TIMEOUT_S = 2.0


@dataclass(slots=True)
class GatewayStats:
    """Counters of one gateway (read them; only the gateway writes them)."""

    connections: int = 0  # accepted so far
    open_connections: int = 0
    refused_connections: int = 0  # over max_connections
    idle_closed: int = 0  # closed after idle_timeout_s without a byte
    bytes_in: int = 0
    bytes_out: int = 0
    frames_ok: int = 0  # accepted uplink frames: decoded, right centre and password (keep-alives included)
    keep_alives: int = 0
    test_frames: int = 0
    duplicates: int = 0  # resent reports, confirmed again, readings not handed over twice
    readings: int = 0  # handed to on_readings
    ignored: int = 0  # element values the registry lists under 'ignore'
    test_readings: int = 0  # from test reports (not production data)
    confirmations: int = 0
    unconfirmed: int = 0  # reports left unconfirmed because on_readings raised
    handler_errors: int = 0  # exceptions raised by the callbacks
    rejected: Counter[str] = field(default_factory=Counter)  # by reason code

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Sl651Gateway:
    """An SL 651 central station on one TCP port; an async context manager.

    ``async with Sl651Gateway(...) as gateway:`` listens until the block ends; ``run()``
    does the same until cancelled (for a ``TaskGroup``). ``port=0`` picks a free port
    (read ``gateway.port``).
    """

    def __init__(
        self,
        *,
        mapping: Sl651Mapping,
        on_readings: Callable[[list[Reading]], Awaitable[None]],
        clock: Callable[[], datetime],
        host: str,
        port: int,
        on_rejection: Callable[[Rejection], Awaitable[None]] | None = None,
        on_test_readings: Callable[[list[Reading]], Awaitable[None]] | None = None,
        center: int | None = None,
        keep_online: bool = False,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        write_timeout_s: float = 10.0,
        max_connections: int = 2048,
        chunk_bytes: int = 4096,
        remembered_reports: int = 4096,
    ) -> None:
        if idle_timeout_s <= 0 or write_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if max_connections < 1 or chunk_bytes < 1 or remembered_reports < 0:
            raise ValueError("max_connections and chunk_bytes must be positive, remembered_reports not negative")
        self.mapping = mapping
        self.stats = GatewayStats()
        self._on_readings = on_readings
        self._on_rejection = on_rejection
        self._on_test_readings = on_test_readings
        self._clock = clock
        self._host = host
        self._port = port
        self._center = center  # refuse frames addressed to another central station
        self._keep_online = keep_online
        self._idle_timeout_s = idle_timeout_s
        self._write_timeout_s = write_timeout_s
        self._max_connections = max_connections
        self._chunk_bytes = chunk_bytes
        self._remembered_max = remembered_reports
        self._remembered: OrderedDict[tuple[str, int, int, tuple[StationReport, ...]], None] = OrderedDict()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._rejection_log = RejectionLog(log)
        self.serving = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (after start)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the gateway is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the gateway is already listening")
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        self.serving.set()
        log.info("SL 651 central station listening on %s:%d", self._host, self.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, close every connection and wait for their handlers."""
        server, self._server = self._server, None
        self.serving.clear()
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await server.wait_closed()
        log.info("SL 651 central station stopped")

    async def run(self) -> None:
        """Listen until cancelled."""
        async with self:
            await asyncio.Event().wait()

    # --- one connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        task = asyncio.current_task()
        if self._server is None or task is None or len(self._connections) >= self._max_connections:
            self.stats.refused_connections += 1
            log.warning("connection from %s refused: %d connections open", peer, len(self._connections))
            await _close(writer)
            return
        self._connections.add(task)  # type: ignore[arg-type]
        self.stats.connections += 1
        self.stats.open_connections += 1
        log.info("station connected from %s", peer)
        try:
            await self._session(reader, writer, peer)
        except (ConnectionError, TimeoutError) as err:
            log.info("connection from %s lost: %s", peer, err or type(err).__name__)
        except Exception:  # one bad connection never takes the gateway down
            self.stats.handler_errors += 1
            log.exception("error on the connection from %s; closed", peer)
        finally:
            self._connections.discard(task)  # type: ignore[arg-type]
            self.stats.open_connections -= 1
            await _close(writer)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        splitter = FrameSplitter()
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout_s):
                    chunk = await reader.read(self._chunk_bytes)
            except TimeoutError:
                self.stats.idle_closed += 1
                log.info("connection from %s idle for %g s: closed", peer, self._idle_timeout_s)
                break
            if not chunk:
                break
            self.stats.bytes_in += len(chunk)
            for item in splitter.feed(chunk):
                if isinstance(item, Garbage):
                    await self._reject(
                        Rejection(
                            topic=_peer_topic(peer),
                            reason="garbage",
                            detail=f"{item.size} bytes that start no frame (first {item.head.hex().upper()})",
                        )
                    )
                else:
                    await self._frame(item, writer, peer)
        rest = splitter.flush()
        if rest:
            await self._reject(
                Rejection(
                    topic=_peer_topic(peer),
                    reason="truncated",
                    detail=f"connection ended inside a frame ({len(rest)} bytes, first {rest[:16].hex().upper()})",
                )
            )

    async def _frame(self, raw: bytes, writer: asyncio.StreamWriter, peer: str) -> None:
        try:
            frame = decode(raw)
        except FrameError as err:
            topic = f"sl651/{err.station}" if err.station else _peer_topic(peer)
            await self._reject(Rejection(topic=topic, reason=err.reason, detail=f"{err.detail} (from {peer})"))
            return
        topic = f"sl651/{frame.station}"
        if not frame.upward:
            detail = f"a {frame.function:02X}H downlink frame from {peer}; a central station takes uplink frames"
            await self._reject(Rejection(topic=topic, reason="downlink_frame", detail=detail))
            return
        if self._center is not None and frame.center != self._center:
            detail = f"frame for central station {frame.center}, this is {self._center} (from {peer})"
            await self._reject(Rejection(topic=topic, reason="wrong_center", detail=detail))
            return
        refusal = self.mapping.authenticate(frame)
        if refusal is not None:
            await self._reject(refusal)
            return
        self.stats.frames_ok += 1
        if frame.function == Function.KEEP_ALIVE:
            self.stats.keep_alives += 1
            return
        # A resend repeats the serial number and the content (§6.6.2.4); a logger that restarted
        # its serial numbers sends other content, so it is not taken for a resend.
        key = (frame.station, frame.function, frame.serial, frame.reports)
        if key in self._remembered:
            self.stats.duplicates += 1
            log.info("station %s resent %02XH serial %d: confirmed again", frame.station, frame.function, frame.serial)
            await self._confirm(frame, writer)
            return
        mapped = self.mapping.map(frame)
        self.stats.ignored += mapped.ignored
        for rejection in mapped.rejections:
            await self._reject(rejection)
        readings = list(mapped.readings)
        if frame.function == Function.TEST:
            self.stats.test_frames += 1
            self.stats.test_readings += len(readings)
            if readings and self._on_test_readings is not None:
                await self._call("on_test_readings", self._on_test_readings, readings)
            elif readings:
                log.info(
                    "test report from %s: %d readings not stored (SL 651-2014 §6.6.4.3)", frame.station, len(readings)
                )
        elif readings:
            if not await self._call("on_readings", self._on_readings, readings):
                self.stats.unconfirmed += 1
                log.warning(
                    "report %02XH serial %d of %s left unconfirmed: the station will resend",
                    frame.function,
                    frame.serial,
                    frame.station,
                )
                return
            self.stats.readings += len(readings)
        self._remember(key)
        await self._confirm(frame, writer)

    def _remember(self, key: tuple[str, int, int, tuple[StationReport, ...]]) -> None:
        if self._remembered_max == 0:
            return
        self._remembered[key] = None
        while len(self._remembered) > self._remembered_max:
            self._remembered.popitem(last=False)

    async def _confirm(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        reply = encode(confirmation(frame, sent=self._clock(), keep_online=self._keep_online))
        writer.write(reply)
        async with asyncio.timeout(self._write_timeout_s):
            await writer.drain()
        self.stats.confirmations += 1
        self.stats.bytes_out += len(reply)

    async def _reject(self, rejection: Rejection) -> None:
        self.stats.rejected[rejection.reason] += 1
        self._rejection_log.note(rejection)
        if self._on_rejection is not None:
            await self._call("on_rejection", self._on_rejection, rejection)

    async def _call(self, what: str, callback: Callable[..., Awaitable[None]], *args: object) -> bool:
        try:
            await callback(*args)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("%s raised; the gateway goes on", what)
            return False
        return True


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _peer_topic(peer: str) -> str:
    return f"sl651/peer/{peer}"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await writer.wait_closed()


# --- device simulator ----------------------------------------------------------------------


class DeviceError(Sl651Error):
    """A simulated station's exchange that failed; ``cause`` is timeout, closed or mismatch."""

    def __init__(self, cause: str, detail: str) -> None:
        self.cause = cause
        self.detail = detail
        super().__init__(f"{cause}: {detail}")


class Sl651Device:
    """A simulated telemetry station on one TCP connection (an async context manager).

    ``await device.report([Element.of("PT", 12.5)], observed=t)`` sends a timed report and
    returns the central station's confirmation (or raises ``DeviceError``). Serial numbers
    run 1..65535 and wrap; a keep-alive repeats the last one (§6.6.4.2).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        station: str,
        clock: Callable[[], datetime],
        center: int = 1,
        password: int = 0,
        category: str = "H",
        encoding: Encoding = Encoding.HEX,
        reply_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.station = station.upper()
        self.center = center
        self.password = password
        self.category = category
        self.encoding = encoding
        self._host = host
        self._port = port
        self._clock = clock
        self._reply_timeout_s = reply_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._serial = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._splitter = FrameSplitter()
        self._pending: list[bytes] = []
        self._exchange = asyncio.Lock()  # one report at a time: the next waits for its confirmation

    async def __aenter__(self) -> Self:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            raise DeviceError("timeout", f"no connection to {self._host}:{self._port}") from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            await _close(writer)

    def next_serial(self) -> int:
        """Advance and return the serial number (1..65535, §6.6.2.4)."""
        self._serial = self._serial % 0xFFFF + 1
        return self._serial

    def report_frame(
        self,
        elements: Sequence[Element],
        *,
        observed: datetime,
        function: int = Function.TIMED,
        serial: int | None = None,
    ) -> Frame:
        """A report frame of this station (next serial unless given), sent now."""
        if function not in REPORT_FUNCTIONS:
            raise ValueError(f"{function:02X}H is not a report function")
        return Frame(
            station=self.station,
            function=function,
            serial=self.next_serial() if serial is None else serial,
            sent=self._clock().replace(microsecond=0),
            center=self.center,
            password=self.password,
            end=ETX,
            encoding=self.encoding,
            reports=(StationReport(self.station, self.category, (Observation(observed, tuple(elements)),)),),
        )

    async def report(
        self, elements: Sequence[Element], *, observed: datetime, function: int = Function.TIMED
    ) -> Frame:
        """Send one report and return the central station's confirmation."""
        async with self._exchange:
            frame = self.report_frame(elements, observed=observed, function=function)
            await self.send_bytes(encode(frame))
            return await self.confirmation_of(frame)

    async def keep_alive(self) -> None:
        """Send a link keep-alive (2FH); no answer comes (§6.6.4.2)."""
        frame = Frame(
            station=self.station,
            function=Function.KEEP_ALIVE,
            serial=max(self._serial, 1),
            sent=self._clock().replace(microsecond=0),
            center=self.center,
            password=self.password,
            encoding=self.encoding,
        )
        await self.send_bytes(encode(frame))

    async def send_bytes(self, data: bytes) -> None:
        """Write raw bytes (a frame, garbage, a damaged frame) under the reply deadline."""
        if self._writer is None:
            raise DeviceError("closed", "the device is not connected")
        self._writer.write(data)
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                await self._writer.drain()
        except TimeoutError:
            raise DeviceError("timeout", "the central station does not take data") from None

    async def receive(self) -> Frame:
        """The next frame from the central station, under the reply deadline."""
        if self._reader is None:
            raise DeviceError("closed", "the device is not connected")
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                while not self._pending:
                    chunk = await self._reader.read(4096)
                    if not chunk:
                        raise DeviceError("closed", "the central station closed the connection")
                    self._pending += [item for item in self._splitter.feed(chunk) if isinstance(item, bytes)]
        except TimeoutError:
            raise DeviceError("timeout", f"no frame within {self._reply_timeout_s:g} s") from None
        raw = self._pending.pop(0)
        try:
            return decode(raw)
        except FrameError as err:
            raise DeviceError("mismatch", f"undecodable answer: {err}") from err

    async def confirmation_of(self, frame: Frame) -> Frame:
        """Await the confirmation of ``frame`` (same function and serial, a downlink frame)."""
        reply = await self.receive()
        if reply.upward or reply.function != frame.function or reply.serial != frame.serial:
            raise DeviceError(
                "mismatch",
                f"answer {reply.function:02X}H serial {reply.serial} to {frame.function:02X}H serial {frame.serial}",
            )
        return reply
