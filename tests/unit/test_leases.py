"""Vehicle control leases in the database: compare-and-set on the token, shared by replicas."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from command.store import Store
from command.store.leases import SqlLeases
from uav.control import ControlLease

T = datetime(2026, 7, 10, tzinfo=timezone.utc)


async def test_one_operator_at_a_time_across_two_replicas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    a, b = Store(url), Store(url)  # two processes' stores on one database
    try:
        la, lb = SqlLeases(a), SqlLeases(b)
        first = ControlLease("UAV-1", "wang", "t1", T)
        assert await la.put(first, replaces=None)
        assert not await lb.put(ControlLease("UAV-1", "li", "t2", T), replaces=None)  # already held
        assert (await lb.get("UAV-1")) == first
        assert not await lb.put(ControlLease("UAV-1", "li", "t2", T), replaces="wrong")
        assert await lb.put(ControlLease("UAV-1", "li", "t2", T), replaces="t1")  # forced takeover
        assert not await la.delete("UAV-1", "t1")  # wang's token is stale
        assert [x.operator for x in la.all()] == ["li"]
        assert await la.delete("UAV-1", "t2")
        assert await lb.get("UAV-1") is None
    finally:
        a.close()
        b.close()
