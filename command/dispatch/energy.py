"""Battery use of an electric copter or boat, in percent of a full battery.

The model is time based, one vehicle at a time:

* **Cruise.** Level flight (sailing) at the cruise speed through the air (water) draws a
  constant power ``P_c``. The fleet file's ``endurance_s`` is the cruise time from 100 % to
  empty, so ``P_c = E_batt / endurance_s`` and cruise costs ``100 / endurance_s`` % a second.
* **Wind or current.** The vehicle keeps its speed through the air (water) and holds its
  track over ground by heading into the cross component: the wind triangle (FAA, *Pilot's
  Handbook of Aeronautical Knowledge*, FAA-H-8083-25B, 2016, ch. 16 "Navigation"). With
  ``v`` the cruise speed, ``w_along`` and ``w_cross`` the flow's components along and across
  the track, the crab angle is ``asin(-w_cross / v)`` and the ground speed
  ``sqrt(v² - w_cross²) + w_along``. A headwind leg takes longer, so it costs more at the
  same power; when ``|w_cross| >= v`` or the ground speed is not positive the track cannot
  be held and the leg's time and energy are infinite. Copters take the wind, boats the
  current (the same vector arithmetic, water instead of air).
* **Hover.** Hover and loiter (copter), station-keeping (boat) draw ``hover_ratio * P_c``.
  Wind's effect on hover power is neglected.
* **Climb** (copters only). Gaining ``Δh`` adds the potential energy ``m g Δh`` through the
  drive-train efficiency ``η``: ``m g Δh / η``. Descending recovers nothing. A vertical part
  of a leg (take-off, landing) is flown at ``climb_speed_mps`` / ``descent_speed_mps`` and
  costs hover power for its duration; when a leg both moves and climbs, the climb happens
  along the leg and only the time the vertical part takes beyond the horizontal one is
  added, at hover power.

Every figure of a real airframe belongs in its own ``EnergyModel`` (from flight logs); the
defaults below are stated assumptions for a representative vehicle, not measurements.

Directions are degrees clockwise from true north. The live recall rule is
``battery - energy_to_get_home >= reserve`` (``must_turn_back``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod

from command.dispatch.allocation import DEFAULT_RESERVE_PCT
from command.dispatch.errors import PlanRefused

__all__ = [
    "DEFAULT_RESERVE_PCT",
    "G_MPS2",
    "EnergyModel",
    "Flow",
    "Leg",
    "TurnBack",
    "check_reserve",
    "cruise_time_s",
    "ground_speed_mps",
    "leg_energy_pct",
    "leg_time_s",
    "mission_energy_pct",
    "mission_time_s",
    "must_turn_back",
    "path_legs",
]

G_MPS2 = 9.80665  # standard gravity (BIPM, SI Brochure, 9th ed., 2019)

VehicleKind = Literal["copter", "boat"]

# --- default airframe figures -----------------------------------------------------------------
# Representative copter: a DJI Matrice 300 RTK class airframe (DJI, "Matrice 300 RTK
# specifications", 2020: 6.3 kg with two TB60 batteries of 274 Wh each, 9 kg maximum take-off
# mass). Fleet defaults (sitl/scenarios/yubei fleet file): 12 m/s cruise, 30 min endurance.
COPTER_CRUISE_MPS = 12.0
COPTER_ENDURANCE_S = 1800.0
COPTER_BATTERY_WH = 548.0  # 2 × 274 Wh (TB60)
COPTER_MASS_KG = 9.0  # at maximum take-off mass: a payload aboard
# Assumption: hover draws about 10 % more than cruise at the recommended cruise speed
# (multirotor power curves dip at moderate forward speed from translational lift).
COPTER_HOVER_RATIO = 1.1
# Assumption: battery-to-lift efficiency of the extra climb power (motor, ESC and propeller
# losses together), to be set from flight logs.
COPTER_CLIMB_EFFICIENCY = 0.5
# ArduCopter defaults: WPNAV_SPEED_UP 250 cm/s, WPNAV_SPEED_DN 150 cm/s (ArduPilot
# Copter parameter reference).
COPTER_CLIMB_MPS = 2.5
COPTER_DESCENT_MPS = 1.5
# Representative boat: fleet defaults 5 m/s, 2 h. Assumption: holding station in a river
# current at low throttle draws about half the cruise power.
BOAT_CRUISE_MPS = 5.0
BOAT_ENDURANCE_S = 7200.0
BOAT_BATTERY_WH = 1000.0  # assumption; only the percentages matter for a boat (no climb)
BOAT_HOVER_RATIO = 0.5

_GEOD = Geod(ellps="WGS84")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _pct(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise ValueError(f"{name} must be a percentage in 0..100, got {value!r}")


@dataclass(frozen=True, slots=True)
class Flow:
    """Moving air (wind) or water (current): speed and the direction it moves *toward*.

    >>> Flow.wind_from(5.0, 270.0).toward_deg  # a westerly blows toward the east
    90.0
    """

    speed_mps: float
    toward_deg: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_mps) and self.speed_mps >= 0):
            raise ValueError(f"flow speed must be a non-negative number, got {self.speed_mps!r}")
        if not math.isfinite(self.toward_deg):
            raise ValueError(f"flow direction must be a number of degrees, got {self.toward_deg!r}")
        object.__setattr__(self, "toward_deg", float(self.toward_deg) % 360.0)

    @classmethod
    def wind_from(cls, speed_mps: float, from_deg: float) -> Flow:
        """Wind as reported (WMO convention: the direction it blows *from*)."""
        return cls(speed_mps, float(from_deg) + 180.0)

    @classmethod
    def current_toward(cls, speed_mps: float, toward_deg: float) -> Flow:
        """Water current as reported (oceanographic convention: the direction it sets *toward*)."""
        return cls(speed_mps, toward_deg)

    def components(self, track_deg: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(along, across) components on a track: along > 0 is a tailwind, across > 0 pushes right."""
        rel = np.radians(self.toward_deg - np.asarray(track_deg, dtype=float))
        return self.speed_mps * np.cos(rel), self.speed_mps * np.sin(rel)


