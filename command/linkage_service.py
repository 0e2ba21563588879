"""Department linkage in the running service: each incident's department tasks, from the playbook
to done, chased on the service clock, delivered by every channel. (Mixin of ``command.runtime.Service``.)

The decisions are pure and live in ``command.linkage``:

* ``playbook.expand`` / ``new_tasks``: the tasks an incident of a kind and level calls for (a level rise
  adds only the new ones), each with what its department needs from the hazard's geometry
  (``context.linkage_context``: roads to close, hospitals, shelters, townships, ...);
* ``lifecycle``: a task's life (sent → delivered → acknowledged → in progress → done, or declined or
  cancelled) and its escalation (re-sent, the deputy, the head and the emergency bureau's duty chief);
* ``roster``: who is on duty in a department now;
* ``webhooks``: signed deliveries to a department's own system, retried, each attempt in the delivery log.

Channels: the event bus (the console and the department view over the WebSocket, and MQTT
``yingji/events/task.*``), MQTT ``yingji/departments/{dept}/tasks/{task_id}`` (QoS 1, retained: the
task's current state; a department subscribes to ``yingji/departments/{dept}/tasks/#``), and the
department's webhook when its channels name one (``departments.yaml``; the secret from the
environment variable it names).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shapely.geometry.base import BaseGeometry

from .incident_area import hazard_area
from .linkage import lifecycle as life
from .linkage.context import linkage_context, template_context
from .linkage.playbook import PlaybookError, expand, new_tasks
from .linkage.roster import Department, people_for, who_is_on_duty
from .linkage.webhooks import Delivery, WebhookSender, WebhookTarget
from .store import AlreadyDecided
from .store.models import TaskRow

if TYPE_CHECKING:
    from .clock import Clock
    from .district import District
    from .events import EventBus
    from .settings import Settings
    from .store import Store
    from .store.models import IncidentRow

__all__ = ["Linkage", "incident_hazard"]

log = logging.getLogger("command.linkage")

BUREAU = "emergency"  # the department whose duty chief escalations reach
# How far a reported incident without a hazard shape reaches, by kind (the context's circle), m.
DEFAULT_RADIUS_M = {"rainstorm": 3000.0, "flood": 1000.0, "fire": 1000.0, "chemical_leak": 1000.0}


def incident_hazard(row: IncidentRow, district: District) -> BaseGeometry | None:
    """The incident's hazard area (lon/lat), or None: ``incident_area.hazard_area`` on the district's terrain."""
    area, _, _ = hazard_area(row.kind, row.lon, row.lat, row.detail, elevation=district.terrain.elevation_along,
                             epsg=district.utm_epsg)
    return area


def _snapshot(row: TaskRow) -> life.DeptTask:
    history = tuple(life.Transition(datetime.fromisoformat(h["at"]), life.TaskState(h["from"]) if h["from"] else None,
                                    life.TaskState(h["to"]), h.get("by"), h.get("note"), h.get("action"))
                    for h in row.detail.get("history", []))
    return life.DeptTask(str(row.id), row.incident_id, row.department, life.TaskState(row.status), row.created_at,
                         row.ack_due_at, row.complete_due_at, row.acknowledged_by, row.acknowledged_at,
                         row.escalation_stage, row.overdue_notified, row.report, row.decline_reason, history)


def _fields(t: life.DeptTask, detail: dict[str, Any]) -> dict[str, Any]:
    history = [{"at": h.at.isoformat(), "from": str(h.from_state) if h.from_state else None, "to": str(h.to_state),
                "by": h.by, "note": h.note, "action": h.action} for h in t.history]
    return {"status": str(t.state), "acknowledged_by": t.acknowledged_by, "acknowledged_at": t.acknowledged_at,
            "escalation_stage": t.escalation_stage, "overdue_notified": t.overdue_notified, "report": t.report,
            "decline_reason": t.decline_reason, "detail": {**detail, "history": history}}


class Linkage:
    """Mixin of ``command.runtime.Service``: the department tasks of incidents."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        district: District
        settings: Settings
        clock: Clock

        def _mqtt_publish(self, topic: str, data: dict[str, Any], *, retain: bool = False) -> None: ...
        def _spawn(self, coro: Any, *, name: str) -> None: ...
        def cancel_plans(self, incident_id: int, *, by: str, reason: str) -> list[int]: ...

    def _init_linkage(self) -> None:
        """Webhook targets from the departments' channels; deliveries that were pending at the last stop."""
        self.departments: dict[str, Department] = dict(self.district.departments)
        self.webhook_targets: dict[str, WebhookTarget] = {}
        for dept in self.departments.values():
            hook = dept.channels.webhook
            if hook is None:
                continue
            secret = os.environ.get(hook.secret_env or "", "")
            if not secret:
                raise ValueError(f"department {dept.id}: its webhook {hook.url} needs a secret in the environment "
                                 f"variable {hook.secret_env or '(none named: set secret_env)'}")
            self.webhook_targets[dept.id] = WebhookTarget(
                dept.id, str(hook.url), secret, max_attempts=self.settings.webhook_max_attempts,
                backoff_base_s=self.settings.webhook_backoff_s, timeout_s=10.0)
        self.webhooks = WebhookSender(on_attempt=self._on_webhook_attempt, on_done=self._on_webhook_done)
        self._delivery_task: dict[str, int] = {}

    async def _run_webhooks(self) -> None:
        """Deliver webhooks until cancelled; pending ones are kept in the delivery log for the next start."""
        # every pending one, also to a department no longer configured: the sender fails and reports those
        pending = self.store.deliveries(state="pending", limit=1_000_000)
        if pending:
            resumed = [Delivery(d.id, d.target_id, d.event_type, d.body.encode(), d.created_at.timestamp())
                       for d in reversed(pending)]
            for d in pending:
                if d.task_id is not None:
                    self._delivery_task[d.id] = d.task_id
            self.webhooks.resume(resumed, self.webhook_targets)
        try:
            await self.webhooks.run()
        finally:
            for d in await self.webhooks.close():
                self._store_delivery(d)

    # -- tasks from the playbook ---------------------------------------------------------------
    def link_departments(self, row: IncidentRow, *, place: str, place_zh: str) -> list[dict[str, Any]]:
        """Create and deliver the incident's department tasks its kind and level call for and that it
        does not have yet (on opening, and again on every level rise). Returns the new tasks' views."""
        d = self.district
        hazard = incident_hazard(row, d)
        try:
            ctx = linkage_context(hazard, point=(row.lon, row.lat), kind=row.kind, roads=d.roads, bridges=d.bridges,
                                  facilities=d.facilities, townships=d.townships, utm_epsg=d.utm_epsg,
                                  default_radius_m=DEFAULT_RADIUS_M.get(row.kind, 500.0))
            values = template_context(ctx, place=place, place_zh=place_zh, level=row.level,
                                      title=row.detail.get("title") or row.kind,
                                      title_zh=row.detail.get("title_zh") or row.detail.get("title") or row.kind)
            specs = expand(d.playbooks, kind=row.kind, level=row.level, departments=tuple(self.departments),
                           context=values, townships=ctx["townships"], villages=ctx["villages"], linkage=ctx)
        except (PlaybookError, ValueError) as err:
            log.error("incident %d: no department tasks: %s", row.id, err)
            self.bus.publish("linkage.error", {"incident_id": row.id, "error": str(err)})
            return []
        existing = {t.key: t for t in self.store.tasks(incident_id=row.id)}
        now = self.clock.now()
        revived = []
        for s in specs:  # an incident open again (reopened): its cancelled tasks are issued anew
            old = existing.get(s.key)
            if old is not None and old.status == "cancelled" and row.status != "closed":
                revived.append(self._reissue(old, s.ack_within_s, s.complete_within_s, now))
        fields = []
        for s in new_tasks(existing, specs):
            dept = self.departments.get(s.department)
            sent_to = who_is_on_duty(dept, now).on_duty if dept is not None else None
            fields.append({
                "incident_id": row.id, "key": s.key, "department": s.department, "township": s.township,
                "text": s.text, "text_zh": s.text_zh, "status": "sent", "created_at": now, "updated_at": now,
                "ack_due_at": now + timedelta(seconds=s.ack_within_s),
                "complete_due_at": now + timedelta(seconds=s.complete_within_s),
                "detail": {"version": s.version, "kind": s.kind, "from_level": int(s.from_level),
                           "escalation": list(s.escalation), "needs": dict(s.needs), "share": list(s.share),
                           "sent_to": {"id": sent_to.id, "name": sent_to.name, "name_zh": sent_to.name_zh}
                           if sent_to else None,
                           "history": [{"at": now.isoformat(), "from": None, "to": "sent", "by": None,
                                        "note": f"playbook {s.version}", "action": None}]}})
        out = [v for v in revived if v is not None]
        for task in self.store.insert_tasks(fields):
            view = self._deliver(task, "task.created")
            out.append(view)
        return out

    def _reissue(self, row: TaskRow, ack_within_s: float, complete_within_s: float,
                 now: datetime) -> dict[str, Any] | None:
        """A cancelled task starts a new life (its incident is open again): sent now, with fresh deadlines;
        its history keeps the first life."""
        history = [*row.detail.get("history", []), {"at": now.isoformat(), "from": "cancelled", "to": "sent",
                                                    "by": None, "note": "issued again: the incident is open again",
                                                    "action": None}]
        try:
            fresh = self.store.update_task(
                row.id, expect_status="cancelled", status="sent", updated_at=now, acknowledged_by=None,
                acknowledged_at=None, escalation_stage=0, overdue_notified=False, report=None, decline_reason=None,
                ack_due_at=now + timedelta(seconds=ack_within_s),
                complete_due_at=now + timedelta(seconds=complete_within_s), detail={**row.detail, "history": history})
        except AlreadyDecided:
            return None
        return self._deliver(fresh, "task.reissued")

    # -- a task's life ----------------------------------------------------------------------------
    def acknowledge_task(self, task_id: int, *, by: str, op_id: str | None = None) -> dict[str, Any]:
        return self._move(task_id, "acknowledged", by=by, event="task.acknowledged", op_id=op_id)

    def start_task(self, task_id: int, *, by: str, note: str | None = None, op_id: str | None = None) -> dict[str, Any]:
        return self._move(task_id, "in_progress", by=by, note=note, event="task.in_progress", op_id=op_id)

    def complete_task(self, task_id: int, *, by: str, report: str, op_id: str | None = None,
                      photos: tuple[str, ...] = ()) -> dict[str, Any]:
        return self._move(task_id, "done", by=by, note=report, event="task.done", op_id=op_id, photos=photos)

    def decline_task(self, task_id: int, *, by: str, reason: str, op_id: str | None = None) -> dict[str, Any]:
        return self._move(task_id, "declined", by=by, note=reason, event="task.declined", op_id=op_id)

    def task_delivered(self, task_id: int, *, channel: str) -> dict[str, Any]:
        """A channel confirmed the task reached the department (its view opened it, its system took it)."""
        return self._move(task_id, "delivered", note=f"delivered by {channel}", event="task.delivered")

    def cancel_department_tasks(self, incident_id: int, *, by: str, reason: str) -> list[int]:
        """Cancel every open task of the incident (a false alarm, a closed incident); the ids cancelled."""
        out = []
        for row in self.store.tasks(incident_id=incident_id, open_only=True):
            self._move(row.id, "cancelled", by=by, note=reason, event="task.cancelled")
            out.append(row.id)
        return out

    def cancel_incident_work(self, incident_id: int, *, by: str, reason: str) -> None:
        """Stop everything an incident set going: its department tasks and its vehicle plans."""
        self.cancel_department_tasks(incident_id, by=by, reason=reason)
        self.cancel_plans(incident_id, by=by, reason=reason)

    def _move(self, task_id: int, to: str, *, by: str | None = None, note: str | None = None,
              event: str, op_id: str | None = None, photos: tuple[str, ...] = ()) -> dict[str, Any]:
        """Move a task to ``to``. ``op_id``: the client's id of this change (a phone's offline queue may
        send it again after a lost answer): a change already applied is answered again, not repeated."""
        from .runtime import Conflict, Refused

        for _ in range(3):  # compare-and-set: another replica may change it between read and write
            row = self.store.task(task_id)
            if op_id is not None and op_id in row.detail.get("ops", {}):
                return self.task_view(row)  # applied before: the same answer, nothing changes
            before = _snapshot(row)
            try:
                after = life.transition(before, to, at=self.clock.now(), by=by, note=note)
            except life.TransitionError as err:
                raise (Refused if "needs" in str(err) or "requires" in str(err) else Conflict)(str(err)) from None
            if after is before:
                return self.task_view(row)  # repeated or late news: nothing changes
            detail = dict(row.detail)
            if op_id is not None:
                detail["ops"] = {**detail.get("ops", {}), op_id: to}
            if photos:
                detail["photos"] = [*detail.get("photos", []), *photos]
            try:
                row = self.store.update_task(task_id, expect_status=row.status, updated_at=self.clock.now(),
                                             **_fields(after, detail))
            except AlreadyDecided:
                continue
            return self._deliver(row, event)
        raise Conflict(f"task {task_id} keeps changing; try again")

    def _deliver(self, row: TaskRow, event: str) -> dict[str, Any]:
        """Tell everyone the task's new state: the bus, MQTT (retained) and the department's webhook."""
        view = self.task_view(row)
        self.bus.publish(event, view)
        dept = row.department
        known = self.departments.get(dept)
        if known is None or known.channels.mqtt:
            # the task's current state, retained on its own topic; and the stream of changes on the
            # department's topic (DESIGN.md's outside contract)
            self._mqtt_publish(f"yingji/departments/{dept}/tasks/{row.id}", view, retain=True)
            self._mqtt_publish(f"yingji/departments/{dept}/tasks", {"event": event, **view})
        target = self.webhook_targets.get(dept)
        if target is not None:
            delivery = self.webhooks.submit(target, event, {"event": event, "task": view})
            self._delivery_task[delivery.id] = row.id
            self._store_delivery(delivery)
        return view

    # -- deadlines ------------------------------------------------------------------------------------
    async def _linkage_tick(self, now: datetime) -> None:
        """Escalate tasks nobody acknowledged in time, and tell the head of tasks past their completion."""
        for row in self.store.tasks(open_only=True):
            task = _snapshot(row)
            policy = life.EscalationPolicy(tuple(row.detail.get("escalation") or life.DEFAULT_STEPS),
                                           self.settings.escalation_step_s)
            actions = life.due_actions(task, policy, now)
            if not actions:
                continue
            for action in actions:
                try:
                    task = life.apply(task, action, at=now)
                except life.EscalationError as err:
                    log.warning("task %d: %s", row.id, err)
                    break
            try:
                row = self.store.update_task(row.id, expect_status=row.status, updated_at=now,
                                             **_fields(task, row.detail))
            except AlreadyDecided:
                continue  # changed meanwhile: the next tick sees it
            for action in actions:
                self._escalate(row, action, now)

    def _escalate(self, row: TaskRow, action: life.EscalationAction, now: datetime) -> None:
        dept = self.departments.get(row.department)
        bureau = self.departments.get(BUREAU)
        people: list[dict[str, Any]] = []
        for role in action.recipients:
            if dept is None or bureau is None:  # a township office: the bureau's duty chief answers for it
                who = people_for("bureau_duty_chief", bureau, now, bureau=bureau) if bureau is not None else ()
            elif role == "on_duty" and action.step == "resend" and row.detail.get("sent_to"):
                who = ()
                people.append({"role": role, **row.detail["sent_to"]})
            else:
                who = people_for(role, dept, now, bureau=bureau)
            people += [{"role": role, "id": p.id, "name": p.name, "name_zh": p.name_zh, "phone": p.phone}
                       for p in who]
        kind = "task.overdue" if action.step == life.OVERDUE else "task.escalated"
        self.bus.publish(kind, {**self.task_view(row), "step": action.step, "due_at": action.due_at.isoformat(),
                                "recipients": people})
        if action.step == "resend":
            self._deliver(row, "task.resent")

    # -- webhook log ----------------------------------------------------------------------------------
    def _store_delivery(self, d: Delivery) -> None:
        now = self.clock.now()
        self.store.save_delivery(
            id=d.id, target_id=d.target_id, event_type=d.event_type, task_id=self._delivery_task.get(d.id),
            state=d.state, created_at=datetime.fromtimestamp(d.created_at, tz=now.tzinfo), updated_at=now,
            body=d.body.decode(), reason=d.reason,
            attempts=[{"at": datetime.fromtimestamp(a.at, tz=now.tzinfo).isoformat(), "status": a.status,
                       "error": a.error, "duration_ms": a.duration_ms} for a in d.attempts])

    def _on_webhook_attempt(self, d: Delivery, attempt: Any) -> None:
        self._store_delivery(d)

    def _on_webhook_done(self, d: Delivery) -> None:
        self._store_delivery(d)
        task_id = self._delivery_task.pop(d.id, None)
        if d.state == "delivered" and task_id is not None and d.event_type == "task.created":
            try:
                self.task_delivered(task_id, channel=f"webhook {d.target_id}")
            except Exception as err:  # noqa: BLE001 — a late confirmation of a task that moved on
                log.debug("task %s delivery confirmation: %s", task_id, err)
        if d.state == "failed":
            self.bus.publish("webhook.failed", {"delivery": d.id, "target": d.target_id, "event_type": d.event_type,
                                                "task_id": task_id, "reason": d.reason,
                                                "attempts": len(d.attempts)})

    # -- views ------------------------------------------------------------------------------------------
    def task_view(self, t: TaskRow) -> dict[str, Any]:
        dept = self.departments.get(t.department)
        local = None if dept is not None else self._local_places().get(t.department)
        name = dept.name if dept else local[0] if local else t.department
        name_zh = dept.name_zh if dept else local[1] if local else t.department
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {
            "id": t.id, "incident_id": t.incident_id, "key": t.key, "department": t.department,
            "township": t.township, "department_name": name, "department_name_zh": name_zh, "text": t.text,
            "text_zh": t.text_zh, "status": t.status, "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
            "ack_due_at": iso(t.ack_due_at), "complete_due_at": iso(t.complete_due_at),
            "acknowledged_at": iso(t.acknowledged_at), "acknowledged_by": t.acknowledged_by,
            "escalation_stage": t.escalation_stage, "report": t.report, "decline_reason": t.decline_reason,
            "version": t.detail.get("version"), "needs": t.detail.get("needs", {}), "share": t.detail.get("share", []),
            "sent_to": t.detail.get("sent_to"), "history": t.detail.get("history", []),
            "crew": t.crew, "parent_id": t.detail.get("parent_id"), "target": t.detail.get("target"),
            "photos": [f"/api/photos/{p}" for p in t.detail.get("photos", [])],
        }

    # -- crews' tasks -------------------------------------------------------------------------------
    def create_crew_task(self, crew_id: str, *, by: str, incident_id: int, text: str, text_zh: str | None,
                         lon: float | None, lat: float | None, parent_id: int | None = None) -> dict[str, Any]:
        """A task for one crew (from a dispatcher, or a department task handed to one of its crews):
        delivered like a department task (its department sees it too) and to the crew's phones."""
        from .runtime import Refused

        crew = self.crew_specs.get(crew_id)  # type: ignore[attr-defined]
        if crew is None:
            from .store import NotFound

            raise NotFound(f"no crew or unit {crew_id!r}")
        incident = self.store.incident(incident_id)  # NotFound for an unknown incident
        if incident.status == "closed":
            raise Refused(f"incident {incident_id} is closed")
        target = None
        if lon is not None and lat is not None:
            w, s, e, n = self.district.bbox
            if not (w - 0.5 <= lon <= e + 0.5 and s - 0.5 <= lat <= n + 0.5):
                raise Refused(f"the task's place ({lon}, {lat}) is far outside the district")
            target = {"lon": lon, "lat": lat}
        now = self.clock.now()
        n = len(self.store.tasks(incident_id=incident_id, crew=crew_id)) + 1
        history = [{"at": now.isoformat(), "from": None, "to": "sent", "by": by,
                    "note": f"from task {parent_id}" if parent_id else "from the dispatcher", "action": None}]
        [row] = self.store.insert_tasks([{
            "incident_id": incident_id, "key": f"crew:{crew_id}:{n}:{now.timestamp():.0f}",
            "department": crew.department, "township": False, "crew": crew_id, "text": text,
            "text_zh": text_zh or text, "status": "sent",
            "created_at": now, "updated_at": now, "ack_due_at": now + timedelta(seconds=self.settings.crew_ack_s),
            "complete_due_at": None,
            "detail": {"kind": "crew", "target": target, "parent_id": parent_id, "needs": {}, "share": [],
                       "sent_to": None, "history": history}}])
        return self._deliver(row, "task.created")

    def assign_task_to_crew(self, task_id: int, *, crew_id: str, by: str, note: str | None = None) -> dict[str, Any]:
        """Hand a department task (or part of it) to one of the department's crews: a crew task that
        points back to it, at the incident's place unless the task needs say otherwise."""
        from .runtime import Refused

        parent = self.store.task(task_id)
        if parent.crew is not None:
            raise Refused(f"task {task_id} is already a crew's task")
        if parent.status in ("done", "declined", "cancelled"):
            raise Refused(f"task {task_id} is {parent.status}")
        crew = self.crew_specs.get(crew_id)  # type: ignore[attr-defined]
        if crew is not None and crew.department != parent.department:
            raise Refused(f"crew {crew_id} belongs to {crew.department}, not to {parent.department}")
        incident = self.store.incident(parent.incident_id)
        extra = f" — {note}" if note else ""
        return self.create_crew_task(crew_id, by=by, incident_id=parent.incident_id, text=parent.text + extra,
                                     text_zh=parent.text_zh + extra, lon=incident.lon, lat=incident.lat,
                                     parent_id=task_id)

    def _local_places(self) -> dict[str, tuple[str, str]]:
        """Names of the local recipients (townships, villages) by id."""
        out = {t.id: (t.name, t.name_zh) for t in self.district.townships}
        out.update({f.id: (f.name, f.name_zh) for f in self.district.facilities if f.kind == "village"})
        return out

    def warnings_view(self, incident_id: int) -> dict[str, Any]:
        """The incident's warnings to townships and villages and who answered (叫应): received = answered."""
        rows = [self.task_view(t) for t in self.store.tasks(incident_id=incident_id) if t.township]
        answered = {"acknowledged", "in_progress", "done"}
        out = [{"task_id": v["id"], "recipient": v["department"], "name": v["department_name"],
                "name_zh": v["department_name_zh"], "status": v["status"],
                "received": v["status"] in answered, "answered_by": v["acknowledged_by"],
                "answered_at": v["acknowledged_at"], "ack_due_at": v["ack_due_at"],
                "escalation_stage": v["escalation_stage"]} for v in rows]
        return {"incident_id": incident_id, "warnings": out, "total": len(out),
                "received": sum(w["received"] for w in out),
                "note": "a warning counts as received only when someone there answers (叫应)"}

    def departments_view(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        out = []
        for d in self.departments.values():
            duty = who_is_on_duty(d, now)
            person = lambda p: {"id": p.id, "name": p.name, "name_zh": p.name_zh, "phone": p.phone}  # noqa: E731
            out.append({"id": d.id, "name": d.name, "name_zh": d.name_zh, "head": person(d.head),
                        "on_duty": person(duty.on_duty), "deputy": person(duty.deputy), "roster_gap": duty.fallback,
                        "channels": {"mqtt": d.channels.mqtt, "webhook": d.id in self.webhook_targets}})
        return out

    def delivery_view(self, d: Any) -> dict[str, Any]:
        return {"id": d.id, "target": d.target_id, "event_type": d.event_type, "task_id": d.task_id, "state": d.state,
                "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat(), "reason": d.reason,
                "attempts": d.attempts}
