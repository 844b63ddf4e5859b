"""batchyard's own tables are out of reach of datasets, and older deployments are moved there.

On PostgreSQL the metadata, Alembic's version table, procrastinate's queue and the chunk ledger
live in the schema ``batchyard``; the datasets' tables in ``BATCHYARD_TARGET_SCHEMA``. On SQLite
the metadata is another file and the ledger's name is no identifier.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from procrastinate.schema import SchemaManager
from pydantic import ValidationError

from batchyard.domain.batches import Operation
from batchyard.domain.errors import InvalidSchema
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER, ChunkOutcome, empty_errors
from batchyard.runner.queue_schema import apply_queue_schema, libpq_url
from batchyard.runner.queue_sql import RUN_BATCH, defer_job
from batchyard.settings import Settings
from batchyard.store import users as user_rows
from batchyard.store.database import MetadataStore
from batchyard.store.tables import metadata
from batchyard.targets import Target, open_target

OLD_LEDGER_DDL = (
    'CREATE TABLE "_batchyard_ledger" (batch_id TEXT NOT NULL, chunk_index {int} NOT NULL,'
    " succeeded {int} NOT NULL, failures {blob}, committed_ts {float} NOT NULL,"
    " PRIMARY KEY (batch_id, chunk_index))"
)


def _dataset(name: str) -> Dataset:
    return Dataset(
        name,
        (Column("id", ColumnType.INTEGER, nullable=False), Column("note", ColumnType.STRING)),
        primary_key=("id",),
    )


def _rows(*ids: int, note: str = "x", first: int = 1) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "note": pa.array([f"{note}{i}" for i in ids], pa.string()),
            RECORD_NUMBER: pa.array(range(first, first + len(ids)), pa.int64()),
        }
    )


def _apply(target: Target, dataset: Dataset, batch: str, index: int, op: Operation, t: Any) -> int:
    with target.transaction() as tx:
        return tx.apply_chunk(dataset, batch, index, op, t).succeeded


@pytest.fixture
def target(target_url: str) -> Iterator[Target]:
    opened = open_target(target_url)
    try:
        yield opened
    finally:
        opened.close()


def test_any_identifier_names_a_table_of_its_own(target: Target) -> None:
    items = _dataset("items")
    target.ensure_table(items)
    assert _apply(target, items, "batch-0", 0, Operation.INSERT, _rows(1, 2)) == 2

    names = ["_batchyard_ledger", "_batchyard_stage_1", "pg_class", "information_schema"]
    for name in names:
        odd, batch = _dataset(name), f"batch-{name}"
        target.ensure_table(odd)
        assert _apply(target, odd, batch, 0, Operation.INSERT, _rows(1, 2, 3)) == 3
        assert _apply(target, odd, batch, 1, Operation.UPSERT, _rows(3, 4, first=4)) == 2
        assert _apply(target, odd, batch, 2, Operation.DELETE, _rows(1, first=6)) == 1
        # A replay of a chunk is still recognised: the ledger is not the dataset's table.
        assert _apply(target, odd, batch, 0, Operation.INSERT, _rows(9)) == 3

    assert [target.row_count(name) for name in names] == [3, 3, 3, 3]
    assert target.row_count("items") == 2
    assert set(target.committed_chunks("batch-0")) == {0}
    assert all(set(target.committed_chunks(f"batch-{name}")) == {0, 1, 2} for name in names)


def test_sqlite_reserves_its_own_prefix_with_a_clear_error(target: Target, backend: str) -> None:
    dataset = _dataset("sqlite_master")
    if backend == "sqlite":
        with pytest.raises(InvalidSchema, match="reserved by SQLite"):
            target.ensure_table(dataset)
        return
    target.ensure_table(dataset)
    assert _apply(target, dataset, "b", 0, Operation.INSERT, _rows(1)) == 1


def test_an_older_ledger_keeps_its_chunks(target_url: str, backend: str) -> None:
    """A ledger from before (named like a dataset could be) is moved, its outcomes kept."""
    blob, integer, floating = ("BLOB", "INTEGER", "REAL")
    if backend == "postgresql":
        blob, integer, floating = ("bytea", "bigint", "double precision")
    ddl = OLD_LEDGER_DDL.format(int=integer, blob=blob, float=floating)
    insert = "INSERT INTO \"_batchyard_ledger\" VALUES ('old-batch', 0, 41, NULL, 1.0)"
    if backend == "postgresql":
        with psycopg.connect(target_url) as conn:
            conn.execute(ddl)
            conn.execute(insert)
    else:
        with sqlite3.connect(target_url.removeprefix("sqlite:///")) as conn:
            conn.execute(ddl + " STRICT")
            conn.execute(insert)

    target = open_target(target_url)
    try:
        assert target.committed_chunks("old-batch") == {0: ChunkOutcome(0, 41, empty_errors())}
        dataset = _dataset("_batchyard_ledger")
        target.ensure_table(dataset)
        assert _apply(target, dataset, "new-batch", 0, Operation.INSERT, _rows(1)) == 1
        assert target.row_count("_batchyard_ledger") == 1
        assert set(target.committed_chunks("old-batch")) == {0}
    finally:
        target.close()


def test_datasets_go_to_the_configured_schema(pg_url: str) -> None:
    target = open_target(pg_url, schema="sales")
    try:
        target.ensure_table(_dataset("users"))
        assert _apply(target, _dataset("users"), "b", 0, Operation.INSERT, _rows(1, 2)) == 2
    finally:
        target.close()
    with psycopg.connect(pg_url) as conn:
        where = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('public', 'sales', 'batchyard') ORDER BY 1, 2"
        ).fetchall()
        assert where == [("batchyard", "_batchyard_ledger"), ("sales", "users")]
        assert conn.execute('SELECT count(*) FROM sales."users"').fetchone() == (2,)


@pytest.mark.parametrize("schema", ["batchyard", "pg_catalog", "information_schema", "Sales"])
def test_target_schema_cannot_be_batchyards_or_the_systems(schema: str) -> None:
    with pytest.raises(ValidationError):
        Settings(target_schema=schema)


async def test_an_older_deployment_is_moved_with_its_data(pg_url: str) -> None:
    """Metadata, version table, queue and ledger in ``public`` (the old layout) move over."""
    _create_old_layout(pg_url)
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")

    store = await MetadataStore.open(url)
    target = open_target(pg_url)
    try:
        assert await apply_queue_schema(libpq_url(url)) is False  # moved, not created again
        async with store.begin() as conn:
            assert (await user_rows.require_user(conn, "alice")).user_id == "u-1"
            await defer_job(conn, RUN_BATCH, "b-1")  # procrastinate's functions work there
        assert target.committed_chunks("b-1") == {0: ChunkOutcome(0, 5, empty_errors())}
    finally:
        target.close()
        await store.close()

    with psycopg.connect(pg_url) as conn:
        public = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public'"
        ).fetchone()
        assert public == (0,)
        leftovers = conn.execute(
            "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            " AND proname LIKE 'procrastinate%'), (SELECT count(*) FROM pg_type"
            " WHERE typnamespace = 'public'::regnamespace AND typname LIKE '%procrastinate%')"
        ).fetchone()
        assert leftovers == (0, 0)
        assert conn.execute("SELECT version_num FROM batchyard.alembic_version").fetchone()
        assert conn.execute("SELECT name, role FROM batchyard.users").fetchall() == [
            ("alice", "admin")
        ]
        statements = conn.execute("SELECT statements FROM batchyard.roles").fetchone()
        assert statements == (json.dumps([{"actions": ["get_*"]}]),)
        jobs = conn.execute(
            "SELECT args->>'batch_id' FROM batchyard.procrastinate_jobs ORDER BY id"
        ).fetchall()
        assert jobs == [("b-0",), ("b-1",)]


def _create_old_layout(pg_url: str) -> None:
    """What the code before the move left: every table (and the queue) in ``public``."""
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(
                sa.text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            )
            conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0003')"))
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, name, role, created_ts)"
                    " VALUES ('u-1', 'alice', 'admin', 1)"
                )
            )
            conn.execute(
                sa.text("INSERT INTO roles VALUES ('reader', :s, false, 1)"),
                {"s": json.dumps([{"actions": ["get_*"]}])},
            )
    finally:
        engine.dispose()
    with psycopg.connect(pg_url) as conn:
        conn.execute(SchemaManager.get_schema())
        conn.execute(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('batchyard', 'batchyard.run_batch', 0,"
            " 'batch:b-0', NULL, '{\"batch_id\": \"b-0\"}'::jsonb, NULL)]"
            "::procrastinate_job_to_defer_v1[])"
        )
        conn.execute(OLD_LEDGER_DDL.format(int="bigint", blob="bytea", float="double precision"))
        conn.execute("INSERT INTO \"_batchyard_ledger\" VALUES ('b-1', 0, 5, NULL, 1.0)")


@pytest.fixture
def limited_role(pg_url: str) -> Iterator[str]:
    """A login without CREATE on the database, owning the two schemas an operator made for it."""
    role = f"by_limited_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE SCHEMA batchyard AUTHORIZATION "{role}"')
        conn.execute(f'CREATE SCHEMA sales AUTHORIZATION "{role}"')
    try:
        yield role
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}" CASCADE')
            conn.execute(f'DROP ROLE "{role}"')


async def test_schemas_made_beforehand_need_no_create_privilege(
    pg_url: str, limited_role: str
) -> None:
    url = pg_url.replace("postgres@", f"{limited_role}@")
    store = await MetadataStore.open(url.replace("postgresql://", "postgresql+psycopg://"))
    await store.close()
    target = open_target(url, schema="sales")
    try:
        target.ensure_table(_dataset("roles"))
        assert _apply(target, _dataset("roles"), "b", 0, Operation.INSERT, _rows(1)) == 1
    finally:
        target.close()
