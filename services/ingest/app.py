"""ingest's Kafka side: the raw input topics it consumes and the streams it produces (AsyncAPI).

A message on ``trialwatch.in.hl7``, ``.fhir`` or ``.records`` holds input in that format (one record
or many); its records are ingested in one transaction like an HTTP request. Rejected records go to the
dead-letter topic with the reason in a header; the message is acknowledged after the commit and the
dead letters. Nothing clinical here: parsing is the domain's, storage the store's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from faststream.types import BrokerMiddleware

from services.ingest.batch import Channel, Outcome, Refused
from services.ingest.handlers import Ingest
from services.ingest.units import Format, Unit, split_units
from shared.events import RecordIngested
from shared.logs import get_logger
from shared.messaging.dead_letter import PoisonMessageError
from shared.messaging.outbox import Delivery
from shared.messaging.topics import DEAD_LETTER, EVENTS, IN_FHIR, IN_HL7, IN_RECORDS

CONSUMER_GROUP = "ingest"
#: How long the broker may hold a fetch that finds nothing (Kafka's default is 500 ms): aiokafka fetches only
#: partitions with nothing buffered, so a busy input partition would wait for the idle ones' fetch to expire.
FETCH_WAIT_MS = 50
#: One subscriber (one group member, one rebalance at start) for the three raw input topics.
INPUT_FORMATS: dict[str, Format] = {IN_HL7: "hl7v2", IN_FHIR: "fhir", IN_RECORDS: "records"}

log = get_logger(__name__)


class RejectedRecords(Protocol):
    async def rejected(self, record: ConsumerRecord[Any, Any], refused: Refused) -> Delivery: ...


def _publishers(router: KafkaRouter) -> None:
    router.publisher(
        EVENTS,
        title=f"{EVENTS}:CanonicalEvent",
        schema=RecordIngested,
        description="One RecordIngested per accepted source record (its canonical events inside), keyed by "
        "study id, in commit order; published by the outbox relay. Headers: event_id (= record_id), kind, "
        "schema_version, channel.",
    )
    router.publisher(
        DEAD_LETTER,
        title=f"{DEAD_LETTER}:IngestDeadLetter",
        schema=bytes,
        description="Rejected records of the input topics, identifiers blanked, with x-reason (the record, the "
        "field, the reason), x-source, x-original-topic, x-original-partition, x-original-offset, x-attempts.",
    )


def create_router(
    ingestion: Ingest, dead_letters: RejectedRecords, middlewares: Iterable[BrokerMiddleware[Any, Any]] = ()
) -> tuple[KafkaRouter, LogicSubscriber[Any]]:
    """The router and its input subscriber (whose consumer the lag probe samples)."""
    router = KafkaRouter(middlewares=tuple(middlewares))
    _publishers(router)
    subscriber = router.subscriber(
        *INPUT_FORMATS,
        group_id=CONSUMER_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
        title="IngestRawInput",
        description="Raw input from source systems, in the format its topic names (INTERFACES §1): "
        f"{', '.join(f'{topic} {fmt}' for topic, fmt in INPUT_FORMATS.items())}; one record or many per "
        "message, acknowledged after the commit.",
    )

    @subscriber
    async def ingest_message(msg: KafkaMessage) -> None:
        record = msg.raw_message
        if not isinstance(record, ConsumerRecord):
            raise TypeError("ingest subscribes to single records")
        fmt = INPUT_FORMATS[record.topic]
        name = f"{record.topic}/{record.partition}@{record.offset}"
        outcomes = await ingestion.ingest(split_units(record.value or b"", fmt, name), fmt, "kafka")
        if not outcomes:
            raise PoisonMessageError(f"{name}: the message holds no {fmt} record")
        refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
        for rejection in refused:
            await dead_letters.rejected(record, rejection)
        log.info("kafka.ingested", source=name, records=len(outcomes), rejected=len(refused))
        await msg.ack()

    return router, subscriber


class NotWired:
    """Stands in for ingestion and dead letters when the router is built only to document it."""

    async def ingest(self, units: Iterable[Unit], fmt: Format, channel: Channel) -> list[Outcome]:
        raise RuntimeError("documentation router: not wired to a database")

    async def rejected(self, record: ConsumerRecord[Any, Any], refused: Refused) -> Delivery:
        raise RuntimeError("documentation router: not wired to a broker")


def documentation_router() -> KafkaRouter:
    return create_router(NotWired(), NotWired())[0]
