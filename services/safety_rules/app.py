"""safety_rules entrypoint: consume canonical events, evaluate them, acknowledge after the commit.

Nothing clinical here: parsing is the event contract's, evaluation the engine's (behind
``RulesStore``), publication the outbox relay's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter
from faststream.types import BrokerMiddleware

from shared.events import ClinicalEvent, Signal
from shared.logs import get_logger
from shared.messaging.topics import DEAD_LETTER, EVENTS, SIGNALS

CONSUMER_GROUP = "safety-rules"

log = get_logger(__name__)


class EventProcessor(Protocol):
    async def process(self, event: ClinicalEvent) -> int | None: ...


def create_router(processor: EventProcessor, middlewares: Sequence[BrokerMiddleware[Any, Any]] = ()) -> KafkaRouter:
    router = KafkaRouter(middlewares=middlewares)
    router.publisher(
        SIGNALS,
        title=f"{SIGNALS}:Signal",
        schema=Signal,
        description="Signals (INTERFACES §3), keyed by study id; published by the outbox relay.",
    )
    router.publisher(
        DEAD_LETTER,
        title=f"{DEAD_LETTER}:SafetyRulesDeadLetter",
        schema=bytes,
        description="Events safety_rules could not process: the original bytes, with x-original-topic, "
        "x-original-partition, x-original-offset, x-reason and x-attempts headers.",
    )

    @router.subscriber(
        EVENTS,
        group_id=CONSUMER_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{EVENTS}:EvaluateEvent",
        description="Canonical clinical events; evaluated once per event id, acknowledged after commit.",
    )
    async def evaluate_event(event: ClinicalEvent, msg: KafkaMessage) -> None:
        raised = await processor.process(event)
        log.info("event.evaluated", event_id=event.event_id, duplicate=raised is None, signals=raised or 0)
        await msg.ack()

    return router


class NotWired:
    """Stands in for the store when the router is built only to document it (AsyncAPI)."""

    async def process(self, event: ClinicalEvent) -> int | None:
        raise RuntimeError("documentation router: not wired to a database")


def documentation_router() -> KafkaRouter:
    return create_router(NotWired())
