"""A copter's AUTO mission interrupted and resumed, against the simulator over real UDP:
operator pause (DO_PAUSE_CONTINUE), a mode change (LOITER, BRAKE), and a link cut (fault
injection) that trips the GCS failsafe RTL. After the resume the items reached
(MISSION_ITEM_REACHED) continue from the interrupted one, not from the start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from sitl.vehicle_sim import SimVehicle
from uav.errors import MissionError

from tests import vehicle_flows as flows
from tests.fixtures_sim import vehicle_and_sim

HOME = (106.52, 29.62, 260.0)
DEADLINE_S = 30.0  # a ceiling for a loaded 2-core machine, not a measurement


@asynccontextmanager
async def _flying_the_square(speedup: float = 20.0, **sim_kw: object
                             ) -> AsyncIterator[tuple[flows.Rig, SimVehicle, flows.ReachedLog]]:
    """A copter in AUTO on resume_plan, on its way to item 3 (items 1 and 2 reached)."""
    async with vehicle_and_sim("copter", home=HOME, speedup=speedup, ekf_ready_after_s=2.0,
                               ready_within_s=DEADLINE_S, **sim_kw) as (vehicle, sim):
        rig = flows.Rig("sim", vehicle, deadline_s=DEADLINE_S, sim=sim)
        t = vehicle.state
        await vehicle.upload_mission(flows.resume_plan(t.lon_deg, t.lat_deg))
        reached = flows.ReachedLog(vehicle)
        try:
            await flows.arm_when_ready(rig)
            await vehicle.set_mode("AUTO")
            await flows.wait_state(rig, lambda t: t.last_reached_seq >= 2 and t.mission_seq == 3,
                                   "on the way to item 3")
            yield rig, sim, reached
        finally:
            reached.close()


async def _finish(rig: flows.Rig, reached: flows.ReachedLog, before: list[int]) -> list[int]:
    """Fly on to the end; the items reached after the interruption."""
    await flows.wait_state(rig, lambda t: t.last_reached_seq >= 5, "the rest of the square",
                           3 * DEADLINE_S)
    await flows.wait_state(rig, lambda t: t.landed and not t.armed, "landed", 3 * DEADLINE_S)
    return reached.drain()[len(before):]


@pytest.mark.parametrize("mode", ["LOITER", "BRAKE"])
async def test_mode_change_then_resume_continues_from_the_interrupted_item(mode: str) -> None:
    async with _flying_the_square() as (rig, sim, reached):
        v = rig.vehicle
        await v.set_mode(mode)
        interrupted = v.state.mission_seq
        assert interrupted == 3
        before = list(reached.drain())
        await asyncio.sleep(0.5)  # 10 s of sim time holding
        assert sim.mode == mode and reached.drain() == before == [1, 2]
        assert await v.resume_mission() == 3
        after = await _finish(rig, reached, before)
        assert after == [3, 4, 5, 6]  # not 1, 2 again


async def test_resume_ignores_mis_restart() -> None:
    """MIS_RESTART 1 restarts the mission on AUTO entry; resume_mission still goes on
    from the interrupted item (it makes the item current after entering AUTO)."""
    async with _flying_the_square() as (rig, sim, reached):
        v = rig.vehicle
        assert await v.set_param("MIS_RESTART", 1) == 1
        await v.set_mode("LOITER")
        before = list(reached.drain())
        assert await v.resume_mission() == 3
        after = await _finish(rig, reached, before)
        assert after == [3, 4, 5, 6]
        assert 1 not in after


async def test_operator_pause_and_continue_in_auto() -> None:
    async with _flying_the_square() as (rig, sim, reached):
        v = rig.vehicle
        outcome = await v.pause()
        assert outcome.method == "pause_continue" and v.state.mode == "AUTO"
        before = list(reached.drain())
        lat, lon = sim.lat, sim.lon
        await asyncio.sleep(0.5)
        assert (abs(sim.lat - lat), abs(sim.lon - lon)) < (1e-5, 1e-5)  # stopped on the track
        await v.resume()
        after = await _finish(rig, reached, before)
        assert after == [3, 4, 5, 6]


async def test_link_cut_gcs_failsafe_rtl_then_resume() -> None:
    async with _flying_the_square(speedup=8.0, fs_gcs_enable=True) as (rig, sim, reached):
        v = rig.vehicle
        # slow on this leg, so the failsafe (after >= 3 s of wall-clock silence) comes
        # well before item 3 whatever the machine's load: ~100 of its 150 m at most
        assert await v.set_param("WP_SPD", 4.0) == 4.0
        interrupted = v.state.mission_seq
        before = list(reached.drain())
        sim.cut_link(4.5)  # fault injection: the radio is gone both ways
        await flows.wait_state(rig, lambda t: v.heard_within(1.0) and t.mode == "RTL",
                               "back on the link, in the GCS failsafe RTL")
        await flows.wait_state(rig, lambda t: any("GCS Failsafe" in s.text for s in t.statustext),
                               "failsafe reported")
        assert sim.armed and not sim.landed  # still on the way home
        assert reached.drain() == before == [1, 2]  # RTL reaches no mission item
        assert v.state.mission_seq == interrupted == 3
        assert await v.set_param("WP_SPD", 10.0) == 10.0
        assert await v.resume_mission() == 3
        after = await _finish(rig, reached, before)
        assert after == [3, 4, 5, 6]


async def test_resume_from_a_chosen_item() -> None:
    async with _flying_the_square() as (rig, sim, reached):
        v = rig.vehicle
        await v.set_mode("LOITER")
        before = list(reached.drain())
        assert await v.resume_mission(from_seq=5) == 5
        after = await _finish(rig, reached, before)
        assert after == [5, 6]  # 3 and 4 skipped as asked


async def test_resume_needs_an_item_that_exists() -> None:
    async with vehicle_and_sim("copter", home=HOME, speedup=20.0, ekf_ready_after_s=2.0,
                               ready_within_s=DEADLINE_S) as (vehicle, sim):
        rig = flows.Rig("sim", vehicle, deadline_s=DEADLINE_S, sim=sim)
        await flows.wait_state(rig, lambda t: t.mission_seq >= 0, "MISSION_CURRENT")
        with pytest.raises(MissionError, match="no mission item"):
            await vehicle.resume_mission()  # no mission, nothing interrupted
        t = vehicle.state
        await vehicle.upload_mission(flows.resume_plan(t.lon_deg, t.lat_deg))
        await flows.wait_state(rig, lambda t: t.mission_count == 6, "the mission's size")
        with pytest.raises(MissionError, match="does not exist"):
            await vehicle.resume_mission(from_seq=7)
        with pytest.raises(ValueError, match="numbered from 1"):
            await vehicle.set_mission_current(0)
        assert sim.mode != "AUTO"  # nothing was changed
