"""HTTP routes of evacuation zones and incident reports (``command.evacuation``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def add_routes(app: FastAPI, service: Any, auth: Any) -> None:
    """Register the routes on ``app``; ``auth`` is the dependency that requires the API token."""
