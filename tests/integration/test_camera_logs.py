"""Camera, gimbal and on-board logs: uav.Vehicle against the simulator over real UDP."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from sitl.camera import read_png
from sitl.faults import Faults
from sitl.scenarios.yubei.generate import generate
from sitl.vehicle_sim import SimVehicle
from uav.errors import LogDownloadRefused
from uav.vehicle import Vehicle

from tests.fixtures_sim import vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.60, 29.62, 180.0  # on the Yangtze bank at Cuntan
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 25.0  # a ceiling for a loaded 2-core machine, not a measurement


def _one(**kw: Any) -> AbstractAsyncContextManager[tuple[Vehicle, SimVehicle]]:
    return vehicle_and_sim("copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0,
                           ready_within_s=DEADLINE_S, **kw)


async def _fly_and_land(vehicle: Vehicle, sim: SimVehicle) -> None:
    await vehicle.set_mode("GUIDED")
    await vehicle.arm()
    await vehicle.takeoff(20)
    await vehicle.wait_for(lambda t: t.alt_rel_m > 18, DEADLINE_S)
    await vehicle.land()
    await vehicle.wait_for(lambda t: not t.armed, DEADLINE_S)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("district"))


async def test_look_at_is_acknowledged_and_points_the_gimbal() -> None:
    async with _one() as (vehicle, sim):
        await vehicle.look_at(HOME_LON + 0.001, HOME_LAT + 0.001, 200.0)
        assert sim.camera.roi == pytest.approx((HOME_LAT + 0.001, HOME_LON + 0.001, 200.0))
        await vehicle.clear_roi()
        assert sim.camera.roi is None


async def test_photo_has_the_vehicle_position_and_a_geotagged_png(tmp_path: Path,
                                                                  district: Path) -> None:
    async with _one(images_dir=tmp_path / "images", district_dir=district) as (vehicle, sim):
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.takeoff(30)
        await vehicle.wait_for(lambda t: t.alt_rel_m > 28, DEADLINE_S)
        image = await vehicle.take_photo()
        assert image.ok and image.image_index == 0
        assert image.lat_deg == pytest.approx(sim.lat, abs=1e-5)
        assert image.lon_deg == pytest.approx(sim.lon, abs=1e-5)
        assert image.alt_rel_m == pytest.approx(30, abs=2.5)
        assert image.time_utc is not None
        path = Path(unquote(urlparse(image.file_url).path))
        assert image.file_url.startswith("file://") and path.exists()
        pixels, text = read_png(path)
        assert pixels.shape == (256, 256, 3)
        assert float(text["GPSLatitude"]) == pytest.approx(image.lat_deg, abs=1e-6)
        assert float(text["GPSLongitude"]) == pytest.approx(image.lon_deg, abs=1e-6)
        assert float(text["GPSAltitude"]) == pytest.approx(image.alt_amsl_m, abs=0.01)
        # Home is on the Yangtze's bank: the river shows in the picture.
        water = (pixels == (64, 108, 160)).all(axis=2).mean()
        assert water > 0.05
        second = await vehicle.take_photo()
        assert second.image_index == 1
        assert [i.image_index for i in vehicle.images] == [0, 1]


async def test_video_stream_when_configured() -> None:
    uri = "rtsp://127.0.0.1:8554/uav-1"
    async with _one(video_uri=uri) as (vehicle, _sim):
        stream = await vehicle.video_stream()
        assert stream is not None and stream.uri == uri and stream.type_name.endswith("RTSP")
        assert stream.resolution_h_px > 0 and stream.framerate_hz > 0


async def test_no_video_stream_is_none() -> None:
    async with _one() as (vehicle, _sim):
        assert await vehicle.video_stream(timeout_s=0.5) is None


@pytest.mark.parametrize("drop_pct", [0, 20])
async def test_flight_log_downloads_whole(tmp_path: Path, drop_pct: float) -> None:
    # The loss is on the log protocol only. A flight under loss would retry a command whose
    # ACK was lost on a vehicle that has moved on (ArduPilot refuses a takeoff once climbing,
    # and at 30x DISARM_DELAY disarms before the retried arm, which opens a second log); which
    # ACK the seeded loss hits depends on how the run is timed.
    faults = Faults(drop_tx_pct=drop_pct, seed=11)
    async with _one(faults=faults) as (vehicle, sim):
        # ArduPilot sends logs only to a ground station it hears (HEARTBEAT_GRACE_S); the
        # link's periodic heartbeat may not have reached the just-heard vehicle yet.
        vehicle.link.send_heartbeat()
        assert await vehicle.log_entries() == []
        faults.drop_tx_pct = 0.0
        await _fly_and_land(vehicle, sim)
        faults.drop_tx_pct = drop_pct
        entries = await vehicle.log_entries()
        assert len(entries) == 1 and entries[0].id == 1
        assert entries[0].size_bytes == len(sim.dataflash.logs[0].data) > 1000
        seen: list[int] = []
        dest = await vehicle.download_log(1, tmp_path / "flight.log",
                                          progress=lambda got, size: seen.append(got))
        assert dest.read_bytes() == bytes(sim.dataflash.logs[0].data)
        assert seen[-1] == entries[0].size_bytes
        if drop_pct:
            assert sim.counters["tx_dropped_fault"] > 0


async def test_log_download_refused_while_armed(tmp_path: Path) -> None:
    async with _one() as (vehicle, _sim):
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        with pytest.raises(LogDownloadRefused):
            await vehicle.log_entries()
