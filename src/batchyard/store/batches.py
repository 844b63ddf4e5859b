"""Batches, their history snapshots and their log: the source of truth for every batch.

Status changes go through ``transition_batch`` only, whose UPDATE carries the transition table's
guard in its WHERE clause: of two concurrent transitions from the same status, the database lets
exactly one win, whatever the Python callers believed the status was.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import uuid
from collections.abc import Sequence
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import Batch, Counts, HistoryEntry, LogLevel, LogLine, now
from batchyard.domain.errors import (
    MAX_LOG_LINE,
    BatchNotFound,
    DuplicateIdempotencyKey,
    InvalidRequest,
    InvalidTransition,
    bounded_message,
)
from batchyard.domain.statuses import (
    ACTIVE,
    TERMINAL,
    UNFINISHED,
    BatchStatus,
    allowed_sources,
    check_transition,
)
from batchyard.store.changes import mark_transition
from batchyard.store.rows import (
    OWNER_NAME,
    batch_from_row,
    batch_values,
    counts_from_row,
    counts_values,
    name_like,
    select_batches,
)
from batchyard.store.tables import SCHEMA, batch_history, batch_log, batches, users

_COUNT_COLUMNS = (
    "total_operations",
    "processed_operations",
    "successful_operations",
    "failed_operations",
)


def _is_batch_id(batch_id: str) -> bool:
    """Batch ids are UUIDs; anything else cannot name a batch (and is not worth a query)."""
    try:
        uuid.UUID(batch_id)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


async def insert_batch(
    conn: AsyncConnection,
    batch: Batch,
    *,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> None:
    """Store a new batch and its first history snapshot.

    Raises DuplicateIdempotencyKey when the owner already has a batch with ``idempotency_key``;
    the insert runs in a savepoint, so the caller's transaction stays usable to fetch that batch.
    ``fingerprint`` records what the keyed request asked for, so a retry can be compared with it.
    A batch with ``notify_url`` starts with its webhook pending.
    """
    if not _is_batch_id(batch.id):
        raise InvalidRequest(f"batch id {batch.id!r} is not a UUID")
    row = {
        **batch_values(batch),
        "idempotency_key": idempotency_key,
        "idempotency_fingerprint": fingerprint,
        "notify_state": "pending" if batch.notify_url else None,
    }
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(batches).values(row))
    except IntegrityError as exc:
        if idempotency_key is None:
            raise
        if await find_batch_by_idempotency_key(conn, batch.owner_id, idempotency_key) is None:
            raise
        raise DuplicateIdempotencyKey(details={"idempotency_key": idempotency_key}) from exc
    await _record_snapshot(conn, batch.id)


async def get_batch(conn: AsyncConnection, batch_id: str, *, owner_id: str | None) -> Batch:
    """The batch if ``owner_id`` owns it (None: any owner), else BatchNotFound whatever the reason.

    Another user's batch and a missing one look the same, so ids cannot be probed.
    """
    if not _is_batch_id(batch_id):
        raise BatchNotFound()
    query = select_batches().where(batches.c.id == batch_id)
    if owner_id is not None:
        query = query.where(batches.c.owner_id == owner_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise BatchNotFound()
    return batch_from_row(row)


async def get_batch_status(conn: AsyncConnection, batch_id: str) -> BatchStatus:
    """The batch's status alone (BatchNotFound if there is no such batch): what the pipeline
    checks before and between chunks, several times a second, without the owner join and the
    JSON columns ``get_batch`` decodes."""
    if not _is_batch_id(batch_id):
        raise BatchNotFound()
    query = sa.select(batches.c.status).where(batches.c.id == batch_id)
    status = (await conn.execute(query)).scalar_one_or_none()
    if status is None:
        raise BatchNotFound()
    return BatchStatus(status)


async def list_batches(
    conn: AsyncConnection,
    *,
    owner_id: str | None,
    status: BatchStatus | None,
    dataset: str | None,
    limit: int,
    cursor: str | None,
    dataset_patterns: Sequence[str] | None = None,
    owner_name: str | None = None,
) -> tuple[list[Batch], str | None]:
    """One page of batches, newest first, and the cursor of the next page (None: last page).

    Keyset pagination on (created_ts, id): pages neither repeat nor skip batches created while a
    client pages through. ``dataset_patterns`` (``*`` wildcards) limits the datasets listed.
    ``owner_id`` and ``owner_name`` both apply when given: a caller limited to their own
    batches who asks for another user's gets an empty page, whether that user exists or not.
    """
    if limit < 1:
        raise InvalidRequest("limit must be at least 1")
    query = select_batches()
    if owner_id is not None:
        query = query.where(batches.c.owner_id == owner_id)
    if owner_name is not None:
        query = query.where(users.c.name == owner_name)
    if dataset_patterns is not None:
        query = query.where(sa.or_(sa.false(), *map(_dataset_like, dataset_patterns)))
    if status is not None:
        query = query.where(batches.c.status == status.value)
    if dataset is not None:
        query = query.where(batches.c.dataset == dataset)
    if cursor is not None:
        created_ts, last_id = _decode_cursor(cursor)
        key = sa.tuple_(batches.c.created_ts, batches.c.id)
        query = query.where(key < sa.tuple_(sa.literal(created_ts), sa.literal(last_id)))
    query = query.order_by(batches.c.created_ts.desc(), batches.c.id.desc()).limit(limit + 1)
    rows = (await conn.execute(query)).mappings().all()
    page = [batch_from_row(row) for row in rows[:limit]]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return page, next_cursor


def _dataset_like(pattern: str) -> sa.ColumnElement[bool]:
    return name_like(batches.c.dataset, pattern)


def _encode_cursor(last: Batch) -> str:
    raw = json.dumps([last.created_ts, last.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: Larger than any timestamp a cursor can carry: bounds a forged one before float() sees it.
_MAX_TS = 1e15


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_ts, last_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest("cursor is not valid", details={"cursor": cursor}) from None
    if (
        isinstance(created_ts, bool)
        or not isinstance(created_ts, int | float)
        or not isinstance(last_id, str)
        or not _is_batch_id(last_id)
        or not -_MAX_TS <= created_ts <= _MAX_TS  # also keeps float() from overflowing
    ):
        raise InvalidRequest("cursor is not valid", details={"cursor": cursor})
    return float(created_ts), last_id


#: The PostgreSQL channel a committed transition is announced on, with the batch id as payload.
TRANSITIONS_CHANNEL = f"{SCHEMA}_transitions"


async def transition_batch(
    conn: AsyncConnection,
    batch_id: str,
    to: BatchStatus,
    *,
    error_message: str | None = None,
    counts: Counts | None = None,
) -> Batch:
    """Move the batch to ``to`` if the transition table allows it, and snapshot it in history.

    Raises BatchNotFound, or InvalidTransition when the batch's status (as the database sees it
    now) does not lead to ``to``; nothing changes then.
    """
    if not _is_batch_id(batch_id):
        raise BatchNotFound()
    sources = sorted(s.value for s in allowed_sources(to))
    update = (
        sa.update(batches)
        .where(batches.c.id == batch_id, batches.c.status.in_(sources))
        .values(_transition_values(to, now(), error_message, counts))
        .returning(*batches.c, OWNER_NAME)
    )
    row = (await conn.execute(update)).mappings().first()
    if row is None:
        await _refuse_transition(conn, batch_id, to)
    await _record_snapshot(conn, batch_id)
    mark_transition(conn, batch_id)  # heard in this process at commit (store.changes)
    if conn.dialect.name == "postgresql":
        # Delivered at commit, to the processes that serve this batch's status (a queue
        # worker's transition reaches the API's status reads at once: runner/batch_changes).
        await conn.execute(sa.select(sa.func.pg_notify(TRANSITIONS_CHANNEL, batch_id)))
    return batch_from_row(row)


def _transition_values(
    to: BatchStatus, ts: float, error_message: str | None, counts: Counts | None
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": to.value, "updated_ts": ts}
    if to == BatchStatus.COPYING:
        values["started_ts"] = sa.func.coalesce(batches.c.started_ts, ts)
    if to in TERMINAL:
        values["completed_ts"] = ts
    if error_message is not None:
        values["error_message"] = bounded_message(error_message)
    if counts is not None:
        values.update(counts_values(counts))
    return values


async def _refuse_transition(conn: AsyncConnection, batch_id: str, to: BatchStatus) -> NoReturn:
    """Explain why the guarded UPDATE matched no row."""
    current = await conn.scalar(sa.select(batches.c.status).where(batches.c.id == batch_id))
    if current is None:
        raise BatchNotFound()
    check_transition(BatchStatus(current), to)
    # Allowed from the status read just now: a concurrent transaction moved the batch after our
    # UPDATE looked. The caller acted on a stale status, so it is still refused.
    raise InvalidTransition(
        f"Batch status changed concurrently to {current}",
        details={"from": current, "to": to.value},
    )


async def _record_snapshot(conn: AsyncConnection, batch_id: str) -> None:
    """Copy the batch's status and counts into history, marking how far its log went."""
    log_upto = (
        sa.select(sa.func.coalesce(sa.func.max(batch_log.c.id), 0))
        .where(batch_log.c.batch_id == batch_id)
        .scalar_subquery()
    )
    source = sa.select(
        batches.c.id,
        batches.c.status,
        *(batches.c[name] for name in _COUNT_COLUMNS),
        log_upto,
        batches.c.updated_ts,
    ).where(batches.c.id == batch_id)
    columns = ["batch_id", "status", *_COUNT_COLUMNS, "log_upto", "updated_ts"]
    await conn.execute(sa.insert(batch_history).from_select(columns, source))


