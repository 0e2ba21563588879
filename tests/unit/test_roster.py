"""Department duty rosters: schema, validation and who is on duty when."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from command.linkage.roster import (
    Channels,
    Department,
    Person,
    RosterError,
    Webhook,
    load_departments,
    people_for,
    who_is_on_duty,
)

SH = ZoneInfo("Asia/Shanghai")

YAML = """
departments:
  - id: traffic
    name: Transport Bureau / Traffic Police
    name_zh: 区交通局 / 公安交巡警
    head: {id: traffic-head, name: Chen Gang, name_zh: 陈刚, phone: "+86 23 6782 0000"}
    members:
      - {id: traffic-wang, name: Wang Lei, name_zh: 王磊, phone: "+86 138 0000 0001", roles: [duty]}
      - {id: traffic-li, name: Li Na, name_zh: 李娜, roles: [duty, deputy]}
      - {id: traffic-zhou, name: Zhou Bo, name_zh: 周波}
      - {id: traffic-zhao, name: Zhao Min, name_zh: 赵敏}
    roster:
      - {days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30", on_duty: traffic-wang, deputy: traffic-li}
      - {days: [mon, tue, wed, thu, fri, sat], from: "17:30", to: "08:30", on_duty: traffic-zhou, deputy: traffic-li}
      - {days: [sun], from: "17:30", to: "08:30", on_duty: traffic-zhao}
    channels: {mqtt: true, webhook: {url: "https://traffic.example.org/yingji", secret_env: YINGJI_WEBHOOK_TRAFFIC}}
  - id: emergency
    name: District Emergency Management Bureau
    name_zh: 区应急管理局
    head: {id: em-head, name: Liu Yang, name_zh: 刘洋}
    members:
      - {id: em-sun, name: Sun Hao, name_zh: 孙浩}
    roster:
      - {days: all, from: "08:00", to: "08:00", on_duty: em-sun}
"""


def _raw() -> dict[str, Any]:
    return yaml.safe_load(YAML)


@pytest.fixture(scope="module")
def depts() -> dict[str, Department]:
    return load_departments(_raw())


def _local(day: int, hh: int, mm: int = 0) -> datetime:
    """A local Yubei time in the week of Monday 2025-07-07 (``day`` 6 = Sunday 2025-07-06 before it)."""
    return datetime(2025, 7, 6 if day == 6 else 7 + day, hh, mm, tzinfo=SH)


def _who(dept: Department, at: datetime) -> tuple[str, str, bool]:
    duty = who_is_on_duty(dept, at)
    return duty.on_duty.id, duty.deputy.id, duty.fallback


def test_the_schema_is_read_with_bilingual_names_and_channels(depts: dict[str, Department]) -> None:
    traffic = depts["traffic"]
    assert list(depts) == ["traffic", "emergency"]
    assert (traffic.name, traffic.name_zh, traffic.timezone) == (
        "Transport Bureau / Traffic Police", "区交通局 / 公安交巡警", "Asia/Shanghai")
    assert traffic.head == Person("traffic-head", "Chen Gang", "陈刚", "+86 23 6782 0000")
    assert traffic.members[0] == Person("traffic-wang", "Wang Lei", "王磊", "+86 138 0000 0001", ("duty",))
    assert traffic.channels == Channels(True, Webhook("https://traffic.example.org/yingji", "YINGJI_WEBHOOK_TRAFFIC"))
    assert depts["emergency"].channels == Channels(True, None)
    assert [s.describe() for s in traffic.roster] == [
        "mon,tue,wed,thu,fri 08:30–17:30", "mon,tue,wed,thu,fri,sat 17:30–08:30", "sun 17:30–08:30"]
    assert depts["emergency"].roster[0].describe() == "all 08:00–08:00"


def test_day_shift(depts: dict[str, Department]) -> None:
    traffic = depts["traffic"]
    assert _who(traffic, _local(0, 10)) == ("traffic-wang", "traffic-li", False)
    assert _who(traffic, _local(4, 17, 29)) == ("traffic-wang", "traffic-li", False)
    duty = who_is_on_duty(traffic, _local(2, 12))
    assert duty.head.id == "traffic-head" and duty.shift is traffic.roster[0]
    assert duty.on_duty.name_zh == "王磊"


def test_night_shift_crossing_midnight_belongs_to_the_day_it_starts(depts: dict[str, Department]) -> None:
    traffic = depts["traffic"]
    # Sunday night into Monday morning is Sunday's shift (Zhao), without a deputy: the head stands in
    assert _who(traffic, _local(6, 17, 30)) == ("traffic-zhao", "traffic-head", False)
    assert _who(traffic, _local(6, 23, 59)) == ("traffic-zhao", "traffic-head", False)
    assert _who(traffic, _local(0, 0, 0)) == ("traffic-zhao", "traffic-head", False)
    assert _who(traffic, _local(0, 8, 29)) == ("traffic-zhao", "traffic-head", False)
    assert who_is_on_duty(traffic, _local(0, 3)).shift is traffic.roster[2]
    # the boundaries: 08:30 Monday is the day shift's, 17:30 Monday the night shift's
    assert _who(traffic, _local(0, 8, 30)) == ("traffic-wang", "traffic-li", False)
    assert _who(traffic, _local(0, 17, 30)) == ("traffic-zhou", "traffic-li", False)
    # Monday night into Tuesday is Monday's shift (Zhou)
    assert _who(traffic, _local(1, 3)) == ("traffic-zhou", "traffic-li", False)
    # Saturday night into Sunday morning is Saturday's
    assert _who(traffic, _local(6, 8, 29)) == ("traffic-zhou", "traffic-li", False)


def test_utc_and_other_zones_are_read_in_asia_shanghai(depts: dict[str, Department]) -> None:
    traffic = depts["traffic"]
    # Sunday 20:00 UTC is Monday 04:00 in Yubei: still Sunday's night shift
    assert _who(traffic, datetime(2025, 7, 6, 20, 0, tzinfo=timezone.utc)) == ("traffic-zhao", "traffic-head", False)
    # Monday 00:30 UTC is Monday 08:30 in Yubei: the day shift begins
    assert _who(traffic, datetime(2025, 7, 7, 0, 30, tzinfo=timezone.utc)) == ("traffic-wang", "traffic-li", False)
    assert _who(traffic, datetime(2025, 7, 7, 0, 29, 59, tzinfo=timezone.utc)) == (
        "traffic-zhao", "traffic-head", False)
    # Monday 04:00 in Berlin (CEST, UTC+2) is Monday 10:00 in Yubei
    assert _who(traffic, datetime(2025, 7, 7, 4, 0, tzinfo=ZoneInfo("Europe/Berlin"))) == (
        "traffic-wang", "traffic-li", False)
    with pytest.raises(ValueError, match="needs a timezone-aware datetime"):
        who_is_on_duty(traffic, datetime(2025, 7, 7, 10, 0))


def test_no_shift_falls_back_to_the_head(depts: dict[str, Department]) -> None:
    traffic = depts["traffic"]
    for at in (_local(5, 10), _local(6, 12), _local(6, 17, 29)):  # weekend daytime: nobody rostered
        duty = who_is_on_duty(traffic, at)
        assert (duty.on_duty.id, duty.deputy.id, duty.head.id, duty.fallback, duty.shift) == (
            "traffic-head", "traffic-head", "traffic-head", True, None)
    raw = _raw()
    del raw["departments"][0]["roster"]
    no_roster = load_departments(raw)["traffic"]
    assert _who(no_roster, _local(0, 10)) == ("traffic-head", "traffic-head", True)


def test_a_24_hour_shift_and_a_shift_to_midnight(depts: dict[str, Department]) -> None:
    em = depts["emergency"]
    for at in (_local(0, 8), _local(3, 2), _local(6, 7, 59)):
        assert _who(em, at) == ("em-sun", "em-head", False)
    raw = _raw()
    raw["departments"][1]["roster"] = [{"days": ["mon"], "from": "18:00", "to": "24:00", "on_duty": "em-sun"}]
    em = load_departments(raw)["emergency"]
    assert _who(em, _local(0, 23, 59)) == ("em-sun", "em-head", False)
    assert _who(em, _local(1, 0, 0)) == ("em-head", "em-head", True)


def test_a_department_may_name_its_own_timezone() -> None:
    raw = _raw()
    raw["departments"][1]["timezone"] = "UTC"
    em = load_departments(raw, timezone="Asia/Shanghai")["emergency"]
    assert em.timezone == "UTC"
    assert load_departments(_raw(), timezone="Asia/Chongqing")["traffic"].timezone == "Asia/Chongqing"


def test_people_for_each_recipient_role(depts: dict[str, Department]) -> None:
    traffic, bureau = depts["traffic"], depts["emergency"]
    at = _local(0, 10)
    assert [p.id for p in people_for("on_duty", traffic, at, bureau=bureau)] == ["traffic-wang"]
    assert [p.id for p in people_for("deputy", traffic, at, bureau=bureau)] == ["traffic-li"]
    assert [p.id for p in people_for("head", traffic, at, bureau=bureau)] == ["traffic-head"]
    assert [p.id for p in people_for("bureau_duty_chief", traffic, at, bureau=bureau)] == ["em-sun"]
    with pytest.raises(ValueError, match="unknown recipient role 'mayor'"):
        people_for("mayor", traffic, at, bureau=bureau)
    with pytest.raises(RosterError, match="department 'traffic': no head or member 'nobody'"):
        traffic.person("nobody")


# --- validation: every error names the department and the entry -------------------------------------


def _edit(path: tuple[Any, ...], value: Any, *, dept: int = 0) -> dict[str, Any]:
    raw = copy.deepcopy(_raw())
    node = raw["departments"][dept]
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    (("roster", 1, "on_duty"), "traffic-nobody",
     "department 'traffic': roster entry 2: on_duty 'traffic-nobody' is not the head or a member"),
    (("roster", 0, "deputy"), "traffic-ghost",
     "department 'traffic': roster entry 1: deputy 'traffic-ghost' is not the head or a member"),
    (("roster", 0, "deputy"), "traffic-wang",
     "department 'traffic': roster entry 1: the deputy 'traffic-wang' is the person on duty"),
    (("roster", 0, "from"), "8h30", "department 'traffic': roster entry 1, from: time '8h30' is not HH:MM"),
    (("roster", 0, "to"), "25:00",
     "department 'traffic': roster entry 1, to: time '25:00' is out of range (00:00–23:59, or 24:00)"),
    (("roster", 0, "to"), "12:60",
     "department 'traffic': roster entry 1, to: time '12:60' is out of range (00:00–23:59, or 24:00)"),
    (("roster", 0, "from"), "24:00",
     "department 'traffic': roster entry 1, from: time '24:00' is out of range (00:00–23:59)"),
    (("roster", 0, "from"), "", "department 'traffic': roster entry 1, from: time '' is not HH:MM"),
    (("roster", 0, "days"), ["mon", "funday"],
     "department 'traffic': roster entry 1, days: unknown day(s) ['funday']; days are mon, tue, wed, thu, fri, "
     "sat, sun or 'all'"),
    (("roster", 0, "days"), ["mon", "tue", "mon"],
     "department 'traffic': roster entry 1, days: day(s) ['mon'] listed twice"),
    (("roster", 0, "days"), [], "department 'traffic': roster entry 1, days: days []: use 'all' or a list of mon"),
    (("roster", 0, "days"), "weekdays",
     "department 'traffic': roster entry 1, days: days 'weekdays': use 'all' or a list of mon"),
    (("roster", 0, "on_duty"), _DELETE, "department 'traffic': roster entry 1, on_duty: Field required"),
    (("roster", 2, "depty"), "traffic-li",
     "department 'traffic': roster entry 3, depty: Extra inputs are not permitted"),
    (("members", 2, "id"), "traffic-wang",
     "department 'traffic': member 3: id 'traffic-wang' is already used by member 1"),
    (("members", 0, "id"), "traffic-head",
     "department 'traffic': member 1: id 'traffic-head' is already used by the head"),
    (("members", 1, "name"), "", "department 'traffic': member 2, name: String should have at least 1 character"),
    (("head",), _DELETE, "department 'traffic': head: Field required"),
    (("timezone",), "Mars/Olympus", "department 'traffic': unknown timezone 'Mars/Olympus'"),
    (("channels", "webhook", "url"), "not a url",
     "department 'traffic': channels, webhook, url: Input should be a valid URL"),
    (("channels", "webhook", "secret_env"), "lower-case",
     "department 'traffic': channels, webhook, secret_env: String should match pattern"),
    (("id",), "traffic police", "department 'traffic police': id: String should match pattern"),
])
def test_each_validation_error_names_the_department_and_the_entry(path, value, message) -> None:
    with pytest.raises(RosterError) as err:
        load_departments(_edit(path, value))
    assert str(err.value).startswith(message), str(err.value)


def test_overlapping_shifts_on_a_day_are_refused() -> None:
    raw = _raw()
    raw["departments"][0]["roster"].append(
        {"days": ["wed"], "from": "12:00", "to": "13:00", "on_duty": "traffic-zhou"})
    with pytest.raises(RosterError) as err:
        load_departments(raw)
    assert str(err.value) == ("department 'traffic': roster entry 4 (wed 12:00–13:00) overlaps roster entry 1 "
                              "(mon,tue,wed,thu,fri 08:30–17:30) on wed at 12:00")


def test_a_shift_overlapping_the_night_after_midnight_is_refused() -> None:
    # Monday 06:00–07:00 falls inside Sunday's night shift (17:30–08:30), across the week's end
    raw = _raw()
    raw["departments"][0]["roster"].append(
        {"days": ["mon"], "from": "06:00", "to": "07:00", "on_duty": "traffic-wang"})
    with pytest.raises(RosterError) as err:
        load_departments(raw)
    assert str(err.value) == ("department 'traffic': roster entry 4 (mon 06:00–07:00) overlaps roster entry 3 "
                              "(sun 17:30–08:30) on mon at 06:00")
    # a day shift that starts before the night ends: the week's first clash is Monday 08:00
    raw = _raw()
    raw["departments"][0]["roster"][0]["from"] = "08:00"
    with pytest.raises(RosterError) as err:
        load_departments(raw)
    assert str(err.value) == ("department 'traffic': roster entry 3 (sun 17:30–08:30) overlaps roster entry 1 "
                              "(mon,tue,wed,thu,fri 08:00–17:30) on mon at 08:00")
    # without the Sunday night, the clash is the Monday night against Tuesday morning
    del raw["departments"][0]["roster"][2]
    with pytest.raises(RosterError) as err:
        load_departments(raw)
    assert str(err.value) == ("department 'traffic': roster entry 2 (mon,tue,wed,thu,fri,sat 17:30–08:30) overlaps "
                              "roster entry 1 (mon,tue,wed,thu,fri 08:00–17:30) on tue at 08:00")


def test_an_unquoted_time_gets_a_hint() -> None:
    text = YAML.replace('to: "17:30", on_duty: traffic-wang', "to: 17:30, on_duty: traffic-wang")
    with pytest.raises(RosterError) as err:
        load_departments(yaml.safe_load(text))
    assert str(err.value) == ("department 'traffic': roster entry 1, to: time 1050 is not a \"HH:MM\" string "
                              "(YAML reads an unquoted 17:30 as the number 1050: quote it)")


def test_duplicate_departments_and_a_bad_section_are_refused() -> None:
    raw = _raw()
    raw["departments"].append(copy.deepcopy(raw["departments"][1]))
    with pytest.raises(RosterError, match="department 'emergency': id used twice \\(department 3 repeats it\\)"):
        load_departments(raw)
    with pytest.raises(RosterError, match="expected a mapping with a 'departments' list"):
        load_departments({"playbook": {}})
    with pytest.raises(RosterError, match="department 2: expected a mapping, got 'traffic'"):
        load_departments({"departments": [_raw()["departments"][0], "traffic"]})
