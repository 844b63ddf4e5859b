"""The README's examples — the curl session, the CLI session and the SDK example — run as
written, top to bottom in the README's order, against a real server.

Blocks are found by the ``<!-- readme-example: NAME -->`` marker on the line before them. A
``bash`` block runs as one script; in a ``console`` block, lines starting with ``$ `` are
commands (run in one shell, in order, each expected to succeed) and the other lines are sample
output; a ``python`` block runs as one program. The README's commands run in the repository's
directory beside ``batchyard-data`` with the environment active: the test gives them a working
directory holding the server's ``batchyard-data`` (its first start wrote the admin
token there), this interpreter's ``bin`` on the PATH, and
the test server's address in place of the default one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import write_orders_csv

from support.servers import BatchyardServer

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- readme-example: (\w+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
DEFAULT_URL = "http://127.0.0.1:8000"


def readme_examples() -> list[tuple[str, str, str]]:
    """(name, language, body) of every marked block, in the README's order."""
    return BLOCK.findall(README.read_text())


def shell_script(language: str, body: str) -> str:
    if language == "console":
        body = "\n".join(line[2:] for line in body.splitlines() if line.startswith("$ "))
    return "set -euo pipefail\n" + body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BatchyardServer]:
    """A first start, as after the Quick start: the server generates the admin token into
    ``batchyard-data`` in the directory the README's commands run in."""
    running = BatchyardServer(tmp_path / "work" / "batchyard-data")
    del running.env["BATCHYARD_ADMIN_TOKEN"]
    running.start()
    try:
        yield running
    finally:
        running.stop()


def assert_first_start_says_where_to_go(server: BatchyardServer, token: str) -> None:
    said = server.log_path.read_text()
    assert f"    {token}\n" in said
    assert f"Dashboard: {server.url}/" in said
    assert f"export BATCHYARD_URL={server.url}\n" in said
    assert f"export BATCHYARD_TOKEN={token}\n" in said


def test_readme_marks_its_examples_in_order():
    examples = readme_examples()
    assert [(name, language) for name, language, _ in examples] == [
        ("curl", "bash"),
        ("cli", "console"),
        ("loop", "console"),
        ("sdk", "python"),
    ]
    sdk = examples[-1][2]
    assert len(sdk.strip().splitlines()) <= 6  # import + the five-line example


def run_example(language: str, body: str, workdir: Path, env: dict[str, str]) -> str:
    """Run one block as written; its output, after checking that it succeeded."""
    command = (
        [sys.executable, "-c", body]
        if language == "python"
        else ["bash", "-c", shell_script(language, body)]
    )
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{language} block failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_readme_examples_run_top_to_bottom(server, tmp_path):
    workdir = tmp_path / "work"
    token = (workdir / "batchyard-data" / "admin-token").read_text().strip()
    assert_first_start_says_where_to_go(server, token)
    write_orders_csv(workdir / "orders.csv", 2_000, bad_every=0)
    bindir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")},
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    outputs = {}
    for name, language, body in readme_examples():
        outputs[name] = run_example(language, body.replace(DEFAULT_URL, server.url), workdir, env)
        if name == "curl":  # the block's own exports, as the reader's shell keeps them
            env |= {"BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": token}

    assert '"status":"completed"' in outputs["curl"]
    assert '"format":"csv"' in outputs["curl"]  # as detected
    assert re.search(r"All \d+ chunk\(s\) applied while validating", outputs["curl"])  # its log
    assert "Applying 0 chunk(s)" not in outputs["curl"]
    assert "already committed" not in outputs["curl"]
    assert "dataset orders_inferred created" in outputs["cli"]
    assert (workdir / "failed.csv").read_text().startswith("id,")
    # The fix-and-resend loop: refused, downloaded, fixed, resent, every record applied.
    assert "exit 4: validation_failed" in outputs["loop"]
    resent = outputs["loop"].split("id,email,amount,status,ts,user_id,error\n")[1]
    assert resent.splitlines()[0].startswith("9001,ann@example.com,10.00,new,,,")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as api:
        listed = api.get("/batches", params={"dataset": "orders", "limit": 50}).json()
        (resent_batch,) = [b for b in listed["batches"] if b["resubmits"]]
        assert (resent_batch["status"], resent_batch["successful_operations"]) == ("completed", 3)
        assert api.get("/datasets/orders").json()["row_count"] == 2_003
    assert outputs["sdk"].strip().splitlines()[-1] == "completed 100.0"
    results = (workdir / "results.csv").read_text().splitlines()
    assert len(results) == 2_001 and results[0].startswith("record_number,outcome")
