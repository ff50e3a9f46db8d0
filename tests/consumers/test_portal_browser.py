"""The portal end to end in Debian Chromium (Playwright), against the real broker, processors worker and portal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.etree import ElementTree as ET

import capvalidator
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, expect

from firebus.broker import free_port
from firebus.county import County
from firebus.events import Audience, Classification, MessageKind
from firebus.kafka import read_to_end
from firebus.records import ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.topics import HQ_LIVE
from producers import Draft, FirebusClient, FireStatus, ReviewDesk, load_draft
from tests.browser import ARTIFACTS
from tests.consumers.archiving import create_schema, drop_schema, dsn_for
from tests.health import get
from tests.processors.conftest import Worker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events"
SECRETS = ("13900001111", "李护林", "35.2583", "112.3671", "0356-8881234")
"""What the public must never see of the sample fire report: reporter, exact coordinates, publisher's phone."""


class PortalProcess:
    """`firebus portal` as its own process on a free port."""

    def __init__(self, settings: Settings, log_path: Path, *, dsn: str | None = None) -> None:
        """``dsn``: the database the portal keeps its accounts (and the HTTP API its tables) in, owned by the caller;
        none: a schema of its own, made on start and dropped on stop."""
        self.settings = settings
        self.dsn = dsn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.schema: str | None = None

    async def start(self) -> None:
        if self.dsn is None:
            self.schema = await create_schema()  # its own accounts tables; demo mode seeds the demo accounts there
        env = {
            **os.environ,
            "FIREBUS_ARCHIVE_DSN": self.dsn or dsn_for(self.schema or ""),
            "FIREBUS_PORTAL_DEMO": "1",
            "FIREBUS_BOOTSTRAP": self.settings.bootstrap_servers,
            "FIREBUS_HOME": str(self.settings.home),
            "FIREBUS_KEYS_DIR": str(self.settings.key_directory),
            "FIREBUS_PORTAL_PORT": str(self.port),
            "FIREBUS_PORTAL_SECRET": uuid.uuid4().hex,
            "FIREBUS_FETCH_MAX_WAIT_MS": "50",
            "FIREBUS_LOG_FORMAT": "json",
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "portal", env=env, cwd=ROOT, stdout=log, stderr=log
            )
        # A hang guard, not a speed check: on two cores shared by several test sessions the portal was seen taking
        # over 60 s to import, migrate its accounts tables and catch up.
        deadline = asyncio.get_running_loop().time() + 180
        while asyncio.get_running_loop().time() < deadline:
            if self.process.returncode is not None:
                raise AssertionError(f"portal exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            if (await self.get("/readyz"))[0] == 200:
                return
            await asyncio.sleep(0.3)
        raise AssertionError("portal never became ready")

    async def get(self, path: str) -> tuple[int, bytes]:
        return await get(self.url + path)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.schema is not None:
            await drop_schema(self.schema)
            self.schema = None


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    """The real processors worker (`firebus processors`), for this module only."""
    running = Worker(settings, tmp_path_factory.mktemp("portal-worker") / "processors.log")
    await running.start()
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def portal(
    settings: Settings, pipeline: Worker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PortalProcess]:
    """The portal as a real server, caught up with the topics."""
    running = PortalProcess(settings, tmp_path_factory.mktemp("portal") / "portal.log")
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) and page."""
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    yield opened
    await context.close()


def fire_draft(**changes: Any) -> Draft:
    incident = f"YC-TEST-{uuid.uuid4().hex[:8]}"
    return load_draft(EXAMPLES / "fire_report.json").model_copy(update={"incident_id": incident, **changes})


def public_fire_draft(**changes: Any) -> Draft:
    return fire_draft(classification=Classification.PUBLIC, audience=Audience.PUBLIC, **changes)


async def publish(settings: Settings, county: County, draft: Draft) -> UUID:
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        return (await client.publish(draft)).event_id


async def approve(settings: Settings, county: County, event_id: UUID) -> None:
    """Approve through the review desk (for events whose review is not what the test is about) and wait until the
    event is released: an update published while its original still awaits review would withdraw the original."""
    desk = ReviewDesk(settings=settings, county=county)
    item = await eventually(lambda: _with_status(desk, event_id, ReviewStatus.PENDING))
    await desk.publish(item, desk.decision(item, reviewer="hq-li", verdict=Verdict.APPROVE))
    await eventually(lambda: _with_status(desk, event_id, ReviewStatus.RELEASED))


async def _with_status(desk: ReviewDesk, event_id: UUID, status: ReviewStatus) -> Any:
    item = (await desk.items()).get(event_id)
    return item if item is not None and item.status is status else None


async def eventually(probe: Callable[[], Awaitable[Any]], within_s: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def login(page: Page, portal: PortalProcess, account: str, password: str, target: str) -> None:
    await page.goto(f"{portal.url}/login?next={target}")
    await page.fill("input[name=username]", account)
    await page.fill("input[name=password]", password)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(f"{portal.url}{target}")


async def until_shown(page: Page, url: str, selector: str, within_s: float = 60.0) -> None:
    """Reload ``url`` until ``selector`` is on it (for pages without a live channel)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        await page.goto(url)
        if await page.locator(selector).count():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{selector} never shown on {url}")
        await asyncio.sleep(0.5)


