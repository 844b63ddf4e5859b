"""Copying a batch's sources into blob storage: in parallel, hashed on the way, SSRF-guarded.

http(s) URLs, ``s3://`` objects in the buckets the server allows, and (admins) ``file://`` paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import url2pathname

import httpx

from batchyard.domain.batches import Source
from batchyard.domain.errors import (
    HashMismatch,
    InvalidSource,
    SourceRefused,
    SourcesTooLarge,
    SourceUnavailable,
)
from batchyard.pipeline.addresses import AddressNotAllowed, Reach
from batchyard.pipeline.http_guard import guarded_client
from batchyard.pipeline.sources_http import TransferLimits, WebSource
from batchyard.pipeline.sources_s3 import S3Sources
from batchyard.storage.blobs import BlobStore, WriteResult

Log = Callable[[str], Awaitable[None]]
T = TypeVar("T")

FILE_BLOCK_BYTES = 2**20
#: Per read and per connect; the whole transfer is bounded by TransferLimits.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Used only when the caller passes none (the server passes the limits from its settings).
DEFAULT_LIMITS = TransferLimits(deadline_seconds=4 * 3600.0, min_bytes_per_second=1024)
_WEB_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class CopiedSource:
    """One source as stored: where it is, how big, and its SHA-256 computed while copying."""

    index: int
    url: str
    key: str
    size: int
    sha256: str
    #: A file name for format detection (Content-Disposition, else the URL's last segment).
    name_hint: str | None


def validate_source_url(
    url: str, *, file_root: Path | None, s3: S3Sources | None = None, reach: Reach | None = None
) -> None:
    """Cheap check at batch-create time: an allowed scheme, host or bucket (no network access).

    ``s3`` says which buckets ``s3://`` sources may name; None refuses them all. ``reach`` refuses
    a host that spells a private address, in any spelling (host names are checked on connect).
    """
    parts = _split(url)
    if parts.scheme in _WEB_SCHEMES:
        if not parts.hostname:
            raise InvalidSource(f"source URL {_redact(url)} has no host")
        if reach is not None:
            _check_literal(url, parts, reach)
    elif parts.scheme == "file":
        _file_path(url, parts, file_root)
    elif parts.scheme == "s3":
        if s3 is None:
            raise InvalidSource(
                "s3:// sources are not enabled on this server (see BATCHYARD_S3_SOURCE_BUCKETS)",
                details={"url": url},
            )
        s3.check(url)
    else:
        raise InvalidSource(
            f"source URL {_redact(url)} has an unsupported scheme; use http://, https:// or s3://",
            details={"url": _redact(url)},
        )


async def copy_sources(
    sources: Sequence[Source],
    store: BlobStore,
    key_prefix: str,
    *,
    parallel_streams: int,
    max_bytes: int | None,
    reach: Reach,
    file_root: Path | None,
    log: Log,
    client: httpx.AsyncClient | None = None,
    s3: S3Sources | None = None,
    limits: TransferLimits = DEFAULT_LIMITS,
) -> list[CopiedSource]:
    """Copy every source to ``<key_prefix>/<index>``, at most ``parallel_streams`` at once.

    Raises the first failure (HashMismatch, SourceUnavailable and its kinds, SourceRefused,
    SourcesTooLarge) after cancelling the other copies and deleting what was copied under
    ``key_prefix``; ``max_bytes`` caps the sources' total size. ``client`` must connect through
    the address guard (pipeline/http_guard.py); without one, a guarded client is made here.
    """
    for index, source in enumerate(sources):
        try:
            if not source.url:
                raise InvalidSource(f"source {index} has no URL")
            validate_source_url(source.url, file_root=file_root, s3=s3, reach=reach)
        except InvalidSource as refused:  # allowed once, but not any more: the batch fails
            raise SourceRefused(refused.message, details=refused.details) from None
    streams = max(1, min(parallel_streams, len(sources)))
    await log(f"Using {streams} parallel stream{'' if streams == 1 else 's'}")
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(guarded_client(reach, timeout=DEFAULT_TIMEOUT))
        copier = _Copier(
            store=store,
            key_prefix=key_prefix,
            client=client,
            budget=_Budget(max_bytes),
            reach=reach,
            limits=limits,
            file_root=file_root,
            log=log,
            slots=asyncio.Semaphore(streams),
            s3=s3,
        )
        try:
            return await _all_or_first_error(
                [
                    copier.copy(index, source.url or "", source.sha256)
                    for index, source in enumerate(sources)
                ]
            )
        except Exception:
            # The sources that did arrive are of no use; the copy's own error is the one to report.
            with contextlib.suppress(Exception):
                await store.delete_prefix(key_prefix)
            raise


async def _all_or_first_error(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on failure cancel the rest and raise the first error itself (no group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


class _Budget:
    """The bytes all sources may add up to; a failed attempt gives its bytes back for the retry."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def check_declared(self, url: str, declared: int | None) -> None:
        """Refuse before downloading when the server announces a size over the limit."""
        if declared is not None and self.limit is not None and self.used + declared > self.limit:
            raise self._too_large(url)

    async def meter(self, url: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        taken = 0
        try:
            async for chunk in chunks:
                taken += len(chunk)
                self.used += len(chunk)
                if self.limit is not None and self.used > self.limit:
                    raise self._too_large(url)
                yield chunk
        except BaseException:
            self.used -= taken
            raise

    def _too_large(self, url: str) -> SourcesTooLarge:
        return SourcesTooLarge(
            f"The sources are larger than this server accepts ({self.limit} bytes in all); "
            f"stopped at {_redact(url)}",
            details={"max_bytes": self.limit, "url": _redact(url)},
        )


@dataclass
class _Copier:
    """What every copy of one batch shares: store, client, size budget and stream slots."""

    store: BlobStore
    key_prefix: str
    client: httpx.AsyncClient
    budget: _Budget
    reach: Reach
    limits: TransferLimits
    file_root: Path | None
    log: Log
    slots: asyncio.Semaphore
    s3: S3Sources | None = None

    async def copy(self, index: int, url: str, sha256: str | None) -> CopiedSource:
        key = f"{self.key_prefix}/{index}"
        async with self.slots:
            await self.log(f"Fetching url {_redact(url)}")
            started = time.monotonic()
            try:
                scheme = _split(url).scheme
                if scheme == "file":
                    written, hint = await self._copy_file(url, key, sha256)
                elif scheme == "s3":
                    written, hint = await self._copy_s3(url, key, sha256)
                else:
                    written, hint = await self._copy_web(url, key, sha256)
            except HashMismatch as mismatch:
                raise HashMismatch(
                    f"source {_redact(url)} does not match its sha256: "
                    f"expected {sha256}, copied bytes have {mismatch.details['actual']}",
                    details={**mismatch.details, "url": _redact(url)},
                ) from None
            seconds = time.monotonic() - started
            await self.log(
                f"Fetched {_redact(url)}: {written.size / 1e6:.1f} MB in {seconds:.1f} s "
                f"(sha256 {written.sha256[:12]}…)"
            )
        return CopiedSource(index, url, key, written.size, written.sha256, hint)

    async def _copy_web(
        self, url: str, key: str, sha256: str | None
    ) -> tuple[WriteResult, str | None]:
        shown = _redact(url)
        web = WebSource(url, shown, self.client, self.reach, self.limits, self.store, self.budget)
        return await web.copy(key, sha256, self.log)

    async def _copy_file(
        self, url: str, key: str, sha256: str | None
    ) -> tuple[WriteResult, str | None]:
        path = _file_path(url, _split(url), self.file_root)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except OSError as error:
            raise SourceUnavailable(f"source {url} cannot be read: {error.strerror}") from error
        with handle:
            self.budget.check_declared(url, path.stat().st_size)
            chunks = self.budget.meter(url, _read_blocks(handle))
            written = await self.store.write_stream(key, chunks, expected_sha256=sha256)
        return written, path.name

    async def _copy_s3(
        self, url: str, key: str, sha256: str | None
    ) -> tuple[WriteResult, str | None]:
        """One stream from the bucket to storage (obstore retries transient S3 errors itself)."""
        if self.s3 is None:
            raise InvalidSource("s3:// sources are not enabled on this server")
        source = await self.s3.open(url)
        self.budget.check_declared(url, source.size)
        chunks = self.budget.meter(url, source.chunks)
        written = await self.store.write_stream(key, chunks, expected_sha256=sha256)
        return written, source.name


async def _read_blocks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    while block := await asyncio.to_thread(handle.read, FILE_BLOCK_BYTES):
        yield block


def _check_literal(url: str, parts: SplitResult, reach: Reach) -> None:
    try:
        reach.check_literal(parts.hostname or "")
    except AddressNotAllowed as refused:
        raise InvalidSource(
            f"source {_redact(url)} names {refused.address}, which is not a public address; "
            "this server does not fetch from private networks",
            details={"url": _redact(url), "address": str(refused.address)},
        ) from None


def _file_path(url: str, parts: SplitResult, file_root: Path | None) -> Path:
    """The local file a file:// source names, refused unless it lies inside ``file_root``."""
    if file_root is None:
        raise InvalidSource(
            "file:// sources are not allowed here (admins only, under BATCHYARD_FILE_SOURCES_ROOT)"
        )
    if parts.netloc not in ("", "localhost"):
        raise InvalidSource(f"source {url} names a remote host; use file:///absolute/path")
    path = Path(url2pathname(unquote(parts.path))).resolve()  # symlinks resolved, ".." gone
    if not path.is_relative_to(file_root.resolve()):
        raise InvalidSource(f"source {url} is outside the directory file:// sources may read")
    return path


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError as error:
        raise InvalidSource(f"source URL {url!r} is not a valid URL: {error}") from error
    return parts._replace(scheme=parts.scheme.lower())


def _redact(url: str) -> str:
    """The URL without user info, query or fragment (where credentials and presigned
    signatures travel), for logs and error messages the user and admins read."""
    parts = urlsplit(url)
    _user, at, host = parts.netloc.rpartition("@")
    netloc = f"***@{host}" if at else host
    return parts._replace(netloc=netloc, query="…" if parts.query else "", fragment="").geturl()
