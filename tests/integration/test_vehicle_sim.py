"""The simulated ArduPilot vehicle, driven over real UDP with plain pymavlink encode/decode."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle_sim import COPTER_MODES, ROVER_MODES, SimVehicle

from tests.fixtures_sim import free_udp_port



HOME_LON, HOME_LAT = 106.70, 29.80
WAIT_S = 15.0  # generous deadline per expected message; the checks are not about speed


class RawGcs(asyncio.DatagramProtocol):
    """A minimal ground station: one UDP socket, pymavlink codec, a bounded inbox."""

    def __init__(self) -> None:
        self.mav = mav.MAVLink(None, srcSystem=255, srcComponent=mav.MAV_COMP_ID_MISSIONPLANNER)
        self.inbox: asyncio.Queue[mav.MAVLink_message] = asyncio.Queue(maxsize=20000)
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.remote = addr
        for msg in self.mav.parse_buffer(data) or []:
            if self.inbox.full():
                self.inbox.get_nowait()
                self.dropped += 1
            self.inbox.put_nowait(msg)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def send(self, msg: mav.MAVLink_message) -> None:
        assert self.transport is not None and self.remote is not None
        self.transport.sendto(msg.pack(self.mav), self.remote)

    def heartbeat(self) -> None:
        self.send(mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3))

    def drain(self) -> list[mav.MAVLink_message]:
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out

    async def recv(self, mtype: str | tuple[str, ...],
                   pred: Callable[[mav.MAVLink_message], bool] = lambda m: True,
                   timeout: float = WAIT_S) -> mav.MAVLink_message:
        """The next message of this type matching ``pred`` (others are discarded)."""
        types = (mtype,) if isinstance(mtype, str) else mtype
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.inbox.get()
                if msg.get_type() in types and pred(msg):
                    return msg

    async def collect(self, seconds: float) -> list[mav.MAVLink_message]:
        await asyncio.sleep(seconds)
        return self.drain()

    def command_long(self, command: int, *params: float, sysid: int = 1) -> None:
        p = list(params) + [0.0] * (7 - len(params))
        self.send(mav.MAVLink_command_long_message(sysid, 1, command, 0, *p))

    async def command(self, command: int, *params: float, sysid: int = 1) -> int:
        self.command_long(command, *params, sysid=sysid)
        ack = await self.recv("COMMAND_ACK", lambda m: m.command == command)
        return ack.result

    async def set_mode(self, num: int) -> int:
        return await self.command(mav.MAV_CMD_DO_SET_MODE, mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, num)

    async def wait_heartbeat(self, pred: Callable[[mav.MAVLink_message], bool]) -> mav.MAVLink_message:
        return await self.recv("HEARTBEAT", pred)

    async def wait_text(self, fragment: str) -> mav.MAVLink_message:
        return await self.recv("STATUSTEXT", lambda m: fragment in m.text)

    async def wait_ekf_ready(self) -> None:
        await self.recv("EKF_STATUS_REPORT", lambda m: m.flags == 0x33F)

    async def upload(self, items: list[mav.MAVLink_mission_item_int_message],
                     mission_type: int = mav.MAV_MISSION_TYPE_MISSION) -> tuple[list[int], int]:
        """Upload answering each request; return (requested seqs, MISSION_ACK type)."""
        self.send(mav.MAVLink_mission_count_message(1, 1, len(items), mission_type))
        asked: list[int] = []
        while True:
            msg = await self.recv(("MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"))
            if msg.get_type() == "MISSION_ACK":
                return asked, msg.type
            assert msg.get_type() == "MISSION_REQUEST"  # ArduPilot asks with MISSION_REQUEST
            asked.append(msg.seq)
            self.send(items[msg.seq])

    async def download(self, mission_type: int = mav.MAV_MISSION_TYPE_MISSION) -> list[mav.MAVLink_message]:
        self.send(mav.MAVLink_mission_request_list_message(1, 1, mission_type))
        count = (await self.recv("MISSION_COUNT")).count
        out = []
        for seq in range(count):
            self.send(mav.MAVLink_mission_request_int_message(1, 1, seq, mission_type))
            out.append(await self.recv("MISSION_ITEM_INT", lambda m, s=seq: m.seq == s))
        self.send(mav.MAVLink_mission_ack_message(1, 1, mav.MAV_MISSION_ACCEPTED, mission_type))
        return out


def item(seq: int, command: int, lat: float = 0.0, lon: float = 0.0, alt: float = 0.0, *,
         frame: int = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, p1: float = 0.0, p3: float = 0.0,
         mission_type: int = mav.MAV_MISSION_TYPE_MISSION) -> mav.MAVLink_mission_item_int_message:
    return mav.MAVLink_mission_item_int_message(1, 1, seq, frame, command, 0, 1, p1, 0.0, p3, 0.0,
                                                round(lat * 1e7), round(lon * 1e7), alt, mission_type)


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return (lat + north_m / 111318.845,
            lon + east_m / (111318.845 * math.cos(math.radians(lat))))


def flight_plan() -> list[mav.MAVLink_mission_item_int_message]:
    wp_lat, wp_lon = offset(HOME_LAT, HOME_LON, 120.0, 60.0)
    return [
        item(0, mav.MAV_CMD_NAV_WAYPOINT, frame=mav.MAV_FRAME_GLOBAL_INT),  # home slot
        item(1, mav.MAV_CMD_NAV_TAKEOFF, alt=20.0),
        item(2, mav.MAV_CMD_NAV_WAYPOINT, wp_lat, wp_lon, 25.0),
        item(3, mav.MAV_CMD_NAV_LOITER_TIME, wp_lat, wp_lon, 25.0, p1=5.0, p3=10.0),
        item(4, mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=mav.MAV_FRAME_GLOBAL_INT),
    ]


@pytest_asyncio.fixture(loop_scope="function")
async def gcs() -> AsyncIterator[RawGcs]:
    loop = asyncio.get_running_loop()
    proto = RawGcs()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    proto.transport = transport
    try:
        yield proto
    finally:
        transport.close()


async def start(sim_vehicle, gcs: RawGcs, **kwargs) -> SimVehicle:
    kwargs.setdefault("home_lon", HOME_LON)
    kwargs.setdefault("home_lat", HOME_LAT)
    v = await sim_vehicle(gcs_port=gcs.port, **kwargs)
    await gcs.recv("HEARTBEAT")  # learns the vehicle's address
    return v


async def ready_copter(sim_vehicle, gcs: RawGcs, **kwargs) -> SimVehicle:
    kwargs.setdefault("speedup", 50.0)
    v = await start(sim_vehicle, gcs, kind="copter", ekf_ready_after_s=2.0, **kwargs)
    await gcs.command(mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT, 500_000)
    await gcs.wait_ekf_ready()
    return v


# ---------------------------------------------------------------------------- identity, streams


async def test_heartbeat_identity_copter(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter", system_id=7)
    hb = await gcs.wait_heartbeat(lambda m: m.system_status != mav.MAV_STATE_BOOT)
    assert hb.get_srcSystem() == 7 and hb.get_srcComponent() == 1
    assert hb.autopilot == mav.MAV_AUTOPILOT_ARDUPILOTMEGA
    assert hb.type == mav.MAV_TYPE_QUADROTOR
    assert hb.custom_mode == COPTER_MODES["STABILIZE"] == 0
    assert hb.base_mode & mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    assert not hb.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED
    assert hb.system_status == mav.MAV_STATE_STANDBY
    assert v.mode == "STABILIZE" and not v.armed and v.landed


async def test_heartbeat_identity_boat_boots_initialising(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="boat", speedup=2.0, ekf_ready_after_s=10.0)
    first = await gcs.recv("HEARTBEAT")
    assert first.type == mav.MAV_TYPE_SURFACE_BOAT
    assert first.autopilot == mav.MAV_AUTOPILOT_ARDUPILOTMEGA
    assert first.custom_mode == ROVER_MODES["INITIALISING"] == 16
    later = await gcs.wait_heartbeat(lambda m: m.custom_mode != 16)
    assert later.custom_mode == ROVER_MODES["MANUAL"]  # INITIAL_MODE default


async def test_telemetry_only_when_requested(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="copter", ekf_ready_after_s=1.0)
    unasked = {m.get_type() for m in await gcs.collect(0.5)}
    assert unasked <= {"HEARTBEAT", "STATUSTEXT", "HOME_POSITION"}, unasked
    result = await gcs.command(mav.MAV_CMD_SET_MESSAGE_INTERVAL,
                               mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 200_000)
    assert result == mav.MAV_RESULT_ACCEPTED
    pos = await gcs.recv("GLOBAL_POSITION_INT", lambda m: m.lat != 0)
    assert pos.lat == pytest.approx(HOME_LAT * 1e7, abs=2) and pos.lon == pytest.approx(HOME_LON * 1e7, abs=2)
    gcs.send(mav.MAVLink_request_data_stream_message(1, 1, mav.MAV_DATA_STREAM_EXTENDED_STATUS, 4, 1))
    status = await gcs.recv("SYS_STATUS")
    assert status.battery_remaining == 100 and status.voltage_battery > 16000
    await gcs.recv("EKF_STATUS_REPORT")  # comes along once streams are asked for


async def test_request_message_autopilot_version_and_home(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="boat", ekf_ready_after_s=1.0)
    result = await gcs.command(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
    assert result == mav.MAV_RESULT_ACCEPTED
    ver = await gcs.recv("AUTOPILOT_VERSION")
    assert ver.capabilities & mav.MAV_PROTOCOL_CAPABILITY_MISSION_INT
    await gcs.wait_text("EKF3 IMU0 is using GPS")
    assert await gcs.command(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_HOME_POSITION) == 0
    home = await gcs.recv("HOME_POSITION")
    assert home.latitude == pytest.approx(HOME_LAT * 1e7, abs=2)


async def test_params_known_answered_unknown_silent(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="copter", system_id=3)
    gcs.send(mav.MAVLink_param_request_read_message(3, 1, b"NO_SUCH_PARAM", -1))
    gcs.send(mav.MAVLink_param_request_read_message(3, 1, b"RTL_ALT", -1))
    value = await gcs.recv("PARAM_VALUE")
    assert value.param_id == "RTL_ALT" and value.param_value == 1500.0
    gcs.send(mav.MAVLink_param_set_message(3, 1, b"FS_GCS_ENABLE", 1.0, mav.MAV_PARAM_TYPE_INT8))
    assert (await gcs.recv("PARAM_VALUE")).param_id == "FS_GCS_ENABLE"
    later = [m for m in await gcs.collect(0.3) if m.get_type() == "PARAM_VALUE"]
    assert later == []  # the unknown name was never answered


# ---------------------------------------------------------------------------- commands


async def test_arm_refused_before_ekf_ready_then_accepted(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter", speedup=20.0, ekf_ready_after_s=20.0)
    await gcs.wait_text("ArduPilot Ready")
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_FAILED
    text = await gcs.recv("STATUSTEXT", lambda m: m.text.startswith("Arm: "))
    assert "waiting for home" in text.text
    assert not v.armed
    await gcs.wait_text("EKF3 IMU0 is using GPS")
    assert await gcs.set_mode(COPTER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    await gcs.wait_heartbeat(lambda m: m.custom_mode == COPTER_MODES["GUIDED"])
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    hb = await gcs.wait_heartbeat(lambda m: m.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED)
    assert hb.system_status == mav.MAV_STATE_ACTIVE


async def test_unknown_command_unsupported(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="boat")
    assert await gcs.command(mav.MAV_CMD_USER_1) == mav.MAV_RESULT_UNSUPPORTED
    gcs.send(mav.MAVLink_command_int_message(1, 1, 0, mav.MAV_CMD_USER_2, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    ack = await gcs.recv("COMMAND_ACK", lambda m: m.command == mav.MAV_CMD_USER_2)
    assert ack.result == mav.MAV_RESULT_UNSUPPORTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_UNSUPPORTED


async def test_takeoff_needs_guided_and_armed(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs)
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_FAILED
    assert await gcs.set_mode(COPTER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_FAILED
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_ACCEPTED
    await gcs.command(mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 100_000)
    await gcs.recv("GLOBAL_POSITION_INT", lambda m: m.relative_alt > 9_900)
    assert not v.landed and v.alt_rel_m == pytest.approx(10.0, abs=0.2)
    # GUIDED go-to by SET_POSITION_TARGET_GLOBAL_INT
    lat, lon = offset(HOME_LAT, HOME_LON, 0.0, 80.0)
    gcs.send(mav.MAVLink_set_position_target_global_int_message(
        0, 1, 1, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, 0b0000_1111_1111_1000,
        round(lat * 1e7), round(lon * 1e7), 12.0, 0, 0, 0, 0, 0, 0, 0, 0))
    await gcs.recv("GLOBAL_POSITION_INT", lambda m: abs(m.lon - lon * 1e7) < 20)
    assert v.lon == pytest.approx(lon, abs=1e-6)


async def test_mode_rules_auto_without_mission(sim_vehicle, gcs):
    # Boat: FAILED, stays put, "No Mission. Can't set AUTO." (FACTS)
    await start(sim_vehicle, gcs, kind="boat", ekf_ready_after_s=1.0)
    await gcs.wait_text("EKF3 IMU0 is using GPS")
    assert await gcs.set_mode(ROVER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.set_mode(ROVER_MODES["AUTO"]) == mav.MAV_RESULT_FAILED
    await gcs.wait_text("No Mission. Can't set AUTO.")
    await gcs.wait_heartbeat(lambda m: m.custom_mode == ROVER_MODES["GUIDED"])
    # SET_MODE message: acknowledged with the message id as command.
    gcs.send(mav.MAVLink_set_mode_message(1, mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, ROVER_MODES["HOLD"]))
    ack = await gcs.recv("COMMAND_ACK", lambda m: m.command == mav.MAVLINK_MSG_ID_SET_MODE)
    assert ack.result == mav.MAV_RESULT_ACCEPTED


async def test_copter_auto_without_mission_disarmed_accepted(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter", ekf_ready_after_s=1.0)
    await gcs.wait_heartbeat(lambda m: m.system_status != mav.MAV_STATE_BOOT)
    assert await gcs.set_mode(COPTER_MODES["AUTO"]) == mav.MAV_RESULT_ACCEPTED
    await gcs.wait_heartbeat(lambda m: m.custom_mode == COPTER_MODES["AUTO"])
    assert v.mode == "AUTO"


async def test_copter_disarms_itself_when_not_taking_off(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs)
    assert await gcs.set_mode(COPTER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    armed_at_s = v.sim_time_s
    await gcs.wait_heartbeat(lambda m: not m.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED)
    assert v.sim_time_s - armed_at_s >= 10.0  # DISARM_DELAY, sim time
    assert v.mode == "GUIDED" and v.landed


async def test_low_battery_refuses_arming_and_triggers_rtl(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs)
    await gcs.set_mode(COPTER_MODES["GUIDED"])
    v.set_battery_pct(5.0)
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_FAILED
    assert "Battery" in (await gcs.recv("STATUSTEXT", lambda m: m.text.startswith("Arm: "))).text
    v.set_battery_pct(60.0)
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_ACCEPTED
    while v.alt_rel_m < 5.0:
        await gcs.recv("HEARTBEAT")
    v.set_battery_pct(15.0)
    await gcs.wait_text("Battery 1 is low")
    await gcs.wait_heartbeat(lambda m: m.custom_mode == COPTER_MODES["RTL"])


# ---------------------------------------------------------------------------- missions


async def test_mission_upload_requests_each_item_and_reads_back(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter")
    plan = flight_plan()
    asked, result = await gcs.upload(plan)
    assert asked == [0, 1, 2, 3, 4]
    assert result == mav.MAV_MISSION_ACCEPTED
    assert v.mission_count == 5
    back = await gcs.download()
    assert [m.command for m in back[1:]] == [m.command for m in plan[1:]]
    assert (back[0].command, back[0].x, back[0].y) == (0, 0, 0)  # home slot zeros until home is set
    assert back[2].frame == mav.MAV_FRAME_GLOBAL_RELATIVE_ALT  # non-INT frame numbers
    assert back[2].x == plan[2].x and back[2].y == plan[2].y and back[2].z == 25.0
    assert back[3].param1 == 5.0 and back[3].param3 == 1.0
    assert back[4].frame == mav.MAV_FRAME_GLOBAL
    # Clear all
    gcs.send(mav.MAVLink_mission_clear_all_message(1, 1, mav.MAV_MISSION_TYPE_MISSION))
    assert (await gcs.recv("MISSION_ACK")).type == mav.MAV_MISSION_ACCEPTED
    assert v.mission_count == 1


async def test_mission_request_retransmitted_when_item_is_late(sim_vehicle, gcs):
    await start(sim_vehicle, gcs, kind="boat")
    gcs.send(mav.MAVLink_mission_count_message(1, 1, 2, 0))
    first = await gcs.recv("MISSION_REQUEST")
    again = await gcs.recv("MISSION_REQUEST")  # nothing answered: asked again
    assert first.seq == again.seq == 0


@pytest.mark.parametrize(("bad", "expected"), [
    (dict(frame=99), mav.MAV_MISSION_UNSUPPORTED_FRAME),
    (dict(lat=95.0), mav.MAV_MISSION_INVALID_PARAM5_X),
])
async def test_bad_item_gets_specific_ack_and_partial_mission_kept(sim_vehicle, gcs, bad, expected):
    v = await start(sim_vehicle, gcs, kind="copter")
    kw = dict(lat=HOME_LAT, lon=HOME_LON, alt=30.0) | bad
    plan = [*flight_plan()[:3], item(3, mav.MAV_CMD_NAV_WAYPOINT, **kw)]
    asked, result = await gcs.upload(plan)
    assert asked == [0, 1, 2, 3]
    assert result == expected
    assert v.mission_count == 3  # items before the bad one are kept


async def test_fence_upload_reads_back(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter")
    corners = [offset(HOME_LAT, HOME_LON, n, e) for n, e in ((-100, -100), (-100, 100), (100, 100), (100, -100))]
    fence = [mav.MAVLink_mission_item_int_message(
        1, 1, i, mav.MAV_FRAME_GLOBAL, mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, 0, 1, 4, 0, 0, 0,
        round(la * 1e7), round(lo * 1e7), 0, mav.MAV_MISSION_TYPE_FENCE) for i, (la, lo) in enumerate(corners)]
    _, result = await gcs.upload(fence, mav.MAV_MISSION_TYPE_FENCE)
    assert result == mav.MAV_MISSION_ACCEPTED
    back = await gcs.download(mav.MAV_MISSION_TYPE_FENCE)
    assert [(m.x, m.y) for m in back] == [(m.x, m.y) for m in fence]
    assert v.param("FENCE_TOTAL") == 6 and v.param("FENCE_ENABLE") == 0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat1 - lat2) * 111_195.0
    dx = (lon1 - lon2) * 111_195.0 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


async def test_copter_full_flight_auto_rtl_lands_and_disarms(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs)
    _, result = await gcs.upload(flight_plan())
    assert result == mav.MAV_MISSION_ACCEPTED
    assert await gcs.set_mode(COPTER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    await gcs.wait_heartbeat(lambda m: m.custom_mode == COPTER_MODES["GUIDED"])
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.set_mode(COPTER_MODES["AUTO"]) == mav.MAV_RESULT_ACCEPTED
    await gcs.command(mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, 200_000)
    reached: list[int] = []
    landed_states: set[int] = set()
    wp_lat, wp_lon = offset(HOME_LAT, HOME_LON, 120.0, 60.0)
    while True:
        msg = await gcs.recv(("MISSION_ITEM_REACHED", "EXTENDED_SYS_STATE", "HEARTBEAT"))
        if msg.get_type() == "MISSION_ITEM_REACHED":
            reached.append(msg.seq)
            if msg.seq == 2:
                # reached means inside the waypoint's acceptance radius (2 m here): by the time the
                # message is read the copter, holding there, may sit a little off the point
                assert distance_m(v.lat, v.lon, wp_lat, wp_lon) <= 2.0
        elif msg.get_type() == "EXTENDED_SYS_STATE":
            landed_states.add(msg.landed_state)
        elif reached and not msg.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED:
            break
    assert reached == [1, 2, 3, 4]
    assert mav.MAV_LANDED_STATE_IN_AIR in landed_states
    assert msg.custom_mode == COPTER_MODES["AUTO"]
    assert v.landed and not v.armed
    assert v.lat == pytest.approx(HOME_LAT, abs=1e-6) and v.lon == pytest.approx(HOME_LON, abs=1e-6)


async def test_copter_rtl_mode_lands_and_stays_rtl(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs)
    await gcs.set_mode(COPTER_MODES["GUIDED"])
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 8) == mav.MAV_RESULT_ACCEPTED
    while v.alt_rel_m < 7.9:
        await gcs.recv("HEARTBEAT")
    assert await gcs.command(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH) == mav.MAV_RESULT_ACCEPTED
    while v.alt_rel_m < 14.9:  # climbs to RTL_ALT 15 m first
        await gcs.recv("HEARTBEAT")
    hb = await gcs.wait_heartbeat(lambda m: not m.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED)
    assert hb.custom_mode == COPTER_MODES["RTL"] and v.landed


async def test_boat_rtl_drives_home_and_stays_armed(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="boat", speedup=50.0, ekf_ready_after_s=2.0)
    await gcs.wait_text("EKF3 IMU0 is using GPS")
    assert await gcs.set_mode(ROVER_MODES["GUIDED"]) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    lat, lon = offset(HOME_LAT, HOME_LON, 60.0, 0.0)
    gcs.send(mav.MAVLink_set_position_target_global_int_message(
        0, 1, 1, mav.MAV_FRAME_GLOBAL_INT, 0b0000_1111_1111_1000,
        round(lat * 1e7), round(lon * 1e7), 0.0, 0, 0, 0, 0, 0, 0, 0, 0))
    while v.lat < offset(HOME_LAT, HOME_LON, 40.0, 0.0)[0]:
        await gcs.recv("HEARTBEAT")
    assert await gcs.set_mode(ROVER_MODES["RTL"]) == mav.MAV_RESULT_ACCEPTED
    await gcs.wait_text("Reached destination")
    hb = await gcs.wait_heartbeat(lambda m: True)
    assert hb.custom_mode == ROVER_MODES["RTL"] and hb.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED
    assert v.armed and v.mode == "RTL"
    assert v.lat == pytest.approx(HOME_LAT, abs=3e-5)
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 0) == mav.MAV_RESULT_ACCEPTED
    assert not v.armed


async def test_boat_auto_mission_completes_and_holds(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="boat", speedup=50.0, ekf_ready_after_s=2.0)
    await gcs.wait_text("EKF3 IMU0 is using GPS")
    wp_lat, wp_lon = offset(HOME_LAT, HOME_LON, -50.0, 50.0)
    plan = [item(0, mav.MAV_CMD_NAV_WAYPOINT), item(1, mav.MAV_CMD_NAV_WAYPOINT, wp_lat, wp_lon, 0.0)]
    assert (await gcs.upload(plan))[1] == mav.MAV_MISSION_ACCEPTED
    assert await gcs.set_mode(ROVER_MODES["AUTO"]) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert (await gcs.recv("MISSION_ITEM_REACHED")).seq == 1
    await gcs.wait_text("Mission Complete")
    assert v.armed and v.mode == "AUTO"


async def test_gcs_failsafe_rtl_after_heartbeats_stop(sim_vehicle, gcs):
    v = await ready_copter(sim_vehicle, gcs, fs_gcs_enable=True)
    gcs.heartbeat()
    await gcs.set_mode(COPTER_MODES["GUIDED"])
    assert await gcs.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert await gcs.command(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mav.MAV_RESULT_ACCEPTED
    gcs.heartbeat()  # then silence
    await gcs.wait_text("GCS Failsafe")
    await gcs.wait_heartbeat(lambda m: m.custom_mode == COPTER_MODES["RTL"])
    gcs.heartbeat()
    await gcs.wait_text("GCS Failsafe Cleared")
    assert v.mode == "RTL"


# ---------------------------------------------------------------------------- link


async def test_pause_link_silences_vehicle(sim_vehicle, gcs):
    v = await start(sim_vehicle, gcs, kind="copter")
    v.pause_link()
    await asyncio.sleep(0.05)
    gcs.drain()
    assert await gcs.collect(0.5) == []
    v.resume_link()
    await gcs.recv("HEARTBEAT")


async def test_listen_mode_replies_to_sender(sim_vehicle, gcs):
    """Mode "in" (GCS uses udpout:): the vehicle binds a port and answers whoever spoke last."""
    v = await sim_vehicle(kind="boat", system_id=9)
    assert v.gcs_address is None
    gcs.remote = ("127.0.0.1", v.local_port)
    gcs.heartbeat()
    hb = await gcs.recv("HEARTBEAT")
    assert hb.get_srcSystem() == 9 and v.gcs_address == ("127.0.0.1", gcs.port)


# ---------------------------------------------------------------------------- fleet, SITL launcher


async def test_fleet_runs_each_vehicle_on_its_url(gcs, tmp_path):
    from sitl.fleet_sim import run_fleet

    listen_port = free_udp_port()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"""