@dataclass(frozen=True, slots=True)
class EnergyModel:
    """Battery figures of one airframe (copter) or hull (boat); see the module docstring.

    Build with ``EnergyModel.copter(...)`` / ``EnergyModel.boat(...)`` (documented defaults)
    or ``EnergyModel.for_vehicle(kind, cruise_speed_mps, endurance_s)`` from a fleet file.
    """

    kind: VehicleKind
    cruise_speed_mps: float  # through the air (copter) or the water (boat)
    endurance_s: float  # cruise time from 100 % to empty, still air / still water
    battery_wh: float  # usable energy of a full battery
    hover_ratio: float  # hover / loiter / station-keeping power over cruise power
    mass_kg: float = 0.0  # take-off mass (copter: the climb term)
    climb_efficiency: float = COPTER_CLIMB_EFFICIENCY
    climb_speed_mps: float = COPTER_CLIMB_MPS
    descent_speed_mps: float = COPTER_DESCENT_MPS

    def __post_init__(self) -> None:
        if self.kind not in ("copter", "boat"):
            raise ValueError(f"vehicle kind must be copter or boat, got {self.kind!r}")
        for name in ("cruise_speed_mps", "endurance_s", "battery_wh", "hover_ratio", "climb_efficiency",
                     "climb_speed_mps", "descent_speed_mps"):
            _positive(name, getattr(self, name))
        if not (math.isfinite(self.mass_kg) and self.mass_kg >= 0):
            raise ValueError(f"mass_kg must be a non-negative number, got {self.mass_kg!r}")
        if self.climb_efficiency > 1.0:
            raise ValueError(f"climb_efficiency is a fraction in (0, 1], got {self.climb_efficiency!r}")

    @classmethod
    def copter(cls, cruise_speed_mps: float = COPTER_CRUISE_MPS, endurance_s: float = COPTER_ENDURANCE_S, *,
               battery_wh: float = COPTER_BATTERY_WH, hover_ratio: float = COPTER_HOVER_RATIO,
               mass_kg: float = COPTER_MASS_KG, climb_efficiency: float = COPTER_CLIMB_EFFICIENCY,
               climb_speed_mps: float = COPTER_CLIMB_MPS,
               descent_speed_mps: float = COPTER_DESCENT_MPS) -> EnergyModel:
        """A multirotor with the documented defaults."""
        return cls("copter", cruise_speed_mps, endurance_s, battery_wh, hover_ratio, mass_kg, climb_efficiency,
                   climb_speed_mps, descent_speed_mps)

    @classmethod
    def boat(cls, cruise_speed_mps: float = BOAT_CRUISE_MPS, endurance_s: float = BOAT_ENDURANCE_S, *,
             battery_wh: float = BOAT_BATTERY_WH, hover_ratio: float = BOAT_HOVER_RATIO) -> EnergyModel:
        """An electric boat with the documented defaults (no climb)."""
        return cls("boat", cruise_speed_mps, endurance_s, battery_wh, hover_ratio)

    @classmethod
    def for_vehicle(cls, kind: str, cruise_speed_mps: float, endurance_s: float) -> EnergyModel:
        """Defaults of the kind, with the fleet file's cruise speed and endurance."""
        if kind == "copter":
            return cls.copter(cruise_speed_mps, endurance_s)
        if kind == "boat":
            return cls.boat(cruise_speed_mps, endurance_s)
        raise ValueError(f"vehicle kind must be copter or boat, got {kind!r}")

    @property
    def cruise_power_w(self) -> float:
        return self.battery_wh * 3600.0 / self.endurance_s

    @property
    def cruise_pct_per_s(self) -> float:
        return 100.0 / self.endurance_s

    @property
    def hover_pct_per_s(self) -> float:
        return self.hover_ratio * 100.0 / self.endurance_s

    @property
    def climb_pct_per_m(self) -> float:
        """Extra battery per metre gained: m g / η over the battery energy, in %."""
        if self.kind == "boat":
            return 0.0
        return 100.0 * self.mass_kg * G_MPS2 / (self.climb_efficiency * self.battery_wh * 3600.0)


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg: a horizontal move along a track, a height change, then a hover at its end."""

    distance_m: float = 0.0  # over ground, along the track
    track_deg: float = 0.0  # direction of travel over ground, clockwise from true north
    climb_m: float = 0.0  # height gained on the leg (negative: lost)
    hover_s: float = 0.0  # hover / loiter / station-keeping at the leg's end

    def __post_init__(self) -> None:
        for name in ("distance_m", "hover_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"leg {name} must be a non-negative number, got {v!r}")
        if not (math.isfinite(self.track_deg) and math.isfinite(self.climb_m)):
            raise ValueError(f"leg track and climb must be numbers, got {self.track_deg!r}, {self.climb_m!r}")


def ground_speed_mps(airspeed_mps: float, track_deg: ArrayLike,
                     flow: Flow | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wind triangle: (ground speed, crab angle in degrees) holding ``track_deg`` at ``airspeed_mps``.

    Where the track cannot be held (cross component at least the airspeed, or no headway) the
    ground speed is 0 and the crab angle NaN.

    >>> float(ground_speed_mps(12.0, 0.0, Flow.wind_from(5.0, 0.0))[0])  # 5 m/s headwind
    7.0
    """
    track = np.asarray(track_deg, dtype=float)
    if flow is None or flow.speed_mps == 0.0:
        return np.full(track.shape, float(airspeed_mps)), np.zeros(track.shape)
    along, across = flow.components(track)
    ok = np.abs(across) < airspeed_mps
    through = np.sqrt(np.where(ok, airspeed_mps ** 2 - across ** 2, 0.0))
    gs = np.where(ok, through + along, 0.0)
    ok &= gs > 0.0
    crab = np.degrees(np.arcsin(np.clip(-across / airspeed_mps, -1.0, 1.0)))
    return np.where(ok, gs, 0.0), np.where(ok, crab, np.nan)


