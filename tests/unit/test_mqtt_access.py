"""MQTT users, passwords and topic ACLs generated from the sensor registry (command.mqtt_access)."""

from __future__ import annotations

import base64
from collections.abc import Callable
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from command.mqtt_access import (
    SERVICE_USER,
    TEMPLATE,
    AccessError,
    Device,
    acl_text,
    config_snippet,
    config_text,
    hash_password,
    password_file_text,
    plan_passwords,
    read_credentials,
    sensor_user,
    user_names,
    verify_password,
    write_access,
)
from sensors.registry import Registry

MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")
# Written by mosquitto_passwd 2.0.11 (`mosquitto_passwd -b FILE alice s3cret`): user alice, password s3cret.
VECTOR = "$7$101$tFzimFfLJp/YrbZ8$rfPvvx021Q8fi0F1TRC397C9YVZ0IIvx/m0rYIlg+hHUr1Cykmh461pwUecSIhjTwYb53jqQv5iWqeJH340Fmg=="
BAD_IDS = ["a/b", "+", "#", "", "a:b", "x\nuser root", "a b", "水位", "a+", "RL-1#"]
STATION = Device("gnss-1", actuated=True)
GAUGE = Device("rain-1")


# -- hashes -------------------------------------------------------------------------------------------


def test_hash_matches_mosquitto_passwd_vector() -> None:
    salt = base64.b64decode(VECTOR.split("$")[3])
    assert hash_password("s3cret", salt=salt, iterations=101) == VECTOR
    assert verify_password("s3cret", VECTOR)
    assert not verify_password("s3cret ", VECTOR)
    assert not verify_password("S3cret", VECTOR)


def test_hashes_of_mosquitto_passwd_verify_and_ours_have_its_shape(tmp_path: Path) -> None:
    if not MOSQUITTO_PASSWD.exists():
        pytest.fail(f"{MOSQUITTO_PASSWD} is missing: install Debian's mosquitto package", pytrace=False)
    pwfile = tmp_path / "pw"
    pwfile.touch()
    password = "Zq-3_xY9" * 5
    subprocess.run([str(MOSQUITTO_PASSWD), "-b", str(pwfile), "sensor-a", password], check=True)
    user, theirs = pwfile.read_text().strip().split(":", 1)
    assert user == "sensor-a" and verify_password(password, theirs) and not verify_password("x" + password, theirs)

    ours = hash_password(password)
    kind, iterations, salt, digest = ours.split("$")[1:]
    their_kind, _, their_salt, their_digest = theirs.split("$")[1:]
    assert (kind, iterations) == (their_kind, "1000")
    assert len(base64.b64decode(salt)) == len(base64.b64decode(their_salt)) == 12
    assert len(base64.b64decode(digest)) == len(base64.b64decode(their_digest)) == 64
    assert hash_password(password) != ours  # a fresh salt each time
    assert verify_password(password, ours)


@pytest.mark.parametrize("bad", ["", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!!$AAAA", "7$101$AAAA$AAAA",
                                 "$7$101$AAAA"])
def test_malformed_hashes_are_named(bad: str) -> None:
    with pytest.raises(AccessError, match="hash"):
        verify_password("pw", bad)


def test_iterations_must_be_positive() -> None:
    with pytest.raises(AccessError, match="iterations"):
        hash_password("pw", iterations=0)


def test_password_file_has_one_line_per_user_in_order() -> None:
    text = password_file_text({SERVICE_USER: "a" * 20, "sensor-rain-1": "b" * 20}, iterations=5)
    lines = text.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [SERVICE_USER, "sensor-rain-1"]
    assert verify_password("b" * 20, lines[1].split(":", 1)[1])
    assert lines[1].split(":", 1)[1].startswith("$7$5$")
    for bad_user in ["a:b", "a\nb", ""]:
        with pytest.raises(AccessError, match="password file"):
            password_file_text({bad_user: "x" * 20})


# -- users and ACL --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_sensor_ids_are_refused_everywhere(bad: str, tmp_path: Path) -> None:
    with pytest.raises(AccessError, match="sensor id"):
        sensor_user(bad)
    with pytest.raises(AccessError, match="sensor id"):
        acl_text([GAUGE, Device(bad)])
    with pytest.raises(AccessError, match="sensor id"):
        user_names([Device(bad)])
    with pytest.raises(AccessError, match="sensor id"):
        write_access(tmp_path / "out", [Device(bad)], template=None)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_sensor_listed_twice_is_refused() -> None:
    with pytest.raises(AccessError, match="twice"):
        acl_text([GAUGE, STATION, GAUGE])


