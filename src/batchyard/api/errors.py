"""The one place that maps errors to HTTP statuses and the DESIGN's error body.

Routes never build error responses themselves; anything a client can send ends here as a 4xx.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchyard.domain import errors as e

logger = logging.getLogger("batchyard.api")

#: Most specific first: the first class an error is an instance of decides its status.
STATUS_FOR: tuple[tuple[type[e.BatchyardError], int], ...] = (
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.PayloadTooLarge, 413),
    (e.UploadStalled, 408),
    (e.UploadInterrupted, 400),
    (e.TooManyRequests, 429),
    (e.InvalidRequest, 422),
    (e.PipelineError, 422),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def status_for(error: e.BatchyardError) -> int:
    for cls, status in STATUS_FOR:
        if isinstance(error, cls):
            return status
    return 500


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, e.BatchyardError)
    status = status_for(error)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, e.TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse(
        error_body(error.code, error.message, error.details), status_code=status, headers=headers
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        {
            "location": list(err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type"),
        }
        for err in error.errors()
    ]
    first = details[0] if details else {"location": [], "message": "invalid request"}
    where = ".".join(str(p) for p in first["location"])
    return JSONResponse(
        error_body("invalid_request", f"{where}: {first['message']}", details), status_code=422
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "Internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(e.BatchyardError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
