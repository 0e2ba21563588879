"""Vehicle telemetry as plain data, and the translation from MAVLink messages into it.

``update(t, msg, now_s)`` is the only place that reads pymavlink message fields for
telemetry; everything past it sees :class:`Telemetry` (frozen, slots). Unknown numbers
are ``nan`` (JSON ``null`` through :func:`to_dict`), as MAVLink's own "unknown" sentinels
(INT16_MAX, UINT16_MAX, -1) are mapped on the way in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.modes import mode_name

__all__ = ["StatusText", "Telemetry", "update", "to_dict", "summary", "vehicle_type_of",
           "STATUSTEXT_KEEP"]

NAN: Final = math.nan
# How many recent STATUSTEXT lines a snapshot keeps.
STATUSTEXT_KEEP: Final = 8
# Altitude above home under which a disarmed-or-idle copter counts as landed when the
# vehicle sends no EXTENDED_SYS_STATE (a guess; ArduCopter's own land detector uses
# motor output and climb rate, ArduCopter/land_detector.cpp).
LANDED_ALT_M: Final = 0.5

# MAV_TYPE → our vehicle type (https://mavlink.io/en/messages/common.html#MAV_TYPE).
_COPTER_TYPES: Final = frozenset({
    mav.MAV_TYPE_QUADROTOR, mav.MAV_TYPE_COAXIAL, mav.MAV_TYPE_HELICOPTER,
    mav.MAV_TYPE_HEXAROTOR, mav.MAV_TYPE_OCTOROTOR, mav.MAV_TYPE_TRICOPTER,
    mav.MAV_TYPE_DODECAROTOR, mav.MAV_TYPE_DECAROTOR, mav.MAV_TYPE_GENERIC_MULTIROTOR,
})
_PLANE_TYPES: Final = frozenset({
    mav.MAV_TYPE_FIXED_WING, mav.MAV_TYPE_VTOL_DUOROTOR, mav.MAV_TYPE_VTOL_QUADROTOR,
    mav.MAV_TYPE_VTOL_TILTROTOR,
})
_BOAT_TYPES: Final = frozenset({mav.MAV_TYPE_SURFACE_BOAT})
_ROVER_TYPES: Final = frozenset({mav.MAV_TYPE_GROUND_ROVER})

# EKF_STATUS_REPORT flags (ardupilotmega.xml EKF_STATUS_FLAGS): ArduPilot's own
# "position ok" test needs an absolute horizontal position and not the constant-position
# fallback (AP_NavEKF3 ``healthy()`` / ``getFilterStatus``; FACTS: 0xa7 → 0x33f).
EKF_OK_REQUIRED: Final = mav.EKF_POS_HORIZ_ABS
EKF_OK_FORBIDDEN: Final = mav.EKF_CONST_POS_MODE


def vehicle_type_of(mav_type: int) -> str:
    """MAV_TYPE → ``"copter"``, ``"boat"``, ``"rover"``, ``"plane"`` or ``"unknown"``."""
    if mav_type in _COPTER_TYPES:
        return "copter"
    if mav_type in _BOAT_TYPES:
        return "boat"
    if mav_type in _ROVER_TYPES:
        return "rover"
    if mav_type in _PLANE_TYPES:
        return "plane"
    return "unknown"


@dataclass(frozen=True, slots=True)
class StatusText:
    """One STATUSTEXT line; severity is MAV_SEVERITY (0 emergency … 7 debug)."""

    severity: int
    text: str

    @property
    def severity_name(self) -> str:
        entry = mav.enums["MAV_SEVERITY"].get(self.severity)
        return entry.name.removeprefix("MAV_SEVERITY_") if entry else str(self.severity)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Snapshot of one vehicle. Times are ``time.monotonic()`` seconds (0: never)."""

    system_id: int
    vehicle_type: str = "unknown"
    mode: str = "UNKNOWN"
    custom_mode: int = -1
    armed: bool = False
    lat_deg: float = NAN
    lon_deg: float = NAN
    alt_amsl_m: float = NAN
    alt_rel_m: float = NAN
    heading_deg: float = NAN
    groundspeed_mps: float = NAN
    climb_mps: float = NAN
    vel_north_mps: float = NAN  # ground velocity, true north/east (GLOBAL_POSITION_INT vx, vy)
    vel_east_mps: float = NAN
    roll_deg: float = NAN
    pitch_deg: float = NAN
    battery_v: float = NAN
    battery_pct: float = NAN
    mission_seq: int = -1
    mission_count: int = 0
    last_reached_seq: int = -1
    landed: bool = True
    landed_state: int = 0  # MAV_LANDED_STATE from EXTENDED_SYS_STATE, 0 = not reported
    ekf_ok: bool = False
    ekf_flags: int = 0
    home_lat_deg: float = NAN
    home_lon_deg: float = NAN
    home_alt_amsl_m: float = NAN
    gps_fix_type: int = 0  # GPS_FIX_TYPE: 0/1 no fix, 2 2D, 3 3D, 4 DGPS, 5 RTK float, 6 fixed
    satellites: int = 0
    wind_speed_mps: float = NAN  # WIND (ardupilotmega): the autopilot's wind estimate
    wind_from_deg: float = NAN  # direction the wind blows from
    statustext: tuple[StatusText, ...] = ()
    statustext_count: int = 0
    heartbeat_at_s: float = 0.0
    heard_at_s: float = 0.0

    @property
    def heartbeat_seen(self) -> bool:
        return self.heartbeat_at_s > 0.0

    @property
    def position_valid(self) -> bool:
        """A global position other than the (0, 0) ArduPilot sends before its EKF origin."""
        return (math.isfinite(self.lat_deg) and math.isfinite(self.lon_deg)
                and (self.lat_deg, self.lon_deg) != (0.0, 0.0))

    @property
    def home_valid(self) -> bool:
        return math.isfinite(self.home_lat_deg) and (self.home_lat_deg, self.home_lon_deg) != (0, 0)

    def last_heard_age_s(self, now_s: float) -> float:
        """Seconds since any packet (inf if never)."""
        return now_s - self.heard_at_s if self.heard_at_s else math.inf

    def last_statustext(self) -> StatusText | None:
        return self.statustext[-1] if self.statustext else None


