"""The dashboard's pages and files over HTTP: served without a token, locked down, no user data."""

from __future__ import annotations

import re

import httpx
import pytest

from batchyard.web.pages import CONTENT_SECURITY_POLICY

PAGES = ["/", "/ui/sign-in", "/ui/import", "/ui/datasets", "/ui/batches/0f8e5a52-1c1e-4c36-9a8c"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", PAGES)
async def test_pages_need_no_token_and_forbid_foreign_code(client: httpx.AsyncClient, path: str):
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    # every script, style and icon comes from this server; no inline script an injection could use
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<script>" not in html and '<script type="module">' not in html
    for asset in re.findall(r"(?:src|href)=\"(/ui/static/[^\"?]+)", html):
        served = await client.get(asset, headers={"Authorization": ""})
        assert served.status_code == 200, asset


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_batch_page_echoes_only_a_well_formed_id(client: httpx.AsyncClient):
    response = await client.get("/ui/batches/<script>alert(1)</script>")
    assert response.status_code in {404, 422}
    assert "<script>alert" not in response.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_pages_stay_out_of_the_api_schema(client: httpx.AsyncClient):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_static_files_are_served_with_their_types(client: httpx.AsyncClient):
    script = await client.get("/ui/static/js/api.js")
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }
    style = await client.get("/ui/static/dashboard.css")
    assert style.headers["content-type"].startswith("text/css")
