"""The district folder: loader and schema (format: docs/district-folder.md).

``District.load(path)`` reads every file once, validates it (pydantic at the boundary,
then geometry checks) and returns frozen plain data. Anything wrong raises
``DistrictError`` naming the file and the problem, so a bad folder fails at start-up.
The sensor registry is read by ``sensors.registry.Registry.from_geojson(district.sensors_path)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import LineString, MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from command.dispatch.airspace import Zone
from command.dispatch.geometry import UTM_48N, densify
from command.dispatch.patrols import Patrol, PatrolError, load_patrols
from command.dispatch.tasks import PAYLOADS
from command.linkage.playbook import PlaybookError, Playbooks, load_playbooks
from command.linkage.roster import Department, RosterError, load_departments
from uav.signing import parse_key
from uav.terrain import read_esri_ascii

__all__ = [
    "District",
    "DistrictError",
    "Bridge",
    "Crew",
    "Facility",
    "River",
    "Road",
    "Terrain",
    "Township",
    "VehicleSpec",
]

# Optional files: landcover.geojson, bridges.geojson, townships.geojson, crews.yaml, patrols.yaml, scenario.yaml.
FILES = ("district.yaml", "boundary.geojson", "sensors.geojson", "airspace.geojson", "rivers.geojson",
         "roads.geojson", "facilities.geojson", "terrain.asc", "fleet.yaml", "departments.yaml", "playbooks.yaml")


class DistrictError(Exception):
    """A district folder that cannot be used; the message names the file and the problem."""


# --- plain data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Terrain:
    """Ground elevation grid (metres AMSL), cells in degrees, rows stored north to south."""

    z_m: np.ndarray  # shape (nrows, ncols), row 0 = northernmost; NaN where no data
    xll_deg: float  # west edge of the grid (cell corner)
    yll_deg: float  # south edge of the grid (cell corner)
    cell_deg: float
    utm_epsg: int = UTM_48N

    @classmethod
    def load(cls, path: Path, *, utm_epsg: int = UTM_48N) -> Terrain:
        """Read the district's ESRI ASCII grid (``uav.terrain.read_esri_ascii``)."""
        try:
            z, xll, yll, cell = read_esri_ascii(path)
        except ValueError as err:
            raise DistrictError(str(err)) from err
        return cls(z, xll, yll, cell, utm_epsg)

    @property
    def shape(self) -> tuple[int, int]:
        return self.z_m.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        nrows, ncols = self.z_m.shape
        return (self.xll_deg, self.yll_deg, self.xll_deg + ncols * self.cell_deg,
                self.yll_deg + nrows * self.cell_deg)

    def elevation_along(self, lons: np.ndarray | Sequence[float], lats: np.ndarray | Sequence[float]) -> np.ndarray:
        """Bilinear ground elevation (m AMSL) between cell centres; NaN outside the grid."""
        lon = np.asarray(lons, dtype=float)
        lat = np.asarray(lats, dtype=float)
        nrows, ncols = self.z_m.shape
        w, s, e, n = self.bounds
        outside = (lon < w) | (lon > e) | (lat < s) | (lat > n) | ~np.isfinite(lon) | ~np.isfinite(lat)
        # Fractional column / row (row counted from the south) of the cell centres.
        fx = np.clip((np.nan_to_num(lon) - w) / self.cell_deg - 0.5, 0.0, ncols - 1.0)
        fy = np.clip((np.nan_to_num(lat) - s) / self.cell_deg - 0.5, 0.0, nrows - 1.0)
        x0 = np.minimum(np.floor(fx).astype(int), ncols - 2)
        y0 = np.minimum(np.floor(fy).astype(int), nrows - 2)
        tx, ty = fx - x0, fy - y0
        z = self.z_m[::-1]  # row 0 = southernmost
        z00, z10 = z[y0, x0], z[y0, x0 + 1]
        z01, z11 = z[y0 + 1, x0], z[y0 + 1, x0 + 1]
        out = (z00 * (1 - tx) * (1 - ty) + z10 * tx * (1 - ty) + z01 * (1 - tx) * ty + z11 * tx * ty)
        return np.where(outside, np.nan, out)

    def elevation_at(self, lon: float, lat: float) -> float:
        """Ground elevation (m AMSL) at one point; NaN outside the grid or where no data."""
        return float(self.elevation_along(np.array([lon]), np.array([lat]))[0])

    def max_along_line(self, coords: Sequence[tuple[float, float]], step_m: float = 50.0) -> float:
        """Highest ground (m AMSL) under a lon/lat polyline, sampled every ``step_m``; NaN if it leaves the grid."""
        lons, lats, _, _ = densify(coords, step_m, epsg=self.utm_epsg)
        z = self.elevation_along(lons, lats)
        return float(np.max(z)) if np.all(np.isfinite(z)) else math.nan


