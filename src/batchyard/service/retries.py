"""Retry: a new batch of an ended batch's failed and not-processed records, as they were sent.

The new batch's input is the original's failed-records file (each record as sent, plus the
``error`` column the readers leave out), copied like an upload: so a retry goes through the
same copy, validation and idempotency as any batch, and is what a user gets by uploading that
file themselves, with ``retry_of`` naming the original.
"""

from __future__ import annotations

from dataclasses import replace

from batchyard.domain.batches import InputFormat
from batchyard.domain.errors import NothingToRetry
from batchyard.domain.permissions import Action
from batchyard.pipeline import keys
from batchyard.service.auth import require
from batchyard.service.batches import Created, NewBatch, create_upload_batch, get_batch
from batchyard.service.container import Services
from batchyard.service.result_files import results_summary
from batchyard.store.users import Principal


async def retry_batch(
    svc: Services, principal: Principal, batch_id: str, idempotency_key: str | None
) -> Created:
    """Create the retry of ``batch_id``; the principal must see it (else 404) and may create
    batches of its operation in its dataset (else 403)."""
    require(principal, Action.CREATE_BATCH)
    original = await get_batch(svc, principal, batch_id, Action.GET_BATCH)
    summary = await results_summary(svc, original)
    if not summary.to_retry:
        raise NothingToRetry(
            f"Every record of batch {original.id} was applied: there is nothing to retry",
            details={"batch": original.id, "succeeded": summary.succeeded},
        )
    request = NewBatch(
        dataset=original.dataset,
        operation=original.operation,
        format=InputFormat(summary.failed_records_format),
        options=replace(original.options, retry_of=original.id, resubmits=None),
        notify_url=original.notify_url,
        idempotency_key=idempotency_key,
    )
    failed = svc.blobs.read_stream(keys.failed_records_key(original.id))
    return await create_upload_batch(svc, principal, request, failed)
