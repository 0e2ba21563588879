"""uav.signing against pymavlink's own MAVLink 2 signing, and the link's per-system keys."""

from __future__ import annotations

import base64

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.link import MavLink, parse_url
from uav.signing import (
    NEW_STREAM_MAX_LAG, Signer, Verifier, is_signed, parse_key, timestamp_now,
    unix_to_timestamp,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW_UNIX_S = 1_750_000_000.0  # a fixed wall clock (2025) for reproducible timestamps


def clock() -> float:
    return NOW_UNIX_S


def _pymavlink_signer(key: bytes, timestamp: int, link_id: int = 3) -> mav.MAVLink:
    enc = mav.MAVLink(None, srcSystem=7, srcComponent=1)
    enc.signing.secret_key = key
    enc.signing.sign_outgoing = True
    enc.signing.link_id = link_id
    enc.signing.timestamp = timestamp
    return enc


def _pymavlink_receiver(key: bytes) -> mav.MAVLink:
    dec = mav.MAVLink(None)
    dec.robust_parsing = True
    dec.signing.secret_key = key
    dec.signing.timestamp = unix_to_timestamp(NOW_UNIX_S)
    dec.signing.allow_unsigned_callback = lambda _m, _id: False
    return dec


def _heartbeat(enc: mav.MAVLink) -> bytes:
    return bytes(enc.heartbeat_encode(2, 3, 0, 0, 4).pack(enc))


def test_parse_key_hex_base64_and_bytes() -> None:
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(KEY.hex().upper()) == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    assert parse_key(KEY) == KEY
    for bad in ("", "00" * 31, "zz" * 32, base64.b64encode(b"short").decode(), b"x" * 31):
        with pytest.raises(ValueError, match="signing key"):
            parse_key(bad)


def test_timestamp_epoch_is_2015_in_10us_units() -> None:
    assert unix_to_timestamp(1420070400) == 0  # 2015-01-01 00:00:00 UTC
    assert unix_to_timestamp(1420070401.5) == 150_000
    assert timestamp_now(clock) == unix_to_timestamp(NOW_UNIX_S)


def test_our_verifier_accepts_pymavlink_signatures() -> None:
    ts = unix_to_timestamp(NOW_UNIX_S)
    packet = _heartbeat(_pymavlink_signer(KEY, ts))
    assert is_signed(packet)
    verdict = Verifier(KEY, clock=clock).check(packet)
    assert verdict.ok, verdict
    assert (verdict.link_id, verdict.timestamp) == (3, ts)


def test_pymavlink_accepts_our_signatures() -> None:
    signer = Signer(KEY, link_id=5, clock=clock)
    enc = mav.MAVLink(None, srcSystem=255, srcComponent=190)
    packet = signer.pack(enc.heartbeat_encode(6, 8, 0, 0, 4), enc)
    assert not enc.signing.sign_outgoing and enc.signing.secret_key is None  # restored
    msgs = _pymavlink_receiver(KEY).parse_buffer(packet)
    assert [m.get_type() for m in msgs] == ["HEARTBEAT"]
    assert msgs[0].get_signed() and msgs[0]._link_id == 5
    # and with another key pymavlink refuses it
    msgs = _pymavlink_receiver(OTHER_KEY).parse_buffer(packet)
    assert [m.get_type() for m in msgs] == ["BAD_DATA"]


def test_wrong_key_tampering_and_unsigned_are_rejected() -> None:
    ts = unix_to_timestamp(NOW_UNIX_S)
    packet = _heartbeat(_pymavlink_signer(OTHER_KEY, ts))
    assert Verifier(KEY, clock=clock).check(packet).reason == "bad signature"
    good = bytearray(_heartbeat(_pymavlink_signer(KEY, ts)))
    good[12] ^= 0x01  # a payload bit flipped (the CRC would catch it too; the HMAC must)
    assert Verifier(KEY, clock=clock).check(good).reason == "bad signature"
    plain = mav.MAVLink(None, srcSystem=7, srcComponent=1)
    verdict = Verifier(KEY, clock=clock).check(_heartbeat(plain))
    assert not verdict.ok and verdict.unsigned


def test_replay_and_stale_streams_are_rejected() -> None:
    ts = unix_to_timestamp(NOW_UNIX_S)
    enc = _pymavlink_signer(KEY, ts)
    first, second = _heartbeat(enc), _heartbeat(enc)
    verifier = Verifier(KEY, clock=clock)
    assert verifier.check(first).ok
    assert verifier.check(second).ok
    assert verifier.check(first).reason == "replayed"
    assert verifier.check(second).reason == "replayed"
    # a new stream (another link id) more than a minute in the past
    old = _heartbeat(_pymavlink_signer(KEY, ts - NEW_STREAM_MAX_LAG - 10, link_id=9))
    assert verifier.check(old).reason == "stale stream"
    # a forged packet with a future timestamp does not poison the stream
    forged = _heartbeat(_pymavlink_signer(OTHER_KEY, ts + 10**9))
    assert verifier.check(forged).reason == "bad signature"
    assert verifier.check(_heartbeat(enc)).ok


def test_signer_timestamps_increase_even_with_a_frozen_clock() -> None:
    signer = Signer(KEY, clock=clock)
    stamps = [signer.next_timestamp() for _ in range(3)]
    assert stamps == sorted(set(stamps)) and stamps[0] == unix_to_timestamp(NOW_UNIX_S)


def _link() -> MavLink:
    return MavLink("udpin:127.0.0.1:0", parse_url("udpin:127.0.0.1:0"), source_system=255,
                   source_component=190)


def test_link_drops_and_counts_per_system() -> None:
    """System 7 has a key; system 8 has none: both feed one link from one address."""
    link = _link()
    link.set_signing_key(7, KEY.hex())
    addr = ("127.0.0.1", 5000)
    ts = timestamp_now()
    good = _pymavlink_signer(KEY, ts)
    wrong = _pymavlink_signer(OTHER_KEY, ts)
    plain7 = mav.MAVLink(None, srcSystem=7, srcComponent=1)
    plain8 = mav.MAVLink(None, srcSystem=8, srcComponent=1)
    sub = link.subscribe()
    link.feed(_heartbeat(plain7), addr)
    link.feed(_heartbeat(wrong), addr)
    assert link.systems() == []  # dropped packets do not make a system heard
    link.feed(_heartbeat(good), addr)
    link.feed(_heartbeat(plain8), addr)
    stats7, stats8 = link.stats(7), link.stats(8)
    assert stats7 is not None and stats8 is not None
    assert (stats7.received, stats7.unsigned_dropped, stats7.bad_signature_dropped) == (1, 1, 1)
    assert (stats8.received, stats8.unsigned_dropped, stats8.bad_signature_dropped) == (1, 0, 0)
    assert [m.get_srcSystem() for m in (sub.get_nowait(), sub.get_nowait())] == [7, 8]
    assert sub.get_nowait() is None
    assert link.bad_packets == 0  # signature drops are not decoding errors


def test_link_signs_per_destination() -> None:
    link = _link()
    link.set_signing_key(7, KEY)
    link.set_signing_key(9, KEY)  # same key: one signer, one timestamp stream
    assert link._signers[7] is link._signers[9]
    msg = link.mav.command_long_encode(7, 1, 400, 0, 1, 0, 0, 0, 0, 0, 0)
    signed = link._pack(msg, link._signers_for(7, None)[0])
    plain = link._pack(msg, link._signers_for(8, None)[0])
    assert is_signed(signed) and not is_signed(plain)
    assert Verifier(KEY).check(signed).ok
    # a broadcast on udpout/tcp goes signed once per key plus unsigned for unknown systems
    kinds = link._signers_for(None, None)
    assert len(kinds) == 2 and None in kinds
    link.set_signing_key(7, None)
    link.set_signing_key(9, None)
    assert link._signers_for(None, None) == [None]
