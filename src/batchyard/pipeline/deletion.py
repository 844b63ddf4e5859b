"""Deleting a batch: its objects, its ledger rows, then its metadata (which makes it 404).

Metadata goes last so that a crash half-way leaves the batch visible in ``deleting`` and the
next start finishes the job, rather than a batch that looks gone while its files remain.
"""

from __future__ import annotations

import asyncio
import logging

from batchyard.pipeline import keys
from batchyard.pipeline.context import PipelineContext
from batchyard.store import batches as batch_rows

logger = logging.getLogger("batchyard.pipeline")


async def delete_batch_data(ctx: PipelineContext, batch_id: str) -> None:
    removed = await ctx.blobs.delete_prefix(keys.batch_prefix(batch_id))
    await asyncio.to_thread(ctx.target.forget_batch, batch_id)
    async with ctx.store.begin() as conn:
        await batch_rows.delete_batch_rows(conn, batch_id)
    ctx.notify(batch_id)
    logger.info("batch %s deleted (%d objects removed)", batch_id, removed)
