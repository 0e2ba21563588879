"""sitl.environment and sitl.disturbance: wind/current conventions, gusts by seed, the
controller's limits, configuration from a fleet file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitl.disturbance import achieved_velocity, hover_power_ratio, lean_limited_airspeed_mps
from sitl.environment import (
    Environment, EnvironmentConfigError, GustProcess, Wind, current_vector_ne,
    load_water_mask, wind_field, wind_vector_ne,
)
from sitl.fleet_sim import build_vehicles, load_environment, load_fleet
from sitl.vehicle_sim import SimConfigError

FLEET = """\
environment:
  seed: 3
  wind: {speed_mps: 6, from_deg: 270, gust_mps: 1.5}
  current: {speed_mps: 1.2, toward_deg: 60, water_only: true}
vehicles:
  - {name: uav-1, type: copter, url: "udpin:127.0.0.1:14551", system_id: 1, base: [106.50, 29.70]}
  - {name: boat-1, type: boat, url: "udpin:127.0.0.1:14552", system_id: 2, base: [106.60, 29.60]}
"""
# A square of water around the boat's base (lon/lat), none at the copter's.
WATER = [[106.59, 29.59], [106.61, 29.59], [106.61, 29.61], [106.59, 29.61], [106.59, 29.59]]


def _district(tmp_path: Path, fleet: str = FLEET) -> Path:
    (tmp_path / "fleet.yaml").write_text(fleet, encoding="utf-8")
    (tmp_path / "rivers.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [WATER]},
         "properties": {"id": "w", "kind": "water"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": WATER[:2]},
         "properties": {"id": "r", "kind": "river"}}]}), encoding="utf-8")
    return tmp_path


def test_wind_blows_from_and_current_sets_toward() -> None:
    n, e = wind_vector_ne(5.0, 270.0)  # a west wind moves the air east
    assert (round(n, 9), round(e, 9)) == (0.0, 5.0)
    n, e = wind_vector_ne(5.0, 0.0)  # a north wind moves the air south
    assert (round(n, 9), round(e, 9)) == (-5.0, 0.0)
    n, e = current_vector_ne(2.0, 90.0)  # a current setting east moves the water east
    assert (round(n, 9), round(e, 9)) == (0.0, 2.0)


def test_headwind_slows_the_leg_and_a_too_strong_wind_carries_it_off() -> None:
    cap = lean_limited_airspeed_mps(30.0)
    assert cap == pytest.approx(11.46, abs=0.01)  # SITL quad at ANGLE_MAX 30°
    assert achieved_velocity((10.0, 0.0), (0.0, 0.0), cap) == (10.0, 0.0)  # still air
    assert achieved_velocity((10.0, 0.0), (6.0, 0.0), cap) == (10.0, 0.0)  # tailwind
    up = achieved_velocity((10.0, 0.0), (-6.0, 0.0), cap)
    assert up[0] == pytest.approx(cap - 6.0) and up[1] == 0.0  # headwind: slower, on track
    cross = achieved_velocity((10.0, 0.0), (0.0, 8.0), cap)
    assert cross[1] == 0.0 and 0.0 < cross[0] < 10.0  # crosswind: stays on track, slower
    drift = achieved_velocity((0.0, 0.0), (0.0, 15.0), cap)
    assert drift[0] == 0.0 and drift[1] == pytest.approx(15.0 - cap)  # holding: carried off


@given(cmd=st.tuples(st.floats(-15, 15), st.floats(-15, 15)),
       flow=st.tuples(st.floats(-20, 20), st.floats(-20, 20)),
       cap=st.floats(0.5, 15))
@settings(max_examples=300, deadline=None)
def test_achieved_velocity_respects_the_limit(cmd: tuple[float, float],
                                              flow: tuple[float, float], cap: float) -> None:
    g = achieved_velocity(cmd, flow, cap)
    through = math.hypot(g[0] - flow[0], g[1] - flow[1])
    assert through <= max(cap, math.hypot(cmd[0] - flow[0], cmd[1] - flow[1])) + 1e-6
    if math.hypot(*flow) <= cap:
        assert through <= cap + 1e-6 or g == cmd
        # never off the commanded track, never faster than commanded
        assert abs(g[0] * cmd[1] - g[1] * cmd[0]) <= 1e-6 * (1 + math.hypot(*cmd) ** 2)
        assert math.hypot(*g) <= math.hypot(*cmd) + 1e-9


def test_power_grows_with_airspeed() -> None:
    assert hover_power_ratio(0.0) == 1.0
    assert 1.0 < hover_power_ratio(5.0) < hover_power_ratio(10.0) < hover_power_ratio(11.5)


def test_gusts_are_the_same_for_the_same_seed_whatever_the_query_times() -> None:
    env = Environment(Wind(6.0, 270.0, gust_mps=2.0), seed=3)
    a, b = wind_field(env, 7), wind_field(env, 7)
    times = [0.05 * k for k in range(4000)]
    coarse = {t: a(t) for t in times[::37]}  # a asked rarely, b every 50 ms
    fine = {t: b(t) for t in times}
    assert all(coarse[t] == fine[t] for t in coarse)
    other = wind_field(env, 8)
    assert [other(t) for t in times[::37]] != list(coarse.values())


def test_gust_speed_has_the_configured_spread() -> None:
    gusts = GustProcess(2.0, 2.0, seed=11)
    samples = [gusts.at(0.1 * k) for k in range(1, 200_000, 7)]
    rms = math.sqrt(sum(n * n + e * e for n, e in samples) / len(samples))
    assert rms == pytest.approx(2.0, rel=0.15)
    assert GustProcess(0.0, 2.0, seed=1).at(100.0) == (0.0, 0.0)


def test_bad_environment_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(EnvironmentConfigError, match="wind.speed_mps"):
        Environment.from_mapping({"wind": {"speed_mps": -3}})
    with pytest.raises(EnvironmentConfigError, match="unknown key"):
        Environment.from_mapping({"wind": {"speed": 3}})
    with pytest.raises(EnvironmentConfigError, match="not a number"):
        Environment.from_mapping({"current": {"speed_mps": "fast"}})
    with pytest.raises(EnvironmentConfigError, match="district"):
        Environment.from_mapping({"current": {"speed_mps": 1.0, "water_only": True}})
    with pytest.raises(EnvironmentConfigError, match="mapping"):
        Environment.from_mapping(["wind"])
    with pytest.raises(EnvironmentConfigError, match="seed"):
        Environment.from_mapping({"seed": "x"})
    assert Environment.from_mapping(None).calm


def test_current_only_on_the_water(tmp_path: Path) -> None:
    district = _district(tmp_path)
    env = load_environment(district / "fleet.yaml")
    assert env.wind == Wind(6.0, 270.0, 1.5) and env.seed == 3
    on = env.current_at(106.60, 29.60)
    assert math.hypot(*on) == pytest.approx(1.2)
    assert env.current_at(106.50, 29.70) == (0.0, 0.0)  # off the water: no current
    mask = load_water_mask(district)
    assert mask.contains(106.60, 29.60) and not mask.contains(106.62, 29.60)


def test_fleet_file_environment_reaches_every_vehicle(tmp_path: Path) -> None:
    district = _district(tmp_path)
    env = load_environment(district / "fleet.yaml")
    sims = build_vehicles(load_fleet(district / "fleet.yaml"), environment=env)
    copter, boat = sims
    assert copter.environment is env and boat.environment is env
    assert math.hypot(*boat.current_ne) == pytest.approx(1.2)
    assert math.hypot(*copter.current_ne) == 0.0  # its base is not on the water
    # each vehicle has its own gust stream, both drawn from the fleet's seed
    assert copter.wind_ne != boat.wind_ne


def test_fleet_file_without_environment_is_calm_and_bad_one_is_refused(tmp_path: Path) -> None:
    calm = FLEET.split("vehicles:")[1]
    district = _district(tmp_path, "vehicles:" + calm)
    assert load_environment(district / "fleet.yaml").calm
    (tmp_path / "fleet.yaml").write_text("environment: {wind: {speed_mps: -1}}\n" + "vehicles:" + calm)
    with pytest.raises(SimConfigError, match="environment"):
        load_environment(tmp_path / "fleet.yaml")
    (tmp_path / "rivers.geojson").unlink()
    (tmp_path / "fleet.yaml").write_text(
        "environment: {current: {speed_mps: 1, water_only: true}}\nvehicles:" + calm)
    with pytest.raises(SimConfigError, match="rivers.geojson"):
        load_environment(tmp_path / "fleet.yaml")
