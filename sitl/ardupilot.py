"""Launch real ArduPilot SITL binaries (``arducopter``, ``ardurover``) as a fleet.

A thin wrapper for maintainers who have the binaries (built with ``./waf configure
--board sitl``): N instances with distinct system ids (``--sysid``), ``-I N`` (TCP port
5760+10N), ``--home lat,lon,alt,heading``, ``--speedup``, each in its own working
directory (eeprom.bin, logs). It prints the connection string the service uses for each.

SITL's serial0 on TCP waits for a client before it boots; with ``out_port`` each instance
instead sends MAVLink to 127.0.0.1:out_port+N (``--serial0 udpclient:...``) and the service
uses ``udpin:127.0.0.1:PORT``.

A scenario fleet (``--copters N --boats M``): N copters and M boats at the bases of the
district folder's fleet.yaml (cycling through the bases, 10 m apart when a base is used
again), system ids 1..N+M, and ``--write-fleet PATH`` writes the fleet file the service
reads (its ``url`` strings, bases and speeds). Binaries: ``--copter``/``--rover``, else the
folder ``$YINGJI_ARDUPILOT_BIN`` (holding ``arducopter`` and ``ardurover``), else PATH.
Default parameter files (``copter.parm``, ``rover.parm``, ``motorboat.parm``) are taken
from that folder or from the ArduPilot tree it was built in
(``Tools/autotest/default_params``), when present. The district folder: ``--district``,
else ``$YINGJI_DISTRICT_DIR``, else ``$YINGJI_DATA_DIR/district`` (``var/district``), the
synthetic Yubei folder, generated there when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from sitl.fleet_sim import FleetVehicleSpec, load_fleet, parse_url
from sitl.vehicle_sim import SimConfigError

__all__ = ["SitlInstance", "SitlBinariesNotFound", "BIN_ENV", "plan_instances", "plan_from_fleet",
           "plan_scenario", "build_command", "find_binaries", "require_binaries", "find_defaults",
           "district_folder", "fleet_document", "write_fleet", "started_sitl", "run_sitl",
           "run_from_args", "main"]

log = logging.getLogger(__name__)

# SITL frame models (Tools/autotest/pysim/vehicleinfo.py): quad "+" and the motorboat.
_MODEL = {"copter": "+", "boat": "motorboat"}
_M_PER_DEG = 111318.84502145034  # ArduPilot LOCATION_SCALING_FACTOR × 1e7
_TERMINATE_S = 5.0
BIN_ENV = "YINGJI_ARDUPILOT_BIN"
_BINARY = {"copter": "arducopter", "boat": "ardurover"}
# sim_vehicle.py's default parameter files per kind (Tools/autotest/default_params).
_DEFAULTS = {"copter": ("copter.parm",), "boat": ("rover.parm", "motorboat.parm")}


class SitlBinariesNotFound(SimConfigError):
    """The arducopter / ardurover binaries needed are not where they were looked for."""


@dataclass(frozen=True, slots=True)
class SitlInstance:
    """One SITL process to start."""

    index: int  # -I: TCP port 5760 + 10 × index
    kind: Literal["copter", "boat"]
    binary: Path
    system_id: int
    lon: float
    lat: float
    alt_amsl_m: float
    heading_deg: float
    out_host: str | None = None  # --serial0 udpclient:out_host:out_port
    out_port: int | None = None
    name: str = ""
    cruise_speed_mps: float | None = None  # for the fleet file written (--write-fleet)
    endurance_s: float | None = None

    @property
    def connection(self) -> str:
        """The service's connection string for this instance."""
        if self.out_port is not None:
            return f"udpin:{self.out_host}:{self.out_port}"
        return f"tcp:127.0.0.1:{5760 + 10 * self.index}"


def _kind_of(binary: Path) -> Literal["copter", "boat"]:
    name = binary.name.lower()
    if "copter" in name:
        return "copter"
    if "rover" in name:
        return "boat"
    raise SimConfigError(f"{binary}: cannot tell copter from rover by its name")


