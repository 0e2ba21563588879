"""Who does which task: an optimal assignment of tasks to copters and boats, and re-planning.

Pure: tasks and assets are plain data (positions lon/lat, battery from telemetry); a ``Plan``
comes out. Times are seconds from now, estimated; no clock is read.

**Cost.** For an asset ``i`` and a task ``j``: the time to the target (take-off climb of a
copter on the ground, then the leg at cruise speed corrected for wind or current by the wind
triangle, ``command.dispatch.energy``) plus the time on task. A pair is *feasible* when the
asset is ready, has the payloads, may work there (a boat only on water, and only when
afloat; copters anywhere), can hold its track in the wind (current), and its battery covers
the way there, the task and the way home from the task's end with the reserve left
(``battery - need >= reserve_pct``).

**Priority first, then time (lexicographic).** The assignment maximises the number of red
tasks served, then orange, yellow, blue (then tasks with no level), and among those choices
minimises the total time. It is one call of ``scipy.optimize.linear_sum_assignment`` (the
Hungarian method's modern variant, Crouse 2016, IEEE TAES 52(4)) on a rectangular matrix with
a big-M weighting: with ``K = min(#assets, #tasks)`` (at most K pairs), the tiers of priority
``k = 0, 1, ...`` weigh ``W_0 = 1`` and ``W_k = 1 +`` the most the lower tiers can add up to
with K tasks (so ``W_k <= (K + 1)^k``: one task of a tier outweighs every choice in the tiers
below), and times are scaled by ``T = K * t_max + 1`` so that a whole assignment's time is
below 1. A feasible pair costs ``t_ij / T - W_tier(j)`` (always negative), an infeasible one
0, the cost of leaving the pair out: the solver never gains by taking an infeasible pair,
which is dropped from the answer and reported. Float rounding bounds the time resolution at
about ``K * t_max * W_max * 2^-52`` seconds: under a millisecond for 50 assets and the five
levels, t_max an hour; each further tier (hand-overs rank above queued tasks of their level)
multiplies it by at most ``K + 1``, by 2 for a single handed-over task.

**Several tasks per asset, by rounds.** After the first round, every asset that got a task
stands at the task's end with its remaining battery and may take a remaining task from there
(its start time includes the earlier tasks). Rounds repeat until nothing more is assigned. An
asset left idle in a round could serve none of the remaining tasks (else the round was not
optimal) and drops out. This greedy-by-rounds chaining is not a global optimum (a vehicle
routing problem): a first-round choice is never revisited for the sake of later rounds.

**Re-planning** (``replan``) keeps the rest of the plan as it is and moves only what an
event touches: a lost or low asset's tasks are handed over (the one in progress carries
``handover_from``, the progress and the point reached; never dropped: one that no asset can
take stays in the queue, reported); a new higher-priority task pre-empts a lower one only
when no free asset can take it. Inputs are sorted by asset name and task id before solving,
so results do not depend on input order.

Not modelled here: airspace and terrain (``command.dispatch.mission`` checks the flight),
whether a boat's water reaches the target's water, the search pattern's geometry
(``command.dispatch.patterns``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from command.dispatch.allocation import DEFAULT_RESERVE_PCT
from command.dispatch.energy import EnergyModel, Flow, cruise_time_s
from command.dispatch.geometry import UTM_48N, utm_transformers
from command.risk.rules import Level

__all__ = [
    "ASSET_STATES",
    "COPTER_CRUISE_ALT_M",
    "Asset",
    "AssetLost",
    "AssetLow",
    "Assignment",
    "NewTask",
    "Plan",
    "Preemption",
    "Rejection",
    "Replan",
    "Task",
    "Unassigned",
    "asset_lost",
    "asset_low",
    "assign",
    "new_task",
    "replan",
    "solve",
    "split_area_task",
]

AssetState = Literal["ready", "on_task", "returning", "charging", "maintenance", "lost"]
ASSET_STATES: tuple[str, ...] = ("ready", "on_task", "returning", "charging", "maintenance", "lost")
_STATE_ZH = {"ready": "待命", "on_task": "正在执行任务", "returning": "正在返航", "charging": "正在充电",
             "maintenance": "正在维护", "lost": "已失联"}
# Nominal copter transit height above home for the energy estimate: below the 120 m true-height
# cap (NATIONAL_CEILING_AGL_M, China 2024 Interim Regulations on UA Flight Management, art. 19)
# with a margin. The mission planner sets the real height from the terrain.
COPTER_CRUISE_ALT_M = 100.0

RejectionCode = Literal["state", "vehicle_type", "boat_on_land", "boat_not_afloat", "payload", "headway", "battery"]
_CODES: tuple[str, ...] = ("ok", "state", "vehicle_type", "boat_on_land", "boat_not_afloat", "payload", "headway",
                           "battery")
_OK, _STATE, _TYPE, _LAND, _AFLOAT, _PAYLOAD, _HEADWAY, _BATTERY = range(len(_CODES))
_CODE_LABEL = {"state": ("not ready", "不可派遣"), "vehicle_type": ("wrong vehicle type", "载具类型不符"),
               "boat_on_land": ("a boat for a land target", "目标在陆地，无人船无法到达"),
               "boat_not_afloat": ("boat not on the water", "无人船不在水面"),
               "payload": ("missing payload", "缺少载荷"),
               "headway": ("cannot hold the track in the wind or current", "风或水流过强，无法保持航迹"),
               "battery": ("battery reserve", "电量不足以保留余量")}


def _lonlat(name: str, p: tuple[float, float]) -> tuple[float, float]:
    try:
        lon, lat = float(p[0]), float(p[1])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"{name} must be (lon, lat), got {p!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"{name} must be (lon, lat) in degrees, got {p!r}")
    return lon, lat


def _nonneg(name: str, v: float) -> None:
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a non-negative number, got {v!r}")


@dataclass(frozen=True, slots=True)
class Asset:
    """A copter or boat as the assignment sees it (telemetry and the fleet file)."""

    name: str
    type: Literal["copter", "boat"]
    position: tuple[float, float]  # lon, lat now
    battery_pct: float
    speed_mps: float  # cruise speed through the air / water
    endurance_s: float  # cruise time from 100 % to empty
    payloads: frozenset[str] = frozenset()
    state: AssetState = "ready"
    on_water: bool = False  # boats: afloat (a boat on its trailer cannot serve)
    home: tuple[float, float] | None = None  # where it returns (None: where it is now)
    alt_m: float = 0.0  # height above home now (0 on the ground)
    energy: EnergyModel | None = None  # airframe figures; None: defaults from type, speed, endurance

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an asset needs a name")
        if self.type not in ("copter", "boat"):
            raise ValueError(f"asset {self.name}: type must be copter or boat, got {self.type!r}")
        if self.state not in ASSET_STATES:
            raise ValueError(f"asset {self.name}: state must be one of {', '.join(ASSET_STATES)}, got {self.state!r}")
        object.__setattr__(self, "position", _lonlat(f"asset {self.name} position", self.position))
        if self.home is not None:
            object.__setattr__(self, "home", _lonlat(f"asset {self.name} home", self.home))
        if not (math.isfinite(self.battery_pct) and 0 <= self.battery_pct <= 100):
            raise ValueError(f"asset {self.name}: battery_pct must be in 0..100, got {self.battery_pct!r}")
        for attr in ("speed_mps", "endurance_s"):
            v = getattr(self, attr)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"asset {self.name}: {attr} must be positive, got {v!r}")
        _nonneg(f"asset {self.name} alt_m", self.alt_m)
        object.__setattr__(self, "payloads", frozenset(self.payloads))
        if self.energy is not None and self.energy.kind != self.type:
            raise ValueError(f"asset {self.name}: a {self.energy.kind} energy model for a {self.type}")

    @property
    def model(self) -> EnergyModel:
        """Its energy model (``energy``, else the kind's defaults at its speed and endurance)."""
        return self.energy or EnergyModel.for_vehicle(self.type, self.speed_mps, self.endurance_s)

    @property
    def base(self) -> tuple[float, float]:
        return self.home if self.home is not None else self.position


@dataclass(frozen=True, slots=True)
class Task:
    """A vehicle task: where it starts, what it needs, how long it takes, how urgent it is."""

    id: str
    kind: str  # recon, area_search, boat_survey, ... (command.dispatch.tasks.TASK_KINDS)
    position: tuple[float, float]  # lon, lat where the task starts
    level: int = Level.BLUE  # incident level: red 4 > orange 3 > yellow 2 > blue 1 (> none 0)
    needs: frozenset[str] = frozenset()  # payloads, all required
    on_water: bool = False  # the task is on water: boats may do it (copters do either)
    vehicle_types: frozenset[str] = frozenset({"copter", "boat"})  # which types may do it at all
    task_s: float = 60.0  # time on task
    task_flight_m: float = 0.0  # distance flown at cruise during the task (a pattern); the rest hovers
    end_position: tuple[float, float] | None = None  # where the task ends (None: where it starts)
    incident_id: str | None = None
    min_assets: int = 1  # > 1: split into that many sub-tasks (``split_area_task``)
    area_m2: float | None = None
    parent_id: str | None = None  # set on the sub-tasks of a split

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a task needs an id")
        object.__setattr__(self, "position", _lonlat(f"task {self.id} position", self.position))
        if self.end_position is not None:
            object.__setattr__(self, "end_position", _lonlat(f"task {self.id} end_position", self.end_position))
        try:
            object.__setattr__(self, "level", Level(int(self.level)))
        except (TypeError, ValueError):
            raise ValueError(f"task {self.id}: level must be 0..4 (none, blue, yellow, orange, red), "
                             f"got {self.level!r}") from None
        object.__setattr__(self, "needs", frozenset(self.needs))
        types = frozenset(self.vehicle_types)
        if not types or not types <= {"copter", "boat"}:
            raise ValueError(f"task {self.id}: vehicle_types must be copter and/or boat, got {sorted(types)}")
        object.__setattr__(self, "vehicle_types", types)
        _nonneg(f"task {self.id} task_s", self.task_s)
        _nonneg(f"task {self.id} task_flight_m", self.task_flight_m)
        if not isinstance(self.min_assets, int) or self.min_assets < 1:
            raise ValueError(f"task {self.id}: min_assets must be a whole number ≥ 1, got {self.min_assets!r}")
        if self.area_m2 is not None and not (math.isfinite(self.area_m2) and self.area_m2 > 0):
            raise ValueError(f"task {self.id}: area_m2 must be positive, got {self.area_m2!r}")

    @property
    def end(self) -> tuple[float, float]:
        return self.end_position if self.end_position is not None else self.position


@dataclass(frozen=True, slots=True)
class Assignment:
    """One task for one asset, with the estimates that made it feasible."""

    asset: str
    task_id: str
    order: int  # 0: the asset's first task in this plan; 1, 2, ...: chained after it
    level: int
    start: tuple[float, float]  # where the asset sets off (lon/lat)
    target: tuple[float, float]  # where the task starts (for a hand-over: where the work stands)
    transit_s: float  # from ``start`` to the target
    task_s: float  # on task (for a hand-over: the part left)
    start_s: float  # estimated arrival, seconds from now (after any earlier task of the asset)
    finish_s: float  # estimated end of the task, seconds from now
    energy_pct: float  # the way there and the task
    battery_after_pct: float  # at the task's end
    home_pct: float  # from the task's end home, with the landing
    margin_pct: float  # battery_after - home - reserve (≥ 0)
    incident_id: str | None = None
    handover_from: str | None = None  # the asset that had the task before
    progress: float = 0.0  # fraction of the task done (the runtime updates it; a hand-over starts there)
    progress_point: tuple[float, float] | None = None  # where the work stands (lon/lat)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one asset cannot take one task."""

    asset: str
    code: RejectionCode
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A task nobody got, why, and every asset's reason (``rejected``)."""

    task_id: str
    level: int
    code: str  # "taken" (able assets went to other tasks), "no_vehicle", a RejectionCode, or "infeasible"
    reason: str
    reason_zh: str
    rejected: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """Assignments (by asset, then order) and the tasks left over (highest level first)."""

    assignments: tuple[Assignment, ...]
    unassigned: tuple[Unassigned, ...]
    rounds: int = 0

    def of_asset(self, name: str) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.asset == name)

    def of_task(self, task_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.task_id == task_id), None)


