"""Default linkage playbook: which departments get which task for an incident.

Pure: the playbook is data from the district folder (``departments.yaml``); this module
only selects and fills it in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class PlaybookError(Exception):
    """The playbook data is unusable."""


@dataclass(frozen=True, slots=True)
class TaskSpec:
    department: str
    text: str
    text_zh: str


def tasks_for(playbook: Mapping[str, Sequence[Mapping[str, Any]]], *, kind: str,
              departments: Collection[str], context: Mapping[str, Any]) -> list[TaskSpec]:
    """The department tasks for an incident of ``kind``; texts may use ``{title}``, ``{level}``…

    ``departments`` are the known department ids.

    An incident kind without its own entry falls back to the ``default`` entry.
    """
    entries = playbook.get(kind) or playbook.get("default") or ()
    out: list[TaskSpec] = []
    for entry in entries:
        dept = entry.get("department")
        if dept not in departments:
            raise PlaybookError(f"playbook for {kind!r} names unknown department {dept!r}")
        try:
            text = str(entry["task"]).format_map(context)
            text_zh = str(entry.get("task_zh", entry["task"])).format_map(context)
        except (KeyError, ValueError) as err:
            raise PlaybookError(f"playbook for {kind!r}, department {dept!r}: {err}") from err
        out.append(TaskSpec(dept, text, text_zh))
    return out
