"""Energy model: cruise, wind triangle, climb, hover, boats; the recall rule and the reserve check."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.dispatch.allocation import Candidate, round_trip_pct
from command.dispatch.energy import (
    G_MPS2,
    EnergyModel,
    Flow,
    Leg,
    check_reserve,
    ground_speed_mps,
    leg_energy_pct,
    leg_time_s,
    mission_energy_pct,
    mission_time_s,
    must_turn_back,
    path_legs,
)
from command.dispatch.errors import PlanRefused

COPTER = EnergyModel.copter(12.0, 1800.0)
BOAT = EnergyModel.boat(5.0, 7200.0)


def test_still_air_cruise_is_linear_in_time() -> None:
    # 10.8 km at 12 m/s is 900 s, half of a 1800 s endurance.
    assert mission_energy_pct([Leg(10_800.0, 37.0)], COPTER) == pytest.approx(50.0)
    assert mission_time_s([Leg(10_800.0, 37.0)], COPTER) == pytest.approx(900.0)


def test_boat_round_trip_matches_allocation_estimate() -> None:
    # Same linear-in-time figure as command.dispatch.allocation for a boat when station-keeping
    # draws cruise power (allocation has no copter climb overhead for boats).
    boat = EnergyModel.boat(5.0, 7200.0, hover_ratio=1.0)
    cand = Candidate("USV-1", "boat", 106.6, 29.6, 90.0, True, 5.0, 7200.0)
    legs = [Leg(3000.0, 45.0), Leg(0.0, 0.0, hover_s=60.0), Leg(3000.0, 225.0)]
    assert mission_energy_pct(legs, boat) == pytest.approx(round_trip_pct(cand, 3000.0, loiter_s=60.0))


def test_headwind_costs_more_than_tailwind() -> None:
    wind = Flow.wind_from(5.0, 0.0)  # a northerly: blows toward the south
    north, south = Leg(6000.0, 0.0), Leg(6000.0, 180.0)
    head, tail = leg_energy_pct(north, COPTER, wind), leg_energy_pct(south, COPTER, wind)
    still = leg_energy_pct(north, COPTER)
    assert head > still > tail
    # Analytic: ground speeds 12 - 5 and 12 + 5 m/s.
    assert leg_time_s(north, COPTER, wind) == pytest.approx(6000.0 / 7.0)
    assert leg_time_s(south, COPTER, wind) == pytest.approx(6000.0 / 17.0)
    assert head == pytest.approx(100.0 * 6000.0 / 7.0 / 1800.0)


def test_crosswind_needs_a_crab_angle_and_slows_the_leg() -> None:
    wind = Flow.wind_from(6.0, 270.0)  # a westerly, across a northbound track
    gs, crab = ground_speed_mps(12.0, 0.0, wind)
    assert float(gs) == pytest.approx(math.sqrt(12.0 ** 2 - 6.0 ** 2))
    assert float(crab) == pytest.approx(-30.0)  # heads 30° left, into the wind
    assert leg_energy_pct(Leg(5000.0, 0.0), COPTER, wind) > leg_energy_pct(Leg(5000.0, 0.0), COPTER)


def test_wind_too_strong_to_hold_the_track() -> None:
    across = Flow.wind_from(13.0, 270.0)
    assert float(ground_speed_mps(12.0, 0.0, across)[0]) == 0.0
    assert math.isinf(leg_energy_pct(Leg(1000.0, 0.0), COPTER, across))
    against = Flow.wind_from(12.0, 0.0)
    assert math.isinf(leg_time_s(Leg(1000.0, 0.0), COPTER, against))
    with pytest.raises(PlanRefused) as err:
        check_reserve(mission_energy_pct([Leg(1000.0, 0.0)], COPTER, against), 90.0, 30.0)
    assert "too strong" in err.value.reasons[0] and "风" in err.value.reasons_zh[0]


@given(st.floats(0.0, 11.9), st.floats(0.0, 360.0), st.floats(0.0, 360.0))
def test_wind_never_shortens_a_round_trip(speed: float, toward: float, track: float) -> None:
    flow = Flow(speed, toward)
    out_back = [Leg(4000.0, track), Leg(4000.0, (track + 180.0) % 360.0)]
    assert mission_time_s(out_back, COPTER, flow) >= mission_time_s(out_back, COPTER) * (1 - 1e-12)


def test_climb_costs_more_and_matches_potential_energy() -> None:
    flat, up = Leg(3000.0, 90.0), Leg(3000.0, 90.0, climb_m=100.0)
    assert leg_energy_pct(up, COPTER) > leg_energy_pct(flat, COPTER)
    # Along a 250 s leg the 40 s climb adds no time: the difference is m g h / η only.
    extra_j = COPTER.mass_kg * G_MPS2 * 100.0 / COPTER.climb_efficiency
    assert leg_energy_pct(up, COPTER) - leg_energy_pct(flat, COPTER) == pytest.approx(
        100.0 * extra_j / (COPTER.battery_wh * 3600.0))
    # Vertical take-off: time at the climb speed, hover power, plus the potential energy.
    takeoff = Leg(0.0, 0.0, climb_m=100.0)
    assert leg_time_s(takeoff, COPTER) == pytest.approx(100.0 / COPTER.climb_speed_mps)
    assert leg_energy_pct(takeoff, COPTER) == pytest.approx(
        COPTER.hover_pct_per_s * 40.0 + 100.0 * extra_j / (COPTER.battery_wh * 3600.0))
    # Descending recovers nothing and costs hover time.
    assert leg_energy_pct(Leg(0.0, 0.0, climb_m=-90.0), COPTER) == pytest.approx(COPTER.hover_pct_per_s * 60.0)


def test_hover_draws_hover_power() -> None:
    assert leg_energy_pct(Leg(hover_s=100.0), COPTER) == pytest.approx(100.0 * 1.1 * 100.0 / 1800.0)
    assert leg_energy_pct(Leg(hover_s=100.0), BOAT) == pytest.approx(100.0 * 0.5 * 100.0 / 7200.0)


def test_boat_takes_the_current_and_does_not_climb() -> None:
    current = Flow.current_toward(1.5, 90.0)  # the river sets east
    downstream, upstream = Leg(2000.0, 90.0), Leg(2000.0, 270.0)
    assert leg_time_s(downstream, BOAT, current) == pytest.approx(2000.0 / 6.5)
    assert leg_time_s(upstream, BOAT, current) == pytest.approx(2000.0 / 3.5)
    with pytest.raises(ValueError, match="does not climb"):
        leg_energy_pct(Leg(100.0, 0.0, climb_m=5.0), BOAT)


def test_flow_conventions() -> None:
    assert Flow.wind_from(5.0, 270.0).toward_deg == pytest.approx(90.0)
    assert Flow.current_toward(1.0, 450.0).toward_deg == pytest.approx(90.0)
    with pytest.raises(ValueError):
        Flow(-1.0, 0.0)


def test_path_legs_measure_the_ground() -> None:
    legs = path_legs([(106.60, 29.80), (106.70, 29.80), (106.70, 29.70)], alts_m=[0.0, 100.0, 40.0])
    assert len(legs) == 2
    assert legs[0].track_deg == pytest.approx(90.0, abs=0.1)  # east along a parallel (true north)
    assert legs[1].track_deg == pytest.approx(180.0, abs=0.01)
    assert 9600 < legs[0].distance_m < 9700  # 0.1° of longitude at 29.8° N
    assert (legs[0].climb_m, legs[1].climb_m) == (100.0, -60.0)
    with pytest.raises(ValueError, match="alts_m"):
        path_legs([(106.6, 29.8), (106.7, 29.8)], alts_m=[0.0])


def test_must_turn_back_flips_at_the_analytic_distance() -> None:
    battery, reserve = 70.0, 30.0
    # Still air, no landing: home costs 100 d / (v T) %, so the limit is d* = (b - r) / 100 · v · T.
    d_star = (battery - reserve) / 100.0 * 12.0 * 1800.0  # 8640 m
    assert not must_turn_back((106.6, 29.8), battery, d_star - 1.0, COPTER, reserve).turn_back
    at = must_turn_back((106.6, 29.8), battery, d_star + 1.0, COPTER, reserve)
    assert at.turn_back and at.margin_pct == pytest.approx(-100.0 / (12.0 * 1800.0))
    assert must_turn_back((106.6, 29.8), battery, d_star, COPTER, reserve).margin_pct == pytest.approx(0.0, abs=1e-9)


def test_must_turn_back_with_a_headwind_home_and_a_landing() -> None:
    battery, reserve = 70.0, 30.0
    home = (106.6, 29.8)
    wind = Flow.wind_from(4.0, 180.0)  # a southerly: heading south for home means into the wind
    land_pct = COPTER.hover_pct_per_s * 100.0 / COPTER.descent_speed_mps
    d_star = (battery - reserve - land_pct) / 100.0 * (12.0 - 4.0) * 1800.0
    lat_per_m = 1.0 / 110_850.0  # about, at 29.8° N; the distance is given explicitly below
    pos = (106.6, 29.8 + d_star * lat_per_m)
    ok = must_turn_back(pos, battery, d_star - 2.0, COPTER, reserve, wind, home=home, height_m=100.0)
    late = must_turn_back(pos, battery, d_star + 2.0, COPTER, reserve, wind, home=home, height_m=100.0)
    assert not ok.turn_back and late.turn_back
    still = must_turn_back(pos, battery, d_star + 2.0, COPTER, reserve, home=home, height_m=100.0)
    assert not still.turn_back  # without the headwind the same distance is fine
    with pytest.raises(ValueError, match="home position"):
        must_turn_back(pos, battery, 1000.0, COPTER, reserve, wind)


def test_check_reserve_refuses_in_both_languages() -> None:
    assert check_reserve(20.0, 80.0, 30.0) == pytest.approx(30.0)
    with pytest.raises(PlanRefused) as err:
        check_reserve(55.0, 80.0, 30.0)
    assert "30 % reserve" in err.value.reasons[0]
    assert "保留电量" in err.value.reasons_zh[0]
    with pytest.raises(ValueError):
        check_reserve(10.0, 120.0, 30.0)


def test_bad_models_are_rejected() -> None:
    with pytest.raises(ValueError, match="cruise_speed_mps"):
        EnergyModel.copter(0.0, 1800.0)
    with pytest.raises(ValueError, match="kind"):
        EnergyModel.for_vehicle("plane", 20.0, 3600.0)
    with pytest.raises(ValueError, match="non-negative"):
        Leg(-5.0, 0.0)
