"""The senders' outbox: delivery rows, claimed with a lease before anything is sent.

``claim`` records the attempt (``attempts`` + 1, ``last_attempt_at``, ``lease_until``) and commits before
the connection opens. ``mark_in_doubt`` commits ``in_doubt_since`` (and a fresh lease) just before the
point of no return, fenced by the attempt number, so only the attempt that holds the row can pass it.
A row whose lease ran out is claimed again only if it never passed that point (nothing can have arrived);
one that did is ``in_doubt_expired``: recorded DELIVERED, ``unconfirmed``, and never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import defer

from services.notifier.adapters.audit import SYSTEM_ACTOR, AuditNote
from services.notifier.adapters.tables import Delivery, table_of
from shared.db import live_driver

MAX_ERROR_LENGTH = 2000
DELIVERY = table_of(Delivery)
#: Rows loaded to record an outcome need no message (its JSON, decoded, was the largest part of each row).
WITHOUT_MESSAGE = defer(Delivery.message, raiseload=True)


@dataclass(frozen=True)
class NewDelivery:
    dispatch_key: str
    kind: str
    alert_ids: list[str]
    signal_id: str | None
    receiver: str
    role: str
    recipient: str
    channel: str
    message_id: str
    message: dict[str, Any]


@dataclass
class Queued:
    """A delivery queued in a unit; ``delivery_id`` is set when it is written, None if it was there before."""

    new: NewDelivery
    at: datetime
    delivery_id: int | None = None

    def audit_note(self) -> AuditNote | None:
        if self.delivery_id is None:
            return None
        new = self.new
        detail = {
            "delivery_id": self.delivery_id,
            "kind": new.kind,
            "receiver": new.receiver,
            "channel": new.channel,
            "recipient": new.recipient,
            "message_id": new.message_id,
            "alert_ids": new.alert_ids,
        }
        return AuditNote(SYSTEM_ACTOR, "delivery.queued", new.alert_ids[0] if len(new.alert_ids) == 1 else None, detail)


def _row(queued: Queued) -> dict[str, Any]:
    new = queued.new
    return {
        "dispatch_key": new.dispatch_key,
        "kind": new.kind,
        "alert_id": new.alert_ids[0] if len(new.alert_ids) == 1 else None,
        "alert_ids": new.alert_ids,
        "signal_id": new.signal_id,
        "receiver": new.receiver,
        "role": new.role,
        "recipient": new.recipient,
        "channel": new.channel,
        "status": "PENDING",
        "message_id": new.message_id,
        "message": new.message,
        "next_attempt_at": queued.at,
    }


async def queue_many(session: AsyncSession, queued: Sequence[Queued]) -> None:
    """Inserts PENDING deliveries (one multi-row insert); each gets its ``delivery_id``, or None when its
    (dispatch key, recipient, channel) was queued before (in this batch too)."""
    if not queued:
        return
    statement = (
        insert(DELIVERY)
        .on_conflict_do_nothing(index_elements=["dispatch_key", "recipient", "channel"])
        .returning(DELIVERY.c.id, DELIVERY.c.dispatch_key, DELIVERY.c.recipient, DELIVERY.c.channel)
    )
    written = await session.execute(statement, [_row(item) for item in queued])
    ids = {(row.dispatch_key, row.recipient, row.channel): row.id for row in written}
    for item in queued:
        item.delivery_id = ids.pop((item.new.dispatch_key, item.new.recipient, item.new.channel), None)


async def claim(session: AsyncSession, now: datetime, lease: timedelta, batch: int) -> list[Delivery]:
    """Claims due PENDING rows whose lease (if any) has run out and which never passed the point of no
    return; the caller commits before sending."""
    due = (
        select(Delivery.id)
        .where(
            Delivery.status == "PENDING",
            Delivery.in_doubt_since.is_(None),
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    interrupted = and_(Delivery.lease_until.is_not(None), Delivery.lease_until < now)
    statement = (
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(
            attempts=Delivery.attempts + 1,
            reclaims=Delivery.reclaims + case((interrupted, 1), else_=0),
            last_attempt_at=now,
            lease_until=now + lease,
        )
        .returning(Delivery)
    )
    return list((await session.scalars(statement)).all())


async def next_due(session: AsyncSession) -> datetime | None:
    """When a PENDING row is next due: its next attempt, or its lease running out (claimed again, or, past
    the point of no return, settled as unconfirmed), whichever is later. None: nothing is pending."""
    due = func.greatest(Delivery.next_attempt_at, Delivery.lease_until, type_=DateTime(timezone=True))
    return (await session.execute(select(func.min(due)).where(Delivery.status == "PENDING"))).scalar()


MARK_IN_DOUBT = f"""
UPDATE {DELIVERY.fullname} SET in_doubt_since = $3, lease_until = $4
WHERE id = $1 AND status = 'PENDING' AND attempts = $2 AND in_doubt_since IS NULL
RETURNING id
"""


async def mark_in_doubt(
    connection: AsyncConnection, delivery_id: int, attempt: int, now: datetime, lease: timedelta
) -> bool:
    """The point-of-no-return marker; False when this attempt no longer holds the row (another claimed it).

    One statement sent to the asyncpg connection itself, outside any transaction: committed on its own,
    in one round trip, prepared once per connection (through SQLAlchemy it was built and compiled for
    every message). A failure invalidates the connection if asyncpg saw it close, as SQLAlchemy would have.
    """
    driver = await live_driver(connection)
    try:
        return await driver.fetchval(MARK_IN_DOUBT, delivery_id, attempt, now, now + lease) is not None
    except BaseException:
        if driver.is_closed():
            await connection.invalidate()
        raise


async def in_doubt_expired(session: AsyncSession, now: datetime, batch: int) -> list[Delivery]:
    """Rows that passed the point of no return and whose sender is gone (the lease ran out)."""
    query = (
        select(Delivery)
        .options(WITHOUT_MESSAGE)
        .where(Delivery.status == "PENDING", Delivery.in_doubt_since.is_not(None), Delivery.lease_until < now)
        .order_by(Delivery.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def deliveries_for_update(session: AsyncSession, attempts: Sequence[tuple[int, int]]) -> dict[int, Delivery]:
    """The rows of (delivery id, attempt) still PENDING under that attempt (fenced: a stale sender records
    nothing), by id; locked in id order."""
    wanted = dict(attempts)
    query = (
        select(Delivery)
        .options(WITHOUT_MESSAGE)
        .where(Delivery.id.in_(sorted(wanted)), Delivery.status == "PENDING")
        .order_by(Delivery.id)
        .with_for_update()
    )
    rows = (await session.scalars(query)).all()
    return {row.id: row for row in rows if row.attempts == wanted[row.id]}


def delivered(row: Delivery, now: datetime, reply: str) -> None:
    row.status, row.sent_at, row.lease_until, row.last_error = "DELIVERED", now, None, None
    row.server_reply = reply[:MAX_ERROR_LENGTH]


def unconfirmed(row: Delivery, reason: str) -> None:
    """DELIVERED without the receiver's confirmation: it may have arrived, so it is never sent again."""
    row.status, row.sent_at, row.lease_until = "DELIVERED", row.in_doubt_since, None
    row.unconfirmed = reason[:MAX_ERROR_LENGTH]


def retry_later(row: Delivery, error: str, at: datetime) -> None:
    """A definite refusal or a failure before the point of no return: nothing arrived, so a retry is safe."""
    row.next_attempt_at, row.lease_until, row.last_error = at, None, error[:MAX_ERROR_LENGTH]
    row.in_doubt_since = None


def failed(row: Delivery, error: str) -> None:
    row.status, row.lease_until, row.last_error = "FAILED", None, error[:MAX_ERROR_LENGTH]
    row.in_doubt_since = None


def describe(row: Delivery) -> dict[str, Any]:
    keys = ("id", "kind", "dispatch_key", "receiver", "role", "recipient", "channel", "message_id", "attempts")
    return {key: getattr(row, key) for key in keys} | {"alert_ids": list(row.alert_ids)}
