"""ArduPilot custom flight modes (HEARTBEAT.custom_mode) by vehicle type.

Numbers from ArduPilot's sources: ArduCopter/mode.h ``enum class Number``,
Rover/mode.h ``enum class Number`` (boats run the Rover firmware), ArduPlane/mode.h.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from uav.errors import UnknownMode

__all__ = ["COPTER_MODES", "ROVER_MODES", "PLANE_MODES", "mode_table", "mode_number",
           "mode_name", "table_kind"]

COPTER_MODES: Mapping[str, int] = MappingProxyType({
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6,
    "CIRCLE": 7, "LAND": 9, "DRIFT": 11, "SPORT": 13, "FLIP": 14, "AUTOTUNE": 15, "POSHOLD": 16,
    "BRAKE": 17, "THROW": 18, "AVOID_ADSB": 19, "GUIDED_NOGPS": 20, "SMART_RTL": 21,
    "FOLLOW": 23, "ZIGZAG": 24,
})

ROVER_MODES: Mapping[str, int] = MappingProxyType({
    "MANUAL": 0, "ACRO": 1, "STEERING": 3, "HOLD": 4, "LOITER": 5, "FOLLOW": 6, "SIMPLE": 7,
    "DOCK": 8, "CIRCLE": 9, "AUTO": 10, "RTL": 11, "SMART_RTL": 12, "GUIDED": 15,
    "INITIALISING": 16,
})

PLANE_MODES: Mapping[str, int] = MappingProxyType({
    "MANUAL": 0, "CIRCLE": 1, "STABILIZE": 2, "TRAINING": 3, "ACRO": 4, "FBWA": 5, "FBWB": 6,
    "CRUISE": 7, "AUTOTUNE": 8, "AUTO": 10, "RTL": 11, "LOITER": 12, "TAKEOFF": 13,
    "AVOID_ADSB": 14, "GUIDED": 15, "QSTABILIZE": 17, "QHOVER": 18, "QLOITER": 19, "QLAND": 20,
    "QRTL": 21, "QAUTOTUNE": 22, "QACRO": 23, "THERMAL": 24, "LOITER_ALT_QLAND": 25,
})

_TABLES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "copter": COPTER_MODES, "boat": ROVER_MODES, "rover": ROVER_MODES, "plane": PLANE_MODES,
})
_REVERSE: Mapping[str, Mapping[int, str]] = MappingProxyType(
    {kind: MappingProxyType({n: name for name, n in table.items()})
     for kind, table in _TABLES.items()})


def table_kind(vehicle_type: str) -> str:
    """The firmware family whose table applies: ``"boat"`` → ``"rover"``."""
    return {"boat": "rover"}.get(vehicle_type, vehicle_type)


def mode_table(vehicle_type: str) -> Mapping[str, int]:
    """Name → number for ``"copter"``, ``"boat"``, ``"rover"`` or ``"plane"``."""
    try:
        return _TABLES[vehicle_type]
    except KeyError:
        raise UnknownMode(f"no mode table for vehicle type {vehicle_type!r}; "
                          f"known types: {', '.join(sorted(_TABLES))}") from None


def mode_number(vehicle_type: str, name: str) -> int:
    """``mode_number("copter", "guided")`` → 4; unknown names list the valid ones."""
    table = mode_table(vehicle_type)
    key = name.strip().upper()
    if key not in table:
        raise UnknownMode(f"unknown {vehicle_type} mode {name!r}; valid modes: "
                          f"{', '.join(table)}")
    return table[key]


def mode_name(vehicle_type: str, number: int) -> str:
    """``mode_name("boat", 10)`` → ``"AUTO"``; numbers outside the table → ``"MODE_<n>"``."""
    reverse = _REVERSE.get(vehicle_type)
    if reverse is None or number not in reverse:
        return f"MODE_{number}"
    return reverse[number]
