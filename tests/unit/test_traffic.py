"""Manned traffic from ADS-B: parsing ADSB_VEHICLE, threats within the lookahead, stale reports."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav
from pyproj import Geod

from command.dispatch.traffic import DroneState, Traffic, threats

GEOD = Geod(ellps="WGS84")
HOME = (106.80, 29.90)  # over the Yulin valley, north of the airport
DRONE = DroneState("UAV-1", HOME[0], HOME[1], alt_amsl_m=400.0)
ALL_VALID = (mav.ADSB_FLAGS_VALID_COORDS | mav.ADSB_FLAGS_VALID_ALTITUDE | mav.ADSB_FLAGS_VALID_HEADING
             | mav.ADSB_FLAGS_VALID_VELOCITY | mav.ADSB_FLAGS_VALID_CALLSIGN | mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID)


def at(bearing_deg: float, distance_m: float, origin: tuple[float, float] = HOME) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], bearing_deg, distance_m)
    return lon, lat


def message(lonlat: tuple[float, float], *, alt_m: float = 450.0, heading_deg: float = 0.0, speed_mps: float = 60.0,
            climb_mps: float = 0.0, tslc: int = 1, flags: int = ALL_VALID, icao: int = 0x780A1B,
            callsign: bytes = b"B7613") -> dict[str, Any]:
    """An ADSB_VEHICLE through pymavlink's codec (packed and decoded), as a dict."""
    msg = mav.MAVLink_adsb_vehicle_message(
        icao, round(lonlat[1] * 1e7), round(lonlat[0] * 1e7), mav.ADSB_ALTITUDE_TYPE_GEOMETRIC, round(alt_m * 1000),
        round(heading_deg * 100) % 36000, round(speed_mps * 100), round(climb_mps * 100), callsign,
        mav.ADSB_EMITTER_TYPE_ROTOCRAFT, tslc, flags, 0)
    codec = mav.MAVLink(None)
    return codec.decode(bytearray(msg.pack(codec))).to_dict()


def aircraft(lonlat: tuple[float, float], **kw: Any) -> Traffic:
    return Traffic.from_message(message(lonlat, **kw))


def test_from_message_units() -> None:
    t = aircraft((106.85, 29.95), alt_m=812.5, heading_deg=270.5, speed_mps=61.2, climb_mps=-2.5, tslc=3)
    assert (t.lon, t.lat) == pytest.approx((106.85, 29.95))
    assert t.alt_m == pytest.approx(812.5) and t.altitude_type == "geometric"
    assert t.heading_deg == pytest.approx(270.5) and t.speed_mps == pytest.approx(61.2)
    assert t.climb_mps == pytest.approx(-2.5) and t.tslc_s == 3
    assert t.callsign == "B7613" and t.label == "B7613" and t.icao_address == 0x780A1B
    assert t.has_position and t.has_altitude and t.has_velocity
    # Without the valid-callsign and vertical-velocity flags: no callsign, no climb rate.
    t = aircraft((106.85, 29.95), climb_mps=-2.5,
                 flags=ALL_VALID & ~mav.ADSB_FLAGS_VALID_CALLSIGN & ~mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID)
    assert t.callsign == "" and t.label == "ICAO 780A1B" and t.climb_mps == 0.0


def test_from_message_rejects_bad_reports() -> None:
    good = message((106.85, 29.95))
    with pytest.raises(ValueError, match="without tslc"):
        Traffic.from_message({k: v for k, v in good.items() if k != "tslc"})
    with pytest.raises(ValueError, match="altitude_type"):
        Traffic.from_message({**good, "altitude_type": 7})
    with pytest.raises(ValueError, match="out of range"):
        Traffic.from_message({**good, "lat": 950_000_000})
    with pytest.raises(ValueError, match="not a number"):
        Traffic.from_message({**good, "altitude": "high"})
    assert Traffic.from_message({**good, "callsign": b"CSN6541\x00"}).callsign == "CSN6541"


def test_head_on_traffic_is_a_threat_before_it_is_within_separation() -> None:
    # A helicopter 5 km east flying west at 60 m/s, 50 m above: 2 km reached in 50 s.
    heli = aircraft(at(90.0, 5000.0), heading_deg=270.0, speed_mps=60.0)
    (a,) = threats([DRONE], [heli]).alerts
    assert a.drone == "UAV-1" and a.action == "hold" and a.traffic is heli
    assert a.horizontal_m == pytest.approx(5000.0 - 60.0, abs=15.0)  # moved on by tslc = 1 s
    assert a.horizontal_m > 2000.0
    assert a.time_to_conflict_s == pytest.approx((4940.0 - 2000.0) / 60.0, abs=0.5)
    # Straight at the drone: the closest approach is nearly a collision, 4.94 km / 60 m/s from now.
    assert a.closest_horizontal_m < 100.0 and a.time_to_closest_s == pytest.approx(4940.0 / 60.0, abs=0.5)
    assert a.vertical_m == pytest.approx(50.0) and "UAV-1 holds" in a.reason and "悬停" in a.reason_zh
    # With a shorter lookahead the same encounter is not yet an alert.
    assert threats([DRONE], [heli], lookahead_s=40.0).alerts == ()


def test_diverging_traffic_is_not_a_threat() -> None:
    heli = aircraft(at(90.0, 3000.0), heading_deg=90.0, speed_mps=60.0)
    assert threats([DRONE], [heli]).alerts == ()


