"""Linkage playbooks: which departments get which task for an incident, and by when.

Pure: a playbook is data from the district folder (``playbooks.yaml``); this module validates it
(``load_playbooks`` / ``parse_playbooks`` → ``Playbooks``), selects from it and fills it in
(``expand``): tasks by incident kind and warning level, with deadlines, escalation, what each
department needs from the incident's geometry (``command.linkage.context``) and what it may see.

A versioned playbook file:

    version: "2026.1"                 # recorded on every task expanded from it
    playbooks:
      - kind: flood                   # flood | rainstorm | landslide | fire | chemical_leak | default
        from_level: blue              # applies at this level and above (blue < yellow < orange < red)
        tasks:
          - department: traffic
            from_level: yellow        # optional: a task may start above its entry's level
            task: "Close the roads crossing the flood at {place}: {roads}"
            task_zh: "封闭{place_zh}淹没区内道路：{roads_zh}"
            needs: [roads, bridges]   # linkage context attached to the task (context.NEEDS_KEYS)
            ack_within_min: 10        # deadline to acknowledge
            complete_within_min: 120  # deadline to complete
            escalation: [resend, deputy, head_and_bureau]   # optional; this is the default chain
            share: [incident, roads]  # optional; default: the incident and what the task needs

Every entry of the kind whose level applies contributes its tasks; a kind without entries falls
back to ``default``. Texts may use ``context.TEMPLATE_KEYS`` (checked when the file is loaded).

Each task has a stable key, ``"{department}:{index}"``, the index being its position among all
the kind's tasks in the file. When an incident's level RISES it is expanded again and
``new_tasks`` keeps only the tasks whose from_level is now met: tasks already issued are never
issued twice, and a level that falls adds nothing. Keys are stable within one version of the
file, which is why each task records the version.

The pseudo-department ``townships`` means every township or street office the hazard touches:
one task each, addressed to the township's id (key ``"{township_id}:{index}"``); its texts may
also use ``{township}`` and ``{township_zh}``. Likewise ``villages``: every village in the hazard or
within ``context.VILLAGE_NEAR_M`` of it (``{village}``, ``{village_zh}``). A local recipient's task is
its warning: it counts as received only when someone there acknowledges it (叫应, call-back).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from command.linkage.context import NEEDS_KEYS, TEMPLATE_KEYS
from command.risk.rules import Level

__all__ = [
    "DEFAULT_ESCALATION",
    "DEFAULT_KIND",
    "DEPARTMENT_IDS",
    "ESCALATION_STEPS",
    "INCIDENT_KINDS",
    "SHARE_KEYS",
    "TOWNSHIPS",
    "TOWNSHIP_TEMPLATE_KEYS",
    "VILLAGES",
    "VILLAGE_TEMPLATE_KEYS",
    "DeptTaskSpec",
    "PlaybookError",
    "PlaybookTask",
    "Playbooks",
    "expand",
    "load_playbooks",
    "new_tasks",
    "parse_playbooks",
    "response_advice",
]


class PlaybookError(Exception):
    """The playbook data is unusable."""


# --- versioned playbooks -------------------------------------------------------------------------

INCIDENT_KINDS: tuple[str, ...] = ("flood", "rainstorm", "landslide", "fire", "chemical_leak")
DEFAULT_KIND = "default"
TOWNSHIPS = "townships"  # pseudo-department: every township / street office the hazard touches
VILLAGES = "villages"  # pseudo-department: every village in or next to the hazard (its monitor answers: 叫应)
LOCAL = frozenset({TOWNSHIPS, VILLAGES})
# Emergency bureau, fire & rescue, traffic, health, ecology & environment, city management, police,
# big data; and, where a plan calls for them, water resources, natural resources, meteorology.
DEPARTMENT_IDS: frozenset[str] = frozenset({"emergency", "fire", "traffic", "health", "ecology", "city", "police",
                                            "bigdata", "water", "natural", "meteo"})
# Who is told when a task is not acknowledged in time: the task is sent again, then the
# department's deputy head, its head, the emergency bureau, or the head and the bureau together.
ESCALATION_STEPS: frozenset[str] = frozenset({"resend", "deputy", "head", "bureau", "head_and_bureau"})
DEFAULT_ESCALATION: tuple[str, ...] = ("resend", "deputy", "head_and_bureau")
# What of an incident a department may see: the incident itself (title, level, place, status)
# and any part of the linkage context.
SHARE_KEYS: frozenset[str] = frozenset({"incident"}) | NEEDS_KEYS
TOWNSHIP_TEMPLATE_KEYS: frozenset[str] = frozenset({"township", "township_zh"})
VILLAGE_TEMPLATE_KEYS: frozenset[str] = frozenset({"village", "village_zh"})

_LEVELS: Mapping[str, Level] = MappingProxyType({lv.colour: lv for lv in Level if lv is not Level.NONE})
_LevelName = Literal["blue", "yellow", "orange", "red"]


@dataclass(frozen=True, slots=True)
class PlaybookTask:
    """One validated task of a playbook file (texts still templates)."""

    kind: str
    index: int  # position among the kind's tasks in the file: the stable part of the key
    department: str  # a department id or TOWNSHIPS
    from_level: Level
    task: str
    task_zh: str
    needs: tuple[str, ...]
    ack_within_s: int
    complete_within_s: int
    escalation: tuple[str, ...]
    share: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Playbooks:
    """A validated playbook file: its version and its tasks by incident kind, in file order."""

    version: str
    tasks: Mapping[str, tuple[PlaybookTask, ...]]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.tasks)


@dataclass(frozen=True, slots=True)
class DeptTaskSpec:
    """A task to send to one department (or township) for one incident, filled in."""

    key: str  # "{department}:{index}", stable across re-expansion within one playbook version
    department: str  # department id; a township's id for a township task
    text: str
    text_zh: str
    ack_within_s: int
    complete_within_s: int
    escalation: tuple[str, ...]
    needs: Mapping[str, Any]  # the linkage context payloads the task named (JSON-ready, read-only by convention)
    share: tuple[str, ...]
    version: str  # the playbook version the task came from
    kind: str  # the playbook kind used: the incident's, or "default" on fallback
    from_level: Level
    township: bool = False


class _TaskModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: str = Field(min_length=1)
    from_level: _LevelName | None = None
    task: str = Field(min_length=1)
    task_zh: str = Field(min_length=1)
    needs: list[str] = Field(default_factory=list)
    ack_within_min: float = Field(strict=True)
    complete_within_min: float = Field(strict=True)
    escalation: list[str] | None = None
    share: list[str] | None = None


class _EntryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1)
    from_level: _LevelName
    tasks: list[Any] = Field(min_length=1)


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(strict=True, min_length=1)
    playbooks: list[Any] = Field(min_length=1)


def load_playbooks(path: str | Path, *, departments: Collection[str] = DEPARTMENT_IDS) -> Playbooks:
    """Read and validate a playbook YAML file; ``PlaybookError`` names the file and the entry."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PlaybookError(f"{p}: cannot read YAML: {err}") from err
    try:
        return parse_playbooks(data, departments=departments)
    except PlaybookError as err:
        raise PlaybookError(f"{p}: {err}") from None


