"""Who may do what: users, roles and scopes, password hashing, short-lived tokens. Pure.

People sign in with a password; the service answers with a short-lived signed token that carries
who they are, their roles and their scopes; every request and every WebSocket subscription is
then checked against one table of actions. Nothing here reads a clock, a file (except
``load_users``) or the network: the HTTP layer calls these functions from a FastAPI dependency.

Roles
-----
``admin`` (users, sensors, system upkeep), ``duty_chief`` (the bureau's duty chief: response
levels, public alerts), ``dispatcher`` (incidents, plans, department tasks), ``pilot`` (the only
role that may command a vehicle or be named pilot in command of a flight), ``department`` (a
member of one linked department, scoped to it), ``crew`` (a member of one field crew, scoped to
it), ``viewer`` (reads the common picture; never phone numbers). A user may hold several roles
(a dispatcher who is also a pilot) and gets the union of their rights. ``admin`` is deliberately
not a superuser: operational decisions need the operational role too (least privilege).

Users file (YAML)
-----------------
::

    users:
      - id: chen-li                 # letters, digits, '.', '-' and '_'; unique
        name: Chen Li
        name_zh: 陈丽                # optional
        roles: [dispatcher, pilot]  # one or more of the roles above
        password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."   # from hash_password; never plain text
      - id: fire-wang
        name: Wang Qiang
        roles: [department]
        department: fire            # required with the department role, refused without it
      - id: luoqi-zhang
        name: Zhang Wei
        roles: [crew]
        crew: crew-luoqi-water      # required with the crew role, refused without it
        password_hash: "$argon2id$..."
        disabled: true              # optional; a disabled user cannot sign in

``load_users`` validates it (pydantic at the boundary) and, given the district's department and
crew ids, that every scope names one of them. Anything wrong raises ``UsersFileError`` naming the
entry.

Passwords
---------
Argon2id through argon2-cffi, the OWASP Password Storage Cheat Sheet's first choice ("Argon2id
with a minimum configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of
parallelism"). The parameters are pinned to RFC 9106's second recommended option (§4, "low
memory": t=3, m=64 MiB, p=4), which exceeds that minimum. When they change, a stored hash made
with the old ones still verifies and ``needs_rehash`` says so, so the sign-in can store a new one.

Tokens
------
JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (``HS256``, RFC 7518 §3.2) through PyJWT: a
standard, well-kept format another system can check with any JWT library, instead of a home-made
one. The algorithm is pinned to HS256 on verification (a token naming ``none`` or any other
algorithm is refused: no algorithm confusion) and the secret must be at least 32 bytes (RFC 7518
§3.2: a key at least as long as the hash output). Claims: ``iss`` ("yingji"), ``sub`` (user id),
``roles``, ``dept`` and ``crew`` (scopes, when held), ``iat`` = ``nbf`` (issued, whole seconds),
``exp``, ``jti`` (token id). Times are checked here against the caller's ``now`` (PyJWT's own
time checks read the wall clock, so they are switched off): a token is valid from ``nbf`` up to,
not including, ``exp`` (RFC 7519 §4.1.4: "on or after which the JWT MUST NOT be accepted").
There is no refresh token: when a token runs out, the person signs in again (kept simple; the
default life is 15 minutes). ``recheck`` applies a user's current roles, or refuses a user
disabled since, without waiting for the token to run out.

Actions
-------
``PERMISSIONS`` maps every action to the roles that may do it and how: ``any`` (anything of that
kind), ``own`` (only things of the principal's own department or crew), ``public`` (the public
view only: a department member reading an incident). ``allowed`` answers for one action;
``view`` shapes what a reader gets back; ``event_view`` and ``visible`` do the same for an event
on the WebSocket or the event log. Routes map to actions as ``Rule.what`` says.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import argon2
import jwt
import yaml
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ANONYMOUS",
    "ANY",
    "OWN",
    "PUBLIC",
    "ACTIONS",
    "AUDIT_ACTIONS",
    "EVENT_ACTIONS",
    "PERMISSIONS",
    "ROLES",
    "TOKEN_TTL_S",
    "AuthError",
    "Principal",
    "Rule",
    "SignIn",
    "User",
    "UsersFileError",
    "WeakPassword",
    "allowed",
    "audit_record",
    "authenticate",
    "event_action",
    "event_view",
    "hash_password",
    "department_task_view",
    "incident_public_view",
    "issue_token",
    "load_users",
    "needs_rehash",
    "parse_users",
    "recheck",
    "redact",
    "verify_password",
    "verify_token",
    "view",
    "visible",
]

Role = Literal["admin", "duty_chief", "dispatcher", "pilot", "department", "crew", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "duty_chief", "dispatcher", "pilot", "department", "crew", "viewer")
SCOPED_ROLES = frozenset({"department", "crew"})  # each needs its scope id, and only it has one
REDACTED_ROLES = frozenset({"viewer"})  # what they read has every phone number blanked

Grant = Literal["any", "own", "public"]
ANY: Grant = "any"
OWN: Grant = "own"  # only the principal's own department (department role) or crew (crew role)
PUBLIC: Grant = "public"  # the public view only (incident_public_view)

TOKEN_TTL_S = 900  # 15 minutes: a stolen token is worth little for long
MAX_TOKEN_TTL_S = 12 * 3600  # short-lived means at most one duty shift
ISSUER = "yingji"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the SHA-256 output
MAX_TOKEN_CHARS = 8192  # anything longer is not one of ours; refused before parsing
MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B §5.1.1.2: memorized secrets at least 8 characters
MAX_PASSWORD_CHARS = 1024  # bounds the hashing work one request can ask for

# RFC 9106 §4, second recommended option (argon2-cffi's RFC_9106_LOW_MEMORY profile), pinned here so
# a change of the library's default shows up as a deliberate edit (and as needs_rehash on old hashes).
PASSWORD_HASHER = argon2.PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16,
                                        type=argon2.Type.ID)


class AuthError(Exception):
    """A sign-in or a token refused; ``reason`` says why in one word or two (safe to show the client)."""

    def __init__(self, reason: Literal["malformed", "bad signature", "expired", "not yet valid", "bad credentials",
                                       "disabled", "revoked"], detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class UsersFileError(ValueError):
    """A users file that cannot be used; the message names the entry and the problem."""


class WeakPassword(ValueError):
    """A password refused before hashing (too short or too long)."""


# --- plain data ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """One person who may sign in (an entry of the users file)."""

    id: str
    name: str
    roles: frozenset[str]
    password_hash: str = field(repr=False)
    name_zh: str = ""
    department: str | None = None  # with the department role only
    crew: str | None = None  # with the crew role only
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user's id, roles and scopes, and the token that says so."""

    user_id: str
    roles: frozenset[str]
    department: str | None = None
    crew: str | None = None
    token_id: str = ""  # "" when built straight from a user (no token)
    issued_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_user(cls, user: User) -> Principal:
        """The principal of a user, without a token (for a sign-in in progress, and tests)."""
        return cls(user.id, user.roles, user.department, user.crew)


