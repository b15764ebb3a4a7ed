"""Composition root of notifier: the only place that turns settings into adapters."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from faststream import FastStream

from services.notifier.adapters.store import NotifierStore
from services.notifier.app import CONSUMER_GROUP, create_router
from shared.db import create_engine, create_session_factory
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.dead_letter import DeadLetterMiddlewareFactory, DeadLetters
from shared.messaging.retry import RetryPolicy
from shared.messaging.service import ServiceRuntime, create_http_app, create_registry
from shared.settings import ServiceSettings

CLIENT_ID = "trialwatch-notifier"


def build(settings: ServiceSettings) -> FastAPI:
    registry = create_registry()
    kafka_logger = logging.getLogger("trialwatch.notifier.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(settings.database, application_name=CLIENT_ID)
    store = NotifierStore(create_session_factory(engine), CONSUMER_GROUP)
    dead_letters = DeadLetterMiddlewareFactory(DeadLetters(kafka_publish(broker), CONSUMER_GROUP), RetryPolicy())
    broker.include_router(create_router(store, middlewares=(dead_letters,)))
    runtime = ServiceRuntime(
        name="notifier",
        stream=FastStream(broker, logger=kafka_logger),
        broker=broker,
        engine=engine,
        registry=registry,
    )
    return create_http_app(runtime)
