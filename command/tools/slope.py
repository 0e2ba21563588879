"""``yingji slope``: landslide displacement CSV in, velocity, tangent angle and warning level out.

The science lives in ``command.risk.landslide``; this module reads and checks the file and
writes the result.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from command.tools import finite, number_option
from command.risk.landslide import (
    FailureForecast,
    LandslideError,
    assess_tangent_angle,
    displacement_series,
    forecast_failure_time,
    velocities,
)

__all__ = ["add_parser", "run"]

REQUIRED = ("time", "displacement_mm")
OUTPUT = ("velocity_mm_per_day", "tangent_angle_deg", "level")

DESCRIPTION = """\
Landslide displacement monitoring: velocity, improved tangent angle and warning level.

Input: CSV with a header row and the columns (names matched case-insensitively)
  time             ISO 8601 with a UTC offset, e.g. 2024-06-01T08:00:00+08:00 or ...Z;
                   a time without an offset is rejected. Rows must be in strictly
                   increasing time order.
  displacement_mm  cumulative displacement of the monitoring point, mm.
Other columns are passed through unchanged, in their order.

Output: the input columns, then
  velocity_mm_per_day  velocity of the interval ending at the row: row i gets
                       (S_i - S_(i-n)) / (t_i - t_(i-n)) with n = --smooth (default 1: the
                       interval from the previous row). The velocity belongs to the
                       midpoint of that interval; it is written on the row that closes it,
                       so the first n rows are empty. 4 decimals.
  tangent_angle_deg    improved tangent angle alpha = arctan(v / v0), degrees, 2 decimals
                       (Xu Qiang et al. 2009, Geological Bulletin of China 28(4):501-505).
  level                warning level after persistence: none, blue, yellow, orange, red.
                       Stages: alpha <= 45 constant velocity (blue while the slope moves
                       forward), 45 < alpha < 80 initial acceleration (yellow),
                       80 <= alpha < 85 medium acceleration (orange), alpha >= 85
                       imminent failure (red, only while the acceleration is positive and
                       rising; orange otherwise). A level is raised only after it has held
                       for --persistence consecutive rows and lowered only after the angle
                       has stayed 2 degrees below its boundary for as many rows.

v0, the velocity of the constant-velocity stage, is --v0-mm-per-day; without it, v0 is
the least-squares rate over the record's first 30 days, at most its first third.

With --forecast, one line instead of the CSV: the failure time by the inverse-velocity
method (Fukuzono 1985, linear case), ISO 8601 in UTC, or "not accelerating". The fit
uses the trailing run of rising (smoothed) velocities, at least 5 of them, with r2 >= 0.8.

Bad rows are reported on stderr as <file>:<line>: <column>: <reason>, with nothing on
stdout and exit status 2. The levels are the system's assessment, not an official warning.
"""


_positive_float = number_option(positive=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``slope`` sub-command on an argparse sub-parsers object; set_defaults(func=run)."""
    p = sub.add_parser("slope", help="landslide displacement CSV: velocity, tangent angle, warning level",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="CSV file, or - for standard input")
    p.add_argument("--v0-mm-per-day", type=_positive_float, default=None, metavar="X",
                   help="velocity of the constant-velocity stage, mm/day (default: estimated from the "
                        "record's opening, see above)")
    p.add_argument("--persistence", type=_positive_int, default=2, metavar="N",
                   help="rows a level must hold before it is raised or lowered (default 2)")
    p.add_argument("--smooth", type=_positive_int, default=1, metavar="N",
                   help="velocity over the last N intervals instead of the last one (default 1)")
    p.add_argument("--forecast", action="store_true",
                   help="print the inverse-velocity failure time (or 'not accelerating') instead of the CSV")
    p.set_defaults(func=run)
    return p


