"""Cursor-on-Target for TAK clients: incidents and vehicles as CoT events to a TAK server.

A fire brigade with ATAK sees what the dispatchers see: the drones and boats moving, each open
incident as a marker in its warning colour, and the hazard area a model drew for it. Started by
the service (its TaskGroup) only when the setting ``tak_url`` is set:

- ``udp://host:port``: one datagram per event, e.g. to ATAK's or a TAK server's CoT input
  (4242/udp by convention), or to a multicast group;
- ``tcp://host:port``: one persistent connection carrying a stream of events, e.g. a TAK
  server's plain CoT input (8087/tcp by convention); reconnected with backoff (1 s doubling to
  30 s) when it drops, and what the server sends back (other users' events) is read and dropped.

What is sent (``command.linkage.cot`` builds the XML):

- ``vehicle.telemetry``: the vehicle's position event, at most one per vehicle per second
  (``VEHICLE_PERIOD_S``; the rest are counted as throttled);
- ``incident.*`` events that carry the incident's view: its marker and hazard area
  (``command.linkage_service.incident_hazard``); a closed incident (resolved, closed, false
  alarm, merged) is deleted from the clients with ``t-x-d-d``, marker and area. Patrols are
  routine flights, not hazards: their vehicles show, not a marker;
- on start and on every (re)connection, every open incident; and every ``refresh_s`` (half their
  10 min stale time) the open incidents again, read fresh from the store, so a quiet incident
  never goes stale on a client and a client that joins late sees them all.

Field crews do not exist yet. When they do, a crew's position event (``crew.position`` or the
like) becomes ``cot.position_event`` with a ground-unit type through one more entry in
``TakFeed.handle`` (see the note there); nothing else changes.

The service is never blocked: the bus subscription is bounded (the bus drops its oldest events
when it is behind), and so is the outbox between the events and the network (``OUTBOX_SIZE``):
when it is full, the oldest queued vehicle update is dropped (counted in ``TakStats.dropped``;
the next one supersedes it anyway), and an incident event is dropped only when no vehicle
update is left to drop. Every network await has a deadline.

Times: CoT times are the wall clock's (``SystemClock``), not the service clock's: a TAK client
compares ``stale`` with its own clock, and a simulation's scaled clock would make every event
look stale or from the future.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from .clock import Clock, SystemClock
from .linkage import cot
from .linkage_service import incident_hazard

__all__ = ["INCIDENT_KINDS", "Outbox", "Outgoing", "TakFeed", "TakStats", "TakTarget", "parse_tak_url", "run_tak"]

log = logging.getLogger("command.tak")

VEHICLE_PERIOD_S = 1.0  # at most one position event per vehicle this often
OUTBOX_SIZE = 1000
SUBSCRIPTION_SIZE = 1000
REFRESH_S = cot.INCIDENT_STALE.total_seconds() / 2  # open incidents re-sent well before they go stale
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0
CONNECT_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
READ_CHUNK = 65_536
# Incident events whose data is the incident's view (id, kind, level, status, position, titles).
VIEW_KINDS = frozenset({"incident.opened", "incident.updated", "incident.verified", "incident.acknowledged",
                        "incident.resolved", "incident.closed", "incident.false_alarm", "incident.reopened",
                        "incident.response_declared"})
INCIDENT_KINDS = VIEW_KINDS | {"incident.merged"}
# Crew events whose data is the crew's view (command.crews): each re-draws the crew.
CREW_KINDS = frozenset({"crew.position", "crew.status", "crew.sos", "crew.sos_acknowledged", "crew.hazard_entered",
                        "crew.hazard_left", "crew.checkin_missed", "crew.checked_in"})
KINDS = INCIDENT_KINDS | CREW_KINDS | {"vehicle.telemetry"}
NOT_SHOWN = frozenset({"patrol"})  # incident kinds that are not hazards


# --- where to ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TakTarget:
    """Where the events go: ``udp`` datagrams or a ``tcp`` stream to host:port."""

    scheme: Literal["udp", "tcp"]
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_tak_url(url: str | None) -> TakTarget:
    """``udp://host:port`` or ``tcp://host:port``; anything else is a ValueError naming the problem.

    >>> parse_tak_url("udp://239.2.3.1:6969")
    TakTarget(scheme='udp', host='239.2.3.1', port=6969)
    """
    if not url or not url.strip():
        raise ValueError("tak_url is not set: give udp://host:port or tcp://host:port")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:  # a port that is not a number or out of range
        raise ValueError(f"tak_url {url!r}: {err}; give udp://host:port or tcp://host:port") from None
    if parts.scheme not in ("udp", "tcp"):
        hint = " (TLS to a TAK server's 8089 needs client certificates: not supported)" \
            if parts.scheme in ("ssl", "tls") else ""
        raise ValueError(f"tak_url {url!r}: scheme {parts.scheme or '(none)'!r} is not supported{hint}; "
                         "give udp://host:port or tcp://host:port")
    if not parts.hostname:
        raise ValueError(f"tak_url {url!r} has no host; give {parts.scheme}://host:port")
    if port is None or port == 0:
        raise ValueError(f"tak_url {url!r} has no port; give {parts.scheme}://{parts.hostname}:port "
                         "(TAK's conventions: 4242/udp, 8087/tcp)")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"tak_url {url!r}: only {parts.scheme}://host:port is understood (no user, path, query "
                         "or fragment)")
    return TakTarget(parts.scheme, parts.hostname, port)  # type: ignore[arg-type]


# --- the outbox -----------------------------------------------------------------------------------


@dataclass(slots=True)
class TakStats:
    """What the CoT output did since it started."""

    sent: int = 0  # events handed to the network
    throttled: int = 0  # vehicle updates skipped: another one of the same vehicle less than a second before
    dropped: int = 0  # vehicle updates dropped from the full outbox
    dropped_incidents: int = 0  # incident events dropped from an outbox full of them
    errors: int = 0  # events that could not be converted (logged)
    failures: int = 0  # failed connection attempts, lost connections, datagram errors
    connects: int = 0  # connections (TCP) or endpoints (UDP) opened
    connected: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded event; ``vehicle`` marks the droppable ones."""

    uid: str
    data: bytes
    vehicle: bool = False


