"""Datasets: the declared schema of each target table, stored as the API's JSON body."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import DatasetExists, DatasetNotFound
from batchyard.domain.schema import Dataset
from batchyard.store.tables import datasets


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


async def list_datasets(conn: AsyncConnection) -> list[Dataset]:
    """Every dataset, by name."""
    rows = (await conn.execute(sa.select(datasets).order_by(datasets.c.name))).mappings()
    return [_dataset_from_row(row) for row in rows]


def _dataset_from_row(row: RowMapping) -> Dataset:
    return Dataset.from_dict(
        json.loads(row["schema"]), created_ts=row["created_ts"], owner_id=row["owner_id"]
    )
