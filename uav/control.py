"""Who controls which vehicle, and fleet-wide commands (RTL all, hold all in an area).

Ownership: one operator controls a vehicle at a time; everyone may watch it. A lease is
taken with ``fleet.control(name, operator)`` (an async context manager, or
``acquire``/``release``); commands through ``fleet.as_operator(name, operator)`` are
refused with :class:`NotInControl` (naming the holder) unless that operator holds the
lease. Taking a lease from another operator needs ``force=True`` and is logged.

The registry is process-local now; :class:`LeaseStore` is the seam for a database lease
shared by several replicas (DESIGN "Scale"): every call is async and a lease carries a
token and an optional expiry, so a store can implement compare-and-set on (vehicle,
token) and expire leases of a replica that died.

Fleet commands (``rtl_all``, ``hold_all_in``) run on every vehicle at once, each under
its own deadline, and return one :class:`FleetOutcome` per vehicle: one vehicle's
failure never raises or stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from shapely import Polygon, contains_xy

from uav.errors import UavError, VehicleError, VehicleUnavailable

if TYPE_CHECKING:
    from uav.vehicle import Vehicle

__all__ = ["NotInControl", "ControlLease", "LeaseStore", "LocalLeases", "OperatorVehicle",
           "FleetOutcome", "FleetControlMixin", "WATCH_ONLY"]

log = logging.getLogger(__name__)

# Per-vehicle deadline of a fleet command: a mode change is a COMMAND_ACK (3 tries of
# 1.5 s) plus its HEARTBEAT confirmation (3 s), twice for a fallback mode.
FLEET_COMMAND_TIMEOUT_S: Final = 20.0

# Vehicle members a watcher may use: telemetry and reads that change nothing on board.
WATCH_ONLY: Final = frozenset({
    "state", "vehicle_type", "name", "system_id", "telemetry", "wait_for", "wait_ready",
    "heard_within", "param_cache", "download_mission", "download_fence", "download_rally",
    "get_param", "get_all_params",
})


class NotInControl(VehicleError):
    """A command from an operator who does not hold the vehicle's lease."""

    def __init__(self, message: str, *, vehicle: str, operator: str,
                 holder: str | None) -> None:
        super().__init__(message)
        self.vehicle = vehicle
        self.operator = operator
        self.holder = holder


@dataclass(frozen=True, slots=True)
class ControlLease:
    """One operator's control of one vehicle."""

    vehicle: str
    operator: str
    token: str
    acquired_at: datetime
    expires_at: datetime | None = None  # None: until released (process-local registry)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class LeaseStore(Protocol):
    """Where leases live: process memory now, a database row per vehicle later."""

    async def get(self, vehicle: str) -> ControlLease | None: ...

    async def put(self, lease: ControlLease, *, replaces: str | None) -> bool:
        """Store ``lease`` if the current token is ``replaces`` (None: no lease); CAS."""
        ...

    async def delete(self, vehicle: str, token: str) -> bool: ...


class LocalLeases:
    """Process-local :class:`LeaseStore` (a dict; compare-and-set by token)."""

    def __init__(self) -> None:
        self._leases: dict[str, ControlLease] = {}

    async def get(self, vehicle: str) -> ControlLease | None:
        return self._leases.get(vehicle)

    async def put(self, lease: ControlLease, *, replaces: str | None) -> bool:
        current = self._leases.get(lease.vehicle)
        if (current.token if current else None) != replaces:
            return False
        self._leases[lease.vehicle] = lease
        return True

    async def delete(self, vehicle: str, token: str) -> bool:
        current = self._leases.get(vehicle)
        if current is None or current.token != token:
            return False
        del self._leases[vehicle]
        return True


@dataclass(frozen=True, slots=True)
class FleetOutcome:
    """What a fleet command did to one vehicle."""

    vehicle: str
    ok: bool
    action: str                    # "RTL", "BRAKE", "HOLD", ... or "" when skipped
    skipped: str = ""              # why nothing was sent (disarmed, outside the area)
    error: UavError | None = None  # the typed error when not ok

    def to_dict(self) -> dict[str, Any]:
        return {"vehicle": self.vehicle, "ok": self.ok, "action": self.action,
                "skipped": self.skipped,
                "error": None if self.error is None else {
                    "type": type(self.error).__name__, "message": str(self.error)}}


