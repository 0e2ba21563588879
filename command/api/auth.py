"""HTTP routes of sign-in (``command.auth``): a user's password for a short-lived token, and who a token
names. Every route checks the token through ``command.api.guard``; the service's API token is the operator."""

from __future__ import annotations

import os
import secrets
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from .. import auth

__all__ = ["add_routes"]


class SignInBody(BaseModel):
    user: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class Authenticator:
    """The users file and the token secret of one service."""

    def __init__(self, service: Any) -> None:
        self.service = service
        settings = service.settings
        self.secret = (settings.auth_secret or "").encode() or os.urandom(32)
        self.users: dict[str, auth.User] = {}
        if settings.users_file is not None:
            self.users = dict(auth.load_users(settings.users_file, departments=tuple(service.district.departments),
                                              crews=tuple(c.id for c in service.district.crews)))
        pilot = settings.duty_pilot
        if pilot and self.users:  # the pilot of the flights the service starts itself must be a pilot too
            user = self.users.get(pilot)
            if user is None or user.disabled or "pilot" not in user.roles:
                raise auth.UsersFileError(f"YINGJI_DUTY_PILOT {pilot!r} is not an enabled user with the pilot role "
                                          f"in {settings.users_file}")

    def sign_in(self, user_id: str, password: str) -> dict[str, Any]:
        if not self.users:
            raise HTTPException(503, "sign-in is not configured (YINGJI_USERS_FILE)")
        try:
            signed = auth.authenticate(self.users, user_id, password)
        except auth.AuthError as err:
            raise HTTPException(401, f"sign-in refused: {err}") from None
        now = self.service.clock.now()
        ttl = int(self.service.settings.token_ttl_s)
        token = auth.issue_token(signed.user, secret=self.secret, now=now, ttl_s=ttl)
        principal = auth.verify_token(token, secret=self.secret, now=now)
        self.service.bus.publish("auth.signed_in", {"user": signed.user.id, "roles": sorted(signed.user.roles)})
        return {"token": token, "expires_at": principal.expires_at.isoformat() if principal.expires_at else None,
                "user": self.user_view(signed.user), "needs_rehash": signed.needs_rehash}

    @property
    def anonymous_read(self) -> bool:
        """Whether reading works without a token (as a viewer): the setting, else only while no users are configured."""
        setting = self.service.settings.anonymous_read
        return not self.users if setting is None else setting

    def is_service_token(self, token: str | None) -> bool:
        return bool(token) and secrets.compare_digest(token.encode(), self.service.token.encode())

    def principal_of(self, token: str | None) -> auth.Principal | None:
        """Who a bearer token names: ``None`` for the service's API token (the operator, who may do
        everything), ``auth.ANONYMOUS`` (a viewer) for no token while anonymous reading is on, else the
        signed-in user with their current roles. ``auth.AuthError`` when the token is refused."""
        if not token:
            if self.anonymous_read:
                return auth.ANONYMOUS
            raise auth.AuthError("malformed", "a sign-in token is required")
        if self.is_service_token(token):
            return None
        principal = auth.verify_token(token, secret=self.secret, now=self.service.clock.now())
        return auth.recheck(principal, self.users)

    def principal(self, request: Request) -> auth.Principal:
        """The signed-in user of a request (401 without one or with a refused token)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "a sign-in token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            principal = auth.verify_token(token.strip(), secret=self.secret, now=self.service.clock.now())
            return auth.recheck(principal, self.users)
        except auth.AuthError as err:
            raise HTTPException(401, f"token refused: {err}", headers={"WWW-Authenticate": "Bearer"}) from None

    @staticmethod
    def user_view(u: auth.User) -> dict[str, Any]:
        return {"id": u.id, "name": u.name, "name_zh": u.name_zh, "roles": sorted(u.roles),
                "department": u.department, "crew": u.crew}


def add_routes(app: FastAPI, authenticator: Authenticator) -> None:
    """Register ``POST /api/auth/sign-in`` and ``GET /api/auth/me``."""

    @app.post("/api/auth/sign-in")
    async def sign_in(body: SignInBody) -> dict[str, Any]:
        """A user's id and password for a short-lived token (``token_ttl_s``)."""
        return authenticator.sign_in(body.user, body.password)

    @app.get("/api/auth/me")
    async def me(request: Request) -> dict[str, Any]:
        """Who the bearer token names, with the roles the users file gives them now."""
        p = authenticator.principal(request)
        return {"user": authenticator.user_view(authenticator.users[p.user_id]),
                "expires_at": p.expires_at.isoformat() if p.expires_at else None}
