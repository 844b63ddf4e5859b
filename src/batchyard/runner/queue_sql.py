"""The queue's SQL, run on the metadata store's own connection so it joins the caller's transaction.

procrastinate's ``procrastinate_defer_jobs_v1`` is what its own ``defer`` calls; calling it here
instead makes a job and the batch change that needs it commit (or roll back) together. Every job of
a batch carries the lock ``batch:<id>``, so procrastinate never runs two of them at once; helper
jobs, which apply a processing batch's chunks beside its own job, carry no lock (the target's
chunk locks keep them apart). Every name is qualified with batchyard's schema, where the queue
lives; the session's search path (the same schema only) serves procrastinate's own functions.
A batch's run job is queued behind its owner's other batches (``defer_job``'s priority), so
workers take users in turn.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.tables import SCHEMA

#: The queue every batchyard job goes to.
QUEUE = "batchyard"
#: Task names, shared by whoever defers a job and the workers that run it.
RUN_BATCH = "batchyard.run_batch"
DELETE_BATCH = "batchyard.delete_batch"
SWEEP = "batchyard.sweep"
HELP_BATCH = "batchyard.help_batch"

_S = f'"{SCHEMA}"'
_DEFER = sa.text(
    f"SELECT unnest({_S}.procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer),"
    " CAST(:lock AS text), NULL, CAST(:args AS jsonb),"
    " CASE WHEN CAST(:delay AS float) > 0"
    " THEN now() + make_interval(secs => CAST(:delay AS float)) END"
    f")]::{_S}.procrastinate_job_to_defer_v1[]))"
)
#: Batch jobs waiting or running for the batch's owner's other batches (``:states``: which).
_OWNER_JOBS = sa.text(
    f"SELECT count(*) FROM {_S}.procrastinate_jobs j JOIN {_S}.batches b"
    " ON b.id = j.args->>'batch_id'"
    " WHERE j.queue_name = :queue AND j.task_name = :task AND j.status = ANY(:states)"
    f" AND b.owner_id = (SELECT owner_id FROM {_S}.batches WHERE id = :batch_id)"
    " AND b.id <> :batch_id AND j.id < :before"
)
_LIVE_HELPERS = sa.text(
    f"SELECT count(*) FROM {_S}.procrastinate_jobs WHERE queue_name = :queue"
    " AND task_name = :task AND status IN ('todo', 'doing') AND args->>'batch_id' = :batch_id"
)
_ABORT = sa.text(
    f"SELECT {_S}.procrastinate_cancel_job_v1(id, true, false) FROM {_S}.procrastinate_jobs"
    " WHERE lock = :lock AND status = 'doing'"
)
_LIVE_LOCKS = sa.text(
    f"SELECT DISTINCT lock FROM {_S}.procrastinate_jobs"
    " WHERE queue_name = :queue AND status IN ('todo', 'doing') AND lock IS NOT NULL"
)


def batch_lock(batch_id: str) -> str:
    return f"batch:{batch_id}"


async def defer_job(conn: AsyncConnection, task: str, batch_id: str, *, delay: float = 0) -> int:
    """Queue ``task`` for the batch in ``conn``'s transaction; the job's id.

    A batch's run job goes behind its owner's other batches waiting or running: its priority
    is minus their number, so workers take users in turn rather than one user's backlog
    first (procrastinate runs higher priorities first, then older jobs).
    """
    priority = 0
    if task == RUN_BATCH:
        priority = -await owner_jobs(conn, batch_id, ("todo", "doing"))
    return await _defer(conn, task, batch_lock(batch_id), batch_id, priority, delay)


async def owner_jobs(
    conn: AsyncConnection, batch_id: str, states: tuple[str, ...], before: int | None = None
) -> int:
    """How many run jobs in ``states`` the batch's owner has for other batches (only those
    queued before job ``before``, if given)."""
    params = {
        "queue": QUEUE,
        "task": RUN_BATCH,
        "states": list(states),
        "batch_id": batch_id,
        "before": before if before is not None else 2**62,
    }
    return int(await conn.scalar(_OWNER_JOBS, params) or 0)


async def defer_helpers(conn: AsyncConnection, batch_id: str, wanted: int) -> int:
    """Queue helper jobs until the batch has ``wanted`` waiting or running; how many it has.

    The batch's own job asks again when it resumes after a crash: helpers still around from
    before count, so a batch never gathers more helpers than its streams.
    """
    params = {"queue": QUEUE, "task": HELP_BATCH, "batch_id": batch_id}
    live = int(await conn.scalar(_LIVE_HELPERS, params) or 0)
    for _ in range(wanted - live):
        await _defer(conn, HELP_BATCH, None, batch_id)
    return max(wanted, live)


async def _defer(
    conn: AsyncConnection,
    task: str,
    lock: str | None,
    batch_id: str,
    priority: int = 0,
    delay: float = 0,
) -> int:
    params = {
        "queue": QUEUE,
        "task": task,
        "priority": priority,
        "lock": lock,
        "args": json.dumps({"batch_id": batch_id}),
        "delay": delay,
    }
    job_id = await conn.scalar(_DEFER, params)
    return int(job_id)


async def abort_running_jobs(conn: AsyncConnection, batch_id: str) -> int:
    """Ask the workers running the batch's jobs to stop them; how many were asked."""
    return len((await conn.execute(_ABORT, {"lock": batch_lock(batch_id)})).all())


async def batches_with_live_jobs(conn: AsyncConnection) -> set[str]:
    """Ids of the batches that have a job waiting or running."""
    rows = await conn.scalars(_LIVE_LOCKS, {"queue": QUEUE})
    return {lock.removeprefix("batch:") for lock in rows if lock.startswith("batch:")}
