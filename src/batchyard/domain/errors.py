"""Every error batchyard raises on purpose, under one root.

Each class's docstring is its default message; ``code`` is the stable machine-readable name that
the HTTP API puts in ``{"error": {"code": …}}``.
"""

from __future__ import annotations

from typing import Any


class BatchyardError(Exception):
    """Something went wrong in batchyard."""

    code = "internal_error"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or _default_message(type(self))
        self.details = details
        super().__init__(self.message)


def _default_message(error_type: type[BatchyardError]) -> str:
    """The first docstring line without its full stop, as DESIGN.md shows messages."""
    first_line = (error_type.__doc__ or error_type.code).strip().splitlines()[0]
    return first_line.rstrip(".")


class NotFound(BatchyardError):
    """Not found."""

    code = "not_found"


class BatchNotFound(NotFound):
    """Batch not found."""

    code = "batch_not_found"


class DatasetNotFound(NotFound):
    """Dataset not found."""

    code = "dataset_not_found"


class UserNotFound(NotFound):
    """User not found."""

    code = "user_not_found"


class RoleNotFound(NotFound):
    """Role not found."""

    code = "role_not_found"


class TokenNotFound(NotFound):
    """Token not found (or already revoked)."""

    code = "token_not_found"


class Conflict(BatchyardError):
    """The request conflicts with the current state."""

    code = "conflict"


class InvalidTransition(Conflict):
    """The batch cannot move to that status from its current one."""

    code = "invalid_transition"


class ResultsNotReady(Conflict):
    """The batch has no results yet."""

    code = "results_not_ready"


class NoResults(Conflict):
    """The batch ended without reading a record, so it has no results."""

    code = "no_results"


class NothingToRetry(Conflict):
    """Every record of the batch was applied: there is nothing to send again."""

    code = "nothing_to_retry"


class DatasetExists(Conflict):
    """A dataset with that name already exists."""

    code = "dataset_exists"


class RoleInUse(Conflict):
    """Users still hold the role: deleting it would leave them without any permission."""

    code = "role_in_use"


class LastAdmin(Conflict):
    """That would leave no enabled admin: make another user admin first."""

    code = "last_admin"


class DatasetInUse(Conflict):
    """The dataset has batches that are still running or being deleted."""

    code = "dataset_in_use"


class DuplicateIdempotencyKey(Conflict):
    """A batch with this Idempotency-Key already exists."""

    code = "conflict"


class IdempotencyKeyReused(Conflict):
    """This Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"


class InvalidRequest(BatchyardError):
    """The request is not valid."""

    code = "invalid_request"


class InvalidSchema(InvalidRequest):
    """The dataset schema is not valid."""

    code = "invalid_schema"


class InvalidSource(InvalidRequest):
    """A source URL is not allowed or not valid."""

    code = "invalid_source"


class InvalidNotifyUrl(InvalidRequest):
    """The notify_url is not an http(s) URL this server may deliver webhooks to."""

    code = "invalid_notify_url"


class UnsupportedFormat(InvalidRequest):
    """The input format is not supported."""

    code = "unsupported_format"


class UnknownOperation(InvalidRequest):
    """This server has no operation by that name."""

    code = "unknown_operation"


class InvalidOperationSettings(InvalidRequest):
    """options.operation does not match the operation's settings schema."""

    code = "invalid_operation_settings"


class PayloadTooLarge(BatchyardError):
    """The input is larger than this server accepts."""

    code = "payload_too_large"


class UploadInterrupted(BatchyardError):
    """The client stopped sending before the upload was complete."""

    code = "upload_interrupted"


class UploadStalled(UploadInterrupted):
    """The client sent nothing for too long: the upload was cut off."""

    code = "upload_stalled"


class TooManyRequests(BatchyardError):
    """Too many requests: slow down.

    ``retry_after`` (seconds) is when trying again may succeed; the API sends it as Retry-After.
    """

    code = "too_many_requests"

    def __init__(
        self, message: str | None = None, *, retry_after: int = 1, details: Any = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)


class RateLimited(TooManyRequests):
    """This token sent more requests per minute than the server allows."""

    code = "rate_limited"


class QuotaExceeded(TooManyRequests):
    """Your user reached one of its quotas."""

    code = "quota_exceeded"


class Unauthenticated(BatchyardError):
    """A valid bearer token is required."""

    code = "unauthenticated"


class Forbidden(BatchyardError):
    """You are not allowed to do that."""

    code = "forbidden"


class OperationNotAllowed(Forbidden):
    """Your role may create batches on this dataset, but not with this operation."""

    code = "operation_not_allowed"


class InvalidSignature(Forbidden):
    """The download link is invalid or has expired."""

    code = "invalid_signature"


class PipelineError(BatchyardError):
    """The pipeline stopped; the message is shown to the user as the batch's error_message."""

    code = "pipeline_error"


class HashMismatch(PipelineError):
    """The copied bytes do not match the given SHA-256 hash."""

    code = "hash_mismatch"


class SourceUnavailable(PipelineError):
    """A source could not be fetched."""

    code = "source_unavailable"


class SourceUnreachable(SourceUnavailable):
    """A source's server could not be reached (host unknown, connection refused, TLS failed)."""

    code = "source_unreachable"


class SourceHttpError(SourceUnavailable):
    """A source's server answered with an error status."""

    code = "source_http_error"


class SourceTimeout(SourceUnavailable):
    """A source took longer than its transfer deadline, or sent slower than the minimum rate."""

    code = "source_timeout"


class SourceEncodingUnsupported(SourceUnavailable):
    """A source was sent in a Content-Encoding this server does not read."""

    code = "source_encoding_unsupported"


class SourcesTooLarge(PipelineError):
    """The sources are larger than this server accepts."""

    code = "payload_too_large"


class SourceRefused(PipelineError):
    """A source (or a redirect) leads to an address this server may not reach."""

    code = "invalid_source"


class InputRejected(PipelineError):
    """The input cannot be read as a whole (format, header or schema mismatch)."""

    code = "input_rejected"


class TooManyErrors(PipelineError):
    """More records are invalid than options.max_errors allows."""

    code = "too_many_errors"


class AtomicRollback(PipelineError):
    """An atomic batch had a record the target refused, so its one transaction was rolled back."""

    code = "atomic_rollback"


class StopSignal(BatchyardError):
    """The batch's work stops at a chunk boundary; not an error of the input or the service.

    Raised where a stage notices, caught by the driver (``pipeline/run.py``), which does what the
    batch's status now asks for. Never reaches a client: nothing maps it to an HTTP answer.
    """

    code = "stop_signal"


class CancelRequested(StopSignal):
    """The batch was asked to cancel."""

    code = "cancel_requested"


class BatchLeft(StopSignal):
    """The batch moved on (failed, deleted, finished elsewhere) while its chunks were taken."""

    code = "batch_left"


#: Longest error_message a batch stores and returns, in characters.
MAX_ERROR_MESSAGE = 2048
#: Longest log line a batch stores, in characters.
MAX_LOG_LINE = 4096


def bounded_message(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters with a visible marker, so no message grows unbounded.

    A 100,000-column header once made a 1 MB error_message that every poll carried.
    """
    if len(text) <= limit:
        return text
    marker = f" … [truncated: {len(text)} characters in all]"
    return text[: max(0, limit - len(marker))] + marker