def plan_instances(binary: Path, *, count: int, home_lon: float, home_lat: float,
                   home_alt_m: float = 0.0, heading_deg: float = 0.0, first_sysid: int = 1,
                   first_index: int = 0, spacing_m: float = 10.0,
                   out_port: int | None = None) -> list[SitlInstance]:
    """``count`` instances of one binary, spaced east of home, sysids from ``first_sysid``."""
    if count < 1 or first_sysid + count - 1 > 255:
        raise SimConfigError("need 1..255 instances with system ids up to 255")
    kind = _kind_of(binary)
    deg_east = spacing_m / (_M_PER_DEG * math.cos(math.radians(home_lat)))
    return [SitlInstance(first_index + i, kind, binary, first_sysid + i, home_lon + i * deg_east, home_lat,
                         home_alt_m, heading_deg, "127.0.0.1" if out_port else None,
                         out_port + i if out_port else None, f"{kind}-{first_sysid + i}")
            for i in range(count)]


def plan_from_fleet(fleet: Path, *, copter_binary: Path | None, rover_binary: Path | None) -> list[SitlInstance]:
    """One instance per vehicle of fleet.yaml; ``udpin:`` and ``tcp:127.0.0.1:5760+10N`` URLs only."""
    out = []
    for i, s in enumerate(load_fleet(fleet)):
        binary = copter_binary if s.kind == "copter" else rover_binary
        if binary is None:
            raise SimConfigError(f"{s.name}: no binary given for a {s.kind}")
        ep = parse_url(s.url)
        if ep.tcp:
            if ep.listen_port != 5760 + 10 * i:
                raise SimConfigError(f"{s.name}: SITL instance {i} serves tcp port {5760 + 10 * i}, "
                                     f"not {ep.listen_port}")
            host, port = None, None
        elif ep.gcs_port is not None:
            host, port = ep.gcs_host, ep.gcs_port
        else:
            raise SimConfigError(f"{s.name}: {s.url}: use udpin: or tcp: for real SITL")
        out.append(SitlInstance(i, s.kind, binary, s.system_id, s.lon, s.lat, s.alt_amsl_m or 0.0,
                                0.0, host, port, s.name))
    return out


def plan_scenario(specs: Sequence[FleetVehicleSpec], *, copters: int, boats: int,
                  copter_binary: Path | None, rover_binary: Path | None,
                  out_port: int | None = None, first_sysid: int = 1,
                  spacing_m: float = 10.0) -> list[SitlInstance]:
    """``copters`` + ``boats`` instances at the bases of a district's fleet (``specs``).

    Copters take the copter bases in turn, boats the boat bases; a base used again puts
    the next vehicle ``spacing_m`` further east. Instances are numbered 0.. (copters
    first), system ids from ``first_sysid``; ``out_port``: instance N sends to
    127.0.0.1:out_port+N (``udpin:`` URLs), else each serves TCP 5760+10N.
    """
    if copters < 0 or boats < 0 or copters + boats < 1:
        raise SimConfigError(f"need at least one vehicle (copters={copters}, boats={boats})")
    if first_sysid < 1 or first_sysid + copters + boats - 1 > 255:
        raise SimConfigError(f"system ids {first_sysid}..{first_sysid + copters + boats - 1} "
                             f"do not fit MAVLink's 1..255")
    out: list[SitlInstance] = []
    for kind, count, binary in (("copter", copters, copter_binary), ("boat", boats, rover_binary)):
        if count == 0:
            continue
        bases = [s for s in specs if s.kind == kind]
        if not bases:
            raise SimConfigError(f"the district's fleet has no {kind} base for {count} {kind}(s)")
        if binary is None:
            raise SitlBinariesNotFound(f"no {_BINARY[kind]} binary for the {kind}s")
        for k in range(count):
            base = bases[k % len(bases)]
            again = k // len(bases)
            deg_east = again * spacing_m / (_M_PER_DEG * math.cos(math.radians(base.lat)))
            index = len(out)
            out.append(SitlInstance(
                index, kind, binary, first_sysid + index, round(base.lon + deg_east, 7), base.lat,
                base.alt_amsl_m or 0.0, 0.0, "127.0.0.1" if out_port else None,
                out_port + index if out_port else None,
                base.name if again == 0 else f"{base.name}-{again + 1}",
                base.cruise_speed_mps, base.endurance_s))
    return out


