"""Department task life and its escalation, driven by a stepped clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from command.clock import ManualClock
from command.linkage.lifecycle import (
    DeptTask,
    EscalationAction,
    EscalationError,
    EscalationPolicy,
    TaskState,
    Transition,
    TransitionError,
    apply,
    due_actions,
    new_task,
    transition,
)

T0 = datetime(2025, 7, 7, 2, 0, tzinfo=timezone.utc)
S = TaskState


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _task(*, ack_within_s: float = 600.0, complete_within_s: float | None = None) -> DeptTask:
    return new_task("t1", incident_id=7, department="traffic", at=T0, ack_within_s=ack_within_s,
                    complete_within_s=complete_within_s)


# how to reach each state from a new task: (state, by, note) in order
PATHS: dict[TaskState, list[tuple[TaskState, str | None, str | None]]] = {
    S.SENT: [],
    S.DELIVERED: [(S.DELIVERED, None, "mqtt")],
    S.ACKNOWLEDGED: [(S.ACKNOWLEDGED, "traffic-wang", None)],
    S.IN_PROGRESS: [(S.ACKNOWLEDGED, "traffic-wang", None), (S.IN_PROGRESS, "traffic-wang", None)],
    S.DONE: [(S.ACKNOWLEDGED, "traffic-wang", None), (S.IN_PROGRESS, "traffic-wang", None),
             (S.DONE, "traffic-wang", "roads closed")],
    S.DECLINED: [(S.DECLINED, "traffic-wang", "no crews")],
    S.CANCELLED: [(S.CANCELLED, None, "false alarm")],
}


def _in(state: TaskState) -> DeptTask:
    task = _task()
    for i, (to, by, note) in enumerate(PATHS[state], 1):
        task = transition(task, to, at=_at(i), by=by, note=note)
    assert task.state is state
    return task


ALLOWED = {
    S.SENT: {S.DELIVERED, S.ACKNOWLEDGED, S.DECLINED, S.CANCELLED},
    S.DELIVERED: {S.ACKNOWLEDGED, S.DECLINED, S.CANCELLED},
    S.ACKNOWLEDGED: {S.IN_PROGRESS, S.DECLINED, S.CANCELLED},
    S.IN_PROGRESS: {S.DONE, S.DECLINED, S.CANCELLED},
}
NO_OP = {(S.DELIVERED, S.DELIVERED), (S.ACKNOWLEDGED, S.DELIVERED), (S.IN_PROGRESS, S.DELIVERED),
         (S.ACKNOWLEDGED, S.ACKNOWLEDGED)}
FINAL = (S.DONE, S.DECLINED, S.CANCELLED)
PAIRS = [(a, b) for a in S for b in S]


@pytest.mark.parametrize(("start", "to"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_is_allowed_ignored_or_refused_as_specified(start: TaskState, to: TaskState) -> None:
    task = _in(start)
    if (start, to) in NO_OP:
        assert transition(task, to, at=_at(30), by="traffic-li", note="again") is task
    elif to in ALLOWED.get(start, ()):
        after = transition(task, to, at=_at(30), by="traffic-li", note="why")
        assert after.state is to
        assert after.history[-1] == Transition(_at(30), start, to, "traffic-li", "why")
        assert after.history[:-1] == task.history
        assert task.state is start  # the old snapshot is untouched
    elif start in FINAL:
        with pytest.raises(TransitionError, match=f"is {start} \\(final\\): it cannot become {to}$"):
            transition(task, to, at=_at(30), by="traffic-li", note="why")
    else:
        with pytest.raises(TransitionError, match=f"cannot go from {start} to {to}$"):
            transition(task, to, at=_at(30), by="traffic-li", note="why")


def test_acknowledging_again_keeps_the_first_acknowledgement_and_adds_nothing() -> None:
    task = transition(_task(), "acknowledged", at=_at(3), by="traffic-wang")
    again = transition(task, "acknowledged", at=_at(4), by="traffic-li")
    assert again is task
    assert (again.acknowledged_by, again.acknowledged_at) == ("traffic-wang", _at(3))
    assert [(h.from_state, h.to_state) for h in again.history] == [(None, S.SENT), (S.SENT, S.ACKNOWLEDGED)]


def test_acknowledging_a_final_task_names_its_state() -> None:
    with pytest.raises(TransitionError, match="task 't1' is done \\(final\\): it cannot become acknowledged"):
        transition(_in(S.DONE), "acknowledged", at=_at(30), by="traffic-wang")
    with pytest.raises(TransitionError, match="is cancelled \\(final\\)"):
        transition(_in(S.CANCELLED), "acknowledged", at=_at(30), by="traffic-wang")


@pytest.mark.parametrize("by", [None, "", "  "])
@pytest.mark.parametrize("start,to", [(S.SENT, S.ACKNOWLEDGED), (S.ACKNOWLEDGED, S.IN_PROGRESS),
                                      (S.IN_PROGRESS, S.DONE), (S.DELIVERED, S.DECLINED)])
def test_a_person_is_required(start: TaskState, to: TaskState, by: str | None) -> None:
    with pytest.raises(TransitionError, match=f"task 't1': {to} needs the person \\(by\\)"):
        transition(_in(start), to, at=_at(30), by=by, note="text")


@pytest.mark.parametrize("note", [None, "", " \n"])
def test_done_needs_a_report_and_declined_a_reason(note: str | None) -> None:
    with pytest.raises(TransitionError, match="done needs a report \\(note\\)"):
        transition(_in(S.IN_PROGRESS), "done", at=_at(30), by="traffic-wang", note=note)
    with pytest.raises(TransitionError, match="declined needs a reason \\(note\\)"):
        transition(_in(S.SENT), "declined", at=_at(30), by="traffic-wang", note=note)


def test_system_and_channel_changes_need_no_person() -> None:
    assert transition(_task(), "delivered", at=_at(1)).state is S.DELIVERED
    assert transition(_task(), "cancelled", at=_at(1)).state is S.CANCELLED


def test_a_whole_life_is_recorded() -> None:
    task = _task(complete_within_s=3600)
    task = transition(task, "delivered", at=_at(1), note="mqtt")
    task = transition(task, "delivered", at=_at(1.5), note="webhook")  # a second channel confirms: no-op
    task = transition(task, "acknowledged", at=_at(4), by="traffic-wang")
    task = transition(task, "delivered", at=_at(5), note="view")  # late confirmation: no-op
    task = transition(task, "in_progress", at=_at(6), by="traffic-wang")
    task = transition(task, "done", at=_at(50), by="traffic-wang", note="G65 ramps closed")
    assert task.final and task.state is S.DONE
    assert task.report == "G65 ramps closed" and task.decline_reason is None
    assert [(h.at, h.from_state, h.to_state, h.by, h.note) for h in task.history] == [
        (_at(0), None, S.SENT, None, None),
        (_at(1), S.SENT, S.DELIVERED, None, "mqtt"),
        (_at(4), S.DELIVERED, S.ACKNOWLEDGED, "traffic-wang", None),
        (_at(6), S.ACKNOWLEDGED, S.IN_PROGRESS, "traffic-wang", None),
        (_at(50), S.IN_PROGRESS, S.DONE, "traffic-wang", "G65 ramps closed"),
    ]
    declined = transition(_task(), "declined", at=_at(2), by="traffic-li", note="outside our remit")
    assert declined.decline_reason == "outside our remit"


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(TransitionError, match="unknown state 'exploded'"):
        transition(_task(), "exploded", at=_at(1))
    with pytest.raises(ValueError, match="at must be a timezone-aware datetime"):
        transition(_task(), "delivered", at=datetime(2025, 7, 7, 2, 1))
    with pytest.raises(ValueError, match="at must be a timezone-aware datetime"):
        new_task("t2", incident_id=1, department="fire", at=datetime(2025, 7, 7), ack_within_s=60)
    with pytest.raises(ValueError, match="deadlines must not be negative"):
        new_task("t2", incident_id=1, department="fire", at=T0, ack_within_s=-1)
    with pytest.raises(ValueError, match="ack_due_at .* is before created_at"):
        DeptTask("t3", 1, "fire", S.SENT, created_at=T0, ack_due_at=T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        due_actions(_task(), EscalationPolicy(), datetime(2025, 7, 7, 3))


# --- escalation under a stepped clock --------------------------------------------------------------

POLICY = EscalationPolicy(("resend", "deputy", "head_and_bureau"), step_interval_s=300)


def _run(task: DeptTask, clock: ManualClock, *, until_min: float, step_s: float = 60.0,
         events: dict[float, tuple[str, str]] | None = None,
         policy: EscalationPolicy = POLICY) -> tuple[DeptTask, list[tuple[float, str, tuple[str, ...], datetime]]]:
    """Tick like the service: apply any scheduled change, then every due action; return what fired."""
    fired = []
    events = dict(events or {})
    while clock.now() <= _at(until_min):
        now = clock.now()
        minute = (now - T0).total_seconds() / 60
        if minute in events:
            to, by = events.pop(minute)
            task = transition(task, to, at=now, by=by, note="report" if to in ("done", "declined") else None)
        for action in due_actions(task, policy, now):
            fired.append((minute, action.step, action.recipients, action.due_at))
            task = apply(task, action, at=now)
        clock.advance(step_s)
    assert not events, f"scheduled changes never happened: {events}"
    return task, fired


def test_unacknowledged_task_escalates_once_per_step_on_schedule() -> None:
    task, fired = _run(_task(), ManualClock(T0), until_min=40)
    assert fired == [
        (10.0, "resend", ("on_duty",), _at(10)),
        (15.0, "deputy", ("deputy",), _at(15)),
        (20.0, "head_and_bureau", ("head", "bureau_duty_chief"), _at(20)),
    ]
    assert task.escalation_stage == 3
    assert [(h.at, h.action) for h in task.history if h.action] == [
        (_at(10), "resend"), (_at(15), "deputy"), (_at(20), "head_and_bureau")]
    assert all(h.from_state == h.to_state == S.SENT for h in task.history if h.action)
    assert task.history[1].note == "resend to on_duty (due 2025-07-07T02:10:00+00:00)"


def test_a_fast_ticking_service_fires_each_step_once_on_the_first_tick_at_or_after_it() -> None:
    _, fired = _run(_task(), ManualClock(T0), until_min=40, step_s=7.0)
    assert [(step, due) for _, step, _, due in fired] == [
        ("resend", _at(10)), ("deputy", _at(15)), ("head_and_bureau", _at(20))]
    for minute, _, _, due in fired:
        assert 0 <= minute * 60 - (due - T0).total_seconds() < 7


def test_acknowledgement_at_12_minutes_stops_deputy_and_head() -> None:
    task, fired = _run(_task(), ManualClock(T0), until_min=40, events={12.0: ("acknowledged", "traffic-wang")})
    assert fired == [(10.0, "resend", ("on_duty",), _at(10))]
    assert task.state is S.ACKNOWLEDGED and task.escalation_stage == 1


def test_after_an_hour_down_all_three_steps_fire_in_order_once() -> None:
    clock = ManualClock(T0)
    task = _task()
    assert due_actions(task, POLICY, clock.now()) == []
    clock.advance(3600)
    actions = due_actions(task, POLICY, clock.now())
    assert actions == [
        EscalationAction("t1", "resend", ("on_duty",), _at(10), 0),
        EscalationAction("t1", "deputy", ("deputy",), _at(15), 1),
        EscalationAction("t1", "head_and_bureau", ("head", "bureau_duty_chief"), _at(20), 2),
    ]
    for action in actions:
        task = apply(task, action, at=clock.now())
    for _ in range(3):
        clock.advance(60)
        assert due_actions(task, POLICY, clock.now()) == []
    clock.advance(86400)
    assert due_actions(task, POLICY, clock.now()) == []


def test_a_step_cannot_be_applied_twice_or_out_of_order() -> None:
    task = _task()
    first, second, _ = due_actions(task, POLICY, _at(60))
    with pytest.raises(EscalationError, match="step 'deputy' is stage 1, but the next stage is 0"):
        apply(task, second, at=_at(60))
    task = apply(task, first, at=_at(60))
    with pytest.raises(EscalationError, match="step 'resend' is stage 0, but the next stage is 1"):
        apply(task, first, at=_at(60))
    other = new_task("t9", incident_id=7, department="fire", at=T0, ack_within_s=600)
    with pytest.raises(EscalationError, match="action 'resend' is for task 't1', not 't9'"):
        apply(other, first, at=_at(60))


def test_acknowledgement_refuses_a_pending_step() -> None:
    task = _task()
    pending = due_actions(task, POLICY, _at(15))
    task = transition(task, "acknowledged", at=_at(15), by="traffic-wang")
    assert due_actions(task, POLICY, _at(60)) == []
    with pytest.raises(EscalationError, match="is acknowledged: escalation stopped at its acknowledgement"):
        apply(task, pending[0], at=_at(15))


def test_delivery_does_not_stop_escalation() -> None:
    task, fired = _run(_task(), ManualClock(T0), until_min=40, events={2.0: ("delivered", None)})
    assert [step for _, step, _, _ in fired] == ["resend", "deputy", "head_and_bureau"]
    assert task.state is S.DELIVERED


def test_overdue_completion_gives_one_notice_to_the_head() -> None:
    task, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=90,
                       events={5.0: ("acknowledged", "traffic-wang"), 6.0: ("in_progress", "traffic-wang")})
    assert fired == [(30.0, "overdue", ("head",), _at(30))]
    assert task.overdue_notified and task.history[-1].action == "overdue"
    assert task.history[-1].from_state == task.history[-1].to_state == S.IN_PROGRESS
    notice = EscalationAction("t1", "overdue", ("head",), _at(30))
    with pytest.raises(EscalationError, match="the overdue notice was already given"):
        apply(task, notice, at=_at(91))


def test_overdue_applies_to_an_acknowledged_task_not_to_an_unacknowledged_or_done_one() -> None:
    _, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=40,
                    events={3.0: ("acknowledged", "traffic-wang")})
    assert fired == [(30.0, "overdue", ("head",), _at(30))]
    # never acknowledged: the escalation steps run, no overdue notice
    _, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=90)
    assert [step for _, step, _, _ in fired] == ["resend", "deputy", "head_and_bureau"]
    # done in time: nothing
    _, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=90,
                    events={3.0: ("acknowledged", "traffic-wang"), 4.0: ("in_progress", "traffic-wang"),
                            20.0: ("done", "traffic-wang")})
    assert fired == []
    with pytest.raises(EscalationError, match="the overdue notice is for an acknowledged or in-progress task"):
        apply(_task(complete_within_s=1800), EscalationAction("t1", "overdue", ("head",), _at(30)), at=_at(30))


@pytest.mark.parametrize("end", [("cancelled", None), ("declined", "traffic-wang")])
def test_cancel_or_decline_stops_everything(end: tuple[str, str | None]) -> None:
    task, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=120, events={12.0: end})
    assert fired == [(10.0, "resend", ("on_duty",), _at(10))]
    assert due_actions(task, POLICY, _at(600)) == []
    with pytest.raises(EscalationError, match=f"task 't1' is {end[0]} \\(final\\): no deputy any more"):
        apply(task, EscalationAction("t1", "deputy", ("deputy",), _at(15), 1), at=_at(15))
    # cancelled while acknowledged and working: no overdue notice either
    task, fired = _run(_task(complete_within_s=1800), ManualClock(T0), until_min=120,
                       events={3.0: ("acknowledged", "traffic-wang"), 20.0: ("cancelled", None)})
    assert fired == []


def test_spacing_and_steps_come_from_the_playbook() -> None:
    policy = EscalationPolicy.from_playbook({"department": "fire", "task": "x", "escalation": ["deputy", "bureau"],
                                             "escalation_interval_s": 120})
    assert policy == EscalationPolicy(("deputy", "bureau"), 120.0)
    _, fired = _run(_task(), ManualClock(T0), until_min=40, policy=policy)
    assert fired == [(10.0, "deputy", ("deputy",), _at(10)), (12.0, "bureau", ("bureau_duty_chief",), _at(12))]
    assert EscalationPolicy.from_playbook({"department": "fire", "task": "x"}) == EscalationPolicy(
        ("resend", "deputy", "head_and_bureau"), 300.0)
    assert due_actions(_task(), EscalationPolicy(()), _at(600)) == []  # no steps: never chased


def test_a_task_spec_gives_its_steps_and_the_service_its_spacing() -> None:
    @dataclass(frozen=True)
    class Spec:  # the shape of a versioned playbook's task spec
        department: str
        escalation: tuple[str, ...]

    spec = Spec("health", ("resend", "head"))
    assert EscalationPolicy.from_playbook(spec) == EscalationPolicy(("resend", "head"), 300.0)
    assert EscalationPolicy.from_playbook(spec, step_interval_s=60) == EscalationPolicy(("resend", "head"), 60.0)
    with pytest.raises(EscalationError, match="playbook entry for 'health': escalation must be a list of steps"):
        EscalationPolicy.from_playbook(Spec("health", "head"))  # type: ignore[arg-type]


def test_bad_policies_are_clear_errors() -> None:
    with pytest.raises(EscalationError, match="unknown escalation step\\(s\\) \\['mayor'\\]"):
        EscalationPolicy(("resend", "mayor"))
    with pytest.raises(EscalationError, match="step_interval_s must be positive, got 0"):
        EscalationPolicy(step_interval_s=0)
    with pytest.raises(EscalationError, match="playbook entry for 'fire': escalation must be a list of steps"):
        EscalationPolicy.from_playbook({"department": "fire", "escalation": "deputy"})
    with pytest.raises(EscalationError, match="escalation_interval_s must be a number of seconds, got 'soon'"):
        EscalationPolicy.from_playbook({"department": "fire", "escalation_interval_s": "soon"})
