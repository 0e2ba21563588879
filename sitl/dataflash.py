"""The simulated vehicle's on-board logs and their download over MAVLink (vehicle side).

A new log starts at each arming and ends at disarming (ArduPilot with LOG_DISARMED 0). Its
content is NOT ArduPilot DataFlash: it is a plain text record of the flight, a header line
then one CSV line per 0.1 s of sim time (10 Hz)::

    # Yingji simulated flight log; vehicle copter-1 sysid 1; started 2026-...Z
    t_s,lat_deg,lon_deg,alt_amsl_m,alt_rel_m,mode,armed,battery_v
    12.300,29.6200000,106.5200000,260.00,0.00,GUIDED,1,16.48

The transfer follows ArduPilot's ``AP_Logger_MAVLinkLogTransfer.cpp``:

- every log message is ignored while armed; the first one sends "Disarm for log download"
  (ERROR) and the warning is re-armed by the next request made while disarmed;
- LOG_REQUEST_LIST(start, end) → one LOG_ENTRY per log from max(start, 1) to
  min(end, num_logs) (ids 1.. oldest first), or a single all-zero entry without logs;
- LOG_REQUEST_DATA(id, ofs, count) → LOG_DATA of up to 90 bytes from ofs until count is
  sent or the log ends (a short packet, or one with count 0 when ofs is at/after the end);
  a request arriving while a range is still being sent is dropped silently; an unknown id
  cancels the transfer;
- LOG_REQUEST_END stops sending; LOG_ERASE deletes every log;
- sending pauses while the ground station's heartbeat is older than 3 s, and at most 40
  packets go out per pass ("assume USB speeds in SITL": num_sends 40).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

__all__ = ["SimLogs", "SAMPLE_PERIOD_S"]

log = logging.getLogger(__name__)

SAMPLE_PERIOD_S: Final = 0.1  # 10 Hz position samples, sim time
LOG_DATA_BYTES: Final = 90  # LOG_DATA.data uint8_t[90]
SENDS_PER_PASS: Final = 40  # AP_Logger handle_log_sending: num_sends = 40 in SITL
HEARTBEAT_GRACE_S: Final = 3.0  # "give a heartbeat a chance": no sending after 3 s silence
MAX_LOGS: Final = 500  # LOG_MAX_FILES default: the oldest are removed beyond it
_COLUMNS: Final = "t_s,lat_deg,lon_deg,alt_amsl_m,alt_rel_m,mode,armed,battery_v\n"


@dataclass(slots=True)
class _Log:
    time_utc: int  # seconds since 1970 at the log's start
    data: bytearray = field(default_factory=bytearray)


class SimLogs:
    """Per-flight logs of one simulated vehicle and the LOG_* protocol."""

    def __init__(self, *, name: str, system_id: int,
                 utc_now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.name = name
        self.system_id = system_id
        self.logs: list[_Log] = []
        self.ignored_armed = 0
        self._utc_now = utc_now
        self._writing: _Log | None = None
        self._next_sample_s = 0.0
        self._warned_armed = False
        # transfer state: "idle", "listing" or "sending"
        self._activity = "idle"
        self._list_next = self._list_last = 0
        self._data_id = 0
        self._data_ofs = 0
        self._data_remaining = 0

    # ---- recording ----------------------------------------------------------------------

    def record(self, t_s: float, *, armed: bool, lat: float, lon: float, alt_amsl_m: float,
               alt_rel_m: float, mode: str, battery_v: float) -> None:
        """Called every sim step: opens a log at arming, samples at 10 Hz, closes at disarm."""
        if not armed:
            if self._writing is not None:
                self._writing = None
                log.info("%s: log %d closed (%d bytes)", self.name, len(self.logs),
                         len(self.logs[-1].data))
            return
        if self._writing is None:
            now = self._utc_now()
            self._writing = _Log(int(now.timestamp()))
            self._writing.data += (f"# Yingji simulated flight log; vehicle {self.name} sysid "
                                   f"{self.system_id}; started {now.isoformat()}\n"
                                   + _COLUMNS).encode()
            self.logs.append(self._writing)
            if len(self.logs) > MAX_LOGS:
                del self.logs[0]
            self._next_sample_s = t_s
            log.info("%s: log %d started", self.name, len(self.logs))
        if t_s + 1e-9 >= self._next_sample_s:
            self._writing.data += (f"{t_s:.3f},{lat:.7f},{lon:.7f},{alt_amsl_m:.2f},"
                                   f"{alt_rel_m:.2f},{mode},1,{battery_v:.2f}\n").encode()
            self._next_sample_s += SAMPLE_PERIOD_S
            if self._next_sample_s < t_s:
                self._next_sample_s = t_s + SAMPLE_PERIOD_S  # after a stall: no burst

    # ---- protocol -----------------------------------------------------------------------

    def handle(self, msg: Any, *, armed: bool, gcs_heard_s_ago: float | None) -> list[Any]:
        """One LOG_* message from the ground station; returns messages to send now (like
        ArduPilot, a request starts sending at once: a one-packet range is done before the
        next request arrives)."""
        if armed:
            self.ignored_armed += 1
            if not self._warned_armed:
                self._warned_armed = True
                return [mav.MAVLink_statustext_message(mav.MAV_SEVERITY_ERROR,
                                                       b"Disarm for log download")]
            return []
        self._warned_armed = False
        kind = msg.get_type()
        if kind == "LOG_REQUEST_LIST":
            if self._activity != "idle":
                return [mav.MAVLink_statustext_message(mav.MAV_SEVERITY_INFO,
                                                       b"Log download in progress")]
            n = len(self.logs)
            if n == 0:
                self._list_next = self._list_last = 0
            else:
                self._list_next = max(int(msg.start), 1)
                self._list_last = min(int(msg.end), n)
            self._activity = "listing"
        elif kind == "LOG_REQUEST_DATA":
            if self._activity != "idle":
                return []  # "silently dropping any repeated attempts" while sending
            if not 1 <= msg.id <= len(self.logs):
                self._activity = "idle"  # request for an invalid log cancels
                return []
            size = len(self.logs[msg.id - 1].data)
            self._data_id = int(msg.id)
            self._data_ofs = int(msg.ofs)
            self._data_remaining = min(max(size - self._data_ofs, 0), int(msg.count))
            self._activity = "sending"
        elif kind == "LOG_REQUEST_END":
            self._activity = "idle"
        elif kind == "LOG_ERASE":
            self.logs.clear()
            self._writing = None
            self._activity = "idle"
        return self.pump(armed=armed, gcs_heard_s_ago=gcs_heard_s_ago)

    def pump(self, *, armed: bool, gcs_heard_s_ago: float | None) -> list[Any]:
        """One logger pass: the LOG_ENTRY / LOG_DATA due now (none while armed)."""
        if self._activity == "idle" or armed:
            return []
        if gcs_heard_s_ago is None or gcs_heard_s_ago > HEARTBEAT_GRACE_S:
            return []
        out: list[Any] = []
        if self._activity == "listing":
            while len(out) < SENDS_PER_PASS and self._activity == "listing":
                out.append(self._entry())
            return out
        while len(out) < SENDS_PER_PASS and self._activity == "sending":
            out.append(self._data())
        return out

    def _entry(self) -> Any:
        n, i = len(self.logs), self._list_next
        size, when = (len(self.logs[i - 1].data), self.logs[i - 1].time_utc) if i else (0, 0)
        msg = mav.MAVLink_log_entry_message(i, n, self._list_last, when, size)
        if self._list_next >= self._list_last:
            self._activity = "idle"
        else:
            self._list_next += 1
        return msg

    def _data(self) -> Any:
        data = self.logs[self._data_id - 1].data
        length = min(self._data_remaining, LOG_DATA_BYTES)
        chunk = bytes(data[self._data_ofs:self._data_ofs + length])
        msg = mav.MAVLink_log_data_message(self._data_id, self._data_ofs, len(chunk),
                                           list(chunk.ljust(LOG_DATA_BYTES, b"\x00")))
        self._data_ofs += len(chunk)
        self._data_remaining -= len(chunk)
        if len(chunk) < LOG_DATA_BYTES or self._data_remaining == 0:
            self._activity = "idle"
        return msg
