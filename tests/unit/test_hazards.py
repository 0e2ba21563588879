"""Cross-sensor hazards: noon fire weather, fire detections and their corroboration, gas plumes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from shapely.geometry import shape

from command.hazards import HazardWatch
from command.risk import chemical
from command.risk.assess import assess
from command.risk.rules import Level
from sensors.model import Reading
from sensors.registry import Registry

NOON_UTC = datetime(2025, 8, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Beijing


def feature(sid: str, kind: str, lon: float, lat: float, **props: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"id": sid, "kind": kind, "interval_s": 600, **props}}


REG = Registry.from_geojson({"type": "FeatureCollection", "features": [
    feature("ws", "weather_station", 106.75, 29.85),
    feature("smoke-1", "smoke_detector", 106.760, 29.860),
    feature("smoke-2", "smoke_detector", 106.7605, 29.8605),  # 70 m away: not independent of smoke-1
    feature("flame-1", "flame_sensor", 106.762, 29.861),
    feature("cam", "fire_camera", 106.740, 29.840),
    feature("gas-1", "gas_detector", 106.6045, 29.6030, site="plant"),  # ~500 m north of the plant
]})


def weather_day(watch: HazardWatch, day: int, *, temp: float, rh: float, wind_mps: float, wind_from: float = 200.0,
                rain: float = 0.0) -> None:
    noon = NOON_UTC + timedelta(days=day)
    for q, v, u in (("temp", temp, "Cel"), ("humidity", rh, "%RH"), ("wind_speed", wind_mps, "m/s"),
                    ("wind_dir", wind_from, "deg"), ("rain", rain, "mm")):
        watch.observe(REG["ws"], Reading("ws", q, v, u, noon))


def hot_week(watch: HazardWatch) -> None:
    for d in range(7):
        weather_day(watch, d, temp=38.0 + d * 0.3, rh=20.0, wind_mps=6.0)


def test_noon_weather_advances_the_fire_weather_index_day_by_day() -> None:
    watch = HazardWatch(REG.values())
    weather_day(watch, 0, temp=20.0, rh=80.0, wind_mps=1.0, rain=10.0)
    first = watch.fire_days()[0]
    assert first.danger <= 2 and first.noon.wind_kmh == pytest.approx(3.6)
    hot_week(watch)
    last = watch.fire_days()[0]
    assert last.day == (NOON_UTC + timedelta(days=6)).date()
    assert last.codes.fwi > 38.0 and int(last.danger) == 5  # extreme after a dry, hot, windy week
    # readings far from noon do not make a day
    watch2 = HazardWatch(REG.values())
    watch2.observe(REG["ws"], Reading("ws", "temp", 30.0, "Cel", NOON_UTC - timedelta(hours=5)))
    assert watch2.fire_days() == []


def smoke(sid: str, t: datetime, pct: float = 8.0) -> Reading:
    return Reading(sid, "obscuration", pct, "%/m", t)


def test_one_detection_is_unverified_in_mild_weather_and_two_independent_ones_confirm() -> None:
    watch = HazardWatch(REG.values())
    weather_day(watch, 0, temp=18.0, rh=85.0, wind_mps=1.0, rain=5.0)
    t = NOON_UTC + timedelta(minutes=30)
    assert watch.observe(REG["smoke-1"], smoke("smoke-1", t, pct=1.0)) == []  # below the alarm
    (a,) = watch.observe(REG["smoke-1"], smoke("smoke-1", t))
    assert a.kind == "fire" and a.level == Level.BLUE and a.extra["verification"]["state"] == "unverified"
    (b,) = watch.observe(REG["smoke-2"], smoke("smoke-2", t + timedelta(minutes=1)))
    assert b.extra["verification"]["state"] == "unverified"  # same kind, side by side: not independent
    (c,) = watch.observe(REG["flame-1"], Reading("flame-1", "flame", 1.0, "/", t + timedelta(minutes=2)))
    assert c.extra["verification"]["state"] == "confirmed" and c.level == Level.YELLOW
    assert "spread" in c.extra and shape(c.extra["spread"]["perimeter"]).area > 0


def test_one_detection_in_extreme_danger_confirms_with_a_downwind_spread() -> None:
    watch = HazardWatch(REG.values())
    hot_week(watch)
    t = NOON_UTC + timedelta(days=6, hours=1)
    (a,) = watch.observe(REG["smoke-1"], smoke("smoke-1", t))
    assert a.extra["verification"]["state"] == "confirmed" and a.level == Level.RED
    assert a.extra["spread"]["downwind_deg"] == pytest.approx(20.0, abs=1.0)  # wind from 200°
    assert "FWI" in a.reason and "火险" in a.reason_zh


def test_a_camera_detection_needs_both_its_records() -> None:
    watch = HazardWatch(REG.values())
    t = NOON_UTC + timedelta(hours=3)
    assert watch.observe(REG["cam"], Reading("cam", "confidence", 0.9, "/", t)) == []
    (a,) = watch.observe(REG["cam"], Reading("cam", "bearing", 45.0, "deg", t))
    assert a.extra["detections"] == ["cam"]
    assert watch.observe(REG["cam"], Reading("cam", "confidence", 0.2, "/", t + timedelta(minutes=1))) == []
    assert watch.observe(REG["cam"], Reading("cam", "bearing", 40.0, "deg", t + timedelta(minutes=1))) == []


def test_a_gas_alarm_gets_a_plume_downwind_with_the_people_in_it() -> None:
    towns = chemical.PopulationPoints(np.array([106.6046, 106.60]), np.array([29.6031, 29.59]),
                                      np.array([5000.0, 8000.0]))
    watch = HazardWatch(REG.values(), sites={"plant": (106.6045, 29.5985)}, population=towns)
    alarm = Reading("gas-1", "nh3", 60.0, "ppm", NOON_UTC)
    a = assess(REG["gas-1"], alarm)
    assert a is not None and a.level == Level.YELLOW
    no_wind = watch.with_plume(REG["gas-1"], alarm, a)
    assert no_wind.extra["plume"] is None and "no plume" in no_wind.reason
    for q, v, u in (("wind_speed", 3.0, "m/s"), ("wind_dir", 180.0, "deg")):  # from the south: blows north
        watch.observe(REG["ws"], Reading("ws", q, v, u, NOON_UTC))
    p = watch.with_plume(REG["gas-1"], alarm, a).extra["plume"]
    assert p["emission_basis"] == "back-calculated from the detector" and p["emission_g_per_s"] > 0
    warm = shape(p["warm_zone"])
    assert warm.contains(shape({"type": "Point", "coordinates": [106.6045, 29.6030]}))  # the detector is inside
    assert warm.centroid.y > 29.5985  # the plume runs north
    assert p["people_inside"] == 5000  # the village by the detector, not the town south of the plant
