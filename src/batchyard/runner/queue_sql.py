"""The queue's SQL, run on the metadata store's own connection so it joins the caller's transaction.

procrastinate's ``procrastinate_defer_jobs_v1`` is what its own ``defer`` calls; calling it here
instead makes a job and the batch change that needs it commit (or roll back) together. Every job of
a batch carries the lock ``batch:<id>``, so procrastinate never runs two of them at once.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

#: The queue every batchyard job goes to.
QUEUE = "batchyard"
#: Task names, shared by whoever defers a job and the workers that run it.
RUN_BATCH = "batchyard.run_batch"
DELETE_BATCH = "batchyard.delete_batch"
SWEEP = "batchyard.sweep"

_DEFER = sa.text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), 0, CAST(:lock AS text), NULL,"
    " CAST(:args AS jsonb), NULL)]::procrastinate_job_to_defer_v1[]))"
)
_ABORT = sa.text(
    "SELECT procrastinate_cancel_job_v1(id, true, false) FROM procrastinate_jobs"
    " WHERE lock = :lock AND status = 'doing'"
)
_LIVE_LOCKS = sa.text(
    "SELECT DISTINCT lock FROM procrastinate_jobs"
    " WHERE queue_name = :queue AND status IN ('todo', 'doing') AND lock IS NOT NULL"
)


def batch_lock(batch_id: str) -> str:
    return f"batch:{batch_id}"


async def defer_job(conn: AsyncConnection, task: str, batch_id: str) -> int:
    """Queue ``task`` for the batch in ``conn``'s transaction; the job's id."""
    job_id = await conn.scalar(
        _DEFER,
        {
            "queue": QUEUE,
            "task": task,
            "lock": batch_lock(batch_id),
            "args": json.dumps({"batch_id": batch_id}),
        },
    )
    return int(job_id)


async def abort_running_jobs(conn: AsyncConnection, batch_id: str) -> int:
    """Ask the workers running the batch's jobs to stop them; how many were asked."""
    return len((await conn.execute(_ABORT, {"lock": batch_lock(batch_id)})).all())


async def batches_with_live_jobs(conn: AsyncConnection) -> set[str]:
    """Ids of the batches that have a job waiting or running."""
    rows = await conn.scalars(_LIVE_LOCKS, {"queue": QUEUE})
    return {lock.removeprefix("batch:") for lock in rows if lock.startswith("batch:")}
