"""The live feed over real WebSockets: the running service under uvicorn, ``websockets`` clients.

Each client says hello with its token and gets only what its role may see (crews their own crew's
tasks, departments their department's tasks and incidents' public view, viewers phone numbers
blanked, the operator everything); refused hellos close with 4401, expired tokens too; a slow
client gets every state change in order and the latest update of each vehicle."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
import yaml
from websockets.exceptions import ConnectionClosed

from command import auth
from command.api.app import create_app
from command.api.live import Hub
from command.clock import ManualClock
from command.runtime import Service
from command.settings import Settings
from tests.bench.fanout import RawClient
from tests.fixtures_mqtt import MosquittoInstance, free_port
from tests.fixtures_service import district_copy, running_service

SAMPLE_USERS = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
SECRET = "a-test-signing-secret-of-32-chars!!"
API_TOKEN = "operator-token"
DEADLINE_S = 20.0  # a deadline for slow machines, not a speed requirement
CREW_A, CREW_B = "crew-luoqi-water", "crew-longxing-water"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample users, with a member of a second crew (``longxing-li``) added if the sample has none."""
    data = yaml.safe_load(SAMPLE_USERS.read_text())
    if not any(u.get("crew") == CREW_B for u in data["users"]):
        data["users"].append({"id": "longxing-li", "name": "Li Na", "roles": ["crew"], "crew": CREW_B,
                              "password_hash": auth.hash_password("longxing-li-yubei-2025")})
    path = tmp_path_factory.mktemp("users") / "users.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@contextlib.asynccontextmanager
async def serving(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path, *, clock: Any = None,
                  **overrides: Any) -> AsyncIterator[tuple[Service, str, Hub]]:
    """The service (in this loop) and its app under uvicorn on a free port: (service, base URL, live hub)."""
    folder = district_copy(yubei_folder, tmp_path / "district")
    settings = Settings(broker_url=mosquitto.url, data_dir=tmp_path / "data", district_dir=folder,
                        api_token=API_TOKEN, patrols=False, **overrides)
    clock = clock or ManualClock(datetime.now(timezone.utc).replace(microsecond=0))
    async with running_service(settings, folder, clock) as service:
        port = free_port()
        app = create_app(service)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off", timeout_graceful_shutdown=3))
        serve = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(DEADLINE_S):
                while not server.started:
                    await asyncio.sleep(0.02)
            yield service, f"http://127.0.0.1:{port}", app.state.live_hub
        finally:
            server.should_exit = True
            async with asyncio.timeout(DEADLINE_S):  # a shutdown that hangs fails here
                await serve


async def sign_in(base: str, user: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        r = await http.post("/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"})
        assert r.status_code == 200, r.text
        return r.json()["token"]


@contextlib.asynccontextmanager
async def feed(base: str, token: str | None, **connect: Any) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """A client that said hello with ``token``: (socket, welcome)."""
    async with websockets.connect(base.replace("http", "ws") + "/ws", **connect) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        async with asyncio.timeout(DEADLINE_S):
            hello = json.loads(await ws.recv())
        assert hello["type"] == "welcome", hello
        yield ws, hello


