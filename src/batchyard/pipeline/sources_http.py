"""Fetching one http(s) source into blob storage: guarded, as sent, and within its time.

- Where: the client connects only to addresses the server may reach (pipeline/http_guard.py);
  redirects are followed by hand, each hop checked before it is requested.
- What: the body exactly as sent. ``Accept-Encoding: identity`` is asked for, and a body that
  comes with a single gzip layer anyway is stored as the gzip file it is (the format layer
  inflates it under the decompressed-size limit); stacked or other encodings are refused, so
  nothing is inflated before a limit can see it.
- How long: a deadline for the whole transfer (retries included) and a minimum rate over a
  sliding window, so a source that trickles cannot hold a runner slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from batchyard.domain.errors import (
    SourceEncodingUnsupported,
    SourceHttpError,
    SourceRefused,
    SourceTimeout,
    SourceUnreachable,
)
from batchyard.pipeline.addresses import AddressNotAllowed, Reach
from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore, WriteResult

Log = Callable[[str], Awaitable[None]]

ATTEMPTS = 3
MAX_REDIRECTS = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_WEB_SCHEMES = ("http", "https")
#: Content-Encodings stored as they come: none, or one gzip layer (a .gz file the reader knows).
_READABLE_ENCODINGS: tuple[list[str], ...] = ([], ["gzip"], ["x-gzip"])
_RETRIED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class TransferLimits:
    """How long one source may take, and how slowly it may send (see Settings)."""

    deadline_seconds: float
    min_bytes_per_second: int = 0
    rate_window_seconds: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> TransferLimits:
        return cls(
            settings.source_deadline_seconds,
            settings.source_min_bytes_per_second,
            settings.source_rate_window_seconds,
        )


class SizeBudget(Protocol):
    """The sources' shared size limit (pipeline/sources.py)."""

    def check_declared(self, url: str, declared: int | None) -> None: ...

    def meter(self, url: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]: ...


class _Transient(Exception):
    """A failure worth another attempt (5xx, 429); the message completes "source <url> …"."""


class _Pace:
    """Cuts a transfer at its deadline, or when a window passes with too few bytes received."""

    def __init__(self, limits: TransferLimits) -> None:
        self.limits = limits
        self._loop = asyncio.get_running_loop()
        self._end = self._loop.time() + limits.deadline_seconds
        self._timeout: asyncio.Timeout | None = None
        self._window_bytes = 0

    @contextlib.asynccontextmanager
    async def watch(self, shown: str) -> AsyncIterator[_Pace]:
        timeout = asyncio.timeout_at(self._end)
        try:
            async with timeout:
                self._timeout = timeout
                self.restart()
                yield self
        except TimeoutError:
            if not timeout.expired():
                raise
            raise SourceTimeout(f"source {shown} {self._why()}") from None

    def restart(self) -> None:
        """A new window from now (each attempt starts with one)."""
        self._window_bytes = 0
        if self._timeout is not None:
            self._timeout.reschedule(self._next_deadline())

    def pause(self) -> None:
        """No rate while waiting for a retry: only the whole-transfer deadline runs on."""
        if self._timeout is not None:
            self._timeout.reschedule(self._end)

    def count(self, size: int) -> None:
        self._window_bytes += size
        needed = self.limits.min_bytes_per_second * self.limits.rate_window_seconds
        if self._window_bytes >= needed:
            self.restart()

    def _next_deadline(self) -> float:
        if not self.limits.min_bytes_per_second:
            return self._end
        return min(self._end, self._loop.time() + self.limits.rate_window_seconds)

    def _why(self) -> str:
        limits = self.limits
        if self._loop.time() >= self._end - 0.01:
            return f"did not arrive within {limits.deadline_seconds:g} s"
        return (
            f"sent fewer than {limits.min_bytes_per_second} bytes per second over "
            f"{limits.rate_window_seconds:g} s (the minimum rate)"
        )