def split_area_task(task: Task, n: int) -> tuple[Task, ...]:
    """``n`` sub-tasks of a task (ids ``{id}.1`` .. ``{id}.n``), same place and priority.

    With an area each sub-task covers ``area_m2 / n`` and takes ``1/n`` of the time and flight
    distance; without one (several assets on the same job) each keeps the whole.
    The patterns that cut the area are drawn by ``command.dispatch.patterns``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"split into a whole number ≥ 1 of sub-tasks, got {n!r}")
    if n == 1:
        return (replace(task, min_assets=1),)
    share = 1.0 / n if task.area_m2 is not None else 1.0
    return tuple(replace(task, id=f"{task.id}.{k}", parent_id=task.id, min_assets=1,
                         area_m2=None if task.area_m2 is None else task.area_m2 / n,
                         task_s=task.task_s * share, task_flight_m=task.task_flight_m * share)
                 for k in range(1, n + 1))


def _expand(tasks: Iterable[Task]) -> list[Task]:
    out: list[Task] = []
    for t in tasks:
        out.extend(split_area_task(t, t.min_assets) if t.min_assets > 1 else (t,))
    ids = Counter(t.id for t in out)
    dup = sorted(i for i, n in ids.items() if n > 1)
    if dup:
        raise ValueError(f"duplicate task id(s): {', '.join(dup)}")
    return sorted(out, key=lambda t: t.id)


def _sorted_assets(assets: Iterable[Asset]) -> list[Asset]:
    out = sorted(assets, key=lambda a: a.name)
    names = Counter(a.name for a in out)
    dup = sorted(n for n, c in names.items() if c > 1)
    if dup:
        raise ValueError(f"duplicate asset name(s): {', '.join(dup)}")
    return out


# --- pair evaluation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """An asset where it stands in a round: position, battery, height, time already committed."""

    asset: Asset
    model: EnergyModel
    xy: tuple[float, float]
    lonlat: tuple[float, float]
    home_xy: tuple[float, float]
    battery_pct: float
    alt_m: float
    offset_s: float = 0.0
    order: int = 0
    ignore_state: bool = False


@dataclass(slots=True)
class _Tasks:
    """Tasks as arrays (UTM metres), in a fixed order."""

    tasks: list[Task]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    ex: NDArray[np.float64]
    ey: NDArray[np.float64]
    task_s: NDArray[np.float64]
    flight_m: NDArray[np.float64]
    on_water: NDArray[np.bool_]

    @classmethod
    def of(cls, tasks: list[Task], epsg: int) -> _Tasks:
        fwd, _ = utm_transformers(epsg)
        if not tasks:
            e = np.zeros(0)
            return cls(tasks, e, e, e, e, e, e, np.zeros(0, dtype=bool))
        x, y = fwd.transform([t.position[0] for t in tasks], [t.position[1] for t in tasks])
        ex, ey = fwd.transform([t.end[0] for t in tasks], [t.end[1] for t in tasks])
        return cls(tasks, np.asarray(x, float), np.asarray(y, float), np.asarray(ex, float), np.asarray(ey, float),
                   np.array([t.task_s for t in tasks], float), np.array([t.task_flight_m for t in tasks], float),
                   np.array([t.on_water for t in tasks], bool))

    def subset(self, idx: Sequence[int]) -> _Tasks:
        i = np.asarray(idx, dtype=int)
        return _Tasks([self.tasks[k] for k in idx], self.x[i], self.y[i], self.ex[i], self.ey[i], self.task_s[i],
                      self.flight_m[i], self.on_water[i])


@dataclass(slots=True)
class _Row:
    """One slot against every task: a code (0 feasible) and the estimates."""

    code: NDArray[np.int_]
    transit_s: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    go_pct: NDArray[np.float64]  # there and the task
    home_pct: NDArray[np.float64]
    missing: list[frozenset[str]]


def _slot(asset: Asset, epsg: int, *, ignore_state: bool = False) -> _Slot:
    fwd, _ = utm_transformers(epsg)
    x, y = fwd.transform(*asset.position)
    hx, hy = fwd.transform(*asset.base)
    return _Slot(asset, asset.model, (float(x), float(y)), asset.position, (float(hx), float(hy)),
                 asset.battery_pct, asset.alt_m if asset.type == "copter" else 0.0, ignore_state=ignore_state)


def _track(dx: NDArray[np.float64], dy: NDArray[np.float64]) -> NDArray[np.float64]:
    # Grid bearing in UTM 48N; it differs from true north by the meridian convergence, under
    # 1° over the district (106.5–107 °E, 30 °N, 105 °E central meridian).
    return np.degrees(np.arctan2(dx, dy)) % 360.0


def _evaluate(s: _Slot, t: _Tasks, *, reserve_pct: float, wind: Flow | None, current: Flow | None,
              cruise_alt_m: float) -> _Row:
    a, m = s.asset, s.model
    n = len(t.tasks)
    flow = wind if a.type == "copter" else current
    # There: climb to the transit height (copter), then the leg.
    climb = max(cruise_alt_m - s.alt_m, 0.0) if a.type == "copter" else 0.0
    t_up = climb / m.climb_speed_mps
    dx, dy = t.x - s.xy[0], t.y - s.xy[1]
    t_out = cruise_time_s(np.hypot(dx, dy), _track(dx, dy), m, flow)
    transit = t_up + t_out
    go_out = m.hover_pct_per_s * t_up + m.climb_pct_per_m * climb + m.cruise_pct_per_s * t_out
    # The task: its flight part at cruise (still air: a pattern's legs run every way), the rest hovering.
    t_fly = t.flight_m / m.cruise_speed_mps
    duration = np.maximum(t.task_s, t_fly)
    task_pct = m.cruise_pct_per_s * t_fly + m.hover_pct_per_s * (duration - t_fly)
    # Home from the task's end, then land (copter) from the transit height.
    hx, hy = s.home_xy[0] - t.ex, s.home_xy[1] - t.ey
    t_home = cruise_time_s(np.hypot(hx, hy), _track(hx, hy), m, flow)
    t_down = cruise_alt_m / m.descent_speed_mps if a.type == "copter" else 0.0
    home = m.cruise_pct_per_s * t_home + m.hover_pct_per_s * t_down
    go = go_out + task_pct

    code = np.zeros(n, dtype=int)
    missing = [t_.needs - a.payloads for t_ in t.tasks]
    code[s.battery_pct - go - home < reserve_pct] = _BATTERY
    code[~np.isfinite(t_out) | ~np.isfinite(t_home)] = _HEADWAY
    code[np.array([bool(x) for x in missing], dtype=bool)] = _PAYLOAD
    if a.type == "boat":
        if not a.on_water:
            code[:] = _AFLOAT
        code[~t.on_water] = _LAND
    code[np.array([a.type not in t_.vehicle_types for t_ in t.tasks], dtype=bool)] = _TYPE
    if a.state != "ready" and not s.ignore_state:
        code[:] = _STATE
    return _Row(code, transit, duration, go, home, missing)


def _rejection(s: _Slot, task: Task, row: _Row, j: int, reserve_pct: float, wind: Flow | None,
               current: Flow | None) -> Rejection:
    a = s.asset
    c = int(row.code[j])
    if c == _STATE:
        return Rejection(a.name, "state", f"{a.name} is {a.state.replace('_', ' ')}, not ready",
                         f"{a.name}{_STATE_ZH[a.state]}，不可派遣")
    if c == _TYPE:
        want = " or ".join(sorted(task.vehicle_types))
        want_zh = "或".join({"boat": "无人船", "copter": "无人机"}[v] for v in sorted(task.vehicle_types))
        return Rejection(a.name, "vehicle_type", f"the task needs a {want}", f"该任务需要{want_zh}")
    if c == _AFLOAT:
        return Rejection(a.name, "boat_not_afloat", f"{a.name} is not on the water", f"{a.name} 不在水面上")
    if c == _LAND:
        return Rejection(a.name, "boat_on_land", "a boat cannot reach a target on land",
                         "目标在陆地上，无人船无法到达")
    if c == _PAYLOAD:
        miss = ", ".join(sorted(row.missing[j]))
        return Rejection(a.name, "payload", f"{a.name} lacks the payload {miss}", f"{a.name} 缺少载荷 {miss}")
    if c == _HEADWAY:
        what, what_zh = ("wind", "风") if a.type == "copter" else ("current", "水流")
        flow = wind if a.type == "copter" else current
        speed = flow.speed_mps if flow else 0.0
        return Rejection(a.name, "headway",
                         f"the {what} ({speed:.0f} m/s) is too strong for {a.name} ({s.model.cruise_speed_mps:.0f} "
                         "m/s) to hold the track there or home",
                         f"{what_zh}速 {speed:.0f} 米/秒过强，{a.name}（{s.model.cruise_speed_mps:.0f} 米/秒）"
                         "无法保持去程或返程航迹")
    need = float(row.go_pct[j] + row.home_pct[j])
    return Rejection(a.name, "battery",
                     f"battery {s.battery_pct:.0f} % minus about {need:.0f} % (there, the task, home) leaves "
                     f"less than the {reserve_pct:.0f} % reserve",
                     f"电量 {s.battery_pct:.0f}% 减去往返及任务耗电约 {need:.0f}% 后低于 {reserve_pct:.0f}% 的保留电量")


def _unassigned(task: Task, rejections: list[Rejection], able: list[str]) -> Unassigned:
    if able:
        names = ", ".join(able)
        return Unassigned(task.id, int(task.level), "taken",
                          f"every able vehicle ({names}) went to a higher-priority or nearer task, with no "
                          "battery (or round) left to add this one",
                          f"可执行的载具（{names}）均已分配给更高优先级或更近的任务，剩余电量（或轮次）不足以再执行此任务",
                          tuple(rejections))
    if not rejections:
        return Unassigned(task.id, int(task.level), "no_vehicle", "no vehicle to assign", "没有可派遣的载具")
    groups: dict[str, list[str]] = {}
    for r in rejections:
        groups.setdefault(r.code, []).append(r.asset)
    parts = [f"{_CODE_LABEL[c][0]}: {', '.join(v)}" for c, v in groups.items()]
    parts_zh = [f"{_CODE_LABEL[c][1]}：{'、'.join(v)}" for c, v in groups.items()]
    code = next(iter(groups)) if len(groups) == 1 else "infeasible"
    if len(rejections) == 1:
        r = rejections[0]
        return Unassigned(task.id, int(task.level), code, f"no vehicle can do it: {r.asset}: {r.reason}",
                          f"没有载具可执行：{r.asset}：{r.reason_zh}", tuple(rejections))
    return Unassigned(task.id, int(task.level), code, "no vehicle can do it (" + "; ".join(parts) + ")",
                      "没有载具可执行（" + "；".join(parts_zh) + "）", tuple(rejections))


# --- the solver ---------------------------------------------------------------------------------


def _weights(ranks: Sequence[tuple[int, int]], k: int) -> NDArray[np.float64]:
    """Big-M tier weights, tiers the distinct ranks in ascending order.

    ``W_0 = 1``; ``W_t = 1 +`` the most the lower tiers can add up to with at most ``k`` tasks
    (filled from the highest lower tier down). So one task of tier ``t`` outweighs any choice
    below it plus any time difference (< 1), and ``W_t <= (k + 1)^t``; a tier of one task (a
    hand-over) only doubles the scale instead of multiplying it by ``k + 1``.
    """
    count = Counter(ranks)
    order = sorted(count)
    weight: dict[tuple[int, int], float] = {}
    for t, r in enumerate(order):
        room, below = k, 0.0
        for lower in reversed(order[:t]):
            take = min(count[lower], room)
            below += take * weight[lower]
            room -= take
            if room == 0:
                break
        weight[r] = below + 1.0
    return np.array([weight[r] for r in ranks], dtype=float)


def solve(time_s: NDArray[np.float64], feasible: NDArray[np.bool_],
          ranks: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The lexicographic optimum (priority tiers first, then total time) of assets (rows) × tasks (columns):
    ``time_s`` per pair, ``feasible`` pairs only, ``ranks`` per task (higher first); (row, column) pairs.

    Also for callers whose times and feasibility come from full mission plans (``command.plans``).
    """
    n_r, n_c = time_s.shape
    if n_r == 0 or n_c == 0 or not feasible.any():
        return []
    k = min(n_r, n_c)
    t_max = float(time_s[feasible].max())
    scale = k * t_max + 1.0
    w = _weights(ranks, k)
    cost = np.where(feasible, time_s / scale - w[None, :], 0.0)
    r_idx, c_idx = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(r_idx, c_idx, strict=True) if feasible[i, j]]


