"""Debian's Chromium for the browser tests, headless, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from consumers.portal.latency import CHROMIUM_ARGS  # the flags the console benchmark launches with: one list

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
"""Screenshots and traces the browser tests leave for a person to look at (ignored by git)."""


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    """Chromium launched with :data:`CHROMIUM_ARGS` and ``extra_args``, closed after."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            await launched.close()
