"""``yingji flood``: hydrological signal, rate of rise and hours to the thresholds of a gauge's levels."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from command.tools import finite, number_option
from command.risk.flood import (
    DEFAULT_HORIZON_H,
    DEFAULT_WINDOW_H,
    RiverThresholds,
    hours_to_level,
    rise_rates_m_per_h,
)

__all__ = ["add_parser", "run"]

REQUIRED = ("time", "level_m")
OUTPUT = ("signal", "rise_m_per_h", "hours_to_warning", "hours_to_guaranteed")

DESCRIPTION = """\
Hydrological (flood) signal of river gauge levels, with the rate of rise and a trend forecast.

Input: CSV with a header row and the columns (names matched case-insensitively)
  time      ISO 8601 time, e.g. 2020-08-19T06:00:00+08:00 (no offset: read as UTC;
            only differences between times matter); rows in strictly increasing time
  level_m   water level, metres, in the gauge's own datum (the thresholds' datum)
Other columns are passed through unchanged.

Output (CSV on stdout): the input columns, then
  signal               none | blue | yellow | orange | red, after the Ministry of Water
                       Resources measures (2013): blue within --approach metres below the
                       warning level, yellow at warning, orange at guaranteed, red at the
                       historical maximum
  rise_m_per_h         least-squares slope of the level over the trailing --window-h hours
                       (readings in [t - window, t], this row included; at least 2), m/h,
                       3 decimals
  hours_to_warning     hours until the warning / guaranteed level if the level keeps
  hours_to_guaranteed  rising at rise_m_per_h (linear extrapolation), 2 decimals

An empty cell means "not applicable": too few readings for a slope, level not rising,
already at or above the level, or not reached within --horizon-h hours.
These are system assessments, not official warning signals.
Exit status: 0 on success; 2 on bad options or bad rows (one line per problem on stderr,
<file>:<line>: <column>: <reason>, and nothing on stdout).
"""


_number = number_option()
_non_negative = number_option(lo=0.0)
_positive = number_option(positive=True)


def add_parser(sub) -> argparse.ArgumentParser:  # noqa: ANN001  (argparse's private sub-parsers type)
    """Register the ``flood`` sub-command on an argparse sub-parsers object; set_defaults(func=run)."""
    p = sub.add_parser("flood", help="flood signal, rate of rise and hours to thresholds of river levels (CSV)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="CSV file, or - for standard input")
    p.add_argument("--warning", type=_number, required=True, metavar="M",
                   help="warning level (警戒水位), metres in the gauge's datum")
    p.add_argument("--guaranteed", type=_number, required=True, metavar="M",
                   help="guaranteed level (保证水位), metres; above --warning")
    p.add_argument("--historic-max", type=_number, default=None, metavar="M",
                   help="historical maximum level, metres; at least --guaranteed (default: none, no red)")
    p.add_argument("--approach", type=_non_negative, default=1.0, metavar="M",
                   help="blue band below the warning level, metres (default 1.0; 0 = no blue)")
    p.add_argument("--window-h", type=_positive, default=DEFAULT_WINDOW_H, metavar="H",
                   help=f"trailing window of the rate of rise, hours (default {DEFAULT_WINDOW_H:g})")
    p.add_argument("--horizon-h", type=_positive, default=DEFAULT_HORIZON_H, metavar="H",
                   help=f"longest forecast reported, hours (default {DEFAULT_HORIZON_H:g})")
    p.set_defaults(func=run, flood_parser=p)
    return p


def _thresholds(args: argparse.Namespace) -> RiverThresholds:
    """Options checked together; a bad combination is an argparse error (exit 2)."""
    historic = math.inf if args.historic_max is None else args.historic_max
    problem = None
    if not args.warning < args.guaranteed:
        problem = f"--warning ({args.warning:g}) must be below --guaranteed ({args.guaranteed:g})"
    elif not args.guaranteed <= historic:
        problem = f"--historic-max ({historic:g}) must not be below --guaranteed ({args.guaranteed:g})"
    if problem is not None:
        parser = getattr(args, "flood_parser", None)
        if parser is not None:
            parser.error(problem)  # exits 2 with the usage line
        print(f"yingji flood: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return RiverThresholds(warning_m=args.warning, guaranteed_m=args.guaranteed,
                           historical_max_m=historic, approach_m=args.approach)


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _read(stream: TextIO, name: str) -> tuple[list[str], list[list[str]], list[int]] | list[str]:
    """(header, rows, time/level columns) or the list of error lines."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return [f"{name}:1: header: empty file, expected a header with {', '.join(REQUIRED)}"]
    keys = [h.strip().lower() for h in header]
    errors = []
    taken = [c for c in OUTPUT if c in keys]
    if taken:
        errors.append(f"{name}:1: {', '.join(taken)}: output column(s) already in the input")
    missing = [c for c in REQUIRED if c not in keys]
    if missing:
        found = ", ".join(h.strip() for h in header) or "none"
        errors.append(f"{name}:1: {', '.join(missing)}: missing required column(s); found: {found}")
    dup = sorted({k for k in keys if k in REQUIRED and keys.count(k) > 1})
    if dup:
        errors.append(f"{name}:1: {', '.join(dup)}: column appears more than once")
    if errors:
        return errors
    rows: list[list[str]] = []
    lines: list[int] = []
    last = reader.line_num  # a quoted field may span lines: a row starts after the previous one
    for row in reader:
        start, last = last + 1, reader.line_num
        if row:  # skip blank lines
            rows.append(row)
            lines.append(start)
    return header, rows, lines


