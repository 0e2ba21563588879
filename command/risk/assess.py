"""Which model assesses which sensor: the step between ingest and incidents. Pure.

Each sensor kind's assessed record goes to its hazard model with the sensor's recent
history (the runtime keeps it); the verdict is an ``Assessment`` with reasons a person can
read and, in ``extra``, the model outputs an incident keeps (trend forecasts, failure times).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sensors.model import Reading
from sensors.registry import SensorSpec

from . import chemical, landslide
from .flood import DEFAULT_HORIZON_H, FloodError, RatingCurve, RiverThresholds, forecast_by_trend, route_to_downstream
from .rules import Assessment, Level, RainThresholds, assess_rainstorm, assess_river_level, rain_accumulations

__all__ = ["ASSESSED", "ROUTED_STALE_H", "add_routed_forecast", "assess"]

# The record of each kind that a hazard model reads (the others are shown, and used as context).
ASSESSED: Mapping[str, frozenset[str]] = {
    "river_level": frozenset({"level"}),
    "reservoir_level": frozenset({"level"}),
    "rain_gauge": frozenset({"rain"}),
    "gnss_displacement": frozenset({"horizontal"}),
    "crack_meter": frozenset({"opening"}),
    "gas_detector": frozenset({"nh3", "h2s", "cl2", "voc"}),
}

# A monitored slope creeps: Xu et al.'s "attention" grade (constant-velocity stage) is its
# normal state and is shown on the sensor; an incident opens from "caution" (initial
# acceleration, yellow) upwards. A project choice, so that every monitored slope does not
# hold a permanent blue incident.
LANDSLIDE_MIN_INCIDENT = Level.YELLOW
_SLOPE_MIN_POINTS = 6


# A routed forecast needs an upstream record reaching up to the reading: a gauge silent for
# longer than this (a dozen 5-minute reports) no longer tells what is coming (a project choice).
ROUTED_STALE_H = 1.0
_PEAK_TOLERANCE_M = 0.01


def assess(spec: SensorSpec, reading: Reading, *, history: Sequence[tuple[datetime, float]] = (),
           approach_m: float = 1.0, upstream_history: Sequence[tuple[datetime, float]] | None = None
           ) -> Assessment | None:
    """Assess one accepted reading; ``history`` is the sensor's (time, value) series of that record.

    Rain accumulations are taken at the newest reading's time, so a late reading
    recomputes the windows it falls in. A gauge's ``approach_m`` threshold overrides the
    service default. A river gauge with ``routing`` also gets the level routed from its
    upstream gauge when ``upstream_history`` (that gauge's levels) is given.
    """
    th = spec.thresholds
    if spec.kind in ("river_level", "reservoir_level") and reading.quantity == "level":
        a = assess_river_level(
            spec.sensor_id, reading.value, warning_m=th["warning_m"], guaranteed_m=th["guaranteed_m"],
            historical_max_m=th["historical_max_m"], approach_m=th.get("approach_m", approach_m),
            datum=spec.datum)
        a = _with_trend(a, spec, reading, history, approach_m)
        if upstream_history is not None and spec.properties.get("routing"):
            a = add_routed_forecast(a, spec, reading, upstream_history, approach_m=approach_m)
        return a
    if spec.kind == "rain_gauge" and reading.quantity == "rain":
        window = list(history) or [(reading.time, reading.value)]
        times = [t for t, _ in window]
        amounts = [v for _, v in window]
        acc = rain_accumulations(times, amounts, max(times))
        return assess_rainstorm(spec.sensor_id, acc, RainThresholds.from_mapping(th))
    if (spec.kind, reading.quantity) in (("gnss_displacement", "horizontal"), ("crack_meter", "opening")):
        return assess_slope(spec, history or [(reading.time, reading.value)])
    if spec.kind == "gas_detector" and reading.quantity in ASSESSED["gas_detector"]:
        return assess_gas_reading(spec, reading)
    return None


def assess_gas_reading(spec: SensorSpec, reading: Reading) -> Assessment:
    """A detector's ppm against the substance's alarm levels (the site's overrides first).

    Registry thresholds ``{substance}_{colour}_ppm`` (e.g. ``nh3_yellow_ppm``) override
    ``command.risk.chemical``'s defaults (GB/T 50493-2019 alarms, AEGL-2, NIOSH IDLH).
    """
    prefix = f"{reading.quantity}_"
    overrides = {f"{k[len(prefix):-4]}_ppm": v for k, v in spec.thresholds.items()
                 if k.startswith(prefix) and k.endswith("_ppm")}
    g = chemical.assess_gas(spec.sensor_id, reading.quantity, reading.value,
                            chemical.GasThresholds.from_mapping(reading.quantity, overrides))
    site = spec.properties.get("site")
    extra = {"substance": g.substance, "ppm": g.value, "site": site if isinstance(site, str) else None}
    return Assessment("chemical_leak", g.level, spec.sensor_id, g.value, "ppm", g.reason, g.reason_zh,
                      threshold=g.threshold, note=g.note, note_zh=g.note_zh, extra=extra)


def _river_thresholds(spec: SensorSpec, approach_m: float) -> RiverThresholds:
    th = spec.thresholds
    return RiverThresholds(warning_m=th["warning_m"], guaranteed_m=th["guaranteed_m"],
                           historical_max_m=th["historical_max_m"], approach_m=th.get("approach_m", approach_m))


def _with_trend(a: Assessment, spec: SensorSpec, reading: Reading, history: Sequence[tuple[datetime, float]],
                approach_m: float) -> Assessment:
    """Add the rate of rise and the hours to the next thresholds (trend extrapolation)."""
    series = sorted(({t: v for t, v in history if t <= reading.time} | {reading.time: reading.value}).items())
    if len(series) < 2:
        return a
    thresholds = _river_thresholds(spec, approach_m)
    f = forecast_by_trend([t for t, _ in series], [v for _, v in series], thresholds)
    if math.isnan(f.rise_m_per_h):
        return a
    extra = {"rise_m_per_h": round(f.rise_m_per_h, 3), "hours_to_warning": _r(f.hours_to_warning),
             "hours_to_guaranteed": _r(f.hours_to_guaranteed),
             "hours_to_historical_max": _r(f.hours_to_historical_max), "window_h": f.window_h}
    reason, reason_zh = a.reason, a.reason_zh
    trend = "rising" if f.rise_m_per_h > 0 else "falling" if f.rise_m_per_h < 0 else "steady"
    reason += f"; {trend} {abs(f.rise_m_per_h):.2f} m/h"
    reason_zh += f"；{'上涨' if f.rise_m_per_h > 0 else '回落' if f.rise_m_per_h < 0 else '平稳'}" \
                 f"{abs(f.rise_m_per_h):.2f} 米/小时"
    for hours, name, name_zh in ((f.hours_to_warning, "warning", "警戒水位"),
                                 (f.hours_to_guaranteed, "guaranteed", "保证水位")):
        if hours is not None:
            reason += f", {name} level in ~{hours:.1f} h at this rate"
            reason_zh += f"，按此速率约 {hours:.1f} 小时达{name_zh}"
            break
    return replace(a, reason=reason, reason_zh=reason_zh, extra=extra)


def add_routed_forecast(a: Assessment, spec: SensorSpec, reading: Reading,
                        upstream: Sequence[tuple[datetime, float]], *, approach_m: float = 1.0) -> Assessment:
    """Add the level routed from the upstream gauge (Muskingum) to a downstream gauge's assessment.

    ``upstream`` is the upstream gauge's (time, level) record; readings after ``reading`` are
    left out, so the forecast is the one that could be made at the reading's time. A forecast
    informs, it never raises the level: ``extra["routed"]`` (peak, hours to each threshold from
    the reading's time, K and X) and a clause of the reason. When none can be made (too short or
    stale an upstream record, bad parameters) the rest stays as it was and
    ``extra["routed_error"]`` says why.
    """
    routing = spec.properties.get("routing")
    if not routing:
        return a
    try:
        routed, peak_time = _routed(spec, reading, routing, upstream, approach_m)
    except FloodError as err:
        return replace(a, extra={**(a.extra or {}), "routed_error": str(err)})
    reason = (f"{a.reason}; routed from {routed['upstream']} (Muskingum K={routed['k_h']:g} h, X={routed['x']:g}): "
              f"peak {routed['peak_level_m']:.1f} m at {peak_time:%H:%M} UTC")
    reason_zh = (f"{a.reason_zh}；由上游{routed['upstream']}演算（马斯京根法 K={routed['k_h']:g} 小时，"
                 f"X={routed['x']:g}）：{peak_time:%H:%M}（UTC）达峰 {routed['peak_level_m']:.1f} 米")
    for name, name_zh in (("warning", "警戒水位"), ("guaranteed", "保证水位"), ("historical_max", "历史最高水位")):
        hours = routed[f"hours_to_{name}"]
        if hours is not None:
            reason += f", {name.replace('_', ' ')} level in ~{hours:.1f} h"
            reason_zh += f"，约 {hours:.1f} 小时达{name_zh}"
            break
    return replace(a, reason=reason, reason_zh=reason_zh, extra={**(a.extra or {}), "routed": routed})


def _routed(spec: SensorSpec, reading: Reading, routing: Mapping[str, Any],
            upstream: Sequence[tuple[datetime, float]], approach_m: float) -> tuple[dict[str, Any], datetime]:
    """The routed forecast as ``extra["routed"]``, and its peak time; FloodError says why there is none."""
    try:
        up = str(routing["upstream"])
        k_h, x, dt_h = float(routing["k_h"]), float(routing["x"]), float(routing["dt_h"])
        up_rating = RatingCurve.from_mapping(routing["upstream_rating"])
        down_rating = RatingCurve.from_mapping(routing["rating"])
    except KeyError as err:
        raise FloodError(f"routing lacks {err.args[0]}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, FloodError):
            raise
        raise FloodError(f"routing parameters must be numbers: {err}") from None
    series = sorted({t: v for t, v in upstream if t <= reading.time and math.isfinite(v)}.items())
    if len(series) < 2:
        raise FloodError(f"too little upstream record: {len(series)} level(s) from {up} up to this reading")
    span_h = (series[-1][0] - series[0][0]).total_seconds() / 3600.0
    # The reach starts in steady state at the first upstream reading; over a record shorter
    # than the travel time K that assumed start-up, not the observed wave, sets the forecast.
    if span_h < k_h:
        raise FloodError(f"too little upstream record: {up}'s levels span {span_h:.1f} h, less than "
                         f"K = {k_h:g} h (the reach's travel time)")
    lag_h = (reading.time - series[-1][0]).total_seconds() / 3600.0
    if lag_h > ROUTED_STALE_H:
        raise FloodError(f"{up}'s newest level is {lag_h:.1f} h older than this reading: no current forecast")
    f = route_to_downstream(
        [t for t, _ in series], [v for _, v in series], upstream_rating=up_rating, downstream_rating=down_rating,
        thresholds=_river_thresholds(spec, approach_m), k_h=k_h, x=x, dt_h=dt_h,
        horizon_h=float(routing.get("horizon_h") or DEFAULT_HORIZON_H),
        lateral_m3s=float(routing.get("lateral_m3s") or 0.0))

    def from_reading(hours: float | None) -> float | None:
        # the forecast counts from the newest upstream reading, at most ROUTED_STALE_H before this one
        return None if hours is None else _r(max(hours - lag_h, 0.0))

    # Upstream held at its last level, a rising reach approaches its peak slowly: the peak's time
    # is when the routed level first comes within a centimetre (a gauge's resolution) of it.
    ahead = [(t, h) for t, h in zip(f.times, f.downstream_level_m, strict=True) if t >= f.now]
    peak_time = next((t for t, h in ahead if h >= f.peak_level_m - _PEAK_TOLERANCE_M), f.peak_time)
    return {"upstream": up, "peak_level_m": round(f.peak_level_m, 2), "peak_time": peak_time.isoformat(),
            "hours_to_warning": from_reading(f.hours_to_warning),
            "hours_to_guaranteed": from_reading(f.hours_to_guaranteed),
            "hours_to_historical_max": from_reading(f.hours_to_historical_max),
            "k_h": k_h, "x": x, "dt_h": dt_h, "level_now_m": round(f.level_now_m, 2),
            "upstream_time": f.now.isoformat()}, peak_time


def assess_slope(spec: SensorSpec, history: Sequence[tuple[datetime, float]]) -> Assessment:
    """Improved tangent angle (Xu et al. 2009) and inverse-velocity failure time (Fukuzono 1985)."""
    points = sorted(dict(history).items())
    what = "displacement" if spec.kind == "gnss_displacement" else "crack opening"
    what_zh = "位移" if spec.kind == "gnss_displacement" else "裂缝"
    if len(points) < _SLOPE_MIN_POINTS:
        return Assessment("landslide", Level.NONE, spec.sensor_id, math.nan, "mm/day",
                          f"Too few readings yet to judge the slope's {what} ({len(points)})",
                          f"{what_zh}监测数据不足（{len(points)} 条），暂不研判")
    series = landslide.displacement_series([t for t, _ in points], [v for _, v in points])
    v0 = spec.thresholds.get("v0_mm_per_day")
    try:
        tangent = landslide.assess_tangent_angle(series, v0_mm_per_day=v0, smooth_n=3)
    except landslide.LandslideError as err:
        return Assessment("landslide", Level.NONE, spec.sensor_id, math.nan, "mm/day",
                          f"Slope {what} not assessable yet: {err}", f"{what_zh}暂无法研判：{err}")
    velocity = float(tangent.velocities.velocity_mm_per_day[-1])
    angle = float(tangent.angle_deg[-1])
    stage = tangent.stages[-1]
    level = tangent.level if tangent.level >= LANDSLIDE_MIN_INCIDENT else Level.NONE
    forecast = landslide.forecast_failure_time(landslide.velocities(series, smooth_n=3))
    extra: dict[str, object] = {"velocity_mm_per_day": round(velocity, 3), "tangent_angle_deg": round(angle, 2),
                                "stage": stage.value, "v0_mm_per_day": round(tangent.v0_mm_per_day, 3),
                                "tangent_level": tangent.level.colour}
    reason = (f"Slope {what} {velocity:.2f} mm/day, improved tangent angle {angle:.1f}° "
              f"({stage.value.replace('_', ' ')}, Xu et al. 2009: {stage.warning})")
    reason_zh = f"{what_zh}速率 {velocity:.2f} 毫米/天，改进切线角 {angle:.1f}°（{stage.name_zh}，{stage.warning_zh}）"
    if isinstance(forecast, landslide.FailureForecast):
        extra["failure_time"] = forecast.failure_time.isoformat()
        extra["failure_fit_r2"] = round(forecast.r2, 3)
        reason += f"; inverse-velocity failure forecast {forecast.failure_time:%Y-%m-%d %H:%M} UTC"
        reason_zh += f"；反速度法预测失稳时间 {forecast.failure_time:%Y-%m-%d %H:%M}（UTC）"
    return Assessment("landslide", level, spec.sensor_id, velocity, "mm/day", reason, reason_zh, extra=extra)


def _r(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)
