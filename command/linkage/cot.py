"""Cursor-on-Target out: vehicles, incidents and hazard areas as CoT 2.0 XML events for TAK clients.

Fire brigades, police and rescue teams run ATAK (Android), WinTAK or iTAK, usually behind a TAK
server. They all speak Cursor-on-Target: one ``<event>`` per thing on the map, keyed by its
``uid`` (a newer event with the same uid moves or updates it), with a ``type`` saying what it is,
a ``<point>``, and a free ``<detail>``. This module is the pure builder: plain values in
(``VehicleState``, ``IncidentMark``), ``xml.etree`` elements and UTF-8 bytes out. Where the events
go (UDP datagrams, a TCP stream) is ``command.tak``'s business.

The event (CoT Event Schema 2.0, MITRE): ``<event version="2.0" uid type how time start stale>``
with ``<point lat lon hae ce le/>`` and ``<detail>``. Times are ISO 8601 UTC with a "Z" and
milliseconds, as ATAK writes them. ``stale`` is when a receiver should stop trusting the event:

- vehicles: ``VEHICLE_STALE`` 30 s; their telemetry refreshes them every second or so, and a
  drone whose link is lost greys out on the map within half a minute instead of standing still;
- incidents and their hazard areas: ``INCIDENT_STALE`` 10 min; the sender re-sends the open
  ones well within that (``command.tak``), and a closed one is removed by a delete event.

Types come from the CoT type tree (MITRE ``CoTtypes.xml``, which maps MIL-STD-2525 to CoT; the
file lists each type without its affiliation letter, written here as "a-.-"):

- a copter: ``a-f-A-M-H-Q``, "Air/Mil/Rotor/Drone,RPV,UAV" with the friendly affiliation; the
  file's predicate "urw" (unmanned rotor wing) matches exactly this. The tree has no civil
  rotary-wing drone (its only civil drone, ``a-.-A-C-F-q``, is fixed-wing), so the military
  branch is the one that shows a multirotor as a drone in ATAK;
- an unmanned boat: ``a-f-S-X``, "Surface/NON MILITARY" (the tree has no unmanned surface
  vessel);
- an incident: the tree's Incident Management extension, "Other/INCIDENT/...": a flood
  ``a-.-X-i-m-f``, a rainstorm ``a-.-X-i-m-r``, a landslide ``a-.-X-i-g-l``, a fire
  ``a-.-X-i-f``, a chemical leak ``a-.-X-i-c`` (CBRNE), anything else ``a-.-X-i-o``. They are
  sent with the hostile affiliation ("a-h-X-i-..."): the frame a TAK user reads as "threat",
  drawn red. A client that does not know the incident leaf draws the hostile "other" frame;
- a hazard area: the drawing type ``u-d-f`` (a free-form shape, as ATAK's drawing tools send a
  polygon): its vertices are ``<link point="lat,lon"/>`` in order, the first repeated at the end
  to close it, with ATAK's ``strokeColor`` / ``fillColor`` (signed 32-bit ARGB) in the level's
  colour;
- a delete: ``t-x-d-d`` with ``<link uid=...>`` naming the removed event and ``<__forcedelete/>``,
  which is how ATAK itself removes a marker from every client and the server.

``how`` (CoTtypes.xml's "how" table): vehicles ``m-g`` (machine, GPS); incidents the system
assessed from its sensors ``m-f`` (machine, fused), incidents a person reported ``h-e`` (human,
estimated); hazard areas ``m-f`` (computed by the models from sensor readings); deletes
``h-g-i-g-o`` (no position).

Heights: CoT's ``hae`` is the height above the WGS 84 ellipsoid; vehicles report their height
above mean sea level (MAVLink ``GLOBAL_POSITION_INT.alt``, the GNSS receiver's geoid). The two
differ by the geoid undulation N at the place: hae = AMSL + N. ``vehicle_event`` takes N as
``geoid_undulation_m``; no geoid model ships with Yingji (PROJ's EGM96 grid is a separate
download), so the service passes 0 and ``hae`` carries the AMSL height, off by N (tens of
metres at most) for a client that converts it back with its own geoid. ``ce`` / ``le`` (circular
and linear error, metres, 1 sigma) come from the GNSS accuracy when known; otherwise, and for
every unknown value, CoT's "unknown" ``9999999.0``.

Text (callsigns, remarks) is escaped by ``xml.etree``; characters XML 1.0 cannot carry at all
are removed first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree import ElementTree as ET

from shapely.geometry import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = [
    "DELETE_STALE",
    "DELETE_TYPE",
    "HAZARD_TYPE",
    "INCIDENT_STALE",
    "INCIDENT_TYPES",
    "LEVEL_ARGB",
    "MAX_HAZARD_PARTS",
    "MAX_RING_VERTICES",
    "UNKNOWN",
    "CREW_STALE",
    "CREW_TYPE",
    "VEHICLE_STALE",
    "VEHICLE_TYPES",
    "CotError",
    "IncidentMark",
    "Ring",
    "VehicleState",
    "cot_time",
    "delete_event",
    "hazard_events",
    "hazard_rings",
    "hazard_uid",
    "incident_event",
    "incident_type",
    "incident_uid",
    "position_event",
    "to_bytes",
    "vehicle_event",
    "vehicle_uid",
]

UNKNOWN = 9_999_999.0  # CoT's value for an unknown hae, ce or le
VEHICLE_STALE = timedelta(seconds=30)
INCIDENT_STALE = timedelta(minutes=10)
DELETE_STALE = timedelta(minutes=1)
UID_PREFIX = "yingji"

# CoTtypes.xml (MITRE, after MIL-STD-2525), affiliation f (friend): see the module docstring.
VEHICLE_TYPES = {"copter": "a-f-A-M-H-Q", "boat": "a-f-S-X"}
# CoTtypes.xml's Incident Management extension ("Other/INCIDENT/..."), affiliation h (hostile).
INCIDENT_TYPES = {
    "flood": "a-h-X-i-m-f",  # Meteorological Flood
    "rainstorm": "a-h-X-i-m-r",  # Meteorological Rain
    "landslide": "a-h-X-i-g-l",  # Geophysical Landslide
    "fire": "a-h-X-i-f",  # Incident Fire
    "chemical_leak": "a-h-X-i-c",  # CBRNE
}
OTHER_INCIDENT_TYPE = "a-h-X-i-o"  # Other/INCIDENT/OTHER
HAZARD_TYPE = "u-d-f"  # ATAK's free-form drawing (a polygon when closed)
DELETE_TYPE = "t-x-d-d"

HOW_GPS, HOW_FUSED, HOW_ESTIMATED, HOW_NONE = "m-g", "m-f", "h-e", "h-g-i-g-o"


def _argb(alpha: int, rgb: int) -> int:
    """ATAK's colour: 0xAARRGGBB as a signed 32-bit integer (Java's ``int``)."""
    value = (alpha << 24) | rgb
    return value - (1 << 32) if value >= 1 << 31 else value


# The warning colours (blue < yellow < orange < red), as opaque strokes; areas fill at 25 %.
_LEVEL_RGB = {"none": 0x808080, "blue": 0x0000FF, "yellow": 0xFFFF00, "orange": 0xFFA500, "red": 0xFF0000}
LEVEL_ARGB = {level: _argb(0xFF, rgb) for level, rgb in _LEVEL_RGB.items()}
FILL_ALPHA = 0x40
STROKE_WEIGHT = 3.0

# A hazard shape is one datagram: keep it well inside a UDP payload and readable on a phone.
MAX_RING_VERTICES = 200
MAX_HAZARD_PARTS = 20  # the largest parts of a hazard area split in many
COORD_DECIMALS = 7  # about 1 cm
GROUP_NAME, GROUP_ROLE = "Cyan", "Team Member"  # ATAK's default team colour and role

# Characters XML 1.0 cannot carry (§2.2 of XML 1.0); ElementTree would write them unescaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

Ring = tuple[tuple[float, float], ...]  # (lon, lat) pairs, WGS 84, GeoJSON order; open (first not repeated)


class CotError(ValueError):
    """A value cannot become a Cursor-on-Target event; the message names the value and the problem."""


# --- values in ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleState:
    """What a TAK client shows of a vehicle: where it is, how it moves, how much battery it has left."""

    name: str
    kind: str  # "copter" | "boat" (VEHICLE_TYPES)
    lon: float
    lat: float
    alt_amsl_m: float | None = None
    course_deg: float | None = None  # direction of travel, degrees true
    speed_mps: float | None = None
    battery_pct: float | None = None
    mode: str | None = None
    state: str | None = None  # ready, on_task, returning, charging, ...
    incident_id: int | None = None
    ce_m: float | None = None  # GNSS horizontal accuracy (1 sigma) when known
    le_m: float | None = None  # GNSS vertical accuracy (1 sigma) when known


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentMark:
    """An incident as a marker on the map, and its hazard area when a model drew one."""

    incident_id: int
    kind: str
    level: str  # "none" | "blue" | "yellow" | "orange" | "red"
    status: str
    lon: float
    lat: float
    title: str
    title_zh: str = ""
    level_zh: str = ""
    response: str = ""  # emergency response level IV..I the colour suggests
    response_zh: str = ""
    reason: str = ""
    reason_zh: str = ""
    reported: bool = False  # a person reported it (no sensor)
    note: str = ""  # e.g. "system assessment, not an official warning"
    note_zh: str = ""
    hazard: tuple[Ring, ...] = ()


# --- helpers ---------------------------------------------------------------------------------------


def cot_time(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and "Z", as ATAK writes CoT times.

    >>> cot_time(datetime(2026, 7, 12, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8))))
    '2026-07-12T00:30:15.123Z'
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise CotError(f"CoT times must be timezone-aware datetimes, got {value!r}")
    t = value.astimezone(timezone.utc)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _clean(text: object) -> str:
    return _NOT_XML.sub("", str(text))


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CotError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _position(lon: object, lat: object, what: str) -> tuple[float, float]:
    x, y = _finite(lon, f"{what}: longitude"), _finite(lat, f"{what}: latitude")
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise CotError(f"{what}: position ({x}, {y}) is outside WGS 84 (lon -180..180, lat -90..90); "
                       "positions are (lon, lat)")
    return x, y


def _num(value: float, decimals: int = 1) -> str:
    return f"{value:.{decimals}f}"


def _optional(value: float | None, what: str) -> float | None:
    return None if value is None else _finite(value, what)


def _latlon(lon: float, lat: float) -> str:
    return f"{_num(lat, COORD_DECIMALS)},{_num(lon, COORD_DECIMALS)}"


def _event(*, uid: str, cot_type: str, how: str, time: datetime, stale: timedelta, lon: float, lat: float,
           hae_m: float | None = None, ce_m: float | None = None, le_m: float | None = None) -> ET.Element:
    if not uid or not uid.strip():
        raise CotError("a CoT event needs a uid")
    start = cot_time(time)
    event = ET.Element("event", {
        "version": "2.0", "uid": _clean(uid), "type": cot_type, "how": how,
        "time": start, "start": start, "stale": cot_time(time + stale),
    })
    ET.SubElement(event, "point", {
        "lat": _num(lat, COORD_DECIMALS), "lon": _num(lon, COORD_DECIMALS),
        "hae": _num(UNKNOWN if hae_m is None else hae_m),
        "ce": _num(UNKNOWN if ce_m is None else ce_m), "le": _num(UNKNOWN if le_m is None else le_m),
    })
    ET.SubElement(event, "detail")
    return event


def _detail(event: ET.Element) -> ET.Element:
    detail = event.find("detail")
    assert detail is not None
    return detail


def _remarks(detail: ET.Element, lines: Sequence[str]) -> None:
    ET.SubElement(detail, "remarks").text = _clean("\n".join(line for line in lines if line))


# --- uids --------------------------------------------------------------------------------------------


def vehicle_uid(name: str) -> str:
    """``yingji-vehicle-<name>``: the same vehicle is the same marker in every client."""
    return f"{UID_PREFIX}-vehicle-{name}"


def crew_uid(crew_id: str) -> str:
    """``yingji-crew-<id>``: a field crew or department unit."""
    return f"{UID_PREFIX}-crew-{crew_id}"


# A field crew or unit: "a-f-G-U-C", Ground/Unit/Combat with the friendly affiliation, the type ATAK
# gives its own users (team members): a crew shows as one of the team. Stale after CREW_STALE: a
# phone reports every 15 s or so while on duty, and the feed re-sends every crew at each refresh.
CREW_TYPE = "a-f-G-U-C"
CREW_STALE = timedelta(minutes=10)


def crew_event(view: Mapping[str, Any], *, time: datetime) -> ET.Element:
    """A crew's position event from its view (``command.crews``): callsign its Chinese name, remarks its
    name, status, an open SOS and a hazard it is in."""
    remarks = [str(view.get("name") or view.get("id")), f"status: {view.get('status')}"]
    sos = view.get("sos")
    if isinstance(sos, Mapping):
        remarks.append(f"SOS {sos.get('at', '')}: {sos.get('note') or ''}".strip())
    hazard = view.get("hazard")
    if isinstance(hazard, Mapping):
        remarks.append(f"inside the hazard area of incident {hazard.get('incident_id')} ({hazard.get('kind')})")
    return position_event(uid=crew_uid(str(view["id"])), cot_type=CREW_TYPE,
                          callsign=str(view.get("name_zh") or view.get("name") or view["id"]),
                          lon=view["lon"], lat=view["lat"], time=time, stale=CREW_STALE, remarks=remarks)


def incident_uid(incident_id: int) -> str:
    return f"{UID_PREFIX}-incident-{incident_id}"


def hazard_uid(incident_id: int, part: int = 0) -> str:
    """The uid of part ``part`` of an incident's hazard area (an area may be several polygons)."""
    return f"{UID_PREFIX}-incident-{incident_id}-hazard-{part}"


