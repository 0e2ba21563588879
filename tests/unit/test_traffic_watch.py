"""The traffic watch: one hold per threat, alerts and clears, disarmed drones and stale reports;
and the ADS-B report of the vehicle side (uav.adsb) read the same as the MAVLink message."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timezone
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav
from pyproj import Geod

from command.clock import ManualClock
from command.dispatch.traffic import Traffic
from command.traffic_watch import HoldRequest, TrafficWatch, traffic_from_report
from uav.adsb import AdsbGate, AdsbStore, report_from_message

GEOD = Geod(ellps="WGS84")
HOME = (106.80, 29.90)
ALL_VALID = (mav.ADSB_FLAGS_VALID_COORDS | mav.ADSB_FLAGS_VALID_ALTITUDE | mav.ADSB_FLAGS_VALID_HEADING
             | mav.ADSB_FLAGS_VALID_VELOCITY | mav.ADSB_FLAGS_VALID_CALLSIGN | mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID)


def at(bearing_deg: float, distance_m: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(HOME[0], HOME[1], bearing_deg, distance_m)
    return lon, lat


def wire(lonlat: tuple[float, float], *, alt_m: float = 450.0, heading_deg: float = 270.0,
         speed_mps: float = 60.0, climb_mps: float = 0.0, tslc: int = 1, flags: int = ALL_VALID,
         icao: int = 0x780A1B, callsign: bytes = b"B7613") -> Any:
    """An ADSB_VEHICLE packed and decoded by pymavlink, as a vehicle link delivers it."""
    msg = mav.MAVLink_adsb_vehicle_message(
        icao, round(lonlat[1] * 1e7), round(lonlat[0] * 1e7), mav.ADSB_ALTITUDE_TYPE_GEOMETRIC,
        round(alt_m * 1000), round(heading_deg * 100) % 36000, round(speed_mps * 100), round(climb_mps * 100),
        callsign, mav.ADSB_EMITTER_TYPE_ROTOCRAFT, tslc, flags, 0)
    codec = mav.MAVLink(None)
    return codec.decode(bytearray(msg.pack(codec)))


def report(lonlat: tuple[float, float], **kw: Any) -> dict[str, Any]:
    """The ``vehicle.adsb`` event data for that message."""
    return report_from_message(wire(lonlat, **kw), received_at_s=100.0).to_dict()


class Recorder:
    """The service's side: what was published."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]


async def never(name: str, reason: str) -> None:
    raise AssertionError("assess() only asks; run() holds")


def watch() -> tuple[TrafficWatch, Recorder, ManualClock]:
    clock = ManualClock(datetime(2025, 7, 1, 6, 0, tzinfo=timezone.utc))
    events = Recorder()
    return TrafficWatch(never, events, clock), events, clock


def flying(w: TrafficWatch, name: str = "UAV-1", *, armed: bool = True, landed: bool = False) -> None:
    w.update_drone(name, HOME[0], HOME[1], 400.0, 0.0, 0.0, 0.0, armed, landed=landed)


def test_report_from_the_vehicle_reads_as_the_mavlink_message() -> None:
    msg = wire(at(45.0, 3000.0), alt_m=812.5, heading_deg=270.5, speed_mps=61.2, climb_mps=-2.5, tslc=3)
    ours = traffic_from_report(report_from_message(msg, received_at_s=5.0).to_dict())
    assert ours == Traffic.from_message(msg.to_dict())
    # without the velocity flags: unknown (None on the wire), and no motion in the assessment
    msg = wire(at(45.0, 3000.0), flags=ALL_VALID & ~mav.ADSB_FLAGS_VALID_VELOCITY
               & ~mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID & ~mav.ADSB_FLAGS_VALID_CALLSIGN)
    data = report_from_message(msg, received_at_s=5.0).to_dict()
    assert data["speed_mps"] is None and data["climb_mps"] is None and data["callsign"] == ""
    assert data["icao"] == "780A1B" and not traffic_from_report(data).has_velocity


def test_vehicle_side_refuses_impossible_reports() -> None:
    bad = wire(HOME)
    bad.altitude_type = 5
    with pytest.raises(ValueError, match="altitude_type 5"):
        report_from_message(bad, received_at_s=0.0)
    bad = wire(HOME)
    bad.lat = 950_000_000
    with pytest.raises(ValueError, match="out of range"):
        report_from_message(bad, received_at_s=0.0)


