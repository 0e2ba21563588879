"""Path planning benchmark (``command.dispatch.paths``).

Random zones, timed: 100 convex zones (seeded; 300–1500 m across, 4–8 corners) scattered over the
synthetic Yubei district's bounding box, buffered by the default 100 m. The visibility graph is
built once (timed apart), then 50 seeded start/goal pairs outside the zones are planned on it
(median and maximum per query; pairs with no path are drawn again and not timed).

The district's own airspace: the prohibited and unapproved controlled zones of the synthetic
district (``obstacle_zones``), 20 seeded start/goal pairs inside the district boundary: planned
length over the straight line (median, maximum, and how many had to turn). Then one boat path on
the Yangtze water polygon (build + query).

Run: ``python -m tests.bench.paths`` (``--zones 100 --queries 50 --pairs 20 --seed 7``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon

from command.dispatch.geometry import UTM_48N, utm_transformers
from command.dispatch.paths import NoPath, PathPlanner, WaterPlanner, obstacle_zones
from command.district import District

__all__ = ["main", "run"]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _random_zones(bbox: tuple[float, float, float, float], n: int, rng: np.random.Generator) -> list[Polygon]:
    fwd, inv = utm_transformers(UTM_48N)
    x0, y0 = fwd.transform(bbox[0], bbox[1])
    x1, y1 = fwd.transform(bbox[2], bbox[3])
    zones = []
    for _ in range(n):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        radius = rng.uniform(150.0, 750.0)
        angles = rng.uniform(0.0, 2 * np.pi, int(rng.integers(4, 9)))
        hull = MultiPoint(list(zip(cx + radius * np.cos(angles), cy + radius * np.sin(angles), strict=True))).convex_hull
        if not isinstance(hull, Polygon):
            hull = shapely.Point(cx, cy).buffer(radius, quad_segs=2)
        lons, lats = inv.transform(*np.asarray(hull.exterior.coords).T)
        zones.append(Polygon(list(zip(lons, lats, strict=True))))
    return zones


def _pairs(planner: PathPlanner, area: shapely.Geometry, n: int, rng: np.random.Generator,
           record: Callable[[Any, float], None]) -> int:
    """Plan ``n`` random pairs inside ``area``; returns how many draws had no path."""
    w, s, e, nn = area.bounds
    refused = done = 0
    while done < n:
        a, b = (rng.uniform(w, e), rng.uniform(s, nn)), (rng.uniform(w, e), rng.uniform(s, nn))
        if not (area.contains(shapely.Point(a)) and area.contains(shapely.Point(b))):
            continue
        try:
            path, t = _timed(lambda a=a, b=b: planner.plan(a, b))
        except NoPath:
            refused += 1
            continue
        record(path, t)
        done += 1
    return refused


def run(zones: int = 100, queries: int = 50, pairs: int = 20, seed: int = 7) -> None:
    """Print graph build and per-query times, and path/straight-line ratios on the district."""
    from sitl.scenarios.yubei.generate import (
        generate,  # imported here: the other benchmarks do not need it
    )

    with tempfile.TemporaryDirectory(prefix="yingji-bench-paths-") as tmp:
        district = District.load(generate(FsPath(tmp) / "d"))
    rng = np.random.default_rng(seed)

    polys = _random_zones(district.bbox, zones, rng)
    planner, t_build = _timed(lambda: PathPlanner(polys))
    times: list[float] = []
    ratios: list[float] = []
    refused = _pairs(planner, shapely.box(*district.bbox), queries, rng,
                     lambda p, t: (times.append(t), ratios.append(p.ratio)))
    print(f"Path planning, {zones} random convex zones (seed {seed}) over the district bbox, 100 m buffer:", flush=True)
    print(f"  graph: {planner.n_corners} convex corners, {planner.n_edges} bitangent edges, built in {_ms(t_build)}")
    print(f"  {queries} queries: median {_ms(statistics.median(times))}, max {_ms(max(times))} per query "
          f"(path / straight line median {statistics.median(ratios):.3f}, max {max(ratios):.3f}; "
          f"{refused} drawn pairs had an end in a zone or no path)", flush=True)

    obstacles = obstacle_zones(district.airspace)
    real, t_real = _timed(lambda: PathPlanner(obstacles))
    district_ratios: list[float] = []
    district_times: list[float] = []
    refused = _pairs(real, district.boundary, pairs, rng,
                     lambda p, t: (district_ratios.append(p.ratio), district_times.append(t)))
    turned = sum(r > 1.0 + 1e-9 for r in district_ratios)
    print(f"District airspace ({', '.join(z.id for z in obstacles)}; graph {real.n_corners} corners, "
          f"{_ms(t_real)}): {pairs} pairs inside the boundary, path / straight line median "
          f"{statistics.median(district_ratios):.3f}, max {max(district_ratios):.3f}; {turned} of {pairs} turned; "
          f"query median {_ms(statistics.median(district_times))} ({refused} pairs refused: an end in a zone)",
          flush=True)

    river = next(r for r in district.rivers if r.id == "yangtze")
    a, b = (river.line.interpolate(f, normalized=True) for f in (0.15, 0.7))
    water, t_water = _timed(lambda: WaterPlanner(district.water))
    path, t_q = _timed(lambda: water.plan((a.x, a.y), (b.x, b.y)))
    print(f"Boat on the Yangtze (20 m bank margin): graph {water.graph.xy.shape[0]} corners built in {_ms(t_water)}, "
          f"query {_ms(t_q)}; {path.length_m / 1000:.1f} km, {path.ratio:.3f} × the straight line", flush=True)
    print("  (one process on one core; graph builds not in the query times)")


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.paths [--zones 100] [--queries 50] [--pairs 20] [--seed 7]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.paths")
    parser.add_argument("--zones", type=int, default=100)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    run(args.zones, args.queries, args.pairs, args.seed)


if __name__ == "__main__":
    main()
