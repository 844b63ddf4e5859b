"""A retry whose original is deleted before the retry's records are copied fails, and says why.

``POST /batches/{id}/retry`` answers at once and the records are copied in the retry's own
copying step, later (a queue may hold it for a while). A user may delete the original meanwhile:
the retry must then end, with an error that names the original, not stay in ``copying`` for good
(a deleted original once read as "this batch was deleted while running") nor fail as an internal
error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchyard.domain.batches import Batch, BatchStatus
from batchyard.pipeline import keys
from batchyard.pipeline.run import run_batch
from batchyard.service.retries import retry_batch
from batchyard.store import batches as batch_rows
from differential.harness import PipelineHarness, harness_settings, open_harness
from support.items import ITEMS, items_csv


@pytest.fixture
def harness(target_url: str, tmp_path: Path) -> Iterator[PipelineHarness]:
    with open_harness(harness_settings(tmp_path / "data", target_url, 64 * 1024)) as opened:
        yield opened


def _retry_after(harness: PipelineHarness, remove: str) -> Batch:
    """Import a file with one bad record, retry it, remove the original's ``remove`` (its rows
    or its stored files) before the retry runs, then run the retry to its end."""
    dataset = harness.new_dataset(ITEMS)
    original = harness.run(dataset, items_csv(5, bad={3}).encode()).batch
    assert (original.status, original.counts.failed) == (BatchStatus.COMPLETED, 1)
    ctx, portal = harness._ctx, harness._portal

    async def retry_then_remove() -> Batch:
        created = await retry_batch(harness._services, harness._principal, original.id, None)
        assert created.batch.status == BatchStatus.NEW
        if remove == "rows":
            async with ctx.store.begin() as conn:
                await batch_rows.delete_batch_rows(conn, original.id)
        else:
            await ctx.blobs.delete_prefix(keys.batch_prefix(original.id))
        await run_batch(ctx, created.batch.id)
        async with ctx.store.read() as conn:
            return await batch_rows.get_batch(conn, created.batch.id, owner_id=None)

    return portal.call(retry_then_remove)


@pytest.mark.parametrize(
    ("remove", "said"),
    [
        ("rows", "was deleted before they were copied"),  # the original batch deleted
        ("files", "are no longer stored"),  # its stored files removed
    ],
)
def test_a_retry_whose_original_is_gone_fails_naming_it(
    harness: PipelineHarness, remove: str, said: str
) -> None:
    retried = _retry_after(harness, remove)
    assert retried.status == BatchStatus.FAILED
    assert retried.error_message is not None
    assert said in retried.error_message
    assert "internal error" not in retried.error_message
