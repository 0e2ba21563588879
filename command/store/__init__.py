"""Persistence: SQLAlchemy 2 models and the Store."""

from .store import AlreadyDispatched, NotFound, Store, StoreError

__all__ = ["AlreadyDispatched", "NotFound", "Store", "StoreError"]
