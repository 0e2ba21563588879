"""Acceptance flows (tests/vehicle_flows.py) against the built-in simulator and against
real ArduPilot SITL.

Each test runs twice: ``[sim]`` with sitl.vehicle_sim (always), ``[sitl]`` with the
``arducopter`` binary (``-m ardupilot``; skipped when the binaries are not found:
``YINGJI_ARDUPILOT_BIN`` names a folder holding ``arducopter``, else PATH). Both talk
MAVLink over UDP through a relay the link-loss flow can cut: SITL with ``--serial0
udpclient:127.0.0.1:PORT``, started in a temporary folder with wiped parameters and the
ArduPilot default parameter files when found beside the binary or in its source tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path

import pytest

from sitl.ardupilot import SitlInstance, find_binaries, find_defaults, started_sitl
from uav.link import open_link
from uav.vehicle import Vehicle

from tests import vehicle_flows as flows
from tests.fixtures_sim import make_sim, running
from tests.udp_relay import UdpRelay

SKIP_REASON = "ArduPilot SITL binaries not found: set YINGJI_ARDUPILOT_BIN"
HOME = (106.52, 29.62, 260.0)  # a base in the south-west of the district, off the airport
SIM_SPEEDUP = 20.0
SITL_SPEEDUP = 10.0
# -I for SITL: TCP 5760+10·I is left alone by MAVLink (serial0 goes to the relay), but
# serial1/2 still bind near it; 9 keeps clear of a developer's instance 0.
SITL_INSTANCE = 9

RigFactory = Callable[[], AbstractAsyncContextManager[flows.Rig]]


@contextlib.asynccontextmanager
async def _sim_rig() -> AsyncIterator[flows.Rig]:
    link = await open_link("udpin:127.0.0.1:0")
    relay = await UdpRelay.open(ground_port=link.local_port)
    try:
        sim = make_sim("copter", 1, relay.vehicle_port, home=HOME, speedup=SIM_SPEEDUP,
                       ekf_ready_after_s=2.0)
        vehicle = Vehicle(link, 1, name="sim-copter")
        async with running(sim.run(), link.run(), vehicle.run()):
            await vehicle.wait_ready(30.0)
            yield flows.Rig("sim", vehicle, deadline_s=30.0, relay=relay, sim=sim,
                            speedup=SIM_SPEEDUP)
    finally:
        relay.close()
        await link.close()


@contextlib.asynccontextmanager
async def _sitl_rig(binary: Path, workdir: Path) -> AsyncIterator[flows.Rig]:
    link = await open_link("udpin:127.0.0.1:0")
    relay = await UdpRelay.open(ground_port=link.local_port)
    inst = SitlInstance(SITL_INSTANCE, "copter", binary, 1, HOME[0], HOME[1], HOME[2], 0.0,
                        "127.0.0.1", relay.vehicle_port, "sitl-copter")
    try:
        async with started_sitl([inst], speedup=SITL_SPEEDUP, workdir=workdir,
                                defaults=find_defaults(binary), wipe=True) as procs:
            vehicle = Vehicle(link, 1, name="sitl-copter", command_timeout_s=2.0)
            async with running(link.run(), vehicle.run()):
                try:
                    # FACTS: the EKF uses GPS ~41.5 s (sim) after boot
                    await vehicle.wait_ready(120.0)
                except Exception:
                    if procs[0].returncode is not None:
                        pytest.fail(f"arducopter exited with {procs[0].returncode}; see "
                                    f"{workdir / inst.name / 'sitl.log'}")
                    raise
                yield flows.Rig("sitl", vehicle, deadline_s=90.0, relay=relay,
                                speedup=SITL_SPEEDUP)
    finally:
        relay.close()
        await link.close()


@pytest.fixture(params=["sim", pytest.param("sitl", marks=pytest.mark.ardupilot)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> RigFactory:
    """A factory of connected-copter rigs (``async with rig() as r``), one per backend."""
    if request.param == "sitl":
        found = find_binaries()
        if "copter" not in found:
            pytest.skip(SKIP_REASON)
        return partial(_sitl_rig, found["copter"], tmp_path)
    return _sim_rig


async def test_mission_with_loiter_and_rtl(rig: RigFactory) -> None:
    async with rig() as r:
        await flows.mission_with_loiter_and_rtl(r)


async def test_fence_upload_and_breach(rig: RigFactory) -> None:
    async with rig() as r:
        await flows.fence_upload_and_breach(r)


async def test_parameter_set_verified(rig: RigFactory) -> None:
    async with rig() as r:
        await flows.parameter_set_verified(r)


async def test_link_loss_and_recovery(rig: RigFactory) -> None:
    async with rig() as r:
        await flows.link_loss_and_recovery(r)


async def test_mission_interrupted_and_resumed(rig: RigFactory) -> None:
    async with rig() as r:
        await flows.mission_interrupted_and_resumed(r)
