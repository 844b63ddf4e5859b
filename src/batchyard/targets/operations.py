"""The three operations, each applying one chunk's valid records set-wise inside a transaction.

Rules for a key repeated within one chunk, chosen to match applying the records one by one in
input order:

- insert: the first occurrence is inserted; later ones fail with DUPLICATE_KEY.
- upsert: the last occurrence's values are what the table holds; every occurrence succeeds.
- delete: the first occurrence deletes the row; later ones fail with KEY_NOT_FOUND (so the
  number of successful deletes is the number of rows removed).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import Operation
from batchyard.domain.errors import InvalidRequest
from batchyard.domain.outcomes import RECORD_NUMBER, empty_errors
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Dataset
from batchyard.targets.dialect import Dialect, quote
from batchyard.targets.session import DatabaseError, Session
from batchyard.targets.staging import RN, Chunk, apply_staged, key_failures, pin_by_key


def apply_records(
    session: Session, dialect: Dialect, dataset: Dataset, operation: Operation, valid: pa.Table
) -> pa.Table:
    """Apply ``valid`` to the dataset's table; the records the target refused (ERRORS_SCHEMA)."""
    if operation != Operation.INSERT and not dataset.primary_key:
        raise InvalidRequest(f"{operation.value} needs a dataset with a primary key")
    if valid.num_rows == 0:
        return empty_errors()
    chunk = Chunk(session, dialect, dataset, valid.select([*dataset.column_names, RECORD_NUMBER]))
    if operation == Operation.INSERT:
        return _insert(chunk)
    if operation == Operation.UPSERT:
        return _upsert(chunk)
    return _delete(chunk)


def _columns(dataset: Dataset, alias: str = "") -> str:
    return ", ".join(f"{alias}{quote(name)}" for name in dataset.column_names)


def _insert(chunk: Chunk) -> pa.Table:
    """COPY straight into the table; if refused, pin duplicate keys and insert the rest."""
    rows = chunk.dialect.convert(chunk.valid.drop_columns([RECORD_NUMBER]), chunk.dataset)
    try:
        with chunk.session.savepoint():
            chunk.dialect.ingest_dataset(chunk.session, chunk.dataset.name, rows)
        return empty_errors()
    except DatabaseError:
        pass  # some record breaks a constraint: find which, below
    dataset = chunk.dataset
    chunk.create_stage(dataset.column_names)
    failures = [empty_errors()]
    if dataset.primary_key:
        pinned = pin_by_key(chunk, "in_target = 1 OR occurrence > 1")
        suffix = pc.if_else(
            pc.equal(pinned.column("in_target"), pa.scalar(1, pa.int64())),
            " already exists",
            " already exists in an earlier record of this input",
        )
        failures.append(key_failures(chunk, pinned, RecordErrorCode.DUPLICATE_KEY, suffix))

    def insert(where: str) -> str:
        return (
            f"INSERT INTO {chunk.table} ({_columns(dataset)})"
            f" SELECT {_columns(dataset, 's.')} FROM {chunk.stage} s WHERE {where}"
        )

    failures.append(apply_staged(chunk, insert, "1 = 1"))
    chunk.drop_stage()
    return pa.concat_tables(failures)


def _upsert(chunk: Chunk) -> pa.Table:
    """INSERT … ON CONFLICT DO UPDATE from the stage; the last occurrence of a key wins."""
    dataset = chunk.dataset
    chunk.create_stage(dataset.column_names)
    keys = ", ".join(quote(k) for k in dataset.primary_key)
    others = [name for name in dataset.column_names if name not in dataset.primary_key]
    if others:
        updates = ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in others)
        action = f"DO UPDATE SET {updates}"
    else:
        action = "DO NOTHING"

    def upsert(where: str) -> str:
        return (
            f"INSERT INTO {chunk.table} ({_columns(dataset)})"
            f" SELECT {_columns(dataset, 's.')} FROM {chunk.stage} s WHERE {where}"
            f" ON CONFLICT ({keys}) {action}"
        )

    # One row per key: ON CONFLICT DO UPDATE may not touch the same row twice in one statement.
    last = f"s.{RN} IN (SELECT max({RN}) FROM {chunk.stage} GROUP BY {keys})"
    failures = apply_staged(chunk, upsert, last)
    chunk.drop_stage()
    return failures


def _delete(chunk: Chunk) -> pa.Table:
    """Pin keys the table does not hold (or an earlier record deleted), delete the rest."""
    dataset = chunk.dataset
    chunk.create_stage(dataset.primary_key)
    pinned = pin_by_key(chunk, "in_target = 0 OR occurrence > 1")
    suffix = pc.if_else(
        pc.equal(pinned.column("in_target"), pa.scalar(0, pa.int64())),
        " not found",
        " not found: an earlier record of this input deleted it",
    )
    failures = key_failures(chunk, pinned, RecordErrorCode.KEY_NOT_FOUND, suffix)

    def delete(where: str) -> str:
        return chunk.dialect.delete_sql(dataset.name, chunk.stage, dataset.primary_key, where)

    refused = apply_staged(chunk, delete, "1 = 1")
    chunk.drop_stage()
    return pa.concat_tables([failures, refused])
