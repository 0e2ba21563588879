"""Each scripted scenario, replayed through the service, opens exactly the incidents it states,
at the right levels, within the stated time — and its faulty sensors cause nothing they must not.

The expectations are data in the scenario file (``expect``), computed by the scenario generator
from the script and the published thresholds; ``tests/scenario_replay.py`` drives the
service's own ingest, QC, assessment and incident code on a stepped clock.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sitl.scenarios.yubei.generate import generate
from tests import scenario_replay
from tests.scenario_replay import Replay

ORDER = ("none", "blue", "yellow", "orange", "red")
TOLERANCE_H = 0.05  # replay step (1 min) and report phase


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("scenario-district") / "district")


def check(replay: Replay) -> None:
    expect = replay.scenario.expect
    problems: list[str] = []
    # every stated incident, at its level, in time (and not before its trigger)
    for e in expect.incidents:
        if e.level is None:
            continue
        first = min((h for h in (replay.first(e.kind, s, e.level) for s in e.sensors) if h is not None),
                    default=None)
        if first is None:
            problems.append(f"{e.kind} {e.level} at {e.sensors} never shown (due by {e.deadline_h:.2f} h)")
        elif not e.after_h - TOLERANCE_H <= first <= e.deadline_h + TOLERANCE_H:
            problems.append(f"{e.kind} {e.level} at {e.sensors}: shown at {first:.2f} h, expected in "
                            f"[{e.after_h:.2f}, {e.deadline_h:.2f}] h")
        if e.confirmed_after_h is not None:
            confirmed = min((h for h in (replay.confirmed(e.kind, s) for s in e.sensors) if h is not None),
                            default=None)
            due = e.confirmed_after_h + e.within_min / 60.0 + TOLERANCE_H
            if confirmed is None or confirmed > due:
                problems.append(f"{e.kind} at {e.sensors}: confirmed at {confirmed}, due by {due:.2f} h")
    # nothing else: every incident rests on a sensor some expectation of its kind names, or on a
    # faulty sensor allowed (at most) an unverified incident
    named = {(e.kind, s) for e in expect.incidents for s in e.sensors}
    tolerated = {s for q in expect.quiet if q.at_most == "unverified" for s in q.sensors}
    final: dict[int, tuple[str, str, str, tuple[str, ...]]] = {}
    for _, incident_id, kind, level, state, sensors in replay.timeline:
        final[incident_id] = (kind, level, state, sensors)
        if not any((kind, s) in named for s in sensors):
            if not (set(sensors) <= tolerated and state != "confirmed"):
                problems.append(f"unexpected {kind} incident #{incident_id} ({level}, {state}) from {sensors}")
    # one incident per phenomenon: no more incidents of a kind than its groups of named sensors
    for kind in {e.kind for e in expect.incidents}:
        groups: list[set[str]] = []
        for e in (e for e in expect.incidents if e.kind == kind):
            hit = [g for g in groups if g & set(e.sensors)]
            groups = [g for g in groups if g not in hit] + [set(e.sensors).union(*hit)]
        opened = {i for i, (k, _, _, sensors) in final.items() if k == kind and any((kind, s) in named for s in sensors)}
        if len(opened) > len(groups):
            problems.append(f"{kind}: {len(opened)} incidents for {len(groups)} phenomena")
    # faulty sensors: a dead or spiking one causes nothing; a stuck one at most an unverified incident
    for q in expect.quiet:
        for incident_id, (kind, level, state, sensors) in final.items():
            if q.kinds and kind not in q.kinds:
                continue
            alone = set(sensors) <= set(q.sensors)
            if alone and q.at_most == "none":
                problems.append(f"{q.fault} sensor {q.sensors} alone opened {kind} #{incident_id}")
            if alone and q.at_most == "unverified" and any(
                    st == "confirmed" for _, i, _, _, st, _ in replay.timeline if i == incident_id):
                problems.append(f"{q.fault} sensor {q.sensors} alone confirmed {kind} #{incident_id}")
    # health: a dead sensor goes stale in time
    for h in expect.health:
        for sid in h.sensors:
            when = next((t for t, s, change in replay.health if s == sid and change == h.state), None)
            due = h.after_h + h.within_min / 60.0 + TOLERANCE_H
            if when is None or when > due:
                problems.append(f"{sid} {h.state} at {when}, due by {due:.2f} h")
    assert not problems, "\n".join(problems)


# Sensors whose timing a scenario tests report at their own interval; the others (background
# gas detectors every minute, quiet gauges) at most every `slow` seconds, to keep the replay quick.
PACE = {"summer_flood": (300.0, ("river_level", "rain_gauge")),
        "chemical_leak": (300.0, ("gas_detector", "weather_station")),
        "rainstorm_landslide": (300.0, ("rain_gauge", "gnss_displacement", "crack_meter"))}


# The hazard layer each scenario must put on the risk map, as a driver of a hotspot (where
# people are), with the sensor that made it among the hotspot's sensors.
ON_MAP = {"summer_flood": ("flood", "yulin-level"), "chemical_leak": ("chemical", "gas-luoqi-chem-"),
          "rainstorm_landslide": ("landslide_rain", "rain-yufengshan-slope")}


def check_map(replay: Replay, layer: str, sensor: str) -> None:
    drivers = [(hour, hid, level, sensors) for hour, hid, level, drv in replay.hotspots
               for name, sensors in drv.items() if name == layer]
    assert drivers, f"no hotspot driven by {layer}; hotspots: {sorted({h[1] for h in replay.hotspots})}"
    assert any(s.startswith(sensor) for *_, sensors in drivers for s in sensors), drivers


@pytest.mark.parametrize("name", ["summer_flood", "chemical_leak", "rainstorm_landslide"])
def test_scenario_opens_exactly_its_incidents(name: str, district: Path, tmp_path: Path) -> None:
    slow, keep = PACE[name]
    replay = scenario_replay.run(district, name, tmp_path, min_interval_s=slow, keep_kinds=keep)
    assert replay.timeline, "the scenario opened nothing"
    check(replay)
    check_map(replay, *ON_MAP[name])
    if name == "chemical_leak":
        # isolated at hour 5: once every detector has been quiet for two hours, the incident closes
        assert [(kind, 7.0 <= hour <= 8.0) for hour, _, kind in replay.resolved] == [("chemical_leak", True)]
    if name == "summer_flood":
        assert replay.resolved == []  # the rivers are still high at the end


def test_heatwave_fire_ratings_and_fire(district: Path, tmp_path: Path) -> None:
    # eight days: the weather stations report all along (every 15 min: their noon readings stay
    # within the hour the fire-weather codes need); every other sensor joins on day 7, before the
    # fire (hour 182.6), so the faulty smoke detector's spikes are checked on its last days only
    replay = scenario_replay.run(district, "heatwave_fire", tmp_path, min_interval_s=900.0, step_s=300.0,
                                 keep_kinds=("smoke_detector", "flame_sensor", "fire_camera"),
                                 only_until=(160.0, ("weather_station",)))
    check(replay)
    days = {d.day: d for st in replay.service.hazards._stations.values()  # noqa: SLF001 — the test reads state
            for d in st.days.values() if st.spec.sensor_id == "wx-tongluo-ridge"}
    first_day = min(days)
    for r in replay.scenario.expect.ratings:
        day = days.get(first_day + timedelta(days=r.day))
        assert day is not None, f"no fire weather for day {r.day}"
        assert day.danger.label.replace(" ", "_") == r.rating.replace(" ", "_"), (r.day, day.danger.label, r.rating)
    # the map: the fire weather over the ridge forest, then the fire itself with its detectors
    check_map(replay, "fire", "wx-tongluo-ridge")
    check_map(replay, "fire", "flame-tongluo-1")