def fleet_document(instances: Sequence[SitlInstance]) -> dict[str, object]:
    """The fleet.yaml content for these instances (docs/district-folder.md)."""
    vehicles = []
    for inst in instances:
        v: dict[str, object] = {"name": inst.name or f"{inst.kind}-{inst.system_id}",
                                "type": inst.kind, "url": inst.connection,
                                "system_id": inst.system_id, "base": [inst.lon, inst.lat],
                                "base_alt_m": inst.alt_amsl_m}
        if inst.cruise_speed_mps is not None:
            v["cruise_speed_mps"] = inst.cruise_speed_mps
        if inst.endurance_s is not None:
            v["endurance_s"] = inst.endurance_s
        vehicles.append(v)
    return {"vehicles": vehicles}


def write_fleet(path: Path, instances: Sequence[SitlInstance]) -> Path:
    """Write the fleet file the service needs to reach these instances; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# ArduPilot SITL fleet written by `yingji sim ardupilot`: the service connects "
            "with these urls\n" + yaml.safe_dump(fleet_document(instances), sort_keys=False,
                                                 allow_unicode=True))
    path.write_text(text, encoding="utf-8")
    return path


def find_binaries(*, copter: Path | None = None, rover: Path | None = None,
                  env: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``{"copter": .../arducopter, "boat": .../ardurover}`` for those found: the paths
    given, else ``$YINGJI_ARDUPILOT_BIN``, else PATH."""
    env = os.environ if env is None else env
    folder = env.get(BIN_ENV)
    found: dict[str, Path] = {}
    for kind, given in (("copter", copter), ("boat", rover)):
        if given is not None:
            found[kind] = Path(given)
            continue
        if folder:
            candidate = Path(folder) / _BINARY[kind]
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found[kind] = candidate
            continue
        which = shutil.which(_BINARY[kind], path=env.get("PATH"))
        if which:
            found[kind] = Path(which)
    return found


def require_binaries(kinds: set[str], found: Mapping[str, Path]) -> None:
    """SitlBinariesNotFound naming what is missing and where it was looked for."""
    missing = sorted(_BINARY[k] for k in kinds if k not in found or not Path(found[k]).is_file())
    if missing:
        raise SitlBinariesNotFound(
            f"ArduPilot SITL binaries not found: set {BIN_ENV} to a folder holding arducopter "
            f"and ardurover (build with ./waf configure --board sitl), or put them on PATH "
            f"(missing: {', '.join(missing)})")


def find_defaults(binary: Path) -> dict[str, Path] | None:
    """Default parameter files beside the binary or in the ArduPilot tree it was built in
    (``build/sitl/bin`` → ``Tools/autotest/default_params``); ``None`` if none there.
    Returns ``{"copter": Path, "boat": Path}`` entries whose files exist; a boat's entry is
    SITL's comma-separated ``rover.parm,motorboat.parm``."""
    places = [binary.parent]
    if len(binary.parents) >= 4:
        places.append(binary.parents[3] / "Tools" / "autotest" / "default_params")
    for place in places:
        out: dict[str, Path] = {}
        for kind, names in _DEFAULTS.items():
            files = [place / n for n in names]
            if all(f.is_file() for f in files):
                out[kind] = Path(",".join(str(f) for f in files))
        if out:
            return out
    return None


def district_folder(explicit: Path | None = None, *, env: Mapping[str, str] | None = None,
                    generate: bool = True) -> Path:
    """The district folder: ``explicit``, else ``$YINGJI_DISTRICT_DIR``, else
    ``$YINGJI_DATA_DIR/district`` (default data folder ``var``, as the service's settings),
    where the synthetic Yubei folder is generated when missing and ``generate``."""
    env = os.environ if env is None else env
    chosen = explicit or (Path(env["YINGJI_DISTRICT_DIR"]) if env.get("YINGJI_DISTRICT_DIR") else None)
    if chosen is not None:
        if not (Path(chosen) / "fleet.yaml").is_file():
            raise SimConfigError(f"{chosen}: not a district folder (no fleet.yaml)")
        return Path(chosen)
    default = Path(env.get("YINGJI_DATA_DIR") or "var") / "district"
    if not (default / "fleet.yaml").is_file():
        if not generate:
            raise SimConfigError(f"{default}: no district folder; give --district or set "
                                 f"YINGJI_DISTRICT_DIR")
        from sitl.scenarios.yubei.generate import generate as generate_yubei

        log.info("generating the synthetic Yubei district into %s", default)
        generate_yubei(default)
    return default


