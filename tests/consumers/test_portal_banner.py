"""The system banner's words and where it shows: the HQ console and the member area, never the public board."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from consumers.portal.alerts import alerts_for
from consumers.portal.app import Portal, create_app
from consumers.portal.state import LISTENER_BACKLOG, PortalState, SystemStatus
from firebus.county import County
from firebus.settings import Settings
from firebus.stages import StageReport, StagesSeen, StageState
from tests.asgi import asgi_request
from tests.consumers.portal_sessions import logged_in
from tests.consumers.test_portal_units import InMemoryDesk

ZONE = ZoneInfo("Asia/Shanghai")
SINCE = datetime(2026, 3, 12, 0, 30, tzinfo=UTC)  # 08:30 in the county


def report(stage: str, state: StageState, **changes: object) -> StageReport:
    return StageReport.model_validate({"stage": stage, "state": state, "since": SINCE, **changes})


HEALTHY = StagesSeen(
    tuple(report(stage, StageState.RUNNING, pid=10) for stage in ("broker", "processors", "sinks", "portal")),
    source="http://127.0.0.1:9100/stages",
)


def test_all_well_is_no_banner() -> None:
    """Every stage running and Kafka answering: nothing to show."""
    assert alerts_for(HEALTHY, kafka_problem=None, follower_problem=None, zone=ZONE) == ()


def test_a_stage_down_is_named_with_what_the_supervisor_says() -> None:
    """A stage that is not running is named in Chinese, with its state, restarts, since when (county time), how it
    last ended and its last error."""
    seen = StagesSeen(
        (
            *HEALTHY.reports[:1],
            report(
                "processors", StageState.RESTARTING, restarts=2, last_exit="signal SIGKILL", last_error="KeyError: x"
            ),
            *HEALTHY.reports[2:],
        )
    )
    [alert] = alerts_for(seen, kafka_problem=None, follower_problem=None, zone=ZONE)
    assert alert.key == "processors"
    assert alert.headline == "流处理（processors：校验、审核、分级发布）已停止运行，正在自动重启（已重启 2 次）"
    assert alert.detail == "自 08:30:00 起；上次退出：signal SIGKILL；最后错误：KeyError: x"


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (StageState.FAILED, "多次失败，已停止自动重启，请运维人员立即处理"),
        (StageState.STARTING, "正在启动，尚未就绪"),
        (StageState.STOPPED, "已停止运行"),
    ],
)
def test_every_state_but_running_is_shown(state: StageState, words: str) -> None:
    """Failed, starting and stopped stages are on the banner too, each in its own words."""
    seen = StagesSeen((report("sinks", state),))
    [alert] = alerts_for(seen, kafka_problem=None, follower_problem=None, zone=ZONE)
    assert alert.headline == f"输出（sinks：归档、短信）{words}"


def test_kafka_unreachable_comes_first() -> None:
    """The portal's own Kafka connection down is said first, with what the probe found."""
    seen = StagesSeen((report("sinks", StageState.RESTARTING),))
    alerts = alerts_for(seen, kafka_problem="cannot reach Kafka at k:9092", follower_problem=None, zone=ZONE)
    assert [alert.key for alert in alerts] == ["kafka", "sinks"]
    assert alerts[0].headline == "门户与消息总线（Kafka）的连接中断"
    assert "cannot reach Kafka at k:9092" in alerts[0].detail


def test_a_silent_supervisor_and_a_stopped_follower_are_shown() -> None:
    """No answer from the supervisor, or a portal that stopped following the topics: both on the banner."""
    alerts = alerts_for(
        StagesSeen(problem="the supervisor at http://x/stages does not answer"),
        kafka_problem=None,
        follower_problem="BrokerError: gone",
        zone=ZONE,
    )
    assert [(alert.key, alert.detail) for alert in alerts] == [
        ("follower", "BrokerError: gone"),
        ("supervisor", "the supervisor at http://x/stages does not answer"),
    ]


