"""On-board logs: list them and download one over MAVLink (ground-station side).

    entries = await vehicle.log_entries()                       # LOG_REQUEST_LIST
    await vehicle.download_log(entries[-1].id, path, progress=lambda got, size: ...)

Protocol (https://mavlink.io/en/services/ftp.html is the newer way; this is the LOG_*
message set every ArduPilot speaks): LOG_REQUEST_LIST → one LOG_ENTRY per log;
LOG_REQUEST_DATA(id, ofs, count) → the vehicle streams LOG_DATA of up to 90 bytes for the
whole range; LOG_REQUEST_END lets it resume normal logging.

ArduPilot's side (``libraries/AP_Logger/AP_Logger_MAVLinkLogTransfer.cpp``) shapes the
client: every log request is ignored while armed (once: "Disarm for log download"); a
LOG_REQUEST_DATA that arrives while it is still streaming a range is silently dropped; a
range ends with a short LOG_DATA (fewer than 90 bytes) or when its count is sent, and a
request at or past the end gets one LOG_DATA with count 0. Nothing is acknowledged, and
lost LOG_DATA are never re-sent unasked. So the download asks for large windows, tracks
the byte ranges received (:class:`ByteRanges`), and when the stream goes quiet asks again
for the gaps.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from uav.errors import LinkLost, LogDownloadRefused, LogNotFound, LogTimeout
from uav.link import MavLink, Subscription

__all__ = ["LogEntry", "Logs", "ByteRanges", "plan_requests", "log_entry_from_wire",
           "LOG_DATA_BYTES", "LogProgress"]

log = logging.getLogger(__name__)

# LOG_DATA.data is uint8_t[90] (common.xml).
LOG_DATA_BYTES: Final = 90
# Window asked for in one LOG_REQUEST_DATA: ArduPilot streams any count (MAVProxy asks for
# 0xFFFFFFFF); a bounded window keeps one lost tail short to recover.
WINDOW_BYTES: Final = 512 * LOG_DATA_BYTES
# Gap requests sent back to back in one round (ArduPilot finishes a one-packet range at
# once, so the next request is not dropped as "download in progress").
GAP_REQUESTS_PER_ROUND: Final = 16
# Quiet time that ends a round: ArduPilot SITL sends 40 LOG_DATA per logger pass, a radio
# at least 10 per pass (AP_Logger handle_log_sending num_sends), passes every few ms.
IDLE_S: Final = 0.4
# Rounds in a row without one new byte before giving up.
STALL_ROUNDS: Final = 8
# LOG_REQUEST_LIST end: "0xffff for last log" (common.xml).
LIST_ALL: Final = 0xFFFF
# The STATUSTEXT ArduPilot sends once when a log request comes in while armed.
ARMED_TEXT: Final = "Disarm for log download"

LogProgress = Callable[[int, int], object]  # (bytes received, size)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One LOG_ENTRY: a log on the vehicle (ids run 1..num_logs, 1 the oldest)."""

    id: int
    num_logs: int
    last_log_num: int
    time_utc: datetime | None  # None when the vehicle had no UTC time (0)
    size_bytes: int


def log_entry_from_wire(msg: Any) -> LogEntry:
    """LOG_ENTRY → LogEntry."""
    when = datetime.fromtimestamp(msg.time_utc, UTC) if msg.time_utc else None
    return LogEntry(id=int(msg.id), num_logs=int(msg.num_logs),
                    last_log_num=int(msg.last_log_num), time_utc=when,
                    size_bytes=int(msg.size))


