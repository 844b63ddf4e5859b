"""SQLAlchemy Core tables of the metadata database (the shape the migrations must produce).

Kept apart from the domain and the API schemas on purpose: a column added here changes neither.
Timestamps are epoch seconds as doubles; JSON values are Text so both backends store the same.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The PostgreSQL schema holding batchyard's own tables (and the job queue's): datasets' tables
#: live in another (settings.target_schema), so no dataset name can ever reach these.
#: The tables are declared without a schema; on PostgreSQL every connection maps them here
#: (``schema_translate_map``) and searches only here, while SQLite keeps them in its own file.
SCHEMA = "batchyard"

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: 64-bit ids that are still SQLite's rowid (only "INTEGER PRIMARY KEY" aliases it there).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_ts", sa.Double, nullable=False),
    # Bumped to rotate the user's webhook secret, which is derived from the server secret and
    # this number: no webhook secret is ever stored.
    sa.Column("webhook_secret_version", sa.Integer, nullable=False, server_default="0"),
)

#: Custom roles (the built-in ones are defined in code): statements as JSON text.
roles = sa.Table(
    "roles",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("statements", sa.Text, nullable=False),
    sa.Column("sees_all_batches", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_ts", sa.Double, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String, nullable=False, unique=True),
    sa.Column("created_ts", sa.Double, nullable=False),
    sa.Column("expires_ts", sa.Double, nullable=True),
    sa.Column("revoked_ts", sa.Double, nullable=True),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("owner_id", sa.String, nullable=True),
    sa.Column("created_ts", sa.Double, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
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
    sa.Column("total_operations", sa.BigInteger, nullable=True),
    sa.Column("processed_operations", sa.BigInteger, nullable=False),
    sa.Column("successful_operations", sa.BigInteger, nullable=False),
    sa.Column("failed_operations", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("notify_url", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.String, nullable=True),
    # What the keyed create asked for: a retry with the same key must ask for the same thing.
    sa.Column("idempotency_fingerprint", sa.String, nullable=True),
    # Webhook outbox: "pending" until the terminal-status POST is delivered or given up.
    sa.Column("notify_state", sa.String, nullable=True),
    sa.Column("notify_lease_ts", sa.Double, nullable=True),
    # NULL keys never collide (both backends treat NULLs as distinct), so only keyed
    # creates are deduplicated, and per owner.
    sa.UniqueConstraint("owner_id", "idempotency_key"),
    # Keyset pagination orders by (created_ts, id): one index per listing filter.
    sa.Index(None, "owner_id", "created_ts", "id"),
    sa.Index(None, "status", "created_ts", "id"),
    sa.Index(None, "created_ts", "id"),
    sa.Index(None, "notify_state"),
    # Retention finds the batches that ended longest ago.
    sa.Index(None, "completed_ts"),
)

batch_history = sa.Table(
    "batch_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id"), nullable=False, index=True),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("total_operations", sa.BigInteger, nullable=True),
    sa.Column("processed_operations", sa.BigInteger, nullable=False),
    sa.Column("successful_operations", sa.BigInteger, nullable=False),
    sa.Column("failed_operations", sa.BigInteger, nullable=False),
    # The id of the batch's last log line when the snapshot was taken (0: none yet).
    sa.Column("log_upto", sa.BigInteger, nullable=False),
    sa.Column("updated_ts", sa.Double, nullable=False),
    sqlite_autoincrement=True,
)

batch_log = sa.Table(
    "batch_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("level", sa.String, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index(None, "batch_id", "id"),
    # Ids must only grow (SQLite would reuse the largest after a delete), because history
    # snapshots mark "the log so far" by id.
    sqlite_autoincrement=True,
)
