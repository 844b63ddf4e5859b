"""Several chunks in flight at once: streams that each claim and apply one chunk at a time.

Streams stop at chunk boundaries, never mid-chunk: a chunk's transaction runs in a thread that
cannot be interrupted, so when one stream stops (a stop signal, an error) or the caller is
cancelled, the others finish the chunk they hold, report it, and take no other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from batchyard.apply.engine import Applied, ApplyKind, ChunkApplier, ChunkWork
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
) -> int:
    """Apply chunks from ``next_chunk`` in ``streams`` streams; how many were applied here.

    Without ``wait`` a chunk another participant holds is passed over. A stop signal (cancel,
    batch left) is raised once every stream has stopped; a cancel wins over other errors.
    """
    applied = 0

    async def stream() -> None:
        nonlocal applied
        try:
            while (work := await next_chunk()) is not None:
                if applier.stopping.is_set():
                    return
                result = await applier.apply(work, wait=wait)
                if result.signal is not None:
                    raise result.signal
                if result.kind == ApplyKind.APPLIED:
                    applied += 1
                if result.outcome is not None:
                    await on_outcome(result)
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