def parse_playbooks(data: Any, *, departments: Collection[str] = DEPARTMENT_IDS) -> Playbooks:
    """Validate an already parsed playbook file; ``PlaybookError`` names the entry (kind, index, department).

    ``departments`` are the department ids tasks may name (besides ``townships``).
    """
    if not isinstance(data, Mapping):
        raise PlaybookError("a playbook file must be a mapping with 'version' and 'playbooks'")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise PlaybookError(f"version must be a quoted string such as \"2026.1\", got {version!r}")
    top = _validate(_FileModel, data, "file")
    tasks: dict[str, list[PlaybookTask]] = {}
    for i, raw in enumerate(top.playbooks):
        if not isinstance(raw, Mapping):
            raise PlaybookError(f"playbooks[{i}]: an entry must be a mapping with kind, from_level and tasks, "
                                f"got {raw!r}")
        entry = _validate(_EntryModel, raw, f"playbooks[{i}]")
        where = f"playbooks[{i}] (kind {entry.kind!r}, from {entry.from_level})"
        if entry.kind not in INCIDENT_KINDS and entry.kind != DEFAULT_KIND:
            raise PlaybookError(f"{where}: unknown incident kind {entry.kind!r}; "
                                f"known: {', '.join(INCIDENT_KINDS + (DEFAULT_KIND,))}")
        of_kind = tasks.setdefault(entry.kind, [])
        for j, raw_task in enumerate(entry.tasks):
            dept = raw_task.get("department") if isinstance(raw_task, Mapping) else None
            at = f"{where}, task {j} (department {dept!r})"
            if not isinstance(raw_task, Mapping):
                raise PlaybookError(f"{at}: a task must be a mapping, got {raw_task!r}")
            model = _validate(_TaskModel, raw_task, at)
            of_kind.append(_task(model, kind=entry.kind, index=len(of_kind), entry_level=_LEVELS[entry.from_level],
                                 departments=departments, where=at))
    return Playbooks(str(top.version), MappingProxyType({k: tuple(v) for k, v in tasks.items()}))


