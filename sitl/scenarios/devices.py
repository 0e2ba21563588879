"""Run a district's scripted scenario on simulated MQTT devices."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import yaml

from sensors.devices import run_devices
from sensors.registry import Registry, SensorSpec

from .flood import DEFAULT_SCENARIO
from .script import Scenario

__all__ = ["run_scenario_sensors", "scenario_start"]

DEFAULT_TIMEZONE = "Asia/Shanghai"


class _Clock(Protocol):
    def now(self) -> datetime: ...


def scenario_start(now: datetime, start_local_h: float | None, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """When scenario hour 0 falls: ``now``, or the next local ``start_local_h`` o'clock at or after it.

    A scenario that states its local start time (its noons must be local noons, its leak happen
    by day) waits for it; until then its devices report the scenario's opening values.
    """
    if start_local_h is None:
        return now
    local = now.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight + timedelta(hours=start_local_h)
    if start < local:
        start += timedelta(days=1)
    return start.astimezone(now.tzinfo)


def _timezone(district_dir: Path) -> str:
    try:
        data = yaml.safe_load((district_dir / "district.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return DEFAULT_TIMEZONE
    tz = data.get("timezone") if isinstance(data, dict) else None
    return tz if isinstance(tz, str) else DEFAULT_TIMEZONE


async def run_scenario_sensors(district_dir: Path, *, broker_url: str, clock: _Clock,
                               scenario: str = DEFAULT_SCENARIO, start: datetime | None = None) -> None:
    """Publish every sensor of ``district_dir`` as scenario ``scenario`` of its ``scenario.yaml``
    scripts it, until cancelled.

    Each report is one SenML pack with the records of the sensor's kind (registry units),
    faults applied, and the health records ``battery`` and ``rssi``. Scenario hour 0 is
    ``start``, by default now on ``clock`` or, for a scenario with a ``start_local`` time, the
    next such local time (``scenario_start``); the devices stamp their readings with the same
    clock, so the service must share it. A scenario that names a sensor the registry lacks, or
    of the wrong kind, fails here with ``ScenarioError``.
    """
    registry = Registry.from_geojson(district_dir / "sensors.geojson")
    script = Scenario.from_yaml(district_dir / "scenario.yaml", scenario)
    script.validate(registry)
    begin = start if start is not None else scenario_start(clock.now(), script.start_local_h,
                                                             _timezone(district_dir))
    specs = [spec for spec in registry.values() if script.reports(spec)]

    def value_at(spec: SensorSpec, sim_time: datetime) -> dict[str, float] | None:
        return script.records_at(spec, sim_time, start=begin)

    speed = getattr(clock, "speed", 1.0)
    await run_devices(broker_url, specs, value_at, speed=speed, clock=clock.now)
