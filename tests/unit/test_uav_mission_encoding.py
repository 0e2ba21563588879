"""Mission item frames and wire encoding."""

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import mission
from uav.mission import (
    FRAME_ABOVE_HOME, FRAME_ABOVE_TERRAIN, FRAME_GLOBAL_AMSL, base_frame, decode_item,
    encode_item_int, int_frame,
)


@pytest.mark.parametrize(("frame", "wire"), [
    (FRAME_GLOBAL_AMSL, mav.MAV_FRAME_GLOBAL_INT),  # 0 → 5
    (FRAME_ABOVE_HOME, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT),  # 3 → 6
    (FRAME_ABOVE_TERRAIN, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT),  # 10 → 11
])
def test_frames_map_to_int_variants_and_back(frame, wire):
    assert int_frame(frame) == wire
    assert base_frame(wire) == frame
    assert base_frame(frame) == frame  # ArduPilot sends the non-INT numbers back
    assert int_frame(wire) == wire


def test_mission_frame_passes_through():
    assert int_frame(mav.MAV_FRAME_MISSION) == mav.MAV_FRAME_MISSION


def test_encode_decode_round_trip_through_bytes():
    item = mission.loiter_time(106.6312345, 29.7211111, 40.0, 5.0)
    msg = encode_item_int(item, 3, target_system=7, target_component=1)
    assert (msg.seq, msg.frame, msg.command) == (3, 6, mav.MAV_CMD_NAV_LOITER_TIME)
    assert (msg.x, msg.y) == (297211111, 1066312345)
    codec = mav.MAVLink(None, srcSystem=1, srcComponent=1)
    decoded = mav.MAVLink(None).parse_buffer(msg.pack(codec))[0]
    back = decode_item(decoded)
    assert back.frame == FRAME_ABOVE_HOME
    assert back.param1 == 5.0 and back.alt_m == 40.0
    assert abs(back.lat_deg - item.lat_deg) < 1e-7 and abs(back.lon_deg - item.lon_deg) < 1e-7


def test_decode_float_mission_item():
    msg = mav.MAVLink_mission_item_message(1, 1, 2, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                                           mav.MAV_CMD_NAV_WAYPOINT, 0, 1, 0, 0, 0, 0,
                                           29.7, 106.6, 30.0)
    item = decode_item(msg)
    assert item.lat_deg == pytest.approx(29.7) and item.lon_deg == pytest.approx(106.6)
    assert item.alt_m == 30.0


def test_home_placeholder_is_a_global_waypoint():
    home = mission.home_placeholder()
    assert home.command == mav.MAV_CMD_NAV_WAYPOINT and home.frame == FRAME_GLOBAL_AMSL
    assert (home.lat_deg, home.lon_deg, home.alt_m) == (0.0, 0.0, 0.0)
