"""Composition root of ingest: the only place that turns settings into adapters."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from faststream import FastStream

from services.ingest.adapters.store import IngestStore
from services.ingest.adapters.tables import Outbox
from services.ingest.app import create_api, create_router
from shared.db import create_engine, create_session_factory
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.outbox import OutboxRelay
from shared.messaging.service import ServiceRuntime, create_http_app, create_registry
from shared.settings import ServiceSettings

CLIENT_ID = "trialwatch-ingest"


def build(settings: ServiceSettings) -> FastAPI:
    if settings.api_token is None:
        raise ValueError("ingest serves an authenticated API: load its settings with needs_token=True")
    registry = create_registry()
    kafka_logger = logging.getLogger("trialwatch.ingest.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(settings.database, application_name=CLIENT_ID)
    sessions = create_session_factory(engine)
    relay = OutboxRelay(sessions, Outbox, kafka_publish(broker))
    store = IngestStore(sessions, on_commit=relay.wake)
    broker.include_router(create_router())
    runtime = ServiceRuntime(
        name="ingest",
        stream=FastStream(broker, logger=kafka_logger),
        broker=broker,
        engine=engine,
        registry=registry,
        relay=relay,
    )
    return create_http_app(runtime, [create_api(store, settings.api_token.token)])
