"""notifier: routing decisions, the senders' outbox, timers, pauses, a Kafka outbox; the SMTP sink (issue #5).

``delivery`` is recreated: the skeleton never wrote to it, and its unique key becomes (dispatch key,
recipient, channel) so that a digest, an escalation step or a reminder is one delivery per recipient and
channel too. The ``smtp_sink`` schema holds what the development SMTP sink receives (not a service's data:
it is outside ``shared.db.SERVICE_SCHEMAS`` and its table outside the ORM metadata).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notifier"
SINK = "smtp_sink"
NOW = sa.text("now()")
TIMESTAMP = sa.DateTime(timezone=True)


def _alert_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("routing", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("ack_due_at", TIMESTAMP, nullable=True),
        sa.Column("inhibited_by", sa.Text(), nullable=True),
        sa.Column("digest_timer_id", sa.BigInteger(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("notified_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("submitted_at", TIMESTAMP, nullable=True),
    )


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _create_delivery() -> None:
    op.create_table(
        "delivery",
        _id(),
        sa.Column("dispatch_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("alert_ids", JSONB(), nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=True),
        sa.Column("receiver", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("message", JSONB(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("resends", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("last_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.ForeignKeyConstraint(["alert_id"], [f"{SCHEMA}.alert.alert_id"], name="fk_delivery_alert_id_alert"),
        sa.UniqueConstraint("dispatch_key", "recipient", "channel", name="uq_delivery_dispatch_key_recipient_channel"),
        sa.UniqueConstraint("message_id", name="uq_delivery_message_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_delivery_pending",
        "delivery",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index("ix_delivery_alert_id", "delivery", ["alert_id"], schema=SCHEMA)


def _create_skeleton_delivery() -> None:
    op.create_table(
        "delivery",
        _id(),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.ForeignKeyConstraint(["alert_id"], [f"{SCHEMA}.alert.alert_id"], name="fk_delivery_alert_id_alert"),
        sa.UniqueConstraint("signal_id", "recipient", "channel", name="uq_delivery_signal_id_recipient_channel"),
        schema=SCHEMA,
    )


def _create_timer() -> None:
    op.create_table(
        "timer",
        _id(),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("fire_at", TIMESTAMP, nullable=False),
        sa.Column("fired_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("detail", JSONB(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timer"),
        sa.UniqueConstraint("key", name="uq_timer_key"),
        schema=SCHEMA,
    )
    op.create_index("ix_timer_due", "timer", ["fire_at"], schema=SCHEMA, postgresql_where=sa.text("fired_at IS NULL"))
    op.create_index(
        "uq_timer_open_digest",
        "timer",
        ["study_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("kind = 'digest' AND fired_at IS NULL"),
    )


def _create_pause_event() -> None:
    op.create_table(
        "pause_event",
        _id(),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("facts", JSONB(), nullable=True),
        sa.Column("recorded_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pause_event"),
        sa.UniqueConstraint("source_id", name="uq_pause_event_source_id"),
        schema=SCHEMA,
    )
    op.create_index("ix_pause_event_study_id", "pause_event", ["study_id"], schema=SCHEMA)


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        _id(),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_outbox_pending", "outbox", ["id"], schema=SCHEMA, postgresql_where=sa.text("published_at IS NULL")
    )


def _create_smtp_sink() -> None:
    op.execute(sa.schema.CreateSchema(SINK))
    op.create_table(
        "message",
        _id(),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_tos", JSONB(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("receptions", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("last_received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message"),
        sa.UniqueConstraint("message_id", name="uq_message_message_id"),
        schema=SINK,
    )


def upgrade() -> None:
    for column in _alert_columns():
        op.add_column("alert", column, schema=SCHEMA)
    op.create_index("ix_alert_study_id_state", "alert", ["study_id", "state"], schema=SCHEMA)
    op.drop_table("delivery", schema=SCHEMA)
    _create_delivery()
    _create_timer()
    _create_pause_event()
    _create_outbox()
    _create_smtp_sink()


def downgrade() -> None:
    op.drop_table("message", schema=SINK)
    op.execute(sa.schema.DropSchema(SINK))
    for table in ("outbox", "pause_event", "timer", "delivery"):
        op.drop_table(table, schema=SCHEMA)
    _create_skeleton_delivery()
    op.drop_index("ix_alert_study_id_state", "alert", schema=SCHEMA)
    for column in reversed(_alert_columns()):
        op.drop_column("alert", column.name, schema=SCHEMA)
