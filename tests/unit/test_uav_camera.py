"""Camera messages and the capture collector (uav.camera), and the simulator's PNG
geotagging and rendering (sitl.camera)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.camera import CameraPose, SimCamera, footprint_width_m, read_png, render, write_png
from uav.camera import Camera, captured_image_from_wire, video_stream_from_wire
from uav.link import open_link

NOW = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def _captured(index: int, *, comp: int = 1, lat: float = 29.62) -> mav.MAVLink_message:
    """A CAMERA_IMAGE_CAPTURED as received (packed and parsed with a source id)."""
    sender = mav.MAVLink(None, srcSystem=1, srcComponent=comp)
    msg = mav.MAVLink_camera_image_captured_message(
        1234, int(NOW.timestamp() * 1e6), 1, round(lat * 1e7), round(106.6 * 1e7), 210_500,
        30_250, [1.0, 0.0, 0.0, 0.0], index, 1, b"file:///tmp/a.png")
    return mav.MAVLink(None).parse_buffer(msg.pack(sender))[0]


def test_captured_image_from_wire_units() -> None:
    image = captured_image_from_wire(_captured(3, comp=100))
    assert image.image_index == 3 and image.component_id == 100 and image.ok
    assert image.lat_deg == pytest.approx(29.62) and image.lon_deg == pytest.approx(106.6)
    assert image.alt_amsl_m == pytest.approx(210.5) and image.alt_rel_m == pytest.approx(30.25)
    assert image.time_utc == NOW and image.file_url == "file:///tmp/a.png"


async def test_collector_keeps_new_images_once_and_bounded() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    try:
        cam = Camera(link, 1, name="t", lost=lambda: False, images_kept=3)
        assert cam.observe(_captured(0)) is not None
        assert cam.observe(_captured(0)) is None  # a re-sent capture is not a new image
        for i in range(1, 5):
            cam.observe(_captured(i))
        assert [i.image_index for i in cam.images] == [2, 3, 4]
        bad = _captured(9)
        bad.q = [1.0, 0.0]  # a malformed attitude is rejected and counted
        assert cam.observe(bad) is None and cam.rejected == 1
    finally:
        await link.close()


def test_video_stream_from_wire() -> None:
    msg = mav.MAVLink_video_stream_information_message(
        1, 1, mav.VIDEO_STREAM_TYPE_RTSP, 1, 25.0, 1280, 720, 2_000_000, 0, 84,
        b"cam", b"rtsp://127.0.0.1:8554/uav-1", 1, 0)
    s = video_stream_from_wire(msg)
    assert s.uri == "rtsp://127.0.0.1:8554/uav-1" and s.running and s.type_name.endswith("RTSP")


def test_png_round_trip_and_text(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", rgb, {"GPSLatitude": "29.6200000"})
    pixels, text = read_png(tmp_path / "a.png")
    assert (pixels == rgb).all() and text == {"GPSLatitude": "29.6200000"}
    with pytest.raises(ValueError):
        write_png(tmp_path / "b.png", rgb, {"": "x"})


def test_footprint_from_altitude() -> None:
    # 84° horizontal field of view: 2 · 100 · tan(42°) ≈ 180 m wide at 100 m.
    assert footprint_width_m(100.0) == pytest.approx(2 * 100 * math.tan(math.radians(42)))


def test_plain_tile_without_a_district() -> None:
    img = render(None, 106.6, 29.62, 50.0, 0.0, size_px=32)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert (img[..., 1] > img[..., 2]).all()  # terrain green, no water


def test_sim_capture_sequence_and_files(tmp_path: Path) -> None:
    cam = SimCamera(name="c", images_dir=tmp_path, utc_now=lambda: NOW)
    pose = CameraPose(29.62, 106.6, 230.0, 30.0, 200.0, 90.0, 5000)
    result, out = cam.command(mav.MAV_CMD_IMAGE_START_CAPTURE, (0, 0, 1, 1, 0, 0, 0), None, pose)
    assert result == mav.MAV_RESULT_ACCEPTED and out[0].image_index == 0
    # the same sequence again (a retransmission): acknowledged, no second photo
    result, again = cam.command(mav.MAV_CMD_IMAGE_START_CAPTURE, (0, 0, 1, 1, 0, 0, 0), None, pose)
    assert result == mav.MAV_RESULT_ACCEPTED and again[0] is out[0] and len(cam.captures) == 1
    _, text = read_png(tmp_path / "c-00000.png")
    assert float(text["GPSAltitude"]) == 230.0 and text["Creation Time"] == NOW.isoformat()
    assert float(text["FootprintWidth"]) == pytest.approx(footprint_width_m(30.0), abs=0.1)
    result, _ = cam.command(mav.MAV_CMD_IMAGE_START_CAPTURE, (0, 2, 5, 0, 0, 0, 0), None, pose)
    assert result == mav.MAV_RESULT_UNSUPPORTED  # interval capture not simulated
    assert not cam.handles(mav.MAV_CMD_REQUEST_MESSAGE,
                           (mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, 0))