# Who reads without a token where anonymous reading is allowed: a viewer (phone numbers blanked).
ANONYMOUS = Principal("(anonymous)", frozenset({"viewer"}))  # not a valid user id: no user is it


@dataclass(frozen=True, slots=True)
class SignIn:
    """A successful sign-in; ``needs_rehash``: store ``hash_password(password)`` for the user now."""

    user: User
    principal: Principal
    needs_rehash: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """One action: what it permits (routes) and which roles hold it, and how."""

    what: str
    grants: Mapping[str, Grant]


# --- the permission table ---------------------------------------------------------------------------


def _rule(what: str, *roles: str, own: tuple[str, ...] = (), public: tuple[str, ...] = ()) -> Rule:
    grants: dict[str, Grant] = {}
    for names, grant in ((roles, ANY), (own, OWN), (public, PUBLIC)):
        for role in names:
            if role not in ROLES:
                raise ValueError(f"permission table: {what!r}: unknown role {role!r}")
            if role in grants:
                raise ValueError(f"permission table: {what!r}: role {role!r} granted twice")
            if grant != ANY and role not in SCOPED_ROLES:
                raise ValueError(f"permission table: {what!r}: role {role!r} has no scope for an {grant!r} grant")
            grants[role] = grant
    return Rule(what, MappingProxyType({r: grants[r] for r in ROLES if r in grants}))


_ALL = ROLES
_STAFF = ("admin", "duty_chief", "dispatcher", "pilot")  # the bureau's own people
_DECIDE = ("duty_chief", "dispatcher")  # who runs incidents at the bureau

