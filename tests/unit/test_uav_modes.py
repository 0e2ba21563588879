"""ArduPilot mode tables."""

import pytest

from uav.errors import UnknownMode, VehicleError
from uav.modes import COPTER_MODES, ROVER_MODES, mode_name, mode_number, mode_table


def test_copter_numbers_match_arducopter():
    assert mode_number("copter", "STABILIZE") == 0
    assert mode_number("copter", "AUTO") == 3
    assert mode_number("copter", "GUIDED") == 4
    assert mode_number("copter", "RTL") == 6
    assert mode_number("copter", "LAND") == 9
    assert mode_number("copter", "SMART_RTL") == 21
    assert mode_number("copter", "ZIGZAG") == 24


def test_boat_uses_rover_table():
    assert mode_table("boat") is ROVER_MODES
    assert mode_number("boat", "AUTO") == 10
    assert mode_number("boat", "RTL") == 11
    assert mode_number("boat", "GUIDED") == 15
    assert mode_name("boat", 16) == "INITIALISING"
    assert mode_name("boat", 4) == "HOLD"


def test_lookup_is_case_insensitive_and_round_trips():
    assert mode_number("copter", " guided ") == 4
    for kind, table in (("copter", COPTER_MODES), ("boat", ROVER_MODES)):
        for name, number in table.items():
            assert mode_name(kind, number) == name


def test_unknown_name_lists_valid_modes():
    with pytest.raises(UnknownMode) as info:
        mode_number("boat", "LAND")
    message = str(info.value)
    assert "LAND" in message and "HOLD" in message and "GUIDED" in message
    assert isinstance(info.value, VehicleError) and isinstance(info.value, ValueError)


def test_unknown_number_and_type():
    assert mode_name("copter", 99) == "MODE_99"
    assert mode_name("unknown", 4) == "MODE_4"
    with pytest.raises(UnknownMode, match="known types"):
        mode_number("submarine", "AUTO")
