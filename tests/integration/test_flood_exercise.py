"""The flood exercise: an orange flood of the Yulin River at Longxing, met by the whole synthetic fleet —
four copters and two boats — through the running system (Mosquitto, the simulated fleet over MAVLink,
the service over HTTP). Every task the flood calls for is proposed, approved with a pilot in command,
flown and followed home; afterwards no vehicle went below its battery reserve, no fence was breached,
and the boats never left the water."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import Point, shape

from command.dispatch.allocation import DEFAULT_RESERVE_PCT
from command.district import District
from sensors.registry import Registry
from tests.fixtures_mqtt import MosquittoInstance
from tests.fixtures_service import LiveService, start_live

# Fast enough to fly a boat survey of a few kilometres in about a minute of wall time, slow enough for
# the simulator's physics step (0.5 s of wall time at most per tick) and the service's link timers.
SPEEDUP = 60.0
EXERCISE_DEADLINE_S = 300.0
# Six simulated vehicles at 60× on two shared cores can miss a heartbeat or two of wall time when
# the machine is busy: the exercise is about the plans, not link-loss handling (tested elsewhere).
LINK_LOST_S = 15.0


@pytest.fixture
def exercise(mosquitto: MosquittoInstance, yubei_folder: Path, tmp_path: Path):
    live = start_live(mosquitto, yubei_folder, tmp_path, speedup=SPEEDUP, link_lost_s=LINK_LOST_S)
    try:
        yield live
    finally:
        live.service.stop()
        live.fleet.stop()


def _senml(sensor_id: str, records: list[dict[str, Any]]) -> str:
    records[0] = {"bn": f"urn:dev:yingji:{sensor_id}:", "bt": time.time(), **records[0]}
    return json.dumps(records)


def test_a_fleet_of_four_copters_and_two_boats_covers_an_orange_flood(exercise: LiveService) -> None:
    live = exercise
    district = District.load(live.district_dir)
    assert sorted(v.type for v in district.fleet) == ["boat", "boat", "copter", "copter", "copter", "copter"]
    gauge = Registry.from_geojson(district.sensors_path)["yulin-level"]
    # calm weather at the valley stations (the launch check reads the nearest one)
    for station in ("wx-muer-valley", "wx-luoqi-valley"):
        live.publish(f"yingji/sensors/{station}/senml", _senml(station, [
            {"n": "wind_speed", "u": "m/s", "v": 2.5}, {"n": "temp", "u": "Cel", "v": 27.0},
            {"n": "rain", "u": "mm", "v": 0.0}]))
    level = gauge.thresholds["guaranteed_m"] + 0.5  # above the guaranteed level: orange
    # the radar gauge measures the surface current too: the boats' legs upstream must beat it
    live.publish("yingji/sensors/yulin-level/senml", _senml("yulin-level", [
        {"n": "level", "u": "m", "v": level}, {"n": "velocity", "u": "m/s", "v": 1.4}]))

    def flooded() -> dict[str, Any] | None:
        for inc in live.get("/api/incidents")["incidents"]:
            if inc["sensor_id"] == "yulin-level" and inc["level"] == "orange":
                full = live.get(f"/api/incidents/{inc['id']}")
                if any((m.get("extent") or {}).get("geometry") for m in full["model"].values()):
                    return full
        return None

    incident = live.wait_until(flooded, "an orange flood incident with its extent at Longxing")
    for station in ("wx-muer-valley", "wx-luoqi-valley"):
        live.wait_until(lambda s=station: live.get(f"/api/sensors/{s}/readings")["readings"] or None,
                        f"{station}'s reading")

    with live.client() as http:
        http.timeout = httpx.Timeout(60.0)  # planning six vehicles against every task and split takes seconds
        proposed = http.post(f"/api/incidents/{incident['id']}/plans", json={"by": "dispatcher-zhao"})
        assert proposed.status_code == 201, proposed.text
        plans = proposed.json()["plans"]
        refused = [(p["task_key"], p["proposal"].get("reasons")) for p in plans if p["state"] != "proposed"]
        assert refused == []
        by_task = {p["task_key"]: p["vehicle"] for p in plans}
        # the boat survey (over an hour for one boat) shared by both boats; the thermal search of the
        # flooded ground by the copter based beside it; the waterline by another (UAV-3, 17 km away at
        # Tongjing, cannot search here and come back above its reserve)
        assert sorted(by_task) == ["boat-survey-1of2", "boat-survey-2of2", "edge-search", "flood-search"], by_task
        assert sorted(by_task[k] for k in ("boat-survey-1of2", "boat-survey-2of2")) == ["USV-1", "USV-2"]
        assert by_task["flood-search"] == "UAV-2" and by_task["edge-search"] in ("UAV-1", "UAV-4")
        for p in plans:
            if p["vehicle"].startswith("USV"):  # planned against the measured current, through passable bridges
                checks = p["proposal"]["checks"]
                assert "current: up to 1.4 m/s on the way, every leg makes headway" in checks, checks
                assert any(c.startswith("bridges: ") and "too low" not in c for c in checks), checks
        for p in plans:
            assert p["proposal"]["battery_at_landing_pct"] >= DEFAULT_RESERVE_PCT, p
            approved = http.post(f"/api/plans/{p['id']}/approve", json={"by": "dispatcher-zhao", "pilot": "Pilot Li"})
            assert approved.status_code == 202, approved.text

    def all_home() -> list[dict[str, Any]] | None:
        rows = [live.get(f"/api/plans/{p['id']}") for p in plans]
        failed = [(r["task_key"], r["error"]) for r in rows if r["state"] == "failed"]
        assert not failed, failed
        return rows if all(r["state"] == "landed" for r in rows) else None

    done = live.wait_until(all_home, "every plan of the exercise to land", timeout_s=EXERCISE_DEADLINE_S)
    for row in done:
        progress = row["progress"]
        assert progress["reached"] is True, row["task_key"]
        if row["task_key"] != "edge-search":  # a line, not an area
            # what a search saw of its area, from the flown track and the swath (sampled: a little under the plan)
            assert progress.get("coverage", 0.0) >= 0.8, (row["task_key"], progress)

    # nobody below the reserve, no fence breached, every vehicle disarmed at home
    for name in sorted(by_task.values()):
        track = live.get(f"/api/vehicles/{name}/track?limit=20000")["track"]
        flown = [t for t in track if t["armed"]]
        assert flown, name
        planned = min(p["proposal"]["battery_at_landing_pct"] for p in plans if p["vehicle"] == name)
        lowest = min(t["battery_pct"] for t in flown)
        assert lowest >= DEFAULT_RESERVE_PCT, (name, lowest, planned)
        assert live.vehicles()[name]["armed"] is False
    texts = [e for e in live.get("/api/events?limit=5000")["events"] if e["kind"] == "vehicle.statustext"]
    assert not [e for e in texts if "fence" in json.dumps(e["data"]).lower()], texts

    # the boats stayed on water: the river or the flooded ground deep enough for them
    extent = next(m["extent"] for m in incident["model"].values() if m.get("extent"))
    water = shapely.union_all([district.water, shape(extent["boat_geometry"])]).buffer(0.0001)  # ~10 m of GNSS
    for name in ("USV-1", "USV-2"):
        points = [Point(t["lon"], t["lat"]) for t in live.get(f"/api/vehicles/{name}/track?limit=20000")["track"]]
        ashore = [p for p in points if not water.covers(p)]
        assert len(points) > 20 and not ashore, (name, len(points), ashore[:5])
