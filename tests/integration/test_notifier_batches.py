"""The notifier's batch subscribers against the real broker and database: a poll of many ingested records
with one DSMB RESUME among them is applied once, a redelivered poll changes nothing, and a poison record
in a poll is dead-lettered with its reason while the others are applied.

The records are published while the notifier is stopped, so that its first poll after the start holds
them together (the events subscriber takes up to 2,000 a poll). Expected outcomes come from the routing's
pause semantics (services/notifier/README.md, Decisions; a HALT with PAUSE_STUDY pauses the study, the
DSMB RESUME for its rule lifts it and resolves the HALT alert), not from the code under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from notifier.live_rig import NotifierRig, isolated_rig
from notifier.mail_rig import Recorder, SmtpServer
from notifier.routing_docs import routing_document
from notifier.signal_factory import STUDY, anc3, dsmb_resume, halt, lab_record
from safety_rules_service.live_rig import free_port

from shared.messaging.broker import aiokafka_options
from shared.messaging.topic_watch import Found, TopicWatch
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

ORDINARY = 1500  # ingested records without a decision around the RESUME: one poll's worth
POISON_DECISION = b'{"kind":"record.ingested","events":[{"kind":"dsmb.decision","decision":"RESUME"}]}'
POISON_SIGNAL = b'{"signal_id": "cut off in the middle'

OffsetsOf: TypeAlias = tuple[AIOKafkaConsumer, list[TopicPartition]]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), Recorder())
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    request: pytest.FixtureRequest, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer
) -> AsyncIterator[NotifierRig]:
    cfg: Settings = request.getfixturevalue("stack_settings")
    async with isolated_rig(cfg, kafka_admin_client, tmp_path, routing=routing_document(), smtp_port=smtp.port) as made:
        yield made


async def publish_all(rig: NotifierRig, topic: str, values: Sequence[bytes]) -> None:
    """All sent before any is awaited (the producer batches them), in order, keyed by the study."""
    producer = AIOKafkaProducer(enable_idempotence=True, linger_ms=20, **aiokafka_options(rig.kafka))
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=STUDY.encode()) for value in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


@asynccontextmanager
async def group_offsets(rig: NotifierRig, topic: str, group: str) -> AsyncIterator[OffsetsOf]:
    """A consumer of ``group`` that never joins it, and every partition of ``topic``."""
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **aiokafka_options(rig.kafka))
    await consumer.start()
    try:
        yield consumer, [TopicPartition(topic, n) for n in range(rig.partitions(topic))]
    finally:
        await consumer.stop()


async def committed_everything(rig: NotifierRig, topic: str, group: str) -> bool:
    """The group's committed offsets have reached the end of every partition of ``topic``."""
    async with group_offsets(rig, topic, group) as (consumer, partitions):
        ends = await consumer.end_offsets(partitions)
        committed = [await consumer.committed(tp) or 0 for tp in partitions]
        return committed == [ends[tp] for tp in partitions]


async def rewind_group(rig: NotifierRig, topic: str, group: str) -> None:
    """Commits offset 0 for every partition (the group has no member: the notifier is stopped)."""
    async with group_offsets(rig, topic, group) as (consumer, partitions):
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))


async def paused_then_stopped(rig: NotifierRig) -> str:
    """Starts the notifier, sends a HALT (H-NEUT, PAUSE_STUDY), waits until its pause and alert are
    committed and stops the notifier; returns the HALT alert's id."""
    rig.start()
    pause = halt("H-NEUT")
    await rig.send_signals([pause])
    await rig.eventually(
        lambda: _count(rig, "SELECT count(*) FROM notifier.pause_event WHERE source_id = :s", s=pause.signal_id),
        "the HALT opens a pause",
    )
    rig.stop_all()
    alert_id: str = await rig.scalar("SELECT alert_id FROM notifier.alert WHERE signal_id = :s", s=pause.signal_id)
    return alert_id


async def _count(rig: NotifierRig, sql: str, **params: object) -> bool:
    return bool(await rig.scalar(sql, **params))


async def _none(rig: NotifierRig, sql: str) -> bool:
    return not await rig.scalar(sql)


async def snapshot(rig: NotifierRig) -> dict[str, object]:
    """Everything a decision or a signal can change."""
    tables = ("alert", "audit_log", "outbox", "delivery", "pause_event", "processed_event", "timer")
    counts = {table: await rig.scalar(f"SELECT count(*) FROM notifier.{table}") for table in tables}
    alerts = await rig.rows("SELECT alert_id, state, updated_at, resolution FROM notifier.alert ORDER BY alert_id")
    return counts | {"alerts": [tuple(row) for row in alerts]}


