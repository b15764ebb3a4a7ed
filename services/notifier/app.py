"""notifier's Kafka side: polls of signals become alerts, DSMB decisions lift pauses; committed after the commit.

Nothing clinical here: each subscriber hands a poll's records to its `BatchConsumer` (decode or skip each,
apply the rest in one transaction, dead-letter poison, commit the offsets). Publishers are listed for the
AsyncAPI document; the records themselves go through the outbox (``alerts``, ``records``, dead letters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter

from services.notifier.domain.clocks import RegRecord
from services.notifier.settings import DEFAULT_CONSUMER_GROUP, DEFAULT_DECISIONS_GROUP, NotifierTopics
from shared.events import AlertChanged, RecordIngested, Signal
from shared.messaging.batches import OffsetPort, Raw, RecordBatches, live_consumer, undecoded
from shared.messaging.topics import ALERTS, DEAD_LETTER, EVENTS, IN_RECORDS, SIGNALS

CONSUMER_GROUP = DEFAULT_CONSUMER_GROUP
SIGNALS_TITLE = f"{SIGNALS}:ReceiveSignal"
SIGNALS_DESCRIPTION = (
    "Signals from safety_rules; one alert per signal id. Taken a poll at a time: a poll's alerts are opened "
    "in one transaction, its offsets committed after it."
)
EVENTS_TITLE = f"{EVENTS}:NotifierDsmbDecisions"
EVENTS_DESCRIPTION = (
    "Accepted records (RecordIngested); the notifier applies DSMB RESUME decisions (lifting study pauses). "
    "Taken a poll at a time: records that cannot hold a decision are skipped unparsed, the decisions applied "
    "in one transaction, the offsets committed after it."
)


@dataclass(frozen=True)
class Polling:
    """How a subscriber polls: at most ``max_records`` a poll; ``timeout_ms`` of waiting when nothing is
    there (FastStream's batch loop then sleeps as long again); each fetch held by the broker until
    ``min_bytes`` are there or ``max_wait_ms`` passed, and at most ``max_bytes`` (``max_partition_bytes``
    of one partition) in its answer (aiokafka's defaults: 50 MiB and 1 MiB)."""

    max_records: int
    timeout_ms: int
    min_bytes: int = 1
    max_wait_ms: int = 500
    max_bytes: int = 50 << 20
    max_partition_bytes: int = 1 << 20


#: Signals are few and wanted soon (an URGENT alert goes out at once). A signal arriving while a fetch is
#: held is returned at once, so the broker's wait (Kafka's 500 ms) delays a signal only behind a backlog of
#: more than a poll (aiokafka fetches only partitions with nothing buffered; safety_rules, whose input is
#: such a backlog, holds 20 ms). Each held fetch that returns empty costs CPU: 50 ms made 20 a second of
#: them, most of the idle notifier's CPU (bench.notifier_service).
SIGNAL_POLLING = Polling(max_records=500, timeout_ms=100, max_wait_ms=500)
#: Ingested records are many (about 4 kB each) and only their rare DSMB decisions matter, where a second
#: is nothing: large fetches keep the polls few at any rate, and each poll costs about 2 ms besides its
#: records (FastStream's call and log lines, the offset commit). Fetches answered at 256 kB held 68
#: records a poll: 45-50 us of the notifier's CPU per record (bench.notifier_service --events), against
#: aiokafka's 10 us of reading one. At 1 MiB (about 250 records) it is 26 us; larger fetches (2 and
#: 8 MiB) saved nothing more and raised the peak RSS by 30 MB. 1 MiB is also the most a fetch answers.
EVENT_POLLING = Polling(
    max_records=2000, timeout_ms=250, min_bytes=1 << 20, max_wait_ms=500, max_bytes=1 << 20, max_partition_bytes=1 << 20
)


@dataclass(frozen=True)
class Subscription:
    topic: str
    group: str
    polling: Polling
    title: str
    description: str


def create_router(
    signals: RecordBatches,
    decisions: RecordBatches,
    topics: NotifierTopics,
    groups: tuple[str, str] = (DEFAULT_CONSUMER_GROUP, DEFAULT_DECISIONS_GROUP),
    offsets: Callable[[KafkaMessage], OffsetPort] = live_consumer,
) -> KafkaRouter:
    router = _with_publishers(topics)
    signal_stream = Subscription(topics.signals, groups[0], SIGNAL_POLLING, SIGNALS_TITLE, SIGNALS_DESCRIPTION)
    event_stream = Subscription(topics.events, groups[1], EVENT_POLLING, EVENTS_TITLE, EVENTS_DESCRIPTION)
    _subscribe(router, signal_stream, signals, offsets)
    _subscribe(router, event_stream, decisions, offsets)
    return router


def _subscribe(
    router: KafkaRouter,
    stream: Subscription,
    batches: RecordBatches,
    offsets: Callable[[KafkaMessage], OffsetPort],
) -> None:
    @router.subscriber(
        stream.topic,
        batch=True,
        max_records=stream.polling.max_records,
        batch_timeout_ms=stream.polling.timeout_ms,
        fetch_min_bytes=stream.polling.min_bytes,
        fetch_max_wait_ms=stream.polling.max_wait_ms,
        fetch_max_bytes=stream.polling.max_bytes,
        max_partition_fetch_bytes=stream.polling.max_partition_bytes,
        decoder=undecoded,
        group_id=stream.group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=stream.title,
        description=stream.description,
    )
    async def receive(msg: KafkaMessage) -> None:
        await batches.consume(cast(Sequence[Raw], msg.raw_message), offsets(msg))


def documentation_router() -> KafkaRouter:
    """The streams as the AsyncAPI document shows them: each record on the signals topic is one `Signal`,
    each on the events topic one `RecordIngested` (the live subscribers take them a poll at a time)."""
    topics = NotifierTopics.with_prefix("")
    router = _with_publishers(topics)

    @router.subscriber(topics.signals, group_id=CONSUMER_GROUP, title=SIGNALS_TITLE, description=SIGNALS_DESCRIPTION)
    async def receive_signal(signal: Signal) -> None:
        raise RuntimeError("documentation router: not wired to a database")

    @router.subscriber(
        topics.events, group_id=DEFAULT_DECISIONS_GROUP, title=EVENTS_TITLE, description=EVENTS_DESCRIPTION
    )
    async def receive_record(record: RecordIngested) -> None:
        raise RuntimeError("documentation router: not wired to a database")

    return router


def _with_publishers(topics: NotifierTopics) -> KafkaRouter:
    router = KafkaRouter()
    router.publisher(
        topics.dead_letter,
        title=f"{DEAD_LETTER}:NotifierDeadLetter",
        schema=bytes,
        description="Records notifier could not process: signals, and ingested records with a DSMB decision "
        "(original bytes, x-original-*, x-consumer-group, x-reason and x-attempts headers); and deliveries "
        "that failed for good (JSON, x-source: notifier.delivery).",
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
    return router
