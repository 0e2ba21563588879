"""MQTT access from the sensor registry: one broker user per sensor, topic ACLs, Mosquitto files.

Sensors and vehicles are not people: each registered sensor gets its own MQTT user
``sensor-{id}`` with a generated password, and the broker lets it touch only its own
topics (``sensors.topics``):

- ``yingji/sensors/{id}/senml`` and ``.../status`` (retained, will): write;
- a station with actuators (``actuators`` in the registry) also reads ``.../command`` and
  writes ``.../ack``; a sensor without any gets neither (least privilege: regenerate the
  files when a station gains a siren).

The command service logs in as ``yingji-service``: it reads every sensor's senml, status and
ack, writes station commands, ``yingji/events/#`` and ``yingji/departments/#``. Nobody else
gets anything: anonymous clients are refused, and a user without a line is denied.

Files written by :func:`write_access` (``yingji mqtt-access --out DIR``; docs/mqtt-access.md):

- ``passwd`` — Mosquitto ``password_file`` (mode 0600): ``user:$7$...`` lines;
- ``acl`` — Mosquitto ``acl_file``;
- ``credentials.json`` (mode 0600) — each user's plain password, for provisioning devices
  and for the service's broker URL; a later run keeps these unless asked to rotate;
- ``access.conf`` — the three lines that turn anonymous off and point at the two files, and
  ``mosquitto.conf`` — ``deploy/mosquitto/yingji.conf`` with those lines in place of
  ``allow_anonymous true`` (same ``${YINGJI_MQTT_PORT}``/``${YINGJI_MQTT_USER}`` placeholders).

The registry has no gateway (data-logger) entries, so no gateway user is made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sensors.registry import Registry
from sensors.topics import PREFIX, ack_topic, command_topic, is_sensor_id, senml_topic, status_topic

__all__ = [
    "ACL_FILE",
    "CONFIG_FILE",
    "CREDENTIALS_FILE",
    "ITERATIONS",
    "PASSWORD_FILE",
    "SERVICE_USER",
    "SNIPPET_FILE",
    "TEMPLATE",
    "AccessError",
    "AccessFiles",
    "Device",
    "acl_text",
    "config_snippet",
    "config_text",
    "devices_from_registry",
    "hash_password",
    "new_password",
    "password_file_text",
    "plan_passwords",
    "read_credentials",
    "sensor_user",
    "user_names",
    "verify_password",
    "write_access",
]

SERVICE_USER = "yingji-service"
SENSOR_USER_PREFIX = "sensor-"

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
CREDENTIALS_FILE = "credentials.json"
SNIPPET_FILE = "access.conf"
CONFIG_FILE = "mosquitto.conf"
TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "yingji.conf"

# Mosquitto 2.0 password hashes, as mosquitto_passwd writes them and the broker reads them
# (eclipse/mosquitto, apps/mosquitto_passwd/ and src/password_mosq.h: hash type
# pw_sha512_pbkdf2 = 7, SALT_LEN 12; line "user:$7$<iterations>$<base64 salt>$<base64 hash>",
# the hash PBKDF2-HMAC-SHA512 of the UTF-8 password, 64 bytes, standard base64 with padding).
# The broker takes the iteration count from each line. mosquitto_passwd 2.0 uses 101; we use
# more, yet few: these passwords are 256-bit random secrets that no count protects further,
# while the broker pays the count on every CONNECT (a whole district reconnects at once
# after a broker restart).
HASH_TYPE = "7"
SALT_BYTES = 12
ITERATIONS = 1000
PASSWORD_BYTES = 32  # secrets.token_urlsafe(32): 43 URL-safe characters, 256 bits

_CREDENTIALS_VERSION = 1
_SNIPPET_LINES = ("allow_anonymous false", "password_file {password_file}", "acl_file {acl_file}")
_ANONYMOUS_LINE = re.compile(r"^allow_anonymous\s+true\s*$", re.MULTILINE)
# What a stored password may hold: printable ASCII without ':' is safe in every file we write
# and in an mqtt:// URL once quoted.
_PASSWORD_RE = re.compile(r"[\x21-\x39\x3b-\x7e]{16,256}")


class AccessError(ValueError):
    """Access files that cannot be made: a bad sensor id, a bad credentials file, an unknown user."""


@dataclass(frozen=True, slots=True)
class Device:
    """What the broker needs to know of one registered sensor."""

    sensor_id: str
    actuated: bool = False  # takes commands (siren, light) and answers them


@dataclass(frozen=True, slots=True)
class AccessFiles:
    """Paths of the files one run wrote, and the users whose password it changed."""

    password_file: Path
    acl_file: Path
    credentials_file: Path
    snippet_file: Path
    config_file: Path | None  # None when the template was not found
    new_users: tuple[str, ...]  # users that got a new password (new or rotated)
    dropped_users: tuple[str, ...]  # users of the old credentials file no longer in the registry


def devices_from_registry(registry: Registry) -> list[Device]:
    """The registry's sensors, in registry order, with whether each takes commands."""
    return [Device(spec.sensor_id, bool(spec.properties.get("actuators"))) for spec in registry.values()]


