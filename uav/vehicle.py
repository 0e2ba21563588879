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
import dataclasses
import logging
import math
import time
from contextlib import aclosing
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import mission as missions
from uav import terrain as terrain_server
from uav import transfer
from uav.adsb import AdsbReport, AdsbStore, report_from_message
from uav.errors import (
    CommandDenied, CommandError, CommandTimeout, CommandUnsupported, LinkError, LinkLost,
    ModeChangeFailed, VehicleNotReady, WrongMode, command_name, error_for_result,
)
from uav.fence import Fence, fence_from_items, fence_items
from uav.link import LinkQuality, MavLink, Subscription
from uav.camera import Camera, CapturedImage, VideoStream
from uav.logs import LogEntry, LogProgress, Logs
from uav.mission import MissionItem
from uav.params import Params, ParamValue, ProgressCallback
from uav.rally import RallyPoint, rally_from_items, rally_items
from uav.commands import CommandsMixin
from uav.modes import mode_number
from uav.telemetry import Telemetry, update

__all__ = ["Vehicle", "DEFAULT_STREAMS_HZ"]

log = logging.getLogger(__name__)

# Messages requested with MAV_CMD_SET_MESSAGE_INTERVAL on first contact, and their rates:
# ArduPilot sends little more than HEARTBEAT to a client that asks for nothing (FACTS).
DEFAULT_STREAMS_HZ: Final[Mapping[str, float]] = {
    "GLOBAL_POSITION_INT": 4.0, "ATTITUDE": 4.0, "VFR_HUD": 2.0, "SYS_STATUS": 1.0,
    "MISSION_CURRENT": 1.0, "EXTENDED_SYS_STATE": 1.0, "HOME_POSITION": 0.5,
    "EKF_STATUS_REPORT": 2.0, "GPS_RAW_INT": 1.0, "WIND": 0.5,
    # Manned traffic from the vehicle's ADS-B receiver (uav.adsb): one aircraft per message, so
    # 5 Hz keeps up to five aircraft at ArduPilot's own once-a-second cycle (AP_ADSB.cpp); 5 is
    # Plane's default SRx_ADSB, Copter's is 0, so nothing comes unasked (GCS_MAVLink_Parameters.cpp
    # AP_MAV_DEFAULT_STREAM_RATE_ADSB). A vehicle without a receiver sends none.
    "ADSB_VEHICLE": 5.0,
}
# Position stream considered stopped (and re-requested) after this long without one.
STREAM_STALE_S: Final = 5.0
# After an accepted reboot: a heartbeat gap longer than this (1.5 heartbeat periods at the
# MAVLink 1 Hz heartbeat rate) is the reboot; one not seen within REBOOT_EXPECTED_S is
# forgotten (a flight controller reboots in seconds).
REBOOT_GAP_S: Final = 1.5
REBOOT_EXPECTED_S: Final = 60.0
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
# Longest wait for the final COMMAND_ACK after an IN_PROGRESS one (calibrations and the
# like run for tens of seconds; MAVLink leaves the timeout to the command).
IN_PROGRESS_TIMEOUT_S: Final = 60.0


