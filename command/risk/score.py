"""Per-cell risk score in INFORM's geometric form, with the "why" of every cell kept.

INFORM (Index for Risk Management; Marin-Ferrer, Vernaccini & Poljansek 2017, "INFORM
Concept and Methodology Report, version 2017", European Commission JRC, EUR 28655 EN,
doi:10.2760/094023) scores risk as the geometric mean of three dimensions:

    Risk = (Hazard & Exposure)^(1/3) × Vulnerability^(1/3) × LackOfCopingCapacity^(1/3)

Adapted here from countries to grid cells, all dimensions on 0..1 instead of 0..10:

* Hazard H: the hazard layers hⱼ (0..1: flood depth normalised, landslide ratio, fire
  danger, ...) combined as a weighted probabilistic union, H = 1 − Πⱼ(1 − wⱼhⱼ). One
  severe hazard is enough to make a cell hazardous (INFORM lets the worst hazard dominate
  in the same spirit); a second one raises H further. wⱼ ∈ [0, 1] caps a layer's reach.
* Exposure E: raw layers (people, schools, roads, ...) normalised to 0..1
  (``ExposureNorm``; population on a log scale of density, as INFORM log-transforms
  population indicators before min-max normalisation), combined by the same union.
* Hazard & Exposure = H × E: "there is no risk if there is no physical exposure, no
  matter how severe the hazard" (INFORM's definition of the dimension).
* Vulnerability V and lack of coping capacity L: 0..1 per cell or constants, given by the
  caller (``lack_of_coping_from_distance`` builds L from the distance to fire stations).

Risk = (H·E)^a · V^b · L^c with (a, b, c) = (1/3, 1/3, 1/3) by default; every factor is
non-decreasing in every input, so the score is too. NaN in any input makes the cell NaN
(no data), never a silently lower score.

The "why" of a cell or region: −ln(1 − D) = Σᵢ −ln(1 − wᵢxᵢ) for each union D, so each
layer's term is its additive share of its dimension; ``RiskMap.why_cells`` reports the
layers by share with their values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from .exposure import POPULATION, ROAD_LENGTH, Exposure
from .grid import Grid, Window
from .rules import Level

__all__ = [
    "DEFAULT_EXPOSURE_NORMS",
    "DEFAULT_EXPOSURE_WEIGHTS",
    "LAYER_DTYPE",
    "Contribution",
    "ExposureNorm",
    "LevelBreaks",
    "RiskMap",
    "ScoreError",
    "ScoreParams",
    "Why",
    "compute_risk",
    "lack_of_coping_from_distance",
    "normalise_exposure",
    "union",
]

LAYER_DTYPE = np.float32  # 7 significant digits are plenty for 0..1 indices; halves memory and time
NO_DATA = -1  # level of a cell whose score is NaN
_TERM_CAP = 1.0 - 1e-9  # keeps −ln(1 − w·x) finite when a layer is at 1 (shares only)


class ScoreError(ValueError):
    """Layers or parameters the score cannot use; the message names them."""


@dataclass(frozen=True, slots=True)
class ExposureNorm:
    """Raw exposure → 0..1: x = raw / unit, then x / ref (linear) or log10(1 + x) / log10(1 + ref), capped at 1.

    ``per`` sets the unit: ``cell`` (count per cell), ``km2`` (density: raw per km² of the
    cell) or ``cell_side`` (length per cell side: 1 = one road straight across the cell),
    so that a score does not change with the cell size.
    """

    ref: float
    log: bool = False
    per: Literal["cell", "km2", "cell_side"] = "cell"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.ref) and self.ref > 0):
            raise ScoreError(f"ExposureNorm.ref must be a positive number, got {self.ref}")
        if self.per not in ("cell", "km2", "cell_side"):
            raise ScoreError(f"ExposureNorm.per must be cell, km2 or cell_side, got {self.per!r}")

    def __call__(self, raw: np.ndarray, cell_m: float) -> np.ndarray:
        a = np.asarray(raw, dtype=float)
        if self.per == "km2":
            a = a / (cell_m * cell_m / 1e6)
        elif self.per == "cell_side":
            a = a / cell_m
        with np.errstate(invalid="ignore"):
            if np.any(a < 0):
                raise ScoreError("exposure values must be ≥ 0")
            x = np.log10(1.0 + a) / np.log10(1.0 + self.ref) if self.log else a / self.ref
        return np.minimum(x, 1.0)


# Population: a density of 10,000 persons/km² (100 m² of urban land per person, GB 50137-2011
# Table 4.2.1, the same figure that sizes the town kernels in command.risk.exposure) maps to 1,
# on INFORM's log scale. Facilities: one in the cell maps to 1. Roads: one cell side of road.
DEFAULT_EXPOSURE_NORMS: Mapping[str, ExposureNorm] = MappingProxyType({
    POPULATION: ExposureNorm(ref=10_000.0, log=True, per="km2"),
    "schools_count": ExposureNorm(ref=1.0),
    "hospitals_count": ExposureNorm(ref=1.0),
    "nursing_homes_count": ExposureNorm(ref=1.0),
    "bridges_count": ExposureNorm(ref=1.0),
    ROAD_LENGTH: ExposureNorm(ref=1.0, per="cell_side"),
})
# Weights cap each layer's reach in the union (1 = this layer alone can make the cell fully
# exposed). People and the places that gather the most vulnerable count fully; a bridge alone
# half, a road alone a tenth (an empty road through the hills is not a hotspot by itself).
# A local choice, not a published one: tune per district.
DEFAULT_EXPOSURE_WEIGHTS: Mapping[str, float] = MappingProxyType({
    POPULATION: 1.0, "schools_count": 1.0, "hospitals_count": 1.0, "nursing_homes_count": 1.0,
    "bridges_count": 0.5, ROAD_LENGTH: 0.1,
})


@dataclass(frozen=True, slots=True)
class LevelBreaks:
    """Score at or above which a cell is blue, yellow, orange, red.

    Defaults: INFORM's five risk classes (very low < 2.0 ≤ low < 3.5 ≤ medium < 5.0 ≤ high
    < 6.5 ≤ very high, on its 0–10 scale), divided by 10; very low is no colour.
    """

    blue: float = 0.20
    yellow: float = 0.35
    orange: float = 0.50
    red: float = 0.65

    def __post_init__(self) -> None:
        b = (self.blue, self.yellow, self.orange, self.red)
        if not (0.0 < b[0] < b[1] < b[2] < b[3] <= 1.0):
            raise ScoreError(f"level breaks must rise strictly within (0, 1], got {list(b)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> LevelBreaks:
        """Defaults with overrides (unknown keys are ignored)."""
        return cls(**{k: float(v) for k, v in values.items() if k in cls.__dataclass_fields__})

    def levels(self, score: np.ndarray) -> np.ndarray:
        """Level (``Level`` values) of each score as int8; −1 where the score is NaN."""
        s = np.asarray(score)
        out = (s >= self.blue).astype(np.int8)  # NaN compares False everywhere
        for b in (self.yellow, self.orange, self.red):
            out += s >= b
        out[np.isnan(s)] = NO_DATA
        return out

    def level(self, score: float) -> Level:
        """Level of one score; ``Level.NONE`` for NaN."""
        v = int(self.levels(np.array([score], dtype=float))[0])
        return Level(max(v, 0))


@dataclass(frozen=True, slots=True)
class ScoreParams:
    """Weights and normalisations of the score; see the module docstring for the formula."""

    hazard_weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    default_hazard_weight: float = 1.0
    exposure_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_EXPOSURE_WEIGHTS)
    exposure_norms: Mapping[str, ExposureNorm] = field(default_factory=lambda: DEFAULT_EXPOSURE_NORMS)
    # INFORM: equal weights of the three dimensions (geometric mean).
    dimension_weights: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    breaks: LevelBreaks = LevelBreaks()

    def __post_init__(self) -> None:
        for what, ws in (("hazard", self.hazard_weights), ("exposure", self.exposure_weights)):
            for name, w in ws.items():
                if not 0.0 <= w <= 1.0:
                    raise ScoreError(f"{what} weight of {name!r} must be within [0, 1], got {w}")
        if not 0.0 <= self.default_hazard_weight <= 1.0:
            raise ScoreError(f"default_hazard_weight must be within [0, 1], got {self.default_hazard_weight}")
        d = self.dimension_weights
        if len(d) != 3 or any(not w >= 0 for w in d) or not abs(sum(d) - 1.0) < 1e-9:
            raise ScoreError(f"dimension_weights must be three non-negative numbers summing to 1, got {d}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ScoreParams:
        """Defaults with overrides: weights merge into the defaults; ``breaks`` is a mapping; norms are
        ``{layer: {ref, log, per}}``. Unknown keys are ignored."""
        kw: dict[str, Any] = {}
        if "hazard_weights" in values:
            kw["hazard_weights"] = MappingProxyType({k: float(v) for k, v in values["hazard_weights"].items()})
        if "default_hazard_weight" in values:
            kw["default_hazard_weight"] = float(values["default_hazard_weight"])
        if "exposure_weights" in values:
            kw["exposure_weights"] = MappingProxyType(
                {**DEFAULT_EXPOSURE_WEIGHTS, **{k: float(v) for k, v in values["exposure_weights"].items()}})
        if "exposure_norms" in values:
            kw["exposure_norms"] = MappingProxyType(
                {**DEFAULT_EXPOSURE_NORMS, **{k: ExposureNorm(**v) for k, v in values["exposure_norms"].items()}})
        if "dimension_weights" in values:
            kw["dimension_weights"] = tuple(float(v) for v in values["dimension_weights"])
        if "breaks" in values:
            kw["breaks"] = LevelBreaks.from_mapping(values["breaks"])
        return cls(**kw)

    def hazard_weight(self, name: str) -> float:
        return float(self.hazard_weights.get(name, self.default_hazard_weight))

    def exposure_weight(self, name: str) -> float:
        if name not in self.exposure_weights:
            raise ScoreError(f"no weight for exposure layer {name!r}")
        return float(self.exposure_weights[name])


# --- building blocks --------------------------------------------------------------------------


def union(layers: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted probabilistic union 1 − Π(1 − wᵢxᵢ) of 0..1 layers (NaN in, NaN out).

    >>> float(union({"a": np.array(0.5), "b": np.array(0.5)}, {"a": 1.0, "b": 1.0}))
    0.75
    """
    keep: np.ndarray | None = None
    for name, x in layers.items():
        term = 1.0 - weights[name] * x
        keep = term if keep is None else keep * term
    if keep is None:
        raise ScoreError("no layers to combine")
    return 1.0 - keep


