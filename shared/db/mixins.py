"""Columns of the two tables every consuming or publishing service has: processed_event and outbox.

A service declares its own mapped classes from these mixins, in its own schema, e.g.
``class Outbox(OutboxMixin, Base): __tablename__ = "outbox"; __table_args__ = outbox_table_args("ingest")``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column


class ProcessedEventMixin:
    """Idempotent consumer: one row per (consumer group, event id) that was fully processed."""

    consumer_group: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMixin:
    """Transactional outbox: written in the domain transaction, published later by the relay."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    topic: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]]
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


def outbox_table_args(schema: str) -> tuple[Any, ...]:
    """The pending-rows index (the relay's only query) and the service schema."""
    pending = Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL"))
    return (pending, {"schema": schema})
