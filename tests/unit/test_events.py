from datetime import datetime, timezone

from command.clock import ManualClock, ScaledClock
from command.events import EventBus

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)


async def test_persistent_events_are_logged_and_fanned_out():
    log = []
    bus = EventBus(ManualClock(T0), append=lambda t, k, d: log.append((t, k, d)) or len(log))
    sub = bus.subscribe(maxsize=10)
    e1 = bus.publish("incident.opened", {"id": 1})
    e2 = bus.publish("vehicle.telemetry", {"name": "uav-1"})  # transient: not in the audit log
    assert [k for _, k, _ in log] == ["incident.opened"]
    assert e1.seq == 1 and e2.seq == 0 and not e2.persistent
    assert sub.queue.get_nowait() is e1 and sub.queue.get_nowait() is e2


async def test_a_slow_subscriber_loses_its_oldest_events_not_the_bus():
    bus = EventBus(ManualClock(T0))
    slow = bus.subscribe(maxsize=2)
    for i in range(5):
        bus.publish("k", {"i": i})
    assert slow.dropped == 3
    assert [slow.queue.get_nowait().data["i"] for _ in range(2)] == [3, 4]
    bus.unsubscribe(slow)
    assert bus.subscriber_count == 0


def test_scaled_clocks_with_one_epoch_agree():
    wall = ManualClock(T0)
    a, b = ScaledClock(T0, 60, wall=wall), ScaledClock(T0, 60, wall=wall)
    wall.advance(10)
    assert a.now() == b.now() == datetime(2026, 7, 1, 0, 10, tzinfo=timezone.utc)
