"""Applying one chunk exactly once, with an explicit outcome for every way it can go.

A chunk is claimed (``ChunkTarget.claim_chunk``: its lock and its ledger row, in one open
transaction), then the batch's status is checked while the claim is held, as read at most
``STATUS_FRESH_SECONDS`` earlier (apply/status_watch.py: no round trip to the metadata store
per chunk): a batch that ended and then held its chunks' locks for that long (``settle``) can be
sure nobody applies one of them afterwards. Only then are the records loaded and handed to the
operation, and the outcome committed with the ledger row. The blocking parts run in worker
threads; no thread ever calls back into the event loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from batchyard.apply.operations import (
    OperationContext,
    RecordOperation,
    TableOperation,
    split_result,
)
from batchyard.apply.ports import ChunkClaim, ChunkTarget, TargetTransaction
from batchyard.apply.status_watch import STATUS_FRESH_SECONDS, StatusReader, StatusWatch
from batchyard.domain.batches import LogLevel
from batchyard.domain.errors import AtomicRollback, CancelRequested, StopSignal
from batchyard.domain.outcomes import ChunkOutcome
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus, stop_signal_for

logger = logging.getLogger("batchyard.apply")

#: A chunk's records, read only when the chunk still needs applying (in a worker thread).
Records = Callable[[], pa.Table]
#: Hears of each chunk's outcome in a dry run, as soon as it is known (before the rollback).
OnRehearsed = Callable[[ChunkOutcome], Awaitable[None]]
#: How often a chunk of an operation with effects elsewhere looks for a cancel while it runs.
CANCEL_POLL_SECONDS = 0.5
#: Writes a line an operation logged into the batch's log (in the event loop).
LogSink = Callable[[LogLevel, str], Awaitable[None]]


class ApplyKind(enum.StrEnum):
    """How one attempt to apply a chunk ended."""

    #: This participant applied the chunk; its outcome is committed with the ledger row.
    APPLIED = "applied"
    #: Another participant holds the chunk right now (only when not waiting for it).
    HELD_ELSEWHERE = "held_elsewhere"
    #: The ledger already holds the chunk (applied earlier, maybe before a crash).
    ALREADY_DONE = "already_done"
    #: The batch is no longer in the status the work belongs to: nothing was applied.
    BATCH_LEFT = "batch_left"
    #: The batch was asked to cancel: nothing was applied.
    CANCEL_REQUESTED = "cancel_requested"


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one attempt: what happened, and the chunk's outcome where there is one."""

    kind: ApplyKind
    index: int
    #: APPLIED and ALREADY_DONE: the committed outcome.
    outcome: ChunkOutcome | None = None
    #: BATCH_LEFT and CANCEL_REQUESTED: the stop signal to raise.
    signal: StopSignal | None = None


def stopped(index: int, signal: StopSignal) -> Applied:
    """Chunk ``index`` was not applied: the batch's work stops for ``signal``."""
    kind = (
        ApplyKind.CANCEL_REQUESTED if isinstance(signal, CancelRequested) else ApplyKind.BATCH_LEFT
    )
    return Applied(kind, index, signal=signal)


@dataclass(frozen=True, slots=True)
class ChunkWork:
    """One chunk to apply: its index in the batch, and how to get its records."""

    index: int
    records: Records


