"""Idempotent consumer for a batch: which of its records this consumer group sees for the first time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: The ids as one array: the same statement whatever the batch's size (prepared once per connection).
CLAIM = text(
    "INSERT INTO safety_rules.processed_event (consumer_group, event_id)"
    " SELECT CAST(:group AS text), unnest(CAST(:ids AS text[]))"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


async def first_deliveries(session: AsyncSession, consumer_group: str, record_ids: Sequence[str]) -> set[str]:
    """The ids of ``record_ids`` this group never processed, claimed in the caller's transaction.

    `shared.messaging.idempotency.first_delivery` for many ids in one statement: the check and the claim
    are one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so an id processed before (or held by
    a concurrent transaction, which this one then waits for) comes back absent. An id repeated in
    ``record_ids`` is claimed once.
    """
    if not record_ids:
        return set()
    ids = list(dict.fromkeys(record_ids))
    return set((await session.execute(CLAIM, {"group": consumer_group, "ids": ids})).scalars())
