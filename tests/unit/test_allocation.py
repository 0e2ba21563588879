"""Allocation: nearest able vehicle, boats only on water, battery reserve."""

from __future__ import annotations

from dataclasses import replace

from command.dispatch.allocation import Candidate, allocate, choose_vehicle, round_trip_pct

TARGET = (106.80, 29.80)
NEAR = Candidate("UAV-1", "copter", 106.81, 29.80, 90.0, True, 12.0, 1800.0)  # ~1 km
FAR = Candidate("UAV-2", "copter", 106.85, 29.80, 90.0, True, 12.0, 1800.0)  # ~5 km
BOAT = Candidate("USV-1", "boat", 106.805, 29.80, 90.0, True, 5.0, 7200.0)  # ~0.5 km


def test_nearest_copter_for_land() -> None:
    assert choose_vehicle(TARGET, False, [FAR, NEAR, BOAT]).vehicle is NEAR
    a = allocate(TARGET, False, [FAR, NEAR, BOAT])
    assert a.ranked == (NEAR, FAR)
    assert ("USV-1", "a boat cannot reach a target on land") in a.rejected
    assert 900 < a.distance_m < 1100 and a.energy_pct is not None


def test_boat_or_copter_for_water() -> None:
    assert choose_vehicle(TARGET, True, [FAR, NEAR, BOAT]).vehicle is BOAT
    assert choose_vehicle(TARGET, True, [FAR, NEAR]).vehicle is NEAR


def test_unavailable_are_skipped() -> None:
    busy = replace(NEAR, available=False)
    assert choose_vehicle(TARGET, False, [busy, FAR]).vehicle is FAR
    a = allocate(TARGET, False, [busy])
    assert a.vehicle is None and a.reason == "no copter available"
    assert allocate(TARGET, True, [replace(BOAT, available=False)]).reason == "no copter or boat available"
    assert allocate(TARGET, False, [BOAT]).reason == "no copter in the fleet"
    assert allocate(TARGET, False, []).reason == "no copter in the fleet"


def test_battery_reserve() -> None:
    use = round_trip_pct(NEAR, 1000.0)
    just = replace(NEAR, battery_pct=30.0 + use + 0.5)
    short = replace(NEAR, battery_pct=30.0 + use - 2.0)
    assert choose_vehicle(TARGET, False, [just]).vehicle is just
    assert choose_vehicle(TARGET, False, [short, FAR]).vehicle is FAR
    a = allocate(TARGET, False, [short])
    assert a.vehicle is None and "battery" in a.reason and "30 % reserve" in a.reason
    assert "nearest: UAV-1, 1.0 km" in a.reason
    assert "reserve" in dict(a.rejected)["UAV-1"]
    assert choose_vehicle(TARGET, False, [short], reserve_pct=10.0).vehicle is short


def test_far_target_beyond_endurance() -> None:
    far_target = (106.80, 30.10)  # ~33 km: the round trip alone exceeds 30 min at 12 m/s
    assert choose_vehicle(far_target, False, [replace(NEAR, battery_pct=100.0)]).vehicle is None
