"""Quality control of one resolved SenML record against the sensor registry. Pure.

The checks follow common hydro-meteorological practice: WMO Guide to Instruments and
Methods of Observation (WMO-No. 8), and the WMO Guidelines on Surface Station Data
Quality Control (WMO-No. 1269) — a "gross error" / plausible-range check against
physically possible limits — and GHCN-Daily's QC (Durre et al. 2010, J. Appl. Meteor.
Climatol. 49, 1615-1633: "world record exceedance" and "internal consistency"). Range
limits are per sensor (``valid_min``/``valid_max`` in the registry), so a river gauge's
range follows its datum and its site.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sensors.model import QcNote, Reading, Rejection
from sensors.registry import SensorSpec
from sensors.senml import SenMLError, SenMLRecord, split_name
from sensors.topics import TopicError, parse_topic

__all__ = ["MAX_FUTURE", "REASONS", "check"]

# A reading time this far past the receiver's clock is a device clock error, not data
# (a time-consistency check in the sense of WMO-No. 1269). 5 min is a project choice: far
# above network delay and ordinary logger clock drift, far below a reporting interval
# error that would move a reading into the wrong hour of a rain total.
MAX_FUTURE = timedelta(minutes=5)

# Every rejection reason ingest may give, in the order a payload meets them.
REASONS = (
    "bad_topic",
    "malformed_json",
    "bad_senml",
    "bad_status",
    "bad_ack",
    "sensor_mismatch",
    "unknown_sensor",
    "wrong_quantity",
    "wrong_unit",
    "non_finite",
    "future_time",
)


def check(
    spec: SensorSpec | None,
    record: SenMLRecord,
    *,
    topic: str,
    now: datetime,
) -> Reading | Rejection:
    """Accept ``record`` as a ``Reading`` of ``spec`` or reject it with a reason.

    ``spec`` is the registry entry for the sensor id in ``topic`` (None when unknown).
    """
    try:
        topic_id, channel = parse_topic(topic)
    except TopicError as err:
        return Rejection(topic=topic, reason="bad_topic", detail=str(err))
    if channel != "senml":
        return Rejection(topic=topic, reason="bad_topic", detail=f"readings come on senml topics, not {channel}")
    try:
        name_id, quantity = split_name(record.name)
    except SenMLError as err:
        return Rejection(topic=topic, reason="bad_senml", detail=str(err), sensor_id=topic_id)

    def reject(reason: str, detail: str) -> Rejection:
        return Rejection(topic=topic, reason=reason, detail=f"{record.name}: {detail}", sensor_id=topic_id)

    if name_id is not None and name_id != topic_id:
        return reject("sensor_mismatch", f"record names sensor {name_id!r} but came on the topic of {topic_id!r}")
    if spec is None:
        return reject("unknown_sensor", f"sensor {topic_id!r} is not in the registry")
    if spec.sensor_id != topic_id:
        return reject("sensor_mismatch", f"registry entry {spec.sensor_id!r} given for topic of {topic_id!r}")
    q = spec.quantity_spec(quantity)
    if q is None:
        reports = ", ".join(spec.quantities) if spec.quantities else spec.quantity
        return reject("wrong_quantity", f"a {spec.kind} reports {reports}, not {quantity!r}")
    if record.unit != q.unit:
        got = "no unit" if record.unit is None else f"unit {record.unit!r}"
        return reject("wrong_unit", f"{quantity} must be in {q.unit!r}, got {got}")
    value = record.value
    if isinstance(value, bool) or not isinstance(value, float):
        kind = {str: "a string value 'vs'", bool: "a boolean value 'vb'", bytes: "a data value 'vd'"}
        got = kind.get(type(value), "no value 'v'")
        return reject("bad_senml", f"{quantity} needs a numeric value 'v', got {got}")
    if not math.isfinite(value):
        return reject("non_finite", f"value {value!r} is not a finite number")
    if record.time - now > MAX_FUTURE:
        ahead_s = (record.time - now).total_seconds()
        return reject("future_time", f"time {record.time.isoformat()} is {ahead_s:.0f} s ahead of the receiver's clock")
    reading = Reading(sensor_id=topic_id, quantity=quantity, value=value, unit=q.unit, time=record.time)
    # Gross-error / plausible-range check (WMO-No. 1269; GHCN-Daily, Durre et al. 2010): an
    # impossible value is kept and shown, flagged bad, and never feeds a hazard model.
    if not q.valid_min <= value <= q.valid_max:
        return reading.flagged(QcNote(
            "range", "bad", f"{value:g} {q.unit} is outside the possible range [{q.valid_min:g}, {q.valid_max:g}]"))
    return reading
