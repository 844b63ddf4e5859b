"""The dashboard with operations: the import page lists the server's operations and takes an
operation's settings; the batch page shows each record's output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from support.browser import OfflineContext
from support.operation_receiver import OperationReceiver, answer_for
from support.servers import ADMIN_TOKEN

LONG = 120_000
ITEMS = {
    "name": "items",
    "columns": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
}


@pytest.fixture(autouse=True)
def items(http: httpx.Client) -> None:
    """The dataset the pages show, on conftest's ``server`` before any page loads."""
    assert http.post("/datasets", json=ITEMS).status_code == 201


def refuse_fourth(record_id: int) -> tuple[str, float | None]:
    return ("refuse", None) if record_id == 4 else ("ok", None)


def test_import_page_runs_an_http_batch_and_the_batch_shows_outputs(
    offline: OfflineContext, tmp_path: Path
) -> None:
    data = tmp_path / "items.csv"
    data.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 6)))
    page = offline.context.new_page()
    page.goto("/")
    page.get_by_label("Token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Batches")).to_be_visible()
    page.goto("/ui/import")
    page.get_by_label("Dataset").select_option("items")
    settings = page.get_by_label("Operation settings (JSON)")
    expect(settings).to_be_hidden()
    page.get_by_label("Operation", exact=True).select_option("http")
    expect(settings).to_be_visible()
    expect(page.locator("#settings-help")).to_contain_text("url (required)")
    page.locator("#file").set_input_files(str(data))
    settings.fill("{not json")
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#form-error")).to_have_text(
        "The operation settings must be a JSON object."
    )
    with OperationReceiver(refuse_fourth) as receiver:
        settings.fill(json.dumps({"url": receiver.url, "headers": {"X-Key": "hidden-value"}}))
        page.get_by_role("button", name="Start import").click()
        expect(page.locator("#run-status")).to_have_text("completed", timeout=LONG)
    page.get_by_role("link", name="Open the batch").click()
    expect(page).to_have_url(re.compile(r"/ui/batches/"))
    outputs = page.locator("#outputs-rows tr")
    expect(outputs).to_have_count(5, timeout=LONG)
    expect(outputs.nth(0)).to_contain_text(
        json.dumps(answer_for({"id": 1, "name": "n1"}), separators=(",", ":"))
    )
    expect(outputs.nth(3)).to_contain_text("http_400")
    assert "hidden-value" not in page.content()
