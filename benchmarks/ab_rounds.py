"""What the A/B benchmarks (postgres_ab, sqlite_ab) share: their arguments, their contenders and
the medians of their rounds.

Each alternates a baseline tool, another checkout's server ("before") and this one's ("after")
round after round on the same file, so that a shared machine's swings hit every contender alike.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import invalid_orders

#: A contender: the checkout's environment (None for the baseline tool), the file it imports and
#: how many of its records are valid (None: all).
Contender = tuple[dict[str, str] | None, Path, int | None]


def ab_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every A/B benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    parser.add_argument(
        "--invalid-every", type=int, default=0, help="also import a file with 1 in N invalid"
    )
    return parser


def contenders(baseline: str, csv_path: Path, args: argparse.Namespace) -> dict[str, Contender]:
    """The baseline, "before" (``args.before`` first on the server's PYTHONPATH) and "after" on
    ``csv_path``; with ``--invalid-every N`` both checkouts again on the same number of records
    with one in N invalid."""
    checkouts = {"before": {"PYTHONPATH": str(args.before.resolve())}, "after": {}}
    named: dict[str, Contender] = {baseline: (None, csv_path, None)}
    for name, env in checkouts.items():
        named[name] = (env, csv_path, None)
    if args.invalid_every:
        bad_path, good = invalid_orders(csv_path, args.rows, args.invalid_every)
        for name, env in checkouts.items():
            named[f"{name} invalid"] = (env, bad_path, good)
    return named


def medians(runs: dict[str, list[Sequence[float]]]) -> dict[str, list[float]]:
    """Each contender's median of every figure of its runs."""
    return {
        name: [statistics.median(figures) for figures in zip(*rows, strict=True)]
        for name, rows in runs.items()
    }
