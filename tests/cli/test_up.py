"""`firebus up` under faults, with real processes: its own embedded broker and every stage, on free ports.

Each stage killed (SIGKILL, SIGTERM) comes back and GET /stages says why it went; a stage that keeps failing is given
up on loudly while the others keep running; the embedded broker killed is restarted with its topics and the loss is
said; a port another process holds stops `firebus up` in one line before anything starts; the HQ console and the
member area show the banner while a stage is down and clear it when it is back.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from firebus.broker import free_port
from firebus.county import County
from firebus.kafka import describe_topics, partitions_to_create
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS
from producers import FirebusClient, load_draft
from tests.browser import ARTIFACTS
from tests.cli.up import ROOT, STAGES, Up, alive, get_json
from tests.consumers.archiving import create_schema, drop_schema, dsn_for
from tests.test_cli import error_lines, firebus

FIRE_REPORT = ROOT / "examples" / "events" / "fire_report.json"
HQ = ("hq-wang", "fangmie-wang-2026")
MEMBER = ("forestry", "linye-2026")


@pytest.fixture(scope="module")
async def up(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Up]:
    """`firebus up` for this module, every stage running. A restart waits 3 s, so a stage is down long enough for
    the portal (which looks every second) to see it."""
    schema = await create_schema()
    running = Up(tmp_path_factory.mktemp("up"), dsn=dsn_for(schema), env={"FIREBUS_SUPERVISOR_BACKOFF_S": "3"})
    await running.start()
    try:
        await running.all_running()
        yield running
    finally:
        await running.stop()
        await drop_schema(schema)


def is_back(stage: str, before: dict[str, Any]) -> Any:
    return lambda stages: (
        stages[stage]["state"] == "running"
        and stages[stage]["restarts"] == before["restarts"] + 1
        and stages[stage]["pid"] != before["pid"]
    )


async def test_every_stage_runs_and_the_supervisor_reports_it(up: Up) -> None:
    """GET /stages lists the broker and each stage, running, with a live pid; /healthz says up."""
    stages = await up.stages()
    assert list(stages) == ["broker", *STAGES]
    for report in stages.values():
        assert set(report) == {"stage", "state", "pid", "restarts", "last_exit", "last_error", "since"}
        assert report["state"] == "running"
        assert alive(report["pid"])
        assert report["since"].endswith("Z")
    assert get_json(up.stages_url.replace("/stages", "/healthz")) == (200, {"status": "up"})
    out = up.out()
    assert f"stages:     {up.stages_url}" in out
    for stage in STAGES:
        assert f"  {stage + ':':<11} running (pid {stages[stage]['pid']})" in out


async def test_status_json_reports_the_running_bus(up: Up, county: County) -> None:
    """`firebus status --json` against the running bus: the stages from the supervisor, lag per consumer group, the
    review queue, the last hour's dead letters by reason and the last record per topic — these keys exactly."""
    settings = up.settings
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        receipt = await client.publish(load_draft(FIRE_REPORT))
    env = {**up.env, "FIREBUS_BOOTSTRAP": settings.bootstrap_servers}
    deadline = asyncio.get_running_loop().time() + 120
    while True:  # until the processors have put the report in the review queue and committed their offsets
        code, out, err = await firebus("status", "--json", env=env)
        assert code == 0, err
        status = json.loads(out)
        done = status["review"]["pending"] >= 1 and "firebus-processors" in status["consumer_lag"]
        if done or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(1)
    assert set(status) == {
        "kafka",
        "stages",
        "stages_source",
        "stages_problem",
        "consumer_lag",
        "review",
        "dead_letters_last_hour",
        "last_record",
    }
    assert status["kafka"] == settings.bootstrap_servers
    assert status["stages_source"] == up.stages_url
    assert [report["stage"] for report in status["stages"]] == ["broker", *STAGES]
    assert status["review"] == {"pending": 1, "overdue": 0}
    assert {"firebus-intake", "firebus-processors"} <= set(status["consumer_lag"])
    for group in status["consumer_lag"].values():
        assert set(group) == {"total", "topics"}
        assert group["total"] == sum(group["topics"].values())
    assert status["dead_letters_last_hour"] == {"total": 0, "by_reason": {}}
    assert set(status["last_record"]) == {topic.name for topic in ALL_TOPICS}
    assert status["last_record"][receipt.topic] is not None
    assert status["last_record"]["firebus.tier.public"] is None

    code, table, err = await firebus("status", env=env)
    assert code == 0, err
    assert "review queue: 1 pending, 0 overdue" in table
    assert f"stages ({up.stages_url}):" in table


