"""``batchyard import|wait|status|history|log|list|cancel|retry|delete|results``: the client.

Each command is a thin shell over the SDK (``batchyard.client``); see docs/cli.md.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from batchyard.cli import render
from batchyard.cli.connection import (
    EXIT_CODES_HELP,
    BatchId,
    Json,
    Token,
    Url,
    connect,
    outcome,
)
from batchyard.cli.dataset_commands import datasets_app
from batchyard.cli.operation_commands import operations_app
from batchyard.cli.progress import ImportProgress
from batchyard.cli.reading_options import ColumnMap, Delimiter, NullMarkers, with_reading_options
from batchyard.client import Batch, BatchStatus, Client, InputFormat, Operation

URL_SCHEMES = ("http://", "https://", "s3://", "file://")
#: The name ``batchyard results ID --failed`` suggests for a batch's failed-records file: sent
#: back, its batch is recorded as the one the import resubmits.
FAILED_RECORDS_NAME = re.compile(
    r"-(?P<batch>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"-failed-records\.(?:csv|jsonl)(?:\.gz)?$"
)

Timeout = Annotated[
    float | None,
    typer.Option(help="Give up waiting after this many seconds (the batch keeps running)."),
]


def _split_inputs(inputs: list[str]) -> tuple[Path | None, list[str]]:
    """One local file to upload, or URLs for the server to fetch — not both."""
    urls = [i for i in inputs if i.lower().startswith(URL_SCHEMES)]
    files = [i for i in inputs if i not in urls]
    if files and urls:
        raise typer.BadParameter("give one local file or URLs, not both", param_hint="FILE_OR_URL")
    if len(files) > 1:
        raise typer.BadParameter(
            "a batch uploads one file; import files one at a time", param_hint="FILE_OR_URL"
        )
    if files and not Path(files[0]).is_file():
        raise typer.BadParameter(f"no such file: {files[0]}", param_hint="FILE_OR_URL")
    return (Path(files[0]) if files else None), urls


def _options(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--options") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--options")
    return value


def operation_settings(pairs: list[str] | None) -> dict[str, Any] | None:
    """``--set KEY=VALUE`` options as the operation's settings (None when there are none)."""
    if not pairs:
        return None
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def failed_records_name(batch: Batch) -> str:
    """The file name to keep a batch's failed records under (see FAILED_RECORDS_NAME)."""
    extension = "jsonl" if batch.format == InputFormat.JSONL else "csv"
    return f"{batch.dataset}-{batch.id}-failed-records.{extension}"


def _suggest_fix(batch: Batch) -> None:
    """Where the records not applied are, and the two ways to send them again (one per line,
    never wrapped: each is a command to copy)."""
    err = render.console(stderr=True)
    what = f"{batch.failed_operations:,} records failed" if batch.failed_operations else ""
    name = failed_records_name(batch)
    err.print(
        Text.assemble(
            (f"{what or 'Records were not applied'}. ", "yellow"),
            "Their rows and errors, to fix and import again: ",
            (f"batchyard results {batch.id} --failed -o {name}", "bold"),
        ),
        soft_wrap=True,
    )
    if batch.dry_run:  # sent again as they were, they would fail the same way
        return
    err.print(
        Text.assemble("Or send them again as they were: ", (f"batchyard retry {batch.id}", "bold")),
        soft_wrap=True,
    )


def _finish(client: Client, batch: Batch, as_json: bool) -> None:
    """Show a finished batch (summary, where failed records are) and exit with its outcome."""
    if batch.is_terminal:
        batch = client.ingest.get_batch(batch.id, download=True)
    if as_json:
        render.print_json(batch)
    else:
        render.show_batch(batch)
        not_applied = batch.status != BatchStatus.COMPLETED and batch.download is not None
        if batch.failed_operations or not_applied:
            _suggest_fix(batch)
        if batch.error_message:
            render.console(stderr=True).print(
                Text.assemble(("error: ", "red"), batch.error_message)
            )
    raise typer.Exit(outcome(batch))


