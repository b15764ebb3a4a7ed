"""safety_rules service: live pipeline tables (issue #4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the safety_rules live-pipeline work."""


def downgrade() -> None:
    """Reverse of upgrade."""
