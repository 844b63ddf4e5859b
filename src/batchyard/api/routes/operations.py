"""``GET /operations``: what a batch may do with its records on this server."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from batchyard.api.deps import PrincipalDep
from batchyard.api.routes import error_responses
from batchyard.domain.permissions import Action
from batchyard.operations.registry import available_operations
from batchyard.service.auth import require

router = APIRouter(tags=["operations"], responses=error_responses(401, 403))


class OperationPublic(BaseModel):
    name: str
    description: str
    settings_schema: dict[str, Any] = Field(
        description="JSON Schema of options.operation for a batch of this operation"
    )


class OperationList(BaseModel):
    operations: list[OperationPublic]


@router.get("/operations", response_model=OperationList)
async def list_operations(principal: PrincipalDep) -> OperationList:
    """The operations this server has (built-in and registered by packages), by name."""
    require(principal, Action.LIST_DATASETS)
    return OperationList(
        operations=[
            OperationPublic(
                name=op.name, description=op.description, settings_schema=dict(op.settings_schema)
            )
            for _, op in sorted(available_operations().items())
        ]
    )