# --- the banner, in Chromium -------------------------------------------------------------------------------------


async def logged_in(browser: Browser, up: Up, account: tuple[str, str], target: str) -> Page:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{up.portal_url}/login?next={target}")
    await page.fill("input[name=username]", account[0])
    await page.fill("input[name=password]", account[1])
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(f"{up.portal_url}{target}")
    return page


async def test_console_and_member_area_show_the_banner_while_a_stage_is_down(up: Up, browser: Browser) -> None:
    """SIGKILL the processors: within seconds the HQ console and the member area show the red banner naming the
    stage and how it went down, without a reload; when the supervisor has it running again, the banner goes."""
    console = await logged_in(browser, up, HQ, "/hq")
    members = await logged_in(browser, up, MEMBER, "/members")
    await expect(console.locator("#live-status")).to_have_attribute("data-state", "open", timeout=30_000)
    for page in (console, members):
        await expect(page.locator("#system-banner")).to_be_hidden()
        await page.evaluate("window.__noReload = true")

    before = await up.signal_stage("processors", signal.SIGKILL)
    for page in (console, members):
        banner = page.locator("#system-banner")
        await expect(banner).to_be_visible(timeout=30_000)
        line = banner.locator('[data-alert="processors"]')
        await expect(line).to_contain_text("流处理（processors")
        await expect(line).to_contain_text("signal SIGKILL")
        assert await page.evaluate("window.__noReload === true")  # pushed live, the page never reloaded
    await console.screenshot(path=str(ARTIFACTS / "portal-hq-banner-stage-down.png"), full_page=True)
    box = await console.locator("#system-banner").bounding_box()
    assert box is not None
    assert box["y"] == 0  # at the very top of the page
    assert box["width"] >= 1200  # across the whole page

    await up.until(is_back("processors", before), "the processors back")
    for page in (console, members):
        await expect(page.locator("#system-banner")).to_be_hidden(timeout=30_000)
        assert await page.evaluate("window.__noReload === true")
    await console.screenshot(path=str(ARTIFACTS / "portal-hq-banner-cleared.png"), full_page=True)
    for page in (console, members):
        await page.context.close()


# --- stages killed ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "signum", "cause"),
    [
        ("processors", signal.SIGKILL, "signal SIGKILL"),
        ("sinks", signal.SIGKILL, "signal SIGKILL"),
        ("portal", signal.SIGKILL, "signal SIGKILL"),
        ("portal", signal.SIGTERM, "signal SIGTERM"),
    ],
    ids=["kill-processors", "kill-sinks", "kill-portal", "term-portal"],
)
async def test_a_stage_that_dies_comes_back_and_the_cause_is_reported(
    up: Up, stage: str, signum: signal.Signals, cause: str
) -> None:
    """A stage killed, or stopped by someone else's SIGTERM, is restarted; /stages counts the restart and says how
    it ended, the terminal says it too, and the other stages were left alone."""
    await up.all_running()
    others = {name: report["pid"] for name, report in (await up.stages()).items() if name != stage}
    before = await up.signal_stage(stage, signum)
    stages = await up.until(is_back(stage, before), f"{stage} back after {signum.name}")
    assert stages[stage]["last_exit"] == cause
    assert {name: report["pid"] for name, report in stages.items() if name != stage} == others
    assert f"  {stage + ':':<11} went down ({cause}" in up.err()
    assert f"  {stage + ':':<11} running again (pid {stages[stage]['pid']}, restart {stages[stage]['restarts']})" in (
        up.out()
    )
    if stage == "portal":
        assert get_json(f"{up.portal_url}/healthz")[0] == 200


