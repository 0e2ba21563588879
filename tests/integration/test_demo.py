"""`yingji demo` as a new user runs it: no broker at the configured URL, so the embedded
amqtt broker starts; simulated sensors and vehicles come up and the console is served."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures_mqtt import free_port
from tests.fixtures_service import district_copy, spawn

DEADLINE_S = 150.0  # a deadline for slow machines: the first run also hashes the demo people's passwords


def test_demo_runs_the_whole_system_on_the_embedded_broker(yubei_folder: Path, tmp_path: Path) -> None:
    district = district_copy(yubei_folder, tmp_path / "district")  # its fleet on free UDP ports
    http_port, mqtt_port = free_port(), free_port()
    env = dict(os.environ, YINGJI_DATA_DIR=str(tmp_path / "data"), YINGJI_DISTRICT_DIR=str(district),
               YINGJI_BROKER_URL=f"mqtt://127.0.0.1:{mqtt_port}", YINGJI_PORT=str(http_port), PYTHONUNBUFFERED="1")
    demo = spawn([sys.executable, "-m", "command.cli", "demo", "--speed", "600", "--fleet-speedup", "20"],
                 env=env, log=tmp_path / "demo.log")
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + DEADLINE_S
        ready = False
        while time.monotonic() < deadline and not ready:
            assert demo.popen.poll() is None, demo.output()
            time.sleep(0.5)
            try:
                sensors = httpx.get(base + "/api/sensors").json()["features"]
                vehicles = httpx.get(base + "/api/vehicles").json()["vehicles"]
            except httpx.HTTPError:
                continue
            ready = (all(f["properties"]["latest"] for f in sensors)
                     and all(v["state"] == "ready" for v in vehicles))
        assert ready, f"the demo did not come up within {DEADLINE_S} s:\n{demo.output()}"
        out = demo.log.read_text(errors="replace")  # the whole log: its first lines name the broker
        assert "started the embedded amqtt broker" in out
        assert f"Yingji console: http://127.0.0.1:{http_port}/#token=" in out
        assert all(f["properties"]["status"] == "online" for f in sensors)
        assert sorted((v["type"], v["name"]) for v in vehicles) == [
            ("boat", "USV-1"), ("boat", "USV-2"), ("copter", "UAV-1"), ("copter", "UAV-2"), ("copter", "UAV-3"),
            ("copter", "UAV-4")]
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "maplibre" in page.text.lower()
        assert httpx.get(base + "/vendor/maplibre-gl/maplibre-gl.mjs").status_code == 200
        # one person per role to sign in as, printed with the department view and the crew app
        assert f"Department view: http://127.0.0.1:{http_port}/department" in out
        line = next(ln for ln in out.splitlines() if ln.strip().startswith("fire "))
        fire_password = line.split()[1]
        signed = httpx.post(base + "/api/auth/sign-in", json={"user": "fire", "password": fire_password})
        assert signed.status_code == 200, signed.text
        assert signed.json()["user"]["department"] == "fire"
        assert httpx.get(base + "/department").status_code == httpx.get(base + "/crew").status_code == 200
        hashes = (tmp_path / "data" / "demo-users.yaml").read_text()
        assert fire_password not in hashes and "$argon2id$" in hashes
        assert oct((tmp_path / "data" / "demo-passwords.json").stat().st_mode & 0o777) == "0o600"
    finally:
        assert demo.stop() in (0, -15, -2), demo.output()
