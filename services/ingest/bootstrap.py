"""Composition root of ingest: the only place that turns settings into adapters.

One process serves HTTP (uvicorn), MLLP (an asyncio server) and the Kafka inputs (FastStream), all
feeding the same `Ingestion`; the outbox relay publishes what they commit. Shutdown order: HTTP drains
(uvicorn), the MLLP listener answers the bursts in hand, then the relay, consumers and pool stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from faststream import FastStream
from pydantic import SecretStr

from services.ingest.adapters.dead_letters import IngestDeadLetters
from services.ingest.adapters.outbox_messages import read_stored
from services.ingest.adapters.store import Committed, IngestStore
from services.ingest.adapters.tables import Outbox
from services.ingest.app import CONSUMER_GROUP, create_router
from services.ingest.domain import ParserConfig
from services.ingest.handlers import Ingestion
from services.ingest.http_api import create_api
from services.ingest.metrics import IngestMetrics, LagProbe
from services.ingest.mllp.server import MllpLimits, MllpServer
from services.ingest.settings import IngestSettings, Source
from services.safety_rules.domain import select_study
from shared.db import create_engine, create_session_factory
from shared.messaging.batch_publisher import KafkaBatchPublisher
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.dead_letter import DeadLetterMiddlewareFactory
from shared.messaging.outbox import OutboxRelay, RecentMessages
from shared.messaging.retry import RetryPolicy
from shared.messaging.service import ServiceRuntime, create_registry, operations_router
from shared.settings import ServiceSettings

CLIENT_ID = "trialwatch-ingest"
SOURCES: tuple[Source, ...] = ("hl7", "fhir", "records")


def parser_config(ingest: IngestSettings) -> ParserConfig:
    """The configured study (INTERFACES §4 order: TRIALWATCH_STUDY, else the packaged ANAKINRA-AD)."""
    study = select_study(ingest.study, os.environ)
    return ParserConfig(study_ids=frozenset({study.study_id}), default_study_id=study.study_id)


def mllp_tls(ingest: IngestSettings) -> ssl.SSLContext | None:
    """Server TLS that requires a client certificate signed by the configured CA."""
    if not ingest.mllp_uses_tls:
        return None
    assert ingest.mllp_tls_cert and ingest.mllp_tls_key and ingest.mllp_tls_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ingest.mllp_tls_ca))
    context.load_cert_chain(str(ingest.mllp_tls_cert), str(ingest.mllp_tls_key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def route_tokens(admin: SecretStr, ingest: IngestSettings) -> dict[Source, list[SecretStr]]:
    tokens: dict[Source, list[SecretStr]] = {}
    for source in SOURCES:
        own = ingest.source_token(source)
        tokens[source] = [admin] if own is None else [own, admin]
    return tokens


def build(settings: ServiceSettings, ingest: IngestSettings) -> FastAPI:
    if settings.api_token is None:
        raise ValueError("ingest serves an authenticated API: load its settings with needs_token=True")
    registry = create_registry()
    metrics = IngestMetrics(registry)
    kafka_logger = logging.getLogger("trialwatch.ingest.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(settings.database, application_name=CLIENT_ID, pre_ping=False)  # every channel retries
    sessions = create_session_factory(engine)
    publish = kafka_publish(broker)
    recent = RecentMessages()  # what ingest committed: the relay publishes it from memory
    relay = OutboxRelay(
        sessions,
        Outbox,
        KafkaBatchPublisher(settings.kafka, client_id=f"{CLIENT_ID}-outbox"),
        batch_size=ingest.relay_batch,
        recent=recent,
        read_stored=read_stored,  # the outbox rows hold no payload: what is not in memory is rebuilt
    )

    def committed(messages: Committed) -> None:
        recent.add(messages)
        relay.wake()

    store = IngestStore(sessions, on_commit=committed)
    ingestion = Ingestion(parser_config(ingest), store, metrics)
    dead_letters = IngestDeadLetters(publish, CONSUMER_GROUP)
    middleware = DeadLetterMiddlewareFactory(dead_letters, RetryPolicy())
    router, subscriber = create_router(ingestion, dead_letters, middlewares=(middleware,))
    broker.include_router(router)
    runtime = ServiceRuntime(
        name="ingest",
        stream=FastStream(broker, logger=kafka_logger),
        broker=broker,
        engine=engine,
        registry=registry,
        relay=relay,
    )
    limits = MllpLimits(
        ingest.mllp_max_message_bytes,
        ingest.mllp_message_timeout,
        ingest.mllp_idle_timeout,
        ingest.mllp_max_connections,
    )
    mllp = MllpServer(ingestion, settings.listen.host, ingest.mllp_port, limits, mllp_tls(ingest))
    metrics.mllp_connections.set_function(lambda: mllp.connections)
    lag = LagProbe(lambda: [subscriber.consumer] if subscriber.consumer else [], metrics.consumer_lag)
    lifespan = _lifespan(runtime, store, mllp, lag)
    app = FastAPI(title="TrialWatch ingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(operations_router(runtime))
    app.include_router(
        create_api(ingestion, route_tokens(settings.api_token.token, ingest), ingest.http_max_body_bytes)
    )
    return app


def _lifespan(runtime: ServiceRuntime, store: IngestStore, mllp: MllpServer, lag: LagProbe) -> Any:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await store.verify_schema()
            await mllp.start()
            probe = asyncio.create_task(lag.run(), name="ingest-consumer-lag")
            try:
                yield
            finally:
                lag.stop()
                await mllp.stop()
                await probe
        finally:
            await runtime.stop()

    return lifespan