def test_store_keeps_the_latest_per_aircraft_for_60_s_and_the_gate_one_per_second() -> None:
    store = AdsbStore()
    store.observe(report_from_message(wire(at(0.0, 5000.0), icao=1), received_at_s=10.0))
    store.observe(report_from_message(wire(at(0.0, 4000.0), icao=1), received_at_s=11.0))
    store.observe(report_from_message(wire(at(90.0, 4000.0), icao=2), received_at_s=12.0))
    latest = store.current(now_s=12.0)
    assert [r.icao_address for r in latest] == [2, 1] and latest[1].received_at_s == 11.0
    assert [r.icao_address for r in store.current(now_s=71.5)] == [2]  # 1 was last heard 60.5 s ago
    assert store.current(now_s=72.5) == []
    gate = AdsbGate()
    passed = [t for t in (0.0, 0.3, 0.99, 1.0, 1.5, 2.2) if gate.due(7, t)]
    assert passed == [0.0, 1.0, 2.2] and gate.due(8, 0.3)  # per aircraft


def test_one_hold_per_threat_while_it_lasts_and_a_second_aircraft_is_a_second_threat() -> None:
    w, events, clock = watch()
    flying(w)
    w.observe("UAV-1", report(at(90.0, 4000.0)))  # 4 km east flying west at 60 m/s, 50 m above
    (hold,) = w.assess()
    assert hold == HoldRequest("UAV-1", 0x780A1B, hold.reason) and "UAV-1 holds" in hold.reason
    (alert,) = events.of("traffic.alert")
    assert alert["drone"] == "UAV-1" and alert["callsign"] == "B7613" and alert["action"] == "hold"
    assert alert["distance_m"] == pytest.approx(4000.0 - 60.0, abs=15.0)  # moved on by tslc 1 s
    assert alert["time_to_closest_s"] == pytest.approx(3940.0 / 60.0, abs=0.5)
    assert alert["reported_by"] == "UAV-1" and alert["aircraft_alt_m"] == pytest.approx(450.0)
    w.hold_finished(hold)
    for _ in range(3):  # the same aircraft, still coming: no second hold, no second alert
        clock.advance(2.0)
        flying(w)
        w.observe("UAV-2", report(at(90.0, 3500.0)))
        assert w.assess() == []
    assert len(events.of("traffic.alert")) == 1 and w.alerts()[0]["held"]
    w.observe("UAV-1", report(at(270.0, 3000.0), heading_deg=90.0, icao=0x780A1C, callsign=b"B7614"))
    (second,) = w.assess()
    assert second.icao_address == 0x780A1C and len(events.of("traffic.alert")) == 2


def test_clear_when_the_aircraft_has_passed() -> None:
    w, events, clock = watch()
    flying(w)
    w.observe("UAV-1", report(at(90.0, 2500.0)))
    (hold,) = w.assess()
    w.hold_finished(hold)
    clock.advance(60.0)  # it flew over; now 1.1 km west, going away
    flying(w)
    w.observe("UAV-1", report(at(270.0, 1100.0)))
    assert w.assess() == [] and events.of("traffic.clear") == []  # within 2 km: still a threat
    clock.advance(20.0)
    flying(w)
    w.observe("UAV-1", report(at(270.0, 2300.0)))
    assert w.assess() == [] and events.of("traffic.clear") == []  # over for less than clear_after_s
    clock.advance(5.0)
    flying(w)
    w.observe("UAV-1", report(at(270.0, 2600.0)))
    assert w.assess() == []
    (clear,) = events.of("traffic.clear")
    assert clear["drone"] == "UAV-1" and clear["icao"] == "780A1B" and clear["held"]
    assert "no longer a threat" in clear["reason"] and clear["duration_s"] == 85.0
    assert w.alerts() == []


def test_disarmed_or_landed_drones_are_not_held_and_landing_clears() -> None:
    w, events, _clock = watch()
    w.observe("UAV-1", report(at(90.0, 1000.0)))
    flying(w, "UAV-1", armed=False)
    flying(w, "UAV-2", landed=True)  # armed on the pad
    assert w.assess() == [] and events.events == []
    flying(w, "UAV-1")  # took off
    (hold,) = w.assess()
    assert hold.drone == "UAV-1"
    flying(w, "UAV-1", armed=False)
    assert w.assess() == []
    (clear,) = events.of("traffic.clear")
    assert "landed or disarmed" in clear["reason"] and not clear["held"]


