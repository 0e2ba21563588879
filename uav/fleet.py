"""The fleet: owns the links and vehicles of a deployment, watches them, reports transitions.

    fleet = Fleet([FleetEntry("uav-1", "copter", "udpin:0.0.0.0:14550", 1)], on_event=bus.put)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(fleet.run())
        ...
        await fleet.vehicle("uav-1").rtl()
        async with fleet.control("uav-1", "dispatcher:li") as v: await v.pause()
        outcomes = await fleet.rtl_all(operator="dispatcher:li")   # uav.control

Events (``on_event(kind, vehicle_name, data)``, called synchronously, only on transitions):
``vehicle.connected`` (first heartbeat), ``vehicle.telemetry`` (at most every
``telemetry_period_s``), ``vehicle.mode`` (mode or armed changed),
``vehicle.mission_reached``, ``vehicle.statustext``, ``vehicle.lost`` (no heartbeat for
``link_lost_s``), ``vehicle.recovered``, ``vehicle.adsb`` (a manned aircraft the vehicle's
ADS-B receiver reports, :meth:`uav.adsb.AdsbReport.to_dict`; at most one per aircraft per
vehicle every ``ADSB_EVENT_PERIOD_S``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from uav.adsb import AdsbGate
from uav.control import FleetControlMixin
from uav.errors import VehicleUnavailable
from uav.link import MavLink, open_link, parse_url
from uav.signing import parse_key
from uav.telemetry import Telemetry, summary, to_dict
from uav.terrain import TerrainServer
from uav.vehicle import Vehicle

__all__ = ["Fleet", "FleetEntry", "EventCallback"]

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str, dict[str, Any]], None]
# Link states of a vehicle: explicit transitions only (see _Tracked.move).
NEVER: Final = "never"
CONNECTED: Final = "connected"
LOST: Final = "lost"
_TRANSITIONS: Final = {(NEVER, CONNECTED), (CONNECTED, LOST), (LOST, CONNECTED)}


@dataclass(frozen=True, slots=True)
class FleetEntry:
    """One vehicle of the fleet file: name, ``copter``/``boat``, MAVLink URL, system id.

    ``signing_key``: the vehicle's MAVLink 2 signing key (64 hex digits or base64 of 32
    bytes); with one, packets to it are signed and unsigned ones from it are dropped.
    """

    name: str
    type: str
    url: str
    system_id: int
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    signing_key: str | None = field(default=None, repr=False, compare=False, hash=False)


class _Tracked:
    """The fleet's view of one vehicle: link state and what was last reported."""

    __slots__ = ("entry", "vehicle", "link", "lost_at_s", "lost_heartbeat_s", "mode", "reached",
                 "texts", "telemetry_at_s", "telemetry_sent")

    def __init__(self, entry: FleetEntry) -> None:
        self.entry = entry
        self.vehicle: Vehicle | None = None
        self.link = NEVER
        self.lost_at_s = 0.0
        self.lost_heartbeat_s = 0.0
        self.mode: tuple[str, bool] | None = None
        self.reached = -1
        self.texts = 0
        self.telemetry_at_s = 0.0
        self.telemetry_sent: Telemetry | None = None

    def move(self, to: str) -> None:
        if (self.link, to) not in _TRANSITIONS:
            raise RuntimeError(f"{self.entry.name}: invalid link transition {self.link} → {to}")
        self.link = to