def build_command(inst: SitlInstance, *, speedup: float, defaults: Path | None = None,
                  wipe: bool = False) -> list[str]:
    """The SITL command line for one instance (see ``arducopter --help``)."""
    cmd = [str(inst.binary), "--model", _MODEL[inst.kind], "--speedup", f"{speedup:g}",
           "-I", str(inst.index), "--sysid", str(inst.system_id),
           "--home", f"{inst.lat:.7f},{inst.lon:.7f},{inst.alt_amsl_m:.1f},{inst.heading_deg:.0f}"]
    if defaults is not None:
        cmd += ["--defaults", str(defaults)]
    if wipe:
        cmd.append("--wipe")
    if inst.out_port is not None:
        cmd += ["--serial0", f"udpclient:{inst.out_host}:{inst.out_port}"]
    return cmd


@contextlib.asynccontextmanager
async def started_sitl(instances: Sequence[SitlInstance], *, speedup: float, workdir: Path,
                       defaults: Mapping[str, Path] | None = None, wipe: bool = False,
                       announce: bool = False) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Start every instance (each in ``workdir/<name>``, output in its sitl.log); stop
    the processes started here, by their pid, when the context exits."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for inst in instances:
            cwd = workdir / f"{inst.name or inst.index}"
            cwd.mkdir(parents=True, exist_ok=True)
            cmd = build_command(inst, speedup=speedup, wipe=wipe,
                                defaults=(defaults or {}).get(inst.kind))
            with (cwd / "sitl.log").open("ab") as log_file:
                proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=log_file,
                                                            stderr=asyncio.subprocess.STDOUT)
            procs.append(proc)
            if announce:
                print(f"{inst.name}: sysid {inst.system_id} pid {proc.pid} -> {inst.connection}",
                      flush=True)
        yield procs
    finally:
        for p in procs:  # only the processes started here, by their pid
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in procs:
            if p.returncode is None:
                try:
                    async with asyncio.timeout(_TERMINATE_S):
                        await p.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
                    await p.wait()


async def run_sitl(instances: list[SitlInstance], *, speedup: float, workdir: Path,
                   defaults: Mapping[str, Path] | None = None, wipe: bool = False) -> None:
    """Start every instance, print its connection string, and stop them all on cancel."""
    async with started_sitl(instances, speedup=speedup, workdir=workdir, defaults=defaults,
                            wipe=wipe, announce=True) as procs:
        waits = [asyncio.create_task(p.wait()) for p in procs]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        for inst, p in zip(instances, procs):
            if p.returncode is not None:
                log.error("%s exited with %s (see its sitl.log)", inst.name, p.returncode)


