"""Webhook delivery to a real HTTP receiver (uvicorn on 127.0.0.1) that verifies every signature.

Time is stepped: the sender's clock and sleep are a :class:`SteppedTime`, so retries scheduled
minutes apart happen at once and the schedule is checked exactly under that clock. The HTTP
requests themselves are real.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from command.linkage.webhooks import (
    Attempt,
    Delivery,
    SenderClosed,
    SignatureError,
    WebhookError,
    WebhookSender,
    WebhookTarget,
    verify,
)

SECRET = b"fire-cad-webhook-secret-2025"
T0 = 1_750_000_000.0
DEADLINE_S = 20.0  # a ceiling against a hang on a loaded machine, not a measurement


class SteppedTime:
    """A clock in unix seconds and a sleep that moves it forward instead of waiting."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    verified: str  # "ok" or the SignatureError reason


@dataclass
class Receiver:
    """An outside system: verifies each request with ``verify`` and answers from a script.

    ``answers(path, body, n)`` gives (status, extra headers, text) for the n-th request (0-based)
    carrying that body; by default every request gets 200.
    """

    time: SteppedTime
    answers: Callable[[str, bytes, int], tuple[int, dict[str, str], str]] = lambda path, body, n: (200, {}, "")
    requests: list[Received] = field(default_factory=list)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # path -> answer only once set
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path}")
        async def hook(path: str, request: Request) -> Response:
            body = await request.body()
            self.arrived.set()
            if path in self.hold:
                await asyncio.wait_for(self.hold[path].wait(), DEADLINE_S)
            try:
                verify(SECRET, body, request.headers, now=self.time.clock())
                verified = "ok"
            except SignatureError as err:
                verified = err.reason
            n = sum(1 for r in self.requests if r.path == path and r.body == body)
            status, headers, text = self.answers(path, body, n) if verified == "ok" else (401, {}, verified)
            self.requests.append(Received(path, body, dict(request.headers), status, verified))
            return Response(content=text, status_code=status, headers=headers, media_type="text/plain")

        return app

    def seen(self, path: str) -> list[tuple[int, int]]:
        """(payload seq, status) of each request to ``path``, in arrival order."""
        return [(json.loads(r.body)["seq"], r.status) for r in self.requests if r.path == path]


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    """Run ``receiver`` on a free port of 127.0.0.1; yields its base URL."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(receiver.app(), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        for event in receiver.hold.values():
            event.set()
        server.should_exit = True
        await task
        sock.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hooks"


@dataclass
class Log:
    """What the service's delivery log would store, from the two callbacks."""

    attempts: list[tuple[str, Attempt, str, float | None]] = field(default_factory=list)
    done: list[tuple[str, str, str | None]] = field(default_factory=list)
    done_event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_attempt(self, delivery: Delivery, attempt: Attempt) -> None:
        self.attempts.append((delivery.id, attempt, delivery.state, delivery.next_attempt_at))

    async def on_done(self, delivery: Delivery) -> None:  # a coroutine, as a database writer may be
        self.done.append((delivery.id, delivery.state, delivery.reason))
        self.done_event.set()


def make_sender(time: SteppedTime, log: Log, *, seed: int = 7) -> WebhookSender:
    return WebhookSender(on_attempt=log.on_attempt, on_done=log.on_done, clock=time.clock, sleep=time.sleep,
                         rng=random.Random(seed))


def target(url: str, **kwargs) -> WebhookTarget:
    return WebhookTarget(kwargs.pop("id", "fire-cad"), url, SECRET, **kwargs)


def expected_body(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def test_delivered_first_time_with_exact_body_and_valid_signature() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time)
    payload = {"task_id": "T-17", "department": "fire", "text": "封闭嘉陵江滨江路 (close the riverside road)",
               "level": "II", "lonlat": [106.52, 29.62]}
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        delivery = sender.submit(target(f"{base}/cad"), "task.sent", payload)
        assert delivery.state == "pending" and delivery.next_attempt_at == T0
        assert len(delivery.id) == 32 and int(delivery.id, 16) >= 0
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        assert await sender.close() == []

    [got] = receiver.requests
    assert got.body == expected_body(payload) == delivery.body
    assert got.verified == "ok"
    assert got.headers["x-yingji-delivery"] == delivery.id
    assert got.headers["x-yingji-event"] == "task.sent"
    assert got.headers["x-yingji-timestamp"] == str(int(T0))
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert delivery.state == "delivered" and delivery.next_attempt_at is None and delivery.reason is None
    [attempt] = delivery.attempts
    assert (attempt.at, attempt.status, attempt.error) == (T0, 200, None)
    assert attempt.duration_ms >= 0.0
    assert log.attempts == [(delivery.id, attempt, "delivered", None)]
    assert log.done == [(delivery.id, "delivered", None)]
    assert time.sleeps == []


