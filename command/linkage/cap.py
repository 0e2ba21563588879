"""CAP 1.2 out: the bureau's alerts as OASIS Common Alerting Protocol messages, and their Atom feed.

Public and inter-agency warnings leave Yingji as CAP 1.2 (OASIS Standard, 1 July 2010; the
section numbers below are that document's). This module is the pure builder: frozen
dataclasses in (``CapMessage`` → ``Info`` → ``Area``), UTF-8 XML bytes out. Who approves a
message, where it is stored and how it is served are the service's business.

- ``info_for_incident`` turns an incident (kind, ``Level``, names, geometry) into the zh-CN and
  en-US ``Info`` blocks. CAP has no colours: the level is mapped to ``<severity>`` by a project
  mapping (``SEVERITY_BY_LEVEL``) and the colour and response level travel as ``<parameter>``s.
  The system's own assessments say so in their headline and description, so that nobody takes
  them for the meteorological or hydrological services' official signals.
- Rules the XSD cannot express (§3.2.1 references for Update/Cancel, §3.2.4 closed polygons
  of at least 4 points, §3.3.2 dates with a numeric offset) are checked when the dataclasses
  are built and by ``check_rules``; ``to_xml`` refuses a message that breaks them.
- ``validate`` checks finished XML against the official OASIS XSD (with lxml: libxml2's XSD
  validator, already in the environment through pymavlink, reports every error with its line)
  and against the same rules, and raises ``CapValidationError`` listing every problem.
- ``atom_feed`` lists the latest message of each alert as an Atom 1.0 feed (RFC 4287), each
  entry linking to its CAP document, the usual way CAP alerts are published.

Geometry: positions come in as WGS 84 lon/lat (GeoJSON order, shapely) and go out in CAP's
"lat,lon" order. CAP cannot express holes: only a polygon's exterior ring is sent, which
warns the hole too (the safe side for a warning). A ring longer than ``MAX_POLYGON_POINTS`` is
simplified to a covering ring within that limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree as ET

from lxml import etree as lxml_etree
from shapely import get_coordinates
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from ..official import CAP_NS
from ..risk.rules import Level

__all__ = [
    "ASSESSMENT_LABEL",
    "ASSESSMENT_LABEL_ZH",
    "ATOM_NS",
    "CAP_MIME",
    "CAP_NS",
    "KINDS",
    "MAX_POLYGON_POINTS",
    "SEVERITY_BY_LEVEL",
    "Area",
    "AtomEntry",
    "Basis",
    "CapMessage",
    "CapOutError",
    "CapRuleError",
    "CapValidationError",
    "Circle",
    "FeedError",
    "Info",
    "KindTerms",
    "Reference",
    "atom_feed",
    "cap_datetime",
    "check_rules",
    "entry_for",
    "info_for_incident",
    "severity_for",
    "to_xml",
    "urgency_certainty",
    "validate",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIME = "application/cap+xml"  # the media type CAP feeds use for a message's own document

# Value lists of the CAP 1.2 schema (§3.2). Ack and Error message types are not produced here.
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
              "CBRNE", "Other")
RESPONSE_TYPES = ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# CAP sets no limit on a polygon's length, but receivers do (the US Wireless Emergency Alerts
# interface, J-STD-101, takes at most 100 points per polygon); 100 pairs, the closing one included,
# also keeps a district-sized outline readable.
MAX_POLYGON_POINTS = 100
COORD_DECIMALS = 5  # 1e-5 degree: about 1 m, finer than any warning area needs

ASSESSMENT_LABEL = "Yingji assessment (not an official meteorological or hydrological warning)"
ASSESSMENT_LABEL_ZH = "系统研判（非气象/水文部门正式预警）"

# §3.2.1: an identifier or sender has no spaces, commas, "<" or "&".
_BAD_ID = re.compile(r"[\s,<&]")
# Characters XML 1.0 cannot carry at all (§2.2 of XML 1.0); ElementTree would write them unescaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")  # xs:language (RFC 3066 tag)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")  # an absolute URI/IRI: scheme, colon, the rest
_CAP_TIME = re.compile(r"\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")  # the XSD's pattern for times


class CapOutError(ValueError):
    """Base of the errors of outgoing CAP and its feed."""


class CapRuleError(CapOutError):
    """A message (or part of one) that breaks a CAP 1.2 rule; ``problems`` lists each broken rule."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class CapValidationError(CapOutError):
    """An XML document that is not valid CAP 1.2; ``errors`` lists each schema or rule error."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("not valid CAP 1.2:\n" + "\n".join(f"- {e}" for e in self.errors))


class FeedError(CapOutError):
    """An Atom feed that cannot be valid Atom 1.0."""


# --- small checks ----------------------------------------------------------------------------


def _text(value: object, what: str, *, required: bool = True) -> None:
    if not isinstance(value, str):
        raise CapRuleError(f"{what} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise CapRuleError(f"{what} is required and must not be blank")
    bad = _NOT_XML.search(value)
    if bad:
        raise CapRuleError(f"{what} contains the character U+{ord(bad.group()):04X}, which XML cannot carry")


def _optional_text(value: object, what: str) -> None:
    if value is not None:
        _text(value, what)


def _one_of(value: object, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise CapRuleError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def _token(value: object, what: str) -> None:
    _text(value, what)
    assert isinstance(value, str)
    if _BAD_ID.search(value):
        raise CapRuleError(f"{what} {value!r} must not contain spaces, commas, '<' or '&' (CAP 1.2 §3.2.1)")


def _aware(value: object, what: str) -> None:
    if not isinstance(value, datetime):
        raise CapRuleError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise CapRuleError(f"{what} {value.isoformat()} is a naive datetime: CAP times need a time-zone offset")


def _tuple(value: object, what: str) -> tuple:
    # A bare string is a sequence too: ("Met") instead of ("Met",) would become ("M", "e", "t").
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise CapRuleError(f"{what} must be a sequence (a tuple or a list), got {type(value).__name__}")
    return tuple(value)


def _pairs(value: object, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in _tuple(value, what):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise CapRuleError(f"{what}: {item!r} is not a (valueName, value) pair")
        name, text = item
        _text(name, f"{what} valueName")
        _text(text, f"{what} value of {name!r}", required=False)
        out.append((name, text))
    return tuple(out)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass's own field in __post_init__


def cap_datetime(value: datetime, tz: tzinfo | None = None) -> str:
    """A CAP date-time (§3.3.2): whole seconds and a numeric offset; UTC is written ``-00:00``.

    >>> cap_datetime(datetime(2026, 7, 12, 0, 30, 15, 999000, tzinfo=ZoneInfo("UTC")), ZoneInfo("Asia/Shanghai"))
    '2026-07-12T08:30:15+08:00'
    """
    _aware(value, "date-time")
    t = value.astimezone(tz) if tz is not None else value
    offset = t.utcoffset()
    assert offset is not None
    if offset % timedelta(minutes=1):
        raise CapRuleError(f"the offset {offset} of {value.isoformat()} is not whole minutes; CAP writes +hh:mm")
    minutes = int(offset / timedelta(minutes=1))
    # §3.3.2: no letter zone designators ("Z"); UTC is written with the offset -00:00.
    sign = "-" if minutes <= 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f"{sign}{hh:02d}:{mm:02d}")


def _num(value: float) -> str:
    text = f"{round(value, COORD_DECIMALS):.{COORD_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _group(values: Sequence[str], what: str) -> str:
    # §3.2.1 (addresses, incidents): a space-delimited list; a value with spaces is double-quoted.
    out = []
    for v in values:
        _text(v, what)
        if '"' in v:
            raise CapRuleError(f"{what} {v!r} must not contain a double quote")
        out.append(f'"{v}"' if any(c.isspace() for c in v) else v)
    return " ".join(out)


# --- geometry ---------------------------------------------------------------------------------

Ring = tuple[tuple[float, float], ...]  # (lon, lat) pairs, WGS 84, first == last


def _check_ring(ring: Ring, what: str) -> None:
    if len(ring) < 4:
        raise CapRuleError(f"{what} has {len(ring)} points; CAP needs at least 4, the first repeated at the end "
                           "(CAP 1.2 §3.2.4)")
    if ring[0] != ring[-1]:
        raise CapRuleError(f"{what} is not closed: it starts at {ring[0]} and ends at {ring[-1]} (CAP 1.2 §3.2.4)")
    if len(ring) > MAX_POLYGON_POINTS:
        raise CapRuleError(f"{what} has {len(ring)} points, more than {MAX_POLYGON_POINTS}; "
                           "build the area with Area.from_geometry to simplify it")
    for lon, lat in ring:
        _check_position(lon, lat, what)
    shape = Polygon(ring)
    if shape.area <= 0:
        raise CapRuleError(f"{what} encloses no area")
    if not shape.is_valid:
        raise CapRuleError(f"{what} is not a simple ring: {explain_validity(shape)}")


def _check_position(lon: object, lat: object, what: str) -> None:
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (lon, lat)):
        raise CapRuleError(f"{what}: position ({lon!r}, {lat!r}) is not a pair of finite numbers")
    assert isinstance(lon, int | float) and isinstance(lat, int | float)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise CapRuleError(f"{what}: position ({lon}, {lat}) is outside WGS 84 (lon -180..180, lat -90..90); "
                           "positions are (lon, lat)")


def _exterior(poly: Polygon) -> Ring:
    """The exterior ring, simplified to at most MAX_POLYGON_POINTS points, rounded to COORD_DECIMALS."""
    shell = Polygon(poly.exterior)
    if len(shell.exterior.coords) > MAX_POLYGON_POINTS:
        # Grow the outline by tol (mitred corners add no points), then drop points within tol
        # (Douglas-Peucker): the result stays within tol of the grown outline, so it still covers
        # the original; tol doubles until the ring is short enough.
        minx, miny, maxx, maxy = shell.bounds
        tol = max(maxx - minx, maxy - miny, 1e-9) / 10_000
        while True:
            cover = shell.buffer(tol, join_style="mitre").simplify(tol, preserve_topology=True)
            if isinstance(cover, Polygon) and len(cover.exterior.coords) <= MAX_POLYGON_POINTS:
                shell = Polygon(cover.exterior)
                break
            tol *= 2
    return tuple((float(round(x, COORD_DECIMALS)), float(round(y, COORD_DECIMALS)))
                 for x, y in get_coordinates(shell.exterior))


def _polygons_of(geometry: BaseGeometry | Sequence[Sequence[float]]) -> list[Polygon]:
    if isinstance(geometry, BaseGeometry):
        if geometry.is_empty:
            raise CapRuleError("the area geometry is empty")
        if isinstance(geometry, Polygon):
            parts = [geometry]
        elif isinstance(geometry, MultiPolygon | GeometryCollection):
            parts = [g for g in geometry.geoms if not g.is_empty]
            if not all(isinstance(g, Polygon) for g in parts):
                kinds = sorted({g.geom_type for g in parts if not isinstance(g, Polygon)})
                raise CapRuleError(f"an area geometry must be polygons; this one holds {', '.join(kinds)} "
                                   "(use circles for points)")
        else:
            raise CapRuleError(f"an area geometry must be a Polygon or MultiPolygon, got a {geometry.geom_type} "
                               "(use circles for points)")
    else:
        coords = [tuple(p) for p in _tuple(geometry, "area coordinates")]
        if any(len(p) != 2 for p in coords):
            raise CapRuleError("area coordinates must be (lon, lat) pairs")
        for lon, lat in coords:
            _check_position(lon, lat, "area coordinates")
        if len(coords) < 3:
            raise CapRuleError(f"area coordinates have {len(coords)} points; a polygon needs at least 3")
        parts = [Polygon(coords)]  # shapely closes the ring
    for i, p in enumerate(parts):
        if not p.is_valid:
            raise CapRuleError(f"area polygon {i + 1} is not valid: {explain_validity(p)}")
    return parts


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle (§3.2.4 ``<circle>``): centre in WGS 84 and radius in km; written "lat,lon radius"."""

    lon: float
    lat: float
    radius_km: float

    def __post_init__(self) -> None:
        _check_position(self.lon, self.lat, "circle centre")
        if not (isinstance(self.radius_km, int | float) and math.isfinite(self.radius_km) and self.radius_km > 0):
            raise CapRuleError(f"circle radius_km must be a positive number, got {self.radius_km!r}")

    def render(self) -> str:
        return f"{_num(self.lat)},{_num(self.lon)} {_num(self.radius_km)}"


