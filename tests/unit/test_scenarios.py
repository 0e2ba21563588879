"""The named scenarios of the synthetic Yubei district: sensors, scripts, faults and expectations.

Every expected time in ``scenario.yaml`` is recomputed here from the published values with
the risk core (``command.risk``), the quality checks (``sensors``) and the incident rules.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from command.district import District
from command.incidents import Member, verification
from command.risk import landslide
from command.risk.chemical import DEFAULT_GAS_THRESHOLDS, gas_level
from command.risk.fire import Detection, corroborate, danger_level, fwi_series, warning_level
from command.risk.rules import Level, rain_accumulations, rainstorm_signal, river_level_signal
from sensors.devices import SimulatedSensor
from sensors.health import HealthTracker
from sensors.kinds import GAS_SUBSTANCES, KINDS
from sensors.model import Reading
from sensors.qc import check
from sensors.quality import QualityControl
from sensors.registry import Registry, SensorSpec
from sensors.senml import SenMLRecord, decode, encode, split_name
from sensors.topics import senml_topic
from sitl.scenarios import devices as scenario_devices
from sitl.scenarios.faults import Fault
from sitl.scenarios.flood import FloodScript, ScenarioError, Storm
from sitl.scenarios.script import Scenario, scenario_names
from sitl.scenarios.slope import SlopeMotion
from sitl.scenarios.yubei import generate
from sitl.scenarios.yubei.scripts import GAS_LEVELS_PPM, HEATWAVE_DANGER

START = datetime(2025, 8, 1, 16, 0, tzinfo=UTC)  # local midnight (UTC+8) of 2 August
NAMES = ("summer_flood", "rainstorm_landslide", "heatwave_fire", "chemical_leak")
ORIGINAL_SENSORS = ("cuntan-level", "yulin-level", "rain-lianglu", "rain-xiantao", "rain-wangjia", "rain-gulu",
                    "rain-cizhu", "rain-muer", "rain-longxing", "rain-tongjing", "rain-luoqi")
# sha256 of the original eleven sensor features (canonical JSON): the hazard sensors were added
# without changing them; since then only the gauges' terrain_offset_m (their datum against the
# terrain's, for flood extents) and the Longxing gauge's routing (Muskingum, from the upper Yulin
# gauge appended after them) and its surface velocity (a radar gauge, for boats) were added. They must not change by accident.
ORIGINAL_SENSORS_SHA256 = "a5207c6592d9616168216cebea8c15e4d43fc327fa4fe2a3fb57ce2e4d350d95"
COLOUR = {"blue": Level.BLUE, "yellow": Level.YELLOW, "orange": Level.ORANGE, "red": Level.RED}
OFFSETS = (0.0, 0.41, 0.97)  # where in its interval a device's first report falls


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("yubei-scenarios"))


@pytest.fixture(scope="module")
def district(folder: Path) -> District:
    return District.load(folder)


@pytest.fixture(scope="module")
def registry(folder: Path) -> Registry:
    return Registry.from_geojson(folder / "sensors.geojson")


@pytest.fixture(scope="module")
def scenarios(folder: Path) -> dict[str, Scenario]:
    return {name: Scenario.from_yaml(folder / "scenario.yaml", name) for name in NAMES}


def _reports(sc: Scenario, spec: SensorSpec, *, offset: float | None = None, from_h: float = 0.0,
             to_h: float | None = None) -> Iterator[tuple[float, dict[str, float]]]:
    """(seconds, records) of every report the device would publish, as the simulator staggers them."""
    frac = (zlib.crc32(spec.sensor_id.encode()) % 1000) / 1000.0 if offset is None else offset
    t = frac * spec.interval_s
    end_s = (sc.duration_h if to_h is None else to_h) * 3600.0
    while t < from_h * 3600.0:
        t += spec.interval_s
    while t <= end_s:
        recs = sc.records(spec, t)
        if recs is not None:
            yield t, recs
        t += spec.interval_s


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


# --- the file and the registry ------------------------------------------------------------------


def test_file_holds_four_named_synthetic_scenarios(folder: Path, scenarios: dict[str, Scenario]) -> None:
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    assert data["synthetic"] is True and data["default"] == "summer_flood"
    assert scenario_names(folder / "scenario.yaml") == list(NAMES)
    for name, sc in scenarios.items():
        assert data["scenarios"][name]["synthetic"] is True
        assert sc.title.endswith("(synthetic)") and sc.description and sc.name == name
        assert {f.type for f in sc.faults} == {"stuck", "spike", "dead"}, name
        assert sc.expect.incidents and sc.expect.quiet and sc.expect.health, name
    assert "&id" not in (folder / "scenario.yaml").read_text()  # no YAML aliases: plain data


def test_original_sensors_are_unchanged(folder: Path) -> None:
    features = json.loads((folder / "sensors.geojson").read_text())["features"]
    assert [f["properties"]["id"] for f in features[:11]] == list(ORIGINAL_SENSORS)
    text = json.dumps(features[:11], sort_keys=True, ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == ORIGINAL_SENSORS_SHA256


def test_every_kind_is_registered_with_its_properties(registry: Registry, district: District) -> None:
    assert {s.kind for s in registry.values()} == set(KINDS) - {"reservoir_level"}
    facilities = {f.id: f for f in district.facilities}
    weather = registry.of_kind("weather_station")
    assert len(weather) == 3 and all(isinstance(s.properties["elevation_m"], float) for s in weather)
    slope_kinds = ("gnss_displacement", "crack_meter", "inclinometer", "soil_moisture")
    on_slope = [s for s in registry.values() if s.properties.get("slope")]
    assert sorted(s.kind for s in on_slope) == sorted(
        ["gnss_displacement"] * 3 + ["crack_meter", "inclinometer", "soil_moisture", "rain_gauge"])
    for s in on_slope:
        assert facilities[s.properties["slope"]].kind == "landslide_slope"
    assert all(s.kind not in slope_kinds or s.properties.get("slope") for s in registry.values())
    assert registry["rain-yufengshan-slope"].properties["cumulative"] is True
    assert registry["gnss-yufengshan-1"].thresholds == {"v0_mm_per_day": 20.0}
    fire = [s for s in registry.values() if s.kind in ("smoke_detector", "flame_sensor", "fire_camera")]
    assert sorted(s.kind for s in fire) == ["fire_camera", "flame_sensor", "smoke_detector", "smoke_detector"]
    assert all(s.properties["ridge"] == "tongluo" for s in fire)
    gas = registry.of_kind("gas_detector")
    assert len(gas) == 4
    for s in gas:
        site = facilities[s.properties["site"]]
        assert site.kind == "chemical_site"
        assert set(s.properties["substance"]) <= set(GAS_SUBSTANCES)
    layer = district.layers["facilities"]
    [props] = [f["properties"] for f in layer["features"] if f["properties"]["kind"] == "chemical_site"]
    assert set(props["substances"]) == set(GAS_SUBSTANCES) and props["name_zh"]
    assert "synthetic" in props["name"]


def test_positions_are_plausible(registry: Registry, district: District, scenarios: dict[str, Scenario]) -> None:
    t = district.terrain
    for s in registry.values():
        if s.kind != "river_level":  # river gauges stand in the river (Cuntan on the boundary)
            assert district.in_district(s.lon, s.lat), s.sensor_id
            assert not district.on_water(s.lon, s.lat), s.sensor_id
        if "elevation_m" in s.properties:
            assert s.properties["elevation_m"] == pytest.approx(t.elevation_at(s.lon, s.lat), abs=0.2)
    assert registry["wx-tongluo-ridge"].properties["elevation_m"] > 650
    assert all(registry[i].properties["elevation_m"] < 450 for i in ("wx-muer-valley", "wx-luoqi-valley"))
    [slope] = district.facilities_of("landslide_slope")
    [village] = district.facilities_of("village")
    geod = Geod(ellps="WGS84")
    for s in registry.values():
        if s.properties.get("slope"):
            assert geod.inv(slope.lon, slope.lat, s.lon, s.lat)[2] < 400.0
            assert 550.0 < s.properties["elevation_m"] < 750.0
    # the village lies at the foot, down the fall line the script moves the slope along
    az, _, dist = geod.inv(slope.lon, slope.lat, village.lon, village.lat)
    moving = scenarios["rainstorm_landslide"].slopes[slope.id].azimuth_deg
    assert abs((az - moving + 180.0) % 360.0 - 180.0) < 5.0 and 1000.0 < dist < 2000.0
    assert t.elevation_at(slope.lon, slope.lat) - t.elevation_at(village.lon, village.lat) > 200.0
    fire = scenarios["heatwave_fire"].fire
    assert fire is not None and t.elevation_at(fire.lon, fire.lat) > 600.0
    for sid in ("smoke-tongluo-1", "smoke-tongluo-2", "flame-tongluo-1", "cam-tongluo-1"):
        assert registry[sid].properties["elevation_m"] > 600.0
    [plant] = district.facilities_of("chemical_site")
    assert not district.on_water(plant.lon, plant.lat)
    assert any(district.on_water(*geod.fwd(plant.lon, plant.lat, 180.0, d)[:2]) for d in (300.0, 600.0, 900.0))
    for s in registry.of_kind("gas_detector"):
        assert geod.inv(plant.lon, plant.lat, s.lon, s.lat)[2] < 250.0
    leak = scenarios["chemical_leak"].leak
    assert leak is not None
    nearest = min(registry.of_kind("weather_station"), key=lambda s: geod.inv(plant.lon, plant.lat, s.lon, s.lat)[2])
    assert leak.wind_station == nearest.sensor_id


@pytest.mark.parametrize("name", NAMES)
def test_scenario_fits_the_registry(name: str, scenarios: dict[str, Scenario], registry: Registry) -> None:
    sc = scenarios[name]
    sc.validate(registry)
    assert all(sc.reports(spec) for spec in registry.values())  # every sensor publishes in every scenario


# --- quality control of every scripted value -----------------------------------------------------

QC_WINDOWS = {"summer_flood": [(0.0, 12.0)], "rainstorm_landslide": [(0.0, 50.0)],
              "heatwave_fire": [(44.0, 110.0), (170.0, 192.0)], "chemical_leak": [(0.0, 8.0)]}


@pytest.mark.parametrize("name", NAMES)
def test_scripted_values_pass_qc_and_faults_are_flagged(name: str, scenarios: dict[str, Scenario],
                                                        registry: Registry) -> None:
    sc = scenarios[name]
    faults = {(f.sensor_id, f.record or registry[f.sensor_id].quantity): f for f in sc.faults if f.type != "dead"}
    dead = {f.sensor_id: f for f in sc.faults if f.type == "dead"}
    for from_h, to_h in QC_WINDOWS[name]:
        qc = QualityControl(registry.values())
        events = sorted((t, s.sensor_id, recs) for s in registry.values()
                        for t, recs in _reports(sc, s, from_h=from_h, to_h=to_h))
        flagged: dict[tuple[str, str], list[float]] = {}
        seen: dict[tuple[str, str], list[float]] = {}
        for t, sid, recs in events:
            spec = registry[sid]
            if sid in dead:
                assert t < dead[sid].from_h * 3600.0, f"{sid} reported after it died"
            for quantity, value in recs.items():
                q = spec.quantity_spec(quantity)
                assert q is not None, f"{sid} publishes {quantity}, which a {spec.kind} does not report"
                record = SenMLRecord(name=f"urn:dev:yingji:{sid}:{quantity}", time=_at(t), value=float(value),
                                     unit=q.unit)
                got = check(spec, record, topic=senml_topic(sid), now=_at(t))
                assert isinstance(got, Reading), got
                got = qc.review(got)
                seen.setdefault((sid, quantity), []).append(t)
                if got.flag != "good":
                    flagged.setdefault((sid, quantity), []).append(t)
                    assert (sid, quantity) in faults, f"{sid}.{quantity} at {t / 3600:.2f} h: {got.qc}"
        for (sid, quantity), fault in faults.items():
            spec = registry[sid]
            times = seen.get((sid, quantity), [])
            hits = set(flagged.get((sid, quantity), []))
            if fault.type == "spike":
                spikes = [t for t in times if fault.spike_at(t, spec.interval_s)]
                assert set(spikes) == hits, f"{sid}: every spike and only spikes flagged"
            else:  # stuck: flagged from one check window after it stuck, never before it stuck
                window_s = spec.quantity_spec(quantity).flat_window_s  # type: ignore[union-attr]
                late = [t for t in times if t >= max(fault.from_h, from_h) * 3600.0 + window_s + spec.interval_s]
                assert late and set(late) <= hits, f"{sid}: a stuck {quantity} is flagged"
                assert min(hits) >= fault.from_h * 3600.0


# --- expected incidents, recomputed with the risk core ----------------------------------------------


def test_flood_expectations_match_the_hydrological_signals(scenarios: dict[str, Scenario],
                                                           registry: Registry) -> None:
    sc = scenarios["summer_flood"]
    floods = [e for e in sc.expect.incidents if e.kind == "flood"]
    assert {(e.sensors[0], e.level) for e in floods} == {
        ("cuntan-level", "blue"), ("cuntan-level", "yellow"), ("cuntan-level", "orange"),
        ("yulin-level", "blue"), ("yulin-level", "yellow")}
    for e in floods:
        spec = registry[e.sensors[0]]
        th = spec.thresholds

        def signal(level_m: float) -> Level:
            return river_level_signal(level_m, warning_m=th["warning_m"], guaranteed_m=th["guaranteed_m"],
                                      historical_max_m=th["historical_max_m"], approach_m=1.0)

        script = sc.flood.levels[spec.sensor_id]
        at = e.after_h * 3600.0
        assert signal(script.level_m(at - 60.0, noise=False)) < COLOUR[e.level]  # type: ignore[index]
        assert signal(script.level_m(at + 5.0, noise=False)) >= COLOUR[e.level]  # type: ignore[index]
        for offset in OFFSETS:  # the published, noisy reports
            first = next(t for t, r in _reports(sc, spec, offset=offset) if signal(r["level"]) >= COLOUR[e.level])
            assert e.after_h - 2 / 60 <= first / 3600.0 <= e.deadline_h, (e, offset, first / 3600)
        assert e.confirmed_after_h is None  # one gauge per river: a crew or a drone must confirm


def _rain_series(sc: Scenario, spec: SensorSpec, offset: float) -> list[tuple[float, float]]:
    """(seconds, mm in the interval) as the service sees it: cumulative gauges by their increments."""
    out, last = [], None
    for t, recs in _reports(sc, spec, offset=offset):
        if "rain_total" in recs:
            if last is not None:
                out.append((t, round(recs["rain_total"] - last, 3)))
            last = recs["rain_total"]
        else:
            out.append((t, recs["rain"]))
    return out


def test_rainstorm_expectations_match_cma_windows(scenarios: dict[str, Scenario], registry: Registry) -> None:
    checked = 0
    for name in ("summer_flood", "rainstorm_landslide"):
        sc = scenarios[name]
        for e in (x for x in sc.expect.incidents if x.kind == "rainstorm"):
            for sid, at_h in e.by_sensor_h.items():
                for offset in OFFSETS:
                    series = [(t, a) for t, a in _rain_series(sc, registry[sid], offset) if t < (at_h + 1) * 3600]
                    times = [_at(t) for t, _ in series]
                    amounts = [a for _, a in series]
                    first = None
                    for k, when in enumerate(times):
                        level = rainstorm_signal(rain_accumulations(times[:k + 1], amounts[:k + 1], when))
                        if level >= COLOUR[e.level]:  # type: ignore[index]
                            first = (when - START).total_seconds() / 3600.0
                            break
                    assert first is not None and at_h - 1 / 60 <= first <= at_h + e.within_min / 60, (
                        name, sid, e.level, offset, first, at_h)
                    checked += 1
    assert checked >= 30
    summer = scenarios["summer_flood"].expect.incidents
    red = [e for e in summer if e.kind == "rainstorm" and e.level == "red"]
    assert red and red[0].sensors == ("rain-yufengshan-slope",)  # the 100 mm / 3 h cell


def test_confirmation_times_follow_k_of_n(scenarios: dict[str, Scenario]) -> None:
    for sc in scenarios.values():
        for e in sc.expect.incidents:
            if e.confirmed_after_h is None or e.kind == "fire":
                continue
            firsts = {}
            for other in sc.expect.incidents:
                if other.kind == e.kind and set(other.sensors) & set(e.sensors):
                    for sid, h in other.by_sensor_h.items():
                        firsts[sid] = min(h, firsts.get(sid, math.inf))

            def state(at_h: float, firsts: dict[str, float] = firsts) -> str:
                members = {s: Member(s, Level.BLUE, "good", "x") for s, h in firsts.items() if h <= at_h}
                return verification(members)[0]

            assert state(e.confirmed_after_h) == "confirmed"
            assert state(e.confirmed_after_h - 1 / 60) == "unverified"


def test_landslide_expectations_match_tangent_angle_and_inverse_velocity(scenarios: dict[str, Scenario],
                                                                         registry: Registry) -> None:
    sc = scenarios["rainstorm_landslide"]
    # the slope's rain warning (its own entries, naming the slope) is checked by the replay test
    slides = [e for e in sc.expect.incidents if e.kind == "landslide" and "slope-yufengshan" not in e.sensors]
    assert [e.level for e in slides] == ["yellow", "orange", "red"]
    motion = sc.slopes["slope-yufengshan"].motion
    assert all(e.failure_h == motion.failure_h == 48.0 for e in slides)
    # the script's inverse velocity falls linearly to zero at the failure time (Fukuzono 1985)
    hs = [40.0, 43.0, 46.0, 47.5]
    inv = [1.0 / motion.velocity_mm_per_day(h * 3600.0) for h in hs]
    slope = (inv[-1] - inv[0]) / (hs[-1] - hs[0])
    assert all(abs(i - (inv[0] + slope * (h - hs[0]))) < 1e-9 for h, i in zip(hs, inv, strict=True))
    assert hs[0] - inv[0] / slope == pytest.approx(48.0, abs=1e-6)
    assert "gnss-yufengshan-3" not in slides[0].sensors  # faulty: it dies at 30 h
    for sid in slides[0].sensors:
        spec = registry[sid]
        for offset in OFFSETS:
            reports = list(_reports(sc, spec, offset=offset))
            assert reports[-1][0] / 3600.0 < slides[0].lost_h <= motion.failure_h  # type: ignore[operator]
            times = [_at(t) for t, _ in reports]
            values = [math.hypot(r["east"], r["north"]) if "east" in r else r["opening"] for _, r in reports]
            series = landslide.displacement_series(times, values)
            a = landslide.assess_tangent_angle(series, v0_mm_per_day=spec.thresholds["v0_mm_per_day"], smooth_n=3)
            for e in slides:
                j = next(j for j, lv in enumerate(a.levels) if lv >= COLOUR[e.level])  # type: ignore[index]
                when = (times[a.velocities.end_index[j]] - START).total_seconds() / 3600.0
                assert e.after_h <= when <= e.deadline_h, (sid, e.level, offset, when)
            n = sum(1 for t in times if t <= _at(44 * 3600.0))
            forecast = landslide.forecast_failure_time(
                landslide.velocities(landslide.displacement_series(times[:n], values[:n]), smooth_n=3))
            assert isinstance(forecast, landslide.FailureForecast)
            assert abs((forecast.failure_time - _at(48 * 3600.0)).total_seconds()) < 600.0


def test_crack_tilt_and_soil_follow_the_slope(scenarios: dict[str, Scenario], registry: Registry) -> None:
    sc = scenarios["rainstorm_landslide"]
    gnss, crack, tilt, soil = (registry[i] for i in ("gnss-yufengshan-1", "crack-yufengshan-1",
                                                      "incl-yufengshan-1", "soil-yufengshan-1"))

    def moved(spec: SensorSpec, h0: float, h1: float, key: Any) -> float:
        a, b = sc.records(spec, h0 * 3600.0), sc.records(spec, h1 * 3600.0)
        assert a is not None and b is not None
        return key(b) - key(a)

    def horizontal(r: dict[str, float]) -> float:
        return math.hypot(r["east"], r["north"])

    for h0, h1 in ((2.0, 10.0), (30.0, 40.0), (45.0, 47.5)):
        g = moved(gnss, h0, h1, horizontal)
        assert moved(crack, h0, h1, lambda r: r["opening"]) == pytest.approx(0.8 * g, rel=1e-3, abs=2e-3)
        assert moved(tilt, h0, h1, lambda r: r["tilt_x"]) == pytest.approx(0.004 * g, rel=1e-3, abs=2e-4)
    # faster in the last hours than in the creep: the slope accelerates
    assert moved(gnss, 46.5, 47.5, horizontal) > 10 * moved(gnss, 2.0, 3.0, horizontal)
    r = sc.records(gnss, 20 * 3600.0) or {}
    assert r["up"] < 0 and math.degrees(math.atan2(r["east"], r["north"])) % 360 == pytest.approx(300.0, abs=0.01)
    moisture = [rr["moisture"] for _, rr in _reports(sc, soil, to_h=20.0)
                if rr["moisture"] <= 100.0]  # leave out the faulty probe's spikes
    assert moisture[0] == pytest.approx(27.0, abs=0.01)
    assert all(b >= a for a, b in zip(moisture, moisture[1:], strict=False))
    assert moisture[-1] >= soil.thresholds["saturation_pct"] - 0.5  # near saturation after the storm


def test_fire_expectations_match_detections_and_corroboration(scenarios: dict[str, Scenario],
                                                              registry: Registry) -> None:
    sc = scenarios["heatwave_fire"]
    [e] = [x for x in sc.expect.incidents if x.kind == "fire"]
    assert sc.fire is not None and e.level == "red"  # confirmed at extreme danger (command/hazards.py)
    assert set(e.sensors) == {"flame-tongluo-1", "smoke-tongluo-1", "cam-tongluo-1"}  # smoke 2 spikes: faulty

    def detected(spec: SensorSpec, t: float) -> bool:
        r = sc.records(spec, t) or {}
        th = spec.thresholds
        if spec.kind == "smoke_detector":
            return r["obscuration"] >= th["alarm_pct_per_m"]
        if spec.kind == "flame_sensor":
            return r["flame"] >= 0.5 or r["temp"] >= th["alarm_c"]
        return r["confidence"] >= th["min_confidence"]

    detections = []
    for sid, at_h in e.by_sensor_h.items():
        spec = registry[sid]
        assert not detected(spec, at_h * 3600.0 - 60.0) and detected(spec, at_h * 3600.0 + 5.0)
        r = sc.records(spec, at_h * 3600.0 + 5.0) or {}
        modality = {"smoke_detector": "smoke", "flame_sensor": "flame", "fire_camera": "camera"}[spec.kind]
        detections.append(Detection(sid, modality, _at(at_h * 3600.0), spec.lon, spec.lat,  # type: ignore[arg-type]
                                    min(1.0, r.get("confidence", 0.9)), r.get("bearing")))
    # the camera's bearing points at the fire (degrees true, camera to detection)
    cam = registry["cam-tongluo-1"]
    azimuth = Geod(ellps="WGS84").inv(cam.lon, cam.lat, sc.fire.lon, sc.fire.lat)[0] % 360.0
    [seen] = [d for d in detections if d.modality == "camera"]
    assert seen.bearing_deg == pytest.approx(azimuth, abs=0.35)
    fire_day = int(sc.fire.at_h // 24)
    danger = danger_level(_noon_fwi(sc, registry)[fire_day])
    assert danger.name.lower() == HEATWAVE_DANGER[fire_day] == "extreme"
    assert corroborate(detections[:1], danger=danger).confirmed  # one detection confirms in extreme danger
    assert e.confirmed_after_h == e.after_h
    # without the danger rule, any two independent detections agree in time and place
    for i in range(len(detections)):
        for j in range(i + 1, len(detections)):
            assert corroborate([detections[i], detections[j]]).confirmed, (detections[i], detections[j])


def test_the_service_hazard_watch_rates_and_confirms_as_expected(scenarios: dict[str, Scenario],
                                                                 registry: Registry) -> None:
    """The service's own cross-sensor state (command/hazards.py) fed with the published readings."""
    from command.hazards import HazardWatch

    sc = scenarios["heatwave_fire"]
    watch = HazardWatch(registry.values())
    ridge = registry["wx-tongluo-ridge"]
    for day in range(len(sc.weather.noon)):
        noon = sc.weather.noon_h(day)
        for t, recs in _reports(sc, ridge, from_h=noon - 0.9, to_h=noon + 0.9):
            for q in ("temp", "humidity", "wind_speed", "wind_dir", "rain"):
                unit = KINDS["weather_station"].quantities[q].unit
                watch.observe(ridge, Reading(ridge.sensor_id, q, recs[q], unit, _at(t)))
    days = {d.station_id: d for d in watch.fire_days()}
    [e] = [x for x in sc.expect.incidents if x.kind == "fire"]
    assert days["wx-tongluo-ridge"].danger.name.lower() == sc.expect.ratings[-1].rating == "extreme"
    first = e.sensors[0]
    spec = registry[first]
    t = e.by_sensor_h[first] * 3600.0
    t = next(tt for tt, _ in _reports(sc, spec, from_h=e.after_h - 0.2) if tt >= t)  # its first report after
    assessments = []
    for q, v in (sc.records(spec, t) or {}).items():
        if q in ("battery", "rssi"):
            continue
        unit = KINDS[spec.kind].quantities[q].unit
        assessments += watch.observe(spec, Reading(first, q, v, unit, _at(t)))
    assert assessments and assessments[0].kind == "fire"
    assert assessments[0].level == COLOUR[e.level]  # type: ignore[index]
    assert assessments[0].extra["verification"]["state"] == "confirmed"  # type: ignore[index]
    assert t / 3600.0 <= e.deadline_h


