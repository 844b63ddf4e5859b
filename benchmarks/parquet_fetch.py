"""Bytes fetched, peak memory and CPU of reading a Parquet input as validation does, on local
disk and on S3 (SeaweedFS on loopback), for row-group and column layouts side by side.

    uv run --group dev python -m benchmarks.parquet_fetch --mb 100 [--before /work/main/src]

Each read runs in a fresh process (after a small read, so that code and pools are warm). On S3
the bytes fetched are what the server sent, counted by a loopback proxy in front of it; on
local disk, what the process read (``rchar`` of /proc/self/io). ``--before`` reads with another
checkout's ``src`` instead of this one's, to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tests.support.counting_proxy import CountingProxy
from tests.support.s3server import STORAGE_BUCKET, S3Server


@dataclass(frozen=True)
class Layout:
    name: str
    columns: int
    text_bytes: int
    row_groups: int

    def rows(self, megabytes: float) -> int:
        return max(
            self.row_groups, int(megabytes * 1e6 / (8 + (self.columns - 1) * self.text_bytes))
        )


LAYOUTS = (
    Layout("6 columns, 1 row group", 6, 100, 1),
    Layout("6 columns, 4 row groups", 6, 100, 4),
    Layout("6 columns, 100 row groups", 6, 100, 100),
    Layout("30 columns, 1 row group", 30, 20, 1),
    Layout("30 columns, 100 row groups", 30, 20, 100),
)

#: Reads batch argv[4]'s input once warm; prints rows, peak RSS growth, CPU and bytes read.
_READ = """
import json, sys, time
from batchyard.pipeline.arrow_runtime import prepare_arrow
prepare_arrow()
from batchyard.domain.batches import Batch, BatchOptions, BatchStatus, InputFormat, Source
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.originals import InputReader
from batchyard.storage.blobs import BlobStore
from batchyard.storage.s3 import S3Connection

url, endpoint, columns, batch_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fields = (Column(name="id", type=ColumnType.INTEGER),) + tuple(
    Column(name=f"c{i}", type=ColumnType.STRING) for i in range(1, columns)
)
dataset = Dataset(name="items", columns=fields)
blobs = BlobStore.from_url(url, s3=S3Connection(endpoint) if endpoint != "-" else None)

def status(field):
    with open("/proc/self/status") as lines:
        return int(next(l for l in lines if l.startswith(field)).split()[1]) * 1024

def read_bytes():
    with open("/proc/self/io") as lines:
        return int(next(l for l in lines if l.startswith("rchar")).split()[1])

def read(name):
    batch = Batch(id=name, owner_id="u1", dataset="items", operation="insert",
        status=BatchStatus.VALIDATING, format=InputFormat.PARQUET, sources=(Source(None),),
        options=BatchOptions(), created_ts=0.0, updated_ts=0.0)
    chunks = InputReader(blobs, batch, dataset, 2 << 20, None).chunks()
    return sum(raw.record_count for raw, _ in chunks)

read(f"warm-{columns}")
print("ready", flush=True)
sys.stdin.readline()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
base, before, cpu = status("VmHWM:"), read_bytes(), time.process_time()
rows = read(batch_id)
print(json.dumps({"rows": rows, "growth": status("VmHWM:") - base,
                  "cpu": time.process_time() - cpu, "read": read_bytes() - before}), flush=True)
"""


def write(path: Path, layout: Layout, rows: int) -> int:
    """``rows`` records of an id and random text Parquet cannot compress; the file's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f"c{i}" for i in range(1, layout.columns)]
    schema = pa.schema([("id", pa.int64()), *((name, pa.string()) for name in names)])
    per_group = -(-rows // layout.row_groups)
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, rows, per_group):
            count = min(per_group, rows - first)
            size = layout.text_bytes
            offsets = pa.array(range(0, (count + 1) * size, size), pa.int32()).buffers()[1]
            texts = [
                pa.StringArray.from_buffers(
                    count, offsets, pa.py_buffer(os.urandom(count * size // 2).hex().encode())
                )
                for _ in names
            ]
            ids = pa.array(range(first, first + count), pa.int64())
            writer.write_table(pa.table([ids, *texts], schema=schema), row_group_size=count)
    return path.stat().st_size


def measure(args: list[str], env: dict[str, str], proxy: CountingProxy | None) -> dict[str, float]:
    """One read in a fresh process; with ``proxy``, the bytes it counted replace ``read``."""
    child = subprocess.Popen(
        [sys.executable, "-c", _READ, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.wait()
        raise RuntimeError(f"the reading process failed ({child.returncode})")
    if proxy is not None:
        proxy.reset()
    child.stdin.write("\n")
    child.stdin.flush()
    report: dict[str, float] = json.loads(child.stdout.readline())
    child.wait()
    if proxy is not None:
        report["read"] = proxy.received
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of each file, in MB")
    parser.add_argument("--before", help="read with this checkout's src directory instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="parquet-fetch-"))
    root = work / "blobs"
    sizes = {}
    for index, layout in enumerate(LAYOUTS):
        sizes[layout] = write(root / f"batches/f{index}/input/0", layout, layout.rows(args.mb))
    for columns in {layout.columns for layout in LAYOUTS}:
        write(root / f"batches/warm-{columns}/input/0", Layout("warm", columns, 20, 1), 1000)
    server = S3Server(work / "s3").start()
    try:
        client = server.client()
        for path in root.rglob("*"):
            if path.is_file():
                client.upload_file(str(path), STORAGE_BUCKET, f"p/{path.relative_to(root)}")
        env = {**os.environ, **server.env}
        if args.before:
            env["PYTHONPATH"] = args.before
        print(
            f"{'layout':28} {'storage':7} {'MB':>6} {'fetched MB':>10} {'ratio':>6} "
            f"{'peak +MiB':>9} {'CPU s':>6}"
        )
        print("-" * 80)
        with CountingProxy(int(server.endpoint.rsplit(":", 1)[1])) as proxy:
            for index, layout in enumerate(LAYOUTS):
                for storage, url, endpoint, counter in (
                    ("local", root.as_uri(), "-", None),
                    ("S3", f"s3://{STORAGE_BUCKET}/p", proxy.endpoint, proxy),
                ):
                    read = [url, endpoint, str(layout.columns), f"f{index}"]
                    got = measure(read, env, counter)
                    size, fetched = sizes[layout], got["read"]
                    print(
                        f"{layout.name:28} {storage:7} {size / 1e6:6.1f} {fetched / 1e6:10.1f} "
                        f"{fetched / size:5.2f}x {got['growth'] / 2**20:9.1f} {got['cpu']:6.2f}",
                        flush=True,
                    )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
