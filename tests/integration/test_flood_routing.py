"""A river gauge's forecast routed from its upstream gauge, through the running service.

The synthetic Yubei district routes the Longxing gauge (``yulin-level``) from the gauge below
Tongjing (``yulin-upper-level``, Muskingum K = 2.5 h). Levels go in over real HTTP; the
incident the Longxing reading opens carries the routed forecast, equal to the flood model's
own on the same readings.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from command.risk.flood import RatingCurve, RiverThresholds, route_to_downstream
from sensors.registry import Registry
from tests.fixtures_service import LiveService

DOWN, UP = "yulin-level", "yulin-upper-level"


def levels_senml(sensor_id: str, series: list[tuple[datetime, float]]) -> str:
    records: list[dict[str, Any]] = [{"n": "level", "u": "m", "v": v, "t": t.timestamp()} for t, v in series]
    records[0]["bn"] = f"urn:dev:yingji:{sensor_id}:"
    return json.dumps(records)


def rising(now: datetime, *, hours: float, base_m: float, rise_m: float) -> list[tuple[datetime, float]]:
    """5-minute levels over the last ``hours``, rising linearly by ``rise_m`` up to ``now``."""
    n = round(hours * 12)
    return [(now - timedelta(minutes=5 * (n - k)), round(base_m + rise_m * k / n, 3)) for k in range(n + 1)]


def test_a_downstream_reading_carries_the_forecast_routed_from_upstream(live_system: LiveService) -> None:
    live = live_system
    registry = Registry.from_geojson(live.district_dir / "sensors.geojson")
    spec = registry[DOWN]
    routing = spec.properties["routing"]
    assert routing["upstream"] == UP
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    up_base = registry[UP].thresholds["warning_m"] - 7.0
    upstream = rising(now, hours=4.0, base_m=up_base, rise_m=4.5)  # stays below its own blue band
    blue_m = spec.thresholds["warning_m"] - 0.8  # in the blue band, below warning
    downstream = rising(now, hours=1.0, base_m=blue_m - 0.6, rise_m=0.6)

    url = "/api/ingest/senml"
    with live.client() as http:
        answer = http.post(url, content=levels_senml(UP, upstream))
        assert answer.status_code == 200 and answer.json()["accepted"] == len(upstream), answer.text

        def stored() -> bool:
            return len(live.get(f"/api/sensors/{UP}/readings")["readings"]) >= len(upstream)

        live.wait_until(stored, "the upstream levels to be stored")
        answer = http.post(url, content=levels_senml(DOWN, downstream))
        assert answer.status_code == 200, answer.text

    def forecast_at_now() -> dict[str, Any] | None:  # the incident as the newest reading left it
        inc = next((i for i in live.get("/api/incidents")["incidents"] if DOWN in i["sensors"]), None)
        routed = (inc or {}).get("model", {}).get(DOWN, {}).get("routed") or {}
        return inc if routed.get("upstream_time") == now.isoformat() else None

    incident = live.wait_until(forecast_at_now, "the Longxing incident with the forecast routed at its newest reading")
    assert incident["kind"] == "flood" and incident["level"] == "blue"  # the reading's level, not the forecast's
    routed = incident["model"][DOWN]["routed"]

    th = spec.thresholds
    expected = route_to_downstream(
        [t for t, _ in upstream], [v for _, v in upstream],
        upstream_rating=RatingCurve.from_mapping(routing["upstream_rating"]),
        downstream_rating=RatingCurve.from_mapping(routing["rating"]),
        thresholds=RiverThresholds(th["warning_m"], th["guaranteed_m"], th["historical_max_m"]),
        k_h=routing["k_h"], x=routing["x"], dt_h=routing["dt_h"], lateral_m3s=routing["lateral_m3s"])
    assert expected.hours_to_warning is not None
    assert routed["upstream"] == UP and (routed["k_h"], routed["x"]) == (2.5, 0.2)
    assert routed["hours_to_warning"] == round(expected.hours_to_warning, 2)
    assert routed["peak_level_m"] == round(expected.peak_level_m, 2)
    assert "routed_error" not in incident["model"][DOWN]
    assert f"routed from {UP} (Muskingum K=2.5 h, X=0.2)" in incident["reason"]
    assert "马斯京根法" in incident["reason_zh"]
