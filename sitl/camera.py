"""The simulated vehicle's camera and gimbal: ROI, single captures rendered as synthetic
geotagged PNG images of the district, and a video stream address.

What the simulated vehicle answers, and as whom: ArduPilot runs cameras in its camera
library (AP_Camera) and answers camera commands from the autopilot component (1); it also
sends what a camera reports. The simulator does the same: every answer below comes from
component 1. (A separate MAVLink camera would be component 100 with its own HEARTBEAT;
``uav.camera`` accepts either.)

- MAV_CMD_DO_SET_ROI_LOCATION (COMMAND_INT or COMMAND_LONG, global frames) points the gimbal
  (ArduCopter ``handle_command_do_set_roi``: all-zero location clears it, invalid lat/lon
  FAILED); MAV_CMD_DO_SET_ROI_NONE clears it.
- MAV_CMD_IMAGE_START_CAPTURE (AP_Camera::handle_command): param1 < 0 UNSUPPORTED; a single
  capture (param3 1, or param2 and param3 0) is ACCEPTED and followed by
  CAMERA_IMAGE_CAPTURED with the vehicle's position at the capture; interval capture is
  not simulated (UNSUPPORTED). param4, the capture sequence, is honoured: a retransmitted
  command with the same sequence is acknowledged again without a second photo (MAVLink
  camera protocol).
- MAV_CMD_REQUEST_MESSAGE for CAMERA_IMAGE_CAPTURED (param2: image index) re-sends a
  capture; for VIDEO_STREAM_INFORMATION it answers when a URI is configured. No stream is
  served: the URI (e.g. ``rtsp://127.0.0.1:8554/uav-1``) is only an address to show.

The image: a ``size_px`` square PNG of the ground the camera sees, north-up rotated to the
camera's heading, its footprint width 2·d·tan(hfov/2) for slant distance d (a square
sensor, so the same height). Looking straight down unless an ROI is set; then centred on
the ROI (a plan view of it, not a perspective). Drawn from the district folder's water
areas, river centre lines, roads and boundary if given, over a terrain-coloured texture.
The position goes into PNG tEXt chunks (EXIF GPS tags are a JPEG/TIFF thing): keys
``GPSLatitude``, ``GPSLongitude`` (degrees WGS84), ``GPSAltitude`` (m AMSL),
``GPSRelativeAltitude`` (m above home), ``Creation Time`` (ISO 8601 UTC),
``ImageIndex``, ``FootprintCenterLatitude``/``Longitude``, ``FootprintWidth`` (m).
"""

from __future__ import annotations

import json
import logging
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from pymavlink.dialects.v20 import ardupilotmega as mav
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

__all__ = ["SimCamera", "CameraPose", "DistrictLayers", "render", "write_png", "read_png",
           "footprint_width_m", "HFOV_DEG", "IMAGE_PX"]

log = logging.getLogger(__name__)

HFOV_DEG: Final = 84.0  # a typical small-drone wide camera (e.g. 24 mm-equivalent lens)
IMAGE_PX: Final = 256
_M_PER_DEG: Final = 111318.84502145034  # WGS84 equatorial metres per degree (as vehicle_sim)
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"  # PNG spec (ISO/IEC 15948) 5.2
_FILE_URL_CHARS: Final = 205  # CAMERA_IMAGE_CAPTURED.file_url char[205]
# Line widths drawn, metres: a main river channel, an expressway, an arterial road.
_RIVER_W_M: Final = 60.0
_ROAD_W_M: Final = {"expressway": 24.0, "arterial": 14.0}
_COLOURS: Final = {
    "land": (112, 138, 82), "water": (64, 108, 160), "expressway": (72, 72, 76),
    "arterial": (104, 104, 108), "boundary": (214, 58, 58),
}


def footprint_width_m(distance_m: float, hfov_deg: float = HFOV_DEG) -> float:
    """Ground width seen at ``distance_m``: 2·d·tan(hfov/2) (pinhole camera)."""
    return 2.0 * max(distance_m, 1.0) * math.tan(math.radians(hfov_deg) / 2.0)


