"""Webhooks: a signed POST to a batch's ``notify_url`` once it reaches a terminal status.

Delivery runs beside the pipeline, never inside it: the pipeline only ends batches, and a
dispatcher in every ``batchyard serve`` process picks terminal batches from the outbox (see
store/webhooks.py), signs the batch with its owner's webhook secret, retries with exponential
backoff (tenacity) and writes every attempt to the batch log.

Deliveries go through the address guard (pipeline/http_guard.py): a receiver on a private
address is refused when the batch is created if its URL spells the address, else on connect.
Each attempt has one deadline for all of it (connect, send, the answer's headers), and holds a
delivery slot only while it runs, one user's webhooks at most half of them, so slow or silent
receivers cannot starve anybody else's.

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

from batchyard import metrics
from batchyard.domain.batches import Batch, LogLevel, now
from batchyard.domain.errors import BatchNotFound, InvalidNotifyUrl
from batchyard.pipeline.addresses import AddressNotAllowed, Reach
from batchyard.pipeline.http_guard import guarded_client, reach_of
from batchyard.service.container import Services
from batchyard.service.users import derive_webhook_secret
from batchyard.store import batches as batch_rows
from batchyard.store import users as user_rows
from batchyard.store import webhooks as outbox

logger = logging.getLogger("batchyard.webhooks")
SIGNATURE_HEADER = "Batchyard-Signature"
#: How often the dispatcher looks for batches that just ended when no transition woke it: a
#: transition committed in this process, or announced to it (store.changes), wakes it at once,
#: so this only bounds a batch whose end this process did not hear of (and a lapsed lease).
POLL_SECONDS = 5.0
#: How long shutting down waits for a poll under way before cancelling it.
STOP_SECONDS = 5.0
#: Attempts in flight at once per process (a delivery waiting for its retry holds none).
CONCURRENT_DELIVERIES = 8
#: Of those, the most one user's webhooks may hold: slow receivers of one user leave the rest
#: of the slots to everybody else.
DELIVERIES_PER_OWNER = 4
#: Deliveries one process has claimed at once, running or waiting for a retry.
CLAIMED_DELIVERIES = 64
#: Per read and connect; the whole attempt is bounded by Settings.webhook_timeout.
_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: A claimed delivery belongs to its dispatcher this long; then another may take it over.
LEASE_SECONDS = 600.0


class DeliveryFailed(Exception):
    """One attempt did not get a 2xx answer; the message says what happened instead."""


def validate_notify_url(url: str, reach: Reach) -> None:
    """Cheap check at batch-create time (no network): an http(s) URL whose host does not spell
    a private address; a host name is checked again on every connection."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidNotifyUrl(
            "notify_url must be an http:// or https:// URL with a host",
            details={"notify_url": url[:200]},
        )
    try:
        reach.check_literal(parts.hostname)
    except AddressNotAllowed as refused:
        raise InvalidNotifyUrl(
            f"notify_url names {refused.address}, which is not a public address; "
            "this server does not deliver webhooks to private networks",
            details={"notify_url": _shown(url), "address": str(refused.address)},
        ) from None


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
        "operation": str(batch.operation),
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


class DeliverySlots:
    """How many attempts run at once: ``total`` in all, at most ``per_owner`` for one user."""

    def __init__(self, total: int, per_owner: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_owner = per_owner
        self._owners: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, owner: str) -> AsyncIterator[None]:
        own, users = self._owners.get(owner, (asyncio.Semaphore(self._per_owner), 0))
        self._owners[owner] = (own, users + 1)
        try:
            async with own, self._total:
                yield
        finally:
            own, users = self._owners[owner]
            if users == 1:
                del self._owners[owner]
            else:
                self._owners[owner] = (own, users - 1)


