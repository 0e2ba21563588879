"""pytest fixtures: simulated ArduPilot vehicles on free 127.0.0.1 ports.

Register with ``pytest_plugins = ["tests.fixtures_sim"]``. Example::

    async def test_something(sim_vehicle):
        v = await sim_vehicle(kind="copter", gcs_port=14551, speedup=20)
        # the ground station listens with udpin:127.0.0.1:14551

Plain helpers for tests that pair a ground-side ``uav.Vehicle`` with a simulator::

    async with vehicle_and_sim("copter", home=HOME, speedup=30.0) as (vehicle, sim):
        await until(vehicle, lambda t: t.armed, "armed", deadline_s=25.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
import pytest_asyncio

from sitl.vehicle_sim import SimVehicle, VehicleKind
from uav.link import open_link
from uav.telemetry import Telemetry
from uav.vehicle import Vehicle

__all__ = ["M_PER_DEG_LAT", "SimVehicleFactory", "free_udp_port", "free_udp_ports", "make_sim",
           "poll_until", "running", "running_vehicle", "sim_vehicle", "square_around", "until",
           "vehicle_and_sim"]

# Default home: a point in Yubei, east of the airport (lon, lat).
DEFAULT_HOME_LON = 106.70
DEFAULT_HOME_LAT = 29.80
# A generous ceiling for a loaded 2-core machine, not a measurement.
DEFAULT_DEADLINE_S = 25.0

Home = tuple[float, float, float]  # lon_deg, lat_deg, alt_amsl_m
M_PER_DEG_LAT = 111_320.0  # WGS84 mean, good to ~1 % over a few hundred metres

SimVehicleFactory = Callable[..., Awaitable[SimVehicle]]


@contextlib.asynccontextmanager
async def running_vehicle(**kwargs: Any) -> AsyncIterator[SimVehicle]:
    """Start ``SimVehicle(**kwargs)`` in a task owned by this context; cancel it on exit."""
    kwargs.setdefault("home_lon", DEFAULT_HOME_LON)
    kwargs.setdefault("home_lat", DEFAULT_HOME_LAT)
    vehicle = SimVehicle(**kwargs)
    task = asyncio.create_task(vehicle.run(), name=f"sim-{vehicle.name}")
    started = asyncio.create_task(vehicle.started.wait())
    try:
        async with asyncio.timeout(5.0):
            await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises the start-up error (e.g. port in use)
            raise RuntimeError(f"{vehicle.name} stopped during start-up")
        yield vehicle
    finally:
        for t in (started, task):
            t.cancel()
        for t in (started, task):
            with contextlib.suppress(asyncio.CancelledError):
                await t


@pytest_asyncio.fixture(loop_scope="function")
async def sim_vehicle() -> AsyncIterator[SimVehicleFactory]:
    """Factory: ``await sim_vehicle(kind=..., gcs_port=..., speedup=...)`` → a started vehicle.

    Keyword arguments are those of ``SimVehicle``; ``system_id`` defaults to 1 and home to
    Yubei. Every vehicle made is cancelled at teardown.
    """
    async with contextlib.AsyncExitStack() as stack:
        async def make(*, kind: str = "copter", system_id: int = 1, speedup: float = 20.0,
                       **kwargs: Any) -> SimVehicle:
            return await stack.enter_async_context(
                running_vehicle(kind=kind, system_id=system_id, speedup=speedup, **kwargs))

        yield make


# Ports for listeners are chosen below the kernel's ephemeral range (Linux: 32768-60999), where no
# outgoing socket is ever given one: a port picked from the ephemeral range can be handed to another
# process's client socket between the pick and the bind. Each pytest-xdist worker has its own block.
_PORT_BLOCK = 3000
_PORT_BASE = 20000


def _port_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    k = int(worker) if worker.isdigit() else 0
    start = _PORT_BASE + (k % 4) * _PORT_BLOCK
    return range(start, start + _PORT_BLOCK)


def free_ports(count: int, kind: int = socket.SOCK_DGRAM) -> list[int]:
    """``count`` distinct ports of this worker's block, free a moment ago (all held open while chosen)."""
    block = _port_block()
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for port in random.sample(block, len(block)):
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            socks.append(sock)
            ports.append(port)
            if len(ports) == count:
                return ports
        raise RuntimeError(f"no {count} free ports in {block}")
    finally:
        for sock in socks:
            sock.close()


