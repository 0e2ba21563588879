"""Time shapes shared by the scripts, and the crossing search that turns a script into times.

Pure: numbers in, numbers out. Times are seconds or hours after the scenario start.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["first_crossing", "ramp", "smoothstep", "wave"]


def smoothstep(x: float) -> float:
    """0 before 0, 1 after 1, 3x² − 2x³ between: a rise with zero slope at both ends.

    >>> smoothstep(0.5)
    0.5
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def ramp(h: float, start_h: float, rise_h: float) -> float:
    """``smoothstep`` from ``start_h`` over ``rise_h`` hours (a step at ``start_h`` when ``rise_h`` is 0)."""
    if rise_h <= 0.0:
        return 1.0 if h >= start_h else 0.0
    return smoothstep((h - start_h) / rise_h)


def wave(t_s: float, period_s: float, amplitude: float, phase: float = 0.0) -> float:
    """A sine of ``period_s``: the small, regular variability a working sensor shows."""
    return amplitude * math.sin(2.0 * math.pi * t_s / period_s + phase)


def first_crossing(f: Callable[[float], float], threshold: float, start_s: float, end_s: float, *,
                   step_s: float = 60.0, tol_s: float = 0.5) -> float | None:
    """The first time in [start_s, end_s] at which ``f`` reaches ``threshold`` (≥), or None.

    Scans at ``step_s`` and bisects the first step that crosses, to ``tol_s``: exact for the
    scripts' shapes, which do not dip above and back below a threshold within one step.
    """
    if f(start_s) >= threshold:
        return start_s
    t0 = start_s
    while t0 < end_s:
        t1 = min(t0 + step_s, end_s)
        if f(t1) >= threshold:
            lo, hi = t0, t1
            while hi - lo > tol_s:
                mid = (lo + hi) / 2.0
                if f(mid) >= threshold:
                    hi = mid
                else:
                    lo = mid
            return hi
        t0 = t1
    return None
