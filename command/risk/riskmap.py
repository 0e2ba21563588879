"""The district risk map end to end: gauge values → rain field (IDW) → hazard layers → score →
hotspots; in full, or after one new reading only where that reading reaches.

``RiskModel`` holds what does not change with readings (grid, exposure, static hazards,
vulnerability, coping, parameters); ``RiskState`` is one evaluation of it. ``update_reading``
takes a state and one station's new value and returns the state a full ``compute`` would
give, bit for bit, recomputing only:

* the rain field in the station's influence window (cells within the IDW radius),
* the rain-driven hazard layers and the score in that window,
* the hotspots whose cells lie in or next to that window (the others are reused).

The rain-driven hazard function must be cell-local (a cell's hazard depends on that
cell's rain and fixed per-cell data only); a model that routes water between cells needs
a full ``compute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from .exposure import Exposure, ExposureParams, build_exposure, distance_to_nearest_m
from .grid import DEFAULT_CELL_M, Grid, Window
from .hotspots import Hotspot, HotspotParams, SensorRef, find_hotspots, label_hotspots
from .interpolate import IdwParams, idw_grid, influence_window
from .rules import DEFAULT_RAIN_THRESHOLDS
from .score import LAYER_DTYPE, RiskMap, ScoreError, ScoreParams, compute_risk, lack_of_coping_from_distance

if TYPE_CHECKING:
    from command.district import District

__all__ = [
    "RAIN_LAYER",
    "RainHazard",
    "RiskModel",
    "RiskState",
    "compute",
    "rainstorm_hazard",
    "update_reading",
]

RAIN_LAYER = "rain_3h"
# Rain-driven hazard layers of a block of cells: (rain_mm block, the block's window) → {layer: 0..1 block}.
RainHazard = Callable[[np.ndarray, Window], Mapping[str, np.ndarray]]


def rainstorm_hazard(rain_mm: np.ndarray, window: Window) -> Mapping[str, np.ndarray]:
    """``rain_3h``: 3-hour rain over the red rainstorm threshold, 100 mm in 3 h (CMA Order No. 16,
    2007), capped at 1; NaN where the rain is unknown."""
    red = LAYER_DTYPE(DEFAULT_RAIN_THRESHOLDS.red_3h_mm)
    return {RAIN_LAYER: np.minimum(np.asarray(rain_mm, dtype=LAYER_DTYPE) / red, LAYER_DTYPE(1.0))}


@dataclass(frozen=True, eq=False)
class RiskModel:
    """What the risk map is computed from, apart from the gauge values."""

    grid: Grid
    exposure: Exposure
    station_ids: tuple[str, ...]
    station_lonlat: np.ndarray  # (n, 2)
    station_xy: np.ndarray  # (n, 2), metres in the grid CRS
    vulnerability: float | np.ndarray
    lack_of_coping: float | np.ndarray
    hazard_from_rain: RainHazard = rainstorm_hazard
    rain_layers: tuple[str, ...] = (RAIN_LAYER,)  # the layers hazard_from_rain returns (their sensors: the gauges)
    static_hazards: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    # the sensors behind each static layer (a flood extent's gauges, a plume's detectors)
    layer_sensors: Mapping[str, tuple[SensorRef, ...]] = field(default_factory=lambda: MappingProxyType({}))
    inside: np.ndarray | None = None
    idw: IdwParams = IdwParams()
    score: ScoreParams = ScoreParams()
    hotspots: HotspotParams = HotspotParams()

    def __post_init__(self) -> None:
        if len(set(self.station_ids)) != len(self.station_ids):
            raise ScoreError("station ids must be unique")
        if self.station_xy.shape != (len(self.station_ids), 2):
            raise ScoreError(f"station_xy must have shape ({len(self.station_ids)}, 2), got {self.station_xy.shape}")
        bad = [sid for sid, xy in zip(self.station_ids, self.station_xy, strict=True) if not np.all(np.isfinite(xy))]
        if bad:
            raise ScoreError(f"station(s) without a usable position: {', '.join(bad)}")
        clash = set(self.rain_layers) & set(self.static_hazards)
        if clash:
            raise ScoreError(f"layer(s) {sorted(clash)} are both rain-driven and static")

    @classmethod
    def for_district(cls, district: District, stations: Sequence[tuple[str, float, float]], *,
                     cell_m: float = DEFAULT_CELL_M, vulnerability: float | np.ndarray = 0.5,
                     exposure_params: ExposureParams = ExposureParams(), **kw: Any) -> RiskModel:
        """A model over a district's bbox: exposure from its facilities and roads, lack of coping
        from the distance to its fire stations, cells outside its boundary blank.

        ``stations`` are (id, lon, lat) of the rain gauges. ``vulnerability`` defaults to 0.5,
        mid-scale: the district folder holds no socio-economic layer, and a constant scales
        every cell alike without reordering them; pass a layer when one exists.
        """
        grid = Grid.from_bbox(district.bbox, cell_m=cell_m, epsg=district.utm_epsg)
        exposure = build_exposure(grid, facilities=district.facilities, roads=district.roads, params=exposure_params)
        fire = district.facilities_of("fire_station")
        lcc = lack_of_coping_from_distance(distance_to_nearest_m(grid, [f.lon for f in fire], [f.lat for f in fire]))
        return cls.build(grid, exposure, stations, vulnerability=vulnerability, lack_of_coping=lcc,
                         inside=grid.mask_inside(district.boundary), **kw)

    @classmethod
    def build(cls, grid: Grid, exposure: Exposure, stations: Sequence[tuple[str, float, float]], *,
              vulnerability: float | np.ndarray, lack_of_coping: float | np.ndarray, **kw: Any) -> RiskModel:
        """A model from its parts; ``stations`` are (id, lon, lat)."""
        ids = tuple(s[0] for s in stations)
        lonlat = np.array([(s[1], s[2]) for s in stations], dtype=float).reshape(-1, 2)
        x, y = grid.to_xy(lonlat[:, 0], lonlat[:, 1])
        return cls(grid, exposure, ids, lonlat, np.column_stack([x, y]).reshape(-1, 2), vulnerability,
                   lack_of_coping, **kw)

    def with_static(self, layers: Mapping[str, np.ndarray],
                    sensors: Mapping[str, Sequence[SensorRef]] | None = None) -> RiskModel:
        """The model with these static layers (and their sensors) replaced; the others kept.

        A new model has a new ``base``: compute it with ``compute`` (a static layer is not
        cell-local to one reading, so there is no incremental path for it).
        """
        unknown = set(layers) - set(self.static_hazards)
        if unknown:
            raise ScoreError(f"static layer(s) {sorted(unknown)} are not in the model ({sorted(self.static_hazards)})")
        static = {**self.static_hazards, **{n: _ro(np.array(a, dtype=LAYER_DTYPE)) for n, a in layers.items()}}
        refs = dict(self.layer_sensors)
        for n, rs in (sensors or {}).items():
            refs[n] = tuple(rs)
        return replace(self, static_hazards=MappingProxyType(static), layer_sensors=MappingProxyType(refs))

    def index_of(self, station_id: str) -> int:
        try:
            return self.station_ids.index(station_id)
        except ValueError:
            raise KeyError(f"unknown station {station_id!r}") from None

    @cached_property
    def base(self) -> RiskMap:
        """The map with every rain-driven layer at 0: exposure, V, L and static hazards, done once."""
        zero = {n: np.zeros(self.grid.shape, dtype=LAYER_DTYPE) for n in self.rain_layers}
        return compute_risk(self.grid, {**zero, **self.static_hazards}, self.exposure,
                            vulnerability=self.vulnerability, lack_of_coping=self.lack_of_coping,
                            params=self.score, inside=self.inside)

    def sensors(self, values: np.ndarray) -> Mapping[str, tuple[SensorRef, ...]]:
        """The gauges with a value, behind every rain-driven layer, reaching as far as the IDW radius; and
        the sensors of the static layers."""
        refs = tuple(SensorRef(sid, float(lon), float(lat), self.idw.max_radius_m)
                     for sid, (lon, lat), v in zip(self.station_ids, self.station_lonlat, values, strict=True)
                     if np.isfinite(v))
        return {**self.layer_sensors, **{layer: refs for layer in self.rain_layers}}


@dataclass(frozen=True, eq=False)
class RiskState:
    """One evaluation of a model: gauge values, rain field, risk map, hotspots."""

    model: RiskModel
    values: np.ndarray  # per station, in model.station_ids order; NaN = no reading
    rain_mm: np.ndarray  # LAYER_DTYPE; NaN = no gauge in range
    risk: RiskMap
    labels: np.ndarray  # components at or above the hotspot level (0 = none)
    hotspots: tuple[Hotspot, ...]
    by_label: Mapping[int, Hotspot]


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _rain_blocks(model: RiskModel, rain: np.ndarray, window: Window) -> Mapping[str, np.ndarray]:
    blocks = model.hazard_from_rain(rain, window)
    if set(blocks) != set(model.rain_layers):
        raise ScoreError(f"hazard_from_rain returned {sorted(blocks)}, the model expects {sorted(model.rain_layers)}")
    return blocks


def _values(model: RiskModel, values: Sequence[float] | np.ndarray | Mapping[str, float]) -> np.ndarray:
    if isinstance(values, Mapping):
        unknown = set(values) - set(model.station_ids)
        if unknown:
            raise KeyError(f"unknown station(s) {sorted(unknown)}")
        v = np.array([float(values.get(s, np.nan)) for s in model.station_ids])
    else:
        v = np.array(values, dtype=float)
    if v.shape != (len(model.station_ids),):
        raise ScoreError(f"{len(model.station_ids)} stations but {v.shape} values")
    return _ro(v)


def _hotspots(model: RiskModel, risk: RiskMap, values: np.ndarray, previous: Sequence[Hotspot],
              reuse_from: RiskState | None, window: Window | None
              ) -> tuple[np.ndarray, tuple[Hotspot, ...], Mapping[int, Hotspot]]:
    labelling = label_hotspots(risk, model.hotspots)
    labels, n, slices = labelling
    reuse: dict[int, Hotspot] = {}
    if reuse_from is not None and window is not None and n:
        # A component clear of the window and its one-cell ring had the same cells, levels and
        # scores before: it is the same hotspot.
        rows, cols = window
        r0, r1 = rows.start - 1, rows.stop + 1
        c0, c1 = cols.start - 1, cols.stop + 1
        for k, sl in enumerate(slices, start=1):
            if sl is None:
                continue
            clear = sl[0].stop <= r0 or sl[0].start >= r1 or sl[1].stop <= c0 or sl[1].start >= c1
            if clear:
                rr, cc = np.nonzero(labels[sl] == k)
                old = int(reuse_from.labels[sl][rr[0], cc[0]])
                if old in reuse_from.by_label:
                    reuse[k] = reuse_from.by_label[old]
    hs = find_hotspots(risk, exposure=model.exposure, sensors=model.sensors(values), previous=previous,
                       params=model.hotspots, labels=labelling, reuse=reuse)
    by_label = {}
    for h in hs:
        by_label[int(labels.ravel()[h.cells[0]])] = h
    return _ro(labels), hs, MappingProxyType(by_label)


def compute(model: RiskModel, values: Sequence[float] | np.ndarray | Mapping[str, float], *,
            previous: Sequence[Hotspot] = ()) -> RiskState:
    """Full recompute: rain field everywhere, hazards, score, hotspots (ids carried from ``previous``)."""
    v = _values(model, values)
    whole: Window = (slice(0, model.grid.nrows), slice(0, model.grid.ncols))
    rain = idw_grid(model.grid, model.station_xy, v, model.idw).astype(LAYER_DTYPE)
    risk = model.base.with_hazards(whole, _rain_blocks(model, rain, whole))
    labels, hs, by_label = _hotspots(model, risk, v, previous, None, None)
    return RiskState(model, v, _ro(rain), risk, labels, hs, by_label)


def update_reading(state: RiskState, station_id: str, value: float) -> RiskState:
    """The state after one station's new value, recomputing only the cells it can change."""
    model = state.model
    i = model.index_of(station_id)
    v = state.values.copy()
    v[i] = float(value)
    v = _ro(v)
    window = influence_window(model.grid, model.station_xy[i], model.idw)
    rows, cols = window
    if rows.start >= rows.stop or cols.start >= cols.stop:  # the station reaches no cell
        return RiskState(model, v, state.rain_mm, state.risk, state.labels, state.hotspots, state.by_label)
    block = idw_grid(model.grid, model.station_xy, v, model.idw, window=window).astype(LAYER_DTYPE)
    rain = state.rain_mm.copy()
    rain[window] = block
    risk = state.risk.with_hazards(window, _rain_blocks(model, rain[window], window))
    labels, hs, by_label = _hotspots(model, risk, v, state.hotspots, state, window)
    return RiskState(model, v, _ro(rain), risk, labels, hs, by_label)
