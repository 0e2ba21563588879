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
