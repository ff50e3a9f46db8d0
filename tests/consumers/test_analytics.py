"""The statistics as pure functions over hand-built facts: counts, lifecycle, latencies, rejections, deduplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from consumers.analytics import (
    CHARTS,
    AuditFact,
    Facts,
    ReleaseFact,
    compute,
    event_time,
    render_tables,
    within,
    write_charts,
    write_csv,
)
from firebus.errors import ConfigurationError

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: the next day starts 30 minutes later


def release(
    event_id: str,
    *,
    tier: str = "members",
    event_type: str = "fire_report",
    incident: str | None = None,
    townships: tuple[str, ...] = ("manghe",),
    occurred: datetime = T0,
    review_s: float = 60.0,
    reviewer_kind: str = "human",
    status: str | None = None,
    release_ms: int = 100,
) -> ReleaseFact:
    published = occurred + timedelta(minutes=1)
    decided = published + timedelta(seconds=review_s)
    return ReleaseFact(
        event_id=event_id,
        tier=tier,
        event_type=event_type,
        incident_id=incident,
        townships=townships,
        occurred_at=occurred,
        published_at=published,
        decided_at=decided,
        reviewer="hq-wang" if reviewer_kind == "human" else "policy:auto",
        reviewer_kind=reviewer_kind,
        released_at=decided + timedelta(milliseconds=release_ms),
        fire_status=status,
    )


def audit(
    audit_id: str,
    action: str,
    *,
    event_id: str | None = None,
    tier: str | None = None,
    reason: str | None = None,
    sink: str | None = None,
    verdict: str | None = None,
    at: datetime = T0,
) -> AuditFact:
    return AuditFact(audit_id, action, event_id, None, tier, reason, sink, verdict, at)


def table(frame: pd.DataFrame, key: str, value: str) -> dict[str, float]:
    return dict(zip(frame[key], frame[value], strict=True))


def test_counts_by_type_count_each_event_once_across_tiers_and_duplicates() -> None:
    """An event released to two tiers, and delivered twice by a replay, counts once in its type."""
    facts = Facts.of(
        releases=[
            release("a", tier="members"),
            release("a", tier="hq"),
            release("a", tier="hq"),
            release("b", event_type="risk_warning"),
            release("c", event_type="risk_warning"),
        ]
    )
    stats = compute(facts, zone=ZONE)
    assert table(stats.counts_by_type, "event_type", "events") == {"risk_warning": 2, "fire_report": 1}
    assert list(stats.counts_by_type["event_type"]) == ["risk_warning", "fire_report"]


@pytest.mark.parametrize(
    ("townships", "expected"),
    [
        ([("manghe",), ("manghe",)], {"manghe": 2}),
        ([("manghe", "dongye"), ("dongye",)], {"dongye": 2, "manghe": 1}),
        ([(), ("beiliu",)], {"(none)": 1, "beiliu": 1}),
    ],
)
def test_counts_by_township_count_every_named_township(
    townships: list[tuple[str, ...]], expected: dict[str, int]
) -> None:
    """An event counts in each township it names, and under (none) when it names none."""
    facts = Facts.of(releases=[release(f"e{n}", townships=names) for n, names in enumerate(townships)])
    assert table(compute(facts, zone=ZONE).counts_by_township, "township", "events") == expected


@pytest.mark.parametrize(
    ("offset_minutes", "day"),
    [(0, "2026-03-11"), (29, "2026-03-11"), (30, "2026-03-12"), (-16 * 60, "2026-03-11")],
)
def test_counts_by_day_use_the_shanghai_calendar_day_of_event_time(offset_minutes: int, day: str) -> None:
    """Days are Asia/Shanghai calendar days of occurred_at (16:00 UTC is already the next day)."""
    facts = Facts.of(releases=[release("a", occurred=T0 + timedelta(minutes=offset_minutes))])
    assert table(compute(facts, zone=ZONE).counts_by_day, "day", "events") == {day: 1}


def test_lifecycle_measures_minutes_from_the_first_report_to_each_milestone() -> None:
    """Per incident: first report → verified → contained → extinguished, in minutes; missing milestones stay empty."""
    fire = [
        release("r", incident="F1", status="reported"),
        release("v", incident="F1", status="verified", occurred=T0 + timedelta(minutes=10)),
        release("v2", incident="F1", status="verified", occurred=T0 + timedelta(minutes=50)),
        release("c", incident="F1", status="contained", occurred=T0 + timedelta(minutes=90)),
        release("x", incident="F1", status="extinguished", occurred=T0 + timedelta(minutes=240)),
        release("r2", incident="F2", status="reported"),
        release("v3", incident="F2", status="verified", occurred=T0 + timedelta(minutes=30)),
        release("w", event_type="traffic_control", incident="F1", occurred=T0 - timedelta(hours=1)),
    ]
    stats = compute(Facts.of(releases=fire), zone=ZONE)
    rows = stats.lifecycle.set_index("incident_id")
    assert rows.loc["F1", "to_verified_min"] == 10
    assert rows.loc["F1", "to_contained_min"] == 90
    assert rows.loc["F1", "to_extinguished_min"] == 240
    assert rows.loc["F2", "to_verified_min"] == 30
    assert rows["to_contained_min"].isna().tolist() == [False, True]
    summary = stats.lifecycle_summary.set_index("stage")
    assert summary.loc["report → verified", "count"] == 2
    assert summary.loc["report → verified", "p50"] == 20
    assert summary.loc["report → verified", "max"] == 30
    assert summary.loc["report → extinguished", "count"] == 1


@pytest.mark.parametrize(
    ("latencies", "p50", "p90", "maximum"),
    [([60.0], 60.0, 60.0, 60.0), ([10.0, 20.0, 30.0, 40.0, 100.0], 30.0, 76.0, 100.0), ([0.5, 1.5], 1.0, 1.4, 1.5)],
)
def test_review_latency_percentiles(latencies: list[float], p50: float, p90: float, maximum: float) -> None:
    """Review latency is published_at → decided_at, summarised with linear-interpolated p50 and p90 and the max."""
    facts = Facts.of(releases=[release(f"e{n}", review_s=s) for n, s in enumerate(latencies)])
    row = compute(facts, zone=ZONE).review_latency_by_type.set_index("event_type").loc["fire_report"]
    assert (row["count"], row["p50"], row["p90"], row["max"]) == (len(latencies), p50, p90, maximum)


def test_review_latency_splits_by_reviewer_kind_and_counts_an_event_once() -> None:
    """Each event's decision counts once (not per tier), grouped by human and policy reviewers."""
    facts = Facts.of(
        releases=[
            release("h", review_s=600, tier="members"),
            release("h", review_s=600, tier="hq"),
            release("p", review_s=1, reviewer_kind="policy_rule", event_type="risk_warning"),
        ]
    )
    stats = compute(facts, zone=ZONE)
    by_kind = stats.review_latency_by_reviewer_kind.set_index("reviewer_kind")
    assert by_kind.loc["human", "count"] == 1
    assert by_kind.loc["human", "p50"] == 600
    assert by_kind.loc["policy_rule", "p50"] == 1
    assert len(stats.review_latency) == 2


