"""What the database and the broker say about a run: reset, progress, drain, latencies, the events.

Times are the database's and the broker's (one machine, one clock):
- accepted: ``ingest.raw_input.received_at``, the ingest transaction that accepted the record;
- persisted: ``safety_rules.signal.recorded_at``, the safety_rules transaction that recorded the signal
  (its start: a lower bound, the commit follows within the same record's processing);
- published: the Kafka timestamp of the signal on trialwatch.signals.v1, set by the outbox relay after
  the commit (an upper bound of "persisted").

Where a record's time goes (`record_stages`), from the same clocks: ``raw_input.received_at`` (accepted,
before parsing), ``ingest.outbox.created_at`` (ingest's transaction began: after parsing),
``ingest.outbox.published_at`` (the relay's round that published it began), the Kafka timestamp of the
RecordIngested (the relay built its record batch) and ``safety_rules.processed_event.processed_at`` (the
safety_rules transaction that evaluated it began: everything before is waiting for, or in, a poll).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.topics import ALL_TOPICS, EVENTS, SIGNALS

# smtp_sink too: the same stream sends the same Message-IDs, which a kept table would count as repeats
SCHEMAS = ("ingest", "safety_rules", "notifier", "smtp_sink")

SIGNAL_LATENCY = """
WITH evidence AS (
  SELECT s.signal_id, s.recorded_at, e.source
  FROM safety_rules.signal s, json_array_elements_text(s.payload -> 'evidence') AS e(source)
  WHERE s.rule_id <> 'CLOCK-BREACH'
)
SELECT evidence.signal_id, evidence.recorded_at, max(r.received_at) AS accepted
FROM evidence
JOIN ingest.canonical_event c ON c.payload ->> 'source' = evidence.source
JOIN ingest.raw_input r ON r.source_key = c.dedup_key
GROUP BY evidence.signal_id, evidence.recorded_at
"""
RECORD_LATENCY = """
SELECT extract(epoch FROM p.processed_at - r.received_at) * 1000
FROM safety_rules.processed_event p
JOIN ingest.outbox o ON o.event_id = p.event_id
JOIN ingest.raw_input r ON r.source_key = coalesce(o.source_key, o.payload ->> 'dedup_key')
"""

RECORD_TIMES = """
SELECT o.event_id, extract(epoch FROM r.received_at) * 1000, extract(epoch FROM o.created_at) * 1000,
       extract(epoch FROM o.published_at) * 1000, extract(epoch FROM p.processed_at) * 1000
FROM ingest.outbox o
JOIN ingest.raw_input r ON r.source_key = coalesce(o.source_key, o.payload ->> 'dedup_key')
JOIN safety_rules.processed_event p ON p.event_id = o.event_id
"""
#: (stage, from, to) over the times of `record_stages`, in path order.
STAGES = (
    ("parse_until_ingest_transaction", "accepted", "stored"),
    ("ingest_commit_until_relay_round", "stored", "claimed"),
    ("relay_round_until_produced", "claimed", "produced"),
    ("produced_until_rules_transaction", "produced", "evaluated"),
)


async def topic_partitions(options: dict[str, Any], topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, as the broker describes them."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in sorted(topic["partitions"], key=lambda part: part["partition"])
    ]


class Observer:
    def __init__(self, engine: AsyncEngine, kafka_options: dict[str, Any]) -> None:
        self.engine = engine
        self.options = kafka_options

    async def scalar(self, sql: str) -> int:
        async with self.engine.connect() as connection:
            return int((await connection.execute(text(sql))).scalar_one())

    async def rows(self, sql: str) -> Sequence[Any]:
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql))).all()

    async def reset(self) -> None:
        """Empty pipeline: TrialWatch topics emptied, service tables truncated (services stopped)."""
        admin = AIOKafkaAdminClient(**self.options)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.options)
        await admin.start()
        await consumer.start()
        try:
            partitions = await topic_partitions(self.options, ALL_TOPICS)
            ends = await consumer.end_offsets(partitions)
            await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end > 0})
        finally:
            await consumer.stop()
            await admin.close()
        tables = await self.rows(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            f"AND table_schema IN ({', '.join(repr(schema) for schema in SCHEMAS)})"
        )
        names = ", ".join(f'"{schema}"."{table}"' for schema, table in tables)
        async with self.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    async def published(self) -> int:
        return await self.scalar(f"SELECT count(*) FROM ingest.outbox WHERE topic = '{EVENTS}'")

    async def processed(self) -> int:
        return await self.scalar("SELECT count(*) FROM safety_rules.processed_event")

    async def pending(self) -> int:
        return await self.scalar(
            "SELECT (SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL)"
            " + (SELECT count(*) FROM safety_rules.outbox WHERE published_at IS NULL)"
        )

    async def progress(self) -> tuple[int, bool]:
        """(records safety_rules processed, whether every published record is processed and both
        outboxes are empty), in one snapshot."""
        sql = (
            "SELECT (SELECT count(*) FROM safety_rules.processed_event),"
            f" (SELECT count(*) FROM ingest.outbox WHERE topic = '{EVENTS}'),"
            " (SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL)"
            " + (SELECT count(*) FROM safety_rules.outbox WHERE published_at IS NULL)"
        )
        processed, published, pending = (await self.rows(sql))[0]
        return int(processed), processed >= published and pending == 0

    async def signal_latencies(self) -> tuple[list[float], list[float]]:
        """Per signal (CLOCK-BREACH aside): (accepted → persisted ms, accepted → published ms)."""
        rows = await self.rows(SIGNAL_LATENCY)
        published = await self._publish_times()
        persisted_ms, published_ms = [], []
        for signal_id, recorded_at, accepted in rows:
            persisted_ms.append((recorded_at - accepted).total_seconds() * 1000)
            if signal_id in published:
                published_ms.append(published[signal_id] - accepted.timestamp() * 1000)
        return persisted_ms, published_ms

    async def record_latencies(self) -> list[float]:
        """Per processed record: accepted → safety_rules transaction start (ms)."""
        return [float(value) for (value,) in await self.rows(RECORD_LATENCY)]

    async def record_stages(self) -> dict[str, list[float]]:
        """Per processed record, the milliseconds of each of `STAGES` (module docstring)."""
        produced = {
            dict(record.headers or ()).get("event_id", b"").decode(): float(record.timestamp)
            for record in await self.read_topic(EVENTS)
        }
        stages: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
        for event_id, accepted, stored, claimed, evaluated in await self.rows(RECORD_TIMES):
            if event_id not in produced or claimed is None:
                continue
            times = {"accepted": accepted, "stored": stored, "claimed": claimed, "evaluated": evaluated}
            times = {name: float(value) for name, value in times.items()} | {"produced": produced[event_id]}
            for name, start, end in STAGES:
                stages[name].append(times[end] - times[start])
        return stages

    async def _publish_times(self) -> dict[str, float]:
        times: dict[str, float] = {}
        for record in await self.read_topic(SIGNALS):
            signal_id = dict(record.headers or ()).get("event_id", b"").decode()
            times.setdefault(signal_id, float(record.timestamp))
        return times

    async def read_topic(self, topic: str) -> list[Any]:
        """Every record of ``topic`` from its log start to its current end."""
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.options)
        await consumer.start()
        records: list[Any] = []
        try:
            partitions = await topic_partitions(self.options, (topic,))
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                records += [record for part in batch.values() for record in part]
        finally:
            await consumer.stop()
        return records
