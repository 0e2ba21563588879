"""More vehicle commands: pause/continue, SmartRTL, set home, stop-and-hold.

A mixin of :class:`uav.vehicle.Vehicle` (it uses ``command``, ``set_mode`` and the
snapshot). ArduPilot's answers, from its sources:

- MAV_CMD_DO_PAUSE_CONTINUE (193): Copter only (GCS_MAVLINK_Copter::
  handle_command_pause_continue): ACCEPTED in AUTO while flying to a waypoint and in
  GUIDED; FAILED ("Failed to pause") in any other mode; param1 other than 0/1 DENIED.
  Rover and boats have no handler: UNSUPPORTED. So ``pause()`` falls back to a holding
  mode (copter BRAKE, else LOITER; rover/boat HOLD) and ``resume()`` restores the mode
  the vehicle was in.
- MAV_CMD_DO_SET_HOME (179): param1 1 = here; else params 5/6/7 = lat/lon/alt. Sent as
  COMMAND_LONG, which ArduPilot reads in the absolute (AMSL) frame
  (GCS_MAVLINK::mav_frame_for_command_long); a COMMAND_INT would carry our relative frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import CommandFailed, CommandUnsupported, ModeChangeFailed

if TYPE_CHECKING:
    from uav.vehicle import Vehicle

__all__ = ["CommandsMixin", "PauseOutcome", "HOLD_MODES", "hold_modes"]

log = logging.getLogger(__name__)

# Modes that stop a vehicle where it is, best first. Copter BRAKE stops fastest and
# needs no pilot input (ArduCopter mode_brake.cpp); LOITER if BRAKE is refused. Rover
# and boats: HOLD (Rover mode_hold.cpp; a boat drifts with the current in HOLD).
HOLD_MODES: Final = {"copter": ("BRAKE", "LOITER"), "plane": ("LOITER",),
                     "boat": ("HOLD",), "rover": ("HOLD",)}

PauseMethod = Literal["pause_continue", "mode"]


def hold_modes(vehicle_type: str) -> tuple[str, ...]:
    """The holding modes to try for a vehicle type (unknown types: HOLD then LOITER)."""
    return HOLD_MODES.get(vehicle_type, ("HOLD", "LOITER"))


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    """How a vehicle was paused: by MAV_CMD_DO_PAUSE_CONTINUE in its mode, or by a mode."""

    method: PauseMethod
    mode: str           # the mode the vehicle is in now
    previous_mode: str  # the mode it was in before (restored by resume() for "mode")
    reason: str = ""    # why the command was not used (empty for "pause_continue")


class CommandsMixin:
    """Pause/continue, SmartRTL, set home, stop-and-hold for :class:`Vehicle`."""

    _pause_outcome: PauseOutcome | None = None

    async def pause(self: Vehicle) -> PauseOutcome:  # type: ignore[misc]
        """Stop where it is, resumably: DO_PAUSE_CONTINUE, else a holding mode."""
        before = self.state.mode
        try:
            await self.command(mav.MAV_CMD_DO_PAUSE_CONTINUE, 0, what="pause")
        except (CommandUnsupported, CommandFailed) as err:
            reason = str(err)
            mode = await self.brake_or_hold()
            outcome = PauseOutcome("mode", mode, before, reason)
            log.info("%s: paused by mode %s (was %s; %s)", self.name, mode, before, reason)
        else:
            outcome = PauseOutcome("pause_continue", before, before)
            log.info("%s: paused in %s", self.name, before)
        self._pause_outcome = outcome
        return outcome

    async def resume(self: Vehicle) -> None:  # type: ignore[misc]
        """Continue after ``pause()``: DO_PAUSE_CONTINUE 1, or back to the previous mode."""
        outcome = self._pause_outcome
        if outcome is not None and outcome.method == "mode":
            await self.set_mode(outcome.previous_mode)
        else:
            await self.command(mav.MAV_CMD_DO_PAUSE_CONTINUE, 1, what="continue")
        self._pause_outcome = None

    async def brake_or_hold(self: Vehicle) -> str:  # type: ignore[misc]
        """Stop and hold with the first holding mode the vehicle accepts; returns it."""
        modes = hold_modes(self.vehicle_type)
        last: ModeChangeFailed | None = None
        for mode in modes:
            try:
                await self.set_mode(mode)
                return mode
            except ModeChangeFailed as err:
                last = err
                log.warning("%s: %s refused (%s)", self.name, mode, err)
        assert last is not None
        raise last

    async def smart_rtl(self: Vehicle, *, fallback_rtl: bool = True) -> str:  # type: ignore[misc]
        """Return along the flown path (mode SMART_RTL); if refused (no path recorded,
        ArduPilot "SmartRTL Unavailable") and ``fallback_rtl``, mode RTL. Returns the mode."""
        try:
            await self.set_mode("SMART_RTL")
            return "SMART_RTL"
        except ModeChangeFailed as err:
            if not fallback_rtl:
                raise
            log.warning("%s: SMART_RTL refused (%s); RTL instead", self.name, err)
        await self.set_mode("RTL")
        return "RTL"

    async def set_home(self: Vehicle, lon_deg: float, lat_deg: float,  # type: ignore[misc]
                       alt_amsl_m: float) -> None:
        """MAV_CMD_DO_SET_HOME at a WGS84 point and height above mean sea level."""
        if not (-90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 180.0) or not all(
                math.isfinite(x) for x in (lon_deg, lat_deg, alt_amsl_m)):
            raise ValueError(f"home ({lon_deg}, {lat_deg}, {alt_amsl_m} m) is not a WGS84 "
                             f"lon/lat/AMSL altitude")
        # COMMAND_LONG params are float32: ~0.2 m at this latitude, well inside GPS error.
        await self.command(mav.MAV_CMD_DO_SET_HOME, 0, 0, 0, 0, lat_deg, lon_deg, alt_amsl_m,
                           what=f"set home ({lon_deg:.6f}, {lat_deg:.6f}, {alt_amsl_m:g} m AMSL)")

    async def set_home_here(self: Vehicle) -> None:  # type: ignore[misc]
        """MAV_CMD_DO_SET_HOME param1 1: home at the vehicle's current position."""
        await self.command(mav.MAV_CMD_DO_SET_HOME, 1, what="set home here")
