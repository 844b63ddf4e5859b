"""Everything the SDK raises, under one root, so callers catch ``BatchyardError`` and nothing else.

Server errors are mapped from DESIGN.md's error body (``{"error": {"code", "message",
"details"}}``): first by ``code``, then by HTTP status. httpx's own exceptions are translated at
the one place the clients send requests, so no third-party exception leaks out.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import msgspec


class BatchyardError(Exception):
    """Something went wrong talking to batchyard."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip().splitlines()[0]
        super().__init__(self.message)


class TransportError(BatchyardError):
    """The server could not be reached or the connection broke."""


class TimeoutExceeded(TransportError):
    """The server did not answer in time."""


class UnexpectedResponse(BatchyardError):
    """The server's answer is not what the batchyard API sends (wrong URL?)."""


class WaitTimeout(BatchyardError, TimeoutError):
    """The batch did not reach a terminal status before the wait's timeout."""


class APIError(BatchyardError):
    """The server refused the request."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int = 0,
        code: str = "",
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.details = details


class AuthenticationFailed(APIError):
    """A valid bearer token is required (set BATCHYARD_TOKEN)."""


class PermissionDenied(APIError):
    """You are not allowed to do that."""


class NotFound(APIError):
    """Not found."""


class BatchNotFound(NotFound):
    """Batch not found."""


class DatasetNotFound(NotFound):
    """Dataset not found."""


class Conflict(APIError):
    """The request conflicts with the current state."""


class InvalidTransition(Conflict):
    """The batch cannot move to that status from its current one."""


class ResultsNotReady(Conflict):
    """The batch has no results yet."""


class NoResults(Conflict):
    """The batch ended without reading a record (its input's hash differed, say): no results."""


class NothingToRetry(Conflict):
    """Every record of the batch was applied: there is nothing to retry."""


class DatasetExists(Conflict):
    """A dataset with that name already exists."""


class DatasetInUse(Conflict):
    """The dataset still has unfinished batches (details: ``unfinished_batches``)."""


class LastAdmin(Conflict):
    """The change would leave no enabled admin."""


class OperationNotAllowed(PermissionDenied):
    """Your role may create batches on the dataset, but not with that operation."""


class ValidationFailed(APIError):
    """The request is not valid."""


class PayloadTooLarge(APIError):
    """The input is larger than the server accepts."""


class ServerError(APIError):
    """The server failed to handle the request."""


_BY_CODE: dict[str, type[APIError]] = {
    "batch_not_found": BatchNotFound,
    "dataset_not_found": DatasetNotFound,
    "invalid_transition": InvalidTransition,
    "results_not_ready": ResultsNotReady,
    "no_results": NoResults,
    "nothing_to_retry": NothingToRetry,
    "dataset_exists": DatasetExists,
    "dataset_in_use": DatasetInUse,
    "last_admin": LastAdmin,
    "operation_not_allowed": OperationNotAllowed,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationFailed,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
}


class _ErrorDetail(msgspec.Struct):
    code: str
    message: str
    details: Any = None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail


def error_from_response(response: httpx.Response) -> APIError:
    """The typed exception for an error response (its body must have been read)."""
    status = response.status_code
    try:
        detail = msgspec.json.decode(response.content, type=_ErrorBody).error
    except msgspec.DecodeError:
        text = response.text.strip()[:300] or response.reason_phrase
        detail = _ErrorDetail(code="http_error", message=f"HTTP {status}: {text}")
    cls = _BY_CODE.get(detail.code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(detail.message, status_code=status, code=detail.code, details=detail.details)


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed exception unless the response is a success (2xx)."""
    if not response.is_success:
        raise error_from_response(response)


def transport_error(error: httpx.HTTPError) -> BatchyardError:
    """Translate an httpx exception into the SDK's own."""
    if isinstance(error, httpx.TimeoutException):
        return TimeoutExceeded(f"The server did not answer in time ({error})")
    url = ""
    with contextlib.suppress(RuntimeError):  # an error raised before a request was built
        url = f" ({error.request.method} {error.request.url})"
    return TransportError(f"Could not talk to the server{url}: {error or type(error).__name__}")
