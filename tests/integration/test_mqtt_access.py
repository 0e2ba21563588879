"""Per-sensor MQTT users and topic ACLs on a real Mosquitto started from the generated files
(``command.mqtt_access``): each sensor reaches only its own topics, the service reads them all,
wrong or missing credentials are refused at CONNECT."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx
import paho.mqtt.client as paho
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import CallbackAPIVersion

from command.api.app import create_app
from command.clock import SystemClock
from command.mqtt_access import SERVICE_USER, Device, devices_from_registry, read_credentials, write_access
from command.settings import Settings
from sensors.devices import FleetStats, run_devices
from sensors.registry import Registry
from sensors.topics import ack_topic, command_topic, senml_topic, status_topic
from tests.fixtures_mqtt import MosquittoInstance, start_mosquitto, stop_process
from tests.fixtures_service import DEADLINE_S, district_copy, running_service

V5 = aiomqtt.ProtocolVersion.V5
NOT_AUTHORIZED = 0x87  # MQTT 5.0 §2.4 reason code 135 "Not authorized" (PUBACK, CONNACK)
OK = "accepted"  # a PUBACK reason below 0x80: 0 "Success" or 0x10 "No matching subscribers" (MQTT 5.0 §3.4.2.1)
WAIT_S = 10.0
DEVICES = [Device("rain-a"), Device("rain-b"), Device("gnss-a", actuated=True)]
STATION = "gnss-yufengshan-1"  # the Yubei slope station with a siren and a light


@dataclass(frozen=True, slots=True)
class AccessBroker:
    """A Mosquitto that lets in only the users of ``passwords``."""

    broker: MosquittoInstance
    passwords: dict[str, str]

    def client(self, user: str | None, *, password: str | None = None, **kwargs: object) -> aiomqtt.Client:
        """An MQTT 5 client logged in as ``user`` (with its own password unless one is given)."""
        if user is not None and password is None:
            password = self.passwords[user]
        return aiomqtt.Client(self.broker.host, self.broker.port, username=user, password=password, protocol=V5,
                              timeout=WAIT_S, **kwargs)


def _start(tmp: Path, devices: list[Device]) -> tuple[subprocess.Popen[bytes], AccessBroker]:
    files = write_access(tmp / "access", devices)
    assert files.config_file is not None
    proc, instance = start_mosquitto(tmp, template=files.config_file)
    return proc, AccessBroker(instance, read_credentials(files.credentials_file))


@pytest.fixture
def access(tmp_path: Path) -> Iterator[AccessBroker]:
    """A Mosquitto from the generated config for three sensors, one of them a station with a siren."""
    proc, broker = _start(tmp_path, DEVICES)
    try:
        yield broker
    finally:
        stop_process(proc)


async def _next(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(WAIT_S):
        return await anext(aiter(client.messages))


def _puback_reasons(broker: MosquittoInstance, user: str, password: str, topics: list[str]) -> dict[str, int | str]:
    """PUBACK reason code of one QoS 1 publish to each topic (MQTT 5, paho: aiomqtt does not expose it)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set(user, password)
    acks: dict[int, int] = {}
    client.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, reason.value)
    client.connect(broker.host, broker.port)
    deadline = time.monotonic() + WAIT_S
    try:
        while not client.is_connected():
            assert time.monotonic() < deadline, f"{user} did not connect"
            client.loop(0.05)
        mids = {topic: client.publish(topic, b"{}", qos=1).mid for topic in topics}
        while len(acks) < len(mids):
            assert time.monotonic() < deadline, f"no PUBACK for {set(mids.values()) - set(acks)}"
            client.loop(0.05)
    finally:
        client.disconnect()
    return {topic: OK if acks[mid] < 0x80 else acks[mid] for topic, mid in mids.items()}


async def test_a_sensor_publishes_its_own_data_and_the_service_receives_it(access: AccessBroker) -> None:
    async with access.client(SERVICE_USER) as service:
        await service.subscribe("$share/yingji/yingji/sensors/+/senml", qos=1)  # as sensors.ingest does
        await service.subscribe("yingji/sensors/+/status", qos=1)
        async with access.client("sensor-rain-a", will=aiomqtt.Will(status_topic("rain-a"), "offline", qos=1,
                                                                       retain=True)) as sensor:
            await sensor.publish(status_topic("rain-a"), "online", qos=1, retain=True)
            await sensor.publish(senml_topic("rain-a"), b'[{"bn":"urn:dev:yingji:rain-a:","n":"rain","v":1}]', qos=1)
            got = [await _next(service), await _next(service)]
    assert [(m.topic.value, bytes(m.payload)) for m in got] == [
        (status_topic("rain-a"), b"online"),
        (senml_topic("rain-a"), b'[{"bn":"urn:dev:yingji:rain-a:","n":"rain","v":1}]')]


