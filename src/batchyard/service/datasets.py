"""Dataset use cases: declare a target table, read schemas with their row counts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from batchyard.domain.batches import now
from batchyard.domain.errors import DatasetExists, DatasetNotFound
from batchyard.domain.permissions import Action
from batchyard.domain.schema import Dataset
from batchyard.pipeline.patterns import check_dataset_patterns
from batchyard.service.auth import require
from batchyard.service.container import Services
from batchyard.store import datasets as dataset_rows
from batchyard.store.users import Principal


async def create_dataset(svc: Services, principal: Principal, body: dict[str, Any]) -> Dataset:
    """Declare a dataset and create its table in the target database."""
    require(principal, Action.CREATE_DATASET)
    dataset = replace(Dataset.from_dict(body), created_ts=now(), owner_id=principal.user_id)
    check_dataset_patterns(dataset)
    require(principal, Action.CREATE_DATASET, dataset.name)
    async with svc.store.begin() as conn:
        try:
            await dataset_rows.get_dataset(conn, dataset.name)
        except DatasetNotFound:
            pass
        else:
            raise DatasetExists(f"Dataset {dataset.name!r} already exists")
    # The table first: if the target refuses it, no dataset row points at a missing table.
    await asyncio.to_thread(svc.target.ensure_table, dataset)
    async with svc.store.begin() as conn:
        await dataset_rows.insert_dataset(conn, dataset)
    return dataset


async def get_dataset(svc: Services, principal: Principal, name: str) -> tuple[Dataset, int]:
    """The dataset and how many rows its table holds now."""
    require(principal, Action.GET_DATASET, name)
    async with svc.store.begin() as conn:
        dataset = await dataset_rows.get_dataset(conn, name)
    return dataset, await asyncio.to_thread(svc.target.row_count, name)


async def list_datasets(svc: Services, principal: Principal) -> list[tuple[Dataset, int]]:
    require(principal, Action.LIST_DATASETS)
    async with svc.store.begin() as conn:
        datasets = [
            d
            for d in await dataset_rows.list_datasets(conn)
            if principal.grants.allows(Action.LIST_DATASETS, d.name)
        ]
    counts = [await asyncio.to_thread(svc.target.row_count, d.name) for d in datasets]
    return list(zip(datasets, counts, strict=True))


async def delete_dataset(
    svc: Services, principal: Principal, name: str, *, keep_table: bool
) -> tuple[Dataset, int]:
    """Forget the dataset and, unless ``keep_table``, drop its table; (it, the rows it held).

    The definition goes first, in one transaction with the check that no batch of it is
    unfinished; then the table. Kept, the table and its rows stay in the target database, and a
    dataset declared again under the name with the same columns takes them over.
    """
    require(principal, Action.DELETE_DATASET, name)
    async with svc.store.begin() as conn:
        dataset = await dataset_rows.get_dataset(conn, name)
        rows = await asyncio.to_thread(svc.target.row_count, name)
        await dataset_rows.delete_dataset(conn, name)
    if not keep_table:
        await asyncio.to_thread(svc.target.drop_table, name)
    return dataset, rows
