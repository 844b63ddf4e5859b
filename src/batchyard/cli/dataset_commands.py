"""``batchyard datasets create|list|show``: declare and inspect datasets through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from batchyard.cli import render
from batchyard.cli.connection import ExitCode, Json, Token, Url, connect
from batchyard.cli.reading_options import parse_delimiter

datasets_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: flags as flags, not "--wait <bool>"
    help="Declare datasets (target tables with a schema) and inspect them.",
    no_args_is_help=True,
)


@datasets_app.command("create")
def create_dataset(
    from_sample: Annotated[
        Path,
        typer.Option(
            "--from-sample",
            exists=True,
            dir_okay=False,
            help="Sample file (CSV, TSV, JSON Lines, Parquet; gzip'd or not) to infer the schema "
            "from. Only its first 4 MiB (at most 10,000 records) are read.",
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="Dataset name (default: from the file name).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Create without asking for confirmation.")
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV field separator: ',', tab (also '\\t'), ';' or '|'. Default: found in "
            "the sample (tab for a .tsv file).",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a dataset whose schema is inferred from a sample file, after showing it.

    Headers that are not identifiers become ones (Contact Phone Number -> contact_phone_number)
    and the column records the header it is read from; codes with leading zeros stay text;
    amounts with two decimals are exact decimals; texts such as NA among numbers become the
    dataset's null markers; a unique key-like column is proposed as the primary key. Every rule:
    docs/inference.md.
    """
    from batchyard.client.infer import infer_dataset

    separator = parse_delimiter(delimiter)
    try:
        inferred = infer_dataset(from_sample, name, delimiter=separator)
    except (ValueError, OSError) as error:
        render.console(stderr=True).print(Text.assemble(("error: ", "red"), str(error)))
        raise typer.Exit(ExitCode.USAGE) from None
    schema = inferred.schema
    render.show(render.schema(schema), stderr=True)
    for note in [*inferred.notes, *_import_hint(inferred.delimiter)]:
        render.console(stderr=True).print(Text(note))
    if not yes and not typer.confirm(f"Create dataset {schema.name!r}?", err=True):
        raise typer.Exit(ExitCode.ERROR)
    with connect(url, token) as client:
        dataset = client.datasets.create(schema)
    render.emit(dataset, as_json, lambda shown: f"dataset {shown.name} created")


def _import_hint(delimiter: str | None) -> list[str]:
    """The import reads commas unless told: say how to pass the delimiter this file uses."""
    if delimiter is None or delimiter == ",":
        return []
    shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
    escaped = "\\t" if delimiter == "\t" else delimiter
    return [
        f"import this file with --delimiter {shown} "
        f'(SDK and API: options {{"delimiter": "{escaped}"}})'
    ]


@datasets_app.command("list")
def list_datasets(as_json: Json = False, url: Url = None, token: Token = None) -> None:
    """List the datasets you can see, with their row counts."""
    with connect(url, token) as client:
        datasets = client.datasets.list()
    render.emit(datasets, as_json, render.dataset_list)


@datasets_app.command("show")
def show_dataset(
    name: Annotated[str, typer.Argument(help="The dataset name.", show_default=False)],
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a dataset's schema and row count."""
    with connect(url, token) as client:
        dataset = client.datasets.get(name)
    render.emit(dataset, as_json, render.schema)


@datasets_app.command("delete")
def delete_dataset(
    name: Annotated[str, typer.Argument(help="The dataset name.", show_default=False)],
    keep_table: Annotated[
        bool,
        typer.Option(
            "--keep-table",
            help="Forget the definition only; the table and its rows stay in the target database.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Json = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Delete a dataset and drop its table with every row (refused while a batch of it runs)."""
    question = f"Drop dataset {name!r} and every row of its table?"
    if not yes and not keep_table and not typer.confirm(question, err=True):
        raise typer.Exit(ExitCode.ERROR)
    with connect(url, token) as client:
        dataset = client.datasets.delete(name, keep_table=keep_table)
    kept = "kept" if keep_table else "dropped"
    render.emit(
        dataset,
        as_json,
        lambda shown: f"dataset {shown.name}: deleted, its table ({shown.row_count} rows) {kept}",
    )