async def test_two_500s_then_200_retries_on_the_backoff_schedule() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time, answers=lambda path, body, n: (500, {}, "database down") if n < 2 else (200, {}, ""))
    async with serving(receiver) as base:
        sender = make_sender(time, log, seed=2024)
        hook = target(f"{base}/cad", backoff_base_s=2.0, backoff_cap_s=60.0)
        delivery = sender.submit(hook, "task.sent", {"seq": 1})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        await sender.close()

    # full jitter, computed here from the AWS formula: uniform(0, min(cap, base * 2**retry))
    twin = random.Random(2024)
    d0, d1 = twin.uniform(0.0, min(60.0, 2.0 * 2**0)), twin.uniform(0.0, min(60.0, 2.0 * 2**1))
    assert [a.status for a in delivery.attempts] == [500, 500, 200]
    assert [a.error for a in delivery.attempts] == ["HTTP 500: database down", "HTTP 500: database down", None]
    assert [a.at for a in delivery.attempts] == pytest.approx([T0, T0 + d0, T0 + d0 + d1], abs=1e-6)
    assert time.sleeps == pytest.approx([d0, d1], abs=1e-6)
    # the schedule each attempt left behind, as the delivery log sees it
    scheduled = [next_at for _, _, _, next_at in log.attempts]
    assert scheduled[0] == T0 + d0
    assert scheduled[1] == pytest.approx(T0 + d0 + d1, abs=1e-6)
    assert scheduled[2] is None
    assert [state for _, _, state, _ in log.attempts] == ["pending", "pending", "delivered"]
    assert log.done == [(delivery.id, "delivered", None)]
    # every attempt was signed afresh at its own time, with the same delivery id and body
    assert [r.verified for r in receiver.requests] == ["ok", "ok", "ok"]
    assert [r.headers["x-yingji-timestamp"] for r in receiver.requests] == [str(int(a.at)) for a in delivery.attempts]
    assert {r.headers["x-yingji-delivery"] for r in receiver.requests} == {delivery.id}
    assert {r.body for r in receiver.requests} == {b'{"seq":1}'}


async def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    time, log = SteppedTime(), Log()
    answers = {0: (429, {"Retry-After": "7"}, "slow down"), 1: (503, {"Retry-After": "86400"}, "maintenance")}
    receiver = Receiver(time, answers=lambda path, body, n: answers.get(n, (200, {}, "")))
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        delivery = sender.submit(target(f"{base}/cad", retry_after_cap_s=120.0), "task.sent", {"seq": 1})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        await sender.close()
    assert [a.status for a in delivery.attempts] == [429, 503, 200]
    assert time.sleeps == [7.0, 120.0]
    assert [a.at for a in delivery.attempts] == [T0, T0 + 7.0, T0 + 127.0]
    assert delivery.state == "delivered"


async def test_400_fails_at_once_with_the_reason_recorded() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time, answers=lambda path, body, n: (400, {}, "unknown department 'fire2'\n"))
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        delivery = sender.submit(target(f"{base}/cad"), "task.sent", {"seq": 1, "department": "fire2"})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        assert await sender.close() == []
    [attempt] = delivery.attempts
    assert (attempt.status, attempt.error) == (400, "HTTP 400: unknown department 'fire2'")
    assert delivery.state == "failed"
    assert delivery.reason == "refused by the receiver: HTTP 400: unknown department 'fire2'"
    assert log.done == [(delivery.id, "failed", delivery.reason)]
    assert time.sleeps == [] and len(receiver.requests) == 1


async def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time)
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        wrong = WebhookTarget("fire-cad", f"{base}/cad", b"not-the-shared-secret-at-all")
        delivery = sender.submit(wrong, "task.sent", {"seq": 1})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        await sender.close()
    assert [r.verified for r in receiver.requests] == ["bad_signature"]
    assert delivery.state == "failed" and delivery.reason == "refused by the receiver: HTTP 401: bad_signature"


