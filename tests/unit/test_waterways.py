"""Boats on today's water: flooded ground, bridges too low at high water, currents stronger than the boat."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import numpy as np
import shapely
from shapely.geometry import LineString, Point, box

from command.dispatch.errors import PlanRefused
from command.dispatch.geometry import utm_transformers
from command.dispatch.planner import PlanVehicle, plan_task
from command.dispatch.tasks import TaskSpec
from command.dispatch.waterways import Crossing, RiverFlow, Waterway

NOW = datetime(2026, 7, 12, 2, 0, tzinfo=timezone.utc)
FWD, INV = utm_transformers(32648)
X0, Y0 = FWD.transform(106.70, 29.80)


def ll(geom):
    """A geometry drawn in metres east/north of (106.70, 29.80), in lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack(INV.transform(c[:, 0] + X0, c[:, 1] + Y0)))


def ll_pt(e: float, n: float) -> tuple[float, float]:
    lon, lat = INV.transform(X0 + e, Y0 + n)
    return float(lon), float(lat)


# A river 300 m wide running west to east over 8 km (its line drawn upstream → downstream: it flows east).
RIVER = ll(box(0, -150, 8000, 150))
RIVER_LINE = ll(LineString([(0, 0), (8000, 0)]))
# a bridge across it at 4 km
BRIDGE = ll(LineString([(4000, -250), (4000, 250)]))
# flooded ground north of the river's east part, 2 m deep
FLOODED = ll(box(5000, 100, 7500, 900))


def boat(at: tuple[float, float], *, speed: float = 4.0, battery: float = 100.0) -> PlanVehicle:
    return PlanVehicle("USV-T", "boat", at, 180.0, battery, speed, 10800.0,
                       frozenset({"echosounder", "zoom_camera"}), air_draft_m=1.6)


def survey(area) -> TaskSpec:
    return TaskSpec("boat-survey", "boat_survey", 1, 3, area.representative_point().coords[0], frozenset({"boat"}),
                    area=area)


def plan(vehicle: PlanVehicle, task: TaskSpec, way: Waterway):
    return plan_task(task, vehicle, terrain=lambda lon, lat: lon * 0.0 + 180.0, zones=(), water=way.water, now=NOW,
                     waterway=way)


def on_water(path, water) -> bool:
    return all(water.buffer(1e-7).covers(Point(p)) for p in path)


def test_flooded_ground_deep_enough_is_water_for_a_boat() -> None:
    task = survey(ll(box(5200, 300, 7300, 800)))  # on the flooded ground only
    with pytest.raises(PlanRefused) as err:
        plan(boat(ll_pt(200, 0)), task, Waterway(RIVER))
    assert "no water" in " ".join(err.value.reasons)
    flooded = Waterway(RIVER.union(FLOODED))
    p = plan(boat(ll_pt(200, 0)), task, flooded)
    assert on_water(p.mission.path, flooded.water)
    assert any(Point(q).within(FLOODED) for q in p.mission.path)
    assert "current: not measured, planned as still water" in p.mission.checks


def test_a_bridge_too_low_at_todays_water_blocks_the_boat_and_is_named() -> None:
    task = survey(ll(box(5500, -150, 7500, 150)))  # downstream of the bridge; the boat starts upstream
    home = ll_pt(300, 0)
    high = Crossing("b1", "Old bridge", "老桥", BRIDGE, headroom_m=3.0)
    ok = plan(boat(home), task, Waterway(RIVER, (high,)))
    assert ok.mission.distance_m > 5000
    assert any("bridges: 1 passable" in c for c in ok.mission.checks)
    # the flood lifts the water: 1.9 m left under the deck, the boat needs 1.6 + 0.5
    low = Crossing("b1", "Old bridge", "老桥", BRIDGE, headroom_m=1.9)
    with pytest.raises(PlanRefused) as err:
        plan(boat(home), task, Waterway(RIVER, (low,)))
    assert list(err.value.reasons) == ["bridge 'Old bridge' leaves 1.9 m above today's water, USV-T needs 2.1 m"]
    assert list(err.value.reasons_zh) == ["“老桥”桥下净空按当前水位仅 1.9 米，USV-T 需 2.1 米"]
    # a boat on the same side as the task is not hindered by it
    near = plan(boat(ll_pt(5200, 0)), task, Waterway(RIVER, (low,)))
    assert all(shapely.distance(Point(q), BRIDGE) > 0 for q in near.mission.path)
    assert any("1 too low today (Old bridge)" in c for c in near.mission.checks)


