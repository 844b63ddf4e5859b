"""notify_url webhooks: signed with the owner's secret, retried, logged, never blocking a batch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
from benchmarks.datagen import ORDERS_SCHEMA
from prometheus_client.parser import text_string_to_metric_families

from batchyard.service.webhooks import SIGNATURE_HEADER, verify
from batchyard.settings import Settings
from support.accounts import Accounts, open_accounts
from support.receiver import Receiver


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_backoff": 0.05, "webhook_attempts": 4})


@pytest.fixture
async def acc(fast_settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(fast_settings) as accounts:
        assert (await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await accounts.add_user("alice", "member")
        yield accounts


async def log_until(
    acc: Accounts, batch_id: str, done: Callable[[str], bool], within: float = 60
) -> str:
    deadline = time.monotonic() + within
    while True:
        log = (await acc.call("alice", "GET", f"/batches/{batch_id}/log")).text
        if done(log):
            return log
        if time.monotonic() > deadline:
            raise TimeoutError(f"log never got there:\n{log}")
        await asyncio.sleep(0.05)


async def webhooks_counted(acc: Accounts, outcome: str) -> float:
    """``batchyard_webhooks_total{outcome}`` as GET /metrics shows it (0 before the first)."""
    text = (await acc.call("alice", "GET", "/metrics")).text
    samples = {
        sample.labels.get("outcome"): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "batchyard_webhooks_total"
    }
    return samples.get(outcome, 0.0)


async def counted_once_more(acc: Accounts, outcome: str, before: float) -> None:
    """The delivery's outcome is recorded just after its log line: wait for it to be."""
    deadline = time.monotonic() + 30
    while await webhooks_counted(acc, outcome) < before + 1:
        assert time.monotonic() < deadline, f"no {outcome} webhook counted in /metrics"
        await asyncio.sleep(0.05)


def header(delivery_headers: dict[str, str], name: str) -> str:
    return next(v for k, v in delivery_headers.items() if k.lower() == name.lower())


async def test_terminal_batch_posts_a_signed_webhook(acc: Accounts) -> None:
    secret = (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]
    delivered = await webhooks_counted(acc, "delivered")
    with Receiver() as receiver:
        batch = await acc.upload("alice", notify_url=f"{receiver.url}/hook?key=s3cr3t")
        log = await log_until(acc, batch["batch"], lambda text: "delivered: HTTP 204" in text)
    await counted_once_more(acc, "delivered", delivered)

    [delivery] = receiver.deliveries
    assert delivery.path == "/hook?key=s3cr3t"
    signature = header(delivery.headers, SIGNATURE_HEADER)
    assert verify(secret, signature, delivery.body)
    assert not verify(secret, signature, delivery.body + b" ")
    assert not verify("whsec_other", signature, delivery.body)
    event = json.loads(delivery.body)
    assert event["batch"] == batch["batch"]
    assert event["status"] == "completed"
    assert event["successful_operations"] == 1 and event["failed_operations"] == 1
    assert "s3cr3t" not in log  # the receiver's query string stays out of the log
    assert log.count("Webhook to") == 1


@pytest.fixture
def no_timely_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher's periodic look at the outbox comes too late for any test to wait for."""
    monkeypatch.setattr("batchyard.service.webhooks.POLL_SECONDS", 3600.0)


async def test_a_batch_that_ends_wakes_the_dispatcher_at_once(
    no_timely_poll: None, acc: Accounts
) -> None:
    with Receiver() as receiver:
        batch = await acc.upload("alice", notify_url=receiver.url)
        await log_until(acc, batch["batch"], lambda text: "delivered: HTTP 204" in text, 30)
    assert len(receiver.deliveries) == 1


async def test_webhook_retries_with_backoff_until_the_receiver_answers(acc: Accounts) -> None:
    secret = (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]
    with Receiver(fail_first=2) as receiver:
        batch = await acc.upload("alice", notify_url=receiver.url)
        log = await log_until(acc, batch["batch"], lambda text: "delivered" in text)

    assert [d.status for d in receiver.deliveries] == [503, 503, 204]
    assert "(attempt 1/4): HTTP 503" in log and "(attempt 2/4): HTTP 503" in log
    assert "(attempt 3/4) delivered: HTTP 204" in log
    for delivery in receiver.deliveries:
        assert verify(secret, header(delivery.headers, SIGNATURE_HEADER), delivery.body)


