"""Vehicle tasks from an incident's kind and geometry (command.dispatch.tasks), on the synthetic district."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from shapely.geometry import Point, mapping

from command.dispatch.geometry import circle_lonlat, ground_distance_m
from command.dispatch.tasks import FLOOD_TASK_RADIUS_M, TaskSpec, runout_area, tasks_for_incident
from command.district import District, DistrictError
from command.floodmap import FloodMapper
from sensors.registry import Registry
from sitl.scenarios.yubei.generate import generate


@pytest.fixture(scope="module")
def yubei(tmp_path_factory: pytest.TempPathFactory) -> tuple[District, Registry]:
    district = District.load(generate(tmp_path_factory.mktemp("tasks") / "district"))
    return district, Registry.from_geojson(district.sensors_path)


def test_flood_extent_gets_a_boat_survey_and_an_edge_search(yubei: tuple[District, Registry]) -> None:
    district, registry = yubei
    gauge = registry.get("yulin-level")
    extent = FloodMapper(district).extent(gauge, gauge.thresholds["guaranteed_m"] + 1.0)
    detail = {"members": {"yulin-level": {"sensor_id": "yulin-level", "model": {"extent": extent}}}}
    yellow = tasks_for_incident(7, "flood", 2, gauge.lon, gauge.lat, detail, water=district.water)
    assert [t.key for t in yellow] == ["boat-survey", "edge-search"]
    tasks = tasks_for_incident(7, "flood", 3, gauge.lon, gauge.lat, detail, water=district.water)
    by_key = {t.key: t for t in tasks}
    assert set(by_key) == {"boat-survey", "flood-search", "edge-search"}  # orange: the flooded ground searched too
    near = circle_lonlat(gauge.lon, gauge.lat, FLOOD_TASK_RADIUS_M + 1.0)
    search = by_key["flood-search"]
    assert search.kind == "area_search" and search.needs == {"thermal_camera"} and search.area.within(near)
    assert search.area.intersection(district.water).area < 0.01 * search.area.area  # the ground, not the river
    assert by_key["boat-survey"].area.within(near) and by_key["edge-search"].line.within(near)
    boat, edge = by_key["boat-survey"], by_key["edge-search"]
    assert boat.vehicle_types == {"boat"} and boat.kind == "boat_survey" and boat.area is not None
    assert boat.area.area > 0 and boat.incident_id == 7 and boat.priority == 3
    assert edge.vehicle_types == {"copter"} and edge.needs == {"thermal_camera"} and edge.line is not None
    # the edge runs on the flooded land's outline, mostly off the river
    pts = [edge.line.interpolate(f, normalized=True) for f in np.linspace(0, 1, 50)]
    assert sum(district.on_water(p.x, p.y) for p in pts) < 25
    wire = boat.to_wire()
    assert wire["area"]["type"] == "Polygon" and wire["vehicle_types"] == ["boat"]


def test_flood_without_extent_is_a_recon(yubei: tuple[District, Registry]) -> None:
    _, registry = yubei
    gauge = registry.get("cuntan-level")
    detail = {"members": {"x": {"model": {"extent": {"error": "no terrain_offset_m"}}}}}
    (task,) = tasks_for_incident(1, "flood", 2, gauge.lon, gauge.lat, detail)
    assert task.kind == "recon" and task.point == (gauge.lon, gauge.lat)


def test_landslide_searches_the_runout_downhill(yubei: tuple[District, Registry]) -> None:
    district, _ = yubei
    slope = next(f for f in district.facilities if f.kind == "landslide_slope")
    area, line = runout_area(slope.lon, slope.lat, district.terrain.elevation_along)
    start, end = line.coords[0], line.coords[-1]
    assert district.terrain.elevation_at(*end) < district.terrain.elevation_at(*start) - 5.0  # it goes down
    assert 0 < ground_distance_m(start, end) <= 1500.0 + 1.0
    assert area.contains(Point(slope.lon, slope.lat))
    (task,) = tasks_for_incident(3, "landslide", 4, slope.lon, slope.lat, {"members": {}},
                                 elevation=district.terrain.elevation_along)
    assert task.kind == "area_search" and task.area is not None and "m downhill" in task.reason
    with pytest.raises(ValueError, match="positive"):
        runout_area(slope.lon, slope.lat, district.terrain.elevation_along, max_m=0)


def test_fire_recon_stands_upwind_then_overwatch() -> None:
    fire = (106.70, 29.87)
    detail = {"members": {"flame-1": {"model": {"position": list(fire), "spread": {"downwind_deg": 90.0}}}}}
    recon, overwatch = tasks_for_incident(5, "fire", 4, *fire, detail)
    assert recon.kind == "recon" and overwatch.kind == "overwatch" and overwatch.after == "recon"
    assert recon.needs == {"thermal_camera"}
    assert abs(ground_distance_m(recon.point, fire) - 500.0) < 5.0
    assert recon.point[0] < fire[0]  # the wind blows east: recon stands west, out of the smoke
    assert recon.params["look_at"] == list(fire)
    no_wind = tasks_for_incident(5, "fire", 2, *fire, {"members": {"f": {"model": {"position": list(fire)}}}})
    assert no_wind[0].point == fire


def test_leak_gets_broadcast_and_gas_survey() -> None:
    src = (106.85, 29.71)
    warm = Point(106.86, 29.71).buffer(0.01)
    detail = {"members": {"gas-1:nh3": {"model": {"plume": {
        "source": list(src), "warm_zone": mapping(warm), "downwind_length_m": 2000.0, "wind_from_deg": 270.0}}}}}
    tasks = {t.key: t for t in tasks_for_incident(9, "chemical_leak", 3, *src, detail)}
    assert set(tasks) == {"recon", "broadcast", "gas-survey"}
    assert tasks["broadcast"].needs == {"loudspeaker"} and tasks["broadcast"].area.equals(warm)
    survey = tasks["gas-survey"]
    assert survey.needs == {"gas_sensor"} and survey.line.coords[0] == src
    end = survey.line.coords[-1]
    assert abs(ground_distance_m(src, end) - 2000.0) < 5.0 and end[0] > src[0]  # downwind: east
    without = tasks_for_incident(9, "chemical_leak", 3, *src, {"members": {}})
    assert [t.key for t in without] == ["recon"]


def test_rainstorm_is_a_recon_and_bad_specs_are_refused() -> None:
    (task,) = tasks_for_incident(2, "rainstorm", 9, 106.6, 29.7, {})
    assert task.kind == "recon" and task.priority == 4  # levels above red are red
    with pytest.raises(ValueError, match="kind"):
        TaskSpec("x", "dance", 1, 1, (0.0, 0.0), frozenset({"copter"}))
    with pytest.raises(ValueError, match="payload"):
        TaskSpec("x", "recon", 1, 1, (0.0, 0.0), frozenset({"copter"}), frozenset({"laser"}))
    with pytest.raises(ValueError, match="vehicle types"):
        TaskSpec("x", "recon", 1, 1, (0.0, 0.0), frozenset({"tank"}))


def test_fleet_payloads_are_checked(yubei: tuple[District, Registry], tmp_path: Path) -> None:
    district, _ = yubei
    assert {v.name: "gas_sensor" in v.payloads for v in district.fleet}["UAV-1"]
    copy = tmp_path / "d"
    shutil.copytree(district.path, copy)
    fleet = yaml.safe_load((copy / "fleet.yaml").read_text())
    fleet["vehicles"][0]["payloads"] = ["zoom_camera", "laser"]
    (copy / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    with pytest.raises(DistrictError, match="unknown payload.*laser"):
        District.load(copy)
