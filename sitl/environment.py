"""The simulated vehicles' environment: wind (steady + seeded gusts) and a river current.

Configured per simulator (``SimVehicle(environment=...)``) or for a whole fleet from the
fleet file's top-level ``environment`` section (``sitl.fleet_sim``)::

    environment:
      seed: 7                                  # gusts: the same seed, the same gusts
      wind: {speed_mps: 6, from_deg: 270, gust_mps: 1.5}
      current: {speed_mps: 1.2, toward_deg: 60, water_only: true}

Conventions are the meteorological and the nautical ones, as in ArduPilot SITL
(``SIM_WIND_DIR``: the direction the wind blows *from*) and on charts (a current *sets
toward* a direction). Everything here is pure: the vehicle asks for the wind at a sim
time and the current at a point.

Gusts: a first-order Gauss-Markov process per horizontal component, the shape of
ArduPilot SITL's turbulence (``SITL::Aircraft::update_wind``: Gaussian noise through a
first-order IIR filter), with ``gust_mps`` the standard deviation of the gust speed and
``gust_tau_s`` its correlation time. It is advanced on a fixed 0.1 s grid of sim time, so
the gust at a sim time depends only on the seed and that time, not on how the simulator's
ticks fell (runs are reproducible whatever the machine's load).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Wind", "Current", "Environment", "GustProcess", "WaterMask", "EnvironmentConfigError",
           "CALM", "load_water_mask", "wind_vector_ne", "current_vector_ne", "wind_field"]

GUST_STEP_S = 0.1  # the gust process's grid in sim seconds


class EnvironmentConfigError(ValueError):
    """A bad ``environment`` setting (kept a ValueError so config loaders report it)."""


def _number(raw: Mapping[str, Any], key: str, default: float, *, low: float | None = 0.0,
            where: str) -> float:
    value = raw.get(key, default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise EnvironmentConfigError(f"{where}.{key}: not a number: {value!r}") from None
    if not math.isfinite(x) or (low is not None and x < low):
        raise EnvironmentConfigError(f"{where}.{key} must be a finite number >= {low}, not {value!r}")
    return x


def _check_keys(raw: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise EnvironmentConfigError(f"{where}: expected a mapping, not {type(raw).__name__}")
    unknown = set(raw) - allowed
    if unknown:
        raise EnvironmentConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                                f"allowed: {', '.join(sorted(allowed))}")
    return raw


@dataclass(frozen=True, slots=True)
class Wind:
    """Steady wind blowing *from* ``from_deg`` (true, clockwise from north) plus gusts."""

    speed_mps: float = 0.0
    from_deg: float = 0.0
    gust_mps: float = 0.0  # standard deviation of the horizontal gust speed
    gust_tau_s: float = 2.0  # correlation time of the gusts

    def __post_init__(self) -> None:
        for name in ("speed_mps", "gust_mps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise EnvironmentConfigError(f"wind.{name} must be >= 0, not {value}")
        if not math.isfinite(self.from_deg):
            raise EnvironmentConfigError(f"wind.from_deg must be finite, not {self.from_deg}")
        if not (math.isfinite(self.gust_tau_s) and self.gust_tau_s > 0):
            raise EnvironmentConfigError(f"wind.gust_tau_s must be > 0, not {self.gust_tau_s}")

    @classmethod
    def from_mapping(cls, raw: Any) -> Wind:
        m = _check_keys(raw, {"speed_mps", "from_deg", "gust_mps", "gust_tau_s"}, "wind")
        return cls(_number(m, "speed_mps", 0.0, where="wind"),
                   _number(m, "from_deg", 0.0, low=None, where="wind") % 360.0,
                   _number(m, "gust_mps", 0.0, where="wind"),
                   _number(m, "gust_tau_s", 2.0, where="wind"))


@dataclass(frozen=True, slots=True)
class Current:
    """Water current setting *toward* ``toward_deg``; with ``water_only``, only inside the
    district's water areas (``rivers.geojson``, ``kind: water``)."""

    speed_mps: float = 0.0
    toward_deg: float = 0.0
    water_only: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_mps) and self.speed_mps >= 0):
            raise EnvironmentConfigError(f"current.speed_mps must be >= 0, not {self.speed_mps}")
        if not math.isfinite(self.toward_deg):
            raise EnvironmentConfigError(f"current.toward_deg must be finite, not {self.toward_deg}")

    @classmethod
    def from_mapping(cls, raw: Any) -> Current:
        m = _check_keys(raw, {"speed_mps", "toward_deg", "water_only"}, "current")
        water_only = m.get("water_only", False)
        if not isinstance(water_only, bool):
            raise EnvironmentConfigError(f"current.water_only must be true or false, not {water_only!r}")
        return cls(_number(m, "speed_mps", 0.0, where="current"),
                   _number(m, "toward_deg", 0.0, low=None, where="current") % 360.0, water_only)


def wind_vector_ne(speed_mps: float, from_deg: float) -> tuple[float, float]:
    """Velocity of the air (north, east m/s) for a wind blowing *from* ``from_deg``.

    >>> [round(x, 6) for x in wind_vector_ne(5.0, 270.0)]   # a west wind blows east
    [0.0, 5.0]
    """
    toward = math.radians(from_deg + 180.0)
    return speed_mps * math.cos(toward), speed_mps * math.sin(toward)


