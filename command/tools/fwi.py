"""``yingji fwi``: the Canadian Forest Fire Weather Index System over a CSV of daily noon weather."""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Callable, Sequence

from command.risk.fire import NoonWeather, fwi_series
from command.tools import finite, number_option

__all__ = ["INPUT_COLUMNS", "OUTPUT_COLUMNS", "add_parser", "run"]

INPUT_COLUMNS = ("month", "day", "temp", "rh", "wind", "rain")
OUTPUT_COLUMNS = ("ffmc", "dmc", "dc", "isi", "bui", "fwi")

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # no year given: 29 Feb allowed

_DESCRIPTION = """\
Compute the six components of the Canadian Forest Fire Weather Index System for consecutive
days of noon weather at one place, carrying the moisture codes from each day to the next.

Input: a CSV file with a header row (or - for standard input). Required columns, matched
case-insensitively, any order:
  month  month of the observation, 1..12
  day    day of the month, 1..31 (rows must be consecutive days; 29 Feb may be present or not)
  temp   noon air temperature, °C
  rh     noon relative humidity, % (0..100)
  wind   noon 10-m wind speed, km/h (>= 0)
  rain   rain in the 24 hours ending at noon, mm (>= 0)
Other columns are passed through unchanged.

Output (standard output): the input columns followed by
  ffmc dmc dc   Fine Fuel Moisture, Duff Moisture and Drought Codes
  isi bui fwi   Initial Spread, Buildup and Fire Weather Indexes
each written with one decimal (the precision of the published tables).

If any row is bad, nothing is written to standard output; every bad row is reported on
standard error as FILE:LINE: COLUMN: REASON, and the exit status is 2.
"""

_EPILOG = """\
Method: Van Wagner (1987), Development and structure of the Canadian Forest Fire Weather
Index System, Forestry Technical Report 35, with the FFMC constant 147.2 and the DMC rain
phase in the form of Van Wagner & Pickett's (1985) FORTRAN program; reproduces the test
table of Wang, Anderson & Suddaby (2015), Information Report NOR-X-424. The DMC and DC
day-length factors are chosen by latitude band as in the R package cffdrs: the standard
(46°N) DMC table for latitudes above 30°N, a 20°N table for 10..30°N (so 29.7°N uses it),
and the standard DC factors above 20°N.

Example: yingji fwi --lat 29.7 station.csv > station_fwi.csv
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register the ``fwi`` sub-command on an argparse sub-parsers object; set_defaults(func=run)."""
    p = sub.add_parser(
        "fwi", help="forest fire weather index (Canadian FWI System) from daily noon weather (CSV)",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lat", type=number_option(lo=-90, hi=90), required=True, metavar="DEG",
                   help="latitude of the station, decimal degrees north (south negative); "
                        "selects the day-length factors")
    p.add_argument("--ffmc0", type=number_option(lo=0, hi=101), default=85.0, metavar="X",
                   help="FFMC of the day before the first row (default 85, the standard start-up)")
    p.add_argument("--dmc0", type=number_option(lo=0), default=6.0, metavar="X",
                   help="DMC of the day before the first row (default 6)")
    p.add_argument("--dc0", type=number_option(lo=0), default=15.0, metavar="X",
                   help="DC of the day before the first row (default 15)")
    p.add_argument("input", help="input CSV file, or - for standard input")
    p.set_defaults(func=run)
    return p


class _Rejected(Exception):
    """A cell that cannot be used, with the reason."""


def _cell_number(text: str) -> float:
    if not text.strip():
        raise _Rejected("missing value")
    try:
        return finite(text)
    except ValueError as err:
        raise _Rejected(str(err)) from None


def _whole(text: str, lo: int, hi: int, what: str) -> int:
    v = _cell_number(text)
    if v != math.floor(v) or not lo <= v <= hi:
        raise _Rejected(f"{what} must be a whole number {lo}..{hi}, got {text.strip()}")
    return int(v)


def _ranged(text: str, lo: float | None, hi: float | None, unit: str) -> float:
    v = _cell_number(text)
    if lo is not None and v < lo or hi is not None and v > hi:
        bounds = f"within {lo:g}..{hi:g}" if hi is not None else f"at least {lo:g}"
        raise _Rejected(f"must be {bounds} {unit}, got {text.strip()}")
    return v


