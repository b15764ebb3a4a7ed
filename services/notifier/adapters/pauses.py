"""Pause and resume events of each study (``pause_event``), read back as the domain's ``PauseEvent``s."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters import tables
from services.notifier.domain.inhibition import PauseEvent, PauseKind
from services.notifier.domain.model import SignalFacts


def _facts(data: dict[str, Any] | None) -> SignalFacts | None:
    return None if data is None else SignalFacts(**data)


async def pause_events(session: AsyncSession, study_id: str) -> list[PauseEvent]:
    rows = await session.scalars(select(tables.PauseEvent).where(tables.PauseEvent.study_id == study_id))
    return [
        PauseEvent(
            kind=cast(PauseKind, row.kind),
            study_id=row.study_id,
            rule_id=row.rule_id,
            at=row.at,
            source_id=row.source_id,
            alert_id=row.alert_id,
            facts=_facts(row.facts),
        )
        for row in rows
    ]


async def record_pause_event(session: AsyncSession, event: PauseEvent) -> bool:
    """False when this source (signal or DSMB decision) was recorded before."""
    facts = None if event.facts is None else asdict(event.facts)
    statement = (
        insert(tables.PauseEvent)
        .values(
            source_id=event.source_id,
            kind=event.kind,
            study_id=event.study_id,
            rule_id=event.rule_id,
            at=event.at,
            alert_id=event.alert_id,
            facts=facts,
        )
        .on_conflict_do_nothing(index_elements=["source_id"])
        .returning(tables.PauseEvent.id)
    )
    return (await session.execute(statement)).first() is not None
