"""Crews and department units as assets: where they are and whether they are free. (Mixin of
``command.runtime.Service``.)

The district's ``crews.yaml`` lists them (``command.district.Crew``): a fire brigade's water-rescue
squad, an ambulance, a traffic police car, a township's emergency team. Each starts at its base and
available; its position is reported (by its phone app, a vehicle tracker, or a dispatcher over the
radio) and its status set (available, on task for an incident, off duty, unavailable). The latest
of each is kept in the store, so a restart knows where everyone was; every change is an event.
A report older than the one kept is ignored (late news: a phone that was offline), said in the
answer. Positions must be in the district's box (a crew sent outside it is still reported, flagged).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .store.models import CrewStateRow

if TYPE_CHECKING:
    from .clock import Clock
    from .district import Crew, District
    from .events import EventBus
    from .store import Store

__all__ = ["CREW_STATUSES", "Crews"]

CREW_STATUSES = ("available", "on_task", "off_duty", "unavailable")
STALE_S = 900.0  # a position older than this is shown as stale


class Crews:
    """Mixin of ``command.runtime.Service``."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        district: District
        clock: Clock

    def _init_crews(self) -> None:
        """Every crew at its base and available, unless the store knows better."""
        self.crew_specs: dict[str, Crew] = {c.id: c for c in self.district.crews}
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            known = {r.crew_id for r in s.scalars(select(CrewStateRow))}
            for c in self.district.crews:
                if c.id not in known:
                    s.add(CrewStateRow(crew_id=c.id, status="available", lon=c.base_lon, lat=c.base_lat,
                                       position_at=now, source="base", updated_at=now, updated_by=None))

    def _crew_row(self, crew_id: str) -> CrewStateRow:
        from .store import NotFound

        if crew_id not in self.crew_specs:
            raise NotFound(f"no crew or unit {crew_id!r}")
        with self.store.session() as s:
            row = s.get(CrewStateRow, crew_id)
        assert row is not None  # created at start for every crew of the district
        return row

    def report_crew_position(self, crew_id: str, *, lon: float, lat: float, at: datetime | None, by: str,
                             source: str = "app") -> dict[str, Any]:
        """A crew's position; one older than the position kept changes nothing (``"applied": false``)."""
        from .runtime import Refused

        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise Refused(f"position ({lon}, {lat}) is not a longitude and latitude")
        now = self.clock.now()
        when = at or now
        if when.tzinfo is None:
            raise Refused("the position's time needs a timezone")
        if (when - now).total_seconds() > 60:
            raise Refused(f"the position's time {when.isoformat()} is in the future")
        row = self._crew_row(crew_id)
        if when < row.position_at:
            return {**self.crew_view(row), "applied": False, "note": "older than the position kept: ignored"}
        with self.store.session() as s, s.begin():
            r = s.get(CrewStateRow, crew_id)
            assert r is not None
            r.lon, r.lat, r.position_at, r.source, r.updated_at, r.updated_by = lon, lat, when, source, now, by
        view = self.crew_view(self._crew_row(crew_id))
        self.bus.publish("crew.position", view)
        return {**view, "applied": True}

    def set_crew_status(self, crew_id: str, *, status: str, by: str, incident_id: int | None = None) -> dict[str, Any]:
        from .runtime import Refused

        if status not in CREW_STATUSES:
            raise Refused(f"status {status!r} is not one of {', '.join(CREW_STATUSES)}")
        if status == "on_task" and incident_id is None:
            raise Refused("a crew on task needs the incident it works on")
        if incident_id is not None:
            self.store.incident(incident_id)  # NotFound for an unknown incident
        self._crew_row(crew_id)
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            r = s.get(CrewStateRow, crew_id)
            assert r is not None
            r.status, r.updated_at, r.updated_by = status, now, by
            r.incident_id = incident_id if status == "on_task" else None
        view = self.crew_view(self._crew_row(crew_id))
        self.bus.publish("crew.status", view)
        return view

    def crew_view(self, row: CrewStateRow) -> dict[str, Any]:
        c = self.crew_specs[row.crew_id]
        age = (self.clock.now() - row.position_at).total_seconds()
        w, s, e, n = self.district.bbox
        return {"id": c.id, "name": c.name, "name_zh": c.name_zh, "department": c.department, "kind": c.kind,
                "type": c.type, "people": c.people, "base": [c.base_lon, c.base_lat], "base_facility": c.base_facility,
                "status": row.status, "incident_id": row.incident_id, "lon": row.lon, "lat": row.lat,
                "position_at": row.position_at.isoformat(), "position_source": row.source,
                "position_stale": age > STALE_S, "in_district": w <= row.lon <= e and s <= row.lat <= n,
                "updated_by": row.updated_by}

    def crews_view(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            rows = {r.crew_id: r for r in s.scalars(select(CrewStateRow))}
        return [self.crew_view(rows[c]) for c in self.crew_specs if c in rows]