async def test_a_sensor_cannot_publish_as_another_or_command_a_station(access: AccessBroker) -> None:
    async with access.client(SERVICE_USER) as service, access.client("sensor-gnss-a") as station:
        for topic in ("yingji/sensors/+/senml", "yingji/sensors/+/status", "yingji/sensors/+/ack"):
            await service.subscribe(topic, qos=1)
        await station.subscribe(command_topic("gnss-a"), qos=1)
        async with access.client("sensor-rain-a") as rogue:
            for topic in (senml_topic("rain-b"), status_topic("rain-b"), ack_topic("gnss-a"),
                          command_topic("gnss-a")):
                await rogue.publish(topic, b"forged", qos=1)
            # the control message, after the forged ones on the same connection: once it is here, the
            # forged ones would have been too (a broker keeps one client's QoS 1 messages in order)
            await rogue.publish(senml_topic("rain-a"), b"control", qos=1)
            got = await _next(service)
        assert (got.topic.value, bytes(got.payload)) == (senml_topic("rain-a"), b"control")
        # and the station heard no forged command: the service's real one is the first it gets
        async with access.client(SERVICE_USER) as commander:
            await commander.publish(command_topic("gnss-a"), b"real", qos=1)
        heard = await _next(station)
        assert (heard.topic.value, bytes(heard.payload)) == (command_topic("gnss-a"), b"real")


def test_the_broker_answers_a_forbidden_publish_not_authorized(access: AccessBroker) -> None:
    reasons = _puback_reasons(access.broker, "sensor-rain-a", access.passwords["sensor-rain-a"], [
        senml_topic("rain-a"), status_topic("rain-a"), senml_topic("rain-b"), command_topic("gnss-a"),
        ack_topic("rain-a"), "yingji/events/incident.opened", "yingji/departments/fire/tasks", "anything"])
    assert reasons == {senml_topic("rain-a"): OK, status_topic("rain-a"): OK, senml_topic("rain-b"): NOT_AUTHORIZED,
                       command_topic("gnss-a"): NOT_AUTHORIZED, ack_topic("rain-a"): NOT_AUTHORIZED,
                       "yingji/events/incident.opened": NOT_AUTHORIZED,
                       "yingji/departments/fire/tasks": NOT_AUTHORIZED, "anything": NOT_AUTHORIZED}
    # the service writes events, tasks and commands, but never a sensor's data
    service = _puback_reasons(access.broker, SERVICE_USER, access.passwords[SERVICE_USER], [
        "yingji/events/incident.opened", "yingji/departments/fire/tasks/7", command_topic("gnss-a"),
        senml_topic("rain-a"), status_topic("rain-a")])
    assert service == {"yingji/events/incident.opened": OK, "yingji/departments/fire/tasks/7": OK,
                       command_topic("gnss-a"): OK, senml_topic("rain-a"): NOT_AUTHORIZED,
                       status_topic("rain-a"): NOT_AUTHORIZED}
    station = _puback_reasons(access.broker, "sensor-gnss-a", access.passwords["sensor-gnss-a"], [
        ack_topic("gnss-a"), ack_topic("rain-a")])
    assert station == {ack_topic("gnss-a"): OK, ack_topic("rain-a"): NOT_AUTHORIZED}


async def test_a_sensor_cannot_read_other_sensors_data(access: AccessBroker) -> None:
    # Mosquitto 2.0's acl_file grants the SUBSCRIBE and checks read access on each delivery
    # (the broker log says "Sending SUBACK" either way), so what matters is what arrives.
    async with access.client("sensor-gnss-a") as spy:
        for topic in (senml_topic("rain-b"), "yingji/sensors/#", "#", command_topic("gnss-a")):
            await spy.subscribe(topic, qos=1)
        async with access.client("sensor-rain-b") as other:
            await other.publish(senml_topic("rain-b"), b"secret", qos=1)
            await other.publish(status_topic("rain-b"), b"online", qos=1, retain=True)
        async with access.client(SERVICE_USER) as service:
            await service.publish(command_topic("rain-b"), b"not yours", qos=1)
            await service.publish("yingji/events/incident.opened", b"not yours", qos=1)
            await service.publish(command_topic("gnss-a"), b"control", qos=1)
        got = await _next(spy)
        assert (got.topic.value, bytes(got.payload)) == (command_topic("gnss-a"), b"control")
    # a new subscription is not handed the retained status of another sensor either
    async with access.client("sensor-gnss-a") as late:
        await late.subscribe(status_topic("rain-b"), qos=1)
        await late.subscribe(command_topic("gnss-a"), qos=1)
        async with access.client(SERVICE_USER) as service:
            await service.publish(command_topic("gnss-a"), b"control-2", qos=1)
        got = await _next(late)
        assert (got.topic.value, bytes(got.payload)) == (command_topic("gnss-a"), b"control-2")


@pytest.mark.parametrize("case", ["wrong password", "empty password", "no such user", "anonymous",
                                  "another sensor's password"])
