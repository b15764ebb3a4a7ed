"""Read-only views of the stack's progress in PostgreSQL: has a record's signal reached the notifier, and has
everything sent been processed, alerted and delivered (the run's end)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.topics import EVENTS

POLL_SECONDS = 0.1

SIGNALS_CITING = "SELECT count(*) FROM safety_rules.signal WHERE CAST(payload AS jsonb) -> 'evidence' ?| :keys"
UNSENT_ALERTS = """
SELECT count(*) FILTER (WHERE a.notified_at IS NULL AND a.routing ->> 'mode' = 'immediate') AS unsent,
       count(s.signal_id) AS signals
FROM safety_rules.signal s LEFT JOIN notifier.alert a ON a.signal_id = s.signal_id
WHERE CAST(s.payload AS jsonb) -> 'evidence' ?| :keys
"""
UNALERTED = (
    "SELECT count(*) FROM safety_rules.signal s WHERE NOT EXISTS "
    "(SELECT 1 FROM notifier.alert a WHERE a.signal_id = s.signal_id)"
)
BACKLOG = {
    "ingest outbox": "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL",
    "records not yet evaluated": (
        "SELECT (SELECT count(*) FROM ingest.outbox WHERE topic = :events) - (SELECT count(*) FROM "
        "safety_rules.processed_event WHERE event_id IN (SELECT event_id FROM ingest.outbox WHERE topic = :events))"
    ),
    "rules outbox": "SELECT count(*) FROM safety_rules.outbox WHERE published_at IS NULL",
    "signals without an alert": UNALERTED,
    "notifier outbox": "SELECT count(*) FROM notifier.outbox WHERE published_at IS NULL",
    "digests waiting": "SELECT count(*) FROM notifier.timer WHERE kind = 'digest' AND fired_at IS NULL",
    "deliveries pending": "SELECT count(*) FROM notifier.delivery WHERE status = 'PENDING'",
}


class PipelineTimeoutError(RuntimeError):
    """The stack did not finish within the bound; the message says what was left."""


class PipelineProbe:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def scalar(self, sql: str, **params: object) -> int:
        async with self.engine.connect() as connection:
            return int((await connection.execute(text(sql), params)).scalar_one())

    async def alerted(self, evidence: Sequence[str], seconds: float) -> None:
        """Waits until signals citing ``evidence`` exist and every signal (those of the same record, such as its
        clocks, included) has its notifier alert."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.scalar(SIGNALS_CITING, keys=list(evidence)) and not await self.scalar(UNALERTED):
                return
            await asyncio.sleep(POLL_SECONDS)
        raise PipelineTimeoutError(f"no alert for the signals citing {', '.join(evidence)} within {seconds:.0f}s")

    async def sent(self, evidence: Sequence[str], seconds: float) -> None:
        """Waits until signals citing ``evidence`` exist, each with its alert, and the immediate ones went out."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with self.engine.connect() as connection:
                row = (await connection.execute(text(UNSENT_ALERTS), {"keys": list(evidence)})).one()
            if row.signals and not row.unsent and not await self.scalar(UNALERTED):
                return
            await asyncio.sleep(POLL_SECONDS)
        raise PipelineTimeoutError(f"the alerts about {', '.join(evidence)} did not go out within {seconds:.0f}s")

    async def evaluated(self, source: str, seconds: float) -> None:
        """Waits until safety_rules has evaluated the record ``source`` (REC:STUDY:DOMAIN:RECID)."""
        deadline = time.monotonic() + seconds
        sql = "SELECT count(*) FROM safety_rules.processed_source WHERE dedup_key LIKE :prefix"
        while time.monotonic() < deadline:
            if await self.scalar(sql, prefix=source.replace("%", r"\%").replace("_", r"\_") + ":%"):
                return
            await asyncio.sleep(POLL_SECONDS)
        raise PipelineTimeoutError(f"{source} not evaluated by safety_rules within {seconds:.0f}s")

    async def backlog(self) -> dict[str, int]:
        return {name: await self.scalar(sql, events=EVENTS) for name, sql in BACKLOG.items()}

    async def drained(self, seconds: float, settle: float = 1.0) -> float:
        """Waits until nothing is left anywhere (twice in a row, ``settle`` apart); returns the seconds taken."""
        started = time.monotonic()
        left: dict[str, int] = {}
        quiet = 0
        while time.monotonic() - started < seconds:
            left = {name: count for name, count in (await self.backlog()).items() if count}
            quiet = quiet + 1 if not left else 0
            if quiet >= 2:
                return time.monotonic() - started
            await asyncio.sleep(settle if not left else POLL_SECONDS * 5)
        raise PipelineTimeoutError(f"the stack did not drain within {seconds:.0f}s: {left}")
