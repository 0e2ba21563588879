"""Which rule assesses which sensor: the thin risk step between ingest and incidents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sensors.model import Reading
from sensors.registry import SensorSpec

from .rules import Assessment, RainThresholds, assess_rainstorm, assess_river_level, rain_accumulations


def assess(spec: SensorSpec, reading: Reading, *, history: Sequence[tuple[datetime, float]] = (),
           approach_m: float = 1.0) -> Assessment | None:
    """Assess one accepted reading; ``history`` is the gauge's (time, mm) window for rain.

    Rain accumulations are taken at the newest reading's time, so a late reading
    recomputes the windows it falls in. A gauge's ``approach_m`` threshold overrides the
    service default.
    """
    th = spec.thresholds
    if spec.kind == "river_level" and reading.quantity == "level":
        return assess_river_level(
            spec.sensor_id, reading.value, warning_m=th["warning_m"], guaranteed_m=th["guaranteed_m"],
            historical_max_m=th["historical_max_m"], approach_m=th.get("approach_m", approach_m),
            datum=spec.datum)
    if spec.kind == "rain_gauge" and reading.quantity == "rain":
        window = list(history) or [(reading.time, reading.value)]
        times = [t for t, _ in window]
        amounts = [v for _, v in window]
        acc = rain_accumulations(times, amounts, max(times))
        return assess_rainstorm(spec.sensor_id, acc, RainThresholds.from_mapping(th))
    return None
