"""Task assignment benchmark: ``command.dispatch.assign.assign`` on seeded random fleets and tasks.

Positions are uniform over the Yubei box (106.45–106.95 °E, 29.60–30.10 °N); one vehicle in
five is a boat (afloat), one task in five is on water; payloads and needs are drawn from the
district's payload list; batteries 50–100 %, task times 1–5 min, levels blue..red. A 50 km box
is far larger than a copter's reach (12 m/s, 30 min, 30 % reserve: a few km out and back), so
the battery rule prunes most pairs and few tasks can be served. In a second, "dense" draw, fleet
and tasks both in an 8 km square around the district's centre, most pairs are feasible and
assets chain several tasks: that one loads the solver and the chaining rounds.

Timed: the whole call (projection, every asset against every task, the big-M Hungarian solve,
the chaining rounds, the reasons of every task left over), median of ``repeats`` runs after
one warm-up run. Figures: sizes, median and min time, tasks assigned, rounds, unassigned by
reason.

Run: ``python -m tests.bench.assign [--repeats 5]``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter

from command.dispatch.assign import Asset, Plan, Task, assign

__all__ = ["SIZES", "main", "run"]

BBOX = (106.45, 29.60, 106.95, 30.10)  # Yubei, lon/lat
SIZES = ((50, 200), (10, 40))
SEED = 20240601
PAYLOADS = ("zoom_camera", "thermal_camera", "loudspeaker", "light", "drop_kit", "gas_sensor", "echosounder",
            "water_sampler")


DENSE_BOX = (106.66, 29.814, 106.74, 29.886)  # about 8 km × 8 km around the centre of BBOX


def _point(rng: random.Random, box: tuple[float, float, float, float] = BBOX) -> tuple[float, float]:
    return (rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]))


def scenario(n_assets: int, n_tasks: int, seed: int = SEED, *,
             dense: bool = False) -> tuple[list[Task], list[Asset]]:
    """A seeded random fleet and task list over the Yubei box (dense: all in ``DENSE_BOX``)."""
    rng = random.Random(seed * 1000 + n_assets * 7 + n_tasks)
    box = DENSE_BOX if dense else BBOX
    assets = []
    for i in range(n_assets):
        is_boat = i % 5 == 4
        pay = frozenset(rng.sample(PAYLOADS, rng.randint(2, 5)))
        state = "ready" if rng.random() < 0.85 else rng.choice(["charging", "maintenance", "on_task"])
        if is_boat:
            assets.append(Asset(f"USV-{i:03d}", "boat", _point(rng, box), rng.uniform(50, 100), 5.0, 7200.0, pay,
                                state, on_water=True))  # type: ignore[arg-type]
        else:
            assets.append(Asset(f"UAV-{i:03d}", "copter", _point(rng, box), rng.uniform(50, 100), 12.0, 1800.0, pay,
                                state))  # type: ignore[arg-type]
    tasks = [Task(f"T{j:04d}", "recon", _point(rng, box), level=rng.randint(1, 4),
                  needs=frozenset(rng.sample(PAYLOADS, rng.randint(0, 1))), on_water=rng.random() < 0.2,
                  task_s=rng.uniform(60, 300)) for j in range(n_tasks)]
    return tasks, assets


def _timed(tasks: list[Task], assets: list[Asset]) -> tuple[Plan, float]:
    t = time.perf_counter()
    plan = assign(tasks, assets)
    return plan, time.perf_counter() - t


def run(repeats: int = 5) -> None:
    """Print allocation times and how many tasks were assigned, for each size."""
    print("Task assignment (command.dispatch.assign): seeded random fleet and tasks over the Yubei box, "
          "big-M Hungarian per round, chaining while battery allows", flush=True)
    for (n_assets, n_tasks), dense in [(size, d) for size in SIZES for d in (False, True)]:
        tasks, assets = scenario(n_assets, n_tasks, dense=dense)
        _timed(tasks, assets)  # warm-up: pyproj transformer, scipy import paths
        times = []
        plan = None
        for _ in range(max(1, repeats)):
            plan, t = _timed(tasks, assets)
            times.append(t)
        assert plan is not None
        ready = sum(1 for a in assets if a.state == "ready")
        used = len({a.asset for a in plan.assignments})
        why = Counter(u.code for u in plan.unassigned)
        print(f"  {n_assets} assets ({ready} ready) × {n_tasks} tasks{', dense' if dense else ''}: median "
              f"{statistics.median(times) * 1000:8.1f} ms, min {min(times) * 1000:8.1f} ms over {len(times)}; "
              f"{len(plan.assignments)} tasks assigned to {used} assets in {plan.rounds} rounds; unassigned "
              f"{len(plan.unassigned)} ({', '.join(f'{k} {v}' for k, v in why.most_common())})", flush=True)
    print("  (one process on one core)")


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.assign [--repeats 5]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.assign")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    run(args.repeats)


if __name__ == "__main__":
    main()
