"""HTTP routes of evacuation zones and incident reports (``command.evacuation``).

Who may read and write is checked by the routes' guard (``command.api.guard``). Bad bodies are 422 with
the field and the reason; an action the state forbids (closing a zone with people remaining, a
report out of order) is 409; an unknown incident, zone, shelter or report is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..auth import Principal

__all__ = ["CloseZoneBody", "CountBody", "OccupancyBody", "ReopenZoneBody", "ReportBody", "ZoneBody", "add_routes"]

MAX_PEOPLE = 10_000_000  # more than any zone or shelter holds: a typo, not a count
MAX_POSITIONS = 10_000

Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# whole numbers only: 12.5 people, "12" or true are refused, not rounded or converted
People = Annotated[int, Field(strict=True, ge=0, le=MAX_PEOPLE)]
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # a number, not "106.7"
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=3)]


class PolygonBody(BaseModel):
    """A GeoJSON Polygon in lon/lat (RFC 7946): the outer ring, then any holes, each closed."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon"]
    coordinates: list[Annotated[list[Position], Field(min_length=4)]] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _size(self) -> PolygonBody:
        n = sum(len(r) for r in self.coordinates)
        if n > MAX_POSITIONS:
            raise ValueError(f"the polygon has {n} positions; at most {MAX_POSITIONS}")
        return self


class ZoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field must not silently become a default

    by: Person = Field(..., description="who draws the zone")
    name: Name
    name_zh: Name | None = None
    area: PolygonBody | None = Field(None, description="the zone, a GeoJSON Polygon (lon/lat)")
    from_hazard: bool = Field(False, description="the zone is the incident's hazard area (its model's extent)")

    @model_validator(mode="after")
    def _one_area(self) -> ZoneBody:
        if self.area is not None and self.from_hazard:
            raise ValueError("give either area or from_hazard: true, not both")
        if self.area is None and not self.from_hazard:
            raise ValueError("give the zone's area (a GeoJSON Polygon) or from_hazard: true")
        return self


class CountBody(BaseModel):
    """A count of a zone's people (the rules: ``command.linkage.evacuation.check_count``)."""

    model_config = ConfigDict(extra="forbid")

    by: Person = Field(..., description="who gives the count")
    evacuated: People = Field(..., description="people moved out of the zone so far (a running total)")
    remaining: People = Field(..., description="people still in the zone")
    sheltered: People | None = Field(None, description="of the evacuated, people in shelters now")
    missing: People | None = None
    injured: People | None = Field(None, description="of the evacuated or remaining, people hurt")
    dead: People | None = None
    total: People | None = Field(None, description="the people the zone held, if known (a village register)")
    note: str = Field("", max_length=500)
    at: AwareDatetime | None = Field(None, description="when the count was taken; default: now")


class CloseZoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person
    reason: Text500
    refusing: People | None = Field(None, description="people remaining who refuse to leave (all who remain)")


class ReopenZoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person
    reason: Text500


class OccupancyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person
    people: People = Field(..., description="people in the shelter now")
    note: str = Field("", max_length=500)


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person = Field(..., description="who issues the report")
    kind: Literal["initial", "follow_up", "final"] = Field(..., description="首报, 续报 or 终报")
    note: str = Field("", max_length=2000, description="anything the report should add, in the sender's words")


