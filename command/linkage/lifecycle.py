"""Department tasks: their life (sent … done) and their escalation on the service clock. Pure.

When an incident opens, each linked department gets a task (``command.linkage.playbook``). This
module decides what may happen to such a task and when it must be chased; the service stores the
snapshots, sends the messages and ticks the clock.

Life of a task::

    sent ──▶ delivered ──▶ acknowledged ──▶ in_progress ──▶ done
      └────────────────────────▲                 (final: done, declined, cancelled)

* ``delivered`` comes from a channel's confirmation (MQTT PUBACK, webhook 2xx, the department
  view opened). It may never come, so ``acknowledged`` is allowed straight from ``sent``. Three
  channels can confirm one task, and a confirmation can arrive after the person already answered:
  a ``delivered`` on a delivered, acknowledged or in-progress task is a no-op (no error, no new
  history entry).
* Acknowledging an acknowledged task again is a no-op too (the first acknowledgement, its person
  and time, stand). Acknowledging a task that has moved on (in progress) or ended is an error.
* ``declined`` (with a reason) from sent, delivered, acknowledged or in_progress; ``cancelled``
  (the incident was a false alarm or closed) from any non-final state. ``done`` only from
  ``in_progress``: the department says it started before it says it finished.
* ``acknowledged``, ``in_progress``, ``done`` and ``declined`` need ``by`` (a person id); ``done``
  needs a non-empty report and ``declined`` a non-empty reason, both passed as ``note``.
* Nothing leaves a final state; trying raises ``TransitionError`` naming the state.

Escalation of an unacknowledged task follows the playbook's steps (``EscalationPolicy``). The
first step is due at the acknowledgement deadline, each next one ``step_interval_s`` later
(default 300 s). For steps ("resend", "deputy", "head_and_bureau"), an acknowledgement deadline of
10 min and the default spacing: resend at 10 min, deputy at 15, head and bureau at 20. Acknowledging
stops the steps not yet taken; done, declined and cancelled stop everything. A task acknowledged
(or in progress) whose completion deadline passes gets one ``overdue`` notice to the department head.

``due_actions`` returns every step that is due and not yet taken (``DeptTask.escalation_stage``
counts the steps taken; ``overdue_notified`` marks the notice), in order; ``apply`` records one.
A service that ticks every few seconds therefore takes each step once, on the first tick at or
after its time. A service that was down for an hour gets all the missed steps at once, in order,
each with the time it became due: we send them all rather than only the latest, because each step
reaches a different person (the on-duty person, the deputy, the head) and none of them should
learn of the task only from the one above. ``apply`` refuses a step out of order or twice, so two
ticks racing over the same snapshot cannot send a step twice.

Times are timezone-aware datetimes (aware UTC inside the service); a naive one is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_STEP_INTERVAL_S",
    "DEFAULT_STEPS",
    "STEP_RECIPIENTS",
    "DeptTask",
    "EscalationAction",
    "EscalationError",
    "EscalationPolicy",
    "FINAL",
    "OVERDUE",
    "OVERDUE_RECIPIENTS",
    "TaskError",
    "TaskState",
    "Transition",
    "TransitionError",
    "apply",
    "due_actions",
    "new_task",
    "transition",
]


class TaskError(Exception):
    """Base of department task errors."""


class TransitionError(TaskError):
    """A change the task's life does not allow (the message names the state and the change)."""


class EscalationError(TaskError):
    """An unusable escalation policy, or an escalation action that does not fit the task."""