def _solve(rows: list[_Row], ranks: Sequence[tuple[int, int]], offsets: Sequence[float]) -> list[tuple[int, int]]:
    """Lexicographic optimum of one round: (row, column) pairs of feasible assignments."""
    if not rows or not ranks:
        return []
    feasible = np.vstack([r.code == _OK for r in rows])
    time = np.vstack([off + r.transit_s + r.duration_s for r, off in zip(rows, offsets, strict=True)])
    return solve(time, feasible, ranks)


@dataclass(frozen=True, slots=True)
class _Moved:
    """A task taken off an asset: who had it, how far it got, where the work stands."""

    from_asset: str
    progress: float
    point: tuple[float, float] | None


def _remaining(task: Task, moved: _Moved | None) -> Task:
    """The part of a task left to do (the whole task when nothing is done)."""
    if moved is None or (moved.progress <= 0.0 and moved.point is None):
        return task
    left = max(0.0, 1.0 - moved.progress)
    return replace(task, position=moved.point or task.position, task_s=task.task_s * left,
                   task_flight_m=task.task_flight_m * left,
                   area_m2=None if task.area_m2 is None else max(task.area_m2 * left, 1e-9))


def _assign(tasks: list[Task], assets: list[Asset], *, reserve_pct: float, wind: Flow | None, current: Flow | None,
            cruise_alt_m: float, rounds: int | None, epsg: int,
            moved: Mapping[str, _Moved] | None = None, ignore_state: bool = False) -> Plan:
    moved = moved or {}
    work = [_remaining(t, moved.get(t.id)) for t in tasks]
    ranks = [(int(t.level), 1 if t.id in moved else 0) for t in tasks]
    all_tasks = _Tasks.of(work, epsg)
    slots = [_slot(a, epsg, ignore_state=ignore_state) for a in assets]
    remaining = list(range(len(tasks)))
    first_rows: list[_Row] = []
    assignments: list[Assignment] = []
    n_round = 0
    while remaining and slots and (rounds is None or n_round < rounds):
        sub = all_tasks.subset(remaining)
        rows = [_evaluate(s, sub, reserve_pct=reserve_pct, wind=wind, current=current, cruise_alt_m=cruise_alt_m)
                for s in slots]
        if n_round == 0:
            first_rows = rows
        pairs = _solve(rows, [ranks[j] for j in remaining], [s.offset_s for s in slots])
        if not pairs:
            break
        next_slots: list[_Slot] = []
        taken: set[int] = set()
        for i, jj in sorted(pairs):
            s, row, j = slots[i], rows[i], remaining[jj]
            task, done = tasks[j], work[j]
            mv = moved.get(task.id)
            after = s.battery_pct - float(row.go_pct[jj])
            start_s = s.offset_s + float(row.transit_s[jj])
            finish_s = start_s + float(row.duration_s[jj])
            assignments.append(Assignment(
                s.asset.name, task.id, s.order, int(task.level), s.lonlat, done.position,
                float(row.transit_s[jj]), float(row.duration_s[jj]), start_s, finish_s, float(row.go_pct[jj]), after,
                float(row.home_pct[jj]), after - float(row.home_pct[jj]) - reserve_pct, task.incident_id,
                mv.from_asset if mv else None, mv.progress if mv else 0.0, mv.point if mv else None))
            ex, ey = float(sub.ex[jj]), float(sub.ey[jj])
            next_slots.append(_Slot(s.asset, s.model, (ex, ey), done.end, s.home_xy, after,
                                    cruise_alt_m if s.asset.type == "copter" else 0.0, finish_s, s.order + 1,
                                    s.ignore_state))
            taken.add(j)
        remaining = [j for j in remaining if j not in taken]
        slots = next_slots
        n_round += 1
    # Leftovers, with every asset's reason as it stands now (the first round's evaluation).
    first_slots = [_slot(a, epsg, ignore_state=ignore_state) for a in assets] if first_rows else []
    unassigned = []
    for j in sorted(remaining, key=lambda j: (-int(tasks[j].level), tasks[j].id)):
        rej, able = [], []
        for s, row in zip(first_slots, first_rows, strict=True):  # round 0 saw every task, in order
            if row.code[j] == _OK:
                able.append(s.asset.name)
            else:
                rej.append(_rejection(s, work[j], row, j, reserve_pct, wind, current))
        unassigned.append(_unassigned(tasks[j], rej, able))
    assignments.sort(key=lambda a: (a.asset, a.order))
    return Plan(tuple(assignments), tuple(unassigned), n_round)


