"""Replay a scripted scenario through the service's own path, on a clock the replay steps.

Every registered sensor reports at its interval what the scenario script says (faults
included), as a SenML pack through ``Ingestor.check_pack`` (decode and per-reading QC) and
``Service.ingest_http`` (per-sensor QC, store, assessment, incidents) — the same code an MQTT
or HTTP message goes through, without the broker's wall-clock pacing, so days of scenario
run in seconds. Every ``periodic_s`` the replay also does what the service's background
tasks do: staleness, the risk map and the staged slope warnings.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from command.clock import ManualClock
from command.risk.rules import Level
from command.runtime import Service
from command.settings import Settings
from sensors.registry import Registry
from sensors.senml import NAME_PREFIX
from sitl.scenarios.devices import scenario_start
from sitl.scenarios.script import Scenario

EPOCH = datetime(2026, 7, 1, 0, 0, tzinfo=timezone.utc)


@dataclass
class Replay:
    service: Service
    start: datetime
    scenario: Scenario
    # (scenario hour, incident id, kind, level colour, verification state, sensors) at each change
    timeline: list[tuple[float, int, str, str, str, tuple[str, ...]]] = field(default_factory=list)
    # (scenario hour, incident id, kind, sensor, that sensor's own level) at each change
    members: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    health: list[tuple[float, str, str]] = field(default_factory=list)  # (hour, sensor, change)
    resolved: list[tuple[float, int, str]] = field(default_factory=list)  # (hour, incident id, kind)
    # (scenario hour, hotspot id, level colour, {driving hazard layer: its sensors}) at each map recompute
    hotspots: list[tuple[float, str, str, dict[str, tuple[str, ...]]]] = field(default_factory=list)

    def hour(self, t: datetime) -> float:
        return (t - self.start).total_seconds() / 3600.0

    def first(self, kind: str, sensor: str, level: str) -> float | None:
        """Scenario hour ``sensor``'s own say in an incident of ``kind`` first reached ``level`` or above."""
        order = ("none", "blue", "yellow", "orange", "red")
        for hour, _, k, s, colour in self.members:
            if k == kind and s == sensor and order.index(colour) >= order.index(level):
                return hour
        return None

    def confirmed(self, kind: str, sensor: str) -> float | None:
        for hour, _, k, _, state, sensors in self.timeline:
            if k == kind and sensor in sensors and state == "confirmed":
                return hour
        return None


def _pack(sensor_id: str, records: dict[str, float], units: dict[str, str], t: datetime) -> list[dict[str, Any]]:
    pack: list[dict[str, Any]] = []
    for i, (q, v) in enumerate(records.items()):
        rec: dict[str, Any] = {"n": q, "u": units[q], "v": v}
        if i == 0:
            rec.update(bn=f"{NAME_PREFIX}{sensor_id}:", bt=t.timestamp())
        pack.append(rec)
    return pack


def run(district: Path, name: str, data_dir: Path, *, hours: float | None = None, step_s: float = 60.0,
        periodic_s: float = 900.0, min_interval_s: float = 0.0, keep_kinds: tuple[str, ...] = (),
        only_until: tuple[float, tuple[str, ...]] | None = None) -> Replay:
    """Replay scenario ``name`` of ``district`` for ``hours`` (default: its duration).

    ``min_interval_s`` slows sensors that report more often (a long scenario's background
    gas detectors), to keep a week of scenario quick; the scripts' values are unchanged.
    Sensors of ``keep_kinds`` keep their own interval (those whose timing the scenario tests).
    ``only_until=(hour, kinds)``: before that scenario hour only sensors of those kinds report
    (a week of fire weather before a fire needs the weather stations only).
    """
    script = Scenario.from_yaml(district / "scenario.yaml", name)
    registry = Registry.from_geojson(district / "sensors.geojson")
    script.validate(registry)
    start = scenario_start(EPOCH, script.start_local_h)
    clock = ManualClock(start)
    settings = Settings(broker_url="mqtt://127.0.0.1:9", data_dir=data_dir, district_dir=district,
                        api_token="t")
    service = Service(settings, district_dir=district, clock=clock)
    replay = Replay(service, start, script)
    specs = [s for s in registry.values() if script.reports(s)]
    units = {s.sensor_id: {q: s.quantity_spec(q).unit for q in s.quantities} for s in specs}  # type: ignore[union-attr]
    due = {s.sensor_id: start for s in specs}
    # a sensor whose going quiet the scenario tests keeps its own interval too
    watched = {sid for h in script.expect.health for sid in h.sensors}
    intervals = {s.sensor_id: s.interval_s if s.kind in keep_kinds or s.sensor_id in watched
                 else max(s.interval_s, min_interval_s) for s in specs}
    for sid, interval in intervals.items():  # a slowed sensor is not stale for reporting as slowed
        service.sensing.health[sid].interval_s = interval
    end = start + timedelta(hours=hours if hours is not None else (script.duration_h or 12.0))
    seen: dict[Any, Any] = {}
    events = service.bus.subscribe(maxsize=100_000, kinds=frozenset(
        {"incident.opened", "incident.updated", "incident.verified"}))
    loop = asyncio.new_event_loop()
    try:
        quiet_until = (start + timedelta(hours=only_until[0]), only_until[1]) if only_until else None
        _steps(replay, service, script, specs, units, due, intervals, start, end, step_s, periodic_s, seen, events,
               loop, quiet_until)
    finally:
        loop.close()
    return replay


