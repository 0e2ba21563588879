"""Batched writes of accepted readings: one transaction for many MQTT messages.

Ingest hands each message's readings to ``submit``; ``run`` waits a moment (``linger_s``)
after the first message so that others can join it, drains what has queued into one
``Store.add_readings`` call, and then hands the stored batch on (assessment, live
events). One transaction per message would cap ingest at the store's commit rate. The queue is bounded: when the store falls behind,
``submit`` waits, which slows the MQTT reader instead of growing memory here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sensors.model import Reading

from .store import Store


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    readings: int = 0
    duplicates: int = 0
    largest_batch: int = 0


class ReadingWriter:
    def __init__(self, store: Store, *, clock: Callable[[], datetime],
                 on_stored: Callable[[Sequence[Reading]], None] | None = None,
                 max_batch: int = 5000, max_pending: int = 1000, linger_s: float = 0.01) -> None:
        self._store = store
        self._clock = clock
        self._on_stored = on_stored
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: asyncio.Queue[Sequence[Reading]] = asyncio.Queue(max_pending)
        self.stats = WriterStats()

    async def submit(self, readings: Sequence[Reading]) -> None:
        """Queue one message's readings (waits while ``max_pending`` messages are queued)."""
        if readings:
            await self._queue.put(readings)

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            batch = list(await self._queue.get())
            await asyncio.sleep(self._linger_s)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.extend(self._queue.get_nowait())
            self.flush(batch)

    def flush(self, batch: Sequence[Reading]) -> None:
        inserted = self._store.add_readings(batch, received_at=self._clock())
        self.stats.batches += 1
        self.stats.readings += inserted
        self.stats.duplicates += len(batch) - inserted
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        if self._on_stored is not None:
            self._on_stored(batch)
