"""How the client commands show things: rich tables on a terminal, plain lines otherwise, JSON.

Results go to stdout and messages, progress and errors to stderr, so ``--json`` output and
``results -o -`` stay clean for pipes.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchyard.client import Batch, Dataset, DatasetSchema, HistoryEntry

T = TypeVar("T")

#: Wide enough that ids and timestamps never wrap when output goes to a file or pipe.
PLAIN_WIDTH = 200


@functools.cache
def console(stderr: bool = False) -> Console:
    """The stdout (or stderr) console: colors and boxes only on a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    live = Console(file=stream, highlight=False)  # rich decides: isatty, FORCE_COLOR, TTY_*
    if live.is_terminal:
        return live
    return Console(file=stream, width=PLAIN_WIDTH, no_color=True, highlight=False, soft_wrap=True)


def show(renderable: Any, stderr: bool = False) -> None:
    """Print a table: boxed on a terminal; off one, plain lines without trailing blanks."""
    target = console(stderr)
    if target.is_terminal:
        target.print(renderable)
        return
    with target.capture() as captured:
        target.print(renderable)
    stream = sys.stderr if stderr else sys.stdout
    stream.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    stream.flush()


def _epoch_seconds(value: Any) -> Any:
    """``value`` with every datetime as epoch seconds: the API's own form, so a script reads
    the CLI's JSON and the API's alike."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: _epoch_seconds(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_epoch_seconds(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """``value`` (SDK models included) as JSON on stdout, timestamps in epoch seconds."""
    plain = _epoch_seconds(msgspec.to_builtins(value, builtin_types=(datetime,)))
    sys.stdout.write(msgspec.json.encode(plain).decode() + "\n")
    sys.stdout.flush()


def emit(value: T, as_json: bool, human: Callable[[T], Any]) -> None:
    """What every read command ends with: ``value`` as JSON with --json, else ``human(value)``
    (a table or a line of text) for people."""
    if as_json:
        print_json(value)
        return
    shown = human(value)
    if isinstance(shown, str):
        console().print(shown)
    else:
        show(shown)


def when(value: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(
        *columns,
        title=title,
        box=box.SIMPLE_HEAD if console().is_terminal else None,
        show_edge=False,
        pad_edge=False,
    )
    return table


def status_text(batch: Batch | HistoryEntry) -> str:
    """The status, colored by how it ended (colors vanish off a terminal)."""
    status = batch.status.value
    if status == "completed" and batch.failed_operations:
        return f"[yellow]{status}[/]"
    if status == "completed":
        return f"[green]{status}[/]"
    if status in {"failed", "validation_failed", "hash_mismatch", "cancelled"}:
        return f"[red]{status}[/]"
    return f"[cyan]{status}[/]"


def batch_summary(batch: Batch) -> Table:
    """One batch as a two-column table of its fields."""
    table = _table("field", "value")
    table.show_header = False
    rows: list[tuple[str, str]] = [
        ("batch", batch.id),
        ("dataset", batch.dataset),
        ("operation", str(batch.operation)),
        ("status", status_text(batch)),
        ("records", number(batch.total_operations)),
        ("processed", f"{number(batch.processed_operations)} ({batch.progress_percentage:g}%)"),
        ("succeeded", number(batch.successful_operations)),
        ("failed", number(batch.failed_operations)),
        ("created", when(batch.created_ts)),
        ("completed", when(batch.completed_ts)),
    ]
    if batch.started_ts and batch.completed_ts:
        seconds = (batch.completed_ts - batch.started_ts).total_seconds()
        rows.append(("duration", f"{seconds:.1f} s"))
    if batch.error_message:
        rows.append(("error", f"[red]{batch.error_message}[/]"))
    if batch.dry_run:
        rows.append(("dry_run", "yes: succeeded and failed are what a real run would do"))
    if batch.retry_of:
        rows.append(("retry_of", batch.retry_of))
    elif batch.resubmits:
        rows.append(("resubmits", batch.resubmits))
    if batch.download:
        rows.append(("urls_valid_until", when(batch.download.validity_ts)))
    for name, value in rows:
        table.add_row(name, value)
    return table


def show_batch(batch: Batch) -> None:
    """The batch's summary table, then its signed URLs each on one line of its own: a table
    cell would break a URL with hard line breaks on a narrow terminal, and a broken URL
    cannot be copied; a long line is left for the terminal to wrap."""
    show(batch_summary(batch))
    if batch.dry_run:
        console().print(Text("dry run: nothing was written", "yellow"))
    if batch.download:
        for name, link in (
            ("results_url", batch.download.url),
            ("failed_records_url", batch.download.failed_records_url),
        ):
            console().print(Text.assemble((name, "bold"), "  ", link), soft_wrap=True)


def batch_list(batches: Iterable[Batch]) -> Table:
    table = _table(
        "batch", "owner", "dataset", "operation", "status", "records", "failed", "created"
    )
    for batch in batches:
        table.add_row(
            batch.id,
            batch.owner or "-",
            batch.dataset,
            str(batch.operation),
            status_text(batch),
            number(batch.total_operations),
            number(batch.failed_operations),
            when(batch.created_ts),
        )
    return table


def history(entries: Sequence[HistoryEntry]) -> Table:
    table = _table("time", "status", "records", "processed", "succeeded", "failed")
    for entry in entries:
        table.add_row(
            when(entry.updated_ts),
            status_text(entry),
            number(entry.total_operations),
            number(entry.processed_operations),
            number(entry.successful_operations),
            number(entry.failed_operations),
        )
    return table


def schema(dataset: Dataset | DatasetSchema) -> Table:
    """A dataset's columns: type, nullability, key and constraints."""
    title = dataset.name
    if isinstance(dataset, Dataset):
        title = f"{dataset.name} ({number(dataset.row_count)} rows)"
    table = _table("column", "type", "nullable", "key", "constraints", title=title)
    for column in dataset.columns:
        constraints = {
            k: v
            for k, v in msgspec.to_builtins(column).items()
            if k not in {"name", "type", "nullable"}
        }
        table.add_row(
            column.name,
            column.type,
            "yes" if column.nullable else "no",
            "primary" if column.name in dataset.primary_key else "",
            ", ".join(f"{k}={v}" for k, v in constraints.items()),
        )
    return table


def dataset_list(datasets: Iterable[Dataset]) -> Table:
    table = _table("dataset", "columns", "primary key", "rows", "created")
    for dataset in datasets:
        table.add_row(
            dataset.name,
            str(len(dataset.columns)),
            ", ".join(dataset.primary_key) or "-",
            number(dataset.row_count),
            when(dataset.created_ts),
        )
    return table
