"""The traffic watch: manned aircraft heard over ADS-B hold our airborne drones.

Fed with ADS-B reports (the ``vehicle.adsb`` events of :mod:`uav.fleet`, in the form of
:meth:`uav.adsb.AdsbReport.to_dict`) and with drone states (from ``vehicle.telemetry``), it
assesses :func:`command.dispatch.traffic.threats` and

- for a new threat (drone, aircraft) to an airborne drone publishes ``traffic.alert`` and asks
  once for ``hold(drone, reason)``: not again while the same aircraft keeps threatening that
  drone (a hold that failed is published as ``traffic.hold_failed`` and asked again after
  ``retry_s``);
- publishes ``traffic.clear`` when the threat has been over for ``clear_after_s``: the encounter
  geometry no longer loses separation, the aircraft is no longer heard (older than
  ``max_tslc_s``), or the drone landed or disarmed. The hold is not undone: a person resumes.

The decisions are in the synchronous :meth:`TrafficWatch.assess` (no I/O; the clock is
injected); :meth:`TrafficWatch.run` is the thin loop that calls it and awaits the holds.

    watch = TrafficWatch(hold=service.traffic_hold, publish=bus.publish, clock=clock)
    watch.observe("UAV-1", report)                      # on vehicle.adsb
    watch.update_drone("UAV-1", lon, lat, alt_amsl_m, vn, ve, climb, armed, landed=landed)
    tg.create_task(watch.run())
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal

from command.clock import Clock
from command.dispatch.traffic import (
    ALTITUDE_TYPES, DEFAULT_HORIZONTAL_M, DEFAULT_LOOKAHEAD_S, DEFAULT_MAX_TSLC_S, DEFAULT_VERTICAL_M,
    FLAG_VALID_COORDS, Alert, DroneState, Traffic, threats,
)

__all__ = ["HoldRequest", "TrafficWatch", "traffic_from_report"]

log = logging.getLogger(__name__)

Hold = Callable[[str, str], Awaitable[object]]
Publish = Callable[[str, dict[str, Any]], object]

# An aircraft not heard for this long is forgotten (the ground keeps reports 60 s, uav.adsb);
# it stops counting as a threat much sooner, past threats()' max_tslc_s.
KEEP_S: Final = 60.0
# A drone whose telemetry is older than this is not assessed (its encounters are kept as they
# are): a decision on a stale position would be wrong either way. Five missed 0.5 s telemetry
# events plus margin; the fleet calls a link lost after 5 s (uav.fleet link_lost_s).
DRONE_STALE_S: Final = 5.0
# A threat is over only after this long without one: positions jitter, and an alert that
# flickers at the edge of the 2 km / 60 s envelope would be asked and cleared every second.
CLEAR_AFTER_S: Final = 5.0
# A failed hold is asked again after this long while the threat lasts.
RETRY_S: Final = 5.0
# Deadline of one hold: a mode change is up to 3 tries of 1.5 s for the ack and 3 s for the
# heartbeat to show it (uav.vehicle set_mode), and a pause tries DO_PAUSE_CONTINUE first.
HOLD_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Hold ``drone`` because of aircraft ``icao_address``."""

    drone: str
    icao_address: int
    reason: str


@dataclass(slots=True)
class _Heard:
    traffic: Traffic
    observed_at: datetime
    reported_by: str

    def heard_at(self) -> float:
        """When the receiver last heard the aircraft, as a POSIX time."""
        return self.observed_at.timestamp() - self.traffic.tslc_s


@dataclass(slots=True)
class _Drone:
    state: DroneState
    airborne: bool
    updated_at: datetime


@dataclass(slots=True)
class _Encounter:
    alert: Alert
    since: datetime
    reported_by: str
    over_since: datetime | None = None  # the first assessment that found no threat since the last one
    hold: Literal["wanted", "running", "done", "failed"] = "wanted"
    failed_at: datetime | None = None


def _number(report: Mapping[str, Any], key: str) -> float:
    """A numeric field; None/NaN (unknown, per its flag) becomes 0.0, which the flags then ignore."""
    value = report.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"ADS-B report field {key} is not a number: {value!r}")
    return float(value) if math.isfinite(value) else 0.0


