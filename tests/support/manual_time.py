"""Time and background tasks under a unit test's control, for caches that refresh on their own."""

from __future__ import annotations

import asyncio


class ManualClock:
    """Monotonic time that moves only when the test says so (``clock.now += 0.4``)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def run_background_tasks() -> None:
    """Let tasks started in the background run to their end (whatever they wait on is open)."""
    for _ in range(5):
        await asyncio.sleep(0)
