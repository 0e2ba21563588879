"""An ArduPilot-compatible MAVLink vehicle (Copter quad or Rover motorboat) for ground-station tests.

It speaks MAVLink 2 with the ``ardupilotmega`` dialect over one UDP socket (or a TCP server)
and answers the subset a ground station uses the way ArduPilot 4.8 SITL does: heartbeat
identity and custom modes, boot and EKF readiness, telemetry only on request, commands and
their COMMAND_ACK results, the mission protocol (vehicle side), AUTO/GUIDED/RTL/LAND with
plain kinematics, battery and GCS failsafes, and a handful of parameters.

Behaviour sources: ArduPilot source (``libraries/GCS_MAVLink/MissionItemProtocol.cpp``,
``ArduCopter/mode_*.cpp``, ``Rover/mode_*.cpp``, ``AP_Arming``) and the observations in
the project's FACTS ("ArduPilot behaviour seen in SITL").

Time: the vehicle runs its own sim clock, advanced by ``wall dt × speedup`` each tick.
Vehicle timers (DISARM_DELAY, hold times, EKF boot) run in sim time, as in SITL. Timers
that face a ground station running in wall time (mission re-requests, the GCS failsafe's
floor, the telemetry rate cap) use the event loop's monotonic clock.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.camera import CameraPose, SimCamera
from sitl.dataflash import SimLogs
from sitl.disturbance import DisturbanceMixin
from sitl.environment import Environment
from sitl.faults import Faults
from sitl.ground import GroundMixin
from uav.signing import parse_key, timestamp_now

__all__ = [
    "COPTER_MODES",
    "ROVER_MODES",
    "SimError",
    "SimConfigError",
    "SimVehicle",
    "main",
]

log = logging.getLogger(__name__)

VehicleKind = Literal["copter", "boat"]


class SimError(Exception):
    """Base of every error raised by the simulation room (``sitl``)."""


class SimConfigError(SimError, ValueError):
    """A simulator was configured with impossible values (bad kind, speed-up, port...)."""


# ArduPilot custom mode numbers: ArduCopter/mode.h `enum class Number`, Rover/mode.h.
COPTER_MODES: dict[str, int] = {
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6,
    "CIRCLE": 7, "LAND": 9, "POSHOLD": 16, "BRAKE": 17, "SMART_RTL": 21,
}
ROVER_MODES: dict[str, int] = {
    "MANUAL": 0, "ACRO": 1, "STEERING": 3, "HOLD": 4, "LOITER": 5, "FOLLOW": 6, "SIMPLE": 7,
    "AUTO": 10, "RTL": 11, "SMART_RTL": 12, "GUIDED": 15, "INITIALISING": 16,
}
_COPTER_NAMES = {v: k for k, v in COPTER_MODES.items()}
_ROVER_NAMES = {v: k for k, v in ROVER_MODES.items()}

# Copter modes whose `allows_arming()` is true (ArduCopter/mode.h); AUTO only with AUTO_OPTIONS bit 0.
_COPTER_ARMABLE = {"STABILIZE", "ACRO", "ALT_HOLD", "GUIDED", "LOITER", "POSHOLD"}
# Modes that navigate (base_mode GUIDED_ENABLED flag; ArduCopter/GCS_Mavlink.cpp base_mode()).
_NAV_MODES = {"AUTO", "GUIDED", "LOITER", "RTL", "CIRCLE", "POSHOLD", "BRAKE", "SMART_RTL",
              "HOLD", "FOLLOW", "SIMPLE"}
# Modes that need a position estimate when armed (Mode::requires_position / requires_GPS).
_POSITION_MODES = {"AUTO", "GUIDED", "LOITER", "RTL", "CIRCLE", "POSHOLD", "BRAKE", "SMART_RTL",
                   "FOLLOW", "SIMPLE"}

# Metres per degree of latitude: ArduPilot LOCATION_SCALING_FACTOR (AP_Common/Location.cpp),
# 0.011131884502145034 m per 1e-7 degree, i.e. WGS84 equatorial radius × π/180.
_M_PER_DEG = 111318.84502145034

# 4-cell LiPo, resting voltage per cell vs state of charge (typical LiPo discharge curve).
_CELLS = 4
_CELL_CURVE = ((0.0, 3.30), (10.0, 3.60), (20.0, 3.70), (50.0, 3.80), (80.0, 3.95), (100.0, 4.20))

_MAX_WALL_RATE_HZ = 10.0  # per-message wall-clock cap, so a large speed-up does not flood the link
_EKF_REPORT_HZ = 2.5  # FACTS: EKF_STATUS_REPORT at ~2.5 Hz whatever is asked
_MISSION_RESEND_S = 1.0  # MissionItemProtocol::update(): re-request after 1000 ms
_MISSION_UPLOAD_TIMEOUT_S = 8.0  # MissionItemProtocol upload_timeout_ms = 8000
_GCS_FS_WALL_FLOOR_S = 3.0  # a GCS heartbeats at 1 Hz wall: never call it lost before 3 missed beats
_PREARM_REPORT_S = 30.0  # AP_Arming: pre-arm failures repeated every 30 s while disarmed
_RTL_LOITER_S = 5.0  # Copter RTL_LOIT_TIME default 5000 ms
_LAND_ALT_LOW_M = 10.0  # Copter LAND_ALT_LOW default 1000 cm
_BATT_LOW_TIMER_S = 10.0  # AP_BattMonitor BATT_LOW_TIMER default 10 s
_WP_RADIUS_M = 2.0  # Copter WPNAV_RADIUS 200 cm; Rover WP_RADIUS 2 m

_EKF_FLAGS_BOOT = 0xA7  # FACTS: flags before "EKF3 IMU0 is using GPS"
_EKF_FLAGS_READY = 0x33F  # FACTS: POS_HORIZ_ABS set, CONST_POS_MODE clear

_FLIGHT_SW_VERSION = (4 << 24) | (8 << 16) | (0 << 8) | mav.FIRMWARE_VERSION_TYPE_DEV
_CAPABILITIES = (
    mav.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT | mav.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
    | mav.MAV_PROTOCOL_CAPABILITY_MISSION_INT | mav.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
    | mav.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
    | mav.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | mav.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE
    | mav.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
)

# Data stream groups (GCS_MAVLink/GCS_Common.cpp default stream entries, the subset simulated).
_STREAMS: dict[int, tuple[int, ...]] = {
    mav.MAV_DATA_STREAM_EXTENDED_STATUS: (
        mav.MAVLINK_MSG_ID_SYS_STATUS, mav.MAVLINK_MSG_ID_GPS_RAW_INT,
        mav.MAVLINK_MSG_ID_MISSION_CURRENT, mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE),
    mav.MAV_DATA_STREAM_POSITION: (mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT,),
    mav.MAV_DATA_STREAM_EXTRA1: (mav.MAVLINK_MSG_ID_ATTITUDE,),
    mav.MAV_DATA_STREAM_EXTRA2: (mav.MAVLINK_MSG_ID_VFR_HUD,),
    mav.MAV_DATA_STREAM_EXTRA3: (mav.MAVLINK_MSG_ID_BATTERY_STATUS, mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT,
                                 mav.MAVLINK_MSG_ID_WIND),
}

# Mission commands with a location (AP_Mission::stored_in_location / mavlink_int_to_mission_cmd).
_LOCATION_CMDS = {
    mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_UNLIM, mav.MAV_CMD_NAV_LOITER_TURNS,
    mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LAND, mav.MAV_CMD_NAV_TAKEOFF,
    mav.MAV_CMD_NAV_LOITER_TO_ALT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT, mav.MAV_CMD_DO_SET_HOME,
    mav.MAV_CMD_DO_SET_ROI, mav.MAV_CMD_DO_LAND_START,
}
_NAV_CMDS = {
    mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_UNLIM, mav.MAV_CMD_NAV_LOITER_TURNS,
    mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, mav.MAV_CMD_NAV_LAND,
    mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_LOITER_TO_ALT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT,
    mav.MAV_CMD_NAV_DELAY,
}
_MISSION_CMDS = _NAV_CMDS | _LOCATION_CMDS | {
    mav.MAV_CMD_DO_JUMP, mav.MAV_CMD_DO_CHANGE_SPEED, mav.MAV_CMD_DO_SET_SERVO,
    mav.MAV_CMD_DO_SET_RELAY, mav.MAV_CMD_DO_DIGICAM_CONTROL, mav.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
    mav.MAV_CMD_DO_MOUNT_CONTROL, mav.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW,
    mav.MAV_CMD_CONDITION_DELAY, mav.MAV_CMD_CONDITION_DISTANCE, mav.MAV_CMD_CONDITION_YAW,
    mav.MAV_CMD_IMAGE_START_CAPTURE, mav.MAV_CMD_IMAGE_STOP_CAPTURE,
    mav.MAV_CMD_VIDEO_START_CAPTURE, mav.MAV_CMD_VIDEO_STOP_CAPTURE,
}
_FENCE_CMDS = {
    mav.MAV_CMD_NAV_FENCE_RETURN_POINT, mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
    mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION, mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
    mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
}
_GLOBAL_FRAMES = {
    mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT,
    mav.MAV_FRAME_GLOBAL_INT, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT,
}
# Downloads come back in the non-INT frame numbers (FACTS).
_FRAME_TO_STORED = {mav.MAV_FRAME_GLOBAL_INT: mav.MAV_FRAME_GLOBAL,
                    mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: mav.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                    mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: mav.MAV_FRAME_GLOBAL_TERRAIN_ALT}


@dataclass(frozen=True, slots=True)
class _Item:
    """One stored mission/fence/rally item, in the frame numbers ArduPilot reports back."""

    seq: int
    frame: int
    command: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0


@dataclass(slots=True)
class _Param:
    value: float
    ptype: int


@dataclass(slots=True)
class _Upload:
    """Vehicle side of one mission upload (MissionItemProtocol state)."""

    mission_type: int
    count: int
    next_seq: int
    sysid: int
    compid: int
    last_request_wall: float
    last_receive_wall: float
    warned_float: bool = False


@dataclass(slots=True)
class _Nav:
    """Progress of the current navigation command or mode sub-state."""

    phase: str
    target: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
    hold_until_s: float | None = None
    alt_goal_amsl: float | None = None
    terrain_alt_m: float | None = None  # terrain-frame item: height above ground (sitl.ground)
    center: tuple[float, float] | None = None  # NAV_LOITER_TURNS circle centre (lat, lon)
    angle_rad: float = 0.0  # circle: bearing of the start point from the centre
    turned_rad: float = 0.0  # circle: angle flown so far


@dataclass(frozen=True, slots=True)
class _Aircraft:
    """A manned aircraft the simulated ADS-B receiver hears: straight and level (or at a
    constant climb) at constant speed from where it was at ``t0_s`` (the sim's ADS-B clock)."""

    icao: int
    lat0: float
    lon0: float
    alt0_amsl_m: float
    heading_deg: float
    speed_mps: float
    vertical_mps: float
    callsign: str
    emitter_type: int
    squawk: int | None
    t0_s: float

    def at(self, t_s: float) -> tuple[float, float, float]:
        """(lat, lon, alt AMSL) at sim time ``t_s`` (flat earth, as ArduPilot's Location offsets)."""
        dt = t_s - self.t0_s
        hdg = math.radians(self.heading_deg)
        lat = self.lat0 + self.speed_mps * math.cos(hdg) * dt / _M_PER_DEG
        lon = self.lon0 + self.speed_mps * math.sin(hdg) * dt / (_M_PER_DEG * math.cos(math.radians(self.lat0)))
        return lat, lon, self.alt0_amsl_m + self.vertical_mps * dt

    def message(self, t_s: float) -> mav.MAVLink_message:
        """ADSB_VEHICLE as ArduPilot forwards it: a receiver that heard the aircraft just now
        (tslc 0), GNSS altitude, every value flagged valid."""
        lat, lon, alt = self.at(t_s)
        flags = (mav.ADSB_FLAGS_VALID_COORDS | mav.ADSB_FLAGS_VALID_ALTITUDE | mav.ADSB_FLAGS_VALID_HEADING
                 | mav.ADSB_FLAGS_VALID_VELOCITY | mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID)
        if self.callsign:
            flags |= mav.ADSB_FLAGS_VALID_CALLSIGN
        if self.squawk is not None:
            flags |= mav.ADSB_FLAGS_VALID_SQUAWK
        return mav.MAVLink_adsb_vehicle_message(
            self.icao, round(lat * 1e7), round(lon * 1e7), mav.ADSB_ALTITUDE_TYPE_GEOMETRIC,
            round(alt * 1000), round(self.heading_deg * 100) % 36000, round(self.speed_mps * 100),
            round(self.vertical_mps * 100), self.callsign.encode("ascii"), self.emitter_type, 0, flags,
            self.squawk or 0)


def _point_in_ring(pts: list[tuple[float, float]]) -> bool:
    """Is the origin inside the polygon ``pts`` (north, east metres)? Ray casting (even-odd)."""
    inside = False
    for (n1, e1), (n2, e2) in zip(pts, pts[1:] + pts[:1]):
        if (e1 > 0) != (e2 > 0) and 0 < n1 + (n2 - n1) * (0 - e1) / (e2 - e1):
            inside = not inside
    return inside


def _ring_distance_m(pts: list[tuple[float, float]]) -> float:
    """Distance from the origin to the nearest edge of the polygon ``pts`` (north, east m)."""
    best = math.inf
    for (n1, e1), (n2, e2) in zip(pts, pts[1:] + pts[:1]):
        dn, de = n2 - n1, e2 - e1
        length2 = dn * dn + de * de
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(n1 * dn + e1 * de) / length2))
        best = min(best, math.hypot(n1 + t * dn, e1 + t * de))
    return best


def _cell_voltage(pct: float) -> float:
    pct = min(100.0, max(0.0, pct))
    for (p0, v0), (p1, v1) in zip(_CELL_CURVE, _CELL_CURVE[1:]):
        if pct <= p1:
            return v0 + (v1 - v0) * (pct - p0) / (p1 - p0)
    return _CELL_CURVE[-1][1]


