"""Batch use cases: create (URLs or upload), read, follow, cancel, delete."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard import metrics
from batchyard.domain.batches import (
    Batch,
    BatchOptions,
    HistoryEntry,
    InputFormat,
    LogLevel,
    LogLine,
    Operation,
    Source,
    now,
)
from batchyard.domain.errors import (
    BatchNotFound,
    BatchyardError,
    Conflict,
    DuplicateIdempotencyKey,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    QuotaExceeded,
)
from batchyard.domain.permissions import Action
from batchyard.domain.reading import check_batch_mapping
from batchyard.domain.statuses import BatchStatus
from batchyard.operations.registry import operation_named
from batchyard.pipeline import keys
from batchyard.pipeline.http_guard import reach_of
from batchyard.pipeline.sources import validate_source_url
from batchyard.pipeline.sources_s3 import S3Sources
from batchyard.service.auth import (
    reads_local_files,
    require,
    require_operation,
    sees_all_batches,
    visible_batch,
)
from batchyard.service.container import Services
from batchyard.service.webhooks import validate_notify_url
from batchyard.store import batches as batch_rows
from batchyard.store import datasets as dataset_rows
from batchyard.store.users import Principal

S = BatchStatus


@dataclass(frozen=True, slots=True)
class NewBatch:
    """What a client asks for when creating a batch (already shape-checked by the API)."""

    dataset: str
    #: An operation's name (GET /operations lists them).
    operation: str = Operation.INSERT
    format: InputFormat | None = None
    sources: tuple[Source, ...] = ()
    hash: str | None = None
    options: BatchOptions = field(default_factory=BatchOptions)
    notify_url: str | None = None
    idempotency_key: str | None = None


def owner_filter(principal: Principal) -> str | None:
    """Whose batches a principal may see: None means everyone's."""
    return None if sees_all_batches(principal) else principal.user_id


def _new_batch(principal: Principal, request: NewBatch, sources: tuple[Source, ...]) -> Batch:
    ts = now()
    return Batch(
        id=str(uuid.uuid4()),
        owner_id=principal.user_id,
        dataset=request.dataset,
        operation=request.operation,
        status=S.NEW,
        format=request.format,
        sources=sources,
        options=request.options,
        created_ts=ts,
        updated_ts=ts,
        hash=request.hash,
        notify_url=request.notify_url,
        owner_name=principal.name,
    )


@dataclass(frozen=True, slots=True)
class Created:
    """A create's outcome: the new batch, or (``replayed``) the first one made with the key."""

    batch: Batch
    replayed: bool = False