PERMISSIONS: Mapping[str, Rule] = MappingProxyType({
    # -- reading ---------------------------------------------------------------------------------
    "map.read": _rule("GET district, gazetteer, layers, risk, flood, sensors and readings, forecasts, official "
                      "warnings: the common picture", *_ALL),
    "incident.read": _rule("GET incidents (department members: the public view)", *_STAFF, "viewer",
                           public=("department",)),
    "incident.reporter.read": _rule("GET an incident's reporter (name and phone)", *_DECIDE),
    "task.read": _rule("GET department and crew tasks", *_STAFF, "viewer", own=("department", "crew")),
    "plan.read": _rule("GET plans and dispatches", *_STAFF, "viewer"),
    "vehicle.read": _rule("GET vehicles and tracks", *_STAFF, "viewer"),
    "flight.read": _rule("GET flights and their logs", *_STAFF, "viewer"),
    "airspace.read": _rule("GET airspace grants", *_STAFF, "viewer"),
    "crew.read": _rule("GET crews and units", *_STAFF, "viewer", own=("department", "crew")),
    "department.read": _rule("GET departments and rosters", *_ALL),
    "alert.read": _rule("GET public alerts and the CAP feed", *_ALL),
    "evacuation.read": _rule("GET evacuation zones and shelters", *_ALL),
    "report.read": _rule("GET incident reports to higher authorities", "admin", *_DECIDE),
    "delivery.read": _rule("GET webhook deliveries to departments", "admin", *_DECIDE),
    "audit.read": _rule("read the audit log of human actions", "admin", "duty_chief"),
    "events.read": _rule("GET the event log, subscribe to /ws (each event then passes event_view)", *_ALL),
    "events.other": _rule("events of kinds no read action covers (new kinds stay in-house)", *_STAFF),
    # -- incidents -------------------------------------------------------------------------------
    "incident.create": _rule("POST /api/incidents (a person's report)", *_DECIDE),
    "incident.ack": _rule("POST .../ack", *_DECIDE),
    "incident.verify": _rule("POST .../verify, .../confirm, .../false-alarm", *_DECIDE),
    "incident.close": _rule("POST .../close, .../reopen, .../merge", *_DECIDE),
    "incident.response": _rule("POST .../response: declare or change the response level", "duty_chief"),
    "report.issue": _rule("POST .../reports: an initial or follow-up report", *_DECIDE),
    # -- drones and boats ------------------------------------------------------------------------
    "plan.propose": _rule("POST .../dispatch, .../plans", *_DECIDE),
    "plan.approve": _rule("POST /api/plans/{id}/approve, /reject, /edit, /preempt", *_DECIDE),
    "vehicle.command": _rule("POST/DELETE /api/vehicles/{name}/control, POST .../command, /api/fleet/command",
                             "pilot"),
    "flight.pilot": _rule("be named remote pilot in command of a flight (checked on the person named)", "pilot"),
    "vehicle.maintenance": _rule("POST/DELETE /api/vehicles/{name}/maintenance", "admin", "pilot"),
    "airspace.grant": _rule("POST/DELETE /api/airspace/grants (recording what air traffic control granted)",
                            *_DECIDE, "pilot"),
    # -- departments and crews -------------------------------------------------------------------
    "task.ack": _rule("POST /api/tasks/{id}/ack", *_DECIDE, own=("department",)),
    "task.update": _rule("POST /api/tasks/{id}/start, /done, /decline, /delivered", *_DECIDE, own=("department",)),
    "crew.position": _rule("POST /api/crews/{id}/position", *_DECIDE, own=("crew",)),
    "crew.status": _rule("POST /api/crews/{id}/status", *_DECIDE, own=("crew",)),
    "crew.task.update": _rule("accept, start, finish or decline a task given to a crew; POST /api/photos",
                              *_DECIDE, own=("crew",)),
    "crew.task.assign": _rule("POST /api/crews/{id}/tasks, /api/tasks/{id}/assign: give a crew a task (department "
                              "members: their own department's crews)", *_DECIDE, own=("department",)),
    "crew.sos": _rule("POST /api/crews/{id}/sos: a crew calls for help (a dispatcher for a crew on the radio)",
                      *_DECIDE, own=("crew",)),
    "crew.sos.ack": _rule("POST /api/crews/{id}/sos/ack: a dispatcher has taken the call for help", *_DECIDE),
    "crew.checkin": _rule("POST /api/crews/{id}/check-in: the crew is safe", *_DECIDE, own=("crew",)),
    "evacuation.update": _rule("POST evacuation zones, counts, close, reopen, shelter occupancy (department: "
                               "its own zones)", *_DECIDE, own=("department",)),
    # -- warnings --------------------------------------------------------------------------------
    "alert.draft": _rule("POST /api/incidents/{id}/alerts", *_DECIDE),
    "alert.release": _rule("POST /api/alerts/messages/{id}/release, /withdraw: public warnings", "duty_chief"),
    "official.write": _rule("POST /api/official/cap, /api/forecasts/rain", "admin", *_DECIDE),
    # -- upkeep ----------------------------------------------------------------------------------
    "sensor.maintenance": _rule("POST/DELETE sensor maintenance windows, POST station commands", "admin",
                                "dispatcher"),
    "sensor.ingest": _rule("POST /api/ingest/senml", "admin"),
    "admin.users": _rule("manage users, roles and passwords", "admin"),
})


