"""In-process wake-ups for live event streams.

Followers of a batch wait on its event with a timeout and re-read the batch from the store, so
they see changes made by other processes too (within the poll interval); a change made in this
process wakes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class BatchEvents:
    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def notify(self, batch_id: str) -> None:
        for event in self._events.get(batch_id, ()):
            event.set()

    @contextlib.contextmanager
    def follow(self, batch_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(batch_id, set()).add(event)
        try:
            yield event
        finally:
            followers = self._events.get(batch_id, set())
            followers.discard(event)
            if not followers:
                self._events.pop(batch_id, None)


async def wait_for_change(event: asyncio.Event, seconds: float) -> None:
    """Return when ``event`` fires or after ``seconds``, whichever is first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    event.clear()
