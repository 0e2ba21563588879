"""Simulated field devices: publish SenML and status for registered sensors over MQTT.

Values come from a provider ``value_at(spec, sim_time) -> float | Mapping[str, float] | None``
(a scenario; ``None`` means "no report this time"; a number is the primary record, a mapping
names each record of a multi-record kind, published in one SenML pack with the registry's units). For a rain gauge the provider returns the
precipitation in mm during ``(sim_time - spec.interval_s, sim_time]``; the simulator
passes a spec whose ``interval_s`` is the interval actually used.

Connections. A real 5G sensor has its own MQTT connection, whose will marks it
``offline``; ``devices_per_client=1`` does exactly that (the default up to
``AUTO_GATEWAY_ABOVE`` devices). For thousands of sensors one process cannot hold
thousands of connections cheaply, so ``devices_per_client=N`` (default
``AUTO_GATEWAY_SIZE`` above that) makes each connection a *gateway* for N devices (as field data
loggers with several probes do): it publishes ``online`` (retained) for each device on
connect and ``offline`` for each on a clean stop. MQTT allows one will per connection,
so a gateway's will goes to ``yingji/gateways/{gateway_id}/status``; consumers notice an
unclean loss of a gateway's devices by that topic or by their silence.

Time runs at a speed factor: ``sim_time = start + (wall elapsed) * speed``
(:class:`SimClock`); pass the same clock to the ingest side.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import aiomqtt

from sensors.aio import raise_if_cancelling
from sensors.mqtturl import MqttUrl, parse_mqtt_url
from sensors.registry import SensorSpec
from sensors.senml import Sample, encode
from sensors.topics import (STATUS_OFFLINE, STATUS_ONLINE, ack_topic, command_topic, parse_topic, senml_topic,
                            status_topic)

__all__ = [
    "AUTO_GATEWAY_ABOVE",
    "AUTO_GATEWAY_SIZE",
    "GATEWAY_STATUS_PREFIX",
    "DeviceFleet",
    "FleetStats",
    "SimClock",
    "SimulatedSensor",
    "ValueAt",
    "gateway_status_topic",
    "run_devices",
]

log = logging.getLogger("sensors.devices")

ValueAt = Callable[[SensorSpec, datetime], "float | Mapping[str, float] | None"]
GATEWAY_STATUS_PREFIX = "yingji/gateways"

# Above this many devices, one process opens gateway connections instead of one per device
# (each aiomqtt client costs a socket, a paho client and a task).
AUTO_GATEWAY_ABOVE = 200
AUTO_GATEWAY_SIZE = 50

_MAX_SLEEP_S = 0.5  # wall seconds between clock looks, so a changed clock is followed
_OP_TIMEOUT_S = 10.0  # deadline for one broker operation (connect, publish)


def gateway_status_topic(gateway_id: str) -> str:
    """Status topic (retained, will) of a gateway connection."""
    return f"{GATEWAY_STATUS_PREFIX}/{gateway_id}/status"


class SimClock:
    """Simulation time: ``start + (wall elapsed) * speed``, from a monotonic wall clock."""

    __slots__ = ("_wall", "_wall0", "speed", "start")

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start if start is not None else datetime.now(timezone.utc)
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.speed = speed
        self._wall = wall
        self._wall0 = wall()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(self._wall() - self._wall0) * self.speed)


@dataclass(slots=True)
class FleetStats:
    """What a fleet has done so far."""

    published: int = 0  # SenML messages
    skipped: int = 0  # value_at returned None
    provider_errors: int = 0  # value_at raised
    connects: int = 0
    disconnects: int = 0
    commands: int = 0  # siren/light commands answered
    subscribed: int = 0  # actuator connections listening for commands


@dataclass(frozen=True, slots=True)
class SimulatedSensor:
    """One simulated device: its registry entry and reporting interval (sim seconds)."""

    spec: SensorSpec
    interval_s: float
    actuators: dict[str, str] = field(default_factory=dict, compare=False)  # siren/light → on/off

    def obey(self, payload: bytes) -> dict[str, object]:
        """Carry out a siren/light command; the answer the station sends back."""
        try:
            cmd = json.loads(payload)
            if not isinstance(cmd, dict) or not isinstance(cmd.get("id"), str):
                raise ValueError("a command is an object with an 'id'")
        except ValueError as err:
            return {"id": "", "ok": False, "detail": f"unreadable command: {err}"[:200]}
        actuator, state = cmd.get("actuator"), cmd.get("state")
        if actuator not in (self.spec.properties.get("actuators") or []):
            return {"id": cmd["id"], "ok": False, "detail": f"this station has no {actuator!r}"}
        if state not in ("on", "off"):
            return {"id": cmd["id"], "ok": False, "detail": f"state must be on or off, got {state!r}"}
        self.actuators[actuator] = state
        return {"id": cmd["id"], "ok": True, "actuator": actuator, "state": state}

    def samples(self, value_at: ValueAt, at: datetime) -> list[Sample]:
        """Every record the provider gives at ``at`` (empty: no report); units from the registry."""
        value = value_at(self.spec, at)
        if value is None:
            return []
        if not isinstance(value, Mapping):
            return [Sample(quantity=self.spec.quantity, value=float(value), unit=self.spec.unit, time=at)]
        out = []
        for name, v in value.items():
            q = self.spec.quantity_spec(name)
            if q is None:
                raise ValueError(f"a {self.spec.kind} does not report {name!r}")
            out.append(Sample(quantity=name, value=float(v), unit=q.unit, time=at))
        return out

    def sample(self, value_at: ValueAt, at: datetime) -> Sample | None:
        """Ask the provider for this device's value at ``at``."""
        value = value_at(self.spec, at)
        if value is None:
            return None
        return Sample(quantity=self.spec.quantity, value=float(value), unit=self.spec.unit, time=at)