class TaskState(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"  # a channel confirmed delivery
    ACKNOWLEDGED = "acknowledged"  # a person of the department took it
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # the incident was a false alarm or closed


FINAL: frozenset[TaskState] = frozenset({TaskState.DONE, TaskState.DECLINED, TaskState.CANCELLED})
_WAITING = frozenset({TaskState.SENT, TaskState.DELIVERED})  # not yet acknowledged: escalation runs
_WORKING = frozenset({TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS})  # the completion deadline runs

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SENT: frozenset({TaskState.DELIVERED, TaskState.ACKNOWLEDGED, TaskState.DECLINED,
                               TaskState.CANCELLED}),
    TaskState.DELIVERED: frozenset({TaskState.ACKNOWLEDGED, TaskState.DECLINED, TaskState.CANCELLED}),
    TaskState.ACKNOWLEDGED: frozenset({TaskState.IN_PROGRESS, TaskState.DECLINED, TaskState.CANCELLED}),
    TaskState.IN_PROGRESS: frozenset({TaskState.DONE, TaskState.DECLINED, TaskState.CANCELLED}),
    TaskState.DONE: frozenset(),
    TaskState.DECLINED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}
# Changes that leave the task as it is (no error, no history entry): repeated or late news.
_NO_OP: dict[TaskState, frozenset[TaskState]] = {
    TaskState.DELIVERED: frozenset({TaskState.DELIVERED, TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS}),
    TaskState.ACKNOWLEDGED: frozenset({TaskState.ACKNOWLEDGED}),
}
_NEEDS_BY = frozenset({TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS, TaskState.DONE, TaskState.DECLINED})
_NEEDS_NOTE = {TaskState.DONE: "a report", TaskState.DECLINED: "a reason"}


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Transition:
    """One entry of a task's history: a change of state, or an escalation action (``action`` set).

    An escalation entry keeps the state (``from_state == to_state``) and names its step in
    ``action`` ("resend", "deputy", "head", "bureau", "head_and_bureau" or "overdue").
    """

    at: datetime
    from_state: TaskState | None  # None for the entry that creates the task
    to_state: TaskState
    by: str | None = None  # person id; None for the system and delivery channels
    note: str | None = None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class DeptTask:
    """A snapshot of one department's task for one incident; changes return a new snapshot."""

    id: str
    incident_id: int
    department: str
    state: TaskState
    created_at: datetime
    ack_due_at: datetime  # escalation starts here if nobody has acknowledged
    complete_due_at: datetime | None = None  # None: no completion deadline
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    escalation_stage: int = 0  # escalation steps taken so far
    overdue_notified: bool = False
    report: str | None = None  # the report given with done
    decline_reason: str | None = None
    history: tuple[Transition, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TaskState(self.state))
        _aware(self.created_at, "created_at")
        _aware(self.ack_due_at, "ack_due_at")
        if self.ack_due_at < self.created_at:
            raise ValueError(f"task {self.id!r}: ack_due_at {self.ack_due_at} is before created_at {self.created_at}")
        if self.complete_due_at is not None:
            _aware(self.complete_due_at, "complete_due_at")
            if self.complete_due_at < self.created_at:
                raise ValueError(f"task {self.id!r}: complete_due_at {self.complete_due_at} is before created_at "
                                 f"{self.created_at}")
        if self.escalation_stage < 0:
            raise ValueError(f"task {self.id!r}: escalation_stage must be >= 0, got {self.escalation_stage}")

    @property
    def final(self) -> bool:
        """True once the task is done, declined or cancelled."""
        return self.state in FINAL


def new_task(id: str, *, incident_id: int, department: str, at: datetime, ack_within_s: float,
             complete_within_s: float | None = None) -> DeptTask:
    """A task just sent at ``at``: acknowledgement due ``ack_within_s`` later, completion likewise."""
    _aware(at, "at")
    if ack_within_s < 0 or (complete_within_s is not None and complete_within_s < 0):
        raise ValueError(f"task {id!r}: deadlines must not be negative (ack {ack_within_s} s, "
                         f"completion {complete_within_s} s)")
    return DeptTask(
        id=id, incident_id=incident_id, department=department, state=TaskState.SENT, created_at=at,
        ack_due_at=at + timedelta(seconds=ack_within_s),
        complete_due_at=None if complete_within_s is None else at + timedelta(seconds=complete_within_s),
        history=(Transition(at, None, TaskState.SENT),),
    )


