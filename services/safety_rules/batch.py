"""One poll's records: decoded, evaluated in one transaction, a failing one isolated, exactly the done ones committed.

FastStream's batch subscriber hands over the records of one poll (aiokafka ``getmany``). Its own
acknowledgement does not fit: ``KafkaAckableMessage.ack()`` commits the *positions* of every assigned
partition, and a handler that raises leaves those positions past the batch, so the next batch's commit
would silently skip it. So the subscriber never acks (AckPolicy.MANUAL) and this never raises. Every
record ends in exactly one of three ways:
- processed: evaluated in the batch's transaction (or alone, when the batch failed), then committed;
- dead-lettered: undecodable, of another study, or failing alone ``max_attempts`` times with an error that
  is not the infrastructure's: published to the DLT with the reason (shared.messaging.dead_letter), committed;
- left for redelivery: the infrastructure (database, broker) kept failing: its partition is sought back
  to it and the consumer pauses, so an outage delays the partition and never empties it into the DLT.
Offsets are committed explicitly, per partition, as the offset after the last record done, up to the
first one not done. A redelivered record is absorbed by the processed-record table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from services.safety_rules.handlers import Evaluated
from shared.events import RecordIngested
from shared.logs import get_logger
from shared.messaging.dead_letter import DeadLetters, PoisonMessageError, describe, is_infrastructure, is_poison
from shared.messaging.retry import RetryPolicy

Raw: TypeAlias = ConsumerRecord[Any, Any]

log = get_logger(__name__)


class OffsetPort(Protocol):
    """What a batch needs of the Kafka consumer (aiokafka's `AIOKafkaConsumer` has it)."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class BatchEvaluator(Protocol):
    def check(self, record: RecordIngested) -> None: ...

    async def evaluate_batch(self, records: Sequence[RecordIngested]) -> list[Evaluated]: ...


@dataclass(frozen=True)
class Item:
    index: int
    raw: Raw
    record: RecordIngested


class RedeliverError(Exception):
    """The infrastructure kept failing on ``raw``: it and the records after it are left for redelivery."""

    def __init__(self, raw: Raw, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.raw = raw


class BatchConsumer:
    """Handles the batches of the events subscriber (`services.safety_rules.app`)."""

    def __init__(
        self,
        evaluator: BatchEvaluator,
        dead_letters: DeadLetters,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._evaluator = evaluator
        self._dead_letters = dead_letters
        self._policy = policy
        self._sleep = sleep

    async def consume(self, raws: Sequence[Raw], offsets: OffsetPort) -> None:
        """Settles every record of ``raws`` (see the module); never raises."""
        done: set[int] = set()
        try:
            items = await self._decode(raws, done)
            await self._evaluate(items, done)
        except Exception as exc:  # whatever is not done is sought back and redelivered after a pause
            rewound = await settle(raws, done, offsets)
            log.warning("consume.redeliver_later", error=describe(exc), records=len(raws) - len(done), rewound=rewound)
            await self._sleep(self._policy.backoff.cap)
            return
        await settle(raws, done, offsets)

    async def _decode(self, raws: Sequence[Raw], done: set[int]) -> list[Item]:
        """The records to evaluate; each undecodable one, or one of another study, dead-lettered at once."""
        items: list[Item] = []
        for index, raw in enumerate(raws):
            try:
                record = RecordIngested.model_validate_json(raw.value or b"")
                self._evaluator.check(record)
            except (ValidationError, PoisonMessageError) as exc:
                await self._dead_letter(raw, exc, attempts=1)
                done.add(index)
                continue
            items.append(Item(index, raw, record))
        return items

    async def _evaluate(self, items: list[Item], done: set[int]) -> None:
        """All in one transaction; after a failure that is not the infrastructure's, one record at a
        time until the failing one is dead-lettered, then the rest together again."""
        pending, attempt = items, 0
        while pending:
            attempt += 1
            try:
                outcomes = await self._evaluator.evaluate_batch([item.record for item in pending])
            except Exception as exc:
                if not is_infrastructure(exc):
                    log.warning("consume.batch_isolating", records=len(pending), error=describe(exc))
                    pending, attempt = await self._isolate(pending, done), 0
                elif attempt >= self._policy.max_attempts:
                    raise RedeliverError(pending[0].raw, exc) from exc
                else:
                    log.warning("consume.batch_retrying", attempt=attempt, error=describe(exc), **where(pending[0].raw))
                    await self._sleep(self._policy.backoff.delay(attempt))
                continue
            done.update(item.index for item in pending)
            report(pending, outcomes)
            return

    async def _isolate(self, pending: list[Item], done: set[int]) -> list[Item]:
        """One record at a time up to the first dead-lettered one; returns the records after it."""
        for position, item in enumerate(pending):
            dead = await self._alone(item)
            done.add(item.index)
            if dead:
                return pending[position + 1 :]
        return []

    async def _alone(self, item: Item) -> bool:
        """Bounded retries with backoff; True when the record was dead-lettered."""
        attempt = 0
        while True:
            attempt += 1
            try:
                outcomes = await self._evaluator.evaluate_batch([item.record])
            except Exception as exc:
                if not is_poison(exc) and attempt < self._policy.max_attempts:
                    log.warning("consume.retrying", attempt=attempt, error=describe(exc), **where(item.raw))
                    await self._sleep(self._policy.backoff.delay(attempt))
                    continue
                if is_infrastructure(exc) and not is_poison(exc):
                    raise RedeliverError(item.raw, exc) from exc
                await self._dead_letter(item.raw, exc, attempts=attempt)
                return True
            report([item], outcomes)
            return False

    async def _dead_letter(self, raw: Raw, reason: BaseException, *, attempts: int) -> None:
        try:
            delivery = await self._dead_letters.send(raw, reason, attempts)
        except Exception as publish_error:  # the broker itself is away: keep the record
            raise RedeliverError(raw, publish_error) from publish_error
        fields = {"reason": describe(reason), "attempts": attempts, "dead_letter_offset": delivery.offset}
        log.error("consume.dead_lettered", **fields, **where(raw))


async def settle(raws: Sequence[Raw], done: set[int], offsets: OffsetPort) -> dict[str, int]:
    """Commits, per partition, the offset after its last record done before its first one not done, and
    seeks each partition with a record not done back to that record; returns those, for the log."""
    commits, rewinds = progress(raws, done)
    if commits:
        try:
            await offsets.commit(commits)
        except Exception as exc:  # a rebalance took the partition: its new owner redelivers, deduplicated
            log.warning("consume.commit_failed", error=describe(exc), offsets=_named(commits))
    for partition, offset in rewinds.items():
        try:
            offsets.seek(partition, offset)
        except Exception as exc:  # revoked meanwhile: the new owner starts from the committed offset
            log.warning("consume.rewind_failed", error=describe(exc), partition=partition.partition, offset=offset)
    return _named(rewinds)


def progress(raws: Sequence[Raw], done: set[int]) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(offsets to commit, offsets to seek back to), per partition."""
    commits: dict[TopicPartition, int] = {}
    rewinds: dict[TopicPartition, int] = {}
    for index, raw in enumerate(raws):
        partition = TopicPartition(raw.topic, raw.partition)
        if partition in rewinds:
            continue
        if index in done:
            commits[partition] = raw.offset + 1
        else:
            rewinds[partition] = raw.offset
    return commits, rewinds


def report(items: Sequence[Item], outcomes: Sequence[Evaluated]) -> None:
    """One line per evaluated batch, and one per record it skipped as processed before."""
    for item, outcome in zip(items, outcomes, strict=True):
        if outcome.duplicate:
            log.info("record.evaluated", record_id=item.record.record_id, duplicate=True, signals=0)
    signals = sum(len(outcome.signals) for outcome in outcomes)
    duplicates = sum(outcome.duplicate for outcome in outcomes)
    log.info("batch.evaluated", records=len(items), duplicates=duplicates, signals=signals, **where(items[0].raw))


def where(raw: Raw) -> dict[str, Any]:
    return {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset}


def _named(offsets: dict[TopicPartition, int]) -> dict[str, int]:
    return {f"{partition.topic}[{partition.partition}]": offset for partition, offset in offsets.items()}
