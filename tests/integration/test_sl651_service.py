"""An SL 651-2014 field station reporting to the running service: readings are quality-checked,
stored before the station is answered, and open incidents like any other sensor's."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from command.runtime import Service
from command.settings import Settings
from sensors.sl651 import Element
from sensors.sl651_gateway import Sl651Device
from tests.fixtures_service import DEADLINE_S, STOP_DEADLINE_S, district_copy

STATION = "0012345678"


def with_sl651_gauge(folder: Path) -> Path:
    """The Cuntan gauge reports over SL 651 (station 0012345678: Z → level, VT → supply)."""
    path = folder / "sensors.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    for f in data["features"]:
        if f["properties"]["id"] == "cuntan-level":
            f["properties"]["sl651"] = {"station": STATION, "elements": {"Z": "level", "VT": "supply"}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return folder


async def test_an_sl651_station_opens_a_flood_incident(mosquitto, yubei_folder: Path, tmp_path: Path) -> None:
    district = with_sl651_gauge(district_copy(yubei_folder, tmp_path / "district"))
    settings = Settings(broker_url=mosquitto.url, data_dir=tmp_path / "data", district_dir=district, api_token="t",
                        sl651_port=0, sl651_center=1)
    service = Service(settings, district_dir=district)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(DEADLINE_S):
            await service.ready.wait()
        assert service.sl651 is not None
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        clock = lambda: now  # noqa: E731
        async with Sl651Device(host="127.0.0.1", port=service.sl651.port, station=STATION, clock=clock,
                               center=1, reply_timeout_s=10.0) as station:
            await station.report((Element.of("Z", 180.9), Element.of("VT", 12.4)),
                                 observed=now - timedelta(minutes=10))
            # answered only after storing: the reading is there when the confirmation arrives
            stored = service.store.readings("cuntan-level", quantity="level")
            assert [r.value for r in stored] == [pytest.approx(180.9)]
            await station.report((Element.of("Z", 181.4),), observed=now - timedelta(minutes=5))
        incidents = [i for i in service.store.incidents() if i.sensor_id == "cuntan-level"]
        assert len(incidents) == 1 and incidents[0].kind == "flood"
        view = service.incident_view(incidents[0])
        assert view["level"] == "yellow" and view["verification"]["state"] == "unverified"
        assert "rising" in view["reason"]  # two readings: a rate of rise
        health = service.sensing.sensor_state("cuntan-level", service.clock.now())["health"]
        assert health["supply_v"] == pytest.approx(12.4)
        assert service.sl651.stats.confirmations == 2
        # the flood incident carries the extent at the gauge's reach
        (extent,) = service.flood_geojson()["features"]
        assert extent["properties"]["sensor_id"] == "cuntan-level" and extent["properties"]["area_km2"] > 0
        assert extent["geometry"]["type"] == "MultiPolygon" and "flooded area up to" in view["reason"]
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
        if not done:
            for other in asyncio.all_tasks():
                other.print_stack(limit=8)
        assert done, "the service did not stop"
