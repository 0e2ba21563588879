"""Per-sensor QC over time and space, device health, and derived series."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from command.sensing import MaintenanceWindow, Sensing
from sensors.health import HealthTracker
from sensors.model import Reading
from sensors.quality import QualityControl
from sensors.registry import Registry, RegistryError

T0 = datetime(2025, 7, 1, 0, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def feature(sid: str, kind: str, lon: float, lat: float, **props: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"id": sid, "kind": kind, "interval_s": 300, **props}}


REGISTRY = Registry.from_geojson({"type": "FeatureCollection", "features": [
    feature("lvl", "river_level", 106.6, 29.6, valid_min=150, valid_max=200, datum="Wusong"),
    feature("rg-a", "rain_gauge", 106.60, 29.70),
    feature("rg-b", "rain_gauge", 106.63, 29.70),
    feature("rg-c", "rain_gauge", 106.60, 29.73),
    feature("rg-far", "rain_gauge", 107.50, 29.70),
    feature("tb", "rain_gauge", 106.61, 29.71),
    feature("ws-1", "weather_station", 106.70, 29.80, elevation_m=300),
    feature("ws-2", "weather_station", 106.72, 29.80, elevation_m=300),
    feature("ws-3", "weather_station", 106.70, 29.82, elevation_m=1300),
    feature("gas", "gas_detector", 106.65, 29.65),
]})


def r(sid: str, q: str, v: float, t: datetime, unit: str | None = None) -> Reading:
    return Reading(sid, q, v, unit or REGISTRY[sid].quantity_spec(q).unit, t)  # type: ignore[union-attr]


def checks(reading: Reading) -> list[str]:
    return [n.check for n in reading.qc]


def test_a_steady_rise_is_good_and_a_jump_is_a_suspect_step() -> None:
    qc = QualityControl(REGISTRY.values())
    for i in range(6):
        assert qc.review(r("lvl", "level", 180.0 + 0.05 * i, T0 + 5 * i * MIN)).flag == "good"
    jump = qc.review(r("lvl", "level", 183.0, T0 + 30 * MIN))
    assert jump.flag == "suspect" and checks(jump) == ["step"]
    assert "more than 1 m" in jump.qc[0].detail
    # a gap of an hour allows a larger change (the limit grows with the gap)
    assert qc.review(r("lvl", "level", 185.0, T0 + 90 * MIN)).flag == "good"


def test_a_late_reading_is_checked_against_its_neighbours_in_time() -> None:
    qc = QualityControl(REGISTRY.values())
    qc.review(r("lvl", "level", 180.0, T0))
    qc.review(r("lvl", "level", 180.2, T0 + 10 * MIN))
    late = qc.review(r("lvl", "level", 182.0, T0 + 5 * MIN))  # arrives after, belongs between
    assert checks(late) == ["step"]
    assert [h.time for h in qc.history("lvl", "level")] == [T0, T0 + 5 * MIN, T0 + 10 * MIN]


def test_a_stuck_level_is_a_flatline_but_zero_rain_is_not() -> None:
    qc = QualityControl(REGISTRY.values())
    out = [qc.review(r("lvl", "level", 181.0, T0 + 5 * i * MIN)) for i in range(0, 6 * 12 + 2)]
    assert all(o.flag == "good" for o in out[:64])  # the 6 h window is not covered yet
    assert checks(out[-1]) == ["flatline"] and "stuck near 181" in out[-1].qc[0].detail
    dry = [qc.review(r("rg-a", "rain", 0.0, T0 + 5 * i * MIN)) for i in range(60)]
    assert all(o.flag == "good" for o in dry)
    stuck = [qc.review(r("rg-b", "rain", 1.2, T0 + 5 * i * MIN)) for i in range(40)]
    assert stuck[-1].flag == "suspect" and "flatline" in checks(stuck[-1])


def test_a_cumulative_counter_never_decreases_except_by_a_reset() -> None:
    qc = QualityControl(REGISTRY.values())
    assert qc.review(r("tb", "rain_total", 120.0, T0)).flag == "good"
    drop = qc.review(r("tb", "rain_total", 80.0, T0 + 5 * MIN))
    assert drop.flag == "bad" and checks(drop) == ["consistency"]
    assert qc.review(r("tb", "rain_total", 0.2, T0 + 10 * MIN)).flag == "good"  # logger reset


def test_dew_point_above_temperature_is_bad() -> None:
    qc = QualityControl(REGISTRY.values())
    qc.review(r("ws-1", "temp", 25.0, T0))
    assert qc.review(r("ws-1", "dew_point", 22.0, T0)).flag == "good"
    bad = qc.review(r("ws-1", "dew_point", 26.0, T0 + 10 * MIN))
    assert bad.flag == "bad" and checks(bad) == ["consistency"] and "above air temperature" in bad.qc[0].detail


def test_a_local_downpour_is_suspect_against_dry_neighbours_but_not_against_wet_ones() -> None:
    qc = QualityControl(REGISTRY.values())
    for i in range(12):
        t = T0 + 5 * i * MIN
        qc.review(r("rg-b", "rain", 0.0, t))
        qc.review(r("rg-c", "rain", 0.0, t))
    lone = [qc.review(r("rg-a", "rain", 4.0, T0 + 5 * i * MIN)) for i in range(12)]
    assert lone[-1].flag == "suspect" and "neighbour" in checks(lone[-1])
    assert "estimated from 2 neighbours" in lone[-1].qc[-1].detail

    qc2 = QualityControl(REGISTRY.values())
    for i in range(12):
        t = T0 + 5 * i * MIN
        qc2.review(r("rg-b", "rain", 3.5, t))
        qc2.review(r("rg-c", "rain", 4.5, t))
    shared = [qc2.review(r("rg-a", "rain", 4.0, T0 + 5 * i * MIN)) for i in range(12)]
    assert all("neighbour" not in checks(s) for s in shared)


def test_the_neighbour_check_needs_enough_neighbours_and_adjusts_temperature_for_height() -> None:
    qc = QualityControl(REGISTRY.values())
    assert qc.review(r("rg-far", "rain", 30.0, T0)).flag == "good"  # nobody within 10 km
    qc.review(r("ws-2", "temp", 30.0, T0))
    qc.review(r("ws-3", "temp", 23.5, T0))  # 1000 m higher: 6.5 °C cooler is expected
    assert "neighbour" not in checks(qc.review(r("ws-1", "temp", 30.0, T0 + MIN)))
    assert "neighbour" in checks(qc.review(r("ws-1", "temp", 38.0, T0 + 2 * MIN)))


def test_health_reports_transitions_only() -> None:
    tracker = HealthTracker(REGISTRY.values(), started=T0)
    assert tracker.tick(T0 + 10 * MIN) == []
    assert tracker.seen(r("lvl", "level", 180.0, T0 + 10 * MIN), received=T0 + 10 * MIN) == []
    stale = tracker.tick(T0 + 26 * MIN)  # 3 × 300 s after last seen
    assert "lvl" in {t.sensor_id for t in stale}
    assert all(t.change == "stale" for t in stale)
    assert tracker.tick(T0 + 40 * MIN) == []  # already stale: nothing new
    back = tracker.seen(r("lvl", "level", 180.1, T0 + 41 * MIN), received=T0 + 41 * MIN)
    assert [(t.sensor_id, t.change) for t in back] == [("lvl", "recovered")]
    tracker.seen(r("lvl", "battery", 76.0, T0 + 41 * MIN), received=T0 + 41 * MIN)
    assert tracker["lvl"].battery_pct == 76.0 and tracker["lvl"].state == "ok"
    assert [t.change for t in tracker.status("lvl", "offline")] == ["offline"]
    assert tracker.status("lvl", "offline") == []
    assert tracker["lvl"].state == "offline"
    assert [t.change for t in tracker.status("lvl", "online")] == ["online"]


def test_sensing_derives_interval_rain_from_a_bucket_counter() -> None:
    sensing = Sensing(REGISTRY, started=T0)
    out, _ = sensing.review([r("tb", "rain_total", 100.0, T0)], received=T0)
    assert [(o.quantity, o.value) for o in out] == [("rain_total", 100.0)]
    out, _ = sensing.review([r("tb", "rain_total", 102.5, T0 + 5 * MIN)], received=T0)
    assert [(o.quantity, o.value) for o in out] == [("rain_total", 102.5), ("rain", 2.5)]
    out, _ = sensing.review([r("tb", "rain_total", 0.5, T0 + 10 * MIN)], received=T0)
    assert out[1].value == 0.5 and "counter reset" in out[1].qc[0].detail
    assert sensing.newest("tb", "rain").value == 0.5


def test_maintenance_windows_cover_half_open_intervals() -> None:
    sensing = Sensing(REGISTRY, started=T0)
    sensing.add_maintenance(MaintenanceWindow(1, "lvl", T0, T0 + 60 * MIN, "recalibration", "li"))
    assert sensing.in_maintenance("lvl", T0 + 30 * MIN) is not None
    assert sensing.in_maintenance("lvl", T0 + 60 * MIN) is None
    assert sensing.in_maintenance("rg-a", T0 + 30 * MIN) is None
    assert sensing.sensor_state("lvl", T0 + MIN)["health"]["state"] == "maintenance"


def test_every_kind_loads_and_levels_need_a_datum() -> None:
    assert REGISTRY["gas"].quantity_spec("h2s").unit == "ppm"  # type: ignore[union-attr]
    assert REGISTRY["ws-1"].quantity_spec("humidity").unit == "%RH"  # type: ignore[union-attr]
    assert REGISTRY["ws-1"].quantity_spec("level") is None
    with pytest.raises(RegistryError, match="needs the vertical datum"):
        Registry.from_geojson({"type": "FeatureCollection", "features": [
            feature("x", "river_level", 106.6, 29.6, valid_min=150, valid_max=200)]})
    with pytest.raises(RegistryError, match="ranges names 'level'"):
        Registry.from_geojson({"type": "FeatureCollection", "features": [
            feature("x", "weather_station", 106.6, 29.6, ranges={"level": [0, 1]})]})
    with pytest.raises(RegistryError, match="actuators must be a list of siren, light"):
        Registry.from_geojson({"type": "FeatureCollection", "features": [
            feature("x", "crack_meter", 106.6, 29.6, actuators=["horn"])]})
    site = Registry.from_geojson({"type": "FeatureCollection", "features": [
        feature("x", "weather_station", 106.6, 29.6, ranges={"temp": [-10, 45]})]})
    assert (site["x"].quantity_spec("temp").valid_min, site["x"].quantity_spec("temp").valid_max) == (-10, 45)  # type: ignore[union-attr]


# -- the history behind the checks: window sums stay right whatever the arrival order ----
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sensors.quality import _Series  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.floats(0, 50, allow_nan=False), st.booleans()), max_size=80),
       st.integers(0, 200), st.integers(1, 120))
def test_window_sums_match_a_brute_force_count(items, upto_min, window_min) -> None:
    series = _Series()
    kept: dict[datetime, Reading] = {}
    for minute, value, good in items:
        r = Reading("rg-a", "rain", value, "mm", T0 + minute * MIN, "good" if good else "suspect")
        series.add(r)
        kept[r.time] = r
    assert series.times == sorted(kept)
    upto, after = T0 + upto_min * MIN, T0 + (upto_min - window_min) * MIN
    expected = sum(r.value for t, r in kept.items() if after < t <= upto and r.flag == "good")
    assert series.good_sum(after, upto) == pytest.approx(expected, abs=1e-9)
    before = series.before(upto)
    earlier = [t for t in kept if t < upto]
    assert (before.time if before else None) == (max(earlier) if earlier else None)


def test_history_is_trimmed_to_its_span_and_size() -> None:
    series = _Series()
    for i in range(3000):
        series.add(Reading("rg-a", "rain", 1.0, "mm", T0 + i * MIN))
        series.trim(keep=512, span=timedelta(hours=25))
    assert 512 <= len(series) <= 1024
    assert series.good_sum(T0 + 2939 * MIN, T0 + 2999 * MIN) == 60.0
