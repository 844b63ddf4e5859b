"""Set-based work on a chunk staged in a temporary table: pinning failing records, fallbacks.

The fast paths never look at single records. When the database refuses a chunk as a whole, the
chunk is staged and SQL finds which records are at fault, so that only those fail and the rest
are applied; one statement per record is the last resort, for refusals SQL cannot explain.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.outcomes import ERRORS_SCHEMA, RECORD_NUMBER, empty_errors
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Dataset
from batchyard.targets.dialect import Dialect, quote
from batchyard.targets.session import DatabaseError, Session
from batchyard.targets.values import Values, key_text

RN = quote(RECORD_NUMBER)
_stage_numbers = itertools.count(1)

#: Builds a statement that applies the staged rows (alias ``s``) matching a WHERE condition.
Statement = Callable[[str], str]


@dataclass
class Chunk:
    """One chunk being applied: where, to which dataset, and its records."""

    session: Session
    dialect: Dialect
    dataset: Dataset
    #: The dataset's columns and RECORD_NUMBER, as validated (before conversion).
    valid: pa.Table
    stage: str = field(default="", init=False)

    @property
    def table(self) -> str:
        return self.dialect.dataset_table(self.dataset.name)

    def key_match(self, left: str, right: str) -> str:
        return " AND ".join(
            f"{left}.{quote(k)} = {right}.{quote(k)}" for k in self.dataset.primary_key
        )

    def create_stage(self, columns: tuple[str, ...]) -> str:
        """Stage ``columns`` of the chunk in a new temporary table without constraints.

        Its name is no identifier (it has a space): a dataset's table can never share it, even
        where an unqualified name finds temporary tables first (SQLite's bulk ingest).
        """
        stage_name = f"batchyard stage {next(_stage_numbers)}"
        self.stage = quote(stage_name)
        definitions = [
            f"{quote(name)} {self.dialect.column_type(column)}"
            for name in columns
            if (column := self.dataset.column(name)) is not None
        ]
        definitions.append(f"{RN} {self.dialect.integer_type} NOT NULL")
        self.session.execute(f"CREATE TEMP TABLE {self.stage} ({', '.join(definitions)})")
        rows = self.dialect.convert(self.valid.select([*columns, RECORD_NUMBER]), self.dataset)
        self.session.ingest(stage_name, rows, temporary=True)
        return self.stage

    def drop_stage(self) -> None:
        self.session.execute(f"DROP TABLE {self.stage}")


def pin_by_key(chunk: Chunk, condition: str) -> pa.Table:
    """Pin staged records by key and remove them from the stage.

    Returns (record_number, in_target, occurrence) of the records meeting ``condition``, where
    in_target is 1 if the target holds the key and occurrence counts the key's appearances in
    the chunk so far (1 for the first, in input order).
    """
    pinned = (
        f"SELECT rn, in_target, occurrence FROM (SELECT s.{RN} AS rn,"
        f" CASE WHEN EXISTS (SELECT 1 FROM {chunk.table} t WHERE {chunk.key_match('t', 's')})"
        " THEN 1 ELSE 0 END AS in_target, ROW_NUMBER() OVER (PARTITION BY "
        + ", ".join(f"s.{quote(k)}" for k in chunk.dataset.primary_key)
        + f" ORDER BY s.{RN}) AS occurrence FROM {chunk.stage} s) p WHERE {condition}"
    )
    found = chunk.session.arrow(pinned + " ORDER BY rn")
    if found.num_rows:
        chunk.session.execute(
            f"DELETE FROM {chunk.stage} WHERE {RN} IN (SELECT rn FROM ({pinned}) q)"
        )
    return found.cast(
        pa.schema([("rn", pa.int64()), ("in_target", pa.int64()), ("occurrence", pa.int64())])
    )


def key_failures(chunk: Chunk, pinned: pa.Table, code: RecordErrorCode, suffix: Values) -> pa.Table:
    """ERRORS_SCHEMA rows for pinned records: "primary key (id)=(42)" + each record's suffix."""
    records = _records(chunk, pinned.column("rn"))
    keys = key_text(records, chunk.dataset.primary_key)
    prefix = f"primary key ({', '.join(chunk.dataset.primary_key)})=("
    join: Any = pc.binary_join_element_wise
    messages = cast(Values, join(prefix, keys, ")", suffix, ""))
    return failures_table(records.column(RECORD_NUMBER), code, messages, keys)


def apply_staged(chunk: Chunk, statement: Statement, where: str) -> pa.Table:
    """Run ``statement`` for the staged rows ``where``; on refusal retry record by record."""
    try:
        with chunk.session.savepoint():
            chunk.session.execute(statement(where))
    except DatabaseError:
        return _apply_one_by_one(chunk, statement)
    return empty_errors()


def _apply_one_by_one(chunk: Chunk, statement: Statement) -> pa.Table:
    """The last resort: each staged record in input order under its own savepoint."""
    session = chunk.session
    numbers = [row[0] for row in session.rows(f"SELECT {RN} FROM {chunk.stage} ORDER BY {RN}")]
    single = statement(f"s.{RN} = {session.param(1)}")
    refused: dict[int, str] = {}
    for number in numbers:
        try:
            with session.savepoint():
                session.execute(single, (number,))
        except DatabaseError as exc:
            refused[int(number)] = f"refused by the target database: {exc}"
    if not refused:
        return empty_errors()
    records = _records(chunk, pa.array(list(refused), pa.int64()))
    numbers_in_order = [int(n) for n in records.column(RECORD_NUMBER).to_pylist() if n is not None]
    messages = pa.array([refused[n] for n in numbers_in_order], pa.string())
    keys = key_text(records, chunk.dataset.primary_key) if chunk.dataset.primary_key else None
    return failures_table(
        records.column(RECORD_NUMBER), RecordErrorCode.REJECTED_BY_TARGET, messages, keys
    )


def _records(chunk: Chunk, numbers: Values) -> pa.Table:
    """The chunk's records with these record numbers, in record-number order."""
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    mask = pc.is_in(chunk.valid.column(RECORD_NUMBER), value_set=numbers.cast(pa.int64()))
    return chunk.valid.filter(mask).sort_by(RECORD_NUMBER)


def failures_table(
    numbers: Values,
    code: RecordErrorCode,
    messages: Values,
    keys: Values | None,
) -> pa.Table:
    count = len(numbers)
    return pa.table(
        {
            "record_number": numbers,
            "column": pa.nulls(count, pa.string()),
            "code": pa.repeat(pa.scalar(code.value), count),
            "message": messages,
            "key": keys if keys is not None else pa.nulls(count, pa.string()),
            "raw": pa.nulls(count, pa.string()),
        },
        schema=ERRORS_SCHEMA,
    )