def _follows(prev: tuple[int, int], cur: tuple[int, int]) -> bool:
    """Whether ``cur`` is the calendar day after ``prev`` (month, day), year unknown."""
    (pm, pd), (cm, cd) = prev, cur
    if pm == 2 and pd == 28:  # the year is unknown: 28 Feb may be followed by 29 Feb or 1 Mar
        return (cm, cd) in ((2, 29), (3, 1))
    if pd < _DAYS_IN_MONTH[pm - 1]:
        return (cm, cd) == (pm, pd + 1)
    return (cm, cd) == (pm % 12 + 1, 1)


def _read(path: str) -> tuple[str, str]:
    if path == "-":
        return "<stdin>", sys.stdin.read()
    with open(path, encoding="utf-8-sig", newline="") as f:
        return path, f.read()


def run(args: argparse.Namespace) -> int:
    """Read args.input (a path, or '-' for stdin), write CSV to sys.stdout, return the exit code."""
    try:
        name, text = _read(args.input)
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        print(f"{args.input}: cannot read: {reason}", file=sys.stderr)
        return 2
    errors: list[str] = []
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None:
        print(f"{name}:1: header: empty file, expected a header row with {', '.join(INPUT_COLUMNS)}",
              file=sys.stderr)
        return 2
    keys = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in INPUT_COLUMNS:
            if k in index:
                errors.append(f"{name}:1: {k}: column appears more than once")
            index.setdefault(k, i)
        elif k in OUTPUT_COLUMNS:
            errors.append(f"{name}:1: {k}: the input already has this output column; rename or drop it")
    missing = [c for c in INPUT_COLUMNS if c not in index]
    if missing:
        found = ", ".join(repr(h.strip()) for h in header) or "none"
        errors.append(f"{name}:1: {', '.join(missing)}: missing required column(s); found: {found}")
    if missing or len(index) < sum(k in INPUT_COLUMNS for k in keys):
        print("\n".join(errors), file=sys.stderr)  # rows cannot be read without their columns
        return 2

    rows: list[list[str]] = []
    weather: list[NoonWeather] = []
    prev_date: tuple[int, int] | None = None
    prev_line = 0
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            errors.append(f"{name}:{line}: row: expected {len(header)} fields as in the header, got {len(row)}")
            prev_date = None
            continue
        cells = {c: row[index[c]] for c in INPUT_COLUMNS}
        parsed: dict[str, float] = {}
        row_errors: list[str] = []
        checks: Sequence[tuple[str, Callable[[str], float]]] = (
            ("month", lambda s: _whole(s, 1, 12, "month")),
            ("day", lambda s: _whole(s, 1, 31, "day")),
            ("temp", lambda s: _ranged(s, None, None, "°C")),
            ("rh", lambda s: _ranged(s, 0, 100, "%")),
            ("wind", lambda s: _ranged(s, 0, None, "km/h")),
            ("rain", lambda s: _ranged(s, 0, None, "mm")),
        )
        for column, check in checks:
            try:
                parsed[column] = check(cells[column])
            except _Rejected as err:
                row_errors.append(f"{name}:{line}: {column}: {err}")
        if "month" in parsed and "day" in parsed:
            month, day = int(parsed["month"]), int(parsed["day"])
            if day > _DAYS_IN_MONTH[month - 1]:
                row_errors.append(f"{name}:{line}: day: month {month} has no day {day}")
            elif prev_date is not None and not _follows(prev_date, (month, day)):
                row_errors.append(
                    f"{name}:{line}: day: {month}-{day} does not follow {prev_date[0]}-{prev_date[1]} "
                    f"(line {prev_line}); rows must be consecutive days, as the codes carry from "
                    f"one day to the next")
        if row_errors:
            errors.extend(row_errors)
            prev_date = None  # do not report the next row for this one's fault
            continue
        prev_date, prev_line = (int(parsed["month"]), int(parsed["day"])), line
        rows.append(row)
        weather.append(NoonWeather(int(parsed["month"]), parsed["temp"], parsed["rh"],
                                   parsed["wind"], parsed["rain"]))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2

    days = fwi_series(weather, args.lat, ffmc0=args.ffmc0, dmc0=args.dmc0, dc0=args.dc0)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([*header, *OUTPUT_COLUMNS])
    for row, d in zip(rows, days, strict=True):
        out.writerow([*row, *(f"{v:.1f}" for v in (d.ffmc, d.dmc, d.dc, d.isi, d.bui, d.fwi))])
    return 0