def cruise_time_s(distance_m: ArrayLike, track_deg: ArrayLike, model: EnergyModel,
                  flow: Flow | None = None) -> NDArray[np.float64]:
    """Time to cover ``distance_m`` along ``track_deg`` at cruise (inf where the track cannot be held)."""
    d, track = np.broadcast_arrays(np.asarray(distance_m, dtype=float), np.asarray(track_deg, dtype=float))
    gs, _ = ground_speed_mps(model.cruise_speed_mps, track, flow)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0.0, d / gs, 0.0)
    return np.where((d > 0.0) & (gs <= 0.0), np.inf, t)


def _vertical_s(climb_m: float, model: EnergyModel) -> float:
    if climb_m > 0:
        return climb_m / model.climb_speed_mps
    return -climb_m / model.descent_speed_mps


def _check_leg(leg: Leg, model: EnergyModel) -> None:
    if model.kind == "boat" and leg.climb_m != 0.0:
        raise ValueError(f"a boat does not climb: leg with climb_m {leg.climb_m!r}")


def leg_time_s(leg: Leg, model: EnergyModel, flow: Flow | None = None) -> float:
    """Duration of a leg: the longer of its horizontal and vertical parts, then the hover."""
    _check_leg(leg, model)
    t_h = float(cruise_time_s(leg.distance_m, leg.track_deg, model, flow))
    return max(t_h, _vertical_s(leg.climb_m, model)) + leg.hover_s


def leg_energy_pct(leg: Leg, model: EnergyModel, flow: Flow | None = None) -> float:
    """Battery a leg uses, %: cruise power while moving, hover power for any vertical-only time and
    the hover, plus the climb's potential energy."""
    _check_leg(leg, model)
    t_h = float(cruise_time_s(leg.distance_m, leg.track_deg, model, flow))
    if not math.isfinite(t_h):
        return math.inf
    t_extra = max(_vertical_s(leg.climb_m, model) - t_h, 0.0)
    return (model.cruise_pct_per_s * t_h + model.hover_pct_per_s * (t_extra + leg.hover_s)
            + model.climb_pct_per_m * max(leg.climb_m, 0.0))


def mission_time_s(legs: Iterable[Leg], model: EnergyModel, wind: Flow | None = None) -> float:
    """Duration of a sequence of legs; ``wind`` is the current for a boat."""
    return float(sum(leg_time_s(leg, model, wind) for leg in legs))


