"""The apply engine's races, on an in-memory target: no database, the same claim rules.

Each test names a way two participants, a cancel or a crash can meet one chunk, and checks what
a user would see: every record applied exactly once, nothing applied after a stop, counts that
match the rows.
"""

from __future__ import annotations

import asyncio
import threading

import pyarrow as pa
import pytest
from tests.support.fake_target import FakeBlobs, FakeTarget

from batchyard.apply import (
    Applied,
    ApplyKind,
    ChunkApplier,
    ChunkWork,
    OperationContext,
    TableOperation,
    apply_in_streams,
    from_list,
    settle,
)
from batchyard.domain.batches import Operation
from batchyard.domain.errors import AtomicRollback, BatchLeft, CancelRequested
from batchyard.domain.outcomes import RECORD_NUMBER, ChunkOutcome
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.domain.statuses import BatchStatus

ITEMS = Dataset(name="items", columns=(Column(name="id", type=ColumnType.INTEGER),))
PER_CHUNK = 10


def chunk(index: int) -> pa.Table:
    first = index * PER_CHUNK + 1
    numbers = pa.array(range(first, first + PER_CHUNK), pa.int64())
    return pa.table({"id": numbers, RECORD_NUMBER: numbers})


class Status:
    """The batch's status as the metadata store would answer it."""

    def __init__(self, status: BatchStatus = BatchStatus.PROCESSING) -> None:
        self.status = status
        self.reads = 0

    async def read(self) -> BatchStatus:
        self.reads += 1
        return self.status


