"""notifier's Kafka side: signals become alerts, DSMB decisions lift pauses; acknowledged after the commit.

Nothing clinical here: parse, call the use case, acknowledge. Publishers are listed for the AsyncAPI
document; the records themselves go through the outbox (``alerts``, ``records``, dead letters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter
from faststream.types import BrokerMiddleware

from services.notifier.domain.clocks import RegRecord
from services.notifier.settings import DEFAULT_CONSUMER_GROUP, DEFAULT_DECISIONS_GROUP, NotifierTopics
from shared.events import AlertChanged, RecordIngested, Signal
from shared.logs import get_logger
from shared.messaging.topics import ALERTS, DEAD_LETTER, EVENTS, IN_RECORDS, SIGNALS

CONSUMER_GROUP = DEFAULT_CONSUMER_GROUP
DSMB_KIND = b'"dsmb.decision"'

log = get_logger(__name__)


class SignalIntake(Protocol):
    async def record(self, signal: Signal) -> str | None: ...


class DecisionIntake(Protocol):
    async def record(self, record: RecordIngested) -> int: ...


def _publishers(router: KafkaRouter, topics: NotifierTopics) -> None:
    router.publisher(
        topics.dead_letter,
        title=f"{DEAD_LETTER}:NotifierDeadLetter",
        schema=bytes,
        description="Signals notifier could not process (original bytes, x-original-* and x-reason headers), "
        "and deliveries that failed for good (JSON, x-source: notifier.delivery).",
    )
    router.publisher(
        topics.alerts,
        title=f"{ALERTS}:AlertChanged",
        schema=AlertChanged,
        description="Each alert state change (open, notified, acknowledged, resolved), keyed by study.",
    )
    router.publisher(
        topics.records,
        title=f"{IN_RECORDS}:RegulatorySubmission",
        schema=RegRecord,
        description="A REG record (INTERFACES §1.3) per recorded clock submission, keyed by study; ingest "
        "takes it like any record and the engine stops the clock.",
    )


def create_router(
    signals: SignalIntake,
    decisions: DecisionIntake,
    topics: NotifierTopics,
    groups: tuple[str, str] = (DEFAULT_CONSUMER_GROUP, DEFAULT_DECISIONS_GROUP),
    middlewares: Sequence[BrokerMiddleware[Any, Any]] = (),
) -> KafkaRouter:
    router = KafkaRouter(middlewares=middlewares)
    _publishers(router, topics)

    @router.subscriber(
        topics.signals,
        group_id=groups[0],
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{SIGNALS}:ReceiveSignal",
        description="Signals from safety_rules; one alert per signal id, acknowledged after commit.",
    )
    async def receive_signal(signal: Signal, msg: KafkaMessage) -> None:
        alert_id = await signals.record(signal)
        log.info("signal.received", signal_id=signal.signal_id, rule_id=signal.rule_id, alert_id=alert_id)
        await msg.ack()

    @router.subscriber(
        topics.events,
        group_id=groups[1],
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{EVENTS}:NotifierDsmbDecisions",
        description="Accepted records (RecordIngested); the notifier applies DSMB RESUME decisions (lifting "
        "study pauses) and acknowledges every other record untouched.",
    )
    async def receive_record(msg: KafkaMessage) -> None:
        if DSMB_KIND in msg.body:  # most records hold no DSMB decision: acknowledged without parsing
            record = RecordIngested.model_validate_json(msg.body)
            lifted = await decisions.record(record)
            log.info("dsmb.decision", study_id=record.study_id, record_id=record.record_id, pauses_lifted=lifted)
        await msg.ack()

    return router


class NotWired:
    """Stands in for the use cases when the router is built only to document it (AsyncAPI)."""

    async def record(self, _: Any) -> Any:
        raise RuntimeError("documentation router: not wired to a database")


def documentation_router() -> KafkaRouter:
    return create_router(NotWired(), NotWired(), NotifierTopics.with_prefix(""))
