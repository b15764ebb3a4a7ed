"""A batch subscriber's poll: records with nothing for the consumer skipped, the rest applied in one
transaction, a failing one isolated, exactly the settled ones committed.

FastStream's batch subscriber hands over the records of one poll (aiokafka ``getmany``). Its own
acknowledgement does not fit: ``KafkaAckableMessage.ack()`` commits the *positions* of every assigned
partition, and a handler that raises leaves those positions past the batch, so the next batch's commit
would silently skip it (TECH_NOTES §2.2). So the subscriber never acknowledges (AckPolicy.MANUAL) and
``BatchConsumer.consume`` never raises. Every record ends in exactly one of three ways:
- done: skipped (``decode`` found nothing for the consumer in it, ideally without parsing it), or applied
  in the poll's transaction (or alone, when that failed); applying is idempotent (a processed-event
  table), so a redelivered poll changes nothing;
- dead-lettered with the reason (shared.messaging.dead_letter): undecodable at once; failing alone
  ``max_attempts`` times with an error that is not the infrastructure's, after backed-off retries;
- left for redelivery: the infrastructure (database, broker) kept failing: its partition is sought back
  to it and the subscriber waits ``backoff.cap``, so an outage delays the partition and never empties it
  into the dead letters.
Offsets are committed explicitly once per poll, after the transaction: per partition, the offset after
its last record done before its first one not done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, cast

from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka import KafkaMessage

from shared.logs import get_logger
from shared.messaging.dead_letter import DeadLetters, describe, is_infrastructure, is_poison
from shared.messaging.retry import RetryPolicy

Raw: TypeAlias = ConsumerRecord[Any, Any]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

log = get_logger(__name__)


class OffsetPort(Protocol):
    """What a batch needs of the Kafka consumer (aiokafka's `AIOKafkaConsumer` has it)."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class RecordBatches(Protocol):
    """What a batch subscriber hands its polls to (`BatchConsumer`)."""

    async def consume(self, raws: Sequence[Raw], offsets: OffsetPort) -> None: ...


def live_consumer(msg: KafkaMessage) -> OffsetPort:
    """The aiokafka consumer a poll came from (it commits and seeks explicit offsets)."""
    return cast(OffsetPort, msg.consumer)


async def undecoded(msg: KafkaMessage) -> None:
    """FastStream's decoder, replaced: the batch consumer decodes each record itself (one bad record must
    not fail its poll), so the poll is not JSON-decoded here a first time for nothing."""


class BatchHandler(Protocol[T]):
    def decode(self, raw: Raw) -> T | None:
        """The record's message, or None when it holds nothing for this consumer; raises for poison."""
        ...

    async def apply(self, messages: Sequence[T]) -> None:
        """All of ``messages`` in one transaction; a message applied before changes nothing."""
        ...


@dataclass(frozen=True)
class Item(Generic[T_co]):
    index: int
    raw: Raw
    message: T_co


class RedeliverError(Exception):
    """The infrastructure kept failing on ``raw``: it and the records after it are left for redelivery."""

    def __init__(self, raw: Raw, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.raw = raw


class BatchConsumer(Generic[T]):
    """Settles the polls of one batch subscriber (see the module)."""

    def __init__(
        self,
        handler: BatchHandler[T],
        dead_letters: DeadLetters,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._handler = handler
        self._dead_letters = dead_letters
        self._policy = policy
        self._sleep = sleep

    async def consume(self, raws: Sequence[Raw], offsets: OffsetPort) -> None:
        """Settles every record of ``raws`` (see the module); never raises."""
        done: set[int] = set()
        try:
            items = await self._decode(raws, done)
            await self._apply(items, done)
        except Exception as exc:  # whatever is not done is sought back and redelivered after a pause
            rewound = await settle(raws, done, offsets)
            log.warning("consume.redeliver_later", error=describe(exc), records=len(raws) - len(done), rewound=rewound)
            await self._sleep(self._policy.backoff.cap)
            return
        await settle(raws, done, offsets)

    async def _decode(self, raws: Sequence[Raw], done: set[int]) -> list[Item[T]]:
        """The records to apply; the others are done: skipped, or dead-lettered at once. Decoding does no
        I/O, so whatever it raises would be raised again on every redelivery: it is poison."""
        items: list[Item[T]] = []
        for index, raw in enumerate(raws):
            try:
                message = self._handler.decode(raw)
            except Exception as exc:
                await self._dead_letter(raw, exc, attempts=1)
                message = None
            if message is None:
                done.add(index)
            else:
                items.append(Item(index, raw, message))
        return items

    async def _apply(self, items: list[Item[T]], done: set[int]) -> None:
        """All in one transaction; after a failure that is not the infrastructure's, one record at a
        time until the failing one is dead-lettered, then the rest together again."""
        pending, attempt = items, 0
        while pending:
            attempt += 1
            try:
                await self._handler.apply([item.message for item in pending])
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
            return

    async def _isolate(self, pending: list[Item[T]], done: set[int]) -> list[Item[T]]:
        """One record at a time up to the first dead-lettered one; returns the records after it."""
        for position, item in enumerate(pending):
            dead = await self._alone(item)
            done.add(item.index)
            if dead:
                return pending[position + 1 :]
        return []

    async def _alone(self, item: Item[T]) -> bool:
        """Bounded retries with backoff; True when the record was dead-lettered."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handler.apply([item.message])
            except Exception as exc:
                if not is_poison(exc) and attempt < self._policy.max_attempts:
                    log.warning("consume.retrying", attempt=attempt, error=describe(exc), **where(item.raw))
                    await self._sleep(self._policy.backoff.delay(attempt))
                    continue
                if is_infrastructure(exc) and not is_poison(exc):
                    raise RedeliverError(item.raw, exc) from exc
                await self._dead_letter(item.raw, exc, attempts=attempt)
                return True
            return False

    async def _dead_letter(self, raw: Raw, reason: BaseException, *, attempts: int) -> None:
        try:
            delivery = await self._dead_letters.send(raw, reason, attempts)
        except Exception as publish_error:  # the broker itself is away: keep the record
            raise RedeliverError(raw, publish_error) from publish_error
        fields = {"reason": describe(reason), "attempts": attempts, "dead_letter_offset": delivery.offset}
        log.error("consume.dead_lettered", **fields, **where(raw))


async def settle(raws: Sequence[Raw], done: set[int], offsets: OffsetPort) -> dict[str, int]:
    """Commits and seeks back as the module says (``done``: indexes into ``raws``); returns the
    partitions sought back, for the log."""
    commits, rewinds = progress(raws, done)
    if commits:
        try:
            await offsets.commit(commits)
        except Exception as exc:  # a rebalance took the partition: its new owner redelivers, deduplicated
            log.warning("consume.commit_failed", error=describe(exc), offsets=named(commits))
    for partition, offset in rewinds.items():
        try:
            offsets.seek(partition, offset)
        except Exception as exc:  # revoked meanwhile: the new owner starts from the committed offset
            log.warning("consume.rewind_failed", error=describe(exc), partition=partition.partition, offset=offset)
    return named(rewinds)


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


def where(raw: Raw) -> dict[str, Any]:
    return {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset}


def named(offsets: dict[TopicPartition, int]) -> dict[str, int]:
    return {f"{partition.topic}[{partition.partition}]": offset for partition, offset in offsets.items()}
