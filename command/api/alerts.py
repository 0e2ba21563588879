"""HTTP routes of the CAP alerts (``command.alerts``): drafting, release, the Atom feed.

Drafting needs the alert.draft action, releasing and withdrawing alert.release (the duty chief).
Reading is open to anyone for what is public — released messages of scope Public, their CAP
documents and the Atom feed: a warning is for everybody — and shows drafts, withdrawn drafts and
Restricted (inter-agency) messages only to a caller who may draft or release: a draft is not public.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..auth import AuthError, Principal, allowed
from ..linkage.cap import CAP_MIME

__all__ = ["ATOM_MIME", "DraftAlertBody", "ReleaseAlertBody", "WithdrawAlertBody", "add_routes"]

ATOM_MIME = "application/atom+xml"  # RFC 4287 §7
Who = Principal | None  # the caller as the guard lets it through (None: the operator's API token)

Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Text1000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class DraftAlertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field must not silently become a default

    by: Person = Field(..., description="who drafts it (a second person releases it)")
    msg_type: Literal["Alert", "Update", "Cancel"] | None = Field(
        None, description="default: Alert if nothing was released yet, else Update")
    scope: Literal["Public", "Restricted"] = Field("Public", description="Restricted: inter-agency only")
    restriction: Text500 | None = Field(None, description="scope Restricted: who may see it")
    instruction: Text1000 | None = Field(None, description="what people should do (English)")
    instruction_zh: Text1000 | None = Field(None, description="what people should do (Chinese)")
    note: Text500 | None = Field(None, description="CAP <note>: e.g. why it is updated or cancelled")

    @model_validator(mode="after")
    def _check(self) -> DraftAlertBody:
        if self.scope == "Restricted" and self.restriction is None:
            raise ValueError("scope Restricted needs a restriction text saying who may see it")
        if self.scope == "Public" and self.restriction is not None:
            raise ValueError("restriction is only for scope Restricted")
        if (self.instruction is None) != (self.instruction_zh is None):
            raise ValueError("give the instruction in both languages (instruction and instruction_zh), or neither")
        return self


class ReleaseAlertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person = Field(..., description="who releases it: not the person who drafted it")


class WithdrawAlertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Person
    reason: Text500


def add_routes(app: FastAPI, service: Any, guard: Any) -> None:
    """Register the routes on ``app``; ``guard`` (``command.api.guard.Guard``) checks who may call them."""
    acting = guard.acting
    authenticator = guard.authenticator

    def authorised(request: Request) -> bool:
        """The caller may draft or release alerts (reading: drafts and Restricted messages are shown)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            who = authenticator.principal_of(token)
        except AuthError:
            return False
        return who is None or allowed(who, "alert.draft") or allowed(who, "alert.release")

    @app.post("/api/incidents/{incident_id}/alerts", status_code=201)
    async def draft_alert(incident_id: int, body: DraftAlertBody, who: Who = guard("alert.draft")) -> dict[str, Any]:
        """Draft the incident's next CAP message; nothing is public until another person releases it."""
        return service.draft_alert(incident_id, by=acting(who, body.by), msg_type=body.msg_type, scope=body.scope,
                                   restriction=body.restriction, instruction=body.instruction,
                                   instruction_zh=body.instruction_zh, note=body.note)

    @app.post("/api/alerts/messages/{message_id:int}/release")
    async def release_alert(message_id: int, body: ReleaseAlertBody, who: Who = guard("alert.release")
                            ) -> dict[str, Any]:
        """Release a drafted message (a second person): validated against CAP 1.2, then public."""
        return service.release_alert_message(message_id, by=acting(who, body.by))

    @app.post("/api/alerts/messages/{message_id:int}/withdraw")
    async def withdraw_alert(message_id: int, body: WithdrawAlertBody, who: Who = guard("alert.release")
                             ) -> dict[str, Any]:
        return service.withdraw_alert_message(message_id, by=acting(who, body.by), reason=body.reason)

    @app.get("/api/alerts/cap", response_class=Response,
             responses={200: {"content": {ATOM_MIME: {}}, "description": "Atom 1.0 feed of CAP alerts"}})
    async def alerts_feed(request: Request) -> Response:
        """The Atom feed of the alerts: each alert's latest released message, newest first."""
        body = service.alerts_feed(base_url=str(request.base_url), authorised=authorised(request))
        return Response(body, media_type=ATOM_MIME)

    @app.get("/api/alerts")
    async def alerts(request: Request) -> dict[str, Any]:
        return {"alerts": service.alerts_list(authorised=authorised(request))}

    @app.get("/api/alerts/{alert_id:int}")
    async def alert(alert_id: int, request: Request) -> dict[str, Any]:
        return service.alert_view(alert_id, authorised=authorised(request))

    @app.get("/api/alerts/messages/{message_id:int}.xml", response_class=Response,
             responses={200: {"content": {CAP_MIME: {}}, "description": "the CAP 1.2 document"}})
    async def alert_message_xml(message_id: int, request: Request) -> Response:
        """A released message as CAP 1.2 XML; with the token, a draft's preview (status Draft)."""
        return Response(service.alert_message_xml(message_id, authorised=authorised(request)), media_type=CAP_MIME)

    @app.get("/api/alerts/messages/{message_id:int}")
    async def alert_message(message_id: int, request: Request) -> dict[str, Any]:
        return service.alert_message(message_id, authorised=authorised(request))