def _steps(replay: Replay, service: Service, script: Scenario, specs: list, units: dict, due: dict,
           intervals: dict, start: datetime, end: datetime, step_s: float, periodic_s: float, seen: dict, events: Any,
           loop: asyncio.AbstractEventLoop, quiet_until: tuple[datetime, tuple[str, ...]] | None) -> None:
    clock = service.clock
    next_periodic = next_risk = start
    t = start
    while t <= end:
        clock._now = t  # noqa: SLF001 — the replay owns this clock
        pack: list[dict[str, Any]] = []
        for spec in specs:
            if due[spec.sensor_id] > t:
                continue
            if quiet_until is not None and t < quiet_until[0] and spec.kind not in quiet_until[1]:
                due[spec.sensor_id] = quiet_until[0]
                continue
            due[spec.sensor_id] = t + timedelta(seconds=intervals[spec.sensor_id])
            records = script.records_at(spec, t, start=start)
            if records:
                pack += _pack(spec.sensor_id, records, units[spec.sensor_id], t)
        if pack:
            readings, _ = loop.run_until_complete(service.ingestor.check_pack(json.dumps(pack).encode()))
            if readings:
                service.ingest_http(readings)
        transitions = service.sensing.tick(t)  # the service checks staleness every second
        service._health_events(transitions)  # noqa: SLF001 — as its background task does
        for tr in transitions:
            replay.health.append((replay.hour(t), tr.sensor_id, tr.change))
        for incident_id in service.resolve_ended(t) if t >= next_periodic else ():
            replay.resolved.append((replay.hour(t), incident_id, service.store.incident(incident_id).kind))
        if t >= next_periodic:
            layers = service._layers_dirty or service._fire_stations_changed()  # noqa: SLF001
            if service._risk_dirty or layers:  # noqa: SLF001 — as its background task does
                rain = service._risk_dirty  # noqa: SLF001
                if service.risk_model is not None and t >= next_risk:  # the map, hourly (it is costly)
                    service._risk_dirty = False  # noqa: SLF001
                    service.recompute_risk()
                    next_risk = t + timedelta(hours=1)
                    for h in service.risk_state.hotspots if service.risk_state is not None else ():
                        drivers = {c.layer for c in h.why.hazards if c.share >= 0.05}
                        replay.hotspots.append((replay.hour(t), h.id, h.level.colour,
                                                {layer: tuple(h.sensors.get(layer, ())) for layer in drivers}))
                if rain:
                    service.stage_slopes()
            next_periodic = t + timedelta(seconds=periodic_s)
        changed = set()
        while not events.queue.empty():
            changed.add(events.queue.get_nowait().data["id"])
        for incident_id in sorted(changed):
            row = service.store.incident(incident_id)
            members = row.detail.get("members") or {}
            sensors = tuple(sorted({m.get("sensor_id", k) for k, m in members.items()}))
            order = ("none", "blue", "yellow", "orange", "red")
            own: dict[str, str] = {}
            for k, m in members.items():
                sid = m.get("sensor_id", k)
                if order.index(m["level"]) >= order.index(own.get(sid, "none")):
                    own[sid] = m["level"]
            for sid, colour in own.items():
                if seen.get((row.id, sid)) != colour:
                    seen[(row.id, sid)] = colour
                    replay.members.append((replay.hour(t), row.id, row.kind, sid, colour))
            key = (Level(row.level).colour, (row.detail.get("verification") or {}).get("state", ""), sensors)
            if seen.get(row.id) != key:
                seen[row.id] = key
                replay.timeline.append((replay.hour(t), row.id, row.kind, *key))
        t += timedelta(seconds=step_s)