def import_batch(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE_OR_URL...",
            help="A local file to upload (streamed), or URLs for the server to fetch.",
            show_default=False,
        ),
    ],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset to load into.")],
    operation: Annotated[
        str,
        typer.Option(
            help="What to do with each record: insert, upsert, delete, http, or an operation "
            "a package registers ('batchyard operations list')."
        ),
    ] = Operation.INSERT,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A setting of the operation (options.operation), repeatable: "
            "--set url=https://example.com/hook --set concurrency=16. A VALUE that is JSON "
            "(a number, true, an object) is taken as such, anything else as text.",
        ),
    ] = None,
    format: Annotated[
        InputFormat | None, typer.Option(help="Input format (default: detected).")
    ] = None,
    hash: Annotated[
        str | None,
        typer.Option(help="SHA-256 of the file, or 'auto' to compute it before uploading."),
    ] = None,
    options: Annotated[
        str | None, typer.Option(help="Batch options as JSON, e.g. '{\"max_errors\": 100}'.")
    ] = None,
    delimiter: Delimiter = None,
    null_marker: NullMarkers = None,
    column: ColumnMap = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retries with the same key return the first batch.")
    ] = None,
    resubmits: Annotated[
        str | None,
        typer.Option(
            metavar="BATCH",
            help="The batch whose failed records the file holds (default: the batch named in "
            "a file called DATASET-BATCH-failed-records.csv, as 'batchyard results' suggests).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Do everything but write: validate, check keys and constraints against the "
            "table in a transaction that is rolled back, and write the results.",
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the batch until it ends; exit by outcome.")
    ] = False,
    timeout: Timeout = None,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Import a file or URLs into a dataset; with --wait, follow it to the end.

    Bars for upload bytes then records on a terminal (plain lines otherwise), then a summary.
    """
    path, urls = _split_inputs(inputs)
    if urls and hash == "auto":
        raise typer.BadParameter(
            "'auto' applies to an uploaded local file, not to URLs",
            param_hint="--hash",
        )
    reading = with_reading_options(_options(options), delimiter, null_marker, column)
    common: dict[str, Any] = {
        "format": format,
        "operation": operation,
        "hash": hash,
        "options": _dry_run(_resubmitting(reading, path, resubmits), dry_run),
        "idempotency_key": idempotency_key,
        "operation_options": operation_settings(setting),
    }
    name = path.name if path else f"{len(urls)} URL(s)"
    with connect(url, token) as client:
        with ImportProgress(render.console(stderr=True), name) as progress:
            if path is not None:
                batch = client.ingest.create_batch(
                    dataset, file=path, on_upload=progress.on_upload, **common
                )
            else:
                batch = client.ingest.create_batch(dataset, sources=urls, **common)
            progress.uploaded(batch)
            if wait:
                batch = client.ingest.wait(batch.id, timeout=timeout, on_progress=progress.on_batch)
        if wait:
            _finish(client, batch, as_json)
    render.emit(batch, as_json, lambda shown: shown.id)


def _dry_run(options: dict[str, Any] | None, dry_run: bool) -> dict[str, Any] | None:
    """``options`` with ``dry_run`` set by --dry-run (options that say it already win)."""
    if not dry_run or (options and "dry_run" in options):
        return options
    return {**(options or {}), "dry_run": True}


def _resubmitting(
    options: dict[str, Any] | None, path: Path | None, resubmits: str | None
) -> dict[str, Any] | None:
    """``options`` with ``resubmits`` set from --resubmits, else from a failed-records file's
    name; options that already name it win."""
    found = FAILED_RECORDS_NAME.search(path.name) if path is not None else None
    batch = resubmits or (found["batch"] if found else None)
    if batch is None or (options and "resubmits" in options):
        return options
    return {**(options or {}), "resubmits": batch}


def retry(
    batch_id: BatchId,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retries with the same key return the first retry.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the new batch until it ends; exit by outcome.")
    ] = False,
    timeout: Timeout = None,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Send a batch's failed and not-processed records again, as they were sent, in a new batch.

    Prints the new batch's id (its retry_of is BATCH_ID); with --wait, follows it to the end.
    """
    with connect(url, token) as client:
        batch = client.ingest.retry_batch(batch_id, idempotency_key=idempotency_key)
        if wait:
            with ImportProgress(render.console(stderr=True), batch.id) as progress:
                batch = client.ingest.wait(batch.id, timeout=timeout, on_progress=progress.on_batch)
            _finish(client, batch, as_json)
    render.emit(batch, as_json, lambda shown: shown.id)


def wait(
    batch_id: BatchId,
    timeout: Timeout = None,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Follow a batch until it ends, with a records bar; exit by its outcome."""
    with connect(url, token) as client:
        with ImportProgress(render.console(stderr=True), batch_id) as progress:
            batch = client.ingest.wait(batch_id, timeout=timeout, on_progress=progress.on_batch)
        _finish(client, batch, as_json)


def status(
    batch_id: BatchId,
    download: Annotated[
        bool, typer.Option("--download", help="Add temporary signed URLs to the result files.")
    ] = False,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a batch: status, counts, timings."""
    with connect(url, token) as client:
        batch = client.ingest.get_batch(batch_id, download=download)
    if as_json:
        render.print_json(batch)
    else:
        render.show_batch(batch)


def history(batch_id: BatchId, as_json: Json = False, url: Url = None, token: Token = None) -> None:
    """Show a batch's status snapshots, newest first."""
    with connect(url, token) as client:
        entries = client.ingest.get_batch_status(batch_id)
    render.emit(entries, as_json, render.history)


def log(
    batch_id: BatchId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the batch ends.")
    ] = False,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print a batch's log (with --json: a JSON list of lines)."""
    printed: list[str] = []
    with connect(url, token) as client:

        def show_new(_: object = None) -> None:
            lines = client.ingest.get_log(batch_id).splitlines()
            for line in lines[len(printed) :]:
                if not as_json:
                    render.console().print(line, markup=False, highlight=False)
                printed.append(line)

        show_new()
        if follow:
            client.ingest.wait(batch_id, on_progress=show_new)
            show_new()
    if as_json:
        render.print_json(printed)


def list_batches(
    status: Annotated[BatchStatus | None, typer.Option(help="Only batches in this status.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only batches into this dataset.")] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Only batches of the user with this name (admins; others only see their own).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (0: all).", min=0)] = 50,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List your batches, newest first, with their owner (admins see everyone's)."""
    with connect(url, token) as client:
        found = client.ingest.list_batches(status=status, dataset=dataset, owner=owner)
        batches = list(itertools.islice(found, limit or None))
    render.emit(batches, as_json, render.batch_list)


def cancel(batch_id: BatchId, as_json: Json = False, url: Url = None, token: Token = None) -> None:
    """Cancel a batch: it stops at its next chunk; what was committed stays."""
    with connect(url, token) as client:
        batch = client.ingest.cancel(batch_id)
    render.emit(
        batch,
        as_json,
        lambda shown: f"batch {shown.id}: cancel requested (status {shown.status.value})",
    )


def delete(batch_id: BatchId, as_json: Json = False, url: Url = None, token: Token = None) -> None:
    """Delete a finished batch's input, results and history (loaded rows stay)."""
    with connect(url, token) as client:
        batch = client.ingest.delete(batch_id)
    render.emit(batch, as_json, lambda shown: f"batch {shown.id}: deleting")


def results(
    batch_id: BatchId,
    output: Annotated[str, typer.Option("--output", "-o", help="File to write ('-' for stdout).")],
    failed: Annotated[
        bool, typer.Option("--failed", help="The failed records as sent (+ error) instead.")
    ] = False,
    jsonl: Annotated[
        bool,
        typer.Option("--jsonl", help="The results as JSON Lines (outputs stay nested)."),
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download a batch's per-record results as CSV or JSON Lines (or its failed records as
    sent: CSV, or JSON Lines for a JSON Lines input), streamed."""
    with connect(url, token) as client:
        download = (
            client.ingest.download_failed_records
            if failed
            else functools.partial(
                client.ingest.download_results, format="jsonl" if jsonl else "csv"
            )
        )
        if output == "-":
            download(batch_id, sys.stdout.buffer)
            sys.stdout.flush()
            return
        download(batch_id, output)
    what = "failed records" if failed else "results"
    render.console(stderr=True).print(f"wrote {what} of batch {batch_id} to {output}")


def register(app: typer.Typer) -> None:
    """Add the client commands and the ``datasets`` group to the ``batchyard`` command."""
    app.command("import", epilog=EXIT_CODES_HELP)(import_batch)
    app.command(epilog=EXIT_CODES_HELP)(wait)
    app.command()(status)
    app.command()(history)
    app.command()(log)
    app.command("list")(list_batches)
    app.command()(cancel)
    app.command(epilog=EXIT_CODES_HELP)(retry)
    app.command()(delete)
    app.command()(results)
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(operations_app, name="operations")
