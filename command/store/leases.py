"""Vehicle control leases in the database (``uav.control.LeaseStore``).

Every replica of the service sees the same lease, so one operator controls a vehicle
however many processes serve the consoles. Changes are compare-and-set on the lease token
in one statement (an ``UPDATE ... WHERE token = :old`` or an ``INSERT`` that the primary key
refuses), so two replicas racing for a vehicle cannot both win.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from uav.control import ControlLease

from .models import LeaseRow
from .store import Store

__all__ = ["SqlLeases"]


class SqlLeases:
    """``LeaseStore`` over the ``control_leases`` table."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    def all(self) -> list[ControlLease]:
        """Every stored lease (to show who controls what after a restart)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(LeaseRow)).mappings().all()
        return [ControlLease(r["vehicle"], r["operator"], r["token"], r["acquired_at"], r["expires_at"]) for r in rows]

    async def get(self, vehicle: str) -> ControlLease | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(LeaseRow).where(LeaseRow.vehicle == vehicle)).mappings().first()
        if row is None:
            return None
        return ControlLease(row["vehicle"], row["operator"], row["token"], row["acquired_at"], row["expires_at"])

    async def put(self, lease: ControlLease, *, replaces: str | None) -> bool:
        values = {"operator": lease.operator, "token": lease.token, "acquired_at": lease.acquired_at,
                  "expires_at": lease.expires_at}
        with self._engine.begin() as conn:
            if replaces is None:
                try:
                    conn.execute(insert(LeaseRow).values(vehicle=lease.vehicle, **values))
                except IntegrityError:
                    return False
                return True
            done = conn.execute(update(LeaseRow).where(LeaseRow.vehicle == lease.vehicle,
                                                       LeaseRow.token == replaces).values(**values))
            return done.rowcount == 1

    async def delete(self, vehicle: str, token: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(delete(LeaseRow).where(LeaseRow.vehicle == vehicle, LeaseRow.token == token))
            return done.rowcount == 1
