"""Ownership, fleet commands and pause/continue against two simulated vehicles over UDP."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from sitl.vehicle_sim import SimVehicle
from uav.control import NotInControl
from uav.errors import CommandFailed, VehicleUnavailable
from uav.fleet import Fleet, FleetEntry
from uav.vehicle import Vehicle

from tests.fixtures_sim import free_udp_port, until

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
SPEEDUP = 30.0
DEADLINE_S = 25.0  # generous ceiling on a loaded machine, not a measurement
# A square of ~2 km around the bases, and one far away.
AREA = [(106.51, 29.61), (106.53, 29.61), (106.53, 29.63), (106.51, 29.63)]
FAR = [(106.70, 29.80), (106.71, 29.80), (106.71, 29.81), (106.70, 29.81)]


_until = partial(until, deadline_s=DEADLINE_S)


async def _connected(fleet: Fleet, name: str) -> Vehicle:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            try:
                vehicle = fleet.vehicle(name)
                break
            except VehicleUnavailable:
                await asyncio.sleep(0.05)
    await vehicle.wait_ready(DEADLINE_S)
    return vehicle


async def test_ownership_fleet_commands_and_pause() -> None:
    port = free_udp_port()
    url = f"udpin:127.0.0.1:{port}"
    fleet = Fleet([FleetEntry("uav-1", "copter", url, 1), FleetEntry("boat-1", "boat", url, 2)])
    sims = [SimVehicle(kind=kind, system_id=sid, home_lon=HOME_LON, home_lat=HOME_LAT,
                       home_alt_amsl_m=HOME_ALT_M, gcs_port=port, speedup=SPEEDUP)
            for kind, sid in (("copter", 1), ("boat", 2))]
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(s.run()) for s in sims] + [tg.create_task(fleet.run())]
        try:
            copter, boat = await _connected(fleet, "uav-1"), await _connected(fleet, "boat-1")

            # --- ownership: alice controls, bob watches and is refused ----------------
            lease = await fleet.acquire("uav-1", "alice")
            bob = fleet.as_operator("uav-1", "bob")
            assert bob.state.mode == copter.state.mode  # watching is allowed
            with pytest.raises(NotInControl) as refused:
                await bob.set_mode("GUIDED")
            assert refused.value.holder == "alice" and "alice" in str(refused.value)
            with pytest.raises(NotInControl):
                await fleet.acquire("uav-1", "bob")
            with pytest.raises(NotInControl, match="take control first"):
                await fleet.as_operator("boat-1", "bob").arm()

            alice = fleet.as_operator("uav-1", "alice")
            await alice.set_mode("GUIDED")
            await alice.arm()
            await alice.takeoff(20)
            await _until(copter, lambda t: t.alt_rel_m > 15, "copter climbs")

            # --- pause/continue: copter GUIDED pauses in place (ACCEPTED) --------------
            outcome = await alice.pause()
            assert (outcome.method, outcome.mode) == ("pause_continue", "GUIDED")
            await alice.resume()

            # bob takes over explicitly; alice is now the watcher
            taken = await fleet.acquire("uav-1", "bob", force=True)
            assert taken.operator == "bob"
            with pytest.raises(NotInControl) as refused:
                await alice.set_mode("LOITER")
            assert refused.value.holder == "bob"
            assert not await fleet.release(lease)  # alice's lease is gone
            await fleet.release(taken)

            # copter in LOITER: ArduPilot answers FAILED ("Failed to pause") -> BRAKE
            async with fleet.control("uav-1", "alice") as v:
                await v.set_mode("LOITER")
                outcome = await v.pause()
                assert (outcome.method, outcome.mode, outcome.previous_mode) == (
                    "mode", "BRAKE", "LOITER")
                assert "Failed to pause" in outcome.reason
                await v.resume()
                assert copter.state.mode == "LOITER"
                await v.set_mode("GUIDED")
            assert await fleet.controller("uav-1") is None

            # boat: DO_PAUSE_CONTINUE UNSUPPORTED (Rover has no handler) -> HOLD
            async with fleet.control("boat-1", "carol") as b:
                await b.set_mode("GUIDED")
                await b.arm()
                outcome = await b.pause()
                assert (outcome.method, outcome.mode) == ("mode", "HOLD")
                await b.resume()
                assert boat.state.mode == "GUIDED"
                with pytest.raises(CommandFailed):  # lat/lon 0,0: ArduPilot answers FAILED
                    await b.command(179, 0, 0, 0, 0, 0.0, 0.0, 0.0)
                with pytest.raises(ValueError):
                    await b.set_home(HOME_LON, 95.0, HOME_ALT_M)
                await b.set_home(HOME_LON + 0.001, HOME_LAT, HOME_ALT_M)
                await _until(boat, lambda t: abs(t.home_lon_deg - (HOME_LON + 0.001)) < 1e-5,
                             "home moved")

                # --- fleet commands -------------------------------------------------------
                # carol controls the boat: dave's hold is refused for it, done for the copter
                outcomes = await fleet.hold_all_in(AREA, operator="dave")
                assert outcomes["uav-1"].ok and outcomes["uav-1"].action == "BRAKE"
                assert not outcomes["boat-1"].ok
                assert isinstance(outcomes["boat-1"].error, NotInControl)
                outcomes = await fleet.hold_all_in(AREA, operator="carol")
                assert [(o.ok, o.action) for o in outcomes.values()] == [
                    (True, "BRAKE"), (True, "HOLD")]
                assert boat.state.mode == "HOLD" and copter.state.mode == "BRAKE"
                far = await fleet.hold_all_in(FAR, operator="carol")
                assert {o.skipped for o in far.values()} == {"outside the area"}

                outcomes = await fleet.rtl_all(operator="dave", force=True)
                assert all(o.ok and o.action == "RTL" for o in outcomes.values()), outcomes
                assert copter.state.mode == "RTL" and boat.state.mode == "RTL"
                assert outcomes["uav-1"].to_dict()["error"] is None
        finally:
            for task in tasks:
                task.cancel()


async def test_fleet_command_reports_an_unreachable_vehicle_without_raising() -> None:
    port = free_udp_port()
    url = f"udpin:127.0.0.1:{port}"
    fleet = Fleet([FleetEntry("uav-1", "copter", url, 1), FleetEntry("ghost", "copter", url, 9)])
    sim = SimVehicle(kind="copter", system_id=1, home_lon=HOME_LON, home_lat=HOME_LAT,
                     home_alt_amsl_m=HOME_ALT_M, gcs_port=port, speedup=SPEEDUP)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(sim.run()), tg.create_task(fleet.run())]
        try:
            copter = await _connected(fleet, "uav-1")
            await copter.set_mode("GUIDED")
            await copter.arm()
            await copter.takeoff(10)  # else DISARM_DELAY disarms it on the ground
            await _until(copter, lambda t: t.alt_rel_m > 5, "copter climbs")
            outcomes = await fleet.rtl_all()
            assert outcomes["uav-1"].ok and outcomes["uav-1"].action == "RTL"
            assert not outcomes["ghost"].ok
            assert isinstance(outcomes["ghost"].error, VehicleUnavailable)
        finally:
            for task in tasks:
                task.cancel()
