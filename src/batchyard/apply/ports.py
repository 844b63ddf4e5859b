"""What the apply engine needs from a target database, as protocols.

``targets.Target`` meets them; so does the in-memory fake of the unit tests. The one claim
mechanism is ``ChunkTarget.claim_chunk``: it takes the chunk's lock (others only try it, or wait
when asked to) and reserves its ledger row in one open transaction, so whoever holds a claim is
the only one who can apply that chunk, and a chunk the ledger already holds is never applied
again.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol

import pyarrow as pa

from batchyard.domain.batches import Operation
from batchyard.domain.outcomes import ChunkOutcome
from batchyard.domain.schema import Dataset


class RecordWriter(Protocol):
    """Writes records into the dataset's table inside an open transaction."""

    def apply_records(self, dataset: Dataset, operation: Operation, records: pa.Table) -> pa.Table:
        """Apply ``records``; the ones the database refused (ERRORS_SCHEMA rows)."""
        ...


class TargetTransaction(RecordWriter, Protocol):
    """One open write transaction that records chunks in the ledger (atomic batches use it)."""

    def claim_ledger(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        """Reserve the chunk's ledger row; its stored outcome when it is already committed."""
        ...

    def record_outcome(self, batch_id: str, outcome: ChunkOutcome) -> None:
        """Store ``outcome`` in the row ``claim_ledger`` reserved."""
        ...


class ChunkClaim(Protocol):
    """A chunk held by this participant alone, its transaction open until commit or release."""

    @property
    def transaction(self) -> TargetTransaction: ...

    def add(self, chunk_index: int) -> ChunkOutcome | None:
        """Reserve another chunk's ledger row in this claim's transaction, to commit with it;
        its stored outcome when the ledger already has it.

        Only on a target that does not share chunks (one writer): nobody else can hold it.
        """
        ...

    def commit(self, *outcomes: ChunkOutcome) -> None:
        """Record each outcome in the ledger and commit them with the records written meanwhile
        (one per chunk claimed: the first and each one added)."""
        ...

    def release(self) -> None:
        """Roll back and let go of the chunk: nothing of it was applied."""
        ...


class ChunkTarget(Protocol):
    """A target database as the engine sees it."""

    @property
    def shares_chunks(self) -> bool:
        """Whether participants in other processes may apply one batch's chunks side by side."""
        ...

    def claim_chunk(
        self, batch_id: str, chunk_index: int, *, wait: bool
    ) -> ChunkClaim | ChunkOutcome | None:
        """Claim a chunk: a claim to apply it, its outcome if committed, None if held elsewhere.

        None only without ``wait``: with it, the call waits until the holder is done.
        """
        ...

    def transaction(self) -> AbstractContextManager[TargetTransaction]:
        """One write transaction for many chunks (all or nothing)."""
        ...

    def committed_counts(self, batch_id: str) -> dict[int, int]:
        """Records applied per committed chunk of the batch, by chunk index."""
        ...

    def holding_chunks(
        self, batch_id: str, chunk_indexes: Iterable[int]
    ) -> AbstractContextManager[None]:
        """Wait until nobody applies these chunks, and let nobody start one until exit."""
        ...
