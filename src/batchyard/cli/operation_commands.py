"""``batchyard operations list``: what a batch may do with its records on this server."""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.table import Table

from batchyard.cli import render
from batchyard.cli.connection import Json, Token, Url, connect
from batchyard.client import OperationInfo

operations_app = typer.Typer(
    rich_markup_mode=None,
    help="The operations a batch may run (built-in and registered by packages).",
    no_args_is_help=True,
)


def operation_table(operations: Iterable[OperationInfo]) -> Table:
    """Name, description and settings (the keys of options.operation; * required)."""
    table = Table("name", "description", "settings (--set KEY=VALUE; * required)")
    for op in operations:
        required = set(op.settings_schema.get("required", []))
        keys = [f"{k}*" if k in required else k for k in op.settings_schema.get("properties", {})]
        table.add_row(op.name, op.description, ", ".join(keys) or "-")
    return table


@operations_app.command("list")
def list_operations(as_json: Json = False, url: Url = None, token: Token = None) -> None:
    """List the server's operations with their settings (--json: with each JSON Schema)."""
    with connect(url, token) as client:
        operations = client.ingest.list_operations()
    render.emit(operations, as_json, operation_table)
