"""The live feed's frames, pure: who sees what, coalescing of updates, and the ring of ticks.

The WebSocket hub (``command.api.live``) collects the bus's events into *ticks* of 100 ms and
sends each client one *frame* per tick: ``{"type": "frame", "events": [<event wire dict>, ...]}``.
Everything that decides what a frame holds lives here, with no asyncio, socket or clock:

- **Audiences.** What a client sees depends only on its principal's roles, department and crew
  (``command.auth.event_view``), so clients with the same ones form one *audience*; the
  operator (the service's API token) is its own audience and sees everything unfiltered. A
  tick is filtered and serialized once per audience, not once per client.
- **Coalescing.** State changes (persistent events, with an audit ``seq``) are never merged and
  keep their order. Transient updates (``command.events.TRANSIENT_KINDS``) are merged per
  object: a frame carries only the latest update of each vehicle (``vehicle.telemetry`` by
  ``name``), each aircraft a vehicle hears (``vehicle.adsb`` by ``name`` and ``icao_address``)
  and each sensor quantity (``sensor.reading`` by ``sensor_id`` and ``quantity``), at the place
  of that latest update. An update without those keys is never merged (nothing is dropped
  that cannot be told apart).
- **The ring.** The last ``RING_TICKS`` ticks are kept. A client that keeps up sends the
  tick's shared, pre-serialized frame; a client some ticks behind (its socket was slow) gets
  those ticks merged into one frame built for it; a client behind more than the ring gets a
  ``bus.overflow`` event instead (it refetches its snapshots) and goes on from the newest tick.

Memory is bounded by the ring: at most ``RING_TICKS`` ticks, each with at most one transient
per object and at most ``MAX_TICK_PERSISTENT`` state changes (beyond that the tick is marked
overflowed and every client is told ``bus.overflow``), whatever the number of clients or how
slow they are.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import auth
from .events import TRANSIENT_KINDS, Event

__all__ = [
    "MAX_TICK_PERSISTENT",
    "OPERATOR",
    "OVERFLOW_KIND",
    "RING_TICKS",
    "TICK_S",
    "Audience",
    "CatchUp",
    "Entry",
    "HelloError",
    "Ring",
    "Tick",
    "admission",
    "audience_of",
    "close_reason",
    "coalesce_key",
    "entry_for",
    "frame_text",
    "merge",
    "overflow_entry",
    "parse_hello",
    "welcome",
]

TICK_S = 0.1  # one frame per client at most this often (FACTS.md: "coalesce ... every 100 ms")
RING_TICKS = 50  # 5 s of ticks: a client further behind is told bus.overflow
MAX_TICK_PERSISTENT = 5000  # state changes in one tick beyond this: the tick is marked overflowed
OVERFLOW_KIND = "bus.overflow"  # the stream's own marker (command.auth shows it to everyone)
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 for the code

# An audience: ("operator",) or ("user", roles..., "dept=" + department, "crew=" + crew).
Audience = tuple[str, ...]
OPERATOR: Audience = ("operator",)


# --- the hello -----------------------------------------------------------------------------------


class HelloError(ValueError):
    """A client's hello that cannot be used; the message says why (it becomes the close reason)."""


def parse_hello(text: str | bytes | None) -> str | None:
    """The token of a hello message ``{"type": "hello", "token": <string or null>}``, or ``HelloError``."""
    if not isinstance(text, str):
        raise HelloError("expected a text message with a JSON hello")
    try:
        msg = json.loads(text)
    except ValueError:
        raise HelloError("the hello is not JSON") from None
    if not isinstance(msg, dict) or msg.get("type") != "hello":
        raise HelloError('expected {"type": "hello", "token": ...}')
    if "token" not in msg:
        raise HelloError("the hello has no token (null for none)")
    token = msg["token"]
    if token is not None and not isinstance(token, str):
        raise HelloError("the hello's token must be a string or null")
    return token


def admission(principal: auth.Principal | None) -> str | None:
    """Why ``principal`` may not subscribe (a 4403 close reason), or None; None principal: the operator."""
    if principal is None or auth.allowed(principal, "events.read"):
        return None
    return f"{principal.user_id} may not read events"


