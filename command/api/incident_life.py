"""HTTP routes of the incident's human life (``command.incident_life``): the gazetteer, reported
incidents (by a person with the API token, or by a hotline/CAD system through the signed intake
webhook), and a person's actions on an incident."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, model_validator

from ..auth import Principal
from ..gazetteer import MAX_QUERY_CHARS, GazetteerError
from ..incident_life import Report
from ..linkage.webhooks import SignatureError

MAX_INTAKE_BYTES = 64_000  # one incident report; anything larger is not one

Who = Principal | None  # the caller as the guard lets it through (None: the operator's API token)
Kind = Literal["flood", "rainstorm", "landslide", "fire", "chemical_leak", "other"]
Colour = Literal["blue", "yellow", "orange", "red"]
Source = Literal["dispatcher", "crew", "hotline_110", "hotline_119", "hotline_120", "hotline_12345",
                 "village_monitor", "cad"]
ResponseLevel = Literal["IV", "III", "II", "I"]


class Location(BaseModel):
    """Where: a point (lon, lat, WGS84) or a place of the district's gazetteer (GET /api/gazetteer)."""

    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    place: str | None = Field(None, min_length=1, max_length=120, description="a gazetteer id")

    @model_validator(mode="after")
    def _one_form(self) -> Location:
        point = self.lon is not None or self.lat is not None
        if point and self.place is not None:
            raise ValueError("give either lon and lat or a place, not both")
        if point and (self.lon is None or self.lat is None):
            raise ValueError("a point needs both lon and lat")
        if not point and self.place is None:
            raise ValueError("give lon and lat, or a gazetteer place")
        return self


class Reporter(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    phone: str = Field(..., min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ()\-]*$")


class ReportBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")
    kind: Kind
    level: Colour
    title: str = Field(..., min_length=1, max_length=200)
    title_zh: str | None = Field(None, min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    source: Source
    location: Location
    reporter: Reporter | None = None

    def to_report(self, external_id: str | None = None) -> Report:
        return Report(by=self.by, kind=self.kind, level=self.level, title=self.title, source=self.source,
                      title_zh=self.title_zh, description=self.description, lon=self.location.lon,
                      lat=self.location.lat, place=self.location.place,
                      reporter_name=self.reporter.name if self.reporter else None,
                      reporter_phone=self.reporter.phone if self.reporter else None, external_id=external_id)


class IntakeBody(ReportBody):
    external_id: str = Field(..., min_length=1, max_length=64, description="the caller's case number")


class ByBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")


class ConfirmBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")
    how: Literal["dispatcher", "drone", "crew", "report"] = Field(
        ..., description="how it was confirmed: seen by the dispatcher (video, call), a drone, a crew, a report")
    note: str = Field("", max_length=500)


class ReasonBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")
    reason: str = Field(..., min_length=1, max_length=500, description="why (kept with the incident)")


class MergeBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")
    into: int = Field(..., ge=1, description="the incident this one is merged into (it stays)")
    reason: str = Field("", max_length=500)


class ResponseBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acts")
    level: ResponseLevel
    reason: str = Field(..., min_length=1, max_length=500, description="why (kept with the incident)")


def _problems(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(body)'}: {e['msg']}" for e in err.errors())


def add_routes(app: FastAPI, service: Any, guard: Any) -> None:
    """Register the routes on ``app``; ``guard`` (``command.api.guard.Guard``) checks who may call them."""
    acting = guard.acting

    @app.get("/api/gazetteer", dependencies=[guard("map.read")])
    async def gazetteer(q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS,
                                       description="part of a place's Chinese or English name"),
                        limit: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
        """Named places of the district (facilities, townships, roads, rivers, bridges), best match first."""
        try:
            return {"query": q, "places": service.gazetteer.search_wire(q, limit=limit)}
        except GazetteerError as err:
            raise HTTPException(422, str(err)) from None

    @app.post("/api/incidents", status_code=201)
    async def report(body: ReportBody, who: Who = guard("incident.create")) -> dict[str, Any]:
        """An incident a person reports (a dispatcher on the map, a crew, a call taken by hand)."""
        body.by = acting(who, body.by)
        view, _ = service.report_incident(body.to_report())
        return {"incident": view}

    @app.post("/api/intake/incidents", status_code=201)
    async def intake(request: Request) -> JSONResponse:
        """An incident from a hotline or CAD system, authenticated by its HMAC signature (no token):
        ``X-Yingji-Timestamp`` and ``X-Yingji-Signature`` over the exact body (command.linkage.webhooks).
        201 with a new incident; 200 with the same incident for a case number already taken in."""
        raw = await request.body()
        if len(raw) > MAX_INTAKE_BYTES:
            raise HTTPException(413, f"an intake request may be at most {MAX_INTAKE_BYTES} bytes")
        try:
            service.check_intake(raw, request.headers)
        except SignatureError as err:
            raise HTTPException(401, f"intake signature refused ({err.reason}): {err}") from None
        try:
            body = IntakeBody.model_validate_json(raw)
        except ValidationError as err:
            raise HTTPException(422, f"bad intake body: {_problems(err)}") from None
        view, created = service.report_incident(body.to_report(body.external_id))
        return JSONResponse({"incident": view, "created": created}, status_code=201 if created else 200)

    @app.get("/api/incidents/{incident_id}/reporter", dependencies=[guard("incident.reporter.read")])
    async def reporter(incident_id: int) -> dict[str, Any]:
        """Who reported the incident, with the full phone number (the incident views mask it)."""
        return service.reporter_of(incident_id)

    @app.post("/api/incidents/{incident_id}/ack")
    async def acknowledge(incident_id: int, body: ByBody, who: Who = guard("incident.ack")) -> dict[str, Any]:
        return {"incident": service.acknowledge_incident(incident_id, by=acting(who, body.by))}

    @app.post("/api/incidents/{incident_id}/confirm")
    async def confirm(incident_id: int, body: ConfirmBody, who: Who = guard("incident.verify")) -> dict[str, Any]:
        return {"incident": service.confirm_incident(incident_id, by=acting(who, body.by), how=body.how,
                                                     note=body.note)}

    @app.post("/api/incidents/{incident_id}/false-alarm")
    async def false_alarm(incident_id: int, body: ReasonBody, who: Who = guard("incident.verify")) -> dict[str, Any]:
        return {"incident": service.mark_false_alarm(incident_id, by=acting(who, body.by), reason=body.reason)}

    @app.post("/api/incidents/{incident_id}/close")
    async def close(incident_id: int, body: ReasonBody, who: Who = guard("incident.close")) -> dict[str, Any]:
        return {"incident": service.close_incident(incident_id, by=acting(who, body.by), reason=body.reason)}

    @app.post("/api/incidents/{incident_id}/reopen")
    async def reopen(incident_id: int, body: ReasonBody, who: Who = guard("incident.close")) -> dict[str, Any]:
        return {"incident": service.reopen_incident(incident_id, by=acting(who, body.by), reason=body.reason)}

    @app.post("/api/incidents/{incident_id}/merge")
    async def merge(incident_id: int, body: MergeBody, who: Who = guard("incident.close")) -> dict[str, Any]:
        return {"incident": service.merge_incident(incident_id, into=body.into, by=acting(who, body.by),
                                                   reason=body.reason)}

    @app.post("/api/incidents/{incident_id}/response")
    async def response(incident_id: int, body: ResponseBody, who: Who = guard("incident.response")) -> dict[str, Any]:
        """Declare the emergency response level (a human decision; the advice is recorded with it)."""
        return {"incident": service.declare_response(incident_id, by=acting(who, body.by), level=body.level,
                                                     reason=body.reason)}