async def test_receiver_down_gives_up_after_max_attempts() -> None:
    time, log = SteppedTime(), Log()
    sender = make_sender(time, log)
    delivery = sender.submit(target(closed_port_url(), max_attempts=4), "alert.issued", {"seq": 1})
    async with asyncio.timeout(DEADLINE_S):
        await sender.drain()
    await sender.close()
    assert len(delivery.attempts) == 4
    assert all(a.status is None for a in delivery.attempts)
    assert all(a.error is not None and a.error.startswith("connection failed: ") for a in delivery.attempts)
    assert delivery.state == "failed"
    assert delivery.reason == f"gave up after 4 attempts; last: {delivery.attempts[-1].error}"
    assert len(time.sleeps) == 3  # no wait after the last attempt
    assert [state for _, _, state, _ in log.attempts] == ["pending", "pending", "pending", "failed"]
    assert log.done == [(delivery.id, "failed", delivery.reason)]


async def test_a_receiver_that_does_not_answer_times_out_and_is_retried() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time)
    receiver.hold["slow"] = asyncio.Event()  # never set until the server shuts down
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        slow = target(f"{base}/slow", timeout_s=0.5, max_attempts=2)
        delivery = sender.submit(slow, "task.sent", {"seq": 1})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        await sender.close()
    assert [(a.status, a.error) for a in delivery.attempts] == [(None, "timed out after 0.5 s")] * 2
    assert delivery.state == "failed"


@pytest.mark.parametrize("driver", ["drain", "run"])
async def test_per_target_order_holds_under_retries(driver: str) -> None:
    time, log = SteppedTime(), Log()
    first_answers = {1: 503, 2: 500}  # seq -> the answer to its first request

    def answers(path: str, body: bytes, n: int) -> tuple[int, dict[str, str], str]:
        seq = json.loads(body)["seq"]
        return (first_answers[seq], {}, "busy") if n == 0 and seq in first_answers else (200, {}, "")

    receiver = Receiver(time, answers=answers)
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        hook = target(f"{base}/cad")
        if driver == "drain":
            deliveries = [sender.submit(hook, "task.updated", {"seq": seq, "task_id": "T-17"}) for seq in (1, 2, 3)]
            async with asyncio.timeout(DEADLINE_S):
                await sender.drain()
            await sender.close()
        else:  # the service's way: running in the background, updates submitted while 1 is on its way
            running = asyncio.create_task(sender.run())
            deliveries = [sender.submit(hook, "task.updated", {"seq": 1, "task_id": "T-17"})]
            async with asyncio.timeout(DEADLINE_S):
                await receiver.arrived.wait()
                deliveries += [sender.submit(hook, "task.updated", {"seq": seq, "task_id": "T-17"}) for seq in (2, 3)]
                while len(log.done) < 3:
                    await log.done_event.wait()
                    log.done_event.clear()
                assert await sender.close() == []
                await running
    # 2 is not sent before 1 is delivered, nor 3 before 2, although 1 and 2 needed retries
    assert receiver.seen("cad") == [(1, 503), (1, 200), (2, 500), (2, 200), (3, 200)]
    assert [d.state for d in deliveries] == ["delivered"] * 3
    assert [entry[0] for entry in log.done] == [d.id for d in deliveries]


async def test_one_target_does_not_hold_up_another() -> None:
    time, log = SteppedTime(), Log()
    receiver = Receiver(time)
    receiver.hold["stuck"] = asyncio.Event()
    async with serving(receiver) as base:
        sender = make_sender(time, log)
        stuck = sender.submit(target(f"{base}/stuck", id="sms-gateway"), "alert.issued", {"seq": 1})
        fine = sender.submit(target(f"{base}/fine", id="traffic-cad"), "task.sent", {"seq": 2})
        draining = asyncio.create_task(sender.drain())
        async with asyncio.timeout(DEADLINE_S):
            while fine.state != "delivered":
                await log.done_event.wait()
                log.done_event.clear()
        # the other target's request is still held by its receiver
        assert stuck.state == "pending" and stuck.attempts == []
        assert receiver.seen("fine") == [(2, 200)] and receiver.seen("stuck") == []
        receiver.hold["stuck"].set()
        async with asyncio.timeout(DEADLINE_S):
            await draining
        await sender.close()
    assert stuck.state == "delivered" and receiver.seen("stuck") == [(1, 200)]
    assert [state for _, state, _ in log.done] == ["delivered", "delivered"]
    assert [entry[0] for entry in log.done] == [fine.id, stuck.id]