def traffic_from_report(report: Mapping[str, Any]) -> Traffic:
    """A ``vehicle.adsb`` report (uav.adsb.AdsbReport.to_dict) as :class:`Traffic`; ValueError
    naming what is wrong."""
    missing = [k for k in ("icao_address", "lon", "lat", "alt_m", "altitude_type", "heading_deg",
                           "speed_mps", "climb_mps", "emitter_type", "tslc_s", "flags") if k not in report]
    if missing:
        raise ValueError(f"ADS-B report without {', '.join(missing)}")
    icao, flags = report["icao_address"], report["flags"]
    if not isinstance(icao, int) or not 0 <= icao <= 0xFFFFFF:
        raise ValueError(f"ADS-B report with an ICAO address that is not 24 bits: {icao!r}")
    if not isinstance(flags, int):
        raise ValueError(f"ADS-B report with flags that are not an integer: {flags!r}")
    if report["altitude_type"] not in ALTITUDE_TYPES.values():
        raise ValueError(f"ADS-B report {icao:06X}: unknown altitude_type {report['altitude_type']!r}")
    lon, lat = _number(report, "lon"), _number(report, "lat")
    if flags & FLAG_VALID_COORDS and (report["lon"] is None or report["lat"] is None
                                      or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0)):
        raise ValueError(f"ADS-B report {icao:06X}: position {report['lon']}, {report['lat']} not valid")
    tslc = _number(report, "tslc_s")
    if tslc < 0:
        raise ValueError(f"ADS-B report {icao:06X}: negative time since last contact {tslc}")
    squawk = report.get("squawk")
    return Traffic(
        icao_address=icao, callsign=str(report.get("callsign") or ""), lon=lon, lat=lat,
        alt_m=_number(report, "alt_m"), altitude_type=report["altitude_type"],
        heading_deg=_number(report, "heading_deg"), speed_mps=_number(report, "speed_mps"),
        climb_mps=_number(report, "climb_mps"), emitter_type=int(_number(report, "emitter_type")),
        tslc_s=tslc, flags=flags, squawk=squawk if isinstance(squawk, int) else None,
    )


def _json(value: float) -> float | None:
    return round(value, 1) if math.isfinite(value) else None