class Outbox:
    """A bounded queue of encoded events: when full, the oldest vehicle update makes room."""

    def __init__(self, capacity: int = OUTBOX_SIZE, *, stats: TakStats | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"an outbox holds at least one event, not {capacity}")
        self.capacity = capacity
        self.stats = stats if stats is not None else TakStats()
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self._full = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        """Queue ``item``; a full outbox first drops its oldest vehicle update (or, lacking one, its oldest event)."""
        if len(self._items) >= self.capacity:
            victim = next((i for i, queued in enumerate(self._items) if queued.vehicle), None)
            if victim is None:
                self._items.popleft()
                self.stats.dropped_incidents += 1
            else:
                del self._items[victim]
                self.stats.dropped += 1
            if not self._full:
                log.warning("TAK outbox full (%d events): dropping the oldest vehicle updates", self.capacity)
                self._full = True
        elif self._full and len(self._items) < self.capacity // 2:
            log.info("TAK outbox drained")
            self._full = False
        self._items.append(item)
        self._ready.set()

    def put_back(self, item: Outgoing) -> None:
        """Return an event that could not be sent to the head of the queue (it goes first next time)."""
        self._items.appendleft(item)
        while len(self._items) > self.capacity:  # the newest goes: the one returned is older
            if self._items.pop().vehicle:
                self.stats.dropped += 1
            else:
                self.stats.dropped_incidents += 1
        self._ready.set()

    async def get(self) -> Outgoing:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


# --- events to CoT ---------------------------------------------------------------------------------


