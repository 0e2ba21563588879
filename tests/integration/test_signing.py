"""MAVLink 2 signing between uav (ground) and the simulator, over real UDP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle_sim import SimVehicle
from uav.errors import CommandTimeout, LinkLost
from uav.fleet import Fleet, FleetEntry
from uav.link import MavLink, open_link
from uav.vehicle import Vehicle

from tests.fixtures_sim import free_udp_port, make_sim, poll_until, running, vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 20.0  # a ceiling for a loaded 2-core machine, not a measurement
KEY = "5f" * 32  # hex
OTHER_KEY = "a0" * 32


_sim = partial(make_sim, "copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0)
_until = partial(poll_until, deadline_s=DEADLINE_S)


@asynccontextmanager
async def _signed_pair(sim_key: str | None,
                       gcs_key: str | None) -> AsyncIterator[tuple[MavLink, Vehicle, SimVehicle]]:
    async with vehicle_and_sim("copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0,
                               signing_key=sim_key, link_signing_key=gcs_key,
                               vehicle_kwargs={"command_timeout_s": 0.5}) as (vehicle, sim):
        yield vehicle.link, vehicle, sim


async def test_signed_vehicle_and_signed_ground_station_talk() -> None:
    async with _signed_pair(KEY, KEY) as (link, vehicle, sim):
        ready = await vehicle.wait_ready(DEADLINE_S)
        assert ready.ekf_ok and ready.position_valid
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        assert sim.armed and sim.mode == "GUIDED"
        stats = link.stats(1)
        assert stats is not None and stats.received > 0
        assert (stats.unsigned_dropped, stats.bad_signature_dropped) == (0, 0)
        # the ground station's heartbeats and commands reached the vehicle signed
        assert sim.counters["rx_unsigned_rejected"] == 0 == sim.counters["rx_bad_signature"]
        assert sim.counters["rx_msgs"] > 0


async def test_unsigned_command_is_ignored_by_a_signed_vehicle() -> None:
    async with _signed_pair(KEY, KEY) as (_link, vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        intruder = await open_link(f"udpout:127.0.0.1:{sim.local_port}", source_system=255)
        try:
            stranger = Vehicle(intruder, 1, name="unsigned", command_timeout_s=0.3,
                               command_attempts=2)
            with pytest.raises((CommandTimeout, LinkLost)):
                await stranger.command(mav.MAV_CMD_DO_SET_MODE,
                                       mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4)  # GUIDED
        finally:
            await intruder.close()
        assert sim.counters["rx_unsigned_rejected"] >= 2
        assert sim.mode == "STABILIZE"
        # the signed ground station still commands it (telemetry was not redirected)
        await vehicle.set_mode("GUIDED")
        assert sim.mode == "GUIDED"


async def test_unsigned_ground_station_is_refused_by_a_signed_vehicle() -> None:
    async with _signed_pair(KEY, None) as (link, vehicle, sim):
        # the ground station hears it (it checks nothing) but the vehicle refuses its
        # heartbeats and stream requests, so no position ever comes
        await _until(lambda: sim.counters["rx_unsigned_rejected"] >= 3, "unsigned refused")
        assert vehicle.state.heartbeat_seen and not vehicle.state.position_valid
        stats = link.stats(1)
        assert stats is not None and stats.unsigned_dropped == 0


async def test_wrong_key_packets_are_dropped_and_counted() -> None:
    async with _signed_pair(OTHER_KEY, KEY) as (link, vehicle, sim):
        await _until(lambda: (s := link.stats(1)) is not None and s.bad_signature_dropped >= 10,
                     "bad signatures counted")
        stats = link.stats(1)
        assert stats is not None and stats.received == 0 and stats.unsigned_dropped == 0
        assert not vehicle.state.heartbeat_seen
        assert link.systems() == []
        # an unverified sender does not become a destination: nothing was sent to it
        assert stats.address is None and sim.counters["rx_msgs"] == 0


async def test_unsigned_vehicle_heard_on_the_same_port_as_a_signed_one() -> None:
    """A fleet file gives vehicle 1 a key and vehicle 2 none; both behind one udpin port."""
    port = free_udp_port()
    url = f"udpin:127.0.0.1:{port}"
    events: list[tuple[str, str]] = []
    fleet = Fleet([FleetEntry("signed", "copter", url, 1, signing_key=KEY),
                   FleetEntry("plain", "copter", url, 2)],
                  link_lost_s=2.0, on_event=lambda k, n, _d: events.append((k, n)))
    signed, plain = _sim(1, port, signing_key=KEY), _sim(2, port)
    # a third vehicle claiming system id 1 without the key: dropped, not mixed in
    impostor = _sim(1, port, name="impostor")
    async with running(signed.run(), plain.run(), impostor.run(), fleet.run()):
        await _until(lambda: ("vehicle.connected", "signed") in events
                     and ("vehicle.connected", "plain") in events, "both connected")
        for name, sim in (("signed", signed), ("plain", plain)):
            vehicle = fleet.vehicle(name)
            await vehicle.wait_ready(DEADLINE_S)
            await vehicle.set_mode("GUIDED")
            assert sim.mode == "GUIDED"
            assert sim.counters["rx_unsigned_rejected"] == 0
        assert impostor.mode != "GUIDED"
        stats = fleet._links[url].stats(1)
        assert stats is not None and stats.unsigned_dropped > 0
        assert repr(fleet.entries[0]).count(KEY) == 0  # the key stays out of logs


def test_fleet_rejects_a_bad_key_at_start_up() -> None:
    with pytest.raises(ValueError, match="uav-1: signing key"):
        Fleet([FleetEntry("uav-1", "copter", "udpin:127.0.0.1:14550", 1, signing_key="nope")])
