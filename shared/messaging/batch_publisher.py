"""The outbox relays' producer: a round's records as one Kafka record batch per partition, in flight together.

Awaiting the broker's acknowledgement of each record before sending the next costs a broker round trip per
record (803 records/s on this machine, and far less when the event loop is busy). Sending every record of
a round with ``send()`` and awaiting them all afterwards would be fast but could break the order: aiokafka
splits a partition's records into several batches, and if an earlier batch fails (a partition without a
leader for longer than ``request_timeout_ms``) a later one can still succeed, so a record would overtake
the one before it. Here a round's records of one partition go into one record batch (one Kafka append:
all of it or nothing), further batches of that partition only after the previous one was acknowledged,
and the partitions of a round are sent concurrently. So, per partition, the records that were published
are always a prefix of those given; the relay marks the round's prefix before its first failure.

Same client settings as the services' broker (`shared.messaging.broker`): idempotent producer, acks=all.
After a round with a failure the producer is closed and the next round starts a new one, so that no
producer stays in a failed state (an idempotent producer's sequence error is fatal to it).
Keys are partitioned with aiokafka's default partitioner (Kafka's murmur2), the one the broker uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from shared.messaging.broker import aiokafka_options
from shared.messaging.outbox import Delivery, Outgoing, PublishResult
from shared.settings import KafkaSettings

#: Largest record batch built (the broker's default message.max.bytes is 1 MiB).
MAX_BATCH_BYTES = 512 * 1024


class EarlierRecordFailedError(RuntimeError):
    """Not sent: an earlier record of the same partition failed, and this one must not overtake it."""


@dataclass(frozen=True)
class _Lane:
    topic: str
    partition: int
    indexes: list[int]


class KafkaBatchPublisher:
    """`shared.messaging.outbox.BatchPublish` over its own aiokafka producer, started on first use."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str, max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self._options: dict[str, Any] = {
            **aiokafka_options(kafka),
            "client_id": client_id,
            "enable_idempotence": True,
            "acks": "all",
            "max_batch_size": max_batch_bytes,
        }
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    async def publish(self, messages: Sequence[Outgoing]) -> list[PublishResult]:
        """One result per message, in order: its delivery, or the exception that kept it from the broker."""
        producer = await self._started()
        results: list[PublishResult] = [EarlierRecordFailedError("not sent")] * len(messages)
        lanes = await self._lanes(producer, messages)
        await asyncio.gather(*(self._send_lane(producer, lane, messages, results) for lane in lanes))
        if any(isinstance(result, Exception) for result in results):
            await self.close()  # the next round starts a new producer: none stays in a failed state
        return results

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._options)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _lanes(self, producer: AIOKafkaProducer, messages: Sequence[Outgoing]) -> list[_Lane]:
        """The messages' indexes grouped by topic and partition, in order."""
        partitions: dict[str, list[int]] = {}
        lanes: dict[tuple[str, int], _Lane] = {}
        chosen: dict[tuple[str, bytes], int] = {}  # a round's records share few keys: murmur2 once per key
        for index, message in enumerate(messages):
            if message.topic not in partitions:
                partitions[message.topic] = sorted(await producer.partitions_for(message.topic))
            partition = chosen.get((message.topic, message.key))
            if partition is None:
                known = partitions[message.topic]
                partition = chosen[message.topic, message.key] = self._partitioner(message.key, known, known)
            lane = lanes.setdefault((message.topic, partition), _Lane(message.topic, partition, []))
            lane.indexes.append(index)
        return list(lanes.values())

    async def _send_lane(
        self, producer: AIOKafkaProducer, lane: _Lane, messages: Sequence[Outgoing], results: list[PublishResult]
    ) -> None:
        """One batch after the other; at the first failure the rest of the lane is not sent."""
        pending = list(lane.indexes)
        while pending:
            batch = producer.create_batch()
            taken = 0
            for index in pending:
                message = messages[index]
                headers = [(name, value.encode()) for name, value in message.headers.items()]
                if batch.append(key=message.key, value=message.value, timestamp=None, headers=headers) is None:
                    break
                taken += 1
            if taken == 0:  # aiokafka takes any first record; kept should that change
                error = MessageSizeTooLargeError(f"record of {len(messages[pending[0]].value)} bytes")
                _fail(results, pending[:1], error)
                _fail(results, pending[1:], EarlierRecordFailedError(f"{type(error).__name__}: {error}"))
                return
            batch.close()
            try:
                metadata = await (await producer.send_batch(batch, lane.topic, partition=lane.partition))
            except Exception as exc:  # the lane stops here: what follows must not overtake it
                _fail(results, pending[:taken], exc)
                _fail(results, pending[taken:], EarlierRecordFailedError(f"{type(exc).__name__}: {exc}"))
                return
            for position, index in enumerate(pending[:taken]):
                results[index] = Delivery(lane.topic, lane.partition, metadata.offset + position)
            pending = pending[taken:]


def _fail(results: list[PublishResult], indexes: Sequence[int], error: Exception) -> None:
    for index in indexes:
        results[index] = error
