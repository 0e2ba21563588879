"""Airspace approvals: what a plan needs, whether grants cover it, and the caps they give."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from shapely.geometry import Polygon, box

from command.dispatch.airspace import Zone
from command.dispatch.approvals import (
    NATIONAL_CEILING_ID,
    ApprovalNeed,
    Grant,
    check_grants,
    grant_caps,
    needed_approvals,
)
from command.district import District
from sitl.scenarios.yubei.generate import generate

T0 = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)  # flight 02:00-03:00 UTC
T1 = T0 + timedelta(hours=1)
NOW = T0 - timedelta(minutes=30)

CTRL = Zone("ctrl", "Military area", "controlled", box(106.80, 29.70, 106.82, 29.72), name_zh="军事管制区")
CORE = Zone("core", "Airport no-fly core", "prohibited", box(106.60, 29.70, 106.62, 29.72), name_zh="禁飞核心区")
Z60 = Zone("z60", "Airport 60 m zone", "height_limited", box(106.70, 29.70, 106.72, 29.72), 60.0)
ACROSS_CTRL = [(106.79, 29.71), (106.83, 29.71)]


def needs(path: Sequence[tuple[float, float]], alts: Sequence[float] | float,
          zones: Sequence[Zone]) -> list[ApprovalNeed]:
    return needed_approvals(path, alts, zones, when_start=T0, when_end=T1)


def grant(**kw: Any) -> Grant:
    base: dict[str, Any] = {
        "id": "g1", "zone_id": "ctrl", "granted_by": "Southwest ATM Bureau", "reference": "XN-2024-0701-17",
        "valid_from": T0 - timedelta(hours=1), "valid_to": T1 + timedelta(hours=1), "max_alt_agl_m": 120.0,
    }
    return Grant(**(base | kw))


# --- the synthetic district --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return District.load(generate(tmp_path_factory.mktemp("yubei") / "d"))


@pytest.fixture(scope="module")
def jiangbei_zones(district: District) -> list[Zone]:
    """The district's airport zones, the controlled zone over Jiangbei airport among them.

    The synthetic folder draws the airport as height-limited zones around a prohibited core (the
    common geofence model, docs/district-folder.md), and the airport with its surroundings (the
    whole geofence area) as controlled airspace, ``ckg-control`` (Interim Regulations 2024, art. 19).
    """
    return list(district.airspace)


def test_path_through_jiangbei_controlled_zone_needs_approval(jiangbei_zones: list[Zone]) -> None:
    # West to east at 29.77°N: north of the no-fly core, through the 10 km circle.
    found = needs([(106.50, 29.77), (106.78, 29.77)], 100.0, jiangbei_zones)
    assert [(n.zone_id, n.kind, n.approvable) for n in found] == [("ckg-control", "controlled", True)]
    (n,) = found
    assert n.max_agl_m == pytest.approx(100.0)
    assert "air traffic management" in n.reason and "江北机场管制空域" in n.reason_zh
    assert (n.when_start, n.when_end) == (T0, T1)
    ctr = next(z for z in jiangbei_zones if z.id == "ckg-control").polygon
    assert shapely.covers(ctr.buffer(1e-9), n.where) and n.where.length > 0.1  # the part inside, > 10 km


def test_path_around_jiangbei_needs_nothing(jiangbei_zones: list[Zone]) -> None:
    # Along 29.92°N, north of every airport zone.
    assert needs([(106.50, 29.92), (106.90, 29.92)], 100.0, jiangbei_zones) == []


def test_path_over_the_airport_core_is_never_approvable(jiangbei_zones: list[Zone]) -> None:
    found = needs([(106.60, 29.72), (106.70, 29.72)], 50.0, jiangbei_zones)
    core = next(n for n in found if n.zone_id == "ckg-core")
    assert core.kind == "prohibited" and core.approvable is False
    assert "no approval can permit it" in core.reason
    g = grant(id="g-core", zone_id="ckg-core", max_alt_agl_m=500.0)
    check = check_grants(found, [g, grant(id="g-ctr", zone_id="ckg-control")], now=NOW)
    assert [c.need.zone_id for c in check.uncovered] == ["ckg-core"]
    assert check.uncovered[0].refusals[0].code == "prohibited"
    assert not check.ok


# --- needs -------------------------------------------------------------------------------------------------


def test_clear_path_needs_nothing() -> None:
    assert needs([(106.65, 29.65), (106.66, 29.66)], 100.0, [CTRL, CORE, Z60]) == []


def test_height_limited_zone_is_not_an_approval_matter() -> None:
    # 100 m over a 60 m zone is a breach for check_path; no grant can lift it, so no need is listed.
    assert needs([(106.69, 29.71), (106.73, 29.71)], 100.0, [Z60]) == []


def test_controlled_zone_at_any_height_and_the_highest_point_inside() -> None:
    (n,) = needs(ACROSS_CTRL, 10.0, [CTRL])
    assert n.zone_id == "ctrl" and n.max_agl_m == pytest.approx(10.0)
    # Climbing 0 -> 100 m over 0.04°: 0.01° in at the west edge (25 m), 0.03° at the east edge (75 m).
    (n,) = needs(ACROSS_CTRL, [0.0, 100.0], [CTRL])
    assert n.max_agl_m == pytest.approx(75.0)
    (n,) = needs(ACROSS_CTRL[::-1], [100.0, 0.0], [CTRL])
    assert n.max_agl_m == pytest.approx(75.0)
    assert n.where.bounds == pytest.approx((106.80, 29.71, 106.82, 29.71))


def test_corner_clipped_between_vertices_is_found() -> None:
    # The leg cuts the zone's south-west corner for about 45 m, 1 km from either vertex.
    (n,) = needs([(106.79, 29.7103), (106.8103, 29.69)], 30.0, [CTRL])
    assert n.zone_id == "ctrl" and 0 < n.where.length < 0.001


def test_national_ceiling_need_covers_only_the_part_above() -> None:
    found = needs([(106.65, 29.65), (106.69, 29.65)], [100.0, 140.0], [])
    (n,) = found
    assert n.zone_id == NATIONAL_CEILING_ID and n.kind == "national_ceiling" and n.approvable
    assert n.max_agl_m == pytest.approx(140.0)
    # Above 120.5 m from halfway (+ 0.5 m tolerance) to the end.
    west, _, east, _ = n.where.bounds
    assert west == pytest.approx(106.67 + 0.04 * 0.5 / 40.0) and east == pytest.approx(106.69)
    assert needs([(106.65, 29.65)], 120.0, []) == []


def test_hover_at_one_point() -> None:
    found = needs([(106.81, 29.71)], 150.0, [CTRL])
    assert [(n.zone_id, n.where.geom_type) for n in found] == [("ctrl", "Point"), (NATIONAL_CEILING_ID, "Point")]
    assert needs([(106.70, 29.60)], 50.0, [CTRL]) == []


def test_controlled_and_above_ceiling_need_both() -> None:
    found = needs(ACROSS_CTRL, 150.0, [CORE, CTRL])
    assert [n.zone_id for n in found] == ["ctrl", NATIONAL_CEILING_ID]


def test_need_validation() -> None:
    with pytest.raises(ValueError, match="heights"):
        needs([(106.6, 29.6), (106.7, 29.7)], [1.0, 2.0, 3.0], [])
    with pytest.raises(ValueError, match="empty path"):
        needs([], 50.0, [])
    with pytest.raises(ValueError, match="finite"):
        needs([(106.6, 29.6), (106.7, 29.7)], [1.0, float("nan")], [])
    with pytest.raises(ValueError, match="timezone-aware"):
        needed_approvals(ACROSS_CTRL, 50.0, [], when_start=datetime(2024, 7, 1), when_end=T1)
    with pytest.raises(ValueError, match="after"):
        needed_approvals(ACROSS_CTRL, 50.0, [], when_start=T1, when_end=T0)


# --- grants ------------------------------------------------------------------------------------------------


def ctrl_need(alt: float = 100.0) -> list[ApprovalNeed]:
    return needs(ACROSS_CTRL, alt, [CTRL])


def test_grant_covers() -> None:
    check = check_grants(ctrl_need(), [grant()], now=NOW)
    assert check.ok and check.reasons == ()
    (c,) = check.covered
    assert c.covered and c.grant is not None and c.grant.id == "g1"
    assert grant_caps(check) == {"ctrl": 120.0}


def test_expired_grant_does_not_cover() -> None:
    g = grant(valid_from=T0 - timedelta(days=2), valid_to=T0 - timedelta(days=1))
    check = check_grants(ctrl_need(), [g], now=NOW)
    assert not check.ok and grant_caps(check) == {}
    assert [r.code for r in check.uncovered[0].refusals] == ["expired"]
    assert "expired" in check.reasons[0] and "过期" in check.reasons_zh[0]


def test_grant_ending_during_the_flight_does_not_cover() -> None:
    check = check_grants(ctrl_need(), [grant(valid_to=T0 + timedelta(minutes=30))], now=NOW)
    assert [r.code for r in check.uncovered[0].refusals] == ["ends_before_flight"]


def test_grant_not_yet_valid_does_not_cover() -> None:
    check = check_grants(ctrl_need(), [grant(valid_from=T0 + timedelta(minutes=10))], now=NOW)
    assert [r.code for r in check.uncovered[0].refusals] == ["not_yet_valid"]
    # Valid from a time after now but before take-off is fine.
    assert check_grants(ctrl_need(), [grant(valid_from=T0)], now=NOW).ok


def test_cap_60_does_not_cover_a_100_m_plan() -> None:
    check = check_grants(ctrl_need(100.0), [grant(max_alt_agl_m=60.0)], now=NOW)
    (r,) = check.uncovered[0].refusals
    assert r.code == "altitude_above_cap" and "100 m" in r.reason and "60 m" in r.reason
    assert check_grants(ctrl_need(60.0), [grant(max_alt_agl_m=60.0)], now=NOW).ok


def test_area_restricted_grant() -> None:
    inside = box(106.79, 29.70, 106.83, 29.72)
    assert check_grants(ctrl_need(), [grant(polygon=inside)], now=NOW).ok
    west_half = box(106.79, 29.70, 106.81, 29.72)
    check = check_grants(ctrl_need(), [grant(polygon=west_half)], now=NOW)
    assert [r.code for r in check.uncovered[0].refusals] == ["area_outside"]


def test_area_of_a_ceiling_grant_is_where_the_path_is_above() -> None:
    found = needs([(106.65, 29.65), (106.69, 29.65)], [100.0, 140.0], [])
    east_half = box(106.669, 29.64, 106.70, 29.66)
    g = grant(zone_id=NATIONAL_CEILING_ID, max_alt_agl_m=150.0, polygon=east_half)
    check = check_grants(found, [g], now=NOW)
    assert check.ok and grant_caps(check) == {NATIONAL_CEILING_ID: 150.0}
    far = grant(zone_id=NATIONAL_CEILING_ID, max_alt_agl_m=150.0, polygon=box(106.0, 29.0, 106.1, 29.1))
    assert not check_grants(found, [far], now=NOW).ok


def test_wrong_zone_and_no_grant() -> None:
    check = check_grants(ctrl_need(), [grant(zone_id="elsewhere")], now=NOW)
    (r,) = check.uncovered[0].refusals
    assert r.code == "wrong_zone" and "elsewhere" in r.reason
    check = check_grants(ctrl_need(), [], now=NOW)
    assert check.uncovered[0].refusals[0].code == "no_grant"


def test_every_reason_of_every_grant_is_given_and_a_good_grant_wins() -> None:
    bad = grant(id="old", max_alt_agl_m=50.0, valid_from=T0 - timedelta(days=2), valid_to=T0 - timedelta(days=1))
    check = check_grants(ctrl_need(), [bad], now=NOW)
    assert {r.code for r in check.uncovered[0].refusals} == {"expired", "altitude_above_cap"}
    check = check_grants(ctrl_need(), [bad, grant(id="new", max_alt_agl_m=110.0)], now=NOW)
    assert check.ok and check.covered[0].grant is not None and check.covered[0].grant.id == "new"
    assert grant_caps(check) == {"ctrl": 110.0}


def test_caps_only_for_covered_zones() -> None:
    found = needs(ACROSS_CTRL, 150.0, [CTRL])
    check = check_grants(found, [grant(max_alt_agl_m=200.0)], now=NOW)
    assert [c.need.zone_id for c in check.uncovered] == [NATIONAL_CEILING_ID]
    assert grant_caps(check) == {"ctrl": 200.0}


def test_grant_validation() -> None:
    with pytest.raises(ValueError, match="valid_to .* must be after valid_from"):
        grant(valid_to=T0, valid_from=T0)
    with pytest.raises(ValueError, match="max_alt_agl_m"):
        grant(max_alt_agl_m=-1.0)
    with pytest.raises(ValueError, match="max_alt_agl_m"):
        grant(max_alt_agl_m=float("inf"))
    with pytest.raises(ValueError, match="timezone-aware"):
        grant(valid_from=datetime(2024, 7, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        grant(valid_to=datetime(2024, 7, 2))
    with pytest.raises(ValueError, match="reference"):
        grant(reference=" ")
    with pytest.raises(ValueError, match="polygon"):
        grant(polygon=Polygon())
    with pytest.raises(ValueError, match="not valid"):
        grant(polygon=Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]))  # a bow tie
    with pytest.raises(TypeError, match="datetime"):
        grant(valid_from="2024-07-01T00:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        check_grants([], [], now=datetime(2024, 7, 1))

