"""Fleet configuration and queries before any vehicle is heard."""

import json

import pytest

from uav.errors import LinkError, VehicleUnavailable
from uav.fleet import Fleet, FleetEntry

URL = "udpin:127.0.0.1:14550"


def test_duplicate_names_and_system_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate vehicle name"):
        Fleet([FleetEntry("a", "copter", URL, 1), FleetEntry("a", "boat", URL, 2)])
    with pytest.raises(ValueError, match="system id 1 already used"):
        Fleet([FleetEntry("a", "copter", URL, 1), FleetEntry("b", "boat", URL, 1)])
    # the same system id behind another URL is a different vehicle
    Fleet([FleetEntry("a", "copter", URL, 1), FleetEntry("b", "boat", "tcp:127.0.0.1:5760", 1)])


def test_bad_url_fails_at_construction():
    with pytest.raises(LinkError, match="bad MAVLink URL"):
        Fleet([FleetEntry("a", "copter", "serial:/dev/ttyUSB0", 1)])


def test_queries_before_run():
    fleet = Fleet([FleetEntry("a", "copter", URL, 1, extras={"cruise_speed_mps": 10})])
    with pytest.raises(VehicleUnavailable, match="no vehicle 'zz'"):
        fleet.vehicle("zz")
    with pytest.raises(VehicleUnavailable, match="not running"):
        fleet.vehicle("a")
    states = fleet.states()
    assert states["a"]["link"] == "never" and states["a"]["type"] == "copter"
    assert states["a"]["vehicle_type"] == "copter" and states["a"]["lat"] is None
    json.dumps(states, allow_nan=False)
    assert fleet.link_state("a") == "never"