def _mm(value: int) -> float:
    return value / 1000.0


def _deg7(value: int) -> float:
    return value / 1e7


def update(t: Telemetry, msg: Any, now_s: float) -> Telemetry:
    """The snapshot after one message from the vehicle (unchanged for other messages)."""
    kind = msg.get_type()
    changes: dict[str, Any] = {"heard_at_s": now_s}
    if kind == "HEARTBEAT":
        # Heartbeats of the GCS, gimbals and other peripherals carry MAV_AUTOPILOT_INVALID.
        if msg.autopilot == mav.MAV_AUTOPILOT_INVALID:
            return t
        vtype = vehicle_type_of(msg.type)
        changes.update(
            vehicle_type=vtype, custom_mode=msg.custom_mode,
            mode=mode_name(vtype, msg.custom_mode),
            armed=bool(msg.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED), heartbeat_at_s=now_s)
    elif kind == "GLOBAL_POSITION_INT":
        changes.update(lat_deg=_deg7(msg.lat), lon_deg=_deg7(msg.lon),
                       alt_amsl_m=_mm(msg.alt), alt_rel_m=_mm(msg.relative_alt),
                       groundspeed_mps=math.hypot(msg.vx, msg.vy) / 100.0,
                       vel_north_mps=msg.vx / 100.0, vel_east_mps=msg.vy / 100.0,  # cm/s
                       climb_mps=-msg.vz / 100.0)
        if msg.hdg != 65535:  # UINT16_MAX: heading unknown
            changes["heading_deg"] = msg.hdg / 100.0
    elif kind == "VFR_HUD":
        changes.update(groundspeed_mps=float(msg.groundspeed), heading_deg=float(msg.heading),
                       climb_mps=float(msg.climb))
    elif kind == "ATTITUDE":
        changes.update(roll_deg=math.degrees(msg.roll), pitch_deg=math.degrees(msg.pitch))
    elif kind == "SYS_STATUS":
        changes.update(
            battery_v=_mm(msg.voltage_battery) if msg.voltage_battery != 65535 else NAN,
            battery_pct=float(msg.battery_remaining) if msg.battery_remaining >= 0 else NAN)
    elif kind == "BATTERY_STATUS" and msg.id == 0:
        if msg.battery_remaining >= 0:
            changes["battery_pct"] = float(msg.battery_remaining)
    elif kind == "MISSION_CURRENT":
        changes["mission_seq"] = msg.seq
        total = getattr(msg, "total", 65535)
        if total != 65535:  # UINT16_MAX: not reported (MAVLink 1 sender)
            changes["mission_count"] = total
    elif kind == "MISSION_ITEM_REACHED":
        changes["last_reached_seq"] = msg.seq
    elif kind == "EXTENDED_SYS_STATE":
        changes["landed_state"] = msg.landed_state
    elif kind == "EKF_STATUS_REPORT":
        changes.update(ekf_flags=msg.flags,
                       ekf_ok=bool(msg.flags & EKF_OK_REQUIRED)
                       and not msg.flags & EKF_OK_FORBIDDEN)
    elif kind == "HOME_POSITION":
        changes.update(home_lat_deg=_deg7(msg.latitude), home_lon_deg=_deg7(msg.longitude),
                       home_alt_amsl_m=_mm(msg.altitude))
    elif kind == "GPS_RAW_INT":
        changes.update(gps_fix_type=msg.fix_type, satellites=msg.satellites_visible)
    elif kind == "WIND":
        changes.update(wind_speed_mps=float(msg.speed), wind_from_deg=float(msg.direction) % 360.0)
    elif kind == "STATUSTEXT":
        text = msg.text.rstrip("\x00") if isinstance(msg.text, str) else \
            bytes(msg.text).rstrip(b"\x00").decode("utf-8", "replace")
        lines = (*t.statustext, StatusText(msg.severity, text))[-STATUSTEXT_KEEP:]
        changes.update(statustext=lines, statustext_count=t.statustext_count + 1)
    new = replace(t, **changes)
    landed = _landed(new)
    return new if landed == new.landed else replace(new, landed=landed)


