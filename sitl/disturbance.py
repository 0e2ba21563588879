"""Wind on copters and current on boats, as the simulated vehicle's controllers meet them.

A mixin of :class:`sitl.vehicle_sim.SimVehicle`. Each step the host's mode logic moves the
vehicle as if the air (or water) were still: that displacement is the *commanded ground
velocity*. :meth:`DisturbanceMixin._disturbance_step` then applies the environment
(:mod:`sitl.environment`) the way ArduPilot's controllers meet it:

- Copter position control (AUTO, GUIDED, LOITER, BRAKE, RTL, LAND...): AC_PosControl
  tracks a *ground* velocity by leaning into the wind, up to ANGLE_MAX. The air-relative
  velocity needed is ``v_cmd - wind``; if it exceeds what the lean limit gives, the
  copter keeps its track and goes slower, and if even holding still needs more (wind
  stronger than it can fly), it drifts downwind at the difference. Holding modes (LOITER,
  BRAKE, paused, RTL's loiter) keep a hold point and fly back to it (AC_PosControl
  position P gain, PSC_POSXY_P default 1.0 /s). STABILIZE, ACRO and ALT_HOLD have no
  horizontal position control: with the sticks centred the copter moves with the air.
- Boats: Rover's speed controller tracks *ground* speed (GPS), so a boat under way
  compensates the current up to its top speed. HOLD (and MANUAL, ACRO, STEERING with the
  sticks centred, disarmed, a finished mission with MIS_DONE_BEHAVE 0) stops the motors:
  the boat drifts with the current (Rover/mode_hold.cpp). LOITER (Rover/mode_loiter.cpp,
  ardupilot.org/rover/docs/loiter-mode.html) drifts while within LOIT_RADIUS of its point
  and outside drives back at ``(distance - LOIT_RADIUS) × LOIT_SPEED_GAIN``, at most
  WP_SPEED. Boats loiter on entering AUTO or GUIDED, at a waypoint with a hold time, in a
  NAV_DELAY, at a reached GUIDED target and at the end of RTL (Rover mode_auto.cpp,
  mode_guided.cpp, mode_rtl.cpp: "boats loiter, rovers stop").

The airframe's lean-limited airspeed follows ArduPilot SITL's multicopter drag model
(libraries/SITL/SIM_Frame.h default model: the quad holds ``refSpd`` = 15.08 m/s at
``refAngle`` = 45°, drag quadratic in airspeed, so tan(lean) = tan(45°)·(v/15.08)²); the
electrical power follows momentum theory, P ∝ T^1.5 with thrust T = m·g/cos(lean)
(Leishman, Principles of Helicopter Aerodynamics, 2nd ed. 2006, eq. 2.16). A boat's
propulsive power grows with the cube of its speed through the water (hull resistance
∝ v², e.g. Molland, Turnock & Hudson, Ship Resistance and Propulsion, 2011, ch. 3).
"""

from __future__ import annotations

import math
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.environment import CALM, Environment, wind_field

__all__ = ["DisturbanceMixin", "achieved_velocity", "lean_limited_airspeed_mps",
           "hover_power_ratio"]

# SITL default multicopter model (libraries/SITL/SIM_Frame.h, struct Model): drag reference.
REF_SPEED_MPS = 15.08
REF_ANGLE_DEG = 45.0
# AC_PosControl horizontal position P gain (PSC_POSXY_P default 1.0, 1/s).
POS_P_PER_S = 1.0
# Copter modes without horizontal position control (ArduCopter mode_stabilize.cpp,
# mode_acro.cpp, mode_althold.cpp): centred sticks hold a level attitude, not a position.
COPTER_NO_POSITION = frozenset({"STABILIZE", "ACRO", "ALT_HOLD"})
# Rover modes that run no throttle without pilot input (mode_hold.cpp, mode_manual.cpp...).
BOAT_MOTORS_OFF = frozenset({"HOLD", "MANUAL", "ACRO", "STEERING", "SIMPLE", "INITIALISING"})
# Idle current of an armed vehicle that is not working, as a fraction of full current.
IDLE_FRACTION = 0.1


def lean_limited_airspeed_mps(angle_max_deg: float) -> float:
    """Steady airspeed of the SITL default quad at a lean of ``angle_max_deg``.

    >>> round(lean_limited_airspeed_mps(30.0), 2)
    11.46
    """
    ratio = math.tan(math.radians(angle_max_deg)) / math.tan(math.radians(REF_ANGLE_DEG))
    return REF_SPEED_MPS * math.sqrt(max(0.0, ratio))


def hover_power_ratio(airspeed_mps: float) -> float:
    """Electrical power relative to hover at a steady airspeed (1.0 at 0 m/s).

    >>> hover_power_ratio(0.0)
    1.0
    >>> round(hover_power_ratio(10.0), 3)
    1.142
    """
    tan_lean = math.tan(math.radians(REF_ANGLE_DEG)) * (airspeed_mps / REF_SPEED_MPS) ** 2
    return (1.0 + tan_lean * tan_lean) ** 0.75  # (1/cos)^1.5 = (1 + tan²)^0.75


