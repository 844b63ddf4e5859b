"""PostgreSQL targets: binary COPY through psycopg (postgresql_session.py), concurrent writers
allowed.

The datasets' tables live in one schema (``public`` unless configured), the chunk ledger in
batchyard's own schema, where the metadata is too when it shares the database.
"""

from __future__ import annotations

import pyarrow as pa

from batchyard.domain.schema import MAX_DECIMAL_PRECISION, Column, ColumnType, Dataset
from batchyard.targets import values
from batchyard.targets.dialect import Dialect, quote
from batchyard.targets.postgresql_session import connect_postgres
from batchyard.targets.session import Session

_TYPES = {
    ColumnType.STRING: "text",
    ColumnType.INTEGER: "bigint",
    ColumnType.FLOAT: "double precision",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.TIMESTAMP: "timestamptz",
    ColumnType.UUID: "uuid",
    ColumnType.JSON: "jsonb",
}

#: pg_advisory_xact_lock key that serializes batchyard's DDL ("batchyard" in ASCII, truncated).
_DDL_LOCK = 0x6261746368796172
#: The ledger's table name, in batchyard's own schema (and, before that schema, in ``public``).
LEDGER_NAME = "_batchyard_ledger"
LEGACY_SCHEMA = "public"


class PostgresDialect(Dialect):
    """Native types for every column type (numeric, timestamptz, uuid, jsonb)."""

    integer_type = "bigint"
    blob_type = "bytea"
    float_type = "double precision"
    shares_chunks = True

    def __init__(self, url: str, schema: str, own_schema: str) -> None:
        self.url = url
        #: Where the datasets' tables are.
        self.schema = schema
        #: Where the ledger is: batchyard's own schema, never the datasets'.
        self.own_schema = own_schema

    def connect(self) -> Session:
        return connect_postgres(self.url)

    def dataset_table(self, name: str) -> str:
        return f"{quote(self.schema)}.{quote(name)}"

    @property
    def ledger_table(self) -> str:
        return f"{quote(self.own_schema)}.{quote(LEDGER_NAME)}"

    def prepare(self, session: Session) -> None:
        for schema in (self.schema, self.own_schema):
            # Looked up first: CREATE SCHEMA needs the CREATE privilege even with IF NOT EXISTS.
            if not session.rows("SELECT to_regnamespace($1) IS NOT NULL", (schema,))[0][0]:
                session.execute(f"CREATE SCHEMA {quote(schema)}")
        old = f"{quote(LEGACY_SCHEMA)}.{quote(LEDGER_NAME)}"
        rows = session.rows(
            "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NULL",
            (old, self.ledger_table),
        )
        if rows[0][0]:  # a ledger from before the own schema: keep its chunks' outcomes
            session.execute(f"ALTER TABLE {old} SET SCHEMA {quote(self.own_schema)}")

    def ingest_dataset(self, session: Session, name: str, data: pa.Table) -> None:
        session.ingest(name, data, schema=self.schema)

    def column_type(self, column: Column) -> str:
        if column.type == ColumnType.DECIMAL:
            precision = column.precision or MAX_DECIMAL_PRECISION
            return f"numeric({precision},{column.scale or 0})"
        if column.type == ColumnType.STRING and column.max_length:
            return f"varchar({column.max_length})"
        return _TYPES[column.type]

    def convert(self, table: pa.Table, dataset: Dataset) -> pa.Table:
        return values.for_postgres(table, dataset)

    def table_columns(self, session: Session, table: str) -> list[str] | None:
        rows = session.rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            (self.schema, table),
        )
        return [str(row[0]) for row in rows] or None

    def delete_sql(self, table: str, stage: str, keys: tuple[str, ...], where: str) -> str:
        match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        target = self.dataset_table(table)
        return f"DELETE FROM {target} t USING {stage} s WHERE {match} AND ({where})"

    def serialize_ddl(self, session: Session) -> None:
        session.rows("SELECT pg_advisory_xact_lock($1)", (_DDL_LOCK,))

    def lock_chunk(self, session: Session, batch_id: str, chunk_index: int, *, wait: bool) -> bool:
        # The two-key form is a key space of its own, apart from the one-key _DDL_LOCK. Two
        # batches whose ids hash alike only wait for each other now and then; never wrong.
        if wait:
            session.rows(
                "SELECT pg_advisory_xact_lock(hashtext($1), $2::int)", (batch_id, chunk_index)
            )
            return True
        rows = session.rows(
            "SELECT pg_try_advisory_xact_lock(hashtext($1), $2::int)", (batch_id, chunk_index)
        )
        return bool(rows[0][0])
