"""Sensor registry: what each sensor is, where it stands and what it may report.

Read from the district folder's ``sensors.geojson`` (schema: docs/district-folder.md,
"Sensor properties"). An entry that does not fit the schema raises ``RegistryError``
naming the feature, so a bad district folder fails at start-up, not at the first reading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sensors.kinds import HEALTH_QUANTITIES, KINDS, Kind, Quantity
from sensors.model import SensorError
from sensors.topics import is_sensor_id

__all__ = ["ACTUATORS", "KINDS", "ROUTING_DT_H", "Kind", "Quantity", "Registry", "RegistryError", "SensorSpec"]

# What a field station may carry that the service can switch (a landslide warning station's
# siren and flashing light): commands on yingji/sensors/{id}/command, answers on .../ack.
ACTUATORS = ("siren", "light")


# Muskingum routing from an upstream gauge (``routing`` on a river gauge; used by
# command.risk.assess). The step Δt must keep the Muskingum coefficients non-negative,
# 2KX ≤ Δt ≤ 2K(1−X) (Chow, Maidment & Mays 1988, Applied Hydrology, §8.4): the check of
# command.risk.flood.muskingum_coefficients, made here too so that a bad reach fails at start-up.
# Default step: a quarter hour (three 5-minute gauge reports, fine enough for hours-to-level),
# lengthened to 2KX on a reach whose K and X need a longer one.
ROUTING_DT_H = 0.25
_ROUTING_KEYS = frozenset({"upstream", "k_h", "x", "dt_h", "rating", "upstream_rating", "lateral_m3s", "horizon_h"})
_RATING_KEYS = ("a", "h0_m", "b")  # Q = a·(h − h0)^b (command.risk.flood.RatingCurve)


class RegistryError(SensorError):
    """A sensor registry that does not fit the schema."""


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One registered sensor."""

    sensor_id: str
    kind: str
    name: str
    name_zh: str
    lon: float
    lat: float
    quantity: str  # primary SenML record name, e.g. "level"
    unit: str  # its SenML unit, e.g. "m"
    valid_min: float  # its physically possible range (inclusive)
    valid_max: float
    interval_s: float  # nominal reporting interval
    datum: str | None = None
    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # every record this sensor may report (its kind's, with this site's ranges); empty =
    # only the primary one (a spec built by hand)
    quantities: Mapping[str, Quantity] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def quantity_spec(self, name: str) -> Quantity | None:
        """The limits of record ``name`` for this sensor, or None if it does not report it."""
        q = self.quantities.get(name)
        if q is not None:
            return q
        if name == self.quantity:
            return Quantity(self.quantity, self.unit, self.valid_min, self.valid_max)
        return HEALTH_QUANTITIES.get(name)


def _feature_label(index: int, feature: Any) -> str:
    if isinstance(feature, dict):
        props = feature.get("properties")
        if isinstance(props, dict) and isinstance(props.get("id"), str):
            return f"sensor feature {index} (id {props['id']!r})"
    return f"sensor feature {index}"


