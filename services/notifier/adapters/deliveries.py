"""The senders' outbox: delivery rows, claimed with a lease before anything is sent.

``claim`` records the attempt (``attempts`` + 1, ``last_attempt_at``, ``lease_until``) and commits before
the connection opens. ``mark_in_doubt`` commits ``in_doubt_since`` (and a fresh lease) just before the
point of no return, fenced by the attempt number, so only the attempt that holds the row can pass it.
A row whose lease ran out is claimed again only if it never passed that point (nothing can have arrived);
one that did is ``in_doubt_expired``: recorded DELIVERED, ``unconfirmed``, and never sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import Delivery

MAX_ERROR_LENGTH = 2000


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


async def queue_delivery(session: AsyncSession, new: NewDelivery, now: datetime) -> int | None:
    """Inserts a PENDING delivery; None when this (dispatch key, recipient, channel) was queued before."""
    statement = (
        insert(Delivery)
        .values(
            dispatch_key=new.dispatch_key,
            kind=new.kind,
            alert_id=new.alert_ids[0] if len(new.alert_ids) == 1 else None,
            alert_ids=new.alert_ids,
            signal_id=new.signal_id,
            receiver=new.receiver,
            role=new.role,
            recipient=new.recipient,
            channel=new.channel,
            status="PENDING",
            message_id=new.message_id,
            message=new.message,
            next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dispatch_key", "recipient", "channel"])
        .returning(Delivery.id)
    )
    return (await session.execute(statement)).scalar()


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


async def mark_in_doubt(session: AsyncSession, delivery_id: int, attempt: int, now: datetime, lease: timedelta) -> bool:
    """The point-of-no-return marker; False when this attempt no longer holds the row (another claimed it)."""
    statement = (
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == "PENDING",
            Delivery.attempts == attempt,
            Delivery.in_doubt_since.is_(None),
        )
        .values(in_doubt_since=now, lease_until=now + lease)
        .returning(Delivery.id)
    )
    return (await session.execute(statement)).scalar() is not None


async def in_doubt_expired(session: AsyncSession, now: datetime, batch: int) -> list[Delivery]:
    """Rows that passed the point of no return and whose sender is gone (the lease ran out)."""
    query = (
        select(Delivery)
        .where(Delivery.status == "PENDING", Delivery.in_doubt_since.is_not(None), Delivery.lease_until < now)
        .order_by(Delivery.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def delivery_for_update(session: AsyncSession, delivery_id: int, attempt: int) -> Delivery | None:
    """The row, if still PENDING under this attempt (fenced: a stale sender records nothing)."""
    query = (
        select(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "PENDING", Delivery.attempts == attempt)
        .with_for_update()
    )
    return (await session.scalars(query)).first()


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
