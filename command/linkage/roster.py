"""Department duty rosters: who is on duty, their deputy and the head at a given time. Pure.

Each linked department (emergency bureau, fire, traffic, health, ecology, city, police, bigdata,
township offices) names its head, its members, a weekly roster and the channels its tasks go by.
The ``departments`` section of the district's ``departments.yaml``::

    departments:
      - id: traffic                       # letters, digits, '-' and '_'; unique
        name: Transport Bureau / Traffic Police
        name_zh: 区交通局 / 公安交巡警        # optional
        timezone: Asia/Shanghai           # optional; default: the district's (load_departments)
        head: {id: traffic-head, name: Chen Gang, name_zh: 陈刚, phone: "+86 23 6782 0000"}
        members:                          # optional; ids unique, the head's included
          - {id: traffic-wang, name: Wang Lei, name_zh: 王磊, phone: "+86 ...", roles: [duty]}
        roster:                           # optional; local wall-clock time in the timezone
          - {days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30", on_duty: traffic-wang,
             deputy: traffic-li}
          - {days: all, from: "17:30", to: "08:30", on_duty: traffic-zhou, deputy: traffic-li}
        channels:                         # optional; default {mqtt: true}
          mqtt: true
          webhook: {url: "https://…", secret_env: YINGJI_WEBHOOK_TRAFFIC}   # secret_env optional

People: ``id``, ``name`` (required), ``name_zh``, ``phone``, ``roles`` (free words, e.g. duty).

Shifts: ``days`` is ``all`` or a list of mon, tue, wed, thu, fri, sat, sun; ``from`` and ``to``
are "HH:MM" (quote them: YAML reads an unquoted 17:30 as the number 1050), ``to`` may be
"24:00". A shift whose ``to`` is not after its ``from`` crosses midnight and belongs to the day
it starts (Sunday 17:30–08:30 covers Sunday night into Monday morning); ``from`` equal to ``to``
is a 24-hour shift. ``from`` is inside the shift, ``to`` is not (17:30 belongs to the shift that
starts then). ``on_duty`` and ``deputy`` name the head or a member; without a deputy, the head
stands in as deputy. Shifts must not overlap anywhere in the week.

When no shift covers a time, the head is on duty (and deputy): ``Duty.fallback`` says so, so
the service can log that the roster has a gap.

Anything wrong raises ``RosterError`` naming the department and the entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

__all__ = [
    "DAYS",
    "DISTRICT_TIMEZONE",
    "ROLES",
    "Channels",
    "Department",
    "Duty",
    "Person",
    "RosterError",
    "Shift",
    "Webhook",
    "load_departments",
    "people_for",
    "who_is_on_duty",
]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DISTRICT_TIMEZONE = "Asia/Shanghai"
_DAY_MIN = 1440
_WEEK_MIN = 7 * _DAY_MIN


class RosterError(Exception):
    """A departments section that cannot be used; the message names the department and the entry."""


# --- plain data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    name_zh: str = ""
    phone: str = ""
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Shift:
    """One roster entry: on ``days`` from ``start_min`` for ``duration_min`` minutes (local time)."""

    days: tuple[int, ...]  # 0 = Monday … 6 = Sunday, the days the shift starts on
    start_min: int  # minutes after local midnight
    duration_min: int  # 1 … 1440; start + duration past 1440 crosses midnight
    on_duty: str
    deputy: str | None
    entry: int  # 1-based position in the roster, for messages

    def describe(self) -> str:
        """``mon,tue 17:30–08:30``: the entry as a person reads it."""
        days = "all" if len(self.days) == 7 else ",".join(DAYS[d] for d in self.days)
        return f"{days} {_hhmm(self.start_min)}–{_hhmm((self.start_min + self.duration_min) % _DAY_MIN)}"

    def spans(self) -> list[tuple[int, int]]:
        """The minutes of the week ``[start, end)`` it covers, Monday 00:00 = 0; split at the week's end."""
        out: list[tuple[int, int]] = []
        for day in self.days:
            start = day * _DAY_MIN + self.start_min
            end = start + self.duration_min
            if end <= _WEEK_MIN:
                out.append((start, end))
            else:  # Sunday night into Monday morning
                out += [(start, _WEEK_MIN), (0, end - _WEEK_MIN)]
        return out


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret_env: str | None = None  # the environment variable holding the signing secret


