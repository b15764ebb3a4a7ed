"""ingest: large text stored with lz4, no planner statistics for columns nothing filters on, and one index
on canonical_event instead of two.

Measured with ``python -m bench.ingest_service`` (20,000 records; perf on the PostgreSQL backends): pglz
compressing the outbox's RecordIngested payloads (3.8 kB each) was the largest single item of the
server's CPU for ingest (9 %), and autoanalyze a quarter of it (sorting every outbox row's ``headers``
jsonb, measuring every payload). A fresh insert of the run's outbox rows took 917 ms with pglz, 289 ms
with lz4 (the server's own ``INSERT ... SELECT``, load average 3). The columns below are only stored and
read back whole: the planner has no use for their statistics.

``canonical_event`` had a primary key on ``event_id`` (a random UUID: every insert lands on a random page of
that index) and an index on ``dedup_key``. An event id is derived from its record's dedup key, so
(``dedup_key``, ``event_id``) is as unique as the id, and serves the lookups by dedup key. Inserting the
run's 103,392 events: ~1.6 s with both indexes, ~1.05 s with the pair alone, ~0.7 s with none (load 4-5).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) in the ingest schema, compressed with lz4 where the server has it.
COMPRESSED = (("outbox", "payload"), ("canonical_event", "payload"), ("raw_input", "payload"))
#: (table, column) no query filters, joins or sorts on: ANALYZE skips them.
UNSTATISTICAL = (
    ("outbox", "headers"),
    ("outbox", "payload"),
    ("outbox", "last_error"),
    ("canonical_event", "payload"),
    ("raw_input", "payload"),
    ("raw_input", "sha256"),
    ("raw_input", "origin"),
)


def upgrade() -> None:
    op.drop_index("ix_canonical_event_dedup_key", table_name="canonical_event", schema="ingest")
    op.drop_constraint("pk_canonical_event", "canonical_event", schema="ingest", type_="primary")
    op.create_primary_key("pk_canonical_event", "canonical_event", ["dedup_key", "event_id"], schema="ingest")
    if _has_lz4():
        for table, column in COMPRESSED:
            op.execute(f"ALTER TABLE ingest.{table} ALTER COLUMN {column} SET COMPRESSION lz4")
    for table, column in UNSTATISTICAL:
        op.execute(f"ALTER TABLE ingest.{table} ALTER COLUMN {column} SET STATISTICS 0")


def downgrade() -> None:
    for table, column in UNSTATISTICAL:
        op.execute(f"ALTER TABLE ingest.{table} ALTER COLUMN {column} SET STATISTICS -1")
    for table, column in COMPRESSED:
        op.execute(f"ALTER TABLE ingest.{table} ALTER COLUMN {column} SET COMPRESSION default")
    op.drop_constraint("pk_canonical_event", "canonical_event", schema="ingest", type_="primary")
    op.create_primary_key("pk_canonical_event", "canonical_event", ["event_id"], schema="ingest")
    op.create_index("ix_canonical_event_dedup_key", "canonical_event", ["dedup_key"], schema="ingest")


def _has_lz4() -> bool:
    """Whether this server was built with lz4 (PostgreSQL 14+ ``--with-lz4``; Debian's packages are)."""
    query = text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    options = op.get_bind().execute(query).scalar_one_or_none()
    return "lz4" in (options or [])
