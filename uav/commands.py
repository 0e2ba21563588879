"""More vehicle commands: pause/continue, SmartRTL, set home, stop-and-hold, resuming a mission.

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
- Resuming an interrupted mission: entering AUTO runs AP_Mission::start_or_resume, which
  resumes the current command unless MIS_RESTART is 1 (then start() goes back to item 1
  and discards a current item set meanwhile). AP_Mission::set_current_cmd on a mission
  that is not running stores the item and marks the mission stopped, so the next resume
  starts there. ``resume_mission`` therefore makes the interrupted item current with
  MAV_CMD_DO_SET_MISSION_CURRENT (224; the MISSION_SET_CURRENT message, answered with
  MISSION_CURRENT, on firmware without the command), then enters AUTO; with MIS_RESTART 1
  it sets MIS_RESTART 0 for that moment and restores it (entering AUTO first and
  correcting afterwards would fly the first items again for a moment: a takeoff item
  completes at once in the air and is reported reached).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import (
    CommandFailed, CommandTimeout, CommandUnsupported, MissionError, ModeChangeFailed,
    ParamError,
)

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

    async def set_mission_current(self: Vehicle, seq: int, *,  # type: ignore[misc]
                                  timeout_s: float = 1.5, attempts: int = 3) -> None:
        """Make mission item ``seq`` (1.., the home slot 0 excluded) the current one.

        MAV_CMD_DO_SET_MISSION_CURRENT; if the autopilot does not know the command, the
        MISSION_SET_CURRENT message, confirmed by MISSION_CURRENT. CommandFailed (no such
        item), CommandTimeout.
        """
        if seq < 1:
            raise ValueError(f"mission item {seq}: items are numbered from 1 (0 is home)")
        try:
            await self.command(mav.MAV_CMD_DO_SET_MISSION_CURRENT, seq, 0,
                               what=f"set mission item {seq} current")
            return
        except CommandUnsupported:
            log.info("%s: DO_SET_MISSION_CURRENT unsupported: MISSION_SET_CURRENT", self.name)
        self._check_reachable()
        with self.link.subscribe(self.system_id, types={"MISSION_CURRENT"}, maxsize=16) as sub:
            for _ in range(attempts):
                self.link.send(self.link.mav.mission_set_current_encode(
                    self.system_id, self.target_component, seq), system_id=self.system_id)
                try:
                    async with asyncio.timeout(timeout_s):
                        while (await sub.get()).seq != seq:
                            pass
                    return
                except TimeoutError:
                    continue
        raise CommandTimeout(f"{self.name}: mission item {seq} not made current "
                             f"(no MISSION_CURRENT {seq} after {attempts} tries)",
                             command=mav.MAVLINK_MSG_ID_MISSION_SET_CURRENT)

    async def resume_mission(self: Vehicle, from_seq: int | None = None) -> int:  # type: ignore[misc]
        """Continue an interrupted mission in AUTO from item ``from_seq``, by default the
        item the vehicle was on when interrupted (MISSION_CURRENT); returns that item.

        Works the same whatever MIS_RESTART says (see the module notes). Note the item
        before a disarm: ArduPilot resets the mission when it disarms. MissionError when
        no item is known; ModeChangeFailed (e.g. a landed copter whose resumed item is not
        a takeoff), CommandFailed (no such item).
        """
        t = self.state
        seq = from_seq if from_seq is not None else t.mission_seq
        if seq < 1:
            raise MissionError(f"{self.name}: no mission item to resume from "
                               f"(MISSION_CURRENT {t.mission_seq}); give from_seq")
        # MISSION_CURRENT.total: "on last item, sequence == total" (common.xml)
        if t.mission_count and seq > t.mission_count:
            raise MissionError(f"{self.name}: mission item {seq} does not exist "
                               f"(the mission has items 1..{t.mission_count})")
        if t.mode == "AUTO":
            await self.set_mission_current(seq)  # running: the item restarts now
            return seq
        try:
            restart = await self.get_param("MIS_RESTART")
        except ParamError:
            restart = 0.0  # not a parameter of this autopilot: resume is the only way
        if restart == 1:
            await self.set_param("MIS_RESTART", 0)
        try:
            await self.set_mission_current(seq)
            await self.set_mode("AUTO")
        finally:
            if restart == 1:
                await self.set_param("MIS_RESTART", 1)
        log.info("%s: mission resumed at item %d", self.name, seq)
        return seq
