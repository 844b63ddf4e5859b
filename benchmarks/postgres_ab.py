"""A/B rounds on PostgreSQL: this checkout's server against another checkout's, and ``psql \\copy``.

On a shared machine one run says little: the same build's wall time can double from one minute
to the next. This alternates the contenders round after round on the same file, each on a fresh
database, and prints every run and the medians of wall time and CPU seconds (own processes plus
PostgreSQL backends, benchmarks/cpu.py). The other checkout's ``src`` goes first on the server's
PYTHONPATH; the dependencies are this one's.

    git -C /path/to/repo archive main src | tar -x -C /tmp/main-src
    uv run --group dev python -m benchmarks.postgres_ab --rows 1000000 --before /tmp/main-src/src

With ``--invalid-every N`` each checkout also imports, in the same round, the same number of
records with one in N invalid: what a file with bad records costs, next to the clean file.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.ab_rounds import ab_parser, medians
from benchmarks.ab_rounds import contenders as ab_contenders
from benchmarks.cpu import CpuMeter
from benchmarks.harness import generated_orders, sha256_of, timed_import
from benchmarks.postgres_import import (
    CPU,
    deployment,
    fresh_database,
    postgres_server,
    run_psql_copy,
)

#: (wall seconds, own CPU seconds, PostgreSQL CPU seconds, peak RSS MB of the process that ran
#: the batch, the largest of the server's and the workers') of one run.
Run = tuple[float, float, float, float]


def run_server(
    csv_path: Path,
    url: str,
    rows: int,
    workers: int,
    env: dict[str, str],
    good: int | None = None,
) -> Run:
    """One import through a server (and ``workers``) started with ``env`` on top of the usual;
    ``good`` is how many records are valid, if not all."""
    data = csv_path.parent / f"ab-data-{len(list(csv_path.parent.glob('ab-data-*')))}"
    with deployment(url, data, workers, **env) as (http, server, pool):
        pids = [p.process.pid for p in (server, *pool) if p.process is not None]
        with CpuMeter(url, pids) as meter:
            _, seconds = timed_import(http, csv_path, rows, digest=sha256_of(csv_path), good=good)
        peak = max(p.peak_rss_bytes() for p in (server, *pool)) / 1e6
        return seconds, meter.process_seconds, meter.postgres_seconds, peak


def main() -> None:
    parser = ab_parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="0: serve with its own worker")
    args = parser.parse_args()
    with generated_orders(args.rows, args.workdir) as csv_path, postgres_server() as server:
        contenders = ab_contenders("psql \\copy", csv_path, args)
        runs: dict[str, list[Run]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            for name, (env, path, valid) in contenders.items():
                with fresh_database(server) as url:
                    if env is None:
                        wall = run_psql_copy(path, url, args.rows).seconds
                        run: Run = (wall, *CPU["psql \\copy"], 0.0)
                    else:
                        run = run_server(path, url, args.rows, args.workers, env, valid)
                runs[name].append(run)
                print(
                    f"round {round_number}: {name:<12} wall {run[0]:6.2f} s, CPU own "
                    f"{run[1]:5.2f} s + PostgreSQL {run[2]:5.2f} s, peak RSS {run[3]:4.0f} MB",
                    flush=True,
                )
    report(runs)


def report(runs: dict[str, list[Run]]) -> None:
    """Medians per contender, and each one's ratio to ``psql \\copy``'s."""
    middle = medians(runs)
    base_wall, base_own, base_pg, _ = middle["psql \\copy"]
    print()
    header = (
        f"{'medians':<14} {'wall':>7} {'x':>6} {'own CPU':>8} {'PG CPU':>7} {'CPU':>6} {'x':>6}"
        f" {'RSS MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, (wall, own, postgres, peak) in middle.items():
        cpu = own + postgres
        print(
            f"{name:<14} {wall:7.2f} {wall / base_wall:6.2f} {own:8.2f} {postgres:7.2f} "
            f"{cpu:6.2f} {cpu / (base_own + base_pg):6.2f} {peak:7.0f}"
        )


if __name__ == "__main__":
    main()
