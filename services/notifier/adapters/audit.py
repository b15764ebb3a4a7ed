"""The hash-chained audit trail in PostgreSQL: entries in ``audit_log``, the chain's head in ``audit_head``.

Entries are appended at the end of the transaction that did what they record (``Unit``), under a lock on
the head row, so concurrent writers form one sequence and the head always names the newest entry. Taking
that lock last keeps it short and out of every other lock order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import AuditHead, AuditLog
from services.notifier.domain.audit_chain import GENESIS_HASH, AuditContent, AuditEntry, ChainHead

ALERTS_CHAIN = "alerts"
READ_BATCH = 1000


@dataclass(frozen=True)
class AuditNote:
    actor: str
    action: str
    alert_id: str | None
    detail: dict[str, Any]


async def append_audit(session: AsyncSession, notes: Sequence[AuditNote]) -> None:
    """Appends ``notes`` in the caller's transaction, in order."""
    if not notes:
        return
    seed = insert(AuditHead).values(chain=ALERTS_CHAIN, last_id=None, last_hash=GENESIS_HASH)
    await session.execute(seed.on_conflict_do_nothing())
    head = (await session.scalars(select(AuditHead).where(AuditHead.chain == ALERTS_CHAIN).with_for_update())).one()
    for note in notes:
        recorded_at = datetime.now(UTC)
        content = AuditContent(0, recorded_at, note.actor, note.action, note.alert_id, note.detail)
        digest = content.digest(head.last_hash)
        row = AuditLog(
            recorded_at=recorded_at,
            actor=note.actor,
            action=note.action,
            alert_id=note.alert_id,
            detail=note.detail,
            prev_hash=head.last_hash,
            hash=digest,
        )
        session.add(row)
        await session.flush()
        head.last_id, head.last_hash, head.updated_at = row.id, digest, recorded_at


async def read_head(session: AsyncSession) -> ChainHead | None:
    head = await session.get(AuditHead, ALERTS_CHAIN)
    return None if head is None else ChainHead(head.last_id, head.last_hash)


async def read_entries(session: AsyncSession) -> AsyncIterator[AuditEntry]:
    """Every entry in sequence order, streamed in batches."""
    after = 0
    while True:
        query = select(AuditLog).where(AuditLog.id > after).order_by(AuditLog.id).limit(READ_BATCH)
        rows = (await session.scalars(query)).all()
        for row in rows:
            content = AuditContent(row.id, row.recorded_at, row.actor, row.action, row.alert_id, row.detail)
            yield AuditEntry(content, row.prev_hash, row.hash)
        if len(rows) < READ_BATCH:
            return
        after = rows[-1].id