@dataclass(frozen=True, slots=True)
class River:
    id: str
    name: str
    name_zh: str
    line: LineString


@dataclass(frozen=True, slots=True)
class Road:
    id: str
    name: str
    name_zh: str
    road_class: str  # expressway | arterial
    line: LineString


@dataclass(frozen=True, slots=True)
class Facility:
    id: str
    kind: str  # town | hospital | school | fire_station | drone_base | boat_base | landslide_slope | weather_station
    name: str
    name_zh: str
    lon: float
    lat: float
    population: int | None = None  # towns, villages: residents; nursing homes: residents
    capacity: int | None = None  # shelters: people they take


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge over a river: a line across the water; boats pass under it only with room to spare."""

    id: str
    name: str
    name_zh: str
    river: str
    line: LineString  # across the water, bank to bank
    underside_amsl_m: float  # the lowest point of the deck's underside over the water
    road: str | None = None

    def headroom_m(self, surface_amsl_m: float) -> float:
        """Room between the water at ``surface_amsl_m`` and the bridge's underside."""
        return self.underside_amsl_m - surface_amsl_m


@dataclass(frozen=True, slots=True)
class Crew:
    """A crew (people on foot or in a car) or a department unit (a vehicle with its crew): an asset
    besides the fleet, starting from its base."""

    id: str
    name: str
    name_zh: str
    department: str  # a department id of departments.yaml
    kind: Literal["crew", "unit"]
    type: str  # water_rescue, forest_fire, search_and_rescue, ambulance, traffic_police, township_team, ...
    base_lon: float
    base_lat: float
    people: int
    base_facility: str | None = None


@dataclass(frozen=True, slots=True)
class Township:
    """A township-level unit (town 镇 or street office 街道): the recipients of a hazard's warnings."""

    id: str
    kind: str  # town | street
    name: str
    name_zh: str
    area: Polygon | MultiPolygon
    population: int | None = None


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """One vehicle of the fleet file."""

    name: str
    type: Literal["copter", "boat"]
    url: str  # the service's MAVLink connection string
    system_id: int
    base_lon: float
    base_lat: float
    base_alt_m: float  # ground (copter) or water (boat) height at the base, metres AMSL
    cruise_speed_mps: float
    endurance_s: float
    signing_key: str | None = field(default=None, repr=False)  # MAVLink 2 signing secret (hex/base64)
    video_url: str | None = None  # where the console finds the vehicle's video (else asked of the vehicle)
    payloads: frozenset[str] = frozenset()  # zoom_camera, thermal_camera, loudspeaker, ... (PAYLOADS)
    air_draft_m: float = 1.5  # boats: height above the water (mast, antennas), for bridge headroom


# --- boundary models ----------------------------------------------------------------------------
# Unknown keys are ignored on purpose: other rooms (the simulators) may read their own keys
# from the same files.


def _lonlat_ok(lon: float, lat: float) -> bool:
    return -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    name_zh: str = ""
    synthetic: bool
    notice: str = ""
    bbox: tuple[float, float, float, float]
    center: tuple[float, float]
    timezone: str = "Asia/Shanghai"
    utm_epsg: int = UTM_48N

    @model_validator(mode="after")
    def _check(self) -> _Meta:
        w, s, e, n = self.bbox
        if not (w < e and s < n and _lonlat_ok(w, s) and _lonlat_ok(e, n)):
            raise ValueError(f"bbox {list(self.bbox)} must be [west, south, east, north] in WGS84")
        if not (w <= self.center[0] <= e and s <= self.center[1] <= n):
            raise ValueError(f"center {list(self.center)} lies outside bbox")
        if self.synthetic and not self.notice:
            raise ValueError("a synthetic district must carry a notice saying so")
        return self


