"""How an observer sees the stages (the supervisor's /stages, else each /readyz) and Kafka, against real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from firebus.broker import free_port
from firebus.settings import Settings
from firebus.stages import (
    StageReport,
    StageState,
    bootstrap_addresses,
    kafka_problem,
    observe_stages,
    reports_from_json,
)

REPORT = {
    "stage": "processors",
    "state": "restarting",
    "pid": None,
    "restarts": 2,
    "last_exit": "signal SIGKILL",
    "last_error": "ValueError: poison",
    "since": "2026-03-12T08:00:01Z",
}


def test_reports_are_read_back_from_the_json() -> None:
    """The supervisor's JSON list reads back as reports, time in UTC."""
    [report] = reports_from_json([REPORT])
    assert (report.stage, report.state, report.restarts) == ("processors", StageState.RESTARTING, 2)
    assert report.since == datetime(2026, 3, 12, 8, 0, 1, tzinfo=UTC)
    assert report.as_json() == REPORT


@pytest.mark.parametrize("answer", [{"stages": []}, [{"stage": "x"}], [{**REPORT, "state": "sleeping"}]])
def test_anything_else_is_refused(answer: object) -> None:
    """Not a list of reports: a ValueError (the observer then says the supervisor does not answer properly)."""
    with pytest.raises(ValueError, match="/stages"):
        reports_from_json(answer)


@pytest.mark.parametrize(
    ("bootstrap", "addresses"),
    [
        ("127.0.0.1:9092", [("127.0.0.1", 9092)]),
        ("a:1, b:2", [("a", 1), ("b", 2)]),
        ("kafka.county.gov", [("kafka.county.gov", 9092)]),
        ("[::1]:9093", [("::1", 9093)]),
    ],
)
def test_bootstrap_addresses(bootstrap: str, addresses: list[tuple[str, int]]) -> None:
    """Hosts and ports of a bootstrap list, 9092 when no port is given."""
    assert bootstrap_addresses(bootstrap) == addresses


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts a real HTTP server on loopback with the given routes; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(*routes: tuple[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes:
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def answer(status: int, body: object) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return handler


async def test_the_supervisor_is_asked_first(serve: Serve) -> None:
    """With a stages_url, the supervisor's reports are what is seen."""
    base = await serve(("/stages", answer(200, [REPORT])))
    seen = await observe_stages(Settings(stages_url=f"{base}/stages"))
    assert seen.source == f"{base}/stages"
    assert seen.problem is None
    assert [report.stage for report in seen.unhealthy] == ["processors"]


async def test_a_silent_supervisor_is_a_problem() -> None:
    """A supervisor that was named but does not answer is reported (no stage can be seen)."""
    url = f"http://127.0.0.1:{free_port()}/stages"
    seen = await observe_stages(Settings(stages_url=url))
    assert seen.reports == ()
    assert seen.problem is not None
    assert url in seen.problem


async def test_without_a_supervisor_each_readiness_url_is_asked(serve: Serve) -> None:
    """No supervisor: each stage's /readyz — ready is running, not ready is starting with its reason, silence is
    stopped."""
    base = await serve(
        ("/ready", answer(200, {"ready": True})),
        ("/busy", answer(503, {"ready": False, "reason": "consumer group not joined"})),
    )
    silent = f"http://127.0.0.1:{free_port()}/readyz"
    seen = await observe_stages(
        Settings(
            stages_url=f"http://127.0.0.1:{free_port()}/stages",
            readiness_urls={"processors": f"{base}/ready", "sinks": f"{base}/busy", "portal": silent},
        )
    )
    assert seen.source == "readiness"
    by_stage = {report.stage: report for report in seen.reports}
    assert by_stage["processors"].state is StageState.RUNNING
    assert (by_stage["sinks"].state, by_stage["sinks"].last_error) == (
        StageState.STARTING,
        "consumer group not joined",
    )
    assert by_stage["portal"].state is StageState.STOPPED
    assert silent in (by_stage["portal"].last_error or "")


async def test_nothing_to_ask_is_no_problem() -> None:
    """Neither a supervisor nor readiness URLs (a lone portal in development): nothing seen, nothing wrong."""
    seen = await observe_stages(Settings())
    assert (seen.reports, seen.source, seen.problem) == ((), None, None)


async def test_kafka_answers(settings: Settings) -> None:
    """The session broker answers a metadata request."""
    assert await kafka_problem(settings) is None


async def test_no_kafka_is_one_line() -> None:
    """Nothing listening: one line naming the address."""
    bootstrap = f"127.0.0.1:{free_port()}"
    problem = await kafka_problem(Settings(bootstrap=bootstrap))
    assert problem == f"cannot reach Kafka at {bootstrap}: nothing answers there"


async def test_something_else_than_kafka_is_no_kafka(serve: Serve) -> None:
    """A port that accepts connections but speaks no Kafka (a web server) is not a working bus."""
    base = await serve(("/", answer(200, {})))
    problem = await kafka_problem(Settings(bootstrap=base.removeprefix("http://"), connect_timeout_s=2))
    assert problem is not None
    assert "does not answer" in problem


def test_only_running_is_healthy() -> None:
    """Every state but running puts the stage on the banner."""
    since = datetime(2026, 3, 12, tzinfo=UTC)
    assert [state for state in StageState if StageReport(stage="x", state=state, since=since).healthy] == [
        StageState.RUNNING
    ]
