"""Terrain server: the ground station's half of ArduPilot's terrain protocol.

ArduPilot keeps a terrain database of grid blocks and asks the ground station for what it
lacks (``libraries/AP_Terrain``, https://ardupilot.org/copter/docs/terrain-following.html):

- the vehicle sends TERRAIN_REQUEST(lat, lon = south-west corner of one grid block in
  degE7, grid_spacing in m, mask): a block holds 28 x 32 points (north x east) sent as
  7 x 8 sub-grids of 4 x 4 points, one mask bit each (56 bits);
- the ground station answers one TERRAIN_DATA(lat, lon, grid_spacing, gridbit,
  data[16]) per requested bit, heights in whole metres AMSL.

Layout (AP_Terrain.h ``TERRAIN_GRID_MAVLINK_SIZE`` 4, ``TERRAIN_GRID_BLOCK_MUL_X`` 7,
``TERRAIN_GRID_BLOCK_MUL_Y`` 8; AP_Terrain_mavlink.cpp ``handle_terrain_data``;
MAVProxy ``mavproxy_terrain.py`` ``send_terrain_data_bit``): x runs north, y runs east;
gridbit ``b`` starts at point (x, y) = (4 * (b // 8), 4 * (b % 8)) and ``data[i]`` is the
point (x + i // 4, y + i % 4), i.e. ``spacing * (4 * (b // 8) + i // 4)`` m north and
``spacing * (4 * (b % 8) + i % 4)`` m east of the block's corner.

    server = TerrainServer(district.terrain.elevation_at)
    await serve_terrain(link, system_id, server)   # inside the vehicle's TaskGroup
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import LinkError

__all__ = [
    "Elevation", "TerrainReport", "TerrainServer", "serve_terrain", "bit_points",
    "offset_deg", "grid_info", "GridInfo", "GRID_BITS", "BITMAP_MASK", "MAVLINK_SIZE",
    "BLOCK_MUL_X", "BLOCK_MUL_Y", "BLOCK_SIZE_X", "BLOCK_SIZE_Y", "BLOCK_SPACING_X",
    "BLOCK_SPACING_Y", "M_PER_DEG",
]

log = logging.getLogger(__name__)

Elevation = Callable[[float, float], float]  # (lon, lat) -> ground metres AMSL, NaN: unknown

# AP_Terrain.h: a MAVLink sub-grid is 4 x 4 points; a block is 7 (north) x 8 (east) of them,
# 28 x 32 points, neighbouring blocks overlapping by one sub-grid row/column
# (TERRAIN_GRID_BLOCK_SPACING_X/Y = (MUL - 1) * 4).
MAVLINK_SIZE: Final = 4
BLOCK_MUL_X: Final = 7
BLOCK_MUL_Y: Final = 8
BLOCK_SIZE_X: Final = MAVLINK_SIZE * BLOCK_MUL_X  # 28 points north
BLOCK_SIZE_Y: Final = MAVLINK_SIZE * BLOCK_MUL_Y  # 32 points east
BLOCK_SPACING_X: Final = (BLOCK_MUL_X - 1) * MAVLINK_SIZE  # 24
BLOCK_SPACING_Y: Final = (BLOCK_MUL_Y - 1) * MAVLINK_SIZE  # 28
GRID_BITS: Final = BLOCK_MUL_X * BLOCK_MUL_Y  # 56
BITMAP_MASK: Final = (1 << GRID_BITS) - 1
# ArduPilot LOCATION_SCALING_FACTOR (AP_Common/Location.cpp): 0.011131884502145034 m per
# 1e-7 degree of latitude.
M_PER_DEG: Final = 111318.84502145034
# int16 range of TERRAIN_DATA.data (MAVLink common.xml).
_INT16_MIN, _INT16_MAX = -32768, 32767
# Answered sub-grids remembered (a vehicle re-asks for its neighbourhood every few seconds).
_CACHE_BITS: Final = 4096


def _longitude_scale(lat_deg: float) -> float:
    """ArduPilot Location::longitude_scale: cos(lat), floored at 0.01."""
    return max(math.cos(math.radians(lat_deg)), 0.01)


def offset_deg(lat_deg: float, lon_deg: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m``/``east_m`` from (lat, lon), as ArduPilot's Location::offset."""
    dlat = north_m / M_PER_DEG
    dlon = east_m / M_PER_DEG / _longitude_scale(lat_deg + dlat / 2)
    return lat_deg + dlat, lon_deg + dlon


