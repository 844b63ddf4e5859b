"""Batch endpoints: create (JSON with URLs, raw body or multipart upload), read, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from batchyard.api.deps import LimitsDep, PrincipalDep, ServicesDep
from batchyard.api.routes import error_responses, json_response, remembered_json, to_json
from batchyard.api.schemas import (
    OPERATION_PATTERN,
    SHA256_PATTERN,
    BatchCreate,
    BatchList,
    BatchPublic,
    Download,
    HistoryEntryPublic,
    OptionsIn,
)
from batchyard.api.uploads import guarded, is_multipart, open_multipart_file
from batchyard.domain.batches import InputFormat, Operation
from batchyard.domain.errors import InvalidRequest, NoResults
from batchyard.domain.permissions import Action
from batchyard.domain.statuses import BatchStatus
from batchyard.service import batches, downloads, retries
from batchyard.service.auth import require
from batchyard.service.batches import Created, NewBatch

router = APIRouter(tags=["batches"], responses=error_responses(401, 403, 422))
MAX_JSON_BODY = 1 * 2**20

_BATCH_CREATE_SCHEMA = BatchCreate.model_json_schema(ref_template="#/components/schemas/{model}")
#: Schemas the JSON form refers to: app.py adds them to the document's components.
COMPONENT_SCHEMAS: dict[str, Any] = _BATCH_CREATE_SCHEMA.pop("$defs", {})

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "description": (
            "Either JSON naming URLs to fetch, or the file itself as the raw body (CSV, JSON "
            "Lines, Parquet, optionally gzip'd) with ?dataset=…, or multipart/form-data with a "
            "'file' field."
        ),
        "content": {
            "application/json": {"schema": _BATCH_CREATE_SCHEMA},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def _json_body(request: Request, idle_seconds: float) -> BatchCreate:
    body = bytearray()
    async for part in guarded(request.stream(), idle_seconds):
        body += part
        if len(body) > MAX_JSON_BODY:
            raise InvalidRequest("JSON body over 1 MiB; upload files as the raw body instead")
    try:
        return BatchCreate.model_validate_json(bytes(body))
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def _upload_options(raw: str | None) -> OptionsIn:
    if not raw:
        return OptionsIn()
    try:
        return OptionsIn.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", "options", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


_REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {
        "model": BatchPublic,
        "description": "A retry with the same Idempotency-Key: the batch the first request "
        "created (header Idempotent-Replayed: true)",
    }
}


def _answer(created: Created, response: Response) -> BatchPublic:
    if created.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return BatchPublic.of(created.batch)


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchPublic,
    responses={**error_responses(400, 404, 408, 409, 413, 429), **_REPLAYED},
    openapi_extra=_CREATE_BODY,
)
async def create_batch(
    request: Request,
    response: Response,
    svc: ServicesDep,
    principal: PrincipalDep,
    limits: LimitsDep,
    dataset: Annotated[
        str | None, Query(max_length=63, description="Target dataset (uploads)")
    ] = None,
    format: Annotated[InputFormat | None, Query(description="Input format (uploads)")] = None,
    operation: Annotated[
        str,
        Query(
            pattern=OPERATION_PATTERN,
            description="insert, upsert, delete or an operation GET /operations lists (uploads)",
        ),
    ] = Operation.INSERT,
    hash: Annotated[
        str | None, Query(pattern=SHA256_PATTERN, description="SHA-256 of the upload")
    ] = None,
    options: Annotated[str | None, Query(description="Options as a JSON object (uploads)")] = None,
    notify_url: Annotated[str | None, Query(max_length=4096)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=255,
            description="Retries with the same key return the first batch (200); the same key "
            "with a different request is a 409. Kept as long as the batch exists.",
        ),
    ] = None,
) -> BatchPublic:
    """Create a batch. Returns at once (202); follow it with GET /batches/{batch}."""
    require(principal, Action.CREATE_BATCH)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await _json_body(request, svc.settings.upload_idle_seconds)
        new = NewBatch(
            dataset=body.dataset,
            operation=body.operation,
            format=body.format,
            sources=body.domain_sources(),
            hash=body.hash,
            options=body.options.to_domain(),
            notify_url=body.notify_url,
            idempotency_key=idempotency_key,
        )
        return _answer(await batches.create_batch(svc, principal, new), response)
    if not dataset:
        raise InvalidRequest("an upload needs ?dataset=NAME (or send JSON with sources)")
    new = NewBatch(
        dataset=dataset,
        operation=operation,
        format=format,
        hash=hash.lower() if hash else None,
        options=_upload_options(options).to_domain(),
        notify_url=notify_url,
        idempotency_key=idempotency_key,
    )
    with limits.uploads.slot(principal.user_id):
        stream = guarded(request.stream(), svc.settings.upload_idle_seconds)
        if is_multipart(request):
            stream = await open_multipart_file(request, stream)
        stream = limits.uploads.metered(principal.user_id, stream)
        return _answer(await batches.create_upload_batch(svc, principal, new, stream), response)


@router.get("/batches", response_model=BatchList)
async def list_batches(
    svc: ServicesDep,
    principal: PrincipalDep,
    status: BatchStatus | None = None,
    dataset: Annotated[str | None, Query(max_length=63)] = None,
    owner: Annotated[
        str | None,
        Query(
            max_length=63,
            description="Only batches of the user with this name. It narrows what you may see: "
            "unless your role sees everyone's batches, another user's name lists nothing.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> BatchList:
    """Your batches (admins: everyone's), newest first; pass next_cursor to get the next page."""
    found, next_cursor = await batches.list_batches(
        svc, principal, status=status, dataset=dataset, owner=owner, limit=limit, cursor=cursor
    )
    return BatchList(batches=[BatchPublic.of(b) for b in found], next_cursor=next_cursor)


@router.get("/batches/{batch_id}", response_model=BatchPublic, responses=error_responses(404))
async def get_batch(
    batch_id: str,
    request: Request,
    svc: ServicesDep,
    principal: PrincipalDep,
    download: bool = False,
) -> Response:
    """The batch; with download=true, temporary signed URLs to its results (once it has ended
    with results: see GET /batches/{batch}/results)."""
    require(principal, Action.GET_BATCH)
    batch = await batches.get_batch(svc, principal, batch_id)
    link = None
    if not download:
        return remembered_json(("batch", batch.id), batch, lambda: to_json(BatchPublic.of(batch)))
    if batch.is_terminal:
        base = downloads.public_base_url(svc.settings.public_url, request.scope.get("server"))
        try:
            links = await downloads.download_links(svc, batch, base)
        except NoResults:
            return json_response(BatchPublic.of(batch))
        link = Download(
            url=links.url,
            failed_records_url=links.failed_records_url,
            validity_ts=links.validity_ts,
        )
    return json_response(BatchPublic.of(batch, link))


@router.get(
    "/batches/{batch_id}/history",
    response_model=list[HistoryEntryPublic],
    responses=error_responses(404),
)
async def get_history(batch_id: str, svc: ServicesDep, principal: PrincipalDep) -> Response:
    """Status snapshots, newest first, each with the counts and the log up to that moment."""
    history = await batches.get_history(svc, principal, batch_id)
    return remembered_json(
        ("history", batch_id), history, lambda: to_json([HistoryEntryPublic.of(h) for h in history])
    )


@router.get(
    "/batches/{batch_id}/log",
    # Response, not PlainTextResponse: FastAPI would document the JSON errors as text/plain too.
    response_class=Response,
    responses={
        **error_responses(404),
        200: {"description": "The log", "content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
async def get_log(batch_id: str, svc: ServicesDep, principal: PrincipalDep) -> PlainTextResponse:
    """The batch's log as text, one timestamped line each."""
    lines = await batches.get_log(svc, principal, batch_id)
    return PlainTextResponse("".join(line.render() + "\n" for line in lines))


@router.post(
    "/batches/{batch_id}/cancel",
    status_code=202,
    response_model=BatchPublic,
    responses=error_responses(404, 409),
)
async def cancel_batch(batch_id: str, svc: ServicesDep, principal: PrincipalDep) -> BatchPublic:
    """Stop the batch at its next chunk; what was committed stays."""
    return BatchPublic.of(await batches.cancel_batch(svc, principal, batch_id))


@router.delete(
    "/batches/{batch_id}",
    status_code=202,
    response_model=BatchPublic,
    responses=error_responses(404, 409),
)
async def delete_batch(batch_id: str, svc: ServicesDep, principal: PrincipalDep) -> BatchPublic:
    """Remove a finished batch's input, results and history (the loaded rows stay)."""
    return BatchPublic.of(await batches.delete_batch(svc, principal, batch_id))


@router.post(
    "/batches/{batch_id}/retry",
    status_code=202,
    response_model=BatchPublic,
    responses={**error_responses(404, 409, 429), **_REPLAYED},
)
async def retry_batch(
    batch_id: str,
    response: Response,
    svc: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=255,
            description="Retries with the same key return the batch the first one created "
            "(200); the same key for another batch is a 409.",
        ),
    ] = None,
) -> BatchPublic:
    """Send the batch's failed and not-processed records again, as they were sent, in a new
    batch (``retry_of`` names this one). Needs the permission to create a batch in its dataset;
    409 ``nothing_to_retry`` when every record was applied."""
    created = await retries.retry_batch(svc, principal, batch_id, idempotency_key)
    return _answer(created, response)
