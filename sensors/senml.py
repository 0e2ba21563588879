"""SenML (RFC 8428) JSON: decode and resolve packs, encode packs for simulators.

Pure: no clock inside. Relative times (RFC 8428 §4.5.3) need ``now`` passed in.

Resolution follows RFC 8428 §4.6: base fields (``bn bt bu bv bs bver``) apply to the
record they appear in and every later record until changed; the name is ``bn + n``,
the time ``bt + t`` (relative to ``now`` when below 2**28), the unit ``u`` or else
``bu``, the numeric value ``bv + v`` and the sum ``bs + s``.

Device naming in Yingji: ``bn = "urn:dev:yingji:{sensor_id}:"`` (or ``"{sensor_id}:"``)
and ``n = "level"`` / ``"rain"``; :func:`split_name` takes a resolved name apart.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sensors.model import SensorError

__all__ = [
    "NAME_PREFIX",
    "RELATIVE_TIME_LIMIT_S",
    "SENML_VERSION",
    "Sample",
    "SenMLError",
    "SenMLJSONError",
    "SenMLRecord",
    "decode",
    "decode_each",
    "encode",
    "parse_pack",
    "resolve",
    "split_name",
]

# RFC 8428 §4.5.3: times below 2**28 s are relative to the current time.
RELATIVE_TIME_LIMIT_S = 2**28
# RFC 8428 §4.4: the default (and highest version this decoder knows) is 10.
SENML_VERSION = 10
# Yingji device names: "urn:dev:yingji:{sensor_id}:{quantity}" (RFC 8428 §4.5.1 suggests
# globally unique names such as urn:dev: URNs, RFC 9039).
NAME_PREFIX = "urn:dev:yingji:"

# RFC 8428 §4.5.1: name characters, first one a letter or digit.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*")
_SENSOR_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")

_BASE_FIELDS = ("bn", "bt", "bu", "bv", "bs", "bver")
_VALUE_FIELDS = ("v", "vs", "vb", "vd")
_RECORD_FIELDS = ("n", "u", "s", "t", "ut", *_VALUE_FIELDS)
_KNOWN = frozenset(_BASE_FIELDS + _RECORD_FIELDS)
_STRING_FIELDS = frozenset({"bn", "bu", "n", "u", "vs", "vd"})
_NUMBER_FIELDS = frozenset({"bt", "bv", "bs", "bver", "v", "s", "t", "ut"})

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SenMLError(SensorError):
    """A payload that is not valid SenML; ``code`` is the rejection reason."""

    code = "bad_senml"

    def __init__(self, detail: str, *, index: int | None = None) -> None:
        self.detail = detail
        self.index = index  # record position in the pack, None for the whole pack
        super().__init__(detail if index is None else f"record {index}: {detail}")


class SenMLJSONError(SenMLError):
    """A payload that is not JSON text at all."""

    code = "malformed_json"


@dataclass(frozen=True, slots=True)
class SenMLRecord:
    """One resolved SenML record (RFC 8428 §4.6): absolute name and time, no base fields.

    ``value`` is a float for ``v``, ``str`` for ``vs``, ``bool`` for ``vb``, ``bytes`` for
    ``vd`` and ``None`` when the record carries only a sum.
    """

    name: str
    time: datetime  # aware UTC
    value: float | str | bool | bytes | None = None
    unit: str | None = None
    sum: float | None = None
    update_time_s: float | None = None
    index: int = 0  # position in the pack


class _Measurement(Protocol):
    @property
    def quantity(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def unit(self) -> str: ...
    @property
    def time(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement to encode (``Reading`` works as well)."""

    quantity: str
    value: float
    unit: str
    time: datetime


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise SenMLError(f"field {key!r} appears twice in one record")
        obj[key] = value
    return obj


