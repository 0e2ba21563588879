"""asyncio helpers shared by the MQTT clients of the project."""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelling"]


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed.

    Python 3.11's ``asyncio.wait_for`` (which aiomqtt awaits publishes and SUBACKs with)
    returns normally when its future completes in the same step as the cancellation, losing
    the CancelledError; a loop around it would then never stop. Call it after such an await.
    Only in a task that owns no TaskGroup: in 3.11 a TaskGroup whose child failed can leave
    its parent's cancelling count up.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
