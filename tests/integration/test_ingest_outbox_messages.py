"""ingest's outbox against the real test PostgreSQL: the relay publishes what ingest committed from memory,
and rebuilds a message it does not hold from the rows the outbox row refers to, byte for byte.

Since migration 0009_ingestpg the outbox row holds no payload: a RecordIngested is its ledger row around its
canonical events, in the record's order. A restarted ingest (nothing in memory) republishes from those rows;
the bytes must be those it would have published from memory, or safety_rules would see another record.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import orjson
import pytest
import pytest_asyncio
from harness import scalar
from safety_rules_service.live_rig import create_database, drop_database
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.adapters.outbox_messages import read_stored
from services.ingest.adapters.store import Committed, IngestStore
from services.ingest.adapters.tables import Outbox
from services.ingest.batch import Arrival, build_batch
from services.ingest.domain import ParserConfig
from services.ingest.handlers import parse_units
from services.ingest.units import hl7_units
from shared.db import create_session_factory
from shared.events import RecordIngested
from shared.messaging.outbox import Delivery, OutboxRelay, Outgoing, PublishResult, RecentMessages, driver_transaction
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

STUDY = "ANAKINRA-AD"
CONFIG = ParserConfig(frozenset({STUDY}), STUDY)
#: Four results of one ORU (ANC, ALT, AST, platelets): four canonical events in this order.
RESULTS = (
    "OBX|1|NM|751-8^Neutrophils^LN||0.8|10*9/L|1.8-8.0|L|||F",
    "OBX|2|NM|1742-6^ALT^LN||250|U/L|7-56|H|||F",
    "OBX|3|NM|1920-8^AST^LN||41|U/L|10-40|H|||F",
    "OBX|4|NM|777-3^Platelets^LN||90|10*9/L|150-400|L|||F",
)


def oru(control: str, processing: str = "P") -> bytes:
    segments = [
        f"MSH|^~\\&|LIS|OUTBOX-LAB|TRIALWATCH|NIAID|20260302081500||ORU^R01^ORU_R01|{control}|{processing}|2.5.1",
        f"PID|1||AD-001^^^{STUDY}^SUBJ",
        f"OBR|1|PL-{control}|FO-{control}^LIS|57021-8^CBC^LN|||20260302080000",
        *RESULTS,
    ]
    return ("\r".join(segments) + "\r").encode()


@pytest_asyncio.fixture(loop_scope="session")
async def db(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A fresh database: the relay claims every pending row of ingest's outbox."""
    name = f"it_ingest_outbox_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack_settings, name)
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
        await asyncio.to_thread(drop_database, stack_settings, name)


