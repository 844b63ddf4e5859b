"""Several chunks in one target transaction: the unit of commit larger than the unit of memory.

A chunk stays the unit of validation, of the ledger and of resume (a few MiB, so that few are
held at once), but on a target with one writer (SQLite) each commit has a cost of its own: the
transaction, its ledger rows, the log pages written out, a checkpoint woken. So the one stream
applying such a batch keeps its transaction open for the next chunk when one is already waiting
(up to ``most`` chunks), and commits them together, each with its own ledger row: a chunk's rows
and its ledger row still commit in one transaction, and a crash loses the whole group, which a
resume applies again, never twice. A chunk that is not waiting yet is not waited for: the group
commits, so a writer faster than validation commits chunk by chunk as before.

Every chunk added is checked against the stop predicate before its ledger row is reserved (the
cancel bound of the engine holds per chunk); a chunk the predicate stops is not applied, and the
group before it commits. An error applying any chunk rolls the whole group back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from batchyard.apply.engine import (
    Applied,
    ApplyKind,
    ChunkApplier,
    ChunkWork,
    claim_in_thread,
    in_thread_to_end,
    stopped,
)
from batchyard.apply.ports import ChunkClaim
from batchyard.domain.batches import LogLevel
from batchyard.domain.outcomes import ChunkOutcome

#: The next chunk if one is waiting already, else None (never waits for one to arrive).
WaitingChunk = Callable[[], Awaitable[ChunkWork | None]]


async def apply_together(
    applier: ChunkApplier, first: ChunkWork, waiting: WaitingChunk, *, wait: bool, most: int
) -> list[Applied]:
    """Apply ``first``, and each chunk ``waiting`` has ready (``most`` in all), in one commit.

    One result per chunk taken, in order; a stopped chunk, if any, is the last. Chunks added
    are reserved in the ledger of ``first``'s claim (``ChunkClaim.add``): only for a target
    that does not share chunks, where nobody else can be holding one.
    """
    claimed = await claim_in_thread(applier.target, applier.batch_id, first.index, wait)
    if claimed is None:
        return [Applied(ApplyKind.HELD_ELSEWHERE, first.index)]
    if isinstance(claimed, ChunkOutcome):
        return [Applied(ApplyKind.ALREADY_DONE, first.index, claimed)]
    group = _Group(applier, claimed)
    try:
        work: ChunkWork | None = first
        while work is not None:
            if not await group.take(work, first=work is first):
                break
            work = await waiting() if group.applied < most else None
        await group.commit()
    except BaseException:
        await in_thread_to_end(claimed.release)
        raise
    finally:
        await applier.write_log(group.lines)
    return group.results


class _Group:
    """The chunks of one open claim: applied in its transaction, committed together."""

    def __init__(self, applier: ChunkApplier, claim: ChunkClaim) -> None:
        self.applier = applier
        self.claim = claim
        self.results: list[Applied] = []
        self.outcomes: list[ChunkOutcome] = []
        self.lines: list[tuple[LogLevel, str]] = []

    @property
    def applied(self) -> int:
        return len(self.outcomes)

    async def take(self, work: ChunkWork, *, first: bool) -> bool:
        """Apply ``work`` in the group unless the batch's work stops (False: take no more)."""
        signal = await self.applier.stop_signal()
        if signal is not None:
            self.results.append(stopped(work.index, signal))
            return False
        applied, outcome = await in_thread_to_end(self._apply, work, first)
        if applied:
            self.outcomes.append(outcome)
            self.results.append(Applied(ApplyKind.APPLIED, work.index, outcome))
        else:  # committed before a crash: nothing to apply
            self.results.append(Applied(ApplyKind.ALREADY_DONE, work.index, outcome))
        return not self.applier.stopping.is_set()

    def _apply(self, work: ChunkWork, first: bool) -> tuple[bool, ChunkOutcome]:
        """(applied, outcome): reserve an added chunk's ledger row, then apply it, in one trip
        to a worker thread (the stored outcome, unapplied, if the ledger has it)."""
        if not first and (done := self.claim.add(work.index)) is not None:
            return False, done
        return True, self.applier.run_operation(self.claim.transaction, work, self.lines)

    async def commit(self) -> None:
        """Commit every chunk applied, with its ledger row (release the claim if none was)."""
        if self.outcomes:
            await in_thread_to_end(self.claim.commit, *self.outcomes)
        else:
            await in_thread_to_end(self.claim.release)
