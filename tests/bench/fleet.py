"""Fleet benchmark: vehicles tracked against CPU, and telemetry latency.

For each fleet size N, two child processes share the machine:

* the simulator: N ``sitl.vehicle_sim.SimVehicle`` in one event loop (speed-up 1, the
  tick of ``sitl.fleet_sim``), each on its own UDP socket sending to its own ground port;
* the ground side: a ``uav.fleet.Fleet`` of N entries ``udpin:127.0.0.1:PORT`` (one link
  per vehicle, as a district fleet.yaml has them) with an event counter as ``on_event``,
  on uvloop when installed (as uvicorn runs the service). Each Vehicle asks for its
  streams on first contact (``uav.vehicle.DEFAULT_STREAMS_HZ``: GLOBAL_POSITION_INT at
  4 Hz, ~17 messages per second in all).

CPU is read from ``/proc/<pid>/stat`` (utime + stime) of each child at the start and end
of the measurement window; 100 % is one core.

Latency, sim sendto → ground reader: the simulator's GLOBAL_POSITION_INT carries
``time_boot_ms`` = its simulated time, which at speed-up 1 is the sum of its tick steps:
wall time since its first tick on the simulator's event-loop clock (``time.monotonic``,
CLOCK_MONOTONIC, the same clock in every process). The simulator child records, without
changing what is sent, each vehicle's clock at its first tick (t0) and every tick whose step
was clamped (after a stall of the simulator's loop over 0.5 s, sim time lags wall time by
the excess: it is added back). On the ground side, a probe subscription on the links of
up to PROBED vehicles reads GLOBAL_POSITION_INT like any other reader of the link and
notes ``time.monotonic()`` when its task gets the message. Latency = arrival − (t0 +
time_boot_ms / 1000 + lag after stalls): it includes the kernel, the
ground loop's wake-up, decoding and queueing behind the Fleet's own tasks; the
millisecond truncation of ``time_boot_ms`` adds up to 1 ms.

A second pass runs the real service instead of the bare Fleet: ``python -m command.cli
serve`` on a generated synthetic Yubei district whose fleet.yaml lists N copters (with a
private Mosquitto, as tests/fixtures_service.py starts the live system), and the same
simulator child. It gives the service's and Mosquitto's CPU for N vehicles (everything
the service does with telemetry: events to MQTT and WebSockets, tracks to SQLite); its
latency is not measured (the bare-Fleet figure stands for the MAVLink side).

Run: ``python -m tests.bench fleet`` (``--vehicles 50,100,200 --seconds 15``, ``--no-service``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

DEFAULT_SIZES = (50, 100, 200)
WINDOW_S = 15.0  # measurement window per fleet size
WARMUP_S = 4.0
TERRAIN_DEADLINE_S = 120.0  # the fleet's terrain databases load within this (else measured anyway)  # after every vehicle is connected: stream requests answered, rates steady
CONNECT_DEADLINE_S = 20.0
PROBED = 20  # vehicles whose GLOBAL_POSITION_INT latency is sampled (spread over the fleet)
SIM_TICK_S = 0.05  # as sitl.fleet_sim.build_vehicles
# Yubei, near the district centre (sitl/scenarios/yubei); the position does not matter here.
HOME_LON, HOME_LAT, HOME_ALT_M = 106.63, 29.72, 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_udp_ports(count: int) -> list[int]:
    """``count`` distinct UDP ports that were free a moment ago (sockets held until all are picked)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15, proc(5))."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces: cut after ')'
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---- simulator child ---------------------------------------------------------------------


