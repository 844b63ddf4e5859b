"""The installed ``batchyard`` command reading real files' conventions: a tab-separated file with
``NA`` for missing values, and headers that are not column names (issue 17, points 4 and 5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchyard import Client
from support.backend_server import serve_backend
from support.servers import ADMIN_TOKEN, BatchyardServer

BATCHYARD = shutil.which("batchyard", path=str(Path(sys.executable).parent)) or "batchyard"
TSV = "id\trate\tlabel\n1\t2.5\tx\n2\tNA\ty\n3\t4\tNA\n"
CONTACTS = {
    "name": "contacts",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False, "from": "Contact ID"},
        {"name": "phone", "type": "string", "from": "Contact Phone Number"},
    ],
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    with serve_backend(tmp_path_factory.mktemp("cli"), "sqlite", request) as running:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(CONTACTS)
        yield running


@pytest.fixture
def env(server: BatchyardServer) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    return {**clean, "BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATCHYARD, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_tsv_with_na_is_inferred_and_imported_with_delimiter_and_null_markers(env, tmp_path):
    path = tmp_path / "rates.tsv"
    path.write_text(TSV)
    created = run(
        env, "datasets", "create", "--from-sample", str(path), "--delimiter", "tab", "--yes",
        "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    columns = {c["name"]: c["type"] for c in json.loads(created.stdout)["columns"]}
    assert columns == {"id": "integer", "rate": "float", "label": "string"}

    imported = run(
        env, "import", str(path), "--dataset", "rates", "--delimiter", "tab",
        "--null-marker", "", "--null-marker", "NA", "--wait", "--json",
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    batch = json.loads(imported.stdout)
    assert batch["options"]["delimiter"] == "\t"
    assert batch["options"]["null_markers"] == ["", "NA"]
    assert (batch["successful_operations"], batch["failed_operations"]) == (3, 0)


def test_without_the_delimiter_a_tsv_header_is_one_unknown_field(env, tmp_path):
    path = tmp_path / "rates.tsv"
    path.write_text(TSV)
    with Client(ADMIN_TOKEN, env["BATCHYARD_URL"]) as client:
        client.datasets.create(
            {"name": "plain_rates", "columns": [{"name": "id", "type": "integer"}]}
        )
    refused = run(env, "import", str(path), "--dataset", "plain_rates", "--wait")
    assert refused.returncode == 4, refused.stderr
    assert "id\\trate\\tlabel" in refused.stderr


def test_headers_map_by_from_and_by_column_flags(env, tmp_path):
    shown = run(env, "datasets", "show", "contacts")
    assert shown.returncode == 0, shown.stderr
    assert "from=Contact Phone Number" in shown.stdout

    named = tmp_path / "named.csv"
    named.write_text("Contact ID,Contact Phone Number\n1,+31 6 1\n")
    first = run(env, "import", str(named), "--dataset", "contacts", "--wait", "--json")
    assert first.returncode == 0, first.stderr

    other = tmp_path / "other.csv"
    other.write_text("ID,Mobile\n2,+31 6 2\n")
    second = run(
        env, "import", str(other), "--dataset", "contacts", "--column", "ID=id",
        "--column", "Mobile=phone", "--wait", "--json",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["options"]["columns"] == {"ID": "id", "Mobile": "phone"}
    with Client(ADMIN_TOKEN, env["BATCHYARD_URL"]) as client:
        assert client.datasets.get("contacts").row_count == 2


def test_a_delimiter_the_server_does_not_offer_is_a_usage_error(env, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Contact ID\n1\n")
    refused = run(env, "import", str(path), "--dataset", "contacts", "--delimiter", "x")
    assert refused.returncode == 2
    assert "--delimiter" in refused.stderr
