"""Read-only questions an operator's tools ask of the metadata database: is it there, what is
in it. Shared by readiness (``/ready``), metrics scrapes and ``batchyard doctor``; every answer
is computed from the database at the time of asking, so all processes agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.migrate import alembic_config
from batchyard.store.tables import SCHEMA, batches

_S = f'"{SCHEMA}"'
_QUEUE = sa.text(
    f"SELECT count(*), extract(epoch FROM now() - min(deferred.at))"
    f" FROM {_S}.procrastinate_jobs AS job"
    f" LEFT JOIN {_S}.procrastinate_events AS deferred"
    "  ON deferred.job_id = job.id AND deferred.type = 'deferred'"
    " WHERE job.status = 'todo'"
)
_RUNNING = sa.text(f"SELECT count(*) FROM {_S}.procrastinate_jobs WHERE status = 'doing'")
_LIVE_WORKERS = sa.text(
    f"SELECT count(*) FROM {_S}.procrastinate_workers"
    " WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The job queue as the database holds it (all workers' view, not one process's)."""

    #: Jobs waiting for a worker.
    queued: int
    #: Jobs a worker is running.
    running: int
    #: Seconds the oldest waiting job has waited (0 when none waits).
    oldest_queued_seconds: float
    #: Workers whose last heartbeat is recent.
    live_workers: int


async def ping(conn: AsyncConnection) -> None:
    """Raise unless the database answers a query on the metadata schema."""
    await conn.execute(sa.select(sa.func.count()).select_from(batches).where(sa.false()))


async def batches_by_status(conn: AsyncConnection) -> dict[str, int]:
    """How many batches are in each status right now."""
    rows = await conn.execute(
        sa.select(batches.c.status, sa.func.count()).group_by(batches.c.status)
    )
    return {str(status): int(count) for status, count in rows.all()}


async def queue_stats(conn: AsyncConnection, stalled_seconds: float) -> QueueStats:
    """Depth and age of the procrastinate queue; workers alive within ``stalled_seconds``."""
    queued, oldest = (await conn.execute(_QUEUE)).one()
    running = await conn.scalar(_RUNNING)
    live = await conn.scalar(_LIVE_WORKERS, {"seconds": stalled_seconds})
    return QueueStats(
        queued=int(queued or 0),
        running=int(running or 0),
        oldest_queued_seconds=max(0.0, float(oldest or 0.0)),
        live_workers=int(live or 0),
    )


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """Where the metadata schema is, and where this version of batchyard wants it."""

    current: str | None
    head: str
    #: Whether this batchyard ships the current migration (False: a newer version applied it).
    known: bool

    @property
    def is_current(self) -> bool:
        return self.current == self.head


async def schema_version(conn: AsyncConnection) -> SchemaVersion:
    """The applied migration and the newest one shipped, without migrating anything."""
    return await conn.run_sync(_schema_version)


def _schema_version(connection: Connection) -> SchemaVersion:
    options = {"version_table_schema": SCHEMA} if connection.dialect.name == "postgresql" else {}
    current = MigrationContext.configure(connection, opts=options).get_current_revision()
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = current is None or scripts.get_revision(current) is not None
    except RevisionError:  # a revision this package does not ship
        known = False
    return SchemaVersion(current=current, head=str(scripts.get_current_head()), known=known)
