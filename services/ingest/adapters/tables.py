"""ingest's tables, in the ``ingest`` schema. Direct identifiers are blanked before any payload is stored.

``raw_input`` is also the accepted-source ledger: one row per accepted source record, keyed by its dedup
key (SAFETY_RULES §6), so a re-sent record is recognised in the same transaction that would publish it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Identity, Integer, PrimaryKeyConstraint, SmallInteger, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, OutboxMixin, outbox_table_args

SCHEMA = "ingest"


class RawInput(Base):
    """Each accepted source record once: its copy with direct identifiers blanked (``payload``), the SHA-256
    of the record as received, its format (hl7v2, fhir, records), channel (mllp, http, kafka) and position
    (``origin``). ``non_production`` marks HL7 MSH-11 T/D messages: acknowledged, never published."""

    __tablename__ = "raw_input"
    __table_args__ = ({"schema": SCHEMA},)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_key: Mapped[str] = mapped_column(Text, unique=True)
    format: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sha256: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    study_id: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(Text)
    non_production: Mapped[bool]
    event_count: Mapped[int] = mapped_column(Integer)


class CanonicalEvent(Base):
    """Every canonical event ingest produced, as published inside RecordIngested on trialwatch.events.v1.

    Keyed by (dedup key, event id): a record's events are found by its dedup key, and an event id is derived
    from its record's dedup key, so the pair is as unique as the id. One index instead of two (migration
    0008): the id alone (a random UUID) put each event at a random place of its own index.
    """

    __tablename__ = "canonical_event"
    __table_args__ = (PrimaryKeyConstraint("dedup_key", "event_id"), {"schema": SCHEMA})

    event_id: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    study_id: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # stored as written (migration 0005)
    recorded_at: Mapped[datetime]
    #: The event's place among its record's events (RecordIngested's order); NULL before migration 0009_ingestpg.
    ordinal: Mapped[int | None] = mapped_column(SmallInteger)


class Quarantine(Base):
    """A rejected record with the reason naming record and field, and what of it could be redacted."""

    __tablename__ = "quarantine"
    __table_args__ = ({"schema": SCHEMA},)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    channel: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)


class Outbox(OutboxMixin, Base):
    """One RecordIngested to publish. Since migration 0009_ingestpg the row names its record (``source_key``)
    and holds no payload: the message is that record's ledger row around its canonical events, written in
    the same transaction (``services.ingest.adapters.outbox_messages``). Older rows carry their payload."""

    __tablename__ = "outbox"
    __table_args__ = outbox_table_args(SCHEMA)

    # Nullable here only (the mixin's other outboxes always hold their payload); as written (migration 0005).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # type: ignore[assignment]
    source_key: Mapped[str | None] = mapped_column(Text)
