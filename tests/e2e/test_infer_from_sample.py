"""``batchyard datasets create --from-sample`` then ``batchyard import`` of the same file, as a
data engineer runs them on real files: every record applied, and the table holds what Python's
csv/json modules read from the file (issue 17, points 4-5), on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.servers import ADMIN_TOKEN, BatchyardServer

BATCHYARD = shutil.which("batchyard", path=str(Path(sys.executable).parent)) or "batchyard"
ROWS = 300


@dataclass(frozen=True)
class Running:
    server: BatchyardServer
    backend: str
    pg_url: str | None

    def rows(self, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
        """The table's rows straight from the target database."""
        query = f'SELECT {columns} FROM "{table}" ORDER BY {order}'
        if self.pg_url is None:
            with sqlite3.connect(self.server.data_dir / "target.db") as conn:
                return conn.execute(query).fetchall()
        with psycopg.connect(self.pg_url) as conn:
            return conn.execute(query).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """One server per backend for the module; each case creates its own dataset."""
    env = {"BATCHYARD_CHUNK_BYTES": str(64 << 10)}
    pg_url = None
    if request.param == "postgresql":
        pg_url = str(request.getfixturevalue("module_pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    server = BatchyardServer(tmp_path_factory.mktemp(request.param) / "data", env=env).start()
    try:
        yield Running(server, request.param, pg_url)
    finally:
        server.stop()


def run(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env |= {"BATCHYARD_URL": running.server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        [BATCHYARD, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def create_and_import(running: Running, path: Path, *import_args: str) -> tuple[str, str]:
    """Create the dataset from ``path``, import ``path`` into it; the schema shown and the name."""
    created = run(running, "datasets", "create", "--from-sample", str(path), "--yes", "--json")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]
    loaded = run(running, "import", str(path), "-d", name, "--wait", "--json", *import_args)
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    batch = json.loads(loaded.stdout)
    assert (batch["successful_operations"], batch["failed_operations"]) == (ROWS, 0)
    return created.stderr, name


def write_airports(path: Path) -> list[dict[str, str]]:
    """Headers that are no identifiers, zip codes with leading zeros, amounts, NA markers."""
    header = ["Code", "Airport Name", "Date", "1962", "sepalLength", "Zip", "Price", "Rate"]
    rows = [
        {
            "Code": f"A{(i * 37) % 1000:03d}",
            "Airport Name": f"Airport {i}",
            "Date": (dt.date(2009, 6, 1) + dt.timedelta(days=i)).isoformat(),
            "1962": str((i * 7919) % 500),
            "sepalLength": f"{4 + (i % 30) / 10}",
            "Zip": f"{(i * 7919) % 100_000:05d}",
            "Price": f"{i}.{i % 100:02d}",
            "Rate": "NA" if i % 10 == 0 else f"{i / 8}",
        }
        for i in range(ROWS)
    ]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, header)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_headers_codes_amounts_and_markers_import_as_read(running, tmp_path):
    path = tmp_path / "Airports 2009.csv"
    written = write_airports(path)
    with path.open(newline="") as handle:
        reference = list(csv.DictReader(handle))
    assert reference == written
    shown, name = create_and_import(running, path)
    assert name == "airports_2009"
    assert "from=Airport Name" in shown and "primary key: code" in shown
    assert "'NA' is read as missing" in shown

    stored = running.rows(name, "code, airport_name, c_1962, zip, price, rate", "code")
    expected = sorted(
        (
            r["Code"],
            r["Airport Name"],
            int(r["1962"]),
            r["Zip"],
            decimal.Decimal(r["Price"]),
            None if r["Rate"] == "NA" else float(r["Rate"]),
        )
        for r in reference
    )
    got = [(*row[:4], decimal.Decimal(str(row[4])), row[5]) for row in stored]
    assert got == expected
    assert sum(zip_code.startswith("0") for *_, zip_code, _, _ in expected) > 10


def test_a_tsv_and_a_semicolon_file_import_with_the_delimiter_shown(running, tmp_path):
    tsv = tmp_path / "rates.tsv"
    tsv.write_text("id\trate\tlabel\n" + "".join(f"{i}\t{i / 4}\tx,{i}\n" for i in range(ROWS)))
    shown, name = create_and_import(running, tsv, "--delimiter", "tab")
    assert "delimiter tab (detected)" in shown and "--delimiter tab" in shown
    assert running.rows(name, "id, rate, label", "id")[:2] == [(0, 0.0, "x,0"), (1, 0.25, "x,1")]

    semicolon = tmp_path / "prices_eu.csv"
    lines = "".join(f"p{i};{i},50;{i}\n" for i in range(ROWS))
    semicolon.write_text("sku;price;qty\n" + lines)
    shown, name = create_and_import(running, semicolon, "--delimiter", ";")
    assert "delimiter semicolon (detected)" in shown and "--delimiter ';'" in shown
    assert running.rows(name, "sku, price, qty", "qty")[:1] == [("p0", "0,50", 0)]


def test_json_lines_and_parquet_of_the_same_records(running, tmp_path):
    records = [
        {
            "Title": 1776 if i == 3 else f"Book {i}",
            "day": (dt.date(2009, 6, 1) + dt.timedelta(days=i)).isoformat(),
            "isbn": f"{i:013d}",
        }
        for i in range(ROWS)
    ]
    jsonl = tmp_path / "books.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    shown, name = create_and_import(running, jsonl)
    assert "holds JSON values of several kinds (number, string): string" in shown
    stored = running.rows(name, "title, day, isbn", "isbn")
    assert [row[0] for row in stored][:4] == ["Book 0", "Book 1", "Book 2", "1776"]
    assert {str(row[1]) for row in stored} == {r["day"] for r in records}  # a date, not a time
    assert [row[2] for row in stored] == [r["isbn"] for r in records]  # zeros kept

    parquet = tmp_path / "books_pq.parquet"
    table = pa.table(
        {"title": [str(r["Title"]) for r in records], "isbn": [r["isbn"] for r in records]}
    )
    pq.write_table(table, parquet)
    _, name = create_and_import(running, parquet)
    assert [row[0] for row in running.rows(name, "isbn", "isbn")] == [r["isbn"] for r in records]


def test_a_pandas_index_without_a_name_is_left_out_as_the_notes_say(running, tmp_path):
    path = tmp_path / "pandas_export.csv"
    path.write_text(",Order ID,amount\n" + "".join(f"{i},o{i},{i}.25\n" for i in range(ROWS)))
    hint = "--options '{\"ignore_unknown_columns\": true}'"
    created = run(running, "datasets", "create", "--from-sample", str(path), "--yes")
    assert created.returncode == 0, created.stderr
    assert hint in created.stderr
    loaded = run(
        running, "import", str(path), "-d", "pandas_export", "--wait", "--json",
        "--options", '{"ignore_unknown_columns": true}',
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    assert json.loads(loaded.stdout)["successful_operations"] == ROWS
    stored = running.rows("pandas_export", "order_id, amount", "amount")
    assert [(row[0], decimal.Decimal(str(row[1]))) for row in stored][:2] == [
        ("o0", decimal.Decimal("0.25")),
        ("o1", decimal.Decimal("1.25")),
    ]
