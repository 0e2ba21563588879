"""HTTP and WebSocket API (FastAPI). Thin: every decision is the service's."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AwareDatetime, BaseModel, Field

import mapui
from uav.errors import VehicleError, VehicleUnavailable

from .. import auth
from ..grants import GrantRefused
from ..photos import MAX_PHOTO_BYTES, PhotoError, PhotoStore
from ..runtime import Conflict, Refused, Service, Unavailable
from ..store import NotFound
from .alerts import add_routes as add_alert_routes
from .auth import Authenticator
from .auth import add_routes as add_auth_routes
from .evacuation import add_routes as add_evacuation_routes
from .guard import AuditMiddleware, Guard
from .incident_life import add_routes as add_incident_life_routes
from .live import add_routes as add_live_routes
from .metrics import render_metrics

log = logging.getLogger("command.api")

MAX_INGEST_BYTES = 1_000_000
LAYERS = ("boundary", "rivers", "roads", "facilities", "airspace")
# A route's caller as its guard lets it through (``None``: the operator's API token).
Who = auth.Principal | None


class DispatchBody(BaseModel):
    by: str = Field("dispatcher", min_length=1, max_length=64, description="who approves")
    pilot: str | None = Field(None, min_length=1, max_length=64,
                              description="remote pilot in command for the flight (default: who approves)")


class VerifyBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who confirms")
    how: Literal["dispatcher", "drone", "crew", "report"] = Field(
        ..., description="how it was confirmed: seen by the dispatcher (video, call), a drone, a crew, a report")
    note: str = Field("", max_length=500)


class MaintenanceBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=200)
    start: AwareDatetime | None = Field(None, description="default: now")
    end: AwareDatetime


class StationCommandBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    actuator: Literal["siren", "light"]
    state: Literal["on", "off"]
    duration_s: int = Field(600, ge=1, le=3600, description="how long the station keeps it on")
    reason: str = Field(..., min_length=1, max_length=200)


class EndMaintenanceBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)


class ControlBody(BaseModel):
    operator: str = Field(..., min_length=1, max_length=64, description="who takes control")
    force: bool = Field(False, description="take control from another operator (logged)")


class ReleaseBody(BaseModel):
    operator: str = Field(..., min_length=1, max_length=64)


class VehicleCommandBody(BaseModel):
    operator: str = Field(..., min_length=1, max_length=64, description="who commands")
    action: Literal["hold", "resume", "rtl", "land", "look_at", "photo"]
    lon: float | None = Field(None, ge=-180, le=180, description="look_at: where")
    lat: float | None = Field(None, ge=-90, le=90)


class FleetCommandBody(BaseModel):
    operator: str = Field(..., min_length=1, max_length=64)
    action: Literal["rtl", "hold"]
    force: bool = False
    polygon: list[tuple[float, float]] | None = Field(None, min_length=3, description="hold: the area, lon/lat")


class GrantBody(BaseModel):
    zone_id: str = Field(..., min_length=1, max_length=64,
                         description="a controlled zone of airspace.geojson, or national-ceiling (above 120 m)")
    granted_by: str = Field(..., min_length=1, max_length=120, description="the approving air traffic body")
    reference: str = Field(..., min_length=1, max_length=120, description="its approval number")
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    max_alt_agl_m: float = Field(..., ge=0, le=1000, description="approved height cap, metres above ground")
    area: dict[str, Any] | None = Field(None, description="GeoJSON Polygon of the approved area; default: the zone")
    note: str = Field("", max_length=500)
    by: str = Field(..., min_length=1, max_length=64, description="who records it")


class ProposeBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who asks for plans")


class ApproveBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who approves")
    pilot: str = Field(..., min_length=1, max_length=64, description="remote pilot in command of the flight")
    override_reason: str | None = Field(None, min_length=1, max_length=500,
                                        description="launch despite a failed weather check (logged with who)")


class CrewPositionBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who reports it")
    lon: float = Field(..., ge=-180, le=180)
    lat: float = Field(..., ge=-90, le=90)
    at: AwareDatetime | None = Field(None, description="when it was there (default: now)")
    source: Literal["app", "gps", "dispatcher", "radio"] = "app"


class CrewStatusBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    status: Literal["available", "on_task", "off_duty", "unavailable"]
    incident_id: int | None = Field(None, ge=1, description="on_task: the incident it works on")


class PreemptBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=500)
    for_incident: int = Field(..., ge=1, description="the higher-priority incident that needs the vehicle")


class RejectBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=500)


class EditBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=500)
    vehicle: str | None = Field(None, min_length=1, max_length=64, description="fly it with this vehicle")
    clearance_m: float | None = Field(None, ge=20, le=120, description="height over the highest ground, m")


class RevokeBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)


OpId = Field(None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
             description="the client's id of this change: sent again (an offline queue's replay), it is answered "
                         "again and not repeated")


class AckBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acknowledges for the department")
    op_id: str | None = OpId


class TaskNoteBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who works on it")
    note: str = Field("", max_length=1000)
    op_id: str | None = OpId


class TaskReportBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    report: str = Field(..., min_length=1, max_length=2000, description="what was done")
    photo_ids: list[str] = Field(default_factory=list, max_length=10, description="photos (POST /api/photos)")
    op_id: str | None = OpId


class TaskDeclineBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=1000, description="why the department cannot do it")
    op_id: str | None = OpId


class CrewTaskBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    incident_id: int = Field(..., ge=1)
    text: str = Field(..., min_length=1, max_length=1000, description="what to do (English or the only text)")
    text_zh: str | None = Field(None, min_length=1, max_length=1000)
    lon: float | None = Field(None, ge=-180, le=180, description="where (default: nowhere in particular)")
    lat: float | None = Field(None, ge=-90, le=90)


class AssignBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    crew: str = Field(..., min_length=1, max_length=64, description="one of the department's crews")
    note: str | None = Field(None, max_length=500)


class SosBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    note: str = Field("", max_length=500)
    op_id: str | None = OpId


class CheckInBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    op_id: str | None = OpId


class ByOnlyBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)


class TaskDeliveredBody(BaseModel):
    channel: str = Field(..., min_length=1, max_length=64, description="what confirmed it: department view, ...")


def create_app(service: Service) -> FastAPI:
    # Handlers are ``async def`` on purpose: they run on the event loop that owns the
    # service (a sync handler would run in a worker thread and race the loop).
    app = FastAPI(title="Yingji 应急", version="0.1.0",
                  description="Command system of a district emergency bureau")
    app.add_middleware(AuditMiddleware, service=service)
    app.state.authenticator = authenticator = Authenticator(service)
    guard = Guard(service, authenticator)
    app.state.guard = guard
    acting = guard.acting

    def pilot_in_command(pilot: str) -> str:
        """With users configured, the pilot named for a flight must be one of them with the pilot role."""
        users = authenticator.users
        if users:
            user = users.get(pilot)
            if user is None or user.disabled or not auth.allowed(auth.Principal.from_user(user), "flight.pilot"):
                raise HTTPException(422, f"{pilot!r} is not a pilot in command (a user with the pilot role)")
        return pilot

    add_auth_routes(app, authenticator)
    add_incident_life_routes(app, service, guard)
    add_alert_routes(app, service, guard)
    add_evacuation_routes(app, service, guard)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, err: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, err: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=409)

    @app.exception_handler(Refused)
    async def _refused(_: Request, err: Refused) -> JSONResponse:
        return JSONResponse({"detail": f"refused: {err}"}, status_code=422)

    @app.exception_handler(VehicleError)
    async def _vehicle(_: Request, err: VehicleError) -> JSONResponse:
        if isinstance(err, VehicleUnavailable):
            return JSONResponse({"detail": str(err)}, status_code=503)
        # the vehicle answered, but no (or failed): a gateway error, with its words
        return JSONResponse({"detail": f"the vehicle did not carry it out: {err}",
                             "error": type(err).__name__}, status_code=502)

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, err: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503)

    # Open on purpose: liveness and metrics (counts only) for the machines that watch the service.
    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "mqtt": "connected" if service.mqtt_connected else "disconnected",
                "ready": service.ready.is_set()}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return render_metrics(service, getattr(app.state, "live_hub", None))

    read_map = [guard("map.read")]

    @app.get("/api/district", dependencies=read_map)
    async def district() -> dict[str, Any]:
        d = service.district
        zh, _, en = d.notice.partition(" / ")  # the notice is "中文 / English" or one language
        return {"name": d.name, "name_zh": d.name_zh, "synthetic": d.synthetic,
                "notice": {"zh": zh, "en": en or zh},
                "bbox": list(d.bbox), "center": list(d.center), "tile_url": service.settings.tile_url,
                "tile_crs": service.settings.tile_crs}

    @app.post("/api/official/cap", status_code=201, dependencies=[guard("official.write")])
    async def official_cap(request: Request) -> dict[str, Any]:
        """An official warning as CAP 1.2 XML (from the meteorological or hydrological service)."""
        payload = await request.body()
        return service.receive_cap(payload)

    @app.get("/api/official/warnings", dependencies=read_map)
    async def official_warnings(all: bool = False) -> dict[str, Any]:  # noqa: A002
        """Official warnings, shown apart from the system's own assessments (active ones by default)."""
        return {"warnings": service.official_warnings(active_only=not all),
                "note": "Issued by the meteorological and hydrological services; the system's own assessments "
                        "are under /api/incidents and /api/risk."}

    @app.post("/api/forecasts/rain", dependencies=[guard("official.write")])
    async def rain_forecast(body: dict[str, Any]) -> dict[str, Any]:
        """A gridded rain forecast: accumulations from its issue time to each lead (mm)."""
        return service.receive_forecast(body)

    @app.get("/api/forecasts/rain", dependencies=read_map)
    async def latest_forecast() -> dict[str, Any]:
        return {"forecast": service.rain_forecast.to_wire() if service.rain_forecast else None}

    @app.get("/api/flood", dependencies=read_map)
    async def flood() -> dict[str, Any]:
        """Flood extents (GeoJSON) of the open flood incidents: an upper bound per gauge reach."""
        return service.flood_geojson()

    @app.get("/api/risk", dependencies=read_map)
    async def risk() -> dict[str, Any]:
        """Risk hotspots (GeoJSON) with their level, people, facilities and why."""
        return service.risk_geojson()

    @app.get("/api/layers/{name}", dependencies=read_map)
    async def layer(name: str) -> dict[str, Any]:
        if name not in LAYERS:
            raise HTTPException(404, f"unknown layer {name!r}; layers: {', '.join(LAYERS)}")
        return service.district.layers[name]

    @app.get("/api/sensors", dependencies=read_map)
    async def sensors() -> dict[str, Any]:
        return service.sensors_geojson()

    @app.get("/api/sensors/{sensor_id}/readings", dependencies=read_map)
    async def readings(sensor_id: str, limit: int = 500) -> dict[str, Any]:
        if service.registry.get(sensor_id) is None:
            raise HTTPException(404, f"unknown sensor {sensor_id!r}")
        rows = service.store.readings(sensor_id, limit=max(1, min(limit, 5000)))
        return {"sensor_id": sensor_id, "readings": [
            {"quantity": r.quantity, "value": r.value, "unit": r.unit, "time": r.time.isoformat(),
             "flag": r.flag, "qc": r.qc or []} for r in rows]}

    @app.post("/api/ingest/senml", dependencies=[guard("sensor.ingest")])
    async def ingest_senml(request: Request) -> JSONResponse:
        """SenML JSON (RFC 8428) for devices that cannot do MQTT: names carry the sensor id."""
        payload = await request.body()
        if len(payload) > MAX_INGEST_BYTES:
            raise HTTPException(413, f"a SenML pack may be at most {MAX_INGEST_BYTES} bytes")
        readings, rejections = await service.ingestor.check_pack(payload)
        stored = service.ingest_http(readings) if readings else []
        body = {
            "accepted": len(stored),
            "flagged": [{"sensor_id": r.sensor_id, "quantity": r.quantity, "time": r.time.isoformat(),
                         "flag": r.flag, "qc": [n.detail for n in r.qc]} for r in stored if r.flag != "good"],
            "rejected": [{"reason": r.reason, "detail": r.detail, "sensor_id": r.sensor_id} for r in rejections],
        }
        # nothing usable in the pack is the client's error; a partly good pack is stored and answered 200
        return JSONResponse(body, status_code=200 if stored or not rejections else 422)

    upkeep = guard("sensor.maintenance")

    @app.post("/api/sensors/{sensor_id}/maintenance", status_code=201)
    async def add_maintenance(sensor_id: str, body: MaintenanceBody, who: Who = upkeep) -> dict[str, Any]:
        return service.add_maintenance(sensor_id, start=body.start, end=body.end, reason=body.reason,
                                       by=acting(who, body.by))

    @app.post("/api/sensors/{sensor_id}/command", status_code=202)
    async def station_command(sensor_id: str, body: StationCommandBody, who: Who = upkeep) -> dict[str, Any]:
        """Switch a warning station's siren or light; its answer arrives as an event."""
        return service.station_command(sensor_id, actuator=body.actuator, state=body.state,
                                       duration_s=body.duration_s, by=acting(who, body.by), reason=body.reason)

    @app.get("/api/sensors/{sensor_id}/commands", dependencies=read_map)
    async def station_commands(sensor_id: str) -> dict[str, Any]:
        if service.registry.get(sensor_id) is None:
            raise HTTPException(404, f"unknown sensor {sensor_id!r}")
        return {"commands": [c for c in service.commands.values() if c["sensor_id"] == sensor_id]}

    @app.delete("/api/sensors/{sensor_id}/maintenance/{window_id}")
    async def end_maintenance(sensor_id: str, window_id: int, body: EndMaintenanceBody,
                              who: Who = upkeep) -> dict[str, Any]:
        return service.end_maintenance(sensor_id, window_id, by=acting(who, body.by))

    read_incidents = guard("incident.read")

    @app.get("/api/incidents")
    async def incidents(who: Who = read_incidents) -> dict[str, Any]:
        return {"incidents": guard.shape_all(who, "incident.read",
                                             (service.incident_view(r) for r in service.store.incidents()))}

    @app.get("/api/incidents/{incident_id}")
    async def incident(incident_id: int, who: Who = read_incidents) -> dict[str, Any]:
        return guard.shape(who, "incident.read",
                           service.incident_view(service.store.incident(incident_id), evidence=True))

    @app.post("/api/incidents/{incident_id}/verify")
    async def verify(incident_id: int, body: VerifyBody, who: Who = guard("incident.verify")) -> dict[str, Any]:
        return {"incident": service.verify_incident(incident_id, by=acting(who, body.by), how=body.how,
                                                    note=body.note)}

    propose = guard("plan.propose")

    @app.post("/api/incidents/{incident_id}/dispatch", status_code=202)
    async def dispatch(incident_id: int, body: DispatchBody | None = None, who: Who = propose) -> dict[str, Any]:
        body = body or DispatchBody()
        by = acting(who, body.by)
        return {"incident": service.approve_dispatch(incident_id, by=by, pilot=pilot_in_command(body.pilot or by))}

    @app.post("/api/incidents/{incident_id}/plans", status_code=201)
    async def propose_plans(incident_id: int, body: ProposeBody, who: Who = propose) -> dict[str, Any]:
        """Plans for the incident's vehicle tasks: which vehicle, path, time to target, battery at landing,
        approvals; or why no vehicle can fly a task."""
        return await service.propose_plans_async(incident_id, by=acting(who, body.by))

    read_plans = [guard("plan.read")]

    @app.get("/api/plans", dependencies=read_plans)
    async def plans(incident_id: int | None = None, state: str | None = None) -> dict[str, Any]:
        return {"plans": service.plans_of(incident_id, (state,) if state else None)}

    @app.get("/api/plans/{plan_id}", dependencies=read_plans)
    async def plan(plan_id: int) -> dict[str, Any]:
        return service.plan_view(service.store.plan(plan_id))

    decide_plan = guard("plan.approve")

    @app.post("/api/plans/{plan_id}/approve", status_code=202)
    async def approve_plan(plan_id: int, body: ApproveBody, who: Who = decide_plan) -> dict[str, Any]:
        return service.approve_plan(plan_id, by=acting(who, body.by), pilot=pilot_in_command(body.pilot),
                                    override_reason=body.override_reason)

    @app.post("/api/plans/{plan_id}/preempt")
    async def preempt_plan(plan_id: int, body: PreemptBody, who: Who = decide_plan) -> dict[str, Any]:
        """Recall a flying plan's vehicle for a higher-priority incident; its task is handed over."""
        return service.preempt_plan(plan_id, by=acting(who, body.by), reason=body.reason,
                                    for_incident=body.for_incident)

    @app.post("/api/plans/{plan_id}/reject")
    async def reject_plan(plan_id: int, body: RejectBody, who: Who = decide_plan) -> dict[str, Any]:
        return service.reject_plan(plan_id, by=acting(who, body.by), reason=body.reason)

    @app.post("/api/plans/{plan_id}/edit", status_code=201)
    async def edit_plan(plan_id: int, body: EditBody, who: Who = decide_plan) -> dict[str, Any]:
        return service.edit_plan(plan_id, by=acting(who, body.by), vehicle=body.vehicle,
                                 clearance_m=body.clearance_m, reason=body.reason)

    grant_airspace = guard("airspace.grant")

    @app.post("/api/airspace/grants", status_code=201)
    async def record_grant(body: GrantBody, who: Who = grant_airspace) -> dict[str, Any]:
        """Record an approval from air traffic management; plans may then fly inside it."""
        try:
            return service.grants.record(zone_id=body.zone_id, granted_by=body.granted_by, reference=body.reference,
                                         valid_from=body.valid_from, valid_to=body.valid_to,
                                         max_alt_agl_m=body.max_alt_agl_m, area=body.area, note=body.note,
                                         by=acting(who, body.by))
        except GrantRefused as err:
            raise Refused(str(err)) from None

    @app.get("/api/airspace/grants", dependencies=[guard("airspace.read")])
    async def list_grants(active: bool = False) -> dict[str, Any]:
        return {"grants": service.grants.views(active_only=active)}

    @app.delete("/api/airspace/grants/{grant_id}")
    async def revoke_grant(grant_id: int, body: RevokeBody, who: Who = grant_airspace) -> dict[str, Any]:
        return service.grants.revoke(grant_id, by=acting(who, body.by))

    read_vehicles = [guard("vehicle.read")]

    @app.get("/api/vehicles", dependencies=read_vehicles)
    async def vehicles() -> dict[str, Any]:
        return {"vehicles": service.vehicles()}

    vehicle_upkeep = guard("vehicle.maintenance")

    @app.post("/api/vehicles/{name}/maintenance", status_code=201)
    async def vehicle_maintenance(name: str, body: MaintenanceBody, who: Who = vehicle_upkeep) -> dict[str, Any]:
        """Take a vehicle out of service until ``end`` (repairs, inspection): it is not planned meanwhile."""
        return service.vehicle_maintenance(name, by=acting(who, body.by), reason=body.reason, end=body.end,
                                           start=body.start)

    @app.delete("/api/vehicles/{name}/maintenance/{window_id}")
    async def end_vehicle_maintenance(name: str, window_id: int, body: EndMaintenanceBody,
                                      who: Who = vehicle_upkeep) -> dict[str, Any]:
        return service.end_vehicle_maintenance(name, window_id, by=acting(who, body.by))

    @app.get("/api/vehicles/{name}/track", dependencies=read_vehicles)
    async def track(name: str, limit: int = 2000) -> dict[str, Any]:
        if name not in service.vehicle_specs:
            raise HTTPException(404, f"unknown vehicle {name!r}")
        rows = service.store.track(name, limit=max(1, min(limit, 20000)))
        return {"vehicle": name, "track": [
            {"time": r.time.isoformat(), "lon": r.lon, "lat": r.lat, "alt_rel_m": r.alt_rel_m,
             "mode": r.mode, "armed": r.armed, "battery_pct": r.battery_pct} for r in rows]}

    pilot_only = guard("vehicle.command")  # only a pilot commands a vehicle

    @app.post("/api/vehicles/{name}/control")
    async def take_control(name: str, body: ControlBody, who: Who = pilot_only) -> dict[str, Any]:
        return await service.take_control(name, operator=acting(who, body.operator), force=body.force)

    @app.delete("/api/vehicles/{name}/control", status_code=204)
    async def release_control(name: str, body: ReleaseBody, who: Who = pilot_only) -> None:
        await service.release_control(name, operator=acting(who, body.operator))

    @app.post("/api/vehicles/{name}/command")
    async def vehicle_command(name: str, body: VehicleCommandBody, who: Who = pilot_only) -> dict[str, Any]:
        return await service.vehicle_command(name, body.action, operator=acting(who, body.operator), lon=body.lon,
                                             lat=body.lat)

    @app.post("/api/fleet/command")
    async def fleet_command(body: FleetCommandBody, who: Who = pilot_only) -> dict[str, Any]:
        return await service.fleet_command(body.action, operator=acting(who, body.operator), force=body.force,
                                           polygon=body.polygon)

    read_flights = [guard("flight.read")]

    @app.get("/api/flights", dependencies=read_flights)
    async def flights(vehicle: str | None = None) -> dict[str, Any]:
        return {"flights": [service.flight_view(f) for f in service.store.flights(vehicle=vehicle)]}

    @app.get("/api/flights.csv", response_class=PlainTextResponse, dependencies=read_flights)
    async def flights_csv() -> PlainTextResponse:
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["id", "vehicle", "incident_id", "pilot", "approved_by", "approved_at", "takeoff_at",
                   "landed_at", "state", "max_agl_m", "distance_m"]
        writer.writerow(columns)
        for f in service.store.flights():
            view = service.flight_view(f)
            writer.writerow(["" if view[c] is None else view[c] for c in columns])
        return PlainTextResponse(out.getvalue(), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="flight-log.csv"'})

    @app.get("/api/flights/{flight_id}", dependencies=read_flights)
    async def flight(flight_id: int) -> dict[str, Any]:
        return service.flight_view(service.store.flight(flight_id), path=True)

    read_tasks = guard("task.read")

    @app.get("/api/tasks")
    async def tasks(incident_id: int | None = None, department: str | None = None, crew: str | None = None,
                    open_only: bool = False, who: Who = read_tasks) -> dict[str, Any]:
        rows = service.store.tasks(incident_id=incident_id, department=department, open_only=open_only, crew=crew)
        return {"tasks": guard.shape_all(who, "task.read", (service.task_view(t) for t in rows))}

    @app.get("/api/tasks/{task_id}")
    async def task(task_id: int, who: Who = read_tasks) -> dict[str, Any]:
        view = guard.shape(who, "task.read", service.task_view(service.store.task(task_id)))
        view["deliveries"] = [service.delivery_view(d) for d in service.store.deliveries(task_id=task_id)]
        return view

    def task_of(task_id: int, who: auth.Principal | None, action: str) -> None:
        """404 for a task ``who`` may not read, 403 for one they read but may not act on. A crew member
        acts on its crew's tasks (crew.task.update), a department member on its department's."""
        row = service.store.task(task_id)
        guard.shape(who, "task.read", service.task_view(row))
        if who is not None and row.crew is not None and "crew" in who.roles and who.crew == row.crew:
            guard.require(who, "crew.task.update", crew=row.crew)
        else:
            guard.require(who, action, department=row.department)

    # a crew member acts on its crew's tasks with crew.task.update: task_of tells which action applies
    ack_task, update_task = guard("task.ack", "crew.task.update"), guard("task.update", "crew.task.update")

    @app.post("/api/tasks/{task_id}/ack")
    async def ack(task_id: int, body: AckBody, who: Who = ack_task) -> dict[str, Any]:
        """Acknowledge a department task; for a crew's task: the crew accepts it."""
        task_of(task_id, who, "task.ack")
        return {"task": service.acknowledge_task(task_id, by=acting(who, body.by), op_id=body.op_id)}

    @app.post("/api/tasks/{task_id}/start")
    async def start(task_id: int, body: TaskNoteBody, who: Who = update_task) -> dict[str, Any]:
        """Work has started; for a crew's task: the crew is on site."""
        task_of(task_id, who, "task.update")
        return {"task": service.start_task(task_id, by=acting(who, body.by), note=body.note or None,
                                           op_id=body.op_id)}

    @app.post("/api/tasks/{task_id}/done")
    async def done(task_id: int, body: TaskReportBody, who: Who = update_task) -> dict[str, Any]:
        task_of(task_id, who, "task.update")
        missing = [p for p in body.photo_ids if not photos.exists(p)]
        if missing:
            raise HTTPException(422, f"unknown photo(s) {', '.join(missing)}: upload them first (POST /api/photos)")
        return {"task": service.complete_task(task_id, by=acting(who, body.by), report=body.report,
                                              op_id=body.op_id, photos=tuple(body.photo_ids))}

    @app.post("/api/tasks/{task_id}/decline")
    async def decline(task_id: int, body: TaskDeclineBody, who: Who = update_task) -> dict[str, Any]:
        task_of(task_id, who, "task.update")
        return {"task": service.decline_task(task_id, by=acting(who, body.by), reason=body.reason, op_id=body.op_id)}

    @app.post("/api/tasks/{task_id}/delivered")
    async def delivered(task_id: int, body: TaskDeliveredBody, who: Who = update_task) -> dict[str, Any]:
        task_of(task_id, who, "task.update")
        return {"task": service.task_delivered(task_id, channel=body.channel)}

    assign = guard("crew.task.assign")

    @app.post("/api/tasks/{task_id}/assign", status_code=201)
    async def assign_task(task_id: int, body: AssignBody, who: Who = assign) -> dict[str, Any]:
        """Hand a department task to one of the department's crews (a crew task pointing back to it)."""
        row = service.store.task(task_id)
        guard.shape(who, "task.read", service.task_view(row))
        guard.require(who, "crew.task.assign", department=row.department)
        return {"task": service.assign_task_to_crew(task_id, crew_id=body.crew, by=acting(who, body.by),
                                                    note=body.note)}

    @app.post("/api/crews/{crew_id}/tasks", status_code=201)
    async def crew_task(crew_id: str, body: CrewTaskBody, who: Who = assign) -> dict[str, Any]:
        """Give a crew a task at a place (a dispatcher on the map)."""
        spec = service.crew_specs.get(crew_id)
        if spec is None:
            raise HTTPException(404, f"no crew or unit {crew_id!r}")
        guard.require(who, "crew.task.assign", department=spec.department)
        return {"task": service.create_crew_task(crew_id, by=acting(who, body.by), incident_id=body.incident_id,
                                                 text=body.text, text_zh=body.text_zh, lon=body.lon, lat=body.lat)}

    photos = PhotoStore(service.settings.data_dir / "photos")

    @app.post("/api/photos", status_code=201)
    async def upload_photo(request: Request, who: Who = guard("crew.task.update")) -> dict[str, Any]:
        """A photo for a report: the image itself as the body (image/jpeg or image/png), at most 5 MB."""
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_PHOTO_BYTES:
            raise HTTPException(413, f"a photo may be at most {MAX_PHOTO_BYTES} bytes")
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > MAX_PHOTO_BYTES:
                raise HTTPException(413, f"a photo may be at most {MAX_PHOTO_BYTES} bytes")
        try:
            photo_id = photos.save(bytes(data))
        except PhotoError as err:
            raise HTTPException(422, str(err)) from None
        service.bus.publish("crew.photo", {"photo_id": photo_id, "by": acting(who, "(api token)"),
                                           "crew": who.crew if who is not None else None, "bytes": len(data)})
        return {"photo_id": photo_id, "url": f"/api/photos/{photo_id}"}

    @app.get("/api/photos/{photo_id}", dependencies=[guard("task.read")])
    async def photo(photo_id: str) -> FileResponse:
        found = photos.path(photo_id)
        if found is None:
            raise HTTPException(404, f"no photo {photo_id!r}")
        return FileResponse(found[0], media_type=found[1])

    @app.get("/api/incidents/{incident_id}/warnings", dependencies=[guard("delivery.read")])
    async def warnings(incident_id: int) -> dict[str, Any]:
        service.store.incident(incident_id)  # 404 for an unknown incident
        return service.warnings_view(incident_id)

    @app.get("/api/crews")
    async def crews(who: Who = guard("crew.read")) -> dict[str, Any]:
        """Crews and department units: where they are, whether they are free."""
        return {"crews": guard.shape_all(who, "crew.read", service.crews_view())}

    @app.post("/api/crews/{crew_id}/position")
    async def crew_position(crew_id: str, body: CrewPositionBody, who: Who = guard("crew.position")
                            ) -> dict[str, Any]:
        guard.require(who, "crew.position", crew=crew_id)
        return service.report_crew_position(crew_id, lon=body.lon, lat=body.lat, at=body.at,
                                            by=acting(who, body.by), source=body.source)

    @app.post("/api/crews/{crew_id}/status")
    async def crew_status(crew_id: str, body: CrewStatusBody, who: Who = guard("crew.status")) -> dict[str, Any]:
        guard.require(who, "crew.status", crew=crew_id)
        return service.set_crew_status(crew_id, status=body.status, by=acting(who, body.by),
                                       incident_id=body.incident_id)

    @app.get("/api/crews/{crew_id}")
    async def crew_one(crew_id: str, who: Who = guard("crew.read")) -> dict[str, Any]:
        return guard.shape(who, "crew.read", service.crew_view(service._crew_row(crew_id)))

    @app.post("/api/crews/{crew_id}/sos", status_code=201)
    async def crew_sos(crew_id: str, body: SosBody, who: Who = guard("crew.sos")) -> dict[str, Any]:
        """A crew calls for help: an alarm on the console until a dispatcher acknowledges it."""
        guard.require(who, "crew.sos", crew=crew_id)
        return service.crew_sos(crew_id, by=acting(who, body.by), lon=body.lon, lat=body.lat, note=body.note,
                                op_id=body.op_id)

    @app.post("/api/crews/{crew_id}/sos/ack")
    async def crew_sos_ack(crew_id: str, body: ByOnlyBody, who: Who = guard("crew.sos.ack")) -> dict[str, Any]:
        return {"crew": service.acknowledge_crew_sos(crew_id, by=acting(who, body.by))}

    @app.post("/api/crews/{crew_id}/check-in")
    async def crew_check_in(crew_id: str, body: CheckInBody, who: Who = guard("crew.checkin")) -> dict[str, Any]:
        """The crew is safe: its next check-in is due in crew_checkin_s."""
        guard.require(who, "crew.checkin", crew=crew_id)
        return {"crew": service.crew_check_in(crew_id, by=acting(who, body.by), op_id=body.op_id)}

    @app.get("/api/departments")
    async def departments(who: Who = guard("department.read")) -> dict[str, Any]:
        return {"departments": guard.shape_all(who, "department.read", service.departments_view())}

    @app.get("/api/deliveries", dependencies=[guard("delivery.read")])
    async def deliveries(task_id: int | None = None, state: Literal["pending", "delivered", "failed"] | None = None,
                         limit: int = 200) -> dict[str, Any]:
        rows = service.store.deliveries(task_id=task_id, state=state, limit=max(1, min(limit, 2000)))
        return {"deliveries": [service.delivery_view(d) for d in rows]}

    @app.get("/api/events")
    async def events(after: int = 0, limit: int = 500, who: Who = guard("events.read")) -> dict[str, Any]:
        rows = service.store.events(after=max(0, after), limit=max(1, min(limit, 5000)))
        return {"events": guard.events(who, rows)}

    @app.get("/api/audit", dependencies=[guard("audit.read")])
    async def audit_log(user: str | None = None, action: str | None = None, after: int = 0,
                        limit: int = 500) -> dict[str, Any]:
        """The audit log of human actions: who, when, from where, what they asked and what changed."""
        rows = service.store.audit(user=user, action=action, after=max(0, after), limit=max(1, min(limit, 5000)))
        return {"audit": [{"id": r.id, **r.record} for r in rows]}

    add_live_routes(app, service)

    static = Path(mapui.STATIC_DIR)
    vendor = static.parent / "node_modules" / "maplibre-gl" / "dist"
    if vendor.is_dir():
        app.mount("/vendor/maplibre-gl", StaticFiles(directory=vendor), name="maplibre")
    else:
        log.warning("MapLibre assets missing at %s: run `make install` (npm install in mapui/)", vendor)
    gcoord = static.parent / "node_modules" / "gcoord" / "dist"
    if gcoord.is_dir():
        app.mount("/vendor/gcoord", StaticFiles(directory=gcoord), name="gcoord")
    static.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")

    def page(name: str, **kwargs: Any) -> FileResponse:
        path = static / name
        if not path.is_file():
            raise HTTPException(404, f"{name} is not installed")
        return FileResponse(path, **kwargs)

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return page("index.html")

    @app.get("/department", include_in_schema=False)
    async def department_view() -> FileResponse:
        """A department's own view (signs in as a department member)."""
        return page("department.html")

    @app.get("/crew", include_in_schema=False)
    async def crew_app() -> FileResponse:
        """The field crews' phone app (an installable PWA; signs in as a crew member)."""
        return page("crew.html")

    @app.get("/crew-sw.js", include_in_schema=False)
    async def crew_service_worker() -> FileResponse:
        # served from the root so its scope covers /crew (a worker's scope is its own path and below)
        return page("crew-sw.js", media_type="text/javascript",
                    headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"})

    return app
