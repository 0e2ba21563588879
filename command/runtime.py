"""The service: wires sensing, risk, incidents, dispatch, linkage, store and live events.

One ``asyncio.TaskGroup`` (opened in ``Service.run``) owns every background task: the MQTT
session (ingest and outgoing publishes), the fleet, and each dispatched flight's tracker.
Cancelling ``run`` shuts all of it down.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import logging
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from sensors.aio import raise_if_cancelling
from sensors.ingest import Ingestor
from sensors.model import Reading, Rejection
from sensors.mqtturl import parse_mqtt_url
from sensors.registry import Registry, SensorSpec
from sensors.sl651 import Sl651Mapping
from sensors.sl651_gateway import Sl651Gateway
from sensors.topics import command_topic
from uav.control import NotInControl
from uav.errors import LogNotFound, UavError, VehicleError
from uav.fleet import Fleet, FleetEntry
from uav.preflight import preflight
from uav.telemetry import Telemetry
from uav.vehicle import Vehicle

from .clock import Clock, SystemClock
from .dispatch.allocation import DEFAULT_RESERVE_PCT, Candidate, choose_vehicle
from .dispatch.approvals import approval_check, require_grants
from .dispatch.energy import EnergyModel, must_turn_back
from .dispatch.envelope import mission_fence
from .dispatch.errors import PlanRefused
from .dispatch.geometry import ground_distance_m, path_length_m
from .dispatch.mission import MissionPlan, plan_recon
from .district import District
from .events import EventBus
from .floodmap import FloodMapper
from .forecasts import ForecastError, RainForecast, observed_at, stage_slope
from .grants import AirspaceGrants
from .hazardmap import HazardMap, district_risk_model
from .traffic_watch import TrafficWatch
from .hazards import LOCAL, HazardWatch
from .incidents import (
    Member,
    OpenIncident,
    Status,
    aggregate_level,
    decide,
    hysteresis,
    link_groups,
    transition,
    verification,
)
from .official import CapError, parse_cap
from .alerts import Alerts
from .crews import Crews
from .evacuation import Evacuation
from .incident_life import IncidentLife
from .linkage_service import Linkage
from .plans import TaskPlans
from .tak import run_tak
from .reporting import HttpJsonReporter, ReporterStats, run_reporter
from .risk import chemical
from .risk.assess import ASSESSED, assess
from .risk.hotspots import HotspotParams
from .risk.layers import FireStation
from .risk.riskmap import RiskModel, RiskState
from .risk.riskmap import compute as risk_compute
from .risk.rules import Assessment, Level
from .sensing import MaintenanceWindow, Sensing, reading_wire
from .settings import Settings
from .store import AlreadyDispatched, NotFound, Store
from .store.leases import SqlLeases
from .store.models import DispatchRow, FlightRow, IncidentRow, PlanRow
from .store.writer import ReadingWriter

log = logging.getLogger("command.runtime")

RAIN_WINDOW = timedelta(hours=24)  # rainstorm signals use 3/6/12 h (CMA Order No. 16); slopes 1..24 h
SLOPE_WINDOWS_H = (1.0, 3.0, 6.0, 12.0, 24.0)  # rain durations a slope's I-D threshold is checked over
# How much of a record's history its model reads: the trend of a river level (hours), a
# slope's displacement since its constant-velocity stage (Xu et al.'s v0 needs weeks).
SERIES_SPAN = {"level": timedelta(hours=6), "horizontal": timedelta(days=30), "opening": timedelta(days=30)}
EVIDENCE_KEEP = 20
# A sensor's crossing joins an open incident of the same kind this close (one incident per
# phenomenon): a rainstorm cell covers ~10 km; gauges on one river reach share its flood.
JOIN_RADIUS_M = {"rainstorm": 10_000.0, "flood": 30_000.0, "landslide": 1_000.0, "chemical_leak": 2_000.0,
                 "fire": 1_000.0}
PLUME_EVERY = timedelta(minutes=5)
# Incidents regrouped by geometry (split and merged): those placed by their sensors. A fire is
# placed where its detections cross, not where its detectors stand.
REGROUP_KINDS = frozenset({"rainstorm", "flood", "landslide", "chemical_leak"})
SPLIT_NAMES = {"rainstorm": ("Rainstorm", "暴雨"), "flood": ("River level", "水位"),
               "landslide": ("Slope movement", "边坡变形"), "chemical_leak": ("Gas leak", "气体泄漏")}
HAZARD_LAYER_KINDS = frozenset({"flood", "landslide", "fire", "chemical_leak"})  # incidents the risk map draws
EXTENT_EVERY = timedelta(minutes=10)  # a flood extent is redrawn this often, or when the level moves 0.1 m
COMMAND_ACK = timedelta(seconds=30)  # a station answers a siren/light command within this (service time)  # a gas alarm's plume is recomputed at most this often per detector
TRACK_PERIOD_S = 2.0
DISPATCH_ACTIVE = ("planning", "uploading", "flying", "returning")
PLAN_ACTIVE = ("approved", "uploading", "flying", "returning")  # one per incident task at a time
CHARGED_PCT = 95.0  # a vehicle at its base below this shows as charging
PROGRESS_EVERY_S = 5.0  # a flying plan's progress (along the mission, coverage) is written this often


@dataclass(frozen=True, slots=True)
class Sortie:
    """What a flight is for: an incident's own dispatch, or one of its task plans."""

    incident_id: int
    plan_id: int | None = None


@dataclass(slots=True)
class Follow:
    """The live follow-up of a flying plan: where it is along its mission and what a search has seen."""

    target: tuple[float, float]  # the task's first point
    area_m: BaseGeometry | None  # what a search must see, metres (UTM)
    swath_m: float | None
    home: tuple[float, float] | None = None
    energy: EnergyModel | None = None  # for the live recall
    seen_xy: list[tuple[float, float]] = field(default_factory=list)
    reached: bool = False
    written_at: float = 0.0
FENCE_ALT_MARGIN_M = 30.0
OUTBOX_WINDOW = 10  # QoS 1 messages handed to the MQTT client at once (aiomqtt warns beyond 10 pending, paho
# keeps 20 in flight)
LOG_DOWNLOAD_TIMEOUT_S = 300.0  # the altitude fence sits this far above the mission's cruise height


class ServiceError(Exception):
    """Base of errors the service reports to its callers (the API maps them to HTTP)."""


class Conflict(ServiceError):
    """The request contradicts the current state (HTTP 409)."""


class Refused(ServiceError):
    """The request is understood but unsafe or impossible (HTTP 422)."""


class Unavailable(ServiceError):
    """The service is not ready for this yet (HTTP 503)."""


@dataclass(slots=True)
class Metrics:
    incidents_opened: int = 0
    dispatches: dict[str, int] = field(default_factory=dict)
    mqtt_published: int = 0
    flagged: dict[tuple[str, str], int] = field(default_factory=dict)  # (flag, check) → readings
    risk_compute_ms: float = 0.0
    mqtt_publish_dropped: int = 0


