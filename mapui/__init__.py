"""Web front-end (static files served by the command service)."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
