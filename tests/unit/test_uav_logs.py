"""Byte-range tracking and request planning of the on-board log download (uav.logs)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from uav.logs import LOG_DATA_BYTES, ByteRanges, log_entry_from_wire, plan_requests


def test_ranges_merge_and_report_gaps() -> None:
    r = ByteRanges()
    assert r.add(0, 90) == 90
    assert r.add(180, 270) == 90
    assert r.missing(300) == [(90, 180), (270, 300)]
    assert r.add(90, 180) == 90  # fills the gap: one range
    assert r.ranges() == [(0, 270)]
    assert r.add(0, 90) == 0  # a duplicate adds nothing
    assert r.missing(270) == [] and r.complete(270) and not r.complete(271)


def test_overlapping_and_empty_ranges() -> None:
    r = ByteRanges()
    assert r.add(50, 50) == 0
    r.add(10, 20)
    r.add(30, 40)
    assert r.add(15, 35) == 10  # bridges both
    assert r.ranges() == [(10, 40)]
    assert r.missing(40) == [(0, 10)]


@pytest.mark.parametrize("seed", range(20))
def test_any_order_of_lost_and_repeated_packets_ends_whole(seed: int) -> None:
    """Packets arrive shuffled, some lost, some twice; re-requesting the planned gaps
    always completes the log and never asks for bytes already held."""
    rng = random.Random(seed)
    size = rng.randrange(1, 40 * LOG_DATA_BYTES)
    r = ByteRanges()
    rounds = 0
    while not r.complete(size):
        rounds += 1
        assert rounds < 200
        requests = plan_requests(r, size, window_bytes=7 * LOG_DATA_BYTES, max_requests=4)
        assert requests
        held = r.ranges()
        packets = []
        for ofs, count in requests:
            assert not any(s <= ofs < e for s, e in held)  # only missing bytes are asked
            for at in range(ofs, ofs + count, LOG_DATA_BYTES):
                packets.append((at, min(LOG_DATA_BYTES, size - at)))
        packets += rng.sample(packets, len(packets) // 4)  # repeats
        rng.shuffle(packets)
        for at, n in packets:
            if rng.random() < 0.3:
                continue  # lost
            r.add(at, at + n)
    assert r.covered == size and r.missing(size) == []


def test_plan_cuts_windows_and_limits_requests() -> None:
    r = ByteRanges()
    r.add(90, 180)
    assert plan_requests(r, 400, window_bytes=100) == [(0, 90), (180, 100), (280, 100),
                                                       (380, 20)]
    assert plan_requests(r, 400, window_bytes=100, max_requests=2) == [(0, 90), (180, 100)]
    r.add(0, 400)
    assert plan_requests(r, 400) == []
    with pytest.raises(ValueError):
        plan_requests(r, 400, window_bytes=0)


def test_log_entry_from_wire() -> None:
    msg = SimpleNamespace(id=2, num_logs=3, last_log_num=3, time_utc=1_700_000_000, size=4096)
    e = log_entry_from_wire(msg)
    assert e.id == 2 and e.size_bytes == 4096
    assert e.time_utc == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert log_entry_from_wire(SimpleNamespace(id=0, num_logs=0, last_log_num=0, time_utc=0,
                                               size=0)).time_utc is None


def test_simulated_vehicle_side_follows_ardupilot() -> None:
    """sitl.dataflash: the behaviour the download is built against (AP_Logger)."""
    from pymavlink.dialects.v20 import ardupilotmega as mav

    from sitl.dataflash import SimLogs

    logs = SimLogs(name="v", system_id=1, utc_now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    for i in range(100):  # 10 s armed at 10 Hz, then disarmed
        logs.record(i * 0.1, armed=True, lat=29.6, lon=106.6, alt_amsl_m=200, alt_rel_m=10,
                    mode="GUIDED", battery_v=16.0)
    logs.record(10.0, armed=False, lat=0, lon=0, alt_amsl_m=0, alt_rel_m=0, mode="", battery_v=0)
    size = len(logs.logs[0].data)
    heard = {"gcs_heard_s_ago": 0.5}
    req = mav.MAVLink_log_request_data_message(1, 1, 1, 0, 0xFFFFFFFF)
    # armed: ignored, one "Disarm for log download"
    out = logs.handle(req, armed=True, **heard)
    assert [m.get_type() for m in out] == ["STATUSTEXT"]
    assert logs.handle(req, armed=True, **heard) == []
    out = logs.handle(req, armed=False, **heard)  # 40 packets at once, the rest later
    assert len(out) == 40 and out[0].ofs == 0 and out[1].ofs == 90
    assert logs.handle(mav.MAVLink_log_request_data_message(1, 1, 1, 90, 90), armed=False,
                       **heard) == []  # dropped: still sending
    rest = []
    while chunk := logs.pump(armed=False, **heard):
        rest += chunk
    data = b"".join(bytes(m.data[:m.count]) for m in out + rest)
    assert data == bytes(logs.logs[0].data) and rest[-1].count < 90
    eof = logs.handle(mav.MAVLink_log_request_data_message(1, 1, 1, size, 90), armed=False,
                      **heard)
    assert len(eof) == 1 and eof[0].count == 0
    # no ground-station heartbeat for over 3 s: nothing is sent
    listing = mav.MAVLink_log_request_list_message(1, 1, 0, 0xFFFF)
    assert logs.handle(listing, armed=False, gcs_heard_s_ago=5.0) == []
    entry = logs.pump(armed=False, **heard)
    assert [(e.id, e.num_logs, e.size) for e in entry] == [(1, 1, size)]
