"""Recon mission planning: items, heights above terrain, refusals with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav
from shapely.geometry import box

from command.dispatch.airspace import Zone
from command.dispatch.allocation import Candidate
from command.dispatch.mission import PlanRefused, plan_recon
from command.district import District, Terrain
from sitl.scenarios.yubei import generate
from uav.mission import FRAME_ABOVE_HOME

COPTER = Candidate("UAV-1", "copter", 106.60, 29.80, 95.0, True, 12.0, 1800.0)
BOAT = Candidate("USV-1", "boat", 106.60, 29.80, 95.0, True, 5.0, 7200.0)
HOME = (106.60, 29.80)
TARGET = (106.62, 29.80)  # ~1.9 km east


def flat(height_m: float = 300.0) -> Terrain:
    return Terrain(np.full((100, 100), height_m), 106.45, 29.60, 0.005)


def with_hill(hill_m: float) -> Terrain:
    z = np.full((100, 100), 300.0)
    z[:, 31:34] = hill_m  # a north-south ridge, flat-topped from 106.6075°E to 106.6175°E
    return Terrain(z, 106.45, 29.60, 0.005)


def test_copter_items_and_frames() -> None:
    plan = plan_recon(COPTER, HOME, 300.0, TARGET, terrain=flat(), zones=[], loiter_s=90.0)
    cmds = [i.command for i in plan.items]
    assert cmds == [mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME,
                    mav.MAV_CMD_NAV_RETURN_TO_LAUNCH]
    assert all(i.frame == FRAME_ABOVE_HOME for i in plan.items[:3])
    assert [i.alt_m for i in plan.items[:3]] == [60.0, 60.0, 60.0]
    wp, loiter = plan.items[1], plan.items[2]
    assert (wp.lon_deg, wp.lat_deg) == TARGET and (loiter.lon_deg, loiter.lat_deg) == TARGET
    assert loiter.param1 == 90.0
    assert plan.path == (HOME, TARGET, HOME)
    assert plan.alt_above_home_m == 60.0 and plan.cruise_amsl_m == 360.0
    assert plan.max_agl_m == pytest.approx(60.0)
    assert plan.distance_m == pytest.approx(2 * 1934, rel=0.01)
    assert plan.est_duration_s > 2 * 1934 / 12.0 + 90.0
    assert plan.energy_pct == pytest.approx(100 * plan.est_duration_s / 1800.0)
    assert any(c.startswith("terrain:") for c in plan.checks) and any(c.startswith("airspace:") for c in plan.checks)


def test_height_clears_the_highest_ground_rounded_up() -> None:
    t = with_hill(340.4)
    plan = plan_recon(COPTER, HOME, 300.0, TARGET, terrain=t, zones=[], clearance_m=60.0)
    assert t.max_along_line([HOME, TARGET]) == pytest.approx(340.4)
    assert plan.alt_above_home_m == 101.0  # ceil(340.4 - 300 + 60)
    assert plan.cruise_amsl_m - 340.4 >= 60.0
    # Home measured lower than the terrain model: the height above home makes up for it.
    plan = plan_recon(COPTER, HOME, 290.0, TARGET, terrain=flat(), zones=[])
    assert plan.alt_above_home_m == 70.0 and plan.cruise_amsl_m == 360.0


def test_refused_above_the_cap() -> None:
    with pytest.raises(PlanRefused) as err:
        plan_recon(COPTER, HOME, 300.0, TARGET, terrain=with_hill(400.0), zones=[])
    (reason,) = err.value.reasons
    assert "120 m true-height ceiling" in reason and "highest ground, 400 m" in reason
    assert "120 米" in err.value.reasons_zh[0]
    # A lower cap refuses even flat ground at 60 m clearance.
    with pytest.raises(PlanRefused, match="50 m true-height ceiling"):
        plan_recon(COPTER, HOME, 300.0, TARGET, terrain=flat(), zones=[], cap_agl_m=50.0)


def test_refused_inside_a_height_limited_zone() -> None:
    z30 = Zone("z30", "Airport 30 m zone", "height_limited", box(106.615, 29.79, 106.63, 29.81), 30.0)
    with pytest.raises(PlanRefused) as err:
        plan_recon(COPTER, HOME, 300.0, TARGET, terrain=flat(), zones=[z30])
    assert err.value.reasons == ("flies 60 m above ground inside 'Airport 30 m zone' (ceiling 30 m)",)


def test_refused_across_a_prohibited_zone() -> None:
    core = Zone("core", "Jiangbei airport no-fly core", "prohibited", box(106.605, 29.79, 106.61, 29.81))
    with pytest.raises(PlanRefused, match="crosses prohibited zone 'Jiangbei airport no-fly core'"):
        plan_recon(COPTER, HOME, 300.0, TARGET, terrain=flat(), zones=[core])


def test_refused_without_terrain_or_battery() -> None:
    with pytest.raises(PlanRefused, match="terrain"):
        plan_recon(COPTER, HOME, 300.0, TARGET, terrain=None, zones=[])
    with pytest.raises(PlanRefused, match="terrain model"):
        plan_recon(COPTER, HOME, 300.0, (107.5, 29.8), terrain=flat(), zones=[])
    weak = Candidate("UAV-9", "copter", *HOME, 40.0, True, 12.0, 1800.0)
    with pytest.raises(PlanRefused, match="30 % reserve"):
        plan_recon(weak, HOME, 300.0, TARGET, terrain=flat(), zones=[])


RIVER = box(106.55, 29.795, 106.70, 29.805)


def test_boat_items() -> None:
    plan = plan_recon(BOAT, HOME, 172.0, TARGET, terrain=None, zones=[], water=RIVER, loiter_s=30.0)
    assert [i.command for i in plan.items] == [mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME,
                                               mav.MAV_CMD_NAV_RETURN_TO_LAUNCH]
    assert all(i.alt_m == 0.0 for i in plan.items)
    assert plan.alt_above_home_m == 0.0 and plan.max_agl_m == 0.0
    assert plan.items[1].param1 == 30.0
    assert plan.est_duration_s == pytest.approx(plan.distance_m / 5.0 + 30.0)


def test_boat_must_stay_on_water() -> None:
    with pytest.raises(PlanRefused, match="not on water"):
        plan_recon(BOAT, HOME, 172.0, (106.62, 29.85), terrain=None, zones=[], water=RIVER)
    bend = RIVER.union(box(106.64, 29.795, 106.65, 29.85)).difference(box(106.61, 29.80, 106.64, 29.805))
    with pytest.raises(PlanRefused, match="leaves the water"):
        plan_recon(BOAT, (106.60, 29.8025), 172.0, (106.645, 29.84), terrain=None, zones=[], water=bend)
    with pytest.raises(PlanRefused, match="no water areas"):
        plan_recon(BOAT, HOME, 172.0, TARGET, terrain=None, zones=[])


# --- on the synthetic Yubei district -----------------------------------------------------------


@pytest.fixture(scope="module")
def yubei(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(tmp_path_factory.mktemp("yubei")))


def _candidate(d: District, name: str) -> Candidate:
    v = d.vehicle(name)
    return Candidate(v.name, v.type, v.base_lon, v.base_lat, 100.0, True, v.cruise_speed_mps, v.endurance_s)


def test_yubei_target_in_the_airport_30m_zone_is_refused(yubei: District) -> None:
    z30 = yubei.zone("ckg-30m")
    home, target = (106.74, 29.655), (106.70, 29.68)
    assert not z30.contains(*home) and z30.contains(*target)
    with pytest.raises(PlanRefused) as err:
        plan_recon(_candidate(yubei, "UAV-1"), home, 400.0, target, terrain=flat(400.0),
                   zones=yubei.airspace, clearance_m=60.0)
    assert "flies 60 m above ground inside 'Airport 30 m zone' (ceiling 30 m)" in err.value.reasons


def test_yubei_path_across_the_no_fly_core_is_refused(yubei: District) -> None:
    with pytest.raises(PlanRefused, match="crosses prohibited zone 'Jiangbei airport no-fly core'"):
        plan_recon(_candidate(yubei, "UAV-1"), (106.60, 29.72), 400.0, (106.69, 29.72),
                   terrain=flat(400.0), zones=yubei.airspace)


def test_yubei_scenario_targets(yubei: District) -> None:
    sensors = {f["properties"]["id"]: tuple(f["geometry"]["coordinates"])
               for f in json.loads(Path(yubei.sensors_path).read_text())["features"]}
    boat = yubei.vehicle("USV-1")
    intake = next(f for f in yubei.facilities if f.id == "intake-yangtze-luoqi")  # up the Yangtze from Luoqi
    plan = plan_recon(_candidate(yubei, "USV-1"), (boat.base_lon, boat.base_lat), boat.base_alt_m,
                      (intake.lon, intake.lat), terrain=yubei.terrain, zones=yubei.airspace, water=yubei.water)
    assert plan.vehicle_type == "boat" and plan.distance_m > 1000
    uav = yubei.vehicle("UAV-1")
    plan = plan_recon(_candidate(yubei, "UAV-1"), (uav.base_lon, uav.base_lat), uav.base_alt_m,
                      sensors["rain-luoqi"], terrain=yubei.terrain, zones=yubei.airspace)
    lons, lats = np.linspace(uav.base_lon, sensors["rain-luoqi"][0], 50), np.linspace(
        uav.base_lat, sensors["rain-luoqi"][1], 50)
    assert np.all(plan.cruise_amsl_m - yubei.terrain.elevation_along(lons, lats) >= 60.0 - 1e-6)
    assert plan.max_agl_m <= 120.0
