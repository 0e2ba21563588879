"""Manned traffic the autopilot hears: MAVLink ``ADSB_VEHICLE`` as plain data.

An ArduPilot vehicle with an ADS-B receiver (``ADSB_TYPE``, libraries/AP_ADSB) forwards every
aircraft it tracks to the ground station as ``ADSB_VEHICLE`` (common.xml, id 246), one aircraft
per message and a full list at most once per second (AP_ADSB.cpp ``send_adsb_vehicle``), when the
ground station asks for the message: Copter's ``SRx_ADSB`` stream rate defaults to 0
(GCS_MAVLink/GCS_MAVLink_Parameters.cpp ``AP_MAV_DEFAULT_STREAM_RATE_ADSB``).

    report = report_from_message(msg, received_at_s=time.monotonic())
    store.observe(report); store.current(now_s)          # latest per ICAO address, fresh only
    if gate.due(report.icao_address, now_s): emit(report.to_dict())

Fields keep the units of their names; a value whose ``flags`` bit says it is not valid is NaN
(``None`` in :meth:`AdsbReport.to_dict`), a callsign or squawk without its bit is empty/None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

__all__ = [
    "ADSB_EVENT_PERIOD_S", "ADSB_KEEP_S", "ALTITUDE_TYPES", "AdsbGate", "AdsbReport", "AdsbStore",
    "report_from_message",
]

# Reports not refreshed for this long are forgotten (monotonic receive time). ArduPilot itself
# drops an aircraft after 5 s without an update (AP_ADSB.cpp VEHICLE_TIMEOUT_MS); the ground keeps
# it longer so that a dispatcher sees what was last heard while the link or the receiver is patchy.
ADSB_KEEP_S: Final = 60.0
# At most one ``vehicle.adsb`` event per aircraft and vehicle in this period: ArduPilot's own
# forwarding cycle (a full list at most once per second, AP_ADSB.cpp).
ADSB_EVENT_PERIOD_S: Final = 1.0
# ADSB_ALTITUDE_TYPE (common.xml): 0 pressure altitude (QNH), 1 GNSS geometric altitude.
ALTITUDE_TYPES: Final = {mav.ADSB_ALTITUDE_TYPE_PRESSURE_QNH: "pressure_qnh",
                         mav.ADSB_ALTITUDE_TYPE_GEOMETRIC: "geometric"}
_NAN: Final = math.nan


@dataclass(frozen=True, slots=True)
class AdsbReport:
    """One aircraft as the vehicle's ADS-B receiver reports it (SI units, degrees)."""

    icao_address: int
    callsign: str  # "" when not valid
    lon_deg: float
    lat_deg: float
    alt_m: float  # above mean sea level, per altitude_type
    altitude_type: str  # "pressure_qnh" or "geometric"
    heading_deg: float  # course over ground, true
    speed_mps: float  # horizontal
    climb_mps: float  # positive up
    emitter_type: int  # ADSB_EMITTER_TYPE
    tslc_s: float  # seconds since the receiver last heard the aircraft
    flags: int  # ADSB_FLAGS
    squawk: int | None
    received_at_s: float  # time.monotonic() when the ground station received the report

    @property
    def icao_hex(self) -> str:
        return f"{self.icao_address:06X}"

    @property
    def label(self) -> str:
        return self.callsign or f"ICAO {self.icao_hex}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN → None), without the receive time: it means nothing off this host."""
        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "icao_address": self.icao_address, "icao": self.icao_hex, "callsign": self.callsign,
            "lon": num(self.lon_deg), "lat": num(self.lat_deg), "alt_m": num(self.alt_m),
            "altitude_type": self.altitude_type, "heading_deg": num(self.heading_deg),
            "speed_mps": num(self.speed_mps), "climb_mps": num(self.climb_mps),
            "emitter_type": self.emitter_type, "tslc_s": self.tslc_s, "flags": self.flags,
            "squawk": self.squawk,
        }


