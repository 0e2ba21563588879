"""Task missions (command.dispatch.planner) on the synthetic district: what a dispatcher is shown,
the refusals, approvals and vertical separation of two missions over one incident."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from shapely.geometry import LineString, Point, mapping

from command.dispatch.approvals import Grant
from command.dispatch.errors import PlanRefused
from command.dispatch.planner import PlanVehicle, plan_task, vertical_conflict
from command.dispatch.tasks import TaskSpec, tasks_for_incident
from command.district import District
from sitl.scenarios.yubei.generate import generate
from uav.mission import FRAME_GLOBAL_AMSL

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc)
SOURCE = (106.85, 29.71)  # the riverside chemical plant near Luoqi


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(tmp_path_factory.mktemp("planner") / "district"))


def vehicle(district: District, name: str, battery: float = 100.0) -> PlanVehicle:
    v = next(x for x in district.fleet if x.name == name)
    return PlanVehicle(v.name, v.type, (v.base_lon, v.base_lat), v.base_alt_m, battery, v.cruise_speed_mps,
                       v.endurance_s, v.payloads)


def plan(district: District, task: TaskSpec, v: PlanVehicle, **kw: object):  # type: ignore[no-untyped-def]
    return plan_task(task, v, terrain=district.terrain.elevation_along, zones=district.airspace,
                     water=district.water, now=NOW, **kw)  # type: ignore[arg-type]


def leak_tasks() -> dict[str, TaskSpec]:
    detail = {"members": {"g": {"model": {"plume": {
        "source": list(SOURCE), "warm_zone": mapping(Point(106.86, 29.71).buffer(0.006)),
        "downwind_length_m": 1500.0, "wind_from_deg": 270.0}}}}}
    return {t.key: t for t in tasks_for_incident(4, "chemical_leak", 3, *SOURCE, detail)}


def test_a_mission_flies_levels_above_sea_level_and_says_what_it_costs(district: District) -> None:
    task = leak_tasks()["gas-survey"]
    p = plan(district, task, vehicle(district, "UAV-1"))
    items = p.mission.items
    assert items[-1].command == 20  # MAV_CMD_NAV_RETURN_TO_LAUNCH
    assert all(it.frame == FRAME_GLOBAL_AMSL for it in items[1:-1])  # never "above home" over the ground
    assert p.time_to_target_s > 0 and p.mission.est_duration_s > p.time_to_target_s
    assert 30.0 <= p.battery_at_landing_pct < 100.0 and p.return_mode in ("RTL", "SMART_RTL")
    assert p.return_params.get("RTL_ALT", 0) >= 6000  # cm: at least the 60 m clearance
    wire = p.to_wire()
    assert wire["pattern"] == "patrol" and wire["task"]["key"] == "gas-survey"
    assert any(c.startswith("battery:") for c in wire["checks"])


def test_refusals_say_why(district: District) -> None:
    tasks = leak_tasks()
    with pytest.raises(PlanRefused, match="does not carry gas_sensor"):
        plan(district, tasks["gas-survey"], vehicle(district, "UAV-2"))
    with pytest.raises(PlanRefused, match="needs a copter"):
        plan(district, tasks["recon"], vehicle(district, "USV-1"))
    with pytest.raises(PlanRefused, match="reserve"):
        plan(district, tasks["recon"], vehicle(district, "UAV-1", battery=35.0))


def test_controlled_airspace_needs_a_grant(district: District) -> None:
    # a target in the airport's controlled zone clear of its lower height limits, the vehicle 2 km east
    control = district.zone("ckg-control").polygon
    low = [z.polygon for z in district.airspace if z.kind == "prohibited"
           or (z.kind == "height_limited" and (z.ceiling_agl_m or 0) < 120)]
    w, s_, e, n = control.bounds
    target = next((lon, lat) for lat in np.arange(s_, n, 0.004) for lon in np.arange(w, e, 0.004)
                  if control.contains(line := LineString([(lon, lat), (lon + 0.02, lat)]).buffer(0.002))
                  and not any(line.intersects(z) for z in low))
    task = TaskSpec("recon", "recon", 9, 3, target, frozenset({"copter"}), frozenset({"zoom_camera"}))
    home = (target[0] + 0.02, target[1])
    near = PlanVehicle("UAV-X", "copter", home, district.terrain.elevation_at(*home), 100.0, 12.0, 2700.0,
                       frozenset({"zoom_camera"}))
    with pytest.raises(PlanRefused, match="controlled"):
        plan(district, task, near)
    grant = Grant("7", "ckg-control", "Chongqing ATM sub-bureau", "CQ-7", NOW - timedelta(hours=1),
                  NOW + timedelta(hours=3), 120.0)
    p = plan(district, task, near, grants=[grant])
    assert [a["reference"] for a in p.approvals] == ["CQ-7"] and p.mission.max_agl_m <= 120.5


def test_vertical_conflict_between_two_missions(district: District) -> None:
    recon = leak_tasks()["recon"]
    a = plan(district, recon, vehicle(district, "UAV-1"))
    same = plan(district, recon, vehicle(district, "UAV-1"))
    clash = vertical_conflict(a, same)
    assert clash is not None and abs(clash[1] - clash[2]) < 1.0  # the same mission twice: no separation
    high = plan(district, recon, vehicle(district, "UAV-1"), clearance_m=100.0)
    assert vertical_conflict(a, high, vertical_m=15.0) is None  # 40 m above the ground under the same legs
