"""Signed webhooks: the signature scheme, and delivery to outside systems with retries.

Yingji sends department tasks and alerts to outside systems (a department's CAD system, an
SMS or phone gateway) as webhooks, and takes incidents in from a hotline/CAD system through
a signed intake webhook. One signature scheme serves both directions.

Signature scheme
----------------
Every signed request carries these headers::

    X-Yingji-Timestamp: <unix seconds, decimal integer>
    X-Yingji-Signature: sha256=<64 lowercase hex digits>
    X-Yingji-Delivery:  <delivery id, 32 hex digits; the same on every retry>
    X-Yingji-Event:     <event type, e.g. "task.sent">

where the hex is ``HMAC-SHA256(secret, f"{timestamp}.".encode() + body)`` (RFC 2104 HMAC,
FIPS 180-4 SHA-256) over the exact body bytes. Binding the timestamp into the MAC lets a
receiver refuse replays older than a tolerance (300 s by default); it is the construction of
Stripe's ``Stripe-Signature`` (``t.payload``) and Slack's request signing (``v0:t:body``),
which are the prior art for it. Each retry is signed afresh with its own timestamp.

Only the timestamp and the body are covered by the MAC: ``X-Yingji-Delivery`` and
``X-Yingji-Event`` are routing hints. A receiver that deduplicates or authorises by event
type must take the id or type from inside the (signed) body.

Secrets are ``bytes`` used as the HMAC key as they are, or ``str`` taken as UTF-8 text: the
text itself is the key, as with Stripe's ``whsec_...`` and Slack's signing secrets. A ``str``
is never hex-decoded; a key kept as hex is decoded by its owner with ``bytes.fromhex``. A
secret must be at least 16 bytes long. During a rotation a receiver accepts several secrets
at once (``verify`` takes a sequence).

Delivery
--------
:class:`WebhookSender` delivers at least once, in submission order per target: a delivery is
the same body (serialised once) with the same delivery id on every attempt, so a receiver can
drop duplicates. Per answer:

- 2xx: delivered.
- 408, 429, 5xx, a timeout or a connection error: retried after a backoff (or after the
  receiver's ``Retry-After``, capped), up to ``max_attempts`` attempts; then failed.
- any other status (3xx, 4xx): failed at once. The receiver refuses this body, or the URL
  points elsewhere (redirects are not followed): sending it again would not help, and a
  person has to look at the reason recorded in the attempt.

Nothing is dropped silently: every attempt goes to ``on_attempt``, every final state to
``on_done``, and :meth:`WebhookSender.close` hands back what is still pending so the caller
can persist it and :meth:`WebhookSender.resume` it later.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import inspect
import json
import logging
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Attempt",
    "Delivery",
    "DeliveryState",
    "EventNotSubscribed",
    "PayloadError",
    "QueueFull",
    "SenderClosed",
    "SignatureError",
    "WebhookConfigError",
    "WebhookError",
    "WebhookSender",
    "WebhookTarget",
    "backoff_delay_s",
    "encode_payload",
    "parse_retry_after",
    "secret_bytes",
    "sign",
    "signed_headers",
    "verify",
]

log = logging.getLogger("command.linkage.webhooks")

TIMESTAMP_HEADER = "X-Yingji-Timestamp"
SIGNATURE_HEADER = "X-Yingji-Signature"
DELIVERY_HEADER = "X-Yingji-Delivery"
EVENT_HEADER = "X-Yingji-Event"

_SCHEME = "sha256="
# RFC 2104 §3 discourages keys shorter than the hash output; 16 bytes (128 bits) is the floor
# we enforce so that a typo'd or placeholder secret is refused rather than used.
MIN_SECRET_BYTES = 16
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_HEX_MAC_RE = re.compile(r"[0-9a-fA-F]{64}")
_EVENT_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_ERROR_BODY_CHARS = 200  # how much of a refusing receiver's answer goes into the attempt log
_ERROR_BODY_BYTES = 4096  # read at most this much of a non-2xx answer


# ---------------------------------------------------------------------------------------------
# errors


class WebhookError(Exception):
    """Base of every error raised by ``command.linkage.webhooks``."""


class WebhookConfigError(WebhookError, ValueError):
    """A target, secret or sender setting is unusable; the message names it."""


class SignatureError(WebhookError):
    """A signed request failed verification.

    ``reason`` is one of ``missing_header``, ``malformed``, ``stale``, ``future``,
    ``bad_signature`` (for a counter or an HTTP 401 body); the message says which header and why.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class PayloadError(WebhookError):
    """A payload that cannot be sent as JSON (not a mapping, not serialisable, NaN, ...)."""


