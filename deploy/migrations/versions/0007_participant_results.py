"""safety_rules: a participant's lab results one row each (``participant_result``), the rest of its state as before.

Every batch rewrote each participant it touched as one JSON value, mostly its results (59 of 66 kB after
the pipeline benchmark's 6,000 records), although a record adds one or a few. Now a result is written when
it is new or changed (``services.safety_rules.adapters.participant_rows``). Existing states are left as
they are: a state row that still holds its results is read as before and split at its next write.
Downgrade folds the rows back into the state rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLD_BACK = """
UPDATE safety_rules.participant_state AS p
SET state = (p.state::jsonb || jsonb_build_object(
        'results', (p.state::jsonb -> 'results') || r.results::jsonb))::json
FROM (
    SELECT study_id, subject_id, json_agg(value ORDER BY seq) AS results
    FROM safety_rules.participant_result
    GROUP BY study_id, subject_id
) AS r
WHERE r.study_id = p.study_id AND r.subject_id = p.subject_id
"""


def upgrade() -> None:
    op.create_table(
        "participant_result",
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", JSON(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "subject_id", "seq", name="pk_participant_result"),
        schema="safety_rules",
    )


def downgrade() -> None:
    op.execute(FOLD_BACK)
    op.drop_table("participant_result", schema="safety_rules")