def test_scenario_start_waits_for_the_stated_local_time() -> None:
    from sitl.scenarios.devices import scenario_start

    now = datetime(2025, 8, 1, 7, 30, tzinfo=UTC)  # 15:30 in Chongqing
    assert scenario_start(now, None) == now
    assert scenario_start(now, 0.0) == datetime(2025, 8, 1, 16, 0, tzinfo=UTC)  # next local midnight
    assert scenario_start(now, 16.0) == datetime(2025, 8, 1, 8, 0, tzinfo=UTC)
    exact = datetime(2025, 8, 1, 0, 0, tzinfo=UTC)  # 08:00 local
    assert scenario_start(exact, 8.0) == exact


def _noon_fwi(sc: Scenario, registry: Registry, shift_h: float = 0.0) -> list[float]:
    spec = registry["wx-tongluo-ridge"]
    rows = []
    for day in range(len(sc.weather.noon)):
        r = sc.records(spec, (sc.weather.noon_h(day) + shift_h) * 3600.0) or {}
        rain_24h = sum(rr["rain"] for _, rr in _reports(sc, spec, from_h=sc.weather.noon_h(day) - 24.0,
                                                         to_h=sc.weather.noon_h(day)))
        rows.append({"month": 8, "temp": r["temp"], "rh": r["humidity"], "wind": r["wind_speed"] * 3.6,
                     "rain": rain_24h})
    return [d.fwi for d in fwi_series(rows, spec.lat)]