def alembic(engine: AsyncEngine, *command: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *command]
    done = subprocess.run(
        argv, env={**os.environ, "DATABASE_URL": url}, cwd=REPO_ROOT, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


async def write(store: IngestStore, *messages: bytes) -> None:
    now = datetime.now(UTC)
    units = [unit for n, data in enumerate(messages) for unit in hl7_units(data, f"outbox-{n}")]
    batch, _ = build_batch(parse_units(units, "hl7v2", CONFIG, now), Arrival("mllp", "hl7v2", now, STUDY), set())
    async with store.transaction() as writer:
        await writer.write(batch)


class RecordingPublisher:
    """Delivers every record and keeps what it was given (what reaches Kafka is the batch publisher's own
    tests'; here: which bytes the relay hands over)."""

    def __init__(self) -> None:
        self.messages: list[Outgoing] = []

    async def publish(self, messages: Sequence[Outgoing]) -> list[PublishResult]:
        self.messages += messages
        return [Delivery(message.topic, 0, offset) for offset, message in enumerate(messages)]

    async def close(self) -> None:
        pass


async def test_a_message_rebuilt_from_its_rows_is_byte_for_byte_the_one_ingest_committed(db: AsyncEngine) -> None:
    committed: list[tuple[str, Outgoing]] = []
    store = IngestStore(create_session_factory(db), on_commit=committed.extend)
    run = "ORDER"  # fixed (a new database each test): its event ids, derived from the key, are out of order
    await write(store, oru(f"{run}-1"), oru(f"{run}-2"), oru(f"{run}-T", processing="T"))
    assert len(committed) == 2, "one message per production record (MSH-11 T is acknowledged, not published)"
    record = RecordIngested.model_validate_json(committed[0][1].value)
    ids = [event.event_id for event in record.events]
    assert len(ids) == len(RESULTS) and ids != sorted(ids), "the record's order is not its event ids' order"
    stored = "SELECT count(*) FROM ingest.outbox WHERE payload IS NULL AND source_key LIKE :key"
    assert await scalar(db, stored, key=f"HL7:OUTBOX-LAB:{run}-%") == 2, "the outbox rows hold no copy"
    async with driver_transaction(create_session_factory(db)) as driver:
        rows = await driver.fetch("SELECT id, event_id FROM ingest.outbox WHERE source_key LIKE $1", f"%{run}-%")
        rebuilt = await read_stored(driver, [row["id"] for row in rows])
    by_event = {row["event_id"]: rebuilt[row["id"]] for row in rows}
    for event_id, message in committed:
        assert by_event[event_id] == message
        assert list(by_event[event_id].headers) == list(message.headers), "the headers in the same order"


async def test_a_row_written_before_0009_is_published_from_its_own_payload(db: AsyncEngine) -> None:
    event_id = str(uuid.uuid4())
    payload = orjson.dumps({"record_id": event_id, "events": []}).decode()
    headers = {"kind": "record.ingested", "event_id": event_id}
    async with driver_transaction(create_session_factory(db)) as driver:
        row_id = await driver.fetchval(
            "INSERT INTO ingest.outbox (event_id, topic, key, headers, payload) VALUES ($1, 'it.t', 'S', $2, $3)"
            " RETURNING id",
            event_id,
            orjson.dumps(headers).decode(),
            payload,
        )
        rebuilt = await read_stored(driver, [row_id])
        await driver.execute("UPDATE ingest.outbox SET published_at = now() WHERE id = $1", row_id)
    assert rebuilt == {row_id: Outgoing("it.t", b"S", payload.encode(), headers)}


async def test_the_relay_publishes_from_memory_and_rebuilds_only_what_it_does_not_hold(db: AsyncEngine) -> None:
    sessions = create_session_factory(db)
    async with driver_transaction(sessions) as driver:  # what the other tests left pending
        await driver.execute("UPDATE ingest.outbox SET published_at = now() WHERE published_at IS NULL")
    committed: list[tuple[str, Outgoing]] = []
    store = IngestStore(sessions, on_commit=committed.extend)
    run = uuid.uuid4().hex[:8]
    for n in range(3):
        await write(store, oru(f"{run}-{n}"))
    recent = RecentMessages()

    def held(messages: Committed) -> None:
        recent.add(messages)

    held(committed[1:])  # the first as after a restart: only in the database
    publisher = RecordingPublisher()
    relay = OutboxRelay(sessions, Outbox, publisher, recent=recent, read_stored=read_stored)
    assert await relay.publish_pending() == 3
    assert publisher.messages == [message for _, message in committed], "commit order, the same bytes"
    assert relay.read_back == 1, "only the message not in memory was read from the database"
    assert len(recent) == 0, "published messages leave memory once marked"
    pending = "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"
    assert await scalar(db, pending) == 0
    assert await relay.publish_pending() == 0


async def test_a_downgrade_gives_each_row_its_message_back_as_a_payload(db: AsyncEngine) -> None:
    committed: list[tuple[str, Outgoing]] = []
    await write(IngestStore(create_session_factory(db), on_commit=committed.extend), oru("DOWN-1"), oru("DOWN-2"))
    await asyncio.to_thread(alembic, db, "downgrade", "0008")
    try:
        async with db.connect() as connection:
            rows = dict((await connection.exec_driver_sql("SELECT event_id, payload::text FROM ingest.outbox")).all())
    finally:
        await asyncio.to_thread(alembic, db, "upgrade", "head")
    for event_id, message in committed:  # the same message as JSON (the arrival time in PostgreSQL's notation)
        assert RecordIngested.model_validate_json(rows[event_id]) == RecordIngested.model_validate_json(message.value)
