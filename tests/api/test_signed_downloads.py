"""Signed download URLs: usable without a token until they expire; any alteration is a 403."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.settings import Settings
from support.accounts import Accounts, open_accounts


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        assert (await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await accounts.add_user("alice", "member")
        yield accounts


async def completed(acc: Accounts, who: str) -> str:
    batch_id = str((await acc.upload(who))["batch"])
    assert (await acc.finished(who, batch_id))["status"] == "completed"
    return batch_id


async def signed(acc: Accounts, who: str, batch_id: str) -> dict[str, object]:
    response = await acc.call(who, "GET", f"/batches/{batch_id}", params={"download": "true"})
    assert response.status_code == 200
    download = response.json()["download"]
    assert download is not None
    return dict(download)


def path_and_query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def fetch(acc: Accounts, path: str, query: dict[str, str]) -> tuple[int, str]:
    response = await acc.call("none", "GET", f"{path}?{urlencode(query)}")
    code = response.json()["error"]["code"] if response.status_code >= 400 else ""
    return response.status_code, code


def test_download_ttl_defaults_to_an_hour() -> None:
    assert Settings.model_fields["download_ttl"].default == 3600


async def test_signed_urls_work_without_a_token_until_they_expire(
    acc: Accounts, settings: Settings
) -> None:
    batch_id = await completed(acc, "alice")
    before = time.time()
    download = await signed(acc, "alice", batch_id)
    assert (
        before + settings.download_ttl - 5 <= float(download["validity_ts"]) <= time.time() + 3600
    )
    for key in ("url", "failed_records_url"):
        path, query = path_and_query(str(download[key]))
        response = await acc.call("none", "GET", f"{path}?{urlencode(query)}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")


async def test_altered_or_expired_links_are_refused(acc: Accounts) -> None:
    batch_id = await completed(acc, "alice")
    other_id = await completed(acc, "admin")
    path, query = path_and_query(str((await signed(acc, "alice", batch_id))["url"]))

    flipped = query["signature"][:-1] + ("A" if query["signature"][-1] != "A" else "B")
    assert await fetch(acc, path, {**query, "signature": flipped}) == (403, "invalid_signature")
    later = str(int(query["expires"]) + 3600)
    assert await fetch(acc, path, {**query, "expires": later}) == (403, "invalid_signature")
    failed_path = path.replace("/results", "/failed-records")
    assert await fetch(acc, failed_path, query) == (403, "invalid_signature")
    other_path = path.replace(batch_id, other_id)
    assert await fetch(acc, other_path, query) == (403, "invalid_signature")

    svc = acc.services
    past = int(time.time()) - 10
    stale = dict(path_and_query("/?" + svc.signer.sign("GET", path, batch_id, past))[1])
    status, code = await fetch(acc, path, stale)
    assert (status, code) == (403, "invalid_signature")
    response = await acc.call("none", "GET", f"{path}?{urlencode(stale)}")
    assert "expired" in response.json()["error"]["message"]


async def test_other_users_get_no_link(acc: Accounts) -> None:
    await acc.add_user("bob", "member")
    batch_id = await completed(acc, "alice")
    response = await acc.call("bob", "GET", f"/batches/{batch_id}", params={"download": "true"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "batch_not_found"


async def test_signatures_are_compared_in_constant_time(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = await completed(acc, "alice")
    path, query = path_and_query(str((await signed(acc, "alice", batch_id))["url"]))
    compared: list[bytes] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await fetch(acc, path, query))[0] == 200
    assert query["signature"].encode() in compared
