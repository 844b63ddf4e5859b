"""The sans-I/O core both clients share: what to send for each call and how to read the answer.

``Client`` and ``AsyncClient`` only differ in how they send a ``Call`` and wait; every path,
parameter, header and parser lives here once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import msgspec
from httpx_sse import ServerSentEvent

from batchyard import __version__
from batchyard.client import errors
from batchyard.client.models import (
    Batch,
    BatchPage,
    Dataset,
    DatasetList,
    DatasetSchema,
    HistoryEntry,
    IssuedToken,
    OperationInfo,
    OperationList,
    Role,
    RoleList,
    Statement,
    Token,
    TokenList,
    User,
    UserCreated,
    UserList,
)

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"
#: Upload and download block size: memory stays bounded whatever the file size.
CHUNK_BYTES = 1 << 20
SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
#: The server pings its event streams every 15 s: this much silence means the stream is gone.
SSE_SILENCE_SECONDS = 60.0
ResultFile = Literal["results", "failed-records"]
SourceSpec = str | Mapping[str, str | None]
ProgressCallback = Callable[[Batch], object]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the function that turns its response into the SDK's result."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def http_options(token: str | None, url: str | None, timeout: float | None) -> dict[str, Any]:
    """httpx client settings; token and URL default to BATCHYARD_TOKEN and BATCHYARD_URL."""
    token = token if token is not None else os.environ.get("BATCHYARD_TOKEN")
    base_url = url or os.environ.get("BATCHYARD_URL") or DEFAULT_URL
    headers = {"User-Agent": f"batchyard-python/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {"base_url": base_url.rstrip("/"), "headers": headers, "timeout": timeout}


def _decoder(kind: type[T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        errors.raise_for_error(response)
        try:
            # strict=False lets the API's epoch-second floats decode as aware UTC datetimes.
            return msgspec.json.decode(response.content, type=kind, strict=False)
        except msgspec.DecodeError as error:
            raise errors.UnexpectedResponse(
                f"{response.request.method} {response.request.url.path}: {error}"
            ) from None

    return parse


def _text(response: httpx.Response) -> str:
    errors.raise_for_error(response)
    return response.text


parse_batch = _decoder(Batch)


def _batch_path(batch_id: str, suffix: str = "") -> str:
    # quote() keeps a hostile id from reaching another endpoint ("../datasets").
    return f"/batches/{quote(batch_id, safe='')}{suffix}"


def check_one_input(file: object, sources: object) -> None:
    """Exactly one of ``file`` and ``sources`` must be given."""
    if (file is None) == (sources is None):
        raise ValueError("give exactly one of file= (a path or file object) and sources= (URLs)")


def _options_json(options: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(options) if options else {}


def with_operation_options(
    options: Mapping[str, Any] | None, operation_options: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """``options`` with the operation's settings as ``options.operation``."""
    if operation_options is None:
        return options
    return {**(options or {}), "operation": dict(operation_options)}


def list_operations() -> Call[list[OperationInfo]]:
    """GET /operations: the operations this server has."""

    def parse(response: httpx.Response) -> list[OperationInfo]:
        return _decoder(OperationList)(response).operations

    return Call("GET", "/operations", parse)


