"""Cursor-on-Target for TAK clients: incidents and vehicles as CoT events to a TAK server."""

from __future__ import annotations

from typing import Any

__all__ = ["run_tak"]


async def run_tak(service: Any) -> None:
    """Send the service's incidents and vehicles to ``settings.tak_url`` until cancelled (started only when set)."""
