"""Hotspots: connected cells at or above a level, as records a dispatcher can act on.

A hotspot is an 8-connected set of cells at or above ``min_level`` (``scipy.ndimage.label``),
at least ``min_area_m2`` large. Its record holds an outline in WGS84 (exactly the union of
its cells, traced from their boundary edges, then simplified by half a cell), the highest
level, the peak score and its place, area, people and facilities inside, and the "why":
the contributing layers and the sensors whose values drove them.

Ids are stable across recomputes: a hotspot takes the id of the previous hotspot it
overlaps most (each previous id goes to one hotspot at most; a split keeps the id on the
larger overlap, a merge keeps the id of the larger overlap); a new one is named after its
peak cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from .exposure import POPULATION, Exposure
from .grid import Grid, Window
from .rules import Level
from .score import RiskMap, Why

__all__ = [
    "EIGHT_CONNECTED",
    "Hotspot",
    "Labelling",
    "HotspotError",
    "HotspotParams",
    "SensorRef",
    "find_hotspots",
    "label_hotspots",
]

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class HotspotError(ValueError):
    """Hotspot input that cannot be used; the message says which."""


@dataclass(frozen=True, slots=True)
class HotspotParams:
    """What makes a hotspot: level, size, outline smoothing, and when a layer counts as a driver."""

    min_level: Level = Level.YELLOW
    min_area_m2: float = 10_000.0  # one hectare (11 cells of 30 m): smaller specks are noise, not incidents
    simplify_cells: float = 0.5  # outline simplification tolerance, in cells
    min_share: float = 0.05  # a hazard layer with less of the hazard than this names no sensors

    def __post_init__(self) -> None:
        if Level(self.min_level) is Level.NONE:
            raise HotspotError("min_level must be BLUE or above: every cell is at least NONE")
        if not self.min_area_m2 >= 0:
            raise HotspotError(f"min_area_m2 must be ≥ 0, got {self.min_area_m2}")
        if self.simplify_cells < 0:
            raise HotspotError(f"simplify_cells must be ≥ 0, got {self.simplify_cells}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HotspotParams:
        """Defaults with overrides; ``min_level`` by name (``"orange"``) or number."""
        kw: dict[str, Any] = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "min_level" in kw:
            lv = kw["min_level"]
            kw["min_level"] = Level[lv.upper()] if isinstance(lv, str) else Level(int(lv))
        for k in ("min_area_m2", "simplify_cells", "min_share"):
            if k in kw:
                kw[k] = float(kw[k])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class SensorRef:
    """A sensor behind a hazard layer: where it is and how far its value reaches (the IDW radius)."""

    sensor_id: str
    lon: float
    lat: float
    radius_m: float = 0.0  # 0: only a sensor inside the hotspot counts


@dataclass(frozen=True, eq=False)
class Hotspot:
    """One hotspot; ``polygon`` in WGS84 lon/lat, ``cells`` the flat indices of its grid cells."""

    id: str
    level: Level
    peak_score: float
    peak_lon: float
    peak_lat: float
    peak_cell: int
    n_cells: int
    area_m2: float  # cells × cell area
    population_persons: float
    facility_ids: tuple[str, ...]
    polygon: Polygon | MultiPolygon
    why: Why
    sensors: Mapping[str, tuple[str, ...]]  # hazard layer → ids of the sensors that drove it, nearest first
    cells: np.ndarray = field(repr=False)  # sorted
    outline_m: Polygon | MultiPolygon = field(repr=False, default_factory=Polygon)  # the cells' exact outline, metres

    def same_as(self, other: Hotspot) -> bool:
        """Same id, cells and figures (the outline compared exactly)."""
        return (self.id == other.id and self.level == other.level and self.peak_cell == other.peak_cell
                and self.peak_score == other.peak_score and np.array_equal(self.cells, other.cells)
                and self.population_persons == other.population_persons
                and self.facility_ids == other.facility_ids and dict(self.sensors) == dict(other.sensors)
                and shapely.equals_exact(self.polygon, other.polygon, 0.0))

    def to_feature(self) -> dict[str, Any]:
        """GeoJSON Feature (properties carry the figures and the why)."""
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": mapping(self.polygon),
            "properties": {
                "id": self.id, "level": self.level.colour, "level_zh": self.level.colour_zh,
                "peak_score": round(self.peak_score, 4), "peak": [self.peak_lon, self.peak_lat],
                "area_m2": self.area_m2, "population_persons": round(self.population_persons),
                "facility_ids": list(self.facility_ids),
                "hazards": [{"layer": c.layer, "share": round(c.share, 3), "value": round(c.value, 3)}
                            for c in self.why.hazards if c.share > 0],
                "exposures": [{"layer": c.layer, "share": round(c.share, 3), "total": c.raw}
                              for c in self.why.exposures if c.share > 0],
                "sensors": {k: list(v) for k, v in self.sensors.items()},
                "why": self.why.describe(),
            },
        }


Labelling = tuple[np.ndarray, int, list[Window | None]]  # labels (0 = none), count, bounding block of each


def label_hotspots(risk: RiskMap, params: HotspotParams = HotspotParams()) -> Labelling:
    """8-connected components of cells at or above ``params.min_level``, with their bounding blocks."""
    labels, n = ndimage.label(risk.level >= int(params.min_level), structure=EIGHT_CONNECTED)
    return labels, int(n), ndimage.find_objects(labels)


def _outline_m(grid: Grid, sub: np.ndarray, r0: int, c0: int) -> Polygon | MultiPolygon:
    """Outline in metres of a component (bool block whose top-left cell is (r0, c0)).

    The cell edges between the component and the rest are polygonized (GEOS) and the faces
    that lie in the component kept: holes come out as holes, cells touching only at a
    corner as separate parts. Same shape as the union of the cells, a few times faster.
    """
    p = np.zeros((sub.shape[0] + 2, sub.shape[1] + 2), dtype=np.int8)
    p[1:-1, 1:-1] = sub
    # Cell-edge lines are numbered like cells: line i runs along the top of row i (column j
    # along the left of column j); an edge on line i between padded cells (i, j) and (i+1, j)
    # spans column j−1. Same integers → same floats, so the edges meet exactly.
    hi, hj = np.nonzero(np.diff(p, axis=0))
    vi, vj = np.nonzero(np.diff(p, axis=1))
    ri = np.concatenate([hi, hi, vi - 1, vi]) + r0
    ci = np.concatenate([hj - 1, hj, vj, vj]) + c0
    x = grid.west_m + ci * grid.cell_m
    y = grid.north_m - ri * grid.cell_m
    n_h, n_v = len(hi), len(vi)
    start = np.concatenate([np.arange(n_h), 2 * n_h + np.arange(n_v)])
    end = np.concatenate([n_h + np.arange(n_h), 2 * n_h + n_v + np.arange(n_v)])
    coords = np.stack([np.column_stack([x[start], y[start]]), np.column_stack([x[end], y[end]])], axis=1)
    faces = shapely.get_parts(shapely.polygonize(shapely.linestrings(coords)))
    px, py = shapely.get_coordinates(shapely.point_on_surface(faces)).T
    fr = np.floor((grid.north_m - py) / grid.cell_m).astype(np.intp) - r0
    fc = np.floor((px - grid.west_m) / grid.cell_m).astype(np.intp) - c0
    inside = sub[np.clip(fr, 0, sub.shape[0] - 1), np.clip(fc, 0, sub.shape[1] - 1)]
    kept = faces[inside]
    return kept[0] if len(kept) == 1 else shapely.multipolygons(kept)


def _to_lonlat(grid: Grid, geom: BaseGeometry) -> BaseGeometry:
    def fn(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return grid.to_lonlat(x, y)
    return shapely.transform(geom, fn, interleaved=False)


def _build(risk: RiskMap, labels: np.ndarray, lab: int, sl: Window, hid: str, *, exposure: Exposure | None,
           sensors: Mapping[str, Sequence[SensorRef]], params: HotspotParams,
           same_cells: Mapping[tuple[int, int], Hotspot]) -> Hotspot:
    grid = risk.grid
    rs, cs = sl
    sub = labels[rs, cs] == lab
    rr, cc = np.nonzero(sub)
    cells = (rr + rs.start) * grid.ncols + (cc + cs.start)  # row-major, hence sorted
    score = np.asarray(risk.score[rs, cs], dtype=float)
    peak_local = int(np.argmax(np.where(sub, np.nan_to_num(score, nan=-np.inf), -np.inf)))
    pr, pc = divmod(peak_local, sub.shape[1])
    pr, pc = pr + rs.start, pc + cs.start
    plon, plat = grid.lonlat_of_cell(pr, pc)
    level = Level(int(risk.level[rs, cs][sub].max()))
    before = same_cells.get((int(cells.size), int(cells[0])))
    if before is not None and np.array_equal(before.cells, cells):
        # Same cells as a previous hotspot: same outline (it depends on the cells only).
        outline, polygon = before.outline_m, before.polygon
    else:
        outline = _outline_m(grid, sub, rs.start, cs.start)
        simple = outline.simplify(params.simplify_cells * grid.cell_m) if params.simplify_cells > 0 else outline
        polygon = _to_lonlat(grid, simple)
    why = risk.why_cells(cells)
    raw = exposure.layers if exposure is not None else risk.exposure_raw
    pop = float(raw[POPULATION].ravel()[cells].sum()) if POPULATION in raw else 0.0
    facilities: tuple[str, ...] = ()
    if exposure is not None:
        fc = exposure.facility_cells
        on = fc >= 0
        at = np.zeros(len(fc), dtype=bool)
        at[on] = labels.ravel()[fc[on]] == lab
        facilities = tuple(exposure.facility_ids[i] for i in np.flatnonzero(at))
    drivers = {c.layer for c in why.hazards if c.share >= params.min_share}
    hit: dict[str, tuple[str, ...]] = {}
    for layer, refs in sensors.items():
        if layer not in drivers or not refs:
            continue
        x, y = grid.to_xy([r.lon for r in refs], [r.lat for r in refs])
        d = np.atleast_1d(shapely.distance(outline, shapely.points(x, y)))
        reach = np.array([r.radius_m for r in refs])
        near = np.flatnonzero(d <= reach)
        near = near[np.argsort(d[near], kind="stable")]  # nearest first
        if near.size:
            hit[layer] = tuple(refs[i].sensor_id for i in near)
    return Hotspot(hid, level, float(risk.score[pr, pc]), float(plon), float(plat), int(pr * grid.ncols + pc),
                   int(cells.size), float(cells.size * grid.cell_area_m2), pop, facilities, polygon, why,
                   MappingProxyType(hit), _ro(cells), outline)


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _match(labels: np.ndarray, keep: np.ndarray, previous: Sequence[Hotspot]) -> dict[int, str]:
    """New label → previous id, greedily by overlap (cells), each previous id used once."""
    pairs = []
    for p in previous:
        if p.cells.size == 0:
            continue
        hit = labels.ravel()[p.cells]
        hit = hit[np.isin(hit, keep)]
        if hit.size:
            labs, counts = np.unique(hit, return_counts=True)
            pairs.extend((int(n), int(lab), p.id) for lab, n in zip(labs, counts, strict=True))
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    out: dict[int, str] = {}
    used: set[str] = set()
    for _, lab, pid in pairs:
        if lab not in out and pid not in used:
            out[lab] = pid
            used.add(pid)
    return out


def find_hotspots(risk: RiskMap, *, exposure: Exposure | None = None,
                  sensors: Mapping[str, Sequence[SensorRef]] | None = None, previous: Sequence[Hotspot] = (),
                  params: HotspotParams = HotspotParams(), labels: Labelling | None = None,
                  reuse: Mapping[int, Hotspot] | None = None) -> tuple[Hotspot, ...]:
    """Hotspots of a risk map, highest peak first; ids carried over from ``previous`` by overlap.

    ``sensors`` maps a hazard layer to the sensors behind it; a sensor is named (nearest
    first) when its position, or its reach (``radius_m``), touches the hotspot and the layer
    is a driver (share ≥ ``params.min_share``). ``exposure`` gives the facilities inside.
    ``labels`` (from ``label_hotspots``) and ``reuse`` (label → unchanged previous hotspot)
    let an incremental update skip components it knows did not change.
    """
    grid = risk.grid
    if any(p.cells.size and p.cells.max() >= grid.size for p in previous):
        raise HotspotError("previous hotspots come from a different grid")
    lab, n, slices = labels if labels is not None else label_hotspots(risk, params)
    if lab.shape != grid.shape:
        raise HotspotError(f"labels of shape {lab.shape} do not fit the {grid.shape} grid")
    if n == 0:
        return ()
    # Sizes within each component's bounding block (a whole-grid bincount costs more than the
    # few blocks big enough to matter).
    keep_list = []
    for k, sl in enumerate(slices, start=1):
        if sl is None or (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) * grid.cell_area_m2 \
                < params.min_area_m2:
            continue
        if np.count_nonzero(lab[sl] == k) * grid.cell_area_m2 >= params.min_area_m2:
            keep_list.append(k)
    keep = np.array(keep_list, dtype=np.intp)
    ids = _match(lab, keep, previous)
    same_cells = {(p.n_cells, int(p.cells[0])): p for p in previous if p.cells.size}
    reuse = reuse or {}
    taken = set(ids.values()) | {h.id for h in reuse.values()}
    out = []
    for k in keep:
        k = int(k)
        if k in reuse:
            out.append(reuse[k])
            continue
        sl = slices[k - 1]
        hid = ids.get(k)
        h = _build(risk, lab, k, sl, hid or "", exposure=exposure, sensors=sensors or {}, params=params,
                   same_cells=same_cells)
        if hid is None:
            hid = _new_id(grid, h.peak_cell, taken)
            taken.add(hid)
            h = _renamed(h, hid)
        out.append(h)
    out.sort(key=lambda h: (-h.peak_score, h.id))
    return tuple(out)


def _new_id(grid: Grid, peak_cell: int, taken: set[str]) -> str:
    r, c = divmod(peak_cell, grid.ncols)
    base = f"hs-{r}-{c}"
    hid, i = base, 1
    while hid in taken:
        i += 1
        hid = f"{base}-{i}"
    return hid


def _renamed(h: Hotspot, hid: str) -> Hotspot:
    return Hotspot(hid, h.level, h.peak_score, h.peak_lon, h.peak_lat, h.peak_cell, h.n_cells, h.area_m2,
                   h.population_persons, h.facility_ids, h.polygon, h.why, h.sensors, h.cells, h.outline_m)
