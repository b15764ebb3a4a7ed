"""notifier: deliveries record the point of no return, so a crash mid-send never sends a message twice.

``in_doubt_since`` is committed just before the message can be accepted (before SMTP DATA, before the
webhook request); a delivery found with it set and its lease run out is not sent again but recorded
DELIVERED with ``unconfirmed`` saying why. ``server_reply`` keeps the receiver's answer to a confirmed
delivery. ``resends`` becomes ``reclaims``: nothing is re-sent any more; the column counts attempts
taken over after a lease ran out before the point of no return.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notifier"
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("delivery", sa.Column("in_doubt_since", TIMESTAMP, nullable=True), schema=SCHEMA)
    op.add_column("delivery", sa.Column("server_reply", sa.Text(), nullable=True), schema=SCHEMA)
    op.add_column("delivery", sa.Column("unconfirmed", sa.Text(), nullable=True), schema=SCHEMA)
    op.alter_column("delivery", "resends", new_column_name="reclaims", schema=SCHEMA)


def downgrade() -> None:
    op.alter_column("delivery", "reclaims", new_column_name="resends", schema=SCHEMA)
    op.drop_column("delivery", "unconfirmed", schema=SCHEMA)
    op.drop_column("delivery", "server_reply", schema=SCHEMA)
    op.drop_column("delivery", "in_doubt_since", schema=SCHEMA)