def achieved_velocity(cmd: tuple[float, float], flow: tuple[float, float],
                      cap_mps: float) -> tuple[float, float]:
    """Ground velocity a vehicle achieves when it asks for ``cmd`` (ground, north/east m/s)
    in a medium moving at ``flow`` and can move through the medium at most ``cap_mps``.

    Within the limit it gets ``cmd``. Beyond it, it keeps the commanded direction and goes
    as fast as the limit allows; if even holding still is beyond it, it is carried off
    at the difference.

    >>> achieved_velocity((10.0, 0.0), (-5.0, 0.0), 11.0)   # 5 m/s headwind, 11 m/s cap
    (6.0, 0.0)
    >>> achieved_velocity((0.0, 0.0), (0.0, 8.0), 6.0)      # too strong: drifts at 2 m/s
    (0.0, 2.0)
    """
    un, ue = cmd
    wn, we = flow
    rn, re = un - wn, ue - we
    if math.hypot(rn, re) <= cap_mps:
        return un, ue
    w2 = wn * wn + we * we
    u2 = un * un + ue * ue
    if w2 <= cap_mps * cap_mps and u2 > 0:
        # largest s in [0, 1] with |s·u - w| = cap (on the commanded track, slower)
        uw = un * wn + ue * we
        s = (uw + math.sqrt(max(0.0, uw * uw - u2 * (w2 - cap_mps * cap_mps)))) / u2
        s = min(1.0, max(0.0, s))
        return s * un, s * ue
    if w2 <= cap_mps * cap_mps:
        return 0.0, 0.0
    r = math.hypot(rn, re)
    return wn + cap_mps * rn / r, we + cap_mps * re / r


