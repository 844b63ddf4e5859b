"""The built-in ``http`` operation: each valid record sent as JSON to one URL.

A batch's records are sent with at most ``concurrency`` requests in flight (and at most
``rate_per_second`` started per second, when set), however many streams apply its chunks in
this process (operations/http_limits.py), each with the header ``Idempotency-Key:
<batch id>:<record number>``, so a receiver can recognise a record sent again after a crash.
5xx, 429 (after its ``Retry-After``), timeouts and connection errors are retried with backoff up
to ``max_attempts``; a 4xx is the record's failure. The URL obeys the same address rules as URL
sources (pipeline/http_guard.py), checked at create time and again on every connection. Header
values are secrets: the schema marks them ``writeOnly``, so responses show them redacted, and no
log line names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pyarrow as pa

from batchyard.apply.operations import OperationContext, Outcomes, record_dicts
from batchyard.domain.batches import LogLevel
from batchyard.domain.errors import InvalidOperationSettings
from batchyard.operations.http_limits import BatchLimits, LimitsByBatch
from batchyard.operations.http_send import RecordSender, SendSettings
from batchyard.pipeline.addresses import AddressNotAllowed, Reach
from batchyard.pipeline.http_guard import guarded_client, reach_of
from batchyard.settings import Settings

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4096,
            "description": "Where each record is sent (http:// or https://).",
        },
        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"], "default": "POST"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 8192},
            "maxProperties": 32,
            "writeOnly": True,
            "description": "Extra request headers; their values are secrets, never shown.",
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 300,
            "default": 30,
            "description": "Seconds one attempt may take.",
        },
        "concurrency": {
            "type": "integer",
            "minimum": 1,
            "maximum": 256,
            "default": 8,
            "description": "Requests in flight at most, for the whole batch.",
        },
        "rate_per_second": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100000,
            "description": "Requests started per second at most, for the whole batch.",
        },
        "max_attempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 3,
            "description": "Attempts per record before it fails.",
        },
    },
}
#: Headers a user may not set: batchyard sets them itself.
_RESERVED_HEADERS = {"idempotency-key", "content-type", "content-length", "host"}


class HttpOperation:
    """Send each valid record as a JSON object to options.operation.url, one request each."""

    name = "http"
    description = (
        "Send each record as a JSON object to a URL (POST by default) with an Idempotency-Key;"
        " the response body is the record's output."
    )
    settings_schema = SETTINGS_SCHEMA
    keeps_input_order = False

    def __init__(self, reach: Reach | None = None, shared: LimitsByBatch | None = None) -> None:
        #: Where requests may go; None until bound to a server's settings.
        self.reach = reach
        #: Every batch's limits in this process, shared by all the operation's bound copies.
        self.shared = shared or LimitsByBatch()
        #: The limits of the batches this copy sends, kept while it lives (the shared ones are
        #: held only as long as someone sending the batch holds them).
        self.held: dict[str, BatchLimits] = {}

    def bind(self, settings: Settings) -> HttpOperation:
        """This operation for a server with ``settings`` (its address rules)."""
        return HttpOperation(reach_of(settings), self.shared)

    def check(self, settings: Mapping[str, Any], reach: Reach) -> None:
        """At create time, without the network: an http(s) URL not spelling a private address."""
        url = str(settings["url"])
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            parsed = httpx.URL("")
        if parsed.scheme not in {"http", "https"} or not parsed.host:
            raise _invalid("options.operation.url must be an http:// or https:// URL with a host")
        try:
            reach.check_literal(parsed.host)
        except AddressNotAllowed as refused:
            raise _invalid(
                f"options.operation.url names {refused.address}, which is not a public address"
            ) from None
        reserved = sorted(h for h in settings.get("headers", {}) if h.lower() in _RESERVED_HEADERS)
        if reserved:
            raise _invalid(f"options.operation.headers may not set {', '.join(reserved)}")

    def apply(self, records: pa.Table, context: OperationContext) -> Outcomes:
        if self.reach is None:
            raise RuntimeError("the http operation was not bound to the server's settings")
        return asyncio.run(self._send_chunk(records, context, self.reach))

    async def _send_chunk(
        self, records: pa.Table, context: OperationContext, reach: Reach
    ) -> Outcomes:
        settings = SendSettings.of(context.settings)
        limits = self.held.get(context.batch_id)
        if limits is None:
            limits = self.shared.of(
                context.batch_id, settings.concurrency, settings.rate_per_second
            )
            self.held[context.batch_id] = limits
        outcomes = Outcomes()
        timeout = httpx.Timeout(settings.timeout)
        async with guarded_client(reach, timeout=timeout, headers=settings.headers) as client:
            sender = RecordSender(client, settings, context, outcomes, limits)
            await sender.send_all(record_dicts(records))
        if sender.retried:
            context.log(
                f"chunk {context.chunk_index}: {sender.retried} retried request(s)", LogLevel.INFO
            )
        return outcomes


def _invalid(message: str) -> InvalidOperationSettings:
    return InvalidOperationSettings(message, details={"operation": "http"})
