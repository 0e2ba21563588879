"""The live system for end-to-end tests: a private Mosquitto, the simulated fleet and the
real service, each its own process, talking over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import pytest_asyncio
import yaml

from command.runtime import Service
from command.settings import Settings

from tests.fixtures_mqtt import MosquittoInstance, free_port
from tests.fixtures_sim import free_udp_ports

FLEET_SPEEDUP = 20.0
DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
START_DEADLINE_S = 90.0  # the service starts in ~5 s; beside three browser tests rendering in software, 30+ s
# A rain gauge one kilometre from a copter base, in the same valley (synthetic Yubei).
RAIN_GAUGE = "rain-luoqi"


@pytest.fixture(scope="session")
def yubei_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic Yubei district, generated once per test session."""
    from sitl.scenarios.yubei.generate import generate

    return generate(tmp_path_factory.mktemp("yubei") / "district")


def district_copy(src: Path, dest: Path, *, signed: bool = False) -> Path:
    """A copy of the district whose fleet listens on free UDP ports (with MAVLink signing keys)."""
    shutil.copytree(src, dest)
    fleet = yaml.safe_load((dest / "fleet.yaml").read_text())
    for vehicle, port in zip(fleet["vehicles"], free_udp_ports(len(fleet["vehicles"])), strict=True):
        vehicle["url"] = f"udpin:127.0.0.1:{port}"
        if signed:
            vehicle["signing_key"] = os.urandom(32).hex()
    (dest / "fleet.yaml").write_text(yaml.safe_dump(fleet, allow_unicode=True))
    return dest


@dataclass
class Proc:
    """A child process we started, with its output in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def spawn(args: list[str], *, env: dict[str, str], log: Path) -> Proc:
    handle = log.open("ab")
    popen = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT,
                             cwd=Path(__file__).resolve().parents[1])
    handle.close()
    return Proc(popen, log)


def rainstorm_senml(sensor_id: str, *, total_mm: float = 60.0) -> str:
    """Six 10-minute rain reports in the last hour: total_mm in 1 h (orange: ≥ 50 mm in 3 h)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records: list[dict[str, Any]] = [
        {"n": "rain", "u": "mm", "v": total_mm / 6, "t": (now - timedelta(minutes=10 * k)).timestamp()}
        for k in range(5, -1, -1)]
    records[0]["bn"] = f"urn:dev:yingji:{sensor_id}:"
    return json.dumps(records)


