"""Deleting batches that ended longer ago than BATCHYARD_RETENTION_DAYS, in either run mode.

An expired batch goes the way of DELETE /batches/{id}: ``deleting``, then its input, results,
history and log are removed; the rows it loaded stay. Each runner records the deletion in the
same transaction (a queued job) or starts it after the commit (the embedded runner).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.pipeline.context import PipelineContext
from batchyard.store.retention import expire_ended_batches

logger = logging.getLogger("batchyard.runner")

SECONDS_PER_DAY = 86_400.0
#: The longest wait between two looks for expired batches (the embedded runner; queue workers
#: look at every sweep).
LONGEST_CHECK_INTERVAL = 60.0


def check_interval(retention_days: float) -> float:
    """Seconds between two looks: every minute, or often enough for a short retention."""
    return min(LONGEST_CHECK_INTERVAL, retention_days * SECONDS_PER_DAY / 4)


async def expire_batches(
    ctx: PipelineContext, record_delete: Callable[[AsyncConnection, str], Awaitable[None]]
) -> list[str]:
    """Move every batch past the retention period to ``deleting``; the ids moved.

    ``record_delete`` runs in the same transaction for each, so a queued deletion commits with
    the status that needs it. Does nothing when no retention period is set.
    """
    days = ctx.settings.retention_days
    if days is None:
        return []
    reason = f"Deleting: the batch ended more than {days:g} day(s) ago (BATCHYARD_RETENTION_DAYS)"
    expired: list[str] = []
    while True:  # in rounds, so one transaction never holds a huge backlog
        async with ctx.store.begin() as conn:
            moved = await expire_ended_batches(
                conn, ended_before=now() - days * SECONDS_PER_DAY, reason=reason
            )
            for batch_id in moved:
                await record_delete(conn, batch_id)
        for batch_id in moved:
            ctx.notify(batch_id)
        expired += moved
        if not moved:
            break
    if expired:
        logger.info("retention: %d ended batch(es) to delete", len(expired))
    return expired