def transition(task: DeptTask, to: TaskState | str, *, at: datetime, by: str | None = None,
               note: str | None = None) -> DeptTask:
    """The task after moving to ``to`` at ``at``; the same task for a repeated or late no-op change.

    Raises ``TransitionError`` for a change the life does not allow, or one missing its person
    (``by``), report or reason (``note``).
    """
    _aware(at, "at")
    try:
        target = TaskState(to)
    except ValueError:
        raise TransitionError(f"task {task.id!r}: unknown state {to!r}; one of "
                              f"{', '.join(s.value for s in TaskState)}") from None
    cur = task.state
    if cur in FINAL:
        raise TransitionError(f"task {task.id!r} is {cur} (final): it cannot become {target}")
    if cur in _NO_OP.get(target, frozenset()):
        return task
    if target not in _ALLOWED[cur]:
        raise TransitionError(f"task {task.id!r} cannot go from {cur} to {target}")
    if target in _NEEDS_BY and not (by and by.strip()):
        raise TransitionError(f"task {task.id!r}: {target} needs the person (by)")
    if target in _NEEDS_NOTE and not (note and note.strip()):
        raise TransitionError(f"task {task.id!r}: {target} needs {_NEEDS_NOTE[target]} (note)")
    changes: dict[str, Any] = {"state": target,
                               "history": (*task.history, Transition(at, cur, target, by, note))}
    if target is TaskState.ACKNOWLEDGED:
        changes.update(acknowledged_by=by, acknowledged_at=at)
    elif target is TaskState.DONE:
        changes["report"] = note
    elif target is TaskState.DECLINED:
        changes["decline_reason"] = note
    return replace(task, **changes)


# --- escalation ---------------------------------------------------------------------------------

# Who each step reaches, by role: on_duty is the person the task was sent to (the same channels),
# deputy the roster's deputy on duty, head the department head, bureau_duty_chief the emergency
# bureau's duty chief (command.linkage.roster resolves roles to people).
STEP_RECIPIENTS: Mapping[str, tuple[str, ...]] = {
    "resend": ("on_duty",),
    "deputy": ("deputy",),
    "head": ("head",),
    "bureau": ("bureau_duty_chief",),
    "head_and_bureau": ("head", "bureau_duty_chief"),
}
OVERDUE = "overdue"
OVERDUE_RECIPIENTS: tuple[str, ...] = ("head",)
DEFAULT_STEPS: tuple[str, ...] = ("resend", "deputy", "head_and_bureau")
DEFAULT_STEP_INTERVAL_S = 300.0  # project choice: 5 min between steps


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """The escalation steps of a task and their spacing.

    Step ``i`` (0-based) is due at ``ack_due_at + i × step_interval_s``. No steps: the task is
    never chased (the overdue notice still applies).
    """

    steps: tuple[str, ...] = DEFAULT_STEPS
    step_interval_s: float = DEFAULT_STEP_INTERVAL_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        unknown = [s for s in self.steps if s not in STEP_RECIPIENTS]
        if unknown:
            raise EscalationError(f"unknown escalation step(s) {unknown}; one of {', '.join(STEP_RECIPIENTS)}")
        if not self.step_interval_s > 0:
            raise EscalationError(f"step_interval_s must be positive, got {self.step_interval_s}")

    @classmethod
    def from_playbook(cls, entry: Any, *, step_interval_s: float | None = None) -> EscalationPolicy:
        """The policy of a playbook task: a mapping with optional ``escalation`` (list of steps) and
        ``escalation_interval_s``, or a task spec with an ``escalation`` attribute (the versioned
        playbook's ``DeptTaskSpec``). ``step_interval_s`` overrides the entry's spacing; the
        defaults stand where both are absent."""
        if isinstance(entry, Mapping):
            name = entry.get("department")
            steps = entry.get("escalation", DEFAULT_STEPS)
            interval = entry.get("escalation_interval_s", DEFAULT_STEP_INTERVAL_S)
        else:
            name = getattr(entry, "department", None)
            steps = getattr(entry, "escalation", DEFAULT_STEPS)
            interval = DEFAULT_STEP_INTERVAL_S
        if step_interval_s is not None:
            interval = step_interval_s
        if isinstance(steps, str) or not isinstance(steps, (list, tuple)):
            raise EscalationError(f"playbook entry for {name!r}: escalation must be a list of steps, got {steps!r}")
        try:
            interval = float(interval)
        except (TypeError, ValueError):
            raise EscalationError(f"playbook entry for {name!r}: escalation_interval_s must be a number of "
                                  f"seconds, got {interval!r}") from None
        return cls(tuple(steps), interval)

    def due_at(self, task: DeptTask, stage: int) -> datetime:
        """When step ``stage`` (0-based) of ``task`` becomes due."""
        return task.ack_due_at + timedelta(seconds=stage * self.step_interval_s)


