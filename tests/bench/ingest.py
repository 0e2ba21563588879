"""Ingest benchmark: raw MQTT receive rate against the real path broker → decode → QC → store.

Both consumers meet the same load on the same private Mosquitto (the project's config),
one after the other, so the ratio (real / raw) says what decoding, quality control and
the SQLite store cost on this machine. Publishers are separate processes
(``mosquitto_pub -l`` when installed, else :mod:`tests.bench.publisher`) so the load
generator does not share the consumer's event loop. A last line per load feeds the same
payloads straight to ``Ingestor.handle`` (no broker) with and without the store, to show
where the time goes.

Run: ``python -m tests.bench ingest`` (``--messages N`` to change the load).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import aiomqtt

from command.store import Store
from command.sensing import Sensing
from command.store.writer import ReadingWriter
from sensors.ingest import Ingestor
from sensors.model import Reading
from sensors.registry import Registry, SensorSpec
from sensors.senml import NAME_PREFIX
from sensors.topics import SENML_SUBSCRIPTION, senml_topic
from tests.fixtures_mqtt import MosquittoInstance, start_mosquitto, stop_process

__all__ = ["Load", "Outcome", "main", "run"]

MOSQUITTO_PUB = Path("/usr/bin/mosquitto_pub")
IDLE_S = 3.0  # nothing more arrived for this long after the publishers finished: done
RUN_DEADLINE_S = 60.0  # one consumer run never takes longer than this
REGISTRY_SIZE = 1000  # synthetic rain gauges in the registry (a large district)
PUBLISHERS = 4  # publisher processes, one sensor topic each
BREAKDOWN_MESSAGES = 10_000  # messages fed straight to the ingestor for the cost breakdown
# Reading times start this far back so that none is "in the future" (sensors.qc.MAX_FUTURE)
# and every (sensor, time) is distinct (the store's primary key).
TIME_BASE_AGO_S = 10 * 86400


@dataclass(frozen=True, slots=True)
class Load:
    """What the publishers send: ``messages`` SenML packs of ``records`` readings each."""

    name: str
    messages: int
    records: int
    publishers: int = PUBLISHERS
    qos: int = 1  # publish QoS; sensors publish at QoS 1 (sensors/topics.py)

    @property
    def readings(self) -> int:
        return self.messages * self.records


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one consumer received of one load."""

    consumer: str
    load: Load
    messages: int
    readings: int
    elapsed_s: float  # first publisher start → last message handled
    rejected: int = 0
    handler_errors: int = 0
    backlog_max: int = 0
    cpu_busy: float = 0.0  # share of the wall time the consumer process spent on the CPU

    @property
    def msg_per_s(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def lost_messages(self) -> int:
        return self.load.messages - self.messages


def synthetic_registry(size: int) -> Registry:
    """``size`` rain gauges named ``bench-0000``…, valid range 0–300 mm per report."""
    return Registry(
        SensorSpec(
            sensor_id=f"bench-{i:04d}", kind="rain_gauge", name=f"bench gauge {i}", name_zh="",
            lon=106.5 + (i % 40) * 0.01, lat=29.6 + (i // 40) * 0.01, quantity="rain", unit="mm",
            valid_min=0.0, valid_max=300.0, interval_s=300.0,
        )
        for i in range(size)
    )


def write_payloads(directory: Path, load: Load, *, now: datetime) -> list[tuple[str, Path]]:
    """One file per publisher: its sensor's topic and one compact SenML pack per line."""
    base_s = int(now.timestamp()) - TIME_BASE_AGO_S
    per_publisher = [load.messages // load.publishers] * load.publishers
    for k in range(load.messages % load.publishers):
        per_publisher[k] += 1
    out = []
    for p, count in enumerate(per_publisher):
        sensor_id = f"bench-{p:04d}"
        path = directory / f"{load.name}-{p}.senml"
        with path.open("w") as f:
            for m in range(count):
                t0 = base_s + m * load.records
                pack: list[dict[str, object]] = [
                    {"n": "rain", "u": "mm", "v": round(0.1 * ((m + r) % 50), 1), "t": r} for r in range(load.records)
                ]
                pack[0].update(bn=f"{NAME_PREFIX}{sensor_id}:", bt=t0)
                f.write(json.dumps(pack, separators=(",", ":")))
                f.write("\n")
        out.append((senml_topic(sensor_id), path))
    return out


async def _publish(broker: MosquittoInstance, topic: str, path: Path, qos: int) -> None:
    """Run one publisher process to the end."""
    if MOSQUITTO_PUB.exists():
        args = [str(MOSQUITTO_PUB), "-h", broker.host, "-p", str(broker.port), "-q", str(qos), "-V", "311",
                "-t", topic, "-l"]
    else:
        args = [sys.executable, "-m", "tests.bench.publisher", "--host", broker.host, "--port", str(broker.port),
                "--topic", topic, "--qos", str(qos)]
    with path.open("rb") as stdin:
        proc = await asyncio.create_subprocess_exec(*args, stdin=stdin, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(RUN_DEADLINE_S):
                _, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"publisher {args[0]} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")


class _Progress:
    """Counts what a consumer handled and when it last handled something."""

    def __init__(self) -> None:
        self.messages = 0
        self.readings = 0
        self.last = 0.0

    def note(self, messages: int, readings: int) -> None:
        self.messages += messages
        self.readings += readings
        self.last = time.monotonic()


async def _drive(
    broker: MosquittoInstance,
    files: list[tuple[str, Path]],
    progress: _Progress,
    done: Callable[[], bool],
    qos: int,
) -> tuple[float, float]:
    """Start the publishers, wait until ``done()`` or idle.

    Returns the elapsed wall time and the share of it this process spent on the CPU
    (near 1.0: the consumer is the bottleneck; well below: the publishers or the broker are).
    """
    start = time.monotonic()
    cpu_start = time.process_time()
    progress.last = start
    async with asyncio.timeout(RUN_DEADLINE_S):
        async with asyncio.TaskGroup() as tg:
            for topic, path in files:
                tg.create_task(_publish(broker, topic, path, qos))
        while not done() and time.monotonic() - progress.last < IDLE_S:
            await asyncio.sleep(0.02)
    elapsed_s = progress.last - start
    busy = (time.process_time() - cpu_start) / (time.monotonic() - start)
    return elapsed_s, busy


def _client(broker: MosquittoInstance, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, identifier=f"bench-{name}-{time.monotonic_ns()}",
                          protocol=aiomqtt.ProtocolVersion.V311, clean_session=True)


async def measure_raw(broker: MosquittoInstance, load: Load, files: list[tuple[str, Path]]) -> Outcome:
    """A bare aiomqtt subscriber (QoS 1) that only counts messages."""
    progress = _Progress()
    subscribed = asyncio.Event()

    async def consume(client: aiomqtt.Client) -> None:
        await client.subscribe(SENML_SUBSCRIPTION, qos=1)
        subscribed.set()
        async for _ in client.messages:
            progress.note(1, load.records)

    async with _client(broker, "raw") as client:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(consume(client))
            async with asyncio.timeout(10):
                await subscribed.wait()
            elapsed_s, busy = await _drive(broker, files, progress, lambda: progress.messages >= load.messages,
                                           load.qos)
            task.cancel()
    return Outcome("raw aiomqtt", load, progress.messages, progress.readings, elapsed_s, cpu_busy=busy)


async def measure_ingest(
    broker: MosquittoInstance, load: Load, files: list[tuple[str, Path]], registry: Registry, db_path: Path
) -> Outcome:
    """The real path: ``Ingestor`` (decode, per-reading QC, duplicate check) → per-sensor QC and
    derived series (``command.sensing.Sensing``: step, flatline, neighbour checks, health) →
    ``ReadingWriter`` → SQLite: what the service does with every message.

    The same batching writer as the service: one transaction per drained batch of messages.
    """
    store = Store(f"sqlite:///{db_path}")
    progress = _Progress()

    def clock() -> datetime:
        return datetime.now(timezone.utc)

    writer = ReadingWriter(store, clock=clock, on_stored=lambda batch: progress.note(0, len(batch)))
    sensing = Sensing(registry, started=clock())

    async def on_readings(readings: list[Reading]) -> None:
        reviewed, _ = sensing.review(readings, received=clock())
        await writer.submit(reviewed)

    ingestor = Ingestor(registry=registry, on_readings=on_readings, clock=clock)
    try:
        async with _client(broker, "ingest") as client:
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(ingestor.run(client))
                writing = tg.create_task(writer.run())
                async with asyncio.timeout(10):
                    await ingestor.subscribed.wait()
                elapsed_s, busy = await _drive(broker, files, progress, lambda: progress.readings >= load.readings,
                                               load.qos)
                task.cancel()
                writing.cancel()
        stored = store.count_readings()
        print(f"  writer: {writer.stats.batches} transactions, largest batch {writer.stats.largest_batch} "
              f"readings", flush=True)
    finally:
        store.close()
    if stored != progress.readings:
        print(f"  note: {progress.readings} readings accepted but {stored} rows stored", flush=True)
    stats = ingestor.stats
    return Outcome("ingest+QC → SQLite", load, stats.messages, stats.accepted, elapsed_s,
                   rejected=stats.rejected_total, handler_errors=stats.handler_errors,
                   backlog_max=stats.backlog_max, cpu_busy=busy)


async def breakdown(load: Load, files: list[tuple[str, Path]], registry: Registry, db_path: Path,
                    *, limit: int = BREAKDOWN_MESSAGES) -> tuple[float, float]:
    """No broker: feed payloads straight to ``Ingestor.handle``; msg/s without and with the store."""
    lines = []
    for topic, path in files:
        with path.open("rb") as f:
            lines.extend((topic, line.rstrip(b"\n")) for line in f)
    lines = lines[:limit]

    def clock() -> datetime:
        return datetime.now(timezone.utc)

    rates = []
    for with_store in (False, True):
        store = Store(f"sqlite:///{db_path}-{int(with_store)}") if with_store else None

        async def on_readings(readings: list[Reading]) -> None:
            if store is not None:
                store.add_readings(readings, received_at=clock())

        ingestor = Ingestor(registry=registry, on_readings=on_readings, clock=clock)
        start = time.perf_counter()
        for topic, payload in lines:
            await ingestor.handle(topic, payload)
        rates.append(len(lines) / (time.perf_counter() - start))
        if store is not None:
            store.close()
    return rates[0], rates[1]


def _row(o: Outcome) -> str:
    lost = o.lost_messages
    extra = ""
    if o.rejected or o.handler_errors:
        extra = f"  rejected {o.rejected}, handler errors {o.handler_errors}"
    if o.backlog_max:
        extra += f"  backlog max {o.backlog_max:,}"
    return (f"  {o.consumer:<16} {o.messages:>8,} msg {o.readings:>9,} rdg in {o.elapsed_s:6.2f} s"
            f"  {o.msg_per_s:>9,.0f} msg/s {o.readings_per_s:>9,.0f} rdg/s  cpu {o.cpu_busy:4.0%}"
            f"  lost {lost:,}{extra}")


async def run(loads: list[Load], *, registry_size: int = REGISTRY_SIZE) -> list[tuple[Outcome, Outcome]]:
    """Measure raw and real ingest for each load on one private Mosquitto; print and return them."""
    tmp = Path(tempfile.mkdtemp(prefix="yingji-bench-ingest-"))
    proc, broker = start_mosquitto(tmp)
    results = []
    try:
        registry = synthetic_registry(max(registry_size, max(load.publishers for load in loads)))
        publisher = "mosquitto_pub -l" if MOSQUITTO_PUB.exists() else "python -m tests.bench.publisher"
        print(f"ingest: Mosquitto {broker.url} (deploy/mosquitto/yingji.conf), registry of {len(registry):,} "
              f"sensors, publishers: {publisher}, subscription QoS 1, store: SQLite file (WAL)")
        print("  (cpu = the consumer process's CPU time / wall time: near 100 % means the consumer is the limit)")
        now = datetime.now(timezone.utc)
        for i, load in enumerate(loads):
            files = write_payloads(tmp, load, now=now)
            print(f"load {load.name}: {load.messages:,} messages × {load.records} record(s) = "
                  f"{load.readings:,} readings from {load.publishers} publisher processes at QoS {load.qos}",
                  flush=True)
            raw = await measure_raw(broker, load, files)
            print(_row(raw), flush=True)
            real = await measure_ingest(broker, load, files, registry, tmp / f"store-{i}.sqlite")
            print(_row(real), flush=True)
            ratio = real.msg_per_s / raw.msg_per_s if raw.msg_per_s else 0.0
            print(f"  ratio real/raw: {ratio:.2f}", flush=True)
            qc_rate, store_rate = await breakdown(load, files, registry, tmp / f"breakdown-{i}.sqlite")
            n = min(load.messages, BREAKDOWN_MESSAGES)
            print(f"  no broker, Ingestor.handle on {n:,} messages: decode+QC {qc_rate:,.0f} msg/s "
                  f"({qc_rate * load.records:,.0f} rdg/s); decode+QC+store {store_rate:,.0f} msg/s "
                  f"({store_rate * load.records:,.0f} rdg/s)", flush=True)
            results.append((raw, real))
    finally:
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


DEFAULT_LOADS = (
    Load("single", messages=50_000, records=1),
    Load("gateway", messages=10_000, records=10),
)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.ingest [--messages N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench ingest")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1, help="publish QoS (default 1, as sensors)")
    parser.add_argument("--messages", type=int, default=None,
                        help="messages per load (default 50000 single-record, 10000 gateway)")
    args = parser.parse_args(argv)
    loads = [Load(load.name, args.messages or load.messages, load.records, qos=args.qos) for load in DEFAULT_LOADS]
    asyncio.run(run(loads))


if __name__ == "__main__":
    main()
