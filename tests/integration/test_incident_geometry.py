"""One incident per phenomenon as it moves: incidents merge when their sensors come to link
and split when they no longer do — through the service's own ingest, QC, store and events,
on a stepped clock (SQLite file, no broker needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from command.clock import ManualClock
from command.incidents import link_groups
from command.runtime import Service
from command.settings import Settings
from sensors.model import Reading
from sitl.scenarios.yubei.generate import generate

START = datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc)
# Rain gauges of the synthetic district: Longxing lies 8.9 km from Luoqi and 8.0 km from the
# Yufengshan slope gauge, which are 14.4 km apart (the rainstorm join radius is 10 km).
LUOQI, SLOPE, LONGXING = "rain-luoqi", "rain-yufengshan-slope", "rain-longxing"


def test_link_groups() -> None:
    near = {("a", "b"), ("b", "c"), ("d", "e")}
    groups = link_groups(["a", "d", "c", "b", "e", "f"], lambda x, y: (x, y) in near or (y, x) in near)
    assert groups == [["a", "c", "b"], ["d", "e"], ["f"]]
    assert link_groups([], lambda x, y: True) == []


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("geometry") / "district")


def storm(service: Service, clock: ManualClock, sensor_id: str, per_10min_mm: float, *, reports: int = 6) -> None:
    """``reports`` ten-minute rain reports ending now (60 mm in the hour: orange)."""
    now = clock.now()
    readings = [Reading(sensor_id, "rain", per_10min_mm, "mm", now - timedelta(minutes=10 * k))
                for k in range(reports - 1, -1, -1)]
    service.ingest_http(readings)


def rainstorms(service: Service) -> list[Any]:
    return [r for r in service.store.incidents() if r.kind == "rainstorm"]


def test_incidents_merge_when_linked_and_split_when_apart(district: Path, tmp_path: Path) -> None:
    clock = ManualClock(START)
    settings = Settings(broker_url="mqtt://127.0.0.1:9", data_dir=tmp_path, district_dir=district, api_token="t")
    service = Service(settings, district_dir=district, clock=clock)
    events = service.bus.subscribe(maxsize=10_000, kinds=frozenset({"incident.opened", "incident.resolved"}))

    # two storms 14 km apart: two incidents
    storm(service, clock, LUOQI, 10.0)
    storm(service, clock, SLOPE, 10.0)
    first, second = rainstorms(service)
    assert first.detail["members"].keys() == {LUOQI} and second.detail["members"].keys() == {SLOPE}

    # rain between them, at Longxing: it joins the nearer (the slope's) and links both: one incident
    clock._now += timedelta(minutes=10)  # noqa: SLF001 — the test owns this clock
    storm(service, clock, LONGXING, 10.0)
    merged, gone = (service.store.incident(first.id), service.store.incident(second.id))
    assert gone.status == "closed" and gone.detail["merged_into"] == first.id
    assert "merged into incident" in gone.detail["closed_reason"]
    assert merged.status == "open" and set(merged.detail["members"]) == {LUOQI, SLOPE, LONGXING}
    assert merged.detail["merged"][0]["from"] == second.id
    assert merged.detail["verification"]["state"] == "confirmed"  # three gauges with good data
    assert {service._open[("rainstorm", s)] for s in (LUOQI, SLOPE, LONGXING)} == {first.id}  # noqa: SLF001

    # thirteen hours on: Longxing has dried up (no rainstorm signal left), the two ends rain
    # again; with nothing between them they are two storms: the incident splits
    clock._now += timedelta(hours=13)  # noqa: SLF001
    storm(service, clock, LONGXING, 0.0)
    storm(service, clock, LUOQI, 10.0)
    storm(service, clock, SLOPE, 14.0)  # the heavier one (84 mm in the hour: orange, nearer red)
    kept = service.store.incident(first.id)
    new = [r for r in rainstorms(service) if r.id not in (first.id, second.id)]
    assert len(new) == 1, [(r.id, r.status, list(r.detail.get("members", {}))) for r in rainstorms(service)]
    split = new[0]
    assert split.status == "open" and split.detail["split_from"] == first.id
    stays = {k for k, m in kept.detail["members"].items()}
    moved = set(split.detail["members"])
    assert stays.isdisjoint(moved) and stays | moved == {LUOQI, SLOPE, LONGXING}
    assert len(moved & {LUOQI, SLOPE}) == 1 and len(stays & {LUOQI, SLOPE}) == 1
    assert kept.detail["split"][0]["into"] == split.id
    assert split.detail["split_reason"].startswith(f"Split from incident #{first.id}: {next(iter(moved))}")
    assert split.detail["verification"]["state"] == "unverified"  # one gauge alone again
    moved_sensor = next(iter(moved))
    assert service._open[("rainstorm", moved_sensor)] == split.id  # noqa: SLF001 — its next readings go there

    # the split incident is a new phenomenon: departments get its tasks; events tell the console
    assert service.store.tasks(incident_id=split.id)
    kinds = []
    while not events.queue.empty():
        e = events.queue.get_nowait()
        kinds.append((e.kind, e.data["id"]))
    assert ("incident.resolved", second.id) in kinds and ("incident.opened", split.id) in kinds

    # the split incident's next reading stays with it
    clock._now += timedelta(minutes=10)  # noqa: SLF001
    storm(service, clock, moved_sensor, 10.0, reports=1)
    assert set(service.store.incident(split.id).detail["members"]) == moved


def test_a_dispatched_incident_is_not_closed_by_a_merge(district: Path, tmp_path: Path) -> None:
    clock = ManualClock(START)
    settings = Settings(broker_url="mqtt://127.0.0.1:9", data_dir=tmp_path, district_dir=district, api_token="t")
    service = Service(settings, district_dir=district, clock=clock)
    storm(service, clock, LUOQI, 10.0)
    storm(service, clock, SLOPE, 10.0)
    first, second = rainstorms(service)
    service.store.update_incident(second.id, status="dispatched")  # a drone is flying for the younger one
    clock._now += timedelta(minutes=10)  # noqa: SLF001
    storm(service, clock, LONGXING, 10.0)
    kept, gone = service.store.incident(second.id), service.store.incident(first.id)
    assert kept.status == "dispatched" and gone.status == "closed" and gone.detail["merged_into"] == second.id
    assert set(kept.detail["members"]) == {LUOQI, SLOPE, LONGXING}
