"""A machine without Chromium: the browser tests say plainly that they could not run and why
(a skip with its reason, no error), while CI (``CI=true``) fails a run in which any test was
skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_TEST = "tests/e2e/test_dashboard.py::test_phone_sign_in_drop_a_file_and_refused_token"


def run_browser_test_without_chromium(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    env["BATCHYARD_TEST_CHROMIUM"] = str(tmp_path / "no-chromium-here")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", BROWSER_TEST, "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_chromium_the_browser_tests_are_skipped_with_the_reason(tmp_path):
    done = run_browser_test_without_chromium(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "error" not in done.stdout.lower(), done.stdout
    assert "could not run" in done.stdout and "apt-get install -y chromium" in done.stdout


def test_in_ci_a_skipped_test_fails_the_run(tmp_path):
    done = run_browser_test_without_chromium(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CI=true: 1 test(s) skipped" in done.stdout
