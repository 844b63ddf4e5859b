"""``batchyard worker`` processes and the environment a queue-mode deployment shares."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from .servers import BatchyardServer

#: Fast failure detection for tests: heartbeats every 0.5 s, dead after 3 s, sweep every second.
QUEUE_ENV = {
    "BATCHYARD_RUNNER": "queue",
    "BATCHYARD_SERVE_WORKER": "false",
    "BATCHYARD_QUEUE_HEARTBEAT_SECONDS": "0.5",
    "BATCHYARD_QUEUE_STALLED_SECONDS": "3",
    "BATCHYARD_QUEUE_SWEEP_SECONDS": "1",
}


def queue_env(pg_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """What the API and every worker of one deployment share: database, storage, queue timing."""
    return {
        **QUEUE_ENV,
        "BATCHYARD_DATABASE_URL": pg_url.replace("postgresql://", "postgresql+psycopg://"),
        "BATCHYARD_STORAGE_URL": (data_dir / "blobs").resolve().as_uri(),
        **extra,
    }


class WorkerProcess:
    """One ``batchyard worker`` process, restartable after a kill -9."""

    def __init__(
        self, data_dir: Path, env: dict[str, str], name: str, *, args: Sequence[str] = ()
    ) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **env, "BATCHYARD_DATA_DIR": str(data_dir)}
        self.log_path = data_dir.parent / f"{name}.log"
        self.args = ["--log-level", "warning", *args]  # a later --log-level wins
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "batchyard", "worker", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_bytes(self) -> int:
        """Peak resident memory of the worker so far (Linux VmHWM)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def kill(self) -> None:
        """kill -9: no shutdown handlers run, the heartbeat just stops."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def queue_deployment(
    pg_url: str,
    data_dir: Path,
    *,
    chunk_bytes: int | None,
    workers: int = 2,
    worker_args: Sequence[str] = (),
) -> Iterator[tuple[BatchyardServer, list[WorkerProcess]]]:
    """An API-only server and ``workers`` worker processes sharing one PostgreSQL database
    (``chunk_bytes`` None: the default chunk size)."""
    sizes = {} if chunk_bytes is None else {"BATCHYARD_CHUNK_BYTES": str(chunk_bytes)}
    env = queue_env(pg_url, data_dir, **sizes)
    api = BatchyardServer(data_dir, env=env)
    pool = [WorkerProcess(data_dir, env, f"worker-{n}", args=worker_args) for n in range(workers)]
    try:
        api.start()
        for worker in pool:
            worker.start()
        yield api, pool
    finally:
        for worker in pool:
            worker.stop()
        api.stop()


def live_jobs_after(pg_url: str, within: float) -> list[str]:
    """Task names of jobs still waiting or running (the sweep's aside) once ``within`` s passed
    or none is left, whichever comes first.

    A helper job may still be ending when its batch completes, and one killed with its worker
    is handed back by the sweep only seconds later: left-over jobs are judged after a while.
    """
    deadline = time.monotonic() + within
    with psycopg.connect(pg_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT task_name FROM batchyard.procrastinate_jobs"
                " WHERE status IN ('todo', 'doing') AND task_name <> 'batchyard.sweep'"
            ).fetchall()
            if not rows or time.monotonic() > deadline:
                return [str(row[0]) for row in rows]
            time.sleep(0.3)
