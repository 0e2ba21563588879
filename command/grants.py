"""Airspace approvals on record: dispatchers record what air traffic management granted, and
every plan is checked against the grants that are valid for its flight.

Only controlled zones of the district (``airspace.geojson``, kind ``controlled``) and the
airspace above the 120 m ceiling (``NATIONAL_CEILING_ID``) are approvable; a prohibited or
height-limited zone is refused with the reason. Grants are revoked, never deleted (the log
keeps who granted, who recorded and who revoked).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shapely.geometry import mapping, shape

from .dispatch.airspace import Zone
from .dispatch.approvals import NATIONAL_CEILING_ID, Grant
from .events import EventBus
from .store import Store
from .store.models import GrantRow

__all__ = ["AirspaceGrants", "GrantRefused"]


class GrantRefused(ValueError):
    """A grant that cannot be recorded; the message says why."""


class AirspaceGrants:
    """The grants of one district's airspace."""

    def __init__(self, store: Store, zones: tuple[Zone, ...], bus: EventBus, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.zones = {z.id: z for z in zones}
        self.bus = bus
        self.clock = clock

    def record(self, *, zone_id: str, granted_by: str, reference: str, valid_from: datetime, valid_to: datetime,
               max_alt_agl_m: float, area: dict[str, Any] | None, note: str, by: str) -> dict[str, Any]:
        zone = self.zones.get(zone_id)
        if zone_id != NATIONAL_CEILING_ID:
            if zone is None:
                raise GrantRefused(f"no airspace zone {zone_id!r} (controlled zones: "
                                   f"{', '.join(z.id for z in self.zones.values() if z.kind == 'controlled') or 'none'}"
                                   f"; above the ceiling: {NATIONAL_CEILING_ID})")
            if zone.kind != "controlled":
                raise GrantRefused(f"zone {zone_id!r} is {zone.kind.replace('_', '-')}: only controlled airspace is "
                                   "approvable (a prohibited zone is never flown; a height limit is never lifted)")
        try:
            geom = shape(area) if area is not None else None
            # validated as the planner will read it (times, cap, area)
            Grant("new", zone_id, granted_by, reference, valid_from, valid_to, max_alt_agl_m, geom, note)  # type: ignore[arg-type]
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            raise GrantRefused(str(err)) from None
        row = self.store.add_grant(zone_id=zone_id, granted_by=granted_by, reference=reference, valid_from=valid_from,
                                   valid_to=valid_to, max_alt_agl_m=float(max_alt_agl_m),
                                   area=mapping(geom) if geom is not None else None, note=note, recorded_by=by,
                                   recorded_at=self.clock())
        view = self.view(row)
        self.bus.publish("airspace.granted", view)
        return view

    def revoke(self, grant_id: int, *, by: str) -> dict[str, Any]:
        view = self.view(self.store.revoke_grant(grant_id, by=by, now=self.clock()))
        self.bus.publish("airspace.revoked", view)
        return view

    def active(self, at: datetime | None = None) -> list[Grant]:
        """The grants not revoked and not expired at ``at`` (now), for ``approvals.check_grants``."""
        rows = self.store.grants(active_at=at or self.clock())
        return [Grant(str(r.id), r.zone_id, r.granted_by, r.reference, r.valid_from, r.valid_to, r.max_alt_agl_m,
                      shape(r.area) if r.area else None, r.note) for r in rows]  # type: ignore[arg-type]

    def views(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        rows = self.store.grants(active_at=self.clock() if active_only else None)
        return [self.view(r) for r in rows]

    def view(self, row: GrantRow) -> dict[str, Any]:
        now = self.clock()
        zone = self.zones.get(row.zone_id)
        return {
            "id": row.id, "zone_id": row.zone_id, "zone_name": zone.name if zone else "above the ceiling",
            "zone_name_zh": (zone.name_zh or zone.name) if zone else "真高120米以上空域",
            "granted_by": row.granted_by, "reference": row.reference,
            "valid_from": row.valid_from.isoformat(), "valid_to": row.valid_to.isoformat(),
            "max_alt_agl_m": row.max_alt_agl_m, "area": row.area, "note": row.note,
            "recorded_by": row.recorded_by, "recorded_at": row.recorded_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None, "revoked_by": row.revoked_by,
            "active": row.revoked_at is None and row.valid_from <= now < row.valid_to,
        }
