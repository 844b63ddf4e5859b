"""Process-wide Arrow setup for the long-running processes (``batchyard serve``, ``worker``).

Memory: pyarrow's default pool (mimalloc) keeps the pages a chunk freed for later, so a server
that applied one batch stayed about 130 MiB above what it holds; jemalloc told to hand freed
pages back at once (decay 0) returns them, and keeps the peak of a batch near what is live.
Measured on the 1M-row benchmark: validation alone grew RSS by 162 MiB on mimalloc, 111 MiB
on jemalloc with decay 0, 212 MiB on the system allocator, at the same speed.

Pandas:
pyarrow imports pandas, when it is installed, the first time it converts any Python value
(``pa.array([1])``, ``pa.scalar(0)``): its lazy pandas shim looks for pandas to tell whether
the value is a pandas object. batchyard never hands pandas objects to pyarrow, yet in an
environment that also has pandas (a data team's, or the test tools') that first conversion
costs about 50 MiB of resident memory and 0.7 s. The shim looks once and remembers the answer,
so letting that one look find no pandas keeps it out of the process for good, while pandas
stays importable for whatever asks for it explicitly (``Table.to_pandas`` imports it then).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pyarrow as pa


class _NoPandas:
    """An import finder under which pandas is not installed."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is kept out of this process", name=name)
        return None


def prepare_arrow() -> None:
    """Set up Arrow for a long-running process: pandas kept out, freed memory given back."""
    keep_pandas_out()
    release_freed_memory()


def release_freed_memory() -> None:
    """Allocate Arrow buffers with jemalloc, returning freed pages to the system at once.

    Where pyarrow was built without jemalloc, its default pool stays (it only retains more);
    an operator's own choice (ARROW_DEFAULT_MEMORY_POOL, read by pyarrow) is left alone.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(0)


def keep_pandas_out() -> None:
    """Let pyarrow's one look for pandas find none; a no-op where pandas is already loaded.

    Call before anything converts a Python value to Arrow (module constants included), and
    before other threads start. Relies on the shim remembering its first look, which
    tests/unit/test_arrow_runtime.py checks against the installed pyarrow.
    """
    if "pandas" in sys.modules:
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(finder)
