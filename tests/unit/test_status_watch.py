"""How old the status a chunk is checked against may be, and why a stop is still never missed.

The watch answers from the last status read while it is young, so a stream does not wait for the
metadata store before every chunk; what a user must still get: a cancel seen within the bound,
and no chunk applied after a batch ended and settled.
"""

from __future__ import annotations

import asyncio

import pyarrow as pa
from tests.support.fake_target import FakeBlobs, FakeTarget
from tests.support.manual_time import ManualClock

from batchyard.apply import ApplyKind, ChunkApplier, ChunkWork, TableOperation, settle
from batchyard.apply.status_watch import StatusWatch
from batchyard.domain.batches import Operation
from batchyard.domain.outcomes import RECORD_NUMBER
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.domain.statuses import BatchStatus

ITEMS = Dataset(name="items", columns=(Column(name="id", type=ColumnType.INTEGER),))


class Store:
    """The batch's status as the metadata store answers it, counting the reads."""

    def __init__(self) -> None:
        self.status = BatchStatus.PROCESSING
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()
        self.began = asyncio.Event()

    async def read(self) -> BatchStatus:
        self.reads += 1
        self.began.set()
        answer = self.status  # the snapshot is taken when the read begins
        await self.release.wait()
        return answer


async def test_a_young_status_is_answered_without_a_read_and_an_old_one_is_read_again():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=1.0, clock=clock)
    assert await watch.current() == BatchStatus.PROCESSING
    store.status = BatchStatus.CANCEL
    clock.now += 0.3
    assert await watch.current() == BatchStatus.PROCESSING  # within the bound: no round trip
    assert store.reads == 1
    clock.now += 0.8  # 1.1 s after the read began: too old to answer with
    assert await watch.current() == BatchStatus.CANCEL
    assert store.reads == 2


async def test_a_half_old_status_is_refreshed_in_the_background_so_the_next_check_sees_a_stop():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=1.0, clock=clock)
    await watch.current()
    store.status = BatchStatus.CANCEL
    clock.now += 0.6
    assert await watch.current() == BatchStatus.PROCESSING  # answered at once...
    await watch.quiet()  # ...while a read began in the background
    assert store.reads == 2
    assert await watch.current() == BatchStatus.CANCEL  # no wait for the bound to run out


async def test_checks_made_together_share_one_read():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=1.0, clock=clock)
    store.release.clear()
    checks = [asyncio.create_task(watch.current()) for _ in range(5)]
    await store.began.wait()
    await asyncio.sleep(0.01)  # every check is waiting now
    store.release.set()
    assert await asyncio.gather(*checks) == [BatchStatus.PROCESSING] * 5
    assert store.reads == 1


async def test_a_read_that_began_before_a_stop_is_not_taken_for_one_that_began_after():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=1.0, clock=clock)
    store.release.clear()
    slow = asyncio.create_task(watch.current())  # began at 100.0, before the stop
    await store.began.wait()
    store.status = BatchStatus.CANCEL
    clock.now += 1.5
    store.release.set()
    assert await slow == BatchStatus.PROCESSING
    assert await watch.current() == BatchStatus.CANCEL  # that read is too old to share


async def test_a_failed_read_is_raised_to_the_check_that_needs_it_and_the_next_reads_again():
    clock = ManualClock()
    answers: list[BatchStatus | Exception] = [ConnectionError("down"), BatchStatus.CANCEL]

    async def read() -> BatchStatus:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch = StatusWatch(read, fresh_for=1.0, clock=clock)
    try:
        await watch.current()
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failed read was swallowed")
    assert await watch.current() == BatchStatus.CANCEL


def rows(first: int) -> pa.Table:
    numbers = pa.array(range(first, first + 10), pa.int64())
    return pa.table({"id": numbers, RECORD_NUMBER: numbers})


async def test_a_chunk_claimed_after_settle_meets_the_new_status_though_its_read_was_young():
    target, blobs = FakeTarget(), FakeBlobs({0: rows(1), 1: rows(11)})
    store = Store()
    engine = ChunkApplier(
        target,
        batch_id="b",
        dataset=ITEMS,
        operation=TableOperation(Operation.INSERT),
        read_status=store.read,
        during=BatchStatus.PROCESSING,
        status_fresh_for=0.3,
    )
    first = await engine.apply(ChunkWork(0, lambda: blobs.read(0)), wait=True)
    assert first.kind == ApplyKind.APPLIED  # the engine now holds a PROCESSING read
    async with settle(target, "b", [1], linger=0.3) as counts:
        store.status = BatchStatus.FAILED  # the batch ends
    late = await engine.apply(ChunkWork(1, lambda: blobs.read(1)), wait=True)
    assert late.kind == ApplyKind.BATCH_LEFT
    assert counts == {0: 10} and sorted(target.rows) == list(range(1, 11))


async def test_kept_fresh_a_stop_is_seen_without_a_read_in_the_way_however_long_chunks_take():
    store = Store()
    watch = StatusWatch(store.read, fresh_for=0.2)
    async with watch.kept_fresh():
        await asyncio.sleep(0.5)  # a long chunk: the first read is long past its bound
        store.status = BatchStatus.CANCEL
        await asyncio.sleep(0.25)
        store.release.clear()  # a check that had to read now would hang
        assert await asyncio.wait_for(watch.current(), 1.0) == BatchStatus.CANCEL
        store.release.set()
    assert store.reads >= 4  # about one read per 0.1 s while kept fresh
    reads = store.reads
    await asyncio.sleep(0.3)
    assert store.reads == reads  # and none after the block


async def test_a_pushed_change_is_read_at_once_though_the_last_read_is_young():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=60.0, clock=clock)
    assert await watch.current() == BatchStatus.PROCESSING
    store.status = BatchStatus.CANCEL
    watch.changed()  # the cancel committed in this process (store.changes)
    assert await watch.current() == BatchStatus.CANCEL
    assert store.reads == 2


async def test_a_read_begun_before_a_pushed_change_is_neither_shared_nor_kept():
    clock, store = ManualClock(), Store()
    watch = StatusWatch(store.read, fresh_for=60.0, clock=clock)
    store.release.clear()
    early = asyncio.create_task(watch.current())  # reading PROCESSING, not answered yet
    await store.began.wait()
    store.status = BatchStatus.CANCEL
    watch.changed()  # same clock reading: only the order of events tells them apart
    store.release.set()
    assert await early == BatchStatus.PROCESSING
    assert await watch.current() == BatchStatus.CANCEL
    await watch.quiet()
    assert await watch.current() == BatchStatus.CANCEL  # the early read was not kept either