def expand(playbooks: Playbooks, *, kind: str, level: Level | int | str, departments: Collection[str],
           context: Mapping[str, Any], townships: Iterable[Any] = (), villages: Iterable[Any] = (),
           linkage: Mapping[str, Any] | None = None) -> list[DeptTaskSpec]:
    """The tasks for an incident of ``kind`` at ``level``, in file order, texts filled in.

    ``departments``: the department ids the district has (a task for another raises).
    ``context``: the template values (``command.linkage.context.template_context``).
    ``townships``: the townships the hazard touches, as ``linkage_context(...)["townships"]``
    (mappings, or objects, with ``id``, ``name``, ``name_zh``) — one task each for ``townships``;
    ``villages`` likewise (``linkage_context(...)["villages"]``) for ``villages``.
    ``linkage``: the ``linkage_context`` result, from which each task's ``needs`` are taken.
    """
    lv = _as_level(level)
    used = kind if kind in playbooks.tasks else DEFAULT_KIND
    if used not in playbooks.tasks:
        raise PlaybookError(f"playbook version {playbooks.version}: no entry for kind {kind!r} and no "
                            f"{DEFAULT_KIND!r} entry")
    recipients = [_township(t) for t in townships]
    village_recipients = [_township(v) for v in villages]
    out: list[DeptTaskSpec] = []
    for t in playbooks.tasks[used]:
        if t.from_level > lv:
            continue
        where = f"playbook version {playbooks.version}, kind {used!r}, task {t.index} (department {t.department!r})"
        needs = _needs(t, linkage, where)
        if t.department == TOWNSHIPS:
            for tid, name, name_zh in recipients:
                values = {**context, "township": name, "township_zh": name_zh}
                out.append(_fill(t, playbooks.version, f"{tid}:{t.index}", tid, values, needs, where, township=True))
            continue
        if t.department == VILLAGES:
            for vid, name, name_zh in village_recipients:
                values = {**context, "village": name, "village_zh": name_zh}
                out.append(_fill(t, playbooks.version, f"{vid}:{t.index}", vid, values, needs, where, township=True))
            continue
        if t.department not in departments:
            raise PlaybookError(f"{where}: department {t.department!r} is not among the district's departments "
                                f"({', '.join(sorted(departments))})")
        out.append(_fill(t, playbooks.version, f"{t.department}:{t.index}", t.department, context, needs, where))
    return out


def new_tasks(previous_keys: Iterable[str], specs: Iterable[DeptTaskSpec]) -> list[DeptTaskSpec]:
    """The tasks of ``specs`` not issued before (by key): what a level rise adds."""
    issued = set(previous_keys)
    return [s for s in specs if s.key not in issued]


