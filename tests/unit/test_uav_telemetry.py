"""MAVLink messages → Telemetry snapshots."""

import json
import math

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.telemetry import STATUSTEXT_KEEP, Telemetry, summary, to_dict, update, vehicle_type_of

CODEC = mav.MAVLink(None, srcSystem=1, srcComponent=1)


def _wire(msg):
    """Through bytes and back, as the link sees it."""
    return mav.MAVLink(None).parse_buffer(msg.pack(CODEC))[0]


def _apply(t, *msgs, now_s=10.0):
    for msg in msgs:
        t = update(t, _wire(msg), now_s)
    return t


def test_heartbeat_sets_type_mode_armed():
    t = _apply(Telemetry(1), CODEC.heartbeat_encode(
        mav.MAV_TYPE_SURFACE_BOAT, mav.MAV_AUTOPILOT_ARDUPILOTMEGA,
        mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mav.MAV_MODE_FLAG_SAFETY_ARMED, 10,
        mav.MAV_STATE_ACTIVE))
    assert (t.vehicle_type, t.mode, t.custom_mode, t.armed) == ("boat", "AUTO", 10, True)
    assert t.heartbeat_seen and not t.landed  # armed boat, no EXTENDED_SYS_STATE


def test_gcs_heartbeat_is_ignored():
    t = _apply(Telemetry(1), CODEC.heartbeat_encode(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID,
                                                    0, 0, 0))
    assert not t.heartbeat_seen and t.vehicle_type == "unknown"


def test_vehicle_types():
    assert vehicle_type_of(mav.MAV_TYPE_QUADROTOR) == "copter"
    assert vehicle_type_of(mav.MAV_TYPE_HEXAROTOR) == "copter"
    assert vehicle_type_of(mav.MAV_TYPE_SURFACE_BOAT) == "boat"
    assert vehicle_type_of(mav.MAV_TYPE_FIXED_WING) == "plane"
    assert vehicle_type_of(mav.MAV_TYPE_GIMBAL) == "unknown"


def test_position_battery_mission_home_gps():
    t = _apply(
        Telemetry(1),
        CODEC.global_position_int_encode(1000, 297000000, 1066000000, 350500, 30250,
                                         300, 400, -100, 9000),
        CODEC.sys_status_encode(0, 0, 0, 500, 15800, -1, 73, 0, 0, 0, 0, 0, 0),
        CODEC.mission_current_encode(2, 5),
        CODEC.mission_item_reached_encode(1),
        CODEC.home_position_encode(296900000, 1065900000, 320000, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0),
        CODEC.gps_raw_int_encode(0, 3, 0, 0, 0, 65535, 65535, 0, 0, 12),
    )
    assert (t.lat_deg, t.lon_deg) == (29.7, 106.6)
    assert (t.alt_amsl_m, t.alt_rel_m, t.heading_deg) == (350.5, 30.25, 90.0)
    assert t.groundspeed_mps == 5.0 and t.climb_mps == 1.0
    assert (t.battery_v, t.battery_pct) == (15.8, 73.0)
    assert (t.mission_seq, t.mission_count, t.last_reached_seq) == (2, 5, 1)
    assert (t.home_lat_deg, t.home_lon_deg, t.home_alt_amsl_m) == (29.69, 106.59, 320.0)
    assert (t.gps_fix_type, t.satellites) == (3, 12)
    assert t.position_valid and t.home_valid


def test_unknown_sentinels_become_nan():
    t = _apply(Telemetry(1),
               CODEC.global_position_int_encode(0, 0, 0, 0, 0, 0, 0, 0, 65535),
               CODEC.sys_status_encode(0, 0, 0, 0, 65535, -1, -1, 0, 0, 0, 0, 0, 0))
    assert math.isnan(t.heading_deg) and math.isnan(t.battery_v) and math.isnan(t.battery_pct)
    assert not t.position_valid  # ArduPilot's (0, 0) before the EKF origin


def _ekf(flags):
    return CODEC.ekf_status_report_encode(flags, 0, 0, 0, 0, 0)


def test_ekf_ok_follows_arducopter_flags():
    # FACTS: 0xa7 before "EKF3 IMU0 is using GPS", 0x33f after.
    assert not _apply(Telemetry(1), _ekf(0xA7)).ekf_ok
    assert _apply(Telemetry(1), _ekf(0x33F)).ekf_ok
    assert not _apply(Telemetry(1), _ekf(0x33F | mav.EKF_CONST_POS_MODE)).ekf_ok


def test_landed_from_extended_sys_state_or_inferred():
    armed_copter = _apply(Telemetry(1), CODEC.heartbeat_encode(
        mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA,
        mav.MAV_MODE_FLAG_SAFETY_ARMED, 4, 4))
    low = _apply(armed_copter, CODEC.global_position_int_encode(0, 1, 1, 0, 100, 0, 0, 0, 0))
    assert low.landed
    high = _apply(low, CODEC.global_position_int_encode(0, 1, 1, 0, 20000, 0, 0, 0, 0))
    assert not high.landed
    says_ground = _apply(high, CODEC.extended_sys_state_encode(0, mav.MAV_LANDED_STATE_ON_GROUND))
    assert says_ground.landed
    says_air = _apply(says_ground, CODEC.extended_sys_state_encode(0, mav.MAV_LANDED_STATE_IN_AIR))
    assert not says_air.landed


def test_statustext_keeps_the_last_few_and_counts():
    t = Telemetry(1)
    for i in range(STATUSTEXT_KEEP + 3):
        t = _apply(t, CODEC.statustext_encode(mav.MAV_SEVERITY_WARNING, f"line {i}".encode()))
    assert t.statustext_count == STATUSTEXT_KEEP + 3
    assert len(t.statustext) == STATUSTEXT_KEEP
    assert t.last_statustext().text == f"line {STATUSTEXT_KEEP + 2}"
    assert t.last_statustext().severity_name == "WARNING"


def test_dicts_are_strict_json():
    t = _apply(Telemetry(1), CODEC.statustext_encode(mav.MAV_SEVERITY_INFO, b"hi"))
    full = json.loads(json.dumps(to_dict(t, now_s=12.0), allow_nan=False))
    assert full["lat"] is None and full["statustext"][0]["text"] == "hi"
    assert full["last_heard_age_s"] == 2.0
    small = summary(t)
    json.dumps(small, allow_nan=False)
    assert {"lon", "lat", "alt_rel_m", "alt_amsl_m", "heading_deg", "groundspeed_mps",
            "battery_pct", "battery_v", "mode", "armed", "landed", "mission_seq",
            "ekf_ok"} <= small.keys()