def current_vector_ne(speed_mps: float, toward_deg: float) -> tuple[float, float]:
    """Velocity of the water (north, east m/s) for a current setting *toward* ``toward_deg``."""
    a = math.radians(toward_deg)
    return speed_mps * math.cos(a), speed_mps * math.sin(a)


class WaterMask:
    """Is a point on water? The union of the district's water polygons (shapely 2)."""

    def __init__(self, polygons: list[Any]) -> None:
        import shapely

        if not polygons:
            raise EnvironmentConfigError("no water polygons (rivers.geojson features of kind 'water')")
        self._geom = shapely.union_all(polygons)
        shapely.prepare(self._geom)

    def contains(self, lon: float, lat: float) -> bool:
        import shapely

        return bool(shapely.contains_xy(self._geom, lon, lat))


def load_water_mask(district_dir: Path) -> WaterMask:
    """The water areas of a district folder (``rivers.geojson``, ``kind: water``)."""
    import shapely.geometry

    path = Path(district_dir) / "rivers.geojson"
    try:
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
        polys = [shapely.geometry.shape(f["geometry"]) for f in features
                 if (f.get("properties") or {}).get("kind") == "water"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EnvironmentConfigError(f"{path}: cannot read the water areas: {err}") from err
    return WaterMask(polys)


@dataclass(frozen=True, slots=True)
class Environment:
    """Wind and current for a simulator; ``water`` restricts a ``water_only`` current."""

    wind: Wind = field(default_factory=Wind)
    current: Current = field(default_factory=Current)
    seed: int = 0
    water: WaterMask | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.current.water_only and self.current.speed_mps > 0 and self.water is None:
            raise EnvironmentConfigError("current.water_only needs the district's water areas "
                                    "(give the district folder)")

    @property
    def calm(self) -> bool:
        return self.wind.speed_mps == 0 and self.wind.gust_mps == 0 and self.current.speed_mps == 0

    @classmethod
    def from_mapping(cls, raw: Any, *, district_dir: Path | None = None) -> Environment:
        """From a fleet file's ``environment`` mapping; the water areas are read from
        ``district_dir`` when the current is ``water_only``."""
        m = _check_keys(raw, {"wind", "current", "seed"}, "environment")
        seed = m.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise EnvironmentConfigError(f"environment.seed must be an integer, not {seed!r}")
        wind = Wind.from_mapping(m.get("wind"))
        current = Current.from_mapping(m.get("current"))
        water = None
        if current.water_only and current.speed_mps > 0:
            if district_dir is None:
                raise EnvironmentConfigError("current.water_only needs a district folder")
            water = load_water_mask(district_dir)
        return cls(wind, current, seed, water)

    def current_at(self, lon: float, lat: float) -> tuple[float, float]:
        """Water velocity (north, east m/s) at a point: zero off the water when ``water_only``."""
        c = self.current
        if c.speed_mps == 0:
            return 0.0, 0.0
        if c.water_only and self.water is not None and not self.water.contains(lon, lat):
            return 0.0, 0.0
        return current_vector_ne(c.speed_mps, c.toward_deg)


CALM = Environment()


class GustProcess:
    """Seeded gusts: two independent first-order Gauss-Markov components (north, east).

    x[k+1] = a·x[k] + σ_c·sqrt(1 - a²)·N(0, 1), a = exp(-Δt/τ), Δt = 0.1 s, stationary
    standard deviation σ_c per component with σ_c = gust_mps/√2 (so the RMS gust speed is
    ``gust_mps``). Values are held between grid points.
    """

    def __init__(self, sigma_mps: float, tau_s: float, seed: int) -> None:
        self._sigma_c = sigma_mps / math.sqrt(2.0)
        self._a = math.exp(-GUST_STEP_S / tau_s)
        self._rng = random.Random(seed)
        self._k = 0
        self._n = self._e = 0.0
        if self._sigma_c > 0:  # start in the stationary distribution
            self._n = self._rng.gauss(0.0, self._sigma_c)
            self._e = self._rng.gauss(0.0, self._sigma_c)

    def at(self, t_s: float) -> tuple[float, float]:
        """The gust (north, east m/s) at sim time ``t_s`` (monotonic use; an earlier time
        returns the current value)."""
        if self._sigma_c == 0:
            return 0.0, 0.0
        target = int(max(0.0, t_s) / GUST_STEP_S)
        b = self._sigma_c * math.sqrt(1.0 - self._a * self._a)
        while self._k < target:
            self._n = self._a * self._n + b * self._rng.gauss(0.0, 1.0)
            self._e = self._a * self._e + b * self._rng.gauss(0.0, 1.0)
            self._k += 1
        return self._n, self._e


def wind_field(env: Environment, seed: int) -> Callable[[float], tuple[float, float]]:
    """Air velocity (north, east m/s) as a function of sim time: steady wind + gusts."""
    steady = wind_vector_ne(env.wind.speed_mps, env.wind.from_deg)
    gusts = GustProcess(env.wind.gust_mps, env.wind.gust_tau_s, seed)

    def at(t_s: float) -> tuple[float, float]:
        gn, ge = gusts.at(t_s)
        return steady[0] + gn, steady[1] + ge

    return at
