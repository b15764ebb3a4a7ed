"""The senders' outbox: delivery rows, claimed with a lease before anything is sent.

``claim`` records the attempt (``attempts`` + 1, ``last_attempt_at``, ``lease_until``) and commits before
the message leaves, so a crash mid-send leaves a row that says so. Once its lease has run out the row is
claimed again and sent again with the same Message-ID (``resends`` + 1): the one at-least-once window,
between the receiver accepting a message and the DELIVERED commit, which a receiver closes by
de-duplicating on the Message-ID (the SMTP sink does) or on ``X-TrialWatch-Delivery`` (webhooks).
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
    """Claims due PENDING rows whose lease (if any) has run out; the caller commits before sending."""
    due = (
        select(Delivery.id)
        .where(
            Delivery.status == "PENDING",
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    in_doubt = and_(Delivery.lease_until.is_not(None), Delivery.lease_until < now)
    statement = (
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(
            attempts=Delivery.attempts + 1,
            resends=Delivery.resends + case((in_doubt, 1), else_=0),
            last_attempt_at=now,
            lease_until=now + lease,
        )
        .returning(Delivery)
    )
    return list((await session.scalars(statement)).all())


async def delivery_for_update(session: AsyncSession, delivery_id: int) -> Delivery | None:
    query = select(Delivery).where(Delivery.id == delivery_id, Delivery.status == "PENDING").with_for_update()
    return (await session.scalars(query)).first()


def delivered(row: Delivery, now: datetime) -> None:
    row.status, row.sent_at, row.lease_until, row.last_error = "DELIVERED", now, None, None


def retry_later(row: Delivery, error: str, at: datetime) -> None:
    row.next_attempt_at, row.lease_until, row.last_error = at, None, error[:MAX_ERROR_LENGTH]


def failed(row: Delivery, error: str) -> None:
    row.status, row.lease_until, row.last_error = "FAILED", None, error[:MAX_ERROR_LENGTH]


def describe(row: Delivery) -> dict[str, Any]:
    keys = ("id", "kind", "dispatch_key", "receiver", "role", "recipient", "channel", "message_id", "attempts")
    return {key: getattr(row, key) for key in keys} | {"alert_ids": list(row.alert_ids)}