class Deliverer:
    """Delivers one batch's webhook: every attempt logged, retried with exponential backoff."""

    def __init__(self, svc: Services, http: httpx.AsyncClient, slots: DeliverySlots) -> None:
        self.svc = svc
        self.http = http
        self.slots = slots

    async def deliver(self, batch: Batch) -> None:
        url = batch.notify_url or ""
        settings = self.svc.settings
        async with self.svc.store.read() as conn:
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
                    number = attempt.retry_state.attempt_number
                    async with self.slots.hold(batch.owner_id):
                        await self._attempt(batch, url, secret, body, number)
        except DeliveryFailed:
            await self._give_up(batch.id, url, f"after {settings.webhook_attempts} attempts")
            return
        except AddressNotAllowed as refused:
            await self._give_up(batch.id, url, f"at once: {refused}")
            return
        await self._finish(batch.id, outbox.DELIVERED)

    async def _attempt(self, batch: Batch, url: str, secret: str, body: bytes, number: int) -> None:
        shown = f"Webhook to {_shown(url)} (attempt {number}/{self.svc.settings.webhook_attempts})"
        try:
            status = await self._post(batch, url, secret, body)
        except AddressNotAllowed as refused:
            await self._log(batch.id, LogLevel.WARNING, f"{shown} refused: {refused}")
            raise
        except Exception as error:  # network, DNS, TLS, the deadline: all worth another attempt
            reason = str(error) or type(error).__name__
            await self._log(batch.id, LogLevel.WARNING, f"{shown} failed: {reason}")
            raise DeliveryFailed(reason) from error
        if not 200 <= status < 300:
            await self._log(batch.id, LogLevel.WARNING, f"{shown}: HTTP {status}")
            raise DeliveryFailed(f"HTTP {status}")
        await self._log(batch.id, LogLevel.INFO, f"{shown} delivered: HTTP {status}")

    async def _post(self, batch: Batch, url: str, secret: str, body: bytes) -> int:
        """One POST within the attempt's deadline; the answer's body is never read."""
        deadline = self.svc.settings.webhook_timeout
        stamp = int(time.time())
        request = self.http.build_request(
            "POST",
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, stamp, body),
                "Batchyard-Batch": batch.id,
            },
        )
        try:
            async with asyncio.timeout(deadline):
                response = await self.http.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {deadline:g} s") from None
        return response.status_code

    async def _give_up(self, batch_id: str, url: str, why: str) -> None:
        await self._log(batch_id, LogLevel.ERROR, f"Webhook to {_shown(url)} given up {why}")
        await self._finish(batch_id, outbox.FAILED)

    async def _log(self, batch_id: str, level: LogLevel, message: str) -> None:
        async with self.svc.store.begin(writes_batch=batch_id) as conn:
            await batch_rows.append_log(conn, batch_id, level, message)
        self.svc.events.notify(batch_id)

    async def _finish(self, batch_id: str, state: str) -> None:
        """Record the outcome: bookkeeping no status read shows (see ``_dispatch_due``)."""
        async with self.svc.store.begin(writes=False) as conn:
            await outbox.finish(conn, batch_id, state)
        metrics.WEBHOOKS.labels(outcome=state).inc()


class WebhookDispatcher:
    """Polls the outbox and delivers due webhooks as background tasks, a few at a time."""

    def __init__(self, svc: Services, http: httpx.AsyncClient) -> None:
        slots = DeliverySlots(CONCURRENT_DELIVERIES, DELIVERIES_PER_OWNER)
        self.deliverer = Deliverer(svc, http, slots)
        self.svc = svc
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        #: Set by a transition heard in this process: a batch may have ended, poll now.
        self._woken = asyncio.Event()

    async def run(self) -> None:
        """Poll until ``finish`` is called; a poll under way completes first.

        Stopping between polls, not by cancelling one: a poll cancelled inside its database
        read can leave that pooled connection checked out when the store closes.
        """
        with self.svc.store.changes.listening_to_all(self._woken.set):
            while not self._stopping.is_set():
                self._woken.clear()
                try:
                    await self._dispatch_due()
                except Exception:
                    logger.exception("webhook dispatch failed; retrying")
                await self._sleep()

    async def _sleep(self) -> None:
        """Until a transition is heard, ``finish`` is called or POLL_SECONDS have passed."""
        waits = {
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self._woken.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def finish(self) -> None:
        """Ask ``run`` to return after the poll under way, if any."""
        self._stopping.set()

    async def _dispatch_due(self) -> None:
        free = CLAIMED_DELIVERIES - len(self._tasks)
        if free <= 0:
            return
        ts = now()
        # Looked for first with a read: polling an empty outbox twice a second takes no write
        # transaction (on SQLite, the database-wide write lock).
        async with self.svc.store.read() as conn:
            if not await outbox.any_due(conn, now=ts):
                return
        # The lease is bookkeeping no status read shows: claiming forgets nothing remembered
        # (before, every batch's end made every polling client wait for the database, twice).
        async with self.svc.store.begin(writes=False) as conn:
            due = await outbox.claim_due(conn, now=ts, lease_until=ts + LEASE_SECONDS, limit=free)
        for batch in due:
            task = asyncio.create_task(self._deliver(batch), name=f"batchyard:webhook:{batch.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: Batch) -> None:
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
    headers = {"User-Agent": "batchyard-webhooks"}
    async with guarded_client(reach_of(svc.settings), timeout=_TIMEOUT, headers=headers) as http:
        dispatcher = WebhookDispatcher(svc, http)
        loop = asyncio.create_task(dispatcher.run(), name="batchyard:webhooks")
        try:
            yield dispatcher
        finally:
            dispatcher.finish()
            with contextlib.suppress(TimeoutError):  # a poll stuck on the database is cancelled
                await asyncio.wait_for(loop, STOP_SECONDS)
            await dispatcher.stop()