def test_delivery_latency_per_sink_takes_each_sinks_first_delivery() -> None:
    """Delivery latency joins a sink's first delivered audit of (event, tier) to the release's released_at."""
    r = release("a", tier="members")
    facts = Facts.of(
        releases=[r, release("b", tier="hq"), r],  # a re-delivered release counts once
        audits=[
            audit(
                "1", "delivered", event_id="a", tier="members", sink="archive", at=r.released_at + timedelta(seconds=2)
            ),
            audit(
                "2", "delivered", event_id="a", tier="members", sink="archive", at=r.released_at + timedelta(hours=1)
            ),
            audit("3", "delivered", event_id="a", tier="members", sink="sms", at=r.released_at + timedelta(seconds=8)),
            audit("4", "delivered", event_id="a", tier="hq", sink="sms", at=r.released_at),  # no such release
        ],
    )
    by_sink = compute(facts, zone=ZONE).delivery_latency_by_sink.set_index("sink")
    assert by_sink.loc["archive", "count"] == 1
    assert by_sink.loc["archive", "max"] == 2.0
    assert by_sink.loc["sms", "p50"] == 8.0


def test_rejections_and_quarantines_group_by_reason_code_and_count_each_audit_once() -> None:
    """Intake rejections group by their reason code, quarantines and review rejections by reason; duplicates once."""
    facts = Facts.of(
        audits=[
            audit("1", "rejected", reason="schema_invalid: header.severity is missing"),
            audit("1", "rejected", reason="schema_invalid: header.severity is missing"),
            audit("2", "rejected", reason="schema_invalid: body.status unknown"),
            audit("3", "rejected", reason="bad_signature: does not verify"),
            audit("4", "quarantined", reason="classified"),
            audit("5", "decided", reason="不实信息", verdict="reject"),
            audit("6", "decided", reason=None, verdict="approve"),
        ]
    )
    rejections = compute(facts, zone=ZONE).rejections
    rows = {(row["action"], row["reason"]): row["count"] for row in rejections.to_dict("records")}
    assert rows == {
        ("rejected", "schema_invalid"): 2,
        ("rejected", "bad_signature"): 1,
        ("quarantined", "classified"): 1,
        ("review_rejected", "不实信息"): 1,
    }


