"""An index on batches.completed_ts, for deleting batches that ended before the retention period.

Revision ID: 0003_retention
Revises: 0002_roles_webhooks
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_retention"
down_revision: str | None = "0002_roles_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_batches_completed_ts", "batches", ["completed_ts"])


def downgrade() -> None:
    op.drop_index("ix_batches_completed_ts", table_name="batches")
