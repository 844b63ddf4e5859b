"""A/B rounds on embedded SQLite: this checkout's server, another's, and ``sqlite3 .import``.

On a shared machine one run says little: the same build's wall time can double from one minute
to the next. This alternates the contenders round after round on the same file, each server on
a fresh data directory and ``sqlite3`` on a fresh database, and prints every run and the medians
of wall time, CPU seconds (the server process from upload to the batch's end; the ``sqlite3``
process) and peak RSS. On 2 cores the CPU ratio says how far 1.2 times ``.import`` is within reach
whatever the load was: batchyard has to stay under about 2.4 times ``.import``'s CPU with both
cores busy all the time. The other checkout's ``src`` goes first on the server's PYTHONPATH;
the dependencies are this one's.

    git -C /path/to/repo archive main src | tar -x -C /tmp/main-src
    uv run --group dev python -m benchmarks.sqlite_ab --rows 1000000 --before /tmp/main-src/src

With ``--invalid-every N`` each checkout also imports, in the same round, the same number of
records with one in N invalid.
"""

from __future__ import annotations

import shutil

from benchmarks.ab_rounds import ab_parser, medians
from benchmarks.ab_rounds import contenders as ab_contenders
from benchmarks.harness import generated_orders, sha256_of
from benchmarks.sqlite_import import batchyard_import, sqlite3_import

#: (wall seconds, CPU seconds, peak RSS bytes) of one run.
Run = tuple[float, float, int]
BASELINE = "sqlite3 .import"


def main() -> None:
    args = ab_parser(__doc__.splitlines()[0]).parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 command is needed for the baseline (apt-get install sqlite3)")
    with generated_orders(args.rows, args.workdir) as csv_path:
        workdir = csv_path.parent
        contenders = ab_contenders(BASELINE, csv_path, args)
        digests = {path: sha256_of(path) for _, path, _ in contenders.values()}
        runs: dict[str, list[Run]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            for name, (env, path, valid) in contenders.items():
                if env is None:
                    measured, cpu = sqlite3_import(path, workdir, args.rows)
                else:
                    measured, cpu = batchyard_import(
                        path, workdir, args.rows, digests[path], valid, name, env, stages=False
                    )
                run: Run = (measured.seconds, cpu, measured.peak_rss_bytes)
                runs[name].append(run)
                print(
                    f"round {round_number}: {name:<16} wall {run[0]:6.2f} s, CPU {run[1]:5.2f} s,"
                    f" peak RSS {run[2] / 2**20:4.0f} MB",
                    flush=True,
                )
    report(runs)


def report(runs: dict[str, list[Run]]) -> None:
    """Medians per contender, and each one's ratios to ``sqlite3 .import``'s."""
    middle = medians(runs)
    base_wall, base_cpu, _ = middle[BASELINE]
    print()
    header = f"{'medians':<16} {'wall':>7} {'x':>6} {'CPU':>6} {'x':>6} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for name, (wall, cpu, rss) in middle.items():
        print(
            f"{name:<16} {wall:7.2f} {wall / base_wall:6.2f} {cpu:6.2f} {cpu / base_cpu:6.2f}"
            f" {rss / 2**20:12.0f}"
        )


if __name__ == "__main__":
    main()
