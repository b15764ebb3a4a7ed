"""ingest's SQL side: an accepted event, its raw record and its outbox row are committed together."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import orjson
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.adapters.tables import CanonicalEvent, Outbox, Quarantine, RawInput
from shared.events import ClinicalEvent
from shared.messaging.outbox import OutboxMessage, enqueue
from shared.messaging.topics import EVENTS

CANONICAL_FORMAT = "canonical-json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_message(event: ClinicalEvent) -> OutboxMessage:
    """trialwatch.events.v1 record: keyed by study so a study's events stay in order."""
    return OutboxMessage(
        event_id=event.event_id,
        topic=EVENTS,
        key=event.study_id,
        payload=event.model_dump(mode="json"),
        headers={"kind": event.kind, "schema_version": str(event.schema_version)},
    )


class IngestStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[], None]) -> None:
        self._sessions = sessions
        self._on_commit = on_commit

    async def accept(self, event: ClinicalEvent, raw: bytes) -> bool:
        """Stores and queues ``event``; False when its event id was accepted before (nothing changes)."""
        payload = event.model_dump(mode="json")
        async with self._sessions.begin() as session:
            fresh = insert(CanonicalEvent).values(
                event_id=event.event_id,
                dedup_key=event.dedup_key,
                kind=event.kind,
                study_id=event.study_id,
                subject_id=event.subject_id,
                payload=payload,
                recorded_at=event.recorded_at,
            )
            created = await session.execute(fresh.on_conflict_do_nothing().returning(CanonicalEvent.event_id))
            if created.first() is None:
                return False
            await self._keep_raw(session, event, raw)
            await enqueue(session, Outbox, event_message(event))
        self._on_commit()
        return True

    @staticmethod
    async def _keep_raw(session: AsyncSession, event: ClinicalEvent, raw: bytes) -> None:
        """A canonical event holds no direct identifiers (its schema forbids extra keys): kept as parsed."""
        record = insert(RawInput).values(
            source_key=event.dedup_key,
            format=CANONICAL_FORMAT,
            sha256=sha256_hex(raw),
            payload=orjson.dumps(event.model_dump(mode="json")).decode(),
        )
        await session.execute(record.on_conflict_do_nothing(index_elements=["source_key"]))

    async def quarantine(self, source: str, error: str, raw: bytes) -> None:
        """A rejected body is kept as its hash only: unparsed input cannot be redacted field by field."""
        async with self._sessions.begin() as session:
            session.add(Quarantine(source=source, error=error, sha256=sha256_hex(raw), payload=None))
