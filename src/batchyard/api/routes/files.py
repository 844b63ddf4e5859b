"""Result files: reachable with a token, or with a temporary signed URL and no token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from batchyard.api.deps import ServicesDep
from batchyard.api.routes import error_responses
from batchyard.domain.batches import Batch
from batchyard.domain.permissions import Action
from batchyard.service import batches, result_files
from batchyard.service.auth import authenticate, require
from batchyard.service.container import Services
from batchyard.service.result_files import ResultFile

router = APIRouter(tags=["batches"], responses=error_responses(401, 403, 404, 409))
_optional_bearer = HTTPBearer(auto_error=False)
OptionalCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The file, streamed"}
}
_CSV_OR_JSONL: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, "application/x-ndjson": {}},
        "description": "The file, streamed: CSV, or JSON Lines for a JSON Lines input",
    }
}


async def _authorised_batch(
    svc: Services,
    request: Request,
    batch_id: str,
    credentials: HTTPAuthorizationCredentials | None,
    expires: int | None,
    signature: str | None,
) -> Batch:
    if signature is not None and expires is not None:
        svc.signer.verify("GET", request.url.path, batch_id, expires, signature)
        return await batches.get_batch_unscoped(svc, batch_id)
    principal = await authenticate(
        svc.store, svc.secret, credentials.credentials if credentials else None
    )
    require(principal, Action.GET_BATCH)
    return await batches.get_batch(svc, principal, batch_id)


async def _file(
    svc: Services,
    request: Request,
    batch_id: str,
    which: ResultFile,
    credentials: HTTPAuthorizationCredentials | None,
    expires: int | None,
    signature: str | None,
    *,
    jsonl: bool = False,
) -> StreamingResponse:
    batch = await _authorised_batch(svc, request, batch_id, credentials, expires, signature)
    stream, media_type, extension = await result_files.open_result_file(
        svc, batch, which, jsonl=jsonl
    )
    filename = f"{batch.dataset}-{batch.id}-{which}.{extension}"
    return StreamingResponse(
        stream,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/batches/{batch_id}/results", response_class=StreamingResponse, responses=_CSV_OR_JSONL
)
async def get_results(
    batch_id: str,
    request: Request,
    svc: ServicesDep,
    credentials: OptionalCredentials,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv (default) or jsonl")] = "csv",
) -> StreamingResponse:
    """One row per input record.

    CSV columns: record_number, outcome, error_code, error_column, error_message, key, and
    ``output`` for operations that answer per record (http, plugins). ``format=jsonl``: one
    JSON object per record (record_number, outcome, code, column, message, key, output), so
    nested outputs stay nested.
    """
    return await _file(
        svc, request, batch_id, "results", credentials, expires, signature, jsonl=format == "jsonl"
    )


@router.get(
    "/batches/{batch_id}/failed-records",
    response_class=StreamingResponse,
    responses=_CSV_OR_JSONL,
)
async def get_failed_records(
    batch_id: str,
    request: Request,
    svc: ServicesDep,
    credentials: OptionalCredentials,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """The records that were not applied, as sent, each with why (``error``).

    In the input's format: CSV (the original fields plus an ``error`` column) for CSV and
    Parquet inputs, JSON Lines (each original line with an ``error`` member) for JSON Lines.
    """
    return await _file(svc, request, batch_id, "failed-records", credentials, expires, signature)
