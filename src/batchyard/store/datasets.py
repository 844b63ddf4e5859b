"""Datasets: the declared schema of each target table, stored as the API's JSON body."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import DatasetExists, DatasetInUse, DatasetNotFound, InvalidRequest
from batchyard.domain.schema import IDENTIFIER, Dataset
from batchyard.domain.statuses import UNFINISHED
from batchyard.store.rows import name_like
from batchyard.store.tables import batches, datasets


async def insert_dataset(conn: AsyncConnection, dataset: Dataset) -> None:
    """Store a new dataset (created now unless it says when); DatasetExists if the name is taken.

    The insert runs in a savepoint so that the caller's transaction survives the conflict.
    """
    row = {
        "name": dataset.name,
        "schema": json.dumps(dataset.to_dict()),
        "owner_id": dataset.owner_id,
        "created_ts": dataset.created_ts if dataset.created_ts is not None else now(),
    }
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(datasets).values(row))
    except IntegrityError:
        raise DatasetExists(
            f"A dataset named {dataset.name!r} already exists", details={"dataset": dataset.name}
        ) from None


async def get_dataset(conn: AsyncConnection, name: str) -> Dataset:
    row = (
        (await conn.execute(sa.select(datasets).where(datasets.c.name == name))).mappings().first()
    )
    if row is None:
        raise DatasetNotFound(details={"dataset": name})
    return _dataset_from_row(row)


async def delete_dataset(conn: AsyncConnection, name: str) -> None:
    """Forget the dataset; DatasetInUse while any of its batches is unfinished.

    Ended batches keep their history and results: they name the dataset, they do not need it.
    """
    unfinished = sorted(s.value for s in UNFINISHED)
    busy = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(batches)
        .where(batches.c.dataset == name, batches.c.status.in_(unfinished))
    )
    if busy:
        raise DatasetInUse(
            f"Dataset {name!r} has {busy} unfinished batch(es); cancel them or let them end first",
            details={"dataset": name, "unfinished_batches": busy},
        )
    deleted = await conn.execute(sa.delete(datasets).where(datasets.c.name == name))
    if not deleted.rowcount:
        raise DatasetNotFound(details={"dataset": name})


async def list_datasets(conn: AsyncConnection) -> list[Dataset]:
    """Every dataset, by name."""
    rows = (await conn.execute(sa.select(datasets).order_by(datasets.c.name))).mappings()
    return [_dataset_from_row(row) for row in rows]


async def list_datasets_page(
    conn: AsyncConnection,
    *,
    limit: int,
    cursor: str | None,
    name_patterns: Sequence[str] | None = None,
) -> tuple[list[Dataset], str | None]:
    """One page of datasets by name, and the cursor of the next page (None: last page).

    Keyset pagination on the name (the primary key), so a page costs the same however many
    datasets there are. ``name_patterns`` (``*`` wildcards) keeps only the names they match.
    """
    query = sa.select(datasets)
    if name_patterns is not None:
        query = query.where(
            sa.or_(sa.false(), *(name_like(datasets.c.name, p) for p in name_patterns))
        )
    if cursor is not None:
        query = query.where(datasets.c.name > _decode_name_cursor(cursor))
    query = query.order_by(datasets.c.name).limit(limit + 1)
    rows = (await conn.execute(query)).mappings().all()
    page = [_dataset_from_row(row) for row in rows[:limit]]
    next_cursor = _encode_name_cursor(page[-1].name) if len(rows) > limit else None
    return page, next_cursor


async def count_owned_datasets(conn: AsyncConnection, owner_id: str) -> int:
    """How many datasets the user declared (their dataset quota counts these)."""
    query = sa.select(sa.func.count()).select_from(datasets).where(datasets.c.owner_id == owner_id)
    return int(await conn.scalar(query) or 0)


def _encode_name_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_name_cursor(cursor: str) -> str:
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        name = ""
    if not IDENTIFIER.fullmatch(name):
        raise InvalidRequest("cursor is not valid", details={"cursor": cursor})
    return name


def _dataset_from_row(row: RowMapping) -> Dataset:
    return Dataset.from_dict(
        json.loads(row["schema"]), created_ts=row["created_ts"], owner_id=row["owner_id"]
    )