def bit_points(lat_e7: int, lon_e7: int, spacing_m: int, bit: int) -> list[tuple[float, float]]:
    """The 16 (lat, lon) of ``bit`` of the block whose south-west corner is (lat_e7, lon_e7),
    in ``data[]`` order (north index i // 4, east index i % 4)."""
    if not 0 <= bit < GRID_BITS:
        raise ValueError(f"gridbit must be 0..{GRID_BITS - 1}, got {bit}")
    x0, y0 = MAVLINK_SIZE * (bit // BLOCK_MUL_Y), MAVLINK_SIZE * (bit % BLOCK_MUL_Y)
    lat0, lon0 = lat_e7 / 1e7, lon_e7 / 1e7
    return [offset_deg(lat0, lon0, spacing_m * (x0 + i // MAVLINK_SIZE),
                       spacing_m * (y0 + i % MAVLINK_SIZE)) for i in range(16)]


@dataclass(frozen=True, slots=True)
class GridInfo:
    """Where a point falls in ArduPilot's grid (AP_Terrain::calculate_grid_info)."""

    grid_lat_e7: int  # south-west corner of its 28 x 32 block
    grid_lon_e7: int
    idx_x: int  # point index north within the block (0..23)
    idx_y: int  # point index east within the block (0..27)
    frac_x: float  # 0..1 between idx_x and idx_x + 1
    frac_y: float


def grid_info(lat_deg: float, lon_deg: float, spacing_m: float) -> GridInfo:
    """AP_Terrain::calculate_grid_info: blocks start on whole degrees (south-west) and step
    by BLOCK_SPACING_X/Y points, so a point's four neighbours are always in one block."""
    ref_lat, ref_lon = math.floor(lat_deg), math.floor(lon_deg)
    # Location::get_distance_NE, longitude scaled at the mean latitude.
    north = (lat_deg - ref_lat) * M_PER_DEG
    east = (lon_deg - ref_lon) * M_PER_DEG * _longitude_scale((lat_deg + ref_lat) / 2)
    ix, iy = int(north // spacing_m), int(east // spacing_m)
    gx, gy = ix // BLOCK_SPACING_X, iy // BLOCK_SPACING_Y
    glat, glon = offset_deg(ref_lat, ref_lon, gx * BLOCK_SPACING_X * spacing_m,
                            gy * BLOCK_SPACING_Y * spacing_m)
    return GridInfo(int(glat * 1e7), int(glon * 1e7), ix % BLOCK_SPACING_X, iy % BLOCK_SPACING_Y,
                    (north - ix * spacing_m) / spacing_m, (east - iy * spacing_m) / spacing_m)


@dataclass(frozen=True, slots=True)
class TerrainReport:
    """A vehicle's TERRAIN_REPORT: what its terrain database holds around a point."""

    lat_deg: float
    lon_deg: float
    spacing_m: int
    terrain_height_m: float  # ground AMSL at the point (NaN: not loaded)
    current_height_m: float  # vehicle height above that ground
    pending: int  # blocks still being asked for
    loaded: int  # blocks held


class TerrainServer:
    """Answers TERRAIN_REQUESTs from an elevation function (pure: no I/O).

    ``counters``: ``requests``, ``bits_sent``, ``bits_unknown`` (a point without
    elevation: that sub-grid is not answered, the vehicle keeps asking or uses another
    source), ``bad_requests``.
    """

    def __init__(self, elevation_at: Elevation) -> None:
        self.elevation_at = elevation_at
        self._vectorised: bool | None = None  # does elevation_at take arrays? (found on first use)
        self.counters = {"requests": 0, "bits_sent": 0, "bits_unknown": 0, "bad_requests": 0}
        self._cache: OrderedDict[tuple[int, int, int, int], tuple[int, ...] | None] = OrderedDict()

    def sub_grid(self, lat_e7: int, lon_e7: int, spacing_m: int, bit: int) -> tuple[int, ...] | None:
        """The 16 heights (whole metres AMSL) of one gridbit; None if any is unknown."""
        key = (lat_e7, lon_e7, spacing_m, bit)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        points = bit_points(lat_e7, lon_e7, spacing_m, bit)
        values = self._heights(points)
        heights: list[int] = []
        for h in values:
            if not math.isfinite(h):
                heights = []
                break
            heights.append(min(_INT16_MAX, max(_INT16_MIN, round(h))))
        out = tuple(heights) if heights else None
        self._cache[key] = out
        if len(self._cache) > _CACHE_BITS:
            self._cache.popitem(last=False)
        return out

    def _prefetch(self, lat_e7: int, lon_e7: int, spacing_m: int, bits: list[int]) -> None:
        """Fill the cache for a request's uncached bits with one lookup (a block is up to 896 points)."""
        missing = [b for b in bits if (lat_e7, lon_e7, spacing_m, b) not in self._cache]
        if len(missing) < 2 or self._vectorised is False:
            return
        points = [p for b in missing for p in bit_points(lat_e7, lon_e7, spacing_m, b)]
        values = self._heights(points)
        for k, b in enumerate(missing):
            chunk = values[16 * k:16 * (k + 1)]
            self._cache[(lat_e7, lon_e7, spacing_m, b)] = (
                tuple(min(_INT16_MAX, max(_INT16_MIN, round(h))) for h in chunk)
                if all(math.isfinite(h) for h in chunk) else None)
        while len(self._cache) > _CACHE_BITS:
            self._cache.popitem(last=False)

    def _heights(self, points: list[tuple[float, float]]) -> list[float]:
        """Ground at the 16 points: one call with arrays when the source takes them (a grid's
        vectorised lookup, ~15x cheaper than 16 calls), else point by point."""
        if self._vectorised is not False:
            try:
                lats = np.fromiter((p[0] for p in points), float, len(points))
                lons = np.fromiter((p[1] for p in points), float, len(points))
                out = np.asarray(self.elevation_at(lons, lats), dtype=float)  # type: ignore[arg-type]
                if out.shape == (len(points),):
                    self._vectorised = True
                    return out.tolist()
            except Exception:
                if self._vectorised:  # it took arrays before: a real failure
                    log.exception("terrain: elevation lookup of a sub-grid failed")
                    return [math.nan] * len(points)
            self._vectorised = False
        heights = []
        for lat, lon in points:
            try:
                heights.append(float(self.elevation_at(lon, lat)))
            except Exception:  # an elevation source failing must not stop the link
                log.exception("terrain: elevation_at(%.7f, %.7f) failed", lon, lat)
                heights.append(math.nan)
        return heights

    def answer(self, lat_e7: int, lon_e7: int, spacing_m: int,
               mask: int) -> list[tuple[int, tuple[int, ...]]]:
        """(gridbit, data) for every requested bit whose points all have an elevation.

        ValueError for a request that cannot be answered (spacing 0, a corner off the globe).
        """
        if spacing_m <= 0:
            raise ValueError(f"grid_spacing must be positive, got {spacing_m}")
        if not (-90e7 <= lat_e7 <= 90e7 and -180e7 <= lon_e7 <= 180e7):
            raise ValueError(f"block corner ({lat_e7}, {lon_e7}) degE7 is not on the globe")
        out: list[tuple[int, tuple[int, ...]]] = []
        wanted = [bit for bit in range(GRID_BITS) if mask & (1 << bit)]
        self._prefetch(lat_e7, lon_e7, spacing_m, wanted)
        for bit in wanted:
            data = self.sub_grid(lat_e7, lon_e7, spacing_m, bit)
            if data is None:
                self.counters["bits_unknown"] += 1
                continue
            out.append((bit, data))
        return out

    def handle(self, msg: Any) -> list[Any]:
        """TERRAIN_DATA messages answering one TERRAIN_REQUEST (bad ones counted, logged)."""
        self.counters["requests"] += 1
        try:
            bits = self.answer(int(msg.lat), int(msg.lon), int(msg.grid_spacing), int(msg.mask))
        except ValueError as err:
            self.counters["bad_requests"] += 1
            log.warning("terrain: request refused: %s", err)
            return []
        self.counters["bits_sent"] += len(bits)
        return [mav.MAVLink_terrain_data_message(msg.lat, msg.lon, msg.grid_spacing, bit, list(data))
                for bit, data in bits]


async def serve_terrain(link: Any, system_id: int, server: TerrainServer, *,
                        name: str | None = None) -> None:
    """Answer ``system_id``'s TERRAIN_REQUESTs over ``link`` until cancelled or closed.

    Every requested sub-grid is sent at once (Mission Planner does the same; MAVProxy
    sends one per idle loop): the vehicle re-asks every 2 s for what it still lacks
    (AP_Terrain::send_request), so a lost answer costs one round.
    """
    label = name or f"sys{system_id}"
    with link.subscribe(system_id, types={"TERRAIN_REQUEST"}, maxsize=64) as sub:
        async for msg in sub:
            replies = server.handle(msg)
            log.debug("%s: terrain request (%d, %d) spacing %d: %d sub-grids", label,
                      msg.lat, msg.lon, msg.grid_spacing, len(replies))
            try:
                for reply in replies:
                    link.send(reply, system_id=system_id)
                    await asyncio.sleep(0)  # let the link breathe between datagrams
            except LinkError as err:
                log.warning("%s: terrain answer not sent: %s", label, err)


def report_from_wire(msg: Any) -> TerrainReport:
    """TerrainReport from a TERRAIN_REPORT message (spacing 0 means no data there)."""
    loaded = msg.spacing != 0
    return TerrainReport(msg.lat / 1e7, msg.lon / 1e7, int(msg.spacing),
                         float(msg.terrain_height) if loaded else math.nan,
                         float(msg.current_height) if loaded else math.nan,
                         int(msg.pending), int(msg.loaded))


def read_esri_ascii(path: Path | str) -> tuple[np.ndarray, float, float, float]:
    """Read an ESRI ASCII elevation grid: ``(z_m, xll_deg, yll_deg, cell_deg)``.

    Rows run north to south; ``nodata_value`` becomes NaN; ``xllcorner`` and
    ``xllcenter`` (the centre of the lower-left cell) are both accepted. Raises
    ``ValueError`` naming the file and the problem; the array is read-only.
    """
    try:
        tokens = Path(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read terrain grid: {err}") from err
    header: dict[str, str] = {}
    i = 0
    while i + 1 < len(tokens) and tokens[i][:1].isalpha():
        header[tokens[i].lower()] = tokens[i + 1]
        i += 2
    try:
        ncols, nrows = int(header["ncols"]), int(header["nrows"])
        cell = float(header["cellsize"])
        nodata = float(header.get("nodata_value", "-9999"))
        if "xllcorner" in header:
            xll, yll = float(header["xllcorner"]), float(header["yllcorner"])
        else:
            xll = float(header["xllcenter"]) - cell / 2
            yll = float(header["yllcenter"]) - cell / 2
        values = np.array(tokens[i:], dtype=float)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: ESRI ASCII grid header or values invalid ({err})") from err
    if ncols < 2 or nrows < 2 or not cell > 0:
        raise ValueError(f"{path}: grid must be at least 2x2 with a positive cellsize")
    if values.size != ncols * nrows:
        raise ValueError(f"{path}: expected {nrows}x{ncols}={ncols * nrows} values, found {values.size}")
    z = values.reshape(nrows, ncols)
    z[z == nodata] = np.nan
    z.setflags(write=False)
    return z, xll, yll, cell