class EventNotSubscribed(WebhookError):
    """The target's event filter does not include this event type."""


class QueueFull(WebhookError):
    """A target already has as many pending deliveries as the sender keeps for one target."""


class SenderClosed(WebhookError):
    """The sender was closed; its pending deliveries were handed back by ``close()``."""


# ---------------------------------------------------------------------------------------------
# signature scheme


def secret_bytes(secret: bytes | str) -> bytes:
    """The HMAC key for ``secret``: bytes as they are, text as its UTF-8 bytes (never hex-decoded)."""
    if isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray)):
        key = bytes(secret)
    else:
        raise WebhookConfigError(f"a webhook secret must be bytes or str, not {type(secret).__name__}")
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookConfigError(f"a webhook secret must be at least {MIN_SECRET_BYTES} bytes, got {len(key)}")
    return key


def _mac_hex(key: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: bytes | str, body: bytes, timestamp: int) -> str:
    """The ``X-Yingji-Signature`` value for ``body`` sent at ``timestamp`` (unix s): ``sha256=<hex>``.

    >>> sign(b"0123456789abcdef", b"{}", 1700000000)[:15]
    'sha256=e4f8e2ec'
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise WebhookConfigError(f"timestamp must be a non-negative int of unix seconds, got {timestamp!r}")
    return _SCHEME + _mac_hex(secret_bytes(secret), bytes(body), timestamp)


def signed_headers(secret: bytes | str, body: bytes, *, timestamp: int, delivery_id: str,
                   event_type: str) -> dict[str, str]:
    """The four ``X-Yingji-*`` headers of one signed request."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event_type,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (a dict, httpx or Starlette headers)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify(secret: bytes | str | Sequence[bytes | str], body: bytes, headers: Mapping[str, str], *,
           now: float, tolerance_s: float = 300.0) -> None:
    """Check a signed request; return quietly if authentic and fresh, else raise :class:`SignatureError`.

    ``secret`` is one secret or several (all valid during a rotation); ``now`` is unix seconds.
    The MAC is checked before the timestamp, so ``stale`` and ``future`` are only reported for
    authentic requests: they point at a sender's clock or a replay, not at a forger.
    """
    if isinstance(secret, (bytes, bytearray, str)):
        keys = [secret_bytes(secret)]
    else:
        keys = [secret_bytes(s) for s in secret]
        if not keys:
            raise WebhookConfigError("verify needs at least one secret")
    if not tolerance_s > 0:
        raise WebhookConfigError(f"tolerance_s must be positive, got {tolerance_s!r}")

    raw_ts = _header(headers, TIMESTAMP_HEADER)
    raw_sig = _header(headers, SIGNATURE_HEADER)
    for name, value in ((TIMESTAMP_HEADER, raw_ts), (SIGNATURE_HEADER, raw_sig)):
        if value is None:
            raise SignatureError("missing_header", f"missing header {name}")
    assert raw_ts is not None and raw_sig is not None
    if not _TIMESTAMP_RE.fullmatch(raw_ts):
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be unix seconds as a decimal integer, "
                                          f"got {raw_ts[:40]!r}")
    if not raw_sig.startswith(_SCHEME) or not _HEX_MAC_RE.fullmatch(raw_sig[len(_SCHEME):]):
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be 'sha256=' and 64 hex digits, "
                                          f"got {raw_sig[:80]!r}")
    timestamp = int(raw_ts)
    given = raw_sig[len(_SCHEME):].lower().encode("ascii")
    # compare against every key (no early exit): which key matched is not for an attacker to time
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(_mac_hex(key, bytes(body), timestamp).encode("ascii"), given)
    if not matched:
        raise SignatureError("bad_signature", "signature does not match the body and timestamp "
                                              "(tampered body, wrong secret or a different signing scheme)")
    age_s = now - timestamp
    if age_s > tolerance_s:
        raise SignatureError("stale", f"timestamp {timestamp} is {age_s:.0f} s old, "
                                      f"more than the {tolerance_s:g} s tolerance")
    if -age_s > tolerance_s:
        raise SignatureError("future", f"timestamp {timestamp} is {-age_s:.0f} s in the future, "
                                       f"more than the {tolerance_s:g} s tolerance")


