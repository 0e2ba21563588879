"""The store: readings, incidents, dispatches, tasks, tracks and the append-only event log.

Synchronous SQLAlchemy 2 on purpose: every call is one short transaction on a local SQLite
file (WAL, synchronous=NORMAL) or a PostgreSQL connection, and keeping it synchronous keeps
the async shell free of thread hand-offs. Hot paths (ingest) write in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sensors.model import Reading

from . import models_alerts, models_evac  # noqa: F401 — their tables are created with the rest

from .models import (AuditRow, Base, DispatchRow, EventRow, FlightRow, GrantRow, IncidentRow, MaintenanceRow,
                     OfficialWarningRow, PlanRow, ReadingRow, TaskRow, TrackRow, VehicleMaintenanceRow, DeliveryRow)


class StoreError(Exception):
    """Base of store errors."""


class AlreadyDispatched(StoreError):
    """The incident already has a dispatch (one mission per incident)."""


class AlreadyDecided(StoreError):
    """A plan already decided (approved, rejected, superseded), or its task already flown by another plan."""


class NotFound(StoreError):
    """No such row."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    # -- readings -----------------------------------------------------------------------
    def add_readings(self, readings: Sequence[Reading], *, received_at: datetime) -> int:
        """Insert readings; a reading already stored (same sensor, quantity, time) is skipped.

        Returns the number inserted (the rest were duplicates).
        """
        if not readings:
            return 0
        rows = [
            {"sensor_id": r.sensor_id, "quantity": r.quantity, "time": r.time, "value": r.value,
             "unit": r.unit, "flag": r.flag, "received_at": received_at,
             "qc": [{"check": n.check, "flag": n.flag, "detail": n.detail} for n in r.qc] or None}
            for r in readings
        ]
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(ReadingRow).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            inserted = conn.execute(stmt, rows).rowcount
        return len(rows) if inserted is None or inserted < 0 else inserted

    def readings(self, sensor_id: str, *, since: datetime | None = None, limit: int = 1000,
                 quantity: str | None = None) -> list[ReadingRow]:
        q = select(ReadingRow).where(ReadingRow.sensor_id == sensor_id)
        if quantity is not None:
            q = q.where(ReadingRow.quantity == quantity)
        if since is not None:
            q = q.where(ReadingRow.time > since)
        q = q.order_by(ReadingRow.time.desc()).limit(limit)
        with self.session() as s:
            return list(reversed(s.scalars(q).all()))

    def latest_readings(self) -> dict[str, ReadingRow]:
        """The newest reading of every sensor."""
        newest = (
            select(ReadingRow.sensor_id, func.max(ReadingRow.time).label("t"))
            .group_by(ReadingRow.sensor_id)
            .subquery()
        )
        q = select(ReadingRow).join(
            newest, (ReadingRow.sensor_id == newest.c.sensor_id) & (ReadingRow.time == newest.c.t)
        )
        with self.session() as s:
            return {r.sensor_id: r for r in s.scalars(q).all()}

    def recent_readings(self, *, since: datetime) -> list[ReadingRow]:
        """Every reading newer than ``since``, oldest first (to seed the QC history)."""
        q = select(ReadingRow).where(ReadingRow.time > since).order_by(ReadingRow.time)
        with self.session() as s:
            return list(s.scalars(q).all())

    # -- maintenance windows ------------------------------------------------------------
    def add_maintenance(self, **fields: Any) -> MaintenanceRow:
        with self.session() as s, s.begin():
            row = MaintenanceRow(**fields)
            s.add(row)
        return row

    def end_maintenance(self, window_id: int, *, end: datetime) -> MaintenanceRow | None:
        with self.session() as s, s.begin():
            row = s.get(MaintenanceRow, window_id)
            if row is None:
                return None
            row.end = min(row.end, end)
        return row

    def maintenance(self, *, sensor_id: str | None = None, after: datetime | None = None) -> list[MaintenanceRow]:
        q = select(MaintenanceRow)
        if sensor_id is not None:
            q = q.where(MaintenanceRow.sensor_id == sensor_id)
        if after is not None:
            q = q.where(MaintenanceRow.end > after)
        with self.session() as s:
            return list(s.scalars(q.order_by(MaintenanceRow.start)).all())

    # -- official warnings --------------------------------------------------------------
    def add_official(self, **fields: Any) -> tuple[OfficialWarningRow, bool]:
        """Insert a received CAP warning; (row, False) when its identifier was already stored."""
        with self.session() as s, s.begin():
            existing = s.scalar(select(OfficialWarningRow).where(OfficialWarningRow.identifier == fields["identifier"]))
            if existing is not None:
                return existing, False
            row = OfficialWarningRow(**fields)
            s.add(row)
            return row, True

    def replace_official(self, identifiers: Iterable[str], *, by: str) -> None:
        with self.session() as s, s.begin():
            for row in s.scalars(select(OfficialWarningRow).where(OfficialWarningRow.identifier.in_(list(identifiers)))):
                row.replaced_by = by

    def officials(self) -> list[OfficialWarningRow]:
        with self.session() as s:
            return list(s.scalars(select(OfficialWarningRow).order_by(OfficialWarningRow.sent)).all())

    def add_vehicle_maintenance(self, **fields: Any) -> VehicleMaintenanceRow:
        with self.session() as s, s.begin():
            row = VehicleMaintenanceRow(**fields)
            s.add(row)
        return row

    def end_vehicle_maintenance(self, window_id: int, *, vehicle: str, end: datetime) -> VehicleMaintenanceRow:
        with self.session() as s, s.begin():
            row = s.get(VehicleMaintenanceRow, window_id)
            if row is None or row.vehicle != vehicle:
                raise NotFound(f"{vehicle} has no maintenance window {window_id}")
            row.end = min(row.end, end)
        return row

    def vehicle_maintenance(self, *, at: datetime) -> dict[str, VehicleMaintenanceRow]:
        """The maintenance window each vehicle is in at ``at`` (the latest ending)."""
        q = select(VehicleMaintenanceRow).where(VehicleMaintenanceRow.start <= at, VehicleMaintenanceRow.end > at)
        with self.session() as s:
            out: dict[str, VehicleMaintenanceRow] = {}
            for r in s.scalars(q).all():
                if r.vehicle not in out or r.end > out[r.vehicle].end:
                    out[r.vehicle] = r
            return out

    def add_grant(self, **fields: Any) -> GrantRow:
        with self.session() as s, s.begin():
            row = GrantRow(**fields)
            s.add(row)
        return row

    def revoke_grant(self, grant_id: int, *, by: str, now: datetime) -> GrantRow:
        with self.session() as s, s.begin():
            row = s.get(GrantRow, grant_id)
            if row is None:
                raise NotFound(f"no airspace grant {grant_id}")
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = now, by
        return row

    def grants(self, *, active_at: datetime | None = None) -> list[GrantRow]:
        """Every grant on record, or those not revoked and not yet expired at ``active_at``."""
        q = select(GrantRow).order_by(GrantRow.id)
        if active_at is not None:
            q = q.where(GrantRow.revoked_at.is_(None), GrantRow.valid_to > active_at)
        with self.session() as s:
            return list(s.scalars(q).all())

    def count_readings(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(ReadingRow)) or 0)

    # -- incidents ----------------------------------------------------------------------
    def insert_incident(self, **fields: Any) -> IncidentRow:
        with self.session() as s, s.begin():
            row = IncidentRow(**fields)
            s.add(row)
        return row

    def update_incident(self, incident_id: int, **fields: Any) -> IncidentRow:
        with self.session() as s, s.begin():
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            for k, v in fields.items():
                setattr(row, k, v)
        return row

    def incident(self, incident_id: int) -> IncidentRow:
        with self.session() as s:
            row = s.get(IncidentRow, incident_id)
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return row

    def incidents(self, *, status: str | None = None) -> list[IncidentRow]:
        q = select(IncidentRow).order_by(IncidentRow.id)
        if status is not None:
            q = q.where(IncidentRow.status == status)
        with self.session() as s:
            return list(s.scalars(q).all())

    # -- dispatches ---------------------------------------------------------------------
    def claim_dispatch(self, incident_id: int, *, by: str, now: datetime) -> DispatchRow:
        """Create the incident's dispatch, or raise AlreadyDispatched.

        A dispatch that ended refused or failed may be claimed again.
        """
        with self.session() as s, s.begin():
            row = s.scalar(select(DispatchRow).where(DispatchRow.incident_id == incident_id))
            if row is not None:
                if row.state not in ("refused", "failed"):
                    raise AlreadyDispatched(
                        f"incident {incident_id} was already approved by {row.approved_by} "
                        f"(dispatch {row.state})")
                claimed = s.execute(
                    update(DispatchRow)
                    .where(DispatchRow.id == row.id, DispatchRow.state == row.state)
                    .values(state="planning", approved_by=by, approved_at=now, updated_at=now,
                            error=None, vehicle=None, plan={})
                ).rowcount
                if claimed != 1:
                    raise AlreadyDispatched(f"incident {incident_id} is being dispatched")
                s.refresh(row)
                return row
            row = DispatchRow(incident_id=incident_id, state="planning", approved_by=by,
                              approved_at=now, updated_at=now, plan={})
            s.add(row)
            try:
                s.flush()
            except IntegrityError as err:
                raise AlreadyDispatched(f"incident {incident_id} is being dispatched") from err
        return row

    def update_dispatch(self, incident_id: int, **fields: Any) -> DispatchRow:
        with self.session() as s, s.begin():
            row = s.scalar(select(DispatchRow).where(DispatchRow.incident_id == incident_id))
            if row is None:
                raise NotFound(f"incident {incident_id} has no dispatch")
            for k, v in fields.items():
                setattr(row, k, v)
        return row

    def dispatch(self, incident_id: int) -> DispatchRow | None:
        with self.session() as s:
            return s.scalar(select(DispatchRow).where(DispatchRow.incident_id == incident_id))

    def dispatches(self) -> dict[int, DispatchRow]:
        with self.session() as s:
            return {d.incident_id: d for d in s.scalars(select(DispatchRow)).all()}

    # -- vehicle task plans -----------------------------------------------------------
    def insert_plan(self, **fields: Any) -> PlanRow:
        with self.session() as s, s.begin():
            row = PlanRow(**fields)
            s.add(row)
        return row

    def plan(self, plan_id: int) -> PlanRow:
        with self.session() as s:
            row = s.get(PlanRow, plan_id)
            if row is None:
                raise NotFound(f"no plan {plan_id}")
            return row

    def plans(self, *, incident_id: int | None = None, states: Iterable[str] | None = None) -> list[PlanRow]:
        q = select(PlanRow).order_by(PlanRow.id)
        if incident_id is not None:
            q = q.where(PlanRow.incident_id == incident_id)
        if states is not None:
            q = q.where(PlanRow.state.in_(list(states)))
        with self.session() as s:
            return list(s.scalars(q).all())

    def update_plan(self, plan_id: int, **fields: Any) -> PlanRow:
        with self.session() as s, s.begin():
            row = s.get(PlanRow, plan_id)
            if row is None:
                raise NotFound(f"no plan {plan_id}")
            for k, v in fields.items():
                setattr(row, k, v)
        return row

    def decide_plan(self, plan_id: int, *, to: str, by: str, now: datetime, reason: str | None = None,
                    pilot: str | None = None, active: Iterable[str] = ()) -> PlanRow:
        """Move a proposed plan to ``to`` (approved, rejected, superseded) once: compare-and-set on the state,
        and for an approval no other plan of the same incident task may be ``active``; else AlreadyDecided."""
        active = list(active)
        with self.session() as s, s.begin():
            row = s.get(PlanRow, plan_id)
            if row is None:
                raise NotFound(f"no plan {plan_id}")
            if row.state != "proposed":
                raise AlreadyDecided(f"plan {plan_id} is {row.state}"
                                     + (f" (by {row.decided_by})" if row.decided_by else ""))
            if active:
                other = s.scalar(select(PlanRow).where(PlanRow.incident_id == row.incident_id,
                                                       PlanRow.task_key == row.task_key, PlanRow.id != plan_id,
                                                       PlanRow.state.in_(active)))
                if other is not None:
                    raise AlreadyDecided(f"task {row.task_key!r} of incident {row.incident_id} already has plan "
                                         f"{other.id} ({other.state}, approved by {other.decided_by})")
            done = s.execute(update(PlanRow).where(PlanRow.id == plan_id, PlanRow.state == "proposed")
                             .values(state=to, decided_by=by, decided_at=now, decision_reason=reason, pilot=pilot,
                                     updated_at=now)).rowcount
            if done != 1:
                raise AlreadyDecided(f"plan {plan_id} was decided meanwhile")
            s.refresh(row)
        return row

    # -- tasks --------------------------------------------------------------------------
    def insert_tasks(self, rows: Iterable[dict[str, Any]]) -> list[TaskRow]:
        """Insert department tasks; one whose (incident, key) exists already is skipped (not returned)."""
        out: list[TaskRow] = []
        with self.session() as s, s.begin():
            for fields in rows:
                exists = s.scalar(select(TaskRow.id).where(
                    TaskRow.incident_id == fields["incident_id"], TaskRow.key == fields["key"]))
                if exists is None:
                    row = TaskRow(**fields)
                    s.add(row)
                    out.append(row)
        return out

    def tasks(self, *, incident_id: int | None = None, department: str | None = None,
              open_only: bool = False, crew: str | None = None) -> list[TaskRow]:
        q = select(TaskRow).order_by(TaskRow.id)
        if crew is not None:
            q = q.where(TaskRow.crew == crew)
        if incident_id is not None:
            q = q.where(TaskRow.incident_id == incident_id)
        if department is not None:
            q = q.where(TaskRow.department == department)
        if open_only:
            q = q.where(TaskRow.status.not_in(("done", "declined", "cancelled")))
        with self.session() as s:
            return list(s.scalars(q).all())

    def task(self, task_id: int) -> TaskRow:
        with self.session() as s:
            row = s.get(TaskRow, task_id)
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return row

    def update_task(self, task_id: int, *, expect_status: str | None = None, **fields: Any) -> TaskRow:
        """Write a task's new state; with ``expect_status``, only if it still has that status (compare-and-set)."""
        with self.session() as s, s.begin():
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"task {task_id} does not exist")
            if expect_status is not None and row.status != expect_status:
                raise AlreadyDecided(f"task {task_id} is {row.status} now, not {expect_status}")
            for k, v in fields.items():
                setattr(row, k, v)
        return row

    # -- webhook deliveries -------------------------------------------------------------
    def save_delivery(self, **fields: Any) -> None:
        with self.session() as s, s.begin():
            s.merge(DeliveryRow(**fields))

    def deliveries(self, *, task_id: int | None = None, state: str | None = None,
                   limit: int = 500) -> list[DeliveryRow]:
        q = select(DeliveryRow).order_by(DeliveryRow.created_at.desc()).limit(limit)
        if task_id is not None:
            q = q.where(DeliveryRow.task_id == task_id)
        if state is not None:
            q = q.where(DeliveryRow.state == state)
        with self.session() as s:
            return list(s.scalars(q).all())

    # -- tracks -------------------------------------------------------------------------
    def add_track(self, **fields: Any) -> None:
        with self.session() as s, s.begin():
            s.add(TrackRow(**fields))

    def track(self, vehicle: str, *, limit: int = 5000) -> list[TrackRow]:
        q = select(TrackRow).where(TrackRow.vehicle == vehicle).order_by(TrackRow.time.desc()).limit(limit)
        with self.session() as s:
            return list(reversed(s.scalars(q).all()))

    # -- flight log book ----------------------------------------------------------------
    def insert_flight(self, **fields: Any) -> FlightRow:
        with self.session() as s, s.begin():
            row = FlightRow(**fields)
            s.add(row)
        return row

    def update_flight(self, flight_id: int, **fields: Any) -> FlightRow:
        with self.session() as s, s.begin():
            row = s.get(FlightRow, flight_id)
            if row is None:
                raise NotFound(f"flight {flight_id} does not exist")
            for k, v in fields.items():
                setattr(row, k, v)
        return row

    def flight(self, flight_id: int) -> FlightRow:
        with self.session() as s:
            row = s.get(FlightRow, flight_id)
        if row is None:
            raise NotFound(f"flight {flight_id} does not exist")
        return row

    def flights(self, *, vehicle: str | None = None, state: str | None = None) -> list[FlightRow]:
        q = select(FlightRow).order_by(FlightRow.id)
        if vehicle is not None:
            q = q.where(FlightRow.vehicle == vehicle)
        if state is not None:
            q = q.where(FlightRow.state == state)
        with self.session() as s:
            return list(s.scalars(q).all())

    def track_between(self, vehicle: str, start: datetime, end: datetime) -> list[TrackRow]:
        q = (select(TrackRow).where(TrackRow.vehicle == vehicle, TrackRow.time >= start, TrackRow.time <= end)
             .order_by(TrackRow.time))
        with self.session() as s:
            return list(s.scalars(q).all())

    # -- event log ----------------------------------------------------------------------
    def append_event(self, *, time: datetime, kind: str, data: dict[str, Any]) -> int:
        with self.session() as s, s.begin():
            row = EventRow(time=time, kind=kind, data=data)
            s.add(row)
            s.flush()
            return row.seq

    def events(self, *, after: int = 0, limit: int = 1000) -> list[EventRow]:
        q = select(EventRow).where(EventRow.seq > after).order_by(EventRow.seq).limit(limit)
        with self.session() as s:
            return list(s.scalars(q).all())

    # -- audit log of human actions ----------------------------------------------------------
    def append_audit(self, record: dict[str, Any]) -> int:
        """Store one audit record (``auth.audit_record`` plus ``status``); its id."""
        with self.session() as s, s.begin():
            row = AuditRow(time=datetime.fromisoformat(record["at"]), user_id=record["user"][:64],
                           action=record["action"][:48], target=record["target"][:300], status=int(record["status"]),
                           remote_addr=record.get("remote_addr"), record=record)
            s.add(row)
            s.flush()
            return row.id

    def audit(self, *, user: str | None = None, action: str | None = None, after: int = 0,
              limit: int = 500) -> list[AuditRow]:
        """Audit records in order, after id ``after``; optionally of one user or one action."""
        q = select(AuditRow).where(AuditRow.id > after)
        if user is not None:
            q = q.where(AuditRow.user_id == user)
        if action is not None:
            q = q.where(AuditRow.action == action)
        with self.session() as s:
            return list(s.scalars(q.order_by(AuditRow.id).limit(limit)).all())

    def last_event_seq(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.max(EventRow.seq))) or 0)
