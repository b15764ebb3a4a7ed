"""Hash-chained audit log: each entry's hash covers its content and its predecessor's hash.

The chain's head row is locked while appending, so concurrent writers form one sequence and any
later edit or deletion of an entry breaks every hash after it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import AuditHead, AuditLog

GENESIS_HASH = "0" * 64
ALERTS_CHAIN = "alerts"


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    canonical = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


async def append_audit(
    session: AsyncSession, *, actor: str, action: str, alert_id: str | None, detail: dict[str, Any]
) -> str:
    """Appends one entry in the caller's transaction; returns its hash."""
    seed = insert(AuditHead).values(chain=ALERTS_CHAIN, last_id=None, last_hash=GENESIS_HASH)
    await session.execute(seed.on_conflict_do_nothing())
    head = (await session.scalars(select(AuditHead).where(AuditHead.chain == ALERTS_CHAIN).with_for_update())).one()
    recorded_at = datetime.now(UTC)
    entry = {
        "recorded_at": recorded_at.isoformat(),
        "actor": actor,
        "action": action,
        "alert_id": alert_id,
        "detail": detail,
    }
    digest = entry_hash(head.last_hash, entry)
    row = AuditLog(
        recorded_at=recorded_at,
        actor=actor,
        action=action,
        alert_id=alert_id,
        detail=detail,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(row)
    await session.flush()
    head.last_id, head.last_hash, head.updated_at = row.id, digest, recorded_at
    return digest