def sensor_user(sensor_id: str) -> str:
    """The MQTT user name of a sensor: ``sensor-{id}``; a bad id raises ``AccessError``.

    >>> sensor_user("rain-luoqi")
    'sensor-rain-luoqi'
    """
    # The id becomes a user name in the password file and a topic segment in the ACL file: a
    # ':' or a newline would forge a line there, a '+' or '#' would widen a grant.
    if not is_sensor_id(sensor_id):
        raise AccessError(f"sensor id {sensor_id!r} is not [A-Za-z0-9_-]+: it cannot be an MQTT user or topic")
    return SENSOR_USER_PREFIX + sensor_id


def _checked_devices(devices: Iterable[Device]) -> list[Device]:
    out: list[Device] = []
    seen: set[str] = set()
    for device in devices:
        sensor_user(device.sensor_id)
        if device.sensor_id in seen:
            raise AccessError(f"sensor id {device.sensor_id!r} is listed twice")
        seen.add(device.sensor_id)
        out.append(device)
    return out


def user_names(devices: Iterable[Device]) -> list[str]:
    """Every broker user of a district: the service first, then one per sensor in order."""
    return [SERVICE_USER, *(sensor_user(d.sensor_id) for d in _checked_devices(devices))]


# -- passwords -------------------------------------------------------------------------------------


