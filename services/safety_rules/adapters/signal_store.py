"""Signals in the database: the ``signal`` rows and their outbox rows, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.safety_rules.adapters.tables import Outbox, SignalRecord
from shared.events import Signal
from shared.messaging.outbox import OutboxMessage, enqueue_many

#: The signals one cause (a record id, or the wall clock) raised, in recording order.
Caused = tuple[str, Sequence[Signal]]


def signal_message(signal: Signal, topic: str, causation_id: str) -> OutboxMessage:
    """The trialwatch.signals.v1 record: the INTERFACES §3 object, keyed by study."""
    return OutboxMessage(
        event_id=signal.signal_id,
        topic=topic,
        key=signal.study_id,
        payload=signal.to_public(),
        headers={
            "kind": signal.kind,
            "schema_version": str(signal.schema_version),
            "causation_id": causation_id,
        },
    )


async def persist_signals(
    session: AsyncSession, signals: Sequence[Signal], *, topic: str, causation_id: str
) -> list[Signal]:
    """`persist_signal_batch` for the signals of one cause."""
    [recorded] = await persist_signal_batch(session, [(causation_id, signals)], topic=topic)
    return recorded


async def persist_signal_batch(session: AsyncSession, batch: Sequence[Caused], *, topic: str) -> list[list[Signal]]:
    """Records every signal (recording order = ``seq`` = the order given) and enqueues it; returns, per
    cause, those that were new. Two statements for the whole batch: the signal rows, then the outbox rows.

    Signal ids are deterministic and each cause is processed once, so a known id would mean the engine
    emitted one signal twice: it is kept once.
    """
    flat = [signal for _, signals in batch for signal in signals]
    if not flat:
        return [[] for _ in batch]
    table = cast(Table, SignalRecord.__table__)
    statement = insert(table).on_conflict_do_nothing().returning(table.c.signal_id)
    inserted = set((await session.execute(statement, [_signal_row(signal) for signal in flat])).scalars())
    recorded: list[list[Signal]] = []
    for _, signals in batch:
        new = [signal for signal in signals if signal.signal_id in inserted]
        inserted.difference_update(signal.signal_id for signal in new)
        recorded.append(_first_of_each(new))
    messages = [signal_message(s, topic, cause) for (cause, _), kept in zip(batch, recorded, strict=True) for s in kept]
    await enqueue_many(session, Outbox, messages)
    return recorded


def _signal_row(signal: Signal) -> dict[str, Any]:
    return {
        "signal_id": signal.signal_id,
        "study_id": signal.study_id,
        "subject_id": signal.subject_id,
        "rule_id": signal.rule_id,
        "severity": signal.severity,
        "status": signal.status,
        "payload": signal.to_public(),
    }


def _first_of_each(signals: list[Signal]) -> list[Signal]:
    seen: set[str] = set()
    kept: list[Signal] = []
    for signal in signals:
        if signal.signal_id not in seen:
            seen.add(signal.signal_id)
            kept.append(signal)
    return kept
