"""Idempotent consumer, a poll at a time: which of a poll's event ids this consumer group sees first."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import ProcessedEvent, table_of


async def first_deliveries(
    session: AsyncSession, model: type[ProcessedEvent], consumer_group: str, event_ids: Sequence[str]
) -> set[str]:
    """The ids of ``event_ids`` this group had not seen, now remembered in the caller's transaction (as
    ``shared.messaging.idempotency.first_delivery``, one statement for a poll): a concurrent transaction
    holding one of them makes this wait for its outcome, so two consumers never both see it first."""
    if not event_ids:
        return set()
    table = table_of(model)
    rows = [{"consumer_group": consumer_group, "event_id": event_id} for event_id in sorted(set(event_ids))]
    statement = insert(table).on_conflict_do_nothing().returning(table.c.event_id)
    return set((await session.execute(statement, rows)).scalars())