# --- the embedded broker killed ------------------------------------------------------------------------------------


async def test_the_embedded_broker_killed_is_restarted_with_its_topics_and_the_loss_is_said(up: Up) -> None:
    """SIGKILL Tansu: `firebus up` starts it again, recreates every topic and says loudly, on the terminal and in
    /stages, that everything on it was lost and that production runs Apache Kafka."""
    await up.all_running()
    before = await up.signal_stage("broker", signal.SIGKILL)
    stages = await up.until(is_back("broker", before), "the broker back")
    broker = stages["broker"]
    assert broker["last_exit"] == "signal SIGKILL"
    assert "everything on it was lost" in broker["last_error"]
    assert "Apache Kafka" in broker["last_error"]
    err = up.err()
    assert "THE EMBEDDED BROKER RESTARTED (signal SIGKILL)" in err
    assert "EVERYTHING ON IT WAS LOST" in err
    assert f"{len(ALL_TOPICS)} topic(s) were recreated empty" in err
    assert "production runs Apache Kafka (deploy/)" in err
    assert "firebus archive replay --from-files" in err
    states = await describe_topics(up.settings, with_configs=False)
    assert [state.topic.name for state in states if not state.exists] == []
    # Created by firebus, not auto-created by a stage's client reconnecting first (the broker's default count).
    assert [state.problems() for state in states if state.problems()] == []
    assert {state.topic.name: state.partitions for state in states} == {
        topic.name: partitions_to_create(up.settings, topic) for topic in ALL_TOPICS
    }
    assert list(stages) == ["broker", *STAGES]  # every stage still reported, whatever the loss did to it


async def test_ctrl_c_stops_everything_in_order(up: Up) -> None:
    """Ctrl-C (SIGINT): the stages, then the broker, are stopped; `firebus up` exits 0 and leaves no process."""
    pids = [report["pid"] for report in (await up.stages()).values() if report["pid"]]
    assert await up.stop(signal.SIGINT) == 0
    out = up.out()
    assert out.rstrip().endswith("firebus: stopped")
    assert "firebus: stopping (portal, sinks, processors, then the broker)" in out
    assert [pid for pid in pids if alive(pid)] == []


# --- a stage that keeps failing ------------------------------------------------------------------------------------


async def test_a_stage_that_keeps_failing_is_given_up_and_the_others_keep_running(tmp_path: Path) -> None:
    """Processors that cannot start (their review policy is missing) are restarted with backoff, then given up after
    3 failures within the window: an error line on the terminal with the cause and the log's last error, state
    `failed` in /stages; the sinks and the portal keep running; SIGTERM still stops everything."""
    schema = await create_schema()
    missing = tmp_path / "no-such-policy.toml"
    up = Up(
        tmp_path / "failing",
        dsn=dsn_for(schema),
        env={
            "FIREBUS_REVIEW_POLICY": str(missing),
            "FIREBUS_SUPERVISOR_GIVE_UP_AFTER": "3",
            "FIREBUS_SUPERVISOR_BACKOFF_S": "0.2",
            "FIREBUS_SUPERVISOR_GIVE_UP_WITHIN_S": "600",
        },
    )
    await up.start()
    try:
        stages = await up.until(lambda stages: stages["processors"]["state"] == "failed", "the processors given up")
        processors = stages["processors"]
        assert (processors["restarts"], processors["last_exit"], processors["pid"]) == (2, "exit code 1", None)
        assert processors["last_error"].startswith("firebus: error: ")
        assert str(missing) in processors["last_error"]
        [given_up] = [line for line in up.err().splitlines() if line.startswith("firebus: error: processors")]
        assert given_up.startswith("firebus: error: processors failed 3 times within 600 s; not restarting it")
        assert "exit code 1" in given_up
        assert str(missing) in given_up
        assert str(up.home / "processors.log") in given_up

        others = await up.until(
            lambda stages: all(stages[name]["state"] == "running" for name in ("broker", "sinks", "portal")),
            "the others running",
        )
        assert (others["sinks"]["restarts"], others["portal"]["restarts"]) == (0, 0)
        assert get_json(f"{up.portal_url}/healthz")[0] == 200
        pids = [report["pid"] for report in others.values() if report["pid"]]
    finally:
        code = await up.stop(signal.SIGTERM)
        await drop_schema(schema)
    assert code == 0
    assert [pid for pid in pids if alive(pid)] == []
    assert '"event": "sink_stopped"' in (up.home / "sinks.log").read_text()  # stopped cleanly, not killed


