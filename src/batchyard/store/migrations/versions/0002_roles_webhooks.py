"""Custom roles, rotatable webhook secrets, idempotency fingerprints and the webhook outbox.

Revision ID: 0002_roles_webhooks
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_roles_webhooks"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("statements", sa.Text, nullable=False),
        sa.Column("sees_all_batches", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_roles"),
    )
    op.add_column(
        "users",
        sa.Column("webhook_secret_version", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("batches", sa.Column("idempotency_fingerprint", sa.String, nullable=True))
    op.add_column("batches", sa.Column("notify_state", sa.String, nullable=True))
    op.add_column("batches", sa.Column("notify_lease_ts", sa.Double, nullable=True))
    op.create_index("ix_batches_notify_state", "batches", ["notify_state"])


def downgrade() -> None:
    op.drop_index("ix_batches_notify_state", table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("notify_lease_ts")
        batch.drop_column("notify_state")
        batch.drop_column("idempotency_fingerprint")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("webhook_secret_version")
    op.drop_table("roles")
