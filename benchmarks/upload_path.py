"""The upload path alone: a streamed POST until the batch is copied, against what the disk and
the CPU can do with the same file in the same run.

Each upload is sent with its SHA-256; the server's CPU is read between the first byte and the
202 answer (the upload's, and the first steps of the pipeline the upload hands the batch to),
the time to ``validating`` from the batch's history, and the batch is then cancelled: nothing
after the copy is measured. Beside it, in the same round, ``sha256sum``, ``openssl dgst -sha256``
(the SHA-256 code Python's hashlib runs) and ``cp`` of the file (to the server's data
directory's disk) say what the machine does with the bytes at all. With
``--before`` another checkout's server (its ``src`` first on PYTHONPATH) is measured alternately.

    uv run --group dev python -m benchmarks.upload_path --rows 1000000 --before /tmp/main/src
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from tests.support.servers import ADMIN_TOKEN, BatchyardServer
from tests.support.uploads import file_chunks

from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv
from benchmarks.harness import sha256_of


def cpu_seconds(process: psutil.Process, pid: int) -> tuple[float, float]:
    """The process's CPU seconds (threads that have ended included) and its main thread's."""
    times = process.cpu_times()
    loop = next(t.user_time + t.system_time for t in process.threads() if t.id == pid)
    return times.user + times.system, loop


def upload_once(csv_path: Path, digest: str, data: Path, env: dict[str, str]) -> dict[str, float]:
    """Wall and server CPU of one upload to a fresh server: the figures of the run."""
    shutil.rmtree(data, ignore_errors=True)
    server = BatchyardServer(data, env=env).start()
    try:
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        main_thread = server.process.pid
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            before = cpu_seconds(process, main_thread)
            first_byte = time.time()
            started = time.perf_counter()
            answer = http.post(
                "/batches",
                params={"dataset": "orders", "format": "csv", "hash": digest},
                content=file_chunks(csv_path),
            )
            wall = time.perf_counter() - started
            after = cpu_seconds(process, main_thread)
            answer.raise_for_status()
            stamps = _stamps_until_validating(http, answer.json()["batch"])
        cpu, loop = after[0] - before[0], after[1] - before[1]
        return {
            "wall": wall,
            "validating": stamps["validating"] - first_byte,
            "copying": stamps["copied"] - stamps["copying"],
            "cpu": cpu,
            "loop": loop,
            "threads": cpu - loop,
        }
    finally:
        server.stop()


def _stamps_until_validating(http: httpx.Client, batch_id: str) -> dict[str, float]:
    """When the batch entered each status, once it has entered validating; then cancelled."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        history = http.get(f"/batches/{batch_id}/history").json()
        stamps = {entry["status"]: float(entry["updated_ts"]) for entry in history}
        if "validating" in stamps:
            http.post(f"/batches/{batch_id}/cancel")
            return stamps
        time.sleep(0.01)
    raise RuntimeError(f"batch {batch_id} did not start validating: {stamps}")


def timed(command: list[str]) -> dict[str, float]:
    """Wall and CPU (user + system of the child) of one command."""
    usage = os.times()
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    done = os.times()
    cpu = done.children_user - usage.children_user + done.children_system - usage.children_system
    return {
        "wall": wall,
        "validating": wall,
        "copying": wall,
        "cpu": cpu,
        "loop": cpu,
        "threads": 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src, measured alternately")
    parser.add_argument("--workdir", type=Path, help="keep the file here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchyard-upload-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv_path = work / f"orders-{args.rows}.csv"
        if not csv_path.exists():
            write_orders_csv(csv_path, args.rows)
        size = csv_path.stat().st_size
        digest = sha256_of(csv_path)
        copy = work / "copy.csv"
        contenders: dict[str, dict[str, str] | list[str]] = {
            "sha256sum": ["sha256sum", str(csv_path)],
            "openssl": ["openssl", "dgst", "-sha256", str(csv_path)],  # SHA-NI, as hashlib
            "cp": ["cp", str(csv_path), str(copy)],
        }
        if args.before:
            contenders["before"] = {"PYTHONPATH": str(args.before.resolve())}
        contenders["after"] = {}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            # Every other round in reverse: whoever runs second pays for the writeback of the
            # first one's bytes (an A/A run of one checkout measured 60% more wall second).
            order = list(contenders.items())
            for name, how in order if round_number % 2 == 0 else reversed(order):
                os.sync()  # no earlier run's dirty pages left to flush during this one
                if isinstance(how, list):
                    run = timed(how)
                    copy.unlink(missing_ok=True)
                else:
                    run = upload_once(csv_path, digest, work / f"data-{name}", how)
                runs[name].append(run)
                print(f"round {round_number}: {name:<10} " + _figures(run, size), flush=True)
        print(f"\nmedians, {size / 1e6:.0f} MB, load {os.getloadavg()[0]:.2f}:")
        for name, rows in runs.items():
            middle = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            print(f"  {name:<10} " + _figures(middle, size))


def _figures(run: dict[str, float], size: int) -> str:
    return (
        f"wall {run['wall']:5.2f} s ({size / run['wall'] / 1e6:5.0f} MB/s), to validating "
        f"{run['validating']:5.2f} s ({size / run['validating'] / 1e6:5.0f} MB/s), copying "
        f"{run['copying']:5.2f} s, CPU {run['cpu']:5.2f} s (loop {run['loop']:5.2f}, "
        f"other threads {run['threads']:5.2f})"
    )


if __name__ == "__main__":
    main()
