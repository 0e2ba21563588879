"""Rally points (alternative return places) as plain data, and their mission items.

Wire form: MAV_CMD_NAV_RALLY_POINT (5100) items of MAV_MISSION_TYPE_RALLY, altitude above
home (https://mavlink.io/en/services/mission.html#mission_types). No home slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.mission import FRAME_ABOVE_HOME, MissionItem

__all__ = ["RallyPoint", "rally_items", "rally_from_items"]


@dataclass(frozen=True, slots=True)
class RallyPoint:
    """A place to return to instead of home; ``alt_m`` above home."""

    lon_deg: float
    lat_deg: float
    alt_m: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lon_deg) and math.isfinite(self.lat_deg)
                and -180 <= self.lon_deg <= 180 and -90 <= self.lat_deg <= 90
                and math.isfinite(self.alt_m)):
            raise ValueError(f"rally point ({self.lon_deg}, {self.lat_deg}, {self.alt_m}) is "
                             f"not a WGS84 lon/lat with a finite altitude")


def rally_items(points: Sequence[RallyPoint]) -> list[MissionItem]:
    """MAV_CMD_NAV_RALLY_POINT items for ``points``."""
    return [MissionItem(mav.MAV_CMD_NAV_RALLY_POINT, frame=FRAME_ABOVE_HOME, lat_deg=p.lat_deg,
                        lon_deg=p.lon_deg, alt_m=p.alt_m) for p in points]


def rally_from_items(items: Sequence[MissionItem]) -> list[RallyPoint]:
    """Rally points read back; ValueError names an item that is not a rally point."""
    out: list[RallyPoint] = []
    for i, it in enumerate(items):
        if it.command != mav.MAV_CMD_NAV_RALLY_POINT:
            raise ValueError(f"rally item {i}: command {it.command} is not a rally point")
        out.append(RallyPoint(it.lon_deg, it.lat_deg, it.alt_m))
    return out
