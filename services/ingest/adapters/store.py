"""ingest's SQL side: a whole batch of records in one transaction, a few statements per batch.

In one transaction: the accepted-source ledger (``raw_input``, ``ON CONFLICT DO NOTHING`` on the dedup
key, so a re-sent record is found here and published no second time), then for the records that are new
their canonical events and one outbox row each (RecordIngested, keyed by study id; the row names the
record, whose ledger row and events make the message: `services.ingest.adapters.outbox_messages`), and
the quarantine rows. The ledger insert is one ``unnest`` statement; the other rows go in with COPY. After the commit the
outbox relay is handed the new RecordIngested messages (it publishes them from memory, in commit order,
instead of reading back what was just written) and woken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.adapters.tables import SCHEMA
from services.ingest.batch import Batch, EventRow, RecordRow
from services.ingest.ports import StorageUnavailableError
from shared.messaging.outbox import RECENT_LIMIT, Outgoing, driver_transaction
from shared.messaging.topics import EVENTS

LEDGER_INSERT = """
INSERT INTO ingest.raw_input
    (source_key, format, received_at, sha256, payload, study_id, channel, origin, non_production, event_count)
SELECT key, $2, $3, sha256, payload, study_id, $4, origin, non_production, event_count
FROM unnest($1::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::int[])
    AS batch(key, sha256, payload, study_id, origin, non_production, event_count)
ON CONFLICT (source_key) DO NOTHING
RETURNING source_key
"""
EVENT_COLUMNS = EventRow._fields
OUTBOX_COLUMNS = ("event_id", "topic", "key", "headers", "source_key")
QUARANTINE_COLUMNS = ("source", "error", "sha256", "payload", "received_at", "channel", "format")
MESSAGE_KIND = "record.ingested"
#: Canonical events held by a writer before it copies them in (a file's worth is not held whole).
FLUSH_ROWS = 5_000
#: Columns added by migrations 0002 and 0009_ingestpg: selecting them fails on an older schema.
SCHEMA_PROBES = (
    "SELECT source_key, study_id, channel, origin, non_production, event_count FROM ingest.raw_input LIMIT 0",
    "SELECT channel, format FROM ingest.quarantine LIMIT 0",
    "SELECT source_key FROM ingest.outbox LIMIT 0",
    "SELECT ordinal FROM ingest.canonical_event LIMIT 0",
)
#: The database is away or going away (raised as StorageUnavailableError: nothing was stored).
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    SQLAlchemyError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


#: Written, committed messages handed to the relay: (event id, Kafka record).
Committed = Sequence[tuple[str, Outgoing]]


def outbox_headers(row: RecordRow, channel: str) -> dict[str, str]:
    """Headers of the RecordIngested outbox row (the relay copies them onto the Kafka record), in the
    order jsonb keeps its keys (shortest first), so a record published from memory and one read back from
    its row carry them in the same order."""
    return {
        "kind": MESSAGE_KIND,
        "channel": channel,
        "event_id": row.record_id,
        "content-type": "application/json",
        "schema_version": "1",
    }


class BatchWriter:
    """Writes batches inside one open transaction of the asyncpg connection (COPY and array parameters);
    ``committed`` keeps the last outbox messages written, for the relay once the transaction commits (no
    more than the relay keeps: a file's worth in one transaction must not be held in memory whole).

    The ledger insert runs at each ``write`` (it decides which records are new); the rows of the new
    records are copied in once for the transaction (``flush``, before the commit) or every ``FLUSH_ROWS``
    events: a commit group of several batches then costs one COPY per table, not one per batch.
    """

    def __init__(self, driver: Any, keep: int = RECENT_LIMIT) -> None:
        self._driver = driver
        self.committed: deque[tuple[str, Outgoing]] = deque(maxlen=keep)
        self._events: list[EventRow] = []
        self._outbox: list[tuple[str, str, str, str, str]] = []
        self._quarantine: list[tuple[Any, ...]] = []

    async def write(self, batch: Batch) -> set[str]:
        """Stores the batch (its rows copied in by the commit at the latest); returns the dedup keys that
        were new (the others are duplicates)."""
        fresh = await self._ledger(self._driver, batch) if batch.records else set()
        new_rows = [row for row in batch.records if row.key in fresh and row.message is not None]
        if new_rows:
            channel = batch.arrival.channel
            events, outbox, committed = self._events, self._outbox, self.committed
            for row in new_rows:
                events += row.events  # EventRow: the columns' order
                message = cast(str, row.message)
                headers = outbox_headers(row, channel)
                outbox.append((row.record_id, EVENTS, row.study_id, orjson.dumps(headers).decode(), row.key))
                committed.append((row.record_id, Outgoing(EVENTS, row.study_id.encode(), message.encode(), headers)))
        if batch.quarantine:
            arrival = batch.arrival
            self._quarantine += [
                (row.source, row.error, row.sha256, row.raw, arrival.received_at, arrival.channel, arrival.format)
                for row in batch.quarantine
            ]
        if len(self._events) >= FLUSH_ROWS:
            await self.flush()
        return fresh

    async def flush(self) -> None:
        """Copies in the rows written since the last flush: the events before the outbox rows naming them."""
        driver = self._driver
        if self._events:
            events, self._events = self._events, []
            await driver.copy_records_to_table(
                "canonical_event", records=events, columns=EVENT_COLUMNS, schema_name=SCHEMA
            )
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            await driver.copy_records_to_table("outbox", records=outbox, columns=OUTBOX_COLUMNS, schema_name=SCHEMA)
        if self._quarantine:
            rows, self._quarantine = self._quarantine, []
            await driver.copy_records_to_table(
                "quarantine", records=rows, columns=QUARANTINE_COLUMNS, schema_name=SCHEMA
            )

    @staticmethod
    async def _ledger(driver: Any, batch: Batch) -> set[str]:
        records, arrival = batch.records, batch.arrival
        rows = await driver.fetch(
            LEDGER_INSERT,
            [row.key for row in records],
            arrival.format,
            arrival.received_at,
            arrival.channel,
            [row.sha256 for row in records],
            [row.raw for row in records],
            [row.study_id for row in records],
            [row.origin for row in records],
            [row.non_production for row in records],
            [len(row.events) for row in records],
        )
        return {row["source_key"] for row in rows}


class SchemaOutdatedError(RuntimeError):
    """The database lacks ingest's tables or columns: the migrations have not been run to head."""


class IngestStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[Committed], None]) -> None:
        self._sessions = sessions
        self._on_commit = on_commit

    async def verify_schema(self) -> None:
        """Fails at startup, not at the first record, when the schema is older than this code."""
        async with self._sessions() as session:
            try:
                for probe in SCHEMA_PROBES:
                    await session.execute(text(probe))
            except ProgrammingError as error:
                raise SchemaOutdatedError(
                    "ingest tables are older than this code: run `alembic -c deploy/alembic.ini upgrade head` "
                    "(a database stamped past 0002 while it was empty: `alembic stamp 0001`, then upgrade head)"
                ) from error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[BatchWriter]:
        """Everything written through the writer commits together; its messages go to ``on_commit`` after
        the commit (never before: a message rolled back must not be published)."""
        try:
            async with driver_transaction(self._sessions) as driver:
                writer = BatchWriter(driver)
                yield writer
                await writer.flush()
        except STORAGE_ERRORS as error:
            raise StorageUnavailableError(f"{type(error).__name__}: {error}") from error
        self._on_commit(writer.committed)