def test_stale_reports_neither_alert_nor_keep_an_alert() -> None:
    w, events, clock = watch()
    flying(w)
    w.observe("UAV-1", report(at(90.0, 1000.0), speed_mps=0.0, tslc=12))  # heard 12 s ago by the receiver
    assert w.assess() == [] and events.events == []
    w.observe("UAV-1", report(at(90.0, 1000.0), speed_mps=0.0))  # a hovering helicopter, heard now
    assert len(w.assess()) == 1
    clock.advance(11.0)  # nothing more from it: older than max_tslc_s (10 s)
    flying(w)
    assert w.assess() == [] and events.of("traffic.clear") == []  # over for less than clear_after_s
    clock.advance(5.0)
    flying(w)
    w.assess()
    (clear,) = events.of("traffic.clear")
    assert "not heard for over 10 s" in clear["reason"]


def test_stale_drone_telemetry_is_not_assessed() -> None:
    w, events, clock = watch()
    flying(w)
    clock.advance(6.0)  # longer than drone_stale_s without telemetry
    w.observe("UAV-1", report(at(90.0, 1000.0), speed_mps=0.0))
    assert w.assess() == [] and events.events == []


def test_bad_reports_are_counted_and_skipped() -> None:
    w, events, _clock = watch()
    flying(w)
    good = report(at(90.0, 1000.0))
    for bad, reason in (({k: v for k, v in good.items() if k != "tslc_s"}, "without tslc_s"),
                        ({**good, "altitude_type": "radar"}, "altitude_type"),
                        ({**good, "lat": None}, "not valid"),
                        ({**good, "alt_m": "high"}, "not a number")):
        with pytest.raises(ValueError, match=reason):
            traffic_from_report(bad)
        w.observe("UAV-1", bad)
    assert w.rejected == 4 and w.assess() == [] and events.events == []


async def test_run_holds_once_and_asks_again_after_a_failed_hold() -> None:
    clock = ManualClock(datetime(2025, 7, 1, 6, 0, tzinfo=timezone.utc))
    events = Recorder()
    calls: list[tuple[str, str]] = []
    changed = asyncio.Event()

    async def hold(name: str, reason: str) -> None:
        calls.append((name, reason))
        changed.set()
        if len(calls) == 1:
            raise RuntimeError("mode BRAKE refused")

    w = TrafficWatch(hold, events, clock, retry_s=5.0)
    flying(w)
    w.observe("UAV-1", report(at(90.0, 1000.0), speed_mps=0.0))

    async def until(predicate: Any) -> None:
        async with asyncio.timeout(10.0):
            while not predicate():
                changed.clear()
                await changed.wait()

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(w.run(period_s=0.05, min_interval_s=0.0))
        await until(lambda: len(calls) == 1)
        async with asyncio.timeout(10.0):
            while not events.of("traffic.hold_failed"):
                await asyncio.sleep(0.01)
        (failed,) = events.of("traffic.hold_failed")
        assert failed["drone"] == "UAV-1" and "BRAKE refused" in failed["error"]
        for _ in range(5):  # while retry_s has not passed, assessments ask for nothing
            await asyncio.sleep(0.06)
            assert len(calls) == 1
        clock.advance(5.0)
        flying(w)
        w.observe("UAV-1", report(at(90.0, 1000.0), speed_mps=0.0))
        await until(lambda: len(calls) == 2)
        async with asyncio.timeout(10.0):
            while not w.alerts()[0]["held"]:
                await asyncio.sleep(0.01)
        task.cancel()
    assert [name for name, _ in calls] == ["UAV-1", "UAV-1"] and len(events.of("traffic.alert")) == 1


def test_bad_settings_are_refused() -> None:
    clock = ManualClock(datetime(2025, 7, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="lookahead_s"):
        TrafficWatch(never, Recorder(), clock, lookahead_s=0.0)
    with pytest.raises(ValueError, match="retry_s"):
        TrafficWatch(never, Recorder(), clock, retry_s=math.nan)
