"""Operation plugins as a user installs them: the example package in examples/media-ingest and
the plugin of docs/operations.md, each built and installed, then run by a real server."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.servers import ADMIN_TOKEN, BatchyardServer, FileServer
from support.waiting import wait_for_status_sync

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"


def doc_plugin_files(target: Path) -> None:
    """Write the files docs/operations.md shows (each fenced block after a plugin marker)."""
    text = DOC.read_text()
    blocks = re.findall(r"<!-- plugin: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    assert {name for name, _ in blocks} == {"batchyard_slugify.py", "pyproject.toml"}
    for name, body in blocks:
        (target / name).write_text(body)
    code = dict(blocks)["batchyard_slugify.py"]
    assert len(code.strip().splitlines()) <= 26, "the docs promise a plugin of about 20 lines"


def install(package: Path, site: Path) -> None:
    """Build ``package`` and install it into ``site`` (on the server's PYTHONPATH), as
    `uv pip install` does next to batchyard; its dependencies are batchyard's own."""
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            sys.executable,
            "--no-deps",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    slugify = tmp_path_factory.mktemp("batchyard-slugify")
    doc_plugin_files(slugify)
    install(slugify, site)
    install(ROOT / "examples" / "media-ingest", site)
    return site


@pytest.fixture
def http(tmp_path: Path, plugin_site: Path) -> Iterator[httpx.Client]:
    server = BatchyardServer(tmp_path / "data", env={"PYTHONPATH": str(plugin_site)}).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        ) as client:
            yield client
    finally:
        server.stop()


def run_batch(
    http: httpx.Client, dataset: str, operation: str, settings: dict[str, Any], body: str
) -> list[dict[str, Any]]:
    created = http.post(
        "/batches",
        params={
            "dataset": dataset,
            "format": "csv",
            "operation": operation,
            "options": json.dumps({"operation": settings}),
        },
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert created.status_code == 202, created.text
    batch = wait_for_status_sync(http, created.json()["batch"])
    assert batch["status"] == "completed", batch
    results = http.get(f"/batches/{batch['batch']}/results", params={"format": "jsonl"})
    return [json.loads(line) for line in results.text.splitlines()]


def test_installed_plugins_are_listed_and_run(http: httpx.Client, tmp_path: Path) -> None:
    listed = {op["name"]: op for op in http.get("/operations").json()["operations"]}
    assert listed["slugify"]["settings_schema"]["required"] == ["column"]
    assert "sha256" in listed["media_ingest"]["description"]

    # The docs' plugin.
    http.post(
        "/datasets",
        json={
            "name": "titles",
            "columns": [{"name": "id", "type": "integer"}, {"name": "title", "type": "string"}],
        },
    )
    refused = http.post("/batches?dataset=titles&operation=slugify", content=b"id,title\n1,a\n")
    assert refused.json()["error"]["code"] == "invalid_operation_settings"
    rows = run_batch(
        http,
        "titles",
        "slugify",
        {"column": "title"},
        "id,title\n1,Hello World!\n2,\n3,  Ünïcode & Co  \n",
    )
    assert [(r["outcome"], r["code"], r["output"]) for r in rows] == [
        ("succeeded", None, {"slug": "hello-world"}),
        ("failed", "empty_slug", None),
        ("succeeded", None, {"slug": "n-code-co"}),
    ]

    # The example package: fetch each media URL, keep its digest, size and type.
    media = tmp_path / "media"
    media.mkdir()
    files = {"cat.png": b"\x89PNG" + bytes(range(256)) * 40, "notes.txt": b"hello media\n"}
    for name, content in files.items():
        (media / name).write_bytes(content)
    http.post(
        "/datasets",
        json={
            "name": "media",
            "columns": [{"name": "id", "type": "integer"}, {"name": "url", "type": "string"}],
        },
    )
    with FileServer(media) as files_server:
        body = "id,url\n" + "".join(
            f"{i},{files_server.url}/{name}\n"
            for i, name in enumerate(["cat.png", "notes.txt", "missing.bin"], start=1)
        )
        rows = run_batch(http, "media", "media_ingest", {"concurrency": 2}, body)
    assert [r["outcome"] for r in rows] == ["succeeded", "succeeded", "failed"]
    for row, name in zip(rows[:2], files, strict=True):
        content = files[name]
        assert row["output"]["sha256"] == hashlib.sha256(content).hexdigest()
        assert row["output"]["size"] == len(content)
    assert rows[0]["output"]["content_type"] == "image/png"
    assert rows[1]["output"]["content_type"].startswith("text/plain")
    assert rows[2]["code"] == "http_404"