def normalise_exposure(layers: Mapping[str, np.ndarray], *, cell_m: float,
                       params: ScoreParams = ScoreParams()) -> dict[str, np.ndarray]:
    """Raw exposure layers (units in their names) → 0..1 with ``params.exposure_norms``."""
    out = {}
    for name, raw in layers.items():
        norm = params.exposure_norms.get(name)
        if norm is None:
            raise ScoreError(f"no normalisation for exposure layer {name!r}; add one to exposure_norms")
        out[name] = norm(raw, cell_m).astype(LAYER_DTYPE)
    return out


def lack_of_coping_from_distance(distance_m: np.ndarray, *, reach_m: float = 5_000.0,
                                 floor: float = 0.2) -> np.ndarray:
    """Lack of coping capacity 0..1 from the distance to the nearest fire station.

    L = floor + (1 − floor) · min(d / reach_m, 1). The urban fire-station standard
    (建标 152-2017, 城市消防站建设标准) asks that engines reach the edge of a station's area
    within 5 minutes of dispatch; 5 km is that at 60 km/h, an assumed road speed. ``floor``
    (0.2, a local choice) keeps a cell next to a station from scoring zero.
    """
    if not (reach_m > 0 and 0.0 < floor <= 1.0):
        raise ScoreError(f"reach_m must be > 0 and floor within (0, 1], got {reach_m}, {floor}")
    d = np.asarray(distance_m, dtype=float)
    if np.any(d < 0):
        raise ScoreError("distances must be ≥ 0")
    return floor + (1.0 - floor) * np.minimum(d / reach_m, 1.0)


