"""A fresh trial on a stack: every TrialWatch topic emptied and every service table truncated, so that the
simulated study starts with no participant, no halting count and no alert. Only with the services stopped
(they keep no state outside PostgreSQL and Kafka, and their consumer groups resume at the topics' ends)."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.messaging.broker import aiokafka_options
from shared.messaging.topics import ALL_TOPICS
from shared.settings import DatabaseSettings, KafkaSettings

SCHEMAS = ("ingest", "safety_rules", "notifier", "smtp_sink")
TABLES = (
    "SELECT table_schema, table_name FROM information_schema.tables "
    "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE'"
)


async def empty_topics(kafka: KafkaSettings) -> None:
    options = aiokafka_options(kafka)
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **options)
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics(list(ALL_TOPICS))
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
        ends = await consumer.end_offsets(partitions)
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end > 0}, timeout_ms=30000)
    finally:
        await consumer.stop()
        await admin.close()


async def truncate_tables(engine: AsyncEngine) -> int:
    async with engine.begin() as connection:
        rows = (await connection.execute(text(TABLES), {"schemas": list(SCHEMAS)})).all()
        names = ", ".join(f'"{schema}"."{table}"' for schema, table in rows)
        if names:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return len(rows)


async def fresh_trial(kafka: KafkaSettings, engine: AsyncEngine) -> None:
    await empty_topics(kafka)
    await truncate_tables(engine)


async def fresh_stack(env: Mapping[str, str]) -> None:
    """`fresh_trial` on the stack whose settings (env file) are ``env``."""
    engine = create_engine(DatabaseSettings.from_mapping(env), application_name="trialwatch-fresh-trial")
    try:
        await fresh_trial(KafkaSettings.from_mapping(env), engine)
    finally:
        await engine.dispose()