vehicles:
  - {{name: uav-1, type: copter, url: "udpin:127.0.0.1:{gcs.port}", system_id: 11,
     base: [{HOME_LON}, {HOME_LAT}], cruise_speed_mps: 12, endurance_s: 1500, base_alt_m: 240}}
  - {{name: boat-1, type: boat, url: "udpout:127.0.0.1:{listen_port}", system_id: 21,
     base: [106.81, 29.66], cruise_speed_mps: 4, endurance_s: 7200}}
""", encoding="utf-8")
    started: list = []
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(run_fleet(fleet, speedup=20.0, on_started=started.extend))
        try:
            hb = await gcs.recv("HEARTBEAT", lambda m: m.get_srcSystem() == 11)
            assert hb.type == mav.MAV_TYPE_QUADROTOR
            gcs.remote = ("127.0.0.1", listen_port)
            gcs.heartbeat()
            hb = await gcs.recv("HEARTBEAT", lambda m: m.get_srcSystem() == 21)
            assert hb.type == mav.MAV_TYPE_SURFACE_BOAT
            copter = next(v for v in started if v.name == "uav-1")
            assert copter.alt_amsl_m == 240.0 and copter.param("WP_SPD") == 12.0
        finally:
            task.cancel()


def test_fleet_rejects_duplicate_system_ids(tmp_path):
    from sitl.fleet_sim import load_fleet
    from sitl.vehicle_sim import SimConfigError

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("""
vehicles:
  - {name: a, type: copter, url: "udpin:127.0.0.1:14551", system_id: 1, base: [106.7, 29.8]}
  - {name: b, type: copter, url: "udpin:127.0.0.1:14552", system_id: 1, base: [106.7, 29.8]}