def _mark(view: dict[str, Any], hazard: tuple[cot.Ring, ...]) -> cot.IncidentMark:
    source = view.get("source")  # "sensor", or who reported it (the incident's human life)
    reported = source != "sensor" if source else view.get("sensor_id") is None and not view.get("sensors")
    return cot.IncidentMark(
        incident_id=int(view["id"]), kind=str(view["kind"]), level=str(view["level"]), status=str(view["status"]),
        lon=view["lon"], lat=view["lat"], title=view.get("title") or "", title_zh=view.get("title_zh") or "",
        level_zh=view.get("level_zh") or "", response=view.get("response") or "",
        response_zh=view.get("response_zh") or "", reason=view.get("reason") or "",
        reason_zh=view.get("reason_zh") or "", reported=reported,
        note="" if reported else view.get("assessment_note") or "",
        note_zh="" if reported else view.get("assessment_note_zh") or "", hazard=hazard)


def _vehicle(view: dict[str, Any]) -> cot.VehicleState:
    return cot.VehicleState(
        name=str(view["name"]), kind=str(view.get("type")), lon=view["lon"], lat=view["lat"],
        alt_amsl_m=view.get("alt_amsl_m"),
        # the nose's heading stands for the course: ArduPilot points a copter along its path in AUTO
        course_deg=view.get("heading_deg"), speed_mps=view.get("groundspeed_mps"),
        battery_pct=view.get("battery_pct"), mode=view.get("mode"), state=view.get("state"),
        incident_id=view.get("incident_id"))


