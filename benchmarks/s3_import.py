"""The same import on local-disk storage and on S3 (SeaweedFS on loopback), side by side.

Measures what moving every object (upload, staged chunks, results) to an S3-compatible server
costs, and that memory stays flat either way. The local-disk run is the baseline of this run.

    uv run --group dev python -m benchmarks.s3_import --rows 1000000

Reported per mode: upload → completed wall time, records per second, the server's peak RSS
(VmHWM), and the time to fetch the results file through the ``?download=true`` link.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support.s3server import STORAGE_BUCKET, S3Server
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

from benchmarks.datagen import ORDERS_SCHEMA
from benchmarks.harness import generated_orders, print_stage_times, timed_import


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    download_seconds: float
    peak_rss_bytes: int
    rows: int


def run_import(
    name: str, csv_path: Path, data_dir: Path, rows: int, env: dict[str, str]
) -> Measurement:
    """Upload (streamed) → completed, then GET the results through the signed download link."""
    server = BatchyardServer(data_dir, env=env)
    try:
        server.start()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            batch_id, seconds = timed_import(http, csv_path, rows)
            print_stage_times(http, batch_id, name)
            link = http.get(f"/batches/{batch_id}", params={"download": "true"}).json()["download"]
            started = time.perf_counter()
            with httpx.stream("GET", link["url"], timeout=600) as response:
                response.raise_for_status()
                for _ in response.iter_bytes(1 << 20):
                    pass
            download_seconds = time.perf_counter() - started
        return Measurement(name, seconds, download_seconds, server.peak_rss_bytes(), rows)
    finally:
        server.stop()


def report(measurements: list[Measurement], size_bytes: int) -> None:
    baseline = measurements[0]
    print()
    print(f"{baseline.rows:,} records, {size_bytes / 1e6:,.0f} MB CSV")
    header = (
        f"{'':<20} {'seconds':>9} {'records/s':>12} {'peak RSS MB':>12} "
        f"{'x local':>8} {'results GET s':>14}"
    )
    print(header)
    print("-" * len(header))
    for m in measurements:
        print(
            f"{m.name:<20} {m.seconds:9.2f} {m.rows / m.seconds:12,.0f} "
            f"{m.peak_rss_bytes / 2**20:12,.0f} {m.seconds / baseline.seconds:7.2f}x "
            f"{m.download_seconds:14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with generated_orders(args.rows) as csv_path:
        workdir = csv_path.parent
        local = run_import("local disk", csv_path, workdir / "local", args.rows, {})
        s3 = S3Server(workdir / "s3").start()
        try:
            env = {**s3.env, "BATCHYARD_STORAGE_URL": f"s3://{STORAGE_BUCKET}/bench"}
            remote = run_import("S3 (SeaweedFS)", csv_path, workdir / "s3-mode", args.rows, env)
        finally:
            s3.stop()
        report([local, remote], csv_path.stat().st_size)


if __name__ == "__main__":
    main()
