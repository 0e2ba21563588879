"""Async MAVLink 2 link (ArduPilot dialect) over UDP or TCP, on pymavlink's codec.

One :class:`MavLink` per connection string. Bytes are read by asyncio protocol callbacks
and decoded in chunks with ``MAVLink.parse_buffer`` (robust parsing: bad bytes are
counted, never raised). Decoded messages go to :class:`Subscription` queues, filtered by
source system id and message type; each queue is bounded and drops its oldest message
when its reader falls behind (counted in ``Subscription.dropped``).

``await link.run()`` sends the GCS HEARTBEAT at 1 Hz and re-connects TCP with backoff;
run it inside the owner's TaskGroup.

URLs::

    udpin:HOST:PORT    bind and listen; vehicles are learned from their packets
                       (many vehicles behind one port, told apart by system id)
    udpout:HOST:PORT   send to HOST:PORT (replies come back to the same socket)
    tcp:HOST:PORT      TCP client (ArduPilot SITL serves TCP 5760 + 10 * instance)
    serial:PATH:BAUD   serial port or USB radio (uav.serial_link; PATH may contain ':')

Latency (TIMESYNC, https://mavlink.io/en/services/timesync.html): ``run()`` also sends a
TIMESYNC request (``tc1`` 0, ``ts1`` our monotonic clock in ns) every
``timesync_period_s`` (and at the heartbeat pace until each new system has answered, at
most three times). ArduPilot answers with ``ts1`` echoed and ``tc1`` its own time
(GCS_MAVLINK::handle_timesync); an answer whose ``ts1`` is one of our recent requests
gives that system's round-trip time: ``stats(system_id).latency_ms`` (last) and
``latency_smoothed_ms`` (exponentially smoothed with the RFC 6298 gain 1/8). Requests
from the vehicle (``tc1`` 0) and answers to other ground stations are ignored.

Signing (MAVLink 2, :mod:`uav.signing`): ``link.set_signing_key(system_id, key)`` signs
what goes to that vehicle and drops what comes from it unsigned or wrongly signed
(counted in ``stats(system_id).unsigned_dropped`` / ``bad_signature_dropped``). Systems
without a key are unaffected, also on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import LinkError
from uav.serial_link import open_serial, parse_serial_url
from uav.signing import Signer, Verifier, parse_key

__all__ = ["Endpoint", "LinkQuality", "MavLink", "Subscription", "SystemStats", "open_link",
           "parse_url", "SequenceTracker"]

log = logging.getLogger(__name__)

# GCS heartbeat period: MAVLink heartbeat protocol, 1 Hz
# (https://mavlink.io/en/services/heartbeat.html).
HEARTBEAT_PERIOD_S: Final = 1.0
# TCP reconnect backoff bounds (doubling from the first to the last).
RECONNECT_FIRST_S: Final = 0.5
RECONNECT_MAX_S: Final = 8.0
# Remote UDP endpoints kept with their own parser state (a district fleet is tens).
MAX_UDP_PEERS: Final = 256
_SCHEMES: Final = ("udpin", "udpout", "tcp")
# Schemes with a connection that run() re-opens with backoff when it drops.
_STREAM_SCHEMES: Final = ("tcp", "serial")
# TIMESYNC: one request every few seconds per link (each vehicle answers it once);
# until a newly heard system has answered, up to this many at the heartbeat pace.
TIMESYNC_PERIOD_S: Final = 5.0
TIMESYNC_QUICK_TRIES: Final = 3
# Requests remembered for matching answers (older answers are ignored as stale).
TIMESYNC_KEEP: Final = 16
TIMESYNC_MAX_AGE_S: Final = 30.0
# Smoothing gain of the latency estimate: RFC 6298 (Paxson et al. 2011) §2, alpha = 1/8.
LATENCY_ALPHA: Final = 1.0 / 8.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed connection string (serial: ``host`` is the device path, ``port`` the baud)."""

    scheme: str
    host: str
    port: int


