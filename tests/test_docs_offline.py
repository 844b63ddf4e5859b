"""``/docs`` works offline: the page and everything it loads come from the server itself."""

from __future__ import annotations

import re

import httpx

from batchyard.api.app import create_app
from batchyard.settings import Settings

#: Where a page loads something from: src/href attributes and url(...) in the page.
REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


async def test_docs_reference_no_host_but_the_server(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        references = [a or b for a, b in REFERENCE.findall(page.text)]
        assert len(references) >= 3, page.text  # script, stylesheet, OpenAPI document
        assert not re.search(r"https?://|//[a-z]", page.text), page.text
        for reference in references:
            loaded = await client.get(reference)
            assert loaded.status_code == 200, reference
        assert (await client.get("/redoc")).status_code == 404  # would load from a CDN