async def update_counts(conn: AsyncConnection, batch_id: str, counts: Counts) -> None:
    """Record progress between transitions (no history snapshot: history is for transitions)."""
    update = (
        sa.update(batches)
        .where(batches.c.id == batch_id)
        .values(updated_ts=now(), **counts_values(counts))
    )
    if not _is_batch_id(batch_id) or (await conn.execute(update)).rowcount == 0:
        raise BatchNotFound()


async def record_format(conn: AsyncConnection, batch_id: str, fmt: str) -> None:
    """Keep the format detected for a batch that did not name one, so that its resource says
    what was read (a format the client gave is never replaced)."""
    await conn.execute(
        sa.update(batches)
        .where(batches.c.id == batch_id, batches.c.format.is_(None))
        .values(format=fmt, updated_ts=now())
    )


#: Statuses in which chunks are applied (validating: as soon as each is validated).
_APPLYING = (BatchStatus.VALIDATING.value, BatchStatus.PROCESSING.value)


async def advance_counts(conn: AsyncConnection, batch_id: str, counts: Counts) -> bool:
    """Move an applying batch's counters forward to ``counts``; whether they moved.

    Workers applying the same batch side by side each report what the ledger said after their
    commit, and those reports can arrive out of order: the guard keeps the counters from going
    back, and from changing once the batch has stopped applying chunks.
    """
    update = (
        sa.update(batches)
        .where(
            batches.c.id == batch_id,
            batches.c.status.in_(_APPLYING),
            sa.func.coalesce(batches.c.processed_operations, 0) < counts.processed,
        )
        .values(updated_ts=now(), **counts_values(counts))
    )
    if not _is_batch_id(batch_id):
        return False
    return bool((await conn.execute(update)).rowcount)