def _check_table(table: Mapping[str, Rule]) -> None:
    for action, rule in table.items():
        if PUBLIC in rule.grants.values() and action != "incident.read":
            raise ValueError(f"permission table: {action!r}: only incidents have a public view")


_check_table(PERMISSIONS)
ACTIONS: tuple[str, ...] = tuple(PERMISSIONS)
# Audited but not granted through the table (a sign-in has no principal before it succeeds).
AUDIT_ACTIONS: frozenset[str] = frozenset(ACTIONS) | {"auth.sign_in"}

# Event kinds (by the part before the first dot) → the read action that shows them.
EVENT_ACTIONS: Mapping[str, str] = MappingProxyType({
    "incident": "incident.read", "task": "task.read", "crew": "crew.read",
    "plan": "plan.read", "dispatch": "plan.read", "patrol": "plan.read", "mission": "plan.read",
    "vehicle": "vehicle.read", "fleet": "vehicle.read", "flight": "flight.read", "airspace": "airspace.read",
    "alert": "alert.read", "evacuation": "evacuation.read", "shelter": "evacuation.read",
    "sensor": "map.read", "reading": "map.read", "risk": "map.read", "forecast": "map.read",
    "official": "map.read", "traffic": "map.read",
    "report": "report.read", "webhook": "delivery.read", "linkage": "delivery.read",
})
# On the event stream, department and crew members get only the kinds of their work.
_SCOPED_EVENT_ACTIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    "department": frozenset({"task.read", "incident.read"}),
    "crew": frozenset({"task.read", "crew.read"}),
})
_ALWAYS_SHOWN = frozenset({"bus.overflow"})  # the stream's own marker: this client missed events

# What a department member sees of an incident (an allow-list: a field added later stays hidden).
INCIDENT_PUBLIC_KEYS = ("id", "kind", "level", "level_zh", "response", "response_zh", "status", "lon", "lat",
                        "on_water", "title", "title_zh", "reason", "reason_zh", "assessment_note",
                        "assessment_note_zh", "opened_at", "updated_at")


# --- scopes ---------------------------------------------------------------------------------------


def _scope_problem(roles: Iterable[str], department: str | None, crew: str | None) -> str | None:
    """Why these roles and scopes do not fit together, or None."""
    roles = list(roles)
    if not roles:
        return "no roles"
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        return f"unknown role(s) {', '.join(map(repr, unknown))}; roles are {', '.join(ROLES)}"
    if len(set(roles)) != len(roles):
        return f"a role listed twice in {roles}"
    for role, scope in (("department", department), ("crew", crew)):
        if role in roles and not scope:
            return f"the {role} role needs a {role} id"
        if scope and role not in roles:
            return f"{role} {scope!r} is given but the roles {roles} do not include {role}"
    return None


# --- users file -------------------------------------------------------------------------------------

_ID = r"^[A-Za-z0-9._-]+$"
_SCOPE_ID = r"^[A-Za-z0-9_-]+$"  # department and crew ids, as the district folder writes them