def _landed(t: Telemetry) -> bool:
    # MAV_LANDED_STATE: 1 ON_GROUND; 2 IN_AIR, 3 TAKEOFF, 4 LANDING are airborne.
    if t.landed_state:
        return t.landed_state == mav.MAV_LANDED_STATE_ON_GROUND
    if not t.armed:
        return True
    if t.vehicle_type == "copter":
        return math.isfinite(t.alt_rel_m) and t.alt_rel_m < LANDED_ALT_M
    return False


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def to_dict(t: Telemetry, *, now_s: float | None = None) -> dict[str, Any]:
    """JSON-able dict (GeoJSON-style ``lon``/``lat``; nan → None)."""
    out: dict[str, Any] = {}
    for f in fields(t):
        value = getattr(t, f.name)
        if f.name == "statustext":
            value = [{"severity": s.severity, "severity_name": s.severity_name, "text": s.text}
                     for s in value]
        elif isinstance(value, float):
            value = _json_number(value)
        out[f.name] = value
    out["lat"], out["lon"] = out.pop("lat_deg"), out.pop("lon_deg")
    out["home_lat"], out["home_lon"] = out.pop("home_lat_deg"), out.pop("home_lon_deg")
    out["home_alt_amsl_m"] = out.pop("home_alt_amsl_m")
    out["position_valid"] = t.position_valid
    if now_s is not None:
        out["last_heard_age_s"] = _json_number(t.last_heard_age_s(now_s))
    return out


def summary(t: Telemetry) -> dict[str, Any]:
    """The compact JSON-able dict of a ``vehicle.telemetry`` event."""
    return {
        "system_id": t.system_id, "vehicle_type": t.vehicle_type,
        "lon": _json_number(t.lon_deg), "lat": _json_number(t.lat_deg),
        "alt_rel_m": _json_number(t.alt_rel_m), "alt_amsl_m": _json_number(t.alt_amsl_m),
        "heading_deg": _json_number(t.heading_deg),
        "groundspeed_mps": _json_number(t.groundspeed_mps),
        "vel_north_mps": _json_number(t.vel_north_mps), "vel_east_mps": _json_number(t.vel_east_mps),
        "climb_mps": _json_number(t.climb_mps),
        "battery_pct": _json_number(t.battery_pct), "battery_v": _json_number(t.battery_v),
        "mode": t.mode, "armed": t.armed, "landed": t.landed, "mission_seq": t.mission_seq,
        "mission_count": t.mission_count, "ekf_ok": t.ekf_ok, "gps_fix_type": t.gps_fix_type,
        "home_lon": _json_number(t.home_lon_deg), "home_lat": _json_number(t.home_lat_deg),
    }