def test_window_keeps_events_by_event_time_and_their_audit_trail() -> None:
    """The window keeps releases by occurred_at, their audits whatever their time, and unreleased audits by time."""
    inside, outside = release("in", occurred=T0), release("out", occurred=T0 - timedelta(days=2))
    facts = Facts.of(
        releases=[inside, outside],
        audits=[
            audit("1", "delivered", event_id="in", at=T0 + timedelta(days=5)),
            audit("2", "delivered", event_id="out", at=T0),
            audit("3", "rejected", event_id="never", at=T0),
            audit("4", "rejected", event_id="never-early", at=T0 - timedelta(days=3)),
        ],
    )
    kept = within(facts, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [fact.event_id for fact in kept.release_facts()] == ["in"]
    assert [fact.audit_id for fact in kept.audit_facts()] == ["1", "3"]
    assert within(facts) is facts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-12", datetime(2026, 3, 11, 16, 0, tzinfo=UTC)),
        ("2026-03-12T08:00+00:00", datetime(2026, 3, 12, 8, 0, tzinfo=UTC)),
        (None, None),
    ],
)
def test_window_bounds_without_a_zone_are_county_time(text: str | None, expected: datetime | None) -> None:
    """A window bound without a zone is Asia/Shanghai time; one with a zone keeps it."""
    assert event_time(text, ZONE) == expected


def test_a_bad_window_bound_is_a_configuration_error() -> None:
    """A window bound that is not ISO is refused with the accepted forms."""
    with pytest.raises(ConfigurationError, match="ISO"):
        event_time("last tuesday", ZONE)


def test_empty_facts_give_empty_tables_csvs_and_charts(tmp_path: Path) -> None:
    """No facts at all still give every table, CSV and chart (saying there is no data)."""
    stats = compute(Facts(), zone=ZONE)
    assert "(none)" in render_tables(stats)
    written = write_csv(stats, tmp_path) + write_charts(stats, tmp_path)
    assert sorted(path.name for path in written) == sorted([f"{name}.csv" for name in stats.frames()] + list(CHARTS))
    assert all(path.stat().st_size > 0 for path in written)


def test_outputs_write_one_csv_per_frame_and_the_charts(tmp_path: Path) -> None:
    """Every data frame becomes a CSV that reads back equal, and every chart a PNG."""
    facts = Facts.of(
        releases=[release("a", incident="F", status="reported"), release("b", event_type="risk_warning")],
        audits=[audit("1", "rejected", reason="corrupt: x")],
    )
    stats = compute(facts, zone=ZONE)
    csvs = write_csv(stats, tmp_path)
    assert {path.stem for path in csvs} == set(stats.frames())
    again = pd.read_csv(tmp_path / "counts_by_type.csv")
    assert again.to_dict("records") == stats.counts_by_type.to_dict("records")
    charts = write_charts(stats, tmp_path)
    assert sorted(path.name for path in charts) == sorted(CHARTS)
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in charts)
    assert "Events by type" in render_tables(stats)