async def append_log(
    conn: AsyncConnection, batch_id: str, level: LogLevel, message: str
) -> LogLine:
    """Add a line to the batch's log; BatchNotFound if the batch is gone."""
    message = bounded_message(message, MAX_LOG_LINE)
    line = LogLine(ts=now(), level=level, message=message)
    insert = sa.insert(batch_log).values(
        batch_id=batch_id, ts=line.ts, level=level.value, message=message
    )
    try:
        await conn.execute(insert)
    except IntegrityError:
        raise BatchNotFound() from None
    return line


async def get_log(conn: AsyncConnection, batch_id: str) -> list[LogLine]:
    """The batch's log lines, oldest first."""
    query = (
        sa.select(batch_log.c.ts, batch_log.c.level, batch_log.c.message)
        .where(batch_log.c.batch_id == batch_id)
        .order_by(batch_log.c.id)
    )
    return [
        LogLine(ts=ts, level=LogLevel(level), message=message)
        for ts, level, message in await conn.execute(query)
    ]


async def get_history(conn: AsyncConnection, batch_id: str) -> list[HistoryEntry]:
    """The batch's snapshots, newest first, each with the log as it was then (empty if none)."""
    query = (
        sa.select(batch_history)
        .where(batch_history.c.batch_id == batch_id)
        .order_by(batch_history.c.id.desc())
    )
    snapshots = (await conn.execute(query)).mappings().all()
    log_query = (
        sa.select(batch_log.c.id, batch_log.c.ts, batch_log.c.level, batch_log.c.message)
        .where(batch_log.c.batch_id == batch_id)
        .order_by(batch_log.c.id)
    )
    log = (await conn.execute(log_query)).all() if snapshots else []
    ids = [line.id for line in log]
    rendered = [
        LogLine(ts=ts, level=LogLevel(lvl), message=msg).render() for _, ts, lvl, msg in log
    ]
    return [
        HistoryEntry(
            batch_id=batch_id,
            status=BatchStatus(snap["status"]),
            counts=counts_from_row(snap),
            log="\n".join(rendered[: bisect.bisect_right(ids, snap["log_upto"])]),
            updated_ts=snap["updated_ts"],
        )
        for snap in snapshots
    ]


