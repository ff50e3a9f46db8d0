"""Login and logout in Debian Chromium (Playwright) against `firebus portal` with its accounts in PostgreSQL: logout
ends the session for good (the old cookie, replayed, opens nothing), an administrator's revocation stops an open
console's live stream, and the pages run under the content security policy without a single violation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from firebus.settings import Settings
from tests.browser import ARTIFACTS
from tests.consumers.test_portal_browser import PortalProcess, login


@pytest.fixture(scope="module")
async def portal(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PortalProcess]:
    """`firebus portal` in demo mode on its own accounts schema (no processors needed: nothing is reviewed)."""
    running = PortalProcess(settings, tmp_path_factory.mktemp("portal-login") / "portal.log")
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def new_page(browser: Browser, violations: list[str]) -> tuple[BrowserContext, Page]:
    """A fresh context and page that notes every console message about the content security policy."""
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return context, page


async def test_logout_ends_the_session_and_the_old_cookie_opens_nothing(
    browser: Browser, portal: PortalProcess
) -> None:
    """An HQ officer logs in, sees the live console, logs out; the cookie they had, put in another browser, is sent
    to the login page; no page broke the content security policy."""
    violations: list[str] = []
    context, page = await new_page(browser, violations)
    try:
        await login(page, portal, "hq-wang", "fangmie-wang-2026", "/hq")
        await expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
        await expect(page.locator("#who")).to_contain_text("hq-wang")
        cookies = await context.cookies()
        await page.click("header .who button[type=submit]")
        await page.wait_for_url(f"{portal.url}/")
        await expect(page.locator("header .who a[href='/login']")).to_be_visible()
        await page.goto(f"{portal.url}/members")
        await page.screenshot(path=str(ARTIFACTS / "portal-after-logout.png"))
        assert page.url == f"{portal.url}/login?next=/members"
    finally:
        await context.close()
    replay, replayed = await new_page(browser, violations)
    try:
        await replay.add_cookies(cookies)  # type: ignore[arg-type]
        await replayed.goto(f"{portal.url}/hq")
        assert replayed.url == f"{portal.url}/login?next=/hq"
    finally:
        await replay.close()
    assert violations == []


async def test_an_administrator_revokes_an_open_console(browser: Browser, portal: PortalProcess) -> None:
    """While an officer's console is open and live, the HQ administrator revokes the officer's sessions on /admin:
    the console's live stream ends and cannot come back, and the next page asks for a login."""
    violations: list[str] = []
    officer_context, officer = await new_page(browser, violations)
    admin_context, admin = await new_page(browser, violations)
    try:
        await login(officer, portal, "hq-wang", "fangmie-wang-2026", "/hq")
        await expect(officer.locator("#live-status")).to_have_attribute("data-state", "open")
        await login(admin, portal, "hq-li", "fangmie-li-2026", "/admin")
        row = admin.locator('tr[data-account="hq-wang"]')
        await expect(row).to_contain_text("王建国")
        await row.locator("form[action$='/revoke'] button").click()
        await expect(admin.locator("#flash")).to_have_text("已注销该账号的全部会话")
        await expect(officer.locator("#live-status")).to_have_attribute("data-state", "retrying", timeout=30_000)
        await officer.screenshot(path=str(ARTIFACTS / "portal-console-revoked.png"))
        await officer.reload()
        assert officer.url == f"{portal.url}/login?next=/hq"
        await admin.goto(f"{portal.url}/admin")
        log = admin.locator("#security-log")
        await expect(log).to_contain_text("会话被注销")
        await expect(log).to_contain_text("登录成功")
        await expect(log).to_contain_text("127.0.0.1")
    finally:
        await officer_context.close()
        await admin_context.close()
    assert violations == []
