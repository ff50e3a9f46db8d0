"""Statistics end to end: a simulated season through the real worker, review desk and archive sinks, then `stats`
from the topics, the PostgreSQL archive and the Avro files — which agree — and a replay that moves no live group.

This module runs its own broker, so its counts are of its own season only; PostgreSQL gets a throwaway schema.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pandas as pd
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from openpyxl import load_workbook

from consumers import SinkRunner
from consumers.analytics import (
    CHARTS,
    Facts,
    Statistics,
    compute,
    from_archive,
    from_files,
    from_topics,
    monthly_report,
)
from consumers.archive import ArchiveSink, AvroArchive, apply_migrations
from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County
from firebus.errors import InvalidEventError
from firebus.kafka import client_options, create_topics
from firebus.records import ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.topics import AUDIT, REVIEW_DECISIONS, TIERS
from producers import ReviewDesk, publish_season
from tests.consumers.archiving import create_schema, drop_schema, dsn_for
from tests.processors.conftest import Worker

ROOT = Path(__file__).resolve().parents[2]
SEASON_EVENTS = 150
SEED = 11
REVIEWERS = ("hq-wang", "hq-li")


@dataclass
class Season:
    settings: Settings
    dsn: str
    files: Path
    groups: list[str]
    published: int
    released: int
    human_decisions: int


async def approve_everything(
    settings: Settings, county: County, expected: int, *, within_s: float = 60
) -> tuple[int, int]:
    """Approve every pending review item (as an HQ reviewer) until all ``expected`` events are settled; returns
    how many were approved by hand and how many were released in all."""
    desk = ReviewDesk(settings=settings, county=county)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    decided: set[Any] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    try:
        while True:
            items = await desk.items()
            for item in items.values():
                if item.status is not ReviewStatus.PENDING or item.event_id in decided:
                    continue
                for reviewer in REVIEWERS:
                    try:
                        decision = desk.decision(item, reviewer=reviewer, verdict=Verdict.APPROVE)
                    except InvalidEventError:
                        continue
                    await producer.send(
                        REVIEW_DECISIONS.name, desk.codec.encode(decision), key=item.partition_key.encode()
                    )
                    decided.add(item.event_id)
                    break
            await producer.flush()
            settled = [i for i in items.values() if i.status not in (ReviewStatus.PENDING, ReviewStatus.RELEASING)]
            if len(items) >= expected and len(settled) == len(items):
                return len(decided), sum(1 for i in items.values() if i.status is ReviewStatus.RELEASED)
            assert loop.time() < deadline, f"{len(settled)} of {expected} review items settled after {within_s}s"
            await asyncio.sleep(0.3)
    finally:
        await producer.stop()


def same_facts(one: Facts, other: Facts) -> bool:
    return {(r.event_id, r.tier) for r in one.release_facts()} == {
        (r.event_id, r.tier) for r in other.release_facts()
    } and {a.audit_id for a in one.audit_facts()} == {a.audit_id for a in other.audit_facts()}


QUIET_CHECKS = 4


async def archive_until_caught_up(season: Season, *, within_s: float = 60) -> None:
    """Run both archive sinks until the database and the files hold exactly what the topics hold."""
    sinks: list[Any] = [ArchiveSink(settings=season.settings, dsn=season.dsn), AvroArchive(settings=season.settings)]
    runners = []
    for sink, group in zip(sinks, season.groups, strict=True):
        runner = SinkRunner(sink, settings=season.settings)
        runner.group_id = group
        runners.append(runner)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)) for runner in runners]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    settled = 0  # a sink may be mid-batch (its `delivered` audits still to come) when the sources first agree
    try:
        while True:
            await asyncio.sleep(0.5)
            for task in tasks:
                if task.done():
                    task.result()
                    raise AssertionError("a sink runner ended on its own")
            topics = await from_topics(season.settings, progress=False)
            archive = await from_archive(season.settings, dsn=season.dsn)
            if same_facts(topics, archive) and same_facts(topics, from_files(season.files)):
                settled += 1
                if settled >= QUIET_CHECKS:
                    return
            else:
                settled = 0
            assert loop.time() < deadline, "the archive sinks did not catch up with the topics"
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def committed(settings: Settings, groups: list[str]) -> dict[str, dict[TopicPartition, int | None]]:
    """The committed offsets of each of ``groups`` on the tier and audit topics (OffsetFetch; no group is joined)."""
    partitions = [TopicPartition(topic.name, p) for topic in (*TIERS.values(), AUDIT) for p in range(topic.partitions)]
    found = {}
    for group in groups:
        consumer = AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            found[group] = {tp: await consumer.committed(tp) for tp in partitions}
        finally:
            await consumer.stop()
    return found


@pytest.fixture(scope="module")
async def season(keys_dir: Path, county: County, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Season]:
    """A simulated season on this module's own broker, reviewed, released and archived to a throwaway schema."""
    base = tmp_path_factory.mktemp("analytics")
    schema = await create_schema()
    async with await psycopg.AsyncConnection.connect(dsn_for(schema), autocommit=True) as connection:
        await apply_migrations(connection)
    try:
        async with EmbeddedBroker(port=free_port(), log_path=base / "broker.log") as broker:
            settings = Settings(
                bootstrap=broker.bootstrap_servers,
                home=base / "home",
                keys_dir=keys_dir,
                archive_dir=base / "archive",
                connect_timeout_s=10,
                fetch_max_wait_ms=50,
                group_session_timeout_s=4,
            )
            await create_topics(settings)
            worker = Worker(settings, base / "processors.log")
            await worker.start()
            try:
                report = await publish_season(settings, county, count=SEASON_EVENTS, seed=SEED, days=20)
                human, released = await approve_everything(settings, county, report.published)
                made = Season(
                    settings=settings,
                    dsn=dsn_for(schema),
                    files=settings.archive_directory,
                    groups=[f"stats-archive-{uuid4().hex[:8]}", f"stats-files-{uuid4().hex[:8]}"],
                    published=report.published,
                    released=released,
                    human_decisions=human,
                )
                await archive_until_caught_up(made)
                yield made
            finally:
                await worker.stop()
    finally:
        await drop_schema(schema)