class _User(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID, max_length=64)
    name: str = Field(min_length=1, max_length=120)
    name_zh: str = Field("", max_length=120)
    roles: list[str] = Field(min_length=1)
    department: str | None = Field(None, pattern=_SCOPE_ID)
    crew: str | None = Field(None, pattern=_SCOPE_ID)
    password_hash: str
    disabled: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_plain_password(cls, v: Any) -> Any:
        if isinstance(v, Mapping) and "password" in v:
            raise ValueError("a plain-text 'password' is not accepted: store 'password_hash' (from hash_password)")
        return v

    @field_validator("password_hash")
    @classmethod
    def _argon2id(cls, v: str) -> str:
        try:
            params = argon2.extract_parameters(v)
        except InvalidHashError:
            raise ValueError("password_hash is not an Argon2 hash (make one with hash_password)") from None
        if params.type is not argon2.Type.ID:
            raise ValueError(f"password_hash is Argon2{params.type.name.lower()}, not Argon2id")
        return v

    @model_validator(mode="after")
    def _scopes(self) -> _User:
        problem = _scope_problem(self.roles, self.department, self.crew)
        if problem:
            raise ValueError(problem)
        return self


def parse_users(raw: Any, *, source: str = "users file", departments: Iterable[str] | None = None,
                crews: Iterable[str] | None = None) -> Mapping[str, User]:
    """The users of a parsed users file (``{"users": [...]}``), by id, in file order.

    ``departments`` and ``crews``, when given (the district's ids), are the only scopes accepted.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("users"), list):
        raise UsersFileError(f"{source}: expected a mapping with a 'users' list")
    extra = sorted(set(raw) - {"users"})
    if extra:
        raise UsersFileError(f"{source}: unknown top-level key(s) {extra}; only 'users'")
    known_depts = None if departments is None else frozenset(departments)
    known_crews = None if crews is None else frozenset(crews)
    out: dict[str, User] = {}
    for n, entry in enumerate(raw["users"], 1):
        label = f"{source}: user {n}"
        if not isinstance(entry, Mapping):
            raise UsersFileError(f"{label}: expected a mapping, got {entry!r}")
        if isinstance(entry.get("id"), str) and entry["id"]:
            label += f" ({entry['id']!r})"
        try:
            m = _User.model_validate(entry)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            raise UsersFileError(f"{label}: {where + ': ' if where else ''}{msg}") from None
        if m.id in out:
            raise UsersFileError(f"{label}: id {m.id!r} is already used by an earlier user")
        if known_depts is not None and m.department is not None and m.department not in known_depts:
            raise UsersFileError(f"{label}: no department {m.department!r} in the district")
        if known_crews is not None and m.crew is not None and m.crew not in known_crews:
            raise UsersFileError(f"{label}: no crew {m.crew!r} in the district")
        out[m.id] = User(m.id, m.name, frozenset(m.roles), m.password_hash, m.name_zh, m.department, m.crew,
                         m.disabled)
    return MappingProxyType(out)


def load_users(path: Path, *, departments: Iterable[str] | None = None,
               crews: Iterable[str] | None = None) -> Mapping[str, User]:
    """Read and validate a users file (format in the module docstring)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise UsersFileError(f"{path}: cannot read it: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise UsersFileError(f"{path}: not valid YAML: {err}") from err
    return parse_users(raw, source=str(path), departments=departments, crews=crews)


# --- passwords --------------------------------------------------------------------------------------


def hash_password(plain: str, *, hasher: argon2.PasswordHasher = PASSWORD_HASHER) -> str:
    """An Argon2id hash of ``plain`` for the users file, e.g. ``"$argon2id$v=19$m=65536,t=3,p=4$..."``."""
    if not isinstance(plain, str):
        raise TypeError(f"a password is text, not {type(plain).__name__}")
    if len(plain) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_CHARS} characters (got {len(plain)})")
    if len(plain) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_CHARS} characters (got {len(plain)})")
    return hasher.hash(plain)


def verify_password(hash: str, plain: str, *, hasher: argon2.PasswordHasher = PASSWORD_HASHER) -> bool:  # noqa: A002
    """Whether ``plain`` is the password of ``hash``; a hash that is not Argon2 raises ``ValueError``."""
    if not isinstance(plain, str) or len(plain) > MAX_PASSWORD_CHARS:
        return False
    try:
        return hasher.verify(hash, plain)
    except InvalidHashError:
        raise ValueError("the stored password hash is not an Argon2 hash") from None
    except VerificationError:  # VerifyMismatchError (wrong password) is its subclass
        return False