def welcome(principal: auth.Principal | None) -> str:
    """The welcome message for ``principal`` (None: the operator, who has no user and no expiry)."""
    if principal is None:
        body: dict[str, Any] = {"type": "welcome", "user": None, "roles": [], "operator": True, "expires_at": None}
    else:
        body = {"type": "welcome", "user": None if principal is auth.ANONYMOUS else principal.user_id,
                "roles": [r for r in auth.ROLES if r in principal.roles], "operator": False,
                "expires_at": principal.expires_at.isoformat() if principal.expires_at else None}
    return json.dumps(body, separators=(",", ":"))


def close_reason(text: str) -> str:
    """``text`` cut to fit a WebSocket close frame (123 bytes of UTF-8, on a character boundary)."""
    raw = text.encode()
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return text
    return raw[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


# --- audiences and entries ------------------------------------------------------------------------


def audience_of(principal: auth.Principal | None) -> Audience:
    """The audience of ``principal``: everyone with the same roles and scopes sees the same events."""
    if principal is None:
        return OPERATOR
    return ("user", *(r for r in auth.ROLES if r in principal.roles),
            f"dept={principal.department or ''}", f"crew={principal.crew or ''}")


def coalesce_key(kind: str, data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The object a transient update is about (later updates replace it), or None: never merged.

    The keys are what the service publishes: ``vehicle.telemetry`` is ``Service.vehicle_view``
    (``name``), ``vehicle.adsb`` is ``{"name": vehicle, **uav.adsb.AdsbReport.to_dict()}``
    (``icao_address``), ``sensor.reading`` is ``command.sensing.reading_wire`` (``sensor_id``,
    ``quantity``).
    """
    if kind not in TRANSIENT_KINDS:
        return None
    if kind == "vehicle.telemetry":
        parts = (data.get("name"),)
    elif kind == "vehicle.adsb":
        parts = (data.get("name"), data.get("icao_address"))
    elif kind == "sensor.reading":
        parts = (data.get("sensor_id"), data.get("quantity"))
    else:  # a transient kind added later without a key here: never merged
        return None
    if any(p is None or isinstance(p, (dict, list)) for p in parts):
        return None
    return (kind, *(str(p) for p in parts))


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as one audience sees it: its coalescing key (None: a state change) and its JSON."""

    key: tuple[str, ...] | None
    payload: str


def _dumps(wire: Mapping[str, Any]) -> str:
    # The same encoding as Starlette's send_json (compact, UTF-8 text left as is).
    return json.dumps(wire, separators=(",", ":"), ensure_ascii=False)


def entry_for(principal: auth.Principal | None, event: Event) -> Entry | None:
    """``event`` as ``principal`` may see it (``auth.event_view``), serialized; None: not shown."""
    if principal is None:
        data: Mapping[str, Any] | None = event.data
    else:
        data = auth.event_view(principal, event.kind, event.data)
        if data is None:
            return None
    wire = {"seq": event.seq, "kind": event.kind, "time": event.time.isoformat(), "data": data}
    return Entry(coalesce_key(event.kind, event.data), _dumps(wire))


def merge(entries: Iterable[Entry]) -> list[Entry]:
    """Coalesce ``entries`` (in publication order): every state change kept, in order; of each object's
    transient updates only the latest, at the place of that latest one.

    ``merge([t1(a), s1, t2(a), t3(b)])`` → ``[s1, t2(a), t3(b)]``.
    """
    out: list[Entry | None] = []
    where: dict[tuple[str, ...], int] = {}
    for entry in entries:
        if entry.key is not None:
            before = where.get(entry.key)
            if before is not None:
                out[before] = None
            where[entry.key] = len(out)
        out.append(entry)
    return [e for e in out if e is not None]


def frame_text(entries: Sequence[Entry]) -> str:
    """The frame message of ``entries``, built from their pre-serialized JSON (no re-encoding)."""
    return '{"type":"frame","events":[' + ",".join(e.payload for e in entries) + "]}"


def overflow_entry(now: datetime, **data: Any) -> Entry:
    """The ``bus.overflow`` marker: this client missed events (``data`` says how) and must refetch."""
    return Entry(None, _dumps({"seq": 0, "kind": OVERFLOW_KIND, "time": now.isoformat(),
                               "data": {**data, "reason": "events were missed: refetch the snapshots"}}))


# --- ticks and the ring ----------------------------------------------------------------------------


@dataclass(slots=True)
class Tick:
    """The events of one tick (transients already coalesced per object) and, per audience, how it sees them."""

    number: int
    time: datetime
    events: tuple[Event, ...]
    overflowed: int = 0  # state changes dropped from this tick (MAX_TICK_PERSISTENT); 0 normally
    _views: dict[Audience, tuple[list[Entry], str | None]] = field(default_factory=dict)

    def view(self, audience: Audience, principal: auth.Principal | None) -> tuple[list[Entry], str | None]:
        """This tick's entries for ``audience`` and its frame text (None when empty); computed once."""
        cached = self._views.get(audience)
        if cached is None:
            entries = [e for ev in self.events if (e := entry_for(principal, ev)) is not None]
            if self.overflowed:
                entries.insert(0, overflow_entry(self.time, dropped=self.overflowed))
            cached = (entries, frame_text(entries) if entries else None)
            self._views[audience] = cached
        return cached


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What to send a client: a frame (None: nothing new), the tick it waits for next, whether it overflowed."""

    frame: str | None
    cursor: int
    overflowed: bool = False
    merged_ticks: int = 0  # how many non-empty ticks went into the frame (1: the shared frame)


class Ring:
    """The last ``size`` ticks; events pending for the next one; each client's catch-up.

    Ticks are numbered 1, 2, 3...; a client's cursor is the number of the next tick it needs.
    """

    def __init__(self, *, size: int = RING_TICKS, max_persistent: int = MAX_TICK_PERSISTENT) -> None:
        if size < 1 or max_persistent < 1:
            raise ValueError(f"a ring needs size >= 1 and max_persistent >= 1, got {size}, {max_persistent}")
        self.size = size
        self.max_persistent = max_persistent
        self.ticks: deque[Tick] = deque(maxlen=size)
        self.latest = 0  # the newest closed tick's number (0: none yet)
        self._pending: list[Event | None] = []
        self._where: dict[tuple[str, ...], int] = {}
        self._pending_persistent = 0
        self._dropped = 0

    def add(self, event: Event) -> None:
        """Take one event of the bus into the tick being collected (a transient replaces its object's last)."""
        key = coalesce_key(event.kind, event.data) if not event.persistent else None
        if key is not None:
            before = self._where.get(key)
            if before is not None:
                self._pending[before] = None
            self._where[key] = len(self._pending)
        elif event.persistent:
            if self._pending_persistent >= self.max_persistent:
                self._dropped += 1
                return
            self._pending_persistent += 1
        self._pending.append(event)

    @property
    def pending(self) -> int:
        """Events waiting for the next tick."""
        return sum(1 for e in self._pending if e is not None)

    def close_tick(self, now: datetime) -> Tick:
        """Close the tick being collected (possibly empty) as the newest of the ring."""
        self.latest += 1
        tick = Tick(self.latest, now, tuple(e for e in self._pending if e is not None), self._dropped)
        self.ticks.append(tick)
        self._pending, self._where, self._pending_persistent, self._dropped = [], {}, 0, 0
        return tick

    @property
    def oldest(self) -> int:
        """The oldest tick still held (latest + 1 when none)."""
        return self.ticks[0].number if self.ticks else self.latest + 1

    def event_count(self) -> int:
        """Events held in the ring (its memory, in events)."""
        return sum(len(t.events) for t in self.ticks)

    def catch_up(self, audience: Audience, principal: auth.Principal | None, cursor: int,
                 now: datetime) -> CatchUp:
        """The frame for a client of ``audience`` that next needs tick ``cursor``.

        Up to date: no frame. One tick new: that tick's shared frame. Several: one frame merged
        for this client. Behind the ring: a ``bus.overflow`` frame, and on from the newest tick.
        """
        if cursor > self.latest:
            return CatchUp(None, cursor)
        if cursor < self.oldest:
            behind = self.latest - cursor + 1
            return CatchUp(frame_text([overflow_entry(now, behind_ticks=behind)]), self.latest + 1, overflowed=True)
        views = [self.ticks[n - self.oldest].view(audience, principal) for n in range(cursor, self.latest + 1)]
        full = [v for v in views if v[1] is not None]
        if not full:
            return CatchUp(None, self.latest + 1)
        if len(full) == 1:
            return CatchUp(full[0][1], self.latest + 1, merged_ticks=1)
        entries = merge(e for v in full for e in v[0])
        return CatchUp(frame_text(entries), self.latest + 1, merged_ticks=len(full))
