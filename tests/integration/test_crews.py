"""Crews and department units as assets: at their bases at first, positions and statuses reported over
HTTP, late positions ignored, the latest kept across a restart of the service."""

from __future__ import annotations

from datetime import timedelta

import httpx

from command.api.app import create_app
from command.runtime import Service


async def test_crews_start_at_their_bases_report_positions_and_statuses(make_service) -> None:
    service, _ = await make_service()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t",
                                 headers={"Authorization": "Bearer t"}) as http:
        crews = {c["id"]: c for c in (await http.get("/api/crews")).json()["crews"]}
        assert set(crews) == {c.id for c in service.district.crews} and len(crews) == 8
        squad = crews["crew-longxing-water"]
        assert (squad["status"], squad["position_source"], squad["department"]) == ("available", "base", "fire")
        assert [squad["lon"], squad["lat"]] == squad["base"] and squad["in_district"] is True

        now = service.clock.now()
        moved = await http.post("/api/crews/crew-longxing-water/position", json={
            "by": "squad leader Chen", "lon": 106.83, "lat": 29.78, "at": now.isoformat()})
        assert moved.status_code == 200 and moved.json()["applied"] is True
        late = await http.post("/api/crews/crew-longxing-water/position", json={
            "by": "squad leader Chen", "lon": 106.70, "lat": 29.70, "at": (now - timedelta(minutes=5)).isoformat()})
        assert late.json()["applied"] is False and [late.json()["lon"], late.json()["lat"]] == [106.83, 29.78]
        future = await http.post("/api/crews/crew-longxing-water/position", json={
            "by": "x", "lon": 106.83, "lat": 29.78, "at": (now + timedelta(hours=1)).isoformat()})
        assert future.status_code == 422 and "future" in future.text
        naive = await http.post("/api/crews/crew-longxing-water/position", json={
            "by": "x", "lon": 106.83, "lat": 29.78, "at": "2026-07-12T10:00:00"})
        assert naive.status_code == 422
        assert (await http.post("/api/crews/nobody/position", json={"by": "x", "lon": 106.8, "lat": 29.8})
                ).status_code == 404
        assert (await http.post("/api/crews/crew-longxing-water/position", json={"by": "x", "lon": 200, "lat": 0})
                ).status_code == 422
        far = await http.post("/api/crews/unit-amb-luoqi/position", json={"by": "driver", "lon": 107.2, "lat": 29.9})
        assert far.json()["in_district"] is False  # reported, and flagged

        no_incident = await http.post("/api/crews/crew-longxing-water/status", json={"by": "d", "status": "on_task"})
        assert no_incident.status_code == 422 and "incident" in no_incident.text
        report = await http.post("/api/incidents", json={
            "by": "dispatcher-zhao", "kind": "flood", "level": "yellow", "title": "Street flooded",
            "source": "hotline_110", "location": {"lon": 106.83, "lat": 29.78}})
        incident_id = report.json()["incident"]["id"]
        busy = await http.post("/api/crews/crew-longxing-water/status", json={
            "by": "dispatcher-zhao", "status": "on_task", "incident_id": incident_id})
        assert busy.json()["status"] == "on_task" and busy.json()["incident_id"] == incident_id
        assert (await http.post("/api/crews/crew-longxing-water/status", json={
            "by": "d", "status": "on_task", "incident_id": 99999})).status_code == 404
        assert (await http.post("/api/crews/crew-longxing-water/status", json={"by": "d", "status": "asleep"})
                ).status_code == 422
        kinds = [e.kind for e in service.store.events(limit=5000)]
        assert kinds.count("crew.position") == 2 and kinds.count("crew.status") == 1

    # a new service on the same store knows where the squad was and what it does
    again = Service(service.settings, district_dir=service.district.path, clock=service.clock)
    squad = {c["id"]: c for c in again.crews_view()}["crew-longxing-water"]
    assert (squad["lon"], squad["lat"], squad["status"], squad["position_source"]) == (106.83, 29.78, "on_task", "app")
    again.store.close()
