"""What the notifier takes from each Kafka record of a poll (`shared.messaging.batches.BatchHandler`).

Nothing clinical here: decode, skip what holds nothing for the notifier, hand the rest to the use case
(intake.py, decisions.py), which applies a poll's messages in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.events import RecordIngested, Signal
from shared.messaging.batches import Raw

DSMB_KIND = b"dsmb.decision"
ESCAPE = b"\\"


class SignalIntake(Protocol):
    def check(self, signal: Signal) -> None: ...

    async def record_batch(self, signals: Sequence[Signal]) -> list[str | None]: ...


class DecisionIntake(Protocol):
    def wanted(self, record: RecordIngested) -> bool: ...

    async def record_batch(self, records: Sequence[RecordIngested]) -> list[int]: ...


def may_hold_decision(value: bytes) -> bool:
    """False only for a record that cannot hold a DSMB decision, found without parsing it.

    A JSON text (UTF-8, RFC 8259) holds the string ``dsmb.decision`` (its event's ``kind``) either
    literally or through a ``\\uXXXX`` escape: no other JSON escape stands for a letter or a dot, and every
    escape begins with a backslash. So the check never drops a decision, and since ingest writes escapes
    only for control characters, almost every other record (nearly all of the topic) is acknowledged
    unparsed. The backslash is looked for alone (a byte search, 0.4 us for a 4 kB record against 6 us
    for ``\\u``).
    """
    return ESCAPE in value or DSMB_KIND in value


class SignalRecords:
    """Signals: each opens its alert; a study without routing is poison (dead-lettered with the reason)."""

    def __init__(self, intake: SignalIntake) -> None:
        self._intake = intake

    def decode(self, raw: Raw) -> Signal:
        signal = Signal.model_validate_json(raw.value or b"")
        self._intake.check(signal)
        return signal

    async def apply(self, signals: Sequence[Signal]) -> None:
        await self._intake.record_batch(signals)


class DecisionRecords:
    """Ingested records: only those with a DSMB RESUME for a routed study are applied, the others skipped."""

    def __init__(self, decisions: DecisionIntake) -> None:
        self._decisions = decisions

    def decode(self, raw: Raw) -> RecordIngested | None:
        value = raw.value or b""
        if not may_hold_decision(value):
            return None
        record = RecordIngested.model_validate_json(value)
        return record if self._decisions.wanted(record) else None

    async def apply(self, records: Sequence[RecordIngested]) -> None:
        await self._decisions.record_batch(records)
