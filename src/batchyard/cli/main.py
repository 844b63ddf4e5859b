"""``batchyard``: run the service (and, in later commands, talk to it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchyard import __version__
from batchyard.cli.client_commands import register as register_client_commands
from batchyard.cli.doctor import doctor
from batchyard.cli.logs import configure_logging
from batchyard.cli.process_exit import exit_after_shutdown
from batchyard.cli.users import roles_app, tokens_app, users_app
from batchyard.cli.worker import worker

if TYPE_CHECKING:
    from batchyard.settings import Settings

#: How long the server keeps an idle client connection open. Longer than the clients' own
#: expiry of an idle pooled connection (httpx, the SDK's: 5 s; load balancers: 60 s), so that
#: it is always the client that drops it: with both at uvicorn's default 5 s, a request sent on
#: a connection as the server closed it failed with "Server disconnected".
KEEP_ALIVE_SECONDS = 75

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: flags as flags, not "--wait <bool>"
    name="batchyard",
    help="Self-hosted bulk imports: files or URLs in, validated records applied exactly once.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"batchyard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Self-hosted bulk imports: files or URLs in, validated records applied exactly once."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the embedded default keeps its databases, files and admin token "
            "[env BATCHYARD_DATA_DIR; default ./batchyard-data]."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="API only: leave the job queue to `batchyard worker` processes "
            "(needs BATCHYARD_RUNNER=queue and a PostgreSQL BATCHYARD_DATABASE_URL).",
        ),
    ] = False,
) -> None:
    """Run the HTTP API with the pipeline inside the process (SQLite + local files by default).

    The first admin token comes from BATCHYARD_ADMIN_TOKEN, or is generated on first start,
    printed once (with the dashboard's address and the export lines for the CLI and SDK) and
    written to DATA_DIR/admin-token. Data files are created owner-only (0600).
    Signed download links start with BATCHYARD_PUBLIC_URL (default: the address the server
    answered on); set it behind a proxy.
    """
    from batchyard.pipeline.arrow_runtime import prepare_arrow
    from batchyard.pipeline.process_memory import return_large_blocks

    return_large_blocks()
    prepare_arrow()  # first: the app's modules build Arrow constants as they are imported
    import uvicorn

    from batchyard.api.app import create_app
    from batchyard.settings import Settings
    from batchyard.storage.private import use_private_umask

    use_private_umask()
    overrides: dict[str, object] = {} if data_dir is None else {"data_dir": data_dir}
    if no_worker:  # only when given: BATCHYARD_SERVE_WORKER=false means the same
        overrides["serve_worker"] = False
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if no_worker and settings.runner != "queue":
        raise typer.BadParameter("--no-worker needs BATCHYARD_RUNNER=queue (nothing would run)")
    configure_logging(log_level, settings.log_format)
    try:
        uvicorn.run(  # log_config=None: uvicorn's own lines go through the format set up above
            create_app(settings, _address(settings, host, port), freeze_startup_objects=True),
            host=host,
            port=port,
            log_level=log_level,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    except KeyboardInterrupt:  # Ctrl-C: uvicorn shut down cleanly, then re-raised the signal
        exit_after_shutdown(130)
    exit_after_shutdown()


def _address(settings: Settings, host: str, port: int) -> str:
    """Where a browser or client on this machine reaches the server (the public URL if set)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(roles_app, name="roles")
register_client_commands(app)


app.command()(worker)
app.command()(doctor)


def run() -> None:
    """Console-script entry point."""
    app()
