"""Tables of evacuation zones and incident reports (``command.evacuation``)."""

from __future__ import annotations

from .models import Base

__all__ = ["Base"]
