"""uav.link TIMESYNC round trips: which answers count, the smoothing, the link quality."""

from __future__ import annotations

import math
import time

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.link import LATENCY_ALPHA, TIMESYNC_QUICK_TRIES, LinkQuality, open_link

PEER = ("127.0.0.1", 40001)


def _packet(sysid: int, msg: mav.MAVLink_message) -> bytes:
    enc = mav.MAVLink(None, srcSystem=sysid, srcComponent=1)
    return msg.pack(enc)


def _heartbeat(sysid: int) -> bytes:
    return _packet(sysid, mav.MAVLink_heartbeat_message(
        mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA, 0, 0, 3, 3))


async def test_an_answer_to_our_request_gives_the_round_trip() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    try:
        link.feed(_heartbeat(5), PEER)
        ts1 = link.send_timesync()
        assert ts1 > 0 and link.timesync_sent == 1
        before = link.stats(5)
        assert before is not None and math.isnan(before.latency_ms)
        time.sleep(0.02)
        link.feed(_packet(5, mav.MAVLink_timesync_message(123_000, ts1)), PEER)
        stats = link.stats(5)
        assert stats is not None and stats.timesync_answers == 1
        assert 20.0 <= stats.latency_ms < 500.0
        assert stats.latency_smoothed_ms == stats.latency_ms  # the first sample
    finally:
        await link.close()


async def test_requests_foreign_and_stale_answers_are_ignored() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    try:
        link.feed(_heartbeat(5), PEER)
        ts1 = link.send_timesync()
        # the vehicle's own request (tc1 0) is not an answer
        link.feed(_packet(5, mav.MAVLink_timesync_message(0, ts1)), PEER)
        # an answer to another ground station's request
        link.feed(_packet(5, mav.MAVLink_timesync_message(99, ts1 + 12345)), PEER)
        stats = link.stats(5)
        assert stats is not None and stats.timesync_answers == 0 and math.isnan(stats.latency_ms)
    finally:
        await link.close()


async def test_smoothing_follows_rfc6298_and_each_system_has_its_own() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    try:
        link.feed(_heartbeat(5), PEER)
        link.feed(_heartbeat(6), ("127.0.0.1", 40002))
        samples = []
        for _ in range(3):
            ts1 = link.send_timesync()
            link.feed(_packet(5, mav.MAVLink_timesync_message(1, ts1)), PEER)
            samples.append(link.stats(5).latency_ms)
        expected = samples[0]
        for s in samples[1:]:
            expected += LATENCY_ALPHA * (s - expected)
        assert link.stats(5).latency_smoothed_ms == pytest.approx(expected)
        assert link.stats(5).timesync_answers == 3
        assert math.isnan(link.stats(6).latency_ms)  # system 6 never answered
    finally:
        await link.close()


async def test_quick_tries_then_the_period() -> None:
    link = await open_link("udpin:127.0.0.1:0")
    try:
        t0 = time.monotonic()
        link._maybe_timesync(t0)
        assert link.timesync_sent == 0  # nobody heard yet on a udpin link
        link.feed(_heartbeat(5), PEER)
        for k in range(TIMESYNC_QUICK_TRIES):
            link._maybe_timesync(t0 + k)  # at the heartbeat pace while unanswered
        assert link.timesync_sent == TIMESYNC_QUICK_TRIES
        link._maybe_timesync(t0 + TIMESYNC_QUICK_TRIES)
        assert link.timesync_sent == TIMESYNC_QUICK_TRIES  # a silent system: back to the period
        link._maybe_timesync(t0 + TIMESYNC_QUICK_TRIES - 1 + link.timesync_period_s)
        assert link.timesync_sent == TIMESYNC_QUICK_TRIES + 1  # one per period
        link.timesync_period_s = 0.0
        link._maybe_timesync(t0 + 1e6)
        assert link.timesync_sent == TIMESYNC_QUICK_TRIES + 1  # turned off
    finally:
        await link.close()


def test_link_quality_to_dict() -> None:
    q = LinkQuality(3, 0.01234, 0.5, 12.345, math.nan, 100, 2)
    assert q.to_dict() == {"system_id": 3, "packet_loss": 0.0123, "last_heard_age_s": 0.5,
                           "latency_ms": 12.3, "latency_smoothed_ms": None, "received": 100,
                           "lost": 2}