# --- events ----------------------------------------------------------------------------------------


def position_event(*, uid: str, cot_type: str, callsign: str, lon: float, lat: float, time: datetime,
                   stale: timedelta, hae_m: float | None = None, ce_m: float | None = None,
                   le_m: float | None = None, course_deg: float | None = None, speed_mps: float | None = None,
                   battery_pct: float | None = None, remarks: Sequence[str] = (), group: str = GROUP_NAME,
                   role: str = GROUP_ROLE) -> ET.Element:
    """A moving friendly thing measured by GNSS (``how`` m-g): a vehicle today, a field crew's phone next.

    ``<contact callsign>``, ``<__group>`` (ATAK's team colour and role), ``<track course speed>``
    (degrees true, m/s; only when both are known), ``<status battery>`` (whole percent) and
    ``<remarks>``.
    """
    x, y = _position(lon, lat, uid)
    course = _optional(course_deg, f"{uid}: course")
    speed = _optional(speed_mps, f"{uid}: speed")
    battery = _optional(battery_pct, f"{uid}: battery")
    event = _event(uid=uid, cot_type=cot_type, how=HOW_GPS, time=time, stale=stale, lon=x, lat=y,
                   hae_m=_optional(hae_m, f"{uid}: hae"), ce_m=_optional(ce_m, f"{uid}: ce"),
                   le_m=_optional(le_m, f"{uid}: le"))
    detail = _detail(event)
    ET.SubElement(detail, "contact", {"callsign": _clean(callsign)})
    ET.SubElement(detail, "__group", {"name": group, "role": role})
    if course is not None and speed is not None:
        ET.SubElement(detail, "track", {"course": _num(course % 360.0), "speed": _num(max(speed, 0.0), 2)})
    if battery is not None:
        ET.SubElement(detail, "status", {"battery": str(round(min(max(battery, 0.0), 100.0)))})
    _remarks(detail, remarks)
    return event