def run_from_args(*, copter: Path | None = None, rover: Path | None = None, fleet: Path | None = None,
                  count: int = 1, home: str = "106.70,29.80,0,0", speedup: float = 1.0,
                  first_sysid: int = 1, out_port: int | None = None, workdir: Path = Path("sitl-run"),
                  copter_defaults: Path | None = None, rover_defaults: Path | None = None,
                  wipe: bool = False, copters: int | None = None, boats: int | None = None,
                  district: Path | None = None, write_fleet_path: Path | None = None,
                  dry_run: bool = False, env: Mapping[str, str] | None = None) -> int:
    """Blocking entry point for ``yingji sim ardupilot``; returns an exit code.

    With ``copters``/``boats``: that many instances at the district's bases (the binaries
    found by :func:`find_binaries`). With ``fleet``: one instance per fleet vehicle.
    Otherwise ``count`` instances of the one binary given, at ``home`` =
    "lon,lat[,alt_m[,heading_deg]]". ``write_fleet_path`` writes the service's fleet file;
    ``dry_run`` prints the command lines and starts nothing.
    """
    try:
        found = find_binaries(copter=copter, rover=rover, env=env)
        if copters is not None or boats is not None:
            n_copters, n_boats = copters or 0, boats or 0
            needed = {k for k, n in (("copter", n_copters), ("boat", n_boats)) if n > 0}
            require_binaries(needed, found)
            folder = district_folder(district, env=env)
            instances = plan_scenario(load_fleet(folder / "fleet.yaml"), copters=n_copters,
                                      boats=n_boats, copter_binary=found.get("copter"),
                                      rover_binary=found.get("boat"), out_port=out_port,
                                      first_sysid=first_sysid)
        elif fleet is not None:
            kinds = {s.kind for s in load_fleet(fleet)}
            require_binaries(kinds, found)
            instances = plan_from_fleet(fleet, copter_binary=found.get("copter"),
                                        rover_binary=found.get("boat"))
        else:
            binary = copter or rover
            if binary is None:
                raise SimConfigError("give --copters/--boats, --fleet, or a --copter or --rover binary")
            h = [float(x) for x in home.split(",")] + [0.0, 0.0]
            instances = plan_instances(binary, count=count, home_lon=h[0], home_lat=h[1], home_alt_m=h[2],
                                       heading_deg=h[3], first_sysid=first_sysid, out_port=out_port)
        for inst in instances:
            if not inst.binary.is_file():
                raise SitlBinariesNotFound(f"{inst.binary}: no such binary")
        defaults = {k: v for k, v in (("copter", copter_defaults), ("boat", rover_defaults)) if v}
        for kind, binary in found.items():
            if kind not in defaults:
                extra = (find_defaults(binary) or {}).get(kind)
                if extra is not None:
                    defaults[kind] = extra
        if write_fleet_path is not None:
            write_fleet(write_fleet_path, instances)
            print(f"fleet file for the service: {write_fleet_path}", flush=True)
        if dry_run:
            for inst in instances:
                cmd = build_command(inst, speedup=speedup, wipe=wipe, defaults=defaults.get(inst.kind))
                print(f"{inst.name} -> {inst.connection}: {' '.join(cmd)}", flush=True)
            return 0
        asyncio.run(run_sitl(instances, speedup=speedup, workdir=workdir, defaults=defaults, wipe=wipe))
    except KeyboardInterrupt:
        return 0
    except (SimConfigError, ValueError) as err:
        print(f"error: {err}", flush=True)
        return 2
    return 0


def main(argv: list[str] | None = None, *, prog: str = "python -m sitl.ardupilot") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--copters", type=int, help="this many copters at the district's copter bases")
    ap.add_argument("--boats", type=int, help="this many boats at the district's boat bases")
    ap.add_argument("--district", type=Path, help="district folder whose fleet.yaml gives the bases "
                    "(default: $YINGJI_DISTRICT_DIR, else $YINGJI_DATA_DIR/district, generated)")
    ap.add_argument("--write-fleet", type=Path, metavar="PATH",
                    help="write the fleet.yaml the service uses to reach the instances")
    ap.add_argument("--dry-run", action="store_true", help="print the command lines, start nothing")
    ap.add_argument("--copter", type=Path, help=f"path to the arducopter binary (default: ${BIN_ENV} or PATH)")
    ap.add_argument("--rover", type=Path, help=f"path to the ardurover binary (default: ${BIN_ENV} or PATH)")
    ap.add_argument("--fleet", type=Path, help="one instance per vehicle of this fleet.yaml")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--home", default="106.70,29.80,0,0", help="lon,lat[,alt_m[,heading_deg]]")
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--sysid", type=int, default=1, help="first system id")
    ap.add_argument("--out-port", type=int, help="send to 127.0.0.1:PORT+N instead of serving TCP")
    ap.add_argument("--workdir", type=Path, default=Path("sitl-run"))
    ap.add_argument("--copter-defaults", type=Path, help="e.g. Tools/autotest/default_params/copter.parm")
    ap.add_argument("--rover-defaults", type=Path, help="e.g. .../rover.parm plus motorboat.parm")
    ap.add_argument("--wipe", action="store_true", help="wipe eeprom (parameters) at start")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return run_from_args(copter=a.copter, rover=a.rover, fleet=a.fleet, count=a.count, home=a.home,
                         speedup=a.speedup, first_sysid=a.sysid, out_port=a.out_port, workdir=a.workdir,
                         copter_defaults=a.copter_defaults, rover_defaults=a.rover_defaults, wipe=a.wipe,
                         copters=a.copters, boats=a.boats, district=a.district,
                         write_fleet_path=a.write_fleet, dry_run=a.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