class DisturbanceMixin:
    """SimVehicle's environment: ``environment`` (settable while running), the wind and
    current at the vehicle, WIND telemetry, and the effort that drives the battery."""

    def _init_disturbance(self: Any, environment: Environment | None) -> None:
        self._held = False  # set by the host's _hold() during a step
        self._hold_at: tuple[float, float] | None = None
        self._hold_mode = -1
        self._rel_speed_mps = 0.0  # speed through the air (copter) or water (boat)
        self._motors_off = True
        self._guided_done_for: object = None  # boat: the GUIDED target reached (loitering)
        self.environment = environment if environment is not None else CALM

    @property
    def environment(self: Any) -> Environment:
        return self._env

    @environment.setter
    def environment(self: Any, env: Environment) -> None:
        if not isinstance(env, Environment):
            raise TypeError(f"environment must be a sitl.environment.Environment, not {type(env).__name__}")
        self._env = env
        # per-vehicle gust stream: the fleet's seed and the vehicle's own id
        self._wind_at = wind_field(env, env.seed * 256 + int(self._boot_sysid))

    @property
    def wind_ne(self: Any) -> tuple[float, float]:
        """Air velocity (north, east m/s) at the vehicle now, gusts included."""
        return self._wind_at(self._t_s)

    @property
    def current_ne(self: Any) -> tuple[float, float]:
        """Water velocity (north, east m/s) at the vehicle now."""
        return self._env.current_at(self._lon, self._lat)

    @property
    def hold_point(self: Any) -> tuple[float, float] | None:
        """(lon, lat) a holding controller keeps now (copter hold, boat loiter), else None."""
        return (self._hold_at[1], self._hold_at[0]) if self._hold_at is not None else None

    @property
    def speed_through_medium_mps(self: Any) -> float:
        """Airspeed (copter) or speed through the water under power (boat) in the last step."""
        return self._rel_speed_mps

    # -- the step ------------------------------------------------------------------------
    def _capability_mps(self: Any) -> float:
        """How fast the vehicle can move through its medium (never below its set speed:
        an airframe flies its configured cruise speed in still air)."""
        if self.kind == "copter":
            cap = lean_limited_airspeed_mps(self._pv("ANGLE_MAX") / 100.0)
        else:
            # Rover SPEED_MAX: "If 0, it will be estimated based on CRUISE_SPEED and
            # CRUISE_THROTTLE" (Rover/Parameters.cpp): full throttle over cruise throttle.
            cap = self._pv("SPEED_MAX") or (self._pv("CRUISE_SPEED")
                                            / max(0.05, self._pv("CRUISE_THROTTLE") / 100.0))
        return max(cap, self._speed_mps)

    def _boat_motors_off(self: Any, held: bool) -> bool:
        if not self._armed or self.mode in BOAT_MOTORS_OFF:
            return True
        # Rover ModeAuto::exit_mission with MIS_DONE_BEHAVE 0 (Hold): start_stop()
        return held and self.mode == "AUTO" and self._mission_complete

    def _disturbance_step(self: Any, dt: float, lat0: float, lon0: float) -> None:
        """Turn this step's commanded motion (lat0/lon0 → now) into the motion achieved in
        the wind or current; keep hold points."""
        held, self._held = self._held, False
        if self._mode != self._hold_mode:
            self._hold_mode, self._hold_at = self._mode, None  # a new mode holds where it is
        if self.kind == "copter":
            if not self._armed or self._on_ground():
                self._hold_at, self._rel_speed_mps, self._motors_off = None, 0.0, True
                return
            self._motors_off = False
            flow = self.wind_ne
        else:
            flow = self.current_ne
            self._motors_off = self._boat_motors_off(held)
        n, e = _ne(lat0, lon0, self._lat, self._lon)
        host = (n / dt, e / dt)  # what the host's mode logic already did
        moved = abs(n) > 1e-6 or abs(e) > 1e-6
        cmd = host
        if held and not moved:
            if self._hold_at is None:
                self._hold_at = (lat0, lon0)
            cmd = self._station_keeping(lat0, lon0)
        elif not held:
            self._hold_at = None
        if self._motors_off or (self.kind == "copter" and self.mode in COPTER_NO_POSITION):
            ground = flow  # carried by the water, or by the air at a level attitude
        elif cmd == (0.0, 0.0) and flow == (0.0, 0.0):
            self._rel_speed_mps = 0.0
            return  # still air or water and nothing asked: nothing to do
        else:
            ground = achieved_velocity(cmd, flow, self._capability_mps())
        self._rel_speed_mps = (0.0 if self._motors_off
                               else math.hypot(ground[0] - flow[0], ground[1] - flow[1]))
        if ground == host:
            return  # achieved as the host moved it
        self._lat, self._lon = _offset(lat0, lon0, ground[0] * dt, ground[1] * dt)
        self._vn, self._ve = ground

    def _station_keeping(self: Any, lat: float, lon: float) -> tuple[float, float]:
        """Ground velocity asked for by a holding controller at (lat, lon)."""
        assert self._hold_at is not None
        n, e = _ne(lat, lon, self._hold_at[0], self._hold_at[1])
        d = math.hypot(n, e)
        if self.kind == "boat":
            radius = self._pv("LOIT_RADIUS")
            if d <= radius:
                self._motors_off = True  # within the radius a loitering boat drifts
                return 0.0, 0.0
            speed = min((d - radius) * self._pv("LOIT_SPEED_GAIN"), self._pv("WP_SPEED"))
        else:
            if d < 1e-6:
                return 0.0, 0.0
            speed = min(d * POS_P_PER_S, self._speed_mps)
        return speed * n / d, speed * e / d

    # -- effort, telemetry ---------------------------------------------------------------
    def _power_fraction(self: Any) -> float:
        """Current drawn as a fraction of the full current (the copter's at its cruise speed, the boat's at
        CRUISE_SPEED): what empties the pack in endurance_s."""
        if not self._armed:
            return 0.0
        if self.kind == "copter":
            if self._on_ground():
                return IDLE_FRACTION
            return hover_power_ratio(self._rel_speed_mps) / hover_power_ratio(self._cruise_ref_mps)
        if self._motors_off:
            return IDLE_FRACTION
        cruise = max(0.1, self._pv("CRUISE_SPEED"))
        return IDLE_FRACTION + (1.0 - IDLE_FRACTION) * (self._rel_speed_mps / cruise) ** 3

    def _msg_wind(self: Any) -> Any:
        """WIND (ardupilotmega): direction the wind comes *from* (deg), horizontal speed.
        A boat's AHRS has no wind estimate without an airspeed sensor: zeros."""
        if self.kind != "copter":
            return mav.MAVLink_wind_message(0.0, 0.0, 0.0)
        n, e = self.wind_ne
        speed = math.hypot(n, e)
        direction = math.degrees(math.atan2(-e, -n)) % 360.0 if speed > 0 else 0.0
        return mav.MAVLink_wind_message(direction, speed, 0.0)

    def _handle_timesync(self: Any, msg: Any) -> None:
        """GCS_MAVLINK::handle_timesync: answer a request (tc1 0) with tc1 = our time in ns
        (AP_HAL::micros64() × 1000, never 0) and ts1 echoed; ignore answers."""
        if msg.tc1 != 0:
            return
        tc1 = max(1, int(self._t_s * 1e6)) * 1000
        self._send(mav.MAVLink_timesync_message(tc1, msg.ts1))


# Flat-earth offsets, as ArduPilot's Location (LOCATION_SCALING_FACTOR, AP_Common/Location.cpp).
_M_PER_DEG = 111318.84502145034


def _ne(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    n = (lat2 - lat1) * _M_PER_DEG
    e = (lon2 - lon1) * _M_PER_DEG * math.cos(math.radians((lat1 + lat2) / 2))
    return n, e


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    new_lat = lat + north_m / _M_PER_DEG
    return new_lat, lon + east_m / (_M_PER_DEG * math.cos(math.radians((lat + new_lat) / 2)))
