"""The real broker keeps committed offsets: a restarted consumer resumes exactly after the commit."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

NewTopicFactory = Callable[..., Awaitable[str]]  # the `new_topic` fixture (conftest.py)

pytestmark = pytest.mark.integration

RECEIVE_TIMEOUT = 30.0


async def produce(bootstrap: str, topic: str, count: int, partitions: int) -> list[int]:
    """Idempotent producer (acks=all); returns the offsets the broker assigned."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k%d" % i, partition=i % partitions)
            for i in range(count)
        ]
    finally:
        await producer.stop()
    return [meta.offset for meta in sent]


def manual_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def take(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [await asyncio.wait_for(consumer.getone(), RECEIVE_TIMEOUT) for _ in range(count)]


async def test_resume_after_manual_commit_single_partition(
    kafka_bootstrap: str, new_topic: NewTopicFactory, group_id: str, kafka_admin_client: AIOKafkaAdminClient
) -> None:
    total, committed_after, uncommitted_extra = 20, 7, 3
    topic = await new_topic(partitions=1)
    assert await produce(kafka_bootstrap, topic, total, 1) == list(range(total))
    tp = TopicPartition(topic, 0)

    first = manual_consumer(kafka_bootstrap, topic, group_id)
    await first.start()
    try:
        head = await take(first, committed_after)
        await first.commit({tp: head[-1].offset + 1})
        assert await first.committed(tp) == committed_after
        await take(first, uncommitted_extra)  # read but never committed: must come again
    finally:
        await first.stop()

    offsets = await kafka_admin_client.list_consumer_group_offsets(group_id)
    assert offsets[tp].offset == committed_after

    second = manual_consumer(kafka_bootstrap, topic, group_id)
    await second.start()
    try:
        rest = await take(second, total - committed_after)
        assert [r.offset for r in rest] == list(range(committed_after, total))
        assert [r.value for r in rest] == [f"m{i}".encode() for i in range(committed_after, total)]
        await second.commit()
        assert await second.committed(tp) == total
    finally:
        await second.stop()
    assert (await kafka_admin_client.list_consumer_group_offsets(group_id))[tp].offset == total


async def test_resume_per_partition_no_loss_no_duplicates(
    kafka_bootstrap: str, new_topic: NewTopicFactory, group_id: str, kafka_admin_client: AIOKafkaAdminClient
) -> None:
    total, partitions, committed_after = 30, 3, 11
    topic = await new_topic(partitions=partitions)
    await produce(kafka_bootstrap, topic, total, partitions)

    first = manual_consumer(kafka_bootstrap, topic, group_id)
    await first.start()
    try:
        head = await take(first, committed_after)
        next_offset: dict[TopicPartition, int] = {}
        for rec in head:
            next_offset[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        await first.commit(next_offset)
    finally:
        await first.stop()

    stored = await kafka_admin_client.list_consumer_group_offsets(group_id)
    assert {tp: meta.offset for tp, meta in stored.items()} == next_offset

    second = manual_consumer(kafka_bootstrap, topic, group_id)
    await second.start()
    try:
        rest = await take(second, total - committed_after)
        extra = await second.getmany(timeout_ms=1000)
    finally:
        await second.stop()
    assert not any(extra.values()), "more records than were left uncommitted"

    first_seen: dict[int, int] = defaultdict(lambda: 1 << 62)
    for rec in rest:
        first_seen[rec.partition] = min(first_seen[rec.partition], rec.offset)
    for partition, offset in first_seen.items():
        assert offset == next_offset.get(TopicPartition(topic, partition), 0)
    values = sorted(r.value for r in [*head, *rest] if r.value is not None)
    assert values == sorted(f"m{i}".encode() for i in range(total))
