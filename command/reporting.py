"""Real-time flight-data reporting: stream positions of vehicles in flight to an endpoint.

Aviation authorities require many operations to report positions while flying (in China,
to the civil UAS integrated management platform). Their protocols differ and are not all
public, so the reporter is pluggable: anything with ``async send(batch)``. The bundled
``HttpJsonReporter`` POSTs ``{"source": ..., "positions": [...]}`` as JSON; a deployment
adds the authority's own adapter. Positions are buffered (bounded) while the endpoint is
unreachable and sent when it answers again, oldest first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .events import EventBus

log = logging.getLogger("command.reporting")

FIELDS = ("name", "system_id", "lon", "lat", "alt_amsl_m", "alt_rel_m", "heading_deg", "groundspeed_mps",
          "incident_id")


class FlightDataReporter(Protocol):
    async def send(self, batch: list[dict[str, Any]]) -> None:
        """Deliver a batch of positions or raise."""


class HttpJsonReporter:
    """POST batches as JSON with an optional bearer token; any non-2xx answer is a failure."""

    def __init__(self, url: str, *, source: str, token: str | None = None, timeout_s: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url, self._source = url, source
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    async def send(self, batch: list[dict[str, Any]]) -> None:
        response = await self._client.post(self._url, json={"source": self._source, "positions": batch})
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(slots=True)
class ReporterStats:
    sent: int = 0
    batches: int = 0
    failures: int = 0
    dropped: int = 0


async def run_reporter(bus: EventBus, reporter: FlightDataReporter, *, period_s: float = 1.0,
                       max_buffer: int = 50_000, stats: ReporterStats | None = None,
                       sleep: Callable[[float], Any] = asyncio.sleep) -> None:
    """Every ``period_s``, send the positions of armed vehicles seen since the last batch."""
    stats = stats if stats is not None else ReporterStats()
    sub = bus.subscribe(maxsize=max_buffer, kinds=frozenset({"vehicle.telemetry"}))
    pending: deque[dict[str, Any]] = deque()
    failing = False
    try:
        while True:
            await sleep(period_s)
            while not sub.queue.empty():
                event = sub.queue.get_nowait()
                if event.data.get("armed") and event.data.get("lon") is not None:
                    if len(pending) == max_buffer:
                        pending.popleft()
                        stats.dropped += 1
                    pending.append({"time": event.time.isoformat(), **{k: event.data.get(k) for k in FIELDS}})
            if not pending:
                continue
            batch = list(pending)
            try:
                await reporter.send(batch)
            except Exception as err:  # the endpoint's failure must not stop reporting
                stats.failures += 1
                if not failing:
                    log.warning("flight-data report failed (%s); keeping %d positions", err, len(batch))
                failing = True
                continue
            if failing:
                log.info("flight-data reporting recovered")
                failing = False
            for _ in batch:
                pending.popleft()
            stats.sent += len(batch)
            stats.batches += 1
    finally:
        bus.unsubscribe(sub)
