"""The district's gazetteer: its named places, searchable by Chinese or English name. Pure.

A dispatcher taking a call hears a place name ("龙兴中学", "Tongjing Road bridge"), not
coordinates. The gazetteer indexes every named place the district folder holds, each with one
point to put an incident at:

* facilities (towns, villages, hospitals, schools, shelters, fire stations, ...): their point;
* townships (towns and street offices): a point inside the polygon (``representative_point``,
  which, unlike the centroid, always lies inside a concave or holed area);
* roads, rivers and bridges (lines): the point halfway along the line.

Only what lies in the district counts: lines and areas are cut to its boundary first (a river
that runs along the edge gets a point on the district's side), and a place with nothing inside
is left out, since an incident can only be opened inside the district.

Search is case-insensitive on the NFKC form of both names (full-width ``Ｇ６５`` finds ``G65``),
by substring. Results are ranked: an exact name first, then names that start with the query,
then names that contain it; within a rank, shorter names first (the closer the query is to the
whole name, the likelier it is the place meant), then by name and id so the order is stable.

>>> g = Gazetteer([Place("facility:t", "town", "Longxing", "龙兴", 106.79, 29.775)])
>>> [p.id for p in g.search("龙兴")]
['facility:t']
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import LineString

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from .district import District

__all__ = ["MAX_QUERY_CHARS", "Gazetteer", "GazetteerError", "Place", "UnknownPlace"]

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), for the equirectangular distance of ``nearest``
MAX_QUERY_CHARS = 64  # longer than any place name of a district; a longer query is a mistake
EXACT, PREFIX, SUBSTRING = 0, 1, 2  # match ranks, best first


class GazetteerError(ValueError):
    """A query or an index that cannot be used; the message says why."""


class UnknownPlace(GazetteerError):
    """No place with this id in the gazetteer."""


@dataclass(frozen=True, slots=True)
class Place:
    """One named place and the point that stands for it (WGS84)."""

    id: str  # "<family>:<id in its district file>": facility:, township:, road:, river:, bridge:
    kind: str  # a facility's kind (town, hospital, ...), or township, road, river, bridge
    name: str
    name_zh: str
    lon: float
    lat: float

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "name_zh": self.name_zh,
                "lon": self.lon, "lat": self.lat}


def fold(text: str) -> str:
    """The form names and queries are compared in: NFKC, case-folded, inner spaces collapsed.

    >>> fold("  Ｇ６５  Baotou ")
    'g65 baotou'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _midpoint(line: BaseGeometry, boundary: BaseGeometry) -> tuple[float, float] | None:
    """Halfway along the longest part of ``line`` inside ``boundary``; None if no part is inside."""
    inside = line.intersection(boundary)
    parts = [g for g in getattr(inside, "geoms", [inside]) if isinstance(g, LineString) and not g.is_empty]
    if not parts:
        return None
    p = max(parts, key=lambda g: g.length).interpolate(0.5, normalized=True)
    return (round(p.x, 6), round(p.y, 6))


class Gazetteer:
    """Named places of one district, searchable by name (see the module's docstring)."""

    def __init__(self, places: Iterable[Place]) -> None:
        self._places: dict[str, Place] = {}
        for p in places:
            if p.id in self._places:
                raise GazetteerError(f"place id {p.id!r} is used twice")
            self._places[p.id] = p
        # each place's folded names, computed once
        self._names: list[tuple[Place, tuple[str, ...]]] = [
            (p, tuple(dict.fromkeys(n for n in (fold(p.name), fold(p.name_zh)) if n)))
            for p in self._places.values()]

    @classmethod
    def from_district(cls, district: District) -> Gazetteer:
        """Facilities, townships, roads, rivers and bridges of ``district``."""
        boundary = district.boundary
        places: list[Place] = [Place(f"facility:{f.id}", f.kind, f.name, f.name_zh, f.lon, f.lat)
                               for f in district.facilities if shapely.contains_xy(boundary, f.lon, f.lat)]
        for t in district.townships:
            area = t.area.intersection(boundary)
            if area.is_empty or area.area == 0.0:
                continue
            pt = area.representative_point()
            places.append(Place(f"township:{t.id}", "township", t.name, t.name_zh, round(pt.x, 6), round(pt.y, 6)))
        for family, lines in (("road", district.roads), ("river", district.rivers), ("bridge", district.bridges)):
            for item in lines:
                mid = _midpoint(item.line, boundary)
                if mid is not None:
                    places.append(Place(f"{family}:{item.id}", family, item.name, item.name_zh, *mid))
        return cls(places)

    def __len__(self) -> int:
        return len(self._places)

    def __contains__(self, place_id: object) -> bool:
        return place_id in self._places

    def get(self, place_id: str) -> Place:
        """The place with this id, or ``UnknownPlace``."""
        try:
            return self._places[place_id]
        except KeyError:
            raise UnknownPlace(f"no place {place_id!r} in the district's gazetteer "
                               f"(ids look like 'facility:town-longxing'; search by name first)") from None

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """Places whose Chinese or English name contains ``query``, best first (at most ``limit``).

        Raises ``GazetteerError`` for an empty query, one longer than ``MAX_QUERY_CHARS``, or a
        ``limit`` below 1.
        """
        if limit < 1:
            raise GazetteerError(f"limit must be at least 1, got {limit}")
        if len(query) > MAX_QUERY_CHARS:
            raise GazetteerError(f"a place query may be at most {MAX_QUERY_CHARS} characters, got {len(query)}")
        q = fold(query)
        if not q:
            raise GazetteerError("the place query is empty: type part of a name")
        scored = []
        for place, names in self._names:
            best: tuple[int, int] | None = None
            for name in names:
                if name == q:
                    key = (EXACT, len(name))
                elif name.startswith(q):
                    key = (PREFIX, len(name))
                elif q in name:
                    key = (SUBSTRING, len(name))
                else:
                    continue
                best = key if best is None or key < best else best
            if best is not None:
                scored.append((best, place.name, place.id, place))
        scored.sort(key=lambda s: s[:3])
        return [s[3] for s in scored[:limit]]

    def nearest(self, lon: float, lat: float, *, kinds: Collection[str] | None = None,
                within_m: float = 5_000.0) -> tuple[Place, float] | None:
        """The place (of one of ``kinds``, if given) nearest to a point, with its distance in metres,
        if one lies within ``within_m``: what a point on the map is "near".

        Equirectangular distance on the mean sphere: within a fraction of a per cent over a few
        kilometres, plenty for naming a place.
        """
        best: tuple[float, Place] | None = None
        k = math.cos(math.radians(lat))
        for p in self._places.values():
            if kinds is not None and p.kind not in kinds:
                continue
            d = EARTH_RADIUS_M * math.hypot(math.radians(p.lon - lon) * k, math.radians(p.lat - lat))
            if d <= within_m and (best is None or d < best[0]):
                best = (d, p)
        return (best[1], best[0]) if best is not None else None

    def search_wire(self, query: str, *, limit: int = 10) -> list[Mapping[str, Any]]:
        """``search`` as JSON-ready dicts."""
        return [p.to_wire() for p in self.search(query, limit=limit)]