def create_batch_from_sources(
    dataset: str,
    sources: Sequence[SourceSpec],
    *,
    format: str | None,
    operation: str,
    hash: str | None,
    options: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[Batch]:
    """POST /batches as JSON: the server fetches the URLs."""
    if hash == "auto":
        raise ValueError("hash='auto' applies to an uploaded file; give each source its sha256")
    body: dict[str, Any] = {
        "dataset": dataset,
        "sources": [s if isinstance(s, str) else dict(s) for s in sources],
        "operation": str(operation),
        "options": _options_json(options),
    }
    if format:
        body["format"] = str(format)
    if hash:
        body["hash"] = hash
    return Call("POST", "/batches", parse_batch, json=body, headers=_idempotency(idempotency_key))


def create_batch_upload(
    dataset: str,
    *,
    format: str | None,
    operation: str,
    hash: str | None,
    options: Mapping[str, Any] | None,
    idempotency_key: str | None,
    size: int | None,
) -> Call[Batch]:
    """POST /batches with the file as the raw body (the caller supplies the streamed content)."""
    params = {"dataset": dataset, "operation": str(operation)}
    if format:
        params["format"] = str(format)
    if hash:
        params["hash"] = hash
    if options:
        params["options"] = json.dumps(_options_json(options))
    headers = {"Content-Type": "application/octet-stream", **_idempotency(idempotency_key)}
    if size is not None:
        headers["Content-Length"] = str(size)
    return Call("POST", "/batches", parse_batch, params=params, headers=headers)


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def get_batch(batch_id: str, download: bool = False) -> Call[Batch]:
    params = {"download": "true"} if download else {}
    return Call("GET", _batch_path(batch_id), parse_batch, params=params)


def get_history(batch_id: str) -> Call[list[HistoryEntry]]:
    return Call("GET", _batch_path(batch_id, "/history"), _decoder(list[HistoryEntry]))


def get_log(batch_id: str) -> Call[str]:
    return Call("GET", _batch_path(batch_id, "/log"), _text)


def list_batches(
    status: str | None, dataset: str | None, owner: str | None, cursor: str | None, limit: int
) -> Call[BatchPage]:
    params = {"limit": str(limit)}
    if status:
        params["status"] = str(status)
    if dataset:
        params["dataset"] = dataset
    if owner:
        params["owner"] = owner
    if cursor:
        params["cursor"] = cursor
    return Call("GET", "/batches", _decoder(BatchPage), params=params)


def cancel_batch(batch_id: str) -> Call[Batch]:
    return Call("POST", _batch_path(batch_id, "/cancel"), parse_batch)


def retry_batch(batch_id: str, idempotency_key: str | None) -> Call[Batch]:
    """POST /batches/{id}/retry: a new batch of the failed and not-processed records."""
    return Call(
        "POST",
        _batch_path(batch_id, "/retry"),
        parse_batch,
        headers=_idempotency(idempotency_key),
    )


def delete_batch(batch_id: str) -> Call[Batch]:
    return Call("DELETE", _batch_path(batch_id), parse_batch)


def result_file(batch_id: str, which: ResultFile, *, jsonl: bool = False) -> str:
    """Path of a batch's results or failed-records file (streamed by the caller); ``jsonl``:
    the results as JSON Lines."""
    return _batch_path(batch_id, f"/{which}") + ("?format=jsonl" if jsonl else "")


def events_path(batch_id: str) -> str:
    return _batch_path(batch_id, "/events")


def create_dataset(schema: DatasetSchema | Mapping[str, Any]) -> Call[Dataset]:
    body = schema.to_dict() if isinstance(schema, DatasetSchema) else dict(schema)
    return Call("POST", "/datasets", _decoder(Dataset), json=body)


def get_dataset(name: str) -> Call[Dataset]:
    return Call("GET", f"/datasets/{quote(name, safe='')}", _decoder(Dataset))


def delete_dataset(name: str, keep_table: bool) -> Call[Dataset]:
    params = {"keep_table": "true"} if keep_table else {}
    return Call("DELETE", f"/datasets/{quote(name, safe='')}", _decoder(Dataset), params=params)


def list_datasets(cursor: str | None, limit: int) -> Call[DatasetList]:
    params = {"limit": str(limit)}
    if cursor:
        params["cursor"] = cursor
    return Call("GET", "/datasets", _decoder(DatasetList), params=params)


StatementSpec = Statement | Mapping[str, Any]


def _no_content(response: httpx.Response) -> None:
    errors.raise_for_error(response)


def _name(name: str) -> str:
    return quote(name, safe="")


def _lifetime(expires_in: float | None) -> dict[str, Any]:
    return {} if expires_in is None else {"expires_in": int(expires_in)}


def create_user(name: str, role: str, expires_in: float | None) -> Call[UserCreated]:
    body = {"name": name, "role": role, **_lifetime(expires_in)}
    return Call("POST", "/users", _decoder(UserCreated), json=body)


def list_users() -> Call[list[User]]:
    parse = _decoder(UserList)
    return Call("GET", "/users", lambda response: parse(response).users)


def update_user(name: str, disabled: bool | None, role: str | None) -> Call[User]:
    body: dict[str, Any] = {}
    if disabled is not None:
        body["disabled"] = disabled
    if role is not None:
        body["role"] = role
    return Call("PATCH", f"/users/{_name(name)}", _decoder(User), json=body)


def create_token(name: str, expires_in: float | None) -> Call[IssuedToken]:
    path = f"/users/{_name(name)}/tokens"
    return Call("POST", path, _decoder(IssuedToken), json=_lifetime(expires_in))


def list_tokens(name: str | None) -> Call[list[Token]]:
    parse = _decoder(TokenList)
    path = "/tokens" if name is None else f"/users/{_name(name)}/tokens"
    return Call("GET", path, lambda response: parse(response).tokens)


def revoke_token(token_id: str, name: str | None) -> Call[None]:
    prefix = "" if name is None else f"/users/{_name(name)}"
    return Call("DELETE", f"{prefix}/tokens/{_name(token_id)}", _no_content)


def _statement_json(statement: StatementSpec) -> dict[str, Any]:
    if isinstance(statement, Statement):
        body: dict[str, Any] = msgspec.to_builtins(statement)
        return body
    return dict(statement)


def save_role(
    name: str, statements: Sequence[StatementSpec], sees_all_batches: bool, *, replace: bool
) -> Call[Role]:
    """POST /roles (a new role) or, with ``replace``, PUT /roles/{name}."""
    body: dict[str, Any] = {
        "statements": [_statement_json(s) for s in statements],
        "sees_all_batches": sees_all_batches,
    }
    if replace:
        return Call("PUT", f"/roles/{_name(name)}", _decoder(Role), json=body)
    return Call("POST", "/roles", _decoder(Role), json={"name": name, **body})


def delete_role(name: str) -> Call[None]:
    return Call("DELETE", f"/roles/{_name(name)}", _no_content)


def list_roles() -> Call[list[Role]]:
    parse = _decoder(RoleList)
    return Call("GET", "/roles", lambda response: parse(response).roles)


def batch_from_event(event: ServerSentEvent, batch_id: str) -> Batch | None:
    """The batch an SSE event carries; raises BatchNotFound when the batch was deleted."""
    if event.event == "deleted":
        raise errors.BatchNotFound(f"Batch {batch_id} was deleted", status_code=404)
    if event.event not in {"batch", "end"} or not event.data:
        return None
    try:
        return msgspec.json.decode(event.data, type=Batch, strict=False)
    except msgspec.DecodeError as error:
        raise errors.UnexpectedResponse(f"event stream of batch {batch_id}: {error}") from None


class Tracker:
    """A wait's bookkeeping: the deadline, and telling the caller about each new state once."""

    def __init__(self, batch_id: str, timeout: float | None, on_progress: ProgressCallback | None):
        self.batch_id = batch_id
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.on_progress = on_progress
        self.last: Batch | None = None

    def update(self, batch: Batch) -> bool:
        """Record ``batch``; True once it is terminal (the wait is over)."""
        if batch != self.last:
            self.last = batch
            if self.on_progress is not None:
                self.on_progress(batch)
        if not batch.is_terminal:
            self.check()
        return batch.is_terminal

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise WaitTimeout once the deadline has passed."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            status = self.last.status.value if self.last else "unknown"
            raise errors.WaitTimeout(
                f"Batch {self.batch_id} is still {status} after {self.timeout:g}s"
            )

    def pause(self, interval: float) -> float:
        """How long to sleep before the next poll (never past the deadline)."""
        self.check()
        remaining = self.remaining()
        return interval if remaining is None else min(interval, remaining)

    def stream_timeout(self, base: httpx.Timeout) -> httpx.Timeout:
        """Read timeout for the event stream: a silent stream is dropped for polling."""
        remaining = self.remaining()
        read = SSE_SILENCE_SECONDS if remaining is None else min(remaining, SSE_SILENCE_SECONDS)
        return httpx.Timeout(base.connect, read=read, write=base.write, pool=base.pool)