async def test_logged_out_user_cannot_reach_member_area_or_console(page: Page, portal: PortalProcess) -> None:
    """Logged out, /members and /hq send the browser to the login page; a member account gets no HQ console."""
    await page.goto(f"{portal.url}/members")
    assert page.url == f"{portal.url}/login?next=/members"
    await page.goto(f"{portal.url}/hq")
    assert page.url == f"{portal.url}/login?next=/hq"
    assert (await portal.get("/hq/live/stream"))[0] == 401
    await page.fill("input[name=username]", "forestry")
    await page.fill("input[name=password]", "wrong-password")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("账号或密码错误。")
    await login(page, portal, "forestry", "linye-2026", "/members")
    response = await page.goto(f"{portal.url}/hq")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("#forbidden")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "portal-member-forbidden-hq.png"), full_page=True)
    forged = await page.request.post(f"{portal.url}/logout", form={"csrf": "forged"}, max_redirects=0)
    assert forged.status == 403  # a POST without the session's CSRF token is refused


async def test_fire_report_goes_live_is_approved_in_browser_and_reaches_public_board_redacted(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """A public fire report shows live on the HQ console without reload, is approved there, then is public, redacted."""
    await login(page, portal, "hq-wang", "fangmie-wang-2026", "/hq")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    await page.evaluate("window.__noReload = true")

    event_id = await publish(settings, county, public_fire_draft())
    live_item = page.locator(f'#live [data-event-id="{event_id}"]')
    await expect(live_item).to_be_visible(timeout=30_000)
    assert await page.evaluate("window.__noReload === true")  # arrived over SSE, the page never reloaded
    await expect(live_item).to_contain_text("13900001111")  # HQ sees everything before review
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-live.png"), full_page=True)

    item = f'.review-item[data-event-id="{event_id}"]'
    await expect(page.locator(item)).to_be_visible(timeout=30_000)  # joined the review queue without a reload
    assert await page.evaluate("window.__noReload === true")
    await page.locator(f"{item} input[name=reason]").fill("已核实，可公开")
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-review-queue.png"), full_page=True)
    await page.locator(f"{item} button.approve").click()
    await expect(page.locator("#flash")).to_contain_text(f"已批准：{event_id}")

    card = f'#board [data-event-id="{event_id}"]'
    await until_shown(page, f"{portal.url}/", card)
    await expect(page.locator(card)).to_contain_text("蟒河镇桑林村火情")
    await expect(page.locator(card)).to_contain_text("王建国")  # the reviewer of record
    board_text = await page.locator("#board").inner_text()
    for secret in SECRETS:
        assert secret not in board_text
    await page.screenshot(path=str(ARTIFACTS / "portal-public-board.png"), full_page=True)

    feed = await (await page.request.get(f"{portal.url}/feed.atom")).text()
    assert f"urn:uuid:{event_id}" in feed
    for secret in SECRETS:
        assert secret not in feed
    cap = await (await page.request.get(f"{portal.url}/cap/{event_id}.xml")).body()
    assert capvalidator.check_schema(cap).passed
    assert all(secret.encode() not in cap for secret in SECRETS)
    root = ET.fromstring(cap)  # noqa: S314  (the portal under test)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert root.findtext("cap:identifier", namespaces=ns) == str(event_id)
    assert root.findtext("cap:msgType", namespaces=ns) == "Alert"
    assert root.findtext("cap:scope", namespaces=ns) == "Public"

    await page.goto(f"{portal.url}/hq/audit?q={event_id}&action=decided")
    await expect(page.locator("#audit tbody tr")).to_have_count(1)
    await expect(page.locator("#audit tbody tr")).to_contain_text("王建国")  # the reviewer by name, not login id
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-audit.png"), full_page=True)


async def test_open_console_queue_follows_decisions_made_elsewhere_without_reload(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """An open console gains new items and loses the ones another reviewer decides (here through the review desk),
    without a reload; what the reviewer is typing into another item's form is kept."""
    await login(page, portal, "hq-wang", "fangmie-wang-2026", "/hq")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    await page.evaluate("window.__noReload = true")

    kept = await publish(settings, county, public_fire_draft())
    decided = await publish(settings, county, public_fire_draft())
    kept_item = page.locator(f'.review-item[data-event-id="{kept}"]')
    decided_item = page.locator(f'.review-item[data-event-id="{decided}"]')
    await expect(kept_item).to_be_visible(timeout=30_000)
    await expect(decided_item).to_be_visible(timeout=30_000)
    await kept_item.locator("input[name=reason]").fill("正在电话核实")
    shown = await page.locator(".review-item").count()
    await expect(page.locator("#queue-count")).to_have_text(str(shown))

    await approve(settings, county, decided)
    await expect(decided_item).to_have_count(0, timeout=30_000)
    await expect(page.locator("#queue-count")).to_have_text(str(shown - 1))
    await expect(kept_item.locator("input[name=reason]")).to_have_value("正在电话核实")
    assert await page.evaluate("window.__noReload === true")
    await page.screenshot(path=str(ARTIFACTS / "portal-hq-queue-live.png"), full_page=True)


async def test_member_tier_event_never_shows_on_public_board(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """A members-audience fire report, redacted in the console, reaches the member area (filtered), never the public."""
    event_id = await publish(settings, county, fire_draft())
    await login(page, portal, "hq-li", "fangmie-li-2026", "/hq")
    item = f'.review-item[data-event-id="{event_id}"]'
    await until_shown(page, f"{portal.url}/hq", item)
    await page.locator(f"{item} details.redact summary").click()  # the redaction choices are folded away
    await page.locator(f'{item} input[value="body.suspected_cause"]').check()
    await page.locator(f"{item} button.redact-btn").click()
    await expect(page.locator("#flash")).to_contain_text(f"已删改后批准：{event_id}")

    card = f'#members-board [data-event-id="{event_id}"]'
    await until_shown(page, f"{portal.url}/members?type=fire_report&township=manghe", card)
    await expect(page.locator(card)).to_contain_text("35.2583")  # members see coordinates …
    await expect(page.locator(card)).not_to_contain_text("13900001111")  # … not the reporter …
    await expect(page.locator(card)).not_to_contain_text("上坟烧纸")  # … nor what the reviewer redacted
    await page.screenshot(path=str(ARTIFACTS / "portal-members.png"), full_page=True)
    await page.goto(f"{portal.url}/members?type=fire_report&township=beiliu")
    assert await page.locator(card).count() == 0
    await page.goto(f"{portal.url}/members?type=risk_warning")
    assert await page.locator(card).count() == 0

    await page.goto(f"{portal.url}/")
    assert await page.locator(f'[data-event-id="{event_id}"]').count() == 0
    assert str(event_id) not in await page.content()
    assert (await portal.get(f"/cap/{event_id}.xml"))[0] == 404
    assert str(event_id) not in (await portal.get("/feed.atom"))[1].decode()


async def test_update_and_cancel_show_as_one_thread_with_history(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """A public alert, its update and its cancel show as one notice in the current state, with the history."""
    draft = public_fire_draft()
    alert_id = await publish(settings, county, draft)
    await approve(settings, county, alert_id)
    update_id = await publish(
        settings,
        county,
        draft.model_copy(
            update={
                "kind": MessageKind.UPDATE,
                "references": [alert_id],
                "body": draft.body.model_copy(update={"status": FireStatus.CONTAINED}),
            }
        ),
    )
    await approve(settings, county, update_id)
    card = f'#board [data-thread-id="{alert_id}"][data-event-id="{update_id}"]'
    # The two releases reach the portal independently; wait until both are folded into the thread.
    await until_shown(page, f"{portal.url}/", f'{card}:has-text("历史记录（1）")')
    await expect(page.locator(card)).to_contain_text("已控制")
    assert await page.locator(f'#board [data-thread-id="{alert_id}"]').count() == 1
    await page.screenshot(path=str(ARTIFACTS / "portal-public-thread.png"), full_page=True)
    cap = (await portal.get(f"/cap/{update_id}.xml"))[1]
    assert capvalidator.check_schema(cap).passed
    assert b"<msgType>Update</msgType>" in cap
    assert f"firebus@yangcheng,{alert_id},".encode() in cap
    assert json.loads((await portal.get("/readyz"))[1]) == {"ready": True}


async def test_an_event_twice_on_hq_live_shows_once_on_the_console(
    page: Page, portal: PortalProcess, settings: Settings, county: County
) -> None:
    """firebus.hq.live is at least once (a processors restart sends some events again): the same event's record put
    on it twice more is shown once on an open console (no second card over the live channel) and once after a
    reload; a later event (the fence) shows the repeats were read."""
    await login(page, portal, "hq-wang", "fangmie-wang-2026", "/hq")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    event_id = await publish(settings, county, fire_draft())
    shown = page.locator(f'#live [data-event-id="{event_id}"]')
    await expect(shown).to_have_count(1, timeout=30_000)

    [(key, value)] = [
        (key, value)
        for key, value in await read_to_end(settings, HQ_LIVE)
        if value is not None and str(event_id).encode() in value
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for partition in (0, 1):  # again on its own partition, and on another one
            await producer.send_and_wait(HQ_LIVE.name, value, key=key, partition=partition)
    finally:
        await producer.stop()
    fence = await publish(settings, county, fire_draft())
    await expect(page.locator(f'#live [data-event-id="{fence}"]')).to_have_count(1, timeout=30_000)
    await expect(shown).to_have_count(1)
    await page.reload()
    await expect(page.locator(f'#live [data-event-id="{fence}"]')).to_have_count(1)
    await expect(shown).to_have_count(1)
