"""Where CI runs the suite (``CI=true``), every test must run: a skipped test fails the run.

On a developer's machine a test that cannot run (Chromium missing, for one) is skipped with a
reason saying why and how to fix it; the same skip in CI would hide a test that never ran.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not in_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        if reporter is not None:
            reporter.write_line(
                f"CI=true: {len(skipped)} test(s) skipped, and CI runs every test: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
