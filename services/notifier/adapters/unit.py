"""One transaction of the notifier: its SQL work, the Kafka records it publishes (outbox) and the audit
entries it appends (last, see ``audit``). Either all of it commits or none of it does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters.audit import AuditNote, append_audit
from services.notifier.adapters.tables import Outbox
from shared.messaging.outbox import OutboxMessage, enqueue


@dataclass
class Unit:
    session: AsyncSession
    notes: list[AuditNote] = field(default_factory=list)
    published: int = 0

    def audit(self, actor: str, action: str, alert_id: str | None, **detail: Any) -> None:
        self.notes.append(AuditNote(actor, action, alert_id, detail))

    async def publish(self, message: OutboxMessage) -> None:
        if await enqueue(self.session, Outbox, message):
            self.published += 1


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Unit]:
    async with sessions.begin() as session:
        unit = Unit(session)
        yield unit
        await append_audit(session, unit.notes)