class TakFeed:
    """Turns the service's events into encoded CoT events in the outbox, and remembers the open incidents."""

    def __init__(self, service: Any, outbox: Outbox, *, clock: Clock | None = None) -> None:
        self.service = service
        self.outbox = outbox
        self.stats = outbox.stats
        self.clock: Clock = clock or SystemClock()
        self.marks: dict[int, cot.IncidentMark] = {}  # open incidents shown, with their hazard rings
        self._vehicle_at: dict[str, float] = {}  # vehicle → monotonic time of its last event
        self._crew_at: dict[str, float] = {}  # crew → monotonic time of its last event

    # -- incidents
    def _hazard(self, incident_id: int) -> tuple[cot.Ring, ...]:
        try:
            row = self.service.store.incident(incident_id)
            return cot.hazard_rings(incident_hazard(row, self.service.district))
        except Exception:  # noqa: BLE001 — a broken model drawing costs the area, not the marker
            log.exception("incident %d: no hazard area for TAK", incident_id)
            return ()

    def _send_mark(self, mark: cot.IncidentMark) -> None:
        now = self.clock.now()
        for event in [cot.incident_event(mark, time=now), *cot.hazard_events(mark, time=now)]:
            self.outbox.put(Outgoing(event.get("uid", ""), cot.to_bytes(event)))

    def _delete(self, incident_id: int, kind: str | None, parts: int) -> None:
        now = self.clock.now()
        targets = [(cot.incident_uid(incident_id), cot.incident_type(kind or "other"))]
        targets += [(cot.hazard_uid(incident_id, k), cot.HAZARD_TYPE) for k in range(parts)]
        for uid, cot_type in targets:
            self.outbox.put(Outgoing(uid, cot.to_bytes(cot.delete_event(uid, target_type=cot_type, time=now))))

    def show(self, view: dict[str, Any]) -> None:
        """An incident's state: its marker and area, or their deletion once it is closed."""
        incident_id = int(view["id"])
        shown = self.marks.pop(incident_id, None)
        if view.get("kind") in NOT_SHOWN:
            return
        if view.get("status") == "closed":
            self._delete(incident_id, view.get("kind"), len(shown.hazard) if shown else 0)
            return
        mark = _mark(view, self._hazard(incident_id))
        if shown is not None and len(shown.hazard) > len(mark.hazard):  # the area shrank to fewer parts
            for k in range(len(mark.hazard), len(shown.hazard)):
                uid = cot.hazard_uid(incident_id, k)
                self.outbox.put(Outgoing(uid, cot.to_bytes(
                    cot.delete_event(uid, target_type=cot.HAZARD_TYPE, time=self.clock.now()))))
        self.marks[incident_id] = mark
        self._send_mark(mark)

    def load(self) -> None:
        """Read the open incidents from the store (at start, and at every refresh)."""
        fresh: dict[int, cot.IncidentMark] = {}
        for row in self.service.store.incidents():
            if row.status == "closed" or row.kind in NOT_SHOWN:
                continue
            try:
                fresh[row.id] = _mark(self.service.incident_view(row), self._hazard(row.id))
            except Exception:  # noqa: BLE001 — one bad incident does not hide the others
                self.stats.errors += 1
                log.exception("incident %d cannot be shown in TAK", row.id)
        for gone in set(self.marks) - set(fresh):  # closed while an event was lost
            self._delete(gone, self.marks[gone].kind, len(self.marks[gone].hazard))
        self.marks = fresh

    def snapshot(self) -> None:
        """Queue every open incident and every crew known (a new connection, a refresh)."""
        for mark in list(self.marks.values()):
            try:
                self._send_mark(mark)
            except cot.CotError:
                self.stats.errors += 1
                log.exception("incident %d cannot be shown in TAK", mark.incident_id)
        for view in self.service.crews_view():
            try:
                self.crew(view, None)
            except cot.CotError:
                self.stats.errors += 1
                log.exception("crew %s cannot be shown in TAK", view.get("id"))

    # -- crews
    def crew(self, view: dict[str, Any], now_s: float | None) -> None:
        """A crew's marker; plain position reports (``now_s`` given) at most one per VEHICLE_PERIOD_S per crew."""
        if view.get("lon") is None or view.get("lat") is None or view.get("id") is None:
            return
        crew_id = str(view["id"])
        if now_s is not None:
            if now_s - self._crew_at.get(crew_id, float("-inf")) < VEHICLE_PERIOD_S:
                self.stats.throttled += 1
                return
            self._crew_at[crew_id] = now_s
        self.outbox.put(Outgoing(cot.crew_uid(crew_id), cot.to_bytes(cot.crew_event(view, time=self.clock.now()))))

    # -- vehicles
    def vehicle(self, view: dict[str, Any], now_s: float) -> None:
        if view.get("lon") is None or view.get("lat") is None:
            return
        name = str(view["name"])
        if now_s - self._vehicle_at.get(name, float("-inf")) < VEHICLE_PERIOD_S:
            self.stats.throttled += 1
            return
        self._vehicle_at[name] = now_s
        event = cot.vehicle_event(_vehicle(view), time=self.clock.now())
        self.outbox.put(Outgoing(cot.vehicle_uid(name), cot.to_bytes(event), vehicle=True))

    # -- dispatch
    def handle(self, kind: str, data: dict[str, Any], now_s: float) -> None:
        """One bus event; a conversion failure is logged and counted, never raised (the service runs on)."""
        try:
            if kind == "vehicle.telemetry":
                self.vehicle(data, now_s)
            elif kind in VIEW_KINDS:
                self.show(data)
            elif kind == "incident.merged":  # the merged one is closed (its view follows as incident.resolved)
                gone = self.marks.pop(int(data["incident_id"]), None)
                if gone is not None:
                    self._delete(gone.incident_id, gone.kind, len(gone.hazard))
            elif kind in CREW_KINDS:  # safety news (SOS, a hazard, a missed check-in) is never held back
                self.crew(data, now_s if kind == "crew.position" else None)
        except Exception:  # noqa: BLE001 — see the docstring
            self.stats.errors += 1
            log.exception("%s event not sent to TAK", kind)


# --- the network -----------------------------------------------------------------------------------


def _why(err: BaseException) -> str:
    return str(err) or type(err).__name__


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, stats: TakStats, target: TakTarget) -> None:
        self.stats, self.target = stats, target
        self._failing = False

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from the last datagram
        self.stats.failures += 1
        if not self._failing:
            log.warning("TAK %s: %s", self.target, exc)
            self._failing = True