async def count_unfinished_batches(conn: AsyncConnection, owner_id: str) -> int:
    """How many of the user's batches are not finished (their batch quota counts these)."""
    query = (
        sa.select(sa.func.count())
        .select_from(batches)
        .where(batches.c.owner_id == owner_id, batches.c.status.in_([s.value for s in ACTIVE]))
    )
    return int(await conn.scalar(query) or 0)


async def list_active_batch_ids(conn: AsyncConnection) -> list[str]:
    """Ids of batches the pipeline still has work on, oldest first (resumed on start)."""
    query = (
        sa.select(batches.c.id)
        .where(batches.c.status.in_(sorted(s.value for s in ACTIVE)))
        .order_by(batches.c.created_ts, batches.c.id)
    )
    return list((await conn.scalars(query)).all())


async def list_unfinished_batches(conn: AsyncConnection) -> list[Batch]:
    """Batches with work left (active or being deleted), oldest first: what a sweep looks at."""
    unfinished = sorted(s.value for s in UNFINISHED)
    query = (
        select_batches()
        .where(batches.c.status.in_(unfinished))
        .order_by(batches.c.created_ts, batches.c.id)
    )
    return [batch_from_row(row) for row in (await conn.execute(query)).mappings()]


async def find_batch_by_idempotency_key(
    conn: AsyncConnection, owner_id: str, key: str
) -> Batch | None:
    """The owner's batch created with ``key``, so a retried create returns it instead."""
    query = select_batches().where(batches.c.owner_id == owner_id, batches.c.idempotency_key == key)
    row = (await conn.execute(query)).mappings().first()
    return batch_from_row(row) if row is not None else None


async def find_keyed_batch(
    conn: AsyncConnection, owner_id: str, key: str
) -> tuple[Batch, str | None] | None:
    """The owner's batch created with ``key`` and the fingerprint of the request that made it."""
    query = select_batches().where(batches.c.owner_id == owner_id, batches.c.idempotency_key == key)
    row = (await conn.execute(query)).mappings().first()
    return (batch_from_row(row), row["idempotency_fingerprint"]) if row is not None else None


async def delete_batch_rows(conn: AsyncConnection, batch_id: str) -> None:
    """Remove the batch with its history and log; a no-op if already gone (deletes are retried)."""
    for table in (batch_log, batch_history):
        await conn.execute(sa.delete(table).where(table.c.batch_id == batch_id))
    await conn.execute(sa.delete(batches).where(batches.c.id == batch_id))
