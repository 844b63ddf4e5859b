"""The quality bar CI holds every change to: ruff clean and mypy --strict on src."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    lint = run("ruff", "check", "src", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    layout = run("ruff", "format", "--check", "src", "tests", "benchmarks")
    assert layout.returncode == 0, layout.stdout + layout.stderr


def test_mypy_strict_on_src() -> None:
    types = run("mypy", "src")
    assert types.returncode == 0, types.stdout + types.stderr
