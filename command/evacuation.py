"""People at risk: evacuation zones, shelters, counts, casualties, and the reports the bureau sends
up. (Mixin of ``command.runtime.Service``.)"""

from __future__ import annotations

from datetime import datetime

__all__ = ["Evacuation"]


class Evacuation:
    """Mixin of ``command.runtime.Service``."""

    def _init_evacuation(self) -> None:
        """Called once from ``Service.__init__`` (after the store, bus, clock and district exist)."""

    async def _evacuation_tick(self, now: datetime) -> None:
        """Called about every second of service time by the service's linkage loop."""
