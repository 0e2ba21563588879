"""People at risk: evacuation zones, shelters, counts, casualties, and the reports the bureau sends
up. (Mixin of ``command.runtime.Service``.)

Chinese response centres on the transfer of people (转移): a zone is drawn around the people at
risk (by a dispatcher on the map, or the incident's modelled hazard area), the people inside are
estimated from the district's data (an estimate, labelled so: ``linkage.evacuation.PopulationEstimate``),
and the nearest shelters with room are assigned. Then the counts from the ground take over: every
count is a record with who and when, never overwritten, and the zone's figures are the latest
(``linkage.evacuation.check_count`` says what a count must keep). A zone closes only on a count that
leaves nobody inside, or that names the people who refuse to leave; it can be reopened.

The bureau reports each incident up (首报 initial, 续报 follow-ups numbered 1, 2, ..., 终报 final): a
report is a snapshot of the incident (level, place, time, declared response, evacuation and
casualty totals, the departments' tasks, the vehicles' plans) in Chinese and English, frozen when
issued. An incident of orange or above without an initial report ``report_initial_within_s`` after it
became orange raises ``report.overdue`` once (recorded in the store: a restart or a second replica
does not raise it again). Only the service clock counts.

Settings (read with defaults, see ``SETTINGS``): ``report_initial_within_s``.

Events: ``evacuation.zone_opened``, ``evacuation.counts``, ``evacuation.zone_closed``,
``evacuation.zone_reopened``, ``shelter.occupancy``, ``shelter.over_capacity``, ``report.issued``,
``report.overdue``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .dispatch.geometry import to_utm
from .incident_life import KINDS
from .incidents import Status
from .linkage.evacuation import (
    REPORT_KINDS,
    CloseRefused,
    Count,
    EvacuationError,
    ReportOrderError,
    check_close,
    check_count,
    choose_shelters,
    current_figures,
    estimate_population,
    initial_report_due,
    next_report,
    render_report,
    zone_geometry,
    zone_transition,
)
from .linkage_service import incident_hazard
from .risk.rules import Level
from .store import NotFound
from .store.models import IncidentRow
from .store.models_evac import EvacCountRow, EvacZoneRow, ReportOverdueRow, ReportRow, ShelterOccupancyRow

if TYPE_CHECKING:
    from sensors.registry import Registry

    from .clock import Clock
    from .district import District, Facility
    from .events import EventBus
    from .settings import Settings
    from .store import Store
    from .store.models import TaskRow

__all__ = ["REPORT_INITIAL_WITHIN_S", "SETTINGS", "Evacuation"]

log = logging.getLogger("command.evacuation")

# How long after an incident becomes orange (or opens orange or red) its initial report (首报) is due.
# Our default, a setting: public rules differ by place and kind of event. E.g. Jilin city (吉市政办函
# 〔2006〕1号, http://www.fymate.net/html/text/lar/169251/16925112.html): major and especially major
# events reported at the latest 1 h after they happen; Lanzhou (http://www.fsou.net/html/text/lar/
# 169911/16991193_1.html): 2 h; some cities ask for a phone report within 15-30 min and a written one
# within 30-60 min. The phone call is a person's act; this deadline is for the written report.
REPORT_INITIAL_WITHIN_S = 3600.0
SETTINGS: Mapping[str, Any] = {
    "report_initial_within_s": REPORT_INITIAL_WITHIN_S,  # float, s of service time
}
_LOCAL_FORMAT = "%Y-%m-%d %H:%M"


def _geojson(geom: BaseGeometry) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(geom))


def _count(row: EvacCountRow) -> Count:
    return Count(row.at, row.evacuated, row.remaining, row.sheltered, row.missing, row.injured, row.dead, row.total,
                 row.note or "", row.by)


def _count_view(row: EvacCountRow) -> dict[str, Any]:
    return {"id": row.id, "seq": row.seq, "at": row.at.isoformat(), "recorded_at": row.recorded_at.isoformat(),
            "by": row.by, "evacuated": row.evacuated, "remaining": row.remaining, "sheltered": row.sheltered,
            "missing": row.missing, "injured": row.injured, "dead": row.dead, "total": row.total, "note": row.note}


def _refused(message: str) -> Exception:
    from .runtime import Refused

    return Refused(message)


def _conflict(message: str) -> Exception:
    from .runtime import Conflict

    return Conflict(message)


class Evacuation:
    """Mixin of ``command.runtime.Service``."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        clock: Clock
        district: District
        settings: Settings
        registry: Registry

        def life_view(self, row: IncidentRow) -> dict[str, Any]: ...
        def task_view(self, t: TaskRow) -> dict[str, Any]: ...

    def _init_evacuation(self) -> None:
        """Called once from ``Service.__init__`` (after the store, bus, clock and district exist)."""
        self._evac_tz = ZoneInfo(self.district.timezone)
        self._evac_shelters: dict[str, Facility] = {f.id: f for f in self.district.facilities if f.kind == "shelter"}
        with self.store.session() as s:
            # incidents whose initial report was issued or found overdue: the deadline check skips them
            self._evac_reported: set[int] = set(s.scalars(select(ReportRow.incident_id)
                                                          .where(ReportRow.kind == "initial")).all())
            self._evac_overdue: set[int] = set(s.scalars(select(ReportOverdueRow.incident_id)).all())

    # -- zones --------------------------------------------------------------------------------------
    def open_evacuation_zone(self, incident_id: int, *, by: str, name: str, name_zh: str | None = None,
                             area: Mapping[str, Any] | None = None, from_hazard: bool = False) -> dict[str, Any]:
        """Draw an evacuation zone of an incident (a GeoJSON Polygon, or the incident's hazard area), with
        the people inside estimated and the nearest shelters with room assigned."""
        row = self.store.incident(incident_id)  # NotFound → 404
        if row.status == Status.CLOSED:
            raise _conflict(f"incident {incident_id} is closed: reopen it before drawing an evacuation zone")
        if (area is None) == (not from_hazard):
            raise _refused("give the zone's area either as a GeoJSON Polygon (area) or as from_hazard: true, "
                           "not both and not neither")
        if area is not None:
            try:
                zone: BaseGeometry = zone_geometry(area)
            except EvacuationError as err:
                raise _refused(str(err)) from None
            if not zone.intersects(self.district.boundary):
                raise _refused(f"the zone lies outside {self.district.name}: draw it inside the district")
            source = "polygon"
        else:
            hazard = incident_hazard(row, self.district)
            if hazard is None:
                raise _refused(f"incident {incident_id} has no hazard area (no model drew one for a {row.kind} "
                               f"incident): draw the zone as a polygon")
            zone, source = hazard, "hazard"
        d = self.district
        estimate = estimate_population(zone, facilities=d.facilities, townships=d.townships, utm_epsg=d.utm_epsg)
        occupancy = {k: r.people for k, r in self._evac_occupancy().items()}
        with self.store.session() as s:
            others = [shape(z.geometry) for z in s.scalars(select(EvacZoneRow).where(EvacZoneRow.state == "open"))]
        choice = choose_shelters(zone, estimate.people, shelters=self._evac_shelters.values(), occupancy=occupancy,
                                 avoid=others, utm_epsg=d.utm_epsg)
        now = self.clock.now()
        stamp = now.isoformat()
        with self.store.session() as s, s.begin():
            z = EvacZoneRow(incident_id=incident_id, name=name, name_zh=name_zh or name, source=source,
                            geometry=_geojson(zone), area_m2=round(float(to_utm(zone, d.utm_epsg).area), 1),
                            population=estimate.to_wire(), shelters=choice.to_wire(), state="open", opened_by=by,
                            opened_at=now, updated_at=now,
                            detail={"actions": [{"action": "opened", "by": by, "time": stamp, "source": source}]})
            s.add(z)
        log.info("incident %d: evacuation zone %d %r opened by %s (about %d people, %d shelters)", incident_id,
                 z.id, name, by, estimate.people, len(choice.shelters))
        view = self._evac_zone_view(z, [], history=True)
        self.bus.publish("evacuation.zone_opened", view)
        return view

    def record_evacuation_count(self, zone_id: int, *, by: str, evacuated: int, remaining: int,
                                sheltered: int | None = None, missing: int | None = None, injured: int | None = None,
                                dead: int | None = None, total: int | None = None, note: str = "",
                                at: datetime | None = None) -> dict[str, Any]:
        """Record a count of the zone's people (a new record; the rules: ``linkage.evacuation.check_count``)."""
        now = self.clock.now()
        new = Count(at or now, evacuated, remaining, sheltered, missing, injured, dead, total, note, by)
        try:
            with self.store.session() as s, s.begin():
                z = self._evac_zone(s, zone_id)
                if z.state == "closed":
                    raise _conflict(f"evacuation zone {zone_id} is closed: reopen it to record counts")
                rows = self._evac_counts(s, zone_id)
                try:
                    check_count(new, current=current_figures([_count(r) for r in rows]), now=now)
                except EvacuationError as err:
                    raise _refused(str(err)) from None
                c = EvacCountRow(zone_id=zone_id, seq=len(rows) + 1, at=new.at, recorded_at=now, by=by,
                                 evacuated=evacuated, remaining=remaining, sheltered=sheltered, missing=missing,
                                 injured=injured, dead=dead, total=total, note=note)
                s.add(c)
                z.updated_at = now
        except IntegrityError:
            raise _conflict(f"another count of evacuation zone {zone_id} was recorded meanwhile: look at the "
                            f"latest figures and send the count again") from None
        view = self.evacuation_zone_view(zone_id)
        log.info("evacuation zone %d: count by %s: %d evacuated, %d remaining", zone_id, by, evacuated, remaining)
        self.bus.publish("evacuation.counts", {"incident_id": view["incident_id"], "zone_id": zone_id,
                                               "name": view["name"], "name_zh": view["name_zh"],
                                               "count": _count_view(c), "figures": view["figures"]})
        return view

    def close_evacuation_zone(self, zone_id: int, *, by: str, reason: str,
                              refusing: int | None = None) -> dict[str, Any]:
        """Close a zone: refused (Conflict) without counts, or while its latest count has people remaining
        (unless ``refusing`` gives them all as refusing to leave, recorded)."""
        if not reason.strip():
            raise _refused("closing an evacuation zone needs a reason")
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            z = self._evac_zone(s, zone_id)
            try:
                zone_transition(z.state, "closed", zone_id=zone_id)
                record = check_close(current_figures([_count(r) for r in self._evac_counts(s, zone_id)]),
                                     zone_id=zone_id, refusing=refusing)
            except CloseRefused as err:
                raise _conflict(str(err)) from None
            except EvacuationError as err:
                raise (_conflict if z.state == "closed" else _refused)(str(err)) from None
            closed = {"by": by, "at": now.isoformat(), "reason": reason, **record}
            z.detail = {**z.detail, "closed": closed,
                        "actions": [*(z.detail.get("actions") or []), {"action": "closed", "by": by,
                                                                        "time": now.isoformat(), "reason": reason,
                                                                        "refusing": refusing}]}
            z.state, z.closed_at, z.closed_by, z.updated_at = "closed", now, by, now
        log.info("evacuation zone %d closed by %s: %s", zone_id, by, reason)
        view = self.evacuation_zone_view(zone_id)
        self.bus.publish("evacuation.zone_closed", view)
        return view

    def reopen_evacuation_zone(self, zone_id: int, *, by: str, reason: str) -> dict[str, Any]:
        """Open a closed zone again (people went back, the hazard returned), with the reason."""
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            z = self._evac_zone(s, zone_id)
            try:
                zone_transition(z.state, "open", zone_id=zone_id)
            except EvacuationError as err:
                raise _conflict(str(err)) from None
            detail = {k: v for k, v in z.detail.items() if k != "closed"}
            detail["actions"] = [*(z.detail.get("actions") or []),
                                 {"action": "reopened", "by": by, "time": now.isoformat(), "reason": reason,
                                  "was": z.detail.get("closed")}]
            z.detail = detail
            z.state, z.closed_at, z.closed_by, z.updated_at = "open", None, None, now
        log.info("evacuation zone %d reopened by %s: %s", zone_id, by, reason)
        view = self.evacuation_zone_view(zone_id)
        self.bus.publish("evacuation.zone_reopened", view)
        return view

    @staticmethod
    def _evac_zone(s: Any, zone_id: int) -> EvacZoneRow:
        z = s.get(EvacZoneRow, zone_id, with_for_update=True)
        if z is None:
            raise NotFound(f"evacuation zone {zone_id} does not exist")
        return z

    @staticmethod
    def _evac_counts(s: Any, zone_id: int) -> list[EvacCountRow]:
        return list(s.scalars(select(EvacCountRow).where(EvacCountRow.zone_id == zone_id)
                              .order_by(EvacCountRow.seq)).all())

    # -- views --------------------------------------------------------------------------------------
    def evacuation_zone_view(self, zone_id: int) -> dict[str, Any]:
        """One zone with its figures and its whole count history."""
        with self.store.session() as s:
            z = s.get(EvacZoneRow, zone_id)
            if z is None:
                raise NotFound(f"evacuation zone {zone_id} does not exist")
            rows = self._evac_counts(s, zone_id)
        return self._evac_zone_view(z, rows, history=True)

    def _evac_zone_view(self, z: EvacZoneRow, rows: list[EvacCountRow], *, history: bool,
                        occupancy: Mapping[str, ShelterOccupancyRow] | None = None) -> dict[str, Any]:
        figures = current_figures([_count(r) for r in rows])
        occupancy = self._evac_occupancy() if occupancy is None else occupancy
        choice = dict(z.shelters)
        choice["shelters"] = [{**pick, **self._evac_shelter_now(pick["id"], occupancy),
                               "occupancy_when_assigned": pick.get("occupancy")}
                              for pick in z.shelters.get("shelters") or []]
        view: dict[str, Any] = {
            "id": z.id, "incident_id": z.incident_id, "name": z.name, "name_zh": z.name_zh, "source": z.source,
            "state": z.state, "geometry": z.geometry, "area_m2": z.area_m2, "population": z.population,
            "shelters": choice["shelters"], "shelter_choice": {k: v for k, v in choice.items() if k != "shelters"},
            "figures": None if figures is None else figures.to_wire(),
            "opened_by": z.opened_by, "opened_at": z.opened_at.isoformat(), "updated_at": z.updated_at.isoformat(),
            "closed": z.detail.get("closed"), "actions": z.detail.get("actions") or [],
        }
        if history:
            view["counts"] = [_count_view(r) for r in rows]
        return view

    def incident_evacuation(self, incident_id: int) -> dict[str, Any]:
        """An incident's zones with their figures, the shelters assigned to them, and the totals."""
        self.store.incident(incident_id)  # NotFound → 404
        occupancy = self._evac_occupancy()
        zones = self._evac_incident_zones(incident_id, occupancy)
        shelters: dict[str, dict[str, Any]] = {}
        for zone in zones:
            for pick in zone["shelters"]:
                entry = shelters.setdefault(pick["id"], {**self._evac_shelter_view(pick["id"], occupancy, pick),
                                                         "zones": []})
                entry["zones"].append(zone["id"])
        return {"incident_id": incident_id, "zones": zones,
                "shelters": sorted(shelters.values(), key=lambda v: v["id"]), "totals": _totals(zones)}

    def _evac_incident_zones(self, incident_id: int,
                             occupancy: Mapping[str, ShelterOccupancyRow]) -> list[dict[str, Any]]:
        with self.store.session() as s:
            zs = list(s.scalars(select(EvacZoneRow).where(EvacZoneRow.incident_id == incident_id)
                                .order_by(EvacZoneRow.id)).all())
            counts = {z.id: self._evac_counts(s, z.id) for z in zs}
        return [self._evac_zone_view(z, counts[z.id], history=False, occupancy=occupancy) for z in zs]

    # -- shelters -----------------------------------------------------------------------------------
    def _evac_occupancy(self) -> dict[str, ShelterOccupancyRow]:
        """The latest occupancy report of every shelter that has one."""
        newest = select(func.max(ShelterOccupancyRow.id)).group_by(ShelterOccupancyRow.facility_id)
        with self.store.session() as s:
            return {r.facility_id: r for r in s.scalars(select(ShelterOccupancyRow)
                                                         .where(ShelterOccupancyRow.id.in_(newest))).all()}

    def _evac_shelter_now(self, facility_id: str, occupancy: Mapping[str, ShelterOccupancyRow]) -> dict[str, Any]:
        f = self._evac_shelters.get(facility_id)
        capacity = f.capacity if f is not None else None
        r = occupancy.get(facility_id)
        people = r.people if r is not None else None
        over = capacity is not None and people is not None and people > capacity
        return {"capacity": capacity, "occupancy": people, "occupancy_at": r.at.isoformat() if r else None,
                "occupancy_by": r.by if r else None,
                "free": None if capacity is None else max(0, capacity - (people or 0)),
                "over_capacity": over, "over_by": (people or 0) - capacity if over and capacity is not None else 0}

    def _evac_shelter_view(self, facility_id: str, occupancy: Mapping[str, ShelterOccupancyRow],
                           known: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A shelter with its occupancy now; ``known`` (a zone's pick) names one the district no longer lists."""
        f = self._evac_shelters.get(facility_id)
        where = ({"id": f.id, "name": f.name, "name_zh": f.name_zh, "lon": f.lon, "lat": f.lat} if f is not None else
                 {k: (known or {}).get(k) for k in ("name", "name_zh", "lon", "lat")} | {"id": facility_id})
        return {**where, **self._evac_shelter_now(facility_id, occupancy)}

    def shelters_view(self) -> dict[str, Any]:
        """Every shelter of the district: capacity, occupancy, and the open zones it is assigned to."""
        occupancy = self._evac_occupancy()
        assigned: dict[str, list[int]] = {}
        with self.store.session() as s:
            for z in s.scalars(select(EvacZoneRow).where(EvacZoneRow.state == "open").order_by(EvacZoneRow.id)):
                for pick in z.shelters.get("shelters") or []:
                    assigned.setdefault(pick["id"], []).append(z.id)
        out = [{**self._evac_shelter_view(fid, occupancy), "zones": assigned.get(fid, [])}
               for fid in sorted(self._evac_shelters)]
        return {"shelters": out, "capacity": sum(v["capacity"] or 0 for v in out),
                "occupancy": sum(v["occupancy"] or 0 for v in out),
                "over_capacity": [v["id"] for v in out if v["over_capacity"]]}

    def record_shelter_occupancy(self, facility_id: str, *, by: str, people: int, note: str = "") -> dict[str, Any]:
        """Record how many people a shelter holds now; going over its capacity raises ``shelter.over_capacity``
        (once per crossing: again only after it was back within capacity)."""
        f = self._evac_shelters.get(facility_id)
        if f is None:
            raise NotFound(f"no shelter {facility_id!r} in {self.district.name} (GET /api/shelters lists them)")
        if isinstance(people, bool) or not isinstance(people, int) or people < 0:
            raise _refused(f"people must be a non-negative whole number, got {people!r}")
        before = self._evac_occupancy().get(facility_id)
        over = f.capacity is not None and people > f.capacity
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            s.add(ShelterOccupancyRow(facility_id=facility_id, people=people, capacity=f.capacity, over_capacity=over,
                                      by=by, at=now, note=note))
        view = self._evac_shelter_view(facility_id, self._evac_occupancy())
        self.bus.publish("shelter.occupancy", {**view, "note": note})
        if over and not (before is not None and before.over_capacity):
            log.warning("shelter %s over capacity: %d people, %d places", facility_id, people, f.capacity)
            self.bus.publish("shelter.over_capacity", {
                **view, "reason": f"{f.name} holds {people} people, {people - (f.capacity or 0)} over its capacity "
                                  f"of {f.capacity}",
                "reason_zh": f"{f.name_zh}现有 {people} 人，超出容量（{f.capacity} 人）{people - (f.capacity or 0)} 人"})
        return view

    # -- reports up ---------------------------------------------------------------------------------
    def issue_report(self, incident_id: int, *, by: str, kind: str, note: str = "") -> dict[str, Any]:
        """Issue the incident's next report (首报 / 续报 n / 终报): a snapshot, frozen, with its text."""
        row = self.store.incident(incident_id)  # NotFound → 404
        if kind not in REPORT_KINDS:
            raise _refused(f"unknown report kind {kind!r}; one of {', '.join(REPORT_KINDS)}")
        with self.store.session() as s:
            issued = [r.kind for r in s.scalars(select(ReportRow).where(ReportRow.incident_id == incident_id)
                                                .order_by(ReportRow.seq))]
        try:
            number = next_report(issued, kind)
        except ReportOrderError as err:
            raise _conflict(f"incident {incident_id}: {err}") from None
        now = self.clock.now()
        due = self._evac_initial_due(row) if kind == "initial" else None
        report = {"seq": number.seq, "kind": kind, "follow_up": number.follow_up, "label": number.label,
                  "label_zh": number.label_zh, "by": by, "note": note, "issued_at": now.isoformat(),
                  "due_at": due.isoformat() if due else None, "on_time": None if due is None else now <= due}
        data = self._evac_report_data(row, report, now)
        text_zh, text_en = render_report(data)
        try:
            with self.store.session() as s, s.begin():
                r = ReportRow(incident_id=incident_id, seq=number.seq, kind=kind, follow_up=number.follow_up,
                              label=number.label, label_zh=number.label_zh, by=by, issued_at=now, due_at=due,
                              data=data, text_zh=text_zh, text_en=text_en)
                s.add(r)
        except IntegrityError:
            raise _conflict(f"incident {incident_id}: another report was issued meanwhile as number {number.seq}; "
                            f"look at its reports and issue again") from None
        if kind == "initial":
            self._evac_reported.add(incident_id)
        log.info("incident %d: %s issued by %s", incident_id, number.label, by)
        view = _report_view(r)
        self.bus.publish("report.issued", view)
        return view

    def incident_reports(self, incident_id: int) -> dict[str, Any]:
        """An incident's reports in order, when its initial report is (or was) due, and what may come next."""
        row = self.store.incident(incident_id)
        with self.store.session() as s:
            rows = list(s.scalars(select(ReportRow).where(ReportRow.incident_id == incident_id)
                                  .order_by(ReportRow.seq)).all())
            overdue = s.scalar(select(ReportOverdueRow).where(ReportOverdueRow.incident_id == incident_id))
        kinds = [r.kind for r in rows]
        allowed = []
        for kind in REPORT_KINDS:
            try:
                next_report(kinds, kind)
                allowed.append(kind)
            except ReportOrderError:
                pass
        due = next((r.due_at for r in rows if r.kind == "initial"), None) or self._evac_initial_due(row)
        return {"incident_id": incident_id,
                "reports": [{k: v for k, v in _report_view(r).items() if k not in ("data", "text_zh", "text_en")}
                            for r in rows],
                "initial_due_at": due.isoformat() if due else None,
                "initial_overdue": None if overdue is None else {"due_at": overdue.due_at.isoformat(),
                                                                 "noticed_at": overdue.noticed_at.isoformat(),
                                                                 "within_s": overdue.within_s},
                "next_kinds": allowed}

    def report_view(self, report_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            r = s.get(ReportRow, report_id)
        if r is None:
            raise NotFound(f"report {report_id} does not exist")
        return _report_view(r)

    def report_text(self, report_id: int) -> str:
        """The report as sent: the Chinese text, then the English."""
        view = self.report_view(report_id)
        return view["text_zh"] + "\n" + view["text_en"]

    def _evac_initial_due(self, row: IncidentRow) -> datetime | None:
        within = float(getattr(self.settings, "report_initial_within_s", REPORT_INITIAL_WITHIN_S))
        return initial_report_due(row.level, row.detail.get("levels") or [], row.opened_at, within)

    def _evac_local(self, when: datetime | str | None) -> str | None:
        if when is None:
            return None
        t = datetime.fromisoformat(when) if isinstance(when, str) else when
        return t.astimezone(self._evac_tz).strftime(_LOCAL_FORMAT)

    def _evac_place(self, row: IncidentRow) -> tuple[str, str]:
        place = row.detail.get("place")
        if isinstance(place, Mapping) and place.get("name"):
            return str(place["name"]), str(place.get("name_zh") or place["name"])
        if isinstance(place, str) and place:
            return place, str(row.detail.get("place_zh") or place)
        spec = self.registry.get(row.sensor_id) if row.sensor_id else None
        if spec is not None:
            return spec.name, spec.name_zh or spec.name
        at = f"{row.lon:.5f}, {row.lat:.5f}"
        return at, at

    def _evac_report_data(self, row: IncidentRow, report: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The structured snapshot of an incident a report freezes (``render_report`` writes its text)."""
        level = Level(row.level)
        life = self.life_view(row)
        declared = life.get("declared_response")
        if declared:
            declared = {**declared, "at_local": self._evac_local(declared.get("at"))}
        place, place_zh = self._evac_place(row)
        title = row.detail.get("title") or f"incident #{row.id}"
        zones = self._evac_incident_zones(row.id, self._evac_occupancy())
        totals = _totals(zones)
        tasks = [self.task_view(t) for t in self.store.tasks(incident_id=row.id)]
        plans = self.store.plans(incident_id=row.id)
        d = self.district
        return {
            "report": report,
            "sender": f"Emergency Management Bureau of {d.name}", "sender_zh": f"{d.name_zh}应急管理局",
            "as_of": now.isoformat(), "as_of_local": self._evac_local(now),
            "incident": {"id": row.id, "kind": row.kind, "kind_zh": KINDS.get(row.kind, row.kind),
                         "level": level.colour, "level_zh": level.colour_zh, "title": title,
                         "title_zh": row.detail.get("title_zh") or title, "place": place, "place_zh": place_zh,
                         "lon": row.lon, "lat": row.lat, "status": row.status,
                         "opened_at": row.opened_at.isoformat(), "opened_at_local": self._evac_local(row.opened_at)},
            "response": {"declared": declared, "advice": life.get("response_advice")},
            "evacuation": {**{k: v for k, v in totals.items() if k not in ("missing", "injured", "dead")},
                           "zones": [{"id": z["id"], "name": z["name"], "name_zh": z["name_zh"], "state": z["state"],
                                      "population_estimate": z["population"]["people"],
                                      "counted": z["figures"] is not None,
                                      "evacuated": (z["figures"] or {}).get("evacuated"),
                                      "remaining": (z["figures"] or {}).get("remaining")} for z in zones]},
            "casualties": {k: totals[k] for k in ("dead", "injured", "missing")},
            "departments": {"total": len(tasks), "by_status": dict(sorted(Counter(t["status"] for t in tasks).items())),
                            "tasks": [{"id": t["id"], "department": t["department"],
                                       "department_name": t["department_name"],
                                       "department_name_zh": t["department_name_zh"], "status": t["status"]}
                                      for t in tasks]},
            "vehicles": {"total": len(plans), "by_state": dict(sorted(Counter(p.state for p in plans).items())),
                         "plans": [{"id": p.id, "vehicle": p.vehicle, "task_key": p.task_key, "state": p.state}
                                   for p in plans]},
        }

    # -- the initial report's deadline -------------------------------------------------------------
    async def _evacuation_tick(self, now: datetime) -> None:
        """Called about every second of service time by the service's linkage loop."""
        self._evac_check_overdue(now)

    def _evac_check_overdue(self, now: datetime) -> None:
        """Every incident of orange or above, not closed, past its initial report's deadline without one:
        ``report.overdue`` once."""
        within = float(getattr(self.settings, "report_initial_within_s", REPORT_INITIAL_WITHIN_S))
        q = select(IncidentRow).where(IncidentRow.status != Status.CLOSED.value, IncidentRow.level >= int(Level.ORANGE))
        with self.store.session() as s:
            rows = [r for r in s.scalars(q).all() if r.id not in self._evac_reported and r.id not in self._evac_overdue]
        for row in rows:
            due = initial_report_due(row.level, row.detail.get("levels") or [], row.opened_at, within)
            if due is not None and now >= due:
                self._evac_mark_overdue(row, due, now, within)

    def _evac_mark_overdue(self, row: IncidentRow, due: datetime, now: datetime, within: float) -> None:
        """Record the overdue initial report once (unique per incident in the store), then tell."""
        try:
            with self.store.session() as s, s.begin():
                if s.scalar(select(ReportRow.id).where(ReportRow.incident_id == row.id, ReportRow.kind == "initial")):
                    self._evac_reported.add(row.id)  # issued by another replica
                    return
                s.add(ReportOverdueRow(incident_id=row.id, due_at=due, noticed_at=now, within_s=within))
        except IntegrityError:
            self._evac_overdue.add(row.id)  # noticed already (before a restart, or by another replica)
            return
        self._evac_overdue.add(row.id)
        level = Level(row.level)
        late_s = round((now - due).total_seconds(), 1)
        title = row.detail.get("title") or f"incident #{row.id}"
        log.warning("incident %d: initial report overdue since %s", row.id, due.isoformat())
        self.bus.publish("report.overdue", {
            "incident_id": row.id, "title": title, "title_zh": row.detail.get("title_zh") or title,
            "level": level.colour, "level_zh": level.colour_zh, "due_at": due.isoformat(), "within_s": within,
            "late_s": late_s, "time": now.isoformat(),
            "reason": f"no initial report (首报) {within:.0f} s after the incident became {level.colour}",
            "reason_zh": f"事件达到{level.colour_zh}预警后 {within / 60:.0f} 分钟内未报送首报"})


def _totals(zones: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums over an incident's zones (their latest figures; a figure not known counts 0)."""
    out: dict[str, Any] = {"zones_total": len(zones), "zones_open": sum(1 for z in zones if z["state"] == "open"),
                           "zones_counted": sum(1 for z in zones if z["figures"] is not None),
                           "population_estimate": sum(int(z["population"]["people"]) for z in zones)}
    for key in ("evacuated", "remaining", "sheltered", "missing", "injured", "dead"):
        out[key] = sum(int((z["figures"] or {}).get(key) or 0) for z in zones)
    out["note"] = ("Sums of the zones' latest counts; the population is the sum of the zones' estimates (people in "
                   "overlapping zones are counted in each).")
    out["note_zh"] = "各转移区最新统计之和；人口为各区估算值之和（区域重叠处重复计算）。"
    return out


def _report_view(r: ReportRow) -> dict[str, Any]:
    return {"id": r.id, "incident_id": r.incident_id, "seq": r.seq, "kind": r.kind, "follow_up": r.follow_up,
            "label": r.label, "label_zh": r.label_zh, "by": r.by, "issued_at": r.issued_at.isoformat(),
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "on_time": None if r.due_at is None else r.issued_at <= r.due_at,
            "data": r.data, "text_zh": r.text_zh, "text_en": r.text_en, "text_url": f"/api/reports/{r.id}.txt"}
