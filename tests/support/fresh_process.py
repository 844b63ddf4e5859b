"""Memory measured in a fresh interpreter: what a process holds, free of the test run's own.

A script run by ``run_script`` imports this module (``from support.fresh_process import rss``)
to read its resident memory, so every such measurement reads /proc the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

#: The directory holding ``support``: put on a fresh interpreter's path.
_TESTS = Path(__file__).resolve().parents[1]


def rss() -> int:
    """This process's resident memory now, in bytes (Linux VmRSS)."""
    return _status_bytes("VmRSS:")


def peak_rss() -> int:
    """This process's peak resident memory so far, in bytes (Linux VmHWM)."""
    return _status_bytes("VmHWM:")


def reset_peak_rss() -> None:
    """Start ``peak_rss`` again from the resident memory now (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _status_bytes(field: str) -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        line = next(line for line in status if line.startswith(field))
    return int(line.split()[1]) * 1024


def run_script(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """Run ``code`` (dedented) in a fresh interpreter with ``args``; its stdout, stripped.

    Args:
        env: variables added to this process's environment.
    """
    path = os.pathsep.join(p for p in (str(_TESTS), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {}), "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