def test_fire_danger_ratings_match_the_fwi_system(scenarios: dict[str, Scenario], registry: Registry) -> None:
    sc = scenarios["heatwave_fire"]
    ratings = sc.expect.ratings
    assert [r.day for r in ratings] == list(range(8)) and len(sc.weather.noon) == 8
    for shift in (-20 / 60, 0.0, 20 / 60):  # a noon report a few minutes either side: same ratings
        dangers = [danger_level(v) for v in _noon_fwi(sc, registry, shift)]
        assert [d.name.lower() for d in dangers] == [r.rating for r in ratings], shift
    for r, d in zip(ratings, dangers, strict=True):
        assert (warning_level(d).colour if warning_level(d) else None) == r.level
        assert r.after_h == pytest.approx(24 * r.day + 12.0)  # local noon
    assert ratings[0].level is None and ratings[-1].level == "red"


def test_chemical_expectations_match_gas_levels_and_the_wind(scenarios: dict[str, Scenario],
                                                             registry: Registry) -> None:
    sc = scenarios["chemical_leak"]
    leak = sc.leak
    assert leak is not None and leak.substance == "nh3"
    default = DEFAULT_GAS_THRESHOLDS["NH3"]
    for key, ours in GAS_LEVELS_PPM.items():
        theirs = DEFAULT_GAS_THRESHOLDS[key.upper() if key != "cl2" else "Cl2"]
        assert ours == pytest.approx((theirs.blue_ppm, theirs.yellow_ppm, theirs.orange_ppm, theirs.red_ppm),
                                     abs=0.01)
    gas = [e for e in sc.expect.incidents if e.kind == "chemical_leak"]
    assert [e.level for e in gas] == ["blue", "yellow", "orange", "red"]
    assert gas[-1].sensors == ("gas-luoqi-chem-w",) and default.red_ppm == 300.0
    for e in gas:
        for sid, at_h in e.by_sensor_h.items():
            spec = registry[sid]
            before = (sc.records(spec, at_h * 3600.0 - 60.0) or {})["nh3"]
            after = (sc.records(spec, at_h * 3600.0 + 5.0) or {})["nh3"]
            assert gas_level("NH3", before) < COLOUR[e.level] <= gas_level("NH3", after)  # type: ignore[index]
    # the detector straight downwind reads most, the upwind one least (wind from the nearest station)
    wind = registry[leak.wind_station]
    dirs = [r["wind_dir"] for _, r in _reports(sc, wind, from_h=leak.start_h, to_h=leak.end_h)]
    mean_from = math.degrees(math.atan2(sum(math.sin(math.radians(d)) for d in dirs),
                                        sum(math.cos(math.radians(d)) for d in dirs))) % 360.0
    downwind = (mean_from + 180.0) % 360.0
    geod = Geod(ellps="WGS84")

    def alignment(sid: str) -> float:
        az = geod.inv(leak.lon, leak.lat, registry[sid].lon, registry[sid].lat)[0]
        return math.cos(math.radians(az - downwind))

    by_plateau = sorted(leak.plateau_ppm, key=lambda s: -leak.plateau_ppm[s])
    assert by_plateau == sorted(leak.plateau_ppm, key=lambda s: -alignment(s))
    assert by_plateau[0] == "gas-luoqi-chem-w"


