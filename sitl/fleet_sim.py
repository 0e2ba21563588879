"""Many simulated ArduPilot vehicles in one process, from a district ``fleet.yaml``.

Each vehicle of the fleet file gets its own socket, shaped by the service's connection
string (``url``): the service's ``udpin:H:P`` means the vehicle sends to H:P (as SITL with
MAVProxy ``--out``); ``udpout:H:P`` means the vehicle listens on P; ``tcp:H:P`` means the
vehicle serves TCP on P (as SITL's 5760). See docs/district-folder.md.

An optional top-level ``environment`` section sets wind (copters) and river current
(boats) for every vehicle (sitl.environment)::

    environment:
      seed: 7
      wind: {speed_mps: 6, from_deg: 270, gust_mps: 1.5}
      current: {speed_mps: 1.2, toward_deg: 60, water_only: true}   # water_only: rivers.geojson
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sitl.environment import Environment, EnvironmentConfigError
from sitl.ground import Grid, find_terrain
from sitl.vehicle_sim import SimConfigError, SimVehicle

__all__ = ["FleetVehicleSpec", "Endpoint", "parse_url", "load_fleet", "load_environment",
           "build_vehicles", "run_fleet", "run_from_args", "load_ground", "main"]

log = logging.getLogger(__name__)

GroundElevation = Callable[[float, float], float]  # (lon, lat) -> ground metres AMSL


class _FleetEntry(BaseModel):
    """One vehicle as written in fleet.yaml (the district-folder contract)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    type: Literal["copter", "boat"]
    url: str
    system_id: int = Field(ge=1, le=255)
    base: tuple[float, float]  # lon, lat
    cruise_speed_mps: float | None = Field(default=None, gt=0)
    endurance_s: float = Field(default=1800.0, gt=0)
    base_alt_m: float | None = None  # ground AMSL at the base, when the file gives it
    home_alt_m: float | None = None  # accepted synonym
    signing_key: str | None = Field(default=None, repr=False)  # MAVLink 2 key: hex or base64


class _FleetFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    vehicles: list[_FleetEntry]
    environment: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a simulated vehicle's socket lives, derived from the service's URL."""

    gcs_host: str = "127.0.0.1"
    gcs_port: int | None = None  # vehicle sends here (service uses udpin)
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None  # vehicle binds here (service uses udpout / tcp)
    tcp: bool = False


@dataclass(frozen=True, slots=True)
class FleetVehicleSpec:
    name: str
    kind: Literal["copter", "boat"]
    url: str
    endpoint: Endpoint
    system_id: int
    lon: float
    lat: float
    alt_amsl_m: float | None
    cruise_speed_mps: float | None
    endurance_s: float
    signing_key: str | None = field(default=None, repr=False)


def parse_url(url: str) -> Endpoint:
    """The vehicle-side endpoint for a service connection string.

    >>> parse_url("udpin:127.0.0.1:14551")
    Endpoint(gcs_host='127.0.0.1', gcs_port=14551, listen_host='127.0.0.1', listen_port=None, tcp=False)
    """
    scheme, _, rest = url.partition(":")
    host, _, port_s = rest.rpartition(":")
    try:
        port = int(port_s)
    except ValueError:
        raise SimConfigError(f"{url!r}: expected SCHEME:HOST:PORT") from None
    if not 0 < port < 65536 or not host:
        raise SimConfigError(f"{url!r}: bad host or port")
    # A service listening on every interface is reached on loopback.
    reach = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if scheme in ("udpin", "udp"):  # pymavlink: udp: is udpin:
        return Endpoint(gcs_host=reach, gcs_port=port)
    if scheme == "udpout":
        return Endpoint(listen_host=reach, listen_port=port)
    if scheme == "tcp":
        return Endpoint(listen_host=reach, listen_port=port, tcp=True)
    raise SimConfigError(f"{url!r}: the simulator serves udpin:, udpout: and tcp: only")


def load_fleet(path: Path) -> list[FleetVehicleSpec]:
    """Read and validate fleet.yaml; raise SimConfigError naming the problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        fleet = _FleetFile.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as err:
        raise SimConfigError(f"{path}: {err}") from err
    specs = [
        FleetVehicleSpec(
            name=e.name, kind=e.type, url=e.url, endpoint=parse_url(e.url), system_id=e.system_id,
            lon=e.base[0], lat=e.base[1],
            alt_amsl_m=e.base_alt_m if e.base_alt_m is not None else e.home_alt_m,
            cruise_speed_mps=e.cruise_speed_mps, endurance_s=e.endurance_s,
            signing_key=e.signing_key)
        for e in fleet.vehicles
    ]
    _check_unique(path, specs)
    return specs


