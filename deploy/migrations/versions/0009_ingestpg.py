"""ingest: the outbox row refers to its record instead of holding a copy of its RecordIngested.

A RecordIngested is its ledger row's fields (``raw_input``: dedup key, study, arrival time and channel)
around its canonical events (``canonical_event``), all written in the same transaction as the outbox row.
Storing it a second time in the outbox was a quarter of the WAL ingest writes (python -m bench.ingest_service:
~1.4 kB per record inserted, written again by the "published" update, of ~10 kB), plus PostgreSQL validating
and lz4-compressing 75 MB of JSON per 20,000 records. Now the outbox row names its record (``source_key``)
and leaves ``payload`` empty; the relay publishes the message ingest handed it after the commit, or, for a
row it does not hold in memory (after a restart), rebuilds the same bytes from those rows
(``services.ingest.adapters.outbox_messages``). ``canonical_event.ordinal`` keeps each event's place in its
record, which the rebuild needs (the event id, a UUID, does not give it). Rows written before this
migration keep their payload and are published from it.

Downgrade gives the rows without a payload one built from the same rows (equal as JSON; the arrival time
in PostgreSQL's notation).

Revision ID: 0009_ingestpg
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_ingestpg"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILL_PAYLOADS = """
UPDATE ingest.outbox AS o
SET payload = json_build_object(
    'record_id', o.event_id,
    'dedup_key', r.source_key,
    'study_id', r.study_id,
    'received_at', r.received_at,
    'channel', r.channel,
    'events', coalesce(
        (SELECT json_agg(c.payload ORDER BY c.ordinal, c.event_id)
         FROM ingest.canonical_event AS c WHERE c.dedup_key = r.source_key),
        '[]'::json))
FROM ingest.raw_input AS r
WHERE o.payload IS NULL AND r.source_key = o.source_key
"""


def upgrade() -> None:
    op.add_column("outbox", sa.Column("source_key", sa.Text(), nullable=True), schema="ingest")
    op.alter_column("outbox", "payload", nullable=True, schema="ingest")
    op.add_column("canonical_event", sa.Column("ordinal", sa.SmallInteger(), nullable=True), schema="ingest")


def downgrade() -> None:
    op.execute(FILL_PAYLOADS)
    op.drop_column("canonical_event", "ordinal", schema="ingest")
    op.alter_column("outbox", "payload", nullable=False, schema="ingest")
    op.drop_column("outbox", "source_key", schema="ingest")