class ByteRanges:
    """Half-open byte ranges [start, end) received so far, kept sorted and merged.

    >>> r = ByteRanges(); r.add(0, 90); r.add(180, 270); r.missing(300)
    [(90, 180), (270, 300)]
    """

    __slots__ = ("_starts", "_ends")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> int:
        """Mark [start, end) received; returns how many bytes were new."""
        if end <= start:
            return 0
        before = self.covered
        i = bisect.bisect_left(self._ends, start)  # first range that ends at/after start
        j = bisect.bisect_right(self._starts, end)  # ranges starting after end stay
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]
        return self.covered - before

    @property
    def covered(self) -> int:
        """Bytes received."""
        return sum(e - s for s, e in zip(self._starts, self._ends))

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends))

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The gaps [start, end) in [0, size)."""
        gaps: list[tuple[int, int]] = []
        at = 0
        for s, e in zip(self._starts, self._ends):
            if s >= size:
                break
            if s > at:
                gaps.append((at, s))
            at = max(at, e)
        if at < size:
            gaps.append((at, size))
        return gaps

    def complete(self, size: int) -> bool:
        return not self.missing(size)


def plan_requests(ranges: ByteRanges, size: int, *, window_bytes: int = WINDOW_BYTES,
                  max_requests: int = GAP_REQUESTS_PER_ROUND) -> list[tuple[int, int]]:
    """The (ofs, count) LOG_REQUEST_DATA to send next: each gap, cut into windows.

    >>> r = ByteRanges(); r.add(90, 180); plan_requests(r, 400, window_bytes=100)
    [(0, 90), (180, 100), (280, 100), (380, 20)]
    """
    if window_bytes <= 0 or max_requests <= 0:
        raise ValueError("window_bytes and max_requests must be positive")
    out: list[tuple[int, int]] = []
    for start, end in ranges.missing(size):
        while start < end and len(out) < max_requests:
            count = min(end - start, window_bytes)
            out.append((start, count))
            start += count
        if len(out) >= max_requests:
            break
    return out


class Logs:
    """The log protocol with one vehicle."""

    def __init__(self, link: MavLink, system_id: int, target_component: int, *, name: str,
                 lost: Callable[[], bool], armed: Callable[[], bool]) -> None:
        self.link = link
        self.system_id = system_id
        self.target_component = target_component
        self.name = name
        self._lost = lost
        self._armed = armed
        self._lock = asyncio.Lock()  # one transfer at a time: the vehicle serves one

    def _check(self, what: str) -> None:
        if self._armed():
            raise LogDownloadRefused(f"{self.name}: {what}: the vehicle is armed "
                                     f"(ArduPilot serves logs only when disarmed)")
        if self._lost():
            raise LinkLost(f"{self.name}: {what}: vehicle not heard")

    def _send_list(self, start: int, end: int) -> None:
        self.link.send(self.link.mav.log_request_list_encode(
            self.system_id, self.target_component, start, end), system_id=self.system_id)

    async def entries(self, *, idle_s: float = 0.5, attempts: int = 4) -> list[LogEntry]:
        """Every log on the vehicle, oldest first ([] when it has none)."""
        self._check("list logs")
        async with self._lock:
            with self.link.subscribe(self.system_id, types={"LOG_ENTRY", "STATUSTEXT"},
                                     maxsize=1024) as sub:
                found: dict[int, LogEntry] = {}
                last: int | None = None
                wanted = [(0, LIST_ALL)]
                for attempt in range(attempts):
                    for start, end in wanted:
                        self._send_list(start, end)
                    got_any = False
                    while True:
                        msg = await _next(sub, idle_s)
                        if msg is None:
                            break
                        if msg.get_type() == "STATUSTEXT":
                            _raise_if_armed(msg, self.name)
                            continue
                        entry = log_entry_from_wire(msg)
                        got_any = True
                        if entry.num_logs == 0:
                            return []  # id 0, num_logs 0: no logs at all
                        if entry.id >= 1:
                            found[entry.id] = entry
                        last = entry.last_log_num
                        if last and all(i in found for i in range(1, last + 1)):
                            return [found[i] for i in range(1, last + 1)]
                    if got_any and last:
                        wanted = [(i, i) for i in range(1, last + 1) if i not in found][:32]
                    log.debug("%s: log list incomplete (try %d, %d entries)", self.name,
                              attempt + 1, len(found))
        if self._lost():
            raise LinkLost(f"{self.name}: list logs: vehicle not heard")
        raise LogTimeout(f"{self.name}: log list incomplete after {attempts} tries "
                         f"({len(found)} of {last or '?'} entries)")

    async def download(self, log_id: int, dest: Path, *, size_bytes: int | None = None,
                       progress: LogProgress | None = None, window_bytes: int = WINDOW_BYTES,
                       idle_s: float = IDLE_S, stall_rounds: int = STALL_ROUNDS,
                       timeout_s: float = 600.0) -> Path:
        """Download log ``log_id`` into ``dest`` (written as ``dest``.part, renamed when
        whole); returns ``dest``. The size comes from the log list unless given."""
        dest = Path(dest)
        if size_bytes is None:
            entries = {e.id: e for e in await self.entries()}
            if log_id not in entries:
                raise LogNotFound(f"{self.name}: no log {log_id} on the vehicle "
                                  f"(has {sorted(entries) or 'none'})")
            size_bytes = entries[log_id].size_bytes
        self._check(f"download log {log_id}")
        part = dest.with_name(dest.name + ".part")
        ranges = ByteRanges()
        try:
            async with self._lock, asyncio.timeout(timeout_s):
                with self.link.subscribe(self.system_id, types={"LOG_DATA", "STATUSTEXT"},
                                         maxsize=4096) as sub, part.open("wb") as out:
                    out.truncate(size_bytes)
                    await self._fetch(sub, out, log_id, size_bytes, ranges, progress,
                                      window_bytes, idle_s, stall_rounds)
        except TimeoutError:
            raise LogTimeout(f"{self.name}: log {log_id}: {ranges.covered} of {size_bytes} "
                             f"bytes after {timeout_s:g} s") from None
        finally:
            self.end()
        # Verify before the log takes its name: every byte range and the file's size.
        if part.stat().st_size != size_bytes or not ranges.complete(size_bytes):
            raise LogTimeout(f"{self.name}: log {log_id}: {ranges.covered} of {size_bytes} "
                             f"bytes, file {part.stat().st_size} bytes")
        os.replace(part, dest)
        log.info("%s: log %d downloaded (%d bytes) to %s", self.name, log_id, size_bytes, dest)
        return dest

    async def _fetch(self, sub: Subscription, out: Any, log_id: int, size: int,
                     ranges: ByteRanges, progress: LogProgress | None, window_bytes: int,
                     idle_s: float, stall_rounds: int) -> None:
        stalls = 0
        beyond = 0
        while not ranges.complete(size):
            if self._lost():
                raise LinkLost(f"{self.name}: log {log_id}: vehicle not heard "
                               f"({ranges.covered} of {size} bytes)")
            requests = plan_requests(ranges, size, window_bytes=window_bytes)
            for ofs, count in requests:
                self.link.send(self.link.mav.log_request_data_encode(
                    self.system_id, self.target_component, log_id, ofs, count),
                    system_id=self.system_id)
            wanted = ByteRanges()
            for ofs, count in requests:
                wanted.add(ofs, ofs + count)
            new_bytes = 0
            while True:
                msg = await _next(sub, idle_s)
                if msg is None:
                    break  # quiet: ask for what is still missing
                if msg.get_type() == "STATUSTEXT":
                    _raise_if_armed(msg, self.name)
                    continue
                if msg.id != log_id:
                    continue
                count = min(int(msg.count), LOG_DATA_BYTES)
                end = min(msg.ofs + count, size)
                if end < msg.ofs + count:
                    beyond += 1
                if end > msg.ofs:
                    added = ranges.add(msg.ofs, end)
                    if added:
                        out.seek(msg.ofs)
                        out.write(bytes(msg.data[:end - msg.ofs]))
                        new_bytes += added
                        if progress is not None:
                            progress(ranges.covered, size)
                if ranges.complete(size):
                    break
                if all(_covers(ranges, s, e) for s, e in wanted.ranges()):
                    break  # this round's ranges are in: plan the next without waiting
            stalls = 0 if new_bytes else stalls + 1
            if stalls >= stall_rounds:
                raise LogTimeout(f"{self.name}: log {log_id}: no data for {stalls} requests "
                                 f"({ranges.covered} of {size} bytes)")
        if beyond:
            log.warning("%s: log %d: %d LOG_DATA reached past the listed size %d", self.name,
                        log_id, beyond, size)

    def end(self) -> None:
        """LOG_REQUEST_END: the vehicle stops sending and resumes normal logging."""
        try:
            self.link.send(self.link.mav.log_request_end_encode(
                self.system_id, self.target_component), system_id=self.system_id)
        except Exception as err:  # a closed link at shutdown: nothing left to stop
            log.debug("%s: LOG_REQUEST_END not sent: %s", self.name, err)

    async def erase(self) -> None:
        """LOG_ERASE: delete every log on the vehicle (not acknowledged by ArduPilot)."""
        self._check("erase logs")
        self.link.send(self.link.mav.log_erase_encode(self.system_id, self.target_component),
                       system_id=self.system_id)


def _covers(ranges: ByteRanges, start: int, end: int) -> bool:
    """True when [start, end) is wholly received."""
    return all(e <= start for _s, e in ranges.missing(end))


def _raise_if_armed(msg: Any, name: str) -> None:
    text = msg.text.decode("utf-8", "replace") if isinstance(msg.text, bytes) else str(msg.text)
    if ARMED_TEXT.lower() in text.lower():
        raise LogDownloadRefused(f"{name}: the vehicle says {text.strip(chr(0)).strip()!r}")


async def _next(sub: Subscription, idle_s: float) -> Any | None:
    """The next message, or None after ``idle_s`` of quiet."""
    try:
        async with asyncio.timeout(idle_s):
            return await sub.get()
    except TimeoutError:
        return None
