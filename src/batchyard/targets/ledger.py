"""The ledger: one row per committed chunk, written in the same transaction as the chunk's rows.

``failures`` holds the chunk's ERRORS_SCHEMA table as an Arrow IPC stream (NULL when empty), so a
replay after a crash returns exactly the outcome of the first run, types and nulls included;
``outputs`` likewise holds what the operation answered per record (OUTPUTS_SCHEMA), so the
results of an operation with side effects elsewhere are the answers committed with the chunk.
Claiming a chunk inserts its row first (ON CONFLICT DO NOTHING): on PostgreSQL a second worker
applying the same chunk blocks on that row until the first commits, then sees it and skips.
The ledger is batchyard's own: its table (``Dialect.ledger_table``) is where no dataset's can be.
"""

from __future__ import annotations

import time

import pyarrow as pa

from batchyard.domain.outcomes import (
    ERRORS_SCHEMA,
    OUTPUTS_SCHEMA,
    ChunkOutcome,
    empty_errors,
    empty_outputs,
)
from batchyard.targets.dialect import Dialect
from batchyard.targets.session import DatabaseError, Session


def ledger_ddl(dialect: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {dialect.ledger_table} (batch_id TEXT NOT NULL,"
        f" chunk_index {dialect.integer_type} NOT NULL, succeeded {dialect.integer_type} NOT NULL,"
        f" failures {dialect.blob_type}, committed_ts {dialect.float_type} NOT NULL,"
        f" outputs {dialect.blob_type},"
        f" PRIMARY KEY (batch_id, chunk_index)){dialect.table_options}"
    )


def add_outputs_column(session: Session, dialect: Dialect) -> None:
    """Give a ledger made before operations had outputs its ``outputs`` column."""
    try:
        with session.savepoint():
            session.rows(f"SELECT outputs FROM {dialect.ledger_table} WHERE 1 = 0")
        return
    except DatabaseError:
        pass
    session.execute(f"ALTER TABLE {dialect.ledger_table} ADD COLUMN outputs {dialect.blob_type}")


def claim_chunk(
    session: Session, table: str, batch_id: str, chunk_index: int
) -> ChunkOutcome | None:
    """Reserve (batch_id, chunk_index) in this transaction; its stored outcome if already done."""
    p = session.param
    claimed = session.rows(
        f"INSERT INTO {table} (batch_id, chunk_index, succeeded, committed_ts)"
        f" VALUES ({p(1)}, {p(2)}, 0, {p(3)}) ON CONFLICT DO NOTHING RETURNING chunk_index",
        (batch_id, chunk_index, time.time()),
    )
    if claimed:
        return None
    rows = session.rows(
        f"SELECT chunk_index, succeeded, failures, outputs FROM {table}"
        f" WHERE batch_id = {p(1)} AND chunk_index = {p(2)}",
        (batch_id, chunk_index),
    )
    return _outcome(rows[0])


def record_chunk(session: Session, table: str, batch_id: str, outcome: ChunkOutcome) -> None:
    """Store ``outcome`` in the row claim_chunk reserved."""
    p = session.param
    session.execute(
        f"UPDATE {table} SET succeeded = {p(1)}, failures = {p(2)}, committed_ts = {p(3)},"
        f" outputs = {p(4)} WHERE batch_id = {p(5)} AND chunk_index = {p(6)}",
        (
            outcome.succeeded,
            _dump(outcome.failures, ERRORS_SCHEMA),
            time.time(),
            _dump(outcome.outputs, OUTPUTS_SCHEMA),
            batch_id,
            outcome.index,
        ),
    )


def committed_chunks(session: Session, table: str, batch_id: str) -> dict[int, ChunkOutcome]:
    rows = session.rows(
        f"SELECT chunk_index, succeeded, failures, outputs FROM {table}"
        f" WHERE batch_id = {session.param(1)}",
        (batch_id,),
    )
    outcomes = (_outcome(row) for row in rows)
    return {outcome.index: outcome for outcome in outcomes}


def committed_counts(session: Session, table: str, batch_id: str) -> dict[int, int]:
    """Records applied per committed chunk, without loading any chunk's failures."""
    rows = session.rows(
        f"SELECT chunk_index, succeeded FROM {table} WHERE batch_id = {session.param(1)}",
        (batch_id,),
    )
    return {int(str(index)): int(str(succeeded)) for index, succeeded in rows}


def chunk_outcome(
    session: Session, table: str, batch_id: str, chunk_index: int
) -> ChunkOutcome | None:
    """One committed chunk's outcome, failures included; None when it is not committed."""
    p = session.param
    rows = session.rows(
        f"SELECT chunk_index, succeeded, failures, outputs FROM {table}"
        f" WHERE batch_id = {p(1)} AND chunk_index = {p(2)}",
        (batch_id, chunk_index),
    )
    return _outcome(rows[0]) if rows else None


def forget_batch(session: Session, table: str, batch_id: str) -> None:
    session.execute(f"DELETE FROM {table} WHERE batch_id = {session.param(1)}", (batch_id,))


def _outcome(row: tuple[object, ...]) -> ChunkOutcome:
    index, succeeded, failures, outputs = row
    return ChunkOutcome(
        index=int(str(index)),
        succeeded=int(str(succeeded)),
        failures=_load(failures) if failures is not None else empty_errors(),
        outputs=_load(outputs) if outputs is not None else empty_outputs(),
    )


def _dump(table: pa.Table, schema: pa.Schema) -> bytes | None:
    if table.num_rows == 0:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table.cast(schema))
    return bytes(sink.getvalue().to_pybytes())


def _load(blob: object) -> pa.Table:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise TypeError(f"ledger failures column holds {type(blob).__name__}, not bytes")
    return pa.ipc.open_stream(pa.py_buffer(bytes(blob))).read_all()
