"""The live feed: ``/ws`` streams the service's events to consoles, department views and crew phones.

Protocol (docs/live-feed.md has the full story):

1. The client connects to ``/ws`` and sends first, within ``HELLO_TIMEOUT_S`` (5 s),
   ``{"type": "hello", "token": <string or null>}``. The token goes in the message, not in the
   URL (an address lands in access logs) nor in a header (browsers cannot set one on a WebSocket):
   the service's API token (the operator, sees everything unfiltered), a sign-in token, or null
   (a viewer, where anonymous reading is allowed).
2. The server answers ``{"type": "welcome", "user": <id or null>, "roles": [...], "operator": <bool>,
   "expires_at": <ISO time or null>}``. A missing, malformed or refused hello closes the socket
   with code 4401 and a reason; a principal without ``events.read`` with 4403.
3. Then ``{"type": "frame", "events": [{"seq", "kind", "time", "data"}, ...]}`` at most every
   100 ms, only when there is something; each event already passed ``command.auth.event_view``
   for this client. State changes keep their order and are never merged; transient updates are
   merged per object (``command.live_feed``). A client too far behind gets a ``bus.overflow``
   event (refetch the snapshots) instead of an ever-growing queue.
4. Before its token runs out the client may send another hello with a fresh token (answered by a
   new welcome); when it runs out the server closes with 4401 "token expired". Any other message
   closes with 4400 and the reason.

One ``Hub`` per app takes the bus's events through a listener (``EventBus.listen``) into a ring
of 100 ms ticks (``command.live_feed.Ring``). Its tick task starts with the first client and
stops with the last. Each connection has a sender (the only writer of its socket: frames, and
welcomes for later hellos) and a receiver (hellos; reading is also how a disconnect is noticed,
so a server shutdown never waits on a silent socket).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from .. import auth
from ..events import Event, EventBus
from ..live_feed import TICK_S, HelloError, Ring, admission, audience_of, close_reason, parse_hello, welcome

__all__ = ["CLOSE_BAD_MESSAGE", "CLOSE_FORBIDDEN", "CLOSE_UNAUTHORIZED", "HELLO_TIMEOUT_S", "Hub", "add_routes"]

log = logging.getLogger("command.api.live")

HELLO_TIMEOUT_S = 5.0
# Application close codes (RFC 6455 §7.4.2: 4000-4999 are the application's), after HTTP's 401/403/400.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_MESSAGE = 4400


class _Close(Exception):
    """End a connection with ``code`` and ``reason`` (raised by its sender or receiver)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass(eq=False, slots=True)
class Client:
    """One connected client: who it is, the next tick it needs, welcomes waiting to be sent."""

    principal: auth.Principal | None
    cursor: int
    outbox: list[str] = field(default_factory=list)
    frames: int = 0
    merged_frames: int = 0  # frames built for this client from several ticks (it was behind)
    overflows: int = 0


class Hub:
    """The bus's events, in ticks, for every connected client of one app."""

    def __init__(self, bus: EventBus, service: Any) -> None:
        self.bus = bus
        self._service = service  # its ``clock`` is read each time (a test may swap it)
        self.ring = Ring()
        self.clients: set[Client] = set()
        self._task: asyncio.Task[None] | None = None
        self._ticked = asyncio.Event()
        self.frames_sent = 0
        self.merged_frames = 0
        self.overflows = 0

    def now(self) -> datetime:
        """The service's time (token expiry is judged by it, as sign-in does)."""
        return self._service.clock.now()

    @property
    def running(self) -> bool:
        """Whether the tick task runs (only while clients are connected)."""
        return self._task is not None and not self._task.done()

    def join(self, principal: auth.Principal | None) -> Client:
        """A new client, waiting for the next tick; the first one starts the ticks."""
        if not self.clients:
            self.ring = Ring()  # nothing from before: no client needs it
            self.bus.listen(self._on_event)
            self._task = asyncio.get_running_loop().create_task(self._tick_loop(), name="live-feed-ticks")
        client = Client(principal, self.ring.latest + 1)
        self.clients.add(client)
        return client

    async def leave(self, client: Client) -> None:
        """Forget ``client``; the last one stops the ticks (and waits for the tick task to end)."""
        self.clients.discard(client)
        if self.clients or self._task is None:
            return
        task, self._task = self._task, None
        self.bus.unlisten(self._on_event)
        task.cancel()
        await asyncio.wait({task})  # not `await task`: our own cancellation must still propagate

    def _on_event(self, event: Event) -> None:
        self.ring.add(event)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(max(0.0, last + TICK_S - loop.time()))  # ticks at least TICK_S apart
            last = loop.time()
            self.ring.close_tick(self.now())
            self._ticked.set()  # wakes every waiting sender at once
            self._ticked.clear()

    async def next_frame(self, client: Client) -> str | None:
        """Wait for a tick the client has not had; its frame (None when there is nothing for it)."""
        while client.cursor > self.ring.latest:
            await self._ticked.wait()
        out = self.ring.catch_up(audience_of(client.principal), client.principal, client.cursor, self.now())
        client.cursor = out.cursor
        if out.overflowed:
            client.overflows += 1
            self.overflows += 1
            log.info("a live-feed client fell behind the ring (%d ticks): sent bus.overflow", self.ring.size)
        if out.frame is not None:
            client.frames += 1
            self.frames_sent += 1
            client.merged_frames += out.merged_ticks > 1
            self.merged_frames += out.merged_ticks > 1
        return out.frame

    def stats(self) -> dict[str, Any]:
        """Figures for benchmarks and metrics: clients, frames sent, overflows, what the ring holds."""
        return {"clients": len(self.clients), "running": self.running, "frames_sent": self.frames_sent,
                "merged_frames": self.merged_frames, "overflows": self.overflows, "ring_ticks": len(self.ring.ticks),
                "ring_events": self.ring.event_count(), "latest_tick": self.ring.latest}


