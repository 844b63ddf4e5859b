"""``batchyard worker``: run batches from the PostgreSQL job queue, on any number of machines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from batchyard.cli.logs import configure_logging
from batchyard.cli.process_exit import exit_after_shutdown


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=(
                "Jobs this worker runs at once: batches, helpers sharing a batch's chunks,"
                " deletions [env BATCHYARD_WORKER_CONCURRENCY; default 4]."
            ),
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Scratch directory [env BATCHYARD_DATA_DIR; default ./batchyard-data]."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics "
            "(records, bytes, stage durations of the work it did); off unless given.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics port listens on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
) -> None:
    """Work on the job queue until stopped (SIGINT/SIGTERM finish or hand back running jobs).

    Needs BATCHYARD_DATABASE_URL (PostgreSQL, the same as the API's) and storage every process
    can reach (BATCHYARD_STORAGE_URL). The API runs with BATCHYARD_RUNNER=queue, typically as
    `batchyard serve --no-worker`. A worker killed outright is noticed after
    BATCHYARD_QUEUE_STALLED_SECONDS without a heartbeat, and its jobs resume elsewhere.
    """
    from batchyard.pipeline.arrow_runtime import prepare_arrow
    from batchyard.pipeline.process_memory import return_large_blocks

    return_large_blocks()
    prepare_arrow()  # first: the pipeline's modules build Arrow constants as they are imported
    from batchyard.runner.batch_changes import TransitionListener
    from batchyard.runner.queue_schema import libpq_url
    from batchyard.runner.queue_tasks import run_worker
    from batchyard.service.container import open_pipeline_context
    from batchyard.settings import Settings
    from batchyard.storage.private import use_private_umask

    use_private_umask()
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    if not settings.resolved_database_url().startswith("postgresql"):
        raise typer.BadParameter(
            "workers need BATCHYARD_DATABASE_URL to be a PostgreSQL database "
            "(postgresql+psycopg://…); the SQLite default runs batches inside `batchyard serve`"
        )
    configure_logging(log_level, settings.log_format)

    async def work() -> None:
        async with open_pipeline_context(settings) as ctx:
            # Transitions other processes commit (a cancel the API took) reach the status
            # checks of the chunks applied here at once, not at the periodic read's bound.
            changes = ctx.store.changes
            listener = TransitionListener(
                libpq_url(settings.resolved_database_url()), changes.changed, changes.changed_all
            )
            await listener.start()
            try:
                await run_worker(ctx, concurrency=concurrency)
            finally:
                await listener.stop()

    with _metrics_server(metrics_host, metrics_port):
        asyncio.run(work())
    exit_after_shutdown()


@contextlib.contextmanager
def _metrics_server(host: str, port: int | None) -> Iterator[None]:
    """prometheus_client's own HTTP server in a thread, for this process's counters only: the
    deployment's state (batches by status, the queue) comes from the API's /metrics."""
    if port is None:
        yield
        return
    from prometheus_client import start_http_server

    import batchyard.metrics  # noqa: F401 - registers the instruments before the first scrape

    server, thread = start_http_server(port, addr=host)
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)
