"""Property tests: the mission/fence/rally transfer ends in success or a typed error, never hangs.

A scripted vehicle-side peer (MAVLink mission protocol, as ArduPilot's
MissionItemProtocol: asks for items one by one with MISSION_REQUEST, re-asks after a
silence, answers downloads) talks to ``uav.transfer.MissionTransfer`` over a real UDP
socket pair on 127.0.0.1. Each packet either way is delivered, dropped, duplicated or
delayed (so reordered) as a hypothesis-generated schedule says.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import mission as missions
from uav import transfer
from uav.errors import LinkLost, MissionRejected, MissionTimeout
from uav.link import open_link
from uav.mission import MissionItem

DELIVER, DROP, DUPLICATE, DELAY = range(4)
HANG_GUARD_S = 20.0  # far above the transfer's own deadline: hitting it is a hang
RE_REQUEST_S = 0.15  # the peer re-asks for an item after this silence (ArduPilot: 1 s)


class ScriptedVehicle(asyncio.DatagramProtocol):
    """Vehicle side of the mission protocol, with a fault schedule on every packet."""

    def __init__(self, out_fates: list[int], in_fates: list[int], delays: list[float]) -> None:
        self._out = itertools.cycle(out_fates or [DELIVER])
        self._in = itertools.cycle(in_fates or [DELIVER])
        self._delays = itertools.cycle(delays or [0.05])
        self._mav = mav.MAVLink(None, srcSystem=1, srcComponent=1)
        self._parser = mav.MAVLink(None)
        self._transport: asyncio.DatagramTransport | None = None
        self._gcs: tuple[str, int] | None = None
        self.stored: dict[int, list[Any]] = {0: [], 1: [], 2: []}
        self._upload: tuple[int, int, list[Any]] | None = None  # type, count, items
        self._asked_at = 0.0

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def _send(self, msg: Any) -> None:
        if self._gcs is None or self._transport is None:
            return
        buf = msg.pack(self._mav)
        self._mav.seq = (self._mav.seq + 1) % 256
        fate = next(self._out)
        if fate == DROP:
            return
        copies = 2 if fate == DUPLICATE else 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            if fate == DELAY:
                loop.call_later(next(self._delays), self._transport.sendto, buf, self._gcs)
            else:
                self._transport.sendto(buf, self._gcs)

    def _ask(self) -> None:
        assert self._upload is not None
        mt, _, items = self._upload
        self._send(mav.MAVLink_mission_request_message(255, 190, len(items), mt))
        self._asked_at = asyncio.get_running_loop().time()

    async def re_request(self) -> None:
        while True:
            await asyncio.sleep(RE_REQUEST_S / 2)
            if (self._upload is not None
                    and asyncio.get_running_loop().time() - self._asked_at > RE_REQUEST_S):
                self._ask()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._gcs = addr
        for msg in self._parser.parse_buffer(data) or []:
            if next(self._in) == DROP:
                continue
            self._handle(msg)

    def _handle(self, msg: Any) -> None:
        kind = msg.get_type()
        mt = getattr(msg, "mission_type", 0)
        if kind == "MISSION_COUNT":
            if msg.count == 0:
                self.stored[mt] = []
                self._send(mav.MAVLink_mission_ack_message(255, 190, 0, mt))
                return
            self._upload = (mt, msg.count, [])
            self._ask()
        elif kind == "MISSION_ITEM_INT":
            up = self._upload
            if up is None or up[0] != mt:
                return
            items = up[2]
            if msg.seq != len(items):
                # MissionItemProtocol::handle_mission_item: out of sequence
                self._send(mav.MAVLink_mission_ack_message(
                    255, 190, mav.MAV_MISSION_INVALID_SEQUENCE, mt))
                return
            items.append(msg)
            if len(items) == up[1]:
                self.stored[mt] = items
                self._upload = None
                self._send(mav.MAVLink_mission_ack_message(255, 190, 0, mt))
            else:
                self._ask()
        elif kind == "MISSION_REQUEST_LIST":
            if self._upload is not None and self._upload[0] == mt:
                # ArduPilot refuses a download while receiving (the probe's DENIED)
                self._send(mav.MAVLink_mission_ack_message(255, 190, mav.MAV_MISSION_DENIED, mt))
                return
            self._send(mav.MAVLink_mission_count_message(255, 190, len(self.stored[mt]), mt))
        elif kind == "MISSION_REQUEST_INT":
            stored = self.stored[mt]
            if 0 <= msg.seq < len(stored):
                item = stored[msg.seq]
                self._send(mav.MAVLink_mission_item_int_message(
                    255, 190, item.seq, item.frame, item.command, 0, item.autocontinue,
                    item.param1, item.param2, item.param3, item.param4, item.x, item.y,
                    item.z, mt))
        elif kind == "MISSION_CLEAR_ALL":
            self.stored[mt] = []
            self._send(mav.MAVLink_mission_ack_message(255, 190, 0, mt))


def _items(mission_type: int, n: int) -> list[MissionItem]:
    if mission_type == transfer.FENCE:
        ring = [(106.50, 29.60), (106.54, 29.60), (106.54, 29.64), (106.50, 29.64)][:max(3, n)]
        return [MissionItem(mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                            frame=mav.MAV_FRAME_GLOBAL, lat_deg=lat, lon_deg=lon,
                            param1=float(len(ring))) for lon, lat in ring]
    if mission_type == transfer.RALLY:
        return [MissionItem(mav.MAV_CMD_NAV_RALLY_POINT, lat_deg=29.6 + i * 1e-3,
                            lon_deg=106.5, alt_m=30.0) for i in range(n)]
    return [missions.home_placeholder(), missions.takeoff(30.0)] + [
        missions.waypoint(106.5 + i * 1e-3, 29.6, 40.0 + i) for i in range(n)]


def _roundtrip(item: MissionItem, mission_type: int) -> MissionItem:
    """What the wire keeps of an item (float32 params, degE7 positions)."""
    enc = missions.encode_item_int(item, 0, target_system=1, target_component=1,
                                   mission_type=mission_type)
    return missions.decode_item(_decode(enc))


def _decode(msg: Any) -> Any:
    parser = mav.MAVLink(None)
    return parser.decode(bytearray(msg.pack(mav.MAVLink(None, srcSystem=255, srcComponent=190))))


fates = st.lists(st.sampled_from([DELIVER, DELIVER, DELIVER, DROP, DUPLICATE, DELAY]),
                 min_size=1, max_size=12)


async def _run(mission_type: int, n: int, out_fates: list[int], in_fates: list[int],
               delays: list[float], *, must_succeed: bool = False) -> None:
    loop = asyncio.get_running_loop()
    link = await open_link("udpin:127.0.0.1:0")
    transport, peer = await loop.create_datagram_endpoint(
        lambda: ScriptedVehicle(out_fates, in_fates, delays),
        remote_addr=("127.0.0.1", link.local_port))
    xfer = transfer.MissionTransfer(link, 1, 1, name="prop", lost=lambda: False)
    items = _items(mission_type, n)
    try:
        async with asyncio.TaskGroup() as tg:
            nudger = tg.create_task(peer.re_request())
            try:
                async with asyncio.timeout(HANG_GUARD_S):
                    # the peer learns our address from its first packet: say hello
                    transport.sendto(mav.MAVLink_heartbeat_message(
                        2, 3, 0, 0, 0, 3).pack(mav.MAVLink(None, 1, 1)))
                    try:
                        await xfer.upload(mission_type, items, timeout_s=4.0,
                                          request_timeout_s=0.1)
                        got = await xfer.download(mission_type, timeout_s=4.0,
                                                  request_timeout_s=0.1)
                    except (MissionTimeout, MissionRejected, LinkLost):
                        if must_succeed:
                            raise
                        return  # a typed end is a valid end
                    assert got == [_roundtrip(i, mission_type) for i in items]
            except TimeoutError:
                raise AssertionError(f"transfer hung: out={out_fates} in={in_fates}") from None
            finally:
                nudger.cancel()
    finally:
        transport.close()
        await link.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mission_type=st.sampled_from([transfer.MISSION, transfer.FENCE, transfer.RALLY]),
       n=st.integers(min_value=1, max_value=4), out_fates=fates, in_fates=fates,
       delays=st.lists(st.floats(min_value=0.01, max_value=0.3), min_size=1, max_size=4))
def test_transfer_ends_in_success_or_typed_error(mission_type: int, n: int,
                                                 out_fates: list[int], in_fates: list[int],
                                                 delays: list[float]) -> None:
    asyncio.run(_run(mission_type, n, out_fates, in_fates, delays))


def test_clean_link_always_succeeds() -> None:
    """The same harness without faults: the transfer must succeed (the test can fail)."""
    for mt in (transfer.MISSION, transfer.FENCE, transfer.RALLY):
        asyncio.run(_run(mt, 3, [DELIVER], [DELIVER], [0.05], must_succeed=True))
