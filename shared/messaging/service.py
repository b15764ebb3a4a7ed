"""One service process: its FastStream app, outbox relay and database engine, served by uvicorn.

The HTTP side is a FastAPI app whose lifespan starts and stops the FastStream app, so SIGTERM (handled
by uvicorn) drains HTTP requests, then stops the relay, then lets in-flight handlers finish
(``graceful_timeout``) before the broker connections and the database pool close.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from faststream import FastStream
from faststream.kafka import KafkaBroker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import ping
from shared.logs import get_logger
from shared.messaging.outbox import OutboxRelay
from shared.settings import ServiceSettings

GRACEFUL_SHUTDOWN_SECONDS = 25
HEALTH_TIMEOUT = 2.0
RELAY_FAILURES_UNHEALTHY = 3
RELAY_STOP_TIMEOUT = 10.0
GC_THRESHOLDS = (50_000, 20, 20)

log = get_logger(__name__)


@dataclass
class ServiceRuntime:
    name: str
    stream: FastStream
    broker: KafkaBroker
    engine: AsyncEngine
    registry: CollectorRegistry
    relay: OutboxRelay | None = None
    _relay_task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        await ping(self.engine)
        await self.stream.start()
        if self.relay is not None:
            self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox-relay")
        log.info("service.started", service=self.name)

    async def stop(self) -> None:
        log.info("service.stopping", service=self.name)
        if self.relay is not None and self._relay_task is not None:
            self.relay.stop()
            await asyncio.wait_for(self._relay_task, timeout=RELAY_STOP_TIMEOUT)
            await self.relay.close()
        await self.stream.stop()
        await self.engine.dispose()
        log.info("service.stopped", service=self.name)

    async def health(self) -> dict[str, str]:
        """One word per dependency: ``ok`` or what is wrong."""
        checks = {"kafka": await self._kafka_health(), "database": await self._database_health()}
        if self.relay is not None:
            checks["outbox"] = self._relay_health()
        return checks

    async def _kafka_health(self) -> str:
        return "ok" if await self.broker.ping(timeout=HEALTH_TIMEOUT) else "unreachable"

    async def _database_health(self) -> str:
        try:
            await asyncio.wait_for(ping(self.engine), timeout=HEALTH_TIMEOUT)
        except Exception as exc:  # a health probe reports the failure instead of raising it
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    def _relay_health(self) -> str:
        assert self.relay is not None
        if self._relay_task is None or self._relay_task.done():
            return "stopped"
        if self.relay.consecutive_failures >= RELAY_FAILURES_UNHEALTHY:
            return f"failing: {self.relay.last_error}"
        return "ok"


def operations_router(runtime: ServiceRuntime) -> APIRouter:
    """``GET /healthz`` and ``GET /metrics``: open, no token (INTERFACES §5)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        checks = await runtime.health()
        healthy = all(value == "ok" for value in checks.values())
        body = {"service": runtime.name, "status": "ok" if healthy else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def create_http_app(runtime: ServiceRuntime, routers: Sequence[APIRouter] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"TrialWatch {runtime.name}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(operations_router(runtime))
    for router in routers:
        app.include_router(router)
    return app


def create_registry() -> CollectorRegistry:
    """A registry per service process, with the process, platform and GC collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def tune_collector() -> None:
    """Fewer, larger young collections, and the objects built at startup kept out of every collection.

    A batch allocates hundreds of thousands of short-lived objects (decoded records, events, results)
    while the process holds many long-lived ones (the study configuration, safety_rules' participant
    cache): with CPython's default thresholds (700, 10, 10) the collector ran every few hundred
    allocations and walked the long-lived objects at every older collection. Measured on
    safety_rules alone: 0.72 -> 0.53 ms of CPU per record. Reference cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully (uvicorn handles the signals)."""
    tune_collector()
    uvicorn.run(
        app,
        host=settings.listen.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
