"""Composition root of safety_rules: the only place that turns settings into adapters."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from fastapi import FastAPI
from faststream import FastStream
from faststream.kafka import KafkaRouter

from services.safety_rules.adapters.database import create_engine
from services.safety_rules.adapters.relay_order import relay_sessions
from services.safety_rules.adapters.tables import Outbox
from services.safety_rules.app import Polling, create_router
from services.safety_rules.batch import batch_consumer
from services.safety_rules.domain import select_study
from services.safety_rules.handlers import RulesService
from services.safety_rules.metrics import ConsumerLag, OffsetSource, RulesPrometheus
from services.safety_rules.periodic import PeriodicTasks
from services.safety_rules.settings import RulesSettings
from shared.db import create_session_factory
from shared.messaging.batch_publisher import KafkaBatchPublisher
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.outbox import OutboxRelay
from shared.messaging.service import ServiceRuntime, create_http_app, create_registry
from shared.settings import ServiceSettings

CLIENT_ID = "trialwatch-safety-rules"


def build(settings: ServiceSettings, rules: RulesSettings | None = None) -> FastAPI:
    """The service: the engine of the configured study (``select_study(None, os.environ)``, as replay)."""
    rules = rules or RulesSettings.load()
    topics = rules.topics
    registry = create_registry()
    kafka_logger = logging.getLogger("trialwatch.safety_rules.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(settings.database, application_name=CLIENT_ID)
    publish = kafka_publish(broker)
    outbox = KafkaBatchPublisher(settings.kafka, client_id=f"{CLIENT_ID}-outbox")
    relay = OutboxRelay(relay_sessions(engine), Outbox, outbox)
    service = RulesService(
        select_study(None, os.environ),
        create_session_factory(engine),
        consumer_group=rules.consumer_group,
        signals_topic=topics.signals,
        metrics=RulesPrometheus(registry),
        on_commit=relay.wake,
        max_participants=rules.batch_max_participants,
        cached_participants=rules.cached_participants,
    )
    dead_letters = DeadLetters(publish, rules.consumer_group, topic=topics.dead_letter)
    batches = batch_consumer(service, dead_letters, rules.retry)
    polling = Polling(
        max_records=rules.batch_max_records,
        timeout_ms=rules.batch_timeout_ms,
        max_bytes=rules.batch_max_bytes,
        fetch_wait_ms=rules.fetch_wait_ms,
        fetch_min_bytes=rules.fetch_min_bytes,
    )
    router = create_router(batches, topics=topics, consumer_group=rules.consumer_group, polling=polling)
    broker.include_router(router)
    periodic = PeriodicTasks(registry)
    periodic.add("clock", rules.clock_interval, lambda: service.advance_clock(datetime.now(UTC)))
    periodic.add("consumer-lag", rules.lag_interval, ConsumerLag(registry, events_consumer(router)).refresh)
    stream = FastStream(broker, logger=kafka_logger, after_startup=[periodic.start], on_shutdown=[periodic.stop])
    runtime = ServiceRuntime(
        name="safety_rules", stream=stream, broker=broker, engine=engine, registry=registry, relay=relay
    )
    return create_http_app(runtime)


def events_consumer(router: KafkaRouter) -> Callable[[], OffsetSource | None]:
    """The live aiokafka consumer of the router's one subscriber (None until it started)."""
    (subscriber,) = router.subscribers

    def consumer() -> OffsetSource | None:
        return cast(OffsetSource | None, getattr(subscriber, "consumer", None))

    return consumer
