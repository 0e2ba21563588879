"""MQTT topic scheme of the sensing room.

Sensors publish SenML (RFC 8428) JSON to ``yingji/sensors/{sensor_id}/senml`` and their
status (retained; ``offline`` is the MQTT will) to ``yingji/sensors/{sensor_id}/status``,
both at QoS 1. A station with a warning siren or light takes commands on
``yingji/sensors/{sensor_id}/command`` and answers each on ``yingji/sensors/{sensor_id}/ack``
(QoS 1, JSON, the command's ``id`` echoed).
"""

from __future__ import annotations

import re

from sensors.model import SensorError

__all__ = [
    "CHANNELS",
    "PREFIX",
    "SENML_SUBSCRIPTION",
    "SENSOR_ID_RE",
    "STATUS_SUBSCRIPTION",
    "ACK_SUBSCRIPTION",
    "ack_topic",
    "command_topic",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "TopicError",
    "is_sensor_id",
    "parse_topic",
    "senml_topic",
    "shared_subscription",
    "status_topic",
]

PREFIX = "yingji/sensors"
SENML_SUBSCRIPTION = f"{PREFIX}/+/senml"
STATUS_SUBSCRIPTION = f"{PREFIX}/+/status"
ACK_SUBSCRIPTION = f"{PREFIX}/+/ack"
CHANNELS = ("senml", "status", "command", "ack")
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"

SENSOR_ID_RE = re.compile(r"[A-Za-z0-9_-]+")


class TopicError(SensorError):
    """A topic that is not ``yingji/sensors/{sensor_id}/{senml|status}``, or a bad sensor id."""


def is_sensor_id(sensor_id: str) -> bool:
    """True if ``sensor_id`` may be used as a topic segment (``[A-Za-z0-9_-]+``)."""
    return isinstance(sensor_id, str) and SENSOR_ID_RE.fullmatch(sensor_id) is not None


def _checked(sensor_id: str) -> str:
    if not is_sensor_id(sensor_id):
        raise TopicError(f"sensor id {sensor_id!r} is not [A-Za-z0-9_-]+")
    return sensor_id


def senml_topic(sensor_id: str) -> str:
    """Topic a sensor publishes its SenML packs to."""
    return f"{PREFIX}/{_checked(sensor_id)}/senml"


def status_topic(sensor_id: str) -> str:
    """Topic of a sensor's retained ``online``/``offline`` status."""
    return f"{PREFIX}/{_checked(sensor_id)}/status"


def command_topic(sensor_id: str) -> str:
    """Topic a station with a siren or light takes commands on."""
    return f"{PREFIX}/{_checked(sensor_id)}/command"


def ack_topic(sensor_id: str) -> str:
    """Topic a station answers its commands on."""
    return f"{PREFIX}/{_checked(sensor_id)}/ack"


def shared_subscription(group: str, topic_filter: str = SENML_SUBSCRIPTION) -> str:
    """``$share/{group}/{filter}``: the broker splits matching messages among the group."""
    if not group or any(c in group for c in "/+#"):
        raise TopicError(f"shared subscription group {group!r} must be non-empty without / + #")
    return f"$share/{group}/{topic_filter}"


def parse_topic(topic: str) -> tuple[str, str]:
    """Split a sensor topic into ``(sensor_id, channel)``; raise ``TopicError`` otherwise.

    >>> parse_topic("yingji/sensors/RL-001/senml")
    ('RL-001', 'senml')
    """
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError(f"topic {topic!r} is not {PREFIX}/{{sensor_id}}/{{senml|status|command|ack}}")
    sensor_id, channel = parts[2], parts[3]
    _checked(sensor_id)
    if channel not in CHANNELS:
        raise TopicError(f"topic {topic!r}: unknown channel {channel!r} (expected {', '.join(CHANNELS)})")
    return sensor_id, channel