class OperatorVehicle:
    """A vehicle as one operator sees it: watch freely, command only with the lease."""

    def __init__(self, vehicle: Vehicle, operator: str,
                 check: Callable[[str, str], Awaitable[None]]) -> None:
        self._vehicle = vehicle
        self._operator = operator
        self._check = check

    @property
    def operator(self) -> str:
        return self._operator

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._vehicle, name)
        if name in WATCH_ONLY or not inspect.iscoroutinefunction(attr):
            if name not in WATCH_ONLY and callable(attr) and not name.startswith("_"):
                # a plain method that sends (goto): checked synchronously is impossible
                # with an async store, so it is wrapped as a coroutine
                async def checked_sync(*args: Any, **kwargs: Any) -> Any:
                    await self._check(self._vehicle.name, self._operator)
                    return attr(*args, **kwargs)
                return checked_sync
            return attr

        async def checked(*args: Any, **kwargs: Any) -> Any:
            await self._check(self._vehicle.name, self._operator)
            return await attr(*args, **kwargs)
        return checked


class FleetControlMixin:
    """Ownership and fleet-wide commands for :class:`uav.fleet.Fleet`."""

    _lease_store: LeaseStore | None = None
    _lease_clock: Callable[[], datetime] | None = None

    # provided by Fleet
    entries: tuple[Any, ...]
    vehicle: Callable[[str], Vehicle]

    def use_lease_store(self, store: LeaseStore, *,
                        clock: Callable[[], datetime] | None = None) -> None:
        """Back ownership by ``store`` (default: process-local) and ``clock`` (aware UTC)."""
        self._lease_store = store
        self._lease_clock = clock

    @property
    def leases(self) -> LeaseStore:
        if self._lease_store is None:
            self._lease_store = LocalLeases()
        return self._lease_store

    def _now(self) -> datetime:
        return (self._lease_clock or (lambda: datetime.now(UTC)))()

    def _known(self, name: str) -> None:
        if name not in {e.name for e in self.entries}:
            raise VehicleUnavailable(f"no vehicle {name!r} in the fleet")

    # ---- ownership -----------------------------------------------------------------------

    async def controller(self, name: str) -> ControlLease | None:
        """The live lease on ``name`` (expired leases count as none)."""
        lease = await self.leases.get(name)
        return None if lease is None or lease.expired(self._now()) else lease

    async def acquire(self, name: str, operator: str, *, force: bool = False,
                      ttl_s: float | None = None) -> ControlLease:
        """Take control of ``name``; NotInControl if another operator holds it and not
        ``force``. The holder asking again gets its lease back (renewed if ``ttl_s``)."""
        self._known(name)
        if not operator.strip():
            raise ValueError("operator must be a non-empty identity")
        now = self._now()
        current = await self.leases.get(name)
        live = current if current is not None and not current.expired(now) else None
        expires = now + timedelta(seconds=ttl_s) if ttl_s is not None else None
        if live is not None and live.operator == operator:
            lease = replace(live, expires_at=expires) if ttl_s is not None else live
        else:
            if live is not None and not force:
                raise NotInControl(f"{name}: controlled by {live.operator} since "
                                   f"{live.acquired_at.isoformat()}; {operator} may watch, "
                                   f"or take over explicitly", vehicle=name,
                                   operator=operator, holder=live.operator)
            if live is not None:
                log.warning("%s: control taken over by %s from %s", name, operator,
                            live.operator)
            lease = ControlLease(name, operator, uuid.uuid4().hex, now, expires)
        if not await self.leases.put(lease, replaces=current.token if current else None):
            holder = await self.leases.get(name)
            raise NotInControl(f"{name}: control changed hands meanwhile",
                               vehicle=name, operator=operator,
                               holder=holder.operator if holder else None)
        if live is None or live.operator != operator:
            log.info("%s: controlled by %s", name, operator)
        return lease

    async def release(self, lease: ControlLease) -> bool:
        """Give control back; False if the lease was already taken over or released."""
        released = await self.leases.delete(lease.vehicle, lease.token)
        if released:
            log.info("%s: released by %s", lease.vehicle, lease.operator)
        return released

    @contextlib.asynccontextmanager
    async def control(self, name: str, operator: str, *,
                      force: bool = False) -> AsyncIterator[OperatorVehicle]:
        """``async with fleet.control("uav-1", "dispatcher:li") as v: await v.rtl()``."""
        lease = await self.acquire(name, operator, force=force)
        try:
            yield self.as_operator(name, operator)
        finally:
            await self.release(lease)

    async def check_control(self, name: str, operator: str) -> None:
        """NotInControl unless ``operator`` holds the live lease on ``name``."""
        lease = await self.controller(name)
        if lease is None or lease.operator != operator:
            holder = lease.operator if lease else None
            who = f"controlled by {holder}" if holder else "not controlled by anyone"
            raise NotInControl(f"{name}: command from {operator} refused: {who}"
                               f"{'' if holder else ' (take control first)'}",
                               vehicle=name, operator=operator, holder=holder)

    def as_operator(self, name: str, operator: str) -> OperatorVehicle:
        """The vehicle as ``operator`` sees it (VehicleUnavailable if not connected)."""
        return OperatorVehicle(self.vehicle(name), operator, self.check_control)

    # ---- fleet commands ------------------------------------------------------------------

    async def rtl_all(self, *, operator: str | None = None, force: bool = False,
                      timeout_s: float = FLEET_COMMAND_TIMEOUT_S) -> dict[str, FleetOutcome]:
        """Every armed vehicle returns to launch (mode RTL). Vehicles another operator
        controls are refused (NotInControl) unless ``force``."""
        async def rtl(v: Vehicle) -> str:
            await v.rtl()
            return "RTL"
        return await self._for_each(rtl, lambda v: "" if v.state.armed else "disarmed",
                                    operator=operator, force=force, timeout_s=timeout_s,
                                    what="RTL all")

    async def hold_all_in(self, polygon_lonlat: Sequence[tuple[float, float]], *,
                          operator: str | None = None, force: bool = False,
                          timeout_s: float = FLEET_COMMAND_TIMEOUT_S) -> dict[str, FleetOutcome]:
        """Every armed vehicle inside the polygon (WGS84 lon/lat ring) stops and holds:
        copter BRAKE (else LOITER), boat HOLD."""
        area = Polygon(polygon_lonlat)
        if not area.is_valid or area.area == 0:
            raise ValueError("polygon_lonlat must be a valid lon/lat ring of 3+ points")

        def skip(v: Vehicle) -> str:
            t = v.state
            if not t.armed:
                return "disarmed"
            if not (math.isfinite(t.lon_deg) and math.isfinite(t.lat_deg)):
                return "position unknown"
            return "" if contains_xy(area, t.lon_deg, t.lat_deg) else "outside the area"

        async def hold(v: Vehicle) -> str:
            return await v.brake_or_hold()
        return await self._for_each(hold, skip, operator=operator, force=force,
                                    timeout_s=timeout_s, what="hold all in area")

    async def _for_each(self, act: Callable[[Vehicle], Awaitable[str]],
                        skip: Callable[[Vehicle], str], *, operator: str | None,
                        force: bool, timeout_s: float, what: str) -> dict[str, FleetOutcome]:
        names = [e.name for e in self.entries]
        outcomes: dict[str, FleetOutcome] = {}

        async def one(name: str) -> None:
            try:
                vehicle = self.vehicle(name)
                why = skip(vehicle)
                if why:
                    outcomes[name] = FleetOutcome(name, True, "", skipped=why)
                    return
                lease = await self.controller(name)
                if lease is not None and operator is not None and lease.operator != operator:
                    if not force:
                        raise NotInControl(f"{name}: {what} from {operator} refused: "
                                           f"controlled by {lease.operator}", vehicle=name,
                                           operator=operator, holder=lease.operator)
                    log.warning("%s: %s by %s overrides %s's control", name, what, operator,
                                lease.operator)
                async with asyncio.timeout(timeout_s):
                    action = await act(vehicle)
                outcomes[name] = FleetOutcome(name, True, action)
            except UavError as err:
                outcomes[name] = FleetOutcome(name, False, "", error=err)
            except TimeoutError:
                outcomes[name] = FleetOutcome(name, False, "", error=VehicleUnavailable(
                    f"{name}: {what}: no result within {timeout_s:g} s"))

        async with asyncio.TaskGroup() as tg:
            for name in names:
                tg.create_task(one(name), name=f"{what} {name}")
        failed = [n for n, o in outcomes.items() if not o.ok]
        log.info("%s by %s: %d vehicles, %d failed%s", what, operator or "-", len(names),
                 len(failed), f" ({', '.join(failed)})" if failed else "")
        return {name: outcomes[name] for name in names}
