"""Dataset use cases: declare a target table, read schemas with their row counts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import DatasetExists, DatasetNotFound, QuotaExceeded
from batchyard.domain.permissions import Action
from batchyard.domain.schema import Dataset, check_reserved_names
from batchyard.pipeline.defaults import check_dataset_defaults
from batchyard.pipeline.patterns import check_dataset_patterns
from batchyard.service.auth import require
from batchyard.service.container import Services
from batchyard.store import datasets as dataset_rows
from batchyard.store.users import Principal


async def create_dataset(svc: Services, principal: Principal, body: dict[str, Any]) -> Dataset:
    """Declare a dataset and create its table in the target database."""
    require(principal, Action.CREATE_DATASET)
    dataset = replace(Dataset.from_dict(body), created_ts=now(), owner_id=principal.user_id)
    check_reserved_names(dataset)
    check_dataset_patterns(dataset)
    check_dataset_defaults(dataset)
    require(principal, Action.CREATE_DATASET, dataset.name)
    async with svc.store.begin(writes=False) as conn:
        await _check_dataset_quota(svc, conn, principal)
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
    """The dataset and how many rows its table holds (both remembered: see ``_row_count``)."""
    require(principal, Action.GET_DATASET, name)

    async def load() -> Dataset:
        async with svc.store.read() as conn:
            return await dataset_rows.get_dataset(conn, name)

    dataset = await svc.store.reads.load(("dataset", name), load)
    return dataset, await _row_count(svc, name)


async def list_datasets(
    svc: Services, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[tuple[Dataset, int]], str | None]:
    """A page of the datasets the principal may list, by name, with their row counts."""
    require(principal, Action.LIST_DATASETS)
    async with svc.store.read() as conn:
        page, next_cursor = await dataset_rows.list_datasets_page(
            conn,
            limit=limit,
            cursor=cursor,
            name_patterns=principal.grants.dataset_scope(Action.LIST_DATASETS),
        )
    counts = [await _row_count(svc, dataset.name) for dataset in page]
    return list(zip(page, counts, strict=True)), next_cursor


async def _row_count(svc: Services, name: str) -> int:
    """The rows of the dataset's table, remembered like a batch's status (see store.fresh): at
    most STATUS_CACHE_SECONDS old, and counted afresh after any write of this process to a
    batch (a chunk's progress, a batch's end), so polling clients of ``GET /datasets/{name}``
    or ``GET /datasets`` do not each count tables of millions of rows."""
    return await svc.store.reads.load(
        ("row_count", name), lambda: asyncio.to_thread(svc.target.row_count, name)
    )


async def _check_dataset_quota(svc: Services, conn: AsyncConnection, principal: Principal) -> None:
    """QuotaExceeded when the user already declared as many datasets as allowed (DB-counted)."""
    quota = svc.settings.quota_datasets
    if quota and await dataset_rows.count_owned_datasets(conn, principal.user_id) >= quota:
        raise QuotaExceeded(
            f"You have declared {quota} datasets, the most allowed; delete one first",
            retry_after=60,
            details={"quota": "datasets", "limit": quota},
        )


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
