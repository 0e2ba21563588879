"""``yingji slope``: displacement CSV in, velocity, tangent angle and level out; failure-time forecast."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from command.risk.landslide import DEFAULT_TANGENT_THRESHOLDS
from command.tools.slope import add_parser

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="yingji")
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["slope", *argv])
    return args.func(args)


def write(tmp_path: Path, text: str, name: str = "in.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def rows_of(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def csv_text(t_day, disp_mm, *, extra: bool = False) -> str:
    lines = ["site,time,displacement_mm,note" if extra else "time,displacement_mm"]
    for i, (d, s) in enumerate(zip(t_day, disp_mm, strict=True)):
        when = (T0 + timedelta(days=float(d))).isoformat()
        lines.append(f"GS-01,{when},{s:.6f},n{i}" if extra else f"{when},{s:.6f}")
    return "\n".join(lines) + "\n"


def creep_then_failure(v0: float = 1.0, onset: float = 60.0, a_mm: float = 10.0):
    t = np.concatenate([np.arange(0.0, onset, 1.0), np.arange(onset, onset + 0.975 * a_mm / v0, 0.25)])
    d = np.where(t <= onset, v0 * t, v0 * onset - a_mm * np.log1p(-(t - onset) * v0 / a_mm))
    return t, d


def test_good_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "time,displacement_mm\n"
                           "2024-06-01T08:00:00+08:00,0\n"
                           "2024-06-02T08:00:00+08:00,1.0\n"
                           "2024-06-02T20:00:00+08:00,2.0\n"
                           "2024-06-03T08:00:00+08:00,3.0\n")
    assert run(["--v0-mm-per-day", "1", "--persistence", "1", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0] == "time,displacement_mm,velocity_mm_per_day,tangent_angle_deg,level"
    rows = rows_of(out)
    assert [r["velocity_mm_per_day"] for r in rows] == ["", "1.0000", "2.0000", "2.0000"]
    assert [r["tangent_angle_deg"] for r in rows] == ["", "45.00", "63.43", "63.43"]
    assert [r["level"] for r in rows] == ["", "blue", "yellow", "yellow"]
    assert rows[1]["time"] == "2024-06-02T08:00:00+08:00"  # input cells are passed through untouched


def test_extra_columns_pass_through_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "site, Time ,note,DISPLACEMENT_MM\n"
                           "A,2024-06-01T00:00:00Z,first,0\n"
                           "A,2024-06-02T00:00:00Z,\"with, comma\",1.5\n")
    assert run(["--v0-mm-per-day", "1.5", path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "site, Time ,note,DISPLACEMENT_MM,velocity_mm_per_day,tangent_angle_deg,level"
    assert lines[1] == "A,2024-06-01T00:00:00Z,first,0,,,"
    assert lines[2] == "A,2024-06-02T00:00:00Z,\"with, comma\",1.5,1.5000,45.00,none"


def test_creep_to_failure_ends_red_with_estimated_v0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t, d = creep_then_failure()
    assert run([write(tmp_path, csv_text(t, d, extra=True))]) == 0
    rows = rows_of(capsys.readouterr().out)
    assert len(rows) == len(t) and [r["note"] for r in rows[:2]] == ["n0", "n1"]
    levels = [r["level"] for r in rows[1:]]
    order = ["none", "blue", "yellow", "orange", "red"]
    assert [order.index(x) for x in levels] == sorted(order.index(x) for x in levels)
    assert levels[-1] == "red" and {"blue", "yellow", "orange"} <= set(levels)
    assert float(rows[-1]["tangent_angle_deg"]) >= 85.0


def test_smooth_leaves_more_leading_rows_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(6.0)
    assert run(["--v0-mm-per-day", "1", "--smooth", "3", write(tmp_path, csv_text(t, 2 * t))]) == 0
    rows = rows_of(capsys.readouterr().out)
    assert [r["velocity_mm_per_day"] for r in rows] == ["", "", "", "2.0000", "2.0000", "2.0000"]


def test_bad_rows_are_all_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "time,displacement_mm,note\n"  # line 1
                           "2024-06-01T00:00:00Z,0,ok\n"  # 2
                           "yesterday,1,bad time\n"  # 3
                           "2024-06-03T00:00:00Z,abc,not a number\n"  # 4
                           "2024-06-02T00:00:00Z,2,earlier than line 4\n"  # 5
                           "2024-06-03T00:00:00Z,3,same as line 4\n"  # 6
                           "2024-06-04T00:00:00,4,naive\n"  # 7
                           "2024-06-05T00:00:00Z,nan,nan\n"  # 8
                           "2024-06-06T00:00:00Z,6\n", name="bad.csv")  # 9: a field short
    assert run([path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{path}:3: time: not an ISO 8601 time: 'yesterday'"
    assert lines[1] == f"{path}:4: displacement_mm: not a number: 'abc'"
    assert lines[2].startswith(f"{path}:5: time: 2024-06-02T00:00:00Z is earlier than the time on line 4")
    assert lines[3].startswith(f"{path}:6: time: 2024-06-03T00:00:00Z is the same as the time on line 4")
    assert lines[4].startswith(f"{path}:7: time: time '2024-06-04T00:00:00' has no UTC offset")
    assert lines[5] == f"{path}:8: displacement_mm: not a finite number: 'nan'"
    assert lines[6] == f"{path}:9: row: 2 fields, the header has 3"
    assert len(lines) == 7


def test_line_numbers_count_blank_and_multiline_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "time,displacement_mm,note\n"
                           "2024-06-01T00:00:00Z,0,\"two\nlines\"\n"  # lines 2-3
                           "\n"  # line 4, blank
                           "2024-06-02T00:00:00Z,x,\n")  # line 5
    assert run([path]) == 2
    assert capsys.readouterr().err == f"{path}:5: displacement_mm: not a number: 'x'\n"


def test_missing_column_is_one_error_naming_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "when,disp\n2024-06-01T00:00:00Z,0\n")
    assert run([path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}:1: time, displacement_mm: missing required column(s); found: when, disp\n"


def test_output_column_already_in_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "time,displacement_mm,Level\n2024-06-01T00:00:00Z,0,x\n")
    assert run([path]) == 2
    assert capsys.readouterr().err == f"{path}:1: level: output column already in the input\n"


def test_empty_file_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "")
    assert run([path]) == 2
    assert "empty file" in capsys.readouterr().err
    assert run([str(tmp_path / "absent.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    header_only = write(tmp_path, "time,displacement_mm\n", name="h.csv")
    assert run([header_only]) == 2
    assert "no readings" in capsys.readouterr().err


def test_v0_that_cannot_be_estimated_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(10.0)
    assert run([write(tmp_path, csv_text(t, np.zeros(10)))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "give v0 explicitly" in err
    assert run(["--v0-mm-per-day", "0.5", write(tmp_path, csv_text(t, np.zeros(10)), name="b.csv")]) == 0


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("time,displacement_mm\n2024-06-01T00:00:00Z,0\n"
                                                 "2024-06-02T00:00:00Z,x\n"))
    assert run(["--v0-mm-per-day", "1", "-"]) == 2
    assert capsys.readouterr().err == "<stdin>:3: displacement_mm: not a number: 'x'\n"


@pytest.mark.parametrize("argv", [
    ["--persistence", "0"], ["--persistence", "two"], ["--smooth", "-1"],
    ["--v0-mm-per-day", "0"], ["--v0-mm-per-day", "-1"], ["--v0-mm-per-day", "nan"], ["--v0-mm-per-day", "x"],
])
def test_bad_option_values_are_argparse_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run([*argv, "in.csv"])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_forecast_accelerating(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t, d = creep_then_failure()  # failure at day 70
    assert run(["--forecast", write(tmp_path, csv_text(t, d))]) == 0
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1 and out.endswith("Z\n")
    when = datetime.fromisoformat(out.strip())
    assert abs(when - (T0 + timedelta(days=70))) < timedelta(hours=3)


def test_forecast_with_noise_and_smoothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(0.0, 60.0, 1.0)
    d = -70.0 * np.log1p(-t / 70.0) + rng.normal(0.0, 0.05, t.size)
    assert run(["--forecast", "--smooth", "3", write(tmp_path, csv_text(t, d))]) == 0
    when = datetime.fromisoformat(capsys.readouterr().out.strip())
    assert abs(when - (T0 + timedelta(days=70))) < timedelta(days=1)


@pytest.mark.parametrize("shape", ["steady", "decelerating", "single"])
def test_forecast_not_accelerating(shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(0.0, 40.0, 1.0)
    rng = np.random.default_rng(1)
    d = {"steady": 1.5 * t + rng.normal(0.0, 0.1, t.size), "decelerating": 30.0 * np.log1p(t / 4.0),
         "single": t}[shape]
    if shape == "single":
        t, d = t[:1], d[:1]
    assert run(["--forecast", write(tmp_path, csv_text(t, d))]) == 0
    assert capsys.readouterr().out == "not accelerating\n"


def test_forecast_still_validates_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "time,displacement_mm\n2024-06-02T00:00:00Z,0\n2024-06-01T00:00:00Z,1\n")
    assert run(["--forecast", path]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{path}:3: time:" in err


def test_help_explains_columns_units_and_methods(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ("displacement_mm", "velocity_mm_per_day", "tangent_angle_deg", "midpoint", "first n rows",
                   "Xu Qiang", "Fukuzono", "UTC offset", "4 decimals", "not accelerating", "--persistence"):
        assert needle in text, needle
    # the help states the published boundaries; they must be the defaults the tool applies
    th = DEFAULT_TANGENT_THRESHOLDS
    assert (th.caution_deg, th.alert_deg, th.alarm_deg, th.hysteresis_deg) == (45.0, 80.0, 85.0, 2.0)
    assert "45 < alpha < 80" in text and "80 <= alpha < 85" in text and "alpha >= 85" in text