def assert_same(one: Statistics, other: Statistics) -> None:
    for name, frame in one.frames().items():
        pd.testing.assert_frame_equal(frame, other.frames()[name], check_dtype=False, obj=name)


async def test_topics_archive_and_files_give_the_same_statistics(season: Season, county: County) -> None:
    """The same season gives the same counts, lifecycles, review and delivery latencies from all three sources."""
    topics = compute(await from_topics(season.settings, progress=False), zone=county.zone)
    archive = compute(await from_archive(season.settings, dsn=season.dsn), zone=county.zone)
    files = compute(from_files(season.files), zone=county.zone)
    assert_same(topics, archive)
    assert_same(topics, files)
    assert topics.counts_by_type["events"].sum() == season.released
    assert not topics.lifecycle.empty
    verified: Any = topics.lifecycle_summary.set_index("stage").loc["report → verified", "count"]
    assert int(verified) > 0
    kinds = set(topics.review_latency_by_reviewer_kind["reviewer_kind"])
    assert "human" in kinds
    assert season.human_decisions > 0
    assert set(topics.delivery_latency_by_sink["sink"]) == {"archive", "archive-files"}


async def test_a_window_keeps_only_events_that_occurred_in_it(season: Season, county: County) -> None:
    """A start and end in event time give the events that occurred then, the same from the topics and the archive."""
    everything = compute(await from_topics(season.settings, progress=False), zone=county.zone).review_latency
    facts = await from_topics(season.settings, progress=False)
    times = sorted(fact.occurred_at for fact in facts.release_facts())
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    windowed = await from_topics(season.settings, start=start, end=end, progress=False)
    assert windowed.releases.height
    assert all(start <= fact.occurred_at < end for fact in windowed.release_facts())
    inside = {fact.event_id for fact in facts.release_facts() if start <= fact.occurred_at < end}
    assert {fact.event_id for fact in windowed.release_facts()} == inside
    archived = await from_archive(season.settings, dsn=season.dsn, start=start, end=end)
    assert_same(compute(windowed, zone=county.zone), compute(archived, zone=county.zone))
    assert len(compute(windowed, zone=county.zone).review_latency) < len(everything)


