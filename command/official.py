"""Official warnings in, from the meteorological and hydrological services: CAP 1.2 parsing.

The services, not this system, issue warning signals. Their CAP 1.2 messages (OASIS Common
Alerting Protocol v1.2, 2010; China's national early-warning release system publishes CAP)
are parsed into ``OfficialWarning`` records and shown *apart* from the system's own
assessments. Pure: XML bytes in, frozen dataclasses out; a message that is not valid CAP
raises ``CapError`` with what is wrong.

Colour: CAP has no colour element. It is taken from a ``parameter`` (``colour``/``color``/
``level``/``预警级别``) when the sender gives one, else from the event or headline text (Chinese
signals are named like 暴雨黄色预警, "Rainstorm Yellow Warning"), else mapped from ``severity``
(Minor → blue, Moderate → yellow, Severe → orange, Extreme → red; a project mapping).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

__all__ = ["CAP_NS", "CapError", "OfficialArea", "OfficialWarning", "parse_cap"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_N = {"cap": CAP_NS}
_MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
_SEVERITY_COLOUR = {"Minor": "blue", "Moderate": "yellow", "Severe": "orange", "Extreme": "red"}
_COLOUR_WORDS = (("red", ("red", "红色")), ("orange", ("orange", "橙色")), ("yellow", ("yellow", "黄色")),
                 ("blue", ("blue", "蓝色")))
MAX_CAP_BYTES = 1_000_000


class CapError(ValueError):
    """A message that is not usable CAP 1.2."""


@dataclass(frozen=True, slots=True)
class OfficialArea:
    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # rings of (lon, lat)
    circles: tuple[tuple[float, float, float], ...] = ()  # (lon, lat, radius_km)
    geocodes: tuple[tuple[str, str], ...] = ()

    def to_geojson(self) -> dict[str, Any] | None:
        if not self.polygons:
            return None
        return {"type": "MultiPolygon", "coordinates": [[[list(p) for p in ring]] for ring in self.polygons]}


@dataclass(frozen=True, slots=True)
class OfficialWarning:
    """One CAP alert (its first info block in the preferred language)."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: tuple[str, ...]  # identifiers this message updates or cancels
    event: str
    headline: str
    description: str
    severity: str
    urgency: str
    certainty: str
    colour: str | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str
    language: str
    areas: tuple[OfficialArea, ...] = field(default=())

    def active(self, now: datetime) -> bool:
        return self.msg_type != "Cancel" and (self.expires is None or now < self.expires)

    def to_wire(self) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {
            "identifier": self.identifier, "sender": self.sender, "sender_name": self.sender_name,
            "sent": iso(self.sent), "status": self.status, "msg_type": self.msg_type,
            "references": list(self.references), "event": self.event, "headline": self.headline,
            "description": self.description, "severity": self.severity, "urgency": self.urgency,
            "certainty": self.certainty, "colour": self.colour, "onset": iso(self.onset),
            "expires": iso(self.expires), "language": self.language,
            "areas": [{"description": a.description, "geometry": a.to_geojson(),
                       "circles": [list(c) for c in a.circles], "geocodes": [list(g) for g in a.geocodes]}
                      for a in self.areas],
            "official": True,
        }


def _text(el: Element | None, path: str, *, required: bool = False, where: str = "alert") -> str:
    node = el.find(path, _N) if el is not None else None
    value = (node.text or "").strip() if node is not None else ""
    if required and not value:
        raise CapError(f"{where}: <{path.removeprefix('cap:')}> is required")
    return value


def _time(value: str, what: str) -> datetime:
    # CAP 1.2 §3.3.2: dateTime with an explicit offset, e.g. 2026-07-10T08:00:00+08:00 ("Z" is not allowed,
    # but accepted here: a parser should be lenient in what it accepts)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CapError(f"<{what}> {value!r} is not a CAP date-time") from None
    if t.tzinfo is None:
        raise CapError(f"<{what}> {value!r} has no time-zone offset")
    return t.astimezone(timezone.utc)


