"""One source of batch changes per process, shared by every follower of a batch.

Followers (live event streams) never read the database themselves. One watcher task per process
reads every followed batch in one query and hands each follower the newest state: at once when
this process changed a batch (``notify``), and every ``poll_seconds`` otherwise, which is how
changes made by other processes (queue workers, other servers, the CLI) arrive. A follower keeps
only the newest state, never a backlog, so a slow reader costs no memory and holds no one up;
database reads grow with the batches followed and their changes, never with the followers.
The watcher starts with the first follower and ends when the last one leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from batchyard import metrics
from batchyard.domain.batches import Batch

logger = logging.getLogger("batchyard.events")

#: Longest a change made by another process takes to reach followers here.
POLL_SECONDS = 0.5
#: Shortest time between two reads: a burst of changes (a chunk's counters, a log line, a
#: transition) costs one read, and reads per second stay bounded however busy the batches are.
MIN_GAP_SECONDS = 0.05

#: Reads the batches with the given ids; those missing from the answer no longer exist.
Reader = Callable[[Sequence[str]], Awaitable[Mapping[str, Batch]]]


class Gone(enum.Enum):
    """The batch no longer exists (deleted)."""

    GONE = "gone"


GONE = Gone.GONE
State = Batch | Gone


class Follower:
    """One follower's slot: the newest state of its batch, replaced rather than queued."""

    def __init__(self) -> None:
        self.latest: State | None = None
        self._fresh = asyncio.Event()

    def offer(self, state: State) -> None:
        self.latest = state
        self._fresh.set()

    async def changed(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a state not yet taken; says whether one came."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fresh.wait(), within)
        fresh = self._fresh.is_set()
        self._fresh.clear()
        return fresh


@dataclass(eq=False)
class _Topic:
    followers: set[Follower] = field(default_factory=set)
    state: State | None = None


class BatchEvents:
    """This process's followers of batches, and the one watcher that feeds them."""

    def __init__(
        self, poll_seconds: float = POLL_SECONDS, min_gap_seconds: float = MIN_GAP_SECONDS
    ) -> None:
        self._poll_seconds = poll_seconds
        self._min_gap_seconds = min_gap_seconds
        self._topics: dict[str, _Topic] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._reader: Reader | None = None
        self._task: asyncio.Task[None] | None = None
        #: Reads the watcher made (each one query per 500 batches): for metrics and tests.
        self.reads = 0

    def attach(self, reader: Reader) -> None:
        """Where the watcher reads batches from (the store is opened after this object)."""
        self._reader = reader

    def notify(self, batch_id: str) -> None:
        """This process changed the batch: its followers hear of it at once."""
        if batch_id in self._topics:
            self._dirty.add(batch_id)
            self._wake.set()

    @property
    def followed(self) -> int:
        """How many batches have followers in this process."""
        return len(self._topics)

    @contextlib.contextmanager
    def follow(self, batch_id: str) -> Iterator[Follower]:
        """A follower of ``batch_id`` for the block: offered the newest known state at once
        when others already follow the batch, else as soon as the watcher has read it."""
        follower = Follower()
        topic = self._topics.get(batch_id)
        if topic is None:
            topic = self._topics[batch_id] = _Topic()
            self.notify(batch_id)
        elif topic.state is not None:
            follower.offer(topic.state)
        topic.followers.add(follower)
        metrics.EVENT_FOLLOWERS.inc()
        self._ensure_watching()
        try:
            yield follower
        finally:
            metrics.EVENT_FOLLOWERS.dec()
            topic.followers.discard(follower)
            if not topic.followers and self._topics.get(batch_id) is topic:
                del self._topics[batch_id]
                self._dirty.discard(batch_id)
                self._wake.set()  # the watcher ends once nothing is followed

    async def close(self) -> None:
        """Stop the watcher (server shutdown); followers keep their last state."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_watching(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while self._topics:
            if loop.time() >= next_poll:
                wanted = list(self._topics)
                next_poll = loop.time() + self._poll_seconds
            else:
                wanted = [batch_id for batch_id in self._dirty if batch_id in self._topics]
            self._dirty.clear()
            self._wake.clear()
            if wanted:
                await self._refresh(wanted)
            await asyncio.sleep(self._min_gap_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_poll - loop.time()))

    async def _refresh(self, batch_ids: list[str]) -> None:
        if self._reader is None:
            return
        try:
            found = await self._reader(batch_ids)
        except Exception:
            # A busy or unreachable database: followers keep their last state and the next
            # poll tries again, rather than every stream failing at once.
            logger.warning("reading followed batches failed; retrying", exc_info=True)
            return
        self.reads += 1
        metrics.EVENT_READS.inc()
        for batch_id in batch_ids:
            topic = self._topics.get(batch_id)
            if topic is None:
                continue
            state: State = found.get(batch_id, GONE)
            if state == topic.state:
                continue
            topic.state = state
            for follower in topic.followers:
                follower.offer(state)
