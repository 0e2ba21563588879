"""The MQTT broker seen from the service: a probe, and an embedded fallback broker.

Production runs Mosquitto (deploy/mosquitto/yingji.conf) or an EMQX cluster. For a
one-command demo with no broker installed, :func:`embedded_broker` runs amqtt in this
process, bound to loopback only. amqtt speaks MQTT 3.1.1 only, so every client of ours
connects with 3.1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from amqtt.broker import Broker

from sensors.mqtturl import parse_mqtt_url

__all__ = ["EmbeddedBroker", "broker_answers", "embedded_broker"]

log = logging.getLogger("command.broker")

# MQTT 3.1.1 §3.1: CONNECT with protocol name "MQTT", level 4, clean session, keep-alive 10 s.
_CONNECT_VARIABLE_HEADER = b"\x00\x04MQTT\x04\x02\x00\x0a"
_CONNACK = 0x20  # MQTT 3.1.1 §3.2: CONNACK packet type, remaining length 2
_DISCONNECT = b"\xe0\x00"  # MQTT 3.1.1 §3.14


def _connect_packet(client_id: str) -> bytes:
    ident = client_id.encode()
    body = _CONNECT_VARIABLE_HEADER + len(ident).to_bytes(2, "big") + ident
    if len(body) >= 128:  # keep to a one-byte remaining length (MQTT 3.1.1 §2.2.3)
        raise ValueError("client id too long for the probe")
    return bytes([0x10, len(body)]) + body


async def broker_answers(url: str, timeout_s: float = 1.0) -> bool:
    """True if an MQTT broker answers a CONNECT with a CONNACK at ``url`` within the deadline.

    Any CONNACK counts (even "not authorized"): something speaking MQTT is there.
    """
    target = parse_mqtt_url(url)
    if target.tls:
        raise ValueError("broker_answers probes plain mqtt:// only")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            writer.write(_connect_packet(f"yingji-probe-{os.getpid()}"))
            await writer.drain()
            answer = await reader.readexactly(4)
            if answer[0] != _CONNACK or answer[1] != 2:
                return False
            if answer[3] == 0:
                writer.write(_DISCONNECT)
                await writer.drain()
            return True
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await writer.wait_closed()


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    """Where the embedded broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _amqtt_config(host: str, port: int) -> dict[str, object]:
    # amqtt 0.12 config (amqtt.contexts.BrokerConfig): a "default" listener is required;
    # it binds 0.0.0.0 unless told, so bind loopback explicitly. "plugins" replaces the
    # default set: keep anonymous auth (without an auth plugin every CONNECT is refused),
    # drop the $SYS publisher and the event/packet loggers.
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


@contextlib.asynccontextmanager
async def embedded_broker(host: str = "127.0.0.1", port: int = 1883) -> AsyncIterator[EmbeddedBroker]:
    """Run an in-process amqtt broker on ``host:port`` (port 0: any free port)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the embedded broker is for loopback only; use Mosquitto to serve a network")
    broker = Broker(_amqtt_config(host, port))
    await broker.start()
    try:
        bound = port
        server = broker._servers.get("default")  # amqtt keeps its servers private
        if server is not None and server.instance is not None and server.instance.sockets:
            bound = server.instance.sockets[0].getsockname()[1]
        where = EmbeddedBroker(host=host, port=bound)
        log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) on %s", where.url)
        yield where
    finally:
        await broker.shutdown()
