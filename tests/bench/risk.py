"""Risk grid benchmark: a full-district risk recompute and the incremental update after one
gauge reading, on the synthetic Yubei district (``python -m sitl.scenarios.yubei``).

Set-up, timed apart and not part of any recompute (it happens once per district): load the
district folder; build the grid (UTM 48N, 30 m cells by default); exposure layers (town
population kernels, school/hospital/nursing-home/bridge counts, road length per cell);
lack of coping from the distance to fire stations; the inside-the-boundary mask; terrain
resampled to the grid and its slope; the static part of the score (exposure union and
V^⅓·L^⅓).

Full recompute, timed: IDW of the rain gauges' 3-hour totals (the scenario's first storm
band) onto every cell (k 8, power 2, 15 km), the rain-driven hazard layers (``rain_3h`` and
``landslide_rain``, rain over the Caine threshold times slope susceptibility), the static
layers as the service has them (``command.hazardmap``: fire weather at danger 4 from every
weather station over the forest, a flood extent at the Cuntan gauge, no other incident), the
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
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from command.district import District
from command.risk.grid import Window
from command.risk.hotspots import find_hotspots
from command.risk.interpolate import IdwParams, idw_grid
from command.floodmap import FloodMapper
from command.hazardmap import district_risk_model
from command.risk.layers import FireStation
from command.risk.riskmap import RiskModel, RiskState, compute, update_reading
from sensors.registry import Registry

__all__ = ["main", "run"]

UPDATE_MM = 25.0
# 3-hour totals of the Longxing–Luoqi rainstorm band, the first storm of the synthetic Yubei
# flood scenario (scenario.yaml); a gauge not listed reads 0 mm.
STORM_3H_MM = {"rain-longxing": 72.0, "rain-luoqi": 58.0, "rain-muer": 44.0, "rain-tongjing": 31.0,
               "rain-wangjia": 12.0, "rain-lianglu": 9.0, "rain-gulu": 8.0, "rain-xiantao": 6.0, "rain-cizhu": 5.0}


@dataclass
class Incident:
    kind: str
    level: int
    lon: float
    lat: float
    detail: dict[str, Any]


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
        registry = Registry.from_geojson(district.sensors_path)
    ids = {sid for sid, _, _ in stations}
    totals = {sid: STORM_3H_MM.get(sid, 0.0) for sid in ids}
    idw = IdwParams()

    def build() -> RiskModel:
        built = district_risk_model(district, registry, cell_m=cell_m, idw=idw)
        assert built is not None
        model, hazard_map = built
        cuntan = registry.get("cuntan-level")
        extent = FloodMapper(district).extent(cuntan, cuntan.thresholds["guaranteed_m"] + 1.0)
        flood = Incident("flood", 3, cuntan.lon, cuntan.lat, {"members": {"cuntan-level": {
            "sensor_id": "cuntan-level", "model": {"extent": extent}}}})
        fire = [FireStation(s.sensor_id, s.lon, s.lat, 4) for s in registry.of_kind("weather_station")]
        layers = hazard_map.build([flood], fire)
        return model.with_static(layers.layers, layers.sensors)

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
    print(f"  full recompute (IDW + {len(model.rain_layers)} rain-driven and {len(model.static_hazards)} static "
          f"hazard layers + score + {len(state.hotspots)} hotspots, exposure cached): "
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