@dataclass
class WebSource:
    """One http(s) source on its way to ``key``: ``shown`` is its URL as logs may show it."""

    url: str
    shown: str
    client: httpx.AsyncClient
    reach: Reach
    limits: TransferLimits
    store: BlobStore
    budget: SizeBudget

    async def copy(self, key: str, sha256: str | None, log: Log) -> tuple[WriteResult, str | None]:
        """Fetch with retries; every attempt restarts the object from scratch."""
        pace = _Pace(self.limits)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.5, max=10),
            retry=retry_if_exception_type((_Transient, *_RETRIED)),
            before_sleep=self._before_retry(log, pace),
            reraise=True,
        )
        try:
            async with pace.watch(self.shown):
                return await retrying(self._fetch, key, sha256, pace)
        except _Transient as error:
            raise SourceHttpError(
                f"source {self.shown} {error} (after {ATTEMPTS} attempts)"
            ) from None
        except AddressNotAllowed as refused:
            raise SourceRefused(
                f"source {self.shown} leads to {refused.address}, which is not a public "
                "address; this server does not fetch from private networks",
                details={"url": self.shown, "address": str(refused.address)},
            ) from None
        except httpx.HTTPError as error:
            raise SourceUnreachable(
                f"source {self.shown} could not be fetched: {_reason(error)}"
            ) from None

    def _before_retry(self, log: Log, pace: _Pace) -> Callable[[RetryCallState], Awaitable[None]]:
        async def before_sleep(state: RetryCallState) -> None:
            pace.pause()
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            await log(
                f"Retrying {self.shown} in {wait:.1f} s "
                f"(attempt {state.attempt_number} of {ATTEMPTS} failed: {_reason(error)})"
            )

        return before_sleep

    async def _fetch(
        self, key: str, sha256: str | None, pace: _Pace
    ) -> tuple[WriteResult, str | None]:
        """One attempt: follow redirects by hand so every hop passes the address check."""
        pace.restart()
        current = self.url
        for _hop in range(MAX_REDIRECTS + 1):
            self.reach.check_literal(urlsplit(current).hostname or "")
            request = self.client.build_request(
                "GET", current, headers={"Accept-Encoding": "identity"}
            )
            response = await self.client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_CODES or not location:
                    return await self._store_body(response, key, sha256, pace)
                current = str(response.url.join(location))
            finally:
                await response.aclose()
            if urlsplit(current).scheme.lower() not in _WEB_SCHEMES:
                raise SourceRefused(f"source {self.shown} redirects to a non-http(s) URL")
        raise SourceHttpError(f"source {self.shown} redirects more than {MAX_REDIRECTS} times")

    async def _store_body(
        self, response: httpx.Response, key: str, sha256: str | None, pace: _Pace
    ) -> tuple[WriteResult, str | None]:
        status = f"{response.status_code} {response.reason_phrase}"
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"returned {status}")
        if not response.is_success:
            raise SourceHttpError(f"source {self.shown} returned {status}")
        self._check_encoding(response)
        self.budget.check_declared(self.shown, _content_length(response))
        chunks = self.budget.meter(self.shown, _paced(response.aiter_raw(), pace))
        written = await self.store.write_stream(key, chunks, expected_sha256=sha256)
        return written, _name_hint(response)

    def _check_encoding(self, response: httpx.Response) -> None:
        header = response.headers.get("content-encoding", "")
        layers = [e.strip().lower() for e in header.split(",") if e.strip()]
        if [e for e in layers if e != "identity"] not in _READABLE_ENCODINGS:
            raise SourceEncodingUnsupported(
                f"source {self.shown} is sent with Content-Encoding {header!r}; "
                "only an unencoded body or a single gzip layer is read",
                details={"url": self.shown, "content_encoding": header},
            )


async def _paced(chunks: AsyncIterator[bytes], pace: _Pace) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        pace.count(len(chunk))
        yield chunk


def _reason(error: BaseException | None) -> str:
    return str(error) or type(error).__name__


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _name_hint(response: httpx.Response) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        filename = message.get_filename()
        if filename:
            return PurePosixPath(filename).name or None
    return PurePosixPath(unquote(response.url.path)).name or None
