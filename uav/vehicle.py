"""One MAVLink vehicle: telemetry snapshots, acknowledged commands, the mission protocol.

    vehicle = Vehicle(link, system_id=1)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(link.run()); tg.create_task(vehicle.run())
        await vehicle.wait_ready(60)
        await vehicle.upload_mission([takeoff(30), waypoint(lon, lat, 30), return_to_launch()])
        await vehicle.set_mode("GUIDED"); await vehicle.arm(); await vehicle.set_mode("AUTO")
        async for t in vehicle.telemetry(): ...

Every command awaits its COMMAND_ACK under a deadline and retries with ``confirmation``
incremented (MAVLink command protocol, https://mavlink.io/en/services/command.html);
a final result other than ACCEPTED raises the matching :mod:`uav.errors` leaf.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import aclosing
from functools import partial
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import mission as missions
from uav.errors import (
    CommandError, CommandTimeout, CommandUnsupported, LinkError, LinkLost, MissionRejected,
    MissionTimeout,
    ModeChangeFailed, VehicleNotReady, WrongMode, command_name, error_for_result,
    mission_result_name,
)
from uav.link import MavLink, Subscription
from uav.mission import MissionItem
from uav.modes import mode_number
from uav.telemetry import Telemetry, update

__all__ = ["Vehicle", "DEFAULT_STREAMS_HZ"]

log = logging.getLogger(__name__)

# Messages requested with MAV_CMD_SET_MESSAGE_INTERVAL on first contact, and their rates:
# ArduPilot sends little more than HEARTBEAT to a client that asks for nothing (FACTS).
DEFAULT_STREAMS_HZ: Final[Mapping[str, float]] = {
    "GLOBAL_POSITION_INT": 4.0, "ATTITUDE": 4.0, "VFR_HUD": 2.0, "SYS_STATUS": 1.0,
    "MISSION_CURRENT": 1.0, "EXTENDED_SYS_STATE": 1.0, "HOME_POSITION": 0.5,
    "EKF_STATUS_REPORT": 2.0, "GPS_RAW_INT": 1.0,
}
# Position stream considered stopped (and re-requested) after this long without one.
STREAM_STALE_S: Final = 5.0
# MAV_COMP_ID_AUTOPILOT1: the flight controller's component id.
AUTOPILOT_COMPONENT: Final = mav.MAV_COMP_ID_AUTOPILOT1
# MAV_CMD_COMPONENT_ARM_DISARM param2 magic that forces a disarm in flight
# (ArduPilot GCS_MAVLink: 21196).
FORCE_DISARM_MAGIC: Final = 21196.0
# SET_POSITION_TARGET_GLOBAL_INT.type_mask: use position only (POSITION_TARGET_TYPEMASK:
# ignore vx vy vz 8|16|32, ax ay az 64|128|256, yaw 1024, yaw rate 2048).
POSITION_ONLY_MASK: Final = 8 | 16 | 32 | 64 | 128 | 256 | 1024 | 2048
# How long to wait for the STATUSTEXT that explains a FAILED/DENIED ack if it was not
# already in (ArduPilot sends it just before the ack).
STATUSTEXT_GRACE_S: Final = 0.3
_MISSION_TYPE: Final = mav.MAV_MISSION_TYPE_MISSION


class Vehicle:
    """A vehicle behind a :class:`MavLink`, addressed by MAVLink system id."""

    def __init__(self, link: MavLink, system_id: int, *, name: str | None = None,
                 vehicle_type: str | None = None, target_component: int = AUTOPILOT_COMPONENT,
                 command_timeout_s: float = 1.5, command_attempts: int = 3,
                 link_lost_s: float = 5.0,
                 streams_hz: Mapping[str, float] = DEFAULT_STREAMS_HZ) -> None:
        if not 1 <= system_id <= 255:
            raise ValueError(f"MAVLink system id must be 1..255, got {system_id}")
        self.link = link
        self.system_id = system_id
        self.name = name or f"sys{system_id}"
        self.target_component = target_component
        self.command_timeout_s = command_timeout_s
        self.command_attempts = command_attempts
        self.link_lost_s = link_lost_s
        self.streams_hz = dict(streams_hz)
        self._declared_type = vehicle_type
        self._state = Telemetry(system_id=system_id, vehicle_type=vehicle_type or "unknown")
        self._listeners: set[asyncio.Queue[Telemetry]] = set()
        self._command_lock = asyncio.Lock()
        self._mission_lock = asyncio.Lock()
        self._need_streams = asyncio.Event()
        self._position_at_s = 0.0

    # ---- telemetry -----------------------------------------------------------------------

    @property
    def state(self) -> Telemetry:
        """The latest telemetry snapshot."""
        return self._state

    @property
    def vehicle_type(self) -> str:
        return self._state.vehicle_type

    def heard_within(self, seconds: float) -> bool:
        """True if a HEARTBEAT came in the last ``seconds``."""
        hb = self._state.heartbeat_at_s
        return hb > 0 and time.monotonic() - hb <= seconds

    async def telemetry(self, *, maxsize: int = 16) -> AsyncIterator[Telemetry]:
        """Snapshots as they change, starting with the current one; a slow reader loses
        the oldest queued snapshots (never blocks the vehicle)."""
        queue: asyncio.Queue[Telemetry] = asyncio.Queue(maxsize=maxsize)
        queue.put_nowait(self._state)
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    async def wait_for(self, predicate: Callable[[Telemetry], bool], timeout_s: float) -> Telemetry:
        """The first snapshot satisfying ``predicate``; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s), aclosing(self.telemetry()) as snapshots:
            async for t in snapshots:
                if predicate(t):
                    return t
        raise AssertionError("unreachable")

    async def wait_ready(self, timeout_s: float = 60.0) -> Telemetry:
        """Wait for heartbeat + valid global position + EKF ok; VehicleNotReady on timeout."""
        try:
            return await self.wait_for(
                lambda t: t.heartbeat_seen and t.position_valid and t.ekf_ok, timeout_s)
        except TimeoutError:
            t = self._state
            raise VehicleNotReady(
                f"{self.name}: not ready after {timeout_s:g} s (heartbeat={t.heartbeat_seen}, "
                f"position={t.position_valid}, ekf_ok={t.ekf_ok}, "
                f"last text={_text(t) or '-'})") from None

    def _publish(self, new: Telemetry) -> None:
        self._state = new
        for queue in tuple(self._listeners):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(new)

    # ---- background work -----------------------------------------------------------------

    async def run(self) -> None:
        """Follow the vehicle's messages and keep its telemetry streams requested; until
        cancelled (or the link closes)."""
        with self.link.subscribe(self.system_id, maxsize=1024) as sub:
            async with asyncio.TaskGroup() as tg:
                streams = tg.create_task(self._keep_streams())
                try:
                    await self._consume(sub)
                finally:
                    streams.cancel()

    async def _consume(self, sub: Subscription) -> None:
        async for msg in sub:
            now_s = time.monotonic()
            old = self._state
            try:
                new = update(old, msg, now_s)
            except Exception:  # a malformed field must not stop telemetry
                log.exception("%s: cannot read %s", self.name, msg.get_type())
                continue
            kind = msg.get_type()
            if kind == "GLOBAL_POSITION_INT":
                self._position_at_s = now_s
            if kind == "HEARTBEAT" and new.heartbeat_at_s == now_s:
                gap_s = now_s - old.heartbeat_at_s
                if not old.heartbeat_seen or gap_s > STREAM_STALE_S:
                    self._need_streams.set()  # first contact, or back after silence/reboot
            if new != old:
                self._publish(new)

    async def _keep_streams(self) -> None:
        while True:
            try:
                async with asyncio.timeout(STREAM_STALE_S):
                    await self._need_streams.wait()
            except TimeoutError:
                stale = time.monotonic() - self._position_at_s > STREAM_STALE_S
                if not (stale and self.heard_within(STREAM_STALE_S)):
                    continue
            self._need_streams.clear()
            await self.request_streams()

    async def request_streams(self) -> None:
        """Ask for each telemetry stream with MAV_CMD_SET_MESSAGE_INTERVAL (errors logged)."""
        for name, rate_hz in self.streams_hz.items():
            msg_id = getattr(mav, f"MAVLINK_MSG_ID_{name}")
            interval_us = 1e6 / rate_hz if rate_hz > 0 else -1  # -1 disables the stream
            try:
                await self.command(mav.MAV_CMD_SET_MESSAGE_INTERVAL, msg_id, interval_us,
                                   attempts=2, what=f"stream {name}")
            except (CommandError, LinkError) as err:
                log.warning("%s: stream request failed: %s", self.name, err)
                if isinstance(err, LinkError):
                    return

    # ---- commands ------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        stats = self.link.stats(self.system_id)
        if stats is None and self.link.endpoint.scheme == "udpin":
            raise LinkLost(f"{self.name}: system {self.system_id} never heard on {self.link.url}")

    def _lost(self) -> bool:
        stats = self.link.stats(self.system_id)
        return stats is None or time.monotonic() - stats.last_heard_s > self.link_lost_s

    async def command(self, command: int, *params: float, what: str | None = None,
                      attempts: int | None = None, timeout_s: float | None = None,
                      use_int: bool = False) -> None:
        """Send COMMAND_LONG (or COMMAND_INT) and await an ACCEPTED COMMAND_ACK.

        Up to 7 params (COMMAND_INT: params 5/6 are lat/lon in degrees, sent as degE7).
        Raises the CommandError leaf for the result, CommandTimeout, or LinkLost.
        """
        if len(params) > 7:
            raise ValueError("a MAVLink command has at most 7 params")
        p = [float(x) for x in params] + [0.0] * (7 - len(params))
        label = what or command_name(command)
        attempts = attempts or self.command_attempts
        per_try_s = timeout_s or self.command_timeout_s
        self._check_reachable()
        async with self._command_lock:
            with self.link.subscribe(self.system_id, types={"COMMAND_ACK", "STATUSTEXT"},
                                     maxsize=64) as sub:
                text: str | None = None
                for confirmation in range(attempts):
                    if use_int:
                        self.link.send(self.link.mav.command_int_encode(
                            self.system_id, self.target_component,
                            mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command, 0, 1,
                            p[0], p[1], p[2], p[3], round(p[4] * 1e7), round(p[5] * 1e7), p[6]),
                            system_id=self.system_id)
                    else:
                        self.link.send(self.link.mav.command_long_encode(
                            self.system_id, self.target_component, command,
                            min(confirmation, 255), *p), system_id=self.system_id)
                    try:
                        ack, text = await self._await_ack(sub, command, per_try_s, text)
                    except TimeoutError:
                        log.debug("%s: %s: no ack (try %d)", self.name, label, confirmation + 1)
                        continue
                    if ack.result in (mav.MAV_RESULT_FAILED, mav.MAV_RESULT_DENIED,
                                      mav.MAV_RESULT_TEMPORARILY_REJECTED) and text is None:
                        text = await _late_text(sub)
                    err = error_for_result(command, ack.result, statustext=text,
                                           what=f"{self.name}: {label}")
                    if err is not None:
                        raise err
                    return
        if self._lost():
            raise LinkLost(f"{self.name}: {label}: vehicle not heard for over "
                           f"{self.link_lost_s:g} s")
        raise CommandTimeout(f"{self.name}: {label}: no COMMAND_ACK after {attempts} tries",
                             command=command)

    async def _await_ack(self, sub: Subscription, command: int, timeout_s: float,
                         text: str | None) -> tuple[Any, str | None]:
        """The final COMMAND_ACK for ``command`` (IN_PROGRESS extends the deadline)."""
        async with asyncio.timeout(timeout_s) as deadline:
            while True:
                msg = await sub.get()
                if msg.get_type() == "STATUSTEXT":
                    text = _clean(msg.text)
                    continue
                if msg.command != command:
                    continue
                if msg.target_system not in (0, self.link.source_system):
                    continue  # another ground station's ack
                if msg.result == mav.MAV_RESULT_IN_PROGRESS:
                    deadline.reschedule(asyncio.get_running_loop().time() + timeout_s)
                    continue
                return msg, text

    async def arm(self) -> None:
        """Arm (MAV_CMD_COMPONENT_ARM_DISARM 1); a refusal raises CommandFailed with the reason."""
        await self.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, what="arm")

    async def disarm(self, *, force: bool = False) -> None:
        """Disarm; ``force=True`` disarms even in flight (the motors stop: it falls)."""
        await self.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 0,
                           FORCE_DISARM_MAGIC if force else 0.0, what="disarm")

    async def set_mode(self, name: str, *, confirm_s: float = 3.0, attempts: int = 3) -> None:
        """MAV_CMD_DO_SET_MODE with the ArduPilot custom mode, confirmed from HEARTBEAT.

        A mode set can be lost (ArduPilot right after boot, FACTS), so an ACCEPTED change
        that the heartbeat does not show within ``confirm_s`` is sent again. Needs ``run()``.
        """
        vtype = self._state.vehicle_type
        if vtype == "unknown":
            raise ModeChangeFailed(f"{self.name}: vehicle type unknown (no heartbeat yet)",
                                   mode=name)
        number = mode_number(vtype, name)
        mode = name.strip().upper()
        for attempt in range(attempts):
            try:
                await self.command(mav.MAV_CMD_DO_SET_MODE, mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                                   number, what=f"set mode {mode}")
            except CommandTimeout:
                raise
            except CommandError as err:
                raise ModeChangeFailed(f"{self.name}: mode {mode} refused: {err}", mode=mode,
                                       statustext=err.statustext) from err
            acked_s = time.monotonic()
            try:
                # A heartbeat sent after the ack shows the mode (the snapshot, so that
                # ``state.mode`` is current when this returns).
                await self.wait_for(lambda t: t.heartbeat_at_s >= acked_s
                                    and t.custom_mode == number, confirm_s)
                return
            except TimeoutError:
                log.warning("%s: mode %s accepted but not shown (try %d)", self.name, mode,
                            attempt + 1)
        raise ModeChangeFailed(f"{self.name}: mode {mode} accepted but never shown in the "
                               f"heartbeat (now {self._state.mode})", mode=mode,
                               statustext=_text(self._state))

    async def takeoff(self, alt_m: float) -> None:
        """MAV_CMD_NAV_TAKEOFF to ``alt_m`` above home (copter: GUIDED and armed)."""
        await self.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, alt_m,
                           what=f"takeoff to {alt_m:g} m")

    async def goto(self, lon_deg: float, lat_deg: float, alt_rel_m: float) -> None:
        """Fly/drive to a point (SET_POSITION_TARGET_GLOBAL_INT; GUIDED only, not acked)."""
        if self._state.mode not in ("GUIDED", "UNKNOWN"):
            raise WrongMode(f"{self.name}: goto needs GUIDED mode (now {self._state.mode})")
        self._check_reachable()
        self.link.send(self.link.mav.set_position_target_global_int_encode(
            0, self.system_id, self.target_component, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
            POSITION_ONLY_MASK, round(lat_deg * 1e7), round(lon_deg * 1e7), alt_rel_m,
            0, 0, 0, 0, 0, 0, 0, 0), system_id=self.system_id)

    async def change_speed(self, speed_mps: float) -> None:
        """MAV_CMD_DO_CHANGE_SPEED (ground speed; throttle unchanged)."""
        await self.command(mav.MAV_CMD_DO_CHANGE_SPEED, 1, speed_mps, -1,
                           what=f"change speed to {speed_mps:g} m/s")

    async def start_mission(self) -> None:
        """MAV_CMD_MISSION_START from the first item."""
        await self.command(mav.MAV_CMD_MISSION_START, 0, 0, what="start mission")

    async def rtl(self) -> None:
        """Return to launch (mode RTL)."""
        await self.set_mode("RTL")

    async def land(self) -> None:
        """Land here (copter mode LAND); boats and rovers cannot."""
        if self._state.vehicle_type not in ("copter", "plane", "unknown"):
            raise CommandUnsupported(f"{self.name}: a {self._state.vehicle_type} cannot land",
                                     command=mav.MAV_CMD_NAV_LAND)
        await self.set_mode("QLAND" if self._state.vehicle_type == "plane" else "LAND")

    async def hold(self) -> None:
        """Stop and hold position (copter LOITER, boat/rover HOLD)."""
        await self.set_mode("LOITER" if self._state.vehicle_type in ("copter", "plane") else "HOLD")

    async def request_message(self, msg_id: int, *, timeout_s: float = 3.0) -> dict[str, Any]:
        """MAV_CMD_REQUEST_MESSAGE; returns the requested message's fields as a dict."""
        with self.link.subscribe(self.system_id, maxsize=256) as sub:
            await self.command(mav.MAV_CMD_REQUEST_MESSAGE, msg_id,
                               what=f"request message {msg_id}")
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        msg = await sub.get()
                        if msg.get_msgId() == msg_id:
                            return msg.to_dict()
            except TimeoutError:
                raise CommandTimeout(f"{self.name}: message {msg_id} accepted but not sent "
                                     f"within {timeout_s:g} s",
                                     command=mav.MAV_CMD_REQUEST_MESSAGE) from None

    # ---- mission protocol (https://mavlink.io/en/services/mission.html) ---------------------

    async def upload_mission(self, items: Sequence[MissionItem], *, timeout_s: float = 30.0,
                             request_timeout_s: float = 1.5) -> None:
        """Upload ``items`` as sequence 1.. after a home placeholder at 0.

        MISSION_COUNT, then each MISSION_REQUEST(_INT) answered by MISSION_ITEM_INT (again if
        re-requested), until MISSION_ACK. MissionRejected for a non-ACCEPTED ack.
        """
        t = self._state
        home = (missions.home_placeholder(t.home_lon_deg, t.home_lat_deg, t.home_alt_amsl_m)
                if t.home_valid and math.isfinite(t.home_alt_amsl_m)
                else missions.home_placeholder())
        plan = [home, *items]
        wire = [missions.encode_item_int(item, seq, target_system=self.system_id,
                                         target_component=self.target_component)
                for seq, item in enumerate(plan)]
        count_msg = self.link.mav.mission_count_encode(
            self.system_id, self.target_component, len(plan), _MISSION_TYPE)
        self._check_reachable()
        async with self._mission_lock:
            with self.link.subscribe(self.system_id, maxsize=256, types={
                    "MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK", "STATUSTEXT"}) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._upload(sub, count_msg, wire, request_timeout_s)
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: mission upload ({len(plan)} items) did "
                                         f"not finish within {timeout_s:g} s") from None
        log.info("%s: mission of %d items uploaded", self.name, len(items))

    async def _upload(self, sub: Subscription, count_msg: Any, wire: list[Any],
                      request_timeout_s: float) -> None:
        self.link.send(count_msg, system_id=self.system_id)
        requested: set[int] = set()
        text: str | None = None
        idle = 0
        while True:
            try:
                async with asyncio.timeout(request_timeout_s):
                    msg = await sub.get()
            except TimeoutError:
                idle += 1
                if self._lost():
                    raise LinkLost(f"{self.name}: lost during mission upload") from None
                if not requested:
                    self.link.send(count_msg, system_id=self.system_id)  # COUNT went missing
                continue
            kind = msg.get_type()
            if kind == "STATUSTEXT":
                text = _clean(msg.text)
                continue
            if getattr(msg, "mission_type", 0) != _MISSION_TYPE:
                continue
            if kind in ("MISSION_REQUEST", "MISSION_REQUEST_INT"):
                if 0 <= msg.seq < len(wire):
                    requested.add(msg.seq)
                    self.link.send(wire[msg.seq], system_id=self.system_id)
                else:
                    log.warning("%s: vehicle asked for item %d of %d", self.name, msg.seq,
                                len(wire))
                continue
            # MISSION_ACK
            if msg.type == mav.MAV_MISSION_ACCEPTED:
                if len(requested) == len(wire):
                    return
                log.debug("%s: early ACCEPTED ack ignored (%d/%d asked)", self.name,
                          len(requested), len(wire))
                continue
            reason = f" ({text})" if text else ""
            raise MissionRejected(f"{self.name}: mission rejected: "
                                  f"{mission_result_name(msg.type)}{reason}", result=msg.type)

    async def download_mission(self, *, timeout_s: float = 30.0,
                               request_timeout_s: float = 1.5) -> list[MissionItem]:
        """Read the mission back (without the home slot 0)."""
        self._check_reachable()
        async with self._mission_lock:
            with self.link.subscribe(self.system_id, maxsize=256, types={
                    "MISSION_COUNT", "MISSION_ITEM_INT", "MISSION_ITEM", "MISSION_ACK"}) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        items = await self._download(sub, request_timeout_s)
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: mission download did not finish within "
                                         f"{timeout_s:g} s") from None
        return items[1:]

    async def _exchange(self, sub: Subscription, request: Any, accept: Callable[[Any], bool],
                        request_timeout_s: float, what: str) -> Any:
        """Send ``request`` until a message satisfying ``accept`` comes (or the link is lost)."""
        while True:
            self.link.send(request, system_id=self.system_id)
            try:
                async with asyncio.timeout(request_timeout_s):
                    while True:
                        msg = await sub.get()
                        if getattr(msg, "mission_type", 0) != _MISSION_TYPE:
                            continue
                        if msg.get_type() == "MISSION_ACK" and msg.type != mav.MAV_MISSION_ACCEPTED:
                            raise MissionRejected(f"{self.name}: {what}: "
                                                  f"{mission_result_name(msg.type)}",
                                                  result=msg.type)
                        if accept(msg):
                            return msg
            except TimeoutError:
                if self._lost():
                    raise LinkLost(f"{self.name}: lost during {what}") from None

    async def _download(self, sub: Subscription, request_timeout_s: float) -> list[MissionItem]:
        tid, tcomp = self.system_id, self.target_component
        count_msg = await self._exchange(
            sub, self.link.mav.mission_request_list_encode(tid, tcomp, _MISSION_TYPE),
            lambda m: m.get_type() == "MISSION_COUNT", request_timeout_s, "mission download")
        items: list[MissionItem] = []
        for seq in range(count_msg.count):
            msg = await self._exchange(
                sub, self.link.mav.mission_request_int_encode(tid, tcomp, seq, _MISSION_TYPE),
                partial(_is_item, seq=seq), request_timeout_s, f"mission item {seq}")
            items.append(missions.decode_item(msg))
        self.link.send(self.link.mav.mission_ack_encode(
            tid, tcomp, mav.MAV_MISSION_ACCEPTED, _MISSION_TYPE), system_id=self.system_id)
        return items

    async def clear_mission(self, *, timeout_s: float = 10.0,
                            request_timeout_s: float = 1.5) -> None:
        """MISSION_CLEAR_ALL, awaiting an ACCEPTED MISSION_ACK."""
        self._check_reachable()
        async with self._mission_lock:
            with self.link.subscribe(self.system_id, types={"MISSION_ACK"}, maxsize=16) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._exchange(
                            sub, self.link.mav.mission_clear_all_encode(
                                self.system_id, self.target_component, _MISSION_TYPE),
                            lambda m: m.get_type() == "MISSION_ACK", request_timeout_s,
                            "mission clear")
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: mission clear not acknowledged within "
                                         f"{timeout_s:g} s") from None


def _is_item(msg: Any, *, seq: int) -> bool:
    return msg.get_type() in ("MISSION_ITEM_INT", "MISSION_ITEM") and msg.seq == seq


def _clean(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).rstrip("\x00").strip()


def _text(t: Telemetry) -> str | None:
    last = t.last_statustext()
    return last.text if last else None


async def _late_text(sub: Subscription) -> str | None:
    """A STATUSTEXT arriving just after the ack, if any."""
    try:
        async with asyncio.timeout(STATUSTEXT_GRACE_S):
            while True:
                msg = await sub.get()
                if msg.get_type() == "STATUSTEXT":
                    return _clean(msg.text)
    except TimeoutError:
        return None