# --- response advice ---------------------------------------------------------------------------------
# The four-level scheme: the State Council's National Overall Emergency Plan for Public Emergencies
# (国家突发公共事件总体应急预案, 2006) grades events I (特别重大) .. IV (一般) and issues early warnings
# in four colours, red, orange, yellow, blue; the National Flood Control and Drought Relief Emergency
# Plan (国家防汛抗旱应急预案, State Flood Control and Drought Relief Headquarters, revised 2022) has four
# emergency response levels I .. IV. In the national plans'
# practice the response level follows the warning level: blue → IV, yellow → III, orange → II,
# red → I (``Level.response``). This is advice only: declaring a response is a human decision.

_KIND_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "flood": ("flood", "洪水"), "rainstorm": ("rainstorm", "暴雨"), "landslide": ("landslide", "滑坡"),
    "fire": ("fire", "火灾"), "chemical_leak": ("chemical leak", "危化品泄漏"),
})


def response_advice(kind: str, level: Level | int | str) -> tuple[str, str, str]:
    """The emergency response level advised for a warning level: (``"IV"``..``"I"``, reason, reason_zh).

    >>> response_advice("flood", "orange")[0]
    'II'
    """
    if kind not in _KIND_NAMES:
        raise ValueError(f"unknown incident kind {kind!r}; known: {', '.join(INCIDENT_KINDS)}")
    lv = _as_level(level)
    name, name_zh = _KIND_NAMES[kind]
    if lv is Level.NONE:
        return ("", f"No {name} warning level: no emergency response advised.",
                f"未达{name_zh}预警级别：不建议启动应急响应。")
    reason = (f"{lv.colour.capitalize()} {name} warning: level {lv.response} emergency response advised "
              f"(the response follows the warning level); declaring it is the commander's decision.")
    reason_zh = (f"{lv.colour_zh}{name_zh}预警：建议启动{lv.response_zh}应急响应（响应级别与预警级别对应）；"
                 f"是否启动由指挥长决定。")
    return lv.response, reason, reason_zh


# --- pieces -------------------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors())
        raise PlaybookError(f"{where}: {problems}") from None


def _task(m: _TaskModel, *, kind: str, index: int, entry_level: Level, departments: Collection[str],
          where: str) -> PlaybookTask:
    if m.department not in LOCAL and m.department not in departments:
        raise PlaybookError(f"{where}: unknown department {m.department!r}; "
                            f"known: {', '.join(sorted(departments))}, {TOWNSHIPS}, {VILLAGES}")
    level = entry_level
    if m.from_level is not None:
        level = _LEVELS[m.from_level]
        if level < entry_level:
            raise PlaybookError(f"{where}: from_level {m.from_level} is below its entry's {entry_level.colour}")
    unknown = sorted(set(m.needs) - NEEDS_KEYS)
    if unknown:
        raise PlaybookError(f"{where}: unknown needs key(s) {unknown}; known: {', '.join(sorted(NEEDS_KEYS))}")
    allowed = TEMPLATE_KEYS | {TOWNSHIPS: TOWNSHIP_TEMPLATE_KEYS, VILLAGES: VILLAGE_TEMPLATE_KEYS}.get(
        m.department, frozenset())
    for field, text in (("task", m.task), ("task_zh", m.task_zh)):
        problem = _template_problem(text, allowed)
        if problem:
            raise PlaybookError(f"{where}: {field}: {problem}")
    ack_s = _deadline_s(m.ack_within_min, "ack_within_min", where)
    complete_s = _deadline_s(m.complete_within_min, "complete_within_min", where)
    if complete_s < ack_s:
        raise PlaybookError(f"{where}: complete_within_min {m.complete_within_min:g} is before "
                            f"ack_within_min {m.ack_within_min:g}")
    if m.escalation is None:
        escalation = DEFAULT_ESCALATION
    else:
        if not m.escalation:
            raise PlaybookError(f"{where}: escalation is empty; give at least one step or leave it out "
                                f"for the default {list(DEFAULT_ESCALATION)}")
        bad = sorted(set(m.escalation) - ESCALATION_STEPS)
        if bad:
            raise PlaybookError(f"{where}: unknown escalation step(s) {bad}; known: "
                                f"{', '.join(sorted(ESCALATION_STEPS))}")
        escalation = tuple(m.escalation)
    needs = tuple(dict.fromkeys(m.needs))
    if m.share is None:
        share = ("incident", *needs)
    else:
        bad = sorted(set(m.share) - SHARE_KEYS)
        if bad:
            raise PlaybookError(f"{where}: unknown share key(s) {bad}; known: {', '.join(sorted(SHARE_KEYS))}")
        share = tuple(dict.fromkeys(m.share))
    return PlaybookTask(kind, index, m.department, level, m.task, m.task_zh, needs, ack_s, complete_s,
                        escalation, share)