class Fleet(FleetControlMixin):
    """Owner of every vehicle; ``await run()`` inside the service's TaskGroup."""

    def __init__(self, entries: Sequence[FleetEntry], *, link_lost_s: float = 5.0,
                 on_event: EventCallback | None = None, telemetry_period_s: float = 0.5,
                 source_system: int = 255,
                 terrain: Callable[[float, float], float] | None = None) -> None:
        names: set[str] = set()
        addresses: set[tuple[str, int]] = set()
        for entry in entries:
            parse_url(entry.url)  # a bad URL fails here, at start-up
            if entry.signing_key is not None:
                try:
                    parse_key(entry.signing_key)  # so does a bad signing key
                except ValueError as err:
                    raise ValueError(f"{entry.name}: {err}") from None
            if entry.name in names:
                raise ValueError(f"duplicate vehicle name {entry.name!r}")
            if (entry.url, entry.system_id) in addresses:
                raise ValueError(f"{entry.name}: system id {entry.system_id} already used on "
                                 f"{entry.url}")
            names.add(entry.name)
            addresses.add((entry.url, entry.system_id))
        self.entries = tuple(entries)
        self.link_lost_s = link_lost_s
        self.telemetry_period_s = telemetry_period_s
        self.source_system = source_system
        self.terrain = terrain  # (lon, lat) -> ground m AMSL: answers terrain requests
        # one server (one cache) for the fleet: vehicles at one base ask for the same blocks
        self.terrain_server = TerrainServer(terrain) if terrain is not None else None
        self.event_errors = 0
        self._on_event = on_event
        self._tracked = {e.name: _Tracked(e) for e in entries}
        self._links: dict[str, MavLink] = {}

    # ---- queries -------------------------------------------------------------------------

    def vehicle(self, name: str) -> Vehicle:
        """The connected vehicle called ``name``; VehicleUnavailable otherwise."""
        tracked = self._tracked.get(name)
        if tracked is None:
            raise VehicleUnavailable(f"no vehicle {name!r} in the fleet "
                                     f"(known: {', '.join(self._tracked) or 'none'})")
        if tracked.vehicle is None:
            raise VehicleUnavailable(f"{name}: fleet not running")
        if tracked.link == NEVER:
            raise VehicleUnavailable(f"{name}: never heard on {tracked.entry.url}")
        if tracked.link == LOST:
            raise VehicleUnavailable(f"{name}: link lost (no heartbeat for over "
                                     f"{self.link_lost_s:g} s)")
        return tracked.vehicle

    def link_state(self, name: str) -> str:
        """``"connected"``, ``"lost"`` or ``"never"``."""
        return self._tracked[name].link

    def states(self) -> dict[str, dict[str, Any]]:
        """name → JSON-able telemetry plus ``link``, ``name``, ``type``, ``url`` and the link
        quality: ``packet_loss``, ``last_heard_age_s``, ``latency_ms`` and
        ``latency_smoothed_ms`` (TIMESYNC round trip; None until measured)."""
        now_s = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for name, tracked in self._tracked.items():
            t = (tracked.vehicle.state if tracked.vehicle is not None
                 else Telemetry(system_id=tracked.entry.system_id,
                                vehicle_type=tracked.entry.type))
            data = to_dict(t, now_s=now_s)
            link = self._links.get(tracked.entry.url)
            stats = link.stats(tracked.entry.system_id) if link is not None else None
            quality = stats.quality(now_s).to_dict() if stats else {}
            data.update(name=name, type=tracked.entry.type, url=tracked.entry.url,
                        link=tracked.link,
                        packet_loss=round(stats.loss_ratio, 4) if stats else None,
                        latency_ms=quality.get("latency_ms"),
                        latency_smoothed_ms=quality.get("latency_smoothed_ms"))
            out[name] = data
        return out

    # ---- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Open links, follow vehicles, send heartbeats, watch the links; until cancelled."""
        try:
            for url in dict.fromkeys(e.url for e in self.entries):
                self._links[url] = await open_link(url, source_system=self.source_system,
                                                   connect=False)
            for entry in self.entries:
                if entry.signing_key is not None:
                    self._links[entry.url].set_signing_key(entry.system_id, entry.signing_key)
            async with asyncio.TaskGroup() as tg:
                for link in self._links.values():
                    tg.create_task(link.run(), name=f"link {link.url}")
                for tracked in self._tracked.values():
                    entry = tracked.entry
                    vehicle = Vehicle(self._links[entry.url], entry.system_id, name=entry.name,
                                      vehicle_type=entry.type, link_lost_s=self.link_lost_s,
                                      terrain=self.terrain_server)
                    tracked.vehicle = vehicle
                    tg.create_task(vehicle.run(), name=f"vehicle {entry.name}")
                    tg.create_task(self._watch(tracked), name=f"watch {entry.name}")
                    tg.create_task(self._watch_adsb(tracked), name=f"adsb {entry.name}")
                tg.create_task(self._watchdog(), name="fleet watchdog")
        finally:
            for link in self._links.values():
                await link.close()
            self._links.clear()
            for tracked in self._tracked.values():
                tracked.vehicle = None

    def _emit(self, kind: str, name: str, data: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, name, data)
        except Exception:  # a broken listener must not stop the fleet
            self.event_errors += 1
            log.exception("fleet event handler failed on %s for %s", kind, name)

    async def _watch(self, tracked: _Tracked) -> None:
        assert tracked.vehicle is not None
        async for t in tracked.vehicle.telemetry(maxsize=64):
            self._observe(tracked, t, time.monotonic())

    async def _watch_adsb(self, tracked: _Tracked) -> None:
        assert tracked.vehicle is not None
        gate = AdsbGate()
        async for report in tracked.vehicle.adsb_reports():
            if gate.due(report.icao_address, time.monotonic()):
                self._emit("vehicle.adsb", tracked.entry.name, report.to_dict())

    def _observe(self, tracked: _Tracked, t: Telemetry, now_s: float) -> None:
        name = tracked.entry.name
        if not t.heartbeat_seen:
            return
        fresh = now_s - t.heartbeat_at_s <= self.link_lost_s
        if tracked.link == NEVER:
            tracked.move(CONNECTED)
            log.info("%s: connected (%s, %s)", name, t.vehicle_type, t.mode)
            self._emit("vehicle.connected", name, {
                "system_id": t.system_id, "vehicle_type": t.vehicle_type, "mode": t.mode,
                "armed": t.armed, "url": tracked.entry.url})
        elif tracked.link == LOST and fresh and t.heartbeat_at_s > tracked.lost_at_s:
            tracked.move(CONNECTED)
            silent_s = round(t.heartbeat_at_s - tracked.lost_heartbeat_s, 1)
            log.info("%s: recovered after %.1f s without heartbeat", name, silent_s)
            self._emit("vehicle.recovered", name, {"silent_s": silent_s})
        mode = (t.mode, t.armed)
        if mode != tracked.mode:
            previous = tracked.mode
            tracked.mode = mode
            self._emit("vehicle.mode", name, {
                "mode": t.mode, "armed": t.armed,
                "previous_mode": previous[0] if previous else None,
                "previous_armed": previous[1] if previous else None})
        if t.last_reached_seq != tracked.reached and t.last_reached_seq >= 0:
            tracked.reached = t.last_reached_seq
            self._emit("vehicle.mission_reached", name, {"seq": t.last_reached_seq})
        if t.statustext_count > tracked.texts:
            new = min(t.statustext_count - tracked.texts, len(t.statustext))
            tracked.texts = t.statustext_count
            for line in t.statustext[len(t.statustext) - new:]:
                self._emit("vehicle.statustext", name, {
                    "severity": line.severity, "severity_name": line.severity_name,
                    "text": line.text})
        self._maybe_telemetry(tracked, t, now_s)

    def _maybe_telemetry(self, tracked: _Tracked, t: Telemetry, now_s: float) -> None:
        if t is tracked.telemetry_sent or now_s - tracked.telemetry_at_s < self.telemetry_period_s:
            return
        tracked.telemetry_at_s = now_s
        tracked.telemetry_sent = t
        self._emit("vehicle.telemetry", tracked.entry.name, summary(t))

    async def _watchdog(self) -> None:
        period_s = min(0.5, self.link_lost_s / 5, self.telemetry_period_s)
        while True:
            await asyncio.sleep(period_s)
            now_s = time.monotonic()
            for tracked in self._tracked.values():
                vehicle = tracked.vehicle
                if vehicle is None:
                    continue
                t = vehicle.state
                if tracked.link == CONNECTED and now_s - t.heartbeat_at_s > self.link_lost_s:
                    tracked.move(LOST)
                    tracked.lost_at_s = now_s
                    tracked.lost_heartbeat_s = t.heartbeat_at_s
                    silent_s = round(now_s - t.heartbeat_at_s, 1)
                    log.warning("%s: lost (no heartbeat for %.1f s)", tracked.entry.name, silent_s)
                    self._emit("vehicle.lost", tracked.entry.name, {"silent_s": silent_s})
                elif tracked.link == CONNECTED:
                    self._maybe_telemetry(tracked, t, now_s)  # the last change before a lull