# --- faults, non-effects and health -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_quiet_and_health_expectations_hold(name: str, scenarios: dict[str, Scenario], registry: Registry) -> None:
    sc = scenarios[name]
    faults = {f.sensor_id: f for f in sc.faults}
    expected_sensors = {s for e in sc.expect.incidents for s in e.sensors}
    assert not expected_sensors & set(faults)  # a faulty sensor is never what an expected incident rests on
    assert {q.sensors[0] for q in sc.expect.quiet} == set(faults)
    for q in sc.expect.quiet:
        f = faults[q.sensors[0]]
        spec = registry[f.sensor_id]
        assert q.fault == f.type
        if f.type == "spike":  # out of range: bad, never assessed, no incident
            assert q.at_most == "none"
            spikes = [(t, r) for t, r in _reports(sc, spec) if f.spike_at(t, spec.interval_s)]
            assert spikes
            for t, r in spikes:
                quantity = f.record or spec.quantity
                unit = KINDS[spec.kind].quantities[quantity].unit
                got = check(spec, SenMLRecord(name=f"{spec.sensor_id}:{quantity}", time=_at(t), value=r[quantity],
                                              unit=unit), topic=senml_topic(spec.sensor_id), now=_at(t))
                assert isinstance(got, Reading) and got.flag == "bad" and got.qc[0].check == "range"
        elif f.type == "dead":
            assert q.at_most == "none"
            assert all(t < f.from_h * 3600.0 for t, _ in _reports(sc, spec))
        else:
            assert q.at_most == "unverified"
    for h in sc.expect.health:
        spec = registry[h.sensors[0]]
        reports = {round(t): r for t, r in _reports(sc, spec, from_h=max(0.0, h.after_h - 2.0),
                                                    to_h=h.after_h + 2.0)}
        batteries = [r["battery"] for r in reports.values()]
        assert batteries[-1] == pytest.approx(2.0, abs=2.0) and batteries[0] > batteries[-1]  # it ran flat
        window_start = max(0.0, h.after_h - 2.0)
        tracker = HealthTracker([spec], started=_at(window_start * 3600.0))
        stale_at = None
        for minute in range(int(window_start * 60), int((h.after_h + 2.0) * 60)):
            t = minute * 60
            for s in [s for s in reports if t - 60 < s <= t]:
                tracker.seen(Reading(spec.sensor_id, spec.quantity, 0.0, spec.unit, _at(s)), received=_at(s))
            if tracker.tick(_at(t)):
                stale_at = t / 3600.0
                break
        assert stale_at is not None and h.after_h <= stale_at <= h.after_h + h.within_min / 60, stale_at