def report_from_message(msg: Any, received_at_s: float) -> AdsbReport:
    """An ``ADSB_VEHICLE`` message (pymavlink) as a report; ValueError naming the bad field."""
    flags = int(msg.flags)
    icao = int(msg.ICAO_address)
    alt_type = int(msg.altitude_type)
    if alt_type not in ALTITUDE_TYPES:
        raise ValueError(f"ADSB_VEHICLE {icao:06X}: unknown altitude_type {alt_type}")
    lat, lon = msg.lat / 1e7, msg.lon / 1e7
    if flags & mav.ADSB_FLAGS_VALID_COORDS:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"ADSB_VEHICLE {icao:06X}: position lat {lat}, lon {lon} out of range")
    else:
        lat = lon = _NAN
    heading_deg = msg.heading / 100.0 if flags & mav.ADSB_FLAGS_VALID_HEADING else _NAN  # cdeg
    if heading_deg >= 360.0:  # NaN compares false: only a valid, impossible heading is refused
        raise ValueError(f"ADSB_VEHICLE {icao:06X}: heading {heading_deg} deg out of range")
    sign = msg.callsign
    if isinstance(sign, (bytes, bytearray)):
        sign = bytes(sign).decode("ascii", "replace")
    return AdsbReport(
        icao_address=icao,
        callsign=str(sign).replace("\x00", "").strip() if flags & mav.ADSB_FLAGS_VALID_CALLSIGN else "",
        lon_deg=lon, lat_deg=lat,
        alt_m=msg.altitude / 1000.0 if flags & mav.ADSB_FLAGS_VALID_ALTITUDE else _NAN,  # mm
        altitude_type=ALTITUDE_TYPES[alt_type],
        heading_deg=heading_deg,
        speed_mps=msg.hor_velocity / 100.0 if flags & mav.ADSB_FLAGS_VALID_VELOCITY else _NAN,  # cm/s
        climb_mps=(msg.ver_velocity / 100.0 if flags & mav.ADSB_FLAGS_VERTICAL_VELOCITY_VALID
                   else _NAN),  # cm/s, positive up
        emitter_type=int(msg.emitter_type),
        tslc_s=float(msg.tslc),
        flags=flags,
        squawk=int(msg.squawk) if flags & mav.ADSB_FLAGS_VALID_SQUAWK else None,
        received_at_s=received_at_s,
    )


class AdsbStore:
    """The latest report per ICAO address; reports older than ``keep_s`` are forgotten."""

    def __init__(self, keep_s: float = ADSB_KEEP_S) -> None:
        if not keep_s > 0:
            raise ValueError(f"keep_s must be positive, got {keep_s}")
        self.keep_s = keep_s
        self._latest: dict[int, AdsbReport] = {}

    def observe(self, report: AdsbReport) -> None:
        self._latest[report.icao_address] = report

    def current(self, now_s: float) -> list[AdsbReport]:
        """Reports received within ``keep_s`` of ``now_s``, most recently received first."""
        self._latest = {icao: r for icao, r in self._latest.items()
                        if now_s - r.received_at_s <= self.keep_s}
        return sorted(self._latest.values(), key=lambda r: r.received_at_s, reverse=True)

    def forget(self, icao_address: int) -> None:
        self._latest.pop(icao_address, None)


class AdsbGate:
    """At most one pass per aircraft per ``period_s`` (monotonic seconds)."""

    def __init__(self, period_s: float = ADSB_EVENT_PERIOD_S, *, keep_s: float = ADSB_KEEP_S) -> None:
        self.period_s = period_s
        self.keep_s = keep_s
        self._last: dict[int, float] = {}

    def due(self, icao_address: int, now_s: float) -> bool:
        """True (and remembered) when this aircraft last passed ``period_s`` or more ago."""
        last = self._last.get(icao_address)
        if last is not None and now_s - last < self.period_s:
            return False
        if len(self._last) > 256:  # a busy sky: forget aircraft not passed for keep_s
            self._last = {k: t for k, t in self._last.items() if now_s - t <= self.keep_s}
        self._last[icao_address] = now_s
        return True