def _deadline_s(minutes: float, name: str, where: str) -> int:
    seconds = round(minutes * 60) if math.isfinite(minutes) else 0
    if not (math.isfinite(minutes) and minutes > 0 and seconds >= 1):
        raise PlaybookError(f"{where}: {name} must be a positive number of minutes, got {minutes:g}")
    return seconds


_SAMPLE: Mapping[str, Any] = MappingProxyType({**{k: "x" for k in TEMPLATE_KEYS | TOWNSHIP_TEMPLATE_KEYS
                                                    | VILLAGE_TEMPLATE_KEYS},
                                               "population": 0})


def _template_problem(text: str, allowed: frozenset[str]) -> str | None:
    """Why ``text`` is not a usable template over ``allowed`` keys, or None."""
    try:
        fields = [f for _, f, _, _ in _FORMATTER.parse(text) if f is not None]
    except ValueError as err:
        return f"malformed template ({err}); write a literal brace as {{{{ or }}}}"
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            return "positional placeholder {} is not allowed; name a key"
        if name != field:
            return f"placeholder {{{field}}} may not use attributes or indexes"
        if name not in allowed:
            return f"unknown placeholder {{{name}}}; known: {', '.join(sorted(allowed))}"
    try:
        text.format_map(_SAMPLE)  # a bad format spec or conversion shows now, not during an incident
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return f"cannot be filled ({err})"
    return None


def _as_level(level: Level | int | str) -> Level:
    if isinstance(level, str) and level == "none":
        raise ValueError(f"unknown level {level!r}; known: {', '.join(_LEVELS)}")
    return Level.of(level)


def _township(t: Any) -> tuple[str, str, str]:
    get = t.get if isinstance(t, Mapping) else (lambda k: getattr(t, k, None))
    tid, name, name_zh = get("id"), get("name"), get("name_zh")
    if not tid or not name:
        raise ValueError(f"a township needs an id and a name, got {t!r}")
    return str(tid), str(name), str(name_zh or name)


def _needs(t: PlaybookTask, linkage: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    if not t.needs:
        return {}
    if linkage is None:
        raise PlaybookError(f"{where}: the task needs {list(t.needs)} but no linkage context was given")
    missing = [k for k in t.needs if k not in linkage]
    if missing:
        raise PlaybookError(f"{where}: the linkage context lacks {missing}")
    return {k: linkage[k] for k in t.needs}


def _fill(t: PlaybookTask, version: str, key: str, department: str, values: Mapping[str, Any],
          needs: Mapping[str, Any], where: str, *, township: bool = False) -> DeptTaskSpec:
    try:
        text = t.task.format_map(values)
        text_zh = t.task_zh.format_map(values)
    except KeyError as err:
        raise PlaybookError(f"{where}: the template context lacks {err}; build it with template_context()") from None
    except (ValueError, TypeError) as err:
        raise PlaybookError(f"{where}: cannot fill the text: {err}") from err
    return DeptTaskSpec(key, department, text, text_zh, t.ack_within_s, t.complete_within_s, t.escalation,
                        needs, t.share, version, t.kind, t.from_level, township)