@dataclass(frozen=True, slots=True)
class EscalationAction:
    """One escalation step (or the overdue notice) due for a task: whom to reach and since when."""

    task_id: str
    step: str  # a key of STEP_RECIPIENTS, or "overdue"
    recipients: tuple[str, ...]  # roles: on_duty, deputy, head, bureau_duty_chief
    due_at: datetime
    stage: int | None = None  # the step's index in the policy; None for the overdue notice


def due_actions(task: DeptTask, policy: EscalationPolicy, now: datetime) -> list[EscalationAction]:
    """Every escalation action due at ``now`` and not yet taken, oldest first (see the module docstring)."""
    _aware(now, "now")
    out: list[EscalationAction] = []
    if task.state in _WAITING:
        for stage in range(task.escalation_stage, len(policy.steps)):
            due = policy.due_at(task, stage)
            if due > now:
                break
            step = policy.steps[stage]
            out.append(EscalationAction(task.id, step, STEP_RECIPIENTS[step], due, stage))
    elif (task.state in _WORKING and task.complete_due_at is not None and not task.overdue_notified
          and task.complete_due_at <= now):
        out.append(EscalationAction(task.id, OVERDUE, OVERDUE_RECIPIENTS, task.complete_due_at))
    return out


def apply(task: DeptTask, action: EscalationAction, *, at: datetime) -> DeptTask:
    """The task after ``action`` was carried out at ``at``: the step counted and written in history.

    Raises ``EscalationError`` for an action of another task, out of order, already taken, or no
    longer due (acknowledged, or the task ended).
    """
    _aware(at, "at")
    if action.task_id != task.id:
        raise EscalationError(f"action {action.step!r} is for task {action.task_id!r}, not {task.id!r}")
    if task.final:
        raise EscalationError(f"task {task.id!r} is {task.state} (final): no {action.step} any more")
    note = f"{action.step} to {' and '.join(action.recipients)} (due {action.due_at.isoformat()})"
    if action.step == OVERDUE:
        if task.state not in _WORKING:
            raise EscalationError(f"task {task.id!r} is {task.state}: the overdue notice is for an acknowledged "
                                  f"or in-progress task")
        if task.overdue_notified:
            raise EscalationError(f"task {task.id!r}: the overdue notice was already given")
        entry = Transition(at, task.state, task.state, None, note, OVERDUE)
        return replace(task, overdue_notified=True, history=(*task.history, entry))
    if task.state not in _WAITING:
        raise EscalationError(f"task {task.id!r} is {task.state}: escalation stopped at its acknowledgement")
    if action.stage != task.escalation_stage:
        raise EscalationError(f"task {task.id!r}: step {action.step!r} is stage {action.stage}, but the next "
                              f"stage is {task.escalation_stage} (taken twice or out of order)")
    entry = Transition(at, task.state, task.state, None, note, action.step)
    return replace(task, escalation_stage=task.escalation_stage + 1, history=(*task.history, entry))
