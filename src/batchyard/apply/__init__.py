"""The apply engine: chunks of validated records in, one explicit outcome per chunk out.

It sits below ``pipeline/`` and ``targets/`` and imports neither: a target is whatever meets
``ports.ChunkTarget`` (the real ones in ``targets/``, an in-memory fake in the unit tests), and
what a chunk's records do is a ``RecordOperation`` (insert, upsert and delete today).
"""

from batchyard.apply.engine import (
    Applied,
    ApplyKind,
    ChunkApplier,
    ChunkWork,
    settle,
)
from batchyard.apply.operations import (
    OperationContext,
    Outcomes,
    RecordOperation,
    TableOperation,
    split_result,
)
from batchyard.apply.ports import ChunkClaim, ChunkTarget, RecordWriter, TargetTransaction
from batchyard.apply.status_watch import STATUS_FRESH_SECONDS, StatusReader, StatusWatch
from batchyard.apply.streams import NextChunk, apply_in_streams, from_list

__all__ = [
    "STATUS_FRESH_SECONDS",
    "Applied",
    "ApplyKind",
    "ChunkApplier",
    "ChunkClaim",
    "ChunkTarget",
    "ChunkWork",
    "NextChunk",
    "OperationContext",
    "Outcomes",
    "RecordOperation",
    "RecordWriter",
    "StatusReader",
    "StatusWatch",
    "TableOperation",
    "TargetTransaction",
    "apply_in_streams",
    "from_list",
    "settle",
    "split_result",
]
