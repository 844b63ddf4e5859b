"""The service runs on its own dependencies: what `uv run batchyard serve` installs.

The dev group (tests, linters, benchmarks) brings packages the service's code may import by
accident (numpy came with pandas); a production install then fails at start with
ModuleNotFoundError. Import every module of the package in an environment built without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, batchyard
names = [m.name for m in pkgutil.walk_packages(batchyard.__path__, "batchyard.")]
names = [n for n in names if not n.endswith("__main__")]  # importing it runs the CLI
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_module_imports_with_only_the_service_dependencies() -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    assert uv, "uv is not on the PATH: the README's commands install it first"
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    done = subprocess.run(
        [
            uv,
            "run",
            "--isolated",
            "--frozen",
            "--no-group",
            "dev",
            "python",
            "-c",
            IMPORT_EVERY_MODULE,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert int(done.stdout.split()[-1]) > 100  # every module was found, not an empty package
