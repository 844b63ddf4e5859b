"""The http operation's per-batch limits, shared by streams that each run their own event loop
in their own thread: never more holders than slots, no slot lost to a cancelled waiter, starts
spaced at the rate whichever thread asks."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from batchyard.operations.http_limits import LimitsByBatch, SharedPacer, SharedSlots

STREAMS = 4


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def in_streams(work: object) -> None:
    """Run ``work`` (a coroutine function) once per stream, each in its own thread and loop."""
    with ThreadPoolExecutor(STREAMS) as pool:
        for done in [pool.submit(asyncio.run, work()) for _ in range(STREAMS)]:  # type: ignore[operator]
            done.result()


def test_slots_hold_across_threads_and_loops() -> None:
    slots, tally = SharedSlots(3), Tally()

    async def stream() -> None:
        async def request() -> None:
            async with slots.held():
                tally.enter()
                await asyncio.sleep(0.002)
                tally.leave()

        await asyncio.gather(*(request() for _ in range(25)))

    in_streams(stream)
    assert tally.most == 3
    assert tally.now == 0


def test_a_cancelled_waiter_loses_no_slot() -> None:
    slots = SharedSlots(2)

    async def cancel_waiters() -> None:
        async def hold() -> None:
            async with slots.held():
                await asyncio.sleep(0.05)

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(hold()) for _ in range(6)]
        await asyncio.sleep(0.01)
        for waiter in waiters[::2]:  # some never get a slot, some are cancelled as they get one
            waiter.cancel()
        await asyncio.sleep(0.045)
        for waiter in waiters[1::2]:
            waiter.cancel()
        await asyncio.gather(*holders, *waiters, return_exceptions=True)

    in_streams(cancel_waiters)

    async def take_all() -> None:
        async with slots.held(), slots.held():
            pass

    asyncio.run(asyncio.wait_for(take_all(), timeout=5))  # both slots are free again


def test_pacer_spaces_starts_whichever_thread_asks() -> None:
    pacer, starts, lock = SharedPacer(100), [], threading.Lock()

    async def stream() -> None:
        for _ in range(10):
            await pacer.wait_turn()
            with lock:
                starts.append(time.monotonic())

    in_streams(stream)
    starts.sort()
    assert len(starts) == 40
    assert starts[-1] - starts[0] >= 39 / 100 - 0.01  # 40 starts at 100 a second


def test_one_batch_one_set_of_limits() -> None:
    shared = LimitsByBatch()
    first = shared.of("batch-a", 2, None)
    assert shared.of("batch-a", 8, 5.0) is first
    assert shared.of("batch-b", 2, None) is not first


def test_a_slot_handed_to_a_waiter_cancelled_before_it_woke_is_passed_on() -> None:
    async def handed_then_cancelled() -> None:
        slots = SharedSlots(1)
        await slots._acquire()
        waiter = asyncio.create_task(slots._acquire())
        await asyncio.sleep(0)  # the waiter is in line
        slots._release()  # its slot is on the way: the hand-over runs on the loop's next turn
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert waiter.cancelled()
        await asyncio.wait_for(slots._acquire(), timeout=5)  # the slot came back

    asyncio.run(handed_then_cancelled())