async def test_close_returns_pending_deliveries_and_resume_delivers_them() -> None:
    time, log = SteppedTime(), Log()
    down = True
    receiver = Receiver(time, answers=lambda path, body, n: (503, {}, "restarting") if down else (200, {}, ""))
    gate = asyncio.Event()  # never set: the first retry waits until the sender is closed

    async def waiting_sleep(seconds: float) -> None:
        time.sleeps.append(seconds)
        await gate.wait()

    async with serving(receiver) as base:
        hook = target(f"{base}/cad")
        sender = WebhookSender(on_attempt=log.on_attempt, on_done=log.on_done, clock=time.clock,
                               sleep=waiting_sleep, rng=random.Random(3))
        running = asyncio.create_task(sender.run())
        first = sender.submit(hook, "task.sent", {"seq": 1})
        later = [sender.submit(hook, "task.updated", {"seq": seq}) for seq in (2, 3)]
        async with asyncio.timeout(DEADLINE_S):
            while not log.attempts:
                await receiver.arrived.wait()
                await asyncio.sleep(0.01)
            while not time.sleeps:  # the worker is now waiting for its retry
                await asyncio.sleep(0.01)
            pending = await sender.close()
            await running
        assert pending == [first, *later]
        assert [d.state for d in pending] == ["pending"] * 3
        assert [a.status for a in first.attempts] == [503] and first.next_attempt_at is not None
        assert [d.attempts for d in later] == [[], []]
        assert log.done == []
        with pytest.raises(SenderClosed, match="closed"):
            sender.submit(hook, "task.sent", {"seq": 4})

        # a new sender (say, after a restart) takes them back and delivers them, in order
        down = False
        log2 = Log()
        resumed = make_sender(time, log2)
        resumed.resume(pending, {hook.id: hook})
        async with asyncio.timeout(DEADLINE_S):
            await resumed.drain()
        assert await resumed.close() == []

    assert receiver.seen("cad") == [(1, 503), (1, 200), (2, 200), (3, 200)]
    assert [d.state for d in pending] == ["delivered"] * 3
    assert [a.status for a in first.attempts] == [503, 200]  # its earlier attempt is kept
    assert {r.headers["x-yingji-delivery"] for r in receiver.requests if json.loads(r.body)["seq"] == 1} == {first.id}
    assert [entry[0] for entry in log2.done] == [d.id for d in pending]


async def test_resume_refuses_finished_deliveries_and_reports_unknown_targets() -> None:
    time, log = SteppedTime(), Log()
    sender = make_sender(time, log)
    done = Delivery(id="a" * 32, target_id="fire-cad", event_type="task.sent", body=b"{}", created_at=T0,
                    state="delivered")
    with pytest.raises(WebhookError, match="is delivered; only pending deliveries can be resumed"):
        sender.resume([done], {})
    orphan = Delivery(id="b" * 32, target_id="retired-cad", event_type="task.sent", body=b"{}", created_at=T0,
                      next_attempt_at=T0)
    sender.resume([orphan], {})
    async with asyncio.timeout(DEADLINE_S):
        await sender.drain()
    assert orphan.state == "failed" and orphan.reason == "target 'retired-cad' is no longer configured"
    assert log.done == [(orphan.id, "failed", orphan.reason)]
    await sender.close()


async def test_a_failing_callback_does_not_stop_deliveries() -> None:
    time = SteppedTime()
    receiver = Receiver(time)
    done: list[str] = []

    def broken(delivery: Delivery, attempt: Attempt) -> None:
        raise RuntimeError("delivery log is full")

    async with serving(receiver) as base:
        sender = WebhookSender(on_attempt=broken, on_done=lambda d: done.append(d.state), clock=time.clock,
                               sleep=time.sleep, rng=random.Random(1))
        hook = target(f"{base}/cad")
        for seq in (1, 2):
            sender.submit(hook, "task.sent", {"seq": seq})
        async with asyncio.timeout(DEADLINE_S):
            await sender.drain()
        await sender.close()
    assert receiver.seen("cad") == [(1, 200), (2, 200)]
    assert done == ["delivered", "delivered"]
