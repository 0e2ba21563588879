"""The live feed's pure frame logic: hellos, audiences, coalescing, the ring's catch-up and overflow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from command import auth
from command.events import TRANSIENT_KINDS, Event
from command.live_feed import (
    OPERATOR,
    Entry,
    HelloError,
    Ring,
    admission,
    audience_of,
    close_reason,
    coalesce_key,
    entry_for,
    frame_text,
    merge,
    parse_hello,
    welcome,
)

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)
CREW_A = auth.Principal("luoqi-zhang", frozenset({"crew"}), crew="crew-luoqi-water")
CREW_B = auth.Principal("longxing-li", frozenset({"crew"}), crew="crew-longxing-water")
FIRE = auth.Principal("fire-wang", frozenset({"department"}), department="fire")
VIEWER = auth.Principal("screen-hall", frozenset({"viewer"}))


def ev(kind: str, seq: int = 0, **data: object) -> Event:
    return Event(seq=seq, kind=kind, time=T0, data=dict(data), persistent=kind not in TRANSIENT_KINDS)


def tele(name: str, n: int) -> Event:
    return ev("vehicle.telemetry", name=name, n=n)


def events_of(frame: str | None) -> list[dict]:
    assert frame is not None
    msg = json.loads(frame)
    assert msg["type"] == "frame"
    return msg["events"]


# --- hello and welcome ---------------------------------------------------------------------------


def test_a_hello_gives_its_token_or_null() -> None:
    assert parse_hello('{"type": "hello", "token": "abc"}') == "abc"
    assert parse_hello('{"type": "hello", "token": null}') is None


@pytest.mark.parametrize(("text", "why"), [
    (None, "text message"),
    (b'{"type": "hello", "token": null}', "text message"),
    ("hello", "not JSON"),
    ('["hello"]', "expected"),
    ('{"type": "ping"}', "expected"),
    ('{"type": "hello"}', "no token"),
    ('{"type": "hello", "token": 42}', "string or null"),
])
def test_a_bad_hello_says_why(text: object, why: str) -> None:
    with pytest.raises(HelloError, match=why):
        parse_hello(text)  # type: ignore[arg-type]


def test_who_may_subscribe() -> None:
    assert admission(None) is None  # the operator
    assert admission(VIEWER) is None and admission(auth.ANONYMOUS) is None and admission(CREW_A) is None
    nobody = auth.Principal("ghost", frozenset())
    assert admission(nobody) == "ghost may not read events"


def test_the_welcome_names_the_user_roles_and_expiry() -> None:
    p = auth.Principal("chen-li", frozenset({"pilot", "dispatcher"}), expires_at=T0 + timedelta(minutes=15))
    assert json.loads(welcome(p)) == {"type": "welcome", "user": "chen-li", "roles": ["dispatcher", "pilot"],
                                      "operator": False, "expires_at": "2026-07-01T00:15:00+00:00"}
    assert json.loads(welcome(auth.ANONYMOUS))["user"] is None
    assert json.loads(welcome(None)) == {"type": "welcome", "user": None, "roles": [], "operator": True,
                                         "expires_at": None}


def test_a_close_reason_fits_a_close_frame() -> None:
    assert close_reason("token expired") == "token expired"
    long = close_reason("令牌" * 100)
    assert len(long.encode()) <= 123 and long.startswith("令牌")


# --- audiences and views -------------------------------------------------------------------------


def test_audiences_group_clients_that_see_the_same() -> None:
    same_crew = auth.Principal("other", frozenset({"crew"}), crew="crew-luoqi-water")
    assert audience_of(CREW_A) == audience_of(same_crew)
    assert audience_of(CREW_A) != audience_of(CREW_B)
    assert audience_of(VIEWER) == audience_of(auth.ANONYMOUS)
    assert audience_of(None) == OPERATOR != audience_of(VIEWER)


def test_each_audience_sees_the_event_as_event_view_says() -> None:
    task_a = ev("task.created", 1, id=1, crew="crew-luoqi-water", phone="+86 23 1")
    task_b = ev("task.created", 2, id=2, crew="crew-longxing-water")
    assert entry_for(CREW_A, task_b) is None and entry_for(CREW_A, task_a) is not None
    assert entry_for(FIRE, task_a) is None
    viewer = json.loads(entry_for(VIEWER, task_a).payload)
    assert viewer["data"]["phone"] is None and viewer["seq"] == 1 and viewer["kind"] == "task.created"
    operator = json.loads(entry_for(None, task_a).payload)
    assert operator == {"seq": 1, "kind": "task.created", "time": T0.isoformat(), "data": task_a.data}


def test_coalescing_keys_name_the_object() -> None:
    assert coalesce_key("vehicle.telemetry", {"name": "UAV-1"}) == ("vehicle.telemetry", "UAV-1")
    assert coalesce_key("vehicle.adsb", {"name": "UAV-1", "icao_address": 7}) == ("vehicle.adsb", "UAV-1", "7")
    assert coalesce_key("sensor.reading", {"sensor_id": "rain-a", "quantity": "rain"}) == (
        "sensor.reading", "rain-a", "rain")
    assert coalesce_key("incident.updated", {"id": 1}) is None  # a state change: never merged
    assert coalesce_key("vehicle.telemetry", {}) is None  # cannot be told apart: never merged
    assert coalesce_key("sensor.reading", {"sensor_id": "a", "quantity": None}) is None


# --- merging -------------------------------------------------------------------------------------


def test_merge_keeps_every_state_change_in_order_and_the_latest_of_each_object() -> None:
    t1, s1, t2, t3, s2, t4 = (Entry(("v", "a"), "t1"), Entry(None, "s1"), Entry(("v", "a"), "t2"),
                              Entry(("v", "b"), "t3"), Entry(None, "s2"), Entry(("v", "a"), "t4"))
    assert [e.payload for e in merge([t1, s1, t2, t3, s2, t4])] == ["s1", "t3", "s2", "t4"]
    assert merge([]) == []
    same = [Entry(None, "s"), Entry(None, "s")]
    assert merge(same) == same  # identical state changes are still two


def test_a_frame_is_built_from_the_serialized_entries() -> None:
    assert json.loads(frame_text([Entry(None, '{"a":1}'), Entry(None, '{"b":"雨"}')])) == {
        "type": "frame", "events": [{"a": 1}, {"b": "雨"}]}


# --- the ring ------------------------------------------------------------------------------------


def test_a_client_that_keeps_up_gets_the_shared_frame_of_each_tick() -> None:
    ring = Ring()
    cursor = ring.latest + 1
    ring.add(tele("UAV-1", 1))
    ring.add(ev("incident.opened", 1, id=1))
    ring.add(tele("UAV-1", 2))
    ring.close_tick(T0)
    a = ring.catch_up(OPERATOR, None, cursor, T0)
    b = ring.catch_up(OPERATOR, None, cursor, T0)
    assert a.frame is b.frame  # built once per audience, shared
    assert [(e["kind"], e["data"].get("n")) for e in events_of(a.frame)] == [
        ("incident.opened", None), ("vehicle.telemetry", 2)]
    assert a.cursor == 2 and a.merged_ticks == 1
    nothing = ring.catch_up(OPERATOR, None, a.cursor, T0)
    assert nothing.frame is None and nothing.cursor == 2
    ring.close_tick(T0)  # an empty tick: no frame, but the cursor moves on
    assert ring.catch_up(OPERATOR, None, 2, T0) == type(a)(None, 3)


def test_a_slow_client_gets_the_ticks_it_missed_merged_into_one_frame() -> None:
    ring = Ring()
    seq = 0
    for tick in range(10):
        for name in ("UAV-1", "USV-1"):
            ring.add(tele(name, tick))
        seq += 1
        ring.add(ev("vehicle.statustext", seq, name="UAV-1", text=f"t{tick}"))
        ring.close_tick(T0)
    fast = ring.catch_up(OPERATOR, None, 10, T0)
    slow = ring.catch_up(OPERATOR, None, 1, T0)
    assert fast.merged_ticks == 1 and slow.merged_ticks == 10 and slow.cursor == 11
    got = events_of(slow.frame)
    assert [e["seq"] for e in got if e["seq"]] == list(range(1, 11))  # every state change, in order
    latest = {e["data"]["name"]: e["data"]["n"] for e in got if e["kind"] == "vehicle.telemetry"}
    assert latest == {"UAV-1": 9, "USV-1": 9}
    assert sum(e["kind"] == "vehicle.telemetry" for e in got) == 2


def test_a_crew_member_never_gets_another_crews_events_even_when_behind() -> None:
    ring = Ring()
    for i in range(3):
        ring.add(ev("task.created", 2 * i + 1, id=i, crew="crew-luoqi-water"))
        ring.add(ev("crew.status", 2 * i + 2, id="crew-longxing-water", status="busy"))
        ring.close_tick(T0)
    mine = events_of(ring.catch_up(audience_of(CREW_A), CREW_A, 1, T0).frame)
    assert [e["seq"] for e in mine] == [1, 3, 5]
    theirs = events_of(ring.catch_up(audience_of(CREW_B), CREW_B, 1, T0).frame)
    assert [e["seq"] for e in theirs] == [2, 4, 6]
    assert ring.catch_up(audience_of(FIRE), FIRE, 1, T0).frame is None  # nothing for the fire department


def test_a_client_behind_the_ring_is_told_to_refetch() -> None:
    ring = Ring(size=3)
    for i in range(5):
        ring.add(ev("incident.updated", i + 1, id=i))
        ring.close_tick(T0)
    assert ring.oldest == 3 and len(ring.ticks) == 3
    out = ring.catch_up(OPERATOR, None, 2, T0)
    assert out.overflowed and out.cursor == 6
    [marker] = events_of(out.frame)
    assert marker["kind"] == "bus.overflow" and marker["data"]["behind_ticks"] == 4
    assert auth.event_view(VIEWER, "bus.overflow", marker["data"]) is not None  # everyone sees it
    assert not ring.catch_up(OPERATOR, None, 3, T0).overflowed


def test_transients_are_coalesced_as_they_arrive_so_a_tick_stays_small() -> None:
    ring = Ring()
    for n in range(1000):
        ring.add(tele("UAV-1", n))
        ring.add(ev("sensor.reading", sensor_id=f"s{n % 10}", quantity="rain", value=n))
    assert ring.pending == 11
    tick = ring.close_tick(T0)
    assert len(tick.events) == 11 and ring.pending == 0
    assert [e.data["n"] for e in tick.events if e.kind == "vehicle.telemetry"] == [999]


def test_a_flood_of_state_changes_in_one_tick_is_bounded_and_told() -> None:
    ring = Ring(max_persistent=3)
    for i in range(5):
        ring.add(ev("incident.updated", i + 1, id=i))
    ring.add(tele("UAV-1", 1))  # transients still pass
    tick = ring.close_tick(T0)
    assert tick.overflowed == 2 and len(tick.events) == 4
    got = events_of(ring.catch_up(audience_of(VIEWER), VIEWER, 1, T0).frame)
    assert got[0]["kind"] == "bus.overflow" and got[0]["data"]["dropped"] == 2
    assert [e["seq"] for e in got[1:]] == [1, 2, 3, 0]


def test_a_ring_needs_room() -> None:
    with pytest.raises(ValueError, match="size >= 1"):
        Ring(size=0)
    with pytest.raises(ValueError, match="max_persistent"):
        Ring(max_persistent=0)


# --- the bus's listeners (what the hub uses) ---------------------------------------------------------


def test_a_bus_listener_gets_every_event_and_a_broken_one_fails_nobody(caplog: pytest.LogCaptureFixture) -> None:
    from command.clock import ManualClock
    from command.events import EventBus

    bus = EventBus(ManualClock(T0))
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("broken listener")

    bus.listen(got.append)  # type: ignore[arg-type]
    bus.listen(broken)
    assert bus.subscriber_count == 2
    bus.publish("incident.opened", {"id": 1})
    bus.publish("vehicle.telemetry", {"name": "UAV-1"})
    assert [e.kind for e in got] == ["incident.opened", "vehicle.telemetry"]  # type: ignore[attr-defined]
    assert "event listener" in caplog.text and "broken listener" in caplog.text
    bus.unlisten(got.append)  # type: ignore[arg-type]
    bus.unlisten(broken)
    bus.unlisten(broken)  # twice: no error
    bus.publish("incident.updated", {"id": 1})
    assert len(got) == 2 and bus.subscriber_count == 0
