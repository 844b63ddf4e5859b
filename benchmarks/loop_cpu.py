"""The event loop thread's CPU during one import, split into the upload and the rest.

The server's event loop is its main thread; its worker threads (reading, validating, COPY),
obstore's and the drivers' are the others. A sampler reads ``/proc/<pid>/task/*/stat`` every
SAMPLE_SECONDS while a 1M-row CSV import runs as ``benchmarks.harness.timed_import`` drives it
(streamed upload, the client polling every 0.1 s), and the batch's history says when it left the
upload (``validating``): the loop's CPU before that is the upload's, after it the pipeline's
bookkeeping (status reads, counters, the client's polls, the queue worker, blob puts). With
``--before`` another checkout's ``src`` runs in alternation, round after round, on the same file.

    uv run --group dev python -m benchmarks.loop_cpu --backend postgresql --before /tmp/main/src
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

from benchmarks.datagen import ORDERS_SCHEMA
from benchmarks.harness import generated_orders, sha256_of, timed_import
from benchmarks.postgres_import import deployment, fresh_database, postgres_server

SAMPLE_SECONDS = 0.02
TICK = 1 / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every thread of ``pid``, by thread id."""
    spent: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between the listing and the read
        spent[int(task.name)] = (int(fields[11]) + int(fields[12])) * TICK
    return spent


class ThreadSampler:
    """(wall clock, the main thread's CPU, all threads' CPU) of ``pid`` every SAMPLE_SECONDS;
    a thread that ended keeps counting with its last reading."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ThreadSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        self._last.update(thread_seconds(self.pid))
        self.samples.append((time.time(), self._last.get(self.pid, 0.0), sum(self._last.values())))

    def main_at(self, when: float) -> float:
        """The main thread's CPU at wall time ``when`` (the first sample at or after it)."""
        return next((s[1] for s in self.samples if s[0] >= when), self.samples[-1][1])


@dataclass(frozen=True)
class Run:
    wall: float
    loop_upload: float
    loop_pipeline: float
    others: float
    pipeline_seconds: float


def measured(http: httpx.Client, pid: int, csv_path: Path, rows: int) -> Run:
    """One import with its threads sampled, split at the batch's ``validating`` transition."""
    with ThreadSampler(pid) as sampler:
        batch_id, wall = timed_import(http, csv_path, rows, digest=sha256_of(csv_path))
    history = http.get(f"/batches/{batch_id}/history").json()
    stamps = {entry["status"]: float(entry["updated_ts"]) for entry in history}
    first, last = sampler.samples[0], sampler.samples[-1]
    split = sampler.main_at(stamps["validating"])
    loop = last[1] - first[1]
    return Run(
        wall,
        split - first[1],
        loop - (split - first[1]),
        last[2] - first[2] - loop,
        max(stamps["completed"] - stamps["validating"], 0.001),  # stamps have 3 decimals
    )


@contextmanager
def serving(backend: str, data: Path, env: dict[str, str]) -> Iterator[tuple[httpx.Client, int]]:
    """A server of ``backend`` with the orders dataset: an admin client and the server's pid."""
    shutil.rmtree(data, ignore_errors=True)
    if backend == "postgresql":
        with (
            postgres_server() as server,
            fresh_database(server) as url,
            deployment(url, data, 0, **env) as (http, process, _),
        ):
            assert process.process is not None
            yield http, process.process.pid
        return
    sqlite = BatchyardServer(data, env=env).start()
    try:
        assert sqlite.process is not None
        with httpx.Client(
            base_url=sqlite.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            yield http, sqlite.process.pid
    finally:
        sqlite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src, run in alternation")
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    args = parser.parse_args()
    checkouts = {"after": {}} if args.before is None else {}
    if args.before is not None:
        checkouts = {"before": {"PYTHONPATH": str(args.before.resolve())}, "after": {}}
    runs: dict[str, list[Run]] = {name: [] for name in checkouts}
    with generated_orders(args.rows, args.workdir) as csv_path:
        for round_number in range(args.rounds):
            for name, env in checkouts.items():
                with serving(args.backend, csv_path.parent / f"loop-{name}", env) as (http, pid):
                    run = measured(http, pid, csv_path, args.rows)
                runs[name].append(run)
                print(
                    f"round {round_number}: {name:<7} wall {run.wall:6.2f} s, event loop: upload"
                    f" {run.loop_upload:5.2f} s, validating to completed {run.loop_pipeline:5.2f}"
                    f" s in {run.pipeline_seconds:5.2f} s; other threads {run.others:5.2f} s",
                    flush=True,
                )
    report(runs)


def report(runs: dict[str, list[Run]]) -> None:
    print()
    header = (
        f"{'medians':<8} {'wall':>7} {'loop upload':>12} {'loop pipeline':>14}"
        f" {'per s':>6} {'others':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, rows in runs.items():
        pipeline = statistics.median(r.loop_pipeline for r in rows)
        per_second = statistics.median(r.loop_pipeline / r.pipeline_seconds for r in rows)
        print(
            f"{name:<8} {statistics.median(r.wall for r in rows):7.2f}"
            f" {statistics.median(r.loop_upload for r in rows):12.2f} {pipeline:14.2f}"
            f" {per_second:6.3f} {statistics.median(r.others for r in rows):7.2f}"
        )


if __name__ == "__main__":
    main()
