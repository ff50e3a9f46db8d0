"""What the archive tests share: releases and audit events crafted as the processors make them, produced to the
module's own broker, fences, and reading back what the sinks archived (rows, files) and how often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from aiokafka import AIOKafkaProducer
from fastavro import reader
from psycopg import sql

from consumers import SinkRunner
from consumers.archive import archive_files
from firebus.codec import Codec
from firebus.events import Audience, EventType, MessageKind
from firebus.records import AuditAction, AuditEvent, Release, ReviewDecision, ReviewerKind, Verdict
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS, Topic
from producers import Draft, FirebusClient, load_draft

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events"
CODEC = Codec()
PG = "postgresql://127.0.0.1:5432/test"
DAY_1 = datetime(2026, 3, 11, 22, 30, tzinfo=UTC)
DAY_2 = datetime(2026, 3, 12, 1, 15, tzinfo=UTC)


def dsn_for(schema: str, port: int = 5432) -> str:
    return f"postgresql://127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


async def create_schema() -> str:
    name = f"firebus_test_{uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(PG, autocommit=True) as connection:
        await connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


async def drop_schema(name: str) -> None:
    async with await psycopg.AsyncConnection.connect(PG, autocommit=True) as connection:
        await connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


async def fetch(dsn: str, query: Any, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        cursor = await connection.execute(query, tuple(params))
        return await cursor.fetchall()


def sample(name: str, **changes: Any) -> Draft:
    return load_draft(EXAMPLES / f"{name}.json").model_copy(update=changes)


def crafted_release(client: FirebusClient, tier: Audience, marker: str, released_at: datetime) -> Release:
    """A release as the processors make one: a real signed fire report of incident ``marker``, approved."""
    event = client.prepare(sample("fire_report", incident_id=marker))
    event_id = event.header.event_id
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=event_id,
        event_type=EventType.FIRE_REPORT,
        verdict=Verdict.APPROVE,
        reviewer="hq-li",
        reviewer_kind=ReviewerKind.HUMAN,
        tiers=[tier],
        decided_at=released_at - timedelta(minutes=3),
        trace_id=event.header.trace_id,
    )
    return Release(
        release_id=uuid4(),
        tier=tier,
        event_id=event_id,
        event_type=EventType.FIRE_REPORT,
        kind=MessageKind.ALERT,
        thread_id=event_id,
        incident_id=marker,
        publisher_unit="forestry",
        decision=decision,
        released_at=released_at,
        event=CODEC.encode(event),
    )


def crafted_audit(marker: str, at: datetime) -> AuditEvent:
    return AuditEvent(
        audit_id=uuid4(),
        action=AuditAction.OTHER,
        actor="tests.archive",
        details={"marker": marker},
        at=at,
    )


Outgoing = tuple[Topic, bytes, bytes, int | None]


def outgoing(records: Iterable[Release | AuditEvent], partition: int | None = None) -> list[Outgoing]:
    found: list[Outgoing] = []
    for record in records:
        if isinstance(record, Release):
            found.append((TIERS[record.tier], (record.incident_id or "").encode(), CODEC.encode(record), partition))
        else:
            found.append((AUDIT, str(record.audit_id).encode(), CODEC.encode(record), partition))
    return found


async def produce(settings: Settings, records: Iterable[Outgoing]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for topic, key, value, partition in records:
            await producer.send_and_wait(topic.name, value, key=key, partition=partition)
    finally:
        await producer.stop()


def many(client: FirebusClient, marker: str, *, releases: int, audits: int) -> list[Release | AuditEvent]:
    """``releases`` releases spread over the tiers and two UTC days, and ``audits`` audit events."""
    tiers = list(Audience)
    made: list[Release | AuditEvent] = [
        crafted_release(client, tiers[n % 3], marker, DAY_1 if n % 2 else DAY_2) for n in range(releases)
    ]
    made += [crafted_audit(marker, DAY_1 if n % 2 else DAY_2) for n in range(audits)]
    return made


async def fence(settings: Settings, client: FirebusClient) -> list[Release | AuditEvent]:
    """One fresh record on every partition of every archived topic; once all are archived, so is all before them."""
    marker = f"fence-{uuid4().hex[:8]}"
    fenced: list[Release | AuditEvent] = []
    for partition in range(3):
        made: list[Release | AuditEvent] = [crafted_release(client, tier, marker, DAY_2) for tier in Audience]
        made.append(crafted_audit(marker, DAY_2))
        await produce(settings, outgoing(made, partition))
        fenced += made
    return fenced


def record_id(record: Release | AuditEvent) -> str:
    return str(record.release_id if isinstance(record, Release) else record.audit_id)


async def rows_present(dsn: str, fenced: list[Release | AuditEvent]) -> bool:
    releases = [r.release_id for r in fenced if isinstance(r, Release)]
    audits = [r.audit_id for r in fenced if isinstance(r, AuditEvent)]
    found = await fetch(dsn, "SELECT count(*) FROM releases WHERE release_id = ANY(%s)", [releases])
    found += await fetch(dsn, "SELECT count(*) FROM audit_events WHERE audit_id = ANY(%s)", [audits])
    return found == [(len(releases),), (len(audits),)]


def archived(directory: Path) -> dict[Path, list[dict[str, Any]]]:
    """Every record of every archive file under ``directory``, read with fastavro's own reader."""
    found: dict[Path, list[dict[str, Any]]] = {}
    for topic_dir in sorted(path for path in directory.iterdir() if path.is_dir()):
        for _day, _index, path in archive_files(topic_dir):
            with path.open("rb") as handle:
                found[path] = [record for record in reader(handle) if isinstance(record, dict)]
    return found


def archived_ids(directory: Path) -> Counter[str]:
    """How many times each id (release id, audit id) is in the archive files under ``directory``."""
    return Counter(
        str(record.get("release_id") or record["audit_id"])
        for records in archived(directory).values()
        for record in records
    )


async def run_until(
    sink: Any,
    settings: Settings,
    done: Callable[[], Awaitable[bool]],
    *,
    group: str,
    batch_size: int = 500,
    within_s: float = 60.0,
) -> SinkRunner:
    """Run ``sink`` under its own runner (group ``group``) until ``done()``, then stop it cleanly."""
    runner = SinkRunner(sink, settings=settings, batch_size=batch_size)
    runner.group_id = group
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    try:
        while not await done():
            if task.done():
                task.result()
                raise AssertionError("the runner ended on its own")
            if loop.time() > deadline:
                raise AssertionError(f"not done after {within_s}s; runner stats {runner.stats}")
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    return runner


async def run_and_crash(sink: Any, settings: Settings, *, group: str, after: int, batch_size: int = 5) -> None:
    """Run ``sink`` and cancel its runner once ``after`` records were applied: whatever it had not committed is
    delivered again to the next runner of ``group``."""
    runner = SinkRunner(sink, settings=settings, batch_size=batch_size)
    runner.group_id = group
    task = asyncio.create_task(runner.run(asyncio.Event()))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while runner.stats.delivered < after:
        assert not task.done(), task.result()
        assert loop.time() < deadline, f"only {runner.stats.delivered} delivered"
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