async def test_wrong_or_missing_credentials_are_refused_at_connect(access: AccessBroker, case: str) -> None:
    user, password = {
        "wrong password": ("sensor-rain-a", "wrong-password-0123456789"),
        "empty password": ("sensor-rain-a", ""),
        "no such user": ("sensor-rain-z", "x" * 43),
        "anonymous": (None, None),
        "another sensor's password": ("sensor-rain-b", access.passwords["sensor-rain-a"]),
    }[case]
    with pytest.raises(MqttConnectError) as refused:
        async with access.client(user, password=password):
            pass
    assert refused.value.rc is not None and getattr(refused.value.rc, "value", refused.value.rc) == NOT_AUTHORIZED
    async with access.client("sensor-rain-a"):  # while the right one gets in
        pass


async def test_a_rotated_password_replaces_the_old_one_on_reload(tmp_path: Path) -> None:
    """After a rotation and SIGHUP (Mosquitto reloads password_file and acl_file), the new password
    works, the old one does not (a connection made with it is dropped), and the others keep theirs."""
    proc, broker = _start(tmp_path, DEVICES)
    try:
        old = broker.passwords["sensor-rain-a"]
        files = write_access(tmp_path / "access", DEVICES, rotate=["rain-a"])
        rotated = AccessBroker(broker.broker, read_credentials(files.credentials_file))
        assert rotated.passwords["sensor-rain-a"] != old
        assert {u: p for u, p in rotated.passwords.items() if u != "sensor-rain-a"} == {
            u: p for u, p in broker.passwords.items() if u != "sensor-rain-a"}
        async with broker.client("sensor-rain-a") as before:  # the old password works until the broker reloads
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + WAIT_S
            while True:  # the broker reloads on its next loop turn
                try:
                    async with rotated.client("sensor-rain-a"):
                        break
                except MqttConnectError:
                    assert time.monotonic() < deadline, "the new password was not taken after SIGHUP"
                    await asyncio.sleep(0.05)
            # Mosquitto 2.0 re-checks connected clients on reload: the old password's connection is gone
            with pytest.raises(aiomqtt.MqttError):
                await before.publish(senml_topic("rain-a"), b"{}", qos=1, timeout=WAIT_S)
        with pytest.raises(MqttConnectError):
            async with rotated.client("sensor-rain-a", password=old):
                pass
        async with rotated.client("sensor-rain-b"), rotated.client(SERVICE_USER):
            pass
    finally:
        stop_process(proc)


async def test_the_service_and_a_station_work_over_the_acl_broker(yubei_folder: Path, tmp_path: Path) -> None:
    """The real service (logged in through its broker URL) ingests a simulated station's readings,
    switches its siren, and hears the station's answer, every hop through the ACLs."""
    folder = district_copy(yubei_folder, tmp_path / "district")
    registry = Registry.from_geojson(folder / "sensors.geojson")
    proc, access_broker = _start(tmp_path, devices_from_registry(registry))
    try:
        b = access_broker.broker
        url = f"mqtt://{SERVICE_USER}:{access_broker.passwords[SERVICE_USER]}@{b.host}:{b.port}"
        settings = Settings(broker_url=url, data_dir=tmp_path / "data", district_dir=folder, api_token="t",
                            patrols=False)
        login = (f"sensor-{STATION}", access_broker.passwords[f"sensor-{STATION}"])
        stats = FleetStats()
        async with running_service(settings, folder, SystemClock()) as service:
            events = service.bus.subscribe(maxsize=10_000)
            devices = asyncio.create_task(run_devices(
                f"mqtt://{b.host}:{b.port}", [registry[STATION]], lambda s, t: {"east": 1.0, "north": 1.0, "up": 0.0},
                stats=stats, devices_per_client=1, interval_s=1.0, credentials={STATION: login, "actuators": login}))
            try:
                async with asyncio.timeout(DEADLINE_S):
                    while STATION not in service.store.latest_readings() or stats.subscribed < 1:
                        assert not devices.done(), devices
                        await asyncio.sleep(0.05)
                assert service.mqtt_connected
                api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                                        base_url="http://yingji", headers={"Authorization": f"Bearer {service.token}"})
                async with api:
                    sent = await api.post(f"/api/sensors/{STATION}/command", json={
                        "by": "dispatcher-wang", "actuator": "siren", "state": "on", "duration_s": 60,
                        "reason": "access test"})
                    assert sent.status_code == 202, sent.text
                    async with asyncio.timeout(DEADLINE_S):
                        while True:
                            e = await events.queue.get()
                            if e.kind == "sensor.command_acknowledged" and e.data["id"] == sent.json()["id"]:
                                break
                assert stats.commands == 1 and stats.disconnects == 0
            finally:
                devices.cancel()
                await asyncio.gather(devices, return_exceptions=True)
                service.bus.unsubscribe(events)
    finally:
        stop_process(proc)
