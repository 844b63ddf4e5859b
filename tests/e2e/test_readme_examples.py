"""The README's SDK example and CLI session, run as written against a real server.

Blocks are found by the ``<!-- readme-example: NAME -->`` marker on the line before them. In the
``console`` block, lines starting with ``$ `` are commands (run in one shell, in order, each
expected to succeed); the other lines are sample output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.datagen import write_orders_csv

from support.backend_server import serve_backend
from support.servers import ADMIN_TOKEN, BatchyardServer

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- readme-example: (\w+) -->\n```\w+\n(.*?)\n```", re.DOTALL)


def readme_examples() -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(README.read_text())}


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BatchyardServer]:
    with serve_backend(tmp_path, "sqlite", request) as running:
        yield running


def test_readme_marks_both_examples():
    examples = readme_examples()
    assert set(examples) == {"sdk", "cli"}
    assert len(examples["sdk"].strip().splitlines()) <= 6  # import + the five-line example


def test_readme_examples_run(server, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_orders_csv(workdir / "orders.csv", 2_000, bad_every=0)
    bindir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")},
        "BATCHYARD_URL": server.url,
        "BATCHYARD_TOKEN": ADMIN_TOKEN,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    examples = readme_examples()

    commands = [line[2:] for line in examples["cli"].splitlines() if line.startswith("$ ")]
    session = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(commands)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert session.returncode == 0, f"{session.stdout}\n{session.stderr}"
    assert "dataset orders created" in session.stdout
    assert (workdir / "failed.csv").read_text().startswith("id,")

    sdk = subprocess.run(
        [sys.executable, "-c", examples["sdk"]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sdk.returncode == 0, sdk.stderr
    assert sdk.stdout.strip().splitlines()[-1] == "completed 100.0"
    results = (workdir / "results.csv").read_text().splitlines()
    assert len(results) == 2_001 and results[0].startswith("record_number,outcome")
