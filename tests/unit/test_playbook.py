import pytest

from command.linkage.playbook import PlaybookError, tasks_for

DEPTS = {"fire", "traffic"}
BOOK = {
    "flood": [{"department": "fire", "task": "Water rescue standby for {title}", "task_zh": "{title_zh}：水域救援待命"},
              {"department": "traffic", "task": "Close riverside roads ({level})"}],
    "default": [{"department": "fire", "task": "Stand by"}],
}
CTX = {"title": "Cuntan", "title_zh": "寸滩", "level": "orange"}


def test_tasks_are_filled_from_the_incident():
    tasks = tasks_for(BOOK, kind="flood", departments=DEPTS, context=CTX)
    assert [t.department for t in tasks] == ["fire", "traffic"]
    assert tasks[0].text == "Water rescue standby for Cuntan" and tasks[0].text_zh == "寸滩：水域救援待命"
    assert tasks[1].text_zh == "Close riverside roads (orange)"  # no zh text: falls back to the task


def test_unknown_kind_uses_the_default_entry():
    assert [t.text for t in tasks_for(BOOK, kind="landslide", departments=DEPTS, context=CTX)] == ["Stand by"]


def test_unknown_department_and_bad_placeholders_are_clear_errors():
    with pytest.raises(PlaybookError, match="unknown department 'police'"):
        tasks_for({"flood": [{"department": "police", "task": "x"}]}, kind="flood", departments=DEPTS, context=CTX)
    with pytest.raises(PlaybookError, match="'nope'"):
        tasks_for({"flood": [{"department": "fire", "task": "{nope}"}]}, kind="flood", departments=DEPTS, context=CTX)
