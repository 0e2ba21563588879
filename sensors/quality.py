"""Per-sensor quality control over time and space: step/spike, flatline, consistency, neighbours.

The per-reading checks of ``sensors.qc`` (format, unit, range) see one record; these see a
sensor's recent history and its neighbours, as a weather service's station QC does:

- the Oklahoma Mesonet's automated QA (Shafer et al. 2000, "Quality assurance procedures
  in the Oklahoma Mesonetwork", J. Atmos. Oceanic Technol. 17, 474–494): range, step,
  persistence and spatial tests, each giving a flag rather than deleting data;
- WMO's AWS QC guidelines (Zahumenský 2004) for the step and minimum-variability limits
  (declared per kind in ``sensors.kinds``);
- GHCN-Daily (Durre et al. 2010) for internal consistency and the idea that a check
  flags a value and leaves its storage to the archive.

Flags only ever get worse here: a suspect reading is stored and shown, and opens at most an
*unverified* incident (someone should look); a bad reading never feeds a hazard model.
Pure and synchronous: readings in, flagged readings out; no clock, no I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy.spatial import cKDTree

from sensors.kinds import Quantity
from sensors.model import QcNote, Reading
from sensors.registry import SensorSpec

__all__ = ["NeighbourRule", "NEIGHBOUR_RULES", "QualityControl"]

_HISTORY_MAX = 512  # readings kept per (sensor, quantity): a day of 5-min data, and more
_HISTORY_SPAN = timedelta(hours=25)
_EARTH_R_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class NeighbourRule:
    """A spatial (leave-one-out) check for one kind's quantity.

    The value a sensor reports is compared with the inverse-distance-weighted estimate
    from its neighbours of the same kind within ``radius_m`` (at least ``min_neighbours``
    with data no older than ``max_age``), as the Mesonet's spatial test compares a station
    with a Barnes analysis of the others. It is suspect when it differs by more than
    ``abs_tol`` plus ``rel_tol`` times the estimate. ``window`` > 0 compares accumulations
    over that window (rain) rather than instantaneous values.
    """

    radius_m: float
    abs_tol: float
    rel_tol: float = 0.0
    min_neighbours: int = 2
    max_age: timedelta = timedelta(minutes=30)
    window: timedelta = timedelta(0)
    lapse_c_per_m: float = 0.0  # adjust neighbours to this station's elevation (temperature)
    max_neighbours: int = 8


# Defaults (project choices, documented in docs/quality-control.md): an hour's rain at one
# gauge 20 mm plus 100 % away from what gauges within 10 km saw is worth a look (a local
# downpour is real, but unverified); temperature 5 °C off its neighbours after the
# standard-atmosphere lapse rate (6.5 °C/km, ICAO Doc 7488) is suspect.
NEIGHBOUR_RULES: Mapping[tuple[str, str], NeighbourRule] = {
    ("rain_gauge", "rain"): NeighbourRule(10_000.0, abs_tol=20.0, rel_tol=1.0, min_neighbours=2,
                                          window=timedelta(hours=1)),
    ("weather_station", "temp"): NeighbourRule(15_000.0, abs_tol=5.0, min_neighbours=2,
                                               lapse_c_per_m=-0.0065),
}


class _Series:
    """One record's recent readings in time order, with a prefix sum of the good values.

    Window sums (the neighbour check's hour of rain) and "the reading before t" are
    O(log n) with ``bisect``; readings mostly arrive in order and are appended.
    """

    __slots__ = ("prefix", "readings", "times")

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.times: list[datetime] = []
        self.prefix: list[float] = [0.0]  # prefix[i]: sum of the good values of readings[:i]

    def __len__(self) -> int:
        return len(self.readings)

    def add(self, r: Reading) -> None:
        if not self.times or r.time > self.times[-1]:
            self.readings.append(r)
            self.times.append(r.time)
            self.prefix.append(self.prefix[-1] + (r.value if r.flag == "good" else 0.0))
            return
        i = bisect_left(self.times, r.time)
        if i < len(self.times) and self.times[i] == r.time:
            self.readings[i] = r  # the same time again: the newer review stands
        else:
            self.readings.insert(i, r)
            self.times.insert(i, r.time)
        self._reprefix(i)

    def _reprefix(self, start: int) -> None:
        del self.prefix[start + 1:]
        for r in self.readings[start:]:
            self.prefix.append(self.prefix[-1] + (r.value if r.flag == "good" else 0.0))

    def trim(self, *, keep: int, span: timedelta) -> None:
        """Drop the oldest readings beyond ``keep`` or ``span`` (lazily: when twice over)."""
        if len(self.readings) <= 2 * keep and self.times[-1] - self.times[0] <= span * 1.5:
            return
        cut = max(len(self.readings) - keep, bisect_left(self.times, self.times[-1] - span))
        del self.readings[:cut]
        del self.times[:cut]
        self.prefix = [0.0]
        self._reprefix(0)

    def before(self, t: datetime) -> Reading | None:
        i = bisect_left(self.times, t)
        return self.readings[i - 1] if i else None

    def good_sum(self, after: datetime, upto: datetime) -> float:
        """Sum of the good values with ``after < time <= upto``."""
        return self.prefix[bisect_right(self.times, upto)] - self.prefix[bisect_right(self.times, after)]

    def newest_good(self, upto: datetime, *, skip: datetime | None = None) -> Reading | None:
        for i in range(bisect_right(self.times, upto) - 1, -1, -1):
            r = self.readings[i]
            if r.flag == "good" and r.time != skip:
                return r
        return None


class QualityControl:
    """Holds each sensor's recent readings and reviews every new one against them.

    ``review`` returns the reading with its flag lowered and a ``QcNote`` per failed check.
    Late and out-of-order readings are reviewed against their neighbours in time.
    """

    def __init__(self, specs: Iterable[SensorSpec], *,
                 neighbour_rules: Mapping[tuple[str, str], NeighbourRule] = NEIGHBOUR_RULES) -> None:
        self._specs = {s.sensor_id: s for s in specs}
        self._rules = dict(neighbour_rules)
        self._history: dict[tuple[str, str], _Series] = {}
        # Neighbours per sensor, nearest first, computed once (the registry is static).
        self._neighbours: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for (kind, quantity), rule in self._rules.items():
            same = [s for s in self._specs.values() if s.kind == kind]
            if len(same) < 2:
                continue
            # k nearest within the radius, from a KD-tree on a local equirectangular plane
            # (metre-accurate over a district; the check's tolerances are far coarser)
            lat0 = math.radians(sum(s.lat for s in same) / len(same))
            xy = np.array([[math.radians(s.lon) * math.cos(lat0) * _EARTH_R_M, math.radians(s.lat) * _EARTH_R_M]
                           for s in same])
            k = min(rule.max_neighbours + 1, len(same))
            dist, idx = cKDTree(xy).query(xy, k=k, distance_upper_bound=rule.radius_m)
            for i, s in enumerate(same):
                self._neighbours[(s.sensor_id, quantity)] = [
                    (same[j].sensor_id, float(d)) for d, j in zip(dist[i], idx[i], strict=True)
                    if j != i and j < len(same) and math.isfinite(d)]

    def history(self, sensor_id: str, quantity: str) -> list[Reading]:
        """The kept readings of one sensor's record, oldest first."""
        series = self._history.get((sensor_id, quantity))
        return list(series.readings) if series is not None else []

    def seed(self, readings: Iterable[Reading]) -> None:
        """Load stored readings (e.g. at start-up) without reviewing them."""
        for r in sorted(readings, key=lambda r: r.time):
            self._remember(r)

    def review(self, reading: Reading) -> Reading:
        """Run the temporal, consistency and spatial checks; remember the reading."""
        spec = self._specs.get(reading.sensor_id)
        q = spec.quantity_spec(reading.quantity) if spec is not None else None
        if spec is None or q is None or reading.flag == "bad" or q.health:
            self._remember(reading)
            return reading
        hist = self._history.get((reading.sensor_id, reading.quantity)) or _Series()
        prev = hist.before(reading.time)
        out = reading
        for note in (self._step(q, prev, reading), self._counter(q, prev, reading),
                     self._flatline(q, hist, reading), self._dew_point(spec, reading),
                     self._neighbour(spec, reading)):
            if note is not None:
                out = out.flagged(note)
        self._remember(out)
        return out

    # -- checks ---------------------------------------------------------------------------
    @staticmethod
    def _step(q: Quantity, prev: Reading | None, r: Reading) -> QcNote | None:
        if q.step_max is None or prev is None or prev.flag == "bad":
            return None
        gap_s = (r.time - prev.time).total_seconds()
        limit = q.step_max * max(1.0, gap_s / q.step_base_s)
        change = r.value - prev.value
        if abs(change) <= limit:
            return None
        return QcNote("step", "suspect",
                      f"changed by {change:+g} {q.unit} in {gap_s:g} s (more than {limit:g} {q.unit})")

    @staticmethod
    def _counter(q: Quantity, prev: Reading | None, r: Reading) -> QcNote | None:
        # GHCN-Daily internal consistency: an accumulating counter never decreases. A drop
        # to near zero is a logger reset (kept good); any other drop is impossible.
        if not q.cumulative or prev is None or r.value >= prev.value:
            return None
        if r.value <= max(1.0, 0.05 * prev.value):
            return None
        return QcNote("consistency", "bad",
                      f"cumulative {r.quantity} fell from {prev.value:g} to {r.value:g} {q.unit} without a reset")

    @staticmethod
    def _flatline(q: Quantity, hist: _Series, r: Reading) -> QcNote | None:
        # Persistence test (Mesonet; WMO minimum variability): a working sensor's value moves
        # by at least flat_min_change over flat_window_s, unless it rests at flat_ok (no rain).
        if q.flat_min_change is None or (q.flat_ok is not None and r.value == q.flat_ok) or not hist:
            return None
        start = r.time - timedelta(seconds=q.flat_window_s)
        if hist.times[0] > start + timedelta(seconds=q.flat_window_s * 0.1):
            return None  # the window is not covered by the history yet
        lo = hi = r.value
        n = 1
        for p in reversed(hist.readings):  # newest first; stop at the window's start or once it has moved
            if p.time >= r.time or p.flag == "bad":
                continue
            if p.time < start:
                break
            lo, hi, n = min(lo, p.value), max(hi, p.value), n + 1
            if hi - lo >= q.flat_min_change:
                return None
        if n < 3:
            return None
        return QcNote("flatline", "suspect",
                      f"stuck near {r.value:g} {q.unit}: {n} readings in {q.flat_window_s / 3600:g} h "
                      f"vary by {hi - lo:g} (less than {q.flat_min_change:g})")

    def _dew_point(self, spec: SensorSpec, r: Reading) -> QcNote | None:
        # Internal consistency (WMO-No. 1269; GHCN-Daily): dew point cannot exceed the air
        # temperature measured with it (0.5 °C tolerance for sensor accuracy).
        if spec.kind != "weather_station" or r.quantity not in ("temp", "dew_point"):
            return None
        other = "dew_point" if r.quantity == "temp" else "temp"
        match = self._at(spec.sensor_id, other, r.time, timedelta(minutes=10))
        if match is None:
            return None
        temp, dew = (r.value, match.value) if r.quantity == "temp" else (match.value, r.value)
        if dew <= temp + 0.5:
            return None
        return QcNote("consistency", "bad", f"dew point {dew:g} °C above air temperature {temp:g} °C")

    def _neighbour(self, spec: SensorSpec, r: Reading) -> QcNote | None:
        rule = self._rules.get((spec.kind, r.quantity))
        if rule is None:
            return None
        own = self._value(spec.sensor_id, r.quantity, r.time, rule, current=r)
        if own is None:
            return None
        weights, values = [], []
        for other_id, dist in self._neighbours.get((spec.sensor_id, r.quantity), ()):
            v = self._value(other_id, r.quantity, r.time, rule)
            if v is None:
                continue
            if rule.lapse_c_per_m:
                other = self._specs[other_id]
                dz = _elevation(spec) - _elevation(other)
                if math.isnan(dz):
                    continue
                v += rule.lapse_c_per_m * dz
            weights.append(1.0 / max(dist, 100.0) ** 2)  # IDW, power 2; 100 m floor
            values.append(v)
        if len(values) < rule.min_neighbours:
            return None
        estimate = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
        tolerance = rule.abs_tol + rule.rel_tol * abs(estimate)
        if abs(own - estimate) <= tolerance:
            return None
        what = f"{rule.window.total_seconds() / 3600:g} h {r.quantity}" if rule.window else r.quantity
        return QcNote("neighbour", "suspect",
                      f"{what} {own:g} {r.unit} vs {estimate:.1f} {r.unit} estimated from {len(values)} "
                      f"neighbours within {rule.radius_m / 1000:g} km (tolerance {tolerance:.1f})")

    # -- helpers --------------------------------------------------------------------------
    def _value(self, sensor_id: str, quantity: str, at: datetime, rule: NeighbourRule, *,
               current: Reading | None = None) -> float | None:
        """A sensor's value at ``at``: its latest usable reading, or its accumulation over the window."""
        series = self._history.get((sensor_id, quantity))
        skip = current.time if current is not None else None
        newest = series.newest_good(at, skip=skip) if series is not None else None
        if current is not None and (newest is None or current.time >= newest.time):
            newest = current
        if newest is None or at - newest.time > rule.max_age:
            return None
        if not rule.window:
            return newest.value
        total = series.good_sum(at - rule.window, at) if series is not None else 0.0
        if current is not None and at - rule.window < current.time <= at:
            if series is not None:
                i = bisect_left(series.times, current.time)
                if i < len(series.times) and series.times[i] == current.time and series.readings[i].flag == "good":
                    total -= series.readings[i].value  # the stored value at this time is under review again
            total += current.value
        return total

    def _at(self, sensor_id: str, quantity: str, at: datetime, within: timedelta) -> Reading | None:
        best = None
        series = self._history.get((sensor_id, quantity))
        for h in (series.readings if series is not None else ()):
            if abs(h.time - at) <= within and (best is None or abs(h.time - at) < abs(best.time - at)):
                best = h
        return best

    def _remember(self, r: Reading) -> None:
        series = self._history.get((r.sensor_id, r.quantity))
        if series is None:
            series = self._history[(r.sensor_id, r.quantity)] = _Series()
        series.add(r)
        series.trim(keep=_HISTORY_MAX, span=_HISTORY_SPAN)


def _elevation(spec: SensorSpec) -> float:
    value = spec.properties.get("elevation_m")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
