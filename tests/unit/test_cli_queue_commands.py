"""`batchyard worker` and `serve --no-worker` refuse configurations in which nothing would run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchyard.cli.main import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("BATCHYARD_DATABASE_URL", "BATCHYARD_RUNNER", "BATCHYARD_SERVE_WORKER"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_worker_needs_a_postgresql_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["worker", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "PostgreSQL" in result.output


def test_serve_no_worker_needs_the_queue_runner(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--no-worker", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "BATCHYARD_RUNNER=queue" in result.output


def test_worker_help_explains_the_production_setup(runner: CliRunner) -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    assert "BATCHYARD_DATABASE_URL" in result.output
