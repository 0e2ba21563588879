"""Controlled airspace through the service: a plan that enters it needs an approval on record,
recorded by a dispatcher over the API and checked against the flight (zone, time, height, area);
SQLite store, real district geometry (the Jiangbei airport controlled zone)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely

from command.clock import ManualClock
from command.dispatch.allocation import Candidate
from command.dispatch.errors import PlanRefused
from command.dispatch.mission import MissionPlan, plan_recon
from command.runtime import Service
from command.settings import Settings
from sitl.scenarios.yubei.generate import generate
from tests.fixtures_service import LiveService

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("approvals") / "district")


def _flight_into_the_controlled_zone(service: Service) -> MissionPlan:
    """A short recon whose whole path lies in the controlled zone but clear of the airport's
    no-fly core and height limits below 120 m (found on the district's own geometry)."""
    d = service.district
    control = d.zone("ckg-control").polygon
    low = shapely.union_all([z.polygon for z in d.airspace
                             if z.kind == "prohibited" or (z.kind == "height_limited" and z.ceiling_agl_m < 120)])
    w, s, e, n = control.bounds
    for lat in np.arange(s, n, 0.005):
        for lon in np.arange(w, e, 0.005):
            home, target = (float(lon), float(lat)), (float(lon) + 0.02, float(lat))
            leg = shapely.LineString([home, target]).buffer(0.002)
            if control.contains(leg) and not leg.intersects(low):
                vehicle = Candidate("UAV-1", "copter", *home, battery_pct=100.0, available=True,
                                    cruise_speed_mps=12.0, endurance_s=1800.0)
                return plan_recon(vehicle, home, d.terrain.elevation_at(*home), target, terrain=d.terrain,
                                  zones=[z for z in d.airspace if z.kind != "controlled"], clearance_m=40.0)
    raise AssertionError("no leg inside the controlled zone clear of lower limits")


def test_a_plan_in_controlled_airspace_flies_only_under_a_valid_grant(district: Path, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    settings = Settings(broker_url="mqtt://127.0.0.1:9", data_dir=tmp_path, district_dir=district, api_token="t")
    service = Service(settings, district_dir=district, clock=clock)
    plan = _flight_into_the_controlled_zone(service)

    with pytest.raises(PlanRefused) as refused:
        service._with_approvals(plan)  # noqa: SLF001 — the dispatch path's approval step
    assert "Jiangbei airport controlled airspace" in refused.value.reasons[0]
    assert "no grant on record" in refused.value.reasons[0] and "未获批准" in refused.value.reasons_zh[0]

    def grant(**over: object) -> dict:
        fields = dict(zone_id="ckg-control", granted_by="Chongqing ATM sub-bureau", reference="CQ-2026-0701-17",
                      valid_from=NOW - timedelta(hours=1), valid_to=NOW + timedelta(hours=4), max_alt_agl_m=120.0,
                      area=None, note="flood season emergency flights", by="dispatcher-wang")
        fields.update(over)
        return service.grants.record(**fields)  # type: ignore[arg-type]

    expired = grant(valid_to=NOW - timedelta(minutes=1), reference="OLD-1")
    assert not expired["active"]
    low = grant(max_alt_agl_m=20.0, reference="LOW-1")
    with pytest.raises(PlanRefused) as refused:
        service._with_approvals(plan)  # noqa: SLF001
    assert f"above grant {low['id']}'s cap of 20 m" in refused.value.reasons[0]

    good = grant()
    approved = service._with_approvals(plan)  # noqa: SLF001
    (used,) = approved.approvals
    assert used["grant_id"] == str(good["id"]) and used["reference"] == "CQ-2026-0701-17"
    assert used["flight_max_agl_m"] <= 120.0
    assert any("CQ-2026-0701-17" in c for c in approved.checks)

    # the grant's area may be smaller than the zone: a flight outside it is not covered
    elsewhere = shapely.Point(plan.path[1]).buffer(0.001)
    service.grants.revoke(good["id"], by="dispatcher-wang")
    grant(area=shapely.geometry.mapping(elsewhere), reference="AREA-1")
    with pytest.raises(PlanRefused, match="area|outside"):
        service._with_approvals(plan)  # noqa: SLF001
    assert {g["reference"]: g["active"] for g in service.grants.views()} == {
        "OLD-1": False, "LOW-1": True, "CQ-2026-0701-17": False, "AREA-1": True}
    assert low["zone_name"] == "Jiangbei airport controlled airspace"


def test_grants_and_vehicle_maintenance_over_the_api(live_system: LiveService) -> None:
    live = live_system
    now = datetime.now(timezone.utc)
    body = {"zone_id": "ckg-control", "granted_by": "Chongqing ATM sub-bureau", "reference": "CQ-1",
            "valid_from": now.isoformat(), "valid_to": (now + timedelta(hours=2)).isoformat(),
            "max_alt_agl_m": 100, "by": "dispatcher-wang"}
    url = live.base_url + "/api/airspace/grants"
    assert httpx.post(url, json=body).status_code == 401
    with live.client() as http:
        core = http.post("/api/airspace/grants", json={**body, "zone_id": "ckg-core"})
        assert core.status_code == 422 and "prohibited" in core.json()["detail"]
        limit = http.post("/api/airspace/grants", json={**body, "zone_id": "ckg-30m"})
        assert limit.status_code == 422 and "height limit is never lifted" in limit.json()["detail"]
        unknown = http.post("/api/airspace/grants", json={**body, "zone_id": "nowhere"})
        assert unknown.status_code == 422 and "ckg-control" in unknown.json()["detail"]
        backwards = http.post("/api/airspace/grants", json={**body, "valid_to": (now - timedelta(hours=1)).isoformat()})
        assert backwards.status_code == 422 and "must be after" in backwards.json()["detail"]
        naive = http.post("/api/airspace/grants", json={**body, "valid_from": "2026-07-01T10:00:00"})
        assert naive.status_code == 422
        made = http.post("/api/airspace/grants", json=body)
        assert made.status_code == 201, made.text
        grant = made.json()
        assert grant["active"] and grant["recorded_by"] == "dispatcher-wang"
        assert [g["id"] for g in live.get("/api/airspace/grants?active=true")["grants"]] == [grant["id"]]
        revoked = http.request("DELETE", f"/api/airspace/grants/{grant['id']}", json={"by": "dispatcher-li"})
        assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "dispatcher-li"
        assert live.get("/api/airspace/grants?active=true")["grants"] == []
        assert http.request("DELETE", "/api/airspace/grants/999", json={"by": "x"}).status_code == 404
    kinds = [e["kind"] for e in live.get("/api/events")["events"]]
    assert "airspace.granted" in kinds and "airspace.revoked" in kinds

    # a vehicle out of service is shown so and never planned
    vehicles = live.vehicles()
    assert vehicles["UAV-1"]["state"] == "ready" and "gas_sensor" in vehicles["UAV-1"]["payloads"]
    with live.client() as http:
        body = {"by": "tech-zhou", "reason": "propeller change", "end": (now + timedelta(hours=3)).isoformat()}
        assert http.post("/api/vehicles/UAV-9/maintenance", json=body).status_code == 404
        down = http.post("/api/vehicles/UAV-1/maintenance", json=body)
        assert down.status_code == 201 and down.json()["state"] == "maintenance", down.text
        window = down.json()["maintenance"]
        assert window["reason"] == "propeller change" and window["by"] == "tech-zhou"
        live.publish_rainstorm()
        incident = live.wait_incident()
        [plan] = http.post(f"/api/incidents/{incident['id']}/plans", json={"by": "dispatcher-wang"}).json()["plans"]
        # the nearest copter is out of service: not even considered
        assert plan["vehicle"] != "UAV-1" and not any("UAV-1" in r for r in plan["proposal"].get("reasons", []))
        up = http.request("DELETE", f"/api/vehicles/UAV-1/maintenance/{window['id']}", json={"by": "tech-zhou"})
        assert up.status_code == 200 and up.json()["state"] == "ready" and up.json()["maintenance"] is None
