"""Alarm-to-mission benchmark: MQTT publish of a threshold-crossing rain report → the
service's ``mission.uploaded`` event (emitted right after the vehicle's MISSION_ACK ACCEPTED).

The live system runs as in the end-to-end tests (tests/fixtures_service.py): a private
Mosquitto, the simulated fleet (sped up) and the service, each its own process. A person
approves dispatches in the product; here, and only here, the benchmark approves at once:
it listens to ``yingji/events/incident.opened`` and POSTs ``/api/incidents/{id}/dispatch``.

Samples: the synthetic Yubei district is generated as usual, then extra synthetic rain
gauges are added around each copter base (300–600 m away, on land, outside airspace
zones) so that many incidents can be opened in one run and each flight is short. A sample
is started only when a copter is free (its previous flight ended with
``mission.completed``), at a gauge near that copter, and only after the previous sample
ended: one alarm in the pipeline at a time, while earlier flights may still be airborne.
When every copter has flown GAUGES_PER_BASE times, a fresh live system (fresh store,
full batteries) takes over, until enough samples are taken.

Run: ``python -m tests.bench alarm`` (``--samples N``).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import yaml

from command.district import District
from sensors.senml import NAME_PREFIX
from sensors.topics import senml_topic
from tests.fixtures_mqtt import MosquittoInstance, start_mosquitto, stop_process
from tests.fixtures_service import LiveService, start_live

__all__ = ["Sample", "main", "run"]

SAMPLE_DEADLINE_S = 30.0  # publish → mission.uploaded, per sample
FREE_COPTER_DEADLINE_S = 60.0  # waiting for a copter to come home
TOTAL_DEADLINE_S = 110.0  # the whole benchmark stays under two minutes
LOITER_S = 1.0  # short recon loiter: flights end quickly and copters come back into play
# Flights per copter per live system: the simulated batteries do not recharge, and the
# service rightly refuses a copter without enough charge for the trip and a reserve
# (command/dispatch/allocation.py); a fresh live system starts with full batteries.
GAUGES_PER_BASE = 4
RING_M = (300.0, 600.0)  # distance of the extra gauges from a copter base
RAIN_TOTAL_MM = 60.0  # 60 mm in the last hour: ≥ 50 mm in 3 h, orange (CMA Order No. 16)
M_PER_DEG_LAT = 111_320.0  # spherical approximation; the ring radius need not be exact


@dataclass(slots=True)
class Sample:
    """Times (monotonic seconds) of one alarm on its way to a mission."""

    sensor_id: str
    published: float
    incident_id: int | None = None
    opened: float | None = None  # incident.opened received
    approved: float | None = None  # dispatch POST answered
    uploaded: float | None = None  # mission.uploaded received
    vehicle: str | None = None
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def total_s(self) -> float | None:
        return None if self.uploaded is None else self.uploaded - self.published


def add_gauges(folder: Path) -> dict[str, list[str]]:
    """Add synthetic rain gauges around each copter base; return their ids by copter name."""
    district = District.load(folder)
    fleet = yaml.safe_load((folder / "fleet.yaml").read_text())
    sensors = json.loads((folder / "sensors.geojson").read_text())
    template = next(f for f in sensors["features"] if f["properties"]["kind"] == "rain_gauge")
    by_copter: dict[str, list[str]] = {}
    for vehicle in fleet["vehicles"]:
        if vehicle["type"] != "copter":
            continue
        base_lon, base_lat = vehicle["base"]
        ids: list[str] = []
        for k in range(GAUGES_PER_BASE * 3):  # more candidates than needed: some fall on water or in zones
            if len(ids) == GAUGES_PER_BASE:
                break
            bearing = 2 * math.pi * k / (GAUGES_PER_BASE * 3) * 7  # 7 turns: spread the bearings
            dist_m = RING_M[0] + (RING_M[1] - RING_M[0]) * (k % 3) / 2
            lat = base_lat + dist_m * math.cos(bearing) / M_PER_DEG_LAT
            lon = base_lon + dist_m * math.sin(bearing) / (M_PER_DEG_LAT * math.cos(math.radians(base_lat)))
            if (district.on_water(lon, lat) or not district.in_district(lon, lat)
                    or any(zone.contains(lon, lat) for zone in district.airspace)):
                continue
            sensor_id = f"bench-{vehicle['name'].lower()}-{len(ids):02d}"
            props = dict(template["properties"], id=sensor_id, name=f"Benchmark gauge {sensor_id}",
                         name_zh=f"基准测试雨量站 {sensor_id}")
            sensors["features"].append({"type": "Feature", "properties": props,
                                        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}})
            ids.append(sensor_id)
        by_copter[vehicle["name"]] = ids
    (folder / "sensors.geojson").write_text(json.dumps(sensors, ensure_ascii=False))
    return by_copter


def rainstorm(sensor_id: str, *, now: datetime) -> bytes:
    """Six 10-minute reports totalling RAIN_TOTAL_MM in the last hour (as LiveService.publish_rainstorm)."""
    now = now.replace(microsecond=0)
    records: list[dict[str, Any]] = [
        {"n": "rain", "u": "mm", "v": RAIN_TOTAL_MM / 6, "t": (now - timedelta(minutes=10 * k)).timestamp()}
        for k in range(5, -1, -1)
    ]
    records[0]["bn"] = f"{NAME_PREFIX}{sensor_id}:"
    return json.dumps(records).encode()


class Bench:
    """Listens to the service's events, approves dispatches at once, and times samples."""

    def __init__(self, live: LiveService, copters: list[str]) -> None:
        self.live = live
        self.free: set[str] = set(copters)
        self.free_changed = asyncio.Event()
        self.by_sensor: dict[str, Sample] = {}
        self.by_incident: dict[int, Sample] = {}
        self.http = httpx.AsyncClient(base_url=live.base_url, timeout=10.0,
                                      headers={"Authorization": f"Bearer {live.token}"})
        self.subscribed = asyncio.Event()
        self.unexpected: list[str] = []

    async def listen(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        await client.subscribe("yingji/events/#", qos=1)
        self.subscribed.set()
        async for message in client.messages:
            received = time.monotonic()
            try:
                event = json.loads(message.payload)  # type: ignore[arg-type]
                kind, data = event["kind"], event["data"]
            except (ValueError, KeyError, TypeError) as err:
                self.unexpected.append(f"unreadable event on {message.topic.value}: {err}")
                continue
            if kind == "incident.opened":
                sample = self.by_sensor.get(data.get("sensor_id"))
                if sample is None or sample.incident_id is not None:
                    continue
                sample.incident_id, sample.opened = data["id"], received
                self.by_incident[data["id"]] = sample
                tg.create_task(self.approve(sample))
            elif kind == "dispatch.approved":
                self.free.discard(data.get("vehicle"))
            elif kind == "mission.uploaded":
                sample = self.by_incident.get(data.get("incident_id"))
                if sample is not None and sample.uploaded is None:
                    sample.uploaded, sample.vehicle = received, data.get("vehicle")
                    sample.done.set()
            elif kind == "mission.completed":
                self.free.add(data.get("vehicle"))
                self.free_changed.set()
            elif kind in ("dispatch.refused",) or (kind == "dispatch.state" and data.get("state") == "failed"):
                sample = self.by_incident.get(data.get("incident_id"))
                if sample is not None:
                    sample.error = f"{kind}: {data.get('reason') or data.get('error')}"
                    sample.done.set()
                if kind == "dispatch.state":
                    self.free_changed.set()

    async def approve(self, sample: Sample) -> None:
        """The benchmark's stand-in for the dispatcher's click."""
        try:
            r = await self.http.post(f"/api/incidents/{sample.incident_id}/dispatch", json={"by": "benchmark"})
        except httpx.HTTPError as err:
            sample.error = f"dispatch POST failed: {err!r}"
            sample.done.set()
            return
        sample.approved = time.monotonic()
        if r.status_code != 202:
            sample.error = f"dispatch POST answered {r.status_code}: {r.text[:300]}"
            sample.done.set()

    async def free_copter(self, gauges: dict[str, deque[str]]) -> str | None:
        """A free copter that still has unused gauges near its base (waits for one)."""
        async with asyncio.timeout(FREE_COPTER_DEADLINE_S):
            while True:
                ready = sorted(c for c in self.free if gauges.get(c))
                if ready:
                    return ready[0]
                if not any(gauges.values()):
                    return None
                self.free_changed.clear()
                await self.free_changed.wait()

    async def one(self, client: aiomqtt.Client, sensor_id: str) -> Sample:
        payload = rainstorm(sensor_id, now=datetime.now(timezone.utc))
        sample = Sample(sensor_id=sensor_id, published=time.monotonic())
        self.by_sensor[sensor_id] = sample
        await client.publish(senml_topic(sensor_id), payload, qos=1)
        try:
            async with asyncio.timeout(SAMPLE_DEADLINE_S):
                await sample.done.wait()
        except TimeoutError:
            sample.error = (f"no mission.uploaded within {SAMPLE_DEADLINE_S:.0f} s "
                            f"(incident {'not opened' if sample.incident_id is None else sample.incident_id})")
        return sample


def _ms(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def report(samples: list[Sample]) -> None:
    good = [s for s in samples if s.total_s is not None]
    failed = [s for s in samples if s.total_s is None]
    print(f"  samples: {len(good)} of {len(samples)} reached mission.uploaded")
    if good:
        totals = [s.total_s for s in good if s.total_s is not None]
        # Nearest-rank p99: with fewer than 100 samples it is the maximum.
        print(f"  publish → mission.uploaded: median {1000 * statistics.median(totals):.0f} ms, "
              f"p99 {_ms(totals, 0.99):.0f} ms{' (= max: < 100 samples)' if len(totals) < 100 else ''}, "
              f"max {1000 * max(totals):.0f} ms, min {1000 * min(totals):.0f} ms")
        stages = {
            "publish → incident.opened event": [s.opened - s.published for s in good if s.opened],
            "incident.opened → dispatch POST answered": [s.approved - s.opened for s in good
                                                         if s.approved and s.opened],
            "POST answered → mission.uploaded": [s.uploaded - s.approved for s in good
                                                  if s.uploaded and s.approved],
        }
        for name, values in stages.items():
            if values:
                print(f"    {name:<42} median {1000 * statistics.median(values):6.0f} ms, "
                      f"max {1000 * max(values):6.0f} ms")
        print(f"  vehicles: {', '.join(sorted({s.vehicle or '?' for s in good}))}")
    for s in failed:
        print(f"  FAILED {s.sensor_id}: {s.error}")


async def measure(live: LiveService, broker: MosquittoInstance, gauges: dict[str, list[str]],
                  samples_wanted: int, *, deadline: float) -> list[Sample]:
    """Time up to ``samples_wanted`` alarms on one live system."""
    bench = Bench(live, sorted(gauges))
    queues = {name: deque(ids) for name, ids in gauges.items()}
    samples: list[Sample] = []
    try:
        async with (
            aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V311) as listener,
            aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V311) as publisher,
            asyncio.TaskGroup() as tg,
        ):
            listen = tg.create_task(bench.listen(listener, tg))
            async with asyncio.timeout(10):
                await bench.subscribed.wait()
            try:
                async with asyncio.timeout_at(asyncio.get_running_loop().time() + deadline - time.monotonic()):
                    while len(samples) < samples_wanted:
                        copter = await bench.free_copter(queues)
                        if copter is None:  # every copter flew its share
                            break
                        sample = await bench.one(publisher, queues[copter].popleft())
                        samples.append(sample)
                        if sample.error:
                            print(f"  sample {len(samples)}: {sample.sensor_id} FAILED: {sample.error}", flush=True)
                            if sum(1 for s in samples if s.error) >= 3:
                                print("  three failures: stopping", flush=True)
                                break
            except TimeoutError:
                print(f"  stopped: deadline ({TOTAL_DEADLINE_S:.0f} s, or {FREE_COPTER_DEADLINE_S:.0f} s "
                      "without a free copter)", flush=True)
            listen.cancel()
    finally:
        await bench.http.aclose()
    for line in bench.unexpected[:5]:
        print(f"  {line}")
    return samples


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def run(samples_wanted: int = 20) -> list[Sample]:
    """Start Mosquitto, then live systems (fleet simulator and service) one after another,
    until ``samples_wanted`` alarms are timed or the deadline passes."""
    from sitl.scenarios.yubei.generate import generate

    tmp = Path(tempfile.mkdtemp(prefix="yingji-bench-alarm-"))
    proc, broker = start_mosquitto(tmp)
    samples: list[Sample] = []
    deadline = time.monotonic() + TOTAL_DEADLINE_S
    try:
        folder = generate(tmp / "yubei")
        gauges = add_gauges(folder)
        per_system = sum(map(len, gauges.values()))
        print(f"alarm → mission: {per_system} extra gauges near {len(gauges)} copter bases, "
              f"loiter {LOITER_S:g} s, fleet sim sped up as in tests/fixtures_service.py", flush=True)
        system = 0
        while len(samples) < samples_wanted and time.monotonic() < deadline:
            system += 1
            started = time.monotonic()
            try:
                # Blocking start-up (polls with sleep) before any task runs: nothing else waits on the loop.
                live = start_live(broker, folder, tmp / f"live-{system}", loiter_s=LOITER_S)
            except AssertionError as err:  # start_live reports a dead or slow process this way
                print(f"  live system {system} did not come up:\n{err}")
                break
            try:
                print(f"  live system {system} up in {time.monotonic() - started:.1f} s", flush=True)
                wanted = min(samples_wanted - len(samples), per_system)
                batch = await measure(live, broker, gauges, wanted, deadline=deadline)
                samples.extend(batch)
                if any(s.error for s in batch):
                    print("--- service log (tail) ---")
                    print(_log_tail(live.data_dir / "service.log"))
                    print("--- fleet log (tail) ---")
                    print(_log_tail(live.data_dir / "fleet.log", 15))
                    break
            finally:
                live.service.stop()
                live.fleet.stop()
        report(samples)
    finally:
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return samples


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.alarm_to_mission [--samples N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench alarm")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)
    asyncio.run(run(args.samples))


if __name__ == "__main__":
    main()