async def test_webhook_gives_up_without_touching_the_batch(acc: Accounts) -> None:
    failed = await webhooks_counted(acc, "failed")
    with Receiver(fail_first=1000) as receiver:
        batch = await acc.upload("alice", notify_url=receiver.url)
        log = await log_until(acc, batch["batch"], lambda text: "given up" in text)
    await counted_once_more(acc, "failed", failed)
    assert len(receiver.deliveries) == 4
    assert "given up after 4 attempts" in log
    final = (await acc.call("alice", "GET", f"/batches/{batch['batch']}")).json()
    assert final["status"] == "completed"


async def test_rotated_secret_signs_later_deliveries(acc: Accounts) -> None:
    old = (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]
    new = (await acc.call("alice", "POST", "/me/webhook-secret")).json()["secret"]
    with Receiver() as receiver:
        batch = await acc.upload("alice", notify_url=receiver.url)
        await log_until(acc, batch["batch"], lambda text: "delivered" in text)
    [delivery] = receiver.deliveries
    signature = header(delivery.headers, SIGNATURE_HEADER)
    assert verify(new, signature, delivery.body)
    assert not verify(old, signature, delivery.body)


async def test_notify_url_must_be_http(acc: Accounts) -> None:
    response = await acc.call(
        "alice",
        "POST",
        "/batches",
        json={
            "dataset": "orders",
            "sources": ["http://127.0.0.1:9/a.csv"],
            "notify_url": "ftp://x/",
        },
    )
    assert response.status_code == 422
    assert "notify_url" in response.json()["error"]["message"]


async def test_private_receivers_are_refused_unless_allowed(settings: Settings) -> None:
    """A URL that spells a private address is refused at once; a name is checked on connect."""
    strict = settings.model_copy(
        update={"allow_private_sources": False, "webhook_backoff": 0.05, "webhook_attempts": 2}
    )
    async with open_accounts(strict) as acc:
        assert (await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await acc.add_user("alice", "member")
        with Receiver() as receiver:
            port = receiver.url.rpartition(":")[2]
            for spelled in ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "[::ffff:7f00:1]"]:
                refused = await acc.call(
                    "alice",
                    "POST",
                    "/batches",
                    params={"dataset": "orders", "notify_url": f"http://{spelled}:{port}/"},
                    content=b"id\n1\n",
                )
                assert refused.status_code == 422, (spelled, refused.text)
                assert refused.json()["error"]["code"] == "invalid_notify_url"
                assert "not a public address" in refused.json()["error"]["message"]
            batch = await acc.upload("alice", notify_url=f"http://localhost:{port}/hook")
            log = await log_until(acc, batch["batch"], lambda text: "given up" in text)
        assert receiver.deliveries == []
        assert "which is not a public address" in log
        assert log.count("Webhook to") == 2  # refused on connect, and not tried again


async def test_polling_an_empty_outbox_keeps_remembered_status_reads(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher looks for due webhooks twice a second; finding none writes nothing, so it
    must not forget every status read this process remembers (each poll made all polling
    clients wait for the database)."""
    forgets: list[str] = []
    store = acc.services.store
    monkeypatch.setattr(store.reads, "forget_all", lambda: forgets.append("all"))
    monkeypatch.setattr(store.reads, "forget_batch", lambda batch_id: forgets.append(batch_id))
    await asyncio.sleep(1.5)  # three polls of the outbox
    assert forgets == []


async def test_delivering_a_webhook_keeps_other_batches_remembered_status_reads(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claiming a delivery and recording its outcome change nothing a status read shows: they
    must not make every polling client of this process wait for the database; the log lines
    of the delivery forget their own batch only."""
    forgets: list[str | None] = []
    store = acc.services.store
    monkeypatch.setattr(store.reads, "forget_all", lambda: forgets.append(None))
    monkeypatch.setattr(
        store.reads, "forget_batch", lambda batch_id, dataset=None: forgets.append(batch_id)
    )
    delivered = await webhooks_counted(acc, "delivered")
    with Receiver() as receiver:
        batch = await acc.upload("alice", notify_url=f"{receiver.url}/hook")
        await log_until(acc, batch["batch"], lambda text: "delivered: HTTP 204" in text)
    await counted_once_more(acc, "delivered", delivered)
    assert len(receiver.deliveries) == 1
    assert set(forgets) == {batch["batch"]}  # the upload, the pipeline, the delivery's log line
