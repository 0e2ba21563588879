"""Benchmarks: ``python -m tests.bench [ingest|alarm|linkage|mavlink|fleet|risk|assign|paths|fanout] [options]``
(``make bench`` runs them all).

They print figures; they pass or fail nothing and are not part of the test suite
(pytest ignores tests/bench). Figures are relative to the machine they ran on: the
header says which.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time

from tests.bench import alarm_to_mission, assign, fanout, fleet, ingest, linkage, mavlink, risk


def _mosquitto_version() -> str:
    try:
        out = subprocess.run([str(ingest.MOSQUITTO_PUB), "--help"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "mosquitto_pub not found"
    lines = [line for line in (out.stdout + out.stderr).splitlines() if "version" in line]
    return lines[0].strip().rstrip(".") if lines else "mosquitto_pub (version unknown)"


def header() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"Yingji benchmarks — {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
            f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {platform.machine()}, "
            f"{platform.system()} {platform.release()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
            f"python {platform.python_version()} ({sys.executable}); {_mosquitto_version()}\n"
            "Broker, clients and service share these CPUs: figures are relative, not capacities.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("which", nargs="?",
                        choices=("all", "ingest", "alarm", "linkage", "mavlink", "fleet", "risk", "assign", "paths",
                                 "fanout"),
                        default="all")
    parser.add_argument("--messages", type=int, default=None,
                        help="ingest: messages per load; mavlink: packets in the buffer (default 200000)")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1, help="ingest: publish QoS (default 1)")
    parser.add_argument("--samples", type=int, default=20,
                        help="alarm: alarms to time; linkage: level changes to time (default 20)")
    parser.add_argument("--vehicles", default="50,100,200", help="fleet: fleet sizes (default 50,100,200)")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"fleet: measurement window per size (default {fleet.WINDOW_S:g}); "
                             "fanout: publishing time (default 20)")
    parser.add_argument("--clients", type=int, default=500, help="fanout: connected consoles (default 500)")
    parser.add_argument("--sndbuf", type=int, default=None,
                        help="fanout: the server sockets' send buffer in bytes (default: the service's, "
                             "YINGJI_HTTP_SEND_BUFFER_BYTES; 0: the kernel's)")
    args = parser.parse_args(argv)
    print(header(), flush=True)
    if args.which in ("all", "ingest"):
        print()
        loads = [ingest.Load(load.name, args.messages or load.messages, load.records, qos=args.qos)
                 for load in ingest.DEFAULT_LOADS]
        started = time.monotonic()
        asyncio.run(ingest.run(loads))
        print(f"(ingest benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "alarm"):
        print()
        started = time.monotonic()
        asyncio.run(alarm_to_mission.run(args.samples))
        print(f"(alarm benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "linkage"):
        print()
        started = time.monotonic()
        asyncio.run(linkage.run(args.samples))
        print(f"(linkage benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "mavlink"):
        print()
        started = time.monotonic()
        asyncio.run(mavlink.run(args.messages or 200_000))
        print(f"(mavlink benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "fleet"):
        print()
        started = time.monotonic()
        asyncio.run(fleet.run(tuple(int(n) for n in args.vehicles.split(",")), args.seconds or fleet.WINDOW_S))
        print(f"(fleet benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "risk"):
        print()
        started = time.monotonic()
        risk.run()
        print(f"(risk benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "assign"):
        print()
        started = time.monotonic()
        assign.run()
        print(f"(assignment benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "paths"):
        from tests.bench import paths  # its own module: the path planner

        print()
        started = time.monotonic()
        paths.run()
        print(f"(path benchmark: {time.monotonic() - started:.0f} s)", flush=True)
    if args.which in ("all", "fanout"):
        print()
        started = time.monotonic()
        asyncio.run(fanout.run(args.clients, args.seconds or 20.0, args.sndbuf))
        print(f"(fan-out benchmark: {time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
