"""Debian's Chromium driven by Playwright, shut off from every host but the server under test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "The dashboard's browser tests drive Debian's Chromium at /usr/bin/chromium, which is not "
    "installed here. Install it with `sudo apt-get install -y chromium` (CI's .ci/run does this), "
    "then run the tests again. Playwright's own browser downloads are not used."
)


def launch_chromium(playwright: Playwright) -> Browser:
    """The system Chromium; a clear failure (never a skip) when it is missing."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.fail(INSTALL_HINT, pytrace=False)
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
