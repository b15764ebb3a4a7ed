"""Service schemas and their first tables: ingest, safety_rules, notifier.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("ingest", "safety_rules", "notifier")
NOW = sa.text("now()")
TIMESTAMP = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _create_processed_event(schema: str) -> None:
    op.create_table(
        "processed_event",
        sa.Column("consumer_group", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("processed_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name="pk_processed_event"),
        schema=schema,
    )


def _create_outbox(schema: str) -> None:
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
        schema=schema,
    )
    op.create_index(
        "ix_outbox_pending", "outbox", ["id"], schema=schema, postgresql_where=sa.text("published_at IS NULL")
    )


def _create_ingest() -> None:
    op.create_table(
        "raw_input",
        _id(),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_raw_input"),
        sa.UniqueConstraint("source_key", name="uq_raw_input_source_key"),
        schema="ingest",
    )
    op.create_table(
        "canonical_event",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_canonical_event"),
        schema="ingest",
    )
    op.create_index("ix_canonical_event_dedup_key", "canonical_event", ["dedup_key"], schema="ingest")
    op.create_table(
        "quarantine",
        _id(),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        schema="ingest",
    )
    _create_outbox("ingest")


def _create_safety_rules() -> None:
    schema = "safety_rules"
    _create_processed_event(schema)
    op.create_table(
        "participant_state",
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("state", JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("study_id", "subject_id", name="pk_participant_state"),
        schema=schema,
    )
    op.create_table(
        "study_state",
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("state", JSONB(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("study_id", name="pk_study_state"),
        schema=schema,
    )
    op.create_table(
        "processed_source",
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("processed_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("dedup_key", name="pk_processed_source"),
        schema=schema,
    )
    op.create_table(
        "signal",
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name="pk_signal"),
        schema=schema,
    )
    _create_outbox(schema)


def _create_notifier() -> None:
    schema = "notifier"
    _create_processed_event(schema)
    op.create_table(
        "alert",
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alert"),
        sa.UniqueConstraint("signal_id", name="uq_alert_signal_id"),
        schema=schema,
    )
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
        sa.ForeignKeyConstraint(["alert_id"], ["notifier.alert.alert_id"], name="fk_delivery_alert_id_alert"),
        sa.UniqueConstraint("signal_id", "recipient", "channel", name="uq_delivery_signal_id_recipient_channel"),
        schema=schema,
    )
    op.create_table(
        "audit_log",
        _id(),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("detail", JSONB(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
        schema=schema,
    )
    op.create_table(
        "audit_head",
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("last_hash", sa.Text(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_audit_head"),
        schema=schema,
    )


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(sa.schema.CreateSchema(schema))
    _create_ingest()
    _create_safety_rules()
    _create_notifier()


TABLES = {
    "notifier": ("audit_head", "audit_log", "delivery", "alert", "processed_event"),
    "safety_rules": (
        "outbox",
        "signal",
        "processed_source",
        "study_state",
        "participant_state",
        "processed_event",
    ),
    "ingest": ("outbox", "quarantine", "canonical_event", "raw_input"),
}


def downgrade() -> None:
    for schema, tables in TABLES.items():
        for table in tables:
            op.drop_table(table, schema=schema)
        op.execute(sa.schema.DropSchema(schema))
