"""CPU seconds of a run: its own processes plus the PostgreSQL backends serving its database.

On a shared machine wall time moves with everybody else's load; the CPU a run needs barely
does. On 2 cores a pipeline can only beat ``psql \\copy`` (one backend, one core) if it needs at
most twice its CPU, so the CPU ratio says how far the wall-time goal is within reach, whatever
the load was. Backends are found in ``pg_stat_activity`` and read with psutil every
SAMPLE_SECONDS (PostgreSQL on this machine only): a backend's last few milliseconds before it
exits are missed, which understates short-lived sessions (``psql``'s) a little, never ours.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

import psutil
import psycopg

SAMPLE_SECONDS = 0.05


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class CpuMeter:
    """CPU used by ``pids`` and by ``url``'s database backends between enter and exit."""

    def __init__(self, url: str, pids: Sequence[int] = ()) -> None:
        self.url = url
        self.processes = [psutil.Process(pid) for pid in pids]
        self.process_seconds = 0.0
        self.postgres_seconds = 0.0
        self._start: list[float] = []
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> CpuMeter:
        self._start = [cpu_seconds(p) for p in self.processes]
        self._connection = psycopg.connect(self.url, autocommit=True)
        self._sample(entering=True)
        self._sampler.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._sampler.join()
        self._sample()
        self._connection.close()
        ends = [cpu_seconds(p) for p in self.processes]
        spent = (end - start for start, end in zip(self._start, ends, strict=True))
        self.process_seconds = sum(spent)
        self.postgres_seconds = sum(
            last - self._first.get(pid, 0.0) for pid, last in self._last.items()
        )

    @property
    def seconds(self) -> float:
        return self.process_seconds + self.postgres_seconds

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self, *, entering: bool = False) -> None:
        rows = self._connection.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        for (pid,) in rows:
            try:
                seconds = cpu_seconds(psutil.Process(pid))
            except psutil.Error:  # exited meanwhile, or PostgreSQL runs elsewhere
                continue
            if entering:
                self._first[pid] = seconds  # already running: count only what comes next
            self._last[pid] = seconds
