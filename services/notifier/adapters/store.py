"""notifier's SQL side: a received signal becomes one open alert and one audit entry, once."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters.audit import append_audit
from services.notifier.adapters.tables import Alert, ProcessedEvent
from shared.events import Signal, deterministic_id
from shared.messaging.idempotency import first_delivery

SYSTEM_ACTOR = "system:notifier"


def alert_id_for(signal: Signal) -> str:
    return deterministic_id("alert", signal.signal_id)


class NotifierStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], consumer_group: str) -> None:
        self._sessions = sessions
        self._group = consumer_group

    async def record(self, signal: Signal) -> str | None:
        """Opens the signal's alert; returns its id, or None for a redelivered signal."""
        async with self._sessions.begin() as session:
            if not await first_delivery(session, ProcessedEvent, self._group, signal.signal_id):
                return None
            alert_id = alert_id_for(signal)
            await self._open_alert(session, alert_id, signal)
            await append_audit(
                session,
                actor=SYSTEM_ACTOR,
                action="alert.opened",
                alert_id=alert_id,
                detail={
                    "signal_id": signal.signal_id,
                    "rule_id": signal.rule_id,
                    "severity": signal.severity,
                },
            )
        return alert_id

    @staticmethod
    async def _open_alert(session: AsyncSession, alert_id: str, signal: Signal) -> None:
        row = insert(Alert).values(
            alert_id=alert_id,
            signal_id=signal.signal_id,
            study_id=signal.study_id,
            subject_id=signal.subject_id,
            rule_id=signal.rule_id,
            severity=signal.severity,
            state="open",
            payload=signal.to_public(),
        )
        await session.execute(row.on_conflict_do_nothing(index_elements=["signal_id"]))
