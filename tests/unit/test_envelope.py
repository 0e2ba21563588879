import math

import shapely
from shapely.geometry import Polygon

from command.dispatch.airspace import Zone
from command.dispatch.envelope import mission_fence

PATH = [(106.857, 29.712), (106.848, 29.712), (106.857, 29.712)]


def _metres(a, b):
    return math.hypot((a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1])), (a[1] - b[1]) * 111_320)


def test_fence_surrounds_the_path_with_its_margin():
    fence = mission_fence(PATH, [], margin_m=300)
    [poly] = fence.polygons
    ring = Polygon(poly.vertices)
    assert all(ring.contains(shapely.Point(p)) for p in PATH)  # launch point inside: arming allowed
    nearest = min(_metres(v, PATH[0]) for v in poly.vertices)
    assert 250 < nearest < 320
    assert len(poly.vertices) < 60
    assert not fence.circles


def test_prohibited_zones_within_reach_become_exclusions_others_do_not():
    near = Zone("near", "No-fly near", "prohibited", Polygon([(106.850, 29.7135), (106.852, 29.7135),
                                                              (106.852, 29.715), (106.850, 29.715)]))
    far = Zone("far", "No-fly far", "prohibited", Polygon([(106.60, 29.70), (106.61, 29.70), (106.61, 29.71)]))
    capped = Zone("cap", "30 m zone", "height_limited", near.polygon, ceiling_agl_m=30)
    fence = mission_fence(PATH, [near, far, capped], margin_m=300)
    assert [p.inclusion for p in fence.polygons] == [True, False]  # the inclusion polygon and one exclusion
