"""Users, roles and scopes: password hashing, the users file, tokens, the permission table, event
visibility and the audit record (command/auth.py)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import argon2
import jwt
import pytest
import yaml

from command.auth import (
    ACTIONS,
    PERMISSIONS,
    ROLES,
    TOKEN_TTL_S,
    AuthError,
    Principal,
    User,
    UsersFileError,
    WeakPassword,
    allowed,
    audit_record,
    authenticate,
    department_task_view,
    event_action,
    event_view,
    hash_password,
    incident_public_view,
    issue_token,
    load_users,
    needs_rehash,
    parse_users,
    recheck,
    redact,
    verify_password,
    verify_token,
    view,
    visible,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
SECRET = b"yubei-test-secret-0123456789abcdef"  # 34 bytes
NOW = datetime(2025, 7, 7, 2, 0, 0, tzinfo=UTC)  # a whole second
# The district's ids (sitl/scenarios/yubei): departments and crews the sample file names.
DEPARTMENTS = ("emergency", "fire", "traffic", "health")
CREWS = ("crew-luoqi-water", "crew-longxing-water", "unit-traffic-longxing")
HASH = "$argon2id$v=19$m=65536,t=3,p=4$W1O6bqbR4RXKEfaQruJC9w$hPLpOo6btJ/6XGGR8yfqJG9JNrUd/J0Q7a+wwFvNz6c"
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # older, weaker parameters


def password_of(user_id: str) -> str:
    return f"{user_id}-yubei-2025"  # as the sample file's header says


@pytest.fixture(scope="module")
def users() -> Any:
    return load_users(SAMPLE, departments=DEPARTMENTS, crews=CREWS)


def principal(*roles: str, department: str | None = None, crew: str | None = None) -> Principal:
    return Principal("someone", frozenset(roles), department, crew)


# --- passwords ---------------------------------------------------------------------------------


def test_hash_round_trip_and_wrong_password() -> None:
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(h, "correct horse battery") is True
    assert verify_password(h, "correct horse battery ") is False
    assert verify_password(h, "") is False
    assert needs_rehash(h) is False


def test_same_password_hashes_differently() -> None:
    assert hash_password("abcdefgh", hasher=CHEAP) != hash_password("abcdefgh", hasher=CHEAP)


@pytest.mark.parametrize(("plain", "error", "message"), [
    ("short", WeakPassword, "a password needs at least 8 characters (got 5)"),
    ("x" * 1025, WeakPassword, "a password has at most 1024 characters (got 1025)"),
    (b"bytes-password", TypeError, "a password is text, not bytes"),
])
def test_hash_refuses_bad_passwords(plain: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        hash_password(plain)


def test_verify_refuses_a_hash_that_is_not_argon2() -> None:
    bcrypt = "$2b$12$KIXQJ8QvYb1tq1o7x3x0Ae0aN2Yx8kzQp6l9xgq1yS1n7m0WZk7aK"
    with pytest.raises(ValueError, match="^the stored password hash is not an Argon2 hash$"):
        verify_password(bcrypt, "whatever1")
    with pytest.raises(ValueError, match="^the stored password hash is not an Argon2 hash$"):
        needs_rehash(bcrypt)


def test_rehash_flag_when_parameters_change() -> None:
    old = hash_password("correct horse battery", hasher=CHEAP)
    assert verify_password(old, "correct horse battery") is True  # still verifies with today's hasher
    assert needs_rehash(old) is True
    assert needs_rehash(old, hasher=CHEAP) is False


def test_sign_in_says_when_to_rehash(users: Any) -> None:
    old = authenticate(users, "pilot-zhao", password_of("pilot-zhao"))  # hashed with m=19 MiB, t=2, p=1
    assert old.needs_rehash is True
    current = authenticate(users, "chen-li", password_of("chen-li"))
    assert current.needs_rehash is False
    assert current.principal == Principal("chen-li", frozenset({"dispatcher", "pilot"}))


def test_sign_in_refusals(users: Any) -> None:
    with pytest.raises(AuthError) as wrong:
        authenticate(users, "chen-li", "not-her-password")
    with pytest.raises(AuthError) as unknown:
        authenticate(users, "nobody", "whatever-password")
    assert wrong.value.reason == unknown.value.reason == "bad credentials"
    assert str(wrong.value) == str(unknown.value) == "bad credentials"  # no hint of who has an account
    with pytest.raises(AuthError) as disabled:
        authenticate(users, "old-qian", password_of("old-qian"))
    assert (disabled.value.reason, str(disabled.value)) == ("disabled", "disabled: user 'old-qian' is disabled")
    with pytest.raises(AuthError) as disabled_wrong:
        authenticate(users, "old-qian", "not-his-password")
    assert disabled_wrong.value.reason == "bad credentials"


# --- users file ----------------------------------------------------------------------------------


def test_sample_users_file(users: Any) -> None:
    assert list(users) == ["admin-he", "chief-liu", "chen-li", "pilot-zhao", "fire-wang", "traffic-sun",
                           "luoqi-zhang", "screen-hall", "old-qian", "wu-dispatch", "longxing-li"]
    fire = users["fire-wang"]
    assert (fire.name, fire.name_zh, fire.roles, fire.department, fire.crew, fire.disabled) == (
        "Wang Qiang", "王强", frozenset({"department"}), "fire", None, False)
    crew = users["luoqi-zhang"]
    assert (crew.roles, crew.department, crew.crew) == (frozenset({"crew"}), None, "crew-luoqi-water")
    assert users["chen-li"].roles == frozenset({"dispatcher", "pilot"})
    assert users["old-qian"].disabled is True
    assert "password_hash" not in repr(fire) and "argon2" not in repr(fire)
    with pytest.raises(TypeError):
        users["x"] = fire  # read-only


def entry(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "fire-x", "name": "X", "roles": ["department"], "department": "fire",
                           "password_hash": HASH}
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize(("raw", "message"), [
    ({"users": [entry(department=None)]}, "users file: user 1 ('fire-x'): the department role needs a department id"),
    ({"users": [entry(roles=["crew"], department=None)]},
     "users file: user 1 ('fire-x'): the crew role needs a crew id"),
    ({"users": [entry(roles=["dispatcher"])]},
     "users file: user 1 ('fire-x'): department 'fire' is given but the roles ['dispatcher'] do not include "
     "department"),
    ({"users": [entry(roles=["dispatcher"], department=None, crew="crew-luoqi-water")]},
     "users file: user 1 ('fire-x'): crew 'crew-luoqi-water' is given but the roles ['dispatcher'] do not "
     "include crew"),
    ({"users": [entry(roles=["department", "firefighter"])]},
     "users file: user 1 ('fire-x'): unknown role(s) 'firefighter'; roles are admin, duty_chief, dispatcher, "
     "pilot, department, crew, viewer"),
    ({"users": [entry(roles=["department", "department"])]},
     "users file: user 1 ('fire-x'): a role listed twice in ['department', 'department']"),
    ({"users": [entry(roles=[])]},
     "users file: user 1 ('fire-x'): roles: List should have at least 1 item after validation, not 0"),
    ({"users": [entry(password_hash=None, password="hunter22")]},
     "users file: user 1 ('fire-x'): a plain-text 'password' is not accepted: store 'password_hash' "
     "(from hash_password)"),
    ({"users": [entry(password_hash="hunter22")]},
     "users file: user 1 ('fire-x'): password_hash: password_hash is not an Argon2 hash (make one with "
     "hash_password)"),
    ({"users": [entry(password_hash=HASH.replace("$argon2id$", "$argon2i$"))]},
     "users file: user 1 ('fire-x'): password_hash: password_hash is Argon2i, not Argon2id"),
    ({"users": [entry(password_hash=None)]}, "users file: user 1 ('fire-x'): password_hash: Field required"),
    ({"users": [entry(email="x@example.org")]},
     "users file: user 1 ('fire-x'): email: Extra inputs are not permitted"),
    ({"users": [entry(id="fire x")]},
     "users file: user 1 ('fire x'): id: String should match pattern '^[A-Za-z0-9._-]+$'"),
    ({"users": [entry(), entry(name="Y")]},
     "users file: user 2 ('fire-x'): id 'fire-x' is already used by an earlier user"),
    ({"users": [entry(department="forestry")]}, "users file: user 1 ('fire-x'): no department 'forestry' in the "
                                                "district"),
    ({"users": [entry(roles=["crew"], department=None, crew="crew-nowhere")]},
     "users file: user 1 ('fire-x'): no crew 'crew-nowhere' in the district"),
    ({"users": ["fire-x"]}, "users file: user 1: expected a mapping, got 'fire-x'"),
    ({"people": []}, "users file: expected a mapping with a 'users' list"),
    ([entry()], "users file: expected a mapping with a 'users' list"),
    ({"users": [], "groups": []}, "users file: unknown top-level key(s) ['groups']; only 'users'"),
])
def test_users_file_errors_name_the_entry(raw: Any, message: str) -> None:
    with pytest.raises(UsersFileError, match=f"^{re.escape(message)}$"):
        parse_users(raw, departments=DEPARTMENTS, crews=CREWS)


def test_scopes_are_not_checked_without_the_district() -> None:
    got = parse_users({"users": [entry(department="forestry")]})
    assert got["fire-x"].department == "forestry"


def test_load_users_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "users.yaml"
    with pytest.raises(UsersFileError, match=f"^{re.escape(str(missing))}: cannot read it: No such file"):
        load_users(missing)
    missing.write_text("users: [\n", encoding="utf-8")
    with pytest.raises(UsersFileError, match=f"^{re.escape(str(missing))}: not valid YAML"):
        load_users(missing)
    missing.write_text(yaml.safe_dump({"users": [entry(department=None)]}), encoding="utf-8")
    with pytest.raises(UsersFileError, match=f"^{re.escape(str(missing))}: user 1 \\('fire-x'\\): the department"):
        load_users(missing)


# --- tokens -----------------------------------------------------------------------------------------


def test_issue_and_verify(users: Any) -> None:
    token = issue_token(users["fire-wang"], secret=SECRET, now=NOW, token_id="t-1")
    p = verify_token(token, secret=SECRET, now=NOW + timedelta(minutes=5))
    assert p == Principal("fire-wang", frozenset({"department"}), "fire", None, "t-1", NOW,
                          NOW + timedelta(seconds=TOKEN_TTL_S))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {"iss": "yingji", "sub": "fire-wang", "roles": ["department"], "dept": "fire",
                      "iat": 1751853600, "nbf": 1751853600, "exp": 1751853600 + 900, "jti": "t-1"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_token_ids_are_fresh(users: Any) -> None:
    a = verify_token(issue_token(users["chen-li"], secret=SECRET, now=NOW), secret=SECRET, now=NOW)
    b = verify_token(issue_token(users["chen-li"], secret=SECRET, now=NOW), secret=SECRET, now=NOW)
    assert a.token_id != b.token_id and len(a.token_id) == 32
    assert a.roles == frozenset({"dispatcher", "pilot"})


def test_expiry_at_the_exact_boundary(users: Any) -> None:
    token = issue_token(users["luoqi-zhang"], secret=SECRET, now=NOW, ttl_s=60)
    last = verify_token(token, secret=SECRET, now=NOW + timedelta(seconds=60) - timedelta(microseconds=1))
    assert (last.crew, last.expires_at) == ("crew-luoqi-water", NOW + timedelta(seconds=60))
    with pytest.raises(AuthError) as err:
        verify_token(token, secret=SECRET, now=NOW + timedelta(seconds=60))
    assert (err.value.reason, str(err.value)) == ("expired", "expired: expired at 2025-07-07T02:01:00+00:00")
    # leeway for replicas whose clocks differ a little
    assert verify_token(token, secret=SECRET, now=NOW + timedelta(seconds=62), leeway_s=5).user_id == "luoqi-zhang"


def test_not_yet_valid(users: Any) -> None:
    token = issue_token(users["chen-li"], secret=SECRET, now=NOW)
    assert verify_token(token, secret=SECRET, now=NOW).user_id == "chen-li"  # valid from its first second
    with pytest.raises(AuthError) as err:
        verify_token(token, secret=SECRET, now=NOW - timedelta(microseconds=1))
    assert (err.value.reason, str(err.value)) == ("not yet valid",
                                                  "not yet valid: valid from 2025-07-07T02:00:00+00:00")
    assert verify_token(token, secret=SECRET, now=NOW - timedelta(seconds=2), leeway_s=3).user_id == "chen-li"


def test_issued_at_a_fraction_of_a_second_counts_whole_seconds(users: Any) -> None:
    token = issue_token(users["chen-li"], secret=SECRET, now=NOW + timedelta(milliseconds=700), ttl_s=10)
    p = verify_token(token, secret=SECRET, now=NOW + timedelta(seconds=1))
    assert (p.issued_at, p.expires_at) == (NOW, NOW + timedelta(seconds=10))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_tampered_token_is_refused(users: Any) -> None:
    token = issue_token(users["screen-hall"], secret=SECRET, now=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = ".".join((header, _b64(json.dumps(claims).encode()), signature))
    with pytest.raises(AuthError) as err:
        verify_token(forged, secret=SECRET, now=NOW)
    assert err.value.reason == "bad signature"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(AuthError) as err:
        verify_token(".".join((header, payload, flipped)), secret=SECRET, now=NOW)
    assert err.value.reason == "bad signature"


def test_wrong_secret(users: Any) -> None:
    token = issue_token(users["chen-li"], secret=SECRET, now=NOW)
    with pytest.raises(AuthError) as err:
        verify_token(token, secret=b"another-secret-of-enough-length-000", now=NOW)
    assert (err.value.reason, str(err.value)) == ("bad signature", "bad signature")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 forgery's key
def test_no_algorithm_confusion(users: Any) -> None:
    claims = jwt.decode(issue_token(users["chen-li"], secret=SECRET, now=NOW), options={"verify_signature": False})
    unsigned = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode()) + "."
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    for token in (unsigned, hs512):
        with pytest.raises(AuthError) as err:
            verify_token(token, secret=SECRET, now=NOW)
        assert err.value.reason == "bad signature"


def _signed(**claims: Any) -> str:
    base = {"iss": "yingji", "sub": "chen-li", "roles": ["dispatcher"], "iat": 1751853600, "nbf": 1751853600,
            "exp": 1751854500, "jti": "t-9"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("token", [
    "", "not-a-token", "a.b.c", "x" * 9000,
    _signed(jti=None), _signed(exp=None), _signed(iss="elsewhere"), _signed(roles=["king"]),
    _signed(roles="dispatcher"), _signed(roles=["department"]), _signed(roles=["dispatcher"], crew="crew-1"),
    _signed(exp=1751853600), _signed(exp=1751853600 + 13 * 3600), _signed(iat=1751853600.5), _signed(sub="a b"),
])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(AuthError) as err:
        verify_token(token, secret=SECRET, now=NOW)
    assert err.value.reason == "malformed"


def test_token_arguments_are_checked(users: Any) -> None:
    user = users["chen-li"]
    with pytest.raises(ValueError, match=r"^the token secret needs at least 32 bytes \(got 5; RFC 7518 §3.2\)$"):
        issue_token(user, secret=b"short", now=NOW)
    with pytest.raises(TypeError, match="^the token secret is bytes, not str$"):
        verify_token("x", secret="a" * 40, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^now must be a timezone-aware datetime"):
        issue_token(user, secret=SECRET, now=datetime(2025, 7, 7, 2, 0))
    for ttl in (0, 12 * 3600 + 1, 1.5, True):
        with pytest.raises(ValueError, match="^ttl_s must be a whole number of seconds from 1 to 43200"):
            issue_token(user, secret=SECRET, now=NOW, ttl_s=ttl)
    with pytest.raises(AuthError) as err:
        issue_token(users["old-qian"], secret=SECRET, now=NOW)
    assert err.value.reason == "disabled"


def test_other_timezones_mean_the_same_instant(users: Any) -> None:
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    token = issue_token(users["chen-li"], secret=SECRET, now=shanghai, ttl_s=60)
    with pytest.raises(AuthError, match="^expired"):
        verify_token(token, secret=SECRET, now=NOW + timedelta(seconds=60))


def test_recheck_applies_the_current_user(users: Any) -> None:
    p = verify_token(issue_token(users["chen-li"], secret=SECRET, now=NOW, token_id="t-2"), secret=SECRET, now=NOW)
    demoted = {**users, "chen-li": User("chen-li", "Chen Li", frozenset({"viewer"}), HASH)}
    again = recheck(p, demoted)
    assert (again.roles, again.token_id, again.expires_at) == (frozenset({"viewer"}), "t-2", p.expires_at)
    gone = {k: v for k, v in users.items() if k != "chen-li"}
    with pytest.raises(AuthError) as err:
        recheck(p, gone)
    assert str(err.value) == "revoked: user 'chen-li' is no longer known"
    disabled = {**users, "chen-li": User("chen-li", "Chen Li", frozenset({"dispatcher"}), HASH, disabled=True)}
    with pytest.raises(AuthError) as err:
        recheck(p, disabled)
    assert str(err.value) == "revoked: user 'chen-li' is disabled"


# --- the permission table -------------------------------------------------------------------------

# The policy stated a second time, independently of command/auth.py: per action, one letter per role
# in the order admin, duty_chief, dispatcher, pilot, department, crew, viewer.
# A: any; O: own department or crew only; P: the public view only; -: no.
EXPECTED = {
    #                          adm chf dsp plt dep crw vwr
    "map.read":               "A   A   A   A   A   A   A",
    "incident.read":          "A   A   A   A   P   -   A",
    "incident.reporter.read": "-   A   A   -   -   -   -",
    "task.read":              "A   A   A   A   O   O   A",
    "plan.read":              "A   A   A   A   -   -   A",
    "vehicle.read":           "A   A   A   A   -   -   A",
    "flight.read":            "A   A   A   A   -   -   A",
    "airspace.read":          "A   A   A   A   -   -   A",
    "crew.read":              "A   A   A   A   O   O   A",
    "department.read":        "A   A   A   A   A   A   A",
    "alert.read":             "A   A   A   A   A   A   A",
    "evacuation.read":        "A   A   A   A   A   A   A",
    "report.read":            "A   A   A   -   -   -   -",
    "delivery.read":          "A   A   A   -   -   -   -",
    "audit.read":             "A   A   -   -   -   -   -",
    "events.read":            "A   A   A   A   A   A   A",
    "events.other":           "A   A   A   A   -   -   -",
    "incident.create":        "-   A   A   -   -   -   -",
    "incident.ack":           "-   A   A   -   -   -   -",
    "incident.verify":        "-   A   A   -   -   -   -",
    "incident.close":         "-   A   A   -   -   -   -",
    "incident.response":      "-   A   -   -   -   -   -",
    "report.issue":           "-   A   A   -   -   -   -",
    "plan.propose":           "-   A   A   -   -   -   -",
    "plan.approve":           "-   A   A   -   -   -   -",
    "vehicle.command":        "-   -   -   A   -   -   -",
    "flight.pilot":           "-   -   -   A   -   -   -",
    "vehicle.maintenance":    "A   -   -   A   -   -   -",
    "airspace.grant":         "-   A   A   A   -   -   -",
    "task.ack":               "-   A   A   -   O   -   -",
    "task.update":            "-   A   A   -   O   -   -",
    "crew.position":          "-   A   A   -   -   O   -",
    "crew.status":            "-   A   A   -   -   O   -",
    "crew.task.update":       "-   A   A   -   -   O   -",
    "crew.task.assign":       "-   A   A   -   O   -   -",
    "crew.sos":               "-   A   A   -   -   O   -",
    "crew.sos.ack":           "-   A   A   -   -   -   -",
    "crew.checkin":           "-   A   A   -   -   O   -",
    "evacuation.update":      "-   A   A   -   O   -   -",
    "alert.draft":            "-   A   A   -   -   -   -",
    "alert.release":          "-   A   -   -   -   -   -",
    "official.write":         "A   A   A   -   -   -   -",
    "sensor.maintenance":     "A   -   A   -   -   -   -",
    "sensor.ingest":          "A   -   -   -   -   -   -",
    "admin.users":            "A   -   -   -   -   -   -",
}
CELLS = [(action, role, cell) for action, row in EXPECTED.items()
         for role, cell in zip(ROLES, row.split(), strict=True)]
LETTER = {"any": "A", "own": "O", "public": "P"}


def test_the_table_lists_exactly_the_expected_actions() -> None:
    assert set(ACTIONS) == set(EXPECTED)
    assert len(ACTIONS) == len(EXPECTED) == 45


@pytest.mark.parametrize("action", list(EXPECTED))
def test_the_table_grants_exactly_the_expected_roles(action: str) -> None:
    got = " ".join(LETTER[PERMISSIONS[action].grants[r]] if r in PERMISSIONS[action].grants else "-" for r in ROLES)
    assert got == " ".join(EXPECTED[action].split())
    assert PERMISSIONS[action].what  # every action says which routes it covers


def _single(role: str) -> Principal:
    return principal(role, department="fire" if role == "department" else None,
                     crew="crew-luoqi-water" if role == "crew" else None)


@pytest.mark.parametrize(("action", "role", "cell"), CELLS)
def test_allowed_for_every_action_and_role(action: str, role: str, cell: str) -> None:
    p = _single(role)
    assert allowed(p, action, department="fire", crew="crew-luoqi-water") is (cell != "-")  # own scope
    assert allowed(p, action, department="traffic", crew="crew-longxing-water") is (cell in "AP")  # another's
    assert allowed(p, action) is (cell in "AP")  # scope unknown: an own grant does not hold


def test_department_member_of_traffic_cannot_ack_a_fire_task(users: Any) -> None:
    sun = Principal.from_user(users["traffic-sun"])
    assert allowed(sun, "task.ack", department="fire") is False
    assert allowed(sun, "task.update", department="fire") is False
    assert allowed(sun, "task.ack", department="traffic") is True
    assert allowed(sun, "task.update", department="traffic") is True
    assert allowed(sun, "crew.position", crew="unit-traffic-longxing", department="traffic") is False
    assert allowed(sun, "incident.ack") is False


def test_crew_member_updates_only_its_own_crew(users: Any) -> None:
    zhang = Principal.from_user(users["luoqi-zhang"])
    assert allowed(zhang, "crew.position", crew="crew-luoqi-water") is True
    assert allowed(zhang, "crew.task.update", crew="crew-luoqi-water") is True
    assert allowed(zhang, "crew.position", crew="crew-longxing-water") is False
    assert allowed(zhang, "crew.task.update", crew="crew-longxing-water") is False
    assert allowed(zhang, "task.ack", department="fire", crew="crew-luoqi-water") is False  # a department's act


def test_only_pilots_command_vehicles_or_fly(users: Any) -> None:
    holders = {u.id for u in users.values() if allowed(Principal.from_user(u), "vehicle.command")}
    assert holders == {"chen-li", "pilot-zhao"}
    assert {u.id for u in users.values() if allowed(Principal.from_user(u), "flight.pilot")} == holders
    assert allowed(principal("dispatcher"), "plan.approve") is True
    assert allowed(principal("dispatcher"), "vehicle.command") is False
    assert allowed(principal("admin", "duty_chief"), "vehicle.command") is False


def test_several_roles_add_up() -> None:
    both = principal("department", "crew", department="traffic", crew="crew-luoqi-water")
    assert allowed(both, "task.ack", department="traffic") is True
    assert allowed(both, "crew.position", crew="crew-luoqi-water") is True
    assert allowed(both, "crew.position", crew="unit-traffic-longxing") is False


def test_an_own_grant_needs_a_scope_on_both_sides() -> None:
    unscoped = Principal("x", frozenset({"department", "crew"}))  # not from the users file or a token
    assert allowed(unscoped, "task.ack") is False
    assert allowed(unscoped, "crew.position") is False
    assert view(unscoped, "task.read", {"id": 1}) is None


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(ValueError, match="^unknown action 'incident.delete'$"):
        allowed(principal("admin"), "incident.delete")


# --- what a reader sees -------------------------------------------------------------------------------

FIRE_TASK = {"id": 7, "incident_id": 3, "department": "fire", "text": "Send a water rescue squad", "status": "sent"}
TRAFFIC_TASK = {"id": 8, "incident_id": 3, "department": "traffic", "text": "Close the G65 ramp", "status": "sent"}
INCIDENT = {"id": 3, "kind": "flood", "level": "orange", "level_zh": "橙色", "response": "III", "response_zh": "III级",
            "status": "open", "lon": 106.8, "lat": 29.77, "on_water": False, "sensor_id": "river-longxing",
            "title": "Flooding at Longxing", "title_zh": "龙兴内涝", "reason": "level 3.1 m", "reason_zh": "水位3.1米",
            "opened_at": "2025-07-07T02:00:00+00:00", "updated_at": "2025-07-07T02:05:00+00:00",
            "dispatch": {"vehicle": "UAV-1", "approved_by": "chen-li"}, "plans": [{"id": 1, "vehicle": "UAV-1"}],
            "reporter": {"name": "Li Si", "phone": "+86 138 0000 0000"},
            "tasks": [FIRE_TASK, TRAFFIC_TASK]}
PUBLIC_FOR_FIRE = {"id": 3, "kind": "flood", "level": "orange", "level_zh": "橙色", "response": "III",
                   "response_zh": "III级", "status": "open", "lon": 106.8, "lat": 29.77, "on_water": False,
                   "title": "Flooding at Longxing", "title_zh": "龙兴内涝", "reason": "level 3.1 m",
                   "reason_zh": "水位3.1米", "opened_at": "2025-07-07T02:00:00+00:00",
                   "updated_at": "2025-07-07T02:05:00+00:00", "tasks": [FIRE_TASK]}
LUOQI = {"id": "crew-luoqi-water", "department": "fire", "lon": 106.84, "lat": 29.71, "status": "available"}
LONGXING = {"id": "crew-longxing-water", "department": "fire", "lon": 106.78, "lat": 29.78, "status": "on_task"}


def test_event_kinds_map_to_read_actions() -> None:
    assert [event_action(k) for k in ("task.acknowledged", "incident.opened", "crew.position", "vehicle.telemetry",
                                      "dispatch.approved", "alert.released", "shelter.occupancy", "risk.hotspots",
                                      "report.overdue", "webhook.failed", "airspace.granted", "something.new")] == [
        "task.read", "incident.read", "crew.read", "vehicle.read", "plan.read", "alert.read", "evacuation.read",
        "map.read", "report.read", "delivery.read", "airspace.read", "events.other"]


def test_department_members_see_their_tasks_and_public_incidents(users: Any) -> None:
    wang = Principal.from_user(users["fire-wang"])
    assert event_view(wang, "task.created", FIRE_TASK) == FIRE_TASK
    assert event_view(wang, "task.acknowledged", TRAFFIC_TASK) is None
    assert visible(wang, "task.acknowledged", TRAFFIC_TASK) is False
    assert event_view(wang, "incident.updated", INCIDENT) == PUBLIC_FOR_FIRE
    for kind, data in (("vehicle.telemetry", {"name": "UAV-1"}), ("risk.hotspots", {"hotspots": []}),
                       ("crew.position", LUOQI), ("alert.released", {"id": 1}), ("plan.approved", {"id": 1}),
                       ("report.issued", {"id": 1}), ("something.new", {})):
        assert visible(wang, kind, data) is False, kind
    assert event_view(wang, "bus.overflow", {"dropped": 3}) == {"dropped": 3}


def test_crew_members_see_their_crew_only(users: Any) -> None:
    zhang = Principal.from_user(users["luoqi-zhang"])
    assert event_view(zhang, "crew.position", LUOQI) == LUOQI
    assert visible(zhang, "crew.status", LONGXING) is False
    crew_task = {"id": 9, "crew": "crew-luoqi-water", "department": "fire", "status": "sent"}
    assert event_view(zhang, "task.created", crew_task) == crew_task
    assert visible(zhang, "task.created", {**crew_task, "crew": "crew-longxing-water"}) is False
    assert visible(zhang, "task.created", FIRE_TASK) is False  # the department's, not the crew's
    assert visible(zhang, "incident.opened", INCIDENT) is False
    assert visible(zhang, "vehicle.telemetry", {"name": "UAV-1"}) is False


def test_viewers_never_see_phone_numbers(users: Any) -> None:
    hall = Principal.from_user(users["screen-hall"])
    seen = event_view(hall, "incident.opened", INCIDENT)
    assert seen == {**INCIDENT, "reporter": {"name": "Li Si", "phone": None}}
    assert INCIDENT["reporter"] == {"name": "Li Si", "phone": "+86 138 0000 0000"}  # the original is untouched
    assert visible(hall, "report.issued", {"id": 1}) is False
    assert visible(hall, "webhook.failed", {"delivery": "d"}) is False
    assert visible(hall, "something.new", {}) is False
    depts = [{"id": "traffic", "head": {"id": "traffic-head", "phone": "+86 23 6782 0000"},
              "members": [{"id": "traffic-wang", "phone": "+86 138 0000 0001"}, {"id": "traffic-li"}]}]
    assert view(hall, "department.read", {"departments": depts}) == {"departments": [
        {"id": "traffic", "head": {"id": "traffic-head", "phone": None},
         "members": [{"id": "traffic-wang", "phone": None}, {"id": "traffic-li"}]}]}


def test_the_bureau_sees_everything_as_it_is(users: Any) -> None:
    chen = Principal.from_user(users["chen-li"])
    assert event_view(chen, "incident.opened", INCIDENT) == INCIDENT
    assert event_view(chen, "something.new", {"x": 1}) == {"x": 1}
    assert event_view(chen, "webhook.failed", {"delivery": "d"}) == {"delivery": "d"}
    zhao = Principal.from_user(users["pilot-zhao"])
    assert visible(zhao, "webhook.failed", {"delivery": "d"}) is False  # deliveries are the dispatchers'
    assert visible(zhao, "flight.started", {"vehicle": "UAV-1"}) is True


def test_several_roles_get_the_most_revealing_view() -> None:
    both = principal("department", "viewer", department="fire")
    assert event_view(both, "incident.updated", INCIDENT) == redact(INCIDENT)  # more than the public view
    assert event_view(both, "task.created", FIRE_TASK) == FIRE_TASK


def test_view_for_a_single_read() -> None:
    fire = principal("department", department="fire")
    assert view(fire, "crew.read", LUOQI) == LUOQI  # its own department's crews
    assert view(principal("department", department="traffic"), "crew.read", LUOQI) is None
    assert view(principal("crew", crew="crew-longxing-water"), "crew.read", LUOQI) is None
    assert view(fire, "incident.read", INCIDENT) == PUBLIC_FOR_FIRE
    assert view(fire, "incident.reporter.read", INCIDENT) is None
    assert view(principal("dispatcher"), "incident.reporter.read", INCIDENT) == INCIDENT


def test_redact() -> None:
    data = {"phone": "110", "reporter_phone": "+86 1", "Phone": "x", "phones": ["kept"], "name": "A",
            "nested": [{"head": {"phone": "+86 2"}}, ("t", {"phone": "3"})], "telephone_count": 2}
    assert redact(data) == {"phone": None, "reporter_phone": None, "Phone": None, "phones": ["kept"], "name": "A",
                            "nested": [{"head": {"phone": None}}, ["t", {"phone": None}]], "telephone_count": 2}
    assert data["nested"][0] == {"head": {"phone": "+86 2"}}
    assert redact([1, "phone"]) == [1, "phone"]


def test_public_view_only_for_a_department_whose_task_shares_the_incident() -> None:
    # no tasks, no department, or no task of the department: not shown at all
    assert incident_public_view({"id": 1, "dispatch": {}, "kind": "fire"}, department="fire") is None
    assert incident_public_view({"id": 1, "tasks": [FIRE_TASK]}) is None
    assert incident_public_view({"id": 1, "tasks": [FIRE_TASK]}, department="traffic") is None
    shown = incident_public_view({"id": 1, "kind": "fire", "dispatch": {}, "tasks": [FIRE_TASK]}, department="fire")
    assert shown == {"id": 1, "kind": "fire", "tasks": [FIRE_TASK]}
    # the playbook shares roads but not the incident: the task is seen, the incident is not
    roads_only = {"department": "fire", "share": ["roads"], "needs": {"roads": ["G65"], "hospitals": ["H1"]}}
    assert incident_public_view({"id": 1, "tasks": [roads_only]}, department="fire") is None
    assert department_task_view(roads_only)["needs"] == {"roads": ["G65"]}
    everything = {"department": "fire", "needs": {"roads": ["G65"], "hospitals": ["H1"]}}  # no share: all
    assert department_task_view(everything)["needs"] == everything["needs"]


# --- audit -------------------------------------------------------------------------------------------


def test_audit_record(users: Any) -> None:
    p = verify_token(issue_token(users["chen-li"], secret=SECRET, now=NOW, token_id="t-3"), secret=SECRET, now=NOW)
    at = datetime(2025, 7, 7, 10, 1, 2, tzinfo=timezone(timedelta(hours=8)))
    changes = {"status": ["open", "acknowledged"], "note": "seen on video"}
    rec = audit_record(p, "incident.ack", at=at, remote_addr="10.0.0.5", target="incident:3", changes=changes)
    assert rec == {"at": "2025-07-07T02:01:02+00:00", "user": "chen-li", "roles": ["dispatcher", "pilot"],
                   "department": None, "crew": None, "token_id": "t-3", "action": "incident.ack",
                   "remote_addr": "10.0.0.5", "target": "incident:3",
                   "changes": {"status": ["open", "acknowledged"], "note": "seen on video"}}
    changes["status"][1] = "closed"
    assert rec["changes"]["status"] == ["open", "acknowledged"]  # a copy, not the caller's object
    assert json.loads(json.dumps(rec)) == rec


def test_audit_record_hides_secrets_and_checks_its_input(users: Any) -> None:
    admin = Principal.from_user(users["admin-he"])
    rec = audit_record(admin, "admin.users", at=NOW, remote_addr=None, target="user:fire-x",
                       changes={"roles": [[], ["department"]], "password_hash": ["a", "b"], "Password": "x"})
    assert rec["changes"] == {"roles": [[], ["department"]], "password_hash": "(redacted)", "Password": "(redacted)"}
    assert (rec["token_id"], rec["remote_addr"]) == (None, None)
    assert audit_record(admin, "auth.sign_in", at=NOW, remote_addr="::1", target="user:admin-he",
                        changes={})["action"] == "auth.sign_in"
    with pytest.raises(ValueError, match="^unknown action 'incident.delete' for the audit log$"):
        audit_record(admin, "incident.delete", at=NOW, remote_addr=None, target="incident:1", changes={})
    with pytest.raises(ValueError, match="^at must be a timezone-aware datetime"):
        audit_record(admin, "admin.users", at=datetime(2025, 7, 7), remote_addr=None, target="user:x", changes={})
    with pytest.raises(ValueError, match="^the audit target must name the thing acted on, got ''$"):
        audit_record(admin, "admin.users", at=NOW, remote_addr=None, target="", changes={})
    with pytest.raises(ValueError, match="^changes must be plain JSON: "):
        audit_record(admin, "admin.users", at=NOW, remote_addr=None, target="user:x", changes={"when": NOW})
    with pytest.raises(ValueError, match="^changes must be plain JSON: "):
        audit_record(admin, "admin.users", at=NOW, remote_addr=None, target="user:x", changes={"x": float("nan")})
