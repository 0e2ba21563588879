"""Linkage benchmark: an incident's level change → every department task that change created
delivered, over MQTT and over webhooks, with eight departments behind webhooks.

The service runs in this process (``command.runtime.Service`` on a private Mosquitto, SQLite in a
temporary folder, the synthetic Yubei district, no patrols). The district's ``departments.yaml`` is
edited so that the emergency bureau, fire, traffic, health, ecology, city management, police and big
data each have a webhook channel (a signing secret in an environment variable set here). The
departments' side is a separate process (``python -m tests.bench.linkage departments``): one
uvicorn/FastAPI receiver with a path per department, which checks every signature, and one MQTT
client subscribed to ``yingji/departments/+/tasks/#``. It stamps each arrival with
``time.monotonic()`` (CLOCK_MONOTONIC on Linux: one clock for every process of the machine) and
writes one JSON line per arrival; this process reads them.

A sample is one incident on the Yulin River gauge (``yulin-level``): a reading just below the
warning level opens it at blue (its tasks go out; timed too, for comparison), then, when
everything has settled, one reading above the historical maximum raises it to red: the timed
change. A blue → red rise adds the yellow, orange and red playbook entries at once (a rise sends
only the tasks the incident does not have yet: ``command.linkage.playbook.new_tasks``), and those
reach all eight webhook departments, besides MQTT-only recipients (meteorology, township offices).
Then the incident is closed (``close_incident``: its tasks are cancelled, over the same channels)
and, once that has settled too, the next sample opens a fresh incident. Reading times are spaced
``READING_GAP`` apart in the past, so no jump trips the quality-control step check.

Per change: t0 is taken just before the reading is published; "MQTT" is the arrival of the last
of the change's tasks on MQTT (its first message, state "sent"), "webhook" the arrival of the last
``task.created`` webhook of the change's tasks in the eight departments, "all" the later of the two.
The service's own view comes from its event log: reading stored (``received_at``) → the last
``task.created`` event of the change.

Run: ``python -m tests.bench linkage`` (``--samples N``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response

from command.linkage.webhooks import EVENT_HEADER, SignatureError, verify
from sensors.senml import NAME_PREFIX
from sensors.topics import senml_topic
from tests.fixtures_mqtt import MosquittoInstance, free_port, start_mosquitto, stop_process

__all__ = ["Change", "HOOKED", "department_side", "main", "run"]

GAUGE = "yulin-level"  # the Yulin River gauge at Longxing (synthetic Yubei)
# The eight departments whose own systems take their tasks by webhook (the eight).
HOOKED = ("emergency", "fire", "traffic", "health", "ecology", "city", "police", "bigdata")
TASK_SUBSCRIPTION = "yingji/departments/+/tasks/#"
SECRET_ENV = "YINGJI_BENCH_HOOK_{}"  # one signing secret per department, e.g. YINGJI_BENCH_HOOK_FIRE
# The quality-control step limit of a river level is 1 m per 5 min, scaled with the gap
# (sensors/kinds.py): 45 min between readings allows 9 m, more than the blue → red jump.
READING_GAP = timedelta(minutes=45)
RED_ABOVE_MAX_M = 0.1  # the red reading: this far above the historical maximum
START_DEADLINE_S = 60.0  # the departments' side and the service come up
CHANGE_DEADLINE_S = 30.0  # a change's tasks all arrive on both channels
SETTLE_DEADLINE_S = 30.0
QUIET_S = 0.5  # settled: no webhook pending, nothing published and nothing arrived for this long
TOTAL_DEADLINE_S = 600.0
STOP_DEADLINE_S = 20.0


# -- the departments' side (its own process) -----------------------------------------------------

def _emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def department_side(mqtt_host: str, mqtt_port: int, http_port: int, departments: tuple[str, ...]) -> None:
    """The departments' own systems: a webhook receiver (a path per department) and an MQTT client;
    one JSON line on stdout per arrival, stamped with ``time.monotonic()``, and ``ready`` once both listen."""
    keys: dict[str, str] = {}
    for dept in departments:
        key = os.environ.get(SECRET_ENV.format(dept.upper()), "")
        if not key:
            raise SystemExit(f"department {dept}: no secret in {SECRET_ENV.format(dept.upper())}")
        keys[dept] = key
    app = FastAPI()

    @app.post("/hooks/{dept}")
    async def hook(dept: str, request: Request) -> Response:
        body = await request.body()
        arrived = time.monotonic()
        if dept not in keys:
            _emit(ch="hook", t=arrived, dept=dept, verdict="unknown department")
            return Response(status_code=404)
        try:
            verify(keys[dept], body, dict(request.headers), now=time.time())
            verdict = "ok"
        except SignatureError as err:
            verdict = err.reason
        try:
            task = json.loads(body).get("task") or {}
        except ValueError:
            task = {}
        _emit(ch="hook", t=arrived, dept=dept, event=request.headers.get(EVENT_HEADER), task=task.get("id"),
              incident=task.get("incident_id"), status=task.get("status"), verdict=verdict)
        return Response(status_code=200 if verdict == "ok" else 401)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=http_port, log_level="warning",
                                           access_log=False))
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client(mqtt_host, mqtt_port, identifier=f"bench-departments-{os.getpid()}",
                                  protocol=aiomqtt.ProtocolVersion.V311) as client:
            await client.subscribe(TASK_SUBSCRIPTION, qos=1)
            subscribed.set()
            async for message in client.messages:
                arrived = time.monotonic()
                parts = message.topic.value.split("/")  # yingji/departments/{dept}/tasks/{task_id}
                try:
                    task = json.loads(message.payload)  # type: ignore[arg-type]
                except (ValueError, TypeError):
                    task = {}
                _emit(ch="mqtt", t=arrived, dept=parts[2] if len(parts) > 2 else None, task=task.get("id"),
                      incident=task.get("incident_id"), status=task.get("status"), retained=message.retain)

    async def announce() -> None:
        async with asyncio.timeout(START_DEADLINE_S):
            await subscribed.wait()
            while not server.started:
                await asyncio.sleep(0.02)
        _emit(ch="ready", t=time.monotonic())

    async with asyncio.TaskGroup() as tg:
        listening = tg.create_task(listen())
        tg.create_task(announce())
        await server.serve()  # until SIGTERM
        listening.cancel()


# -- this side: the service and the samples --------------------------------------------------------

@dataclass(slots=True)
class Change:
    """One level change of an incident and when each of the tasks it created arrived (monotonic s)."""

    label: str
    published: float  # monotonic, just before the reading was published
    published_wall: datetime
    reading_time: datetime
    incident_id: int | None = None
    tasks: dict[int, str] = field(default_factory=dict)  # task id → department (or township office)
    mqtt: dict[int, float] = field(default_factory=dict)  # first arrival on MQTT
    hooks: dict[int, float] = field(default_factory=dict)  # task.created webhook arrival
    risk_recompute: bool = False  # the risk map was recomputed (on the service's loop) meanwhile
    offices: set[str] = field(default_factory=set)  # township / street offices among the recipients
    ingest_s: float | None = None  # publish → reading stored (wall clocks)
    service_s: float | None = None  # reading stored → last task.created event (service clock)
    error: str | None = None

    @property
    def hooked(self) -> list[int]:
        return [i for i, dept in self.tasks.items() if dept in HOOKED]

    @property
    def mqtt_s(self) -> float | None:
        if not self.tasks or len(self.mqtt) < len(self.tasks):
            return None
        return max(self.mqtt.values()) - self.published

    @property
    def hook_s(self) -> float | None:
        if not self.hooked or len(self.hooks) < len(self.hooked):
            return None
        return max(self.hooks.values()) - self.published

    @property
    def all_s(self) -> float | None:
        m, h = self.mqtt_s, self.hook_s
        return None if m is None or h is None else max(m, h)

    @property
    def mqtt_first_s(self) -> float | None:
        return None if self.mqtt_s is None else min(self.mqtt.values()) - self.published

    @property
    def mqtt_spread_s(self) -> float | None:
        return None if self.mqtt_s is None else max(self.mqtt.values()) - min(self.mqtt.values())


class Departments:
    """Reads the departments' side's lines: first MQTT arrival and task.created webhook per task."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.mqtt_first: dict[int, float] = {}
        self.created_hook: dict[int, float] = {}
        self.refused: list[str] = []  # webhooks whose signature failed, or for an unknown path
        self.last_line = time.monotonic()
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.last_line = time.monotonic()
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            channel, task = line.get("ch"), line.get("task")
            if channel == "ready":
                self.ready.set()
            elif channel == "mqtt" and isinstance(task, int):
                self.mqtt_first.setdefault(task, line["t"])
            elif channel == "hook":
                if line.get("verdict") != "ok":
                    self.refused.append(f"{line.get('dept')}: {line.get('verdict')}")
                elif line.get("event") == "task.created" and isinstance(task, int):
                    self.created_hook.setdefault(task, line["t"])
            self.changed.set()

    async def wait_for(self, done: Callable[[], bool], *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                self.changed.clear()
                await self.changed.wait()


def webhook_departments(folder: Path, url: str) -> dict[str, str]:
    """Give the HOOKED departments a webhook channel at ``{url}/hooks/{dept}``; their secrets by env name."""
    path = folder / "departments.yaml"
    data = yaml.safe_load(path.read_text())
    found = {d["id"] for d in data["departments"]}
    missing = sorted(set(HOOKED) - found)
    if missing:
        raise ValueError(f"{path}: no department {', '.join(missing)}; the benchmark needs all of {HOOKED}")
    env: dict[str, str] = {}
    for dept in data["departments"]:
        if dept["id"] in HOOKED:
            name = SECRET_ENV.format(dept["id"].upper())
            dept.setdefault("channels", {})["webhook"] = {"url": f"{url}/hooks/{dept['id']}", "secret_env": name}
            env[name] = secrets.token_hex(24)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return env


def level_senml(value_m: float, at: datetime) -> bytes:
    return json.dumps([{"bn": f"{NAME_PREFIX}{GAUGE}:", "n": "level", "u": "m", "v": round(value_m, 2),
                        "t": at.timestamp()}]).encode()


class Bench:
    """Drives the level changes and times them."""

    def __init__(self, service: Any, departments: Departments, publisher: aiomqtt.Client) -> None:
        self.service = service
        self.departments = departments
        self.publisher = publisher
        self.incidents = service.bus.subscribe(maxsize=1000, kinds=frozenset({"incident.opened", "incident.updated"}))

    async def change(self, label: str, value_m: float, at: datetime, *,
                     expect: Callable[[str, dict[str, Any]], bool], incident_id: int | None = None) -> Change:
        """Publish one reading; wait for the incident change it causes and for its tasks on both channels."""
        while not self.incidents.queue.empty():
            self.incidents.queue.get_nowait()  # older news
        store = self.service.store
        known = {t.id for t in store.tasks(incident_id=incident_id)} if incident_id is not None else set()
        payload = level_senml(value_m, at)
        c = Change(label, published=time.monotonic(), published_wall=datetime.now(timezone.utc), reading_time=at)
        await self.publisher.publish(senml_topic(GAUGE), payload, qos=1)
        try:
            async with asyncio.timeout(CHANGE_DEADLINE_S):
                while True:
                    event = await self.incidents.queue.get()
                    if expect(event.kind, event.data):
                        break
        except TimeoutError:
            c.error = f"no incident change within {CHANGE_DEADLINE_S:.0f} s"
            return c
        c.incident_id = event.data["id"]
        # the tasks are inserted in the same synchronous step that published the event: all there now
        c.tasks = {t.id: t.department for t in store.tasks(incident_id=c.incident_id) if t.id not in known}
        c.offices = {dept for dept in c.tasks.values() if dept not in self.service.departments}
        d = self.departments
        try:
            await d.wait_for(lambda: all(i in d.mqtt_first for i in c.tasks)
                             and all(i in d.created_hook for i in c.hooked), timeout_s=CHANGE_DEADLINE_S)
        except TimeoutError:
            c.error = (f"within {CHANGE_DEADLINE_S:.0f} s: {sum(i in d.mqtt_first for i in c.tasks)} of "
                       f"{len(c.tasks)} tasks on MQTT, {sum(i in d.created_hook for i in c.hooked)} of "
                       f"{len(c.hooked)} webhooks")
        done_wall = datetime.now(timezone.utc)
        c.mqtt = {i: d.mqtt_first[i] for i in c.tasks if i in d.mqtt_first}
        c.hooks = {i: d.created_hook[i] for i in c.hooked if i in d.created_hook}
        computed = self.service.risk_computed_at
        c.risk_recompute = computed is not None and c.published_wall <= computed <= done_wall
        return c

    async def settle(self) -> None:
        """Until no webhook is pending, the service published nothing and nothing arrived for QUIET_S."""
        metrics, webhooks = self.service.metrics, self.service.webhooks
        published, since = metrics.mqtt_published, time.monotonic()
        async with asyncio.timeout(SETTLE_DEADLINE_S):
            while True:
                await asyncio.sleep(0.05)
                now = time.monotonic()
                if metrics.mqtt_published != published:
                    published, since = metrics.mqtt_published, now
                if not webhooks.pending() and now - since >= QUIET_S and now - self.departments.last_line >= QUIET_S:
                    return

    async def sample(self, blue_m: float, red_m: float, opened_at: datetime) -> tuple[Change, Change | None]:
        """Open an incident at blue, raise it to red (the timed change), close it; everything settled between."""
        opened = await self.change("open at blue", blue_m, opened_at,
                                   expect=lambda kind, d: kind == "incident.opened" and d.get("sensor_id") == GAUGE)
        if opened.incident_id is None:
            return opened, None
        await self.settle()
        incident_id = opened.incident_id
        raised = await self.change("blue → red", red_m, opened_at + READING_GAP, incident_id=incident_id,
                                   expect=lambda kind, d: d.get("id") == incident_id and d.get("level") == "red")
        await self.settle()
        self.service.close_incident(incident_id, by="benchmark", reason="benchmark sample taken")
        await self.settle()
        return opened, raised


def add_service_view(store: Any, changes: list[Change]) -> None:
    """From the event log and the readings: publish → stored, and stored → last task.created."""
    created: dict[int, datetime] = {}
    after = 0
    while rows := store.events(after=after, limit=1000):
        for row in rows:
            if row.kind == "task.created" and isinstance(row.data.get("id"), int):
                created[row.data["id"]] = row.time
        after = rows[-1].seq
    received = {r.time: r.received_at for r in store.readings(GAUGE, quantity="level", limit=100_000)}
    for c in changes:
        stored = received.get(c.reading_time)
        if stored is None:
            continue
        c.ingest_s = (stored - c.published_wall).total_seconds()
        times = [created[i] for i in c.tasks if i in created]
        if c.tasks and len(times) == len(c.tasks):
            c.service_s = (max(times) - stored).total_seconds()


def _ms(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"median {1000 * statistics.median(values):6.0f} ms, p95 {_ms(values, 0.95):6.0f} ms, "
            f"max {1000 * max(values):6.0f} ms, min {1000 * min(values):6.0f} ms  (n={len(values)})")


def _ms_or(value: float | None) -> str:
    return "—" if value is None else f"{1000 * value:.0f} ms"


def _recipients(c: Change) -> str:
    depts = {c.tasks[i] for i in c.hooked}
    others = sorted({dept for dept in c.tasks.values() if dept not in HOOKED and dept not in c.offices})
    if c.offices:
        others.append(f"{len(c.offices)} township offices")
    return (f"{len(c.tasks)} tasks: {len(c.hooked)} to {len(depts)} webhook departments, "
            f"{len(c.tasks) - len(c.hooked)} MQTT-only to {' and '.join(others) or 'nobody'}")


def report(pairs: list[tuple[Change, Change | None]]) -> None:
    raises = [r for _, r in pairs if r is not None]
    good = [r for r in raises if r.all_s is not None and r.error is None]
    for n, (opened, raised) in enumerate(pairs, 1):
        c = raised or opened
        where = f"incident #{c.incident_id}" if c.incident_id is not None else "no incident"
        line = (f"  sample {n:2d}: {where} {c.label}: {_recipients(c)}; MQTT {_ms_or(c.mqtt_s)}, "
                f"webhook {_ms_or(c.hook_s)}, service stored → task.created {_ms_or(c.service_s)}")
        if c.risk_recompute:
            line += "  [risk map recomputed meanwhile]"
        if c.error:
            line += f"  FAILED: {c.error}"
        print(line)
    print(f"  samples: {len(good)} of {len(pairs)} blue → red changes delivered on both channels")
    if not good:
        return
    depts = sorted({r.tasks[i] for r in good for i in r.hooked})
    print(f"  level change → all department tasks delivered (MQTT, webhook), {len(depts)} departments:")
    _row("all (the later of the two)", [r.all_s for r in good])
    _row("MQTT, every task of the change", [r.mqtt_s for r in good])
    _row(f"webhook, the {len(depts)} departments", [r.hook_s for r in good])
    print("  where the time goes (blue → red):")
    _row("publish → reading stored", [r.ingest_s for r in good])
    _row("stored → last task.created", [r.service_s for r in good], note="  (the service's event log)")
    _row("publish → first task on MQTT", [r.mqtt_first_s for r in good])
    _row("first → last task on MQTT", [r.mqtt_spread_s for r in good])
    busy = [r.all_s for r in good if r.risk_recompute]
    if busy:
        _row("all, no risk-map recompute in it", [r.all_s for r in good if not r.risk_recompute])
        _row("all, a risk-map recompute in it", busy)
    opened = [o for o, _ in pairs if o.all_s is not None and o.error is None]
    if opened:
        o_depts = sorted({o.tasks[i] for o in opened for i in o.hooked})
        sizes = sorted({len(o.tasks) for o in opened})
        print(f"  for comparison, opening at blue ({'/'.join(map(str, sizes))} tasks, {len(o_depts)} webhook "
              f"departments: {', '.join(o_depts)}):")
        _row("all (the later of the two)", [o.all_s for o in opened])


def _row(label: str, values: list[float | None], *, note: str = "") -> None:
    print(f"    {label:<34}{_figures([v for v in values if v is not None])}{note}")


async def measure(folder: Path, tmp: Path, broker: MosquittoInstance, samples: int,
                  env: dict[str, str], hook_port: int) -> tuple[list[tuple[Change, Change | None]], dict[str, Any]]:
    """Start the departments' side and the service; take the samples."""
    from command.runtime import Service
    from command.settings import Settings

    registry = json.loads((folder / "sensors.geojson").read_text())
    spec = next(f["properties"] for f in registry["features"] if f["properties"]["id"] == GAUGE)
    th = spec["thresholds"]
    settings = Settings(broker_url=broker.url, data_dir=tmp / "data", district_dir=folder, patrols=False,
                        api_token=secrets.token_urlsafe(12))
    approach_m = float(th.get("approach_m", settings.river_approach_m))
    blue_m = th["warning_m"] - approach_m / 2
    red_m = th["historical_max_m"] + RED_ABOVE_MAX_M
    with (tmp / "departments.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.linkage", "departments", "--mqtt", f"{broker.host}:{broker.port}",
            "--port", str(hook_port), "--departments", ",".join(HOOKED),
            stdout=asyncio.subprocess.PIPE, stderr=log, env={**os.environ, **env},
            cwd=Path(__file__).resolve().parents[2])
    departments = Departments(proc)
    pairs: list[tuple[Change, Change | None]] = []
    info: dict[str, Any] = {"blue_m": blue_m, "red_m": red_m}
    try:
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(departments.read())
            try:
                async with asyncio.timeout(START_DEADLINE_S):
                    await departments.ready.wait()
            except TimeoutError:
                reader.cancel()
                raise RuntimeError(f"the departments' side did not come up:\n"
                                   f"{(tmp / 'departments.log').read_text(errors='replace')[-2000:]}") from None
            started = time.monotonic()
            service = Service(settings, district_dir=folder)
            running = tg.create_task(service.run(), name="service")
            async with asyncio.timeout(START_DEADLINE_S):
                while not (service.ready.is_set() and service.mqtt_connected):
                    await asyncio.sleep(0.05)
            info["start_s"] = time.monotonic() - started
            info["webhook_targets"] = sorted(service.webhook_targets)
            deadline = time.monotonic() + TOTAL_DEADLINE_S
            first = (datetime.now(timezone.utc) - READING_GAP * (2 * samples + 2)).replace(microsecond=0)
            async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V311) as publisher:
                bench = Bench(service, departments, publisher)
                await bench.settle()  # the start-up's own publishes
                for k in range(samples):
                    if time.monotonic() > deadline:
                        print(f"  stopped: deadline ({TOTAL_DEADLINE_S:.0f} s)", flush=True)
                        break
                    try:
                        pair = await bench.sample(blue_m, red_m, first + 2 * k * READING_GAP)
                    except TimeoutError:
                        print(f"  sample {k + 1}: the service did not settle within {SETTLE_DEADLINE_S:.0f} s",
                              flush=True)
                        break
                    pairs.append(pair)
                    if any(c is not None and c.error for c in pair):
                        break
            add_service_view(service.store, [c for pair in pairs for c in pair if c is not None])
            info["risk_compute_ms"] = service.metrics.risk_compute_ms
            info["refused"] = list(departments.refused)
            running.cancel()
            reader.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_DEADLINE_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return pairs, info