def vehicle_event(v: VehicleState, *, time: datetime, geoid_undulation_m: float = 0.0) -> ET.Element:
    """The vehicle's position event (stale after ``VEHICLE_STALE``); ``hae`` = AMSL + the geoid undulation.

    >>> e = vehicle_event(VehicleState(name="UAV-1", kind="copter", lon=106.857, lat=29.712, alt_amsl_m=180.4),
    ...                   time=datetime(2026, 7, 12, tzinfo=timezone.utc))
    >>> e.get("uid"), e.get("type"), e.find("point").get("hae")
    ('yingji-vehicle-UAV-1', 'a-f-A-M-H-Q', '180.4')
    """
    cot_type = VEHICLE_TYPES.get(v.kind)
    if cot_type is None:
        raise CotError(f"vehicle {v.name!r}: no CoT type for a {v.kind!r} (known: {', '.join(VEHICLE_TYPES)})")
    n = _finite(geoid_undulation_m, "geoid undulation")
    hae = None if v.alt_amsl_m is None else _finite(v.alt_amsl_m, f"vehicle {v.name}: altitude") + n
    battery = _optional(v.battery_pct, f"vehicle {v.name}: battery")
    remarks = [f"Yingji {v.kind} {v.name}"]
    if v.state:
        remarks.append(f"state {v.state}")
    if v.incident_id is not None:
        remarks.append(f"on incident #{v.incident_id}")
    if v.mode:
        remarks.append(f"mode {v.mode}")
    remarks.append(f"battery {round(battery)}%" if battery is not None else "battery unknown")
    return position_event(uid=vehicle_uid(v.name), cot_type=cot_type, callsign=v.name, lon=v.lon, lat=v.lat,
                          time=time, stale=VEHICLE_STALE, hae_m=hae, ce_m=v.ce_m, le_m=v.le_m,
                          course_deg=v.course_deg, speed_mps=v.speed_mps, battery_pct=battery,
                          remarks=[" · ".join(remarks)])