def _ne_m(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """North/east offset in metres from point 1 to point 2 (flat earth, as ArduPilot's Location)."""
    n = (lat2 - lat1) * _M_PER_DEG
    e = (lon2 - lon1) * _M_PER_DEG * math.cos(math.radians((lat1 + lat2) / 2))
    return n, e


class SimVehicle(GroundMixin, DisturbanceMixin):
    """One simulated ArduPilot vehicle on one socket; ``await run()`` until cancelled.

    ``ground_amsl_m(lon, lat)``: the ground under a copter (m AMSL; NaN/None: flat at the
    home height); meeting it in flight is a crash (sitl.ground). ``environment``: wind on a
    copter, current on a boat (sitl.environment, sitl.disturbance); settable while running.
    """

    def __init__(self, *, kind: VehicleKind, system_id: int, home_lon: float, home_lat: float,
                 home_alt_amsl_m: float = 0.0, gcs_host: str = "127.0.0.1",
                 gcs_port: int | None = None, listen_port: int | None = None,
                 listen_host: str = "127.0.0.1", tcp: bool = False, speedup: float = 1.0,
                 ekf_ready_after_s: float = 5.0, cruise_speed_mps: float | None = None,
                 endurance_s: float = 1800.0, fs_gcs_enable: bool = False, name: str = "",
                 tick_wall_s: float = 0.02, battery_capacity_mah: float = 5000.0,
                 signing_key: str | bytes | None = None, faults: Faults | None = None,
                 ground_amsl_m: Callable[[float, float], float] | None = None,
                 images_dir: Path | None = None, district_dir: Path | None = None,
                 video_uri: str | None = None, environment: Environment | None = None) -> None:
        if kind not in ("copter", "boat"):
            raise SimConfigError(f"kind must be 'copter' or 'boat', not {kind!r}")
        if not 1 <= system_id <= 255:
            raise SimConfigError(f"system_id must be 1..255, not {system_id}")
        if not 0.0 < speedup <= 1000.0:
            raise SimConfigError(f"speedup must be in (0, 1000], not {speedup}")
        if not (-90.0 <= home_lat <= 90.0 and -180.0 <= home_lon <= 180.0):
            raise SimConfigError(f"home ({home_lon}, {home_lat}) is not a WGS84 lon/lat")
        if endurance_s <= 0 or ekf_ready_after_s < 0:
            raise SimConfigError("endurance_s must be > 0 and ekf_ready_after_s >= 0")
        if tcp and gcs_port is not None:
            raise SimConfigError("a TCP vehicle listens; give listen_port, not gcs_port")
        self.kind: VehicleKind = kind
        self.name = name or f"{kind}-{system_id}"
        self.speedup = float(speedup)
        self.started = asyncio.Event()
        self.local_port: int = 0
        self.counters: dict[str, int] = {
            "rx_msgs": 0, "tx_msgs": 0, "rx_bad": 0, "rx_dropped_paused": 0,
            "tx_dropped_no_peer": 0, "tx_dropped_paused": 0, "ignored_other_target": 0,
            "handler_errors": 0, "unknown_param": 0, "unhandled_msgs": 0, "arms": 0,
        }
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._tcp = tcp
        self._remote: tuple[str, int] | None = (gcs_host, gcs_port) if gcs_port is not None else None
        self._tick_wall_s = tick_wall_s
        self._link_paused = False
        self._pending_texts: list[mav.MAVLink_message] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._tcp_writers: list[asyncio.StreamWriter] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mav = mav.MAVLink(None, srcSystem=system_id, srcComponent=mav.MAV_COMP_ID_AUTOPILOT1)
        self._mav.robust_parsing = True

        # Boot schedule (FACTS: "ArduPilot Ready" ~2.3 s, origin ~20 s, EKF using GPS ~41.5 s).
        self._ekf_ready_s = float(ekf_ready_after_s)
        self._init_s = min(2.3, 0.4 * self._ekf_ready_s)
        self._origin_s = max(self._init_s, 0.48 * self._ekf_ready_s)
        self._init_done = False
        self._origin_set = False
        self._ekf_ready = False

        self._t_s = 0.0
        self._lat, self._lon = float(home_lat), float(home_lon)
        self._ground_amsl = float(home_alt_amsl_m)
        self._alt_amsl = self._ground_amsl
        self._boot_home = (self._lat, self._lon, self._ground_amsl)
        self._home: tuple[float, float, float] | None = None
        self._home_locked = False
        self._vn = self._ve = self._vd = 0.0
        self._heading_deg = 0.0
        self._armed = False
        self._mode = ROVER_MODES["INITIALISING"] if kind == "boat" else COPTER_MODES["STABILIZE"]
        self._mode_set_during_init = False
        self._nav: _Nav | None = None
        self._guided_target: tuple[float, float, float] | None = None
        self._paused = False  # MAV_CMD_DO_PAUSE_CONTINUE (copter AUTO/GUIDED)
        self._landed_since_s: float | None = None
        # Manned traffic its ADS-B receiver hears (inject_adsb). Their clock runs on through a
        # reboot (the aircraft do not wait), unlike the autopilot's own sim time.
        self._adsb: dict[int, _Aircraft] = {}
        self._adsb_time_s = 0.0
        self._adsb_index = 0  # AP_ADSB send_index: the next aircraft of the list to send
        self._adsb_list_start_s = -math.inf  # AP_ADSB send_start_ms: when the list last began

        # Missions per MAV_MISSION_TYPE; index 0 of the mission list is the home slot.
        self._items: dict[int, list[_Item]] = {
            mav.MAV_MISSION_TYPE_MISSION: [_Item(0, 0, 0)],
            mav.MAV_MISSION_TYPE_FENCE: [],
            mav.MAV_MISSION_TYPE_RALLY: [],
        }
        self._upload: _Upload | None = None
        self._mission_request_warned = False
        self._mission_running = False
        self._mission_index = 0  # current nav command index (MISSION_CURRENT.seq)
        self._mission_complete = False

        self._capacity_mah = float(battery_capacity_mah)
        self._endurance_s = float(endurance_s)
        # endurance_s is the fleet file's "100 % to empty at cruise": the copter's full current is the one
        # it draws at its cruise speed (the default WPNAV_SPEED, 10 m/s, without one)
        self._cruise_ref_mps = float(cruise_speed_mps) if cruise_speed_mps else 10.0
        self._consumed_mah = 0.0
        self._batt_fs_level = 0  # 0 none, 1 low, 2 critical
        self._batt_low_since_s: float | None = None
        self._batt_crt_since_s: float | None = None

        self._gcs_hb_sim_s: float | None = None
        self._gcs_hb_wall_s: float | None = None
        self._gcs_fs_active = False
        self._last_prearm_s = -_PREARM_REPORT_S

        self._intervals_s: dict[int, float] = {}
        self._next_due_s: dict[int, float] = {}
        self._last_wall_sent: dict[int, float] = {}
        self._streams_active = False

        self._params = self._default_params(system_id, cruise_speed_mps, fs_gcs_enable)
        self._speed_mps = self._default_speed()
        self._boot_sysid = system_id
        self._init_disturbance(environment)
        self._init_faults_and_signing(faults, signing_key)
        self._init_fence_and_params()
        self._init_ground(ground_amsl_m)
        # Camera/gimbal and per-flight on-board logs (sitl.camera, sitl.dataflash).
        self.camera = SimCamera(name=self.name, images_dir=images_dir,
                                district_dir=district_dir, video_uri=video_uri)
        self.dataflash = SimLogs(name=self.name, system_id=system_id)

    # ------------------------------------------------------------------ public state
    @property
    def system_id(self) -> int:
        return int(self._params["SYSID_THISMAV"].value)

    @property
    def lat(self) -> float:
        return self._lat

    @property
    def lon(self) -> float:
        return self._lon

    @property
    def alt_amsl_m(self) -> float:
        return self._alt_amsl

    @property
    def alt_rel_m(self) -> float:
        """Altitude above home (above the boot position until home is set)."""
        home_alt = self._home[2] if self._home else self._boot_home[2]
        return self._alt_amsl - home_alt

    @property
    def mode(self) -> str:
        return self._mode_name(self._mode)

    @property
    def mode_number(self) -> int:
        return self._mode

    @property
    def armed(self) -> bool:
        return self._armed

    @property
    def landed(self) -> bool:
        """Copter: on the ground. A boat is always on the surface, so always True."""
        return self.kind == "boat" or self._on_ground()

    @property
    def battery_pct(self) -> float:
        return max(0.0, 100.0 * (1.0 - self._consumed_mah / self._capacity_mah))

    @property
    def battery_voltage_v(self) -> float:
        return _CELLS * _cell_voltage(self.battery_pct)

    @property
    def sim_time_s(self) -> float:
        return self._t_s

    @property
    def ekf_ready(self) -> bool:
        return self._ekf_ready

    @property
    def home(self) -> tuple[float, float, float] | None:
        """(lon, lat, alt AMSL) of home once set."""
        return (self._home[1], self._home[0], self._home[2]) if self._home else None

    @property
    def mission_count(self) -> int:
        return len(self._items[mav.MAV_MISSION_TYPE_MISSION])

    @property
    def gcs_address(self) -> tuple[str, int] | None:
        """Where the vehicle sends (the last sender, or the configured ground station)."""
        return self._remote

    def pause_link(self) -> None:
        """Go silent: send nothing and ignore what arrives (the vehicle keeps flying)."""
        self._link_paused = True

    def resume_link(self) -> None:
        self._link_paused = False

    def set_battery_pct(self, pct: float) -> None:
        """Test hook: set the state of charge (failsafes follow on the next ticks)."""
        self._consumed_mah = self._capacity_mah * (1.0 - min(100.0, max(0.0, pct)) / 100.0)

    def param(self, name: str) -> float | None:
        p = self._params.get(name)
        return None if p is None else p.value

    def inject_adsb(self, icao: int, lon: float, lat: float, alt_amsl_m: float, heading_deg: float,
                    speed_mps: float, vertical_mps: float = 0.0, *, callsign: str = "",
                    emitter_type: int = mav.ADSB_EMITTER_TYPE_ROTOCRAFT,
                    squawk: int | None = None) -> None:
        """A manned aircraft the vehicle's ADS-B receiver hears from now on, flying from
        (lon, lat, alt AMSL) along ``heading_deg`` (true) at ``speed_mps``, climbing at
        ``vertical_mps``, by sim time. The vehicle forwards it as ArduPilot does: ADSB_VEHICLE,
        one aircraft per message at the asked rate, a full list at most once per sim second,
        and only to a ground station that asked for the message (Copter SRx_ADSB defaults
        to 0). Injecting a known ICAO address replaces that aircraft."""
        if not 0 <= icao <= 0xFFFFFF:
            raise SimConfigError(f"an ICAO address has 24 bits, not {icao:#x}")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise SimConfigError(f"aircraft position ({lon}, {lat}) is not a WGS84 lon/lat")
        if not 0.0 <= speed_mps <= 655.35:  # ADSB_VEHICLE.hor_velocity: uint16 cm/s
            raise SimConfigError(f"aircraft speed must be 0..655.35 m/s, not {speed_mps}")
        if not abs(vertical_mps) <= 327.67:  # ver_velocity: int16 cm/s
            raise SimConfigError(f"aircraft vertical speed must be within ±327.67 m/s, not {vertical_mps}")
        if not (math.isfinite(alt_amsl_m) and math.isfinite(heading_deg)):
            raise SimConfigError("aircraft altitude and heading must be numbers")
        if len(callsign) > 8 or not callsign.isascii():  # char[9] with its terminating NUL
            raise SimConfigError(f"a callsign is at most 8 ASCII characters, not {callsign!r}")
        if squawk is not None and not 0 <= squawk <= 0o7777:
            raise SimConfigError(f"a squawk is four octal digits, not {squawk:o}")
        self._adsb[icao] = _Aircraft(icao, lat, lon, alt_amsl_m, heading_deg % 360.0, speed_mps, vertical_mps,
                                     callsign, emitter_type, squawk, self._adsb_time_s)

    def clear_adsb(self, icao: int) -> None:
        """The receiver no longer hears this aircraft (unknown addresses are ignored)."""
        self._adsb.pop(icao, None)

    def adsb_position(self, icao: int) -> tuple[float, float, float] | None:
        """Where an injected aircraft is now: (lon, lat, alt AMSL), or None."""
        aircraft = self._adsb.get(icao)
        if aircraft is None:
            return None
        lat, lon, alt = aircraft.at(self._adsb_time_s)
        return lon, lat, alt

    # ------------------------------------------------------------------ run loop
    async def run(self) -> None:
        """Open the socket, then simulate and talk until cancelled."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        server: asyncio.Server | None = None
        try:
            if self._tcp:
                server = await asyncio.start_server(self._on_tcp_client, self._listen_host,
                                                    self._listen_port or 0)
                self.local_port = server.sockets[0].getsockname()[1]
            else:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self._listen_host, self._listen_port or 0))
                self._transport = transport
                self.local_port = transport.get_extra_info("sockname")[1]
            log.info("%s: sysid %d on %s port %d -> %s", self.name, self.system_id,
                     "tcp" if self._tcp else "udp", self.local_port, self._remote)
            self.started.set()
            last = loop.time()
            while True:
                await asyncio.sleep(self._tick_wall_s)
                now = loop.time()
                # Clamp a stalled loop so one late tick does not teleport the vehicle.
                self._tick(now, min(now - last, 0.5) * self.speedup)
                last = now
        finally:
            if self._transport is not None:
                self._transport.close()
            for w in self._tcp_writers:
                w.close()
            if server is not None:
                server.close()

    def _wall(self) -> float:
        return self._loop.time() if self._loop else 0.0

    def _tick(self, wall_now: float, dt_sim: float) -> None:
        self._adsb_time_s += dt_sim
        if self._reboot_tick(wall_now):
            return  # rebooting: no simulation, no radio
        remaining = dt_sim
        while remaining > 1e-9:
            step = min(remaining, 0.1)
            self._step(step, wall_now)
            remaining -= step
        self._update_upload(wall_now)
        self._terrain_tick(wall_now)
        self._flush_texts()
        self._send_due(wall_now)
        self._send_logs(wall_now)

    # ------------------------------------------------------------------ transport
    def _on_bytes(self, data: bytes, addr: tuple[str, int] | None,
                  writer: asyncio.StreamWriter | None = None, *, delayed: bool = False) -> None:
        if self._link_paused:
            self.counters["rx_dropped_paused"] += 1
            return
        if not delayed and self._fault_rx(data, addr, writer):
            return
        try:
            msgs = self._mav.parse_buffer(data) or []
        except mav.MAVError as err:
            self.counters["rx_bad"] += 1
            log.warning("%s: undecodable datagram from %s: %s", self.name, addr, err)
            return
        for msg in msgs:
            if msg.get_type() == "BAD_DATA":
                if msg.reason == "Invalid signature":
                    self._count_rejected_signature(msg, addr)
                    continue
                self.counters["rx_bad"] += 1
                log.debug("%s: bad data from %s: %s", self.name, addr, msg.reason)
                continue
            if addr is not None:
                # UDP replies go to the last sender of a good (and, with a key, signed)
                # packet: garbage or a forged packet must not redirect the telemetry.
                self._remote = (addr[0], addr[1])
            self.counters["rx_msgs"] += 1
            try:
                self._handle(msg)
            except Exception:  # a bad message must not stop the vehicle
                self.counters["handler_errors"] += 1
                log.exception("%s: error handling %s", self.name, msg.get_type())
            self._flush_texts()

    async def _on_tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tcp_writers.append(writer)
        peer = writer.get_extra_info("peername")
        try:
            while data := await reader.read(4096):
                self._on_bytes(data, peer, writer)
        except ConnectionError as err:
            log.info("%s: tcp client %s gone: %s", self.name, peer, err)
        finally:
            self._tcp_writers.remove(writer)
            writer.close()

    def _send(self, msg: mav.MAVLink_message) -> None:
        # MAVLink's packet sequence advances for every packet the vehicle sends, also for
        # those lost on the way (a paused link plays a radio outage), so a ground station
        # can count loss from the gaps. ``pack`` itself does not advance it.
        if self._link_paused:
            self._mav.seq = (self._mav.seq + 1) % 256
            self.counters["tx_dropped_paused"] += 1
            return
        if self._fault_tx_drop():
            self._mav.seq = (self._mav.seq + 1) % 256
            return
        if self._tcp:
            if not self._tcp_writers:
                self.counters["tx_dropped_no_peer"] += 1
                return
            buf = msg.pack(self._mav)
            self._mav.seq = (self._mav.seq + 1) % 256
            for w in self._tcp_writers:
                self._write_tcp(w, buf)
        else:
            if self._remote is None or self._transport is None:
                self.counters["tx_dropped_no_peer"] += 1
                return
            self._sendto(msg.pack(self._mav), self._remote)
            self._mav.seq = (self._mav.seq + 1) % 256
        self.counters["tx_msgs"] += 1

    def _text(self, severity: int, text: str) -> None:
        # ArduPilot queues STATUSTEXT and sends it after the COMMAND_ACK of the command that
        # caused it (GCS::send_text → statustext queue, serviced in update_send()).
        log.info("%s: %s", self.name, text)
        self._pending_texts.append(mav.MAVLink_statustext_message(severity, text.encode()[:50]))

    def _flush_texts(self) -> None:
        texts, self._pending_texts = self._pending_texts, []
        for msg in texts:
            self._send(msg)

    def _ack(self, command: int, result: int, msg: mav.MAVLink_message) -> None:
        lose = self.faults.lose_acks.get(command, 0)
        if lose > 0:  # the command took effect; its answer is lost on the way
            self.faults.lose_acks[command] = lose - 1
            self._mav.seq = (self._mav.seq + 1) % 256
            return
        self._send(mav.MAVLink_command_ack_message(command, result, 0, 0, msg.get_srcSystem(),
                                                   msg.get_srcComponent()))

    # ------------------------------------------------------------------ parameters
    def _default_params(self, sysid: int, cruise: float | None, fs_gcs: bool) -> dict[str, _Param]:
        i8, i16, i32, f = (mav.MAV_PARAM_TYPE_INT8, mav.MAV_PARAM_TYPE_INT16,
                           mav.MAV_PARAM_TYPE_INT32, mav.MAV_PARAM_TYPE_REAL32)
        low_v = round(_CELLS * _cell_voltage(20.0), 2)  # failsafe at ~20 % left
        crt_v = round(_CELLS * _cell_voltage(10.0), 2)  # critical at ~10 % left
        p: dict[str, tuple[float, int]] = {"SYSID_THISMAV": (sysid, i16), "MAV_GCS_SYSID": (255, i16)}
        if self.kind == "copter":
            p |= {
                "WP_SPD": (cruise or 10.0, f),  # 4.8 name of WPNAV_SPEED (1000 cm/s default), m/s
                "WP_SPD_UP": (2.5, f), "WP_SPD_DN": (1.5, f),  # WPNAV_SPEED_UP/DN 250/150 cm/s
                "RTL_ALT": (1500, i32), "RTL_ALT_FINAL": (0, i32), "RTL_SPEED": (0, i16),
                "RTL_LOIT_TIME": (5000, i32), "LAND_SPEED": (50, i16),
                # ArduCopter defaults of the return's other knobs (mode_rtl.cpp, AP_Rally.cpp,
                # AP_SmartRTL.cpp); the simulated RTL climbs to RTL_ALT and flies home straight
                "RTL_CONE_SLOPE": (3.0, f), "RTL_CLIMB_MIN": (0, i16), "RALLY_INCL_HOME": (1, i8),
                "RALLY_LIMIT_KM": (0.3, f), "RALLY_TOTAL": (0, i8), "SRTL_POINTS": (300, i16),
                "DISARM_DELAY": (10, i8), "AUTO_OPTIONS": (0, i32),
                "FS_GCS_ENABLE": (1 if fs_gcs else 0, i8), "FS_GCS_TIMEOUT": (5.0, f),
                "FS_OPTIONS": (0, i32),
                # Stock default is 0 (none); the fleet is configured RTL on low, LAND on critical.
                "BATT_FS_LOW_ACT": (2, i8), "BATT_FS_CRT_ACT": (1, i8),
                "FENCE_ENABLE": (0, i8), "FENCE_RADIUS": (150.0, f),  # FACTS: stock copter
                "ANGLE_MAX": (3000, i16),  # ArduCopter Parameters.cpp default, centidegrees
            }
        else:
            p |= {
                "WP_SPEED": (cruise or 4.0, f), "CRUISE_SPEED": (cruise or 4.0, f),
                "WP_RADIUS": (_WP_RADIUS_M, f), "RTL_SPEED": (0.0, f), "INITIAL_MODE": (0, i8),
                "FS_GCS_ENABLE": (1 if fs_gcs else 0, i8), "FS_TIMEOUT": (1.5, f),
                "FS_ACTION": (2, i8),  # Rover default: Hold
                "BATT_FS_LOW_ACT": (1, i8), "BATT_FS_CRT_ACT": (2, i8),  # RTL, Hold
                "FENCE_ENABLE": (0, i8), "FENCE_RADIUS": (300.0, f),
                # Rover/Parameters.cpp defaults (loiter drift radius and return gain,
                # SPEED_MAX 0 = estimated from CRUISE_SPEED / CRUISE_THROTTLE).
                "LOIT_RADIUS": (2.0, f), "LOIT_SPEED_GAIN": (0.5, f), "SPEED_MAX": (0.0, f),
                "CRUISE_THROTTLE": (50, i8),
            }
        p |= {
            "BATT_MONITOR": (4, i8), "BATT_CAPACITY": (int(self._capacity_mah), i32),
            "BATT_LOW_VOLT": (low_v, f), "BATT_CRT_VOLT": (crt_v, f), "BATT_ARM_VOLT": (0.0, f),
            "FENCE_TOTAL": (0, i8), "RALLY_TOTAL": (0, i8), "MIS_TOTAL": (0, i16),
            # AC_Fence defaults: ACTION 1 (RTL or land / Rover RTL), ALT_MAX 100 m, MARGIN 2 m,
            # TYPE 7 (alt max | circle | polygon) for Copter, 6 (circle | polygon) for Rover.
            "FENCE_ACTION": (1, i8), "FENCE_TYPE": (7 if self.kind == "copter" else 6, i8),
            "FENCE_ALT_MAX": (100.0, f), "FENCE_MARGIN": (2.0, f),
            "MIS_RESTART": (0, i8),
            # AP_Terrain defaults: enabled, 100 m grid; data comes from the ground station.
            "TERRAIN_ENABLE": (1, i8), "TERRAIN_SPACING": (100, i16),
        }
        return {k: _Param(float(v), t) for k, (v, t) in p.items()}

    def _pv(self, name: str) -> float:
        return self._params[name].value

    def _default_speed(self) -> float:
        return self._pv("WP_SPD") if self.kind == "copter" else self._pv("WP_SPEED")

    def _send_param(self, name: str) -> None:
        names = list(self._params)
        p = self._params[name]
        self._send(mav.MAVLink_param_value_message(name.encode(), p.value, p.ptype, len(names),
                                                   names.index(name)))

    def _handle_param_set(self, name: str, value: float) -> None:
        p = self._params.get(name)
        if p is None:
            self.counters["unknown_param"] += 1
            log.info("%s: PARAM_SET of unknown %r: no answer (as ArduPilot)", self.name, name)
            return
        if p.ptype != mav.MAV_PARAM_TYPE_REAL32:
            value = float(round(value))
        p.value = value
        if name == "SYSID_THISMAV":
            self._mav.srcSystem = int(value)
        elif name in ("WP_SPD", "WP_SPEED"):
            self._speed_mps = self._default_speed()
        self._send_param_echo(name)

    # ------------------------------------------------------------------ message dispatch
    def _for_us(self, msg: mav.MAVLink_message) -> bool:
        target = getattr(msg, "target_system", 0)
        if target not in (0, self.system_id):
            self.counters["ignored_other_target"] += 1
            return False
        return True

    def _handle(self, msg: mav.MAVLink_message) -> None:
        t = msg.get_type()
        if t == "HEARTBEAT":
            self._handle_heartbeat(msg)
            return
        if not self._for_us(msg):
            return
        handler: Callable[[mav.MAVLink_message], None] | None = {
            "COMMAND_LONG": self._handle_command_long,
            "COMMAND_INT": self._handle_command_int,
            "SET_MODE": self._handle_set_mode_msg,
            "REQUEST_DATA_STREAM": self._handle_request_data_stream,
            "PARAM_REQUEST_LIST": self._handle_param_request_list,
            "PARAM_REQUEST_READ": self._handle_param_read,
            "PARAM_SET": self._handle_param_set_msg,
            "MISSION_COUNT": self._handle_mission_count,
            "MISSION_ITEM_INT": self._handle_mission_item,
            "MISSION_ITEM": self._handle_mission_item,
            "MISSION_REQUEST_LIST": self._handle_mission_request_list,
            "MISSION_REQUEST_INT": self._handle_mission_request,
            "MISSION_REQUEST": self._handle_mission_request,
            "MISSION_CLEAR_ALL": self._handle_mission_clear_all,
            "MISSION_SET_CURRENT": lambda m: self._set_mission_current(m.seq),
            "MISSION_ACK": lambda m: None,  # end of a download: nothing to do
            "SET_POSITION_TARGET_GLOBAL_INT": self._handle_position_target,
            "LOG_REQUEST_LIST": self._handle_log, "LOG_REQUEST_DATA": self._handle_log,
            "LOG_REQUEST_END": self._handle_log, "LOG_ERASE": self._handle_log,
            "TERRAIN_DATA": self._handle_terrain_data,
            "TERRAIN_CHECK": self._handle_terrain_check,
            "TIMESYNC": self._handle_timesync,
        }.get(t)
        if handler is None:
            self.counters["unhandled_msgs"] += 1
            return
        handler(msg)

    def _handle_heartbeat(self, msg: mav.MAVLink_message) -> None:
        # ArduPilot counts heartbeats from MAV_GCS_SYSID (GCS_MAVLINK::handle_heartbeat).
        if msg.get_srcSystem() != int(self._pv("MAV_GCS_SYSID")):
            return
        self._gcs_hb_sim_s = self._t_s
        self._gcs_hb_wall_s = self._wall()
        if self._gcs_fs_active:
            self._gcs_fs_active = False
            self._text(mav.MAV_SEVERITY_INFO, "GCS Failsafe Cleared")

    def _handle_param_read(self, msg: mav.MAVLink_message) -> None:
        names = list(self._params)
        if msg.param_index >= 0:
            if msg.param_index < len(names):
                self._send_param(names[msg.param_index])
            else:
                self.counters["unknown_param"] += 1
            return
        if msg.param_id in self._params:
            self._send_param(msg.param_id)
        else:
            self.counters["unknown_param"] += 1
            log.info("%s: PARAM_REQUEST_READ of unknown %r: no answer (as ArduPilot)",
                     self.name, msg.param_id)

    def _handle_request_data_stream(self, msg: mav.MAVLink_message) -> None:
        ids = (tuple(i for group in _STREAMS.values() for i in group)
               if msg.req_stream_id == mav.MAV_DATA_STREAM_ALL else _STREAMS.get(msg.req_stream_id, ()))
        for mid in ids:
            if msg.start_stop == 0 or msg.req_message_rate == 0:
                self._intervals_s.pop(mid, None)
            else:
                self._set_interval(mid, 1.0 / msg.req_message_rate)

    def _set_interval(self, msg_id: int, interval_s: float) -> None:
        self._intervals_s[msg_id] = interval_s
        self._next_due_s.setdefault(msg_id, self._t_s)
        self._streams_active = True

    # ------------------------------------------------------------------ commands
    def _handle_command_long(self, msg: mav.MAVLink_message) -> None:
        p = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
        result = self._command(msg.command, p, None, msg)
        if result is not None:
            self._ack(msg.command, result, msg)

    def _handle_command_int(self, msg: mav.MAVLink_message) -> None:
        p = (msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z)
        result = self._command(msg.command, p, msg.frame, msg)
        if result is not None:
            self._ack(msg.command, result, msg)

    def _command(self, cmd: int, p: tuple[float, ...], frame: int | None,
                 msg: mav.MAVLink_message) -> int | None:
        """Execute one command; return the MAV_RESULT to acknowledge."""
        r = mav
        faulted = self._fault_command(cmd, p)
        if faulted is not None:
            return faulted
        if self.camera.handles(cmd, p):
            return self._camera_command(cmd, p, frame, msg)
        if cmd == r.MAV_CMD_COMPONENT_ARM_DISARM:
            force = abs(p[1] - 21196.0) < 0.5  # magic number forcing arm/disarm (MAVLink common.xml)
            if p[0] == 1.0:
                return r.MAV_RESULT_ACCEPTED if self._arm(force) else r.MAV_RESULT_FAILED
            if p[0] == 0.0:
                return r.MAV_RESULT_ACCEPTED if self._disarm(force, "gcs") else r.MAV_RESULT_FAILED
            return r.MAV_RESULT_DENIED
        if cmd == r.MAV_CMD_DO_SET_MODE:
            if not int(p[0]) & r.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                return r.MAV_RESULT_UNSUPPORTED
            return r.MAV_RESULT_ACCEPTED if self._set_mode(int(p[1])) else r.MAV_RESULT_FAILED
        if cmd == r.MAV_CMD_NAV_TAKEOFF:
            if self.kind != "copter":
                return r.MAV_RESULT_UNSUPPORTED
            alt = p[6]
            if frame in (r.MAV_FRAME_GLOBAL, r.MAV_FRAME_GLOBAL_INT) and self._home:
                alt -= self._home[2]
            return r.MAV_RESULT_ACCEPTED if self._user_takeoff(alt) else r.MAV_RESULT_FAILED
        if cmd == r.MAV_CMD_MISSION_START:
            # GCS_MAVLINK::handle_command_mission_start: first/last item are not supported.
            if p[0] != 0.0 or p[1] != 0.0:
                return r.MAV_RESULT_DENIED
            if not self._set_mode(self._mode_num("AUTO")):
                return r.MAV_RESULT_FAILED
            if not self._mission_running or self._mission_complete:
                self._start_mission(restart=True)
            return r.MAV_RESULT_ACCEPTED
        if cmd == r.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            return r.MAV_RESULT_ACCEPTED if self._set_mode(self._mode_num("RTL")) else r.MAV_RESULT_FAILED
        if cmd == r.MAV_CMD_NAV_LAND:
            if self.kind != "copter":
                return r.MAV_RESULT_UNSUPPORTED
            return r.MAV_RESULT_ACCEPTED if self._set_mode(COPTER_MODES["LAND"]) else r.MAV_RESULT_FAILED
        if cmd == r.MAV_CMD_DO_CHANGE_SPEED:
            # Copter/Rover: positive speed, and only modes with set_speed_xy (AUTO, GUIDED, RTL).
            if p[1] <= 0 or self.mode not in ("AUTO", "GUIDED", "RTL", "SMART_RTL"):
                return r.MAV_RESULT_FAILED
            self._speed_mps = float(p[1])
            return r.MAV_RESULT_ACCEPTED
        if cmd == r.MAV_CMD_DO_SET_HOME:
            if p[0] == 1.0:
                loc = (self._lat, self._lon, self._alt_amsl)
            else:
                if (p[4] == 0.0 and p[5] == 0.0) or abs(p[4]) > 90 or abs(p[5]) > 180:
                    return r.MAV_RESULT_FAILED
                loc = (p[4], p[5], p[6])
            if not self._origin_set:
                return r.MAV_RESULT_FAILED
            self._set_home(loc, lock=True)
            return r.MAV_RESULT_ACCEPTED
        if cmd == r.MAV_CMD_SET_MESSAGE_INTERVAL:
            mid, interval_us = int(p[0]), p[1]
            # HOME_POSITION (no home yet) and ADSB_VEHICLE (nothing heard yet) may have nothing to send
            if (mid not in (mav.MAVLINK_MSG_ID_HOME_POSITION, mav.MAVLINK_MSG_ID_ADSB_VEHICLE)
                    and self._build(mid) is None):
                return r.MAV_RESULT_FAILED
            if interval_us < 0:
                self._intervals_s.pop(mid, None)
            else:
                self._set_interval(mid, 1.0 if interval_us == 0 else interval_us / 1e6)
            return r.MAV_RESULT_ACCEPTED
        if cmd == r.MAV_CMD_GET_MESSAGE_INTERVAL:
            mid = int(p[0])
            iv = self._intervals_s.get(mid)
            self._ack(cmd, r.MAV_RESULT_ACCEPTED, msg)
            self._send(mav.MAVLink_message_interval_message(mid, -1 if iv is None else int(iv * 1e6)))
            return None
        if cmd in (r.MAV_CMD_REQUEST_MESSAGE, r.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES):
            mid = mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION if cmd != r.MAV_CMD_REQUEST_MESSAGE else int(p[0])
            built = self._build(mid)
            if built is None and mid != mav.MAVLINK_MSG_ID_HOME_POSITION:
                return r.MAV_RESULT_FAILED
            # ArduPilot acknowledges, then sends the message from its queue (none for an unset home).
            self._ack(cmd, r.MAV_RESULT_ACCEPTED, msg)
            if built is not None:
                self._send(built)
            return None
        if cmd == r.MAV_CMD_DO_REPOSITION:
            if frame is None:  # COMMAND_INT only (GCS_MAVLINK::try_command_long_as_command_int)
                return r.MAV_RESULT_UNSUPPORTED
            if not self._armed or (self.kind == "copter" and self._on_ground()):
                return r.MAV_RESULT_FAILED
            if self.mode != "GUIDED" and not self._set_mode(self._mode_num("GUIDED")):
                return r.MAV_RESULT_FAILED
            alt = self._alt_to_amsl(p[6], frame) if self.kind == "copter" else self._ground_amsl
            self._guided_target = (p[4], p[5], alt)
            if p[0] > 0:
                self._speed_mps = float(p[0])
            return r.MAV_RESULT_ACCEPTED
        if cmd == r.MAV_CMD_DO_SET_MISSION_CURRENT:
            return r.MAV_RESULT_ACCEPTED if self._set_mission_current(int(p[0])) else r.MAV_RESULT_FAILED
        if cmd == r.MAV_CMD_DO_PAUSE_CONTINUE:
            return self._pause_continue(p[0])
        log.info("%s: unsupported command %d", self.name, cmd)
        return r.MAV_RESULT_UNSUPPORTED

    def _handle_set_mode_msg(self, msg: mav.MAVLink_message) -> None:
        # GCS_MAVLINK::handle_set_mode acknowledges with the message id as "command".
        ok = bool(msg.base_mode & mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED) and self._set_mode(msg.custom_mode)
        self._ack(mav.MAVLINK_MSG_ID_SET_MODE, mav.MAV_RESULT_ACCEPTED if ok else mav.MAV_RESULT_FAILED, msg)

    def _handle_position_target(self, msg: mav.MAVLink_message) -> None:
        if msg.type_mask & 0b111 == 0b111:  # position ignored: velocity control not simulated
            self.counters["unhandled_msgs"] += 1
            return
        if self.mode != "GUIDED":
            return  # ArduPilot ignores position targets outside GUIDED
        alt = (self._alt_to_amsl(msg.alt, msg.coordinate_frame) if self.kind == "copter"
               else self._ground_amsl)
        self._guided_target = (msg.lat_int / 1e7, msg.lon_int / 1e7, alt)

    def _alt_to_amsl(self, alt: float, frame: int) -> float:
        if frame in (mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT):
            return alt
        if frame in (mav.MAV_FRAME_GLOBAL_TERRAIN_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT):
            return self._ground_amsl + alt  # flat terrain at the boot position's height
        home_alt = self._home[2] if self._home else self._boot_home[2]
        return home_alt + alt

    # ------------------------------------------------------------------ modes, arming
    def _mode_name(self, num: int) -> str:
        table = _COPTER_NAMES if self.kind == "copter" else _ROVER_NAMES
        return table.get(num, f"MODE_{num}")

    def _mode_num(self, name: str) -> int:
        return (COPTER_MODES if self.kind == "copter" else ROVER_MODES)[name]

    def _set_mode(self, num: int, *, reason: str = "gcs") -> bool:
        """Try a mode change as ArduPilot's set_mode does; False (with a STATUSTEXT) on refusal."""
        table = _COPTER_NAMES if self.kind == "copter" else _ROVER_NAMES
        name = table.get(num)
        if name is None or name == "INITIALISING":
            self._text(mav.MAV_SEVERITY_WARNING, f"No such mode {num}")  # notify_no_such_mode()
            return False
        if num == self._mode:
            return True
        # Checks are skipped while disarmed (Copter::set_mode ignore_checks = !armed; Rover the same).
        checks = self._armed
        if checks and name in _POSITION_MODES and not self._ekf_ready:
            self._text(mav.MAV_SEVERITY_WARNING, f"Mode change to {name} failed: requires position")
            return False
        if self.kind == "boat" and name == "AUTO" and self.mission_count <= 1:
            self._text(mav.MAV_SEVERITY_NOTICE, "No Mission. Can't set AUTO.")  # Rover ModeAuto::_enter
            return False
        if self.kind == "boat" and name in ("RTL", "SMART_RTL") and self._home is None:
            return False  # Rover ModeRTL::_enter needs home
        if (self.kind == "copter" and name == "AUTO" and self._armed and self._on_ground()
                and not self._mission_starts_with_takeoff()):
            self._text(mav.MAV_SEVERITY_CRITICAL, "Auto: Missing Takeoff Cmd")  # ModeAuto::init
            return False
        self._mode = num
        if not self._init_done:
            self._mode_set_during_init = True
        self._enter_mode(name)
        log.info("%s: mode %s (%s)", self.name, name, reason)
        return True

    def _pause_continue(self, param1: float) -> int:
        """GCS_MAVLINK_Copter::handle_command_pause_continue: param1 0 pauses, 1 resumes;
        only AUTO (flying to a waypoint) and GUIDED can (ModeAuto/ModeGuided::pause), other
        modes answer FAILED with a STATUSTEXT. Rover has no handler: UNSUPPORTED."""
        if self.kind != "copter":
            return mav.MAV_RESULT_UNSUPPORTED
        if int(param1) not in (0, 1):
            return mav.MAV_RESULT_DENIED
        pause = int(param1) == 0
        in_wp = self.mode == "AUTO" and self._nav is not None and self._nav.phase == "goto"
        if self.mode == "GUIDED" or (self.mode == "AUTO" and (in_wp or not pause)):
            self._paused = pause
            return mav.MAV_RESULT_ACCEPTED
        self._text(mav.MAV_SEVERITY_INFO, "Failed to pause" if pause else "Failed to resume")
        return mav.MAV_RESULT_FAILED

    def _enter_mode(self, name: str) -> None:
        self._paused = False  # a new mode starts its controller unpaused
        self._speed_mps = self._default_speed()
        self._guided_target = None
        self._nav = None
        if name == "AUTO":
            # AP_Mission::start_or_resume: resume the current command unless MIS_RESTART=1.
            self._start_mission(restart=self._mission_complete or self._pv("MIS_RESTART") == 1)
        elif name in ("RTL", "SMART_RTL"):
            self._nav = _Nav("rtl_climb" if self.kind == "copter" else "rtl_return")
        elif name == "LAND":
            self._nav = _Nav("land")
        if name != "AUTO":
            self._mission_running = False

    def _mission_starts_with_takeoff(self) -> bool:
        for it in self._items[mav.MAV_MISSION_TYPE_MISSION][1:]:
            if it.command in _NAV_CMDS:
                return it.command == mav.MAV_CMD_NAV_TAKEOFF
        return False

    def _arm(self, force: bool) -> bool:
        if self._armed:
            return True
        if not force:
            reason = self._arm_failure()
            if reason is not None:
                self._text(mav.MAV_SEVERITY_CRITICAL, f"Arm: {reason}")
                return False
        self._armed = True
        self.counters["arms"] += 1
        self._landed_since_s = self._t_s
        if self._origin_set and not self._home_locked:
            # AP_Arming_Copter/Rover::arm: home moves to where the vehicle arms.
            self._set_home((self._lat, self._lon, self._alt_amsl), lock=False)
        self._text(mav.MAV_SEVERITY_INFO, "Arming motors" if self.kind == "copter" else "Throttle armed")
        return True

    def _arm_failure(self) -> str | None:
        if not self._init_done:
            return "System not initialised"
        if self._home is None or not self._ekf_ready:
            return "AHRS: waiting for home"  # FACTS: "Arm: AHRS: waiting for home"
        if self._batt_fs_level or self.battery_voltage_v < self._pv("BATT_LOW_VOLT"):
            return "Battery 1 low voltage failsafe"
        if self._pv("FENCE_ENABLE") == 1 and self._fence_breach_types():
            return "Fence: vehicle outside the fence"  # AC_Fence::pre_arm_check
        if self.kind == "copter" and self.mode not in _COPTER_ARMABLE:
            return "Mode not armable"
        return None

    def _disarm(self, force: bool, reason: str) -> bool:
        if not self._armed:
            return True
        if self.kind == "copter" and reason == "gcs" and not force and not self._on_ground():
            return False  # AP_Arming_Copter::disarm: GCS may disarm in flight only when forced
        self._armed = False
        self._mission_running = False
        if self.kind == "copter" or self.mode != "AUTO":
            # Copter disarm / AP_Arming_Rover::disarm outside AUTO: mission.reset().
            self._mission_index = 0
            self._mission_complete = False
        if self.kind == "copter" and not self._on_ground():
            self._alt_amsl = self._ground_amsl  # motors stop: it falls
        self._vn = self._ve = self._vd = 0.0
        self._text(mav.MAV_SEVERITY_INFO, "Disarming motors" if self.kind == "copter" else "Throttle disarmed")
        log.info("%s: disarmed (%s)", self.name, reason)
        return True

    def _user_takeoff(self, alt_rel_m: float) -> bool:
        # Copter::do_user_takeoff: armed, landed, mode with user takeoff (GUIDED), positive alt.
        if self.mode != "GUIDED" or not self._armed or not self._on_ground() or alt_rel_m <= 0:
            return False
        self._guided_target = None
        home_alt = self._home[2] if self._home else self._ground_amsl
        self._nav = _Nav("takeoff", alt_goal_amsl=home_alt + alt_rel_m)
        return True

    def _set_home(self, loc: tuple[float, float, float], *, lock: bool) -> None:
        self._home = loc
        self._home_locked = self._home_locked or lock
        self._send(self._build(mav.MAVLINK_MSG_ID_HOME_POSITION))

    # ------------------------------------------------------------------ mission protocol
    def _mission_ack(self, msg: mav.MAVLink_message, result: int, mission_type: int) -> None:
        self._send(mav.MAVLink_mission_ack_message(msg.get_srcSystem(), msg.get_srcComponent(),
                                                   result, mission_type))

    def _handle_mission_count(self, msg: mav.MAVLink_message) -> None:
        mt = msg.mission_type
        if mt not in self._items:
            self._mission_ack(msg, mav.MAV_MISSION_UNSUPPORTED, mt)
            return
        up = self._upload
        if up is not None and (msg.get_srcSystem(), msg.get_srcComponent()) != (up.sysid, up.compid):
            self._mission_ack(msg, mav.MAV_MISSION_DENIED, mt)
            return
        self._upload = None
        self._stage_fence(mt)
        # MissionItemProtocol_Waypoints::truncate: the stored mission is cut to the new length.
        items = self._items[mt]
        keep = max(msg.count, 1) if mt == mav.MAV_MISSION_TYPE_MISSION else msg.count
        del items[keep:]
        self._mission_changed(mt)
        if msg.count == 0:
            self._upload_complete(msg, mt)
            return
        now = self._wall()
        self._upload = _Upload(mt, msg.count, 0, msg.get_srcSystem(), msg.get_srcComponent(), now, now)
        self._request_next()

    def _request_next(self) -> None:
        up = self._upload
        assert up is not None
        # ArduPilot requests with MISSION_REQUEST, not _INT (FACTS; queued_request_send()).
        self._send(mav.MAVLink_mission_request_message(up.sysid, up.compid, up.next_seq, up.mission_type))
        up.last_request_wall = self._wall()

    def _update_upload(self, wall_now: float) -> None:
        up = self._upload
        if up is None:
            return
        if wall_now - up.last_receive_wall > _MISSION_UPLOAD_TIMEOUT_S:
            self._upload = None
            self._restore_fence(up.mission_type)
            self._text(mav.MAV_SEVERITY_WARNING, "Mission upload timeout")
            self._send(mav.MAVLink_mission_ack_message(up.sysid, up.compid,
                                                       mav.MAV_MISSION_OPERATION_CANCELLED, up.mission_type))
        elif wall_now - up.last_request_wall > _MISSION_RESEND_S:
            self._request_next()

    def _handle_mission_item(self, msg: mav.MAVLink_message) -> None:
        up = self._upload
        mt = msg.mission_type
        if up is None or mt != up.mission_type:
            self._mission_ack(msg, mav.MAV_MISSION_ERROR, mt)
            return
        if msg.seq != up.next_seq:
            self._mission_ack(msg, mav.MAV_MISSION_INVALID_SEQUENCE, mt)
            return
        if (msg.get_srcSystem(), msg.get_srcComponent()) != (up.sysid, up.compid):
            self._mission_ack(msg, mav.MAV_MISSION_DENIED, mt)
            return
        is_float = msg.get_type() == "MISSION_ITEM"
        if is_float and not up.warned_float:
            up.warned_float = True
            self._text(mav.MAV_SEVERITY_WARNING, "got MISSION_ITEM; GCS should send MISSION_ITEM_INT")
        item, result = self._convert_item(msg, is_float)
        if result == mav.MAV_MISSION_ACCEPTED and item is not None:
            items = self._items[mt]
            if msg.seq < len(items):
                items[msg.seq] = item
            elif msg.seq == len(items):
                items.append(item)
            else:
                result = mav.MAV_MISSION_ERROR
        if result != mav.MAV_MISSION_ACCEPTED:
            # MissionItemProtocol::handle_mission_item: ack the error, stop receiving; items
            # already stored stay (the partial mission is kept).
            self._upload = None
            self._restore_fence(mt)
            self._mission_changed(mt)
            log.info("%s: mission item %d rejected: %s", self.name, msg.seq,
                     mav.enums["MAV_MISSION_RESULT"][result].name)
            self._mission_ack(msg, result, mt)
            return
        up.last_receive_wall = self._wall()
        up.next_seq += 1
        if up.next_seq >= up.count:
            self._upload = None
            self._mission_changed(mt)
            self._upload_complete(msg, mt)
        else:
            self._request_next()

    def _upload_complete(self, msg: mav.MAVLink_message, mt: int) -> None:
        if mt == mav.MAV_MISSION_TYPE_FENCE and not self._fence_valid():
            self._restore_fence(mt)
            self._mission_ack(msg, mav.MAV_MISSION_ERROR, mt)
            return
        if mt == mav.MAV_MISSION_TYPE_MISSION:
            self._text(mav.MAV_SEVERITY_INFO, "Flight plan received")
        self._mission_ack(msg, mav.MAV_MISSION_ACCEPTED, mt)

    def _convert_item(self, msg: mav.MAVLink_message, is_float: bool) -> tuple[_Item | None, int]:
        """Validate like AP_Mission::mavlink_int_to_mission_cmd; return the item or an error."""
        if is_float:
            if abs(msg.x) > 90.0:
                return None, mav.MAV_MISSION_INVALID_PARAM5_X
            if abs(msg.y) > 180.0:
                return None, mav.MAV_MISSION_INVALID_PARAM6_Y
            x, y = round(msg.x * 1e7), round(msg.y * 1e7)
        else:
            x, y = msg.x, msg.y
        mt, cmd, frame = msg.mission_type, msg.command, msg.frame
        if mt == mav.MAV_MISSION_TYPE_FENCE:
            known, located = cmd in _FENCE_CMDS, cmd in _FENCE_CMDS
        elif mt == mav.MAV_MISSION_TYPE_RALLY:
            known, located = cmd == mav.MAV_CMD_NAV_RALLY_POINT, True
        else:
            known, located = cmd in _MISSION_CMDS, cmd in _LOCATION_CMDS
        if not known and not (mt == mav.MAV_MISSION_TYPE_MISSION and msg.seq == 0):
            return None, mav.MAV_MISSION_UNSUPPORTED
        if located:
            if frame not in _GLOBAL_FRAMES:
                return None, mav.MAV_MISSION_UNSUPPORTED_FRAME
            if abs(x) > 900_000_000:
                return None, mav.MAV_MISSION_INVALID_PARAM5_X
            if abs(y) > 1_800_000_000:
                return None, mav.MAV_MISSION_INVALID_PARAM6_Y
            frame = _FRAME_TO_STORED.get(frame, frame)
        elif mt == mav.MAV_MISSION_TYPE_MISSION:
            frame, x, y = mav.MAV_FRAME_GLOBAL, 0, 0  # no location: reported in frame 0 (FACTS)
        p3 = msg.param3
        if cmd == mav.MAV_CMD_NAV_LOITER_TIME and mt == mav.MAV_MISSION_TYPE_MISSION:
            p3 = -1.0 if p3 < 0 else 1.0  # only the direction survives storage (FACTS: reads 1)
        return _Item(msg.seq, frame, cmd, msg.param1, msg.param2, p3, msg.param4, x, y, msg.z), mav.MAV_MISSION_ACCEPTED

    def _mission_changed(self, mt: int) -> None:
        n = len(self._items[mt])
        if mt == mav.MAV_MISSION_TYPE_MISSION:
            self._params["MIS_TOTAL"].value = float(n)
            if self._mission_index >= n:
                self._mission_index = 0
                self._mission_running = False
        elif mt == mav.MAV_MISSION_TYPE_FENCE:
            # FACTS: a 4-vertex inclusion polygon reads back FENCE_TOTAL 6.
            self._params["FENCE_TOTAL"].value = float(n + 2 if n else 0)
        else:
            self._params["RALLY_TOTAL"].value = float(n)

    def _handle_mission_request_list(self, msg: mav.MAVLink_message) -> None:
        mt = msg.mission_type
        if mt not in self._items:
            self._mission_ack(msg, mav.MAV_MISSION_UNSUPPORTED, mt)
        elif self._upload is not None:
            self._mission_ack(msg, mav.MAV_MISSION_DENIED, mt)
        else:
            self._send(mav.MAVLink_mission_count_message(msg.get_srcSystem(), msg.get_srcComponent(),
                                                         len(self._items[mt]), mt))

    def _handle_mission_request(self, msg: mav.MAVLink_message) -> None:
        mt = msg.mission_type
        if mt not in self._items:
            self._mission_ack(msg, mav.MAV_MISSION_UNSUPPORTED, mt)
            return
        if self._upload is not None and msg.get_type() == "MISSION_REQUEST_INT":
            self._mission_ack(msg, mav.MAV_MISSION_DENIED, mt)
            return
        items = self._items[mt]
        if msg.seq >= len(items) and not (mt == mav.MAV_MISSION_TYPE_MISSION and msg.seq == 0):
            self._send(mav.MAVLink_mission_count_message(msg.get_srcSystem(), msg.get_srcComponent(),
                                                         len(items), mt))
            self._mission_ack(msg, mav.MAV_MISSION_ERROR, mt)
            return
        it = items[msg.seq]
        if mt == mav.MAV_MISSION_TYPE_MISSION and msg.seq == 0:
            # The home slot: all zeros until home is set (FACTS).
            it = (_Item(0, mav.MAV_FRAME_GLOBAL, mav.MAV_CMD_NAV_WAYPOINT, x=round(self._home[0] * 1e7),
                        y=round(self._home[1] * 1e7), z=self._home[2]) if self._home else _Item(0, 0, 0))
        current = int(mt == mav.MAV_MISSION_TYPE_MISSION and msg.seq == self._mission_index and msg.seq > 0)
        src, comp = msg.get_srcSystem(), msg.get_srcComponent()
        if msg.get_type() == "MISSION_REQUEST_INT":
            self._send(mav.MAVLink_mission_item_int_message(
                src, comp, it.seq, it.frame, it.command, current, 1, it.param1, it.param2, it.param3,
                it.param4, it.x, it.y, it.z, mt))
            return
        if not self._mission_request_warned:
            self._mission_request_warned = True
            self._text(mav.MAV_SEVERITY_WARNING, "got MISSION_REQUEST; use MISSION_REQUEST_INT!")
        self._send(mav.MAVLink_mission_item_message(
            src, comp, it.seq, it.frame, it.command, current, 1, it.param1, it.param2, it.param3,
            it.param4, it.x / 1e7, it.y / 1e7, it.z, mt))

    def _handle_mission_clear_all(self, msg: mav.MAVLink_message) -> None:
        mt = msg.mission_type
        if mt not in self._items:
            self._mission_ack(msg, mav.MAV_MISSION_UNSUPPORTED, mt)
            return
        if self._upload is not None:
            self._upload = None
        items = self._items[mt]
        del items[1 if mt == mav.MAV_MISSION_TYPE_MISSION else 0:]
        self._mission_changed(mt)
        self._mission_ack(msg, mav.MAV_MISSION_ACCEPTED, mt)

    def _set_mission_current(self, seq: int) -> bool:
        items = self._items[mav.MAV_MISSION_TYPE_MISSION]
        if not 0 < seq < len(items):
            return False
        self._mission_index = seq
        self._mission_complete = False
        self._nav = None
        self._send(self._build(mav.MAVLINK_MSG_ID_MISSION_CURRENT))
        return True

    # ------------------------------------------------------------------ mission execution
    def _start_mission(self, *, restart: bool) -> None:
        items = self._items[mav.MAV_MISSION_TYPE_MISSION]
        if restart or not 0 < self._mission_index < len(items):
            self._mission_index = 1
        self._mission_running = len(items) > 1
        self._mission_complete = False
        self._nav = None
        self._send(self._build(mav.MAVLINK_MSG_ID_MISSION_CURRENT))

    def _auto_step(self, dt: float) -> None:
        items = self._items[mav.MAV_MISSION_TYPE_MISSION]
        if not self._mission_running or self._mission_complete:
            self._hold(dt)
            return
        # Run DO commands at once until the next NAV command (AP_Mission::advance_current_nav_cmd).
        while self._nav is None:
            if self._mission_index >= len(items):
                self._finish_mission()
                return
            it = items[self._mission_index]
            if it.command in _NAV_CMDS:
                self._nav = self._nav_started(it, self._start_nav(it))
                self._send(self._build(mav.MAVLINK_MSG_ID_MISSION_CURRENT))
                break
            self._do_command(it)
            self._mission_index += 1
        assert self._nav is not None
        it = items[self._mission_index]
        if self._run_nav(it, self._nav, dt):
            self._send(mav.MAVLink_mission_item_reached_message(it.seq))
            self.reached_log.append((it.seq, self._t_s, self._consumed_mah))
            if self.kind == "copter":
                self._text(mav.MAV_SEVERITY_INFO, f"Reached command #{it.seq}")
            else:
                self._text(mav.MAV_SEVERITY_INFO, f"Reached waypoint #{it.seq}")
            self._nav = None
            self._mission_index += 1
            if not self._armed:  # landed and disarmed by the command
                self._mission_running = False

    def _finish_mission(self) -> None:
        self._mission_complete = True
        self._nav = None
        self._mission_index = max(1, len(self._items[mav.MAV_MISSION_TYPE_MISSION]) - 1)
        if self.kind == "boat":
            self._text(mav.MAV_SEVERITY_NOTICE, "Mission Complete")  # Rover ModeAuto::exit_mission
        elif self._armed and self._on_ground():
            self._disarm(True, "mission exit")  # Copter ModeAuto::exit_mission on the ground

    def _do_command(self, it: _Item) -> None:
        if it.command == mav.MAV_CMD_DO_CHANGE_SPEED and it.param2 > 0:
            self._speed_mps = it.param2
        elif it.command == mav.MAV_CMD_DO_SET_HOME:
            self._set_home((self._lat, self._lon, self._alt_amsl) if it.param1 == 1 else
                           (it.x / 1e7, it.y / 1e7, self._alt_to_amsl(it.z, it.frame)), lock=True)

    def _item_target(self, it: _Item) -> tuple[float, float, float]:
        lat, lon = (it.x / 1e7, it.y / 1e7) if (it.x or it.y) else (self._lat, self._lon)
        if self.kind == "boat":
            return lat, lon, self._ground_amsl
        # An altitude of 0 keeps the current altitude (ModeAuto::loc_from_cmd).
        alt = self._alt_to_amsl(it.z, it.frame) if it.z != 0 else self._alt_amsl
        return lat, lon, alt

    def _start_nav(self, it: _Item) -> _Nav:
        c = it.command
        if c == mav.MAV_CMD_NAV_TAKEOFF:
            # Already above the goal: the takeoff completes at once (ModeAuto::takeoff_start).
            return _Nav("takeoff", alt_goal_amsl=max(self._alt_amsl, self._alt_to_amsl(it.z, it.frame)))
        if c == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            return _Nav("rtl_climb" if self.kind == "copter" else "rtl_return")
        if c == mav.MAV_CMD_NAV_LAND:
            target = self._item_target(it)
            return _Nav("land_approach", target=(target[0], target[1], self._alt_amsl))
        if c == mav.MAV_CMD_NAV_DELAY:
            return _Nav("delay", hold_until_s=self._t_s + max(0.0, it.param1))
        return _Nav("goto", target=self._item_target(it))

    def _run_nav(self, it: _Item, nav: _Nav, dt: float) -> bool:
        """Advance one nav command; True when it is complete."""
        c = it.command
        done = self._nav_hook(it, nav, dt)  # terrain following, failsafe, circles (sitl.ground)
        if done is not None:
            return done
        if self.kind == "boat" and c in (mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_LAND):
            return True  # not a Rover command: skipped
        if nav.phase == "takeoff":
            return self._climb_to(nav.alt_goal_amsl or self._alt_amsl, dt)
        if nav.phase.startswith("rtl") or nav.phase.startswith("land"):
            return self._rtl_land_step(nav, dt)
        if nav.phase == "delay":
            self._hold(dt)
            return self._t_s >= (nav.hold_until_s or 0.0)
        if nav.phase == "goto":
            assert nav.target is not None
            radius = it.param2 if c == mav.MAV_CMD_NAV_WAYPOINT and it.param2 > 0 else _WP_RADIUS_M
            if self._fly_to(nav.target, dt) <= radius:
                if c == mav.MAV_CMD_NAV_LOITER_UNLIM:
                    nav.phase = "hold_forever"
                elif c == mav.MAV_CMD_NAV_LOITER_TURNS and nav.center is not None:
                    nav.phase = "circle"  # at the edge: fly the turns (sitl.ground)
                elif c in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME) and it.param1 > 0:
                    nav.phase, nav.hold_until_s = "hold", self._t_s + it.param1
                else:
                    return True
            return False
        if nav.phase in ("hold", "hold_forever"):
            if self.kind == "boat":
                self._hold(dt)  # Rover ModeAuto: boats loiter once the waypoint is reached
            elif nav.target is not None:
                self._fly_to(nav.target, dt)
            return nav.phase == "hold" and self._t_s >= (nav.hold_until_s or 0.0)
        return True

    # ------------------------------------------------------------------ kinematics
    def _on_ground(self) -> bool:
        return self._alt_amsl <= self._ground_amsl + 0.01

    def _set_velocity(self, lat0: float, lon0: float, alt0: float, dt: float) -> None:
        n, e = _ne_m(lat0, lon0, self._lat, self._lon)
        self._vn, self._ve, self._vd = n / dt, e / dt, (alt0 - self._alt_amsl) / dt
        if math.hypot(n, e) > 1e-3:
            self._heading_deg = math.degrees(math.atan2(e, n)) % 360.0

    def _fly_to(self, target: tuple[float, float, float], dt: float) -> float:
        """Move toward target at WP speed (vertical at WP_SPD_UP/DN); return horizontal distance left."""
        lat0, lon0, alt0 = self._lat, self._lon, self._alt_amsl
        n, e = _ne_m(self._lat, self._lon, target[0], target[1])
        dist = math.hypot(n, e)
        step = min(dist, self._speed_mps * dt)
        if dist > 1e-6:
            k = step / dist
            self._lat += n * k / _M_PER_DEG
            self._lon += e * k / (_M_PER_DEG * math.cos(math.radians(self._lat)))
        if self.kind == "copter":
            self._move_alt(target[2], dt)
        self._set_velocity(lat0, lon0, alt0, dt)
        left = dist - step
        vertical = abs(self._alt_amsl - target[2]) if self.kind == "copter" else 0.0
        return left if vertical < 1.0 else max(left, vertical)

    def _move_alt(self, goal_amsl: float, dt: float, down_mps: float | None = None) -> None:
        dz = goal_amsl - self._alt_amsl
        rate = self._pv("WP_SPD_UP") if dz > 0 else (down_mps or self._pv("WP_SPD_DN"))
        self._alt_amsl += math.copysign(min(abs(dz), rate * dt), dz)
        self._alt_amsl = max(self._alt_amsl, self._ground_amsl)

    def _climb_to(self, goal_amsl: float, dt: float) -> bool:
        lat0, lon0, alt0 = self._lat, self._lon, self._alt_amsl
        self._move_alt(goal_amsl, dt)
        self._set_velocity(lat0, lon0, alt0, dt)
        return abs(self._alt_amsl - goal_amsl) < 0.1

    def _hold(self, dt: float) -> None:
        """Stop and hold here (a copter's position hold, a boat's loiter or stop: see
        sitl.disturbance, which keeps the hold point against wind and current)."""
        self._vn = self._ve = self._vd = 0.0
        self._held = True

    def _rtl_land_step(self, nav: _Nav, dt: float) -> bool:
        """Copter RTL (climb, return, loiter, land) and LAND; boat RTL (drive home, hold)."""
        home = self._home or self._boot_home
        if self.kind == "boat":
            if nav.phase == "rtl_return":
                if self._fly_to(home, dt) <= self._pv("WP_RADIUS"):
                    nav.phase = "rtl_done"
                    self._text(mav.MAV_SEVERITY_INFO, "Reached destination")  # Rover ModeRTL
                return False
            self._hold(dt)
            return nav.phase == "rtl_done"
        if self._on_ground() and nav.phase in ("rtl_climb", "rtl_return", "rtl_loiter"):
            self._hold(dt)  # ModeRTL on the ground: nothing until DISARM_DELAY disarms
            return False
        if nav.phase == "rtl_climb":
            rtl_alt = home[2] + self._pv("RTL_ALT") / 100.0
            nav.alt_goal_amsl = nav.alt_goal_amsl or max(self._alt_amsl, rtl_alt)
            if self._climb_to(nav.alt_goal_amsl, dt):
                nav.phase = "rtl_return"
            return False
        if nav.phase == "rtl_return":
            rtl_speed = self._pv("RTL_SPEED") / 100.0
            saved = self._speed_mps
            if rtl_speed > 0:
                self._speed_mps = rtl_speed
            left = self._fly_to((home[0], home[1], nav.alt_goal_amsl or self._alt_amsl), dt)
            self._speed_mps = saved
            if left < 0.1:
                nav.phase, nav.hold_until_s = "rtl_loiter", self._t_s + _RTL_LOITER_S
            return False
        if nav.phase == "rtl_loiter":
            self._hold(dt)
            if self._t_s >= (nav.hold_until_s or 0.0):
                nav.phase = "land"
            return False
        if nav.phase == "land_approach":
            assert nav.target is not None
            if self._fly_to(nav.target, dt) < 0.1:
                nav.phase = "land"
            return False
        if nav.phase == "land":
            if self._on_ground():
                self._hold(dt)
                if self._armed:
                    self._disarm(True, "landed")  # land detector, then disarm (mode_land.cpp)
                return True
            # LAND_SPEED below LAND_ALT_LOW, WP_SPD_DN above (ArduCopter mode_land.cpp).
            above_ground = self._alt_amsl - self._ground_amsl
            rate = self._pv("LAND_SPEED") / 100.0 if above_ground <= _LAND_ALT_LOW_M else self._pv("WP_SPD_DN")
            lat0, lon0, alt0 = self._lat, self._lon, self._alt_amsl
            self._move_alt(self._ground_amsl, dt, down_mps=rate)
            self._set_velocity(lat0, lon0, alt0, dt)
            return False
        return True

    # ------------------------------------------------------------------ the step
    def _step(self, dt: float, wall_now: float) -> None:
        self._t_s += dt
        self._boot_events()
        lat0, lon0 = self._lat, self._lon
        name = self.mode
        flying = self.kind == "copter" and not self._on_ground()
        if not self._armed:
            self._hold(dt)
        elif name in ("AUTO", "GUIDED") and self._paused:
            self._hold(dt)  # paused: stopped on the track (AC_WPNav::set_pause)
        elif name == "AUTO":
            self._auto_step(dt)
        elif name in ("RTL", "SMART_RTL", "LAND"):
            if self._nav is None:
                self._nav = _Nav("land" if name == "LAND" else
                                 ("rtl_climb" if self.kind == "copter" else "rtl_return"))
            self._rtl_land_step(self._nav, dt)
        elif name == "GUIDED":
            if self._nav is not None and self._nav.phase == "takeoff":
                if self._climb_to(self._nav.alt_goal_amsl or self._alt_amsl, dt):
                    self._nav = None
            elif self.kind == "boat" and self._guided_done_for is self._guided_target:
                self._hold(dt)  # Rover ModeGuided: a boat loiters at the reached target
            elif self._guided_target is not None and (flying or self.kind == "boat"):
                if self._fly_to(self._guided_target, dt) <= _WP_RADIUS_M and self.kind == "boat":
                    self._guided_done_for = self._guided_target
            else:
                self._hold(dt)
        else:
            self._hold(dt)
        self._disturbance_step(dt, lat0, lon0)
        self._drain_battery(dt)
        self._disarm_delay_check()
        self._battery_failsafe()
        self._gcs_failsafe(wall_now)
        self._fence_step()
        self._record_log()
        self._ground_step()

    def _boot_events(self) -> None:
        t = self._t_s
        if not self._init_done and t >= self._init_s:
            self._init_done = True
            initial = (COPTER_MODES["STABILIZE"] if self.kind == "copter"
                       else int(self._pv("INITIAL_MODE")))
            if self._mode_set_during_init or self.kind == "boat":
                # A mode set during start-up is lost (FACTS): init ends by setting the initial mode.
                self._mode = initial
                self._enter_mode(self.mode)
            self._text(mav.MAV_SEVERITY_INFO, "ArduPilot Ready")
        if not self._origin_set and t >= self._origin_s:
            self._origin_set = True
            self._text(mav.MAV_SEVERITY_INFO, "EKF3 IMU0 origin set")
        if not self._ekf_ready and t >= self._ekf_ready_s and self._origin_set:
            self._ekf_ready = True
            self._text(mav.MAV_SEVERITY_INFO, "EKF3 IMU0 is using GPS")
            if self._home is None:
                self._set_home((self._lat, self._lon, self._alt_amsl), lock=False)
        if (self._init_done and not self._armed and not self._ekf_ready
                and t - self._last_prearm_s >= _PREARM_REPORT_S):
            self._last_prearm_s = t
            self._text(mav.MAV_SEVERITY_CRITICAL, "PreArm: AHRS: waiting for home")

    def _drain_battery(self, dt: float) -> None:
        if not self._armed:
            return
        # Full current (hovering / cruising) empties the pack in endurance_s; the effort
        # (sitl.disturbance: airspeed, speed through the water) scales it, 10 % idling armed.
        full_ma = self._capacity_mah * 3600.0 / self._endurance_s
        self._consumed_mah += (full_ma * self._power_fraction() * dt / 3600.0
                               * self.faults.battery_drain_x)

    def _current_a(self) -> float:
        if not self._armed:
            return 0.2
        full_a = self._capacity_mah / 1000.0 * 3600.0 / self._endurance_s
        return full_a * self._power_fraction()

    def _disarm_delay_check(self) -> None:
        if self.kind != "copter" or not self._armed:
            self._landed_since_s = None
            return
        taking_off = self._nav is not None and self._nav.phase == "takeoff"
        if not self._on_ground() or taking_off:
            self._landed_since_s = None
            return
        if self._landed_since_s is None:
            self._landed_since_s = self._t_s
        delay = self._pv("DISARM_DELAY")
        if delay > 0 and self._t_s - self._landed_since_s >= delay:
            self._disarm(True, "DISARM_DELAY")  # Copter::auto_disarm_check

    def _battery_failsafe(self) -> None:
        v = self.battery_voltage_v
        t = self._t_s
        crt = v < self._pv("BATT_CRT_VOLT")
        low = v < self._pv("BATT_LOW_VOLT")
        self._batt_crt_since_s = (self._batt_crt_since_s if self._batt_crt_since_s is not None else t) if crt else None
        self._batt_low_since_s = (self._batt_low_since_s if self._batt_low_since_s is not None else t) if low else None
        # AP_BattMonitor: a level must persist BATT_LOW_TIMER seconds before it triggers.
        if self._batt_fs_level < 2 and crt and t - self._batt_crt_since_s >= _BATT_LOW_TIMER_S:
            self._batt_fs_level = 2
            self._text(mav.MAV_SEVERITY_CRITICAL,
                       f"Battery 1 is critical {v:.2f}V used {self._consumed_mah:.0f} mAh")
            self._failsafe_action(int(self._pv("BATT_FS_CRT_ACT")))
        elif self._batt_fs_level < 1 and low and t - self._batt_low_since_s >= _BATT_LOW_TIMER_S:
            self._batt_fs_level = 1
            self._text(mav.MAV_SEVERITY_CRITICAL,
                       f"Battery 1 is low {v:.2f}V used {self._consumed_mah:.0f} mAh")
            self._failsafe_action(int(self._pv("BATT_FS_LOW_ACT")))

    def _failsafe_action(self, action: int) -> None:
        """Battery failsafe action numbers: Copter 1 LAND, 2 RTL...; Rover 1 RTL, 2 HOLD."""
        if not self._armed:
            return
        if self.kind == "copter":
            if self._on_ground():
                self._disarm(True, "failsafe on the ground")
                return
            target = {1: "LAND", 2: "RTL", 3: "RTL", 4: "LAND"}.get(action)
            if target == "RTL" and self.mode in ("RTL", "LAND"):
                return  # never trade a landing for a return
            if target == "LAND" and self.mode == "LAND":
                return
        else:
            target = {1: "RTL", 2: "HOLD", 3: "RTL", 4: "RTL"}.get(action)
            if target == self.mode:
                return
        if target is not None:
            self._set_mode(self._mode_num(target), reason="failsafe")

    def _gcs_failsafe(self, wall_now: float) -> None:
        if (self._pv("FS_GCS_ENABLE") == 0 or not self._armed or self._gcs_fs_active
                or self._gcs_hb_sim_s is None or self._gcs_hb_wall_s is None):
            return
        timeout_s = self._pv("FS_GCS_TIMEOUT") if self.kind == "copter" else self._pv("FS_TIMEOUT")
        if (self._t_s - self._gcs_hb_sim_s < timeout_s
                or wall_now - self._gcs_hb_wall_s < max(_GCS_FS_WALL_FLOOR_S, timeout_s / self.speedup)):
            return
        self._gcs_fs_active = True
        self._text(mav.MAV_SEVERITY_WARNING, "GCS Failsafe")
        if self.kind == "copter":
            if self._on_ground():
                self._disarm(True, "GCS failsafe on the ground")
            elif self.mode not in ("RTL", "LAND"):
                # FS_GCS_ENABLE 5 = LAND, others RTL (Copter events.cpp failsafe_gcs_on_event).
                self._set_mode(COPTER_MODES["LAND" if self._pv("FS_GCS_ENABLE") == 5 else "RTL"],
                               reason="GCS failsafe")
        else:
            self._failsafe_action(int(self._pv("FS_ACTION")))

    # ------------------------------------------------------------------ parameters (protocol)
    def _init_fence_and_params(self) -> None:
        self._fence_backup: list[_Item] | None = None
        self._fence_breaches = 0  # AC_FENCE_TYPE bits: 1 alt max, 2 circle, 4 polygon
        self.fence_breach_count = 0
        # (item seq, sim time s, battery used mAh) at each MISSION_ITEM_REACHED: what a
        # test measures legs with, free of the ground side's wall-clock jitter
        self.reached_log: list[tuple[int, float, float]] = []
        self._param_list_drop: set[str] = set()
        self._read_only_params: set[str] = set()
        self.counters.update(param_list_sent=0, fence_breaches=0)

    def drop_from_param_list(self, names: set[str] | list[str]) -> None:
        """Test hook: leave these out of the next PARAM_REQUEST_LIST answer (as lost packets);
        reads by name or index still answer them."""
        self._param_list_drop = set(names)

    def make_param_read_only(self, name: str) -> None:
        """Test hook: refuse writes to ``name`` as ArduPilot does for read-only parameters."""
        self._read_only_params.add(name)

    def _handle_param_request_list(self, msg: mav.MAVLink_message) -> None:
        # GCS_MAVLINK::handle_param_request_list: every parameter with its index and the count.
        dropped, self._param_list_drop = self._param_list_drop, set()
        for name in self._params:
            if name not in dropped:
                self._send_param(name)
                self.counters["param_list_sent"] += 1

    def _handle_param_set_msg(self, msg: mav.MAVLink_message) -> None:
        """GCS_MAVLINK::handle_param_set (GCS_Param.cpp), simulated."""
        name, value = msg.param_id, float(msg.param_value)
        p = self._params.get(name)
        if p is None or not math.isfinite(value):
            self.counters["unknown_param"] += 1  # unknown name, NaN or inf: no answer at all
            log.info("%s: PARAM_SET %r = %r ignored (as ArduPilot)", self.name, name, value)
            return
        if name in self._read_only_params:
            self._text(mav.MAV_SEVERITY_WARNING, f"Param write denied ({name})")
            self._send_param_echo(name)
            return
        # AP_Param::set_float: integers are rounded and clamped to their type's range.
        bounds = {mav.MAV_PARAM_TYPE_INT8: (-128, 127), mav.MAV_PARAM_TYPE_INT16: (-32768, 32767),
                  mav.MAV_PARAM_TYPE_INT32: (-2**31, 2**31 - 1)}.get(p.ptype)
        if bounds is not None:
            value = float(min(bounds[1], max(bounds[0], round(value))))
        self._handle_param_set(name, value)

    def _send_param_echo(self, name: str) -> None:
        # GCS::send_parameter_value: a changed value goes out with param_index -1 (65535).
        p = self._params[name]
        self._send(mav.MAVLink_param_value_message(name.encode(), p.value, p.ptype,
                                                   len(self._params), 65535))

    # ------------------------------------------------------------------ geofence
    def _stage_fence(self, mt: int) -> None:
        # MissionItemProtocol_Fence receives into a new buffer and writes the fence only when
        # the upload completes and validates: a failed upload keeps the old fence.
        if mt == mav.MAV_MISSION_TYPE_FENCE:
            self._fence_backup = list(self._items[mt])

    def _restore_fence(self, mt: int) -> None:
        if mt == mav.MAV_MISSION_TYPE_FENCE and self._fence_backup is not None:
            self._items[mt][:] = self._fence_backup
            self._fence_backup = None
            self._mission_changed(mt)

    def _fence_shapes(self) -> tuple[list[tuple[bool, list[tuple[float, float]]]],
                                     list[tuple[bool, float, float, float]]] | None:
        """Stored fence as (inclusion, [(lat, lon)...]) polygons and (inclusion, lat, lon,
        radius) circles; None if the items do not form a valid fence."""
        items = self._items[mav.MAV_MISSION_TYPE_FENCE]
        polys: list[tuple[bool, list[tuple[float, float]]]] = []
        circles: list[tuple[bool, float, float, float]] = []
        incl_v, excl_v = (mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                          mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION)
        i = 0
        while i < len(items):
            it = items[i]
            if it.command in (incl_v, excl_v):
                n = int(it.param1)
                group = items[i:i + n]
                # AC_PolyFence_loader::validate_fence: >= 3 vertices, consistent counts.
                if n < 3 or len(group) < n or any(g.command != it.command or int(g.param1) != n
                                                  for g in group):
                    return None
                polys.append((it.command == incl_v, [(g.x / 1e7, g.y / 1e7) for g in group]))
                i += n
                continue
            if it.command in (mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
                              mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION):
                if it.param1 <= 0:
                    return None
                circles.append((it.command == mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
                                it.x / 1e7, it.y / 1e7, it.param1))
            i += 1
        return polys, circles

    def _fence_valid(self) -> bool:
        return self._fence_shapes() is not None

    def _fence_breach_types(self) -> int:
        """AC_Fence::check: bitmask of the fence types the vehicle is outside of now."""
        types = int(self._pv("FENCE_TYPE"))
        home = self._home or self._boot_home
        breaches = 0
        if types & 1 and self.kind == "copter" and self.alt_rel_m > self._pv("FENCE_ALT_MAX"):
            breaches |= 1
        if types & 2:
            n, e = _ne_m(home[0], home[1], self._lat, self._lon)
            if math.hypot(n, e) > self._pv("FENCE_RADIUS"):
                breaches |= 2
        if types & 4 and self._fence_polygon_distance_m() > 0.0:
            breaches |= 4
        return breaches

    def _fence_polygon_distance_m(self) -> float:
        """How far outside the uploaded polygon/circle fences the vehicle is (0: inside all
        inclusion zones and outside all exclusion zones; AC_PolyFence_loader::breached)."""
        shapes = self._fence_shapes()
        if shapes is None:
            return 0.0
        polys, circles = shapes
        worst = 0.0
        for inclusion, ring in polys:
            pts = [_ne_m(self._lat, self._lon, la, lo) for la, lo in ring]  # vehicle at origin
            inside = _point_in_ring(pts)
            if inside != inclusion:
                worst = max(worst, _ring_distance_m(pts), 1e-3)
        for inclusion, la, lo, radius in circles:
            d = math.hypot(*_ne_m(self._lat, self._lon, la, lo))
            if inclusion and d > radius:
                worst = max(worst, d - radius)
            elif not inclusion and d < radius:
                worst = max(worst, radius - d, 1e-3)
        return worst

    def _fence_step(self) -> None:
        """Copter::fence_check / Rover::fence_check: act once per new breach while armed."""
        if self._pv("FENCE_ENABLE") != 1:
            self._fence_breaches = 0
            return
        before = self._fence_breaches
        now = self._fence_breach_types()
        new = now & ~before
        self._fence_breaches = now
        if before and not now and not self._on_ground():
            self._text(mav.MAV_SEVERITY_NOTICE, "Fence breach cleared")  # ArduCopter/fence.cpp
        if not new or not self._armed:
            return
        self.fence_breach_count += 1
        self.counters["fence_breaches"] += 1
        if self.kind == "boat" or not self._on_ground():
            self._text(mav.MAV_SEVERITY_NOTICE, "Fence Breached")  # ArduCopter/fence.cpp
        action = int(self._pv("FENCE_ACTION"))
        if action == 0:
            return  # AC_FENCE_ACTION_REPORT_ONLY
        distance_m = self._fence_breach_distance_m(new)
        if self.kind == "copter":
            if self._on_ground():
                self._disarm(True, "fence breach on the ground")
                return
            # FENCE_ACTION: 1 RTL or land, 2 always land, 3 SmartRTL or RTL or land,
            # 4 brake or land, 5 SmartRTL or land; beyond AC_FENCE_GIVE_UP_DISTANCE (100 m)
            # outside, land instead of returning (ArduCopter/fence.cpp).
            if action == 2 or (action in (1, 3, 5) and distance_m > 100.0):
                choices = ["LAND"]
            else:
                choices = {1: ["RTL", "LAND"], 3: ["SMART_RTL", "RTL", "LAND"],
                           4: ["BRAKE", "LAND"], 5: ["SMART_RTL", "LAND"]}.get(action, ["LAND"])
        else:
            # Rover FENCE_ACTION: 1 RTL, 2 Hold, 3 SmartRTL or RTL, 4 SmartRTL or Hold;
            # beyond 100 m outside it holds (Rover/fence.cpp).
            if action == 2 or distance_m > 100.0:
                choices = ["HOLD"]
            else:
                choices = {1: ["RTL", "HOLD"], 3: ["SMART_RTL", "RTL", "HOLD"],
                           4: ["SMART_RTL", "HOLD"]}.get(action, ["HOLD"])
        for mode in choices:
            if mode == self.mode or self._set_mode(self._mode_num(mode), reason="fence breach"):
                return

    def _fence_breach_distance_m(self, breaches: int) -> float:
        """AC_Fence::get_breach_distance: the largest distance outside the breached fences."""
        home = self._home or self._boot_home
        worst = 0.0
        if breaches & 1:
            worst = max(worst, self.alt_rel_m - self._pv("FENCE_ALT_MAX"))
        if breaches & 2:
            worst = max(worst, math.hypot(*_ne_m(home[0], home[1], self._lat, self._lon))
                        - self._pv("FENCE_RADIUS"))
        if breaches & 4:
            worst = max(worst, self._fence_polygon_distance_m())
        return worst

    # ------------------------------------------------------------------ telemetry
    def _send_due(self, wall_now: float) -> None:
        hb = mav.MAVLINK_MSG_ID_HEARTBEAT
        due: list[tuple[int, float]] = [(hb, 1.0)]  # HEARTBEAT 1 Hz always
        due += list(self._intervals_s.items())
        if self._streams_active:
            due.append((mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT, 1.0 / _EKF_REPORT_HZ))
        seen: set[int] = set()
        for mid, interval in due:
            if mid in seen:
                continue
            seen.add(mid)
            if mid == mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT:
                interval = 1.0 / _EKF_REPORT_HZ
            if self._t_s < self._next_due_s.get(mid, 0.0):
                continue
            if wall_now - self._last_wall_sent.get(mid, -1e9) < 1.0 / _MAX_WALL_RATE_HZ:
                continue
            msg = self._build(mid)
            # the next slot follows the previous one, not now, so the rate does not drift
            # below the requested one by up to a tick per message; after a gap (first send,
            # a pause) it restarts from now rather than catching up in a burst
            slot = self._next_due_s.get(mid, -math.inf) + interval
            self._next_due_s[mid] = slot if slot > self._t_s - interval else self._t_s + interval
            self._last_wall_sent[mid] = wall_now
            if msg is not None:
                self._send(msg)

    def _build(self, mid: int) -> mav.MAVLink_message | None:
        """The message with this id describing the current state (None if not simulated/known)."""
        builder = {
            mav.MAVLINK_MSG_ID_HEARTBEAT: self._msg_heartbeat,
            mav.MAVLINK_MSG_ID_SYS_STATUS: self._msg_sys_status,
            mav.MAVLINK_MSG_ID_BATTERY_STATUS: self._msg_battery_status,
            mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: self._msg_global_position_int,
            mav.MAVLINK_MSG_ID_GPS_RAW_INT: self._msg_gps_raw_int,
            mav.MAVLINK_MSG_ID_VFR_HUD: self._msg_vfr_hud,
            mav.MAVLINK_MSG_ID_ATTITUDE: self._msg_attitude,
            mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT: self._msg_ekf_status,
            mav.MAVLINK_MSG_ID_MISSION_CURRENT: self._msg_mission_current,
            mav.MAVLINK_MSG_ID_HOME_POSITION: self._msg_home_position,
            mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: self._msg_extended_sys_state,
            mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION: self._msg_autopilot_version,
            mav.MAVLINK_MSG_ID_WIND: self._msg_wind,
            mav.MAVLINK_MSG_ID_ADSB_VEHICLE: self._msg_adsb_vehicle,
        }.get(mid)
        return builder() if builder else None

    def _msg_adsb_vehicle(self) -> mav.MAVLink_message | None:
        """The next aircraft of the list, as AP_ADSB::send_adsb_vehicle: one per call, and a new
        pass over the list no sooner than 1 s after the previous one began."""
        aircraft = list(self._adsb.values())
        if not aircraft:
            return None
        if self._adsb_index == 0 or self._adsb_index >= len(aircraft):
            if self._adsb_time_s - self._adsb_list_start_s < 1.0:
                return None
            self._adsb_list_start_s = self._adsb_time_s
            self._adsb_index = 0
        self._adsb_index += 1
        return aircraft[self._adsb_index - 1].message(self._adsb_time_s)

    def _time_boot_ms(self) -> int:
        return int(self._t_s * 1000) & 0xFFFFFFFF

    def _msg_heartbeat(self) -> mav.MAVLink_message:
        base = mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        if self.mode != "INITIALISING":
            base |= mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED | mav.MAV_MODE_FLAG_STABILIZE_ENABLED
        if self.mode in _NAV_MODES:
            base |= mav.MAV_MODE_FLAG_GUIDED_ENABLED
        if self._armed:
            base |= mav.MAV_MODE_FLAG_SAFETY_ARMED
        if not self._init_done:
            status = mav.MAV_STATE_BOOT
        elif self._armed and (self._batt_fs_level or self._gcs_fs_active):
            status = mav.MAV_STATE_CRITICAL
        elif self._armed:
            status = mav.MAV_STATE_ACTIVE
        else:
            status = mav.MAV_STATE_STANDBY
        vtype = mav.MAV_TYPE_QUADROTOR if self.kind == "copter" else mav.MAV_TYPE_SURFACE_BOAT
        return mav.MAVLink_heartbeat_message(vtype, mav.MAV_AUTOPILOT_ARDUPILOTMEGA, base, self._mode, status, 3)

    def _msg_sys_status(self) -> mav.MAVLink_message:
        sensors = (mav.MAV_SYS_STATUS_SENSOR_3D_GYRO | mav.MAV_SYS_STATUS_SENSOR_3D_ACCEL
                   | mav.MAV_SYS_STATUS_SENSOR_3D_MAG | mav.MAV_SYS_STATUS_SENSOR_GPS
                   | mav.MAV_SYS_STATUS_SENSOR_BATTERY | mav.MAV_SYS_STATUS_AHRS)
        health = sensors if self._ekf_ready else sensors & ~mav.MAV_SYS_STATUS_AHRS
        return mav.MAVLink_sys_status_message(
            sensors, sensors, health, 200, int(self.battery_voltage_v * 1000),
            int(self._current_a() * 100), int(round(self.battery_pct)), 0, 0, 0, 0, 0, 0)

    def _msg_battery_status(self) -> mav.MAVLink_message:
        cell_mv = int(_cell_voltage(self.battery_pct) * 1000)
        voltages = [cell_mv] * _CELLS + [65535] * (10 - _CELLS)
        remaining_s = int(self.battery_pct / 100.0 * self._endurance_s) if self._armed else 0
        return mav.MAVLink_battery_status_message(
            0, mav.MAV_BATTERY_FUNCTION_ALL, mav.MAV_BATTERY_TYPE_LIPO, 32767, voltages,
            int(self._current_a() * 100), int(self._consumed_mah), -1, int(round(self.battery_pct)),
            remaining_s, mav.MAV_BATTERY_CHARGE_STATE_OK if not self._batt_fs_level else
            (mav.MAV_BATTERY_CHARGE_STATE_LOW if self._batt_fs_level == 1 else mav.MAV_BATTERY_CHARGE_STATE_CRITICAL),
            [0, 0, 0, 0], 0, 0)

    def _msg_global_position_int(self) -> mav.MAVLink_message:
        hdg = int(self._heading_deg * 100) % 36000
        if not self._origin_set:  # FACTS: lat/lon 0 until the EKF origin is set
            return mav.MAVLink_global_position_int_message(self._time_boot_ms(), 0, 0, 0, 0, 0, 0, 0, hdg)
        return mav.MAVLink_global_position_int_message(
            self._time_boot_ms(), round(self._lat * 1e7), round(self._lon * 1e7),
            round(self._alt_amsl * 1000), round(self.alt_rel_m * 1000), round(self._vn * 100),
            round(self._ve * 100), round(self._vd * 100), hdg)

    def _msg_gps_raw_int(self) -> mav.MAVLink_message:
        if not self._init_done:
            return mav.MAVLink_gps_raw_int_message(int(self._t_s * 1e6), mav.GPS_FIX_TYPE_NO_GPS,
                                                   0, 0, 0, 65535, 65535, 65535, 65535, 0)
        speed = math.hypot(self._vn, self._ve)
        return mav.MAVLink_gps_raw_int_message(
            int(self._t_s * 1e6), mav.GPS_FIX_TYPE_RTK_FIXED, round(self._lat * 1e7), round(self._lon * 1e7),
            round(self._alt_amsl * 1000), 121, 200, round(speed * 100), int(self._heading_deg * 100) % 36000, 10)

    def _msg_vfr_hud(self) -> mav.MAVLink_message:
        speed = math.hypot(self._vn, self._ve)
        throttle = 0 if not self._armed else (50 if not self.landed or speed > 0.1 else 0)
        return mav.MAVLink_vfr_hud_message(speed, speed, int(self._heading_deg) % 360, throttle,
                                           self._alt_amsl, -self._vd)

    def _msg_attitude(self) -> mav.MAVLink_message:
        yaw = math.radians(self._heading_deg)
        return mav.MAVLink_attitude_message(self._time_boot_ms(), 0.0, 0.0,
                                            yaw if yaw <= math.pi else yaw - 2 * math.pi, 0.0, 0.0, 0.0)

    def _msg_ekf_status(self) -> mav.MAVLink_message:
        flags = _EKF_FLAGS_READY if self._ekf_ready else _EKF_FLAGS_BOOT
        return mav.MAVLink_ekf_status_report_message(flags, 0.02, 0.01, 0.01, 0.02, 0.0, 0.0)

    def _msg_mission_current(self) -> mav.MAVLink_message:
        n = self.mission_count
        if n <= 1:
            state = mav.MISSION_STATE_NO_MISSION
        elif self._mission_complete:
            state = mav.MISSION_STATE_COMPLETE
        elif self._mission_running and self.mode == "AUTO":
            state = mav.MISSION_STATE_ACTIVE
        elif self._mission_running:
            state = mav.MISSION_STATE_PAUSED
        else:
            state = mav.MISSION_STATE_NOT_STARTED
        return mav.MAVLink_mission_current_message(self._mission_index, max(0, n - 1), state,
                                                   int(self.mode == "AUTO"))

    def _msg_home_position(self) -> mav.MAVLink_message | None:
        if self._home is None:
            return None  # ArduPilot sends nothing until home is set
        return mav.MAVLink_home_position_message(
            round(self._home[0] * 1e7), round(self._home[1] * 1e7), round(self._home[2] * 1000),
            0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0, int(self._t_s * 1e6))

    def _msg_extended_sys_state(self) -> mav.MAVLink_message:
        if self.kind == "boat":
            landed = mav.MAV_LANDED_STATE_UNDEFINED  # Rover does not override landed_state()
        elif self._on_ground():
            landed = mav.MAV_LANDED_STATE_ON_GROUND
        elif self._nav is not None and self._nav.phase == "takeoff":
            landed = mav.MAV_LANDED_STATE_TAKEOFF
        elif self._nav is not None and self._nav.phase == "land":
            landed = mav.MAV_LANDED_STATE_LANDING
        else:
            landed = mav.MAV_LANDED_STATE_IN_AIR
        return mav.MAVLink_extended_sys_state_message(mav.MAV_VTOL_STATE_UNDEFINED, landed)

    def _msg_autopilot_version(self) -> mav.MAVLink_message:
        return mav.MAVLink_autopilot_version_message(
            _CAPABILITIES, _FLIGHT_SW_VERSION, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0x1209, 0x5740,
            self.system_id, [0] * 18)

    # ------------------------------------------------------------------ camera, on-board logs
    # (sitl/camera.py, sitl/dataflash.py)
    def _camera_command(self, cmd: int, p: tuple[float, ...], frame: int | None,
                        msg: mav.MAVLink_message) -> None:
        roi_amsl: float | None = None
        if cmd == mav.MAV_CMD_DO_SET_ROI_LOCATION:
            # COMMAND_LONG locations are taken as relative to home (ArduPilot converts
            # COMMAND_LONG to COMMAND_INT in MAV_FRAME_GLOBAL_RELATIVE_ALT).
            f = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT if frame is None else frame
            if f in _GLOBAL_FRAMES:
                roi_amsl = self._alt_to_amsl(p[6], f)
        pose = CameraPose(self._lat, self._lon, self._alt_amsl, self.alt_rel_m,
                          self._ground_amsl, self._heading_deg, self._time_boot_ms())
        result, after = self.camera.command(cmd, p, roi_amsl, pose)
        self._ack(cmd, result, msg)
        for out in after:
            self._send(out)

    def _handle_log(self, msg: mav.MAVLink_message) -> None:
        wall_now = self._wall()
        ago = None if self._gcs_hb_wall_s is None else wall_now - self._gcs_hb_wall_s
        for out in self.dataflash.handle(msg, armed=self._armed, gcs_heard_s_ago=ago):
            self._send(out)

    def _send_logs(self, wall_now: float) -> None:
        ago = None if self._gcs_hb_wall_s is None else wall_now - self._gcs_hb_wall_s
        for out in self.dataflash.pump(armed=self._armed, gcs_heard_s_ago=ago):
            self._send(out)

    def _record_log(self) -> None:
        self.dataflash.record(self._t_s, armed=self._armed, lat=self._lat, lon=self._lon,
                              alt_amsl_m=self._alt_amsl, alt_rel_m=self.alt_rel_m,
                              mode=self.mode, battery_v=self.battery_voltage_v)

    # ------------------------------------------------------------------ faults, reboot, signing
    # (see sitl/faults.py; the send/receive paths above consult these helpers)
    def _init_faults_and_signing(self, faults: Faults | None,
                                 signing_key: str | bytes | None) -> None:
        self.faults = faults if faults is not None else Faults()
        self.faults.check()
        self.counters.update(dict.fromkeys((
            "rx_dropped_fault", "tx_dropped_fault", "rx_dropped_cut", "tx_dropped_cut",
            "rx_dropped_rebooting", "tx_dropped_rebooting", "rx_delayed", "tx_delayed",
            "rx_unsigned_rejected", "rx_bad_signature", "commands_denied_fault"), 0))
        self.boot_count = 1
        self._reboot_requested = False
        self._rebooting_until: float | None = None
        self._signature_rejecting: str | None = None
        self.signing = signing_key is not None
        if signing_key is None:
            return
        try:
            key = parse_key(signing_key)
        except ValueError as err:
            raise SimConfigError(f"{self.name}: {err}") from None
        # ArduPilot GCS_MAVLINK::load_signing_key: sign everything sent, check everything
        # received; accept_unsigned_callback lets only RADIO_STATUS and RADIO through
        # unsigned (and the USB channel 0, which a simulator over UDP/TCP does not have).
        signing = self._mav.signing
        signing.secret_key = key
        signing.sign_outgoing = True
        signing.link_id = 0
        signing.timestamp = timestamp_now()
        signing.allow_unsigned_callback = _accept_unsigned

    @property
    def rebooting(self) -> bool:
        """True from an accepted reboot until the vehicle talks again."""
        return self._reboot_requested or self._rebooting_until is not None

    def cut_link(self, seconds: float) -> None:
        """Cut the radio both ways for ``seconds`` of wall time (the vehicle keeps flying)."""
        if seconds < 0:
            raise SimConfigError(f"cut_link needs seconds >= 0, not {seconds}")
        self.faults.cut_until_s = self._wall() + seconds

    def reboot(self) -> None:
        """Test hook: reboot now, as MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN does (armed or not)."""
        self._reboot_requested = True

    def _fault_rx(self, data: bytes, addr: tuple[str, int] | None,
                  writer: asyncio.StreamWriter | None) -> bool:
        """Apply receive faults; True when the datagram was taken (dropped or delayed)."""
        if self._rebooting_until is not None:  # down (the ACK went out before)
            self.counters["rx_dropped_rebooting"] += 1
            return True
        faults = self.faults
        if faults.cut(self._wall()):
            self.counters["rx_dropped_cut"] += 1
            return True
        if writer is None and faults.drop_rx():
            self.counters["rx_dropped_fault"] += 1
            return True
        if faults.delay_ms > 0 and self._loop is not None:
            self.counters["rx_delayed"] += 1
            self._loop.call_later(faults.delay_s, self._receive_late, data, addr, writer)
            return True
        return False

    def _receive_late(self, data: bytes, addr: tuple[str, int] | None,
                      writer: asyncio.StreamWriter | None) -> None:
        if (writer is not None and writer.is_closing()) or (
                writer is None and (self._transport is None or self._transport.is_closing())):
            return  # the vehicle stopped meanwhile
        self._on_bytes(data, addr, writer, delayed=True)

    def _fault_tx_drop(self) -> bool:
        """Apply send faults; True when the packet is lost."""
        if self._rebooting_until is not None:  # down (the ACK went out before)
            self.counters["tx_dropped_rebooting"] += 1
            return True
        if self.faults.cut(self._wall()):
            self.counters["tx_dropped_cut"] += 1
            return True
        if not self._tcp and self.faults.drop_tx():
            self.counters["tx_dropped_fault"] += 1
            return True
        return False

    def _sendto(self, buf: bytes, remote: tuple[str, int]) -> None:
        delay_s = self.faults.delay_s
        if delay_s > 0 and self._loop is not None:
            self.counters["tx_delayed"] += 1
            self._loop.call_later(delay_s, self._sendto_late, buf, remote)
        elif self._transport is not None:
            self._transport.sendto(buf, remote)

    def _sendto_late(self, buf: bytes, remote: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(buf, remote)

    def _write_tcp(self, writer: asyncio.StreamWriter, buf: bytes) -> None:
        delay_s = self.faults.delay_s
        if delay_s > 0 and self._loop is not None:
            self.counters["tx_delayed"] += 1
            self._loop.call_later(delay_s, self._write_tcp_late, writer, buf)
        else:
            writer.write(buf)

    @staticmethod
    def _write_tcp_late(writer: asyncio.StreamWriter, buf: bytes) -> None:
        if not writer.is_closing():
            writer.write(buf)

    def _count_rejected_signature(self, msg: mav.MAVLink_message, addr: tuple[str, int] | None) -> None:
        data = bytes(getattr(msg, "data", b""))
        signed = len(data) > 2 and data[0] == 0xFD and bool(data[2] & 0x01)  # MAVLINK_IFLAG_SIGNED
        reason = "bad signature" if signed else "unsigned"
        self.counters["rx_bad_signature" if signed else "rx_unsigned_rejected"] += 1
        if reason != self._signature_rejecting:
            self._signature_rejecting = reason
            log.warning("%s: rejecting %s packets from %s", self.name, reason, addr)

    def _fault_command(self, cmd: int, p: tuple[float, ...]) -> int | None:
        """A MAV_RESULT for commands decided here (denied by a fault, reboot), else None."""
        if cmd in self.faults.deny_commands:
            self.counters["commands_denied_fault"] += 1
            log.info("%s: command %d denied (fault injection)", self.name, cmd)
            return mav.MAV_RESULT_DENIED
        if cmd == mav.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN:
            # GCS_MAVLINK::handle_preflight_reboot (GCS_Common.cpp): ESC calibration on the
            # next boot (param4 1) is unsupported; "refuse reboot when armed" → FAILED;
            # param1 must be 1 (reboot) or 3 (reboot to bootloader); the ack goes out first.
            if round(p[3]) == 1:
                return mav.MAV_RESULT_UNSUPPORTED
            if self._armed:
                return mav.MAV_RESULT_FAILED
            if p[0] not in (1.0, 3.0):
                return mav.MAV_RESULT_UNSUPPORTED
            self._reboot_requested = True
            return mav.MAV_RESULT_ACCEPTED
        return None

    def _reboot_tick(self, wall_now: float) -> bool:
        """Run a requested reboot; True while the vehicle is down (skip the tick)."""
        if self._reboot_requested:
            self._reboot_requested = False
            self._rebooting_until = wall_now + self.faults.reboot_silent_s
            self._reset_boot_state()
            log.info("%s: rebooting (silent for %.1f s)", self.name, self.faults.reboot_silent_s)
            return True
        if self._rebooting_until is not None:
            if wall_now < self._rebooting_until:
                return True
            self._rebooting_until = None
            self.boot_count += 1
            log.info("%s: boot %d", self.name, self.boot_count)
        return False

    def _reset_boot_state(self) -> None:
        """Back to power-on: clock, EKF, mode, home, streams, failsafes reset; the stored
        mission, parameters and the battery's charge stay (they live in storage / cells)."""
        self._t_s = 0.0
        self._init_done = self._origin_set = self._ekf_ready = False
        self._mode = ROVER_MODES["INITIALISING"] if self.kind == "boat" else COPTER_MODES["STABILIZE"]
        self._mode_set_during_init = False
        self._armed = False
        self._nav = None
        self._guided_target = None
        self._landed_since_s = None
        self._alt_amsl = self._ground_amsl  # a disarmed copter is on the ground
        self._vn = self._ve = self._vd = 0.0
        self._boot_home = (self._lat, self._lon, self._alt_amsl)
        self._home = None
        self._home_locked = False
        self._upload = None
        self._mission_running = False
        self._mission_index = 0
        self._mission_complete = False
        self._batt_fs_level = 0
        self._batt_low_since_s = self._batt_crt_since_s = None
        self._gcs_hb_sim_s = self._gcs_hb_wall_s = None
        self._gcs_fs_active = False
        self._last_prearm_s = -_PREARM_REPORT_S
        self._intervals_s.clear()
        self._next_due_s.clear()
        self._last_wall_sent.clear()
        self._streams_active = False
        self._speed_mps = self._default_speed()
        self._pending_texts.clear()


def _accept_unsigned(_mav: mav.MAVLink, msg_id: int) -> bool:
    """ArduPilot's accept_unsigned_callback list: radio modem status only."""
    return msg_id in (mav.MAVLINK_MSG_ID_RADIO_STATUS, mav.MAVLINK_MSG_ID_RADIO)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, vehicle: SimVehicle) -> None:
        self._vehicle = vehicle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._vehicle._on_bytes(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the ground station is not listening yet: keep going.
        log.debug("%s: udp error %s", self._vehicle.name, exc)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m sitl.vehicle_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("copter", "boat"), default="copter")
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--home", default="106.6300,29.7200,250", help="lon,lat[,alt_amsl_m]")
    ap.add_argument("--out", help="send to the ground station at HOST:PORT (GCS uses udpin:)")
    ap.add_argument("--listen", type=int, help="listen on this UDP port (GCS uses udpout:)")
    ap.add_argument("--tcp", type=int, help="serve MAVLink on this TCP port (GCS uses tcp:)")
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--ekf-ready-after", type=float, default=5.0)
    ap.add_argument("--wind", help="SPEED_MPS,FROM_DEG[,GUST_MPS]: wind on a copter")
    ap.add_argument("--current", help="SPEED_MPS,TOWARD_DEG: water current on a boat")
    ap.add_argument("--seed", type=int, default=0, help="gust seed")
    return ap.parse_args(argv)