@contextmanager
def _open(path: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdin
    else:
        with open(path, newline="", encoding="utf-8-sig") as f:
            yield f


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {text!r} has no UTC offset (add e.g. +08:00 or Z)")
    return t


_parse_mm = finite


def run(args: argparse.Namespace) -> int:
    """Read args.input (a path, or '-' for stdin), write CSV to sys.stdout, return the exit code."""
    name = "<stdin>" if args.input == "-" else args.input
    try:
        with _open(args.input) as f:
            rows = list(_numbered(csv.reader(f)))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        print(f"{name}: cannot read: {err}", file=sys.stderr)
        return 2
    if not rows:
        print(f"{name}:1: header: empty file, expected a header row with {', '.join(REQUIRED)}", file=sys.stderr)
        return 2
    _, header = rows[0]
    keys = [h.strip().lower() for h in header]
    errors: list[str] = []
    for out in OUTPUT:
        if out in keys:
            errors.append(f"{name}:1: {out}: output column already in the input")
    for req in REQUIRED:
        if keys.count(req) > 1:
            errors.append(f"{name}:1: {req}: column appears {keys.count(req)} times")
    missing = [r for r in REQUIRED if r not in keys]
    if missing:
        found = ", ".join(h.strip() for h in header) or "(none)"
        errors.append(f"{name}:1: {', '.join(missing)}: missing required column(s); found: {found}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2
    i_time, i_disp = keys.index("time"), keys.index("displacement_mm")

    times: list[datetime] = []
    disp: list[float] = []
    data: list[list[str]] = []
    last: tuple[int, datetime] | None = None
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # a blank line holds no reading
        if len(row) != len(header):
            errors.append(f"{name}:{line}: row: {len(row)} fields, the header has {len(header)}")
            continue
        t: datetime | None = None
        try:
            t = _parse_time(row[i_time].strip())
        except ValueError as err:
            errors.append(f"{name}:{line}: time: {err}")
        if t is not None and last is not None and t <= last[1]:
            what = "the same as" if t == last[1] else "earlier than"
            errors.append(f"{name}:{line}: time: {row[i_time].strip()} is {what} the time on line {last[0]}; "
                          f"rows must be in increasing time order")
            t = None
        elif t is not None:
            last = (line, t)
        try:
            d = _parse_mm(row[i_disp].strip())
        except ValueError as err:
            errors.append(f"{name}:{line}: displacement_mm: {err}")
            continue
        if t is not None:
            times.append(t)
            disp.append(d)
            data.append(row)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2
    if not data:
        print(f"{name}:1: displacement_mm: no readings after the header", file=sys.stderr)
        return 2

    try:
        series = displacement_series(times, disp)
        if args.forecast:
            result = forecast_failure_time(velocities(series, smooth_n=args.smooth))
            if isinstance(result, FailureForecast):
                when = result.failure_time.astimezone(UTC).replace(microsecond=0)
                print(when.isoformat().replace("+00:00", "Z"))
            else:
                print("not accelerating")
            return 0
        if len(series) <= args.smooth:
            velocity, angle, level = {}, {}, {}
        else:
            a = assess_tangent_angle(series, v0_mm_per_day=args.v0_mm_per_day, smooth_n=args.smooth,
                                     persistence=args.persistence)
            end = a.velocities.end_index.tolist()
            velocity = dict(zip(end, a.velocities.velocity_mm_per_day.tolist(), strict=True))
            angle = dict(zip(end, a.angle_deg.tolist(), strict=True))
            level = dict(zip(end, (lv.colour for lv in a.levels), strict=True))
    except LandslideError as err:
        print(f"{name}: displacement_mm: {err}", file=sys.stderr)
        return 2

    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow([*header, *OUTPUT])
    for i, row in enumerate(data):
        w.writerow([*row,
                    f"{velocity[i]:.4f}" if i in velocity else "",
                    f"{angle[i]:.2f}" if i in angle else "",
                    level.get(i, "")])
    return 0


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Rows with the file line on which each starts (header = line 1)."""
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1