class Service(TaskPlans, Linkage, IncidentLife, Alerts, Evacuation, Crews):
    def __init__(self, settings: Settings, *, district_dir: Path, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.district = District.load(district_dir)
        self.registry = Registry.from_geojson(self.district.sensors_path)
        self.store = Store(settings.resolved_database_url())
        self.bus = EventBus(self.clock, append=lambda t, k, d: self.store.append_event(time=t, kind=k, data=d))
        self.token = settings.api_token or secrets.token_urlsafe(18)
        self.metrics = Metrics()
        self.report_stats = ReporterStats()
        self.vehicle_specs = {v.name: v for v in self.district.fleet}
        towns = [f for f in self.district.facilities if f.kind == "town" and f.population]
        others = [f for f in self.district.facilities if f.kind in ("school", "hospital", "nursing_home")]
        self.hazards = HazardWatch(
            self.registry.values(),
            sites={f.id: (f.lon, f.lat) for f in self.district.facilities if f.kind == "chemical_site"},
            population=chemical.PopulationPoints(np.array([f.lon for f in towns]), np.array([f.lat for f in towns]),
                                                 np.array([float(f.population or 0) for f in towns])) if towns else None,
            facilities=chemical.Facilities(tuple(f.id for f in others), np.array([f.lon for f in others]),
                                           np.array([f.lat for f in others])) if others else None)
        self._plume_at: dict[str, datetime] = {}
        self.floodmap = FloodMapper(self.district)
        self._extent_at: dict[str, tuple[datetime, float]] = {}  # gauge → (time, level) of its last extent
        self.commands: dict[str, dict[str, Any]] = {}  # station commands by id (newest 1000)
        self._next_resolve: datetime | None = None
        # every hazard layer of the map: rain and rain-triggered landslides (follow the gauges),
        # and the layers the open incidents and the fire weather draw (rebuilt when they change)
        built = district_risk_model(self.district, self.registry, cell_m=settings.risk_cell_m,
                                    hotspots=HotspotParams(min_area_m2=settings.risk_min_hotspot_ha * 1e4))
        self.risk_model: RiskModel | None = built[0] if built else None
        self.hazard_map: HazardMap | None = built[1] if built else None
        self._layers_dirty = True
        self._fire_signature: tuple[tuple[str, int], ...] = ()
        self.risk_state: RiskState | None = None
        self.risk_computed_at: datetime | None = None
        self._risk_dirty = True
        self.rain_forecast: RainForecast | None = None
        self.slopes = [f for f in self.district.facilities if f.kind == "landslide_slope"]
        self.sensing = Sensing(self.registry, stale_factor=settings.stale_factor, started=self.clock.now())
        recent = [_reading(r) for r in self.store.recent_readings(since=self.clock.now() - timedelta(hours=25))]
        self.sensing.seed(recent, newest=(_reading(r) for r in self.store.latest_readings().values()))
        self.sensing.load_maintenance(_window(w) for w in self.store.maintenance(after=self.clock.now()))
        self._rain: dict[str, deque[tuple[datetime, float]]] = {}
        self._rain_newest: dict[str, datetime] = {}  # newest reading time per gauge
        self._rain_wet: dict[str, datetime] = {}  # newest time with rain > 0 per gauge
        self._series: dict[tuple[str, str], dict[datetime, float]] = {}  # model inputs, see SERIES_SPAN
        self._load_rain_history(recent)
        self.assignments: dict[str, int] = {
            d.vehicle: d.incident_id for d in self.store.dispatches().values()
            if d.vehicle and d.state in DISPATCH_ACTIVE
        }
        # Open incidents by (kind, sensor): the ingest path consults this, not the database.
        self._open: dict[tuple[str, str], int] = {}
        for r in self.store.incidents():
            if r.status != Status.CLOSED:
                members = r.detail.get("members") or {}
                for sid in {m.get("sensor_id", k) for k, m in members.items()} | ({r.sensor_id} if r.sensor_id else set()):
                    self._open[(r.kind, sid)] = r.id
        self._last_track: dict[str, float] = {}
        self._video: dict[str, str] = {}  # vehicle → video address it announced
        self._controllers: dict[str, str] = {}  # vehicle → operator in control (mirror of the leases)
        self._outbox: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(10_000)
        self._unsent: list[tuple[str, bytes, bool]] = []  # the batch in flight, sent again after a reconnect
        self.mqtt_connected = False
        self.fleet = Fleet(
            [FleetEntry(name=v.name, type=v.type, url=v.url, system_id=v.system_id, signing_key=v.signing_key)
             for v in self.district.fleet],
            link_lost_s=settings.link_lost_s,
            on_event=self._on_vehicle_event,
            terrain=self.district.terrain.elevation_along,  # answers ArduPilot's TERRAIN_REQUESTs offline (vectorised)
        )
        # control leases in the database: every replica sees who controls a vehicle
        leases = SqlLeases(self.store)
        self.fleet.use_lease_store(leases, clock=self.clock.now)
        now = self.clock.now()
        self._controllers.update({lease.vehicle: lease.operator for lease in leases.all() if not lease.expired(now)})
        self.grants = AirspaceGrants(self.store, self.district.airspace, self.bus, self.clock.now)
        # manned traffic heard by the drones' ADS-B receivers holds the drones it threatens; wall
        # time, as the fleet's (a scaled demo clock would make every report look stale)
        self.traffic_watch = TrafficWatch(hold=self._traffic_hold, publish=self.bus.publish, clock=SystemClock())
        self._task_plans = {}  # plan id → (when proposed, the TaskPlan), for approval without planning again
        self._patrols_done: set[tuple[str, str]] = {  # (patrol, slot) already started or skipped
            (r.detail.get("patrol_id", ""), r.detail.get("slot", "")) for r in self.store.incidents() if r.kind == "patrol"}
        self._plan_of_vehicle: dict[str, int] = {p.vehicle: p.id for p in self.store.plans(states=PLAN_ACTIVE)
                                                 if p.vehicle}
        # vehicles out of service now or later (the windows that have not ended)
        self._down = {}
        for w in self.store.vehicle_maintenance(at=self.clock.now()).values():
            self._down[w.vehicle] = w
        self.writer = ReadingWriter(self.store, clock=self.clock.now, on_stored=self._on_stored)
        self.ingestor = Ingestor(
            registry=self.registry,
            on_readings=self._on_readings,
            on_rejection=self._on_rejection,
            on_status=self._on_status,
            on_ack=self._on_ack,
            clock=self.clock.now,
        )
        self.sl651: Sl651Gateway | None = None
        if settings.sl651_port is not None:
            # Field stations on SL 651-2014: their readings take the HTTP path (QC, stored),
            # and the gateway confirms a report only after it is stored.
            self.sl651 = Sl651Gateway(
                mapping=Sl651Mapping.from_specs(self.registry.values()), on_readings=self._on_sl651,
                on_rejection=self._on_rejection, clock=self.clock.now, host=settings.sl651_host,
                port=settings.sl651_port, center=settings.sl651_center)
        self._tg: asyncio.TaskGroup | None = None
        self.ready = asyncio.Event()
        self._init_linkage()
        self._init_incident_life()
        self._init_alerts()
        self._init_evacuation()
        self._init_crews()

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every background task until cancelled."""
        bridge = self.bus.subscribe(maxsize=10_000)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self.writer.run(), name="reading-writer")
                tg.create_task(self._mqtt_session(), name="mqtt")
                tg.create_task(self._bridge_events(bridge), name="event-bridge")
                tg.create_task(self.fleet.run(), name="fleet")
                tg.create_task(self._watch_sensor_health(), name="sensor-health")
                tg.create_task(self.traffic_watch.run(), name="traffic-watch")
                tg.create_task(self._keep_linkage(), name="linkage")
                tg.create_task(self._run_webhooks(), name="webhooks")
                if self.settings.tak_url:
                    tg.create_task(run_tak(self), name="tak")
                if self.district.patrols and self.settings.patrols:
                    tg.create_task(self._keep_patrols(), name="patrols")
                if self.risk_model is not None:
                    tg.create_task(self._keep_risk_map(), name="risk-map")
                if self.sl651 is not None:
                    await self.sl651.__aenter__()  # bound before ready: its port is known
                    tg.create_task(self._serve_sl651(self.sl651), name="sl651-gateway")
                if self.settings.flight_report_url:
                    reporter = HttpJsonReporter(self.settings.flight_report_url, source=self.district.name,
                                                token=self.settings.flight_report_token)
                    tg.create_task(run_reporter(self.bus, reporter, period_s=self.settings.flight_report_period_s,
                                                stats=self.report_stats), name="flight-data-reporter")
                for d in self.store.dispatches().values():
                    if d.state in ("planning", "uploading"):
                        # stopped before the mission started: the vehicle may hold a partial
                        # mission, so the dispatcher must approve again
                        self._fail(Sortie(d.incident_id), d.vehicle, "interrupted by a service restart before take-off")
                    elif d.state in DISPATCH_ACTIVE and d.vehicle:
                        flying = self.store.flights(vehicle=d.vehicle, state="flying")
                        self._spawn(self._track(Sortie(d.incident_id), d.vehicle, int(d.plan.get("items", 0)),
                                                flight_id=flying[-1].id if flying else None, resumed=True),
                                    name=f"resume-{d.incident_id}")
                for p in self.store.plans(states=PLAN_ACTIVE):
                    if p.state in ("approved", "uploading"):
                        self._fail(Sortie(p.incident_id, p.id), p.vehicle,
                                   "interrupted by a service restart before take-off")
                    elif p.vehicle:
                        self.assignments[p.vehicle] = p.incident_id
                        flying = self.store.flights(vehicle=p.vehicle, state="flying")
                        self._spawn(self._track(Sortie(p.incident_id, p.id), p.vehicle,
                                                int(p.proposal.get("items", 0)),
                                                flight_id=flying[-1].id if flying else None, resumed=True),
                                    name=f"resume-plan-{p.id}")
                self.ready.set()
        finally:
            self._tg = None
            self.bus.unsubscribe(bridge)
            self.store.close()

    async def _mqtt_session(self) -> None:
        """One MQTT connection for ingest and outgoing publishes, reconnected with backoff."""
        url = parse_mqtt_url(self.settings.broker_url)
        backoff_s = 1.0
        while True:
            try:
                async with aiomqtt.Client(
                    url.host, url.port, identifier=f"yingji-{uuid.uuid4().hex[:12]}",
                    username=url.username, password=url.password,
                    protocol=aiomqtt.ProtocolVersion.V311, keepalive=30,
                ) as client:
                    self.mqtt_connected = True
                    backoff_s = 1.0
                    log.info("MQTT connected to %s:%d", url.host, url.port)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self.ingestor.run(client))
                        tg.create_task(self._publish_outbox(client))
            except* aiomqtt.MqttError as group:
                log.warning("MQTT session ended (%s); reconnecting in %.0f s", group.exceptions[0], backoff_s)
            finally:
                self.mqtt_connected = False
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 30.0)

    async def _publish_outbox(self, client: aiomqtt.Client) -> None:
        """Send the outbox at QoS 1, up to OUTBOX_WINDOW messages in flight at once (in order: each is handed
        to the client before the next). A batch is kept until the broker took all of it: after a lost
        connection the next session sends it again first (QoS 1 is at least once)."""
        while True:
            if not self._unsent:
                self._unsent = [await self._outbox.get()]
            while len(self._unsent) < OUTBOX_WINDOW and not self._outbox.empty():
                self._unsent.append(self._outbox.get_nowait())
            await asyncio.gather(*(client.publish(t, p, qos=1, retain=r) for t, p, r in self._unsent))
            self.metrics.mqtt_published += len(self._unsent)
            self._unsent = []
            raise_if_cancelling()

    def _mqtt_publish(self, topic: str, data: dict[str, Any], *, retain: bool = False) -> None:
        if self._outbox.full():
            self._outbox.get_nowait()
            self.metrics.mqtt_publish_dropped += 1
        self._outbox.put_nowait((topic, json.dumps(data, ensure_ascii=False).encode(), retain))

    async def _bridge_events(self, sub: Any) -> None:
        """Publish state-change events to ``yingji/events/{kind}`` for replicas and outside systems."""
        while True:
            event = await sub.queue.get()
            if event.persistent:
                self._mqtt_publish(f"yingji/events/{event.kind}", event.to_wire())

    def _spawn(self, coro: Any, *, name: str) -> None:
        """Run ``coro`` in the service's TaskGroup; its failure is logged, never the service's."""
        if self._tg is None:
            coro.close()
            raise Unavailable("the service is starting or stopping")

        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("task %s failed", name)

        self._tg.create_task(guarded(), name=name)

    # -- sensing --------------------------------------------------------------------------
    def _load_rain_history(self, recent: Sequence[Reading]) -> None:
        """Each gauge's interval rain of the last RAIN_WINDOW (the same start-up read as QC's)."""
        since = self.clock.now() - RAIN_WINDOW
        by_gauge: dict[str, list[Reading]] = {}
        for r in recent:
            if r.quantity == "rain" and r.flag != "bad" and r.time > since:
                by_gauge.setdefault(r.sensor_id, []).append(r)
        for spec in self.registry.values():
            if spec.kind == "rain_gauge":
                rows = by_gauge.get(spec.sensor_id, [])
                self._rain[spec.sensor_id] = deque((r.time, r.value) for r in rows)
                if rows:
                    self._rain_newest[spec.sensor_id] = max(r.time for r in rows)
                wet = [r.time for r in rows if r.value > 0]
                if wet:
                    self._rain_wet[spec.sensor_id] = max(wet)

    async def _on_readings(self, readings: list[Reading]) -> None:
        """Accepted readings: per-sensor QC and derived series, then the batched writer."""
        reviewed, transitions = self.sensing.review(readings, received=self.clock.now())
        self._health_events(transitions)
        await self.writer.submit(reviewed)

    def ingest_http(self, readings: list[Reading]) -> list[Reading]:
        """Readings from ``POST /api/ingest/senml``: the same QC, stored before the answer."""
        reviewed, transitions = self.sensing.review(readings, received=self.clock.now())
        self._health_events(transitions)
        self.writer.flush(reviewed)
        return reviewed

    async def _on_sl651(self, readings: list[Reading]) -> None:
        self.ingest_http(readings)

    @staticmethod
    async def _serve_sl651(gateway: Sl651Gateway) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await gateway.aclose()

    def _health_events(self, transitions: Sequence[Any]) -> None:
        for t in transitions:
            log.info("sensor %s %s: %s", t.sensor_id, t.change, t.detail)
            self.bus.publish(f"sensor.{t.change}", {"sensor_id": t.sensor_id, "detail": t.detail})

    async def _watch_sensor_health(self) -> None:
        """Staleness: a sensor silent for k intervals is stale (events on transitions only);
        station commands unanswered after COMMAND_ACK_S are reported."""
        while True:
            now = self.clock.now()
            self._health_events(self.sensing.tick(now))
            if self._next_resolve is None or now >= self._next_resolve:
                self.resolve_ended(now)
                self._next_resolve = now + timedelta(minutes=1)
            for cmd in self.commands.values():
                if cmd["status"] == "sent" and now - datetime.fromisoformat(cmd["sent_at"]) > COMMAND_ACK:
                    cmd["status"] = "unanswered"
                    self.bus.publish("sensor.command_unanswered", dict(cmd))
            await asyncio.sleep(1.0)

    def resolve_ended(self, now: datetime) -> list[int]:
        """Close open incidents whose every sensor has been quiet for ``resolve_after_h``.

        Only incidents nobody has acted on yet: a dispatched one waits for its flight and the
        dispatcher. A fire has no "no fire" reading, so it stays open until a person closes it.
        """
        after = timedelta(hours=self.settings.resolve_after_h)
        closed = []
        for incident_id in sorted(set(self._open.values())):
            row = self.store.incident(incident_id)
            quiet = row.detail.get("quiet_since")
            if row.status != Status.OPEN or quiet is None or now - datetime.fromisoformat(quiet) < after:
                continue
            detail = {**row.detail, "closed_reason": "hazard ended", "closed_reason_zh": "险情解除",
                      "closed_at": now.isoformat()}
            row = self.store.update_incident(row.id, status=transition(row.status, Status.CLOSED),
                                             updated_at=now, detail=detail)
            for key in [k for k, v in self._open.items() if v == row.id]:
                del self._open[key]
            self._layers_dirty = self._layers_dirty or row.kind in HAZARD_LAYER_KINDS
            closed.append(row.id)
            log.info("incident %d resolved: every sensor quiet since %s", row.id, quiet)
            self.bus.publish("incident.resolved", self.incident_view(row))
        return closed

    def station_command(self, sensor_id: str, *, actuator: str, state: str, duration_s: int, by: str,
                        reason: str) -> dict[str, Any]:
        """Switch a warning station's siren or light (MQTT, QoS 1); the station answers with an ack."""
        spec = self.registry.get(sensor_id)
        if spec is None:
            raise NotFound(f"no sensor {sensor_id!r}")
        if actuator not in (spec.properties.get("actuators") or []):
            raise Refused(f"sensor {sensor_id!r} has no {actuator} (its actuators: "
                          f"{', '.join(spec.properties.get('actuators') or []) or 'none'})")
        now = self.clock.now()
        cmd = {"id": uuid.uuid4().hex, "sensor_id": sensor_id, "actuator": actuator, "state": state,
               "duration_s": duration_s, "by": by, "reason": reason, "sent_at": now.isoformat(), "status": "sent"}
        if len(self.commands) >= 1000:
            self.commands.pop(next(iter(self.commands)))
        self.commands[cmd["id"]] = cmd
        self._mqtt_publish(command_topic(sensor_id), {k: cmd[k] for k in ("id", "actuator", "state", "duration_s",
                                                                          "by", "reason", "sent_at")})
        self.bus.publish("sensor.command_sent", dict(cmd))
        return dict(cmd)

    async def _on_ack(self, sensor_id: str, data: dict[str, Any]) -> None:
        cmd = self.commands.get(str(data.get("id")))
        if cmd is None or cmd["sensor_id"] != sensor_id:
            log.warning("answer from %s to an unknown command %r", sensor_id, data.get("id"))
            self.bus.publish("sensor.command_unmatched", {"sensor_id": sensor_id, "answer": data})
            return
        cmd.update(status="done" if data["ok"] else "failed", answered_at=self.clock.now().isoformat(),
                   detail=str(data.get("detail", ""))[:200])
        self.bus.publish("sensor.command_acknowledged", dict(cmd))

    def _on_stored(self, readings: Sequence[Reading]) -> None:
        """After a batch is stored: latest values, live events, assessment."""
        for r in readings:
            for n in r.qc:
                key = (n.flag, n.check)
                self.metrics.flagged[key] = self.metrics.flagged.get(key, 0) + 1
            self.bus.publish("sensor.reading", reading_wire(r))
            spec = self.registry.get(r.sensor_id)
            if spec is None:
                continue
            if r.flag == "bad":
                continue  # an impossible value never feeds a hazard model
            for a in self.hazards.observe(spec, r):  # fire weather, detections
                if not self._in_maintenance(spec, r):
                    self._apply_assessment(spec, r, a)
            if r.quantity not in ASSESSED.get(spec.kind, ()):
                continue  # health records and context records: shown, not assessed
            self._assess(spec, r)

    async def _on_rejection(self, rejection: Rejection) -> None:
        self.bus.publish("reading.rejected", {
            "topic": rejection.topic, "reason": rejection.reason, "detail": rejection.detail,
            "sensor_id": rejection.sensor_id,
        })

    async def _on_status(self, sensor_id: str, status: str) -> None:
        if self.sensing.health[sensor_id].status != status:
            self.bus.publish("sensor.status", {"sensor_id": sensor_id, "status": status})
        self._health_events(self.sensing.status(sensor_id, status))

    def add_maintenance(self, sensor_id: str, *, end: datetime, reason: str, by: str,
                        start: datetime | None = None) -> dict[str, Any]:
        if sensor_id not in self.registry:
            raise NotFound(f"no sensor {sensor_id!r}")
        now = self.clock.now()
        start = start or now
        if end <= start:
            raise Refused(f"the window must end after it starts ({start.isoformat()})")
        row = self.store.add_maintenance(sensor_id=sensor_id, start=start, end=end, reason=reason,
                                         created_by=by, created_at=now)
        window = _window(row)
        self.sensing.add_maintenance(window)
        self.bus.publish("sensor.maintenance", window.to_wire())
        return window.to_wire()

    def end_maintenance(self, sensor_id: str, window_id: int, *, by: str) -> dict[str, Any]:
        windows = {w.window_id: w for w in self.sensing.maintenance(sensor_id)}
        if window_id not in windows:
            raise NotFound(f"sensor {sensor_id!r} has no maintenance window {window_id}")
        row = self.store.end_maintenance(window_id, end=self.clock.now())
        assert row is not None
        window = _window(row)
        self.sensing.add_maintenance(window)
        self.bus.publish("sensor.maintenance_ended", {**window.to_wire(), "ended_by": by})
        return window.to_wire()

    async def _keep_risk_map(self) -> None:
        """Recompute the district risk map while rain changes (at most every risk_period_s)."""
        assert self.risk_model is not None
        self._risk_dirty = False
        self.recompute_risk()  # the map without rain (exposure only) at once
        while True:
            if not (self._risk_dirty or self._layers_dirty or self._fire_stations_changed()):
                await asyncio.sleep(0.5)
                continue
            self._risk_dirty = False
            self.recompute_risk()
            self.stage_slopes()
            # rate limit: new rain waits for the next period
            await asyncio.sleep(max(0.5, self.settings.risk_period_s / self.clock_speed()))

    async def _keep_patrols(self) -> None:
        """Start scheduled patrols when their time comes (checked every 30 s of service time)."""
        while True:
            try:
                self.run_patrols()
            except Exception:  # noqa: BLE001 — a bad patrol must not stop the others, or the service
                log.exception("scheduled patrols")
            await asyncio.sleep(max(1.0, 30.0 / self.clock_speed()))

    async def _keep_linkage(self) -> None:
        """Deadlines on the service clock: department tasks and incidents nobody acknowledged, alerts (every
        second of service time)."""
        while True:
            now = self.clock.now()
            for name, tick in (("department tasks", self._linkage_tick), ("incident life", self._incident_life_tick),
                               ("alerts", self._alerts_tick), ("evacuation", self._evacuation_tick),
                               ("crew safety", self._crews_tick)):
                try:
                    await tick(now)
                except Exception:  # noqa: BLE001 — one failing check must not stop the others, or the service
                    log.exception("linkage tick: %s", name)
            # every second of service time, but at most twice a second of wall time: each check reads the
            # store, and a sped-up demo clock would otherwise run them many times a second
            await asyncio.sleep(max(0.5, 1.0 / self.clock_speed()))

    def clock_speed(self) -> float:
        return getattr(self.clock, "speed", 1.0)

    def _fire_stations(self) -> list[FireStation]:
        """Each weather station's forest-fire danger of its newest day (if that day is today or yesterday)."""
        today = self.clock.now().astimezone(LOCAL).date()
        out = []
        for day in self.hazards.fire_days():
            spec = self.registry.get(day.station_id)
            if spec is not None and (today - day.day).days <= 1:
                out.append(FireStation(day.station_id, spec.lon, spec.lat, int(day.danger)))
        return out

    def _fire_stations_changed(self) -> bool:
        return tuple(sorted((s.station_id, s.danger) for s in self._fire_stations())) != self._fire_signature

    def refresh_hazard_layers(self) -> None:
        """Rebuild the incident and fire-weather layers of the risk model from the open incidents."""
        assert self.risk_model is not None and self.hazard_map is not None
        self._layers_dirty = False
        ids = sorted({i for (kind, _), i in self._open.items() if kind in HAZARD_LAYER_KINDS})
        layers = self.hazard_map.build([self.store.incident(i) for i in ids], self._fire_stations())
        self.risk_model = self.risk_model.with_static(layers.layers, layers.sensors)
        self._fire_signature = layers.fire_signature

    def recompute_risk(self) -> None:
        """Full recompute from each gauge's 3-hour rain and the hazard layers (ids of hotspots carried over)."""
        assert self.risk_model is not None
        if self._layers_dirty or self._fire_stations_changed():
            self.refresh_hazard_layers()
        now = self.clock.now()
        values = {}
        for sid in self.risk_model.station_ids:
            window = self._rain.get(sid)
            if window:
                newest = max(t for t, _ in window)
                values[sid] = sum(v for t, v in window if t > newest - timedelta(hours=3)) \
                    if now - newest <= timedelta(hours=3) else 0.0
        previous = self.risk_state.hotspots if self.risk_state is not None else ()
        started = time.perf_counter()
        self.risk_state = risk_compute(self.risk_model, values, previous=previous)
        self.risk_computed_at = now
        self.metrics.risk_compute_ms = (time.perf_counter() - started) * 1000.0
        before = {h.id: h.level for h in previous}
        after = {h.id: h.level for h in self.risk_state.hotspots}
        if before != after:
            self.bus.publish("risk.hotspots", {"computed_at": now.isoformat(),
                                               "hotspots": [{"id": h.id, "level": h.level.colour,
                                                             "population": round(h.population_persons)}
                                                            for h in self.risk_state.hotspots]})

    def _hotspots_of(self, lon: float, lat: float, sensors: set[str]) -> list[dict[str, Any]]:
        """Risk hotspots that hold this place or were driven by these sensors: part of the "why"."""
        if self.risk_state is None:
            return []
        here = Point(lon, lat)
        out = []
        for h in self.risk_state.hotspots:
            drivers = {sid for ids in h.sensors.values() for sid in ids}
            if h.polygon.contains(here) or drivers & sensors:
                out.append({"id": h.id, "level": h.level.colour, "population_persons": round(h.population_persons),
                            "why": h.why.describe()})
        return out

    def stage_slopes(self) -> None:
        """Rain-triggered landslide warnings at the district's known slopes, staged by the forecast."""
        if not self.slopes:
            return
        now = self.clock.now()
        gauges = []
        for sid, window in self._rain.items():
            spec = self.registry.get(sid)
            if spec is None or not window:
                continue
            points = sorted(window)
            times = [t for t, _ in points]
            prefix = [0.0, *itertools.accumulate(v for _, v in points)]
            upto = prefix[bisect.bisect_right(times, now)]
            acc = {d: upto - prefix[bisect.bisect_right(times, now - timedelta(hours=d))] for d in SLOPE_WINDOWS_H}
            gauges.append((spec.lon, spec.lat, acc))
        for slope in self.slopes:
            observed = observed_at(gauges, slope.lon, slope.lat)
            forecast = self.rain_forecast.remaining_at(slope.lon, slope.lat, now) if self.rain_forecast else None
            if not observed and not forecast:
                continue
            a = stage_slope(slope.id, observed_mm=observed, forecast_mm=forecast, name=slope.name,
                            name_zh=slope.name_zh)
            spec = SensorSpec(sensor_id=slope.id, kind="landslide_slope", name=slope.name, name_zh=slope.name_zh,
                              lon=slope.lon, lat=slope.lat, quantity="rain_ratio", unit="ratio", valid_min=0.0,
                              valid_max=math.inf, interval_s=60.0)
            ratio = a.extra.get("ratio_now") if a.extra else None
            reading = Reading(slope.id, "rain_ratio", float(ratio or 0.0), "ratio", now)
            self._apply_assessment(spec, reading, a)

    def receive_forecast(self, data: dict[str, Any]) -> dict[str, Any]:
        """A gridded rain forecast (QPF): kept as the latest, and the slopes staged against it."""
        try:
            forecast = RainForecast.from_wire(data)
        except ForecastError as err:
            raise Refused(str(err)) from None
        self.rain_forecast = forecast
        wire = forecast.to_wire()
        self.bus.publish("forecast.rain", wire)
        self.stage_slopes()
        return wire

    def receive_cap(self, xml: bytes) -> dict[str, Any]:
        """An official warning (CAP 1.2) from the meteorological or hydrological service."""
        try:
            w = parse_cap(xml)
        except CapError as err:
            raise Refused(str(err)) from None
        wire = w.to_wire()
        row, new = self.store.add_official(identifier=w.identifier, sender=w.sender, sent=w.sent, expires=w.expires,
                                           msg_type=w.msg_type, received_at=self.clock.now(), data=wire)
        if not new:
            raise Conflict(f"official warning {w.identifier!r} was already received")
        if w.references:
            self.store.replace_official(w.references, by=w.identifier)
        self.bus.publish("official.warning", wire)
        return wire

    def official_warnings(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        now = self.clock.now()
        out = []
        for row in self.store.officials():
            active = row.msg_type != "Cancel" and row.replaced_by is None and (row.expires is None or now < row.expires)
            if active or not active_only:
                out.append({**row.data, "active": active, "replaced_by": row.replaced_by,
                            "received_at": row.received_at.isoformat()})
        return out

    def flood_geojson(self) -> dict[str, Any]:
        """The latest flood extent of every open flood incident's gauges."""
        features = []
        for incident_id in sorted({v for (k, _), v in self._open.items() if k == "flood"}):
            row = self.store.incident(incident_id)
            for key, m in (row.detail.get("members") or {}).items():
                extent = (m.get("model") or {}).get("extent")
                if extent and "geometry" in extent:
                    props = {k: v for k, v in extent.items() if k != "geometry"}
                    features.append({"type": "Feature", "geometry": extent["geometry"],
                                     "properties": {**props, "incident_id": row.id, "sensor_id": key,
                                                    "level": Level(row.level).colour}})
        return {"type": "FeatureCollection", "features": features}

    def risk_geojson(self) -> dict[str, Any]:
        state = self.risk_state
        features = [h.to_feature() for h in state.hotspots] if state is not None else []
        grid = self.risk_model.grid if self.risk_model is not None else None
        return {"type": "FeatureCollection", "features": features,
                "computed_at": self.risk_computed_at.isoformat() if self.risk_computed_at else None,
                "cell_m": grid.cell_m if grid is not None else None,
                "cells": grid.nrows * grid.ncols if grid is not None else 0,
                "layers": {name: {"cells": int(np.count_nonzero(a > 0)), "max": round(float(np.nanmax(a)), 3)
                                  if np.isfinite(a).any() else None}
                           for name, a in state.risk.hazards.items()} if state is not None else {},
                "note": "System risk assessment (hazard × exposure × vulnerability, INFORM form), not an official warning."}

    def _in_maintenance(self, spec: SensorSpec, reading: Reading) -> bool:
        # measured or received during a window (a logger may upload its backlog while the
        # technician works on it)
        window = (self.sensing.in_maintenance(spec.sensor_id, reading.time)
                  or self.sensing.in_maintenance(spec.sensor_id, self.clock.now()))
        if window is not None:
            log.debug("%s in maintenance (%s): not assessed", spec.sensor_id, window.reason)
        return window is not None

    def _assess(self, spec: SensorSpec, reading: Reading) -> None:
        if self._in_maintenance(spec, reading):
            return
        history: Sequence[tuple[datetime, float]] = ()
        if spec.kind == "rain_gauge":
            sid = spec.sensor_id
            window = self._rain.setdefault(sid, deque())
            window.append((reading.time, reading.value))
            newest = self._rain_newest[sid] = max(self._rain_newest.get(sid, reading.time), reading.time)
            while window and window[0][0] <= newest - RAIN_WINDOW:
                window.popleft()
            if reading.value > 0:
                self._rain_wet[sid] = max(self._rain_wet.get(sid, reading.time), reading.time)
            wet = self._rain_wet.get(sid)
            # the 3-hour rain the map reads changes with new rain, and as old rain leaves the window
            if wet is not None and wet > newest - timedelta(hours=3, minutes=10):
                self._risk_dirty = True
            if (wet is None or wet <= newest - timedelta(hours=12)) and ("rainstorm", sid) not in self._open:
                return  # dry for the longest signal window, nothing open: nothing to assess
            history = sorted(window)
        elif reading.quantity in SERIES_SPAN:
            history = self._series_window(spec.sensor_id, reading)
        routing = spec.properties.get("routing") if reading.quantity == "level" else None
        upstream = self._upstream_window(routing["upstream"], reading) if routing else None
        assessment = assess(spec, reading, history=history, approach_m=self.settings.river_approach_m,
                            upstream_history=upstream)
        if assessment is None:
            return
        if assessment.kind == "flood" and assessment.level > Level.NONE:
            last = self._extent_at.get(spec.sensor_id)
            if last is None or reading.time - last[0] >= EXTENT_EVERY or abs(reading.value - last[1]) >= 0.1:
                extent = self.floodmap.extent(spec, reading.value)
                self._extent_at[spec.sensor_id] = (reading.time, reading.value)
                assessment = replace(assessment, extra={**(assessment.extra or {}), "extent": extent})
                if "error" not in extent:
                    assessment = replace(assessment, reason=assessment.reason + (
                        f"; flooded area up to {extent['area_km2']:.1f} km² at this level "
                        f"({extent['land_area_km2']:.1f} km² of land, {extent['people']} people in places inside)"),
                        reason_zh=assessment.reason_zh + f"；此水位淹没范围至多 {extent['area_km2']:.1f} 平方公里")
        if assessment.kind == "chemical_leak" and assessment.level > Level.NONE:
            last = self._plume_at.get(spec.sensor_id)
            open_id = self._open.get(("chemical_leak", spec.sensor_id))
            current = Level(self.store.incident(open_id).level) if open_id is not None else Level.NONE
            if last is None or reading.time - last >= PLUME_EVERY or assessment.level > current:
                assessment = self.hazards.with_plume(spec, reading, assessment)
                self._plume_at[spec.sensor_id] = reading.time
        self._apply_assessment(spec, reading, assessment)

    def _upstream_window(self, sensor_id: str, reading: Reading) -> list[tuple[datetime, float]]:
        """An upstream gauge's usable levels over the level span up to ``reading`` (Muskingum routing input).

        From the store, not the gauge's own series cache: it holds every replica's readings
        and those of a gauge this process has not heard from yet (the cache is left alone).
        """
        rows = self.store.readings(sensor_id, quantity="level", since=reading.time - SERIES_SPAN["level"], limit=5000)
        return [(r.time, r.value) for r in rows if r.flag != "bad" and r.time <= reading.time]

    def _series_window(self, sensor_id: str, reading: Reading) -> list[tuple[datetime, float]]:
        """The record's usable (not bad) values over its model's span, kept per sensor."""
        key = (sensor_id, reading.quantity)
        span = SERIES_SPAN[reading.quantity]
        series = self._series.get(key)
        if series is None:
            rows = self.store.readings(sensor_id, quantity=reading.quantity, since=reading.time - span, limit=5000)
            series = self._series[key] = {r.time: r.value for r in rows if r.flag != "bad"}
        series[reading.time] = reading.value
        newest = max(series)
        for t in [t for t in series if t < newest - span]:
            del series[t]
        return sorted(series.items())

    # -- incidents ------------------------------------------------------------------------
    def _apply_assessment(self, spec: SensorSpec, reading: Reading, a: Assessment) -> None:
        """Fold one sensor's assessment into its phenomenon's incident (one per phenomenon)."""
        key = (a.kind, spec.sensor_id)
        open_id = self._open.get(key)
        if open_id is None:
            if a.level == Level.NONE:
                return  # the common case: nothing to open, nothing to follow
            position = (a.extra or {}).get("position")
            open_id = self._join_candidate(a.kind, spec, tuple(position) if position else None)
        if a.kind in HAZARD_LAYER_KINDS:
            self._layers_dirty = True  # the map draws these incidents' areas
        row = self.store.incident(open_id) if open_id is not None else None
        now = self.clock.now()
        evidence = reading_wire(reading)
        member = {"level": a.level.colour, "flag": reading.flag, "kind": spec.kind, "value": a.value,
                  "time": reading.time.isoformat(), "sensor_id": spec.sensor_id, "quantity": reading.quantity}
        if a.extra:
            member["model"] = dict(a.extra)
        # a detector with several assessed records (gases) has one say per record
        member_key = spec.sensor_id if len(ASSESSED.get(spec.kind, ())) <= 1 else f"{spec.sensor_id}:{reading.quantity}"
        if row is None:
            self._open_incident(spec, a, member_key, member, evidence, now)
            return
        self._open[key] = row.id
        detail = dict(row.detail)
        members = dict(detail.get("members") or {})
        joined = member_key not in members
        members[member_key] = member
        detail["members"] = members
        detail["evidence"] = (detail.get("evidence", []) + [evidence])[-EVIDENCE_KEEP:]
        wanted = aggregate_level(_members(members))
        if wanted == Level.NONE:  # every sensor back below its thresholds: the hazard may be ending
            detail.setdefault("quiet_since", now.isoformat())
        else:
            detail.pop("quiet_since", None)
        pending = detail.get("lower_pending_since")
        level, pending = hysteresis(Level(row.level), wanted, pending_since_s=pending, now_s=now.timestamp())
        detail["lower_pending_since"] = pending
        changed_verification = self._verify(detail, members, now, (a.extra or {}).get("verification"))
        decision = decide(replace(a, level=level), OpenIncident(row.id, Level(row.level)))
        if decision.action == "none":
            if a.level == level:  # the sensor that holds the level keeps the "why" current (trend, forecast)
                detail.update(reason=a.reason, reason_zh=a.reason_zh)
            row = self.store.update_incident(row.id, detail=detail)
            if joined or changed_verification:
                self.bus.publish("incident.updated", self.incident_view(row))
            self._regroup(row)
            return
        if a.level == level:  # the reading that sets the level also names it
            title, title_zh = _titles(a, spec)
            detail.update(title=title, title_zh=title_zh, reason=a.reason, reason_zh=a.reason_zh)
        detail["levels"] = detail.get("levels", []) + [
            {"level": level.colour, "time": now.isoformat(), "value": a.value, "sensor_id": spec.sensor_id}]
        row = self.store.update_incident(row.id, level=int(level), updated_at=now, detail=detail)
        log.info("incident %d level %s → %s", row.id, decision.action, level.colour)
        self.bus.publish("incident.updated", self.incident_view(row))
        if decision.action == "raise":  # the tasks the higher level adds (no task is sent twice)
            self.link_departments(row, place=spec.name, place_zh=spec.name_zh)
        if level >= Level.ORANGE and decision.action == "raise":
            self.yield_patrols()
        if level == Level.RED and decision.action == "raise":
            self.auto_recon(row.id)
        self._regroup(row)

    def _open_incident(self, spec: SensorSpec, a: Assessment, member_key: str, member: dict[str, Any],
                       evidence: dict[str, Any], now: datetime) -> None:
        level = a.level
        title, title_zh = _titles(a, spec)
        members = {member_key: member}
        detail: dict[str, Any] = {
            "title": title, "title_zh": title_zh, "reason": a.reason, "reason_zh": a.reason_zh,
            "levels": [{"level": level.colour, "time": now.isoformat(), "value": a.value,
                        "sensor_id": spec.sensor_id}],
            "evidence": [evidence], "members": members,
        }
        self._verify(detail, members, now, (a.extra or {}).get("verification"))
        lon, lat = (a.extra or {}).get("position") or (spec.lon, spec.lat)
        on_water = spec.kind in ("river_level", "reservoir_level") or self.district.on_water(lon, lat)
        row = self.store.insert_incident(
            kind=a.kind, sensor_id=spec.sensor_id, level=int(level), status=Status.OPEN,
            lon=lon, lat=lat, on_water=on_water, opened_at=now, updated_at=now, detail=detail)
        self._open[(a.kind, spec.sensor_id)] = row.id
        self.metrics.incidents_opened += 1
        log.info("incident %d opened: %s (%s, %s)", row.id, title, level.colour, detail["verification"]["state"])
        self.bus.publish("incident.opened", self.incident_view(row))
        self.link_departments(row, place=spec.name, place_zh=spec.name_zh)
        if level >= Level.ORANGE:
            self.yield_patrols()
        if level == Level.RED:
            self.auto_recon(row.id)

    # -- one incident per phenomenon, by geometry -------------------------------------------
    def _place(self, sensor_id: str) -> tuple[float, float] | None:
        spec = self.registry.get(sensor_id)
        if spec is not None:
            return (spec.lon, spec.lat)
        slope = next((f for f in self.slopes if f.id == sensor_id), None)
        return (slope.lon, slope.lat) if slope is not None else None

    def _linked(self, kind: str, a: str, b: str) -> bool:
        """Two sensors see one phenomenon of ``kind``: within its join radius (a flood: on one river)."""
        if a == b:
            return True
        pa, pb = self._place(a), self._place(b)
        if pa is None or pb is None:
            return False
        if kind == "flood":
            ra = (self.registry.get(a).properties if self.registry.get(a) else {}).get("river")
            rb = (self.registry.get(b).properties if self.registry.get(b) else {}).get("river")
            if ra is None or ra != rb:
                return False
        return ground_distance_m(pa, pb) <= JOIN_RADIUS_M[kind]

    def _regroup(self, row: IncidentRow) -> None:
        """Split an incident whose active sensors no longer link into one area; merge open incidents
        of its kind that its active sensors now link to (the older one stays)."""
        if row.kind not in REGROUP_KINDS or row.status == Status.CLOSED:
            return
        members = row.detail.get("members") or {}
        active = [k for k, m in members.items() if m.get("level", "none") != "none"]
        sid = {k: members[k].get("sensor_id", k) for k in members}
        groups = link_groups(active, lambda x, y: self._linked(row.kind, sid[x], sid[y]))
        if len(groups) > 1:
            rank = {k: Level[members[k]["level"].upper()] for k in active}
            stay = max(groups, key=lambda g: (max(rank[k] for k in g), row.sensor_id in {sid[k] for k in g}))
            for g in groups:
                if g is not stay:
                    self._split_off(row, g)
            row = self.store.incident(row.id)
            members = row.detail.get("members") or {}
            active = [k for k, m in members.items() if m.get("level", "none") != "none"]
        others = sorted({i for (kind, _), i in self._open.items() if kind == row.kind and i != row.id})
        for other_id in others:
            other = self.store.incident(other_id)
            theirs = [(k, m.get("sensor_id", k)) for k, m in (other.detail.get("members") or {}).items()
                      if m.get("level", "none") != "none"]
            if not any(self._linked(row.kind, sid[k], s) for k in active for _, s in theirs):
                continue
            keep, gone = (row, other) if row.id < other.id else (other, row)
            if gone.status != Status.OPEN:  # a dispatched incident is not closed under its flight
                keep, gone = gone, keep
            if gone.status != Status.OPEN:
                continue  # both dispatched: they stay apart until a dispatcher closes one
            self._merge(keep, gone)
            if gone.id == row.id:
                return
            row = self.store.incident(row.id)

    def _split_off(self, row: IncidentRow, keys: list[str]) -> None:
        """Move a group of an incident's sensors into a new incident of their own."""
        now = self.clock.now()
        detail = dict(row.detail)
        members = dict(detail.get("members") or {})
        moved = {k: members.pop(k) for k in keys}
        sensors = sorted({m.get("sensor_id", k) for k, m in moved.items()})
        level = aggregate_level(_members(moved))
        top = max(moved.values(), key=lambda m: Level[m["level"].upper()])
        spec = self.registry.get(top.get("sensor_id", "")) or self.registry.get(sensors[0])
        place = self._place(top.get("sensor_id", sensors[0])) or (row.lon, row.lat)
        km = JOIN_RADIUS_M[row.kind] / 1000.0
        why = (f"Split from incident #{row.id}: {', '.join(sensors)} no longer link to its other sensors "
               f"(more than {km:g} km apart, none active between)")
        why_zh = f"由事件 #{row.id} 拆分：{', '.join(sensors)} 与其余传感器相距超过 {km:g} 公里"
        name, name_zh = (spec.name, spec.name_zh) if spec is not None else (sensors[0], sensors[0])
        kind_en, kind_zh = SPLIT_NAMES.get(row.kind, (row.kind, row.kind))
        new_detail: dict[str, Any] = {
            "title": f"{kind_en} at {name}: {level.colour} level", "title_zh": f"{name_zh}{kind_zh}{level.colour_zh}等级",
            "reason": why, "reason_zh": why_zh, "split_from": row.id, "split_reason": why, "split_reason_zh": why_zh,
            "members": moved,
            "levels": [{"level": level.colour, "time": now.isoformat(), "value": top.get("value"),
                        "sensor_id": top.get("sensor_id"), "split_from": row.id}],
            "evidence": [e for e in detail.get("evidence", []) if e.get("sensor_id") in sensors],
        }
        self._verify(new_detail, moved, now)
        on_water = row.kind == "flood" or self.district.on_water(*place)
        new = self.store.insert_incident(kind=row.kind, sensor_id=top.get("sensor_id"), level=int(level),
                                         status=Status.OPEN, lon=place[0], lat=place[1], on_water=on_water,
                                         opened_at=now, updated_at=now, detail=new_detail)
        for s in sensors:
            self._open[(row.kind, s)] = new.id
        # what stays: its own sensors' level at once (the higher part left with the split)
        detail["members"] = members
        detail["split"] = detail.get("split", []) + [{"into": new.id, "sensors": sensors, "time": now.isoformat()}]
        remaining = aggregate_level(_members(members))
        updates: dict[str, Any] = {}
        if remaining != Level(row.level) and remaining > Level.NONE:
            detail["levels"] = detail.get("levels", []) + [
                {"level": remaining.colour, "time": now.isoformat(), "split_into": new.id}]
            detail["lower_pending_since"] = None
            updates["level"] = int(remaining)
        self._verify(detail, members, now)
        row = self.store.update_incident(row.id, detail=detail, updated_at=now, **updates)
        self.metrics.incidents_opened += 1
        self._layers_dirty = self._layers_dirty or row.kind in HAZARD_LAYER_KINDS
        log.info("incident %d split: %s → new incident %d", row.id, ", ".join(sensors), new.id)
        self.bus.publish("incident.updated", self.incident_view(row))
        self.bus.publish("incident.opened", self.incident_view(new))
        if spec is not None:
            self.link_departments(new, place=spec.name, place_zh=spec.name_zh)

    def _merge(self, keep: IncidentRow, gone: IncidentRow) -> None:
        """Fold incident ``gone`` into ``keep`` (one phenomenon) and close ``gone`` as merged."""
        now = self.clock.now()
        detail = dict(keep.detail)
        members = dict(detail.get("members") or {})
        for k, m in (gone.detail.get("members") or {}).items():
            if k not in members or m.get("time", "") > members[k].get("time", ""):
                members[k] = m
        detail["members"] = members
        detail["evidence"] = sorted(detail.get("evidence", []) + gone.detail.get("evidence", []),
                                    key=lambda e: e.get("time", ""))[-EVIDENCE_KEEP:]
        detail["merged"] = detail.get("merged", []) + [{"from": gone.id, "time": now.isoformat()}]
        theirs = gone.detail.get("verification") or {}
        if theirs.get("state") == "confirmed" and (detail.get("verification") or {}).get("state") != "confirmed":
            detail["verification"] = {**theirs, "reason": f"{theirs.get('reason', 'confirmed')} (incident #{gone.id})"}
        self._verify(detail, members, now)
        level = max(Level(keep.level), Level(gone.level))
        if level != Level(keep.level):
            detail["levels"] = detail.get("levels", []) + [
                {"level": level.colour, "time": now.isoformat(), "merged_from": gone.id}]
        keep = self.store.update_incident(keep.id, level=int(level), detail=detail, updated_at=now)
        for key in [k for k, v in self._open.items() if v == gone.id]:
            self._open[key] = keep.id
        closed = {**gone.detail, "closed_reason": f"merged into incident #{keep.id}",
                  "closed_reason_zh": f"并入事件 #{keep.id}", "closed_at": now.isoformat(), "merged_into": keep.id}
        gone = self.store.update_incident(gone.id, status=transition(gone.status, Status.CLOSED), updated_at=now,
                                          detail=closed)
        self._layers_dirty = self._layers_dirty or keep.kind in HAZARD_LAYER_KINDS
        log.info("incident %d merged into %d", gone.id, keep.id)
        self.bus.publish("incident.updated", self.incident_view(keep))
        self.bus.publish("incident.resolved", self.incident_view(gone))

    def _verify(self, detail: dict[str, Any], members: dict[str, Any], now: datetime,
                model: dict[str, Any] | None = None) -> bool:
        """Recompute corroboration unless a person already confirmed; True if it changed.

        k-of-n sensors by default; a model with its own rule (fire detections) gives its verdict.
        """
        current = detail.get("verification") or {}
        if current.get("by"):
            return False  # a dispatcher's, a drone's or a crew's confirmation stands
        if current.get("state") == "confirmed":
            return False  # once confirmed, it happened: easing readings do not unconfirm it
        if model is not None:
            state, reason = model["state"], model["reason"]
        else:
            state, reason = verification(_members(members))
        if current.get("state") == state and current.get("reason") == reason:
            return False
        detail["verification"] = {"state": state, "reason": reason, "time": now.isoformat()}
        return current.get("state") not in (None, state)

    def _join_candidate(self, kind: str, spec: SensorSpec, where: tuple[float, float] | None = None) -> int | None:
        """An open incident of the same phenomenon near this sensor, if any (one incident per phenomenon).

        Near: within the kind's radius of one of the incident's sensors (or slopes), or of the
        place the incident stands (a fire's estimated position). ``where`` is this assessment's
        place when it is not the sensor's (a camera sees a fire kilometres away).
        """
        radius_m = JOIN_RADIUS_M.get(kind)
        if radius_m is None:
            return None
        here = where or (spec.lon, spec.lat)
        best: tuple[float, int] | None = None
        slopes = {f.id: f for f in self.slopes}
        for (k, sensor_id), incident_id in self._open.items():
            if k != kind:
                continue
            other = self.registry.get(sensor_id)
            if other is not None:
                river = spec.properties.get("river")
                if kind == "flood" and (river is None or other.properties.get("river") != river):
                    continue  # a flood joins gauges on the same river only
                points = [(other.lon, other.lat)]
            elif sensor_id in slopes:
                points = [(slopes[sensor_id].lon, slopes[sensor_id].lat)]
            else:
                continue
            if kind == "fire":
                row = self.store.incident(incident_id)
                points.append((row.lon, row.lat))
            d = min(ground_distance_m(here, p) for p in points)
            if d <= radius_m and (best is None or d < best[0]):
                best = (d, incident_id)
        return best[1] if best else None

    def verify_incident(self, incident_id: int, *, by: str, how: str, note: str = "") -> dict[str, Any]:
        """A person (dispatcher, or a crew or pilot who looked) confirms the phenomenon is real."""
        try:
            row = self.store.incident(incident_id)
        except NotFound:
            raise
        detail = dict(row.detail)
        now = self.clock.now()
        detail["verification"] = {"state": "confirmed", "by": by, "how": how, "note": note,
                                  "reason": f"confirmed by {by} ({how})", "time": now.isoformat()}
        row = self.store.update_incident(row.id, detail=detail, updated_at=now)
        view = self.incident_view(row)
        self.bus.publish("incident.verified", view)
        return view

    # -- dispatch -------------------------------------------------------------------------
    def approve_dispatch(self, incident_id: int, *, by: str, pilot: str | None = None) -> dict[str, Any]:
        """Approve a dispatch: choose a vehicle, plan a safe mission, and fly it.

        Synchronous up to the point the flight is handed to its own task, so two
        approvals of one incident cannot both pass the claim (and the store's unique
        key guards across replicas).
        """
        if self._tg is None:
            raise Unavailable("the service is starting or stopping")
        row = self.store.incident(incident_id)  # NotFound → 404
        if row.status == Status.CLOSED:
            raise Conflict(f"incident {incident_id} is closed")
        now = self.clock.now()
        try:
            self.store.claim_dispatch(incident_id, by=by, now=now)
        except AlreadyDispatched as err:
            raise Conflict(str(err)) from None
        try:
            name, plan = self._plan(row)
        except (PlanRefused, Refused) as err:
            reason = "; ".join(err.reasons) if isinstance(err, PlanRefused) else str(err)
            self.store.update_dispatch(incident_id, state="refused", error=reason, updated_at=now)
            self._count_dispatch("refused")
            self.bus.publish("dispatch.refused", {"incident_id": incident_id, "reason": reason, "by": by})
            raise Refused(reason) from None
        self.store.update_dispatch(incident_id, vehicle=name, state="uploading", updated_at=now,
                                   plan=_plan_wire(plan))
        self.assignments[name] = incident_id
        row = self.store.update_incident(incident_id, status=transition(row.status, Status.DISPATCHED),
                                         updated_at=now)
        self._count_dispatch("approved")
        self.bus.publish("dispatch.approved", {"incident_id": incident_id, "vehicle": name, "by": by,
                                               "checks": list(plan.checks)})
        self._spawn(self._fly(Sortie(incident_id), name, plan, approved_by=by, approved_at=now, pilot=pilot or by),
                    name=f"fly-{incident_id}")
        view = self.incident_view(row)
        self.bus.publish("incident.updated", view)
        return view

    def _candidates(self) -> list[Candidate]:
        states = self.fleet.states()
        now = self.clock.now()
        down = {n: w for n, w in self._down.items() if w.start <= now < w.end}
        out = []
        for name, spec in self.vehicle_specs.items():
            st = states.get(name, {})
            usable = (st.get("link") == "connected" and st.get("ekf_ok") and name not in self.assignments
                      and st.get("lon") is not None and not st.get("armed") and name not in down)
            out.append(Candidate(
                name=name, type=spec.type,
                lon=st.get("lon") if st.get("lon") is not None else spec.base_lon,
                lat=st.get("lat") if st.get("lat") is not None else spec.base_lat,
                battery_pct=st.get("battery_pct") if st.get("battery_pct") is not None else 0.0,
                available=bool(usable), cruise_speed_mps=spec.cruise_speed_mps, endurance_s=spec.endurance_s))
        return out

    def _plan(self, row: IncidentRow) -> tuple[str, MissionPlan]:
        choice = choose_vehicle((row.lon, row.lat), row.on_water, self._candidates(),
                                loiter_s=self.settings.loiter_s)
        if choice.vehicle is None:
            raise Refused(f"no vehicle can serve this incident: {choice.reason}")
        cand = choice.vehicle
        home = (cand.lon, cand.lat)
        # controlled airspace is a matter of approvals (below); every other zone is checked here
        plan = plan_recon(
            cand, home, self.district.terrain.elevation_at(*home), (row.lon, row.lat),
            terrain=self.district.terrain, zones=[z for z in self.district.airspace if z.kind != "controlled"],
            water=self.district.water, clearance_m=self.settings.clearance_m, loiter_s=self.settings.loiter_s)
        return cand.name, self._with_approvals(plan)

    def _with_approvals(self, plan: MissionPlan) -> MissionPlan:
        """The plan if the grants on record cover every approval it needs, with them named in its checks;
        else PlanRefused saying which approvals are missing and why the grants on record do not cover them."""
        if plan.vehicle_type == "boat":
            return plan  # on the water surface: not airspace
        now = self.clock.now()
        ground = self.district.terrain.elevation_along(np.array([p[0] for p in plan.path]),
                                                       np.array([p[1] for p in plan.path]))
        approvals = require_grants(plan.path, plan.cruise_amsl_m - ground, self.district.airspace,
                                   self.grants.active(now), now=now,
                                   until=now + timedelta(seconds=plan.est_duration_s))
        return replace(plan, checks=plan.checks + tuple(approval_check(a) for a in approvals), approvals=approvals)

    def _count_dispatch(self, outcome: str) -> None:
        self.metrics.dispatches[outcome] = self.metrics.dispatches.get(outcome, 0) + 1

    def _set_dispatch(self, sortie: Sortie, state: str, **fields: Any) -> None:
        """A flight's state on its record: the incident's dispatch, or the task plan it flies."""
        now = self.clock.now()
        if sortie.plan_id is None:
            self.store.update_dispatch(sortie.incident_id, state=state, updated_at=now, **fields)
            self.bus.publish("dispatch.state", {"incident_id": sortie.incident_id, "state": state, **fields})
        else:
            row = self.store.update_plan(sortie.plan_id, state=state, updated_at=now, **fields)
            self.bus.publish("plan.state", {**self.plan_view(row), **fields})
        self.bus.publish("incident.updated", self.incident_view(self.store.incident(sortie.incident_id)))

    async def _fly(self, sortie: Sortie, name: str, plan: MissionPlan, *, approved_by: str,
                   approved_at: datetime, pilot: str, params: Mapping[str, float] | None = None,
                   follow: Follow | None = None) -> None:
        """Upload, check, arm, start, then watch the vehicle until it is home and disarmed.

        ``params`` are set and verified before arming (a plan's failsafe return: RTL_ALT, ...)."""
        incident_id = sortie.incident_id
        flight: FlightRow | None = None
        try:
            vehicle = self.fleet.vehicle(name)
            await vehicle.set_mode("GUIDED")
            await vehicle.upload_mission(plan.items)
            self.bus.publish("mission.uploaded", {"incident_id": incident_id, "vehicle": name,
                                                  "items": len(plan.items)})
            # Pre-flight: link, EKF, GPS, battery for this mission plus the reserve, failsafe
            # parameters set to safe actions, and the mission's geofence loaded and enabled.
            report = await preflight(
                vehicle, need_pct=plan.energy_pct, reserve_pct=DEFAULT_RESERVE_PCT,
                fence=mission_fence(plan.path, self.district.airspace), required_params=dict(params or {}),
                fence_alt_max_m=plan.alt_above_home_m + FENCE_ALT_MARGIN_M if plan.vehicle_type == "copter" else None)
            self.bus.publish("dispatch.preflight", {"incident_id": incident_id, "plan_id": sortie.plan_id,
                                                    "vehicle": name, **report.to_dict()})
            report.raise_if_failed()
            await vehicle.arm()
            # the log book entry starts when the vehicle is armed
            flight = self.store.insert_flight(
                vehicle=name, incident_id=incident_id, pilot=pilot, approved_by=approved_by,
                approved_at=approved_at, armed_at=self.clock.now(), state="flying",
                detail={"checks": list(plan.checks), "preflight": report.to_dict(),
                        "planned_path": [list(p) for p in plan.path]})
            self.bus.publish("flight.started", self.flight_view(flight))
            await vehicle.set_mode("AUTO")
            if vehicle.state.vehicle_type == "copter":
                # ArduCopter takes off from the ground in AUTO only on MISSION_START
                await vehicle.start_mission()
            self._set_dispatch(sortie, "flying")
        except VehicleError as err:
            log.warning("dispatch of incident %d with %s failed: %s", incident_id, name, err)
            self._fail(sortie, name, str(err), flight=flight)
            return
        except Exception as err:
            self._fail(sortie, name, f"internal error: {err!r}", flight=flight)
            raise
        await self._track(sortie, name, len(plan.items), flight_id=flight.id, follow=follow)

    async def _track(self, sortie: Sortie, name: str, items: int, *, flight_id: int | None,
                     resumed: bool = False, follow: Follow | None = None) -> None:
        """Follow the flight to its end: returning once the RTL item is current, done when disarmed.

        ``items`` is the mission length without the home slot, so the last item (RTL)
        has sequence ``items``. A resumed watch (after a restart) that finds the vehicle
        already disarmed ends the flight there.
        """
        state = "flying"
        airborne = resumed
        max_agl_m: float | None = None
        flown_m = 0.0  # from every telemetry position, finer than the stored track
        last: tuple[float, float] | None = None
        while True:
            try:
                vehicle = self.fleet.vehicle(name)
            except VehicleError:
                await asyncio.sleep(1.0)
                continue
            async for t in vehicle.telemetry():
                if not airborne and t.armed and not t.landed:
                    airborne = True
                    if flight_id is not None:
                        self.store.update_flight(flight_id, takeoff_at=self.clock.now())
                if airborne and t.armed and math.isfinite(t.lat_deg) and math.isfinite(t.lon_deg):
                    if last is not None:
                        flown_m += ground_distance_m(last, (t.lon_deg, t.lat_deg))
                    last = (t.lon_deg, t.lat_deg)
                if airborne and t.vehicle_type != "boat" and math.isfinite(t.alt_amsl_m):
                    agl = t.alt_amsl_m - self.district.terrain.elevation_at(t.lon_deg, t.lat_deg)
                    if math.isfinite(agl):
                        max_agl_m = agl if max_agl_m is None else max(max_agl_m, agl)
                if follow is not None and airborne:
                    self._follow(sortie, follow, t, items)
                if resumed and not t.armed:
                    self._finish(sortie, name, flight_id, max_agl_m, flown_m)
                    return
                if state == "flying" and t.armed and t.battery_pct < self.settings.return_battery_pct:
                    # ArduPilot's own battery failsafe is off by default (BATT_FS_LOW_ACT 0):
                    # the service does not count on it.
                    state = "returning"
                    await self._return_low_battery(sortie, name, vehicle, t.battery_pct)
                    self._hand_over(sortie, f"{name} returned on low battery ({t.battery_pct:.0f} %)")
                elif state == "flying" and follow is not None and follow.energy is not None and t.armed \
                        and math.isfinite(t.lat_deg) and math.isfinite(t.battery_pct):
                    # the live recall: the battery left must cover the way home and the reserve
                    verdict = must_turn_back((t.lon_deg, t.lat_deg), max(0.0, min(100.0, t.battery_pct)), None,
                                             follow.energy, DEFAULT_RESERVE_PCT, home=follow.home,
                                             height_m=max(0.0, t.alt_rel_m) if math.isfinite(t.alt_rel_m) else 0.0)
                    if verdict.turn_back:
                        state = "returning"
                        self.bus.publish("plan.recall", {"id": sortie.plan_id, "incident_id": sortie.incident_id,
                                                         "vehicle": name, "battery_pct": round(t.battery_pct, 1),
                                                         "home_pct": round(verdict.home_pct, 1),
                                                         "reserve_pct": DEFAULT_RESERVE_PCT})
                        await self._return_low_battery(sortie, name, vehicle, t.battery_pct)
                        self._hand_over(sortie, f"{name} recalled: {t.battery_pct:.0f} % left, about "
                                                f"{verdict.home_pct:.0f} % needed to get home above the reserve")
                if state == "flying" and (t.mission_seq >= items or t.mode in ("RTL", "LAND", "SMART_RTL")):
                    state = "returning"
                    self._set_dispatch(sortie, state)
                if t.vehicle_type == "boat" and state == "returning" and t.armed and _near_home(t):
                    try:
                        await vehicle.disarm()  # ArduRover holds armed at home after RTL
                    except VehicleError as err:
                        log.warning("boat %s would not disarm at home: %s", name, err)
                        continue
                if state == "returning" and not t.armed and (airborne or t.vehicle_type == "boat"):
                    if follow is not None:
                        self._follow(sortie, follow, t, items, final=True)
                    self._finish(sortie, name, flight_id, max_agl_m, flown_m)
                    return

    async def _return_low_battery(self, sortie: Sortie, name: str, vehicle: Vehicle, battery_pct: float) -> None:
        incident_id = sortie.incident_id
        log.warning("%s at %.0f %% battery on incident %d: ordering RTL", name, battery_pct, incident_id)
        self.bus.publish("dispatch.low_battery", {"incident_id": incident_id, "vehicle": name,
                                                  "battery_pct": round(battery_pct, 1),
                                                  "threshold_pct": self.settings.return_battery_pct})
        try:
            await vehicle.rtl()
        except VehicleError as err:
            log.error("%s did not accept RTL on low battery: %s", name, err)
            self.bus.publish("dispatch.alert", {"incident_id": incident_id, "vehicle": name,
                                                "text": f"low battery and RTL refused: {err}"})
        self._set_dispatch(sortie, "returning")

    def _finish(self, sortie: Sortie, name: str, flight_id: int | None, max_agl_m: float | None,
                flown_m: float) -> None:
        incident_id = sortie.incident_id
        if flight_id is not None:
            self._close_flight(flight_id, max_agl_m, flown_m)
            self._spawn(self._fetch_flight_log(flight_id, name), name=f"log-{flight_id}")
        self._set_dispatch(sortie, "landed")
        if sortie.plan_id is not None:
            self._end_patrol(sortie.incident_id, "done")
        self.assignments.pop(name, None)
        self._plan_of_vehicle.pop(name, None)
        self._count_dispatch("completed")
        self.bus.publish("mission.completed", {"incident_id": incident_id, "plan_id": sortie.plan_id, "vehicle": name})

    def _close_flight(self, flight_id: int, max_agl_m: float | None, flown_m: float | None = None, *,
                      state: str = "landed") -> None:
        """Complete the log book entry: landing time, flown distance, highest point above ground.

        The distance comes from the tracker's telemetry when it watched the whole flight,
        else (a resumed watch adds what it saw) at least from the stored track.
        """
        now = self.clock.now()
        row = self.store.flight(flight_id)
        track = self.store.track_between(row.vehicle, row.takeoff_at or row.armed_at, now)
        distance = path_length_m([(p.lon, p.lat) for p in track]) if len(track) > 1 else 0.0
        distance = max(distance, flown_m or 0.0)
        previous = row.max_agl_m
        if previous is not None and (max_agl_m is None or previous > max_agl_m):
            max_agl_m = previous
        row = self.store.update_flight(flight_id, landed_at=now, state=state, distance_m=round(distance, 1),
                                       max_agl_m=None if max_agl_m is None else round(max_agl_m, 1))
        self.bus.publish("flight.ended", self.flight_view(row))

    async def _fetch_flight_log(self, flight_id: int, name: str) -> None:
        """Download the flight's on-board log (the newest) into the data folder, for the record."""
        dest = self.settings.data_dir / "flights" / f"{name}-{flight_id}.log"
        try:
            vehicle = self.fleet.vehicle(name)
            async with asyncio.timeout(LOG_DOWNLOAD_TIMEOUT_S):
                entries = await vehicle.log_entries()
                if not entries:
                    raise LogNotFound(f"{name} has no on-board log")
                entry = entries[-1]
                dest.parent.mkdir(parents=True, exist_ok=True)
                await vehicle.download_log(entry.id, dest, size_bytes=entry.size_bytes)
            outcome = {"log_file": str(dest), "log_bytes": entry.size_bytes}
        except (UavError, TimeoutError) as err:
            log.warning("on-board log of flight %d (%s) not downloaded: %s", flight_id, name, err or "timed out")
            outcome = {"log_error": str(err) or "timed out"}
        row = self.store.flight(flight_id)
        row = self.store.update_flight(flight_id, detail={**row.detail, **outcome})
        self.bus.publish("flight.log", {"flight_id": flight_id, "vehicle": name, **outcome})

    def _fail(self, sortie: Sortie, name: str | None, error: str, *, flight: FlightRow | None = None) -> None:
        incident_id = sortie.incident_id
        if flight is not None:
            self._close_flight(flight.id, None, state="aborted")
        self._set_dispatch(sortie, "failed", error=error)
        if sortie.plan_id is not None:
            self._end_patrol(sortie.incident_id, "failed")
        if name is not None:
            self.assignments.pop(name, None)
            self._plan_of_vehicle.pop(name, None)
        self._count_dispatch("failed")
        row = self.store.incident(incident_id)
        if row.status == Status.DISPATCHED and not self._flying_for(incident_id):
            row = self.store.update_incident(incident_id, status=transition(row.status, Status.OPEN),
                                             updated_at=self.clock.now())
            self.bus.publish("incident.updated", self.incident_view(row))

    def _flying_for(self, incident_id: int) -> bool:
        """Whether a vehicle is still on its way for the incident (its dispatch or one of its plans)."""
        d = self.store.dispatch(incident_id)
        return (d is not None and d.state in DISPATCH_ACTIVE) or bool(
            self.store.plans(incident_id=incident_id, states=PLAN_ACTIVE))

    # -- vehicles -------------------------------------------------------------------------
    async def _traffic_hold(self, name: str, reason: str) -> None:
        """Hold a drone that manned traffic threatens (the dispatcher's "hold": resumable)."""
        outcome = await self.fleet.vehicle(name).pause()
        self.bus.publish("vehicle.command", {"name": name, "action": "hold", "operator": "traffic-watch",
                                             "reason": reason, "outcome": str(outcome)})

    def _on_vehicle_event(self, kind: str, name: str, data: dict[str, Any]) -> None:
        if kind == "vehicle.adsb":
            self.traffic_watch.observe(name, data)
            self.bus.publish("vehicle.adsb", {"name": name, **data})
            return
        if kind == "vehicle.telemetry" and data.get("vehicle_type") == "copter" and data.get("lon") is not None:
            self.traffic_watch.update_drone(name, data["lon"], data["lat"], data.get("alt_amsl_m"),
                                            data.get("vel_north_mps"), data.get("vel_east_mps"), data.get("climb_mps"),
                                            bool(data.get("armed")), landed=bool(data.get("landed")))
        if kind == "vehicle.telemetry":
            view = self.vehicle_view(name, {"link": "connected", **data})  # telemetry only flows while heard
            self.bus.publish("vehicle.telemetry", view)
            loop_now = asyncio.get_running_loop().time()
            if data.get("lon") is not None and loop_now - self._last_track.get(name, 0.0) >= TRACK_PERIOD_S:
                self._last_track[name] = loop_now
                self.store.add_track(vehicle=name, time=self.clock.now(), lon=data["lon"], lat=data["lat"],
                                     alt_rel_m=data.get("alt_rel_m") or 0.0, mode=str(data.get("mode")),
                                     armed=bool(data.get("armed")), battery_pct=data.get("battery_pct"))
            return
        if kind == "vehicle.connected" and self.vehicle_specs[name].video_url is None:
            self._spawn(self._discover_video(name), name=f"video-{name}")
        payload = {"name": name, **data}
        if kind in ("vehicle.lost", "vehicle.recovered") and name in self.assignments:
            payload["incident_id"] = self.assignments[name]
        if kind == "vehicle.lost":
            for p in self.store.plans(states=("flying", "returning")):
                if p.vehicle == name:
                    self._hand_over(Sortie(p.incident_id, p.id), f"{name} lost its link")
        self.bus.publish(kind, payload)

    async def _discover_video(self, name: str) -> None:
        """Ask a vehicle without a configured video address for its VIDEO_STREAM_INFORMATION."""
        try:
            stream = await self.fleet.vehicle(name).video_stream()
        except UavError as err:
            log.info("%s: no video stream information (%s)", name, err)
            return
        if stream is not None and stream.uri:
            self._video[name] = stream.uri

    async def fleet_command(self, action: str, *, operator: str, force: bool = False,
                            polygon: list[tuple[float, float]] | None = None) -> dict[str, Any]:
        """RTL all, or hold all inside an area: per-vehicle outcomes, one failure never stops the rest."""
        if action == "rtl":
            outcomes = await self.fleet.rtl_all(operator=operator, force=force)
        elif action == "hold" and polygon:
            outcomes = await self.fleet.hold_all_in(polygon, operator=operator, force=force)
        else:
            raise Refused("fleet action must be 'rtl', or 'hold' with an area polygon")
        result = {name: o.to_dict() for name, o in outcomes.items()}
        self.bus.publish("fleet.command", {"action": action, "operator": operator, "outcomes": result})
        return {"action": action, "outcomes": result}

    async def vehicle_command(self, name: str, action: str, *, operator: str, lon: float | None = None,
                              lat: float | None = None) -> dict[str, Any]:
        """A person's command to one vehicle: refused unless ``operator`` holds its control
        (or nobody does); the service's own flights command the vehicle directly."""
        if name not in self.vehicle_specs:
            raise NotFound(f"unknown vehicle {name!r}")
        lease = await self.fleet.controller(name)
        if lease is not None and lease.operator != operator:
            raise Conflict(f"{name} is controlled by {lease.operator}; ask them, or take control explicitly")
        vehicle = self.fleet.vehicle(name)  # VehicleUnavailable → 503
        result: dict[str, Any] = {"vehicle": name, "action": action, "operator": operator}
        if action == "hold":
            result["outcome"] = str(await vehicle.pause())
        elif action == "resume":
            await vehicle.resume()
        elif action == "rtl":
            await vehicle.rtl()
        elif action == "land":
            await vehicle.land()
        elif action == "look_at":
            if lon is None or lat is None:
                raise Refused("look_at needs lon and lat")
            ground = self.district.terrain.elevation_at(lon, lat)
            await vehicle.look_at(lon, lat, ground if math.isfinite(ground) else 0.0)
        elif action == "photo":
            image = await vehicle.take_photo()
            result["image"] = {"lon": image.lon_deg, "lat": image.lat_deg, "alt_amsl_m": image.alt_amsl_m,
                               "time": image.time_utc.isoformat() if image.time_utc else None,
                               "file_url": image.file_url, "index": image.image_index}
            self.bus.publish("vehicle.photo", {"name": name, **result["image"]})
        else:
            raise Refused(f"unknown action {action!r}")
        self.bus.publish("vehicle.command", {"name": name, "action": action, "operator": operator})
        return result

    async def take_control(self, name: str, *, operator: str, force: bool = False) -> dict[str, Any]:
        if name not in self.vehicle_specs:
            raise NotFound(f"unknown vehicle {name!r}")
        current = await self.fleet.controller(name)
        previous = current.operator if current else None
        try:
            await self.fleet.acquire(name, operator, force=force)
        except NotInControl as err:
            raise Conflict(f"{name} is controlled by {err.holder}; take over with force") from None
        self._controllers[name] = operator
        self.bus.publish("vehicle.control", {"name": name, "operator": operator, "previous": previous,
                                             "forced": previous not in (None, operator)})
        return {"vehicle": name, "operator": operator, "previous": previous}

    async def release_control(self, name: str, *, operator: str) -> None:
        if name not in self.vehicle_specs:
            raise NotFound(f"unknown vehicle {name!r}")
        lease = await self.fleet.controller(name)
        if lease is None:
            self._controllers.pop(name, None)
            return
        if lease.operator != operator:
            raise Conflict(f"{name} is controlled by {lease.operator}, not {operator}")
        await self.fleet.release(lease)
        self._controllers.pop(name, None)
        self.bus.publish("vehicle.control", {"name": name, "operator": None, "previous": operator,
                                             "forced": False})

    def vehicle_view(self, name: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = self.vehicle_specs[name]
        st = state if state is not None else self.fleet.states().get(name, {})
        incident_id = self.assignments.get(name)
        # what it flies for: a task plan, else the incident's own dispatch (one store read, only while on task)
        sortie: PlanRow | DispatchRow | None = None
        if incident_id is not None:
            plan_id = self._plan_of_vehicle.get(name)
            sortie = self.store.plan(plan_id) if plan_id is not None else self.store.dispatch(incident_id)
        path = ((sortie.proposal if isinstance(sortie, PlanRow) else sortie.plan) or {}).get("path") if sortie else None
        link = st.get("link", "never")
        down = self._down.get(name)
        if down is not None and not down.start <= self.clock.now() < down.end:
            down = None
        battery = st.get("battery_pct")
        if link == "lost":
            vstate = "lost"
        elif down is not None:
            vstate = "maintenance"
        elif link != "connected":
            vstate = "offline"
        elif incident_id is not None:
            vstate = "returning" if sortie is not None and sortie.state == "returning" else "on_task"
        elif not st.get("armed") and battery is not None and battery < CHARGED_PCT:
            vstate = "charging"  # at its base below a full charge: it can still be planned if the battery suffices
        else:
            vstate = "ready"
        return {
            "name": name, "type": spec.type, "system_id": spec.system_id, "link": link, "state": vstate,
            "mode": st.get("mode"), "armed": st.get("armed"), "lon": st.get("lon"), "lat": st.get("lat"),
            "alt_rel_m": st.get("alt_rel_m"), "alt_amsl_m": st.get("alt_amsl_m"), "heading_deg": st.get("heading_deg"),
            "groundspeed_mps": st.get("groundspeed_mps"), "battery_pct": st.get("battery_pct"),
            "ekf_ok": st.get("ekf_ok"), "gps_fix_type": st.get("gps_fix_type"), "satellites": st.get("satellites"),
            "mission_seq": st.get("mission_seq"), "mission_count": st.get("mission_count"),
            "packet_loss": st.get("packet_loss"), "last_heard_age_s": st.get("last_heard_age_s"),
            "latency_ms": st.get("latency_smoothed_ms") or st.get("latency_ms"),
            "mission_path": path, "incident_id": incident_id, "controller": self._controllers.get(name),
            "video_url": spec.video_url or self._video.get(name), "payloads": sorted(spec.payloads),
            "maintenance": None if down is None else {"id": down.id, "reason": down.reason, "by": down.created_by,
                                                      "until": down.end.isoformat()},
        }

    def vehicle_maintenance(self, name: str, *, by: str, reason: str, end: datetime,
                            start: datetime | None = None) -> dict[str, Any]:
        """Take a vehicle out of service until ``end`` (it is not planned meanwhile)."""
        if name not in self.vehicle_specs:
            raise NotFound(f"unknown vehicle {name!r}")
        now = self.clock.now()
        start = start or now
        if end <= start:
            raise Refused(f"the window must end after it starts ({start.isoformat()})")
        if name in self.assignments:
            raise Conflict(f"{name} is on a task (incident {self.assignments[name]}): bring it home first")
        row = self.store.add_vehicle_maintenance(vehicle=name, start=start, end=end, reason=reason, created_by=by,
                                                 created_at=now)
        self._down[name] = row
        self.bus.publish("vehicle.maintenance", {"name": name, "id": row.id, "reason": reason, "by": by,
                                                 "until": end.isoformat()})
        return self.vehicle_view(name)

    def end_vehicle_maintenance(self, name: str, window_id: int, *, by: str) -> dict[str, Any]:
        row = self.store.end_vehicle_maintenance(window_id, vehicle=name, end=self.clock.now())
        if name in self._down and self._down[name].id == row.id:
            del self._down[name]
        self.bus.publish("vehicle.maintenance_ended", {"name": name, "id": window_id, "by": by})
        return self.vehicle_view(name)

    def vehicles(self) -> list[dict[str, Any]]:
        states = self.fleet.states()
        return [self.vehicle_view(name, states.get(name, {})) for name in self.vehicle_specs]

    # -- views ----------------------------------------------------------------------------
    def incident_view(self, row: IncidentRow, *, evidence: bool = False) -> dict[str, Any]:
        level = Level(row.level)
        d = self.store.dispatch(row.id)
        view: dict[str, Any] = {
            "id": row.id, "kind": row.kind, "level": level.colour, "level_zh": level.colour_zh,
            "response": level.response, "response_zh": level.response_zh, "status": row.status,
            "lon": row.lon, "lat": row.lat, "on_water": row.on_water, "sensor_id": row.sensor_id,
            "title": row.detail.get("title"), "title_zh": row.detail.get("title_zh"),
            "reason": row.detail.get("reason"), "reason_zh": row.detail.get("reason_zh"),
            "assessment_note": "System assessment from sensor data, not an official warning signal "
                               "(only the meteorological and hydrological services issue those).",
            "assessment_note_zh": "系统依据传感器数据的研判，非官方预警信号（预警信号仅由气象、水文部门发布）。",
            "levels": row.detail.get("levels", []),
            "verification": row.detail.get("verification"),
            "sensors": sorted({m.get("sensor_id", k) for k, m in (row.detail.get("members") or {}).items()}
                              or ([row.sensor_id] if row.sensor_id else [])),
            "model": {k: m["model"] for k, m in (row.detail.get("members") or {}).items() if m.get("model")},
            "opened_at": row.opened_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "dispatch": None if d is None else {
                "vehicle": d.vehicle, "state": d.state, "error": d.error, "approved_by": d.approved_by,
                "approved_at": d.approved_at.isoformat(), "mission_path": d.plan.get("path") if d.plan else None,
            },
            "tasks": [self.task_view(t) for t in self.store.tasks(incident_id=row.id)],
            "plans": [{"id": p.id, "task_key": p.task_key, "vehicle": p.vehicle, "state": p.state,
                       "progress": p.progress} for p in self.store.plans(incident_id=row.id)],
        }
        view["hotspots"] = self._hotspots_of(row.lon, row.lat, set(view["sensors"]))
        view.update(self.life_view(row))  # acknowledgement, declared response, the people's actions
        if evidence:
            view["evidence"] = row.detail.get("evidence", [])
        return view

    def flight_view(self, f: FlightRow, *, path: bool = False) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        view: dict[str, Any] = {
            "id": f.id, "vehicle": f.vehicle, "incident_id": f.incident_id, "pilot": f.pilot,
            "approved_by": f.approved_by, "approved_at": iso(f.approved_at), "armed_at": iso(f.armed_at),
            "takeoff_at": iso(f.takeoff_at), "landed_at": iso(f.landed_at), "state": f.state,
            "max_agl_m": f.max_agl_m, "distance_m": f.distance_m,
            "checks": f.detail.get("checks", []),
            "log_file": f.detail.get("log_file"), "log_error": f.detail.get("log_error"),
        }
        if path:
            end = f.landed_at or self.clock.now()
            view["path"] = [[p.lon, p.lat, p.alt_rel_m] for p in
                            self.store.track_between(f.vehicle, f.takeoff_at or f.armed_at, end)]
            view["planned_path"] = f.detail.get("planned_path")
            view["preflight"] = f.detail.get("preflight")
        return view

    def sensors_geojson(self) -> dict[str, Any]:
        features = []
        for spec in self.registry.values():
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [spec.lon, spec.lat]},
                "properties": {
                    "id": spec.sensor_id, "kind": spec.kind, "name": spec.name, "name_zh": spec.name_zh,
                    "quantity": spec.quantity, "unit": spec.unit, "datum": spec.datum,
                    "status": self.sensing.health[spec.sensor_id].status or "unknown",
                    "latest": _wire_or_none(self.sensing.newest(spec.sensor_id, spec.quantity)),
                    "thresholds": dict(spec.thresholds),
                    **self.sensing.sensor_state(spec.sensor_id, self.clock.now()),
                },
            })
        return {"type": "FeatureCollection", "features": features}


