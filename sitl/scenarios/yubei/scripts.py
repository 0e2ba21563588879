"""The synthetic Yubei district's named scenarios, and what a correct system must do in each.

SYNTHETIC: scripted values for demonstration and testing (docs/scenarios.md).

``scenario_file`` builds the content of ``scenario.yaml``: four scenarios (summer_flood,
rainstorm_landslide, heatwave_fire, chemical_leak), each with faulty sensors and an
``expect`` block computed here from the script itself (through ``sitl.scenarios.script``)
and the published thresholds below. The unit tests recompute every expected time with
the risk core (``command.risk``) and check that the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sensors.registry import Registry, SensorSpec

from sitl.scenarios.script import BUCKET_MM, Scenario
from sitl.scenarios.shapes import first_crossing

__all__ = ["GAS_LEVELS_PPM", "GAS_SUBSTANCE_ORDER", "HEATWAVE_DANGER", "RAIN_SIGNALS", "Sites", "scenario_file"]

GAS_SUBSTANCE_ORDER = ("nh3", "h2s", "cl2", "voc")  # the gas_detector kind's record order (nh3 primary)
COLOURS = ("blue", "yellow", "orange", "red")

# --- published thresholds the expectations are computed with --------------------------------
# Rainstorm signals, CMA Order No. 16 (2007), annex: (colour, window h, mm); the highest reached wins.
RAIN_SIGNALS = (("blue", 12, 50.0), ("yellow", 6, 50.0), ("orange", 3, 50.0), ("red", 3, 100.0))
# Hydrological signals (MWR 2013): blue within APPROACH_M below the warning level (the
# service's default ``river_approach_m``), yellow at warning, orange at guaranteed, red at the
# historical maximum.
APPROACH_M = 1.0
# Gas-detector levels (ppm), as in command/risk/chemical.py: GB/T 50493-2019 first/second
# alarm at 100 %/200 % of the GBZ 2.1-2019 OEL (converted at 20 °C, 101.325 kPa), AEGL-2
# (60 min), IDLH (NIOSH 1994); VOC: PID low/high alarm, 25 %/50 % LEL of isobutylene.
GAS_LEVELS_PPM = {"nh3": (28.25, 56.5, 160.0, 300.0), "h2s": (7.06, 14.12, 27.0, 100.0),
                  "cl2": (0.339, 0.679, 2.0, 10.0), "voc": (50.0, 100.0, 4500.0, 9000.0)}
# Improved tangent angle (Xu et al. 2009): yellow above 45°, orange from 80°, red from 85°
# (with a rising acceleration, always so in the inverse-velocity stage); as v / v0 = tan α.
TANGENT_RATIO = (("yellow", math.tan(math.radians(45.0)) * (1.0 + 1e-6)), ("orange", math.tan(math.radians(80.0))),
                 ("red", math.tan(math.radians(85.0))))
# Rain-triggered landslide warning at a known slope (command/forecasts.py): the rain of the
# last D hours (D = 1, 3, 6, 12, 24) against Caine's (1980) intensity-duration threshold
# I = 14.82·D^-0.39 mm/h, i.e. 14.82·D^0.61 mm over D hours; the largest ratio's level by the
# breaks of command/risk/landslide.py (blue 0.5, yellow 0.75, orange 1.0, red 1.5). The service
# stages it at most every periodic evaluation (SLOPE_EVAL_MIN).
SLOPE_WINDOWS_H = (1.0, 3.0, 6.0, 12.0, 24.0)
CAINE_A, CAINE_B = 14.82, -0.39
SLOPE_RATIO = (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5))
SLOPE_EVAL_MIN = 15.0
# House rules (command/runtime.py, command/incidents.py, command/settings.py): a crossing joins an
# open incident of its kind within these distances; two sensors with good data confirm; a
# sensor is stale after three reporting intervals of silence.
JOIN_RADIUS_M = {"rainstorm": 10_000.0, "flood": 30_000.0, "landslide": 1_000.0, "chemical_leak": 2_000.0,
                 "fire": 1_000.0}
CONFIRM_K = 2
STALE_FACTOR = 3.0
MARGIN_MIN = 5.0  # processing allowance on top of the reporting interval

# Heat wave (valley reference height, local noon of each day): a week of Chongqing August heat
# rising to 42 °C (the 2022 heat wave reached 40-45 °C in the city), drier and windier each day.
HEATWAVE_NOON = (  # temp °C, RH %, wind m/s, wind from °, sea-level pressure hPa
    (34.0, 48.0, 2.4, 200.0, 1000.0), (35.5, 45.0, 2.3, 210.0, 999.0), (37.0, 40.0, 2.9, 215.0, 998.0),
    (38.0, 37.0, 3.0, 220.0, 997.0), (39.0, 32.0, 3.7, 225.0, 996.0), (40.0, 30.0, 3.6, 225.0, 995.0),
    (41.0, 28.0, 3.7, 230.0, 994.0), (42.0, 24.0, 4.6, 230.0, 993.0))
RIDGE_WIND_FACTOR = 1.8  # the ridge top's exposure
# Fire-danger rating of the ridge station's noon weather, day by day: the FWI System (Van
# Wagner 1987) from its standard start-up (FFMC 85, DMC 6, DC 15) on day 0, latitude 29.9°N,
# August, and the danger breaks of command/risk/fire.py (EFFIS classes; 三级 high = yellow,
# 四级 very high = orange, 五级 extreme = red). Computed with command.risk.fire.fwi_series;
# tests/unit/test_scenarios.py recomputes it from the script.
HEATWAVE_DANGER = ("moderate", "moderate", "high", "high", "very_high", "very_high", "very_high", "extreme")
_DANGER_COLOUR = {"low": None, "moderate": None, "high": "yellow", "very_high": "orange", "extreme": "red"}


@dataclass(frozen=True, slots=True)
class Sites:
    """Geometric facts of the generated district that the scripts need."""

    slope_id: str
    slope_azimuth_deg: float  # direction of movement (downslope), degrees true
    ignition: tuple[float, float]
    camera_bearing_deg: float  # degrees true from the camera to the ignition point
    chemical_site: str
    leak_source: tuple[float, float]
    gas_detectors: Mapping[str, tuple[float, float]]


# --- the scenarios ------------------------------------------------------------------------------


def _flat_levels(summer: Mapping[str, Any], cuntan_m: float) -> dict[str, Any]:
    out = {sid: {"baseline_m": level["baseline_m"], "noise_m": 0.02} for sid, level in summer["levels"].items()}
    out["cuntan-level"] = {"baseline_m": cuntan_m, "noise_m": 0.02}
    return out


def _slope(sites: Sites, *, accel_start_h: float | None = None, failure_h: float | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"azimuth_deg": sites.slope_azimuth_deg, "dip_deg": 25.0, "creep_mm_per_day": 18.0}
    if accel_start_h is not None:
        block.update(accel_start_h=accel_start_h, failure_h=failure_h, lost_before_min=10.0)
    block["gnss"] = {"gnss-yufengshan-1": {"share": 1.0, "offset_mm": 412.0},
                     "gnss-yufengshan-2": {"share": 0.85, "offset_mm": 351.5},
                     "gnss-yufengshan-3": {"share": 0.6, "offset_mm": 248.2}}
    block["crack"] = {"crack-yufengshan-1": {"share": 0.8, "offset_mm": 63.0}}
    block["tilt"] = {"incl-yufengshan-1": {"deg_per_mm": 0.004, "x0_deg": 1.35, "y0_deg": -0.42}}
    block["soil"] = {"soil-yufengshan-1": {"start_pct": 27.0, "saturation_pct": 42.0, "scale_mm": 40.0,
                                           "gauge": "rain-yufengshan-slope"}}
    return {sites.slope_id: block}


def _weather(rows: Sequence[tuple[float, float, float, float, float]]) -> dict[str, Any]:
    return {"ref_elevation_m": 300.0, "lapse_c_per_km": 6.5, "temp_amplitude_c": 5.0, "rh_amplitude_pct": 15.0,
            "stations": {"wx-tongluo-ridge": {"wind_factor": RIDGE_WIND_FACTOR}},
            "noon": [{"temp_c": t, "rh_pct": rh, "wind_mps": w, "wind_from_deg": d, "pressure_hpa": p}
                     for t, rh, w, d, p in rows]}


_COUNTERS = {"rain-yufengshan-slope": 1287.4}
_BACKGROUND = {"voc": 0.4}


def _summer_flood(summer: Mapping[str, Any], sites: Sites) -> dict[str, Any]:
    out = dict(summer)
    out["description"] = ("The Yangtze rises past its warning and guaranteed levels at Cuntan while a "
                          "rainstorm band crosses Longxing and Luoqi and a convective cell drops over 100 mm "
                          "in 3 h on the Yufengshan slope.")
    rain = dict(summer["rain"])
    storms = [dict(s) for s in rain["storms"]]
    storms[0]["totals_mm"] = {**storms[0]["totals_mm"], "wx-muer-valley": 40.0, "wx-luoqi-valley": 55.0,
                              "wx-tongluo-ridge": 20.0}
    storms.append({"name": "Yufengshan convective cell", "name_zh": "玉峰山强对流单体", "start_h": 2.0, "end_h": 5.0,
                   "totals_mm": {"rain-yufengshan-slope": 112.0}})
    rain["storms"] = storms
    rain["counters_mm"] = dict(_COUNTERS)
    out["rain"] = rain
    out["weather"] = _weather([(27.0, 88.0, 3.0, 60.0, 998.0)])
    out["slope"] = _slope(sites)
    out["gas"] = {"background_ppm": dict(_BACKGROUND)}
    out["faults"] = [
        {"sensor": "rain-gulu", "type": "stuck", "from_h": 1.0, "value": 0.8,
         "why": "the logger repeats its last 5-minute amount"},
        {"sensor": "rain-cizhu", "type": "spike", "from_h": 1.5, "every_h": 3.0, "value": 150.0,
         "why": "electrical noise counted as tips: 150 mm in 5 min, beyond the gauge's 60 mm limit"},
        {"sensor": "rain-xiantao", "type": "dead", "from_h": 6.0, "why": "its battery runs flat"},
    ]
    return out


def _rainstorm_landslide(summer: Mapping[str, Any], sites: Sites) -> dict[str, Any]:
    return {
        "name": "Rainstorm and landslide on the Yufengshan slope (synthetic)",
        "name_zh": "玉峰山边坡暴雨诱发滑坡（合成情景）",
        "description": ("A 12-hour rainstorm soaks the Yufengshan slope; from hour 12 the creeping slope "
                        "accelerates (inverse-velocity stage) and fails at hour 48 above Shanjiao village."),
        "synthetic": True, "duration_h": 50.0,
        "levels": _flat_levels(summer, 176.0),
        "rain": {"interval_s": 300, "bucket_mm": BUCKET_MM, "counters_mm": dict(_COUNTERS), "storms": [
            {"name": "Yufengshan rainstorm", "name_zh": "玉峰山暴雨", "start_h": 4.0, "end_h": 16.0,
             "pulses": 12, "pulse_depth": 0.5,
             "totals_mm": {"rain-yufengshan-slope": 165.0, "rain-longxing": 95.0, "rain-lianglu": 45.0,
                           "rain-muer": 60.0, "rain-luoqi": 45.0, "rain-xiantao": 40.0, "rain-tongjing": 30.0,
                           "rain-gulu": 25.0, "rain-cizhu": 15.0, "rain-wangjia": 35.0,
                           "wx-tongluo-ridge": 80.0, "wx-muer-valley": 58.0, "wx-luoqi-valley": 44.0}}]},
        "weather": _weather([(26.0, 90.0, 2.5, 70.0, 999.0), (27.5, 82.0, 2.0, 90.0, 1001.0),
                             (30.0, 72.0, 1.8, 110.0, 1003.0)]),
        "slope": _slope(sites, accel_start_h=12.0, failure_h=48.0),
        "gas": {"background_ppm": dict(_BACKGROUND)},
        "faults": [
            {"sensor": "rain-wangjia", "type": "stuck", "from_h": 1.0, "value": 1.2,
             "why": "a stuck reed switch repeats 1.2 mm every 5 minutes"},
            {"sensor": "soil-yufengshan-1", "type": "spike", "from_h": 3.0, "every_h": 8.0, "value": 130.0,
             "why": "a cable fault reads 130 % water content, beyond the possible 100 %"},
            {"sensor": "gnss-yufengshan-3", "type": "dead", "from_h": 30.0,
             "why": "its solar panel is covered by mud; the battery runs flat"},
        ],
    }


def _heatwave_fire(summer: Mapping[str, Any], sites: Sites) -> dict[str, Any]:
    days = len(HEATWAVE_NOON)
    ignition_h = 24.0 * (days - 1) + 14.5
    return {
        "name": "Heat wave and forest fire on Tongluo Shan (synthetic)",
        "name_zh": "高温干旱与铜锣山森林火灾（合成情景）",
        "description": (f"{days} days of rising heat, drought and wind (noon values feed the FWI System); "
                        f"on the last afternoon a fire starts on the west flank of Tongluo Shan and is seen by "
                        f"the flame sensor, the smoke detectors and the fire-watch camera."),
        "synthetic": True, "duration_h": 24.0 * days, "start_local": "00:00",
        "levels": _flat_levels(summer, 173.0),
        "rain": {"interval_s": 300, "bucket_mm": BUCKET_MM, "counters_mm": dict(_COUNTERS), "storms": []},
        "weather": _weather(HEATWAVE_NOON),
        "slope": _slope(sites),
        "fire": {"ignition": {"lon": sites.ignition[0], "lat": sites.ignition[1], "at_h": ignition_h},
                 "detectors": {
                     "flame-tongluo-1": {"start_min": 6.0, "rise_min": 6.0, "peak_c": 420.0, "flame_min": 8.0},
                     "smoke-tongluo-1": {"start_min": 5.0, "rise_min": 12.0, "peak": 12.0},
                     "smoke-tongluo-2": {"start_min": 10.0, "rise_min": 15.0, "peak": 6.0},
                     "cam-tongluo-1": {"start_min": 6.0, "rise_min": 8.0, "peak": 0.92,
                                       "bearing_deg": sites.camera_bearing_deg}}},
        "gas": {"background_ppm": dict(_BACKGROUND)},
        "faults": [
            {"sensor": "wx-muer-valley", "type": "stuck", "record": "humidity", "from_h": 50.0, "value": 64.0,
             "why": "a failed humidity element reads 64 % from then on"},
            {"sensor": "smoke-tongluo-2", "type": "spike", "from_h": 60.0, "every_h": 24.0, "to_h": 180.0,
             "value": 250.0, "why": "a failing chamber reads 250 %/m, beyond the possible 100 %/m"},
            {"sensor": "wx-luoqi-valley", "type": "dead", "from_h": 100.0, "why": "its battery runs flat"},
        ],
    }


def _chemical_leak(summer: Mapping[str, Any], sites: Sites) -> dict[str, Any]:
    return {
        "name": "Ammonia leak at the Luoqi riverside chemical plant (synthetic)",
        "name_zh": "洛碛沿江化工厂氨气泄漏（合成情景）",
        "description": ("Ammonia leaks from a flange at the plant from 10:00 local time under a steady "
                        "east-north-easterly wind; the west fence detector, straight downwind, reads most; "
                        "the leak is isolated after three hours."),
        "synthetic": True, "duration_h": 8.0, "start_local": "08:00",
        "levels": _flat_levels(summer, 176.0),
        "rain": {"interval_s": 300, "bucket_mm": BUCKET_MM, "counters_mm": dict(_COUNTERS), "storms": []},
        "weather": _weather([(31.0, 62.0, 2.6, 65.0, 1002.0)]),
        "slope": _slope(sites),
        "gas": {"background_ppm": dict(_BACKGROUND), "leak": {
            "site": sites.chemical_site, "substance": "nh3",
            "source": {"lon": sites.leak_source[0], "lat": sites.leak_source[1]},
            "start_h": 2.0, "rise_min": 40.0, "end_h": 5.0, "fall_min": 30.0, "wind_station": "wx-luoqi-valley",
            "plateau_ppm": {"gas-luoqi-chem-w": 420.0, "gas-luoqi-chem-s": 75.0, "gas-luoqi-chem-n": 6.0,
                            "gas-luoqi-chem-e": 0.8}}},
        "faults": [
            {"sensor": "wx-muer-valley", "type": "stuck", "record": "wind_dir", "from_h": 0.5, "value": 200.0,
             "why": "a seized wind vane"},
            {"sensor": "gas-luoqi-chem-e", "type": "spike", "record": "nh3", "from_h": 1.5, "every_h": 2.0,
             "value": 99999.0, "why": "the transmitter sends its fault code 99999 ppm"},
            {"sensor": "gas-luoqi-chem-n", "type": "dead", "from_h": 1.0, "why": "its power supply fails"},
        ],
    }


def scenario_file(summer: Mapping[str, Any], sensors: Sequence[Mapping[str, Any]], sites: Sites) -> dict[str, Any]:
    """The content of ``scenario.yaml``: the named scenarios with their computed expectations."""
    registry = Registry.from_geojson({"type": "FeatureCollection", "features": list(sensors)})
    builders: dict[str, Callable[[Mapping[str, Any], Sites], dict[str, Any]]] = {
        "summer_flood": _summer_flood, "rainstorm_landslide": _rainstorm_landslide,
        "heatwave_fire": _heatwave_fire, "chemical_leak": _chemical_leak}
    scenarios = {}
    for name, build in builders.items():
        raw = build(summer, sites)
        danger = HEATWAVE_DANGER if name == "heatwave_fire" else None
        raw["expect"] = _expectations(name, raw, registry, danger)
        scenarios[name] = raw
    return {"name": "Yubei scripted scenarios (synthetic)", "name_zh": "渝北区情景脚本（合成）", "synthetic": True,
            "seed": summer["seed"], "default": "summer_flood", "scenarios": scenarios}


# --- expectations -------------------------------------------------------------------------------


def _h(seconds: float) -> float:
    return round(seconds / 3600.0, 3)


def _within(interval_s: float, extra_intervals: float = 0.0) -> float:
    return round((1.0 + extra_intervals) * interval_s / 60.0 + MARGIN_MIN, 1)


def _distance_m(a: SensorSpec, b: SensorSpec) -> float:
    dy = (a.lat - b.lat) * 111_195.0
    dx = (a.lon - b.lon) * 111_195.0 * math.cos(math.radians((a.lat + b.lat) / 2.0))
    return math.hypot(dx, dy)


def _groups(specs: Iterable[SensorSpec], radius_m: float, same: Callable[[SensorSpec, SensorSpec], bool]
            ) -> list[list[SensorSpec]]:
    """Single-linkage groups: sensors within ``radius_m`` of a member (and ``same``) share an incident."""
    groups: list[list[SensorSpec]] = []
    for spec in specs:
        joined = [g for g in groups if any(same(spec, o) and _distance_m(spec, o) <= radius_m for o in g)]
        merged = [spec] + [s for g in joined for s in g]
        groups = [g for g in groups if g not in joined] + [merged]
    return groups


def _entries(kind: str, crossings: Mapping[str, Mapping[str, float]], groups: list[list[SensorSpec]],
             within: Mapping[str, float], basis: Mapping[str, str],
             extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per group and colour reached: crossings[sensor][colour] = seconds."""
    out = []
    for group in groups:
        ids = [s.sensor_id for s in group if s.sensor_id in crossings]
        firsts = sorted(min(crossings[i].values()) for i in ids if crossings[i])
        confirmed = firsts[CONFIRM_K - 1] if len(firsts) >= CONFIRM_K else None
        for colour in COLOURS:
            reached = {i: crossings[i][colour] for i in ids if colour in crossings[i]}
            if not reached:
                continue
            order = sorted(reached, key=lambda i: reached[i])
            entry: dict[str, Any] = {
                "kind": kind, "sensors": order, "level": colour, "after_h": _h(reached[order[0]]),
                "within_min": max(within[i] for i in order),
                "by_sensor_h": {i: _h(reached[i]) for i in order},
                "confirmed_after_h": None if confirmed is None else _h(confirmed),
                "basis": basis[colour]}
            if extra:
                entry.update(extra)
            out.append(entry)
    return out


