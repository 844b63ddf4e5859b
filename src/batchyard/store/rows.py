"""Mapping between batch rows and domain objects (JSON text columns included)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from batchyard.domain.batches import (
    Batch,
    BatchOptions,
    Counts,
    InputFormat,
    Source,
)
from batchyard.domain.statuses import BatchStatus
from batchyard.store.tables import batches, users

_OPTION_FIELDS = frozenset(f.name for f in dataclasses.fields(BatchOptions))


#: The owner's user name for a statement that returns the batch row it changed (RETURNING
#: cannot join): a primary-key lookup per returned row.
OWNER_NAME = (
    sa.select(users.c.name)
    .where(users.c.id == batches.c.owner_id)
    .scalar_subquery()
    .label("owner_name")
)


def select_batches() -> sa.Select[Any]:
    """Batches with their owner's name, joined once for a whole page rather than per batch."""
    owner = batches.outerjoin(users, users.c.id == batches.c.owner_id)
    return sa.select(batches, users.c.name.label("owner_name")).select_from(owner)


def counts_values(counts: Counts) -> dict[str, int | None]:
    """The four counter columns, shared by batches and batch_history."""
    return {
        "total_operations": counts.total,
        "processed_operations": counts.processed,
        "successful_operations": counts.successful,
        "failed_operations": counts.failed,
    }


def counts_from_row(row: RowMapping) -> Counts:
    return Counts(
        total=row["total_operations"],
        processed=row["processed_operations"],
        successful=row["successful_operations"],
        failed=row["failed_operations"],
    )


def batch_values(batch: Batch) -> dict[str, Any]:
    """Column values for a new batches row."""
    return {
        "id": batch.id,
        "owner_id": batch.owner_id,
        "dataset": batch.dataset,
        "operation": str(batch.operation),
        "status": batch.status.value,
        "format": batch.format.value if batch.format else None,
        "sources": json.dumps([s.to_json() for s in batch.sources]),
        "options": json.dumps(batch.options.to_json()),
        "created_ts": batch.created_ts,
        "updated_ts": batch.updated_ts,
        "started_ts": batch.started_ts,
        "completed_ts": batch.completed_ts,
        **counts_values(batch.counts),
        "hash": batch.hash,
        "error_message": batch.error_message,
        "notify_url": batch.notify_url,
    }


def batch_from_row(row: RowMapping) -> Batch:
    """The batch a row holds; ``owner_name`` is filled when the query selected it."""
    return Batch(
        id=row["id"],
        owner_id=row["owner_id"],
        dataset=row["dataset"],
        operation=str(row["operation"]),
        status=BatchStatus(row["status"]),
        format=InputFormat(row["format"]) if row["format"] else None,
        sources=tuple(
            Source(url=s["url"], sha256=s.get("sha256")) for s in json.loads(row["sources"])
        ),
        options=options_from_json(json.loads(row["options"])),
        created_ts=row["created_ts"],
        updated_ts=row["updated_ts"],
        counts=counts_from_row(row),
        started_ts=row["started_ts"],
        completed_ts=row["completed_ts"],
        hash=row["hash"],
        error_message=row["error_message"],
        notify_url=row["notify_url"],
        owner_name=row.get("owner_name"),
    )


def options_from_json(stored: dict[str, Any]) -> BatchOptions:
    """Options as stored; keys a newer or older version wrote and this one lacks are ignored."""
    return BatchOptions(**{k: v for k, v in stored.items() if k in _OPTION_FIELDS})


def name_like(column: sa.ColumnElement[str], pattern: str) -> sa.ColumnElement[bool]:
    """A role's dataset pattern as SQL LIKE: ``*`` is any run, every other character literal."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%"), escape="\\")
