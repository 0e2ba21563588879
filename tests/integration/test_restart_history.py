"""What the service reloads from its database at start-up: a gauge's rain history holds its
rain only (not the battery or signal records stored beside it), and QC sees the same readings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from command.clock import ManualClock
from command.runtime import Service
from command.settings import Settings
from sensors.model import Reading
from tests.fixtures_service import district_copy

T = datetime(2026, 7, 10, 6, 0, tzinfo=timezone.utc)


def service(district: Path, data: Path) -> Service:
    settings = Settings(broker_url="mqtt://127.0.0.1:9", data_dir=data, district_dir=district, api_token="t")
    return Service(settings, district_dir=district, clock=ManualClock(T))


def test_a_restart_reloads_rain_only(yubei_folder: Path, tmp_path: Path) -> None:
    district = district_copy(yubei_folder, tmp_path / "district")
    first = service(district, tmp_path / "data")
    first.ingest_http([
        Reading("rain-luoqi", "rain", 1.5, "mm", T - timedelta(minutes=10)),
        Reading("rain-luoqi", "battery", 87.0, "%", T - timedelta(minutes=10)),
        Reading("rain-luoqi", "rssi", -71.0, "dBm", T - timedelta(minutes=10)),
        Reading("rain-luoqi", "rain", 0.5, "mm", T - timedelta(minutes=5)),
    ])
    first.store.close()
    again = service(district, tmp_path / "data")
    assert list(again._rain["rain-luoqi"]) == [(T - timedelta(minutes=10), 1.5), (T - timedelta(minutes=5), 0.5)]
    assert [r.value for r in again.sensing.qc.history("rain-luoqi", "rain")] == [1.5, 0.5]
    assert again.sensing.newest("rain-luoqi", "battery").value == 87.0  # type: ignore[union-attr]
    again.store.close()
