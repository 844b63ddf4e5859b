"""Who copies a batch's input: the API process for a request body, the pipeline for URLs and for
a retry (so a retry stuck in copying after a worker died is queued again like any batch)."""

from __future__ import annotations

import dataclasses

from batchyard.domain.batches import BatchOptions, BatchStatus, Source
from support.parquet_batches import parquet_batch


def test_an_upload_is_copied_by_the_api_and_a_retry_or_url_batch_by_the_pipeline() -> None:
    upload = parquet_batch("b1", BatchStatus.COPYING)
    retry = dataclasses.replace(upload, options=BatchOptions(retry_of="b0"))
    fetched = dataclasses.replace(upload, sources=(Source("https://example.com/in.csv"),))

    assert upload.copied_by_api
    assert retry.is_upload and not retry.copied_by_api
    assert not fetched.copied_by_api
