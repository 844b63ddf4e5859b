"""The blocking client: sends the core's calls with ``httpx.Client``."""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, SSEError

from batchyard.client import _core, errors
from batchyard.client._core import (
    CHUNK_BYTES,
    SSE_HEADERS,
    Call,
    ProgressCallback,
    SourceSpec,
    StatementSpec,
)
from batchyard.client._uploads import FileArg, Upload, UploadProgress, open_destination
from batchyard.client.models import (
    Batch,
    Dataset,
    DatasetSchema,
    HistoryEntry,
    IssuedToken,
    OperationInfo,
    Role,
    Token,
    User,
    UserCreated,
)

T = TypeVar("T")


def _send(http: httpx.Client, call: Call[T], content: Iterator[bytes] | None = None) -> T:
    request = http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        headers=call.headers,
        content=content,
    )
    try:
        response = http.send(request)
    except httpx.HTTPError as error:
        raise errors.transport_error(error) from error
    return call.parse(response)


@contextlib.contextmanager
def _stream(http: httpx.Client, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
    """A streamed GET whose error statuses and transport failures become the SDK's errors."""
    try:
        with http.stream("GET", path, **kwargs) as response:
            if not response.is_success:
                response.read()
                errors.raise_for_error(response)
            yield response
    except httpx.HTTPError as error:
        raise errors.transport_error(error) from error


class Ingest:
    """Batches: create, follow, read results, cancel, delete."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create_batch(
        self,
        dataset: str,
        file: FileArg | None = None,
        *,
        sources: Sequence[SourceSpec] | None = None,
        format: str | None = None,
        operation: str = "insert",
        hash: str | None = None,
        options: Mapping[str, Any] | None = None,
        operation_options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        on_upload: UploadProgress | None = None,
    ) -> Batch:
        """Start importing ``file`` (a path or binary file object, streamed) or ``sources`` (URLs).

        ``hash="auto"`` computes the file's SHA-256 in a first streaming pass so the server
        verifies the copy. ``operation`` is insert (default), upsert, delete, http or one a
        package registers on the server (``list_operations``); ``operation_options`` are its
        settings (``options.operation``). Returns at once; follow the batch with ``wait``.
        """
        _core.check_one_input(file, sources)
        options = _core.with_operation_options(options, operation_options)
        if sources is not None:
            call = _core.create_batch_from_sources(
                dataset,
                sources,
                format=format,
                operation=operation,
                hash=hash,
                options=options,
                idempotency_key=idempotency_key,
            )
            return _send(self._http, call)
        assert file is not None
        with Upload(file) as upload:
            call = _core.create_batch_upload(
                dataset,
                format=format,
                operation=operation,
                hash=upload.sha256() if hash == "auto" else hash,
                options=options,
                idempotency_key=idempotency_key,
                size=upload.size,
            )
            return _send(self._http, call, upload.blocks(on_upload))

    def get_batch(self, batch_id: str, download: bool = False) -> Batch:
        """The batch; ``download=True`` adds signed URLs to its files once it is completed."""
        return _send(self._http, _core.get_batch(batch_id, download))

    def get_batch_status(self, batch_id: str) -> builtins.list[HistoryEntry]:
        """The batch's status history, newest first."""
        return _send(self._http, _core.get_history(batch_id))

    def get_log(self, batch_id: str) -> str:
        """The batch's log: one timestamped, levelled line each."""
        return _send(self._http, _core.get_log(batch_id))

    def list_batches(
        self,
        status: str | None = None,
        dataset: str | None = None,
        owner: str | None = None,
        *,
        page_size: int = 100,
    ) -> Iterator[Batch]:
        """Every batch you can see (newest first), fetching further pages as you iterate.

        ``owner`` (a user name) keeps only that user's batches; it never widens what you see.
        """
        cursor: str | None = None
        while True:
            page = _send(self._http, _core.list_batches(status, dataset, owner, cursor, page_size))
            yield from page.batches
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, batch_id: str) -> Batch:
        """Ask the batch to stop at its next chunk; what was committed stays."""
        return _send(self._http, _core.cancel_batch(batch_id))

    def retry_batch(self, batch_id: str, *, idempotency_key: str | None = None) -> Batch:
        """A new batch of this batch's failed and not-processed records, as they were sent
        (``retry_of`` names the original); the same ``idempotency_key`` returns the same batch.
        """
        return _send(self._http, _core.retry_batch(batch_id, idempotency_key))

    def delete(self, batch_id: str) -> Batch:
        """Remove a finished batch's input, results and history (loaded rows stay)."""
        return _send(self._http, _core.delete_batch(batch_id))

    def wait(
        self,
        batch_id: str,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> Batch:
        """Block until the batch is terminal, calling ``on_progress`` with each new state.

        Follows the live event stream, and polls instead when events are unavailable.
        Raises WaitTimeout after ``timeout`` seconds.
        """
        tracker = _core.Tracker(batch_id, timeout, on_progress)
        finished = self._follow_events(tracker)
        if finished is not None:
            return finished
        while True:
            batch = self.get_batch(batch_id)
            if tracker.update(batch):
                return batch
            time.sleep(tracker.pause(poll_interval))

    def _follow_events(self, tracker: _core.Tracker) -> Batch | None:
        timeout = tracker.stream_timeout(self._http.timeout)
        path = _core.events_path(tracker.batch_id)
        try:
            with _stream(self._http, path, headers=SSE_HEADERS, timeout=timeout) as response:
                for event in EventSource(response).iter_sse():
                    batch = _core.batch_from_event(event, tracker.batch_id)
                    if batch is not None and tracker.update(batch):
                        return batch
        except (SSEError, errors.TransportError):
            tracker.check()
        return None

    def download_results(self, batch_id: str, path: FileArg, *, format: str = "csv") -> None:
        """Stream the per-record results to ``path`` (a path or binary file object): CSV, or
        ``format="jsonl"`` for one JSON object per record (outputs stay nested)."""
        url_path = _core.result_file(batch_id, "results", jsonl=format == "jsonl")
        self._download(url_path, path)

    def list_operations(self) -> builtins.list[OperationInfo]:
        """The operations the server has (name, description, settings schema)."""
        return _send(self._http, _core.list_operations())

    def download_failed_records(self, batch_id: str, path: FileArg) -> None:
        """Stream the failed records (original fields plus ``error``) to ``path``."""
        self._download(_core.result_file(batch_id, "failed-records"), path)

    def _download(self, url_path: str, dest: FileArg) -> None:
        with _stream(self._http, url_path) as response, open_destination(dest) as out:
            for block in response.iter_bytes(CHUNK_BYTES):
                out.write(block)


class Datasets:
    """Datasets: the target tables batches load into, with their schemas."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create(self, schema: DatasetSchema | Mapping[str, Any]) -> Dataset:
        """Declare a dataset (a ``DatasetSchema`` or DESIGN.md's JSON body as a dict)."""
        return _send(self._http, _core.create_dataset(schema))

    def get(self, name: str) -> Dataset:
        return _send(self._http, _core.get_dataset(name))

    def list(self, *, page_size: int = 100) -> builtins.list[Dataset]:
        """Every dataset you can see, by name (fetched ``page_size`` at a time)."""
        found: builtins.list[Dataset] = []
        cursor: str | None = None
        while True:
            page = _send(self._http, _core.list_datasets(cursor, page_size))
            found.extend(page.datasets)
            if not page.next_cursor:
                return found
            cursor = page.next_cursor

    def delete(self, name: str, *, keep_table: bool = False) -> Dataset:
        """Delete the dataset: its definition and, unless ``keep_table``, its table with every row.

        Returns the dataset as it was (``row_count``: the rows it held). Raises DatasetInUse
        while a batch of it is unfinished; ended batches keep their history and results.
        """
        return _send(self._http, _core.delete_dataset(name, keep_table))

    def infer(
        self, path: FileArg, name: str | None = None, *, delimiter: str | None = None
    ) -> DatasetSchema:
        """Guess a schema from a sample file (CSV, JSON Lines, Parquet; gzip'd or not);
        ``delimiter`` is a CSV file's field separator."""
        from batchyard.client.infer import infer_schema

        return infer_schema(path, name, delimiter=delimiter)


class Users:
    """Users and their tokens (needs ``manage_users``)."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create(
        self, name: str, role: str = "member", *, expires_in: float | None = None
    ) -> UserCreated:
        """Create a user of an existing role; the result holds their first token, shown once."""
        return _send(self._http, _core.create_user(name, role, expires_in))

    def list(self) -> builtins.list[User]:
        return _send(self._http, _core.list_users())

    def update(self, name: str, *, disabled: bool | None = None, role: str | None = None) -> User:
        """Disable or enable the user, or give them another role (at once)."""
        return _send(self._http, _core.update_user(name, disabled, role))

    def create_token(self, name: str, *, expires_in: float | None = None) -> IssuedToken:
        """Issue another token for user ``name`` (its ``token`` is shown only now)."""
        return _send(self._http, _core.create_token(name, expires_in))

    def list_tokens(self, name: str | None = None) -> builtins.list[Token]:
        """Tokens' ids and validity: of user ``name``, or of everyone."""
        return _send(self._http, _core.list_tokens(name))

    def revoke_token(self, token_id: str, *, user: str | None = None) -> None:
        """Revoke a token (of ``user``, when given): it stops working at once."""
        _send(self._http, _core.revoke_token(token_id, user))


class Roles:
    """Built-in and custom roles (needs ``manage_users``)."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create(
        self, name: str, statements: Sequence[StatementSpec], *, sees_all_batches: bool = False
    ) -> Role:
        """Define a custom role from statements (``Statement`` or their JSON as dicts)."""
        call = _core.save_role(name, statements, sees_all_batches, replace=False)
        return _send(self._http, call)

    def update(
        self, name: str, statements: Sequence[StatementSpec], *, sees_all_batches: bool = False
    ) -> Role:
        """Replace a custom role's statements: its users hold the new ones at once."""
        call = _core.save_role(name, statements, sees_all_batches, replace=True)
        return _send(self._http, call)

    def delete(self, name: str) -> None:
        """Delete a custom role that no user holds."""
        _send(self._http, _core.delete_role(name))

    def list(self) -> builtins.list[Role]:
        return _send(self._http, _core.list_roles())


class Client:
    """Talks to a batchyard server; token and URL default to BATCHYARD_TOKEN and BATCHYARD_URL.

    ``transport`` replaces the network (e.g. a transport that runs the app in-process).
    """

    def __init__(
        self,
        token: str | None = None,
        url: str | None = None,
        *,
        timeout: float | None = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(transport=transport, **_core.http_options(token, url, timeout))
        self.ingest = Ingest(self._http)
        self.datasets = Datasets(self._http)
        self.users = Users(self._http)
        self.roles = Roles(self._http)

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
