"""Manned traffic near our drones, from ADS-B (MAVLink ``ADSB_VEHICLE``): who must hold, and why.

Model: both the drone and the aircraft fly straight at constant velocity (position, course over
ground and speed, climb rate). A drone is threatened when, now or within ``lookahead_s``, the
aircraft comes within ``horizontal_m`` horizontally *and* ``vertical_m`` vertically at the same time.
The two conditions are intervals of time (a quadratic and a linear inequality), intersected
exactly; no sampling. The alert's action is ``hold`` (brake / loiter): a drone that stops is
predictable to the pilot who sees it and leaves the manned aircraft the right of way.

Thresholds: this is a ground-side alert, wider than the vehicle's own last resort. ArduPilot's
AP_Avoidance (libraries/AP_Avoidance/AP_Avoidance.cpp) defaults to acting ("fail") on a projected
closest approach under AVD_F_DIST_XY = 300 m (Plane; 100 m on Copter) and AVD_F_DIST_Z = 100 m
within AVD_F_TIME = 30 s, and warns under AVD_W_DIST_XY 1000 m (Plane; 300 m Copter) / AVD_W_DIST_Z
300 m. Ours: 2000 m and 300 m within 60 s. The vertical 300 m is the ICAO minimum vertical
separation between aircraft below FL290 (ICAO Doc 4444 PANS-ATM, 1000 ft); the horizontal 2 km and
the 60 s are a choice: the alert must reach a dispatcher and the hold command must reach the drone
over a link before the vehicle's own avoidance would act (2 km is about 30 s of a helicopter at
65 m/s). All three are parameters.

Altitudes are compared as reported: the drone's above mean sea level, the aircraft's ADS-B altitude
(QNH pressure altitude or GNSS geometric altitude, per ``altitude_type``). They can differ by tens
of metres (pressure errors, geoid undulation), well inside the 300 m margin; an aircraft without a
valid altitude is taken at every height (only the horizontal test applies, and the alert says so).

Staleness: ``tslc`` is the seconds since the receiver last heard the aircraft. ArduPilot's AP_ADSB
drops an aircraft after 5 s without an update (VEHICLE_TIMEOUT_MS); here reports older than
``max_tslc_s`` (10 s: the report also travelled to the ground) are ignored with a note, and younger
ones are first moved along their velocity by ``tslc``. Metric work is in UTM 48N; velocities given
in true north/east are turned into grid velocities at each position (grid convergence ~1° here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from command.dispatch.geometry import UTM_48N, utm_transformers

__all__ = [
    "DEFAULT_HORIZONTAL_M",
    "DEFAULT_LOOKAHEAD_S",
    "DEFAULT_MAX_TSLC_S",
    "DEFAULT_VERTICAL_M",
    "Alert",
    "DroneState",
    "Ignored",
    "Threats",
    "Traffic",
    "threats",
]

DEFAULT_HORIZONTAL_M = 2000.0
DEFAULT_VERTICAL_M = 300.0  # ICAO Doc 4444: 1000 ft vertical separation below FL290
DEFAULT_LOOKAHEAD_S = 60.0
DEFAULT_MAX_TSLC_S = 10.0

# MAVLink common.xml, ADSB_FLAGS and ADSB_ALTITUDE_TYPE.
FLAG_VALID_COORDS = 1
FLAG_VALID_ALTITUDE = 2
FLAG_VALID_HEADING = 4
FLAG_VALID_VELOCITY = 8
FLAG_VALID_CALLSIGN = 16
FLAG_VALID_SQUAWK = 32
FLAG_SIMULATED = 64
FLAG_VERTICAL_VELOCITY_VALID = 128
ALTITUDE_TYPES: dict[int, Literal["pressure_qnh", "geometric"]] = {0: "pressure_qnh", 1: "geometric"}

_EARTH_R_M = 6_371_008.8  # mean Earth radius (IUGG), as geometry.ground_distance_m
_REQUIRED = ("ICAO_address", "lat", "lon", "altitude_type", "altitude", "heading", "hor_velocity",
             "ver_velocity", "callsign", "emitter_type", "tslc", "flags")


@dataclass(frozen=True, slots=True)
class Traffic:
    """One manned aircraft as an ADS-B receiver reports it (SI units, degrees)."""

    icao_address: int
    callsign: str
    lon: float
    lat: float
    alt_m: float  # above mean sea level, per altitude_type
    altitude_type: Literal["pressure_qnh", "geometric"]
    heading_deg: float  # course over ground, true
    speed_mps: float  # horizontal
    climb_mps: float  # positive up
    emitter_type: int  # MAVLink ADSB_EMITTER_TYPE
    tslc_s: float  # time since the receiver last heard it
    flags: int  # MAVLink ADSB_FLAGS
    squawk: int | None = None

    @property
    def label(self) -> str:
        return self.callsign or f"ICAO {self.icao_address:06X}"

    @property
    def has_position(self) -> bool:
        return bool(self.flags & FLAG_VALID_COORDS)

    @property
    def has_altitude(self) -> bool:
        return bool(self.flags & FLAG_VALID_ALTITUDE)

    @property
    def has_velocity(self) -> bool:
        return bool(self.flags & FLAG_VALID_VELOCITY) and bool(self.flags & FLAG_VALID_HEADING)

    @classmethod
    def from_message(cls, msg: Mapping[str, Any]) -> Traffic:
        """From an ``ADSB_VEHICLE`` message as a dict (pymavlink ``msg.to_dict()`` field names)."""
        missing = [k for k in _REQUIRED if k not in msg]
        if missing:
            raise ValueError(f"ADSB_VEHICLE without {', '.join(missing)}")
        try:
            flags = int(msg["flags"])
            lat = int(msg["lat"]) / 1e7
            lon = int(msg["lon"]) / 1e7
            alt_type = int(msg["altitude_type"])
            raw_sign = msg["callsign"]
            sign = raw_sign.decode("ascii", "replace") if isinstance(raw_sign, (bytes, bytearray)) else str(raw_sign)
            squawk = int(msg["squawk"]) if msg.get("squawk") is not None and flags & FLAG_VALID_SQUAWK else None
            out = cls(
                icao_address=int(msg["ICAO_address"]),
                callsign=sign.replace("\x00", "").strip() if flags & FLAG_VALID_CALLSIGN else "",
                lon=lon, lat=lat,
                alt_m=int(msg["altitude"]) / 1000.0,  # mm
                altitude_type=ALTITUDE_TYPES.get(alt_type, "pressure_qnh"),
                heading_deg=int(msg["heading"]) / 100.0,  # cdeg
                speed_mps=int(msg["hor_velocity"]) / 100.0,  # cm/s
                climb_mps=(int(msg["ver_velocity"]) / 100.0 if flags & FLAG_VERTICAL_VELOCITY_VALID else 0.0),
                emitter_type=int(msg["emitter_type"]),
                tslc_s=float(msg["tslc"]),
                flags=flags,
                squawk=squawk,
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"ADSB_VEHICLE with a field that is not a number: {err}") from None
        if alt_type not in ALTITUDE_TYPES:
            raise ValueError(f"ADSB_VEHICLE {out.icao_address:06X}: unknown altitude_type {alt_type}")
        if out.has_position and not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"ADSB_VEHICLE {out.icao_address:06X}: position {lat}, {lon} out of range")
        return out


@dataclass(frozen=True, slots=True)
class DroneState:
    """One of our drones: position, altitude above mean sea level and ground velocity (true north/east)."""

    name: str
    lon: float
    lat: float
    alt_amsl_m: float
    vel_north_mps: float = 0.0
    vel_east_mps: float = 0.0
    climb_mps: float = 0.0
    icao_address: int | None = None  # its own ADS-B out, if it has one: never a threat to itself


@dataclass(frozen=True, slots=True)
class Alert:
    """An aircraft that threatens a drone, with the geometry of the encounter and the action."""

    drone: str
    traffic: Traffic
    horizontal_m: float  # now
    vertical_m: float  # now, aircraft minus drone (nan when the aircraft's altitude is unknown)
    time_to_conflict_s: float  # until both separations are lost (0 = already lost)
    time_to_closest_s: float  # until the horizontal closest approach (may lie beyond the lookahead)
    closest_horizontal_m: float
    closest_vertical_m: float  # at the horizontal closest approach (nan when unknown)
    action: Literal["hold"]
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """An ADS-B report left out of the assessment, and why."""

    icao_address: int
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class Threats:
    """Alerts (soonest first for each drone) and the reports left out."""

    alerts: tuple[Alert, ...]
    ignored: tuple[Ignored, ...]

    def for_drone(self, name: str) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.drone == name)

    def by_drone(self) -> dict[str, tuple[Alert, ...]]:
        return {name: self.for_drone(name) for name in dict.fromkeys(a.drone for a in self.alerts)}


def _interval_quadratic(a: float, b: float, c: float) -> tuple[float, float] | None:
    """Times where a·t² + b·t + c <= 0, as one interval, or None.

    Here a = |v|², b = 2 r·v: a == 0 only with b == 0 (no relative motion: the distance stays).
    """
    if a <= 1e-12:
        return (-math.inf, math.inf) if c <= 0 else None
    disc = b * b - 4.0 * a * c
    if disc < 0:
        return None
    s = math.sqrt(disc)
    return (-b - s) / (2.0 * a), (-b + s) / (2.0 * a)


def _interval_abs(dz: float, w: float, limit: float) -> tuple[float, float] | None:
    """Times where |dz + w·t| <= limit, or None."""
    if abs(w) <= 1e-9:
        return (-math.inf, math.inf) if abs(dz) <= limit else None
    t1, t2 = (-limit - dz) / w, (limit - dz) / w
    return min(t1, t2), max(t1, t2)


def _grid(lons: np.ndarray, lats: np.ndarray, vn: np.ndarray, ve: np.ndarray,
          epsg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """UTM positions and grid velocities of points moving at (vn, ve) m/s true north/east."""
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(lons, lats)
    # Move each point one second along its velocity on the sphere and take the grid displacement:
    # this turns true north/east into grid axes (convergence and scale) without a convention to get wrong.
    lat1 = lats + np.degrees(vn / _EARTH_R_M)
    lon1 = lons + np.degrees(ve / (_EARTH_R_M * np.cos(np.radians(lats))))
    x1, y1 = fwd.transform(lon1, lat1)
    x, y, x1, y1 = (np.asarray(v, dtype=float) for v in (x, y, x1, y1))
    return x, y, x1 - x, y1 - y


def threats(drones: Sequence[DroneState], traffic: Sequence[Traffic], *,
            horizontal_m: float = DEFAULT_HORIZONTAL_M, vertical_m: float = DEFAULT_VERTICAL_M,
            lookahead_s: float = DEFAULT_LOOKAHEAD_S, max_tslc_s: float = DEFAULT_MAX_TSLC_S,
            epsg: int = UTM_48N) -> Threats:
    """Every (drone, aircraft) pair that loses both separations now or within ``lookahead_s``."""
    for name, v in (("horizontal_m", horizontal_m), ("vertical_m", vertical_m), ("lookahead_s", lookahead_s),
                    ("max_tslc_s", max_tslc_s)):
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v}")
    ignored: list[Ignored] = []
    own = {d.icao_address for d in drones if d.icao_address is not None}
    usable: list[Traffic] = []
    for t in traffic:
        if t.icao_address in own:
            ignored.append(Ignored(t.icao_address, f"{t.label} is one of our drones", f"{t.label} 为本方无人机"))
        elif not t.has_position:
            ignored.append(Ignored(t.icao_address, f"{t.label}: no valid position in the report",
                                   f"{t.label}：报告中无有效位置"))
        elif t.tslc_s > max_tslc_s:
            ignored.append(Ignored(t.icao_address, f"{t.label}: last heard {t.tslc_s:.0f} s ago (stale, more than "
                                                   f"{max_tslc_s:.0f} s)",
                                   f"{t.label}：{t.tslc_s:.0f} 秒前最后收到（超过 {max_tslc_s:.0f} 秒，已过时）"))
        else:
            usable.append(t)
    if not drones or not usable:
        return Threats((), tuple(ignored))

    d_lon = np.array([d.lon for d in drones], dtype=float)
    d_lat = np.array([d.lat for d in drones], dtype=float)
    dx, dy, dvx, dvy = _grid(d_lon, d_lat, np.array([d.vel_north_mps for d in drones], dtype=float),
                             np.array([d.vel_east_mps for d in drones], dtype=float), epsg)
    hdg = np.radians([t.heading_deg for t in usable])
    spd = np.array([t.speed_mps if t.has_velocity else 0.0 for t in usable], dtype=float)
    ax, ay, avx, avy = _grid(np.array([t.lon for t in usable], dtype=float),
                             np.array([t.lat for t in usable], dtype=float), spd * np.cos(hdg), spd * np.sin(hdg), epsg)
    tslc = np.array([t.tslc_s for t in usable], dtype=float)
    ax, ay = ax + avx * tslc, ay + avy * tslc  # where the aircraft is now, not when last heard

    alerts: list[Alert] = []
    for i, d in enumerate(drones):
        for j, t in enumerate(usable):
            rx, ry = float(ax[j] - dx[i]), float(ay[j] - dy[i])
            vx, vy = float(avx[j] - dvx[i]), float(avy[j] - dvy[i])
            horiz = _interval_quadratic(vx * vx + vy * vy, 2.0 * (rx * vx + ry * vy),
                                        rx * rx + ry * ry - horizontal_m ** 2)
            if t.has_altitude:
                climb = t.climb_mps
                dz = t.alt_m + climb * t.tslc_s - d.alt_amsl_m
                w = climb - d.climb_mps
                vert = _interval_abs(dz, w, vertical_m)
            else:
                dz, w = math.nan, 0.0
                vert = (-math.inf, math.inf)
            if horiz is None or vert is None:
                continue
            lo = max(0.0, horiz[0], vert[0])
            hi = min(lookahead_s, horiz[1], vert[1])
            if lo > hi:
                continue
            v2 = vx * vx + vy * vy
            # The closest approach on the straight lines, even beyond the lookahead (it is what comes).
            t_cpa = max(0.0, -(rx * vx + ry * vy) / v2) if v2 > 1e-12 else 0.0
            cpa_h = math.hypot(rx + vx * t_cpa, ry + vy * t_cpa)
            cpa_v = dz + w * t_cpa
            now_h = math.hypot(rx, ry)
            alerts.append(_alert(d, t, now_h, dz, lo, t_cpa, cpa_h, cpa_v))
    alerts.sort(key=lambda a: (a.drone, a.time_to_conflict_s, a.closest_horizontal_m))
    return Threats(tuple(alerts), tuple(ignored))


def _alert(d: DroneState, t: Traffic, now_h: float, dz: float, lo: float, t_cpa: float, cpa_h: float,
           cpa_v: float) -> Alert:
    if math.isnan(dz):
        vert, vert_zh = "altitude unknown", "高度未知"
    else:
        vert, vert_zh = f"{dz:+.0f} m", f"高差 {dz:+.0f} 米"
    when = "now within separation" if lo == 0.0 else f"loses separation in {lo:.0f} s"
    when_zh = "已进入间隔范围" if lo == 0.0 else f"{lo:.0f} 秒后进入间隔范围"
    return Alert(
        drone=d.name, traffic=t, horizontal_m=now_h, vertical_m=dz, time_to_conflict_s=lo,
        time_to_closest_s=t_cpa, closest_horizontal_m=cpa_h, closest_vertical_m=cpa_v, action="hold",
        reason=(f"manned aircraft {t.label} {now_h / 1000:.1f} km away, {vert}: {when}, closest "
                f"{cpa_h:.0f} m in {t_cpa:.0f} s; {d.name} holds"),
        reason_zh=(f"有人驾驶航空器 {t.label} 距离 {now_h / 1000:.1f} 公里，{vert_zh}：{when_zh}，"
                   f"{t_cpa:.0f} 秒后最近 {cpa_h:.0f} 米；{d.name} 悬停避让"),
    )
