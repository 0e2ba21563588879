"""Versioned linkage playbooks (command.linkage.playbook): loading, validation, expansion, advice."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from command.linkage.context import NEEDS_KEYS, linkage_context, template_context
from command.linkage.playbook import (
    DEFAULT_ESCALATION,
    DEPARTMENT_IDS,
    DeptTaskSpec,
    PlaybookError,
    Playbooks,
    expand,
    load_playbooks,
    new_tasks,
    parse_playbooks,
    response_advice,
)
from command.risk.rules import Level

SAMPLE = Path(__file__).resolve().parents[2] / "sitl" / "scenarios" / "yubei" / "playbooks.yaml"  # the district's own
DEPTS = frozenset(DEPARTMENT_IDS)
TOWNS = [{"id": "longxing", "name": "Longxing", "name_zh": "龙兴镇"},
         {"id": "yufengshan", "name": "Yufengshan", "name_zh": "玉峰山镇"}]
LEVELS = ("blue", "yellow", "orange", "red")

# The departments each (kind, level) links in the sample file; "townships" is one task per township.
_B = {
    "flood": [{"emergency", "water", "townships", "bigdata"}, {"traffic", "fire", "health", "city", "police"},
              {"ecology", "meteo"}, set()],
    "rainstorm": [{"meteo", "emergency", "city", "townships"}, {"traffic", "fire", "natural", "bigdata"},
                  {"health", "police", "water"}, {"ecology"}],
    "landslide": [{"natural", "townships", "emergency"}, {"fire", "traffic", "police", "health"},
                  {"meteo", "city", "bigdata"}, set()],
    "fire": [{"emergency", "natural", "meteo", "townships"}, {"fire", "traffic", "police", "health"},
             {"ecology", "city", "bigdata"}, set()],
    "chemical_leak": [{"emergency", "ecology", "fire"}, {"police", "traffic", "health", "townships"},
                      {"water", "meteo", "bigdata", "city"}, set()],
    "default": [{"emergency"}, {"fire", "health"}, {"police", "traffic", "townships"}, {"bigdata", "city", "ecology"}],
}
EXPECTED_DEPTS = {(kind, LEVELS[i]): set().union(*adds[: i + 1]) for kind, adds in _B.items() for i in range(4)}
# How many tasks each (kind, level) issues with the two townships above (a township task counts twice).
EXPECTED_COUNTS = {
    ("flood", "blue"): 5, ("flood", "yellow"): 10, ("flood", "orange"): 16, ("flood", "red"): 18,
    ("rainstorm", "blue"): 5, ("rainstorm", "yellow"): 9, ("rainstorm", "orange"): 12, ("rainstorm", "red"): 16,
    ("landslide", "blue"): 4, ("landslide", "yellow"): 8, ("landslide", "orange"): 11, ("landslide", "red"): 14,
    ("fire", "blue"): 5, ("fire", "yellow"): 9, ("fire", "orange"): 12, ("fire", "red"): 15,
    ("chemical_leak", "blue"): 3, ("chemical_leak", "yellow"): 8, ("chemical_leak", "orange"): 12,
    ("chemical_leak", "red"): 15,
    ("default", "blue"): 1, ("default", "yellow"): 3, ("default", "orange"): 7, ("default", "red"): 10,
}


@pytest.fixture(scope="module")
def book() -> Playbooks:
    return load_playbooks(SAMPLE)


@pytest.fixture(scope="module")
def linkage():
    return linkage_context(None, point=(106.79, 29.77), kind="flood", roads=(), bridges=(), facilities=(),
                           townships=())


def run(book, kind, level, linkage, *, townships=TOWNS, departments=DEPTS):
    ctx = template_context(linkage, place="Longxing", place_zh="龙兴", level=level, title="Flood", title_zh="洪水")
    return expand(book, kind=kind, level=level, departments=departments, context=ctx, townships=townships,
                  linkage=linkage)


def raw():
    return yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))


def one_task(**task):
    """A minimal valid file with one flood task, overridden by ``task``."""
    base = {"department": "traffic", "task": "Close {roads} at {place}", "task_zh": "封闭{place_zh}{roads_zh}",
            "needs": ["roads"], "ack_within_min": 10, "complete_within_min": 60}
    base.update(task)
    return {"version": "t1", "playbooks": [{"kind": "flood", "from_level": "blue", "tasks": [base]}]}


# --- the sample file ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "level"), sorted(EXPECTED_DEPTS))
def test_each_kind_and_level_links_exactly_the_expected_departments(book, linkage, kind, level):
    specs = run(book, kind, level, linkage)
    got = {s.department for s in specs if not s.township}
    expected = EXPECTED_DEPTS[kind, level]
    assert got == expected - {"townships"}
    townships = [s.department for s in specs if s.township]
    assert sorted(set(townships)) == (["longxing", "yufengshan"] if "townships" in expected else [])
    assert len(specs) == EXPECTED_COUNTS[kind, level]
    assert len({s.key for s in specs}) == len(specs)  # keys are unique
    assert {s.version for s in specs} == {"2026.3"}
    assert {s.kind for s in specs} == {kind}
    assert all(s.from_level <= Level[level.upper()] for s in specs)


def test_the_sample_covers_every_department_and_the_townships(book):
    used = {t.department for tasks in book.tasks.values() for t in tasks}
    assert used == DEPARTMENT_IDS | {"townships", "villages"}
    assert book.kinds == {"flood", "rainstorm", "landslide", "fire", "chemical_leak", "default"}


def test_a_task_is_filled_in_with_its_deadlines_needs_and_share(book, linkage):
    specs = {s.key: s for s in run(book, "flood", "yellow", linkage)}
    traffic = specs["traffic:4"]
    assert traffic == DeptTaskSpec(
        key="traffic:4", department="traffic",
        text="Close the roads crossing the flood at Longxing: none; set diversions and check the bridges",
        text_zh="封闭龙兴淹没区内道路：无；设置绕行并检查桥梁", ack_within_s=600, complete_within_s=7200,
        escalation=DEFAULT_ESCALATION, needs={"roads": linkage["roads"], "bridges": linkage["bridges"]},
        share=("incident", "hazard", "roads", "bridges"), version="2026.3", kind="flood", from_level=Level.YELLOW)
    fire = specs["fire:5"]
    assert set(fire.needs) == {"rescue", "staging", "hazard"} and fire.needs["rescue"] is linkage["rescue"]
    assert fire.share == ("incident", "rescue", "staging", "hazard")  # default: the incident and what it needs
    emergency = specs["emergency:0"]
    assert emergency.text == "Flood at Longxing (yellow): open flood watch, consult the water bureau, " \
                             "inform the linked departments"
    assert emergency.text_zh == "龙兴洪水（黄色）：启动防汛值守，会商水利部门，向各联动部门通报情况"


def test_townships_fan_out_one_task_each(book, linkage):
    specs = [s for s in run(book, "flood", "blue", linkage) if s.township]
    assert [(s.key, s.department) for s in specs] == [("longxing:2", "longxing"), ("yufengshan:2", "yufengshan")]
    assert specs[0].text.startswith("Longxing: patrol the embankments")
    assert specs[1].text_zh.startswith("玉峰山镇：巡查龙兴附近堤岸")
    assert set(specs[0].needs) == {"evacuation", "vulnerable"}
    none = run(book, "flood", "blue", linkage, townships=())
    assert [s for s in none if s.township] == []  # no township touched, no township task
    objects = run(book, "flood", "blue", linkage, townships=[type("T", (), {"id": "x", "name": "X", "name_zh": ""})()])
    assert [s.text_zh[:2] for s in objects if s.township] == ["X："]  # objects too; zh falls back to the name


def test_a_level_rise_adds_only_the_new_tasks(book, linkage):
    blue = run(book, "flood", "blue", linkage)
    yellow = run(book, "flood", "yellow", linkage)
    orange = run(book, "flood", "orange", linkage)
    issued = [s.key for s in blue]
    added = new_tasks(issued, yellow)
    assert [s.key for s in added] == ["traffic:4", "fire:5", "health:6", "city:7", "police:8"]
    issued += [s.key for s in added]
    added = new_tasks(issued, orange)
    assert [s.key for s in added] == ["longxing:9", "yufengshan:9", "health:10", "ecology:11", "meteo:12",
                                      "emergency:13"]
    issued += [s.key for s in added]
    assert new_tasks(issued, orange) == []  # the same level again: nothing
    assert new_tasks(issued, yellow) == []  # a fall: nothing
    # Blue straight to red gives every task not issued at blue.
    red = run(book, "flood", "red", linkage)
    jump = new_tasks([s.key for s in blue], red)
    assert len(jump) == len(red) - len(blue) == 13
    assert {s.key for s in jump} >= {"emergency:14", "bigdata:15"}


def test_no_level_no_tasks_and_levels_given_any_way(book, linkage):
    assert run(book, "flood", Level.NONE, linkage) == []
    by_name = [s.key for s in run(book, "flood", "orange", linkage)]
    assert [s.key for s in run(book, "flood", 3, linkage)] == by_name
    assert [s.key for s in run(book, "flood", Level.ORANGE, linkage)] == by_name
    with pytest.raises(ValueError, match="unknown level 'purple'"):
        expand(book, kind="flood", level="purple", departments=DEPTS, context={}, linkage=linkage)


def test_a_kind_without_entries_falls_back_to_default(book, linkage):
    specs = run(book, "earthquake", "yellow", linkage)
    assert [(s.key, s.kind) for s in specs] == [("emergency:0", "default"), ("fire:1", "default"),
                                                ("health:2", "default")]
    without = parse_playbooks(one_task())
    with pytest.raises(PlaybookError, match="no entry for kind 'fire' and no 'default' entry"):
        run(without, "fire", "red", linkage)


def test_expansion_errors_name_the_task(book, linkage):
    with pytest.raises(PlaybookError, match=r"kind 'flood', task 1 \(department 'water'\): department 'water' is "
                                            r"not among the district's departments"):
        run(book, "flood", "blue", linkage, departments=DEPTS - {"water"})
    ctx = template_context(linkage, place="L", place_zh="L", level="blue", title="t", title_zh="t")
    with pytest.raises(PlaybookError,
                       match=r"needs \['hazard', 'townships', 'command_post'\] but no linkage context was given"):
        expand(book, kind="flood", level="blue", departments=DEPTS, context=ctx)
    with pytest.raises(PlaybookError, match="the linkage context lacks \\['townships'\\]"):
        expand(book, kind="flood", level="blue", departments=DEPTS, context=ctx,
               linkage={k: v for k, v in linkage.items() if k != "townships"})
    with pytest.raises(PlaybookError, match="the template context lacks 'title'; build it with template_context"):
        expand(book, kind="flood", level="blue", departments=DEPTS, context={"place": "L"}, linkage=linkage)


# --- validation --------------------------------------------------------------------------------

WHERE = r"playbooks\[0\] \(kind 'flood', from blue\), task 0 \(department 'traffic'\): "


@pytest.mark.parametrize(("change", "message"), [
    ({"department": "trafic"}, r"department 'trafic'\): unknown department 'trafic'; known: bigdata, city"),
    ({"needs": ["roads", "weather"]}, WHERE + r"unknown needs key\(s\) \['weather'\]; known: bridges"),
    ({"task": "Close {roadz}"}, WHERE + r"task: unknown placeholder \{roadz\}; known: hospitals"),
    ({"task_zh": "封闭{place_zh"}, WHERE + r"task_zh: malformed template"),
    ({"task": "Close {place.name}"}, WHERE + r"task: placeholder \{place.name\} may not use attributes"),
    ({"task": "Close {0}"}, WHERE + r"task: positional placeholder"),
    ({"task": "Close {}"}, WHERE + r"task: positional placeholder"),
    ({"task": "Close {roads:,}"}, WHERE + r"task: cannot be filled"),
    ({"task": "Warn {township}"}, WHERE + r"task: unknown placeholder \{township\}"),  # townships tasks only
    ({"ack_within_min": 0}, WHERE + r"ack_within_min must be a positive number of minutes, got 0"),
    ({"complete_within_min": -5}, WHERE + r"complete_within_min must be a positive number of minutes, got -5"),
    ({"ack_within_min": float("nan")}, WHERE + r"ack_within_min must be a positive number of minutes, got nan"),
    ({"ack_within_min": "10"}, WHERE + r"ack_within_min: Input should be a valid number"),
    ({"ack_within_min": 30, "complete_within_min": 20},
     WHERE + r"complete_within_min 20 is before ack_within_min 30"),
    ({"escalation": ["resend", "mayor"]}, WHERE + r"unknown escalation step\(s\) \['mayor'\]; known: bureau, deputy, "
                                                  r"head, head_and_bureau, resend"),
    ({"escalation": []}, WHERE + r"escalation is empty"),
    ({"share": ["incident", "video"]}, WHERE + r"unknown share key\(s\) \['video'\]"),
    ({"from_level": "purple"}, WHERE + r"from_level: Input should be 'blue', 'yellow', 'orange' or 'red'"),
    ({"ack_within": 10}, WHERE + r"ack_within: Extra inputs are not permitted"),
    ({"task_zh": None}, WHERE + r"task_zh: Input should be a valid string"),
])
def test_each_bad_task_is_a_clear_error_naming_its_entry(change, message):
    data = one_task(**change)
    with pytest.raises(PlaybookError, match=message):
        parse_playbooks(data)


def test_missing_fields_are_named():
    data = one_task()
    del data["playbooks"][0]["tasks"][0]["complete_within_min"]
    with pytest.raises(PlaybookError, match=WHERE + "complete_within_min: Field required"):
        parse_playbooks(data)


def test_a_task_may_start_above_but_not_below_its_entry():
    data = one_task(from_level="orange")
    data["playbooks"][0]["from_level"] = "yellow"
    (task,) = parse_playbooks(data).tasks["flood"]
    assert task.from_level is Level.ORANGE
    data = one_task(from_level="blue")
    data["playbooks"][0]["from_level"] = "orange"
    with pytest.raises(PlaybookError, match=r"from orange\), task 0 \(department 'traffic'\): from_level blue is "
                                            r"below its entry's orange"):
        parse_playbooks(data)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(version=2026.1), r'version must be a quoted string such as "2026.1", got 2026.1'),
    (lambda d: d.pop("version"), "version must be a quoted string"),
    (lambda d: d.update(playbooks=[]), "file: playbooks: List should have at least 1 item"),
    (lambda d: d.update(extra=1), "file: extra: Extra inputs are not permitted"),
    (lambda d: d["playbooks"][0].update(kind="earthquake"),
     r"playbooks\[0\] \(kind 'earthquake', from blue\): unknown incident kind 'earthquake'"),
    (lambda d: d["playbooks"][0].update(from_level="green"), r"playbooks\[0\]: from_level: Input should be 'blue'"),
    (lambda d: d["playbooks"][0].update(tasks=[]), r"playbooks\[0\]: tasks: List should have at least 1 item"),
    (lambda d: d["playbooks"][0].update(tasks=["close roads"]),
     r"task 0 \(department None\): a task must be a mapping, got 'close roads'"),
    (lambda d: d.update(playbooks=["flood"]), r"playbooks\[0\]: an entry must be a mapping with kind"),
])
def test_bad_files_and_entries_are_clear_errors(mutate, message):
    data = one_task()
    mutate(data)
    with pytest.raises(PlaybookError, match=message):
        parse_playbooks(data)
    with pytest.raises(PlaybookError, match="must be a mapping with 'version' and 'playbooks'"):
        parse_playbooks(["version", "playbooks"])


def test_errors_in_a_later_entry_name_that_entry():
    data = raw()
    data["playbooks"][2]["tasks"][3]["needs"] = ["hazard", "airspace"]  # flood from orange, the meteo task
    with pytest.raises(PlaybookError, match=r"playbooks\[2\] \(kind 'flood', from orange\), task 3 \(department "
                                            r"'meteo'\): unknown needs key\(s\) \['airspace'\]"):
        parse_playbooks(data)


def test_the_department_list_can_be_the_districts_own():
    with pytest.raises(PlaybookError, match="unknown department 'traffic'; known: fire, townships"):
        parse_playbooks(one_task(), departments={"fire"})


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "playbooks.yaml"
    bad.write_text(yaml.safe_dump(one_task(department="army")), encoding="utf-8")
    with pytest.raises(PlaybookError, match=rf"^{bad}: playbooks\[0\] .*unknown department 'army'"):
        load_playbooks(bad)
    bad.write_text("version: [", encoding="utf-8")
    with pytest.raises(PlaybookError, match=rf"^{bad}: cannot read YAML"):
        load_playbooks(bad)
    with pytest.raises(PlaybookError, match="cannot read YAML"):
        load_playbooks(tmp_path / "missing.yaml")


def test_a_valid_edit_of_the_sample_still_loads():
    data = copy.deepcopy(raw())
    data["version"] = "2026.3"
    data["playbooks"][0]["tasks"][0]["escalation"] = ["resend", "deputy", "head", "bureau"]
    book = parse_playbooks(data)
    assert book.version == "2026.3"
    assert book.tasks["flood"][0].escalation == ("resend", "deputy", "head", "bureau")
    assert book.tasks["flood"][0].ack_within_s == 900 and book.tasks["flood"][0].complete_within_s == 3600


# --- response advice -----------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "response", "zh"), [
    ("blue", "IV", "蓝色洪水预警：建议启动Ⅳ级应急响应"), ("yellow", "III", "黄色洪水预警：建议启动Ⅲ级应急响应"),
    ("orange", "II", "橙色洪水预警：建议启动Ⅱ级应急响应"), ("red", "I", "红色洪水预警：建议启动Ⅰ级应急响应"),
])
def test_response_advice_follows_the_warning_level(level, response, zh):
    got, reason, reason_zh = response_advice("flood", level)
    assert got == response
    assert reason.startswith(f"{level.capitalize()} flood warning: level {response} emergency response advised")
    assert "commander's decision" in reason
    assert reason_zh.startswith(zh) and reason_zh.endswith("是否启动由指挥长决定。")


def test_response_advice_for_each_kind_and_no_level():
    assert [response_advice(k, Level.RED)[0] for k in ("flood", "rainstorm", "landslide", "fire", "chemical_leak")] \
        == ["I"] * 5
    assert response_advice("chemical_leak", 1)[1].startswith("Blue chemical leak warning")
    assert response_advice("landslide", Level.NONE) == (
        "", "No landslide warning level: no emergency response advised.", "未达滑坡预警级别：不建议启动应急响应。")
    with pytest.raises(ValueError, match="unknown incident kind 'earthquake'"):
        response_advice("earthquake", "red")


def test_villages_each_get_their_warning_to_answer(book):
    """The villages by a flood from yellow (a landslide from blue) get one warning each, named."""
    villages = [{"id": "village-shanjiao", "name": "Shanjiao", "name_zh": "山脚村"},
                {"id": "village-hexi", "name": "Hexi", "name_zh": "河西村"}]
    ctx = template_context(linkage_context(None, point=(106.8, 29.8), kind="flood", roads=(), bridges=(),
                                           facilities=(), townships=()),
                           place="Longxing", place_zh="龙兴", level="yellow", title="Flood", title_zh="洪水")
    linkage = {k: [] for k in ("villages", "evacuation")}
    blue = expand(book, kind="flood", level="blue", departments=DEPTS, context=ctx, villages=villages,
                  linkage=linkage | {k: {} for k in NEEDS_KEYS if k not in linkage})
    assert not [s for s in blue if s.department.startswith("village-")]
    yellow = expand(book, kind="flood", level="yellow", departments=DEPTS, context=ctx, villages=villages,
                    linkage=linkage | {k: {} for k in NEEDS_KEYS if k not in linkage})
    warned = [s for s in yellow if s.department.startswith("village-")]
    assert [s.department for s in warned] == ["village-shanjiao", "village-hexi"] and all(s.township for s in warned)
    assert warned[0].text_zh.startswith("山脚村：龙兴附近河道已达黄色预警") and "叫应" in warned[0].text_zh
    assert warned[0].ack_within_s == 600 and warned[0].key.startswith("village-shanjiao:")
    with pytest.raises(PlaybookError, match="village"):  # a village placeholder outside a village task
        parse_playbooks({"version": "x", "playbooks": [{"kind": "flood", "from_level": "blue", "tasks": [
            {"department": "fire", "task": "{village}", "task_zh": "x", "ack_within_min": 1,
             "complete_within_min": 2}]}]}, departments=DEPTS)
