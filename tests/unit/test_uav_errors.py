"""MAV_RESULT → typed errors."""

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import errors
from uav.errors import (
    CommandDenied, CommandError, CommandFailed, CommandTemporarilyRejected, CommandUnsupported,
    LinkError, LinkLost, MissionRejected, UavError, VehicleError, error_for_result,
)


def test_accepted_is_no_error():
    assert error_for_result(mav.MAV_CMD_COMPONENT_ARM_DISARM, mav.MAV_RESULT_ACCEPTED) is None


@pytest.mark.parametrize(("result", "cls"), [
    (mav.MAV_RESULT_TEMPORARILY_REJECTED, CommandTemporarilyRejected),
    (mav.MAV_RESULT_DENIED, CommandDenied),
    (mav.MAV_RESULT_UNSUPPORTED, CommandUnsupported),
    (mav.MAV_RESULT_FAILED, CommandFailed),
    (6, CommandFailed),  # CANCELLED
    (mav.MAV_RESULT_COMMAND_INT_ONLY, CommandUnsupported),
    (mav.MAV_RESULT_COMMAND_LONG_ONLY, CommandUnsupported),
    (9, CommandUnsupported),  # UNSUPPORTED_MAV_FRAME
    (200, CommandFailed),  # a result from the future still fails, readably
])
def test_result_maps_to_leaf(result, cls):
    err = error_for_result(mav.MAV_CMD_NAV_TAKEOFF, result)
    assert type(err) is cls
    assert err.command == mav.MAV_CMD_NAV_TAKEOFF and err.result == result
    assert "MAV_CMD_NAV_TAKEOFF" in str(err)


def test_failed_carries_statustext():
    err = error_for_result(mav.MAV_CMD_COMPONENT_ARM_DISARM, mav.MAV_RESULT_FAILED,
                           statustext="Arm: AHRS: waiting for home", what="arm")
    assert isinstance(err, CommandFailed)
    assert str(err) == "arm: MAV_RESULT_FAILED (Arm: AHRS: waiting for home)"
    assert err.statustext == "Arm: AHRS: waiting for home"


def test_tree():
    assert issubclass(CommandError, VehicleError) and issubclass(VehicleError, UavError)
    assert issubclass(LinkLost, LinkError) and issubclass(LinkError, UavError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, UavError), name


def test_mission_rejected_names_result():
    err = MissionRejected("x", result=mav.MAV_MISSION_INVALID_PARAM5_X)
    assert err.result_name == "MAV_MISSION_INVALID_PARAM5_X"
    assert errors.mission_result_name(2) == "MAV_MISSION_UNSUPPORTED_FRAME"
