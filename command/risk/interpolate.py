"""Point values (rain accumulations at gauges, ...) onto the grid by inverse distance weighting.

IDW (Shepard 1968, "A two-dimensional interpolation function for irregularly-spaced data",
Proc. 23rd ACM National Conference, eq. 2): the estimate at x is Σ wᵢ vᵢ / Σ wᵢ with
wᵢ = 1 / d(x, xᵢ)^p over the k nearest stations within ``max_radius_m``; at a station
(d = 0) the estimate is that station's value. Weights are positive and sum to one, so an
estimate never leaves [min, max] of the values used. A cell with no station within the
radius is NaN: no data, not zero rain.

Ordinary kriging is left out on purpose: with a district's few gauges (nine in Yubei) an
empirical variogram cannot be fitted reliably per time step, and a fixed one would only
dress IDW up.

Positions are metres in the grid's projected CRS (``Grid.to_xy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .grid import Grid, Window

__all__ = [
    "IdwParams",
    "InterpolationError",
    "idw",
    "idw_grid",
    "influence_window",
    "leave_one_out",
]

TILE_CELLS = 128  # idw_grid works on blocks of 128 × 128 cells (≈ 3.8 km at 30 m; fastest measured)


class InterpolationError(ValueError):
    """Stations or parameters the interpolation cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class IdwParams:
    """Inverse distance weighting settings.

    ``power`` 2 is Shepard's (1968) choice. ``k`` and ``max_radius_m`` have no published
    defaults: eight neighbours, and 15 km, about the spacing of a district's automatic rain
    gauges, so that a cell far from every gauge reads "no data" rather than a guess.
    """

    k: int = 8
    power: float = 2.0
    max_radius_m: float = 15_000.0  # math.inf: no radius

    def __post_init__(self) -> None:
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise InterpolationError(f"k must be an integer ≥ 1, got {self.k!r}")
        if not (np.isfinite(self.power) and self.power > 0):
            raise InterpolationError(f"power must be a positive number, got {self.power}")
        if not self.max_radius_m > 0:
            raise InterpolationError(f"max_radius_m must be positive, got {self.max_radius_m}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> IdwParams:
        """Defaults with overrides (unknown keys are ignored)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "k" in known and float(known["k"]) != int(float(known["k"])):
            raise InterpolationError(f"k must be an integer ≥ 1, got {known['k']!r}")
        return cls(**{k: int(float(v)) if k == "k" else float(v) for k, v in known.items()})


def _stations(xy: np.ndarray | Sequence[Sequence[float]], values: np.ndarray | Sequence[float]
              ) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(xy, dtype=float)
    v = np.asarray(values, dtype=float)
    if p.ndim != 2 or p.shape[1:] != (2,):
        raise InterpolationError(f"station positions must have shape (n, 2), got {p.shape}")
    if v.shape != (p.shape[0],):
        raise InterpolationError(f"{p.shape[0]} station positions but values of shape {v.shape}")
    if not np.all(np.isfinite(p)):
        bad = np.flatnonzero(~np.all(np.isfinite(p), axis=1)).tolist()
        raise InterpolationError(f"station position(s) not finite at index {bad}")
    return p, v


def _weighted(d: np.ndarray, v: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """IDW from neighbour distances (k, n) and values (k, n) or (k, 1); inf = no neighbour.

    Accumulates neighbour by neighbour in the given order, so a cell's result does not
    depend on how the cells were batched.
    """
    finite = np.isfinite(d)
    used = finite.sum(axis=0)
    vz = np.where(finite, v, 0.0)  # broadcasts a (k, 1) column of station values
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # Weights relative to the nearest neighbour, (d_min / d)^p: the same ratios as 1/d^p,
        # but the nearest weighs exactly 1 (a lone neighbour gives its value exactly) and far
        # neighbours do not underflow. d = inf (no neighbour) weighs 0; d_min = 0 is handled below.
        dmin = d.min(axis=0)
        r = np.where(finite, dmin / d, 0.0)
        w = r * r if power == 2.0 else r ** power
        num = np.zeros(d.shape[1])
        den = np.zeros(d.shape[1])
        for j in range(d.shape[0]):
            num += w[j] * vz[j]
            den += w[j]
        out = num / den  # 0 / 0 (nothing in range) is NaN: no data
    zero = d == 0.0
    if zero.any():
        at = np.flatnonzero(zero.any(axis=0))
        z = zero[:, at]
        out[at] = np.where(z, vz[:, at], 0.0).sum(axis=0) / z.sum(axis=0)
    return out, used


def idw(stations_xy: np.ndarray | Sequence[Sequence[float]], values: np.ndarray | Sequence[float],
        targets_xy: np.ndarray | Sequence[Sequence[float]], params: IdwParams = IdwParams()
        ) -> tuple[np.ndarray, np.ndarray]:
    """IDW at arbitrary points: (estimates, neighbours used: in range, at most k); NaN where none is.

    Stations whose value is not finite (no reading) are left out.

    >>> est, n = idw([[0, 0], [100, 0]], [10.0, 20.0], [[50, 0], [0, 0], [900, 0]], IdwParams(max_radius_m=500))
    >>> est.tolist(), n.tolist()
    ([15.0, 10.0, nan], [2, 2, 0])
    """
    p, v = _stations(stations_xy, values)
    t = np.asarray(targets_xy, dtype=float).reshape(-1, 2)
    keep = np.isfinite(v)
    p, v = p[keep], v[keep]
    if len(v) == 0:
        return np.full(len(t), np.nan), np.zeros(len(t), dtype=np.intp)
    k = min(params.k, len(v))
    d, i = cKDTree(p).query(t, k=k, distance_upper_bound=params.max_radius_m)
    d = np.asarray(d, dtype=float).reshape(len(t), k).T
    i = np.asarray(i).reshape(len(t), k).T
    vv = np.where(i < len(v), v[np.minimum(i, len(v) - 1)], np.nan)
    return _weighted(d, vv, params.power)


def leave_one_out(stations_xy: np.ndarray | Sequence[Sequence[float]], values: np.ndarray | Sequence[float],
                  params: IdwParams = IdwParams()) -> tuple[np.ndarray, np.ndarray]:
    """Predict each station from the others: (predicted values, neighbours used) per station.

    A station without a value is still predicted (from the others); NaN where no other
    station with a value is in range. Other stations at the same position count (d = 0).
    """
    p, v = _stations(stations_xy, values)
    n = len(v)
    pred = np.full(n, np.nan)
    used = np.zeros(n, dtype=np.intp)
    have = np.flatnonzero(np.isfinite(v))
    if n == 0 or len(have) == 0:
        return pred, used
    tree = cKDTree(p[have])
    k = min(params.k + 1, len(have))
    d, i = tree.query(p, k=k, distance_upper_bound=params.max_radius_m)
    d = np.asarray(d, dtype=float).reshape(n, k)
    i = np.asarray(i).reshape(n, k)
    # Drop each station itself (by identity, not by distance), then keep the k nearest others.
    station_of = np.where(i < len(have), have[np.minimum(i, len(have) - 1)], -1)
    self_hit = station_of == np.arange(n)[:, None]
    d = np.where(self_hit, np.inf, d)
    order = np.argsort(d, axis=1, kind="stable")[:, : params.k]
    d = np.take_along_axis(d, order, axis=1)
    station_of = np.take_along_axis(station_of, order, axis=1)
    vv = np.where(station_of >= 0, v[np.maximum(station_of, 0)], np.nan)
    return _weighted(d.T, vv.T, params.power)


def influence_window(grid: Grid, station_xy: Sequence[float], params: IdwParams = IdwParams()) -> Window:
    """The cells a station's value can change: those within ``max_radius_m`` (the whole grid without a radius)."""
    return grid.window(float(station_xy[0]), float(station_xy[1]), params.max_radius_m)


def idw_grid(grid: Grid, stations_xy: np.ndarray | Sequence[Sequence[float]],
             values: np.ndarray | Sequence[float], params: IdwParams = IdwParams(), *,
             window: Window | None = None) -> np.ndarray:
    """IDW at every cell centre of the grid (or of a window of it), float64; NaN with no station in range.

    Same estimate as ``idw`` at the cell centres. Cells are done in blocks: for each block
    a k-d tree query at its centre bounds which stations can be among any of its cells' k
    nearest, and the block is finished with exact distances to those few. Ties at the k-th
    distance go to the lower station index and sums run in station order, so a cell's value
    does not depend on the block layout: a window gives bit for bit the full grid's numbers.
    """
    p, v = _stations(stations_xy, values)
    rows, cols = window if window is not None else (slice(0, grid.nrows), slice(0, grid.ncols))
    xs = grid.x_m[cols]
    ys = grid.y_m[rows]
    out = np.full((len(ys), len(xs)), np.nan)
    keep = np.isfinite(v)
    p, v = p[keep], v[keep]
    if len(v) == 0 or out.size == 0:
        return out
    tree = cKDTree(p)
    k = min(params.k, len(v))
    radius = params.max_radius_m
    tile = TILE_CELLS
    r_starts = np.arange(0, len(ys), tile)
    c_starts = np.arange(0, len(xs), tile)
    r_ends = np.minimum(r_starts + tile, len(ys))
    c_ends = np.minimum(c_starts + tile, len(xs))
    # Block centres and half-diagonals (blocks at the edge are smaller).
    cy = (ys[r_starts] + ys[r_ends - 1]) / 2.0
    cx = (xs[c_starts] + xs[c_ends - 1]) / 2.0
    hy = (ys[r_starts] - ys[r_ends - 1]) / 2.0
    hx = (xs[c_ends - 1] - xs[c_starts]) / 2.0
    CX, CY = np.meshgrid(cx, cy)
    HX, HY = np.meshgrid(hx, hy)
    centres = np.column_stack([CX.ravel(), CY.ravel()])
    half = np.hypot(HX, HY).ravel()
    # A cell p of a block with centre c and half-diagonal h has its k nearest within
    # d_k(p) ≤ d_k(c) + h of p, hence within min(R, d_k(c) + h) + h of c.
    dk, _ = tree.query(centres, k=k)
    dk = np.asarray(dk, dtype=float).reshape(len(centres), k)[:, -1]
    # (plus a hair, so that rounding never drops a station exactly on the bound)
    reach = (np.minimum(radius, dk + half) + half) * (1.0 + 1e-9) + 1e-6
    candidates = tree.query_ball_point(centres, reach)
    for b, cand in enumerate(candidates):
        if not cand:
            continue
        bi, bj = divmod(b, len(c_starts))
        r0, r1, c0, c1 = r_starts[bi], r_ends[bi], c_starts[bj], c_ends[bj]
        idx = np.sort(np.asarray(cand, dtype=np.intp))
        dx = xs[c0:c1][None, None, :] - p[idx, 0][:, None, None]
        dy = ys[r0:r1][None, :, None] - p[idx, 1][:, None, None]
        d = np.sqrt(dx * dx + dy * dy).reshape(len(idx), -1)
        d[d > radius] = np.inf
        if len(idx) > k:
            # Keep the k nearest of each cell (ties at the k-th distance to the lower station
            # index); the others become "no neighbour". Rows stay in station order, so the
            # sum runs in the same order whatever the block.
            kth = np.partition(d, k - 1, axis=0)[k - 1]
            below = d < kth
            tied = d == kth
            room = k - below.sum(axis=0)
            keep = below | (tied & (np.cumsum(tied, axis=0) <= room))
            d[~keep] = np.inf
        dsel, vsel = d, v[idx][:, None]
        est, _ = _weighted(dsel, vsel, params.power)
        out[r0:r1, c0:c1] = est.reshape(r1 - r0, c1 - c0)
    return out
