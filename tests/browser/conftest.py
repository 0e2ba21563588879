"""Fixtures for the browser tests that sign in as a person (the department view)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import LiveService, start_live

USERS_FILE = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
AUTH_SECRET = "a-browser-test-signing-secret-32-chars!"


@pytest.fixture
def signed_in_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    """The live system with sign-in on (tests/data/users_sample.yaml; each password is
    "<id>-yubei-2025") and an open rainstorm incident whose playbook tasks the departments."""
    # start_live hands the service a copy of this process's environment: the users file and the
    # token secret go in through it, for this test only.
    monkeypatch.setenv("YINGJI_USERS_FILE", str(USERS_FILE))
    monkeypatch.setenv("YINGJI_AUTH_SECRET", AUTH_SECRET)
    live = start_live(mosquitto, yubei_folder, tmp_path)
    try:
        live.publish_rainstorm()
        live.incident_id = live.wait_incident()["id"]
        yield live
    finally:
        live.service.stop()
        live.fleet.stop()


@pytest.fixture
def gcj02_service(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    """The live system with its basemap declared GCJ-02 (YINGJI_TILE_CRS=gcj02, docs/basemap.md): the
    console converts what it draws, the service keeps WGS-84. An open rainstorm incident."""
    monkeypatch.setenv("YINGJI_TILE_CRS", "gcj02")
    live = start_live(mosquitto, yubei_folder, tmp_path)
    try:
        live.publish_rainstorm()
        live.incident_id = live.wait_incident()["id"]
        yield live
    finally:
        live.service.stop()
        live.fleet.stop()
