"""safety_rules entrypoint: consume ingested records in batches, evaluate each once, commit after the commit.

Nothing clinical here: decoding is the record contract's, evaluation the engine's (behind
`RulesService`), publication the outbox relay's. What happens to each record of a batch (processed,
dead-lettered or left for redelivery) and which offsets are committed is `shared.messaging.batches`'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter

from services.safety_rules.settings import DEFAULT_CONSUMER_GROUP, RulesTopics
from shared.events import RecordIngested, Signal
from shared.messaging.batches import OffsetPort, Raw, RecordBatches, live_consumer, undecoded

CONSUMER_GROUP = DEFAULT_CONSUMER_GROUP
EVENTS_DESCRIPTION = (
    "Ingested source records, keyed by study (one partition per study, in ingestion order); "
    "each evaluated once per record id, acknowledged after the commit."
)


@dataclass(frozen=True)
class Polling:
    """How much one poll hands over: at most ``max_records`` (and ``max_bytes`` per partition), whatever
    is there after ``timeout_ms``. A poll never waits for a batch to fill up: at a low rate each batch
    holds a record or two, under a backlog it is as large as allowed, so that a participant's state is
    read and written once for many of its records. ``fetch_wait_ms`` bounds how long the broker holds a
    fetch that finds nothing new (Kafka's fetch.max.wait.ms, 500 by default): aiokafka fetches only the
    partitions with nothing buffered, so while the study's busy partition is being evaluated its next
    fetch is for the idle ones, and the busy one waited for that fetch to time out (about 450 ms idle
    after each batch at 200 records/s). ``fetch_min_bytes`` lets the broker hold a fetch until that much is
    there (at most ``fetch_wait_ms``): under a flood a batch then holds more records per participant."""

    max_records: int = 500
    timeout_ms: int = 20
    max_bytes: int = 2 * 1024 * 1024
    fetch_wait_ms: int = 100
    fetch_min_bytes: int = 1024 * 1024


def create_router(
    batches: RecordBatches,
    *,
    topics: RulesTopics,
    consumer_group: str = CONSUMER_GROUP,
    polling: Polling = Polling(),
    offsets: Callable[[KafkaMessage], OffsetPort] = live_consumer,
) -> KafkaRouter:
    router = _with_publishers(topics)

    @router.subscriber(
        topics.events,
        batch=True,
        max_records=polling.max_records,
        batch_timeout_ms=polling.timeout_ms,
        max_partition_fetch_bytes=polling.max_bytes,
        fetch_max_wait_ms=polling.fetch_wait_ms,
        fetch_min_bytes=polling.fetch_min_bytes,
        decoder=undecoded,
        group_id=consumer_group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{topics.events}:EvaluateEvent",
        description=EVENTS_DESCRIPTION,
    )
    async def evaluate_records(msg: KafkaMessage) -> None:
        await batches.consume(cast(Sequence[Raw], msg.raw_message), offsets(msg))

    return router


def documentation_router() -> KafkaRouter:
    """The streams as the AsyncAPI document shows them: each record on the events topic is one
    `RecordIngested` (the live subscriber takes them a poll at a time and decodes them itself)."""
    topics = RulesTopics.with_prefix("")
    router = _with_publishers(topics)

    @router.subscriber(
        topics.events,
        group_id=CONSUMER_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{topics.events}:EvaluateEvent",
        description=EVENTS_DESCRIPTION,
    )
    async def evaluate_record(record: RecordIngested) -> None:
        raise RuntimeError("documentation router: not wired to a database")

    return router


def _with_publishers(topics: RulesTopics) -> KafkaRouter:
    router = KafkaRouter()
    router.publisher(
        topics.signals,
        title=f"{topics.signals}:Signal",
        schema=Signal,
        description="Signals (INTERFACES §3), keyed by study id; published by the outbox relay.",
    )
    router.publisher(
        topics.dead_letter,
        title=f"{topics.dead_letter}:SafetyRulesDeadLetter",
        schema=bytes,
        description="Records safety_rules could not process: the original bytes, with x-original-topic, "
        "x-original-partition, x-original-offset, x-reason and x-attempts headers.",
    )
    return router
