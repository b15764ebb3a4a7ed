"""What safety_rules does with one poll's records; how they are settled is `shared.messaging.batches`.

Each record is decoded as a `RecordIngested` and checked (undecodable, or of a study this instance does not
evaluate: poison, dead-lettered at once with the reason); the poll's records are evaluated in one
transaction (`BatchEvaluator.evaluate_batch`, idempotent through the processed-record table). The shared
`BatchConsumer` isolates a failing record, retries with backoff, dead-letters after the bounded attempts,
leaves the records for redelivery while the infrastructure (database, broker) fails, and commits exactly the
offsets of the records done, after the transaction (see its module).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from services.safety_rules.handlers import Evaluated
from shared.events import RecordIngested
from shared.logs import get_logger
from shared.messaging import batches
from shared.messaging.batches import OffsetPort, Raw
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.retry import RetryPolicy

__all__ = ["BatchEvaluator", "OffsetPort", "Raw", "RecordEvaluation", "batch_consumer"]

log = get_logger(__name__)


class BatchEvaluator(Protocol):
    def check(self, record: RecordIngested) -> None: ...

    async def evaluate_batch(self, records: Sequence[RecordIngested]) -> list[Evaluated]: ...


class RecordEvaluation:
    """The `shared.messaging.batches.BatchHandler` of the events subscriber."""

    def __init__(self, evaluator: BatchEvaluator) -> None:
        self._evaluator = evaluator

    def decode(self, raw: Raw) -> RecordIngested:
        record = RecordIngested.model_validate_json(raw.value or b"")
        self._evaluator.check(record)
        return record

    async def apply(self, records: Sequence[RecordIngested]) -> None:
        report(records, await self._evaluator.evaluate_batch(records))


def batch_consumer(
    evaluator: BatchEvaluator,
    dead_letters: DeadLetters,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> batches.BatchConsumer[RecordIngested]:
    return batches.BatchConsumer(RecordEvaluation(evaluator), dead_letters, policy, sleep)


def report(records: Sequence[RecordIngested], outcomes: Sequence[Evaluated]) -> None:
    """One line per evaluated batch, and one per record it skipped as processed before."""
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome.duplicate:
            log.info("record.evaluated", record_id=record.record_id, duplicate=True, signals=0)
    signals = sum(len(outcome.signals) for outcome in outcomes)
    duplicates = sum(outcome.duplicate for outcome in outcomes)
    log.info(
        "batch.evaluated",
        records=len(records),
        duplicates=duplicates,
        signals=signals,
        first_record=records[0].record_id,
        last_record=records[-1].record_id,
    )