def incident_type(kind: str) -> str:
    """The CoT type of an incident kind; a kind without its own leaf is "other incident"."""
    return INCIDENT_TYPES.get(kind, OTHER_INCIDENT_TYPE)


def _level(mark: IncidentMark) -> str:
    if mark.level not in LEVEL_ARGB:
        raise CotError(f"incident {mark.incident_id}: unknown level {mark.level!r} "
                       f"(one of {', '.join(LEVEL_ARGB)})")
    return mark.level


def _label(mark: IncidentMark) -> str:
    return mark.title_zh or mark.title or f"incident #{mark.incident_id}"


def incident_event(mark: IncidentMark, *, time: datetime) -> ET.Element:
    """The incident's marker (stale after ``INCIDENT_STALE``): callsign its title, remarks level, titles, why.

    The position is where the incident is placed; its uncertainty is not known (``ce`` unknown).
    """
    level = _level(mark)
    x, y = _position(mark.lon, mark.lat, f"incident {mark.incident_id}")
    event = _event(uid=incident_uid(mark.incident_id), cot_type=incident_type(mark.kind),
                   how=HOW_ESTIMATED if mark.reported else HOW_FUSED, time=time, stale=INCIDENT_STALE,
                   lon=x, lat=y)
    detail = _detail(event)
    ET.SubElement(detail, "contact", {"callsign": _clean(_label(mark))})
    ET.SubElement(detail, "color", {"argb": str(LEVEL_ARGB[level])})
    head = [f"Yingji incident #{mark.incident_id}", mark.kind,
            f"level {level}" + (f" ({mark.level_zh})" if mark.level_zh else "")]
    if mark.response:
        head.append(f"response {mark.response}" + (f" ({mark.response_zh})" if mark.response_zh else ""))
    head.append(mark.status)
    if mark.reported:
        head.append("reported by a person")
    _remarks(detail, [
        " · ".join(head),
        mark.title_zh, mark.title, mark.reason_zh, mark.reason, mark.note_zh, mark.note,
    ])
    return event


