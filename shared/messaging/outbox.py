"""Transactional outbox: rows written with the domain change, published to Kafka by a relay.

The relay claims pending rows ``FOR UPDATE SKIP LOCKED`` in id order, hands the whole round to the batch
publisher (`shared.messaging.batch_publisher`: all of it in flight together, and per partition the
records published are a prefix of those given), awaits the broker's acknowledgements, then marks the
rows published up to the first one that failed, in the same transaction. That row and those after it
stay pending (order kept) and the relay backs off. A crash between publish and commit republishes the
rows: consumers deduplicate by event id. It wakes on ``wake()`` (the writer's commit in this process)
or at the latest every ``poll_interval``.

A writer in the relay's own process may hand it the messages it has just committed (`RecentMessages`):
the round then claims the rows as before but takes their bytes from memory instead of reading back the
payloads written moments earlier. The table stays the truth: which rows are pending, their order, the
claim and the mark are the database's; a claimed row whose message is not in memory (after a restart,
written by another process, or dropped because the relay fell far behind) is read from its row, or
built by the writer's own `ReadStored` from the rows it refers to (ingest's outbox rows hold no payload).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

import orjson
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.mixins import OutboxMixin
from shared.logs import get_logger
from shared.messaging.retry import Backoff


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int


#: Sends one record and returns once the broker has acknowledged it.
Publish = Callable[[str, bytes, bytes, Mapping[str, str]], Awaitable[Delivery]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Kafka record as the relay hands it to the publisher."""

    topic: str
    key: bytes
    value: bytes
    headers: Mapping[str, str]


#: What became of one record of a round: its delivery, or why it did not reach the broker.
PublishResult = Delivery | Exception


@runtime_checkable
class BatchPublish(Protocol):
    """Publishes a round of records. Contract: one result per record, in order, and per topic and key the
    records delivered are a prefix of those given (a record never overtakes an earlier one that failed)."""

    async def publish(self, messages: Sequence[Outgoing]) -> list[PublishResult]: ...

    async def close(self) -> None: ...


class SequentialPublisher:
    """`BatchPublish` over a one-record `Publish`: each record awaited before the next, none after a failure."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    async def publish(self, messages: Sequence[Outgoing]) -> list[PublishResult]:
        results: list[PublishResult] = []
        for message in messages:
            try:
                results.append(await self._publish(message.topic, message.key, message.value, message.headers))
            except Exception as exc:
                return [*results, exc]
        return results

    async def close(self) -> None:
        """The broker that ``publish`` uses is closed by its owner."""


@dataclass(frozen=True)
class OutboxMessage:
    event_id: str
    topic: str
    key: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def outbox_row(message: OutboxMessage) -> dict[str, Any]:
    """The outbox row's values: the message, with its content type and event id among the headers."""
    headers = {"content-type": "application/json", "event_id": message.event_id, **message.headers}
    return {
        "event_id": message.event_id,
        "topic": message.topic,
        "key": message.key,
        "headers": headers,
        "payload": dict(message.payload),
    }


async def enqueue(session: AsyncSession, model: type[OutboxMixin], message: OutboxMessage) -> bool:
    """Adds the message to the outbox in the caller's transaction. False if its event id is already there."""
    statement = (
        insert(model)
        .values(**outbox_row(message))
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(model.id)
    )
    return (await session.execute(statement)).first() is not None


async def enqueue_many(session: AsyncSession, model: type[OutboxMixin], messages: Sequence[OutboxMessage]) -> int:
    """Adds the messages, in order, in the caller's transaction with one multi-row insert (``enqueue`` for
    a batch). A message whose event id is already there is skipped; returns how many were added."""
    if not messages:
        return 0
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.id)
    return len((await session.execute(statement, [outbox_row(message) for message in messages])).all())