async def closed_with(ws: Any) -> tuple[int, str]:
    """Read until the server closes: its close code and reason."""
    async with asyncio.timeout(DEADLINE_S):
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "the connection dropped without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def events_until(ws: Any, done: Any) -> list[dict[str, Any]]:
    """Events of the frames read until ``done(events)`` holds."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(DEADLINE_S):
        while not done(seen):
            msg = json.loads(await ws.recv())
            assert msg["type"] == "frame" and msg["events"], msg
            seen.extend(msg["events"])
    return seen


def marked(*marks: str) -> Any:
    """``done`` for events_until: every one of ``marks`` seen (``data.mark``)."""
    return lambda seen: set(marks) <= {e["data"].get("mark") for e in seen}


async def test_each_client_gets_only_what_its_role_may_see(mosquitto: MosquittoInstance, yubei_folder: Path,
                                                           tmp_path: Path, users_file: Path) -> None:
    async with serving(mosquitto, yubei_folder, tmp_path, users_file=users_file,
                       auth_secret=SECRET) as (service, base, hub):
        tokens = {u: await sign_in(base, u) for u in ("luoqi-zhang", "longxing-li", "fire-wang", "screen-hall")}
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for who, token in [("operator", API_TOKEN), *tokens.items()]:
                clients[who] = await stack.enter_async_context(feed(base, token))
            assert clients["operator"][1] == {"type": "welcome", "user": None, "roles": [], "operator": True,
                                              "expires_at": None}
            _, crew_hello = clients["luoqi-zhang"]
            assert crew_hello["user"] == "luoqi-zhang" and crew_hello["roles"] == ["crew"]
            assert crew_hello["expires_at"]

            bus = service.bus
            bus.publish("task.created", {"id": 901, "crew": CREW_A, "title": "sandbags", "contact_phone": "+86 1"})
            bus.publish("task.created", {"id": 902, "crew": CREW_B, "title": "pump"})
            bus.publish("crew.status", {"id": CREW_B, "status": "on_task"})
            bus.publish("task.created", {"id": 903, "department": "fire", "title": "standby"})
            bus.publish("task.acknowledged", {"id": 904, "department": "traffic"})
            bus.publish("incident.updated", {
                "id": 77, "kind": "rainstorm", "level": "orange", "title": "Rain", "reporter_phone": "+86 138",
                "evidence": ["gauge"],
                "tasks": [{"id": 903, "department": "fire"}, {"id": 904, "department": "traffic"}]})
            bus.publish("vehicle.telemetry", {"name": "UAV-1", "lon": 106.6, "lat": 29.7})
            bus.publish("sensor.reading", {"sensor_id": "rain-luoqi", "quantity": "rain", "value": 3.0})
            # the last events of each audience: everything before them has arrived when they do
            bus.publish("crew.status", {"id": CREW_A, "status": "available", "mark": "a"})
            bus.publish("crew.status", {"id": CREW_B, "status": "available", "mark": "b"})
            bus.publish("task.updated", {"id": 903, "department": "fire", "mark": "fire"})

            got = {who: await events_until(ws, marked(*{"luoqi-zhang": ("a",), "longxing-li": ("b",),
                                                        "fire-wang": ("fire",)}.get(who, ("a", "b", "fire"))))
                   for who, (ws, _) in clients.items()}

    def ids(who: str) -> list[tuple[str, Any]]:
        return [(e["kind"], e["data"].get("id") or e["data"].get("name") or e["data"].get("sensor_id"))
                for e in got[who]]

    # a crew member: only its own crew's tasks and crew events, never the other crew's
    assert ids("luoqi-zhang") == [("task.created", 901), ("crew.status", CREW_A)]
    assert ids("longxing-li") == [("task.created", 902), ("crew.status", CREW_B), ("crew.status", CREW_B)]
    # a department member: its department's tasks, and incidents' public view with only its own tasks
    assert ids("fire-wang") == [("task.created", 903), ("incident.updated", 77), ("task.updated", 903)]
    [incident] = [e["data"] for e in got["fire-wang"] if e["kind"] == "incident.updated"]
    assert incident["tasks"] == [{"id": 903, "department": "fire"}]
    assert "reporter_phone" not in incident and "evidence" not in incident and incident["level"] == "orange"
    # a viewer: everything it may read, phone numbers blanked
    viewer = {e["kind"] + str(e["data"].get("id")): e["data"] for e in got["screen-hall"]}
    assert viewer["task.created901"]["contact_phone"] is None and viewer["incident.updated77"]["reporter_phone"] is None
    assert {"vehicle.telemetry", "sensor.reading"} <= {e["kind"] for e in got["screen-hall"]}
    # the operator: everything, unfiltered, in publication order
    operator = got["operator"]
    assert [e["kind"] for e in operator] == [
        "task.created", "task.created", "crew.status", "task.created", "task.acknowledged", "incident.updated",
        "vehicle.telemetry", "sensor.reading", "crew.status", "crew.status", "task.updated"]
    assert operator[0]["data"]["contact_phone"] == "+86 1" and operator[5]["data"]["reporter_phone"] == "+86 138"
    seqs = [e["seq"] for e in operator if e["seq"]]
    assert seqs == sorted(seqs) and len(seqs) == 9  # the audit numbering; transients carry 0


async def test_hellos_that_are_missing_forged_or_anonymous_are_refused(
        mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path, users_file: Path) -> None:
    async with serving(mosquitto, yubei_folder, tmp_path, users_file=users_file,
                       auth_secret=SECRET) as (service, base, hub):
        url = base.replace("http", "ws") + "/ws"
        token = await sign_in(base, "chen-li")
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        cases = [
            ({"type": "hello", "token": forged}, "token refused: bad signature"),
            ({"type": "hello", "token": None}, "token refused: malformed: a sign-in token is required"),
            ({"type": "hello", "token": "not-a-token"}, "token refused: malformed"),
            ({"type": "hello", "token": 7}, "the hello's token must be a string or null"),
            ({"type": "subscribe"}, 'expected {"type": "hello"'),
        ]
        for hello, reason in cases:
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps(hello))
                code, said = await closed_with(ws)
                assert code == 4401 and said.startswith(reason), (hello, said)
        async with websockets.connect(url) as ws:
            await ws.send("hello")
            assert await closed_with(ws) == (4401, "the hello is not JSON")
        async with websockets.connect(url) as ws:  # says nothing: closed after the hello's 5 s
            assert await closed_with(ws) == (4401, "no hello within 5 s")
        # after a good hello, anything but another hello ends the connection, saying why
        async with feed(base, token) as (ws, _):
            await ws.send(json.dumps({"type": "ping"}))
            assert await closed_with(ws) == (4400, 'expected {"type": "hello", "token": ...}')
        assert service.bus.subscriber_count >= 1  # the service's own subscribers are untouched
        await _until(lambda: not hub.clients and not hub.running, "the hub to stop with its last client")


async def _until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_without_users_anonymous_readers_are_viewers(mosquitto: MosquittoInstance, yubei_folder: Path,
                                                           tmp_path: Path) -> None:
    async with serving(mosquitto, yubei_folder, tmp_path) as (service, base, hub):
        async with feed(base, None) as (ws, hello):
            assert hello == {"type": "welcome", "user": None, "roles": ["viewer"], "operator": False,
                             "expires_at": None}
            service.bus.publish("task.created", {"id": 5, "crew": CREW_A, "phone": "+86 2", "mark": "m"})
            [event] = await events_until(ws, marked("m"))
            assert event["data"]["phone"] is None and event["data"]["crew"] == CREW_A


async def test_a_token_expires_on_the_socket_unless_renewed(mosquitto: MosquittoInstance, yubei_folder: Path,
                                                            tmp_path: Path, users_file: Path) -> None:
    clock = ManualClock(datetime.now(timezone.utc).replace(microsecond=0))
    async with serving(mosquitto, yubei_folder, tmp_path, clock=clock, users_file=users_file, auth_secret=SECRET,
                       token_ttl_s=60) as (service, base, hub):
        first = await sign_in(base, "screen-hall")
        async with feed(base, first) as (ws, hello):
            assert hello["expires_at"] == datetime.fromtimestamp(clock.now().timestamp() + 60, timezone.utc).isoformat()
            clock.advance(30)
            fresh = await sign_in(base, "screen-hall")
            await ws.send(json.dumps({"type": "hello", "token": fresh}))
            async with asyncio.timeout(DEADLINE_S):
                renewed = json.loads(await ws.recv())
            assert renewed["type"] == "welcome" and renewed["expires_at"] > hello["expires_at"]
            clock.advance(40)  # past the first token's end, within the fresh one's
            service.bus.publish("alert.drafted", {"id": 1, "mark": "still"})
            assert await events_until(ws, marked("still"))
            clock.advance(25)  # past the fresh token's end too
            assert await closed_with(ws) == (4401, "token expired")
        # a renewal with a refused token ends the connection
        clock_now_token = await sign_in(base, "screen-hall")
        async with feed(base, clock_now_token) as (ws, _):
            await ws.send(json.dumps({"type": "hello", "token": "forged"}))
            code, reason = await closed_with(ws)
            assert code == 4401 and reason.startswith("token refused")


async def test_a_slow_client_gets_every_state_change_in_order_and_the_latest_of_each_vehicle(
        mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path) -> None:
    async with serving(mosquitto, yubei_folder, tmp_path) as (service, base, hub):
        padding = "x" * 50_000  # big updates fill the socket buffers soon
        async with raw_feed(base, API_TOKEN) as slow:
            [slow_client] = hub.clients
            async with feed(base, API_TOKEN) as (fast, _):
                fast_seen: list[dict[str, Any]] = []
                reading = asyncio.create_task(_collect(fast, fast_seen))
                sent = step = 0
                async with asyncio.timeout(DEADLINE_S):
                    # 20 Hz telemetry of three vehicles and a state change per step, until the server finds
                    # the silent client three ticks behind (its writes block), well within the ring
                    while slow_client.cursor > hub.ring.latest - 3:
                        for name in ("UAV-1", "UAV-2", "USV-1"):
                            service.bus.publish("vehicle.telemetry", {"name": name, "step": step, "padding": padding})
                        sent += 1
                        service.bus.publish("vehicle.statustext", {"name": "UAV-1", "n": sent, "padding": padding})
                        step += 1
                        await asyncio.sleep(0.05)
                service.bus.publish("vehicle.statustext", {"name": "UAV-1", "n": sent + 1, "mark": "end"})
                slow_seen = await events_until(slow, marked("end"))
                await _until(lambda: any(e["data"].get("mark") == "end" for e in fast_seen), "the fast client")
                reading.cancel()
    states = [e["data"]["n"] for e in slow_seen if e["kind"] == "vehicle.statustext"]
    assert states == list(range(1, sent + 2))  # every state change, in order
    latest: dict[str, int] = {}
    for e in slow_seen:
        if e["kind"] == "vehicle.telemetry":
            latest[e["data"]["name"]] = e["data"]["step"]
    assert latest == dict.fromkeys(("UAV-1", "UAV-2", "USV-1"), step - 1)
    slow_updates = sum(e["kind"] == "vehicle.telemetry" for e in slow_seen)
    fast_updates = sum(e["kind"] == "vehicle.telemetry" for e in fast_seen)
    assert slow_updates < fast_updates, (slow_updates, fast_updates)  # coalesced while it was behind
    assert slow_client.merged_frames >= 1 and slow_client.overflows == 0


@contextlib.asynccontextmanager
async def raw_feed(base: str, token: str) -> AsyncIterator[RawClient]:
    """A client that said hello and reads its socket only when asked (a small receive buffer): while it
    does not, the server's writes to it block (the ``websockets`` client would keep reading)."""
    client = await RawClient.connect(base.replace("http", "ws") + "/ws", rcvbuf=4096)
    try:
        await client.send(json.dumps({"type": "hello", "token": token}))
        async with asyncio.timeout(DEADLINE_S):
            assert json.loads(await client.recv())["type"] == "welcome"
        yield client
    finally:
        await client.close()