def _number(props: Mapping[str, Any], key: str, where: str, *, default: float | None = None) -> float:
    value = props.get(key, default)
    if value is None:
        raise RegistryError(f"{where}: property {key!r} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RegistryError(f"{where}: property {key!r} must be a finite number, got {value!r}")
    return float(value)


def _text(props: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = props.get(key, default)
    if value is None:
        raise RegistryError(f"{where}: property {key!r} is missing")
    if not isinstance(value, str):
        raise RegistryError(f"{where}: property {key!r} must be text, got {value!r}")
    return value


def _spec_from_feature(index: int, feature: Any) -> SensorSpec:
    where = _feature_label(index, feature)
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RegistryError(f"{where}: not a GeoJSON Feature")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        raise RegistryError(f"{where}: geometry must be a Point")
    coords = geometry.get("coordinates")
    if (
        not isinstance(coords, list)
        or len(coords) not in (2, 3)
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coords)
    ):
        raise RegistryError(f"{where}: Point coordinates must be [lon, lat] numbers, got {coords!r}")
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise RegistryError(f"{where}: [lon, lat] = [{lon}, {lat}] is outside WGS84 range")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise RegistryError(f"{where}: properties must be an object")

    sensor_id = _text(props, "id", where)
    if not is_sensor_id(sensor_id):
        raise RegistryError(f"{where}: id {sensor_id!r} must match [A-Za-z0-9_-]+ (it is an MQTT topic segment)")
    kind_name = _text(props, "kind", where)
    kind = KINDS.get(kind_name)
    if kind is None:
        raise RegistryError(f"{where}: kind {kind_name!r} is not one of {', '.join(sorted(KINDS))}")
    quantity = _text(props, "quantity", where, default=kind.quantity)
    if quantity != kind.quantity:
        raise RegistryError(f"{where}: a {kind_name} reports quantity {kind.quantity!r}, not {quantity!r}")
    unit = _text(props, "unit", where, default=kind.unit)
    if unit != kind.unit:
        raise RegistryError(f"{where}: a {kind_name} reports in {kind.unit!r}, not {unit!r}")
    quantities = _site_quantities(kind, props, where)
    valid_min, valid_max = quantities[kind.quantity].valid_min, quantities[kind.quantity].valid_max
    interval_s = _number(props, "interval_s", where)
    if interval_s <= 0:
        raise RegistryError(f"{where}: interval_s must be positive, got {interval_s}")
    datum = props.get("datum")
    if datum is not None and not isinstance(datum, str):
        raise RegistryError(f"{where}: datum must be text, got {datum!r}")
    if kind.datum_required and not datum:
        raise RegistryError(f"{where}: a {kind_name} needs the vertical datum of its levels "
                            f"(datum: Wusong, Huanghai, ...): levels in different datums differ by metres")

    actuators = props.get("actuators", [])
    if not isinstance(actuators, list) or not all(a in ACTUATORS for a in actuators):
        raise RegistryError(f"{where}: actuators must be a list of {', '.join(ACTUATORS)}, got {actuators!r}")

    raw_thresholds = props.get("thresholds", {})
    if raw_thresholds is None:
        raw_thresholds = {}
    if not isinstance(raw_thresholds, dict):
        raise RegistryError(f"{where}: thresholds must be an object, got {raw_thresholds!r}")
    unknown = sorted(set(raw_thresholds) - kind.threshold_keys)
    if unknown:
        raise RegistryError(
            f"{where}: unknown threshold(s) {', '.join(unknown)} for a {kind_name} "
            f"(known: {', '.join(sorted(kind.threshold_keys))})"
        )
    thresholds = {key: _number(raw_thresholds, key, f"{where} thresholds") for key in sorted(raw_thresholds)}
    properties = dict(props)
    if props.get("routing") is not None:
        if kind_name != "river_level":
            raise RegistryError(f"{where}: routing is for river gauges (river_level), not a {kind_name}")
        properties["routing"] = _routing(props["routing"], f"{where} routing")

    return SensorSpec(
        sensor_id=sensor_id,
        kind=kind_name,
        name=_text(props, "name", where, default=sensor_id),
        name_zh=_text(props, "name_zh", where, default=""),
        lon=lon,
        lat=lat,
        quantity=quantity,
        unit=unit,
        valid_min=valid_min,
        valid_max=valid_max,
        interval_s=interval_s,
        datum=datum,
        thresholds=MappingProxyType(thresholds),
        properties=MappingProxyType(properties),
        quantities=MappingProxyType(quantities),
    )


def _rating(raw: Any, where: str) -> dict[str, float]:
    """A stage–discharge rating ``{a, h0_m, b}``: a > 0, b > 0, h0_m finite."""
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be an object {{a, h0_m, b}} (Q = a·(h − h0_m)^b), got {raw!r}")
    out = {key: _number(raw, key, where) for key in _RATING_KEYS}
    for key in ("a", "b"):
        if out[key] <= 0:
            raise RegistryError(f"{where}: {key} must be positive, got {out[key]:g}")
    return out


def _routing(raw: Any, where: str) -> dict[str, Any]:
    """A river gauge's ``routing`` checked, with its step ``dt_h`` filled in (see ROUTING_DT_H).

    The upstream id is checked against the whole registry in ``Registry.from_geojson``.
    """
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be an object, got {raw!r}")
    unknown = sorted(set(raw) - _ROUTING_KEYS)
    if unknown:
        raise RegistryError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_ROUTING_KEYS))})")
    upstream = _text(raw, "upstream", where)
    if not is_sensor_id(upstream):
        raise RegistryError(f"{where}: upstream {upstream!r} is not a sensor id")
    k_h, x = _number(raw, "k_h", where), _number(raw, "x", where)
    if k_h <= 0:
        raise RegistryError(f"{where}: k_h (Muskingum K, the reach's travel time) must be positive hours, got {k_h:g}")
    if not 0.0 <= x <= 0.5:
        raise RegistryError(f"{where}: x (Muskingum X) must lie in [0, 0.5], got {x:g}")
    lo, hi = 2.0 * k_h * x, 2.0 * k_h * (1.0 - x)
    dt_h = _number(raw, "dt_h", where, default=max(ROUTING_DT_H, lo))
    if dt_h <= 0:
        raise RegistryError(f"{where}: dt_h must be positive hours, got {dt_h:g}")
    tol = 1e-9 * max(1.0, hi)
    if not lo - tol <= dt_h <= hi + tol:
        raise RegistryError(f"{where}: step dt_h = {dt_h:g} h is outside 2KX = {lo:g} h ≤ Δt ≤ 2K(1−X) = {hi:g} h "
                            f"(K = {k_h:g} h, X = {x:g}): the routed flow would dip below zero or oscillate; "
                            f"choose dt_h in that range, or split the reach")
    out: dict[str, Any] = {"upstream": upstream, "k_h": k_h, "x": x, "dt_h": dt_h}
    for key in ("rating", "upstream_rating"):
        if raw.get(key) is None:
            raise RegistryError(f"{where}: {key} is missing (the {'downstream' if key == 'rating' else 'upstream'} "
                                f"gauge's stage–discharge rating {{a, h0_m, b}})")
        out[key] = _rating(raw[key], f"{where} {key}")
    out["lateral_m3s"] = _number(raw, "lateral_m3s", where, default=0.0)
    if out["lateral_m3s"] < 0:
        raise RegistryError(f"{where}: lateral_m3s must not be negative, got {out['lateral_m3s']:g}")
    if raw.get("horizon_h") is not None:
        out["horizon_h"] = _number(raw, "horizon_h", where)
        if out["horizon_h"] <= 0:
            raise RegistryError(f"{where}: horizon_h must be positive hours, got {out['horizon_h']:g}")
    return out


