"""Errors of the dispatch core."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DispatchError", "PlanRefused"]


class DispatchError(Exception):
    """Base of every error raised by ``command.dispatch``."""


class PlanRefused(DispatchError):
    """A mission plan that would be unsafe or unlawful; ``reasons`` say why (en), ``reasons_zh`` (zh)."""

    def __init__(self, reasons: Sequence[str], reasons_zh: Sequence[str] | None = None) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        self.reasons_zh: tuple[str, ...] = tuple(reasons_zh) if reasons_zh is not None else self.reasons
        super().__init__("plan refused: " + "; ".join(self.reasons))
