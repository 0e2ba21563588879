"""Run a district's scripted scenario on simulated MQTT devices."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from sensors.devices import run_devices
from sensors.registry import Registry, SensorSpec

from .flood import FloodScript


class _Clock(Protocol):
    def now(self) -> datetime: ...


async def run_scenario_sensors(district_dir: Path, *, broker_url: str, clock: _Clock) -> None:
    """Publish every scripted sensor of ``district_dir/scenario.yaml`` until cancelled.

    Scenario time starts now on ``clock`` (scaled in a simulation run), and the devices
    stamp their readings with the same clock, so the service must share it.
    """
    registry = Registry.from_geojson(district_dir / "sensors.geojson")
    script = FloodScript.from_yaml(district_dir / "scenario.yaml")
    start = clock.now()
    specs = [spec for spec in registry.values() if spec.sensor_id in script.sensor_ids]

    def value_at(spec: SensorSpec, sim_time: datetime) -> float | None:
        return script.value_at(spec.sensor_id, sim_time, start=start, interval_s=spec.interval_s)

    speed = getattr(clock, "speed", 1.0)
    await run_devices(broker_url, specs, value_at, speed=speed, clock=clock.now)
