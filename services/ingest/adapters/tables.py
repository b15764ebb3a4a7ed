"""ingest's tables, in the ``ingest`` schema. Direct identifiers are blanked before any payload is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, OutboxMixin, outbox_table_args

SCHEMA = "ingest"


class RawInput(Base):
    """Each accepted source record once, redacted, with the SHA-256 of the original bytes."""

    __tablename__ = "raw_input"
    __table_args__ = ({"schema": SCHEMA},)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_key: Mapped[str] = mapped_column(Text, unique=True)
    format: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sha256: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class CanonicalEvent(Base):
    """Every canonical event ingest produced, as published on trialwatch.events.v1."""

    __tablename__ = "canonical_event"
    __table_args__ = ({"schema": SCHEMA},)

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(Text, index=True)
    kind: Mapped[str] = mapped_column(Text)
    study_id: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class Quarantine(Base):
    """A rejected record with the reason naming record and field; payload only once redactable."""

    __tablename__ = "quarantine"
    __table_args__ = ({"schema": SCHEMA},)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
    __table_args__ = outbox_table_args(SCHEMA)
