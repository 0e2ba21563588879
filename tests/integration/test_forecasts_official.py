"""Official warnings (CAP 1.2) and rain forecasts through the running service: official signals
are kept apart from the system's assessments; a forecast over a slope's threshold raises a
staged landslide warning before any rain has fallen."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures_service import LiveService

CAP = (Path(__file__).parent.parent / "data" / "cap_rainstorm_yellow.xml").read_bytes()


def test_official_warnings_and_a_staged_slope_warning(live_system: LiveService) -> None:
    live = live_system
    assert httpx.post(live.base_url + "/api/official/cap", content=CAP).status_code == 401
    with live.client() as http:
        # an official warning (sent "now" so that it is active)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        cap = CAP.replace(b"2026-07-10T08:00:00+08:00</sent>", now.isoformat().encode() + b"</sent>")
        cap = cap.replace(b"2026-07-10T20:00:00+08:00", b"2099-01-01T00:00:00+08:00")
        got = http.post("/api/official/cap", content=cap)
        assert got.status_code == 201, got.text
        assert got.json()["colour"] == "yellow" and got.json()["official"] is True
        assert http.post("/api/official/cap", content=cap).status_code == 409
        bad = http.post("/api/official/cap", content=b"<alert/>")
        assert bad.status_code == 422 and "not a CAP 1.2 alert" in bad.text
        listed = live.get("/api/official/warnings")["warnings"]
        assert [w["identifier"] for w in listed] == ["CQ-YB-2026-0710-001"] and listed[0]["active"]
        # a cancellation retires it
        cancel = cap.replace(b"<identifier>CQ-YB-2026-0710-001</identifier>",
                             b"<identifier>CQ-YB-2026-0710-002</identifier>").replace(
            b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType><references>yubei.met@example.cn,"
                                         b"CQ-YB-2026-0710-001,2026-07-10T08:00:00+08:00</references>")
        assert http.post("/api/official/cap", content=cancel).status_code == 201
        assert live.get("/api/official/warnings")["warnings"] == []
        assert len(live.get("/api/official/warnings?all=true")["warnings"]) == 2
        # official warnings are not the system's incidents
        assert live.get("/api/incidents")["incidents"] == []

        # a forecast of 90 mm in 6 h over the whole district, nothing observed yet
        slope = next(f for f in live.get("/api/layers/facilities")["features"]
                     if f["properties"]["kind"] == "landslide_slope")
        forecast = {"issued": now.isoformat(), "source": "test QPF",
                    "grid": {"west": 106.3, "north": 30.3, "cell_deg": 0.05, "nrows": 16, "ncols": 14},
                    "accumulations_mm": {"1": [[8.0] * 14] * 16, "3": [[40.0] * 14] * 16,
                                         "6": [[90.0] * 14] * 16}}
        bad_forecast = http.post("/api/forecasts/rain", json={**forecast, "issued": "soon"})
        assert bad_forecast.status_code == 422
        answer = http.post("/api/forecasts/rain", json=forecast)
        assert answer.status_code == 200, answer.text
        assert live.get("/api/forecasts/rain")["forecast"]["leads_h"] == [1.0, 3.0, 6.0]

        def staged() -> dict[str, Any] | None:
            return next((i for i in live.get("/api/incidents")["incidents"]
                         if i["kind"] == "landslide" and slope["properties"]["id"] in i["sensors"]), None)

        incident = live.wait_until(staged, "a staged landslide warning at the slope")
        assert incident["level"] in ("blue", "yellow", "orange")
        assert "expected to reach the landslide threshold" in incident["reason"]
        assert incident["verification"]["state"] == "unverified"
        model = incident["model"][slope["properties"]["id"]]
        assert model["staged"] is True and model["staged_lead_h"] > 0
