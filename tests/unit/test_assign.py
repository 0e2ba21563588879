"""Task assignment: optimality (brute force), infeasibility reasons, priority, chaining, splitting, re-planning."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from command.dispatch.assign import (
    Asset,
    Assignment,
    Plan,
    Task,
    asset_lost,
    asset_low,
    assign,
    new_task,
    replan,
    split_area_task,
)
from command.dispatch.energy import EnergyModel, Flow, Leg, mission_energy_pct
from command.dispatch.geometry import path_length_m

BASE = (106.60, 29.80)


def east(km: float, north_km: float = 0.0) -> tuple[float, float]:
    """A point ``km`` east and ``north_km`` north of BASE (small offsets, about)."""
    return (BASE[0] + km / (111.32 * math.cos(math.radians(BASE[1]))), BASE[1] + north_km / 110.85)


def copter(name: str, at: tuple[float, float] = BASE, **kw: object) -> Asset:
    args: dict[str, object] = {"battery_pct": 95.0, "speed_mps": 12.0, "endurance_s": 1800.0,
                               "payloads": frozenset({"zoom_camera", "thermal_camera"})}
    args.update(kw)
    return Asset(name, "copter", at, **args)  # type: ignore[arg-type]


def boat(name: str, at: tuple[float, float] = BASE, **kw: object) -> Asset:
    args: dict[str, object] = {"battery_pct": 95.0, "speed_mps": 5.0, "endurance_s": 7200.0, "on_water": True,
                               "payloads": frozenset({"zoom_camera", "echosounder"})}
    args.update(kw)
    return Asset(name, "boat", at, **args)  # type: ignore[arg-type]


# --- optimality against brute force ------------------------------------------------------------


def _random_case(rng: random.Random) -> tuple[list[Task], list[Asset]]:
    n_a, n_t = rng.randint(2, 5), rng.randint(2, 5)
    kinds = ["a", "b", "c"]
    assets = []
    for i in range(n_a):
        pos = east(rng.uniform(-2, 2), rng.uniform(-2, 2))
        pay = frozenset(k for k in kinds if rng.random() < 0.8)
        state = "ready" if rng.random() < 0.9 else rng.choice(["charging", "maintenance"])
        if rng.random() < 0.25:
            assets.append(boat(f"A{i}", pos, payloads=pay, state=state, battery_pct=rng.uniform(50, 100),
                               on_water=rng.random() < 0.9))
        else:
            assets.append(copter(f"A{i}", pos, payloads=pay, state=state, battery_pct=rng.uniform(60, 100),
                                 speed_mps=rng.choice([8.0, 12.0, 15.0])))
    tasks = []
    for j in range(n_t):
        needs = frozenset(k for k in kinds if rng.random() < 0.15)
        tasks.append(Task(f"T{j}", "recon", east(rng.uniform(-3, 3), rng.uniform(-3, 3)), level=rng.randint(1, 4),
                          needs=needs, on_water=rng.random() < 0.3, task_s=rng.uniform(30, 240)))
    return tasks, assets


def _key(pairs: list[tuple[int, int]], levels: list[int], time: dict[tuple[int, int], float]) -> tuple:
    counts = tuple(sum(1 for _, j in pairs if levels[j] == lv) for lv in (4, 3, 2, 1, 0))
    return counts, sum(time[p] for p in pairs)


def _brute_force(n_a: int, n_t: int, levels: list[int], time: dict[tuple[int, int], float]) -> tuple:
    best = None
    for k in range(min(n_a, n_t) + 1):
        for chosen in itertools.combinations(range(n_t), k):
            for who in itertools.permutations(range(n_a), k):
                pairs = list(zip(who, chosen, strict=True))
                if any(p not in time for p in pairs):
                    continue
                counts, total = _key(pairs, levels, time)
                if best is None or (counts, -total) > (best[0], -best[1]):
                    best = (counts, total)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(50))
def test_optimal_against_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    tasks, assets = _random_case(rng)
    # Every pair on its own: feasible or not, and its time (to the target + on task).
    time: dict[tuple[int, int], float] = {}
    for i, a in enumerate(assets):
        for j, t in enumerate(tasks):
            one = assign([t], [a], rounds=1)
            if one.assignments:
                time[(i, j)] = one.assignments[0].finish_s
    levels = [int(t.level) for t in tasks]
    best_counts, best_total = _brute_force(len(assets), len(tasks), levels, time)

    plan = assign(tasks, assets, rounds=1)
    ai = {a.name: i for i, a in enumerate(assets)}
    tj = {t.id: j for j, t in enumerate(tasks)}
    pairs = [(ai[a.asset], tj[a.task_id]) for a in plan.assignments]
    assert all(p in time for p in pairs), "an infeasible pair was assigned"
    for a in plan.assignments:
        assert a.finish_s == pytest.approx(time[(ai[a.asset], tj[a.task_id])])
    counts, total = _key(pairs, levels, time)
    assert counts == best_counts
    assert total == pytest.approx(best_total, rel=1e-9, abs=1e-6)
    assert len(plan.assignments) + len(plan.unassigned) == len(tasks)


def test_results_do_not_depend_on_input_order() -> None:
    rng = random.Random(7)
    tasks, assets = _random_case(rng)
    tasks += [replace(t, id=t.id + "x") for t in tasks]  # equal twins: ties to break
    assets += [replace(a, name=a.name + "x") for a in assets]
    ref = assign(tasks, assets)
    for k in range(5):
        r = random.Random(k)
        t2, a2 = tasks[:], assets[:]
        r.shuffle(t2)
        r.shuffle(a2)
        assert assign(t2, a2) == ref


# --- infeasibility reasons ---------------------------------------------------------------------


def test_missing_payload() -> None:
    plan = assign([Task("gas", "gas_survey", east(1), needs=frozenset({"gas_sensor"}))], [copter("UAV-1")])
    (u,) = plan.unassigned
    assert u.code == "payload" and "gas_sensor" in u.reason and "缺少载荷" in u.reason_zh
    assert u.rejected[0].asset == "UAV-1"


def test_battery_reserve() -> None:
    far = Task("far", "recon", east(4))
    low = copter("UAV-1", battery_pct=45.0)
    (u,) = assign([far], [low], reserve_pct=30.0).unassigned
    assert u.code == "battery" and "30 % reserve" in u.reason
    # The same vehicle with a fuller battery goes.
    assert assign([far], [replace(low, battery_pct=95.0)], reserve_pct=30.0).of_task("far") is not None


def test_boat_on_land_and_boat_not_afloat() -> None:
    land = Task("land", "recon", east(1))
    (u,) = assign([land], [boat("USV-1")]).unassigned
    assert u.code == "boat_on_land" and "无人船" in u.reason_zh
    water = Task("river", "boat_survey", east(1), on_water=True)
    (u,) = assign([water], [boat("USV-1", on_water=False)]).unassigned
    assert u.code == "boat_not_afloat"
    # Copters serve water tasks too.
    assert assign([water], [copter("UAV-1")]).of_task("river") is not None


def test_state_maintenance_and_vehicle_type() -> None:
    t = Task("t", "recon", east(1))
    (u,) = assign([t], [copter("UAV-1", state="maintenance")]).unassigned
    assert u.code == "state" and "maintenance" in u.reason and "维护" in u.reason_zh
    boats_only = Task("b", "boat_survey", east(1), on_water=True, vehicle_types=frozenset({"boat"}))
    (u,) = assign([boats_only], [copter("UAV-1")]).unassigned
    assert u.code == "vehicle_type"


def test_mixed_reasons_are_grouped_and_headwind_counts() -> None:
    t = Task("t", "recon", east(3), needs=frozenset({"thermal_camera"}))
    fleet = [copter("UAV-1", payloads=frozenset()), copter("UAV-2", state="charging"), boat("USV-1")]
    (u,) = assign([t], fleet).unassigned
    assert u.code == "infeasible"
    assert {r.asset: r.code for r in u.rejected} == {"UAV-1": "payload", "UAV-2": "state", "USV-1": "boat_on_land"}
    (u,) = assign([t], [copter("UAV-3")], wind=Flow.wind_from(14.0, 90.0)).unassigned
    assert u.code == "headway"


# --- priority ----------------------------------------------------------------------------------


def test_red_wins_even_if_farther() -> None:
    red = Task("red", "recon", east(4), level=4)
    blue = Task("blue", "recon", east(0.5), level=1)
    plan = assign([blue, red], [copter("UAV-1")], rounds=1)
    assert [a.task_id for a in plan.assignments] == ["red"]
    assert plan.unassigned[0].task_id == "blue" and plan.unassigned[0].code == "taken"


def test_one_red_outweighs_many_blues() -> None:
    # Two vehicles; the red task is only reachable by UAV-1, which is also the only one able
    # to do the blues next to it: the red must be served.
    red = Task("red", "recon", east(5), level=4, needs=frozenset({"thermal_camera"}))
    blues = [Task(f"blue{k}", "recon", east(0.2 * k), level=1, needs=frozenset({"thermal_camera"}))
             for k in range(1, 4)]
    plan = assign([red, *blues], [copter("UAV-1"), copter("UAV-2", payloads=frozenset())], rounds=1)
    assert plan.of_task("red") is not None


# --- several tasks per asset -------------------------------------------------------------------


def test_chaining_respects_endurance() -> None:
    # Three tasks 1 km apart on a line east.
    tasks = [Task(f"t{k}", "overwatch", east(1.0 * k), task_s=120.0) for k in (1, 2, 3)]
    model = EnergyModel.copter(12.0, 1800.0)
    full = assign(tasks, [copter("UAV-1", battery_pct=100.0)], reserve_pct=30.0)
    assert [a.task_id for a in full.assignments] == ["t1", "t2", "t3"]
    assert [a.order for a in full.assignments] == [0, 1, 2]
    # Whatever the battery, every chained task keeps the reserve for the way home.
    for battery in (100.0, 80.0, 70.0, 60.0, 50.0, 40.0):
        plan = assign(tasks, [copter("UAV-1", battery_pct=battery)], reserve_pct=30.0)
        spent = 0.0
        for a in plan.assignments:
            spent += a.energy_pct
            assert a.battery_after_pct == pytest.approx(battery - spent)
            assert a.margin_pct >= 0.0
            assert a.battery_after_pct - a.home_pct >= 30.0 - 1e-9
        # The next task (if any) would have broken the reserve.
        n = len(plan.assignments)
        if n < 3:
            assert plan.unassigned[0].task_id == f"t{n + 1}"
    # Analytic check of the two-task case: take-off, 1 km, 120 s, 1 km, 120 s, 2 km home, land.
    legs = [Leg(0.0, 0.0, 100.0), Leg(path_length_m([BASE, east(1)]), 90.0), Leg(hover_s=120.0),
            Leg(path_length_m([east(1), east(2)]), 90.0), Leg(hover_s=120.0),
            Leg(path_length_m([east(2), BASE]), 270.0), Leg(0.0, 0.0, -100.0)]
    need = mission_energy_pct(legs, model)
    two = assign(tasks, [copter("UAV-1", battery_pct=30.0 + need + 0.01)], reserve_pct=30.0)
    assert [a.task_id for a in two.assignments] == ["t1", "t2"]
    short = assign(tasks, [copter("UAV-1", battery_pct=30.0 + need - 0.01)], reserve_pct=30.0)
    assert [a.task_id for a in short.assignments] == ["t1"]


def test_rounds_cap_tasks_per_asset_and_times_add_up() -> None:
    tasks = [Task(f"t{k}", "recon", east(1.0 * k), task_s=60.0) for k in (1, 2, 3, 4)]
    plan = assign(tasks, [copter("UAV-1"), copter("UAV-2", east(4))], rounds=1)
    assert len(plan.assignments) == 2 and plan.rounds == 1
    chained = assign(tasks, [copter("UAV-1"), copter("UAV-2", east(4))])
    assert len(chained.assignments) == 4
    for name in ("UAV-1", "UAV-2"):
        mine = chained.of_asset(name)
        for prev, nxt in itertools.pairwise(mine):
            assert nxt.start == prev.target  # chained from the previous task's end
            assert nxt.start_s == pytest.approx(prev.finish_s + nxt.transit_s)


def test_energy_matches_the_energy_model() -> None:
    t = Task("t", "recon", east(5), task_s=120.0)
    (a,) = assign([t], [copter("UAV-1")]).assignments
    d = path_length_m([BASE, east(5)])
    model = EnergyModel.copter(12.0, 1800.0)
    assert a.energy_pct == pytest.approx(mission_energy_pct([Leg(0, 0, 100.0), Leg(d, 90.0), Leg(hover_s=120.0)],
                                                            model))
    assert a.home_pct == pytest.approx(mission_energy_pct([Leg(d, 270.0), Leg(0, 0, -100.0)], model))


# --- splitting ---------------------------------------------------------------------------------


def test_split_area_task_bookkeeping() -> None:
    big = Task("S", "area_search", east(2), level=3, area_m2=600_000.0, task_s=1800.0, task_flight_m=9000.0)
    parts = split_area_task(big, 3)
    assert [p.id for p in parts] == ["S.1", "S.2", "S.3"]
    assert all(p.parent_id == "S" and p.level == 3 and p.area_m2 == pytest.approx(200_000.0) for p in parts)
    assert sum(p.task_s for p in parts) == pytest.approx(1800.0)
    assert split_area_task(big, 1)[0].id == "S"
    with pytest.raises(ValueError):
        split_area_task(big, 0)
    relay = Task("R", "overwatch", east(1), task_s=600.0)
    assert all(p.task_s == 600.0 for p in split_area_task(relay, 2))  # no area: each does the whole


def test_min_assets_splits_before_assigning() -> None:
    big = Task("S", "area_search", east(2), level=3, area_m2=400_000.0, task_s=1200.0, min_assets=2)
    plan = assign([big], [copter("UAV-1"), copter("UAV-2"), copter("UAV-3", east(20))], rounds=1)
    assert sorted(a.task_id for a in plan.assignments) == ["S.1", "S.2"]
    assert {a.asset for a in plan.assignments} == {"UAV-1", "UAV-2"}


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate task"):
        assign([Task("t", "recon", BASE), Task("t", "recon", BASE)], [copter("UAV-1")])
    with pytest.raises(ValueError, match="duplicate asset"):
        assign([], [copter("UAV-1"), copter("UAV-1")])
    with pytest.raises(ValueError, match="level"):
        Task("t", "recon", BASE, level=7)
    with pytest.raises(ValueError, match="battery_pct"):
        copter("UAV-1", battery_pct=120.0)
    with pytest.raises(ValueError, match="state"):
        copter("UAV-1", state="asleep")
    with pytest.raises(ValueError, match="lon, lat"):
        Task("t", "recon", (200.0, 29.0))
    assert assign([], []) == Plan((), (), 0)


# --- re-planning -------------------------------------------------------------------------------


def _busy_plan(tasks: list[Task], fleet: list[Asset]) -> tuple[Plan, list[Asset]]:
    """Assign, then mark every asset with a task as on its way (on_task), half done, in the air."""
    plan = assign(tasks, fleet)
    busy = {a.asset for a in plan.assignments}
    live = tuple(replace(a, progress=0.5, progress_point=a.target) if a.order == 0 else a for a in plan.assignments)
    fleet2 = [replace(v, state="on_task", alt_m=100.0) if v.name in busy else v for v in fleet]
    return Plan(live, plan.unassigned, plan.rounds), fleet2


def test_lost_asset_hands_its_task_over_with_progress() -> None:
    tasks = [Task("search", "area_search", east(3), level=3, task_s=400.0, task_flight_m=2400.0),
             Task("later", "recon", east(2.5), level=1, task_s=60.0)]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1")])
    assert [a.task_id for a in plan.assignments] == ["search", "later"]
    fleet.append(copter("UAV-2", east(1)))
    out = replan(plan, tasks, fleet, asset_lost("UAV-1"))
    assert out.states == {"UAV-1": "lost"}
    assert set(out.handed_over) == {"search", "later"}
    got = out.of_task("search")
    assert got is not None and got.asset == "UAV-2" and got.handover_from == "UAV-1"
    assert got.progress == 0.5 and got.target == plan.of_task("search").progress_point  # type: ignore[union-attr]
    assert got.task_s == pytest.approx(200.0)  # half left
    assert not any(a.asset == "UAV-1" for a in out.assignments)


def test_handover_outranks_queued_work_of_the_same_level() -> None:
    # One free vehicle, with battery for one of them: a queued yellow task next to it, or a
    # yellow task in progress farther off.
    tasks = [Task("running", "overwatch", east(2), level=2, task_s=600.0)]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1", east(2))])
    queued = Task("queued", "recon", east(0.3), level=2)
    fleet.append(copter("UAV-2", battery_pct=76.0))
    assert assign([queued], [fleet[-1]]).assignments  # it could do the queued one
    out = replan(plan, [*tasks, queued], fleet, asset_low("UAV-1"))
    assert out.states == {"UAV-1": "returning"}
    assert out.of_task("running").asset == "UAV-2"  # type: ignore[union-attr]
    assert [u.task_id for u in out.unassigned] == ["queued"]


@pytest.mark.parametrize("seed", range(20))
def test_handover_keeps_in_progress_tasks_assigned_when_possible(seed: int) -> None:
    rng = random.Random(1000 + seed)
    fleet = [copter(f"UAV-{i}", east(rng.uniform(-4, 4), rng.uniform(-4, 4)), battery_pct=rng.uniform(60, 100),
                    payloads=frozenset(rng.sample(["a", "b", "c"], rng.randint(1, 3)))) for i in range(6)]
    tasks = [Task(f"T{j}", "recon", east(rng.uniform(-4, 4), rng.uniform(-4, 4)), level=rng.randint(1, 4),
                  needs=frozenset(rng.sample(["a", "b", "c"], rng.randint(0, 1))), task_s=rng.uniform(60, 300))
             for j in range(4)]
    plan, fleet2 = _busy_plan(tasks, fleet)
    assert plan.assignments
    victim = plan.assignments[0].asset
    running = next(a for a in plan.assignments if a.asset == victim and a.order == 0)
    out = replan(plan, tasks, fleet2, asset_lost(victim))
    free = [v for v in fleet2 if v.state == "ready"]
    left = replace(next(t for t in tasks if t.id == running.task_id), position=running.progress_point,
                   task_s=next(t for t in tasks if t.id == running.task_id).task_s * 0.5)
    someone_can = bool(assign([left], free, rounds=1).assignments)
    holder = out.of_task(running.task_id)
    if someone_can:
        assert holder is not None and holder.handover_from == victim and holder.asset != victim
    else:
        assert holder is None or holder.asset != victim
    # Never dropped: every task is assigned or reported.
    ids = {a.task_id for a in out.assignments} | {u.task_id for u in out.unassigned}
    assert ids == {t.id for t in tasks}
    # The other assets keep what they had, unless a handed-over task of a higher level pre-empted them.
    bumped = {p.asset for p in out.preempted}
    assert all(p.by_task_id in out.handed_over for p in out.preempted)
    kept = [a for a in plan.assignments if a.asset != victim and a.asset not in bumped]
    assert all(a in out.assignments for a in kept)


def test_handover_with_nobody_able_stays_in_the_queue() -> None:
    tasks = [Task("gas", "gas_survey", east(2), level=4, needs=frozenset({"gas_sensor"}))]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1", payloads=frozenset({"gas_sensor"}))])
    fleet.append(copter("UAV-2"))
    out = replan(plan, tasks, fleet, asset_lost("UAV-1"))
    assert out.of_task("gas") is None
    (u,) = out.unassigned
    assert u.task_id == "gas" and u.code in ("payload", "infeasible")


def test_new_red_task_preempts_only_when_no_free_asset_can() -> None:
    tasks = [Task("blue1", "recon", east(1), level=1, task_s=600.0),
             Task("blue2", "recon", east(-1), level=1, task_s=600.0)]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1", east(0.9)), copter("UAV-2", east(-0.9))])
    red = Task("red", "recon", east(2), level=4)
    out = replan(plan, tasks, fleet, new_task(red))
    got = out.of_task("red")
    assert got is not None and got.asset == "UAV-1"  # the nearer of the two busy ones
    (p,) = out.preempted
    assert (p.task_id, p.asset, p.by_task_id) == ("blue1", "UAV-1", "red")
    assert p.progress == 0.5 and "红色" in p.reason_zh
    assert out.of_task("blue2").asset == "UAV-2"  # type: ignore[union-attr]
    assert [u.task_id for u in out.unassigned] == ["blue1"]  # back in the queue, reported
    # With a free vehicle able to do it, nothing is pre-empted.
    out2 = replan(plan, tasks, [*fleet, copter("UAV-3", east(4))], new_task(red))
    assert out2.preempted == () and out2.of_task("red").asset == "UAV-3"  # type: ignore[union-attr]
    assert out2.of_task("blue1").asset == "UAV-1"  # type: ignore[union-attr]


def test_equal_level_does_not_preempt() -> None:
    tasks = [Task("y1", "recon", east(1), level=2)]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1")])
    out = replan(plan, tasks, fleet, new_task(Task("y2", "recon", east(1.5), level=2)))
    assert out.preempted == () and out.of_task("y1").asset == "UAV-1"  # type: ignore[union-attr]
    assert [u.task_id for u in out.unassigned] == ["y2"]


def test_preempted_task_goes_to_a_free_asset_that_can_do_it() -> None:
    # UAV-1 (thermal) is on a blue task; the free UAV-2 has no thermal camera: the red thermal
    # task pre-empts UAV-1, and the blue task (no payload) goes to UAV-2 as a hand-over.
    tasks = [Task("blue", "recon", east(1), level=1, task_s=600.0)]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1")])
    fleet.append(copter("UAV-2", payloads=frozenset()))
    red = Task("red", "recon", east(2), level=4, needs=frozenset({"thermal_camera"}))
    out = replan(plan, tasks, fleet, new_task(red))
    assert out.of_task("red").asset == "UAV-1"  # type: ignore[union-attr]
    blue = out.of_task("blue")
    assert blue is not None and blue.asset == "UAV-2" and blue.handover_from == "UAV-1"
    assert blue.progress == 0.5
    assert {a.task_id for a in out.changed} == {"red", "blue"}


def test_replan_rejects_unknown_names() -> None:
    tasks = [Task("t", "recon", east(1))]
    plan, fleet = _busy_plan(tasks, [copter("UAV-1")])
    with pytest.raises(ValueError, match="unknown asset"):
        replan(plan, tasks, fleet, asset_lost("UAV-9"))
    with pytest.raises(ValueError, match="unknown task"):
        replan(plan, [], fleet, asset_lost("UAV-1"))
    stray = Assignment("UAV-1", "t", 0, 1, BASE, BASE, 0, 0, 0, 0, 0, 90, 0, 60)
    with pytest.raises(ValueError, match="already known"):
        replan([stray], tasks, fleet, new_task(Task("t", "recon", east(1))))