def new_password() -> str:
    """A fresh device password (``secrets.token_urlsafe``, 256 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2.0's PBKDF2-SHA512 hash of ``password``: ``$7$<iterations>$<salt>$<hash>``."""
    if iterations < 1:
        raise AccessError(f"iterations must be at least 1, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"${HASH_TYPE}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``encoded`` (a ``$7$`` hash) is the hash of ``password``; a malformed hash raises."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != HASH_TYPE or not parts[2].isdigit():
        raise AccessError(f"{encoded[:24]!r}... is not a Mosquitto $7$<iterations>$<salt>$<hash> hash")
    try:
        salt = base64.b64decode(parts[3], validate=True)
        digest = base64.b64decode(parts[4], validate=True)
    except binascii.Error as err:
        raise AccessError(f"Mosquitto hash has bad base64: {err}") from err
    mine = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
    return hmac.compare_digest(mine, digest)


def plan_passwords(users: Sequence[str], existing: Mapping[str, str], *, rotate: Collection[str] = (),
                   fresh: Callable[[], str] = new_password) -> dict[str, str]:
    """Each user's password: the existing one unless the user is new or in ``rotate``.

    Users of ``existing`` that are not in ``users`` are dropped (a sensor taken out of the
    registry loses its access). Rotating a user that is not in ``users`` raises.
    """
    unknown = sorted(set(rotate) - set(users))
    if unknown:
        raise AccessError(f"cannot rotate {', '.join(unknown)}: no such sensor id or user (known: the service "
                          f"{SERVICE_USER!r} and sensor-{{id}} of each registered sensor)")
    return {user: existing[user] if user in existing and user not in rotate else fresh() for user in users}


def password_file_text(passwords: Mapping[str, str], *, iterations: int = ITERATIONS,
                       salt: Callable[[], bytes] = lambda: secrets.token_bytes(SALT_BYTES)) -> str:
    """Mosquitto ``password_file``: one ``user:hash`` line per user, in the given order."""
    lines = []
    for user, password in passwords.items():
        if not user or any(c in user for c in ":\n\r") or not user.isprintable():
            raise AccessError(f"user name {user!r} cannot go into a Mosquitto password file")
        lines.append(f"{user}:{hash_password(password, salt=salt(), iterations=iterations)}")
    return "\n".join(lines) + "\n"


# -- ACL ---------------------------------------------------------------------------------------------


def acl_text(devices: Iterable[Device]) -> str:
    """Mosquitto ``acl_file`` (mosquitto.conf(5), "acl_file"): the service's grants, then each sensor's.

    A client gets only what a ``topic`` line under its ``user`` line grants; there are no lines
    for anonymous clients and no ``pattern`` lines (the user name is not a topic segment).
    """
    devices = _checked_devices(devices)
    lines = [
        "# Mosquitto acl_file, generated by `yingji mqtt-access` from the sensor registry.",
        "# Regenerate rather than edit: a user without a line here gets nothing.",
        "",
        f"user {SERVICE_USER}",
        f"topic read {PREFIX}/+/senml",
        f"topic read {PREFIX}/+/status",
        f"topic read {PREFIX}/+/ack",
        f"topic write {PREFIX}/+/command",
        "topic write yingji/events/#",
        "topic write yingji/departments/#",
    ]
    for device in devices:
        sid = device.sensor_id
        lines += ["", f"user {sensor_user(sid)}", f"topic write {senml_topic(sid)}", f"topic write {status_topic(sid)}"]
        if device.actuated:
            lines += [f"topic read {command_topic(sid)}", f"topic write {ack_topic(sid)}"]
    return "\n".join(lines) + "\n"


# -- broker configuration ------------------------------------------------------------------------------


def config_snippet(password_file: Path, acl_file: Path) -> str:
    """The lines that turn anonymous access off and point Mosquitto at the two files."""
    for path in (password_file, acl_file):
        if not path.is_absolute() or any(c in str(path) for c in "\n\r"):
            raise AccessError(f"{str(path)!r}: the broker needs an absolute path on one line")
    text = "\n".join(_SNIPPET_LINES).format(password_file=password_file, acl_file=acl_file)
    return text + "\n"


def config_text(template: str, password_file: Path, acl_file: Path) -> str:
    """``template`` (deploy/mosquitto/yingji.conf) with its ``allow_anonymous true`` line replaced
    by :func:`config_snippet`; a template without exactly one such line raises."""
    found = _ANONYMOUS_LINE.findall(template)
    if len(found) != 1:
        raise AccessError(f"the Mosquitto template must have exactly one 'allow_anonymous true' line, "
                          f"found {len(found)}")
    header = "# Authenticated: every client logs in as a user of password_file and gets only what acl_file grants.\n"
    return _ANONYMOUS_LINE.sub(lambda _: header + config_snippet(password_file, acl_file).rstrip("\n"), template)


# -- files ---------------------------------------------------------------------------------------------


def read_credentials(path: Path) -> dict[str, str]:
    """The passwords of an earlier run (``{}`` if the file does not exist)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise AccessError(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise AccessError(f"{path}: not JSON: {err}") from err
    if not isinstance(data, dict) or data.get("version") != _CREDENTIALS_VERSION:
        raise AccessError(f"{path}: not a version {_CREDENTIALS_VERSION} credentials file "
                          f"(an object with \"version\": {_CREDENTIALS_VERSION} and \"users\")")
    users = data.get("users")
    if not isinstance(users, dict):
        raise AccessError(f"{path}: \"users\" must be an object of user name: password")
    for user, password in users.items():
        if not isinstance(password, str) or not _PASSWORD_RE.fullmatch(password):
            raise AccessError(f"{path}: the password of {user!r} must be 16 to 256 printable ASCII characters "
                              f"without ':' or spaces")
    return dict(users)


def _credentials_text(passwords: Mapping[str, str]) -> str:
    data = {
        "version": _CREDENTIALS_VERSION,
        "note": "MQTT passwords, one per broker user (sensor-{id}, yingji-service). Secret: keep mode 0600.",
        "users": dict(passwords),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically by a new file of ``mode`` (never readable by others meanwhile)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_access(out: Path, devices: Iterable[Device], *, rotate: Collection[str] = (), rotate_all: bool = False,
                 template: Path | None = TEMPLATE, iterations: int = ITERATIONS) -> AccessFiles:
    """Write passwd, acl, credentials.json, access.conf (and mosquitto.conf) into ``out``.

    ``rotate`` names users (or sensor ids) whose password is renewed; ``rotate_all`` renews
    every one. Every other user keeps the password of ``out/credentials.json``.
    """
    devices = _checked_devices(devices)
    users = user_names(devices)
    by_id = {d.sensor_id: sensor_user(d.sensor_id) for d in devices}
    wanted = set(users) if rotate_all else {by_id.get(name, name) for name in rotate}
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    credentials = out / CREDENTIALS_FILE
    existing = read_credentials(credentials)
    passwords = plan_passwords(users, existing, rotate=wanted)
    files = AccessFiles(
        password_file=out / PASSWORD_FILE, acl_file=out / ACL_FILE, credentials_file=credentials,
        snippet_file=out / SNIPPET_FILE, config_file=out / CONFIG_FILE if template and template.exists() else None,
        new_users=tuple(u for u in users if passwords[u] != existing.get(u)),
        dropped_users=tuple(u for u in existing if u not in passwords),
    )
    # credentials first: if a later write fails, the passwords the broker may get are on disk
    _write(credentials, _credentials_text(passwords), 0o600)
    _write(files.password_file, password_file_text(passwords, iterations=iterations), 0o600)
    _write(files.acl_file, acl_text(devices), 0o644)
    _write(files.snippet_file, config_snippet(files.password_file, files.acl_file), 0o644)
    if files.config_file is not None and template is not None:
        _write(files.config_file, config_text(template.read_text(encoding="utf-8"), files.password_file,
                                              files.acl_file), 0o644)
    return files
