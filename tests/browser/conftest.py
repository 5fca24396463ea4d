"""Playwright drives the Chromium from Debian's package; `playwright install` cannot download here."""

import os
from pathlib import Path

import pytest

from tests.services import unavailable

# Playwright's sync API keeps an event loop running in the main thread from the first browser test
# to the end of the session, and Django refuses ORM calls from such a thread (in this and every
# later test, and in database teardown) unless this is set. Django reads it at each call.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        unavailable(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}