# ---- PNG ---------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    # PNG spec 5.3: length, type, data, CRC-32 over type and data.
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, rgb: np.ndarray, text: Mapping[str, str]) -> None:
    """An 8-bit RGB PNG with tEXt chunks (keywords 1..79 Latin-1 characters)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"need an (h, w, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    parts = [_PNG_SIGNATURE,
             _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))]  # 8-bit truecolour
    for key, value in text.items():
        if not 1 <= len(key) <= 79:
            raise ValueError(f"PNG tEXt keyword must be 1..79 characters: {key!r}")
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")))
    parts.append(_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))  # filter 0 per row
    parts.append(_chunk(b"IEND", b""))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)


def read_png(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    """The pixels and tEXt of a PNG written by :func:`write_png` (8-bit RGB, filter 0)."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{path}: not a PNG")
    at, text, idat = len(_PNG_SIGNATURE), {}, b""
    w = h = 0
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"{path}: bad CRC in {kind!r}")
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return rows[:, 1:].reshape(h, w, 3), text


# ---- district layers and rendering -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DistrictLayers:
    """What the camera draws: water areas, river centre lines, roads (class), boundary."""

    water: tuple[BaseGeometry, ...]
    rivers: tuple[BaseGeometry, ...]
    roads: tuple[tuple[BaseGeometry, str], ...]
    boundary: tuple[BaseGeometry, ...]

    @classmethod
    def load(cls, folder: Path) -> DistrictLayers:
        """Read ``rivers``, ``roads`` and ``boundary`` GeoJSON of a district folder
        (docs/district-folder.md); a missing file is an empty layer."""
        def features(name: str) -> list[dict[str, Any]]:
            path = Path(folder) / name
            if not path.exists():
                return []
            return list(json.loads(path.read_text(encoding="utf-8")).get("features", []))

        water, rivers, roads, boundary = [], [], [], []
        for f in features("rivers.geojson"):
            geom = shape(f["geometry"])
            (water if geom.geom_type in ("Polygon", "MultiPolygon") else rivers).append(geom)
        for f in features("roads.geojson"):
            roads.append((shape(f["geometry"]), str(f.get("properties", {}).get("class", ""))))
        for f in features("boundary.geojson"):
            boundary.append(shape(f["geometry"]).boundary)
        return cls(tuple(water), tuple(rivers), tuple(roads), tuple(boundary))


def render(layers: DistrictLayers | None, center_lon: float, center_lat: float, width_m: float,
           heading_deg: float, size_px: int = IMAGE_PX) -> np.ndarray:
    """The (size, size, 3) uint8 view of ``width_m`` square around the centre, the image's
    up pointing to ``heading_deg`` (clockwise from north)."""
    # Pixel centres → metres right/forward of the centre → east/north → lon/lat
    # (equirectangular about the centre: good to well under a pixel over a few km).
    k = (np.arange(size_px) + 0.5) / size_px - 0.5
    right, fwd = np.meshgrid(k * width_m, -k * width_m)
    h = math.radians(heading_deg)
    east = fwd * math.sin(h) + right * math.cos(h)
    north = fwd * math.cos(h) - right * math.sin(h)
    m_per_deg_lon = _M_PER_DEG * math.cos(math.radians(center_lat))
    lon = center_lon + east / m_per_deg_lon
    lat = center_lat + north / _M_PER_DEG
    # Terrain texture fixed to the ground (neighbouring photos agree): a few sines.
    tex = (np.sin(east / 37.0 + center_lon * 9e3) + np.sin(north / 23.0 + center_lat * 7e3)
           + np.sin((lon + lat) * 2e3)) * 6.0
    img = np.empty((size_px, size_px, 3), np.float32)
    img[:] = _COLOURS["land"]
    img += tex[..., None]
    if layers is not None:
        half_deg = width_m / m_per_deg_lon  # ≥ the rotated footprint's half-diagonal
        view = box(center_lon - half_deg, center_lat - half_deg,
                   center_lon + half_deg, center_lat + half_deg)
        px_m = width_m / size_px

        def near(geoms: Any, width: float) -> np.ndarray:
            # distance in metres from each pixel to the lines, in the local frame
            mask = np.zeros(lon.shape, bool)
            for g in geoms:
                if not g.intersects(view.buffer(width / m_per_deg_lon)):
                    continue
                local = shapely.transform(g, lambda c: np.column_stack(
                    ((c[:, 0] - center_lon) * m_per_deg_lon, (c[:, 1] - center_lat) * _M_PER_DEG)))
                mask |= shapely.dwithin(local, shapely.points(east, north), width / 2.0)
            return mask

        for g in layers.water:
            if g.intersects(view):
                img[shapely.contains_xy(g, lon, lat)] = _COLOURS["water"]
        img[near(layers.rivers, _RIVER_W_M)] = _COLOURS["water"]
        for cls in ("arterial", "expressway"):
            lines = [g for g, c in layers.roads if (c or "arterial") == cls]
            img[near(lines, _ROAD_W_M[cls])] = _COLOURS[cls]
        img[near(layers.boundary, max(4.0, 3.0 * px_m))] = _COLOURS["boundary"]
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- the camera --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CameraPose:
    """Where the vehicle is when the camera acts."""

    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    alt_rel_m: float
    ground_amsl_m: float
    heading_deg: float
    time_boot_ms: int


