"""The dashboard's datasets page shows how a dataset reads its input: each column's input field
(``from``), its default, and the dataset's null markers (in a real browser, offline)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from support.servers import ADMIN_TOKEN

LONG = 120_000  # ms: generous under a loaded CI machine
CONTACTS = {
    "name": "contacts",
    "primary_key": ["id"],
    "null_markers": ["", "NA"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False, "from": "Contact ID"},
        {"name": "phone", "type": "string", "from": "Contact Phone Number"},
        {"name": "country", "type": "string", "default": "NL"},
    ],
}


@pytest.fixture(autouse=True)
def contacts(http: httpx.Client) -> None:
    """The dataset the pages show, on conftest's ``server`` before any page loads."""
    assert http.post("/datasets", json=CONTACTS).status_code == 201


def test_the_datasets_page_shows_input_fields_defaults_and_null_markers(offline, tmp_path):
    page = offline.context.new_page()
    page.set_default_timeout(LONG)
    page.goto("/ui/datasets")
    expect(page).to_have_url(re.compile(r"/ui/sign-in"))
    page.get_by_label("Token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    card = page.locator("section.dataset", has_text="contacts")
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("read from Contact ID")
    expect(rows.nth(1)).to_contain_text("read from Contact Phone Number")
    expect(rows.nth(2)).to_contain_text('default "NL"')
    expect(rows.nth(2)).not_to_contain_text("read from")
    expect(card).to_contain_text('null: "", "NA"')
    page.screenshot(path=tmp_path / "datasets.png", full_page=True)
