from datetime import datetime, timedelta, timezone

import pytest

from command.store import AlreadyDecided, AlreadyDispatched, NotFound, Store
from sensors.model import Reading

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'y.db'}")
    yield s
    s.close()


def _incident(store):
    return store.insert_incident(kind="flood", sensor_id="g1", level=2, status="open", lon=106.6, lat=29.6,
                                 on_water=True, opened_at=T0, updated_at=T0, detail={"title": "t"})


def test_duplicate_readings_are_stored_once(store):
    r = Reading("g1", "level", 180.0, "m", T0)
    assert store.add_readings([r], received_at=T0) == 1
    later = Reading("g1", "level", 181.0, "m", T0 + timedelta(minutes=5))
    assert store.add_readings([r, later], received_at=T0) == 1
    assert store.count_readings() == 2
    assert store.latest_readings()["g1"].value == 181.0


def test_times_come_back_aware_utc(store):
    store.add_readings([Reading("g1", "level", 1.0, "m", T0)], received_at=T0)
    row = store.readings("g1")[0]
    assert row.time == T0 and row.time.tzinfo is not None


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive"):
        store.add_readings([Reading("g1", "level", 1.0, "m", T0.replace(tzinfo=None))], received_at=T0)


def test_one_dispatch_per_incident(store):
    inc = _incident(store)
    store.claim_dispatch(inc.id, by="a", now=T0)
    with pytest.raises(AlreadyDispatched):
        store.claim_dispatch(inc.id, by="b", now=T0)


def test_refused_dispatch_can_be_claimed_again(store):
    inc = _incident(store)
    store.claim_dispatch(inc.id, by="a", now=T0)
    store.update_dispatch(inc.id, state="refused", error="no vehicle")
    again = store.claim_dispatch(inc.id, by="b", now=T0)
    assert again.state == "planning" and again.approved_by == "b" and again.error is None


def test_tasks_are_one_per_key_and_change_only_from_the_state_read(store):
    inc = _incident(store)
    fields = {"incident_id": inc.id, "key": "fire:0", "department": "fire", "text": "go", "text_zh": "出发",
              "status": "sent", "created_at": T0, "updated_at": T0, "ack_due_at": T0}
    [task] = store.insert_tasks([fields])
    assert store.insert_tasks([fields]) == []  # the same playbook task again: skipped
    row = store.update_task(task.id, expect_status="sent", status="acknowledged", acknowledged_by="duty officer")
    assert row.status == "acknowledged" and store.task(task.id).acknowledged_by == "duty officer"
    with pytest.raises(AlreadyDecided):  # another replica moved it first
        store.update_task(task.id, expect_status="sent", status="declined")
    assert [t.id for t in store.tasks(incident_id=inc.id, department="fire", open_only=True)] == [task.id]
    store.update_task(task.id, status="done")
    assert store.tasks(open_only=True) == []
    with pytest.raises(NotFound):
        store.task(9999)


def test_event_log_is_ordered_and_survives_reopen(tmp_path):
    url = f"sqlite:///{tmp_path / 'y.db'}"
    s = Store(url)
    seqs = [s.append_event(time=T0, kind=f"k{i}", data={"i": i}) for i in range(3)]
    s.close()
    s2 = Store(url)
    assert seqs == sorted(seqs)
    assert [e.kind for e in s2.events()] == ["k0", "k1", "k2"]
    assert [e.kind for e in s2.events(after=seqs[0])] == ["k1", "k2"]
    s2.close()