def test_a_restarted_embedded_broker_says_what_was_lost() -> None:
    """The embedded broker running again after a restart: the banner says everything on it was lost and how to
    restore."""
    seen = StagesSeen((report("broker", StageState.RUNNING, restarts=1, last_exit="signal SIGKILL"),))
    [alert] = alerts_for(seen, kafka_problem=None, follower_problem=None, zone=ZONE)
    assert alert.key == "broker-lost"
    assert alert.headline == "嵌入式消息总线于 08:30:00 重启，此前总线上的全部信息已丢失"
    assert "firebus archive replay" in alert.detail
    assert "Apache Kafka" in alert.detail


async def test_the_state_tells_listeners_of_each_change_only() -> None:
    """A new set of alerts reaches every listener (even one whose backlog is full); the same set again reaches
    nobody."""
    state = PortalState()
    queue = state.listen()
    alerts = alerts_for(
        StagesSeen((report("sinks", StageState.FAILED),)), kafka_problem=None, follower_problem=None, zone=ZONE
    )
    assert state.set_alerts(alerts)
    assert queue.get_nowait() == SystemStatus(alerts)
    assert not state.set_alerts(alerts)
    assert queue.empty()
    for _ in range(LISTENER_BACKLOG):
        queue.put_nowait(SystemStatus(()))
    assert state.set_alerts(())
    assert queue.qsize() == LISTENER_BACKLOG + 1


async def page(portal: Portal, path: str, account: str | None) -> str:
    headers = []
    if account is not None:
        headers.append((await logged_in(portal, account)).cookie)
    response = await asgi_request(create_app(portal, follow_topics=False), "GET", path, headers=headers)
    assert response.status == 200
    return html.unescape(response.body.decode())


@pytest.fixture
def portal(county: County) -> Portal:
    return Portal(settings=Settings(), county=county, desk=InMemoryDesk(county))


@pytest.mark.parametrize(("path", "account"), [("/hq", "hq-wang"), ("/members", "forestry")])
async def test_console_and_member_area_show_the_banner(portal: Portal, path: str, account: str) -> None:
    """With a stage down, the HQ console and the member area carry the banner at the top, naming it."""
    seen = StagesSeen((report("processors", StageState.FAILED, last_error="firebus: error: policy missing"),))
    portal.state.set_alerts(alerts_for(seen, kafka_problem=None, follower_problem=None, zone=ZONE))
    body = await page(portal, path, account)
    assert body.index('id="system-banner"') < body.index('<header class="top">')
    banner = body[body.index('id="system-banner"') : body.index('<header class="top">')]
    assert " hidden" not in banner.split(">")[0]
    assert "流处理（processors：校验、审核、分级发布）多次失败" in banner
    assert "firebus: error: policy missing" in banner
    assert "/static/banner.js" in body


@pytest.mark.parametrize(("path", "account"), [("/hq", "hq-wang"), ("/members", "forestry")])
async def test_all_well_the_banner_is_there_but_hidden(portal: Portal, path: str, account: str) -> None:
    """All well: the banner element is on the page (so a live update can fill it) but hidden."""
    body = await page(portal, path, account)
    opening = body[body.index('id="system-banner"') :].split(">")[0]
    assert " hidden" in opening


async def test_the_public_never_sees_the_banner(portal: Portal) -> None:
    """The public board has no banner, whatever is down."""
    portal.state.set_alerts(
        alerts_for(
            StagesSeen((report("sinks", StageState.FAILED),)), kafka_problem=None, follower_problem=None, zone=ZONE
        )
    )
    body = await page(portal, "/", None)
    assert "system-banner" not in body
    assert "banner.js" not in body


async def test_member_pages_follow_the_status_stream(portal: Portal) -> None:
    """Member pages name their status stream (the console has the banner on its live stream)."""
    assert 'data-status-stream="/members/status/stream"' in await page(portal, "/members", "forestry")
    assert "data-status-stream" not in await page(portal, "/hq", "hq-wang")
