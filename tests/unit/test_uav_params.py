"""Parameter value encoding (ArduPilot C-cast and PX4 bytewise) and PARAM_VALUE decoding."""

from __future__ import annotations

import math
import struct

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.params import (
    ParamValue, check_name, decode_value, encode_value, from_wire, values_equal,
)

INT8, INT16, INT32, UINT8, REAL32 = (mav.MAV_PARAM_TYPE_INT8, mav.MAV_PARAM_TYPE_INT16,
                                     mav.MAV_PARAM_TYPE_INT32, mav.MAV_PARAM_TYPE_UINT8,
                                     mav.MAV_PARAM_TYPE_REAL32)


def _wire(msg: mav.MAVLink_message) -> mav.MAVLink_message:
    """Through a real pack/parse round trip, as a link would deliver it."""
    codec = mav.MAVLink(None, srcSystem=1, srcComponent=1)
    return codec.parse_buffer(bytearray(msg.pack(codec)))[0]


def test_ardupilot_sends_integers_by_value() -> None:
    assert encode_value(3, INT8) == 3.0
    assert decode_value(3.0, INT8) == 3.0
    assert encode_value(-1500, INT16) == -1500.0
    assert decode_value(2.9999998, INT32) == 3.0  # float noise rounds back to the integer


def test_bytewise_encoding_round_trips_and_differs_from_cast() -> None:
    raw = encode_value(1500, INT32, bytewise=True)
    assert raw != 1500.0
    assert struct.pack("<f", raw)[:4] == struct.pack("<i", 1500)
    assert decode_value(raw, INT32, bytewise=True) == 1500.0
    assert decode_value(encode_value(-5, INT8, bytewise=True), INT8, bytewise=True) == -5.0


@pytest.mark.parametrize(("value", "ptype"), [(128, INT8), (-1, UINT8), (2**31, INT32),
                                              (1.5, INT16), (math.nan, REAL32),
                                              (math.inf, REAL32), (1e39, REAL32)])
def test_values_that_do_not_fit_are_refused_with_a_reason(value: float, ptype: int) -> None:
    with pytest.raises(ValueError) as info:
        encode_value(value, ptype)
    assert str(info.value)


def test_real32_is_rounded_to_float32_and_compared_within_tolerance() -> None:
    sent = encode_value(0.1, REAL32)
    assert sent != 0.1 and abs(sent - 0.1) < 1e-8
    assert values_equal(sent, 0.1, REAL32)
    assert not values_equal(0.1, 0.1001, REAL32)
    assert values_equal(3.0, 3.0000001, INT8) and not values_equal(3.0, 4.0, INT8)


def test_param_value_from_the_wire() -> None:
    listed = from_wire(_wire(mav.MAVLink_param_value_message(b"FENCE_ENABLE", 1.0, INT8, 40, 7)))
    assert listed == ParamValue("FENCE_ENABLE", 1.0, INT8, 7, 40)
    assert listed.is_integer
    full = from_wire(_wire(mav.MAVLink_param_value_message(b"ABCDEFGHIJKLMNOP", 2.5, REAL32,
                                                            40, 65535)))
    assert full.name == "ABCDEFGHIJKLMNOP" and full.index == -1 and full.value == 2.5


@pytest.mark.parametrize("name", ["", "A" * 17, "温度", 5])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(ValueError):
        check_name(name)  # type: ignore[arg-type]
