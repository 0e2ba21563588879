"""Tables (SQLAlchemy 2 declarative). SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        from datetime import timezone

        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import timezone

        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ReadingRow(Base):
    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    flag: Mapped[str] = mapped_column(String(16), default="good")
    # the QC checks that lowered the flag: [{"check", "flag", "detail"}]; null when good
    qc: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True, default=None)
    received_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("sensor_id", "quantity", "time", name="uq_reading"),)


class MaintenanceRow(Base):
    """A sensor maintenance window: its readings are kept, but open no incidents."""

    __tablename__ = "maintenance"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class VehicleMaintenanceRow(Base):
    """A vehicle out of service (repairs, inspection) until ``end``: not planned, shown as such."""

    __tablename__ = "vehicle_maintenance"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class GrantRow(Base):
    """An airspace approval from air traffic management, recorded by a dispatcher (``command.dispatch.approvals``)."""

    __tablename__ = "airspace_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(64), index=True)
    granted_by: Mapped[str] = mapped_column(String(120))  # the approving body
    reference: Mapped[str] = mapped_column(String(120))  # its approval number
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime]
    max_alt_agl_m: Mapped[float] = mapped_column(Float)
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # GeoJSON geometry, None = whole zone
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    sensor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    on_water: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # title, reason, level history and evidence readings: shaped by command.incidents
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (Index("ix_incident_open", "kind", "sensor_id", "status"),)


class DispatchRow(Base):
    __tablename__ = "dispatches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One dispatch per incident: the unique key is what makes a repeated or concurrent
    # approval (also from another replica) upload one mission, not two.
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    vehicle: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class PlanRow(Base):
    """A vehicle task plan of an incident: proposed, then approved (and flown), edited or rejected."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    task_key: Mapped[str] = mapped_column(String(64))
    vehicle: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # proposed | refused | approved | uploading | flying | returning | landed | failed | rejected | superseded
    state: Mapped[str] = mapped_column(String(16))
    task: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # command.dispatch.tasks.TaskSpec.to_wire
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # path, times, battery, approvals, checks
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    pilot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime]


class TaskRow(Base):
    """A department task of an incident, with its life (``command.linkage.lifecycle``)."""

    __tablename__ = "dept_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    key: Mapped[str] = mapped_column(String(96))  # the playbook's "{department}:{index}": one task per key
    department: Mapped[str] = mapped_column(String(64), index=True)  # a department id or a township id
    township: Mapped[bool] = mapped_column(default=False)
    crew: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # a crew's task: the crew
    text: Mapped[str] = mapped_column(String(1000))
    text_zh: Mapped[str] = mapped_column(String(1000))
    # sent | delivered | acknowledged | in_progress | done | declined | cancelled
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ack_due_at: Mapped[datetime]
    complete_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    escalation_stage: Mapped[int] = mapped_column(Integer, default=0)
    overdue_notified: Mapped[bool] = mapped_column(default=False)
    report: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # playbook version, escalation steps, needs (the incident's geometry for this department), share,
    # the person it was first sent to, the history of transitions and escalation steps
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (UniqueConstraint("incident_id", "key", name="uq_dept_task"),)


class DeliveryRow(Base):
    """One outgoing webhook delivery and its attempts (``command.linkage.webhooks``): the delivery log."""

    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(String(20000))
    attempts: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{at, status, error, duration_ms}]
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class TrackRow(Base):
    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    alt_rel_m: Mapped[float] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(24))
    armed: Mapped[bool]
    battery_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_track_vehicle_time", "vehicle", "time"),)


class FlightRow(Base):
    """The flight log book: one entry per flight, kept (never rotated away)."""

    __tablename__ = "flights"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    pilot: Mapped[str] = mapped_column(String(64))  # remote pilot in command
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime]
    armed_at: Mapped[datetime]
    takeoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    landed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(16))  # flying, landed
    max_agl_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    distance_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # approval checks, preflight, log file
    __table_args__ = (Index("ix_flight_vehicle", "vehicle", "state"),)


class LeaseRow(Base):
    """Who controls a vehicle: one row per vehicle, changed only by compare-and-set on the token."""

    __tablename__ = "control_leases"
    vehicle: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OfficialWarningRow(Base):
    """A warning issued by the meteorological or hydrological service (CAP 1.2), as received."""

    __tablename__ = "official_warnings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    sender: Mapped[str] = mapped_column(String(200))
    sent: Mapped[datetime]
    expires: Mapped[datetime | None] = mapped_column(nullable=True)
    msg_type: Mapped[str] = mapped_column(String(16))
    replaced_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a later Update or Cancel
    received_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventRow(Base):
    """Append-only audit log: every state change, in order."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditRow(Base):
    """One human action (``command.api.guard``): who, when, from where, on what, and what changed."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_user_time", "user_id", "time"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime]
    user_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str] = mapped_column(String(300))
    status: Mapped[int] = mapped_column(Integer)
    remote_addr: Mapped[str | None] = mapped_column(String(255), nullable=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole record (auth.audit_record)


class CrewStateRow(Base):
    """A crew's or department unit's latest position and availability (``command.crews``)."""

    __tablename__ = "crew_states"
    crew_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # available | on_task | off_duty | unavailable
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    position_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))  # base | app | gps | dispatcher ...
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the crew's safety state (command.crews): check-in due, missed check-ins, hazard it is in, open SOS
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
