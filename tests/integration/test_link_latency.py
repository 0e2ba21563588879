"""TIMESYNC latency against the simulator over real UDP: the simulator answers as ArduPilot
does, and an injected link delay (sitl.faults) shows up in the measured round trip."""

from __future__ import annotations

import math

from sitl.faults import Faults
from uav.fleet import Fleet, FleetEntry

from tests.fixtures_sim import free_udp_port, make_sim, poll_until, running, vehicle_and_sim

HOME = (106.52, 29.62, 260.0)
DEADLINE_S = 20.0  # a ceiling for a loaded 2-core machine, not a measurement


async def test_latency_is_measured_and_follows_the_injected_delay() -> None:
    async with vehicle_and_sim("copter", home=HOME, speedup=10.0,
                               ekf_ready_after_s=1.0) as (vehicle, sim):
        vehicle.link.timesync_period_s = 0.5
        await poll_until(lambda: vehicle.link_quality().latency_ms < math.inf, "first answer",
                         deadline_s=DEADLINE_S)
        quick = vehicle.link_quality()
        assert 0.0 <= quick.latency_ms < 200.0  # loopback, no delay
        assert quick.packet_loss == 0.0 and quick.last_heard_age_s < 2.0

        sim.faults.delay_ms = 150.0  # each way
        before = vehicle.link.stats(1).timesync_answers
        await poll_until(lambda: vehicle.link.stats(1).timesync_answers >= before + 3,
                         "answers with the delay", deadline_s=DEADLINE_S)
        slow = vehicle.link_quality()
        assert 295.0 <= slow.latency_ms <= 600.0  # 2 × 150 ms, plus the scheduling
        # the smoothed value moves toward it, gain 1/8 per sample
        assert quick.latency_ms < slow.latency_smoothed_ms < slow.latency_ms

        sim.faults.delay_ms = 0.0
        before = vehicle.link.stats(1).timesync_answers
        await poll_until(lambda: vehicle.link.stats(1).timesync_answers >= before + 2,
                         "answers without the delay", deadline_s=DEADLINE_S)
        fast = vehicle.link_quality()
        assert fast.latency_ms < 200.0  # the last answer is fast again
        assert fast.latency_smoothed_ms > fast.latency_ms + 20.0  # the history remembers
        assert sim.counters["handler_errors"] == 0


async def test_fleet_states_carry_the_latency() -> None:
    port = free_udp_port()
    sim = make_sim("copter", 1, port, home=HOME, speedup=10.0, ekf_ready_after_s=1.0,
                   faults=Faults(delay_ms=50.0))
    fleet = Fleet([FleetEntry("uav", "copter", f"udpin:127.0.0.1:{port}", 1)])
    async with running(sim.run(), fleet.run()):
        await poll_until(lambda: fleet.states()["uav"]["latency_ms"] is not None,
                         "latency in the fleet state", deadline_s=DEADLINE_S)
        state = fleet.states()["uav"]
        assert 95.0 <= state["latency_ms"] <= 400.0  # 2 × 50 ms injected
        assert state["latency_smoothed_ms"] is not None
        assert state["packet_loss"] == 0.0 and state["last_heard_age_s"] < 2.0
