"""ingest and safety_rules: JSON kept as written (``json``, not ``jsonb``) where it is only stored and read back.

The participant states (rewritten whole by every batch that touches a participant), the study state, the
canonical events and the outbox payloads are never queried inside; ``jsonb`` made PostgreSQL parse each
value into its binary form on every write (and reorder the keys, which the halting counts' order depended
on). ``json`` only checks the text. The participant states are also compressed with lz4 instead of pglz
where the server has it: writing 100 states of 33 kB took 650 ms as jsonb, 390 ms as json with pglz,
150 ms as json with lz4 (load average 12).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSON, JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (schema, table, column) moved from jsonb to json.
COLUMNS = (
    ("safety_rules", "participant_state", "state"),
    ("safety_rules", "study_state", "state"),
    ("safety_rules", "outbox", "payload"),
    ("ingest", "outbox", "payload"),
    ("ingest", "canonical_event", "payload"),
)


def upgrade() -> None:
    for schema, table, column in COLUMNS:
        op.alter_column(
            table, column, type_=JSON(), existing_type=JSONB(), postgresql_using=f"{column}::json", schema=schema
        )
    if _has_lz4():
        op.execute("ALTER TABLE safety_rules.participant_state ALTER COLUMN state SET COMPRESSION lz4")


def downgrade() -> None:
    op.execute("ALTER TABLE safety_rules.participant_state ALTER COLUMN state SET COMPRESSION default")
    for schema, table, column in COLUMNS:
        op.alter_column(
            table, column, type_=JSONB(), existing_type=JSON(), postgresql_using=f"{column}::jsonb", schema=schema
        )


def _has_lz4() -> bool:
    """Whether this server was built with lz4 (PostgreSQL 14+ ``--with-lz4``; Debian's packages are)."""
    query = text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    options = op.get_bind().execute(query).scalar_one_or_none()
    return "lz4" in (options or [])
