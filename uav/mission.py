"""Mission items as plain data (the MAVLink mission protocol itself lives in ``uav.vehicle``).

Every item states its altitude frame. Convention (as ArduPilot, Mission Planner and QGC):
sequence 0 of an uploaded mission is the home slot; ``Vehicle.upload_mission`` adds it,
so callers pass only the items to fly, starting at sequence 1.
"""

from __future__ import annotations

from dataclasses import dataclass

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
