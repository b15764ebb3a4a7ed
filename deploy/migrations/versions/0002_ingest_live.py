"""ingest service: live pipeline tables (issue #4).

``raw_input`` becomes the accepted-source ledger (one row per accepted record, keyed by its dedup key)
and says where each record came from; ``quarantine`` says which channel and format a rejection came in.
New NOT NULL columns are backfilled for rows of the smoke skeleton, then lose their defaults.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "ingest"
# (table, column, type, backfill for existing rows)
NEW_COLUMNS: tuple[tuple[str, str, sa.types.TypeEngine[object], str], ...] = (
    ("raw_input", "study_id", sa.Text(), "''"),
    ("raw_input", "channel", sa.Text(), "'http'"),
    ("raw_input", "origin", sa.Text(), "''"),
    ("raw_input", "non_production", sa.Boolean(), "false"),
    ("raw_input", "event_count", sa.Integer(), "1"),
    ("quarantine", "channel", sa.Text(), "'http'"),
    ("quarantine", "format", sa.Text(), "'canonical-json'"),
)


def upgrade() -> None:
    for table, column, type_, backfill in NEW_COLUMNS:
        op.add_column(table, sa.Column(column, type_, nullable=False, server_default=sa.text(backfill)), schema=SCHEMA)
        op.alter_column(table, column, server_default=None, schema=SCHEMA)
    op.execute(  # the skeleton stored canonical events as JSON text; CASE keeps other text from the cast
        "UPDATE ingest.raw_input SET study_id = coalesce("
        "(CASE WHEN format = 'canonical-json' THEN payload::jsonb END) ->> 'study_id', '') "
        "WHERE format = 'canonical-json'"
    )


def downgrade() -> None:
    for table, column, _, _ in reversed(NEW_COLUMNS):
        op.drop_column(table, column, schema=SCHEMA)