class Vehicle(CommandsMixin):
    """A vehicle behind a :class:`MavLink`, addressed by MAVLink system id."""

    def __init__(self, link: MavLink, system_id: int, *, name: str | None = None,
                 vehicle_type: str | None = None, target_component: int = AUTOPILOT_COMPONENT,
                 command_timeout_s: float = 1.5, command_attempts: int = 3,
                 link_lost_s: float = 5.0,
                 streams_hz: Mapping[str, float] = DEFAULT_STREAMS_HZ,
                 terrain: Callable[[float, float], float] | terrain_server.TerrainServer | None = None) -> None:
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
        self._adsb = AdsbStore()
        self._adsb_listeners: set[asyncio.Queue[AdsbReport]] = set()
        self.adsb_rejected = 0  # ADSB_VEHICLE messages refused (each logged with the reason)
        self._command_lock = asyncio.Lock()
        self._transfer = transfer.MissionTransfer(link, system_id, target_component,
                                                  name=self.name, lost=self._lost)
        self._params = Params(link, system_id, target_component, name=self.name,
                              lost=self._lost)
        # Camera/gimbal and on-board logs (uav.camera, uav.logs).
        self.camera = Camera(link, system_id, name=self.name, lost=self._lost,
                             command_timeout_s=command_timeout_s,
                             command_attempts=command_attempts)
        self._logs = Logs(link, system_id, target_component, name=self.name,
                          lost=self._lost, armed=lambda: self._state.armed)
        self._need_streams = asyncio.Event()
        self._position_at_s = 0.0
        self._reboot_sent_s = 0.0  # monotonic time of an accepted reboot (0: none pending)
        # Ground elevation (lon, lat) -> m AMSL: with it, the vehicle's TERRAIN_REQUESTs are
        # answered (uav.terrain), as a ground station does for ArduPilot terrain following.
        # A TerrainServer may be shared by a fleet (one cache for vehicles at the same base).
        self.terrain = (terrain if isinstance(terrain, terrain_server.TerrainServer)
                        else terrain_server.TerrainServer(terrain) if terrain is not None else None)

    # ---- telemetry -----------------------------------------------------------------------

    @property
    def state(self) -> Telemetry:
        """The latest telemetry snapshot."""
        return self._state

    @property
    def vehicle_type(self) -> str:
        return self._state.vehicle_type

    def link_quality(self) -> LinkQuality:
        """Packet loss, silence and TIMESYNC round-trip latency of this vehicle's link
        (``latency_ms`` NaN until it has answered a TIMESYNC; never heard: all unknown)."""
        stats = self.link.stats(self.system_id)
        if stats is None:
            return LinkQuality(self.system_id, 0.0, math.inf, math.nan, math.nan, 0, 0)
        return stats.quality(time.monotonic())

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

    # ---- manned traffic (ADS-B) ------------------------------------------------------------

    def traffic(self) -> list[AdsbReport]:
        """The aircraft the vehicle's ADS-B receiver reported in the last ``ADSB_KEEP_S``
        (the latest report of each), most recently received first."""
        return self._adsb.current(time.monotonic())

    async def adsb_reports(self, *, maxsize: int = 64) -> AsyncIterator[AdsbReport]:
        """Every ADS-B report as it arrives; a slow reader loses the oldest queued ones."""
        queue: asyncio.Queue[AdsbReport] = asyncio.Queue(maxsize=maxsize)
        self._adsb_listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._adsb_listeners.discard(queue)

    def _on_adsb(self, msg: Any, now_s: float) -> None:
        try:
            report = report_from_message(msg, now_s)
        except (ValueError, TypeError, AttributeError) as err:
            self.adsb_rejected += 1
            log.warning("%s: ADSB_VEHICLE refused: %s", self.name, err)
            return
        self._adsb.observe(report)
        for queue in tuple(self._adsb_listeners):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(report)

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
                serving = (tg.create_task(terrain_server.serve_terrain(
                    self.link, self.system_id, self.terrain, name=self.name))
                    if self.terrain is not None else None)
                try:
                    await self._consume(sub)
                finally:
                    streams.cancel()
                    if serving is not None:
                        serving.cancel()

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
            elif kind == "ADSB_VEHICLE":
                self._on_adsb(msg, now_s)
            elif kind in ("CAMERA_IMAGE_CAPTURED", "HEARTBEAT"):
                self.camera.observe(msg)  # the image collector; a camera's own heartbeat
            if kind == "HEARTBEAT" and new.heartbeat_at_s == now_s:
                gap_s = now_s - old.heartbeat_at_s
                if (not old.heartbeat_seen or gap_s > STREAM_STALE_S
                        or self._back_from_reboot(now_s, gap_s)):
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
                      use_int: bool = False, progress: Callable[[int], None] | None = None,
                      in_progress_timeout_s: float = IN_PROGRESS_TIMEOUT_S,
                      done: Callable[[], bool] | None = None) -> None:
        """Send COMMAND_LONG (or COMMAND_INT) and await an ACCEPTED COMMAND_ACK.

        Up to 7 params (COMMAND_INT: params 5/6 are lat/lon in degrees, sent as degE7).
        Raises the CommandError leaf for the result, CommandTimeout, or LinkLost.
        IN_PROGRESS acks call ``progress(percent)`` (255: unknown) and the command is not
        sent again; the final ACK is awaited up to ``in_progress_timeout_s`` after the first.
        ``done`` tells from telemetry whether the command already took effect: checked before
        each resend, it makes a lost ACK harmless for commands not safe to repeat (an arm after
        an auto-disarm, a takeoff once climbing, which ArduPilot refuses).
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
                    if confirmation and done is not None and done():
                        log.info("%s: %s: no ack, but it took effect", self.name, label)
                        return
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
                        ack, text = await self._await_ack(sub, command, per_try_s, text,
                                                          progress, in_progress_timeout_s)
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
                         text: str | None, progress: Callable[[int], None] | None = None,
                         in_progress_timeout_s: float = 0.0) -> tuple[Any, str | None]:
        """The final COMMAND_ACK for ``command``. TimeoutError if none within ``timeout_s``
        (the caller may send again); after an IN_PROGRESS ack (MAVLink command protocol:
        do not resend, wait for the final ack) CommandTimeout if the final one is late."""
        last_percent: int | None = None
        try:
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
                        if last_percent is None:
                            deadline.reschedule(asyncio.get_running_loop().time()
                                                + max(timeout_s, in_progress_timeout_s))
                        # COMMAND_ACK.progress: percent, 255 when unknown (common.xml)
                        last_percent = int(msg.progress)
                        if progress is not None:
                            try:
                                progress(last_percent)
                            except Exception:  # a listener must not end the command
                                log.exception("%s: progress callback failed", self.name)
                        continue
                    return msg, text
        except TimeoutError:
            if last_percent is None:
                raise
            raise CommandTimeout(
                f"{self.name}: {command_name(command)}: IN_PROGRESS (last {last_percent}%) "
                f"but no final COMMAND_ACK within {max(timeout_s, in_progress_timeout_s):g} s",
                command=command, result=mav.MAV_RESULT_IN_PROGRESS) from None

    async def arm(self) -> None:
        """Arm (MAV_CMD_COMPONENT_ARM_DISARM 1); a refusal raises CommandFailed with the reason."""
        await self.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, what="arm", done=lambda: self._state.armed)

    async def disarm(self, *, force: bool = False) -> None:
        """Disarm; ``force=True`` disarms even in flight (the motors stop: it falls)."""
        await self.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 0,
                           FORCE_DISARM_MAGIC if force else 0.0, what="disarm", done=lambda: not self._state.armed)

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
        start = self._state.alt_rel_m

        def climbing() -> bool:  # airborne and above where it was: the first takeoff was taken
            t = self._state
            return t.armed and not t.landed and math.isfinite(start) and t.alt_rel_m > start + 1.0

        await self.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, alt_m,
                           what=f"takeoff to {alt_m:g} m", done=climbing)

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

    # ---- reboot --------------------------------------------------------------------------

    async def reboot(self, *, force: bool = False) -> None:
        """Reboot the autopilot (MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, param1 1).

        Refused here while armed (a reboot stops the motors) unless ``force``; ArduPilot
        itself answers FAILED while armed. After the ACK the vehicle is silent for a few
        seconds and comes back in its boot state: the snapshot's EKF readiness is cleared
        now, so ``wait_ready`` waits for the new boot, and the telemetry streams are asked
        for again when the heartbeat returns (a rebooted autopilot forgets them).
        """
        cmd = mav.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN
        if self._state.armed and not force:
            raise CommandDenied(f"{self.name}: reboot refused: the vehicle is armed "
                                f"(disarm first, or force=True)", command=cmd)
        self._reboot_sent_s = time.monotonic()
        try:
            await self.command(cmd, 1, 0, 0, 0, 0, 0, 0, what="reboot")
        except (CommandTimeout, LinkLost) as err:
            # The ACK can be lost as the vehicle goes down: silence since is the answer.
            if self.heard_within(REBOOT_GAP_S):
                raise
            log.warning("%s: reboot not acknowledged but the vehicle went silent (%s): "
                        "taken as rebooting", self.name, err)
        except BaseException:
            self._reboot_sent_s = 0.0
            raise
        self._reboot_sent_s = time.monotonic()
        self._publish(dataclasses.replace(self._state, ekf_ok=False, ekf_flags=0))
        log.info("%s: rebooting", self.name)

    def _back_from_reboot(self, now_s: float, gap_s: float) -> bool:
        """True for the first heartbeat after the silence that follows an accepted reboot."""
        if not self._reboot_sent_s:
            return False
        if now_s - self._reboot_sent_s > REBOOT_EXPECTED_S:
            self._reboot_sent_s = 0.0  # it never went silent: nothing to redo
            return False
        if gap_s > REBOOT_GAP_S:
            self._reboot_sent_s = 0.0
            return True
        return False

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

    async def terrain_report(self, lon_deg: float, lat_deg: float, *, timeout_s: float = 2.0,
                             attempts: int = 3) -> terrain_server.TerrainReport:
        """What the vehicle's terrain database holds at a point (TERRAIN_CHECK →
        TERRAIN_REPORT; ``terrain_height_m`` NaN when not loaded). CommandTimeout."""
        self._check_reachable()
        lat_e7, lon_e7 = round(lat_deg * 1e7), round(lon_deg * 1e7)
        with self.link.subscribe(self.system_id, types={"TERRAIN_REPORT"}, maxsize=16) as sub:
            for _ in range(attempts):
                self.link.send(self.link.mav.terrain_check_encode(lat_e7, lon_e7),
                               system_id=self.system_id)
                try:
                    async with asyncio.timeout(timeout_s):
                        while True:
                            msg = await sub.get()
                            # the vehicle also reports its own position unasked
                            if abs(msg.lat - lat_e7) <= 1 and abs(msg.lon - lon_e7) <= 1:
                                return terrain_server.report_from_wire(msg)
                except TimeoutError:
                    continue
        raise CommandTimeout(f"{self.name}: no TERRAIN_REPORT for ({lon_deg:.6f}, "
                             f"{lat_deg:.6f}) after {attempts} tries",
                             command=mav.MAVLINK_MSG_ID_TERRAIN_CHECK)

    # ---- mission protocol: missions, fences, rally points (uav.transfer) -------------------

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
        self._check_reachable()
        await self._transfer.upload(transfer.MISSION, [home, *items], timeout_s=timeout_s,
                                    request_timeout_s=request_timeout_s)
        log.info("%s: mission of %d items uploaded", self.name, len(items))

    async def download_mission(self, *, timeout_s: float = 30.0,
                               request_timeout_s: float = 1.5) -> list[MissionItem]:
        """Read the mission back (without the home slot 0)."""
        self._check_reachable()
        items = await self._transfer.download(transfer.MISSION, timeout_s=timeout_s,
                                              request_timeout_s=request_timeout_s)
        return items[1:]

    async def clear_mission(self, *, timeout_s: float = 10.0,
                            request_timeout_s: float = 1.5) -> None:
        """MISSION_CLEAR_ALL, awaiting an ACCEPTED MISSION_ACK."""
        self._check_reachable()
        await self._transfer.clear(transfer.MISSION, timeout_s=timeout_s,
                                   request_timeout_s=request_timeout_s)

    async def upload_fence(self, fence: Fence, *, timeout_s: float = 30.0,
                           request_timeout_s: float = 1.5) -> None:
        """Upload ``fence`` (MAV_MISSION_TYPE_FENCE, no home slot); it replaces the stored
        fence. FENCE_ENABLE is left as it was (FACTS): enable it with ``set_param``."""
        self._check_reachable()
        items = fence_items(fence)
        await self._transfer.upload(transfer.FENCE, items, timeout_s=timeout_s,
                                    request_timeout_s=request_timeout_s)
        log.info("%s: fence of %d items uploaded", self.name, len(items))

    async def download_fence(self, *, timeout_s: float = 30.0,
                             request_timeout_s: float = 1.5) -> Fence:
        """The fence stored on the vehicle; ValueError if its items do not form a fence."""
        self._check_reachable()
        return fence_from_items(await self._transfer.download(
            transfer.FENCE, timeout_s=timeout_s, request_timeout_s=request_timeout_s))

    async def clear_fence(self, *, timeout_s: float = 10.0, request_timeout_s: float = 1.5) -> None:
        """Remove every fence item (MISSION_CLEAR_ALL of type FENCE)."""
        self._check_reachable()
        await self._transfer.clear(transfer.FENCE, timeout_s=timeout_s,
                                   request_timeout_s=request_timeout_s)

    async def upload_rally(self, points: Sequence[RallyPoint], *, timeout_s: float = 30.0,
                           request_timeout_s: float = 1.5) -> None:
        """Upload rally points (MAV_MISSION_TYPE_RALLY, no home slot)."""
        self._check_reachable()
        await self._transfer.upload(transfer.RALLY, rally_items(points), timeout_s=timeout_s,
                                    request_timeout_s=request_timeout_s)

    async def download_rally(self, *, timeout_s: float = 30.0,
                             request_timeout_s: float = 1.5) -> list[RallyPoint]:
        """The rally points stored on the vehicle."""
        self._check_reachable()
        return rally_from_items(await self._transfer.download(
            transfer.RALLY, timeout_s=timeout_s, request_timeout_s=request_timeout_s))

    async def clear_rally(self, *, timeout_s: float = 10.0, request_timeout_s: float = 1.5) -> None:
        """Remove every rally point."""
        self._check_reachable()
        await self._transfer.clear(transfer.RALLY, timeout_s=timeout_s,
                                   request_timeout_s=request_timeout_s)

    # ---- camera and on-board logs (uav.camera, uav.logs) -------------------------------------

    async def look_at(self, lon_deg: float, lat_deg: float, alt_amsl_m: float) -> None:
        """Point the camera/gimbal at a location (MAV_CMD_DO_SET_ROI_LOCATION, AMSL)."""
        self._check_reachable()
        await self.camera.look_at(lon_deg, lat_deg, alt_amsl_m)

    async def clear_roi(self) -> None:
        """Stop looking at a location (MAV_CMD_DO_SET_ROI_NONE)."""
        self._check_reachable()
        await self.camera.clear_roi()

    async def take_photo(self, *, camera_id: int = 0) -> CapturedImage:
        """One photo and its CAMERA_IMAGE_CAPTURED (position, time, file URL)."""
        self._check_reachable()
        return await self.camera.take_photo(camera_id=camera_id)

    @property
    def images(self) -> list[CapturedImage]:
        """Every CAMERA_IMAGE_CAPTURED heard from this vehicle (bounded), oldest first."""
        return self.camera.images

    async def video_stream(self, *, timeout_s: float = 2.0) -> VideoStream | None:
        """The vehicle's VIDEO_STREAM_INFORMATION, or None when it has no stream."""
        self._check_reachable()
        return await self.camera.video_stream(timeout_s=timeout_s)

    async def log_entries(self) -> list[LogEntry]:
        """The on-board logs (LOG_REQUEST_LIST), oldest first; LogDownloadRefused if armed."""
        self._check_reachable()
        return await self._logs.entries()

    async def download_log(self, log_id: int, dest_path: Any, *,
                           progress: LogProgress | None = None,
                           size_bytes: int | None = None, timeout_s: float = 600.0) -> Any:
        """Download on-board log ``log_id`` to ``dest_path`` (verified size); returns the path."""
        self._check_reachable()
        return await self._logs.download(log_id, dest_path, progress=progress,
                                         size_bytes=size_bytes, timeout_s=timeout_s)

    async def erase_logs(self) -> None:
        """Delete every on-board log (LOG_ERASE; disarmed only)."""
        self._check_reachable()
        await self._logs.erase()

    # ---- parameters (uav.params) ---------------------------------------------------------

    @property
    def param_cache(self) -> Mapping[str, ParamValue]:
        """Every parameter value seen so far (reads, sets, lists), by name."""
        return self._params.cache

    async def get_param(self, name: str, timeout_s: float = 1.0, *, attempts: int = 3) -> float:
        """One parameter's value (PARAM_REQUEST_READ by name); ParamNotFound, LinkLost."""
        self._check_reachable()
        return (await self._params.get(name, timeout_s=timeout_s, attempts=attempts)).value

    async def get_all_params(self, *, progress: ProgressCallback | None = None,
                             timeout_s: float = 60.0) -> dict[str, float]:
        """Every parameter (PARAM_REQUEST_LIST, gaps re-read by index); ``progress(got,
        total)`` after each new one. ParamTimeout after ``timeout_s``."""
        self._check_reachable()
        values = await self._params.get_all(progress=progress, timeout_s=timeout_s)
        return {name: p.value for name, p in values.items()}

    async def set_param(self, name: str, value: float, *, timeout_s: float = 1.0,
                        attempts: int = 3) -> float:
        """PARAM_SET verified from the echo; returns the value the vehicle holds.
        ValueError (does not fit the type), ParamNotFound, ParamSetFailed, LinkLost."""
        self._check_reachable()
        return (await self._params.set(name, value, timeout_s=timeout_s,
                                       attempts=attempts)).value


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

