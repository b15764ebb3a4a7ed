"""Read topics from "now" without a consumer group: for the smoke check, tests and tools.

A ``TopicWatch`` assigns itself every partition of its topics at their current end, so it sees only
records produced after it started and never commits or takes records from a service's group.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging.broker import aiokafka_options
from shared.settings import KafkaSettings

FETCH_TIMEOUT_MS = 100


@dataclass(frozen=True)
class Found:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


def body_of(found: Found) -> dict[str, Any]:
    body = json.loads(found.value)
    if not isinstance(body, dict):
        raise ValueError(f"{found.topic}@{found.offset} is not a JSON object")
    return body


def _found(record: ConsumerRecord[bytes, bytes]) -> Found:
    headers = {name: value.decode(errors="replace") for name, value in record.headers or ()}
    return Found(record.topic, record.partition, record.offset, record.key, record.value or b"", headers)


class TopicWatch:
    def __init__(self, kafka: KafkaSettings, topics: Iterable[str]) -> None:
        self._topics = tuple(topics)
        self._options = aiokafka_options(kafka)
        self._consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
        self.seen: list[Found] = []

    async def __aenter__(self) -> Self:
        try:
            await self._consumer.start()
            await self._assign_at_end()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def _assign_at_end(self) -> None:
        partitions = await self._partitions()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self._consumer.position(partition)  # pins "now" before anything is sent

    async def _partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            described = await admin.describe_topics(list(self._topics))
        finally:
            await admin.close()
        partitions: list[TopicPartition] = []
        for topic in described:
            if topic["error_code"] != 0 or not topic["partitions"]:
                raise LookupError(f"topic {topic['topic']} does not exist (the devstack creates topics)")
            numbers = sorted(partition["partition"] for partition in topic["partitions"])
            partitions += [TopicPartition(topic["topic"], number) for number in numbers]
        return partitions

    async def poll(self) -> list[Found]:
        """Records that arrived since the last poll (also appended to ``seen``)."""
        batches = await self._consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
        fresh = [_found(record) for records in batches.values() for record in records]
        self.seen += fresh
        return fresh

    async def wait_for(self, topic: str, matches: Callable[[dict[str, Any]], bool]) -> Found:
        """The first JSON record on ``topic`` whose body ``matches`` (bound it with ``asyncio.timeout``)."""

        def match(found: Found) -> bool:
            if found.topic != topic:
                return False
            try:
                return matches(body_of(found))
            except ValueError:  # not a JSON object: not the record we wait for
                return False

        for found in self.seen:
            if match(found):
                return found
        while True:
            for found in await self.poll():
                if match(found):
                    return found

    async def drain(self, settle: float = 1.0) -> list[Found]:
        """Polls until nothing new arrived for ``settle`` seconds; returns everything seen so far."""
        quiet_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - quiet_since < settle:
            if await self.poll():
                quiet_since = asyncio.get_running_loop().time()
        return list(self.seen)
