"""Analysis tools people run on their own files: ``yingji fwi``, ``yingji slope``, ``yingji flood``.

Each module registers one sub-command (``add_parser``) and runs it (``run``): CSV in (header
row, extra columns passed through), CSV out on stdout, every bad row reported on stderr.
"""

from __future__ import annotations



import argparse
import math
from collections.abc import Callable

__all__ = ["finite", "number_option"]


def finite(text: str) -> float:
    """A CSV cell or an option as a finite number; ValueError says what is wrong."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"not a number: {s!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {s!r}")
    return value


def number_option(*, lo: float | None = None, hi: float | None = None, positive: bool = False
                  ) -> Callable[[str], float]:
    """An argparse ``type``: a finite number, optionally positive or within [lo, hi]."""
    def parse(text: str) -> float:
        try:
            value = finite(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"{lo:g}..{hi:g}" if lo is not None and hi is not None else (
                f">= {lo:g}" if lo is not None else f"<= {hi:g}")
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value
    return parse