def needs_rehash(hash: str, *, hasher: argon2.PasswordHasher = PASSWORD_HASHER) -> bool:  # noqa: A002
    """Whether ``hash`` was made with other parameters than the current ones (then store a new hash)."""
    try:
        return hasher.check_needs_rehash(hash)
    except InvalidHashError:
        raise ValueError("the stored password hash is not an Argon2 hash") from None


@functools.lru_cache(maxsize=4)
def _dummy_hash(hasher: argon2.PasswordHasher) -> str:
    """What an unknown user's password is checked against (made once per hasher, on first need)."""
    return hasher.hash(secrets.token_urlsafe(16))


def authenticate(users: Mapping[str, User], user_id: str, password: str, *,
                 hasher: argon2.PasswordHasher = PASSWORD_HASHER) -> SignIn:
    """Sign a user in by id and password, or raise ``AuthError``.

    An unknown id and a wrong password give the same answer ("bad credentials") after the same
    work (a hash is checked either way), so the answer does not tell who has an account. A
    disabled user is told so only with the right password.
    """
    user = users.get(user_id) if isinstance(user_id, str) else None
    if user is None:
        verify_password(_dummy_hash(hasher), password, hasher=hasher)
        raise AuthError("bad credentials")
    if not verify_password(user.password_hash, password, hasher=hasher):
        raise AuthError("bad credentials")
    if user.disabled:
        raise AuthError("disabled", f"user {user.id!r} is disabled")
    return SignIn(user, Principal.from_user(user), needs_rehash(user.password_hash, hasher=hasher))


# --- tokens -----------------------------------------------------------------------------------------


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes):
        raise TypeError(f"the token secret is bytes, not {type(secret).__name__}")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the token secret needs at least {MIN_SECRET_BYTES} bytes (got {len(secret)}; "
                         "RFC 7518 §3.2)")


def _check_now(now: datetime, name: str = "now") -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {now!r}")


def issue_token(user: User, *, secret: bytes, now: datetime, ttl_s: int = TOKEN_TTL_S,
                token_id: str | None = None) -> str:
    """A signed token for ``user``, valid from ``now`` (whole seconds) for ``ttl_s`` seconds."""
    _check_secret(secret)
    _check_now(now)
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TOKEN_TTL_S:
        raise ValueError(f"ttl_s must be a whole number of seconds from 1 to {MAX_TOKEN_TTL_S}, got {ttl_s!r}")
    if user.disabled:
        raise AuthError("disabled", f"user {user.id!r} is disabled")
    iat = math.floor(now.timestamp())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": user.id, "roles": [r for r in ROLES if r in user.roles],
                              "iat": iat, "nbf": iat, "exp": iat + ttl_s,
                              "jti": token_id if token_id is not None else secrets.token_hex(16)}
    if user.department is not None:
        claims["dept"] = user.department
    if user.crew is not None:
        claims["crew"] = user.crew
    return jwt.encode(claims, secret, algorithm="HS256")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def verify_token(token: str, *, secret: bytes, now: datetime, leeway_s: float = 0.0) -> Principal:
    """The principal a token names, or ``AuthError`` (malformed, bad signature, expired, not yet valid).

    ``leeway_s`` widens both ends for clocks of several replicas that differ a little.
    """
    _check_secret(secret)
    _check_now(now)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise AuthError("malformed", "not a token")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                     "require": ["iss", "sub", "iat", "nbf", "exp", "jti"]})
    except jwt.InvalidSignatureError:
        raise AuthError("bad signature") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError("bad signature", "not signed with HS256") from None
    except jwt.PyJWTError as err:
        raise AuthError("malformed", str(err)) from None
    sub, roles, dept, crew = claims["sub"], claims.get("roles"), claims.get("dept"), claims.get("crew")
    iat, nbf, exp, jti = claims["iat"], claims["nbf"], claims["exp"], claims["jti"]
    if not (isinstance(sub, str) and re.fullmatch(_ID, sub) and isinstance(jti, str) and jti
            and _is_int(iat) and _is_int(nbf) and _is_int(exp) and iat <= nbf < exp
            and exp - iat <= MAX_TOKEN_TTL_S):
        raise AuthError("malformed", "claims out of shape")
    if not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)
            and (dept is None or isinstance(dept, str)) and (crew is None or isinstance(crew, str))):
        raise AuthError("malformed", "roles or scopes out of shape")
    problem = _scope_problem(roles, dept, crew)
    if problem:
        raise AuthError("malformed", problem)
    t = now.timestamp()
    if t < nbf - leeway_s:
        raise AuthError("not yet valid", f"valid from {datetime.fromtimestamp(nbf, UTC).isoformat()}")
    if t >= exp + leeway_s:
        raise AuthError("expired", f"expired at {datetime.fromtimestamp(exp, UTC).isoformat()}")
    return Principal(sub, frozenset(roles), dept, crew, jti, datetime.fromtimestamp(iat, UTC),
                     datetime.fromtimestamp(exp, UTC))