def parse_url(url: str) -> Endpoint:
    """``"udpin:0.0.0.0:14550"`` → ``Endpoint("udpin", "0.0.0.0", 14550)``."""
    if url.strip().startswith("serial:"):
        try:
            path, baud = parse_serial_url(url)
        except ValueError as err:
            raise LinkError(f"bad MAVLink URL: {err}") from None
        return Endpoint("serial", path, baud)
    parts = url.strip().split(":")
    if len(parts) != 3 or parts[0] not in _SCHEMES:
        raise LinkError(f"bad MAVLink URL {url!r}: expected one of "
                        f"{', '.join(s + ':HOST:PORT' for s in _SCHEMES)}, serial:PATH:BAUD")
    scheme, host, port_text = parts
    try:
        port = int(port_text)
    except ValueError:
        raise LinkError(f"bad MAVLink URL {url!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535 or (port == 0 and scheme != "udpin"):
        raise LinkError(f"bad MAVLink URL {url!r}: port {port} out of range")
    return Endpoint(scheme, host or "0.0.0.0", port)


@dataclass(frozen=True, slots=True)
class SystemStats:
    """What the link knows about one remote system id."""

    system_id: int
    received: int
    lost: int
    last_heard_s: float  # time.monotonic() of the last packet
    address: tuple[str, int] | None
    # Signing: packets dropped because the system has a key and the packet was unsigned,
    # or carried a bad signature / a replayed or stale timestamp (uav.signing).
    unsigned_dropped: int = 0
    bad_signature_dropped: int = 0
    # TIMESYNC round trip, milliseconds: the last answer and the smoothed value (NaN: none yet).
    latency_ms: float = math.nan
    latency_smoothed_ms: float = math.nan
    timesync_answers: int = 0

    @property
    def loss_ratio(self) -> float:
        """Lost / (lost + received), from MAVLink packet sequence numbers."""
        total = self.received + self.lost
        return self.lost / total if total else 0.0

    def quality(self, now_s: float) -> LinkQuality:
        """The link quality of this system at monotonic time ``now_s``."""
        return LinkQuality(self.system_id, self.loss_ratio, now_s - self.last_heard_s,
                           self.latency_ms, self.latency_smoothed_ms, self.received, self.lost)


@dataclass(frozen=True, slots=True)
class LinkQuality:
    """How well one vehicle is heard: loss, silence, round-trip latency (NaN: unknown)."""

    system_id: int
    packet_loss: float  # lost / (lost + received), 0..1
    last_heard_age_s: float
    latency_ms: float  # last TIMESYNC round trip
    latency_smoothed_ms: float
    received: int
    lost: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-able (NaN → None), rounded for display."""
        def num(x: float, nd: int) -> float | None:
            return round(x, nd) if math.isfinite(x) else None

        return {"system_id": self.system_id, "packet_loss": num(self.packet_loss, 4),
                "last_heard_age_s": num(self.last_heard_age_s, 2),
                "latency_ms": num(self.latency_ms, 1),
                "latency_smoothed_ms": num(self.latency_smoothed_ms, 1),
                "received": self.received, "lost": self.lost}


class SequenceTracker:
    """Counts packets and sequence gaps per (system, component).

    MAVLink packets carry an 8-bit sequence number per sender that wraps at 256
    (https://mavlink.io/en/guide/serialization.html): a jump of k > 1 means k - 1 lost.
    """

    __slots__ = ("received", "lost", "_last")

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self._last: dict[int, int] = {}

    def add(self, component_id: int, seq: int) -> int:
        """Account one packet; return how many were lost just before it."""
        self.received += 1
        last = self._last.get(component_id)
        self._last[component_id] = seq
        if last is None:
            return 0
        gap = (seq - last - 1) % 256
        # A repeated seq (gap 255) is a duplicate or a restart, not 255 losses.
        if gap == 255:
            return 0
        self.lost += gap
        return gap


class _System:
    __slots__ = ("tracker", "last_heard_s", "address", "unsigned_dropped",
                 "bad_signature_dropped", "rejecting", "latency_ms", "latency_smoothed_ms",
                 "timesync_answers", "timesync_asked")

    def __init__(self) -> None:
        self.tracker = SequenceTracker()
        self.last_heard_s = 0.0
        self.address: tuple[str, int] | None = None
        self.unsigned_dropped = 0
        self.bad_signature_dropped = 0
        self.rejecting: str | None = None  # why packets are being dropped (logged once)
        self.latency_ms = math.nan
        self.latency_smoothed_ms = math.nan
        self.timesync_answers = 0
        self.timesync_asked = 0  # requests sent since first heard (for the quick tries)

    def add_round_trip(self, rtt_ms: float) -> None:
        self.latency_ms = rtt_ms
        s = self.latency_smoothed_ms
        self.latency_smoothed_ms = rtt_ms if math.isnan(s) else s + LATENCY_ALPHA * (rtt_ms - s)
        self.timesync_answers += 1


_CLOSED: Final = object()


class Subscription:
    """A bounded queue of decoded messages for one system id (or all) and some types."""

    def __init__(self, link: MavLink, system_id: int | None, types: frozenset[str] | None,
                 maxsize: int) -> None:
        self.system_id = system_id
        self.types = types
        self.dropped = 0
        self._link = link
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self._closed = False

    def wants(self, system_id: int, msg_type: str) -> bool:
        return ((self.system_id is None or self.system_id == system_id)
                and (self.types is None or msg_type in self.types))

    def offer(self, item: Any) -> None:
        """Enqueue without blocking; a full queue loses its oldest entry."""
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    async def get(self) -> Any:
        """Next message (a pymavlink message); raises LinkError once the link is closed."""
        if self._closed and self._queue.empty():
            raise LinkError("subscription closed")
        item = await self._queue.get()
        if item is _CLOSED:
            self._closed = True
            raise LinkError("link closed")
        return item

    def get_nowait(self) -> Any | None:
        """Next queued message or None."""
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if item is _CLOSED:
            self._closed = True
            raise LinkError("link closed")
        return item

    def close(self) -> None:
        """Stop receiving (idempotent)."""
        self._link._unsubscribe(self)
        if not self._closed:
            self._closed = True
            self.offer(_CLOSED)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.get()
            except LinkError:
                return


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, link: MavLink) -> None:
        self._link = link

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._link.feed(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is not there (yet); count it.
        self._link.send_errors += 1
        log.debug("%s: UDP error %s", self._link.url, exc)


class _Stream(asyncio.Protocol):
    def __init__(self, link: MavLink) -> None:
        self._link = link
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._link.feed(data, None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._link.closed:
            self._link.disconnects += 1
        if not self.lost.done():
            self.lost.set_result(exc)


class MavLink:
    """One MAVLink connection; create with :func:`open_link`."""

    def __init__(self, url: str, endpoint: Endpoint, *, source_system: int,
                 source_component: int) -> None:
        self.url = url
        self.endpoint = endpoint
        self.source_system = source_system
        self.source_component = source_component
        self.received_packets = 0
        self.bad_bytes = 0
        self.bad_packets = 0
        self.send_errors = 0
        self.sent_packets = 0
        self.disconnects = 0  # stream connections (TCP, serial) that dropped
        self.timesync_period_s = TIMESYNC_PERIOD_S  # 0 turns latency measurement off
        self.timesync_sent = 0
        self._timesync_out: dict[int, float] = {}  # ts1 (ns) -> monotonic send time (s)
        self._timesync_last_s = -math.inf
        # Encoder: MAVLink 2 (v20 dialect), our own sequence counter.
        self.mav = mav.MAVLink(None, srcSystem=source_system, srcComponent=source_component)
        self._systems: dict[int, _System] = {}
        self._subs: list[Subscription] = []
        # subscriptions by the system id they want (None: every system), so a packet is
        # offered only to its own readers: with many vehicles on one port, offering every
        # packet to every subscription dominated the receive path
        self._subs_by_system: dict[int | None, tuple[Subscription, ...]] = {}
        self._parsers: dict[tuple[str, int] | None, mav.MAVLink] = {}
        self._signers: dict[int, Signer] = {}
        self._verifiers: dict[int, Verifier] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Transport | None = None
        self._tcp_protocol: _Stream | None = None
        self._closed = False

    # ---- opening / closing ---------------------------------------------------------------

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            if ep.scheme == "udpin":
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self), local_addr=(ep.host, ep.port))
                self._udp = transport
            elif ep.scheme == "udpout":
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self), remote_addr=(ep.host, ep.port))
                self._udp = transport
            else:
                await self._connect_tcp()
        except OSError as err:
            raise LinkError(f"{self.url}: cannot open: {err}") from err

    async def _connect_tcp(self) -> None:
        if self.endpoint.scheme == "serial":
            self._tcp = open_serial(self, self.endpoint.host, self.endpoint.port)  # type: ignore[assignment]
            self._parsers.pop(None, None)
            return
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5.0):
            transport, protocol = await loop.create_connection(
                lambda: _Stream(self), self.endpoint.host, self.endpoint.port)
        self._parsers.pop(None, None)
        self._tcp, self._tcp_protocol = transport, protocol
        log.info("%s: connected", self.url)

    async def close(self) -> None:
        """Close the socket and end every subscription."""
        if self._closed:
            return
        self._closed = True
        for transport in (self._udp, self._tcp):
            if transport is not None:
                transport.close()
        self._subs_by_system = {}
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local_port(self) -> int:
        """The bound local port (useful with ``udpin:127.0.0.1:0``)."""
        transport = self._udp or self._tcp
        if transport is None:
            raise LinkError(f"{self.url}: not open")
        return int(transport.get_extra_info("sockname")[1])

    # ---- background work -----------------------------------------------------------------

    async def run(self) -> None:
        """Send the GCS heartbeat at 1 Hz and keep TCP connected; runs until cancelled."""
        backoff_s = RECONNECT_FIRST_S
        while not self._closed:
            if (self.endpoint.scheme in _STREAM_SCHEMES
                    and (self._tcp is None or self._tcp.is_closing())):
                try:
                    await self._connect_tcp()
                    backoff_s = RECONNECT_FIRST_S
                except (OSError, TimeoutError) as err:
                    log.warning("%s: reconnect failed (%s); next try in %.1f s",
                                self.url, err, backoff_s)
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)
                    continue
            self.send_heartbeat()
            self._maybe_timesync(time.monotonic())
            await asyncio.sleep(HEARTBEAT_PERIOD_S)

    def send_heartbeat(self) -> None:
        """One GCS HEARTBEAT (MAV_TYPE_GCS, MAV_AUTOPILOT_INVALID) to every known peer."""
        self.send(self.mav.heartbeat_encode(
            mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE))

    def _maybe_timesync(self, now_s: float) -> None:
        if self.timesync_period_s <= 0:
            return
        heard = [s for s in self._systems.values() if s.tracker.received]
        if not heard and self.endpoint.scheme == "udpin":
            return  # nobody to ask yet
        waiting = any(s.timesync_answers == 0 and s.timesync_asked < TIMESYNC_QUICK_TRIES
                      for s in heard)
        if waiting or now_s - self._timesync_last_s >= self.timesync_period_s:
            self.send_timesync()
            self._timesync_last_s = now_s

    def send_timesync(self) -> int:
        """One TIMESYNC request to every peer; returns its ``ts1`` (our monotonic ns)."""
        now_ns = time.monotonic_ns()
        last = max(self._timesync_out, default=0)
        ts1 = max(now_ns, last + 1)  # unique and never 0
        now_s = now_ns / 1e9
        for key, sent_s in list(self._timesync_out.items()):
            if now_s - sent_s > TIMESYNC_MAX_AGE_S or len(self._timesync_out) >= TIMESYNC_KEEP:
                del self._timesync_out[key]
        self._timesync_out[ts1] = now_s
        self._timesync_last_s = now_s
        for system in self._systems.values():
            if system.tracker.received:
                system.timesync_asked += 1
        self.timesync_sent += 1
        self.send(self.mav.timesync_encode(0, ts1))
        return ts1

    def _timesync_answer(self, system: _System, msg: Any) -> None:
        """An answer to one of our requests gives this system's round trip."""
        if msg.tc1 == 0 or msg.ts1 not in self._timesync_out:
            return  # a request from the vehicle, or an answer to someone else
        rtt_ms = (time.monotonic_ns() - msg.ts1) / 1e6
        if rtt_ms >= 0:
            system.add_round_trip(rtt_ms)

    # ---- sending -------------------------------------------------------------------------

    def send(self, msg: Any, *, system_id: int | None = None) -> None:
        """Encode ``msg`` (a pymavlink message) as MAVLink 2 and send it.

        ``system_id`` picks the UDP peer on a ``udpin`` link; None sends to every peer.
        """
        if self._closed:
            raise LinkError(f"{self.url}: link closed")
        try:
            if self._tcp is not None:
                if self._tcp.is_closing():
                    self.send_errors += 1
                    return
                for signer in self._signers_for(system_id, None):
                    self._tcp.write(self._pack(msg, signer))
            elif self._udp is not None:
                if self.endpoint.scheme == "udpout":
                    for signer in self._signers_for(system_id, None):
                        self._udp.sendto(self._pack(msg, signer))
                else:
                    for addr in self._peers(system_id):
                        for signer in self._signers_for(system_id, addr):
                            self._udp.sendto(self._pack(msg, signer), addr)
            self.sent_packets += 1
        except OSError as err:
            self.send_errors += 1
            log.debug("%s: send failed: %s", self.url, err)

    def _pack(self, msg: Any, signer: Signer | None) -> bytes:
        buf = signer.pack(msg, self.mav) if signer is not None else msg.pack(self.mav)
        self.mav.seq = (self.mav.seq + 1) % 256
        return buf

    def _signers_for(self, system_id: int | None,
                     addr: tuple[str, int] | None) -> list[Signer | None]:
        """How to sign one send: a packet for one system uses its key (or none); a
        broadcast (heartbeat) goes once per key of the systems behind ``addr`` (a
        ``udpin`` peer) or behind the link (``udpout``/``tcp``), and once unsigned for
        systems without a key."""
        if not self._signers:
            return [None]
        if system_id:
            return [self._signers.get(system_id)]
        behind = [sid for sid, s in self._systems.items()
                  if s.tracker.received and (addr is None or s.address == addr)]
        out: dict[int, Signer | None] = {}
        if addr is None:
            for signer in self._signers.values():
                out[id(signer)] = signer
        for sid in behind:
            signer = self._signers.get(sid)
            out[id(signer)] = signer
        if not behind:
            out[id(None)] = None
        return list(out.values())

    def set_signing_key(self, system_id: int, key: str | bytes | None, *,
                        link_id: int = 0) -> None:
        """Sign for and verify ``system_id`` with ``key`` (hex/base64/32 bytes); None: off.

        Systems sharing a key share one signer, so their packets form one timestamp
        stream (two signers on one key could repeat a timestamp: a replay to the receiver).
        """
        if not 1 <= system_id <= 255:
            raise ValueError(f"MAVLink system id must be 1..255, got {system_id}")
        if key is None:
            self._signers.pop(system_id, None)
            self._verifiers.pop(system_id, None)
            return
        raw = parse_key(key)
        signer = next((s for s in self._signers.values() if s.key == raw), None)
        self._signers[system_id] = signer or Signer(raw, link_id=link_id)
        self._verifiers[system_id] = Verifier(raw)

    def _peers(self, system_id: int | None) -> list[tuple[str, int]]:
        if system_id:
            system = self._systems.get(system_id)
            if system is not None and system.address is not None:
                return [system.address]
        return list({s.address for s in self._systems.values() if s.address is not None})

    # ---- receiving -----------------------------------------------------------------------

    def subscribe(self, system_id: int | None = None, *, types: Iterable[str] | None = None,
                  maxsize: int = 256) -> Subscription:
        """A bounded queue of messages from ``system_id`` (None: all) of ``types`` (None: all)."""
        sub = Subscription(self, system_id, frozenset(types) if types is not None else None,
                           maxsize)
        if self._closed:
            sub.close()
        else:
            self._subs.append(sub)
            self._index_subs()
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            return
        self._index_subs()

    def _index_subs(self) -> None:
        index: dict[int | None, list[Subscription]] = {}
        for sub in self._subs:
            index.setdefault(sub.system_id, []).append(sub)
        self._subs_by_system = {key: tuple(subs) for key, subs in index.items()}

    def _parser(self, addr: tuple[str, int] | None) -> mav.MAVLink:
        parser = self._parsers.get(addr)
        if parser is None:
            if len(self._parsers) >= MAX_UDP_PEERS:
                self._parsers.pop(next(iter(self._parsers)))
            parser = mav.MAVLink(None)
            parser.robust_parsing = True  # bad bytes come back as BAD_DATA, not exceptions
            self._parsers[addr] = parser
        return parser

    def feed(self, data: bytes, addr: tuple[str, int] | None) -> None:
        """Decode a received chunk (``addr``: UDP peer, None for TCP); never raises: bad
        bytes are counted (``bad_bytes``, ``bad_packets``) and logged."""
        parser = self._parser(addr)
        try:
            msgs = parser.parse_buffer(data) or []
        except Exception as err:  # the codec must not take the reader down
            self.bad_bytes += parser.buf_len()
            self.bad_packets += 1
            self._parsers.pop(addr, None)
            log.warning("%s: decoder error from %s: %s (parser reset)", self.url, addr, err)
            return
        for msg in msgs:
            if msg.get_type() == "BAD_DATA":
                self.bad_bytes += len(msg.data)
                self.bad_packets += 1
                log.debug("%s: bad data from %s: %s", self.url, addr, msg.reason)
                continue
            self._accept(msg, addr)
        if addr is not None and parser.buf_len():
            # A datagram holds whole packets; a tail that did not parse is garbage.
            self.bad_bytes += parser.buf_len()
            self.bad_packets += 1
            self._parsers.pop(addr, None)

    def _accept(self, msg: Any, addr: tuple[str, int] | None) -> None:
        self.received_packets += 1
        system_id = msg.get_srcSystem()
        system = self._systems.get(system_id)
        if system is None:
            system = self._systems[system_id] = _System()
        verifier = self._verifiers.get(system_id)
        if verifier is not None and not self._verified(verifier, system, msg, addr):
            return
        system.tracker.add(msg.get_srcComponent(), msg.get_seq())
        system.last_heard_s = time.monotonic()
        if addr is not None:
            system.address = addr
        msg_type = msg.get_type()
        if msg_type == "TIMESYNC":
            self._timesync_answer(system, msg)
        by_system = self._subs_by_system
        for subs in (by_system.get(system_id, ()), by_system.get(None, ())):
            for sub in subs:
                if sub.wants(system_id, msg_type):
                    sub.offer(msg)

    def _verified(self, verifier: Verifier, system: _System, msg: Any,
                  addr: tuple[str, int] | None) -> bool:
        """Check a packet from a system with a key; count and log (once per change) drops."""
        verdict = verifier.check(msg.get_msgbuf())
        if verdict.ok:
            if system.rejecting is not None:
                log.info("%s: system %d: signed packets accepted again", self.url,
                         msg.get_srcSystem())
                system.rejecting = None
            return True
        if verdict.unsigned:
            system.unsigned_dropped += 1
        else:
            system.bad_signature_dropped += 1
        if system.rejecting != verdict.reason:
            log.warning("%s: system %d: dropping packets (%s, e.g. %s from %s)", self.url,
                        msg.get_srcSystem(), verdict.reason, msg.get_type(), addr)
            system.rejecting = verdict.reason
        return False

    def stats(self, system_id: int) -> SystemStats | None:
        """Packets, losses and last-heard time for a system id, or None if never heard."""
        system = self._systems.get(system_id)
        if system is None:
            return None
        return SystemStats(system_id, system.tracker.received, system.tracker.lost,
                           system.last_heard_s, system.address, system.unsigned_dropped,
                           system.bad_signature_dropped, system.latency_ms,
                           system.latency_smoothed_ms, system.timesync_answers)

    def systems(self) -> list[int]:
        """System ids heard on this link (packets dropped for their signature do not count)."""
        return sorted(sid for sid, s in self._systems.items() if s.tracker.received)


async def open_link(url: str, *, source_system: int = 255, source_component: int = 190,
                    connect: bool = True) -> MavLink:
    """Open a MAVLink 2 link; ``await link.run()`` for heartbeats, ``await link.close()``.

    Defaults: system 255 and MAV_COMP_ID_MISSIONPLANNER (190), as ground stations use.
    A ``tcp:`` or ``serial:`` link with ``connect=False`` connects (and re-connects) inside ``run()``
    instead of failing here when the vehicle is not up yet.
    """
    link = MavLink(url, parse_url(url), source_system=source_system,
                   source_component=source_component)
    if connect or link.endpoint.scheme not in _STREAM_SCHEMES:
        await link._open()
    return link