def _closed_ring(ring: Sequence[Sequence[float]], what: str) -> list[tuple[float, float]]:
    points = []
    for p in ring:
        if len(p) != 2:
            raise CotError(f"{what}: vertex {tuple(p)!r} is not a (lon, lat) pair")
        points.append(_position(p[0], p[1], what))
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(set(points)) < 3:
        raise CotError(f"{what} has {len(set(points))} distinct vertices; a polygon needs at least 3")
    return [*points, points[0]]


def hazard_events(mark: IncidentMark, *, time: datetime) -> list[ET.Element]:
    """One closed ``u-d-f`` drawing per part of the incident's hazard area (none without one).

    Each is placed at its vertices' mean, outlined and filled in the level's colour, and named
    after the incident. Holes are not drawn: the outline warns of them too (the safe side).
    """
    level = _level(mark)
    stroke, fill = LEVEL_ARGB[level], _argb(FILL_ALPHA, _LEVEL_RGB[level])
    if len(mark.hazard) > MAX_HAZARD_PARTS:
        raise CotError(f"incident {mark.incident_id}: {len(mark.hazard)} hazard parts, more than "
                       f"{MAX_HAZARD_PARTS}; build them with hazard_rings")
    events = []
    for part, ring in enumerate(mark.hazard):
        what = f"incident {mark.incident_id} hazard part {part}"
        points = _closed_ring(ring, what)
        if len(points) - 1 > MAX_RING_VERTICES:
            raise CotError(f"{what} has {len(points) - 1} vertices, more than {MAX_RING_VERTICES}; "
                           "build it with hazard_rings")
        lon = sum(p[0] for p in points[:-1]) / (len(points) - 1)
        lat = sum(p[1] for p in points[:-1]) / (len(points) - 1)
        event = _event(uid=hazard_uid(mark.incident_id, part), cot_type=HAZARD_TYPE, how=HOW_FUSED, time=time,
                       stale=INCIDENT_STALE, lon=lon, lat=lat)
        detail = _detail(event)
        ET.SubElement(detail, "contact", {"callsign": _clean(f"{_label(mark)} · 影响范围 hazard area")})
        for x, y in points:
            ET.SubElement(detail, "link", {"point": _latlon(x, y)})
        ET.SubElement(detail, "strokeColor", {"value": str(stroke)})
        ET.SubElement(detail, "strokeWeight", {"value": _num(STROKE_WEIGHT)})
        ET.SubElement(detail, "fillColor", {"value": str(fill)})
        ET.SubElement(detail, "labels_on", {"value": "false"})
        _remarks(detail, [f"Hazard area of Yingji incident #{mark.incident_id} (level {level}), "
                          f"estimated by the system's models", mark.title_zh, mark.title])
        events.append(event)
    return events