def recheck(principal: Principal, users: Mapping[str, User]) -> Principal:
    """The principal with its user's current roles and scopes; ``AuthError("revoked")`` if the user is
    gone or disabled since the token was issued."""
    user = users.get(principal.user_id)
    if user is None or user.disabled:
        raise AuthError("revoked", f"user {principal.user_id!r} is {'disabled' if user else 'no longer known'}")
    return Principal(user.id, user.roles, user.department, user.crew, principal.token_id, principal.issued_at,
                     principal.expires_at)


# --- permissions ----------------------------------------------------------------------------------


def _rule_of(action: str) -> Rule:
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def _grant_holds(principal: Principal, role: str, grant: Grant, department: str | None, crew: str | None) -> bool:
    if grant != OWN:
        return True
    if role == "department":
        return department is not None and principal.department == department
    return crew is not None and principal.crew == crew  # role == "crew"


def allowed(principal: Principal, action: str, *, department: str | None = None, crew: str | None = None) -> bool:
    """Whether ``principal`` may do ``action`` on a thing of ``department`` / ``crew``.

    An ``own`` grant needs the thing's scope: without it the answer is no. E.g. a traffic
    department member: ``allowed(p, "task.ack", department="traffic")`` is True, with
    ``department="fire"`` False. An unknown action raises ``ValueError`` (a typo must not pass).
    """
    rule = _rule_of(action)
    return any(_grant_holds(principal, role, rule.grants[role], department, crew)
               for role in principal.roles if role in rule.grants)


# --- what a reader sees -----------------------------------------------------------------------------


def _is_phone_key(key: Any) -> bool:
    return isinstance(key, str) and (key.lower() == "phone" or key.lower().endswith("_phone"))


