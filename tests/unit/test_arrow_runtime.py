"""The long-running processes keep pandas out, though pyarrow would import it on first use.

Each check runs in a fresh interpreter: pandas, once imported, cannot be unloaded, and the test
process itself imports it for reference data.
"""

from __future__ import annotations

from support.fresh_process import run_script as _run


def test_pyarrow_alone_imports_pandas_on_its_first_conversion():
    """The premise: without keep_pandas_out, pyarrow pulls pandas in (it is installed here)."""
    assert _run("import sys, pyarrow as pa; pa.array([0]); print('pandas' in sys.modules)") == (
        "True"
    )


def test_the_server_and_worker_modules_and_a_pipeline_run_leave_pandas_unloaded():
    """What `batchyard serve` and `batchyard worker` import, and Arrow work of every kind the
    pipeline does (Python values, compute, CSV, Parquet, IPC), never bring pandas in."""
    out = _run(
        """
        import datetime as dt, io, sys
        from batchyard.pipeline.arrow_runtime import keep_pandas_out
        keep_pandas_out()
        import batchyard.api.app, batchyard.runner.queue_tasks, batchyard.cli.main
        import pyarrow as pa, pyarrow.compute as pc, pyarrow.csv as pcsv
        import pyarrow.parquet as pq
        table = pcsv.read_csv(io.BytesIO(b"a,b\\n1,x\\n2,y\\n"))
        table = table.append_column("t", pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 2))
        pc.add(table["a"], pa.scalar(1))
        sink = io.BytesIO()
        pq.write_table(table, sink)
        pq.read_table(io.BytesIO(sink.getvalue())).to_pylist()
        print('pandas' in sys.modules, flush=True)
        # What this test checks is above. The interpreter's teardown, with the threads of
        # pyarrow and the imported drivers still about, once aborted ("terminate called without
        # an active exception", one fresh-clone run in four on 2026-12-02): not this test's subject.
        import os; os._exit(0)
        """
    )
    assert out == "False"


def test_importing_the_app_alone_leaves_pandas_unloaded():
    """An app server of one's own imports batchyard.api.app without serve's set-up: its
    modules make no Arrow value at import and import no database driver (ADBC's DB-API imports
    pyarrow.dataset), so pandas stays out until something converts a value."""
    assert _run("import sys, batchyard.api.app; print('pandas' in sys.modules)") == "False"


def test_pandas_still_comes_when_asked_for():
    """Code that wants pandas (an operation plugin, to_pandas) gets it as usual."""
    out = _run(
        """
        from batchyard.pipeline.arrow_runtime import keep_pandas_out
        keep_pandas_out()
        import pyarrow as pa
        frame = pa.table({"a": [1, 2]}).to_pandas()
        import pandas
        print(type(frame).__name__, pa.Table.from_pandas(frame).num_rows)
        """
    )
    assert out == "DataFrame 2"


_CHURN = """
    import sys
    import pyarrow as pa, pyarrow.compute as pc
    from batchyard.pipeline.arrow_runtime import prepare_arrow
    from support.fresh_process import rss
    if sys.argv[1] == "prepared":
        prepare_arrow()

    numbers = pa.array(range(1_000_000), pa.int64())
    before = rss()
    for _ in range(20):  # chunk-sized tables made and dropped, as the pipeline does
        text = pc.cast(numbers, pa.string())
        upper = pc.utf8_upper(text)
        del text, upper
    print(pa.default_memory_pool().backend_name, (rss() - before) // 2**20)
"""


def _churn(mode: str, **env: str) -> tuple[str, int]:
    backend, retained = _run(_CHURN, mode, env=env).split()
    return backend, int(retained)


def test_memory_arrow_freed_goes_back_to_the_system():
    """After chunk-sized tables come and go, the process is not left holding their pages."""
    backend, retained_mib = _churn("prepared")
    assert backend == "jemalloc"
    # 6-9 MiB on an idle machine, up to 16 MiB when the cores are busy (jemalloc's purge lags);
    # pyarrow's default allocator keeps 43-46 MiB of the same churn.
    assert retained_mib < 28


def test_an_operators_choice_of_arrow_allocator_is_kept():
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system"}
    assert _churn("prepared", **env)[0] == "system"
