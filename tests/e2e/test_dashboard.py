"""The dashboard in a real browser against the real server, with every other host blocked."""

from __future__ import annotations

import csv
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv
from playwright.sync_api import Locator, Page, Request, expect

from support.browser import offline_context
from support.servers import ADMIN_TOKEN, BatchyardServer, FileServer

LONG = 120_000  # ms: generous under a loaded CI machine


@pytest.fixture
def server(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    env = {"BATCHYARD_CHUNK_BYTES": str(1 * 2**20)}
    if backend == "postgresql":
        pg_url = str(request.getfixturevalue("pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    running = BatchyardServer(tmp_path / "data", env=env).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(server: BatchyardServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        assert client.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        yield client


def sign_in(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=%2F$"))
    page.get_by_label("Token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Batches")).to_be_visible()
    expect(page.locator("#who")).to_have_text("admin · admin")
    assert ADMIN_TOKEN not in page.url


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def test_upload_follow_completion_detail_and_download(http, offline, tmp_path):
    page = offline.context.new_page()
    sign_in(page)
    orders = tmp_path / "orders.csv"
    expected = write_orders_csv(orders, 120_000, bad_every=100)

    nav(page, "Import").click()
    page.get_by_label("Dataset").select_option("orders")
    page.locator("#file").set_input_files(orders)
    expect(page.locator("#file-name")).to_contain_text("orders.csv")
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
    page.get_by_role("button", name="Start import").click()

    upload = page.locator("#upload-progress")
    expect(upload).to_have_attribute("aria-valuenow", "100", timeout=LONG)
    expect(page.locator("#run-status")).to_have_text("completed", timeout=LONG)
    expect(page.locator("#run-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#run-text")).to_contain_text(f"{expected.rows:,} of {expected.rows:,}")
    assert page.evaluate("window.sameDocument") is True
    page.screenshot(path=tmp_path / "import-completed.png", full_page=True)

    page.get_by_role("link", name="Open the batch").click()
    expect(page.locator("#b-status")).to_have_text("completed")
    timeline = page.locator("#timeline li .step-status")
    expect(timeline.first).to_have_text("new")
    expect(timeline.last).to_have_text("completed")
    assert {"copying", "validating", "processing", "writing results"} <= set(
        timeline.all_inner_texts()
    )
    expect(page.locator("#b-failed")).to_have_text(f"{len(expected.bad):,}")
    expect(page.locator("#chart-svg polyline")).to_have_count(1)
    expect(page.locator("#invalid-rows tr").first).to_contain_text("100")
    expect(page.locator("#invalid-rows")).to_contain_text("pattern_mismatch")
    expect(page.locator("#log")).to_contain_text("Finished. Inserted")
    page.screenshot(path=tmp_path / "batch-detail.png", full_page=True)

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download results").click()
    with open(downloading.value.path(), newline="") as results:
        rows = list(csv.DictReader(results))
    assert len(rows) == expected.rows
    assert sum(r["outcome"] == "failed" for r in rows) == len(expected.bad)

    nav(page, "Batches").click()
    row = page.locator("#batch-rows tr").first
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    # Only the admin's batch so far: the column is there because an admin sees everyone's.
    expect(page.get_by_role("columnheader", name="Owner")).to_be_visible()
    expect(row.locator(".owner")).to_have_text("admin")
    page.screenshot(path=tmp_path / "batch-list.png", full_page=True)

    member = http.post("/users", json={"name": "alice", "role": "member"})
    alice = {"Authorization": f"Bearer {member.json()['token']['token']}"}
    alices = http.post("/batches", params={"dataset": "orders"}, content=b"id\n1\n", headers=alice)
    assert alices.status_code == 202, alices.text
    page.reload()
    alice_row = page.locator(f'#batch-rows tr[data-batch="{alices.json()["batch"]}"]')
    expect(alice_row.locator(".owner")).to_have_text("alice")
    expect(page.locator("#batch-rows tr").last.locator(".owner")).to_have_text("admin")
    page.get_by_label("Owner").fill("alice")
    page.get_by_label("Owner").press("Enter")
    expect(page).to_have_url(re.compile(r"/\?owner=alice$"))
    expect(page.locator("#batch-rows tr")).to_have_count(1)
    expect(page.locator("#batch-rows tr .owner")).to_have_text("alice")
    page.get_by_label("Owner").fill("")
    page.get_by_label("Owner").press("Enter")
    expect(page.locator("#batch-rows tr")).to_have_count(2)
    page.get_by_label("Status").select_option("cancelled")
    expect(page.locator("#empty")).to_contain_text("No batches match")
    expect(page).to_have_url(re.compile(r"/\?status=cancelled$"))

    nav(page, "Datasets").click()
    expect(page.locator(".row-count")).to_have_text(f"{expected.good:,}")
    page.screenshot(path=tmp_path / "datasets.png", full_page=True)


class _Gate:
    """A CSV source that trickles rows until released, so a cancel lands while it is copied."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.started = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Trickle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.end_headers()
                self.wfile.write(b"id,email,amount,status,ts,user_id\n")
                gate.started.set()
                deadline = time.monotonic() + 120
                row = 0
                while not gate.released.wait(0.2) and time.monotonic() < deadline:
                    row += 1
                    line = f"{row},u{row}@example.com,1.00,new,2024-01-01T00:00:00,"
                    line += f"00000000-0000-0000-0000-{row:012d}\n"
                    self.wfile.write(line.encode())
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Trickle


@pytest.fixture
def slow_source() -> Iterator[tuple[str, _Gate]]:
    gate = _Gate()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), gate.handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/orders.csv", gate
    finally:
        gate.released.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cancel_mid_way_then_delete(server, http, offline, slow_source, tmp_path):
    url, gate = slow_source
    created = http.post("/batches", json={"dataset": "orders", "sources": [url]})
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch"]
    assert gate.started.wait(60)

    page = offline.context.new_page()
    sign_in(page)
    page.locator(f'#batch-rows a[href="/ui/batches/{batch_id}"]').click()
    expect(page.locator("#b-status")).to_have_text("copying")
    page.get_by_role("button", name="Cancel batch").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.screenshot(path=tmp_path / "cancel-confirm.png")
    dialog.get_by_role("button", name="Cancel batch").click()
    expect(page.locator("#b-status")).to_have_text(re.compile(r"^(cancel|cancelling|cancelled)$"))
    gate.released.set()

    expect(page.locator("#b-status")).to_have_text("cancelled", timeout=LONG)
    expect(page.locator("#timeline")).to_contain_text("cancel")
    expect(page.get_by_role("button", name="Cancel batch")).to_be_disabled()
    page.screenshot(path=tmp_path / "batch-cancelled.png", full_page=True)
    assert http.get(f"/batches/{batch_id}").json()["status"] == "cancelled"

    page.get_by_role("button", name="Delete batch").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete batch").click()
    expect(page.locator("#notice")).to_contain_text("being deleted")
    expect(page).to_have_url(f"{server.url}/")
    gone = page.locator(f'#batch-rows a[href="/ui/batches/{batch_id}"]')
    expect(gone).to_have_count(0, timeout=LONG)
    assert http.get(f"/batches/{batch_id}").status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_phone_sign_in_drop_a_file_and_refused_token(browser, server, http, tmp_path):
    with offline_context(
        browser, server.url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ) as phone:
        page = phone.context.new_page()
        page.goto("/ui/import")
        page.get_by_label("Token").fill("by_not-a-real-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#token-error")).to_contain_text("not valid")
        page.screenshot(path=tmp_path / "phone-sign-in-refused.png")
        page.get_by_label("Token").fill(ADMIN_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="New import")).to_be_visible()

        page.get_by_label("Dataset").select_option("orders")
        body = "id,email,amount,status,ts,user_id\n"
        body += (
            "1,a@example.com,2.50,paid,2024-02-01T10:00:00,00000000-0000-0000-0000-000000000001\n"
        )
        body += (
            "2,not-an-email,2.50,paid,2024-02-01T10:00:00,00000000-0000-0000-0000-000000000002\n"
        )
        transfer = page.evaluate_handle(
            "text => { const t = new DataTransfer();"
            " t.items.add(new File([text], 'dropped.csv', {type: 'text/csv'})); return t; }",
            body,
        )
        page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
        expect(page.locator("#file-name")).to_contain_text("dropped.csv")
        page.get_by_role("button", name="Start import").click()
        expect(page.locator("#run-status")).to_have_text("completed", timeout=LONG)
        expect(page.locator("#run-text")).to_contain_text("1 failed")
        page.screenshot(path=tmp_path / "phone-import.png", full_page=True)

        nav(page, "Batches").click()
        expect(page.locator("#batch-rows tr")).to_have_count(1)
        page.screenshot(path=tmp_path / "phone-batches.png", full_page=True)
        assert stored_token(page) == ADMIN_TOKEN
        assert phone.blocked == []


def stored_token(page: Page) -> str:
    return str(page.evaluate("sessionStorage.getItem('batchyard.token')"))


def shift_ids(path: Path, by: int) -> None:
    """Renumber a generated orders file's ids so it can follow another in the same dataset."""
    header, *rows = path.read_text().splitlines()
    shifted = [f"{int(row.split(',', 1)[0]) + by},{row.split(',', 1)[1]}" for row in rows]
    path.write_text("\n".join([header, *shifted]) + "\n")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_import_from_urls_checked_then_followed_live(http, offline, tmp_path):
    # BatchyardServer starts `batchyard serve` with BATCHYARD_ALLOW_PRIVATE_SOURCES=true, so the
    # 127.0.0.1 file server below is an allowed source.
    served = tmp_path / "served"
    served.mkdir()
    first = write_orders_csv(served / "part1.csv", 2_000, bad_every=100)
    second = write_orders_csv(served / "part2.csv", 3_000, bad_every=0)
    shift_ids(served / "part2.csv", first.rows)
    digest = hashlib.sha256((served / "part2.csv").read_bytes()).hexdigest()
    total = first.rows + second.rows

    page = offline.context.new_page()
    creates: list[Request] = []
    page.on("request", lambda r: creates.append(r) if r.method == "POST" else None)
    sign_in(page)
    nav(page, "Import").click()
    page.get_by_label("Dataset").select_option("orders")
    page.get_by_role("radio", name="Upload a file").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="From URLs")).to_be_checked()
    expect(page.locator("#dropzone")).to_be_hidden()
    urls = page.get_by_label("Source URLs")
    start = page.get_by_role("button", name="Start import")
    error = page.locator("#form-error")

    start.click()
    expect(error).to_have_text("Enter at least one URL, one per line.")
    urls.fill("https://example.com/orders.csv\nftp://x")
    start.click()
    expect(error).to_have_text("Line 2: “ftp://x” is not an http://, https:// or s3:// URL.")
    expect(urls).to_have_attribute("aria-invalid", "true")
    urls.fill(f"\nhttps://example.com/part2.csv {digest[:40]}")
    start.click()
    expect(error).to_have_text(f"Line 2: the SHA-256 “{digest[:40]}” is not 64 hexadecimal digits.")
    expect(page.locator("#run")).to_be_hidden()
    assert creates == []
    assert http.get("/batches").json()["batches"] == []

    urls.fill("s3://elsewhere/orders.csv")
    start.click()
    expect(error).to_contain_text("The server refused these sources: s3:// sources are not enabled")
    expect(page.locator("#run")).to_be_hidden()
    assert http.get("/batches").json()["batches"] == []
    page.screenshot(path=tmp_path / "urls-refused.png", full_page=True)

    with FileServer(served) as files:
        urls.fill(f"{files.url}/part1.csv\n\n  {files.url}/part2.csv   {digest.upper()}  ")
        page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
        start.click()
        expect(page.locator("#run-title")).to_have_text("Import of 2 URLs into orders")
        expect(page.locator("#run-status")).to_have_text("completed", timeout=LONG)
    expect(page.locator("#run-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#run-text")).to_have_text(
        f"completed: {total:,} of {total:,} records processed, {len(first.bad):,} failed"
    )
    expect(page.locator("#upload-label")).to_have_text("Copy")
    expect(page.locator("#upload-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#upload-text")).to_have_text("2 sources copied and stored.")
    assert page.evaluate("window.sameDocument") is True
    page.screenshot(path=tmp_path / "urls-completed.png", full_page=True)

    (batch,) = http.get("/batches").json()["batches"]
    assert batch["sources"] == [
        {"url": f"{files.url}/part1.csv", "sha256": None},
        {"url": f"{files.url}/part2.csv", "sha256": digest},
    ]
    link = page.get_by_role("link", name="Open the batch")
    expect(link).to_have_attribute("href", f"/ui/batches/{batch['batch']}")
    link.click()
    expect(page.locator("#b-status")).to_have_text("completed")
    expect(page.locator("#b-failed")).to_have_text(f"{len(first.bad):,}")
    assert http.get("/datasets/orders").json()["row_count"] == first.good + second.rows


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_refused_batch_offers_its_files_and_a_retry(server, http, offline, tmp_path):
    body = b"id,email,amount,status,ts,user_id\n1,a@x.io,1.00,new,,\n2,bad,2.00,paid,,\n"
    created = http.post(
        "/batches",
        params={"dataset": "orders", "options": '{"max_errors": 0}'},
        content=body,
    )
    batch_id = created.json()["batch"]
    page = offline.context.new_page()
    sign_in(page)
    page.goto(f"/ui/batches/{batch_id}")
    expect(page.locator("#b-status")).to_have_text("validation failed", timeout=LONG)
    results = page.locator("#download-results")
    expect(results).not_to_have_attribute("aria-disabled", "true")
    with page.expect_download() as download:
        page.locator("#download-failed").click()
    rows = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["error"].startswith("not_processed")
    expect(page.locator("#invalid-rows tr")).to_have_count(1)  # the failed one, not record 1
    expect(page.locator("#invalid-rows")).to_contain_text("pattern_mismatch")

    page.get_by_role("button", name="Retry failed records").click()
    page.get_by_role("dialog").get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(re.compile(batch_id), timeout=LONG)
    expect(page.locator("#b-lineage")).to_contain_text(f"retry of {batch_id[:8]}")
    expect(page.locator("#b-status")).to_have_text("validation failed", timeout=LONG)
    page.screenshot(path=tmp_path / "retry.png", full_page=True)


def test_a_dry_run_from_the_import_page_writes_nothing(http, offline, tmp_path):
    page = offline.context.new_page()
    sign_in(page)
    orders = tmp_path / "orders.csv"
    expected = write_orders_csv(orders, 2_000, bad_every=100)

    nav(page, "Import").click()
    page.get_by_label("Dataset").select_option("orders")
    page.locator("#file").set_input_files(orders)
    page.get_by_label("Dry run").check()
    page.get_by_role("button", name="Start import").click()

    expect(page.locator("#run-status")).to_have_text("completed", timeout=LONG)
    expect(page.locator("#run-text")).to_contain_text("Dry run, nothing is written")
    expect(page.locator("#run-text")).to_contain_text(f"{len(expected.bad):,} failed")
    assert http.get("/datasets/orders").json()["row_count"] == 0
    batches = http.get("/batches").json()["batches"]
    assert [(b["dry_run"], b["options"]["dry_run"]) for b in batches] == [(True, True)]
    assert batches[0]["successful_operations"] == expected.rows - len(expected.bad)

    page.get_by_role("link", name="Open the batch").click()
    expect(page.locator("#b-lineage")).to_contain_text("dry run: nothing was written")
