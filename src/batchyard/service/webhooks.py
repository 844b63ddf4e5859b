"""Webhooks: a signed POST to a batch's ``notify_url`` once it reaches a terminal status.

Delivery runs beside the pipeline, never inside it: the pipeline only ends batches, and a
dispatcher in every ``batchyard serve`` process picks terminal batches from the outbox (see
store/webhooks.py), signs the batch with its owner's webhook secret, retries with exponential
backoff (tenacity) and writes every attempt to the batch log.

Receivers verify ``Batchyard-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``
and should refuse old timestamps, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from batchyard.domain.batches import Batch, LogLevel, now
from batchyard.domain.errors import BatchNotFound, InvalidRequest
from batchyard.pipeline.sources import check_address  # the SSRF guard URL sources use
from batchyard.service.container import Services
from batchyard.service.users import derive_webhook_secret
from batchyard.store import batches as batch_rows
from batchyard.store import users as user_rows
from batchyard.store import webhooks as outbox

logger = logging.getLogger("batchyard.webhooks")
SIGNATURE_HEADER = "Batchyard-Signature"
#: How often the dispatcher looks for batches that just ended.
POLL_SECONDS = 0.5
#: Deliveries in flight at once per process.
CONCURRENT_DELIVERIES = 8
#: A claimed delivery belongs to its dispatcher this long; then another may take it over.
LEASE_SECONDS = 600.0


class DeliveryFailed(Exception):
    """One attempt did not get a 2xx answer; the message says what happened instead."""


def validate_notify_url(url: str) -> None:
    """Cheap check at batch-create time; the address is checked again at each delivery."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequest(
            "notify_url must be an http:// or https:// URL with a host",
            details={"notify_url": url[:200]},
        )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """What a receiver does: recompute the HMAC, compare in constant time, refuse stale stamps."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).encode()
    given = f"t={fields['t']},v1={fields.get('v1', '')}".encode()
    return hmac.compare_digest(expected, given) and abs(time.time() - timestamp) <= tolerance


def payload(batch: Batch) -> dict[str, Any]:
    """The event body: the batch's status, counts and timing, with DESIGN's field names."""
    counts = batch.counts
    return {
        "event": "batch.finished",
        "batch": batch.id,
        "dataset": batch.dataset,
        "operation": batch.operation.value,
        "status": batch.status.value,
        "created_ts": batch.created_ts,
        "updated_ts": batch.updated_ts,
        "started_ts": batch.started_ts,
        "completed_ts": batch.completed_ts,
        "total_operations": counts.total,
        "processed_operations": counts.processed,
        "successful_operations": counts.successful,
        "failed_operations": counts.failed,
        "progress_percentage": counts.progress_percentage,
        "error_message": batch.error_message,
    }


def _shown(url: str) -> str:
    """The URL as logged: no credentials, no query string (it may carry a receiver's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class Deliverer:
    """Delivers one batch's webhook: every attempt logged, retried with exponential backoff."""

    def __init__(self, svc: Services, http: httpx.AsyncClient) -> None:
        self.svc = svc
        self.http = http

    async def deliver(self, batch: Batch) -> None:
        url = batch.notify_url or ""
        settings = self.svc.settings
        async with self.svc.store.begin() as conn:
            version = await user_rows.webhook_secret_version(conn, batch.owner_id)
        secret = derive_webhook_secret(self.svc.secret, batch.owner_id, version)
        body = json.dumps(payload(batch), separators=(",", ":")).encode()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.webhook_attempts),
            wait=wait_exponential(multiplier=settings.webhook_backoff, max=300),
            retry=retry_if_exception_type(DeliveryFailed),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(
                        batch, url, secret, body, attempt.retry_state.attempt_number
                    )
        except DeliveryFailed:
            await self._log(
                batch.id,
                LogLevel.ERROR,
                f"Webhook to {_shown(url)} given up after {settings.webhook_attempts} attempts",
            )
            await self._finish(batch.id, outbox.FAILED)
            return
        await self._finish(batch.id, outbox.DELIVERED)

    async def _attempt(self, batch: Batch, url: str, secret: str, body: bytes, number: int) -> None:
        shown = f"Webhook to {_shown(url)} (attempt {number}/{self.svc.settings.webhook_attempts})"
        try:
            await check_address(url, allow_private=self.svc.settings.allow_private_sources)
            stamp = int(time.time())
            response = await self.http.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(secret, stamp, body),
                    "Batchyard-Batch": batch.id,
                },
                timeout=self.svc.settings.webhook_timeout,
                follow_redirects=False,
            )
        except Exception as error:  # network, DNS, refused address: all worth another attempt
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            await self._log(batch.id, LogLevel.WARNING, f"{shown} failed: {reason}")
            raise DeliveryFailed(reason) from error
        if not response.is_success:
            await self._log(batch.id, LogLevel.WARNING, f"{shown}: HTTP {response.status_code}")
            raise DeliveryFailed(f"HTTP {response.status_code}")
        await self._log(batch.id, LogLevel.INFO, f"{shown} delivered: HTTP {response.status_code}")

    async def _log(self, batch_id: str, level: LogLevel, message: str) -> None:
        async with self.svc.store.begin() as conn:
            await batch_rows.append_log(conn, batch_id, level, message)
        self.svc.events.notify(batch_id)

    async def _finish(self, batch_id: str, state: str) -> None:
        async with self.svc.store.begin() as conn:
            await outbox.finish(conn, batch_id, state)


class WebhookDispatcher:
    """Polls the outbox and delivers due webhooks as background tasks, a few at a time."""

    def __init__(self, svc: Services, http: httpx.AsyncClient) -> None:
        self.deliverer = Deliverer(svc, http)
        self.svc = svc
        self._slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            try:
                await self._dispatch_due()
            except Exception:
                logger.exception("webhook dispatch failed; retrying")
            await asyncio.sleep(POLL_SECONDS)

    async def _dispatch_due(self) -> None:
        free = CONCURRENT_DELIVERIES - len(self._tasks)
        if free <= 0:
            return
        ts = now()
        async with self.svc.store.begin() as conn:
            due = await outbox.claim_due(conn, now=ts, lease_until=ts + LEASE_SECONDS, limit=free)
        for batch in due:
            task = asyncio.create_task(self._deliver(batch), name=f"batchyard:webhook:{batch.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: Batch) -> None:
        async with self._slots:
            try:
                await self.deliverer.deliver(batch)
            except BatchNotFound:
                return  # deleted meanwhile: nobody to tell, nowhere to log
            except Exception:
                logger.exception("webhook for batch %s failed", batch.id)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def run_webhooks(svc: Services) -> AsyncIterator[WebhookDispatcher]:
    """Run the dispatcher for as long as the block lasts (the server's lifespan)."""
    async with httpx.AsyncClient(headers={"User-Agent": "batchyard-webhooks"}) as http:
        dispatcher = WebhookDispatcher(svc, http)
        loop = asyncio.create_task(dispatcher.run(), name="batchyard:webhooks")
        try:
            yield dispatcher
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await dispatcher.stop()
