"""MAVLink receive benchmark: messages decoded per second by the link's receive path
(``uav.link.MavLink.feed``: decode, loss accounting, per-system dispatch to subscriptions
and their readers) against pymavlink's bare parser on the same bytes.

The buffer is a telemetry mix as ArduPilot streams it to us (rates of
``uav.vehicle.DEFAULT_STREAMS_HZ``: GLOBAL_POSITION_INT and ATTITUDE 4 Hz, VFR_HUD 2 Hz,
SYS_STATUS, MISSION_CURRENT and HEARTBEAT 1 Hz), MAVLink 2, ardupilotmega dialect,
interleaved from several system ids, each with its own packet sequence.

Two input shapes:

* stream chunks: 4 KiB slices of the buffer, packets cut at chunk edges (a TCP link, or
  a serial radio), fed with ``addr=None``;
* datagrams: one packet per ``feed`` (what ArduPilot and the simulator send over UDP),
  each system from its own address.

The link side drains its subscriptions as the product does: one task per system id
(``async for`` on its subscription, like ``uav.vehicle.Vehicle``), the feeder yielding to
the event loop after every chunk or datagram.

Run: ``python -m tests.bench mavlink`` (``--messages N``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.link import MavLink, parse_url

__all__ = ["build_buffer", "main", "run"]

CHUNK_BYTES = 4096
SYSTEMS = 8  # system ids in the mix (a district fleet behind one link)
MANY_SYSTEMS = 200  # the dispatch-cost line: as many subscriptions as a large fleet
PER_CHAR_MESSAGES = 20_000  # parse_char is slow: time it on a slice
DATAGRAM_MESSAGES = 50_000  # one feed per packet: time it on a slice
# One second of one vehicle's stream (uav.vehicle.DEFAULT_STREAMS_HZ, the part in the mix).
SECOND_OF_TELEMETRY = (["GLOBAL_POSITION_INT"] * 4 + ["ATTITUDE"] * 4 + ["VFR_HUD"] * 2
                       + ["SYS_STATUS", "MISSION_CURRENT", "HEARTBEAT"])


def _message(kind: str, rng: random.Random, t_ms: int) -> Any:
    if kind == "GLOBAL_POSITION_INT":
        return mav.MAVLink_global_position_int_message(
            t_ms, 298_500_000 + rng.randrange(-50_000, 50_000), 1_066_000_000 + rng.randrange(-50_000, 50_000),
            rng.randrange(250_000, 450_000), rng.randrange(0, 120_000), rng.randrange(-800, 800),
            rng.randrange(-800, 800), rng.randrange(-200, 200), rng.randrange(0, 36_000))
    if kind == "ATTITUDE":
        return mav.MAVLink_attitude_message(t_ms, rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3),
                                            rng.uniform(-3.1, 3.1), rng.uniform(-1, 1),
                                            rng.uniform(-1, 1), rng.uniform(-1, 1))
    if kind == "VFR_HUD":
        return mav.MAVLink_vfr_hud_message(rng.uniform(0, 15), rng.uniform(0, 15), rng.randrange(0, 360),
                                           rng.randrange(0, 100), rng.uniform(250, 450), rng.uniform(-3, 3))
    if kind == "SYS_STATUS":
        sensors = 0x0020_802F
        return mav.MAVLink_sys_status_message(sensors, sensors, sensors, 200, rng.randrange(14_000, 16_800),
                                              rng.randrange(0, 3000), rng.randrange(20, 100),
                                              0, 0, 0, 0, 0, 0)
    if kind == "MISSION_CURRENT":
        return mav.MAVLink_mission_current_message(rng.randrange(0, 8), 8, 2, 0)
    return mav.MAVLink_heartbeat_message(mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                         mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mav.MAV_MODE_FLAG_SAFETY_ARMED,
                                         4, mav.MAV_STATE_ACTIVE, 3)


def build_buffer(messages: int, systems: int, *, seed: int = 1) -> list[bytes]:
    """``messages`` packed MAVLink 2 packets, the telemetry mix of ``systems`` vehicles
    interleaved second by second (each system's sequence numbers without gaps)."""
    rng = random.Random(seed)
    encoders = [mav.MAVLink(None, srcSystem=s, srcComponent=mav.MAV_COMP_ID_AUTOPILOT1)
                for s in range(1, systems + 1)]
    packets: list[bytes] = []
    second = 0
    while len(packets) < messages:
        for encoder in encoders:
            for kind in SECOND_OF_TELEMETRY:
                packets.append(_message(kind, rng, second * 1000 + len(packets) % 1000).pack(encoder))
                encoder.seq = (encoder.seq + 1) % 256  # pack() does not advance it
        second += 1
    return packets[:messages]


def chunks(buffer: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [buffer[i:i + size] for i in range(0, len(buffer), size)]


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1000:7.1f}k msg/s"


def time_raw_chunks(pieces: list[bytes]) -> tuple[int, float]:
    """pymavlink alone: ``parse_buffer`` on each piece, messages counted."""
    parser = mav.MAVLink(None)
    parser.robust_parsing = True  # as the link sets it
    count = 0
    started = time.perf_counter()
    for piece in pieces:
        count += len(parser.parse_buffer(piece) or ())
    return count, time.perf_counter() - started


def time_parse_char(buffer: bytes) -> tuple[int, float]:
    """pymavlink alone, byte by byte."""
    parser = mav.MAVLink(None)
    parser.robust_parsing = True
    count = 0
    started = time.perf_counter()
    for i in range(len(buffer)):
        if parser.parse_char(buffer[i:i + 1]) is not None:
            count += 1
    return count, time.perf_counter() - started


async def time_link(pieces: list[bytes], systems: int,
                    addr_of: Callable[[int], tuple[str, int] | None]) -> tuple[int, float, MavLink, int]:
    """The link's receive path: ``feed`` each piece, one draining task per system id.

    Returns (messages delivered to readers, seconds, the link, messages dropped by
    subscriptions)."""
    link = MavLink("udpin:127.0.0.1:0", parse_url("udpin:127.0.0.1:0"), source_system=255,
                   source_component=190)
    subs = [link.subscribe(s, maxsize=1024) for s in range(1, systems + 1)]
    delivered = [0]

    async def drain(sub: Any) -> None:
        async for _ in sub:
            delivered[0] += 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for sub in subs:
            tg.create_task(drain(sub))
        for i, piece in enumerate(pieces):
            link.feed(piece, addr_of(i))
            await asyncio.sleep(0)  # let the readers run, as between socket reads
        await asyncio.sleep(0)
        elapsed = time.perf_counter() - started
        await link.close()  # ends every subscription: the readers return
    return delivered[0], elapsed, link, sum(s.dropped for s in subs)


def _link_checks(link: MavLink, dropped: int) -> str:
    lost = sum(s.lost for s in map(link.stats, link.systems()) if s is not None)
    return (f"lost {lost}, bad packets {link.bad_packets}, dropped by readers {dropped}"
            if lost or link.bad_packets or dropped else "no loss, no bad packets, no drops")


async def run(messages: int = 200_000) -> None:
    """Print bare-parser and link receive rates on the same telemetry buffer."""
    started = time.perf_counter()
    packets = build_buffer(messages, SYSTEMS)
    buffer = b"".join(packets)
    pieces = chunks(buffer)
    print(f"MAVLink receive: {len(packets):,} packets ({len(buffer) / 1e6:.1f} MB, mean "
          f"{len(buffer) / len(packets):.0f} B) from {SYSTEMS} system ids, MAVLink 2 ardupilotmega, "
          f"mix per vehicle-second {len(SECOND_OF_TELEMETRY)} msgs; built in "
          f"{time.perf_counter() - started:.1f} s; pymavlink {_pymavlink_version()}, "
          f"fastcrc {'yes' if _has_fastcrc() else 'no'}", flush=True)

    print(f"  stream, {CHUNK_BYTES} B chunks ({len(pieces):,} chunks):")
    raw_n, raw_s = time_raw_chunks(pieces)
    print(f"    pymavlink parse_buffer                         {_rate(raw_n, raw_s)}  ({raw_n:,} in {raw_s:.2f} s)",
          flush=True)
    link_n, link_s, link, dropped = await time_link(pieces, SYSTEMS, lambda i: None)
    print(f"    MavLink.feed + {SYSTEMS} readers                        {_rate(link_n, link_s)}  "
          f"({link_n:,} in {link_s:.2f} s) = {link_n / link_s / (raw_n / raw_s):.2f} × raw; "
          f"{_link_checks(link, dropped)}", flush=True)

    many = build_buffer(DATAGRAM_MESSAGES, MANY_SYSTEMS, seed=2)
    many_pieces = chunks(b"".join(many))
    raw_m, raw_ms = time_raw_chunks(many_pieces)
    link_m, link_ms, link, dropped = await time_link(many_pieces, MANY_SYSTEMS, lambda i: None)
    print(f"    same, {MANY_SYSTEMS} systems and readers ({len(many):,} msgs): raw {_rate(raw_m, raw_ms)}, "
          f"link {_rate(link_m, link_ms)} = {link_m / link_ms / (raw_m / raw_ms):.2f} × raw "
          f"(each packet goes to its own system's readers); "
          f"{_link_checks(link, dropped)}", flush=True)

    part = packets[:DATAGRAM_MESSAGES]
    print(f"  datagrams, one packet each ({len(part):,}, system k from 127.0.0.1:{14550}+k):")
    raw_d, raw_ds = time_raw_chunks(part)
    print(f"    pymavlink parse_buffer per packet              {_rate(raw_d, raw_ds)}", flush=True)
    sysids = [p[5] for p in part]  # MAVLink 2 header: byte 5 is the system id
    link_d, link_ds, link, dropped = await time_link(part, SYSTEMS, lambda i: ("127.0.0.1", 14550 + sysids[i]))
    print(f"    MavLink.feed per datagram + {SYSTEMS} readers          {_rate(link_d, link_ds)}  "
          f"= {link_d / link_ds / (raw_d / raw_ds):.2f} × raw; {_link_checks(link, dropped)}", flush=True)

    sample = b"".join(packets[:PER_CHAR_MESSAGES])
    char_n, char_s = time_parse_char(sample)
    print(f"  reference: pymavlink parse_char byte by byte ({PER_CHAR_MESSAGES:,} msgs) "
          f"{_rate(char_n, char_s)} = {char_n / char_s / (raw_n / raw_s):.2f} × parse_buffer chunks", flush=True)
    print("  (one core, no sockets: decode and dispatch cost only; the readers only count)")


def _pymavlink_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pymavlink")
    except PackageNotFoundError:
        return "?"


def _has_fastcrc() -> bool:
    try:
        import fastcrc  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.bench.mavlink [--messages N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench mavlink")
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.messages))


if __name__ == "__main__":
    main()
