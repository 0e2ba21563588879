"""WebSocket fan-out benchmark: 500 consoles on ``/ws`` receiving live vehicle and sensor updates at
1,000 events/s, with per-object coalescing into 100 ms frames (``command.live_feed``).

Three kinds of process share the machine's cores:

- the **server** (``python -m tests.bench.fanout server``): the real service object
  (``command.runtime.Service`` on the synthetic Yubei district, SQLite in a temporary folder; its
  background tasks are not started, no broker is needed) and the real app (``create_app``) under
  uvicorn, with a publisher task in the same event loop that puts on ``service.bus``: 6 vehicles'
  ``vehicle.telemetry`` at 10 Hz, ``sensor.reading`` over 300 sensors making up the rest of
  1,000 events/s, of which ``PERSISTENT_PER_S`` are state changes (``vehicle.statustext``, which go
  to the audit log and are never merged). Every event carries its publish wall time
  (``time.time()``) and a running number;
- the **clients** (``python -m tests.bench.fanout clients``): two processes of 250 connections each,
  every one saying hello with the service's API token (the operator) and reading every frame; one
  more process holds the **slow client**, which reads its socket once per ``SLOW_READ_EVERY_S``
  (everything that is there, then sleeps again; its receive buffer is small, so the server's
  writes to it back up meanwhile);
- this process, which starts them, waits for every connection, lets the publisher run for
  ``--seconds`` (default 20), then collects and prints the figures.

Latency is client wall time at parse minus the event's publish wall time (one machine, one clock).
"Object updates delivered" counts events in frames across all clients. "Persistent lost" compares
each client's running numbers of state changes with what was published. The server's shutdown
with the clients still connected is timed too (uvicorn with a 3 s graceful-shutdown limit, as
``yingji serve``).

Run: ``python -m tests.bench fanout`` (``--clients 500 --seconds 20``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

__all__ = ["RawClient", "main", "run"]

VEHICLES = 6
VEHICLE_HZ = 10.0
SENSORS = 300
EVENTS_PER_S = 1000
PERSISTENT_PER_S = 5
CLIENT_PROCESSES = 2
SLOW_READ_EVERY_S = 2.0
START_DEADLINE_S = 120.0
DRAIN_S = 3.0  # after publishing stops: clients read what is still on its way
API_TOKEN = "bench-operator-token"


class RawClient:
    """A WebSocket client that reads its socket only when asked (websockets' sans-I/O protocol over a
    plain asyncio stream): while it does not read, the server's writes to it back up and block."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol) -> None:
        self.reader, self.writer, self.protocol = reader, writer, protocol
        self._messages: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(cls, url: str, *, rcvbuf: int | None = None) -> RawClient:
        """Open ``url`` (ws://host:port/path); ``rcvbuf``: a small socket receive buffer, set before connecting."""
        uri = parse_uri(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2 ** 16)
        protocol = ClientProtocol(uri, max_size=None)
        protocol.send_request(protocol.connect())
        client = cls(reader, writer, protocol)
        await client._flush()
        while True:  # the handshake's answer
            await client._read_some()
            for event in protocol.events_received():
                if isinstance(event, Response):
                    if event.status_code != 101:
                        raise ConnectionError(f"{url}: handshake refused with HTTP {event.status_code}")
                    return client
                client._take(event)
            if protocol.handshake_exc is not None:
                raise ConnectionError(f"{url}: handshake failed: {protocol.handshake_exc}")

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)
        await self.writer.drain()

    async def _read_some(self) -> None:
        data = await self.reader.read(2 ** 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        await self._flush()  # pongs, the close handshake

    def _take(self, event: Any) -> None:
        if isinstance(event, Frame):
            if event.opcode is Opcode.TEXT:
                self._messages.append(event.data.decode())
            elif event.opcode is Opcode.CLOSE:
                close = self.protocol.close_rcvd
                self.close_code = close.code if close else 1005
                self.close_reason = close.reason if close else ""

    async def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        await self._flush()

    async def recv(self) -> str:
        """The next text message; ``ConnectionError`` when the connection closed first."""
        while not self._messages:
            if self.close_code is not None or self.reader.at_eof():
                raise ConnectionError(f"closed {self.close_code} {self.close_reason}")
            await self._read_some()
            for event in self.protocol.events_received():
                self._take(event)
        return self._messages.pop(0)

    def buffered(self) -> int:
        """Messages already parsed and not yet taken."""
        return len(self._messages)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


# --- the server process ------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def _publish(service: Any, seconds: float) -> dict[str, Any]:
    """Put EVENTS_PER_S on the bus for ``seconds``, in 10 ms steps; what was published."""
    bus = service.bus
    names = [f"UAV-{i + 1}" if i < VEHICLES // 2 else f"USV-{i + 1 - VEHICLES // 2}" for i in range(VEHICLES)]
    sensor_rate = EVENTS_PER_S - VEHICLES * VEHICLE_HZ - PERSISTENT_PER_S
    step_s = 0.01
    loop = asyncio.get_running_loop()
    start = loop.time()
    due = {"vehicle": 0.0, "sensor": 0.0, "persistent": 0.0}
    counts = {"vehicle": 0, "sensor": 0, "persistent": 0}
    n = 0
    k = 0
    while (elapsed := loop.time() - start) < seconds:
        due["vehicle"] = elapsed * VEHICLE_HZ * VEHICLES
        due["sensor"] = elapsed * sensor_rate
        due["persistent"] = elapsed * PERSISTENT_PER_S
        while counts["vehicle"] < due["vehicle"]:
            name = names[counts["vehicle"] % VEHICLES]
            counts["vehicle"] += 1
            bus.publish("vehicle.telemetry", {
                "name": name, "sent_at": time.time(), "n": counts["vehicle"], "lon": 106.6 + counts["vehicle"] * 1e-6,
                "lat": 29.7, "alt_rel_m": 60.0, "heading_deg": 90.0, "groundspeed_mps": 12.0, "mode": "AUTO",
                "armed": True, "battery_pct": 80.0, "link": "connected", "state": "on_task"})
        while counts["sensor"] < due["sensor"]:
            sid = f"bench-{counts['sensor'] % SENSORS:03d}"
            counts["sensor"] += 1
            bus.publish("sensor.reading", {"sensor_id": sid, "quantity": "rain", "value": 1.5, "unit": "mm",
                                           "time": "2026-07-01T00:00:00+00:00", "flag": "ok",
                                           "sent_at": time.time(), "n": counts["sensor"]})
        while counts["persistent"] < due["persistent"]:
            counts["persistent"] += 1
            bus.publish("vehicle.statustext", {"name": names[0], "text": "bench", "p": counts["persistent"],
                                               "sent_at": time.time()})
        n += 1
        k = sum(counts.values())
        await asyncio.sleep(max(0.0, start + n * step_s - loop.time()))
    elapsed = loop.time() - start
    return {"published": k, "persistent": counts["persistent"], "seconds": elapsed}


async def _server(port: int, clients: int, seconds: float, out: Path, sndbuf: int | None) -> None:
    import uvicorn

    from command.api.app import create_app
    from command.runtime import Service
    from command.settings import Settings
    from sitl.scenarios.yubei.generate import generate

    tmp = Path(tempfile.mkdtemp(prefix="yingji-fanout-"))
    try:
        folder = generate(tmp / "district")
        settings = Settings(data_dir=tmp / "data", district_dir=folder, api_token=API_TOKEN, patrols=False,
                            port=port)
        (tmp / "data").mkdir(exist_ok=True)
        service = Service(settings, district_dir=folder)
        app = create_app(service)
        hub = app.state.live_hub
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off", timeout_graceful_shutdown=3, ws_max_queue=32))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sndbuf is not None:  # accepted sockets inherit it (Linux): bounds what the kernel buffers per client
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        listener.bind(("127.0.0.1", port))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        print("listening", flush=True)
        async with asyncio.timeout(START_DEADLINE_S):
            while len(hub.clients) < clients:
                await asyncio.sleep(0.1)
        rss: list[float] = []
        ring: list[int] = []

        async def sample() -> None:
            while True:
                rss.append(_rss_mb())
                ring.append(hub.ring.event_count())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        frames0 = hub.frames_sent
        published = await _publish(service, seconds)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        frames = hub.frames_sent - frames0
        service.bus.publish("vehicle.statustext", {"name": "bench", "end": True, "persistent": published["persistent"],
                                                   "sent_at": time.time()})
        await asyncio.sleep(DRAIN_S + SLOW_READ_EVERY_S)
        sampler.cancel()
        result = {**published, "frames": frames, "hub": hub.stats(),
                  "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
                  "rss_mb": [min(rss), max(rss)], "ring_events_max": max(ring), "clients": len(hub.clients)}
        # shutdown with every client still connected (they keep reading until the server closes)
        t0 = time.monotonic()
        server.should_exit = True
        await serving
        result["shutdown_s"] = time.monotonic() - t0
        out.write_text(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the client processes --------------------------------------------------------------------------------


async def _one(url: str, stats: dict[str, Any], lat: list[np.ndarray], *, slow: bool, ready: list[int]) -> None:
    """One console: hello, then every frame until the server closes (the slow one: a read burst every 2 s)."""
    client = await RawClient.connect(url, rcvbuf=4096 if slow else None)
    await client.send(json.dumps({"type": "hello", "token": API_TOKEN}))
    hello = json.loads(await client.recv())
    if hello.get("type") != "welcome":
        raise ConnectionError(f"no welcome: {hello}")
    ready[0] += 1
    seen_p: list[int] = []
    expected = None
    try:
        while True:
            if slow:
                await asyncio.sleep(SLOW_READ_EVERY_S)
                stats["slow_reads"] += 1
            while True:
                try:
                    async with asyncio.timeout(0.05 if slow else None):
                        text = await client.recv()
                except TimeoutError:
                    break  # the slow client: nothing more right now, back to sleep
                msg = json.loads(text)
                now = time.time()
                events = msg["events"]
                stats["frames"] += 1
                stats["events"] += len(events)
                sent = [e["data"]["sent_at"] for e in events if "sent_at" in e["data"]]
                if sent and not slow:
                    lat.append(now - np.asarray(sent))
                elif sent:
                    stats["slow_latency_max_s"] = max(stats["slow_latency_max_s"], now - min(sent))
                for e in events:
                    d = e["data"]
                    if e["kind"] == "bus.overflow":
                        stats["slow_overflows" if slow else "overflows"] += 1
                    elif "p" in d:
                        seen_p.append(d["p"])
                    elif d.get("end"):
                        expected = d["persistent"]
                if slow:
                    stats["slow_frames"] += 1
                    stats["slow_events"] += len(events)
                    stats["slow_max_events"] = max(stats["slow_max_events"], len(events))
                    stats["slow_max_frame_kb"] = max(stats["slow_max_frame_kb"], len(text) / 1000)
    except ConnectionError:
        pass  # the server closed: the end of the run
    finally:
        lost = (expected - len(set(seen_p))) if expected is not None else None
        key = "slow" if slow else "fast"
        stats[f"{key}_lost"].append(lost)
        stats[f"{key}_in_order"] &= seen_p == sorted(seen_p)
        await client.close()


async def _clients(url: str, count: int, with_slow: bool, out: Path) -> None:
    stats: dict[str, Any] = {"frames": 0, "events": 0, "overflows": 0, "fast_lost": [], "slow_lost": [],
                             "fast_in_order": True, "slow_in_order": True, "slow_reads": 0, "slow_frames": 0,
                             "slow_events": 0, "slow_max_events": 0, "slow_max_frame_kb": 0.0, "slow_overflows": 0,
                             "slow_latency_max_s": 0.0}
    lat: list[np.ndarray] = []
    ready = [0]
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(_one(url, stats, lat, slow=False, ready=ready)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the listen backlog
    if with_slow:
        tasks.append(asyncio.create_task(_one(url, stats, lat, slow=True, ready=ready)))
    done = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(e) for e in done if isinstance(e, BaseException)]
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    stats["cpu_per_s"] = cpu_s / (time.monotonic() - wall0)
    all_lat = np.concatenate(lat) if lat else np.zeros(0)
    np.save(out.with_suffix(".npy"), all_lat.astype(np.float32))
    out.write_text(json.dumps({**stats, "errors": errors[:5], "error_count": len(errors)}))


# --- the orchestrator ------------------------------------------------------------------------------------


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "tests.bench.fanout", *args], stdout=handle,
                                stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    finally:
        handle.close()


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


async def run(clients: int = 500, seconds: float = 20.0, sndbuf: int | None = None) -> None:
    """Start the server and the client processes, publish for ``seconds``, print the figures.

    ``sndbuf``: the server sockets' send buffer (bytes); default: the service's own
    (``Settings.http_send_buffer_bytes``, what ``yingji serve`` sets); 0: the kernel's, which grows to
    ``net.ipv4.tcp_wmem``'s maximum (4 MB here) and so holds ~30 s of frames for a slow client
    before the server's writes to it block and coalescing of missed ticks begins.
    """
    if sndbuf is None:
        from command.settings import Settings

        sndbuf = Settings.model_fields["http_send_buffer_bytes"].default
    from tests.fixtures_mqtt import free_port

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="yingji-fanout-run-"))
    print(f"WebSocket fan-out: {clients} consoles (+1 slow, reads every {SLOW_READ_EVERY_S:g} s) in "
          f"{CLIENT_PROCESSES} client processes; {EVENTS_PER_S} events/s for {seconds:g} s "
          f"({VEHICLES} vehicles at {VEHICLE_HZ:g} Hz, {SENSORS} sensors, {PERSISTENT_PER_S} state changes/s); "
          f"server socket send buffer: {sndbuf or 'kernel default'}",
          flush=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server = _spawn(["server", "--port", str(port), "--clients", str(clients + 1), "--seconds", str(seconds),
                         "--out", str(work / "server.json"),
                         *(["--sndbuf", str(sndbuf)] if sndbuf else [])], work / "server.log")
        procs.append(server)
        deadline = time.monotonic() + START_DEADLINE_S
        while b"listening" not in (work / "server.log").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{(work / 'server.log').read_text()[-3000:]}")
            await asyncio.sleep(0.2)
        share = [clients // CLIENT_PROCESSES + (i < clients % CLIENT_PROCESSES) for i in range(CLIENT_PROCESSES)]
        for i, n in enumerate([*share, 0]):  # the last process: the slow client alone (not starved of CPU)
            args = ["clients", "--url", f"ws://127.0.0.1:{port}/ws", "--count", str(n),
                    "--out", str(work / f"clients{i}.json")]
            procs.append(_spawn([*args, "--slow"] if n == 0 else args, work / f"clients{i}.log"))
        total_deadline = time.monotonic() + START_DEADLINE_S + seconds + 60
        while any(p.poll() is None for p in procs):
            if time.monotonic() > total_deadline:
                raise RuntimeError("the benchmark did not finish in time:\n"
                                   + "\n".join((work / f).read_text()[-2000:] for f in os.listdir(work)
                                               if f.endswith(".log")))
            await asyncio.sleep(0.2)
        _report(work, clients)
    finally:
        for p in procs:
            _stop(p)
        shutil.rmtree(work, ignore_errors=True)


def _report(work: Path, clients: int) -> None:
    def load(name: str) -> dict[str, Any]:
        path = work / name
        if not path.exists():
            logs = "\n".join((work / f).read_text()[-2000:] for f in sorted(os.listdir(work)) if f.endswith(".log"))
            raise RuntimeError(f"{name} missing:\n{logs}")
        return json.loads(path.read_text())

    server = load("server.json")
    parts = [load(f"clients{i}.json") for i in range(CLIENT_PROCESSES + 1)]
    lat = np.concatenate([np.load(work / f"clients{i}.npy") for i in range(CLIENT_PROCESSES)]) * 1000.0
    s = server["seconds"]
    events = sum(p["events"] for p in parts)
    fast_lost = [x for p in parts for x in p["fast_lost"]]
    print(f"  published: {server['published'] / s:,.0f} events/s ({server['persistent']} state changes) over {s:.1f} s")
    print(f"  frames sent: {server['frames'] / s:,.0f}/s; object updates delivered: {events / s:,.0f}/s across "
          f"{clients + 1} clients ({events / s / (clients + 1):,.0f}/s each)")
    print(f"  delivery latency to the {clients} consoles (publish → parsed): p50 {np.percentile(lat, 50):.0f} ms, "
          f"p99 {np.percentile(lat, 99):.0f} ms, max {lat.max():.0f} ms ({lat.size:,} updates)")
    print(f"  state changes lost by clients keeping up: {sum(x for x in fast_lost if x is not None)} "
          f"(clients that saw the end: {sum(x is not None for x in fast_lost)}/{len(fast_lost)}; "
          f"in order: {all(p['fast_in_order'] for p in parts)}); bus.overflow told: "
          f"{sum(p['overflows'] for p in parts)}")
    slow = parts[-1]
    print(f"  slow client (reads every {SLOW_READ_EVERY_S:g} s): {slow['slow_reads']} read bursts, "
          f"{slow['slow_frames']} frames, {slow['slow_events']:,} updates (largest frame {slow['slow_max_events']} "
          f"events, {slow['slow_max_frame_kb']:.0f} kB), oldest update {slow['slow_latency_max_s']:.1f} s old; "
          f"bus.overflow told {slow['slow_overflows']}; state changes "
          f"lost {slow['slow_lost']}, in order {slow['slow_in_order']}")
    print(f"  server: CPU {server['cpu_s'] / s:.2f} s/s while publishing, RSS {server['rss_mb'][0]:.0f}–"
          f"{server['rss_mb'][1]:.0f} MB, ring held at most {server['ring_events_max']:,} events; "
          f"frames merged for late clients: {server['hub']['merged_frames']}, overflows: {server['hub']['overflows']}")
    client_cpu = ", ".join(f"{p['cpu_per_s']:.2f}" for p in parts[:-1])
    print(f"  client processes: CPU {client_cpu} s/s over their life "
          "(they parse every event: on two shared cores they, not the server, set the latency)")
    print(f"  server shutdown with {server['clients']} clients connected: {server['shutdown_s']:.2f} s")
    errors = sum(p["error_count"] for p in parts)
    if errors:
        print(f"  client errors: {errors}, e.g. {[e for p in parts for e in p['errors']][:3]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.fanout", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--clients", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--sndbuf", type=int, default=None)
    c = sub.add_parser("clients")
    c.add_argument("--url", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--slow", action="store_true")
    c.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.role == "server":
        runner(_server(args.port, args.clients, args.seconds, args.out, args.sndbuf))
    else:
        runner(_clients(args.url, args.count, args.slow, args.out))


if __name__ == "__main__":
    main()
