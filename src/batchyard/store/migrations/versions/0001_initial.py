"""Initial schema: users, tokens, datasets, batches, batch_history, batch_log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types this revision created; tables.py may move on, this file may not.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column("total_operations", sa.BigInteger, nullable=True),
        sa.Column("processed_operations", sa.BigInteger, nullable=False),
        sa.Column("successful_operations", sa.BigInteger, nullable=False),
        sa.Column("failed_operations", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("token_hash", sa.String, nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("expires_ts", sa.Double, nullable=True),
        sa.Column("revoked_ts", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_tokens_user_id_users"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "datasets",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("owner_id", sa.String, nullable=True),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_datasets"),
    )
    _create_batches()
    _create_batch_history()
    _create_batch_log()


def _create_batches() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("owner_id", sa.String, nullable=False),
        sa.Column("dataset", sa.String, nullable=False),
        sa.Column("operation", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("format", sa.String, nullable=True),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("updated_ts", sa.Double, nullable=False),
        sa.Column("started_ts", sa.Double, nullable=True),
        sa.Column("completed_ts", sa.Double, nullable=True),
        *_counts(),
        sa.Column("hash", sa.String, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("notify_url", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint(
            "owner_id", "idempotency_key", name="uq_batches_owner_id_idempotency_key"
        ),
    )
    op.create_index(
        "ix_batches_owner_id_created_ts_id", "batches", ["owner_id", "created_ts", "id"]
    )
    op.create_index("ix_batches_status_created_ts_id", "batches", ["status", "created_ts", "id"])
    op.create_index("ix_batches_created_ts_id", "batches", ["created_ts", "id"])


def _create_batch_history() -> None:
    op.create_table(
        "batch_history",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("batch_id", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        *_counts(),
        sa.Column("log_upto", sa.BigInteger, nullable=False),
        sa.Column("updated_ts", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batch_history"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_history_batch_id_batches"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_batch_history_batch_id", "batch_history", ["batch_id"])


def _create_batch_log() -> None:
    op.create_table(
        "batch_log",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("batch_id", sa.String, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("level", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batch_log"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_batch_log_batch_id_batches"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_batch_log_batch_id_id", "batch_log", ["batch_id", "id"])


def downgrade() -> None:
    for table in ("batch_log", "batch_history", "batches", "datasets", "tokens", "users"):
        op.drop_table(table)
