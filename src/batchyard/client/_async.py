"""The asyncio/trio client: the same calls as ``Client``, sent with ``httpx.AsyncClient``."""

from __future__ import annotations

import builtins
import contextlib
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.to_thread
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


async def _send(
    http: httpx.AsyncClient, call: Call[T], content: AsyncIterator[bytes] | None = None
) -> T:
    request = http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        headers=call.headers,
        content=content,
    )
    try:
        response = await http.send(request)
    except httpx.HTTPError as error:
        raise errors.transport_error(error) from error
    return call.parse(response)


@contextlib.asynccontextmanager
async def _stream(
    http: httpx.AsyncClient, path: str, **kwargs: Any
) -> AsyncIterator[httpx.Response]:
    """A streamed GET whose error statuses and transport failures become the SDK's errors."""
    try:
        async with http.stream("GET", path, **kwargs) as response:
            if not response.is_success:
                await response.aread()
                errors.raise_for_error(response)
            yield response
    except httpx.HTTPError as error:
        raise errors.transport_error(error) from error


class AsyncIngest:
    """Batches: create, follow, read results, cancel, delete."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create_batch(
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
            return await _send(self._http, call)
        assert file is not None
        with Upload(file) as upload:
            call = _core.create_batch_upload(
                dataset,
                format=format,
                operation=operation,
                hash=await anyio.to_thread.run_sync(upload.sha256) if hash == "auto" else hash,
                options=options,
                idempotency_key=idempotency_key,
                size=upload.size,
            )
            return await _send(self._http, call, upload.ablocks(on_upload))

    async def get_batch(self, batch_id: str, download: bool = False) -> Batch:
        """The batch; ``download=True`` adds signed URLs to its files once it is completed."""
        return await _send(self._http, _core.get_batch(batch_id, download))

    async def get_batch_status(self, batch_id: str) -> builtins.list[HistoryEntry]:
        """The batch's status history, newest first."""
        return await _send(self._http, _core.get_history(batch_id))

    async def get_log(self, batch_id: str) -> str:
        """The batch's log: one timestamped, levelled line each."""
        return await _send(self._http, _core.get_log(batch_id))

    async def list_batches(
        self,
        status: str | None = None,
        dataset: str | None = None,
        owner: str | None = None,
        *,
        page_size: int = 100,
    ) -> AsyncIterator[Batch]:
        """Every batch you can see (newest first), fetching further pages as you iterate.

        ``owner`` (a user name) keeps only that user's batches; it never widens what you see.
        """
        cursor: str | None = None
        while True:
            page = await _send(
                self._http, _core.list_batches(status, dataset, owner, cursor, page_size)
            )
            for batch in page.batches:
                yield batch
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def cancel(self, batch_id: str) -> Batch:
        """Ask the batch to stop at its next chunk; what was committed stays."""
        return await _send(self._http, _core.cancel_batch(batch_id))

    async def retry_batch(self, batch_id: str, *, idempotency_key: str | None = None) -> Batch:
        """A new batch of this batch's failed and not-processed records, as they were sent
        (``retry_of`` names the original); the same ``idempotency_key`` returns the same batch.
        """
        return await _send(self._http, _core.retry_batch(batch_id, idempotency_key))

    async def delete(self, batch_id: str) -> Batch:
        """Remove a finished batch's input, results and history (loaded rows stay)."""
        return await _send(self._http, _core.delete_batch(batch_id))

    async def wait(
        self,
        batch_id: str,
        timeout: float | None = None,  # noqa: ASYNC109 (the same signature as Client.wait)
        on_progress: ProgressCallback | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> Batch:
        """Wait until the batch is terminal, calling ``on_progress`` with each new state.

        Follows the live event stream, and polls instead when events are unavailable.
        Raises WaitTimeout after ``timeout`` seconds.
        """
        tracker = _core.Tracker(batch_id, timeout, on_progress)
        finished = await self._follow_events(tracker)
        if finished is not None:
            return finished
        while True:
            batch = await self.get_batch(batch_id)
            if tracker.update(batch):
                return batch
            await anyio.sleep(tracker.pause(poll_interval))

    async def _follow_events(self, tracker: _core.Tracker) -> Batch | None:
        timeout = tracker.stream_timeout(self._http.timeout)
        path = _core.events_path(tracker.batch_id)
        try:
            async with (
                _stream(self._http, path, headers=SSE_HEADERS, timeout=timeout) as response,
                contextlib.aclosing(EventSource(response).aiter_sse()) as events,
            ):
                async for event in events:
                    batch = _core.batch_from_event(event, tracker.batch_id)
                    if batch is not None and tracker.update(batch):
                        return batch
        except (SSEError, errors.TransportError):
            tracker.check()
        return None

    async def download_results(self, batch_id: str, path: FileArg, *, format: str = "csv") -> None:
        """Stream the per-record results to ``path`` (a path or binary file object): CSV, or
        ``format="jsonl"`` for one JSON object per record (outputs stay nested)."""
        url_path = _core.result_file(batch_id, "results", jsonl=format == "jsonl")
        await self._download(url_path, path)

    async def list_operations(self) -> builtins.list[OperationInfo]:
        """The operations the server has (name, description, settings schema)."""
        return await _send(self._http, _core.list_operations())

    async def download_failed_records(self, batch_id: str, path: FileArg) -> None:
        """Stream the failed records (original fields plus ``error``) to ``path``."""
        await self._download(_core.result_file(batch_id, "failed-records"), path)

    async def _download(self, url_path: str, dest: FileArg) -> None:
        async with _stream(self._http, url_path) as response:
            with open_destination(dest) as out:
                async for block in response.aiter_bytes(CHUNK_BYTES):
                    await anyio.to_thread.run_sync(out.write, block)


class AsyncDatasets:
    """Datasets: the target tables batches load into, with their schemas."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create(self, schema: DatasetSchema | Mapping[str, Any]) -> Dataset:
        """Declare a dataset (a ``DatasetSchema`` or DESIGN.md's JSON body as a dict)."""
        return await _send(self._http, _core.create_dataset(schema))

    async def get(self, name: str) -> Dataset:
        return await _send(self._http, _core.get_dataset(name))

    async def list(self, *, page_size: int = 100) -> builtins.list[Dataset]:
        """Every dataset you can see, by name (fetched ``page_size`` at a time)."""
        found: builtins.list[Dataset] = []
        cursor: str | None = None
        while True:
            page = await _send(self._http, _core.list_datasets(cursor, page_size))
            found.extend(page.datasets)
            if not page.next_cursor:
                return found
            cursor = page.next_cursor

    async def delete(self, name: str, *, keep_table: bool = False) -> Dataset:
        """Delete the dataset: its definition and, unless ``keep_table``, its table with every row.

        Returns the dataset as it was (``row_count``: the rows it held). Raises DatasetInUse
        while a batch of it is unfinished; ended batches keep their history and results.
        """
        return await _send(self._http, _core.delete_dataset(name, keep_table))

    async def infer(
        self, path: FileArg, name: str | None = None, *, delimiter: str | None = None
    ) -> DatasetSchema:
        """Guess a schema from a sample file (CSV, JSON Lines, Parquet; gzip'd or not);
        ``delimiter`` is a CSV file's field separator."""
        from batchyard.client.infer import infer_schema

        return await anyio.to_thread.run_sync(
            functools.partial(infer_schema, path, name, delimiter=delimiter)
        )


class AsyncUsers:
    """Users and their tokens (needs ``manage_users``)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create(
        self, name: str, role: str = "member", *, expires_in: float | None = None
    ) -> UserCreated:
        """Create a user of an existing role; the result holds their first token, shown once."""
        return await _send(self._http, _core.create_user(name, role, expires_in))

    async def list(self) -> builtins.list[User]:
        return await _send(self._http, _core.list_users())

    async def update(
        self, name: str, *, disabled: bool | None = None, role: str | None = None
    ) -> User:
        """Disable or enable the user, or give them another role (at once)."""
        return await _send(self._http, _core.update_user(name, disabled, role))

    async def create_token(self, name: str, *, expires_in: float | None = None) -> IssuedToken:
        """Issue another token for user ``name`` (its ``token`` is shown only now)."""
        return await _send(self._http, _core.create_token(name, expires_in))

    async def list_tokens(self, name: str | None = None) -> builtins.list[Token]:
        """Tokens' ids and validity: of user ``name``, or of everyone."""
        return await _send(self._http, _core.list_tokens(name))

    async def revoke_token(self, token_id: str, *, user: str | None = None) -> None:
        """Revoke a token (of ``user``, when given): it stops working at once."""
        await _send(self._http, _core.revoke_token(token_id, user))


class AsyncRoles:
    """Built-in and custom roles (needs ``manage_users``)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create(
        self, name: str, statements: Sequence[StatementSpec], *, sees_all_batches: bool = False
    ) -> Role:
        """Define a custom role from statements (``Statement`` or their JSON as dicts)."""
        call = _core.save_role(name, statements, sees_all_batches, replace=False)
        return await _send(self._http, call)

    async def update(
        self, name: str, statements: Sequence[StatementSpec], *, sees_all_batches: bool = False
    ) -> Role:
        """Replace a custom role's statements: its users hold the new ones at once."""
        call = _core.save_role(name, statements, sees_all_batches, replace=True)
        return await _send(self._http, call)

    async def delete(self, name: str) -> None:
        """Delete a custom role that no user holds."""
        await _send(self._http, _core.delete_role(name))

    async def list(self) -> builtins.list[Role]:
        return await _send(self._http, _core.list_roles())


class AsyncClient:
    """``Client`` for async code: the same methods, awaited; same defaults and errors.

    ``transport`` replaces the network (e.g. a transport that runs the app in-process).
    """

    def __init__(
        self,
        token: str | None = None,
        url: str | None = None,
        *,
        timeout: float | None = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            transport=transport, **_core.http_options(token, url, timeout)
        )
        self.ingest = AsyncIngest(self._http)
        self.datasets = AsyncDatasets(self._http)
        self.users = AsyncUsers(self._http)
        self.roles = AsyncRoles(self._http)

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