@dataclass(frozen=True, slots=True)
class _Capture:
    index: int
    msg: Any  # the CAMERA_IMAGE_CAPTURED sent


class SimCamera:
    """Camera and gimbal of one simulated vehicle (see the module docstring)."""

    def __init__(self, *, name: str, images_dir: Path | None = None,
                 district_dir: Path | None = None, video_uri: str | None = None,
                 hfov_deg: float = HFOV_DEG, size_px: int = IMAGE_PX,
                 utc_now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not 1.0 <= hfov_deg < 180.0:
            raise ValueError(f"hfov_deg must be in [1, 180), not {hfov_deg}")
        if video_uri is not None and len(video_uri.encode()) > 160:
            raise ValueError("video_uri longer than VIDEO_STREAM_INFORMATION.uri (160 bytes)")
        self.name = name
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.layers = DistrictLayers.load(Path(district_dir)) if district_dir else None
        self.video_uri = video_uri
        self.hfov_deg = hfov_deg
        self.size_px = size_px
        self.roi: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
        self.captures: list[_Capture] = []
        self.write_errors = 0
        self._utc_now = utc_now
        self._last_sequence = 0

    def handles(self, cmd: int, p: tuple[float, ...]) -> bool:
        """True for the commands this camera answers."""
        if cmd in (mav.MAV_CMD_DO_SET_ROI_LOCATION, mav.MAV_CMD_DO_SET_ROI_NONE,
                   mav.MAV_CMD_IMAGE_START_CAPTURE):
            return True
        if cmd == mav.MAV_CMD_REQUEST_MESSAGE:
            mid = int(p[0])
            return (mid == mav.MAVLINK_MSG_ID_CAMERA_IMAGE_CAPTURED
                    or (mid == mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION
                        and self.video_uri is not None))
        return False

    def command(self, cmd: int, p: tuple[float, ...], roi_amsl_m: float | None,
                pose: CameraPose) -> tuple[int, list[Any]]:
        """The MAV_RESULT and the messages to send after the COMMAND_ACK.

        ``roi_amsl_m`` is param7 converted to AMSL by the vehicle (None: bad frame)."""
        r = mav
        if cmd == r.MAV_CMD_DO_SET_ROI_NONE:
            self.roi = None
            return r.MAV_RESULT_ACCEPTED, []
        if cmd == r.MAV_CMD_DO_SET_ROI_LOCATION:
            lat, lon = p[4], p[5]
            if roi_amsl_m is None:
                return r.MAV_RESULT_DENIED, []  # location_from_command_t: unusable frame
            if lat == 0.0 and lon == 0.0:
                self.roi = None  # AC_AutoYaw::set_roi: a zero location turns the ROI off
                return r.MAV_RESULT_ACCEPTED, []
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                return r.MAV_RESULT_FAILED, []  # Location::check_latlng
            self.roi = (lat, lon, roi_amsl_m)
            log.info("%s: gimbal ROI %.6f, %.6f, %.1f m", self.name, lon, lat, roi_amsl_m)
            return r.MAV_RESULT_ACCEPTED, []
        if cmd == r.MAV_CMD_IMAGE_START_CAPTURE:
            if p[0] < 0:
                return r.MAV_RESULT_UNSUPPORTED, []
            single = p[2] == 1.0 or (p[1] == 0.0 and p[2] == 0.0)
            if not single:
                return r.MAV_RESULT_UNSUPPORTED, []  # interval capture: not simulated
            sequence = int(p[3])
            if sequence > 0 and sequence == self._last_sequence and self.captures:
                return r.MAV_RESULT_ACCEPTED, [self.captures[-1].msg]  # a retransmission
            self._last_sequence = sequence
            return r.MAV_RESULT_ACCEPTED, [self._capture(pose)]
        if cmd == r.MAV_CMD_REQUEST_MESSAGE:
            if int(p[0]) == r.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION:
                return r.MAV_RESULT_ACCEPTED, [self._video_stream_information()]
            index = int(p[1])
            for cap in self.captures:
                if cap.index == index:
                    return r.MAV_RESULT_ACCEPTED, [cap.msg]
            return r.MAV_RESULT_FAILED, []
        return r.MAV_RESULT_UNSUPPORTED, []

    def _look(self, pose: CameraPose) -> tuple[float, float, float, float]:
        """(centre lon, centre lat, slant distance m, heading deg) of the view."""
        height_m = max(pose.alt_amsl_m - pose.ground_amsl_m, 1.0)
        if self.roi is None:
            return pose.lon_deg, pose.lat_deg, height_m, pose.heading_deg
        lat, lon, alt = self.roi
        north = (lat - pose.lat_deg) * _M_PER_DEG
        east = (lon - pose.lon_deg) * _M_PER_DEG * math.cos(math.radians(pose.lat_deg))
        horizontal = math.hypot(north, east)
        heading = math.degrees(math.atan2(east, north)) % 360.0 if horizontal > 0.5 else pose.heading_deg
        return lon, lat, max(math.hypot(horizontal, pose.alt_amsl_m - alt), 1.0), heading

    def _capture(self, pose: CameraPose) -> Any:
        index = len(self.captures)  # zero-based image index (CAMERA_IMAGE_CAPTURED)
        now = self._utc_now()
        lon_c, lat_c, distance_m, heading = self._look(pose)
        width_m = footprint_width_m(distance_m, self.hfov_deg)
        url, result = "", 1
        if self.images_dir is not None:
            path = self.images_dir / f"{self.name}-{index:05d}.png"
            text = {
                "Title": f"{self.name} image {index}", "Software": "Yingji vehicle simulator",
                "Creation Time": now.isoformat(), "ImageIndex": str(index),
                "GPSLatitude": f"{pose.lat_deg:.7f}", "GPSLongitude": f"{pose.lon_deg:.7f}",
                "GPSAltitude": f"{pose.alt_amsl_m:.2f}",
                "GPSRelativeAltitude": f"{pose.alt_rel_m:.2f}",
                "FootprintCenterLatitude": f"{lat_c:.7f}",
                "FootprintCenterLongitude": f"{lon_c:.7f}",
                "FootprintWidth": f"{width_m:.1f}", "Heading": f"{heading:.1f}",
            }
            try:
                self.images_dir.mkdir(parents=True, exist_ok=True)
                write_png(path, render(self.layers, lon_c, lat_c, width_m, heading,
                                       self.size_px), text)
                url = path.resolve().as_uri()
            except OSError as err:
                self.write_errors += 1
                result = 0  # capture_result: failure
                log.warning("%s: image %d not written: %s", self.name, index, err)
            if len(url) > _FILE_URL_CHARS:
                log.warning("%s: file URL longer than %d characters is cut: %s", self.name,
                            _FILE_URL_CHARS, url)
        h = math.radians(heading) / 2.0  # attitude: yaw only, w x y z (NED)
        msg = mav.MAVLink_camera_image_captured_message(
            pose.time_boot_ms, int(now.timestamp() * 1e6), 1, round(pose.lat_deg * 1e7),
            round(pose.lon_deg * 1e7), round(pose.alt_amsl_m * 1000),
            round(pose.alt_rel_m * 1000), [math.cos(h), 0.0, 0.0, math.sin(h)], index, result,
            url.encode()[:_FILE_URL_CHARS])
        self.captures.append(_Capture(index, msg))
        log.info("%s: image %d at %.6f, %.6f, %.1f m -> %s", self.name, index, pose.lon_deg,
                 pose.lat_deg, pose.alt_amsl_m, url or "(not stored)")
        return msg

    def _video_stream_information(self) -> Any:
        uri = self.video_uri or ""
        kind = (mav.VIDEO_STREAM_TYPE_RTSP if uri.startswith("rtsp") else
                mav.VIDEO_STREAM_TYPE_RTPUDP if uri.startswith("udp") else
                mav.VIDEO_STREAM_TYPE_TCP_MPEG)
        # stream 1 of 1, running, 25 fps 1280x720, 2 Mbit/s, no rotation, the camera's hfov
        return mav.MAVLink_video_stream_information_message(
            1, 1, kind, mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING, 25.0, 1280, 720, 2_000_000, 0,
            round(self.hfov_deg), f"{self.name} camera".encode()[:32], uri.encode(), 1, 0)
