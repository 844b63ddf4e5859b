"""What applying records produced: the per-record errors schema and one chunk's outcome.

Shared by every layer that reads or writes outcomes (validation, the apply engine, the targets'
ledger, the results files), so it lives in the domain, below all of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pyarrow as pa

#: int64 column on raw and valid tables: the 1-based number of the record in the whole input.
RECORD_NUMBER = "__record_number"

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


#: One row per record whose operation produced an output: the output as JSON text.
OUTPUTS_SCHEMA: pa.Schema = pa.schema(
    cast(
        "list[pa.Field[Any]]",
        [
            pa.field("record_number", pa.int64(), nullable=False),
            pa.field("output", pa.string(), nullable=False),
        ],
    )
)


@functools.cache
def empty_errors() -> pa.Table:
    """No errors: the same immutable table every time (one per chunk cost about 0.1 ms each).

    Made at the first call, not at import: making an Arrow value is pyarrow's one look for
    pandas, which a process that imports the app alone must not pay (pipeline/arrow_runtime.py).
    """
    return ERRORS_SCHEMA.empty_table()


def empty_outputs() -> pa.Table:
    return OUTPUTS_SCHEMA.empty_table()


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What applying one chunk to the target did; stored in the target's ledger with the rows."""

    index: int
    succeeded: int
    #: Records the target refused: ERRORS_SCHEMA rows (``raw`` may be null).
    failures: pa.Table
    #: What the operation answered per record, where it answers anything (OUTPUTS_SCHEMA rows).
    outputs: pa.Table = field(default_factory=OUTPUTS_SCHEMA.empty_table)


class OutcomeSource(Protocol):
    """Where a batch's chunk outcomes are read: the target's ledger, or a dry run's blobs."""

    def committed_counts(self, batch_id: str) -> dict[int, int]:
        """Records applied (or, in a dry run, that would be) per chunk, by chunk index."""
        ...

    def chunk_outcome(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        """One chunk's outcome with the records refused; None if it has none."""
        ...
