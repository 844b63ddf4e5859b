"""An in-memory target for the apply engine's unit tests: the same claim rules, no database.

Chunk locks are threading locks (tried or waited for, like PostgreSQL's advisory locks), the
ledger a dict, and a chunk's rows become visible only when its claim commits, with its ledger
entry: what the real targets promise with one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import Operation
from batchyard.domain.outcomes import ERRORS_SCHEMA, RECORD_NUMBER, ChunkOutcome
from batchyard.domain.schema import Dataset


class FakeBlobs:
    """Staged chunks by index; counts reads, so a test can tell which chunks were loaded."""

    def __init__(self, chunks: dict[int, pa.Table]) -> None:
        self.chunks = chunks
        self.reads: list[int] = []

    def read(self, index: int) -> pa.Table:
        self.reads.append(index)
        return self.chunks[index]


class FakeTransaction:
    """Writes buffered until the claim (or the whole transaction) commits."""

    def __init__(self, target: FakeTarget) -> None:
        self.target = target
        self.rows: list[int] = []
        self.outcomes: dict[tuple[str, int], ChunkOutcome] = {}

    def apply_records(self, dataset: Dataset, operation: Operation, records: pa.Table) -> pa.Table:
        numbers = records[RECORD_NUMBER]
        refused = pc.is_in(numbers, value_set=pa.array(sorted(self.target.refuse), pa.int64()))
        bad = numbers.filter(refused).to_pylist()
        self.rows.extend(numbers.filter(pc.invert(refused)).to_pylist())
        return pa.table(
            {
                "record_number": pa.array(bad, pa.int64()),
                "column": pa.nulls(len(bad), pa.string()),
                "code": pa.array(["rejected_by_target"] * len(bad), pa.string()),
                "message": pa.array(["refused"] * len(bad), pa.string()),
                "key": pa.nulls(len(bad), pa.string()),
                "raw": pa.nulls(len(bad), pa.string()),
            },
            schema=ERRORS_SCHEMA,
        )

    def claim_ledger(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        return self.target.ledger.get((batch_id, chunk_index))

    def record_outcome(self, batch_id: str, outcome: ChunkOutcome) -> None:
        self.outcomes[(batch_id, outcome.index)] = outcome

    def publish(self) -> None:
        self.target.rows.extend(self.rows)
        self.target.ledger.update(self.outcomes)


class FakeClaim:
    def __init__(self, target: FakeTarget, lock: threading.Lock) -> None:
        self.target = target
        self.lock = lock
        self._transaction = FakeTransaction(target)
        self.open = True
        #: The locks of the chunks added to this claim (held until it ends).
        self.added: list[threading.Lock] = []

    @property
    def transaction(self) -> FakeTransaction:
        return self._transaction

    def add(self, chunk_index: int) -> ChunkOutcome | None:
        lock = self.target._lock(self.target.batch_id, chunk_index)
        lock.acquire()
        self.added.append(lock)
        return self.target.ledger.get((self.target.batch_id, chunk_index))

    def commit(self, *outcomes: ChunkOutcome) -> None:
        for outcome in outcomes:
            self._transaction.outcomes[(self.target.batch_id, outcome.index)] = outcome
        self._transaction.publish()
        self.target.commits += 1
        self.open = False
        self._unlock()

    def release(self) -> None:
        if self.open:
            self.open = False
            self.target.released += 1
            self._unlock()

    def _unlock(self) -> None:
        self.lock.release()
        for lock in self.added:
            lock.release()


class FakeTarget:
    """One batch's chunks; ``refuse`` holds record numbers the "database" refuses."""

    shares_chunks = True

    def __init__(self, batch_id: str = "b") -> None:
        self.batch_id = batch_id
        self.ledger: dict[tuple[str, int], ChunkOutcome] = {}
        self.rows: list[int] = []
        self.refuse: set[int] = set()
        self.released = 0
        #: Transactions committed by claims (a claim with chunks added to it is one).
        self.commits = 0
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, batch_id: str, index: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((batch_id, index), threading.Lock())

    def claim_chunk(
        self, batch_id: str, chunk_index: int, *, wait: bool
    ) -> FakeClaim | ChunkOutcome | None:
        lock = self._lock(batch_id, chunk_index)
        if not lock.acquire(blocking=wait):
            return None
        done = self.ledger.get((batch_id, chunk_index))
        if done is not None:
            lock.release()
            return done
        return FakeClaim(self, lock)

    @contextmanager
    def transaction(self) -> Iterator[FakeTransaction]:
        tx = FakeTransaction(self)
        yield tx
        tx.publish()

    def committed_counts(self, batch_id: str) -> dict[int, int]:
        return {i: o.succeeded for (b, i), o in self.ledger.items() if b == batch_id}

    @contextmanager
    def holding_chunks(self, batch_id: str, chunk_indexes: Iterable[int]) -> Iterator[None]:
        locks = [self._lock(batch_id, i) for i in sorted(chunk_indexes)]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in locks:
                lock.release()
