"""The simulator's ground: a district's terrain grid, and the vehicle's terrain database.

- :class:`Grid` reads an ESRI ASCII grid (the district folder's ``terrain.asc``, see
  docs/district-folder.md) and gives the ground height at a point, bilinear between cell
  centres and NaN outside, the same reading as ``command.district.Terrain`` (the
  simulator room does not import the product).
- :class:`TerrainDatabase` is the vehicle side of ArduPilot's terrain protocol
  (``libraries/AP_Terrain``): which grid blocks the vehicle needs, the TERRAIN_REQUEST for
  the next incomplete one, TERRAIN_DATA stored, heights read back as ArduPilot does
  (AP_Terrain::height_amsl). The grid layout and maths are shared with the ground side,
  :mod:`uav.terrain`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.terrain import (
    BITMAP_MASK, BLOCK_MUL_Y, BLOCK_SIZE_X, BLOCK_SIZE_Y, GRID_BITS, M_PER_DEG, MAVLINK_SIZE,
    Elevation, grid_info, offset_deg, read_esri_ascii,
)

__all__ = ["Grid", "TerrainDatabase", "GroundMixin", "find_terrain", "CRASH_MARGIN_M"]

log = logging.getLogger(__name__)


def _config_error(message: str) -> Exception:
    # sitl.vehicle_sim imports this module: its error class is looked up when needed.
    from sitl.vehicle_sim import SimConfigError
    return SimConfigError(message)


@dataclass(frozen=True, slots=True)
class Grid:
    """Ground elevation grid (m AMSL), cells in degrees, row 0 northernmost; NaN no data."""

    z_m: np.ndarray
    xll_deg: float  # west edge (cell corner)
    yll_deg: float  # south edge (cell corner)
    cell_deg: float

    @classmethod
    def load(cls, path: Path) -> Grid:
        """Read an ESRI ASCII grid (``uav.terrain.read_esri_ascii``); SimConfigError if bad."""
        try:
            z, xll, yll, cell = read_esri_ascii(path)
        except ValueError as err:
            raise _config_error(str(err)) from err
        return cls(z, xll, yll, cell)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        nrows, ncols = self.z_m.shape
        return (self.xll_deg, self.yll_deg, self.xll_deg + ncols * self.cell_deg,
                self.yll_deg + nrows * self.cell_deg)

    def elevation_at(self, lon: float, lat: float) -> float:
        """Ground (m AMSL) at a point, bilinear between cell centres; NaN outside the grid."""
        w, s, e, n = self.bounds
        if not (w <= lon <= e and s <= lat <= n):
            return math.nan
        nrows, ncols = self.z_m.shape
        fx = min(max((lon - w) / self.cell_deg - 0.5, 0.0), ncols - 1.0)
        fy = min(max((lat - s) / self.cell_deg - 0.5, 0.0), nrows - 1.0)
        x0, y0 = min(int(fx), ncols - 2), min(int(fy), nrows - 2)
        tx, ty = fx - x0, fy - y0
        z = self.z_m
        r0, r1 = nrows - 1 - y0, nrows - 2 - y0  # row index counted from the north
        return float(z[r0, x0] * (1 - tx) * (1 - ty) + z[r0, x0 + 1] * tx * (1 - ty)
                     + z[r1, x0] * (1 - tx) * ty + z[r1, x0 + 1] * tx * ty)


def find_terrain(fleet_yaml: Path, district: Path | None = None) -> Path | None:
    """The terrain grid to use: ``district/terrain.asc``, else ``terrain.asc`` beside the
    fleet file (a district folder), else None."""
    if district is not None:
        if not (Path(district) / "terrain.asc").is_file():
            raise _config_error(f"{district}: no terrain.asc in the district folder")
        return Path(district) / "terrain.asc"
    beside = Path(fleet_yaml).parent / "terrain.asc"
    return beside if beside.is_file() else None


@dataclass(slots=True)
class _Block:
    """One 28 x 32 grid block (AP_Terrain grid_block): heights and the bits received."""

    heights: np.ndarray = field(default_factory=lambda: np.zeros((BLOCK_SIZE_X, BLOCK_SIZE_Y)))
    bitmap: int = 0

    @property
    def complete(self) -> bool:
        return self.bitmap & BITMAP_MASK == BITMAP_MASK

    def has_point(self, x: int, y: int) -> bool:
        """AP_Terrain::check_bitmap: the gridbit holding point (x, y) has arrived."""
        bit = (x // MAVLINK_SIZE) * BLOCK_MUL_Y + y // MAVLINK_SIZE
        return bool(self.bitmap & (1 << bit))


class TerrainDatabase:
    """The vehicle's terrain cache, filled from the ground station (AP_Terrain)."""

    def __init__(self, spacing_m: int = 100) -> None:
        self.spacing_m = int(spacing_m)
        self._blocks: dict[tuple[int, int], _Block] = {}
        self.counters = {"data_stored": 0, "data_ignored": 0, "requests": 0}

    def reset(self, spacing_m: int) -> None:
        """Forget everything (TERRAIN_SPACING changed)."""
        self.spacing_m = int(spacing_m)
        self._blocks.clear()

    @property
    def loaded(self) -> int:
        return sum(1 for b in self._blocks.values() if b.complete)

    @property
    def pending(self) -> int:
        return sum(1 for b in self._blocks.values() if not b.complete)

    def height_amsl(self, lat: float, lon: float, *, need: bool = True) -> float | None:
        """Ground (m AMSL) at a point from the received data, None if not (yet) held.

        ``need``: remember the block as wanted, so the next request asks for it (as
        AP_Terrain::height_amsl creates a cache entry that request_missing fills).
        """
        info = grid_info(lat, lon, self.spacing_m)
        key = (info.grid_lat_e7, info.grid_lon_e7)
        block = self._blocks.get(key)
        if block is None:
            if need:
                self._blocks[key] = _Block()
            return None
        x, y = info.idx_x, info.idx_y
        if not all(block.has_point(x + dx, y + dy) for dx in (0, 1) for dy in (0, 1)):
            return None
        h = block.heights
        # AP_Terrain::height_amsl: bilinear, x north then y east.
        avg1 = (1 - info.frac_x) * h[x, y] + info.frac_x * h[x + 1, y]
        avg2 = (1 - info.frac_x) * h[x, y + 1] + info.frac_x * h[x + 1, y + 1]
        return float((1 - info.frac_y) * avg1 + info.frac_y * avg2)

    def want_around(self, lat: float, lon: float) -> None:
        """The block under the vehicle and its eight neighbours (AP_Terrain::send_request
        asks for blocks 0.7 block sizes away in each direction)."""
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                plat, plon = offset_deg(lat, lon, dx * BLOCK_SIZE_X * 0.7 * self.spacing_m,
                                        dy * BLOCK_SIZE_Y * 0.7 * self.spacing_m)
                self.height_amsl(plat, plon)

    def next_request(self, lat: float, lon: float) -> tuple[int, int, int, int] | None:
        """(lat_e7, lon_e7, spacing, mask) of the next incomplete block, the one under the
        vehicle first (AP_Terrain::send_request order); None when all are complete."""
        here = grid_info(lat, lon, self.spacing_m)
        order = sorted(self._blocks, key=lambda k: k != (here.grid_lat_e7, here.grid_lon_e7))
        for key in order:
            block = self._blocks[key]
            if not block.complete:
                self.counters["requests"] += 1
                return key[0], key[1], self.spacing_m, BITMAP_MASK & ~block.bitmap
        return None

    def store(self, lat_e7: int, lon_e7: int, spacing_m: int, gridbit: int,
              data: list[int]) -> bool:
        """Keep one TERRAIN_DATA; False (ignored) for a block not asked for, another spacing
        or a bad gridbit (AP_Terrain::handle_terrain_data)."""
        block = self._blocks.get((lat_e7, lon_e7))
        if block is None or spacing_m != self.spacing_m or not 0 <= gridbit < GRID_BITS \
                or len(data) != MAVLINK_SIZE * MAVLINK_SIZE:
            self.counters["data_ignored"] += 1
            return False
        x0 = (gridbit // BLOCK_MUL_Y) * MAVLINK_SIZE
        y0 = (gridbit % BLOCK_MUL_Y) * MAVLINK_SIZE
        for i, value in enumerate(data):
            block.heights[x0 + i // MAVLINK_SIZE, y0 + i % MAVLINK_SIZE] = value
        block.bitmap |= 1 << gridbit
        self.counters["data_stored"] += 1
        return True


# ---- the simulated vehicle's ground, terrain following, crash and circle (SimVehicle mixin)

# Copter crash check (ArduCopter/crash_check.cpp) reports "Crash: Disarming" at
# MAV_SEVERITY_EMERGENCY; here meeting the ground closer than this while flying is a crash.
CRASH_MARGIN_M = 0.5
# AP_Terrain::send_request: at most one TERRAIN_REQUEST every 2 s (vehicle time).
TERRAIN_REQUEST_S = 2.0
TERRAIN_REQUEST_WALL_FLOOR_S = 0.1  # never flood a ground station at a high speed-up
# ArduCopter config.h FS_TERRAIN_TIMEOUT_MS 5000: terrain data missing this long in flight.
FS_TERRAIN_TIMEOUT_S = 5.0
# AC_Circle CIRCLE_RATE default 20 deg/s, limited by the horizontal speed / radius.
CIRCLE_RATE_DEG_S = 20.0
_TERRAIN_NAV_CMDS = {
    mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_UNLIM,
    mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LOITER_TURNS, mav.MAV_CMD_NAV_SPLINE_WAYPOINT,
}


def _new_nav(phase: str, **kwargs: Any) -> Any:
    from sitl.vehicle_sim import _Nav  # the mixin's host module imports this one
    return _Nav(phase, **kwargs)


def _ne(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    north = (lat2 - lat1) * M_PER_DEG
    east = (lon2 - lon1) * M_PER_DEG * math.cos(math.radians((lat1 + lat2) / 2))
    return north, east


class GroundMixin:
    """SimVehicle's ground: the terrain under it, crashes, ArduPilot's terrain database,
    terrain-frame mission items and NAV_LOITER_TURNS. Hooks: ``_init_ground`` (init),
    ``_ground_step`` (each step), ``_terrain_tick`` (each tick), ``_nav_started`` /
    ``_nav_hook`` (mission navigation), ``_handle_terrain_data`` / ``_check``."""

    _ground_fn: Elevation | None
    terrain_db: TerrainDatabase

    def _init_ground(self: Any, ground_amsl_m: Elevation | None) -> None:
        self._ground_fn = ground_amsl_m
        self.terrain_db = TerrainDatabase(int(self._pv("TERRAIN_SPACING")))
        self._airborne = False
        self._terrain_req_sim_s = -math.inf
        self._terrain_req_wall_s = -math.inf
        self._terrain_fail_since_s: float | None = None
        self.crash_count = 0
        self.counters.update(terrain_requests=0, terrain_data=0, terrain_data_ignored=0)
        g = self.ground_at(self._lon, self._lat)
        if self.kind == "copter" and g != self._ground_amsl:
            # the terrain, not the configured home height, is where a copter stands
            self._ground_amsl = self._alt_amsl = g
            self._boot_home = (self._lat, self._lon, g)

    # -- the physical ground ------------------------------------------------------------
    def ground_at(self: Any, lon: float, lat: float) -> float:
        """True ground (m AMSL) at a point: the terrain function, else flat at boot height."""
        if self._ground_fn is not None:
            try:
                g = float(self._ground_fn(lon, lat))
            except Exception:  # a broken terrain source must not stop the vehicle
                log.exception("%s: ground_amsl_m(%f, %f) failed", self.name, lon, lat)
                g = math.nan
            if math.isfinite(g):
                return g
        return self._ground_amsl

    def _ground_step(self: Any) -> None:
        """Follow the ground under a copter; meeting it in flight is a crash (a boat floats)."""
        if self.kind != "copter":
            return
        g = self._ground_amsl = self.ground_at(self._lon, self._lat)
        if not self._armed:
            self._alt_amsl = g  # a disarmed copter sits on the ground
            self._airborne = False
            return
        landing = self._nav is not None and self._nav.phase == "land"
        if self._airborne and not landing and self._alt_amsl <= g + CRASH_MARGIN_M:
            self._crash(g)
            return
        self._alt_amsl = max(self._alt_amsl, g)
        self._airborne = self._alt_amsl > g + CRASH_MARGIN_M

    def _crash(self: Any, ground_m: float) -> None:
        self.crash_count += 1
        self._text(mav.MAV_SEVERITY_EMERGENCY, "Crash: Disarming")  # Copter::crash_check
        self._alt_amsl = ground_m
        self._disarm(True, "crash")
        self._airborne = False

    # -- ArduPilot's terrain database (AP_Terrain) -----------------------------------------
    def _terrain_enabled(self: Any) -> bool:
        return self._pv("TERRAIN_ENABLE") == 1

    def terrain_height(self: Any, lat: float, lon: float) -> float | None:
        """Ground from the vehicle's terrain database (what ArduPilot would know), or None."""
        if not self._terrain_enabled():
            return None
        spacing = int(self._pv("TERRAIN_SPACING"))
        if spacing != self.terrain_db.spacing_m:
            self.terrain_db.reset(spacing)
        return self.terrain_db.height_amsl(lat, lon)

    def _terrain_tick(self: Any, wall_now: float) -> None:
        """Ask the ground station for missing terrain (sent with the telemetry streams, as
        ArduPilot's MSG_TERRAIN: a silent ground station is not asked)."""
        if not (self._terrain_enabled() and self._origin_set and self._streams_active):
            return
        if (self._t_s - self._terrain_req_sim_s < TERRAIN_REQUEST_S
                or wall_now - self._terrain_req_wall_s < TERRAIN_REQUEST_WALL_FLOOR_S):
            return
        self.terrain_height(self._lat, self._lon)  # resets the database on a new spacing
        db = self.terrain_db
        db.want_around(self._lat, self._lon)
        # AP_Terrain::update_mission_data: the ground under every mission item with a place.
        for it in self._items[mav.MAV_MISSION_TYPE_MISSION][1:]:
            if it.x or it.y:
                db.height_amsl(it.x / 1e7, it.y / 1e7)
        if self._home is not None:
            db.height_amsl(self._home[0], self._home[1])
        req = db.next_request(self._lat, self._lon)
        if req is None:
            return
        self._terrain_req_sim_s, self._terrain_req_wall_s = self._t_s, wall_now
        self.counters["terrain_requests"] += 1
        self._send(mav.MAVLink_terrain_request_message(*req))

    def _handle_terrain_data(self: Any, msg: Any) -> None:
        spacing = int(self._pv("TERRAIN_SPACING"))
        ok = self._terrain_enabled() and self.terrain_db.store(
            msg.lat, msg.lon, msg.grid_spacing if msg.grid_spacing == spacing else -1,
            msg.gridbit, list(msg.data))
        self.counters["terrain_data" if ok else "terrain_data_ignored"] += 1

    def _handle_terrain_check(self: Any, msg: Any) -> None:
        """TERRAIN_REPORT for a point (AP_Terrain::send_terrain_report: spacing 0 = no data)."""
        lat, lon = msg.lat / 1e7, msg.lon / 1e7
        h = self.terrain_height(lat, lon)
        home = self._home or self._boot_home
        home_h = self.terrain_height(home[0], home[1])
        ok = h is not None and home_h is not None
        db = self.terrain_db
        self._send(mav.MAVLink_terrain_report_message(
            msg.lat, msg.lon, db.spacing_m if ok else 0, h if ok else 0.0,
            self._alt_amsl - h if ok else 0.0, db.pending, db.loaded))

    # -- terrain-frame items and circles in AUTO -------------------------------------------
    def _nav_started(self: Any, it: Any, nav: Any) -> Any:
        """Adjust a new mission nav state: LOITER_TURNS starts at the circle's edge;
        terrain-frame items take their height above the terrain database's ground, and
        without data the item is refused with the terrain failsafe (ModeAuto::wp_start →
        Copter::failsafe_terrain_on_event)."""
        if it.command == mav.MAV_CMD_NAV_LOITER_TURNS and nav.phase == "goto":
            clat, clon, alt = nav.target
            radius = abs(it.param3)
            north, east = _ne(clat, clon, self._lat, self._lon)
            bearing = math.atan2(east, north) if math.hypot(north, east) > 1.0 else 0.0
            elat, elon = offset_deg(clat, clon, radius * math.cos(bearing),
                                    radius * math.sin(bearing))
            nav.center, nav.angle_rad, nav.target = (clat, clon), bearing, (elat, elon, alt)
        if (self.kind != "copter" or it.frame != mav.MAV_FRAME_GLOBAL_TERRAIN_ALT
                or it.command not in _TERRAIN_NAV_CMDS or nav.phase not in ("takeoff", "goto")):
            return nav
        lat, lon = (it.x / 1e7, it.y / 1e7) if (it.x or it.y) else (self._lat, self._lon)
        if nav.phase == "takeoff":
            lat, lon = self._lat, self._lon
        h = self.terrain_height(lat, lon)
        if h is None:
            return _new_nav("terrain_failsafe")
        if nav.phase == "takeoff":
            nav.alt_goal_amsl = max(self._alt_amsl, h + it.z)
        elif it.z != 0:  # 0 keeps the current altitude (ModeAuto::loc_from_cmd)
            nav.terrain_alt_m = it.z
            nav.target = (nav.target[0], nav.target[1], h + it.z)
        return nav

    def _nav_hook(self: Any, it: Any, nav: Any, dt: float) -> bool | None:
        """Run the phases this mixin owns; None lets the host handle the phase."""
        if nav.phase == "terrain_failsafe":
            self._terrain_failsafe()
            return False
        if nav.terrain_alt_m is not None and not self._terrain_follow(nav):
            return False  # the failsafe changed the mode
        if nav.phase == "circle":
            return self._circle_step(it, nav, dt)
        return None

    def _terrain_follow(self: Any, nav: Any) -> bool:
        """Keep a terrain-frame target at its height above the ground under the vehicle
        (AC_WPNav terrain following); after FS_TERRAIN_TIMEOUT without data, failsafe."""
        h = self.terrain_height(self._lat, self._lon)
        if h is None:
            since = self._terrain_fail_since_s
            if since is None:
                self._terrain_fail_since_s = self._t_s
            elif self._t_s - since > FS_TERRAIN_TIMEOUT_S:
                self._terrain_fail_since_s = None
                self._terrain_failsafe()
                return False
            return True
        self._terrain_fail_since_s = None
        nav.target = (nav.target[0], nav.target[1], h + nav.terrain_alt_m)
        return True

    def _terrain_failsafe(self: Any) -> None:
        """Copter::failsafe_terrain_on_event: disarm on the ground, else RTL (or LAND)."""
        self._text(mav.MAV_SEVERITY_CRITICAL, "Failsafe: Terrain data missing")
        if self._on_ground():
            self._disarm(True, "terrain failsafe on the ground")
        elif self.mode != "RTL" and not self._set_mode(self._mode_num("RTL"),
                                                       reason="terrain failsafe"):
            self._set_mode(self._mode_num("LAND"), reason="terrain failsafe")

    def _circle_step(self: Any, it: Any, nav: Any, dt: float) -> bool:
        """NAV_LOITER_TURNS: param1 turns (at least 1, AP_Mission), |param3| radius m,
        negative param3 counter-clockwise; angular rate CIRCLE_RATE, at most speed / radius."""
        turns = max(1, min(255, int(it.param1)))
        radius = abs(it.param3)
        omega = math.radians(CIRCLE_RATE_DEG_S)
        if radius > 0:
            omega = min(omega, self._speed_mps / radius)
        nav.turned_rad += omega * dt
        angle = nav.angle_rad + (-1.0 if it.param3 < 0 else 1.0) * nav.turned_rad
        lat0, lon0, alt0 = self._lat, self._lon, self._alt_amsl
        self._lat, self._lon = offset_deg(nav.center[0], nav.center[1],
                                          radius * math.cos(angle), radius * math.sin(angle))
        if self.kind == "copter":
            self._move_alt(nav.target[2], dt)
        self._set_velocity(lat0, lon0, alt0, dt)
        return nav.turned_rad >= turns * 2 * math.pi