class _Vehicle(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    type: Literal["copter", "boat"]
    url: str = Field(min_length=1)
    system_id: int = Field(ge=1, le=255)
    base: tuple[float, float]
    base_alt_m: float = 0.0
    cruise_speed_mps: float = Field(gt=0)
    endurance_s: float = Field(gt=0)
    signing_key: str | None = Field(None, min_length=1, repr=False)
    video_url: str | None = Field(None, min_length=1)
    payloads: list[str] = Field(default_factory=list)
    air_draft_m: float = Field(1.5, gt=0, le=20)

    @field_validator("payloads")
    @classmethod
    def _payloads(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - PAYLOADS)
        if unknown:
            raise ValueError(f"unknown payload(s) {unknown}; known: {', '.join(sorted(PAYLOADS))}")
        return v

    @field_validator("signing_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None:
            parse_key(v)  # 32 bytes as hex or base64; a ValueError names the problem
        return v

    @field_validator("base")
    @classmethod
    def _base(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not _lonlat_ok(*v):
            raise ValueError(f"base {list(v)} is not [lon, lat]")
        return v


class _Fleet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    vehicles: list[_Vehicle]

    @model_validator(mode="after")
    def _unique(self) -> _Fleet:
        for attr in ("name", "system_id", "url"):
            values = [getattr(v, attr) for v in self.vehicles]
            dup = {x for x in values if values.count(x) > 1}
            if dup:
                raise ValueError(f"vehicle {attr} must be unique, repeated: {sorted(map(str, dup))}")
        return self


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = ""
    name: str = Field(min_length=1)
    name_zh: str = ""


class _ZoneProps(_Named):
    id: str = Field(min_length=1)
    kind: Literal["prohibited", "height_limited", "controlled"]
    ceiling_agl_m: float | None = Field(None, ge=0)
    source: str = ""

    @model_validator(mode="after")
    def _ceiling(self) -> _ZoneProps:
        if self.kind == "height_limited" and self.ceiling_agl_m is None:
            raise ValueError("a height_limited zone needs ceiling_agl_m")
        return self


class _RiverProps(_Named):
    kind: Literal["river", "water"]


class _RoadProps(_Named):
    id: str = Field(min_length=1)
    class_: Literal["expressway", "arterial"] = Field(alias="class")


class _LandcoverProps(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str = Field(pattern=r"^[a-z_]+$")  # forest, farmland, urban, ...; the risk map reads forest


class _FacilityProps(_Named):
    id: str = Field(min_length=1)
    kind: str = Field(pattern=r"^[a-z_]+$")
    population: int | None = Field(None, ge=0)
    capacity: int | None = Field(None, ge=0)


class _BridgeProps(_Named):
    id: str = Field(min_length=1)
    river: str = Field(min_length=1)
    underside_amsl_m: float
    road: str | None = None


class _Crew(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    name_zh: str = ""
    department: str = Field(min_length=1)
    kind: Literal["crew", "unit"]
    type: str = Field(pattern=r"^[a-z_]+$")
    base: tuple[float, float]
    base_facility: str | None = None
    people: int = Field(ge=1, le=500)


class _Crews(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crews: list[_Crew]


class _TownshipProps(_Named):
    id: str = Field(min_length=1)
    kind: Literal["town", "street"]
    population: int | None = Field(None, ge=0)


# --- the district -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class District:
    """Everything geographic the service knows about its district (read-only)."""

    path: Path
    name: str
    name_zh: str
    synthetic: bool
    notice: str
    bbox: tuple[float, float, float, float]  # west, south, east, north
    center: tuple[float, float]  # lon, lat
    timezone: str
    utm_epsg: int
    boundary: Polygon | MultiPolygon
    airspace: tuple[Zone, ...]
    rivers: tuple[River, ...]
    water: Polygon | MultiPolygon  # union of the water areas
    forest: Polygon | MultiPolygon  # union of the forest areas of landcover.geojson (empty without it)
    roads: tuple[Road, ...]
    facilities: tuple[Facility, ...]
    terrain: Terrain
    fleet: tuple[VehicleSpec, ...]
    departments: Mapping[str, Department]  # by id, in file order: names, head, members, roster, channels
    playbooks: Playbooks  # the linkage playbooks (versioned)
    layers: Mapping[str, dict[str, Any]]  # raw GeoJSON for the API: boundary, rivers, roads, facilities, airspace
    sensors_path: Path
    scenario_path: Path | None = None
    patrols: tuple[Patrol, ...] = ()  # scheduled patrols (patrols.yaml, optional)
    meta: Mapping[str, Any] = field(default_factory=dict)
    bridges: tuple[Bridge, ...] = ()  # bridges.geojson, optional
    townships: tuple[Township, ...] = ()  # townships.geojson, optional
    crews: tuple[Crew, ...] = ()  # crews.yaml, optional: crews and department units

    @classmethod
    def load(cls, path: str | Path) -> District:
        """Read and validate a district folder; raise ``DistrictError`` on the first problem."""
        root = Path(path)
        if not root.is_dir():
            raise DistrictError(f"{root}: district folder not found")
        missing = [f for f in FILES if not (root / f).is_file()]
        if missing:
            raise DistrictError(f"{root}: missing file(s) {', '.join(missing)}")

        meta = _model(root / "district.yaml", _Meta, _yaml(root / "district.yaml"))
        fleet = _model(root / "fleet.yaml", _Fleet, _yaml(root / "fleet.yaml"))
        try:
            depts = load_departments(_yaml(root / "departments.yaml"), timezone=meta.timezone)
        except RosterError as err:
            raise DistrictError(f"{root / 'departments.yaml'}: {err}") from None
        try:
            playbooks = load_playbooks(root / "playbooks.yaml", departments=tuple(depts))
        except PlaybookError as err:
            raise DistrictError(str(err)) from None

        layers: dict[str, dict[str, Any]] = {}
        boundary_fc = layers["boundary"] = _geojson(root / "boundary.geojson")
        b_feats = _features(root / "boundary.geojson", boundary_fc, ("Polygon", "MultiPolygon"))
        if len(b_feats) != 1:
            raise DistrictError(f"{root / 'boundary.geojson'}: expected one Polygon feature, found {len(b_feats)}")
        boundary = b_feats[0][0]

        f = root / "airspace.geojson"
        layers["airspace"] = _geojson(f)
        zones = []
        for i, (geom, props) in enumerate(_features(f, layers["airspace"], ("Polygon", "MultiPolygon"))):
            p = _model(f, _ZoneProps, props, f"feature {i}")
            zones.append(Zone(p.id, p.name, p.kind, geom, p.ceiling_agl_m, p.name_zh, p.source))
        _unique_ids(f, [z.id for z in zones])

        f = root / "rivers.geojson"
        layers["rivers"] = _geojson(f)
        rivers, waters = [], []
        for i, (geom, props) in enumerate(_features(f, layers["rivers"], ("LineString", "Polygon", "MultiPolygon"))):
            p = _model(f, _RiverProps, props, f"feature {i}")
            if p.kind == "river":
                if not isinstance(geom, LineString):
                    raise DistrictError(f"{f}: feature {i} ({p.name}): a river centre line must be a LineString")
                rivers.append(River(p.id or p.name, p.name, p.name_zh, geom))
            else:
                if not isinstance(geom, (Polygon, MultiPolygon)):
                    raise DistrictError(f"{f}: feature {i} ({p.name}): a water area must be a Polygon")
                waters.append(geom)
        water = shapely.union_all(waters) if waters else MultiPolygon()
        shapely.prepare(water)

        f = root / "roads.geojson"
        layers["roads"] = _geojson(f)
        roads = []
        for i, (geom, props) in enumerate(_features(f, layers["roads"], ("LineString",))):
            p = _model(f, _RoadProps, props, f"feature {i}")
            roads.append(Road(p.id, p.name, p.name_zh, p.class_, geom))

        f = root / "facilities.geojson"
        layers["facilities"] = _geojson(f)
        facilities = []
        for i, (geom, props) in enumerate(_features(f, layers["facilities"], ("Point",))):
            p = _model(f, _FacilityProps, props, f"feature {i}")
            facilities.append(Facility(p.id, p.kind, p.name, p.name_zh, geom.x, geom.y, p.population, p.capacity))
        _unique_ids(f, [x.id for x in facilities])

        f = root / "bridges.geojson"  # optional: bridges over the rivers (boat headroom)
        bridges = []
        if f.is_file():
            layers["bridges"] = _geojson(f)
            river_ids = {r.id for r in rivers}
            road_ids = {r.id for r in roads}
            for i, (geom, props) in enumerate(_features(f, layers["bridges"], ("LineString",))):
                p = _model(f, _BridgeProps, props, f"feature {i}")
                if p.river not in river_ids:
                    raise DistrictError(f"{f}: bridge {p.id!r}: no river {p.river!r} in rivers.geojson")
                if p.road is not None and p.road not in road_ids:
                    raise DistrictError(f"{f}: bridge {p.id!r}: no road {p.road!r} in roads.geojson")
                bridges.append(Bridge(p.id, p.name, p.name_zh, p.river, geom, p.underside_amsl_m, p.road))
            _unique_ids(f, [b.id for b in bridges])

        f = root / "townships.geojson"  # optional: township-level areas (towns, street offices)
        townships = []
        if f.is_file():
            layers["townships"] = _geojson(f)
            for i, (geom, props) in enumerate(_features(f, layers["townships"], ("Polygon", "MultiPolygon"))):
                p = _model(f, _TownshipProps, props, f"feature {i}")
                townships.append(Township(p.id, p.kind, p.name, p.name_zh, geom, p.population))
            _unique_ids(f, [t.id for t in townships])

        f = root / "landcover.geojson"  # optional: land cover areas (kind forest, ...)
        forests = []
        if f.is_file():
            layers["landcover"] = _geojson(f)
            for i, (geom, props) in enumerate(_features(f, layers["landcover"], ("Polygon", "MultiPolygon"))):
                p = _model(f, _LandcoverProps, props, f"feature {i}")
                if p.kind == "forest":
                    forests.append(geom)
        forest = shapely.union_all(forests) if forests else MultiPolygon()
        shapely.prepare(forest)

        terrain = Terrain.load(root / "terrain.asc", utm_epsg=meta.utm_epsg)
        tw, ts, te, tn = terrain.bounds
        w, s, e, n = meta.bbox
        if tw > w or ts > s or te < e or tn < n:
            raise DistrictError(f"{root / 'terrain.asc'}: grid {terrain.bounds} does not cover the bbox {meta.bbox}")

        vehicles = []
        for v in fleet.vehicles:
            lon, lat = v.base
            if not (w <= lon <= e and s <= lat <= n):
                raise DistrictError(f"{root / 'fleet.yaml'}: vehicle {v.name!r} base {list(v.base)} lies outside the bbox")
            vehicles.append(VehicleSpec(v.name, v.type, v.url, v.system_id, lon, lat, v.base_alt_m,
                                        v.cruise_speed_mps, v.endurance_s, v.signing_key, v.video_url,
                                        frozenset(v.payloads), v.air_draft_m))

        crews = []
        f = root / "crews.yaml"  # optional: crews and department units
        if f.is_file():
            for c in _model(f, _Crews, _yaml(f)).crews:
                lon, lat = c.base
                if c.department not in depts:
                    raise DistrictError(f"{f}: crew {c.id!r}: no department {c.department!r} in departments.yaml")
                if not (w <= lon <= e and s <= lat <= n):
                    raise DistrictError(f"{f}: crew {c.id!r} base {list(c.base)} lies outside the bbox")
                if c.base_facility is not None and c.base_facility not in {x.id for x in facilities}:
                    raise DistrictError(f"{f}: crew {c.id!r}: no facility {c.base_facility!r}")
                crews.append(Crew(c.id, c.name, c.name_zh or c.name, c.department, c.kind, c.type, lon, lat,
                                  c.people, c.base_facility))
            _unique_ids(f, [c.id for c in crews])

        scenario = root / "scenario.yaml"
        patrols: tuple[Patrol, ...] = ()
        if (root / "patrols.yaml").is_file():
            try:
                patrols = load_patrols(_yaml(root / "patrols.yaml"))
            except PatrolError as err:
                raise DistrictError(f"{root / 'patrols.yaml'}: {err}") from None
            rivers_ids = {r.id for r in rivers}
            forest_ids = {str(f.get("properties", {}).get("id")) for f in layers.get("landcover", {}).get("features", [])}
            facility_ids = {x.id for x in facilities}
            for pt in patrols:
                t = pt.target
                missing = (("river", rivers_ids), ("forest", forest_ids), ("facility", facility_ids))
                for key, known in missing:
                    if key in t and str(t[key]) not in known:
                        raise DistrictError(f"{root / 'patrols.yaml'}: patrol {pt.id!r}: no {key} {t[key]!r}")
        return cls(
            path=root, name=meta.name, name_zh=meta.name_zh, synthetic=meta.synthetic, notice=meta.notice,
            bbox=meta.bbox, center=meta.center, timezone=meta.timezone, utm_epsg=meta.utm_epsg,
            boundary=boundary, airspace=tuple(zones), rivers=tuple(rivers), water=water,
            forest=forest, roads=tuple(roads), facilities=tuple(facilities), terrain=terrain, fleet=tuple(vehicles),
            departments=MappingProxyType(depts), playbooks=playbooks,
            layers=MappingProxyType(layers), sensors_path=root / "sensors.geojson",
            scenario_path=scenario if scenario.is_file() else None, patrols=patrols,
            meta=MappingProxyType(meta.model_dump()), bridges=tuple(bridges), townships=tuple(townships),
            crews=tuple(crews),
        )

    def on_water(self, lon: float, lat: float) -> bool:
        """True if the point lies in a water area (river or lake polygon)."""
        return bool(shapely.contains_xy(self.water, lon, lat))

    def in_district(self, lon: float, lat: float) -> bool:
        return bool(shapely.contains_xy(self.boundary, lon, lat))

    def facilities_of(self, kind: str) -> tuple[Facility, ...]:
        return tuple(f for f in self.facilities if f.kind == kind)

    def vehicle(self, name: str) -> VehicleSpec:
        for v in self.fleet:
            if v.name == name:
                return v
        raise KeyError(name)

    def zone(self, zone_id: str) -> Zone:
        for z in self.airspace:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)


# --- readers ------------------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DistrictError(f"{path}: cannot read YAML: {err}") from err
    if not isinstance(data, dict):
        raise DistrictError(f"{path}: expected a mapping at the top level")
    return data


def _geojson(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DistrictError(f"{path}: cannot read GeoJSON: {err}") from err
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise DistrictError(f"{path}: expected a GeoJSON FeatureCollection")
    return data


def _model(path: Path, model: type[BaseModel], data: Any, where: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors())
        prefix = f"{path}: {where}: " if where else f"{path}: "
        raise DistrictError(prefix + problems) from None


def _features(path: Path, fc: dict[str, Any], types: tuple[str, ...]) -> list[tuple[BaseGeometry, dict[str, Any]]]:
    out = []
    for i, feat in enumerate(fc["features"]):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise DistrictError(f"{path}: feature {i} is not a GeoJSON Feature")
        geom = feat.get("geometry")
        if not isinstance(geom, dict) or geom.get("type") not in types:
            got = geom.get("type") if isinstance(geom, dict) else geom
            raise DistrictError(f"{path}: feature {i}: geometry must be {' or '.join(types)}, got {got!r}")
        try:
            g = shape(geom)
        except Exception as err:  # shapely raises several types for malformed coordinates
            raise DistrictError(f"{path}: feature {i}: malformed {geom.get('type')}: {err}") from err
        if g.is_empty or not g.is_valid:
            raise DistrictError(f"{path}: feature {i}: invalid geometry ({shapely.is_valid_reason(g)})")
        minx, miny, maxx, maxy = g.bounds
        if not (_lonlat_ok(minx, miny) and _lonlat_ok(maxx, maxy)):
            raise DistrictError(f"{path}: feature {i}: coordinates are not WGS84 lon/lat")
        props = feat.get("properties")
        if not isinstance(props, dict):
            raise DistrictError(f"{path}: feature {i}: properties must be an object")
        out.append((g, props))
    return out


def _unique_ids(path: Path, ids: list[str]) -> None:
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        raise DistrictError(f"{path}: repeated id(s) {', '.join(dup)}")

