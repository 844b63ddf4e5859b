"""The http operation's limits, held once per batch in a process and shared by its streams.

A batch's chunks are applied by ``options.parallel_streams`` streams side by side, each in a
worker thread running its own event loop (``asyncio.run`` per chunk). Limits kept per chunk or
per stream would let the receiver see that many times ``concurrency`` requests in flight, and
that many times ``rate_per_second``. So both live in one ``BatchLimits`` per batch and process:
asyncio's primitives belong to one event loop, so these are built on a thread lock instead,
and no thread ever blocks its event loop waiting.

Across processes (queue mode: helper jobs on other workers apply chunks of the same batch)
nothing is shared: each process applying the batch keeps the limits for itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class SharedSlots:
    """At most ``size`` holders at once, across threads that each run their own event loop.

    A waiter parks a future of its own loop; a release hands its slot straight to the first
    waiter (through that loop's ``call_soon_threadsafe``), so slots go in arrival order and
    none is lost when a waiter is cancelled.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._lock = threading.Lock()
        self._waiting: deque[_Waiter] = deque()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold a slot for the length of the block."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free:
                self._free -= 1
                return
            turn: asyncio.Future[None] = loop.create_future()
            self._waiting.append((loop, turn))
        try:
            await turn
        except BaseException:
            with self._lock:
                if (loop, turn) in self._waiting:  # never handed a slot: just leave the line
                    self._waiting.remove((loop, turn))
                    raise
            if turn.done() and not turn.cancelled():  # handed one after all: pass it on
                self._release()
            raise  # handed one but not woken yet: _hand sees the cancel and passes it on

    def _release(self) -> None:
        with self._lock:
            while self._waiting:
                loop, turn = self._waiting.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand, turn)
                except RuntimeError:  # that loop has closed: nobody waits there any more
                    continue
                return
            self._free += 1

    def _hand(self, turn: asyncio.Future[None]) -> None:
        if turn.cancelled():
            self._release()
        else:
            turn.set_result(None)


class SharedPacer:
    """Starts at most ``rate`` requests per second, evenly spaced, whichever thread asks."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    async def wait_turn(self) -> None:
        if not self._interval:
            return
        with self._lock:  # only reserves the next start: never held across an await
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class BatchLimits:
    """One batch's ``concurrency`` and ``rate_per_second``, for every stream in this process."""

    def __init__(self, concurrency: int, rate_per_second: float | None) -> None:
        self.slots = SharedSlots(concurrency)
        self.pacer = SharedPacer(rate_per_second)

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """A slot for one request in flight, entered at the request's turn to start."""
        async with self.slots.held():
            await self.pacer.wait_turn()
            yield


class LimitsByBatch:
    """The limits of each batch being sent from this process: one object per batch for as
    long as anything sending it holds a reference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: weakref.WeakValueDictionary[str, BatchLimits] = weakref.WeakValueDictionary()

    def of(self, batch_id: str, concurrency: int, rate_per_second: float | None) -> BatchLimits:
        """The batch's limits; the first caller's settings make them (a batch's settings are
        the same for all its chunks)."""
        with self._lock:
            limits = self._limits.get(batch_id)
            if limits is None:
                limits = BatchLimits(concurrency, rate_per_second)
                self._limits[batch_id] = limits
            return limits