@dataclass(frozen=True, slots=True)
class Channels:
    mqtt: bool = True
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: str
    name_zh: str
    head: Person
    members: tuple[Person, ...] = ()
    roster: tuple[Shift, ...] = ()
    channels: Channels = Channels()
    timezone: str = DISTRICT_TIMEZONE

    def person(self, person_id: str) -> Person:
        """The head or the member with this id."""
        for p in (self.head, *self.members):
            if p.id == person_id:
                return p
        raise RosterError(f"department {self.id!r}: no head or member {person_id!r}")


@dataclass(frozen=True, slots=True)
class Duty:
    """Who answers for a department at one time."""

    on_duty: Person
    deputy: Person  # the shift's deputy, or the head when the shift names none
    head: Person
    fallback: bool = False  # no shift covers the time: the head is on duty
    shift: Shift | None = None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- duty ------------------------------------------------------------------------------------------


def who_is_on_duty(dept: Department, at: datetime) -> Duty:
    """Who is on duty for ``dept`` at ``at`` (aware; read in the department's timezone).

    E.g. Monday 2025-07-07 02:00 UTC is 10:00 in Asia/Shanghai: the weekday day shift's person.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"who_is_on_duty needs a timezone-aware datetime, got {at!r}")
    local = at.astimezone(ZoneInfo(dept.timezone))
    minute = local.weekday() * _DAY_MIN + local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    for shift in dept.roster:
        if any(start <= minute < end for start, end in shift.spans()):
            deputy = dept.person(shift.deputy) if shift.deputy else dept.head
            return Duty(dept.person(shift.on_duty), deputy, dept.head, False, shift)
    return Duty(dept.head, dept.head, dept.head, True, None)


ROLES = ("on_duty", "deputy", "head", "bureau_duty_chief")


def people_for(role: str, dept: Department, at: datetime, *, bureau: Department) -> tuple[Person, ...]:
    """The people a recipient role of an escalation step means for ``dept`` at ``at``.

    ``bureau_duty_chief`` is whoever is on duty at ``bureau`` (the emergency bureau's department).
    ``on_duty`` is the person on duty now; a resend goes to the person the task was first sent to,
    which the service keeps with the task.
    """
    if role == "on_duty":
        return (who_is_on_duty(dept, at).on_duty,)
    if role == "deputy":
        return (who_is_on_duty(dept, at).deputy,)
    if role == "head":
        return (dept.head,)
    if role == "bureau_duty_chief":
        return (who_is_on_duty(bureau, at).on_duty,)
    raise ValueError(f"unknown recipient role {role!r}; one of {', '.join(ROLES)}")


# --- schema (pydantic, at the boundary) ------------------------------------------------------------

_ID = r"^[A-Za-z0-9_-]+$"


class _Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    name_zh: str = ""
    phone: str = ""
    roles: list[str] = []


def _minutes(value: Any, *, end: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        hint = (f" (YAML reads an unquoted {value // 60}:{value % 60:02d} as the number {value}: quote it)"
                if isinstance(value, int) and 0 < value < _DAY_MIN else "")
        raise ValueError(f"time {value!r} is not a \"HH:MM\" string{hint}")
    hh, sep, mm = value.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and 1 <= len(hh) <= 2 and len(mm) == 2):
        raise ValueError(f"time {value!r} is not HH:MM")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) > 59 or minutes > _DAY_MIN or (minutes == _DAY_MIN and not end):
        raise ValueError(f"time {value!r} is out of range (00:00–23:59{', or 24:00' if end else ''})")
    return minutes


class _Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: tuple[int, ...]
    from_: int = Field(alias="from")
    to: int
    on_duty: str = Field(min_length=1)
    deputy: str | None = None

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> tuple[int, ...]:
        if v == "all":
            return tuple(range(7))
        if isinstance(v, str) or not isinstance(v, list) or not v:
            raise ValueError(f"days {v!r}: use 'all' or a list of {', '.join(DAYS)}")
        bad = [d for d in v if d not in DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; days are {', '.join(DAYS)} or 'all'")
        twice = sorted({d for d in v if v.count(d) > 1}, key=DAYS.index)
        if twice:
            raise ValueError(f"day(s) {twice} listed twice")
        return tuple(sorted(DAYS.index(d) for d in v))

    @field_validator("from_", mode="before")
    @classmethod
    def _from(cls, v: Any) -> int:
        return _minutes(v, end=False)

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, v: Any) -> int:
        return _minutes(v, end=True)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    secret_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")


class _Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mqtt: bool = True
    webhook: _Webhook | None = None


class _Department(BaseModel):
    model_config = ConfigDict(extra="ignore")  # departments.yaml may carry more about a department
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    name_zh: str = ""
    timezone: str | None = None
    head: _Person
    members: list[_Person] = []
    roster: list[_Shift] = []
    channels: _Channels = _Channels()


def _where(loc: Sequence[int | str]) -> str:
    """``('roster', 1, 'from')`` → ``roster entry 2, from`` (entries counted from 1, as a reader does)."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        key = loc[i]
        if key in ("roster", "members") and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            parts.append(f"{'roster entry' if key == 'roster' else 'member'} {int(loc[i + 1]) + 1}")
            i += 2
            continue
        parts.append(str(key))
        i += 1
    return ", ".join(parts)


def _person(p: _Person) -> Person:
    return Person(p.id, p.name, p.name_zh, p.phone, tuple(p.roles))


def _department(raw: Any, position: int, timezone: str) -> Department:
    if not isinstance(raw, Mapping):
        raise RosterError(f"department {position}: expected a mapping, got {raw!r}")
    label = f"department {raw['id']!r}" if raw.get("id") else f"department {position}"
    try:
        m = _Department.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = _where(e["loc"])
        raise RosterError(f"{label}: {where + ': ' if where else ''}{msg}") from err
    label = f"department {m.id!r}"

    seen: dict[str, str] = {m.head.id: "the head"}
    for n, p in enumerate(m.members, 1):
        if p.id in seen:
            raise RosterError(f"{label}: member {n}: id {p.id!r} is already used by {seen[p.id]}")
        seen[p.id] = f"member {n}"

    tz = m.timezone or timezone
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise RosterError(f"{label}: unknown timezone {tz!r}") from err

    shifts: list[Shift] = []
    for n, s in enumerate(m.roster, 1):
        for role, pid in (("on_duty", s.on_duty), ("deputy", s.deputy)):
            if pid is not None and pid not in seen:
                raise RosterError(f"{label}: roster entry {n}: {role} {pid!r} is not the head or a member")
        if s.deputy == s.on_duty:
            raise RosterError(f"{label}: roster entry {n}: the deputy {s.deputy!r} is the person on duty")
        duration = (s.to - s.from_) % _DAY_MIN or _DAY_MIN
        shifts.append(Shift(s.days, s.from_, duration, s.on_duty, s.deputy, n))
    _check_overlaps(label, shifts)

    webhook = m.channels.webhook
    channels = Channels(m.channels.mqtt, Webhook(str(webhook.url), webhook.secret_env) if webhook else None)
    return Department(m.id, m.name, m.name_zh, _person(m.head), tuple(_person(p) for p in m.members),
                      tuple(shifts), channels, tz)


def _check_overlaps(label: str, shifts: Sequence[Shift]) -> None:
    spans = sorted((start, end, s) for s in shifts for start, end in s.spans())
    latest: tuple[int, Shift] | None = None  # the span reaching furthest so far: its end and its shift
    for start, end, shift in spans:
        if latest is not None and start < latest[0]:
            other = latest[1]
            raise RosterError(f"{label}: roster entry {max(shift.entry, other.entry)} "
                              f"({(shift if shift.entry > other.entry else other).describe()}) overlaps roster entry "
                              f"{min(shift.entry, other.entry)} "
                              f"({(other if shift.entry > other.entry else shift).describe()}) on "
                              f"{DAYS[start // _DAY_MIN]} at {_hhmm(start % _DAY_MIN)}")
        if latest is None or end > latest[0]:
            latest = (end, shift)


def load_departments(mapping: Mapping[str, Any], *, timezone: str = DISTRICT_TIMEZONE) -> dict[str, Department]:
    """The departments of a ``departments.yaml`` mapping, by id, in file order.

    ``timezone`` is the district's, used by departments that do not name their own.
    """
    if not isinstance(mapping, Mapping) or not isinstance(mapping.get("departments"), list):
        raise RosterError("departments: expected a mapping with a 'departments' list")
    out: dict[str, Department] = {}
    for position, raw in enumerate(mapping["departments"], 1):
        dept = _department(raw, position, timezone)
        if dept.id in out:
            raise RosterError(f"department {dept.id!r}: id used twice (department {position} repeats it)")
        out[dept.id] = dept
    return out
