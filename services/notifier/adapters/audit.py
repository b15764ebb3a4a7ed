"""The hash-chained audit trail in PostgreSQL: entries in ``audit_log``, the chain's head in ``audit_head``.

Entries are appended at the end of the transaction that did what they record (``Unit``), under a lock on
the head row, so concurrent writers form one sequence and the head always names the newest entry. Taking
that lock last keeps it short and out of every other lock order. A transaction's entries are chained in
memory and written with one multi-row insert, and the head is updated once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import AuditHead, AuditLog, table_of
from services.notifier.domain.audit_chain import GENESIS_HASH, AuditContent, AuditEntry, ChainHead

ALERTS_CHAIN = "alerts"
SYSTEM_ACTOR = "system:notifier"  # the notifier itself, as the actor of what no person did
READ_BATCH = 1000
AUDIT_LOG = table_of(AuditLog)


@dataclass(frozen=True)
class AuditNote:
    actor: str
    action: str
    alert_id: str | None
    detail: dict[str, Any]


class AuditOrderError(RuntimeError):
    """PostgreSQL numbered a transaction's entries in another order than they were chained: nothing is
    committed (the chain would not verify)."""


async def append_audit(session: AsyncSession, notes: Sequence[AuditNote]) -> None:
    """Appends ``notes`` in the caller's transaction, in order."""
    if not notes:
        return
    last_hash = await _locked_head(session)
    rows = []
    for note in notes:
        recorded_at = datetime.now(UTC)
        digest = AuditContent(0, recorded_at, note.actor, note.action, note.alert_id, note.detail).digest(last_hash)
        rows.append(
            {
                "recorded_at": recorded_at,
                "actor": note.actor,
                "action": note.action,
                "alert_id": note.alert_id,
                "detail": note.detail,
                "prev_hash": last_hash,
                "hash": digest,
            }
        )
        last_hash = digest
    statement = insert(AUDIT_LOG).returning(AUDIT_LOG.c.id, AUDIT_LOG.c.hash)
    numbered = sorted((row.id, row.hash) for row in await session.execute(statement, rows))
    if [digest for _, digest in numbered] != [row["hash"] for row in rows]:
        raise AuditOrderError("audit entries were numbered out of their chain order")
    head = update(AuditHead).where(AuditHead.chain == ALERTS_CHAIN)
    await session.execute(head.values(last_id=numbered[-1][0], last_hash=last_hash, updated_at=rows[-1]["recorded_at"]))


async def _locked_head(session: AsyncSession) -> str:
    """The chain's newest hash, its head row created if need be and locked until commit (one statement:
    an upsert that changes nothing locks the row it returns)."""
    seed = insert(AuditHead).values(chain=ALERTS_CHAIN, last_id=None, last_hash=GENESIS_HASH)
    lock = seed.on_conflict_do_update(index_elements=[AuditHead.chain], set_={"chain": seed.excluded.chain})
    return str((await session.execute(lock.returning(AuditHead.last_hash))).scalar_one())


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
