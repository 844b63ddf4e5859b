"""A batch of a Parquet input as the pipeline's readers take it, for scripts that read stored inputs
in a fresh process (their memory measured apart from the test runner's)."""

from __future__ import annotations

from batchyard.domain.batches import Batch, BatchOptions, BatchStatus, InputFormat, Source


def parquet_batch(batch_id: str, status: BatchStatus, dataset: str = "items") -> Batch:
    """The one-source Parquet insert batch ``batch_id`` of user u1, in ``status``."""
    return Batch(
        id=batch_id,
        owner_id="u1",
        dataset=dataset,
        operation="insert",
        status=status,
        format=InputFormat.PARQUET,
        sources=(Source(None),),
        options=BatchOptions(),
        created_ts=0.0,
        updated_ts=0.0,
    )
