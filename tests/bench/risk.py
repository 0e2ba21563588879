"""Risk grid benchmark: a full-district risk recompute and the incremental update after one
gauge reading, on the synthetic Yubei district (``python -m sitl.scenarios.yubei``).

Set-up, timed apart and not part of any recompute (it happens once per district): load the
district folder; build the grid (UTM 48N, 30 m cells by default); exposure layers (town
population kernels, school/hospital/nursing-home/bridge counts, road length per cell);
lack of coping from the distance to fire stations; the inside-the-boundary mask; terrain
resampled to the grid and its slope; the static part of the score (exposure union and
V^⅓·L^⅓).

Full recompute, timed: IDW of the nine rain gauges' 3-hour totals (the scenario's first
storm band) onto every cell (k 8, power 2, 15 km), two rain-driven hazard layers (``rain_3h``,
rain over the red rainstorm threshold; and ``landslide_standin``, the same ratio times a
slope factor — a stand-in to have a second cell-local layer, not a landslide model), the
score and levels, hotspot labelling, and every hotspot record (outline, why, people,
facilities, sensors) from scratch, with no previous hotspots to reuse.

Incremental update, timed: one gauge's new value (each gauge in turn, +25 mm): IDW in its
15 km window only, the hazard layers and score there, relabelling, and the records of the
hotspots in or next to the window. Each result is checked against a full recompute (the
check is printed, not timed).

Run: ``python -m tests.bench risk`` (``python -m tests.bench.risk --cell-m 50 --repeats 5``).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from command.district import District
from command.risk.grid import Window
from command.risk.hotspots import find_hotspots
from command.risk.interpolate import IdwParams, idw_grid
from command.risk.riskmap import RAIN_LAYER, RiskModel, RiskState, compute, rainstorm_hazard, update_reading

__all__ = ["main", "run"]

STANDIN = "landslide_standin"
SLOPE_FLAT_DEG, SLOPE_STEEP_DEG = 10.0, 35.0  # stand-in slope factor: 0 below, 1 above (not a published model)
UPDATE_MM = 25.0
# 3-hour totals of the Longxing–Luoqi rainstorm band, the first storm of the synthetic Yubei
# flood scenario (scenario.yaml); a gauge not listed reads 0 mm.
STORM_3H_MM = {"rain-longxing": 72.0, "rain-luoqi": 58.0, "rain-muer": 44.0, "rain-tongjing": 31.0,
               "rain-wangjia": 12.0, "rain-lianglu": 9.0, "rain-gulu": 8.0, "rain-xiantao": 6.0, "rain-cizhu": 5.0}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _same(a: RiskState, b: RiskState) -> bool:
    return (np.array_equal(a.rain_mm, b.rain_mm, equal_nan=True)
            and np.array_equal(a.risk.score, b.risk.score, equal_nan=True)
            and np.array_equal(a.risk.level, b.risk.level)
            and len(a.hotspots) == len(b.hotspots)
            and all(x.same_as(y) for x, y in zip(a.hotspots, b.hotspots, strict=True)))


def _gauges(district: District) -> list[tuple[str, float, float]]:
    feats = json.loads(Path(district.sensors_path).read_text(encoding="utf-8"))["features"]
    return [(f["properties"]["id"], *f["geometry"]["coordinates"]) for f in feats
            if f["properties"]["kind"] == "rain_gauge"]


def run(cell_m: float = 30.0, repeats: int = 5) -> None:
    """Print set-up, full-recompute and incremental-update times."""
    from sitl.scenarios.yubei import generate  # imported here: the other benchmarks do not need it

    with tempfile.TemporaryDirectory(prefix="yingji-bench-risk-") as tmp:
        district, t_load = _timed(lambda: District.load(generate(Path(tmp))))
        stations = _gauges(district)
    ids = {sid for sid, _, _ in stations}
    totals = {sid: STORM_3H_MM.get(sid, 0.0) for sid in ids}
    idw = IdwParams()

    def build() -> RiskModel:
        plain = RiskModel.for_district(district, stations, cell_m=cell_m, idw=idw)
        z = plain.grid.resample(district.terrain)
        gy, gx = np.gradient(z, plain.grid.cell_m)
        slope_deg = np.degrees(np.arctan(np.hypot(gx, gy)))
        factor = np.clip((slope_deg - SLOPE_FLAT_DEG) / (SLOPE_STEEP_DEG - SLOPE_FLAT_DEG), 0.0, 1.0)
        factor = np.nan_to_num(factor).astype(np.float32)

        def hazards(rain_mm: np.ndarray, window: Window) -> dict[str, np.ndarray]:
            ratio = rainstorm_hazard(rain_mm, window)[RAIN_LAYER]
            return {RAIN_LAYER: ratio, STANDIN: ratio * factor[window]}

        return RiskModel(plain.grid, plain.exposure, plain.station_ids, plain.station_lonlat, plain.station_xy,
                         plain.vulnerability, plain.lack_of_coping, hazard_from_rain=hazards,
                         rain_layers=(RAIN_LAYER, STANDIN), inside=plain.inside, idw=idw)

    model, t_model = _timed(build)
    _, t_base = _timed(lambda: model.base)
    g = model.grid
    inside = int(np.count_nonzero(model.inside)) if model.inside is not None else g.size
    print(f"Risk grid on the synthetic Yubei district: {len(stations)} rain gauges, "
          f"{len(model.exposure.facility_ids)} facilities, {len(district.roads)} roads", flush=True)
    print(f"  grid {g.nrows} × {g.ncols} = {g.size:,} cells of {g.cell_m:g} m (UTM 48N), "
          f"{inside:,} inside the boundary; IDW k {idw.k}, power {idw.power:g}, radius {idw.max_radius_m / 1000:g} km")
    print(f"  set-up (once): district generate + load {_ms(t_load)}, grid + exposure + coping + mask + slope "
          f"{_ms(t_model)}, static score part {_ms(t_base)}", flush=True)

    fulls = []
    state = compute(model, totals)  # warm-up (first touches of the cached arrays), not counted
    for _ in range(max(1, repeats)):
        state, t = _timed(lambda: compute(model, totals))
        fulls.append(t)
    print(f"  full recompute (IDW + 2 hazard layers + score + {len(state.hotspots)} hotspots, exposure cached): "
          f"median {_ms(statistics.median(fulls))}, min {_ms(min(fulls))} over {len(fulls)}", flush=True)
    # Where the time goes (the same steps as compute, one by one).
    whole: Window = (slice(0, g.nrows), slice(0, g.ncols))
    values = np.array([totals.get(sid, np.nan) for sid in model.station_ids])
    rain, t_idw = _timed(lambda: idw_grid(g, model.station_xy, values, idw).astype(np.float32))
    risk_map, t_score = _timed(lambda: model.base.with_hazards(whole, model.hazard_from_rain(rain, whole)))
    _, t_hot = _timed(lambda: find_hotspots(risk_map, exposure=model.exposure, sensors=model.sensors(values),
                                            params=model.hotspots))
    print(f"    of which: IDW {_ms(t_idw).strip()}, hazard layers + score + levels {_ms(t_score).strip()}, "
          f"hotspot labelling + records {_ms(t_hot).strip()}")
    for h in state.hotspots[:3]:
        print(f"    {h.id}: {h.level.colour}, {h.n_cells:,} cells, {h.population_persons:,.0f} people — "
              f"{h.why.describe()}")

    incs, windows, equal = [], [], True
    for sid, _, _ in stations:
        value = totals.get(sid, 0.0) + UPDATE_MM
        new, t = _timed(lambda sid=sid, value=value: update_reading(state, sid, value))
        incs.append(t)
        rows, cols = g.window(*model.station_xy[model.index_of(sid)], idw.max_radius_m)
        windows.append((rows.stop - rows.start) * (cols.stop - cols.start))
        full = compute(model, {**totals, sid: value}, previous=state.hotspots)
        equal = equal and _same(new, full)
    print(f"  incremental update after one reading ({len(stations)} gauges in turn, +{UPDATE_MM:g} mm): "
          f"median {_ms(statistics.median(incs))}, max {_ms(max(incs))}; window median "
          f"{int(statistics.median(windows)):,} cells ({statistics.median(windows) / g.size:.0%} of the grid); "
          f"equal to a full recompute: {'yes' if equal else 'NO'}", flush=True)
    print("  (one process on one core; set-up not in the recompute)")


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.risk [--cell-m 30] [--repeats 5]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.risk")
    parser.add_argument("--cell-m", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    run(args.cell_m, args.repeats)


if __name__ == "__main__":
    main()
