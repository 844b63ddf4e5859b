"""Several chunks in flight at once: streams that each claim and apply one chunk at a time.

Streams stop at chunk boundaries, never mid-chunk: a chunk's transaction runs in a thread that
cannot be interrupted, so when one stream stops (a stop signal, an error) or the caller is
cancelled, the others finish the chunk they hold, report it, and take no other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from batchyard.apply.engine import Applied, ApplyKind, ChunkApplier, ChunkWork
from batchyard.apply.groups import apply_together
from batchyard.domain.errors import CancelRequested

#: Where a stream gets its next chunk: None when there is none left for it.
NextChunk = Callable[[], Awaitable[ChunkWork | None]]
#: Hears of every chunk a stream applied or found already done (to move counters).
OnOutcome = Callable[[Applied], Awaitable[None]]


def from_list(chunks: Iterable[ChunkWork]) -> NextChunk:
    """Chunks from a fixed list, shared by every stream that calls the result."""
    remaining = iter(chunks)

    async def next_chunk() -> ChunkWork | None:
        return next(remaining, None)

    return next_chunk


async def apply_in_streams(
    applier: ChunkApplier,
    next_chunk: NextChunk,
    *,
    streams: int,
    wait: bool,
    on_outcome: OnOutcome,
    together: int = 1,
    ready: Callable[[], bool] | None = None,
) -> int:
    """Apply chunks from ``next_chunk`` in ``streams`` streams; how many were applied here.

    Without ``wait`` a chunk another participant holds is passed over. A stop signal (cancel,
    batch left) is raised once every stream has stopped; a cancel wins over other errors.
    With ``together`` above 1 (a target that does not share chunks), a stream commits up to
    that many chunks in one transaction, adding each one ``ready`` says is waiting already
    (apply/groups.py; without ``ready``, ``next_chunk`` never waits).
    """
    applied = 0

    async def stream() -> None:
        nonlocal applied
        source = _Source(next_chunk, ready)
        try:
            while (work := await source.next()) is not None:
                if applier.stopping.is_set():
                    return
                if together > 1:
                    results = await apply_together(
                        applier, work, source.waiting, wait=wait, most=together
                    )
                else:
                    results = [await applier.apply(work, wait=wait)]
                applied += await _report(results, on_outcome)
        except BaseException:
            applier.stopping.set()
            raise

    async with applier.status.kept_fresh():  # no status read in a stream's way
        tasks = [asyncio.create_task(stream()) for _ in range(streams)]
        try:
            outcomes = await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        except asyncio.CancelledError:
            applier.stopping.set()
            await asyncio.wait(tasks)  # the chunks in flight commit (and are reported) first
            raise
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise next((e for e in errors if isinstance(e, CancelRequested)), errors[0])
    return applied


async def _report(results: list[Applied], on_outcome: OnOutcome) -> int:
    """Pass on each outcome in order; how many chunks were applied. A stop signal is raised
    after the outcomes before it (the chunks committed with it)."""
    applied = 0
    for result in results:
        if result.signal is not None:
            raise result.signal
        if result.kind == ApplyKind.APPLIED:
            applied += 1
        if result.outcome is not None:
            await on_outcome(result)
    return applied


class _Source:
    """One stream's view of ``next_chunk``: the chunk to start with, and the ones waiting."""

    def __init__(self, next_chunk: NextChunk, ready: Callable[[], bool] | None) -> None:
        self._next_chunk = next_chunk
        self._ready = ready
        self._ended = False

    async def next(self) -> ChunkWork | None:
        """The next chunk, waiting for it; None once there are no more."""
        if self._ended:
            return None
        work = await self._next_chunk()
        self._ended = work is None
        return work

    async def waiting(self) -> ChunkWork | None:
        """The next chunk if one is waiting already, else None (without waiting)."""
        if self._ready is not None and not self._ready():
            return None
        return await self.next()