# ---------------------------------------------------------------------------------------------
# targets, backoff, payloads


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """An outside system that receives webhooks; ``events`` None means every event type.

    Backoff between attempts is exponential with full jitter (see :func:`backoff_delay_s`);
    a ``Retry-After`` from the receiver replaces it, capped at ``retry_after_cap_s``.
    """

    id: str
    url: str
    secret: bytes
    events: frozenset[str] | None = None
    timeout_s: float = 10.0
    max_attempts: int = 6
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    retry_after_cap_s: float = 600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret", secret_bytes(self.secret))
        if self.events is not None:
            object.__setattr__(self, "events", frozenset(self.events))
        if not self.id:
            raise WebhookConfigError("a webhook target needs an id")
        try:
            url = httpx.URL(self.url)
        except httpx.InvalidURL as err:
            raise WebhookConfigError(f"webhook target {self.id!r}: invalid url {self.url!r}: {err}") from err
        if url.scheme not in ("http", "https") or not url.host:
            raise WebhookConfigError(f"webhook target {self.id!r}: url must be http(s)://host/..., got {self.url!r}")
        if self.max_attempts < 1:
            raise WebhookConfigError(f"webhook target {self.id!r}: max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("timeout_s", "backoff_base_s", "backoff_cap_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise WebhookConfigError(f"webhook target {self.id!r}: {name} must be positive, got {value!r}")
        if self.backoff_cap_s < self.backoff_base_s:
            raise WebhookConfigError(f"webhook target {self.id!r}: backoff_cap_s {self.backoff_cap_s} "
                                     f"is below backoff_base_s {self.backoff_base_s}")
        if not (math.isfinite(self.retry_after_cap_s) and self.retry_after_cap_s >= 0):
            raise WebhookConfigError(f"webhook target {self.id!r}: retry_after_cap_s must be >= 0, "
                                     f"got {self.retry_after_cap_s!r}")

    def __repr__(self) -> str:  # never print the secret into a log
        return f"WebhookTarget(id={self.id!r}, url={self.url!r}, events={self.events!r})"

    def accepts(self, event_type: str) -> bool:
        """Whether this target wants events of ``event_type``."""
        return self.events is None or event_type in self.events


def backoff_delay_s(retry: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry`` (0 = the first retry): "full jitter".

    ``uniform(0, min(cap, base * 2**retry))``, from M. Brooker, "Exponential Backoff And
    Jitter", AWS Architecture Blog (2015): full jitter spreads the retries of many senders
    that failed together, so a receiver coming back up is not hit by them all at once.
    """
    if retry < 0:
        raise WebhookConfigError(f"retry must be >= 0, got {retry}")
    ceiling = cap_s if retry >= 64 else min(cap_s, base_s * 2.0**retry)
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or None if absent or unusable.

    Both forms are read: delay-seconds (``"120"``) and an HTTP-date; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The body bytes of ``payload``: JSON, sorted keys, compact, UTF-8 (not \\u-escaped)."""
    if not isinstance(payload, Mapping):
        raise PayloadError(f"a webhook payload must be a JSON object (mapping), not {type(payload).__name__}")
    try:
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PayloadError(f"payload is not JSON-serialisable: {err}") from err
    return text.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# delivery records


DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt: when (unix s), the HTTP status (None if no answer), what went wrong, how long."""

    at: float
    status: int | None
    error: str | None
    duration_ms: float


@dataclass(slots=True, eq=False)
class Delivery:
    """One webhook on its way to one target: the body, its attempts and its state.

    A small mutable record owned by the sender while pending; callbacks receive it and should
    copy what they keep. ``next_attempt_at`` (unix s) is set while pending, None once done.
    """

    id: str
    target_id: str
    event_type: str
    body: bytes
    created_at: float
    attempts: list[Attempt] = field(default_factory=list)
    state: DeliveryState = "pending"
    next_attempt_at: float | None = None
    reason: str | None = None  # why it failed, for a person

    @property
    def done(self) -> bool:
        return self.state != "pending"

    def _finish(self, state: DeliveryState, reason: str | None = None) -> None:
        if self.state != "pending":
            raise WebhookError(f"delivery {self.id} is already {self.state}; cannot become {state}")
        self.state, self.reason, self.next_attempt_at = state, reason, None


AttemptCallback = Callable[[Delivery, Attempt], "Awaitable[None] | None"]
DoneCallback = Callable[[Delivery], "Awaitable[None] | None"]


@dataclass(slots=True, eq=False)
class _Lane:
    """The deliveries of one target, sent one at a time in order."""

    target: WebhookTarget
    current: Delivery | None = None  # the one being attempted (or waiting for its retry)
    queue: deque[Delivery] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None

    def pending(self) -> list[Delivery]:
        # a current delivery can be done already if its worker was stopped inside a callback
        head = [self.current] if self.current is not None and not self.current.done else []
        return head + list(self.queue)


_Verdict = Literal["delivered", "retry", "refused"]


# ---------------------------------------------------------------------------------------------
# the sender


class WebhookSender:
    """Delivers webhooks over one shared ``httpx.AsyncClient``, in order per target.

    Either run ``await sender.run()`` as a background task (it ends when ``close()`` is called
    or when it is cancelled), or call ``await sender.drain()`` to deliver everything queued and
    return. Targets work independently: one slow or failing target does not hold up another.
    Time comes from ``clock`` (unix s) and waiting from ``sleep``, so a test can step time.
    Callbacks may be plain functions or coroutines; an exception in one is logged and the
    delivery goes on.
    """

    def __init__(self, *, client: httpx.AsyncClient | None = None,
                 on_attempt: AttemptCallback | None = None, on_done: DoneCallback | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 monotonic: Callable[[], float] = time.perf_counter,
                 max_pending_per_target: int = 10_000) -> None:
        if max_pending_per_target < 1:
            raise WebhookConfigError(f"max_pending_per_target must be >= 1, got {max_pending_per_target}")
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)
        self._on_attempt = on_attempt
        self._on_done = on_done
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._monotonic = monotonic
        self._max_pending = max_pending_per_target
        self._lanes: dict[str, _Lane] = {}
        self._group: asyncio.TaskGroup | None = None  # set while run() or drain() drives the lanes
        self._stop = asyncio.Event()
        self._closed = False
        self._orphans: list[Delivery] = []  # resumed for a target that is gone; reported to on_done

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, target: WebhookTarget, event_type: str, payload: Mapping[str, Any]) -> Delivery:
        """Queue ``payload`` for ``target`` as ``event_type``; the body is serialised here, once.

        The latest ``target`` given for an id (a new URL or secret) is used for every later
        attempt to that id, including retries of deliveries already queued.
        """
        self._check_open()
        if not _EVENT_TYPE_RE.fullmatch(event_type):
            raise PayloadError(f"event type must be 1-100 of [A-Za-z0-9._:-], got {event_type[:120]!r}")
        if not target.accepts(event_type):
            raise EventNotSubscribed(f"webhook target {target.id!r} does not take {event_type!r} events")
        body = encode_payload(payload)
        lane = self._lane(target)
        if len(lane.queue) + (lane.current is not None) >= self._max_pending:
            raise QueueFull(f"webhook target {target.id!r} already has {self._max_pending} pending deliveries")
        now = self._clock()
        delivery = Delivery(id=uuid.uuid4().hex, target_id=target.id, event_type=event_type, body=body,
                            created_at=now, next_attempt_at=now)
        lane.queue.append(delivery)
        self._kick(lane)
        return delivery

    def publish(self, targets: Iterable[WebhookTarget], event_type: str,
                payload: Mapping[str, Any]) -> list[Delivery]:
        """Submit ``payload`` to each of ``targets`` whose filter takes ``event_type``."""
        return [self.submit(t, event_type, payload) for t in targets if t.accepts(event_type)]

    def resume(self, deliveries: Iterable[Delivery], targets: Mapping[str, WebhookTarget]) -> None:
        """Take back pending deliveries (from ``close()`` of this or an earlier sender) and go on.

        They keep their id, body, attempts and ``next_attempt_at``, and go ahead of deliveries
        not yet started for the same target, in the order given. A delivery whose target is no
        longer in ``targets`` is failed and reported to ``on_done`` (it is not dropped silently);
        since that callback may be a coroutine, it is reported by ``run()``/``drain()``.
        """
        self._check_open()
        deliveries = list(deliveries)
        for d in deliveries:
            if d.state != "pending":
                raise WebhookError(f"delivery {d.id} is {d.state}; only pending deliveries can be resumed")
        queued = {d.id for lane in self._lanes.values() for d in lane.pending()}
        by_target: dict[str, list[Delivery]] = {}
        for d in deliveries:
            if d.id in queued:
                raise WebhookError(f"delivery {d.id} is already queued")
            queued.add(d.id)
            by_target.setdefault(d.target_id, []).append(d)
        for target_id, group in by_target.items():
            target = targets.get(target_id)
            if target is None:
                for d in group:
                    d._finish("failed", f"target {target_id!r} is no longer configured")
                    self._orphans.append(d)
                continue
            lane = self._lane(target)
            lane.queue.extendleft(reversed(group))
            self._kick(lane)
        if self._group is not None and self._orphans:
            self._group.create_task(self._report_orphans())

    # -- driving ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``close()`` is called (or this is cancelled); pending ones stay queued."""
        self._check_open()
        if self._group is not None:
            raise WebhookError("the webhook sender is already being driven by run() or drain()")
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._start_all(group)
                await self._stop.wait()
                for lane in self._lanes.values():
                    if lane.task is not None:
                        lane.task.cancel()
        finally:
            self._group = None

    async def drain(self) -> None:
        """Deliver everything queued (and whatever is submitted meanwhile), then return."""
        self._check_open()
        if self._group is not None:
            raise WebhookError("the webhook sender is already being driven by run() or drain()")
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._start_all(group)
        finally:
            self._group = None

    async def close(self) -> list[Delivery]:
        """Stop sending and return every pending delivery (per target in order) to persist and resume.

        An attempt cut short by closing is not recorded; the receiver may still have got it (so
        delivery is at least once: receivers drop duplicates by delivery id). Callbacks should be
        quick: one still running is cut short too.
        """
        self._closed = True
        self._stop.set()
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        pending = [d for lane in self._lanes.values() for d in lane.pending()]
        self._lanes.clear()
        if self._own_client:
            await self._client.aclose()
        return pending

    def pending(self) -> list[Delivery]:
        """The deliveries not yet done, per target in order."""
        return [d for lane in self._lanes.values() for d in lane.pending()]

    # -- inside -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SenderClosed("the webhook sender is closed")

    def _lane(self, target: WebhookTarget) -> _Lane:
        lane = self._lanes.get(target.id)
        if lane is None:
            lane = self._lanes[target.id] = _Lane(target)
        else:
            lane.target = target
        return lane

    def _start_all(self, group: asyncio.TaskGroup) -> None:
        for lane in self._lanes.values():
            self._kick(lane)
        if self._orphans:
            group.create_task(self._report_orphans())

    def _kick(self, lane: _Lane) -> None:
        """Start the lane's worker if a driver is running and the lane has work but no worker."""
        if self._group is not None and lane.task is None and (lane.current is not None or lane.queue):
            lane.task = self._group.create_task(self._work(lane))

    async def _report_orphans(self) -> None:
        while self._orphans:
            delivery = self._orphans.pop(0)
            log.warning("webhook %s (%s) failed: %s", delivery.id, delivery.event_type, delivery.reason)
            await self._call(self._on_done, delivery)

    async def _work(self, lane: _Lane) -> None:
        try:
            while True:
                if lane.current is None:
                    if not lane.queue:
                        return
                    lane.current = lane.queue.popleft()
                await self._deliver(lane, lane.current)
                lane.current = None
        finally:
            lane.task = None  # a cancelled worker leaves lane.current in place for close()

    async def _deliver(self, lane: _Lane, delivery: Delivery) -> None:
        """Attempt ``delivery`` until it is delivered or failed."""
        while delivery.state == "pending":
            target = lane.target
            if len(delivery.attempts) >= target.max_attempts:
                # only reached by a resumed delivery that used its attempts under an older setting
                last = delivery.attempts[-1].error if delivery.attempts else None
                delivery._finish("failed", f"gave up after {len(delivery.attempts)} attempts; last: {last}")
                await self._report_done(delivery)
                return
            wait_s = (delivery.next_attempt_at or 0.0) - self._clock()
            if wait_s > 0:
                await self._sleep(wait_s)
            attempt, verdict, retry_after_s = await self._attempt(target, delivery)
            delivery.attempts.append(attempt)
            if verdict == "delivered":
                delivery._finish("delivered")
            elif verdict == "refused":
                delivery._finish("failed", f"refused by the receiver: {attempt.error}")
            elif len(delivery.attempts) >= target.max_attempts:
                delivery._finish("failed", f"gave up after {len(delivery.attempts)} attempts; "
                                           f"last: {attempt.error}")
            else:
                if retry_after_s is not None:
                    delay_s = min(retry_after_s, target.retry_after_cap_s)
                else:
                    delay_s = backoff_delay_s(len(delivery.attempts) - 1, base_s=target.backoff_base_s,
                                              cap_s=target.backoff_cap_s, rng=self._rng)
                delivery.next_attempt_at = self._clock() + delay_s
            await self._call(self._on_attempt, delivery, attempt)
            if delivery.done:
                await self._report_done(delivery)

    async def _report_done(self, delivery: Delivery) -> None:
        if delivery.state == "failed":
            log.warning("webhook %s (%s) to %s failed: %s", delivery.id, delivery.event_type,
                        delivery.target_id, delivery.reason)
        await self._call(self._on_done, delivery)

    async def _attempt(self, target: WebhookTarget, delivery: Delivery) -> tuple[Attempt, _Verdict, float | None]:
        """One signed POST; what happened, what to do next, and the receiver's Retry-After if any."""
        at = self._clock()
        headers = signed_headers(target.secret, delivery.body, timestamp=int(at), delivery_id=delivery.id,
                                 event_type=delivery.event_type)
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["User-Agent"] = "yingji-webhooks"
        started = self._monotonic()
        status: int | None = None
        retry_after_s: float | None = None
        try:
            async with asyncio.timeout(target.timeout_s):
                request = self._client.build_request("POST", target.url, content=delivery.body, headers=headers,
                                                     timeout=target.timeout_s)
                response = await self._client.send(request, stream=True)
                try:
                    status = response.status_code
                    if 200 <= status < 300:
                        error, verdict = None, "delivered"
                    else:
                        text = await _read_some(response)
                        error = _describe(response, text)
                        verdict = "retry" if status in (408, 429) or status >= 500 else "refused"
                        if verdict == "retry":
                            retry_after_s = parse_retry_after(response.headers.get("Retry-After"), now=at)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            error, verdict = f"timed out after {target.timeout_s:g} s", "retry"
        except httpx.ConnectError as err:
            error, verdict = f"connection failed: {str(err) or type(err).__name__}", "retry"
        except (httpx.TransportError, OSError) as err:
            error, verdict = f"{type(err).__name__}: {err}", "retry"
        duration_ms = round((self._monotonic() - started) * 1000.0, 1)
        return Attempt(at=at, status=status, error=error, duration_ms=duration_ms), verdict, retry_after_s

    async def _call(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken log writer must not stop deliveries; it is logged loudly
            log.exception("webhook callback %s failed for delivery %s", getattr(callback, "__name__", callback),
                          args[0].id)


async def _read_some(response: httpx.Response) -> str:
    """At most ``_ERROR_BODY_BYTES`` of a (streamed) answer, as text."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _ERROR_BODY_BYTES:
            break
    return data[:_ERROR_BODY_BYTES].decode(response.encoding or "utf-8", errors="replace")


def _describe(response: httpx.Response, text: str) -> str:
    """A one-line account of a non-2xx answer for the delivery log."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("Location", "?")
        return f"HTTP {status} redirect to {location[:200]} (not followed: fix the target url)"
    snippet = " ".join(text.split())[:_ERROR_BODY_CHARS]
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status} {response.reason_phrase}".rstrip()
