from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from batchyard.api.deps import PrincipalDep, ServicesDep
from batchyard.api.routes import error_responses, remembered_json, to_json
from batchyard.api.schemas import DatasetCreate, DatasetList, DatasetPublic
from batchyard.service import datasets

router = APIRouter(tags=["datasets"], responses=error_responses(401, 403, 422))


@router.post(
    "/datasets", status_code=201, response_model=DatasetPublic, responses=error_responses(409)
)
async def create_dataset(
    body: DatasetCreate, svc: ServicesDep, principal: PrincipalDep
) -> DatasetPublic:
    """Declare a dataset: a target table with its schema."""
    dataset = await datasets.create_dataset(svc, principal, body.model_dump(by_alias=True))
    return DatasetPublic.of(dataset, 0)


@router.get("/datasets", response_model=DatasetList)
async def list_datasets(
    svc: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DatasetList:
    """The datasets you may see, by name; pass next_cursor to get the next page."""
    found, next_cursor = await datasets.list_datasets(svc, principal, limit=limit, cursor=cursor)
    return DatasetList(datasets=[DatasetPublic.of(d, n) for d, n in found], next_cursor=next_cursor)


@router.get("/datasets/{name}", response_model=DatasetPublic, responses=error_responses(404))
async def get_dataset(name: str, svc: ServicesDep, principal: PrincipalDep) -> Response:
    """The dataset's schema and ``row_count``: its table's rows, counted at most half a second
    ago (see docs/production.md, "Status under load")."""
    dataset, rows = await datasets.get_dataset(svc, principal, name)
    return remembered_json(
        ("dataset", name), dataset, lambda: to_json(DatasetPublic.of(dataset, rows)), rows
    )


@router.delete(
    "/datasets/{name}", response_model=DatasetPublic, responses=error_responses(404, 409)
)
async def delete_dataset(
    name: str,
    svc: ServicesDep,
    principal: PrincipalDep,
    keep_table: Annotated[
        bool,
        Query(
            description="Forget the definition only: the table and its rows stay in the target "
            "database (a dataset declared again with the same columns takes them over)."
        ),
    ] = False,
) -> DatasetPublic:
    """Delete a dataset: its definition and, unless keep_table, its table with every row.

    409 dataset_in_use while any of its batches is unfinished. Ended batches stay, with their
    history and results. The answer is the dataset as it was, row_count its rows at the time.
    """
    dataset, rows = await datasets.delete_dataset(svc, principal, name, keep_table=keep_table)
    return DatasetPublic.of(dataset, rows)
