"""`firebus status`'s own arithmetic and wording, on given figures (the command against a running bus is in
test_up.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from cli.status import Status, review_counts, status_lines, where_stages_are
from firebus.records import ReviewStatus
from firebus.settings import Settings
from firebus.stages import StageReport, StagesSeen, StageState
from tests.samples import review_item

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)


def test_pending_and_overdue_items() -> None:
    """Pending items are counted; those past their deadline are overdue; decided items are neither."""
    items = [
        review_item(deadline=NOW + timedelta(minutes=5)),
        review_item(deadline=NOW - timedelta(seconds=1)),
        review_item(deadline=NOW),
        review_item(ReviewStatus.RELEASED, deadline=NOW - timedelta(hours=1)),
        review_item(ReviewStatus.REJECTED, deadline=NOW - timedelta(hours=1)),
    ]
    assert review_counts({item.event_id: item for item in items}, NOW) == (3, 1)


def test_the_local_supervisor_is_asked_when_none_is_named() -> None:
    """No stages_url: the local `firebus up` supervisor on supervisor_port; a named one is kept."""
    assert where_stages_are(Settings(supervisor_port=9200)).stages_url == "http://127.0.0.1:9200/stages"
    assert where_stages_are(Settings(stages_url="http://hq:1/stages")).stages_url == "http://hq:1/stages"


STATUS = Status(
    kafka="k:9092",
    stages=StagesSeen(
        (
            StageReport(stage="broker", state=StageState.RUNNING, pid=7, since=NOW),
            StageReport(
                stage="sinks",
                state=StageState.RESTARTING,
                restarts=2,
                last_exit="signal SIGKILL",
                last_error="KeyError: x",
                since=NOW,
            ),
        ),
        source="http://127.0.0.1:9100/stages",
    ),
    lag={
        "firebus-intake": {"firebus.intake.fire_report": 0},
        "firebus-sink-archive": {"firebus.audit": 5, "firebus.tier.hq": 2},
    },
    pending=3,
    overdue=1,
    dead_letters=Counter({"bad_signature": 2, "corrupt": 1}),
    last_record={"firebus.audit": NOW - timedelta(seconds=90), "firebus.deadletter": None},
)


def test_the_json_keys() -> None:
    """--json: the keys scripts rely on, lag summed per group, dead letters by reason, times in ISO UTC."""
    shown = STATUS.as_json()
    assert shown["consumer_lag"] == {
        "firebus-intake": {"total": 0, "topics": {"firebus.intake.fire_report": 0}},
        "firebus-sink-archive": {"total": 7, "topics": {"firebus.audit": 5, "firebus.tier.hq": 2}},
    }
    assert shown["review"] == {"pending": 3, "overdue": 1}
    assert shown["dead_letters_last_hour"] == {"total": 3, "by_reason": {"bad_signature": 2, "corrupt": 1}}
    assert shown["last_record"] == {"firebus.audit": "2026-03-12T07:58:30Z", "firebus.deadletter": None}
    assert shown["stages"][1]["state"] == "restarting"
    assert (shown["stages_source"], shown["stages_problem"]) == ("http://127.0.0.1:9100/stages", None)


def test_the_table() -> None:
    """The table names each stage's state and cause, each group's lag, the queue, the dead letters and the ages."""
    lines = status_lines(STATUS, NOW)
    assert "stages (http://127.0.0.1:9100/stages):" in lines
    [sinks] = [line for line in lines if line.strip().startswith("sinks")]
    assert "restarting" in sinks
    assert "(signal SIGKILL; KeyError: x)" in sinks
    [archive] = [line for line in lines if "firebus-sink-archive" in line]
    assert archive.split()[1] == "7"
    assert "review queue: 3 pending, 1 overdue" in lines
    assert "dead letters in the last hour: 3 (bad_signature 2, corrupt 1)" in lines
    assert "  firebus.audit       2026-03-12 07:58:30Z (90 s ago)" in lines
    assert "  firebus.deadletter  -" in lines


def test_stages_unknown_say_why() -> None:
    """No stage could be seen: the table says why instead of listing none."""
    status = Status(
        "k:9092",
        StagesSeen(problem="the supervisor at http://x/stages does not answer"),
        {},
        0,
        0,
        Counter(),
        {"t": None},
    )
    lines = status_lines(status, NOW)
    assert "stages: unknown (the supervisor at http://x/stages does not answer)" in lines
    assert "consumer lag: no firebus consumer group has committed yet" in lines
