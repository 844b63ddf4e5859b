"""Every benchmark in ``benchmarks/`` runs, at a tiny size, and prints its figures.

A benchmark nobody runs rots silently (status_load crashed on PostgreSQL for weeks after
``fresh_database`` changed its arguments). Here each one runs as a user runs it
(``python -m benchmarks.NAME``, on both backends where it has a ``--backend``) with the fewest
records its flags allow, and must exit 0 and print its table. Only the size flags are passed, so a
new flag with a default does not break this test. The runs share the machine's cores in a few
parallel streams: the figures mean nothing here, only that the benchmarks still work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
#: Modules of benchmarks/ that are libraries of the others, not programs.
LIBRARIES = {"__init__", "harness", "cpu", "ab_rounds"}
#: Runs sharing the cores at once: enough to overlap the servers' start-up waits, few enough
#: that a 2-core machine does not time them out.
PARALLEL = 3


@dataclass(frozen=True)
class Run:
    """One benchmark invocation and a line its output must have (its table's header)."""

    name: str
    module: str
    args: tuple[str, ...]
    prints: str
    needs_wrk: bool = False


RUNS = [
    # Two of its attacks, each on a server of its own: the trickle attack alone waits out the
    # sources' 30 s minimum-rate window.
    Run(
        "hostile_sources",
        "hostile_sources",
        ("--inner-mib", "1", "--interval", "0.2", "--only", "stacked", "ssrf"),
        r"SSRF, private sources not allowed:\n\s+source http://2130706433:\d+/…: HTTP 422",
    ),
    Run(
        "postgres_import",
        "postgres_import",
        ("--rows", "2000", "--pandas-rows", "1000", "--workers", "0"),
        r"psql \\copy .* 1\.00x",
    ),
    Run("s3_import", "s3_import", ("--rows", "2000"), r"S3 \(SeaweedFS\) +[\d.]+ +[\d,]+"),
    *(
        Run(
            f"status_load-{backend}",
            "status_load",
            ("--backend", backend, "--seconds", "1", "--connections", "4", "--import-rows", "2000"),
            r"during 2,000-row imports[^\n]*\n.*CPU µs/req +waited.*\n-+\n/health +[\d,]+",
            needs_wrk=True,
        )
        for backend in ("sqlite", "postgresql")
    ),
    *(
        Run(
            f"sse_load-{backend}",
            "sse_load",
            ("--backend", backend, "--seconds", "1", "--rows", "2000", "--followers", "2"),
            r"followers .*streams ended.*\n-+\n +2 +[\d.]+ +[\d,]+ .* 2/2 ",
            needs_wrk=True,
        )
        for backend in ("sqlite", "postgresql")
    ),
    Run(
        "parquet_fetch",
        "parquet_fetch",
        ("--mb", "0.2"),
        r"6 columns, 1 row group +S3 +[\d.]+ +[\d.]+ +[\d.]+x",
    ),
    *(
        Run(
            f"loop_cpu-{backend}",
            "loop_cpu",
            ("--backend", backend, "--rows", "2000", "--rounds", "1"),
            r"medians +wall +loop upload +loop pipeline.*\n-+\nafter +[\d.]+ ",
        )
        for backend in ("sqlite", "postgresql")
    ),
    Run("sqlite_import", "sqlite_import", ("--rows", "2000"), r"sqlite3 \.import +[\d.]+ .*1\.00x"),
    Run("http_operation", "http_operation", ("--records", "2000"), r"2,000 of 2,000 records"),
    Run("csv_reader", "csv_reader", ("--rows", "2000"), r"reader +\d+ MB/s of CPU"),
    Run("datagen", "datagen", ("orders.csv", "2000"), r"wrote 2000 records \(20 bad\)"),
    Run(
        "validation_cpu",
        "validation_cpu",
        ("--rows", "2000", "--repeat", "1"),
        r"1 in 100 invalid +[\d.]+ +[\d.]+ +20 ",
    ),
    # This checkout against itself: both passes run and infer the same schemas.
    Run(
        "inference_cpu",
        "inference_cpu",
        ("--repeat", "1", "--before", str(ROOT / "src")),
        r"orders\.csv: now [\d.]+ s, before [\d.]+ s; same schema: True",
    ),
    Run(
        "chunk_cpu",
        "chunk_cpu",
        ("--rows", "2000", "--chunks", "1", "--passes", "1", "--trim-every", "1"),
        r"trim every 1 chunks: ms of CPU per chunk, clean [\d.]+, 1 in 100 invalid [\d.]+",
    ),
    Run(
        "apply_cpu",
        "apply_cpu",
        ("--rows", "2000", "--passes", "1"),
        r"pass 0: 1 chunks, thread CPU [\d.]+ s \+ PostgreSQL [\d.]+ s = [\d.]+ s;"
        r" 2000 rows, md5 [0-9a-f]{32}",
    ),
    Run(
        "sqlite_writer",
        "sqlite_writer",
        ("--rows", "2000", "--rounds", "1"),
        r"batchyard's writer, chunk by chunk +[\d.]+ s",
    ),
    # This checkout against itself, beside the tools it is measured against.
    Run(
        "upload_path",
        "upload_path",
        ("--rows", "2000", "--rounds", "2", "--before", str(ROOT / "src")),
        r"medians, 0 MB, load [\d.]+:\n +sha256sum +wall(.|\n)*\n +after +wall +[\d.]+ s",
    ),
    # This checkout against itself: the A/B machinery runs, whatever it compares.
    Run(
        "postgres_ab",
        "postgres_ab",
        (
            "--rows",
            "2000",
            "--rounds",
            "1",
            "--before",
            str(ROOT / "src"),
            "--invalid-every",
            "100",
        ),
        r"medians +wall.*\n-+\npsql \\copy +[\d.]+ +1\.00(.|\n)*\nafter invalid +[\d.]+",
    ),
    Run(
        "sqlite_ab",
        "sqlite_ab",
        (
            "--rows",
            "2000",
            "--rounds",
            "1",
            "--before",
            str(ROOT / "src"),
            "--invalid-every",
            "100",
        ),
        r"medians +wall.*\n-+\nsqlite3 \.import +[\d.]+ +1\.00(.|\n)*\nafter invalid +[\d.]+",
    ),
]


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str
    seconds: float


def run_benchmark(run: Run, workdir: Path, env: dict[str, str]) -> Outcome:
    directory = workdir / run.name
    directory.mkdir()
    args = list(run.args)
    if run.module == "csv_reader":
        args += ["--dir", str(directory)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{run.module}", *args],
            cwd=directory,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=400,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.output if isinstance(expired.output, str) else ""
        return Outcome(-1, output + "\n(timed out)", time.monotonic() - started)
    return Outcome(done.returncode, done.stdout, time.monotonic() - started)


def benchmark_env() -> dict[str, str]:
    """This environment without the test run's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHYARD_", "PYTEST_"))}
    # Each run starts Python processes (servers, workers) that import the whole service: where
    # the environment forbids caching bytecode, each would compile every module again, which
    # on a busy machine outlasts a server's start-up deadline.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture(scope="module")
def outcomes(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every run at once (a few at a time), so the module costs about its longest benchmark."""
    env = {**benchmark_env(), "BATCHYARD_TEST_PG": pg_server}
    workdir = tmp_path_factory.mktemp("benchmarks")
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {
            run.name: pool.submit(run_benchmark, run, workdir, env)
            for run in RUNS
            if not run.needs_wrk or shutil.which("wrk")
        }
        return {name: future.result() for name, future in futures.items()}


def test_every_benchmark_module_is_run_here() -> None:
    programs = {p.stem for p in BENCHMARKS.glob("*.py")} - LIBRARIES
    assert programs == {run.module for run in RUNS}


def test_the_benchmarks_with_a_backend_run_on_both() -> None:
    for path in BENCHMARKS.glob("*.py"):
        if '"--backend"' in path.read_text():
            backends = {
                run.args[run.args.index("--backend") + 1] for run in RUNS if run.module == path.stem
            }
            assert backends == {"sqlite", "postgresql"}, path.stem


@pytest.mark.timeout(900)
@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_benchmark_runs_and_prints_its_table(run: Run, outcomes: dict[str, Outcome]) -> None:
    if run.needs_wrk and shutil.which("wrk") is None:
        pytest.fail(f"wrk is not installed, and {run.module} needs it: apt-get install wrk")
    outcome = outcomes[run.name]
    assert outcome.returncode == 0, outcome.output[-4000:]
    assert re.search(run.prints, outcome.output), outcome.output[-4000:]


def test_a_workdir_can_be_used_again(tmp_path: Path) -> None:
    """``--workdir`` keeps the files to look at afterwards; the next run there starts afresh
    (it stopped at the baseline's table, already in the database left behind)."""
    run = next(run for run in RUNS if run.module == "sqlite_import")
    args = [*run.args, "--workdir", str(tmp_path / "kept")]
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.sqlite_import", *args],
            cwd=tmp_path,
            env={**benchmark_env(), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout[-4000:]
        assert re.search(run.prints, done.stdout), done.stdout[-4000:]
