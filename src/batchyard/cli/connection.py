"""What every client command shares: --url/--token/--json options, the SDK client, exit codes."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.text import Text

from batchyard.cli import render
from batchyard.client import Batch, BatchStatus, BatchyardError, Client, WaitTimeout

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="BATCHYARD_URL",
        show_envvar=True,
        help="Server URL (default: http://127.0.0.1:8000).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="BATCHYARD_TOKEN", show_envvar=True, help="API token."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")]
BatchId = Annotated[str, typer.Argument(help="The batch id.", show_default=False)]


class ExitCode(enum.IntEnum):
    """The exit statuses of the client commands (documented in docs/cli.md)."""

    #: Done; for --wait: the batch completed and every record was applied.
    OK = 0
    #: The server refused the request or could not be reached (the reason is on stderr).
    ERROR = 1
    #: Bad command-line usage.
    USAGE = 2
    #: The batch completed, but some records failed (see the failed-records file).
    FAILED_RECORDS = 3
    #: The batch ended without completing: failed, validation_failed, hash_mismatch, cancelled.
    NOT_COMPLETED = 4
    #: --timeout passed before the batch finished (it keeps running on the server).
    TIMED_OUT = 5


EXIT_CODES_HELP = (
    "Exit codes: 0 completed with every record applied; 1 request refused or server "
    "unreachable; 2 bad usage; 3 completed with failed records; 4 ended without completing "
    "(failed, validation_failed, hash_mismatch, cancelled); 5 --timeout passed."
)


def outcome(batch: Batch) -> ExitCode:
    """The exit code a finished batch means."""
    if batch.status != BatchStatus.COMPLETED:
        return ExitCode.NOT_COMPLETED
    return ExitCode.FAILED_RECORDS if batch.failed_operations else ExitCode.OK


@contextmanager
def connect(url: str | None, token: str | None) -> Iterator[Client]:
    """The SDK client; its errors end the command with a one-line message and an exit code."""
    try:
        with Client(token, url, timeout=300) as client:
            yield client
    except WaitTimeout as error:
        render.console(stderr=True).print(Text.assemble(("timeout: ", "yellow"), error.message))
        raise typer.Exit(ExitCode.TIMED_OUT) from None
    except BatchyardError as error:
        render.console(stderr=True).print(Text.assemble(("error: ", "red"), error.message))
        raise typer.Exit(ExitCode.ERROR) from None
