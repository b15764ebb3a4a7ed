"""safety_rules' SQL side: one transaction per event (dedupe, evaluate, signals, outbox)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.safety_rules.adapters.tables import Outbox, ProcessedEvent, SignalRecord
from shared.events import ClinicalEvent, Signal
from shared.messaging.idempotency import first_delivery
from shared.messaging.outbox import OutboxMessage, enqueue
from shared.messaging.topics import SIGNALS

#: The rules engine: canonical event in, signals out (pure; the real engine plugs in here).
Evaluate = Callable[[ClinicalEvent], Sequence[Signal]]


def signal_message(signal: Signal, cause: ClinicalEvent) -> OutboxMessage:
    """trialwatch.signals.v1 record: the INTERFACES §3 object, keyed by study."""
    return OutboxMessage(
        event_id=signal.signal_id,
        topic=SIGNALS,
        key=signal.study_id,
        payload=signal.to_public(),
        headers={
            "kind": signal.kind,
            "schema_version": str(signal.schema_version),
            "causation_id": cause.event_id,
        },
    )


class RulesStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        evaluate: Evaluate,
        consumer_group: str,
        on_commit: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._evaluate = evaluate
        self._group = consumer_group
        self._on_commit = on_commit

    async def process(self, event: ClinicalEvent) -> int | None:
        """Evaluates ``event`` once; returns how many new signals it raised, None for a redelivery."""
        async with self._sessions.begin() as session:
            if not await first_delivery(session, ProcessedEvent, self._group, event.event_id):
                return None
            raised = 0
            for signal in self._evaluate(event):
                if await self._record_signal(session, signal):
                    await enqueue(session, Outbox, signal_message(signal, event))
                    raised += 1
        self._on_commit()
        return raised

    @staticmethod
    async def _record_signal(session: AsyncSession, signal: Signal) -> bool:
        """False when a signal with this (deterministic) id exists already."""
        row = insert(SignalRecord).values(
            signal_id=signal.signal_id,
            study_id=signal.study_id,
            subject_id=signal.subject_id,
            rule_id=signal.rule_id,
            severity=signal.severity,
            status=signal.status,
            payload=signal.to_public(),
        )
        result = await session.execute(row.on_conflict_do_nothing().returning(SignalRecord.signal_id))
        return result.first() is not None
