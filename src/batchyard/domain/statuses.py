"""Batch statuses and the one table of allowed transitions."""

from __future__ import annotations

import enum

from batchyard.domain.errors import BatchLeft, CancelRequested, InvalidTransition, StopSignal


class BatchStatus(enum.StrEnum):
    """Where a batch is in its lifecycle (DESIGN.md, "Lifecycle")."""

    #: Accepted; nothing copied yet.
    NEW = "new"
    #: Input bytes are being copied to blob storage (SHA-256 computed on the way).
    COPYING = "copying"
    #: Every source is copied and, if a hash was given, verified.
    COPIED = "copied"
    #: The copied bytes differ from the hash given at create time. Terminal.
    HASH_MISMATCH = "hash_mismatch"
    #: Records are being read, counted and checked against the dataset schema.
    VALIDATING = "validating"
    #: The input cannot be used as a whole (format, header, too many invalid records). Terminal.
    VALIDATION_FAILED = "validation_failed"
    #: Valid records are being applied to the target, chunk by chunk.
    PROCESSING = "processing"
    #: Every chunk is applied; the results file is not written yet.
    PROCESSED = "processed"
    #: The per-record results and failed-records files are being written.
    WRITING_RESULTS = "writing_results"
    #: Finished; results are available. Terminal.
    COMPLETED = "completed"
    #: A user asked to cancel; the pipeline has not noticed yet.
    CANCEL = "cancel"
    #: The pipeline noticed the cancel and is stopping at a chunk boundary.
    CANCELLING = "cancelling"
    #: Stopped on request; chunks committed before the stop stay applied. Terminal.
    CANCELLED = "cancelled"
    #: Stopped by an error the client did not cause by a record (error_message says why). Terminal.
    FAILED = "failed"
    #: A user asked to delete a finished batch; its files are being removed.
    DELETING = "deleting"


TERMINAL: frozenset[BatchStatus] = frozenset(
    {
        BatchStatus.HASH_MISMATCH,
        BatchStatus.VALIDATION_FAILED,
        BatchStatus.COMPLETED,
        BatchStatus.CANCELLED,
        BatchStatus.FAILED,
    }
)

#: Statuses in which the pipeline still has work to do (resumed after a restart).
ACTIVE: frozenset[BatchStatus] = frozenset(set(BatchStatus) - TERMINAL - {BatchStatus.DELETING})
#: Statuses with work left: the pipeline's, or the removal of the batch's data.
UNFINISHED: frozenset[BatchStatus] = ACTIVE | {BatchStatus.DELETING}

#: Statuses that mean "stop and finish the cancel": the one cancel predicate of the pipeline.
CANCEL_REQUESTED: frozenset[BatchStatus] = frozenset({BatchStatus.CANCEL, BatchStatus.CANCELLING})

_S = BatchStatus
_FORWARD: dict[BatchStatus, frozenset[BatchStatus]] = {
    _S.NEW: frozenset({_S.COPYING}),
    _S.COPYING: frozenset({_S.COPIED}),
    _S.COPIED: frozenset({_S.VALIDATING, _S.HASH_MISMATCH}),
    _S.VALIDATING: frozenset({_S.PROCESSING, _S.VALIDATION_FAILED}),
    _S.PROCESSING: frozenset({_S.PROCESSED}),
    _S.PROCESSED: frozenset({_S.WRITING_RESULTS}),
    _S.WRITING_RESULTS: frozenset({_S.COMPLETED}),
    _S.CANCEL: frozenset({_S.CANCELLING}),
    _S.CANCELLING: frozenset({_S.CANCELLED}),
}


def _build_transitions() -> dict[BatchStatus, frozenset[BatchStatus]]:
    table: dict[BatchStatus, set[BatchStatus]] = {s: set(_FORWARD.get(s, ())) for s in _S}
    for status in ACTIVE:
        table[status].add(_S.FAILED)
        if status not in {_S.CANCEL, _S.CANCELLING}:
            table[status].add(_S.CANCEL)
    for status in TERMINAL:
        table[status].add(_S.DELETING)
    return {s: frozenset(targets) for s, targets in table.items()}


#: Every allowed transition: ``TRANSITIONS[from_status]`` is the set of statuses it may move to.
TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = _build_transitions()


def allowed_sources(target: BatchStatus) -> frozenset[BatchStatus]:
    """The statuses a batch may be in to move to ``target`` (for guarded UPDATEs)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def check_transition(current: BatchStatus, target: BatchStatus) -> None:
    """Raise InvalidTransition unless ``current → target`` is in the table."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"Batch cannot move from {current.value} to {target.value}",
            details={"from": current.value, "to": target.value},
        )


def stop_signal_for(status: BatchStatus, during: BatchStatus | None) -> StopSignal | None:
    """Why work on a batch in ``status`` must stop, or None to go on: the one cancel predicate.

    ``during`` is the status the work belongs to (chunks applied while validating, or in
    processing); None where only a cancel stops it (validation between chunks).
    """
    if status in CANCEL_REQUESTED:
        return CancelRequested()
    if during is not None and status != during:
        return BatchLeft(f"the batch is {status.value} now, no longer {during.value}")
    return None