def _environment_from_args(a: argparse.Namespace) -> Environment | None:
    from sitl.environment import Current, EnvironmentConfigError, Wind

    try:
        w = [float(x) for x in a.wind.split(",")] if a.wind else []
        c = [float(x) for x in a.current.split(",")] if a.current else []
        if len(w) not in (0, 2, 3) or len(c) not in (0, 2):
            raise SimConfigError("--wind SPEED,FROM[,GUST] and --current SPEED,TOWARD")
        if not w and not c:
            return None
        return Environment(Wind(*w) if w else Wind(), Current(*c) if c else Current(), a.seed)
    except (ValueError, EnvironmentConfigError) as err:
        raise SimConfigError(str(err)) from None


async def main(argv: list[str] | None = None) -> None:
    """Run one simulated vehicle from the command line until interrupted."""
    a = _parse_args(argv)
    parts = [float(v) for v in a.home.split(",")]
    gcs_host, gcs_port = "127.0.0.1", None
    if a.out:
        gcs_host, port = a.out.rsplit(":", 1)
        gcs_port = int(port)
    v = SimVehicle(kind=a.kind, system_id=a.sysid, home_lon=parts[0], home_lat=parts[1],
                   home_alt_amsl_m=parts[2] if len(parts) > 2 else 0.0, gcs_host=gcs_host,
                   gcs_port=gcs_port, listen_port=a.tcp or a.listen, tcp=a.tcp is not None,
                   speedup=a.speedup, ekf_ready_after_s=a.ekf_ready_after,
                   environment=_environment_from_args(a))
    await v.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
