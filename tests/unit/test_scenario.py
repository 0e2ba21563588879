"""The synthetic Yubei district folder: deterministic, loadable, plausible."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import shapely
import yaml

from command.district import District, DistrictError
from command.risk.rules import Level, rain_accumulations, rainstorm_signal, river_level_signal
from sitl.scenarios.flood import FloodScript
from sitl.scenarios.yubei import NOTICE, generate

FILES = ("district.yaml", "boundary.geojson", "sensors.geojson", "airspace.geojson", "rivers.geojson",
         "roads.geojson", "facilities.geojson", "terrain.asc", "fleet.yaml", "departments.yaml", "scenario.yaml",
         "landcover.geojson", "patrols.yaml", "bridges.geojson", "townships.geojson", "playbooks.yaml", "crews.yaml")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("yubei"))


@pytest.fixture(scope="module")
def district(folder: Path) -> District:
    return District.load(folder)


def test_generation_is_deterministic_and_idempotent(folder: Path, tmp_path: Path) -> None:
    other = generate(tmp_path / "again")
    for name in FILES:
        assert (folder / name).read_bytes() == (other / name).read_bytes(), name
    before = {n: (other / n).stat().st_mtime_ns for n in FILES}
    generate(other)  # same content: files are left alone
    assert {n: (other / n).stat().st_mtime_ns for n in FILES} == before
    assert sorted(p.name for p in other.iterdir()) == sorted(FILES)


def test_another_seed_changes_only_the_terrain(folder: Path, tmp_path: Path) -> None:
    other = generate(tmp_path / "seed8", seed=8)
    assert (folder / "terrain.asc").read_bytes() != (other / "terrain.asc").read_bytes()
    assert (folder / "airspace.geojson").read_bytes() == (other / "airspace.geojson").read_bytes()


def test_marked_synthetic(district: District, folder: Path) -> None:
    assert district.synthetic is True
    assert district.notice == NOTICE
    assert "合成数据" in NOTICE and "not survey" in NOTICE
    assert district.bbox == (106.45, 29.60, 106.95, 30.10)
    assert yaml.safe_load((folder / "scenario.yaml").read_text())["synthetic"] is True


def test_loads_every_layer(district: District) -> None:
    assert set(district.layers) == {"boundary", "rivers", "roads", "facilities", "airspace", "landcover", "bridges",
                                    "townships"}
    assert not district.forest.is_empty and district.forest.within(district.boundary.buffer(1e-6))
    assert {r.id for r in district.rivers} == {"yangtze", "yulin"}
    assert len(district.roads) >= 5
    assert set(district.departments) == {
        "emergency", "fire", "traffic", "health", "ecology", "city", "police", "bigdata", "water", "natural", "meteo"}
    for dept in district.departments.values():  # a head, three duty officers, a roster without gaps
        assert dept.name_zh and dept.head.name_zh and len(dept.members) == 3 and len(dept.roster) == 3
        assert dept.channels.mqtt and dept.channels.webhook is None
    assert district.playbooks.version == "2026.3"
    assert {"flood", "rainstorm", "landslide", "fire", "chemical_leak", "default"} <= district.playbooks.kinds
    kinds = {f.kind for f in district.facilities}
    assert {"town", "hospital", "school", "fire_station", "drone_base", "boat_base", "landslide_slope",
            "weather_station"} <= kinds
    towns = district.facilities_of("town")
    assert {"两路", "龙兴", "统景", "洛碛"} <= {t.name_zh for t in towns}
    assert all(t.population and t.population > 0 for t in towns)
    assert all(district.in_district(f.lon, f.lat) for f in district.facilities)
    assert district.sensors_path.name == "sensors.geojson" and district.scenario_path is not None


def test_terrain_is_plausible(district: District) -> None:
    t = district.terrain
    assert t.cell_deg == pytest.approx(0.002)
    z = t.z_m
    assert 165 <= z.min() <= 200  # rivers
    assert 750 <= z.max() <= 1000  # ridge crests
    assert t.elevation_at(106.6417, 29.7192) == pytest.approx(416.0, abs=3.0)  # airport (AIP elevation)
    ridge = [f for f in district.facilities if f.kind == "weather_station"]
    assert all(t.elevation_at(f.lon, f.lat) > 600 for f in ridge)
    assert t.elevation_at(106.600, 29.620) < 180  # Cuntan, on the Yangtze


def test_cuntan_gauge(folder: Path) -> None:
    sensors = {f["properties"]["id"]: f for f in json.loads((folder / "sensors.geojson").read_text())["features"]}
    cuntan = sensors["cuntan-level"]["properties"]
    assert cuntan["kind"] == "river_level" and cuntan["datum"] == "Wusong"
    assert cuntan["thresholds"] == {"warning_m": 180.5, "guaranteed_m": 183.5, "historical_max_m": 191.62}
    assert {"river_level", "rain_gauge"} <= {p["properties"]["kind"] for p in sensors.values()}
    assert sum(p["properties"]["kind"] == "rain_gauge" for p in sensors.values()) >= 8
    assert "yulin-level" in sensors


def test_sensor_registry_accepts_the_file(district: District) -> None:
    from sensors.registry import Registry

    reg = Registry.from_geojson(district.sensors_path)
    assert reg["cuntan-level"].thresholds["warning_m"] == 180.5


def test_bases_and_fleet(district: District) -> None:
    assert [v.system_id for v in district.fleet] == [1, 2, 3, 4, 5, 6]
    assert [v.url for v in district.fleet] == [f"udpin:127.0.0.1:{p}" for p in range(14551, 14557)]
    copters = [v for v in district.fleet if v.type == "copter"]
    boats = [v for v in district.fleet if v.type == "boat"]
    assert len(copters) == 4 and len(boats) == 2
    for v in copters:
        assert not district.on_water(v.base_lon, v.base_lat), v.name
        assert v.base_alt_m == pytest.approx(district.terrain.elevation_at(v.base_lon, v.base_lat), abs=0.1)
        assert (v.cruise_speed_mps, v.endurance_s) == (12.0, 2700.0)
        assert not any(z.contains(v.base_lon, v.base_lat) for z in district.airspace), v.name
    for boat in boats:
        assert district.on_water(boat.base_lon, boat.base_lat)
        assert boat.base_alt_m == pytest.approx(district.terrain.elevation_at(boat.base_lon, boat.base_lat), abs=0.5)
        assert boat.air_draft_m == 1.6
    assert [(b.cruise_speed_mps, b.endurance_s) for b in boats] == [(5.0, 14400.0), (4.0, 14400.0)]
    for f in district.facilities_of("drone_base"):
        assert not district.on_water(f.lon, f.lat)
    for f in district.facilities_of("boat_base"):
        assert district.on_water(f.lon, f.lat)


def test_bridges_townships_and_linkage_places(district: District) -> None:
    bridges = {b.id: b for b in district.bridges}
    # every road crossing a river has its bridge, plus the old low bridge above Tongjing
    crossings = {(r.id, river.id) for r in district.roads for river in district.rivers if r.line.crosses(river.line)}
    assert {(b.road, b.river) for b in bridges.values() if b.road} == crossings
    old = bridges["bridge-tongjing-old"]
    assert old.road is None and old.river == "yulin"
    low_water = district.terrain.elevation_at(*old.line.interpolate(0.5, normalized=True).coords[0])
    assert old.headroom_m(low_water) == pytest.approx(3.2, abs=0.6)
    for b in bridges.values():  # each spans its river's water from bank to bank
        ends = [b.line.coords[0], b.line.coords[-1]]
        assert not any(district.on_water(*e) for e in ends) and b.line.intersects(district.water), b.id
    # townships tile the district: every town seat in its own, populations carried over
    assert len(district.townships) == len(district.facilities_of("town")) == 15
    for t in district.townships:
        seat = next(f for f in district.facilities_of("town") if t.id == f"twp-{f.id.removeprefix('town-')}")
        assert t.area.contains(shapely.Point(seat.lon, seat.lat)) and t.population == seat.population
    total = shapely.union_all([t.area for t in district.townships])
    # (edges are straight in lon/lat and in UTM in turn, and rounded: slivers of a few thousandths of a percent)
    assert total.symmetric_difference(district.boundary).area < 1e-4 * district.boundary.area
    assert {t.kind for t in district.townships} == {"town", "street"}
    shelters = district.facilities_of("shelter")
    assert len(shelters) >= 4 and all(s.capacity and s.capacity > 0 for s in shelters)
    assert all(district.on_water(f.lon, f.lat) for f in district.facilities_of("water_intake"))
    assert district.facilities_of("nursing_home") and district.facilities_of("ambulance_station")
    # crews and department units at their stations, each of a known department
    assert len(district.crews) == 8 and {c.kind for c in district.crews} == {"crew", "unit"}
    where = {f.id: (f.lon, f.lat) for f in district.facilities}
    for c in district.crews:
        assert c.department in district.departments and (c.base_lon, c.base_lat) == where[c.base_facility]


def test_airport_zones(district: District) -> None:
    zones = {z.id: z for z in district.airspace}
    assert zones["ckg-core"].kind == "prohibited"
    assert [zones[i].ceiling_agl_m for i in ("ckg-30m", "ckg-60m-north", "ckg-60m-south", "ckg-120m")] == [
        30.0, 60.0, 60.0, 120.0]
    airport = (106.6417, 29.7192)
    assert zones["ckg-core"].contains(*airport)
    assert zones["ckg-30m"].contains(*airport) and zones["ckg-120m"].contains(*airport)
    # 60 m approach zone ~12 km SSW along the runway axis (about 200°), outside the 30 m circles.
    assert zones["ckg-60m-south"].contains(106.597, 29.617)
    assert not zones["ckg-30m"].contains(106.597, 29.617)
    assert not any(z.contains(106.82, 29.93) for z in district.airspace)  # Tongjing, far away


def test_flood_script_reaches_the_signals(district: District) -> None:
    assert district.scenario_path is not None
    script = FloodScript.from_yaml(district.scenario_path)
    start = datetime(2025, 7, 1, tzinfo=UTC)
    levels = [script.value_at("cuntan-level", start + timedelta(hours=h), start=start) for h in range(13)]
    assert levels[0] == pytest.approx(176.0, abs=0.05)
    assert levels[-1] == pytest.approx(184.2, abs=0.05)
    assert river_level_signal(levels[-1], warning_m=180.5, guaranteed_m=183.5, historical_max_m=191.62,
                              approach_m=1.0) is Level.ORANGE
    # Rain reports every 5 minutes: the Longxing gauge gets > 50 mm in 3 h.
    times = [start + timedelta(minutes=5 * k) for k in range(1, 12 * 12 + 1)]
    rain = [script.value_at("rain-longxing", t, start=start) for t in times]
    assert all(r is not None and r >= 0 for r in rain)
    assert rain[0] == 0.0  # before the storm
    acc = rain_accumulations(times, rain, start + timedelta(hours=5))
    assert acc[3] > 50.0
    assert rainstorm_signal(acc) is Level.ORANGE
    assert script.value_at("no-such-sensor", start, start=start) is None
    # Reproducible: the same time gives the same value.
    t = start + timedelta(hours=4, seconds=17)
    assert script.value_at("cuntan-level", t, start=start) == script.value_at("cuntan-level", t, start=start)


def test_load_errors_name_the_file(folder: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    fleet = yaml.safe_load((bad / "fleet.yaml").read_text())
    fleet["vehicles"][1]["system_id"] = 1
    (bad / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    with pytest.raises(DistrictError, match=r"fleet\.yaml.*system_id"):
        District.load(bad)

    shutil.copy(folder / "fleet.yaml", bad / "fleet.yaml")
    air = json.loads((bad / "airspace.geojson").read_text())
    del air["features"][1]["properties"]["ceiling_agl_m"]
    (bad / "airspace.geojson").write_text(json.dumps(air))
    with pytest.raises(DistrictError, match=r"airspace\.geojson: feature 1.*ceiling_agl_m"):
        District.load(bad)

    shutil.copy(folder / "airspace.geojson", bad / "airspace.geojson")
    for change, message in ((lambda c: c.update(department="navy"), "crew 'crew-luoqi-water': no department 'navy'"),
                            (lambda c: c.update(base=[120.0, 30.0]), "crew 'crew-luoqi-water' base .* outside"),
                            (lambda c: c.update(base_facility="nowhere"), "no facility 'nowhere'"),
                            (lambda c: c.update(people=0), r"crews\.yaml.*people"),
                            (lambda c: c.update(colour="red"), r"crews\.yaml.*colour")):
        crews = yaml.safe_load((folder / "crews.yaml").read_text())
        change(crews["crews"][0])
        (bad / "crews.yaml").write_text(yaml.safe_dump(crews, allow_unicode=True))
        with pytest.raises(DistrictError, match=message):
            District.load(bad)
    shutil.copy(folder / "crews.yaml", bad / "crews.yaml")
    (bad / "terrain.asc").write_text("ncols 3\nnrows 3\nxllcorner 0\nyllcorner 0\ncellsize 1\n1 2 3\n")
    with pytest.raises(DistrictError, match=r"terrain\.asc"):
        District.load(bad)

    (bad / "terrain.asc").unlink()
    with pytest.raises(DistrictError, match="terrain.asc"):
        District.load(bad)
