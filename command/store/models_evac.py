"""Tables of evacuation zones and incident reports (``command.evacuation``).

* ``evacuation_zones``: an incident's zones, their area, the estimate of the people inside and the
  shelters assigned when the zone was drawn; open or closed (with who, when and why).
* ``evacuation_counts``: every count of a zone's people, never overwritten: numbered per zone, the
  number unique, so two replicas cannot both record "the next" count on the same latest one.
* ``shelter_occupancy``: every report of the people in a shelter; the latest is its occupancy.
* ``incident_reports``: the reports sent up (首报 / 续报 / 终报), numbered per incident (unique).
* ``incident_report_overdue``: an incident whose initial report was late, noticed once (unique per
  incident: neither a restart nor a second replica notices it again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

__all__ = ["Base", "EvacCountRow", "EvacZoneRow", "ReportOverdueRow", "ReportRow", "ShelterOccupancyRow"]


class EvacZoneRow(Base):
    """An evacuation zone of an incident: ``open`` (people are being moved) or ``closed``."""

    __tablename__ = "evacuation_zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # polygon (drawn by a person) | hazard (the incident's model)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)  # GeoJSON (Multi)Polygon, lon/lat
    area_m2: Mapped[float] = mapped_column(Float)
    population: Mapped[dict[str, Any]] = mapped_column(JSON)  # command.linkage.evacuation.PopulationEstimate
    shelters: Mapped[dict[str, Any]] = mapped_column(JSON)  # command.linkage.evacuation.ShelterChoice, at opening
    state: Mapped[str] = mapped_column(String(8))  # open | closed
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # {"closed": {...} while closed, "actions": [{"action", "by", "time", "reason", ...}]}
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EvacCountRow(Base):
    """One count of a zone's people (``command.linkage.evacuation.Count``), with who gave it and when."""

    __tablename__ = "evacuation_counts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("evacuation_zones.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the zone
    at: Mapped[datetime]  # when the count was taken
    recorded_at: Mapped[datetime]  # when the service recorded it
    by: Mapped[str] = mapped_column(String(64))
    evacuated: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    sheltered: Mapped[int | None] = mapped_column(Integer, nullable=True)
    missing: Mapped[int | None] = mapped_column(Integer, nullable=True)
    injured: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dead: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    __table_args__ = (UniqueConstraint("zone_id", "seq", name="uq_evac_count_seq"),)


class ShelterOccupancyRow(Base):
    """One report of the people in a shelter (a facility of kind shelter)."""

    __tablename__ = "shelter_occupancy"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(64), index=True)
    people: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the capacity known then
    over_capacity: Mapped[bool] = mapped_column(Boolean)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(500), default="")


class ReportRow(Base):
    """A report on an incident sent up to the higher authority: its snapshot, frozen when issued."""

    __tablename__ = "incident_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the incident
    kind: Mapped[str] = mapped_column(String(16))  # initial | follow_up | final
    follow_up: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1, 2, ... for follow-ups
    label: Mapped[str] = mapped_column(String(64))
    label_zh: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)  # initial reports: when it was due
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_report_seq"),)


class ReportOverdueRow(Base):
    """An incident of orange or above whose initial report was not issued by its deadline (once)."""

    __tablename__ = "incident_report_overdue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    due_at: Mapped[datetime]
    noticed_at: Mapped[datetime]
    within_s: Mapped[float] = mapped_column(Float)