def _blocks(acl: str) -> dict[str, list[str]]:
    """ACL lines per ``user``; lines before the first user line (anonymous) under ''."""
    blocks: dict[str, list[str]] = {"": []}
    current = ""
    for line in acl.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("user "):
            current = line.removeprefix("user ")
            assert current not in blocks, f"user {current} twice"
            blocks[current] = []
        else:
            blocks[current].append(line)
    return blocks


def test_acl_grants_each_sensor_its_own_topics_and_nothing_else() -> None:
    blocks = _blocks(acl_text([GAUGE, STATION]))
    assert blocks == {
        "": [],  # nothing for anonymous clients, and no pattern lines for everyone
        SERVICE_USER: [
            "topic read yingji/sensors/+/senml",
            "topic read yingji/sensors/+/status",
            "topic read yingji/sensors/+/ack",
            "topic write yingji/sensors/+/command",
            "topic write yingji/events/#",
            "topic write yingji/departments/#",
        ],
        "sensor-rain-1": ["topic write yingji/sensors/rain-1/senml", "topic write yingji/sensors/rain-1/status"],
        "sensor-gnss-1": [
            "topic write yingji/sensors/gnss-1/senml",
            "topic write yingji/sensors/gnss-1/status",
            "topic read yingji/sensors/gnss-1/command",
            "topic write yingji/sensors/gnss-1/ack",
        ],
    }


def test_acl_scales_with_the_registry_and_never_widens_a_sensor_grant() -> None:
    devices = [Device(f"s-{i}", actuated=i % 7 == 0) for i in range(500)]
    blocks = _blocks(acl_text(devices))
    assert len(blocks) == 502
    for d in devices:
        lines = blocks[sensor_user(d.sensor_id)]
        assert len(lines) == (4 if d.actuated else 2)
        assert all(line.split()[2].split("/")[2] == d.sensor_id and "+" not in line and "#" not in line
                   for line in lines)
        assert not any(line.startswith("topic readwrite") for line in lines)


def test_devices_from_the_registry_know_their_actuators() -> None:
    from command.mqtt_access import devices_from_registry

    registry = Registry.from_geojson(_registry_geojson())
    assert devices_from_registry(registry) == [Device("rain-1", False), Device("gnss-1", True)]


# -- passwords and rotation -------------------------------------------------------------------------------


def _counter() -> Callable[[], str]:
    n = iter(range(10_000))
    return lambda: f"fresh-password-{next(n):04d}"


def test_plan_keeps_existing_passwords_and_rotates_only_what_is_asked() -> None:
    users = [SERVICE_USER, "sensor-a", "sensor-b"]
    existing = {SERVICE_USER: "s" * 20, "sensor-a": "a" * 20, "sensor-gone": "g" * 20}
    fresh = _counter()
    plan = plan_passwords(users, existing, fresh=fresh)
    assert plan == {SERVICE_USER: "s" * 20, "sensor-a": "a" * 20, "sensor-b": "fresh-password-0000"}
    rotated = plan_passwords(users, plan, rotate={"sensor-a"}, fresh=fresh)
    assert rotated == {**plan, "sensor-a": "fresh-password-0001"}
    everything = plan_passwords(users, plan, rotate=set(users), fresh=fresh)
    assert everything == dict(zip(users, ["fresh-password-0002", "fresh-password-0003", "fresh-password-0004"]))
    with pytest.raises(AccessError, match="cannot rotate sensor-nope"):
        plan_passwords(users, plan, rotate={"sensor-nope"})


