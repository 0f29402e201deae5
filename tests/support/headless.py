"""Headless Chromium for the browser tests (report and experiment): where it is, how it starts,
and what happens when it is missing (CI sets LWISE_REQUIRE_BROWSER=1: fail instead of skip)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No background networking: this machine's closed network refuses Chromium's own connections.
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it where CI requires the browser tests to run."""
    (pytest.fail if os.environ.get("LWISE_REQUIRE_BROWSER") else pytest.skip)(reason)


def launch(playwright):
    """Chromium through Playwright, as the tests drive it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