def _fingerprint(request: NewBatch, kind: str) -> str | None:
    """What a keyed create asks for (an upload's body excepted: it is not read twice)."""
    if not request.idempotency_key:
        return None
    asked = {
        "kind": kind,
        "dataset": request.dataset,
        "operation": str(request.operation),
        "format": request.format.value if request.format else None,
        "sources": [s.to_json() for s in request.sources],
        "hash": request.hash,
        "options": request.options.to_json(),
        "notify_url": request.notify_url,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


async def _earlier(
    conn: AsyncConnection, principal: Principal, request: NewBatch, fingerprint: str | None
) -> Batch | None:
    """The batch first created with this key; IdempotencyKeyReused if it was asked differently."""
    if not request.idempotency_key:
        return None
    found = await batch_rows.find_keyed_batch(conn, principal.user_id, request.idempotency_key)
    if found is None:
        return None
    batch, stored = found
    if stored is not None and fingerprint is not None and stored != fingerprint:
        raise IdempotencyKeyReused(
            details={"idempotency_key": request.idempotency_key, "batch": batch.id}
        )
    return batch


async def _replay(
    svc: Services, principal: Principal, request: NewBatch, fingerprint: str | None
) -> Created:
    """A concurrent create with the same key won the insert: answer with its batch."""
    async with svc.store.begin(writes=False) as conn:
        earlier = await _earlier(conn, principal, request, fingerprint)
    if earlier is None:  # it was deleted in between
        raise Conflict(
            "The batch first created with this Idempotency-Key is gone; use a new key",
            details={"idempotency_key": request.idempotency_key},
        )
    return Created(earlier, replayed=True)


async def _admit(
    svc: Services, principal: Principal, request: NewBatch, fingerprint: str | None
) -> Batch | None:
    """Checks shared by both create forms; returns the earlier batch for a repeated key."""
    require(principal, Action.CREATE_BATCH, request.dataset)
    require_operation(principal, request.dataset, str(request.operation))
    operation = operation_named(request.operation)
    operation.check(request.options.operation, reach_of(svc.settings))
    for option, chosen in (
        ("atomic", request.options.atomic),
        ("dry_run", request.options.dry_run),
    ):
        if chosen and not operation.writes_table:
            raise InvalidRequest(
                f"options.{option} applies to insert, upsert and delete: {operation.name} has "
                "effects outside the database, which a rollback cannot take back",
                details={"operation": operation.name, "field": f"options.{option}"},
            )
    async with svc.store.begin(writes=False) as conn:
        dataset = await dataset_rows.get_dataset(conn, request.dataset)
        earlier = await _earlier(conn, principal, request, fingerprint)
        if earlier is not None:
            return earlier
        await _check_batch_quota(svc, conn, principal)
        await _check_resubmits(conn, principal, request)
    if request.operation in {Operation.UPSERT, Operation.DELETE} and not dataset.primary_key:
        raise InvalidRequest(
            f"{request.operation} needs a primary key, and dataset {dataset.name!r} has none"
        )
    check_batch_mapping(dataset, request.options)
    return None


async def _check_resubmits(conn: AsyncConnection, principal: Principal, request: NewBatch) -> None:
    """options.resubmits must name a batch the principal sees, of the same dataset."""
    resubmits = request.options.resubmits
    if resubmits is None:
        return
    try:
        earlier = await batch_rows.get_batch(conn, resubmits, owner_id=owner_filter(principal))
    except BatchNotFound:
        raise InvalidRequest(
            f"options.resubmits: there is no batch {resubmits} of yours",
            details={"resubmits": resubmits},
        ) from None
    if earlier.dataset != request.dataset:
        raise InvalidRequest(
            f"options.resubmits: batch {resubmits} went to dataset {earlier.dataset!r}, "
            f"not {request.dataset!r}",
            details={"resubmits": resubmits},
        )


async def _check_batch_quota(svc: Services, conn: AsyncConnection, principal: Principal) -> None:
    """QuotaExceeded when the user already has as many unfinished batches as allowed.

    Counted in the metadata database, so it holds across API replicas (two creates at the same
    instant may both pass).
    """
    quota = svc.settings.quota_unfinished_batches
    if not quota:
        return
    unfinished = await batch_rows.count_unfinished_batches(conn, principal.user_id)
    if unfinished >= quota:
        raise QuotaExceeded(
            f"You have {unfinished} unfinished batches, the most allowed; wait for some to end",
            retry_after=30,
            details={"quota": "unfinished_batches", "limit": quota},
        )


async def create_batch(svc: Services, principal: Principal, request: NewBatch) -> Created:
    """Create a batch whose sources are URLs; the pipeline fetches them in the background."""
    if not request.sources:
        raise InvalidRequest("sources must list at least one URL (or upload the file as the body)")
    s3, reach = S3Sources.from_settings(svc.settings), reach_of(svc.settings)
    for source in request.sources:
        url = source.url or ""
        validate_source_url(url, file_root=_file_root(svc, principal), s3=s3, reach=reach)
    if request.notify_url:
        validate_notify_url(request.notify_url, reach)
    fingerprint = _fingerprint(request, "urls")
    earlier = await _admit(svc, principal, request, fingerprint)
    if earlier is not None:
        return Created(earlier, replayed=True)
    batch = _new_batch(principal, request, await s3.expand(request.sources))
    return await _insert_and_queue(svc, principal, request, fingerprint, batch)


async def create_retry_batch(svc: Services, principal: Principal, request: NewBatch) -> Created:
    """Create a batch that sends again what ``request.options.retry_of`` did not apply; its
    input is made in its copying step, in the background (pipeline/retry_copy.py)."""
    if request.notify_url:
        validate_notify_url(request.notify_url, reach_of(svc.settings))
    fingerprint = _fingerprint(request, "retry")
    earlier = await _admit(svc, principal, request, fingerprint)
    if earlier is not None:
        return Created(earlier, replayed=True)
    batch = _new_batch(principal, request, (Source(url=None),))
    return await _insert_and_queue(svc, principal, request, fingerprint, batch)


async def _insert_and_queue(
    svc: Services, principal: Principal, request: NewBatch, fingerprint: str | None, batch: Batch
) -> Created:
    """Store ``batch`` and queue its run in one transaction, then wake the runner; a concurrent
    create with the same idempotency key that stored first is answered instead (replayed)."""
    try:
        async with svc.store.begin(writes_batch=batch.id, dataset=batch.dataset) as conn:
            await batch_rows.insert_batch(
                conn, batch, idempotency_key=request.idempotency_key, fingerprint=fingerprint
            )
            await svc.runner.enqueue(conn, batch.id)
    except DuplicateIdempotencyKey:
        return await _replay(svc, principal, request, fingerprint)
    svc.runner.submit(batch.id)
    return Created(batch)


def _file_root(svc: Services, principal: Principal) -> Path | None:
    """file:// sources are for admins only, and only under the configured root."""
    return svc.settings.file_sources_root if reads_local_files(principal) else None


async def create_upload_batch(
    svc: Services, principal: Principal, request: NewBatch, body: AsyncIterable[bytes]
) -> Created:
    """Create a batch from the request body, streamed to storage and hashed on the way."""
    if request.notify_url:
        validate_notify_url(request.notify_url, reach_of(svc.settings))
    fingerprint = _fingerprint(request, "upload")
    earlier = await _admit(svc, principal, request, fingerprint)
    if earlier is not None:
        return Created(earlier, replayed=True)
    batch = _new_batch(principal, request, (Source(url=None),))
    try:
        async with svc.store.begin(writes_batch=batch.id, dataset=batch.dataset) as conn:
            await batch_rows.insert_batch(
                conn, batch, idempotency_key=request.idempotency_key, fingerprint=fingerprint
            )
            batch = await batch_rows.transition_batch(conn, batch.id, S.COPYING)
    except DuplicateIdempotencyKey:
        return await _replay(svc, principal, request, fingerprint)
    try:
        written = await svc.blobs.write_stream(
            keys.input_key(batch.id, 0), body, max_bytes=svc.settings.max_upload_bytes
        )
    except BaseException as error:
        await _fail_upload(svc, batch.id, error)
        raise
    metrics.INPUT_BYTES.inc(written.size)
    return Created(await _finish_upload(svc, batch, written.size, written.sha256))


async def _fail_upload(svc: Services, batch_id: str, error: BaseException) -> None:
    reason = error.message if isinstance(error, BatchyardError) else "the upload was interrupted"
    try:
        async with svc.store.begin(writes_batch=batch_id) as conn:
            await batch_rows.append_log(conn, batch_id, LogLevel.ERROR, f"Upload failed: {reason}")
            await batch_rows.transition_batch(conn, batch_id, S.FAILED, error_message=reason)
    except InvalidTransition:
        svc.runner.submit(batch_id)  # cancelled meanwhile: let the pipeline finish the cancel
    svc.events.notify(batch_id)


async def _finish_upload(svc: Services, batch: Batch, size: int, sha256: str) -> Batch:
    try:
        async with svc.store.begin(writes_batch=batch.id, dataset=batch.dataset) as conn:
            await batch_rows.append_log(
                conn, batch.id, LogLevel.INFO, f"Received upload: {size} bytes (sha256 {sha256})"
            )
            batch = await batch_rows.transition_batch(conn, batch.id, S.COPIED)
            if batch.hash and batch.hash.lower() != sha256:
                message = f"The uploaded bytes have sha256 {sha256}, not the given {batch.hash}"
                await batch_rows.append_log(conn, batch.id, LogLevel.ERROR, message)
                batch = await batch_rows.transition_batch(
                    conn, batch.id, S.HASH_MISMATCH, error_message=message
                )
            if not batch.is_terminal:
                await svc.runner.enqueue(conn, batch.id)
    except InvalidTransition:
        pass  # cancelled while uploading; the pipeline finishes the cancel
    svc.events.notify(batch.id)
    if not batch.is_terminal:
        svc.runner.submit(batch.id)
    return await get_batch_unscoped(svc, batch.id)


def _read_batch(conn: AsyncConnection, batch_id: str) -> Callable[[], Awaitable[Batch]]:
    """A loader of the batch as it is in ``conn``'s transaction, whoever owns it."""
    return lambda: batch_rows.get_batch(conn, batch_id, owner_id=None)


async def _cached_batch(svc: Services, batch_id: str) -> Batch:
    """Any owner's batch, from this process's status reads (see store.fresh) or the database."""

    async def load() -> Batch:
        async with svc.store.read() as conn:
            return await batch_rows.get_batch(conn, batch_id, owner_id=None)

    return await svc.store.reads.load(("batch", batch_id), load)


async def get_batch(
    svc: Services, principal: Principal, batch_id: str, action: Action = Action.GET_BATCH
) -> Batch:
    """The batch, if it exists and the principal may see it; else BatchNotFound, identically.

    Read from this process's status reads: the visibility rule applies to the remembered batch
    exactly as to a fresh one (a batch's owner and dataset never change)."""
    return await visible_batch(principal, action, lambda: _cached_batch(svc, batch_id))


async def list_batches(
    svc: Services,
    principal: Principal,
    *,
    status: BatchStatus | None,
    dataset: str | None,
    limit: int,
    cursor: str | None,
    owner: str | None = None,
) -> tuple[list[Batch], str | None]:
    """A page of the batches the principal may see, ``owner`` (a user name) narrowing it.

    The owner filter only ever narrows: for a principal who sees only their own batches, another
    user's name finds nothing, exactly as a name no user has.
    """
    require(principal, Action.LIST_BATCHES)
    async with svc.store.read() as conn:
        return await batch_rows.list_batches(
            conn,
            owner_id=owner_filter(principal),
            owner_name=owner,
            status=status,
            dataset=dataset,
            limit=limit,
            cursor=cursor,
            dataset_patterns=principal.grants.dataset_scope(Action.LIST_BATCHES),
        )


async def get_history(svc: Services, principal: Principal, batch_id: str) -> list[HistoryEntry]:
    """The batch's snapshots, newest first (remembered like the batch: see store.fresh)."""
    await get_batch(svc, principal, batch_id, Action.GET_BATCH_STATUS)

    async def load() -> list[HistoryEntry]:
        async with svc.store.read() as conn:
            return await batch_rows.get_history(conn, batch_id)

    return await svc.store.reads.load(("history", batch_id), load)


async def get_log(svc: Services, principal: Principal, batch_id: str) -> list[LogLine]:
    async with svc.store.read() as conn:
        await visible_batch(principal, Action.GET_BATCH_LOG, _read_batch(conn, batch_id))
        return await batch_rows.get_log(conn, batch_id)


async def cancel_batch(svc: Services, principal: Principal, batch_id: str) -> Batch:
    """Ask the pipeline to stop at its next chunk; committed chunks stay applied."""
    async with svc.store.begin() as conn:
        await visible_batch(principal, Action.CANCEL_BATCH, _read_batch(conn, batch_id))
        await batch_rows.append_log(
            conn, batch_id, LogLevel.INFO, f"Cancel requested by {principal.name}"
        )
        batch = await batch_rows.transition_batch(conn, batch_id, S.CANCEL)
        await svc.runner.abort(conn, batch_id)
    svc.events.notify(batch_id)
    svc.runner.submit(batch_id)
    return batch


async def delete_batch(svc: Services, principal: Principal, batch_id: str) -> Batch:
    """Start removing a finished batch's input, results and history; the loaded rows stay."""
    async with svc.store.begin() as conn:
        await visible_batch(principal, Action.DELETE_BATCH, _read_batch(conn, batch_id))
        batch = await batch_rows.transition_batch(conn, batch_id, S.DELETING)
        await svc.runner.enqueue_delete(conn, batch_id)
    svc.events.notify(batch_id)
    svc.runner.submit_delete(batch_id)
    return batch


def download_query(svc: Services, batch: Batch, path: str) -> tuple[str, int]:
    """(signed query string, expiry) for a temporary token-less GET of ``path``."""
    expires = int(now()) + svc.settings.download_ttl
    return svc.signer.sign("GET", path, batch.id, expires), expires


async def get_batch_unscoped(svc: Services, batch_id: str) -> Batch:
    """For signed downloads, where the signature itself proves access."""
    async with svc.store.read() as conn:
        return await batch_rows.get_batch(conn, batch_id, owner_id=None)
