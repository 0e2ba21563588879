"""Serial URL parsing, pause fallback tables, and IN_PROGRESS acks with progress."""

from __future__ import annotations

import asyncio

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.commands import hold_modes
from uav.errors import LinkError
from uav.link import Endpoint, open_link, parse_url
from uav.vehicle import Vehicle


@pytest.mark.parametrize(("url", "endpoint"), [
    ("serial:/dev/ttyUSB0:57600", Endpoint("serial", "/dev/ttyUSB0", 57600)),
    ("serial:/dev/serial/by-id/usb-3DR:if00:115200",
     Endpoint("serial", "/dev/serial/by-id/usb-3DR:if00", 115200)),
    ("udpin:0.0.0.0:14550", Endpoint("udpin", "0.0.0.0", 14550)),
])
def test_parse_url(url: str, endpoint: Endpoint) -> None:
    assert parse_url(url) == endpoint


@pytest.mark.parametrize(("url", "reason"), [
    ("serial:/dev/ttyUSB0", "serial:PATH:BAUD"), ("serial::57600", "serial:PATH:BAUD"),
    ("serial:/dev/ttyUSB0:fast", "not a number"), ("serial:/dev/ttyUSB0:0", "out of range"),
    ("bluetooth:aa:1", "expected one of"),
])
def test_parse_url_rejects_with_reason(url: str, reason: str) -> None:
    with pytest.raises(LinkError, match=reason):
        parse_url(url)


def test_hold_modes_follow_the_firmware() -> None:
    assert hold_modes("copter") == ("BRAKE", "LOITER")
    assert hold_modes("boat") == ("HOLD",)


async def test_in_progress_reports_progress_and_waits_for_the_final_ack() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    loop = asyncio.get_running_loop()
    peer_mav = mav.MAVLink(None, srcSystem=1, srcComponent=1)
    sent: list[int] = []

    class Peer(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.t = transport

        def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
            for msg in peer_mav.parse_buffer(data) or []:
                if msg.get_type() != "COMMAND_LONG":
                    continue
                sent.append(msg.confirmation)
                for i, pct in enumerate((10, 60, 255)):
                    loop.call_later(0.2 * i, self.ack, msg.command,
                                    mav.MAV_RESULT_IN_PROGRESS, pct)
                loop.call_later(0.8, self.ack, msg.command, mav.MAV_RESULT_ACCEPTED, 100)

        def ack(self, command: int, result: int, pct: int) -> None:
            self.t.sendto(mav.MAVLink_command_ack_message(command, result, pct, 0, 255, 190)
                          .pack(peer_mav))

    transport, peer = await loop.create_datagram_endpoint(
        Peer, remote_addr=("127.0.0.1", link.local_port))
    try:
        transport.sendto(mav.MAVLink_heartbeat_message(2, 3, 0, 0, 0, 3).pack(peer_mav))
        while link.stats(1) is None:
            await asyncio.sleep(0.01)
        vehicle = Vehicle(link, 1, command_timeout_s=0.5)
        seen: list[int] = []
        # the final ack comes after the per-try timeout: IN_PROGRESS must extend it, and
        # the command must not be sent again
        await vehicle.command(mav.MAV_CMD_PREFLIGHT_CALIBRATION, 0, 0, 1, progress=seen.append)
        assert seen == [10, 60, 255]
        assert sent == [0]
    finally:
        transport.close()
        await link.close()
