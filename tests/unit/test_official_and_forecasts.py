"""Official CAP warnings in; gridded rain forecasts and staged slope warnings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from command.forecasts import ForecastError, RainForecast, observed_at, stage_slope
from command.official import CapError, parse_cap
from command.risk.rules import Level

CAP = (Path(__file__).parent.parent / "data" / "cap_rainstorm_yellow.xml").read_bytes()
ISSUED = datetime(2026, 7, 10, 0, 0, tzinfo=timezone.utc)


def test_a_cap_warning_is_parsed_in_the_preferred_language_with_its_colour_and_area() -> None:
    w = parse_cap(CAP)
    assert (w.identifier, w.msg_type, w.language) == ("CQ-YB-2026-0710-001", "Alert", "zh-CN")
    assert w.colour == "yellow" and w.event == "暴雨" and "黄色预警" in w.headline
    assert w.sent == datetime(2026, 7, 10, 0, 0, tzinfo=timezone.utc)
    assert w.expires == datetime(2026, 7, 10, 12, 0, tzinfo=timezone.utc)
    assert w.active(w.sent + timedelta(hours=1)) and not w.active(w.expires)
    ring = w.areas[0].polygons[0]
    assert ring[0] == (106.70, 29.70)  # CAP's "lat,lon" turned into GeoJSON order
    assert w.to_wire()["areas"][0]["geometry"]["type"] == "MultiPolygon"
    english = parse_cap(CAP, prefer_language="en-US")
    assert english.colour == "yellow" and english.headline == "Rainstorm Yellow Warning"


@pytest.mark.parametrize(("xml", "words"), [
    (b"<alert>", "not XML"),
    (b"<alert xmlns='urn:other'/>", "not a CAP 1.2 alert"),
    (CAP.replace(b"<sender>yubei.met@example.cn</sender>", b""), "<sender> is required"),
    (CAP.replace(b"<msgType>Alert</msgType>", b"<msgType>Shout</msgType>"), "not one of"),
    (CAP.replace(b"2026-07-10T08:00:00+08:00</sent>", b"yesterday</sent>"), "not a CAP date-time"),
    (CAP.replace(b"29.70,106.70 29.95", b"29.70;106.70 29.95"), "is not 'lat,lon'"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>',
     "entities and DTDs are not allowed"),
])
def test_bad_cap_is_refused_with_a_reason(xml: bytes, words: str) -> None:
    with pytest.raises(CapError, match=words.replace("(", r"\(")):
        parse_cap(xml)


def forecast(rain_6h: float = 60.0) -> RainForecast:
    return RainForecast.from_wire({
        "issued": ISSUED.isoformat(), "source": "test QPF",
        "grid": {"west": 106.4, "north": 30.2, "cell_deg": 0.1, "nrows": 7, "ncols": 6},
        "accumulations_mm": {"1": [[rain_6h / 12] * 6] * 7, "3": [[rain_6h / 3] * 6] * 7, "6": [[rain_6h] * 6] * 7}})


def test_a_forecast_gives_the_rain_still_expected() -> None:
    f = forecast()
    assert f.accum_at(106.7, 29.8) == {1.0: 5.0, 3.0: 20.0, 6.0: 60.0}
    assert f.accum_at(107.5, 29.8) is None
    later = f.remaining_at(106.7, 29.8, ISSUED + timedelta(hours=3))
    assert later == {1.0: pytest.approx(40.0 / 3), 3.0: pytest.approx(40.0)}  # 20 mm of the 60 have fallen
    assert f.remaining_at(106.7, 29.8, ISSUED + timedelta(hours=7)) is None


@pytest.mark.parametrize(("change", "words"), [
    ({"issued": "noon"}, "issued"), ({"issued": "2026-07-10T00:00:00"}, "time-zone"),
    ({"accumulations_mm": {"1": [[1.0]]}}, r"expected \(7, 6\)"),
    ({"accumulations_mm": {"3": [[5.0] * 6] * 7, "1": [[9.0] * 6] * 7}}, "cumulative"),
    ({"accumulations_mm": {"1": [[-1.0] * 6] * 7}}, "finite and ≥ 0"),
])
def test_bad_forecasts_are_refused(change: dict, words: str) -> None:
    body = json.loads(json.dumps({"issued": ISSUED.isoformat(), "grid": {"west": 106.4, "north": 30.2,
                                  "cell_deg": 0.1, "nrows": 7, "ncols": 6},
                                  "accumulations_mm": {"1": [[1.0] * 6] * 7}}))
    body.update(change)
    with pytest.raises(ForecastError, match=words):
        RainForecast.from_wire(body)


def test_a_forecast_over_the_threshold_raises_a_staged_warning_before_the_rain_does() -> None:
    observed = {1.0: 2.0, 3.0: 5.0, 6.0: 8.0, 12.0: 10.0, 24.0: 12.0}  # a wet day, nothing yet
    without = stage_slope("slope-a", observed_mm=observed, forecast_mm=None)
    assert without.level == Level.NONE
    staged = stage_slope("slope-a", observed_mm=observed, forecast_mm={1.0: 5.0, 3.0: 35.0, 6.0: 70.0})
    assert staged.level in (Level.YELLOW, Level.BLUE) and staged.extra["staged"] is True
    assert staged.extra["staged_lead_h"] in (3.0, 6.0) and "expected to reach" in staged.reason
    soon = stage_slope("slope-a", observed_mm=observed, forecast_mm={1.0: 40.0, 3.0: 60.0, 6.0: 80.0})
    assert soon.level == Level.ORANGE and soon.extra["staged_lead_h"] == 1.0
    reached = stage_slope("slope-a", observed_mm={1.0: 30.0, 3.0: 60.0}, forecast_mm=None)
    assert reached.level >= Level.ORANGE and "has reached" in reached.reason


def test_observed_rain_at_a_slope_is_interpolated_from_gauges_in_reach() -> None:
    gauges = [(106.70, 29.80, {1.0: 10.0, 3.0: 30.0}), (106.72, 29.80, {1.0: 20.0, 3.0: 40.0}),
              (107.50, 29.80, {1.0: 99.0})]  # the last is 77 km away: out of reach
    at = observed_at(gauges, 106.71, 29.80)
    assert at[1.0] == pytest.approx(15.0) and at[3.0] == pytest.approx(35.0)
    assert observed_at(gauges, 108.5, 29.8) == {}