@dataclass(frozen=True, slots=True)
class Area:
    """One ``<area>``: a description and polygons (closed (lon, lat) rings), circles and geocodes.

    Build it from shapely or plain coordinates with ``Area.from_geometry``; the constructor takes
    rings that already follow CAP (closed, 4 to MAX_POLYGON_POINTS points).
    """

    description: str
    polygons: tuple[Ring, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _text(self.description, "areaDesc")
        rings = []
        for i, ring in enumerate(_tuple(self.polygons, "polygons")):
            what = f"polygon {i + 1} of area {self.description!r}"
            points = _tuple(ring, what)
            if not all(isinstance(p, tuple | list) and len(p) == 2 for p in points):
                raise CapRuleError(f"{what}: points must be (lon, lat) pairs")
            rings.append(tuple(tuple(p) for p in points))
            _check_ring(rings[-1], what)
        circles = _tuple(self.circles, "circles")
        for c in circles:
            if not isinstance(c, Circle):
                raise CapRuleError(f"circles of area {self.description!r} must be Circle, got {type(c).__name__}")
        _set(self, "polygons", tuple(rings))
        _set(self, "circles", circles)
        _set(self, "geocodes", _pairs(self.geocodes, "geocode"))

    @classmethod
    def from_geometry(cls, description: str, geometry: BaseGeometry | Sequence[Sequence[float]] | None = None, *,
                      circles: Sequence[Circle] = (), geocodes: Sequence[tuple[str, str]] = ()) -> Area:
        """An area from a shapely (Multi)Polygon or a list of (lon, lat) pairs, in WGS 84.

        Exterior only: CAP polygons have no holes, so a hole is warned with its surroundings.
        Each part becomes one ``<polygon>``; a ring of more than MAX_POLYGON_POINTS points is
        replaced by a simplified ring that covers it (up to the 1e-5° rounding of coordinates).

        >>> Area.from_geometry("Square", [(106.5, 29.6), (106.6, 29.6), (106.6, 29.7), (106.5, 29.7)]).polygons[0][:2]
        ((106.5, 29.6), (106.6, 29.6))
        """
        rings = () if geometry is None else tuple(_exterior(p) for p in _polygons_of(geometry))
        return cls(description, rings, tuple(circles), tuple(geocodes))


# --- the message ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Info:
    """One ``<info>`` block, in one language. Fields follow the schema's order."""

    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    response_types: tuple[str, ...] = ()
    audience: str | None = None
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[Area, ...] = ()

    def __post_init__(self) -> None:
        where = f"info ({self.language})"
        _text(self.language, "info language")
        if not _LANGUAGE.fullmatch(self.language):
            raise CapRuleError(f"info language {self.language!r} is not a language tag such as zh-CN or en-US")
        categories = _tuple(self.categories, f"{where} categories")
        if not categories:
            raise CapRuleError(f"{where}: at least one category is required")
        for c in categories:
            _one_of(c, CATEGORIES, f"{where} category")
        _text(self.event, f"{where} event")
        _one_of(self.urgency, URGENCIES, f"{where} urgency")
        _one_of(self.severity, SEVERITIES, f"{where} severity")
        _one_of(self.certainty, CERTAINTIES, f"{where} certainty")
        responses = _tuple(self.response_types, f"{where} response_types")
        for r in responses:
            _one_of(r, RESPONSE_TYPES, f"{where} responseType")
        for name in ("audience", "sender_name", "headline", "description", "instruction", "contact"):
            _optional_text(getattr(self, name), f"{where} {name}")
        for name in ("effective", "onset", "expires"):
            if getattr(self, name) is not None:
                _aware(getattr(self, name), f"{where} {name}")
        if self.web is not None:
            _text(self.web, f"{where} web")
            if not _SCHEME.fullmatch(self.web):
                raise CapRuleError(f"{where} web {self.web!r} must be a full absolute URI (CAP 1.2 §3.2.2)")
        areas = _tuple(self.areas, f"{where} areas")
        for a in areas:
            if not isinstance(a, Area):
                raise CapRuleError(f"{where} areas must be Area, got {type(a).__name__}")
        _set(self, "categories", categories)
        _set(self, "response_types", responses)
        _set(self, "parameters", _pairs(self.parameters, f"{where} parameter"))
        _set(self, "areas", areas)


@dataclass(frozen=True, slots=True)
class Reference:
    """An earlier message, as ``<references>`` names it: "sender,identifier,sent" (§3.2.1)."""

    sender: str
    identifier: str
    sent: datetime

    def __post_init__(self) -> None:
        _token(self.sender, "reference sender")
        _token(self.identifier, "reference identifier")
        _aware(self.sent, "reference sent")

    @classmethod
    def to(cls, message: CapMessage) -> Reference:
        """The reference to ``message``."""
        return cls(message.sender, message.identifier, message.sent)

    def render(self, tz: tzinfo | None = None) -> str:
        # The sent time must be written as the earlier message wrote it: render both with the same tz.
        return f"{self.sender},{self.identifier},{cap_datetime(self.sent, tz)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CapMessage:
    """One ``<alert>`` message. ``status``, ``msg_type`` and ``scope`` have no defaults on purpose:
    an exercise sent as Actual, or a private message sent as Public, is the costly mistake."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    source: str | None = None
    restriction: str | None = None
    addresses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[Reference, ...] = ()
    incidents: tuple[str, ...] = ()
    infos: tuple[Info, ...] = ()

    def __post_init__(self) -> None:
        _token(self.identifier, "identifier")
        _token(self.sender, "sender")
        _aware(self.sent, "sent")
        _one_of(self.status, STATUSES, "status")
        _one_of(self.msg_type, MSG_TYPES, "msgType")
        _one_of(self.scope, SCOPES, "scope")
        for name in ("source", "restriction", "note"):
            _optional_text(getattr(self, name), name)
        addresses = _tuple(self.addresses, "addresses")
        _group(addresses, "address")
        codes = _tuple(self.codes, "codes")
        for c in codes:
            _text(c, "code")
        references = _tuple(self.references, "references")
        for r in references:
            if not isinstance(r, Reference):
                raise CapRuleError(f"references must be Reference, got {type(r).__name__} "
                                   "(use Reference(sender, identifier, sent) or Reference.to(message))")
        incidents = _tuple(self.incidents, "incidents")
        _group(incidents, "incident")
        infos = _tuple(self.infos, "infos")
        for i in infos:
            if not isinstance(i, Info):
                raise CapRuleError(f"infos must be Info, got {type(i).__name__}")
        _set(self, "addresses", addresses)
        _set(self, "codes", codes)
        _set(self, "references", references)
        _set(self, "incidents", incidents)
        _set(self, "infos", infos)


def _problems(msg: CapMessage) -> list[str]:
    out = []
    if msg.msg_type in ("Update", "Cancel") and not msg.references:
        article = "an" if msg.msg_type == "Update" else "a"
        out.append(f"{article} {msg.msg_type} must name the message(s) it replaces in references (CAP 1.2 §3.2.1)")
    for r in msg.references:
        if (r.sender, r.identifier) == (msg.sender, msg.identifier):
            out.append(f"the message references itself ({r.identifier})")
        if r.sent > msg.sent:
            out.append(f"reference {r.identifier} was sent after this message ({r.sent} > {msg.sent})")
    if msg.scope == "Restricted" and not msg.restriction:
        out.append("scope Restricted needs a restriction text saying who may see it (CAP 1.2 §3.2.1)")
    if msg.scope != "Restricted" and msg.restriction:
        out.append(f"restriction is for scope Restricted, not {msg.scope}")
    if msg.scope == "Private" and not msg.addresses:
        out.append("scope Private needs addresses (CAP 1.2 §3.2.1)")
    if msg.msg_type in ("Alert", "Update") and not msg.infos:
        # CAP allows an info-less alert; an alert that says nothing is never what the bureau meant.
        out.append(f"an {msg.msg_type} needs at least one info block")
    for info in msg.infos:
        start = info.effective or msg.sent
        if info.expires is not None:
            if info.expires <= start:
                out.append(f"info ({info.language}) expires {info.expires} is not after "
                           f"{'effective' if info.effective else 'sent'} {start}")
            if info.onset is not None and info.onset > info.expires:
                out.append(f"info ({info.language}) onset {info.onset} is after expires {info.expires}")
    return out


def check_rules(msg: CapMessage) -> None:
    """Raise ``CapRuleError`` listing every CAP rule ``msg`` breaks across its fields (the XSD checks none)."""
    problems = _problems(msg)
    if problems:
        raise CapRuleError(f"CAP message {msg.identifier}: " + "; ".join(problems), problems)


# --- XML --------------------------------------------------------------------------------------


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        el.text = text
    return el


def _value_pair(parent: ET.Element, name: str, pair: tuple[str, str]) -> None:
    el = _sub(parent, name)
    _sub(el, "valueName", pair[0])
    _sub(el, "value", pair[1])


def to_xml(msg: CapMessage, *, tz: tzinfo | None = None) -> bytes:
    """The message as CAP 1.2 XML (UTF-8), elements in the schema's order; times in ``tz`` if given.

    Write every message of one alert with the same ``tz`` (the district's, e.g. Asia/Shanghai):
    a receiver matches ``<references>`` against the earlier ``<sent>`` text as written.
    Raises ``CapRuleError`` if the message breaks a CAP rule (``check_rules``).
    """
    check_rules(msg)
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", msg.identifier)
    _sub(alert, "sender", msg.sender)
    _sub(alert, "sent", cap_datetime(msg.sent, tz))
    _sub(alert, "status", msg.status)
    _sub(alert, "msgType", msg.msg_type)
    if msg.source is not None:
        _sub(alert, "source", msg.source)
    _sub(alert, "scope", msg.scope)
    if msg.restriction is not None:
        _sub(alert, "restriction", msg.restriction)
    if msg.addresses:
        _sub(alert, "addresses", _group(msg.addresses, "address"))
    for code in msg.codes:
        _sub(alert, "code", code)
    if msg.note is not None:
        _sub(alert, "note", msg.note)
    if msg.references:
        _sub(alert, "references", " ".join(r.render(tz) for r in msg.references))
    if msg.incidents:
        _sub(alert, "incidents", _group(msg.incidents, "incident"))
    for info in msg.infos:
        el = _sub(alert, "info")
        _sub(el, "language", info.language)
        for c in info.categories:
            _sub(el, "category", c)
        _sub(el, "event", info.event)
        for r in info.response_types:
            _sub(el, "responseType", r)
        _sub(el, "urgency", info.urgency)
        _sub(el, "severity", info.severity)
        _sub(el, "certainty", info.certainty)
        if info.audience is not None:
            _sub(el, "audience", info.audience)
        for name in ("effective", "onset", "expires"):
            t = getattr(info, name)
            if t is not None:
                _sub(el, name, cap_datetime(t, tz))
        for name, tag in (("sender_name", "senderName"), ("headline", "headline"), ("description", "description"),
                          ("instruction", "instruction"), ("web", "web"), ("contact", "contact")):
            if getattr(info, name) is not None:
                _sub(el, tag, getattr(info, name))
        for pair in info.parameters:
            _value_pair(el, "parameter", pair)
        for area in info.areas:
            a = _sub(el, "area")
            _sub(a, "areaDesc", area.description)
            for ring in area.polygons:
                _sub(a, "polygon", " ".join(f"{_num(lat)},{_num(lon)}" for lon, lat in ring))
            for circle in area.circles:
                _sub(a, "circle", circle.render())
            for pair in area.geocodes:
                _value_pair(a, "geocode", pair)
    ET.indent(alert, space="  ")  # whitespace between elements only; text content is untouched
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


# --- validation -------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _schema(path: str) -> lxml_etree.XMLSchema:
    return lxml_etree.XMLSchema(lxml_etree.parse(path, _parser()))


def _parser() -> lxml_etree.XMLParser:
    # No DTDs, entities or network: the document may come from outside.
    return lxml_etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _readable(message: str) -> str:
    return message.replace(f"{{{CAP_NS}}}", "cap:")


def _xml_rule_problems(root: lxml_etree._Element) -> list[str]:
    n = {"cap": CAP_NS}
    out = []
    msg_type = root.findtext("cap:msgType", namespaces=n)
    references = (root.findtext("cap:references", namespaces=n) or "").split()
    if msg_type in ("Update", "Cancel") and not references:
        article = "an" if msg_type == "Update" else "a"
        out.append(f"line {root.sourceline}: {article} {msg_type} must name the message(s) it replaces "
                   "in <references>")
    for ref in references:
        parts = ref.split(",")
        if len(parts) != 3 or not all(parts) or not _CAP_TIME.fullmatch(parts[2]):
            out.append(f"line {root.sourceline}: reference {ref!r} is not 'sender,identifier,sent'")
    for el in root.iterfind(".//cap:polygon", n):
        pairs = (el.text or "").split()
        try:
            points = [tuple(float(v) for v in p.split(",")) for p in pairs]
        except ValueError:
            points = []
        if len(points) != len(pairs) or any(len(p) != 2 for p in points):
            out.append(f"line {el.sourceline}: cap:polygon is not a list of 'lat,lon' pairs")
        elif len(points) < 4 or points[0] != points[-1]:
            out.append(f"line {el.sourceline}: cap:polygon needs at least 4 'lat,lon' pairs, "
                       "the first repeated at the end")
        elif any(not (-90 <= lat <= 90 and -180 <= lon <= 180) for lat, lon in points):
            out.append(f"line {el.sourceline}: cap:polygon has a point outside WGS 84 (pairs are 'lat,lon')")
    for el in root.iterfind(".//cap:circle", n):
        m = re.fullmatch(r"\s*(-?[\d.]+),(-?[\d.]+)\s+([\d.]+)\s*", el.text or "")
        if not m or not (-90 <= float(m[1]) <= 90 and -180 <= float(m[2]) <= 180):
            out.append(f"line {el.sourceline}: cap:circle is not 'lat,lon radius_km'")
    return out


def validate(xml: bytes, schema_path: str | Path) -> None:
    """Check ``xml`` against the OASIS CAP 1.2 XSD at ``schema_path`` and the rules the XSD cannot
    express; raise ``CapValidationError`` with every error (line and element named)."""
    path = Path(schema_path)
    if not path.is_file():
        raise FileNotFoundError(f"CAP 1.2 schema not found at {path}")
    try:
        doc = lxml_etree.fromstring(xml, _parser())
    except lxml_etree.XMLSyntaxError as err:
        raise CapValidationError([f"not well-formed XML: {err}"]) from None
    schema = _schema(str(path.resolve()))
    errors = [] if schema.validate(doc) else [f"line {e.line}: {_readable(e.message)}" for e in schema.error_log]
    if doc.tag == f"{{{CAP_NS}}}alert":
        errors += _xml_rule_problems(doc)
    if errors:
        raise CapValidationError(errors)


# --- from an incident -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindTerms:
    """How an incident kind reads in CAP: categories, event names (en, zh), default response types."""

    categories: tuple[str, ...]
    event: str
    event_zh: str
    response_types: tuple[str, ...]


# A project mapping. CAP 1.2 §3.2.2 puts floods under Met and landslides under Geo. A hazardous
# chemical leak is CBRNE (chemical) and Env (pollution); its default action is sheltering in
# place. A reported kind without its own row is refused by name: the caller sends it as "other".
KINDS: Mapping[str, KindTerms] = {
    "flood": KindTerms(("Met",), "Flood", "洪水", ("Prepare", "Monitor")),
    "rainstorm": KindTerms(("Met",), "Rainstorm", "暴雨", ("Prepare", "Monitor")),
    "landslide": KindTerms(("Geo",), "Landslide", "滑坡", ("Evacuate", "Avoid")),
    "fire": KindTerms(("Fire",), "Fire", "火灾", ("Avoid", "Evacuate")),
    "chemical_leak": KindTerms(("CBRNE", "Env"), "Hazardous chemical leak", "危险化学品泄漏", ("Shelter", "Avoid")),
    "other": KindTerms(("Other",), "Emergency", "突发事件", ("Monitor",)),
}

# A project mapping: CAP has no colours (the Chinese four colours are not CAP severities). The
# colour and the response level travel as <parameter>s alongside.
SEVERITY_BY_LEVEL: Mapping[Level, str] = {
    Level.BLUE: "Minor", Level.YELLOW: "Moderate", Level.ORANGE: "Severe", Level.RED: "Extreme",
}

Basis = Literal["observed", "forecast", "possible"]
# A project mapping of what the hazard rests on to CAP urgency and certainty (§3.2.2):
# observed now → act now; forecast → expected within the next hour(s), likely (p > ~50%);
# possible → later, possible (p <= ~50%).
_URGENCY_CERTAINTY: Mapping[str, tuple[str, str]] = {
    "observed": ("Immediate", "Observed"), "forecast": ("Expected", "Likely"), "possible": ("Future", "Possible"),
}


def severity_for(level: Level) -> str:
    """CAP severity of a warning level (``SEVERITY_BY_LEVEL``); Level.NONE has no alert."""
    try:
        return SEVERITY_BY_LEVEL[Level(level)]
    except (KeyError, ValueError):
        raise CapRuleError(f"level {level!r} has no CAP severity: only blue, yellow, orange and red are alerted") \
            from None


def urgency_certainty(basis: Basis) -> tuple[str, str]:
    """CAP (urgency, certainty) for a hazard that is ``observed`` now, ``forecast`` or ``possible``."""
    try:
        return _URGENCY_CERTAINTY[basis]
    except KeyError:
        raise CapRuleError(f"basis {basis!r} is not one of {', '.join(_URGENCY_CERTAINTY)}") from None


def info_for_incident(*, kind: str, level: Level, title: str, title_zh: str, place: str, place_zh: str,
                      sender_name: str, sender_name_zh: str,
                      geometry: BaseGeometry | Sequence[Sequence[float]] | None = None,
                      circles: Sequence[Circle] = (), description: Sequence[str] = (),
                      description_zh: Sequence[str] = (), instruction: str | None = None,
                      instruction_zh: str | None = None, basis: Basis = "observed", system_assessment: bool = True,
                      effective: datetime | None = None, onset: datetime | None = None,
                      expires: datetime | None = None, web: str | None = None, contact: str | None = None,
                      response_types: Sequence[str] | None = None) -> tuple[Info, Info]:
    """The (zh-CN, en-US) info blocks of an incident's alert.

    ``place``/``place_zh`` name the area (``<areaDesc>``); ``geometry`` and ``circles`` draw it.
    With ``system_assessment`` (the default) both headlines and descriptions say the alert is the
    system's own assessment, not an official warning signal.
    """
    if kind not in KINDS:
        raise CapRuleError(f"incident kind {kind!r} has no CAP terms; known kinds: {', '.join(KINDS)}")
    terms = KINDS[kind]
    level = Level(level)
    severity = severity_for(level)
    urgency, certainty = urgency_certainty(basis)
    for name, value in (("title", title), ("title_zh", title_zh)):
        _text(value, name)
    area_en = Area.from_geometry(place, geometry, circles=circles)
    area_zh = Area(place_zh, area_en.polygons, area_en.circles)
    lines_en = [ASSESSMENT_LABEL] if system_assessment else []
    lines_zh = [ASSESSMENT_LABEL_ZH] if system_assessment else []
    lines_en += _tuple(description, "description")
    lines_zh += _tuple(description_zh, "description_zh")
    marker = " (Yingji assessment)" if system_assessment else ""
    marker_zh = "（系统研判）" if system_assessment else ""
    common = [("colour", level.colour), ("response_level", level.response), ("incident_kind", kind)]
    assessed = [("assessment", "system")] if system_assessment else []
    assessed_zh = [("研判来源", "系统研判")] if system_assessment else []
    en = Info(language="en-US", categories=terms.categories, event=terms.event, urgency=urgency, severity=severity,
              certainty=certainty,
              response_types=tuple(terms.response_types if response_types is None else response_types),
              effective=effective, onset=onset, expires=expires, sender_name=sender_name,
              headline=f"{level.colour.capitalize()} {terms.event.lower()} warning{marker}: {title}",
              description="\n".join(lines_en) or None, instruction=instruction, web=web, contact=contact,
              parameters=(*common, *assessed), areas=(area_en,) if area_en.polygons or area_en.circles else ())
    zh = replace(en, language="zh-CN", event=terms.event_zh, sender_name=sender_name_zh,
                 headline=f"{terms.event_zh}{level.colour_zh}预警{marker_zh}：{title_zh}",
                 description="\n".join(lines_zh) or None, instruction=instruction_zh,
                 parameters=(*common, ("预警级别", level.colour_zh), ("响应级别", level.response_zh), *assessed_zh),
                 areas=(area_zh,) if area_zh.polygons or area_zh.circles else ())
    return zh, en


# --- Atom feed --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomEntry:
    """One alert in the feed: its latest message. ``id`` is an IRI that stays the same for the alert."""

    id: str
    title: str
    updated: datetime
    cap_url: str
    summary: str | None = None

    def __post_init__(self) -> None:
        for name in ("id", "title", "cap_url"):
            try:
                _text(getattr(self, name), f"entry {name}")
            except CapRuleError as err:
                raise FeedError(str(err)) from None
        if not _SCHEME.fullmatch(self.id):
            raise FeedError(f"entry id {self.id!r} must be an absolute IRI such as urn:… or https://… "
                            "(RFC 4287 §4.2.6)")
        if not _SCHEME.fullmatch(self.cap_url):
            raise FeedError(f"entry cap_url {self.cap_url!r} must be an absolute URL")
        try:
            _optional_text(self.summary, "entry summary")
            _aware(self.updated, f"entry {self.id} updated")
        except CapRuleError as err:
            raise FeedError(str(err)) from None


def entry_for(msg: CapMessage, *, entry_id: str, cap_url: str, language: str = "zh-CN") -> AtomEntry:
    """The feed entry of an alert whose latest message is ``msg``: title and summary from its info
    block in ``language`` (else the first), updated at its sent time."""
    info = next((i for i in msg.infos if i.language.lower() == language.lower()), msg.infos[0] if msg.infos else None)
    if info is None:
        title = f"{msg.msg_type}: {msg.identifier}"
        summary = msg.note
    else:
        title = info.headline or info.event
        summary = info.description
    return AtomEntry(id=entry_id, title=title, updated=msg.sent, cap_url=cap_url, summary=summary)


def _atom_time(value: datetime) -> str:
    # RFC 3339 date-time (RFC 4287 §3.3); Atom, unlike CAP, allows "Z", but an offset reads the same.
    return value.replace(microsecond=0).isoformat()


def atom_feed(entries: Sequence[AtomEntry], *, feed_id: str, title: str, self_url: str, updated: datetime,
              author: str = "Yingji") -> bytes:
    """An Atom 1.0 feed (RFC 4287) of alerts, newest first, each entry linking to its CAP document."""
    for what, value in (("feed_id", feed_id), ("self_url", self_url)):
        if not isinstance(value, str) or not _SCHEME.fullmatch(value):
            raise FeedError(f"{what} {value!r} must be an absolute IRI (RFC 4287 §4.2.6, §4.2.7)")
    try:
        _text(title, "feed title")
        _text(author, "feed author")
        _aware(updated, "feed updated")
    except CapRuleError as err:
        raise FeedError(str(err)) from None
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, AtomEntry):
            raise FeedError(f"entries must be AtomEntry, got {type(e).__name__}")
        if e.id in seen:
            raise FeedError(f"entry id {e.id} appears twice: a feed lists each alert once, with its latest message")
        seen.add(e.id)

    # lxml, not ElementTree: ElementTree cannot write a default namespace with unprefixed attributes.
    def sub(parent: lxml_etree._Element, name: str, text: str | None = None, **attrs: str) -> lxml_etree._Element:
        el = lxml_etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = lxml_etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", _atom_time(updated))
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(sub(feed, "author"), "name", author)  # RFC 4287 §4.1.1: a feed has an author unless every entry has one
    for e in sorted(entries, key=lambda e: e.updated, reverse=True):
        entry = sub(feed, "entry")
        sub(entry, "id", e.id)
        sub(entry, "title", e.title)
        sub(entry, "updated", _atom_time(e.updated))
        if e.summary:
            sub(entry, "summary", e.summary)
        # RFC 4287 §4.1.2: an entry without content must have an alternate link; here it is the CAP document.
        sub(entry, "link", rel="alternate", type=CAP_MIME, href=e.cap_url)
    return lxml_etree.tostring(feed, encoding="utf-8", xml_declaration=True)
