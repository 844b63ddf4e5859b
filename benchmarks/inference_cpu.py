"""CPU time of inferring a schema from a 10,000-record CSV sample, as ``batchyard datasets infer``
does: reading the sample (with which fields were quoted) and guessing each column's type.

Each variant runs in a fresh process (``--before`` another checkout's ``src``, to compare the
same files in one invocation); the figure is the best CPU seconds of ``--repeat`` passes, so that
a busy machine skews it less than wall time would.

    uv run --group dev python -m benchmarks.inference_cpu [--before /path/to/earlier/src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.datagen import write_orders_csv

#: Runs in the fresh process: best CPU seconds of inferring each file, and the schema inferred.
_MEASURE = """
import json, sys, time
import msgspec
from batchyard.client.infer import infer_dataset
repeat, paths = int(sys.argv[1]), sys.argv[2:]
out = {}
for path in paths:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        inference = infer_dataset(path)
        best = min(best, time.process_time() - started)
    out[path] = {"cpu": best, "schema": msgspec.to_builtins(inference.schema)}
print(json.dumps(out))
"""


def write_quoted_csv(path: Path, rows: int) -> Path:
    """Records with quoted text, quoted empty fields and quoted NA: the quoting inference reads."""
    with path.open("w", newline="") as out:
        out.write("id,name,note,amount,code\n")
        for i in range(1, rows + 1):
            note = '""' if i % 7 == 0 else '"NA"' if i % 11 == 0 else f'"a, ""quoted"" note {i}"'
            out.write(f'{i},name {i},{note},{i % 1000}.{i % 100:02d},"{i % 97}"\n')
    return path


def measure(src: Path | None, paths: list[Path], repeat: int) -> dict[str, dict[str, object]]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(repeat), *map(str, paths)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="also measure this checkout's src directory")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchyard-infer-") as tmp:
        orders = Path(tmp) / "orders.csv"
        write_orders_csv(orders, 10_000)
        paths = [orders, write_quoted_csv(Path(tmp) / "quoted.csv", 10_000)]
        variants = {"now": measure(None, paths, args.repeat)}
        if args.before:
            variants["before"] = measure(args.before, paths, args.repeat)
        for path in paths:
            figures = ", ".join(
                f"{name} {float(str(v[str(path)]['cpu'])):.3f} s" for name, v in variants.items()
            )
            same = len({json.dumps(v[str(path)]["schema"]) for v in variants.values()}) == 1
            print(f"{path.name}: {figures}; same schema: {same}")


if __name__ == "__main__":
    main()
