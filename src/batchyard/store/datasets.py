"""Datasets: the declared schema of each target table, stored as the API's JSON body."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import DatasetExists, DatasetInUse, DatasetNotFound
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import UNFINISHED
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


def _dataset_from_row(row: RowMapping) -> Dataset:
    return Dataset.from_dict(
        json.loads(row["schema"]), created_ts=row["created_ts"], owner_id=row["owner_id"]
    )