def redact(data: Any) -> Any:
    """A copy of ``data`` with every value under a key named ``phone`` (or ``..._phone``) set to None,
    at any depth: ``redact({"head": {"phone": "+86 23"}})`` → ``{"head": {"phone": None}}``."""
    if isinstance(data, Mapping):
        return {k: None if _is_phone_key(k) else redact(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(v) for v in data]
    return data


def _shares(task: Mapping[str, Any], key: str) -> bool:
    """Whether a task's playbook shares ``key`` with its department (no ``share`` list: everything)."""
    share = task.get("share")
    return not isinstance(share, list) or not share or key in share


def incident_public_view(data: Mapping[str, Any], *, department: str | None = None) -> dict[str, Any] | None:
    """What a department member sees of an incident: its public fields and only the department's own tasks;
    None when no task of the department shares the incident (the playbook's ``share``), e.g.
    ``{"tasks": [{"department": "fire", "share": ["roads"]}]}`` is not shown to fire."""
    tasks = data.get("tasks")
    own = [t for t in tasks if isinstance(t, Mapping) and department is not None and t.get("department") == department
           ] if isinstance(tasks, list) else []
    if not any(_shares(t, "incident") for t in own):
        return None
    out = {k: data[k] for k in INCIDENT_PUBLIC_KEYS if k in data}
    out["tasks"] = [department_task_view(t) for t in own]
    return out


def department_task_view(task: Mapping[str, Any]) -> dict[str, Any]:
    """A department's own task as its members see it: of what it needs, only what the playbook shares."""
    out = dict(task)
    needs = task.get("needs")
    if isinstance(needs, Mapping):
        out["needs"] = {k: v for k, v in needs.items() if _shares(task, k)}
    return out


def _scope_of(action: str, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The department and crew a thing belongs to (a crew's own record names the crew by ``id``)."""
    department = data.get("department")
    crew = data.get("crew")
    if crew is None and action == "crew.read":
        crew = data.get("id")
    return (department if isinstance(department, str) else None, crew if isinstance(crew, str) else None)


# How much each kind of view shows; a principal with several roles gets the most revealing one.
_FULL, _REDACTED, _PUBLIC = 3, 2, 1


def _role_view(principal: Principal, role: str, grant: Grant, action: str,
               data: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    if grant == OWN:
        department, crew = _scope_of(action, data)
        if not _grant_holds(principal, role, grant, department, crew):
            return None
        if role == "department" and action == "task.read":
            return _FULL, department_task_view(data)
        return _FULL, dict(data)
    if grant == PUBLIC:  # only incidents have a public view (the table's builder checks it)
        shown = incident_public_view(data, department=principal.department)
        return None if shown is None else (_PUBLIC, shown)
    if role in REDACTED_ROLES:
        return _REDACTED, redact(data)
    return _FULL, dict(data)


def _best_view(principal: Principal, action: str, data: Mapping[str, Any],
               roles: Iterable[str]) -> dict[str, Any] | None:
    rule = _rule_of(action)
    views = [v for role in roles if role in rule.grants
             if (v := _role_view(principal, role, rule.grants[role], action, data)) is not None]
    return max(views, key=lambda v: v[0])[1] if views else None


def view(principal: Principal, action: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``data`` (one thing read through a read ``action``) as ``principal`` may see it, or None.

    Scopes come from the thing itself (``department``, ``crew``; a crew's record by ``id``). A
    viewer gets it redacted, a department member an incident's public view.
    """
    return _best_view(principal, action, data, principal.roles)


def event_action(kind: str) -> str:
    """The read action that shows events of ``kind``: ``"task.acknowledged"`` → ``"task.read"``."""
    return EVENT_ACTIONS.get(kind.partition(".")[0], "events.other")


def event_view(principal: Principal, kind: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """An event's data as ``principal`` may see it on the WebSocket or the event log, or None.

    Department members get only their department's task events and incidents (the public view);
    crew members only their crew's task and crew events; viewers everything they may read, with
    phone numbers blanked; the bureau's staff what their read actions cover.
    """
    if kind in _ALWAYS_SHOWN:
        return dict(data)
    action = event_action(kind)
    roles = [r for r in principal.roles if r not in _SCOPED_EVENT_ACTIONS or action in _SCOPED_EVENT_ACTIONS[r]]
    return _best_view(principal, action, data, roles)


def visible(principal: Principal, kind: str, data: Mapping[str, Any]) -> bool:
    """Whether ``principal`` sees an event of ``kind`` at all (its data then goes through ``event_view``)."""
    return event_view(principal, kind, data) is not None


# --- audit ----------------------------------------------------------------------------------------

_SECRET_KEYS = frozenset({"password", "password_hash", "token", "secret"})


def _scrub(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: "(redacted)" if isinstance(k, str) and k.lower() in _SECRET_KEYS else _scrub(v)
                for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_scrub(v) for v in data]
    return data


def audit_record(principal: Principal, action: str, *, at: datetime, remote_addr: str | None, target: str,
                 changes: Mapping[str, Any]) -> dict[str, Any]:
    """One audit-log entry for a human action: who, when (``at``, from the caller's clock), from where,
    on what, and what changed (e.g. ``{"status": ["open", "closed"]}``). Passwords, hashes, tokens
    and secrets in ``changes`` are written as "(redacted)"; ``changes`` must be plain JSON.
    """
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown action {action!r} for the audit log")
    _check_now(at, "at")
    if not isinstance(target, str) or not target:
        raise ValueError(f"the audit target must name the thing acted on, got {target!r}")
    if remote_addr is not None and (not isinstance(remote_addr, str) or len(remote_addr) > 255):
        raise ValueError(f"remote_addr must be an address (text) or None, got {remote_addr!r}")
    if not isinstance(changes, Mapping):
        raise ValueError(f"changes must be a mapping, got {type(changes).__name__}")
    try:
        plain = json.loads(json.dumps(_scrub(changes), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"changes must be plain JSON: {err}") from None
    return {"at": at.astimezone(UTC).isoformat(), "user": principal.user_id,
            "roles": [r for r in ROLES if r in principal.roles], "department": principal.department,
            "crew": principal.crew, "token_id": principal.token_id or None, "action": action,
            "remote_addr": remote_addr, "target": target, "changes": plain}
