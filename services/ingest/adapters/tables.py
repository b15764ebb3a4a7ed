"""ingest's tables, in the ``ingest`` schema. Direct identifiers are blanked before any payload is stored.

``raw_input`` is also the accepted-source ledger: one row per accepted source record, keyed by its dedup
key (SAFETY_RULES §6), so a re-sent record is recognised in the same transaction that would publish it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Identity, Integer, PrimaryKeyConstraint, Text, func
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
    __tablename__ = "outbox"
    __table_args__ = outbox_table_args(SCHEMA)

    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # RecordIngested as ingest wrote it (migration 0005)