def _check_routing(specs: Iterable[SensorSpec], index: Mapping[str, int]) -> None:
    """Every routed gauge's upstream is a registered river gauge, and no chain of reaches loops."""
    by_id = {s.sensor_id: s for s in specs}

    def upstream_of(spec: SensorSpec) -> str | None:
        routing = spec.properties.get("routing")
        return routing["upstream"] if routing else None

    def where(spec: SensorSpec) -> str:
        return f"sensor feature {index[spec.sensor_id]} (id {spec.sensor_id!r}) routing"

    routed = [s for s in by_id.values() if upstream_of(s) is not None]
    for spec in routed:
        up = upstream_of(spec)
        other = by_id.get(up) if up is not None else None
        if other is None:
            raise RegistryError(f"{where(spec)}: upstream {up!r} is not a registered sensor")
        if other.kind != "river_level":
            raise RegistryError(f"{where(spec)}: upstream {up!r} is a {other.kind}, not a river_level gauge")
    for spec in routed:
        up = upstream_of(spec)
        chain = [spec.sensor_id]
        while up is not None and up not in chain:
            chain.append(up)
            up = upstream_of(by_id[up])
        if up is not None:
            raise RegistryError(f"{where(spec)}: the reaches loop ({' → '.join([*chain, up])}): "
                                f"a gauge cannot be upstream of itself")


