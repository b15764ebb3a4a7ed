"""The data of a cut: every canonical event of the source records TrialWatch accepted up to the cut time
(ingest.raw_input.received_at, its ingestion ledger), in the order it accepted them, read from
PostgreSQL; and a hash of exactly that input (two packets of the same cut provably saw the same data).

Ingestion order, not the records' own RECEIVEDDTC, is the order the live engine saw: a dose sent before
an infection must count before it, whatever times the records carry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.events import CLINICAL_EVENT_ADAPTER, ClinicalEvent

#: The ledger's identity gives the acceptance order of records; within a record, the event id.
EVENTS = text("""
SELECT e.dedup_key, e.payload FROM ingest.canonical_event AS e
JOIN ingest.raw_input AS r ON r.source_key = e.dedup_key
WHERE e.study_id = :study AND r.received_at <= :cut
ORDER BY r.id, e.event_id
""")


@dataclass(frozen=True)
class Snapshot:
    study_id: str
    cut: datetime
    records: tuple[tuple[ClinicalEvent, ...], ...]  # the events of each source record, in ingestion order
    input_hash: str

    @property
    def event_count(self) -> int:
        return sum(len(record) for record in self.records)


def input_hash(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for dedup_key, payload in rows:
        digest.update(dedup_key.encode() + b"\t" + orjson.dumps(payload, option=orjson.OPT_SORT_KEYS) + b"\n")
    return digest.hexdigest()


def group_records(rows: Sequence[tuple[str, dict[str, Any]]]) -> tuple[tuple[ClinicalEvent, ...], ...]:
    """Consecutive events of one source record (dedup key) go to the engine together, as live."""
    records: list[list[ClinicalEvent]] = []
    previous: str | None = None
    for dedup_key, payload in rows:
        event = CLINICAL_EVENT_ADAPTER.validate_python(payload)
        if dedup_key != previous:
            records.append([])
            previous = dedup_key
        records[-1].append(event)
    return tuple(tuple(record) for record in records)


async def load_snapshot(database_url: str, study_id: str, cut: datetime) -> Snapshot:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = [
                (str(key), dict(payload))
                for key, payload in await connection.execute(EVENTS, {"study": study_id, "cut": cut})
            ]
    finally:
        await engine.dispose()
    return Snapshot(study_id, cut, group_records(rows), input_hash(rows))
