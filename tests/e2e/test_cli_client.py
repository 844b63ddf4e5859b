"""The installed ``batchyard`` command against a running server: output, JSON, exit codes, TTY."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from batchyard import Client
from support.backend_server import serve_backend
from support.servers import ADMIN_TOKEN, BatchyardServer

BATCHYARD = shutil.which("batchyard", path=str(Path(sys.executable).parent)) or "batchyard"
ROWS = 10_000
BAD = 10


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    """One server for the module (each CLI run is a process start, so tests share it)."""
    with serve_backend(tmp_path_factory.mktemp("cli"), "sqlite", request) as running:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(ORDERS_SCHEMA)
        yield running


@pytest.fixture
def env(server: BatchyardServer) -> dict[str, str]:
    # Only the pty decides whether output is a terminal: no inherited color or tty overrides.
    overrides = {"FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE"}
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_") and k not in overrides
    }
    return {
        **clean,
        "BATCHYARD_URL": server.url,
        "BATCHYARD_TOKEN": ADMIN_TOKEN,
        "TERM": "xterm-256color",
        "COLUMNS": "120",
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("files")
    paths = {name: root / f"{name}.csv" for name in ("orders", "sample", "clean")}
    assert len(write_orders_csv(paths["orders"], ROWS, bad_every=1000).bad) == BAD
    write_orders_csv(paths["sample"], 200, bad_every=0)
    write_orders_csv(paths["clean"], 500, bad_every=0, seed=11)
    return paths


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATCHYARD, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def run_in_pty(env: dict[str, str], *args: str, within: float = 300) -> tuple[int, str]:
    """Run the command on a pseudo-terminal (as in a shell) and return its exit code and screen."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [BATCHYARD, *args], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        output += data
    os.close(leader)
    return process.wait(30), output.decode(errors="replace")


def test_import_wait_without_a_terminal(env, files, tmp_path):
    done = run(
        env,
        "import",
        str(files["orders"]),
        "--dataset",
        "orders",
        "--operation",
        "upsert",
        "--hash",
        "auto",
        "--wait",
    )

    assert done.returncode == 3, done.stderr  # completed, with failed records
    assert "\x1b[" not in done.stdout + done.stderr  # no colors or bars off a terminal
    assert "━" not in done.stderr
    assert "uploading orders.csv" in done.stderr
    assert f"completed: {ROWS:,}/{ROWS:,} records" in done.stderr  # a line per status change
    summary = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert summary["status"] == "completed"
    assert summary["succeeded"] == f"{ROWS - BAD:,}" and summary["failed"] == f"{BAD:,}"
    assert summary["results_url"].startswith("http")  # a signed link, no token needed
    batch_id = summary["batch"]
    assert f"{BAD} records failed" in done.stderr
    name = f"orders-{batch_id}-failed-records.csv"
    assert f"batchyard results {batch_id} --failed -o {name}" in done.stderr
    assert f"batchyard retry {batch_id}" in done.stderr

    failed = tmp_path / "failed.csv"
    wrote = run(env, "results", batch_id, "--failed", "-o", str(failed))
    assert wrote.returncode == 0 and "wrote failed records" in wrote.stderr
    with failed.open() as f:
        assert len(list(csv.DictReader(f))) == BAD
    streamed = run(env, "results", batch_id, "-o", "-")
    assert len(list(csv.DictReader(io.StringIO(streamed.stdout)))) == ROWS


def test_read_commands_print_json(env, files):
    created = run(
        env,
        "import",
        str(files["clean"]),
        "-d",
        "orders",
        "--operation",
        "upsert",
        "--json",
        "--wait",
    )
    assert created.returncode == 0, created.stderr
    batch = json.loads(created.stdout)
    assert batch["status"] == "completed" and batch["successful_operations"] == 500
    assert batch["download"]["url"].startswith("http")
    batch_id = batch["batch"]

    status = json.loads(run(env, "status", batch_id, "--json").stdout)
    assert status["batch"] == batch_id and isinstance(status["created_ts"], float)  # as the API
    history = json.loads(run(env, "history", batch_id, "--json").stdout)
    assert history[0]["status"] == "completed" and history[-1]["status"] == "new"
    log = json.loads(run(env, "log", batch_id, "--json").stdout)
    assert any("Finished" in line for line in log)
    listed = json.loads(run(env, "list", "--json", "--status", "completed").stdout)
    assert batch_id in [b["batch"] for b in listed]
    assert {b["status"] for b in listed} == {"completed"}
    datasets = json.loads(run(env, "datasets", "list", "--json").stdout)
    assert "orders" in [d["name"] for d in datasets]
    shown = json.loads(run(env, "datasets", "show", "orders", "--json").stdout)
    assert shown["primary_key"] == ["id"] and len(shown["columns"]) == 6

    text = run(env, "history", batch_id)
    assert text.returncode == 0 and "writing_results" in text.stdout
    assert "completed" in run(env, "list").stdout
    assert "uuid" in run(env, "datasets", "show", "orders").stdout