# --- ports taken ---------------------------------------------------------------------------------------------------


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("variable", "named", "advice"),
    [
        ("FIREBUS_PORTAL_PORT", "the portal", "FIREBUS_PORTAL_PORT"),
        ("FIREBUS_SUPERVISOR_PORT", "the supervisor", "FIREBUS_SUPERVISOR_PORT"),
        (
            "FIREBUS_BROKER_PORT",
            "the embedded broker",
            "FIREBUS_BROKER_PORT, or FIREBUS_BOOTSTRAP to use the broker there",
        ),
    ],
)
async def test_a_port_taken_stops_up_in_one_line_before_anything_starts(
    tmp_path: Path, held_port: int, variable: str, named: str, advice: str
) -> None:
    """Any of its ports held by another process: `firebus up` prints one error line naming it and exits 1, before
    the broker or any stage starts."""
    up = Up(tmp_path, dsn=dsn_for("public"), env={variable: str(held_port)})
    code, out, err = await firebus("up", env=up.env)
    assert code == 1
    assert error_lines(err) == [
        f"firebus: error: {named}: port {held_port} on 127.0.0.1 is taken by another process (Address already in use); "
        f"stop that process or choose another port ({advice})"
    ]
    assert "firebus is up" not in out
    assert not (up.home / "broker.log").exists()
    assert not any((up.home / f"{stage}.log").exists() for stage in STAGES)


async def test_up_on_the_port_of_another_broker_refuses_to_use_it(tmp_path: Path, settings: Settings) -> None:
    """The embedded broker's port held by another broker (the issue: `firebus up` quietly ran against it): one
    line, exit 1."""
    port = settings.bootstrap_servers.rpartition(":")[2]
    up = Up(tmp_path, dsn=dsn_for("public"), env={"FIREBUS_BROKER_PORT": port})
    code, out, err = await firebus("up", env=up.env)
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith(f"firebus: error: the embedded broker: port {port} on 127.0.0.1 is taken")
    assert "firebus is up" not in out


async def test_broker_on_a_taken_port_is_one_line(held_port: int, cli_env: dict[str, str]) -> None:
    """`firebus broker --port` on a port another process holds: one line, exit 1."""
    code, out, err = await firebus("broker", "--port", str(held_port), env=cli_env)
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith(f"firebus: error: the embedded broker: port {held_port} on 127.0.0.1 is taken")
    assert "ready" not in out


async def test_portal_on_a_taken_port_is_one_line(held_port: int, cli_env: dict[str, str]) -> None:
    """`firebus portal --port` on a port another process holds: one line, exit 1."""
    code, _out, err = await firebus("portal", "--port", str(held_port), env=cli_env)
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith(f"firebus: error: the portal: port {held_port} on 127.0.0.1 is taken")


async def test_status_with_kafka_unreachable_is_one_line(cli_env: dict[str, str]) -> None:
    """`firebus status` with no broker at the configured address: one line naming it, exit 1."""
    bootstrap = f"127.0.0.1:{free_port()}"
    code, out, err = await firebus("status", "--json", env={**cli_env, "FIREBUS_BOOTSTRAP": bootstrap})
    assert code == 1
    assert error_lines(err) == [f"firebus: error: cannot reach Kafka at {bootstrap}: nothing answers there"]
    assert out == ""