def add_routes(app: FastAPI, service: Any, guard: Any) -> None:
    """Register the routes on ``app``; ``guard`` (``command.api.guard.Guard``) checks who may call them."""
    acting = guard.acting
    update = guard("evacuation.update")

    def zone_update(who: Principal | None) -> None:
        # A zone belongs to no department yet: a department member's "own zones" grant holds for none.
        guard.require(who, "evacuation.update", department=None)

    # -- zones ----------------------------------------------------------------------------------------
    @app.post("/api/incidents/{incident_id}/evacuation-zones", status_code=201)
    async def open_zone(incident_id: int, body: ZoneBody, who: Principal | None = update) -> dict[str, Any]:
        """Draw an evacuation zone: the people inside are estimated and the nearest shelters with room assigned."""
        zone_update(who)
        return {"zone": service.open_evacuation_zone(
            incident_id, by=acting(who, body.by), name=body.name, name_zh=body.name_zh,
            area=body.area.model_dump() if body.area is not None else None, from_hazard=body.from_hazard)}

    @app.get("/api/incidents/{incident_id}/evacuation", dependencies=[guard("evacuation.read")])
    async def incident_evacuation(incident_id: int) -> dict[str, Any]:
        """The incident's zones with their figures, their shelters and the totals."""
        return service.incident_evacuation(incident_id)

    @app.get("/api/evacuation-zones/{zone_id}", dependencies=[guard("evacuation.read")])
    async def zone(zone_id: int) -> dict[str, Any]:
        """One zone with its whole count history."""
        return {"zone": service.evacuation_zone_view(zone_id)}

    @app.post("/api/evacuation-zones/{zone_id}/counts", status_code=201)
    async def count(zone_id: int, body: CountBody, who: Principal | None = update) -> dict[str, Any]:
        """Record a count of the zone's people (kept; the zone's figures become the latest)."""
        zone_update(who)
        return {"zone": service.record_evacuation_count(
            zone_id, by=acting(who, body.by), evacuated=body.evacuated, remaining=body.remaining,
            sheltered=body.sheltered,
            missing=body.missing, injured=body.injured, dead=body.dead, total=body.total, note=body.note,
            at=body.at)}

    @app.post("/api/evacuation-zones/{zone_id}/close")
    async def close_zone(zone_id: int, body: CloseZoneBody, who: Principal | None = update) -> dict[str, Any]:
        """Close the zone: 409 without counts, or with people remaining who are not all said to refuse."""
        zone_update(who)
        return {"zone": service.close_evacuation_zone(zone_id, by=acting(who, body.by), reason=body.reason,
                                                      refusing=body.refusing)}

    @app.post("/api/evacuation-zones/{zone_id}/reopen")
    async def reopen_zone(zone_id: int, body: ReopenZoneBody, who: Principal | None = update) -> dict[str, Any]:
        zone_update(who)
        return {"zone": service.reopen_evacuation_zone(zone_id, by=acting(who, body.by), reason=body.reason)}

    # -- shelters -------------------------------------------------------------------------------------
    @app.get("/api/shelters", dependencies=[guard("evacuation.read")])
    async def shelters() -> dict[str, Any]:
        """Every shelter: capacity, occupancy (over capacity said so), the open zones it serves."""
        return service.shelters_view()

    @app.post("/api/shelters/{facility_id}/occupancy", status_code=201)
    async def occupancy(facility_id: str, body: OccupancyBody, who: Principal | None = update) -> dict[str, Any]:
        zone_update(who)
        return {"shelter": service.record_shelter_occupancy(facility_id, by=acting(who, body.by), people=body.people,
                                                            note=body.note)}

    # -- reports up -----------------------------------------------------------------------------------
    @app.post("/api/incidents/{incident_id}/reports", status_code=201)
    async def issue_report(incident_id: int, body: ReportBody,
                           who: Principal | None = guard("report.issue")) -> dict[str, Any]:
        """Issue the incident's next report: 首报 first (once), then 续报 1, 2, ..., 终报 once and last (else 409)."""
        return {"report": service.issue_report(incident_id, by=acting(who, body.by), kind=body.kind, note=body.note)}

    @app.get("/api/incidents/{incident_id}/reports", dependencies=[guard("report.read")])
    async def reports(incident_id: int) -> dict[str, Any]:
        return service.incident_reports(incident_id)

    # before /api/reports/{report_id}: that path would take "7.txt" as the id (and refuse it)
    @app.get("/api/reports/{report_id}.txt", response_class=PlainTextResponse, dependencies=[guard("report.read")])
    async def report_text(report_id: int) -> PlainTextResponse:
        """The report's text as sent: Chinese, then English."""
        return PlainTextResponse(service.report_text(report_id), media_type="text/plain; charset=utf-8")

    @app.get("/api/reports/{report_id}", dependencies=[guard("report.read")])
    async def report(report_id: int) -> dict[str, Any]:
        return {"report": service.report_view(report_id)}