class Gate:
    """An insert that waits inside its chunk (in the worker thread) until the test opens it."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.open = threading.Event()
        self.inner = TableOperation(Operation.INSERT)

    name = "insert"
    keeps_input_order = False

    def apply(self, records: pa.Table, context: OperationContext) -> pa.Table:
        self.inside.set()
        assert self.open.wait(10)
        return self.inner.apply(records, context)


class Crash:
    """An operation that dies mid-chunk after writing, like a process killed in the middle."""

    name = "insert"
    keeps_input_order = False

    def apply(self, records: pa.Table, context: OperationContext) -> pa.Table:
        context.writer.apply_records(context.dataset, Operation.INSERT, records)
        raise ConnectionError("the connection dropped mid-chunk")


def applier(target: FakeTarget, status: Status, operation: object = None) -> ChunkApplier:
    return ChunkApplier(
        target,
        batch_id="b",
        dataset=ITEMS,
        operation=operation or TableOperation(Operation.INSERT),  # type: ignore[arg-type]
        read_status=status.read,
        during=BatchStatus.PROCESSING,
        # Every check reads the status here: these tests are about claims and outcomes; how
        # long a status read stays good is test_status_watch.py's.
        status_fresh_for=0,
    )


def works(blobs: FakeBlobs, indexes: range) -> list[ChunkWork]:
    return [ChunkWork(i, lambda i=i: blobs.read(i)) for i in indexes]  # type: ignore[misc]


async def test_a_chunk_is_applied_once_and_committed_with_its_ledger_entry():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0)})
    target.refuse = {3}
    result = await applier(target, Status()).apply(works(blobs, range(1))[0], wait=True)
    assert result.kind == ApplyKind.APPLIED
    assert result.outcome is not None and result.outcome.succeeded == PER_CHUNK - 1
    assert result.outcome.failures["record_number"].to_pylist() == [3]
    assert sorted(target.rows) == [n for n in range(1, 11) if n != 3]
    assert target.committed_counts("b") == {0: PER_CHUNK - 1}


async def test_two_appliers_of_one_chunk_one_passes_over_it_one_waits_and_finds_it_done():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0)})
    gate, status = Gate(), Status()
    first = asyncio.create_task(
        applier(target, status, gate).apply(works(blobs, range(1))[0], wait=True)
    )
    await asyncio.to_thread(gate.inside.wait, 10)

    passing = await applier(target, status).apply(works(blobs, range(1))[0], wait=False)
    assert passing.kind == ApplyKind.HELD_ELSEWHERE
    waiting = asyncio.create_task(
        applier(target, status).apply(works(blobs, range(1))[0], wait=True)
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()  # blocked on the chunk's lock, not applying it a second time
    gate.open.set()

    assert (await first).kind == ApplyKind.APPLIED
    assert (await waiting).kind == ApplyKind.ALREADY_DONE
    assert sorted(target.rows) == list(range(1, 11))  # once, not twice
    assert blobs.reads == [0]  # the chunk found done was never read


async def test_cancel_mid_chunk_lets_the_chunk_in_hand_commit_and_applies_no_other():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(4)})
    gate, status = Gate(), Status()
    engine = applier(target, status, gate)
    seen: list[Applied] = []

    async def heard(result: Applied) -> None:
        seen.append(result)

    run = asyncio.create_task(
        apply_in_streams(
            engine, from_list(works(blobs, range(4))), streams=1, wait=True, on_outcome=heard
        )
    )
    await asyncio.to_thread(gate.inside.wait, 10)
    status.status = BatchStatus.CANCEL  # asked while chunk 0 is being applied
    gate.open.set()

    with pytest.raises(CancelRequested):
        await run
    assert target.committed_counts("b") == {0: PER_CHUNK}
    assert sorted(target.rows) == list(range(1, 11))
    assert [r.index for r in seen] == [0]  # the committed chunk was reported
    assert blobs.reads == [0]  # chunk 1 was claimed, met the cancel, and was never read
    assert target.released == 1


async def test_a_batch_that_left_the_status_gets_nothing_applied_and_the_chunk_stays_free():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0)})
    status = Status(BatchStatus.FAILED)
    result = await applier(target, status).apply(works(blobs, range(1))[0], wait=True)
    assert result.kind == ApplyKind.BATCH_LEFT
    assert isinstance(result.signal, BatchLeft)
    assert target.rows == [] and target.ledger == {} and blobs.reads == []
    status.status = BatchStatus.PROCESSING  # the lock was let go: the next claim gets it
    assert (await applier(target, status).apply(works(blobs, range(1))[0], wait=False)).kind == (
        ApplyKind.APPLIED
    )


async def test_a_crash_mid_chunk_leaves_it_unapplied_and_the_next_attempt_applies_it_once():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0)})
    status = Status()
    with pytest.raises(ConnectionError):
        await applier(target, status, Crash()).apply(works(blobs, range(1))[0], wait=True)
    assert target.rows == [] and target.ledger == {}  # rolled back with its ledger entry

    again = await applier(target, status).apply(works(blobs, range(1))[0], wait=False)
    assert again.kind == ApplyKind.APPLIED
    resumed = await applier(target, status).apply(works(blobs, range(1))[0], wait=False)
    assert resumed.kind == ApplyKind.ALREADY_DONE
    assert resumed.outcome == again.outcome
    assert sorted(target.rows) == list(range(1, 11))


async def test_streams_and_a_helper_share_chunks_and_every_record_lands_once():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(12)})
    status = Status()
    reported: list[int] = []

    async def heard(result: Applied) -> None:
        reported.append(result.index)

    own = apply_in_streams(
        applier(target, status),
        from_list(works(blobs, range(12))),
        streams=3,
        wait=True,
        on_outcome=heard,
    )
    helper = apply_in_streams(
        applier(target, status),
        from_list(works(blobs, range(12))),
        streams=1,
        wait=False,
        on_outcome=heard,
    )
    applied = await asyncio.gather(own, helper)
    assert sum(applied) == 12
    assert sorted(target.rows) == list(range(1, 121))
    assert sorted(target.committed_counts("b")) == list(range(12))


async def test_settle_waits_for_the_chunk_in_flight_and_no_chunk_starts_inside_it():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0), 1: chunk(1)})
    gate, status = Gate(), Status()
    in_flight = asyncio.create_task(
        applier(target, status, gate).apply(works(blobs, range(1))[0], wait=True)
    )
    await asyncio.to_thread(gate.inside.wait, 10)

    async def end_batch() -> dict[int, int]:
        async with settle(target, "b", [0, 1]) as counts:
            status.status = BatchStatus.FAILED  # the batch ends while nothing is in flight
            late = await applier(target, status).apply(works(blobs, range(2))[1], wait=False)
            assert late.kind == ApplyKind.HELD_ELSEWHERE
            return counts

    ending = asyncio.create_task(end_batch())
    await asyncio.sleep(0.05)
    assert not ending.done()  # waits for chunk 0 to commit
    gate.open.set()
    assert await ending == {0: PER_CHUNK}
    assert (await in_flight).kind == ApplyKind.APPLIED
    late = await applier(target, status).apply(works(blobs, range(2))[1], wait=True)
    assert late.kind == ApplyKind.BATCH_LEFT and 1 not in blobs.reads


async def test_atomic_applies_all_or_nothing():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(3)})
    target.refuse = {25}
    with pytest.raises(AtomicRollback, match="record 25"):
        await applier(target, Status()).apply_atomically(works(blobs, range(3)))
    assert target.rows == [] and target.ledger == {}

    target.refuse = set()
    outcomes = await applier(target, Status()).apply_atomically(works(blobs, range(3)))
    assert [o.succeeded for o in outcomes] == [PER_CHUNK] * 3
    assert sorted(target.rows) == list(range(1, 31))


async def test_a_cancel_before_an_atomic_batch_applies_nothing():
    target, blobs = FakeTarget(), FakeBlobs({0: chunk(0)})
    with pytest.raises(CancelRequested):
        await applier(target, Status(BatchStatus.CANCELLING)).apply_atomically(
            works(blobs, range(1))
        )
    assert target.rows == [] and blobs.reads == []


async def test_a_dry_run_reports_every_chunk_and_leaves_nothing_behind():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(3)})
    target.refuse = {5, 25}
    seen: list[tuple[int, int, list[int]]] = []

    async def heard(outcome: ChunkOutcome) -> None:
        seen.append(
            (outcome.index, outcome.succeeded, outcome.failures["record_number"].to_pylist())
        )

    await applier(target, Status()).rehearse(works(blobs, range(3)), heard)
    assert seen == [(0, PER_CHUNK - 1, [5]), (1, PER_CHUNK, []), (2, PER_CHUNK - 1, [25])]
    assert target.rows == [] and target.ledger == {}


async def test_a_cancel_stops_a_dry_run_at_the_next_chunk_and_nothing_is_kept():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(3)})
    status = Status()
    seen: list[int] = []

    async def heard(outcome: ChunkOutcome) -> None:
        seen.append(outcome.index)
        status.status = BatchStatus.CANCEL

    with pytest.raises(CancelRequested):
        await applier(target, status).rehearse(works(blobs, range(3)), heard)
    assert seen == [0] and blobs.reads == [0]
    assert target.rows == [] and target.ledger == {}
