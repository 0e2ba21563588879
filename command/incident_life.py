"""The incident's human life: reported incidents, acknowledgement, confirmation, false alarms,
closing and reopening, merging, the declared response level. (Mixin of ``command.runtime.Service``.)

Most incidents start with a call (the 110 / 119 / 120 / 12345 hotlines), a field crew or a village
hazard monitor, not a sensor. A dispatcher opens them on the map (a point, or a place of the
district's gazetteer), a crew reports one, a hotline or CAD system sends one through the signed
intake webhook (``check_intake``: the scheme of ``command.linkage.webhooks``). A reported incident
is an ``IncidentRow`` like any other (no sensor): it gets its department tasks from the playbook
and its vehicle tasks from ``command.dispatch.tasks``; it stays "reported" until someone confirms it.

Every action a person takes on an incident (acknowledge, confirm, false alarm, close, reopen,
merge, declare a response) is checked against the incident's state inside one transaction (an
illegal one is a ``Conflict`` naming the state), recorded in the incident's ``actions`` with who,
when and why, and published as an event.

A red incident nobody has acknowledged sounds an alarm in the console (``incident.alarm``, at
once and every ``red_alarm_repeat_s`` of service time) and, after ``red_ack_escalate_s``, is
escalated once to the duty chief (``incident.escalated``; recorded in the incident, so a restart
does not escalate it again). Only the service clock counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .clock import SystemClock
from .gazetteer import Gazetteer, GazetteerError
from .incidents import Status, transition
from .linkage.playbook import response_advice
from .linkage.webhooks import SignatureError, WebhookConfigError, verify
from .risk.rules import Level
from .store.models import IncidentRow

if TYPE_CHECKING:
    from .clock import Clock
    from .district import District
    from .events import EventBus
    from .settings import Settings
    from .store import Store
    from .store.models import PlanRow, TaskRow

__all__ = ["KINDS", "RESPONSE_LEVELS", "SOURCES", "IncidentLife", "Report"]

log = logging.getLogger("command.incident_life")

KINDS: Mapping[str, str] = {"flood": "洪水", "rainstorm": "暴雨", "landslide": "滑坡", "fire": "火灾",
                            "chemical_leak": "危化品泄漏", "other": "其他"}
# Who reports: the national hotlines (110 police, 119 fire, 120 medical, 12345 citizen service),
# the geohazard mass-monitoring network's village monitors (群测群防员), crews, CAD systems.
SOURCES: Mapping[str, tuple[str, str]] = {
    "dispatcher": ("a dispatcher", "调度员"),
    "crew": ("a field crew", "现场队伍"),
    "hotline_110": ("the 110 police hotline", "110报警电话"),
    "hotline_119": ("the 119 fire hotline", "119火警电话"),
    "hotline_120": ("the 120 medical emergency hotline", "120急救电话"),
    "hotline_12345": ("the 12345 citizen service hotline", "12345政务服务便民热线"),
    "village_monitor": ("a village hazard monitor", "群测群防监测员"),
    "cad": ("a CAD system", "接处警系统"),
}
COLOURS: Mapping[str, Level] = {"blue": Level.BLUE, "yellow": Level.YELLOW, "orange": Level.ORANGE, "red": Level.RED}
# Emergency response levels IV (lowest) .. I (highest), written with Roman numerals in Chinese plans.
RESPONSE_LEVELS: Mapping[str, str] = {"IV": "Ⅳ级", "III": "Ⅲ级", "II": "Ⅱ级", "I": "Ⅰ级"}
NEAR_KINDS = frozenset({"town", "village", "township"})  # what a point on the map is named after
NEAR_WITHIN_M = 5_000.0
ALARM_REPEAT_S = 60.0  # defaults of the settings red_alarm_repeat_s and red_ack_escalate_s
ESCALATE_AFTER_S = 300.0
INTAKE_TOLERANCE_S = 300.0  # a signed intake request older (or newer) than this is refused as a replay
BUREAU = "emergency"  # the emergency management bureau's department id (command.linkage.playbook)
_CLOSED_KEYS = ("closed_reason", "closed_reason_zh", "closed_at", "closed_by", "closed_note", "merged_into")


@dataclass(frozen=True, slots=True)
class Report:
    """An incident a person reports: what, how bad, where (a point or a gazetteer place), who says so."""

    by: str  # who enters it: the dispatcher, the crew, the hotline operator
    kind: str  # KINDS
    level: str  # blue | yellow | orange | red
    title: str
    source: str  # SOURCES
    title_zh: str | None = None
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    place: str | None = None  # a gazetteer id, instead of lon/lat
    reporter_name: str | None = None
    reporter_phone: str | None = None
    external_id: str | None = None  # the caller's case number (intake): a repeat returns the same incident


def _wall_s() -> float:
    """Unix seconds of the wall clock: a signed request's timestamp is the sender's wall time."""
    return SystemClock().now().timestamp()


def _masked(phone: str | None) -> str | None:
    """A phone number with all but its last four digits hidden: the views are read without a token."""
    if not phone:
        return phone
    digits = sum(c.isdigit() for c in phone)
    seen = 0
    out = []
    for c in phone:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)


def _red_since(row: IncidentRow) -> datetime:
    """When the incident last became red (the start of the last run of red in its level history)."""
    since: str | None = None
    for entry in row.detail.get("levels") or []:
        if entry.get("level") == "red":
            since = since or entry.get("time")
        else:
            since = None
    return datetime.fromisoformat(since) if since else row.opened_at


def advice_for(kind: str, level: Level) -> tuple[str, str, str]:
    """The advised response level (``"IV"``..``"I"``, or ``""``) with its reason, en and zh.

    The national plans' rule (``command.linkage.playbook.response_advice``) for the kinds it knows;
    the same rule, the response following the warning level, for the others.
    """
    try:
        return response_advice(kind, level)
    except ValueError:
        if level == Level.NONE:
            return ("", "No warning level: no emergency response advised.", "未达预警级别：不建议启动应急响应。")
        return (level.response,
                f"{level.colour.capitalize()} warning: level {level.response} emergency response advised (the "
                f"response follows the warning level); declaring it is the commander's decision.",
                f"{level.colour_zh}预警：建议启动{level.response_zh}应急响应（响应级别与预警级别对应）；是否启动由指挥长决定。")


class IncidentLife:
    """Mixin of ``command.runtime.Service``."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        clock: Clock
        district: District
        settings: Settings
        metrics: Any
        _open: dict[tuple[str, str], int]
        _layers_dirty: bool

        def incident_view(self, row: IncidentRow, *, evidence: bool = False) -> dict[str, Any]: ...
        def verify_incident(self, incident_id: int, *, by: str, how: str, note: str = "") -> dict[str, Any]: ...
        def link_departments(self, row: IncidentRow, *, place: str, place_zh: str) -> Any: ...
        def cancel_incident_work(self, incident_id: int, *, by: str, reason: str) -> None: ...
        def _merge(self, keep: IncidentRow, gone: IncidentRow) -> None: ...
        def yield_patrols(self) -> None: ...
        def auto_recon(self, incident_id: int) -> list[dict[str, Any]]: ...
        def task_view(self, t: TaskRow) -> dict[str, Any]: ...
        def plan_view(self, row: PlanRow) -> dict[str, Any]: ...

    def _init_incident_life(self) -> None:
        """Called once from ``Service.__init__`` (after the store, bus, clock and district exist)."""
        self.gazetteer = Gazetteer.from_district(self.district)
        self._alarmed_at: dict[int, datetime] = {}  # unacknowledged red incident → its last alarm (service time)

    # -- reported incidents ---------------------------------------------------------------------
    def report_incident(self, report: Report) -> tuple[dict[str, Any], bool]:
        """Open an incident a person reports; (its view, True) — or, for an ``external_id`` already
        taken in from the same source, (that incident's view, False) and nothing else happens."""
        from .runtime import Refused

        if report.kind not in KINDS:
            raise Refused(f"unknown incident kind {report.kind!r}; one of {', '.join(KINDS)}")
        if report.level not in COLOURS:
            raise Refused(f"unknown level {report.level!r}; one of {', '.join(COLOURS)}")
        if report.source not in SOURCES:
            raise Refused(f"unknown source {report.source!r}; one of {', '.join(SOURCES)}")
        if report.external_id is not None:
            existing = self._intake_incident(report.source, report.external_id)
            if existing is not None:
                return self._life_incident_view(existing), False
        lon, lat, place = self._report_location(report)
        level = COLOURS[report.level]
        label, label_zh = SOURCES[report.source]
        title_zh = report.title_zh or report.title
        what, what_zh = report.description or report.title, report.description or title_zh
        now = self.clock.now()
        stamp = now.isoformat()
        reporter = ({"name": report.reporter_name, "phone": report.reporter_phone}
                    if report.reporter_name or report.reporter_phone else None)
        detail: dict[str, Any] = {
            "title": report.title, "title_zh": title_zh,
            "reason": f"Reported by {label} ({report.by}): {what}",
            "reason_zh": f"{label_zh}报告（{report.by}）：{what_zh}",
            "description": report.description, "source": report.source, "reported_by": report.by,
            "reporter": reporter, "place": place, "external_id": report.external_id,
            "levels": [{"level": level.colour, "time": stamp, "by": report.by, "source": report.source}],
            "verification": {"state": "reported", "time": stamp,
                             "reason": f"reported by {label}, not confirmed yet: a dispatcher, a crew or a drone "
                                       f"should confirm it",
                             "reason_zh": f"{label_zh}报告，尚未核实：需调度员、现场队伍或无人机确认"},
            "members": {}, "evidence": [],
            "actions": [{"action": "reported", "by": report.by, "time": stamp, "source": report.source,
                         "reason": what}],
        }
        row = self.store.insert_incident(
            kind=report.kind, sensor_id=None, level=int(level), status=Status.OPEN, lon=lon, lat=lat,
            on_water=self.district.on_water(lon, lat), opened_at=now, updated_at=now, detail=detail)
        self.metrics.incidents_opened += 1
        log.info("incident %d reported by %s (%s): %s, %s", row.id, report.by, report.source, report.title,
                 level.colour)
        self.bus.publish("incident.opened", self._life_incident_view(row))
        self.link_departments(row, place=place["name"], place_zh=place["name_zh"])
        if level >= Level.ORANGE:
            self.yield_patrols()
        if level == Level.RED:
            self._sound_alarms(now)
            self.auto_recon(row.id)
        return self._life_incident_view(self.store.incident(row.id)), True

    def _report_location(self, report: Report) -> tuple[float, float, dict[str, Any]]:
        """(lon, lat, the place as the tasks name it) of a report; Refused outside the district."""
        from .runtime import Refused

        if report.place is not None:
            if report.lon is not None or report.lat is not None:
                raise Refused("give the location either as lon and lat or as a gazetteer place, not both")
            try:
                p = self.gazetteer.get(report.place)
            except GazetteerError as err:
                raise Refused(str(err)) from None
            return p.lon, p.lat, {"id": p.id, "kind": p.kind, "name": p.name, "name_zh": p.name_zh}
        if report.lon is None or report.lat is None:
            raise Refused("the location needs both lon and lat (or a gazetteer place)")
        lon, lat = float(report.lon), float(report.lat)
        if not self.district.in_district(lon, lat):
            raise Refused(f"the point ({lon:.5f}, {lat:.5f}) lies outside {self.district.name}: an incident "
                          f"can only be opened inside the district")
        at = f"{lon:.5f}, {lat:.5f}"
        near = self.gazetteer.nearest(lon, lat, kinds=NEAR_KINDS, within_m=NEAR_WITHIN_M)
        if near is None:
            return lon, lat, {"id": None, "name": at, "name_zh": at}
        p, d_m = near
        return lon, lat, {"id": None, "near": p.id, "name": f"{at} (near {p.name}, {d_m / 1000:.1f} km)",
                          "name_zh": f"{at}（{p.name_zh}附近 {d_m / 1000:.1f} 公里）"}

    def _intake_incident(self, source: str, external_id: str) -> IncidentRow | None:
        """The incident already taken in for this case number from this source, if any."""
        q = (select(IncidentRow)
             .where(IncidentRow.detail["external_id"].as_string() == external_id,
                    IncidentRow.detail["source"].as_string() == source)
             .order_by(IncidentRow.id).limit(1))
        with self.store.session() as s:
            return s.scalars(q).first()

    def check_intake(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Authenticate an intake request by its signature (``command.linkage.webhooks.verify``).

        Unavailable without a configured secret (``intake_secret``); ``SignatureError`` (with its
        reason: missing_header, malformed, bad_signature, stale, future) when it does not verify.
        """
        from .runtime import Unavailable

        secret = getattr(self.settings, "intake_secret", None)
        if secret is not None and hasattr(secret, "get_secret_value"):
            secret = secret.get_secret_value()
        if not secret:
            raise Unavailable("the incident intake is off: no intake secret is configured (YINGJI_INTAKE_SECRET)")
        try:
            verify(secret, body, headers, now=_wall_s(), tolerance_s=INTAKE_TOLERANCE_S)
        except WebhookConfigError as err:
            raise Unavailable(f"the incident intake is off: its secret is unusable ({err})") from None
        except SignatureError as err:
            log.warning("intake request refused: %s (%s)", err.reason, err)
            raise

    def reporter_of(self, incident_id: int) -> dict[str, Any]:
        """Who reported the incident, with the full phone number (the views mask it)."""
        row = self.store.incident(incident_id)
        return {"incident_id": row.id, "source": row.detail.get("source"), "reported_by": row.detail.get("reported_by"),
                "reporter": row.detail.get("reporter"), "external_id": row.detail.get("external_id")}

    # -- a person's actions ---------------------------------------------------------------------
    def _life_act(self, incident_id: int, change: Callable[[IncidentRow, dict[str, Any], str], dict[str, Any] | None]
             ) -> tuple[IncidentRow, bool]:
        """Apply one action in one transaction, the row locked (FOR UPDATE where the database has it).

        ``change(row, detail, now_iso)`` checks the state (raises Conflict), edits ``detail`` (a copy)
        and returns the other fields to set, or None for "nothing to do" (an idempotent repeat).
        """
        from .store import NotFound

        now = self.clock.now()
        with self.store.session() as s, s.begin():
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            detail = dict(row.detail)
            detail["actions"] = list(detail.get("actions") or [])
            fields = change(row, detail, now.isoformat())
            if fields is None:
                return row, False
            row.detail = detail  # a new dict: the JSON column sees the change
            row.updated_at = now
            for k, v in fields.items():
                setattr(row, k, v)
        return row, True

    def _publish_life_action(self, kind: str, row: IncidentRow) -> dict[str, Any]:
        view = self._life_incident_view(row)
        actions = row.detail.get("actions") or []
        self.bus.publish(kind, {**view, "action": actions[-1] if actions else None})
        return view

    def acknowledge_incident(self, incident_id: int, *, by: str) -> dict[str, Any]:
        """A dispatcher has seen the incident (stops its alarm); a repeat keeps the first who and when."""

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            _not_closed(row, "acknowledge")
            if detail.get("acknowledged"):
                return None
            detail["acknowledged"] = {"by": by, "at": now}
            detail["actions"].append({"action": "acknowledged", "by": by, "time": now, "reason": "seen"})
            return {}

        row, changed = self._life_act(incident_id, change)
        self._alarmed_at.pop(row.id, None)
        if not changed:
            return self._life_incident_view(row)
        log.info("incident %d acknowledged by %s", row.id, by)
        return self._publish_life_action("incident.acknowledged", row)

    def confirm_incident(self, incident_id: int, *, by: str, how: str, note: str = "") -> dict[str, Any]:
        """The phenomenon is real: recorded as an action, then confirmed as ``POST .../verify`` does."""

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            _not_closed(row, "confirm")
            detail["actions"].append({"action": "confirmed", "by": by, "time": now, "how": how,
                                      "reason": note or f"confirmed ({how})"})
            return {}

        self._life_act(incident_id, change)
        self.verify_incident(incident_id, by=by, how=how, note=note)  # publishes incident.verified
        return self._life_incident_view(self.store.incident(incident_id))

    def mark_false_alarm(self, incident_id: int, *, by: str, reason: str) -> dict[str, Any]:
        """Not real: level none, closed as a false alarm (the record kept), its tasks and plans cancelled."""

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            status = _closing(row, "mark as a false alarm")
            detail["levels"] = [*(detail.get("levels") or []), {"level": "none", "time": now, "by": by,
                                                                "false_alarm": True}]
            detail["actions"].append({"action": "false_alarm", "by": by, "time": now, "reason": reason,
                                      "level_before": Level(row.level).colour,
                                      "verification_before": detail.get("verification")})
            detail["verification"] = {"state": "false_alarm", "by": by, "reason": f"false alarm: {reason}",
                                      "time": now}
            detail.update(closed_reason="false alarm", closed_reason_zh="误报", closed_at=now, closed_by=by,
                          closed_note=reason)
            return {"status": status, "level": int(Level.NONE)}

        row, _ = self._life_act(incident_id, change)
        self._forget_open(row)
        log.info("incident %d is a false alarm (%s): %s", row.id, by, reason)
        self.cancel_incident_work(row.id, by=by, reason=f"false alarm: {reason}")
        return self._publish_life_action("incident.false_alarm", self.store.incident(row.id))

    def close_incident(self, incident_id: int, *, by: str, reason: str) -> dict[str, Any]:
        """A dispatcher closes the incident, with the reason."""
        from .runtime import Refused

        if not reason.strip():
            raise Refused("closing an incident needs a reason")

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            status = _closing(row, "close")
            detail["actions"].append({"action": "closed", "by": by, "time": now, "reason": reason})
            detail.update(closed_reason=reason, closed_reason_zh=reason, closed_at=now, closed_by=by,
                          closed_note=reason)
            return {"status": status}

        row, _ = self._life_act(incident_id, change)
        self._forget_open(row)
        log.info("incident %d closed by %s: %s", row.id, by, reason)
        # a closed incident sets nothing going any more: open department tasks and vehicle plans end too
        self.cancel_incident_work(row.id, by=by, reason=f"incident closed: {reason}")
        return self._publish_life_action("incident.closed", self.store.incident(row.id))

    def reopen_incident(self, incident_id: int, *, by: str, reason: str) -> dict[str, Any]:
        """A closed incident is open again (a false alarm gets back its level and verification)."""

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            if row.status != Status.CLOSED:
                raise _conflict(f"incident {row.id} is {row.status}, not closed: only a closed incident can be "
                                f"reopened")
            fields: dict[str, Any] = {"status": transition(row.status, Status.OPEN)}
            record: dict[str, Any] = {"action": "reopened", "by": by, "time": now, "reason": reason,
                                      "was": {k: detail.get(k) for k in _CLOSED_KEYS if detail.get(k) is not None}}
            last = next((a for a in reversed(detail["actions"]) if a.get("action") in ("false_alarm", "closed",
                                                                                      "merged")), None)
            if detail.get("closed_reason") == "false alarm" and last is not None and last["action"] == "false_alarm":
                level = COLOURS.get(last.get("level_before", ""), Level.NONE)
                fields["level"] = int(level)
                detail["levels"] = [*(detail.get("levels") or []), {"level": level.colour, "time": now, "by": by,
                                                                    "reopened": True}]
                detail["verification"] = last.get("verification_before") or detail.get("verification")
            for k in (*_CLOSED_KEYS, "quiet_since"):
                detail.pop(k, None)
            detail["actions"].append(record)
            return fields

        row, _ = self._life_act(incident_id, change)
        self._remember_open(row)
        log.info("incident %d reopened by %s: %s", row.id, by, reason)
        view = self._publish_life_action("incident.reopened", row)
        if row.level > Level.NONE:  # its department tasks again: the cancelled ones re-issued, any new ones sent
            place, place_zh = self._place_of(row)
            self.link_departments(row, place=place, place_zh=place_zh)
        if row.level >= Level.RED:
            self._sound_alarms(self.clock.now())
        return view

    def merge_incident(self, incident_id: int, *, into: int, by: str, reason: str = "") -> dict[str, Any]:
        """Fold incident ``incident_id`` into ``into`` (one phenomenon) with the service's merge: its sensors
        join the kept one, it is closed as merged into it; its department tasks and vehicle plans stay
        recorded under it and are shown with the kept incident (``life_view``'s ``merged_from``)."""
        from .runtime import Conflict

        if incident_id == into:
            raise Conflict(f"incident {incident_id} cannot be merged into itself")
        gone, keep = self.store.incident(incident_id), self.store.incident(into)  # NotFound → 404
        if keep.status == Status.CLOSED:
            raise Conflict(f"incident {into} is closed: reopen it first, or merge into an open incident")
        if gone.status == Status.CLOSED:
            raise Conflict(f"incident {incident_id} is already closed ({gone.detail.get('closed_reason', 'closed')})")
        if gone.kind != keep.kind and gone.detail.get("members"):
            raise Conflict(f"incident {incident_id} is a {gone.kind} incident followed by sensors: it merges only "
                           f"into a {gone.kind} incident, not a {keep.kind} one")
        why = reason or f"the same phenomenon as incident #{into}"
        keep_verification = keep.detail.get("verification") or {}

        def mark_gone(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            _closing(row, "merge")
            detail["actions"].append({"action": "merged", "by": by, "time": now, "into": into, "reason": why})
            detail["closed_by"] = by
            return {}

        def mark_keep(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            _not_closed(row, "merge into")
            detail["actions"].append({"action": "merged_from", "by": by, "time": now, "from": incident_id,
                                      "reason": why})
            return {}

        gone, _ = self._life_act(incident_id, mark_gone)
        keep, _ = self._life_act(into, mark_keep)
        self._merge(keep, gone)  # members, evidence, level; gone closed as merged; incident.updated/.resolved
        keep = self.store.incident(into)
        after = keep.detail.get("verification") or {}
        if keep_verification.get("state") == "reported" and after.get("state") == "unverified":
            # the sensor rule has nothing to say about a person's report: it stays reported
            keep = self.store.update_incident(into, detail={**keep.detail, "verification": keep_verification})
        log.info("incident %d merged into %d by %s", incident_id, into, by)
        self.bus.publish("incident.merged", {"incident_id": incident_id, "into": into, "by": by, "reason": why,
                                             "time": self.clock.now().isoformat()})
        if keep.level >= Level.RED:
            self._sound_alarms(self.clock.now())
        return self._life_incident_view(keep)

    def declare_response(self, incident_id: int, *, by: str, level: str, reason: str) -> dict[str, Any]:
        """The commander declares the emergency response level (IV..I), recorded with the advice it had."""
        from .runtime import Refused

        if level not in RESPONSE_LEVELS:
            raise Refused(f"unknown response level {level!r}; one of {', '.join(RESPONSE_LEVELS)}")

        def change(row: IncidentRow, detail: dict[str, Any], now: str) -> dict[str, Any] | None:
            _not_closed(row, "declare a response for")
            advised, why, why_zh = advice_for(row.kind, Level(row.level))
            declared = {"level": level, "level_zh": RESPONSE_LEVELS[level], "by": by, "at": now, "reason": reason,
                        "advice": {"level": advised, "reason": why, "reason_zh": why_zh},
                        "follows_advice": level == advised}
            previous = detail.get("declared_response")
            detail["declared_response"] = declared
            detail["actions"].append({"action": "response_declared", "by": by, "time": now, "reason": reason,
                                      "level": level, "previous": previous["level"] if previous else None,
                                      "advised": advised})
            return {}

        row, _ = self._life_act(incident_id, change)
        log.info("incident %d: level %s response declared by %s", row.id, level, by)
        return self._publish_life_action("incident.response_declared", row)

    # -- the open-incident index of the sensor path ------------------------------------------------
    def _forget_open(self, row: IncidentRow) -> None:
        """A closed incident no longer takes its sensors' readings (the next crossing opens a new one)."""
        from .runtime import HAZARD_LAYER_KINDS

        for key in [k for k, v in self._open.items() if v == row.id]:
            del self._open[key]
        self._layers_dirty = self._layers_dirty or row.kind in HAZARD_LAYER_KINDS

    def _remember_open(self, row: IncidentRow) -> None:
        """A reopened incident takes its sensors' readings again (those no other open incident holds)."""
        from .runtime import HAZARD_LAYER_KINDS

        members = row.detail.get("members") or {}
        for sid in {m.get("sensor_id", k) for k, m in members.items()} | ({row.sensor_id} if row.sensor_id else set()):
            self._open.setdefault((row.kind, sid), row.id)
        self._layers_dirty = self._layers_dirty or row.kind in HAZARD_LAYER_KINDS

    # -- the red alarm ------------------------------------------------------------------------------
    async def _incident_life_tick(self, now: datetime) -> None:
        """Called about every second of service time by the service's linkage loop."""
        self._sound_alarms(now)

    def _sound_alarms(self, now: datetime) -> None:
        """Every red incident nobody acknowledged: an alarm at once and every ``red_alarm_repeat_s``;
        escalated once to the duty chief after ``red_ack_escalate_s`` unacknowledged."""
        repeat = timedelta(seconds=float(getattr(self.settings, "red_alarm_repeat_s", ALARM_REPEAT_S)))
        escalate = timedelta(seconds=float(getattr(self.settings, "red_ack_escalate_s", ESCALATE_AFTER_S)))
        q = select(IncidentRow).where(IncidentRow.status != Status.CLOSED.value, IncidentRow.level >= int(Level.RED))
        with self.store.session() as s:
            rows = list(s.scalars(q).all())
        sounding = set()
        for row in rows:
            if row.detail.get("acknowledged"):
                continue
            sounding.add(row.id)
            since = min(_red_since(row), now)
            waited_s = (now - since).total_seconds()
            last = self._alarmed_at.get(row.id)
            if last is None or now - last >= repeat:
                self._alarmed_at[row.id] = now
                self.bus.publish("incident.alarm", {
                    "incident_id": row.id, "title": row.detail.get("title"), "title_zh": row.detail.get("title_zh"),
                    "kind": row.kind, "level": "red", "red_since": since.isoformat(),
                    "unacknowledged_s": round(waited_s, 1), "repeat_s": repeat.total_seconds(), "sound": "red_alarm",
                    "time": now.isoformat()})
            if not row.detail.get("escalated") and now - since >= escalate:
                self._escalate_red(row.id, now, since, escalate)
        for incident_id in set(self._alarmed_at) - sounding:
            del self._alarmed_at[incident_id]

    def _escalate_red(self, incident_id: int, now: datetime, since: datetime, after: timedelta) -> None:
        """Escalate once: compare-and-set in the incident's record, so neither a restart nor a second
        replica repeats it."""
        chief = self.duty_chief()
        waited_s = round((now - since).total_seconds(), 1)
        with self.store.session() as s, s.begin():
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if (row is None or row.status == Status.CLOSED or row.detail.get("escalated")
                    or row.detail.get("acknowledged")):
                return
            record = {"to": chief, "at": now.isoformat(), "unacknowledged_s": waited_s,
                      "after_s": after.total_seconds()}
            reason = f"red for {waited_s:.0f} s without acknowledgement (limit {after.total_seconds():.0f} s)"
            row.detail = {**row.detail, "escalated": record,
                          "actions": [*(row.detail.get("actions") or []),
                                      {"action": "escalated", "by": "system", "time": now.isoformat(),
                                       "to": chief["name"], "reason": reason}]}
            title, title_zh = row.detail.get("title"), row.detail.get("title_zh")
        log.warning("incident %d escalated to %s: %s", incident_id, chief["name"], reason)
        self.bus.publish("incident.escalated", {"incident_id": incident_id, "title": title, "title_zh": title_zh,
                                                "level": "red", "red_since": since.isoformat(), "to": chief,
                                                "reason": reason, "time": now.isoformat()})

    def duty_chief(self) -> dict[str, Any]:
        """Whom an unacknowledged red incident is escalated to: the emergency bureau's head, when the
        district's departments name one; else the duty chief by role."""
        depts = self.district.departments
        dept = depts.get(BUREAU) if isinstance(depts, Mapping) else next((d for d in depts if d.id == BUREAU), None)
        head = getattr(dept, "head", None)
        if head is None:
            return {"role": "duty chief", "role_zh": "值班领导", "department": BUREAU if dept else None,
                    "id": None, "name": "duty chief", "name_zh": "值班领导", "phone": None}
        return {"role": "head of the emergency management bureau", "role_zh": "应急管理局局长", "department": BUREAU,
                "id": head.id, "name": head.name, "name_zh": head.name_zh or head.name,
                "phone": getattr(head, "phone", None) or None}

    # -- views --------------------------------------------------------------------------------------
    def life_view(self, row: IncidentRow) -> dict[str, Any]:
        """The incident's human life for its view: who reported and acknowledged it, the response advised
        and declared, the alarm, how it was closed, the incidents merged into it, and every action."""
        d = row.detail
        level = Level(row.level)
        advised, why, why_zh = advice_for(row.kind, level)
        reporter = d.get("reporter")
        closed = None
        if row.status == Status.CLOSED:
            closed = {"reason": d.get("closed_reason"), "reason_zh": d.get("closed_reason_zh"),
                      "at": d.get("closed_at"), "by": d.get("closed_by"), "note": d.get("closed_note")}
        merged_from = []
        for m in d.get("merged") or []:
            other = m.get("from")
            if other is None:
                continue
            merged_from.append({"id": other, "time": m.get("time"),
                                "tasks": [self.task_view(t) for t in self.store.tasks(incident_id=other)],
                                "plans": [{"id": p.id, "task_key": p.task_key, "vehicle": p.vehicle, "state": p.state}
                                          for p in self.store.plans(incident_id=other)]})
        return {
            "source": d.get("source") or ("sensor" if row.sensor_id or d.get("members") else None),
            "reported_by": d.get("reported_by"),
            "reporter": None if not reporter else {"name": reporter.get("name"),
                                                   "phone": _masked(reporter.get("phone"))},
            "place": d.get("place"), "external_id": d.get("external_id"),
            "acknowledged": d.get("acknowledged"),
            "response_advice": {"level": advised, "reason": why, "reason_zh": why_zh},
            "declared_response": d.get("declared_response"),
            "alarm": {"sounding": row.status != Status.CLOSED and level == Level.RED and not d.get("acknowledged"),
                      "escalated": d.get("escalated")},
            "closed": closed, "merged_into": d.get("merged_into"), "merged_from": merged_from,
            "actions": d.get("actions") or [],
        }

    def _life_incident_view(self, row: IncidentRow) -> dict[str, Any]:
        """The incident's view with its human life (until ``incident_view`` includes ``life_view`` itself)."""
        return {**self.incident_view(row), **self.life_view(row)}


def _conflict(message: str) -> Exception:
    from .runtime import Conflict

    return Conflict(message)


def _not_closed(row: IncidentRow, what: str) -> None:
    if row.status == Status.CLOSED:
        raise _conflict(f"cannot {what} incident {row.id}: it is closed "
                        f"({row.detail.get('closed_reason', 'closed')}); reopen it first")


def _closing(row: IncidentRow, what: str) -> Status:
    """The closed status an action moves the incident to; Conflict if it is closed already."""
    if row.status == Status.CLOSED:
        raise _conflict(f"cannot {what} incident {row.id}: it is already closed "
                        f"({row.detail.get('closed_reason', 'closed')})")
    return transition(row.status, Status.CLOSED)
