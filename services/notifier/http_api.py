"""The notifier's HTTP API (TRIALWATCH_NOTIFIER_PORT): alerts, acknowledgements and clock submissions.

Bearer token or OIDC JWT on every route except the signed acknowledgement link, whose token is its own
credential. Every authenticated role may read (dmc_member only reads); acting needs the roles the alert's
routing allows.
"""

import html
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, Field

from services.notifier.actions import Actions, Actor, ConflictError, ForbiddenError, NotFoundError
from services.notifier.adapters.alerts import AlertFilter, alert_detail, list_alerts
from services.notifier.context import Context
from services.notifier.domain.clocks import NotAClockError
from services.notifier.domain.links import LinkError, verify_link
from shared.auth import Authenticator, AuthError

ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ForbiddenError, status.HTTP_403_FORBIDDEN),
    (ConflictError, status.HTTP_409_CONFLICT),
    (NotAClockError, status.HTTP_422_UNPROCESSABLE_CONTENT),
)


class Comment(BaseModel):
    comment: str | None = Field(default=None, max_length=2000, description="Free text kept in the audit trail")


class Submission(BaseModel):
    submitted_at: AwareDatetime | None = Field(default=None, description="When the report was submitted (default now)")


FAILURES = (NotFoundError, ForbiddenError, ConflictError, NotAClockError, LinkError)


def link_status(error: LinkError) -> int:
    return status.HTTP_410_GONE if error.reason == "expired" else status.HTTP_403_FORBIDDEN


def as_http(error: Exception) -> HTTPException:
    if isinstance(error, LinkError):
        return HTTPException(link_status(error), detail=str(error))
    code = next(code for kind, code in ERRORS if isinstance(error, kind))
    return HTTPException(code, detail=str(error))


async def _comment(request: Request) -> str | None:
    body = await request.body()
    if not body:
        return None
    if request.headers.get("content-type", "").startswith("application/json"):
        return Comment.model_validate_json(body).comment
    values = parse_qs(body.decode(errors="replace")).get("comment", [])
    return Comment(comment=values[0] if values else None).comment


def _confirmation(token: str, what: str) -> str:
    safe = html.escape(token, quote=True)
    return (
        "<!doctype html><title>Acknowledge alert</title>"
        f"<p>Acknowledge {html.escape(what)}?</p>"
        f'<form method="post" action="/v1/ack/{safe}"><label>Comment <input name="comment"></label>'
        '<button type="submit">Acknowledge</button></form>'
    )


class Caller:
    """The ``Authorization`` header as an actor: 401 without valid credentials, 403 without a known role."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, authorization: Annotated[str | None, Header()] = None) -> Actor:
        try:
            principal = self._authenticator.principal(authorization)
        except AuthError as error:
            raise HTTPException(401, detail=str(error), headers={"WWW-Authenticate": "Bearer"}) from error
        if not principal.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{principal.user} holds no TrialWatch role")
        return Actor(principal.user, principal.roles, principal.via)


def _read_routes(router: APIRouter, context: Context, caller: Any) -> None:
    @router.get("/alerts")
    async def alerts(
        _: caller,
        state: str | None = None,
        severity: str | None = None,
        study_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        async with context.sessions() as session:
            return await list_alerts(session, AlertFilter(state, severity, study_id, limit))

    @router.get("/alerts/{alert_id}")
    async def alert(alert_id: str, _: caller) -> dict[str, Any]:
        async with context.sessions() as session:
            found = await alert_detail(session, alert_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no alert {alert_id}")
        return found


def _action_routes(router: APIRouter, context: Context, actions: Actions, caller: Any) -> None:
    @router.post("/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: str, actor: caller, body: Comment | None = None) -> dict[str, Any]:
        try:
            return await actions.acknowledge(alert_id, actor, body.comment if body else None)
        except FAILURES as error:
            raise as_http(error) from error

    @router.post("/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, actor: caller, body: Comment | None = None) -> dict[str, Any]:
        try:
            return await actions.resolve(alert_id, actor, body.comment if body else None)
        except FAILURES as error:
            raise as_http(error) from error

    @router.post("/clocks/{signal_id}/submitted", status_code=status.HTTP_202_ACCEPTED)
    async def submitted(signal_id: str, actor: caller, body: Submission | None = None) -> dict[str, Any]:
        try:
            record = await actions.submit(signal_id, actor, body.submitted_at if body else None)
        except FAILURES as error:
            raise as_http(error) from error
        return {"published": record.model_dump(), "topic": context.topics.records}


def _link_routes(router: APIRouter, context: Context, actions: Actions, link_key: bytes) -> None:
    @router.get("/ack/{token}", response_class=HTMLResponse)
    async def confirm_link(token: str) -> str:
        """A page, not an action: mail scanners that follow links acknowledge nothing."""
        try:
            claim = verify_link(link_key, token, context.clock())
        except LinkError as error:
            raise as_http(error) from error
        return _confirmation(token, f"alert {claim.alert_id} as {claim.recipient} ({claim.role})")

    @router.post("/ack/{token}")
    async def acknowledge_link(token: str, request: Request) -> dict[str, Any]:
        """From the confirmation page's form (urlencoded) or a client (JSON ``{"comment": ...}``)."""
        try:
            return await actions.acknowledge_link(token, await _comment(request))
        except FAILURES as error:
            raise as_http(error) from error


def create_api(context: Context, actions: Actions, authenticator: Authenticator, link_key: bytes) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["alerts"])
    caller = Annotated[Actor, Depends(Caller(authenticator))]
    _read_routes(router, context, caller)
    _action_routes(router, context, actions, caller)
    _link_routes(router, context, actions, link_key)
    return router