class TrafficWatch:
    """Holds airborne drones threatened by manned traffic; publishes alerts and clears."""

    def __init__(self, hold: Hold, publish: Publish, clock: Clock, *,
                 horizontal_m: float = DEFAULT_HORIZONTAL_M, vertical_m: float = DEFAULT_VERTICAL_M,
                 lookahead_s: float = DEFAULT_LOOKAHEAD_S, max_tslc_s: float = DEFAULT_MAX_TSLC_S,
                 keep_s: float = KEEP_S, drone_stale_s: float = DRONE_STALE_S,
                 clear_after_s: float = CLEAR_AFTER_S, retry_s: float = RETRY_S,
                 hold_timeout_s: float = HOLD_TIMEOUT_S) -> None:
        for name, v in (("keep_s", keep_s), ("drone_stale_s", drone_stale_s), ("retry_s", retry_s),
                        ("hold_timeout_s", hold_timeout_s)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if not (math.isfinite(clear_after_s) and clear_after_s >= 0):
            raise ValueError(f"clear_after_s must be zero or more, got {clear_after_s}")
        threats([], [], horizontal_m=horizontal_m, vertical_m=vertical_m, lookahead_s=lookahead_s,
                max_tslc_s=max_tslc_s)  # the envelope's own checks, at construction
        self._hold = hold
        self._publish = publish
        self.clock = clock
        self.horizontal_m, self.vertical_m = horizontal_m, vertical_m
        self.lookahead_s, self.max_tslc_s = lookahead_s, max_tslc_s
        self.keep_s, self.drone_stale_s = keep_s, drone_stale_s
        self.clear_after_s, self.retry_s, self.hold_timeout_s = clear_after_s, retry_s, hold_timeout_s
        self.rejected = 0  # reports refused (each logged with its reason)
        self._heard: dict[int, _Heard] = {}
        self._drones: dict[str, _Drone] = {}
        self._encounters: dict[tuple[str, int], _Encounter] = {}
        self._changed = asyncio.Event()

    # ---- inputs ----------------------------------------------------------------------------

    def observe(self, vehicle_name: str, report: Mapping[str, Any]) -> None:
        """One ADS-B report heard by ``vehicle_name``'s receiver; the freshest report of each
        aircraft counts, whichever vehicle heard it."""
        try:
            traffic = traffic_from_report(report)
        except ValueError as err:
            self.rejected += 1
            log.warning("ADS-B report from %s refused: %s", vehicle_name, err)
            return
        heard = _Heard(traffic, self.clock.now(), vehicle_name)
        old = self._heard.get(traffic.icao_address)
        if old is None or heard.heard_at() >= old.heard_at():
            self._heard[traffic.icao_address] = heard
            self._changed.set()

    def update_drone(self, name: str, lon: float | None, lat: float | None, alt_amsl_m: float | None,
                     vel_north_mps: float | None, vel_east_mps: float | None, climb_mps: float | None,
                     armed: bool, *, landed: bool = False, icao_address: int | None = None) -> None:
        """A drone's position (AMSL), ground velocity (true north/east, climb positive up) and
        whether it flies (armed and not landed); unknown values are None or NaN (as in the
        ``vehicle.telemetry`` summary). Without a position it is not assessed."""
        def known(v: float | None) -> float:
            return float(v) if v is not None and math.isfinite(v) else math.nan

        lon_, lat_, alt_ = known(lon), known(lat), known(alt_amsl_m)
        if not all(math.isfinite(v) for v in (lon_, lat_, alt_)):
            return  # no position yet (before the EKF origin): nothing to assess, nothing wrong
        vn, ve, vz = (0.0 if math.isnan(v) else v for v in (known(vel_north_mps), known(vel_east_mps),
                                                             known(climb_mps)))
        state = DroneState(name, lon_, lat_, alt_, vn, ve, vz, icao_address)
        self._drones[name] = _Drone(state, bool(armed) and not landed, self.clock.now())
        self._changed.set()

    # ---- decisions -------------------------------------------------------------------------

    def assess(self) -> list[HoldRequest]:
        """Publish new alerts and clears; return the holds to ask for now."""
        now = self.clock.now()
        self._heard = {icao: h for icao, h in self._heard.items()
                       if (now - h.observed_at).total_seconds() <= self.keep_s}
        fresh = {name: d for name, d in self._drones.items()
                 if (now - d.updated_at).total_seconds() <= self.drone_stale_s}
        flying = [d.state for d in fresh.values() if d.airborne]
        # Each report ages by the time since it came in: threats() moves it on (or finds it stale).
        traffic = [replace(h.traffic, tslc_s=h.traffic.tslc_s + max(0.0, (now - h.observed_at).total_seconds()))
                   for h in self._heard.values()]
        found = threats(flying, traffic, horizontal_m=self.horizontal_m, vertical_m=self.vertical_m,
                        lookahead_s=self.lookahead_s, max_tslc_s=self.max_tslc_s)
        holds: list[HoldRequest] = []
        current: set[tuple[str, int]] = set()
        for alert in found.alerts:
            key = (alert.drone, alert.traffic.icao_address)
            current.add(key)
            enc = self._encounters.get(key)
            if enc is None:
                enc = _Encounter(alert, now, self._heard[key[1]].reported_by)
                self._encounters[key] = enc
                self._publish("traffic.alert", self._alert_data(enc))
                log.warning("traffic: %s", alert.reason)
            else:
                enc.alert, enc.over_since = alert, None
            if enc.hold == "wanted" or (enc.hold == "failed" and enc.failed_at is not None
                                        and (now - enc.failed_at).total_seconds() >= self.retry_s):
                enc.hold = "running"
                holds.append(HoldRequest(alert.drone, key[1], alert.reason))
        for key, enc in list(self._encounters.items()):
            if key in current:
                continue
            drone = fresh.get(key[0])
            if drone is None:
                continue  # stale telemetry: no decision either way
            if drone.airborne:
                enc.over_since = enc.over_since or now
                if (now - enc.over_since).total_seconds() < self.clear_after_s:
                    continue
            del self._encounters[key]
            self._publish("traffic.clear", self._clear_data(enc, drone, now))
        return holds

    def _why_clear(self, enc: _Encounter, drone: _Drone, now: datetime) -> tuple[str, str]:
        label = enc.alert.traffic.label
        if not drone.airborne:
            return (f"{drone.state.name} landed or disarmed", f"{drone.state.name} 已降落或上锁")
        heard = self._heard.get(enc.alert.traffic.icao_address)
        age_s = (now - heard.observed_at).total_seconds() + heard.traffic.tslc_s if heard else math.inf
        if age_s > self.max_tslc_s:
            return (f"{label} not heard for over {self.max_tslc_s:.0f} s",
                    f"{label} 超过 {self.max_tslc_s:.0f} 秒未收到")
        return (f"{label} no longer a threat to {drone.state.name}",
                f"{label} 对 {drone.state.name} 已无冲突")

    def _alert_data(self, enc: _Encounter) -> dict[str, Any]:
        a, t = enc.alert, enc.alert.traffic
        return {
            "drone": a.drone, "icao_address": t.icao_address, "icao": f"{t.icao_address:06X}",
            "callsign": t.callsign, "aircraft": t.label, "reported_by": enc.reported_by,
            "distance_m": _json(a.horizontal_m), "vertical_m": _json(a.vertical_m),
            "time_to_conflict_s": _json(a.time_to_conflict_s), "time_to_closest_s": _json(a.time_to_closest_s),
            "closest_m": _json(a.closest_horizontal_m), "closest_vertical_m": _json(a.closest_vertical_m),
            "aircraft_lon": t.lon, "aircraft_lat": t.lat,
            "aircraft_alt_m": t.alt_m if t.has_altitude else None,
            "action": a.action, "reason": a.reason, "reason_zh": a.reason_zh,
        }

    def _clear_data(self, enc: _Encounter, drone: _Drone, now: datetime) -> dict[str, Any]:
        t = enc.alert.traffic
        reason, reason_zh = self._why_clear(enc, drone, now)
        return {
            "drone": enc.alert.drone, "icao_address": t.icao_address, "icao": f"{t.icao_address:06X}",
            "callsign": t.callsign, "aircraft": t.label,
            "duration_s": round((now - enc.since).total_seconds(), 1),
            "held": enc.hold == "done", "reason": reason, "reason_zh": reason_zh,
        }

    def hold_finished(self, request: HoldRequest, error: BaseException | None = None) -> None:
        """Record a hold's outcome; a failure is published and asked again after ``retry_s``."""
        enc = self._encounters.get((request.drone, request.icao_address))
        if error is not None:
            log.error("traffic: hold of %s failed: %s", request.drone, error)
            self._publish("traffic.hold_failed", {
                "drone": request.drone, "icao_address": request.icao_address,
                "icao": f"{request.icao_address:06X}", "error": str(error) or type(error).__name__,
                "error_type": type(error).__name__, "retry_s": self.retry_s})
        if enc is not None:
            enc.hold = "done" if error is None else "failed"
            enc.failed_at = self.clock.now() if error is not None else None

    def alerts(self) -> list[dict[str, Any]]:
        """The threats in force, as their ``traffic.alert`` data with ``held``."""
        return [{**self._alert_data(e), "held": e.hold == "done"} for e in self._encounters.values()]

    # ---- the loop --------------------------------------------------------------------------

    async def _run_hold(self, request: HoldRequest) -> None:
        try:
            async with asyncio.timeout(self.hold_timeout_s):
                await self._hold(request.drone, request.reason)
        except Exception as err:  # reported and retried, never the watch's end
            self.hold_finished(request, err)
        else:
            self.hold_finished(request)

    async def run(self, *, period_s: float = 1.0, min_interval_s: float = 0.2) -> None:
        """Assess on every input (at most every ``min_interval_s``) and at least every
        ``period_s`` (reports age without new input); holds run concurrently. Until cancelled."""
        async with asyncio.TaskGroup() as tg:
            while True:
                try:
                    async with asyncio.timeout(period_s):
                        await self._changed.wait()
                except TimeoutError:
                    pass
                self._changed.clear()
                for request in self.assess():
                    tg.create_task(self._run_hold(request), name=f"traffic hold {request.drone}")
                await asyncio.sleep(min_interval_s)
