"""MAVLink link: URL parsing, decoding, bad bytes, packet loss, dispatch, UDP round trip."""

import asyncio

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import LinkError
from uav.link import MavLink, SequenceTracker, open_link, parse_url


def _vehicle_codec(system_id: int) -> mav.MAVLink:
    return mav.MAVLink(None, srcSystem=system_id, srcComponent=1)


def _heartbeat(codec: mav.MAVLink, seq: int | None = None) -> bytes:
    if seq is not None:
        codec.seq = seq
    buf = codec.heartbeat_encode(mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                 0, 4, mav.MAV_STATE_STANDBY).pack(codec)
    codec.seq = (codec.seq + 1) % 256
    return buf


def _unopened(url: str = "udpin:127.0.0.1:0") -> MavLink:
    return MavLink(url, parse_url(url), source_system=255, source_component=190)


def test_parse_url():
    assert parse_url("udpin:0.0.0.0:14550").port == 14550
    assert parse_url("tcp:127.0.0.1:5760").scheme == "tcp"
    for bad in ("udp:1.2.3.4:5", "udpin:host", "tcp:h:port", "udpout:h:70000", "tcp:h:0"):
        with pytest.raises(LinkError):
            parse_url(bad)


def test_sequence_tracker_counts_gaps_and_wraps():
    tracker = SequenceTracker()
    for seq in (250, 251, 253, 254, 255, 0, 3):  # lost 252, then 1 and 2 across the wrap
        tracker.add(1, seq)
    assert (tracker.received, tracker.lost) == (7, 3)
    tracker.add(2, 100)  # another component has its own counter
    assert tracker.lost == 3
    assert tracker.add(1, 3) == 0  # a duplicate is not 255 losses


def test_packet_loss_from_encoded_messages():
    link = _unopened()
    codec = _vehicle_codec(3)
    sent = [_heartbeat(codec) for _ in range(300)]
    kept = [buf for i, buf in enumerate(sent) if i % 10 != 5]  # drop every tenth packet
    for buf in kept:
        link.feed(buf, ("127.0.0.1", 5000))
    stats = link.stats(3)
    assert stats.received == 270
    assert stats.lost == 30
    assert stats.loss_ratio == pytest.approx(0.1)
    assert link.bad_bytes == 0


def test_bad_bytes_are_counted_not_raised():
    link = _unopened()
    codec = _vehicle_codec(4)
    sub = link.subscribe(4)
    peer = ("127.0.0.1", 5001)
    link.feed(b"\x00\x01garbage", peer)
    good = _heartbeat(codec)
    corrupt = bytearray(_heartbeat(codec))
    corrupt[-1] ^= 0xFF  # CRC broken
    link.feed(bytes(corrupt), peer)
    link.feed(b"noise" + good, peer)  # a good packet after noise in the same datagram
    link.feed(good[:7], peer)  # a truncated datagram
    link.feed(_heartbeat(codec), peer)
    assert link.bad_bytes >= 9 + len(corrupt) + 5 + 7
    assert link.bad_packets >= 4
    assert sub.get_nowait().get_type() == "HEARTBEAT"
    assert sub.get_nowait().get_type() == "HEARTBEAT"
    assert sub.get_nowait() is None


def test_stream_chunks_split_anywhere():
    link = _unopened("tcp:127.0.0.1:5760")
    codec = _vehicle_codec(5)
    data = b"".join(_heartbeat(codec) for _ in range(20))
    sub = link.subscribe(5, maxsize=100)
    for i in range(0, len(data), 7):  # TCP gives arbitrary chunks
        link.feed(data[i:i + 7], None)
    got = 0
    while sub.get_nowait() is not None:
        got += 1
    assert got == 20 and link.bad_bytes == 0


def test_dispatch_by_system_and_type_with_bounded_queues():
    link = _unopened()
    one, two = _vehicle_codec(1), _vehicle_codec(2)
    only_one = link.subscribe(1, maxsize=3)
    only_status = link.subscribe(None, types={"STATUSTEXT"})
    for _ in range(5):
        link.feed(_heartbeat(one), ("127.0.0.1", 1))
        link.feed(_heartbeat(two), ("127.0.0.1", 2))
    text = two.statustext_encode(mav.MAV_SEVERITY_INFO, b"hello").pack(two)
    link.feed(text, ("127.0.0.1", 2))
    assert only_one.dropped == 2
    assert all(only_one.get_nowait().get_srcSystem() == 1 for _ in range(3))
    msg = only_status.get_nowait()
    assert msg.get_srcSystem() == 2 and msg.text == "hello"
    assert link.systems() == [1, 2]
    assert link.stats(2).address == ("127.0.0.1", 2)


async def test_udp_round_trip_and_close():
    gcs = await open_link("udpin:127.0.0.1:0")
    vehicle = await open_link(f"udpout:127.0.0.1:{gcs.local_port}", source_system=9,
                              source_component=1)
    try:
        from_vehicle = gcs.subscribe(9)
        from_gcs = vehicle.subscribe(255)
        vehicle.send_heartbeat()
        async with asyncio.timeout(2):
            first = await from_vehicle.get()
        assert first.get_srcSystem() == 9 and first.get_type() == "HEARTBEAT"
        gcs.send_heartbeat()  # goes to the learned peer address
        async with asyncio.timeout(2):
            back = await from_gcs.get()
        assert (back.type, back.autopilot) == (mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID)
        assert back.get_srcSystem() == 255 and back.get_srcComponent() == 190
        assert back.get_msgbuf()[0] == 0xFD  # MAVLink 2 marker
    finally:
        await gcs.close()
        await vehicle.close()
    with pytest.raises(LinkError):
        await from_vehicle.get()
    with pytest.raises(LinkError):
        gcs.send_heartbeat()


async def test_run_sends_heartbeats():
    gcs = await open_link("udpout:127.0.0.1:1")  # nobody listens; sending must not fail
    listener = await open_link("udpin:127.0.0.1:0")
    gcs2 = await open_link(f"udpout:127.0.0.1:{listener.local_port}")
    sub = listener.subscribe(255)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(gcs.run()), tg.create_task(gcs2.run())]
            async with asyncio.timeout(3):
                msg = await sub.get()
            assert msg.get_type() == "HEARTBEAT"
            for task in tasks:
                task.cancel()
    finally:
        for link in (gcs, listener, gcs2):
            await link.close()