async def test_a_dsmb_resume_among_many_records_is_applied_once_and_a_redelivered_poll_changes_nothing(
    rig: NotifierRig,
) -> None:
    topics, group = rig.topics, f"{rig.prefix}notifier-decisions"
    halt_alert = await paused_then_stopped(rig)

    resume = dsmb_resume("H-NEUT", datetime.now(UTC))
    records = [lab_record(i).model_dump_json().encode() for i in range(ORDINARY)]
    records.insert(ORDINARY // 2, resume.model_dump_json().encode())
    await publish_all(rig, topics.events, records)
    rig.start()
    await rig.eventually(lambda: committed_everything(rig, topics.events, group), "every record committed")

    state, resolution = (
        await rig.rows("SELECT state, resolution FROM notifier.alert WHERE alert_id = :a", a=halt_alert)
    )[0]
    assert state == "resolved"
    assert resolution == f"DSMB RESUME ({resume.events[0].source})"
    actions = dict(await rig.rows("SELECT action, count(*) FROM notifier.audit_log GROUP BY action"))
    assert actions["study.resumed"] == 1 and actions["alert.resolved"] == 1
    decided = await rig.rows("SELECT event_id FROM notifier.processed_event WHERE consumer_group = :g", g=group)
    assert [row[0] for row in decided] == [resume.record_id]  # the 1,500 others never reached the database
    log = rig.processes[-1].log()
    assert log.count('"dsmb.decision"') == 1 and '"pauses_lifted": 1' in log
    assert rig.audit_verify().returncode == 0

    await rig.eventually(
        lambda: _none(rig, "SELECT count(*) FROM notifier.delivery WHERE status = 'PENDING'"), "the HALT mailed"
    )
    before = await snapshot(rig)
    rig.stop_all()
    await rewind_group(rig, topics.events, group)
    await publish_all(rig, topics.events, [resume.model_dump_json().encode()])  # and a duplicate of it
    rig.start()
    await rig.eventually(lambda: committed_everything(rig, topics.events, group), "the redelivery committed")
    assert await snapshot(rig) == before
    log = rig.processes[-1].log()
    assert log.count('"dsmb.decision"') == 2 and '"pauses_lifted": 1' not in log  # seen twice, applied never


async def test_a_poison_record_in_a_poll_is_dead_lettered_with_its_reason_and_the_others_are_applied(
    rig: NotifierRig,
) -> None:
    topics = rig.topics
    halt_alert = await paused_then_stopped(rig)

    resume = dsmb_resume("H-NEUT", datetime.now(UTC))
    records = [lab_record(i).model_dump_json().encode() for i in range(200)]
    records[100:100] = [POISON_DECISION, resume.model_dump_json().encode()]
    urgent = [anc3("AD-001"), anc3("AD-002")]
    signals = [urgent[0].model_dump_json().encode(), POISON_SIGNAL, urgent[1].model_dump_json().encode()]
    async with TopicWatch(rig.kafka, [topics.dead_letter]) as watch:
        await publish_all(rig, topics.events, records)
        await publish_all(rig, topics.signals, signals)
        rig.start()
        for topic, group in ((topics.events, "notifier-decisions"), (topics.signals, "notifier")):
            await rig.eventually(lambda t=topic, g=group: committed_everything(rig, t, f"{rig.prefix}{g}"), topic)
        dead = await asyncio.wait_for(_dead_letters(watch, 2), 30)

    by_topic = {found.headers["x-original-topic"]: found for found in dead}
    assert set(by_topic) == {topics.events, topics.signals}
    decision, signal = by_topic[topics.events], by_topic[topics.signals]
    assert decision.value == POISON_DECISION and signal.value == POISON_SIGNAL
    for found, group in ((decision, "notifier-decisions"), (signal, "notifier")):
        assert found.headers["x-reason"].startswith("ValidationError"), found.headers
        assert found.headers["x-exception"] == "ValidationError" and found.headers["x-attempts"] == "1"
        assert found.headers["x-consumer-group"] == f"{rig.prefix}{group}"
    assert decision.headers["x-original-offset"] == "100" and signal.headers["x-original-offset"] == "2"
    assert await rig.scalar("SELECT state FROM notifier.alert WHERE alert_id = :a", a=halt_alert) == "resolved"
    opened = await rig.scalar(
        "SELECT count(*) FROM notifier.alert WHERE signal_id = ANY(:ids)", ids=[s.signal_id for s in urgent]
    )
    assert opened == 2


async def _dead_letters(watch: TopicWatch, count: int) -> list[Found]:
    while len(watch.seen) < count:
        await watch.poll()
    return list(watch.seen)
