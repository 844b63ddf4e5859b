"""The SQLite target's writer alone: validated orders applied chunk by chunk, vs one bulk insert.

On the embedded default the target has one writer, and the whole pipeline waits for it: this
measures just that path, without HTTP, parsing or validation. The baseline, in the same run on
the same Arrow data, is the least a writer can do: one ADBC bulk insert of every record in one
transaction into a fresh file with SQLite's defaults. batchyard's writer also claims each chunk
in the ledger, converts its values to SQLite's forms and commits chunk by chunk; the ratio says
what that costs. The writer's wall time is split into claim (BEGIN and the ledger row), apply
(conversion and bulk insert) and commit.

    uv run --group dev python -m benchmarks.sqlite_writer --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import adbc_driver_sqlite.dbapi
import pyarrow as pa
import pyarrow.csv as pacsv

from batchyard.domain.batches import Operation
from batchyard.domain.outcomes import RECORD_NUMBER, ChunkOutcome
from batchyard.domain.schema import Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.targets import open_target
from batchyard.targets.target import ChunkClaim
from batchyard.targets.values import for_sqlite
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

#: Records per chunk: what 8 MiB of the orders CSV (BATCHYARD_CHUNK_BYTES' default) holds.
PER_CHUNK = 83_000


def validated_orders(directory: Path, rows: int, dataset: Dataset) -> pa.Table:
    """``rows`` orders as validation hands them to the target (the valid schema)."""
    csv_path = directory / "orders.csv"
    write_orders_csv(csv_path, rows, bad_every=0)
    schema = valid_schema(dataset)
    types = {f.name: f.type for f in schema if f.name != RECORD_NUMBER}
    types["ts"] = pa.timestamp("us")  # the file's wall clock is UTC
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=types))
    numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    return table.append_column(RECORD_NUMBER, numbers).cast(schema)


def bulk_insert(path: Path, data: pa.Table) -> float:
    """Seconds for one ADBC bulk insert of ``data`` in one transaction (table created by it)."""
    started = time.perf_counter()
    with adbc_driver_sqlite.dbapi.connect(str(path)) as connection:
        with connection.cursor() as cursor:
            cursor.adbc_ingest("orders", data, mode="create")
        connection.commit()
    return time.perf_counter() - started


def batchyard_writer(path: Path, dataset: Dataset, valid: pa.Table) -> Counter[str]:
    """Seconds per phase for applying ``valid`` chunk by chunk through batchyard's Target."""
    target = open_target(f"sqlite:///{path}")
    phases: Counter[str] = Counter()
    try:
        target.ensure_table(dataset)
        for index, start in enumerate(range(0, valid.num_rows, PER_CHUNK)):
            chunk = valid.slice(start, PER_CHUNK)
            began = time.perf_counter()
            claim = target.claim_chunk("benchmark", index, wait=True)
            assert isinstance(claim, ChunkClaim)
            claimed = time.perf_counter()
            failures = claim.transaction.apply_records(dataset, Operation.INSERT, chunk)
            applied = time.perf_counter()
            claim.commit(ChunkOutcome(index, chunk.num_rows - failures.num_rows, failures))
            phases["claim"] += claimed - began
            phases["apply"] += applied - claimed
            phases["commit"] += time.perf_counter() - applied
        if target.row_count(dataset.name) != valid.num_rows:
            raise RuntimeError("the target does not hold every record")
    finally:
        target.close()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, medians")
    args = parser.parse_args()
    dataset = Dataset.from_dict(ORDERS_SCHEMA)
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        directory = Path(tmp)
        print(f"generating {args.rows:,} records …")
        valid = validated_orders(directory, args.rows, dataset)
        converted = for_sqlite(valid.drop_columns([RECORD_NUMBER]), dataset)
        baselines: list[float] = []
        runs: list[Counter[str]] = []
        for round_ in range(args.rounds):
            baselines.append(bulk_insert(directory / f"baseline-{round_}.db", converted))
            runs.append(batchyard_writer(directory / f"target-{round_}.db", dataset, valid))
    baseline = sorted(baselines)[len(baselines) // 2]
    totals = sorted(runs, key=lambda phases: sum(phases.values()))
    median = totals[len(totals) // 2]
    total = sum(median.values())
    print(f"\n{args.rows:,} records, {args.rounds} rounds, medians")
    print(f"  one ADBC bulk insert, one transaction   {baseline:7.2f} s")
    phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in median.items())
    print(f"  batchyard's writer, chunk by chunk      {total:7.2f} s  ({phases})")
    print(f"  ratio                                   {total / baseline:7.2f}x")


if __name__ == "__main__":
    main()