async def _collect(ws: Any, into: list[dict[str, Any]]) -> None:
    while True:
        into.extend(json.loads(await ws.recv())["events"])


async def test_a_client_silent_longer_than_the_ring_is_told_to_refetch(
        mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path) -> None:
    async with serving(mosquitto, yubei_folder, tmp_path) as (service, base, hub):
        padding = "y" * 60_000
        async with raw_feed(base, API_TOKEN) as slow:
            [client] = hub.clients
            async with asyncio.timeout(60):
                n = 0
                while client.cursor >= hub.ring.oldest:  # until it is further behind than the ring holds
                    n += 1
                    service.bus.publish("vehicle.statustext", {"name": "UAV-1", "n": n, "padding": padding})
                    await asyncio.sleep(0.02)
            service.bus.publish("vehicle.statustext", {"name": "UAV-1", "mark": "after"})
            seen = await events_until(slow, marked("after"))
    kinds = [e["kind"] for e in seen]
    assert "bus.overflow" in kinds and client.overflows == 1
    numbers = [e["data"]["n"] for e in seen if "n" in e["data"]]
    assert numbers == sorted(numbers) and len(numbers) < n  # some were skipped, and it was told
    # what the server holds is bounded by the ring's ticks, not by how far behind the client is
    assert len(hub.ring.ticks) == hub.ring.size and hub.ring.event_count() < n
