"""The supervisor's decisions, without processes: backoff, giving up, the stage's state and what is said."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cli.supervision import (
    GiveUp,
    Restart,
    RestartPolicy,
    StageBook,
    describe_exit,
    failure_line,
    last_error_line,
    one_line,
)
from firebus.settings import Settings
from firebus.stages import StageState

T0 = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
DEFAULT = RestartPolicy()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def book(policy: RestartPolicy = DEFAULT) -> StageBook:
    started = StageBook("processors", policy, now=T0)
    started.started(101, now=T0)
    return started


@pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 30.0), (60, 30.0)])
def test_backoff_doubles_and_is_capped(failures: int, delay: float) -> None:
    """The wait doubles with each recent failure, from 1 s, and never exceeds the cap (30 s)."""
    assert DEFAULT.delay_s(failures) == delay


def test_the_policy_comes_from_the_settings() -> None:
    """Each number of the policy is a setting."""
    settings = Settings(
        supervisor_backoff_s=0.5,
        supervisor_backoff_max_s=4,
        supervisor_give_up_after=3,
        supervisor_give_up_within_s=20,
    )
    assert RestartPolicy.of(settings) == RestartPolicy(first_delay_s=0.5, max_delay_s=4, give_up_after=3, within_s=20)


def test_the_default_gives_up_after_five_failures_within_a_minute() -> None:
    """Defaults: the fifth failure within 60 s gives the stage up."""
    assert (Settings().supervisor_give_up_after, Settings().supervisor_give_up_within_s) == (5, 60.0)


def test_a_stage_is_starting_then_running_once_ready() -> None:
    """Started is ``starting`` with its pid; ready makes it ``running`` and says since when."""
    stage = book()
    assert (stage.report().state, stage.report().pid) == (StageState.STARTING, 101)
    stage.ready(now=at(3))
    report = stage.report()
    assert (report.state, report.since, report.restarts) == (StageState.RUNNING, at(3), 0)


def test_an_exit_restarts_with_its_cause_and_counts_the_restart() -> None:
    """An exit is remembered (how it ended, the last error), the stage is ``restarting``; its next start is a
    restart."""
    stage = book()
    stage.ready(now=at(1))
    decision = stage.exited(-9, "ValueError: poison", now=at(10))
    assert decision == Restart(after_s=1.0, recent_failures=1)
    report = stage.report()
    assert (report.state, report.pid, report.last_exit, report.last_error) == (
        StageState.RESTARTING,
        None,
        "signal SIGKILL",
        "ValueError: poison",
    )
    stage.started(102, now=at(11))
    stage.ready(now=at(13))
    report = stage.report()
    assert (report.state, report.pid, report.restarts, report.last_exit) == (
        StageState.RUNNING,
        102,
        1,
        "signal SIGKILL",
    )


def test_five_fast_failures_give_the_stage_up() -> None:
    """Failures 1–4 within the minute restart it with growing waits; the fifth gives it up: ``failed``, for good."""
    stage = book()
    decisions = []
    for failure in range(5):
        decisions.append(stage.exited(1, "firebus: error: config file /x does not exist", now=at(failure * 10)))
        if failure < 4:
            stage.started(200 + failure, now=at(failure * 10 + 1))
    assert decisions[:4] == [Restart(1.0, 1), Restart(2.0, 2), Restart(4.0, 3), Restart(8.0, 4)]
    assert decisions[4] == GiveUp(failures=5, within_s=60.0)
    assert stage.report().state is StageState.FAILED
    assert stage.report().restarts == 4


def test_failures_spread_wider_than_the_window_never_give_up() -> None:
    """A stage failing once every 61 s is restarted each time, after the first wait: old failures leave the window."""
    stage = book()
    for failure in range(20):
        decision = stage.exited(1, None, now=at(failure * 61))
        assert decision == Restart(after_s=1.0, recent_failures=1)
        stage.started(300 + failure, now=at(failure * 61 + 1))


def test_a_failure_exactly_at_the_window_edge_still_counts() -> None:
    """Within 60 s means up to and including 60 s ago."""
    stage = book(RestartPolicy(give_up_after=2, within_s=60))
    stage.exited(1, None, now=at(0))
    stage.started(2, now=at(1))
    assert isinstance(stage.exited(1, None, now=at(60)), GiveUp)


def test_a_start_that_fails_counts_as_a_failure_with_its_error() -> None:
    """A stage that cannot even be started (no process) fails with that error as its last error."""
    stage = StageBook("broker", DEFAULT, now=T0)
    decision = stage.failed(now=at(1), error="the embedded broker: port 9092 on 127.0.0.1 is taken")
    assert isinstance(decision, Restart)
    assert stage.report().last_error == "the embedded broker: port 9092 on 127.0.0.1 is taken"


def test_ready_after_an_exit_changes_nothing() -> None:
    """A late readiness answer from a process that already died does not make the stage running."""
    stage = book()
    stage.exited(1, None, now=at(1))
    stage.ready(now=at(2))
    assert stage.report().state is StageState.RESTARTING


def test_stopped_on_purpose() -> None:
    """Stopped by the supervisor: ``stopped``, no pid, and no failure counted."""
    stage = book()
    stage.stopped(now=at(5))
    report = stage.report()
    assert (report.state, report.pid, report.last_exit) == (StageState.STOPPED, None, None)


def test_the_report_is_the_stages_contract() -> None:
    """One entry of GET /stages: exactly the agreed keys, time in ISO UTC."""
    stage = book()
    stage.exited(-15, None, now=at(1))
    assert stage.report().as_json() == {
        "stage": "processors",
        "state": "restarting",
        "pid": None,
        "restarts": 0,
        "last_exit": "signal SIGTERM",
        "last_error": None,
        "since": "2026-03-12T08:00:01Z",
    }


@pytest.mark.parametrize(
    ("returncode", "said"), [(0, "exit code 0"), (1, "exit code 1"), (-9, "signal SIGKILL"), (-15, "signal SIGTERM")]
)
def test_how_a_process_ended(returncode: int, said: str) -> None:
    """Exit codes and signals in words."""
    assert describe_exit(returncode) == said


def _json(level: str, event: str, **extra: str) -> str:
    return json.dumps({"event": event, "level": level, "timestamp": "2026-03-12T08:00:00Z", **extra})


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        pytest.param(
            _json("info", "processors_starting") + "\nfirebus: error: config file /x does not exist\n",
            "firebus: error: config file /x does not exist",
            id="cli-error-line",
        ),
        pytest.param(
            _json("error", "sink_failed", error="CommitFailedError") + "\n" + _json("info", "sink_stopped"),
            "sink_failed: error=CommitFailedError",
            id="json-error-then-info",
        ),
        pytest.param(
            _json("critical", "crashed", exception="Traceback (most recent call last):\n  ...\nKeyError: 'x'"),
            "crashed: KeyError: 'x'",
            id="json-exception-last-line",
        ),
        pytest.param(
            'Traceback (most recent call last):\n  File "x.py", line 1\n'
            "faust.exceptions.ConsistencyError: persisted offset 12 higher than the last offset 3\n",
            "faust.exceptions.ConsistencyError: persisted offset 12 higher than the last offset 3",
            id="traceback",
        ),
        pytest.param(
            "2026-03-12 08:00:00 [error    ] portal_follower_ended          error=BrokerError: gone\n",
            "2026-03-12 08:00:00 [error ] portal_follower_ended error=BrokerError: gone",
            id="console-rendered",
        ),
        pytest.param(_json("info", "started") + "\n" + _json("warning", "slow"), None, id="no-error"),
        pytest.param("", None, id="empty"),
    ],
)
def test_the_last_error_of_a_log(log: str, expected: str | None) -> None:
    """The last error line is found whatever renders it; a log with no error gives none."""
    assert last_error_line(log) == expected


def test_the_last_error_is_the_last_one() -> None:
    """Of several errors, the latest is reported."""
    log = "firebus: error: first\n" + _json("error", "second") + "\n"
    assert last_error_line(log) == "second"


def test_an_error_line_is_one_line_and_bounded() -> None:
    """Whatever its size, the reported error is one line of at most 300 characters."""
    found = one_line("x" * 1000 + "\n" + "y")
    assert "\n" not in found
    assert len(found) == 300


def test_failure_lines_name_the_cause_and_the_decision() -> None:
    """The terminal says how the stage ended, its last error, and when it restarts or that it was given up."""
    stage = book()
    decision = stage.exited(-9, "ValueError: poison", now=at(1))
    assert failure_line(stage.report(), decision) == (
        "  processors: went down (signal SIGKILL; last error: ValueError: poison); restarting in 1 s"
    )
    given_up = failure_line(stage.report(), GiveUp(failures=5, within_s=60))
    assert given_up == (
        "processors failed 5 times within 60 s; not restarting it "
        "(last: signal SIGKILL; last error: ValueError: poison)"
    )
