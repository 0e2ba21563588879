"""The webhook signature scheme (sign / verify), and the pure parts of delivery: backoff, Retry-After,
targets and payload encoding."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random

import pytest

from command.linkage.webhooks import (
    EventNotSubscribed,
    PayloadError,
    QueueFull,
    SenderClosed,
    SignatureError,
    WebhookConfigError,
    WebhookError,
    WebhookSender,
    WebhookTarget,
    backoff_delay_s,
    encode_payload,
    parse_retry_after,
    secret_bytes,
    sign,
    signed_headers,
    verify,
)

SECRET = b"yubei-cad-webhook-secret-0001"
OTHER = b"yubei-cad-webhook-secret-0002"
BODY = '{"department":"fire","task":"关闭嘉陵江滨江路"}'.encode()
TS = 1_750_000_000


def _expected(secret: bytes, body: bytes, timestamp: int) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def _headers(secret: bytes = SECRET, body: bytes = BODY, timestamp: int = TS) -> dict[str, str]:
    return signed_headers(secret, body, timestamp=timestamp, delivery_id="d" * 32, event_type="task.sent")


def _reason(secret, body, headers, *, now: float = TS) -> str:
    with pytest.raises(SignatureError) as info:
        verify(secret, body, headers, now=now)
    return info.value.reason


# -- sign --------------------------------------------------------------------------------------


def test_sign_matches_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign(SECRET, BODY, TS) == _expected(SECRET, BODY, TS)


def test_sign_fixed_vector() -> None:
    # HMAC-SHA256(key=b"0123456789abcdef", msg=b"1700000000.{}"), computed once with hmac and frozen here
    assert sign(b"0123456789abcdef", b"{}", 1_700_000_000) == (
        "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e")
    assert _expected(b"0123456789abcdef", b"{}", 1_700_000_000) == sign(b"0123456789abcdef", b"{}", 1_700_000_000)


def test_text_secret_is_its_utf8_bytes_not_hex() -> None:
    text = "5f" * 16
    assert sign(text, BODY, TS) == _expected(text.encode("utf-8"), BODY, TS)
    assert sign(text, BODY, TS) != _expected(bytes.fromhex(text), BODY, TS)
    assert secret_bytes("密钥-secret-for-the-hotline") == "密钥-secret-for-the-hotline".encode("utf-8")


def test_signature_changes_with_timestamp_and_body() -> None:
    assert sign(SECRET, BODY, TS) != sign(SECRET, BODY, TS + 1)
    assert sign(SECRET, BODY, TS) != sign(SECRET, BODY + b" ", TS)


@pytest.mark.parametrize("secret", [b"", "short", b"15-bytes-secret"])
def test_short_secrets_are_refused(secret) -> None:
    with pytest.raises(WebhookConfigError, match="at least 16 bytes"):
        sign(secret, BODY, TS)


@pytest.mark.parametrize("timestamp", [-1, 1.5, True, "1750000000"])
def test_sign_refuses_a_timestamp_that_is_not_unix_seconds(timestamp) -> None:
    with pytest.raises(WebhookConfigError, match="timestamp"):
        sign(SECRET, BODY, timestamp)


def test_signed_headers_carry_the_four_headers() -> None:
    assert _headers() == {
        "X-Yingji-Timestamp": str(TS),
        "X-Yingji-Signature": _expected(SECRET, BODY, TS),
        "X-Yingji-Delivery": "d" * 32,
        "X-Yingji-Event": "task.sent",
    }


# -- verify ------------------------------------------------------------------------------------


def test_verify_accepts_an_authentic_fresh_request() -> None:
    assert verify(SECRET, BODY, _headers(), now=TS) is None
    assert verify(SECRET.decode(), BODY, _headers(), now=TS + 300) is None  # the edge of the window
    assert verify(SECRET, BODY, _headers(), now=TS - 300) is None


def test_verify_looks_headers_up_case_insensitively() -> None:
    lower = {k.lower(): v for k, v in _headers().items()}
    assert verify(SECRET, BODY, lower, now=TS) is None
    upper_hex = dict(lower, **{"x-yingji-signature": "sha256=" + lower["x-yingji-signature"][7:].upper()})
    assert verify(SECRET, BODY, upper_hex, now=TS) is None


def test_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"fire", b"fira")
    with pytest.raises(SignatureError, match="does not match") as info:
        verify(SECRET, tampered, _headers(), now=TS)
    assert info.value.reason == "bad_signature"


def test_wrong_secret_is_refused() -> None:
    assert _reason(OTHER, BODY, _headers()) == "bad_signature"


def test_a_signature_moved_to_another_timestamp_is_refused() -> None:
    headers = dict(_headers(), **{"X-Yingji-Timestamp": str(TS + 60)})
    assert _reason(SECRET, BODY, headers, now=TS + 60) == "bad_signature"


def test_stale_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError, match="301 s old, more than the 300 s tolerance") as info:
        verify(SECRET, BODY, _headers(), now=TS + 301)
    assert info.value.reason == "stale"


def test_future_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError, match="301 s in the future") as info:
        verify(SECRET, BODY, _headers(), now=TS - 301)
    assert info.value.reason == "future"


def test_tolerance_is_configurable() -> None:
    assert verify(SECRET, BODY, _headers(), now=TS + 900, tolerance_s=1000) is None
    with pytest.raises(SignatureError, match="60 s tolerance"):
        verify(SECRET, BODY, _headers(), now=TS + 61, tolerance_s=60)
    with pytest.raises(WebhookConfigError, match="tolerance_s must be positive"):
        verify(SECRET, BODY, _headers(), now=TS, tolerance_s=0)


def test_a_stale_forgery_is_reported_as_a_bad_signature() -> None:
    assert _reason(OTHER, BODY, _headers(), now=TS + 10_000) == "bad_signature"


@pytest.mark.parametrize("missing", ["X-Yingji-Timestamp", "X-Yingji-Signature"])
def test_missing_header_is_named(missing: str) -> None:
    headers = _headers()
    del headers[missing]
    with pytest.raises(SignatureError, match=f"missing header {missing}") as info:
        verify(SECRET, BODY, headers, now=TS)
    assert info.value.reason == "missing_header"


def test_delivery_and_event_headers_are_not_required() -> None:
    headers = {k: v for k, v in _headers().items() if k in ("X-Yingji-Timestamp", "X-Yingji-Signature")}
    assert verify(SECRET, BODY, headers, now=TS) is None


@pytest.mark.parametrize("timestamp", ["", "abc", "1750000000.0", "+1750000000", " 1750000000", "-5", "1e9"])
def test_malformed_timestamp(timestamp: str) -> None:
    headers = dict(_headers(), **{"X-Yingji-Timestamp": timestamp})
    with pytest.raises(SignatureError, match="X-Yingji-Timestamp must be unix seconds") as info:
        verify(SECRET, BODY, headers, now=TS)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("signature", [
    "",
    "sha256=",
    "sha1=" + "0" * 64,
    "md5=" + "0" * 32,
    "sha256=" + "0" * 63,
    "sha256=" + "0" * 65,
    "sha256=" + "g" * 64,
    sign(SECRET, BODY, TS)[7:],  # the hex without its scheme
    "v1=" + sign(SECRET, BODY, TS)[7:],
])
def test_malformed_signature(signature: str) -> None:
    headers = dict(_headers(), **{"X-Yingji-Signature": signature})
    with pytest.raises(SignatureError, match="must be 'sha256=' and 64 hex digits") as info:
        verify(SECRET, BODY, headers, now=TS)
    assert info.value.reason == "malformed"


def test_rotation_accepts_old_and_new_secret() -> None:
    old_signed, new_signed = _headers(SECRET), _headers(OTHER)
    rotating = [OTHER, SECRET]
    assert verify(rotating, BODY, old_signed, now=TS) is None
    assert verify(rotating, BODY, new_signed, now=TS) is None
    assert verify((OTHER.decode(), SECRET), BODY, old_signed, now=TS) is None
    # once the old secret is retired, its signatures stop working
    assert _reason([OTHER], BODY, old_signed) == "bad_signature"


def test_verify_needs_a_usable_secret() -> None:
    with pytest.raises(WebhookConfigError, match="at least one secret"):
        verify([], BODY, _headers(), now=TS)
    with pytest.raises(WebhookConfigError, match="at least 16 bytes"):
        verify([SECRET, b"tiny"], BODY, _headers(), now=TS)
    with pytest.raises(WebhookConfigError, match="bytes or str"):
        verify([SECRET, 1234], BODY, _headers(), now=TS)


# -- backoff and Retry-After -------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng, twin = random.Random(42), random.Random(42)
    delays = [backoff_delay_s(n, base_s=2.0, cap_s=20.0, rng=rng) for n in range(8)]
    ceilings = [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0, 20.0]
    assert delays == [twin.uniform(0.0, c) for c in ceilings]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))


def test_backoff_does_not_overflow_on_a_huge_retry_number() -> None:
    assert 0.0 <= backoff_delay_s(5000, base_s=1.0, cap_s=30.0, rng=random.Random(1)) <= 30.0
    with pytest.raises(WebhookConfigError, match="retry must be >= 0"):
        backoff_delay_s(-1, base_s=1.0, cap_s=30.0, rng=random.Random(1))


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_750_000_000.0  # 2025-06-15T15:06:40Z
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 0 ", now=now) == 0.0
    assert parse_retry_after("Sun, 15 Jun 2025 15:07:40 GMT", now=now) == 60.0
    assert parse_retry_after("Sun, 15 Jun 2025 15:00:00 GMT", now=now) == 0.0  # already past
    for unusable in (None, "", "-5", "1.5", "soon", "Sun, 15 Jun 2025 15:07:40"):
        assert parse_retry_after(unusable, now=now) is None, unusable


# -- targets and payloads ----------------------------------------------------------------------


def test_target_takes_text_secret_and_filters_events() -> None:
    target = WebhookTarget("fire-cad", "https://cad.fire.example/hooks", SECRET.decode(),
                           events=frozenset({"task.sent", "task.escalated"}))
    assert target.secret == SECRET
    assert target.accepts("task.sent") and not target.accepts("alert.issued")
    assert WebhookTarget("sms", "http://10.0.0.5:8080/in", SECRET).accepts("anything")
    assert SECRET.decode() not in repr(target) and "secret" not in repr(target)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url": "ftp://cad.example/x"}, "url must be http"),
    ({"url": "cad.example/hooks"}, "url must be http"),
    ({"url": "http://"}, "url must be http"),
    ({"id": ""}, "needs an id"),
    ({"secret": b"short"}, "at least 16 bytes"),
    ({"max_attempts": 0}, "max_attempts must be >= 1"),
    ({"timeout_s": 0.0}, "timeout_s must be positive"),
    ({"backoff_base_s": float("nan")}, "backoff_base_s must be positive"),
    ({"backoff_base_s": 10.0, "backoff_cap_s": 5.0}, "below backoff_base_s"),
    ({"retry_after_cap_s": -1.0}, "retry_after_cap_s must be >= 0"),
])
def test_unusable_targets_are_refused(kwargs: dict, message: str) -> None:
    fields = {"id": "fire-cad", "url": "https://cad.example/hooks", "secret": SECRET} | kwargs
    with pytest.raises(WebhookConfigError, match=message):
        WebhookTarget(**fields)


def test_payload_is_sorted_compact_utf8_json() -> None:
    body = encode_payload({"b": 1, "a": {"d": "滨江路", "c": [1.5, None, True]}})
    assert body == '{"a":{"c":[1.5,null,true],"d":"滨江路"},"b":1}'.encode()


@pytest.mark.parametrize(("payload", "message"), [
    ([1, 2], "must be a JSON object"),
    ({"level": float("nan")}, "not JSON-serialisable"),
    ({"when": object()}, "not JSON-serialisable"),
    ({"raw": b"bytes"}, "not JSON-serialisable"),
])
def test_unserialisable_payloads_are_refused(payload, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        encode_payload(payload)


async def test_submit_refuses_bad_event_types_and_unsubscribed_events() -> None:
    sender = WebhookSender()
    target = WebhookTarget("fire-cad", "http://127.0.0.1:9/hooks", SECRET, events=frozenset({"task.sent"}))
    try:
        with pytest.raises(EventNotSubscribed, match="'fire-cad' does not take 'alert.issued' events"):
            sender.submit(target, "alert.issued", {})
        with pytest.raises(PayloadError, match="event type must be"):
            sender.submit(target, "task.sent\r\nX-Evil: 1", {})
        with pytest.raises(PayloadError, match="not JSON-serialisable"):
            sender.submit(target, "task.sent", {"x": float("inf")})
        assert sender.pending() == []
        assert sender.publish([target], "alert.issued", {"a": 1}) == []
    finally:
        assert await sender.close() == []


async def test_a_full_target_queue_refuses_more_and_close_hands_back_what_was_queued() -> None:
    sender = WebhookSender(max_pending_per_target=2)
    target = WebhookTarget("sms", "http://127.0.0.1:9/hooks", SECRET)
    first = sender.submit(target, "alert.issued", {"n": 1})
    second = sender.submit(target, "alert.issued", {"n": 2})
    with pytest.raises(QueueFull, match="'sms' already has 2 pending deliveries"):
        sender.submit(target, "alert.issued", {"n": 3})
    other = sender.submit(WebhookTarget("fire-cad", "http://127.0.0.1:9/x", SECRET), "alert.issued", {"n": 3})
    assert sender.pending() == [first, second, other]
    assert await sender.close() == [first, second, other]
    assert [d.attempts for d in (first, second, other)] == [[], [], []]
    with pytest.raises(SenderClosed, match="closed"):
        await sender.drain()


async def test_drain_refuses_to_run_beside_run() -> None:
    sender = WebhookSender()
    running = asyncio.create_task(sender.run())
    await asyncio.sleep(0)
    with pytest.raises(WebhookError, match="already being driven by run\\(\\) or drain\\(\\)"):
        await sender.drain()
    assert await sender.close() == []
    await running
