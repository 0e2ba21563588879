"""Who may call what, through the running service: every route with every role (a table written
here, independently of the routes' code), scoped reads and writes of departments and crews, anonymous
reading, and the audit log of human actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from command import auth
from command.api.app import create_app
from tests.fixtures_service import open_rain_incident

USERS = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
SECRET = "a-test-signing-secret-of-32-chars!!"
OPERATOR_TOKEN = "t"  # make_service's API token

OPEN = "open"  # no token needed (liveness, metrics, sign-in, public alerts)
SIGNED_BODY = "signed body"  # the intake webhook: an HMAC signature over the body, not a token
SIGNED_IN = "signed in"  # any signed-in user, no particular action

# Every route of the API and the action that guards it (command.auth.PERMISSIONS).
ROUTES: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("GET", "/"): OPEN,  # the console page (it signs in or reads anonymously itself)
    ("GET", "/department"): OPEN,  # the department view's page (it signs in itself)
    ("GET", "/crew"): OPEN,  # the crew app's page
    ("GET", "/crew-sw.js"): OPEN,  # its service worker
    ("GET", "/healthz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("POST", "/api/auth/sign-in"): OPEN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    ("GET", "/api/district"): "map.read",
    ("GET", "/api/gazetteer"): "map.read",
    ("GET", "/api/official/warnings"): "map.read",
    ("POST", "/api/official/cap"): "official.write",
    ("POST", "/api/forecasts/rain"): "official.write",
    ("GET", "/api/forecasts/rain"): "map.read",
    ("GET", "/api/flood"): "map.read",
    ("GET", "/api/risk"): "map.read",
    ("GET", "/api/layers/{name}"): "map.read",
    ("GET", "/api/sensors"): "map.read",
    ("GET", "/api/sensors/{sensor_id}/readings"): "map.read",
    ("GET", "/api/sensors/{sensor_id}/commands"): "map.read",
    ("POST", "/api/ingest/senml"): "sensor.ingest",
    ("POST", "/api/sensors/{sensor_id}/maintenance"): "sensor.maintenance",
    ("DELETE", "/api/sensors/{sensor_id}/maintenance/{window_id}"): "sensor.maintenance",
    ("POST", "/api/sensors/{sensor_id}/command"): "sensor.maintenance",
    ("GET", "/api/incidents"): "incident.read",
    ("GET", "/api/incidents/{incident_id}"): "incident.read",
    ("POST", "/api/incidents"): "incident.create",
    ("POST", "/api/intake/incidents"): SIGNED_BODY,
    ("GET", "/api/incidents/{incident_id}/reporter"): "incident.reporter.read",
    ("POST", "/api/incidents/{incident_id}/verify"): "incident.verify",
    ("POST", "/api/incidents/{incident_id}/ack"): "incident.ack",
    ("POST", "/api/incidents/{incident_id}/confirm"): "incident.verify",
    ("POST", "/api/incidents/{incident_id}/false-alarm"): "incident.verify",
    ("POST", "/api/incidents/{incident_id}/close"): "incident.close",
    ("POST", "/api/incidents/{incident_id}/reopen"): "incident.close",
    ("POST", "/api/incidents/{incident_id}/merge"): "incident.close",
    ("POST", "/api/incidents/{incident_id}/response"): "incident.response",
    ("POST", "/api/incidents/{incident_id}/dispatch"): "plan.propose",
    ("POST", "/api/incidents/{incident_id}/plans"): "plan.propose",
    ("GET", "/api/plans"): "plan.read",
    ("GET", "/api/plans/{plan_id}"): "plan.read",
    ("POST", "/api/plans/{plan_id}/approve"): "plan.approve",
    ("POST", "/api/plans/{plan_id}/preempt"): "plan.approve",
    ("POST", "/api/plans/{plan_id}/reject"): "plan.approve",
    ("POST", "/api/plans/{plan_id}/edit"): "plan.approve",
    ("POST", "/api/airspace/grants"): "airspace.grant",
    ("GET", "/api/airspace/grants"): "airspace.read",
    ("DELETE", "/api/airspace/grants/{grant_id}"): "airspace.grant",
    ("GET", "/api/vehicles"): "vehicle.read",
    ("GET", "/api/vehicles/{name}/track"): "vehicle.read",
    ("POST", "/api/vehicles/{name}/maintenance"): "vehicle.maintenance",
    ("DELETE", "/api/vehicles/{name}/maintenance/{window_id}"): "vehicle.maintenance",
    ("POST", "/api/vehicles/{name}/control"): "vehicle.command",
    ("DELETE", "/api/vehicles/{name}/control"): "vehicle.command",
    ("POST", "/api/vehicles/{name}/command"): "vehicle.command",
    ("POST", "/api/fleet/command"): "vehicle.command",
    ("GET", "/api/flights"): "flight.read",
    ("GET", "/api/flights.csv"): "flight.read",
    ("GET", "/api/flights/{flight_id}"): "flight.read",
    ("GET", "/api/tasks"): "task.read",
    ("GET", "/api/tasks/{task_id}"): "task.read",
    ("POST", "/api/tasks/{task_id}/ack"): ("task.ack", "crew.task.update"),
    ("POST", "/api/tasks/{task_id}/start"): ("task.update", "crew.task.update"),
    ("POST", "/api/tasks/{task_id}/done"): ("task.update", "crew.task.update"),
    ("POST", "/api/tasks/{task_id}/decline"): ("task.update", "crew.task.update"),
    ("POST", "/api/tasks/{task_id}/delivered"): ("task.update", "crew.task.update"),
    ("GET", "/api/incidents/{incident_id}/warnings"): "delivery.read",
    ("GET", "/api/deliveries"): "delivery.read",
    ("GET", "/api/departments"): "department.read",
    ("GET", "/api/crews"): "crew.read",
    ("POST", "/api/crews/{crew_id}/position"): "crew.position",
    ("POST", "/api/crews/{crew_id}/status"): "crew.status",
    ("POST", "/api/tasks/{task_id}/assign"): "crew.task.assign",
    ("POST", "/api/crews/{crew_id}/tasks"): "crew.task.assign",
    ("POST", "/api/photos"): "crew.task.update",
    ("GET", "/api/photos/{photo_id}"): "task.read",
    ("GET", "/api/crews/{crew_id}"): "crew.read",
    ("POST", "/api/crews/{crew_id}/sos"): "crew.sos",
    ("POST", "/api/crews/{crew_id}/sos/ack"): "crew.sos.ack",
    ("POST", "/api/crews/{crew_id}/check-in"): "crew.checkin",
    ("GET", "/api/events"): "events.read",
    ("GET", "/api/audit"): "audit.read",
    ("POST", "/api/incidents/{incident_id}/alerts"): "alert.draft",
    ("POST", "/api/alerts/messages/{message_id}/release"): "alert.release",
    ("POST", "/api/alerts/messages/{message_id}/withdraw"): "alert.release",
    ("GET", "/api/alerts/cap"): OPEN,
    ("GET", "/api/alerts"): OPEN,
    ("GET", "/api/alerts/{alert_id}"): OPEN,
    ("GET", "/api/alerts/messages/{message_id}.xml"): OPEN,
    ("GET", "/api/alerts/messages/{message_id}"): OPEN,
    ("POST", "/api/incidents/{incident_id}/evacuation-zones"): "evacuation.update",
    ("GET", "/api/incidents/{incident_id}/evacuation"): "evacuation.read",
    ("GET", "/api/evacuation-zones/{zone_id}"): "evacuation.read",
    ("POST", "/api/evacuation-zones/{zone_id}/counts"): "evacuation.update",
    ("POST", "/api/evacuation-zones/{zone_id}/close"): "evacuation.update",
    ("POST", "/api/evacuation-zones/{zone_id}/reopen"): "evacuation.update",
    ("GET", "/api/shelters"): "evacuation.read",
    ("POST", "/api/shelters/{facility_id}/occupancy"): "evacuation.update",
    ("POST", "/api/incidents/{incident_id}/reports"): "report.issue",
    ("GET", "/api/incidents/{incident_id}/reports"): "report.read",
    ("GET", "/api/reports/{report_id}.txt"): "report.read",
    ("GET", "/api/reports/{report_id}"): "report.read",
}

# One user of each role (tests/data/users_sample.yaml; each password is "<id>-yubei-2025").
ONE_ROLE_USERS = {"admin": "admin-he", "duty_chief": "chief-liu", "dispatcher": "wu-dispatch",
                  "pilot": "pilot-zhao", "department": "fire-wang", "crew": "luoqi-zhang", "viewer": "screen-hall"}


def _route_key(route: APIRoute) -> list[tuple[str, str]]:
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {message_id:int} -> {message_id}
    return [(m, path) for m in sorted(route.methods - {"HEAD"})]


def _concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "1"), path)


async def _sign_in(http: httpx.AsyncClient, user: str) -> str:
    r = await http.post("/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def test_every_route_with_every_role(make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET, intake_secret="an-intake-secret-0123")
    app = create_app(service)
    api_routes = [r for r in app.routes if isinstance(r, APIRoute)]
    in_app = {k for r in api_routes for k in _route_key(r)}
    assert in_app - ROUTES.keys() == set(), "routes without an entry in this table"
    assert ROUTES.keys() - in_app == set(), "entries of this table the app does not have"
    named = {a for v in ROUTES.values() for a in (v if isinstance(v, tuple) else (v,))}
    assert named - {OPEN, SIGNED_IN, SIGNED_BODY} <= set(auth.ACTIONS)

    incident_id = await open_rain_incident(service, mosquitto.url)
    task = service.store.tasks(incident_id=incident_id)[0]
    ids = {"incident_id": str(incident_id), "task_id": str(task.id), "name": "UAV-1", "crew_id": "crew-luoqi-water",
           "sensor_id": next(iter(service.registry))}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        tokens: dict[str, str | None] = {role: await _sign_in(http, user) for role, user in ONE_ROLE_USERS.items()}
        tokens["(anonymous)"] = None
        tokens["(api token)"] = OPERATOR_TOKEN
        failures: list[str] = []
        for (method, path), action in sorted(ROUTES.items()):
            url = _concrete(path, ids)
            for who, token in tokens.items():
                # a body no route accepts: a caller let through gets 422 (or 404 for a missing thing), never 2xx
                r = await http.request(method, url, headers=_bearer(token),
                                       **({"json": ["not", "a", "body"]} if method != "GET" else {}))
                expected = _expectation(action, who)
                got = r.status_code
                ok = {"pass": got not in (401, 403) and got < 500,
                      "pass or scope": got != 401 and got < 500,
                      "401": got == 401, "403": got == 403}[expected]
                if not ok:
                    failures.append(f"{method} {url} as {who}: expected {expected}, got {got} {r.text[:120]}")
        assert failures == [], "\n".join(failures)


def _expectation(action: str | tuple[str, ...], who: str) -> str:
    if isinstance(action, tuple):  # any of them lets the caller through; the thing then decides (403/404)
        outcomes = {_expectation(a, who) for a in action}
        for outcome in ("pass", "pass or scope"):
            if outcome in outcomes:
                return outcome
        return outcomes.pop()
    if action == SIGNED_BODY:
        return "401"  # no token opens it, not even the operator's: only the signature
    if action == OPEN:
        return "pass"
    if who == "(api token)":
        return "401" if action == SIGNED_IN else "pass"  # the operator is not a user
    if who == "(anonymous)":
        return "401"  # a users file is configured: no anonymous reading
    if action == SIGNED_IN:
        return "pass"
    grant = auth.PERMISSIONS[action].grants.get(who)
    if grant is None:
        return "403"
    return "pass or scope" if grant == auth.OWN else "pass"  # own: then checked on the thing (403/404)


async def test_departments_and_crews_read_and_act_only_within_their_scope(make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    incident_id = await open_rain_incident(service, mosquitto.url)
    rows = service.store.tasks(incident_id=incident_id)
    by_dept: dict[str, list[int]] = {}
    for t in rows:
        by_dept.setdefault(t.department, []).append(t.id)
    assert "fire" in by_dept and len(by_dept) >= 2, by_dept
    other = next(d for d in by_dept if d != "fire")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        fire = _bearer(await _sign_in(http, "fire-wang"))
        seen = (await http.get("/api/tasks", headers=fire)).json()["tasks"]
        assert {t["department"] for t in seen} == {"fire"} and len(seen) == len(by_dept["fire"])
        # another department's task: not even its existence is told
        assert (await http.get(f"/api/tasks/{by_dept[other][0]}", headers=fire)).status_code == 404
        refused = await http.post(f"/api/tasks/{by_dept[other][0]}/ack", headers=fire, json={"by": "fire-wang"})
        assert refused.status_code == 404
        acked = await http.post(f"/api/tasks/{by_dept['fire'][0]}/ack", headers=fire, json={"by": "someone else"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["task"]["acknowledged_by"] == "fire-wang"  # the signed-in user, not the body's name
        # an incident: the public view, with only the department's own tasks
        inc = (await http.get(f"/api/incidents/{incident_id}", headers=fire)).json()
        assert set(inc) <= set(auth.INCIDENT_PUBLIC_KEYS) | {"tasks"}
        assert "evidence" not in inc and {t["department"] for t in inc.get("tasks", [])} <= {"fire"}

        crew = _bearer(await _sign_in(http, "luoqi-zhang"))
        crews = (await http.get("/api/crews", headers=crew)).json()["crews"]
        assert [c["id"] for c in crews] == ["crew-luoqi-water"]
        here = {"by": "luoqi-zhang", "lon": 106.9, "lat": 29.75}
        assert (await http.post("/api/crews/crew-luoqi-water/position", headers=crew, json=here)).status_code == 200
        other_crew = await http.post("/api/crews/crew-longxing-water/position", headers=crew, json=here)
        assert other_crew.status_code == 403
        assert (await http.get("/api/tasks", headers=crew)).json()["tasks"] == []  # no department tasks


async def test_without_users_reading_is_anonymous_and_blanks_phone_numbers(make_service) -> None:
    service, _ = await make_service()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        anonymous = (await http.get("/api/departments")).json()["departments"]
        operator = (await http.get("/api/departments", headers=_bearer(OPERATOR_TOKEN))).json()["departments"]
        assert len(anonymous) == len(operator) > 0
        assert _phones(operator) and not [p for p in _phones(anonymous) if p is not None]
        write = await http.post("/api/incidents/1/ack", json={"by": "x"})
        assert write.status_code == 401 and "sign in" in write.text


def _phones(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [v for k, v in data.items() if k == "phone" or k.endswith("_phone")] + [
            p for v in data.values() for p in _phones(v)]
    if isinstance(data, list):
        return [p for v in data for p in _phones(v)]
    return []


async def test_every_human_action_is_in_the_audit_log(make_service, mosquitto) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    incident_id = await open_rain_incident(service, mosquitto.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service), client=("10.1.2.3", 5123)),
                                 base_url="http://t") as http:
        chief = _bearer(await _sign_in(http, "chief-liu"))
        acked = await http.post(f"/api/incidents/{incident_id}/ack", headers={**chief, "User-Agent": "console/1"},
                                json={"by": "chief-liu"})
        assert acked.status_code == 200, acked.text
        viewer = _bearer(await _sign_in(http, "screen-hall"))
        assert (await http.post(f"/api/incidents/{incident_id}/close", headers=viewer,
                                json={"by": "screen-hall", "reason": "x"})).status_code == 403
        assert (await http.post("/api/auth/sign-in", json={"user": "chief-liu", "password": "wrong-guess"})
                ).status_code == 401
        assert (await http.post("/api/incidents/1/ack", headers=_bearer(OPERATOR_TOKEN), json={"by": "duty desk"})
                ).status_code in (200, 409)
        log = (await http.get("/api/audit", headers=chief)).json()["audit"]
        assert (await http.get("/api/audit", headers=viewer)).status_code == 403

    ack = next(r for r in log if r["action"] == "incident.ack" and r["user"] == "chief-liu")
    assert ack["remote_addr"] == "10.1.2.3" and ack["user_agent"] == "console/1" and ack["status"] == 200
    assert ack["roles"] == ["duty_chief"] and ack["token_id"]
    assert ack["target"] == f"POST /api/incidents/{incident_id}/ack"
    assert ack["changes"]["request"] == {"by": "chief-liu"}
    changed = ack["changes"]["events"]
    assert [e["kind"] for e in changed] == ["incident.acknowledged"], changed
    stored = {e.seq: e for e in service.store.events(limit=100_000)}
    assert stored[changed[0]["seq"]].data["action"]["by"] == "chief-liu"  # the event's data is what changed

    refused = next(r for r in log if r["action"] == "incident.close")
    assert (refused["user"], refused["status"], refused["changes"]["events"]) == ("screen-hall", 403, [])
    sign_ins = [r for r in log if r["action"] == "auth.sign_in"]
    failed = next(r for r in sign_ins if r["status"] == 401)
    assert failed["changes"]["request"] == {"user": "chief-liu", "password": "(redacted)"}
    assert all("yubei-2025" not in str(r) for r in log)  # no password of the successful ones either
    operator = next(r for r in log if r["user"] == "(api token)")
    assert operator["changes"]["request"] == {"by": "duty desk"}
    # reading is not a human action to audit; the audit log itself is not changed by reading it
    assert not [r for r in log if r["target"].startswith("GET ")]


@pytest.mark.parametrize("token", ["", "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"])
async def test_malformed_authorization_headers_are_401(make_service, token: str) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        r = await http.get("/api/incidents", headers={"Authorization": token} if token else {})
        assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer"
