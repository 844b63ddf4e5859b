"""Retry: a new batch of an ended batch's failed and not-processed records, as they were sent.

The new batch is created at once and answered with (``new``); its copying step makes its input
from the original's failed-records file (each record as sent, plus the ``error`` column the
readers leave out), or for a Parquet original the same records as Parquet
(pipeline/retry_copy.py). So a retry goes through the same copy, validation and idempotency as
any batch, is what a user gets by uploading that file themselves, with ``retry_of`` naming the
original, and the client follows it through its status and events like any other.
"""

from __future__ import annotations

from dataclasses import replace

from batchyard.domain.batches import InputFormat
from batchyard.domain.errors import NothingToRetry
from batchyard.domain.permissions import Action
from batchyard.service.auth import require
from batchyard.service.batches import Created, NewBatch, create_retry_batch, get_batch
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
        # A Parquet original's records go as Parquet where they can: the copy says which.
        format=None
        if original.format == InputFormat.PARQUET
        else InputFormat(summary.failed_records_format),
        options=replace(original.options, retry_of=original.id, resubmits=None),
        notify_url=original.notify_url,
        idempotency_key=idempotency_key,
    )
    return await create_retry_batch(svc, principal, request)