def test_a_stuck_rain_gauge_opens_at_most_an_unverified_incident(scenarios: dict[str, Scenario],
                                                                 registry: Registry) -> None:
    for name, sid in (("summer_flood", "rain-gulu"), ("rainstorm_landslide", "rain-wangjia")):
        sc = scenarios[name]
        spec = registry[sid]
        qc = QualityControl(registry.values())
        times: list[datetime] = []
        amounts: list[float] = []
        for t, r in _reports(sc, spec):
            reading = qc.review(Reading(sid, "rain", r["rain"], "mm", _at(t)))
            times.append(_at(t))
            amounts.append(r["rain"])
            level = rainstorm_signal(rain_accumulations(times, amounts, _at(t)))
            if level > Level.NONE:  # the first crossing already rests on suspect data only
                assert reading.flag == "suspect"
                state, why = verification({sid: Member(sid, level, reading.flag, "rain_gauge")})
                assert state == "unverified" and "suspect" in why
                break
        else:
            pytest.fail(f"{sid} never reached a level")


# --- publishing ------------------------------------------------------------------------------------


def test_devices_publish_every_record_with_registry_units(scenarios: dict[str, Scenario],
                                                          registry: Registry) -> None:
    sc = scenarios["heatwave_fire"]
    at = START + timedelta(hours=182.9)  # the fire is burning

    def value_at(spec: SensorSpec, when: datetime) -> dict[str, float] | None:
        return sc.records_at(spec, when, start=START)

    dead = {f.sensor_id for f in sc.faults if f.type == "dead"}
    for spec in registry.values():
        samples = SimulatedSensor(spec, spec.interval_s).samples(value_at, at)
        if spec.sensor_id in dead:
            assert samples == []  # a dead device sends nothing
            continue
        records = decode(encode(spec.sensor_id, samples), now=at)
        names = {split_name(r.name)[1]: r for r in records}
        kind = KINDS[spec.kind]
        assert {"battery", "rssi"} <= set(names)
        for quantity, r in names.items():
            assert r.unit == KINDS[spec.kind].quantities[quantity].unit
            assert split_name(r.name)[0] == spec.sensor_id
        if spec.kind == "rain_gauge":  # a tipping bucket's counter, or the interval's amount
            assert set(names) - {"battery", "rssi"} == ({"rain_total"} if spec.properties.get("cumulative")
                                                        else {"rain"})
        elif spec.kind == "fire_camera":
            assert set(names) - {"battery", "rssi"} == {"confidence", "bearing"}
        elif spec.kind == "gnss_displacement":  # the service derives the horizontal displacement
            assert set(names) - {"battery", "rssi"} == {"east", "north", "up"}
        elif spec.kind in ("river_level", "reservoir_level"):  # a radar gauge also its surface velocity
            radar = "surface_velocity" in spec.properties
            assert set(names) - {"battery", "rssi"} == ({"level", "velocity"} if radar else {"level"}), spec.sensor_id
        else:
            assert {q.name for q in kind.records} == set(names) - {"battery", "rssi"}, spec.sensor_id
    with pytest.raises(ValueError, match="does not report"):
        SimulatedSensor(registry["rain-lianglu"], 300.0).samples(lambda s, t: {"level": 1.0}, at)
    assert SimulatedSensor(registry["rain-lianglu"], 300.0).samples(lambda s, t: None, at) == []
    [only] = SimulatedSensor(registry["cuntan-level"], 300.0).samples(lambda s, t: 181.0, at)
    assert (only.quantity, only.unit) == ("level", "m")


