"""pytest fixtures: simulated ArduPilot vehicles on free 127.0.0.1 ports.

Register with ``pytest_plugins = ["tests.fixtures_sim"]``. Example::

    async def test_something(sim_vehicle):
        v = await sim_vehicle(kind="copter", gcs_port=14551, speedup=20)
        # the ground station listens with udpin:127.0.0.1:14551
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from sitl.vehicle_sim import SimVehicle

__all__ = ["running_vehicle", "sim_vehicle", "SimVehicleFactory"]

# Default home: a point in Yubei, east of the airport (lon, lat).
DEFAULT_HOME_LON = 106.70
DEFAULT_HOME_LAT = 29.80

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