async def _sim_main(ports: list[int]) -> None:
    from sitl.vehicle_sim import SimVehicle

    class TimedSim(SimVehicle):
        """A SimVehicle that notes its clock at the first tick, and the wall time its
        simulated time lost at each clamped tick (sim time, lost seconds so far)."""

        t0: float | None = None
        _prev_wall: float | None = None

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.clamps: list[tuple[float, float]] = []

        def _tick(self, wall_now: float, dt_sim: float) -> None:
            dt_wall = dt_sim / self.speedup
            if self.t0 is None:
                self.t0 = wall_now - dt_wall
            elif self._prev_wall is not None and wall_now - self._prev_wall > dt_wall + 1e-6:
                lost_s = (self.clamps[-1][1] if self.clamps else 0.0) + wall_now - self._prev_wall - dt_wall
                self.clamps.append((self.sim_time_s, lost_s))  # messages after this sim time lag by lost_s
            self._prev_wall = wall_now
            super()._tick(wall_now, dt_sim)

    vehicles = [TimedSim(kind="copter", system_id=k + 1, home_lon=HOME_LON + 0.001 * k, home_lat=HOME_LAT,
                         home_alt_amsl_m=HOME_ALT_M, gcs_port=port, name=f"bench-{k + 1}",
                         tick_wall_s=SIM_TICK_S)
                for k, port in enumerate(ports)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(v.run()) for v in vehicles]
            print("sim started", flush=True)
            await stop.wait()
            for task in tasks:
                task.cancel()
    finally:
        print(json.dumps({
            "t0": {v.system_id: v.t0 for v in vehicles},
            "clamps": {v.system_id: v.clamps for v in vehicles if v.clamps},
            "clamped": sum(len(v.clamps) for v in vehicles),
            "max_stall_s": max((b - a for v in vehicles for a, b in zip([0.0] + [c[1] for c in v.clamps],
                                                                         [c[1] for c in v.clamps])), default=0.0),
            "tx": sum(v.counters["tx_msgs"] for v in vehicles),
            "tx_dropped_no_peer": sum(v.counters["tx_dropped_no_peer"] for v in vehicles),
        }), flush=True)


# ---- ground child ------------------------------------------------------------------------