def mission_energy_pct(legs: Iterable[Leg], model: EnergyModel, wind: Flow | None = None) -> float:
    """Battery a sequence of legs uses, % of a full battery; ``wind`` is the current for a boat.

    >>> round(mission_energy_pct([Leg(10_800.0, 90.0)], EnergyModel.copter()), 6)  # 15 min of 30
    50.0
    """
    return float(sum(leg_energy_pct(leg, model, wind) for leg in legs))


def path_legs(path_lonlat: Sequence[tuple[float, float]], *, alts_m: Sequence[float] | None = None) -> list[Leg]:
    """Legs along a lon/lat polyline (ellipsoidal distance and true-north track, WGS84), with the
    height change between consecutive ``alts_m`` when given."""
    pts = [(float(lon), float(lat)) for lon, lat in path_lonlat]
    if alts_m is not None and len(alts_m) != len(pts):
        raise ValueError(f"alts_m has {len(alts_m)} heights for {len(pts)} points")
    legs = []
    for i in range(len(pts) - 1):
        (lon1, lat1), (lon2, lat2) = pts[i], pts[i + 1]
        az, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
        climb = float(alts_m[i + 1]) - float(alts_m[i]) if alts_m is not None else 0.0
        legs.append(Leg(float(dist), float(az) % 360.0, climb))
    return legs


class TurnBack(NamedTuple):
    """The recall verdict: turn back now or not, and by how much the reserve is kept."""

    turn_back: bool
    margin_pct: float  # battery - energy home - reserve; turn back when it is 0 or less
    home_pct: float  # energy to get home from here


def must_turn_back(position: tuple[float, float], battery_pct: float, distance_home_m: float | None,
                   model: EnergyModel, reserve_pct: float = DEFAULT_RESERVE_PCT, wind: Flow | None = None, *,
                   home: tuple[float, float] | None = None, height_m: float = 0.0) -> TurnBack:
    """The live recall rule: ``battery - energy_home >= reserve`` must hold; at a margin of 0 or
    less the vehicle turns back now.

    ``distance_home_m`` is the way home (it may be longer than the straight line, around
    zones); None takes the straight line to ``home``. With wind (current), the track home is
    from ``position`` to ``home``, which is then required. ``height_m``: height above home to
    descend on arrival (copter), at the descent speed.
    """
    _pct("battery_pct", battery_pct)
    _pct("reserve_pct", reserve_pct)
    if not (math.isfinite(height_m) and height_m >= 0):
        raise ValueError(f"height_m must be a non-negative number, got {height_m!r}")
    track = 0.0
    if home is not None:
        az, _, straight = _GEOD.inv(position[0], position[1], home[0], home[1])
        track = float(az) % 360.0
        if distance_home_m is None:
            distance_home_m = float(straight)
    elif wind is not None and wind.speed_mps > 0:
        raise ValueError("with wind (current) the home position is needed for the track home")
    if distance_home_m is None:
        raise ValueError("give distance_home_m or home")
    legs = [Leg(float(distance_home_m), track)]
    if height_m > 0 and model.kind == "copter":
        legs.append(Leg(0.0, 0.0, -height_m))
    home_pct = mission_energy_pct(legs, model, wind)
    margin = battery_pct - home_pct - reserve_pct
    return TurnBack(bool(margin <= 0.0), float(margin), float(home_pct))


def check_reserve(plan_energy_pct: float, battery_pct: float, reserve_pct: float = DEFAULT_RESERVE_PCT) -> float:
    """The margin above the reserve a plan leaves (%); raise ``PlanRefused`` (en, zh) when it is negative."""
    _pct("battery_pct", battery_pct)
    _pct("reserve_pct", reserve_pct)
    if math.isnan(plan_energy_pct) or plan_energy_pct < 0:
        raise ValueError(f"plan_energy_pct must be a non-negative number, got {plan_energy_pct!r}")
    if math.isinf(plan_energy_pct):
        raise PlanRefused(["the wind (current) is too strong to hold the planned track"],
                          ["风力（水流）过强，无法保持计划航迹"])
    margin = battery_pct - plan_energy_pct - reserve_pct
    if margin < 0:
        left = battery_pct - plan_energy_pct
        reason = (f"battery {battery_pct:.0f} % minus about {plan_energy_pct:.0f} % for the plan leaves "
                  f"{left:.0f} %, less than the {reserve_pct:.0f} % reserve")
        reason_zh = (f"电量 {battery_pct:.0f}% 减去计划耗电约 {plan_energy_pct:.0f}% 后剩余 {left:.0f}%，"
                     f"低于 {reserve_pct:.0f}% 的保留电量")
        raise PlanRefused([reason], [reason_zh])
    return float(margin)
