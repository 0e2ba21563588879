"""Crews and department units as assets: where they are and whether they are free. (Mixin of
``command.runtime.Service``.)

The district's ``crews.yaml`` lists them (``command.district.Crew``): a fire brigade's water-rescue
squad, an ambulance, a traffic police car, a township's emergency team. Each starts at its base and
available; its position is reported (by its phone app, a vehicle tracker, or a dispatcher over the
radio) and its status set (available, on task for an incident, off duty, unavailable). The latest
of each is kept in the store, so a restart knows where everyone was; every change is an event.
A report older than the one kept is ignored (late news: a phone that was offline), said in the
answer. Positions must be in the district's box (a crew sent outside it is still reported, flagged).

Crew safety
-----------
- **Hazard areas:** each applied position is checked against the hazard area of every open
  incident (``command.incident_area``: flood extent, landslide run-out, gas plume, fire spread).
  Entering one raises ``crew.hazard_entered`` once (the phone warns, the console sees it);
  leaving it ``crew.hazard_left``. The position's answer carries the hazard too, so a phone
  warns even without the live feed.
- **Check-in:** a crew on a task (an accepted or started crew task, or the status ``on_task``)
  checks in at least every ``crew_checkin_s``; the clock starts when it goes on task. A missed
  check-in raises ``crew.checkin_missed`` once per missed deadline (to the dispatchers); checking
  in (or an SOS) starts the next period.
- **SOS:** ``crew.sos`` with where and a note, open until a dispatcher acknowledges it
  (``crew.sos_acknowledged``). Offline phones replay their queue: a change with an ``op_id``
  already applied is answered again, not repeated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shapely.geometry import Point
from shapely.prepared import prep
from sqlalchemy import select

from .store.models import CrewStateRow

if TYPE_CHECKING:
    from .clock import Clock
    from .district import Crew, District
    from .events import EventBus
    from .settings import Settings
    from .store import Store
    from .store.models import IncidentRow

__all__ = ["CREW_STATUSES", "Crews"]

CREW_STATUSES = ("available", "on_task", "off_duty", "unavailable")
STALE_S = 900.0  # a position older than this is shown as stale
MAX_OPS_KEPT = 200  # op_ids remembered per crew (an offline queue replays far fewer)
ON_TASK = ("acknowledged", "in_progress")  # a crew task in these: the crew is working on it


class Crews:
    """Mixin of ``command.runtime.Service``."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        district: District
        clock: Clock
        settings: Settings

    def _init_crews(self) -> None:
        """Every crew at its base and available, unless the store knows better."""
        self.crew_specs: dict[str, Crew] = {c.id: c for c in self.district.crews}
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            known = {r.crew_id for r in s.scalars(select(CrewStateRow))}
            for c in self.district.crews:
                if c.id not in known:
                    s.add(CrewStateRow(crew_id=c.id, status="available", lon=c.base_lon, lat=c.base_lat,
                                       position_at=now, source="base", updated_at=now, updated_by=None, detail={}))
        self._hazard_cache: dict[int, tuple[datetime, Any]] = {}  # incident id → (its updated_at, prepared area)

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
        self._check_hazard(crew_id, lon, lat)
        return {**self.crew_view(self._crew_row(crew_id)), "applied": True}

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

    # -- safety ----------------------------------------------------------------------------------------
    def _update_detail(self, crew_id: str, change: Callable[[dict[str, Any]], bool]) -> tuple[CrewStateRow, bool]:
        """Apply ``change`` to a crew's safety detail (it returns whether it changed anything)."""
        self._crew_row(crew_id)  # NotFound for an unknown crew
        with self.store.session() as s, s.begin():
            r = s.get(CrewStateRow, crew_id)
            assert r is not None
            detail = dict(r.detail or {})
            changed = change(detail)
            if changed:
                r.detail = detail
        return self._crew_row(crew_id), changed

    @staticmethod
    def _seen_op(detail: dict[str, Any], op_id: str | None) -> bool:
        """Whether ``op_id`` was applied already; notes it when new."""
        if op_id is None:
            return False
        ops = list(detail.get("ops", []))
        if op_id in ops:
            return True
        detail["ops"] = [*ops, op_id][-MAX_OPS_KEPT:]
        return False

    def crew_sos(self, crew_id: str, *, by: str, lon: float | None, lat: float | None, note: str,
                 op_id: str | None = None) -> dict[str, Any]:
        """A crew calls for help: open until a dispatcher acknowledges it; also counts as a check-in."""
        now = self.clock.now()
        sos = {"at": now.isoformat(), "by": by, "lon": lon, "lat": lat, "note": note}

        def change(d: dict[str, Any]) -> bool:
            if self._seen_op(d, op_id):
                return False
            d["sos"] = sos
            if d.get("checkin_due_at"):
                d["checkin_due_at"] = (now + timedelta(seconds=self.settings.crew_checkin_s)).isoformat()
            return True

        row, changed = self._update_detail(crew_id, change)
        view = self.crew_view(row)
        if changed:
            self.bus.publish("crew.sos", {**view, "sos": sos})
        return {"sos": view["sos"], "crew": view}

    def acknowledge_crew_sos(self, crew_id: str, *, by: str) -> dict[str, Any]:
        from .runtime import Conflict

        now = self.clock.now()

        def change(d: dict[str, Any]) -> bool:
            if not d.get("sos"):
                raise Conflict(f"crew {crew_id} has no open SOS")
            d["last_sos"] = {**d["sos"], "acknowledged_by": by, "acknowledged_at": now.isoformat()}
            d["sos"] = None
            return True

        row, _ = self._update_detail(crew_id, change)
        view = self.crew_view(row)
        self.bus.publish("crew.sos_acknowledged", {**view, "by": by})
        return view

    def crew_check_in(self, crew_id: str, *, by: str, op_id: str | None = None) -> dict[str, Any]:
        """The crew says it is safe: the next check-in is due ``crew_checkin_s`` from now."""
        now = self.clock.now()

        def change(d: dict[str, Any]) -> bool:
            if self._seen_op(d, op_id):
                return False
            d["checkin_at"] = now.isoformat()
            d["checkin_due_at"] = (now + timedelta(seconds=self.settings.crew_checkin_s)).isoformat()
            d["checkin_missed"] = False
            return True

        row, changed = self._update_detail(crew_id, change)
        view = self.crew_view(row)
        if changed:
            self.bus.publish("crew.checked_in", {**view, "by": by})
        return view

    def _on_task(self, row: CrewStateRow, working: set[str]) -> bool:
        return row.status == "on_task" or row.crew_id in working

    async def _crews_tick(self, now: datetime) -> None:
        """Start, stop and chase the check-in clocks of crews on tasks."""
        working = {t.crew for t in self.store.tasks(open_only=True) if t.crew and t.status in ON_TASK}
        with self.store.session() as s:
            rows = list(s.scalars(select(CrewStateRow)))
        for row in rows:
            if row.crew_id not in self.crew_specs:
                continue
            detail = row.detail or {}
            due = detail.get("checkin_due_at")
            on_task = self._on_task(row, working)
            if on_task and due is None:
                self._update_detail(row.crew_id, lambda d: _set(d, checkin_due_at=(
                    now + timedelta(seconds=self.settings.crew_checkin_s)).isoformat(), checkin_missed=False))
            elif not on_task and due is not None:
                self._update_detail(row.crew_id, lambda d: _set(d, checkin_due_at=None, checkin_missed=False))
            elif on_task and not detail.get("checkin_missed") and now >= datetime.fromisoformat(due):
                fresh, changed = self._update_detail(
                    row.crew_id, lambda d: not d.get("checkin_missed") and _set(d, checkin_missed=True))
                if changed:
                    self.bus.publish("crew.checkin_missed", {**self.crew_view(fresh), "due_at": due})

    def _hazard_areas(self) -> list[tuple[IncidentRow, Any]]:
        """The open incidents with a hazard area, each area prepared (cached until the incident changes)."""
        from .linkage_service import incident_hazard

        out = []
        open_rows = [r for r in self.store.incidents() if r.status != "closed"]
        for r in open_rows:
            cached = self._hazard_cache.get(r.id)
            if cached is None or cached[0] != r.updated_at:
                area = incident_hazard(r, self.district)
                cached = (r.updated_at, prep(area) if area is not None and not area.is_empty else None)
                self._hazard_cache[r.id] = cached
            if cached[1] is not None:
                out.append((r, cached[1]))
        return out

    def _check_hazard(self, crew_id: str, lon: float, lat: float) -> None:
        here = Point(lon, lat)
        inside = [r for r, area in self._hazard_areas() if area.contains(here)]
        worst = max(inside, key=lambda r: (r.level, -r.id)) if inside else None
        hazard = None if worst is None else {
            "incident_id": worst.id, "kind": worst.kind, "level": worst.level,
            "title": worst.detail.get("title") or worst.kind,
            "title_zh": worst.detail.get("title_zh") or worst.detail.get("title") or worst.kind}
        previous: dict[str, Any] = {}

        def change(d: dict[str, Any]) -> bool:
            previous["hazard"] = d.get("hazard")
            was = (d.get("hazard") or {}).get("incident_id")
            if was == (hazard or {}).get("incident_id"):
                return False
            d["hazard"] = hazard
            return True

        row, changed = self._update_detail(crew_id, change)
        if not changed:
            return
        view = self.crew_view(row)
        if previous.get("hazard"):
            self.bus.publish("crew.hazard_left", {**view, "left": previous["hazard"]})
        if hazard is not None:
            self.bus.publish("crew.hazard_entered", {**view, **{k: hazard[k] for k in ("incident_id", "kind",
                                                                                        "level", "title", "title_zh")}})

    def crew_view(self, row: CrewStateRow) -> dict[str, Any]:
        c = self.crew_specs[row.crew_id]
        age = (self.clock.now() - row.position_at).total_seconds()
        w, s, e, n = self.district.bbox
        return {"id": c.id, "name": c.name, "name_zh": c.name_zh, "department": c.department, "kind": c.kind,
                "type": c.type, "people": c.people, "base": [c.base_lon, c.base_lat], "base_facility": c.base_facility,
                "status": row.status, "incident_id": row.incident_id, "lon": row.lon, "lat": row.lat,
                "position_at": row.position_at.isoformat(), "position_source": row.source,
                "position_stale": age > STALE_S, "in_district": w <= row.lon <= e and s <= row.lat <= n,
                "updated_by": row.updated_by, "checkin_due_at": (row.detail or {}).get("checkin_due_at"),
                "checkin_missed": bool((row.detail or {}).get("checkin_missed")),
                "hazard": (row.detail or {}).get("hazard"), "sos": (row.detail or {}).get("sos")}

    def crews_view(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            rows = {r.crew_id: r for r in s.scalars(select(CrewStateRow))}
        return [self.crew_view(rows[c]) for c in self.crew_specs if c in rows]


def _set(detail: dict[str, Any], **values: Any) -> bool:
    detail.update(values)
    return True