async def _send_udp(target: TakTarget, outbox: Outbox, on_ready: Callable[[], None]) -> None:
    stats = outbox.stats
    loop = asyncio.get_running_loop()
    backoff_s = RECONNECT_MIN_S
    while True:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):  # resolving the host name
                transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(stats, target),
                                                                   remote_addr=(target.host, target.port))
            break
        except (OSError, TimeoutError) as err:
            stats.failures += 1
            log.warning("TAK %s: %s; retrying in %.0f s", target, _why(err), backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)
    stats.connects += 1
    stats.connected = True
    log.info("sending Cursor-on-Target to %s", target)
    try:
        on_ready()
        while True:
            item = await outbox.get()
            transport.sendto(item.data)
            stats.sent += 1
    finally:
        stats.connected = False
        transport.close()


async def _read_until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) what the server sends, until it closes the connection."""
    while await reader.read(READ_CHUNK):
        pass
    raise ConnectionResetError("the TAK server closed the connection")


async def _write(writer: asyncio.StreamWriter, outbox: Outbox) -> None:
    while True:
        item = await outbox.get()
        try:
            writer.write(item.data)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except BaseException:
            outbox.put_back(item)  # sent first on the next connection (a duplicate at worst)
            raise
        outbox.stats.sent += 1


async def _send_tcp(target: TakTarget, outbox: Outbox, on_connected: Callable[[], None]) -> None:
    stats = outbox.stats
    backoff_s = RECONNECT_MIN_S
    failing = False
    while True:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(target.host, target.port)
        except (OSError, TimeoutError) as err:
            stats.failures += 1
            if not failing:  # said once per outage
                log.warning("TAK %s unreachable (%s); retrying with backoff", target, _why(err))
                failing = True
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)
            continue
        failing = False
        backoff_s = RECONNECT_MIN_S
        stats.connects += 1
        stats.connected = True
        log.info("TAK %s connected", target)
        try:
            on_connected()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_read_until_closed(reader))
                tg.create_task(_write(writer, outbox))
        except* (OSError, TimeoutError) as group:
            stats.failures += 1
            log.warning("TAK %s connection lost (%s); reconnecting in %.0f s", target, _why(group.exceptions[0]),
                        backoff_s)
        finally:
            stats.connected = False
            writer.close()
            with suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
        await asyncio.sleep(backoff_s)


# --- the task ----------------------------------------------------------------------------------------


async def _feed(sub: Any, feed: TakFeed) -> None:
    loop = asyncio.get_running_loop()
    while True:
        event = await sub.queue.get()
        feed.handle(event.kind, event.data, loop.time())


async def _refresh(feed: TakFeed, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        try:
            feed.load()
        except Exception:  # noqa: BLE001 — the store is back next time; the known incidents are re-sent now
            feed.stats.errors += 1
            log.exception("TAK refresh could not read the open incidents")
        feed.snapshot()


async def run_tak(service: Any, *, stats: TakStats | None = None, clock: Clock | None = None,
                  refresh_s: float = REFRESH_S, outbox_size: int = OUTBOX_SIZE) -> None:
    """Send the service's incidents and vehicles to ``settings.tak_url`` until cancelled (started only when set).

    A malformed ``tak_url`` is a ValueError at once, naming the problem.
    """
    target = parse_tak_url(service.settings.tak_url)
    if refresh_s <= 0:
        raise ValueError(f"refresh_s must be positive, got {refresh_s}")
    outbox = Outbox(outbox_size, stats=stats)
    feed = TakFeed(service, outbox, clock=clock)
    sub = service.bus.subscribe(maxsize=SUBSCRIPTION_SIZE, kinds=KINDS)  # before reading: no event falls between
    try:
        feed.load()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_feed(sub, feed), name="tak-feed")
            tg.create_task(_refresh(feed, refresh_s), name="tak-refresh")
            if target.scheme == "udp":
                tg.create_task(_send_udp(target, outbox, feed.snapshot), name="tak-udp")
            else:
                tg.create_task(_send_tcp(target, outbox, feed.snapshot), name="tak-tcp")
    finally:
        service.bus.unsubscribe(sub)
        if sub.dropped:
            log.info("TAK output fell behind the bus by %d events", sub.dropped)
