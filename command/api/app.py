"""HTTP and WebSocket API (FastAPI). Thin: every decision is the service's."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import AwareDatetime, BaseModel, Field

import mapui
from uav.errors import VehicleError, VehicleUnavailable

from .. import auth
from ..grants import GrantRefused
from ..runtime import Conflict, Refused, Service, Unavailable
from ..store import NotFound
from .alerts import add_routes as add_alert_routes
from .auth import add_routes as add_auth_routes
from .evacuation import add_routes as add_evacuation_routes
from .incident_life import add_routes as add_incident_life_routes
from .metrics import render_metrics

log = logging.getLogger("command.api")

MAX_INGEST_BYTES = 1_000_000
LAYERS = ("boundary", "rivers", "roads", "facilities", "airspace")
# Module level: FastAPI resolves the (postponed) annotations below in this module's globals.
bearer = HTTPBearer(auto_error=False)


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


class AckBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who acknowledges for the department")


class TaskNoteBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64, description="who works on it")
    note: str = Field("", max_length=1000)


class TaskReportBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    report: str = Field(..., min_length=1, max_length=2000, description="what was done")


class TaskDeclineBody(BaseModel):
    by: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=1000, description="why the department cannot do it")


class TaskDeliveredBody(BaseModel):
    channel: str = Field(..., min_length=1, max_length=64, description="what confirmed it: department view, ...")


def create_app(service: Service) -> FastAPI:
    # Handlers are ``async def`` on purpose: they run on the event loop that owns the
    # service (a sync handler would run in a worker thread and race the loop).
    app = FastAPI(title="Yingji 应急", version="0.1.0",
                  description="Command system of a district emergency bureau")

    async def require_token(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if cred is None or not secrets.compare_digest(cred.credentials.encode(), service.token.encode()):
            raise HTTPException(401, "a valid bearer token is required for this action",
                                headers={"WWW-Authenticate": "Bearer"})

    Auth = Depends(require_token)

    def authorize(action: str) -> Any:
        """A route's guard: the service's API token (the operator: allowed), or a signed-in user's token
        whose roles allow ``action`` (``command.auth.PERMISSIONS``); 401 without either, 403 when not allowed."""

        async def check(request: Request,
                        cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> auth.Principal | None:
            if cred is not None and secrets.compare_digest(cred.credentials.encode(), service.token.encode()):
                return None
            principal = app.state.authenticator.principal(request)  # 401 for a missing or refused token
            if not auth.allowed(principal, action):
                raise HTTPException(403, f"{principal.user_id} ({', '.join(sorted(principal.roles))}) may not "
                                         f"{action}")
            return principal

        return check

    def acting(principal: auth.Principal | None, named: str) -> str:
        """Who acts: the signed-in user (whatever the body says), else the name the operator gave."""
        return principal.user_id if principal is not None else named

    def pilot_in_command(pilot: str) -> str:
        """With users configured, the pilot named for a flight must be one of them with the pilot role."""
        users = app.state.authenticator.users
        if users:
            user = users.get(pilot)
            if user is None or user.disabled or not auth.allowed(auth.Principal.from_user(user), "flight.pilot"):
                raise HTTPException(422, f"{pilot!r} is not a pilot in command (a user with the pilot role)")
        return pilot
    add_incident_life_routes(app, service, Auth)
    add_alert_routes(app, service, Auth)
    add_evacuation_routes(app, service, Auth)
    app.state.authenticator = add_auth_routes(app, service, Auth)

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

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "mqtt": "connected" if service.mqtt_connected else "disconnected",
                "ready": service.ready.is_set()}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return render_metrics(service)

    @app.get("/api/district")
    async def district() -> dict[str, Any]:
        d = service.district
        zh, _, en = d.notice.partition(" / ")  # the notice is "中文 / English" or one language
        return {"name": d.name, "name_zh": d.name_zh, "synthetic": d.synthetic,
                "notice": {"zh": zh, "en": en or zh},
                "bbox": list(d.bbox), "center": list(d.center), "tile_url": service.settings.tile_url}

    @app.post("/api/official/cap", status_code=201, dependencies=[Auth])
    async def official_cap(request: Request) -> dict[str, Any]:
        """An official warning as CAP 1.2 XML (from the meteorological or hydrological service)."""
        payload = await request.body()
        return service.receive_cap(payload)

    @app.get("/api/official/warnings")
    async def official_warnings(all: bool = False) -> dict[str, Any]:  # noqa: A002
        """Official warnings, shown apart from the system's own assessments (active ones by default)."""
        return {"warnings": service.official_warnings(active_only=not all),
                "note": "Issued by the meteorological and hydrological services; the system's own assessments "
                        "are under /api/incidents and /api/risk."}

    @app.post("/api/forecasts/rain", dependencies=[Auth])
    async def rain_forecast(body: dict[str, Any]) -> dict[str, Any]:
        """A gridded rain forecast: accumulations from its issue time to each lead (mm)."""
        return service.receive_forecast(body)

    @app.get("/api/forecasts/rain")
    async def latest_forecast() -> dict[str, Any]:
        return {"forecast": service.rain_forecast.to_wire() if service.rain_forecast else None}

    @app.get("/api/flood")
    async def flood() -> dict[str, Any]:
        """Flood extents (GeoJSON) of the open flood incidents: an upper bound per gauge reach."""
        return service.flood_geojson()

    @app.get("/api/risk")
    async def risk() -> dict[str, Any]:
        """Risk hotspots (GeoJSON) with their level, people, facilities and why."""
        return service.risk_geojson()

    @app.get("/api/layers/{name}")
    async def layer(name: str) -> dict[str, Any]:
        if name not in LAYERS:
            raise HTTPException(404, f"unknown layer {name!r}; layers: {', '.join(LAYERS)}")
        return service.district.layers[name]

    @app.get("/api/sensors")
    async def sensors() -> dict[str, Any]:
        return service.sensors_geojson()

    @app.get("/api/sensors/{sensor_id}/readings")
    async def readings(sensor_id: str, limit: int = 500) -> dict[str, Any]:
        if service.registry.get(sensor_id) is None:
            raise HTTPException(404, f"unknown sensor {sensor_id!r}")
        rows = service.store.readings(sensor_id, limit=max(1, min(limit, 5000)))
        return {"sensor_id": sensor_id, "readings": [
            {"quantity": r.quantity, "value": r.value, "unit": r.unit, "time": r.time.isoformat(),
             "flag": r.flag, "qc": r.qc or []} for r in rows]}

    @app.post("/api/ingest/senml", dependencies=[Auth])
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

    @app.post("/api/sensors/{sensor_id}/maintenance", status_code=201, dependencies=[Auth])
    async def add_maintenance(sensor_id: str, body: MaintenanceBody) -> dict[str, Any]:
        return service.add_maintenance(sensor_id, start=body.start, end=body.end, reason=body.reason, by=body.by)

    @app.post("/api/sensors/{sensor_id}/command", status_code=202, dependencies=[Auth])
    async def station_command(sensor_id: str, body: StationCommandBody) -> dict[str, Any]:
        """Switch a warning station's siren or light; its answer arrives as an event."""
        return service.station_command(sensor_id, actuator=body.actuator, state=body.state,
                                       duration_s=body.duration_s, by=body.by, reason=body.reason)

    @app.get("/api/sensors/{sensor_id}/commands")
    async def station_commands(sensor_id: str) -> dict[str, Any]:
        if service.registry.get(sensor_id) is None:
            raise HTTPException(404, f"unknown sensor {sensor_id!r}")
        return {"commands": [c for c in service.commands.values() if c["sensor_id"] == sensor_id]}

    @app.delete("/api/sensors/{sensor_id}/maintenance/{window_id}", dependencies=[Auth])
    async def end_maintenance(sensor_id: str, window_id: int, body: EndMaintenanceBody) -> dict[str, Any]:
        return service.end_maintenance(sensor_id, window_id, by=body.by)

    @app.get("/api/incidents")
    async def incidents() -> dict[str, Any]:
        return {"incidents": [service.incident_view(r) for r in service.store.incidents()]}

    @app.get("/api/incidents/{incident_id}")
    async def incident(incident_id: int) -> dict[str, Any]:
        return service.incident_view(service.store.incident(incident_id), evidence=True)

    @app.post("/api/incidents/{incident_id}/verify", dependencies=[Auth])
    async def verify(incident_id: int, body: VerifyBody) -> dict[str, Any]:
        return {"incident": service.verify_incident(incident_id, by=body.by, how=body.how, note=body.note)}

    @app.post("/api/incidents/{incident_id}/dispatch", status_code=202, dependencies=[Auth])
    async def dispatch(incident_id: int, body: DispatchBody | None = None) -> dict[str, Any]:
        body = body or DispatchBody()
        return {"incident": service.approve_dispatch(incident_id, by=body.by, pilot=body.pilot)}

    @app.post("/api/incidents/{incident_id}/plans", status_code=201, dependencies=[Auth])
    async def propose_plans(incident_id: int, body: ProposeBody) -> dict[str, Any]:
        """Plans for the incident's vehicle tasks: which vehicle, path, time to target, battery at landing,
        approvals; or why no vehicle can fly a task."""
        return await service.propose_plans_async(incident_id, by=body.by)

    @app.get("/api/plans")
    async def plans(incident_id: int | None = None, state: str | None = None) -> dict[str, Any]:
        return {"plans": service.plans_of(incident_id, (state,) if state else None)}

    @app.get("/api/plans/{plan_id}")
    async def plan(plan_id: int) -> dict[str, Any]:
        return service.plan_view(service.store.plan(plan_id))

    @app.post("/api/plans/{plan_id}/approve", status_code=202)
    async def approve_plan(plan_id: int, body: ApproveBody,
                           who: auth.Principal | None = Depends(authorize("plan.approve"))) -> dict[str, Any]:
        return service.approve_plan(plan_id, by=acting(who, body.by), pilot=pilot_in_command(body.pilot),
                                    override_reason=body.override_reason)

    @app.post("/api/plans/{plan_id}/preempt", dependencies=[Auth])
    async def preempt_plan(plan_id: int, body: PreemptBody) -> dict[str, Any]:
        """Recall a flying plan's vehicle for a higher-priority incident; its task is handed over."""
        return service.preempt_plan(plan_id, by=body.by, reason=body.reason, for_incident=body.for_incident)

    @app.post("/api/plans/{plan_id}/reject", dependencies=[Auth])
    async def reject_plan(plan_id: int, body: RejectBody) -> dict[str, Any]:
        return service.reject_plan(plan_id, by=body.by, reason=body.reason)

    @app.post("/api/plans/{plan_id}/edit", status_code=201, dependencies=[Auth])
    async def edit_plan(plan_id: int, body: EditBody) -> dict[str, Any]:
        return service.edit_plan(plan_id, by=body.by, vehicle=body.vehicle, clearance_m=body.clearance_m,
                                 reason=body.reason)

    @app.post("/api/airspace/grants", status_code=201, dependencies=[Auth])
    async def record_grant(body: GrantBody) -> dict[str, Any]:
        """Record an approval from air traffic management; plans may then fly inside it."""
        try:
            return service.grants.record(zone_id=body.zone_id, granted_by=body.granted_by, reference=body.reference,
                                         valid_from=body.valid_from, valid_to=body.valid_to,
                                         max_alt_agl_m=body.max_alt_agl_m, area=body.area, note=body.note,
                                         by=body.by)
        except GrantRefused as err:
            raise Refused(str(err)) from None

    @app.get("/api/airspace/grants")
    async def list_grants(active: bool = False) -> dict[str, Any]:
        return {"grants": service.grants.views(active_only=active)}

    @app.delete("/api/airspace/grants/{grant_id}", dependencies=[Auth])
    async def revoke_grant(grant_id: int, body: RevokeBody) -> dict[str, Any]:
        return service.grants.revoke(grant_id, by=body.by)

    @app.get("/api/vehicles")
    async def vehicles() -> dict[str, Any]:
        return {"vehicles": service.vehicles()}

    @app.post("/api/vehicles/{name}/maintenance", status_code=201, dependencies=[Auth])
    async def vehicle_maintenance(name: str, body: MaintenanceBody) -> dict[str, Any]:
        """Take a vehicle out of service until ``end`` (repairs, inspection): it is not planned meanwhile."""
        return service.vehicle_maintenance(name, by=body.by, reason=body.reason, end=body.end, start=body.start)

    @app.delete("/api/vehicles/{name}/maintenance/{window_id}", dependencies=[Auth])
    async def end_vehicle_maintenance(name: str, window_id: int, body: EndMaintenanceBody) -> dict[str, Any]:
        return service.end_vehicle_maintenance(name, window_id, by=body.by)

    @app.get("/api/vehicles/{name}/track")
    async def track(name: str, limit: int = 2000) -> dict[str, Any]:
        if name not in service.vehicle_specs:
            raise HTTPException(404, f"unknown vehicle {name!r}")
        rows = service.store.track(name, limit=max(1, min(limit, 20000)))
        return {"vehicle": name, "track": [
            {"time": r.time.isoformat(), "lon": r.lon, "lat": r.lat, "alt_rel_m": r.alt_rel_m,
             "mode": r.mode, "armed": r.armed, "battery_pct": r.battery_pct} for r in rows]}

    pilot_only = Depends(authorize("vehicle.command"))  # only a pilot commands a vehicle

    @app.post("/api/vehicles/{name}/control")
    async def take_control(name: str, body: ControlBody, who: auth.Principal | None = pilot_only) -> dict[str, Any]:
        return await service.take_control(name, operator=acting(who, body.operator), force=body.force)

    @app.delete("/api/vehicles/{name}/control", status_code=204)
    async def release_control(name: str, body: ReleaseBody, who: auth.Principal | None = pilot_only) -> None:
        await service.release_control(name, operator=acting(who, body.operator))

    @app.post("/api/vehicles/{name}/command")
    async def vehicle_command(name: str, body: VehicleCommandBody,
                              who: auth.Principal | None = pilot_only) -> dict[str, Any]:
        return await service.vehicle_command(name, body.action, operator=acting(who, body.operator), lon=body.lon,
                                             lat=body.lat)

    @app.post("/api/fleet/command")
    async def fleet_command(body: FleetCommandBody, who: auth.Principal | None = pilot_only) -> dict[str, Any]:
        return await service.fleet_command(body.action, operator=acting(who, body.operator), force=body.force,
                                           polygon=body.polygon)

    @app.get("/api/flights")
    async def flights(vehicle: str | None = None) -> dict[str, Any]:
        return {"flights": [service.flight_view(f) for f in service.store.flights(vehicle=vehicle)]}

    @app.get("/api/flights.csv", response_class=PlainTextResponse)
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

    @app.get("/api/flights/{flight_id}")
    async def flight(flight_id: int) -> dict[str, Any]:
        return service.flight_view(service.store.flight(flight_id), path=True)

    @app.get("/api/tasks")
    async def tasks(incident_id: int | None = None, department: str | None = None,
                    open_only: bool = False) -> dict[str, Any]:
        rows = service.store.tasks(incident_id=incident_id, department=department, open_only=open_only)
        return {"tasks": [service.task_view(t) for t in rows]}

    @app.get("/api/tasks/{task_id}")
    async def task(task_id: int) -> dict[str, Any]:
        view = service.task_view(service.store.task(task_id))
        view["deliveries"] = [service.delivery_view(d) for d in service.store.deliveries(task_id=task_id)]
        return view

    @app.post("/api/tasks/{task_id}/ack", dependencies=[Auth])
    async def ack(task_id: int, body: AckBody) -> dict[str, Any]:
        return {"task": service.acknowledge_task(task_id, by=body.by)}

    @app.post("/api/tasks/{task_id}/start", dependencies=[Auth])
    async def start(task_id: int, body: TaskNoteBody) -> dict[str, Any]:
        return {"task": service.start_task(task_id, by=body.by, note=body.note or None)}

    @app.post("/api/tasks/{task_id}/done", dependencies=[Auth])
    async def done(task_id: int, body: TaskReportBody) -> dict[str, Any]:
        return {"task": service.complete_task(task_id, by=body.by, report=body.report)}

    @app.post("/api/tasks/{task_id}/decline", dependencies=[Auth])
    async def decline(task_id: int, body: TaskDeclineBody) -> dict[str, Any]:
        return {"task": service.decline_task(task_id, by=body.by, reason=body.reason)}

    @app.post("/api/tasks/{task_id}/delivered", dependencies=[Auth])
    async def delivered(task_id: int, body: TaskDeliveredBody) -> dict[str, Any]:
        return {"task": service.task_delivered(task_id, channel=body.channel)}

    @app.get("/api/incidents/{incident_id}/warnings")
    async def warnings(incident_id: int) -> dict[str, Any]:
        service.store.incident(incident_id)  # 404 for an unknown incident
        return service.warnings_view(incident_id)

    @app.get("/api/crews")
    async def crews() -> dict[str, Any]:
        """Crews and department units: where they are, whether they are free."""
        return {"crews": service.crews_view()}

    @app.post("/api/crews/{crew_id}/position", dependencies=[Auth])
    async def crew_position(crew_id: str, body: CrewPositionBody) -> dict[str, Any]:
        return service.report_crew_position(crew_id, lon=body.lon, lat=body.lat, at=body.at, by=body.by,
                                            source=body.source)

    @app.post("/api/crews/{crew_id}/status", dependencies=[Auth])
    async def crew_status(crew_id: str, body: CrewStatusBody) -> dict[str, Any]:
        return service.set_crew_status(crew_id, status=body.status, by=body.by, incident_id=body.incident_id)

    @app.get("/api/departments")
    async def departments() -> dict[str, Any]:
        return {"departments": service.departments_view()}

    @app.get("/api/deliveries")
    async def deliveries(task_id: int | None = None, state: Literal["pending", "delivered", "failed"] | None = None,
                         limit: int = 200) -> dict[str, Any]:
        rows = service.store.deliveries(task_id=task_id, state=state, limit=max(1, min(limit, 2000)))
        return {"deliveries": [service.delivery_view(d) for d in rows]}

    @app.get("/api/events")
    async def events(after: int = 0, limit: int = 500) -> dict[str, Any]:
        rows = service.store.events(after=max(0, after), limit=max(1, min(limit, 5000)))
        return {"events": [{"seq": e.seq, "kind": e.kind, "time": e.time.isoformat(), "data": e.data}
                           for e in rows]}

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        sub = service.bus.subscribe(maxsize=2000)

        async def send() -> None:
            while True:
                event = await sub.queue.get()
                await socket.send_json(event.to_wire())

        async def receive() -> None:
            # Reading is how a disconnect is noticed; clients may send pings, ignored.
            while True:
                await socket.receive_text()

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(send())
                tg.create_task(receive())
        except* (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            service.bus.unsubscribe(sub)

    static = Path(mapui.STATIC_DIR)
    vendor = static.parent / "node_modules" / "maplibre-gl" / "dist"
    if vendor.is_dir():
        app.mount("/vendor/maplibre-gl", StaticFiles(directory=vendor), name="maplibre")
    else:
        log.warning("MapLibre assets missing at %s: run `make install` (npm install in mapui/)", vendor)
    static.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(static / "index.html")

    return app
