"""Scheduled patrols (command.dispatch.patrols): the file, the calendar, the task each flies."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
import yaml
from shapely.geometry import shape

from command.dispatch.patrols import Patrol, PatrolError, due, load_patrols, patrol_task
from command.district import District, DistrictError
from sitl.scenarios.yubei.generate import generate


def test_the_calendar() -> None:
    p = Patrol("bank", "Bank", "岸线", "route_patrol", {"river": "yangtze"}, frozenset({7}),
               (time(9, 0), time(16, 0)), frozenset({"zoom_camera"}))
    at = datetime(2026, 7, 1, 9, 10)
    assert due([p], at, set()) == [(p, datetime(2026, 7, 1, 9, 0))]
    assert due([p], at, {("bank", "2026-07-01T09:00:00")}) == []  # ran already
    assert due([p], datetime(2026, 7, 1, 9, 40), set()) == []  # missed by more than the window: not run late
    assert due([p], datetime(2026, 7, 1, 8, 59), set()) == []  # not yet
    assert due([p], datetime(2026, 8, 1, 9, 10), set()) == []  # out of season
    assert due([p], datetime(2026, 7, 1, 16, 0), set(), window=timedelta(minutes=1))[0][1].hour == 16


@pytest.mark.parametrize(("bad", "message"), [
    ({"patrols": [{"id": "a b", "along": {"river": "x"}, "at": ["09:00"]}]}, "id must be"),
    ({"patrols": [{"id": "a", "at": ["09:00"]}]}, "exactly one of"),
    ({"patrols": [{"id": "a", "along": {"forest": "x"}, "at": ["09:00"]}]}, "needs 'river'"),
    ({"patrols": [{"id": "a", "along": {"river": "x"}, "at": ["9am"]}]}, "not HH:MM"),
    ({"patrols": [{"id": "a", "along": {"river": "x"}, "at": ["09:00"], "months": [13]}]}, "1..12"),
    ({"patrols": [{"id": "a", "along": {"river": "x"}, "at": ["09:00"], "needs": ["laser"]}]}, "unknown payload"),
    ({"patrols": [{"id": "a", "around": {"facility": "x", "radius_m": 9000}, "at": ["09:00"]}]}, "radius_m"),
    ({"patrols": [{"id": "a", "along": {"river": "x"}, "at": ["09:00"]},
                  {"id": "a", "along": {"river": "x"}, "at": ["10:00"]}]}, "repeated"),
])
def test_bad_patrols_are_refused_with_the_reason(bad: dict, message: str) -> None:
    with pytest.raises(PatrolError, match=message):
        load_patrols(bad)


def test_the_district_patrols_and_their_tasks(tmp_path: Path) -> None:
    folder = generate(tmp_path / "d")
    d = District.load(folder)
    assert {p.id for p in d.patrols} == {"yangtze-bank", "tongluo-forest", "luoqi-plant"}
    forests = {f["properties"]["id"]: shape(f["geometry"]) for f in d.layers["landcover"]["features"]}
    kw = dict(rivers={r.id: r.line for r in d.rivers}, forests=forests,
              facilities={f.id: (f.lon, f.lat) for f in d.facilities}, boundary=d.boundary)
    tasks = {p.id: patrol_task(p, patrol_run=1, **kw) for p in d.patrols}  # type: ignore[arg-type]
    bank = tasks["yangtze-bank"]
    assert bank.kind == "route_patrol" and bank.line is not None and d.boundary.buffer(1e-6).covers(bank.line)
    forest = tasks["tongluo-forest"]
    assert forest.kind == "area_search" and forest.needs == {"thermal_camera"} and forest.area.area > 0
    plant = tasks["luoqi-plant"]
    assert plant.needs == {"gas_sensor"} and plant.area.contains(shape({"type": "Point", "coordinates": plant.point}))
    # a patrol naming something the district lacks is refused at load
    data = yaml.safe_load((folder / "patrols.yaml").read_text())
    data["patrols"][0]["along"]["river"] = "jialing"
    (folder / "patrols.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DistrictError, match="no river 'jialing'"):
        District.load(folder)
