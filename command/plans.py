"""Vehicle task plans of incidents: proposed, approved (with a pilot in command), edited or
rejected by a dispatcher, then flown and followed until the vehicle is home.

The service mixes this in (``Service(TaskPlans, ...)``): it uses the service's store, fleet,
event bus and flight code. The planning itself is pure (``command.dispatch``):

* ``tasks_for_incident``: what the incident calls for (recon, searches, boat survey, ...);
* ``plan_task`` for every task × ready vehicle: a checked mission or the reasons it is refused;
* an optimal assignment of tasks to vehicles (``dispatch.assign.solve``: priority tiers first, then
  time to target plus task time; refused pairs excluded), one task per vehicle per proposal.

A task whose predecessor is proposed in the same round (a fire's overwatch after its recon)
waits for the next proposal. Approval is idempotent: a plan is approved once, and a task has
at most one plan flying at a time (compare-and-set in the store, across replicas). Every
decision, with who made it and why, is an event.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from shapely.geometry import LineString, Point, shape

from .dispatch.assign import solve
from .dispatch.energy import EnergyModel
from .dispatch.errors import PlanRefused
from .dispatch.geometry import ground_distance_m, utm_transformers
from .risk.rules import Level
from .dispatch.launch import MULTIROTOR, AirframeLimits, boat_limits, check_launch
from .dispatch.launch import override as launch_override
from .dispatch.patterns import WIDE_24MM_HFOV_DEG, partition_area
from .dispatch.planner import SEARCH_SPEED_MPS, PlanVehicle, TaskPlan, layer_plans, plan_task
from .dispatch.patrols import due, patrol_task
from .dispatch.tasks import TaskSpec, tasks_for_incident
from .dispatch.waterways import Crossing, RiverFlow, Waterway
from .store import AlreadyDecided
from .store.models import PlanRow

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine, Mapping

    from sensors.registry import Registry
    from uav.fleet import Fleet

    from .clock import Clock
    from .dispatch.allocation import Candidate
    from .dispatch.mission import MissionPlan
    from .district import District, VehicleSpec
    from .events import EventBus
    from .grants import AirspaceGrants
    from .runtime import Follow, Sortie
    from .sensing import Sensing
    from .settings import Settings
    from .store import Store
    from .store.models import IncidentRow

__all__ = ["TaskPlans"]

log = logging.getLogger("command.plans")

PROPOSAL_FRESH_S = 300.0  # an approval older than this re-plans the task first (the vehicle has moved on)
REACHED_M = 60.0  # within this of the task's first point: "on task"
# An area task one vehicle would work longer than this is split among free vehicles that can fly
# it (equal areas): people cut off by a flood should not wait an hour for one drone. Our figure.
SPLIT_ABOVE_S = 1200.0
CURRENT_FRESH_S = 2 * 3600.0  # a river's measured current counts for boats this long
CHANNEL_DEG = 0.005  # about 500 m: a river's current holds in the water this near its centre line


@dataclass(frozen=True)
class _World:
    """What planning reads from the store, read once on the event loop."""

    grants: tuple[Any, ...]
    waterway: Waterway


@dataclass(frozen=True)
class _Ask:
    """A proposal's inputs, read on the event loop."""

    incident_id: int
    now: datetime
    tasks: list[TaskSpec]
    todo: list[TaskSpec]
    waiting: list[TaskSpec]
    vehicles: list[PlanVehicle]
    world: _World


@dataclass(frozen=True)
class _Proposal:
    """A proposal's outcome, computed off the loop: the tasks (with any parts), the plan chosen for each,
    the refusals, and which tasks had a plan for some vehicle."""

    todo: list[TaskSpec]
    chosen: dict[int, TaskPlan]
    refusals: dict[int, list[str]]
    refusals_zh: dict[int, list[str]]
    planned: set[int]