async def _ground_main(n: int, window_s: float, warmup_s: float) -> None:
    from uav.errors import LinkError
    from uav.fleet import Fleet, FleetEntry

    # The ground side picks its ports and holds them before the simulator binds its own
    # (ephemeral) ports, which therefore cannot collide with them.
    ports = free_udp_ports(n)
    events: Counter[str] = Counter()
    connected = asyncio.Event()
    names = [f"bench-{k + 1}" for k in range(len(ports))]

    def on_event(kind: str, name: str, data: dict[str, Any]) -> None:
        events[kind] += 1
        if kind == "vehicle.connected" and events[kind] == len(ports):
            connected.set()

    fleet = Fleet([FleetEntry(name, "copter", f"udpin:127.0.0.1:{port}", k + 1)
                   for k, (name, port) in enumerate(zip(names, ports))], on_event=on_event)
    samples: list[tuple[int, int, float]] = []  # (system id, time_boot_ms, arrival monotonic)
    recording = [False]

    async def probe(sub: Any, system_id: int) -> None:
        try:
            async for msg in sub:
                if recording[0]:
                    samples.append((system_id, msg.time_boot_ms, time.monotonic()))
        except LinkError:
            return

    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        async with asyncio.timeout(10.0):
            while not all(map(_bound, ports)):
                await asyncio.sleep(0.05)
        print(f"ports {','.join(map(str, ports))}", flush=True)
        started = time.monotonic()
        try:
            async with asyncio.timeout(CONNECT_DEADLINE_S):
                await connected.wait()
        except TimeoutError:
            print(json.dumps({"error": f"only {events['vehicle.connected']} of {len(ports)} vehicles "
                                       f"connected within {CONNECT_DEADLINE_S:.0f} s"}), flush=True)
            fleet_task.cancel()
            return
        connect_s = time.monotonic() - started
        links = {name: fleet.vehicle(name).link for name in names}
        step = max(1, len(names) // PROBED)
        subs = []
        for k in range(0, len(names), step)[:PROBED]:
            sub = links[names[k]].subscribe(k + 1, types=("GLOBAL_POSITION_INT",), maxsize=64)
            subs.append(sub)
            tg.create_task(probe(sub, k + 1))
        await asyncio.sleep(warmup_s)

        def totals() -> dict[str, int]:
            stats = [links[n].stats(k + 1) for k, n in enumerate(names)]
            return {"received": sum(link.received_packets for link in links.values()),
                    "lost": sum(s.lost for s in stats if s is not None),
                    "bad_packets": sum(link.bad_packets for link in links.values()),
                    "sent": sum(link.sent_packets for link in links.values())}

        before, events_before = totals(), Counter(events)
        recording[0] = True
        print(f"window start {time.monotonic():.6f}", flush=True)
        t_start = time.monotonic()
        await asyncio.sleep(window_s)
        elapsed = time.monotonic() - t_start
        recording[0] = False
        print(f"window end {time.monotonic():.6f}", flush=True)
        after = totals()
        states = Counter(fleet.link_state(n) for n in names)
        result = {
            "connect_s": connect_s, "window_s": elapsed,
            "delta": {k: after[k] - before[k] for k in after},
            "events": {k: events[k] - events_before.get(k, 0) for k in events},
            "event_errors": fleet.event_errors,
            "probe_dropped": sum(s.dropped for s in subs), "probed": len(subs),
            "link_states": dict(states), "samples": samples,
        }
        print(json.dumps(result), flush=True)
        for sub in subs:
            sub.close()
        fleet_task.cancel()


def _bound(port: int) -> bool:
    """True once something holds UDP ``port`` on 127.0.0.1 (here: the fleet's link)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _ground_entry(n: int, window_s: float, warmup_s: float) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_ground_main(n, window_s, warmup_s))
    else:
        uvloop.run(_ground_main(n, window_s, warmup_s))


# ---- orchestrator ------------------------------------------------------------------------


def _spawn(log: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.fleet", *args],
        stdout=subprocess.PIPE, stderr=log.open("ab"), text=True,
        cwd=Path(__file__).resolve().parents[2], env=dict(os.environ, PYTHONUNBUFFERED="1"))


async def _line(proc: subprocess.Popen[str], prefix: str, deadline_s: float) -> str:
    """The next stdout line of ``proc`` starting with ``prefix`` (others are skipped)."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(deadline_s):
        while True:
            line = await loop.run_in_executor(None, proc.stdout.readline)
            if not line:
                raise RuntimeError(f"child {proc.pid} ended before printing {prefix!r}")
            if line.startswith(prefix):
                return line.strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def measure(n: int, window_s: float, tmp: Path) -> dict[str, Any]:
    """One fleet size: start both children, read CPU over the ground side's window."""
    log = tmp / f"fleet-{n}.log"
    ground = _spawn(log, "_ground", str(n), str(window_s), str(WARMUP_S))
    sim: subprocess.Popen[str] | None = None
    try:
        ports = (await _line(ground, "ports ", 30.0)).removeprefix("ports ")
        sim = _spawn(log, "_sim", ports)
        await _line(sim, "sim started", 20.0)
        first = await _line(ground, "", CONNECT_DEADLINE_S + 30.0)
        if not first.startswith("window start"):
            raise RuntimeError(f"ground side: {first}")
        cpu0 = {"sim": cpu_s(sim.pid), "ground": cpu_s(ground.pid)}
        wall0 = time.monotonic()
        await _line(ground, "window end", window_s + 30.0)
        cpu1 = {"sim": cpu_s(sim.pid), "ground": cpu_s(ground.pid)}
        wall = time.monotonic() - wall0
        result = json.loads(await _line(ground, "{", 30.0))
        sim.terminate()
        sim_out = json.loads(await _line(sim, "{", 15.0))
    except BaseException:
        tail = log.read_text(errors="replace")[-6000:] if log.exists() else ""
        print(f"  N={n}: failed; child log tail:\n{tail}", flush=True)
        raise
    finally:
        if sim is not None:
            _stop(sim)
        _stop(ground)
    t0 = {int(k): v for k, v in sim_out["t0"].items()}
    clamps = {int(k): v for k, v in sim_out["clamps"].items()}

    def sent_at(sysid: int, boot_ms: int) -> float:
        """The simulator's clock when it sent a message stamped ``boot_ms``."""
        lag_s = 0.0
        for sim_s, lost_s in clamps.get(sysid, ()):
            if boot_ms / 1000.0 > sim_s + 1e-9:
                lag_s = lost_s
        return t0[sysid] + boot_ms / 1000.0 + lag_s

    latencies = [arrival - sent_at(sysid, boot_ms)
                 for sysid, boot_ms, arrival in result["samples"] if t0.get(sysid) is not None]
    return {"n": n, "wall_s": wall, "sim_cpu": 100 * (cpu1["sim"] - cpu0["sim"]) / wall,
            "ground_cpu": 100 * (cpu1["ground"] - cpu0["ground"]) / wall,
            "latencies": latencies, "ground": result, "sim": sim_out}


def report(r: dict[str, Any]) -> None:
    g, lat = r["ground"], r["latencies"]
    d = g["delta"]
    rate = d["received"] / g["window_s"]
    print(f"  N={r['n']:>3}: ground CPU {r['ground_cpu']:5.1f} %, sim CPU {r['sim_cpu']:5.1f} %; "
          f"received {rate:,.0f} msg/s ({rate / r['n']:.1f} per vehicle); connected in {g['connect_s']:.1f} s",
          flush=True)
    if lat:
        print(f"         GLOBAL_POSITION_INT sim → ground: p50 {1000 * statistics.median(lat):.1f} ms, "
              f"p99 {1000 * _pct(lat, 0.99):.1f} ms, max {1000 * max(lat):.1f} ms, min {1000 * min(lat):.1f} ms "
              f"({len(lat)} samples from {g['probed']} vehicles, {len(lat) / g['window_s'] / g['probed']:.2f} Hz each)")
    else:
        print("         no latency samples")
    events = ", ".join(f"{k.removeprefix('vehicle.')} {v}" for k, v in sorted(g["events"].items()) if v)
    print(f"         link: lost {d['lost']} packets (sequence gaps), bad {d['bad_packets']}; probe drops "
          f"{g['probe_dropped']}; states {g['link_states']}; events in window: {events or 'none'}; "
          f"sim stalls over 0.5 s: {r['sim']['clamped']} vehicle ticks"
          + (f" (longest lost {r['sim']['max_stall_s']:.2f} s: corrected for)" if r["sim"]["clamped"] else ""),
          flush=True)


async def run(sizes: tuple[int, ...] = DEFAULT_SIZES, window_s: float = WINDOW_S, *,
              service: bool = True) -> list[dict[str, Any]]:
    """Measure each fleet size in turn against the bare Fleet, then (``service``) against
    the real service; print a block per size."""
    print(f"fleet: N simulated copters (one process, speed-up 1, one UDP socket each) → uav.fleet.Fleet "
          f"(another process, {'uvloop' if _has_uvloop() else 'asyncio'}, one udpin link per vehicle), "
          f"{window_s:g} s window after {WARMUP_S:g} s warm-up", flush=True)
    print(f"  the two processes share {len(os.sched_getaffinity(0))} usable CPUs (and the machine with other "
          "work): they compete, CPU % is per process, 100 % = one core", flush=True)
    print("  latency: sim sendto → ground probe reader, from time_boot_ms and the sim's clock at its first "
          "tick (same CLOCK_MONOTONIC); see tests/bench/fleet.py", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="yingji-bench-fleet-") as tmp:
        for n in sizes:
            r = await measure(n, window_s, Path(tmp))
            report(r)
            results.append(r)
        if service:
            await run_service(sizes, window_s, Path(tmp))
    return results


# ---- the real service ----------------------------------------------------------------------


def _district(src: Path, dest: Path, n: int, ports: list[int]) -> Path:
    """A copy of the generated district whose fleet is ``n`` copters at the copter bases."""
    import shutil

    import yaml

    shutil.copytree(src, dest)
    fleet_path = dest / "fleet.yaml"
    copters = [v for v in yaml.safe_load(fleet_path.read_text())["vehicles"] if v["type"] == "copter"]
    vehicles = [dict(copters[k % len(copters)], name=f"bench-{k + 1}", system_id=k + 1,
                     url=f"udpin:127.0.0.1:{port}") for k, port in enumerate(ports)]
    fleet_path.write_text(yaml.safe_dump({"vehicles": vehicles}, allow_unicode=True))
    return dest


async def _poll(predicate: Any, what: str, timeout_s: float, *procs: subprocess.Popen[Any]) -> Any:
    async with asyncio.timeout(timeout_s):
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a child ended (code {proc.returncode}) while waiting for {what}")
            try:
                value = await predicate()
            except Exception:  # not up yet
                value = None
            if value:
                return value
            await asyncio.sleep(0.2)


async def measure_service(n: int, window_s: float, tmp: Path, broker: Any, src: Path) -> dict[str, Any]:
    """One fleet size against ``python -m command.cli serve``."""
    import httpx

    from tests.fixtures_mqtt import free_port

    work = tmp / f"service-{n}"
    work.mkdir()
    ports = free_udp_ports(n)
    district = _district(src, work / "district", n, ports)
    (work / "data").mkdir()
    port, token = free_port(), "bench-" + os.urandom(6).hex()
    env = dict(os.environ, YINGJI_BROKER_URL=broker.url, YINGJI_DATA_DIR=str(work / "data"),
               YINGJI_DISTRICT_DIR=str(district), YINGJI_API_TOKEN=token, YINGJI_PORT=str(port),
               PYTHONUNBUFFERED="1")
    log = work / "service.log"
    service = subprocess.Popen([sys.executable, "-m", "command.cli", "serve", "--port", str(port)],
                               stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
                               cwd=Path(__file__).resolve().parents[2])
    sim: subprocess.Popen[str] | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            async def healthy() -> bool:
                return (await http.get("/healthz")).json().get("mqtt") == "connected"

            async def vehicles() -> list[dict[str, Any]]:
                r = await http.get("/api/vehicles")
                r.raise_for_status()
                return list(r.json()["vehicles"])

            async def all_connected() -> bool:
                return sum(v["link"] == "connected" for v in await vehicles()) == n

            await _poll(healthy, "the service to connect to MQTT", 60.0, service)
            # The service holds its ports now: the simulator's own (ephemeral) ports cannot collide.
            sim = _spawn(work / "sim.log", "_sim", ",".join(map(str, ports)))
            await _line(sim, "sim started", 20.0)
            await _poll(all_connected, f"{n} vehicles connected", CONNECT_DEADLINE_S, service, sim)
            # Each copter first loads its terrain database from the service (TERRAIN_REQUEST →
            # TERRAIN_DATA, as ArduPilot does): a burst, measured apart from steady tracking.
            loaded0 = time.monotonic()

            async def terrain_counters() -> tuple[int, int]:
                text = (await http.get("/metrics")).text
                values = {line.split()[0]: int(float(line.split()[1])) for line in text.splitlines()
                          if line.startswith("yingji_terrain_")}
                return values.get("yingji_terrain_requests_total", 0), values.get("yingji_terrain_bits_sent_total", 0)

            last, still_since = await terrain_counters(), time.monotonic()
            while time.monotonic() - loaded0 < TERRAIN_DEADLINE_S and time.monotonic() - still_since < 3.0:
                await asyncio.sleep(0.5)
                now_counts = await terrain_counters()
                if now_counts[0] != last[0]:
                    last, still_since = now_counts, time.monotonic()
            terrain_load_s = still_since - loaded0
            await asyncio.sleep(WARMUP_S)
            pids = {"service": service.pid, "sim": sim.pid, "mosquitto": broker.pid}
            cpu0 = {k: cpu_s(pid) for k, pid in pids.items()}
            wall0 = time.monotonic()
            await asyncio.sleep(window_s)
            cpu1 = {k: cpu_s(pid) for k, pid in pids.items()}
            wall = time.monotonic() - wall0
            views = await vehicles()
    except BaseException:
        print(f"  N={n}: service run failed; service log tail:\n"
              f"{log.read_text(errors='replace')[-4000:] if log.exists() else ''}", flush=True)
        raise
    finally:
        if sim is not None:
            _stop(sim)
        _stop(service)
    return {"n": n, "cpu": {k: 100 * (cpu1[k] - cpu0[k]) / wall for k in pids},
            "connected": sum(v["link"] == "connected" for v in views),
            "terrain": {"load_s": terrain_load_s, "requests": last[0], "bits": last[1]}}


async def run_service(sizes: tuple[int, ...], window_s: float, tmp: Path) -> None:
    """The same fleet sizes against the real service (with its Mosquitto)."""
    from sitl.scenarios.yubei.generate import generate
    from tests.fixtures_mqtt import start_mosquitto, stop_process

    print(f"service: the same simulator child → python -m command.cli serve (synthetic Yubei, fleet.yaml of "
          f"N copters, private Mosquitto), {window_s:g} s window {WARMUP_S:g} s after the copters' terrain "
          f"databases have loaded", flush=True)
    src = generate(tmp / "yubei")
    proc, broker = start_mosquitto(tmp)
    try:
        for n in sizes:
            r = await measure_service(n, window_s, tmp, broker, src)
            cpu = r["cpu"]
            print(f"  N={n:>3}: service CPU {cpu['service']:5.1f} %, sim CPU {cpu['sim']:5.1f} %, "
                  f"mosquitto CPU {cpu['mosquitto']:4.1f} %; {r['connected']} of {n} connected at the end",
                  flush=True)
            t = r["terrain"]
            print(f"         before the window: terrain databases loaded in {t['load_s']:.1f} s "
                  f"({t['requests']:,} TERRAIN_REQUESTs, {t['bits']:,} sub-grids sent)", flush=True)
    finally:
        stop_process(proc)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.fleet [--vehicles 50,100,200] [--seconds 15]``; the children
    are ``_ground N WINDOW WARMUP`` (prints its ports first) and ``_sim PORTS``."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "_sim":
        asyncio.run(_sim_main([int(p) for p in args[1].split(",")]))
        return
    if args and args[0] == "_ground":
        _ground_entry(int(args[1]), float(args[2]), float(args[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m tests.bench fleet")
    parser.add_argument("--vehicles", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--seconds", type=float, default=WINDOW_S)
    parser.add_argument("--no-service", action="store_true", help="bare Fleet only")
    a = parser.parse_args(args)
    asyncio.run(run(tuple(int(v) for v in a.vehicles.split(",")), a.seconds, service=not a.no_service))


if __name__ == "__main__":
    main()
