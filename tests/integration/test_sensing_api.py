"""Sensing through the running service: HTTP SenML ingest, one incident per phenomenon with
k-of-n verification, maintenance windows and QC flags, over real HTTP and SQLite."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from tests.fixtures_service import LiveService, rainstorm_senml


def storm_records(sensor_id: str, total_mm: float) -> list[dict[str, Any]]:
    return json.loads(rainstorm_senml(sensor_id, total_mm=total_mm))


def test_http_ingest_verification_and_maintenance(live_system: LiveService) -> None:
    live = live_system
    url = live.base_url + "/api/ingest/senml"
    assert httpx.post(url, content=json.dumps(storm_records("rain-lianglu", 60.0))).status_code == 401

    with live.client() as http:
        # one pack, two sensors (a new base name half-way), one of them unknown: the good
        # records are stored, the unknown sensor's is rejected with its reason
        pack = storm_records("rain-lianglu", 60.0) + [
            {"bn": "urn:dev:yingji:no-such-gauge:", "n": "rain", "u": "mm", "v": 1.0}]
        answer = http.post(url, content=json.dumps(pack))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["accepted"] == 6
        assert [r["reason"] for r in body["rejected"]] == ["unknown_sensor"]
        assert "no-such-gauge" in body["rejected"][0]["detail"]

        bad = http.post(url, content=b"[{\"n\": ")
        assert bad.status_code == 422 and bad.json()["rejected"][0]["reason"] == "malformed_json"
        nameless = http.post(url, content=json.dumps([{"n": "rain", "u": "mm", "v": 1.0}]))
        assert nameless.status_code == 422
        assert "does not say which sensor" in nameless.json()["rejected"][0]["detail"]
        impossible = http.post(url, content=json.dumps(
            [{"bn": "urn:dev:yingji:rain-wangjia:", "n": "rain", "u": "mm", "v": 500.0}]))
        assert impossible.status_code == 200
        assert impossible.json()["flagged"][0]["flag"] == "bad"

        first = live.wait_incident("rain-lianglu")
        assert first["kind"] == "rainstorm" and first["level"] == "orange"
        assert first["verification"]["state"] == "unverified"
        assert first["sensors"] == ["rain-lianglu"]

        # a second gauge 6 km away sees the same storm: the same incident, now confirmed
        assert http.post(url, content=json.dumps(storm_records("rain-xiantao", 55.0))).status_code == 200

        def confirmed() -> dict[str, Any] | None:
            inc = live.get(f"/api/incidents/{first['id']}")
            return inc if inc["verification"]["state"] == "confirmed" else None

        inc = live.wait_until(confirmed, "the second gauge to confirm the incident")
        assert inc["sensors"] == ["rain-lianglu", "rain-xiantao"]
        assert "2 sensors with good data agree" in inc["verification"]["reason"]
        rainstorms = [i for i in live.get("/api/incidents")["incidents"] if i["kind"] == "rainstorm"]
        assert len(rainstorms) == 1  # one phenomenon, one incident

        # the risk map: the storm over the Lianglu / Xiantao towns is a hotspot with its gauges as the why
        def hotspot() -> dict[str, Any] | None:
            risk = live.get("/api/risk")
            return next((f for f in risk["features"] if "rain-lianglu" in f["properties"]["sensors"].get("rain_3h", [])
                         ), None) if risk["computed_at"] else None

        spot = live.wait_until(hotspot, "a risk hotspot from the storm")["properties"]
        assert spot["level"] in ("orange", "red") and spot["population_persons"] > 0
        assert spot["hazards"][0]["layer"] == "rain_3h" and "rain_3h" in spot["why"]
        layers = live.get("/api/risk")["layers"]
        assert set(layers) == {"rain_3h", "landslide_rain", "landslide_slope", "flood", "fire", "chemical"}
        assert layers["rain_3h"]["cells"] > 0 and layers["chemical"] == {"cells": 0, "max": 0.0}
        why = live.get(f"/api/incidents/{first['id']}")["hotspots"]  # the incident's "why" includes the map
        assert spot["id"] in [h["id"] for h in why]

        # a gauge in maintenance: its readings are stored, but open nothing
        now = datetime.now(timezone.utc)
        window = http.post("/api/sensors/rain-cizhu/maintenance", json={
            "by": "tech-li", "reason": "bucket cleaning", "end": (now + timedelta(hours=1)).isoformat()})
        assert window.status_code == 201, window.text
        assert http.post("/api/sensors/nobody/maintenance", json={
            "by": "x", "reason": "y", "end": now.isoformat()}).status_code == 404
        backwards = http.post("/api/sensors/rain-cizhu/maintenance", json={
            "by": "x", "reason": "y", "end": (now - timedelta(hours=1)).isoformat()})
        assert backwards.status_code == 422 and "must end after it starts" in backwards.text
        assert http.post(url, content=json.dumps(storm_records("rain-cizhu", 80.0))).status_code == 200
        sensors = {f["properties"]["id"]: f["properties"] for f in live.get("/api/sensors")["features"]}
        assert sensors["rain-cizhu"]["health"]["state"] == "maintenance"
        assert sensors["rain-cizhu"]["maintenance"]["reason"] == "bucket cleaning"
        assert sensors["rain-wangjia"]["values"]["rain"]["flag"] == "bad"
        assert len(live.get("/api/sensors/rain-cizhu/readings")["readings"]) == 6
        time.sleep(1.0)
        assert not [i for i in live.get("/api/incidents")["incidents"] if "rain-cizhu" in i["sensors"]]

        # a person confirms what sensors alone could not
        verify = http.post(f"/api/incidents/{first['id']}/verify", json={"by": "dispatcher-wang", "how": "drone"})
        assert verify.status_code == 200 and verify.json()["incident"]["verification"]["by"] == "dispatcher-wang"
        assert http.post("/api/incidents/99999/verify", json={"by": "x", "how": "drone"}).status_code == 404
        assert http.post(f"/api/incidents/{first['id']}/verify", json={"by": "x", "how": "rumour"}).status_code == 422

    metrics = httpx.get(live.base_url + "/metrics").text
    assert 'yingji_readings_flagged_total{flag="bad",check="range"} 1' in metrics
    assert 'yingji_sensors{state="maintenance"} 1' in metrics
    kinds = [e["kind"] for e in live.get("/api/events?limit=1000")["events"]]
    assert "sensor.maintenance" in kinds and "incident.verified" in kinds