def parse_pack(payload: bytes | bytearray | str) -> list[dict[str, Any]]:
    """Parse JSON text into a SenML pack (a list of record objects), checking only shape."""
    try:
        text = payload.decode("utf-8") if isinstance(payload, (bytes, bytearray)) else payload
    except UnicodeDecodeError as err:
        raise SenMLJSONError(f"payload is not UTF-8 text: {err.reason} at byte {err.start}") from None
    try:
        pack = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise SenMLJSONError(f"payload is not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise SenMLJSONError("payload is not JSON: nested too deeply") from None
    if not isinstance(pack, list):
        raise SenMLError(f"a SenML pack is a JSON array of records, got a JSON {_type_name(pack)}")
    if not pack:
        raise SenMLError("the SenML pack is an empty array")
    for i, record in enumerate(pack):
        if not isinstance(record, dict):
            raise SenMLError(f"a SenML record is a JSON object, got a JSON {_type_name(record)}", index=i)
    return pack


def _field(record: dict[str, Any], key: str, index: int) -> Any:
    value = record[key]
    if key in _STRING_FIELDS:
        if not isinstance(value, str):
            raise SenMLError(f"field {key!r} must be a string, got {_type_name(value)} {value!r}", index=index)
    elif key in _NUMBER_FIELDS:
        # bool is an int in Python but not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SenMLError(f"field {key!r} must be a number, got {_type_name(value)} {value!r}", index=index)
        value = float(value)
    elif key == "vb" and not isinstance(value, bool):
        raise SenMLError(f"field 'vb' must be true or false, got {_type_name(value)} {value!r}", index=index)
    return value


def _to_time(seconds: float, now: datetime, index: int) -> datetime:
    if not math.isfinite(seconds):
        raise SenMLError(f"time {seconds!r} is not a finite number", index=index)
    try:
        if seconds < RELATIVE_TIME_LIMIT_S:  # RFC 8428 §4.5.3: relative to now
            return now + timedelta(seconds=seconds)
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise SenMLError(f"time {seconds!r} is out of range", index=index) from None


class _Bases:
    __slots__ = ("bn", "bs", "bt", "bu", "bv", "bver")

    def __init__(self) -> None:
        self.bn = ""
        self.bt = 0.0
        self.bu: str | None = None
        self.bv: float | None = None
        self.bs: float | None = None
        self.bver: int | None = None


def _update_bases(bases: _Bases, record: dict[str, Any], index: int) -> None:
    for key in _BASE_FIELDS:
        if key not in record:
            continue
        value = _field(record, key, index)
        if key == "bver":
            if value != int(value) or value < 1:
                raise SenMLError(f"base version {value!r} is not a positive integer", index=index)
            version = int(value)
            if version > SENML_VERSION:
                raise SenMLError(f"SenML version {version} is newer than {SENML_VERSION}", index=index)
            if bases.bver is not None and version != bases.bver:
                raise SenMLError(f"records of one pack carry versions {bases.bver} and {version}", index=index)
            bases.bver = version
        else:
            setattr(bases, key, value)


def _resolve_one(bases: _Bases, record: dict[str, Any], index: int, now: datetime) -> SenMLRecord:
    present = [key for key in _VALUE_FIELDS if key in record]
    if len(present) > 1:
        raise SenMLError(f"a record carries one value field, got {' and '.join(present)}", index=index)
    name = bases.bn + (_field(record, "n", index) if "n" in record else "")
    if not name:
        raise SenMLError("record has no name (neither 'bn' nor 'n')", index=index)
    if not _NAME_RE.fullmatch(name):
        raise SenMLError(f"name {name!r} has characters outside A-Z a-z 0-9 - : . / _", index=index)
    unit = _field(record, "u", index) if "u" in record else bases.bu
    value: float | str | bool | bytes | None = None
    if present:
        key = present[0]
        raw = _field(record, key, index)
        if key == "v":
            value = raw + (bases.bv or 0.0)
        elif key == "vd":
            try:  # RFC 8428 §4.3: base64url (RFC 4648 §5) without padding
                if not _B64URL_RE.fullmatch(raw):
                    raise ValueError(raw)
                value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            except (binascii.Error, ValueError):
                raise SenMLError(f"'vd' {raw!r} is not base64url", index=index) from None
        else:
            value = raw
    elif bases.bv is not None and "s" not in record:
        value = bases.bv  # the base value stands for an absent value
    total = _field(record, "s", index) + (bases.bs or 0.0) if "s" in record else bases.bs
    if value is None and total is None:
        raise SenMLError(f"record {name!r} has no value (v, vs, vb, vd) and no sum (s)", index=index)
    seconds = bases.bt + (_field(record, "t", index) if "t" in record else 0.0)
    update_time = _field(record, "ut", index) if "ut" in record else None
    if update_time is not None and (update_time < 0 or not math.isfinite(update_time)):
        raise SenMLError(f"update time 'ut' {update_time!r} must be a non-negative number", index=index)
    return SenMLRecord(
        name=name,
        time=_to_time(seconds, now, index),
        value=value,
        unit=unit,
        sum=total,
        update_time_s=update_time,
        index=index,
    )


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def resolve(pack: Sequence[dict[str, Any]], *, now: datetime) -> list[SenMLRecord | SenMLError]:
    """Resolve a parsed pack record by record; a bad record becomes a ``SenMLError`` in place.

    A bad base field poisons its own record and every later record (their base context is
    unknown); a bad regular field poisons only its record. Records carrying only base
    fields set context and yield nothing.
    """
    _check_now(now)
    now = now.astimezone(timezone.utc)
    bases = _Bases()
    results: list[SenMLRecord | SenMLError] = []
    poisoned: SenMLError | None = None
    for index, record in enumerate(pack):
        if poisoned is not None:
            results.append(SenMLError(f"follows a bad base field in record {poisoned.index}", index=index))
            continue
        unknown = [key for key in record if key not in _KNOWN and key.endswith("_")]
        if unknown:  # RFC 8428 §4.4: labels ending in "_" must be understood
            results.append(SenMLError(f"unknown must-understand field {unknown[0]!r}", index=index))
            continue
        try:
            _update_bases(bases, record, index)
        except SenMLError as err:
            poisoned = err
            results.append(err)
            continue
        if not any(key in record for key in _RECORD_FIELDS):
            continue  # only base fields: context for the records that follow
        try:
            results.append(_resolve_one(bases, record, index, now))
        except SenMLError as err:
            results.append(err)
    return results


def decode_each(payload: bytes | bytearray | str, *, now: datetime) -> list[SenMLRecord | SenMLError]:
    """Parse and resolve; raise ``SenMLError`` only if the pack as a whole is unusable."""
    return resolve(parse_pack(payload), now=now)


def decode(payload: bytes | bytearray | str, *, now: datetime) -> list[SenMLRecord]:
    """Parse and resolve strictly: the first bad record raises ``SenMLError``.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2024, 7, 1, tzinfo=timezone.utc)
    >>> [(r.name, r.value) for r in decode(b'[{"bn":"RL-1:","n":"level","u":"m","v":3.5}]', now=now)]
    [('RL-1:level', 3.5)]
    """
    records: list[SenMLRecord] = []
    for item in decode_each(payload, now=now):
        if isinstance(item, SenMLError):
            raise item
        records.append(item)
    return records


def split_name(name: str) -> tuple[str | None, str]:
    """Split a resolved name into ``(sensor_id, quantity)``.

    ``"urn:dev:yingji:RL-1:level"`` and ``"RL-1:level"`` give ``("RL-1", "level")``; a bare
    ``"level"`` gives ``(None, "level")`` (the topic then says which sensor). Raise
    ``SenMLError`` for a name that is not in this scheme.
    """
    rest = name[len(NAME_PREFIX) :] if name.startswith(NAME_PREFIX) else name
    if ":" not in rest:
        if not rest:
            raise SenMLError(f"name {name!r} has no quantity after the sensor id")
        return None, rest
    sensor_id, quantity = rest.rsplit(":", 1)
    if not _SENSOR_ID_RE.fullmatch(sensor_id):
        raise SenMLError(f"name {name!r} is not [urn:dev:yingji:]{{sensor_id}}:{{quantity}}")
    if not quantity:
        raise SenMLError(f"name {name!r} has no quantity after the sensor id")
    return sensor_id, quantity


def _epoch_s(time: datetime) -> float:
    if time.tzinfo is None:
        raise ValueError("sample time must be timezone-aware")
    return round((time - _EPOCH).total_seconds(), 3)


def encode(sensor_id: str, records: Iterable[_Measurement]) -> bytes:
    """Encode one sensor's measurements as a compact SenML JSON pack.

    The first record carries ``bn = "urn:dev:yingji:{sensor_id}:"`` and ``bt`` (absolute);
    later records carry times relative to ``bt``.
    """
    if not _SENSOR_ID_RE.fullmatch(sensor_id):
        raise SenMLError(f"sensor id {sensor_id!r} is not [A-Za-z0-9_-]+")
    pack: list[dict[str, Any]] = []
    base_s: float | None = None
    for sample in records:
        if isinstance(sample.value, bool) or not isinstance(sample.value, (int, float)):
            raise SenMLError(f"{sample.quantity}: value {sample.value!r} is not a number")
        t_s = _epoch_s(sample.time)
        entry: dict[str, Any] = {}
        if base_s is None:
            base_s = t_s
            entry = {"bn": f"{NAME_PREFIX}{sensor_id}:", "bt": t_s}
        entry["n"] = sample.quantity
        entry["u"] = sample.unit
        entry["v"] = float(sample.value)
        if t_s != base_s:
            entry["t"] = round(t_s - base_s, 3)
        pack.append(entry)
    if not pack:
        raise SenMLError("nothing to encode")
    # allow_nan: a device may send NaN; the ingest side rejects it as non_finite.
    return json.dumps(pack, separators=(",", ":")).encode()
