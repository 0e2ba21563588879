"""Fixtures for the browser tests: the live system with an open rainstorm incident, with sign-in on
(people of tests/data/users_sample.yaml, each password "<id>-yubei-2025") or a GCJ-02 basemap."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import LiveService, start_live

USERS_FILE = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
AUTH_SECRET = "a-browser-test-signing-secret-32-chars!"


@contextlib.contextmanager
def rainstorm_live(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   *, env: dict[str, str], speedup: float | None = None) -> Iterator[LiveService]:
    """The live system started with ``env`` added to its environment (start_live hands the service a
    copy of this process's: for this test only), with an open rainstorm incident."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    live = start_live(mosquitto, yubei_folder, tmp_path, **({"speedup": speedup} if speedup is not None else {}))
    try:
        live.publish_rainstorm()
        live.incident_id = live.wait_incident()["id"]
        yield live
    finally:
        live.service.stop()
        live.fleet.stop()


SIGN_IN = {"YINGJI_USERS_FILE": str(USERS_FILE), "YINGJI_AUTH_SECRET": AUTH_SECRET}


@pytest.fixture
def signed_in_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    """The live system with sign-in on and an open rainstorm incident whose playbook tasks the departments."""
    with rainstorm_live(mosquitto, yubei_folder, tmp_path, monkeypatch, env=SIGN_IN) as live:
        yield live


@pytest.fixture
def gcj02_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    """The live system with its basemap declared GCJ-02 (YINGJI_TILE_CRS=gcj02, docs/basemap.md): the
    console converts what it draws, the service keeps WGS-84. An open rainstorm incident."""
    with rainstorm_live(mosquitto, yubei_folder, tmp_path, monkeypatch, env={"YINGJI_TILE_CRS": "gcj02"}) as live:
        yield live
