"""MAVLink 2 message signing: keys, signing outgoing packets, verifying incoming ones.

The MAVLink signing spec (https://mavlink.io/en/guide/message_signing.html):

* a signed packet sets ``MAVLINK_IFLAG_SIGNED`` (0x01) in ``incompat_flags`` and carries a
  13-byte block after the CRC: ``link_id`` (1 byte), ``timestamp`` (6 bytes, little
  endian, 10 µs units since 2015-01-01 00:00:00 UTC) and ``signature`` (6 bytes);
* ``signature = sha256(secret_key + header + payload + crc + link_id + timestamp)[:6]``;
* replay protection per stream ``(link_id, system id, component id)``: a timestamp must be
  greater than the last accepted one of its stream; a new stream is accepted only if its
  timestamp is no more than one minute behind the receiver's own timestamp.

The ground link verifies signatures itself (:class:`Verifier`) rather than with pymavlink's
parser: one ``MAVLink`` object holds one key, but several vehicles with different keys may
share one UDP port, so the key is chosen per packet from its source system id. Our
verifier also records a stream's timestamp only after the signature checked out
(pymavlink records it first, so one forged packet with a far-future timestamp would lock
the real sender out).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["KEY_LEN", "SIGNATURE_BLOCK_LEN", "Signer", "Verdict", "Verifier", "parse_key",
           "is_signed", "signature", "timestamp_now", "unix_to_timestamp"]

KEY_LEN: Final = 32  # bytes of secret key (MAVLink SETUP_SIGNING.secret_key)
SIGNATURE_BLOCK_LEN: Final = 13  # link_id 1 + timestamp 6 + signature 6
IFLAG_SIGNED: Final = 0x01  # MAVLINK_IFLAG_SIGNED
_MAGIC_V2: Final = 0xFD
# 2015-01-01 00:00:00 UTC as a Unix time: the epoch of signing timestamps (spec).
SIGNING_EPOCH_UNIX_S: Final = 1420070400
# Timestamps count 10 µs units (spec).
UNITS_PER_S: Final = 100_000
# A new stream may lag the receiver's clock by at most one minute (spec, "timestamp").
NEW_STREAM_MAX_LAG: Final = 60 * UNITS_PER_S
# Streams remembered per verifier (the C library's MAVLINK_MAX_SIGNING_STREAMS is 16;
# a ground station sees more: a few per vehicle). The oldest is forgotten beyond this.
MAX_STREAMS: Final = 1024


def parse_key(text: str | bytes) -> bytes:
    """A 32-byte secret key from 64 hex digits or base64 (raw bytes pass through).

    >>> len(parse_key("00" * 32))
    32
    """
    if isinstance(text, bytes):
        key = text
    else:
        s = text.strip()
        try:
            key = bytes.fromhex(s) if len(s) == 2 * KEY_LEN else base64.b64decode(s, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("signing key must be 64 hex digits or base64 of 32 bytes") from None
    if len(key) != KEY_LEN:
        raise ValueError(f"signing key must be {KEY_LEN} bytes, got {len(key)}")
    return key


def unix_to_timestamp(unix_s: float) -> int:
    """Unix seconds → signing timestamp (10 µs units since 2015-01-01 UTC)."""
    return max(0, int((unix_s - SIGNING_EPOCH_UNIX_S) * UNITS_PER_S))


def timestamp_now(clock: Callable[[], float] = time.time) -> int:
    """The current signing timestamp from a wall clock (Unix seconds)."""
    return unix_to_timestamp(clock())


def is_signed(packet: bytes | bytearray) -> bool:
    """True for a MAVLink 2 packet with the signed flag."""
    return len(packet) > 2 and packet[0] == _MAGIC_V2 and bool(packet[2] & IFLAG_SIGNED)


def signature(key: bytes, signed_part: bytes | bytearray) -> bytes:
    """The 6-byte signature over everything before it (header .. timestamp)."""
    return hashlib.sha256(key + bytes(signed_part)).digest()[:6]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of checking one packet: ``ok`` or a ``reason``."""

    ok: bool
    reason: str = ""  # "unsigned", "bad signature", "replayed", "stale stream"
    link_id: int = -1
    timestamp: int = 0

    @property
    def unsigned(self) -> bool:
        return self.reason == "unsigned"


class Verifier:
    """Checks signed packets against one key with per-stream replay protection."""

    __slots__ = ("key", "_clock", "_streams", "_timestamp")

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self.key = parse_key(key)
        self._clock = clock
        self._streams: dict[tuple[int, int, int], int] = {}
        self._timestamp = 0  # the highest timestamp accepted (our view of "now")

    def check(self, packet: bytes | bytearray) -> Verdict:
        """Verify one whole packet (as ``msg.get_msgbuf()`` returns it)."""
        if not is_signed(packet) or len(packet) < 12 + SIGNATURE_BLOCK_LEN:
            return Verdict(False, "unsigned")
        block = packet[-SIGNATURE_BLOCK_LEN:]
        link_id = block[0]
        timestamp = int.from_bytes(block[1:7], "little")
        expected = signature(self.key, packet[:-6])
        if not hmac.compare_digest(expected, bytes(block[7:13])):
            return Verdict(False, "bad signature", link_id, timestamp)
        stream = (link_id, packet[5], packet[6])  # (link id, system id, component id)
        last = self._streams.get(stream)
        if last is not None:
            if timestamp <= last:
                return Verdict(False, "replayed", link_id, timestamp)
        else:
            now = max(self._timestamp, timestamp_now(self._clock))
            if timestamp + NEW_STREAM_MAX_LAG < now:
                return Verdict(False, "stale stream", link_id, timestamp)
            if len(self._streams) >= MAX_STREAMS:
                self._streams.pop(next(iter(self._streams)))
        self._streams[stream] = timestamp
        self._timestamp = max(self._timestamp, timestamp)
        return Verdict(True, "", link_id, timestamp)


class Signer:
    """Signs outgoing packets with pymavlink's encoder for one key and link id.

    The timestamp is the wall clock, but never goes backwards nor repeats (spec:
    "the timestamp must be incremented for each message sent on a stream").
    """

    __slots__ = ("key", "link_id", "_clock", "_last")

    def __init__(self, key: bytes, *, link_id: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0 <= link_id <= 255:
            raise ValueError(f"link_id must be 0..255, got {link_id}")
        self.key = parse_key(key)
        self.link_id = link_id
        self._clock = clock
        self._last = 0

    def next_timestamp(self) -> int:
        self._last = max(self._last + 1, timestamp_now(self._clock))
        return self._last

    def pack(self, msg: object, encoder: object) -> bytes:
        """``msg.pack(encoder)`` signed with this key; the encoder's own signing state
        (pymavlink ``MAVLink.signing``) is restored afterwards."""
        signing = encoder.signing  # type: ignore[attr-defined]
        saved = (signing.secret_key, signing.link_id, signing.timestamp, signing.sign_outgoing)
        signing.secret_key, signing.link_id = self.key, self.link_id
        signing.timestamp, signing.sign_outgoing = self.next_timestamp(), True
        try:
            return bytes(msg.pack(encoder))  # type: ignore[attr-defined]
        finally:
            signing.secret_key, signing.link_id, signing.timestamp, signing.sign_outgoing = saved
