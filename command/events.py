"""The runtime's event bus: every state change is one typed event.

The store appends persistent kinds to the audit log (which assigns the sequence number);
every subscriber (WebSocket clients, the MQTT bridge) gets its own bounded queue. A
subscriber that falls behind loses its oldest events and is told so by a ``bus.overflow``
marker, rather than slowing the service down.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .clock import Clock

log = logging.getLogger("command.events")

# High-rate kinds go to their own tables (readings, tracks) or only to live clients;
# everything else is a state change and goes to the append-only audit log.
TRANSIENT_KINDS = frozenset({"sensor.reading", "vehicle.telemetry", "vehicle.adsb"})



@dataclass(slots=True)
class EventNotes:
    """The state-change events published in one context (an HTTP request being audited), as
    ``{"seq", "kind"}``, until closed. Tasks the request starts inherit the context: closing stops
    them from adding to a record already written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    open: bool = True


published_events: contextvars.ContextVar[EventNotes | None] = contextvars.ContextVar("published_events",
                                                                                     default=None)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    time: datetime
    data: dict[str, Any]
    persistent: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "time": self.time.isoformat(), "data": self.data}


@dataclass(slots=True)
class Subscription:
    queue: asyncio.Queue[Event]
    dropped: int = 0
    kinds: frozenset[str] | None = None


@dataclass(slots=True)
class EventBus:
    clock: Clock
    append: Callable[[datetime, str, dict[str, Any]], int] | None = None
    _subs: list[Subscription] = field(default_factory=list)
    _listeners: list[Callable[[Event], None]] = field(default_factory=list)

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        now = self.clock.now()
        persistent = kind not in TRANSIENT_KINDS
        if persistent and self.append is not None:
            seq = self.append(now, kind, data)
        else:
            seq = 0  # not in the audit log; live clients order by delivery
        event = Event(seq=seq, kind=kind, time=now, data=data, persistent=persistent)
        if persistent and (noted := published_events.get()) is not None and noted.open:
            noted.events.append({"seq": seq, "kind": kind})
        for sub in self._subs:
            if sub.kinds is not None and kind not in sub.kinds:
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not fail the publisher's state change
                log.exception("event listener %r failed on %s", listener, kind)
        return event

    def subscribe(self, *, maxsize: int = 1000, kinds: frozenset[str] | None = None) -> Subscription:
        sub = Subscription(asyncio.Queue(maxsize), kinds=kinds)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            if sub.dropped:
                log.info("subscriber dropped %d events while behind", sub.dropped)

    def listen(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event, synchronously inside ``publish`` (it must be quick and not
        raise: e.g. append to a list). For a consumer that batches events itself (the WebSocket hub)."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs) + len(self._listeners)
