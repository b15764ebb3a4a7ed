"""safety_rules service: live pipeline tables (issue #4).

The signal table gets its recording order (``seq``, an identity) and keeps the published JSON text
as is (``json`` instead of ``jsonb``, which would reorder the keys of ``detail``), so that
`trialwatch signals` prints exactly what `trialwatch replay` prints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON, JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "safety_rules"


def upgrade() -> None:
    op.add_column("signal", sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False), schema=SCHEMA)
    op.create_unique_constraint("uq_signal_seq", "signal", ["seq"], schema=SCHEMA)
    op.create_index("ix_signal_recorded_at", "signal", ["recorded_at"], schema=SCHEMA)
    op.alter_column(
        "signal", "payload", type_=JSON(), existing_type=JSONB(), postgresql_using="payload::json", schema=SCHEMA
    )


def downgrade() -> None:
    op.alter_column(
        "signal", "payload", type_=JSONB(), existing_type=JSON(), postgresql_using="payload::jsonb", schema=SCHEMA
    )
    op.drop_index("ix_signal_recorded_at", "signal", schema=SCHEMA)
    op.drop_constraint("uq_signal_seq", "signal", schema=SCHEMA)
    op.drop_column("signal", "seq", schema=SCHEMA)