def _points(text: str, what: str) -> list[tuple[float, float]]:
    # CAP polygon: "lat,lon lat,lon ..." (WGS 84), first and last the same (§3.2.4)
    out = []
    for pair in text.split():
        try:
            lat_s, lon_s = pair.split(",")
            lat, lon = float(lat_s), float(lon_s)
        except ValueError:
            raise CapError(f"<{what}> point {pair!r} is not 'lat,lon'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise CapError(f"<{what}> point {pair!r} is outside WGS 84")
        out.append((lon, lat))
    if len(out) < 4 or out[0] != out[-1]:
        raise CapError(f"<{what}> needs at least 4 points with the first repeated at the end")
    return out


def _colour(info: Element) -> str | None:
    for p in info.findall("cap:parameter", _N):
        name = _text(p, "cap:valueName").lower()
        if name in ("colour", "color", "level", "预警级别", "预警颜色"):
            value = _text(p, "cap:value").lower()
            for colour, words in _COLOUR_WORDS:
                if any(w in value for w in words):
                    return colour
    for text in (_text(info, "cap:event"), _text(info, "cap:headline")):
        lowered = text.lower()
        for colour, words in _COLOUR_WORDS:
            if any(re.search(rf"\b{w}\b" if w.isascii() else re.escape(w), lowered) for w in words):
                return colour
    return _SEVERITY_COLOUR.get(_text(info, "cap:severity"))


def parse_cap(xml: bytes, *, prefer_language: str = "zh-CN") -> OfficialWarning:
    """Parse one CAP 1.2 ``<alert>``; the info block in ``prefer_language`` wins, else the first."""
    if len(xml) > MAX_CAP_BYTES:
        raise CapError(f"a CAP message may be at most {MAX_CAP_BYTES} bytes")
    try:
        root = SafeET.fromstring(xml)
    except DefusedXmlException as err:
        raise CapError(f"refused: {type(err).__name__} (entities and DTDs are not allowed)") from None
    except SafeET.ParseError as err:
        raise CapError(f"not XML: {err}") from None
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapError(f"not a CAP 1.2 alert: root element is {root.tag!r} (expected {{{CAP_NS}}}alert)")
    identifier = _text(root, "cap:identifier", required=True)
    sender = _text(root, "cap:sender", required=True)
    sent = _time(_text(root, "cap:sent", required=True), "sent")
    status = _text(root, "cap:status", required=True)
    msg_type = _text(root, "cap:msgType", required=True)
    if msg_type not in _MSG_TYPES:
        raise CapError(f"<msgType> {msg_type!r} is not one of {', '.join(_MSG_TYPES)}")
    # references: "sender,identifier,sent" triples separated by spaces (§3.2.1)
    references = tuple(r.split(",")[1] for r in _text(root, "cap:references").split() if r.count(",") == 2)
    infos = root.findall("cap:info", _N)
    if not infos and msg_type != "Cancel":
        raise CapError("the alert has no <info> block")
    info = next((i for i in infos if _text(i, "cap:language").lower() == prefer_language.lower()),
                infos[0] if infos else None)
    areas = []
    for a in (info.findall("cap:area", _N) if info is not None else []):
        desc = _text(a, "cap:areaDesc", required=True, where="area")
        polygons = tuple(tuple(_points((p.text or "").strip(), "polygon")) for p in a.findall("cap:polygon", _N))
        circles = []
        for c in a.findall("cap:circle", _N):
            try:
                centre, radius = (c.text or "").split()
                lat, lon = (float(v) for v in centre.split(","))
                circles.append((lon, lat, float(radius)))
            except ValueError:
                raise CapError(f"<circle> {c.text!r} is not 'lat,lon radius_km'") from None
        geocodes = tuple((_text(g, "cap:valueName"), _text(g, "cap:value")) for g in a.findall("cap:geocode", _N))
        areas.append(OfficialArea(desc, polygons, tuple(circles), geocodes))
    onset = _text(info, "cap:onset") or _text(info, "cap:effective") if info is not None else ""
    expires = _text(info, "cap:expires") if info is not None else ""
    return OfficialWarning(
        identifier=identifier, sender=sender, sent=sent, status=status, msg_type=msg_type, references=references,
        event=_text(info, "cap:event", required=info is not None, where="info") if info is not None else "",
        headline=_text(info, "cap:headline"), description=_text(info, "cap:description"),
        severity=_text(info, "cap:severity"), urgency=_text(info, "cap:urgency"),
        certainty=_text(info, "cap:certainty"), colour=_colour(info) if info is not None else None,
        onset=_time(onset, "onset") if onset else None, expires=_time(expires, "expires") if expires else None,
        sender_name=_text(info, "cap:senderName"), language=_text(info, "cap:language") or "en-US",
        areas=tuple(areas))
