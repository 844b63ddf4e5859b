"""The http operation from the places users are: the CLI (--operation, --set, operations list,
results --jsonl) and the SDK (operation_options, list_operations, JSON Lines results)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchyard import Client
from support.operation_receiver import OperationReceiver, answer_for
from support.servers import ADMIN_TOKEN, BatchyardServer

BATCHYARD = shutil.which("batchyard", path=str(Path(sys.executable).parent)) or "batchyard"
ITEMS = {
    "name": "items",
    "columns": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BatchyardServer]:
    running = BatchyardServer(tmp_path / "data").start()
    try:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(ITEMS)
        yield running
    finally:
        running.stop()


def cli(server: BatchyardServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env |= {"BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return subprocess.run(
        [BATCHYARD, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def flaky_third(record_id: int) -> tuple[str, float | None]:
    return ("flaky", 1) if record_id % 3 == 0 else ("ok", None)


def test_cli_runs_an_http_batch(server: BatchyardServer, tmp_path: Path) -> None:
    listed = cli(server, "operations", "list")
    assert listed.returncode == 0, listed.stderr
    assert "http" in listed.stdout and "url*" in listed.stdout
    schemas = json.loads(cli(server, "operations", "list", "--json").stdout)
    assert {op["name"] for op in schemas} >= {"insert", "upsert", "delete", "http"}

    data = tmp_path / "items.csv"
    data.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 31)))
    with OperationReceiver(flaky_third) as receiver:
        run = cli(
            server,
            "import",
            str(data),
            "--dataset",
            "items",
            "--operation",
            "http",
            "--set",
            f"url={receiver.url}",
            "--set",
            "concurrency=16",
            "--set",
            'headers={"X-Token": "s3cret-token"}',
            "--wait",
            "--json",
        )
        seen = receiver.requests()
    assert run.returncode == 0, run.stdout + run.stderr
    batch = json.loads(run.stdout)
    assert (batch["status"], batch["successful_operations"]) == ("completed", 30)
    assert batch["options"]["operation"]["concurrency"] == 16
    assert "s3cret-token" not in run.stdout + run.stderr
    assert {r.headers.get("X-Token") for r in seen} == {"s3cret-token"}
    assert len(seen) == 40  # 30 records, 10 of them sent twice

    out = tmp_path / "results.jsonl"
    got = cli(server, "results", batch["batch"], "--jsonl", "-o", str(out))
    assert got.returncode == 0, got.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["output"] for r in rows] == [
        answer_for({"id": i, "name": f"n{i}"}) for i in range(1, 31)
    ]

    wrong = cli(
        server,
        "import",
        str(data),
        "--dataset",
        "items",
        "--operation",
        "http",
        "--set",
        "concurrency=16",
    )
    assert wrong.returncode != 0
    assert "'url' is a required property" in wrong.stdout + wrong.stderr


def test_sdk_runs_an_http_batch(server: BatchyardServer) -> None:
    with Client(ADMIN_TOKEN, server.url) as client, OperationReceiver(flaky_third) as receiver:
        names = {op.name for op in client.ingest.list_operations()}
        assert "http" in names
        batch = client.ingest.create_batch(
            "items",
            file=io.BytesIO(b"id,name\n1,a\n2,b\n3,c\n"),
            format="csv",
            operation="http",
            operation_options={"url": receiver.url, "max_attempts": 2},
            options={"parallel_streams": 1},
        )
        assert batch.operation == "http"
        batch = client.ingest.wait(batch.id, timeout=60)
        assert batch.successful_operations == 3
        results = io.BytesIO()
        client.ingest.download_results(batch.id, results, format="jsonl")
    rows = [json.loads(line) for line in results.getvalue().splitlines()]
    assert [r["output"]["echo"]["name"] for r in rows] == ["a", "b", "c"]
    assert batch.options["operation"] == {"url": receiver.url, "max_attempts": 2}