@dataclass(slots=True)
class DeviceFleet:
    """Simulated devices grouped onto MQTT connections; ``run()`` until cancelled."""

    broker: MqttUrl
    devices: Sequence[SimulatedSensor]
    value_at: ValueAt
    clock: Callable[[], datetime]
    speed: float = 1.0
    devices_per_client: int = 1
    identifier_prefix: str = "yingji-sim"
    stats: FleetStats = field(default_factory=FleetStats)
    # (username, password) per connection name: a sensor id for a device alone, ``gw-{id}`` for a
    # gateway, ``actuators`` for the stations' command connection (a broker with per-sensor users,
    # command.mqtt_access); a connection not named here logs in with the broker URL's credentials.
    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def login(self, name: str) -> tuple[str | None, str | None]:
        """Username and password of connection ``name``."""
        return self.credentials.get(name, (self.broker.username, self.broker.password))

    def groups(self) -> list[tuple[str, list[SimulatedSensor]]]:
        """(name, devices) per connection; a device alone is named after itself."""
        size = max(1, self.devices_per_client)
        out = []
        for i in range(0, len(self.devices), size):
            group = list(self.devices[i : i + size])
            # A gateway is named after its first device, so two fleets never share a name.
            name = group[0].spec.sensor_id if size == 1 else f"gw-{group[0].spec.sensor_id}"
            out.append((name, group))
        return out

    async def run(self) -> None:
        """Run every connection until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for name, group in self.groups():
                tg.create_task(self._run_connection(name, group), name=f"sim-{name}")
            actuated = [d for d in self.devices if d.spec.properties.get("actuators")]
            if actuated:
                tg.create_task(self._run_actuators(actuated), name="sim-actuators")

    async def _run_actuators(self, devices: list[SimulatedSensor]) -> None:
        """The stations' siren/light controllers: obey commands and answer each (own connection)."""
        by_id = {d.spec.sensor_id: d for d in devices}
        username, password = self.login("actuators")
        backoff_s = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host, self.broker.port, username=username,
                    password=password, identifier=f"{self.identifier_prefix}-actuators",
                    protocol=aiomqtt.ProtocolVersion.V311, timeout=_OP_TIMEOUT_S, keepalive=10,
                ) as client:
                    backoff_s = 0.2
                    for sid in by_id:
                        await client.subscribe(command_topic(sid), qos=1)
                        raise_if_cancelling()
                    self.stats.subscribed += 1
                    async for message in client.messages:
                        sid, _ = parse_topic(message.topic.value)
                        answer = by_id[sid].obey(bytes(message.payload) if isinstance(
                            message.payload, (bytes, bytearray)) else str(message.payload).encode())
                        self.stats.commands += 1  # obeyed (counted before the answer can reach anyone)
                        await client.publish(ack_topic(sid), json.dumps(answer), qos=1)
            except aiomqtt.MqttError as err:
                log.warning("actuator connection lost (%s); retrying in %.1f s", err, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)

    async def _run_connection(self, name: str, group: list[SimulatedSensor]) -> None:
        gateway = self.devices_per_client > 1
        will_topic = gateway_status_topic(name) if gateway else status_topic(name)
        # Stagger first reports over one interval so a fleet does not report in bursts.
        first = self.clock()
        queue: list[tuple[datetime, int]] = []
        for k, device in enumerate(group):
            offset = device.interval_s * ((zlib.crc32(device.spec.sensor_id.encode()) % 1000) / 1000.0)
            queue.append((first + timedelta(seconds=offset), k))
        heapq.heapify(queue)
        username, password = self.login(name)
        backoff_s = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=username,
                    password=password,
                    identifier=f"{self.identifier_prefix}-{name}",
                    protocol=aiomqtt.ProtocolVersion.V311,
                    will=aiomqtt.Will(will_topic, STATUS_OFFLINE, qos=1, retain=True),
                    timeout=_OP_TIMEOUT_S,
                    keepalive=10,
                ) as client:
                    self.stats.connects += 1
                    backoff_s = 0.2
                    try:
                        await self._serve(client, name, group, queue, will_topic if gateway else None)
                    except asyncio.CancelledError:
                        await self._say_offline(client, group, will_topic if gateway else None)
                        raise
            except aiomqtt.MqttError as err:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    # aiomqtt's disconnect may raise MqttError in place of the CancelledError
                    raise asyncio.CancelledError from err
                self.stats.disconnects += 1
                log.warning("device connection %s lost (%s); retrying in %.1f s", name, err, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)

    async def _serve(
        self,
        client: aiomqtt.Client,
        name: str,
        group: list[SimulatedSensor],
        queue: list[tuple[datetime, int]],
        gateway_topic: str | None,
    ) -> None:
        if gateway_topic is not None:
            await client.publish(gateway_topic, STATUS_ONLINE, qos=1, retain=True)
        for device in group:
            await client.publish(status_topic(device.spec.sensor_id), STATUS_ONLINE, qos=1, retain=True)
        while True:
            due, k = queue[0]
            now = self.clock()
            if due > now:
                wait_s = (due - now).total_seconds() / self.speed
                await asyncio.sleep(min(wait_s, _MAX_SLEEP_S))
                continue
            device = group[k]
            try:
                samples = device.samples(self.value_at, due)
            except Exception:  # a faulty scenario must not stop the other devices
                self.stats.provider_errors += 1
                log.exception("value_at failed for %s at %s", device.spec.sensor_id, due.isoformat())
                samples = []
            if not samples:
                self.stats.skipped += 1
            else:
                payload = encode(device.spec.sensor_id, samples)
                await client.publish(senml_topic(device.spec.sensor_id), payload, qos=1)
                self.stats.published += 1
                raise_if_cancelling()
            # Reschedule only after a successful publish: after a reconnect it is retried.
            heapq.heapreplace(queue, (due + timedelta(seconds=device.interval_s), k))

    async def _say_offline(
        self, client: aiomqtt.Client, group: list[SimulatedSensor], gateway_topic: str | None
    ) -> None:
        """Clean stop: mark devices offline (the will is only sent on an unclean loss)."""
        try:
            async with asyncio.timeout(2.0):
                for device in group:
                    await client.publish(status_topic(device.spec.sensor_id), STATUS_OFFLINE, qos=1, retain=True)
                if gateway_topic is not None:
                    await client.publish(gateway_topic, STATUS_OFFLINE, qos=1, retain=True)
        except (TimeoutError, aiomqtt.MqttError) as err:
            log.warning("could not mark devices offline on stop: %s", err)


