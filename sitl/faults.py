"""Fault injection for the simulated vehicle: a lossy, slow or cut radio link, a fast-draining
battery, commands the vehicle refuses.

A :class:`Faults` object is plain mutable settings that ``SimVehicle`` consults on every
packet it sends or receives and on every tick; change it while the vehicle runs::

    sim = SimVehicle(..., faults=Faults(drop_rx_pct=20, drop_tx_pct=20, seed=7))
    sim.faults.delay_ms = 150
    sim.cut_link(3.0)                          # silent both ways for 3 s (wall clock)
    sim.faults.deny_commands.add(mav.MAV_CMD_NAV_TAKEOFF)   # → COMMAND_ACK DENIED

Packet loss draws from two seeded RNGs (one per direction), so the n-th packet in a
direction is dropped or not as a function of the seed alone: a run is reproducible as far
as the order of packets is. Loss applies to UDP datagrams; TCP is a reliable stream (a
lossy radio under TCP shows as delay), so over TCP only delay and cuts apply.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Faults"]


@dataclass(slots=True)
class Faults:
    """Mutable fault settings of one simulated vehicle (all off by default)."""

    drop_rx_pct: float = 0.0  # % of datagrams from the ground station lost
    drop_tx_pct: float = 0.0  # % of the vehicle's datagrams lost
    delay_ms: float = 0.0  # one-way delay added in each direction
    battery_drain_x: float = 1.0  # battery consumption multiplier
    deny_commands: set[int] = field(default_factory=set)  # MAV_CMD numbers answered DENIED
    lose_acks: dict[int, int] = field(default_factory=dict)  # MAV_CMD → how many of its next ACKs are lost (it is done)
    seed: int = 0
    cut_until_s: float = 0.0  # event-loop time until which the link is cut (see cut_link)
    # Silence after an accepted reboot, wall seconds: a flight controller is back in ~2 s
    # (bootloader wait + init); the ground station sees it in wall time.
    reboot_silent_s: float = 2.0
    _rng_rx: random.Random = field(init=False, repr=False, compare=False)
    _rng_tx: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.check()
        self.reseed(self.seed)

    def check(self) -> None:
        """Raise ValueError for impossible settings."""
        for name in ("drop_rx_pct", "drop_tx_pct"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name} must be 0..100, not {value}")
        if self.delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, not {self.delay_ms}")
        if self.reboot_silent_s < 0:
            raise ValueError(f"reboot_silent_s must be >= 0, not {self.reboot_silent_s}")
        if self.battery_drain_x < 0:
            raise ValueError(f"battery_drain_x must be >= 0, not {self.battery_drain_x}")

    def reseed(self, seed: int) -> None:
        """Restart both loss sequences from ``seed``."""
        self.seed = seed
        # Distinct, seed-derived streams per direction (random.Random(int) is stable
        # across runs and Python processes; hash randomisation does not apply to ints).
        self._rng_rx = random.Random(2 * seed)
        self._rng_tx = random.Random(2 * seed + 1)

    def set_drop_pct(self, pct: float) -> None:
        """The same loss both ways."""
        self.drop_rx_pct = self.drop_tx_pct = pct
        self.check()

    def cut(self, now_s: float) -> bool:
        """True while the link is cut."""
        return now_s < self.cut_until_s

    def drop_rx(self) -> bool:
        """Decide the fate of the next incoming datagram (True: lost)."""
        return self.drop_rx_pct > 0 and self._rng_rx.random() * 100.0 < self.drop_rx_pct

    def drop_tx(self) -> bool:
        """Decide the fate of the next outgoing datagram (True: lost)."""
        return self.drop_tx_pct > 0 and self._rng_tx.random() * 100.0 < self.drop_tx_pct

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000.0