def test_a_leg_against_a_current_faster_than_the_boat_is_refused() -> None:
    task = survey(ll(box(500, -150, 2000, 150)))  # upstream (west) of the boat
    home = ll_pt(7000, 0)
    fast = Waterway(RIVER, flows=(RiverFlow("r", RIVER_LINE, RIVER, 4.5, "gauge-1"),))
    with pytest.raises(PlanRefused) as err:
        plan(boat(home, speed=4.0), task, fast)
    assert any("current 4.5 m/s against the boat's 4.0 m/s" in r for r in err.value.reasons), err.value.reasons
    assert any("逆流 4.5 米/秒" in r for r in err.value.reasons_zh)
    # a slower current: the plan stands, dearer than in still water, and says what it met
    slow = Waterway(RIVER, flows=(RiverFlow("r", RIVER_LINE, RIVER, 1.5, "gauge-1"),))
    still = plan(boat(home), task, Waterway(RIVER))
    against = plan(boat(home), task, slow)
    assert against.mission.energy_pct > still.mission.energy_pct
    assert against.time_to_target_s > still.time_to_target_s * 1.4  # 4 − 1.5 = 2.5 m/s upstream: 1.6× the time
    assert any(c == "current: up to 1.5 m/s on the way, every leg makes headway" for c in against.mission.checks)
    # downstream is quicker than still water
    down = plan(boat(ll_pt(300, 0)), survey(ll(box(6000, -150, 7500, 150))), slow)
    flat = plan(boat(ll_pt(300, 0)), survey(ll(box(6000, -150, 7500, 150))), Waterway(RIVER))
    assert down.time_to_target_s < flat.time_to_target_s


def test_the_current_holds_only_in_its_channel_and_follows_the_river() -> None:
    bend = ll(LineString([(0, 0), (4000, 0), (4000, 4000)]))  # east, then north
    channel = ll(LineString([(0, 0), (4000, 0), (4000, 4000)]).buffer(150))
    way = Waterway(channel, flows=(RiverFlow("r", bend, channel, 2.0, "g"),))
    east = way.flow_at(*ll_pt(2000, 0))
    north = way.flow_at(*ll_pt(4000, 2000))
    assert east is not None and east.toward_deg == pytest.approx(90.0, abs=1.0)
    assert north is not None and min(north.toward_deg, 360.0 - north.toward_deg) < 1.0
    assert way.flow_at(*ll_pt(2000, 1000)) is None  # flooded ground off the channel: no current assumed
    with pytest.raises(ValueError, match="current must be a speed"):
        RiverFlow("r", bend, channel, -1.0, "g")


def test_yubei_old_bridge_closes_to_boats_in_a_flood(tmp_path) -> None:
    from command.district import District
    from sitl.scenarios.yubei.generate import generate

    d = District.load(generate(tmp_path / "d"))
    old = next(b for b in d.bridges if b.id == "bridge-tongjing-old")
    centre = old.line.interpolate(0.5, normalized=True)
    low_water = d.terrain.elevation_at(centre.x, centre.y)
    crossing = Crossing(old.id, old.name, old.name_zh, old.line, old.headroom_m(low_water))
    assert not Waterway(d.water, (crossing,)).blocking(1.6)
    flooded = Crossing(old.id, old.name, old.name_zh, old.line, old.headroom_m(low_water + 2.0))
    assert Waterway(d.water, (flooded,)).blocking(1.6) == (flooded,)
    cut = Waterway(d.water, (flooded,)).passable(1.6)
    assert not cut.intersects(old.line)