def _site_quantities(kind: Kind, props: Mapping[str, Any], where: str) -> dict[str, Quantity]:
    """The kind's records with this site's ranges: ``valid_min``/``valid_max`` narrow the
    primary record (required where the kind has no natural range, e.g. a water level,
    whose possible range depends on the gauge's datum and site), ``ranges`` any record."""
    out = dict(kind.quantities)
    primary = kind.primary
    has_own = "valid_min" in props or "valid_max" in props
    if has_own or not (math.isfinite(primary.valid_min) and math.isfinite(primary.valid_max)):
        lo = _number(props, "valid_min", where, default=primary.valid_min if math.isfinite(primary.valid_min) else None)
        hi = _number(props, "valid_max", where, default=primary.valid_max if math.isfinite(primary.valid_max) else None)
        if not lo < hi:
            raise RegistryError(f"{where}: valid_min {lo} must be below valid_max {hi}")
        out[primary.name] = primary.with_range(lo, hi)
    ranges = props.get("ranges") or {}
    if not isinstance(ranges, dict):
        raise RegistryError(f"{where}: ranges must be an object of quantity: [min, max], got {ranges!r}")
    for name, pair in ranges.items():
        if name not in out:
            raise RegistryError(f"{where}: ranges names {name!r}, which a {kind.name} does not report "
                                f"(it reports {', '.join(kind.quantities)})")
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
                or not pair[0] < pair[1]):
            raise RegistryError(f"{where}: ranges.{name} must be [min, max] with min < max, got {pair!r}")
        out[name] = out[name].with_range(float(pair[0]), float(pair[1]))
    return out


class Registry(Mapping[str, SensorSpec]):
    """Registered sensors by id (read-only)."""

    __slots__ = ("_specs",)

    def __init__(self, specs: Iterable[SensorSpec] = ()) -> None:
        self._specs: dict[str, SensorSpec] = {}
        for spec in specs:
            if spec.sensor_id in self._specs:
                raise RegistryError(f"sensor id {spec.sensor_id!r} is registered twice")
            self._specs[spec.sensor_id] = spec

    @classmethod
    def from_geojson(cls, source: str | PathLike[str] | Mapping[str, Any]) -> Registry:
        """Load ``sensors.geojson`` (a path, or an already parsed FeatureCollection)."""
        if isinstance(source, Mapping):
            data: Any = source
            origin = "sensor registry"
        else:
            path = Path(source)
            origin = str(path)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except OSError as err:
                raise RegistryError(f"{origin}: cannot read: {err.strerror or err}") from err
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise RegistryError(f"{origin}: not JSON: {err}") from err
        if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
            raise RegistryError(f"{origin}: not a GeoJSON FeatureCollection")
        features = data.get("features")
        if not isinstance(features, list):
            raise RegistryError(f"{origin}: 'features' must be a list")
        specs: list[SensorSpec] = []
        seen: dict[str, int] = {}
        for index, feature in enumerate(features):
            try:
                spec = _spec_from_feature(index, feature)
            except RegistryError as err:
                raise RegistryError(f"{origin}: {err}") from None
            if spec.sensor_id in seen:
                raise RegistryError(
                    f"{origin}: sensor feature {index} repeats id {spec.sensor_id!r} "
                    f"(first in sensor feature {seen[spec.sensor_id]})"
                )
            seen[spec.sensor_id] = index
            specs.append(spec)
        try:
            _check_routing(specs, seen)
        except RegistryError as err:
            raise RegistryError(f"{origin}: {err}") from None
        return cls(specs)

    def __getitem__(self, sensor_id: str) -> SensorSpec:
        return self._specs[sensor_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Registry({len(self)} sensors)"

    def of_kind(self, kind: str) -> list[SensorSpec]:
        """Sensors of one kind, in registry order."""
        return [spec for spec in self._specs.values() if spec.kind == kind]
