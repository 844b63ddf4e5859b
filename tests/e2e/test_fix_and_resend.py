"""The fix-and-resend loop as a user runs it with the ``batchyard`` command, on each backend:
max_errors trips → failed records downloaded → values fixed → resubmitted → completed with
every record applied; and ``batchyard retry --wait``."""

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
        {"name": "email", "type": "string", "pattern": "^[^@]+@[^@]+$"},
        {"name": "age", "type": "integer", "min": 0},
    ],
}
ROWS = 3000
#: Records (1-based) with a bad value: an email without "@" or a negative age.
BAD = {17: "email", 1200: "age", 2999: "email"}


@pytest.fixture
def server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    with serve_backend(tmp_path, backend, request) as running:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(PEOPLE)
        yield running


def people_csv(path: Path) -> None:
    lines = ["id,email,age"]
    for n in range(1, ROWS + 1):
        email = f"p{n}(at)example.com" if BAD.get(n) == "email" else f"p{n}@example.com"
        age = -n if BAD.get(n) == "age" else n % 90
        lines.append(f"{n},{email},{age}")
    path.write_text("\n".join(lines) + "\n")


def run(server: BatchyardServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env |= {"BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        [BATCHYARD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def row_count(server: BatchyardServer) -> int:
    with Client(ADMIN_TOKEN, server.url) as client:
        return client.datasets.get("people").row_count


def test_max_errors_trips_then_fixed_records_are_resubmitted(
    server: BatchyardServer, tmp_path: Path
) -> None:
    people_csv(tmp_path / "people.csv")
    started = run(
        server, tmp_path, "import", "people.csv", "-d", "people", "--options", '{"max_errors": 2}'
    )
    assert started.returncode == 0, started.stderr
    batch_id = started.stdout.strip()
    waited = run(server, tmp_path, "wait", batch_id)
    assert waited.returncode == 4, waited.stdout + waited.stderr
    assert f"batchyard retry {batch_id}" in waited.stderr
    assert row_count(server) == 0

    name = f"people-{batch_id}-failed-records.csv"
    got = run(server, tmp_path, "results", batch_id, "--failed", "-o", name)
    assert got.returncode == 0, got.stderr
    records = list(csv.DictReader(io.StringIO((tmp_path / name).read_text())))
    assert len(records) == ROWS  # the invalid ones, and every one not processed
    wrong = {int(r["id"]): r["error"] for r in records if not r["error"].startswith("not_proc")}
    assert sorted(wrong) == sorted(BAD)
    assert wrong[1200].startswith("below_minimum (column age)")

    fixed = io.StringIO()
    writer = csv.DictWriter(fixed, fieldnames=["id", "email", "age", "error"], lineterminator="\n")
    writer.writeheader()
    for record in records:  # what a user does in a spreadsheet: fix the values, keep the rest
        record["email"] = record["email"].replace("(at)", "@")
        record["age"] = record["age"].lstrip("-")
        writer.writerow(record)
    (tmp_path / name).write_text(fixed.getvalue())

    resent = run(server, tmp_path, "import", name, "-d", "people", "--wait", "--json")
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert f'"resubmits":"{batch_id}"' in resent.stdout
    assert '"status":"completed"' in resent.stdout
    assert f'"successful_operations":{ROWS}' in resent.stdout
    assert row_count(server) == ROWS


def test_retry_wait_resends_what_the_target_refused_once_the_conflict_is_gone(
    server: BatchyardServer, tmp_path: Path
) -> None:
    (tmp_path / "early.csv").write_text("id,email,age\n5,early@example.com,1\n9,x@example.com,2\n")
    (tmp_path / "late.csv").write_text(
        "".join(["id,email,age\n", *(f"{n},p{n}@example.com,{n}\n" for n in range(1, 11))])
    )
    (tmp_path / "gone.csv").write_text("id\n5\n9\n")
    assert run(server, tmp_path, "import", "early.csv", "-d", "people", "--wait").returncode == 0
    late = run(server, tmp_path, "import", "late.csv", "-d", "people", "--wait", "--json")
    assert late.returncode == 3, late.stdout + late.stderr  # ids 5 and 9 are taken
    late_id = late.stdout.split('"batch":"')[1][:36]
    gone = run(server, tmp_path, "import", "gone.csv", "-d", "people", "--operation", "delete")
    assert run(server, tmp_path, "wait", gone.stdout.strip()).returncode == 0

    retried = run(server, tmp_path, "retry", late_id, "--wait", "--json")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f'"retry_of":"{late_id}"' in retried.stdout
    assert '"status":"completed"' in retried.stdout
    assert '"successful_operations":2' in retried.stdout
    assert row_count(server) == 10

    again = run(server, tmp_path, "retry", late_id, "--idempotency-key", "k1", "--json")
    same = run(server, tmp_path, "retry", late_id, "--idempotency-key", "k1", "--json")
    assert again.returncode == same.returncode == 0, again.stderr + same.stderr
    assert again.stdout.split('"batch":')[1][:40] == same.stdout.split('"batch":')[1][:40]
