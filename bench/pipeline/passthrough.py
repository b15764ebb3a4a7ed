"""The ceiling: consume → produce through the same broker, with the services' client settings, no work.

Same payloads (the RecordIngested messages the run put on trialwatch.events.v1, with their keys, so
the same partitioning), same client settings as `shared.messaging.broker` (idempotent producer,
acks=all, no auto-commit), offsets committed once per fetched batch after every send of the batch
was acknowledged. Two variants:
- ``pipelined``: the batch's sends are in flight together, then awaited (the ceiling: the services'
  outbox relays also have a round in flight together, as one record batch per partition);
- ``sequential``: each send awaited before the next (what the outbox relays did before; for comparison).
Topics are created for the run with the partition count of trialwatch.events.v1 and deleted after.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

FETCH_MAX_RECORDS = 500
IDLE_TIMEOUT_S = 30.0

Payload = tuple[bytes | None, bytes]  # (key, value)


@dataclass(frozen=True)
class PassthroughResult:
    records: int
    seconds: float
    mode: str

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def _create(options: dict[str, Any], partitions: int) -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    names = (f"bench.passthrough.in.{run}", f"bench.passthrough.out.{run}")
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()
    return names


async def _delete(options: dict[str, Any], names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def _preload(producer: AIOKafkaProducer, topic: str, payloads: Sequence[Payload]) -> None:
    futures = [await producer.send(topic, value, key=key) for key, value in payloads]
    await asyncio.gather(*futures)


async def _relay(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, target: str, total: int, mode: str
) -> tuple[int, float]:
    """Moves ``total`` records; returns how many and the seconds from the first fetched batch (the
    group join is not part of the steady state) to the last commit."""
    moved, started = 0, 0.0
    while moved < total:
        batches = await asyncio.wait_for(
            consumer.getmany(timeout_ms=1000, max_records=FETCH_MAX_RECORDS), IDLE_TIMEOUT_S
        )
        records = [record for part in batches.values() for record in part]
        if records and not started:
            started = time.perf_counter()
        if mode == "pipelined":
            futures = [await producer.send(target, r.value, key=r.key) for r in records]
            await asyncio.gather(*futures)
        else:
            for r in records:
                await producer.send_and_wait(target, r.value, key=r.key)
        if records:
            await consumer.commit()
        moved += len(records)
    return moved, time.perf_counter() - started


async def passthrough(
    options: dict[str, Any], payloads: Sequence[Payload], *, partitions: int, mode: str = "pipelined"
) -> PassthroughResult:
    """Moves ``payloads`` from a fresh input topic to a fresh output topic; times the move only."""
    source, target = await _create(options, partitions)
    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **options)
    consumer = AIOKafkaConsumer(
        source,
        group_id=f"{source}.group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
    await producer.start()
    try:
        await _preload(producer, source, payloads)
        await consumer.start()
        moved, seconds = await _relay(consumer, producer, target, len(payloads), mode)
    finally:
        await consumer.stop()
        await producer.stop()
        await _delete(options, (source, target))
    return PassthroughResult(moved, seconds, mode)
