"""Transactional outbox: rows written with the domain change, published to Kafka by a relay.

The relay claims pending rows ``FOR UPDATE SKIP LOCKED`` in id order, publishes each with the idempotent
producer and awaits the broker's acknowledgement, then marks the rows published in the same transaction.
A crash between publish and commit republishes the row: consumers deduplicate by event id.
It wakes on ``wake()`` (the writer's commit in this process) or at the latest every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select, update
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


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: type[OutboxMixin],
        publish: Publish,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self._sessions = sessions
        self._model = model
        self._publish = publish
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._backoff = backoff or Backoff(first=0.5, cap=30.0)
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._log = get_logger(__name__, table=str(model.__table__))  # type: ignore[attr-defined]
        self.consecutive_failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

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
        """One round: claim a batch, publish it in order, mark it. Returns how many were published.

        Raises the publish error after committing the rows published before it (and the failed row's
        attempt count), so that ``run`` backs off.
        """
        model = self._model
        async with self._sessions() as session, session.begin():
            claim = (
                select(model)
                .where(model.published_at.is_(None))
                .order_by(model.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            rows: Sequence[OutboxMixin] = (await session.scalars(claim)).all()
            published, failure = await self._publish_in_order(rows)
            if published:
                ids = [row.id for row in rows[: len(published)]]
                await session.execute(update(model).where(model.id.in_(ids)).values(published_at=func.now()))
        for delivery, row in zip(published, rows, strict=False):
            self._log.info("outbox.published", event_id=row.event_id, **asdict(delivery))
        if failure is not None:
            raise failure
        return len(published)

    async def _publish_in_order(self, rows: Sequence[OutboxMixin]) -> tuple[list[Delivery], Exception | None]:
        """Stops at the first failure so that a key's records never overtake each other."""
        deliveries: list[Delivery] = []
        for row in rows:
            try:
                body = orjson.dumps(row.payload)
                delivery = await self._publish(row.topic, row.key.encode(), body, row.headers)
            except Exception as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                return deliveries, exc
            deliveries.append(delivery)
        return deliveries, None

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