def test_write_access_keeps_passwords_across_runs_and_rotates(tmp_path: Path) -> None:
    out = tmp_path / "access"
    first = write_access(out, [GAUGE, STATION], template=None)
    creds = read_credentials(first.credentials_file)
    assert list(creds) == [SERVICE_USER, "sensor-rain-1", "sensor-gnss-1"]
    assert set(first.new_users) == set(creds) and first.dropped_users == ()
    assert all(len(p) >= 40 for p in creds.values()) and len(set(creds.values())) == 3
    for path in (first.credentials_file, first.password_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.config_file is None and first.snippet_file.exists() and first.acl_file.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind

    def hashes() -> dict[str, str]:
        return dict(line.split(":", 1) for line in first.password_file.read_text().splitlines())

    assert all(verify_password(creds[u], h) for u, h in hashes().items()) and len(hashes()) == 3

    again = write_access(out, [GAUGE, STATION], template=None)
    assert read_credentials(out / "credentials.json") == creds and again.new_users == ()

    one = write_access(out, [GAUGE, STATION], rotate=["gnss-1"], template=None)
    after = read_credentials(one.credentials_file)
    assert one.new_users == ("sensor-gnss-1",)
    assert after["sensor-gnss-1"] != creds["sensor-gnss-1"]
    assert {u: p for u, p in after.items() if u != "sensor-gnss-1"} == {
        u: p for u, p in creds.items() if u != "sensor-gnss-1"}
    assert verify_password(after["sensor-gnss-1"], hashes()["sensor-gnss-1"])
    assert not verify_password(creds["sensor-gnss-1"], hashes()["sensor-gnss-1"])

    service = write_access(out, [GAUGE, STATION], rotate=[SERVICE_USER], template=None)
    assert service.new_users == (SERVICE_USER,)

    every = write_access(out, [GAUGE, STATION], rotate_all=True, template=None)
    final = read_credentials(every.credentials_file)
    assert set(every.new_users) == set(final) and set(final.values()).isdisjoint(after.values())

    with pytest.raises(AccessError, match="cannot rotate nope"):
        write_access(out, [GAUGE, STATION], rotate=["nope"], template=None)
    assert read_credentials(every.credentials_file) == final  # a refused run changes nothing

    # a sensor taken out of the registry loses its user; the others keep their passwords
    fewer = write_access(out, [GAUGE], template=None)
    assert fewer.dropped_users == ("sensor-gnss-1",)
    assert read_credentials(fewer.credentials_file) == {u: final[u] for u in (SERVICE_USER, "sensor-rain-1")}
    assert "gnss-1" not in fewer.acl_file.read_text() and "gnss-1" not in fewer.password_file.read_text()


def test_a_loose_credentials_file_is_made_private_again(tmp_path: Path) -> None:
    files = write_access(tmp_path, [GAUGE], template=None)
    os.chmod(files.credentials_file, 0o644)
    write_access(tmp_path, [GAUGE], template=None)
    assert stat.S_IMODE(files.credentials_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not JSON"),
    ("[]", "version 1"),
    ('{"version": 2, "users": {}}', "version 1"),
    ('{"version": 1, "users": []}', "users"),
    ('{"version": 1, "users": {"sensor-a": 12345678901234567890}}', "sensor-a"),
    ('{"version": 1, "users": {"sensor-a": "short"}}', "sensor-a"),
    ('{"version": 1, "users": {"sensor-a": "with:colon-0123456789"}}', "sensor-a"),
    ('{"version": 1, "users": {"sensor-a": "with space 0123456789"}}', "sensor-a"),
    ('{"version": 1, "users": {"sensor-a": "new\\nline-0123456789"}}', "sensor-a"),
])
def test_a_bad_credentials_file_is_refused_with_its_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(text)
    with pytest.raises(AccessError, match=reason):
        read_credentials(path)
    with pytest.raises(AccessError, match=reason):
        write_access(tmp_path, [GAUGE], template=None)
    assert path.read_text() == text  # left as it was
    assert not (tmp_path / "passwd").exists()


def test_no_credentials_file_means_no_passwords_yet(tmp_path: Path) -> None:
    assert read_credentials(tmp_path / "nothing.json") == {}


# -- broker configuration --------------------------------------------------------------------------------


def test_config_from_the_template_turns_anonymous_off(tmp_path: Path) -> None:
    template = TEMPLATE.read_text()
    text = config_text(template, Path("/etc/mosquitto/yingji/passwd"), Path("/etc/mosquitto/yingji/acl"))
    lines = text.splitlines()
    assert "allow_anonymous true" not in lines
    assert [line for line in lines if line.startswith(("allow_anonymous", "password_file", "acl_file"))] == [
        "allow_anonymous false", "password_file /etc/mosquitto/yingji/passwd", "acl_file /etc/mosquitto/yingji/acl"]
    # everything else of the template is kept, placeholders included
    assert "${YINGJI_MQTT_PORT}" in text and "${YINGJI_MQTT_USER}" in text
    assert [line for line in lines if not line.startswith(("allow_anonymous", "password_file", "acl_file", "#"))] == [
        line for line in template.splitlines() if not line.startswith(("allow_anonymous", "#"))]

    files = write_access(tmp_path, [GAUGE])
    assert files.config_file is not None
    assert f"password_file {files.password_file}" in files.config_file.read_text()
    assert files.snippet_file.read_text() == config_snippet(files.password_file, files.acl_file)


@pytest.mark.parametrize("template", ["listener 1883\n", "allow_anonymous true\nallow_anonymous true\n",
                                      "allow_anonymous false\n"])
def test_a_template_without_one_anonymous_line_is_refused(template: str) -> None:
    with pytest.raises(AccessError, match="allow_anonymous"):
        config_text(template, Path("/a/passwd"), Path("/a/acl"))