def assign(tasks: Iterable[Task], assets: Iterable[Asset], *, reserve_pct: float = DEFAULT_RESERVE_PCT,
           wind: Flow | None = None, current: Flow | None = None, cruise_alt_m: float = COPTER_CRUISE_ALT_M,
           rounds: int | None = None, epsg: int = UTM_48N) -> Plan:
    """Assign tasks to assets: the most urgent tasks first, then the least total time.

    ``wind`` applies to copters, ``current`` to boats. ``rounds`` caps the tasks per asset
    (1: one each; None: chain while battery allows). Tasks with ``min_assets > 1`` are split
    first (``split_area_task``). Every task not assigned is in ``Plan.unassigned`` with why.
    """
    if not (math.isfinite(reserve_pct) and 0 <= reserve_pct <= 100):
        raise ValueError(f"reserve_pct must be in 0..100, got {reserve_pct!r}")
    _nonneg("cruise_alt_m", cruise_alt_m)
    if rounds is not None and (not isinstance(rounds, int) or rounds < 1):
        raise ValueError(f"rounds must be a whole number ≥ 1 or None, got {rounds!r}")
    return _assign(_expand(tasks), _sorted_assets(assets), reserve_pct=reserve_pct, wind=wind, current=current,
                   cruise_alt_m=cruise_alt_m, rounds=rounds, epsg=epsg)


