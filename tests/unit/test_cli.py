import subprocess
import sys

import pytest

from command.cli import main


@pytest.mark.parametrize("words", [[], ["demo"], ["serve"], ["sim", "sensors"], ["sim", "fleet"],
                                   ["sim", "ardupilot"], ["scenario"]])
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    assert "usage: yingji" in capsys.readouterr().out


def test_serve_without_a_district_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("YINGJI_DISTRICT_DIR", raising=False)
    with pytest.raises(SystemExit, match="YINGJI_DISTRICT_DIR"):
        main(["serve"])


def test_scenario_writes_a_district_folder(tmp_path):
    out = subprocess.run([sys.executable, "-m", "command.cli", "scenario", str(tmp_path / "d")],
                         capture_output=True, text=True, check=True)
    assert "Synthetic" in out.stdout
    assert (tmp_path / "d" / "district.yaml").exists() and (tmp_path / "d" / "fleet.yaml").exists()