""", encoding="utf-8")
    with pytest.raises(SimConfigError, match="sysid"):
        load_fleet(fleet)


def test_sitl_command_lines(tmp_path):
    from pathlib import Path

    from sitl.ardupilot import build_command, plan_instances

    insts = plan_instances(Path("/opt/ardupilot/arducopter"), count=2, home_lon=106.7, home_lat=29.8,
                           home_alt_m=250.0, first_sysid=5)
    cmd = build_command(insts[1], speedup=5)
    assert cmd[:3] == ["/opt/ardupilot/arducopter", "--model", "+"]
    assert ["-I", "1"] == cmd[cmd.index("-I"):cmd.index("-I") + 2]
    assert ["--sysid", "6"] == cmd[cmd.index("--sysid"):cmd.index("--sysid") + 2]
    assert cmd[cmd.index("--home") + 1].startswith("29.8000000,106.70")
    assert insts[1].connection == "tcp:127.0.0.1:5770"
    boats = plan_instances(Path("/x/ardurover"), count=1, home_lon=106.8, home_lat=29.6, out_port=14560)
    assert boats[0].connection == "udpin:127.0.0.1:14560"
    assert "udpclient:127.0.0.1:14560" in build_command(boats[0], speedup=1)


async def test_tcp_server_mode(sim_vehicle):
    """Like SITL's TCP 5760: the ground station connects (tcp:) and both sides stream."""
    v = await sim_vehicle(kind="copter", system_id=4, tcp=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", v.local_port)
    codec = mav.MAVLink(None, srcSystem=255, srcComponent=190)
    try:
        writer.write(mav.MAVLink_command_long_message(4, 1, mav.MAV_CMD_USER_3, 0, 0, 0, 0, 0, 0, 0, 0)
                     .pack(codec))
        seen: set[str] = set()
        async with asyncio.timeout(WAIT_S):
            while not {"HEARTBEAT", "COMMAND_ACK"} <= seen:
                for m in codec.parse_buffer(await reader.read(4096)) or []:
                    seen.add(m.get_type())
                    if m.get_type() == "COMMAND_ACK":
                        assert m.result == mav.MAV_RESULT_UNSUPPORTED
    finally:
        writer.close()