async def test_run_scenario_sensors_publishes_the_named_scenario(folder: Path, registry: Registry,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert inspect.signature(scenario_devices.run_scenario_sensors).parameters["scenario"].default == "summer_flood"
    seen: dict[str, Any] = {}

    async def fake_run_devices(broker_url: str, specs: list[SensorSpec], value_at: Any, **kw: Any) -> None:
        seen.update(url=broker_url, specs=specs, value_at=value_at, kw=kw)

    class Clock:
        speed = 60.0

        def now(self) -> datetime:
            return START

    monkeypatch.setattr(scenario_devices, "run_devices", fake_run_devices)
    await scenario_devices.run_scenario_sensors(folder, broker_url="mqtt://127.0.0.1:1", clock=Clock())
    assert {s.sensor_id for s in seen["specs"]} == set(registry) and seen["kw"]["speed"] == 60.0
    flood = seen["value_at"](registry["cuntan-level"], START + timedelta(hours=9))
    assert flood["level"] == pytest.approx(184.2, abs=0.05)
    await scenario_devices.run_scenario_sensors(folder, broker_url="mqtt://x:1", clock=Clock(),
                                                scenario="chemical_leak")
    # START is local midnight; the leak scenario starts at 08:00 local, its leak two hours later
    assert seen["value_at"](registry["gas-luoqi-chem-w"], START + timedelta(hours=3))["nh3"] == 0.0
    west = seen["value_at"](registry["gas-luoqi-chem-w"], START + timedelta(hours=8 + 3))
    assert west["nh3"] > 300.0 and set(west) == {"nh3", "h2s", "cl2", "voc", "battery", "rssi"}
    with pytest.raises(ScenarioError, match="no scenario 'nope'"):
        await scenario_devices.run_scenario_sensors(folder, broker_url="mqtt://x:1", clock=Clock(), scenario="nope")


@pytest.mark.parametrize("name", ("heatwave_fire", "chemical_leak"))
def test_a_waiting_scenario_reports_its_opening_values(name: str, scenarios: dict[str, Scenario],
                                                       registry: Registry) -> None:
    """Before a ``start_local`` scenario's hour 0 its devices report plausible, quiet values."""
    sc = scenarios[name]
    assert sc.start_local_h is not None
    for spec in registry.values():
        for t in (-20 * 3600.0, -600.0):
            recs = sc.records(spec, t)
            assert recs is not None, spec.sensor_id
            for quantity, value in recs.items():
                unit = KINDS[spec.kind].quantities[quantity].unit
                got = check(spec, SenMLRecord(name=f"{spec.sensor_id}:{quantity}", time=_at(0), value=value,
                                              unit=unit), topic=senml_topic(spec.sensor_id), now=_at(0))
                assert isinstance(got, Reading) and got.flag == "good", (spec.sensor_id, quantity, value)
    assert sc.clean_records(registry["gas-luoqi-chem-w"], -600.0)["nh3"] == 0.0  # type: ignore[index]


def test_cumulative_gauge_counts_whole_tips(scenarios: dict[str, Scenario], registry: Registry) -> None:
    sc = scenarios["summer_flood"]
    spec = registry["rain-yufengshan-slope"]
    totals = [r["rain_total"] for _, r in _reports(sc, spec)]
    assert totals[0] == pytest.approx(1287.4) and all(b >= a for a, b in zip(totals, totals[1:], strict=False))
    assert totals[-1] - totals[0] == pytest.approx(112.0, abs=0.11)
    assert all(abs(v * 10 - round(v * 10)) < 1e-6 for v in totals)


# --- bad input -------------------------------------------------------------------------------------


def _mini(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"duration_h": 2.0, "levels": {"cuntan-level": {"baseline_m": 176.0}}}
    base.update(over)
    return {"synthetic": True, "scenarios": {"mini": base}}


@pytest.mark.parametrize(("over", "message"), [
    ({"faults": [{"sensor": "rain-gulu", "type": "melted", "from_h": 1}]}, "type must be one of"),
    ({"faults": [{"sensor": "rain-gulu", "type": "spike", "from_h": 1}]}, "a spike needs its 'value'"),
    ({"faults": [{"sensor": "rain-gulu", "type": "dead", "from_h": 1, "record": "rain"}]}, "dead device"),
    ({"faults": [{"sensor": "rain-gulu", "type": "stuck", "from_h": 2, "to_h": 1}]}, "to_h must be after"),
    ({"slope": {"s": {"azimuth_deg": 270, "creep_mm_per_day": 5, "failure_h": 9}}}, "go together"),
    ({"slope": {"s": {"azimuth_deg": 270, "creep_mm_per_day": -1}}}, "creep_mm_per_day must be positive"),
    ({"slope": {"s": {"azimuth_deg": 270, "creep_mm_per_day": 5, "soil": {"x": {"start_pct": 1,
                                                                               "saturation_pct": 2,
                                                                               "scale_mm": 3}}}}}, "'gauge'"),
    ({"expect": {"incidents": [{"kind": "flood", "sensors": ["cuntan-level"], "level": "purple",
                                "after_h": 1, "within_min": 5}]}}, "'level' must be one of"),
    ({"expect": {"surprises": []}}, "unknown key"),
    ({"start_local": "25:99"}, "start_local"),
    ({"weather": {"noon": []}}, "one row per day"),
    ({"rain": {"bucket_mm": 0, "storms": []}}, "bucket_mm must be positive"),
    ({"rain": {"storms": [{"start_h": 0, "end_h": 1, "pulse_depth": 2, "totals_mm": {"a": 1}}]}}, "pulse_depth"),
    ({"gas": {"leak": {"site": "x"}}}, "expected site, substance, source"),
    ({"fire": {"detectors": {}}}, "expected ignition"),
])
def test_bad_scenarios_are_refused_with_the_place_named(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        Scenario.from_mapping(_mini(**over), "mini", origin="scenario.yaml")
    assert "scenario.yaml" in str(err.value)


def test_validate_names_every_wrong_sensor(registry: Registry) -> None:
    sc = Scenario.from_mapping(_mini(
        levels={"rain-gulu": {"baseline_m": 1.0}},
        rain={"counters_mm": {"rain-lianglu": 3.0}, "storms": [{"start_h": 0, "end_h": 1,
                                                                 "totals_mm": {"nobody": 2.0}}]},
        faults=[{"sensor": "cuntan-level", "type": "stuck", "from_h": 1, "record": "rain"}]), "mini")
    with pytest.raises(ScenarioError) as err:
        sc.validate(registry)
    text = str(err.value)
    for part in ("'rain-gulu' is a rain_gauge", "no sensor 'nobody'", "'rain-lianglu' is not declared cumulative",
                 "has no record 'rain'"):
        assert part in text


def test_a_flat_legacy_file_still_loads(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"seed": 3, "levels": {"cuntan-level": {
        "baseline_m": 176.0, "peak_m": 180.0, "rise_start_h": 0.0, "rise_end_h": 1.0}},
        "rain": {"storms": [{"start_h": 0.0, "end_h": 1.0, "totals_mm": {"rain-luoqi": 10.0}}]}}))
    flood = FloodScript.from_yaml(path)
    assert flood.value_at("cuntan-level", START + timedelta(hours=2), start=START) == 180.0
    assert scenario_names(path) == ["summer_flood"]
    sc = Scenario.from_yaml(path)
    assert sc.records(registry["cuntan-level"], 7200.0)["level"] == 180.0  # type: ignore[index]
    assert sc.clean_records(registry["rain-lianglu"], 600.0) == {"rain": 0.0}  # unscripted gauge: no rain
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.from_yaml(tmp_path / "missing.yaml")