def load_environment(path: Path, district: Path | None = None) -> Environment:
    """The fleet file's ``environment`` section (calm when absent); a ``water_only``
    current reads the water areas of ``district`` (default: the fleet file's folder).
    SimConfigError naming the problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SimConfigError(f"{path}: {err}") from err
    section = raw.get("environment") if isinstance(raw, dict) else None
    try:
        return Environment.from_mapping(section, district_dir=district or Path(path).parent)
    except EnvironmentConfigError as err:
        raise SimConfigError(f"{path}: environment: {err}") from err


def _check_unique(path: Path, specs: list[FleetVehicleSpec]) -> None:
    seen: dict[object, str] = {}
    for s in specs:
        # FACTS: all SITL instances default to system id 1: a fleet needs distinct ids.
        keys: list[object] = [("name", s.name), ("sysid", s.system_id)]
        ep = s.endpoint
        keys.append(("port", ep.gcs_port) if ep.gcs_port is not None else ("listen", ep.listen_port))
        for k in keys:
            if k in seen:
                raise SimConfigError(f"{path}: {s.name} repeats {k[0]} {k[1]} of {seen[k]}")
            seen[k] = s.name


def build_vehicles(specs: list[FleetVehicleSpec], *, speedup: float = 1.0,
                   ekf_ready_after_s: float = 5.0, fs_gcs_enable: bool = False,
                   ground_amsl_m: GroundElevation | None = None,
                   tick_wall_s: float = 0.05, images_dir: Path | None = None,
                   district_dir: Path | None = None,
                   environment: Environment | None = None) -> list[SimVehicle]:
    """One SimVehicle per spec; home altitude from the file, else ``ground_amsl_m``, else 0.
    ``environment``: wind and current for every vehicle (each gets its own gust stream).

    Cameras write their synthetic photos under ``images_dir/<vehicle>`` (drawn from the
    district's layers when ``district_dir`` is given) and announce a video address.
    """
    vehicles = []
    for s in specs:
        alt = s.alt_amsl_m
        if alt is None:
            alt = ground_amsl_m(s.lon, s.lat) if ground_amsl_m else 0.0
        ep = s.endpoint
        vehicles.append(SimVehicle(
            kind=s.kind, system_id=s.system_id, home_lon=s.lon, home_lat=s.lat, home_alt_amsl_m=alt,
            gcs_host=ep.gcs_host, gcs_port=ep.gcs_port, listen_host=ep.listen_host,
            listen_port=ep.listen_port, tcp=ep.tcp, speedup=speedup,
            ekf_ready_after_s=ekf_ready_after_s, cruise_speed_mps=s.cruise_speed_mps,
            endurance_s=s.endurance_s, fs_gcs_enable=fs_gcs_enable, name=s.name,
            tick_wall_s=tick_wall_s, signing_key=s.signing_key, ground_amsl_m=ground_amsl_m,
            images_dir=images_dir / s.name if images_dir is not None else None, district_dir=district_dir,
            video_uri=f"rtsp://127.0.0.1:8554/{s.name}", environment=environment))
    return vehicles


async def run_fleet(fleet_yaml_path: Path, *, speedup: float = 1.0, ekf_ready_after_s: float = 5.0,
                    fs_gcs_enable: bool = False, ground_amsl_m: GroundElevation | None = None,
                    on_started: Callable[[list[SimVehicle]], None] | None = None,
                    district: Path | None = None, flat_ground: bool = False,
                    images_dir: Path | None = None) -> None:
    """Run every vehicle of the fleet file in one TaskGroup until cancelled.

    The ground is ``ground_amsl_m``, else the district's ``terrain.asc`` (``district``, or
    the folder of the fleet file), else flat at each base (``flat_ground`` forces flat).
    """
    specs = load_fleet(fleet_yaml_path)
    environment = load_environment(fleet_yaml_path, district)
    if ground_amsl_m is None and not flat_ground:
        ground_amsl_m = load_ground(fleet_yaml_path, district)
    vehicles = build_vehicles(specs, speedup=speedup, ekf_ready_after_s=ekf_ready_after_s,
                              fs_gcs_enable=fs_gcs_enable, ground_amsl_m=ground_amsl_m, images_dir=images_dir,
                              district_dir=district or fleet_yaml_path.parent,
                              environment=environment)
    async with asyncio.TaskGroup() as tg:
        for v in vehicles:
            tg.create_task(v.run(), name=f"sim-{v.name}")
        async with asyncio.timeout(10.0):
            for v in vehicles:
                await v.started.wait()
        for spec, v in zip(specs, vehicles):
            log.info("%s (%s, sysid %d): service connects with %s (vehicle port %d)",
                     v.name, v.kind, v.system_id, spec.url, v.local_port)
        if on_started is not None:
            on_started(vehicles)


def load_ground(fleet_yaml_path: Path, district: Path | None = None) -> GroundElevation | None:
    """The district's terrain as the simulator's ground (sitl.ground.find_terrain), or None."""
    path = find_terrain(fleet_yaml_path, district)
    if path is None:
        log.info("no terrain.asc beside %s: flat ground at each base", fleet_yaml_path)
        return None
    grid = Grid.load(path)
    log.info("ground from %s (bounds %s)", path, grid.bounds)
    return grid.elevation_at


def run_from_args(fleet: Path, speedup: float = 1.0, *, ekf_ready_after_s: float = 5.0,
                  fs_gcs_enable: bool = False, district: Path | None = None,
                  flat_ground: bool = False) -> int:
    """Blocking entry point for ``yingji sim fleet``; returns a process exit code."""
    def announce(vehicles: list[SimVehicle]) -> None:
        for v in vehicles:
            print(f"{v.name}: {v.kind} sysid {v.system_id} on port {v.local_port}", flush=True)

    try:
        asyncio.run(run_fleet(fleet, speedup=speedup, ekf_ready_after_s=ekf_ready_after_s,
                              fs_gcs_enable=fs_gcs_enable, on_started=announce,
                              district=district, flat_ground=flat_ground))
    except KeyboardInterrupt:
        return 0
    except SimConfigError as err:
        log.error("%s", err)
        print(f"error: {err}", flush=True)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sitl.fleet_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", type=Path, required=True, help="fleet.yaml of a district folder")
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--ekf-ready-after", type=float, default=5.0, help="sim seconds (SITL: ~41)")
    ap.add_argument("--fs-gcs", action="store_true", help="FS_GCS_ENABLE=1 on every vehicle")
    ap.add_argument("--district", type=Path, help="district folder whose terrain.asc is the "
                    "ground (default: the fleet file's folder, if it has one)")
    ap.add_argument("--flat-ground", action="store_true", help="ignore terrain.asc")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run_from_args(a.fleet, a.speedup, ekf_ready_after_s=a.ekf_ready_after, fs_gcs_enable=a.fs_gcs,
                         district=a.district, flat_ground=a.flat_ground)


if __name__ == "__main__":
    raise SystemExit(main())
