"""safety_rules: a participant's adverse events, injection-site reactions and doses in their own column
(``participant_state.facts``), written only when they changed; result rows compressed with lz4.

Every batch that touched a participant wrote its whole state row again, although a lab record (most of
them) changes none of these facts: they were rewritten, sent, checked and compressed for nothing (a third
of the row's bytes). ``facts`` NULL means the state row holds them, as every row written before this
migration does (and as ``SqlStateStore`` writes them); an update that leaves them out keeps the column's
stored value as it is (``services.safety_rules.adapters.participant_rows``). A participant's result rows
are now chunks of several results (and a participant's whole log when it is written again): lz4, as the
states, where the server has it.

Revision ID: 0010_rulespg
Revises: 0009_ingestpg
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSON

revision: str = "0010_rulespg"
down_revision: str | None = "0009_ingestpg"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "safety_rules"
#: Folds the facts back into the state rows (downgrade).
FOLD_BACK = """
UPDATE safety_rules.participant_state
SET state = (state::jsonb || facts::jsonb)::json, facts = NULL
WHERE facts IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("participant_state", sa.Column("facts", JSON(), nullable=True), schema=SCHEMA)
    if _has_lz4():
        op.execute("ALTER TABLE safety_rules.participant_state ALTER COLUMN facts SET COMPRESSION lz4")
        op.execute("ALTER TABLE safety_rules.participant_result ALTER COLUMN value SET COMPRESSION lz4")
    for table, column in (
        ("participant_state", "state"),
        ("participant_state", "facts"),
        ("participant_result", "value"),
    ):
        op.execute(f"ALTER TABLE safety_rules.{table} ALTER COLUMN {column} SET STATISTICS 0")


def downgrade() -> None:
    for table, column in (("participant_state", "state"), ("participant_result", "value")):
        op.execute(f"ALTER TABLE safety_rules.{table} ALTER COLUMN {column} SET STATISTICS -1")
    op.execute("ALTER TABLE safety_rules.participant_result ALTER COLUMN value SET COMPRESSION default")
    op.execute(FOLD_BACK)
    op.drop_column("participant_state", "facts", schema=SCHEMA)


def _has_lz4() -> bool:
    """Whether this server was built with lz4 (PostgreSQL 14+ ``--with-lz4``; Debian's packages are)."""
    query = text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    options = op.get_bind().execute(query).scalar_one_or_none()
    return "lz4" in (options or [])