class TaskPlans:
    """Mixin of ``command.runtime.Service``: the dispatcher's task plans."""

    _task_plans: dict[int, tuple[float, TaskPlan]]
    _waterway_cache: tuple[Any, Waterway] | None = None
    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        district: District
        registry: Registry
        sensing: Sensing
        settings: Settings
        clock: Clock
        fleet: Fleet
        grants: AirspaceGrants
        vehicle_specs: dict[str, VehicleSpec]
        assignments: dict[str, int]
        _tg: asyncio.TaskGroup | None
        _plan_of_vehicle: dict[str, int]
        _patrols_done: set[tuple[str, str]]

        def _candidates(self) -> list[Candidate]: ...
        def incident_view(self, row: IncidentRow, *, evidence: bool = False) -> dict[str, Any]: ...
        def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None: ...
        def _count_dispatch(self, outcome: str) -> None: ...
        async def _fly(self, sortie: Sortie, name: str, plan: MissionPlan, *, approved_by: str,
                       approved_at: datetime, pilot: str, params: Mapping[str, float] | None = None,
                       follow: Follow | None = None) -> None: ...

    # -- proposing ------------------------------------------------------------------------
    def _plan_vehicles(self, *, only: str | None = None) -> list[PlanVehicle]:
        out = []
        for c in self._candidates():
            if not c.available or (only is not None and c.name != only):
                continue
            spec = self.vehicle_specs[c.name]
            ground = spec.base_alt_m if spec.type == "boat" else self.district.terrain.elevation_at(c.lon, c.lat)
            out.append(PlanVehicle(c.name, c.type, (c.lon, c.lat), float(ground), c.battery_pct, c.cruise_speed_mps,
                                   c.endurance_s, spec.payloads, spec.air_draft_m))
        return out

    def _plan_one(self, task: TaskSpec, vehicle: PlanVehicle, now: datetime, *, world: _World | None = None,
                  **kw: Any) -> TaskPlan:
        """One task for one vehicle; ``world`` (grants, waterway) read beforehand lets it run off the event loop."""
        world = world or self._world(now)
        return plan_task(task, vehicle, terrain=self.district.terrain.elevation_along,
                         zones=self.district.airspace, water=self.district.water,
                         grants=world.grants, now=now,
                         clearance_m=kw.get("clearance_m", self.settings.clearance_m),
                         rtl_alt_m=kw.get("rtl_alt_m"), epsg=self.district.utm_epsg,
                         waterway=world.waterway if vehicle.type == "boat" else None)

    def _world(self, now: datetime) -> _World:
        """What planning reads from the store: the airspace grants in force and the boats' waterway."""
        return _World(tuple(self.grants.active(now)), self._waterway(now))

    def waterway(self) -> Waterway:
        return self._waterway(self.clock.now())

    def _waterway(self, now: datetime) -> Waterway:
        """Where boats may go now: the rivers and the flooded ground deep enough (open flood incidents),
        each bridge's headroom over today's water, the rivers' measured currents (``dispatch.waterways``)."""
        from .runtime import Status

        floods = [r for r in self.store.incidents() if r.kind == "flood" and r.status != Status.CLOSED]
        readings = []
        for sid in self.registry:
            spec = self.registry[sid]
            if spec.kind == "river_level":
                newest = self.sensing.newest(spec.sensor_id, "velocity")
                fresh = newest is not None and (now - newest.time).total_seconds() <= CURRENT_FRESH_S
                if newest is not None and fresh and newest.flag != "bad":
                    readings.append((spec.sensor_id, str(spec.properties.get("river") or ""), newest.value,
                                     newest.time))
        key = (tuple((r.id, r.updated_at) for r in floods), tuple(readings))
        cached = self._waterway_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        d = self.district
        extents = []  # (the gauge's river, its extent)
        for r in floods:
            for key, m in (r.detail.get("members") or {}).items():
                spec = self.registry.get(m.get("sensor_id", key))
                extents.append((str(spec.properties.get("river") or "") if spec else "",
                                (m.get("model") or {}).get("extent") or {}))
        deep = [shape(e["boat_geometry"]) for _, e in extents if e.get("boat_geometry")]
        water = shapely.union_all([d.water, *deep]) if deep else d.water
        crossings = []
        for b in d.bridges:
            centre = b.line.interpolate(0.5, normalized=True)
            surface = float(d.terrain.elevation_at(centre.x, centre.y))  # water areas hold their low-water surface
            for river, e in extents:  # a gauge's level holds on its own river (a flat surface spills onto others)
                if (river == b.river and e.get("geometry") and e.get("surface_m") is not None
                        and shape(e["geometry"]).intersects(b.line)):
                    surface = max(surface, float(e["surface_m"]))
            crossings.append(Crossing(b.id, b.name, b.name_zh, b.line, b.headroom_m(surface)))
        flows = []
        for river in d.rivers:
            found = [(v, sid) for sid, rid, v, _ in readings if rid == river.id]
            if found:  # the strongest measured on the river holds for all of it (the boat must beat it anywhere)
                speed, sid = max(found)
                # its channel: the water within CHANNEL_DEG of its centre line (the water areas are one union)
                flows.append(RiverFlow(river.id, river.line, d.water.intersection(river.line.buffer(CHANNEL_DEG)),
                                       float(speed), sid))
        out = Waterway(water, tuple(crossings), tuple(flows), epsg=d.utm_epsg)  # type: ignore[arg-type]
        self._waterway_cache = (key, out)
        return out

    def _layered(self, chosen: dict[int, TaskPlan], todo: list[TaskSpec], vehicles: list[PlanVehicle],
                 refusals: dict[int, list[str]], refusals_zh: dict[int, list[str]],
                 now: datetime, world: _World) -> dict[int, TaskPlan]:
        """Copters over one incident fly on altitude layers that keep them vertically apart, with staggered
        return altitudes (``planner.layer_plans``); a copter no layer separates is not proposed."""
        copters = sorted(i for i, p in chosen.items() if p.mission.vehicle_type == "copter")
        if len(copters) < 2:
            return chosen
        by_name = {v.name: v for v in vehicles}
        base = self.settings.clearance_m

        def replan(k: int, clearance: float, rtl: float) -> TaskPlan:
            i = copters[k]
            if k == 0 and clearance == base:
                return chosen[i]
            return self._plan_one(todo[i], by_name[chosen[i].mission.vehicle], now, world=world,
                                  clearance_m=clearance, rtl_alt_m=rtl)

        for i, result in zip(copters, layer_plans(len(copters), replan, base_clearance_m=base), strict=True):
            if isinstance(result, PlanRefused):
                refusals[i].append(f"{chosen[i].mission.vehicle}, kept apart from the other vehicles: "
                                   + "; ".join(result.reasons))
                refusals_zh[i].append(f"{chosen[i].mission.vehicle}（与其他无人机保持间隔）：" + "；".join(result.reasons_zh))
                chosen.pop(i)
            else:
                chosen[i] = result
        return chosen

    def _split_area(self, task: TaskSpec, n: int) -> list[TaskSpec]:
        """``task``'s area in ``n`` equal parts across its long axis (``patterns.partition_area``)."""
        try:
            shares = partition_area(task.area, n, agl_m=self.settings.clearance_m, hfov_deg=WIDE_24MM_HFOV_DEG,
                                    speed_mps=SEARCH_SPEED_MPS)
        except (ValueError, TypeError):
            return []
        return [replace(task, key=f"{task.key}-{k + 1}of{n}", area=sh.area,
                        point=sh.area.representative_point().coords[0],
                        reason=f"{task.reason} (part {k + 1} of {n}, {sh.area_m2 / 1e6:.2f} km²)",
                        reason_zh=f"{task.reason_zh}（第 {k + 1}/{n} 块）") for k, sh in enumerate(shares)]

    def _task_by_key(self, incident_id: int, key: str) -> TaskSpec | None:
        """One of the incident's tasks, or a part of a split one (``<task>-<k>of<n>``)."""
        tasks = {t.key: t for t in self._incident_tasks(incident_id)}
        if key in tasks:
            return tasks[key]
        base, _, part = key.rpartition("-")
        k, _, n = part.partition("of")
        if base in tasks and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n):
            parts = self._split_area(tasks[base], int(n))
            return parts[int(k) - 1] if parts else None
        return None

    def _incident_tasks(self, incident_id: int) -> list[TaskSpec]:
        row = self.store.incident(incident_id)
        if row.kind == "patrol":
            return [self._patrol_task(row.detail["patrol_id"], row.id)]
        return tasks_for_incident(row.id, row.kind, row.level, row.lon, row.lat, row.detail,
                                  elevation=self.district.terrain.elevation_along,
                                  water=self.district.water, epsg=self.district.utm_epsg)

    def propose_plans(self, incident_id: int, *, by: str, handover: dict[str, int] | None = None) -> dict[str, Any]:
        """Plans for the incident's tasks that have none yet: the best vehicle for each, or why none can.

        ``handover`` (task key → plan id) proposes those tasks again although their plan still flies:
        its vehicle is leaving the task. Synchronous (it plans on the calling thread); the API uses
        ``propose_plans_async``, which plans in a worker thread so the event loop keeps serving the links."""
        ask = self._proposal_inputs(incident_id, handover)
        return self._proposal_store(ask, self._proposal_compute(ask), by=by, handover=handover)

    async def propose_plans_async(self, incident_id: int, *, by: str,
                                  handover: dict[str, int] | None = None) -> dict[str, Any]:
        """``propose_plans`` with the planning (seconds for a fleet against split areas) off the event loop:
        the inputs are read and the proposals stored on the loop, the pure planning runs in a thread."""
        import asyncio

        ask = self._proposal_inputs(incident_id, handover)
        result = await asyncio.to_thread(self._proposal_compute, ask)
        return self._proposal_store(ask, result, by=by, handover=handover)

    def _proposal_inputs(self, incident_id: int, handover: dict[str, int] | None) -> _Ask:
        from .runtime import Conflict, Status

        row = self.store.incident(incident_id)
        if row.status == Status.CLOSED:
            raise Conflict(f"incident {incident_id} is closed")
        now = self.clock.now()
        tasks = self._incident_tasks(incident_id)
        keys = {t.key for t in tasks}
        busy = {p.task_key for p in self.store.plans(
            incident_id=incident_id, states=("proposed", "approved", "uploading", "flying", "returning"))
                if not p.progress.get("handed_over")}
        busy |= {b.rpartition("-")[0] for b in busy if "of" in b.rpartition("-")[2]}  # a split task is busy
        if handover is not None:
            tasks = [t for k in handover if (t := self._task_by_key(incident_id, k)) is not None]
        done = {p.task_key for p in self.store.plans(incident_id=incident_id, states=("landed",))}
        waiting = [t for t in tasks if t.after in keys and t.after not in done]
        todo = [t for t in tasks if t.key not in busy and t not in waiting]
        return _Ask(incident_id, now, tasks, todo, waiting, self._plan_vehicles(), self._world(now))

    def _proposal_compute(self, ask: _Ask) -> _Proposal:
        """Every task × vehicle planned, areas split where that helps, the assignment and the altitude layers.
        Reads nothing from the store and publishes nothing: safe in a worker thread."""
        now, tasks, vehicles, world = ask.now, ask.tasks, ask.vehicles, ask.world
        todo = list(ask.todo)
        plans: dict[tuple[int, int], TaskPlan] = {}
        refusals: dict[int, list[str]] = {}
        refusals_zh: dict[int, list[str]] = {}

        def plan_all(i: int, task: TaskSpec) -> None:
            refusals[i], refusals_zh[i] = [], []
            for j, v in enumerate(vehicles):
                try:
                    plans[(i, j)] = self._plan_one(task, v, now, world=world)
                except PlanRefused as err:
                    refusals[i].append(f"{v.name}: {'; '.join(err.reasons)}")
                    refusals_zh[i].append(f"{v.name}：{'；'.join(err.reasons_zh)}")

        def forget(first: int) -> None:
            for key in [k for k in plans if k[0] >= first]:
                del plans[key]
            del todo[first:]

        def slowest_part(first: int, n: int) -> float:
            """The longest working time among parts ``first .. first+n-1`` flown by n different vehicles, on the
            assignment of least total working time (inf: the parts cannot each have a vehicle of their own)."""
            cost = np.full((n, len(vehicles)), np.inf)
            for (k, j), p in plans.items():
                if first <= k < first + n:
                    cost[k - first, j] = p.pattern.est_duration_s
            finite = np.where(np.isfinite(cost), cost, 1e12)
            rows, cols = linear_sum_assignment(finite)
            return float(max(cost[r, c] for r, c in zip(rows, cols))) if len(rows) == n else math.inf

        for i, task in enumerate(list(todo)):
            plan_all(i, task)
            if task.area is None:
                continue
            capable = [v for v in vehicles if v.type in task.vehicle_types and task.needs <= v.payloads]
            single = min((p.pattern.est_duration_s for (k, _), p in plans.items() if k == i), default=math.inf)
            if single <= SPLIT_ABOVE_S or len(capable) < 2:
                continue
            # An area no single vehicle can cover within its battery, or one that would keep a vehicle on it
            # longer than SPLIT_ABOVE_S while others stand by: equal parts, one vehicle each. The other tasks
            # this proposal has for the same vehicles keep one each.
            carried = set().union(*(v.payloads for v in capable))
            others = sum(1 for t in tasks if t is not task and t.key in {x.key for x in todo}
                         and t.vehicle_types & task.vehicle_types and t.needs <= carried)
            best: tuple[float, int] | None = None
            for n in range(2, max(len(capable) - others, 1 if math.isfinite(single) else len(capable)) + 1):
                parts = self._split_area(task, n)
                if not parts:
                    break
                first = len(todo)
                for part in parts:
                    todo.append(part)
                    plan_all(len(todo) - 1, part)
                worst = slowest_part(first, n)
                forget(first)
                if math.isfinite(worst) and worst < single and (best is None or worst < best[0]):
                    best = (worst, n)
                if best is not None and best[0] <= SPLIT_ABOVE_S:
                    break
            if best is None:
                continue
            n = best[1]
            first = len(todo)
            for part in self._split_area(task, n):
                todo.append(part)
                plan_all(len(todo) - 1, part)
            for key in [k for k in plans if k[0] == i]:
                del plans[key]  # the split stands in for the whole
            todo[i] = replace(task, key=f"{task.key}-whole")
            refusals[i] = [f"split into {n} equal parts, one vehicle each"]
            refusals_zh[i] = [f"已等分为 {n} 块，每台一块"]
        chosen: dict[int, TaskPlan] = {}
        if plans:
            # vehicles × tasks, by the allocation's own solver (priority tiers, then time), on the plans' figures
            time_s = np.zeros((len(vehicles), len(todo)))
            feasible = np.zeros((len(vehicles), len(todo)), dtype=bool)
            for (i, j), p in plans.items():
                time_s[j, i] = p.time_to_target_s + p.mission.est_duration_s
                feasible[j, i] = True
            for j, i in solve(time_s, feasible, [(t.priority, 0) for t in todo]):
                chosen[i] = plans[(i, j)]
            chosen = self._layered(chosen, todo, vehicles, refusals, refusals_zh, now, world)
        return _Proposal(todo, chosen, refusals, refusals_zh, {k for (k, _) in plans})

    def _proposal_store(self, ask: _Ask, result: _Proposal, *, by: str,
                        handover: dict[str, int] | None) -> dict[str, Any]:
        incident_id, now, todo, chosen = ask.incident_id, ask.now, result.todo, result.chosen
        refusals, refusals_zh = result.refusals, result.refusals_zh
        out = []
        for i, task in enumerate(todo):
            if task.key.endswith("-whole"):
                continue  # replaced by its parts
            p = chosen.get(i)
            if p is not None:
                wire = p.to_wire()
                if handover and task.key in handover:
                    wire["handover_from"] = handover[task.key]
                prow = self.store.insert_plan(
                    incident_id=incident_id, task_key=task.key, vehicle=p.mission.vehicle, state="proposed",
                    task=task.to_wire(), proposal=wire, proposed_by=by, proposed_at=now, updated_at=now)
                self._task_plans[prow.id] = (time.monotonic(), p)
            else:
                why = refusals[i] or ["no vehicle is ready (all busy, in maintenance, lost or not heard)"]
                why_zh = refusals_zh[i] or ["无可用无人机（均在任务中、维护中、失联或未连接）"]
                if i in result.planned:
                    why = [*why, "the vehicles that could fly it are taken by other tasks of this proposal"]
                    why_zh = [*why_zh, "可执行该任务的无人机已分配给本次规划的其他任务"]
                preempt = self._preemptible(incident_id, task)
                if preempt:
                    why = [*why, "a vehicle flying for a lower-priority incident could be recalled for it: "
                           + ", ".join(f"{c['vehicle']} (plan {c['plan_id']}, {c['incident_level']} incident "
                                       f"{c['incident_id']})" for c in preempt)]
                    why_zh = [*why_zh, "可召回正在执行较低级别事件任务的无人机：" + "、".join(c["vehicle"] for c in preempt)]
                prow = self.store.insert_plan(
                    incident_id=incident_id, task_key=task.key, vehicle=None, state="refused",
                    task=task.to_wire(), proposal={"reasons": why, "reasons_zh": why_zh, "preempt": preempt},
                    proposed_by=by, proposed_at=now, updated_at=now)
            view = self.plan_view(prow)
            self.bus.publish("plan.proposed" if p is not None else "plan.refused", view)
            out.append(view)
        return {"plans": out, "waiting": [{"key": t.key, "after": t.after, "reason": f"waits for {t.after}"}
                                          for t in ask.waiting]}

    # -- scheduled patrols -----------------------------------------------------------------
    def _patrol_task(self, patrol_id: str, run_id: int) -> TaskSpec:
        patrol = next(p for p in self.district.patrols if p.id == patrol_id)
        d = self.district
        forests = {str(f["properties"].get("id")): shape(f["geometry"])
                   for f in d.layers.get("landcover", {}).get("features", []) if f.get("properties")}
        return patrol_task(patrol, patrol_run=run_id, rivers={r.id: r.line for r in d.rivers}, forests=forests,
                           facilities={f.id: (f.lon, f.lat) for f in d.facilities}, boundary=d.boundary,
                           epsg=d.utm_epsg)

    def run_patrols(self) -> list[int]:
        """Start the patrol slots that have come: each a patrol run (an incident of kind ``patrol``) with its
        plan, flown with the duty pilot when there is one (and the launch weather allows), else left for a
        dispatcher. Patrols yield: none starts while an incident of yellow or above is open."""
        from .runtime import LOCAL, Status

        now = self.clock.now()
        started = []
        for patrol, slot in due(self.district.patrols, now.astimezone(LOCAL).replace(tzinfo=None),
                                self._patrols_done):
            self._patrols_done.add((patrol.id, slot.isoformat()))
            busy = [r.id for r in self.store.incidents(status=Status.OPEN)
                    if r.kind != "patrol" and r.level >= 2]
            busy += [r.id for r in self.store.incidents(status=Status.DISPATCHED)
                     if r.kind != "patrol" and r.level >= 2]
            if busy:
                self.bus.publish("patrol.skipped", {"patrol": patrol.id, "slot": slot.isoformat(),
                                                    "reason": f"incidents {sorted(busy)} need the vehicles"})
                continue
            row = self.store.insert_incident(
                kind="patrol", sensor_id=None, level=0, status=Status.OPEN, lon=0.0, lat=0.0, on_water=False,
                opened_at=now, updated_at=now,
                detail={"title": f"Scheduled patrol: {patrol.name}", "title_zh": f"定期巡查：{patrol.name_zh}",
                        "reason": f"{patrol.name} at {slot:%H:%M} (scheduled)",
                        "reason_zh": f"{patrol.name_zh}（{slot:%H:%M} 定期）", "patrol_id": patrol.id,
                        "slot": slot.isoformat(), "members": {}})
            task = self._patrol_task(patrol.id, row.id)
            row = self.store.update_incident(row.id, lon=task.point[0], lat=task.point[1])
            self.bus.publish("incident.opened", self.incident_view(row))
            proposed = self.propose_plans(row.id, by="schedule")["plans"]
            pilot = self.settings.duty_pilot
            for view in proposed:
                if view["state"] == "proposed" and pilot and self._tg is not None:
                    try:
                        self.approve_plan(view["id"], by="schedule", pilot=pilot)
                    except Exception as err:  # noqa: BLE001 — a person decides then
                        self.bus.publish("plan.auto_approval_skipped", {"id": view["id"], "incident_id": row.id,
                                                                         "reason": str(err)})
            started.append(row.id)
        return started

    def yield_patrols(self) -> None:
        """An orange or red incident opened: patrols in flight come home, their vehicles free for it."""
        for p in self.store.plans(states=("approved", "uploading", "flying")):
            if self.store.incident(p.incident_id).kind != "patrol" or not p.vehicle:
                continue
            self._spawn(self._recall_patrol(p.id, p.vehicle), name=f"recall-patrol-{p.id}")

    async def _recall_patrol(self, plan_id: int, name: str) -> None:
        try:
            await self.fleet.vehicle(name).rtl()
        except Exception as err:  # noqa: BLE001 — said, and the patrol flies on
            self.bus.publish("dispatch.alert", {"plan_id": plan_id, "vehicle": name,
                                                "text": f"patrol recall refused: {err}"})
            return
        self.bus.publish("patrol.recalled", {"id": plan_id, "vehicle": name,
                                             "reason": "an orange or red incident needs the vehicles"})

    def _end_patrol(self, incident_id: int, state: str) -> None:
        """A patrol run ends with its flight: closed, with what it covered."""
        from .runtime import Status, transition

        row = self.store.incident(incident_id)
        if row.kind != "patrol" or row.status == Status.CLOSED:
            return
        plans = self.store.plans(incident_id=incident_id)
        covered = max((p.progress.get("coverage", 0.0) or 0.0 for p in plans), default=0.0)
        detail = {**row.detail, "closed_reason": f"patrol {state}", "closed_reason_zh": "巡查结束",
                  "coverage": covered, "closed_at": self.clock.now().isoformat()}
        row = self.store.update_incident(incident_id, status=transition(row.status, Status.CLOSED),
                                         updated_at=self.clock.now(), detail=detail)
        self.bus.publish("patrol.report", {"incident_id": incident_id, "patrol": row.detail.get("patrol_id"),
                                           "state": state, "coverage": covered})
        self.bus.publish("incident.resolved", self.incident_view(row))

    # -- policy ---------------------------------------------------------------------------
    def auto_recon(self, incident_id: int) -> list[dict[str, Any]]:
        """The auto-approval policy for a red incident: its recon plans that need no airspace approval and
        pass the launch weather check fly with the duty pilot; the others wait for a dispatcher (said why)."""
        s = self.settings
        if not s.auto_approve_red_recon or not s.duty_pilot or self._tg is None:
            return []
        by = "policy: red-incident recon"
        flown = []
        for view in self.propose_plans(incident_id, by=by)["plans"]:
            if view["state"] != "proposed" or view["task"].get("kind") != "recon":
                continue
            why = None
            if view["proposal"].get("approvals"):
                why = "it enters controlled airspace: a dispatcher decides"
            else:
                try:
                    flown.append(self.approve_plan(view["id"], by=by, pilot=s.duty_pilot))
                except Exception as err:  # noqa: BLE001 — the policy never overrides: a person decides
                    why = str(err)
            if why is not None:
                self.bus.publish("plan.auto_approval_skipped", {"id": view["id"], "incident_id": incident_id,
                                                                 "reason": why})
        return flown

    # -- deciding -------------------------------------------------------------------------
    def launch_weather(self, lon: float, lat: float, vehicle_type: str,
                       cruise_speed_mps: float) -> tuple[dict[str, Any] | None, AirframeLimits, list[str]]:
        """The nearest weather station's newest good observation at a launch site, the vehicle's limits for
        what that station measures, and what is not measured (so not checked: said, never silent)."""
        limits = MULTIROTOR if vehicle_type == "copter" else boat_limits(cruise_speed_mps)
        stations = [s for s in self.registry.values() if s.kind == "weather_station"]
        if not stations:
            return None, limits, ["no weather station in the district"]
        st = min(stations, key=lambda s: ground_distance_m((lon, lat), (s.lon, s.lat)))
        newest = {q: r for q in ("wind_speed", "temp", "rain")
                  if (r := self.sensing.newest(st.sensor_id, q)) is not None and r.flag != "bad"}
        if not newest:
            return None, limits, []
        weather: dict[str, Any] = {"station_id": st.sensor_id, "observed_at": min(r.time for r in newest.values()),
                                   "distance_km": ground_distance_m((lon, lat), (st.lon, st.lat)) / 1000.0}
        if "wind_speed" in newest:
            weather["wind_mps"] = newest["wind_speed"].value
        if "temp" in newest:
            weather["temp_c"] = newest["temp"].value
        if "rain" in newest:  # the newest interval's rain as an hourly rate
            weather["rain_mm_per_h"] = newest["rain"].value * 3600.0 / max(st.interval_s, 60.0)
        unmeasured = []
        if limits.max_gust_mps is not None:
            limits = replace(limits, max_gust_mps=None)
            unmeasured.append(f"gusts: {st.sensor_id} does not measure them")
        if limits.max_current_mps is not None:
            limits = replace(limits, max_current_mps=None)
            unmeasured.append("river current: no current meter in the district")
        return weather, limits, unmeasured

    def approve_plan(self, plan_id: int, *, by: str, pilot: str, override_reason: str | None = None) -> dict[str, Any]:
        """Approve a proposed plan with its pilot in command, and fly it (re-planned if the proposal is stale).

        The launch weather (nearest station) must be within the airframe's limits; a dispatcher may launch
        anyway with ``override_reason``, which is logged with its author."""
        from .runtime import Conflict, Refused, Sortie, Status, Unavailable, transition

        if self._tg is None:
            raise Unavailable("the service is starting or stopping")
        row = self.store.plan(plan_id)
        if row.state != "proposed":
            raise Conflict(f"plan {plan_id} is {row.state}" + (f" (by {row.decided_by})" if row.decided_by else ""))
        if row.vehicle in self.assignments:
            raise Conflict(f"{row.vehicle} is on another task (incident {self.assignments[row.vehicle]})")
        now = self.clock.now()
        cached = self._task_plans.get(plan_id)
        plan = cached[1] if cached and time.monotonic() - cached[0] <= PROPOSAL_FRESH_S else None
        if plan is None:  # stale or from before a restart: plan again from where the vehicle is now
            task = self._task_by_key(row.incident_id, row.task_key)
            vehicles = self._plan_vehicles(only=row.vehicle)
            if task is None or not vehicles:
                raise Refused(f"plan {plan_id} can no longer be flown: "
                              + ("its task is gone" if task is None else f"{row.vehicle} is not ready"))
            try:
                plan = self._plan_one(task, vehicles[0], now)
            except PlanRefused as err:
                raise Refused("; ".join(err.reasons)) from None
        home = plan.mission.path[0]
        weather, limits, unmeasured = self.launch_weather(
            home[0], home[1], plan.mission.vehicle_type, self.vehicle_specs[plan.mission.vehicle].cruise_speed_mps)
        check = check_launch(limits, weather, now=now)
        launch: dict[str, Any] = {"ok": check.ok, "reasons": list(check.reasons), "station_id": check.station_id,
                                  "weather": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                              for k, v in (weather or {}).items()},
                                  "limits": limits.name, "not_checked": unmeasured}
        if not check.ok:
            if not override_reason:
                raise Refused("launch weather: " + "; ".join(check.reasons)
                              + " (approve with an override reason to launch anyway)")
            ov = launch_override(check, by, override_reason, now)
            launch["override"] = {"by": ov.by, "reason": ov.reason, "at": ov.at.isoformat()}
        try:
            # a hand-over flies while the vehicle it relieves is still on its way home
            active = () if row.proposal.get("handover_from") else ("approved", "uploading", "flying", "returning")
            row = self.store.decide_plan(plan_id, to="approved", by=by, now=now, pilot=pilot,
                                         active=active)
        except AlreadyDecided as err:
            raise Conflict(str(err)) from None
        row = self.store.update_plan(plan_id, proposal={**plan.to_wire(), "launch": launch}, state="uploading",
                                     updated_at=now)
        if "override" in launch:
            self.bus.publish("plan.launch_override", {"id": plan_id, "incident_id": row.incident_id,
                                                      **launch["override"], "overridden": launch["reasons"]})
        name = plan.mission.vehicle
        self.assignments[name] = row.incident_id
        self._plan_of_vehicle[name] = plan_id
        incident = self.store.incident(row.incident_id)
        if incident.status == Status.OPEN:
            incident = self.store.update_incident(incident.id, status=transition(incident.status, Status.DISPATCHED),
                                                  updated_at=now)
        self._count_dispatch("approved")
        view = self.plan_view(row)
        self.bus.publish("plan.approved", view)
        self._spawn(self._fly(Sortie(row.incident_id, plan_id), name, plan.mission, approved_by=by,
                              approved_at=now, pilot=pilot, params=plan.return_params,
                              follow=self._follow_of(plan)), name=f"plan-{plan_id}")
        self.bus.publish("incident.updated", self.incident_view(incident))
        return view

    def cancel_plans(self, incident_id: int, *, by: str, reason: str) -> list[int]:
        """An incident's vehicle work stops (a false alarm, a closed incident): its proposals are rejected and
        its vehicles in flight come home. The ids of the plans touched."""
        touched = []
        for p in self.store.plans(incident_id=incident_id, states=("proposed",)):
            try:
                self.reject_plan(p.id, by=by, reason=reason)
            except Exception as err:  # noqa: BLE001 — decided meanwhile: nothing to reject
                log.info("plan %d: not rejected: %s", p.id, err)
                continue
            touched.append(p.id)
        for p in self.store.plans(incident_id=incident_id, states=("approved", "uploading", "flying")):
            if p.vehicle:
                self._spawn(self._recall(p.id, p.vehicle, reason), name=f"recall-{p.id}")
                touched.append(p.id)
        return touched

    async def _recall(self, plan_id: int, name: str, reason: str) -> None:
        try:
            await self.fleet.vehicle(name).rtl()
        except Exception as err:  # noqa: BLE001 — said; the dispatcher brings it home by hand
            self.bus.publish("dispatch.alert", {"plan_id": plan_id, "vehicle": name, "text": f"recall refused: {err}"})
            return
        self.bus.publish("plan.recalled", {"id": plan_id, "vehicle": name, "reason": reason})

    def reject_plan(self, plan_id: int, *, by: str, reason: str) -> dict[str, Any]:
        from .runtime import Conflict

        try:
            row = self.store.decide_plan(plan_id, to="rejected", by=by, now=self.clock.now(), reason=reason)
        except AlreadyDecided as err:
            raise Conflict(str(err)) from None
        self._task_plans.pop(plan_id, None)
        view = self.plan_view(row)
        self.bus.publish("plan.rejected", view)
        self._end_patrol(row.incident_id, "rejected")
        return view

    def edit_plan(self, plan_id: int, *, by: str, vehicle: str | None = None, clearance_m: float | None = None,
                  reason: str) -> dict[str, Any]:
        """Replace a proposal by one with the dispatcher's changes (another vehicle, another clearance)."""
        from .runtime import Conflict, NotFound, Refused

        row = self.store.plan(plan_id)
        if row.state != "proposed":
            raise Conflict(f"plan {plan_id} is {row.state}: only a proposal can be edited")
        name = vehicle or row.vehicle
        if name not in self.vehicle_specs:
            raise NotFound(f"no vehicle {name!r}")
        task = self._task_by_key(row.incident_id, row.task_key)
        vehicles = self._plan_vehicles(only=name)
        if task is None or not vehicles:
            raise Refused("its task is gone" if task is None else f"{name} is not ready")
        now = self.clock.now()
        kw = {"clearance_m": clearance_m} if clearance_m is not None else {}
        try:
            plan = self._plan_one(task, vehicles[0], now, **kw)
        except PlanRefused as err:
            raise Refused("; ".join(err.reasons)) from None
        try:
            self.store.decide_plan(plan_id, to="superseded", by=by, now=now, reason=reason)
        except AlreadyDecided as err:
            raise Conflict(str(err)) from None
        self._task_plans.pop(plan_id, None)
        new = self.store.insert_plan(
            incident_id=row.incident_id, task_key=row.task_key, vehicle=name, state="proposed", task=task.to_wire(),
            proposal={**plan.to_wire(), "edited_from": plan_id, "edit_reason": reason}, proposed_by=by,
            proposed_at=now, updated_at=now)
        self._task_plans[new.id] = (time.monotonic(), plan)
        view = self.plan_view(new)
        self.bus.publish("plan.edited", {**view, "replaces": plan_id, "by": by, "reason": reason})
        return view

    # -- following ------------------------------------------------------------------------
    def _follow_of(self, plan: TaskPlan) -> Follow:
        from .runtime import Follow

        area_m = None
        if plan.coverage_area is not None and not plan.coverage_area.is_empty and plan.swath_m:
            fwd, _ = utm_transformers(self.district.utm_epsg)
            area_m = shapely.transform(plan.coverage_area,
                                       lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
        return Follow(plan.pattern.waypoints[0], area_m, plan.swath_m, home=plan.mission.path[0],
                      energy=EnergyModel.for_vehicle(plan.mission.vehicle_type,
                                                     self.vehicle_specs[plan.mission.vehicle].cruise_speed_mps,
                                                     self.vehicle_specs[plan.mission.vehicle].endurance_s))

    def _preemptible(self, incident_id: int, task: TaskSpec) -> list[dict[str, Any]]:
        """Vehicles that could fly ``task`` but fly for an incident of a lower level: a dispatcher may recall
        one for it (``preempt_plan``), its own task handed over. Nearest to the task first."""
        level = self.store.incident(incident_id).level
        states = self.fleet.states()
        out = []
        for p in self.store.plans(states=("flying",)):
            if p.incident_id == incident_id or not p.vehicle or p.progress.get("handed_over"):
                continue
            other = self.store.incident(p.incident_id)
            spec = self.vehicle_specs.get(p.vehicle)
            if other.level >= level or spec is None or spec.type not in task.vehicle_types \
                    or not task.needs <= spec.payloads:
                continue
            where = states.get(p.vehicle, {})
            here = (where.get("lon"), where.get("lat"))
            distance = ground_distance_m(here, task.point) if None not in here else None
            out.append({"plan_id": p.id, "vehicle": p.vehicle, "incident_id": other.id,
                        "incident_level": Level(other.level).colour, "task_key": p.task_key,
                        "distance_m": round(distance) if distance is not None else None})
        return sorted(out, key=lambda c: (c["distance_m"] is None, c["distance_m"] or 0.0))

    def preempt_plan(self, plan_id: int, *, by: str, reason: str, for_incident: int) -> dict[str, Any]:
        """A higher-priority incident takes a vehicle: the flying plan's vehicle is recalled home (where it is
        free for the new incident's task once it has landed) and its task is handed over, not dropped."""
        from .runtime import Conflict, Refused, Sortie

        row = self.store.plan(plan_id)
        if row.state != "flying" or not row.vehicle:
            raise Conflict(f"plan {plan_id} is {row.state}: only a flying plan's vehicle can be recalled for another")
        mine, theirs = self.store.incident(row.incident_id), self.store.incident(for_incident)
        if theirs.level <= mine.level:
            raise Refused(f"incident {for_incident} ({Level(theirs.level).colour}) does not outrank incident "
                          f"{mine.id} ({Level(mine.level).colour}): only a higher-priority incident takes its vehicle")
        why = f"preempted for incident {for_incident} by {by}: {reason}"
        self._spawn(self._recall(row.id, row.vehicle, why), name=f"preempt-{row.id}")
        self._hand_over(Sortie(row.incident_id, row.id), why)
        view = self.plan_view(self.store.plan(plan_id))
        self.bus.publish("plan.preempted", {**view, "for_incident": for_incident, "by": by, "reason": reason})
        return view

    def _hand_over(self, sortie: Sortie, why: str) -> None:
        """A task in progress is handed over, not dropped: its vehicle left it (recalled, low, lost), so the
        task gets a new proposal for another vehicle, marked as the hand-over (the dispatcher approves it)."""
        if sortie.plan_id is None:
            return
        row = self.store.plan(sortie.plan_id)
        if row.progress.get("handed_over"):
            return
        self.store.update_plan(row.id, progress={**row.progress, "handed_over": True, "handed_over_why": why},
                               updated_at=self.clock.now())
        try:
            result = self.propose_plans(row.incident_id, by="hand-over", handover={row.task_key: row.id})
        except Exception as err:  # noqa: BLE001 — a hand-over must never break the flight it comes from
            log.warning("hand-over of plan %d failed: %s", row.id, err)
            return
        self.bus.publish("plan.handover", {"id": row.id, "incident_id": row.incident_id, "task_key": row.task_key,
                                           "why": why, "proposals": [p["id"] for p in result["plans"]]})

    def _follow(self, sortie: Sortie, follow: Follow, t: Any, items: int, *, final: bool = False) -> None:
        """Progress of a flying plan: mission item, reached the task, time to target, coverage seen."""
        if sortie.plan_id is None or not (math.isfinite(t.lat_deg) and math.isfinite(t.lon_deg)):
            return
        here = (t.lon_deg, t.lat_deg)
        to_target = ground_distance_m(here, follow.target)
        follow.reached = follow.reached or to_target <= REACHED_M
        if follow.reached and follow.area_m is not None:
            fwd, _ = utm_transformers(self.district.utm_epsg)
            x, y = fwd.transform(here[0], here[1])
            if not follow.seen_xy or math.dist(follow.seen_xy[-1], (x, y)) >= 5.0:
                follow.seen_xy.append((float(x), float(y)))
        loop_now = time.monotonic()
        if not final and loop_now - follow.written_at < 5.0:
            return
        follow.written_at = loop_now
        progress: dict[str, Any] = {"item": int(t.mission_seq), "items": items, "reached": follow.reached,
                                    "distance_to_target_m": round(to_target, 1), "battery_pct": t.battery_pct}
        gs = float(t.groundspeed_mps)
        # on the ground or hovering, the time to target is at the cruise speed it will fly at
        cruise = follow.energy.cruise_speed_mps if follow.energy is not None else 1.0
        speed = gs if math.isfinite(gs) and gs > 1.0 else cruise
        if not follow.reached:
            progress["time_to_target_s"] = round(to_target / speed, 1)
        if follow.area_m is not None and follow.swath_m:
            seen = (LineString(follow.seen_xy) if len(follow.seen_xy) > 1 else Point(*follow.seen_xy[0])
                    if follow.seen_xy else None)
            covered = 0.0
            if seen is not None:
                covered = seen.buffer(follow.swath_m / 2.0).intersection(follow.area_m).area / follow.area_m.area
            progress["coverage"] = round(min(covered, 1.0), 3)
        row = self.store.update_plan(sortie.plan_id, progress=progress, updated_at=self.clock.now())
        self.bus.publish("plan.progress", {"id": row.id, "incident_id": row.incident_id, "vehicle": row.vehicle,
                                           **progress})

    # -- views ----------------------------------------------------------------------------
    def plan_view(self, row: PlanRow) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {"id": row.id, "incident_id": row.incident_id, "task_key": row.task_key, "vehicle": row.vehicle,
                "state": row.state, "task": row.task, "proposal": row.proposal, "proposed_by": row.proposed_by,
                "proposed_at": iso(row.proposed_at), "decided_by": row.decided_by, "decided_at": iso(row.decided_at),
                "decision_reason": row.decision_reason, "pilot": row.pilot, "progress": row.progress,
                "error": row.error, "updated_at": iso(row.updated_at)}

    def plans_of(self, incident_id: int | None = None, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return [self.plan_view(r) for r in self.store.plans(incident_id=incident_id, states=states)]
