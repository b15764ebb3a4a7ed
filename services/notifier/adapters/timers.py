"""Timers in PostgreSQL: digests, escalations and clock reminders survive restarts.

A timer fires once: the scheduler claims it ``FOR UPDATE SKIP LOCKED`` and marks it fired in the same
transaction as its effects. At most one digest per study is open at a time (a partial unique index).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import Timer, table_of

TIMER = table_of(Timer)
OPEN_DIGEST = text("kind = 'digest' AND fired_at IS NULL")


async def schedule_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Idempotent: a timer with the same key is scheduled once. Each row: key, kind, study_id, alert_id,
    fire_at and detail."""
    if rows:
        await session.execute(insert(TIMER).on_conflict_do_nothing(index_elements=["key"]), list(rows))


async def open_digest(session: AsyncSession, study_id: str, fire_at: datetime) -> Timer:
    """The study's open digest (created to fire at ``fire_at`` if there is none), locked until commit."""
    statement = insert(Timer).values(
        key=f"digest:{study_id}:{uuid.uuid4()}", kind="digest", study_id=study_id, fire_at=fire_at, detail={}
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["study_id"], index_where=OPEN_DIGEST))
    query = select(Timer).where(Timer.kind == "digest", Timer.study_id == study_id, Timer.fired_at.is_(None))
    return (await session.scalars(query.with_for_update())).one()


async def claim_due(session: AsyncSession, now: datetime) -> Timer | None:
    query = (
        select(Timer)
        .where(Timer.fired_at.is_(None), Timer.fire_at <= now)
        .order_by(Timer.fire_at, Timer.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).first()


async def next_fire_at(session: AsyncSession) -> datetime | None:
    """When the earliest timer not yet fired is due (None: none is waiting)."""
    return (await session.execute(select(func.min(Timer.fire_at)).where(Timer.fired_at.is_(None)))).scalar()


def fired(timer: Timer, now: datetime, outcome: str) -> None:
    timer.fired_at, timer.outcome = now, outcome
