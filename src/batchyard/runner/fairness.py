"""Fair shares of the embedded runner's slots: users take turns, none holds them all.

A batch waits for a slot in its owner's line. When a slot frees, the next user in turn whose
line is not empty and who runs fewer than ``per_user`` batches gets it, and goes to the back of
the turn. So one user's 300 uploads run ``per_user`` at a time while another user's 1-row
batch takes the next free slot, instead of waiting behind all 300.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator


class FairSlots:
    """``total`` slots, at most ``per_user`` of them held by one user, given out in turn."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total = total
        self.per_user = max(1, min(per_user, total))
        self._running: Counter[str] = Counter()
        self._lines: dict[str, deque[asyncio.Future[None]]] = {}
        #: Users with a batch waiting, in the order they get their next turn.
        self._turns: deque[str] = deque()

    @property
    def running(self) -> int:
        return sum(self._running.values())

    def running_for(self, user: str) -> int:
        return self._running[user]

    @contextlib.asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        """Hold one of ``user``'s slots for the block, once it is this user's turn."""
        granted = asyncio.get_running_loop().create_future()
        self._lines.setdefault(user, deque()).append(granted)
        if user not in self._turns:
            self._turns.append(user)
        self._dispatch()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(user)  # granted just as it was cancelled: give the slot back
            else:
                self._forget(user, granted)
            raise
        try:
            yield
        finally:
            self._release(user)

    def _release(self, user: str) -> None:
        self._running[user] -= 1
        if not self._running[user]:
            del self._running[user]
        self._dispatch()

    def _forget(self, user: str, granted: asyncio.Future[None]) -> None:
        line = self._lines.get(user)
        if line is not None and granted in line:
            line.remove(granted)
        self._drop_if_idle(user)

    def _drop_if_idle(self, user: str) -> None:
        if not self._lines.get(user):
            self._lines.pop(user, None)
            if user in self._turns:
                self._turns.remove(user)

    def _dispatch(self) -> None:
        """Give free slots to waiting batches, one user after the other."""
        while self.running < self.total:
            user = next((u for u in self._turns if self._running[u] < self.per_user), None)
            if user is None:
                return
            line = self._lines[user]
            while line and line[0].done():  # cancelled, its task not yet told
                line.popleft()
            if line:
                self._turns.remove(user)
                self._turns.append(user)
                line.popleft().set_result(None)
                self._running[user] += 1
            self._drop_if_idle(user)
