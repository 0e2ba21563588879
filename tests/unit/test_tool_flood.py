"""``yingji flood``: CSV in, signal, rate of rise and hours to thresholds out."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from command.tools.flood import add_parser

CUNTAN = ["--warning", "180.5", "--guaranteed", "183.5", "--historic-max", "191.62"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="yingji")
    sub = parser.add_subparsers()
    add_parser(sub)
    return parser.parse_args(["flood", *argv])


def run(tmp_path: Path, text: str, options: list[str] = CUNTAN, name: str = "levels.csv") -> tuple[int, Path]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    args = parse([*options, str(path)])
    return args.func(args), path


def rows(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


GOOD = """\
time,level_m
2020-08-19T00:00:00+08:00,179.0
2020-08-19T01:00:00+08:00,179.5
2020-08-19T02:00:00+08:00,180.0
2020-08-19T03:00:00+08:00,180.6
2020-08-19T04:00:00+08:00,181.0
2020-08-19T05:00:00+08:00,183.6
2020-08-19T06:00:00+08:00,192.0
2020-08-19T07:00:00+08:00,191.0
"""


def test_good_file_known_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(tmp_path, GOOD)
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert out.splitlines()[0] == "time,level_m,signal,rise_m_per_h,hours_to_warning,hours_to_guaranteed"
    got = [(r["signal"], r["rise_m_per_h"], r["hours_to_warning"], r["hours_to_guaranteed"]) for r in rows(out)]
    assert got == [
        ("none", "", "", ""),  # one reading: no rate
        ("blue", "0.500", "2.00", "8.00"),  # (180.5 − 179.5)/0.5, (183.5 − 179.5)/0.5
        ("blue", "0.500", "1.00", "7.00"),
        ("yellow", "0.530", "", "5.47"),  # slope over 0..3 h = 2.65/5; above warning
        ("yellow", "0.510", "", "4.90"),  # 1..4 h: the 0 h reading has left the 3 h window
        ("orange", "1.120", "", ""),  # 2..5 h: 5.6/5
        ("red", "3.680", "", ""),  # 3..6 h: 18.4/5
        ("orange", "3.840", "", ""),  # 4..7 h: below the record again; rising on the window's trend
    ]


def test_falling_level_has_no_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(tmp_path, "time,level_m\n2020-08-19T00:00Z,180.4\n2020-08-19T01:00Z,180.0\n")
    out, _ = capsys.readouterr()
    assert rc == 0
    last = rows(out)[-1]
    assert (last["signal"], last["rise_m_per_h"], last["hours_to_warning"]) == ("blue", "-0.400", "")


def test_extra_columns_pass_through_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ('station, Level_M ,note,TIME\n'
            'cuntan,179.0,"first, with comma",2020-08-19T00:00:00Z\n'
            'cuntan,179.3,,2020-08-19T00:30:00Z\n')
    rc, _ = run(tmp_path, text)
    out, _ = capsys.readouterr()
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "station, Level_M ,note,TIME,signal,rise_m_per_h,hours_to_warning,hours_to_guaranteed"
    assert lines[1] == 'cuntan,179.0,"first, with comma",2020-08-19T00:00:00Z,none,,,'
    assert lines[2] == "cuntan,179.3,,2020-08-19T00:30:00Z,none,0.600,2.00,7.00"


def test_window_and_approach_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "time,level_m\n2020-08-19T00:00Z,179.0\n2020-08-19T02:00Z,179.8\n2020-08-19T03:00Z,180.0\n"
    rc, _ = run(tmp_path, text, [*CUNTAN, "--window-h", "1", "--approach", "0.5"])
    out, _ = capsys.readouterr()
    assert rc == 0
    got = [(r["signal"], r["rise_m_per_h"]) for r in rows(out)]
    assert got == [("none", ""), ("none", ""), ("blue", "0.200")]  # 2 h gap > 1 h window


def test_horizon_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "time,level_m\n2020-08-19T00:00Z,170.0\n2020-08-19T01:00Z,170.1\n"
    rc, _ = run(tmp_path, text, [*CUNTAN, "--horizon-h", "200"])
    out, _ = capsys.readouterr()
    assert rc == 0 and rows(out)[-1]["hours_to_warning"] == "104.00"
    rc, _ = run(tmp_path, text)  # default 72 h: too far
    out, _ = capsys.readouterr()
    assert rows(out)[-1]["hours_to_warning"] == ""


def test_without_historic_max_there_is_no_red(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(tmp_path, "time,level_m\n2020-08-19T00:00Z,200.0\n", ["--warning", "180.5", "--guaranteed", "183.5"])
    out, _ = capsys.readouterr()
    assert rc == 0 and rows(out)[0]["signal"] == "orange"


def test_naive_times_and_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "time,level_m\n2020-08-19 00:00,179.0\n\n2020-08-19 01:00,179.2\n"
    rc, _ = run(tmp_path, text)
    out, _ = capsys.readouterr()
    assert rc == 0 and [r["rise_m_per_h"] for r in rows(out)] == ["", "0.200"]


def test_header_only_gives_header_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(tmp_path, "time,level_m\n")
    out, _ = capsys.readouterr()
    assert rc == 0 and out == "time,level_m,signal,rise_m_per_h,hours_to_warning,hours_to_guaranteed\n"


def test_bad_rows_are_all_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("time,level_m,note\n"
            "2020-08-19T00:00Z,179.0,ok\n"  # line 2
            "yesterday,179.1,bad time\n"  # 3
            "2020-08-19T01:00Z,high,bad number\n"  # 4
            "2020-08-19T00:30Z,179.2,earlier than line 4\n"  # 5
            "2020-08-19T00:30Z,179.3,same time as line 5\n"  # 6
            "2020-08-19T02:00Z,nan,not finite\n"  # 7
            "2020-08-19T03:00Z,,missing\n"  # 8
            "2020-08-19T04:00Z,179.5\n")  # 9: too few fields
    rc, path = run(tmp_path, text)
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.splitlines() == [
        f"{path}:3: time: not an ISO 8601 time: 'yesterday'",
        f"{path}:4: level_m: not a number: 'high'",
        f"{path}:5: time: 2020-08-19T00:30Z is not after the previous row's time 2020-08-19T01:00:00+00:00 "
        "(rows must be in increasing time)",
        f"{path}:6: time: 2020-08-19T00:30Z is not after the previous row's time 2020-08-19T01:00:00+00:00 "
        "(rows must be in increasing time)",
        f"{path}:7: level_m: not a finite number: 'nan'",
        f"{path}:8: level_m: missing value",
        f"{path}:9: row: 2 fields, the header has 3",
    ]


def test_line_numbers_count_quoted_newlines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = 'time,level_m,note\n2020-08-19T00:00Z,179.0,"two\nlines"\n2020-08-19T01:00Z,x,\n'
    rc, path = run(tmp_path, text)
    _, err = capsys.readouterr()
    assert rc == 2 and err == f"{path}:4: level_m: not a number: 'x'\n"


def test_missing_column_names_the_columns_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, path = run(tmp_path, "Time,stage\n2020-08-19T00:00Z,179.0\n")
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err == f"{path}:1: level_m: missing required column(s); found: Time, stage\n"


def test_output_column_already_in_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, path = run(tmp_path, "time,level_m, Signal \n2020-08-19T00:00Z,179.0,x\n")
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err == f"{path}:1: signal: output column(s) already in the input\n"


def test_empty_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, path = run(tmp_path, "")
    _, err = capsys.readouterr()
    assert rc == 2 and err == f"{path}:1: header: empty file, expected a header with time, level_m\n"
    args = parse([*CUNTAN, str(tmp_path / "absent.csv")])
    assert args.func(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "cannot read" in err and "absent.csv" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("time,level_m\n2020-08-19T00:00Z,x\n"))
    args = parse([*CUNTAN, "-"])
    assert args.func(args) == 2
    assert capsys.readouterr().err == "<stdin>:2: level_m: not a number: 'x'\n"


@pytest.mark.parametrize(("options", "message"), [
    (["--warning", "184", "--guaranteed", "183.5"], "--warning (184) must be below --guaranteed (183.5)"),
    (["--warning", "183.5", "--guaranteed", "183.5"], "must be below --guaranteed"),
    (["--warning", "180.5", "--guaranteed", "183.5", "--historic-max", "183"],
     "--historic-max (183) must not be below --guaranteed (183.5)"),
])
def test_bad_option_combinations(tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
                                 message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, GOOD, options)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and message in err


@pytest.mark.parametrize("options", [
    ["--warning", "abc", "--guaranteed", "183.5"],
    ["--warning", "nan", "--guaranteed", "183.5"],
    ["--warning", "180.5", "--guaranteed", "183.5", "--approach", "-0.1"],
    ["--warning", "180.5", "--guaranteed", "183.5", "--window-h", "0"],
    ["--warning", "180.5", "--guaranteed", "183.5", "--horizon-h", "-1"],
    ["--guaranteed", "183.5"],
])
def test_bad_option_values_are_argparse_errors(options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse([*options, "x.csv"])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_approach_equal_historic_and_guaranteed_is_allowed(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(tmp_path, "time,level_m\n2020-08-19T00:00Z,183.5\n",
                ["--warning", "180", "--guaranteed", "183.5", "--historic-max", "183.5", "--approach", "0"])
    out, _ = capsys.readouterr()
    assert rc == 0 and rows(out)[0]["signal"] == "red"


def test_help_explains_columns(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = capsys.readouterr().out
    for word in ("time", "level_m", "signal", "rise_m_per_h", "hours_to_warning", "hours_to_guaranteed",
                 "least-squares", "Ministry of Water", "3 decimals"):
        assert word in text
