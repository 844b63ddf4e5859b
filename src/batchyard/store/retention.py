"""Which ended batches have outlived the retention period, moved to ``deleting`` in one go."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import LogLevel
from batchyard.domain.errors import BatchNotFound, InvalidTransition
from batchyard.domain.statuses import TERMINAL, BatchStatus
from batchyard.store.batches import append_log, transition_batch
from batchyard.store.tables import batches


async def expire_ended_batches(
    conn: AsyncConnection, *, ended_before: float, reason: str, limit: int = 100
) -> list[str]:
    """Move up to ``limit`` batches that ended before ``ended_before`` (epoch seconds) to
    ``deleting``, oldest first, with ``reason`` in their log; their ids.

    Several processes may sweep at once: a batch another one moved first is skipped, as the
    transition is checked against the status the database holds.
    """
    query = (
        sa.select(batches.c.id)
        .where(
            batches.c.completed_ts < ended_before,
            batches.c.status.in_(sorted(s.value for s in TERMINAL)),
        )
        .order_by(batches.c.completed_ts)
        .limit(limit)
    )
    expired = []
    for batch_id in (await conn.scalars(query)).all():
        try:
            await transition_batch(conn, batch_id, BatchStatus.DELETING)
        except (BatchNotFound, InvalidTransition):
            continue
        await append_log(conn, batch_id, LogLevel.INFO, reason)
        expired.append(batch_id)
    return expired
