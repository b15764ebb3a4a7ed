"""notifier's tables, in the ``notifier`` schema (migrations 0001, 0004 and 0006).

- ``alert``: one per signal; ``state`` open -> notified -> acknowledged -> resolved; ``routing`` keeps the
  decision (mode, receivers, acknowledging roles, reasons, configuration version).
- ``delivery``: the senders' outbox: one row per (dispatch key, recipient, channel), never sent twice;
  ``status`` PENDING -> DELIVERED or FAILED; the attempt is recorded (``attempts``, ``lease_until``)
  before the connection opens, ``in_doubt_since`` just before the point of no return (SMTP DATA, the
  webhook request); ``unconfirmed`` says why a DELIVERED row has no ``server_reply`` (see sender.py).
  ``message_id`` is fixed when the row is written.
- ``timer``: digests, escalations and clock reminders, fired by the scheduler; they survive restarts.
- ``pause_event``: study pauses (HALT) and resumes (DSMB RESUME), from which inhibition is computed.
- ``outbox``: Kafka records (alert changes, REG records, dead letters) published by the relay.
- ``audit_log`` / ``audit_head``: the hash chain and, apart, its head.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, Table, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, OutboxMixin, ProcessedEventMixin, outbox_table_args

SCHEMA = "notifier"


class ProcessedEvent(ProcessedEventMixin, Base):
    __tablename__ = "processed_event"
    __table_args__ = ({"schema": SCHEMA},)


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
    __table_args__ = outbox_table_args(SCHEMA)


class Alert(Base):
    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_study_id_state", "study_id", "state"), {"schema": SCHEMA})

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
    routing: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    ack_due_at: Mapped[datetime | None]
    inhibited_by: Mapped[str | None] = mapped_column(Text)
    digest_timer_id: Mapped[int | None] = mapped_column(BigInteger)
    escalation_level: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    notified_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    ack_comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None]


class Delivery(Base):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("dispatch_key", "recipient", "channel"),
        Index("ix_delivery_pending", "next_attempt_at", postgresql_where=text("status = 'PENDING'")),
        Index("ix_delivery_alert_id", "alert_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dispatch_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str | None] = mapped_column(ForeignKey(f"{SCHEMA}.alert.alert_id"))
    alert_ids: Mapped[list[Any]]
    signal_id: Mapped[str | None] = mapped_column(Text)
    receiver: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    message: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reclaims: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    in_doubt_since: Mapped[datetime | None]
    server_reply: Mapped[str | None] = mapped_column(Text)
    unconfirmed: Mapped[str | None] = mapped_column(Text)


class Timer(Base):
    __tablename__ = "timer"
    __table_args__ = (
        Index("ix_timer_due", "fire_at", postgresql_where=text("fired_at IS NULL")),
        Index(
            "uq_timer_open_digest",
            "study_id",
            unique=True,
            postgresql_where=text("kind = 'digest' AND fired_at IS NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    study_id: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str | None] = mapped_column(Text)
    fire_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PauseEvent(Base):
    __tablename__ = "pause_event"
    __table_args__ = (Index("ix_pause_event_study_id", "study_id"), {"schema": SCHEMA})

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    study_id: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    alert_id: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[dict[str, Any] | None]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuditLog(Base):
    """Append-only; ``id`` is the chain's gap-free sequence number, assigned under the head's lock."""

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
    """The tip of each audit chain, kept apart and updated in the appending transaction."""

    __tablename__ = "audit_head"
    __table_args__ = ({"schema": SCHEMA},)

    chain: Mapped[str] = mapped_column(Text, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements: a many-row insert with Core is compiled once and
    cached, where the ORM's bulk insert handles every row in Python first."""
    return cast(Table, model.__table__)
