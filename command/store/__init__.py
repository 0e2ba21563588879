"""Persistence: SQLAlchemy 2 models and the Store."""

from .store import AlreadyDecided, AlreadyDispatched, NotFound, Store, StoreError

__all__ = ["AlreadyDecided", "AlreadyDispatched", "NotFound", "Store", "StoreError"]
