"""notifier's tables, in the ``notifier`` schema: alerts, deliveries and a hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, ProcessedEventMixin

SCHEMA = "notifier"


class ProcessedEvent(ProcessedEventMixin, Base):
    __tablename__ = "processed_event"
    __table_args__ = ({"schema": SCHEMA},)


class Alert(Base):
    """One alert per signal; ``state`` follows open -> notified -> acknowledged -> resolved."""

    __tablename__ = "alert"
    __table_args__ = ({"schema": SCHEMA},)

    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    signal_id: Mapped[str] = mapped_column(Text, unique=True)
    study_id: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Delivery(Base):
    """One notification of one signal to one recipient on one channel: never sent twice."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("signal_id", "recipient", "channel"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.alert.alert_id"))
    signal_id: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class AuditLog(Base):
    """Append-only; each entry's ``hash`` covers its content and the previous entry's hash."""

    __tablename__ = "audit_log"
    __table_args__ = ({"schema": SCHEMA},)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    recorded_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text, unique=True)


class AuditHead(Base):
    """The tip of each audit chain; locked while appending so entries form one sequence."""

    __tablename__ = "audit_head"
    __table_args__ = ({"schema": SCHEMA},)

    chain: Mapped[str] = mapped_column(Text, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
