"""The shapes records take between stages: raw chunks, validated chunks, per-record errors.

A chunk is a slice of the input at record boundaries (a byte range of CSV or JSON Lines, a
Parquet row group or part of one). It is the unit of validation, of commit to the target, and of
resume after a crash. Every table carries ``RECORD_NUMBER`` so any outcome can be traced back to
the input record (1-based, header excluded, in input order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# The outcome types moved to the domain (below targets/); re-exported for the stages' imports.
from batchyard.domain.outcomes import (
    ERRORS_SCHEMA,
    RECORD_NUMBER,
    ChunkOutcome,
    empty_errors,
)

__all__ = [
    "ERRORS_SCHEMA",
    "ERROR_FIELD",
    "ORIGINAL_LINE_FIELD",
    "POSITIONAL_FIELDS",
    "RECORD_NUMBER",
    "ChunkOutcome",
    "RawChunk",
    "ValidatedChunk",
    "empty_errors",
    "split_records",
]

#: Key of ``raw`` under which a malformed CSV line keeps its fields by position.
POSITIONAL_FIELDS = "_fields"
#: Key of ``raw`` under which a JSON Lines record keeps its line as sent.
ORIGINAL_LINE_FIELD = "_line"
#: The field the failed-records file adds to each record: ignored when read back, unless the
#: dataset declares a column of that name.
ERROR_FIELD = "error"


@dataclass(frozen=True, slots=True)
class RawChunk:
    """Records as read from the input, before any type checks.

    ``table`` holds the records that could be parsed into fields: one column per input field
    (strings for CSV and JSON Lines, the file's own types for Parquet) plus RECORD_NUMBER.
    ``errors`` holds the records that could not (wrong field count, malformed JSON, bad UTF-8).
    """

    index: int
    first_record: int
    record_count: int
    table: pa.Table
    errors: pa.Table
    #: JSON Lines: each record's line as sent, aligned with ``table``'s rows (for failed records).
    lines: Sequence[bytes] | None = None


def split_records(raw: RawChunk, most: int | None) -> Iterator[RawChunk]:
    """``raw`` cut into pieces of at most ``most`` consecutive records (all of it if None).

    Each piece keeps ``raw``'s index (the caller numbers the chunks it stages). Cutting by
    record number is deterministic, so a validation that runs again cuts the same pieces.
    """
    if most is None or raw.record_count <= most:
        yield raw
        return
    end = raw.first_record + raw.record_count
    for start in range(raw.first_record, end, most):
        stop = min(start + most, end)
        rows = _numbered_between(raw.table, RECORD_NUMBER, start, stop)
        lines = None
        if raw.lines is not None:
            positions = pc.indices_nonzero(rows).to_pylist()
            lines = [raw.lines[position] for position in positions]
        yield RawChunk(
            raw.index,
            start,
            stop - start,
            raw.table.filter(rows),
            raw.errors.filter(_numbered_between(raw.errors, "record_number", start, stop)),
            lines,
        )


def _numbered_between(table: pa.Table, column: str, start: int, stop: int) -> Any:
    """The mask of ``table``'s rows numbered from ``start`` up to (not including) ``stop``."""
    numbers: Any = table[column]
    low, high = pa.scalar(start, pa.int64()), pa.scalar(stop, pa.int64())
    return pc.and_(pc.greater_equal(numbers, low), pc.less(numbers, high))


@dataclass(frozen=True, slots=True)
class ValidatedChunk:
    """A chunk after validation: typed valid records, and every invalid one with its reason.

    ``valid`` has exactly the dataset's columns in dataset order, typed as ``arrow_type`` says,
    plus RECORD_NUMBER. ``errors`` includes the raw chunk's errors. Every record of the chunk is
    in exactly one of the two.
    """

    index: int
    first_record: int
    record_count: int
    valid: pa.Table
    errors: pa.Table
