"""Mission items as plain data (the MAVLink mission protocol itself lives in ``uav.vehicle``).

Every item states its altitude frame. Convention (as ArduPilot, Mission Planner and QGC):
sequence 0 of an uploaded mission is the home slot; ``Vehicle.upload_mission`` adds it,
so callers pass only the items to fly, starting at sequence 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

# Altitude frames (the _INT variants are chosen at encode time).
FRAME_GLOBAL_AMSL = mav.MAV_FRAME_GLOBAL  # metres above mean sea level
FRAME_ABOVE_HOME = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT  # metres above the home position
FRAME_ABOVE_TERRAIN = mav.MAV_FRAME_GLOBAL_TERRAIN_ALT  # metres above ground (terrain data)


@dataclass(frozen=True, slots=True)
class MissionItem:
    """One MAVLink mission item (MAV_CMD + frame + position + params)."""

    command: int
    frame: int = FRAME_ABOVE_HOME
    lat_deg: float = 0.0
    lon_deg: float = 0.0
    alt_m: float = 0.0
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    autocontinue: bool = True


def takeoff(alt_m: float, *, frame: int = FRAME_ABOVE_HOME) -> MissionItem:
    """MAV_CMD_NAV_TAKEOFF to ``alt_m`` (position ignored by ArduPilot: climbs in place)."""
    return MissionItem(mav.MAV_CMD_NAV_TAKEOFF, frame=frame, alt_m=alt_m)


def waypoint(lon_deg: float, lat_deg: float, alt_m: float, *, hold_s: float = 0.0,
             frame: int = FRAME_ABOVE_HOME) -> MissionItem:
    """MAV_CMD_NAV_WAYPOINT; ``hold_s`` is param1 (delay at the waypoint)."""
    return MissionItem(mav.MAV_CMD_NAV_WAYPOINT, frame=frame, lat_deg=lat_deg, lon_deg=lon_deg,
                       alt_m=alt_m, param1=hold_s)


def loiter_time(lon_deg: float, lat_deg: float, alt_m: float, seconds: float, *,
                radius_m: float = 0.0, frame: int = FRAME_ABOVE_HOME) -> MissionItem:
    """MAV_CMD_NAV_LOITER_TIME: circle (or hold, copter) over a point for ``seconds``."""
    return MissionItem(mav.MAV_CMD_NAV_LOITER_TIME, frame=frame, lat_deg=lat_deg, lon_deg=lon_deg,
                       alt_m=alt_m, param1=seconds, param3=radius_m)


def return_to_launch() -> MissionItem:
    """MAV_CMD_NAV_RETURN_TO_LAUNCH (copter: return and land; boat: return and hold)."""
    return MissionItem(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=FRAME_GLOBAL_AMSL)


def land(lon_deg: float = 0.0, lat_deg: float = 0.0) -> MissionItem:
    """MAV_CMD_NAV_LAND (0, 0 means: here)."""
    return MissionItem(mav.MAV_CMD_NAV_LAND, frame=FRAME_ABOVE_HOME, lat_deg=lat_deg, lon_deg=lon_deg)


# ---- wire encoding (used by the mission protocol in ``uav.vehicle``) -----------------------

# Frames ↔ their integer-coordinate variants
# (MAV_FRAME, https://mavlink.io/en/messages/common.html#MAV_FRAME):
# GLOBAL 0 ↔ GLOBAL_INT 5, GLOBAL_RELATIVE_ALT 3 ↔ GLOBAL_RELATIVE_ALT_INT 6,
# GLOBAL_TERRAIN_ALT 10 ↔ GLOBAL_TERRAIN_ALT_INT 11.
_TO_INT_FRAME = {
    mav.MAV_FRAME_GLOBAL: mav.MAV_FRAME_GLOBAL_INT,
    mav.MAV_FRAME_GLOBAL_RELATIVE_ALT: mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    mav.MAV_FRAME_GLOBAL_TERRAIN_ALT: mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT,
}
_FROM_INT_FRAME = {v: k for k, v in _TO_INT_FRAME.items()}
# Degrees ↔ MISSION_ITEM_INT x/y (degE7).
DEG_E7 = 1e7


def int_frame(frame: int) -> int:
    """The frame to put in MISSION_ITEM_INT: ``FRAME_ABOVE_HOME`` (3) → 6, INT frames unchanged."""
    return _TO_INT_FRAME.get(frame, frame)


def base_frame(frame: int) -> int:
    """The frame a MissionItem holds: GLOBAL_RELATIVE_ALT_INT (6) → 3; others unchanged."""
    return _FROM_INT_FRAME.get(frame, frame)


def home_placeholder(lon_deg: float = 0.0, lat_deg: float = 0.0,
                     alt_amsl_m: float = 0.0) -> MissionItem:
    """Sequence 0: NAV_WAYPOINT at home (zeros if unknown), as Mission Planner sends it."""
    return MissionItem(mav.MAV_CMD_NAV_WAYPOINT, frame=FRAME_GLOBAL_AMSL, lat_deg=lat_deg,
                       lon_deg=lon_deg, alt_m=alt_amsl_m)


def encode_item_int(item: MissionItem, seq: int, *, target_system: int, target_component: int,
                    mission_type: int = mav.MAV_MISSION_TYPE_MISSION,
                    ) -> mav.MAVLink_mission_item_int_message:
    """MISSION_ITEM_INT for ``item`` at ``seq`` (lat/lon in degE7, _INT frame)."""
    return mav.MAVLink_mission_item_int_message(
        target_system, target_component, seq, int_frame(item.frame), item.command, 0,
        int(item.autocontinue), item.param1, item.param2, item.param3, item.param4,
        round(item.lat_deg * DEG_E7), round(item.lon_deg * DEG_E7), item.alt_m, mission_type)


def decode_item(msg: object) -> MissionItem:
    """MissionItem from a received MISSION_ITEM_INT (degE7) or MISSION_ITEM (degrees)."""
    is_int = msg.get_type() == "MISSION_ITEM_INT"  # type: ignore[attr-defined]
    scale = DEG_E7 if is_int else 1.0
    m: Any = msg
    return MissionItem(m.command, frame=base_frame(m.frame), lat_deg=m.x / scale,
                       lon_deg=m.y / scale, alt_m=float(m.z), param1=m.param1, param2=m.param2,
                       param3=m.param3, param4=m.param4, autocontinue=bool(m.autocontinue))
