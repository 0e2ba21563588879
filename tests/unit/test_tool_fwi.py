"""``yingji fwi``: CSV in, CSV out, every bad row reported.

The reference output is the test table of Wang, Anderson & Suddaby (2015), NOR-X-424, in
``tests/data/fwi_wang2015.csv`` (see its header for the source); it uses the standard 46°N
day lengths, hence ``--lat 46`` where it is reproduced.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from command.tools.fwi import INPUT_COLUMNS, OUTPUT_COLUMNS, add_parser

DATA = Path(__file__).resolve().parents[1] / "data" / "fwi_wang2015.csv"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yingji")
    sub = parser.add_subparsers()
    add_parser(sub)
    return parser


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = _parser().parse_args(argv)
    rc = args.func(args)
    out, err = capsys.readouterr()
    return rc, out, err


def _published() -> list[dict[str, str]]:
    with DATA.open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _write(tmp_path: Path, text: str, name: str = "in.csv") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


GOOD = "month,day,temp,rh,wind,rain\n4,13,17,42,25,0\n4,14,20,21,25,2.4\n4,15,8.5,40,17,0\n"


def test_reproduces_the_published_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _published()
    lines = ["station,month,day,temp,rh,wind,rain"]
    lines += [",".join(["ref", *(r[c] for c in INPUT_COLUMNS)]) for r in table]
    rc, out, err = _run(["fwi", "--lat", "46", _write(tmp_path, "\n".join(lines) + "\n")], capsys)
    assert (rc, err) == (0, "")
    got = list(csv.DictReader(io.StringIO(out)))
    assert len(got) == len(table)
    for g, r in zip(got, table, strict=True):
        assert g["station"] == "ref" and g["day"] == r["day"]
        assert [g[c] for c in OUTPUT_COLUMNS] == [f"{float(r[c]):.1f}" for c in OUTPUT_COLUMNS], (r["month"], r["day"])


def test_extra_columns_pass_through_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ('Station, Month ,DAY,note,Temp,RH,Wind,Rain\n'
            'A,4,13,"first, day",17,42,25,0\n'
            'A,4,14,,20,21,25,2.4\n')
    rc, out, err = _run(["fwi", "--lat", "46", _write(tmp_path, text)], capsys)
    assert (rc, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["Station", " Month ", "DAY", "note", "Temp", "RH", "Wind", "Rain", *OUTPUT_COLUMNS]
    assert rows[1][:8] == ["A", "4", "13", "first, day", "17", "42", "25", "0"]
    assert rows[1][8:] == ["87.7", "8.5", "19.0", "10.9", "8.5", "10.1"]
    assert rows[2][:8] == ["A", "4", "14", "", "20", "21", "25", "2.4"]
    assert rows[2][8:] == ["86.2", "10.4", "23.6", "8.8", "10.4", "9.3"]


def test_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD))
    rc, out, err = _run(["fwi", "--lat", "46", "-"], capsys)
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == "month,day,temp,rh,wind,rain,ffmc,dmc,dc,isi,bui,fwi"
    assert len(out.splitlines()) == 4


def test_bom_and_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(("\ufeff" + GOOD.replace("\n4,14", "\n\n4,14")).encode("utf-8"))
    rc, out, err = _run(["fwi", "--lat", "46", str(p)], capsys)
    assert (rc, err) == (0, "")
    assert out.splitlines()[0].startswith("month,") and len(out.splitlines()) == 4


def test_latitude_changes_the_dmc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "month,day,temp,rh,wind,rain\n7,20,35,50,10,0\n7,21,36,45,12,0\n"
    path = _write(tmp_path, text)
    outputs = {}
    for lat in ("46", "29.7"):
        rc, out, _ = _run(["fwi", "--lat", lat, path], capsys)
        assert rc == 0
        outputs[lat] = list(csv.DictReader(io.StringIO(out)))
    north, yubei = outputs["46"], outputs["29.7"]
    assert [r["ffmc"] for r in north] == [r["ffmc"] for r in yubei]
    assert [r["dc"] for r in north] == [r["dc"] for r in yubei]
    # July DMC drying: 12.4 h day length at 46°N, 10.1 h in the 20°N band; 6 + 100 K on day 1
    assert yubei[0]["dmc"] == f"{6 + 100 * 1.894 * 36.1 * 50 * 10.1e-6:.1f}" == "9.5"
    assert north[0]["dmc"] == f"{6 + 100 * 1.894 * 36.1 * 50 * 12.4e-6:.1f}" == "10.2"


def test_start_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    _, default, _ = _run(["fwi", "--lat", "46", path], capsys)
    rc, custom, _ = _run(["fwi", "--lat", "46", "--ffmc0", "60", "--dmc0", "2", "--dc0", "5", path], capsys)
    assert rc == 0
    d, c = (list(csv.DictReader(io.StringIO(t)))[0] for t in (default, custom))
    assert float(c["ffmc"]) < float(d["ffmc"])
    assert float(c["dmc"]) == pytest.approx(float(d["dmc"]) - 4.0, abs=0.11)
    assert float(c["dc"]) == pytest.approx(float(d["dc"]) - 10.0, abs=0.11)


def test_missing_columns_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "Month,day,temperature,rh\n4,13,17,42\n")
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [f"{path}:1: temp, wind, rain: missing required column(s); "
                                f"found: 'Month', 'day', 'temperature', 'rh'"]


def test_output_column_already_in_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "month,day,temp,rh,wind,rain,FWI\n4,13,17,42,25,0,3\n")
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [f"{path}:1: fwi: the input already has this output column; rename or drop it"]


def test_duplicate_input_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "month,day,temp,rh,wind,rain,Temp\n4,13,17,42,25,0,18\n")
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [f"{path}:1: temp: column appears more than once"]


def test_bad_rows_are_all_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("month,day,temp,rh,wind,rain\n"
            "4,13,17,42,25,0\n"       # line 2: good
            "4,14,20,120,25,2.4\n"    # line 3: rh out of range
            "4,15,abc,40,17,0\n"      # line 4: temp not a number
            "4,16,6.5,25,-6,\n"       # line 5: wind negative, rain missing
            "4,17,13,34,24,nan\n"     # line 6: rain not finite
            "4,18,6,40,22\n")         # line 7: a field short
    path = _write(tmp_path, text)
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [
        f"{path}:3: rh: must be within 0..100 %, got 120",
        f"{path}:4: temp: not a number: 'abc'",
        f"{path}:5: wind: must be at least 0 km/h, got -6",
        f"{path}:5: rain: missing value",
        f"{path}:6: rain: not a finite number: 'nan'",
        f"{path}:7: row: expected 6 fields as in the header, got 5",
    ]


@pytest.mark.parametrize(("cells", "expected"), [
    ("13,1", ["month: month must be a whole number 1..12, got 13"]),
    ("0,1", ["month: month must be a whole number 1..12, got 0"]),
    ("4.5,1", ["month: month must be a whole number 1..12, got 4.5"]),
    ("4,31", ["day: month 4 has no day 31"]),
    ("2,30", ["day: month 2 has no day 30"]),
    ("4,0", ["day: day must be a whole number 1..31, got 0"]),
    ("4,1.5", ["day: day must be a whole number 1..31, got 1.5"]),
    ("x,y", ["month: not a number: 'x'", "day: not a number: 'y'"]),
])
def test_day_and_month_invalid(cells: str, expected: list[str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, f"month,day,temp,rh,wind,rain\n{cells},17,42,25,0\n")
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [f"{path}:2: {e}" for e in expected]


def test_days_must_be_consecutive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "month,day,temp,rh,wind,rain\n4,13,17,42,25,0\n4,15,20,21,25,0\n4,16,20,21,25,0\n4,16,20,21,25,0\n"
    path = _write(tmp_path, text)
    rc, out, err = _run(["fwi", "--lat", "29.7", path], capsys)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [
        f"{path}:3: day: 4-15 does not follow 4-13 (line 2); rows must be consecutive days, "
        "as the codes carry from one day to the next",
        f"{path}:5: day: 4-16 does not follow 4-16 (line 4); rows must be consecutive days, "
        "as the codes carry from one day to the next",
    ]


@pytest.mark.parametrize("dates", [
    [(2, 27), (2, 28), (3, 1)],
    [(2, 28), (2, 29), (3, 1)],
    [(12, 30), (12, 31), (1, 1)],
    [(4, 30), (5, 1)],
])
def test_month_and_year_ends(dates: list[tuple[int, int]], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    text = "month,day,temp,rh,wind,rain\n" + "".join(f"{m},{d},10,50,10,0\n" for m, d in dates)
    rc, out, err = _run(["fwi", "--lat", "29.7", _write(tmp_path, text)], capsys)
    assert (rc, err) == (0, "") and len(out.splitlines()) == len(dates) + 1


def test_empty_and_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = _write(tmp_path, "", "empty.csv")
    rc, out, err = _run(["fwi", "--lat", "29.7", empty], capsys)
    assert (rc, out) == (2, "")
    assert err.startswith(f"{empty}:1: header: empty file")
    missing = str(tmp_path / "nope.csv")
    rc, out, err = _run(["fwi", "--lat", "29.7", missing], capsys)
    assert (rc, out) == (2, "")
    assert err.strip() == f"{missing}: cannot read: No such file or directory"


def test_header_only_gives_header_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(["fwi", "--lat", "29.7", _write(tmp_path, "month,day,temp,rh,wind,rain\n")], capsys)
    assert (rc, err) == (0, "")
    assert out == "month,day,temp,rh,wind,rain,ffmc,dmc,dc,isi,bui,fwi\n"


@pytest.mark.parametrize("argv", [
    ["fwi", "in.csv"],                                  # --lat is required
    ["fwi", "--lat", "95", "in.csv"],
    ["fwi", "--lat", "north", "in.csv"],
    ["fwi", "--lat", "nan", "in.csv"],
    ["fwi", "--lat", "29.7", "--ffmc0", "102", "in.csv"],
    ["fwi", "--lat", "29.7", "--dmc0", "-1", "in.csv"],
    ["fwi", "--lat", "29.7", "--dc0", "x", "in.csv"],
    ["fwi", "--lat", "29.7"],                           # no input
])
def test_bad_options_are_argparse_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["fwi", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("month", "temp", "noon air temperature, °C", "km/h", "mm", "ffmc dmc dc", "isi bui fwi",
                   "one decimal", "Van Wagner (1987)", "147.2", "NOR-X-424", "cffdrs", "29.7°N"):
        assert needle in text, needle
