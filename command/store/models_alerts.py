"""Tables of the CAP alerts (``command.alerts``).

One alert per incident (``cap_alerts``) and its messages (``cap_alert_messages``): the first
Alert, then Updates and at most one Cancel. A message is drafted by one person and released
by another; only a released message has its XML (written and validated at release) and is
ever served to the public. Two rules live in the database so that they hold across replicas:
one alert per incident (a unique key) and at most one open draft per alert (a partial unique
index over the drafts, which SQLite and PostgreSQL both support).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

__all__ = ["AlertMessageRow", "AlertRow", "Base"]


class AlertRow(Base):
    """The CAP alert of one incident: ``unreleased`` (nothing public yet), ``active`` (released and in
    force) or ``cancelled`` (a Cancel was released: no further messages)."""

    __tablename__ = "cap_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # set when the incident was seen closed while the alert was still in force (alert.cancel_needed sent);
    # cleared if the incident is reopened, so that a second closing is noticed again
    cancel_needed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AlertMessageRow(Base):
    """One CAP message of an alert: ``draft``, then ``released`` or ``withdrawn``."""

    __tablename__ = "cap_alert_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("cap_alerts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the alert (drafts and withdrawn ones too)
    identifier: Mapped[str] = mapped_column(String(200), unique=True)  # CAP <identifier>
    msg_type: Mapped[str] = mapped_column(String(8))  # Alert | Update | Cancel
    status: Mapped[str] = mapped_column(String(16))  # CAP <status>: Actual | Exercise
    scope: Mapped[str] = mapped_column(String(16))  # Public | Restricted
    restriction: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state: Mapped[str] = mapped_column(String(16))  # draft | released | withdrawn
    # what the message says, frozen at drafting: the releaser releases what was drafted
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    drafted_by: Mapped[str] = mapped_column(String(64))
    drafted_at: Mapped[datetime]
    released_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sent: Mapped[datetime | None] = mapped_column(nullable=True)  # CAP <sent>, whole seconds: the release time
    sender: Mapped[str | None] = mapped_column(String(200), nullable=True)  # CAP <sender>, as released
    # CAP <references>: "sender,identifier,sent" of the previous released message, exactly as it was written
    references: Mapped[str | None] = mapped_column(Text, nullable=True)
    references_id: Mapped[int | None] = mapped_column(ForeignKey("cap_alert_messages.id"), nullable=True)
    xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # set at release, the bytes validated
    withdrawn_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(nullable=True)
    withdraw_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    __table_args__ = (
        Index("uq_cap_open_draft", "alert_id", unique=True, sqlite_where=text("state = 'draft'"),
              postgresql_where=text("state = 'draft'")),
    )