def test_flood_script_reads_the_named_scenarios(folder: Path) -> None:
    summer = FloodScript.from_yaml(folder / "scenario.yaml")
    landslide_rain = FloodScript.from_yaml(folder / "scenario.yaml", "rainstorm_landslide")
    assert summer.levels["cuntan-level"].peak_m == 184.2 and "rain-longxing" in summer.rain
    assert landslide_rain.levels["cuntan-level"].peak_m == landslide_rain.levels["cuntan-level"].baseline_m
    with pytest.raises(ScenarioError, match="no scenario 'winter'"):
        FloodScript.from_yaml(folder / "scenario.yaml", "winter")


# --- properties of the shapes ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(total=st.floats(0.0, 300.0), pulses=st.integers(0, 30), depth=st.floats(0.0, 1.0),
       bucket=st.sampled_from([None, 0.1, 0.2, 0.5]), interval=st.sampled_from([60.0, 300.0, 600.0]),
       offset=st.floats(0.0, 1.0))
def test_storms_keep_their_total_and_never_rain_backwards(total: float, pulses: int, depth: float,
                                                         bucket: float | None, interval: float,
                                                         offset: float) -> None:
    from sitl.scenarios.flood import RainScript

    storm = Storm(1.0, 4.0, total, pulses, depth)
    script = RainScript("g", (storm,), interval, bucket)
    times = [3600.0 * 0.5 + (k + offset) * interval for k in range(int(4.5 * 3600 / interval))]
    cum = [storm.cumulative_mm(t) for t in times]
    assert all(b >= a - 1e-7 for a, b in zip(cum, cum[1:], strict=False))
    amounts = [script.rain_mm(t) for t in times]
    assert all(a >= 0 for a in amounts)
    tol = (bucket or 0.0) + 0.006 * len(amounts)
    assert sum(amounts) == pytest.approx(total, abs=tol)


