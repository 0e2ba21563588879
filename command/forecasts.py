"""Gridded rainfall forecasts (quantitative precipitation forecasts) and staged slope warnings.

A forecast is a regular lon/lat grid of rain accumulated from its issue time to each lead
(e.g. 1, 3, 6 h). ``RainForecast.from_wire`` validates one (``ForecastError`` says what is
wrong); ``remaining_at`` gives, for a place and the current time, the rain still expected
over the next hours (the part already past is taken off, linearly between leads).

``stage_slope`` applies a slope's rainfall intensity–duration threshold to the rain seen and
the rain expected (``command.risk.landslide.staged_exceedance``) and turns the earliest lead
at which it would be reached into a staged warning, after the 6 h / 3 h / 1 h practice of
geological-hazard meteorological warnings (a warning that hours ahead is worth having before
the rain reaches the slope): reached now → by how far (the ratio's level), within 1 h →
orange, within 3 h → yellow, within 6 h → blue (a project mapping). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from .dispatch.geometry import ground_distance_m
from .risk import landslide
from .risk.rules import Assessment, Level

__all__ = ["ForecastError", "RainForecast", "stage_slope", "STAGE_LEVELS"]

MAX_CELLS = 4_000_000
STAGE_LEVELS: tuple[tuple[float, Level], ...] = ((1.0, Level.ORANGE), (3.0, Level.YELLOW), (6.0, Level.BLUE))


class ForecastError(ValueError):
    """A forecast that cannot be used, with the reason."""


@dataclass(frozen=True, eq=False)
class RainForecast:
    """Rain (mm) accumulated from ``issued`` to each lead, on a lon/lat grid (row 0 = north)."""

    issued: datetime
    source: str
    west: float  # grid edges, degrees
    north: float
    cell_deg: float
    nrows: int
    ncols: int
    leads_h: tuple[float, ...]
    accum_mm: Mapping[float, np.ndarray] = field(repr=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RainForecast:
        """From the API body: ``{issued, source, grid: {west, north, cell_deg, nrows, ncols},
        accumulations_mm: {"1": [[...], ...], "3": ..., "6": ...}}`` (rows north to south)."""
        try:
            issued = datetime.fromisoformat(str(data["issued"]))
            grid = data["grid"]
            west, north, cell = float(grid["west"]), float(grid["north"]), float(grid["cell_deg"])
            nrows, ncols = int(grid["nrows"]), int(grid["ncols"])
            raw = data["accumulations_mm"]
        except (KeyError, TypeError, ValueError) as err:
            raise ForecastError(f"forecast needs issued (ISO 8601), grid {{west, north, cell_deg, nrows, ncols}} "
                                f"and accumulations_mm: {type(err).__name__}: {err}") from None
        if issued.tzinfo is None:
            raise ForecastError("issued needs a time-zone offset")
        if not (math.isfinite(west) and math.isfinite(north) and -180 <= west <= 180 and -90 <= north <= 90):
            raise ForecastError(f"grid corner ({west}, {north}) is not a WGS 84 lon/lat")
        if not (math.isfinite(cell) and cell > 0):
            raise ForecastError(f"cell_deg must be positive, got {cell}")
        if nrows < 1 or ncols < 1 or nrows * ncols > MAX_CELLS:
            raise ForecastError(f"grid of {nrows} × {ncols} cells: need 1 to {MAX_CELLS:,} cells")
        if not isinstance(raw, Mapping) or not raw:
            raise ForecastError("accumulations_mm must map lead hours to grids")
        accum: dict[float, np.ndarray] = {}
        for key, rows in raw.items():
            try:
                lead = float(key)
                a = np.asarray(rows, dtype=float)
            except (TypeError, ValueError):
                raise ForecastError(f"lead {key!r}: not a number, or its grid is not numbers") from None
            if not (math.isfinite(lead) and 0 < lead <= 72):
                raise ForecastError(f"lead {key!r} h must be in (0, 72]")
            if a.shape != (nrows, ncols):
                raise ForecastError(f"lead {key} h: grid is {a.shape}, expected ({nrows}, {ncols})")
            if not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ForecastError(f"lead {key} h: accumulations must be finite and ≥ 0 mm")
            a.setflags(write=False)
            accum[lead] = a
        leads = tuple(sorted(accum))
        for a, b in zip(leads, leads[1:], strict=False):
            if np.any(accum[b] < accum[a]):
                raise ForecastError(f"accumulation to {b:g} h is below that to {a:g} h somewhere: they must be "
                                    f"cumulative from the issue time")
        return cls(issued, str(data.get("source", "")), west, north, cell, nrows, ncols, leads, accum)

    def _cell(self, lon: float, lat: float) -> tuple[int, int] | None:
        col = math.floor((lon - self.west) / self.cell_deg)
        row = math.floor((self.north - lat) / self.cell_deg)
        if 0 <= row < self.nrows and 0 <= col < self.ncols:
            return row, col
        return None

    def accum_at(self, lon: float, lat: float) -> dict[float, float] | None:
        """Accumulation from issue to each lead at a place (the cell holding it), None outside."""
        cell = self._cell(lon, lat)
        if cell is None:
            return None
        return {lead: float(self.accum_mm[lead][cell]) for lead in self.leads_h}

    def remaining_at(self, lon: float, lat: float, now: datetime) -> dict[float, float] | None:
        """Rain still expected from ``now`` over the next hours, by lead from now (cumulative)."""
        acc = self.accum_at(lon, lat)
        if acc is None:
            return None
        elapsed = (now - self.issued).total_seconds() / 3600.0
        if elapsed >= self.leads_h[-1]:
            return None  # the forecast has run out

        def at(h: float) -> float:  # accumulation from issue to h hours, linear between leads, 0 at 0
            xs, ys = [0.0, *self.leads_h], [0.0, *(acc[lead] for lead in self.leads_h)]
            return float(np.interp(h, xs, ys))

        done = at(max(0.0, elapsed))
        out = {}
        for lead in self.leads_h:
            if elapsed + lead <= self.leads_h[-1] + 1e-9:
                out[lead] = max(0.0, at(max(0.0, elapsed) + lead) - done)
        return out or None

    def to_wire(self) -> dict[str, Any]:
        return {"issued": self.issued.isoformat(), "source": self.source, "leads_h": list(self.leads_h),
                "grid": {"west": self.west, "north": self.north, "cell_deg": self.cell_deg, "nrows": self.nrows,
                         "ncols": self.ncols},
                "max_mm": {f"{lead:g}": float(self.accum_mm[lead].max()) for lead in self.leads_h}}


def stage_slope(slope_id: str, *, observed_mm: Mapping[float, float], forecast_mm: Mapping[float, float] | None,
                threshold: landslide.IntensityDurationThreshold = landslide.CAINE_1980,
                name: str = "", name_zh: str = "") -> Assessment:
    """A slope's rain-triggered landslide assessment: the threshold reached now, or when it would be.

    ``observed_mm``: rain of the last D hours at the slope, by D; ``forecast_mm``: rain expected
    over the next L hours, by L (None without a forecast).
    """
    obs = {d: np.asarray(v, dtype=float) for d, v in observed_mm.items() if math.isfinite(v)}
    now_ratio = math.nan
    if obs:
        now = landslide.max_exceedance(obs, threshold)
        now_ratio = float(now.ratio)
    lead = math.nan
    if forecast_mm:
        staged = landslide.staged_exceedance(obs or {1.0: np.asarray(0.0)}, {k: np.asarray(v) for k, v in
                                                                             forecast_mm.items()}, threshold)
        lead = float(staged.lead_h)
    level = Level.NONE
    if math.isfinite(now_ratio):
        level = landslide.ratio_level(now_ratio)
    if math.isfinite(lead) and lead > 0:
        for within, staged_level in STAGE_LEVELS:
            if lead <= within:
                level = max(level, staged_level)
                break
    en, zh = landslide.describe_staged(0.0 if math.isfinite(now_ratio) and now_ratio >= 1.0 else lead)
    where = f"{name}: " if name else ""
    reason = (f"{where}{en} ({threshold.name}: rain so far at {now_ratio:.2f} × the threshold)"
              if math.isfinite(now_ratio) else f"{where}{en} ({threshold.name})")
    reason_zh = f"{name_zh}：{zh}（{threshold.name}）" if name_zh else f"{zh}（{threshold.name}）"
    extra = {"observed_mm": {f"{d:g}": round(v, 1) for d, v in observed_mm.items()},
             "forecast_mm": {f"{k:g}": round(v, 1) for k, v in (forecast_mm or {}).items()},
             "ratio_now": None if math.isnan(now_ratio) else round(now_ratio, 3),
             "staged_lead_h": None if math.isnan(lead) else lead, "threshold": threshold.name,
             "staged": bool(math.isfinite(lead) and lead > 0)}
    return Assessment("landslide", level, slope_id, now_ratio, "ratio", reason, reason_zh, extra=extra)


def observed_at(stations: Sequence[tuple[float, float, Mapping[float, float]]], lon: float, lat: float, *,
                max_radius_m: float = 15_000.0) -> dict[float, float]:
    """Inverse-distance (power 2) rain by window at a place from gauges within the radius."""
    out: dict[float, float] = {}
    weights: list[tuple[float, Mapping[float, float]]] = []
    for s_lon, s_lat, acc in stations:
        d = ground_distance_m((lon, lat), (s_lon, s_lat))
        if d <= max_radius_m:
            weights.append((1.0 / max(d, 50.0) ** 2, acc))
    if not weights:
        return out
    windows = set().union(*(acc.keys() for _, acc in weights))
    for w in sorted(windows):
        pairs = [(wt, acc[w]) for wt, acc in weights if w in acc]
        out[w] = sum(wt * v for wt, v in pairs) / sum(wt for wt, _ in pairs)
    return out
