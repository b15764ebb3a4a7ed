"""Idempotent consumer: remember each (consumer group, event id) in the same transaction as its effects."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.mixins import ProcessedEventMixin


async def first_delivery(
    session: AsyncSession, model: type[ProcessedEventMixin], consumer_group: str, event_id: str
) -> bool:
    """True the first time this group sees ``event_id``; False for a redelivery or a duplicate.

    A concurrent transaction holding the same key makes this wait for its outcome, so two consumers
    can never both see True.
    """
    statement = (
        insert(model)
        .values(consumer_group=consumer_group, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(model.event_id)
    )
    return (await session.execute(statement)).first() is not None