# --- re-planning --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetLost:
    """The link to an asset is lost: its tasks go to others."""

    name: str


@dataclass(frozen=True, slots=True)
class AssetLow:
    """An asset must return (battery low): its tasks go to others."""

    name: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """A new task arrives (it may pre-empt a lower-priority one when no free asset can take it)."""

    task: Task


ReplanEvent = AssetLost | AssetLow | NewTask


def asset_lost(name: str) -> AssetLost:
    return AssetLost(name)


def asset_low(name: str) -> AssetLow:
    return AssetLow(name)


def new_task(task: Task) -> NewTask:
    return NewTask(task)


@dataclass(frozen=True, slots=True)
class Preemption:
    """A task taken off an asset for a higher-priority one, back in the queue."""

    task_id: str
    asset: str
    by_task_id: str
    progress: float
    progress_point: tuple[float, float] | None
    reason: str
    reason_zh: str


@dataclass(frozen=True, slots=True)
class Replan:
    """The plan after an event: everything assigned now, what is left, what moved and why."""

    assignments: tuple[Assignment, ...]
    unassigned: tuple[Unassigned, ...]
    handed_over: tuple[str, ...] = ()  # ids of the tasks taken off the event's asset
    preempted: tuple[Preemption, ...] = ()
    changed: tuple[Assignment, ...] = ()  # assignments that are new in this plan
    states: Mapping[str, str] = field(default_factory=dict)  # asset states the event set

    def of_task(self, task_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.task_id == task_id), None)


