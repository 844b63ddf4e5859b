"""The shapes records take between stages: raw chunks, validated chunks, per-record errors.

A chunk is a slice of the input at record boundaries (a byte range of CSV or JSON Lines, a
Parquet row group or part of one). It is the unit of validation, of commit to the target, and of
resume after a crash. Every table carries ``RECORD_NUMBER`` so any outcome can be traced back to
the input record (1-based, header excluded, in input order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

#: int64 column on raw and valid tables: the 1-based number of the record in the whole input.
RECORD_NUMBER = "__record_number"
#: Key of ``raw`` under which a malformed CSV line keeps its fields by position.
POSITIONAL_FIELDS = "_fields"
#: Key of ``raw`` under which a JSON Lines record keeps its line as sent.
ORIGINAL_LINE_FIELD = "_line"
#: The field the failed-records file adds to each record: ignored when read back, unless the
#: dataset declares a column of that name.
ERROR_FIELD = "error"

#: One row per record that cannot be applied, with why. ``key`` is the record's primary key as
#: text (composite keys joined with ","), ``raw`` the original record as a JSON object of
#: field → original value, kept so the failed-records file can show what was sent.
ERRORS_SCHEMA: pa.Schema = pa.schema(
    cast(
        "list[pa.Field[Any]]",
        [
            pa.field("record_number", pa.int64(), nullable=False),
            pa.field("column", pa.string()),
            pa.field("code", pa.string(), nullable=False),
            pa.field("message", pa.string(), nullable=False),
            pa.field("key", pa.string()),
            pa.field("raw", pa.string()),
        ],
    )
)


def empty_errors() -> pa.Table:
    return ERRORS_SCHEMA.empty_table()


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


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What applying one chunk to the target did; stored in the target's ledger with the rows."""

    index: int
    succeeded: int
    #: Records the target refused: ERRORS_SCHEMA rows (``raw`` may be null).
    failures: pa.Table
