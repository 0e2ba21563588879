"""Acceptance flows for one connected copter, whoever flies it: the built-in simulator
(sitl.vehicle_sim) or real ArduPilot SITL. Each flow drives a ``uav.Vehicle`` the way the
service does and asserts what ArduPilot answers; ``Rig`` carries what a flow may need
besides the vehicle (a cuttable relay, the deadlines of the backend)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from sitl.vehicle_sim import SimVehicle
from uav import mission
from uav.errors import CommandFailed, ParamNotFound
from uav.fence import Fence
from uav.link import Subscription
from uav.telemetry import Telemetry
from uav.vehicle import Vehicle

from tests.udp_relay import UdpRelay

__all__ = ["Rig", "offset", "distance_m", "arm_when_ready", "ReachedLog", "wait_state",
           "mission_with_loiter_and_rtl", "fence_upload_and_breach", "parameter_set_verified",
           "link_loss_and_recovery", "mission_interrupted_and_resumed", "resume_plan"]

M_PER_DEG_LAT = 111_320.0  # WGS84 mean, ~1 % over a few hundred metres


@dataclass(slots=True)
class Rig:
    """A connected copter: its ``Vehicle``, the relay its packets go through, deadlines."""

    backend: str  # "sim" or "sitl"
    vehicle: Vehicle
    deadline_s: float  # for one phase of a flow (a climb, a leg, a landing)
    relay: UdpRelay | None = None  # between vehicle and ground link, for link-loss flows
    sim: SimVehicle | None = None  # the simulator, when it is one
    speedup: float = 1.0  # vehicle time / wall time


def offset(lon: float, lat: float, north_m: float, east_m: float) -> tuple[float, float]:
    """(lon, lat) ``north_m``/``east_m`` away."""
    return (lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))),
            lat + north_m / M_PER_DEG_LAT)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dy = (lat2 - lat1) * M_PER_DEG_LAT
    dx = (lon2 - lon1) * M_PER_DEG_LAT * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


async def wait_state(rig: Rig, predicate: Callable[[Telemetry], bool], what: str,
                     deadline_s: float | None = None) -> Telemetry:
    """The first snapshot satisfying ``predicate``; AssertionError with the last state."""
    try:
        return await rig.vehicle.wait_for(predicate, deadline_s or rig.deadline_s)
    except TimeoutError:
        raise AssertionError(f"{rig.backend}: {what}: not seen within "
                             f"{deadline_s or rig.deadline_s} s; last {rig.vehicle.state}") from None


async def arm_when_ready(rig: Rig) -> None:
    """Arm in GUIDED; ArduPilot refuses until its pre-arm checks pass: retry until then."""
    v = rig.vehicle
    await v.set_mode("GUIDED")
    loop = asyncio.get_running_loop()
    end = loop.time() + rig.deadline_s
    while True:
        try:
            await v.arm()
            return
        except CommandFailed:
            if loop.time() > end:
                raise
            await asyncio.sleep(1.0)


class ReachedLog:
    """MISSION_ITEM_REACHED sequence numbers as they come (a bounded subscription)."""

    def __init__(self, vehicle: Vehicle) -> None:
        self._sub: Subscription = vehicle.link.subscribe(
            vehicle.system_id, types={"MISSION_ITEM_REACHED"}, maxsize=256)
        self.seqs: list[int] = []

    def drain(self) -> list[int]:
        while (msg := self._sub.get_nowait()) is not None:
            if not self.seqs or self.seqs[-1] != msg.seq:  # a repeated report is one event
                self.seqs.append(msg.seq)
        return self.seqs

    def close(self) -> None:
        self._sub.close()


def _here(rig: Rig) -> tuple[float, float]:
    t = rig.vehicle.state
    return t.lon_deg, t.lat_deg


async def _landed_and_disarmed(rig: Rig, deadline_s: float | None = None) -> Telemetry:
    return await wait_state(rig, lambda t: t.landed and not t.armed, "landed and disarmed",
                            deadline_s or 3 * rig.deadline_s)


async def mission_with_loiter_and_rtl(rig: Rig) -> None:
    """Upload, read back, fly: takeoff, waypoint, timed loiter, RTL home, land, disarm."""
    v = rig.vehicle
    lon0, lat0 = _here(rig)
    wp = offset(lon0, lat0, 120.0, 0.0)
    plan = [mission.takeoff(20.0), mission.waypoint(*wp, 20.0),
            mission.loiter_time(*wp, 20.0, 5.0), mission.return_to_launch()]
    await v.upload_mission(plan)
    back = await v.download_mission()
    assert [i.command for i in back] == [i.command for i in plan]
    assert back[1].lat_deg == wp[1] or abs(back[1].lat_deg - wp[1]) < 1e-6
    reached = ReachedLog(v)
    try:
        await arm_when_ready(rig)
        await v.set_mode("AUTO")
        await wait_state(rig, lambda t: t.alt_rel_m > 15.0, "climbed")
        at = await wait_state(rig, lambda t: distance_m(t.lon_deg, t.lat_deg, *wp) < 10.0,
                              "at the waypoint")
        assert 15.0 < at.alt_rel_m < 25.0
        await wait_state(rig, lambda t: t.last_reached_seq >= 3, "loiter done")
        home = await _landed_and_disarmed(rig)
        assert distance_m(home.lon_deg, home.lat_deg, lon0, lat0) < 10.0
        seqs = reached.drain()
        assert seqs[:3] == [1, 2, 3], seqs
    finally:
        reached.close()


async def fence_upload_and_breach(rig: Rig) -> None:
    """An inclusion polygon round home, enabled; flying out of it brings the fence action
    (FENCE_ACTION 1: RTL, or LAND when RTL is impossible)."""
    v = rig.vehicle
    lon0, lat0 = _here(rig)
    square = [offset(lon0, lat0, n, e) for n, e in ((-60, -60), (-60, 60), (60, 60), (60, -60))]
    await v.upload_fence(Fence.inclusion_polygon(square))
    back = await v.download_fence()
    assert len(back.polygons) == 1 and len(back.polygons[0].vertices) == 4
    for (lon, lat), (blon, blat) in zip(square, back.polygons[0].vertices):
        assert abs(lon - blon) < 1e-6 and abs(lat - blat) < 1e-6
    assert await v.set_param("FENCE_ACTION", 1) == 1
    assert await v.set_param("FENCE_ENABLE", 1) == 1
    await arm_when_ready(rig)
    await v.takeoff(15.0)
    await wait_state(rig, lambda t: t.alt_rel_m > 12.0, "climbed")
    await v.goto(*offset(lon0, lat0, 0.0, 200.0), 15.0)
    out = await wait_state(rig, lambda t: t.mode in ("RTL", "LAND"), "fence action")
    # it turned at the fence, well short of the target 200 m out
    assert distance_m(out.lon_deg, out.lat_deg, lon0, lat0) < 150.0
    await _landed_and_disarmed(rig)


async def parameter_set_verified(rig: Rig) -> None:
    """PARAM_SET verified from the echo, read back by name; an unknown name is not found."""
    v = rig.vehicle
    before = await v.get_param("FENCE_RADIUS")
    new = 180.0 if before != 180.0 else 170.0
    assert await v.set_param("FENCE_RADIUS", new) == new
    assert await v.get_param("FENCE_RADIUS") == new
    assert v.param_cache["FENCE_RADIUS"].value == new
    try:
        await v.get_param("YINGJI_NO_SUCH", timeout_s=0.5, attempts=2)
    except ParamNotFound:
        pass
    else:
        raise AssertionError("an unknown parameter was found")


async def link_loss_and_recovery(rig: Rig, *, cut_s: float = 6.0) -> None:
    """In AUTO with FS_GCS_ENABLE 1, a radio outage longer than FS_GCS_TIMEOUT: the
    vehicle goes silent for the ground side and returns (GCS failsafe RTL); when the link
    is back it is heard again, streams resume, and it stays in RTL."""
    v = rig.vehicle
    relay = rig.relay
    assert relay is not None, "the link-loss flow needs a rig with a relay"
    lon0, lat0 = _here(rig)
    assert await v.set_param("FS_GCS_ENABLE", 1) == 1
    # Our heartbeats come at 1 Hz of wall time, i.e. every `speedup` seconds of vehicle
    # time: the timeout must span a few of them, or the failsafe fires with the link up.
    timeout_s = max(5.0, 3.0 * rig.speedup)
    assert await v.set_param("FS_GCS_TIMEOUT", timeout_s) == timeout_s
    cut_s = max(cut_s, 2.0 * timeout_s / rig.speedup)
    # the failsafe watches a ground station it has heard (Copter::failsafe_gcs_check
    # does nothing before the first GCS heartbeat): let a few of ours through first
    await asyncio.sleep(2.5)
    far = offset(lon0, lat0, 600.0, 0.0)
    await v.upload_mission([mission.takeoff(20.0), mission.waypoint(*far, 20.0),
                            mission.return_to_launch()])
    await arm_when_ready(rig)
    await v.set_mode("AUTO")
    await wait_state(rig, lambda t: t.alt_rel_m > 15.0 and t.mission_seq >= 2, "on the long leg")
    assert v.state.mode == "AUTO"  # no failsafe while the link is up
    relay.cut()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + rig.deadline_s
        while v.link_quality().last_heard_age_s < 1.5:
            assert loop.time() < end, "still heard with the link cut"
            await asyncio.sleep(0.1)
        assert not v.heard_within(1.5)
        await asyncio.sleep(cut_s)
    finally:
        relay.restore()
    back = await wait_state(rig, lambda t: v.heard_within(1.0) and t.heartbeat_seen,
                            "heard again")
    assert back.mode in ("RTL", "LAND"), f"no GCS failsafe: {back.mode}"
    assert relay.dropped > 0
    await wait_state(rig, lambda t: v.heard_within(1.0) and t.mode in ("RTL", "LAND")
                     and math.isfinite(t.lat_deg), "telemetry flowing after the outage")
    await _landed_and_disarmed(rig)


def resume_plan(lon0: float, lat0: float) -> list[mission.MissionItem]:
    """Takeoff, a 150 m square of four waypoints, RTL: items 1..6."""
    a = offset(lon0, lat0, 150.0, 0.0)
    b = offset(lon0, lat0, 150.0, 150.0)
    c = offset(lon0, lat0, 0.0, 150.0)
    return [mission.takeoff(20.0), mission.waypoint(*a, 20.0), mission.waypoint(*b, 20.0),
            mission.waypoint(*c, 20.0), mission.waypoint(lon0, lat0, 20.0),
            mission.return_to_launch()]


async def mission_interrupted_and_resumed(rig: Rig) -> None:
    """AUTO interrupted by the operator (LOITER) on the way to item 3, then resumed: the
    items reached afterwards continue from 3, not from the start."""
    v = rig.vehicle
    lon0, lat0 = _here(rig)
    plan = resume_plan(lon0, lat0)
    await v.upload_mission(plan)
    reached = ReachedLog(v)
    try:
        await arm_when_ready(rig)
        await v.set_mode("AUTO")
        await wait_state(rig, lambda t: t.last_reached_seq >= 2 and t.mission_seq == 3,
                         "on the way to item 3")
        await v.set_mode("LOITER")
        interrupted = v.state.mission_seq
        assert interrupted == 3
        before = list(reached.drain())
        assert before == [1, 2], before
        held = v.state
        await asyncio.sleep(1.0)
        assert v.state.mode == "LOITER" and reached.drain() == before  # nothing reached
        assert distance_m(v.state.lon_deg, v.state.lat_deg, held.lon_deg, held.lat_deg) < 15.0

        assert await v.resume_mission() == interrupted
        assert v.state.mode == "AUTO"
        await wait_state(rig, lambda t: t.last_reached_seq >= 5, "the rest of the square",
                         3 * rig.deadline_s)
        after = reached.drain()[len(before):]
        assert after[:3] == [3, 4, 5], after
        await _landed_and_disarmed(rig)
    finally:
        reached.close()
