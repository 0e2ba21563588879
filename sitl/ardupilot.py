"""Launch real ArduPilot SITL binaries (``arducopter``, ``ardurover``) as a fleet.

A thin wrapper for maintainers who have the binaries (built with ``./waf configure
--board sitl``): N instances with distinct system ids (``--sysid``), ``-I N`` (TCP port
5760+10N), ``--home lat,lon,alt,heading``, ``--speedup``, each in its own working
directory (eeprom.bin, logs). It prints the connection string the service uses for each.

SITL's serial0 on TCP waits for a client before it boots; with ``out_port`` each instance
instead sends MAVLink to 127.0.0.1:out_port+N (``--serial0 udpclient:...``) and the service
uses ``udpin:127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sitl.fleet_sim import load_fleet, parse_url
from sitl.vehicle_sim import SimConfigError

__all__ = ["SitlInstance", "plan_instances", "plan_from_fleet", "build_command", "run_sitl",
           "run_from_args", "main"]

log = logging.getLogger(__name__)

# SITL frame models (Tools/autotest/pysim/vehicleinfo.py): quad "+" and the motorboat.
_MODEL = {"copter": "+", "boat": "motorboat"}
_M_PER_DEG = 111318.84502145034  # ArduPilot LOCATION_SCALING_FACTOR × 1e7
_TERMINATE_S = 5.0


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


async def run_sitl(instances: list[SitlInstance], *, speedup: float, workdir: Path,
                   defaults: dict[str, Path] | None = None, wipe: bool = False) -> None:
    """Start every instance, print its connection string, and stop them all on cancel."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for inst in instances:
            cwd = workdir / f"{inst.name or inst.index}"
            cwd.mkdir(parents=True, exist_ok=True)
            cmd = build_command(inst, speedup=speedup, wipe=wipe,
                                defaults=(defaults or {}).get(inst.kind))
            log_file = (cwd / "sitl.log").open("ab")
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=log_file,
                                                        stderr=asyncio.subprocess.STDOUT)
            log_file.close()
            procs.append(proc)
            print(f"{inst.name}: sysid {inst.system_id} pid {proc.pid} -> {inst.connection}", flush=True)
        waits = [asyncio.create_task(p.wait()) for p in procs]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for inst, p in zip(instances, procs):
            if p.returncode is not None:
                log.error("%s exited with %s (see its sitl.log)", inst.name, p.returncode)
        for w in waits:
            w.cancel()
    finally:
        for p in procs:  # only the processes started here, by their pid
            if p.returncode is None:
                p.terminate()
        for p in procs:
            if p.returncode is None:
                try:
                    async with asyncio.timeout(_TERMINATE_S):
                        await p.wait()
                except TimeoutError:
                    p.kill()
                    with contextlib.suppress(ProcessLookupError):
                        await p.wait()


def run_from_args(*, copter: Path | None = None, rover: Path | None = None, fleet: Path | None = None,
                  count: int = 1, home: str = "106.70,29.80,0,0", speedup: float = 1.0,
                  first_sysid: int = 1, out_port: int | None = None, workdir: Path = Path("sitl-run"),
                  copter_defaults: Path | None = None, rover_defaults: Path | None = None,
                  wipe: bool = False) -> int:
    """Blocking entry point for ``yingji sim ardupilot``; returns an exit code.

    With ``fleet``: one instance per fleet vehicle. Otherwise ``count`` instances of the one
    binary given, at ``home`` = "lon,lat[,alt_m[,heading_deg]]".
    """
    try:
        if fleet is not None:
            instances = plan_from_fleet(fleet, copter_binary=copter, rover_binary=rover)
        else:
            binary = copter or rover
            if binary is None:
                raise SimConfigError("give a copter or rover binary")
            h = [float(x) for x in home.split(",")] + [0.0, 0.0]
            instances = plan_instances(binary, count=count, home_lon=h[0], home_lat=h[1], home_alt_m=h[2],
                                       heading_deg=h[3], first_sysid=first_sysid, out_port=out_port)
        for inst in instances:
            if not inst.binary.is_file():
                raise SimConfigError(f"{inst.binary}: no such binary")
        defaults = {k: v for k, v in (("copter", copter_defaults), ("boat", rover_defaults)) if v}
        asyncio.run(run_sitl(instances, speedup=speedup, workdir=workdir, defaults=defaults, wipe=wipe))
    except KeyboardInterrupt:
        return 0
    except (SimConfigError, ValueError) as err:
        print(f"error: {err}", flush=True)
        return 2
    return 0


def main(argv: list[str] | None = None, *, prog: str = "python -m sitl.ardupilot") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--copter", type=Path, help="path to the arducopter binary")
    ap.add_argument("--rover", type=Path, help="path to the ardurover binary")
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
                         copter_defaults=a.copter_defaults, rover_defaults=a.rover_defaults, wipe=a.wipe)


if __name__ == "__main__":
    raise SystemExit(main())
