"""The HQ console at county scale in Debian Chromium (Playwright), against the real broker, processors and portal:
the newest fire report lands on top of the queue and is announced (banner, title badge, a tone the officer can
switch off), and a loud banner shows while the console's live stream is down."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, Route, expect

from firebus.county import County
from firebus.settings import Settings
from tests.browser import ARTIFACTS, chromium
from tests.consumers import test_portal_browser as shared
from tests.consumers.test_portal_browser import PortalProcess, fire_draft, login, publish

# This module's own processors worker and portal (module fixtures), and a fresh page per test from its browser.
pipeline = shared.pipeline
portal = shared.portal
page = shared.page

BADGE = re.compile(r"^【\d+ 起新火情】")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; allowed to sound without a click first, as a console left open all day is."""
    async with chromium("--autoplay-policy=no-user-gesture-required") as launched:
        yield launched


async def test_newest_fire_report_lands_on_top_of_the_queue_and_is_announced(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """A fire report published while the console is open goes to the top of the queue, above an older one, and is
    announced with a banner, a count in the window title and a tone; with the tone switched off the next one is
    announced silently; a reload shows the same order."""
    await login(page, portal, "hq-wang", "fangmie-wang-2026", "/hq")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    await page.evaluate("window.__noReload = true")
    top = page.locator("#queue-items .review-item").first

    older = await publish(settings, county, fire_draft())
    await expect(page.locator(f'#queue-items .review-item[data-event-id="{older}"]')).to_be_visible(timeout=30_000)
    newest = await publish(settings, county, fire_draft())
    await expect(top).to_have_attribute("data-event-id", str(newest), timeout=30_000)
    assert await page.evaluate("window.__noReload === true")  # arrived over the live stream

    await expect(page.locator("#fire-announce")).to_be_visible()
    await page.wait_for_function(f"window.firebusAnnounced.includes('{newest}')")
    await expect(page).to_have_title(BADGE)
    await page.wait_for_function("window.firebusTones >= 2")  # one tone for each new fire
    assert int(await page.locator("#queue-total").inner_text()) >= 2
    await expect(page.locator('.type-count[data-type="fire_report"]')).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-console-announced.png"))

    await page.click("#sound-toggle")
    await expect(page.locator("#sound-toggle")).to_have_attribute("data-sound", "off")
    tones = await page.evaluate("window.firebusTones")
    silent = await publish(settings, county, fire_draft())
    await expect(top).to_have_attribute("data-event-id", str(silent), timeout=30_000)
    await page.wait_for_function(f"window.firebusAnnounced.includes('{silent}')")
    assert await page.evaluate("window.firebusTones") == tones  # switched off: announced, not sounded

    await page.click("#fire-announce-ack")
    await expect(page).not_to_have_title(BADGE)
    await expect(page.locator("#fire-announce")).to_be_hidden()

    await page.reload()
    await expect(page.locator("#queue-items .review-item").first).to_have_attribute("data-event-id", str(silent))
    await expect(page.locator("#sound-toggle")).to_have_attribute("data-sound", "off")  # the choice is remembered
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-console.png"))


async def test_a_loud_banner_shows_while_the_live_stream_is_down(page: Page, portal: PortalProcess) -> None:
    """While the console cannot reach its live stream a banner says so; it goes once the stream is back."""
    await login(page, portal, "hq-wang", "fangmie-wang-2026", "/members")

    async def refuse(route: Route) -> None:
        await route.abort()

    await page.route("**/hq/live/stream", refuse)
    await page.goto(f"{portal.url}/hq")
    await expect(page.locator("#stream-down")).to_be_visible(timeout=15_000)
    await expect(page.locator("#stream-down")).to_contain_text("实时连接已中断")
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-stream-down.png"))
    await page.unroute("**/hq/live/stream")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=30_000)
    await expect(page.locator("#stream-down")).to_be_hidden()
