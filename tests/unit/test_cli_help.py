"""Every command's --help, as a user reads it: flags are shown as flags (``--wait``), not as
options taking a value (``--wait <bool>``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from batchyard.cli.main import app


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``command`` (typer's own click: groups have commands)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def test_help_shows_boolean_flags_as_flags():
    root = typer.main.get_command(app)
    paths = list(command_paths(root))
    assert ("import",) in paths and ("users", "create") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
    assert "  --wait  " in runner.invoke(app, ["import", "--help"]).output