class ChunkApplier:
    """Applies one batch's chunks to a target, one claim per chunk (or one transaction: atomic).

    ``during`` is the status the batch must still be in for a chunk to be applied (validating
    while chunks are applied as validation goes on, processing after it). ``status_fresh_for``
    bounds how old the status a chunk is checked against may be (see ``StatusWatch``).
    """

    def __init__(
        self,
        target: ChunkTarget,
        *,
        batch_id: str,
        dataset: Dataset,
        operation: RecordOperation,
        read_status: StatusReader,
        during: BatchStatus,
        settings: Mapping[str, Any] | None = None,
        log_sink: LogSink | None = None,
        status_fresh_for: float = STATUS_FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.batch_id = batch_id
        self.dataset = dataset
        self.operation = operation
        self.status = StatusWatch(read_status, fresh_for=status_fresh_for, clock=clock)
        self.during = during
        self.settings = dict(settings or {})
        self.log_sink = log_sink
        #: Set once any stream of this applier stops (a stop signal, an error): threads see it.
        self.stopping = threading.Event()

    async def stop_signal(self, *, read_now: bool = False) -> StopSignal | None:
        """Why this batch's work must stop now, or None (the one predicate, domain/statuses).

        The status as read at most ``status.fresh_for`` ago, or as read now (``read_now``).
        """
        status = await (self.status.read() if read_now else self.status.current())
        signal = stop_signal_for(status, self.during)
        if signal is not None:
            self.stopping.set()
        return signal

    async def apply(self, work: ChunkWork, *, wait: bool) -> Applied:
        """Apply ``work`` unless another participant holds it (``wait`` unset) or did it."""
        claimed = await claim_in_thread(self.target, self.batch_id, work.index, wait)
        if claimed is None:
            return Applied(ApplyKind.HELD_ELSEWHERE, work.index)
        if isinstance(claimed, ChunkOutcome):
            return Applied(ApplyKind.ALREADY_DONE, work.index, claimed)
        try:
            signal = await self.stop_signal()
        except BaseException:
            await asyncio.to_thread(claimed.release)
            raise
        if signal is not None:
            await asyncio.to_thread(claimed.release)
            return stopped(work.index, signal)
        lines: list[tuple[LogLevel, str]] = []
        applying = asyncio.ensure_future(
            asyncio.to_thread(self._apply_claimed, claimed, work, lines)
        )
        watching = None
        if not isinstance(self.operation, TableOperation):
            watching = asyncio.create_task(self._watch_cancel(applying))
        try:
            outcome = await applying
        finally:
            if watching is not None:
                watching.cancel()
            await self.write_log(lines)
        return Applied(ApplyKind.APPLIED, work.index, outcome)

    async def _watch_cancel(self, applying: asyncio.Future[ChunkOutcome]) -> None:
        """While an operation with effects elsewhere works through a chunk, read the batch's
        status every CANCEL_POLL_SECONDS: a cancel sets ``stopping``, which the operation sees
        (``context.cancelled()``) and stops sending at once, not at the chunk's end."""
        while not applying.done():
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                if isinstance(await self.stop_signal(read_now=True), CancelRequested):
                    return
            except Exception:  # read again next time, and by the next claim in any case
                logger.warning(
                    "batch %s: status read failed while watching for a cancel",
                    self.batch_id,
                    exc_info=True,
                )

    def _apply_claimed(
        self, claim: ChunkClaim, work: ChunkWork, lines: list[tuple[LogLevel, str]]
    ) -> ChunkOutcome:
        try:
            outcome = self.run_operation(claim.transaction, work, lines)
            claim.commit(outcome)
        except BaseException:
            claim.release()
            raise
        return outcome

    def run_operation(
        self,
        tx: TargetTransaction,
        work: ChunkWork,
        lines: list[tuple[LogLevel, str]] | None = None,
    ) -> ChunkOutcome:
        """Run the operation on one chunk; what it logs goes to ``lines`` (None: Python's log)."""
        records = work.records()
        context = OperationContext(
            self.batch_id,
            self.dataset,
            work.index,
            tx,
            self.stopping.is_set,
            settings=self.settings,
            log_writer=self._log_writer(lines),
        )
        failures, outputs = split_result(self.operation.apply(records, context), records)
        return ChunkOutcome(work.index, records.num_rows - failures.num_rows, failures, outputs)

    def _log_writer(
        self, lines: list[tuple[LogLevel, str]] | None
    ) -> Callable[[LogLevel, str], None]:
        if lines is not None:
            return lambda level, message: lines.append((level, message))
        return lambda level, message: logger.info("batch %s: %s", self.batch_id, message)

    async def write_log(self, lines: Sequence[tuple[LogLevel, str]]) -> None:
        """The lines an operation logged, written once its thread is done (no thread calls
        back into the event loop)."""
        if self.log_sink is None:
            return
        for level, message in lines:
            await self.log_sink(level, message)

    async def apply_atomically(self, chunks: Sequence[ChunkWork]) -> list[ChunkOutcome]:
        """Every chunk in one transaction; rolled back whole if the target refuses a record."""
        signal = await self.stop_signal(read_now=True)
        if signal is not None:
            raise signal
        lines: list[tuple[LogLevel, str]] = []
        try:
            return await asyncio.to_thread(self._apply_all, chunks, lines)
        finally:
            await self.write_log(lines)

    def _apply_all(
        self, chunks: Sequence[ChunkWork], lines: list[tuple[LogLevel, str]]
    ) -> list[ChunkOutcome]:
        outcomes: list[ChunkOutcome] = []
        with self.target.transaction() as tx:
            for work in chunks:
                done = tx.claim_ledger(self.batch_id, work.index)
                if done is not None:
                    outcomes.append(done)
                    continue
                outcome = self.run_operation(tx, work, lines)
                if outcome.failures.num_rows:
                    first = outcome.failures.slice(0, 1).to_pylist()[0]
                    raise AtomicRollback(
                        f"options.atomic: record {first['record_number']} was refused "
                        f"({first['code']}: {first['message']}); nothing was applied"
                    )
                tx.record_outcome(self.batch_id, outcome)
                outcomes.append(outcome)
        return outcomes

    async def rehearse(self, chunks: Iterable[ChunkWork], on_outcome: OnRehearsed) -> None:
        """A dry run: every chunk in one transaction that is always rolled back.

        One transaction, so a chunk meets what the chunks before it would have written (a key
        repeated in two chunks is a duplicate, as in a real run); no ledger row either, so
        nothing of it lasts. Each outcome goes to ``on_outcome`` as it comes, and the stop
        predicate is asked between chunks: a cancel stops a long dry run at a chunk boundary.
        """
        stack = ExitStack()
        tx = await asyncio.to_thread(stack.enter_context, self.target.transaction())
        try:
            for work in chunks:
                signal = await self.stop_signal()
                if signal is not None:
                    raise signal
                # The session is busy in that thread: a cancel rolls back only once it is done.
                outcome = await in_thread_to_end(self.run_operation, tx, work)
                await on_outcome(outcome)
        finally:
            await asyncio.to_thread(_roll_back, stack)


class _RolledBack(Exception):
    """Unwinds a dry run's transaction: its rollback is the plan, not an error."""


def _roll_back(stack: ExitStack) -> None:
    error = _RolledBack()
    stack.__exit__(_RolledBack, error, None)


_T = TypeVar("_T")


async def in_thread_to_end(function: Callable[..., _T], *args: object) -> _T:
    """``function(*args)`` in a worker thread; a cancel waits for it to end, so that a target
    session is never used by two threads (the rollback after a cancel comes after it)."""
    pending = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        await asyncio.wait({pending})
        raise


async def claim_in_thread(
    target: ChunkTarget, batch_id: str, index: int, wait: bool
) -> ChunkClaim | ChunkOutcome | None:
    """``target.claim_chunk`` in a thread; a claim that arrives after a cancel is released."""
    pending = asyncio.ensure_future(
        asyncio.to_thread(target.claim_chunk, batch_id, index, wait=wait)
    )
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        claimed = await pending
        if claimed is not None and not isinstance(claimed, ChunkOutcome):
            await asyncio.to_thread(claimed.release)
        raise


@asynccontextmanager
async def settle(
    target: ChunkTarget,
    batch_id: str,
    pending: Sequence[int],
    *,
    linger: float = STATUS_FRESH_SECONDS,
) -> AsyncIterator[dict[int, int]]:
    """The committed counts with none of ``pending`` in flight anywhere, until the block exits.

    Entering waits for every chunk being applied; until exit nobody can claim one. The batch's
    new status is committed before the block exits (a cancel before it is entered, the end set
    inside it), and the chunks stay held ``linger`` seconds more: so a chunk claimed afterwards
    is checked against a status read after the new one was committed (``ChunkApplier.apply``
    checks one at most ``STATUS_FRESH_SECONDS`` old under the claim) and is not applied. So
    counts read here, and a status set inside the block, stay true.
    """
    holding = target.holding_chunks(batch_id, pending)
    await asyncio.to_thread(holding.__enter__)
    try:
        yield await asyncio.to_thread(target.committed_counts, batch_id)
        if pending:
            await asyncio.sleep(linger)
    finally:
        await asyncio.to_thread(holding.__exit__, None, None, None)