async def run_devices(
    broker_url: str,
    specs: Sequence[SensorSpec],
    value_at: ValueAt,
    *,
    speed: float = 1.0,
    interval_s: float | None = None,
    clock: Callable[[], datetime] | None = None,
    devices_per_client: int | None = None,
    identifier_prefix: str = "yingji-sim",
    stats: FleetStats | None = None,
    credentials: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Publish simulated readings for ``specs`` until cancelled.

    ``clock`` gives simulation time (default: ``SimClock(now, speed)``); ``speed`` turns
    sim seconds into wall seconds for waiting; ``interval_s`` overrides every sensor's
    reporting interval (sim seconds). ``devices_per_client`` None: one connection per
    device up to ``AUTO_GATEWAY_ABOVE`` devices, else gateways of ``AUTO_GATEWAY_SIZE``.
    ``credentials``: (username, password) per connection name (see ``DeviceFleet.credentials``).
    """
    if devices_per_client is None:
        devices_per_client = 1 if len(specs) <= AUTO_GATEWAY_ABOVE else AUTO_GATEWAY_SIZE
    if speed <= 0:
        raise ValueError("speed must be positive")
    devices = [
        SimulatedSensor(
            spec=spec if interval_s is None else replace(spec, interval_s=interval_s),
            interval_s=interval_s if interval_s is not None else spec.interval_s,
        )
        for spec in specs
    ]
    fleet = DeviceFleet(
        broker=parse_mqtt_url(broker_url),
        devices=devices,
        value_at=value_at,
        clock=clock if clock is not None else SimClock(speed=speed),
        speed=speed,
        devices_per_client=devices_per_client,
        identifier_prefix=identifier_prefix,
        stats=stats if stats is not None else FleetStats(),
        credentials=dict(credentials or {}),
    )
    await fleet.run()
