"""``batchyard doctor``: check this machine's deployment configuration and say what to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from batchyard.cli.process_exit import exit_after_shutdown

#: How each finding is marked, aligned.
_MARKS = {"ok": "ok  ", "warn": "WARN", "fix": "FIX "}


def doctor(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="The data directory to check [env BATCHYARD_DATA_DIR]."),
    ] = None,
) -> None:
    """Check the configuration in the BATCHYARD_* environment, as `serve` and `worker` read it.

    Checks the metadata database (reachable, migrated), storage (writable), the secret key that
    replicas and workers must share, that private sources are off, and the limits. Prints what
    to fix; exits 1 when something must be fixed (FIX), 0 when only warnings (WARN) remain.
    """
    from batchyard.service.doctor import Severity, check_settings, check_world
    from batchyard.settings import Settings

    try:
        settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            typer.echo(f"{_MARKS['fix']}  settings: BATCHYARD_{field.upper()}: {problem['msg']}")
        raise typer.Exit(1) from None
    findings = [*check_settings(settings), *asyncio.run(check_world(settings))]
    for finding in findings:
        typer.echo(f"{_MARKS[finding.severity]}  {finding.subject}: {finding.message}")
    to_fix = sum(finding.severity == Severity.FIX for finding in findings)
    typer.echo(f"\n{to_fix} thing(s) to fix." if to_fix else "\nNothing to fix.")
    exit_after_shutdown(1 if to_fix else 0)  # the storage check used obstore (see there)
