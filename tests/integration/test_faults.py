"""The ground side (uav) under injected faults (sitl.faults): loss, delay, cuts, refusals,
reboots. Real UDP on 127.0.0.1, seeded loss."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.faults import Faults
from sitl.vehicle_sim import SimVehicle
from uav import mission
from uav.errors import CommandDenied, CommandFailed, MissionError
from uav.fleet import Fleet, FleetEntry
from uav.link import open_link
from uav.telemetry import Telemetry
from uav.vehicle import Vehicle

from tests.fixtures_sim import free_udp_port, make_sim, poll_until, running, vehicle_and_sim

HOME_LON, HOME_LAT, HOME_ALT_M = 106.52, 29.62, 260.0
HOME = (HOME_LON, HOME_LAT, HOME_ALT_M)
SPEEDUP = 30.0
DEADLINE_S = 25.0  # a ceiling for a loaded 2-core machine, not a measurement
M_PER_DEG_LAT = 111_320.0


# Other keywords override the partial's, so a test may set its own ekf_ready_after_s.
_sim = partial(make_sim, "copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0)
_until = partial(poll_until, deadline_s=DEADLINE_S)


def _one(faults: Faults | None = None,
         **vehicle_kw: Any) -> AbstractAsyncContextManager[tuple[Vehicle, SimVehicle]]:
    return vehicle_and_sim("copter", home=HOME, speedup=SPEEDUP, ekf_ready_after_s=2.0,
                           faults=faults, vehicle_kwargs=vehicle_kw)


@asynccontextmanager
async def _fleet(sim: SimVehicle, port: int, *, link_lost_s: float
                 ) -> AsyncIterator[tuple[Fleet, list[tuple[str, dict[str, Any]]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    fleet = Fleet([FleetEntry("uav", "copter", f"udpin:127.0.0.1:{port}", sim.system_id)],
                  link_lost_s=link_lost_s, on_event=lambda k, _n, d: events.append((k, d)))
    async with running(sim.run(), fleet.run()):
        yield fleet, events


def _kinds(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [k for k, _ in events if k in ("vehicle.connected", "vehicle.lost", "vehicle.recovered")]


def _plan() -> list[mission.MissionItem]:
    lat = HOME_LAT + 200.0 / M_PER_DEG_LAT
    return [mission.takeoff(30.0), mission.waypoint(HOME_LON, lat, 30.0),
            mission.waypoint(HOME_LON + 0.002, lat, 30.0), mission.waypoint(HOME_LON + 0.002,
                                                                            HOME_LAT, 30.0),
            mission.loiter_time(HOME_LON, HOME_LAT, 30.0, 3.0), mission.return_to_launch()]


async def test_twenty_percent_loss_both_ways_mission_and_commands_still_work() -> None:
    faults = Faults(drop_rx_pct=20.0, drop_tx_pct=20.0, seed=11)
    async with _one(faults, command_timeout_s=0.5, command_attempts=6) as (vehicle, sim):
        async with asyncio.timeout(DEADLINE_S):  # never hangs: a typed error or success
            await vehicle.wait_ready(DEADLINE_S)
            plan = _plan()
            try:
                await vehicle.upload_mission(plan, timeout_s=20.0, request_timeout_s=0.5)
            except MissionError as err:  # a typed failure is acceptable, a hang is not
                pytest.fail(f"upload failed under 20 % loss (seed 11): {err!r}")
            assert sim.mission_count == len(plan) + 1  # home slot + plan
            back = await vehicle.download_mission(timeout_s=20.0, request_timeout_s=0.5)
            assert [i.command for i in back] == [i.command for i in plan]
            await vehicle.set_mode("GUIDED")
            await vehicle.arm()
        # it armed (DISARM_DELAY, 10 s of sim time, may have disarmed it again before the answer got through)
        assert sim.counters["arms"] >= 1
        assert sim.counters["tx_dropped_fault"] > 0 and sim.counters["rx_dropped_fault"] > 0
        stats = vehicle.link.stats(1)
        assert stats is not None and stats.lost > 0  # the ground station saw the loss


async def test_delayed_link_still_acknowledges() -> None:
    async with _one(Faults(delay_ms=300.0), command_timeout_s=1.5) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.set_mode("GUIDED")
        assert sim.counters["tx_delayed"] > 0 and sim.counters["rx_delayed"] > 0
        assert sim.mode == "GUIDED"


async def test_commands_are_retried_with_confirmation_incremented() -> None:
    """A bare UDP peer that answers only the third COMMAND_LONG: it records what came."""
    link = await open_link("udpin:127.0.0.1:0")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setblocking(False)
    peer.bind(("127.0.0.1", 0))
    enc = mav.MAVLink(None, srcSystem=9, srcComponent=1)
    dec = mav.MAVLink(None)
    seen: list[int] = []
    loop = asyncio.get_running_loop()

    async def fake_vehicle() -> None:
        dest = ("127.0.0.1", link.local_port)
        peer.sendto(enc.heartbeat_encode(2, 3, 0, 0, 3).pack(enc), dest)
        while True:
            data = await loop.sock_recv(peer, 2048)
            for msg in dec.parse_buffer(data) or []:
                if msg.get_type() != "COMMAND_LONG":
                    continue
                seen.append(msg.confirmation)
                if msg.confirmation >= 2:
                    peer.sendto(enc.command_ack_encode(msg.command, mav.MAV_RESULT_ACCEPTED, 0, 0,
                                                       255, 190).pack(enc), dest)

    try:
        vehicle = Vehicle(link, 9, command_timeout_s=0.3, command_attempts=3)
        async with running(fake_vehicle()):
            await _until(lambda: link.stats(9) is not None, "peer heard")
            await vehicle.command(mav.MAV_CMD_DO_SET_MODE, 1, 4)
        assert seen == [0, 1, 2]
    finally:
        peer.close()
        await link.close()


async def test_denied_command_raises_command_denied() -> None:
    faults = Faults(deny_commands={mav.MAV_CMD_COMPONENT_ARM_DISARM})
    async with _one(faults) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        with pytest.raises(CommandDenied) as info:
            await vehicle.arm()
        assert info.value.result == mav.MAV_RESULT_DENIED
        assert sim.counters["commands_denied_fault"] == 1 and not sim.armed
        sim.faults.deny_commands.clear()
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        assert sim.armed


async def test_fast_battery_drain() -> None:
    async with _one(Faults(battery_drain_x=200.0)) as (vehicle, sim):
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.takeoff(20.0)
        t = await vehicle.wait_for(lambda t: t.battery_pct < 80.0, DEADLINE_S)
        assert t.battery_pct < 80.0 and sim.battery_pct < 80.0


async def test_link_cut_for_three_seconds_is_lost_then_recovered() -> None:
    port = free_udp_port()
    sim = _sim(1, port)
    async with _fleet(sim, port, link_lost_s=1.0) as (fleet, events):
        await _until(lambda: "vehicle.connected" in _kinds(events), "connected")
        await fleet.vehicle("uav").wait_ready(DEADLINE_S)
        sim.cut_link(3.0)
        await _until(lambda: "vehicle.lost" in _kinds(events), "lost")
        assert fleet.link_state("uav") == "lost"
        await _until(lambda: "vehicle.recovered" in _kinds(events), "recovered")
        assert _kinds(events) == ["vehicle.connected", "vehicle.lost", "vehicle.recovered"]
        assert sim.counters["tx_dropped_cut"] > 0
        await fleet.vehicle("uav").set_mode("GUIDED")  # commands work again


async def test_reboot_goes_silent_and_comes_back_ready() -> None:
    port = free_udp_port()
    sim = _sim(1, port, ekf_ready_after_s=3.0)
    async with _fleet(sim, port, link_lost_s=1.0) as (fleet, events):
        await _until(lambda: "vehicle.connected" in _kinds(events), "connected")
        vehicle = fleet.vehicle("uav")
        await vehicle.wait_ready(DEADLINE_S)
        await vehicle.upload_mission(_plan())
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()
        await vehicle.takeoff(10.0)  # airborne, so DISARM_DELAY does not disarm it meanwhile
        await vehicle.wait_for(lambda t: t.armed and t.alt_rel_m > 5.0, DEADLINE_S)
        with pytest.raises(CommandDenied):
            await vehicle.reboot()  # armed: refused here
        with pytest.raises(CommandFailed):
            await vehicle.reboot(force=True)  # and by the autopilot (ArduPilot refuses)
        assert sim.boot_count == 1 and sim.armed
        await vehicle.land()
        await vehicle.wait_for(lambda t: t.landed and not t.armed, DEADLINE_S)

        await vehicle.reboot()
        assert not vehicle.state.ekf_ok  # readiness cleared: wait_ready waits for the boot
        await _until(lambda: "vehicle.lost" in _kinds(events), "silent after reboot")
        await _until(lambda: "vehicle.recovered" in _kinds(events), "back after reboot")
        ready: Telemetry = await fleet.vehicle("uav").wait_ready(DEADLINE_S)
        assert ready.ekf_ok and ready.position_valid
        assert sim.boot_count == 2
        assert sim.mission_count == len(_plan()) + 1  # the mission is kept
        assert sim.mode == "STABILIZE" and not sim.armed  # boot defaults
        await vehicle.set_mode("GUIDED")
        await vehicle.arm()


def test_fault_settings_are_checked_and_seeded() -> None:
    with pytest.raises(ValueError):
        Faults(drop_rx_pct=120.0)
    a, b = Faults(drop_tx_pct=30.0, seed=4), Faults(drop_tx_pct=30.0, seed=4)
    assert [a.drop_tx() for _ in range(200)] == [b.drop_tx() for _ in range(200)]
    c = Faults(drop_tx_pct=30.0, seed=5)
    assert [a.drop_tx() for _ in range(200)] != [c.drop_tx() for _ in range(200)]
