"""Debian's Chromium driven by Playwright, shut off from every host but the server under test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, Route

#: Debian's Chromium (BATCHYARD_TEST_CHROMIUM: another path; a missing one tries the skip).
CHROMIUM = Path(os.environ.get("BATCHYARD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    f"could not run: the dashboard's browser tests drive Debian's Chromium at {CHROMIUM}, "
    "which is not installed here. Install it with `sudo apt-get install -y chromium` (CI's "
    ".ci/run does this) to run them. Playwright's own browser downloads are not used."
)


def launch_chromium(playwright: Playwright) -> Browser:
    """The system Chromium. Missing, the browser tests are skipped with a reason that says why
    and how to fix it; in CI (``CI=true``) a skip fails the run (support/ci_gate.py)."""
    if not CHROMIUM.exists():
        pytest.skip(INSTALL_HINT)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@contextmanager
def offline_context(
    browser: Browser, server_url: str, **options: object
) -> Iterator[OfflineContext]:
    """A browser context whose requests to anything but ``server_url`` are aborted and recorded."""
    context = browser.new_context(
        base_url=server_url, accept_downloads=True, reduced_motion="reduce", **options
    )
    blocked: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if url == server_url or url.startswith(server_url + "/"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    context.set_default_timeout(30_000)
    try:
        yield OfflineContext(context, blocked)
    finally:
        context.close()


class OfflineContext:
    def __init__(self, context: BrowserContext, blocked: list[str]) -> None:
        self.context = context
        #: URLs the page tried to reach outside the server (must stay empty: it works offline).
        self.blocked = blocked