def _expectations(name: str, raw: dict[str, Any], registry: Registry,
                  danger: Sequence[str] | None) -> dict[str, Any]:
    sc = Scenario.from_mapping({"scenarios": {name: raw}}, name)
    sc.validate(registry)
    faulty = {f.sensor_id for f in sc.faults}
    end_s = (sc.duration_h or 12.0) * 3600.0
    incidents = (_flood(sc, registry, faulty, end_s) + _rainstorm(sc, registry, faulty, end_s)
                 + _slope_rain(sc, registry, faulty, end_s) + _landslide(sc, registry, faulty, end_s)
                 + _chemical(sc, registry, faulty, end_s))
    ratings: list[dict[str, Any]] = []
    if danger is not None:
        ratings = [{"kind": "fire_danger", "sensors": ["wx-tongluo-ridge"], "level": _DANGER_COLOUR[d],
                    "after_h": round(sc.weather.noon_h(day), 3), "within_min": 60.0, "day": day, "rating": d,
                    "basis": "FWI System (Van Wagner 1987) of the station's noon weather, standard start-up on "
                             "day 0; danger breaks and colours of command/risk/fire.py"}
                   for day, d in enumerate(danger)]
        fire_day = int((sc.fire.at_h + (sc.start_local_h or 0.0)) // 24) if sc.fire else 0
        incidents += _fire(sc, registry, faulty, end_s, danger[min(fire_day, len(danger) - 1)])
    quiet, health = _faults(sc, registry)
    return {"incidents": incidents, "ratings": ratings, "quiet": quiet, "health": health}


def _flood(sc: Scenario, registry: Registry, faulty: set[str], end_s: float) -> list[dict[str, Any]]:
    crossings: dict[str, dict[str, float]] = {}
    within: dict[str, float] = {}
    for sid, level in sc.flood.levels.items():
        spec = registry[sid]
        if sid in faulty:
            continue
        th = spec.thresholds
        marks = {"blue": th["warning_m"] - APPROACH_M, "yellow": th["warning_m"], "orange": th["guaranteed_m"],
                 "red": th["historical_max_m"]}
        hits = {c: first_crossing(lambda s, lv=level: lv.level_m(s, noise=False), m, 0.0, end_s)
                for c, m in marks.items()}
        crossings[sid] = {c: t for c, t in hits.items() if t is not None}
        within[sid] = _within(spec.interval_s)
    specs = [registry[s] for s in crossings]
    groups = _groups(specs, JOIN_RADIUS_M["flood"], lambda a, b: a.properties.get("river") == b.properties.get("river"))
    basis = {"blue": f"noise-free level reaches warning − {APPROACH_M:g} m (MWR 2013; service approach_m default)",
             "yellow": "noise-free level reaches the gauge's warning_m (MWR 2013)",
             "orange": "noise-free level reaches the gauge's guaranteed_m (MWR 2013)",
             "red": "noise-free level reaches the gauge's historical_max_m (MWR 2013)"}
    return _entries("flood", crossings, groups, within, basis)


def _rain_level(cumulative: Callable[[float], float]) -> Callable[[float], float]:
    """The CMA Order No. 16 level (0..4) of the rain in the windows ending at time s."""
    def level(s: float) -> float:
        best = 0
        for i, (_, window_h, mm) in enumerate(RAIN_SIGNALS, start=1):
            if cumulative(s) - cumulative(s - window_h * 3600.0) >= mm:
                best = i
        return float(best)
    return level


def _rainstorm(sc: Scenario, registry: Registry, faulty: set[str], end_s: float) -> list[dict[str, Any]]:
    crossings: dict[str, dict[str, float]] = {}
    within: dict[str, float] = {}
    for sid in sc.flood.rain:
        spec = registry[sid]
        if sid in faulty or spec.kind != "rain_gauge":
            continue
        level = _rain_level(lambda s, i=sid: sc.rain_since_start_mm(i, s))
        hits = {c: first_crossing(level, float(k), 0.0, end_s) for k, c in enumerate(COLOURS, start=1)}
        crossings[sid] = {c: t for c, t in hits.items() if t is not None}
        within[sid] = _within(spec.interval_s)
    specs = [registry[s] for s in crossings if crossings[s]]
    groups = _groups(specs, JOIN_RADIUS_M["rainstorm"], lambda a, b: True)
    basis = {c: f"rain in the last {w} h reaches {mm:g} mm (CMA Order No. 16, 2007), from the script's "
                f"continuous accumulation; a report at or after this time shows it"
             for c, w, mm in RAIN_SIGNALS}
    return _entries("rainstorm", crossings, groups, within, basis)


def _slope_rain(sc: Scenario, registry: Registry, faulty: set[str], end_s: float) -> list[dict[str, Any]]:
    """The rain-triggered warning at each scripted slope, from its own gauge's rain.

    The service interpolates the rain at the slope from the gauges in reach (inverse distance,
    power 2); the slope's own gauge stands beside it and dominates, so its rain is the slope's.
    """
    out: list[dict[str, Any]] = []
    for slope_id, slope in sc.slopes.items():
        gauges = {str(p.params["gauge"]) for p in slope.parts.values() if p.role == "soil" and "gauge" in p.params}
        for gauge in sorted(gauges - faulty):
            if gauge not in sc.flood.rain:
                continue

            def ratio(s: float, g: str = gauge) -> float:
                cum = sc.rain_since_start_mm
                return max((cum(g, s) - cum(g, s - d * 3600.0)) / (CAINE_A * d ** (1.0 + CAINE_B))
                           for d in SLOPE_WINDOWS_H)

            hits = {c: first_crossing(ratio, r, 0.0, end_s) for c, r in SLOPE_RATIO}
            crossings = {slope_id: {c: t for c, t in hits.items() if t is not None}}
            if not crossings[slope_id]:
                continue
            within = {slope_id: round(_within(registry[gauge].interval_s) + SLOPE_EVAL_MIN, 1)}
            basis = {c: f"rain at the slope (its gauge {gauge}) reaches {r:g} × Caine's (1980) I-D threshold "
                        f"over some D in {SLOPE_WINDOWS_H} h" for c, r in SLOPE_RATIO}
            out += _entries("landslide", crossings, [[_SlopeRef(slope_id)]], within, basis)
    return out


@dataclass(frozen=True)
class _SlopeRef:
    """A slope (a facility, not a sensor) in an expectation's sensor list."""

    sensor_id: str


def _landslide(sc: Scenario, registry: Registry, faulty: set[str], end_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for slope in sc.slopes.values():
        motion = slope.motion
        if motion.failure_h is None:
            continue
        crossings: dict[str, dict[str, float]] = {}
        within: dict[str, float] = {}
        lost_s = motion.failure_h * 3600.0 - motion.lost_before_min * 60.0
        for sid, part in slope.parts.items():
            if sid in faulty or part.role not in ("gnss", "crack"):
                continue
            spec = registry[sid]
            v0 = spec.thresholds["v0_mm_per_day"]
            share = float(part.params["share"])

            def ratio(s: float, share: float = share, v0: float = v0) -> float:
                return share * motion.velocity_mm_per_day(s) / v0

            hits = {c: first_crossing(ratio, r, 0.0, lost_s) for c, r in TANGENT_RATIO}
            crossings[sid] = {c: t for c, t in hits.items() if t is not None}
            # velocities over 3 intervals, persistence of 2 evaluations, the next report
            within[sid] = _within(spec.interval_s, extra_intervals=4.0)
        groups = _groups([registry[s] for s in crossings], JOIN_RADIUS_M["landslide"], lambda a, b: True)
        basis = {"yellow": "tangent angle atan(v/v0) above 45° (Xu et al. 2009), v0 the sensor's v0_mm_per_day",
                 "orange": "tangent angle reaches 80° (Xu et al. 2009)",
                 "red": "tangent angle reaches 85° with a rising acceleration (Xu et al. 2009, 2011)"}
        out += _entries("landslide", crossings, groups, within, basis,
                        {"failure_h": motion.failure_h, "lost_h": _h(lost_s)})
    return out


def _fire(sc: Scenario, registry: Registry, faulty: set[str], end_s: float, danger: str) -> list[dict[str, Any]]:
    if sc.fire is None:
        return []
    times: dict[str, float] = {}
    for sid in sc.fire.detectors:
        if sid in faulty:
            continue
        spec = registry[sid]
        th = spec.thresholds

        def detected(s: float, spec: SensorSpec = spec, th: Mapping[str, float] = th) -> float:
            r = sc.clean_records(spec, s) or {}
            if spec.kind == "smoke_detector":
                return float(r["obscuration"] >= th["alarm_pct_per_m"])
            if spec.kind == "flame_sensor":
                return float(r["flame"] >= 0.5 or r["temp"] >= th["alarm_c"])
            return float(r["confidence"] >= th["min_confidence"])

        t = first_crossing(detected, 1.0, sc.fire.at_h * 3600.0, end_s, step_s=20.0)
        if t is not None:
            times[sid] = t
    if not times:
        return []
    order = sorted(times, key=lambda i: times[i])
    alone = danger in ("high", "very_high", "extreme")
    confirmed = times[order[0]] if alone else (times[order[1]] if len(order) > 1 else None)
    # the house's fire levels (command/hazards.py): unverified blue; confirmed yellow, orange at
    # very high danger, red at extreme danger
    level = {"very_high": "orange", "extreme": "red"}.get(danger, "yellow") if confirmed is not None else "blue"
    return [{"kind": "fire", "sensors": order, "level": level, "after_h": _h(times[order[0]]),
             "within_min": max(_within(registry[i].interval_s) for i in order),
             "by_sensor_h": {i: _h(times[i]) for i in order},
             "confirmed_after_h": None if confirmed is None else _h(confirmed),
             "basis": (f"detection: smoke obscuration ≥ alarm_pct_per_m, flame ≥ 0.5 or temperature ≥ alarm_c, "
                       f"camera confidence ≥ min_confidence; the day's danger is {danger}, so "
                       + ("one detection confirms (command/risk/fire.py corroborate)" if alone else
                          "two independent detections must agree")
                       + f"; a confirmed fire at {danger} danger is {level} (command/hazards.py)")}]


def _chemical(sc: Scenario, registry: Registry, faulty: set[str], end_s: float) -> list[dict[str, Any]]:
    leak = sc.leak
    if leak is None:
        return []
    crossings: dict[str, dict[str, float]] = {}
    within: dict[str, float] = {}
    levels = dict(zip(COLOURS, GAS_LEVELS_PPM[leak.substance], strict=True))
    for sid in leak.plateau_ppm:
        if sid in faulty:
            continue
        spec = registry[sid]

        def ppm(s: float, spec: SensorSpec = spec) -> float:
            return (sc.clean_records(spec, s) or {}).get(leak.substance, 0.0)

        hits = {c: first_crossing(ppm, m, 0.0, end_s, step_s=20.0) for c, m in levels.items()}
        crossings[sid] = {c: t for c, t in hits.items() if t is not None}
        within[sid] = _within(spec.interval_s)
    groups = _groups([registry[s] for s in crossings if crossings[s]], JOIN_RADIUS_M["chemical_leak"],
                     lambda a, b: True)
    basis = {c: f"{leak.substance.upper()} reaches {m:g} ppm ({c} level of command/risk/chemical.py)"
             for c, m in levels.items()}
    return _entries("chemical_leak", crossings, groups, within, basis)


_FEEDS = {"rain_gauge": ["rainstorm"], "river_level": ["flood"], "reservoir_level": ["flood"],
          "gnss_displacement": ["landslide"], "crack_meter": ["landslide"], "smoke_detector": ["fire"],
          "flame_sensor": ["fire"], "fire_camera": ["fire"], "gas_detector": ["chemical_leak"],
          "weather_station": ["fire_danger"]}


def _faults(sc: Scenario, registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    quiet, health = [], []
    for f in sc.faults:
        spec = registry[f.sensor_id]
        feeds = list(_FEEDS.get(spec.kind, ()))
        if f.type == "dead":
            quiet.append({"sensors": [f.sensor_id], "fault": "dead", "at_most": "none", "kinds": list(feeds),
                          "basis": "silence is missing data, never a reading"})
            health.append({"sensors": [f.sensor_id], "state": "stale", "after_h": f.from_h,
                           "within_min": round(STALE_FACTOR * spec.interval_s / 60.0 + MARGIN_MIN, 1),
                           "basis": f"stale after {STALE_FACTOR:g} reporting intervals of silence"})
            continue
        record = f.record or spec.quantity
        q = spec.quantity_spec(record)
        if f.type == "spike" and q is not None and not q.valid_min <= (f.value or 0.0) <= q.valid_max:
            quiet.append({"sensors": [f.sensor_id], "fault": "spike", "at_most": "none", "kinds": list(feeds),
                          "basis": f"{f.value:g} {q.unit} is outside [{q.valid_min:g}, {q.valid_max:g}]: flagged "
                                   f"bad by the range check, never assessed"})
        else:
            quiet.append({"sensors": [f.sensor_id], "fault": f.type, "at_most": "unverified", "kinds": list(feeds),
                          "basis": ("flagged suspect by the persistence (flatline) check once a window is flat; "
                                    if f.type == "stuck" else "flagged suspect by the step check; ")
                                   + f"one sensor alone never confirms (k = {CONFIRM_K})"})
    return quiet, health