def delete_event(uid: str, *, target_type: str, time: datetime) -> ET.Element:
    """Remove the event ``uid`` (of type ``target_type``) from every client: ``t-x-d-d`` with ``__forcedelete``."""
    if not uid or not uid.strip():
        raise CotError("a delete needs the uid of the event it removes")
    event = _event(uid=f"{uid}.delete", cot_type=DELETE_TYPE, how=HOW_NONE, time=time, stale=DELETE_STALE,
                   lon=0.0, lat=0.0)
    detail = _detail(event)
    ET.SubElement(detail, "link", {"uid": _clean(uid), "relation": "p-p", "type": target_type})
    ET.SubElement(detail, "__forcedelete")
    return event


def to_bytes(event: ET.Element) -> bytes:
    """The event as a UTF-8 XML document (one UDP datagram, or one event of a TCP stream)."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(event, encoding="utf-8", xml_declaration=False)


# --- hazard geometry -----------------------------------------------------------------------------------


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        parts = [geometry]
    elif isinstance(geometry, MultiPolygon | GeometryCollection):
        parts = [g for g in geometry.geoms if isinstance(g, Polygon)]
    else:
        raise CotError(f"a hazard area must be a Polygon or MultiPolygon, got a {geometry.geom_type}")
    return [p for p in parts if not p.is_empty and p.area > 0]


def _shell(poly: Polygon, max_vertices: int) -> Ring:
    shell = Polygon(poly.exterior)
    if len(shell.exterior.coords) - 1 > max_vertices:
        # Grow the outline by tol (mitred corners add no vertices), then drop vertices within tol
        # (Douglas-Peucker): the result stays outside the original outline, so it still covers it;
        # tol doubles until the ring is short enough.
        minx, miny, maxx, maxy = shell.bounds
        tol = max(maxx - minx, maxy - miny, 1e-9) / 10_000
        while True:
            cover = shell.buffer(tol, join_style="mitre").simplify(tol, preserve_topology=True)
            if isinstance(cover, Polygon) and len(cover.exterior.coords) - 1 <= max_vertices:
                shell = Polygon(cover.exterior)
                break
            tol *= 2
    coords = [(round(float(x), COORD_DECIMALS), round(float(y), COORD_DECIMALS)) for x, y in shell.exterior.coords]
    return tuple(coords[:-1])


def hazard_rings(geometry: BaseGeometry | None, *, max_vertices: int = MAX_RING_VERTICES,
                 max_parts: int = MAX_HAZARD_PARTS) -> tuple[Ring, ...]:
    """The outer rings (lon, lat; open) of a hazard area, largest first, each covering its polygon.

    At most ``max_parts`` parts (the largest) of at most ``max_vertices`` vertices; none for no area.

    >>> hazard_rings(Polygon([(106.0, 29.0), (106.1, 29.0), (106.1, 29.1)]))
    (((106.0, 29.0), (106.1, 29.0), (106.1, 29.1)),)
    """
    if max_vertices < 4:
        raise CotError(f"max_vertices must be at least 4, got {max_vertices}")
    if geometry is None or geometry.is_empty:
        return ()
    parts = sorted(_polygons(geometry), key=lambda p: p.area, reverse=True)[:max_parts]
    return tuple(_shell(p, max_vertices) for p in parts)
