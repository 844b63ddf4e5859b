"""CPU of applying validated chunks to PostgreSQL: this thread's, and PostgreSQL's backends'.

What the server's stream threads spend per chunk on the insert path (the target's conversion,
the COPY, the lock and ledger statements and the commit), without reading, validating or the
event loop; and what PostgreSQL spends receiving it (benchmarks/cpu.py). The chunks are read and
validated beforehand, as validation cuts them; each pass applies them all, one transaction each,
into a fresh database, and ends with an md5 of every stored column, so that two checkouts can be
compared for speed and for the rows they store:

    PYTHONPATH=<other checkout>/src uv run --group dev python -m benchmarks.apply_cpu
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow as pa

from batchyard.domain.batches import Operation
from batchyard.domain.reading import Reading
from batchyard.pipeline.process_memory import return_large_blocks
from batchyard.pipeline.validate import validate_chunk
from batchyard.targets.target import open_target
from benchmarks.chunk_cpu import DATASET, first_chunks
from benchmarks.cpu import CpuMeter
from benchmarks.datagen import write_orders_csv
from benchmarks.postgres_import import fresh_database, postgres_server
from benchmarks.validation_cpu import validation_memory

#: Every stored column as PostgreSQL prints it, in key order.
DIGEST = (
    "SELECT count(*), md5(string_agg(concat_ws(',', id, email, amount, status, ts, user_id),"
    " '|' ORDER BY id)) FROM orders"
)


def validated_chunks(path: Path) -> list[pa.Table]:
    """Every chunk of ``path`` as validation leaves it (valid records, record numbers)."""
    reading, memory = Reading.of(DATASET), validation_memory()
    raw = first_chunks(path, 1 << 40)
    return [validate_chunk(chunk, DATASET, reading, *memory).valid for chunk in raw]


def one_pass(server: str, chunks: list[pa.Table]) -> tuple[float, float, str]:
    """(this thread's CPU seconds, PostgreSQL's, the table's digest) of applying ``chunks``."""
    with fresh_database(server) as url:
        target = open_target(url)
        try:
            target.ensure_table(DATASET)
            with target.transaction() as warm:  # the connection, opened before the meter
                warm.claim_ledger("warm-up", 0)
            with CpuMeter(url) as meter:
                started = time.thread_time()
                for index, valid in enumerate(chunks):
                    with target.transaction() as tx:
                        tx.apply_chunk(DATASET, "bench", index, Operation.INSERT, valid)
                spent = time.thread_time() - started
        finally:
            target.close()
        with psycopg.connect(url) as conn:
            row = conn.execute(DIGEST).fetchone()
    digest = f"{row[0]} rows, md5 {row[1]}" if row else "no rows"
    return spent, meter.postgres_seconds, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    return_large_blocks()  # as serve and worker do
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        path = Path(tmp) / "orders.csv"
        write_orders_csv(path, args.rows, bad_every=0)
        chunks = validated_chunks(path)
    with postgres_server() as server:
        one_pass(server, chunks[:1])  # first uses: imports, caches
        for number in range(args.passes):
            own, postgres, digest = one_pass(server, chunks)
            print(
                f"pass {number}: {len(chunks)} chunks, thread CPU {own:.3f} s + PostgreSQL "
                f"{postgres:.3f} s = {own + postgres:.3f} s; {digest}; "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