async def run(samples: int = 20) -> list[tuple[Change, Change | None]]:
    """Start Mosquitto, the departments' side and the service; time ``samples`` blue → red changes."""
    from sitl.scenarios.yubei.generate import generate
    from tests.fixtures_service import district_copy

    tmp = Path(tempfile.mkdtemp(prefix="yingji-bench-linkage-"))
    proc, broker = start_mosquitto(tmp)
    env: dict[str, str] = {}
    try:
        # the fleet listens on free UDP ports (no vehicle answers: none is needed here)
        folder = district_copy(generate(tmp / "generated"), tmp / "district")
        hook_port = free_port()
        env = webhook_departments(folder, f"http://127.0.0.1:{hook_port}")
        os.environ.update(env)  # the service reads the secrets from its environment
        print(f"linkage: level change → department tasks delivered; gauge {GAUGE}, {len(HOOKED)} departments "
              f"behind webhooks ({', '.join(HOOKED)})", flush=True)
        print(f"  Mosquitto {broker.url} (deploy/mosquitto/yingji.conf); service in this process (SQLite); "
              "departments' side: one process (uvicorn receiver, aiomqtt subscriber)", flush=True)
        pairs, info = await measure(folder, tmp, broker, samples, env, hook_port)
        print(f"  service up in {info['start_s']:.1f} s; webhook targets: {', '.join(info['webhook_targets'])}; "
              f"readings blue {info['blue_m']:.2f} m → red {info['red_m']:.2f} m", flush=True)
        report(pairs)
        print(f"  risk map recompute (synchronous, on the service's loop): last {info['risk_compute_ms']:.0f} ms")
        for line in info["refused"][:5]:
            print(f"  webhook refused by the receiver: {line}")
        return pairs
    finally:
        for name in env:
            os.environ.pop(name, None)
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.linkage [--samples N]``; ``... departments`` is the departments' side."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["departments"]:
        parser = argparse.ArgumentParser(prog="python -m tests.bench.linkage departments")
        parser.add_argument("--mqtt", required=True, help="broker host:port")
        parser.add_argument("--port", type=int, required=True, help="webhook receiver port on 127.0.0.1")
        parser.add_argument("--departments", default=",".join(HOOKED))
        args = parser.parse_args(argv[1:])
        host, port = args.mqtt.rsplit(":", 1)
        asyncio.run(department_side(host, int(port), args.port, tuple(args.departments.split(","))))
        return
    parser = argparse.ArgumentParser(prog="python -m tests.bench linkage")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)
    asyncio.run(run(args.samples))


if __name__ == "__main__":
    main()
