"""Ingest client: MQTT messages in, quality-controlled readings out.

One bad message never stops the loop and is never dropped silently: every rejection is
counted by reason, logged (logger ``sensors.ingest``, WARNING, with topic and reason)
and handed to ``on_rejection``. Good records of a pack go through even when other
records of the same pack are rejected; readings keep the order they arrived in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiomqtt

from sensors.aio import raise_if_cancelling
from sensors.model import Reading, Rejection, RejectionLog
from sensors.qc import check
from sensors.registry import Registry
from sensors.senml import SenMLError, decode_each, split_name
from sensors.topics import (
    ACK_SUBSCRIPTION,
    SENML_SUBSCRIPTION,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_SUBSCRIPTION,
    TopicError,
    parse_topic,
    senml_topic,
    shared_subscription,
)

__all__ = ["IngestStats", "Ingestor"]

log = logging.getLogger("sensors.ingest")



@dataclass(slots=True)
class IngestStats:
    """Counters of one ingestor (read them; only the ingestor writes them)."""

    messages: int = 0  # MQTT messages handled (senml and status)
    accepted: int = 0  # readings passed to on_readings
    rejected: Counter[str] = field(default_factory=Counter)  # by reason code
    duplicates: int = 0  # QoS 1 redeliveries of a reading already accepted
    status_updates: int = 0
    status_cleared: int = 0  # empty retained status messages (deletions)
    handler_errors: int = 0  # exceptions raised by on_readings / on_rejection / on_status
    backlog_max: int = 0  # most messages seen waiting in the client queue

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Ingestor:
    """Turns sensor MQTT messages into ``Reading`` batches and ``Rejection`` reports."""

    def __init__(
        self,
        *,
        registry: Registry,
        on_readings: Callable[[list[Reading]], Awaitable[None]],
        on_rejection: Callable[[Rejection], Awaitable[None]] | None = None,
        on_status: Callable[[str, str], Awaitable[None]] | None = None,
        on_ack: Callable[[str, dict[str, object]], Awaitable[None]] | None = None,
        clock: Callable[[], datetime],
        shared_group: str | None = None,
    ) -> None:
        self.registry = registry
        self.stats = IngestStats()
        self._on_readings = on_readings
        self._on_rejection = on_rejection
        self._on_status = on_status
        self._on_ack = on_ack
        self._clock = clock
        self._shared_group = shared_group
        # Last accepted (time, value) per (sensor, quantity): spots QoS 1 redeliveries.
        # Bounded by the registry: only known sensors get here.
        self._last: dict[tuple[str, str], tuple[datetime, float]] = {}
        self._rejection_log = RejectionLog(log)
        self.subscribed = asyncio.Event()  # set once ``run`` holds its subscriptions

    @property
    def subscriptions(self) -> list[str]:
        """Topic filters ``run`` subscribes to.

        Status stays a plain subscription even with a shared group: brokers do not send
        retained messages to shared subscriptions (MQTT 5.0 §4.8.2), and every replica
        wants to know which devices are online.
        """
        senml = SENML_SUBSCRIPTION
        if self._shared_group is not None:
            senml = shared_subscription(self._shared_group, SENML_SUBSCRIPTION)
        return [senml, STATUS_SUBSCRIPTION, ACK_SUBSCRIPTION]

    async def run(self, client: aiomqtt.Client) -> None:
        """Subscribe (QoS 1) and handle messages until cancelled or disconnected.

        A lost connection raises ``aiomqtt.MqttError``: the caller owns reconnection.
        """
        for topic_filter in self.subscriptions:
            await client.subscribe(topic_filter, qos=1)
            raise_if_cancelling()  # else the loop below could wait forever after a stop
        log.info("subscribed to %s", ", ".join(self.subscriptions))
        self.subscribed.set()
        try:
            async for message in client.messages:
                backlog = len(client.messages)
                if backlog > self.stats.backlog_max:
                    self.stats.backlog_max = backlog
                payload = message.payload
                if isinstance(payload, str):
                    data = payload.encode()
                elif isinstance(payload, (bytes, bytearray)):
                    data = bytes(payload)
                elif payload is None:
                    data = b""
                else:
                    data = str(payload).encode()
                try:
                    await self.handle(message.topic.value, data)
                except Exception:  # one bad message never kills the loop
                    self.stats.handler_errors += 1
                    log.exception("error handling a message on %s", message.topic.value)
        finally:
            self.subscribed.clear()

    async def handle(self, topic: str, payload: bytes) -> None:
        """Handle one message: decode, check, hand readings/rejections/status on."""
        self.stats.messages += 1
        try:
            sensor_id, channel = parse_topic(topic)
        except TopicError as err:
            await self._reject(Rejection(topic=topic, reason="bad_topic", detail=str(err)))
            return
        if channel == "status":
            await self._handle_status(topic, sensor_id, payload)
            return
        if channel == "ack":
            await self._handle_ack(topic, sensor_id, payload)
            return
        if channel == "command":
            return  # our own commands to stations (not subscribed; a wildcard bridge may echo them)

        now = self._clock()
        try:
            items = decode_each(payload, now=now)
        except SenMLError as err:
            await self._reject(Rejection(topic=topic, reason=err.code, detail=str(err), sensor_id=sensor_id))
            return
        spec = self.registry.get(sensor_id)
        readings: list[Reading] = []
        for item in items:
            if isinstance(item, SenMLError):
                await self._reject(Rejection(topic=topic, reason=item.code, detail=str(item), sensor_id=sensor_id))
                continue
            result = check(spec, item, topic=topic, now=now)
            if isinstance(result, Rejection):
                await self._reject(result)
            elif self._is_duplicate(result):
                self.stats.duplicates += 1
                log.debug("duplicate reading dropped: %s", result)
            else:
                readings.append(result)
        if readings:
            self.stats.accepted += len(readings)
            await self._call("on_readings", self._on_readings, readings)

    async def check_pack(self, payload: bytes, *, source: str = "http") -> tuple[list[Reading], list[Rejection]]:
        """Check a SenML pack that came without a topic (``POST /api/ingest/senml``).

        Each record's name carries its sensor id (``urn:dev:yingji:{id}:{quantity}``, often
        through a base name), so one pack may hold several sensors. Rejections are counted
        and reported like MQTT ones (with ``source`` in place of a topic); the accepted
        readings are returned, not handed to ``on_readings``: the caller stores them.
        """
        self.stats.messages += 1
        now = self._clock()
        try:
            items = decode_each(payload, now=now)
        except SenMLError as err:
            rejection = Rejection(topic=source, reason=err.code, detail=str(err))
            await self._reject(rejection)
            return [], [rejection]
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        for index, item in enumerate(items):
            if isinstance(item, SenMLError):
                rejection = Rejection(topic=source, reason=item.code, detail=f"record {index}: {item}")
            else:
                try:
                    sensor_id, _ = split_name(item.name)
                except SenMLError as err:
                    sensor_id, rejection = None, Rejection(topic=source, reason="bad_senml",
                                                           detail=f"record {index}: {err}")
                if sensor_id is None:
                    rejection = Rejection(topic=source, reason="bad_senml", detail=(
                        f"record {index}: name {item.name!r} does not say which sensor "
                        "(use bn 'urn:dev:yingji:{sensor_id}:')"))
                else:
                    result = check(self.registry.get(sensor_id), item, topic=senml_topic(sensor_id), now=now)
                    if isinstance(result, Reading):
                        if self._is_duplicate(result):
                            self.stats.duplicates += 1
                        else:
                            readings.append(result)
                        continue
                    rejection = Rejection(topic=source, reason=result.reason, detail=f"record {index}: {result.detail}",
                                          sensor_id=result.sensor_id)
            rejections.append(rejection)
            await self._reject(rejection)
        self.stats.accepted += len(readings)
        return readings, rejections

    def _is_duplicate(self, reading: Reading) -> bool:
        key = (reading.sensor_id, reading.quantity)
        seen = (reading.time, reading.value)
        if self._last.get(key) == seen:
            return True
        previous = self._last.get(key)
        if previous is None or reading.time >= previous[0]:
            self._last[key] = seen
        return False

    async def _handle_ack(self, topic: str, sensor_id: str, payload: bytes) -> None:
        """A station's answer to a command: ``{"id": ..., "ok": bool, "state": ..., "detail": ...}``."""
        try:
            data = json.loads(payload)
            if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("ok"), bool):
                raise ValueError("needs an object with 'id' (text) and 'ok' (true/false)")
        except ValueError as err:
            await self._reject(Rejection(topic=topic, reason="bad_ack", detail=str(err)[:200], sensor_id=sensor_id))
            return
        if sensor_id not in self.registry:
            await self._reject(Rejection(topic=topic, reason="unknown_sensor",
                                         detail=f"answer from sensor {sensor_id!r}, which is not in the registry",
                                         sensor_id=sensor_id))
            return
        if self._on_ack is not None:
            await self._call("on_ack", self._on_ack, sensor_id, data)

    async def _handle_status(self, topic: str, sensor_id: str, payload: bytes) -> None:
        if not payload:
            # An empty retained message deletes the retained status (MQTT 3.1.1 §3.3.1.3),
            # e.g. when a sensor is decommissioned: nothing to report, nothing wrong.
            self.stats.status_cleared += 1
            log.debug("retained status of %s cleared", sensor_id)
            return
        text = payload.decode("utf-8", errors="replace").strip()
        if text not in (STATUS_ONLINE, STATUS_OFFLINE):
            await self._reject(
                Rejection(
                    topic=topic,
                    reason="bad_status",
                    detail=f"status must be {STATUS_ONLINE!r} or {STATUS_OFFLINE!r}, got {text[:40]!r}",
                    sensor_id=sensor_id,
                )
            )
            return
        if sensor_id not in self.registry:
            await self._reject(
                Rejection(
                    topic=topic,
                    reason="unknown_sensor",
                    detail=f"status {text!r} from sensor {sensor_id!r}, which is not in the registry",
                    sensor_id=sensor_id,
                )
            )
            return
        self.stats.status_updates += 1
        if self._on_status is not None:
            await self._call("on_status", self._on_status, sensor_id, text)

    async def _reject(self, rejection: Rejection) -> None:
        self.stats.rejected[rejection.reason] += 1
        self._rejection_log.note(rejection)
        if self._on_rejection is not None:
            await self._call("on_rejection", self._on_rejection, rejection)

    async def _call(self, what: str, callback: Callable[..., Awaitable[None]], *args: object) -> None:
        try:
            await callback(*args)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("%s raised; the ingest loop goes on", what)