def run(args: argparse.Namespace) -> int:
    """Read args.input (a path, or '-' for stdin), write CSV to sys.stdout, return the exit code."""
    thresholds = _thresholds(args)
    name = "<stdin>" if args.input == "-" else args.input
    try:
        if args.input == "-":
            got = _read(sys.stdin, name)
        else:
            with open(args.input, newline="", encoding="utf-8-sig") as f:
                got = _read(f, name)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        print(f"yingji flood: error: cannot read {name}: {err}", file=sys.stderr)
        return 2
    if isinstance(got, list):
        for e in got:
            print(e, file=sys.stderr)
        return 2
    header, rows, lines = got
    keys = [h.strip().lower() for h in header]
    i_time, i_level = keys.index("time"), keys.index("level_m")
    time_col, level_col = header[i_time].strip(), header[i_level].strip()

    errors: list[str] = []
    times: list[datetime] = []
    levels: list[float] = []
    prev: datetime | None = None
    for row, line in zip(rows, lines, strict=True):
        where = f"{name}:{line}"
        if len(row) != len(header):
            errors.append(f"{where}: row: {len(row)} fields, the header has {len(header)}")
            continue
        t_text, h_text = row[i_time].strip(), row[i_level].strip()
        t = h = None
        if not t_text:
            errors.append(f"{where}: {time_col}: missing value")
        else:
            try:
                t = _parse_time(t_text)
            except ValueError:
                errors.append(f"{where}: {time_col}: not an ISO 8601 time: {t_text!r}")
        if not h_text:
            errors.append(f"{where}: {level_col}: missing value")
        else:
            try:
                h = finite(h_text)
            except ValueError as err:
                errors.append(f"{where}: {level_col}: {err}")
        if t is not None:
            if prev is not None and t <= prev:
                errors.append(f"{where}: {time_col}: {t_text} is not after the previous row's time "
                              f"{prev.isoformat()} (rows must be in increasing time)")
            else:
                prev = t
        times.append(t)  # type: ignore[arg-type]  # only used when there are no errors
        levels.append(h)  # type: ignore[arg-type]
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 2

    rates = rise_rates_m_per_h(times, levels, window_h=args.window_h)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([*header, *OUTPUT])
    for row, level, rate in zip(rows, levels, rates, strict=True):
        rate = float(rate)
        out.writerow([*row, thresholds.signal(level).colour, _fmt(rate, 3),
                      _fmt(hours_to_level(level, rate, thresholds.warning_m, horizon_h=args.horizon_h), 2),
                      _fmt(hours_to_level(level, rate, thresholds.guaranteed_m, horizon_h=args.horizon_h), 2)])
    return 0


def _fmt(value: float | None, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return ""
    text = f"{value:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text  # no "-0.000"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool on its own: ``python -m command.tools.flood ...``."""
    parser = argparse.ArgumentParser(prog="yingji")
    add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["flood", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