def _members(raw: dict[str, Any]) -> dict[str, Member]:
    return {key: Member(m.get("sensor_id", key), Level[m["level"].upper()], m.get("flag", "good"), m.get("kind", ""))
            for key, m in raw.items()}


def _window(row: Any) -> MaintenanceWindow:
    return MaintenanceWindow(row.id, row.sensor_id, row.start, row.end, row.reason, row.created_by)


def _reading(row: Any) -> Reading:
    return Reading(row.sensor_id, row.quantity, row.value, row.unit, row.time, row.flag)


def _wire_or_none(r: Reading | None) -> dict[str, Any] | None:
    return reading_wire(r) if r is not None else None


def _titles(a: Assessment, spec: SensorSpec) -> tuple[str, str]:
    if a.kind == "flood":
        return (f"River level at {spec.name}: {a.level.colour} level",
                f"{spec.name_zh}水位{a.level.colour_zh}等级")
    if a.kind == "landslide":
        return (f"Slope movement at {spec.name}: {a.level.colour} level",
                f"{spec.name_zh}边坡变形{a.level.colour_zh}等级")
    if a.kind == "fire":
        return (f"Fire near {spec.name}: {a.level.colour} level", f"{spec.name_zh}附近火情{a.level.colour_zh}等级")
    if a.kind == "chemical_leak":
        gas = (a.extra or {}).get("substance", "gas")
        return (f"{gas} leak at {spec.name}: {a.level.colour} level", f"{spec.name_zh}{gas}泄漏{a.level.colour_zh}等级")
    return (f"Rainstorm at {spec.name}: {a.level.colour} level", f"{spec.name_zh}暴雨{a.level.colour_zh}等级")


def _plan_wire(plan: MissionPlan) -> dict[str, Any]:
    return {
        "approvals": [dict(a) for a in plan.approvals],
        "path": [list(p) for p in plan.path], "items": len(plan.items),
        "alt_above_home_m": plan.alt_above_home_m, "max_agl_m": plan.max_agl_m,
        "distance_m": plan.distance_m, "est_duration_s": plan.est_duration_s, "checks": list(plan.checks),
    }


def _near_home(t: Telemetry, radius_m: float = 15.0) -> bool:
    if not all(math.isfinite(x) for x in (t.home_lat_deg, t.home_lon_deg, t.lat_deg, t.lon_deg)):
        return False
    return ground_distance_m((t.home_lon_deg, t.home_lat_deg), (t.lon_deg, t.lat_deg)) <= radius_m
