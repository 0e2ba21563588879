"""Fence and rally items: building, parsing and validation."""

from __future__ import annotations

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.fence import Fence, FenceCircle, FencePolygon, fence_from_items, fence_items
from uav.mission import MissionItem, decode_item, encode_item_int
from uav.rally import RallyPoint, rally_from_items, rally_items

SQUARE = [(106.50, 29.60), (106.51, 29.60), (106.51, 29.61), (106.50, 29.61)]


def test_inclusion_polygon_items_carry_the_vertex_count() -> None:
    items = fence_items(Fence.inclusion_polygon(SQUARE))
    assert [i.command for i in items] == [mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION] * 4
    assert {i.param1 for i in items} == {4.0}
    assert [(i.lon_deg, i.lat_deg) for i in items] == SQUARE


def test_closed_ring_from_shapely_drops_the_repeated_vertex() -> None:
    fence = Fence.inclusion_polygon([*SQUARE, SQUARE[0]])
    assert len(fence.polygons[0].vertices) == 4


def test_mixed_fence_round_trips_through_items_and_the_wire() -> None:
    fence = (Fence.inclusion_polygon(SQUARE)
             .with_exclusion_polygon([(106.503, 29.603), (106.505, 29.603), (106.504, 29.605)])
             .with_exclusion_circle(106.507, 29.607, 20.0))
    fence = Fence(fence.polygons, (*fence.circles, FenceCircle(106.505, 29.605, 900.0)),
                  return_point=(106.505, 29.605))
    items = fence_items(fence)
    assert items[0].command == mav.MAV_CMD_NAV_FENCE_RETURN_POINT
    assert [i.command for i in items[-2:]] == [mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
                                               mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION]
    assert items[-1].param1 == 900.0
    wire = [encode_item_int(it, seq, target_system=1, target_component=1,
                            mission_type=mav.MAV_MISSION_TYPE_FENCE)
            for seq, it in enumerate(items)]
    assert {w.mission_type for w in wire} == {mav.MAV_MISSION_TYPE_FENCE}
    back = fence_from_items([decode_item(w) for w in wire])
    assert back.return_point == pytest.approx(fence.return_point)
    assert [p.inclusion for p in back.polygons] == [True, False]
    for got, want in zip(back.polygons, fence.polygons):
        flat = [x for v in got.vertices for x in v]
        assert flat == pytest.approx([x for v in want.vertices for x in v], abs=1e-7)
    assert [(c.inclusion, c.radius_m) for c in back.circles] == [(False, 20.0), (True, 900.0)]


@pytest.mark.parametrize("bad", [
    lambda: FencePolygon(((106.5, 29.6), (106.6, 29.6))),  # two vertices
    lambda: FencePolygon(((106.5, 95.0), (106.6, 29.6), (106.6, 29.7))),  # latitude 95
    lambda: FenceCircle(106.5, 29.6, 0.0),
    lambda: FenceCircle(106.5, 29.6, float("nan")),
])
def test_impossible_shapes_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        bad()


def test_malformed_fence_items_are_named() -> None:
    items = fence_items(Fence.inclusion_polygon(SQUARE))
    with pytest.raises(ValueError, match="fence item 0"):
        fence_from_items(items[:3])  # 4-vertex polygon cut short
    with pytest.raises(ValueError, match="not a fence command"):
        fence_from_items([MissionItem(mav.MAV_CMD_NAV_WAYPOINT)])
    assert fence_from_items([]) == Fence()
    assert Fence().empty


def test_rally_points_round_trip() -> None:
    points = [RallyPoint(106.52, 29.62, 30.0), RallyPoint(106.53, 29.63, 25.0)]
    items = rally_items(points)
    assert {i.command for i in items} == {mav.MAV_CMD_NAV_RALLY_POINT}
    assert rally_from_items(items) == points
    with pytest.raises(ValueError):
        rally_from_items([MissionItem(mav.MAV_CMD_NAV_WAYPOINT)])
    with pytest.raises(ValueError):
        RallyPoint(200.0, 29.0)
