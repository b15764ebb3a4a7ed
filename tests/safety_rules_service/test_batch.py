"""A poll's records through safety_rules' batch consumer (`RecordEvaluation` on the shared `BatchConsumer`):
what is evaluated together, what is dead-lettered, which offsets are committed and which partitions are sought
back (fakes for the service, the DLT and Kafka)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.exc import OperationalError

from services.safety_rules.batch import batch_consumer
from services.safety_rules.handlers import Evaluated
from shared.events import RecordIngested
from shared.messaging.batches import progress
from shared.messaging.dead_letter import DeadLetters, PoisonMessageError
from shared.messaging.outbox import Delivery
from shared.messaging.retry import Backoff, RetryPolicy

TOPIC = "trialwatch.events.v1"
POLICY = RetryPolicy(max_attempts=3, backoff=Backoff(first=0.1, cap=2.0))
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
DB_DOWN = OperationalError("SELECT 1", {}, ConnectionRefusedError("database away"))


def raw(offset: int, record_id: str | None = None, *, partition: int = 0, value: bytes | None = None) -> Any:
    if value is None:
        record = RecordIngested(
            record_id=record_id or f"r-{partition}-{offset}",
            dedup_key=f"REC:ANAKINRA-AD:DSMB:{partition}-{offset}",
            study_id="ANAKINRA-AD",
            received_at=datetime(2026, 3, 1, tzinfo=UTC),
            channel="kafka",
            events=[],
        )
        value = record.model_dump_json().encode()
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"ANAKINRA-AD", value, None, 11, len(value), [])


class Rig:
    """The service (fails as told), the dead-letter producer, the consumer's offsets and the clock."""

    def __init__(self, failing: Mapping[str, Exception] = {}, dead_letters_fail: bool = False) -> None:
        self.failing = dict(failing)
        self.dead_letters_fail = dead_letters_fail
        self.calls: list[list[str]] = []
        self.dead: list[tuple[int, str, str]] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.sleeps: list[float] = []

    def check(self, record: RecordIngested) -> None:
        if record.record_id.startswith("other"):
            raise PoisonMessageError("study 'OTHER' is not configured")

    async def evaluate_batch(self, records: Sequence[RecordIngested]) -> list[Evaluated]:
        ids = [record.record_id for record in records]
        self.calls.append(ids)
        for record_id in ids:
            if record_id in self.failing:
                raise self.failing[record_id]
        return [Evaluated([], duplicate=False) for _ in records]

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Mapping[str, str]) -> Delivery:
        if self.dead_letters_fail:
            raise ConnectionError("broker away")
        self.dead.append((int(headers["x-original-offset"]), headers["x-exception"], headers["x-attempts"]))
        return Delivery(topic, 0, len(self.dead) - 1)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def consume(self, raws: Sequence[Any]) -> None:
        consumer = batch_consumer(self, DeadLetters(self.publish, "g"), POLICY, sleep=self.sleep)
        await consumer.consume(raws, self)


async def test_a_clean_batch_is_one_evaluation_and_one_commit_per_partition_of_last_offset_plus_one() -> None:
    rig = Rig()
    await rig.consume([raw(10), raw(11), raw(12), raw(4, partition=1), raw(5, partition=1)])
    assert rig.calls == [["r-0-10", "r-0-11", "r-0-12", "r-1-4", "r-1-5"]]
    assert rig.commits == [{P0: 13, P1: 6}]
    assert (rig.seeks, rig.dead, rig.sleeps) == ([], [], [])


async def test_undecodable_and_foreign_records_are_dead_lettered_at_once_and_committed_past() -> None:
    rig = Rig()
    await rig.consume([raw(1), raw(2, value=b"{not json"), raw(3, "other-study"), raw(4)])
    assert rig.calls == [["r-0-1", "r-0-4"]]
    assert rig.dead == [(2, "ValidationError", "1"), (3, "PoisonMessageError", "1")]
    assert rig.commits == [{P0: 5}]


async def test_a_record_that_fails_the_batch_is_isolated_retried_with_backoff_then_dead_lettered() -> None:
    rig = Rig({"r-0-3": ValueError("engine refused")})
    await rig.consume([raw(offset) for offset in range(1, 7)])
    assert rig.calls == [
        ["r-0-1", "r-0-2", "r-0-3", "r-0-4", "r-0-5", "r-0-6"],  # the batch fails
        ["r-0-1"],
        ["r-0-2"],
        ["r-0-3"],
        ["r-0-3"],
        ["r-0-3"],  # alone, max_attempts times
        ["r-0-4", "r-0-5", "r-0-6"],  # the rest together again
    ]
    assert rig.sleeps == [0.1, 0.2], "a backoff between attempts, never a hot loop"
    assert rig.dead == [(3, "ValueError", "3")]
    assert rig.commits == [{P0: 7}]
    assert rig.seeks == []


async def test_a_database_outage_is_retried_then_sought_back_never_dead_lettered_nor_committed() -> None:
    rig = Rig({"r-0-1": DB_DOWN})
    await rig.consume([raw(1), raw(2), raw(7, partition=1, value=b"garbage")])
    assert rig.calls == [["r-0-1", "r-0-2"]] * POLICY.max_attempts
    assert rig.dead == [(7, "ValidationError", "1")]
    assert rig.commits == [{P1: 8}], "only the partition whose records are all settled"
    assert rig.seeks == [(P0, 1)]
    assert rig.sleeps == [0.1, 0.2, POLICY.backoff.cap], "backoff, then a pause before the redelivery"


async def test_a_dead_letter_that_cannot_be_published_leaves_the_record_for_redelivery() -> None:
    rig = Rig(dead_letters_fail=True)
    await rig.consume([raw(1), raw(2, value=b"garbage"), raw(3)])
    assert rig.calls == []
    assert (rig.commits, rig.seeks) == ([], [(P0, 1)]), "nothing before it is committed either"


async def test_a_failed_offset_commit_is_logged_not_raised() -> None:
    class Rebalanced(Rig):
        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            raise RuntimeError("CommitFailedError: the group has rebalanced")

    rig = Rebalanced()
    await rig.consume([raw(1)])
    assert rig.calls == [["r-0-1"]]


@pytest.mark.parametrize(
    ("done", "commits", "rewinds"),
    [
        ({0, 1, 2}, {P0: 3, P1: 9}, {}),
        ({0, 2}, {P0: 3}, {P1: 8}),
        ({1, 2}, {P1: 9}, {P0: 1}),
        (set(), {}, {P0: 1, P1: 8}),
    ],
)
def test_a_partition_is_committed_up_to_its_first_record_not_done(
    done: set[int], commits: dict[TopicPartition, int], rewinds: dict[TopicPartition, int]
) -> None:
    raws = [raw(1), raw(8, partition=1), raw(2)]
    assert progress(raws, done) == (commits, rewinds)
