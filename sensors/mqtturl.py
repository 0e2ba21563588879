"""Broker URLs: ``mqtt://host:port`` (plain TCP) and ``mqtts://host:port`` (TLS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from sensors.model import SensorError

__all__ = ["BrokerUrlError", "MqttUrl", "parse_mqtt_url"]

# IANA service names: 1883 "mqtt", 8883 "secure-mqtt".
_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


class BrokerUrlError(SensorError):
    """A broker URL that cannot be used."""


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """A parsed broker URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # kept out of logs and tracebacks

    @property
    def url(self) -> str:
        """The URL again, without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttUrl:
    """Parse ``mqtt://[user[:password]@]host[:port]``; ``mqtts://`` means TLS (default port 8883).

    >>> parse_mqtt_url("mqtt://127.0.0.1:18830")
    MqttUrl(host='127.0.0.1', port=18830, tls=False, username=None)
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port
        host = parts.hostname
    except (AttributeError, ValueError) as err:
        raise BrokerUrlError(f"broker URL {url!r}: {err}") from err
    if scheme not in _DEFAULT_PORTS:
        raise BrokerUrlError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not host:
        raise BrokerUrlError(f"broker URL {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"broker URL {url!r} must not have a path, query or fragment")
    return MqttUrl(
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        tls=scheme in ("mqtts", "ssl"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
