"""One transaction of the notifier: its SQL work, the Kafka records it publishes (outbox) and the audit
entries it appends (last, see ``audit``). Either all of it commits or none of it does.

New rows are gathered and written together, a multi-row statement per table (``flush``, and at the end):
a poll of signals opens its alerts, deliveries and timers in a few statements rather than a few per
signal. Alerts go first (deliveries refer to them), the outbox and the audit entries last. A queued
delivery's audit entry keeps its place among the others and is written only if the delivery was new.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import deliveries, timers
from services.notifier.adapters.audit import AuditNote, append_audit
from services.notifier.adapters.deliveries import NewDelivery, Queued
from services.notifier.adapters.tables import Alert, Outbox, table_of
from shared.messaging.outbox import OutboxMessage, enqueue_many


@dataclass
class Unit:
    session: AsyncSession
    notes: list[AuditNote | Queued] = field(default_factory=list)
    published: int = 0
    queued: int = 0
    earliest_timer: datetime | None = None
    _alerts: list[dict[str, Any]] = field(default_factory=list)
    _deliveries: list[Queued] = field(default_factory=list)
    _timers: list[dict[str, Any]] = field(default_factory=list)
    _outbox: list[OutboxMessage] = field(default_factory=list)

    def audit(self, actor: str, action: str, alert_id: str | None, **detail: Any) -> None:
        self.notes.append(AuditNote(actor, action, alert_id, detail))

    def publish(self, message: OutboxMessage) -> None:
        """Queues ``message`` for the outbox (a message whose event id is there already is not added)."""
        self._outbox.append(message)

    def open_alert(self, row: dict[str, Any]) -> Alert:
        """Queues a new alert row; the returned object is not tracked (later changes are not written)."""
        self._alerts.append(row)
        return Alert(**row)

    def queue_delivery(self, new: NewDelivery, now: datetime) -> Queued:
        """Queues a PENDING delivery; once flushed, ``delivery_id`` is None if it was queued before."""
        queued = Queued(new, now)
        self._deliveries.append(queued)
        self.notes.append(queued)
        return queued

    def schedule(
        self, *, key: str, kind: str, study_id: str, alert_id: str | None, fire_at: datetime, **detail: Any
    ) -> None:
        """Queues a timer; a timer with the same key is scheduled once."""
        self._timers.append(
            {"key": key, "kind": kind, "study_id": study_id, "alert_id": alert_id, "fire_at": fire_at, "detail": detail}
        )

    async def flush(self) -> None:
        """Writes the rows queued so far (before a query that must see them)."""
        alerts, queued, timer_rows = self._alerts, self._deliveries, self._timers
        self._alerts, self._deliveries, self._timers = [], [], []
        await _insert_alerts(self.session, alerts)
        await deliveries.queue_many(self.session, queued)
        await timers.schedule_many(self.session, timer_rows)
        self.queued += sum(item.delivery_id is not None for item in queued)
        fire_at = [row["fire_at"] for row in timer_rows]
        self.earliest_timer = min(fire_at + ([self.earliest_timer] if self.earliest_timer else []), default=None)

    async def finish(self) -> None:
        await self.flush()
        self.published = await enqueue_many(self.session, Outbox, self._outbox)
        notes = [note if isinstance(note, AuditNote) else note.audit_note() for note in self.notes]
        await append_audit(self.session, [note for note in notes if note is not None])


async def _insert_alerts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(table_of(Alert)), list(rows))


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Unit]:
    async with sessions.begin() as session:
        unit = Unit(session)
        yield unit
        await unit.finish()
