"""Idempotent consumer for a batch: which of its records this consumer group sees for the first time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.safety_rules.adapters.tables import ProcessedEvent


async def first_deliveries(session: AsyncSession, consumer_group: str, record_ids: Sequence[str]) -> set[str]:
    """The ids of ``record_ids`` this group never processed, claimed in the caller's transaction.

    `shared.messaging.idempotency.first_delivery` for many ids in one statement: the check and the claim
    are one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so an id processed before (or held by
    a concurrent transaction, which this one then waits for) comes back absent. An id repeated in
    ``record_ids`` is claimed once.
    """
    if not record_ids:
        return set()
    table = cast(Table, ProcessedEvent.__table__)
    statement = insert(table).on_conflict_do_nothing().returning(table.c.event_id)
    rows = [{"consumer_group": consumer_group, "event_id": record_id} for record_id in dict.fromkeys(record_ids)]
    return set((await session.execute(statement, rows)).scalars())