def free_udp_ports(count: int) -> list[int]:
    """``count`` distinct UDP ports that were free a moment ago."""
    return free_ports(count, socket.SOCK_DGRAM)


def free_udp_port() -> int:
    """One UDP port on 127.0.0.1 that was free a moment ago."""
    return free_udp_ports(1)[0]


def square_around(lon: float, lat: float, half_m: float) -> list[tuple[float, float]]:
    """The corners (lon, lat) of a square ``2 * half_m`` wide centred on (lon, lat)."""
    dlat = half_m / M_PER_DEG_LAT
    dlon = half_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return [(lon - dlon, lat - dlat), (lon + dlon, lat - dlat),
            (lon + dlon, lat + dlat), (lon - dlon, lat + dlat)]


def make_sim(kind: VehicleKind, system_id: int, gcs_port: int | None, *, home: Home,
             speedup: float, **sim_kwargs: Any) -> SimVehicle:
    """A ``SimVehicle`` at ``home`` (lon, lat, alt AMSL) sending to 127.0.0.1:``gcs_port``."""
    lon, lat, alt_m = home
    return SimVehicle(kind=kind, system_id=system_id, home_lon=lon, home_lat=lat,
                      home_alt_amsl_m=alt_m, gcs_port=gcs_port, speedup=speedup, **sim_kwargs)


@contextlib.asynccontextmanager
async def running(*coros: Coroutine[Any, Any, Any]) -> AsyncIterator[None]:
    """Run ``coros`` in a TaskGroup owned by this context; cancel them all at exit."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(c) for c in coros]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


@contextlib.asynccontextmanager
async def vehicle_and_sim(kind: VehicleKind = "copter", *, system_id: int = 1,
                          home: Home = (DEFAULT_HOME_LON, DEFAULT_HOME_LAT, 0.0),
                          speedup: float = 30.0, link_url: str = "udpin:127.0.0.1:0",
                          link_signing_key: str | None = None,
                          vehicle_kwargs: dict[str, Any] | None = None,
                          ready_within_s: float | None = None,
                          **sim_kwargs: Any) -> AsyncIterator[tuple[Vehicle, SimVehicle]]:
    """A ground link on ``link_url``, a simulator sending to it and a ``Vehicle`` on the link.

    Sim, link and vehicle run until the context exits. ``link_signing_key`` signs the
    ground side (the simulator's own key is ``signing_key`` in ``sim_kwargs``);
    ``ready_within_s`` waits for ``Vehicle.wait_ready`` before yielding.
    """
    link = await open_link(link_url)
    try:
        if link_signing_key is not None:
            link.set_signing_key(system_id, link_signing_key)
        sim = make_sim(kind, system_id, link.local_port, home=home, speedup=speedup,
                       **sim_kwargs)
        vehicle = Vehicle(link, system_id, **{"name": f"{kind}-{system_id}",
                                              **(vehicle_kwargs or {})})
        async with running(sim.run(), link.run(), vehicle.run()):
            if ready_within_s is not None:
                await vehicle.wait_ready(ready_within_s)
            yield vehicle, sim
    finally:
        await link.close()


async def until(vehicle: Vehicle, predicate: Callable[[Telemetry], bool], what: str,
                deadline_s: float = DEFAULT_DEADLINE_S) -> Telemetry:
    """Wait for ``predicate`` on the vehicle's telemetry; fail the test with the last state."""
    try:
        return await vehicle.wait_for(predicate, deadline_s)
    except TimeoutError:
        pytest.fail(f"{what}: not seen within {deadline_s} s; last state {vehicle.state}")


async def poll_until(predicate: Callable[[], bool], what: str,
                     deadline_s: float = DEFAULT_DEADLINE_S) -> None:
    """Poll ``predicate`` every 50 ms; fail the test after ``deadline_s``."""
    try:
        async with asyncio.timeout(deadline_s):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{what}: not within {deadline_s} s")
