"""A UDP relay between a vehicle and a ground link that a test can cut: a radio outage for
any MAVLink vehicle (the built-in simulator or ArduPilot SITL) without its cooperation.

    relay = await UdpRelay.open(ground_port=link.local_port)
    # the vehicle sends to 127.0.0.1:relay.vehicle_port (SITL --serial0 udpclient:...)
    relay.cut(); ...; relay.restore()
"""

from __future__ import annotations

import asyncio

__all__ = ["UdpRelay"]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, from_vehicle: bool) -> None:
        self._relay = relay
        self._from_vehicle = from_vehicle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._relay._forward(data, addr, self._from_vehicle)

    def error_received(self, exc: Exception) -> None:  # the other end not up yet
        self._relay.errors += 1


class UdpRelay:
    """Forwards datagrams both ways; while cut, drops them (counted)."""

    def __init__(self) -> None:
        self._vehicle_side: asyncio.DatagramTransport | None = None
        self._ground_side: asyncio.DatagramTransport | None = None
        self._vehicle_addr: tuple[str, int] | None = None
        self.vehicle_port = 0
        self.cut_now = False
        self.dropped = 0
        self.forwarded = 0
        self.errors = 0

    @classmethod
    async def open(cls, *, ground_port: int, host: str = "127.0.0.1") -> UdpRelay:
        relay = cls()
        loop = asyncio.get_running_loop()
        relay._vehicle_side, _ = await loop.create_datagram_endpoint(
            lambda: _Side(relay, True), local_addr=(host, 0))
        relay.vehicle_port = relay._vehicle_side.get_extra_info("sockname")[1]
        relay._ground_side, _ = await loop.create_datagram_endpoint(
            lambda: _Side(relay, False), remote_addr=(host, ground_port))
        return relay

    def cut(self) -> None:
        self.cut_now = True

    def restore(self) -> None:
        self.cut_now = False

    def close(self) -> None:
        for t in (self._vehicle_side, self._ground_side):
            if t is not None:
                t.close()

    def _forward(self, data: bytes, addr: tuple[str, int], from_vehicle: bool) -> None:
        if from_vehicle:
            self._vehicle_addr = addr
        if self.cut_now:
            self.dropped += 1
            return
        if from_vehicle and self._ground_side is not None:
            self._ground_side.sendto(data)
        elif not from_vehicle and self._vehicle_side is not None and self._vehicle_addr:
            self._vehicle_side.sendto(data, self._vehicle_addr)
        else:
            return
        self.forwarded += 1
