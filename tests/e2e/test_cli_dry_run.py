"""``batchyard import --dry-run --wait`` as a user runs it, on each backend: the summary says
what a real run would do and that nothing was written, and the real run that follows agrees."""

from __future__ import annotations

import csv
import io
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
PEOPLE = {
    "name": "people",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "age", "type": "integer", "min": 0},
    ],
}
ROWS = 2000
#: Ids 1-10 are in the table before the dry run; these records have a negative age.
NEGATIVE = {50, 1500}


@pytest.fixture
def server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    with serve_backend(tmp_path, backend, request) as running:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(PEOPLE)
        yield running


def run(server: BatchyardServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env |= {"BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return subprocess.run(
        [BATCHYARD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def row_count(server: BatchyardServer) -> int:
    with Client(ADMIN_TOKEN, server.url) as client:
        return client.datasets.get("people").row_count


def summary_of(stdout: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in stdout.splitlines() if line.strip())


def test_import_dry_run_wait_writes_nothing_and_the_real_run_agrees(
    server: BatchyardServer, tmp_path: Path
) -> None:
    (tmp_path / "first.csv").write_text("id,age\n" + "".join(f"{n},1\n" for n in range(1, 11)))
    assert run(server, tmp_path, "import", "first.csv", "-d", "people", "--wait").returncode == 0
    lines = [f"{n},{-n if n in NEGATIVE else n % 90}" for n in range(1, ROWS + 1)]
    (tmp_path / "people.csv").write_text("id,age\n" + "\n".join(lines) + "\n")
    failed = 10 + len(NEGATIVE)

    dry = run(server, tmp_path, "import", "people.csv", "-d", "people", "--dry-run", "--wait")
    assert dry.returncode == 3, dry.stdout + dry.stderr  # completed, with failed records
    assert "dry run: nothing was written" in dry.stdout
    summary = summary_of(dry.stdout)
    assert summary["status"] == "completed" and summary["dry_run"].startswith("yes")
    assert summary["succeeded"] == f"{ROWS - failed:,}" and summary["failed"] == f"{failed}"
    assert row_count(server) == 10
    dry_id = summary["batch"]
    assert f"batchyard results {dry_id} --failed" in dry.stderr
    assert "batchyard retry" not in dry.stderr  # sent again as they were, they fail again

    real = run(server, tmp_path, "import", "people.csv", "-d", "people", "--wait")
    assert real.returncode == 3, real.stdout + real.stderr
    assert "dry run" not in real.stdout
    real_summary = summary_of(real.stdout)
    assert real_summary["succeeded"] == summary["succeeded"]
    assert row_count(server) == 10 + ROWS - failed

    def outcomes(batch_id: str) -> list[tuple[str, str, str]]:
        got = run(server, tmp_path, "results", batch_id, "-o", "-")
        assert got.returncode == 0, got.stderr
        rows = csv.DictReader(io.StringIO(got.stdout))
        return [(r["record_number"], r["outcome"], r["error_code"]) for r in rows]

    dry_outcomes = outcomes(dry_id)
    assert len(dry_outcomes) == ROWS
    assert dry_outcomes == outcomes(real_summary["batch"])
    assert {n for n, outcome, _ in dry_outcomes if outcome == "failed"} == {
        str(n) for n in [*range(1, 11), *NEGATIVE]
    }