@asynccontextmanager
async def driver_transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    """The asyncpg connection of a new session's transaction, committed (by SQLAlchemy) when the block ends.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, before the first statement run through SQLAlchemy: a
    statement sent to the asyncpg connection directly (COPY, array parameters, plain rows) would run and
    commit on its own, outside any transaction. So the transaction is begun here when no statement (a
    session hook's: safety_rules' relay lock) has begun it yet.
    """
    async with sessions.begin() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        adapter, driver = raw.dbapi_connection, raw.driver_connection
        assert driver is not None
        if not driver.is_in_transaction():
            start = getattr(adapter, "_start_transaction", None)  # SQLAlchemy 2.x: BEGIN without a round trip more
            if start is not None:
                await start()
            else:
                await connection.exec_driver_sql("SELECT 1")
        try:
            yield driver
        except BaseException:
            if driver.is_closed():  # SQLAlchemy saw no error: the pool must not hand this connection out again
                await connection.invalidate()
            raise


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row claimed by a relay round and the Kafka record it becomes (its payload as the database
    stores it, JSON text not decoded and encoded again, or as the writer handed it over)."""

    id: int
    event_id: str
    message: Outgoing


#: Messages `RecentMessages` holds at most (~4 kB each for ingest): a relay further behind reads the oldest back.
RECENT_LIMIT = 4000


class RecentMessages:
    """Messages committed to the outbox by this process and not yet published, by event id.

    Filled only after the writer's commit (a rolled-back message must never be published), emptied as the
    relay's marks commit. When full, the oldest are dropped: the relay claims in id order, so it reaches
    the dropped ones first and reads them from their rows. A message whose row was published before it
    got here (a round that ran between the commit and ``add``, or another instance's relay) is never
    claimed again: it stays until it is the oldest, so the limit also bounds what such strays hold.
    """

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self._limit = limit
        self._messages: dict[str, Outgoing] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, committed: Iterable[tuple[str, Outgoing]]) -> None:
        messages = self._messages
        messages.update(committed)
        while len(messages) > self._limit:
            del messages[next(iter(messages))]

    def get(self, event_id: str) -> Outgoing | None:
        return self._messages.get(event_id)

    def forget(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            self._messages.pop(event_id, None)


#: The messages of claimed rows, read in the claim's transaction (``driver``: its asyncpg connection): row id ->
#: Kafka record, one for each id given.
ReadStored = Callable[[Any, Sequence[int]], Awaitable[Mapping[int, Outgoing]]]


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: type[OutboxMixin],
        publisher: BatchPublish | Publish,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        backoff: Backoff | None = None,
        recent: RecentMessages | None = None,
        read_stored: ReadStored | None = None,
    ) -> None:
        self._sessions = sessions
        self._model = model
        self._publisher = publisher if isinstance(publisher, BatchPublish) else SequentialPublisher(publisher)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._backoff = backoff or Backoff(first=0.5, cap=30.0)
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        table = model.__table__.fullname  # type: ignore[attr-defined]
        self._log = get_logger(__name__, table=table)
        # Plain SQL on the asyncpg connection, each statement the same text every round (one prepared
        # statement each; an IN list of the round's ids was a new statement, parsed and planned again,
        # whenever the round's size changed; SQLAlchemy's result rows cost more than the rest of the claim).
        # The JSON columns are read as text: headers decoded with orjson, the payload passed on as it is.
        self._recent = recent
        pending = " WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
        self._claim = f"SELECT id, event_id, topic, key, headers::text, payload::text FROM {table}{pending}"
        # With messages in memory the claim reads no payload; those not in memory are read by id.
        self._claim_ids = f"SELECT id, event_id, topic, key FROM {table}{pending}"
        self._read = f"SELECT id, topic, key, headers::text, payload::text FROM {table} WHERE id = ANY($1)"
        self._read_stored: ReadStored = read_stored or self._read_rows
        self._mark = f"UPDATE {table} SET published_at = now() WHERE id = ANY($1)"
        self._failed = f"UPDATE {table} SET attempts = attempts + 1, last_error = $2 WHERE id = $1"
        self.consecutive_failures = 0
        self.last_error: str | None = None
        #: Claimed rows whose message was not in memory (read from the table), with ``recent`` given.
        self.read_back = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    async def close(self) -> None:
        """After ``run`` returned: lets go of the publisher's connections."""
        await self._publisher.close()

    async def run(self) -> None:
        """Publishes until ``stop()``; a failed round is recorded, then retried after a growing pause."""
        while not self._stopped.is_set():
            try:
                published = await self.publish_pending()
            except Exception as exc:  # database or broker away: the rows stay pending, retried later
                self._record_failure(exc)
                await self._pause(self._stopped, self._backoff.delay(self.consecutive_failures))
                continue
            self.consecutive_failures, self.last_error = 0, None
            if published < self._batch_size:
                await self._pause(self._wake, self._poll_interval)

    async def publish_pending(self) -> int:
        """One round: claim a batch, publish it, mark the rows published before the first failure.
        Returns how many were published.

        Raises the first failure after committing the rows published before it (and the failed row's
        attempt count), so that ``run`` backs off.
        """
        async with driver_transaction(self._sessions) as driver:
            rows = await self._claimed(driver)
            if not rows:
                return 0
            published, failure = await self._publish_round(rows)
            if published:
                await driver.execute(self._mark, [row.id for row in rows[: len(published)]])
            if failure is not None:
                failed = rows[len(published)]
                error = f"{type(failure).__name__}: {failure}"[:2000]
                await driver.execute(self._failed, failed.id, error)
        if self._recent is not None:
            self._recent.forget(row.event_id for row in rows[: len(published)])
        self._log_round(rows, published)
        if failure is not None:
            raise failure
        return len(published)

    async def _claimed(self, driver: Any) -> list[Claimed]:
        """This round's rows, claimed, with their messages (from memory where the writer handed them over)."""
        if self._recent is None:
            found = await driver.fetch(self._claim, self._batch_size)
            return [Claimed(row[0], row[1], _outgoing(row[2], row[3], row[4], row[5])) for row in found]
        recent = self._recent
        found = await driver.fetch(self._claim_ids, self._batch_size)
        messages = {row[0]: recent.get(row[1]) for row in found}
        missing = [row_id for row_id, message in messages.items() if message is None]
        self.read_back += len(missing)
        if missing:  # the rows are locked by this transaction: each is found
            messages.update(await self._read_stored(driver, missing))
        return [Claimed(row[0], row[1], cast(Outgoing, messages[row[0]])) for row in found]

    async def _read_rows(self, driver: Any, ids: Sequence[int]) -> dict[int, Outgoing]:
        """The default `ReadStored`: each row's own headers and payload."""
        return {row[0]: _outgoing(*row[1:]) for row in await driver.fetch(self._read, ids)}

    async def _publish_round(self, rows: Sequence[Claimed]) -> tuple[list[Delivery], Exception | None]:
        """The deliveries of the rows before the first failure, and that failure."""
        try:
            results = await self._publisher.publish([row.message for row in rows])
        except Exception as exc:  # nothing of the round is known to be published
            results = [exc]
        deliveries: list[Delivery] = []
        for result in results[: len(rows)]:
            if isinstance(result, Exception):
                return deliveries, result
            deliveries.append(result)
        return deliveries, None

    def _log_round(self, rows: Sequence[Claimed], published: Sequence[Delivery]) -> None:
        """One line per round (a line per record cost more than the publishing itself)."""
        if not published:
            return
        last: dict[str, int] = {}
        for delivery in published:
            last[f"{delivery.topic}[{delivery.partition}]"] = delivery.offset
        self._log.info(
            "outbox.published",
            records=len(published),
            first_event_id=rows[0].event_id,
            last_event_id=rows[len(published) - 1].event_id,
            last_offsets=last,
            read_back=self.read_back,
        )

    def _record_failure(self, exc: Exception) -> None:
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._log.warning("outbox.publish_failed", error=self.last_error, failures=self.consecutive_failures)

    async def _pause(self, event: asyncio.Event, seconds: float) -> None:
        """Sleeps up to ``seconds``, or less when ``event`` is set (wake-up or stop)."""
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except TimeoutError:
            return
        if event is self._wake and not self._stopped.is_set():
            self._wake.clear()


def _outgoing(topic: str, key: str, headers: str, payload: str) -> Outgoing:
    """The Kafka record of a row as read: its headers decoded, its payload text passed on as stored."""
    return Outgoing(topic, key.encode(), payload.encode(), orjson.loads(headers))
