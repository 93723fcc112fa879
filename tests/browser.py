"""A real headless browser for the tests: Chromium driven by the `playwright` package.

No browser is downloaded: the tests use an installed Chromium, found (in this order) at the path
in $CHROMIUM, then `chromium`, `chromium-browser`, `google-chrome` or `google-chrome-stable` on
PATH. On Debian/Ubuntu, as root:  apt-get update && apt-get install -y chromium
(/usr/bin/chromium). Without a browser (or without playwright) the browser tests are skipped,
with the reason -- except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from collections.abc import Iterator

import pytest

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = "install one with: apt-get update && apt-get install -y chromium (as root), or set $CHROMIUM"


def find_chromium() -> str | None:
    """The path of an installed Chromium (see the module docstring), or None."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    return next((path for path in map(shutil.which, BROWSER_NAMES) if path), None)


def unavailable(reason: str) -> None:
    """Skip the test with `reason`, or fail it under CI=true, where the browser tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[object]:
    """A launched headless Chromium (a playwright Browser), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright; no browser download needed)")
    path = find_chromium()
    if path is None:
        unavailable(f"no Chromium found; {INSTALL_HINT}")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
