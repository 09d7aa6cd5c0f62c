"""Headless Chromium for tests: Debian's `chromium` driven by Playwright.

Playwright is used only as a driver; it never downloads a browser. Tests that need the
browser skip with the reason when the binary or the package is missing. Screenshots go
to test-artifacts/screenshots (or $LINKWATCH_ARTIFACTS/screenshots) so a person can look
at what the tests saw.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("LINKWATCH_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"


def _unavailable() -> str | None:
    if CHROMIUM is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


BROWSER_UNAVAILABLE = _unavailable()
needs_browser = pytest.mark.skipif(BROWSER_UNAVAILABLE is not None, reason=str(BROWSER_UNAVAILABLE))

# As the machine's own check starts it: no background traffic to anyone's servers.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A fresh headless browser (its own empty profile), closed afterwards."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
