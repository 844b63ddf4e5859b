"""Signed download links point where the operator says, never where a request's Host says."""

from __future__ import annotations

from urllib.parse import urlsplit

from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.settings import Settings
from support.accounts import BASE_URL, Accounts, open_accounts


async def _links(acc: Accounts, host: str) -> list[str]:
    assert (await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
    batch_id = (await acc.upload("admin"))["batch"]
    assert (await acc.finished("admin", batch_id))["status"] == "completed"
    response = await acc.call(
        "admin", "GET", f"/batches/{batch_id}", params={"download": "true"}, headers={"Host": host}
    )
    assert response.status_code == 200, response.text
    download = response.json()["download"]
    return [download["url"], download["failed_records_url"]]


async def test_links_use_the_configured_public_url(settings: Settings) -> None:
    public = settings.model_copy(update={"public_url": "https://imports.example.com/by/"})
    async with open_accounts(public) as acc:
        for url in await _links(acc, "evil.example"):
            assert url.startswith("https://imports.example.com/by/batches/"), url
            path = urlsplit(url).path.removeprefix("/by")
            assert (await acc.call("none", "GET", f"{path}?{urlsplit(url).query}")).is_success


async def test_without_a_public_url_links_use_the_servers_own_address(settings: Settings) -> None:
    async with open_accounts(settings) as acc:
        for url in await _links(acc, "evil.example"):
            # The in-process transport's server address is the client's base URL's host.
            assert urlsplit(url).netloc == urlsplit(BASE_URL).netloc, url
            assert "evil" not in url
