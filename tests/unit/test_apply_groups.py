"""Several chunks in one commit (a target with one writer), on the in-memory target.

What a user would notice: every record applied exactly once, each chunk's ledger row committed
with its rows, nothing applied after a cancel, a crash that loses a group losing it whole.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from tests.support.fake_target import FakeBlobs, FakeTarget
from tests.unit.test_apply_engine import PER_CHUNK, Crash, Status, applier, chunk, works

from batchyard.apply import (
    Applied,
    ApplyKind,
    OperationContext,
    TableOperation,
    apply_in_streams,
    from_list,
)
from batchyard.domain.batches import Operation
from batchyard.domain.errors import CancelRequested
from batchyard.domain.outcomes import RECORD_NUMBER, ChunkOutcome
from batchyard.domain.statuses import BatchStatus


async def run(
    target: FakeTarget,
    blobs: FakeBlobs,
    chunks: range,
    *,
    status: Status | None = None,
    operation: object = None,
    ready: bool = True,
) -> list[Applied]:
    """Apply ``chunks`` in one stream, four at most per commit; what was reported, in order."""
    heard: list[Applied] = []

    async def on_outcome(result: Applied) -> None:
        heard.append(result)

    await apply_in_streams(
        applier(target, status or Status(), operation),
        from_list(works(blobs, chunks)),
        streams=1,
        wait=True,
        on_outcome=on_outcome,
        together=4,
        ready=lambda: ready,
    )
    return heard


def every_record(chunks: int) -> list[int]:
    return list(range(1, chunks * PER_CHUNK + 1))


async def test_chunks_waiting_for_the_writer_commit_together_each_with_its_ledger_row():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(10)})
    heard = await run(target, blobs, range(10))
    assert target.commits == 3  # 4 + 4 + 2
    assert target.committed_counts("b") == {i: PER_CHUNK for i in range(10)}
    assert sorted(target.rows) == every_record(10)
    assert [r.index for r in heard] == list(range(10))
    assert all(r.kind == ApplyKind.APPLIED for r in heard)


async def test_a_chunk_not_waiting_yet_is_not_waited_for_each_commits_alone():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(5)})
    await run(target, blobs, range(5), ready=False)
    assert target.commits == 5
    assert sorted(target.rows) == every_record(5)


class CancelAfter:
    """An insert after which the batch is asked to cancel (chunk ``index`` applied)."""

    name = "insert"
    keeps_input_order = False

    def __init__(self, status: Status, index: int) -> None:
        self.status = status
        self.index = index
        self.inner = TableOperation(Operation.INSERT)

    def apply(self, records: pa.Table, context: OperationContext) -> pa.Table:
        refused = self.inner.apply(records, context)
        if context.chunk_index == self.index:
            self.status.status = BatchStatus.CANCEL
        return refused


async def test_a_cancel_between_chunks_of_a_group_commits_those_before_and_applies_no_other():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(6)})
    status = Status()
    heard: list[Applied] = []
    with pytest.raises(CancelRequested):
        heard = await run(target, blobs, range(6), status=status, operation=CancelAfter(status, 1))
    assert target.committed_counts("b") == {0: PER_CHUNK, 1: PER_CHUNK}
    assert sorted(target.rows) == every_record(2)
    assert blobs.reads == [0, 1]  # chunk 2 met the cancel before its ledger row or records
    assert heard == []  # raised: the caller learns of the cancel, its counters from the ledger


async def test_a_crash_mid_group_loses_the_whole_group_and_a_resume_applies_each_chunk_once():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(6)})

    class CrashAt(Crash):
        def apply(self, records: pa.Table, context: OperationContext) -> pa.Table:
            if context.chunk_index == 2:
                return super().apply(records, context)
            return TableOperation(Operation.INSERT).apply(records, context)

    with pytest.raises(ConnectionError):
        await run(target, blobs, range(6), operation=CrashAt())
    assert target.rows == [] and target.ledger == {}  # chunks 0 and 1 rolled back with 2

    await run(target, blobs, range(6))
    assert sorted(target.rows) == every_record(6)
    assert target.committed_counts("b") == {i: PER_CHUNK for i in range(6)}


async def test_chunks_the_ledger_holds_are_skipped_inside_a_group_and_never_read():
    target, blobs = FakeTarget(), FakeBlobs({i: chunk(i) for i in range(4)})
    done = ChunkOutcome(1, PER_CHUNK, pa.table({RECORD_NUMBER: pa.array([], pa.int64())}))
    target.ledger[("b", 1)] = done  # committed before a crash
    target.rows.extend(range(11, 21))
    heard = await run(target, blobs, range(4))
    assert [r.kind for r in heard] == [
        ApplyKind.APPLIED,
        ApplyKind.ALREADY_DONE,
        ApplyKind.APPLIED,
        ApplyKind.APPLIED,
    ]
    assert heard[1].outcome is done
    assert blobs.reads == [0, 2, 3]
    assert sorted(target.rows) == every_record(4)
    assert target.commits == 1