def _as_layer(grid: Grid, value: float | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        a = np.full(grid.shape, float(a))
    grid.check(a, name)
    with np.errstate(invalid="ignore"):
        if np.any((a < 0) | (a > 1)):
            raise ScoreError(f"{name} must lie within [0, 1] (NaN = no data)")
    return a


def _check_unit(grid: Grid, layers: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    out = {}
    for name, x in layers.items():
        a = grid.check(x, f"{what} layer {name!r}")
        with np.errstate(invalid="ignore"):
            if np.any((a < 0) | (a > 1)):
                raise ScoreError(f"{what} layer {name!r} must lie within [0, 1] (NaN = no data)")
        out[name] = np.asarray(a, dtype=LAYER_DTYPE)
    return out


# --- the risk map -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contribution:
    """One layer's part in a cell's (or region's) hazard or exposure."""

    layer: str
    share: float  # of its dimension: the shares of a dimension sum to 1 (0 when the dimension is 0)
    value: float  # normalised 0..1, the highest over the cells
    raw: float | None = None  # exposure: the layer's total over the cells, in its unit


@dataclass(frozen=True, slots=True)
class Why:
    """Why a cell or region scores what it does: its peak cell's dimensions and the layers by share."""

    n_cells: int
    score: float  # highest score (NaN if no cell has one)
    level: Level
    peak_cell: int  # flat index of the highest-scoring cell (−1 if none)
    hazard: float  # at the peak cell
    exposure: float
    vulnerability: float
    lack_of_coping: float
    hazards: tuple[Contribution, ...]  # by share, largest first
    exposures: tuple[Contribution, ...]
    no_data: tuple[str, ...] = ()  # layers that are NaN somewhere in the cells

    @property
    def top_hazard(self) -> Contribution | None:
        return self.hazards[0] if self.hazards and self.hazards[0].share > 0 else None

    @property
    def top_exposure(self) -> Contribution | None:
        return self.exposures[0] if self.exposures and self.exposures[0].share > 0 else None

    def describe(self, top: int = 2) -> str:
        """One line a dispatcher can read, e.g.
        ``score 0.66 (red): hazard rain_3h 0.72 (100%); exposure population_persons 85,000 (98%); V 0.50, L 0.93``."""
        hz = ", ".join(f"{c.layer} {c.value:.2f} ({c.share:.0%})" for c in self.hazards[:top] if c.share > 0)
        ex = ", ".join(f"{c.layer} {c.raw:,.0f} ({c.share:.0%})" if c.raw is not None
                       else f"{c.layer} {c.value:.2f} ({c.share:.0%})" for c in self.exposures[:top] if c.share > 0)
        nd = f"; no data: {', '.join(self.no_data)}" if self.no_data else ""
        return (f"score {self.score:.2f} ({self.level.colour}): hazard {hz or 'none'}; exposure {ex or 'none'}; "
                f"V {self.vulnerability:.2f}, L {self.lack_of_coping:.2f}{nd}")


def _shares(layers: Mapping[str, np.ndarray], weights: Mapping[str, float],
            raws: Mapping[str, np.ndarray] | None) -> tuple[list[Contribution], list[str]]:
    """Shares of layers given as their values at the cells (1-D each)."""
    terms: dict[str, float] = {}
    values: dict[str, float] = {}
    no_data = []
    for name, x in layers.items():
        v = np.asarray(x, dtype=float)
        if np.isnan(v).any():
            no_data.append(name)
        wv = np.minimum(weights[name] * v, _TERM_CAP)
        terms[name] = float(np.nansum(-np.log1p(-wv)))
        values[name] = float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")
    total = sum(terms.values())
    out = [Contribution(name, terms[name] / total if total > 0 else 0.0, values[name],
                        float(np.nansum(raws[name])) if raws is not None else None)
           for name in layers]
    out.sort(key=lambda c: (-c.share, c.layer))
    return out, no_data


@dataclass(frozen=True, eq=False)
class RiskMap:
    """The district's per-cell risk (read-only arrays, ``LAYER_DTYPE``) and what it is made of."""

    grid: Grid
    score: np.ndarray  # 0..1; NaN = no data (or outside the district)
    level: np.ndarray  # int8 ``Level`` values; −1 = no data
    hazard: np.ndarray  # H
    exposure: np.ndarray  # E (static)
    vulnerability: np.ndarray  # V
    lack_of_coping: np.ndarray  # L
    factor: np.ndarray  # V^b · L^c (NaN outside the district): the static part of the score
    hazards: Mapping[str, np.ndarray]  # 0..1
    exposure_raw: Mapping[str, np.ndarray]  # in their units (normalised on demand, for the "why")
    params: ScoreParams

    def why_cells(self, cells: np.ndarray | Sequence[int]) -> Why:
        """The "why" of a set of cells (flat indices): layers by share, with their values."""
        c = np.asarray(cells, dtype=np.intp).ravel()
        if c.size == 0:
            raise ScoreError("why of no cells")
        if c.min() < 0 or c.max() >= self.grid.size:
            raise ScoreError(f"cell index out of the grid (0..{self.grid.size - 1})")
        s = np.asarray(self.score.ravel()[c], dtype=float)
        has = np.isfinite(s)
        peak = int(c[np.argmax(np.where(has, s, -np.inf))]) if has.any() else -1
        hz, nd_h = _shares({n: a.ravel()[c] for n, a in self.hazards.items()},
                           {n: self.params.hazard_weight(n) for n in self.hazards}, None)
        raw = {n: a.ravel()[c] for n, a in self.exposure_raw.items()}
        ex, nd_e = _shares(normalise_exposure(raw, cell_m=self.grid.cell_m, params=self.params),
                           {n: self.params.exposure_weight(n) for n in raw}, raw)

        def at(a: np.ndarray) -> float:
            return float(a.ravel()[peak]) if peak >= 0 else float("nan")

        score = at(self.score)
        return Why(int(c.size), score, self.params.breaks.level(score), peak, at(self.hazard), at(self.exposure),
                   at(self.vulnerability), at(self.lack_of_coping), tuple(hz), tuple(ex), tuple(nd_h + nd_e))

    def why(self, row: int, col: int) -> Why:
        """The "why" of one cell."""
        if not (0 <= row < self.grid.nrows and 0 <= col < self.grid.ncols):
            raise ScoreError(f"cell ({row}, {col}) is off the {self.grid.shape} grid")
        return self.why_cells([row * self.grid.ncols + col])

    def with_hazards(self, window: Window, blocks: Mapping[str, np.ndarray]) -> RiskMap:
        """A new map where some hazard layers are replaced inside ``window`` by ``blocks`` and the
        score recomputed there only; everything else is shared with this map (it is read-only)."""
        unknown = set(blocks) - set(self.hazards)
        if unknown:
            raise ScoreError(f"hazard layer(s) {sorted(unknown)} are not in the map ({sorted(self.hazards)})")
        rows, cols = window
        whole = _covers(self.grid, window)
        hazards = dict(self.hazards)
        for name, b in blocks.items():
            block = np.asarray(b, dtype=LAYER_DTYPE)
            if block.shape != self.hazards[name][rows, cols].shape:
                raise ScoreError(f"hazard block {name!r} has shape {block.shape}, "
                                 f"the window {self.hazards[name][rows, cols].shape}")
            with np.errstate(invalid="ignore"):
                if np.any((block < 0) | (block > 1)):
                    raise ScoreError(f"hazard layer {name!r} must lie within [0, 1] (NaN = no data)")
            new = block.copy() if whole else self.hazards[name].copy()
            if not whole:
                new[rows, cols] = block
            hazards[name] = _ro(new)
        h, score = _score(self.params, {n: a[rows, cols] for n, a in hazards.items()},
                          self.exposure[rows, cols], self.factor[rows, cols])
        level = self.params.breaks.levels(score)
        if not whole:
            h = _patched(self.hazard, window, h)
            score = _patched(self.score, window, score)
            level = _patched(self.level, window, level)
        return RiskMap(self.grid, _ro(score), _ro(level), _ro(h), self.exposure, self.vulnerability,
                       self.lack_of_coping, self.factor, MappingProxyType(hazards), self.exposure_raw, self.params)


def _covers(grid: Grid, window: Window) -> bool:
    rows, cols = window
    return rows.indices(grid.nrows)[:2] == (0, grid.nrows) and cols.indices(grid.ncols)[:2] == (0, grid.ncols) \
        and rows.step in (None, 1) and cols.step in (None, 1)


def _patched(old: np.ndarray, window: Window, block: np.ndarray) -> np.ndarray:
    new = old.copy()
    new[window] = block
    return new


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _score(params: ScoreParams, hazards: Mapping[str, np.ndarray], exposure: np.ndarray,
           factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, score) of a block of cells; elementwise, so any block gives the full map's numbers."""
    h = union(hazards, {n: LAYER_DTYPE(params.hazard_weight(n)) for n in hazards}).astype(LAYER_DTYPE)
    a = params.dimension_weights[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        he = h * exposure
        # INFORM's equal weights: a cube root, three times faster than a power.
        score = (np.cbrt(he) if a == 1 / 3 else he ** LAYER_DTYPE(a)) * factor
    return h, score.astype(LAYER_DTYPE)


def compute_risk(grid: Grid, hazards: Mapping[str, np.ndarray], exposure: Exposure | Mapping[str, np.ndarray], *,
                 vulnerability: float | np.ndarray, lack_of_coping: float | np.ndarray,
                 params: ScoreParams = ScoreParams(), inside: np.ndarray | None = None) -> RiskMap:
    """The risk map of a grid from hazard layers (0..1), raw exposure layers, V and L (0..1).

    ``inside`` (bool, grid shape), when given, blanks the cells outside the district (NaN).
    """
    if not hazards:
        raise ScoreError("at least one hazard layer is needed")
    raw = exposure.layers if isinstance(exposure, Exposure) else exposure
    if not raw:
        raise ScoreError("at least one exposure layer is needed")
    # Read-only arrays (an Exposure's) are shared, anything else copied: the map must not change under us.
    raw = {n: a if isinstance(a, np.ndarray) and not a.flags.writeable else _ro(np.array(a, dtype=float))
           for n, a in ((n, grid.check(a, f"exposure layer {n!r}")) for n, a in raw.items())}
    hz = _check_unit(grid, hazards, "hazard")
    ex = normalise_exposure(raw, cell_m=grid.cell_m, params=params)
    e = union(ex, {n: LAYER_DTYPE(params.exposure_weight(n)) for n in ex}).astype(LAYER_DTYPE)
    v = _as_layer(grid, vulnerability, "vulnerability")
    lc = _as_layer(grid, lack_of_coping, "lack_of_coping")
    _, b, c = params.dimension_weights
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (v ** b * lc ** c).astype(LAYER_DTYPE)
    if inside is not None:
        m = np.asarray(grid.check(inside, "inside"), dtype=bool)
        factor[~m] = np.nan
    h, score = _score(params, hz, e, factor)
    return RiskMap(grid, _ro(score), _ro(params.breaks.levels(score)), _ro(h), _ro(e),
                   _ro(v.astype(LAYER_DTYPE)), _ro(lc.astype(LAYER_DTYPE)), _ro(factor),
                   MappingProxyType({n: _ro(a.copy()) for n, a in hz.items()}), MappingProxyType(raw), params)
