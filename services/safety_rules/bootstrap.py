"""Composition root of safety_rules: the only place that turns settings into adapters."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from faststream import FastStream

from services.safety_rules.adapters import smoke_rules
from services.safety_rules.adapters.store import Evaluate, RulesStore
from services.safety_rules.adapters.tables import Outbox
from services.safety_rules.app import CONSUMER_GROUP, create_router
from shared.db import create_engine, create_session_factory
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.dead_letter import DeadLetterMiddlewareFactory, DeadLetters
from shared.messaging.outbox import OutboxRelay
from shared.messaging.retry import RetryPolicy
from shared.messaging.service import ServiceRuntime, create_http_app, create_registry
from shared.settings import ServiceSettings

CLIENT_ID = "trialwatch-safety-rules"


def build(settings: ServiceSettings, evaluate: Evaluate = smoke_rules.evaluate) -> FastAPI:
    """``evaluate`` is the rules engine; the smoke stand-in until the real one is wired here."""
    registry = create_registry()
    kafka_logger = logging.getLogger("trialwatch.safety_rules.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(settings.database, application_name=CLIENT_ID)
    sessions = create_session_factory(engine)
    publish = kafka_publish(broker)
    relay = OutboxRelay(sessions, Outbox, publish)
    store = RulesStore(sessions, evaluate, CONSUMER_GROUP, on_commit=relay.wake)
    dead_letters = DeadLetterMiddlewareFactory(DeadLetters(publish, CONSUMER_GROUP), RetryPolicy())
    broker.include_router(create_router(store, middlewares=(dead_letters,)))
    runtime = ServiceRuntime(
        name="safety_rules",
        stream=FastStream(broker, logger=kafka_logger),
        broker=broker,
        engine=engine,
        registry=registry,
        relay=relay,
    )
    return create_http_app(runtime)