def test_config_paths_must_be_absolute_single_lines() -> None:
    with pytest.raises(AccessError, match="absolute"):
        config_snippet(Path("passwd"), Path("/a/acl"))
    with pytest.raises(AccessError, match="absolute"):
        config_snippet(Path("/a/passwd"), Path("/a/acl\nallow_anonymous true"))


# -- the command line -------------------------------------------------------------------------------------


def _registry_geojson(extra: list[dict] | None = None) -> dict:
    def feature(props: dict) -> dict:
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.6, 29.7]}, "properties": props}

    return {"type": "FeatureCollection", "features": [
        feature({"id": "rain-1", "kind": "rain_gauge", "interval_s": 300}),
        feature({"id": "gnss-1", "kind": "gnss_displacement", "interval_s": 600, "actuators": ["siren", "light"]}),
        *(extra or []),
    ]}


def _cli(district: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, YINGJI_DISTRICT_DIR=str(district))
    return subprocess.run([sys.executable, "-m", "command.cli", "mqtt-access", *args], env=env,
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])


def test_cli_writes_the_files_for_the_configured_district(tmp_path: Path) -> None:
    district = tmp_path / "district"
    district.mkdir()
    (district / "sensors.geojson").write_text(json.dumps(_registry_geojson()))
    out = tmp_path / "access"
    done = _cli(district, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "2 sensors" in done.stdout and "new passwords: 3" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["access.conf", "acl", "credentials.json", "mosquitto.conf",
                                                     "passwd"]
    assert "user sensor-gnss-1" in (out / "acl").read_text()
    creds = read_credentials(out / "credentials.json")

    rotated = _cli(district, "--out", str(out), "--rotate", "rain-1")
    assert rotated.returncode == 0, rotated.stderr
    assert "new passwords: 1 (sensor-rain-1)" in rotated.stdout
    after = read_credentials(out / "credentials.json")
    assert after["sensor-rain-1"] != creds["sensor-rain-1"] and after["sensor-gnss-1"] == creds["sensor-gnss-1"]

    unknown = _cli(district, "--out", str(out), "--rotate", "rain-9")
    assert unknown.returncode == 2 and "cannot rotate rain-9" in unknown.stderr
    both = _cli(district, "--out", str(out), "--rotate", "rain-1", "--rotate-all")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert read_credentials(out / "credentials.json") == after

    help_ = _cli(district, "--help")
    assert help_.returncode == 0 and "--rotate-all" in help_.stdout


def test_cli_refuses_a_bad_registry_with_its_reason(tmp_path: Path) -> None:
    district = tmp_path / "district"
    district.mkdir()
    bad = _registry_geojson([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.6, 29.7]},
                              "properties": {"id": "rain-1", "kind": "rain_gauge", "interval_s": 300}}])
    (district / "sensors.geojson").write_text(json.dumps(bad))
    done = _cli(district, "--out", str(tmp_path / "access"))
    assert done.returncode == 2 and "repeats id 'rain-1'" in done.stderr
    assert not (tmp_path / "access").exists()
    missing = _cli(tmp_path / "nowhere", "--out", str(tmp_path / "access"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


# -- credentials on the client side --------------------------------------------------------------------------


def test_a_broker_url_carries_credentials_but_never_shows_the_password() -> None:
    from sensors.mqtturl import parse_mqtt_url

    url = parse_mqtt_url("mqtt://yingji-service:Zq-3_xY9abc@127.0.0.1:18830")
    assert (url.username, url.password) == ("yingji-service", "Zq-3_xY9abc")
    assert "Zq-3_xY9abc" not in repr(url) and "Zq-3_xY9abc" not in url.url
    assert parse_mqtt_url("mqtt://u:p%3Aq%40r@h").password == "p:q@r"  # a quoted ':' or '@' comes back


def test_simulated_devices_log_in_per_connection() -> None:
    from datetime import datetime, timezone

    from sensors.devices import DeviceFleet
    from sensors.mqtturl import parse_mqtt_url

    fleet = DeviceFleet(broker=parse_mqtt_url("mqtt://fallback:fb-pass@127.0.0.1:1883"), devices=[],
                        value_at=lambda s, t: None, clock=lambda: datetime.now(timezone.utc),
                        credentials={"rain-1": ("sensor-rain-1", "p1"), "actuators": ("sensor-gnss-1", "p2")})
    assert fleet.login("rain-1") == ("sensor-rain-1", "p1")
    assert fleet.login("actuators") == ("sensor-gnss-1", "p2")
    assert fleet.login("gw-rain-2") == ("fallback", "fb-pass")  # not named: the URL's credentials
