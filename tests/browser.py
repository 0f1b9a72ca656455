"""Fixtures for the browser tests: Debian's headless Chromium driven by Playwright.

Playwright's own browser download is not available here, so the system Chromium is
launched through ``executable_path``. Under ``CI=true`` a missing Chromium (or a
missing ``playwright`` package) fails the test; elsewhere the test is skipped.

Everything runs on the test's own event loop: Playwright's async API starts its
driver with ``asyncio.create_subprocess_exec`` and talks to it over pipes, so the
browser start does not hold the loop, and the ``no_blocking`` watchdog of
``conftest.py`` stays on for these tests as for every other.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import IN_CI

CHROMIUM = Path(os.environ.get("QRLOGIN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
# Every run takes its screenshots into var/screenshots (not tracked: each QR code is
# new, so the images change every time); SCREENSHOTS_DIR=docs/screenshots
# refreshes the committed ones the README shows. One backend's run takes them.
SCREENSHOTS = ROOT / os.environ.get("SCREENSHOTS_DIR", "var/screenshots")
SCREENSHOT_BACKEND = "memory"
TIMEOUT_MS = 10_000
PC_VIEWPORT = {"width": 1280, "height": 800}
MOBILE_DEVICE = "Pixel 7"
TIMEZONE = "Asia/Shanghai"


def missing_browser(message: str) -> None:
    """Fail under CI (the browser job must really run), skip on a laptop."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def playwright() -> AsyncIterator[Any]:
    """A running Playwright driver (on this test's loop)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError as err:
        missing_browser(f"the playwright package is not installed: {err}")
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def browser(playwright: Any) -> AsyncIterator[Any]:
    """Headless Chromium, one per test (Playwright objects belong to one loop)."""
    chromium = await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield chromium
    finally:
        await chromium.close()


class PageErrors(list[str]):
    """Uncaught JavaScript errors of the pages under test."""

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda err: self.append(f"{page.url}: {err}"))
        return page


@pytest.fixture
async def page_errors() -> AsyncIterator[PageErrors]:
    """Every test that opens pages fails on an uncaught error in their scripts."""
    errors = PageErrors()
    yield errors
    assert not errors, f"uncaught errors in the page: {list(errors)}"


@pytest.fixture
def base_url(client: TestClient) -> str:
    """Where the app under test listens (its public URL, so Origin checks pass)."""
    return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def pc(
    browser: Any, base_url: str, page_errors: PageErrors
) -> AsyncIterator[Any]:
    """A desktop page in its own browser context (cookie jar)."""
    context = await browser.new_context(
        base_url=base_url, viewport=PC_VIEWPORT, locale="zh-CN", timezone_id=TIMEZONE
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield page_errors.watch(await context.new_page())
    finally:
        await context.close()


@pytest.fixture
async def mobile(
    playwright: Any, browser: Any, base_url: str, page_errors: PageErrors
) -> AsyncIterator[Any]:
    """A phone browser page in a second context: its own cookies, a phone viewport."""
    device = dict(playwright.devices[MOBILE_DEVICE])
    device.pop("default_browser_type", None)
    device["device_scale_factor"] = 2  # keeps the screenshot a sensible size
    context = await browser.new_context(
        **device, base_url=base_url, locale="zh-CN", timezone_id=TIMEZONE
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield page_errors.watch(await context.new_page())
    finally:
        await context.close()


class Screenshots:
    """Saves screenshots under SCREENSHOTS with stable names."""

    def __init__(self, backend: str) -> None:
        self.enabled = backend == SCREENSHOT_BACKEND

    async def take(self, page: Any, name: str, **options: Any) -> None:
        if not self.enabled:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(
            path=str(SCREENSHOTS / name), animations="disabled", caret="hide", **options
        )


@pytest.fixture
def screenshots(backend: str) -> Screenshots:
    """Write screenshots from the memory backend's run only."""
    return Screenshots(backend)