@settings(max_examples=60, deadline=None)
@given(creep=st.floats(1.0, 50.0), accel=st.floats(1.0, 20.0), lead=st.floats(2.0, 72.0),
       frac=st.floats(0.01, 0.99))
def test_slope_motion_is_continuous_and_its_inverse_velocity_linear(creep: float, accel: float, lead: float,
                                                                   frac: float) -> None:
    m = SlopeMotion(creep, accel, accel + lead)
    t_a = accel * 3600.0
    assert m.displacement_mm(t_a - 1e-3) == pytest.approx(m.displacement_mm(t_a + 1e-3), abs=1e-4)
    t = (accel + frac * lead) * 3600.0
    # 1/v = (t_f − t) / A: linear, zero at t_f
    assert 1.0 / m.velocity_mm_per_day(t) == pytest.approx((1 - frac) * lead / 24.0 / m.a_mm, rel=1e-9)
    assert m.velocity_mm_per_day(t) >= creep


@settings(max_examples=60, deadline=None)
@given(interval=st.sampled_from([60.0, 300.0, 600.0]),
       offset=st.one_of(st.just(0.0), st.floats(0.001, 0.999)),  # reports on the minute, or between
       every=st.integers(30, 360).map(lambda m: m / 60.0), start=st.integers(0, 300).map(lambda m: m / 60.0))
def test_each_spike_hits_exactly_one_report(interval: float, offset: float, every: float, start: float) -> None:
    f = Fault("x", "spike", start, start + 4 * every, value=1.0, every_h=every)
    reports = [(k + offset) * interval for k in range(int((start + 5 * every) * 3600 / interval) + 2)]
    hits = [t for t in reports if f.spike_at(t, interval)]
    spikes = [(start + k * every) * 3600.0 for k in range(4)]
    for s in spikes:
        assert sum(1 for t in hits if s - 1e-6 <= t < s - 1e-6 + interval) == 1
    assert len(hits) == len(spikes)