def _principal(authenticator: Any, token: str | None) -> auth.Principal | None:
    """Who ``token`` names and may subscribe, or ``_Close`` (4401 refused, 4403 not allowed)."""
    try:
        principal = authenticator.principal_of(token)
    except auth.AuthError as err:
        raise _Close(CLOSE_UNAUTHORIZED, f"token refused: {err}") from None
    refusal = admission(principal)
    if refusal is not None:
        raise _Close(CLOSE_FORBIDDEN, refusal)
    return principal


async def _receive_text(socket: WebSocket) -> str | bytes | None:
    """The next message's text (bytes for a binary one); ``WebSocketDisconnect`` when the client left."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    return message.get("text") if message.get("text") is not None else message.get("bytes")


async def _hello(socket: WebSocket, authenticator: Any) -> auth.Principal | None:
    try:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            text = await _receive_text(socket)
    except TimeoutError:
        raise _Close(CLOSE_UNAUTHORIZED, f"no hello within {HELLO_TIMEOUT_S:g} s") from None
    try:
        token = parse_hello(text)
    except HelloError as err:
        raise _Close(CLOSE_UNAUTHORIZED, str(err)) from None
    return _principal(authenticator, token)


def _expired(hub: Hub, principal: auth.Principal | None) -> bool:
    return principal is not None and principal.expires_at is not None and hub.now() >= principal.expires_at


async def _send(socket: WebSocket, hub: Hub, client: Client) -> None:
    """The connection's only writer: pending welcomes, then a frame per tick; closes on expiry."""
    while True:
        frame = await hub.next_frame(client)
        if _expired(hub, client.principal):
            raise _Close(CLOSE_UNAUTHORIZED, "token expired")
        while client.outbox:
            await socket.send_text(client.outbox.pop(0))
        if frame is not None:
            await socket.send_text(frame)


async def _receive(socket: WebSocket, authenticator: Any, client: Client) -> None:
    """Later hellos (a fresh token: the client's view follows it); anything else ends the connection."""
    while True:
        text = await _receive_text(socket)
        try:
            token = parse_hello(text)
        except HelloError as err:
            raise _Close(CLOSE_BAD_MESSAGE, str(err)) from None
        client.principal = _principal(authenticator, token)
        client.outbox.append(welcome(client.principal))


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    try:
        await socket.close(code, close_reason(reason))
    except (RuntimeError, WebSocketDisconnect, OSError):
        pass  # the client left first


def add_routes(app: FastAPI, service: Any) -> Hub:
    """Register ``/ws``; the hub it uses (also at ``app.state.live_hub``)."""
    hub = Hub(service.bus, service)
    app.state.live_hub = hub

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        authenticator = socket.app.state.authenticator
        try:
            principal = await _hello(socket, authenticator)
        except _Close as err:
            await _close(socket, err.code, err.reason)
            return
        except WebSocketDisconnect:
            return
        client = hub.join(principal)
        try:
            await socket.send_text(welcome(principal))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_send(socket, hub, client))
                tg.create_task(_receive(socket, authenticator, client))
        except* _Close as group:
            first = next(e for e in group.exceptions if isinstance(e, _Close))
            await _close(socket, first.code, first.reason)
        except* (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client left (or its socket broke while we wrote)
        finally:
            await hub.leave(client)

    return hub
