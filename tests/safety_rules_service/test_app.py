"""The batch subscriber on FastStream's in-memory broker: records reach the service, bad ones the dead letters.

Commit semantics, redelivery and rebalances need the real broker: tests/integration/test_rules_live.py;
the batch logic itself is tests/safety_rules_service/test_batch.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from services.safety_rules.app import create_router, documentation_router
from services.safety_rules.batch import OffsetPort, batch_consumer
from services.safety_rules.handlers import Evaluated
from services.safety_rules.settings import RulesTopics
from shared.events import RecordIngested
from shared.messaging.dead_letter import DeadLetters, PoisonMessageError
from shared.messaging.outbox import Delivery
from shared.messaging.retry import Backoff, RetryPolicy

TOPICS = RulesTopics.with_prefix("t.")
FAST = RetryPolicy(max_attempts=3, backoff=Backoff(first=0.001, cap=0.002))


class Recorder:
    """The service (``check``, ``evaluate_batch``), the dead-letter producer and the consumer's offsets."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.records: list[RecordIngested] = []
        self.errors = errors or []
        self.dead: list[tuple[str, bytes, dict[str, str]]] = []
        self.commits: list[dict[TopicPartition, int]] = []

    def check(self, record: RecordIngested) -> None:
        self.records.append(record)
        if record.study_id != "ANAKINRA-AD":
            raise PoisonMessageError(f"study {record.study_id!r} is not configured")

    async def evaluate_batch(self, records: Sequence[RecordIngested]) -> list[Evaluated]:
        if self.errors:
            raise self.errors.pop(0)
        return [Evaluated([], duplicate=False) for _ in records]

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Mapping[str, str]) -> Delivery:
        self.dead.append((topic, value, dict(headers)))
        return Delivery(topic, 0, len(self.dead) - 1)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        raise AssertionError("nothing is left for redelivery here")

    def offsets(self, msg: KafkaMessage) -> OffsetPort:
        return self


def broker_for(recorder: Recorder) -> KafkaBroker:
    batches = batch_consumer(recorder, DeadLetters(recorder.publish, "g", topic=TOPICS.dead_letter), FAST)
    broker = KafkaBroker(ack_policy=AckPolicy.MANUAL)
    broker.include_router(create_router(batches, topics=TOPICS, consumer_group="g", offsets=recorder.offsets))
    return broker


def ingested(study_id: str = "ANAKINRA-AD") -> RecordIngested:
    return RecordIngested(
        record_id="r-1",
        dedup_key="REC:ANAKINRA-AD:DSMB:D-1",
        study_id=study_id,
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
        channel="http",
        events=[],
    )


async def test_a_record_on_the_events_topic_reaches_the_service_once_and_its_offset_is_committed() -> None:
    recorder = Recorder()
    async with TestKafkaBroker(broker_for(recorder)) as broker:
        await broker.publish(ingested().model_dump_json().encode(), TOPICS.events, key=b"ANAKINRA-AD")
    assert [record.record_id for record in recorder.records] == ["r-1"]
    assert recorder.dead == []
    assert recorder.commits == [{TopicPartition(TOPICS.events, 0): 1}]


async def test_an_undecodable_message_is_dead_lettered_with_the_reason_without_reaching_the_service() -> None:
    recorder = Recorder()
    async with TestKafkaBroker(broker_for(recorder)) as broker:
        await broker.publish(b'{"kind": "lab.result"}', TOPICS.events, key=b"ANAKINRA-AD")
    assert recorder.records == []
    [(topic, value, headers)] = recorder.dead
    assert (topic, value) == ("t.trialwatch.dlq.v1", b'{"kind": "lab.result"}')
    assert headers["x-exception"] == "ValidationError" and headers["x-attempts"] == "1"


async def test_a_record_of_an_unmonitored_study_is_dead_lettered_at_once() -> None:
    recorder = Recorder()
    async with TestKafkaBroker(broker_for(recorder)) as broker:
        await broker.publish(ingested("OTHER").model_dump_json().encode(), TOPICS.events)
    assert len(recorder.records) == 1
    assert recorder.dead[0][2]["x-reason"] == "PoisonMessageError: study 'OTHER' is not configured"


async def test_a_record_the_service_keeps_failing_on_is_retried_a_bounded_number_of_times() -> None:
    recorder = Recorder([ValueError("engine refused")] * 10)
    async with TestKafkaBroker(broker_for(recorder)) as broker:
        await broker.publish(ingested().model_dump_json().encode(), TOPICS.events)
    assert len(recorder.errors) == 10 - 1 - FAST.max_attempts, "the batch once, then the record alone"
    assert recorder.dead[0][2]["x-attempts"] == str(FAST.max_attempts)
    assert recorder.dead[0][2]["x-reason"] == "ValueError: engine refused"
    assert recorder.commits == [{TopicPartition(TOPICS.events, 0): 1}]


def test_the_documented_channels_are_the_real_topics() -> None:
    router = documentation_router()
    [subscriber] = router.subscribers
    assert [topic.name for topic in getattr(subscriber, "topics", [])] == ["trialwatch.events.v1"]
    assert sorted(publisher.topic for publisher in getattr(router, "publishers", [])) == [
        "trialwatch.dlq.v1",
        "trialwatch.signals.v1",
    ]