def run_cli(season: Season, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FIREBUS_BOOTSTRAP": season.settings.bootstrap_servers,
        "FIREBUS_HOME": str(season.settings.home),
        "FIREBUS_ARCHIVE_DSN": season.dsn,
        "FIREBUS_LOG_FORMAT": "json",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("source", ["topics", "archive", "files"])
async def test_stats_command_prints_tables_and_writes_csvs_and_charts(
    season: Season, tmp_path: Path, source: str
) -> None:
    """`firebus stats --from SOURCE --out DIR` exits 0, prints the tables and writes every CSV and PNG."""
    out = tmp_path / source
    extra = ["--files-dir", str(season.files)] if source == "files" else []
    done = await asyncio.to_thread(run_cli, season, "stats", "--from", source, "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    assert "Events by type" in done.stdout
    assert "Fire lifecycle" in done.stdout
    assert all((out / chart).read_bytes()[:4] == b"\x89PNG" for chart in CHARTS)
    counts = pd.read_csv(out / "counts_by_type.csv")
    assert counts["events"].sum() == season.released


async def test_a_replay_leaves_live_consumer_groups_untouched(season: Season) -> None:
    """Replaying the topics (API and CLI) commits nothing and creates no group: live groups' offsets are unchanged."""
    live = season.groups  # the two archive sinks, stopped at what they committed
    before = await committed(season.settings, live)
    assert all(any(before[group].values()) for group in live)
    await from_topics(season.settings, progress=False)
    done = await asyncio.to_thread(run_cli, season, "stats")
    assert done.returncode == 0, done.stderr
    assert await committed(season.settings, live) == before


def test_bench_replay_prints_rates_and_the_ratio(tmp_path: Path) -> None:
    """`firebus bench replay` on a fresh embedded broker prints both rates and a `ratio:` line."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FIREBUS_")}
    env["FIREBUS_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "replay", "--events", "600"],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "raw aiokafka consume: 600 records" in done.stdout
    assert "stats over replay:    600 records" in done.stdout
    assert any(line.startswith("ratio: ") for line in done.stdout.splitlines())


def month_fires(facts: Facts, county: County) -> dict[str, dict[str, Any]]:
    """Per month (county time): the fires first reported in it, as a plain reading of the releases (the oracle
    the report's figures are checked against): latest status, latest area, most personnel of one report."""
    by_incident: dict[str, list[Any]] = {}
    for fact in sorted(set(facts.release_facts()), key=lambda fact: (fact.occurred_at, fact.event_id)):
        if fact.event_type == "fire_report" and fact.incident_id is not None:
            by_incident.setdefault(fact.incident_id, []).append(fact)
    months: dict[str, dict[str, Any]] = {}
    for reports in by_incident.values():
        if reports[-1].fire_status == "false_alarm":
            continue
        month = reports[0].occurred_at.astimezone(county.zone).strftime("%Y-%m")
        figures = months.setdefault(month, {"fires": 0, "area": 0.0, "personnel": 0, "personnel_by_fire": {}})
        areas = [report.burned_area_ha for report in reports if report.burned_area_ha is not None]
        personnel = max(report.personnel or 0 for report in reports)
        figures["fires"] += 1
        figures["area"] += areas[-1] if areas else 0.0
        figures["personnel"] += personnel
        figures["personnel_by_fire"][reports[0].incident_id] = personnel
    return months


async def test_stats_month_report_writes_a_workbook_of_the_season(
    season: Season, county: County, tmp_path: Path
) -> None:
    """`firebus stats --month M --report DIR` writes the monthly report; the workbook's cells carry the season's
    figures for that month, and the three sources give the same report."""
    facts = await from_topics(season.settings, progress=False)
    months = month_fires(facts, county)
    month = max(months, key=lambda month: months[month]["fires"])
    expected = months[month]
    assert expected["fires"] > 0
    done = await asyncio.to_thread(run_cli, season, "stats", "--month", month, "--report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "统计月报表" in done.stdout
    workbook = load_workbook(tmp_path / f"monthly-{month}.xlsx")
    summary = workbook["汇总"]
    year, number = month.split("-")
    assert summary["A1"].value == f"{county.county.name}森林草原火灾统计月报表（{year}年{int(number)}月）"
    assert [summary.cell(row=row, column=1).value for row in range(5, 10)] == [
        "火灾起数",
        "误报起数",
        "过火面积（公顷）",
        "出动人员（人次）",
        "出动车辆（台次）",
    ]
    assert summary["B5"].value == expected["fires"]
    assert summary["B7"].value == pytest.approx(expected["area"], abs=0.01)
    fires_csv = pd.read_csv(tmp_path / f"monthly-{month}-fires.csv", encoding="utf-8-sig")
    assert dict(zip(fires_csv["火情编号"], fires_csv["出动人员（人）"], strict=True)) == expected["personnel_by_fire"]
    assert summary["B8"].value == expected["personnel"]
    by_township = workbook["按乡镇和起因"]
    total_row = by_township.max_row
    assert by_township.cell(row=total_row, column=1).value == "合计"
    assert by_township.cell(row=total_row, column=3).value == expected["fires"]
    fires = workbook["火情明细"]
    assert fires.max_row - 4 == expected["fires"]
    assert all(fires.cell(row=row, column=8).value is not None for row in range(5, fires.max_row + 1))
    assert len(fires_csv) == expected["fires"]
    names = {township.id: township.name for township in county.townships}
    reports = [
        monthly_report(source.releases, county=county.county.name, month=month, zone=county.zone, townships=names)
        for source in (facts, await from_archive(season.settings, dsn=season.dsn), from_files(season.files))
    ]
    for report in reports[1:]:
        for name in ("summary", "by_township_cause", "fires"):
            pd.testing.assert_frame_equal(getattr(report, name), getattr(reports[0], name), obj=name)


async def test_stats_report_without_a_month_is_a_one_line_error(season: Season, tmp_path: Path) -> None:
    done = await asyncio.to_thread(run_cli, season, "stats", "--report", str(tmp_path))
    assert done.returncode != 0
    assert "--report needs --month" in done.stderr
    assert not await asyncio.to_thread(os.listdir, tmp_path)
