"""Scheduled patrols: daily management flights on a calendar. Pure.

A district's ``patrols.yaml`` lists patrols: what to fly over (a river's banks, a forest, the
ground around a site), in which months, at which local times, with which payloads:

    patrols:
      - id: yangtze-bank
        name: Yangtze bank patrol
        name_zh: 长江岸线巡查
        along: {river: yangtze}           # a route patrol along the river line (inside the district)
        months: [6, 7, 8, 9]              # the flood season
        at: ["09:00", "16:00"]            # local time
        needs: [zoom_camera]
      - id: tongluo-forest
        over: {forest: forest-tongluo}    # an area search over a forest of landcover.geojson
        months: [1, 2, 3, 4, 11, 12]      # the fire season
        at: ["10:30"]
      - id: luoqi-plant
        around: {facility: chem-luoqi, radius_m: 400}
        months: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        at: ["14:00"]
        needs: [gas_sensor]

``due`` says which patrol slots have come (not yet run, within ``window`` after their time);
``patrol_task`` turns a patrol into the ``TaskSpec`` the planner flies. The service runs them
when no incident needs the vehicles (patrols yield), and recalls one in flight when an orange
or red incident opens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from .geometry import UTM_48N, circle_lonlat
from .tasks import PAYLOADS, TaskSpec

__all__ = ["Patrol", "PatrolError", "due", "load_patrols", "patrol_task"]

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DEFAULT_WINDOW = timedelta(minutes=30)  # a slot not started within this after its time is skipped, not run late


class PatrolError(ValueError):
    """A patrols file that cannot be used; the message names the patrol and the problem."""


@dataclass(frozen=True)
class Patrol:
    id: str
    name: str
    name_zh: str
    kind: str  # route_patrol | area_search
    target: Mapping[str, Any]  # {river: id} | {forest: id} | {facility: id, radius_m: m}
    months: frozenset[int]
    at: tuple[time, ...]
    needs: frozenset[str]

    def slots(self, day: date) -> list[datetime]:
        """The naive local start times of the patrol on ``day`` (none outside its months)."""
        if day.month not in self.months:
            return []
        return [datetime.combine(day, t) for t in self.at]


def load_patrols(data: Any) -> tuple[Patrol, ...]:
    """Patrols from the parsed ``patrols.yaml``; ``PatrolError`` names the first problem."""
    if data is None:
        return ()
    if not isinstance(data, Mapping) or not isinstance(data.get("patrols", []), list):
        raise PatrolError("patrols.yaml must hold 'patrols: [...]'")
    out, seen = [], set()
    for i, p in enumerate(data.get("patrols") or []):
        where = f"patrol {i + 1}"
        if not isinstance(p, Mapping):
            raise PatrolError(f"{where}: must be a mapping")
        pid = str(p.get("id") or "")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", pid):
            raise PatrolError(f"{where}: id must be letters, digits, '-' or '_', got {pid!r}")
        where = f"patrol {pid!r}"
        if pid in seen:
            raise PatrolError(f"{where}: id repeated")
        seen.add(pid)
        modes = [k for k in ("along", "over", "around") if k in p]
        if len(modes) != 1:
            raise PatrolError(f"{where}: give exactly one of along (a river), over (a forest), around (a facility)")
        target = p[modes[0]]
        if not isinstance(target, Mapping):
            raise PatrolError(f"{where}: {modes[0]} must be a mapping")
        expected = {"along": "river", "over": "forest", "around": "facility"}[modes[0]]
        if expected not in target:
            raise PatrolError(f"{where}: {modes[0]} needs '{expected}'")
        months = p.get("months") or list(range(1, 13))
        if not isinstance(months, list) or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
            raise PatrolError(f"{where}: months must be numbers 1..12")
        at = p.get("at")
        if not isinstance(at, list) or not at:
            raise PatrolError(f"{where}: at must list local start times (\"HH:MM\")")
        times = []
        for t in at:
            m = _TIME.match(str(t))
            if not m:
                raise PatrolError(f"{where}: start time {t!r} is not HH:MM")
            times.append(time(int(m.group(1)), int(m.group(2))))
        needs = p.get("needs") or ["zoom_camera"]
        unknown = sorted(set(needs) - PAYLOADS)
        if unknown:
            raise PatrolError(f"{where}: unknown payload(s) {unknown}")
        radius = target.get("radius_m", 300.0)
        if modes[0] == "around" and not (isinstance(radius, (int, float)) and 50 <= radius <= 5000):
            raise PatrolError(f"{where}: radius_m must be 50..5000 m")
        out.append(Patrol(pid, str(p.get("name") or pid), str(p.get("name_zh") or p.get("name") or pid),
                          "route_patrol" if modes[0] == "along" else "area_search", dict(target),
                          frozenset(months), tuple(sorted(times)), frozenset(needs)))
    return tuple(out)


def due(patrols: Iterable[Patrol], now_local: datetime, done: set[tuple[str, str]], *,
        window: timedelta = DEFAULT_WINDOW) -> list[tuple[Patrol, datetime]]:
    """The patrol slots that have come and not run: started within ``window`` before ``now_local`` (naive
    local time), not in ``done`` (patrol id, slot ISO time)."""
    out = []
    for p in patrols:
        for slot in p.slots(now_local.date()):
            if slot <= now_local < slot + window and (p.id, slot.isoformat()) not in done:
                out.append((p, slot))
    return out


def _line_inside(geom: BaseGeometry, boundary: BaseGeometry) -> LineString | None:
    part = geom.intersection(boundary)
    lines = [g for g in getattr(part, "geoms", [part]) if isinstance(g, LineString) and not g.is_empty]
    return max(lines, key=lambda g: g.length) if lines else None


def patrol_task(patrol: Patrol, *, patrol_run: int, rivers: Mapping[str, BaseGeometry],
                forests: Mapping[str, BaseGeometry], facilities: Mapping[str, tuple[float, float]],
                boundary: BaseGeometry, epsg: int = UTM_48N) -> TaskSpec:
    """The task a patrol flies (``patrol_run`` stands for the incident id of its plans)."""
    t = patrol.target
    if "river" in t:
        geom = rivers.get(str(t["river"]))
        line = _line_inside(geom, boundary) if geom is not None else None
        if line is None:
            raise PatrolError(f"patrol {patrol.id!r}: no river {t['river']!r} inside the district")
        return TaskSpec(f"patrol-{patrol.id}", "route_patrol", patrol_run, 1, line.coords[0], frozenset({"copter"}),
                        patrol.needs, line=line, reason=f"Scheduled patrol: {patrol.name}",
                        reason_zh=f"定期巡查：{patrol.name_zh}")
    if "forest" in t:
        area = forests.get(str(t["forest"]))
        if area is None or area.is_empty:
            raise PatrolError(f"patrol {patrol.id!r}: no forest {t['forest']!r} in landcover.geojson")
        area = area.intersection(boundary)
        return TaskSpec(f"patrol-{patrol.id}", "area_search", patrol_run, 1, area.representative_point().coords[0],
                        frozenset({"copter"}), patrol.needs, area=area, reason=f"Scheduled patrol: {patrol.name}",
                        reason_zh=f"定期巡查：{patrol.name_zh}")
    at = facilities.get(str(t["facility"]))
    if at is None:
        raise PatrolError(f"patrol {patrol.id!r}: no facility {t['facility']!r}")
    disk = circle_lonlat(at[0], at[1], float(t.get("radius_m", 300.0)), epsg=epsg)
    return TaskSpec(f"patrol-{patrol.id}", "area_search", patrol_run, 1, at, frozenset({"copter"}), patrol.needs,
                    area=disk, reason=f"Scheduled patrol: {patrol.name}", reason_zh=f"定期巡查：{patrol.name_zh}")

