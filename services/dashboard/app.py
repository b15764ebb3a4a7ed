"""The dashboard's HTTP app: sign-in, the pages, acknowledgement through the notifier, the signal feed.

Health and metrics are open; every other route needs a session (pages redirect to /signin, the feed
answers 401). Pages are server-rendered and complete without JavaScript; static/app.js only polls the
signal feed so new signals appear without a reload.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from services.dashboard import views
from services.dashboard.adapters import reads
from services.dashboard.adapters.identity import AuthError
from services.dashboard.adapters.sessions import LOGIN_COOKIE, SESSION_COOKIE, Session, csrf_valid
from services.dashboard.context import DashboardContext

HERE = Path(__file__).parent
Handler = Callable[[Request], Awaitable[Response]]
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}


class SignInRequiredError(Exception):
    """No valid session: pages redirect to the sign-in form."""


def _time_left(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("overdue by " if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    return f"{sign}{days} d {rest // 3600} h {rest % 3600 // 60} min"


def _local(target: str) -> str:
    """Only same-site paths after sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


class Web:
    """Templates, the session dependency and rendering, shared by the route groups."""

    def __init__(self, context: DashboardContext) -> None:
        self.context = context
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        when = lambda value: "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M Z")  # noqa: E731
        self.templates.env.filters["when"] = when
        self.templates.env.filters["left"] = _time_left

    def session(self, request: Request) -> Session:
        session = self.context.codec.open(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise SignInRequiredError
        return session

    def render(
        self, request: Request, name: str, session: Session | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        base = {"session": session, "plan": self.context.plan, "poll_seconds": self.context.settings.poll_seconds}
        return self.templates.TemplateResponse(request, name, base | values, status_code=status)

    def page(self) -> views.Page:
        return views.Page(self.context.plan, self.context.clock())

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        secure = self.context.settings.secure_cookies
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure)


def _operations(app: FastAPI, context: DashboardContext) -> None:
    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            async with context.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # a health probe reports the failure instead of raising it
            return JSONResponse(
                {"service": "dashboard", "status": "unavailable", "database": type(error).__name__}, 503
            )
        return JSONResponse({"service": "dashboard", "status": "ok", "checks": {"database": "ok"}})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _sign_in(app: FastAPI, web: Web, signed_in: Any) -> None:
    codec, authenticator = web.context.codec, web.context.authenticator

    @app.get("/signin", response_class=HTMLResponse)
    async def signin_form(request: Request, next: str = "/", error: str | None = None) -> HTMLResponse:
        nonce = codec.login_nonce()
        status = 401 if error else 200
        response = web.render(request, "signin.html", None, status, next=_local(next), error=error,
                              login_csrf=codec.login_csrf(nonce))  # fmt: skip
        web.set_cookie(response, LOGIN_COOKIE, nonce, 900)
        return response

    @app.post("/signin")
    async def signin(
        request: Request,
        token: Annotated[str, Form()],
        csrf: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        if not codec.login_csrf_valid(request.cookies.get(LOGIN_COOKIE), csrf):
            raise HTTPException(403, "sign-in form expired or forged; reload the sign-in page")
        try:
            principal = authenticator.principal(f"Bearer {token.strip()}")
        except AuthError:
            return RedirectResponse(f"/signin?error=unknown&next={quote(_local(next))}", status_code=303)
        if not principal.roles:
            return RedirectResponse(f"/signin?error=norole&next={quote(_local(next))}", status_code=303)
        sealed, _ = codec.seal(principal.user, tuple(sorted(principal.roles)), token.strip())
        response = RedirectResponse(_local(next), status_code=303)
        web.set_cookie(response, SESSION_COOKIE, sealed, codec.max_age)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/signout")
    async def signout(session: signed_in, csrf: Annotated[str, Form()]) -> Response:
        if not csrf_valid(session, csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


def _pages(app: FastAPI, web: Web, signed_in: Any) -> None:
    engine = web.context.engine

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request, session: signed_in) -> HTMLResponse:
        async with engine.connect() as connection:
            values = await views.overview(connection, web.page())
        return web.render(request, "overview.html", session, **values)

    @app.get("/halting", response_class=HTMLResponse)
    async def halting(request: Request, session: signed_in) -> HTMLResponse:
        async with engine.connect() as connection:
            values = await views.halting(connection, web.page())
        return web.render(request, "halting.html", session, **values)

    @app.get("/participants/{subject_id}", response_class=HTMLResponse)
    async def participant(request: Request, subject_id: str, session: signed_in) -> HTMLResponse:
        async with engine.connect() as connection:
            values = await views.timeline(connection, web.page(), subject_id)
        return web.render(request, "timeline.html", session, 200 if values["found"] else 404, **values)

    @app.get("/endpoint", response_class=HTMLResponse)
    async def endpoint(request: Request, session: signed_in) -> HTMLResponse:
        async with engine.connect() as connection:
            values = await views.endpoint(connection, web.page())
        return web.render(request, "endpoint.html", session, **values)

    @app.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request, session: signed_in) -> HTMLResponse:
        """Operations for admins: data currency and the quarantine of rejected records."""
        if "admin" not in session.roles:
            raise HTTPException(403, "the admin page needs the admin role")
        async with engine.connect() as connection:
            currency = await reads.data_currency(connection, web.context.plan.study_id)
            rejected = await reads.quarantine(connection)
        return web.render(request, "admin.html", session, currency=currency, rejected=rejected)

    @app.get("/signals/feed")
    async def signal_feed(request: Request, after: int = 0) -> JSONResponse:
        if web.context.codec.open(request.cookies.get(SESSION_COOKIE)) is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        async with engine.connect() as connection:
            rows = await reads.signals_after(connection, web.context.plan.study_id, after)
        return JSONResponse({"signals": [{"seq": seq} | payload for seq, payload in rows]})


def _alerts(app: FastAPI, web: Web, signed_in: Any) -> None:
    context = web.context

    @app.get("/alerts", response_class=HTMLResponse)
    async def alert_inbox(
        request: Request, session: signed_in, severity: str | None = None, state: str | None = None
    ) -> HTMLResponse:
        severity, state = severity or None, state or None
        async with context.engine.connect() as connection:
            rows = await reads.alerts(connection, context.plan.study_id, severity, state)
        return web.render(request, "alerts.html", session, alerts=rows, severity=severity, state=state,
                          severities=views.SEVERITIES, states=views.STATES)  # fmt: skip

    async def alert_page(
        request: Request, session: Session, alert_id: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        async with context.engine.connect() as connection:
            found, history = await reads.alert(connection, alert_id)
        if found is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return web.render(request, "alert.html", session, status, alert=found, history=history, **extra)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_detail(request: Request, alert_id: str, session: signed_in) -> HTMLResponse:
        return await alert_page(request, session, alert_id)

    @app.post("/alerts/{alert_id}/ack", response_model=None)
    async def acknowledge(
        request: Request, alert_id: str, session: signed_in,
        csrf: Annotated[str, Form()], comment: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        if not csrf_valid(session, csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        result = await context.notifier.acknowledge(alert_id, session.token, comment.strip() or None)
        if result.ok:
            return RedirectResponse(f"/alerts/{quote(alert_id)}?acknowledged=1", status_code=303)
        return await alert_page(request, session, alert_id, result.status, refusal=result.message)


def create_app(context: DashboardContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await context.close()

    app = FastAPI(title="TrialWatch DMC dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    web = Web(context)

    @app.middleware("http")
    async def timing(request: Request, call_next: Handler) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        context.metrics.observe(getattr(request.scope.get("route"), "path", "unmatched"), response.status_code, elapsed)
        response.headers["Server-Timing"] = f"app;dur={elapsed * 1000:.1f}"
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(SignInRequiredError)
    async def to_signin(request: Request, _: SignInRequiredError) -> Response:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)

    signed_in = Annotated[Session, Depends(web.session)]
    _operations(app, context)
    _sign_in(app, web, signed_in)
    _pages(app, web, signed_in)
    _alerts(app, web, signed_in)
    return app
