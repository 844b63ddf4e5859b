"""Validation: a raw chunk's records typed per the dataset schema, or rejected with a reason.

Whole columns are checked with pyarrow.compute; Python only touches the records that fail (to
write their messages). A record fails on the first failing column in dataset order.

Raw tables name their columns by input field; the batch's ``Reading`` says which field each
column reads, so a mapped header costs a lookup, never a copy. A column whose field the input
lacks takes its default (the same text for every record) or is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.reading import Reading
from batchyard.domain.schema import Column, Dataset
from batchyard.pipeline.arrow_types import arrow_type, valid_schema
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk, ValidatedChunk
from batchyard.pipeline.defaults import default_values
from batchyard.pipeline.originals import as_text, original_fields
from batchyard.pipeline.validate_checks import Failure, check_column
from batchyard.pipeline.validate_text import FailedCasts
from batchyard.pipeline.validate_types import Arr, all_false

__all__ = ["validate_chunk"]


#: Failing records whose messages are built in one go: Python work on them holds the GIL,
#: so it goes in slices this small, and the event loop's thread gets it back between slices.
SLICE = 8192


@dataclass
class _Rejections:
    """The records rejected so far: a mask over the chunk, and (index, column, code, message)."""

    failed: Arr
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)

    def add(self, failure: Failure, column: str, originals: Arr | None) -> None:
        if not pc.any(failure.mask).as_py():  # most checks of most chunks: one kernel, not three
            return
        new: Arr = pc.and_(failure.mask, pc.invert(self.failed))
        if not pc.any(new).as_py():
            return
        indices: Arr = pc.indices_nonzero(new)
        for start in range(0, len(indices), SLICE):
            part = indices.slice(start, SLICE)
            shown = (
                [None] * len(part)
                if originals is None
                else as_text(originals.take(part)).to_pylist()
            )
            reasons = failure.explain(shown)
            for index, reason in zip(part.to_pylist(), reasons, strict=True):
                self.rows.append((index, column, failure.code.value, reason))
        self.failed = pc.or_(self.failed, failure.mask)


def _column(table: pa.Table, name: str | None) -> Arr | None:
    if name is None or name not in table.column_names:
        return None
    values = table.column(name)
    # combine_chunks copies even a single chunk: a chunk of the default size is one already.
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def _originals(table: pa.Table, column: Column, reading: Reading) -> Arr | None:
    """What the input sent for ``column``: its field, else its default, else None (missing)."""
    values = _column(table, reading.field_of(column))
    if values is None and column.default is not None:
        return default_values(column, table.num_rows)
    return values


def validate_chunk(
    raw: RawChunk,
    dataset: Dataset,
    reading: Reading | None = None,
    failed: FailedCasts | None = None,
) -> ValidatedChunk:
    """Type and check every record of ``raw``; each ends in exactly one of valid and errors.

    Columns the batch does not check (a delete's beyond its key) are left null, unread.
    ``failed`` carries from one chunk of a validation to the next which columns' whole casts
    failed, so that they are not tried again on every chunk (validate_text); the results are
    the same with or without it.
    """
    reading = reading if reading is not None else Reading.of(dataset)
    table = raw.table
    rejections = _Rejections(all_false(table.num_rows))
    typed_columns: list[Arr] = []
    for column in dataset.columns:
        if not reading.is_checked(column):
            unread: Any = arrow_type(column)
            typed_columns.append(pa.nulls(table.num_rows, unread))
            continue
        originals = _originals(table, column, reading)
        typed, failures = check_column(originals, column, table.num_rows, failed)
        typed_columns.append(typed)
        for failure in failures:
            rejections.add(failure, column.name, originals)
    numbers = _column(table, RECORD_NUMBER)
    numbers = numbers if numbers is not None else pa.array([], pa.int64())
    columns = [*typed_columns, numbers]
    if pc.any(rejections.failed).as_py():  # a clean chunk keeps its columns, uncopied
        keep: Arr = pc.invert(rejections.failed)
        columns = [pc.filter(a, keep) for a in columns]
    valid = pa.Table.from_arrays(columns, schema=valid_schema(dataset))
    errors = _all_errors(rejections, raw, reading)
    return ValidatedChunk(raw.index, raw.first_record, raw.record_count, valid, errors)


def _all_errors(rejections: _Rejections, raw: RawChunk, reading: Reading) -> pa.Table:
    """The reader's errors and the rejections, in record order.

    Most chunks have neither: concatenating and sorting two empty tables cost about 0.15 ms a
    chunk, so a chunk without rejections keeps the reader's errors as they are (sorted only if
    there are several)."""
    errors = raw.errors
    if not rejections.rows:
        return errors.sort_by("record_number") if errors.num_rows > 1 else errors
    rejected = _error_table(rejections.rows, raw, reading)
    return pa.concat_tables([errors, rejected]).sort_by("record_number")


def _error_table(
    rows: list[tuple[int, str, str, str]], raw: RawChunk, reading: Reading
) -> pa.Table:
    """ERRORS_SCHEMA rows for newly rejected records (at least one), with their key and what
    was sent."""
    parts = [
        _error_rows(rows[start : start + SLICE], raw, reading)
        for start in range(0, len(rows), SLICE)
    ]
    return pa.concat_tables(parts)


def _error_rows(rows: list[tuple[int, str, str, str]], raw: RawChunk, reading: Reading) -> pa.Table:
    indices = [row[0] for row in rows]
    picked = raw.table.take(pa.array(indices, pa.int64()))
    return pa.table(
        {
            "record_number": picked.column(RECORD_NUMBER),
            "column": [row[1] for row in rows],
            "code": [row[2] for row in rows],
            "message": [row[3] for row in rows],
            "key": _keys(picked, reading),
            "raw": original_fields(raw, indices),
        },
        schema=ERRORS_SCHEMA,
    )


def _keys(picked: pa.Table, reading: Reading) -> Arr:
    """Each record's primary key as sent (composite keys joined with ","), or null.

    Column-wise: only the key fields are read, and a text key field is the key as it is.
    """
    keys = reading.dataset.primary_key
    if not keys:
        return pa.nulls(picked.num_rows, pa.string())
    parts = [_key_field(picked, reading.fields.get(name)) for name in keys]
    if len(parts) == 1 and pa.types.is_string(parts[0].type):
        return parts[0]
    lists = [part.to_pylist() for part in parts]
    return pa.array([_joined(values) for values in zip(*lists, strict=True)], pa.string())


def _key_field(picked: pa.Table, name: str | None) -> Arr:
    """A key field's values (dates and timestamps as text); nulls if the input lacks it."""
    if name is None or name == RECORD_NUMBER or name not in picked.column_names:
        return pa.nulls(picked.num_rows, pa.string())
    values = as_text(picked.column(name).combine_chunks())
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        return values.cast(pa.string())
    return values


def _joined(parts: tuple[Any, ...]) -> str | None:
    if all(part is None for part in parts):
        return None
    return ",".join("" if part is None else str(part) for part in parts)
