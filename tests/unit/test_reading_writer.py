import asyncio
from datetime import datetime, timedelta, timezone

from command.store import Store
from command.store.writer import ReadingWriter
from sensors.model import Reading

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)


def _r(i: int, sensor: str = "g1") -> Reading:
    return Reading(sensor, "level", 180.0 + i / 100, "m", T0 + timedelta(minutes=i))


async def test_messages_queued_together_are_written_in_one_transaction(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'y.db'}")
    stored: list[list[Reading]] = []
    writer = ReadingWriter(store, clock=lambda: T0, on_stored=lambda b: stored.append(list(b)))
    for i in range(10):
        await writer.submit([_r(i)])
    await writer.submit([_r(3)])  # a duplicate: stored once, counted
    task = asyncio.create_task(writer.run())
    try:
        async with asyncio.timeout(5):
            while writer.stats.batches == 0:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert writer.stats.batches == 1 and writer.stats.largest_batch == 11
    assert writer.stats.readings == 10 and writer.stats.duplicates == 1
    assert [r.value for r in stored[0]][:3] == [180.0, 180.01, 180.02]  # arrival order kept
    assert store.count_readings() == 10
    store.close()


async def test_submit_waits_when_the_store_falls_behind(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'y.db'}")
    writer = ReadingWriter(store, clock=lambda: T0, max_pending=2)
    await writer.submit([_r(0)])
    await writer.submit([_r(1)])
    blocked = asyncio.create_task(writer.submit([_r(2)]))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # bounded: the third message waits for the writer
    task = asyncio.create_task(writer.run())
    try:
        async with asyncio.timeout(5):
            await blocked
            while store.count_readings() < 3:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    store.close()