def test_exit_codes_and_error_messages(env, files, tmp_path):
    missing = run(env, "status", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1 and "error: Batch not found" in missing.stderr

    assert run(env, "import", str(files["clean"])).returncode == 2  # no --dataset
    url_hash = run(env, "import", "http://127.0.0.1:9/a.csv", "-d", "orders", "--hash", "auto")
    assert url_hash.returncode == 2 and "not to URLs" in url_hash.stderr
    nothing = run(
        env, "import", str(tmp_path / "nope.csv"), "-d", "orders", "--operation", "upsert"
    )
    assert nothing.returncode == 2 and "no such file" in nothing.stderr

    stranger = run({**env, "BATCHYARD_TOKEN": "wrong"}, "list")
    assert stranger.returncode == 1 and "error:" in stranger.stderr
    via_option = run({**env, "BATCHYARD_TOKEN": "wrong"}, "list", "--token", ADMIN_TOKEN)
    assert via_option.returncode == 0

    wrong_header = tmp_path / "other.csv"
    wrong_header.write_text("nope,also_nope\n1,2\n")
    rejected = run(
        env, "import", str(wrong_header), "-d", "orders", "--operation", "upsert", "--wait"
    )
    assert rejected.returncode == 4 and "validation_failed" in rejected.stdout

    batch_id = run(
        env, "import", str(files["clean"]), "-d", "orders", "--operation", "upsert"
    ).stdout.strip()
    waited = run(env, "wait", batch_id, "--timeout", "120")
    assert waited.returncode == 0, waited.stderr
    late = run(env, "cancel", batch_id)
    assert late.returncode == 1 and "cannot move" in late.stderr
    deleted = run(env, "delete", batch_id)
    assert deleted.returncode == 0 and "deleting" in deleted.stdout

    declined = run(
        env,
        "datasets",
        "create",
        "--from-sample",
        str(files["sample"]),
        "--name",
        "declined",
        stdin="n\n",
    )
    assert declined.returncode == 1 and "Create dataset 'declined'?" in declined.stderr
    assert "declined" not in run(env, "datasets", "list").stdout


def test_list_shows_owners_and_filters_by_owner(env, files, server):
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as api:
        created = api.post("/users", json={"name": "carol", "role": "member"})
    assert created.status_code == 201, created.text
    carol = {**env, "BATCHYARD_TOKEN": created.json()["token"]["token"]}
    imported = run(carol, "import", str(files["clean"]), "-d", "orders", "--operation", "upsert")
    assert imported.returncode == 0, imported.stderr
    carols = imported.stdout.strip()
    admins = run(env, "import", str(files["clean"]), "-d", "orders", "--operation", "upsert")
    assert admins.returncode == 0, admins.stderr

    table = run(env, "list").stdout.splitlines()
    assert table[0].split()[:3] == ["batch", "owner", "dataset"]
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert (rows[carols], rows[admins.stdout.strip()]) == ("carol", "admin")
    only = run(env, "list", "--owner", "carol").stdout.splitlines()
    assert [line.split()[:2] for line in only[1:]] == [[carols, "carol"]]
    listed = json.loads(run(env, "list", "--owner", "carol", "--json").stdout)
    assert [(b["batch"], b["owner"]) for b in listed] == [(carols, "carol")]
    assert json.loads(run(carol, "list", "--owner", "admin", "--json").stdout) == []
    assert "--owner" in run(env, "list", "--help").stdout


def test_datasets_create_from_a_sample_shows_the_schema_first(env, files):
    sample = str(files["sample"])
    accepted = run(env, "datasets", "create", "--from-sample", sample, stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "dataset sample created" in accepted.stdout
    shown = accepted.stderr  # the inferred schema, shown before the question
    assert "user_id" in shown and "uuid" in shown and "primary" in shown
    assert shown.index("uuid") < shown.index("Create dataset 'sample'?")
    again = run(env, "datasets", "create", "--from-sample", sample, "--yes", "--json")
    assert again.returncode == 1 and "already exists" in again.stderr
    loaded = run(env, "import", sample, "-d", "sample", "--wait", "--json")
    assert loaded.returncode == 0 and json.loads(loaded.stdout)["successful_operations"] == 200


def test_datasets_delete_asks_first_then_drops_the_table(env, files, server):
    scratch = {**ORDERS_SCHEMA, "name": "scratch"}
    with Client(ADMIN_TOKEN, server.url) as client:
        client.datasets.create(scratch)
    loaded = run(env, "import", str(files["clean"]), "-d", "scratch", "--wait", "--json")
    assert loaded.returncode == 0, loaded.stderr
    rows = json.loads(loaded.stdout)["successful_operations"]

    declined = run(env, "datasets", "delete", "scratch", stdin="n\n")
    assert declined.returncode == 1 and "every row of its table?" in declined.stderr
    assert run(env, "datasets", "show", "scratch").returncode == 0

    deleted = run(env, "datasets", "delete", "scratch", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert f"dataset scratch: deleted, its table ({rows} rows) dropped" in deleted.stdout
    gone = run(env, "datasets", "show", "scratch")
    assert gone.returncode == 1 and "not found" in gone.stderr.lower()
    assert "--keep-table" in run(env, "datasets", "delete", "--help").stdout


def test_log_follow_prints_until_the_end(env, files):
    batch_id = run(
        env, "import", str(files["orders"]), "-d", "orders", "--operation", "upsert"
    ).stdout.strip()
    followed = run(env, "log", batch_id, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.rstrip().splitlines()[-1].endswith(f"Invalid: {BAD}")


def test_progress_bars_on_a_terminal(env, files):
    code, screen = run_in_pty(
        env, "import", str(files["orders"]), "-d", "orders", "--operation", "upsert", "--wait"
    )
    assert code == 3, screen
    assert "━" in screen  # rich's bar
    assert "uploaded" in screen and "kB/" in screen  # the bytes bar
    assert f"{ROWS:,}/{ROWS:,} records" in screen  # the records bar
    assert "\x1b[" in screen  # colors on a terminal


def test_python_dash_m_is_the_same_command(env):
    via_module = subprocess.run(
        [sys.executable, "-m", "batchyard", "datasets", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert via_module.returncode == 0
    assert "orders" in [d["name"] for d in json.loads(via_module.stdout)]
