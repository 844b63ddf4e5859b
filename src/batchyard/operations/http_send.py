"""Sending one chunk's records for the ``http`` operation: concurrency, rate, retries, answers."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import email.utils
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from batchyard.apply.operations import OperationContext, Outcomes
from batchyard.domain.batches import LogLevel
from batchyard.operations.http_limits import BatchLimits
from batchyard.pipeline.addresses import AddressNotAllowed

#: The most of a response body kept as a record's output (and of an error body, its message).
MAX_OUTPUT_BYTES = 64 * 1024
_MESSAGE_CHARS = 500
#: Backoff between attempts: doubling from the first, never above the cap (nor Retry-After's).
_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 10.0
_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class SendSettings:
    """``options.operation`` of an http batch, defaults filled in."""

    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    concurrency: int = 8
    rate_per_second: float | None = None
    max_attempts: int = 3

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> SendSettings:
        return cls(**{k: v for k, v in given.items() if k in cls.__dataclass_fields__})


class _Retryable(Exception):
    """An attempt that may succeed if made again (5xx, 429, timeout, connection error)."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class RecordSender:
    """Sends records one request each and notes each one's outcome in ``outcomes``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: SendSettings,
        context: OperationContext,
        outcomes: Outcomes,
        limits: BatchLimits,
    ) -> None:
        self.client = client
        self.settings = settings
        self.context = context
        self.outcomes = outcomes
        #: The batch's concurrency and rate, shared with its other streams in this process.
        self.limits = limits
        #: Attempts made again, for the chunk's log line.
        self.retried = 0

    async def send_all(self, records: list[tuple[int, dict[str, Any]]]) -> None:
        queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        for record in records:
            queue.put_nowait(record)
        workers = min(self.settings.concurrency, len(records)) or 1
        await asyncio.gather(*(self._work(queue) for _ in range(workers)))

    async def _work(self, queue: asyncio.Queue[tuple[int, dict[str, Any]]]) -> None:
        while not queue.empty():
            number, values = queue.get_nowait()
            if self.context.cancelled():
                self.outcomes.failed(
                    number, "not_sent", "not sent: the batch was cancelled before this record"
                )
                continue
            await self._send(number, values)

    async def _send(self, number: int, values: dict[str, Any]) -> None:
        body = json.dumps(values, default=_json_value, ensure_ascii=False).encode()
        headers = {
            "Idempotency-Key": self.context.idempotency_key(number),
            "Content-Type": "application/json",
        }
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=_wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=lambda state: self._note_retry(number, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(number, body, headers)
        except _Retryable as gave_up:
            self.outcomes.failed(number, gave_up.code, gave_up.message)
        except AddressNotAllowed as refused:
            self.outcomes.failed(
                number, "address_not_allowed", f"{refused.address} is not a public address"
            )

    async def _attempt(self, number: int, body: bytes, headers: dict[str, str]) -> None:
        request = self.client.build_request(
            self.settings.method, self.settings.url, content=body, headers=headers
        )
        try:
            async with self.limits.request():
                response = await self.client.send(request, stream=True)
                try:
                    content = await _read_capped(response)
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            raise _Retryable(
                "http_timeout", f"no answer within {self.settings.timeout:g} s"
            ) from None
        except httpx.TransportError as error:
            raise _Retryable("http_connection_error", f"could not connect: {error}") from None
        status = response.status_code
        if 200 <= status < 300:
            self.outcomes.succeeded(number, _output(response, content))
            return
        message = content.decode("utf-8", "replace")[:_MESSAGE_CHARS] or response.reason_phrase
        if status == 429 or status >= 500:
            raise _Retryable(f"http_{status}", message, _retry_after(response))
        self.outcomes.failed(number, f"http_{status}", message)

    def _note_retry(self, number: int, state: RetryCallState) -> None:
        self.retried += 1
        error = state.outcome.exception() if state.outcome else None
        why = error.code if isinstance(error, _Retryable) else "error"
        pause = state.next_action.sleep if state.next_action else 0.0
        self.context.log(
            f"record {number}: {why} on attempt {state.attempt_number} of "
            f"{self.settings.max_attempts}, retrying in {pause:.1f} s",
            LogLevel.WARNING,
        )


def _wait(state: RetryCallState) -> float:
    """Doubling backoff, or the server's Retry-After when it asks for longer."""
    backoff = min(_FIRST_BACKOFF * 2 ** (state.attempt_number - 1), _MAX_BACKOFF)
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _Retryable) and error.retry_after is not None:
        return float(max(backoff, min(error.retry_after, _MAX_RETRY_AFTER)))
    return float(backoff)


async def _read_capped(response: httpx.Response) -> bytes:
    """The body's first MAX_OUTPUT_BYTES; the rest is not read."""
    kept = bytearray()
    async for block in response.aiter_bytes():
        kept += block
        if len(kept) >= MAX_OUTPUT_BYTES:
            break
    return bytes(kept[:MAX_OUTPUT_BYTES])


def _output(response: httpx.Response, content: bytes) -> Any:
    """The answer as a record's output: JSON when it is JSON, else text (None when empty)."""
    if not content:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(content)
        except ValueError:
            pass
    return content.decode("utf-8", "replace")


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (either form), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_value(value: Any) -> Any:
    """Column values JSON has no type for: exact decimals and ids as text, times in ISO 8601."""
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
