"""Who may call a route: one guard for every route, and the audit log of what people did.

Every route names one action of ``command.auth.PERMISSIONS`` (``guard("task.ack")``). The guard
reads the bearer token:

- the service's API token is the operator (scripts, other systems, the demo): every action;
- a signed-in user's token: the actions their roles hold. An action granted only for the user's
  own department or crew (``own``) passes the guard and is then checked on the thing itself
  (``guard.require(who, "task.ack", department=task.department)``);
- no token: a viewer when anonymous reading is on (``Settings.anonymous_read``; by default only
  while no users file is configured), so reading works and phone numbers are blanked; 401 for
  anything else.

Reads are shaped to the reader with ``guard.shape`` / ``guard.shape_all`` (``auth.view``): a
department member reads its own department's tasks and the public view of incidents, a crew its
own crew, a viewer everything with phone numbers blanked.

The audit log
-------------
``AuditMiddleware`` writes one record per state-changing request (POST, PUT, PATCH, DELETE under
``/api/``) that reached a guard, whatever the answer: who (user, roles, scopes, token id; the
operator as ``(api token)``), when (the service clock), from where (client address, user agent),
which action on which route, the request body (passwords and tokens blanked), the HTTP status,
and what changed: the state-change events the request published (their sequence numbers in the
event log, whose data is the change). Sign-in attempts are recorded too (``auth.sign_in``).
Machine intake (sensor data, the signed incident intake) is not a human action and is not here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import auth
from ..events import EventNotes, published_events

__all__ = ["OPERATOR", "AuditMiddleware", "Guard"]

log = logging.getLogger("command.api.audit")

# The operator (the service's API token) in audit records: not a user, so not a valid user id.
OPERATOR = auth.Principal("(api token)", frozenset())
_bearer = HTTPBearer(auto_error=False)
MAX_AUDIT_BODY_BYTES = 16_384  # a body beyond this is recorded by its size only
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_HUMAN = ("/api/ingest/", "/api/intake/")



class Guard:
    """The routes' guard (see the module docstring); one per app."""

    def __init__(self, service: Any, authenticator: Any) -> None:
        self.service = service
        self.authenticator = authenticator

    def __call__(self, action: str, *also: str) -> Any:
        """A FastAPI dependency that lets through callers who may do ``action`` (or one of ``also``: a
        route whose thing decides which applies); it gives the route the principal (``None``: the
        operator)."""
        rules = [auth.PERMISSIONS[a] for a in (action, *also)]  # KeyError at startup for a misspelt action

        async def check(request: Request,
                        cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> auth.Principal | None:
            request.state.action = action
            token = cred.credentials.strip() if cred is not None else None
            try:
                principal = self.authenticator.principal_of(token)
            except auth.AuthError as err:
                raise HTTPException(401, f"token refused: {err}", headers={"WWW-Authenticate": "Bearer"}) from None
            request.state.principal = principal
            if principal is None:
                return None
            if not any(role in rule.grants for rule in rules for role in principal.roles):
                if principal is auth.ANONYMOUS:
                    raise HTTPException(401, f"a bearer token is required to {action}: sign in, or use the API token",
                                        headers={"WWW-Authenticate": "Bearer"})
                raise HTTPException(403, f"{principal.user_id} ({', '.join(sorted(principal.roles))}) may not "
                                         f"{action}")
            return principal

        return Depends(check)

    @staticmethod
    def require(who: auth.Principal | None, action: str, *, department: str | None = None,
                crew: str | None = None) -> None:
        """403 unless ``who`` may do ``action`` on a thing of ``department`` / ``crew``."""
        if who is None or auth.allowed(who, action, department=department, crew=crew):
            return
        whose = f"department {department}" if department else f"crew {crew}" if crew else "this"
        raise HTTPException(403, f"{who.user_id} may not {action} for {whose}")

    @staticmethod
    def acting(who: auth.Principal | None, named: str) -> str:
        """Who acts: the signed-in user (whatever the body says), else the name the operator gave."""
        return who.user_id if who is not None else named

    @staticmethod
    def shape(who: auth.Principal | None, action: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """One thing as ``who`` may read it; 404 (not 403: its existence is not told) when not at all."""
        if who is None:
            return dict(data)
        shaped = auth.view(who, action, data)
        if shaped is None:
            raise HTTPException(404, "not found")
        return shaped

    @staticmethod
    def shape_all(who: auth.Principal | None, action: str,
                  items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The things of a list ``who`` may read, each as they may read it."""
        if who is None:
            return [dict(i) for i in items]
        return [v for i in items if (v := auth.view(who, action, i)) is not None]

    @staticmethod
    def events(who: auth.Principal | None, rows: Iterable[Any]) -> list[dict[str, Any]]:
        """Event-log rows as ``who`` may see them (``auth.event_view``)."""
        out = []
        for e in rows:
            data = e.data if who is None else auth.event_view(who, e.kind, e.data)
            if data is not None:
                out.append({"seq": e.seq, "kind": e.kind, "time": e.time.isoformat(), "data": data})
        return out


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AuditMiddleware:
    """ASGI middleware that writes the audit record of each human state-changing request (module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, service: Any) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope.get("method") not in _WRITES or not path.startswith("/api/")
                or path.startswith(_NOT_HUMAN)):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status = 500

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_AUDIT_BODY_BYTES:
                body.extend(message.get("body", b""))
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        notes = EventNotes()
        reset = published_events.set(notes)
        try:
            await self.app(scope, receive_and_keep, send_and_note)
        finally:
            notes.open = False
            published_events.reset(reset)
            try:
                self._record(scope, bytes(body), status, notes.events)
            except Exception:  # the audit must never turn an answered request into an error
                log.exception("audit record of %s %s not written", scope.get("method"), path)

    def _record(self, scope: Scope, body: bytes, status: int, events: list[dict[str, Any]]) -> None:
        state = scope.get("state") or {}
        action = state.get("action")
        request = _body_of(body)
        if action is None:
            if scope["path"] != "/api/auth/sign-in":
                return  # no route's guard ran (an unknown route, a malformed path)
            action = "auth.sign_in"
            who = auth.Principal(str(request.get("user", "?"))[:64] if isinstance(request, dict) else "?",
                                 frozenset())
        else:
            who = state.get("principal") or OPERATOR
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        record = auth.audit_record(
            who, action, at=self.service.clock.now(), remote_addr=client[0] if client else None,
            target=f"{scope['method']} {scope['path']}",
            changes={"request": request, "events": events})
        record["status"] = status
        record["user_agent"] = headers.get(b"user-agent", b"").decode("latin-1")[:255] or None
        self.service.store.append_audit(record)


def _body_of(body: bytes) -> Any:
    if not body:
        return None
    if len(body) > MAX_AUDIT_BODY_BYTES:
        return {"(body)": f"{len(body)} bytes, not recorded"}
    try:
        return json.loads(body)
    except ValueError:
        return {"(body)": f"{len(body)} bytes, not JSON"}
