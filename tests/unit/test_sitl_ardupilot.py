"""`yingji sim ardupilot --copters N --boats M`: planning, command lines, the fleet file
written, binaries and district folder found (no binaries are run here)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from sitl.ardupilot import (
    BIN_ENV, SitlBinariesNotFound, build_command, district_folder, find_binaries, find_defaults,
    fleet_document, main, plan_scenario, require_binaries, write_fleet,
)
from sitl.fleet_sim import load_fleet
from sitl.vehicle_sim import SimConfigError

FLEET = """\
vehicles:
  - {name: UAV-1, type: copter, url: "udpin:127.0.0.1:14551", system_id: 1, base: [106.85, 29.71],
     base_alt_m: 180.0, cruise_speed_mps: 12, endurance_s: 1800}
  - {name: UAV-2, type: copter, url: "udpin:127.0.0.1:14552", system_id: 2, base: [106.83, 29.77],
     base_alt_m: 185.0}
  - {name: USV-1, type: boat, url: "udpin:127.0.0.1:14553", system_id: 3, base: [106.63, 29.62],
     base_alt_m: 172.0, cruise_speed_mps: 5, endurance_s: 7200}
"""


def _district(tmp_path: Path) -> Path:
    d = tmp_path / "district"
    d.mkdir()
    (d / "fleet.yaml").write_text(FLEET, encoding="utf-8")
    return d


def _bin_dir(tmp_path: Path, names: tuple[str, ...] = ("arducopter", "ardurover")) -> Path:
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    for name in names:
        f = b / name
        f.write_text("#!/bin/sh\nexit 0\n")
        f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return b


def test_copters_cycle_through_the_bases_with_distinct_ids(tmp_path: Path) -> None:
    specs = load_fleet(_district(tmp_path) / "fleet.yaml")
    insts = plan_scenario(specs, copters=5, boats=2, copter_binary=Path("/b/arducopter"),
                          rover_binary=Path("/b/ardurover"))
    assert [i.kind for i in insts] == ["copter"] * 5 + ["boat"] * 2
    assert [i.system_id for i in insts] == [1, 2, 3, 4, 5, 6, 7]
    assert [i.index for i in insts] == list(range(7))
    assert [i.name for i in insts] == ["UAV-1", "UAV-2", "UAV-1-2", "UAV-2-2", "UAV-1-3",
                                       "USV-1", "USV-1-2"]
    # a base used again: the next vehicle 10 m further east, same latitude
    assert insts[2].lat == insts[0].lat and insts[2].lon > insts[0].lon
    east_m = (insts[2].lon - insts[0].lon) * 111318.8 * 0.8686
    assert east_m == pytest.approx(10.0, rel=0.02)
    assert insts[0].alt_amsl_m == 180.0 and insts[5].alt_amsl_m == 172.0
    assert [i.connection for i in insts[:2]] == ["tcp:127.0.0.1:5760", "tcp:127.0.0.1:5770"]
    assert len({i.connection for i in insts}) == 7


def test_udp_out_ports_and_command_lines(tmp_path: Path) -> None:
    specs = load_fleet(_district(tmp_path) / "fleet.yaml")
    insts = plan_scenario(specs, copters=1, boats=1, copter_binary=Path("/b/arducopter"),
                          rover_binary=Path("/b/ardurover"), out_port=14600, first_sysid=10)
    copter, boat = insts
    assert (copter.connection, boat.connection) == ("udpin:127.0.0.1:14600", "udpin:127.0.0.1:14601")
    cmd = build_command(boat, speedup=5, defaults=Path("/p/rover.parm,/p/motorboat.parm"))
    assert cmd[:3] == ["/b/ardurover", "--model", "motorboat"]
    assert cmd[cmd.index("--sysid") + 1] == "11" and cmd[cmd.index("-I") + 1] == "1"
    assert cmd[cmd.index("--home") + 1] == "29.6200000,106.6300000,172.0,0"  # lat first
    assert cmd[cmd.index("--serial0") + 1] == "udpclient:127.0.0.1:14601"
    assert cmd[cmd.index("--defaults") + 1] == "/p/rover.parm,/p/motorboat.parm"


def test_planning_refuses_what_cannot_be_built(tmp_path: Path) -> None:
    specs = load_fleet(_district(tmp_path) / "fleet.yaml")
    with pytest.raises(SimConfigError, match="at least one"):
        plan_scenario(specs, copters=0, boats=0, copter_binary=None, rover_binary=None)
    with pytest.raises(SimConfigError, match="1..255"):
        plan_scenario(specs, copters=300, boats=0, copter_binary=Path("/b/arducopter"),
                      rover_binary=None)
    with pytest.raises(SimConfigError, match="no boat base"):
        plan_scenario([s for s in specs if s.kind == "copter"], copters=1, boats=1,
                      copter_binary=Path("/b/arducopter"), rover_binary=Path("/b/ardurover"))
    with pytest.raises(SitlBinariesNotFound, match="ardurover"):
        plan_scenario(specs, copters=1, boats=1, copter_binary=Path("/b/arducopter"),
                      rover_binary=None)


def test_written_fleet_file_is_a_fleet_the_simulator_and_service_read(tmp_path: Path) -> None:
    specs = load_fleet(_district(tmp_path) / "fleet.yaml")
    insts = plan_scenario(specs, copters=3, boats=1, copter_binary=Path("/b/arducopter"),
                          rover_binary=Path("/b/ardurover"))
    path = write_fleet(tmp_path / "out" / "fleet.yaml", insts)
    back = load_fleet(path)  # names, ids and urls unique, urls parse
    assert [v.name for v in back] == ["UAV-1", "UAV-2", "UAV-1-2", "USV-1"]
    assert [v.url for v in back] == [i.connection for i in insts]
    assert back[0].cruise_speed_mps == 12.0 and back[3].endurance_s == 7200.0
    doc = yaml.safe_load(path.read_text())
    assert doc == fleet_document(insts)
    assert doc["vehicles"][1]["base_alt_m"] == 185.0 and "cruise_speed_mps" not in doc["vehicles"][1]


def test_binaries_from_the_env_folder_or_path(tmp_path: Path) -> None:
    b = _bin_dir(tmp_path)
    found = find_binaries(env={BIN_ENV: str(b)})
    assert found == {"copter": b / "arducopter", "boat": b / "ardurover"}
    assert find_binaries(env={"PATH": str(b)}) == found
    (tmp_path / "x").mkdir()
    only = _bin_dir(tmp_path / "x", ("arducopter",))
    partial = find_binaries(env={BIN_ENV: str(only)})
    assert set(partial) == {"copter"}
    with pytest.raises(SitlBinariesNotFound) as info:
        require_binaries({"copter", "boat"}, partial)
    assert str(info.value).startswith("ArduPilot SITL binaries not found: set YINGJI_ARDUPILOT_BIN")
    assert "ardurover" in str(info.value) and "arducopter" not in str(info.value).split("missing:")[1]
    require_binaries({"copter"}, partial)  # enough for copters only
    assert find_binaries(env={"PATH": str(tmp_path / "empty")}) == {}


def test_default_parameter_files_from_the_ardupilot_tree(tmp_path: Path) -> None:
    tree = tmp_path / "ardupilot"
    params = tree / "Tools" / "autotest" / "default_params"
    params.mkdir(parents=True)
    for name in ("copter.parm", "rover.parm", "motorboat.parm"):
        (params / name).write_text("")
    binary = tree / "build" / "sitl" / "bin" / "arducopter"
    binary.parent.mkdir(parents=True)
    found = find_defaults(binary)
    assert found == {"copter": params / "copter.parm",
                     "boat": Path(f"{params / 'rover.parm'},{params / 'motorboat.parm'}")}
    assert find_defaults(tmp_path / "elsewhere" / "arducopter") is None


def test_district_folder_from_option_env_or_generated(tmp_path: Path) -> None:
    d = _district(tmp_path)
    assert district_folder(d, env={}) == d
    assert district_folder(None, env={"YINGJI_DISTRICT_DIR": str(d)}) == d
    with pytest.raises(SimConfigError, match="no fleet.yaml"):
        district_folder(tmp_path / "nope", env={})
    with pytest.raises(SimConfigError, match="YINGJI_DISTRICT_DIR"):
        district_folder(None, env={"YINGJI_DATA_DIR": str(tmp_path / "data")}, generate=False)
    made = district_folder(None, env={"YINGJI_DATA_DIR": str(tmp_path / "data")})
    assert made == tmp_path / "data" / "district"
    kinds = [v.kind for v in load_fleet(made / "fleet.yaml")]
    assert "copter" in kinds and "boat" in kinds  # the synthetic Yubei bases


def test_cli_dry_run_writes_the_fleet_and_prints_commands(tmp_path: Path, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setenv(BIN_ENV, str(_bin_dir(tmp_path)))
    out = tmp_path / "sitl-fleet.yaml"
    code = main(["--copters", "2", "--boats", "1", "--district", str(_district(tmp_path)),
                 "--write-fleet", str(out), "--dry-run", "--speedup", "5"], prog="yingji sim ardupilot")
    assert code == 0
    printed = capsys.readouterr().out
    assert "UAV-1 -> tcp:127.0.0.1:5760" in printed and "USV-1 -> tcp:127.0.0.1:5780" in printed
    assert "--sysid 3" in printed and "--model motorboat" in printed
    assert [v.system_id for v in load_fleet(out)] == [1, 2, 3]


def test_cli_without_binaries_says_how_to_get_them(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv(BIN_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["--copters", "1", "--district", str(_district(tmp_path))])
    assert code == 2
    assert "ArduPilot SITL binaries not found: set YINGJI_ARDUPILOT_BIN" in capsys.readouterr().out
