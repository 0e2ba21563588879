"""Which vehicle goes: the nearest available one that can serve the target and come back.

Pure: candidates are plain data (position, battery, availability) taken from telemetry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from command.dispatch.geometry import UTM_48N, path_length_m

__all__ = ["DEFAULT_RESERVE_PCT", "Allocation", "Candidate", "allocate", "choose_vehicle", "round_trip_pct"]

# Battery left on landing: 30 % is the usual operator reserve for multirotor work
# (ArduPilot's BATT_LOW / BATT_CRT failsafes sit below it, as a last resort).
DEFAULT_RESERVE_PCT = 30.0
# Climb and landing time of a copter recon flight, on top of the legs: ~120 m at
# ArduCopter's default 2.5 m/s up (WPNAV_SPEED_UP) and 1.5 m/s down (WPNAV_SPEED_DN).
_COPTER_OVERHEAD_S = 130.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A vehicle as allocation sees it."""

    name: str
    type: Literal["copter", "boat"]
    lon: float
    lat: float
    battery_pct: float
    available: bool
    cruise_speed_mps: float
    endurance_s: float  # flight (copter) or run (boat) time from 100 % to empty


@dataclass(frozen=True, slots=True)
class Allocation:
    """The choice (``vehicle``), or None with the reason; every candidate's fate for the record."""

    vehicle: Candidate | None
    reason: str
    reason_zh: str
    distance_m: float | None = None  # one way, to the target
    energy_pct: float | None = None  # estimated battery use of the round trip
    ranked: tuple[Candidate, ...] = ()  # every candidate able to serve, nearest first
    rejected: tuple[tuple[str, str], ...] = ()  # (vehicle name, why not)


def round_trip_pct(candidate: Candidate, distance_m: float, *, loiter_s: float = 60.0) -> float:
    """Battery percentage a round trip of ``distance_m`` each way uses (linear in time)."""
    overhead = _COPTER_OVERHEAD_S if candidate.type == "copter" else 0.0
    duration_s = 2.0 * distance_m / candidate.cruise_speed_mps + loiter_s + overhead
    return 100.0 * duration_s / candidate.endurance_s


def allocate(incident_lonlat: tuple[float, float], incident_on_water: bool, candidates: Sequence[Candidate], *,
             reserve_pct: float = DEFAULT_RESERVE_PCT, loiter_s: float = 60.0, epsg: int = UTM_48N) -> Allocation:
    """Pick the nearest available vehicle that can serve: copters anywhere, boats only on water."""
    able: list[tuple[float, float, Candidate]] = []
    rejected: list[tuple[str, str]] = []
    for c in candidates:
        if c.type == "boat" and not incident_on_water:
            rejected.append((c.name, "a boat cannot reach a target on land"))
            continue
        if not c.available:
            rejected.append((c.name, "not available"))
            continue
        d = path_length_m([(c.lon, c.lat), incident_lonlat], epsg=epsg)
        use = round_trip_pct(c, d, loiter_s=loiter_s)
        if c.battery_pct - use < reserve_pct:
            rejected.append((c.name, f"battery {c.battery_pct:.0f} % minus {use:.0f} % for the round trip "
                                     f"leaves less than the {reserve_pct:.0f} % reserve"))
            continue
        able.append((d, use, c))
    able.sort(key=lambda t: (t[0], t[2].name))
    if able:
        d, use, best = able[0]
        return Allocation(best, f"{best.name}: nearest able vehicle, {d / 1000:.1f} km, about {use:.0f} % battery",
                          f"{best.name}：最近的可用载具，距离 {d / 1000:.1f} 公里，预计耗电约 {use:.0f}%",
                          d, use, tuple(c for _, _, c in able), tuple(rejected))
    wanted = "copter or boat" if incident_on_water else "copter"
    wanted_zh = "无人机或无人船" if incident_on_water else "无人机"
    kinds = {"copter", "boat"} if incident_on_water else {"copter"}
    pool = [c for c in candidates if c.type in kinds]
    if not pool:
        reason, reason_zh = f"no {wanted} in the fleet", f"机队中没有{wanted_zh}"
    elif not any(c.available for c in pool):
        reason, reason_zh = f"no {wanted} available", f"没有可用的{wanted_zh}"
    else:
        d, c = min(((path_length_m([(c.lon, c.lat), incident_lonlat], epsg=epsg), c) for c in pool if c.available),
                   key=lambda t: t[0])
        use = round_trip_pct(c, d, loiter_s=loiter_s)
        reason = (f"no {wanted} with enough battery for the round trip and a {reserve_pct:.0f} % reserve "
                  f"(nearest: {c.name}, {d / 1000:.1f} km, needs about {use:.0f} %, has {c.battery_pct:.0f} %)")
        reason_zh = (f"没有电量足以往返并保留 {reserve_pct:.0f}% 余量的{wanted_zh}"
                     f"（最近的 {c.name} 距离 {d / 1000:.1f} 公里，需约 {use:.0f}%，现有 {c.battery_pct:.0f}%）")
    return Allocation(None, reason, reason_zh, rejected=tuple(rejected))


def choose_vehicle(incident_lonlat: tuple[float, float], incident_on_water: bool, candidates: Sequence[Candidate],
                   *, reserve_pct: float = DEFAULT_RESERVE_PCT, loiter_s: float = 60.0,
                   epsg: int = UTM_48N) -> Allocation:
    """Same as ``allocate``: ``.vehicle`` is the choice or None, ``.reason`` says why."""
    return allocate(incident_lonlat, incident_on_water, candidates, reserve_pct=reserve_pct, loiter_s=loiter_s,
                    epsg=epsg)