def replan(current_assignments: Plan | Sequence[Assignment], tasks: Iterable[Task], assets: Iterable[Asset],
           event: ReplanEvent, *, reserve_pct: float = DEFAULT_RESERVE_PCT, wind: Flow | None = None,
           current: Flow | None = None, cruise_alt_m: float = COPTER_CRUISE_ALT_M, epsg: int = UTM_48N) -> Replan:
    """Re-plan after ``event``, moving only what it touches.

    ``current_assignments`` are the live assignments (done ones removed; ``progress`` and
    ``progress_point`` as last reported); ``tasks`` every open task (assigned or queued);
    ``assets`` the fleet as it stands (busy ones ``on_task``, positions and battery now).

    * ``AssetLost`` / ``AssetLow``: the asset becomes ``lost`` / ``returning``; its tasks go
      back to the queue with ``handover_from``, the one in progress (its lowest ``order``) with
      its progress and point, and rank above queued tasks of the same level.
    * ``NewTask``: the task joins the queue.

    The queue is assigned to the free assets (ready, no current task). A new or handed-over
    task that still finds no asset may pre-empt the current work of a busy asset whose tasks
    are all of a strictly lower level and which can do it from where it is (the lowest level,
    then the shortest transit, then the name, is chosen); the pre-empted tasks go back to the
    queue, which is then assigned once more to the free assets. Busy assets keep their chains
    and take no more queued tasks here.
    """
    live = tuple(current_assignments.assignments if isinstance(current_assignments, Plan) else current_assignments)
    tasks = list(tasks)
    if isinstance(event, NewTask):
        if any(t.id == event.task.id for t in tasks) or any(a.task_id == event.task.id for a in live):
            raise ValueError(f"task {event.task.id} is already known: a new task needs a new id")
        tasks.append(event.task)
    all_tasks = {t.id: t for t in _expand(tasks)}
    fleet = {a.name: a for a in _sorted_assets(assets)}
    for a in live:
        if a.task_id not in all_tasks:
            raise ValueError(f"assignment of {a.asset} refers to an unknown task {a.task_id!r}")
        if a.asset not in fleet:
            raise ValueError(f"assignment of task {a.task_id} refers to an unknown asset {a.asset!r}")

    states: dict[str, str] = {}
    moved: dict[str, _Moved] = {}
    handed: list[str] = []
    if isinstance(event, AssetLost | AssetLow):
        if event.name not in fleet:
            raise ValueError(f"unknown asset {event.name!r}")
        state: AssetState = "lost" if isinstance(event, AssetLost) else "returning"
        states[event.name] = state
        fleet[event.name] = replace(fleet[event.name], state=state)
        chain = sorted((a for a in live if a.asset == event.name), key=lambda a: a.order)
        for k, a in enumerate(chain):  # the first is in progress; the rest had not started
            moved[a.task_id] = _Moved(event.name, a.progress if k == 0 else 0.0,
                                      a.progress_point if k == 0 else None)
        live = tuple(a for a in live if a.asset != event.name)
        handed = [a.task_id for a in chain]
        event_ids = list(handed)
    else:
        event_ids = [t.id for t in _expand([event.task])]

    def run(todo: Iterable[str], vehicles: list[Asset], *, rounds: int | None = None,
            ignore_state: bool = False) -> Plan:
        return _assign([all_tasks[i] for i in sorted(todo)], vehicles, reserve_pct=reserve_pct, wind=wind,
                       current=current, cruise_alt_m=cruise_alt_m, rounds=rounds, epsg=epsg, moved=moved,
                       ignore_state=ignore_state)

    busy = {a.asset for a in live}
    free = [a for a in fleet.values() if a.name not in busy]
    plan = run(set(all_tasks) - {a.task_id for a in live}, free)

    # Pre-emption: an event task nobody free could take, against busy assets on lower work.
    preempted: list[Preemption] = []
    forced: list[Assignment] = []
    left = {u.task_id for u in plan.unassigned}
    for tid in sorted((i for i in event_ids if i in left), key=lambda i: (-int(all_tasks[i].level), i)):
        task = all_tasks[tid]
        chains: dict[str, list[Assignment]] = {}
        for a in live:
            chains.setdefault(a.asset, []).append(a)
        best: tuple[tuple[int, float, str], Assignment] | None = None
        for name, chain in sorted(chains.items()):
            top = max(a.level for a in chain)
            if top >= int(task.level):
                continue
            one = run([tid], [fleet[name]], rounds=1, ignore_state=True)
            if one.assignments:
                key = (top, one.assignments[0].transit_s, name)
                if best is None or key < best[0]:
                    best = (key, one.assignments[0])
        if best is None:
            continue
        got = best[1]
        forced.append(got)
        victims = sorted((a for a in live if a.asset == got.asset), key=lambda a: a.order)
        for k, v in enumerate(victims):
            progress, point = (v.progress, v.progress_point) if k == 0 else (0.0, None)
            moved[v.task_id] = _Moved(got.asset, progress, point)
            preempted.append(Preemption(
                v.task_id, got.asset, tid, progress, point,
                f"{got.asset} taken off task {v.task_id} ({Level(v.level).colour}) for task {tid} "
                f"({Level(task.level).colour}): no free vehicle could do it",
                f"{got.asset} 从任务 {v.task_id}（{Level(v.level).colour_zh}）调往任务 {tid}"
                f"（{Level(task.level).colour_zh}）：没有空闲载具可执行"))
        live = tuple(a for a in live if a.asset != got.asset)
    if forced:
        plan = run(set(all_tasks) - {a.task_id for a in live} - {a.task_id for a in forced}, free)

    new = tuple(sorted((*plan.assignments, *forced), key=lambda a: (a.asset, a.order)))
    everything = tuple(sorted((*live, *new), key=lambda a: (a.asset, a.order)))
    return Replan(everything, plan.unassigned, tuple(handed), tuple(preempted), new, states)
