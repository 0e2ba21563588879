"""Pytest fixtures: a private Mosquitto on a free loopback port, from deploy/mosquitto/yingji.conf."""

from __future__ import annotations

import getpass
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = Path("/usr/sbin/mosquitto")
TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "yingji.conf"
START_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class MosquittoInstance:
    """A running private Mosquitto."""

    host: str
    port: int
    pid: int
    conf: Path
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, below the ephemeral range (``tests.fixtures_sim.free_ports``)."""
    from tests.fixtures_sim import free_ports

    return free_ports(1, socket.SOCK_STREAM)[0]


def write_conf(directory: Path, port: int, *, template: Path = TEMPLATE) -> Path:
    """Render the project's Mosquitto template (or another with its placeholders) for ``port`` into ``directory``."""
    text = string.Template(template.read_text()).substitute(
        YINGJI_MQTT_PORT=str(port),
        YINGJI_MQTT_USER=getpass.getuser(),  # stay who we are: nothing to drop to
    )
    conf = directory / f"mosquitto-{port}.conf"
    conf.write_text(text)
    return conf


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_mosquitto(directory: Path, *, attempts: int = 3,
                    template: Path = TEMPLATE) -> tuple[subprocess.Popen[bytes], MosquittoInstance]:
    """Start Mosquitto on a free port from ``template``; retry on a lost race for the port."""
    if not MOSQUITTO.exists():
        pytest.fail(f"{MOSQUITTO} is missing: install Debian's mosquitto package (`make test` does)", pytrace=False)
    host = "127.0.0.1"
    last_log = ""
    for _ in range(attempts):
        port = free_port(host)
        conf = write_conf(directory, port, template=template)
        log_path = directory / f"mosquitto-{port}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline and proc.poll() is None:
            if _accepts(host, port):
                return proc, MosquittoInstance(host=host, port=port, pid=proc.pid, conf=conf, log=log_path)
            time.sleep(0.05)
        stop_process(proc)
        last_log = log_path.read_text(errors="replace")
    pytest.fail(f"mosquitto did not start after {attempts} attempts; last log:\n{last_log}", pytrace=False)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process we started (by its PID), then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoInstance]:
    """A private Mosquitto for one test (``.host``, ``.port``, ``.url``).

    Each test gets its own (it starts in about 50 ms): retained statuses and wills that one
    test's devices leave on the broker never reach the next test, whichever order the tests
    run in.
    """
    proc, instance = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield instance
    finally:
        stop_process(proc)


@pytest.fixture
def mqtt_url(mosquitto: MosquittoInstance) -> str:
    """URL of the test's private Mosquitto."""
    return mosquitto.url