def test_passing_wide_is_not_a_threat() -> None:
    # Flying north along a line 2.5 km east of the drone: never closer than 2.5 km.
    heli = aircraft(at(90.0, 2500.0, at(180.0, 3000.0)), heading_deg=0.0, speed_mps=60.0)
    assert threats([DRONE], [heli]).alerts == ()
    (a,) = threats([DRONE], [heli], horizontal_m=2600.0).alerts
    assert a.closest_horizontal_m == pytest.approx(2500.0, abs=30.0)


def test_traffic_1000_m_above_is_not_a_threat() -> None:
    overhead = aircraft(at(90.0, 500.0), alt_m=1400.0, heading_deg=270.0)
    assert threats([DRONE], [overhead]).alerts == ()
    # The same aircraft descending at 20 m/s comes down through our level within the minute.
    (a,) = threats([DRONE], [aircraft(at(90.0, 500.0), alt_m=1400.0, heading_deg=270.0, climb_mps=-20.0)]).alerts
    assert a.time_to_conflict_s == pytest.approx((1000.0 - 20.0 - 300.0) / 20.0, abs=0.5)  # 1 s of tslc
    assert a.vertical_m == pytest.approx(980.0)


def test_within_separation_now() -> None:
    (a,) = threats([DRONE], [aircraft(at(0.0, 800.0), heading_deg=0.0, speed_mps=40.0)]).alerts
    assert a.time_to_conflict_s == 0.0 and a.time_to_closest_s == 0.0 and "now within separation" in a.reason


def test_hovering_helicopter_and_a_moving_drone() -> None:
    heli = aircraft(at(0.0, 3000.0), speed_mps=0.0)  # hovering (rescue hoist) 3 km north
    moving = DroneState("UAV-2", HOME[0], HOME[1], 400.0, vel_north_mps=25.0)
    (a,) = threats([moving, DRONE], [heli]).alerts
    assert a.drone == "UAV-2" and a.time_to_conflict_s == pytest.approx((3000.0 - 2000.0) / 25.0, abs=0.5)
    assert threats([moving, DRONE], [heli]).for_drone("UAV-1") == ()


def test_report_age_moves_the_aircraft_on() -> None:
    # 2.3 km east flying west at 60 m/s, last heard 8 s ago: it is now 1.82 km away, inside 2 km.
    (a,) = threats([DRONE], [aircraft(at(90.0, 2300.0), heading_deg=270.0, tslc=8)]).alerts
    assert a.horizontal_m == pytest.approx(2300.0 - 480.0, abs=10.0) and a.time_to_conflict_s == 0.0


def test_stale_reports_are_ignored_with_a_note() -> None:
    stale = aircraft(at(90.0, 1000.0), heading_deg=270.0, tslc=30)
    out = threats([DRONE], [stale])
    assert out.alerts == ()
    (note,) = out.ignored
    assert note.icao_address == 0x780A1B and "30 s ago" in note.reason and "过时" in note.reason_zh
    assert threats([DRONE], [stale], max_tslc_s=60.0).alerts != ()


def test_own_drone_and_positionless_reports_are_ignored() -> None:
    ours = aircraft(HOME, alt_m=400.0, icao=0xABC123)
    me = DroneState("UAV-1", HOME[0], HOME[1], 400.0, icao_address=0xABC123)
    out = threats([me], [ours])
    assert out.alerts == () and "our drones" in out.ignored[0].reason
    lost = aircraft(at(90.0, 500.0), flags=ALL_VALID & ~mav.ADSB_FLAGS_VALID_COORDS)
    out = threats([DRONE], [lost])
    assert out.alerts == () and "no valid position" in out.ignored[0].reason


def test_unknown_altitude_is_taken_at_every_height() -> None:
    high = aircraft(at(90.0, 1000.0), alt_m=5000.0, flags=ALL_VALID & ~mav.ADSB_FLAGS_VALID_ALTITUDE)
    (a,) = threats([DRONE], [high]).alerts
    assert math.isnan(a.vertical_m) and "altitude unknown" in a.reason


def test_no_velocity_is_taken_as_standing_still() -> None:
    t = aircraft(at(90.0, 2500.0), heading_deg=270.0, flags=ALL_VALID & ~mav.ADSB_FLAGS_VALID_VELOCITY)
    assert not t.has_velocity
    assert threats([DRONE], [t]).alerts == ()


def test_alerts_per_drone_soonest_first() -> None:
    near = aircraft(at(90.0, 2500.0), heading_deg=270.0, icao=1, callsign=b"NEAR")
    far = aircraft(at(270.0, 4000.0), heading_deg=90.0, icao=2, callsign=b"FAR")
    other = DroneState("UAV-3", *at(0.0, 20_000.0), alt_amsl_m=400.0)
    out = threats([DRONE, other], [far, near])
    assert [a.traffic.callsign for a in out.for_drone("UAV-1")] == ["NEAR", "FAR"]
    assert list(out.by_drone()) == ["UAV-1"]


def test_parameter_validation() -> None:
    with pytest.raises(ValueError, match="horizontal_m"):
        threats([DRONE], [], horizontal_m=0.0)
    with pytest.raises(ValueError, match="lookahead_s"):
        threats([DRONE], [], lookahead_s=float("nan"))
    assert threats([], [aircraft(HOME)]).alerts == ()
