"""Sign-in through the running service: a user's password for a short-lived token that names them and
their roles; wrong passwords, disabled users and expired or forged tokens refused."""

from __future__ import annotations

from pathlib import Path

import httpx

from command.api.app import create_app

USERS = Path(__file__).resolve().parents[1] / "data" / "users_sample.yaml"
SECRET = "a-test-signing-secret-of-32-chars!!"


async def test_a_user_signs_in_and_the_token_names_them_until_it_expires(make_service) -> None:
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET, token_ttl_s=600)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        signed = await http.post("/api/auth/sign-in", json={"user": "chen-li", "password": "chen-li-yubei-2025"})
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["user"]["roles"] == ["dispatcher", "pilot"] and body["needs_rehash"] is False
        me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.status_code == 200 and me.json()["user"]["id"] == "chen-li"
        assert "auth.signed_in" in [e.kind for e in service.store.events(limit=1000)]
        # a department member's scope travels with the user
        fire = (await http.post("/api/auth/sign-in", json={"user": "fire-wang", "password": "fire-wang-yubei-2025"}
                                )).json()["user"]
        assert (fire["roles"], fire["department"]) == (["department"], "fire")

        wrong = await http.post("/api/auth/sign-in", json={"user": "chen-li", "password": "guess"})
        nobody = await http.post("/api/auth/sign-in", json={"user": "nobody", "password": "guess"})
        assert wrong.status_code == nobody.status_code == 401 and wrong.json() == nobody.json()  # tells nothing
        disabled = await http.post("/api/auth/sign-in", json={"user": "old-qian", "password": "old-qian-yubei-2025"})
        assert disabled.status_code == 401
        assert (await http.post("/api/auth/sign-in", json={"user": "", "password": "x"})).status_code == 422

        assert (await http.get("/api/auth/me")).status_code == 401
        forged = body["token"][:-2] + ("AA" if not body["token"].endswith("AA") else "BB")
        assert (await http.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
        service.clock = _Later(service.clock, 601.0)  # the token's 600 s are over
        late = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert late.status_code == 401 and "expired" in late.text


async def test_without_a_users_file_sign_in_is_off(make_service) -> None:
    service, _ = await make_service()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        off = await http.post("/api/auth/sign-in", json={"user": "chen-li", "password": "chen-li-yubei-2025"})
        assert off.status_code == 503 and "YINGJI_USERS_FILE" in off.text


class _Later:
    """The service's clock, ``seconds`` ahead."""

    def __init__(self, clock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def now(self):
        from datetime import timedelta

        return self.clock.now() + timedelta(seconds=self.seconds)


async def test_only_a_pilot_commands_a_vehicle_and_a_flight_names_a_pilot(make_service) -> None:
    """With users configured: vehicle commands need the pilot role; the approver is the signed-in user;
    the pilot named for a flight must be a user with the pilot role. The service's API token still works."""
    service, _ = await make_service(users_file=USERS, auth_secret=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://t") as http:
        async def token(user: str) -> dict[str, str]:
            r = await http.post("/api/auth/sign-in", json={"user": user, "password": f"{user}-yubei-2025"})
            return {"Authorization": f"Bearer {r.json()['token']}"}

        chief, pilot = await token("chief-liu"), await token("pilot-zhao")
        hold = {"operator": "someone", "action": "hold"}
        refused = await http.post("/api/vehicles/UAV-1/command", json=hold, headers=chief)
        assert refused.status_code == 403, refused.text
        assert refused.status_code == 403 and "chief-liu (duty_chief) may not vehicle.command" in refused.text
        assert (await http.post("/api/vehicles/UAV-1/command", json=hold)).status_code == 401
        taken = await http.post("/api/vehicles/UAV-1/control", json={"operator": "anyone"}, headers=pilot)
        assert taken.status_code == 200, taken.text
        assert service._controllers.get("UAV-1") == "pilot-zhao"  # the signed-in pilot, not the body's name
        operator = await http.post("/api/vehicles/UAV-1/control", json={"operator": "ops", "force": True},
                                   headers={"Authorization": "Bearer t"})
        assert operator.status_code == 200  # the service's API token: the operator

        # a plan approved by the signed-in duty chief names a pilot who must have the pilot role
        incident = (await http.post("/api/incidents", headers={"Authorization": "Bearer t"}, json={
            "by": "dispatcher-zhao", "kind": "other", "level": "orange", "title": "Smoke reported",
            "source": "hotline_119", "location": {"lon": 106.870, "lat": 29.718}})).json()["incident"]
        [plan] = (await http.post(f"/api/incidents/{incident['id']}/plans", json={"by": "x"},
                                  headers={"Authorization": "Bearer t"})).json()["plans"]
        not_pilot = await http.post(f"/api/plans/{plan['id']}/approve", headers=chief,
                                    json={"by": "x", "pilot": "chief-liu", "override_reason": "no station"})
        assert not_pilot.status_code == 422 and "not a pilot in command" in not_pilot.text
        assert service.store.plan(plan["id"]).state == "proposed"
        approved = await http.post(f"/api/plans/{plan['id']}/approve", headers=chief,
                                   json={"by": "x", "pilot": "pilot-zhao", "override_reason": "no station"})
        assert approved.status_code == 202, approved.text
        assert (approved.json()["decided_by"], approved.json()["pilot"]) == ("chief-liu", "pilot-zhao")


async def test_the_duty_pilot_must_be_a_pilot_user(make_service) -> None:
    import pytest

    from command.auth import UsersFileError

    service, _ = await make_service(users_file=USERS, auth_secret=SECRET, duty_pilot="pilot-zhao")
    assert create_app(service).state.authenticator.users["pilot-zhao"].roles == frozenset({"pilot"})
    for who in ("fire-wang", "nobody", "old-qian"):
        service.settings.duty_pilot = who
        with pytest.raises(UsersFileError, match="pilot role"):
            create_app(service)
