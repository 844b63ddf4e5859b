"""The webhook outbox: terminal batches whose ``notify_url`` has not been delivered yet.

A batch with a notify_url is created with ``notify_state = 'pending'``; once terminal, one
dispatcher claims it with a lease (a guarded UPDATE, so concurrent dispatchers never both win), and
records the outcome. A dispatcher that dies leaves the lease to expire, and another takes over.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import Batch
from batchyard.domain.statuses import TERMINAL
from batchyard.store.rows import batch_from_row
from batchyard.store.tables import batches

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def _due(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        batches.c.notify_state == PENDING,
        batches.c.status.in_(sorted(s.value for s in TERMINAL)),
        sa.or_(batches.c.notify_lease_ts.is_(None), batches.c.notify_lease_ts < now),
    )


async def any_due(conn: AsyncConnection, *, now: float) -> bool:
    """Whether some batch's webhook is due: a read, so polling an empty outbox writes nothing."""
    query = sa.select(batches.c.id).where(_due(now)).limit(1)
    return (await conn.scalar(query)) is not None


async def claim_due(
    conn: AsyncConnection, *, now: float, lease_until: float, limit: int
) -> list[Batch]:
    """Claim up to ``limit`` terminal batches whose webhook is due, until ``lease_until``."""
    query = sa.select(batches.c.id).where(_due(now)).order_by(batches.c.updated_ts).limit(limit)
    claimed = []
    for batch_id in (await conn.scalars(query)).all():
        update = (
            sa.update(batches)
            .where(batches.c.id == batch_id, _due(now))
            .values(notify_lease_ts=lease_until)
            .returning(*batches.c)
        )
        row = (await conn.execute(update)).mappings().first()
        if row is not None:
            claimed.append(batch_from_row(row))
    return claimed


async def finish(conn: AsyncConnection, batch_id: str, state: str) -> None:
    """Record the delivery's outcome (DELIVERED or FAILED): the batch is not claimed again."""
    await conn.execute(
        sa.update(batches)
        .where(batches.c.id == batch_id)
        .values(notify_state=state, notify_lease_ts=None)
    )