@dataclass
class LiveService:
    base_url: str
    token: str
    broker_url: str
    data_dir: Path
    district_dir: Path
    env: dict[str, str]
    port: int
    service: Proc
    fleet: Proc
    incident_id: int | None = None
    logs: list[Path] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.token}"})

    def get(self, path: str) -> Any:
        with self.client() as c:
            r = c.get(path)
            r.raise_for_status()
            return r.json()

    def start_service(self) -> None:
        self.service = spawn([sys.executable, "-m", "command.cli", "serve", "--port", str(self.port)],
                             env=self.env, log=self.data_dir / "service.log")
        self.wait_until(lambda: self._health().get("mqtt") == "connected", "the service to connect to MQTT",
                        watch=(self.service,))

    def stop_service(self) -> int:
        return self.service.stop()

    def _health(self) -> dict[str, Any]:
        try:
            return self.get("/healthz")
        except httpx.HTTPError:
            return {}

    def wait_until(self, predicate: Any, what: str, *, timeout_s: float = START_DEADLINE_S,
                   watch: tuple[Proc, ...] | None = None) -> Any:
        """Poll ``predicate`` until it is truthy; fail early if a watched process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p in watch if watch is not None else (self.service, self.fleet):
                if p.popen.poll() is not None:
                    raise AssertionError(f"a process died while waiting for {what}:\n{p.output()}")
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n"
                             f"--- service log ---\n{self.service.output()}\n--- fleet log ---\n{self.fleet.output()}")

    def vehicles(self) -> dict[str, dict[str, Any]]:
        return {v["name"]: v for v in self.get("/api/vehicles")["vehicles"]}

    def publish(self, topic: str, payload: bytes | str) -> None:
        asyncio.run(_publish(self.broker_url, [(topic, payload)]))

    def publish_rainstorm(self, sensor_id: str = RAIN_GAUGE, *, total_mm: float = 60.0) -> None:
        self.publish(f"yingji/sensors/{sensor_id}/senml", rainstorm_senml(sensor_id, total_mm=total_mm))

    def wait_incident(self, sensor_id: str = RAIN_GAUGE) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for inc in self.get("/api/incidents")["incidents"]:
                if inc["sensor_id"] == sensor_id:
                    return inc
            return None

        return self.wait_until(found, f"an incident at {sensor_id}")


async def _publish(url: str, messages: list[tuple[str, bytes | str]]) -> None:
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V311) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def start_live(mosquitto: MosquittoInstance, folder: Path, tmp: Path, *, loiter_s: float = 10.0,
               signed: bool = False, speedup: float = FLEET_SPEEDUP, link_lost_s: float = 3.0) -> LiveService:
    district = district_copy(folder, tmp / "district", signed=signed)
    data = tmp / "data"
    data.mkdir()
    port = free_port()
    token = "test-token-" + os.urandom(6).hex()
    env = dict(os.environ,
               YINGJI_BROKER_URL=mosquitto.url, YINGJI_DATA_DIR=str(data), YINGJI_DISTRICT_DIR=str(district),
               YINGJI_API_TOKEN=token, YINGJI_PORT=str(port), YINGJI_LOITER_S=str(loiter_s),
               YINGJI_LINK_LOST_S=str(link_lost_s), PYTHONUNBUFFERED="1")
    fleet = spawn([sys.executable, "-m", "command.cli", "sim", "fleet", "--fleet", str(district / "fleet.yaml"),
                   "--speedup", str(speedup)], env=env, log=data / "fleet.log")
    live = LiveService(base_url=f"http://127.0.0.1:{port}", token=token, broker_url=mosquitto.url,
                       data_dir=data, district_dir=district, env=env, port=port, service=fleet, fleet=fleet)
    try:
        live.start_service()
        live.wait_until(lambda: all(v["state"] == "ready" and v["lon"] for v in live.vehicles().values()),
                        "every simulated vehicle to be heard, with a position")
    except BaseException:
        live.service.stop()
        fleet.stop()
        raise
    return live


@pytest_asyncio.fixture(loop_scope="function")
async def make_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path, sim_vehicle):
    """Factory: the service in this process with one simulated copter (UAV-1) answering."""
    started: list[asyncio.Task[None]] = []

    async def make(*, sim_options: dict | None = None, **settings_overrides: object) -> tuple[Service, object]:
        district = district_copy(yubei_folder, tmp_path / "district")
        settings = Settings(**{"broker_url": mosquitto.url, "data_dir": tmp_path / "data", "district_dir": district,
                               "api_token": "t", "loiter_s": 120.0, "link_lost_s": 3.0, **settings_overrides})
        service = Service(settings, district_dir=district)
        spec = service.vehicle_specs["UAV-1"]
        sim = await sim_vehicle(kind="copter", system_id=spec.system_id, home_lon=spec.base_lon,
                                home_lat=spec.base_lat, home_alt_amsl_m=spec.base_alt_m,
                                gcs_port=int(spec.url.rsplit(":", 1)[1]), speedup=20.0, ekf_ready_after_s=1.0,
                                cruise_speed_mps=spec.cruise_speed_mps, name="UAV-1", **(sim_options or {}))
        started.append(asyncio.create_task(service.run()))
        async with asyncio.timeout(DEADLINE_S):
            await service.ready.wait()
            while not service.fleet.states().get("UAV-1", {}).get("ekf_ok"):
                await asyncio.sleep(0.1)
        return service, sim

    try:
        yield make
    finally:
        for task in started:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
            if not done:  # a stop that hangs: show where every task is, then fail
                for other in asyncio.all_tasks():
                    other.print_stack(limit=8)
                pytest.fail(f"the service did not stop within {STOP_DEADLINE_S} s of being cancelled")
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def open_rain_incident(service: Service, broker_url: str) -> int:
    """Publish a rainstorm at the copter-side gauge; the id of the incident it opens, once it is orange.

    On a loaded machine the pack's readings may be assessed in more than one batch, so the incident
    can open at a lower level and rise (with more department tasks) a moment later: wait for orange.
    """
    from command.risk.rules import Level

    await _publish(broker_url, [(f"yingji/sensors/{RAIN_GAUGE}/senml", rainstorm_senml(RAIN_GAUGE))])
    async with asyncio.timeout(DEADLINE_S):
        while not (incidents := service.store.incidents()) or incidents[0].level < Level.ORANGE:
            await asyncio.sleep(0.05)
    return incidents[0].id


@pytest.fixture
def live_system(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path) -> Iterator[LiveService]:
    """Mosquitto, the simulated fleet and the service, with no incident yet."""
    live = start_live(mosquitto, yubei_folder, tmp_path)
    try:
        yield live
    finally:
        live.service.stop()
        live.fleet.stop()


@pytest.fixture
def live_service(live_system: LiveService) -> LiveService:
    """The live system with an open rainstorm incident near a copter base."""
    live_system.publish_rainstorm()
    live_system.incident_id = live_system.wait_incident()["id"]
    return live_system


@contextlib.asynccontextmanager
async def running_service(settings: Settings, folder: Path, clock: Any) -> AsyncIterator[Service]:
    """The service on ``folder`` with its own ``clock`` (e.g. a ManualClock), run in this event loop
    until the block ends; for tests that build the settings themselves."""
    service = Service(settings, district_dir=folder, clock=clock)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(DEADLINE_S):
            await service.ready.wait()
        yield service
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
        with contextlib.suppress(asyncio.CancelledError):
            await task
