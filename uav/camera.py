"""Eyes on scene: point the gimbal, take photos, collect what the camera captured, and find
the vehicle's video stream (MAVLink camera protocol, https://mavlink.io/en/services/camera.html).

    await vehicle.look_at(lon, lat, alt_amsl_m)       # MAV_CMD_DO_SET_ROI_LOCATION
    image = await vehicle.take_photo()                 # → CapturedImage (with position)
    async for image in vehicle.camera.captured(): ...  # every CAMERA_IMAGE_CAPTURED
    stream = await vehicle.video_stream()              # VideoStream or None

Which component answers: a MAVLink camera is its own component (MAV_COMP_ID_CAMERA, 100, and
up to CAMERA6, 105) with a HEARTBEAT of type MAV_TYPE_CAMERA. ArduPilot also runs cameras
itself (AP_Camera: servo, relay, mount-integrated gimbals) and then answers camera commands
from the autopilot (component 1). So commands go to the camera component once one has been
heard, to the autopilot otherwise, and an ack from either component counts. The ROI is the
autopilot's (it drives the mount and the vehicle's yaw): it always goes to component 1.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import (
    CaptureTimeout, CommandTimeout, LinkLost, command_name, error_for_result,
)
from uav.link import MavLink, Subscription

__all__ = ["CapturedImage", "VideoStream", "Camera", "captured_image_from_wire",
           "video_stream_from_wire", "CAMERA_COMPONENTS", "IMAGES_KEPT"]

log = logging.getLogger(__name__)

# MAV_COMP_ID_CAMERA .. MAV_COMP_ID_CAMERA6 (common.xml MAV_COMPONENT).
CAMERA_COMPONENTS: Final = frozenset(range(mav.MAV_COMP_ID_CAMERA, mav.MAV_COMP_ID_CAMERA6 + 1))
AUTOPILOT_COMPONENT: Final = mav.MAV_COMP_ID_AUTOPILOT1
# CAMERA_IMAGE_CAPTURED kept per vehicle for ``images`` (a sortie takes tens to hundreds).
IMAGES_KEPT: Final = 1000
# A camera writes the file before it reports the capture; cameras answer in well under a
# second, a 5G link adds ~100 ms. Past this the capture message is asked for again
# (MAV_CMD_REQUEST_MESSAGE param2 = image index, camera protocol "missed images").
CAPTURE_WAIT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class CapturedImage:
    """One CAMERA_IMAGE_CAPTURED: where and when a photo was taken, and where it is stored."""

    system_id: int
    component_id: int
    camera_id: int
    image_index: int
    time_utc: datetime | None  # None when the camera has no UTC time (time_utc 0)
    time_boot_ms: int
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    alt_rel_m: float
    q: tuple[float, float, float, float]  # camera attitude, w x y z (NED); NaN if unknown
    capture_result: int  # 1 success, 0 failure, -1 unknown (common.xml)
    file_url: str

    @property
    def ok(self) -> bool:
        """True when the camera reports the capture as successful."""
        return self.capture_result == 1


@dataclass(frozen=True, slots=True)
class VideoStream:
    """VIDEO_STREAM_INFORMATION: the address and shape of one video stream."""

    stream_id: int
    count: int
    type: int  # VIDEO_STREAM_TYPE: 0 RTSP, 1 RTPUDP, 2 TCP_MPEG, 3 MPEG_TS_H264
    name: str
    uri: str
    framerate_hz: float
    resolution_h_px: int
    resolution_v_px: int
    bitrate_bps: int
    hfov_deg: int
    running: bool

    @property
    def type_name(self) -> str:
        entry = mav.enums["VIDEO_STREAM_TYPE"].get(self.type)
        return entry.name if entry is not None else f"VIDEO_STREAM_TYPE_{self.type}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).split("\x00", 1)[0].strip()


def captured_image_from_wire(msg: Any) -> CapturedImage:
    """CAMERA_IMAGE_CAPTURED → CapturedImage (degE7 → degrees, mm → m, µs → UTC)."""
    q = tuple(float(x) for x in msg.q)
    if len(q) != 4:
        raise ValueError(f"CAMERA_IMAGE_CAPTURED.q has {len(q)} values, not 4")
    when = (datetime.fromtimestamp(msg.time_utc / 1e6, UTC) if msg.time_utc else None)
    return CapturedImage(
        system_id=msg.get_srcSystem(), component_id=msg.get_srcComponent(),
        camera_id=int(msg.camera_id), image_index=int(msg.image_index), time_utc=when,
        time_boot_ms=int(msg.time_boot_ms), lat_deg=msg.lat / 1e7, lon_deg=msg.lon / 1e7,
        alt_amsl_m=msg.alt / 1000.0, alt_rel_m=msg.relative_alt / 1000.0,
        q=(q[0], q[1], q[2], q[3]), capture_result=int(msg.capture_result),
        file_url=_text(msg.file_url))


def video_stream_from_wire(msg: Any) -> VideoStream:
    """VIDEO_STREAM_INFORMATION → VideoStream."""
    return VideoStream(
        stream_id=int(msg.stream_id), count=int(msg.count), type=int(msg.type),
        name=_text(msg.name), uri=_text(msg.uri), framerate_hz=float(msg.framerate),
        resolution_h_px=int(msg.resolution_h), resolution_v_px=int(msg.resolution_v),
        bitrate_bps=int(msg.bitrate), hfov_deg=int(msg.hfov),
        running=bool(msg.flags & mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING))


class Camera:
    """The camera side of one vehicle: commands, and the collector of captured images.

    ``observe(msg)`` must see every message of the vehicle (``Vehicle.run`` calls it).
    """

    def __init__(self, link: MavLink, system_id: int, *, name: str,
                 lost: Callable[[], bool], command_timeout_s: float = 1.5,
                 command_attempts: int = 3, images_kept: int = IMAGES_KEPT) -> None:
        self.link = link
        self.system_id = system_id
        self.name = name
        self.command_timeout_s = command_timeout_s
        self.command_attempts = command_attempts
        self.camera_component: int | None = None  # learned from a camera HEARTBEAT
        self.rejected = 0  # CAMERA_IMAGE_CAPTURED that could not be read
        self._lost = lost
        self._images: deque[CapturedImage] = deque(maxlen=images_kept)
        self._seen: set[tuple[int, int, int]] = set()  # (component, camera, index)
        self._listeners: set[asyncio.Queue[CapturedImage]] = set()
        self._sequence = 0  # IMAGE_START_CAPTURE param4: 1, 2, ... per capture

    # ---- collector -------------------------------------------------------------------------

    @property
    def images(self) -> list[CapturedImage]:
        """The captured images heard so far, oldest first (the last ``images_kept``)."""
        return list(self._images)

    def observe(self, msg: Any) -> CapturedImage | None:
        """Take one message of the vehicle; returns the image if it is a new capture."""
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            comp = msg.get_srcComponent()
            if msg.type == mav.MAV_TYPE_CAMERA and comp in CAMERA_COMPONENTS:
                if self.camera_component != comp:
                    log.info("%s: camera component %d heard", self.name, comp)
                self.camera_component = comp
            return None
        if kind != "CAMERA_IMAGE_CAPTURED":
            return None
        try:
            image = captured_image_from_wire(msg)
        except (ValueError, TypeError, OverflowError) as err:
            self.rejected += 1
            log.warning("%s: unreadable CAMERA_IMAGE_CAPTURED rejected: %s", self.name, err)
            return None
        key = (image.component_id, image.camera_id, image.image_index)
        if key in self._seen:
            return None  # re-sent (asked for again, or duplicated by a router)
        if len(self._seen) >= 4 * (self._images.maxlen or IMAGES_KEPT):
            self._seen = {(i.component_id, i.camera_id, i.image_index) for i in self._images}
        self._seen.add(key)
        self._images.append(image)
        for queue in tuple(self._listeners):
            if queue.full():
                queue.get_nowait()  # a slow reader loses the oldest, never blocks the link
            queue.put_nowait(image)
        return image

    async def captured(self, *, maxsize: int = 64) -> AsyncIterator[CapturedImage]:
        """New captures as they arrive (not the ones already in ``images``)."""
        queue: asyncio.Queue[CapturedImage] = asyncio.Queue(maxsize=maxsize)
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    # ---- commands --------------------------------------------------------------------------

    async def look_at(self, lon_deg: float, lat_deg: float, alt_amsl_m: float) -> None:
        """Point the gimbal (and a copter's nose) at a location: MAV_CMD_DO_SET_ROI_LOCATION
        as COMMAND_INT in MAV_FRAME_GLOBAL (altitude AMSL)."""
        if not (-90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 180.0):
            raise ValueError(f"({lon_deg}, {lat_deg}) is not a WGS84 lon/lat")
        if lat_deg == 0.0 and lon_deg == 0.0:
            # ArduPilot reads an all-zero location as "ROI off" (AC_AutoYaw::set_roi).
            raise ValueError("(0, 0) means 'no ROI' to ArduPilot; use clear_roi()")
        if not math.isfinite(alt_amsl_m):
            raise ValueError(f"alt_amsl_m must be finite, got {alt_amsl_m}")
        await self.command(mav.MAV_CMD_DO_SET_ROI_LOCATION, (0, 0, 0, 0, lat_deg, lon_deg,
                                                             alt_amsl_m),
                           frame=mav.MAV_FRAME_GLOBAL, component=AUTOPILOT_COMPONENT,
                           what=f"look at ({lon_deg:.6f}, {lat_deg:.6f}, {alt_amsl_m:.1f} m)")

    async def clear_roi(self) -> None:
        """MAV_CMD_DO_SET_ROI_NONE: the gimbal and the vehicle's yaw return to normal."""
        await self.command(mav.MAV_CMD_DO_SET_ROI_NONE, (0,), component=AUTOPILOT_COMPONENT,
                           what="clear ROI")

    async def take_photo(self, *, camera_id: int = 0,
                         wait_s: float = CAPTURE_WAIT_S) -> CapturedImage:
        """One photo (MAV_CMD_IMAGE_START_CAPTURE: interval 0, total 1, sequence n) and the
        CAMERA_IMAGE_CAPTURED that reports it. CaptureTimeout if it never comes."""
        self._sequence += 1
        sequence = self._sequence
        before = {(i.component_id, i.camera_id, i.image_index) for i in self._images}
        last_index = max((i.image_index for i in self._images), default=-1)
        with self.link.subscribe(self.system_id, types={"CAMERA_IMAGE_CAPTURED"},
                                 maxsize=64) as sub:
            # param1 camera id (0 all), param2 interval 0 s, param3 total 1, param4 the capture
            # sequence: a retransmitted command with the same sequence does not shoot twice.
            await self.command(mav.MAV_CMD_IMAGE_START_CAPTURE, (camera_id, 0, 1, sequence),
                               component=self.camera_component, what=f"take photo {sequence}")
            image = await self._await_capture(sub, before, wait_s)
            if image is None:
                # Lost on the way: ask for it by index (the next one after the last seen).
                index = last_index + 1
                try:
                    await self.command(mav.MAV_CMD_REQUEST_MESSAGE,
                                       (mav.MAVLINK_MSG_ID_CAMERA_IMAGE_CAPTURED, index),
                                       component=self.camera_component,
                                       what=f"request image {index}")
                except CommandTimeout:
                    pass
                else:
                    image = await self._await_capture(sub, before, wait_s)
        if image is None:
            raise CaptureTimeout(f"{self.name}: photo {sequence} acknowledged but no "
                                 f"CAMERA_IMAGE_CAPTURED within {wait_s:g} s")
        return image

    async def _await_capture(self, sub: Subscription, before: set[tuple[int, int, int]],
                             wait_s: float) -> CapturedImage | None:
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    msg = await sub.get()
                    try:
                        image = captured_image_from_wire(msg)
                    except (ValueError, TypeError, OverflowError):
                        continue  # counted by observe()
                    if (image.component_id, image.camera_id, image.image_index) not in before:
                        self.observe(msg)  # the collector may not have seen it yet
                        return image
        except TimeoutError:
            return None

    async def video_stream(self, *, stream_id: int = 0,
                           timeout_s: float = 2.0) -> VideoStream | None:
        """VIDEO_STREAM_INFORMATION asked for with MAV_CMD_REQUEST_MESSAGE (param2: stream
        id, 0 all), or None when the vehicle has no stream: it refuses the request
        (FAILED/UNSUPPORTED/DENIED) or accepts and sends nothing (ArduPilot without a
        video-capable camera)."""
        msg_id = mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION
        with self.link.subscribe(self.system_id, types={"VIDEO_STREAM_INFORMATION"},
                                 maxsize=16) as sub:
            result = await self.command(mav.MAV_CMD_REQUEST_MESSAGE, (msg_id, stream_id),
                                        component=self.camera_component,
                                        what="request video stream information", check=False)
            if result != mav.MAV_RESULT_ACCEPTED:
                log.info("%s: no video stream (request answered %d)", self.name, result)
                return None
            try:
                async with asyncio.timeout(timeout_s):
                    msg = await sub.get()
            except TimeoutError:
                return None
        return video_stream_from_wire(msg)

    async def command(self, command: int, params: Sequence[float], *,
                      frame: int | None = None, component: int | None = None,
                      what: str | None = None, check: bool = True) -> int:
        """COMMAND_LONG (or COMMAND_INT when ``frame`` is given: params 5/6 are lat/lon in
        degrees) to ``component`` (None: the autopilot), retried with ``confirmation``
        incremented; an ack from the target, the autopilot or a camera component counts.
        Returns the MAV_RESULT; with ``check`` a result other than ACCEPTED raises."""
        p = [float(x) for x in params] + [0.0] * (7 - len(params))
        target = component or AUTOPILOT_COMPONENT
        label = what or command_name(command)
        if self._lost():
            raise LinkLost(f"{self.name}: {label}: vehicle not heard")
        with self.link.subscribe(self.system_id, types={"COMMAND_ACK", "STATUSTEXT"},
                                 maxsize=64) as sub:
            text: str | None = None
            for confirmation in range(self.command_attempts):
                if frame is not None:
                    out = self.link.mav.command_int_encode(
                        self.system_id, target, frame, command, 0, 0, p[0], p[1], p[2], p[3],
                        round(p[4] * 1e7), round(p[5] * 1e7), p[6])
                else:
                    out = self.link.mav.command_long_encode(
                        self.system_id, target, command, min(confirmation, 255), *p)
                self.link.send(out, system_id=self.system_id)
                try:
                    ack, text = await self._await_ack(sub, command, target, text)
                except TimeoutError:
                    log.debug("%s: %s: no ack (try %d)", self.name, label, confirmation + 1)
                    continue
                if check:
                    err = error_for_result(command, ack.result, statustext=text,
                                           what=f"{self.name}: {label}")
                    if err is not None:
                        raise err
                return int(ack.result)
        if self._lost():
            raise LinkLost(f"{self.name}: {label}: vehicle not heard")
        raise CommandTimeout(f"{self.name}: {label}: no COMMAND_ACK after "
                             f"{self.command_attempts} tries", command=command)

    async def _await_ack(self, sub: Subscription, command: int, target: int,
                         text: str | None) -> tuple[Any, str | None]:
        accepted_from = {target, AUTOPILOT_COMPONENT} | CAMERA_COMPONENTS
        async with asyncio.timeout(self.command_timeout_s) as deadline:
            while True:
                msg = await sub.get()
                if msg.get_type() == "STATUSTEXT":
                    text = _text(msg.text)
                    continue
                if msg.command != command or msg.get_srcComponent() not in accepted_from:
                    continue
                if msg.target_system not in (0, self.link.source_system):
                    continue  # another ground station's ack
                if msg.result == mav.MAV_RESULT_IN_PROGRESS:
                    deadline.reschedule(asyncio.get_running_loop().time()
                                        + self.command_timeout_s)
                    continue
                return msg, text
